//! Fetching a shopper's photo from the platform, so that it joins the transcript as an
//! attachment the agent sees (issue #10). WhatsApp Cloud API: `GET /{version}/{media_id}`
//! with the access token answers JSON whose `url` is then fetched with the same bearer
//! token. Telegram Bot API: `getFile?file_id=…` answers `result.file_path`, fetched from
//! `/file/bot{token}/{file_path}`. Every request runs under the channel client's timeout,
//! and the bytes are read only up to the attachment size limit; what comes back must sniff
//! as an image.

use serde_json::Value;

use super::Channels;
use crate::dialogue::Photo;
use crate::domain::ImageType;

/// Why a photo could not be fetched; the message then keeps its media note.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FetchError {
    /// The channel is not configured (any more).
    #[error("the {0} channel is not configured")]
    NotConfigured(String),
    /// The platform refused, failed, timed out or answered something unreadable.
    #[error("{0}")]
    Failed(String),
    /// Larger than the attachment limit.
    #[error("the media is larger than {0} bytes")]
    TooLarge(usize),
    /// The bytes are not a JPEG, PNG, GIF or WebP image.
    #[error("the media is not a supported image")]
    NotAnImage,
}

/// Fetches the image `media_id` of `channel` (`whatsapp` or `telegram`).
pub async fn fetch(c: &Channels, channel: &str, media_id: &str) -> Result<Photo, FetchError> {
    let bytes = match channel {
        super::whatsapp::CHANNEL => {
            let cfg = c
                .whatsapp
                .as_ref()
                .ok_or_else(|| FetchError::NotConfigured(channel.into()))?;
            let token = cfg.access_token.expose();
            let meta_url = format!(
                "{}/{}/{}",
                cfg.api_base,
                cfg.api_version,
                urlencoding(media_id)
            );
            let meta = json(c.http.get(meta_url).bearer_auth(token)).await?;
            let url = meta["url"]
                .as_str()
                .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
                .ok_or_else(|| FetchError::Failed("the media lookup gave no url".into()))?;
            download(c.http.get(url).bearer_auth(token), c.max_media_bytes).await?
        }
        super::telegram::CHANNEL => {
            let cfg = c
                .telegram
                .as_ref()
                .ok_or_else(|| FetchError::NotConfigured(channel.into()))?;
            let token = cfg.bot_token.expose();
            let meta = json(
                c.http
                    .get(format!("{}/bot{token}/getFile", cfg.api_base))
                    .query(&[("file_id", media_id)]),
            )
            .await?;
            if meta["ok"] != Value::Bool(true) {
                return Err(FetchError::Failed("getFile was not ok".into()));
            }
            let path = meta["result"]["file_path"]
                .as_str()
                .filter(|p| !p.is_empty() && !p.contains(".."))
                .ok_or_else(|| FetchError::Failed("getFile gave no file_path".into()))?;
            let url = format!("{}/file/bot{token}/{path}", cfg.api_base);
            download(c.http.get(url), c.max_media_bytes).await?
        }
        other => return Err(FetchError::NotConfigured(other.into())),
    };
    let content_type = ImageType::sniff(&bytes).ok_or(FetchError::NotAnImage)?;
    Ok(Photo {
        content_type,
        bytes,
    })
}

/// The caption of a message from its media note (`[kind · channel media id] caption`).
pub fn caption(note: &str, channel: &str, kind: &str, media_id: &str) -> String {
    let prefix = format!("[{kind} · {channel} media {media_id}]");
    note.strip_prefix(&prefix)
        .map(|c| c.trim().to_string())
        .unwrap_or_default()
}

fn urlencoding(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Sends a request; the error never names the URL (Telegram's holds the bot token).
async fn send(req: reqwest::RequestBuilder) -> Result<reqwest::Response, FetchError> {
    let resp = req.send().await.map_err(|e| {
        FetchError::Failed(match e.is_timeout() {
            true => "timed out".into(),
            false => format!("request failed: {}", e.without_url()),
        })
    })?;
    if !resp.status().is_success() {
        return Err(FetchError::Failed(format!("HTTP {}", resp.status())));
    }
    Ok(resp)
}

async fn json(req: reqwest::RequestBuilder) -> Result<Value, FetchError> {
    let body = download(req, 64 * 1024).await?;
    serde_json::from_slice(&body).map_err(|_| FetchError::Failed("the answer is not JSON".into()))
}

/// The body, refused as soon as it passes `max` bytes.
async fn download(req: reqwest::RequestBuilder, max: usize) -> Result<Vec<u8>, FetchError> {
    let mut resp = send(req).await?;
    if resp.content_length().is_some_and(|n| n > max as u64) {
        return Err(FetchError::TooLarge(max));
    }
    let mut bytes = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if bytes.len() + chunk.len() > max {
                    return Err(FetchError::TooLarge(max));
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(bytes),
            Err(e) if e.is_timeout() => return Err(FetchError::Failed("timed out".into())),
            Err(e) => {
                return Err(FetchError::Failed(format!(
                    "reading failed: {}",
                    e.without_url()
                )));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_caption_comes_back_from_the_note() {
        let note = super::super::media_note("whatsapp", "image", Some("12"), Some(" cup "), 100);
        assert_eq!(caption(&note, "whatsapp", "image", "12"), "cup");
        let bare = super::super::media_note("telegram", "image", Some("A_b"), None, 100);
        assert_eq!(caption(&bare, "telegram", "image", "A_b"), "");
        assert_eq!(caption("[image", "telegram", "image", "A_b"), "");
    }

    #[test]
    fn media_ids_are_escaped_in_the_path() {
        assert_eq!(urlencoding("12/../x y"), "12%2F..%2Fx%20y");
    }
}
