//! Persistence behind one trait: conversations, messages, customers, orders and idempotency
//! records. The embedded SQLite backend is the default; the PostgreSQL backend on the roadmap
//! implements the same trait and must pass the same suite (`tests/api/store_suite.rs`).

pub mod sqlite;

use async_trait::async_trait;

use crate::domain::{
    Conversation, ConversationId, Customer, CustomerId, Message, NewMessage, Order, OrderId,
};

/// Storage failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another request already stored this idempotency key.
    #[error("idempotency key already used")]
    DuplicateKey,
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// The answer stored for an idempotency key.
#[derive(Debug, Clone, PartialEq)]
pub struct IdempotencyRecord {
    /// Where the key is unique: `conversation:<id>`, `customer:<id>` or `anonymous`.
    pub scope: String,
    pub client_message_id: String,
    /// SHA-256 of the request the key was first used with (empty for keys stored before
    /// fingerprints existed).
    pub request_hash: String,
    pub conversation_id: ConversationId,
    pub response: serde_json::Value,
}

/// Everything one shopper turn writes, committed together or not at all.
#[derive(Debug, Clone)]
pub struct Turn {
    /// The conversation after the turn (inserted when `is_new`, else updated).
    pub conversation: Conversation,
    pub is_new: bool,
    /// The shopper's message first, then the bot's replies.
    pub messages: Vec<NewMessage>,
    pub idempotency: Option<IdempotencyRecord>,
}

/// The storage the service runs on.
#[async_trait]
pub trait Store: Send + Sync {
    /// Cheap round trip proving the database answers.
    async fn ping(&self) -> Result<(), StoreError>;

    async fn upsert_customers(&self, customers: &[Customer]) -> Result<usize, StoreError>;
    async fn customer(&self, id: &CustomerId) -> Result<Option<Customer>, StoreError>;
    async fn customer_count(&self) -> Result<i64, StoreError>;

    async fn upsert_orders(&self, orders: &[Order]) -> Result<usize, StoreError>;
    async fn order(&self, id: &OrderId) -> Result<Option<Order>, StoreError>;

    async fn conversation(&self, id: ConversationId) -> Result<Option<Conversation>, StoreError>;
    async fn messages(&self, id: ConversationId) -> Result<Vec<Message>, StoreError>;

    /// The stored answer for `(scope, client_message_id)`, if that message was accepted.
    async fn idempotent(
        &self,
        scope: &str,
        client_message_id: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError>;

    /// Commits a turn atomically and durably; [`StoreError::DuplicateKey`] when its
    /// idempotency key was taken in the meantime (nothing is written then).
    async fn record_turn(&self, turn: &Turn) -> Result<(), StoreError>;
}
