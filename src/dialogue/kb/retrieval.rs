//! Passage retrieval. A passage's score is a weighted sum of its [`PARTS`]: article parts — the
//! best encoder similarity of any of the article's passages, the best similarity to the
//! article's sample questions, the best BM25 match ([`super::bm25`], normalised per message)
//! and whether the article is tagged with the message's intent — and passage parts: the
//! encoder similarity of the passage with and without its article title, the share of the
//! message's terms it holds, and the best similarity to the passage's own sample questions
//! (written per passage in the article's front matter; they carry most of the choice between
//! passages of one article). multilingual-e5's asymmetric prompts are used: `query: ` for the
//! message and the sample questions, `passage: ` for passages. This linear fusion of scores
//! ranked better than reciprocal-rank fusion on the validation questions: ranks throw away how
//! far ahead the best passage is. The top passage then gets a calibrated score, the
//! probability that it answers the message, from a logistic model over its score, the intent
//! match, its term coverage and its margin over the runner-up; the bot answers only at or above
//! the bar. The weights are chosen on the validation half of `kb/eval.jsonl` by
//! `scripts/kb_weights.py` (from `switchboard eval-kb --dump`), calibration and bar by
//! `switchboard eval-kb`.

use std::collections::HashMap;

use super::bm25::Bm25;
use super::cache::PassageCache;
use super::passages::{self, Passage, plain};
use super::{Article, KbError};
use crate::domain::Lang;
use crate::nlu::{IntentClassifier, kernels};

/// The parts a passage's fused score adds up, in the order of [`WEIGHTS`]: the article's best
/// passage similarity, its best sample-question similarity, its best BM25 match (normalised per
/// message), whether it is tagged with the message's intent; the passage's own similarity with
/// and without its title, the share of the message's terms it holds and its best sample-question
/// similarity.
pub const PARTS: [&str; 8] = [
    "article_dense",
    "article_questions",
    "article_lexical",
    "intent",
    "passage_titled",
    "passage_bare",
    "coverage",
    "passage_questions",
];

/// Weights of the fused score's [`PARTS`], chosen on the validation questions (see the module
/// doc; `switchboard eval-kb --dump` writes every part for offline study).
pub const WEIGHTS: [f32; 8] = [1.5, 1.0, 0.05, 0.02, 0.0, 0.2, 0.05, 0.5];

/// Logistic calibration of the top passage: bias, fused score, intent match, term coverage,
/// margin over the runner-up. Fitted by `switchboard eval-kb` on the validation questions.
pub const CALIBRATION: [f32; 5] = [-58.947, 20.257, 0.738, -0.954, 30.699];
/// Least calibrated score the bot answers with, chosen by `switchboard eval-kb` on the
/// validation questions (no unanswerable question within 0.05 of it, precision at least 0.9).
pub const DEFAULT_MIN_SCORE: f32 = 0.788;

/// A passage of an article, ready to rank.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Index into the knowledge base's articles.
    pub article: usize,
    pub passage: Passage,
}

/// What retrieval needs of a message: its text, its (query-prompted) embedding, the intent the
/// classifier gave it and the language to answer in.
#[derive(Debug, Clone, Copy)]
pub struct Query<'a> {
    pub text: &'a str,
    pub embedding: &'a [f32],
    pub intent: &'a str,
    pub lang: Lang,
}

/// A ranked passage.
#[derive(Debug, Clone)]
pub struct PassageHit<'a> {
    pub article: &'a Article,
    pub passage: &'a Passage,
    /// Index into the knowledge base's passages.
    pub entry: usize,
    /// The fused score the ranking sorts by.
    pub fused: f32,
    /// Its parts, unweighted (see [`PARTS`]).
    pub parts: [f32; 8],
    /// Share of the message's term weight found in the passage.
    pub coverage: f32,
    pub intent_match: bool,
    /// How far the fused score is ahead of the next passage (0 below the top).
    pub margin: f32,
}

impl PassageHit<'_> {
    /// `article#passage`, the form used in route reasons and the evaluation set.
    pub fn key(&self) -> String {
        format!("{}#{}", self.article.id, self.passage.index)
    }

    /// The calibration's inputs: fused score, intent match, coverage, margin.
    pub fn features(&self) -> [f32; 4] {
        [
            self.fused,
            f32::from(u8::from(self.intent_match)),
            self.coverage,
            self.margin,
        ]
    }

    /// Probability that this passage answers the message.
    pub fn calibrated(&self, w: &[f32; 5]) -> f32 {
        logistic(w, &self.features())
    }
}

/// `1 / (1 + e^-(w0 + w·x))`.
pub fn logistic(w: &[f32; 5], x: &[f32; 4]) -> f32 {
    let z = w[0] + w[1..].iter().zip(x).map(|(a, b)| a * b).sum::<f32>();
    1.0 / (1.0 + (-z).exp())
}

/// The indexed knowledge base.
pub struct KnowledgeBase {
    pub(super) articles: Vec<Article>,
    pub(super) entries: Vec<Entry>,
    /// Per language: its passages' vectors and lexical index.
    lines: HashMap<Lang, Lines>,
    pub(super) min_score: f32,
    pub(super) calibration: [f32; 5],
    weights: [f32; 8],
}

/// One language's passages, their vectors stacked as matrices (one row each), so that each
/// part of a message's score is one matrix-vector product.
struct Lines {
    /// Entries in this language.
    ids: Vec<usize>,
    bm25: Bm25,
    /// Per passage (the order of `ids`): embedded with its article title, and without.
    titled: Vec<f32>,
    bare: Vec<f32>,
    /// The passages' own sample questions, embedded as queries, and the passage (position in
    /// `ids`) each belongs to.
    own_questions: Vec<f32>,
    own_owner: Vec<usize>,
    /// Per passage: its article (position in `articles`).
    article_of: Vec<usize>,
    /// The articles in this language (indices into the knowledge base's articles).
    articles: Vec<usize>,
    /// The articles' sample questions, embedded as queries, and their article (position in
    /// `articles`).
    article_questions: Vec<f32>,
    article_question_owner: Vec<usize>,
}

/// `rows · query` for each row, with the rows' maximum per owner (at least `floor`).
fn best_per_owner(
    rows: &[f32],
    owner: &[usize],
    query: &[f32],
    owners: usize,
    floor: f32,
) -> Vec<f32> {
    let mut scores = vec![0.0; owner.len()];
    kernels::dot_rows(rows, query, &mut scores);
    let mut best = vec![floor; owners];
    for (&o, s) in owner.iter().zip(scores) {
        best[o] = best[o].max(s);
    }
    best
}

/// A passage as embedded: without the title (the passage itself) and with it (which often
/// holds the words a shopper uses: "customs", "return shipping").
fn texts(a: &Article, p: &Passage) -> (String, String) {
    let bare = plain(&p.display());
    (format!("{}. {bare}", a.title), bare)
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Vectors for `texts` grouped per article, from the cache where possible; the rest are
/// computed in one call of `embed` and stored.
async fn cached_vectors<F, Fut>(
    cache: &PassageCache,
    version: &str,
    groups: &[Vec<String>],
    embed: F,
) -> Result<Vec<Vec<Vec<f32>>>, KbError>
where
    F: FnOnce(Vec<String>) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<Vec<f32>>, crate::nlu::NluError>>,
{
    let paths: Vec<_> = groups.iter().map(|g| cache.path(version, g)).collect();
    let mut out: Vec<Option<Vec<Vec<f32>>>> = groups
        .iter()
        .zip(&paths)
        .map(|(g, p)| {
            if g.is_empty() {
                Some(Vec::new())
            } else {
                cache.load(p, g.len())
            }
        })
        .collect();
    let missing: Vec<usize> = (0..groups.len()).filter(|&i| out[i].is_none()).collect();
    if !missing.is_empty() {
        let texts: Vec<String> = missing.iter().flat_map(|&i| groups[i].clone()).collect();
        let mut fresh = embed(texts).await?.into_iter();
        for &i in &missing {
            let v: Vec<Vec<f32>> = fresh.by_ref().take(groups[i].len()).collect();
            cache.store(&paths[i], &v);
            out[i] = Some(v);
        }
    }
    tracing::debug!(
        groups = groups.len(),
        embedded = missing.len(),
        "kb vectors"
    );
    Ok(out.into_iter().map(Option::unwrap_or_default).collect())
}

impl KnowledgeBase {
    /// Indexes articles, embedding passages with the classifier's encoder; vectors of unchanged
    /// articles come from the default cache.
    pub async fn build(
        articles: Vec<Article>,
        classifier: &dyn IntentClassifier,
        min_score: f32,
    ) -> Result<Self, KbError> {
        Self::build_with_cache(
            articles,
            classifier,
            min_score,
            &PassageCache::default_location(),
        )
        .await
    }

    /// [`KnowledgeBase::build`] with a given cache folder.
    pub async fn build_with_cache(
        articles: Vec<Article>,
        classifier: &dyn IntentClassifier,
        min_score: f32,
        cache: &PassageCache,
    ) -> Result<Self, KbError> {
        let version = classifier.embedding_version();
        let mut entries = Vec::new();
        let mut titled_texts: Vec<Vec<String>> = Vec::new();
        let mut bare_texts: Vec<Vec<String>> = Vec::new();
        for (i, a) in articles.iter().enumerate() {
            let split = passages::split(&a.body);
            let (t, b): (Vec<String>, Vec<String>) = split.iter().map(|p| texts(a, p)).unzip();
            titled_texts.push(t);
            bare_texts.push(b);
            entries.extend(split.into_iter().map(|passage| Entry {
                article: i,
                passage,
            }));
        }
        let embed = |texts| classifier.embed_passages(texts);
        let titled = cached_vectors(cache, &version, &titled_texts, embed).await?;
        let bare = cached_vectors(cache, &version, &bare_texts, embed).await?;
        let question_texts: Vec<Vec<String>> =
            articles.iter().map(|a| a.questions.clone()).collect();
        let embed_queries = |texts: Vec<String>| async move {
            Ok(classifier
                .classify(texts)
                .await?
                .into_iter()
                .map(|c| c.embedding)
                .collect())
        };
        let questions = cached_vectors(
            cache,
            &format!("{version}|query"),
            &question_texts,
            embed_queries,
        )
        .await?;
        // Passage questions are cached per article, then dealt out to its passages.
        let passage_question_texts: Vec<Vec<String>> = articles
            .iter()
            .map(|a| a.passage_questions.iter().flatten().cloned().collect())
            .collect();
        let per_article = cached_vectors(
            cache,
            &format!("{version}|query"),
            &passage_question_texts,
            embed_queries,
        )
        .await?;
        // Passage questions were embedded per article: deal them out to the passages.
        let mut per_article: Vec<_> = per_article.into_iter().map(Vec::into_iter).collect();
        let passage_questions: Vec<Vec<Vec<f32>>> = entries
            .iter()
            .map(|e| {
                let n = articles[e.article]
                    .passage_questions
                    .get(e.passage.index)
                    .map_or(0, Vec::len);
                per_article[e.article].by_ref().take(n).collect()
            })
            .collect();
        tracing::info!(
            articles = articles.len(),
            passages = entries.len(),
            "knowledge base indexed"
        );
        let titled: Vec<Vec<f32>> = titled.into_iter().flatten().collect();
        let bare: Vec<Vec<f32>> = bare.into_iter().flatten().collect();
        let flat_titled: Vec<&String> = titled_texts.iter().flatten().collect();
        let mut by_lang: HashMap<Lang, Vec<usize>> = HashMap::new();
        for (i, e) in entries.iter().enumerate() {
            by_lang.entry(articles[e.article].lang).or_default().push(i);
        }
        let lines = by_lang
            .into_iter()
            .map(|(lang, ids)| {
                let texts: Vec<String> = ids
                    .iter()
                    .map(|&i| {
                        let a = &articles[entries[i].article];
                        format!("{} {}", flat_titled[i], a.keywords.join(" "))
                    })
                    .collect();
                let mut lines = Lines {
                    bm25: Bm25::new(&texts),
                    titled: ids
                        .iter()
                        .flat_map(|&i| titled[i].iter().copied())
                        .collect(),
                    bare: ids.iter().flat_map(|&i| bare[i].iter().copied()).collect(),
                    own_questions: Vec::new(),
                    own_owner: Vec::new(),
                    article_of: Vec::with_capacity(ids.len()),
                    articles: Vec::new(),
                    article_questions: Vec::new(),
                    article_question_owner: Vec::new(),
                    ids,
                };
                for (j, &i) in lines.ids.iter().enumerate() {
                    for v in &passage_questions[i] {
                        lines.own_questions.extend_from_slice(v);
                        lines.own_owner.push(j);
                    }
                    let a = entries[i].article;
                    let k = match lines.articles.iter().position(|&x| x == a) {
                        Some(k) => k,
                        None => {
                            for v in &questions[a] {
                                lines.article_questions.extend_from_slice(v);
                                lines.article_question_owner.push(lines.articles.len());
                            }
                            lines.articles.push(a);
                            lines.articles.len() - 1
                        }
                    };
                    lines.article_of.push(k);
                }
                (lang, lines)
            })
            .collect();
        Ok(Self {
            articles,
            entries,
            lines,
            min_score,
            calibration: CALIBRATION,
            weights: WEIGHTS,
        })
    }

    /// Number of articles.
    pub fn len(&self) -> usize {
        self.articles.len()
    }

    pub fn is_empty(&self) -> bool {
        self.articles.is_empty()
    }

    pub fn articles(&self) -> &[Article] {
        &self.articles
    }

    /// Number of passages.
    pub fn passage_count(&self) -> usize {
        self.entries.len()
    }

    /// The bar in use.
    pub fn min_score(&self) -> f32 {
        self.min_score
    }

    /// Replaces the calibration and bar (evaluation of other settings).
    pub fn set_calibration(&mut self, weights: [f32; 5], min_score: f32) {
        self.calibration = weights;
        self.min_score = min_score;
    }

    pub fn calibration(&self) -> [f32; 5] {
        self.calibration
    }

    /// Replaces the fusion weights (evaluation of other settings).
    pub fn set_weights(&mut self, weights: [f32; 8]) {
        self.weights = weights;
    }

    pub fn weights(&self) -> [f32; 8] {
        self.weights
    }

    /// The passage at `entry` with its article.
    pub fn entry(&self, entry: usize) -> (&Article, &Passage) {
        let e = &self.entries[entry];
        (&self.articles[e.article], &e.passage)
    }

    /// The passage of `article` that `selector` names: the first with that heading, else the
    /// first that [`Passage::matches`] it.
    pub fn find(&self, article: &str, lang: Lang, selector: &str) -> Option<usize> {
        let of_article = |e: &Entry| {
            let a = &self.articles[e.article];
            a.id == article && a.lang == lang
        };
        self.entries
            .iter()
            .position(|e| of_article(e) && e.passage.has_heading(selector))
            .or_else(|| {
                self.entries
                    .iter()
                    .position(|e| of_article(e) && e.passage.matches(selector))
            })
    }

    /// Every passage in the query's language, best first.
    pub fn rank(&self, q: &Query<'_>) -> Vec<PassageHit<'_>> {
        let Some(lines) = self.lines.get(&q.lang) else {
            return Vec::new();
        };
        let n = lines.ids.len();
        if lines.titled.len() != n * q.embedding.len() {
            return Vec::new();
        }
        let lexical = lines.bm25.score(q.text);
        let best_lexical = lexical.iter().map(|s| s.0).fold(0.0, f32::max) + 1e-9;
        let mut titled = vec![0.0; n];
        kernels::dot_rows(&lines.titled, q.embedding, &mut titled);
        let mut bare = vec![0.0; n];
        kernels::dot_rows(&lines.bare, q.embedding, &mut bare);
        let own = best_per_owner(&lines.own_questions, &lines.own_owner, q.embedding, n, 0.0);
        let na = lines.articles.len();
        let article_questions = best_per_owner(
            &lines.article_questions,
            &lines.article_question_owner,
            q.embedding,
            na,
            0.0,
        );
        // Article parts: the best encoder and lexical match of any of the article's passages.
        let mut article_dense = vec![f32::NEG_INFINITY; na];
        let mut article_lexical = vec![0.0f32; na];
        for j in 0..n {
            let k = lines.article_of[j];
            article_dense[k] = article_dense[k].max(titled[j]);
            article_lexical[k] = article_lexical[k].max(lexical[j].0 / best_lexical);
        }
        let mut hits: Vec<PassageHit> = lines
            .ids
            .iter()
            .enumerate()
            .map(|(j, &i)| {
                let e = &self.entries[i];
                let article = &self.articles[e.article];
                let intent_match = article.intents.iter().any(|x| x == q.intent);
                let k = lines.article_of[j];
                let parts = [
                    article_dense[k],
                    article_questions[k],
                    article_lexical[k],
                    f32::from(u8::from(intent_match)),
                    titled[j],
                    bare[j],
                    lexical[j].1,
                    own[j],
                ];
                let fused = dot(&parts, &self.weights);
                PassageHit {
                    article,
                    passage: &e.passage,
                    entry: i,
                    fused,
                    parts,
                    coverage: lexical[j].1,
                    intent_match,
                    margin: 0.0,
                }
            })
            .collect();
        hits.sort_by(|a, b| b.fused.total_cmp(&a.fused).then(a.entry.cmp(&b.entry)));
        if hits.len() > 1 {
            hits[0].margin = hits[0].fused - hits[1].fused;
        }
        hits
    }
}
