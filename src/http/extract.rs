//! Extractors whose rejections are JSON errors too: a JSON body (malformed JSON, wrong types,
//! missing or unknown fields, invalid UTF-8, wrong content type, oversized bodies), path
//! parameters (invalid percent-encoding or UTF-8), and the caller's bearer token, which runs
//! before any body is read so that an unauthenticated caller learns nothing about validation.

use axum::body::Bytes;
use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;

use super::AppState;
use super::error::ApiError;

/// Like `axum::Json`, rejecting with [`ApiError`]: 400 for bytes that are not JSON, 422 for
/// JSON of the wrong shape (with the path of the offending field), 413 and 415 as usual.
pub struct Json<T>(pub T);

fn is_json(parts: &axum::http::HeaderMap) -> bool {
    parts
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|m| {
            let m = m.trim().to_ascii_lowercase();
            m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
        })
        .unwrap_or(false)
}

impl<S, T> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let limit = req.extensions().get::<BodyLimit>().map_or(0, |l| l.0);
        if !is_json(req.headers()) {
            return Err(ApiError::UnsupportedMediaType(
                "expected Content-Type: application/json".into(),
            ));
        }
        let bytes = body_bytes(req, state, limit).await?;
        parse(&bytes).map(Self)
    }
}

/// The whole body, at most `limit` bytes (the route's `DefaultBodyLimit`): 413 beyond it, 400
/// when it cannot be read.
pub async fn body_bytes<S: Send + Sync>(
    req: Request,
    state: &S,
    limit: usize,
) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge(limit)
        } else {
            ApiError::BadRequest(e.body_text())
        }
    })
}

/// Parses a JSON body in two steps, so that syntax (400) and shape (422) errors differ even
/// where serde_json would call a shape error a syntax error (an enum given as `{}`).
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::BadRequest(format!("malformed JSON: {e}")))?;
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            ApiError::Unprocessable(inner.to_string())
        } else {
            ApiError::Unprocessable(format!("{path}: {inner}"))
        }
    })
}

/// Path parameters, rejecting with a JSON 400 (e.g. `%FF`, which is not UTF-8).
pub struct Path<T>(pub T);

impl<S, T> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(v)| Self(v))
            .map_err(|e| ApiError::BadRequest(format!("invalid path: {}", e.body_text())))
    }
}

/// The caller's `Authorization: Bearer` token (401 when missing or malformed).
pub struct Bearer(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Bearer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        super::auth::bearer(&parts.headers).map(|t| Self(t.to_string()))
    }
}

/// Requires the admin token, before anything else about the request is looked at.
pub struct Admin;

impl<S> FromRequestParts<S> for Admin
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let app = AppState::from_ref(state);
        app.tokens.require_admin(&parts.headers)?;
        Ok(Self)
    }
}

/// The configured body limit, put into request extensions so rejections can name it.
#[derive(Clone, Copy)]
pub struct BodyLimit(pub usize);

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Shape {
        tier: crate::domain::Tier,
        n: u32,
    }

    fn code(r: Result<Shape, ApiError>) -> &'static str {
        r.map(|_| "ok").unwrap_or_else(|e| e.code())
    }

    #[test]
    fn syntax_is_400_and_shape_is_422() {
        assert_eq!(code(parse(br#"{"tier":"vip","n":1}"#)), "ok");
        assert_eq!(code(parse(br#"{"tier":"vip","n":1"#)), "bad_request");
        assert_eq!(code(parse(b"{\"tier\":\"\xff\"}")), "bad_request");
        assert_eq!(code(parse(br#"{"tier":{},"n":1}"#)), "invalid_request");
        assert_eq!(code(parse(br#"{"tier":"vip","n":-1}"#)), "invalid_request");
        assert_eq!(
            code(parse(br#"{"tier":"vip","n":1,"x":0}"#)),
            "invalid_request"
        );
        assert_eq!(code(parse(br#"[]"#)), "invalid_request");
    }
}
