//! Encoder batch throughput: sentences per second embedding the product's chat messages and
//! banking77's test set (when `../shared/eval-data` is present) in batches of 64, as training,
//! evaluation and a busy server do. `cargo bench --bench batch`.

use std::path::PathBuf;
use std::time::Instant;

use switchboard::nlu::encoder::Encoder;

/// Messages per forward pass.
const BATCH: usize = 64;

fn main() -> anyhow::Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let encoder_name =
        std::env::var("ENCODER").unwrap_or_else(|_| switchboard::models::DEFAULT_ENCODER.into());
    let encoder = Encoder::load(&root.join("models").join(&encoder_name))?;
    let mut sets: Vec<(&str, Vec<String>)> = Vec::new();
    let mut product = Vec::new();
    for f in ["product_intents.jsonl", "out_of_scope.jsonl"] {
        let examples = switchboard::nlu::data::load_jsonl(&root.join("tests/fixtures").join(f))?;
        product.extend(examples.into_iter().map(|e| e.text));
    }
    sets.push(("product", product));
    let banking = root.join("../shared/eval-data/banking77/test.jsonl");
    if banking.exists() {
        let examples = switchboard::nlu::data::load_jsonl(&banking)?;
        sets.push((
            "banking77 test",
            examples.into_iter().map(|e| e.text).collect(),
        ));
    }
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    for (name, texts) in &sets {
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        // Warm-up: page in the weights and size the buffers.
        encoder.embed(&refs[..refs.len().min(BATCH)], &|_| {})?;
        let start = Instant::now();
        let mut done = 0;
        for _ in 0..rounds {
            for batch in refs.chunks(BATCH) {
                std::hint::black_box(encoder.embed(batch, &|_| {})?);
                done += batch.len();
            }
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "embed in batches of {BATCH} ({name}, {done} sentences, {encoder_name}, precision {:?}, {} threads): {:.0} sentences/s",
            encoder.precision(),
            rayon::current_num_threads(),
            done as f64 / secs
        );
    }
    Ok(())
}

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
