//! Storage of the messaging channels (WhatsApp, Telegram, signed webhooks): platform contacts
//! and their conversations, the durable inbox of received messages, and the outbox of replies
//! waiting to be delivered. Both backends implement [`ChannelStore`] with the same SQL (see
//! `channel_sql.rs`); races between instances are decided by unique keys and conditional
//! writes on lease columns, never in process memory.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;
use crate::domain::{ConversationId, CustomerId};

/// A received platform message, as the webhook stores it before answering 200.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundRecord {
    /// `whatsapp`, `telegram` or `generic`.
    pub channel: String,
    /// The platform's id of the message; unique per channel.
    pub platform_message_id: String,
    /// The platform user (WhatsApp number, Telegram user id, the shop's customer id).
    pub user_id: String,
    /// Where replies go (WhatsApp number, Telegram chat id, the shop's customer id).
    pub address: String,
    /// The customer and conversation a first message from this user starts; ignored when the
    /// user is known already.
    pub new_customer_id: CustomerId,
    pub new_conversation_id: ConversationId,
    /// `text`, or the unsupported kind (`image`, `sticker`, `location`, `voice`, …).
    pub kind: String,
    pub text: String,
    /// The language the platform reports for the user, if any.
    pub lang: Option<String>,
    /// The platform's media id of an image, sticker or voice note.
    pub media_id: Option<String>,
    /// When the shopper sent it, by the platform's clock.
    pub sent_at: DateTime<Utc>,
    /// The platform's order (Telegram `update_id`, otherwise the send time in seconds).
    pub platform_order: i64,
}

/// An inbound message waiting to be processed.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct InboxItem {
    pub id: i64,
    pub channel: String,
    pub platform_message_id: String,
    pub conversation_id: String,
    pub customer_id: String,
    pub kind: String,
    pub text: String,
    pub lang: Option<String>,
    pub media_id: Option<String>,
    pub sent_at: DateTime<Utc>,
    pub platform_order: i64,
    pub attempts: i64,
}

/// Where an outbox row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxState {
    /// Waiting for (another) delivery attempt.
    Pending,
    /// Accepted by the platform.
    Sent,
    /// Given up after repeated failures; an admin may retry it.
    Dead,
}

impl OutboxState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sent => "sent",
            Self::Dead => "dead",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Self::Pending,
            "sent" => Self::Sent,
            "dead" => Self::Dead,
            _ => return None,
        })
    }
}

/// A reply to deliver to a platform (one per stored bot or agent message of a channel
/// conversation), written in the same transaction as the message.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct OutboxItem {
    pub id: i64,
    pub conversation_id: String,
    pub message_id: i64,
    pub channel: String,
    pub address: String,
    pub text: String,
    pub state: String,
    pub attempts: i64,
    /// Unix milliseconds of the next attempt.
    pub next_attempt_ms: i64,
    pub last_error: Option<String>,
    /// The platform's id of the delivered message (WhatsApp `wamid…`, Telegram message id).
    pub platform_message_id: Option<String>,
    /// The platform's latest delivery status (`sent`, `delivered`, `read`, `failed`).
    pub delivery_status: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

/// Result of a delivery attempt, as the sender records it.
#[derive(Debug, Clone, PartialEq)]
pub enum Attempt {
    /// The platform accepted the message (with its id when it gave one).
    Delivered { platform_message_id: Option<String> },
    /// Failed; try again at `retry_at_ms`, or park the row as dead when `None`.
    Failed {
        error: String,
        retry_at_ms: Option<i64>,
    },
}

/// Contacts, inbox and outbox of the messaging channels.
#[async_trait]
pub trait ChannelStore: Send + Sync {
    /// Stores received messages durably in one transaction, creating each unknown user's
    /// contact (customer and conversation); returns for each whether it was new (`false`: the
    /// platform delivered it before, possibly to another instance at the same moment).
    async fn store_inbound(&self, records: &[InboundRecord]) -> Result<Vec<bool>, StoreError>;
    /// Conversations with unprocessed inbound messages received at or before `settled_ms`
    /// whose inbox lease is free at `now_ms`, oldest first.
    async fn inbox_conversations(
        &self,
        settled_ms: i64,
        now_ms: i64,
        limit: i64,
    ) -> Result<Vec<ConversationId>, StoreError>;
    /// Takes the conversation's inbox lease for `owner` until `until_ms`; `false` when another
    /// worker holds it.
    async fn lease_inbox(
        &self,
        conversation: ConversationId,
        owner: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<bool, StoreError>;
    async fn release_inbox(
        &self,
        conversation: ConversationId,
        owner: &str,
    ) -> Result<(), StoreError>;
    /// The conversation's unprocessed inbound messages in the platform's order.
    async fn pending_inbox(
        &self,
        conversation: ConversationId,
    ) -> Result<Vec<InboxItem>, StoreError>;
    /// Marks an inbound message processed (`failed` after too many attempts).
    async fn finish_inbox(&self, id: i64, failed: bool) -> Result<(), StoreError>;
    /// Counts a failed processing attempt; the message stays pending.
    async fn retry_inbox(&self, id: i64) -> Result<(), StoreError>;

    /// Pending outbox rows due at `now_ms` that head their conversation's queue (no earlier
    /// pending row) and are not leased, oldest first.
    async fn due_outbox(&self, now_ms: i64, limit: i64) -> Result<Vec<OutboxItem>, StoreError>;
    /// Leases a due row for one delivery attempt; `false` when another sender has it.
    async fn lease_outbox(
        &self,
        id: i64,
        owner: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<bool, StoreError>;
    /// Records an attempt of a row this owner leased; `false` when the lease was lost.
    async fn record_attempt(
        &self,
        id: i64,
        owner: &str,
        attempt: &Attempt,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Outbox rows, newest first, optionally in one state.
    async fn outbox(
        &self,
        state: Option<OutboxState>,
        limit: i64,
    ) -> Result<Vec<OutboxItem>, StoreError>;
    async fn outbox_item(&self, id: i64) -> Result<Option<OutboxItem>, StoreError>;
    /// Puts a dead row back to pending with a fresh attempt count; `false` unless it was dead.
    async fn revive_outbox(&self, id: i64, now_ms: i64) -> Result<bool, StoreError>;
    /// Applies a platform delivery status (`sent` < `delivered` < `read`; `failed`) to the row
    /// that delivered `platform_message_id`, with the platform's reason for a failure; never
    /// moves back. `false` when no row matches.
    async fn update_delivery(
        &self,
        channel: &str,
        platform_message_id: &str,
        status: &str,
        error: Option<&str>,
    ) -> Result<bool, StoreError>;
    /// Makes the platform user the shop's customer (creating the contact when the user has
    /// not written yet); returns the user's conversation id.
    async fn link_contact(&self, link: &ContactLink) -> Result<ConversationId, StoreError>;
    /// Delivery statuses of a conversation's messages: `(message_id, state, delivery_status)`.
    async fn deliveries(
        &self,
        conversation: ConversationId,
    ) -> Result<Vec<(i64, String, Option<String>)>, StoreError>;
}

/// A shop's link between a platform user and one of its customers.
#[derive(Debug, Clone, PartialEq)]
pub struct ContactLink {
    pub channel: String,
    pub user_id: String,
    pub address: String,
    pub customer_id: CustomerId,
    /// The conversation a user never heard from before will have.
    pub new_conversation_id: ConversationId,
}

/// How far a delivery status has come; a status never moves back.
pub fn delivery_rank(status: &str) -> i64 {
    match status {
        "sent" => 1,
        "delivered" => 2,
        "read" => 3,
        "failed" => 4,
        _ => 0,
    }
}
