//! Lists (RFC 9110 §5.6.1): members separated by commas, where a comma inside a quoted string
//! (§5.6.4) belongs to the member. Every list-valued field the cache reads is split here, so
//! `private="Set-Cookie, X-Token"` is one directive and `W/"a,b"` one entity-tag.
//!
//! Splitting works on bytes and yields ranges, so the same code serves field values that are
//! text and those that are not (obs-text, §5.5), and a range of a `&str` always falls on a
//! character boundary (it starts and ends next to an ASCII comma, quote or space).

use std::ops::Range;

/// The members of a list field value: the byte ranges between the commas outside quoted
/// strings, each trimmed of whitespace; empty members are skipped (§5.6.1.2: a recipient
/// accepts and ignores them). With `quoted_pairs`, a backslash inside a quoted string quotes
/// the next byte (§5.6.4), so `\"` does not close it; entity-tags have no quoted-pairs
/// (§8.8.3: a backslash is an ordinary character in one), so lists of them pass `false`.
pub(crate) fn member_ranges(
    value: &[u8],
    quoted_pairs: bool,
) -> impl Iterator<Item = Range<usize>> + '_ {
    let mut at = 0;
    std::iter::from_fn(move || {
        while at <= value.len() {
            let start = at;
            let end = member_end(value, start, quoted_pairs);
            at = end + 1;
            let member = trim(value, start..end);
            if !member.is_empty() {
                return Some(member);
            }
        }
        None
    })
}

/// The members of a text list field value, trimmed, empty ones skipped (see [`member_ranges`];
/// quoted strings with quoted-pairs).
pub(crate) fn members(value: &str) -> impl Iterator<Item = &str> {
    member_ranges(value.as_bytes(), true).map(move |r| &value[r])
}

/// Where the member starting at `start` ends: the next comma outside a quoted string, or the
/// end of the value. A quoted string left open (a stray quote) spoils only its own member: the
/// member ends at the first comma after that quote, so the members after it are still read (a
/// `private` after `x="open` counts, as it does for readers that split at every comma).
fn member_end(value: &[u8], start: usize, quoted_pairs: bool) -> usize {
    let mut quoted = false;
    // The first comma after the quoted string opened last (escaped or not).
    let mut comma_in_quotes = None;
    let mut i = start;
    while i < value.len() {
        match value[i] {
            b'\\' if quoted && quoted_pairs => {
                if value.get(i + 1) == Some(&b',') {
                    comma_in_quotes.get_or_insert(i + 1);
                }
                i += 1;
            }
            b'"' => {
                quoted = !quoted;
                if quoted {
                    comma_in_quotes = None;
                }
            }
            b',' if !quoted => return i,
            b',' => {
                comma_in_quotes.get_or_insert(i);
            }
            _ => {}
        }
        i += 1;
    }
    match (quoted, comma_in_quotes) {
        (true, Some(comma)) => comma,
        _ => value.len(),
    }
}

/// `range` of `value` without the whitespace at either end.
fn trim(value: &[u8], mut range: Range<usize>) -> Range<usize> {
    while range.start < range.end && value[range.start].is_ascii_whitespace() {
        range.start += 1;
    }
    while range.end > range.start && value[range.end - 1].is_ascii_whitespace() {
        range.end -= 1;
    }
    range
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(value: &str, quoted_pairs: bool) -> Vec<&str> {
        member_ranges(value.as_bytes(), quoted_pairs)
            .map(|r| &value[r])
            .collect()
    }

    #[test]
    fn members_are_split_at_commas_outside_quoted_strings() {
        assert_eq!(members("a, b ,c").collect::<Vec<_>>(), ["a", "b", "c"]);
        assert_eq!(
            members(r#"private="Set-Cookie, X-Token", max-age=60"#).collect::<Vec<_>>(),
            [r#"private="Set-Cookie, X-Token""#, "max-age=60"]
        );
        assert_eq!(
            members(r#"W/"a,b", "c""#).collect::<Vec<_>>(),
            [r#"W/"a,b""#, r#""c""#]
        );
        // A quoted string left open spoils only its own member.
        assert_eq!(members(r#"a="b, c"#).collect::<Vec<_>>(), [r#"a="b"#, "c"]);
        assert_eq!(
            members(r#"a="b\", c"#).collect::<Vec<_>>(),
            [r#"a="b\""#, "c"]
        );
        assert_eq!(
            members(r#"a=b"c, d"#).collect::<Vec<_>>(),
            [r#"a=b"c"#, "d"]
        );
        assert_eq!(members(r#"a="b"#).collect::<Vec<_>>(), [r#"a="b"#]);
        // The comma that ends it follows the quote left open, not an earlier, closed one.
        assert_eq!(
            members(r#"a="b, c" d=", e"#).collect::<Vec<_>>(),
            [r#"a="b, c" d=""#, "e"]
        );
        assert_eq!(
            members(r#"a="b, c" d=""#).collect::<Vec<_>>(),
            [r#"a="b, c" d=""#]
        );
        // An escaped comma ends it too (a reader splitting at every comma splits there).
        assert_eq!(
            members(r#"a="b\, c"#).collect::<Vec<_>>(),
            [r#"a="b\"#, "c"]
        );
    }

    /// RFC 9110 §5.6.1.2: empty list elements are accepted and ignored.
    #[test]
    fn empty_members_are_skipped() {
        assert_eq!(members(", a,, ,b,").collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(members("").count(), 0);
        assert_eq!(members(" , ").count(), 0);
    }

    /// RFC 9110 §5.6.4: a quoted-pair quotes a quote; in an entity-tag a backslash is an
    /// ordinary character (§8.8.3).
    #[test]
    fn quoted_pairs_only_where_the_field_has_them() {
        assert_eq!(split(r#"a="x\", y", b"#, true), [r#"a="x\", y""#, "b"]);
        assert_eq!(split(r#""x\", "y""#, false), [r#""x\""#, r#""y""#]);
    }

    #[test]
    fn values_that_are_not_text_are_split_too() {
        let value = b"a\xff, b";
        let parts: Vec<&[u8]> = member_ranges(value, true).map(|r| &value[r]).collect();
        assert_eq!(parts, [&b"a\xff"[..], &b"b"[..]]);
    }
}
