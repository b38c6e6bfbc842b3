//! Switchboard: after-sales chat that understands shoppers (Chinese and English), answers what
//! it can and routes the rest to humans. See ARCHITECTURE.md for the map.

pub mod commands;
pub mod intents;
pub mod models;
pub mod nlu;
pub mod telemetry;
