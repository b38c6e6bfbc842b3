//! `switchboard eval-kb`: measures knowledge-base retrieval on the project's own questions
//! (`kb/eval.jsonl`) with the real classifier and encoder, fits the score calibration and the
//! answer bar on the validation half, and reports the test half with the values in use.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;

use crate::dialogue::kb::eval::{self, EvalQuestion, Metrics, Outcome};
use crate::dialogue::kb::{self, KnowledgeBase};
use crate::nlu::IntentClassifier;
use crate::nlu::model::IntentModel;
use crate::nlu::service::ClassifierService;

/// Least validation precision the fitted bar keeps.
const MIN_PRECISION: f32 = 0.9;

/// What to evaluate.
pub struct EvalKbArgs {
    pub questions: PathBuf,
    pub kb_dir: PathBuf,
    pub json: bool,
    /// Where to write every question's and passage's vectors, for offline analysis.
    pub dump: Option<PathBuf>,
    /// Fusion weights to evaluate instead of the built-in ones.
    pub weights: Option<[f32; 8]>,
}

fn pct(x: f32) -> String {
    format!("{:.1}%", 100.0 * x)
}

fn row(name: &str, m: &Metrics) -> String {
    format!(
        "{name:<22} {:>4} {:>4}  {:>6} {:>6} {:>6}  {:>6} {:>6}  {:>3}",
        m.answerable,
        m.unanswerable,
        pct(m.top1),
        pct(m.top3),
        format!("{:.3}", m.mrr),
        pct(m.bar_precision),
        pct(m.bar_recall),
        m.unanswerable_answered
    )
}

fn misses(outcomes: &[Outcome], bar: f32) -> Vec<String> {
    let mut out = Vec::new();
    for o in outcomes {
        let problem = match (o.expected(), o.rank) {
            (Some(e), Some(1)) if o.score < bar => Some(format!("below bar ({:.2}), {e}", o.score)),
            (Some(e), r) if r != Some(1) => Some(format!(
                "expected {e} (rank {}), got {}",
                r.map_or("-".into(), |r| r.to_string()),
                o.ranked.join(" ")
            )),
            (None, _) if o.score >= bar => Some(format!(
                "unanswerable answered ({:.2}) with {}",
                o.score,
                o.ranked.first().map_or("", String::as_str)
            )),
            _ => None,
        };
        if let Some(p) = problem {
            out.push(format!(
                "  [{}] {:?} [{}]: {p}",
                o.lang.as_str(),
                o.q,
                o.intent
            ));
        }
    }
    out
}

/// Runs the evaluation and prints the report.
pub fn run(model: IntentModel, args: EvalKbArgs) -> anyhow::Result<()> {
    let questions = eval::load(&args.questions)?;
    let articles = kb::load_dir(&args.kb_dir).context("loading the knowledge base")?;
    let runtime = tokio::runtime::Runtime::new()?;
    let classifier: Arc<dyn IntentClassifier> = Arc::new(ClassifierService::start(model, 16));
    let (mut kb, classified) = runtime.block_on(async {
        let kb = KnowledgeBase::build(articles, classifier.as_ref(), kb::DEFAULT_MIN_SCORE).await?;
        let texts = questions.iter().map(|q| q.q.clone()).collect();
        let classified = classifier.classify(texts).await?;
        anyhow::Ok((kb, classified))
    })?;
    if let Some(w) = args.weights {
        kb.set_weights(w);
    }
    // Every question ranked once; the halves are its `val` and `test` questions.
    let outcomes = eval::run(&kb, &questions, &classified).map_err(anyhow::Error::msg)?;
    if let Some(path) = &args.dump {
        runtime.block_on(dump(
            &kb,
            classifier.as_ref(),
            &questions,
            &classified,
            &outcomes,
            path,
        ))?;
    }
    let split = |name: &str| -> Vec<Outcome> {
        questions
            .iter()
            .zip(&outcomes)
            .filter(|(q, _)| q.split == name)
            .map(|(_, o)| o.clone())
            .collect()
    };
    let (val, test) = (split("val"), split("test"));
    let bar = kb.min_score();
    let fitted = eval::fit_calibration(&val);
    let (mut val_fit, mut test_fit) = (val.clone(), test.clone());
    eval::rescore(&mut val_fit, &fitted);
    eval::rescore(&mut test_fit, &fitted);
    let fitted_bar = eval::choose_bar(&val_fit, MIN_PRECISION);
    let report = serde_json::json!({
        "questions": questions.len(),
        "passages": kb.passage_count(),
        "weights": kb.weights(),
        "in_use": {
            "calibration": kb.calibration(),
            "bar": bar,
            "val": eval::metrics(&val, bar),
            "test": eval::metrics(&test, bar),
        },
        "fitted_on_val": {
            "calibration": fitted,
            "bar": fitted_bar,
            "val": eval::metrics(&val_fit, fitted_bar),
            "test": eval::metrics(&test_fit, fitted_bar),
        },
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!(
        "{} questions, {} passages in {} articles; calibration {:?}, bar {bar:.3}",
        questions.len(),
        kb.passage_count(),
        kb.len(),
        kb.calibration()
    );
    println!(
        "{:<22} {:>4} {:>4}  {:>6} {:>6} {:>6}  {:>6} {:>6}  {:>3}",
        "set", "ans", "unan", "top1", "top3", "MRR", "prec", "recall", "UA"
    );
    println!("{}", row("val", &eval::metrics(&val, bar)));
    println!("{}", row("test", &eval::metrics(&test, bar)));
    for (name, outcomes) in [("val", &val), ("test", &test)] {
        for lang in [crate::domain::Lang::En, crate::domain::Lang::Zh] {
            let part: Vec<Outcome> = outcomes
                .iter()
                .filter(|o| o.lang == lang)
                .cloned()
                .collect();
            println!(
                "{}",
                row(
                    &format!("  {name} {}", lang.as_str()),
                    &eval::metrics(&part, bar)
                )
            );
        }
    }
    println!(
        "(UA: unanswerable questions answered. prec/recall: answers at or above the bar.)\n\
         fitted on val: calibration {fitted:?}, bar {fitted_bar:.3} -> test: {}",
        row("", &eval::metrics(&test_fit, fitted_bar)).trim()
    );
    for (name, outcomes) in [("val", &val), ("test", &test)] {
        let m = misses(outcomes, bar);
        println!("misses in {name} ({}):", m.len());
        for line in m {
            println!("{line}");
        }
    }
    Ok(())
}

/// Writes questions (with their embeddings and intents) and passages (with their vectors,
/// with and without the article title) as JSON, to study fusion settings offline.
async fn dump(
    kb: &KnowledgeBase,
    classifier: &dyn IntentClassifier,
    questions: &[EvalQuestion],
    classified: &[crate::nlu::Classification],
    outcomes: &[Outcome],
    path: &std::path::Path,
) -> anyhow::Result<()> {
    let n = kb.passage_count();
    let entries: Vec<_> = (0..n).map(|i| kb.entry(i)).collect();
    let bare: Vec<String> = entries
        .iter()
        .map(|(_, p)| kb::passages::plain(&p.display()))
        .collect();
    let full: Vec<String> = entries
        .iter()
        .map(|(a, p)| format!("{}. {}", a.title, kb::passages::plain(&p.display())))
        .collect();
    let bare_vecs = classifier.embed_passages(bare.clone()).await?;
    let full_vecs = classifier.embed_passages(full.clone()).await?;
    let sample: Vec<String> = kb
        .articles()
        .iter()
        .flat_map(|a| a.questions.iter().cloned())
        .collect();
    let sample_vecs: Vec<Vec<f32>> = classifier
        .classify(sample.clone())
        .await?
        .into_iter()
        .map(|c| c.embedding)
        .collect();
    let own: Vec<(String, String)> = entries
        .iter()
        .flat_map(|(a, p)| {
            let key = format!("{}#{}", a.id, p.index);
            a.passage_questions
                .get(p.index)
                .into_iter()
                .flatten()
                .map(move |q| (key.clone(), q.clone()))
        })
        .collect();
    let own_vecs: Vec<Vec<f32>> = classifier
        .classify(own.iter().map(|(_, q)| q.clone()).collect())
        .await?
        .into_iter()
        .map(|c| c.embedding)
        .collect();
    let passage_samples: Vec<serde_json::Value> = own
        .iter()
        .zip(own_vecs)
        .map(|((key, q), v)| serde_json::json!({"key": key, "q": q, "vec": v}))
        .collect();
    let passages: Vec<serde_json::Value> = entries
        .iter()
        .enumerate()
        .map(|(i, (a, p))| {
            serde_json::json!({
                "key": format!("{}#{}", a.id, p.index), "article": a.id, "lang": a.lang,
                "index": p.index, "heading": p.heading, "text": p.text, "title": a.title,
                "keywords": a.keywords, "intents": a.intents,
                "bare": bare[i], "full": full[i],
                "bare_vec": bare_vecs[i], "full_vec": full_vecs[i],
            })
        })
        .collect();
    let samples: Vec<serde_json::Value> = kb
        .articles()
        .iter()
        .flat_map(|a| a.questions.iter().map(move |q| (a, q)))
        .zip(sample_vecs)
        .map(|((a, q), v)| serde_json::json!({"article": a.id, "lang": a.lang, "q": q, "vec": v}))
        .collect();
    let qs: Vec<serde_json::Value> = questions
        .iter()
        .zip(classified)
        .zip(outcomes)
        .map(|((q, c), o)| {
            let hits = kb.rank(&kb::Query {
                text: &q.q,
                embedding: &c.embedding,
                intent: &c.intent,
                lang: q.lang,
            });
            let parts: serde_json::Map<String, serde_json::Value> = hits
                .iter()
                .map(|h| (h.key(), serde_json::json!(h.parts)))
                .collect();
            let expected = q.article.as_ref().and_then(|a| {
                let e = kb.find(a, q.lang, q.passage.as_deref().unwrap_or("0"))?;
                let (art, p) = kb.entry(e);
                Some(format!("{}#{}", art.id, p.index))
            });
            serde_json::json!({"q": q.q, "lang": q.lang, "split": q.split, "expected": expected,
                "accepted": o.accepted, "parts": parts,
                "intent": c.intent, "alternatives": c.alternatives, "vec": c.embedding})
        })
        .collect();
    let doc = serde_json::json!({"part_names": kb::retrieval::PARTS,
        "weights": kb.weights(), "passages": passages, "samples": samples,
        "passage_samples": passage_samples, "questions": qs});
    std::fs::write(path, serde_json::to_vec(&doc)?)?;
    Ok(())
}
