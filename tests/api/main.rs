//! Integration tests: one binary, each test with its own server on port 0 and its own data
//! directory; the real classifier (loaded once per binary, read-only) is shared.

mod bad_input;
mod classifier;
mod conversations;
mod durability;
mod encoder;
mod helpers;
mod order_api;
mod store_suite;
