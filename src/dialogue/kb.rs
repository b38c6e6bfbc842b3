//! The policy knowledge base: Markdown articles with TOML front matter (`kb/<lang>/*.md`),
//! answered by retrieval. Each article is scored by encoder similarity plus a lexical TF-IDF
//! similarity, with a bonus when the article is tagged with the message's intent; the bot
//! answers only above a bar.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::domain::Lang;
use crate::nlu::features::{SparseVec, Vectorizer};
use crate::nlu::{IntentClassifier, NluError};

/// One article.
#[derive(Debug, Clone, PartialEq)]
pub struct Article {
    pub id: String,
    pub title: String,
    pub lang: Lang,
    pub intents: Vec<String>,
    pub keywords: Vec<String>,
    /// Sample questions this article answers (matched by meaning).
    pub questions: Vec<String>,
    pub body: String,
}

impl Article {
    /// The first paragraph: a complete short answer by the KB's own rule.
    pub fn summary(&self) -> &str {
        self.body
            .split("\n\n")
            .map(str::trim)
            .find(|p| !p.is_empty())
            .unwrap_or("")
    }
}

/// Problems loading the knowledge base.
#[derive(Debug, thiserror::Error)]
pub enum KbError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {detail}")]
    Format { path: PathBuf, detail: String },
    #[error("embedding articles: {0}")]
    Embed(#[from] NluError),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FrontMatter {
    id: String,
    title: String,
    lang: String,
    #[serde(default)]
    intents: Vec<String>,
    #[serde(default)]
    keywords: Vec<String>,
    #[serde(default)]
    questions: Vec<String>,
}

/// Parses one article file.
pub fn parse_article(path: &Path, text: &str) -> Result<Article, KbError> {
    let fmt = |detail: &str| KbError::Format {
        path: path.to_path_buf(),
        detail: detail.to_string(),
    };
    let rest = text
        .trim_start()
        .strip_prefix("+++")
        .ok_or_else(|| fmt("missing +++ front matter"))?;
    let (front, body) = rest
        .split_once("\n+++")
        .ok_or_else(|| fmt("unterminated front matter"))?;
    let fm: FrontMatter = toml::from_str(front).map_err(|e| fmt(&e.to_string()))?;
    Ok(Article {
        id: fm.id,
        title: fm.title,
        lang: Lang::parse(&fm.lang).ok_or_else(|| fmt("lang must be en or zh"))?,
        intents: fm.intents,
        keywords: fm.keywords,
        questions: fm.questions,
        body: body.trim().to_string(),
    })
}

/// Reads every `*.md` under `dir` (recursively), skipping `README.md`.
pub fn load_dir(dir: &Path) -> Result<Vec<Article>, KbError> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|source| KbError::Read {
            path: d.clone(),
            source,
        })?;
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "md")
                && p.file_name().is_some_and(|n| n != "README.md")
            {
                files.push(p);
            }
        }
    }
    files.sort();
    files
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).map_err(|source| KbError::Read {
                path: p.clone(),
                source,
            })?;
            parse_article(p, &text)
        })
        .collect()
}

/// Weight of lexical similarity next to encoder similarity.
const LEXICAL_WEIGHT: f32 = 0.5;
/// Bonus for an article tagged with the message's intent.
const INTENT_BONUS: f32 = 0.3;
/// Least score the bot answers with.
pub const DEFAULT_MIN_SCORE: f32 = 1.0;

/// The indexed knowledge base.
pub struct KnowledgeBase {
    articles: Vec<Article>,
    /// Per article: the embeddings of its summary text and of each sample question.
    embeddings: Vec<Vec<Vec<f32>>>,
    lexical: Vectorizer,
    lexical_vecs: Vec<SparseVec>,
    min_score: f32,
}

/// A retrieved article.
#[derive(Debug, Clone)]
pub struct Hit<'a> {
    pub article: &'a Article,
    pub score: f32,
}

/// The texts an article is found by: its title with keywords and summary, then each sample
/// question.
fn index_texts(a: &Article) -> Vec<String> {
    std::iter::once(format!(
        "{}\n{}\n{}",
        a.title,
        a.keywords.join(", "),
        a.summary()
    ))
    .chain(a.questions.iter().cloned())
    .collect()
}

impl KnowledgeBase {
    /// Indexes articles, embedding them with the classifier's encoder.
    pub async fn build(
        articles: Vec<Article>,
        classifier: &dyn IntentClassifier,
        min_score: f32,
    ) -> Result<Self, KbError> {
        let per_article: Vec<Vec<String>> = articles.iter().map(index_texts).collect();
        let mut vectors = classifier
            .classify(per_article.iter().flatten().cloned().collect())
            .await?
            .into_iter()
            .map(|c| c.embedding);
        let embeddings = per_article
            .iter()
            .map(|texts| vectors.by_ref().take(texts.len()).collect())
            .collect();
        let lexical_texts: Vec<String> = per_article.iter().map(|t| t.join("\n")).collect();
        let refs: Vec<&str> = lexical_texts.iter().map(String::as_str).collect();
        let lexical = Vectorizer::fit(&refs, 1);
        let lexical_vecs = refs.iter().map(|t| lexical.transform(t)).collect();
        Ok(Self {
            articles,
            embeddings,
            lexical,
            lexical_vecs,
            min_score,
        })
    }

    pub fn len(&self) -> usize {
        self.articles.len()
    }

    pub fn is_empty(&self) -> bool {
        self.articles.is_empty()
    }

    /// The best article in `lang` for a message, if it clears the bar.
    pub fn answer(
        &self,
        text: &str,
        embedding: &[f32],
        intent: &str,
        lang: Lang,
    ) -> Option<Hit<'_>> {
        self.rank(text, embedding, intent, lang)
            .into_iter()
            .next()
            .filter(|h| h.score >= self.min_score)
    }

    /// All articles in `lang`, best first.
    pub fn rank(&self, text: &str, embedding: &[f32], intent: &str, lang: Lang) -> Vec<Hit<'_>> {
        let q = self.lexical.transform(text);
        let mut hits: Vec<Hit> = self
            .articles
            .iter()
            .enumerate()
            .filter(|(_, a)| a.lang == lang)
            .map(|(i, a)| {
                let dense = self.embeddings[i]
                    .iter()
                    .map(|e| e.iter().zip(embedding).map(|(x, y)| x * y).sum::<f32>())
                    .fold(f32::NEG_INFINITY, f32::max);
                let lexical = sparse_dot(&q, &self.lexical_vecs[i]);
                let bonus = if a.intents.iter().any(|x| x == intent) {
                    INTENT_BONUS
                } else {
                    0.0
                };
                Hit {
                    article: a,
                    score: dense + LEXICAL_WEIGHT * lexical + bonus,
                }
            })
            .collect();
        hits.sort_by(|a, b| b.score.total_cmp(&a.score));
        hits
    }
}

fn sparse_dot(a: &SparseVec, b: &SparseVec) -> f32 {
    let (mut i, mut j, mut s) = (0, 0, 0.0);
    while i < a.indices.len() && j < b.indices.len() {
        match a.indices[i].cmp(&b.indices[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                s += a.values[i] * b.values[j];
                i += 1;
                j += 1;
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_front_matter_and_summary() {
        let a = parse_article(
            Path::new("x.md"),
            "+++\nid = \"r\"\ntitle = \"Returns\"\nlang = \"en\"\nintents = [\"refund_policy\"]\n+++\nFirst para.\nStill first.\n\nSecond.",
        )
        .unwrap();
        assert_eq!(a.summary(), "First para.\nStill first.");
        assert_eq!(a.lang, Lang::En);
        assert!(parse_article(Path::new("x.md"), "no front matter").is_err());
        assert!(parse_article(Path::new("x.md"), "+++\nid = 1\n+++\n").is_err());
    }

    #[test]
    fn the_repository_kb_parses() {
        let articles = load_dir(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/kb"))).unwrap();
        assert!(articles.iter().filter(|a| a.lang == Lang::Zh).count() >= 10);
        assert!(articles.iter().filter(|a| a.lang == Lang::En).count() >= 10);
    }
}
