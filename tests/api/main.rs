//! Integration tests: one binary, each test with its own server on port 0 and its own data
//! directory; the real classifier (loaded once per binary, read-only) is shared.

mod attachments;
mod bad_input;
mod browser;
mod channels;
mod classifier;
mod console;
mod contract;
mod conversations;
mod durability;
mod encoder;
mod helpers;
mod identity;
mod kb_answers;
mod order_api;
mod queue;
mod scale_out;
mod store_suite;
