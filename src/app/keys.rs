//! Generated keys: the conversation-token key, the admin token when none is configured and the
//! demo identity secret. The embedded store keeps them in private files in the data directory;
//! on a shared PostgreSQL database the first instance to start stores them in the database
//! and every instance uses the same ones, so a token issued by one opens the conversation on
//! another. A generated value is also written to the data directory's file (when missing), so
//! an operator can read the admin token there.

use std::path::Path;

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;

use crate::settings::{Secret, Settings};
use crate::store::backend::Backend;

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}

fn random(len: usize) -> Vec<u8> {
    let mut raw = vec![0u8; len];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    raw
}

/// The key of conversation tokens (32 bytes).
pub async fn token_key(backend: &Backend, dir: &Path) -> anyhow::Result<Vec<u8>> {
    let path = dir.join("token.key");
    let candidate = if path.exists() {
        std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?
    } else {
        random(32)
    };
    let encoded = URL_SAFE_NO_PAD.encode(&candidate);
    match backend.shared_secret("token-key", &encoded).await? {
        Some(shared) => URL_SAFE_NO_PAD
            .decode(shared.trim())
            .context("the shared token key in the database is not base64"),
        None => {
            if !path.exists() {
                std::fs::create_dir_all(dir)?;
                write_private(&path, &candidate)?;
            }
            Ok(candidate)
        }
    }
}

/// The admin token when none is configured: generated once (`data_dir/admin-token`).
pub async fn admin_token(backend: &Backend, dir: &Path) -> anyhow::Result<Secret> {
    secret(backend, &dir.join("admin-token"), "admin-token").await
}

/// The identity secret: the configured one; in demo mode without one, a generated secret
/// (`data_dir/identity-secret`; the demo page and `switchboard sign-customer` use it);
/// otherwise none, and every shopper is anonymous.
pub async fn identity_secret(
    backend: &Backend,
    settings: &Settings,
) -> anyhow::Result<Option<Secret>> {
    if let Some(s) = &settings.identity_secret {
        return Ok(Some(s.clone()));
    }
    let path = settings.data_dir.join("identity-secret");
    if settings.demo_dir.is_none() && !path.exists() {
        return Ok(None);
    }
    secret(backend, &path, "identity-secret").await.map(Some)
}

/// A random URL-safe secret: the shared one on a shared database, else the file's, generated
/// on first use; written to `path` when the file is missing.
async fn secret(backend: &Backend, path: &Path, name: &str) -> anyhow::Result<Secret> {
    let from_file = if path.exists() {
        let s =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Some(s.trim().to_string())
    } else {
        None
    };
    let candidate = from_file
        .clone()
        .unwrap_or_else(|| URL_SAFE_NO_PAD.encode(random(24)));
    let value = backend
        .shared_secret(name, &candidate)
        .await?
        .unwrap_or(candidate);
    if from_file.is_none() {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        write_private(path, value.as_bytes())?;
        tracing::info!(path = %path.display(), "generated a secret (not logged; read it from the file)");
    } else if from_file.as_deref() != Some(value.as_str()) {
        tracing::warn!(path = %path.display(), "this file differs from the shared database's {name}; the database's is used");
    }
    Ok(Secret::new(value))
}
