//! Shopper messages and conversation transcripts: wire types and thin handlers.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use tracing::Instrument;
use utoipa::ToSchema;

use crate::dialogue::{Inbound, TurnResult};
use crate::domain::{Author, ConversationId, ConversationState, CustomerId, Lang};

use super::AppState;
use super::error::{ApiError, ErrorBody};
use super::extract::Json;

/// A shopper message.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageRequest {
    /// The shop's customer id.
    #[schema(example = "c-2001")]
    pub customer_id: String,
    /// The message text.
    #[schema(example = "where is my order 20261119-5508?")]
    pub text: String,
    /// Continue this conversation (send its token as `Authorization: Bearer`).
    pub conversation_id: Option<String>,
    /// Channel name (default `api`).
    pub channel: Option<String>,
    /// `en` or `zh`; detected from the text when absent.
    pub lang: Option<String>,
    /// Makes retries idempotent: the same id twice stores one message and returns one answer.
    pub client_message_id: Option<String>,
}

/// One reply of the bot.
#[derive(Debug, Serialize, ToSchema)]
pub struct Reply {
    pub text: String,
}

/// The classification summary.
#[derive(Debug, Serialize, ToSchema)]
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
    /// Suggested replies the shopper can send as they are (closest topics, "More about …").
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub quick_replies: Vec<String>,
}

fn parse_channel(c: Option<String>) -> Result<String, ApiError> {
    let c = c.unwrap_or_else(|| "api".into());
    let ok = !c.is_empty()
        && c.len() <= 32
        && c.chars()
            .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-' || ch == '_');
    if ok {
        Ok(c)
    } else {
        Err(ApiError::Unprocessable(
            "channel must be 1-32 of [a-z0-9_-]".into(),
        ))
    }
}

/// Send a shopper message.
#[utoipa::path(
    post, path = "/api/v1/messages", request_body = MessageRequest,
    responses(
        (status = 200, body = MessageResponse),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)
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
    let customer_id =
        CustomerId::parse(&req.customer_id).map_err(|e| ApiError::Unprocessable(e.to_string()))?;
    let text = req.text.trim().to_string();
    if text.is_empty() {
        return Err(ApiError::Unprocessable("text must not be empty".into()));
    }
    if text.chars().count() > state.settings.max_text_chars {
        return Err(ApiError::Unprocessable(format!(
            "text is longer than {} characters",
            state.settings.max_text_chars
        )));
    }
    let conversation_id = req
        .conversation_id
        .as_deref()
        .map(|s| ConversationId::parse(s).map_err(|_| ApiError::NotFound("conversation")))
        .transpose()?;
    if let Some(id) = conversation_id {
        state.tokens.require_conversation(&headers, id, false)?;
    }
    let lang = req
        .lang
        .as_deref()
        .map(|l| {
            Lang::parse(l).ok_or_else(|| ApiError::Unprocessable("lang must be en or zh".into()))
        })
        .transpose()?;
    if let Some(k) = &req.client_message_id
        && (k.is_empty() || k.len() > 128)
    {
        return Err(ApiError::Unprocessable(
            "client_message_id must be 1-128 characters".into(),
        ));
    }
    let inbound = Inbound {
        customer_id,
        text,
        conversation_id,
        channel: parse_channel(req.channel)?,
        lang,
        client_message_id: req.client_message_id,
    };
    let span = tracing::info_span!("message", conversation_id = tracing::field::Empty);
    if let Some(id) = conversation_id {
        span.record("conversation_id", tracing::field::display(id));
    }
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
        intent: IntentOut {
            name: r.intent.name,
            confidence: r.intent.confidence,
            out_of_scope: r.intent.out_of_scope,
        },
        lang: r.lang.as_str().into(),
        replayed,
        quick_replies: r.quick_replies,
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
    pub messages: Vec<MessageOut>,
}

/// Read a conversation (its own token, or the admin/agent token).
#[utoipa::path(
    get, path = "/api/v1/conversations/{id}",
    params(("id" = String, Path, description = "Conversation id")),
    responses((status = 200, body = ConversationOut), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn get_conversation(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<axum::Json<ConversationOut>, ApiError> {
    let Ok(id) = ConversationId::parse(&id) else {
        // Still demand credentials first, so that probing without a token learns nothing.
        return Err(match state.tokens.require_admin(&headers) {
            Err(ApiError::Unauthorized) => ApiError::Unauthorized,
            _ => ApiError::NotFound("conversation"),
        });
    };
    state.tokens.require_conversation(&headers, id, true)?;
    let conv = state
        .store
        .conversation(id)
        .await?
        .ok_or(ApiError::NotFound("conversation"))?;
    let messages = state.store.messages(id).await?;
    Ok(axum::Json(ConversationOut {
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
        messages: messages
            .into_iter()
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
                }
            })
            .collect(),
    }))
}
