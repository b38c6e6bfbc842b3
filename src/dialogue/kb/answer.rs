//! From retrieval to a reply: the best passage (with its neighbour when the answer runs over
//! two), titled with its article, a tier-specific sentence where the article distinguishes
//! customer groups, and a "more about" offer; or, below the bar, the two closest topics to
//! choose from. Also decides when a question routed to a human-only intent is really a general
//! policy question the knowledge base may answer.

use super::passages::Passage;
use super::retrieval::{KnowledgeBase, PassageHit, Query};
use super::{Article, TierNote};
use crate::domain::{Lang, Tier};

/// The runner-up passage is shown too when it is the top one's neighbour in the article and
/// scores at least this share of its fused score: the answer spans both.
const NEIGHBOUR_SHARE: f32 = 0.85;

/// A reply from the knowledge base.
#[derive(Debug, Clone, PartialEq)]
pub struct KbAnswer {
    pub article_id: String,
    /// The passage answered with (the first, when two are shown).
    pub passage: usize,
    pub reply: String,
    /// `faq:<article>#<passage>`.
    pub reason: String,
    pub quick_replies: Vec<String>,
    /// Calibrated score of the top passage (1.0 for an explicit "more about").
    pub score: f32,
}

/// What the knowledge base says about a message.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    Answer(KbAnswer),
    /// Nothing clears the bar; the titles of the two closest articles.
    Unsure {
        topics: Vec<String>,
    },
}

fn tier_name(tier: Tier, lang: Lang) -> &'static str {
    match (tier, lang) {
        (Tier::Vip, _) => "VIP",
        (Tier::Gold, Lang::En) => "Gold",
        (Tier::Gold, Lang::Zh) => "金卡",
        (Tier::Silver, Lang::En) => "Silver",
        (Tier::Silver, Lang::Zh) => "银卡",
        (Tier::Standard, Lang::En) => "standard",
        (Tier::Standard, Lang::Zh) => "普通",
    }
}

/// The quick reply that asks for a whole article.
pub fn more_about(title: &str, lang: Lang) -> String {
    match lang {
        Lang::En => format!("More about {title}"),
        Lang::Zh => format!("了解更多：{title}"),
    }
}

/// A clarifying question offering the closest topics; `None` without topics.
pub fn clarify_with_topics(topics: &[String], lang: Lang) -> Option<String> {
    let text = match (topics, lang) {
        ([a, b, ..], Lang::En) => format!(
            "Sorry, I'm not sure I understood. Is your question about {a} or {b}? Pick one, or tell me a bit more."
        ),
        ([a, b, ..], Lang::Zh) => {
            format!(
                "抱歉，我不太确定您的意思。您是想了解“{a}”还是“{b}”？请选择一个，或者换个说法告诉我。"
            )
        }
        ([a], Lang::En) => format!(
            "Sorry, I'm not sure I understood. Is your question about {a}? Or tell me a bit more."
        ),
        ([a], Lang::Zh) => {
            format!("抱歉，我不太确定您的意思。您是想了解“{a}”吗？也可以换个说法告诉我。")
        }
        ([], _) => return None,
    };
    Some(text)
}

fn offer(title: &str, lang: Lang) -> String {
    match lang {
        Lang::En => format!("Reply \"More about {title}\" for the full article."),
        Lang::Zh => format!("回复“了解更多：{title}”查看完整说明。"),
    }
}

fn notes_for<'a>(notes: &'a [TierNote], shown: &[&Passage], tier: Tier) -> Vec<&'a TierNote> {
    notes
        .iter()
        .filter(|n| n.tiers.contains(&tier) && shown.iter().any(|p| p.matches(&n.passage)))
        .collect()
}

/// The reply text for passages of one article.
fn compose(article: &Article, shown: &[&Passage], tier: Tier, whole: bool) -> String {
    let mut parts = vec![article.title.clone()];
    for note in notes_for(&article.tier_notes, shown, tier) {
        parts.push(note.note.replace("{tier}", tier_name(tier, article.lang)));
    }
    parts.push(
        shown
            .iter()
            .map(|p| p.display())
            .collect::<Vec<_>>()
            .join("\n\n"),
    );
    if !whole {
        parts.push(offer(&article.title, article.lang));
    }
    parts.join("\n\n")
}

/// Lower-cased text without surrounding punctuation or spaces.
fn normalise(text: &str) -> String {
    text.trim()
        .trim_matches(|c: char| c.is_ascii_punctuation() || "。？！，：“”".contains(c))
        .trim()
        .to_lowercase()
}

impl KnowledgeBase {
    /// An explicit request for a whole article: a "More about <title>" quick reply, or a topic
    /// title offered by a clarifying question.
    pub fn follow_up(&self, text: &str, lang: Lang) -> Option<&Article> {
        let t = normalise(text);
        let wanted = t
            .strip_prefix("more about")
            .or_else(|| t.strip_prefix("了解更多"))
            .map(|r| normalise(r.trim_start_matches([':', '：'])))
            .unwrap_or(t);
        self.articles
            .iter()
            .find(|a| a.lang == lang && normalise(&a.title) == wanted)
    }

    /// Looks a message up: the whole article for an explicit follow-up, the best passage above
    /// the bar, or the closest topics.
    pub fn lookup(&self, q: &Query<'_>, tier: Tier) -> Lookup {
        if let Some(a) = self.follow_up(q.text, q.lang) {
            let all: Vec<&Passage> = self
                .entries
                .iter()
                .filter(|e| std::ptr::eq(&self.articles[e.article], a))
                .map(|e| &e.passage)
                .collect();
            return Lookup::Answer(KbAnswer {
                article_id: a.id.clone(),
                passage: 0,
                reply: compose(a, &all, tier, true),
                reason: format!("faq:{}#all", a.id),
                quick_replies: Vec::new(),
                score: 1.0,
            });
        }
        let hits = self.rank(q);
        let Some(top) = hits.first() else {
            return Lookup::Unsure { topics: Vec::new() };
        };
        let score = top.calibrated(&self.calibration);
        if score < self.min_score {
            let mut topics: Vec<String> = Vec::new();
            for h in &hits {
                if !topics.contains(&h.article.title) {
                    topics.push(h.article.title.clone());
                }
                if topics.len() == 2 {
                    break;
                }
            }
            return Lookup::Unsure { topics };
        }
        let mut shown = vec![top.passage];
        if let Some(next) = neighbour(top, hits.get(1)) {
            if next.index < top.passage.index {
                shown.insert(0, next);
            } else {
                shown.push(next);
            }
        }
        Lookup::Answer(KbAnswer {
            article_id: top.article.id.clone(),
            passage: top.passage.index,
            reply: compose(top.article, &shown, tier, false),
            reason: format!("faq:{}", top.key()),
            quick_replies: vec![more_about(&top.article.title, top.article.lang)],
            score,
        })
    }

    /// The answer above the bar, if any.
    pub fn answer(&self, q: &Query<'_>, tier: Tier) -> Option<KbAnswer> {
        match self.lookup(q, tier) {
            Lookup::Answer(a) => Some(a),
            Lookup::Unsure { .. } => None,
        }
    }
}

fn neighbour<'a>(top: &PassageHit<'a>, next: Option<&PassageHit<'a>>) -> Option<&'a Passage> {
    let next = next?;
    let adjacent = std::ptr::eq(next.article, top.article)
        && next.passage.index.abs_diff(top.passage.index) == 1;
    (adjacent && next.fused >= NEIGHBOUR_SHARE * top.fused).then_some(next.passage)
}

/// Human-only intents whose messages are often general policy questions the knowledge base
/// answers ("how long do refunds take" classified as "where is my refund").
const POLICY_QUESTION_INTENTS: &[&str] = &["refund_status", "payment_problem", "return_request"];

/// Cues that a message is about the shopper's own case rather than the policy in general.
const SPECIFIC_CUES: &[&str] = &[
    "haven't",
    "havent",
    "have not",
    "hasn't",
    "hasnt",
    "has not",
    "didn't",
    "didnt",
    "did not",
    "still",
    "yet",
    "where is",
    "where's",
    "wheres",
    "missing",
    "never",
    "declined",
    "failed",
    "twice",
    "double",
    "charged",
    "stuck",
    "last week",
    "days ago",
    "weeks ago",
    "already",
    "还没",
    "没收到",
    "没到",
    "未到",
    "没有到",
    "没退",
    "还不",
    "一直",
    "怎么还",
    "订单号",
    "扣了",
    "扣款",
    "重复",
    "失败",
    "被拒",
    "到现在",
    "上周",
    "几天了",
    "好几天",
    "已经",
    "want to",
    "would like",
    "i'd like",
    "need to return",
    "help me",
    "my order",
    "these",
    "this one",
    "我要",
    "我想",
    "帮我",
    "这个",
    "这件",
    "这双",
    "给我",
];

/// Whether a message classified to a human-only `intent` is a general policy question the
/// knowledge base may answer: the intent is one whose questions are often general, and the
/// message names no order and none of the cues of a specific case.
pub fn policy_question(intent: &str, text: &str, has_order_number: bool) -> bool {
    let t = text.to_lowercase();
    POLICY_QUESTION_INTENTS.contains(&intent)
        && !has_order_number
        && !SPECIFIC_CUES.iter().any(|c| t.contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn general_policy_questions_versus_specific_cases() {
        let check = |intent, text, order, expect| {
            assert_eq!(policy_question(intent, text, order), expect, "{text}");
        };
        check("refund_status", "how long do refunds take", false, true);
        check(
            "refund_status",
            "how long until I get my refund after returning",
            false,
            true,
        );
        check("refund_status", "退款多久到账", false, true);
        check("refund_status", "where is my refund", false, false);
        check(
            "refund_status",
            "I still haven't got my refund",
            false,
            false,
        );
        check("refund_status", "退款怎么还没到", false, false);
        check(
            "refund_status",
            "how long do refunds take for 20261119-5508",
            true,
            false,
        );
        check("payment_problem", "支持哪些付款方式", false, true);
        check("payment_problem", "my card was declined", false, false);
        check("damaged_item", "how long do refunds take", false, false);
        check("return_request", "退货运费谁出", false, true);
        check("return_request", "我想退这双鞋", false, false);
        check(
            "return_request",
            "I want to return these shoes",
            false,
            false,
        );
    }

    #[test]
    fn normalises_follow_ups() {
        assert_eq!(
            normalise("  More about Return policy! "),
            "more about return policy"
        );
        assert_eq!(normalise("了解更多：退货政策。"), "了解更多：退货政策");
        assert_eq!(
            more_about("Return policy", Lang::En),
            "More about Return policy"
        );
    }
}
