//! The agent side of the queue (agent token, or admin token with `X-Agent-Id`): the queue in
//! service order, claims, the conversation with everything an agent needs, and actions on a
//! held conversation. Handlers are thin: `crate::desk` does the work.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::desk::{ClaimOutcome, QueueStatus, TransferTo};
use crate::domain::text::is_slug;
use crate::domain::{AgentId, Author, Conversation, ConversationId, HandoffTicket};

use super::AppState;
use super::agents::AgentCaller;
use super::customers::CustomerBody;
use super::error::{ApiError, ErrorBody};
use super::extract::{Json, Path};
use super::messages::{ConversationOut, conversation_out, parse_text};

/// A customer as agents see them in the queue.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueueCustomer {
    pub id: String,
    pub name: String,
    pub tier: String,
    pub lifetime_spend_cents: i64,
    pub order_count: i64,
    pub complaints_90d: i64,
    pub verified: bool,
}

/// One waiting conversation in the agent's queue.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueueItem {
    pub conversation_id: String,
    /// 1 = served next.
    pub position: usize,
    pub priority: i32,
    pub sla_due: Option<chrono::DateTime<chrono::Utc>>,
    pub waiting_since: Option<chrono::DateTime<chrono::Utc>>,
    pub intent: Option<String>,
    pub reason: Option<String>,
    pub lang: String,
    pub team: Option<String>,
    /// The policy tier (e.g. `vip`).
    pub tier: Option<String>,
    pub customer: QueueCustomer,
    /// The shopper's latest messages, oldest first.
    pub last_messages: Vec<String>,
}

/// The queue as this agent would be served.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueueOut {
    pub items: Vec<QueueItem>,
}

async fn queue_item(
    state: &AppState,
    position: usize,
    c: Conversation,
) -> Result<QueueItem, ApiError> {
    let profile = if c.verified {
        state.store.customer(&c.customer_id).await?
    } else {
        None
    };
    let messages = state.store.messages(c.id).await?;
    // A photo without a caption has no words to preview (nor, below, to suggest replies to).
    let mut last: Vec<String> = messages
        .into_iter()
        .filter(|m| m.body.author == Author::Shopper && !m.body.text.is_empty())
        .map(|m| m.body.text)
        .rev()
        .take(3)
        .collect();
    last.reverse();
    let t: Option<&HandoffTicket> = c.ticket.as_ref();
    Ok(QueueItem {
        conversation_id: c.id.to_string(),
        position,
        priority: t.map_or(0, |t| t.priority),
        sla_due: t.map(|t| t.sla_due),
        waiting_since: c.handoff_at,
        intent: c.handoff_intent.clone(),
        reason: c.handoff_reason.clone(),
        lang: c.lang.as_str().into(),
        team: t.map(|t| t.team.clone()),
        tier: t.map(|t| t.tier.clone()),
        customer: QueueCustomer {
            id: c.customer_id.to_string(),
            name: profile.as_ref().map(|p| p.name.clone()).unwrap_or_default(),
            tier: profile
                .as_ref()
                .map_or("standard", |p| p.tier.as_str())
                .into(),
            lifetime_spend_cents: profile.as_ref().map_or(0, |p| p.lifetime_spend_cents),
            order_count: profile.as_ref().map_or(0, |p| p.order_count),
            complaints_90d: profile.as_ref().map_or(0, |p| p.complaints_90d),
            verified: c.verified,
        },
        last_messages: last,
    })
}

/// The conversations the calling agent may take, in the order they would be served.
#[utoipa::path(
    get, path = "/api/v1/agent/queue",
    responses((status = 200, body = QueueOut), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn queue(
    State(state): State<AppState>,
    AgentCaller(agent): AgentCaller,
) -> Result<axum::Json<QueueOut>, ApiError> {
    let mut items = Vec::new();
    for (i, c) in state.desk.queue_for(&agent).await?.into_iter().enumerate() {
        items.push(queue_item(&state, i + 1, c).await?);
    }
    Ok(axum::Json(QueueOut { items }))
}

/// A recent order, as agents see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderSummary {
    pub order_id: String,
    pub status: String,
    pub placed_at: chrono::DateTime<chrono::Utc>,
    pub total_cents: Option<i64>,
    pub currency: Option<String>,
    pub carrier: Option<String>,
    pub tracking_number: Option<String>,
}

/// A conversation with everything an agent needs to answer it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgentConversation {
    pub conversation: ConversationOut,
    /// The verified customer's profile (none for anonymous shoppers).
    pub customer: Option<CustomerBody>,
    pub recent_orders: Vec<OrderSummary>,
    #[schema(value_type = Option<Object>)]
    pub ticket: Option<HandoffTicket>,
    /// Knowledge-base answers for the shopper's latest messages, in their language.
    pub suggested_replies: Vec<String>,
    pub queue: Option<QueueStatus>,
}

async fn agent_view(state: &AppState, c: Conversation) -> Result<AgentConversation, ApiError> {
    let (customer, orders) = if c.verified {
        (
            state.store.customer(&c.customer_id).await?,
            state.store.orders_of(&c.customer_id, 5).await?,
        )
    } else {
        (None, Vec::new())
    };
    let messages = state.store.messages(c.id).await?;
    let mut recent: Vec<String> = messages
        .iter()
        .filter(|m| m.body.author == Author::Shopper && !m.body.text.is_empty())
        .map(|m| m.body.text.clone())
        .rev()
        .take(2)
        .collect();
    recent.reverse();
    let suggested_replies = if recent.is_empty() {
        Vec::new()
    } else {
        state.dialogue.suggestions(&recent, c.lang).await
    };
    let queue = state.desk.status(&c).await?;
    let ticket = c.ticket.clone();
    Ok(AgentConversation {
        conversation: conversation_out(c, messages, true),
        customer: customer.map(Into::into),
        recent_orders: orders
            .into_iter()
            .map(|o| OrderSummary {
                order_id: o.order_id.to_string(),
                status: serde_json::to_value(o.status)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                placed_at: o.placed_at,
                total_cents: o.total_cents,
                currency: o.currency,
                carrier: o.carrier,
                tracking_number: o.tracking_number,
            })
            .collect(),
        ticket,
        suggested_replies,
        queue,
    })
}

fn conversation_id(id: &str) -> Result<ConversationId, ApiError> {
    ConversationId::parse(id).map_err(|_| ApiError::NotFound("conversation"))
}

/// Claim the next conversation for the calling agent: 200 with it, 204 when nothing waits for
/// them, 409 `at_capacity` when they hold as many as they may.
#[utoipa::path(
    post, path = "/api/v1/agent/claims",
    responses((status = 200, body = AgentConversation), (status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn claim_next(
    State(state): State<AppState>,
    AgentCaller(agent): AgentCaller,
) -> Result<Response, ApiError> {
    match state.desk.claim_next(&agent).await? {
        Some(c) => Ok(axum::Json(agent_view(&state, c).await?).into_response()),
        None => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}

/// Claim this conversation (409 when taken or not waiting).
#[utoipa::path(
    post, path = "/api/v1/agent/conversations/{id}/claim",
    params(("id" = String, Path, description = "Conversation id")),
    responses((status = 200, body = AgentConversation), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn claim(
    State(state): State<AppState>,
    AgentCaller(agent): AgentCaller,
    Path(id): Path<String>,
) -> Result<axum::Json<AgentConversation>, ApiError> {
    let id = conversation_id(&id)?;
    match state.desk.claim(&agent, id).await? {
        ClaimOutcome::Claimed(c) => Ok(axum::Json(agent_view(&state, *c).await?)),
        ClaimOutcome::AlreadyTaken => Err(ApiError::Conflict {
            code: "already_taken",
            message: "another agent holds this conversation".into(),
        }),
        ClaimOutcome::NotWaiting => Err(ApiError::Conflict {
            code: "not_waiting",
            message: "the conversation is not waiting for a human".into(),
        }),
    }
}

/// A conversation as an agent sees it: transcript with intents and route decisions, the
/// customer's profile and recent orders, the handoff ticket and suggested replies.
#[utoipa::path(
    get, path = "/api/v1/agent/conversations/{id}",
    params(("id" = String, Path, description = "Conversation id")),
    responses((status = 200, body = AgentConversation), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn get(
    State(state): State<AppState>,
    AgentCaller(_agent): AgentCaller,
    Path(id): Path<String>,
) -> Result<axum::Json<AgentConversation>, ApiError> {
    let id = conversation_id(&id)?;
    let c = state
        .store
        .conversation(id)
        .await?
        .ok_or(ApiError::NotFound("conversation"))?;
    Ok(axum::Json(agent_view(&state, c).await?))
}

/// A message or note text.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TextBody {
    #[schema(
        min_length = 1,
        max_length = 4000,
        pattern = r"[^\s\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]"
    )]
    pub text: String,
}

/// The id of a stored message.
#[derive(Debug, Serialize, ToSchema)]
pub struct Stored {
    pub message_id: i64,
}

/// Agent texts are checked like shopper texts, up to 4000 characters.
fn text(t: &str) -> Result<String, ApiError> {
    parse_text(t, 4000)
}

/// Reply to the shopper (only the agent holding the conversation).
#[utoipa::path(
    post, path = "/api/v1/agent/conversations/{id}/messages", request_body = TextBody,
    params(("id" = String, Path, description = "Conversation id")),
    responses((status = 201, body = Stored), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn reply(
    State(state): State<AppState>,
    AgentCaller(agent): AgentCaller,
    Path(id): Path<String>,
    Json(body): Json<TextBody>,
) -> Result<(StatusCode, axum::Json<Stored>), ApiError> {
    let id = conversation_id(&id)?;
    let t = text(&body.text)?;
    let message_id = state.desk.reply(&agent.id, id, &t, false).await?;
    Ok((StatusCode::CREATED, axum::Json(Stored { message_id })))
}

/// A private note on the conversation (never shown to the shopper).
#[utoipa::path(
    post, path = "/api/v1/agent/conversations/{id}/notes", request_body = TextBody,
    params(("id" = String, Path, description = "Conversation id")),
    responses((status = 201, body = Stored), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn note(
    State(state): State<AppState>,
    AgentCaller(agent): AgentCaller,
    Path(id): Path<String>,
    Json(body): Json<TextBody>,
) -> Result<(StatusCode, axum::Json<Stored>), ApiError> {
    let id = conversation_id(&id)?;
    let t = text(&body.text)?;
    let message_id = state.desk.reply(&agent.id, id, &t, true).await?;
    Ok((StatusCode::CREATED, axum::Json(Stored { message_id })))
}

/// Where to transfer: exactly one of an agent or a team.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferBody {
    #[schema(pattern = r"^[A-Za-z0-9._:@-]{1,64}$")]
    pub agent_id: Option<String>,
    #[schema(pattern = r"^[a-z0-9_-]{1,32}$")]
    pub team: Option<String>,
}

/// The state after an action.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActionOut {
    pub conversation_id: String,
    pub state: crate::domain::ConversationState,
    pub agent_id: Option<String>,
}

fn action_out(c: Conversation) -> axum::Json<ActionOut> {
    axum::Json(ActionOut {
        conversation_id: c.id.to_string(),
        state: c.state,
        agent_id: c.agent_id.map(|a| a.to_string()),
    })
}

/// Transfer to another agent (who must have room) or back to a team's queue.
#[utoipa::path(
    post, path = "/api/v1/agent/conversations/{id}/transfer", request_body = TransferBody,
    params(("id" = String, Path, description = "Conversation id")),
    responses((status = 200, body = ActionOut), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn transfer(
    State(state): State<AppState>,
    AgentCaller(agent): AgentCaller,
    Path(id): Path<String>,
    Json(body): Json<TransferBody>,
) -> Result<axum::Json<ActionOut>, ApiError> {
    let id = conversation_id(&id)?;
    let (to, target) = match (body.agent_id, body.team) {
        (Some(a), None) => {
            let a = AgentId::parse(&a).map_err(|_| ApiError::NotFound("agent"))?;
            let target = state
                .store
                .agent(&a)
                .await?
                .ok_or(ApiError::NotFound("agent"))?;
            (TransferTo::Agent(a), Some(target))
        }
        (None, Some(t)) if is_slug(&t, 32) => (TransferTo::Team(t), None),
        _ => {
            return Err(ApiError::Unprocessable(
                "give exactly one of agent_id or team ([a-z0-9_-]{1,32})".into(),
            ));
        }
    };
    Ok(action_out(
        state
            .desk
            .transfer(&agent.id, id, to, target.as_ref())
            .await?,
    ))
}

/// Give the conversation back to the bot.
#[utoipa::path(
    post, path = "/api/v1/agent/conversations/{id}/handback",
    params(("id" = String, Path, description = "Conversation id")),
    responses((status = 200, body = ActionOut), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn handback(
    State(state): State<AppState>,
    AgentCaller(agent): AgentCaller,
    Path(id): Path<String>,
) -> Result<axum::Json<ActionOut>, ApiError> {
    let id = conversation_id(&id)?;
    Ok(action_out(state.desk.handback(&agent.id, id).await?))
}

/// How a conversation was resolved.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveBody {
    /// E.g. `refund_issued`, `replacement_sent`, `answered`.
    #[schema(pattern = r"^[a-z0-9_-]{1,64}$")]
    pub code: String,
}

/// Resolve the conversation; the shopper is asked for a rating.
#[utoipa::path(
    post, path = "/api/v1/agent/conversations/{id}/resolve", request_body = ResolveBody,
    params(("id" = String, Path, description = "Conversation id")),
    responses((status = 200, body = ActionOut), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn resolve(
    State(state): State<AppState>,
    AgentCaller(agent): AgentCaller,
    Path(id): Path<String>,
    Json(body): Json<ResolveBody>,
) -> Result<axum::Json<ActionOut>, ApiError> {
    let id = conversation_id(&id)?;
    let ok = is_slug(&body.code, 64);
    if !ok {
        return Err(ApiError::Unprocessable("code is 1-64 of [a-z0-9_-]".into()));
    }
    Ok(action_out(
        state.desk.resolve(&agent.id, id, &body.code).await?,
    ))
}
