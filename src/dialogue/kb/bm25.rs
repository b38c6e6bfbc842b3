//! Lexical retrieval: Okapi BM25 over words (English, lower-cased, light plural stemming,
//! stop words dropped) and Chinese character unigrams and bigrams, so that "关税谁付" meets
//! "关税" without a word segmenter.

use std::collections::HashMap;

/// Term-frequency saturation.
const K1: f32 = 1.2;
/// Length normalisation.
const B: f32 = 0.75;

const EN_STOP: &[&str] = &[
    "a", "an", "the", "is", "are", "was", "were", "be", "been", "do", "does", "did", "i", "me",
    "my", "you", "your", "we", "our", "us", "it", "its", "to", "of", "in", "on", "for", "and",
    "or", "can", "could", "will", "would", "should", "there", "this", "that", "with", "what",
    "how", "if", "at", "by", "from", "have", "has", "had", "any", "so", "just", "about", "am",
    "get", "got", "please", "pls", "hi", "hello", "they", "them", "then", "than", "as", "into",
    "which", "when", "where", "who", "why", "yes", "no", "not", "some", "much", "many",
];

/// Chinese characters too common to tell passages apart.
const ZH_STOP: &[char] = &[
    '的', '了', '吗', '呢', '吧', '啊', '呀', '我', '你', '您', '是', '在', '有', '和', '就', '都',
    '也', '要', '会', '可', '以', '个', '这', '那', '么', '什', '怎', '请', '问', '一', '下', '嘛',
    '哦', '还', '能', '不', '没', '给', '把', '被', '让', '对', '说', '多', '少',
];

fn is_cjk(c: char) -> bool {
    ('\u{4e00}'..='\u{9fff}').contains(&c) || ('\u{3400}'..='\u{4dbf}').contains(&c)
}

fn stem(word: &str) -> String {
    let w = word.trim_matches('\'');
    let w = w.strip_suffix("'s").unwrap_or(w);
    if w.len() > 4 && w.ends_with("ies") {
        format!("{}y", &w[..w.len() - 3])
    } else if w.len() > 3 && w.ends_with('s') && !w.ends_with("ss") && !w.ends_with("us") {
        w[..w.len() - 1].to_string()
    } else {
        w.to_string()
    }
}

/// The terms of a text: English words and numbers, Chinese unigrams and bigrams.
pub fn terms(text: &str) -> Vec<String> {
    let lower = text.to_lowercase();
    let mut out = Vec::new();
    let mut word = String::new();
    let mut run: Vec<char> = Vec::new();
    let flush_word = |word: &mut String, out: &mut Vec<String>| {
        if !word.is_empty() {
            let w = stem(word);
            if !w.is_empty() && !EN_STOP.contains(&w.as_str()) && !EN_STOP.contains(&word.as_str())
            {
                out.push(w);
            }
            word.clear();
        }
    };
    let flush_run = |run: &mut Vec<char>, out: &mut Vec<String>| {
        for (i, &c) in run.iter().enumerate() {
            if !ZH_STOP.contains(&c) {
                out.push(c.to_string());
            }
            if let Some(&next) = run.get(i + 1) {
                out.push(format!("{c}{next}"));
            }
        }
        run.clear();
    };
    for c in lower.chars() {
        if is_cjk(c) {
            flush_word(&mut word, &mut out);
            run.push(c);
        } else if c.is_alphanumeric() || (c == '\'' && !word.is_empty()) {
            flush_run(&mut run, &mut out);
            word.push(c);
        } else {
            flush_word(&mut word, &mut out);
            flush_run(&mut run, &mut out);
        }
    }
    flush_word(&mut word, &mut out);
    flush_run(&mut run, &mut out);
    out
}

/// A BM25 index over a fixed set of documents.
#[derive(Debug, Clone)]
pub struct Bm25 {
    /// Per document: term → count.
    docs: Vec<HashMap<String, f32>>,
    lens: Vec<f32>,
    avg_len: f32,
    idf: HashMap<String, f32>,
}

impl Bm25 {
    pub fn new(texts: &[String]) -> Self {
        let docs: Vec<HashMap<String, f32>> = texts
            .iter()
            .map(|t| {
                let mut m = HashMap::new();
                for term in terms(t) {
                    *m.entry(term).or_insert(0.0) += 1.0;
                }
                m
            })
            .collect();
        let lens: Vec<f32> = docs.iter().map(|d| d.values().sum()).collect();
        let avg_len = (lens.iter().sum::<f32>() / lens.len().max(1) as f32).max(1.0);
        let mut df: HashMap<String, f32> = HashMap::new();
        for d in &docs {
            for term in d.keys() {
                *df.entry(term.clone()).or_insert(0.0) += 1.0;
            }
        }
        let n = docs.len() as f32;
        let idf = df
            .into_iter()
            .map(|(t, f)| (t, ((n - f + 0.5) / (f + 0.5) + 1.0).ln()))
            .collect();
        Self {
            docs,
            lens,
            avg_len,
            idf,
        }
    }

    /// BM25 score of every document for `query`, in document order, and the share of the
    /// query's known term weight (idf) each document contains, in [0, 1].
    pub fn score(&self, query: &str) -> Vec<(f32, f32)> {
        let mut q = terms(query);
        q.sort();
        q.dedup();
        let q: Vec<(&String, f32)> = q
            .iter()
            .filter_map(|t| self.idf.get(t).map(|&w| (t, w)))
            .collect();
        let total: f32 = q.iter().map(|(_, w)| w).sum();
        self.docs
            .iter()
            .zip(&self.lens)
            .map(|(d, &len)| {
                let mut score = 0.0;
                let mut covered = 0.0;
                for &(t, idf) in &q {
                    if let Some(&tf) = d.get(t) {
                        score +=
                            idf * tf * (K1 + 1.0) / (tf + K1 * (1.0 - B + B * len / self.avg_len));
                        covered += idf;
                    }
                }
                let coverage = if total > 0.0 { covered / total } else { 0.0 };
                (score, coverage)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_cover_words_and_cjk_ngrams() {
        assert_eq!(
            terms("Who pays the return shipping?"),
            vec!["pay", "return", "shipping"]
        );
        assert_eq!(
            terms("关税谁付"),
            vec!["关", "关税", "税", "税谁", "谁", "谁付", "付"]
        );
        assert_eq!(terms("DHL的运费"), vec!["dhl", "的运", "运", "运费", "费"]);
    }

    #[test]
    fn ranks_the_document_with_the_rare_term_first() {
        let docs = vec![
            "shipping is free over 99".to_string(),
            "customs duties are paid at checkout".to_string(),
            "returns within 30 days, shipping paid by us".to_string(),
        ];
        let index = Bm25::new(&docs);
        let s = index.score("do I pay customs duties");
        assert!(s[1].0 > s[0].0 && s[1].0 > s[2].0);
        assert!(s[1].1 > s[2].1 && s[1].1 > 0.5);
        assert_eq!(s[0].0, 0.0);
    }
}
