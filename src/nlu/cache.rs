//! An on-disk cache of sentence embeddings for offline work (`eval`, repeated `train`), keyed
//! by the encoder and the exact texts, so that re-running an evaluation with other head
//! settings does not re-encode thousands of messages. Lives outside the checkout
//! (`~/.cache/switchboard/embeddings`); a damaged file is recomputed, never trusted.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::NluError;
use super::encoder::Encoder;

/// A folder of cached embedding matrices.
#[derive(Debug, Clone)]
pub struct EmbeddingCache {
    dir: PathBuf,
}

impl EmbeddingCache {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// `$XDG_CACHE_HOME/switchboard/embeddings` or `~/.cache/switchboard/embeddings`.
    pub fn default_location() -> Self {
        Self::new(crate::models::cache_home().join("embeddings"))
    }

    fn key(encoder: &Encoder, texts: &[&str]) -> String {
        let mut h = Sha256::new();
        h.update(encoder.name().as_bytes());
        h.update(encoder.engine().as_bytes());
        h.update(encoder.vocabulary().as_bytes());
        let weights = encoder.dir().join("model.safetensors");
        let size = std::fs::metadata(&weights).map(|m| m.len()).unwrap_or(0);
        h.update(size.to_le_bytes());
        for t in texts {
            h.update(t.as_bytes());
            h.update([0]);
        }
        format!("{:x}", h.finalize())
    }

    /// Embeddings of `texts`, from the cache when present, else computed and stored.
    pub fn embed(
        &self,
        encoder: &Encoder,
        texts: &[&str],
        progress: &dyn Fn(usize),
    ) -> Result<Vec<Vec<f32>>, NluError> {
        let path = self.dir.join(format!("{}.f32", Self::key(encoder, texts)));
        if let Some(v) = read(&path, texts.len(), encoder.dim()) {
            progress(texts.len());
            return Ok(v);
        }
        let vectors = encoder.embed(texts, progress)?;
        if let Err(e) = write(&path, &vectors) {
            tracing::debug!(error = %e, "could not write the embedding cache");
        }
        Ok(vectors)
    }
}

fn read(path: &Path, n: usize, dim: usize) -> Option<Vec<Vec<f32>>> {
    let bytes = std::fs::read(path).ok()?;
    if bytes.len() != n * dim * 4 {
        return None;
    }
    let floats: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    Some(floats.chunks(dim.max(1)).map(<[f32]>::to_vec).collect())
}

fn write(path: &Path, vectors: &[Vec<f32>]) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let bytes: Vec<u8> = vectors
        .iter()
        .flatten()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(tmp, path)
}
