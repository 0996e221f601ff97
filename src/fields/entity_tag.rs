//! Entity-tags (RFC 9110 §8.8.3): the `ETag` of a response and the members of an
//! `If-None-Match` list, with the two comparison functions of §8.8.3.2. Which one applies is
//! the reader's choice, made where the RFC makes it: If-None-Match compares weakly (§13.1.2),
//! selecting stored responses for a 304's update takes strong validators strongly
//! (RFC 9111 §4.3.4), and If-Range needs a strong one (§13.1.5).
//!
//! Parsing is lenient, as servers are: a lower-case `w/` marks a weak tag too, and a tag
//! without its quotes stands for the quoted one.

use http::{header, HeaderMap};

use super::list;

/// One entity-tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EntityTag<'a> {
    weak: bool,
    /// The opaque-tag without its quotes.
    opaque: &'a str,
}

impl<'a> EntityTag<'a> {
    /// `None` for an empty value.
    pub(crate) fn parse(text: &'a str) -> Option<Self> {
        let text = text.trim();
        let (weak, rest) = match text.strip_prefix("W/").or_else(|| text.strip_prefix("w/")) {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let opaque = rest.trim_matches('"');
        (!text.is_empty()).then_some(EntityTag { weak, opaque })
    }

    /// The `ETag` of a response, when it has one that is text.
    pub(crate) fn of(headers: &'a HeaderMap) -> Option<Self> {
        Self::parse(headers.get(header::ETAG)?.to_str().ok()?)
    }

    pub(crate) fn is_weak(&self) -> bool {
        self.weak
    }

    /// Strong comparison (§8.8.3.2): both strong, and the same opaque-tag.
    pub(crate) fn strong_eq(&self, other: &EntityTag<'_>) -> bool {
        !self.weak && !other.weak && self.opaque == other.opaque
    }

    /// Weak comparison (§8.8.3.2): the same opaque-tag, weak or not.
    pub(crate) fn weak_eq(&self, other: &EntityTag<'_>) -> bool {
        self.opaque == other.opaque
    }
}

/// A member of an `If-None-Match` (or `If-Match`) list (RFC 9110 §13.1.1–2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListedTag<'a> {
    /// `*`: any current representation.
    Any,
    Tag(EntityTag<'a>),
}

impl ListedTag<'_> {
    /// Whether this member matches a representation whose entity-tag is `current`, by weak
    /// comparison (If-None-Match, §13.1.2). `*` matches any representation, with an ETag or
    /// without.
    pub(crate) fn matches_weakly(&self, current: Option<&EntityTag<'_>>) -> bool {
        match self {
            ListedTag::Any => true,
            ListedTag::Tag(tag) => current.is_some_and(|c| tag.weak_eq(c)),
        }
    }
}

/// The members of an entity-tag list, split at commas outside quotes (a comma inside a quoted
/// tag is part of it; §8.8.3 has no quoted-pairs).
pub(crate) fn tag_list(value: &str) -> impl Iterator<Item = ListedTag<'_>> {
    list::member_ranges(value.as_bytes(), false).filter_map(move |r| match &value[r] {
        "*" => Some(ListedTag::Any),
        member => EntityTag::parse(member).map(ListedTag::Tag),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(text: &str) -> EntityTag<'_> {
        EntityTag::parse(text).unwrap()
    }

    #[test]
    fn entity_tags_compare_weakly() {
        assert_eq!(tag("W/\"abc\"").opaque, "abc");
        assert_eq!(tag("w/\"abc\"").opaque, "abc");
        assert_eq!(tag("\"abc\"").opaque, tag("abc").opaque);
    }

    /// RFC 9110 §8.8.3.2, the table of examples.
    #[test]
    fn strong_and_weak_comparison_per_rfc_9110_8_8_3_2() {
        for (a, b, strong, weak) in [
            ("W/\"1\"", "W/\"1\"", false, true),
            ("W/\"1\"", "W/\"2\"", false, false),
            ("W/\"1\"", "\"1\"", false, true),
            ("\"1\"", "\"1\"", true, true),
        ] {
            assert_eq!(tag(a).strong_eq(&tag(b)), strong, "{a} {b}");
            assert_eq!(tag(b).strong_eq(&tag(a)), strong, "{b} {a}");
            assert_eq!(tag(a).weak_eq(&tag(b)), weak, "{a} {b}");
            assert_eq!(tag(b).weak_eq(&tag(a)), weak, "{b} {a}");
        }
        assert!(tag("W/\"1\"").is_weak() && tag("w/\"1\"").is_weak());
        assert!(!tag("\"1\"").is_weak());
        assert_eq!(EntityTag::parse("  "), None);
    }

    /// An If-None-Match list: commas inside quoted tags belong to them; `*` matches any
    /// representation.
    #[test]
    fn if_none_match_lists() {
        let members: Vec<ListedTag<'_>> = tag_list(r#""a,b", W/"c" ,, *"#).collect();
        assert_eq!(
            members,
            [
                ListedTag::Tag(tag("\"a,b\"")),
                ListedTag::Tag(tag("W/\"c\"")),
                ListedTag::Any,
            ]
        );
        let current = tag("\"c\"");
        assert!(members[1].matches_weakly(Some(&current)));
        assert!(!members[0].matches_weakly(Some(&current)));
        assert!(ListedTag::Any.matches_weakly(None));
        assert!(!members[0].matches_weakly(None));
        // No quoted-pairs in entity-tags: a backslash does not escape the closing quote.
        assert_eq!(tag_list(r#""x\", "y""#).count(), 2);
    }
}
