//! The one place that maps errors to HTTP: every error is a JSON body `{error, message}` with
//! a stable `error` code; 5xx bodies say nothing internal (the cause is logged once, here).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::dialogue::DialogueError;
use crate::nlu::NluError;
use crate::store::StoreError;

/// The error body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code, e.g. `not_found`.
    pub error: String,
    /// Human-readable explanation.
    pub message: String,
}

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unprocessable(String),
    #[error("request body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("missing or malformed Authorization bearer token")]
    Unauthorized,
    #[error("this token does not grant access to that resource")]
    Forbidden,
    /// A webhook's signature or secret token is missing or wrong, or its timestamp is outside
    /// the accepted window (`expired`).
    #[error("the webhook signature was not accepted")]
    Signature { expired: bool },
    /// A claimed shopper identity was not accepted.
    #[error(transparent)]
    Identity(#[from] crate::identity::IdentityError),
    /// The request conflicts with the stored state (e.g. a reused retry key).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    #[error("the service is busy; retry shortly")]
    Overloaded,
    #[error("the service is not ready")]
    Unavailable,
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    fn parts(&self) -> (StatusCode, &'static str) {
        match self {
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            Self::Unprocessable(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"),
            Self::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            Self::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            Self::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::Forbidden => (StatusCode::FORBIDDEN, "forbidden"),
            Self::Signature { expired: false } => (StatusCode::UNAUTHORIZED, "invalid_signature"),
            Self::Signature { expired: true } => (StatusCode::UNAUTHORIZED, "signature_expired"),
            Self::Identity(_) => (StatusCode::UNAUTHORIZED, "identity_not_verified"),
            Self::Conflict { code, .. } => (StatusCode::CONFLICT, code),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Self::Overloaded => (StatusCode::TOO_MANY_REQUESTS, "overloaded"),
            Self::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

    /// The stable code, for metrics.
    pub fn code(&self) -> &'static str {
        self.parts().1
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.parts();
        if let Self::Internal(cause) = &self {
            tracing::error!(%cause, "internal error");
        }
        let body = ErrorBody {
            error: code.into(),
            message: self.to_string(),
        };
        let mut resp = (status, Json(body)).into_response();
        if matches!(self, Self::Overloaded | Self::Unavailable) {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if matches!(self, Self::Unauthorized | Self::Identity(_)) {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        Self::Internal(format!("store: {e}"))
    }
}

impl From<NluError> for ApiError {
    fn from(e: NluError) -> Self {
        match e {
            NluError::Overloaded => Self::Overloaded,
            NluError::WorkerGone => Self::Unavailable,
            other => Self::Internal(format!("classifier: {other}")),
        }
    }
}

impl From<crate::desk::DeskError> for ApiError {
    fn from(e: crate::desk::DeskError) -> Self {
        use crate::desk::DeskError as D;
        match e {
            D::NotFound => Self::NotFound("conversation"),
            D::UnknownAgent => Self::NotFound("agent"),
            D::NotHolder => Self::Forbidden,
            D::Illegal(e) => Self::Conflict {
                code: "illegal_transition",
                message: e.to_string(),
            },
            D::AtCapacity => Self::Conflict {
                code: "at_capacity",
                message: "the agent already holds as many conversations as their capacity".into(),
            },
            D::Busy => Self::Conflict {
                code: "busy",
                message: "the conversation changed concurrently; retry".into(),
            },
            D::Store(e) => e.into(),
        }
    }
}

impl From<crate::channels::ChannelError> for ApiError {
    fn from(e: crate::channels::ChannelError) -> Self {
        use crate::channels::ChannelError as C;
        match e {
            C::Invalid(m) => Self::Unprocessable(m),
            C::UnknownAccount => Self::NotFound("phone_number_id"),
        }
    }
}

impl From<DialogueError> for ApiError {
    fn from(e: DialogueError) -> Self {
        match e {
            DialogueError::NotFound => Self::NotFound("conversation"),
            DialogueError::WrongCustomer => Self::Forbidden,
            DialogueError::Illegal(e) => Self::Conflict {
                code: "illegal_transition",
                message: e.to_string(),
            },
            e @ DialogueError::KeyReused => Self::Conflict {
                code: "idempotency_key_reused",
                message: e.to_string(),
            },
            DialogueError::Classifier(e) => e.into(),
            DialogueError::Store(e) => e.into(),
        }
    }
}
