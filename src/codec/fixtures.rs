//! Entries and helpers the codec's unit tests share.

use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, Version};

use aws_sdk_dynamodb::types::AttributeValue;

use super::{
    decode, encode, encoded_size, item_size, read_milliunits, write_milliunits, Compression,
    Decoded, Item, ItemFormat, VALUE_ATTR,
};
use crate::{StoreError, StoredResponse};

pub(super) fn sample(body: &[u8]) -> StoredResponse {
    let mut headers = HeaderMap::new();
    headers.append("set-cookie", HeaderValue::from_static("a=1"));
    headers.append("set-cookie", HeaderValue::from_static("b=2"));
    headers.append("x-bytes", HeaderValue::from_bytes(b"caf\xe9").unwrap());
    headers.append("content-type", HeaderValue::from_static("text/plain"));
    let mut request_headers = HeaderMap::new();
    request_headers.insert("authorization", HeaderValue::from_static("REDACTED"));
    let t = UNIX_EPOCH + Duration::from_millis(1_790_000_000_123);
    StoredResponse {
        status: StatusCode::OK,
        version: Version::HTTP_11,
        method: Method::GET,
        url: "https://example.com/a?b=1".into(),
        headers,
        request_headers,
        body: Bytes::copy_from_slice(body),
        created_at: t,
        expires: t + Duration::from_secs(60),
        heuristic_max_age: Some(60),
        generation: 7,
        retain_until: Some(UNIX_EPOCH + Duration::from_secs(1_790_000_100)),
        revision: 1_790_000_000_123_456_789,
        deferred: None,
    }
}

/// Uncompressed.
pub(super) fn encode_ok(key: &str, e: &StoredResponse, format: ItemFormat, ttl: bool) -> Item {
    encode(key, e, format, Compression::None, ttl).unwrap()
}

pub(super) fn response(item: Item) -> Result<StoredResponse, StoreError> {
    match decode(item)? {
        Decoded::Response(r) => Ok(r),
        Decoded::InObject(..) => panic!("an entry in an object"),
        Decoded::Tombstone(_) => panic!("a tombstone"),
    }
}

pub(super) fn assert_same(a: &StoredResponse, b: &StoredResponse) {
    assert_eq!(a.status, b.status);
    assert_eq!(a.version, b.version);
    assert_eq!(a.method, b.method);
    assert_eq!(a.url, b.url);
    assert_eq!(a.headers, b.headers);
    assert!(
        a.headers.keys().eq(b.headers.keys()),
        "the origin's order of header names is kept: {:?} vs {:?}",
        a.headers.keys().collect::<Vec<_>>(),
        b.headers.keys().collect::<Vec<_>>()
    );
    assert_eq!(a.request_headers, b.request_headers);
    assert_eq!(a.body, b.body);
    assert_eq!(a.created_at, b.created_at);
    assert_eq!(a.expires, b.expires);
    assert_eq!(a.heuristic_max_age, b.heuristic_max_age);
    assert_eq!(a.generation, b.generation);
    assert_eq!(a.retain_until, b.retain_until);
    assert_eq!(a.revision, b.revision);
}

/// Every format, uncompressed and (with the feature) compressing everything from one byte.
pub(super) fn layouts() -> Vec<(ItemFormat, Compression)> {
    let mut all = Vec::new();
    for format in [ItemFormat::Document, ItemFormat::Binary] {
        all.push((format, Compression::None));
        #[cfg(feature = "zstd")]
        all.push((
            format,
            Compression::Zstd {
                level: 3,
                min_body_size: 1,
            },
        ));
    }
    all
}

/// Numbers no version of this crate writes: at and past the integer types' ends, DynamoDB's
/// largest magnitude, negative, fractional, exponents, and N values that are no number at all
/// (another server, or a future one, may not check).
pub(super) const HOSTILE_NUMBERS: &[&str] = &[
    "18446744073709551615",
    "18446744073709551614",
    "18446744073709551616",
    "4294967295",
    "99999999999999999999999999999999999999",
    "9.9999999999999999999999999999999999999E+125",
    "-9.9999999999999999999999999999999999999E+125",
    "1e400",
    "-1",
    "-0",
    "0.5",
    "NaN",
    "",
    " 7",
    "+7",
];

/// Timestamps no version of this crate writes: past year 9999, before the epoch, in other
/// forms, none.
pub(super) const HOSTILE_TIMES: &[&str] = &[
    "9999-12-31T23:59:59.999Z",
    "+275760-09-13T00:00:00Z",
    "99999-01-01T00:00:00Z",
    "0000-01-01T00:00:00Z",
    "1969-12-31T23:59:59Z",
    "2026-02-30T00:00:00Z",
    "18446744073709551615",
    "",
];

/// `item`, read as every reader of the table reads it: sized (the store's capacity count and
/// the listings), decoded, and what it decodes to written back in every layout and read again.
/// Whatever it holds, none of this may panic.
pub(super) fn survives(item: Item) {
    let size = encoded_size(&item);
    let _ = (
        item_size(&item),
        read_milliunits(size),
        write_milliunits(size),
    );
    if let Ok(Decoded::Response(entry)) = decode(item) {
        for (format, compression) in layouts() {
            if let Ok(again) = encode("k", &entry, format, compression, true) {
                let _ = decode(again);
            }
        }
    }
}

/// `item` with `name` set to `value` inside its document (`value`).
pub(super) fn with_in_document(mut item: Item, name: &str, value: AttributeValue) -> Item {
    match item.get_mut(VALUE_ATTR) {
        Some(AttributeValue::M(doc)) => doc.insert(name.into(), value),
        _ => panic!("not a document item"),
    };
    item
}
