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

    /// `item` with its `value` replaced by `tag` followed by `meta`.
    fn with_value(item: &Item, tag: u8, meta: &[u8]) -> Item {
        let mut value = vec![tag];
        value.extend_from_slice(meta);
        let mut out = item.clone();
        out.insert("value".into(), AttributeValue::B(Blob::new(value)));
        out
    }

    /// The metadata bytes (after the tag) of a binary `item`.
    fn meta_of(item: &Item) -> Vec<u8> {
        let AttributeValue::B(value) = &item["value"] else {
            panic!("not binary")
        };
        value.as_ref()[1..].to_vec()
    }

    #[test]
    fn metadata_of_one_tag_under_the_other_is_corrupt() {
        let e = sample(b"hello");
        let item = encode_ok("k", &e, ItemFormat::Binary, true);
        let v1 = as_tag_1(&item, &e);
        let v1_meta = meta_of(&v1);
        let v2_meta = meta_of(&item);
        // Tag 1's metadata (holding its own four) labelled tag 2, beside the genuine top-level
        // four, and tag 2's labelled tag 1: neither reads.
        for hostile in [
            with_value(&item, BINARY_TAG, &v1_meta),
            with_value(&item, BINARY_TAG_V1, &v2_meta),
        ] {
            assert!(
                matches!(response(hostile.clone()), Err(StoreError::Corrupt(_))),
                "{hostile:?}"
            );
        }
        // Every status a tag 1 item may hold, under tag 2: its first byte is never a
        // version tag 2 reads.
        for status in [100u16, 200, 204, 250, 251, 299, 304, 404, 599, 999] {
            let meta = MetaV1 {
                status,
                version: 11,
                method: "GET".into(),
                url: e.url.clone(),
                headers: Vec::new(),
                request_headers: Vec::new(),
                created_at_ms: 0,
                expires_ms: 0,
                heuristic_max_age: None,
                generation: 0,
            };
            let bytes = bincode::encode_to_vec(&meta, config()).unwrap();
            assert!(
                matches!(
                    response(with_value(&item, BINARY_TAG, &bytes)),
                    Err(StoreError::Corrupt(_))
                ),
                "{status}"
            );
        }
    }

    #[test]
    fn tag_2_metadata_followed_by_anything_is_corrupt() {
        let e = sample(b"hello");
        let item = encode_ok("k", &e, ItemFormat::Binary, true);
        let meta = meta_of(&item);
        assert!(response(with_value(&item, BINARY_TAG, &meta)).is_ok());
        let url = bincode::encode_to_vec(e.url.as_str(), config()).unwrap();
        for tail in [
            vec![0u8],
            vec![BINARY_TAG],
            meta.clone(),
            url,
            bincode::encode_to_vec(200u16, config()).unwrap(),
        ] {
            let mut bytes = meta.clone();
            bytes.extend(&tail);
            assert!(matches!(
                response(with_value(&item, BINARY_TAG, &bytes)),
                Err(StoreError::Corrupt(_))
            ));
        }
        // Truncated at every length.
        for len in 0..meta.len() {
            assert!(matches!(
                response(with_value(&item, BINARY_TAG, &meta[..len])),
                Err(StoreError::Corrupt(_))
            ));
        }
    }

    #[test]
    fn a_tag_1_item_without_its_top_level_four_reads_its_own_copy() {
        let e = sample(b"hello");
        let item = encode_ok("k", &e, ItemFormat::Binary, true);
        let mut v1 = as_tag_1(&item, &e);
        for name in AT_TOP {
            v1.remove(name);
        }
        v1.remove("size");
        assert_same(&response(v1.clone()).unwrap(), &e);
        // And whatever wrong the top holds changes nothing it reads.
        let mut lying = v1.clone();
        lying.insert(
            "url".into(),
            AttributeValue::S("https://evil.example/".into()),
        );
        lying.insert("status".into(), AttributeValue::N("500".into()));
        lying.insert(
            "created_at".into(),
            AttributeValue::S("2001-01-01T00:00:00Z".into()),
        );
        lying.insert(
            "expires".into(),
            AttributeValue::S("9999-12-31T23:59:59Z".into()),
        );
        assert_same(&response(lying).unwrap(), &e);
    }

    #[test]
    fn tag_2_top_level_four_of_wrong_types_or_values_are_corrupt() {
        let e = sample(b"hello");
        let item = encode_ok("k", &e, ItemFormat::Binary, true);
        let s = |v: &str| AttributeValue::S(v.into());
        let n = |v: &str| AttributeValue::N(v.into());
        let wrong_types = || {
            vec![
                AttributeValue::Bool(true),
                AttributeValue::Null(true),
                AttributeValue::B(Blob::new(b"x".to_vec())),
                AttributeValue::L(vec![]),
                AttributeValue::M(Default::default()),
                AttributeValue::Ss(vec!["a".into()]),
                AttributeValue::Ns(vec!["200".into()]),
            ]
        };
        let mut cases: Vec<(&str, AttributeValue)> = Vec::new();
        for v in wrong_types() {
            for name in AT_TOP {
                cases.push((name, v.clone()));
            }
        }
        cases.push(("url", n("1")));
        for v in [
            "", "99", "1000", "65536", "-200", "200.5", "2e2", "NaN", "abc",
        ] {
            cases.push(("status", n(v)));
        }
        cases.push(("status", s("200")));
        for t in [
            "",
            "not a time",
            "0000-01-01T00:00:00Z",
            "1969-12-31T23:59:59Z",
            "2026-02-30T00:00:00Z",
            "10000-01-01T00:00:00Z",
            "+275760-09-13T00:00:00Z",
            "2026-09-21T14:13:20.123+01:00",
        ] {
            cases.push(("created_at", s(t)));
            cases.push(("expires", s(t)));
        }
        cases.push(("created_at", n("1790000000")));
        cases.push(("expires", n("1790000000")));
        for (name, value) in cases {
            let mut hostile = item.clone();
            hostile.insert(name.into(), value.clone());
            match response(hostile.clone()) {
                Err(StoreError::Corrupt(_)) => {}
                other => panic!("`{name}` = {value:?}: {other:?}"),
            }
            survives(hostile);
        }
    }

    #[test]
    fn tag_2_hostile_metadata_numbers_never_panic() {
        let e = sample(b"hello");
        let item = encode_ok("k", &e, ItemFormat::Binary, true);
        let mut metas = Vec::new();
        for n in [0, 1, u64::MAX - 1, u64::MAX] {
            metas.push((11u8, Some(n), 0u64));
            metas.push((11, None, n));
        }
        for version in [0, 1, 2, 12, 19, 21, 29, 31, u8::MAX] {
            metas.push((version, None, 0));
        }
        for (version, heuristic_max_age, generation) in metas {
            let meta = Meta {
                version,
                method: "GET".into(),
                headers: Vec::new(),
                request_headers: Vec::new(),
                heuristic_max_age,
                generation,
            };
            let bytes = bincode::encode_to_vec(&meta, config()).unwrap();
            let hostile = with_value(&item, BINARY_TAG, &bytes);
            if let Ok(read) = response(hostile.clone()) {
                assert_eq!(read.heuristic_max_age, heuristic_max_age);
                assert_eq!(read.generation, generation);
                assert_eq!(read.url, e.url);
            }
            survives(hostile);
        }
        // Times at the very end of what the top level can say.
        for t in [
            "9999-12-31T23:59:59Z",
            "9999-12-31T23:59:59.999999999Z",
            "9999-12-31T23:59:60Z",
            "1970-01-01T00:00:00Z",
        ] {
            for name in ["created_at", "expires"] {
                let mut hostile = item.clone();
                hostile.insert(name.into(), AttributeValue::S(t.into()));
                survives(hostile);
            }
        }
    }

    #[test]
    fn tag_2_items_mixed_with_tombstone_or_object_attributes_are_corrupt() {
        use crate::codec::{encode_pointing, BodyObject, Decoded};
        let e = sample(b"hello");
        let item = encode_ok("k", &e, ItemFormat::Binary, true);
        let object = BodyObject::new("bucket", "http-cache/k/7", 5, [1; 32]);
        let pointing = encode_pointing("k", &e, &object, ItemFormat::Binary, true).unwrap();
        // The pointing item reads the top-level four, its body empty.
        match decode(pointing.clone()).unwrap() {
            Decoded::InObject(read, o) => {
                assert_eq!(o, object);
                assert_eq!(read.url, e.url);
                assert_eq!(read.status, e.status);
                assert_eq!(read.created_at, e.created_at);
                assert_eq!(read.expires, e.expires);
                assert!(read.body.is_empty());
            }
            _ => panic!("not an entry in an object"),
        }
        let mut hostile = Vec::new();
        for marker in [
            AttributeValue::Bool(true),
            AttributeValue::Bool(false),
            AttributeValue::S("true".into()),
        ] {
            for good in [&item, &pointing] {
                let mut t = good.clone();
                t.insert("tombstone".into(), marker.clone());
                hostile.push(t);
            }
        }
        let zstd = || AttributeValue::S("zstd".into());
        // A body beside the object, an encoding beside it, a pointing item whose top-level
        // four are missing.
        let mut both = pointing.clone();
        both.insert("body".into(), AttributeValue::B(Blob::new(b"x".to_vec())));
        hostile.push(both);
        let mut enc = pointing.clone();
        enc.insert("body_encoding".into(), zstd());
        hostile.push(enc);
        for name in AT_TOP {
            let mut p = pointing.clone();
            p.remove(name);
            hostile.push(p);
        }
        // Inline body: of the wrong type, missing, with an unknown or wrongly typed encoding,
        // or said to be zstd when it is not.
        let mut s_body = item.clone();
        s_body.insert("body".into(), AttributeValue::S("hello".into()));
        hostile.push(s_body);
        let mut no_body = item.clone();
        no_body.remove("body");
        hostile.push(no_body);
        for encoding in [
            AttributeValue::S("gzip".into()),
            AttributeValue::S("ZSTD".into()),
            AttributeValue::S("".into()),
            AttributeValue::B(Blob::new(b"zstd".to_vec())),
            AttributeValue::Null(true),
            zstd(),
        ] {
            let mut i = item.clone();
            i.insert("body_encoding".into(), encoding);
            hostile.push(i);
        }
        for h in hostile {
            assert!(
                matches!(decode(h.clone()), Err(StoreError::Corrupt(_))),
                "{h:?}"
            );
        }
    }

    #[test]
    fn binary_corrupt_messages_never_quote_the_item() {
        const SECRET: &str = "s3cr3t-token-value";
        let e = sample(b"hello");
        let item = encode_ok("k", &e, ItemFormat::Binary, true);
        let mut hostile = Vec::new();
        for (name, value) in [
            ("url", AttributeValue::N(SECRET.into())),
            ("status", AttributeValue::N(SECRET.into())),
            ("status", AttributeValue::S(SECRET.into())),
            ("created_at", AttributeValue::S(SECRET.into())),
            (
                "expires",
                AttributeValue::S(format!("2026-01-01T00:00:00.{SECRET}Z")),
            ),
            ("body_encoding", AttributeValue::S(SECRET.into())),
            ("revision", AttributeValue::N(SECRET.into())),
            ("ttl", AttributeValue::N(SECRET.into())),
        ] {
            let mut h = item.clone();
            h.insert(name.into(), value);
            hostile.push(h);
        }
        let meta_with = |method: &str, headers: Vec<(String, Vec<u8>)>| Meta {
            version: 11,
            method: method.into(),
            headers,
            request_headers: Vec::new(),
            heuristic_max_age: None,
            generation: 0,
        };
        for meta in [
            meta_with(&format!("{SECRET} \n"), Vec::new()),
            meta_with("GET", vec![(format!("{SECRET} bad"), b"v".to_vec())]),
            meta_with(
                "GET",
                vec![("x-a".into(), format!("{SECRET}\n").into_bytes())],
            ),
            Meta {
                version: 77,
                ..meta_with("GET", Vec::new())
            },
        ] {
            let bytes = bincode::encode_to_vec(&meta, config()).unwrap();
            hostile.push(with_value(&item, BINARY_TAG, &bytes));
            let mut trailing = bytes.clone();
            trailing.extend(SECRET.as_bytes());
            hostile.push(with_value(&item, BINARY_TAG, &trailing));
        }
        for tag in [0u8, 3, b's', 255] {
            let mut bytes = SECRET.as_bytes().to_vec();
            bytes.insert(0, tag);
            hostile.push(with_value(&item, tag, &bytes[1..]));
        }
        for h in hostile {
            let err = response(h).unwrap_err();
            assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
            assert!(!err.to_string().contains(SECRET), "{err}");
            assert!(!format!("{err:?}").contains(SECRET), "{err:?}");
        }
    }

    #[test]
    fn tag_2_length_prefixes_and_header_counts_past_the_bounds_are_corrupt() {
        let e = sample(b"hello");
        let item = encode_ok("k", &e, ItemFormat::Binary, true);
        let c = bincode::config::standard();
        let enc = |v: &dyn Fn(&mut Vec<u8>)| {
            let mut out = Vec::new();
            v(&mut out);
            out
        };
        let mut hostile = Vec::new();
        // A method, a header list, a header name claiming 2^64 − 1 elements, and nothing
        // behind them.
        hostile.push(enc(&|o| {
            o.extend(bincode::encode_to_vec(11u8, c).unwrap());
            o.extend(bincode::encode_to_vec(u64::MAX, c).unwrap());
        }));
        hostile.push(enc(&|o| {
            o.extend(bincode::encode_to_vec((11u8, "GET"), c).unwrap());
            o.extend(bincode::encode_to_vec(u64::MAX, c).unwrap());
        }));
        hostile.push(enc(&|o| {
            o.extend(bincode::encode_to_vec((11u8, "GET", 1u64), c).unwrap());
            o.extend(bincode::encode_to_vec(u64::MAX, c).unwrap());
        }));
        // Request headers claiming (1 << 20) entries, just past the limit.
        hostile.push(enc(&|o| {
            o.extend(bincode::encode_to_vec((11u8, "GET", 0u64), c).unwrap());
            o.extend(bincode::encode_to_vec(1u64 << 20, c).unwrap());
        }));
        for n in [MAX_HEADER_FIELDS + 1, 20_000, 25_000] {
            let many: Vec<(String, Vec<u8>)> =
                (0..n).map(|i| (format!("x-h{i}"), b"v".to_vec())).collect();
            for (headers, request_headers) in [(many.clone(), Vec::new()), (Vec::new(), many)] {
                let meta = Meta {
                    version: 11,
                    method: "GET".into(),
                    headers,
                    request_headers,
                    heuristic_max_age: None,
                    generation: 0,
                };
                hostile.push(bincode::encode_to_vec(&meta, c).unwrap());
            }
        }
        for bytes in hostile {
            let err = response(with_value(&item, BINARY_TAG, &bytes)).unwrap_err();
            assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
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
