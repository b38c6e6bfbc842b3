//! Route, the human side: the queue in service order, claims, and everything an agent does to
//! a conversation they hold (reply, private note, transfer, hand back, resolve), plus the
//! shopper's rating and the sweeper that returns unanswered conversations to the queue. Every
//! change goes through the conversation state machine and is committed with its events,
//! conditional on the version it read (a lost race is retried or reported, never merged).

pub mod health;

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use crate::domain::{
    Agent, AgentId, Author, Conversation, ConversationId, ConversationState, EventKind,
    IllegalTransition, Lang, NewEvent, NewMessage, Slots, Transition,
};
use crate::live::Notifier;
use crate::metrics::Metrics;
use crate::routing::RoutingPolicy;
use crate::routing::queue::{self, AgentSkills, QueueEntry};
use crate::store::{Committed, Store, StoreError, Turn};

/// How many waiting conversations the queue views consider.
const QUEUE_WINDOW: i64 = 1000;
/// Walks of the queue one "claim next" makes while other agents keep winning its candidates.
const CLAIM_PASSES: usize = 50;
/// An agent counts as online for this long after their last sign of life.
pub const AGENT_FRESH_SECONDS: i64 = 60;

/// Why a desk action failed.
#[derive(Debug, thiserror::Error)]
pub enum DeskError {
    #[error("conversation not found")]
    NotFound,
    #[error("agent not found")]
    UnknownAgent,
    /// Only the agent holding a conversation may act on it.
    #[error("another agent holds this conversation")]
    NotHolder,
    #[error(transparent)]
    Illegal(#[from] IllegalTransition),
    #[error("the agent is at capacity")]
    AtCapacity,
    #[error("the conversation changed concurrently; retry")]
    Busy,
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for DeskError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::OverCapacity => Self::AtCapacity,
            StoreError::Conflict => Self::Busy,
            e => Self::Store(e),
        }
    }
}

/// The result of a claim.
#[derive(Debug)]
pub enum ClaimOutcome {
    Claimed(Box<Conversation>),
    /// Another agent holds it already.
    AlreadyTaken,
    /// It is not waiting for a human (with the bot, or resolved).
    NotWaiting,
}

/// Where a shopper stands in line.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct QueueStatus {
    /// 1 = next.
    pub position: usize,
    /// Expected seconds until an agent answers; `None` when nobody who can is online.
    pub expected_wait_seconds: Option<i64>,
}

/// Where a transferred conversation goes.
#[derive(Debug, Clone)]
pub enum TransferTo {
    Agent(AgentId),
    Team(String),
}

/// The human queue and the agents' actions on it.
pub struct Desk {
    pub store: Arc<dyn Store>,
    pub policy: Arc<RoutingPolicy>,
    pub notifier: Arc<Notifier>,
    pub metrics: Arc<Metrics>,
}

/// The queue entry of a waiting conversation.
pub fn entry(c: &Conversation) -> Option<QueueEntry> {
    let t = c.ticket.as_ref()?;
    Some(QueueEntry {
        conversation_id: c.id,
        waiting_since: c.handoff_at.unwrap_or(c.updated_at),
        sla_due: t.sla_due,
        priority: t.priority,
        team: t.team.clone(),
        lang: t.lang,
    })
}

pub fn skills(a: &Agent) -> AgentSkills {
    AgentSkills {
        languages: a.languages.clone(),
        teams: a.teams.clone(),
        capacity: a.capacity,
    }
}

fn agent_message(agent: &AgentId, text: &str, private: bool, at: DateTime<Utc>) -> NewMessage {
    NewMessage {
        agent_id: Some(agent.clone()),
        private,
        ..NewMessage::plain(Author::Agent, text, "agent", at)
    }
}

/// A line for agents in the transcript (transfers, returns to the queue).
fn system_message(text: String, at: DateTime<Utc>) -> NewMessage {
    NewMessage {
        private: true,
        ..NewMessage::plain(Author::System, text, "system", at)
    }
}

fn state_event(from: ConversationState, to: ConversationState) -> NewEvent {
    NewEvent::public(
        EventKind::StateChanged,
        json!({"from": from.as_str(), "to": to.as_str()}),
    )
}

fn queue_event(c: &Conversation, change: &str) -> NewEvent {
    NewEvent::internal(
        EventKind::QueueChanged,
        json!({"change": change, "ticket": c.ticket, "waiting_since": c.handoff_at}),
    )
}

impl Desk {
    /// Runs `change` on the current conversation and commits it, rereading and retrying when
    /// another writer got there first.
    async fn change<F>(
        &self,
        id: ConversationId,
        change: F,
    ) -> Result<(Conversation, Committed), DeskError>
    where
        F: Fn(Conversation) -> Result<Turn, DeskError> + Send + Sync,
    {
        let mut attempt = 0;
        loop {
            let conv = self
                .store
                .conversation(id)
                .await?
                .ok_or(DeskError::NotFound)?;
            let turn = change(conv)?;
            match self.store.record_turn(&turn).await {
                Ok(committed) => {
                    self.notifier.committed(committed.last_seq);
                    let mut conv = turn.conversation;
                    conv.version = turn.expected_version + 1;
                    return Ok((conv, committed));
                }
                Err(StoreError::Conflict) if attempt < 8 => attempt += 1,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Waiting conversations in service order.
    pub async fn ordered_queue(&self) -> Result<Vec<Conversation>, DeskError> {
        let mut waiting = self.store.waiting(QUEUE_WINDOW).await?;
        waiting.sort_by(|a, b| match (entry(a), entry(b)) {
            (Some(x), Some(y)) => queue::compare(&x, &y),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => a.handoff_at.cmp(&b.handoff_at),
        });
        Ok(waiting)
    }

    /// The conversations `agent` may take, in the order they would be served.
    pub async fn queue_for(&self, agent: &Agent) -> Result<Vec<Conversation>, DeskError> {
        let s = skills(agent);
        Ok(self
            .ordered_queue()
            .await?
            .into_iter()
            .filter(|c| entry(c).is_none_or(|e| queue::eligible(&e, &s)))
            .collect())
    }

    /// A waiting conversation's place in line and expected wait.
    pub async fn status(&self, conv: &Conversation) -> Result<Option<QueueStatus>, DeskError> {
        if conv.state != ConversationState::WaitingForHuman {
            return Ok(None);
        }
        let Some(me) = entry(conv) else {
            return Ok(None);
        };
        // Counted by the database over an index: a handoff answer never reads the whole queue.
        let ahead = self.store.ahead_in_line(conv).await?;
        let now = Utc::now();
        let fresh = Duration::seconds(AGENT_FRESH_SECONDS);
        let slots: usize = self
            .store
            .agents()
            .await?
            .iter()
            .filter(|a| a.is_available(now, fresh) && queue::eligible(&me, &skills(a)))
            .map(|a| a.capacity as usize)
            .sum();
        let recent: Vec<Duration> = self
            .store
            .recent_handle_seconds(50)
            .await?
            .into_iter()
            .map(Duration::seconds)
            .collect();
        let wait = queue::expected_wait(ahead, slots, &recent, self.policy.default_handle_time);
        Ok(Some(QueueStatus {
            position: ahead + 1,
            expected_wait_seconds: wait.map(|w| w.num_seconds()),
        }))
    }

    /// The queue's health now and its first-response record since midnight UTC.
    pub async fn health(&self, now: DateTime<Utc>) -> Result<health::QueueHealth, DeskError> {
        let since = health::start_of_day(now);
        let waiting = self.store.waiting(QUEUE_WINDOW).await?;
        let answered = self.store.answered_since(since).await?;
        let teams: Vec<String> = self.policy.teams.keys().cloned().collect();
        Ok(health::summarise(&waiting, &answered, &teams, since, now))
    }

    /// Claims the next conversation for `agent` (`None` when nothing fits or they are full).
    pub async fn claim_next(&self, agent: &Agent) -> Result<Option<Conversation>, DeskError> {
        let held = self.store.held_by(&agent.id).await?.len() as u32;
        if !queue::has_capacity(&skills(agent), held) {
            self.metrics
                .claims
                .with_label_values(&["at_capacity"])
                .inc();
            return Err(DeskError::AtCapacity);
        }
        // Another agent (on this or another instance) may take every candidate of a snapshot
        // while this one walks it; the queue is only empty when a whole pass lost no race.
        for _ in 0..CLAIM_PASSES {
            let mut raced = false;
            for candidate in self.queue_for(agent).await? {
                match self.claim(agent, candidate.id).await {
                    Ok(ClaimOutcome::Claimed(c)) => return Ok(Some(*c)),
                    Ok(_) | Err(DeskError::Busy) => raced = true,
                    Err(e) => return Err(e),
                }
            }
            if !raced {
                self.metrics.claims.with_label_values(&["empty"]).inc();
                return Ok(None);
            }
        }
        Err(DeskError::Busy)
    }

    /// Claims one conversation for `agent`: exactly one agent wins a race.
    pub async fn claim(
        &self,
        agent: &Agent,
        id: ConversationId,
    ) -> Result<ClaimOutcome, DeskError> {
        let now = Utc::now();
        let agent_id = agent.id.clone();
        let capacity = agent.capacity;
        let result = self
            .change(id, |mut c| {
                match c.state {
                    ConversationState::WaitingForHuman => {}
                    ConversationState::WithHuman => return Err(DeskError::NotHolder),
                    _ => {
                        return Err(DeskError::Illegal(IllegalTransition {
                            from: c.state,
                            transition: Transition::AgentClaims,
                        }));
                    }
                }
                let from = c.transition(Transition::AgentClaims)?;
                c.agent_id = Some(agent_id.clone());
                c.assigned_at = Some(now);
                c.updated_at = now;
                let mut turn = Turn::update(c.clone());
                turn.capacity_guard = Some((agent_id.clone(), capacity));
                turn.events = vec![
                    state_event(from, c.state),
                    NewEvent::public(
                        EventKind::Assigned,
                        json!({"agent": {"id": agent_id.as_str()}}),
                    ),
                    queue_event(&c, "claimed"),
                ];
                turn.conversation = c;
                Ok(turn)
            })
            .await;
        match result {
            Ok((c, _)) => {
                self.metrics.claims.with_label_values(&["claimed"]).inc();
                if let Some(at) = c.handoff_at {
                    self.metrics
                        .wait_seconds
                        .observe((now - at).num_milliseconds() as f64 / 1000.0);
                }
                Ok(ClaimOutcome::Claimed(Box::new(c)))
            }
            Err(DeskError::NotHolder) => {
                self.metrics.claims.with_label_values(&["taken"]).inc();
                Ok(ClaimOutcome::AlreadyTaken)
            }
            Err(DeskError::Illegal(_)) => {
                self.metrics
                    .claims
                    .with_label_values(&["not_waiting"])
                    .inc();
                Ok(ClaimOutcome::NotWaiting)
            }
            Err(e) => Err(e),
        }
    }

    fn require_holder(c: &Conversation, agent: &AgentId) -> Result<(), DeskError> {
        if c.state == ConversationState::WithHuman && c.agent_id.as_ref() == Some(agent) {
            Ok(())
        } else if c.state == ConversationState::WithHuman {
            Err(DeskError::NotHolder)
        } else {
            Err(DeskError::Illegal(IllegalTransition {
                from: c.state,
                transition: Transition::Resolve,
            }))
        }
    }

    /// An agent's reply (or, with `private`, a note only agents see). Returns the message id.
    pub async fn reply(
        &self,
        agent: &AgentId,
        id: ConversationId,
        text: &str,
        private: bool,
    ) -> Result<i64, DeskError> {
        let now = Utc::now();
        let (c, committed) = self
            .change(id, |mut c| {
                Self::require_holder(&c, agent)?;
                let first = !private && c.first_response_at.is_none();
                if first {
                    c.first_response_at = Some(now);
                    if let Some(t) = c.ticket.as_mut()
                        && now > t.sla_due
                    {
                        t.breached_at = Some(now);
                    }
                }
                c.updated_at = now;
                let mut turn = Turn::update(c.clone());
                turn.messages = vec![agent_message(agent, text, private, now)];
                turn.conversation = c;
                Ok(turn)
            })
            .await?;
        if !private && c.first_response_at == Some(now) {
            if let Some(at) = c.handoff_at {
                self.metrics
                    .first_response_seconds
                    .observe((now - at).num_milliseconds() as f64 / 1000.0);
            }
            if let Some(t) = c.ticket.as_ref().filter(|t| t.breached_at.is_some()) {
                self.metrics
                    .sla_breaches
                    .with_label_values(&[&t.tier])
                    .inc();
            }
        }
        Ok(committed.message_ids.first().copied().unwrap_or_default())
    }

    /// Hands the conversation to another agent or back to a team's queue.
    pub async fn transfer(
        &self,
        agent: &AgentId,
        id: ConversationId,
        to: TransferTo,
        target: Option<&Agent>,
    ) -> Result<Conversation, DeskError> {
        let now = Utc::now();
        let (c, _) = self
            .change(id, |mut c| {
                Self::require_holder(&c, agent)?;
                let mut turn;
                match &to {
                    TransferTo::Agent(other) => {
                        c.transition(Transition::Transfer)?;
                        c.agent_id = Some(other.clone());
                        c.assigned_at = Some(now);
                        turn = Turn::update(c.clone());
                        turn.capacity_guard =
                            target.map(|t| (t.id.clone(), t.capacity));
                        turn.events = vec![NewEvent::public(
                            EventKind::Assigned,
                            json!({"agent": {"id": other.as_str()}, "transferred_from": agent.as_str()}),
                        )];
                        turn.messages = vec![system_message(
                            format!("Transferred from {agent} to {other}"),
                            now,
                        )];
                    }
                    TransferTo::Team(team) => {
                        let from = c.transition(Transition::ReturnToQueue)?;
                        c.agent_id = None;
                        c.assigned_at = None;
                        if let Some(t) = c.ticket.as_mut() {
                            t.team = team.clone();
                        }
                        turn = Turn::update(c.clone());
                        turn.events = vec![state_event(from, c.state), queue_event(&c, "transferred")];
                        turn.messages = vec![system_message(
                            format!("Transferred from {agent} to team {team}"),
                            now,
                        )];
                    }
                }
                c.updated_at = now;
                turn.conversation = c;
                Ok(turn)
            })
            .await?;
        Ok(c)
    }

    /// Gives the conversation back to the bot.
    pub async fn handback(
        &self,
        agent: &AgentId,
        id: ConversationId,
    ) -> Result<Conversation, DeskError> {
        let now = Utc::now();
        let (c, _) = self
            .change(id, |mut c| {
                Self::require_holder(&c, agent)?;
                let from = c.transition(Transition::HandBackToBot)?;
                c.agent_id = None;
                c.assigned_at = None;
                c.ticket = None;
                c.handoff_at = None;
                c.handoff_reason = None;
                c.handoff_intent = None;
                c.slots = Slots::default();
                c.updated_at = now;
                let mut turn = Turn::update(c.clone());
                turn.events = vec![state_event(from, c.state), queue_event(&c, "handed_back")];
                turn.conversation = c;
                Ok(turn)
            })
            .await?;
        Ok(c)
    }

    /// Closes the conversation with a resolution code and asks the shopper for a rating.
    pub async fn resolve(
        &self,
        agent: &AgentId,
        id: ConversationId,
        code: &str,
    ) -> Result<Conversation, DeskError> {
        let now = Utc::now();
        let (c, _) = self
            .change(id, |mut c| {
                Self::require_holder(&c, agent)?;
                let from = c.transition(Transition::Resolve)?;
                c.resolution = Some(code.to_string());
                c.csat_score = None;
                c.updated_at = now;
                let lang = c.lang;
                let mut turn = Turn::update(c.clone());
                turn.messages = vec![NewMessage::plain(
                    Author::Bot,
                    csat_question(lang),
                    &c.channel,
                    now,
                )];
                turn.events = vec![
                    state_event(from, c.state),
                    NewEvent::public(EventKind::CsatRequested, json!({"resolution": code})),
                ];
                turn.conversation = c;
                Ok(turn)
            })
            .await?;
        Ok(c)
    }

    /// Stores the shopper's rating once.
    pub async fn csat(
        &self,
        id: ConversationId,
        score: i32,
        comment: Option<&str>,
    ) -> Result<bool, DeskError> {
        let stored = self
            .store
            .set_csat(
                id,
                score,
                comment,
                NewEvent::internal(EventKind::CsatReceived, json!({"score": score})),
            )
            .await?;
        if stored {
            self.metrics.csat.observe(f64::from(score));
            if let Ok(seq) = self.store.last_seq().await {
                self.notifier.committed(seq);
            }
        }
        Ok(stored)
    }

    /// Returns a held conversation to the queue at its original place (its `handoff_at` and
    /// `sla_due` are kept).
    pub async fn requeue(&self, id: ConversationId, why: &str) -> Result<(), DeskError> {
        let now = Utc::now();
        self.change(id, |mut c| {
            let from = c.transition(Transition::ReturnToQueue)?;
            let previous = c.agent_id.take();
            c.assigned_at = None;
            c.updated_at = now;
            let mut turn = Turn::update(c.clone());
            turn.events = vec![state_event(from, c.state), queue_event(&c, why)];
            turn.messages = vec![system_message(
                format!(
                    "Returned to the queue ({why}) from {}",
                    previous.as_ref().map_or("nobody", AgentId::as_str)
                ),
                now,
            )];
            turn.conversation = c;
            Ok(turn)
        })
        .await?;
        Ok(())
    }

    /// Returns everything an agent holds to the queue (deleted, gone offline).
    pub async fn release_all(&self, agent: &AgentId, why: &str) -> Result<usize, DeskError> {
        let held = self.store.held_by(agent).await?;
        for c in &held {
            match self.requeue(c.id, why).await {
                Ok(()) | Err(DeskError::Illegal(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(held.len())
    }

    /// One sweep: conversations whose agent did not answer within the policy's timeout, and
    /// conversations of agents who went silent, return to the queue.
    pub async fn sweep(&self, now: DateTime<Utc>) -> Result<usize, DeskError> {
        let mut n = 0;
        let timeout = self.policy.agent_reply_timeout;
        for c in self.store.unanswered_since(now - timeout).await? {
            match self.requeue(c.id, "agent_reply_timeout").await {
                Ok(()) => n += 1,
                Err(DeskError::Illegal(_)) | Err(DeskError::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
        let gone = Duration::seconds(AGENT_FRESH_SECONDS * 5);
        for a in self.store.agents().await? {
            let silent = a.last_seen_at.is_none_or(|t| now - t > gone);
            if a.status == crate::domain::AgentStatus::Offline || silent {
                n += self.release_all(&a.id, "agent_offline").await?;
            }
        }
        Ok(n)
    }
}

/// The satisfaction question after resolution.
pub fn csat_question(lang: Lang) -> &'static str {
    match lang {
        Lang::En => {
            "Your conversation has been resolved. How would you rate our help, from 1 (poor) to 5 (excellent)?"
        }
        Lang::Zh => "您的问题已处理完毕。请为本次服务打分：1（很差）到 5（非常满意）。",
    }
}
