//! DynamoDB's item size and billing rules.
//!
//! The store decides whether an item fits (409,600 bytes) before it sends the PutItem, and
//! counts the capacity units a call costs when DynamoDB does not report them, so both follow
//! DynamoDB's documented rules rather than the length of any serialization: attribute names
//! count as UTF-8, maps and lists carry overhead, and numbers count by significant digits.

use aws_sdk_dynamodb::types::AttributeValue;

use super::{Item, SIZE_ATTR};

/// DynamoDB's maximum item size: 400 KB, counted as 409,600 bytes of attribute names and values.
pub const MAX_ITEM_SIZE: usize = 409_600;

/// The read units, in thousandths, of an eventually consistent GetItem returning an item of
/// `size` bytes (or none: `size` 0): half a unit per 4 KB or part of it, at least half a unit.
pub fn read_milliunits(size: usize) -> u64 {
    units(size.div_ceil(4096)).saturating_mul(500)
}

/// The write units, in thousandths, of a PutItem or DeleteItem of an item of `size` bytes: one
/// unit per kilobyte or part of it, at least one. (DynamoDB counts the larger of the item
/// written and the item it replaces.)
pub fn write_milliunits(size: usize) -> u64 {
    units(size.div_ceil(1024)).saturating_mul(1000)
}

/// A count of units, at least one.
fn units(n: usize) -> u64 {
    u64::try_from(n.max(1)).unwrap_or(u64::MAX)
}

/// The whole size of an item made by [`encode`](super::encode), from its `size` attribute
/// (counted afresh when it has none). Anyone may have written that attribute: a claim near the
/// top of `usize` saturates there rather than wrapping to a small size (or, in a debug build,
/// panicking).
pub fn encoded_size(item: &Item) -> usize {
    match item.get(SIZE_ATTR) {
        Some(AttributeValue::N(n)) => match n.parse::<usize>() {
            Ok(rest) => rest
                .saturating_add(SIZE_ATTR.len())
                .saturating_add(number_size(n)),
            Err(_) => item_size(item),
        },
        _ => item_size(item),
    }
}

/// The size DynamoDB counts for an item: the UTF-8 length of every attribute name plus the size
/// of every value, with 3 bytes of overhead per map or list, 1 byte per element, and numbers
/// counted by significant digits.
///
/// Saturating: the item may have been written by anyone, and a size that wrapped would let it
/// pass for a small one.
pub fn item_size(item: &Item) -> usize {
    total(
        item.iter()
            .map(|(name, v)| name.len().saturating_add(value_size(v))),
    )
}

fn value_size(v: &AttributeValue) -> usize {
    match v {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => number_size(n),
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::Ss(ss) => total(ss.iter().map(String::len)),
        AttributeValue::Ns(ns) => total(ns.iter().map(|n| number_size(n))),
        AttributeValue::Bs(bs) => total(bs.iter().map(|b| b.as_ref().len())),
        AttributeValue::L(items) => {
            3usize.saturating_add(total(items.iter().map(|v| value_size(v).saturating_add(1))))
        }
        AttributeValue::M(map) => 3usize.saturating_add(total(
            map.iter()
                .map(|(k, v)| k.len().saturating_add(1).saturating_add(value_size(v))),
        )),
        // A type this SDK version does not know: count it generously.
        _ => MAX_ITEM_SIZE,
    }
}

/// The sum of `sizes`, saturating at `usize::MAX`.
fn total(sizes: impl Iterator<Item = usize>) -> usize {
    sizes.fold(0, usize::saturating_add)
}

/// A number's size: one byte per two significant digits on each side of the decimal point
/// (leading and trailing zeros do not count), plus one, plus one for a minus sign.
fn number_size(n: &str) -> usize {
    let n = n.trim();
    let negative = n.starts_with('-');
    let n = n.trim_start_matches(['-', '+']);
    let (int, frac) = n.split_once('.').unwrap_or((n, ""));
    let int = int.trim_start_matches('0');
    let frac = frac.trim_end_matches('0');
    // Without a fraction, trailing zeros of the integer part are not significant either.
    let int_digits = if frac.is_empty() {
        int.trim_end_matches('0').len()
    } else {
        int.len()
    };
    let frac_digits = if int.is_empty() {
        frac.trim_start_matches('0').len()
    } else {
        frac.len()
    };
    let significant = int_digits + frac_digits;
    int_digits.div_ceil(2) + frac_digits.div_ceil(2) + 1 + usize::from(negative && significant > 0)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use aws_sdk_dynamodb::primitives::Blob;

    use super::*;
    use crate::codec::fixtures::{encode_ok, sample, survives, HOSTILE_NUMBERS};
    use crate::codec::ItemFormat;

    #[test]
    fn the_size_attribute_gives_the_exact_item_size() {
        for len in (0..3000).step_by(7).chain([99_990, 100_000, 409_000]) {
            let item = encode_ok("k", &sample(&vec![b'a'; len]), ItemFormat::Document, true);
            assert_eq!(encoded_size(&item), item_size(&item), "{len}");
        }
    }

    #[test]
    fn number_sizes_follow_dynamodb() {
        for (n, size) in [
            ("0", 1),
            ("1", 2),
            ("12", 2),
            ("123", 3),
            ("1000", 2),
            ("1002", 3),
            ("200", 2),
            ("1790000100", 5),
            ("-42", 3),
            ("0.5", 2),
            ("1.25", 3),
        ] {
            assert_eq!(number_size(n), size, "{n}");
        }
    }

    #[test]
    fn item_size_counts_names_values_and_overheads() {
        let mut item = Item::new();
        item.insert("key".into(), AttributeValue::S("abc".into())); // 3 + 3
        item.insert("n".into(), AttributeValue::N("123".into())); // 1 + 3
        item.insert(
            "m".into(),
            AttributeValue::M(HashMap::from([(
                "l".into(),
                AttributeValue::L(vec![AttributeValue::B(Blob::new(vec![1, 2]))]),
            )])),
        ); // 1 + 3 + (1 + 1 + (3 + 1 + 2))
        assert_eq!(item_size(&item), 6 + 4 + 12);
    }

    #[test]
    fn a_hostile_size_attribute_never_overflows() {
        let good = encode_ok("k", &sample(b"x"), ItemFormat::Document, true);
        for claimed in HOSTILE_NUMBERS {
            let mut item = good.clone();
            item.insert(SIZE_ATTR.into(), AttributeValue::N((*claimed).into()));
            survives(item.clone());
            let size = encoded_size(&item);
            match claimed.parse::<usize>() {
                // A claim near the top saturates; it never wraps to a small size.
                Ok(n) => assert!(size >= n, "{claimed}: {size}"),
                // Not a size: counted afresh.
                Err(_) => assert_eq!(size, item_size(&item), "{claimed}"),
            }
        }
        assert!(write_milliunits(usize::MAX) >= write_milliunits(MAX_ITEM_SIZE));
        assert!(read_milliunits(usize::MAX) >= read_milliunits(MAX_ITEM_SIZE));
    }
}
