//! The bounds on a stored header map, kept when an entry is encoded and again when an item is
//! decoded.
//!
//! Both formats rebuild an `http::HeaderMap` from what the table holds, and the table may hold
//! anything: the fields are counted as they are appended, so a hostile item stops at the bound
//! instead of asking `HeaderMap` for a capacity it cannot give (which panics). An entry the
//! decoder would refuse is never encoded, so nothing is written that reads back as corrupt.

use http::{HeaderMap, HeaderName, HeaderValue};

use super::{corrupt, MAX_ITEM_SIZE};
use crate::StoreError;

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

/// Whether `headers` is within the bounds [`HeaderBudget`] applies on decoding: an entry
/// outside them is an [`StoreError::Encode`], never written.
pub(super) fn encodable(headers: &HeaderMap) -> Result<(), StoreError> {
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
    Ok(())
}

fn header_bytes(headers: &HeaderMap) -> usize {
    headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len())
        .sum()
}

/// Counts header fields and bytes as a map is rebuilt, and stops at the bounds.
pub(super) struct HeaderBudget {
    fields: usize,
    bytes: usize,
}

impl HeaderBudget {
    pub(super) fn new() -> Self {
        HeaderBudget {
            fields: 0,
            bytes: 0,
        }
    }

    pub(super) fn take(&mut self, name: &str, value_len: usize) -> Result<(), StoreError> {
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
pub(super) fn append(
    headers: &mut HeaderMap,
    name: HeaderName,
    value: HeaderValue,
) -> Result<(), StoreError> {
    headers
        .try_append(name, value)
        .map(drop)
        .map_err(|_| corrupt("too many header fields"))
}
