//! The item decoder against arbitrary DynamoDB items: it must return an entry or
//! `StoreError::Corrupt`, never panic, never allocate without bound.
//!
//! ```text
//! cargo fuzz run decode_item -- -max_total_time=300
//! ```
#![no_main]

use std::collections::HashMap;

use arbitrary::Arbitrary;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use libfuzzer_sys::fuzz_target;
use reqwest_dynamodb_cache::codec;

/// An attribute value, as arbitrary as DynamoDB allows.
#[derive(Arbitrary, Debug)]
enum Value {
    S(String),
    N(String),
    B(Vec<u8>),
    Bool(bool),
    Null,
    L(Vec<Value>),
    M(Vec<(Name, Value)>),
}

/// Attribute names: mostly the ones the decoder looks for, so it gets past the first checks.
#[derive(Arbitrary, Debug)]
enum Name {
    Known(u8),
    Other(String),
}

const KNOWN: &[&str] = &[
    "key", "value", "ttl", "body", "url", "status", "expires", "created_at", "size", "v",
    "http_version", "method", "headers", "request_headers", "heuristic_max_age", "generation",
];

impl Name {
    fn text(self) -> String {
        match self {
            Name::Known(i) => KNOWN[i as usize % KNOWN.len()].to_owned(),
            Name::Other(s) => s,
        }
    }
}

impl Value {
    fn into_attribute(self) -> AttributeValue {
        match self {
            Value::S(s) => AttributeValue::S(s),
            Value::N(n) => AttributeValue::N(n),
            Value::B(b) => AttributeValue::B(Blob::new(b)),
            Value::Bool(b) => AttributeValue::Bool(b),
            Value::Null => AttributeValue::Null(true),
            Value::L(l) => AttributeValue::L(l.into_iter().map(Value::into_attribute).collect()),
            Value::M(m) => AttributeValue::M(
                m.into_iter()
                    .map(|(k, v)| (k.text(), v.into_attribute()))
                    .collect(),
            ),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Input {
    /// A whole item of arbitrary shape.
    Item(Vec<(Name, Value)>),
    /// A binary-format value (tag byte included) with a body.
    Binary(Vec<u8>, Vec<u8>),
}

fuzz_target!(|input: Input| {
    let item: HashMap<String, AttributeValue> = match input {
        Input::Item(attrs) => attrs
            .into_iter()
            .map(|(k, v)| (k.text(), v.into_attribute()))
            .collect(),
        Input::Binary(value, body) => HashMap::from([
            ("value".to_owned(), AttributeValue::B(Blob::new(value))),
            ("body".to_owned(), AttributeValue::B(Blob::new(body))),
        ]),
    };
    let size = codec::item_size(&item);
    let _ = codec::encoded_size(&item);
    if let Ok(entry) = codec::decode(item) {
        // Whatever decodes must encode again, and decode to the same body.
        let again = codec::encode("k", &entry, codec::ItemFormat::Document, true);
        let back = codec::decode(again).expect("an entry we decoded re-encodes");
        assert_eq!(back.body, entry.body);
        let _ = size;
    }
});
