//! Webhook signatures, every comparison in constant time and done on the raw body before
//! anything is parsed: WhatsApp's `X-Hub-Signature-256: sha256=<hex>` (HMAC-SHA256 of the body
//! under the app secret), Telegram's `X-Telegram-Bot-Api-Secret-Token` (the configured secret
//! itself) and Switchboard's own `X-Switchboard-Signature: t=<unix seconds>,v1=<hex>`
//! (HMAC-SHA256 of `"{t}.{body}"`, accepted within a five-minute window so that a captured
//! request cannot be replayed later).

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// How far a generic webhook's timestamp may be from our clock.
pub const GENERIC_WINDOW_SECS: i64 = 300;

/// Why a signature was refused (the caller learns only that it was).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("missing signature")]
    Missing,
    #[error("malformed signature")]
    Malformed,
    #[error("signature does not match")]
    Mismatch,
    #[error("signature timestamp is outside the accepted window")]
    Expired,
}

fn mac(secret: &str, parts: &[&[u8]]) -> [u8; 32] {
    let mut m = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn equal(a: &[u8], b: &[u8]) -> bool {
    bool::from(a.ct_eq(b))
}

/// Checks WhatsApp's `X-Hub-Signature-256` header value against the raw body.
pub fn verify_whatsapp(
    app_secret: &str,
    header: Option<&str>,
    body: &[u8],
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let given = header
        .strip_prefix("sha256=")
        .and_then(unhex)
        .ok_or(SignatureError::Malformed)?;
    if equal(&given, &mac(app_secret, &[body])) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// The `X-Hub-Signature-256` value for a body (what Meta sends; used by tests and tools).
pub fn sign_whatsapp(app_secret: &str, body: &[u8]) -> String {
    format!("sha256={}", hex(&mac(app_secret, &[body])))
}

/// Whether a presented secret is the expected one. Digests are compared, so that the time
/// taken depends on neither the content nor the length of either.
pub fn same_secret(expected: &str, presented: &str) -> bool {
    equal(
        &mac("switchboard", &[presented.as_bytes()]),
        &mac("switchboard", &[expected.as_bytes()]),
    )
}

/// Checks Telegram's secret-token header.
pub fn verify_telegram(secret_token: &str, header: Option<&str>) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    if same_secret(secret_token, header) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// The `X-Switchboard-Signature` value for a body sent at unix time `t`.
pub fn sign_generic(secret: &str, t: i64, body: &[u8]) -> String {
    let t = t.to_string();
    format!(
        "t={t},v1={}",
        hex(&mac(secret, &[t.as_bytes(), b".", body]))
    )
}

/// Checks an `X-Switchboard-Signature` header: the timestamp within
/// [`GENERIC_WINDOW_SECS`] of `now` and a matching `v1` (any of several, for key rotation).
pub fn verify_generic(
    secret: &str,
    header: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut t: Option<&str> = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = Some(v),
            Some(("v1", v)) => signatures.push(unhex(v).ok_or(SignatureError::Malformed)?),
            _ => {}
        }
    }
    let t_str = t.ok_or(SignatureError::Malformed)?;
    let t: i64 = t_str.parse().map_err(|_| SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed);
    }
    let expected = mac(secret, &[t_str.as_bytes(), b".", body]);
    // The signature is checked before the clock, so an attacker cannot learn the window.
    if !signatures.iter().any(|s| equal(s, &expected)) {
        return Err(SignatureError::Mismatch);
    }
    if (now - t).abs() > GENERIC_WINDOW_SECS {
        return Err(SignatureError::Expired);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whatsapp_signatures() {
        let body = br#"{"object":"whatsapp_business_account"}"#;
        let sig = sign_whatsapp("app-secret", body);
        assert_eq!(verify_whatsapp("app-secret", Some(&sig), body), Ok(()));
        assert_eq!(
            verify_whatsapp("other", Some(&sig), body),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_whatsapp("app-secret", Some(&sig), b"{}"),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_whatsapp("app-secret", None, body),
            Err(SignatureError::Missing)
        );
        for bad in ["sha1=00", "sha256=zz", "sha256=abc", ""] {
            assert_eq!(
                verify_whatsapp("app-secret", Some(bad), body),
                Err(SignatureError::Malformed),
                "{bad}"
            );
        }
        // Known answer: HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog").
        assert_eq!(
            sign_whatsapp("key", b"The quick brown fox jumps over the lazy dog"),
            "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        );
    }

    #[test]
    fn generic_signatures_expire() {
        let body = br#"{"message_id":"m1"}"#;
        let now = 1_764_000_000;
        let sig = sign_generic("0123456789abcdef", now, body);
        assert_eq!(
            verify_generic("0123456789abcdef", Some(&sig), body, now),
            Ok(())
        );
        assert_eq!(
            verify_generic("0123456789abcdef", Some(&sig), body, now + 299),
            Ok(())
        );
        assert_eq!(
            verify_generic("0123456789abcdef", Some(&sig), body, now + 301),
            Err(SignatureError::Expired)
        );
        assert_eq!(
            verify_generic("0123456789abcdef", Some(&sig), b"{}", now),
            Err(SignatureError::Mismatch)
        );
        // A timestamp changed to fit the window breaks the signature.
        let moved = sig.replace(&now.to_string(), &(now + 1000).to_string());
        assert_eq!(
            verify_generic("0123456789abcdef", Some(&moved), body, now + 1000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_generic("0123456789abcdef", Some("v1=00"), body, now),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn telegram_secret_token() {
        assert_eq!(verify_telegram("abc_DEF-1", Some("abc_DEF-1")), Ok(()));
        assert_eq!(
            verify_telegram("abc_DEF-1", Some("abc_DEF-2")),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_telegram("abc_DEF-1", None),
            Err(SignatureError::Missing)
        );
    }
}
