//! Single-message classification latency on the product model: tokenizer, encoder and head,
//! one message at a time, as a shopper's message is handled. `cargo bench --bench classify`.
//! Prints p50/p90/p99 in milliseconds over the product fixtures, repeated.

use std::path::PathBuf;
use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let model = switchboard::commands::train::ensure_product_model(
        &root.join("models"),
        switchboard::models::DEFAULT_ENCODER,
        "switchboard",
        &root.join("intents"),
        &root.join("training-data"),
    )?;
    let mut texts = Vec::new();
    for f in ["product_intents.jsonl", "out_of_scope.jsonl"] {
        let examples = switchboard::nlu::data::load_jsonl(&root.join("tests/fixtures").join(f))?;
        texts.extend(examples.into_iter().map(|e| e.text));
    }
    for t in texts.iter().take(10) {
        model.classify_batch(&[t])?;
    }
    let rounds = std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let mut times = Vec::new();
    for _ in 0..rounds {
        for t in &texts {
            let start = Instant::now();
            let c = model.classify_batch(&[t])?;
            times.push(start.elapsed().as_secs_f64() * 1000.0);
            std::hint::black_box(c);
        }
    }
    times.sort_by(f64::total_cmp);
    let p = |q: f64| switchboard::nlu::eval::percentile(&times, q);
    println!(
        "classify one message ({} samples, precision {:?}): p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms",
        times.len(),
        model.encoder.precision(),
        p(0.5),
        p(0.9),
        p(0.99)
    );
    Ok(())
}

// Same allocator as the `switchboard` binary, so the numbers match the service.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
