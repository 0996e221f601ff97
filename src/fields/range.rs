//! Byte ranges (RFC 9110 §14): the `Range` a request asks for and the `Content-Range` a partial
//! response (or a 416) states.
//!
//! A `Range` is parsed in two steps, as §14.1.1 and §14.1.2 separate them: its syntax first —
//! a field this cache does not understand is ignored (§14.2), which is a different answer from
//! a range that cannot be satisfied (416) — then, against the representation's length, the
//! ranges that can be satisfied.

use std::fmt;

use http::{header, HeaderMap};

use super::list;

/// One byte-range-spec (§14.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RangeSpec {
    /// `first-last` or `first-`.
    FromTo { first: u64, last: Option<u64> },
    /// `-length`: the last `length` bytes.
    Suffix(u64),
}

/// A `Range: bytes=…` field as asked for, before it is applied to a representation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ByteRangeSet(Vec<RangeSpec>);

/// One satisfiable range, inclusive, within a representation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ByteSpan {
    pub(crate) first: u64,
    pub(crate) last: u64,
}

impl ByteRangeSet {
    /// The byte-range set of a `Range` field value, or `None` when the field is to be ignored
    /// (§14.2): another range unit, a byte-range-spec that is not valid (`5-1`, `a-b`), a set
    /// with no range at all (`bytes=`, §14.1.1: a set has at least one), or more than `max`
    /// ranges (§14.2 lets a server ignore many; stopping there also bounds the work).
    pub(crate) fn parse(field: &str, max: usize) -> Option<Self> {
        let (unit, set) = field.trim().split_once('=')?;
        // §14.1: range unit names are case-insensitive.
        if !unit.eq_ignore_ascii_case("bytes") {
            return None;
        }
        let mut specs = Vec::new();
        for member in list::members(set) {
            if specs.len() == max {
                return None;
            }
            specs.push(Self::spec(member)?);
        }
        (!specs.is_empty()).then_some(ByteRangeSet(specs))
    }

    fn spec(member: &str) -> Option<RangeSpec> {
        let (first, last) = member.split_once('-')?;
        if first.is_empty() {
            return Some(RangeSpec::Suffix(position(last)?));
        }
        let first = position(first)?;
        let last = match last {
            "" => None,
            last => Some(position(last)?),
        };
        // §14.1.1: a last-pos below the first-pos makes the spec invalid, not unsatisfiable.
        if last.is_some_and(|last| last < first) {
            return None;
        }
        Some(RangeSpec::FromTo { first, last })
    }

    /// §14.1.2: the ranges that can be satisfied from a representation of `len` bytes, in the
    /// order asked, each clipped to it (a last-pos past the end, a suffix longer than the
    /// whole); empty when none can be (a 416).
    pub(crate) fn satisfiable(&self, len: u64) -> Vec<ByteSpan> {
        self.0
            .iter()
            .filter_map(|spec| match *spec {
                RangeSpec::Suffix(n) if n == 0 || len == 0 => None,
                RangeSpec::Suffix(n) => Some(ByteSpan {
                    first: len.saturating_sub(n),
                    last: len - 1,
                }),
                RangeSpec::FromTo { first, .. } if first >= len => None,
                RangeSpec::FromTo { first, last } => Some(ByteSpan {
                    first,
                    last: last.map_or(len - 1, |last| last.min(len - 1)),
                }),
            })
            .collect()
    }
}

/// A position or length in a range field: `1*DIGIT` (§14.1.1, §14.4), nothing else — not the
/// sign or the spaces `u64::from_str` and a trim would let through, which would make
/// `bytes=+0-9` or `bytes=0 - 9` a range the origin, reading the field strictly, ignores.
fn position(digits: &str) -> Option<u64> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// A `Content-Range` (§14.4) with a known complete length: the only forms this cache stores,
/// serves or writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ContentRange {
    /// `bytes first-last/complete_length`: the part a 206 holds.
    Part {
        first: u64,
        last: u64,
        complete_length: u64,
    },
    /// `bytes */complete_length`: a 416's statement of the length no range fit.
    Unsatisfied { complete_length: u64 },
}

impl ContentRange {
    /// `None` for anything else: another unit, an unknown complete length (`/*`), a range
    /// that is not inside the length, nonsense.
    pub(crate) fn parse(value: &str) -> Option<Self> {
        let rest = value.trim().strip_prefix("bytes ")?;
        let (span, complete_length) = rest.split_once('/')?;
        let complete_length = position(complete_length)?;
        if span == "*" {
            return Some(ContentRange::Unsatisfied { complete_length });
        }
        let (first, last) = span.split_once('-')?;
        let (first, last) = (position(first)?, position(last)?);
        (first <= last && last < complete_length).then_some(ContentRange::Part {
            first,
            last,
            complete_length,
        })
    }

    /// The part of `span` of a representation of `complete_length` bytes.
    pub(crate) fn of_span(span: ByteSpan, complete_length: u64) -> Self {
        ContentRange::Part {
            first: span.first,
            last: span.last,
            complete_length,
        }
    }
}

/// The part a partial response holds, as its `Content-Range` names it: `(first, last,
/// complete_length)`; `None` when it names no such part.
pub(crate) fn content_range(headers: &HeaderMap) -> Option<(u64, u64, u64)> {
    let value = headers.get(header::CONTENT_RANGE)?.to_str().ok()?;
    match ContentRange::parse(value)? {
        ContentRange::Part {
            first,
            last,
            complete_length,
        } => Some((first, last, complete_length)),
        ContentRange::Unsatisfied { .. } => None,
    }
}

impl fmt::Display for ContentRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ContentRange::Part {
                first,
                last,
                complete_length,
            } => write!(f, "bytes {first}-{last}/{complete_length}"),
            ContentRange::Unsatisfied { complete_length } => {
                write!(f, "bytes */{complete_length}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn spans(field: &str, len: u64) -> Option<Vec<ByteSpan>> {
        ByteRangeSet::parse(field, 16).map(|set| set.satisfiable(len))
    }

    #[test]
    fn byte_ranges_per_rfc_9110_14_1_2() {
        let s = |f: &str| spans(f, 11);
        let span = |first, last| ByteSpan { first, last };
        assert_eq!(s("bytes=0-1"), Some(vec![span(0, 1)]));
        assert_eq!(s("bytes=1-"), Some(vec![span(1, 10)]));
        assert_eq!(s("bytes=-1"), Some(vec![span(10, 10)]));
        assert_eq!(s("bytes=-100"), Some(vec![span(0, 10)]));
        assert_eq!(s("bytes=5-100"), Some(vec![span(5, 10)]));
        assert_eq!(s("bytes= 0-1 , 4-5"), Some(vec![span(0, 1), span(4, 5)]));
        assert_eq!(s("bytes=11-"), Some(vec![]), "unsatisfiable");
        assert_eq!(s("bytes=-0"), Some(vec![]), "unsatisfiable");
        assert_eq!(s("bytes=5-1"), None, "invalid: ignored");
        assert_eq!(s("items=0-1"), None, "another unit: ignored");
        assert_eq!(s("bytes=a-b"), None);
        assert_eq!(spans("bytes=-5", 0), Some(vec![]));
        // §14.1.1: positions are 1*DIGIT, with no sign and no space inside a spec.
        for signed in [
            "bytes=+0-1",
            "bytes=0-+1",
            "bytes=-+1",
            "bytes=0 -1",
            "bytes=0- 1",
        ] {
            assert_eq!(s(signed), None, "{signed}");
        }
    }

    /// §14.1.1: a set has at least one range; §14.1: the unit is case-insensitive; §14.2: a
    /// set of more ranges than the cache answers is ignored; §14.1.2: the unsatisfiable
    /// members of a set are dropped, the others answered.
    #[test]
    fn empty_sets_units_and_many_ranges() {
        assert_eq!(spans("bytes=", 11), None);
        assert_eq!(spans("bytes=,", 11), None);
        assert_eq!(
            spans("Bytes=0-0", 11),
            Some(vec![ByteSpan { first: 0, last: 0 }])
        );
        let sixteen = format!("bytes={}", vec!["0-0"; 16].join(","));
        assert_eq!(spans(&sixteen, 11).map(|s| s.len()), Some(16));
        let seventeen = format!("bytes={}", vec!["0-0"; 17].join(","));
        assert_eq!(spans(&seventeen, 11), None);
        assert_eq!(
            spans("bytes=20-30, 0-1", 11),
            Some(vec![ByteSpan { first: 0, last: 1 }])
        );
    }

    /// §14.4: `bytes first-last/length` and `bytes */length`; anything else is not a range
    /// this cache stores or serves.
    #[test]
    fn content_range_per_rfc_9110_14_4() {
        let part = |first, last, complete_length| ContentRange::Part {
            first,
            last,
            complete_length,
        };
        assert_eq!(ContentRange::parse("bytes 0-9/20"), Some(part(0, 9, 20)));
        assert_eq!(ContentRange::parse(" bytes 5-9/10 "), Some(part(5, 9, 10)));
        assert_eq!(
            ContentRange::parse("bytes */10"),
            Some(ContentRange::Unsatisfied {
                complete_length: 10
            })
        );
        for nonsense in [
            "bytes 0-9/*",
            "bytes 5-4/10",
            "bytes 0-10/10",
            "items 0-1/10",
            "bytes 0-1",
            "bytes a-b/10",
            "bytes */*",
            "bytes +0-9/20",
            "bytes 0-+9/20",
            "bytes 0-9/+20",
            "bytes 5 - 9 / 10",
        ] {
            assert_eq!(ContentRange::parse(nonsense), None, "{nonsense}");
        }
        assert_eq!(part(0, 9, 20).to_string(), "bytes 0-9/20");
        assert_eq!(
            ContentRange::Unsatisfied { complete_length: 7 }.to_string(),
            "bytes */7"
        );
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_RANGE,
            HeaderValue::from_static("bytes 2-3/4"),
        );
        assert_eq!(content_range(&h), Some((2, 3, 4)));
        h.insert(header::CONTENT_RANGE, HeaderValue::from_static("bytes */4"));
        assert_eq!(content_range(&h), None);
    }
}
