//! `switchboard eval`: train on A, calibrate on C (or a slice of A), test on B, report.

use std::path::PathBuf;

use anyhow::Context;

use crate::nlu::data::{DataError, Example, load_dir, load_jsonl, stratified_split};
use crate::nlu::encoder::Encoder;
use crate::nlu::eval::{EvalReport, evaluate};
use crate::nlu::progress::Progress;
use crate::nlu::train::TrainOptions;

/// Where the test examples come from.
pub enum TestSet {
    File(PathBuf),
    /// This share of each training intent, held out with the training seed.
    Holdout(f64),
}

/// Inputs of an evaluation.
pub struct EvalArgs {
    pub train: PathBuf,
    pub test: TestSet,
    pub val: Option<PathBuf>,
    pub json: bool,
    pub latency_samples: usize,
    pub opts: TrainOptions,
}

/// Runs the evaluation and prints the report.
pub fn run(encoder_dir: &std::path::Path, args: EvalArgs) -> anyhow::Result<EvalReport> {
    let all = load(&args.train)?;
    let (train, test) = match &args.test {
        TestSet::File(p) => (all, load(p)?),
        TestSet::Holdout(f) => {
            if !(0.0..1.0).contains(f) || *f == 0.0 {
                anyhow::bail!("--holdout must be between 0 and 1");
            }
            stratified_split(&all, *f, args.opts.params.seed)
        }
    };
    let val = args.val.as_deref().map(load).transpose()?;
    let encoder = Encoder::load(encoder_dir).context("loading the encoder")?;
    let progress = Progress::new(args.json);
    let report = evaluate(
        &encoder,
        &train,
        &test,
        val.as_deref(),
        &args.opts,
        args.latency_samples,
        progress,
    )?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", render(&report));
    }
    Ok(report)
}

/// A JSONL file, or every `*.jsonl` in a folder.
fn load(path: &std::path::Path) -> Result<Vec<Example>, DataError> {
    if path.is_dir() {
        load_dir(path)
    } else {
        load_jsonl(path)
    }
}

fn pct(x: f64) -> String {
    format!("{:.2}%", x * 100.0)
}

fn render(r: &EvalReport) -> String {
    let m = &r.metrics;
    let mut out = format!(
        "encoder:            {}\ntrain / test:       {} / {}\nvalidation:         {}\naccuracy:           {}\nmacro-F1:           {}\n",
        r.encoder,
        r.train_examples,
        r.test_examples,
        r.validation,
        pct(m.accuracy),
        pct(m.macro_f1)
    );
    if let (Some(a), Some(o)) = (m.in_scope_accuracy, m.oos_recall) {
        out.push_str(&format!(
            "in-scope accuracy:  {}\nOOS recall:         {}\n",
            pct(a),
            pct(o)
        ));
    }
    out.push_str(&format!(
        "train seconds:      {:.1}\nlatency p50 / p99:  {:.2} / {:.2} ms\ntemperature:        {:.3}\nOOS rule:           {}\n\nper intent (F1, support):\n",
        r.train_seconds, r.latency_p50_ms, r.latency_p99_ms, r.temperature, r.oos_rule
    ));
    for s in &m.per_intent {
        out.push_str(&format!(
            "  {:<32} {:>7}  {}\n",
            s.intent,
            pct(s.f1),
            s.support
        ));
    }
    out.push_str("\nmost confused (gold -> predicted: count):\n");
    for c in &m.most_confused {
        out.push_str(&format!("  {} -> {}: {}\n", c.gold, c.predicted, c.count));
    }
    out
}
