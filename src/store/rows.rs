//! Row structs: what a backend reads from a table, in plain column types, and their checked
//! conversion to domain values. Every backend selects into these, so mapping lives once.

use chrono::{DateTime, Utc};

use super::StoreError;
use crate::domain::{
    Agent, AgentId, AgentStatus, Attachment, AttachmentId, AttachmentRef, Author, Conversation,
    ConversationId, ConversationState, Customer, CustomerId, Event, EventKind, ImageType, Lang,
    Message, NewMessage, RouteDecision, Tier,
};

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

fn json<T: serde::de::DeserializeOwned>(s: &str, what: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|_| corrupt(what))
}

/// `conversations`.
#[derive(Debug, sqlx::FromRow)]
pub struct ConversationRow {
    pub id: String,
    pub customer_id: String,
    pub verified: i64,
    pub channel: String,
    pub lang: String,
    pub state: String,
    pub slots: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub handoff_reason: Option<String>,
    pub handoff_intent: Option<String>,
    pub handoff_at: Option<DateTime<Utc>>,
    pub version: i64,
    pub ticket: Option<String>,
    pub agent_id: Option<String>,
    pub assigned_at: Option<DateTime<Utc>>,
    pub first_response_at: Option<DateTime<Utc>>,
    pub resolution: Option<String>,
    pub csat_score: Option<i64>,
}

impl TryFrom<ConversationRow> for Conversation {
    type Error = StoreError;
    fn try_from(r: ConversationRow) -> Result<Self, StoreError> {
        Ok(Conversation {
            id: ConversationId::parse(&r.id).map_err(|_| corrupt("conversation id"))?,
            customer_id: CustomerId::parse(&r.customer_id).map_err(|_| corrupt("customer id"))?,
            verified: r.verified != 0,
            channel: r.channel,
            lang: Lang::parse(&r.lang).unwrap_or_default(),
            state: ConversationState::parse(&r.state).ok_or_else(|| corrupt("state"))?,
            slots: json(&r.slots, "slots")?,
            created_at: r.created_at,
            updated_at: r.updated_at,
            handoff_reason: r.handoff_reason,
            handoff_intent: r.handoff_intent,
            handoff_at: r.handoff_at,
            version: r.version,
            ticket: r.ticket.as_deref().map(|t| json(t, "ticket")).transpose()?,
            agent_id: r
                .agent_id
                .as_deref()
                .map(|a| AgentId::parse(a).map_err(|_| corrupt("agent id")))
                .transpose()?,
            assigned_at: r.assigned_at,
            first_response_at: r.first_response_at,
            resolution: r.resolution,
            csat_score: r.csat_score.map(|s| s as i32),
        })
    }
}

/// How many waiting conversations are served before one in its line (`$1` team, `$2`
/// language): the policy order of `routing::queue::compare` — earlier `sla_due` (`$3`), then
/// higher priority (`$4`), then waiting longer (`$5`), then the smaller id (`$6`) — as SQL, so
/// that a place in line is one count over an index, not a read of the whole queue. The store
/// contract tests hold it to `routing::queue::ahead_of`.
pub const AHEAD_IN_LINE: &str = "SELECT COUNT(*) FROM conversations
     WHERE state = 'waiting_for_human' AND ticket IS NOT NULL AND team = $1 AND queue_lang = $2 AND id <> $6
       AND (sla_due < $3 OR (sla_due = $3 AND (priority > $4 OR (priority = $4
            AND (COALESCE(handoff_at, updated_at) < $5
                 OR (COALESCE(handoff_at, updated_at) = $5 AND id < $6))))))";

/// `messages`.
#[derive(Debug, sqlx::FromRow)]
pub struct MessageRow {
    pub id: i64,
    pub author: String,
    pub text: String,
    pub at: DateTime<Utc>,
    pub channel: String,
    pub intent: Option<String>,
    pub confidence: Option<f64>,
    pub out_of_scope: Option<i64>,
    pub alternatives: String,
    pub route: Option<String>,
    pub route_reason: Option<String>,
    pub client_message_id: Option<String>,
    pub agent_id: Option<String>,
    pub private: i64,
    /// From `LEFT JOIN attachments`: the attachment the message names, if any.
    pub attachment_id: Option<String>,
    pub attachment_type: Option<String>,
    pub attachment_size: Option<i64>,
}

/// The message columns every backend selects, with its attachment (`messages m LEFT JOIN
/// attachments a`).
pub const MESSAGE_COLUMNS: &str = "m.id, m.author, m.text, m.at, m.channel, m.intent, m.confidence, m.out_of_scope, m.alternatives, m.route, m.route_reason, m.client_message_id, m.agent_id, m.private, a.id AS attachment_id, a.content_type AS attachment_type, a.size AS attachment_size";

impl TryFrom<MessageRow> for Message {
    type Error = StoreError;
    fn try_from(r: MessageRow) -> Result<Self, StoreError> {
        Ok(Message {
            id: r.id,
            body: NewMessage {
                author: Author::parse(&r.author).ok_or_else(|| corrupt("author"))?,
                text: r.text,
                at: r.at,
                channel: r.channel,
                intent: r.intent,
                confidence: r.confidence.map(|c| c as f32),
                out_of_scope: r.out_of_scope.map(|v| v != 0),
                alternatives: json(&r.alternatives, "alternatives")?,
                route: r.route.map(|route| RouteDecision {
                    route,
                    reason: r.route_reason.unwrap_or_default(),
                }),
                client_message_id: r.client_message_id,
                agent_id: r
                    .agent_id
                    .as_deref()
                    .map(|a| AgentId::parse(a).map_err(|_| corrupt("agent id")))
                    .transpose()?,
                private: r.private != 0,
                attachment: match (r.attachment_id, r.attachment_type, r.attachment_size) {
                    (Some(id), Some(t), Some(size)) => Some(AttachmentRef {
                        id: AttachmentId::parse(&id).ok_or_else(|| corrupt("attachment id"))?,
                        content_type: ImageType::parse(&t)
                            .ok_or_else(|| corrupt("attachment type"))?,
                        size: u64::try_from(size).map_err(|_| corrupt("attachment size"))?,
                    }),
                    _ => None,
                },
            },
        })
    }
}

/// `attachments` (metadata only; the bytes are read separately).
#[derive(Debug, sqlx::FromRow)]
pub struct AttachmentRow {
    pub id: String,
    pub conversation_id: String,
    pub content_type: String,
    pub size: i64,
    pub sha256: String,
    pub created_at: DateTime<Utc>,
}

impl TryFrom<AttachmentRow> for Attachment {
    type Error = StoreError;
    fn try_from(r: AttachmentRow) -> Result<Self, StoreError> {
        Ok(Attachment {
            id: AttachmentId::parse(&r.id).ok_or_else(|| corrupt("attachment id"))?,
            conversation_id: ConversationId::parse(&r.conversation_id)
                .map_err(|_| corrupt("conversation id"))?,
            content_type: ImageType::parse(&r.content_type)
                .ok_or_else(|| corrupt("attachment type"))?,
            size: u64::try_from(r.size).map_err(|_| corrupt("attachment size"))?,
            sha256: r.sha256,
            created_at: r.created_at,
        })
    }
}

/// The metadata columns of `attachments`.
pub const ATTACHMENT_COLUMNS: &str = "id, conversation_id, content_type, size, sha256, created_at";

/// `customers`.
#[derive(Debug, sqlx::FromRow)]
pub struct CustomerRow {
    pub id: String,
    pub name: String,
    pub language: String,
    pub tier: String,
    pub lifetime_spend_cents: i64,
    pub order_count: i64,
    pub complaints_90d: i64,
    pub tags: String,
}

impl TryFrom<CustomerRow> for Customer {
    type Error = StoreError;
    fn try_from(r: CustomerRow) -> Result<Self, StoreError> {
        Ok(Customer {
            id: CustomerId::parse(&r.id).map_err(|_| corrupt("customer id"))?,
            name: r.name,
            language: Lang::parse(&r.language).unwrap_or_default(),
            tier: Tier::parse(&r.tier).ok_or_else(|| corrupt("tier"))?,
            lifetime_spend_cents: r.lifetime_spend_cents,
            order_count: r.order_count,
            complaints_90d: r.complaints_90d,
            tags: json(&r.tags, "tags")?,
        })
    }
}

/// `agents`.
#[derive(Debug, sqlx::FromRow)]
pub struct AgentRow {
    pub id: String,
    pub name: String,
    pub languages: String,
    pub teams: String,
    pub capacity: i64,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: Option<DateTime<Utc>>,
}

impl TryFrom<AgentRow> for Agent {
    type Error = StoreError;
    fn try_from(r: AgentRow) -> Result<Self, StoreError> {
        let langs: Vec<String> = json(&r.languages, "languages")?;
        Ok(Agent {
            id: AgentId::parse(&r.id).map_err(|_| corrupt("agent id"))?,
            name: r.name,
            languages: langs.iter().filter_map(|l| Lang::parse(l)).collect(),
            teams: json(&r.teams, "teams")?,
            capacity: u32::try_from(r.capacity).map_err(|_| corrupt("capacity"))?,
            status: AgentStatus::parse(&r.status).ok_or_else(|| corrupt("agent status"))?,
            created_at: r.created_at,
            last_seen_at: r.last_seen_at,
        })
    }
}

/// `events`.
#[derive(Debug, sqlx::FromRow)]
pub struct EventRow {
    pub seq: i64,
    pub conversation_id: String,
    pub kind: String,
    pub data: String,
    pub shopper_visible: i64,
    pub agent_id: Option<String>,
    pub team: Option<String>,
    pub at: DateTime<Utc>,
}

impl TryFrom<EventRow> for Event {
    type Error = StoreError;
    fn try_from(r: EventRow) -> Result<Self, StoreError> {
        Ok(Event {
            seq: r.seq,
            conversation_id: ConversationId::parse(&r.conversation_id)
                .map_err(|_| corrupt("conversation id"))?,
            kind: EventKind::parse(&r.kind).ok_or_else(|| corrupt("event kind"))?,
            data: json(&r.data, "event data")?,
            shopper_visible: r.shopper_visible != 0,
            agent_id: r
                .agent_id
                .as_deref()
                .map(|a| AgentId::parse(a).map_err(|_| corrupt("agent id")))
                .transpose()?,
            team: r.team,
            at: r.at,
        })
    }
}

/// The JSON of a `message_added` event: what live clients render.
pub fn message_event_data(id: i64, m: &NewMessage, agent_name: Option<&str>) -> serde_json::Value {
    let mut msg = serde_json::json!({
        "id": id,
        "author": m.author.as_str(),
        "text": m.text,
        "at": m.at,
        "private": m.private,
    });
    if let Some(a) = &m.agent_id {
        msg["agent"] =
            serde_json::json!({"id": a.as_str(), "name": agent_name.unwrap_or(a.as_str())});
    }
    if let Some(i) = &m.intent {
        msg["intent"] = serde_json::json!({"name": i, "confidence": m.confidence});
    }
    if let Some(a) = &m.attachment {
        msg["attachment"] = a.to_json();
    }
    serde_json::json!({ "message": msg })
}
