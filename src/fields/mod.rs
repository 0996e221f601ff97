//! One typed parser per header field the cache reads: `Cache-Control`, entity-tags (`ETag`,
//! `If-None-Match`), `Range` and `Content-Range`, and the list syntax they share.
//!
//! Each field is read in one place, with the RFC's rules for it, so two parts of the cache
//! cannot read one field two ways: the freshness rules and the caller's conditional requests
//! compare entity-tags with the same two functions, and the lookup and the range answer read
//! the same byte ranges. The parsers are lenient where senders commonly are (case, whitespace,
//! unquoted tags) and strict where the RFC makes a difference to the answer (an invalid
//! `Range` is ignored, an unsatisfiable one is not).
//!
//! Why not the `headers` or `http-range-header` crates is said in `docs/dependencies.md`
//! (the dependency table).

mod cache_control;
mod entity_tag;
pub(crate) mod list;
mod range;

pub(crate) use cache_control::{clamp_seconds, without, CacheControl};

use std::borrow::Cow;

use http::HeaderValue;

/// A field line as text: as sent when it is visible ASCII, otherwise with every other byte
/// (obs-text, RFC 9110 §5.5) read as `?`. Such bytes may only stand in quoted strings and
/// comments, so what is around them keeps its meaning: a `private` or `no-cache` beside a
/// quoted "café" is still read, where skipping the whole line would drop it.
pub(crate) fn text(value: &HeaderValue) -> Cow<'_, str> {
    match value.to_str() {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => Cow::Owned(
            value
                .as_bytes()
                .iter()
                .map(|&b| match b {
                    b'\t' | 0x20..=0x7e => char::from(b),
                    _ => '?',
                })
                .collect(),
        ),
    }
}
pub(crate) use entity_tag::{tag_list, EntityTag};
pub(crate) use range::{content_range, ByteRangeSet, ByteSpan, ContentRange};
