//! Measures passage retrieval on the project's own questions (`kb/eval.jsonl`): each names the
//! article and passage that answers it, or none for a question the knowledge base cannot
//! answer, and belongs to the `val` or the `test` half. The calibration and the answer bar are
//! fitted on `val` only; `test` reports top-1/top-3 passage accuracy, MRR, and the bar's
//! precision and recall.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::KbError;
use super::retrieval::{KnowledgeBase, Query};
use crate::domain::Lang;
use crate::nlu::Classification;

/// One evaluation question.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EvalQuestion {
    pub q: String,
    pub lang: Lang,
    /// The answering article's id; absent for a question the KB cannot answer.
    #[serde(default)]
    pub article: Option<String>,
    /// The answering passage (number, heading or a piece of its text).
    #[serde(default)]
    pub passage: Option<String>,
    /// `val` or `test`.
    pub split: String,
    /// What the question exercises (paraphrase, typo, colloquial, middle…); informational.
    #[serde(default)]
    pub kind: Option<String>,
    /// Other passages that state the same answer, as `article#selector`.
    #[serde(default)]
    pub also: Vec<String>,
}

/// Reads a JSONL evaluation file.
pub fn load(path: &Path) -> Result<Vec<EvalQuestion>, KbError> {
    let text = std::fs::read_to_string(path).map_err(|source| KbError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(n, l)| {
            serde_json::from_str(l).map_err(|e| KbError::Format {
                path: path.to_path_buf(),
                detail: format!("line {}: {e}", n + 1),
            })
        })
        .collect()
}

/// One question's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub q: String,
    pub lang: Lang,
    /// Every acceptable `article#passage`, the expected one first; empty for unanswerable.
    pub accepted: Vec<String>,
    /// Passages, best first (the top three).
    pub ranked: Vec<String>,
    /// 1-based rank of the best-ranked acceptable passage among all passages.
    pub rank: Option<usize>,
    /// The top passage's calibration inputs (see [`super::PassageHit::features`]).
    pub features: [f32; 4],
    pub intent: String,
    /// Calibrated score of the top passage.
    pub score: f32,
}

impl Outcome {
    /// `article#passage` expected, or `None` for unanswerable.
    pub fn expected(&self) -> Option<&str> {
        self.accepted.first().map(String::as_str)
    }

    fn top1(&self) -> bool {
        self.rank == Some(1)
    }
}

fn resolve(kb: &KnowledgeBase, article: &str, lang: Lang, sel: &str) -> Result<String, String> {
    let entry = kb
        .find(article, lang, sel)
        .ok_or_else(|| format!("no passage {sel:?} in {article} ({})", lang.as_str()))?;
    let (a, p) = kb.entry(entry);
    Ok(format!("{}#{}", a.id, p.index))
}

/// Ranks every question. `classified` holds the classifier's answer for each question.
pub fn run(
    kb: &KnowledgeBase,
    questions: &[EvalQuestion],
    classified: &[Classification],
) -> Result<Vec<Outcome>, String> {
    questions
        .iter()
        .zip(classified)
        .map(|(item, c)| {
            let mut accepted = Vec::new();
            if let Some(a) = &item.article {
                let sel = item.passage.as_deref().unwrap_or("#0");
                accepted.push(
                    resolve(kb, a, item.lang, sel).map_err(|e| format!("{:?}: {e}", item.q))?,
                );
                for alt in &item.also {
                    let (a, sel) = alt.split_once('#').unwrap_or((alt, "0"));
                    accepted.push(resolve(kb, a, item.lang, &format!("#{sel}"))?);
                }
            }
            let q = Query {
                text: &item.q,
                embedding: &c.embedding,
                intent: &c.intent,
                lang: item.lang,
            };
            let hits = kb.rank(&q);
            let keys: Vec<String> = hits.iter().map(|h| h.key()).collect();
            let rank = keys
                .iter()
                .position(|k| accepted.contains(k))
                .map(|r| r + 1);
            let top = hits.first();
            Ok(Outcome {
                q: item.q.clone(),
                lang: item.lang,
                accepted,
                ranked: keys.into_iter().take(3).collect(),
                rank,
                features: top.map_or([0.0; 4], |h| h.features()),
                intent: c.intent.clone(),
                score: top.map_or(0.0, |h| h.calibrated(&kb.calibration())),
            })
        })
        .collect()
}

/// Retrieval quality of a set of outcomes at a bar.
#[derive(Debug, Clone, Serialize)]
pub struct Metrics {
    pub answerable: usize,
    pub unanswerable: usize,
    pub top1: f32,
    pub top3: f32,
    pub mrr: f32,
    /// Of the questions answered (score at or above the bar), the share answered with the
    /// right passage.
    pub bar_precision: f32,
    /// Of the answerable questions, the share answered with the right passage.
    pub bar_recall: f32,
    /// Unanswerable questions that were answered anyway.
    pub unanswerable_answered: usize,
}

fn share(n: usize, of: usize) -> f32 {
    if of == 0 { 0.0 } else { n as f32 / of as f32 }
}

/// Computes the metrics of `outcomes` at `bar`.
pub fn metrics(outcomes: &[Outcome], bar: f32) -> Metrics {
    let ans: Vec<&Outcome> = outcomes.iter().filter(|o| o.expected().is_some()).collect();
    let top1 = ans.iter().filter(|o| o.top1()).count();
    let top3 = ans
        .iter()
        .filter(|o| o.rank.is_some_and(|r| r <= 3))
        .count();
    let mrr: f32 = ans
        .iter()
        .filter_map(|o| o.rank)
        .map(|r| 1.0 / r as f32)
        .sum();
    let answered: Vec<&Outcome> = outcomes.iter().filter(|o| o.score >= bar).collect();
    let right = answered.iter().filter(|o| o.top1()).count();
    Metrics {
        answerable: ans.len(),
        unanswerable: outcomes.len() - ans.len(),
        top1: share(top1, ans.len()),
        top3: share(top3, ans.len()),
        mrr: if ans.is_empty() {
            0.0
        } else {
            mrr / ans.len() as f32
        },
        bar_precision: share(right, answered.len()),
        bar_recall: share(right, ans.len()),
        unanswerable_answered: answered.iter().filter(|o| o.expected().is_none()).count(),
    }
}

/// Fits the logistic calibration (bias, then one weight per feature of
/// [`super::PassageHit::features`]) so that the score is the probability that the top passage
/// is a right one; unanswerable questions count as wrong. Gradient descent on standardised
/// features with a little L2: four features and ~100 examples.
// Index loops over the four features read like the formulas they implement.
#[allow(clippy::needless_range_loop)]
pub fn fit_calibration(outcomes: &[Outcome]) -> [f32; 5] {
    let n = outcomes.len().max(1) as f32;
    let mut mean = [0.0f32; 4];
    let mut sd = [0.0f32; 4];
    for o in outcomes {
        for k in 0..4 {
            mean[k] += o.features[k] / n;
        }
    }
    for o in outcomes {
        for k in 0..4 {
            sd[k] += (o.features[k] - mean[k]).powi(2) / n;
        }
    }
    let sd = sd.map(|v| v.sqrt().max(1e-6));
    let data: Vec<([f32; 4], f32)> = outcomes
        .iter()
        .map(|o| {
            let mut z = [0.0; 4];
            for k in 0..4 {
                z[k] = (o.features[k] - mean[k]) / sd[k];
            }
            (z, f32::from(u8::from(o.top1())))
        })
        .collect();
    let mut w = [0.0f32; 5];
    for _ in 0..5000 {
        let mut g = [0.0f32; 5];
        for (x, y) in &data {
            let p = super::retrieval::logistic(&w, x);
            g[0] += p - y;
            for k in 0..4 {
                g[k + 1] += (p - y) * x[k];
            }
        }
        for k in 0..5 {
            let l2 = if k == 0 { 0.0 } else { 0.01 * w[k] };
            w[k] -= 0.5 * (g[k] / n + l2);
        }
    }
    // Back to raw features: w·(x − mean)/sd = (w/sd)·x − Σ w·mean/sd.
    let mut raw = [0.0f32; 5];
    raw[0] = w[0];
    for k in 0..4 {
        raw[k + 1] = w[k + 1] / sd[k];
        raw[0] -= w[k + 1] * mean[k] / sd[k];
    }
    raw
}

/// Rescores outcomes with other calibration weights.
pub fn rescore(outcomes: &mut [Outcome], w: &[f32; 5]) {
    for o in outcomes {
        o.score = super::retrieval::logistic(w, &o.features);
    }
}

/// How far above the best-scored unanswerable validation question the bar stays: scores move
/// a little with the machine's float kernels and a retrained head, and a bar that sits just
/// above an unanswerable question would let it through on the next machine.
pub const BAR_SAFETY: f32 = 0.05;

/// The bar for `outcomes` (validation): the lowest one that answers no unanswerable question
/// (with [`BAR_SAFETY`] to spare) and keeps precision at or above `min_precision`, so recall is
/// as high as those allow.
pub fn choose_bar(outcomes: &[Outcome], min_precision: f32) -> f32 {
    let floor = outcomes
        .iter()
        .filter(|o| o.expected().is_none())
        .map(|o| o.score + BAR_SAFETY)
        .fold(0.0, f32::max);
    let mut candidates: Vec<f32> = outcomes
        .iter()
        .map(|o| o.score)
        .filter(|&s| s >= floor)
        .collect();
    candidates.push(floor.max(0.5));
    candidates.sort_by(f32::total_cmp);
    candidates.dedup();
    for &bar in &candidates {
        let m = metrics(outcomes, bar);
        if m.unanswerable_answered == 0 && m.bar_precision >= min_precision {
            return bar;
        }
    }
    candidates.last().copied().unwrap_or(1.0) + 1e-6
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(right: bool, answerable: bool, score: f32) -> Outcome {
        Outcome {
            q: String::new(),
            lang: Lang::En,
            accepted: answerable.then(|| "a#0".to_string()).into_iter().collect(),
            ranked: vec![],
            rank: answerable.then_some(if right { 1 } else { 2 }),
            features: [
                score,
                f32::from(u8::from(right)),
                if right { 0.8 } else { 0.2 },
                if right { 0.05 } else { 0.01 },
            ],
            intent: String::new(),
            score: 0.0,
        }
    }

    #[test]
    fn calibration_separates_right_from_wrong_and_bar_excludes_unanswerable() {
        // Half right, a quarter wrong passages, a quarter unanswerable.
        let mut outs: Vec<Outcome> = (0..40)
            .map(|i| outcome(i % 4 < 2, i % 4 != 3, 3.0 + 0.05 * (i % 3) as f32))
            .collect();
        let w = fit_calibration(&outs);
        rescore(&mut outs, &w);
        let right: f32 = outs
            .iter()
            .filter(|o| o.top1())
            .map(|o| o.score)
            .sum::<f32>()
            / 20.0;
        let wrong: f32 = outs
            .iter()
            .filter(|o| !o.top1())
            .map(|o| o.score)
            .sum::<f32>()
            / 20.0;
        assert!(right > 0.8 && wrong < 0.2, "{right} {wrong}");
        let bar = choose_bar(&outs, 0.9);
        let m = metrics(&outs, bar);
        assert_eq!(m.unanswerable_answered, 0);
        assert!(m.bar_precision >= 0.9);
        for o in outs.iter().filter(|o| o.expected().is_none()) {
            assert!(
                o.score + BAR_SAFETY <= bar,
                "{} too close to {bar}",
                o.score
            );
        }
    }
}
