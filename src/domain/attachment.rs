//! Photos a shopper attaches to a conversation (a broken cup, a wrong item). Only raster images
//! of four kinds are accepted, and the kind is read from the bytes themselves (their magic
//! numbers and first chunk), never from a declared content type or a file name: a text file
//! renamed `.png` or an SVG (which can carry script) is not an image here.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::ConversationId;

/// An attachment id (UUID v4): one per upload, so access follows the conversation it was
/// uploaded to even when two shoppers send the same photo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AttachmentId(pub uuid::Uuid);

impl AttachmentId {
    pub fn new() -> Self {
        Self(uuid::Uuid::new_v4())
    }
    pub fn parse(s: &str) -> Option<Self> {
        uuid::Uuid::parse_str(s).ok().map(Self)
    }
}

impl Default for AttachmentId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for AttachmentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The image kinds a shopper may attach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageType {
    Jpeg,
    Png,
    Gif,
    Webp,
}

impl ImageType {
    /// Recognises an image by its content: the format's signature and, where the format has
    /// one, the header that must follow it. Anything else is `None`.
    pub fn sniff(bytes: &[u8]) -> Option<Self> {
        let at = |range: std::ops::Range<usize>| bytes.get(range);
        // JPEG: SOI then the first marker (FF followed by a marker code).
        if bytes.len() >= 4 && bytes[..3] == [0xFF, 0xD8, 0xFF] && bytes[3] >= 0xC0 {
            return Some(Self::Jpeg);
        }
        // PNG: the 8-byte signature, then the IHDR chunk, which must come first.
        if at(0..8) == Some(b"\x89PNG\r\n\x1a\n") && at(12..16) == Some(b"IHDR") {
            return Some(Self::Png);
        }
        // GIF: version signature plus the 7-byte logical screen descriptor.
        if (at(0..6) == Some(b"GIF87a") || at(0..6) == Some(b"GIF89a")) && bytes.len() >= 13 {
            return Some(Self::Gif);
        }
        // WebP: a RIFF container of form WEBP whose first chunk is a VP8 variant.
        if at(0..4) == Some(b"RIFF")
            && at(8..12) == Some(b"WEBP")
            && matches!(at(12..16), Some(b"VP8 " | b"VP8L" | b"VP8X"))
        {
            return Some(Self::Webp);
        }
        None
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::Gif => "image/gif",
            Self::Webp => "image/webp",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Self::Jpeg => "jpg",
            Self::Png => "png",
            Self::Gif => "gif",
            Self::Webp => "webp",
        }
    }

    pub fn parse(content_type: &str) -> Option<Self> {
        Some(match content_type {
            "image/jpeg" => Self::Jpeg,
            "image/png" => Self::Png,
            "image/gif" => Self::Gif,
            "image/webp" => Self::Webp,
            _ => return None,
        })
    }
}

impl Serialize for ImageType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.content_type())
    }
}

impl<'de> Deserialize<'de> for ImageType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("not an image type: {s}")))
    }
}

/// What a message says about its attachment: enough to show it and fetch it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentRef {
    pub id: AttachmentId,
    pub content_type: ImageType,
    /// Bytes.
    pub size: u64,
}

impl AttachmentRef {
    /// Where agents and the conversation's shopper fetch the bytes.
    pub fn url(&self) -> String {
        format!("/api/v1/attachments/{}", self.id)
    }

    /// The wire form in messages and `message_added` events:
    /// `{id, content_type, size, url}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id.to_string(),
            "content_type": self.content_type.content_type(),
            "size": self.size,
            "url": self.url(),
        })
    }
}

/// A stored attachment's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub id: AttachmentId,
    /// The conversation it was uploaded to: its shopper (and agents) may read it.
    pub conversation_id: ConversationId,
    pub content_type: ImageType,
    pub size: u64,
    /// Hex SHA-256 of the bytes (the file name in the embedded store, and the ETag).
    pub sha256: String,
    pub created_at: DateTime<Utc>,
}

impl Attachment {
    /// Metadata for `bytes` of a recognised `content_type`, uploaded to `conversation_id`.
    pub fn describe(
        conversation_id: ConversationId,
        content_type: ImageType,
        bytes: &[u8],
        at: DateTime<Utc>,
    ) -> Self {
        Self {
            id: AttachmentId::new(),
            conversation_id,
            content_type,
            size: bytes.len() as u64,
            sha256: sha256_hex(bytes),
            created_at: at,
        }
    }

    pub fn reference(&self) -> AttachmentRef {
        AttachmentRef {
            id: self.id,
            content_type: self.content_type,
            size: self.size,
        }
    }
}

/// Hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::ImageType::{self, *};

    #[test]
    fn images_are_recognised_by_their_bytes_only() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0";
        let webp = b"RIFF\x24\0\0\0WEBPVP8L\x0d\0\0\0";
        let table: [(&[u8], Option<ImageType>); 12] = [
            (b"\xFF\xD8\xFF\xE0\0\x10JFIF\0", Some(Jpeg)),
            (b"\xFF\xD8\xFF\xDB\0\x43", Some(Jpeg)),
            (png, Some(Png)),
            (b"GIF89a\x01\0\x01\0\x80\0\0", Some(Gif)),
            (b"GIF87a\x01\0\x01\0\x80\0\0", Some(Gif)),
            (webp, Some(Webp)),
            // A PNG signature with no IHDR after it, a truncated JPEG, a bare GIF tag.
            (b"\x89PNG\r\n\x1a\n\0\0\0\rXXXX", None),
            (b"\xFF\xD8\xFF", None),
            (b"GIF89a", None),
            (b"RIFF\x24\0\0\0WAVEfmt ", None),
            (
                b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>",
                None,
            ),
            (b"just some text renamed to photo.png", None),
        ];
        for (bytes, want) in table {
            assert_eq!(ImageType::sniff(bytes), want, "{bytes:?}");
        }
    }

    #[test]
    fn content_types_round_trip() {
        for t in [Jpeg, Png, Gif, Webp] {
            assert_eq!(ImageType::parse(t.content_type()), Some(t));
        }
        assert_eq!(ImageType::parse("image/svg+xml"), None);
    }
}
