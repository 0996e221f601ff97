//! Integration tests: the middleware against a real DynamoDB API (embedded dynoxide, or
//! `DYNAMODB_ENDPOINT`) and a real local HTTP origin that counts its requests.

mod coalescing;
mod end_to_end;
mod faults;
mod freshness;
mod item_size;
mod rfc9111;
mod support;
mod table;
mod tiered;
