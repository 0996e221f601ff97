//! Entry ⇄ DynamoDB item, and the item's size by DynamoDB's own rules.
//!
//! Two formats, chosen with [`DynamoDbStoreBuilder::format`](crate::DynamoDbStoreBuilder::format):
//!
//! - [`ItemFormat::Document`] (default): `value` is a plain DynamoDB map that reads well in the
//!   AWS console — status, URL, method, headers (name → list of values, so repeated headers
//!   survive), `created_at` / `expires` as ISO-8601, the body as S when it is UTF-8 and as B
//!   otherwise, and a format version `v`.
//! - [`ItemFormat::Binary`]: `value` is a B holding the metadata encoded with bincode 2, and the
//!   body is its own top-level B attribute. bincode is no longer maintained upstream
//!   (RUSTSEC-2025-0141); it is used only here, so it can be swapped without touching anything
//!   else.
//!
//! In both, the body never goes through serde: it is one S or B attribute, and decoding hands its
//! buffer to [`Bytes`] without a copy. Both formats also write small top-level attributes for
//! console queries (`url`, `status`, `expires`) and, when TTL is on, `ttl` (epoch seconds).
//!
//! Anything that does not decode — an unknown version, a wrong attribute type, a truncated
//! binary value, an item another program wrote under the same key — is a
//! [`StoreError::Corrupt`], which the middleware treats as a miss.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Version};

use crate::clock::{since_epoch, LATEST};
use crate::{StoreError, StoredResponse};

/// A DynamoDB item: attribute name → value.
pub type Item = HashMap<String, AttributeValue>;

/// DynamoDB's maximum item size: 400 KB, counted as 409,600 bytes of attribute names and values.
pub const MAX_ITEM_SIZE: usize = 409_600;

/// The partition key attribute.
pub const KEY_ATTR: &str = "key";
/// The response document (M) or encoded metadata (B).
pub const VALUE_ATTR: &str = "value";
/// Epoch seconds after which DynamoDB may delete the item.
pub const TTL_ATTR: &str = "ttl";
/// The body, top-level, in the binary format.
pub const BODY_ATTR: &str = "body";
/// Console helpers.
pub const URL_ATTR: &str = "url";
/// Console helper: the status code.
pub const STATUS_ATTR: &str = "status";
/// Console helper: when the entry stops being fresh (ISO-8601).
pub const EXPIRES_ATTR: &str = "expires";
/// Console helper: when the response was received (ISO-8601).
pub const CREATED_ATTR: &str = "created_at";
/// Console helper: the item's size in bytes by DynamoDB's rules, not counting this attribute
/// (see [`encoded_size`] for the whole).
pub const SIZE_ATTR: &str = "size";

/// The document format's version; items with any other value are misses.
const DOCUMENT_VERSION: &str = "1";
/// First byte of a binary `value`.
const BINARY_TAG: u8 = 1;
#[cfg(feature = "zstd")]
const BINARY_ZSTD_TAG: u8 = 2;
/// Upper bound on what a binary metadata blob may claim to hold, so a corrupt length prefix
/// cannot make the decoder allocate without limit.
const BINCODE_LIMIT: usize = 1 << 20;

/// How a response is laid out in its DynamoDB item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ItemFormat {
    /// A plain DynamoDB map, readable in the AWS console (the default).
    #[default]
    Document,
    /// Compact: metadata encoded with bincode 2, body as raw bytes.
    Binary,
    /// [`Binary`](Self::Binary), with metadata and body compressed with zstd at the given level
    /// (feature `zstd`).
    #[cfg(feature = "zstd")]
    BinaryZstd {
        /// zstd compression level (1–22; 3 is zstd's default).
        level: i32,
    },
}

/// Builds the item for `entry` under partition key `key`. `ttl` decides whether the `ttl`
/// attribute is written.
pub fn encode(key: &str, entry: &StoredResponse, format: ItemFormat, ttl: bool) -> Item {
    let mut item = Item::with_capacity(7);
    item.insert(KEY_ATTR.into(), AttributeValue::S(key.to_owned()));
    item.insert(URL_ATTR.into(), AttributeValue::S(entry.url.clone()));
    item.insert(
        STATUS_ATTR.into(),
        AttributeValue::N(entry.status.as_u16().to_string()),
    );
    item.insert(EXPIRES_ATTR.into(), AttributeValue::S(iso(entry.expires)));
    item.insert(
        CREATED_ATTR.into(),
        AttributeValue::S(iso(entry.created_at)),
    );
    if ttl {
        if let Some(until) = entry.retain_until {
            item.insert(
                TTL_ATTR.into(),
                AttributeValue::N(epoch_secs(until).to_string()),
            );
        }
    }
    match format {
        ItemFormat::Document => {
            item.insert(VALUE_ATTR.into(), AttributeValue::M(document(entry)));
        }
        ItemFormat::Binary => {
            let mut value = vec![BINARY_TAG];
            value.extend(binary::encode(entry));
            item.insert(VALUE_ATTR.into(), AttributeValue::B(Blob::new(value)));
            item.insert(
                BODY_ATTR.into(),
                AttributeValue::B(Blob::new(entry.body.to_vec())),
            );
        }
        #[cfg(feature = "zstd")]
        ItemFormat::BinaryZstd { level } => {
            let mut value = vec![BINARY_ZSTD_TAG];
            value.extend(zstd::bulk::compress(&binary::encode(entry), level).unwrap_or_default());
            item.insert(VALUE_ATTR.into(), AttributeValue::B(Blob::new(value)));
            let body = zstd::bulk::compress(&entry.body, level).unwrap_or_default();
            item.insert(BODY_ATTR.into(), AttributeValue::B(Blob::new(body)));
        }
    }
    // Last: the size of everything else (a number cannot always state a size that includes
    // its own bytes: 489 takes 3 bytes, 490 takes 2). `encoded_size` adds it back exactly.
    let size = item_size(&item);
    item.insert(SIZE_ATTR.into(), AttributeValue::N(size.to_string()));
    item
}

fn document(entry: &StoredResponse) -> HashMap<String, AttributeValue> {
    let mut doc = HashMap::with_capacity(12);
    let s = |v: String| AttributeValue::S(v);
    doc.insert("v".into(), AttributeValue::N(DOCUMENT_VERSION.into()));
    doc.insert(
        "status".into(),
        AttributeValue::N(entry.status.as_u16().to_string()),
    );
    doc.insert("http_version".into(), s(version_text(entry.version).into()));
    doc.insert("method".into(), s(entry.method.as_str().into()));
    doc.insert("url".into(), s(entry.url.clone()));
    doc.insert("headers".into(), headers_doc(&entry.headers));
    doc.insert(
        "request_headers".into(),
        headers_doc(&entry.request_headers),
    );
    doc.insert("created_at".into(), s(iso(entry.created_at)));
    doc.insert("expires".into(), s(iso(entry.expires)));
    doc.insert(
        "generation".into(),
        AttributeValue::N(entry.generation.to_string()),
    );
    if let Some(secs) = entry.heuristic_max_age {
        doc.insert(
            "heuristic_max_age".into(),
            AttributeValue::N(secs.to_string()),
        );
    }
    let body = match std::str::from_utf8(&entry.body) {
        Ok(text) => AttributeValue::S(text.to_owned()),
        Err(_) => AttributeValue::B(Blob::new(entry.body.to_vec())),
    };
    doc.insert("body".into(), body);
    doc
}

/// name → list of values, each S when it is valid UTF-8, B otherwise (obs-text bytes kept).
fn headers_doc(headers: &HeaderMap) -> AttributeValue {
    let mut map = HashMap::with_capacity(headers.keys_len());
    for name in headers.keys() {
        let values = headers
            .get_all(name)
            .iter()
            .map(|v| match v.to_str() {
                Ok(text) => AttributeValue::S(text.to_owned()),
                Err(_) => AttributeValue::B(Blob::new(v.as_bytes().to_vec())),
            })
            .collect();
        map.insert(name.as_str().to_owned(), AttributeValue::L(values));
    }
    AttributeValue::M(map)
}

/// Decodes an item written by [`encode`] in either format.
pub fn decode(mut item: Item) -> Result<StoredResponse, StoreError> {
    let retain_until = match item.get(TTL_ATTR) {
        Some(AttributeValue::N(n)) => Some(
            n.parse()
                .ok()
                .and_then(|n| since_epoch(Duration::from_secs(n)))
                .ok_or_else(|| corrupt("`ttl` is not a number of seconds before year 10000"))?,
        ),
        Some(_) => return Err(corrupt("`ttl` is not N")),
        None => None,
    };
    match item.remove(VALUE_ATTR) {
        Some(AttributeValue::M(doc)) => from_document(doc, retain_until),
        Some(AttributeValue::B(blob)) => {
            let bytes = blob.into_inner();
            let body = match item.remove(BODY_ATTR) {
                Some(AttributeValue::B(b)) => b.into_inner(),
                _ => return Err(corrupt("binary item without a B `body`")),
            };
            match bytes.split_first() {
                Some((&BINARY_TAG, meta)) => binary::decode(meta, Bytes::from(body), retain_until),
                #[cfg(feature = "zstd")]
                Some((&BINARY_ZSTD_TAG, meta)) => {
                    let meta = zstd::bulk::decompress(meta, BINCODE_LIMIT)
                        .map_err(|e| corrupt(format!("zstd metadata: {e}")))?;
                    let body = zstd::stream::decode_all(&body[..])
                        .map_err(|e| corrupt(format!("zstd body: {e}")))?;
                    binary::decode(&meta, Bytes::from(body), retain_until)
                }
                Some((tag, _)) => Err(corrupt(format!("unknown binary format tag {tag}"))),
                None => Err(corrupt("empty binary value")),
            }
        }
        Some(_) => Err(corrupt("`value` is neither M nor B")),
        None => Err(corrupt("no `value` attribute")),
    }
}

fn corrupt(msg: impl Into<String>) -> StoreError {
    StoreError::Corrupt(msg.into())
}

fn from_document(
    mut doc: HashMap<String, AttributeValue>,
    retain_until: Option<SystemTime>,
) -> Result<StoredResponse, StoreError> {
    match doc.get("v") {
        Some(AttributeValue::N(v)) if v == DOCUMENT_VERSION => {}
        Some(AttributeValue::N(v)) => return Err(corrupt(format!("unknown format version {v}"))),
        _ => return Err(corrupt("no format version")),
    }
    let mut take_s = |name: &str| match doc.remove(name) {
        Some(AttributeValue::S(s)) => Ok(s),
        _ => Err(corrupt(format!("`{name}` missing or not S"))),
    };
    let method =
        Method::from_bytes(take_s("method")?.as_bytes()).map_err(|_| corrupt("bad method"))?;
    let url = take_s("url")?;
    let version = parse_version(&take_s("http_version")?)?;
    let created_at = parse_iso(&take_s("created_at")?)?;
    let expires = parse_iso(&take_s("expires")?)?;
    let status = match doc.remove("status") {
        Some(AttributeValue::N(n)) => parse_status(&n)?,
        _ => return Err(corrupt("`status` missing or not N")),
    };
    let generation = match doc.remove("generation") {
        Some(AttributeValue::N(n)) => n.parse().map_err(|_| corrupt("bad generation"))?,
        _ => return Err(corrupt("`generation` missing or not N")),
    };
    let heuristic_max_age = match doc.remove("heuristic_max_age") {
        Some(AttributeValue::N(n)) => {
            Some(n.parse().map_err(|_| corrupt("bad heuristic_max_age"))?)
        }
        None => None,
        Some(_) => return Err(corrupt("`heuristic_max_age` not N")),
    };
    let headers = headers_from_doc(doc.remove("headers"))?;
    let request_headers = headers_from_doc(doc.remove("request_headers"))?;
    let body = match doc.remove("body") {
        Some(AttributeValue::S(s)) => Bytes::from(s.into_bytes()),
        Some(AttributeValue::B(b)) => Bytes::from(b.into_inner()),
        _ => return Err(corrupt("`body` missing or neither S nor B")),
    };
    Ok(StoredResponse {
        status,
        version,
        method,
        url,
        headers,
        request_headers,
        body,
        created_at,
        expires,
        heuristic_max_age,
        generation,
        retain_until,
        revision: 0,
    })
}

fn headers_from_doc(value: Option<AttributeValue>) -> Result<HeaderMap, StoreError> {
    let Some(AttributeValue::M(map)) = value else {
        return Err(corrupt("headers missing or not M"));
    };
    let mut headers = HeaderMap::with_capacity(map.len());
    for (name, values) in map {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| corrupt(format!("bad header name {name:?}")))?;
        let AttributeValue::L(values) = values else {
            return Err(corrupt("header values not L"));
        };
        for v in values {
            let v = match v {
                AttributeValue::S(s) => HeaderValue::from_str(&s),
                AttributeValue::B(b) => HeaderValue::from_bytes(b.as_ref()),
                _ => return Err(corrupt("header value neither S nor B")),
            }
            .map_err(|_| corrupt("bad header value"))?;
            headers.append(name.clone(), v);
        }
    }
    Ok(headers)
}

fn parse_status(n: &str) -> Result<StatusCode, StoreError> {
    n.parse::<u16>()
        .ok()
        .and_then(|n| StatusCode::from_u16(n).ok())
        .ok_or_else(|| corrupt("bad status"))
}

fn version_text(v: Version) -> &'static str {
    match v {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/1.1",
    }
}

fn parse_version(s: &str) -> Result<Version, StoreError> {
    Ok(match s {
        "HTTP/0.9" => Version::HTTP_09,
        "HTTP/1.0" => Version::HTTP_10,
        "HTTP/1.1" => Version::HTTP_11,
        "HTTP/2.0" => Version::HTTP_2,
        "HTTP/3.0" => Version::HTTP_3,
        _ => return Err(corrupt("bad http_version")),
    })
}

/// ISO-8601 / RFC 3339 in UTC with milliseconds (times past year 9999 written as its end).
fn iso(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t.min(UNIX_EPOCH + LATEST)).to_string()
}

fn parse_iso(s: &str) -> Result<SystemTime, StoreError> {
    humantime::parse_rfc3339(s).map_err(|_| corrupt(format!("bad timestamp {s:?}")))
}

fn epoch_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn epoch_millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

mod binary {
    use super::*;
    use bincode::{Decode, Encode};

    #[derive(Encode, Decode)]
    struct Meta {
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
        let mut h = HeaderMap::with_capacity(p.len());
        for (k, v) in p {
            let k = HeaderName::from_bytes(k.as_bytes()).map_err(|_| corrupt("bad header name"))?;
            let v = HeaderValue::from_bytes(&v).map_err(|_| corrupt("bad header value"))?;
            h.append(k, v);
        }
        Ok(h)
    }

    fn version_byte(v: Version) -> u8 {
        match v {
            Version::HTTP_09 => 9,
            Version::HTTP_10 => 10,
            Version::HTTP_2 => 20,
            Version::HTTP_3 => 30,
            _ => 11,
        }
    }

    pub(super) fn encode(e: &StoredResponse) -> Vec<u8> {
        let meta = Meta {
            status: e.status.as_u16(),
            version: version_byte(e.version),
            method: e.method.as_str().to_owned(),
            url: e.url.clone(),
            headers: pairs(&e.headers),
            request_headers: pairs(&e.request_headers),
            created_at_ms: epoch_millis(e.created_at),
            expires_ms: epoch_millis(e.expires),
            heuristic_max_age: e.heuristic_max_age,
            generation: e.generation,
        };
        // Encoding plain owned data into a Vec cannot fail.
        bincode::encode_to_vec(&meta, config()).unwrap_or_default()
    }

    pub(super) fn decode(
        bytes: &[u8],
        body: Bytes,
        retain_until: Option<SystemTime>,
    ) -> Result<StoredResponse, StoreError> {
        let (meta, used): (Meta, usize) = bincode::decode_from_slice(bytes, config())
            .map_err(|e| corrupt(format!("bincode: {e}")))?;
        if used != bytes.len() {
            return Err(corrupt("trailing bytes after binary metadata"));
        }
        Ok(StoredResponse {
            status: StatusCode::from_u16(meta.status).map_err(|_| corrupt("bad status"))?,
            version: match meta.version {
                9 => Version::HTTP_09,
                10 => Version::HTTP_10,
                11 => Version::HTTP_11,
                20 => Version::HTTP_2,
                30 => Version::HTTP_3,
                _ => return Err(corrupt("bad version")),
            },
            method: Method::from_bytes(meta.method.as_bytes())
                .map_err(|_| corrupt("bad method"))?,
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
        })
    }
}

/// The whole size of an item made by [`encode`], from its `size` attribute (counted afresh
/// when it has none).
pub fn encoded_size(item: &Item) -> usize {
    match item.get(SIZE_ATTR) {
        Some(AttributeValue::N(n)) => match n.parse::<usize>() {
            Ok(rest) => rest + SIZE_ATTR.len() + number_size(n),
            Err(_) => item_size(item),
        },
        _ => item_size(item),
    }
}

/// The size DynamoDB counts for an item: the UTF-8 length of every attribute name plus the size
/// of every value, with 3 bytes of overhead per map or list, 1 byte per element, and numbers
/// counted by significant digits.
pub fn item_size(item: &Item) -> usize {
    item.iter()
        .map(|(name, v)| name.len() + value_size(v))
        .sum()
}

fn value_size(v: &AttributeValue) -> usize {
    match v {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => number_size(n),
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::Ss(ss) => ss.iter().map(String::len).sum(),
        AttributeValue::Ns(ns) => ns.iter().map(|n| number_size(n)).sum(),
        AttributeValue::Bs(bs) => bs.iter().map(|b| b.as_ref().len()).sum(),
        AttributeValue::L(items) => 3 + items.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
        AttributeValue::M(map) => {
            3 + map
                .iter()
                .map(|(k, v)| k.len() + 1 + value_size(v))
                .sum::<usize>()
        }
        // A type this SDK version does not know: count it generously.
        _ => MAX_ITEM_SIZE,
    }
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
    use super::*;

    pub(crate) fn sample(body: &[u8]) -> StoredResponse {
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
            revision: 0,
        }
    }

    fn assert_same(a: &StoredResponse, b: &StoredResponse) {
        assert_eq!(a.status, b.status);
        assert_eq!(a.version, b.version);
        assert_eq!(a.method, b.method);
        assert_eq!(a.url, b.url);
        assert_eq!(a.headers, b.headers);
        assert_eq!(a.request_headers, b.request_headers);
        assert_eq!(a.body, b.body);
        assert_eq!(a.created_at, b.created_at);
        assert_eq!(a.expires, b.expires);
        assert_eq!(a.heuristic_max_age, b.heuristic_max_age);
        assert_eq!(a.generation, b.generation);
        assert_eq!(a.retain_until, b.retain_until);
    }

    fn formats() -> Vec<ItemFormat> {
        vec![
            ItemFormat::Document,
            ItemFormat::Binary,
            #[cfg(feature = "zstd")]
            ItemFormat::BinaryZstd { level: 3 },
        ]
    }

    #[test]
    fn round_trips_text_and_binary_bodies_in_every_format() {
        for format in formats() {
            for body in [&b"hello"[..], &[0, 159, 146, 150, 255][..], &b""[..]] {
                let e = sample(body);
                let item = encode("k", &e, format, true);
                assert_same(&e, &decode(item).unwrap());
            }
        }
    }

    #[test]
    fn document_is_readable() {
        let item = encode("k", &sample(b"hello"), ItemFormat::Document, true);
        let AttributeValue::M(doc) = &item["value"] else {
            panic!()
        };
        assert_eq!(doc["body"], AttributeValue::S("hello".into()));
        assert_eq!(doc["v"], AttributeValue::N("1".into()));
        assert_eq!(
            doc["created_at"],
            AttributeValue::S("2026-09-21T14:13:20.123Z".into())
        );
        let AttributeValue::M(h) = &doc["headers"] else {
            panic!()
        };
        assert_eq!(
            h["set-cookie"],
            AttributeValue::L(vec![
                AttributeValue::S("a=1".into()),
                AttributeValue::S("b=2".into())
            ])
        );
        assert_eq!(
            h["x-bytes"],
            AttributeValue::L(vec![AttributeValue::B(Blob::new(b"caf\xe9".to_vec()))])
        );
        assert_eq!(item["ttl"], AttributeValue::N("1790000100".into()));
        let binary = encode("k", &sample(&[0xff]), ItemFormat::Document, false);
        let AttributeValue::M(doc) = &binary["value"] else {
            panic!()
        };
        assert_eq!(doc["body"], AttributeValue::B(Blob::new(vec![0xff])));
        assert!(!binary.contains_key("ttl"));
    }

    #[test]
    fn what_does_not_decode_is_corrupt_not_a_panic() {
        let good = encode("k", &sample(b"x"), ItemFormat::Document, true);
        let mut newer = good.clone();
        if let Some(AttributeValue::M(doc)) = newer.get_mut("value") {
            doc.insert("v".into(), AttributeValue::N("2".into()));
        }
        let mut wrong_type = good.clone();
        wrong_type.insert("value".into(), AttributeValue::S("x".into()));
        let mut no_value = good.clone();
        no_value.remove("value");
        let bin = encode("k", &sample(b"x"), ItemFormat::Binary, true);
        let mut truncated = bin.clone();
        if let Some(AttributeValue::B(b)) = truncated.get_mut("value") {
            let bytes = b.as_ref();
            *b = Blob::new(bytes[..bytes.len() / 2].to_vec());
        }
        let mut unknown_tag = bin.clone();
        unknown_tag.insert("value".into(), AttributeValue::B(Blob::new(vec![99, 1, 2])));
        for item in [newer, wrong_type, no_value, truncated, unknown_tag] {
            assert!(matches!(decode(item), Err(StoreError::Corrupt(_))));
        }
    }

    #[test]
    fn the_size_attribute_gives_the_exact_item_size() {
        for len in (0..3000).step_by(7).chain([99_990, 100_000, 409_000]) {
            let item = encode("k", &sample(&vec![b'a'; len]), ItemFormat::Document, true);
            assert_eq!(encoded_size(&item), item_size(&item), "{len}");
        }
    }

    #[test]
    fn times_past_year_9999_never_panic() {
        // Found by fuzzing: a binary item claiming a time in the year 3,000,000 decoded, and
        // writing it back as ISO-8601 panicked.
        let mut e = sample(b"x");
        e.created_at = UNIX_EPOCH + Duration::from_secs(100_000_000_000_000);
        e.expires = e.created_at;
        assert!(matches!(
            decode(encode("k", &e, ItemFormat::Binary, true)),
            Err(StoreError::Corrupt(_))
        ));
        let back = decode(encode("k", &e, ItemFormat::Document, true)).unwrap();
        assert_eq!(
            back.created_at,
            UNIX_EPOCH + LATEST - Duration::from_millis(0)
        );
        let mut item = encode("k", &sample(b"x"), ItemFormat::Document, true);
        item.insert("ttl".into(), AttributeValue::N(u64::MAX.to_string()));
        assert!(matches!(decode(item), Err(StoreError::Corrupt(_))));
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

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn header_value() -> impl Strategy<Value = Vec<u8>> {
            // Any bytes a header value may hold: visible ASCII, space, tab and obs-text.
            proptest::collection::vec(prop_oneof![0x20u8..0x7f, Just(b'\t'), 0x80u8..=0xff], 0..40)
                .prop_map(|mut v| {
                    // No leading or trailing whitespace: http trims it on parse.
                    while v.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
                        v.remove(0);
                    }
                    while v.last().is_some_and(|b| *b == b' ' || *b == b'\t') {
                        v.pop();
                    }
                    v
                })
        }

        fn headers() -> impl Strategy<Value = HeaderMap> {
            proptest::collection::vec(("[a-z][a-z0-9-]{0,15}", header_value()), 0..12).prop_map(
                |pairs| {
                    let mut h = HeaderMap::new();
                    for (name, value) in pairs {
                        h.append(
                            HeaderName::try_from(name).unwrap(),
                            HeaderValue::from_bytes(&value).unwrap(),
                        );
                    }
                    h
                },
            )
        }

        fn entry() -> impl Strategy<Value = StoredResponse> {
            (
                100u16..600,
                headers(),
                headers(),
                proptest::collection::vec(any::<u8>(), 0..2000),
                "[ -~]{0,200}",
                0u64..4_000_000_000_000,
                0u64..10_000_000,
                proptest::option::of(0u64..1_000_000_000),
                any::<u64>(),
                proptest::option::of(0u64..4_000_000_000),
                prop_oneof![Just(Method::GET), Just(Method::HEAD), Just(Method::POST)],
            )
                .prop_map(
                    |(
                        status,
                        headers,
                        request_headers,
                        body,
                        url,
                        created,
                        fresh,
                        heuristic,
                        generation,
                        ttl,
                        method,
                    )| {
                        StoredResponse {
                            status: StatusCode::from_u16(status).unwrap(),
                            version: Version::HTTP_11,
                            method,
                            url,
                            headers,
                            request_headers,
                            body: Bytes::from(body),
                            created_at: UNIX_EPOCH + Duration::from_millis(created),
                            expires: UNIX_EPOCH + Duration::from_millis(created + fresh),
                            heuristic_max_age: heuristic,
                            generation,
                            retain_until: ttl.map(|s| UNIX_EPOCH + Duration::from_secs(s)),
                            revision: 0,
                        }
                    },
                )
        }

        proptest! {
            #[test]
            fn every_entry_round_trips_in_every_format(e in entry()) {
                for format in formats() {
                    let back = decode(encode("k", &e, format, true)).unwrap();
                    assert_same(&e, &back);
                }
            }

            #[test]
            fn decoding_arbitrary_values_never_panics(
                bytes in proptest::collection::vec(any::<u8>(), 0..300),
                body in proptest::collection::vec(any::<u8>(), 0..50),
            ) {
                let mut item = Item::new();
                item.insert("value".into(), AttributeValue::B(Blob::new(bytes.clone())));
                item.insert("body".into(), AttributeValue::B(Blob::new(body)));
                let _ = decode(item);
                let mut tagged = vec![BINARY_TAG];
                tagged.extend(bytes);
                let mut item = Item::new();
                item.insert("value".into(), AttributeValue::B(Blob::new(tagged)));
                item.insert("body".into(), AttributeValue::B(Blob::new(vec![])));
                let _ = decode(item);
            }
        }
    }
}
