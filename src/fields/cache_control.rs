//! `Cache-Control` (RFC 9111 §5.2), in requests and responses: a list of directives, each a
//! name and an optional argument, a token or a quoted string.
//!
//! Every directive is kept, known or not: the rules read extension directives
//! (`stale-while-revalidate`, `stale-if-error`, RFC 5861) and `must-understand` beside what
//! http-cache-semantics reads itself, and a cache must ignore — not drop the field for — a
//! directive it does not understand (§5.2.3).

use http::{header, HeaderMap};

use super::list;

/// One cache directive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Directive {
    /// Lower-cased: directive names are case-insensitive (§5.2).
    pub(crate) name: String,
    /// The argument, in either form §5.2 allows (`max-age=5` or `max-age="5"`): a quoted
    /// string's quotes removed and its quoted-pairs resolved (RFC 9110 §5.6.4). `None` when
    /// there is none or it is empty.
    pub(crate) value: Option<String>,
}

impl Directive {
    /// One member of the list: `name`, or `name=argument` (whitespace around either is
    /// tolerated).
    fn parse(member: &str) -> Directive {
        let (name, value) = member.split_once('=').unwrap_or((member, ""));
        let value = unquote(value.trim());
        Directive {
            name: name.trim().to_ascii_lowercase(),
            value: (!value.is_empty()).then_some(value),
        }
    }

    /// The argument as delta-seconds (§1.2.2), `None` when it is not a number.
    ///
    /// §1.2.2: a delta-seconds too large to represent is taken as 2^31, never dropped; one
    /// beyond a `u64` reads as `u64::MAX` here, and callers clamp every value to 2^31.
    pub(crate) fn seconds(&self) -> Option<u64> {
        delta_seconds(self.value.as_deref()?)
    }
}

/// `text` as delta-seconds (§1.2.2), a run of digits too large for a `u64` read as
/// `u64::MAX`.
fn delta_seconds(text: &str) -> Option<u64> {
    text.parse().ok().or_else(|| {
        (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())).then_some(u64::MAX)
    })
}

/// A quoted string's content (quotes removed, quoted-pairs resolved), or a token as it is. A
/// quoted string left open runs to the end; stray quotes around a token are dropped.
fn unquote(text: &str) -> String {
    let Some(inner) = text.strip_prefix('"') else {
        return text.trim_matches('"').to_owned();
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            '"' => break,
            c => out.push(c),
        }
    }
    out
}

/// The directives of a message's `Cache-Control` field lines, in order. A byte that is not
/// visible ASCII is read as `?` ([`text`](super::text)): the directives beside it count.
///
/// Several lines are one list (RFC 9110 §5.3: joined with commas), so a quoted string may go on
/// from one line to the next. They are read each on its own too, and a restrictive directive
/// (`private`, `no-store`, `no-cache`) only that reading finds is added: a quote left open at
/// the end of one line never hides a `private` on the next from this cache, whichever reading
/// its sender meant — while nothing that permits more (`public`, a lifetime, `max-stale`) is
/// taken from inside what the joined reading holds to be a quoted string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CacheControl {
    directives: Vec<Directive>,
    /// How many of `directives` the joined reading gave; the rest are the restrictive ones only
    /// a line read alone holds.
    joined: usize,
}

/// Response directives that forbid (storing, sharing, serving stale): taking one that may not
/// have been meant costs a hit, never a leak or a stale answer.
const RESPONSE_RESTRICTIVE: &[&str] = &[
    "private",
    "no-store",
    "no-cache",
    "must-revalidate",
    "proxy-revalidate",
];

/// Whether `d` forbids more than `held`, of the same name: a lower `max-age`, a higher
/// `min-fresh` (a value that is not a number forbids most: it is no bound the cache can meet).
fn stricter(d: &Directive, held: &Directive) -> bool {
    match (d.name.as_str(), d.seconds(), held.seconds()) {
        (_, _, None) => false,
        (_, None, Some(_)) => true,
        ("max-age", Some(new), Some(old)) => new < old,
        ("min-fresh", Some(new), Some(old)) => new > old,
        _ => false,
    }
}

/// Request directives that forbid (storing, serving anything but a fresh enough response).
const REQUEST_RESTRICTIVE: &[&str] = &["no-store", "no-cache", "max-age", "min-fresh"];

impl CacheControl {
    /// A response's directives.
    pub(crate) fn of(headers: &HeaderMap) -> Self {
        Self::read(headers, RESPONSE_RESTRICTIVE)
    }

    /// A request's directives.
    pub(crate) fn of_request(headers: &HeaderMap) -> Self {
        Self::read(headers, REQUEST_RESTRICTIVE)
    }

    fn read(headers: &HeaderMap, restrictive: &[&str]) -> Self {
        let mut lines = headers.get_all(header::CACHE_CONTROL).iter();
        let Some(first) = lines.next() else {
            return CacheControl::default();
        };
        let mut joined = super::text(first);
        let mut more = false;
        for line in lines {
            let joined = joined.to_mut();
            joined.push_str(", ");
            joined.push_str(&super::text(line));
            more = true;
        }
        let mut directives: Vec<Directive> = list::members(&joined).map(Directive::parse).collect();
        let joined = directives.len();
        if more {
            for line in headers.get_all(header::CACHE_CONTROL) {
                for d in list::members(&super::text(line)).map(Directive::parse) {
                    if !restrictive.contains(&d.name.as_str()) {
                        continue;
                    }
                    match directives.iter_mut().find(|held| held.name == d.name) {
                        None => directives.push(d),
                        // A bound on age asks for more the lower it is, one on freshness the
                        // higher: the strictest stands.
                        Some(held) if stricter(&d, held) => *held = d,
                        Some(_) => {}
                    }
                }
            }
        }
        CacheControl { directives, joined }
    }

    /// The directives as one field line that a reader splitting at every comma and comparing
    /// names exactly reads as this cache does: names lower-cased, a directive whose name is not
    /// a token left out (no reader gives it a meaning), and in an argument each comma, quote
    /// or backslash written as `?` (so `private="Set-Cookie, X-Token"` is still `private`, and
    /// `max-age="0, 1"` still a `max-age` that is not a number, never a bare `max-age` that
    /// a reader may take as absent). No quoted string remains, so the line has no comma but
    /// those between directives.
    pub(crate) fn canonical(&self) -> String {
        let mut out = String::new();
        for d in &self.directives {
            if d.name.is_empty() || !d.name.bytes().all(is_tchar) {
                continue;
            }
            if !out.is_empty() {
                out.push_str(", ");
            }
            out.push_str(&d.name);
            if let Some(value) = &d.value {
                out.push('=');
                out.extend(value.chars().map(|c| match c {
                    ',' | '"' | '\\' => '?',
                    c => c,
                }));
            }
        }
        out
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Directive> {
        self.directives.iter()
    }

    /// Whether a directive named `name` (lower case) is present.
    pub(crate) fn has(&self, name: &str) -> bool {
        self.directives.iter().any(|d| d.name == name)
    }

    /// Whether the joined lines alone (RFC 9110 §5.3) hold a directive named `name`: for a
    /// directive that permits something in that use (`must-revalidate` lets a shared cache keep
    /// an answer to `Authorization`), where one taken from a line alone must not count.
    pub(crate) fn has_in_joined_lines(&self, name: &str) -> bool {
        self.directives[..self.joined]
            .iter()
            .any(|d| d.name == name)
    }

    /// The delta-seconds of the first directive named `name` (see [`Directive::seconds`]).
    pub(crate) fn seconds(&self, name: &str) -> Option<u64> {
        self.directives.iter().find(|d| d.name == name)?.seconds()
    }
}

/// RFC 9110 §5.6.2: a byte a token may hold.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A field line without the directives named `name` (case-insensitively), the others as sent.
pub(crate) fn without(line: &str, name: &str) -> String {
    rewrite(line, |member| {
        let own = member.split_once('=').map_or(member, |(n, _)| n).trim();
        (!own.eq_ignore_ascii_case(name)).then(|| member.to_owned())
    })
}

/// A field line with the delta-seconds of the directives in `names` (lower case) at most
/// `max`, the rest as sent: §1.2.2 takes a value too large to represent as 2^31, for readers
/// that would otherwise read it as no value, or as 0.
pub(crate) fn clamp_seconds(line: &str, names: &[&str], max: u64) -> String {
    rewrite(line, |member| {
        let Some((name, value)) = member.split_once('=') else {
            return Some(member.to_owned());
        };
        let own = name.trim().to_ascii_lowercase();
        match delta_seconds(&unquote(value.trim())) {
            Some(s) if s > max && names.contains(&own.as_str()) => Some(format!("{own}={max}")),
            _ => Some(member.to_owned()),
        }
    })
}

fn rewrite(line: &str, mut member: impl FnMut(&str) -> Option<String>) -> String {
    list::members(line)
        .filter_map(&mut member)
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn cc(lines: &[&str]) -> CacheControl {
        let mut h = HeaderMap::new();
        for line in lines {
            h.append(header::CACHE_CONTROL, HeaderValue::from_str(line).unwrap());
        }
        CacheControl::of(&h)
    }

    fn directive(name: &str, value: Option<&str>) -> Directive {
        Directive {
            name: name.to_owned(),
            value: value.map(str::to_owned),
        }
    }

    /// RFC 9111 §5.2: names are case-insensitive; arguments are tokens or quoted strings, and
    /// a comma inside a quoted string does not end the directive.
    #[test]
    fn directives_of_every_line() {
        let parsed = cc(&[
            r#"Max-Age=60, private="Set-Cookie, X-Token""#,
            "no-cache,, stale-if-error = 30",
            r#"community="UCI \"x\"""#,
        ]);
        assert_eq!(
            parsed.iter().cloned().collect::<Vec<_>>(),
            [
                directive("max-age", Some("60")),
                directive("private", Some("Set-Cookie, X-Token")),
                directive("no-cache", None),
                directive("stale-if-error", Some("30")),
                directive("community", Some(r#"UCI "x""#)),
            ]
        );
        assert!(parsed.has("no-cache"));
        assert!(!parsed.has("x-token\""));
        assert_eq!(parsed.seconds("max-age"), Some(60));
        assert_eq!(parsed.seconds("stale-if-error"), Some(30));
    }

    /// delta-seconds (§1.2.2), quoted or not; the first directive of a name counts.
    #[test]
    fn delta_seconds() {
        assert_eq!(cc(&[r#"max-age="5""#]).seconds("max-age"), Some(5));
        assert_eq!(cc(&["max-age=5, max-age=7"]).seconds("max-age"), Some(5));
        assert_eq!(cc(&["max-age=abc"]).seconds("max-age"), None);
        assert_eq!(cc(&["max-age="]).seconds("max-age"), None);
        assert_eq!(cc(&["max-age"]).seconds("max-age"), None);
        assert_eq!(cc(&["max-age=-5"]).seconds("max-age"), None);
        assert_eq!(cc(&["max-age=5s"]).seconds("max-age"), None);
        assert_eq!(
            cc(&["max-age=18446744073709551615"]).seconds("max-age"),
            Some(u64::MAX)
        );
        // Beyond a u64: too large to represent, not absent (§1.2.2); callers clamp to 2^31.
        assert_eq!(
            cc(&["max-age=99999999999999999999"]).seconds("max-age"),
            Some(u64::MAX)
        );
    }

    /// A byte that is not ASCII spoils only the member it stands in: the directives beside it
    /// are read (a line skipped whole would lose a `private` beside a quoted "café").
    #[test]
    fn bytes_that_are_not_ascii_spoil_only_their_own_member() {
        let mut h = HeaderMap::new();
        h.append(
            header::CACHE_CONTROL,
            HeaderValue::from_bytes(b"max-age=\xff").unwrap(),
        );
        h.append(
            header::CACHE_CONTROL,
            HeaderValue::from_bytes(b"private, x-note=\"caf\xc3\xa9\", no-store").unwrap(),
        );
        let parsed = CacheControl::of(&h);
        assert!(parsed.has("private") && parsed.has("no-store") && parsed.has("x-note"));
        assert!(parsed.has("max-age"));
        assert_eq!(parsed.seconds("max-age"), None, "not a number: no lifetime");
    }

    /// RFC 9110 §5.3: the lines are one list, so a quoted string may span them; each line is
    /// read on its own too, and what only that reading finds is added.
    #[test]
    fn lines_are_one_list_and_each_line_counts_too() {
        let spanning = cc(&[r#"max-age=60, x-note="a"#, r#"", private"#]);
        assert!(spanning.has("private") && spanning.seconds("max-age") == Some(60));
        let hidden = cc(&[r#"x="a"#, r#"private, must-revalidate, max-age=60, y="b""#]);
        assert!(hidden.has("private"), "{hidden:?}");
        assert!(hidden.has("must-revalidate") && !hidden.has_in_joined_lines("must-revalidate"));
        // Nothing that permits more is taken from what the joined reading quotes.
        assert_eq!(hidden.seconds("max-age"), None, "{hidden:?}");
        // In a request, max-age asks for something fresher: it is taken.
        let mut h = HeaderMap::new();
        h.append(header::CACHE_CONTROL, HeaderValue::from_static(r#"x="a"#));
        h.append(
            header::CACHE_CONTROL,
            HeaderValue::from_static(r#"max-age=0, y="b""#),
        );
        assert_eq!(CacheControl::of_request(&h).seconds("max-age"), Some(0));
        // The strictest bound stands, whichever reading holds it.
        let mut h = HeaderMap::new();
        h.append(
            header::CACHE_CONTROL,
            HeaderValue::from_static(r#"max-age=600, min-fresh=1, x="a"#),
        );
        h.append(
            header::CACHE_CONTROL,
            HeaderValue::from_static(r#"max-age=0, min-fresh=80, y="b""#),
        );
        let strict = CacheControl::of_request(&h);
        assert_eq!(
            (strict.seconds("max-age"), strict.seconds("min-fresh")),
            (Some(0), Some(80))
        );
        // A quote left open spoils only its own member.
        for line in [
            r#"max-age=60, x-note="open, Private"#,
            r#"max-age=60, x-note="a\", Private"#,
            r#"max-age=60, x-note=a"b, PRIVATE"#,
        ] {
            assert!(cc(&[line]).has("private"), "{line}");
        }
    }

    /// The canonical line: what a reader splitting at every comma finds in it is what this
    /// cache read.
    #[test]
    fn the_canonical_line_holds_what_was_read() {
        assert_eq!(
            cc(&[r#"Max-Age=60, Private="X-Token, Set-Cookie", No-Cache="#]).canonical(),
            "max-age=60, private=X-Token? Set-Cookie, no-cache"
        );
        assert_eq!(
            cc(&[r#"x-note="a, private, b", "odd name", s-maxage="5""#]).canonical(),
            "x-note=a? private? b, s-maxage=5"
        );
        assert_eq!(
            cc(&[r#"max-age="0, 1", s-maxage="1\"0""#]).canonical(),
            "max-age=0? 1, s-maxage=1?0"
        );
        assert_eq!(
            cc(&[r#"x-note="open, Public"#]).canonical(),
            "x-note=open, public"
        );
        assert_eq!(CacheControl::default().canonical(), "");
    }

    #[test]
    fn lines_rewritten_for_exact_readers() {
        assert_eq!(
            without(r#"max-age=60, No-Store, private="no-store, x""#, "no-store"),
            r#"max-age=60,private="no-store, x""#
        );
        assert_eq!(
            clamp_seconds(
                r#"Max-Age="18446744073709551616", s-maxage=9, stale-if-error=99999"#,
                &["max-age", "s-maxage"],
                10
            ),
            "max-age=10,s-maxage=9,stale-if-error=99999"
        );
    }
}
