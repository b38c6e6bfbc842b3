//! Answer: the conversation engine. For each shopper message it classifies, decides (through
//! the pure [`crate::routing`] function), runs the automated answer (order tracking, policy
//! FAQ, small talk) or hands off to a human, and commits the whole turn atomically.

pub mod kb;
pub mod photo;
pub mod replies;
pub mod tracking;

use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use dashmap::DashMap;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::desk::{Desk, QueueStatus};
use crate::domain::{
    AttachmentRef, Author, Conversation, ConversationId, ConversationState, Customer, CustomerId,
    EventKind, IllegalTransition, Lang, NewEvent, NewMessage, OrderId, RouteDecision, Slots, Tier,
    Transition,
};
use crate::intents::{Catalog, Role};
use crate::live::Notifier;
use crate::metrics::Metrics;
use crate::nlu::{Classification, IntentClassifier, NluError};
use crate::orders::OrderProvider;
use crate::routing::{Answer, BotPolicy, Decision, HandoffReason, RouteInput, decide, miss};
use crate::routing::{RouteContext, RoutingPolicy};
use crate::store::{IdempotencyRecord, Store, StoreError, Turn};
use kb::KnowledgeBase;
pub use photo::Photo;
use replies::{Canned, canned};

/// Which conversation a shopper message belongs to, as the edge established it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A new conversation for a customer whose id the shop signed (hash checked).
    NewVerified(CustomerId),
    /// A new conversation for an anonymous shopper: a fresh `anon-…` id and no profile.
    NewAnonymous,
    /// An existing conversation whose token the caller presented; `claimed` (when the caller
    /// named a customer) must be the conversation's customer.
    Existing {
        id: ConversationId,
        claimed: Option<CustomerId>,
    },
    /// A messaging-channel user's conversation (WhatsApp, Telegram, a signed webhook): the
    /// channel fixed its id and customer when it first heard from the user, so it is created
    /// with that id on the first message and continued afterwards. `sent_at` is the platform's
    /// time of the message, which is the time it is stored with.
    Channel {
        id: ConversationId,
        customer: CustomerId,
        sent_at: chrono::DateTime<Utc>,
    },
}

impl Target {
    /// Where a retry key is unique: a conversation's messages share its scope; a new
    /// conversation's first message is scoped to the verified customer, or to the anonymous
    /// key space. A key therefore never reaches a conversation its caller cannot open.
    fn idempotency_scope(&self) -> String {
        match self {
            Self::NewVerified(c) => format!("customer:{c}"),
            Self::NewAnonymous => "anonymous".into(),
            Self::Existing { id, .. } | Self::Channel { id, .. } => format!("conversation:{id}"),
        }
    }

    /// The platform's time of a channel message.
    fn sent_at(&self) -> Option<chrono::DateTime<Utc>> {
        match self {
            Self::Channel { sent_at, .. } => Some(*sent_at),
            _ => None,
        }
    }

    fn conversation_id(&self) -> Option<ConversationId> {
        match self {
            Self::Existing { id, .. } | Self::Channel { id, .. } => Some(*id),
            _ => None,
        }
    }
}

/// A shopper message as the engine receives it (authenticated and normalised at the edge).
#[derive(Debug, Clone)]
pub struct Inbound {
    pub target: Target,
    pub text: String,
    pub channel: String,
    pub lang: Option<Lang>,
    pub client_message_id: Option<String>,
}

impl Inbound {
    /// SHA-256 over everything that makes two requests the same request, so that a retry key
    /// reused for a different message is refused rather than answered with the old reply.
    fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let claimed = match &self.target {
            Target::NewVerified(c) => c.as_str(),
            Target::Existing { claimed, .. } => claimed.as_ref().map_or("", |c| c.as_str()),
            // The conversation (in the scope) identifies the channel user; their customer id
            // may change when the shop links them, which must not turn a replay into a refusal.
            Target::NewAnonymous | Target::Channel { .. } => "",
        };
        let mut h = Sha256::new();
        for part in [
            claimed,
            &self.text,
            &self.channel,
            self.lang.map_or("", Lang::as_str),
        ] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// The intent part of a turn's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntentSummary {
    pub name: String,
    pub confidence: f32,
    pub out_of_scope: bool,
}

/// What a shopper's message carries.
enum Body {
    Text,
    /// Something the bot cannot read, described in the text (see
    /// [`Dialogue::acknowledge_unsupported`]).
    Unsupported,
    Photo(Photo),
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
    /// How the text was classified; `None` for a photo sent without a caption.
    pub intent: Option<IntentSummary>,
    pub lang: Lang,
    /// The shopper's place in the human queue while waiting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<QueueStatus>,
    /// Answers the shopper can pick (closest topics, "More about …"); often empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quick_replies: Vec<String>,
    /// The photo the shopper's message carried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachment: Option<AttachmentRef>,
}

/// Why a turn failed.
#[derive(Debug, thiserror::Error)]
pub enum DialogueError {
    #[error("conversation not found")]
    NotFound,
    #[error("the conversation belongs to another customer")]
    WrongCustomer,
    /// The retry key was already used for a different message.
    #[error("client_message_id was already used for a different message")]
    KeyReused,
    #[error(transparent)]
    Illegal(#[from] IllegalTransition),
    #[error(transparent)]
    Classifier(#[from] NluError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Everything the engine needs.
pub struct Deps {
    pub store: Arc<dyn Store>,
    pub classifier: Arc<dyn IntentClassifier>,
    pub orders: Arc<dyn OrderProvider>,
    pub kb: Arc<KnowledgeBase>,
    pub catalog: Arc<Catalog>,
    pub policy: BotPolicy,
    pub metrics: Arc<Metrics>,
    /// The queue policy (tiers, SLAs, teams) handoff tickets are computed with.
    pub routing: Arc<RoutingPolicy>,
    pub notifier: Arc<Notifier>,
    /// The human queue, for the shopper's place in line.
    pub desk: Arc<Desk>,
}

/// The conversation engine.
pub struct Dialogue {
    deps: Deps,
    /// Serialises turns of one conversation inside this process: an optimisation only, the
    /// version check in storage decides races.
    locks: DashMap<ConversationId, Arc<tokio::sync::Mutex<()>>>,
}

impl std::ops::Deref for Dialogue {
    type Target = Deps;
    fn deref(&self) -> &Deps {
        &self.deps
    }
}

/// What the bot does in one turn, before it is stored.
struct Plan {
    replies: Vec<String>,
    route: &'static str,
    reason: String,
    handoff: Option<HandoffReason>,
    quick_replies: Vec<String>,
}

/// The conversation as read for a turn.
struct Loaded {
    conv: Conversation,
    is_new: bool,
    expected_version: i64,
    customer: Customer,
    now: chrono::DateTime<Utc>,
}

/// A turn decided, not yet stored.
struct Decided {
    conv: Conversation,
    is_new: bool,
    expected_version: i64,
    plan: Plan,
    events: Vec<NewEvent>,
    now: chrono::DateTime<Utc>,
    /// The photo the shopper's message carries.
    attachment: Option<AttachmentRef>,
}

/// " You are number 3 in line, about 4 minutes." in the shopper's language.
fn queue_sentence(q: &QueueStatus, lang: Lang) -> String {
    let minutes = q.expected_wait_seconds.map(|s| (s.max(0) + 59) / 60);
    match (lang, minutes) {
        (Lang::En, Some(m)) => format!(
            " You are number {} in line, about {} minute{}.",
            q.position,
            m.max(1),
            if m.max(1) == 1 { "" } else { "s" }
        ),
        (Lang::En, None) => format!(" You are number {} in line.", q.position),
        (Lang::Zh, Some(m)) => format!(
            "您目前排在第 {} 位，预计等待约 {} 分钟。",
            q.position,
            m.max(1)
        ),
        (Lang::Zh, None) => format!("您目前排在第 {} 位。", q.position),
    }
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
    pub fn new(deps: Deps) -> Self {
        Self {
            deps,
            locks: DashMap::new(),
        }
    }

    /// Replies an agent might send for these shopper messages: the best knowledge-base answers
    /// in the shopper's language, most recent message first, without repeats.
    pub async fn suggestions(&self, texts: &[String], lang: Lang) -> Vec<String> {
        let Ok(classified) = self.classifier.classify(texts.to_vec()).await else {
            return Vec::new();
        };
        let mut out: Vec<String> = Vec::new();
        for (text, c) in texts.iter().zip(&classified) {
            let query = kb::Query {
                text,
                embedding: &c.embedding,
                intent: &c.intent,
                lang,
            };
            for hit in self.kb.rank(&query).into_iter().take(2) {
                let reply = format!("{}\n\n{}", hit.article.title, hit.passage.display());
                if !out.contains(&reply) {
                    out.push(reply);
                }
            }
        }
        out.truncate(3);
        out
    }

    /// Handles one shopper message end to end. Returns the turn's result and whether it was a
    /// replay of an earlier identical request.
    pub async fn handle(&self, inbound: Inbound) -> Result<(TurnResult, bool), DialogueError> {
        self.run(inbound, Body::Text).await
    }

    /// Keeps a message the bot cannot read (an image, sticker, location or voice note from a
    /// messaging channel; `inbound.text` describes it for the transcript) and answers politely
    /// in the shopper's language, without classifying it or changing the conversation's state.
    pub async fn acknowledge_unsupported(
        &self,
        inbound: Inbound,
    ) -> Result<(TurnResult, bool), DialogueError> {
        self.run(inbound, Body::Unsupported).await
    }

    /// Handles a photo the shopper sends to an existing conversation, or a channel's
    /// (created when the photo is its first message; `inbound.text` is its caption, possibly
    /// empty): the photo is stored, then shown in a shopper message of a
    /// turn like any other. Retries with the same `client_message_id` store it once.
    pub async fn handle_photo(
        &self,
        inbound: Inbound,
        photo: Photo,
    ) -> Result<(TurnResult, bool), DialogueError> {
        self.run(inbound, Body::Photo(photo)).await
    }

    /// Replays a retried message, or runs its turn holding the conversation's lock.
    async fn run(&self, inbound: Inbound, body: Body) -> Result<(TurnResult, bool), DialogueError> {
        let scope = inbound.target.idempotency_scope();
        let fingerprint = match &body {
            Body::Photo(p) => p.fingerprint(&inbound.fingerprint()),
            _ => inbound.fingerprint(),
        };
        if let Some(key) = &inbound.client_message_id
            && let Some(stored) = self.store.idempotent(&scope, key).await?
        {
            return Ok((replay(stored, &fingerprint)?, true));
        }
        // One turn at a time per conversation, so that state and slots never interleave.
        let lock = inbound
            .target
            .conversation_id()
            .map(|id| self.locks.entry(id).or_default().clone());
        let guard = match &lock {
            Some(l) => Some(l.lock().await),
            None => None,
        };
        let result = match body {
            Body::Text => self.text_locked(&inbound, &scope, &fingerprint).await,
            Body::Unsupported => {
                self.unsupported_locked(&inbound, &scope, &fingerprint)
                    .await
            }
            Body::Photo(p) => self.photo_locked(&inbound, p, &scope, &fingerprint).await,
        };
        drop(guard);
        if let Some(id) = inbound.target.conversation_id() {
            self.locks.remove_if(&id, |_, l| Arc::strong_count(l) <= 2);
        }
        result
    }

    /// The turn of an unsupported message: the shopper's message as described, and the polite
    /// answer, committed conditional on the version read.
    async fn unsupported_locked(
        &self,
        inbound: &Inbound,
        scope: &str,
        fingerprint: &str,
    ) -> Result<(TurnResult, bool), DialogueError> {
        let mut attempt = 0;
        loop {
            // The description is not the shopper's words: it must not change the language.
            let blank = Inbound {
                text: String::new(),
                ..inbound.clone()
            };
            let Loaded {
                mut conv,
                is_new,
                expected_version,
                now,
                ..
            } = self.load(&blank).await?;
            conv.updated_at = now;
            let reply = canned(Canned::Unsupported, conv.lang).to_string();
            let result = TurnResult {
                conversation_id: conv.id,
                state: conv.state,
                replies: vec![reply.clone()],
                route: "bot".into(),
                route_reason: "unsupported_message".into(),
                intent: Some(IntentSummary {
                    name: "unsupported".into(),
                    confidence: 1.0,
                    out_of_scope: true,
                }),
                lang: conv.lang,
                queue: None,
                quick_replies: Vec::new(),
                attachment: None,
            };
            let mut shopper = NewMessage::plain(
                Author::Shopper,
                inbound.text.clone(),
                &inbound.channel,
                inbound.target.sent_at().unwrap_or(now),
            );
            shopper.client_message_id = inbound.client_message_id.clone();
            let turn = Turn {
                is_new,
                expected_version,
                messages: vec![shopper, bot_message(&reply, &inbound.channel, now)],
                events: Vec::new(),
                idempotency: inbound
                    .client_message_id
                    .as_ref()
                    .map(|key| IdempotencyRecord {
                        scope: scope.to_string(),
                        client_message_id: key.clone(),
                        request_hash: fingerprint.to_string(),
                        conversation_id: conv.id,
                        response: serde_json::to_value(&result).unwrap_or_default(),
                    }),
                capacity_guard: None,
                conversation: conv,
            };
            match self.store.record_turn(&turn).await {
                Ok(committed) => {
                    self.notifier.committed(committed.last_seq);
                    return Ok((result, false));
                }
                Err(StoreError::Conflict) if attempt < 8 => attempt += 1,
                Err(StoreError::DuplicateKey) => {
                    let key = inbound.client_message_id.as_deref().unwrap_or_default();
                    return match self.store.idempotent(scope, key).await? {
                        Some(s) => Ok((replay(s, fingerprint)?, true)),
                        None => Err(StoreError::DuplicateKey.into()),
                    };
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Stores a channel's new conversation, still without messages (a concurrent creation
    /// is as good).
    async fn open_channel_conversation(&self, inbound: &Inbound) -> Result<(), DialogueError> {
        let Loaded {
            conv,
            is_new,
            expected_version,
            ..
        } = self.load(inbound).await?;
        if !is_new {
            return Ok(());
        }
        let turn = Turn {
            is_new,
            expected_version,
            ..Turn::update(conv)
        };
        match self.store.record_turn(&turn).await {
            Ok(committed) => {
                self.notifier.committed(committed.last_seq);
                Ok(())
            }
            Err(StoreError::Conflict | StoreError::DuplicateKey) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn text_locked(
        &self,
        inbound: &Inbound,
        scope: &str,
        fingerprint: &str,
    ) -> Result<(TurnResult, bool), DialogueError> {
        let classification = self.classify(&inbound.text).await?;
        self.turn(inbound, Some(&classification), None, scope, fingerprint)
            .await
    }

    /// Stores the photo, then runs its turn; an upload whose turn is not stored (an error, or
    /// a concurrent retry that won) is removed again.
    async fn photo_locked(
        &self,
        inbound: &Inbound,
        photo: Photo,
        scope: &str,
        fingerprint: &str,
    ) -> Result<(TurnResult, bool), DialogueError> {
        let Some(id) = inbound.target.conversation_id() else {
            return Err(DialogueError::NotFound);
        };
        // A retry that waited for the lock finds its answer without storing the photo again.
        if let Some(key) = &inbound.client_message_id
            && let Some(stored) = self.store.idempotent(scope, key).await?
        {
            return Ok((replay(stored, fingerprint)?, true));
        }
        if self.store.conversation(id).await?.is_none() {
            if !matches!(inbound.target, Target::Channel { .. }) {
                return Err(DialogueError::NotFound);
            }
            // A channel's first message may be a photo: the conversation must exist before
            // the photo can be stored in it.
            self.open_channel_conversation(inbound).await?;
        }
        let classification = match inbound.text.is_empty() {
            true => None,
            false => Some(self.classify(&inbound.text).await?),
        };
        let meta = photo.describe(id, Utc::now());
        self.store.put_attachment(&meta, &photo.bytes).await?;
        let attachment = meta.reference();
        let outcome = self
            .turn(
                inbound,
                classification.as_ref(),
                Some(&attachment),
                scope,
                fingerprint,
            )
            .await;
        if !matches!(outcome, Ok((_, false)))
            && let Err(e) = self.store.delete_attachment(attachment.id).await
        {
            tracing::warn!(error = %e, "an unused upload could not be removed");
        }
        outcome
    }

    /// Runs one turn for a shopper message: its classification (none for a photo without a
    /// caption) and its photo, if any.
    async fn turn(
        &self,
        inbound: &Inbound,
        classification: Option<&Classification>,
        attachment: Option<&AttachmentRef>,
        scope: &str,
        fingerprint: &str,
    ) -> Result<(TurnResult, bool), DialogueError> {
        // A turn is computed from the conversation as read and committed only if nobody
        // changed it meanwhile (an agent's claim, another instance's turn); otherwise it is
        // computed again from the new state.
        let mut attempt = 0;
        loop {
            let loaded = self.load(inbound).await?;
            let turn = self
                .decide(inbound, classification, attachment, loaded)
                .await?;
            match self
                .commit(inbound, scope, fingerprint, classification, turn)
                .await
            {
                Err(DialogueError::Store(StoreError::Conflict)) if attempt < 8 => attempt += 1,
                other => return other,
            }
        }
    }

    async fn classify(&self, text: &str) -> Result<Classification, DialogueError> {
        let started = Instant::now();
        let classification = self
            .classifier
            .classify(vec![text.to_string()])
            .await?
            .pop()
            .ok_or(NluError::WorkerGone)?;
        self.metrics
            .classification_seconds
            .observe(started.elapsed().as_secs_f64());
        Ok(classification)
    }

    /// Reads (or starts) the conversation and the verified customer's profile.
    async fn load(&self, inbound: &Inbound) -> Result<Loaded, DialogueError> {
        let now = Utc::now();
        let (mut conv, is_new) = match &inbound.target {
            Target::Existing { id, claimed } => {
                let conv = self
                    .store
                    .conversation(*id)
                    .await?
                    .ok_or(DialogueError::NotFound)?;
                if claimed.as_ref().is_some_and(|c| *c != conv.customer_id) {
                    return Err(DialogueError::WrongCustomer);
                }
                (conv, false)
            }
            Target::NewVerified(customer_id) => (
                new_conversation(customer_id.clone(), true, inbound, now),
                true,
            ),
            Target::NewAnonymous => (new_conversation(anonymous_id(), false, inbound, now), true),
            Target::Channel { id, customer, .. } => match self.store.conversation(*id).await? {
                Some(conv) => (conv, false),
                None => {
                    let mut conv = new_conversation(customer.clone(), true, inbound, now);
                    conv.id = *id;
                    (conv, true)
                }
            },
        };
        // Only a verified shopper has a profile; an anonymous one is nobody in particular.
        let profile = if conv.verified {
            self.store.customer(&conv.customer_id).await?
        } else {
            None
        };
        if is_new
            && inbound.lang.is_none()
            && let Some(p) = &profile
        {
            conv.lang = p.language;
        }
        conv.lang = match &inbound.target {
            // A platform's language is the user's app setting, a hint for a new conversation
            // (already applied); what the shopper writes decides after that.
            Target::Channel { .. } => Lang::detect(&inbound.text).unwrap_or(conv.lang),
            _ => inbound
                .lang
                .or_else(|| Lang::detect(&inbound.text))
                .unwrap_or(conv.lang),
        };
        let customer =
            profile.unwrap_or_else(|| Customer::unknown(conv.customer_id.clone(), conv.lang));
        Ok(Loaded {
            expected_version: conv.version,
            conv,
            is_new,
            customer,
            now,
        })
    }

    /// Decides what the turn does (through the state machine) and runs the bot's answer.
    async fn decide(
        &self,
        inbound: &Inbound,
        classification: Option<&Classification>,
        attachment: Option<&AttachmentRef>,
        loaded: Loaded,
    ) -> Result<Decided, DialogueError> {
        let Loaded {
            mut conv,
            is_new,
            customer,
            now,
            expected_version,
        } = loaded;
        let lang = conv.lang;
        conv.updated_at = now;
        let mut events = Vec::new();
        if conv.state == ConversationState::Resolved {
            let from = conv.transition(Transition::ShopperWritesAfterResolution)?;
            events.push(NewEvent::public(
                EventKind::StateChanged,
                json!({"from": from.as_str(), "to": conv.state.as_str()}),
            ));
            conv.slots = Slots::default();
            conv.handoff_reason = None;
            conv.handoff_intent = None;
            conv.handoff_at = None;
            conv.ticket = None;
            conv.agent_id = None;
            conv.assigned_at = None;
            conv.first_response_at = None;
            conv.resolution = None;
            conv.csat_score = None;
        }
        let plan = match (conv.state, classification) {
            (ConversationState::Bot, Some(classification)) => {
                let before = conv.slots.clone();
                let plan = self
                    .plan(inbound, classification, &mut conv, customer.tier)
                    .await;
                // A caption the bot cannot act on is no miss: the photo is acknowledged.
                if attachment.is_some() && photo::caption_missed(&plan.reason, &plan.handoff) {
                    conv.slots = before;
                    photo::acknowledge(lang)
                } else {
                    plan
                }
            }
            (ConversationState::Bot, None) => photo::acknowledge(lang),
            (ConversationState::WaitingForHuman, _) => Plan {
                replies: vec![canned(Canned::StillWaiting, lang).to_string()],
                route: "human",
                reason: "waiting_for_human".into(),
                handoff: None,
                quick_replies: Vec::new(),
            },
            (ConversationState::WithHuman | ConversationState::Resolved, _) => Plan {
                replies: Vec::new(),
                route: "human",
                reason: "with_human".into(),
                handoff: None,
                quick_replies: Vec::new(),
            },
        };
        // Only a classified message hands off (a photo alone never does).
        if let (Some(reason), Some(classification)) = (&plan.handoff, classification) {
            let from = conv.transition(Transition::Handoff)?;
            // Only a handoff pays for the recent-contacts count its ticket needs.
            let recent = self
                .store
                .conversations_since(&conv.customer_id, now - chrono::Duration::days(7))
                .await?;
            let ctx = RouteContext {
                customer: &customer,
                recent_contacts_7d: u32::try_from(recent + i64::from(is_new)).unwrap_or(u32::MAX),
                lang,
                now,
                routing: &self.routing,
            };
            conv.ticket = Some(crate::routing::handoff_ticket(
                classification,
                &inbound.text,
                reason,
                &ctx,
            ));
            conv.handoff_reason = Some(reason.code());
            conv.handoff_intent = Some(classification.intent.clone());
            conv.handoff_at = Some(now);
            conv.slots = Slots::default();
            events.push(NewEvent::public(
                EventKind::StateChanged,
                json!({"from": from.as_str(), "to": conv.state.as_str()}),
            ));
            events.push(NewEvent::internal(
                EventKind::QueueChanged,
                json!({"change": "handoff", "ticket": conv.ticket, "waiting_since": now}),
            ));
        }
        Ok(Decided {
            conv,
            is_new,
            expected_version,
            plan,
            events,
            now,
            attachment: attachment.cloned(),
        })
    }

    /// Stores the turn with its events and retry key, then wakes live connections.
    async fn commit(
        &self,
        inbound: &Inbound,
        scope: &str,
        fingerprint: &str,
        classification: Option<&Classification>,
        decided: Decided,
    ) -> Result<(TurnResult, bool), DialogueError> {
        let Decided {
            conv,
            is_new,
            expected_version,
            plan,
            events,
            now,
            attachment,
        } = decided;
        let queue = self.desk.status(&conv).await.ok().flatten();
        let mut replies = plan.replies.clone();
        if let (Some(q), Some(first)) = (&queue, replies.first_mut()) {
            first.push_str(&queue_sentence(q, conv.lang));
        }
        let result = TurnResult {
            conversation_id: conv.id,
            state: conv.state,
            replies: replies.clone(),
            route: plan.route.to_string(),
            route_reason: plan.reason.clone(),
            intent: classification.map(|c| IntentSummary {
                name: c.intent.clone(),
                confidence: c.confidence,
                out_of_scope: c.out_of_scope,
            }),
            lang: conv.lang,
            queue,
            quick_replies: plan.quick_replies.clone(),
            attachment: attachment.clone(),
        };
        let mut messages = vec![NewMessage {
            author: Author::Shopper,
            text: inbound.text.clone(),
            at: inbound.target.sent_at().unwrap_or(now),
            channel: inbound.channel.clone(),
            intent: classification.map(|c| c.intent.clone()),
            confidence: classification.map(|c| c.confidence),
            out_of_scope: classification.map(|c| c.out_of_scope),
            alternatives: classification.map_or_else(Vec::new, |c| c.alternatives.clone()),
            route: Some(RouteDecision {
                route: plan.route.into(),
                reason: plan.reason.clone(),
            }),
            client_message_id: inbound.client_message_id.clone(),
            agent_id: None,
            private: false,
            attachment,
        }];
        for reply in &replies {
            messages.push(bot_message(reply, &inbound.channel, now));
        }
        if let Some(reason) = &plan.handoff {
            let mut note = bot_message(
                &format!("Handed off to a human: {}", reason.code()),
                &inbound.channel,
                now,
            );
            note.author = Author::System;
            note.private = true;
            messages.push(note);
        }
        let idempotency = inbound
            .client_message_id
            .as_ref()
            .map(|key| IdempotencyRecord {
                scope: scope.to_string(),
                client_message_id: key.clone(),
                request_hash: fingerprint.to_string(),
                conversation_id: conv.id,
                response: serde_json::to_value(&result).unwrap_or_default(),
            });
        let turn = Turn {
            conversation: conv,
            is_new,
            expected_version,
            messages,
            events,
            idempotency,
            capacity_guard: None,
        };
        match self.store.record_turn(&turn).await {
            Ok(committed) => self.notifier.committed(committed.last_seq),
            Err(StoreError::DuplicateKey) => {
                // A concurrent retry won the race: answer what it stored.
                let key = inbound.client_message_id.as_deref().unwrap_or_default();
                let stored = self.store.idempotent(scope, key).await?;
                return match stored {
                    Some(s) => Ok((replay(s, fingerprint)?, true)),
                    None => Err(StoreError::DuplicateKey.into()),
                };
            }
            Err(e) => return Err(e.into()),
        }
        if let Some(reason) = &plan.handoff {
            self.metrics
                .handoffs
                .with_label_values(&[&reason.code()])
                .inc();
        }
        self.metrics.record_turn(
            plan.route,
            classification.map_or(photo::INTENT_LABEL, |c| c.intent.as_str()),
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
        tier: Tier,
    ) -> Plan {
        let lang = conv.lang;
        let order_id = tracking::extract_order_id(&inbound.text);
        let slots = conv.slots.clone();
        let input = RouteInput {
            classification: c,
            spec: self.catalog.get(&c.intent),
            slots: &slots,
            text: &inbound.text,
            has_order_number: order_id.is_some(),
            has_contact_factor: slots.pending_order.is_some()
                && tracking::has_contact_factor(&inbound.text),
            policy: &self.policy,
        };
        let decision = decide(&input);
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
                        missed_plan(&input, conv, lang, Canned::Clarify, "low_confidence"),
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
                let reply = match self.catalog.get(&c.intent).and_then(|s| s.role) {
                    Some(Role::Greeting) => Canned::Greeting,
                    Some(Role::Thanks) => Canned::Thanks,
                    Some(Role::Goodbye) => Canned::Goodbye,
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
                    missed_plan(&input, conv, lang, Canned::FaqNoAnswer, "faq_no_answer"),
                    topics,
                    lang,
                ),
            },
            Decision::Answer(Answer::Tracking) => {
                let Some(order_id) = order_id.or_else(|| conv.slots.pending_order.clone()) else {
                    conv.slots.awaiting_order_number = true;
                    conv.slots.misses = 0;
                    return Plan::bot(
                        canned(Canned::AskOrderNumber, lang).to_string(),
                        "tracking:ask_order_number",
                    );
                };
                if conv.verified {
                    self.track_verified(&order_id, conv, lang, &input).await
                } else {
                    self.track_anonymous(&order_id, &inbound.text, conv, lang, &input)
                        .await
                }
            }
        }
    }

    /// Tracking for a verified shopper: only their own orders are described.
    async fn track_verified(
        &self,
        order_id: &OrderId,
        conv: &mut Conversation,
        lang: Lang,
        input: &RouteInput<'_>,
    ) -> Plan {
        match self.orders.find(order_id, Some(&conv.customer_id)).await {
            Ok(Some(order)) if order.customer_id == conv.customer_id => {
                conv.slots = Slots::default();
                Plan::bot(tracking::describe(&order, lang), "tracking:answered")
            }
            // Someone else's order reads exactly like a missing one.
            Ok(_) => {
                conv.slots.awaiting_order_number = true;
                missed_plan(
                    input,
                    conv,
                    lang,
                    Canned::OrderNotFound,
                    "tracking:not_found",
                )
            }
            Err(e) => {
                tracing::warn!(error = %e, "order lookup failed; handing off");
                handoff_plan(HandoffReason::LookupUnavailable, lang)
            }
        }
    }

    /// Tracking for an anonymous shopper: the order is described only after they name a
    /// contact detail on it (email, phone or postcode). A wrong detail and a missing order
    /// read the same, so the bot cannot be used to probe which order numbers exist.
    async fn track_anonymous(
        &self,
        order_id: &OrderId,
        text: &str,
        conv: &mut Conversation,
        lang: Lang,
        input: &RouteInput<'_>,
    ) -> Plan {
        conv.slots.awaiting_order_number = false;
        if !tracking::has_contact_factor(text) {
            conv.slots.pending_order = Some(order_id.clone());
            conv.slots.misses = 0;
            return Plan::bot(
                canned(Canned::AskContactFactor, lang).to_string(),
                "tracking:ask_verification",
            );
        }
        match self.orders.find(order_id, None).await {
            Ok(Some(order)) if tracking::matches_contact(&order, text) => {
                conv.slots = Slots::default();
                Plan::bot(tracking::describe(&order, lang), "tracking:answered")
            }
            Ok(_) => {
                conv.slots.pending_order = Some(order_id.clone());
                missed_plan(
                    input,
                    conv,
                    lang,
                    Canned::ContactMismatch,
                    "tracking:verification_failed",
                )
            }
            Err(e) => {
                tracing::warn!(error = %e, "order lookup failed; handing off");
                handoff_plan(HandoffReason::LookupUnavailable, lang)
            }
        }
    }
}

/// A fresh anonymous customer id: nobody's profile, nobody's orders.
fn anonymous_id() -> CustomerId {
    CustomerId::parse(&format!("anon-{}", uuid::Uuid::new_v4().simple()))
        .expect("anon- and 32 hex digits is a valid customer id")
}

fn new_conversation(
    customer_id: CustomerId,
    verified: bool,
    inbound: &Inbound,
    now: chrono::DateTime<Utc>,
) -> Conversation {
    Conversation {
        id: ConversationId::new(),
        customer_id,
        verified,
        channel: inbound.channel.clone(),
        lang: inbound.lang.unwrap_or_default(),
        state: ConversationState::Bot,
        slots: Slots::default(),
        created_at: now,
        updated_at: now,
        handoff_reason: None,
        handoff_intent: None,
        handoff_at: None,
        version: 0,
        ticket: None,
        agent_id: None,
        assigned_at: None,
        first_response_at: None,
        resolution: None,
        csat_score: None,
    }
}

/// A message the bot could not act on: ask again, or hand off when it keeps happening.
fn missed_plan(
    input: &RouteInput<'_>,
    conv: &mut Conversation,
    lang: Lang,
    reply: Canned,
    reason: &str,
) -> Plan {
    match miss(input) {
        Decision::Handoff(r) => handoff_plan(r, lang),
        _ => {
            conv.slots.misses += 1;
            Plan::bot(canned(reply, lang).to_string(), reason)
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
    NewMessage::plain(Author::Bot, text, channel, at)
}

/// The stored answer of a retried request; a different request under the same key is refused.
fn replay(stored: IdempotencyRecord, fingerprint: &str) -> Result<TurnResult, DialogueError> {
    if !stored.request_hash.is_empty() && stored.request_hash != fingerprint {
        return Err(DialogueError::KeyReused);
    }
    serde_json::from_value(stored.response)
        .map_err(|e| DialogueError::Store(StoreError::Corrupt(format!("stored answer: {e}"))))
}
