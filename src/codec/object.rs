//! Where a body kept outside its item is: the `object` attribute, a map naming an S3 object.
//!
//! An entry whose body does not fit one item keeps its body as an S3 object (feature `s3`) and
//! this pointer where the body would be: in the document's map instead of `body`, or at the top
//! level of a binary item instead of `body`. A reader that does not know the pointer therefore
//! finds no body and refuses the item (a miss), never serves an empty body in its place.
//!
//! The pointer is read from an item anyone may have written: every field is bounded, and the
//! store that follows it checks that it names the object the store itself would have written
//! for that key and revision before reading anything.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use super::corrupt;
use crate::StoreError;

/// S3's longest object key, in bytes.
const MAX_OBJECT_KEY: usize = 1024;
/// S3's longest bucket name.
const MAX_BUCKET: usize = 63;

/// An S3 object holding an entry's body, as its item names it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BodyObject {
    /// The bucket.
    pub bucket: String,
    /// The object's key.
    pub key: String,
    /// The body's length in bytes.
    pub size: u64,
    /// The SHA-256 digest of the body.
    pub sha256: [u8; 32],
}

impl BodyObject {
    /// A pointer to `key` in `bucket`, holding `size` bytes with digest `sha256`.
    pub fn new(
        bucket: impl Into<String>,
        key: impl Into<String>,
        size: u64,
        sha256: [u8; 32],
    ) -> Self {
        BodyObject {
            bucket: bucket.into(),
            key: key.into(),
            size,
            sha256,
        }
    }

    /// The pointer as an item attribute: a map of `bucket`, `key` (S), `size` (N) and
    /// `sha256` (S, 64 lowercase hex digits).
    pub(super) fn to_attribute(&self) -> AttributeValue {
        AttributeValue::M(HashMap::from([
            ("bucket".to_owned(), AttributeValue::S(self.bucket.clone())),
            ("key".to_owned(), AttributeValue::S(self.key.clone())),
            ("size".to_owned(), AttributeValue::N(self.size.to_string())),
            (
                "sha256".to_owned(),
                AttributeValue::S(hex::encode(self.sha256)),
            ),
        ]))
    }

    /// The pointer an item's `object` attribute holds.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] for anything but a map of exactly those four fields, each of its
    /// type and within S3's bounds.
    pub(crate) fn from_attribute(value: AttributeValue) -> Result<BodyObject, StoreError> {
        let AttributeValue::M(mut map) = value else {
            return Err(corrupt("`object` is not M"));
        };
        let mut take_s = |name: &str, most: usize| match map.remove(name) {
            Some(AttributeValue::S(s)) if !s.is_empty() && s.len() <= most => Ok(s),
            _ => Err(corrupt(format!(
                "`object.{name}` missing, not S, or over {most} bytes"
            ))),
        };
        let bucket = take_s("bucket", MAX_BUCKET)?;
        let key = take_s("key", MAX_OBJECT_KEY)?;
        let digest = take_s("sha256", 64)?;
        let mut sha256 = [0u8; 32];
        hex::decode_to_slice(&digest, &mut sha256)
            .map_err(|_| corrupt("`object.sha256` is not 64 hex digits"))?;
        let size = match map.remove("size") {
            Some(AttributeValue::N(n)) => n
                .parse()
                .map_err(|_| corrupt("`object.size` is not a whole number below 2^64"))?,
            _ => return Err(corrupt("`object.size` missing or not N")),
        };
        if !map.is_empty() {
            return Err(corrupt("`object` holds a field no pointer has"));
        }
        Ok(BodyObject {
            bucket,
            key,
            size,
            sha256,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pointer() -> BodyObject {
        BodyObject::new("bucket", "http-cache/k/1", 20 << 20, [7; 32])
    }

    #[test]
    fn a_pointer_round_trips() {
        let p = pointer();
        assert_eq!(BodyObject::from_attribute(p.to_attribute()).unwrap(), p);
    }

    #[test]
    fn a_pointer_out_of_bounds_or_with_more_fields_is_corrupt() {
        let AttributeValue::M(good) = pointer().to_attribute() else {
            unreachable!()
        };
        let with = |name: &str, value: AttributeValue| {
            let mut map = good.clone();
            map.insert(name.to_owned(), value);
            BodyObject::from_attribute(AttributeValue::M(map))
        };
        for (name, value) in [
            ("bucket", AttributeValue::S(String::new())),
            ("bucket", AttributeValue::S("b".repeat(64))),
            ("key", AttributeValue::S("k".repeat(1025))),
            ("key", AttributeValue::N("1".into())),
            ("sha256", AttributeValue::S("zz".repeat(32))),
            ("sha256", AttributeValue::S("ab".into())),
            ("size", AttributeValue::N("-1".into())),
            ("size", AttributeValue::N("18446744073709551616".into())),
            ("size", AttributeValue::S("1".into())),
            ("extra", AttributeValue::S("x".into())),
        ] {
            assert!(
                matches!(with(name, value.clone()), Err(StoreError::Corrupt(_))),
                "{name} = {value:?}"
            );
        }
        assert!(BodyObject::from_attribute(AttributeValue::S("x".into())).is_err());
    }
}
