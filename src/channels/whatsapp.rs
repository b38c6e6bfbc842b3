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
    /// Why a message `failed`.
    #[serde(default)]
    pub errors: Vec<StatusError>,
}

#[derive(Debug, Deserialize)]
pub struct StatusError {
    #[serde(default)]
    pub code: Option<i64>,
    #[serde(default)]
    pub title: Option<String>,
}

/// A delivery status to apply to a sent message.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusUpdate {
    pub platform_message_id: String,
    pub status: String,
    /// The platform's reason for a failure (`131047 Re-engagement message`).
    pub error: Option<String>,
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
                let error = s.errors.first().map(|e| {
                    let code = e.code.map(|c| c.to_string()).unwrap_or_default();
                    let title = e.title.as_deref().unwrap_or_default();
                    format!("WhatsApp {code} {title}")
                        .trim()
                        .chars()
                        .take(200)
                        .collect()
                });
                statuses.push(StatusUpdate {
                    platform_message_id: s.id.clone(),
                    status: s.status.clone(),
                    error,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Secret;

    fn cfg() -> WhatsAppConfig {
        WhatsAppConfig {
            app_secret: Secret::new("s"),
            verify_token: Secret::new("v"),
            access_token: Secret::new("a"),
            phone_number_id: "106540352242922".into(),
            api_base: "http://x".into(),
            api_version: "v21.0".into(),
        }
    }

    fn fixture(name: &str) -> serde_json::Value {
        let path = format!(
            "{}/tests/fixtures/channels/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn check(
        v: serde_json::Value,
    ) -> Result<(Vec<InboundRecord>, Vec<StatusUpdate>), ChannelError> {
        parse(&cfg(), serde_json::from_value(v).unwrap(), 4000)
    }

    #[test]
    fn meta_examples_parse() {
        let (records, statuses) = check(fixture("whatsapp_text.json")).unwrap();
        assert!(statuses.is_empty());
        let r = &records[0];
        assert_eq!(r.channel, "whatsapp");
        assert_eq!(r.user_id, "16505551234");
        assert_eq!(r.address, "16505551234");
        assert_eq!(r.new_customer_id.as_str(), "wa:16505551234");
        assert_eq!(r.kind, "text");
        assert_eq!(r.text, "Does it come in another color?");
        assert_eq!(r.sent_at.timestamp(), 1_749_416_383);
        assert_eq!(r.platform_order, 1_749_416_383);

        let (records, _) = check(fixture("whatsapp_image.json")).unwrap();
        assert_eq!(records[0].kind, "image");
        assert_eq!(records[0].media_id.as_deref(), Some("1003383421387256"));

        let (records, statuses) = check(fixture("whatsapp_status.json")).unwrap();
        assert!(records.is_empty());
        assert_eq!(statuses[0].status, "delivered");
        assert_eq!(statuses[0].error, None);
        let mut failed = fixture("whatsapp_status.json");
        let s = &mut failed["entry"][0]["changes"][0]["value"]["statuses"][0];
        s["status"] = "failed".into();
        s["errors"] = serde_json::json!([{"code": 131047, "title": "Re-engagement message", "message": "Re-engagement message", "error_data": {"details": "Message failed to send because more than 24 hours have passed since the customer last replied to this number."}}]);
        let (_, statuses) = check(failed).unwrap();
        assert_eq!(
            statuses[0].error.as_deref(),
            Some("WhatsApp 131047 Re-engagement message")
        );
        assert!(statuses[0].platform_message_id.starts_with("wamid."));
    }

    #[test]
    fn one_post_carries_several_messages_and_kinds() {
        let mut v = fixture("whatsapp_text.json");
        let first = v["entry"][0]["changes"][0]["value"]["messages"][0].clone();
        let msgs = v["entry"][0]["changes"][0]["value"]["messages"]
            .as_array_mut()
            .unwrap();
        let mut voice = first.clone();
        voice["id"] = "wamid.voice".into();
        voice["type"] = "audio".into();
        voice["audio"] = serde_json::json!({"mime_type": "audio/ogg; codecs=opus", "sha256": "x", "id": "777", "voice": true});
        let mut location = first.clone();
        location["id"] = "wamid.loc".into();
        location["type"] = "location".into();
        location["location"] = serde_json::json!({"latitude": 37.48, "longitude": -122.14});
        let mut reaction = first.clone();
        reaction["id"] = "wamid.reaction".into();
        reaction["type"] = "reaction".into();
        msgs.extend([voice, location, reaction]);
        let (records, _) = check(v).unwrap();
        let kinds: Vec<&str> = records.iter().map(|r| r.kind.as_str()).collect();
        assert_eq!(kinds, vec!["text", "voice", "location"]);
        assert_eq!(records[1].text, "[voice · whatsapp media 777]");
        assert_eq!(records[2].text, "[location]");
    }

    #[test]
    fn bad_payloads_are_refused() {
        let mut other = fixture("whatsapp_text.json");
        other["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = "1".into();
        assert_eq!(check(other).unwrap_err(), ChannelError::UnknownAccount);
        for (field, value) in [
            ("from", serde_json::json!("+1 650")),
            ("timestamp", serde_json::json!("yesterday")),
            ("id", serde_json::json!("")),
        ] {
            let mut v = fixture("whatsapp_text.json");
            v["entry"][0]["changes"][0]["value"]["messages"][0][field] = value;
            assert!(matches!(check(v), Err(ChannelError::Invalid(_))), "{field}");
        }
        let mut no_body = fixture("whatsapp_text.json");
        no_body["entry"][0]["changes"][0]["value"]["messages"][0]
            .as_object_mut()
            .unwrap()
            .remove("text");
        assert!(matches!(check(no_body), Err(ChannelError::Invalid(_))));
    }
}
