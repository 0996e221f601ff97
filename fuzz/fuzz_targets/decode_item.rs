//! The item decoder against arbitrary DynamoDB items: it must return an entry, a tombstone or
//! `StoreError::Corrupt`, never panic, never allocate without bound (headers, compressed
//! bodies and metadata are bounded by the codec's limits).
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
    "key",
    "value",
    "ttl",
    "body",
    "url",
    "status",
    "expires",
    "created_at",
    "size",
    "v",
    "http_version",
    "method",
    "headers",
    "request_headers",
    "heuristic_max_age",
    "generation",
    "revision",
    "tombstone",
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
    /// A binary item whose body says it is a zstd frame: a frame of these bytes (or raw bytes
    /// posing as one), the way a decompression bomb would arrive.
    Zstd {
        meta: Vec<u8>,
        body: Vec<u8>,
        compress: bool,
        /// Repeats the body this many times (up to about 2 MiB in all) before compressing, to
        /// reach expansions past the codec's bound.
        repeat: u16,
    },
}

fuzz_target!(|input: Input| {
    let compressed = matches!(input, Input::Zstd { .. });
    let item: HashMap<String, AttributeValue> = match input {
        Input::Item(attrs) => attrs
            .into_iter()
            .map(|(k, v)| (k.text(), v.into_attribute()))
            .collect(),
        Input::Binary(value, body) => HashMap::from([
            ("value".to_owned(), AttributeValue::B(Blob::new(value))),
            ("body".to_owned(), AttributeValue::B(Blob::new(body))),
        ]),
        Input::Zstd {
            meta,
            body,
            compress,
            repeat,
        } => {
            let most = (2 << 20) / body.len().max(1);
            let body = body.repeat(usize::from(repeat).min(most) + 1);
            let body = if compress {
                zstd::bulk::compress(&body, 1).unwrap_or_default()
            } else {
                body
            };
            let mut value = vec![1u8];
            value.extend(meta);
            HashMap::from([
                ("value".to_owned(), AttributeValue::B(Blob::new(value))),
                ("body".to_owned(), AttributeValue::B(Blob::new(body))),
                ("body_encoding".to_owned(), AttributeValue::S("zstd".into())),
            ])
        }
    };
    let _ = codec::item_size(&item);
    let _ = codec::encoded_size(&item);
    match codec::decode(item) {
        Ok(codec::Decoded::Response(entry)) => {
            // Nothing larger than the bound is ever materialised from a compressed body.
            assert!(!compressed || entry.body.len() <= codec::MAX_BODY_SIZE);
            assert!(entry.headers.len() <= codec::MAX_HEADER_FIELDS);
            // Whatever decodes must encode again, and decode to the same entry.
            let again = codec::encode(
                "k",
                &entry,
                codec::ItemFormat::Document,
                codec::Compression::default(),
                true,
            )
                .expect("an entry we decoded encodes");
            let back = codec::decode(again)
                .expect("an entry we encoded decodes")
                .into_response()
                .expect("a response, not a tombstone");
            assert_eq!(back.body, entry.body);
            assert_eq!(back.revision, entry.revision);
        }
        Ok(_) | Err(_) => {}
    }
});
