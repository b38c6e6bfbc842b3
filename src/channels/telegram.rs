//! Telegram Bot API: an `Update` (`update_id`, `message.chat.id`, `message.from`,
//! `message.date`, `message.text`) turned into an inbound record, and `sendMessage`.

use chrono::{TimeZone, Utc};
use serde::Deserialize;
use serde_json::json;

use super::settings::TelegramConfig;
use super::{ChannelError, Outcome, Received, media_note};
use crate::domain::{ConversationId, CustomerId};
use crate::store::channels::InboundRecord;

pub const CHANNEL: &str = "telegram";

#[derive(Debug, Deserialize)]
pub struct Update {
    pub update_id: i64,
    #[serde(default)]
    pub message: Option<Message>,
}

#[derive(Debug, Deserialize)]
pub struct Message {
    pub message_id: i64,
    #[serde(default)]
    pub from: Option<User>,
    pub chat: Chat,
    pub date: i64,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub caption: Option<String>,
    #[serde(default)]
    pub photo: Option<Vec<File>>,
    #[serde(default)]
    pub sticker: Option<File>,
    #[serde(default)]
    pub voice: Option<File>,
    #[serde(default)]
    pub audio: Option<File>,
    #[serde(default)]
    pub video: Option<File>,
    #[serde(default)]
    pub document: Option<File>,
    #[serde(default)]
    pub location: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
pub struct User {
    pub id: i64,
    #[serde(default)]
    pub language_code: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Chat {
    pub id: i64,
}

#[derive(Debug, Deserialize)]
pub struct File {
    pub file_id: String,
}

/// The record to store for an update; `None` for updates that carry no new message (edits,
/// button presses, channel posts), which are acknowledged and ignored.
pub fn parse(update: Update, max_chars: usize) -> Result<Option<InboundRecord>, ChannelError> {
    let Some(m) = update.message else {
        return Ok(None);
    };
    let sent_at = Utc
        .timestamp_opt(m.date, 0)
        .single()
        .ok_or_else(|| ChannelError::Invalid("message.date is out of range".into()))?;
    let received = if let Some(text) = &m.text {
        Received::clipped(text, max_chars)?
    } else {
        let (kind, file) = if let Some(p) = &m.photo {
            // Sizes come smallest first; the largest is the one worth keeping.
            ("image", p.last())
        } else if let Some(f) = &m.sticker {
            ("sticker", Some(f))
        } else if let Some(f) = &m.voice {
            ("voice", Some(f))
        } else if let Some(f) = &m.audio {
            ("audio", Some(f))
        } else if let Some(f) = &m.video {
            ("video", Some(f))
        } else if let Some(f) = &m.document {
            ("document", Some(f))
        } else if m.location.is_some() {
            ("location", None)
        } else {
            ("other", None)
        };
        let media_id = file.map(|f| f.file_id.clone());
        Received {
            kind: kind.into(),
            text: media_note(
                CHANNEL,
                kind,
                media_id.as_deref(),
                m.caption.as_deref(),
                max_chars,
            ),
            media_id,
        }
    };
    // A conversation per chat (in a private chat the chat id is the user's id); the customer
    // is the person writing.
    let user = m.from.as_ref().map_or(m.chat.id, |u| u.id);
    let customer = CustomerId::parse(&format!("tg:{user}"))
        .map_err(|_| ChannelError::Invalid("message.from.id is not a usable id".into()))?;
    Ok(Some(InboundRecord {
        channel: CHANNEL.into(),
        // message_id is unique within a chat only.
        platform_message_id: format!("{}:{}", m.chat.id, m.message_id),
        user_id: m.chat.id.to_string(),
        address: m.chat.id.to_string(),
        new_customer_id: customer,
        new_conversation_id: ConversationId::new(),
        kind: received.kind,
        text: received.text,
        lang: m.from.and_then(|u| u.language_code),
        media_id: received.media_id,
        sent_at,
        platform_order: update.update_id,
    }))
}

/// Sends one text reply with `sendMessage`.
pub async fn send(
    http: &reqwest::Client,
    cfg: &TelegramConfig,
    chat_id: &str,
    text: &str,
) -> Outcome {
    let url = format!("{}/bot{}/sendMessage", cfg.api_base, cfg.bot_token.expose());
    let chat: serde_json::Value = chat_id
        .parse::<i64>()
        .map_or_else(|_| json!(chat_id), |n| json!(n));
    let resp = http
        .post(url)
        .json(&json!({"chat_id": chat, "text": text}))
        .send()
        .await;
    super::outcome(resp, |v| {
        v["result"]["message_id"].as_i64().map(|n| n.to_string())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> serde_json::Value {
        let path = format!(
            "{}/tests/fixtures/channels/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn check(v: serde_json::Value) -> Option<InboundRecord> {
        parse(serde_json::from_value(v).unwrap(), 4000).unwrap()
    }

    #[test]
    fn updates_parse() {
        let r = check(fixture("telegram_text.json")).unwrap();
        assert_eq!(r.platform_message_id, "1111111:1365");
        assert_eq!(r.user_id, "1111111");
        assert_eq!(r.address, "1111111");
        assert_eq!(r.new_customer_id.as_str(), "tg:1111111");
        assert_eq!(r.text, "/start");
        assert_eq!(r.lang.as_deref(), Some("en"));
        assert_eq!(r.platform_order, 10000);
        assert_eq!(r.sent_at.timestamp(), 1_441_645_532);

        let r = check(fixture("telegram_photo.json")).unwrap();
        assert_eq!(r.kind, "image");
        assert_eq!(r.media_id.as_deref(), Some("AgACAgIAAxkBAAIBZ2VqLargeAAA"));

        let mut sticker = fixture("telegram_photo.json");
        let m = sticker["message"].as_object_mut().unwrap();
        m.remove("photo");
        m.remove("caption");
        m.insert("sticker".into(), serde_json::json!({"file_id": "CAACAgI", "file_unique_id": "u", "width": 512, "height": 512, "is_animated": false, "is_video": false, "type": "regular"}));
        assert_eq!(
            check(sticker).unwrap().text,
            "[sticker · telegram media CAACAgI]"
        );

        // An edit or a button press carries no new message.
        let edit = serde_json::json!({"update_id": 5, "edited_message": fixture("telegram_text.json")["message"]});
        assert!(check(edit).is_none());
    }

    #[test]
    fn empty_text_is_refused() {
        let mut v = fixture("telegram_text.json");
        v["message"]["text"] = " ".into();
        assert!(parse(serde_json::from_value(v).unwrap(), 4000).is_err());
    }
}
