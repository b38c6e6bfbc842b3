//! The messaging channels over HTTP: the WhatsApp, Telegram and generic webhooks, the admin
//! view of the outbox, and linking a platform user to a shop customer. Handlers are thin: they check the platform's signature on the raw
//! body before parsing anything, hand the parsed records to [`crate::channels::Channels`] and
//! answer 200 once the records are durably stored; answering the shopper happens off the
//! request path. A channel that is not configured answers 404.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::channels::signature::{self, SignatureError};
use crate::channels::{generic, now_ms, telegram, whatsapp};
use crate::store::channels::{OutboxItem, OutboxState};

use super::AppState;
use super::error::{ApiError, ErrorBody};
use super::extract::{Admin, BodyLimit, Path, body_bytes, parse};

/// The raw request body (signatures are over the exact bytes), bounded by the body limit.
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let limit = req.extensions().get::<BodyLimit>().map_or(0, |l| l.0);
        body_bytes(req, state, limit).await.map(Self)
    }
}

/// What a webhook answers once the payload is stored.
#[derive(Debug, Serialize)]
pub struct Ack {
    /// Messages stored now.
    pub received: usize,
    /// Messages already stored by an earlier delivery.
    pub duplicates: usize,
}

fn refused(channel: &str, e: SignatureError) -> ApiError {
    // Only the fact is logged: never the body, the header or the secret.
    tracing::warn!(channel, reason = %e, "webhook signature refused");
    ApiError::Signature {
        expired: e == SignatureError::Expired,
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

async fn store(
    state: &AppState,
    records: &[crate::store::channels::InboundRecord],
) -> Result<axum::Json<Ack>, ApiError> {
    let received = state.channels.receive(records).await?;
    Ok(axum::Json(Ack {
        received,
        duplicates: records.len() - received,
    }))
}

/// `GET /webhooks/whatsapp`: Meta's subscription check.
pub async fn whatsapp_verify(
    State(state): State<AppState>,
    query: Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let cfg = state
        .channels
        .whatsapp
        .as_ref()
        .ok_or(ApiError::NotFound("channel"))?;
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let token_ok = q
        .get("hub.verify_token")
        .is_some_and(|t| signature::same_secret(cfg.verify_token.expose(), t));
    match (
        q.get("hub.mode").map(String::as_str),
        q.get("hub.challenge"),
    ) {
        (Some("subscribe"), Some(challenge)) if token_ok => {
            Ok((StatusCode::OK, challenge.clone()).into_response())
        }
        _ => Err(ApiError::Forbidden),
    }
}

/// `POST /webhooks/whatsapp`: messages and delivery statuses.
pub async fn whatsapp_receive(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<axum::Json<Ack>, ApiError> {
    let cfg = state
        .channels
        .whatsapp
        .as_ref()
        .ok_or(ApiError::NotFound("channel"))?;
    signature::verify_whatsapp(
        cfg.app_secret.expose(),
        header(&headers, "x-hub-signature-256"),
        &body,
    )
    .map_err(|e| refused(whatsapp::CHANNEL, e))?;
    let payload: whatsapp::Payload = parse(&body)?;
    let (records, statuses) = whatsapp::parse(cfg, payload, state.settings.max_text_chars)?;
    let ack = store(&state, &records).await?;
    for s in &statuses {
        state
            .store
            .update_delivery(
                whatsapp::CHANNEL,
                &s.platform_message_id,
                &s.status,
                s.error.as_deref(),
            )
            .await?;
    }
    Ok(ack)
}

/// `POST /webhooks/telegram`: one `Update`.
pub async fn telegram_receive(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<axum::Json<Ack>, ApiError> {
    let cfg = state
        .channels
        .telegram
        .as_ref()
        .ok_or(ApiError::NotFound("channel"))?;
    signature::verify_telegram(
        cfg.secret_token.expose(),
        header(&headers, "x-telegram-bot-api-secret-token"),
    )
    .map_err(|e| refused(telegram::CHANNEL, e))?;
    let update: telegram::Update = parse(&body)?;
    let records: Vec<_> = telegram::parse(update, state.settings.max_text_chars)?
        .into_iter()
        .collect();
    store(&state, &records).await
}

/// `POST /webhooks/generic`: one message from a shop's app or another platform.
pub async fn generic_receive(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<axum::Json<Ack>, ApiError> {
    let cfg = state
        .channels
        .generic
        .as_ref()
        .ok_or(ApiError::NotFound("channel"))?;
    signature::verify_generic(
        cfg.secret.expose(),
        header(&headers, "x-switchboard-signature"),
        &body,
        chrono::Utc::now().timestamp(),
    )
    .map_err(|e| refused(generic::CHANNEL, e))?;
    let incoming: generic::Incoming = parse(&body)?;
    let record = generic::parse(incoming, state.settings.max_text_chars)?;
    store(&state, &[record]).await
}

/// Which outbox rows to list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct OutboxQuery {
    /// Only rows in this state.
    pub state: Option<OutboxStateParam>,
    /// At most this many, newest first [default: 100].
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

/// An outbox row's state.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OutboxStateParam {
    Pending,
    Sent,
    Dead,
}

impl From<OutboxStateParam> for OutboxState {
    fn from(s: OutboxStateParam) -> Self {
        match s {
            OutboxStateParam::Pending => Self::Pending,
            OutboxStateParam::Sent => Self::Sent,
            OutboxStateParam::Dead => Self::Dead,
        }
    }
}

/// A reply on its way to a platform.
#[derive(Debug, Serialize, ToSchema)]
pub struct OutboxOut {
    pub id: i64,
    pub conversation_id: String,
    /// The stored message this row delivers.
    pub message_id: i64,
    /// `whatsapp`, `telegram` or `generic`.
    pub channel: String,
    /// `pending`, `sent` or `dead`.
    pub state: String,
    pub attempts: i64,
    /// When the next attempt is due (pending rows).
    pub next_attempt_at: Option<chrono::DateTime<chrono::Utc>>,
    pub last_error: Option<String>,
    /// The platform's id of the delivered message.
    pub platform_message_id: Option<String>,
    /// The platform's latest delivery status: `sent`, `delivered`, `read` or `failed`.
    pub delivery_status: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub sent_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl From<OutboxItem> for OutboxOut {
    fn from(o: OutboxItem) -> Self {
        Self {
            next_attempt_at: (o.state == "pending")
                .then(|| chrono::DateTime::from_timestamp_millis(o.next_attempt_ms))
                .flatten(),
            id: o.id,
            conversation_id: o.conversation_id,
            message_id: o.message_id,
            channel: o.channel,
            state: o.state,
            attempts: o.attempts,
            last_error: o.last_error,
            platform_message_id: o.platform_message_id,
            delivery_status: o.delivery_status,
            created_at: o.created_at,
            sent_at: o.sent_at,
        }
    }
}

/// Outbox rows, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct OutboxList {
    pub items: Vec<OutboxOut>,
}

/// List outbox rows (admin): what is waiting, sent, or parked as dead.
#[utoipa::path(
    get, path = "/api/v1/outbox", params(OutboxQuery),
    responses(
        (status = 200, body = OutboxList),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)
    ),
    security(("bearer" = []))
)]
pub async fn outbox_list(
    _: Admin,
    State(state): State<AppState>,
    query: Result<Query<OutboxQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::Json<OutboxList>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::Unprocessable(
            "limit must be within 1..1000".into(),
        ));
    }
    let items = state.store.outbox(q.state.map(Into::into), limit).await?;
    Ok(axum::Json(OutboxList {
        items: items.into_iter().map(Into::into).collect(),
    }))
}

/// Retry a dead outbox row (admin): it is delivered again, with a fresh attempt count.
#[utoipa::path(
    post, path = "/api/v1/outbox/{id}/retry",
    params(("id" = i64, Path, description = "The outbox row")),
    responses(
        (status = 200, body = OutboxOut),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)
    ),
    security(("bearer" = []))
)]
pub async fn outbox_retry(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<axum::Json<OutboxOut>, ApiError> {
    if !state.store.revive_outbox(id, now_ms()).await? {
        return Err(match state.store.outbox_item(id).await? {
            Some(_) => ApiError::Conflict {
                code: "not_dead",
                message: "only a dead outbox row can be retried".into(),
            },
            None => ApiError::NotFound("outbox row"),
        });
    }
    let item = state
        .store
        .outbox_item(id)
        .await?
        .ok_or(ApiError::NotFound("outbox row"))?;
    Ok(axum::Json(item.into()))
}

/// A platform whose users can be linked to customers.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ContactChannel {
    Whatsapp,
    Telegram,
}

/// Which customer a platform user is.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactBody {
    /// The shop's customer id.
    #[schema(pattern = r"^[A-Za-z0-9._:@-]{1,64}$", min_length = 1, max_length = 64)]
    pub customer_id: String,
}

/// A platform user linked to a customer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ContactOut {
    pub channel: String,
    pub user_id: String,
    pub customer_id: String,
    /// The user's conversation on this channel (it exists once they have written).
    pub conversation_id: String,
}

/// Link a WhatsApp number or Telegram user to a shop customer (admin).
#[utoipa::path(
    put, path = "/api/v1/channels/{channel}/contacts/{user_id}", request_body = ContactBody,
    params(
        ("channel" = ContactChannel, Path, description = "The platform"),
        ("user_id" = String, Path, description = "WhatsApp number, or Telegram chat id (the user id in a private chat)", pattern = r"^[0-9]{1,20}$")
    ),
    responses(
        (status = 200, body = ContactOut),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody)
    ),
    security(("bearer" = []))
)]
pub async fn link_contact(
    _: Admin,
    State(state): State<AppState>,
    Path((channel, user_id)): Path<(String, String)>,
    super::extract::Json(body): super::extract::Json<ContactBody>,
) -> Result<axum::Json<ContactOut>, ApiError> {
    if channel != whatsapp::CHANNEL && channel != telegram::CHANNEL {
        return Err(ApiError::NotFound("channel"));
    }
    if user_id.is_empty() || user_id.len() > 20 || !user_id.chars().all(|c| c.is_ascii_digit()) {
        return Err(ApiError::Unprocessable(
            "user_id must be 1-20 digits".into(),
        ));
    }
    let customer = crate::domain::CustomerId::parse(&body.customer_id)
        .map_err(|e| ApiError::Unprocessable(format!("customer_id: {e}")))?;
    let id = state
        .channels
        .link(&channel, &user_id, customer.clone())
        .await?;
    Ok(axum::Json(ContactOut {
        channel,
        user_id,
        customer_id: customer.to_string(),
        conversation_id: id.to_string(),
    }))
}
