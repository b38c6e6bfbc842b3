//! Bearer tokens. Shopper calls carry a per-conversation token: an HMAC-SHA256 of the
//! conversation id under the service's key, so nothing secret is stored per conversation and
//! one conversation's token opens no other. Agent/admin calls carry the configured admin
//! token. Every comparison is constant-time; tokens are never logged.

use axum::http::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::domain::ConversationId;
use crate::settings::Secret;

use super::error::ApiError;

/// Issues and checks tokens.
pub struct Tokens {
    key: Vec<u8>,
    admin: Secret,
}

/// Who a request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    Admin,
    Conversation,
}

impl Tokens {
    pub fn new(key: Vec<u8>, admin: Secret) -> Self {
        Self { key, admin }
    }

    /// The token of a conversation.
    pub fn conversation_token(&self, id: ConversationId) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(b"conversation:");
        mac.update(id.0.as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    pub fn is_admin(&self, presented: &str) -> bool {
        bool::from(presented.as_bytes().ct_eq(self.admin.expose().as_bytes()))
    }

    fn opens(&self, presented: &str, id: ConversationId) -> bool {
        bool::from(
            presented
                .as_bytes()
                .ct_eq(self.conversation_token(id).as_bytes()),
        )
    }

    /// Requires the admin token.
    pub fn require_admin(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let t = bearer(headers)?;
        if self.is_admin(t) {
            Ok(())
        } else {
            Err(ApiError::Forbidden)
        }
    }

    /// Requires the conversation's own token, or the admin token when `admin_ok`.
    pub fn require_conversation(
        &self,
        headers: &HeaderMap,
        id: ConversationId,
        admin_ok: bool,
    ) -> Result<Caller, ApiError> {
        self.check_conversation(bearer(headers)?, id, admin_ok)
    }

    /// Checks a presented token (from a header, or a WebSocket's query or subprotocol) against
    /// the conversation's own token, or the admin token when `admin_ok`.
    pub fn check_conversation(
        &self,
        t: &str,
        id: ConversationId,
        admin_ok: bool,
    ) -> Result<Caller, ApiError> {
        if admin_ok && self.is_admin(t) {
            Ok(Caller::Admin)
        } else if self.opens(t, id) {
            Ok(Caller::Conversation)
        } else {
            Err(ApiError::Forbidden)
        }
    }
}

/// The bearer token of a request.
pub fn bearer(headers: &HeaderMap) -> Result<&str, ApiError> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(ApiError::Unauthorized)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("authorization", HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn conversation_tokens_open_only_their_conversation() {
        let t = Tokens::new(b"key".to_vec(), Secret::new("admin-token-0123456789"));
        let (a, b) = (ConversationId::new(), ConversationId::new());
        let ta = t.conversation_token(a);
        assert!(
            t.require_conversation(&headers(&format!("Bearer {ta}")), a, false)
                .is_ok()
        );
        assert!(matches!(
            t.require_conversation(&headers(&format!("Bearer {ta}")), b, false),
            Err(ApiError::Forbidden)
        ));
        assert!(matches!(
            t.require_conversation(&HeaderMap::new(), a, false),
            Err(ApiError::Unauthorized)
        ));
        assert_eq!(
            t.require_conversation(&headers("Bearer admin-token-0123456789"), a, true)
                .unwrap(),
            Caller::Admin
        );
        assert!(
            t.require_conversation(&headers("Bearer admin-token-0123456789"), a, false)
                .is_err()
        );
        assert!(t.require_admin(&headers(&format!("Bearer {ta}"))).is_err());
    }
}
