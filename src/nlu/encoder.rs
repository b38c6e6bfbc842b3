//! The pretrained sentence encoder: a BERT-family transformer (our int8 engine in
//! [`super::bert_q8`], or candle's f32 BERT as the reference), tokenised with `tokenizers`,
//! mean-pooled over the attention mask and L2-normalised, as sentence-transformers does for
//! MiniLM and E5. No candle or tokenizers type leaves this module.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use super::NluError;
use super::bert_q8::QBert;

/// Longest input in tokens, as sentence-transformers' `max_seq_length` for these models.
const MAX_TOKENS: usize = 256;
/// Characters kept from one message before tokenising: more cannot reach the model anyway
/// (256 tokens), and this bounds tokenizer time on hostile 100 KB inputs.
const MAX_CHARS: usize = 2048;
/// Messages per forward pass when encoding many texts.
const CHUNK: usize = 64;

/// Numeric precision of the encoder's linear layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// candle-transformers' BERT in f32, as published.
    F32,
    /// 8-bit linear layers on our own kernels ([`super::bert_q8`]): about 10× faster than f32
    /// on CPU, embeddings at cosine ≥ 0.995 to it.
    Q8,
}

impl Precision {
    /// From `SWITCHBOARD_PRECISION` (`f32` or `q8`, default `q8`).
    pub fn from_env() -> Self {
        match std::env::var("SWITCHBOARD_PRECISION").as_deref() {
            Ok("f32") => Self::F32,
            _ => Self::Q8,
        }
    }
}

enum Model {
    F32(BertModel),
    Q8(QBert),
}

/// A loaded sentence encoder.
pub struct Encoder {
    model: Model,
    precision: Precision,
    tokenizer: Tokenizer,
    /// With a pruned vocabulary ([`super::vocab`]): each token id's id in the model.
    original_ids: Option<Vec<u32>>,
    prefix: String,
    /// Prompt for documents in asymmetric retrieval (E5: `passage: `); queries use `prefix`.
    passage_prefix: String,
    device: Device,
    dim: usize,
    name: String,
    dir: PathBuf,
}

#[derive(serde::Deserialize)]
struct SentenceTransformersConfig {
    #[serde(default)]
    prompts: std::collections::HashMap<String, String>,
    default_prompt_name: Option<String>,
}

impl Encoder {
    /// Loads a standard Hugging Face model directory at the precision `SWITCHBOARD_PRECISION`
    /// names.
    pub fn load(dir: &Path) -> Result<Self, NluError> {
        Self::load_with(dir, Precision::from_env())
    }

    /// Loads a model directory at the given precision, with the served vocabulary unless
    /// `SWITCHBOARD_VOCAB=full`.
    pub fn load_with(dir: &Path, precision: Precision) -> Result<Self, NluError> {
        Self::load_vocabulary(dir, precision, super::vocab::enabled())
    }

    /// Loads a model directory at the given precision, with the vocabulary pruned to the
    /// served languages ([`super::vocab`]) or whole.
    pub fn load_vocabulary(
        dir: &Path,
        precision: Precision,
        prune: bool,
    ) -> Result<Self, NluError> {
        let read = |f: &str| {
            std::fs::read(dir.join(f)).map_err(|e| NluError::ModelFiles {
                dir: dir.to_path_buf(),
                detail: format!("{f}: {e}"),
            })
        };
        let config: Config =
            serde_json::from_slice(&read("config.json")?).map_err(|e| NluError::ModelFiles {
                dir: dir.to_path_buf(),
                detail: format!("config.json: {e}"),
            })?;
        let mut definition = read("tokenizer.json")?;
        let mut original_ids = None;
        if prune {
            let pruned = super::vocab::prune(&definition, super::vocab::served).map_err(|e| {
                NluError::ModelFiles {
                    dir: dir.to_path_buf(),
                    detail: format!("tokenizer.json: {e}"),
                }
            })?;
            if let Some(p) = pruned {
                definition = p.json;
                original_ids = Some(p.original);
            }
        }
        let mut tokenizer =
            Tokenizer::from_bytes(definition).map_err(|e| NluError::ModelFiles {
                dir: dir.to_path_buf(),
                detail: format!("tokenizer.json: {e}"),
            })?;
        // The shipped tokenizers pad to a fixed length (MiniLM: 128) or not at all; pad to the
        // longest message in the batch instead and truncate where the model was trained.
        let pad_id = match &original_ids {
            Some(ids) => ids
                .binary_search(&(config.pad_token_id as u32))
                .map_or(0, |i| i as u32),
            None => config.pad_token_id as u32,
        };
        let pad_token = tokenizer
            .id_to_token(pad_id)
            .unwrap_or_else(|| "[PAD]".into());
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            pad_id,
            pad_token,
            ..Default::default()
        }));
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS.min(config.max_position_embeddings),
                ..Default::default()
            }))
            .map_err(|e| NluError::ModelFiles {
                dir: dir.to_path_buf(),
                detail: format!("truncation: {e}"),
            })?;
        let st_config = std::fs::read(dir.join("config_sentence_transformers.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<SentenceTransformersConfig>(&b).ok());
        let prefix = st_config
            .as_ref()
            .and_then(|c| c.prompts.get(c.default_prompt_name.as_ref()?).cloned())
            .unwrap_or_default();
        let passage_prefix = st_config
            .as_ref()
            .and_then(|c| c.prompts.get("passage").cloned())
            .unwrap_or_else(|| prefix.clone());
        let device = Device::Cpu;
        let weights = dir.join("model.safetensors");
        let model = match precision {
            Precision::F32 => {
                // mmaped loading needs `unsafe`, which this module does not use; read the file.
                let bytes = std::fs::read(&weights).map_err(|e| NluError::ModelFiles {
                    dir: dir.to_path_buf(),
                    detail: format!("model.safetensors: {e}"),
                })?;
                let vb = VarBuilder::from_buffered_safetensors(bytes, DType::F32, &device)?;
                Model::F32(BertModel::load(vb, &config)?)
            }
            Precision::Q8 => Model::Q8(QBert::load(&weights, &config, original_ids.as_deref())?),
        };
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "encoder".into());
        Ok(Self {
            model,
            precision,
            tokenizer,
            original_ids,
            prefix,
            passage_prefix,
            device,
            dim: config.hidden_size,
            name,
            dir: dir.to_path_buf(),
        })
    }

    /// The precision the encoder runs at.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// Which implementation computes the embeddings, for cache keys: a change of engine or of
    /// its numerics changes the embeddings.
    pub fn engine(&self) -> &'static str {
        match self.model {
            Model::F32(_) => "F32",
            Model::Q8(_) => QBert::ENGINE,
        }
    }

    /// The vocabulary the tokenizer produces: [`super::vocab::RULE`] when pruned, else `full`
    /// (for cache keys: text with letters of other scripts embeds differently).
    pub fn vocabulary(&self) -> &'static str {
        if self.original_ids.is_some() {
            super::vocab::RULE
        } else {
            "full"
        }
    }

    /// Token ids of a text as the model numbers them (with the prompt prefix and special
    /// tokens), for tests and diagnostics.
    pub fn token_ids(&self, text: &str) -> Result<Vec<u32>, NluError> {
        let encoding = self
            .tokenizer
            .encode(format!("{}{}", self.prefix, clip(text)), true)
            .map_err(|e| NluError::Tokenize(e.to_string()))?;
        Ok(encoding
            .get_ids()
            .iter()
            .map(|&id| self.model_id(id))
            .collect())
    }

    fn model_id(&self, id: u32) -> u32 {
        match &self.original_ids {
            Some(ids) => ids.get(id as usize).copied().unwrap_or(id),
            None => id,
        }
    }

    /// Width of the sentence embedding.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The model directory's name, e.g. `multilingual-e5-small`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The model directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Embeds texts into L2-normalised vectors (row-major, `texts.len() × dim`). Texts are
    /// grouped by length so that padding stays small; `progress` is told how many are done.
    pub fn embed(
        &self,
        texts: &[&str],
        progress: &dyn Fn(usize),
    ) -> Result<Vec<Vec<f32>>, NluError> {
        self.embed_prompted(texts, &self.prefix, progress)
    }

    /// Embeds documents for retrieval with the model's passage prompt (E5: `passage: `), the
    /// counterpart of the query prompt [`Encoder::embed`] uses.
    pub fn embed_passages(
        &self,
        texts: &[&str],
        progress: &dyn Fn(usize),
    ) -> Result<Vec<Vec<f32>>, NluError> {
        self.embed_prompted(texts, &self.passage_prefix, progress)
    }

    /// Identifies the vectors this encoder produces: name, precision, weights and prompts.
    pub fn version(&self) -> String {
        let size = std::fs::metadata(self.dir.join("model.safetensors")).map_or(0, |m| m.len());
        format!(
            "{}:{:?}:{size}:{}|{}",
            self.name, self.precision, self.prefix, self.passage_prefix
        )
    }

    fn embed_prompted(
        &self,
        texts: &[&str],
        prefix: &str,
        progress: &dyn Fn(usize),
    ) -> Result<Vec<Vec<f32>>, NluError> {
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| texts[i].len());
        let mut out = vec![Vec::new(); texts.len()];
        let mut done = 0;
        for chunk in order.chunks(CHUNK) {
            let batch: Vec<&str> = chunk.iter().map(|&i| texts[i]).collect();
            let vectors = self.embed_batch(&batch, prefix)?;
            for (&i, v) in chunk.iter().zip(vectors) {
                out[i] = v;
            }
            done += chunk.len();
            progress(done);
        }
        Ok(out)
    }

    /// One forward pass over a batch.
    fn embed_batch(&self, texts: &[&str], prefix: &str) -> Result<Vec<Vec<f32>>, NluError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let inputs: Vec<String> = texts
            .iter()
            .map(|t| format!("{prefix}{}", clip(t)))
            .collect();
        let encodings = self
            .tokenizer
            .encode_batch(inputs, true)
            .map_err(|e| NluError::Tokenize(e.to_string()))?;
        let model = match &self.model {
            Model::Q8(m) => {
                // Padding is on the right; the int8 encoder takes each message at its own
                // length.
                let seqs: Vec<&[u32]> = encodings
                    .iter()
                    .map(|e| {
                        let real = e.get_attention_mask().iter().filter(|&&a| a == 1).count();
                        &e.get_ids()[..real]
                    })
                    .collect();
                return Ok(m.embed(&seqs));
            }
            Model::F32(m) => m,
        };
        let len = encodings.first().map_or(0, |e| e.get_ids().len());
        let n = encodings.len();
        let mut ids = Vec::with_capacity(n * len);
        let mut mask = Vec::with_capacity(n * len);
        for e in &encodings {
            ids.extend(e.get_ids().iter().map(|&id| self.model_id(id)));
            mask.extend_from_slice(e.get_attention_mask());
        }
        self.device.with_context(|| {
            let ids = Tensor::from_vec(ids, (n, len), &self.device)?;
            let mask = Tensor::from_vec(mask, (n, len), &self.device)?;
            let hidden = model.forward(&ids, &ids.zeros_like()?, Some(&mask))?;
            let maskf = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
            let summed = hidden.broadcast_mul(&maskf)?.sum(1)?;
            let counts = maskf.sum(1)?.clamp(1.0, f64::MAX)?;
            let mean = summed.broadcast_div(&counts)?;
            let norm = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
            let normalized = mean.broadcast_div(&norm)?;
            Ok(normalized.to_vec2::<f32>()?)
        })
    }
}

/// Cuts a message to at most `MAX_CHARS` characters on a character boundary.
fn clip(text: &str) -> &str {
    match text.char_indices().nth(MAX_CHARS) {
        Some((i, _)) => &text[..i],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::clip;

    #[test]
    fn clip_respects_char_boundaries() {
        let s = "退".repeat(5000);
        assert_eq!(clip(&s).chars().count(), super::MAX_CHARS);
        assert_eq!(clip("short"), "short");
    }
}
