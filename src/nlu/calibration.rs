//! Turning logits into a calibrated confidence and an out-of-scope decision. Pure functions,
//! fitted on validation data only.
//!
//! Confidence is the softmax at a temperature that minimises validation log-loss. The
//! out-of-scope rule combines two views of "is this like anything we were trained on": the
//! calibrated top probability, and the similarity to the nearest training messages in the
//! encoder's space. `score = w·p_max + (1−w)·similarity`; a message is out of scope when the
//! score is below the threshold, or when the head's own top class is `out_of_scope`.

use serde::{Deserialize, Serialize};

use super::head::softmax;

/// The fitted calibration of a head.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Calibration {
    pub temperature: f32,
    pub oos: OosRule,
}

/// The out-of-scope rule.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OosRule {
    /// Weight of the calibrated top probability; the rest goes to neighbour similarity.
    pub prob_weight: f32,
    /// Messages scoring below this are out of scope.
    pub threshold: f32,
    /// How the rule was chosen, for reports.
    pub chosen_by: String,
}

impl OosRule {
    /// The combined in-scope score.
    pub fn score(&self, p_max: f32, similarity: f32) -> f32 {
        self.prob_weight * p_max + (1.0 - self.prob_weight) * similarity
    }
}

/// One validation message as the calibration sees it.
pub struct ValItem {
    pub logits: Vec<f32>,
    /// Mean similarity to the nearest in-scope training messages.
    pub similarity: f32,
    /// Gold class index, or `None` for an out-of-scope message with no class of its own.
    pub gold: Option<usize>,
}

/// The temperature minimising the mean negative log-likelihood of gold classes.
pub fn fit_temperature(items: &[ValItem]) -> f32 {
    let labelled: Vec<&ValItem> = items.iter().filter(|i| i.gold.is_some()).collect();
    if labelled.is_empty() {
        return 1.0;
    }
    let nll = |t: f32| -> f64 {
        labelled
            .iter()
            .map(|i| {
                let p = softmax(&i.logits, t);
                -f64::from(p[i.gold.unwrap_or(0)].max(1e-12)).ln()
            })
            .sum::<f64>()
    };
    // A coarse log-spaced grid, then a finer one around the best point.
    let mut best = (1.0f32, nll(1.0));
    for k in -40..=40 {
        let t = 10f32.powf(k as f32 / 20.0);
        let v = nll(t);
        if v < best.1 {
            best = (t, v);
        }
    }
    let center = best.0.log10();
    for k in -20..=20 {
        let t = 10f32.powf(center + k as f32 / 400.0);
        let v = nll(t);
        if v < best.1 {
            best = (t, v);
        }
    }
    best.0
}

/// Chooses the out-of-scope rule on validation items.
///
/// With out-of-scope examples present, it takes the rule (probability weight and threshold)
/// that rejects the most out-of-scope validation messages while costing at most
/// `max_in_scope_loss` of in-scope validation accuracy (a rejected in-scope message counts as
/// wrong): a shop would rather hand a question to a person than answer it wrongly, but not
/// send it every question the bot could have answered. Without out-of-scope examples nothing
/// can be measured, so it rejects nothing beyond the head's own `out_of_scope` class.
pub fn choose_oos_rule(
    items: &[ValItem],
    temperature: f32,
    oos_class: Option<usize>,
    max_in_scope_loss: f32,
) -> OosRule {
    let is_oos = |i: &ValItem| i.gold.is_none() || i.gold == oos_class;
    let n_oos = items.iter().filter(|i| is_oos(i)).count();
    let n_in = items.len() - n_oos;
    if n_oos == 0 || n_in == 0 {
        return OosRule {
            prob_weight: 1.0,
            threshold: 0.0,
            chosen_by: "no out-of-scope validation examples: threshold 0".into(),
        };
    }
    // Per item: (argmax class, p_max among in-scope classes, similarity).
    let scored: Vec<(usize, f32, f32)> = items
        .iter()
        .map(|i| {
            let p = softmax(&i.logits, temperature);
            let (arg, _) = argmax(&p);
            let p_in = p
                .iter()
                .enumerate()
                .filter(|(c, _)| Some(*c) != oos_class)
                .map(|(_, v)| *v)
                .fold(0.0f32, f32::max);
            (arg, p_in, i.similarity)
        })
        .collect();
    let measure = |w: f32, th: f32| -> (f32, f32) {
        let (mut in_ok, mut oos_ok) = (0usize, 0usize);
        for (item, &(arg, p, s)) in items.iter().zip(&scored) {
            let rejected = Some(arg) == oos_class || w * p + (1.0 - w) * s < th;
            if is_oos(item) {
                oos_ok += usize::from(rejected);
            } else {
                in_ok += usize::from(!rejected && Some(arg) == item.gold);
            }
        }
        (in_ok as f32 / n_in as f32, oos_ok as f32 / n_oos as f32)
    };
    let (base_acc, base_recall) = measure(1.0, f32::NEG_INFINITY);
    let floor = base_acc - max_in_scope_loss;
    // (recall, in-scope accuracy, weight, threshold)
    let mut best = (base_recall, base_acc, 1.0f32, f32::NEG_INFINITY);
    for w10 in 0..=10 {
        let w = w10 as f32 / 10.0;
        let mut scores: Vec<f32> = scored
            .iter()
            .map(|&(_, p, s)| w * p + (1.0 - w) * s)
            .collect();
        scores.sort_by(f32::total_cmp);
        scores.dedup();
        let step = (scores.len() / 1000).max(1);
        for th in scores.iter().step_by(step).map(|s| s + 1e-6) {
            let (acc, recall) = measure(w, th);
            if acc < floor {
                // Higher thresholds only reject more in-scope messages.
                break;
            }
            if (recall, acc) > (best.0, best.1) {
                best = (recall, acc, w, th);
            }
        }
    }
    let (recall, acc, prob_weight, threshold) = best;
    OosRule {
        prob_weight,
        threshold: if threshold.is_finite() {
            threshold
        } else {
            0.0
        },
        chosen_by: format!(
            "most OOS recall costing at most {:.1} points of in-scope accuracy on {n_in} in-scope / {n_oos} OOS validation messages (val: in-scope {:.2}%, OOS recall {:.1}%)",
            max_in_scope_loss * 100.0,
            acc * 100.0,
            recall * 100.0
        ),
    }
}

/// Index and value of the largest element (the first on ties).
pub fn argmax(v: &[f32]) -> (usize, f32) {
    v.iter().copied().enumerate().fold(
        (0, f32::NEG_INFINITY),
        |b, (i, x)| if x > b.1 { (i, x) } else { b },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temperature_shrinks_overconfident_logits() {
        // Confident logits that are right only 60% of the time should be softened (T > 1).
        let items: Vec<ValItem> = (0..10)
            .map(|i| ValItem {
                logits: vec![10.0, 0.0],
                similarity: 1.0,
                gold: Some(if i < 6 { 0 } else { 1 }),
            })
            .collect();
        assert!(fit_temperature(&items) > 2.0);
    }

    #[test]
    fn oos_rule_separates_dissimilar_messages() {
        let mut items = Vec::new();
        for _ in 0..20 {
            items.push(ValItem {
                logits: vec![5.0, 0.0],
                similarity: 0.9,
                gold: Some(0),
            });
            items.push(ValItem {
                logits: vec![0.5, 0.0],
                similarity: 0.3,
                gold: None,
            });
        }
        let rule = choose_oos_rule(&items, 1.0, None, 0.01);
        assert!(rule.score(0.99, 0.9) >= rule.threshold);
        assert!(rule.score(0.62, 0.3) < rule.threshold);
    }

    #[test]
    fn without_oos_examples_nothing_is_rejected() {
        let items = vec![ValItem {
            logits: vec![1.0, 0.0],
            similarity: 0.1,
            gold: Some(0),
        }];
        assert_eq!(choose_oos_rule(&items, 1.0, None, 0.01).threshold, 0.0);
    }
}
