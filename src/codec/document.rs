//! The document format (the default): `value` is a plain DynamoDB map that reads well in the
//! AWS console.
//!
//! Method, HTTP version, headers (name → list of values, so repeated headers survive, each S
//! when it is UTF-8 and B otherwise), `header_order` (the names in the origin's order, since a
//! map has none), the redacted request headers the rules read, the generation, the body as S
//! when it is UTF-8 and as B otherwise, and a format version `v`: a reader refuses any version
//! it does not know, so a later layout can never be misread as this one.
//!
//! Version 2, written now, leaves out what the item holds at its top level for console
//! queries anyway: `url`, `status`, `created_at` and `expires` are read from there. Version 1
//! documents held their own copy of the four (about 110 bytes per item, billed on every read
//! and write); they are still read, from the document, as long as such items exist.

use std::collections::HashMap;
use std::time::SystemTime;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};

use super::compression::stored_body;
use super::headers::{append, HeaderBudget};
use super::timestamps::parse_iso;
use super::{
    corrupt, http_version, Item, BODY_ATTR, BODY_ENCODING_ATTR, CREATED_ATTR, EXPIRES_ATTR,
    MAX_HEADER_FIELDS, STATUS_ATTR, URL_ATTR,
};
use crate::{StoreError, StoredResponse};

/// The document format's version written; items with a version other than 1 or 2 are misses.
const DOCUMENT_VERSION: &str = "2";

/// The document without its body (the caller adds it, compressed or not) and without what the
/// item holds at its top level ([`AT_TOP`]).
pub(super) fn document(entry: &StoredResponse) -> HashMap<String, AttributeValue> {
    let mut doc = HashMap::with_capacity(10);
    let s = |v: String| AttributeValue::S(v);
    doc.insert("v".into(), AttributeValue::N(DOCUMENT_VERSION.into()));
    doc.insert(
        "http_version".into(),
        s(http_version::text(entry.version).into()),
    );
    doc.insert("method".into(), s(entry.method.as_str().into()));
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

/// The names a version 2 document (and a binary item of tag 2) leaves to the item's top level,
/// where every version writes them (same names, same types).
pub(super) const AT_TOP: [&str; 4] = [URL_ATTR, STATUS_ATTR, CREATED_ATTR, EXPIRES_ATTR];

/// The entry a document holds; `item` is the rest of the item, whose top-level `url`,
/// `status`, `created_at` and `expires` a version 2 document reads. `in_object`: the item
/// names an S3 object holding the body, so the document must hold none (the entry's body is
/// then empty).
pub(super) fn from_document(
    mut doc: HashMap<String, AttributeValue>,
    item: &mut Item,
    retain_until: Option<SystemTime>,
    in_object: bool,
) -> Result<StoredResponse, StoreError> {
    let from_top = match doc.remove("v") {
        Some(AttributeValue::N(v)) if v == "2" => true,
        Some(AttributeValue::N(v)) if v == "1" => false,
        Some(AttributeValue::N(_)) => return Err(corrupt("unknown document format version")),
        _ => return Err(corrupt("no format version")),
    };
    let listed = if from_top {
        // One of them inside a version 2 document too: the item says two things.
        if let Some(name) = AT_TOP.iter().find(|n| doc.contains_key(**n)) {
            return Err(corrupt(format!("`{name}` inside a version 2 document")));
        }
        take_listed(item)?
    } else {
        take_listed(&mut doc)?
    };
    let mut take_s = |name: &str| match doc.remove(name) {
        Some(AttributeValue::S(s)) => Ok(s),
        _ => Err(corrupt(format!("`{name}` missing or not S"))),
    };
    let method =
        Method::from_bytes(take_s("method")?.as_bytes()).map_err(|_| corrupt("bad method"))?;
    let version = http_version::from_text(&take_s("http_version")?)?;
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
    let body = match (doc.remove(BODY_ATTR), in_object) {
        (Some(AttributeValue::S(s)), false) => s.into_bytes(),
        (Some(AttributeValue::B(b)), false) => b.into_inner(),
        (None, true) => Vec::new(),
        (Some(_), true) => return Err(corrupt("both a `body` and an `object`")),
        _ => return Err(corrupt("`body` missing or neither S nor B")),
    };
    let encoding = doc.remove(BODY_ENCODING_ATTR);
    if in_object && encoding.is_some() {
        return Err(corrupt("a `body_encoding` beside an `object`"));
    }
    // Every name of its version's document has been taken: one left over is not this
    // version's (a newer layout says so with `v`), and whatever it was meant to change would
    // be lost.
    if !doc.is_empty() {
        return Err(corrupt("an attribute no document of its version has"));
    }
    let body = stored_body(body, encoding)?;
    let entry = StoredResponse {
        status: listed.status,
        version,
        method,
        url: listed.url,
        headers,
        request_headers,
        body,
        created_at: listed.created_at,
        expires: listed.expires,
        heuristic_max_age,
        generation,
        retain_until,
        revision: 0,
        deferred: None,
    };
    Ok(entry)
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
            // The value's own buffer becomes the header value's: no copy.
            let bytes = match v {
                AttributeValue::S(s) => bytes::Bytes::from(s),
                AttributeValue::B(b) => bytes::Bytes::from(b.into_inner()),
                _ => return Err(corrupt("header value neither S nor B")),
            };
            budget.take(name.as_str(), bytes.len())?;
            let v =
                HeaderValue::from_maybe_shared(bytes).map_err(|_| corrupt("bad header value"))?;
            append(&mut headers, name.clone(), v)?;
        }
    }
    Ok(headers)
}

/// The four attributes every version writes at the top level, and version 1 documents also
/// inside `value`.
pub(super) struct Listed {
    pub(super) url: String,
    pub(super) status: StatusCode,
    pub(super) created_at: SystemTime,
    pub(super) expires: SystemTime,
}

/// [`Listed`], taken out of `map` (a version 1 document, or the item itself).
pub(super) fn take_listed(map: &mut Item) -> Result<Listed, StoreError> {
    let mut take_s = |name: &str| match map.remove(name) {
        Some(AttributeValue::S(s)) => Ok(s),
        _ => Err(corrupt(format!("`{name}` missing or not S"))),
    };
    let url = take_s(URL_ATTR)?;
    let created_at = parse_iso(&take_s(CREATED_ATTR)?)?;
    let expires = parse_iso(&take_s(EXPIRES_ATTR)?)?;
    let status = match map.remove(STATUS_ATTR) {
        Some(AttributeValue::N(n)) => n
            .parse::<u16>()
            .ok()
            .and_then(|n| StatusCode::from_u16(n).ok())
            .ok_or_else(|| corrupt("bad status"))?,
        _ => return Err(corrupt("`status` missing or not N")),
    };
    Ok(Listed {
        url,
        status,
        created_at,
        expires,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::fixtures::{
        encode_ok, response, sample, survives, with_in_document, HOSTILE_NUMBERS, HOSTILE_TIMES,
    };
    use crate::codec::{Item, ItemFormat};

    #[test]
    fn document_is_readable() {
        let item = encode_ok("k", &sample(b"hello"), ItemFormat::Document, true);
        let AttributeValue::M(doc) = &item["value"] else {
            panic!()
        };
        assert_eq!(doc["body"], AttributeValue::S("hello".into()));
        assert_eq!(doc["v"], AttributeValue::N("2".into()));
        assert_eq!(
            item["created_at"],
            AttributeValue::S("2026-09-21T14:13:20.123Z".into())
        );
        for name in AT_TOP {
            assert!(!doc.contains_key(name), "`{name}` is held once, at the top");
            assert!(item.contains_key(name));
        }
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

    /// Each of `values` as the document's `name` (for the names a version 2 document leaves
    /// to the top level: at the top, and inside a version 1 document), as N and as S: read,
    /// sized and written back without a panic.
    fn document_survives(name: &str, values: &[&str]) {
        let good = encode_ok("k", &sample(b"x"), ItemFormat::Document, true);
        for value in values {
            for value in [
                AttributeValue::N((*value).into()),
                AttributeValue::S((*value).into()),
            ] {
                if AT_TOP.contains(&name) {
                    let mut top = good.clone();
                    top.insert(name.to_owned(), value.clone());
                    survives(top);
                    survives(with_in_document(as_version_1(&good), name, value));
                } else {
                    survives(with_in_document(good.clone(), name, value));
                }
            }
        }
    }

    /// `item` as version 1 wrote it: the four top-level names copied into the document too.
    fn as_version_1(item: &Item) -> Item {
        let mut v1 = item.clone();
        for name in AT_TOP {
            v1 = with_in_document(v1, name, item[name].clone());
        }
        with_in_document(v1, "v", AttributeValue::N("1".into()))
    }

    #[test]
    fn version_1_documents_are_read_from_their_own_copy() {
        let entry = sample(b"hello");
        let v2 = encode_ok("k", &entry, ItemFormat::Document, true);
        let mut v1 = as_version_1(&v2);
        // Version 1 read its own copy; the top-level ones were console helpers only.
        v1.insert(
            URL_ATTR.into(),
            AttributeValue::S("https://elsewhere/".into()),
        );
        v1.remove(STATUS_ATTR);
        let read = response(v1).unwrap();
        assert_eq!(read.url, entry.url);
        assert_eq!(read.status, entry.status);
        assert_eq!(read.created_at, entry.created_at);
        assert_eq!(read.expires, entry.expires);
        assert_eq!(read.body, entry.body);
    }

    #[test]
    fn a_version_2_document_needs_the_top_level_four_and_holds_none_itself() {
        let good = encode_ok("k", &sample(b"x"), ItemFormat::Document, true);
        assert!(response(good.clone()).is_ok());
        for name in AT_TOP {
            let mut missing = good.clone();
            missing.remove(name);
            assert!(
                matches!(response(missing), Err(StoreError::Corrupt(_))),
                "without a top-level `{name}`"
            );
            let twice = with_in_document(good.clone(), name, good[name].clone());
            assert!(
                matches!(response(twice), Err(StoreError::Corrupt(_))),
                "`{name}` inside a version 2 document too"
            );
        }
        for (name, wrong) in [
            (URL_ATTR, AttributeValue::N("1".into())),
            (STATUS_ATTR, AttributeValue::S("200".into())),
            (CREATED_ATTR, AttributeValue::N("1".into())),
            (EXPIRES_ATTR, AttributeValue::Bool(true)),
        ] {
            let mut item = good.clone();
            item.insert(name.into(), wrong);
            assert!(matches!(response(item), Err(StoreError::Corrupt(_))));
        }
    }

    #[test]
    fn hostile_statuses_never_panic() {
        document_survives("status", HOSTILE_NUMBERS);
    }

    #[test]
    fn hostile_generations_never_panic() {
        document_survives("generation", HOSTILE_NUMBERS);
    }

    #[test]
    fn hostile_heuristic_max_ages_never_panic() {
        document_survives("heuristic_max_age", HOSTILE_NUMBERS);
    }

    #[test]
    fn hostile_format_versions_never_panic() {
        document_survives("v", HOSTILE_NUMBERS);
    }

    #[test]
    fn hostile_times_never_panic() {
        for name in ["created_at", "expires"] {
            document_survives(name, HOSTILE_TIMES);
            document_survives(name, HOSTILE_NUMBERS);
        }
    }

    /// `item`'s document without `name`.
    fn without_in_document(mut item: Item, name: &str) -> Item {
        match item.get_mut(crate::codec::VALUE_ATTR) {
            Some(AttributeValue::M(doc)) => doc.remove(name),
            _ => panic!("not a document item"),
        };
        item
    }

    /// A version 1 document that lost one of its own four is corrupt, even though the item
    /// still holds it at the top: version 1 never read the top (the console helpers), and
    /// must not start to.
    #[test]
    fn a_version_1_document_missing_its_own_copy_is_corrupt_whatever_the_top_holds() {
        let good = encode_ok("k", &sample(b"x"), ItemFormat::Document, true);
        let v1 = as_version_1(&good);
        assert!(response(v1.clone()).is_ok());
        for name in AT_TOP {
            let item = without_in_document(v1.clone(), name);
            assert!(item.contains_key(name));
            assert!(
                matches!(response(item), Err(StoreError::Corrupt(_))),
                "a version 1 document without its own `{name}`"
            );
        }
        // Its own copies of the wrong type, the top ones right.
        for (name, wrong) in [
            (URL_ATTR, AttributeValue::N("1".into())),
            (STATUS_ATTR, AttributeValue::S("200".into())),
            (CREATED_ATTR, AttributeValue::N("1".into())),
            (EXPIRES_ATTR, AttributeValue::Null(true)),
        ] {
            let item = with_in_document(v1.clone(), name, wrong);
            assert!(
                matches!(response(item), Err(StoreError::Corrupt(_))),
                "a version 1 document's own `{name}` of the wrong type"
            );
        }
    }

    /// Only `1` and `2`, as N, are versions; nothing that merely reads like 2 is taken for it,
    /// and a version 2 layout under any other version is refused.
    #[test]
    fn versions_are_exactly_1_or_2_as_numbers() {
        let good = encode_ok("k", &sample(b"x"), ItemFormat::Document, true);
        for v in [
            "2.0", "02", "+2", " 2", "2 ", "3", "0", "-2", "2e0", "", "1.0",
        ] {
            let item = with_in_document(good.clone(), "v", AttributeValue::N(v.into()));
            assert!(
                matches!(response(item), Err(StoreError::Corrupt(_))),
                "version {v:?}"
            );
        }
        for wrong in [
            AttributeValue::S("2".into()),
            AttributeValue::Ns(vec!["2".into()]),
            AttributeValue::Bool(true),
        ] {
            let item = with_in_document(good.clone(), "v", wrong);
            assert!(matches!(response(item), Err(StoreError::Corrupt(_))));
        }
        let item = without_in_document(good.clone(), "v");
        assert!(matches!(response(item), Err(StoreError::Corrupt(_))));
        // A version 2 document (nothing of the four inside) labelled version 1: corrupt.
        let item = with_in_document(good, "v", AttributeValue::N("1".into()));
        assert!(matches!(response(item), Err(StoreError::Corrupt(_))));
    }

    /// A version 2 document reads exactly the four from the top: top-level names that only
    /// look like document names (method, headers, body, v, generation) change nothing, or the
    /// item is refused; a wrong value of the four is never replaced by a good one from
    /// elsewhere.
    #[test]
    fn a_version_2_document_takes_only_the_four_from_the_top() {
        let entry = sample(b"genuine");
        let good = encode_ok("k", &entry, ItemFormat::Document, true);
        for (name, value) in [
            ("method", AttributeValue::S("POST".into())),
            (
                "headers",
                AttributeValue::M(HashMap::from([(
                    "x-injected".to_owned(),
                    AttributeValue::L(vec![AttributeValue::S("1".into())]),
                )])),
            ),
            ("v", AttributeValue::N("1".into())),
            ("generation", AttributeValue::N("7".into())),
            ("http_version", AttributeValue::S("HTTP/0.9".into())),
        ] {
            let mut item = good.clone();
            item.insert(name.into(), value);
            match response(item) {
                Ok(read) => {
                    assert_eq!(read.method, entry.method, "top-level `{name}`");
                    assert!(
                        !read.headers.contains_key("x-injected"),
                        "top-level `{name}`"
                    );
                    assert_eq!(read.generation, entry.generation, "top-level `{name}`");
                    assert_eq!(read.version, entry.version, "top-level `{name}`");
                    assert_eq!(read.body, entry.body, "top-level `{name}`");
                }
                Err(StoreError::Corrupt(_)) => {}
                Err(e) => panic!("top-level `{name}`: {e:?}"),
            }
        }
        // A body at the top of a document item says two things: refused.
        let mut item = good.clone();
        item.insert(BODY_ATTR.into(), AttributeValue::S("injected".into()));
        assert!(matches!(response(item), Err(StoreError::Corrupt(_))));
        // Huge and odd values of the four at the top: no panic, and what decodes is what they say.
        for (name, value) in [
            (URL_ATTR, AttributeValue::S("u".repeat(350_000))),
            (URL_ATTR, AttributeValue::S(String::new())),
            (URL_ATTR, AttributeValue::Ss(vec!["https://a/".into()])),
            (STATUS_ATTR, AttributeValue::N("1".repeat(10_000))),
            (STATUS_ATTR, AttributeValue::N("99".into())),
            (STATUS_ATTR, AttributeValue::Ns(vec!["200".into()])),
            (CREATED_ATTR, AttributeValue::S("9".repeat(100_000))),
            (EXPIRES_ATTR, AttributeValue::L(vec![])),
            (EXPIRES_ATTR, AttributeValue::M(HashMap::new())),
        ] {
            let mut item = good.clone();
            item.insert(name.into(), value.clone());
            survives(item.clone());
            if let Ok(read) = response(item) {
                if let AttributeValue::S(url) = &value {
                    if name == URL_ATTR {
                        assert_eq!(&read.url, url);
                        continue;
                    }
                }
                panic!("top-level `{name}` = {value:?} decoded");
            }
        }
    }

    /// A tombstone never reads as a version 2 entry, whatever of the four it holds at the top,
    /// and a version 2 document with `tombstone` beside it is no entry either.
    #[test]
    fn tombstones_and_version_2_documents_never_mix() {
        use crate::codec::{decode, encode_tombstone, Decoded, TOMBSTONE_ATTR};
        let good = encode_ok("k", &sample(b"x"), ItemFormat::Document, true);
        let mut item = good.clone();
        item.insert(TOMBSTONE_ATTR.into(), AttributeValue::Bool(true));
        assert!(!matches!(decode(item), Ok(Decoded::Response(_))));
        let mut tomb = encode_tombstone("k", 9, std::time::UNIX_EPOCH, true);
        for name in [URL_ATTR, STATUS_ATTR] {
            tomb.insert(name.into(), good[name].clone());
        }
        tomb.insert(
            crate::codec::VALUE_ATTR.into(),
            AttributeValue::M(HashMap::from([(
                "v".to_owned(),
                AttributeValue::N("2".into()),
            )])),
        );
        assert!(matches!(decode(tomb), Err(StoreError::Corrupt(_))));
    }
}
