//! The signed webhook for any other platform or a shop's own app: `{message_id, customer_id,
//! text, lang?, sent_at}` in, and replies POSTed to the shop's URL signed the same way
//! (`X-Switchboard-Signature`), with `X-Switchboard-Delivery` naming the outbox row so the
//! shop can drop a repeated delivery.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

use super::settings::GenericConfig;
use super::signature::sign_generic;
use super::{ChannelError, Outcome, Received};
use crate::domain::ids::is_safe_id;
use crate::domain::{ConversationId, CustomerId, Lang};
use crate::store::channels::InboundRecord;

pub const CHANNEL: &str = "generic";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Incoming {
    pub message_id: String,
    pub customer_id: String,
    pub text: String,
    #[serde(default)]
    pub lang: Option<String>,
    pub sent_at: DateTime<Utc>,
}

/// The record to store for a verified message.
pub fn parse(m: Incoming, max_chars: usize) -> Result<InboundRecord, ChannelError> {
    if !is_safe_id(&m.message_id) {
        return Err(ChannelError::Invalid(
            "message_id must be 1-64 of letters, digits, '-', '_', '.', ':' or '@'".into(),
        ));
    }
    let customer = CustomerId::parse(&m.customer_id)
        .map_err(|e| ChannelError::Invalid(format!("customer_id: {e}")))?;
    let lang = match &m.lang {
        Some(l) => Some(
            Lang::parse(l)
                .ok_or_else(|| ChannelError::Invalid("lang must be en or zh".into()))?
                .as_str()
                .to_string(),
        ),
        None => None,
    };
    let received = Received::text(&m.text, max_chars)?;
    Ok(InboundRecord {
        channel: CHANNEL.into(),
        platform_message_id: m.message_id,
        user_id: customer.to_string(),
        address: customer.to_string(),
        new_customer_id: customer,
        new_conversation_id: ConversationId::new(),
        kind: received.kind,
        text: received.text,
        lang,
        media_id: None,
        platform_order: m.sent_at.timestamp(),
        sent_at: m.sent_at,
    })
}

/// POSTs one reply to the shop, signed.
pub async fn send(
    http: &reqwest::Client,
    cfg: &GenericConfig,
    delivery_id: i64,
    conversation_id: &str,
    customer_id: &str,
    text: &str,
) -> Outcome {
    let body = json!({
        "delivery_id": delivery_id,
        "conversation_id": conversation_id,
        "customer_id": customer_id,
        "text": text,
        "sent_at": Utc::now(),
    })
    .to_string();
    let signature = sign_generic(cfg.secret.expose(), Utc::now().timestamp(), body.as_bytes());
    let resp = http
        .post(&cfg.reply_url)
        .header("content-type", "application/json")
        .header("x-switchboard-signature", signature)
        .header("x-switchboard-delivery", delivery_id.to_string())
        .body(body)
        .send()
        .await;
    super::outcome(resp, |_| None).await
}
