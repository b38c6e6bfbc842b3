//! The int8 encoder against the f32 one on the same model directory: embeddings of the
//! product's own chat messages must agree (issue #13: cosine ≥ 0.995), and a message must embed
//! the same alone as in a batch.

use switchboard::nlu::data::load_jsonl;
use switchboard::nlu::encoder::{Encoder, Precision};

use crate::helpers::{model, root};

fn texts() -> Vec<String> {
    let mut texts = Vec::new();
    for f in ["product_intents.jsonl", "out_of_scope.jsonl"] {
        let examples = load_jsonl(&root().join("tests/fixtures").join(f)).unwrap();
        texts.extend(examples.into_iter().map(|e| e.text));
    }
    texts
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

#[test]
fn int8_embeddings_stay_within_cosine_0_995_of_f32() {
    let q8 = model();
    assert_eq!(q8.encoder.precision(), Precision::Q8);
    let f32_encoder = Encoder::load_with(q8.encoder.dir(), Precision::F32).unwrap();
    let texts = texts();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let exact = f32_encoder.embed(&refs, &|_| {}).unwrap();
    let fast = q8.encoder.embed(&refs, &|_| {}).unwrap();
    let cosines: Vec<f32> = exact.iter().zip(&fast).map(|(a, b)| cosine(a, b)).collect();
    let (worst, at) = cosines
        .iter()
        .enumerate()
        .map(|(i, &c)| (c, i))
        .fold((1.0f32, 0), |w, c| if c.0 < w.0 { c } else { w });
    let mean = cosines.iter().sum::<f32>() / cosines.len() as f32;
    assert!(worst >= 0.995, "cosine {worst} on {:?}", texts[at]);
    assert!(mean >= 0.998, "mean cosine {mean}");
}

#[test]
fn a_message_embeds_the_same_alone_and_in_a_batch() {
    let m = model();
    let texts = texts();
    let refs: Vec<&str> = texts.iter().take(40).map(String::as_str).collect();
    let batch = m.encoder.embed(&refs, &|_| {}).unwrap();
    for (text, in_batch) in refs.iter().zip(&batch) {
        let alone = m.encoder.embed(&[text], &|_| {}).unwrap().remove(0);
        assert_eq!(&alone, in_batch, "{text:?}");
    }
}

#[test]
fn a_batch_classifies_each_message_as_alone() {
    let m = model();
    let texts = texts();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let batch = m.classify_batch(&refs).unwrap();
    for (text, in_batch) in refs.iter().zip(&batch) {
        let alone = m.classify_batch(&[text]).unwrap().remove(0);
        assert_eq!(&alone, in_batch, "{text:?}");
    }
}
