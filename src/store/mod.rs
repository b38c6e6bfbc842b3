//! Persistence, split by concern: conversations and their turns, customers, orders, agents,
//! the event log, shoppers' photos, and the messaging channels' contacts, inbox and outbox
//! (`channels.rs`). `Store` is all of them together; the embedded SQLite backend is the default
//! and a PostgreSQL backend implements the same traits and passes the same suite
//! (`tests/api/store_suite.rs`). Row structs in `rows.rs` are shared by backends, so a backend
//! only writes SQL.

pub mod backend;
pub mod channel_sql;
pub mod channels;
pub mod files;
pub mod postgres;
pub mod rows;
pub mod sqlite;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

pub use channels::ChannelStore;

use crate::domain::{
    Agent, AgentId, Attachment, AttachmentId, Conversation, ConversationId, Customer, CustomerId,
    Event, Message, NewEvent, NewMessage, Order, OrderId,
};

/// Storage failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another request already stored this idempotency key.
    #[error("idempotency key already used")]
    DuplicateKey,
    /// The conversation changed since it was read (its version moved on); reload and retry.
    #[error("the conversation changed concurrently")]
    Conflict,
    /// The agent already holds as many conversations as their capacity allows.
    #[error("the agent is at capacity")]
    OverCapacity,
    /// A unique value (e.g. an agent id) is taken.
    #[error("{0} already exists")]
    AlreadyExists(&'static str),
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

/// Everything one change of a conversation writes, committed together or not at all: the
/// conversation's new state, its messages (each also appended as a `message_added` event),
/// the other events the change causes, and the retry key.
#[derive(Debug, Clone)]
pub struct Turn {
    /// The conversation after the change (inserted when `is_new`, else updated).
    pub conversation: Conversation,
    pub is_new: bool,
    /// The version the change was computed from; the update only happens while the stored
    /// version is still this one ([`StoreError::Conflict`] otherwise). The stored version
    /// becomes `expected_version + 1`.
    pub expected_version: i64,
    pub messages: Vec<NewMessage>,
    /// Events besides `message_added`, in order.
    pub events: Vec<NewEvent>,
    pub idempotency: Option<IdempotencyRecord>,
    /// When an agent takes the conversation: the agent and their capacity, checked in the same
    /// transaction ([`StoreError::OverCapacity`]).
    pub capacity_guard: Option<(AgentId, u32)>,
}

impl Turn {
    /// A change of an existing conversation read at `conversation.version`.
    pub fn update(conversation: Conversation) -> Self {
        Self {
            expected_version: conversation.version,
            conversation,
            is_new: false,
            messages: Vec::new(),
            events: Vec::new(),
            idempotency: None,
            capacity_guard: None,
        }
    }
}

/// What a committed turn stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Committed {
    /// Ids of the stored messages, in order.
    pub message_ids: Vec<i64>,
    /// The highest event sequence written (0 when none).
    pub last_seq: i64,
}

/// Conversations, their messages, retry keys and the queue.
#[async_trait]
pub trait ConversationStore: Send + Sync {
    async fn conversation(&self, id: ConversationId) -> Result<Option<Conversation>, StoreError>;
    async fn messages(&self, id: ConversationId) -> Result<Vec<Message>, StoreError>;
    /// The stored answer for `(scope, client_message_id)`, if that message was accepted.
    async fn idempotent(
        &self,
        scope: &str,
        client_message_id: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError>;
    /// Commits a turn atomically and durably: [`StoreError::DuplicateKey`] when its retry key
    /// was taken meanwhile, [`StoreError::Conflict`] when the conversation changed since it was
    /// read, [`StoreError::OverCapacity`] when the capacity guard fails. Nothing is written then.
    async fn record_turn(&self, turn: &Turn) -> Result<Committed, StoreError>;
    /// Conversations waiting for a human (at most `limit`, earliest deadline first).
    async fn waiting(&self, limit: i64) -> Result<Vec<Conversation>, StoreError>;
    /// How many waiting conversations are served before `me` in its line (its ticket's team and
    /// language, earlier in the policy order): `routing::queue::ahead_of` over the whole queue,
    /// counted by the database. 0 for a conversation without a ticket.
    async fn ahead_in_line(&self, me: &Conversation) -> Result<usize, StoreError>;
    /// Conversations an agent holds.
    async fn held_by(&self, agent: &AgentId) -> Result<Vec<Conversation>, StoreError>;
    /// Conversations held by anyone since before `before` with no human answer yet.
    async fn unanswered_since(
        &self,
        before: DateTime<Utc>,
    ) -> Result<Vec<Conversation>, StoreError>;
    /// Conversations whose first human answer came at or after `since`, earliest first (the
    /// admin view's SLA attainment: their tickets say whether the answer was late).
    async fn answered_since(&self, since: DateTime<Utc>) -> Result<Vec<Conversation>, StoreError>;
    /// How long recently resolved conversations were held (seconds), newest first.
    async fn recent_handle_seconds(&self, limit: i64) -> Result<Vec<i64>, StoreError>;
    /// Conversations this customer opened since `since`.
    async fn conversations_since(
        &self,
        customer: &CustomerId,
        since: DateTime<Utc>,
    ) -> Result<i64, StoreError>;
    /// Stores a satisfaction rating once (false when the conversation already has one).
    async fn set_csat(
        &self,
        id: ConversationId,
        score: i32,
        comment: Option<&str>,
        event: NewEvent,
    ) -> Result<bool, StoreError>;
}

/// Customer profiles.
#[async_trait]
pub trait CustomerStore: Send + Sync {
    async fn upsert_customers(&self, customers: &[Customer]) -> Result<usize, StoreError>;
    async fn customer(&self, id: &CustomerId) -> Result<Option<Customer>, StoreError>;
    async fn customer_count(&self) -> Result<i64, StoreError>;
}

/// Orders of the embedded order provider.
#[async_trait]
pub trait OrderStore: Send + Sync {
    async fn upsert_orders(&self, orders: &[Order]) -> Result<usize, StoreError>;
    async fn order(&self, id: &OrderId) -> Result<Option<Order>, StoreError>;
    /// The customer's most recent orders.
    async fn orders_of(&self, customer: &CustomerId, limit: i64) -> Result<Vec<Order>, StoreError>;
}

/// Agents and their credentials (token hashes only).
#[async_trait]
pub trait AgentStore: Send + Sync {
    /// [`StoreError::AlreadyExists`] when the id is taken.
    async fn create_agent(&self, agent: &Agent, token_hash: &str) -> Result<(), StoreError>;
    async fn agent(&self, id: &AgentId) -> Result<Option<Agent>, StoreError>;
    async fn agent_by_token_hash(&self, hash: &str) -> Result<Option<Agent>, StoreError>;
    async fn agents(&self) -> Result<Vec<Agent>, StoreError>;
    async fn update_agent(&self, agent: &Agent) -> Result<bool, StoreError>;
    /// Sets only the agent's availability, leaving the rest of the row (which an admin may be
    /// changing at the same moment) as stored; false when there is no such agent.
    async fn set_agent_status(
        &self,
        id: &AgentId,
        status: crate::domain::AgentStatus,
    ) -> Result<bool, StoreError>;
    async fn delete_agent(&self, id: &AgentId) -> Result<bool, StoreError>;
    async fn touch_agent(&self, id: &AgentId, at: DateTime<Utc>) -> Result<(), StoreError>;
}

/// Which events a reader wants.
#[derive(Debug, Clone)]
pub enum EventFilter {
    /// One conversation's events that its shopper may see.
    Shopper(ConversationId),
    /// Events an agent should see: queue changes in their teams, and everything about the
    /// conversations they hold.
    Agent { id: AgentId, teams: Vec<String> },
    /// Everything (admin views, outbound channels).
    All,
}

/// The event log.
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Events after `after` matching `filter`, in sequence order, at most `limit`.
    async fn events_after(
        &self,
        filter: &EventFilter,
        after: i64,
        limit: i64,
    ) -> Result<Vec<Event>, StoreError>;
    /// The highest sequence written so far.
    async fn last_seq(&self) -> Result<i64, StoreError>;
}

/// Photos shoppers attach: metadata and bytes. The embedded store keeps the bytes as files in
/// the data directory (written to a temporary file, fsynced, renamed, directory fsynced, all
/// before the metadata row commits); PostgreSQL keeps them in the database, since instances
/// share no disk. An attachment is stored first and then named by the message of the turn
/// that shows it (`NewMessage::attachment`).
#[async_trait]
pub trait AttachmentStore: Send + Sync {
    /// Stores `bytes` (described by `meta`, whose conversation must exist) durably.
    async fn put_attachment(&self, meta: &Attachment, bytes: &[u8]) -> Result<(), StoreError>;
    /// The metadata, without the bytes.
    async fn attachment(&self, id: AttachmentId) -> Result<Option<Attachment>, StoreError>;
    /// The bytes; [`StoreError::Corrupt`] when they no longer match their SHA-256.
    async fn attachment_bytes(&self, id: AttachmentId) -> Result<Option<Vec<u8>>, StoreError>;
    /// Removes an attachment that no message names (an upload whose turn was not stored);
    /// false when a message names it or there is none.
    async fn delete_attachment(&self, id: AttachmentId) -> Result<bool, StoreError>;
}

/// The storage the service runs on.
#[async_trait]
pub trait Store:
    ConversationStore
    + CustomerStore
    + OrderStore
    + AgentStore
    + EventStore
    + ChannelStore
    + AttachmentStore
{
    /// Cheap round trip proving the database answers.
    async fn ping(&self) -> Result<(), StoreError>;
}
