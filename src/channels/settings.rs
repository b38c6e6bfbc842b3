//! Settings of the messaging channels, layered like every other setting (config file
//! `[channels]` table, then environment, then flags). A channel is on only when all of its
//! settings are present; a half-configured channel is an error at start that names what is
//! missing. Secrets are [`Secret`]s, so they never reach a log.

use serde::Deserialize;

use crate::settings::{Secret, SettingsError};

/// The Graph API, where WhatsApp replies go unless `whatsapp_api_base` says otherwise.
pub const GRAPH_API: &str = "https://graph.facebook.com";
/// The Graph API version in reply URLs.
pub const GRAPH_VERSION: &str = "v21.0";
/// The Telegram Bot API.
pub const TELEGRAM_API: &str = "https://api.telegram.org";

/// Channel settings as given (every key optional).
#[derive(Debug, Clone, Deserialize, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ChannelSettings {
    pub whatsapp_app_secret: Option<Secret>,
    pub whatsapp_verify_token: Option<Secret>,
    pub whatsapp_access_token: Option<Secret>,
    pub whatsapp_phone_number_id: Option<String>,
    pub whatsapp_api_base: Option<String>,
    pub whatsapp_api_version: Option<String>,
    pub telegram_bot_token: Option<Secret>,
    pub telegram_secret_token: Option<Secret>,
    pub telegram_api_base: Option<String>,
    pub generic_secret: Option<Secret>,
    pub generic_reply_url: Option<String>,
    /// Delivery attempts before an outbox row is parked as dead [default: 8].
    pub outbox_max_attempts: Option<u32>,
    /// First retry delay; doubles per attempt, with jitter [default: 1000 ms].
    pub outbox_base_delay_ms: Option<u64>,
    /// Longest retry delay [default: 300000 ms].
    pub outbox_max_delay_ms: Option<u64>,
    /// Timeout of one call to a platform API [default: 10000 ms].
    pub send_timeout_ms: Option<u64>,
    /// How long a received message waits for earlier ones the platform may still deliver out
    /// of order before it is processed [default: 200 ms].
    pub inbox_settle_ms: Option<u64>,
}

/// A configured WhatsApp Cloud API channel.
#[derive(Debug, Clone)]
pub struct WhatsAppConfig {
    pub app_secret: Secret,
    pub verify_token: Secret,
    pub access_token: Secret,
    pub phone_number_id: String,
    pub api_base: String,
    pub api_version: String,
}

/// A configured Telegram bot.
#[derive(Debug, Clone)]
pub struct TelegramConfig {
    pub bot_token: Secret,
    pub secret_token: Secret,
    pub api_base: String,
}

/// A configured signed webhook.
#[derive(Debug, Clone)]
pub struct GenericConfig {
    pub secret: Secret,
    pub reply_url: String,
}

/// Retry and timing policy of the inbox and outbox workers.
#[derive(Debug, Clone, Copy)]
pub struct DeliveryPolicy {
    pub max_attempts: u32,
    pub base_delay_ms: u64,
    pub max_delay_ms: u64,
    pub send_timeout_ms: u64,
    pub settle_ms: u64,
}

impl ChannelSettings {
    /// `other`'s values where it has them, ours elsewhere.
    pub fn merge(self, other: Self) -> Self {
        macro_rules! pick {
            ($($f:ident),*) => { Self { $( $f: other.$f.or(self.$f), )* } };
        }
        pick!(
            whatsapp_app_secret,
            whatsapp_verify_token,
            whatsapp_access_token,
            whatsapp_phone_number_id,
            whatsapp_api_base,
            whatsapp_api_version,
            telegram_bot_token,
            telegram_secret_token,
            telegram_api_base,
            generic_secret,
            generic_reply_url,
            outbox_max_attempts,
            outbox_base_delay_ms,
            outbox_max_delay_ms,
            send_timeout_ms,
            inbox_settle_ms
        )
    }

    pub fn whatsapp(&self) -> Option<WhatsAppConfig> {
        Some(WhatsAppConfig {
            app_secret: self.whatsapp_app_secret.clone()?,
            verify_token: self.whatsapp_verify_token.clone()?,
            access_token: self.whatsapp_access_token.clone()?,
            phone_number_id: self.whatsapp_phone_number_id.clone()?,
            api_base: trim(self.whatsapp_api_base.as_deref().unwrap_or(GRAPH_API)),
            api_version: self
                .whatsapp_api_version
                .clone()
                .unwrap_or_else(|| GRAPH_VERSION.into()),
        })
    }

    pub fn telegram(&self) -> Option<TelegramConfig> {
        Some(TelegramConfig {
            bot_token: self.telegram_bot_token.clone()?,
            secret_token: self.telegram_secret_token.clone()?,
            api_base: trim(self.telegram_api_base.as_deref().unwrap_or(TELEGRAM_API)),
        })
    }

    pub fn generic(&self) -> Option<GenericConfig> {
        Some(GenericConfig {
            secret: self.generic_secret.clone()?,
            reply_url: self.generic_reply_url.clone()?,
        })
    }

    pub fn policy(&self) -> DeliveryPolicy {
        DeliveryPolicy {
            max_attempts: self.outbox_max_attempts.unwrap_or(8),
            base_delay_ms: self.outbox_base_delay_ms.unwrap_or(1000),
            max_delay_ms: self.outbox_max_delay_ms.unwrap_or(300_000),
            send_timeout_ms: self.send_timeout_ms.unwrap_or(10_000),
            settle_ms: self.inbox_settle_ms.unwrap_or(200),
        }
    }

    /// Refuses half-configured channels and values that would only fail later.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let groups: [(&str, Vec<(&str, bool)>); 3] = [
            (
                "WhatsApp",
                vec![
                    (
                        "SWITCHBOARD_WHATSAPP_APP_SECRET",
                        self.whatsapp_app_secret.is_some(),
                    ),
                    (
                        "SWITCHBOARD_WHATSAPP_VERIFY_TOKEN",
                        self.whatsapp_verify_token.is_some(),
                    ),
                    (
                        "SWITCHBOARD_WHATSAPP_ACCESS_TOKEN",
                        self.whatsapp_access_token.is_some(),
                    ),
                    (
                        "SWITCHBOARD_WHATSAPP_PHONE_NUMBER_ID",
                        self.whatsapp_phone_number_id.is_some(),
                    ),
                ],
            ),
            (
                "Telegram",
                vec![
                    (
                        "SWITCHBOARD_TELEGRAM_BOT_TOKEN",
                        self.telegram_bot_token.is_some(),
                    ),
                    (
                        "SWITCHBOARD_TELEGRAM_SECRET_TOKEN",
                        self.telegram_secret_token.is_some(),
                    ),
                ],
            ),
            (
                "the generic webhook",
                vec![
                    ("SWITCHBOARD_GENERIC_SECRET", self.generic_secret.is_some()),
                    (
                        "SWITCHBOARD_GENERIC_REPLY_URL",
                        self.generic_reply_url.is_some(),
                    ),
                ],
            ),
        ];
        for (name, keys) in &groups {
            let missing: Vec<&str> = keys.iter().filter(|(_, s)| !s).map(|(k, _)| *k).collect();
            if !missing.is_empty() && missing.len() < keys.len() {
                return Err(SettingsError::Invalid(format!(
                    "{name} is partly configured; also set {}",
                    missing.join(", ")
                )));
            }
        }
        let bad = |m: String| Err(SettingsError::Invalid(m));
        for (key, url) in [
            ("whatsapp_api_base", &self.whatsapp_api_base),
            ("telegram_api_base", &self.telegram_api_base),
            ("generic_reply_url", &self.generic_reply_url),
        ] {
            if let Some(u) = url
                && !(u.starts_with("http://") || u.starts_with("https://"))
            {
                return bad(format!("{key} must be an http(s) URL"));
            }
        }
        if let Some(s) = &self.generic_secret
            && s.expose().len() < 16
        {
            return bad("generic_secret must be at least 16 characters".into());
        }
        if let Some(t) = &self.telegram_secret_token {
            let t = t.expose();
            if t.is_empty()
                || t.len() > 256
                || !t
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                return bad(
                    "telegram_secret_token must be 1-256 of A-Z, a-z, 0-9, '_' and '-' (Telegram's rule)"
                        .into(),
                );
            }
        }
        if let Some(id) = &self.whatsapp_phone_number_id
            && (id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()))
        {
            return bad("whatsapp_phone_number_id must be digits".into());
        }
        if self.outbox_max_attempts == Some(0) {
            return bad("outbox_max_attempts must be at least 1".into());
        }
        Ok(())
    }
}

fn trim(url: &str) -> String {
    url.trim_end_matches('/').to_string()
}

/// The channel flags of `switchboard serve` (each also an environment variable).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ChannelArgs {
    /// WhatsApp Cloud API: the Meta app secret that signs webhooks (X-Hub-Signature-256).
    #[arg(long, env = "SWITCHBOARD_WHATSAPP_APP_SECRET", hide_env_values = true)]
    pub whatsapp_app_secret: Option<String>,
    /// WhatsApp: the verify token of the webhook subscription check.
    #[arg(
        long,
        env = "SWITCHBOARD_WHATSAPP_VERIFY_TOKEN",
        hide_env_values = true
    )]
    pub whatsapp_verify_token: Option<String>,
    /// WhatsApp: the access token replies are sent with.
    #[arg(
        long,
        env = "SWITCHBOARD_WHATSAPP_ACCESS_TOKEN",
        hide_env_values = true
    )]
    pub whatsapp_access_token: Option<String>,
    /// WhatsApp: the business phone number id that receives and sends messages.
    #[arg(long, env = "SWITCHBOARD_WHATSAPP_PHONE_NUMBER_ID")]
    pub whatsapp_phone_number_id: Option<String>,
    /// WhatsApp: the Graph API base URL [default: https://graph.facebook.com].
    #[arg(long, env = "SWITCHBOARD_WHATSAPP_API_BASE")]
    pub whatsapp_api_base: Option<String>,
    /// Telegram: the bot token replies are sent with.
    #[arg(long, env = "SWITCHBOARD_TELEGRAM_BOT_TOKEN", hide_env_values = true)]
    pub telegram_bot_token: Option<String>,
    /// Telegram: the webhook's secret_token (X-Telegram-Bot-Api-Secret-Token).
    #[arg(
        long,
        env = "SWITCHBOARD_TELEGRAM_SECRET_TOKEN",
        hide_env_values = true
    )]
    pub telegram_secret_token: Option<String>,
    /// Telegram: the Bot API base URL [default: https://api.telegram.org].
    #[arg(long, env = "SWITCHBOARD_TELEGRAM_API_BASE")]
    pub telegram_api_base: Option<String>,
    /// Generic webhook: the shared secret of X-Switchboard-Signature (at least 16 characters).
    #[arg(long, env = "SWITCHBOARD_GENERIC_SECRET", hide_env_values = true)]
    pub generic_secret: Option<String>,
    /// Generic webhook: where replies are POSTed, signed the same way.
    #[arg(long, env = "SWITCHBOARD_GENERIC_REPLY_URL")]
    pub generic_reply_url: Option<String>,
    /// Delivery attempts before an outbox row is parked as dead [default: 8].
    #[arg(long, env = "SWITCHBOARD_OUTBOX_MAX_ATTEMPTS")]
    pub outbox_max_attempts: Option<u32>,
    /// First retry delay in milliseconds, doubling per attempt with jitter [default: 1000].
    #[arg(long, env = "SWITCHBOARD_OUTBOX_BASE_DELAY_MS")]
    pub outbox_base_delay_ms: Option<u64>,
    /// Longest retry delay in milliseconds [default: 300000].
    #[arg(long, env = "SWITCHBOARD_OUTBOX_MAX_DELAY_MS")]
    pub outbox_max_delay_ms: Option<u64>,
    /// Timeout of one platform API call in milliseconds [default: 10000].
    #[arg(long, env = "SWITCHBOARD_SEND_TIMEOUT_MS")]
    pub send_timeout_ms: Option<u64>,
    /// How long a received message waits for earlier ones a platform delivers late, in
    /// milliseconds [default: 200].
    #[arg(long, env = "SWITCHBOARD_INBOX_SETTLE_MS")]
    pub inbox_settle_ms: Option<u64>,
}

impl ChannelArgs {
    pub fn into_settings(self) -> ChannelSettings {
        ChannelSettings {
            whatsapp_app_secret: self.whatsapp_app_secret.map(Secret::new),
            whatsapp_verify_token: self.whatsapp_verify_token.map(Secret::new),
            whatsapp_access_token: self.whatsapp_access_token.map(Secret::new),
            whatsapp_phone_number_id: self.whatsapp_phone_number_id,
            whatsapp_api_base: self.whatsapp_api_base,
            telegram_bot_token: self.telegram_bot_token.map(Secret::new),
            telegram_secret_token: self.telegram_secret_token.map(Secret::new),
            telegram_api_base: self.telegram_api_base,
            generic_secret: self.generic_secret.map(Secret::new),
            generic_reply_url: self.generic_reply_url,
            outbox_max_attempts: self.outbox_max_attempts,
            outbox_base_delay_ms: self.outbox_base_delay_ms,
            outbox_max_delay_ms: self.outbox_max_delay_ms,
            send_timeout_ms: self.send_timeout_ms,
            inbox_settle_ms: self.inbox_settle_ms,
            ..ChannelSettings::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_configured_channels_are_refused_and_secrets_hidden() {
        let s = ChannelSettings {
            telegram_bot_token: Some(Secret::new("123:abc")),
            ..Default::default()
        };
        let e = s.validate().unwrap_err().to_string();
        assert!(e.contains("SWITCHBOARD_TELEGRAM_SECRET_TOKEN"), "{e}");
        let s = ChannelSettings {
            telegram_secret_token: Some(Secret::new("s3cr3t-token_x")),
            ..s
        };
        assert!(s.validate().is_ok());
        assert!(s.telegram().is_some() && s.whatsapp().is_none() && s.generic().is_none());
        assert!(!format!("{s:?}").contains("s3cr3t"));
        let bad = ChannelSettings {
            telegram_secret_token: Some(Secret::new("has space")),
            ..s
        };
        assert!(bad.validate().is_err());
    }

    #[test]
    fn later_layers_win() {
        let file: ChannelSettings =
            toml::from_str("generic_reply_url = \"http://a\"\noutbox_max_attempts = 3").unwrap();
        let env = ChannelSettings {
            generic_reply_url: Some("http://b".into()),
            ..Default::default()
        };
        let s = file.merge(env);
        assert_eq!(s.generic_reply_url.as_deref(), Some("http://b"));
        assert_eq!(s.policy().max_attempts, 3);
    }
}

#[cfg(test)]
mod env_tests {
    use clap::Args;

    /// The environment names are the ones the issue and the README promise.
    #[test]
    fn environment_names() {
        let cmd = super::ChannelArgs::augment_args(clap::Command::new("serve"));
        let names: Vec<String> = cmd
            .get_arguments()
            .filter_map(|a| a.get_env().map(|e| e.to_string_lossy().into_owned()))
            .collect();
        for expected in [
            "SWITCHBOARD_WHATSAPP_APP_SECRET",
            "SWITCHBOARD_WHATSAPP_VERIFY_TOKEN",
            "SWITCHBOARD_WHATSAPP_ACCESS_TOKEN",
            "SWITCHBOARD_WHATSAPP_PHONE_NUMBER_ID",
            "SWITCHBOARD_WHATSAPP_API_BASE",
            "SWITCHBOARD_TELEGRAM_BOT_TOKEN",
            "SWITCHBOARD_TELEGRAM_SECRET_TOKEN",
            "SWITCHBOARD_TELEGRAM_API_BASE",
            "SWITCHBOARD_GENERIC_SECRET",
            "SWITCHBOARD_GENERIC_REPLY_URL",
        ] {
            assert!(
                names.iter().any(|n| n == expected),
                "{expected} in {names:?}"
            );
        }
        // Secrets are never shown in --help.
        for a in cmd.get_arguments() {
            let id = a.get_id().as_str();
            if id.contains("secret") || id.contains("token") {
                assert!(a.is_hide_env_values_set(), "{id}");
            }
        }
    }
}
