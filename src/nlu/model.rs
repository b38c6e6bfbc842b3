//! The trained classifier as an artefact: the head, its vocabulary, calibration, label map and
//! neighbour set, saved beside the encoder under `models/<encoder>/heads/<name>/` as
//! `head.json` + `head.safetensors`, versioned and loadable without retraining.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::calibration::{Calibration, argmax};
use super::encoder::Encoder;
use super::features::Vectorizer;
use super::head::{Head, HeadParams, softmax};
use super::{Alternative, Classification, NluError, OUT_OF_SCOPE};

/// Bumped when the on-disk layout changes.
pub const FORMAT_VERSION: u32 = 1;
/// Alternatives reported per message.
pub const TOP_K: usize = 3;

/// Everything about a head that is not a big matrix.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HeadMeta {
    pub format_version: u32,
    /// Content version: a hash of the training data and parameters.
    pub version: String,
    pub encoder: String,
    pub labels: Vec<String>,
    pub calibration: Calibration,
    pub params: HeadParams,
    pub knn_k: usize,
    pub trained_at: String,
    pub train_examples: usize,
    pub vectorizer: Vectorizer,
}

/// A trained head with everything needed to classify an embedded message.
pub struct HeadArtifact {
    pub meta: HeadMeta,
    pub head: Head,
    /// In-scope training embeddings, row-major `n × dim`, for neighbour similarity.
    pub neighbours: Vec<f32>,
}

impl HeadArtifact {
    /// Index of the `out_of_scope` class, when the head was trained with one.
    pub fn oos_class(&self) -> Option<usize> {
        self.meta.labels.iter().position(|l| l == OUT_OF_SCOPE)
    }

    /// Mean similarity of `embedding` to its `knn_k` nearest training messages.
    pub fn similarity(&self, embedding: &[f32]) -> f32 {
        neighbour_similarity(&self.neighbours, embedding, self.meta.knn_k)
    }

    /// Classifies one message given its embedding and text.
    pub fn classify(&self, embedding: &[f32], text: &str) -> Classification {
        self.classify_with(embedding, text, self.similarity(embedding))
    }

    /// Classifies one message given its embedding, text and neighbour similarity.
    fn classify_with(&self, embedding: &[f32], text: &str, similarity: f32) -> Classification {
        let sparse = self.meta.vectorizer.transform(text);
        let logits = self.head.logits(embedding, &sparse);
        let probs = softmax(&logits, self.meta.calibration.temperature);
        let oos_class = self.oos_class();
        let mut ranked: Vec<(usize, f32)> = probs
            .iter()
            .copied()
            .enumerate()
            .filter(|(c, _)| Some(*c) != oos_class)
            .collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let (top, p_top) = ranked.first().copied().unwrap_or((0, 0.0));
        let rule = &self.meta.calibration.oos;
        let scope_score = rule.score(p_top, similarity);
        let out_of_scope = Some(argmax(&probs).0) == oos_class || scope_score < rule.threshold;
        let alternatives = ranked
            .iter()
            .take(TOP_K)
            .map(|&(c, p)| Alternative {
                intent: self.meta.labels[c].clone(),
                confidence: p,
            })
            .collect();
        Classification {
            intent: if out_of_scope {
                OUT_OF_SCOPE.into()
            } else {
                self.meta.labels[top].clone()
            },
            confidence: p_top,
            out_of_scope,
            scope_score,
            alternatives,
            embedding: embedding.to_vec(),
        }
    }

    /// Writes the artefact into `dir` atomically (a temporary folder renamed into place).
    pub fn save(&self, dir: &Path) -> Result<(), NluError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| NluError::Io { path, source }
        };
        let parent = dir.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent).map_err(io(parent))?;
        let tmp = parent.join(format!(
            ".{}.tmp",
            dir.file_name()
                .map_or("head".into(), |n| n.to_string_lossy())
        ));
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
        }
        std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
        let json =
            serde_json::to_vec(&self.meta).map_err(|e| NluError::HeadFormat(e.to_string()))?;
        std::fs::write(tmp.join("head.json"), json).map_err(io(&tmp))?;
        let mut tensors: HashMap<String, Tensor> = self.head.to_tensors()?.into_iter().collect();
        let dim = self.head.dim;
        let n = self.neighbours.len() / dim.max(1);
        tensors.insert(
            "knn.embeddings".into(),
            Tensor::from_slice(&self.neighbours, (n, dim), &Device::Cpu)?,
        );
        candle_core::safetensors::save(&tensors, tmp.join("head.safetensors"))?;
        // Move the old version aside first: a rename onto a non-empty directory fails.
        if dir.exists() {
            let old = tmp.with_extension("old");
            std::fs::rename(dir, &old).map_err(io(dir))?;
            let _ = std::fs::remove_dir_all(&old);
        }
        std::fs::rename(&tmp, dir).map_err(io(dir))?;
        Ok(())
    }

    /// Loads an artefact written by [`HeadArtifact::save`].
    pub fn load(dir: &Path) -> Result<Self, NluError> {
        let json_path = dir.join("head.json");
        if !json_path.is_file() {
            return Err(NluError::NoHead(dir.to_path_buf()));
        }
        let bytes = std::fs::read(&json_path).map_err(|source| NluError::Io {
            path: json_path.clone(),
            source,
        })?;
        let mut meta: HeadMeta =
            serde_json::from_slice(&bytes).map_err(|e| NluError::HeadFormat(e.to_string()))?;
        if meta.format_version != FORMAT_VERSION {
            return Err(NluError::HeadFormat(format!(
                "format version {} (this build reads {FORMAT_VERSION}); retrain",
                meta.format_version
            )));
        }
        meta.vectorizer.rebuild_index();
        let tensors = candle_core::safetensors::load(dir.join("head.safetensors"), &Device::Cpu)?;
        let head = Head::from_tensors(&tensors)?;
        if head.classes != meta.labels.len() {
            return Err(NluError::HeadFormat(
                "label map does not match the head".into(),
            ));
        }
        let neighbours = tensors
            .get("knn.embeddings")
            .ok_or_else(|| NluError::HeadFormat("missing knn.embeddings".into()))?
            .flatten_all()?
            .to_vec1()?;
        Ok(Self {
            meta,
            head,
            neighbours,
        })
    }
}

/// Mean of the `k` largest dot products between `query` and the rows of `rows`.
pub fn neighbour_similarity(rows: &[f32], query: &[f32], k: usize) -> f32 {
    let dim = query.len();
    if dim == 0 || rows.is_empty() {
        return 0.0;
    }
    // One matrix-vector product over all stored examples, then the k best.
    let mut scores = vec![0f32; rows.len() / dim];
    super::kernels::dot_rows(&rows[..scores.len() * dim], query, &mut scores);
    mean_of_top(&scores, k)
}

/// Mean of the `k` largest scores (all of them when fewer).
fn mean_of_top(scores: &[f32], k: usize) -> f32 {
    let k = k.max(1);
    let mut top: Vec<f32> = Vec::with_capacity(k + 1);
    for &s in scores {
        if top.len() < k || s > top[top.len() - 1] {
            let pos = top.partition_point(|&x| x >= s);
            top.insert(pos, s);
            top.truncate(k);
        }
    }
    if top.is_empty() {
        return 0.0;
    }
    top.iter().sum::<f32>() / top.len() as f32
}

/// The default place of a head: `models/<encoder>/heads/<name>`.
pub fn head_dir(encoder_dir: &Path, name: &str) -> PathBuf {
    encoder_dir.join("heads").join(name)
}

/// An encoder with a trained head: the complete classifier.
pub struct IntentModel {
    pub encoder: Encoder,
    pub artifact: HeadArtifact,
}

impl IntentModel {
    /// Loads the encoder and the named head beside it.
    pub fn load(encoder_dir: &Path, head: &str) -> Result<Self, NluError> {
        let artifact = HeadArtifact::load(&head_dir(encoder_dir, head))?;
        let encoder = Encoder::load(encoder_dir)?;
        if artifact.head.dim != encoder.dim() {
            return Err(NluError::HeadFormat(format!(
                "head expects {}-wide embeddings, encoder gives {}",
                artifact.head.dim,
                encoder.dim()
            )));
        }
        Ok(Self { encoder, artifact })
    }

    /// Classifies a batch of messages in one forward pass.
    pub fn classify_batch(&self, texts: &[&str]) -> Result<Vec<Classification>, NluError> {
        let embeddings = self.encoder.embed(texts, &|_| {})?;
        if texts.len() < 2 {
            return Ok(texts
                .iter()
                .zip(&embeddings)
                .map(|(t, e)| self.artifact.classify(e, t))
                .collect());
        }
        // Neighbour scores of the whole batch in one pass over the stored examples (each row
        // read once for all messages), then the head's share on every thread.
        use rayon::prelude::*;
        let dim = self.encoder.dim();
        let neighbours = &self.artifact.neighbours;
        let n = neighbours.len() / dim.max(1);
        let queries: Vec<f32> = embeddings.iter().flatten().copied().collect();
        let mut scores = vec![0f32; texts.len() * n];
        if n > 0 && queries.len() == texts.len() * dim {
            super::kernels::dot_rows_batch(&neighbours[..n * dim], &queries, dim, &mut scores);
        }
        let k = self.artifact.meta.knn_k;
        Ok(texts
            .par_iter()
            .zip(embeddings.par_iter())
            .zip(scores.par_chunks(n.max(1)))
            .map(|((t, e), s)| {
                let similarity = if n == 0 { 0.0 } else { mean_of_top(s, k) };
                self.artifact.classify_with(e, t, similarity)
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::{mean_of_top, neighbour_similarity};

    #[test]
    fn neighbour_similarity_averages_the_best_k() {
        let rows = [1.0, 0.0, 0.0, 1.0, 0.6, 0.8];
        assert!((neighbour_similarity(&rows, &[1.0, 0.0], 1) - 1.0).abs() < 1e-6);
        assert!((neighbour_similarity(&rows, &[1.0, 0.0], 2) - 0.8).abs() < 1e-6);
        assert_eq!(neighbour_similarity(&[], &[1.0, 0.0], 2), 0.0);
        assert!((mean_of_top(&[0.1, 0.9, 0.5, 0.7], 2) - 0.8).abs() < 1e-6);
    }
}
