//! WhatsApp Cloud API: the webhook payload (`entry[].changes[].value` with `metadata`,
//! `contacts[]`, `messages[]` and `statuses[]`) turned into inbound records and delivery
//! statuses, and the `POST /{version}/{phone_number_id}/messages` call that sends a reply.

use chrono::{DateTime, TimeZone, Utc};
use serde::Deserialize;
use serde_json::json;

use super::settings::WhatsAppConfig;
use super::{ChannelError, Outcome, Received, media_note};
use crate::domain::{ConversationId, CustomerId};
use crate::store::channels::InboundRecord;

pub const CHANNEL: &str = "whatsapp";

#[derive(Debug, Deserialize)]
pub struct Payload {
    pub object: String,
    #[serde(default)]
    pub entry: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
pub struct Entry {
    #[serde(default)]
    pub changes: Vec<Change>,
}

#[derive(Debug, Deserialize)]
pub struct Change {
    #[serde(default)]
    pub field: Option<String>,
    pub value: Value,
}

#[derive(Debug, Deserialize)]
pub struct Value {
    pub metadata: Metadata,
    #[serde(default)]
    pub contacts: Vec<Contact>,
    #[serde(default)]
    pub messages: Vec<Message>,
    #[serde(default)]
    pub statuses: Vec<Status>,
}

#[derive(Debug, Deserialize)]
pub struct Metadata {
    pub phone_number_id: String,
}

#[derive(Debug, Deserialize)]
pub struct Contact {
    pub wa_id: String,
}

#[derive(Debug, Deserialize)]
pub struct Message {
    pub id: String,
    pub from: String,
    pub timestamp: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub text: Option<Text>,
    #[serde(default)]
    pub image: Option<Media>,
    #[serde(default)]
    pub sticker: Option<Media>,
    #[serde(default)]
    pub audio: Option<Media>,
    #[serde(default)]
    pub video: Option<Media>,
    #[serde(default)]
    pub document: Option<Media>,
}

#[derive(Debug, Deserialize)]
pub struct Text {
    pub body: String,
}

#[derive(Debug, Deserialize)]
pub struct Media {
    pub id: String,
    #[serde(default)]
    pub caption: Option<String>,
    /// Voice notes are `audio` with `voice: true`.
    #[serde(default)]
    pub voice: Option<bool>,
}

#[derive(Debug, Deserialize)]
pub struct Status {
    pub id: String,
    pub status: String,
}

/// A delivery status to apply to a sent message.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusUpdate {
    pub platform_message_id: String,
    pub status: String,
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.len() <= 20 && s.chars().all(|c| c.is_ascii_digit())
}

/// Turns a verified webhook body into records to store and statuses to apply. A payload for
/// another business number is refused as a whole, before anything is stored.
pub fn parse(
    cfg: &WhatsAppConfig,
    payload: Payload,
    max_chars: usize,
) -> Result<(Vec<InboundRecord>, Vec<StatusUpdate>), ChannelError> {
    if payload.object != "whatsapp_business_account" {
        return Err(ChannelError::Invalid(
            "object must be whatsapp_business_account".into(),
        ));
    }
    let mut records = Vec::new();
    let mut statuses = Vec::new();
    for change in payload.entry.iter().flat_map(|e| &e.changes) {
        if change.field.as_deref().is_some_and(|f| f != "messages") {
            continue;
        }
        let v = &change.value;
        if v.metadata.phone_number_id != cfg.phone_number_id {
            return Err(ChannelError::UnknownAccount);
        }
        for m in &v.messages {
            // Reactions and system notices are not messages to answer.
            if matches!(m.kind.as_str(), "reaction" | "system") {
                continue;
            }
            if !is_digits(&m.from) {
                return Err(ChannelError::Invalid(
                    "messages[].from must be digits".into(),
                ));
            }
            if m.id.is_empty() || m.id.len() > 256 {
                return Err(ChannelError::Invalid(
                    "messages[].id must be 1-256 characters".into(),
                ));
            }
            let secs: i64 = m.timestamp.parse().map_err(|_| {
                ChannelError::Invalid("messages[].timestamp must be unix seconds".into())
            })?;
            let sent_at: DateTime<Utc> = Utc.timestamp_opt(secs, 0).single().ok_or_else(|| {
                ChannelError::Invalid("messages[].timestamp is out of range".into())
            })?;
            let received = match (m.kind.as_str(), &m.text) {
                ("text", Some(t)) => Received::clipped(&t.body, max_chars)?,
                ("text", None) => {
                    return Err(ChannelError::Invalid(
                        "a text message needs text.body".into(),
                    ));
                }
                (kind, _) => {
                    let media = m
                        .image
                        .as_ref()
                        .or(m.sticker.as_ref())
                        .or(m.audio.as_ref())
                        .or(m.video.as_ref())
                        .or(m.document.as_ref());
                    let kind = match (kind, media.and_then(|x| x.voice)) {
                        ("audio", Some(true)) => "voice",
                        (k, _) => k,
                    };
                    let media_id = media.map(|x| x.id.clone());
                    let caption = media.and_then(|x| x.caption.as_deref());
                    Received {
                        kind: kind.to_string(),
                        text: media_note(CHANNEL, kind, media_id.as_deref(), caption, max_chars),
                        media_id,
                    }
                }
            };
            let customer = CustomerId::parse(&format!("wa:{}", m.from))
                .map_err(|_| ChannelError::Invalid("messages[].from is not a usable id".into()))?;
            records.push(InboundRecord {
                channel: CHANNEL.into(),
                platform_message_id: m.id.clone(),
                user_id: m.from.clone(),
                address: m.from.clone(),
                new_customer_id: customer,
                new_conversation_id: ConversationId::new(),
                kind: received.kind,
                text: received.text,
                lang: None,
                media_id: received.media_id,
                sent_at,
                platform_order: secs,
            });
        }
        for s in &v.statuses {
            if matches!(s.status.as_str(), "sent" | "delivered" | "read" | "failed") {
                statuses.push(StatusUpdate {
                    platform_message_id: s.id.clone(),
                    status: s.status.clone(),
                });
            }
        }
    }
    Ok((records, statuses))
}

/// Sends one text reply; the platform's message id (`wamid…`) comes back for statuses.
pub async fn send(http: &reqwest::Client, cfg: &WhatsAppConfig, to: &str, text: &str) -> Outcome {
    let url = format!(
        "{}/{}/{}/messages",
        cfg.api_base, cfg.api_version, cfg.phone_number_id
    );
    let body = json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "text",
        "text": {"preview_url": false, "body": text},
    });
    let resp = http
        .post(url)
        .bearer_auth(cfg.access_token.expose())
        .json(&body)
        .send()
        .await;
    super::outcome(resp, |v| {
        v["messages"][0]["id"].as_str().map(str::to_string)
    })
    .await
}
