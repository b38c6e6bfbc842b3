//! Conversations and their messages, and the explicit state machine a conversation moves
//! through: with the bot → waiting for a human → with a human → resolved (→ with the bot).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{AgentId, AttachmentRef, ConversationId, CustomerId, HandoffTicket, Lang, OrderId};
use crate::nlu::Alternative;

/// Who holds the conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConversationState {
    /// The bot answers.
    Bot,
    /// Handed off; waiting in the human queue.
    WaitingForHuman,
    /// An agent has taken it.
    WithHuman,
    /// Closed by an agent; the next shopper message goes back to the bot.
    Resolved,
}

/// Something that can happen to a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Handoff,
    AgentClaims,
    Resolve,
    ShopperWritesAfterResolution,
    HandBackToBot,
    /// The holding agent went away, was deleted, did not answer in time, or transferred the
    /// conversation to a team: it waits again, at its original place.
    ReturnToQueue,
    /// Handed from one agent straight to another.
    Transfer,
}

/// A transition that the state machine does not allow.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("cannot {transition:?} a conversation that is {from:?}")]
pub struct IllegalTransition {
    pub from: ConversationState,
    pub transition: Transition,
}

impl ConversationState {
    /// The state after `t`, or why it cannot happen.
    pub fn apply(self, t: Transition) -> Result<Self, IllegalTransition> {
        use ConversationState::*;
        use Transition::*;
        match (self, t) {
            (Bot, Handoff) => Ok(WaitingForHuman),
            (WaitingForHuman, AgentClaims) => Ok(WithHuman),
            (WaitingForHuman | WithHuman, Resolve) => Ok(Resolved),
            (WithHuman | WaitingForHuman, HandBackToBot) => Ok(Bot),
            (WithHuman, ReturnToQueue) => Ok(WaitingForHuman),
            (WithHuman, Transfer) => Ok(WithHuman),
            (Resolved, ShopperWritesAfterResolution) => Ok(Bot),
            (from, transition) => Err(IllegalTransition { from, transition }),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bot => "bot",
            Self::WaitingForHuman => "waiting_for_human",
            Self::WithHuman => "with_human",
            Self::Resolved => "resolved",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "bot" => Some(Self::Bot),
            "waiting_for_human" => Some(Self::WaitingForHuman),
            "with_human" => Some(Self::WithHuman),
            "resolved" => Some(Self::Resolved),
            _ => None,
        }
    }
}

/// What the bot remembers between turns.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Slots {
    /// The bot asked for an order number and waits for it.
    #[serde(default)]
    pub awaiting_order_number: bool,
    /// Consecutive messages the bot did not understand or could not answer.
    #[serde(default)]
    pub misses: u32,
    /// An anonymous shopper named this order; the bot waits for a contact detail on it (email,
    /// phone or postcode) before describing it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_order: Option<OrderId>,
}

/// A conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct Conversation {
    pub id: ConversationId,
    pub customer_id: CustomerId,
    /// The customer id was verified (the shop signed it); otherwise the shopper is anonymous
    /// and `customer_id` is a generated `anon-…` id with no profile.
    pub verified: bool,
    pub channel: String,
    pub lang: Lang,
    pub state: ConversationState,
    pub slots: Slots,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Why the conversation was handed off, while waiting for or with a human.
    pub handoff_reason: Option<String>,
    /// The intent that triggered the handoff.
    pub handoff_intent: Option<String>,
    /// When the conversation entered the queue; kept when an agent loses it back to the queue,
    /// so it returns at its original place.
    pub handoff_at: Option<DateTime<Utc>>,
    /// Bumped by every committed change; a write is conditional on the version it read.
    pub version: i64,
    /// The queue ticket while waiting for or held by a human.
    pub ticket: Option<HandoffTicket>,
    /// The agent holding it (`WithHuman`).
    pub agent_id: Option<AgentId>,
    pub assigned_at: Option<DateTime<Utc>>,
    /// The first human answer since the handoff.
    pub first_response_at: Option<DateTime<Utc>>,
    /// The resolution code an agent gave.
    pub resolution: Option<String>,
    /// The shopper's satisfaction rating (1-5) after resolution.
    pub csat_score: Option<i32>,
}

impl Conversation {
    /// Moves through the state machine: the only way a conversation's state changes.
    pub fn transition(&mut self, t: Transition) -> Result<ConversationState, IllegalTransition> {
        let from = self.state;
        self.state = from.apply(t)?;
        Ok(from)
    }
}

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Author {
    Shopper,
    Bot,
    Agent,
    System,
}

impl Author {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Shopper => "shopper",
            Self::Bot => "bot",
            Self::Agent => "agent",
            Self::System => "system",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "shopper" => Some(Self::Shopper),
            "bot" => Some(Self::Bot),
            "agent" => Some(Self::Agent),
            "system" => Some(Self::System),
            _ => None,
        }
    }
}

/// The route decision stored with a shopper message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteDecision {
    /// `bot` or `human`.
    pub route: String,
    /// Why, in a stable machine-readable form (e.g. `intent_routes_to_human:complaint`).
    pub reason: String,
}

/// A message about to be stored.
#[derive(Debug, Clone, PartialEq)]
pub struct NewMessage {
    pub author: Author,
    pub text: String,
    pub at: DateTime<Utc>,
    pub channel: String,
    pub intent: Option<String>,
    pub confidence: Option<f32>,
    pub out_of_scope: Option<bool>,
    pub alternatives: Vec<Alternative>,
    pub route: Option<RouteDecision>,
    pub client_message_id: Option<String>,
    /// The agent who wrote it (agent messages and notes).
    pub agent_id: Option<AgentId>,
    /// A private note: shown to agents, never to the shopper.
    pub private: bool,
    /// A photo the shopper attached (the text is then its caption, possibly empty).
    pub attachment: Option<AttachmentRef>,
}

impl NewMessage {
    /// A plain message: no classification, route or agent; visible to the shopper.
    pub fn plain(
        author: Author,
        text: impl Into<String>,
        channel: &str,
        at: DateTime<Utc>,
    ) -> Self {
        Self {
            author,
            text: text.into(),
            at,
            channel: channel.to_string(),
            intent: None,
            confidence: None,
            out_of_scope: None,
            alternatives: Vec::new(),
            route: None,
            client_message_id: None,
            agent_id: None,
            private: false,
            attachment: None,
        }
    }
}

/// A stored message.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub id: i64,
    pub body: NewMessage,
}

#[cfg(test)]
mod tests {
    use super::ConversationState::*;
    use super::Transition::*;

    #[test]
    fn state_machine_table() {
        let table = [
            (Bot, Handoff, Some(WaitingForHuman)),
            (Bot, AgentClaims, None),
            (Bot, Resolve, None),
            (WaitingForHuman, AgentClaims, Some(WithHuman)),
            (WaitingForHuman, Handoff, None),
            (WaitingForHuman, Resolve, Some(Resolved)),
            (WithHuman, Resolve, Some(Resolved)),
            (WithHuman, HandBackToBot, Some(Bot)),
            (Resolved, ShopperWritesAfterResolution, Some(Bot)),
            (Resolved, AgentClaims, None),
            (WithHuman, ReturnToQueue, Some(WaitingForHuman)),
            (WaitingForHuman, ReturnToQueue, None),
            (WithHuman, Transfer, Some(WithHuman)),
            (WaitingForHuman, Transfer, None),
            (Bot, HandBackToBot, None),
            (Resolved, Resolve, None),
        ];
        for (from, t, expect) in table {
            assert_eq!(from.apply(t).ok(), expect, "{from:?} --{t:?}-->");
        }
        for s in [Bot, WaitingForHuman, WithHuman, Resolved] {
            assert_eq!(super::ConversationState::parse(s.as_str()), Some(s));
        }
    }
}
