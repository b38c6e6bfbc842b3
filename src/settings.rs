//! One validated settings struct for `serve`, layered: built-in defaults, then a TOML config
//! file, then environment variables and command-line flags (clap merges those two, flags
//! winning). Secrets are wrapped so that they never reach a log.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::routing::BotPolicy;

/// A secret string: compared in constant time, printed as `***`.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Where the bot looks orders up.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct OrderSettings {
    /// URL template of the shop's order API, e.g. `https://shop/api/orders/{order_id}`; unset
    /// means the embedded provider (orders imported with `switchboard import orders`).
    pub http_url: Option<String>,
    pub http_token: Option<Secret>,
    pub timeout_ms: Option<u64>,
    pub retries: Option<u32>,
}

/// The settings of a running service.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// `postgres://…`: the shared PostgreSQL store several instances can run on. Unset: the
    /// embedded SQLite store in `data_dir`.
    pub database_url: Option<Secret>,
    pub models_dir: PathBuf,
    pub encoder: String,
    pub head: String,
    pub intents_dir: PathBuf,
    pub training_dir: PathBuf,
    pub kb_dir: PathBuf,
    /// Seeded into an empty store at start (customers.json, orders.json); `None` disables.
    pub demo_dir: Option<PathBuf>,
    /// Bearer token of agent/admin calls; generated into `data_dir/admin-token` when unset.
    pub admin_token: Option<Secret>,
    /// Shared with the shop's backend to sign customer ids (`customer_hash`). Unset: generated
    /// into `data_dir/identity-secret` in demo mode; otherwise every shopper is anonymous.
    pub identity_secret: Option<Secret>,
    pub max_body_bytes: usize,
    pub max_text_chars: usize,
    /// Largest photo a shopper may attach, in bytes (413 beyond it).
    pub max_attachment_bytes: usize,
    pub max_in_flight: usize,
    pub classifier_queue: usize,
    pub shutdown_timeout_secs: u64,
    pub kb_min_score: f32,
    pub policy: BotPolicy,
    pub orders: OrderSettings,
    /// The queue policy file (tiers, SLAs, teams, business hours); the compiled-in
    /// `config/routing.toml` when unset.
    pub routing_policy: Option<PathBuf>,
    /// How often the sweeper returns unanswered or abandoned conversations to the queue.
    pub sweep_interval_secs: u64,
    /// Agents created at start when missing (JSON array of `{id, name, languages, teams,
    /// capacity, token_sha256}`).
    pub agents_file: Option<PathBuf>,
    /// Shop origins (`https://shop.example`) whose pages may call the API from the chat
    /// widget; empty allows only same-origin pages such as the demo shop at `/`.
    pub cors_origins: Vec<String>,
    /// WhatsApp, Telegram and the signed webhook (each off unless configured), and the
    /// outbox's retry policy.
    pub channels: crate::channels::settings::ChannelSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("data"),
            database_url: None,
            models_dir: PathBuf::from("models"),
            encoder: crate::models::DEFAULT_ENCODER.into(),
            head: "switchboard".into(),
            intents_dir: PathBuf::from("intents"),
            training_dir: PathBuf::from("training-data"),
            kb_dir: PathBuf::from("kb"),
            demo_dir: Some(PathBuf::from("demo")),
            admin_token: None,
            identity_secret: None,
            max_body_bytes: 64 * 1024,
            max_text_chars: 4000,
            max_attachment_bytes: 5 * 1024 * 1024,
            max_in_flight: 256,
            classifier_queue: 256,
            shutdown_timeout_secs: 20,
            kb_min_score: crate::dialogue::kb::DEFAULT_MIN_SCORE,
            policy: BotPolicy::default(),
            orders: OrderSettings::default(),
            routing_policy: None,
            sweep_interval_secs: 15,
            agents_file: None,
            cors_origins: Vec::new(),
            channels: Default::default(),
        }
    }
}

/// The config file: every key optional.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FileSettings {
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<Secret>,
    pub models_dir: Option<PathBuf>,
    pub encoder: Option<String>,
    pub head: Option<String>,
    pub intents_dir: Option<PathBuf>,
    pub training_dir: Option<PathBuf>,
    pub kb_dir: Option<PathBuf>,
    pub demo_dir: Option<PathBuf>,
    pub demo: Option<bool>,
    pub admin_token: Option<Secret>,
    pub identity_secret: Option<Secret>,
    pub max_body_bytes: Option<usize>,
    pub max_text_chars: Option<usize>,
    pub max_attachment_bytes: Option<usize>,
    pub max_in_flight: Option<usize>,
    pub classifier_queue: Option<usize>,
    pub shutdown_timeout_secs: Option<u64>,
    pub kb_min_score: Option<f32>,
    pub min_confidence: Option<f32>,
    pub max_misses: Option<u32>,
    #[serde(default)]
    pub orders: OrderSettings,
    pub routing_policy: Option<PathBuf>,
    pub sweep_interval_secs: Option<u64>,
    pub agents_file: Option<PathBuf>,
    pub cors_origins: Option<Vec<String>>,
    #[serde(default)]
    pub channels: crate::channels::settings::ChannelSettings,
}

/// Invalid settings.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {path}: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
    #[error("invalid setting: {0}")]
    Invalid(String),
}

impl FileSettings {
    pub fn load(path: &Path) -> Result<Self, SettingsError> {
        let text = std::fs::read_to_string(path).map_err(|source| SettingsError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| SettingsError::Parse {
            path: path.to_path_buf(),
            source,
        })
    }
}

impl Settings {
    /// Applies a config file over these settings.
    pub fn merge_file(mut self, f: FileSettings) -> Self {
        macro_rules! take {
            ($($field:ident),*) => { $( if let Some(v) = f.$field { self.$field = v; } )* };
        }
        take!(
            listen,
            data_dir,
            models_dir,
            encoder,
            head,
            intents_dir,
            training_dir,
            kb_dir,
            max_body_bytes,
            max_text_chars,
            max_attachment_bytes,
            max_in_flight,
            classifier_queue,
            shutdown_timeout_secs,
            kb_min_score
        );
        if let Some(d) = f.demo_dir {
            self.demo_dir = Some(d);
        }
        if f.demo == Some(false) {
            self.demo_dir = None;
        }
        if f.admin_token.is_some() {
            self.admin_token = f.admin_token;
        }
        if f.database_url.is_some() {
            self.database_url = f.database_url;
        }
        if f.agents_file.is_some() {
            self.agents_file = f.agents_file;
        }
        if f.routing_policy.is_some() {
            self.routing_policy = f.routing_policy;
        }
        if let Some(v) = f.sweep_interval_secs {
            self.sweep_interval_secs = v;
        }
        if f.identity_secret.is_some() {
            self.identity_secret = f.identity_secret;
        }
        if let Some(v) = f.min_confidence {
            self.policy.min_confidence = v;
        }
        if let Some(v) = f.max_misses {
            self.policy.max_misses = v;
        }
        let o = f.orders;
        if o.http_url.is_some() {
            self.orders.http_url = o.http_url;
        }
        if o.http_token.is_some() {
            self.orders.http_token = o.http_token;
        }
        if o.timeout_ms.is_some() {
            self.orders.timeout_ms = o.timeout_ms;
        }
        if o.retries.is_some() {
            self.orders.retries = o.retries;
        }
        if let Some(origins) = f.cors_origins {
            self.cors_origins = origins;
        }
        self.channels = self.channels.merge(f.channels);
        self
    }

    /// Checks values that would only fail later.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let bad = |m: &str| Err(SettingsError::Invalid(m.into()));
        if self.max_body_bytes < 256 {
            return bad("max_body_bytes must be at least 256");
        }
        if self.max_attachment_bytes < 1024 {
            return bad("max_attachment_bytes must be at least 1024");
        }
        if self.max_in_flight == 0 || self.classifier_queue == 0 {
            return bad("max_in_flight and classifier_queue must be positive");
        }
        if !(0.0..=1.0).contains(&self.policy.min_confidence) {
            return bad("min_confidence must be within 0..1");
        }
        if self.policy.max_misses == 0 {
            return bad("max_misses must be at least 1");
        }
        if let Some(o) = self.cors_origins.iter().find(|o| !valid_origin(o)) {
            return Err(SettingsError::Invalid(format!(
                "cors origin {o:?} must be scheme://host[:port] without a path"
            )));
        }
        self.channels.validate()?;
        if let Some(t) = &self.admin_token
            && t.expose().len() < 16
        {
            return bad("admin_token must be at least 16 characters");
        }
        if let Some(t) = &self.identity_secret
            && t.expose().len() < 16
        {
            return bad("identity_secret must be at least 16 characters");
        }
        if let Some(u) = &self.orders.http_url
            && (!u.contains("{order_id}")
                || !(u.starts_with("http://") || u.starts_with("https://")))
        {
            return bad("orders.http_url must be an http(s) URL containing {order_id}");
        }
        Ok(())
    }
}

/// An origin as browsers send it: `http(s)://host[:port]`, no path, no trailing slash.
fn valid_origin(o: &str) -> bool {
    let rest = o
        .strip_prefix("https://")
        .or_else(|| o.strip_prefix("http://"));
    rest.is_some_and(|r| {
        !r.is_empty()
            && r.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cors_origins_come_from_the_file_and_are_checked() {
        let f: FileSettings =
            toml::from_str("cors_origins = [\"https://shop.example\", \"http://localhost:3000\"]")
                .unwrap();
        let s = Settings::default().merge_file(f);
        assert_eq!(s.cors_origins.len(), 2);
        assert!(s.validate().is_ok());
        for bad in [
            "https://shop.example/",
            "shop.example",
            "https://",
            "ftp://x",
        ] {
            let s = Settings {
                cors_origins: vec![bad.into()],
                ..Settings::default()
            };
            assert!(s.validate().is_err(), "{bad}");
        }
    }

    #[test]
    fn file_overrides_defaults_and_secrets_stay_hidden() {
        let f: FileSettings = toml::from_str(
            "listen = \"0.0.0.0:9000\"\nadmin_token = \"0123456789abcdef0\"\ndemo = false\nmin_confidence = 0.6\n[orders]\nhttp_url = \"http://x/{order_id}\"\n",
        )
        .unwrap();
        let s = Settings::default().merge_file(f);
        assert_eq!(s.listen.port(), 9000);
        assert!(s.demo_dir.is_none());
        assert_eq!(s.policy.min_confidence, 0.6);
        assert!(s.validate().is_ok());
        assert!(!format!("{s:?}").contains("0123456789abcdef0"));
        assert!(toml::from_str::<FileSettings>("nonsense = 1").is_err());
    }
}
