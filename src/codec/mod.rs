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
//!   (RUSTSEC-2025-0141); it is used only in `binary`, so it can be swapped without touching
//!   anything else.
//!
//! In both, the body never goes through serde: it is one S or B attribute, and decoding hands its
//! buffer to [`Bytes`](bytes::Bytes) without a copy. With [`Compression::Zstd`] a body of at least
//! `min_body_size` bytes is stored as a zstd frame (B) when that is smaller, and the item says so
//! beside the body: `body_encoding` = `"zstd"` (in the document's map, or top-level next to the
//! binary format's `body`). Smaller bodies, and bodies zstd cannot shrink, are stored as they
//! are, so short text stays readable in the console. Both formats also write small top-level
//! attributes for console queries and maintenance (`url`, `status`, `created_at`, `expires`,
//! and `size`, the item's size by DynamoDB's rules; a version 2 document reads the first four
//! from there rather than hold a copy), the entry's `revision` (N, read by the conditional writes
//! that keep writes ordered) and, when TTL is on, `ttl` (epoch seconds). The document also holds
//! `generation` (the URL's primary-entry generation, shared by its Vary variants) and the
//! redacted `request_headers` the caching rules read.
//!
//! A body kept as an S3 object (feature `s3`) is not in the item: a top-level `object` map
//! ([`BodyObject`]: bucket, key, size, SHA-256) takes the place of `body` (and of
//! `body_encoding`), in either format, and decodes as [`Decoded::InObject`] with an empty body
//! for the store to fill. Without `body`, a reader that does not know `object` refuses the item.
//!
//! An invalidated key holds a *tombstone* instead: `key`, `revision`, `tombstone` = true,
//! `created_at` / `expires` (when it was written and when it stops mattering) and `ttl`. It
//! decodes as [`Decoded::Tombstone`], which a store reads as "nothing stored".
//!
//! Anything read from the table may have been written by anyone, so decoding is bounded and
//! never panics: an unknown version, a wrong attribute type, a truncated binary value, more than
//! [`MAX_HEADER_FIELDS`] header fields or [`MAX_HEADER_BYTES`] of them, a compressed body that
//! would expand past [`MAX_BODY_SIZE`], an unknown `body_encoding`, one of the codec's
//! attributes where its layout has none (a `body_encoding` beside a document instead of in
//! it), a name in the document no version 1 document has — each is a
//! [`StoreError::Corrupt`], which the middleware treats as a miss. Top-level names that are
//! not the codec's (global tables' `aws:rep:*`, an operator's tag) are left alone: see
//! `holds_only`. Its message says what is wrong, never what the item holds.
//!
//! One concern per file: this module holds the item's attribute names, the entry points
//! ([`encode`], [`encode_tombstone`], [`decode`]) and the dispatch between the formats;
//! `document` and `binary` hold the two layouts of `value`, `compression` the body's zstd
//! encoding and its bounds, `headers` the bounds on a stored header map, `http_version` the
//! one table of HTTP versions both formats share, `timestamps` how times are written, and
//! `size` DynamoDB's item size and billing rules.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;

use crate::clock::since_epoch;
use crate::{StoreError, StoredResponse};

mod binary;
mod compression;
mod document;
#[cfg(test)]
mod fixtures;
mod headers;
mod http_version;
mod object;
mod size;
mod timestamps;

pub use compression::{Compression, MAX_BODY_SIZE};
pub use headers::{MAX_HEADER_BYTES, MAX_HEADER_FIELDS};
pub use object::BodyObject;
pub use size::{encoded_size, item_size, read_milliunits, write_milliunits, MAX_ITEM_SIZE};

use binary::{BINARY_TAG, BINARY_TAG_V1};
use compression::stored_body;
use timestamps::{epoch_secs, iso, parse_iso};

/// A DynamoDB item: attribute name → value.
pub type Item = HashMap<String, AttributeValue>;

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
/// Where the body is when it is an S3 object (see [`BodyObject`]): a top-level map, in either
/// format, and the item holds no `body`.
pub const OBJECT_ATTR: &str = "object";

/// The top-level attributes of a document item ([`ItemFormat::Document`]).
const DOCUMENT_ITEM: &[&str] = &[
    KEY_ATTR,
    VALUE_ATTR,
    URL_ATTR,
    STATUS_ATTR,
    EXPIRES_ATTR,
    CREATED_ATTR,
    SIZE_ATTR,
    REVISION_ATTR,
    TTL_ATTR,
    OBJECT_ATTR,
];
/// The top-level attributes of a binary item ([`ItemFormat::Binary`]): a document item's,
/// and the body with its encoding.
const BINARY_ITEM: &[&str] = &[
    KEY_ATTR,
    VALUE_ATTR,
    URL_ATTR,
    STATUS_ATTR,
    EXPIRES_ATTR,
    CREATED_ATTR,
    SIZE_ATTR,
    REVISION_ATTR,
    TTL_ATTR,
    BODY_ATTR,
    BODY_ENCODING_ATTR,
    OBJECT_ATTR,
];
/// The top-level attributes of a tombstone.
const TOMBSTONE_ITEM: &[&str] = &[
    KEY_ATTR,
    REVISION_ATTR,
    TOMBSTONE_ATTR,
    CREATED_ATTR,
    EXPIRES_ATTR,
    TTL_ATTR,
];
/// Every top-level name the codec gives a meaning to, in one layout or another: an item may
/// hold those of its own layout only (see [`holds_only`]).
const ATTRIBUTES: &[&str] = &[
    KEY_ATTR,
    VALUE_ATTR,
    URL_ATTR,
    STATUS_ATTR,
    EXPIRES_ATTR,
    CREATED_ATTR,
    SIZE_ATTR,
    REVISION_ATTR,
    TTL_ATTR,
    BODY_ATTR,
    BODY_ENCODING_ATTR,
    OBJECT_ATTR,
    TOMBSTONE_ATTR,
];

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

/// What an item holds.
#[derive(Debug, Clone)]
#[non_exhaustive]
// A return value, unwrapped at once: boxing the response would cost every hit an allocation.
#[allow(clippy::large_enum_variant)]
pub enum Decoded {
    /// A stored response.
    Response(StoredResponse),
    /// A stored response whose body is an S3 object: the entry, its body empty, and the
    /// object the item names (not yet checked against anything).
    InObject(StoredResponse, BodyObject),
    /// The key was invalidated: nothing is stored, and writes older than the tombstone's
    /// revision are refused.
    Tombstone(Tombstone),
}

impl Decoded {
    /// The response, or `None` for a tombstone. The response of an entry in an object has an
    /// empty body.
    pub fn into_response(self) -> Option<StoredResponse> {
        match self {
            Decoded::Response(r) | Decoded::InObject(r, _) => Some(r),
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
    encode_as(key, entry, format, Placement::Inline(compression), ttl)
}

/// Builds the item for `entry` whose body is kept as `object`: the item holds the pointer
/// where it would hold the body ([`OBJECT_ATTR`]), and `entry.body` is not read.
///
/// # Errors
/// As [`encode`].
pub fn encode_pointing(
    key: &str,
    entry: &StoredResponse,
    object: &BodyObject,
    format: ItemFormat,
    ttl: bool,
) -> Result<Item, StoreError> {
    encode_as(key, entry, format, Placement::Object(object), ttl)
}

/// Where an item keeps the body.
enum Placement<'a> {
    /// In the item, compressed as it says.
    Inline(Compression),
    /// In an S3 object.
    Object(&'a BodyObject),
}

fn encode_as(
    key: &str,
    entry: &StoredResponse,
    format: ItemFormat,
    placement: Placement<'_>,
    ttl: bool,
) -> Result<Item, StoreError> {
    headers::encodable(&entry.headers)?;
    headers::encodable(&entry.request_headers)?;
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
    // The body's attributes: the body and, when compressed, its encoding (in the document's
    // map, or top-level in a binary item); or the pointer (top-level in either).
    let placement_is_object = matches!(placement, Placement::Object(_));
    let body: Vec<(&str, AttributeValue)> = match placement {
        Placement::Inline(compression) => {
            let (body, compressed) = compression.apply(&entry.body)?;
            let body = match (format, compressed, std::str::from_utf8(&body)) {
                (ItemFormat::Document, false, Ok(text)) => AttributeValue::S(text.to_owned()),
                _ => AttributeValue::B(Blob::new(body.into_owned())),
            };
            let mut attributes = vec![(BODY_ATTR, body)];
            if compressed {
                attributes.push((
                    BODY_ENCODING_ATTR,
                    AttributeValue::S(ZSTD_ENCODING.to_owned()),
                ));
            }
            attributes
        }
        Placement::Object(object) => vec![(OBJECT_ATTR, object.to_attribute())],
    };
    let body = body
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value));
    match (format, placement_is_object) {
        (ItemFormat::Document, false) => {
            let mut doc = document::document(entry);
            doc.extend(body);
            item.insert(VALUE_ATTR.into(), AttributeValue::M(doc));
        }
        (ItemFormat::Document, true) => {
            let doc = document::document(entry);
            item.insert(VALUE_ATTR.into(), AttributeValue::M(doc));
            item.extend(body);
        }
        (ItemFormat::Binary, _) => {
            let mut value = vec![BINARY_TAG];
            value.extend(binary::encode(entry)?);
            item.insert(VALUE_ATTR.into(), AttributeValue::B(Blob::new(value)));
            item.extend(body);
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
        Some(AttributeValue::Bool(true)) => return tombstone(&item, revision),
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
    let object = item
        .remove(OBJECT_ATTR)
        .map(BodyObject::from_attribute)
        .transpose()?;
    let mut entry = match item.remove(VALUE_ATTR) {
        Some(AttributeValue::M(doc)) => {
            holds_only(&item, DOCUMENT_ITEM, "a document item")?;
            document::from_document(doc, &mut item, retain_until, object.is_some())?
        }
        Some(AttributeValue::B(blob)) => {
            holds_only(&item, BINARY_ITEM, "a binary item")?;
            let bytes = blob.into_inner();
            let body = binary_body(&mut item, object.is_some())?;
            match bytes.split_first() {
                Some((&BINARY_TAG, meta)) => binary::decode(meta, body, retain_until, &mut item)?,
                Some((&BINARY_TAG_V1, meta)) => binary::decode_v1(meta, body, retain_until)?,
                Some((tag, _)) => return Err(corrupt(format!("unknown binary format tag {tag}"))),
                None => return Err(corrupt("empty binary value")),
            }
        }
        Some(_) => return Err(corrupt("`value` is neither M nor B")),
        None => return Err(corrupt("no `value` attribute")),
    };
    entry.revision = revision;
    Ok(match object {
        None => Decoded::Response(entry),
        Some(object) => Decoded::InObject(entry, object),
    })
}

/// A binary item's body, decompressed; empty when the item names an object (`in_object`),
/// which then must hold neither a body nor its encoding.
fn binary_body(item: &mut Item, in_object: bool) -> Result<bytes::Bytes, StoreError> {
    let encoding = item.remove(BODY_ENCODING_ATTR);
    match (item.remove(BODY_ATTR), in_object) {
        (Some(AttributeValue::B(b)), false) => stored_body(b.into_inner(), encoding),
        (None, true) if encoding.is_none() => Ok(bytes::Bytes::new()),
        (None, true) => Err(corrupt("a `body_encoding` beside an `object`")),
        (Some(_), true) => Err(corrupt("both a `body` and an `object`")),
        _ => Err(corrupt("binary item without a B `body`")),
    }
}

/// An item marked as a tombstone (`tombstone` = true), at `revision`.
fn tombstone(item: &Item, revision: u64) -> Result<Decoded, StoreError> {
    if item.contains_key(VALUE_ATTR)
        || item.contains_key(BODY_ATTR)
        || item.contains_key(OBJECT_ATTR)
    {
        return Err(corrupt("tombstone carrying a value or body"));
    }
    holds_only(item, TOMBSTONE_ITEM, "a tombstone")?;
    if !item.contains_key(REVISION_ATTR) {
        return Err(corrupt("tombstone without a `revision`"));
    }
    let until = match item.get(EXPIRES_ATTR) {
        Some(AttributeValue::S(s)) => Some(parse_iso(s)?),
        None => None,
        Some(_) => return Err(corrupt("`expires` is not S")),
    };
    Ok(Decoded::Tombstone(Tombstone { revision, until }))
}

/// Whether `item` holds, of the names the codec gives a meaning to ([`ATTRIBUTES`]), only
/// those of its `layout`. One of another layout's names changes what the item means to
/// whoever wrote it — a `body_encoding` beside a document says its body is compressed, where
/// the document's reader looks for that inside `value` and would serve the compressed bytes —
/// so the item is one the reader cannot fully account for: corrupt.
///
/// Names outside [`ATTRIBUTES`] are left alone, on purpose. Others legitimately add top-level
/// attributes to items they do not own: DynamoDB global tables (version 2017.11.29) add
/// `aws:rep:updatetime`, `aws:rep:updateregion` and `aws:rep:deleting` to every item they
/// replicate, and operators tag items in the console. None of them can change what the cache
/// serves, because everything that does is in this crate's own names, and a layout that
/// means something new changes the document's `v` or the binary tag, which this reader
/// refuses. Refusing them would turn a replicated table into nothing but misses.
fn holds_only(item: &Item, layout: &[&str], what: &str) -> Result<(), StoreError> {
    let misplaced = item
        .keys()
        .map(String::as_str)
        .find(|name| ATTRIBUTES.contains(name) && !layout.contains(name));
    match misplaced {
        // One of the codec's own names, never the item's content: safe to quote.
        Some(name) => Err(corrupt(format!("`{name}` has no place in {what}"))),
        None => Ok(()),
    }
}

fn corrupt(msg: impl Into<String>) -> StoreError {
    StoreError::Corrupt(msg.into())
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use bytes::Bytes;
    use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Version};

    use super::fixtures::{
        assert_same, encode_ok, layouts, response, sample, survives, HOSTILE_NUMBERS, HOSTILE_TIMES,
    };
    use super::*;

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
    fn an_entry_in_an_object_round_trips_in_both_formats_and_holds_no_body() {
        let object = BodyObject::new("bucket", "http-cache/k/7", 5, [1; 32]);
        for format in [ItemFormat::Document, ItemFormat::Binary] {
            let e = sample(b"hello");
            let item = encode_pointing("k", &e, &object, format, true).unwrap();
            let holds_body = match (format, &item[VALUE_ATTR]) {
                (ItemFormat::Document, AttributeValue::M(doc)) => doc.contains_key(BODY_ATTR),
                _ => item.contains_key(BODY_ATTR),
            };
            assert!(!holds_body, "{format:?}");
            assert!(item.contains_key(OBJECT_ATTR), "{format:?}");
            match decode(item).unwrap() {
                Decoded::InObject(back, pointer) => {
                    assert_eq!(pointer, object);
                    assert!(back.body.is_empty());
                    assert_same(
                        &StoredResponse {
                            body: Bytes::new(),
                            ..e
                        },
                        &back,
                    );
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn a_pointer_beside_a_body_or_an_encoding_is_corrupt() {
        let object = BodyObject::new("bucket", "k", 5, [1; 32]).to_attribute();
        let encoding = AttributeValue::S(ZSTD_ENCODING.into());
        let mut items = Vec::new();
        // Document: a pointer beside the body (the document's), or beside an encoding.
        let mut doc_item = encode_ok("k", &sample(b"x"), ItemFormat::Document, true);
        doc_item.insert(OBJECT_ATTR.into(), object.clone());
        items.push(doc_item.clone());
        if let Some(AttributeValue::M(doc)) = doc_item.get_mut(VALUE_ATTR) {
            doc.remove(BODY_ATTR);
            doc.insert(BODY_ENCODING_ATTR.into(), encoding.clone());
        }
        items.push(doc_item);
        // Binary: the same at the top level.
        let mut bin = encode_ok("k", &sample(b"x"), ItemFormat::Binary, true);
        bin.insert(OBJECT_ATTR.into(), object.clone());
        items.push(bin.clone());
        bin.remove(BODY_ATTR);
        bin.insert(BODY_ENCODING_ATTR.into(), encoding);
        items.push(bin);
        // A pointer inside the document's map (no reader looks there), and a tombstone
        // carrying one.
        let mut inside = encode_ok("k", &sample(b"x"), ItemFormat::Document, true);
        if let Some(AttributeValue::M(doc)) = inside.get_mut(VALUE_ATTR) {
            doc.remove(BODY_ATTR);
            doc.insert(OBJECT_ATTR.into(), object.clone());
        }
        items.push(inside);
        let mut tomb = encode_tombstone("k", 1, UNIX_EPOCH, true);
        tomb.insert(OBJECT_ATTR.into(), object);
        items.push(tomb);
        for item in items {
            assert!(matches!(decode(item), Err(StoreError::Corrupt(_))));
        }
    }

    #[test]
    fn what_does_not_decode_is_corrupt_not_a_panic() {
        let good = encode_ok("k", &sample(b"x"), ItemFormat::Document, true);
        let mut newer = good.clone();
        if let Some(AttributeValue::M(doc)) = newer.get_mut("value") {
            doc.insert("v".into(), AttributeValue::N("3".into()));
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

    /// `item`'s document map (`value`), to be spoiled.
    fn doc_of(item: &mut Item) -> &mut HashMap<String, AttributeValue> {
        match item.get_mut(VALUE_ATTR) {
            Some(AttributeValue::M(doc)) => doc,
            _ => panic!("not a document item"),
        }
    }

    #[cfg(feature = "zstd")]
    #[test]
    fn a_compressed_document_whose_body_encoding_sits_at_the_top_level_is_corrupt() {
        // Where the binary format keeps it: a document item edited or written by another
        // program. Read as the document's own body, it is the zstd frame's bytes.
        let zstd = Compression::Zstd {
            level: 3,
            min_body_size: 1,
        };
        let e = sample(&b"a body the origin sent, compressible ".repeat(20));
        let mut item = encode("k", &e, ItemFormat::Document, zstd, true).unwrap();
        let encoding = doc_of(&mut item).remove(BODY_ENCODING_ATTR).unwrap();
        item.insert(BODY_ENCODING_ATTR.into(), encoding);
        match response(item) {
            Err(StoreError::Corrupt(_)) => {}
            Ok(served) => panic!("served {} bytes the origin never sent", served.body.len()),
            Err(other) => panic!("{other:?}"),
        }
    }

    #[test]
    fn attributes_a_layout_does_not_hold_are_corrupt_and_foreign_names_are_ignored() {
        let document = encode_ok("k", &sample(b"x"), ItemFormat::Document, true);
        let binary = encode_ok("k", &sample(b"x"), ItemFormat::Binary, true);
        let tombstone = encode_tombstone("k", 9, UNIX_EPOCH, true);
        let s = |v: &str| AttributeValue::S(v.into());
        let mut hostile = Vec::new();
        // The binary format's top-level body attributes on a document.
        for (name, value) in [
            (BODY_ENCODING_ATTR, s("zstd")),
            (BODY_ATTR, AttributeValue::B(Blob::new(b"y".to_vec()))),
        ] {
            let mut item = document.clone();
            item.insert(name.into(), value);
            hostile.push(item);
        }
        // An entry's attributes on a tombstone.
        for (name, value) in [
            (URL_ATTR, s("https://example.com/")),
            (STATUS_ATTR, AttributeValue::N("200".into())),
            (SIZE_ATTR, AttributeValue::N("10".into())),
            (BODY_ENCODING_ATTR, s("zstd")),
        ] {
            let mut item = tombstone.clone();
            item.insert(name.into(), value);
            hostile.push(item);
        }
        // Inside the document: a top-level attribute, a name no version 1 document has.
        for name in [REVISION_ATTR, TTL_ATTR, KEY_ATTR, "body_part"] {
            let mut item = document.clone();
            doc_of(&mut item).insert(name.into(), AttributeValue::N("1".into()));
            hostile.push(item);
        }
        for item in hostile {
            assert!(
                matches!(decode(item.clone()), Err(StoreError::Corrupt(_))),
                "{item:?}"
            );
        }
        // What others add beside the crate's attributes: global tables' replication
        // bookkeeping, an operator's note. They change nothing the cache reads.
        for good in [document, binary, tombstone] {
            let mut item = good.clone();
            item.insert("aws:rep:updatetime".into(), AttributeValue::N("1.5".into()));
            item.insert("aws:rep:updateregion".into(), s("eu-west-1"));
            item.insert("note".into(), s("kept for the incident review"));
            match (decode(good).unwrap(), decode(item).unwrap()) {
                (Decoded::Response(a), Decoded::Response(b)) => assert_same(&a, &b),
                (Decoded::Tombstone(a), Decoded::Tombstone(b)) => assert_eq!(a, b),
                _ => panic!("read as something else"),
            }
        }
    }

    /// Every kind of item the top level of which may hold `name`: both formats, a tombstone.
    fn every_layout() -> Vec<Item> {
        vec![
            encode_ok("k", &sample(b"x"), ItemFormat::Document, true),
            encode_ok("k", &sample(b"x"), ItemFormat::Binary, true),
            encode_tombstone("k", 9, UNIX_EPOCH, true),
        ]
    }

    /// Each of `values` as `name` (of type N, and for good measure S) at the top level of
    /// every layout: read, sized and written back without a panic.
    fn top_level_survives(name: &str, values: &[&str]) {
        for item in every_layout() {
            for value in values {
                for value in [
                    AttributeValue::N((*value).into()),
                    AttributeValue::S((*value).into()),
                ] {
                    let mut hostile = item.clone();
                    hostile.insert(name.into(), value);
                    survives(hostile);
                }
            }
        }
    }

    #[test]
    fn hostile_revisions_never_panic() {
        top_level_survives(REVISION_ATTR, HOSTILE_NUMBERS);
    }

    #[test]
    fn hostile_ttls_never_panic() {
        top_level_survives(TTL_ATTR, HOSTILE_NUMBERS);
    }

    #[test]
    fn hostile_top_level_statuses_never_panic() {
        top_level_survives(STATUS_ATTR, HOSTILE_NUMBERS);
    }

    #[test]
    fn hostile_top_level_times_never_panic() {
        for name in [EXPIRES_ATTR, CREATED_ATTR] {
            top_level_survives(name, HOSTILE_TIMES);
            top_level_survives(name, HOSTILE_NUMBERS);
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
                            deferred: None,
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
        }
    }
}
