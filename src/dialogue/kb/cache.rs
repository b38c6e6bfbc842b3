//! Passage embeddings on disk, one file per article, keyed by the encoder's version and a
//! hash of the article's passage texts: a start with an unchanged knowledge base embeds
//! nothing, and an edited article is the only one embedded again. Lives outside the checkout
//! (`~/.cache/switchboard/kb-passages`); a damaged file is recomputed, never trusted.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// A folder of cached passage vectors.
#[derive(Debug, Clone)]
pub struct PassageCache {
    dir: PathBuf,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl PassageCache {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// `$XDG_CACHE_HOME/switchboard/kb-passages` or `~/.cache/switchboard/kb-passages`.
    pub fn default_location() -> Self {
        Self::new(crate::models::cache_home().join("kb-passages"))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file for one article's passages under one encoder version.
    pub fn path(&self, model_version: &str, texts: &[String]) -> PathBuf {
        let model = hex(&Sha256::digest(model_version.as_bytes())[..8]);
        let mut h = Sha256::new();
        for t in texts {
            h.update(t.as_bytes());
            h.update([0]);
        }
        self.dir
            .join(model)
            .join(format!("{}.f32", hex(&h.finalize()[..16])))
    }

    /// The cached vectors, when the file exists and holds `count` vectors.
    pub fn load(&self, path: &Path, count: usize) -> Option<Vec<Vec<f32>>> {
        let bytes = std::fs::read(path).ok()?;
        let floats: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        if count == 0 || !bytes.len().is_multiple_of(4) || !floats.len().is_multiple_of(count) {
            return None;
        }
        let dim = floats.len() / count;
        let vectors: Vec<Vec<f32>> = floats.chunks(dim).map(<[f32]>::to_vec).collect();
        // Stored vectors are unit length; anything else is damage.
        vectors
            .iter()
            .all(|v| (v.iter().map(|x| x * x).sum::<f32>() - 1.0).abs() < 1e-3)
            .then_some(vectors)
    }

    /// Stores vectors atomically (write a temporary file, then rename), so that concurrent
    /// starts never read half a file. Failure only costs a recomputation next time.
    pub fn store(&self, path: &Path, vectors: &[Vec<f32>]) {
        let write = || -> std::io::Result<()> {
            let parent = path.parent().unwrap_or(Path::new("."));
            std::fs::create_dir_all(parent)?;
            let bytes: Vec<u8> = vectors
                .iter()
                .flatten()
                .flat_map(|x| x.to_le_bytes())
                .collect();
            let tmp = path.with_extension(format!("tmp{}", std::process::id()));
            std::fs::write(&tmp, bytes)?;
            std::fs::rename(&tmp, path)
        };
        if let Err(e) = write() {
            tracing::warn!(error = %e, path = %path.display(), "cannot cache passage embeddings");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_damage() {
        let dir = tempfile::tempdir().unwrap();
        let cache = PassageCache::new(dir.path().to_path_buf());
        let texts = vec!["a".to_string(), "b".to_string()];
        let path = cache.path("e5:Q8", &texts);
        assert_ne!(path, cache.path("e5:F32", &texts));
        assert_ne!(path, cache.path("e5:Q8", &texts[..1]));
        assert!(cache.load(&path, 2).is_none());
        let v = vec![vec![0.6, 0.8], vec![1.0, 0.0]];
        cache.store(&path, &v);
        assert_eq!(cache.load(&path, 2), Some(v));
        assert!(cache.load(&path, 3).is_none());
        std::fs::write(&path, [0u8; 16]).unwrap();
        assert!(cache.load(&path, 2).is_none());
    }
}
