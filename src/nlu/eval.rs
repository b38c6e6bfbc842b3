//! Offline evaluation: train on one file, calibrate on another (or a slice), score a test file,
//! and time single-message classification.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use serde::Serialize;

use super::data::Example;
use super::encoder::Encoder;
use super::progress::Progress;
use super::train::{TrainOptions, train};
use super::{NluError, OUT_OF_SCOPE};

/// F1 and friends for one intent.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct IntentScore {
    pub intent: String,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: usize,
}

/// A frequent mistake.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Confusion {
    pub gold: String,
    pub predicted: String,
    pub count: usize,
}

/// Scores of predictions against gold labels.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Metrics {
    pub accuracy: f64,
    pub macro_f1: f64,
    /// Accuracy over in-scope test items (a rejection counts as wrong); only with OOS items.
    pub in_scope_accuracy: Option<f64>,
    /// Share of `out_of_scope` test items rejected; only with OOS items.
    pub oos_recall: Option<f64>,
    pub per_intent: Vec<IntentScore>,
    pub most_confused: Vec<Confusion>,
}

/// The full evaluation report (the `--json` object).
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub encoder: String,
    pub train_examples: usize,
    pub test_examples: usize,
    pub validation: String,
    #[serde(flatten)]
    pub metrics: Metrics,
    pub train_seconds: f64,
    pub latency_p50_ms: f64,
    pub latency_p99_ms: f64,
    pub temperature: f32,
    pub oos_rule: String,
}

/// Computes accuracy, macro-F1 over the gold intents, per-intent scores, the most confused
/// pairs and, when gold contains `out_of_scope`, in-scope accuracy and OOS recall.
pub fn score(gold: &[&str], predicted: &[&str]) -> Metrics {
    assert_eq!(gold.len(), predicted.len(), "one prediction per gold label");
    let n = gold.len().max(1) as f64;
    let correct = gold.iter().zip(predicted).filter(|(g, p)| g == p).count();
    let mut tp: HashMap<&str, usize> = HashMap::new();
    let mut gold_count: BTreeMap<&str, usize> = BTreeMap::new();
    let mut pred_count: HashMap<&str, usize> = HashMap::new();
    let mut confusions: HashMap<(&str, &str), usize> = HashMap::new();
    for (&g, &p) in gold.iter().zip(predicted) {
        *gold_count.entry(g).or_default() += 1;
        *pred_count.entry(p).or_default() += 1;
        if g == p {
            *tp.entry(g).or_default() += 1;
        } else {
            *confusions.entry((g, p)).or_default() += 1;
        }
    }
    let per_intent: Vec<IntentScore> = gold_count
        .iter()
        .map(|(&intent, &support)| {
            let t = tp.get(intent).copied().unwrap_or(0) as f64;
            let pc = pred_count.get(intent).copied().unwrap_or(0) as f64;
            let precision = if pc > 0.0 { t / pc } else { 0.0 };
            let recall = t / support as f64;
            let f1 = if precision + recall > 0.0 {
                2.0 * precision * recall / (precision + recall)
            } else {
                0.0
            };
            IntentScore {
                intent: intent.to_string(),
                precision,
                recall,
                f1,
                support,
            }
        })
        .collect();
    let macro_f1 = per_intent.iter().map(|s| s.f1).sum::<f64>() / per_intent.len().max(1) as f64;
    let mut most_confused: Vec<Confusion> = confusions
        .into_iter()
        .map(|((g, p), count)| Confusion {
            gold: g.into(),
            predicted: p.into(),
            count,
        })
        .collect();
    most_confused.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| (&a.gold, &a.predicted).cmp(&(&b.gold, &b.predicted)))
    });
    most_confused.truncate(10);
    let (in_scope_accuracy, oos_recall) = if gold.contains(&OUT_OF_SCOPE) {
        let (mut in_n, mut in_ok, mut oos_n, mut oos_ok) = (0usize, 0usize, 0usize, 0usize);
        for (&g, &p) in gold.iter().zip(predicted) {
            if g == OUT_OF_SCOPE {
                oos_n += 1;
                oos_ok += usize::from(p == OUT_OF_SCOPE);
            } else {
                in_n += 1;
                in_ok += usize::from(p == g);
            }
        }
        (
            Some(in_ok as f64 / in_n.max(1) as f64),
            Some(oos_ok as f64 / oos_n.max(1) as f64),
        )
    } else {
        (None, None)
    };
    Metrics {
        accuracy: correct as f64 / n,
        macro_f1,
        in_scope_accuracy,
        oos_recall,
        per_intent,
        most_confused,
    }
}

/// Trains on `train`, calibrates on `val` (or a slice of `train`), scores `test` and times
/// single-message classification on up to `latency_samples` test messages.
pub fn evaluate(
    encoder: &Encoder,
    train_set: &[Example],
    test: &[Example],
    val: Option<&[Example]>,
    opts: &TrainOptions,
    latency_samples: usize,
    progress: Progress,
) -> Result<EvalReport, NluError> {
    let (artifact, report) = train(encoder, train_set, val, opts, progress)?;
    let texts: Vec<&str> = test.iter().map(|e| e.text.as_str()).collect();
    let bar = progress.bar(texts.len(), "testing");
    let tick = |n: usize| bar.set_position(n as u64);
    let embeddings = match &opts.embedding_cache {
        Some(c) => c.embed(encoder, &texts, &tick)?,
        None => encoder.embed(&texts, &tick)?,
    };
    bar.finish_and_clear();
    let predicted: Vec<String> = texts
        .iter()
        .zip(&embeddings)
        .map(|(t, e)| artifact.classify(e, t).intent)
        .collect();
    let gold: Vec<&str> = test.iter().map(|e| e.intent.as_str()).collect();
    let pred: Vec<&str> = predicted.iter().map(String::as_str).collect();
    let metrics = score(&gold, &pred);

    // Latency: one message at a time through the whole path, after a short warm-up.
    let sample: Vec<&str> = texts.iter().copied().take(latency_samples.max(1)).collect();
    for t in sample.iter().take(5) {
        encoder.embed(&[t], &|_| {})?;
    }
    let bar = progress.bar(sample.len(), "latency");
    let mut times = Vec::with_capacity(sample.len());
    for (i, t) in sample.iter().enumerate() {
        let start = Instant::now();
        let e = encoder.embed(&[t], &|_| {})?;
        let _ = artifact.classify(&e[0], t);
        times.push(start.elapsed().as_secs_f64() * 1000.0);
        bar.set_position(i as u64 + 1);
    }
    bar.finish_and_clear();
    times.sort_by(f64::total_cmp);
    Ok(EvalReport {
        encoder: encoder.name().to_string(),
        train_examples: train_set.len(),
        test_examples: test.len(),
        validation: report.validation_source,
        metrics,
        train_seconds: report.train_seconds,
        latency_p50_ms: percentile(&times, 0.50),
        latency_p99_ms: percentile(&times, 0.99),
        temperature: artifact.meta.calibration.temperature,
        oos_rule: format!(
            "score = {:.1}·p_max + {:.1}·knn_similarity < {:.4} ({})",
            artifact.meta.calibration.oos.prob_weight,
            1.0 - artifact.meta.calibration.oos.prob_weight,
            artifact.meta.calibration.oos.threshold,
            artifact.meta.calibration.oos.chosen_by
        ),
    })
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_a_small_case_by_hand() {
        let gold = ["a", "a", "b", "out_of_scope", "out_of_scope"];
        let pred = ["a", "b", "b", "out_of_scope", "a"];
        let m = score(&gold, &pred);
        assert!((m.accuracy - 0.6).abs() < 1e-9);
        assert_eq!(m.in_scope_accuracy, Some(2.0 / 3.0));
        assert_eq!(m.oos_recall, Some(0.5));
        let a = m.per_intent.iter().find(|s| s.intent == "a").unwrap();
        assert!((a.precision - 0.5).abs() < 1e-9 && (a.recall - 0.5).abs() < 1e-9);
        assert_eq!(m.most_confused[0].count, 1);
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile(&v, 0.5), 2.0);
        assert_eq!(percentile(&v, 0.99), 4.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }
}
