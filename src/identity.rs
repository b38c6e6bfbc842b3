//! Verified shopper identity. The shop's backend signs its logged-in customer's id with a
//! secret it shares with Switchboard (hex HMAC-SHA256 of the id, as Intercom's `user_hash` and
//! Chatwoot's `identifier_hash`), and the widget or API call passes that hash along. Only a
//! valid hash lets a conversation act as a known customer; everyone else is anonymous.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::domain::CustomerId;
use crate::settings::Secret;

/// Why a claimed identity was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("customer_hash is required with customer_id")]
    MissingHash,
    #[error("customer_hash does not match customer_id")]
    BadHash,
    #[error(
        "identity verification is not configured on this server; omit customer_id to chat anonymously"
    )]
    NotConfigured,
}

/// Signs and verifies customer ids.
#[derive(Clone)]
pub struct IdentityVerifier {
    secret: Option<Secret>,
}

impl std::fmt::Debug for IdentityVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityVerifier")
            .field("configured", &self.secret.is_some())
            .finish()
    }
}

impl IdentityVerifier {
    /// A verifier; without a secret no identity can be verified.
    pub fn new(secret: Option<Secret>) -> Self {
        Self { secret }
    }

    pub fn is_configured(&self) -> bool {
        self.secret.is_some()
    }

    /// The hash a shop's backend sends for `id` (lowercase hex), `None` without a secret.
    pub fn sign(&self, id: &CustomerId) -> Option<String> {
        self.secret.as_ref().map(|s| sign_with(s.expose(), id))
    }

    /// Accepts `id` only with its valid hash (compared in constant time).
    pub fn verify(&self, id: &CustomerId, hash: Option<&str>) -> Result<(), IdentityError> {
        let secret = self.secret.as_ref().ok_or(IdentityError::NotConfigured)?;
        let presented = hash.ok_or(IdentityError::MissingHash)?.trim();
        let expected = sign_with(secret.expose(), id);
        let presented = presented.to_ascii_lowercase();
        if bool::from(presented.as_bytes().ct_eq(expected.as_bytes())) {
            Ok(())
        } else {
            Err(IdentityError::BadHash)
        }
    }
}

/// Hex HMAC-SHA256 of the id under the secret: what any shop backend computes in one line,
/// e.g. `hmac.new(secret, id.encode(), hashlib.sha256).hexdigest()` in Python.
pub fn sign_with(secret: &str, id: &CustomerId) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(id.as_str().as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_what_a_shop_backend_computes() {
        // python3 -c "import hmac,hashlib;print(hmac.new(b'secret',b'c-1001',hashlib.sha256).hexdigest())"
        let id = CustomerId::parse("c-1001").unwrap();
        assert_eq!(
            sign_with("secret", &id),
            "6f9fe3d83e05252a30125eae694b874098c6e8ae693b34b203836b35009d56b8"
        );
    }

    #[test]
    fn verifies_only_the_right_hash() {
        let v = IdentityVerifier::new(Some(Secret::new("shared-secret")));
        let id = CustomerId::parse("c-2003").unwrap();
        let other = CustomerId::parse("c-2004").unwrap();
        let h = v.sign(&id).unwrap();
        assert_eq!(h.len(), 64);
        assert!(v.verify(&id, Some(&h)).is_ok());
        assert!(v.verify(&id, Some(&h.to_uppercase())).is_ok());
        assert_eq!(v.verify(&other, Some(&h)), Err(IdentityError::BadHash));
        assert_eq!(v.verify(&id, None), Err(IdentityError::MissingHash));
        assert_eq!(v.verify(&id, Some("")), Err(IdentityError::BadHash));
        let off = IdentityVerifier::new(None);
        assert_eq!(off.verify(&id, Some(&h)), Err(IdentityError::NotConfigured));
        assert!(off.sign(&id).is_none());
    }
}
