//! Answer: the conversation engine. For each shopper message it classifies, decides (through
//! the pure [`crate::routing`] function), runs the automated answer (order tracking, policy
//! FAQ, small talk) or hands off to a human, and commits the whole turn atomically.

pub mod kb;
pub mod replies;
pub mod tracking;

use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use dashmap::DashMap;
use serde::{Deserialize, Serialize};

use crate::domain::{
    Author, Conversation, ConversationId, ConversationState, Customer, CustomerId, Lang,
    NewMessage, RouteDecision, Slots, Tier,
};
use crate::intents::Catalog;
use crate::metrics::Metrics;
use crate::nlu::{Classification, IntentClassifier, NluError};
use crate::orders::OrderProvider;
use crate::routing::{Answer, BotPolicy, Decision, HandoffReason, RouteInput, decide, miss};
use crate::store::{IdempotencyRecord, Store, StoreError, Turn};
use kb::KnowledgeBase;
use replies::{Canned, canned};

/// A shopper message as the engine receives it (already authenticated).
#[derive(Debug, Clone)]
pub struct Inbound {
    pub customer_id: CustomerId,
    pub text: String,
    pub conversation_id: Option<ConversationId>,
    pub channel: String,
    pub lang: Option<Lang>,
    pub client_message_id: Option<String>,
}

/// The intent part of a turn's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntentSummary {
    pub name: String,
    pub confidence: f32,
    pub out_of_scope: bool,
}

/// What a turn produced; stored as the idempotent answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TurnResult {
    pub conversation_id: ConversationId,
    pub state: ConversationState,
    pub replies: Vec<String>,
    /// `bot` or `human`.
    pub route: String,
    pub route_reason: String,
    pub intent: IntentSummary,
    pub lang: Lang,
    /// Answers the shopper can pick (closest topics, "More about …"); often empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quick_replies: Vec<String>,
}

/// Why a turn failed.
#[derive(Debug, thiserror::Error)]
pub enum DialogueError {
    #[error("conversation not found")]
    NotFound,
    #[error("the conversation belongs to another customer")]
    WrongCustomer,
    #[error(transparent)]
    Classifier(#[from] NluError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Everything the engine needs.
pub struct Dialogue {
    pub store: Arc<dyn Store>,
    pub classifier: Arc<dyn IntentClassifier>,
    pub orders: Arc<dyn OrderProvider>,
    pub kb: Arc<KnowledgeBase>,
    pub catalog: Arc<Catalog>,
    pub policy: BotPolicy,
    pub metrics: Arc<Metrics>,
    locks: DashMap<ConversationId, Arc<tokio::sync::Mutex<()>>>,
}

/// What the bot does in one turn, before it is stored.
struct Plan {
    replies: Vec<String>,
    route: &'static str,
    reason: String,
    handoff: Option<HandoffReason>,
    quick_replies: Vec<String>,
}

impl Plan {
    fn bot(reply: String, reason: impl Into<String>) -> Self {
        Self {
            replies: vec![reply],
            route: "bot",
            reason: reason.into(),
            handoff: None,
            quick_replies: Vec::new(),
        }
    }
}

impl Dialogue {
    pub fn new(
        store: Arc<dyn Store>,
        classifier: Arc<dyn IntentClassifier>,
        orders: Arc<dyn OrderProvider>,
        kb: Arc<KnowledgeBase>,
        catalog: Arc<Catalog>,
        policy: BotPolicy,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            store,
            classifier,
            orders,
            kb,
            catalog,
            policy,
            metrics,
            locks: DashMap::new(),
        }
    }

    /// Handles one shopper message end to end. Returns the turn's result and whether it was a
    /// replay of an earlier identical request.
    pub async fn handle(&self, inbound: Inbound) -> Result<(TurnResult, bool), DialogueError> {
        if let Some(key) = &inbound.client_message_id
            && let Some(stored) = self.store.idempotent(&inbound.customer_id, key).await?
        {
            return Ok((replay(stored)?, true));
        }
        // One turn at a time per conversation, so that state and slots never interleave.
        let lock = inbound
            .conversation_id
            .map(|id| self.locks.entry(id).or_default().clone());
        let guard = match &lock {
            Some(l) => Some(l.lock().await),
            None => None,
        };
        let result = self.handle_locked(&inbound).await;
        drop(guard);
        if let Some(id) = inbound.conversation_id {
            self.locks.remove_if(&id, |_, l| Arc::strong_count(l) <= 2);
        }
        result
    }

    async fn handle_locked(&self, inbound: &Inbound) -> Result<(TurnResult, bool), DialogueError> {
        let now = Utc::now();
        let customer = self
            .store
            .customer(&inbound.customer_id)
            .await?
            .unwrap_or_else(|| {
                Customer::unknown(
                    inbound.customer_id.clone(),
                    inbound.lang.unwrap_or_default(),
                )
            });
        let (mut conv, is_new) = match inbound.conversation_id {
            Some(id) => {
                let conv = self
                    .store
                    .conversation(id)
                    .await?
                    .ok_or(DialogueError::NotFound)?;
                if conv.customer_id != inbound.customer_id {
                    return Err(DialogueError::WrongCustomer);
                }
                (conv, false)
            }
            None => (
                Conversation {
                    id: ConversationId::new(),
                    customer_id: inbound.customer_id.clone(),
                    channel: inbound.channel.clone(),
                    lang: customer.language,
                    state: ConversationState::Bot,
                    slots: Slots::default(),
                    created_at: now,
                    updated_at: now,
                    handoff_reason: None,
                    handoff_intent: None,
                    handoff_at: None,
                },
                true,
            ),
        };
        conv.lang = inbound
            .lang
            .or_else(|| Lang::detect(&inbound.text))
            .unwrap_or(conv.lang);
        conv.updated_at = now;
        let lang = conv.lang;

        let started = Instant::now();
        let classification = self
            .classifier
            .classify(vec![inbound.text.clone()])
            .await?
            .pop()
            .ok_or(NluError::WorkerGone)?;
        self.metrics
            .classification_seconds
            .observe(started.elapsed().as_secs_f64());

        if conv.state == ConversationState::Resolved {
            conv.state = ConversationState::Bot;
            conv.slots = Slots::default();
            conv.handoff_reason = None;
            conv.handoff_intent = None;
            conv.handoff_at = None;
        }
        let plan = match conv.state {
            ConversationState::Bot => {
                self.plan(inbound, &classification, &mut conv, lang, customer.tier)
                    .await
            }
            ConversationState::WaitingForHuman => Plan {
                replies: vec![canned(Canned::StillWaiting, lang).to_string()],
                route: "human",
                reason: "waiting_for_human".into(),
                handoff: None,
                quick_replies: Vec::new(),
            },
            ConversationState::WithHuman | ConversationState::Resolved => Plan {
                replies: Vec::new(),
                route: "human",
                reason: "with_human".into(),
                handoff: None,
                quick_replies: Vec::new(),
            },
        };
        if let Some(reason) = &plan.handoff {
            conv.state = ConversationState::WaitingForHuman;
            conv.handoff_reason = Some(reason.code());
            conv.handoff_intent = Some(classification.intent.clone());
            conv.handoff_at = Some(now);
            conv.slots = Slots::default();
            self.metrics
                .handoffs
                .with_label_values(&[&reason.code()])
                .inc();
        }

        let result = TurnResult {
            conversation_id: conv.id,
            state: conv.state,
            replies: plan.replies.clone(),
            route: plan.route.to_string(),
            route_reason: plan.reason.clone(),
            intent: IntentSummary {
                name: classification.intent.clone(),
                confidence: classification.confidence,
                out_of_scope: classification.out_of_scope,
            },
            lang,
            quick_replies: plan.quick_replies.clone(),
        };
        let mut messages = vec![NewMessage {
            author: Author::Shopper,
            text: inbound.text.clone(),
            at: now,
            channel: inbound.channel.clone(),
            intent: Some(classification.intent.clone()),
            confidence: Some(classification.confidence),
            out_of_scope: Some(classification.out_of_scope),
            alternatives: classification.alternatives.clone(),
            route: Some(RouteDecision {
                route: plan.route.into(),
                reason: plan.reason.clone(),
            }),
            client_message_id: inbound.client_message_id.clone(),
        }];
        for reply in &plan.replies {
            messages.push(bot_message(reply, &inbound.channel, now));
        }
        if let Some(reason) = &plan.handoff {
            let mut note = bot_message(
                &format!("Handed off to a human: {}", reason.code()),
                &inbound.channel,
                now,
            );
            note.author = Author::System;
            messages.push(note);
        }
        let idempotency = inbound
            .client_message_id
            .as_ref()
            .map(|key| IdempotencyRecord {
                customer_id: inbound.customer_id.clone(),
                client_message_id: key.clone(),
                conversation_id: conv.id,
                response: serde_json::to_value(&result).unwrap_or_default(),
            });
        let turn = Turn {
            conversation: conv,
            is_new,
            messages,
            idempotency,
        };
        match self.store.record_turn(&turn).await {
            Ok(()) => {}
            Err(StoreError::DuplicateKey) => {
                // A concurrent retry won the race: answer what it stored.
                let key = inbound.client_message_id.as_deref().unwrap_or_default();
                let stored = self.store.idempotent(&inbound.customer_id, key).await?;
                return match stored {
                    Some(s) => Ok((replay(s)?, true)),
                    None => Err(StoreError::DuplicateKey.into()),
                };
            }
            Err(e) => return Err(e.into()),
        }
        self.metrics.record_turn(
            plan.route,
            &classification.intent,
            plan.route == "bot" && plan.handoff.is_none(),
        );
        Ok((result, false))
    }

    /// Decides and runs the bot's answer; updates the conversation's memory.
    async fn plan(
        &self,
        inbound: &Inbound,
        c: &Classification,
        conv: &mut Conversation,
        lang: Lang,
        tier: Tier,
    ) -> Plan {
        let order_id = tracking::extract_order_id(&inbound.text);
        let slots = conv.slots.clone();
        let input = RouteInput {
            classification: c,
            spec: self.catalog.get(&c.intent),
            slots: &slots,
            text: &inbound.text,
            has_order_number: order_id.is_some(),
            policy: &self.policy,
        };
        let decision = decide(&input);
        let missed = |conv: &mut Conversation, reply: Canned, reason: &str| -> Plan {
            match miss(&input) {
                Decision::Handoff(r) => handoff_plan(r, lang),
                _ => {
                    conv.slots.misses += 1;
                    Plan::bot(canned(reply, lang).to_string(), reason)
                }
            }
        };
        let query = kb::Query {
            text: &inbound.text,
            embedding: &c.embedding,
            intent: &c.intent,
            lang,
        };
        match decision {
            // Not understood: search every passage before asking again or handing off (#12).
            Decision::Clarify | Decision::Handoff(HandoffReason::RepeatedMisses) => {
                match self.kb.lookup(&query, tier) {
                    kb::Lookup::Answer(a) => faq_plan(conv, a),
                    kb::Lookup::Unsure { topics } => with_topics(
                        missed(conv, Canned::Clarify, "low_confidence"),
                        topics,
                        lang,
                    ),
                }
            }
            Decision::Handoff(reason) => {
                // A general policy question under a human-only intent ("how long do refunds
                // take") is answered from the KB; a specific case still goes to a human (#12).
                if let HandoffReason::IntentNeedsHuman(i) = &reason
                    && kb::policy_question(i, &inbound.text, order_id.is_some())
                    && let Some(a) = self.kb.answer(&query, tier)
                {
                    return faq_plan(conv, a);
                }
                handoff_plan(reason, lang)
            }
            Decision::Answer(Answer::Smalltalk) => {
                let reply = match c.intent.as_str() {
                    "greeting" => Canned::Greeting,
                    "thanks" => Canned::Thanks,
                    "goodbye" => Canned::Goodbye,
                    _ => Canned::Capabilities,
                };
                conv.slots = Slots::default();
                Plan::bot(
                    canned(reply, lang).to_string(),
                    format!("smalltalk:{}", c.intent),
                )
            }
            Decision::Answer(Answer::Faq) => match self.kb.lookup(&query, tier) {
                kb::Lookup::Answer(a) => faq_plan(conv, a),
                kb::Lookup::Unsure { topics } => with_topics(
                    missed(conv, Canned::FaqNoAnswer, "faq_no_answer"),
                    topics,
                    lang,
                ),
            },
            Decision::Answer(Answer::Tracking) => {
                let Some(order_id) = order_id else {
                    conv.slots.awaiting_order_number = true;
                    conv.slots.misses = 0;
                    return Plan::bot(
                        canned(Canned::AskOrderNumber, lang).to_string(),
                        "tracking:ask_order_number",
                    );
                };
                match self.orders.find(&order_id).await {
                    Ok(Some(order)) if order.customer_id == inbound.customer_id => {
                        conv.slots = Slots::default();
                        Plan::bot(tracking::describe(&order, lang), "tracking:answered")
                    }
                    // Someone else's order reads exactly like a missing one.
                    Ok(_) => {
                        conv.slots.awaiting_order_number = true;
                        missed(conv, Canned::OrderNotFound, "tracking:not_found")
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "order lookup failed; handing off");
                        handoff_plan(HandoffReason::LookupUnavailable, lang)
                    }
                }
            }
        }
    }
}

/// A knowledge-base answer; it resolves whatever the bot was waiting for.
fn faq_plan(conv: &mut Conversation, a: kb::KbAnswer) -> Plan {
    conv.slots = Slots::default();
    Plan {
        replies: vec![a.reply],
        route: "bot",
        reason: a.reason,
        handoff: None,
        quick_replies: a.quick_replies,
    }
}

/// A clarifying question that offers the closest knowledge-base topics, unless the miss
/// became a handoff.
fn with_topics(mut plan: Plan, topics: Vec<String>, lang: Lang) -> Plan {
    if plan.handoff.is_none()
        && let Some(text) = kb::answer::clarify_with_topics(&topics, lang)
    {
        plan.replies = vec![text];
        plan.quick_replies = topics;
    }
    plan
}

fn handoff_plan(reason: HandoffReason, lang: Lang) -> Plan {
    let reply = match reason {
        HandoffReason::Upset => Canned::HandoffUpset,
        HandoffReason::LookupUnavailable => Canned::LookupDown,
        _ => Canned::HandoffNotice,
    };
    Plan {
        replies: vec![canned(reply, lang).to_string()],
        route: "human",
        reason: reason.code(),
        handoff: Some(reason),
        quick_replies: Vec::new(),
    }
}

fn bot_message(text: &str, channel: &str, at: chrono::DateTime<Utc>) -> NewMessage {
    NewMessage {
        author: Author::Bot,
        text: text.to_string(),
        at,
        channel: channel.to_string(),
        intent: None,
        confidence: None,
        out_of_scope: None,
        alternatives: Vec::new(),
        route: None,
        client_message_id: None,
    }
}

fn replay(stored: IdempotencyRecord) -> Result<TurnResult, DialogueError> {
    serde_json::from_value(stored.response)
        .map_err(|e| DialogueError::Store(StoreError::Corrupt(format!("stored answer: {e}"))))
}
