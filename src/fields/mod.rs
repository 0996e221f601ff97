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

pub(crate) use cache_control::{clamp_seconds, lowercase_names, without, CacheControl};
pub(crate) use entity_tag::{tag_list, EntityTag};
pub(crate) use range::{content_range, ByteRangeSet, ByteSpan, ContentRange};
