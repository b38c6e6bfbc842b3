//! Messaging channels: WhatsApp Cloud API, Telegram Bot API and a generic signed webhook.
//!
//! Inbound, a webhook checks the platform's signature on the raw body, parses the payload
//! into [`InboundRecord`]s and stores them in the durable inbox (unique per channel and
//! platform message id) before it answers 200; the [`inbox`] worker then runs each
//! conversation's messages through the dialogue engine in the platform's order. Outbound,
//! every shopper-visible bot or agent message of a channel conversation gets an outbox row in
//! the same transaction as the message (see `store::channel_sql`), and the [`outbox`] sender
//! delivers the rows with timeouts, backoff and per-conversation order.

pub mod generic;
pub mod inbox;
pub mod media;
pub mod outbox;
pub mod settings;
pub mod signature;
pub mod telegram;
pub mod whatsapp;

use std::sync::Arc;
use std::time::Duration;

use crate::dialogue::Dialogue;
use crate::store::Store;
use crate::store::channels::InboundRecord;
use settings::{ChannelSettings, DeliveryPolicy, GenericConfig, TelegramConfig, WhatsAppConfig};

/// A payload that cannot be accepted (after its signature was checked).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ChannelError {
    /// The payload is well-formed JSON of the wrong content.
    #[error("{0}")]
    Invalid(String),
    /// A WhatsApp payload for a business number this service does not serve.
    #[error("phone_number_id is not the configured WhatsApp business number")]
    UnknownAccount,
}

/// What a received message is, for the inbox.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    pub kind: String,
    pub text: String,
    pub media_id: Option<String>,
}

impl Received {
    /// A text message: non-empty after trimming, at most `max_chars` characters.
    pub fn text(text: &str, max_chars: usize) -> Result<Self, ChannelError> {
        let t = text.trim();
        if t.is_empty() {
            return Err(ChannelError::Invalid("text must not be empty".into()));
        }
        if t.chars().count() > max_chars {
            return Err(ChannelError::Invalid(format!(
                "text is longer than {max_chars} characters"
            )));
        }
        Ok(Self {
            kind: "text".into(),
            text: t.to_string(),
            media_id: None,
        })
    }

    /// A text message from a platform whose own limit may exceed ours: cut to `max_chars`
    /// rather than refused (a refused delivery would be retried by the platform for days).
    pub fn clipped(text: &str, max_chars: usize) -> Result<Self, ChannelError> {
        let t: String = text.trim().chars().take(max_chars).collect();
        Self::text(&t, max_chars)
    }
}

/// The transcript line for a message the bot cannot read: what it was, the platform's media
/// id (so an agent can fetch it), and its caption.
pub fn media_note(
    channel: &str,
    kind: &str,
    media_id: Option<&str>,
    caption: Option<&str>,
    max_chars: usize,
) -> String {
    let mut note = format!("[{kind}");
    if let Some(id) = media_id {
        note.push_str(&format!(" · {channel} media {id}"));
    }
    note.push(']');
    if let Some(c) = caption.map(str::trim).filter(|c| !c.is_empty()) {
        note.push(' ');
        note.push_str(c);
    }
    note.chars().take(max_chars).collect()
}

/// The result of one delivery attempt to a platform.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Accepted, with the platform's id of the message when it gave one.
    Delivered(Option<String>),
    /// Rate limited: try again after this long.
    RetryAfter(Duration),
    /// Failed in a way that may pass (5xx, timeout, connection).
    Transient(String),
    /// Refused in a way retrying will not change (4xx other than 408 and 429).
    Permanent(String),
}

/// Classifies a platform's answer; `id` reads the message id from a 2xx JSON body.
pub async fn outcome(
    resp: Result<reqwest::Response, reqwest::Error>,
    id: impl FnOnce(&serde_json::Value) -> Option<String>,
) -> Outcome {
    // reqwest's errors name the URL, and Telegram's URL holds the bot token: drop it before
    // the error is logged or stored.
    let resp = match resp {
        Ok(r) => r,
        Err(e) if e.is_timeout() => return Outcome::Transient("timed out".into()),
        Err(e) => {
            return Outcome::Transient(format!("request failed: {}", error_chain(e.without_url())));
        }
    };
    let status = resp.status();
    let header_delay = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let body = match resp.bytes().await {
        Ok(b) => b,
        Err(e) if e.is_timeout() => return Outcome::Transient("timed out".into()),
        Err(e) => {
            return Outcome::Transient(format!(
                "reading the answer failed: {}",
                error_chain(e.without_url())
            ));
        }
    };
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    if status.is_success() {
        return Outcome::Delivered(id(&json));
    }
    if status.as_u16() == 429 {
        // Telegram puts the wait in the body as well.
        let secs = header_delay
            .or_else(|| json["parameters"]["retry_after"].as_u64())
            .unwrap_or(1);
        return Outcome::RetryAfter(Duration::from_secs(secs.min(3600)));
    }
    let detail: String = String::from_utf8_lossy(&body).chars().take(200).collect();
    if status.is_server_error() || status.as_u16() == 408 {
        Outcome::Transient(format!("HTTP {status}: {detail}"))
    } else {
        Outcome::Permanent(format!("HTTP {status}: {detail}"))
    }
}

/// An error with its causes ("error sending request: connection refused").
fn error_chain(e: reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The configured channels and what their workers share.
pub struct Channels {
    pub whatsapp: Option<WhatsAppConfig>,
    pub telegram: Option<TelegramConfig>,
    pub generic: Option<GenericConfig>,
    pub policy: DeliveryPolicy,
    pub store: Arc<dyn Store>,
    pub dialogue: Arc<Dialogue>,
    pub http: reqwest::Client,
    /// Woken by webhooks after they stored something.
    pub inbox_wake: tokio::sync::Notify,
    /// This process's name on leases.
    pub owner: String,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The largest photo fetched from a platform (`max_attachment_bytes`).
    pub max_media_bytes: usize,
}

impl Channels {
    pub fn new(
        settings: &ChannelSettings,
        store: Arc<dyn Store>,
        dialogue: Arc<Dialogue>,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> anyhow::Result<Self> {
        let policy = settings.policy();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(policy.send_timeout_ms))
            .connect_timeout(Duration::from_millis(policy.send_timeout_ms.min(5000)))
            .build()?;
        Ok(Self {
            whatsapp: settings.whatsapp(),
            telegram: settings.telegram(),
            generic: settings.generic(),
            policy,
            store,
            dialogue,
            http,
            inbox_wake: tokio::sync::Notify::new(),
            owner: format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple()),
            metrics,
            max_media_bytes: 5 * 1024 * 1024,
        })
    }

    /// Whether any channel is configured (the workers run only then).
    pub fn any(&self) -> bool {
        self.whatsapp.is_some() || self.telegram.is_some() || self.generic.is_some()
    }

    /// Stores received messages; returns how many were new. Wakes the inbox worker.
    pub async fn receive(
        &self,
        records: &[InboundRecord],
    ) -> Result<usize, crate::store::StoreError> {
        if records.is_empty() {
            return Ok(0);
        }
        let fresh = self.store.store_inbound(records).await?;
        for (r, new) in records.iter().zip(&fresh) {
            let outcome = if *new { "new" } else { "duplicate" };
            self.metrics
                .channel_messages
                .with_label_values(&[r.channel.as_str(), outcome])
                .inc();
        }
        let n = fresh.iter().filter(|f| **f).count();
        if n > 0 {
            self.inbox_wake.notify_one();
        }
        Ok(n)
    }
}

impl Channels {
    /// Makes a WhatsApp or Telegram user the shop's customer: their conversation (existing or
    /// future) belongs to that customer, with the customer's profile and orders.
    pub async fn link(
        &self,
        channel: &str,
        user_id: &str,
        customer: crate::domain::CustomerId,
    ) -> Result<crate::domain::ConversationId, crate::store::StoreError> {
        use crate::store::StoreError;
        let id = self
            .store
            .link_contact(&crate::store::channels::ContactLink {
                channel: channel.to_string(),
                user_id: user_id.to_string(),
                address: user_id.to_string(),
                customer_id: customer.clone(),
                new_conversation_id: crate::domain::ConversationId::new(),
            })
            .await?;
        let mut attempt = 0;
        loop {
            let Some(mut conv) = self.store.conversation(id).await? else {
                return Ok(id);
            };
            if conv.customer_id == customer && conv.verified {
                return Ok(id);
            }
            conv.customer_id = customer.clone();
            conv.verified = true;
            conv.updated_at = chrono::Utc::now();
            match self
                .store
                .record_turn(&crate::store::Turn::update(conv))
                .await
            {
                Ok(_) => return Ok(id),
                Err(StoreError::Conflict) if attempt < 8 => attempt += 1,
                Err(e) => return Err(e),
            }
        }
    }
}

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_notes_name_the_media_and_keep_the_caption() {
        assert_eq!(
            media_note("whatsapp", "image", Some("123"), Some(" broken cup "), 100),
            "[image · whatsapp media 123] broken cup"
        );
        assert_eq!(
            media_note("telegram", "location", None, None, 100),
            "[location]"
        );
        assert_eq!(
            media_note("telegram", "sticker", Some("x"), None, 5),
            "[stic"
        );
    }

    #[tokio::test]
    async fn failed_calls_never_reveal_the_url_and_its_token() {
        let resp = reqwest::Client::new()
            .post("http://127.0.0.1:1/bot123456:SECRET-TOKEN/sendMessage")
            .send()
            .await;
        match outcome(resp, |_| None).await {
            Outcome::Transient(e) => {
                assert!(!e.contains("SECRET"), "{e}");
                assert!(e.starts_with("request failed"), "{e}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn texts_are_trimmed_and_bounded() {
        assert!(Received::text("  ", 10).is_err());
        assert!(Received::text("hello", 4).is_err());
        assert_eq!(Received::text(" hi ", 4).unwrap().text, "hi");
        assert_eq!(Received::clipped(" hello ", 4).unwrap().text, "hell");
        assert!(Received::clipped(" ", 4).is_err());
    }
}
