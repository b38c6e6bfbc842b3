//! Photos: a shopper uploads one to their conversation (its token, like their other
//! conversation calls) and the conversation's shopper and agents fetch it back. The image
//! type is read from the bytes; the declared `Content-Type` and any file name are ignored.
//! Downloads are served so that a browser can only ever treat them as that image type.

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tracing::Instrument;
use utoipa::{IntoParams, ToSchema};

use crate::dialogue::{Inbound, Photo, Target, TurnResult};
use crate::domain::text::clean;
use crate::domain::{AttachmentId, AttachmentRef, ConversationId, ConversationState, ImageType};

use super::AppState;
use super::error::{ApiError, ErrorBody};
use super::extract::Path;
use super::messages::{IntentOut, Reply, parse_client_message_id};

/// A stored photo as messages and events show it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AttachmentOut {
    #[schema(format = Uuid)]
    pub id: String,
    /// The type recognised from the bytes.
    #[schema(example = "image/jpeg")]
    pub content_type: String,
    /// Bytes.
    pub size: u64,
    /// Where the conversation's shopper and agents fetch it (their bearer token).
    #[schema(example = "/api/v1/attachments/6f1c0c56-9b7e-4d55-9d7a-2f0e8f1f5a10")]
    pub url: String,
}

impl From<&AttachmentRef> for AttachmentOut {
    fn from(a: &AttachmentRef) -> Self {
        Self {
            id: a.id.to_string(),
            content_type: a.content_type.content_type().into(),
            size: a.size,
            url: a.url(),
        }
    }
}

/// Options of an upload (query parameters; the body is the image itself).
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UploadParams {
    /// Words to go with the photo ("the cup arrived broken"); understood like a message.
    #[param(max_length = 4000)]
    pub caption: Option<String>,
    /// Makes retries idempotent, as for messages: the same id with the same photo and caption
    /// stores one message and one photo; with a different one it is refused (409).
    #[param(
        pattern = r"^[A-Za-z0-9._:-]{1,128}$",
        min_length = 1,
        max_length = 128
    )]
    pub client_message_id: Option<String>,
}

/// The answer to an upload: the stored photo and the turn it made.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttachmentResponse {
    pub conversation_id: String,
    pub attachment: AttachmentOut,
    pub state: ConversationState,
    pub replies: Vec<Reply>,
    /// `bot` or `human`.
    pub route: String,
    pub route_reason: String,
    /// How the caption was classified (absent for a photo without one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub intent: Option<IntentOut>,
    pub lang: String,
    /// True when this answer replays an earlier upload with the same `client_message_id`.
    pub replayed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue: Option<crate::desk::QueueStatus>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub quick_replies: Vec<String>,
}

fn conversation_id(id: &str) -> Result<ConversationId, ApiError> {
    ConversationId::parse(id).map_err(|_| ApiError::NotFound("conversation"))
}

/// Reads the body, at most `limit` bytes (the route's body limit is set to the same value):
/// a declared or actual larger size is 413 before anything is stored.
async fn read_limited(state: &AppState, req: Request, limit: usize) -> Result<Vec<u8>, ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::TooLarge(limit));
    }
    Ok(super::extract::body_bytes(req, state, limit)
        .await?
        .to_vec())
}

/// Recognises the photo by its bytes.
fn recognise(headers: &HeaderMap, bytes: Vec<u8>) -> Result<Photo, ApiError> {
    if bytes.is_empty() {
        return Err(ApiError::Unprocessable(
            "the body is empty: send the image's bytes as the request body".into(),
        ));
    }
    let Some(content_type) = ImageType::sniff(&bytes) else {
        let multipart = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("multipart/"));
        let hint = if multipart {
            " Send the image's bytes as the body, not a multipart form."
        } else {
            ""
        };
        return Err(ApiError::UnsupportedMediaType(format!(
            "only photos can be attached: JPEG, PNG, GIF or WebP images. This file is not one of \
             them (its content was checked, not its name or declared type).{hint}"
        )));
    };
    Ok(Photo {
        content_type,
        bytes,
    })
}

fn caption(c: Option<String>, max_chars: usize) -> Result<String, ApiError> {
    let Some(c) = c else {
        return Ok(String::new());
    };
    if c.chars().count() > max_chars {
        return Err(ApiError::Unprocessable(format!(
            "caption is longer than {max_chars} characters"
        )));
    }
    Ok(clean(&c).trim().to_string())
}

/// Attach a photo to a conversation (its token). The body is the image's bytes (JPEG, PNG,
/// GIF or WebP, recognised by content; the declared type is ignored), at most
/// `max_attachment_bytes`. The photo becomes a shopper message in the transcript.
#[utoipa::path(
    post, path = "/api/v1/conversations/{id}/attachments",
    params(("id" = String, Path, description = "Conversation id", format = Uuid), UploadParams),
    request_body(content = String, description = "The image's bytes (any declared type)", content_type = "application/octet-stream"),
    responses(
        (status = 200, body = AttachmentResponse),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 413, body = ErrorBody, description = "larger than max_attachment_bytes"),
        (status = 415, body = ErrorBody, description = "not a JPEG, PNG, GIF or WebP image"),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)
    ),
    security(("bearer" = []))
)]
pub async fn upload(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    query: Result<Query<UploadParams>, QueryRejection>,
    req: Request,
) -> Result<axum::Json<AttachmentResponse>, ApiError> {
    // Who is asking comes first: nothing about the body is looked at for a wrong token.
    let token = super::auth::bearer(&headers)?;
    let id = conversation_id(&id)?;
    state.tokens.check_conversation(token, id, false)?;
    let Query(params) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let _permit = state
        .in_flight
        .clone()
        .try_acquire_owned()
        .map_err(|_| ApiError::Overloaded)?;
    let client_message_id = parse_client_message_id(params.client_message_id)?;
    let caption = caption(params.caption, state.settings.max_text_chars)?;
    let bytes = read_limited(&state, req, state.settings.max_attachment_bytes).await?;
    let photo = recognise(&headers, bytes)?;
    let inbound = Inbound {
        target: Target::Existing { id, claimed: None },
        text: caption,
        channel: "web".into(),
        lang: None,
        client_message_id,
    };
    let span = tracing::info_span!("attachment", conversation_id = %id);
    let (result, replayed) = state
        .dialogue
        .handle_photo(inbound, photo)
        .instrument(span)
        .await?;
    respond(result, replayed).map(axum::Json)
}

fn respond(r: TurnResult, replayed: bool) -> Result<AttachmentResponse, ApiError> {
    let attachment = r
        .attachment
        .as_ref()
        .ok_or_else(|| ApiError::Internal("a photo turn without its photo".into()))?;
    Ok(AttachmentResponse {
        conversation_id: r.conversation_id.to_string(),
        attachment: attachment.into(),
        state: r.state,
        replies: r.replies.into_iter().map(|text| Reply { text }).collect(),
        route: r.route,
        route_reason: r.route_reason,
        intent: r.intent.map(Into::into),
        lang: r.lang.as_str().into(),
        replayed,
        queue: r.queue,
        quick_replies: r.quick_replies,
    })
}

/// `?token=` for an `<img src>`, which cannot send a header.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DownloadParams {
    /// The bearer token, where no `Authorization` header can be sent.
    pub token: Option<String>,
}

/// Whether `token` may read attachments of `conversation`: the admin token, any agent's
/// token, or that conversation's own token.
async fn may_read(
    state: &AppState,
    token: &str,
    conversation: ConversationId,
) -> Result<(), ApiError> {
    if state
        .tokens
        .check_conversation(token, conversation, true)
        .is_ok()
    {
        return Ok(());
    }
    let agent = state
        .store
        .agent_by_token_hash(&super::agents::token_hash(token))
        .await?;
    agent.map(|_| ()).ok_or(ApiError::Forbidden)
}

/// A photo's bytes (an agent's or the admin token, or the token of the conversation it was
/// sent in; as `Authorization: Bearer` or `?token=`). Served with its recognised type,
/// `nosniff` and a sandboxing content security policy, so it is only ever shown as an image.
#[utoipa::path(
    get, path = "/api/v1/attachments/{id}",
    params(("id" = String, Path, description = "Attachment id", format = Uuid), DownloadParams),
    responses(
        (status = 200, description = "The image's bytes, as its recognised type (image/jpeg, image/png, image/gif or image/webp)"),
        (status = 304, description = "Not modified (If-None-Match)"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)
    ),
    security(("bearer" = []))
)]
pub async fn download(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    query: Result<Query<DownloadParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let token = match params.token.filter(|t| !t.is_empty()) {
        Some(t) => t,
        None => super::auth::bearer(&headers)?.to_string(),
    };
    let id = AttachmentId::parse(&id).ok_or(ApiError::NotFound("attachment"))?;
    let meta = state
        .store
        .attachment(id)
        .await?
        .ok_or(ApiError::NotFound("attachment"))?;
    may_read(&state, &token, meta.conversation_id).await?;
    let etag = format!("\"{}\"", meta.sha256);
    let mut resp = if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag))
    {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let bytes = state
            .store
            .attachment_bytes(id)
            .await?
            .ok_or(ApiError::NotFound("attachment"))?;
        let mut r = Body::from(bytes).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(meta.content_type.content_type()),
        );
        r
    };
    let h = resp.headers_mut();
    let disposition = format!(
        "inline; filename=\"photo-{id}.{}\"",
        meta.content_type.extension()
    );
    for (name, value) in [
        (header::ETAG, etag),
        (header::CONTENT_DISPOSITION, disposition),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff".into()),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; sandbox".into(),
        ),
        (header::CACHE_CONTROL, "private, max-age=86400".into()),
        (
            header::HeaderName::from_static("cross-origin-resource-policy"),
            "same-site".into(),
        ),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    }
    Ok(resp)
}
