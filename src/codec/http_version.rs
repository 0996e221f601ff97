//! The response's HTTP version as both formats store it: one table, so the document's text and
//! the binary metadata's byte can never disagree on which versions exist.
//!
//! `http::Version` is opaque and may gain versions; one this table does not know is stored as
//! HTTP/1.1, which is what the cache replays it as anyway (the version of a rebuilt response
//! is informational: reqwest negotiates its own).

use http::Version;

use super::corrupt;
use crate::StoreError;

/// Each version: as the document writes it (`http_version`, S), and as the binary metadata
/// writes it (one byte). Items already stored hold these exact values: never change one.
const VERSIONS: [(Version, &str, u8); 5] = [
    (Version::HTTP_09, "HTTP/0.9", 9),
    (Version::HTTP_10, "HTTP/1.0", 10),
    (Version::HTTP_11, "HTTP/1.1", 11),
    (Version::HTTP_2, "HTTP/2.0", 20),
    (Version::HTTP_3, "HTTP/3.0", 30),
];

/// HTTP/1.1's row: what a version missing from the table is stored as.
const FALLBACK: (Version, &str, u8) = VERSIONS[2];

fn row(v: Version) -> (Version, &'static str, u8) {
    VERSIONS
        .into_iter()
        .find(|(known, ..)| *known == v)
        .unwrap_or(FALLBACK)
}

/// `v` as the document's `http_version`.
pub(super) fn text(v: Version) -> &'static str {
    row(v).1
}

/// `v` as the binary metadata's version byte.
pub(super) fn byte(v: Version) -> u8 {
    row(v).2
}

/// The version a document's `http_version` names.
pub(super) fn from_text(s: &str) -> Result<Version, StoreError> {
    VERSIONS
        .into_iter()
        .find(|(_, text, _)| *text == s)
        .map(|(v, ..)| v)
        .ok_or_else(|| corrupt("bad http_version"))
}

/// The version a binary metadata byte names.
pub(super) fn from_byte(b: u8) -> Result<Version, StoreError> {
    VERSIONS
        .into_iter()
        .find(|(.., byte)| *byte == b)
        .map(|(v, ..)| v)
        .ok_or_else(|| corrupt("bad version"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_version_reads_back_in_both_forms_and_stored_values_never_change() {
        for (v, text_form, byte_form) in [
            (Version::HTTP_09, "HTTP/0.9", 9),
            (Version::HTTP_10, "HTTP/1.0", 10),
            (Version::HTTP_11, "HTTP/1.1", 11),
            (Version::HTTP_2, "HTTP/2.0", 20),
            (Version::HTTP_3, "HTTP/3.0", 30),
        ] {
            assert_eq!(text(v), text_form);
            assert_eq!(byte(v), byte_form);
            assert_eq!(from_text(text_form).unwrap(), v);
            assert_eq!(from_byte(byte_form).unwrap(), v);
        }
        for bad in ["HTTP/2", "http/1.1", ""] {
            assert!(matches!(from_text(bad), Err(StoreError::Corrupt(_))));
        }
        for bad in [0, 12, 255] {
            assert!(matches!(from_byte(bad), Err(StoreError::Corrupt(_))));
        }
    }
}
