//! The binary format: `value` is a B holding a tag byte and the metadata encoded with
//! bincode 2; the body is its own top-level B attribute.
//!
//! Tag 2, written now, leaves `url`, `status`, `created_at` and `expires` to the item's top level
//! (where every version writes them for console queries), as the document's version 2 does;
//! tag 1 metadata held its own copy, and is still read from it.
//!
//! Compact, and cheap to decode, but unreadable in the console. bincode is no longer maintained
//! upstream (RUSTSEC-2025-0141); it is used only in this file, so another encoding can replace
//! it under a new tag without touching anything else. bincode is told a size limit
//! ([`BINCODE_LIMIT`]) so that a corrupt length prefix cannot make it allocate without bound.

use std::time::{Duration, SystemTime};

use bincode::{Decode, Encode};
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};

use super::document::take_listed;
use super::headers::{append, HeaderBudget};
use super::{corrupt, http_version, Item};
use crate::clock::since_epoch;
use crate::{StoreError, StoredResponse};

/// First byte of a binary `value`, as written now.
pub(super) const BINARY_TAG: u8 = 2;
/// First byte of a binary `value` whose metadata holds its own `url`, `status` and times.
pub(super) const BINARY_TAG_V1: u8 = 1;
/// Upper bound on what a binary metadata blob may claim to hold (and on what compressed
/// metadata may expand to), so a corrupt length prefix cannot make the decoder allocate
/// without limit.
const BINCODE_LIMIT: usize = 1 << 20;

/// Tag 2's metadata.
#[derive(Encode, Decode)]
struct Meta {
    version: u8,
    method: String,
    headers: Vec<(String, Vec<u8>)>,
    request_headers: Vec<(String, Vec<u8>)>,
    heuristic_max_age: Option<u64>,
    generation: u64,
}

/// Tag 1's metadata.
#[derive(Encode, Decode)]
struct MetaV1 {
    status: u16,
    version: u8,
    method: String,
    url: String,
    headers: Vec<(String, Vec<u8>)>,
    request_headers: Vec<(String, Vec<u8>)>,
    created_at_ms: u64,
    expires_ms: u64,
    heuristic_max_age: Option<u64>,
    generation: u64,
}

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<BINCODE_LIMIT>()
}

fn pairs(h: &HeaderMap) -> Vec<(String, Vec<u8>)> {
    h.iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.as_bytes().to_vec()))
        .collect()
}

fn unpairs(p: Vec<(String, Vec<u8>)>) -> Result<HeaderMap, StoreError> {
    let mut budget = HeaderBudget::new();
    let mut h = HeaderMap::new();
    for (k, v) in p {
        budget.take(&k, v.len())?;
        let k = HeaderName::from_bytes(k.as_bytes()).map_err(|_| corrupt("bad header name"))?;
        let v = HeaderValue::from_bytes(&v).map_err(|_| corrupt("bad header value"))?;
        append(&mut h, k, v)?;
    }
    Ok(h)
}

pub(super) fn encode(e: &StoredResponse) -> Result<Vec<u8>, StoreError> {
    let meta = Meta {
        version: http_version::byte(e.version),
        method: e.method.as_str().to_owned(),
        headers: pairs(&e.headers),
        request_headers: pairs(&e.request_headers),
        heuristic_max_age: e.heuristic_max_age,
        generation: e.generation,
    };
    // Fails only past the size limit the decoder applies too (a URL of a megabyte).
    bincode::encode_to_vec(&meta, config())
        .map_err(|_| StoreError::Encode(format!("metadata over {BINCODE_LIMIT} bytes")))
}

/// The entry of a tag 2 item: `bytes` its metadata, `item` the rest of the item, whose
/// top-level `url`, `status`, `created_at` and `expires` it reads.
pub(super) fn decode(
    bytes: &[u8],
    body: Bytes,
    retain_until: Option<SystemTime>,
    item: &mut Item,
) -> Result<StoredResponse, StoreError> {
    let meta: Meta = metadata(bytes)?;
    let listed = take_listed(item)?;
    Ok(StoredResponse {
        status: listed.status,
        version: http_version::from_byte(meta.version)?,
        method: Method::from_bytes(meta.method.as_bytes()).map_err(|_| corrupt("bad method"))?,
        url: listed.url,
        headers: unpairs(meta.headers)?,
        request_headers: unpairs(meta.request_headers)?,
        body,
        created_at: listed.created_at,
        expires: listed.expires,
        heuristic_max_age: meta.heuristic_max_age,
        generation: meta.generation,
        retain_until,
        revision: 0,
        deferred: None,
    })
}

/// bincode's metadata of one tag, all of `bytes`.
fn metadata<M: Decode<()>>(bytes: &[u8]) -> Result<M, StoreError> {
    // bincode's errors can quote what they read; say only that it failed.
    let (meta, used): (M, usize) = bincode::decode_from_slice(bytes, config())
        .map_err(|_| corrupt("binary metadata does not decode"))?;
    if used != bytes.len() {
        return Err(corrupt("trailing bytes after binary metadata"));
    }
    Ok(meta)
}

/// The entry of a tag 1 item, whose metadata holds everything.
pub(super) fn decode_v1(
    bytes: &[u8],
    body: Bytes,
    retain_until: Option<SystemTime>,
) -> Result<StoredResponse, StoreError> {
    let meta: MetaV1 = metadata(bytes)?;
    Ok(StoredResponse {
        status: StatusCode::from_u16(meta.status).map_err(|_| corrupt("bad status"))?,
        version: http_version::from_byte(meta.version)?,
        method: Method::from_bytes(meta.method.as_bytes()).map_err(|_| corrupt("bad method"))?,
        url: meta.url,
        headers: unpairs(meta.headers)?,
        request_headers: unpairs(meta.request_headers)?,
        body,
        created_at: since_epoch(Duration::from_millis(meta.created_at_ms))
            .ok_or_else(|| corrupt("created_at past year 9999"))?,
        expires: since_epoch(Duration::from_millis(meta.expires_ms))
            .ok_or_else(|| corrupt("expires past year 9999"))?,
        heuristic_max_age: meta.heuristic_max_age,
        generation: meta.generation,
        retain_until,
        revision: 0,
        deferred: None,
    })
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::primitives::Blob;
    use aws_sdk_dynamodb::types::AttributeValue;
    use proptest::prelude::*;

    use super::*;
    use std::time::UNIX_EPOCH;

    use crate::codec::document::AT_TOP;
    use crate::codec::fixtures::{assert_same, encode_ok, response, sample, survives};
    use crate::codec::{decode, Item, ItemFormat, MAX_HEADER_FIELDS};

    /// A binary item whose metadata holds `n` response headers, built field by field as
    /// bincode lays out the metadata struct.
    fn binary_with_headers(n: usize) -> Item {
        let config = bincode::config::standard();
        let pairs: Vec<(String, Vec<u8>)> =
            (0..n).map(|i| (format!("x-h{i}"), b"v".to_vec())).collect();
        let mut value = vec![BINARY_TAG_V1];
        value.extend(
            bincode::encode_to_vec((200u16, 11u8, "GET", "https://e.com/"), config).unwrap(),
        );
        value.extend(bincode::encode_to_vec(&pairs, config).unwrap());
        value.extend(
            bincode::encode_to_vec(
                (
                    Vec::<(String, Vec<u8>)>::new(),
                    0u64,
                    0u64,
                    None::<u64>,
                    0u64,
                ),
                config,
            )
            .unwrap(),
        );
        Item::from([
            ("value".to_owned(), AttributeValue::B(Blob::new(value))),
            ("body".to_owned(), AttributeValue::B(Blob::new(vec![]))),
        ])
    }

    #[test]
    fn binary_metadata_with_tens_of_thousands_of_headers_is_corrupt_not_a_panic() {
        assert_eq!(response(binary_with_headers(3)).unwrap().headers.len(), 3);
        // 20,000 fit bincode's allocation limit, then stop at the header bound; 25,000 stop at
        // bincode's limit.
        for n in [MAX_HEADER_FIELDS + 1, 20_000, 25_000] {
            let err = response(binary_with_headers(n)).unwrap_err();
            assert!(matches!(err, StoreError::Corrupt(_)), "{n}: {err:?}");
        }
        let err = response(binary_with_headers(20_000)).unwrap_err();
        assert!(err.to_string().contains("header fields"), "{err}");
    }

    #[test]
    fn hostile_binary_numbers_never_panic() {
        let mut extremes = Vec::new();
        for n in [0, 1, u64::MAX - 1, u64::MAX] {
            extremes.push((200, 11, n, 0, None, 0));
            extremes.push((200, 11, 0, n, None, 0));
            extremes.push((200, 11, 0, 0, Some(n), 0));
            extremes.push((200, 11, 0, 0, None, n));
        }
        for status in [0, 99, 1000, u16::MAX] {
            extremes.push((status, 11, 0, 0, None, 0));
        }
        for version in [0, 12, u8::MAX] {
            extremes.push((200, version, 0, 0, None, 0));
        }
        for (status, version, created_at_ms, expires_ms, heuristic_max_age, generation) in extremes
        {
            let meta = MetaV1 {
                status,
                version,
                method: "GET".into(),
                url: "https://e.com/".into(),
                headers: Vec::new(),
                request_headers: Vec::new(),
                created_at_ms,
                expires_ms,
                heuristic_max_age,
                generation,
            };
            let mut value = vec![BINARY_TAG_V1];
            value.extend(bincode::encode_to_vec(&meta, config()).unwrap());
            survives(Item::from([
                ("value".to_owned(), AttributeValue::B(Blob::new(value))),
                ("body".to_owned(), AttributeValue::B(Blob::new(vec![]))),
            ]));
        }
    }

    /// `item` (tag 2) as tag 1 wrote it: the metadata holds the top-level four too.
    fn as_tag_1(item: &Item, e: &StoredResponse) -> Item {
        let meta = MetaV1 {
            status: e.status.as_u16(),
            version: http_version::byte(e.version),
            method: e.method.as_str().to_owned(),
            url: e.url.clone(),
            headers: pairs(&e.headers),
            request_headers: pairs(&e.request_headers),
            created_at_ms: e.created_at.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64,
            expires_ms: e.expires.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64,
            heuristic_max_age: e.heuristic_max_age,
            generation: e.generation,
        };
        let mut value = vec![BINARY_TAG_V1];
        value.extend(bincode::encode_to_vec(&meta, config()).unwrap());
        let mut v1 = item.clone();
        v1.insert("value".into(), AttributeValue::B(Blob::new(value)));
        v1
    }

    #[test]
    fn tag_2_reads_the_top_level_four_and_tag_1_its_own_copy() {
        let e = sample(b"hello");
        let item = encode_ok("k", &e, ItemFormat::Binary, true);
        let AttributeValue::B(value) = &item["value"] else {
            panic!()
        };
        assert_eq!(value.as_ref()[0], BINARY_TAG);
        assert!(!value
            .as_ref()
            .windows(e.url.len())
            .any(|w| w == e.url.as_bytes()));
        assert_same(&response(item.clone()).unwrap(), &e);
        // Tag 1 reads its own copy: the top-level ones are console helpers there.
        let mut v1 = as_tag_1(&item, &e);
        v1.insert("url".into(), AttributeValue::S("https://elsewhere/".into()));
        v1.remove("status");
        assert_same(&response(v1).unwrap(), &e);
        // Tag 2 needs all four at the top, of their types.
        for name in AT_TOP {
            let mut missing = item.clone();
            missing.remove(name);
            assert!(
                matches!(response(missing), Err(StoreError::Corrupt(_))),
                "{name}"
            );
            let mut wrong = item.clone();
            wrong.insert(name.into(), AttributeValue::Bool(true));
            assert!(
                matches!(response(wrong), Err(StoreError::Corrupt(_))),
                "{name}"
            );
        }
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_values_never_panics(
            bytes in proptest::collection::vec(any::<u8>(), 0..300),
            body in proptest::collection::vec(any::<u8>(), 0..50),
        ) {
            let mut item = Item::new();
            item.insert("value".into(), AttributeValue::B(Blob::new(bytes.clone())));
            item.insert("body".into(), AttributeValue::B(Blob::new(body)));
            let _ = decode(item);
            for tag in [BINARY_TAG_V1, BINARY_TAG] {
                let mut tagged = vec![tag];
                tagged.extend(&bytes);
                let mut item = Item::new();
                item.insert("value".into(), AttributeValue::B(Blob::new(tagged)));
                item.insert("body".into(), AttributeValue::B(Blob::new(vec![])));
                let _ = decode(item);
            }
        }
    }
}
