//! The encoder alone, as `scripts/bench-peers.sh` compares it with PyTorch and ONNX Runtime:
//! single-message latency (tokenizer + encoder + mean pooling + L2) on the product's chat
//! messages, throughput in batches of 64 on those and on banking77's test set (when
//! `../shared/eval-data` is present), and the cosine of the embeddings to the f32 encoder.
//! `cargo bench --bench encoder`; `ENCODER=all-minilm-l6-v2` for another model directory,
//! `JSON=1` for one JSON object on stdout.

use std::path::PathBuf;
use std::time::Instant;

use switchboard::nlu::encoder::{Encoder, Precision};

/// Messages per forward pass in the batch measurement.
const BATCH: usize = 64;

fn main() -> anyhow::Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let name =
        std::env::var("ENCODER").unwrap_or_else(|_| switchboard::models::DEFAULT_ENCODER.into());
    let dir = root.join("models").join(&name);
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let encoder = Encoder::load(&dir)?;
    let mut product = Vec::new();
    for f in ["product_intents.jsonl", "out_of_scope.jsonl"] {
        let examples = switchboard::nlu::data::load_jsonl(&root.join("tests/fixtures").join(f))?;
        product.extend(examples.into_iter().map(|e| e.text));
    }
    let product: Vec<&str> = product.iter().map(String::as_str).collect();

    for t in product.iter().take(10) {
        encoder.embed(&[t], &|_| {})?;
    }
    let mut times = Vec::new();
    for _ in 0..rounds {
        for t in &product {
            let start = Instant::now();
            std::hint::black_box(encoder.embed(&[t], &|_| {})?);
            times.push(start.elapsed().as_secs_f64() * 1000.0);
        }
    }
    times.sort_by(f64::total_cmp);
    let p = |q: f64| switchboard::nlu::eval::percentile(&times, q);
    let mut report = serde_json::json!({
        "engine": format!("Switchboard {:?}", encoder.precision()),
        "kernels": format!("{:?}", switchboard::nlu::kernels::level()),
        "single_p50_ms": p(0.5),
        "single_p99_ms": p(0.99),
    });

    let mut sets = vec![("product", product.clone())];
    let banking =
        switchboard::nlu::data::load_jsonl(&root.join("../shared/eval-data/banking77/test.jsonl"))
            .map(|e| e.into_iter().map(|e| e.text).collect::<Vec<_>>())
            .unwrap_or_default();
    if !banking.is_empty() {
        sets.push(("banking77", banking.iter().map(String::as_str).collect()));
    }
    for (set, texts) in &sets {
        // `embed` groups by length and splits each batch across the threads.
        encoder.embed(&texts[..texts.len().min(BATCH)], &|_| {})?;
        let start = Instant::now();
        for batch in texts.chunks(BATCH) {
            std::hint::black_box(encoder.embed(batch, &|_| {})?);
        }
        report[format!("batch_{set}_per_s")] =
            (texts.len() as f64 / start.elapsed().as_secs_f64()).into();
    }

    // A checksum of the product messages' embeddings, bit for bit: kernels that claim the
    // same numerics (SWITCHBOARD_KERNELS=vnni, scalar, or the default) must print the same.
    {
        use sha2::Digest;
        let vectors = encoder.embed(&product, &|_| {})?;
        let mut h = sha2::Sha256::new();
        for v in &vectors {
            for x in v {
                h.update(x.to_le_bytes());
            }
        }
        report["embeddings_sha256"] = format!("{:x}", h.finalize())[..16].into();
    }

    if encoder.precision() != Precision::F32 {
        let exact = Encoder::load_with(&dir, Precision::F32)?.embed(&product, &|_| {})?;
        let fast = encoder.embed(&product, &|_| {})?;
        let cos: Vec<f32> = exact
            .iter()
            .zip(&fast)
            .map(|(a, b)| a.iter().zip(b).map(|(x, y)| x * y).sum())
            .collect();
        report["cosine_to_f32_min"] = cos.iter().copied().fold(1.0f32, f32::min).into();
        report["cosine_to_f32_mean"] = (cos.iter().sum::<f32>() / cos.len() as f32).into();
    }

    if std::env::var("JSON").is_ok_and(|v| v == "1") {
        println!("{report}");
    } else {
        println!(
            "encoder one message ({name}, {:?} kernels, {} samples, {} threads): p50 {:.2} ms, p99 {:.2} ms",
            switchboard::nlu::kernels::level(),
            times.len(),
            rayon::current_num_threads(),
            p(0.5),
            p(0.99)
        );
        for (set, texts) in &sets {
            println!(
                "encoder in batches of {BATCH} ({set}, {} sentences): {:.0} sentences/s",
                texts.len(),
                report[format!("batch_{set}_per_s")].as_f64().unwrap_or(0.0)
            );
        }
        println!(
            "embeddings of the product messages, sha256: {}",
            report["embeddings_sha256"].as_str().unwrap_or("")
        );
        if let Some(min) = report.get("cosine_to_f32_min") {
            println!(
                "cosine to the f32 encoder on the product messages: min {:.4}, mean {:.4}",
                min.as_f64().unwrap_or(0.0),
                report["cosine_to_f32_mean"].as_f64().unwrap_or(0.0)
            );
        }
    }
    Ok(())
}

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
