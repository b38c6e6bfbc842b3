//! The training pipeline: embed, fit the lexical vocabulary, train the head, calibrate and
//! choose the out-of-scope rule on validation data, then (when validation was carved out of
//! the training set) retrain on everything with the chosen settings.

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::cache::EmbeddingCache;
use super::calibration::{Calibration, ValItem, argmax, choose_oos_rule, fit_temperature};
use super::data::{Example, stratified_split};
use super::encoder::Encoder;
use super::features::{SparseVec, Vectorizer};
use super::head::{Head, HeadParams, Row};
use super::model::{FORMAT_VERSION, HeadArtifact, HeadMeta, neighbour_similarity};
use super::progress::Progress;
use super::{NluError, OUT_OF_SCOPE};

/// Knobs of a training run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainOptions {
    pub params: HeadParams,
    /// Share of each intent held out for calibration when no validation set is given.
    pub val_fraction: f64,
    /// In-scope validation accuracy the out-of-scope threshold may cost (0.005 = half a point).
    pub max_in_scope_loss: f32,
    /// Neighbours averaged for the similarity score.
    pub knn_k: usize,
    /// Minimum document frequency of a lexical feature.
    pub min_df: usize,
    /// Candidate regularisation strengths (`C`); the one with the best validation accuracy
    /// wins. Empty means `params.c` as given.
    pub c_grid: Vec<f64>,
    /// Where to cache training embeddings (offline evaluation); `None` always encodes.
    #[serde(skip)]
    pub embedding_cache: Option<EmbeddingCache>,
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self {
            params: HeadParams::default(),
            val_fraction: 0.15,
            max_in_scope_loss: 0.005,
            knn_k: 3,
            min_df: 2,
            c_grid: vec![3.0, 10.0, 30.0],
            embedding_cache: None,
        }
    }
}

/// What a training run measured about itself.
#[derive(Debug, Clone, Serialize)]
pub struct TrainReport {
    pub train_seconds: f64,
    pub examples: usize,
    pub intents: usize,
    pub validation_examples: usize,
    pub validation_source: String,
}

/// Texts embedded once and looked up by content.
struct EmbeddingTable {
    index: HashMap<String, usize>,
    vectors: Vec<Vec<f32>>,
}

impl EmbeddingTable {
    fn build(
        encoder: &Encoder,
        sets: &[&[Example]],
        cache: Option<&EmbeddingCache>,
        progress: Progress,
    ) -> Result<Self, NluError> {
        let unique: BTreeSet<&str> = sets
            .iter()
            .flat_map(|s| s.iter().map(|e| e.text.as_str()))
            .collect();
        let texts: Vec<&str> = unique.into_iter().collect();
        let bar = progress.bar(texts.len(), "encoding");
        let report = |n: usize| bar.set_position(n as u64);
        let vectors = match cache {
            Some(c) => c.embed(encoder, &texts, &report)?,
            None => encoder.embed(&texts, &report)?,
        };
        bar.finish_and_clear();
        let index = texts
            .iter()
            .enumerate()
            .map(|(i, t)| (t.to_string(), i))
            .collect();
        Ok(Self { index, vectors })
    }

    fn get(&self, text: &str) -> &[f32] {
        &self.vectors[self.index[text]]
    }
}

/// Trains a head for `encoder` on `train`, calibrating on `val` (or on a held-out slice).
pub fn train(
    encoder: &Encoder,
    train: &[Example],
    val: Option<&[Example]>,
    opts: &TrainOptions,
    progress: Progress,
) -> Result<(HeadArtifact, TrainReport), NluError> {
    let started = Instant::now();
    let version = content_version(train, opts);
    let (fit_set, val_set, retrain, source) = match val {
        Some(v) => (
            train.to_vec(),
            v.to_vec(),
            false,
            "given validation set".to_string(),
        ),
        None => {
            let (kept, held) = stratified_split(train, opts.val_fraction, opts.params.seed);
            let source = format!("{:.0}% of each training intent", opts.val_fraction * 100.0);
            (kept, held, true, source)
        }
    };
    let labels: Vec<String> = train
        .iter()
        .map(|e| e.intent.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let table = EmbeddingTable::build(
        encoder,
        &[train, &val_set],
        opts.embedding_cache.as_ref(),
        progress,
    )?;

    let class_of: HashMap<&str, usize> = labels
        .iter()
        .enumerate()
        .map(|(i, l)| (l.as_str(), i))
        .collect();
    // Regularisation strength: the candidate with the best validation accuracy.
    let grid = if opts.c_grid.is_empty() {
        vec![opts.params.c]
    } else {
        opts.c_grid.clone()
    };
    let mut best: Option<(f64, f64, Vectorizer, Head)> = None;
    for &c in &grid {
        let candidate = TrainOptions {
            params: HeadParams {
                c,
                ..opts.params.clone()
            },
            ..opts.clone()
        };
        let (v, h) = fit_head(&table, &fit_set, &labels, &candidate, progress)?;
        let correct = val_set
            .iter()
            .filter(|e| {
                let logits = h.logits(table.get(&e.text), &v.transform(&e.text));
                class_of.get(e.intent.as_str()) == Some(&argmax(&logits).0)
            })
            .count();
        let acc = correct as f64 / val_set.len().max(1) as f64;
        tracing::debug!(c, acc, "validation accuracy");
        if best.as_ref().is_none_or(|b| acc > b.0) {
            best = Some((acc, c, v, h));
        }
    }
    let (_, c, vectorizer, head) = best.expect("the grid has at least one candidate");
    let chosen = TrainOptions {
        params: HeadParams {
            c,
            ..opts.params.clone()
        },
        ..opts.clone()
    };
    let opts = &chosen;
    let neighbours = in_scope_embeddings(&table, &fit_set);
    let items: Vec<ValItem> = val_set
        .iter()
        .map(|e| {
            let emb = table.get(&e.text);
            let sparse = vectorizer.transform(&e.text);
            let gold = class_of.get(e.intent.as_str()).copied();
            ValItem {
                logits: head.logits(emb, &sparse),
                similarity: neighbour_similarity(&neighbours, emb, opts.knn_k),
                gold,
            }
        })
        .collect();
    let temperature = fit_temperature(&items);
    let oos_class = labels.iter().position(|l| l == OUT_OF_SCOPE);
    if let Some(path) = std::env::var_os("SWITCHBOARD_DUMP_VALIDATION") {
        dump_validation(std::path::Path::new(&path), &items, temperature, oos_class);
    }
    let oos = choose_oos_rule(&items, temperature, oos_class, opts.max_in_scope_loss);

    let (vectorizer, head, neighbours) = if retrain {
        let (v, h) = fit_head(&table, train, &labels, opts, progress)?;
        (v, h, in_scope_embeddings(&table, train))
    } else {
        (vectorizer, head, neighbours)
    };
    let meta = HeadMeta {
        format_version: FORMAT_VERSION,
        version,
        encoder: encoder.name().to_string(),
        labels: labels.clone(),
        calibration: Calibration { temperature, oos },
        params: opts.params.clone(),
        knn_k: opts.knn_k,
        trained_at: chrono::Utc::now().to_rfc3339(),
        train_examples: train.len(),
        vectorizer,
    };
    let report = TrainReport {
        train_seconds: started.elapsed().as_secs_f64(),
        examples: train.len(),
        intents: labels.len(),
        validation_examples: val_set.len(),
        validation_source: source,
    };
    Ok((
        HeadArtifact {
            meta,
            head,
            neighbours,
        },
        report,
    ))
}

fn fit_head(
    table: &EmbeddingTable,
    set: &[Example],
    labels: &[String],
    opts: &TrainOptions,
    progress: Progress,
) -> Result<(Vectorizer, Head), NluError> {
    let texts: Vec<&str> = set.iter().map(|e| e.text.as_str()).collect();
    let vectorizer = Vectorizer::fit(&texts, opts.min_df);
    let sparse: Vec<SparseVec> = texts.iter().map(|t| vectorizer.transform(t)).collect();
    let class_of: HashMap<&str, u32> = labels
        .iter()
        .enumerate()
        .map(|(i, l)| (l.as_str(), i as u32))
        .collect();
    let rows: Vec<Row> = set
        .iter()
        .zip(&sparse)
        .map(|(e, s)| Row {
            dense: table.get(&e.text),
            sparse: s,
        })
        .collect();
    let y: Vec<u32> = set.iter().map(|e| class_of[e.intent.as_str()]).collect();
    let bar = progress.bar(opts.params.epochs, "training");
    let head = Head::train(
        &rows,
        &y,
        labels.len(),
        vectorizer.len(),
        &opts.params,
        &|n| bar.set_position(n as u64),
    )?;
    bar.finish_and_clear();
    Ok((vectorizer, head))
}

/// Writes the validation scores as JSON lines, for studying out-of-scope rules offline.
fn dump_validation(
    path: &std::path::Path,
    items: &[ValItem],
    temperature: f32,
    oos_class: Option<usize>,
) {
    let lines: Vec<String> = items
        .iter()
        .map(|i| {
            serde_json::json!({"gold": i.gold, "logits": i.logits, "similarity": i.similarity,
                "temperature": temperature, "oos_class": oos_class})
            .to_string()
        })
        .collect();
    if let Err(e) = std::fs::write(path, lines.join("\n")) {
        tracing::warn!(error = %e, "could not write the validation dump");
    }
}

fn in_scope_embeddings(table: &EmbeddingTable, set: &[Example]) -> Vec<f32> {
    set.iter()
        .filter(|e| e.intent != OUT_OF_SCOPE)
        .flat_map(|e| table.get(&e.text).iter().copied())
        .collect()
}

/// The content version of a head trained on `train` with `opts`.
pub fn content_version(train: &[Example], opts: &TrainOptions) -> String {
    let mut h = Sha256::new();
    for e in train {
        h.update(e.intent.as_bytes());
        h.update([0]);
        h.update(e.text.as_bytes());
        h.update([0]);
    }
    h.update(serde_json::to_vec(opts).unwrap_or_default());
    let hex = format!("{:x}", h.finalize());
    format!("v{FORMAT_VERSION}-{}", &hex[..12])
}
