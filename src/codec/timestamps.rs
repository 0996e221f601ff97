//! Times as an item holds them: ISO-8601 strings where a person reads them (the document, the
//! top-level console attributes), epoch seconds for DynamoDB's `ttl`, epoch milliseconds in the
//! binary metadata.
//!
//! ISO-8601 cannot write a year past 9999, so times are clamped there when written
//! ([`LATEST`]), and a stored time past it is corrupt when read.

use std::time::{SystemTime, UNIX_EPOCH};

use super::corrupt;
use crate::clock::LATEST;
use crate::StoreError;

/// ISO-8601 / RFC 3339 in UTC with milliseconds (times past year 9999 written as its end).
pub(super) fn iso(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t.min(UNIX_EPOCH + LATEST)).to_string()
}

pub(super) fn parse_iso(s: &str) -> Result<SystemTime, StoreError> {
    humantime::parse_rfc3339(s).map_err(|_| corrupt("bad timestamp"))
}

pub(super) fn epoch_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use aws_sdk_dynamodb::types::AttributeValue;

    use super::*;
    use crate::codec::fixtures::{encode_ok, response, sample};
    use crate::codec::ItemFormat;

    #[test]
    fn times_past_year_9999_never_panic() {
        // Found by fuzzing: a binary item claiming a time in the year 3,000,000 decoded, and
        // writing it back as ISO-8601 panicked.
        // Both formats write times as ISO-8601 at the top level, clamped to the last moment
        // of year 9999.
        let mut e = sample(b"x");
        e.created_at = UNIX_EPOCH + Duration::from_secs(100_000_000_000_000);
        e.expires = e.created_at;
        for format in [ItemFormat::Document, ItemFormat::Binary] {
            let back = response(encode_ok("k", &e, format, true)).unwrap();
            assert_eq!(back.created_at, UNIX_EPOCH + LATEST);
        }
        let mut item = encode_ok("k", &sample(b"x"), ItemFormat::Document, true);
        item.insert("ttl".into(), AttributeValue::N(u64::MAX.to_string()));
        assert!(matches!(response(item), Err(StoreError::Corrupt(_))));
    }

    #[test]
    fn times_past_u64_milliseconds_saturate_never_wrap() {
        let far = UNIX_EPOCH + Duration::from_secs(u64::MAX / 1000 + 1);
        let mut e = sample(b"x");
        e.created_at = far;
        for format in [ItemFormat::Document, ItemFormat::Binary] {
            let back = response(encode_ok("k", &e, format, true)).unwrap();
            assert_eq!(
                back.created_at,
                UNIX_EPOCH + LATEST,
                "never an earlier time"
            );
        }
    }
}
