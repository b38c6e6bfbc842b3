//! The served vocabulary: the multilingual encoder's 250k-piece SentencePiece (Unigram)
//! vocabulary pruned, as the model loads, to the pieces the shop's languages can produce.
//!
//! A Unigram tokenizer only ever considers pieces that occur in the text, so a piece with a
//! letter of a script the shop does not serve (Cyrillic, Arabic, Devanagari, Hangul, …) can
//! never be chosen for an English or Chinese message: dropping it changes no tokenisation of
//! such text. Kept are every piece whose letters are all Latin or Han (with Bopomofo and the
//! CJK symbol blocks), every piece without letters (digits, punctuation, symbols, emoji, `▁`),
//! the special tokens, and the lowest-scored piece (the unknown token's penalty is derived
//! from the lowest score, so it stays the same). Letters of other scripts become `<unk>`.
//! Pieces are renumbered densely in their original order; [`Pruned::original`] maps a new id
//! back, and the encoder keeps only those rows of its word-embedding table. About half of
//! the vocabulary goes, with its share of the tokenizer's trie and of the embedding table.
//!
//! `SWITCHBOARD_VOCAB=full` keeps the whole vocabulary (for a shop that serves other scripts).

use serde_json::Value;

/// Names the pruning rule, for embedding-cache keys.
pub const RULE: &str = "latin-han-v1";

/// A tokenizer definition with its vocabulary pruned.
pub struct Pruned {
    /// The pruned `tokenizer.json`.
    pub json: Vec<u8>,
    /// For each new id, the original one.
    pub original: Vec<u32>,
}

/// Whether pruning is on (`SWITCHBOARD_VOCAB` is not `full`).
pub fn enabled() -> bool {
    std::env::var("SWITCHBOARD_VOCAB").as_deref() != Ok("full")
}

/// Whether a piece can occur in text of the served languages.
pub fn served(piece: &str) -> bool {
    piece
        .chars()
        .all(|c| !c.is_alphabetic() || latin(c) || han(c))
}

fn latin(c: char) -> bool {
    matches!(c,
        '\u{0000}'..='\u{024F}'   // Basic Latin … Latin Extended-B
        | '\u{0250}'..='\u{02FF}' // IPA extensions, spacing modifiers
        | '\u{1D00}'..='\u{1DBF}' // phonetic extensions
        | '\u{1E00}'..='\u{1EFF}' // Latin Extended Additional (Vietnamese)
        | '\u{2C60}'..='\u{2C7F}' // Latin Extended-C
        | '\u{A720}'..='\u{A7FF}' // Latin Extended-D
        | '\u{AB30}'..='\u{AB6F}' // Latin Extended-E
        | '\u{FB00}'..='\u{FB06}' // Latin ligatures
        | '\u{FF00}'..='\u{FFEF}' // full- and half-width forms
        | '\u{2100}'..='\u{214F}' // letterlike symbols
        | '\u{2460}'..='\u{24FF}' // enclosed alphanumerics
    )
}

fn han(c: char) -> bool {
    matches!(c,
        '\u{2E80}'..='\u{2FDF}'     // CJK and Kangxi radicals
        | '\u{3000}'..='\u{303F}'   // CJK symbols and punctuation
        | '\u{3100}'..='\u{312F}'   // Bopomofo
        | '\u{31A0}'..='\u{31BF}'   // Bopomofo extended
        | '\u{3200}'..='\u{33FF}'   // enclosed CJK, compatibility
        | '\u{3400}'..='\u{4DBF}'   // extension A
        | '\u{4E00}'..='\u{9FFF}'   // unified ideographs
        | '\u{F900}'..='\u{FAFF}'   // compatibility ideographs
        | '\u{FE30}'..='\u{FE4F}'   // CJK compatibility forms
        | '\u{20000}'..='\u{3134F}' // extensions B–G
    )
}

/// Prunes a Unigram `tokenizer.json` to the pieces `keep` accepts (plus special tokens and
/// the lowest-scored piece). `None` when the tokenizer is not Unigram (WordPiece vocabularies
/// such as MiniLM's are small and left whole).
pub fn prune(json: &[u8], keep: impl Fn(&str) -> bool) -> Result<Option<Pruned>, String> {
    let mut doc: Value = serde_json::from_slice(json).map_err(|e| e.to_string())?;
    if doc["model"]["type"] != "Unigram" {
        return Ok(None);
    }
    let vocab = doc["model"]["vocab"]
        .as_array()
        .ok_or("model.vocab is not a list")?;
    let score = |entry: &Value| entry.get(1).and_then(Value::as_f64).unwrap_or(f64::MAX);
    let lowest = (0..vocab.len())
        .min_by(|&a, &b| score(&vocab[a]).total_cmp(&score(&vocab[b])))
        .unwrap_or(0);
    let unk = doc["model"]["unk_id"].as_u64().map(|u| u as usize);
    let special: Vec<usize> = doc["added_tokens"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t["id"].as_u64())
                .map(|u| u as usize)
                .collect()
        })
        .unwrap_or_default();
    let mut map = vec![u32::MAX; vocab.len()];
    let mut original = Vec::new();
    for (id, entry) in vocab.iter().enumerate() {
        let piece = entry
            .get(0)
            .and_then(Value::as_str)
            .ok_or("a piece is not text")?;
        if id == lowest || Some(id) == unk || special.contains(&id) || keep(piece) {
            map[id] = original.len() as u32;
            original.push(id as u32);
        }
    }
    let kept: Vec<Value> = original
        .iter()
        .map(|&id| vocab[id as usize].clone())
        .collect();
    doc["model"]["vocab"] = Value::Array(kept);
    let remap = |v: &mut Value| -> Result<(), String> {
        let old = v.as_u64().ok_or("an id is not a number")? as usize;
        let new = *map.get(old).ok_or("an id is outside the vocabulary")?;
        *v = Value::from(new);
        Ok(())
    };
    if let Some(u) = doc["model"].get_mut("unk_id").filter(|u| !u.is_null()) {
        remap(u)?;
    }
    if let Some(tokens) = doc["added_tokens"].as_array_mut() {
        for t in tokens {
            remap(&mut t["id"])?;
        }
    }
    remap_post_processor(&mut doc["post_processor"], &remap)?;
    let json = serde_json::to_vec(&doc).map_err(|e| e.to_string())?;
    Ok(Some(Pruned { json, original }))
}

/// Renumbers the special-token ids a post-processor inserts: `TemplateProcessing`'s
/// `special_tokens.*.ids`, `RobertaProcessing`/`BertProcessing`'s `[token, id]` pairs, and the
/// processors of a `Sequence`.
fn remap_post_processor(
    p: &mut Value,
    remap: &dyn Fn(&mut Value) -> Result<(), String>,
) -> Result<(), String> {
    if let Some(specials) = p.get_mut("special_tokens").and_then(Value::as_object_mut) {
        for s in specials.values_mut() {
            if let Some(ids) = s.get_mut("ids").and_then(Value::as_array_mut) {
                for id in ids {
                    remap(id)?;
                }
            }
        }
    }
    for pair in ["sep", "cls"] {
        if let Some(id) = p.get_mut(pair).and_then(|v| v.get_mut(1)) {
            remap(id)?;
        }
    }
    if let Some(list) = p.get_mut("processors").and_then(Value::as_array_mut) {
        for q in list {
            remap_post_processor(q, remap)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn served_pieces_are_latin_han_or_letterless() {
        for piece in [
            "▁the", "▁café", "退货", "▁", "123", "😡", "？", "Ａ", "ă", "ệ", "ㄅ",
        ] {
            assert!(served(piece), "{piece}");
        }
        for piece in ["▁привет", "مرحبا", "नमस्ते", "안녕", "ข", "αβ", "▁theα", "の"]
        {
            assert!(!served(piece), "{piece}");
        }
    }

    #[test]
    fn pruning_renumbers_vocabulary_specials_and_post_processor() {
        let json = serde_json::json!({
            "added_tokens": [
                {"id": 0, "content": "<s>", "special": true},
                {"id": 5, "content": "<mask>", "special": true}
            ],
            "post_processor": {
                "type": "TemplateProcessing",
                "special_tokens": {"<s>": {"id": "<s>", "ids": [0], "tokens": ["<s>"]}}
            },
            "model": {
                "type": "Unigram",
                "unk_id": 1,
                "vocab": [["<s>", 0.0], ["<unk>", 0.0], ["▁да", -3.0], ["▁yes", -2.0],
                          ["▁нет", -9.0], ["<mask>", 0.0], ["好", -4.0]]
            }
        });
        let pruned = prune(&serde_json::to_vec(&json).unwrap(), served)
            .unwrap()
            .unwrap();
        // "▁да" goes; "▁нет" stays as the lowest-scored piece.
        assert_eq!(pruned.original, vec![0, 1, 3, 4, 5, 6]);
        let doc: Value = serde_json::from_slice(&pruned.json).unwrap();
        assert_eq!(doc["model"]["vocab"][2][0], "▁yes");
        assert_eq!(doc["model"]["unk_id"], 1);
        assert_eq!(doc["added_tokens"][1]["id"], 4);
        assert_eq!(doc["post_processor"]["special_tokens"]["<s>"]["ids"][0], 0);
        let wordpiece = serde_json::json!({"model": {"type": "WordPiece", "vocab": {}}});
        assert!(
            prune(&serde_json::to_vec(&wordpiece).unwrap(), served)
                .unwrap()
                .is_none()
        );
    }
}
