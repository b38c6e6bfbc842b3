//! The classifier on the real fetched model: product intents in both languages, out-of-scope
//! rejection, hostile text, and the eval command's handling of malformed input.

use std::path::Path;
use std::process::Command;

use switchboard::nlu::data::load_jsonl;

use crate::helpers::{model, root};

/// Classifies every fixture line and checks the share predicted as expected.
fn check(fixture: &str, min_share: f64) {
    let examples = load_jsonl(&root().join("tests/fixtures").join(fixture)).unwrap();
    let m = model();
    let texts: Vec<&str> = examples.iter().map(|e| e.text.as_str()).collect();
    let got = m.classify_batch(&texts).unwrap();
    let misses: Vec<String> = examples
        .iter()
        .zip(&got)
        .filter(|(e, c)| e.intent != c.intent)
        .map(|(e, c)| {
            format!(
                "{:?}: expected {}, got {} ({:.2})",
                e.text, e.intent, c.intent, c.confidence
            )
        })
        .collect();
    let share = 1.0 - misses.len() as f64 / examples.len() as f64;
    assert!(
        share >= min_share,
        "{fixture}: {:.0}% right, misses:\n{}",
        share * 100.0,
        misses.join("\n")
    );
}

#[test]
fn product_intents_in_english_and_chinese() {
    check("product_intents.jsonl", 0.9);
}

#[test]
fn out_of_scope_messages_are_rejected() {
    check("out_of_scope.jsonl", 0.85);
}

#[test]
fn classifications_are_calibrated_and_ranked() {
    let m = model();
    let c = &m.classify_batch(&["where is my parcel"]).unwrap()[0];
    assert!(c.confidence > 0.5 && c.confidence <= 1.0);
    assert_eq!(c.alternatives.len(), 3);
    assert_eq!(c.alternatives[0].intent, c.intent);
    assert!(
        c.alternatives
            .windows(2)
            .all(|w| w[0].confidence >= w[1].confidence)
    );
    let sum: f32 = c.alternatives.iter().map(|a| a.confidence).sum();
    assert!(sum <= 1.0001);
}

#[test]
fn hostile_text_never_panics() {
    let m = model();
    let hundred_kb = "a".repeat(100 * 1024);
    let cjk = "退款".repeat(20_000);
    let inputs = [
        "",
        "   ",
        hundred_kb.as_str(),
        cjk.as_str(),
        "🙂🔥💯🤬👍🏽👨‍👩‍👧",
        "\u{0}\u{1}\u{7}\u{1b}[2J\u{7f}",
        "مرحبا שלום Привет 你好 hello こんにちは",
        "\u{202e}gnirts desrever\u{202c}",
        "\u{FEFF}\u{200B}\u{0301}\u{0301}",
        "\u{FFFD}\u{FFFF}",
    ];
    let got = m.classify_batch(&inputs).unwrap();
    assert_eq!(got.len(), inputs.len());
    for (text, c) in inputs.iter().zip(&got) {
        assert!(
            c.confidence.is_finite() && (0.0..=1.0).contains(&c.confidence),
            "{text:?}"
        );
        assert!(c.scope_score.is_finite(), "{text:?}");
        assert!(!c.alternatives.is_empty());
    }
    // Gibberish and empty input are not confidently in scope.
    assert!(got[0].out_of_scope || got[0].confidence < 0.9);
}

#[test]
fn the_trained_head_is_versioned_and_reloads() {
    let m = model();
    let meta = &m.artifact.meta;
    assert!(meta.version.starts_with("v1-"));
    assert!(meta.labels.contains(&"order_tracking".to_string()));
    assert_eq!(meta.encoder, "multilingual-e5-small");
    let dir = root().join("models/multilingual-e5-small/heads/switchboard");
    let again = switchboard::nlu::model::HeadArtifact::load(&dir).unwrap();
    assert_eq!(again.meta.version, meta.version);
}

fn eval_with(train: &Path, test: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .current_dir(root())
        .args(["eval", "--json", "--no-cache", "--epochs", "5"])
        .arg("--train")
        .arg(train)
        .arg("--test")
        .arg(test)
        .output()
        .unwrap()
}

#[test]
fn eval_reports_malformed_lines_by_number() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.jsonl");
    std::fs::write(
        &good,
        "{\"text\":\"hi\",\"intent\":\"greeting\"}\n{\"text\":\"bye\",\"intent\":\"goodbye\"}\n",
    )
    .unwrap();
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"text\":\"hi\",\"intent\":\"greeting\"}\n{\"text\": oops}\n\n{\"intent\":\"x\"}\n",
    )
    .unwrap();
    let out = eval_with(&bad, &good);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 2") && err.contains("line 4"), "{err}");
    let out = eval_with(&good, &bad);
    assert!(!out.status.success());
}

#[test]
fn eval_json_has_the_documented_keys() {
    let dir = tempfile::tempdir().unwrap();
    let data = root().join("training-data/en.jsonl");
    let examples = load_jsonl(&data).unwrap();
    // A small, fast slice: four intents plus out-of-scope.
    let keep = [
        "greeting",
        "thanks",
        "invoice",
        "order_tracking",
        "out_of_scope",
    ];
    let lines: Vec<String> = examples
        .iter()
        .filter(|e| keep.contains(&e.intent.as_str()))
        .map(|e| serde_json::to_string(e).unwrap())
        .collect();
    let (test, train): (Vec<_>, Vec<_>) = lines.iter().enumerate().partition(|(i, _)| i % 5 == 0);
    let write = |name: &str, rows: Vec<(usize, &String)>| {
        let p = dir.path().join(name);
        std::fs::write(
            &p,
            rows.into_iter()
                .map(|(_, l)| format!("{l}\n"))
                .collect::<String>(),
        )
        .unwrap();
        p
    };
    let out = eval_with(&write("train.jsonl", train), &write("test.jsonl", test));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("stdout is one JSON object");
    for key in [
        "accuracy",
        "macro_f1",
        "in_scope_accuracy",
        "oos_recall",
        "train_seconds",
        "latency_p50_ms",
        "latency_p99_ms",
    ] {
        assert!(v[key].is_number(), "missing {key}: {v}");
    }
    assert!(v["accuracy"].as_f64().unwrap() > 0.8, "{v}");
}
