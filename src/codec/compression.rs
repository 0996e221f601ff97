//! Body compression: [`Compression`], the zstd contexts, and the bounds on what a compressed
//! body may expand to.
//!
//! Compression is a store option, independent of the [`ItemFormat`](super::ItemFormat): each
//! item says beside its body how that body is encoded (`body_encoding`), so one table may hold
//! compressed and uncompressed items and every reader knows which is which. Decompression is
//! bounded by [`MAX_BODY_SIZE`] and allocates no more than the frame declares, because the
//! frame may have been written by anyone.

use aws_sdk_dynamodb::types::AttributeValue;
use bytes::Bytes;

use super::{corrupt, ZSTD_ENCODING};
use crate::StoreError;

/// The largest body a compressed item may hold, uncompressed: 4 MiB, ten times DynamoDB's item
/// limit (JSON rarely compresses better than that). A store that compresses never writes a
/// larger body, and a "zstd bomb" written by someone else stops here when it is read instead of
/// being materialised.
pub const MAX_BODY_SIZE: usize = 4 << 20;

/// How a store compresses the bodies it writes, in either [`ItemFormat`](super::ItemFormat).
/// Each item says how its body is encoded, so a table may hold both kinds and any reader built
/// with the `zstd` feature reads both (one built without it reads a compressed item as corrupt:
/// a miss).
///
/// The default, with the `zstd` feature (on by default), is
/// `Zstd { level: 3, min_body_size: 1024 }`: DynamoDB bills writes by the kilobyte and reads by
/// four, so a body under a kilobyte can save at most one unit; above it, JSON shrinks 3.8 to 6.6
/// times (random and repetitive reference bodies), and the units of 10–100 KB bodies fall 2.4 to
/// 6.5 times (see BENCHMARKS.md). Without the feature it is `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum Compression {
    /// Bodies are stored as received.
    None,
    /// zstd for bodies of at least `min_body_size` bytes, kept only when it is smaller; bodies
    /// up to 4 MiB may be stored as long as the item fits.
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
    /// The largest body a store with this compression may be given: 4 MiB (or the item limit,
    /// if larger) when bodies are compressed, else the item limit.
    pub fn max_body_size(self, max_item_size: usize) -> usize {
        match self {
            Compression::None => max_item_size,
            #[cfg(feature = "zstd")]
            Compression::Zstd { .. } => MAX_BODY_SIZE.max(max_item_size),
        }
    }

    /// `body` as stored: compressed (and `true`) when this compression applies and shrinks it.
    pub(super) fn apply(
        self,
        body: &Bytes,
    ) -> Result<(std::borrow::Cow<'_, [u8]>, bool), StoreError> {
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

/// A body as stored, decoded by its `body_encoding`: none, or one zstd frame that expands to
/// at most [`MAX_BODY_SIZE`] bytes.
pub(super) fn stored_body(
    body: Vec<u8>,
    encoding: Option<AttributeValue>,
) -> Result<Bytes, StoreError> {
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

#[cfg(all(test, feature = "zstd"))]
mod tests {
    use aws_sdk_dynamodb::primitives::Blob;

    use super::*;
    use crate::codec::fixtures::{assert_same, encode_ok, response, sample};
    use crate::codec::{encode, Item, ItemFormat, BODY_ATTR, BODY_ENCODING_ATTR, VALUE_ATTR};

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
