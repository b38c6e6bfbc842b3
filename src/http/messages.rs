//! Shopper messages and conversation transcripts: wire types and thin handlers.

use axum::extract::State;
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use tracing::Instrument;
use utoipa::ToSchema;

use crate::dialogue::{Inbound, Target, TurnResult};
use crate::domain::text::{clean, is_slug};
use crate::domain::{Author, ConversationId, ConversationState, CustomerId};

use super::AppState;
use super::auth::Caller;
use super::customers::WireLang;
use super::error::{ApiError, ErrorBody};
use super::extract::{Bearer, Json, Path};

/// A shopper message. A new conversation is either for a verified customer (`customer_id`
/// with the `customer_hash` the shop's backend computed) or anonymous (neither); later
/// messages name the `conversation_id` and send its token as `Authorization: Bearer`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageRequest {
    /// The shop's customer id; needs `customer_hash` to start a conversation. Omit both to
    /// chat anonymously.
    #[schema(
        example = "c-2001",
        pattern = r"^[A-Za-z0-9._:@-]{1,64}$",
        min_length = 1,
        max_length = 64
    )]
    pub customer_id: Option<String>,
    /// Hex HMAC-SHA256 of `customer_id` under the identity secret shared with the shop
    /// (ignored without `customer_id`).
    #[schema(pattern = r"^[0-9a-fA-F]{64}$", min_length = 64, max_length = 64)]
    pub customer_hash: Option<String>,
    /// The message text (control and bidi-override characters are removed; it must keep at
    /// least one visible character). The longest accepted length is the server's
    /// `max_text_chars` (the document shows the configured value).
    #[schema(
        example = "where is my order 20261119-5508?",
        min_length = 1,
        max_length = 4000,
        pattern = r"[^\s\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]"
    )]
    pub text: String,
    /// Continue this conversation (send its token as `Authorization: Bearer`).
    #[schema(format = Uuid)]
    pub conversation_id: Option<String>,
    /// Channel name (default `api`).
    #[schema(pattern = r"^[a-z0-9_-]{1,32}$", min_length = 1, max_length = 32)]
    pub channel: Option<String>,
    /// Language of the answer; detected from the text when absent.
    pub lang: Option<WireLang>,
    /// Makes retries idempotent: the same id with the same message stores one message and
    /// returns one answer; the same id with a different message is refused (409). Unique per
    /// conversation (for a new conversation: per verified customer, or among anonymous ones;
    /// use a random UUID).
    #[schema(
        pattern = r"^[A-Za-z0-9._:-]{1,128}$",
        min_length = 1,
        max_length = 128
    )]
    pub client_message_id: Option<String>,
}

/// One reply of the bot.
#[derive(Debug, Serialize, ToSchema)]
pub struct Reply {
    pub text: String,
}

/// The classification summary.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct IntentOut {
    pub name: String,
    pub confidence: f32,
    pub out_of_scope: bool,
}

/// The answer to a shopper message.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageResponse {
    pub conversation_id: String,
    /// Send as `Authorization: Bearer` on later calls for this conversation.
    pub conversation_token: String,
    pub state: ConversationState,
    pub replies: Vec<Reply>,
    /// `bot` or `human`.
    pub route: String,
    pub route_reason: String,
    pub intent: IntentOut,
    pub lang: String,
    /// True when this answer replays an earlier request with the same `client_message_id`.
    pub replayed: bool,
    /// The shopper's place in the human queue while waiting.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue: Option<crate::desk::QueueStatus>,
    /// Suggested replies the shopper can send as they are (closest topics, "More about …").
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub quick_replies: Vec<String>,
}

fn parse_channel(c: Option<String>) -> Result<String, ApiError> {
    let c = c.unwrap_or_else(|| "api".into());
    if is_slug(&c, 32) {
        Ok(c)
    } else {
        Err(ApiError::Unprocessable(
            "channel must be 1-32 of [a-z0-9_-]".into(),
        ))
    }
}

pub(super) fn parse_client_message_id(k: Option<String>) -> Result<Option<String>, ApiError> {
    match k {
        Some(k)
            if k.is_empty()
                || k.len() > 128
                || !k
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')) =>
        {
            Err(ApiError::Unprocessable(
                "client_message_id must be 1-128 of [A-Za-z0-9._:-]".into(),
            ))
        }
        k => Ok(k),
    }
}

/// The message text as stored: length checked as sent, controls removed, ends trimmed.
pub(super) fn parse_text(text: &str, max_chars: usize) -> Result<String, ApiError> {
    if text.chars().count() > max_chars {
        return Err(ApiError::Unprocessable(format!(
            "text is longer than {max_chars} characters"
        )));
    }
    let text = clean(text).trim().to_string();
    if text.is_empty() {
        return Err(ApiError::Unprocessable(
            "text must have at least one visible character".into(),
        ));
    }
    Ok(text)
}

/// Which conversation the message is for, with the caller's right to it checked.
fn target(state: &AppState, headers: &HeaderMap, req: &MessageRequest) -> Result<Target, ApiError> {
    let claimed = req
        .customer_id
        .as_deref()
        .map(|c| CustomerId::parse(c).map_err(|e| ApiError::Unprocessable(e.to_string())))
        .transpose()?;
    if let Some(h) = &req.customer_hash
        && (h.len() != 64 || !h.chars().all(|c| c.is_ascii_hexdigit()))
    {
        return Err(ApiError::Unprocessable(
            "customer_hash must be 64 hex digits".into(),
        ));
    }
    if let Some(id) = &req.conversation_id {
        let id = ConversationId::parse(id).map_err(|_| ApiError::NotFound("conversation"))?;
        state.tokens.require_conversation(headers, id, false)?;
        return Ok(Target::Existing { id, claimed });
    }
    match claimed {
        Some(customer) => {
            state
                .identity
                .verify(&customer, req.customer_hash.as_deref())
                .map_err(ApiError::Identity)?;
            Ok(Target::NewVerified(customer))
        }
        // A hash without an id proves nothing: the shopper is anonymous.
        None => Ok(Target::NewAnonymous),
    }
}

/// Send a shopper message.
#[utoipa::path(
    post, path = "/api/v1/messages", request_body = MessageRequest,
    responses(
        (status = 200, body = MessageResponse),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody),
        (status = 503, body = ErrorBody)
    ),
    security((), ("bearer" = []))
)]
pub async fn post_message(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(req): Json<MessageRequest>,
) -> Result<axum::Json<MessageResponse>, ApiError> {
    let _permit = state
        .in_flight
        .clone()
        .try_acquire_owned()
        .map_err(|_| ApiError::Overloaded)?;
    let text = parse_text(&req.text, state.settings.max_text_chars)?;
    let channel = parse_channel(req.channel.clone())?;
    let client_message_id = parse_client_message_id(req.client_message_id.clone())?;
    let target = target(&state, &headers, &req)?;
    let span = tracing::info_span!("message", conversation_id = tracing::field::Empty);
    if let Target::Existing { id, .. } = &target {
        span.record("conversation_id", tracing::field::display(id));
    }
    let inbound = Inbound {
        target,
        text,
        channel,
        lang: req.lang.map(Into::into),
        client_message_id,
    };
    let (result, replayed) = state
        .dialogue
        .handle(inbound)
        .instrument(span.clone())
        .await?;
    span.record(
        "conversation_id",
        tracing::field::display(result.conversation_id),
    );
    Ok(axum::Json(respond(&state, result, replayed)))
}

fn respond(state: &AppState, r: TurnResult, replayed: bool) -> MessageResponse {
    MessageResponse {
        conversation_id: r.conversation_id.to_string(),
        conversation_token: state.tokens.conversation_token(r.conversation_id),
        state: r.state,
        replies: r.replies.into_iter().map(|text| Reply { text }).collect(),
        route: r.route,
        route_reason: r.route_reason,
        // A text message is always classified.
        intent: r.intent.map(Into::into).unwrap_or_default(),
        lang: r.lang.as_str().into(),
        replayed,
        queue: r.queue,
        quick_replies: r.quick_replies,
    }
}

impl From<crate::dialogue::IntentSummary> for IntentOut {
    fn from(i: crate::dialogue::IntentSummary) -> Self {
        Self {
            name: i.name,
            confidence: i.confidence,
            out_of_scope: i.out_of_scope,
        }
    }
}

/// An alternative intent.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlternativeOut {
    pub intent: String,
    pub confidence: f32,
}

/// A stored message.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageOut {
    pub id: i64,
    pub author: Author,
    pub text: String,
    pub at: chrono::DateTime<chrono::Utc>,
    pub channel: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub intent: Option<IntentOut>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alternatives: Vec<AlternativeOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route_reason: Option<String>,
    /// The agent who wrote it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// A private note (agents only).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub private: bool,
    /// For a reply to a messaging channel: `pending` or `dead` while the outbox holds it,
    /// then the platform's status (`sent`, `delivered`, `read`, `failed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery: Option<String>,
    /// The photo the shopper attached (`text` is then its caption, possibly empty).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attachment: Option<super::attachments::AttachmentOut>,
}

/// Why and when a conversation was handed off.
#[derive(Debug, Serialize, ToSchema)]
pub struct HandoffOut {
    pub reason: String,
    pub intent: Option<String>,
    pub at: Option<chrono::DateTime<chrono::Utc>>,
}

/// A conversation with its transcript.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConversationOut {
    pub id: String,
    pub customer_id: String,
    pub channel: String,
    pub lang: String,
    pub state: ConversationState,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handoff: Option<HandoffOut>,
    /// The agent holding it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolution: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csat_score: Option<i32>,
    /// The shopper's place in line while waiting.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue: Option<crate::desk::QueueStatus>,
    pub messages: Vec<MessageOut>,
}

/// Read a conversation (its own token, or the admin token).
#[utoipa::path(
    get, path = "/api/v1/conversations/{id}",
    params(("id" = String, Path, description = "Conversation id", format = Uuid)),
    responses(
        (status = 200, body = ConversationOut),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)
    ),
    security(("bearer" = []))
)]
pub async fn get_conversation(
    State(state): State<AppState>,
    _: Bearer,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<axum::Json<ConversationOut>, ApiError> {
    let id = ConversationId::parse(&id).map_err(|_| ApiError::NotFound("conversation"))?;
    let caller = state.tokens.require_conversation(&headers, id, true)?;
    let conv = state
        .store
        .conversation(id)
        .await?
        .ok_or(ApiError::NotFound("conversation"))?;
    let messages = state.store.messages(id).await?;
    let queue = state.desk.status(&conv).await?;
    let mut out = conversation_out(conv, messages, caller == Caller::Admin);
    out.queue = queue;
    add_deliveries(&state, id, &mut out).await?;
    Ok(axum::Json(out))
}

/// Marks the replies of a messaging-channel conversation with their delivery status.
pub async fn add_deliveries(
    state: &AppState,
    id: ConversationId,
    out: &mut ConversationOut,
) -> Result<(), ApiError> {
    let deliveries = state.store.deliveries(id).await?;
    if deliveries.is_empty() {
        return Ok(());
    }
    let by_message: std::collections::HashMap<i64, String> = deliveries
        .into_iter()
        .map(|(m, row_state, status)| (m, status.unwrap_or(row_state)))
        .collect();
    for m in &mut out.messages {
        m.delivery = by_message.get(&m.id).cloned();
    }
    Ok(())
}

/// The wire form of a conversation; private notes and internal system lines only for agents.
pub fn conversation_out(
    conv: crate::domain::Conversation,
    messages: Vec<crate::domain::Message>,
    with_private: bool,
) -> ConversationOut {
    ConversationOut {
        id: conv.id.to_string(),
        customer_id: conv.customer_id.to_string(),
        channel: conv.channel,
        lang: conv.lang.as_str().into(),
        state: conv.state,
        created_at: conv.created_at,
        updated_at: conv.updated_at,
        handoff: conv.handoff_reason.map(|reason| HandoffOut {
            reason,
            intent: conv.handoff_intent,
            at: conv.handoff_at,
        }),
        agent_id: conv.agent_id.map(|a| a.to_string()),
        resolution: conv.resolution,
        csat_score: conv.csat_score,
        queue: None,
        messages: messages
            .into_iter()
            .filter(|m| with_private || !m.body.private)
            .map(|m| {
                let b = m.body;
                MessageOut {
                    id: m.id,
                    author: b.author,
                    text: b.text,
                    at: b.at,
                    channel: b.channel,
                    intent: b.intent.map(|name| IntentOut {
                        name,
                        confidence: b.confidence.unwrap_or(0.0),
                        out_of_scope: b.out_of_scope.unwrap_or(false),
                    }),
                    alternatives: b
                        .alternatives
                        .into_iter()
                        .map(|a| AlternativeOut {
                            intent: a.intent,
                            confidence: a.confidence,
                        })
                        .collect(),
                    route: b.route.as_ref().map(|r| r.route.clone()),
                    route_reason: b.route.map(|r| r.reason),
                    agent_id: b.agent_id.map(|a| a.to_string()),
                    private: b.private,
                    delivery: None,
                    attachment: b.attachment.as_ref().map(Into::into),
                }
            })
            .collect(),
    }
}

/// A satisfaction rating.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CsatBody {
    #[serde(deserialize_with = "super::customers::int")]
    #[schema(minimum = 1, maximum = 5)]
    pub score: i32,
    #[schema(max_length = 1000)]
    pub comment: Option<String>,
}

/// Rate a resolved conversation (its token), once.
#[utoipa::path(
    post, path = "/api/v1/conversations/{id}/csat", request_body = CsatBody,
    params(("id" = String, Path, description = "Conversation id")),
    responses((status = 201), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn post_csat(
    State(state): State<AppState>,
    _: Bearer,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(body): Json<CsatBody>,
) -> Result<axum::http::StatusCode, ApiError> {
    let id = ConversationId::parse(&id).map_err(|_| ApiError::NotFound("conversation"))?;
    state.tokens.require_conversation(&headers, id, false)?;
    if !(1..=5).contains(&body.score) {
        return Err(ApiError::Unprocessable("score must be 1-5".into()));
    }
    let comment = body.comment.as_deref().map(|c| clean(c).trim().to_string());
    if comment.as_ref().is_some_and(|c| c.chars().count() > 1000) {
        return Err(ApiError::Unprocessable(
            "comment is longer than 1000 characters".into(),
        ));
    }
    let conv = state
        .store
        .conversation(id)
        .await?
        .ok_or(ApiError::NotFound("conversation"))?;
    if conv.state != ConversationState::Resolved {
        return Err(ApiError::Conflict {
            code: "not_resolved",
            message: "only a resolved conversation can be rated".into(),
        });
    }
    if state.desk.csat(id, body.score, comment.as_deref()).await? {
        Ok(axum::http::StatusCode::CREATED)
    } else {
        Err(ApiError::Conflict {
            code: "already_rated",
            message: "this conversation was rated already".into(),
        })
    }
}
