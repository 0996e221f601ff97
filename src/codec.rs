//! Entry ⇄ DynamoDB item, and the item's size by DynamoDB's own rules.
//!
//! **Not part of the crate's semver surface.** This module is public only so that the
//! command-line tool, the fuzz target and the tests can reach the item layout; it is hidden
//! from the documentation and may change in any release. Use
//! [`ItemFormat`](crate::ItemFormat) (re-exported at the crate root) to choose a format.
//!
//! Two formats, chosen with [`DynamoDbStoreBuilder::format`](crate::DynamoDbStoreBuilder::format):
//!
//! - [`ItemFormat::Document`] (default): `value` is a plain DynamoDB map that reads well in the
//!   AWS console — status, URL, method, headers (name → list of values, so repeated headers
//!   survive, and `header_order`, the names in the origin's order, since a map has none),
//!   `created_at` / `expires` as ISO-8601, the body as S when it is UTF-8 and as B
//!   otherwise, and a format version `v`.
//! - [`ItemFormat::Binary`]: `value` is a B holding the metadata encoded with bincode 2, and the
//!   body is its own top-level B attribute. bincode is no longer maintained upstream
//!   (RUSTSEC-2025-0141); it is used only here, so it can be swapped without touching anything
//!   else.
//!
//! In both, the body never goes through serde: it is one S or B attribute, and decoding hands its
//! buffer to [`Bytes`] without a copy. With [`Compression::Zstd`] a body of at least
//! `min_body_size` bytes is stored as a zstd frame (B) when that is smaller, and the item says so
//! beside the body: `body_encoding` = `"zstd"` (in the document's map, or top-level next to the
//! binary format's `body`). Smaller bodies, and bodies zstd cannot shrink, are stored as they are,
//! so short text stays readable in the console. Both formats also write small top-level attributes for
//! console queries and maintenance (`url`, `status`, `created_at`, `expires`, and `size`, the
//! item's size by DynamoDB's rules), the entry's `revision` (N, read by the conditional writes
//! that keep writes ordered) and, when TTL is on, `ttl` (epoch seconds). The document also holds
//! `generation` (the URL's primary-entry generation, shared by its Vary variants) and the
//! redacted `request_headers` the caching rules read.
//!
//! An invalidated key holds a *tombstone* instead: `key`, `revision`, `tombstone` = true,
//! `created_at` / `expires` (when it was written and when it stops mattering) and `ttl`. It
//! decodes as [`Decoded::Tombstone`], which a store reads as "nothing stored".
//!
//! Anything read from the table may have been written by anyone, so decoding is bounded and
//! never panics: an unknown version, a wrong attribute type, a truncated binary value, more than
//! [`MAX_HEADER_FIELDS`] header fields or [`MAX_HEADER_BYTES`] of them, a compressed body that
//! would expand past [`MAX_BODY_SIZE`], an unknown `body_encoding` — each is a [`StoreError::Corrupt`], which the middleware
//! treats as a miss. Its message says what is wrong, never what the item holds.

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

/// The most header fields (values, counting each repeated one) one header map of an entry may
/// hold, in the response headers and in the stored request headers alike. reqwest refuses more
/// than 100 response headers unless told otherwise; this leaves room for a client configured
/// with up to 10,000 (`http1_max_headers`), and stays well below what `http::HeaderMap` can hold
/// (32,768 fields; asking it for a capacity of more than 24,576 names panics, which is what an
/// item with 25,000 header names used to do to a request task).
pub const MAX_HEADER_FIELDS: usize = 10_000;

/// The most bytes (names plus values) one header map of an entry may hold. An item is at most
/// [`MAX_ITEM_SIZE`], so no stored entry has more; the bound matters for compressed metadata.
pub const MAX_HEADER_BYTES: usize = MAX_ITEM_SIZE;

/// The largest body a compressed item may hold, uncompressed: 4 MiB, ten times DynamoDB's item
/// limit (JSON rarely compresses better than that). A store that compresses never writes a
/// larger body, and a "zstd bomb" written by someone else stops here when it is read instead of
/// being materialised.
pub const MAX_BODY_SIZE: usize = 4 << 20;

/// How long a tombstone keeps refusing writes older than its invalidation. Pending writes are
/// bounded by the middleware's store timeout (seconds), so an hour is ample.
pub const TOMBSTONE_LIFETIME: Duration = Duration::from_secs(3600);

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
/// The entry's (or tombstone's) revision, N: what conditional writes compare.
pub const REVISION_ATTR: &str = "revision";
/// `true` (BOOL) on a tombstone: the key was invalidated at `revision`.
pub const TOMBSTONE_ATTR: &str = "tombstone";

/// Beside a compressed body (in the document's map, or top-level in the binary format): how it
/// is encoded. Absent for a body stored as it is.
pub const BODY_ENCODING_ATTR: &str = "body_encoding";
/// The one [`BODY_ENCODING_ATTR`] value: a single zstd frame.
pub const ZSTD_ENCODING: &str = "zstd";

/// The document format's version; items with any other value are misses.
const DOCUMENT_VERSION: &str = "1";
/// First byte of a binary `value`.
const BINARY_TAG: u8 = 1;
/// Upper bound on what a binary metadata blob may claim to hold (and on what compressed
/// metadata may expand to), so a corrupt length prefix cannot make the decoder allocate
/// without limit.
const BINCODE_LIMIT: usize = 1 << 20;

/// How a response is laid out in its DynamoDB item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum ItemFormat {
    /// A plain DynamoDB map, readable in the AWS console (the default).
    #[default]
    Document,
    /// Compact: metadata encoded with bincode 2, body as raw bytes.
    Binary,
}

/// How a store compresses the bodies it writes, in either [`ItemFormat`]. Each item says how
/// its body is encoded, so a table may hold both kinds and any reader built with the `zstd`
/// feature reads both (one built without it reads a compressed item as corrupt: a miss).
///
/// The default, with the `zstd` feature (on by default), is
/// `Zstd { level: 3, min_body_size: 1024 }`: DynamoDB bills writes by the kilobyte and reads by
/// four, so a body under a kilobyte can save at most one unit; above it, JSON shrinks four to
/// six times, and so do the units (see BENCHMARKS.md). Without the feature it is `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum Compression {
    /// Bodies are stored as received.
    None,
    /// zstd for bodies of at least `min_body_size` bytes, kept only when it is smaller; bodies
    /// up to [`MAX_BODY_SIZE`] (4 MiB) may be stored as long as the item fits.
    #[cfg(feature = "zstd")]
    Zstd {
        /// zstd level: 1 to 22 (3 is zstd's default; higher is smaller and slower), or
        /// negative for faster.
        level: i32,
        /// The smallest body compressed, in bytes.
        min_body_size: usize,
    },
}

// Derivable only without the `zstd` feature.
#[allow(clippy::derivable_impls)]
impl Default for Compression {
    fn default() -> Self {
        #[cfg(feature = "zstd")]
        return Compression::Zstd {
            level: 3,
            min_body_size: 1024,
        };
        #[cfg(not(feature = "zstd"))]
        Compression::None
    }
}

impl Compression {
    /// The largest body a store with this compression may be given: [`MAX_BODY_SIZE`] when
    /// bodies are compressed, else the item limit.
    pub fn max_body_size(self, max_item_size: usize) -> usize {
        match self {
            Compression::None => max_item_size,
            #[cfg(feature = "zstd")]
            Compression::Zstd { .. } => MAX_BODY_SIZE.max(max_item_size),
        }
    }

    /// `body` as stored: compressed (and `true`) when this compression applies and shrinks it.
    fn apply(self, body: &Bytes) -> Result<(std::borrow::Cow<'_, [u8]>, bool), StoreError> {
        match self {
            Compression::None => Ok((body[..].into(), false)),
            #[cfg(feature = "zstd")]
            Compression::Zstd {
                level,
                min_body_size,
            } => {
                if body.len() < min_body_size.max(1) {
                    return Ok((body[..].into(), false));
                }
                if body.len() > MAX_BODY_SIZE {
                    return Err(StoreError::Encode(format!(
                        "body over {MAX_BODY_SIZE} bytes, more than a compressed item may hold"
                    )));
                }
                let packed = compress(body, level)?;
                if packed.len() < body.len() {
                    Ok((packed.into(), true))
                } else {
                    Ok((body[..].into(), false))
                }
            }
        }
    }
}

/// What an item holds.
#[derive(Debug, Clone)]
#[non_exhaustive]
// A return value, unwrapped at once: boxing the response would cost every hit an allocation.
#[allow(clippy::large_enum_variant)]
pub enum Decoded {
    /// A stored response.
    Response(StoredResponse),
    /// The key was invalidated: nothing is stored, and writes older than the tombstone's
    /// revision are refused.
    Tombstone(Tombstone),
}

impl Decoded {
    /// The response, or `None` for a tombstone.
    pub fn into_response(self) -> Option<StoredResponse> {
        match self {
            Decoded::Response(r) => Some(r),
            Decoded::Tombstone(_) => None,
        }
    }
}

/// An invalidated key, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Tombstone {
    /// The revision of the invalidation.
    pub revision: u64,
    /// When it stops mattering (its `expires`), if the item says.
    pub until: Option<SystemTime>,
}

/// Builds the item for `entry` under partition key `key`, its body compressed as `compression`
/// says. `ttl` decides whether the `ttl` attribute is written.
///
/// # Errors
/// [`StoreError::Encode`] when the entry has more headers than [`decode`] accepts back, a
/// body to compress is larger than [`MAX_BODY_SIZE`], or compression fails: nothing is written
/// rather than something that would read back wrong.
pub fn encode(
    key: &str,
    entry: &StoredResponse,
    format: ItemFormat,
    compression: Compression,
    ttl: bool,
) -> Result<Item, StoreError> {
    for headers in [&entry.headers, &entry.request_headers] {
        if headers.len() > MAX_HEADER_FIELDS {
            return Err(StoreError::Encode(format!(
                "more than {MAX_HEADER_FIELDS} header fields"
            )));
        }
        if header_bytes(headers) > MAX_HEADER_BYTES {
            return Err(StoreError::Encode(format!(
                "more than {MAX_HEADER_BYTES} bytes of headers"
            )));
        }
    }
    let mut item = Item::with_capacity(9);
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
    item.insert(
        REVISION_ATTR.into(),
        AttributeValue::N(entry.revision.to_string()),
    );
    if ttl {
        if let Some(until) = entry.retain_until {
            item.insert(
                TTL_ATTR.into(),
                AttributeValue::N(epoch_secs(until).to_string()),
            );
        }
    }
    let (body, compressed) = compression.apply(&entry.body)?;
    // The body's attribute, and where the item says it is compressed.
    let encoding = compressed.then(|| AttributeValue::S(ZSTD_ENCODING.to_owned()));
    match format {
        ItemFormat::Document => {
            let mut doc = document(entry);
            let body = match (compressed, std::str::from_utf8(&body)) {
                (false, Ok(text)) => AttributeValue::S(text.to_owned()),
                _ => AttributeValue::B(Blob::new(body.into_owned())),
            };
            doc.insert(BODY_ATTR.into(), body);
            if let Some(encoding) = encoding {
                doc.insert(BODY_ENCODING_ATTR.into(), encoding);
            }
            item.insert(VALUE_ATTR.into(), AttributeValue::M(doc));
        }
        ItemFormat::Binary => {
            let mut value = vec![BINARY_TAG];
            value.extend(binary::encode(entry)?);
            item.insert(VALUE_ATTR.into(), AttributeValue::B(Blob::new(value)));
            item.insert(
                BODY_ATTR.into(),
                AttributeValue::B(Blob::new(body.into_owned())),
            );
            if let Some(encoding) = encoding {
                item.insert(BODY_ENCODING_ATTR.into(), encoding);
            }
        }
    }
    // Last: the size of everything else (a number cannot always state a size that includes
    // its own bytes: 489 takes 3 bytes, 490 takes 2). `encoded_size` adds it back exactly.
    let size = item_size(&item);
    item.insert(SIZE_ATTR.into(), AttributeValue::N(size.to_string()));
    Ok(item)
}

/// The tombstone item for `key`, invalidated at `revision` at time `now`: it stops mattering
/// [`TOMBSTONE_LIFETIME`] later, when DynamoDB may delete it (`ttl`, when `ttl` is on).
pub fn encode_tombstone(key: &str, revision: u64, now: SystemTime, ttl: bool) -> Item {
    let until = crate::clock::later(now, TOMBSTONE_LIFETIME);
    let mut item = Item::with_capacity(6);
    item.insert(KEY_ATTR.into(), AttributeValue::S(key.to_owned()));
    item.insert(
        REVISION_ATTR.into(),
        AttributeValue::N(revision.to_string()),
    );
    item.insert(TOMBSTONE_ATTR.into(), AttributeValue::Bool(true));
    item.insert(CREATED_ATTR.into(), AttributeValue::S(iso(now)));
    item.insert(EXPIRES_ATTR.into(), AttributeValue::S(iso(until)));
    if ttl {
        item.insert(
            TTL_ATTR.into(),
            AttributeValue::N(epoch_secs(until).to_string()),
        );
    }
    item
}

/// zstd contexts, one of each per thread and reused: creating a decompression context costs
/// about as much CPU as decompressing a 10 KB body (and allocates some 100 KB), which the
/// benchmarks' profile showed on every hit.
#[cfg(feature = "zstd")]
mod contexts {
    use std::cell::RefCell;

    thread_local! {
        static COMPRESSOR: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> =
            const { RefCell::new(None) };
        static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> =
            const { RefCell::new(None) };
    }

    pub(super) fn compress(data: &[u8], level: i32) -> std::io::Result<Vec<u8>> {
        COMPRESSOR.with_borrow_mut(|slot| {
            if !matches!(slot, Some((l, _)) if *l == level) {
                *slot = Some((level, zstd::bulk::Compressor::new(level)?));
            }
            let (_, compressor) = slot.as_mut().expect("set above");
            compressor.compress(data)
        })
    }

    pub(super) fn decompress(data: &[u8], capacity: usize) -> std::io::Result<Vec<u8>> {
        DECOMPRESSOR.with_borrow_mut(|slot| {
            if slot.is_none() {
                *slot = Some(zstd::bulk::Decompressor::new()?);
            }
            slot.as_mut().expect("set above").decompress(data, capacity)
        })
    }
}

/// zstd compression that fails loudly: an empty result would read back as an empty body.
#[cfg(feature = "zstd")]
fn compress(data: &[u8], level: i32) -> Result<Vec<u8>, StoreError> {
    match contexts::compress(data, level) {
        Ok(out) if !out.is_empty() => Ok(out),
        Ok(_) => Err(StoreError::Encode("zstd produced no frame".into())),
        Err(e) => Err(StoreError::Encode(format!("zstd compression failed: {e}"))),
    }
}

/// Decompresses one zstd payload into at most `limit` bytes, allocating no more than the frame
/// declares (and never more than `limit`). A frame that expands past the limit, or past what it
/// declared, is an error: nothing larger is ever materialised.
#[cfg(feature = "zstd")]
fn decompress(data: &[u8], limit: usize, what: &str) -> Result<Vec<u8>, StoreError> {
    // A compressed payload is never empty (a frame header alone is 6 bytes); older versions
    // stored an empty body when compression failed, which would read back as an empty Hit.
    if data.is_empty() {
        return Err(corrupt(format!("empty zstd {what}")));
    }
    let declared = zstd::zstd_safe::get_frame_content_size(data)
        .ok()
        .flatten()
        .and_then(|n| usize::try_from(n).ok());
    let capacity = declared.map_or(limit, |n| n.min(limit));
    // Single-pass decompression writes straight into a buffer of `capacity` bytes and fails
    // when the output would not fit: no window buffer sized by the frame's own claim.
    let mut out = contexts::decompress(data, capacity).map_err(|_| {
        corrupt(format!(
            "zstd {what} does not decompress within {limit} bytes"
        ))
    })?;
    // This crate's frames declare their size. One that does not (a streaming writer's) was
    // given the whole bound: keep only what it holds, not 4 MiB for a few bytes.
    if out.capacity() - out.len() > 4096 {
        out.shrink_to_fit();
    }
    // No version of this crate compresses an empty body: an empty frame is someone else's.
    if out.is_empty() {
        return Err(corrupt(format!("zstd {what} of nothing")));
    }
    Ok(out)
}

fn header_bytes(headers: &HeaderMap) -> usize {
    headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len())
        .sum()
}

/// The document without its body (the caller adds it, compressed or not).
fn document(entry: &StoredResponse) -> HashMap<String, AttributeValue> {
    let mut doc = HashMap::with_capacity(13);
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
    // A map has no order: the origin's order of names is kept beside it.
    doc.insert(
        "header_order".into(),
        AttributeValue::L(
            entry
                .headers
                .keys()
                .map(|n| AttributeValue::S(n.as_str().to_owned()))
                .collect(),
        ),
    );
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

/// Decodes an item written by [`encode`] (in either format) or [`encode_tombstone`]. Items
/// without a `revision` (written before revisions existed) decode with revision 0.
///
/// # Errors
/// [`StoreError::Corrupt`] for anything else; never a panic, and never an allocation beyond
/// the bounds in the module docs.
pub fn decode(mut item: Item) -> Result<Decoded, StoreError> {
    let revision = match item.get(REVISION_ATTR) {
        Some(AttributeValue::N(n)) => n
            .parse::<u64>()
            .map_err(|_| corrupt("`revision` is not a whole number below 2^64"))?,
        Some(_) => return Err(corrupt("`revision` is not N")),
        None => 0,
    };
    match item.get(TOMBSTONE_ATTR) {
        None => {}
        Some(AttributeValue::Bool(true))
            if !item.contains_key(VALUE_ATTR) && !item.contains_key(BODY_ATTR) =>
        {
            if !item.contains_key(REVISION_ATTR) {
                return Err(corrupt("tombstone without a `revision`"));
            }
            let until = match item.get(EXPIRES_ATTR) {
                Some(AttributeValue::S(s)) => Some(parse_iso(s)?),
                None => None,
                Some(_) => return Err(corrupt("`expires` is not S")),
            };
            return Ok(Decoded::Tombstone(Tombstone { revision, until }));
        }
        Some(AttributeValue::Bool(true)) => {
            return Err(corrupt("tombstone carrying a value or body"))
        }
        Some(_) => return Err(corrupt("`tombstone` is not BOOL true")),
    }
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
    let mut entry = match item.remove(VALUE_ATTR) {
        Some(AttributeValue::M(doc)) => from_document(doc, retain_until)?,
        Some(AttributeValue::B(blob)) => {
            let bytes = blob.into_inner();
            let body = match item.remove(BODY_ATTR) {
                Some(AttributeValue::B(b)) => b.into_inner(),
                _ => return Err(corrupt("binary item without a B `body`")),
            };
            let body = stored_body(body, item.remove(BODY_ENCODING_ATTR))?;
            match bytes.split_first() {
                Some((&BINARY_TAG, meta)) => binary::decode(meta, body, retain_until)?,
                Some((tag, _)) => return Err(corrupt(format!("unknown binary format tag {tag}"))),
                None => return Err(corrupt("empty binary value")),
            }
        }
        Some(_) => return Err(corrupt("`value` is neither M nor B")),
        None => return Err(corrupt("no `value` attribute")),
    };
    entry.revision = revision;
    Ok(Decoded::Response(entry))
}

/// A body as stored, decoded by its `body_encoding`: none, or one zstd frame that expands to
/// at most [`MAX_BODY_SIZE`] bytes.
fn stored_body(body: Vec<u8>, encoding: Option<AttributeValue>) -> Result<Bytes, StoreError> {
    match encoding {
        None => Ok(Bytes::from(body)),
        Some(AttributeValue::S(e)) if e == ZSTD_ENCODING => {
            #[cfg(feature = "zstd")]
            return decompress(&body, MAX_BODY_SIZE, "body").map(Bytes::from);
            #[cfg(not(feature = "zstd"))]
            Err(corrupt(
                "body compressed with zstd, and this build lacks the `zstd` feature",
            ))
        }
        Some(AttributeValue::S(_)) => Err(corrupt("unknown `body_encoding`")),
        Some(_) => Err(corrupt("`body_encoding` is not S")),
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
        Some(AttributeValue::N(_)) => return Err(corrupt("unknown document format version")),
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
    let headers = headers_from_doc(doc.remove("headers"), doc.remove("header_order"))?;
    let request_headers = headers_from_doc(doc.remove("request_headers"), None)?;
    let body = match doc.remove(BODY_ATTR) {
        Some(AttributeValue::S(s)) => s.into_bytes(),
        Some(AttributeValue::B(b)) => b.into_inner(),
        _ => return Err(corrupt("`body` missing or neither S nor B")),
    };
    let body = stored_body(body, doc.remove(BODY_ENCODING_ATTR))?;
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

/// Counts header fields and bytes as a map is rebuilt, and stops at the bounds.
struct HeaderBudget {
    fields: usize,
    bytes: usize,
}

impl HeaderBudget {
    fn new() -> Self {
        HeaderBudget {
            fields: 0,
            bytes: 0,
        }
    }

    fn take(&mut self, name: &str, value_len: usize) -> Result<(), StoreError> {
        self.fields += 1;
        self.bytes = self
            .bytes
            .saturating_add(name.len())
            .saturating_add(value_len);
        if self.fields > MAX_HEADER_FIELDS {
            return Err(corrupt(format!(
                "more than {MAX_HEADER_FIELDS} header fields"
            )));
        }
        if self.bytes > MAX_HEADER_BYTES {
            return Err(corrupt(format!(
                "more than {MAX_HEADER_BYTES} bytes of headers"
            )));
        }
        Ok(())
    }
}

/// Appends one field to a map whose size the budget has already bounded (far below what
/// `HeaderMap` can hold, so this cannot fail; it is checked rather than trusted).
fn append(headers: &mut HeaderMap, name: HeaderName, value: HeaderValue) -> Result<(), StoreError> {
    headers
        .try_append(name, value)
        .map(drop)
        .map_err(|_| corrupt("too many header fields"))
}

/// Headers from their map, names in `order` first (the origin's order, when the item has one;
/// names it lists that the map lacks, or lists twice, are skipped), then any others by name.
fn headers_from_doc(
    value: Option<AttributeValue>,
    order: Option<AttributeValue>,
) -> Result<HeaderMap, StoreError> {
    let Some(AttributeValue::M(mut map)) = value else {
        return Err(corrupt("headers missing or not M"));
    };
    if map.len() > MAX_HEADER_FIELDS {
        return Err(corrupt(format!(
            "more than {MAX_HEADER_FIELDS} header fields"
        )));
    }
    let order = match order {
        None => Vec::new(),
        Some(AttributeValue::L(names)) if names.len() <= MAX_HEADER_FIELDS => names,
        Some(_) => {
            return Err(corrupt(
                "header_order not a list of at most the field limit",
            ))
        }
    };
    let mut ordered = Vec::with_capacity(map.len());
    for name in order {
        let AttributeValue::S(name) = name else {
            return Err(corrupt("header_order entry not S"));
        };
        if let Some(values) = map.remove(&name) {
            ordered.push((name, values));
        }
    }
    let mut rest: Vec<(String, AttributeValue)> = map.into_iter().collect();
    rest.sort_by(|a, b| a.0.cmp(&b.0));
    ordered.extend(rest);
    let mut budget = HeaderBudget::new();
    let mut headers = HeaderMap::new();
    for (name, values) in ordered {
        let AttributeValue::L(values) = values else {
            return Err(corrupt("header values not L"));
        };
        let name =
            HeaderName::from_bytes(name.as_bytes()).map_err(|_| corrupt("bad header name"))?;
        for v in values {
            let v = match v {
                AttributeValue::S(s) => {
                    budget.take(name.as_str(), s.len())?;
                    HeaderValue::from_str(&s)
                }
                AttributeValue::B(b) => {
                    budget.take(name.as_str(), b.as_ref().len())?;
                    HeaderValue::from_bytes(b.as_ref())
                }
                _ => return Err(corrupt("header value neither S nor B")),
            }
            .map_err(|_| corrupt("bad header value"))?;
            append(&mut headers, name.clone(), v)?;
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
    humantime::parse_rfc3339(s).map_err(|_| corrupt("bad timestamp"))
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

    fn version_byte(v: Version) -> u8 {
        match v {
            Version::HTTP_09 => 9,
            Version::HTTP_10 => 10,
            Version::HTTP_2 => 20,
            Version::HTTP_3 => 30,
            _ => 11,
        }
    }

    pub(super) fn encode(e: &StoredResponse) -> Result<Vec<u8>, StoreError> {
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
        // Fails only past the size limit the decoder applies too (a URL of a megabyte).
        bincode::encode_to_vec(&meta, config())
            .map_err(|_| StoreError::Encode(format!("metadata over {BINCODE_LIMIT} bytes")))
    }

    pub(super) fn decode(
        bytes: &[u8],
        body: Bytes,
        retain_until: Option<SystemTime>,
    ) -> Result<StoredResponse, StoreError> {
        // bincode's errors can quote what they read; say only that it failed.
        let (meta, used): (Meta, usize) = bincode::decode_from_slice(bytes, config())
            .map_err(|_| corrupt("binary metadata does not decode"))?;
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

/// The read units, in thousandths, of an eventually consistent GetItem returning an item of
/// `size` bytes (or none: `size` 0): half a unit per 4 KB or part of it, at least half a unit.
pub fn read_milliunits(size: usize) -> u64 {
    size.div_ceil(4096).max(1) as u64 * 500
}

/// The write units, in thousandths, of a PutItem or DeleteItem of an item of `size` bytes: one
/// unit per kilobyte or part of it, at least one. (DynamoDB counts the larger of the item
/// written and the item it replaces.)
pub fn write_milliunits(size: usize) -> u64 {
    size.div_ceil(1024).max(1) as u64 * 1000
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
            revision: 1_790_000_000_123_456_789,
        }
    }

    /// Uncompressed.
    fn encode_ok(key: &str, e: &StoredResponse, format: ItemFormat, ttl: bool) -> Item {
        encode(key, e, format, Compression::None, ttl).unwrap()
    }

    fn response(item: Item) -> Result<StoredResponse, StoreError> {
        match decode(item)? {
            Decoded::Response(r) => Ok(r),
            Decoded::Tombstone(_) => panic!("a tombstone"),
        }
    }

    fn assert_same(a: &StoredResponse, b: &StoredResponse) {
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
    fn layouts() -> Vec<(ItemFormat, Compression)> {
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

    #[test]
    fn round_trips_text_and_binary_bodies_in_every_format() {
        let json = br#"[{"id":1,"name":"a"},{"id":2,"name":"b"},{"id":3,"name":"c"}]"#.repeat(40);
        for (format, compression) in layouts() {
            for body in [
                &b"hello"[..],
                &[0, 159, 146, 150, 255][..],
                &b""[..],
                &json[..],
            ] {
                let e = sample(body);
                let item = encode("k", &e, format, compression, true).unwrap();
                assert_same(&e, &response(item).unwrap());
            }
        }
    }

    #[test]
    fn document_is_readable() {
        let item = encode_ok("k", &sample(b"hello"), ItemFormat::Document, true);
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
        let binary = encode_ok("k", &sample(&[0xff]), ItemFormat::Document, false);
        let AttributeValue::M(doc) = &binary["value"] else {
            panic!()
        };
        assert_eq!(doc["body"], AttributeValue::B(Blob::new(vec![0xff])));
        assert!(!binary.contains_key("ttl"));
    }

    #[test]
    fn what_does_not_decode_is_corrupt_not_a_panic() {
        let good = encode_ok("k", &sample(b"x"), ItemFormat::Document, true);
        let mut newer = good.clone();
        if let Some(AttributeValue::M(doc)) = newer.get_mut("value") {
            doc.insert("v".into(), AttributeValue::N("2".into()));
        }
        let mut wrong_type = good.clone();
        wrong_type.insert("value".into(), AttributeValue::S("x".into()));
        let mut no_value = good.clone();
        no_value.remove("value");
        let bin = encode_ok("k", &sample(b"x"), ItemFormat::Binary, true);
        let mut truncated = bin.clone();
        if let Some(AttributeValue::B(b)) = truncated.get_mut("value") {
            let bytes = b.as_ref();
            *b = Blob::new(bytes[..bytes.len() / 2].to_vec());
        }
        let mut unknown_tag = bin.clone();
        unknown_tag.insert("value".into(), AttributeValue::B(Blob::new(vec![99, 1, 2])));
        for item in [newer, wrong_type, no_value, truncated, unknown_tag] {
            assert!(matches!(response(item), Err(StoreError::Corrupt(_))));
        }
    }

    #[test]
    fn the_size_attribute_gives_the_exact_item_size() {
        for len in (0..3000).step_by(7).chain([99_990, 100_000, 409_000]) {
            let item = encode_ok("k", &sample(&vec![b'a'; len]), ItemFormat::Document, true);
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
            response(encode_ok("k", &e, ItemFormat::Binary, true)),
            Err(StoreError::Corrupt(_))
        ));
        let back = response(encode_ok("k", &e, ItemFormat::Document, true)).unwrap();
        assert_eq!(
            back.created_at,
            UNIX_EPOCH + LATEST - Duration::from_millis(0)
        );
        let mut item = encode_ok("k", &sample(b"x"), ItemFormat::Document, true);
        item.insert("ttl".into(), AttributeValue::N(u64::MAX.to_string()));
        assert!(matches!(response(item), Err(StoreError::Corrupt(_))));
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

    /// A document item whose `headers` map has `names` distinct names of one value each.
    fn with_header_names(names: usize) -> Item {
        let mut item = encode_ok("k", &sample(b"x"), ItemFormat::Document, true);
        let Some(AttributeValue::M(doc)) = item.get_mut("value") else {
            panic!()
        };
        let headers = (0..names)
            .map(|i| {
                (
                    format!("x-h{i}"),
                    AttributeValue::L(vec![AttributeValue::S("v".into())]),
                )
            })
            .collect();
        doc.insert("headers".into(), AttributeValue::M(headers));
        item
    }

    #[test]
    fn tens_of_thousands_of_header_names_are_corrupt_not_a_panic() {
        // `HeaderMap::with_capacity(25_000)` panics (its limit is 24,576 names): the decoder
        // used to ask for the capacity the item claimed.
        for names in [25_000, 40_000] {
            let err = response(with_header_names(names)).unwrap_err();
            assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
        }
        assert!(response(with_header_names(MAX_HEADER_FIELDS)).is_ok());
        assert!(response(with_header_names(MAX_HEADER_FIELDS + 1)).is_err());
        // One name with 40,000 values: the same bound, counted per field.
        let mut item = encode_ok("k", &sample(b"x"), ItemFormat::Document, true);
        let Some(AttributeValue::M(doc)) = item.get_mut("value") else {
            panic!()
        };
        doc.insert(
            "headers".into(),
            AttributeValue::M(HashMap::from([(
                "x-many".to_owned(),
                AttributeValue::L(vec![AttributeValue::S("v".into()); 40_000]),
            )])),
        );
        assert!(matches!(response(item), Err(StoreError::Corrupt(_))));
    }

    /// A binary item whose metadata holds `n` response headers, built field by field as
    /// bincode lays out the metadata struct.
    fn binary_with_headers(n: usize) -> Item {
        let config = bincode::config::standard();
        let pairs: Vec<(String, Vec<u8>)> =
            (0..n).map(|i| (format!("x-h{i}"), b"v".to_vec())).collect();
        let mut value = vec![BINARY_TAG];
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
    fn an_entry_with_more_headers_than_decode_accepts_is_not_encoded() {
        let mut e = sample(b"x");
        for i in 0..MAX_HEADER_FIELDS {
            e.headers.append(
                HeaderName::try_from(format!("x-h{i}")).unwrap(),
                HeaderValue::from_static("v"),
            );
        }
        for (format, compression) in layouts() {
            assert!(matches!(
                encode("k", &e, format, compression, true),
                Err(StoreError::Encode(_))
            ));
        }
    }

    #[test]
    fn revisions_are_stored_top_level_and_older_items_read_as_revision_0() {
        for (format, compression) in layouts() {
            let item = encode("k", &sample(b"x"), format, compression, true).unwrap();
            assert_eq!(
                item[REVISION_ATTR],
                AttributeValue::N("1790000000123456789".into())
            );
            let mut old = item.clone();
            old.remove(REVISION_ATTR);
            assert_eq!(response(old).unwrap().revision, 0);
            for bad in [
                AttributeValue::S("5".into()),
                AttributeValue::N("1e400".into()),
                AttributeValue::N("-1".into()),
                AttributeValue::N("18446744073709551616".into()),
                AttributeValue::Bool(true),
            ] {
                let mut hostile = item.clone();
                hostile.insert(REVISION_ATTR.into(), bad);
                assert!(matches!(response(hostile), Err(StoreError::Corrupt(_))));
            }
        }
    }

    #[test]
    fn tombstones_decode_as_tombstones_and_lookalikes_are_corrupt() {
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let item = encode_tombstone("k", 9, now, true);
        assert_eq!(item[TTL_ATTR], AttributeValue::N("1800003600".into()));
        let Decoded::Tombstone(t) = decode(item.clone()).unwrap() else {
            panic!("not a tombstone")
        };
        assert_eq!(t.revision, 9);
        assert_eq!(t.until, Some(now + TOMBSTONE_LIFETIME));
        assert!(decode(item.clone()).unwrap().into_response().is_none());

        // A tombstone carrying a response, a false or mistyped marker, no revision.
        let mut with_body = encode_ok("k", &sample(b"x"), ItemFormat::Document, true);
        with_body.insert(TOMBSTONE_ATTR.into(), AttributeValue::Bool(true));
        let mut with_binary_body = encode_ok("k", &sample(b"x"), ItemFormat::Binary, true);
        with_binary_body.insert(TOMBSTONE_ATTR.into(), AttributeValue::Bool(true));
        let mut marker_false = encode_ok("k", &sample(b"x"), ItemFormat::Document, true);
        marker_false.insert(TOMBSTONE_ATTR.into(), AttributeValue::Bool(false));
        let mut marker_s = item.clone();
        marker_s.insert(TOMBSTONE_ATTR.into(), AttributeValue::S("true".into()));
        let mut no_revision = item.clone();
        no_revision.remove(REVISION_ATTR);
        for hostile in [
            with_body,
            with_binary_body,
            marker_false,
            marker_s,
            no_revision,
        ] {
            assert!(matches!(decode(hostile), Err(StoreError::Corrupt(_))));
        }
    }

    #[test]
    fn corrupt_messages_never_quote_the_item() {
        const SECRET: &str = "s3cr3t-token-value";
        let mut items = Vec::new();
        let good = encode_ok("k", &sample(b"x"), ItemFormat::Document, true);
        for (name, value) in [
            ("v", AttributeValue::N(SECRET.into())),
            ("created_at", AttributeValue::S(SECRET.into())),
            ("method", AttributeValue::S(format!("{SECRET} \n"))),
            (
                "headers",
                AttributeValue::M(HashMap::from([(
                    format!("{SECRET} bad name"),
                    AttributeValue::L(vec![]),
                )])),
            ),
        ] {
            let mut item = good.clone();
            let Some(AttributeValue::M(doc)) = item.get_mut("value") else {
                panic!()
            };
            doc.insert(name.into(), value);
            items.push(item);
        }
        let mut rev = good.clone();
        rev.insert(REVISION_ATTR.into(), AttributeValue::N(SECRET.into()));
        items.push(rev);
        let mut bin = vec![BINARY_TAG];
        bin.extend(SECRET.bytes());
        items.push(Item::from([
            ("value".to_owned(), AttributeValue::B(Blob::new(bin))),
            ("body".to_owned(), AttributeValue::B(Blob::new(vec![]))),
        ]));
        for item in items {
            let err = response(item).unwrap_err();
            assert!(matches!(err, StoreError::Corrupt(_)));
            assert!(!err.to_string().contains(SECRET), "{err}");
        }
    }

    #[cfg(feature = "zstd")]
    mod zstd_bodies {
        use super::*;

        const ZSTD3: Compression = Compression::Zstd {
            level: 3,
            min_body_size: 1024,
        };

        /// Records with sequential ids, names and numbers: compresses well.
        fn records(n: usize) -> Vec<u8> {
            let mut out = String::from("[");
            for i in 0..n {
                out.push_str(&format!(
                    r#"{{"id":{i},"name":"user {i}","score":{}}},"#,
                    i * 37 % 1000
                ));
            }
            out.push(']');
            out.into_bytes()
        }

        /// The body attribute and the encoding beside it, wherever the format puts them.
        fn body_and_encoding(item: &Item) -> (AttributeValue, Option<AttributeValue>) {
            match &item[VALUE_ATTR] {
                AttributeValue::M(doc) => {
                    (doc[BODY_ATTR].clone(), doc.get(BODY_ENCODING_ATTR).cloned())
                }
                _ => (
                    item[BODY_ATTR].clone(),
                    item.get(BODY_ENCODING_ATTR).cloned(),
                ),
            }
        }

        /// `item` with its body (and encoding) replaced, wherever the format puts them.
        fn with_body(mut item: Item, body: AttributeValue, encoding: Option<&str>) -> Item {
            let target = match item.get_mut(VALUE_ATTR) {
                Some(AttributeValue::M(doc)) => doc,
                _ => &mut item,
            };
            target.insert(BODY_ATTR.into(), body);
            match encoding {
                Some(e) => target.insert(BODY_ENCODING_ATTR.into(), AttributeValue::S(e.into())),
                None => target.remove(BODY_ENCODING_ATTR),
            };
            item
        }

        #[test]
        fn large_bodies_are_compressed_and_say_so_small_and_incompressible_ones_are_not() {
            for format in [ItemFormat::Document, ItemFormat::Binary] {
                // Small text stays as it is: readable S in the document.
                let item = encode("k", &sample(b"hello"), format, ZSTD3, true).unwrap();
                let (body, encoding) = body_and_encoding(&item);
                assert_eq!(encoding, None);
                if format == ItemFormat::Document {
                    assert_eq!(body, AttributeValue::S("hello".into()));
                }
                // Large JSON is a zstd frame, marked, and much smaller.
                let json = records(2000);
                let e = sample(&json);
                let item = encode("k", &e, format, ZSTD3, true).unwrap();
                let (body, encoding) = body_and_encoding(&item);
                assert_eq!(encoding, Some(AttributeValue::S("zstd".into())));
                let AttributeValue::B(packed) = body else {
                    panic!("a compressed body is B")
                };
                assert!(
                    packed.as_ref().len() * 4 < json.len(),
                    "{}",
                    packed.as_ref().len()
                );
                assert_same(&e, &response(item).unwrap());
                // Bytes zstd cannot shrink are stored as they are.
                let mut noise = Vec::with_capacity(4096);
                let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
                while noise.len() < 4096 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    noise.extend_from_slice(&x.to_le_bytes());
                }
                let item = encode("k", &sample(&noise), format, ZSTD3, true).unwrap();
                let (body, encoding) = body_and_encoding(&item);
                assert_eq!(encoding, None);
                assert_eq!(body, AttributeValue::B(Blob::new(noise)));
            }
        }

        #[test]
        fn a_zstd_bomb_body_is_corrupt_and_never_materialised() {
            // 64 MiB of zeros compress to a couple of kilobytes.
            let bomb = zstd::bulk::compress(&vec![0u8; 64 << 20], 19).unwrap();
            assert!(bomb.len() < 4096, "{}", bomb.len());
            let mut streamed = Vec::new();
            {
                let mut enc = zstd::stream::Encoder::new(&mut streamed, 19).unwrap();
                let mut zeros = std::io::Read::take(std::io::repeat(0), 64 << 20);
                std::io::copy(&mut zeros, &mut enc).unwrap();
                enc.finish().unwrap();
            }
            let over = zstd::bulk::compress(&vec![1u8; MAX_BODY_SIZE + 1], 3).unwrap();
            let at_bound = zstd::bulk::compress(&vec![b'a'; MAX_BODY_SIZE], 3).unwrap();
            for format in [ItemFormat::Document, ItemFormat::Binary] {
                let good = encode_ok("k", &sample(b""), format, true);
                // Declared size, streamed (no declared size), just over the bound.
                for packed in [&bomb, &streamed, &over] {
                    let item = with_body(
                        good.clone(),
                        AttributeValue::B(Blob::new(packed.clone())),
                        Some("zstd"),
                    );
                    let err = response(item).unwrap_err();
                    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
                }
                // Right at the bound is fine.
                let item = with_body(
                    good.clone(),
                    AttributeValue::B(Blob::new(at_bound.clone())),
                    Some("zstd"),
                );
                assert_eq!(response(item).unwrap().body.len(), MAX_BODY_SIZE);
            }
        }

        #[test]
        fn what_a_compressed_body_cannot_be_is_corrupt() {
            let frame = zstd::bulk::compress(b"hello", 3).unwrap();
            for format in [ItemFormat::Document, ItemFormat::Binary] {
                let good = encode_ok("k", &sample(b""), format, true);
                let cases = [
                    // What a failed compression could store: an empty frame.
                    (AttributeValue::B(Blob::new(Vec::new())), Some("zstd")),
                    // Not a frame at all.
                    (
                        AttributeValue::B(Blob::new(b"hello".to_vec())),
                        Some("zstd"),
                    ),
                    (AttributeValue::S("hello".into()), Some("zstd")),
                    // An encoding nobody wrote.
                    (AttributeValue::B(Blob::new(frame.clone())), Some("gzip")),
                ];
                for (body, encoding) in cases {
                    let err = response(with_body(good.clone(), body, encoding)).unwrap_err();
                    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
                }
                let item = with_body(
                    good.clone(),
                    AttributeValue::B(Blob::new(frame.clone())),
                    Some("zstd"),
                );
                assert_eq!(&response(item).unwrap().body[..], b"hello");
            }
        }

        #[test]
        fn a_body_too_large_to_read_back_is_not_encoded() {
            let e = sample(&vec![b'a'; MAX_BODY_SIZE + 1]);
            for format in [ItemFormat::Document, ItemFormat::Binary] {
                assert!(matches!(
                    encode("k", &e, format, ZSTD3, true),
                    Err(StoreError::Encode(_))
                ));
            }
        }
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
                any::<u64>(),
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
                        revision,
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
                            revision,
                        }
                    },
                )
        }

        proptest! {
            #[test]
            fn every_entry_round_trips_in_every_format(e in entry()) {
                for (format, compression) in layouts() {
                    let back = response(encode("k", &e, format, compression, true).unwrap()).unwrap();
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
