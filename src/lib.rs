//! Switchboard: after-sales chat that understands shoppers (Chinese and English), answers what
//! it can and routes the rest to humans. See ARCHITECTURE.md for the map.

pub mod app;
pub mod channels;
pub mod commands;
pub mod desk;
pub mod dialogue;
pub mod domain;
pub mod http;
pub mod identity;
pub mod import;
pub mod intents;
pub mod live;
pub mod metrics;
pub mod models;
pub mod nlu;
pub mod orders;
pub mod routing;
pub mod settings;
pub mod store;
pub mod telemetry;
