//! Sparse lexical features: TF-IDF over word 1–2-grams and character n-grams, so the head sees
//! exact surface cues (order words, product names, typos' shared fragments) that a frozen
//! sentence encoder blurs. Chinese has no spaces, so every CJK character is its own "word":
//! word bigrams then cover Chinese character bigrams.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;

/// Most features kept (by document frequency); bounds the head's width.
const MAX_FEATURES: usize = 20_000;
/// Characters of a message that are featurised; the rest cannot change the answer much.
const MAX_CHARS: usize = 2048;

/// A fitted vectoriser: vocabulary and inverse document frequencies.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Vectorizer {
    terms: Vec<String>,
    idf: Vec<f32>,
    #[serde(skip)]
    index: HashMap<String, u32>,
}

/// A sparse, L2-normalised feature vector.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SparseVec {
    pub indices: Vec<u32>,
    pub values: Vec<f32>,
}

impl Vectorizer {
    /// Learns the vocabulary from training texts: terms seen in at least `min_df` texts, the
    /// `MAX_FEATURES` most frequent of them.
    pub fn fit(texts: &[&str], min_df: usize) -> Self {
        let mut df: HashMap<String, usize> = HashMap::new();
        for text in texts {
            let mut terms = analyze(text);
            terms.sort_unstable();
            terms.dedup();
            for t in terms {
                *df.entry(t).or_default() += 1;
            }
        }
        let mut kept: Vec<(String, usize)> = df.into_iter().filter(|(_, c)| *c >= min_df).collect();
        // Ties broken by the term itself so that the vocabulary is deterministic.
        kept.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        kept.truncate(MAX_FEATURES);
        kept.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let n = texts.len() as f32;
        let idf = kept
            .iter()
            .map(|(_, c)| ((1.0 + n) / (1.0 + *c as f32)).ln() + 1.0)
            .collect();
        let terms = kept.into_iter().map(|(t, _)| t).collect();
        let mut v = Self {
            terms,
            idf,
            index: HashMap::new(),
        };
        v.rebuild_index();
        v
    }

    /// Rebuilds the term lookup after deserialising.
    pub fn rebuild_index(&mut self) {
        self.index = self
            .terms
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i as u32))
            .collect();
    }

    /// Number of features.
    pub fn len(&self) -> usize {
        self.terms.len()
    }

    /// True when the vocabulary is empty.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// 0 for word terms, 1 for character terms.
    fn block(&self, i: u32) -> usize {
        usize::from(self.terms[i as usize].starts_with("c:"))
    }

    /// Sublinear TF × IDF, each block (words, characters) L2-normalised.
    pub fn transform(&self, text: &str) -> SparseVec {
        let mut counts: HashMap<u32, f32> = HashMap::new();
        for term in analyze(text) {
            if let Some(&i) = self.index.get(&term) {
                *counts.entry(i).or_default() += 1.0;
            }
        }
        let mut pairs: Vec<(u32, f32)> = counts
            .into_iter()
            .map(|(i, tf)| (i, (1.0 + tf.ln()) * self.idf[i as usize]))
            .collect();
        pairs.sort_unstable_by_key(|p| p.0);
        // Word terms and character terms are normalised as two blocks (as two separate
        // TF-IDF vectorisers would be), so neither drowns the other.
        let mut norms = [0f32; 2];
        for &(i, v) in &pairs {
            norms[self.block(i)] += v * v;
        }
        let scales = norms.map(|n| if n > 0.0 { 1.0 / n.sqrt() } else { 0.0 });
        SparseVec {
            indices: pairs.iter().map(|p| p.0).collect(),
            values: pairs
                .iter()
                .map(|&(i, v)| v * scales[self.block(i)])
                .collect(),
        }
    }
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0xAC00..=0xD7AF | 0x20000..=0x2FA1F)
}

/// Splits normalised text into words: runs of letters/digits, and single CJK characters.
fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for c in text.chars() {
        if is_cjk(c) {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            out.push(c.to_string());
        } else if c.is_alphanumeric() || c == '\'' {
            cur.push(c);
        } else if !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// All terms of a text: word unigrams and bigrams (`w:`), character 2–5-grams inside padded
/// non-CJK words (`c:`), and CJK character trigrams (`c:`).
pub fn analyze(text: &str) -> Vec<String> {
    let clipped: String = text.chars().take(MAX_CHARS).collect();
    let norm: String = clipped.nfkc().flat_map(char::to_lowercase).collect();
    let ws = words(&norm);
    let mut terms = Vec::with_capacity(ws.len() * 8);
    for (i, w) in ws.iter().enumerate() {
        terms.push(format!("w:{w}"));
        if let Some(next) = ws.get(i + 1) {
            terms.push(format!("w:{w} {next}"));
        }
        let first = w.chars().next().unwrap_or(' ');
        if is_cjk(first) {
            if let (Some(b), Some(c)) = (ws.get(i + 1), ws.get(i + 2))
                && b.chars().all(is_cjk)
                && c.chars().all(is_cjk)
            {
                terms.push(format!("c:{w}{b}{c}"));
            }
        } else {
            let padded: Vec<char> = std::iter::once(' ')
                .chain(w.chars())
                .chain(std::iter::once(' '))
                .collect();
            for n in 2..=5 {
                for win in padded.windows(n) {
                    terms.push(format!("c:{}", win.iter().collect::<String>()));
                }
            }
        }
    }
    terms
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_characters_are_words_and_bigrams() {
        let terms = analyze("退款 refund");
        assert!(terms.contains(&"w:退".to_string()));
        assert!(terms.contains(&"w:退 款".to_string()));
        assert!(terms.contains(&"w:refund".to_string()));
        assert!(terms.contains(&"c: re".to_string()));
    }

    #[test]
    fn transform_is_unit_length_per_block_and_ignores_unknown_terms() {
        let v = Vectorizer::fit(&["where is my order", "where is my refund", "hello"], 1);
        let x = v.transform("Where is my ORDER?");
        let norm: f32 = x.values.iter().map(|v| v * v).sum();
        assert!((norm - 2.0).abs() < 1e-4, "{norm}");
        assert!(v.transform("zzzz qqqq").indices.is_empty());
        assert!(v.transform("").indices.is_empty());
    }
}
