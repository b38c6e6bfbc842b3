//! Understand: the multilingual intent classifier.
//!
//! A pretrained sentence encoder ([`encoder`]) and sparse lexical features ([`features`]) feed a
//! trained linear head ([`head`]); [`calibration`] turns its logits into calibrated confidence
//! and an out-of-scope decision; [`model`] bundles them into a versioned artefact on disk;
//! [`train`] and [`eval`] are the offline pipelines; [`service`] runs inference on a dedicated
//! thread behind the [`IntentClassifier`] trait, which is all the rest of the program sees.

pub mod bert_q8;
pub mod cache;
pub mod calibration;
pub mod data;
pub mod encoder;
pub mod eval;
pub mod features;
pub mod head;
pub mod kernels;
pub mod model;
pub mod progress;
pub mod service;
pub mod train;
pub mod vocab;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The label the classifier answers when a message belongs to no known intent.
pub const OUT_OF_SCOPE: &str = "out_of_scope";

/// One alternative intent with its calibrated probability.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alternative {
    pub intent: String,
    pub confidence: f32,
}

/// What the classifier says about one message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Classification {
    /// The predicted intent, or [`OUT_OF_SCOPE`].
    pub intent: String,
    /// Calibrated probability of the top in-scope intent.
    pub confidence: f32,
    /// True when the message belongs to no known intent.
    pub out_of_scope: bool,
    /// The in-scope score the out-of-scope rule compared with its threshold.
    pub scope_score: f32,
    /// The best intents, most likely first (the top one included).
    pub alternatives: Vec<Alternative>,
    /// The message's sentence embedding, for retrieval (never serialised).
    #[serde(skip)]
    pub embedding: Vec<f32>,
}

/// Whether the classifier can answer.
#[derive(Debug, Clone, Serialize)]
pub struct Health {
    pub ready: bool,
    pub encoder: String,
    pub head_version: String,
    pub intents: usize,
}

/// The classifier as the service sees it: batched, async, never panicking on input.
#[async_trait::async_trait]
pub trait IntentClassifier: Send + Sync {
    /// Classifies a batch of messages; the answer has one entry per message, in order.
    async fn classify(&self, texts: Vec<String>) -> Result<Vec<Classification>, NluError>;
    /// Readiness and identity of the loaded model.
    fn health(&self) -> Health;
    /// Embeds knowledge-base passages with the encoder's document prompt (multilingual-e5:
    /// `passage: `), comparable with [`Classification::embedding`] of a query. Classifiers
    /// without an encoder of their own may refuse.
    async fn embed_passages(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, NluError> {
        let _ = texts;
        Err(NluError::Inference(
            "this classifier cannot embed passages".into(),
        ))
    }
    /// Identifies the vector space of [`IntentClassifier::embed_passages`], so that cached
    /// passage vectors are reused only with the same encoder, precision and prompts.
    fn embedding_version(&self) -> String {
        self.health().encoder
    }
}

/// Errors of the understanding layer.
#[derive(Debug, thiserror::Error)]
pub enum NluError {
    #[error("model files in {dir} are unusable: {detail}")]
    ModelFiles { dir: PathBuf, detail: String },
    #[error("no trained head at {0}; run `switchboard train` first")]
    NoHead(PathBuf),
    #[error("trained head is unusable: {0}")]
    HeadFormat(String),
    #[error("tokenizer: {0}")]
    Tokenize(String),
    #[error("inference failed: {0}")]
    Inference(String),
    #[error("tensor: {0}")]
    Tensor(#[from] candle_core::Error),
    #[error("training: {0}")]
    Training(String),
    #[error("{0}")]
    Data(#[from] data::DataError),
    #[error("the classifier is overloaded")]
    Overloaded,
    #[error("the classifier worker stopped")]
    WorkerGone,
    #[error("io on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
