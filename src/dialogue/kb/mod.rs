//! The policy knowledge base: Markdown articles with TOML front matter (`kb/<lang>/*.md`),
//! split into passages ([`passages`]) and answered passage by passage ([`retrieval`]: encoder
//! similarity fused with BM25 ([`bm25`]), a calibrated score and an answer bar). Passage
//! vectors are cached per article ([`cache`]); [`answer`] turns a hit into the shopper's reply
//! (tier-aware, with a "more about" offer); [`eval`] measures retrieval on `kb/eval.jsonl`.

pub mod answer;
pub mod bm25;
pub mod cache;
pub mod eval;
pub mod passages;
pub mod retrieval;

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::domain::{Lang, Tier};
use crate::nlu::NluError;

pub use answer::{KbAnswer, Lookup, policy_question};
pub use retrieval::{DEFAULT_MIN_SCORE, KnowledgeBase, PassageHit, Query};

/// A sentence added to an answer for customers of certain tiers, e.g. "As a VIP member you
/// have 45 days…" where the article states the rule for every tier.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierNote {
    /// Tiers the note is for.
    pub tiers: Vec<Tier>,
    /// The passage it belongs to (see [`passages::Passage::matches`]).
    pub passage: String,
    /// The sentence; `{tier}` is replaced by the tier's name in the article's language.
    pub note: String,
}

/// Sample questions for one passage: what shoppers ask that this passage answers.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PassageQuestions {
    /// The passage (see [`passages::Passage::matches`]; a heading is preferred).
    pub passage: String,
    pub questions: Vec<String>,
}

/// One article.
#[derive(Debug, Clone, PartialEq)]
pub struct Article {
    pub id: String,
    pub title: String,
    pub lang: Lang,
    pub intents: Vec<String>,
    pub keywords: Vec<String>,
    /// Sample questions this article answers.
    pub questions: Vec<String>,
    /// Per passage (by index): sample questions that passage answers.
    pub passage_questions: Vec<Vec<String>>,
    pub tier_notes: Vec<TierNote>,
    pub body: String,
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
    #[error("embedding passages: {0}")]
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
    #[serde(default)]
    tier_notes: Vec<TierNote>,
    #[serde(default)]
    passage_questions: Vec<PassageQuestions>,
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
    let split = passages::split(body.trim());
    let mut passage_questions = vec![Vec::new(); split.len()];
    for pq in &fm.passage_questions {
        let p = split
            .iter()
            .find(|p| p.has_heading(&pq.passage))
            .or_else(|| split.iter().find(|p| p.matches(&pq.passage)))
            .ok_or_else(|| fmt(&format!("questions for {:?} name no passage", pq.passage)))?;
        passage_questions[p.index].extend(pq.questions.iter().cloned());
    }
    let article = Article {
        id: fm.id,
        title: fm.title,
        lang: Lang::parse(&fm.lang).ok_or_else(|| fmt("lang must be en or zh"))?,
        intents: fm.intents,
        keywords: fm.keywords,
        questions: fm.questions,
        passage_questions,
        tier_notes: fm.tier_notes,
        body: body.trim().to_string(),
    };
    for note in &article.tier_notes {
        if !split.iter().any(|p| p.matches(&note.passage)) {
            return Err(fmt(&format!(
                "tier note for {:?} names no passage",
                note.passage
            )));
        }
    }
    Ok(article)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_front_matter_and_tier_notes() {
        let a = parse_article(
            Path::new("x.md"),
            "+++\nid = \"r\"\ntitle = \"Returns\"\nlang = \"en\"\nintents = [\"refund_policy\"]\n[[tier_notes]]\ntiers = [\"vip\"]\npassage = \"45 days\"\nnote = \"As a {tier} member you have 45 days.\"\n+++\nFirst para. VIP members have 45 days.\n\nSecond.",
        )
        .unwrap();
        assert_eq!(a.lang, Lang::En);
        assert_eq!(a.tier_notes[0].tiers, vec![Tier::Vip]);
        assert!(parse_article(Path::new("x.md"), "no front matter").is_err());
        assert!(parse_article(Path::new("x.md"), "+++\nid = 1\n+++\n").is_err());
        let dangling = "+++\nid = \"r\"\ntitle = \"R\"\nlang = \"en\"\n[[tier_notes]]\ntiers = [\"vip\"]\npassage = \"nowhere\"\nnote = \"x\"\n+++\nBody.";
        assert!(parse_article(Path::new("x.md"), dangling).is_err());
    }

    #[test]
    fn passage_questions_attach_to_the_passage_they_name() {
        let text = "+++\nid = \"r\"\ntitle = \"R\"\nlang = \"en\"\n[[passage_questions]]\npassage = \"Return shipping\"\nquestions = [\"who pays postage\"]\n[[passage_questions]]\npassage = \"30 days\"\nquestions = [\"how long\", \"deadline\"]\n+++\nReturn within 30 days.\n\n**Return shipping:** free if faulty.\n\nLast.";
        let a = parse_article(Path::new("x.md"), text).unwrap();
        assert_eq!(
            a.passage_questions,
            vec![
                vec!["how long".to_string(), "deadline".to_string()],
                vec!["who pays postage".to_string()],
                vec![],
            ]
        );
        let dangling = text.replace("passage = \"30 days\"", "passage = \"nowhere\"");
        assert!(parse_article(Path::new("x.md"), &dangling).is_err());
    }

    #[test]
    fn the_repository_kb_parses_into_passages() {
        let articles = load_dir(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/kb"))).unwrap();
        assert!(articles.iter().filter(|a| a.lang == Lang::Zh).count() >= 10);
        assert!(articles.iter().filter(|a| a.lang == Lang::En).count() >= 10);
        for a in &articles {
            let p = passages::split(&a.body);
            assert!(p.len() >= 2, "{} has {} passages", a.id, p.len());
            assert!(p.iter().all(|p| !p.text.trim().is_empty()), "{}", a.id);
            for p in &p {
                assert!(
                    a.passage_questions
                        .get(p.index)
                        .is_some_and(|q| !q.is_empty()),
                    "{} ({}) #{} has no sample questions",
                    a.id,
                    a.lang.as_str(),
                    p.index
                );
            }
        }
    }
}
