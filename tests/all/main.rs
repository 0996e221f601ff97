//! Integration tests: the middleware against a real DynamoDB API (embedded dynoxide, or
//! `DYNAMODB_ENDPOINT`) and a real local HTTP origin that counts its requests.

mod caller_requests;
mod coalescing;
mod compression;
mod conformance;
mod credentials;
mod custom_store;
mod end_to_end;
mod faults;
mod freshness;
mod hostile_items;
mod hot_keys;
mod invalidation;
mod item_size;
mod keys;
mod lambda;
#[cfg(feature = "s3")]
mod large_bodies;
mod maintenance;
mod methods;
mod namespaces;
mod ordered_writes;
mod readme;
mod redaction;
mod redirects;
mod reliability;
mod request_modes;
mod revalidation;
mod soak;
mod stale;
mod store_errors;
mod streaming;
mod support;
mod table;
mod tiered;
mod vary;
