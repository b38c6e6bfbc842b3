//! Events: what happened to a conversation, appended in the same transaction as the change
//! that caused it, with a monotonic sequence. Live clients (shopper widget, agent console) and
//! outbound channels read them in order and resume from the last sequence they saw.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{AgentId, ConversationId};

/// The kind of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A message was stored (shopper, bot, agent, system, or a private note).
    MessageAdded,
    /// The conversation's state changed.
    StateChanged,
    /// The conversation entered, moved in or left the human queue.
    QueueChanged,
    /// An agent took (or was given) the conversation.
    Assigned,
    /// The shopper is asked to rate the conversation.
    CsatRequested,
    /// The shopper rated the conversation.
    CsatReceived,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MessageAdded => "message_added",
            Self::StateChanged => "state_changed",
            Self::QueueChanged => "queue_changed",
            Self::Assigned => "assigned",
            Self::CsatRequested => "csat_requested",
            Self::CsatReceived => "csat_received",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "message_added" => Self::MessageAdded,
            "state_changed" => Self::StateChanged,
            "queue_changed" => Self::QueueChanged,
            "assigned" => Self::Assigned,
            "csat_requested" => Self::CsatRequested,
            "csat_received" => Self::CsatReceived,
            _ => return None,
        })
    }
}

/// An event about to be stored.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub kind: EventKind,
    pub data: serde_json::Value,
    /// Shown to the shopper's live connection (private notes and queue internals are not).
    pub shopper_visible: bool,
}

impl NewEvent {
    pub fn public(kind: EventKind, data: serde_json::Value) -> Self {
        Self {
            kind,
            data,
            shopper_visible: true,
        }
    }
    pub fn internal(kind: EventKind, data: serde_json::Value) -> Self {
        Self {
            kind,
            data,
            shopper_visible: false,
        }
    }
}

/// A stored event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub seq: i64,
    pub conversation_id: ConversationId,
    pub kind: EventKind,
    pub data: serde_json::Value,
    pub shopper_visible: bool,
    /// The agent holding the conversation when the event happened, if any.
    pub agent_id: Option<AgentId>,
    /// The conversation's queue team when the event happened, if any.
    pub team: Option<String>,
    pub at: DateTime<Utc>,
}
