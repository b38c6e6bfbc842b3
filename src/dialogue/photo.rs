//! Photos in the conversation. The bot cannot see a picture, so a photo sent while the
//! shopper talks to the bot is acknowledged, with a person offered (the usual reason for a
//! photo is a damaged or wrong item, which people handle); a caption is understood like any
//! message, and only when the bot cannot act on it does the acknowledgement replace its
//! answer. While the shopper waits for or talks to a person, a photo is simply added to the
//! transcript the agent reads.

use chrono::{DateTime, Utc};

use super::Plan;
use super::replies::{Canned, canned};
use crate::domain::{Attachment, ConversationId, ImageType, Lang};
use crate::routing::HandoffReason;

/// The metrics label of a turn that had only a photo to go on.
pub const INTENT_LABEL: &str = "attachment";

/// A photo as the edge accepted it: its type recognised from its bytes, its size checked.
#[derive(Debug, Clone)]
pub struct Photo {
    pub content_type: ImageType,
    pub bytes: Vec<u8>,
}

impl Photo {
    /// The retry-key fingerprint of a message carrying this photo: the text message's
    /// fingerprint and the photo's SHA-256, so the same key with another photo is refused.
    pub(super) fn fingerprint(&self, text_fingerprint: &str) -> String {
        crate::domain::attachment::sha256_hex(
            format!(
                "{text_fingerprint}:photo:{}",
                crate::domain::attachment::sha256_hex(&self.bytes)
            )
            .as_bytes(),
        )
    }

    pub(super) fn describe(&self, conversation: ConversationId, at: DateTime<Utc>) -> Attachment {
        Attachment::describe(conversation, self.content_type, &self.bytes, at)
    }
}

/// The bot's answer to a photo: thanks, and the way to a person who can look at it.
pub(super) fn acknowledge(lang: Lang) -> Plan {
    let person = match lang {
        Lang::En => "I want to talk to a person",
        Lang::Zh => "我要找人工客服",
    };
    Plan {
        replies: vec![canned(Canned::PhotoReceived, lang).to_string()],
        route: "bot",
        reason: "attachment:acknowledged".into(),
        handoff: None,
        quick_replies: vec![person.to_string()],
    }
}

/// Whether the bot's plan for a caption is only a request to rephrase (which a photo makes
/// pointless): the caption's own answer is kept whenever it does something.
pub(super) fn caption_missed(reason: &str, handoff: &Option<HandoffReason>) -> bool {
    handoff.is_none() && matches!(reason, "low_confidence" | "faq_no_answer")
}
