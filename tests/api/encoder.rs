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

/// Every English and Chinese text the product holds (training data, knowledge base, test
/// fixtures) plus shopper-style extras.
fn product_language_texts() -> Vec<String> {
    let mut texts = texts();
    for f in ["en.jsonl", "zh.jsonl"] {
        let examples = load_jsonl(&root().join("training-data").join(f)).unwrap();
        texts.extend(examples.into_iter().map(|e| e.text));
    }
    for dir in ["kb/en", "kb/zh"] {
        for entry in std::fs::read_dir(root().join(dir)).unwrap() {
            let body = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            texts.extend(
                body.lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(String::from),
            );
        }
    }
    // The public benchmarks (English and Chinese), where present: identical token ids there
    // mean identical embeddings, so their accuracy cannot change either.
    let eval = root().join("../shared/eval-data");
    for f in [
        "banking77/train.jsonl",
        "banking77/test.jsonl",
        "clinc150/train.jsonl",
        "clinc150/val.jsonl",
        "clinc150/test.jsonl",
        "hwu64/train.jsonl",
        "smp2017/train.jsonl",
    ] {
        if let Ok(examples) = load_jsonl(&eval.join(f)) {
            texts.extend(examples.into_iter().map(|e| e.text));
        }
    }
    texts.extend(
        [
            "WHERE IS MY ORDER?!! 😡😡 #SB-10023",
            "Café au lait stains on my naïve Zoë's jacket — refund pls",
            "Ｆｕｌｌｗｉｄｔｈ　ｔｅｘｔ，全角：１２３",
            "我的包裹还没到😭 订单号 SB10023 help",
            "Tiếng Việt có dấu: đơn hàng",
            "繁體中文：退貨、換貨、運費",
        ]
        .map(String::from),
    );
    texts
}

#[test]
fn the_served_vocabulary_tokenises_and_embeds_english_and_chinese_exactly_as_the_full_one() {
    let served = model();
    assert_eq!(served.encoder.vocabulary(), switchboard::nlu::vocab::RULE);
    let full = Encoder::load_vocabulary(served.encoder.dir(), Precision::Q8, false).unwrap();
    assert_eq!(full.vocabulary(), "full");
    let texts = product_language_texts();
    assert!(texts.len() > 4000, "{} texts", texts.len());
    for text in &texts {
        assert_eq!(
            served.encoder.token_ids(text).unwrap(),
            full.token_ids(text).unwrap(),
            "{text:?}"
        );
    }
    let refs: Vec<&str> = texts.iter().take(200).map(String::as_str).collect();
    assert_eq!(
        served.encoder.embed(&refs, &|_| {}).unwrap(),
        full.embed(&refs, &|_| {}).unwrap()
    );
    // Letters of scripts the shop does not serve become the unknown token (id 3), and the
    // message still embeds.
    let other = "Где мой заказ? 주문 where";
    let ids = served.encoder.token_ids(other).unwrap();
    assert!(ids.contains(&3), "{ids:?}");
    assert_ne!(ids, full.token_ids(other).unwrap());
    assert_eq!(
        served.encoder.embed(&[other], &|_| {}).unwrap()[0].len(),
        384
    );
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
