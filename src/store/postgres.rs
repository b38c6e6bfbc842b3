//! The shared backend: PostgreSQL through sqlx, for several `switchboard serve` instances on one
//! database. The schema mirrors the SQLite one (`migrations/postgres`), so both backends read
//! into the row structs of `rows.rs`.
//!
//! Races are decided in the database, never in process memory:
//! - a turn's conversation update is conditional on the version it was computed from (under
//!   READ COMMITTED a concurrent update makes the `WHERE version = …` fail → `Conflict`);
//! - a retry key is a primary key (`ON CONFLICT DO NOTHING` waits for a concurrent insert and
//!   then reports `DuplicateKey`);
//! - a claim's capacity check locks the agent's row first (`SELECT … FOR UPDATE`), so two
//!   claims for one agent on two instances are counted one after the other;
//! - events draw their sequence numbers under a transaction-level advisory lock held to commit,
//!   so sequence order is commit order and a reader that resumes after seq N misses nothing.
//!
//! Each commit that wrote events also `NOTIFY`s [`CHANNEL`] with its last sequence; every
//! instance `LISTEN`s ([`PgStore::listen`]) to wake its live connections at once. The events
//! table stays the source of truth: a lost notification costs at most one poll interval.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use sqlx::{PgPool, Row};

use super::rows::{
    ATTACHMENT_COLUMNS, AgentRow, AttachmentRow, ConversationRow, CustomerRow, EventRow,
    MESSAGE_COLUMNS, MessageRow, message_event_data,
};
use super::{
    AgentStore, AttachmentStore, Committed, ConversationStore, CustomerStore, EventFilter,
    EventStore, IdempotencyRecord, OrderStore, Store, StoreError, Turn,
};
use crate::domain::{
    Agent, AgentId, Attachment, AttachmentId, Conversation, ConversationId, ConversationState,
    Customer, CustomerId, Event, EventKind, Message, NewEvent, Order, OrderId,
};

/// The notification channel commits announce their last event sequence on.
pub const CHANNEL: &str = "switchboard_events";

/// Key of the advisory lock that orders event sequence numbers (any constant unique to us).
const EVENT_LOCK: i64 = 0x5357_4254_4556; // "SWBTEV"

/// The PostgreSQL store.
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects to `url` and runs the migrations.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options: PgConnectOptions = url.parse()?;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(Self { pool })
    }

    /// The value stored under `name`, storing `candidate` first when there is none: the first
    /// instance to start decides, every other one reads the same value.
    pub async fn shared_secret(&self, name: &str, candidate: &str) -> Result<String, StoreError> {
        sqlx::query(
            "INSERT INTO shared_secrets (name, value, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(candidate)
        .bind(Utc::now())
        .execute(&self.pool)
        .await?;
        Ok(
            sqlx::query_scalar("SELECT value FROM shared_secrets WHERE name = $1")
                .bind(name)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Listens for other instances' commits and calls `on_commit` with each announced
    /// sequence, reconnecting after a lost connection (commits missed meanwhile are found by
    /// the live connections' poll).
    pub fn listen(&self, on_commit: Arc<dyn Fn(i64) + Send + Sync>) -> tokio::task::JoinHandle<()> {
        let pool = self.pool.clone();
        tokio::spawn(async move {
            loop {
                match PgListener::connect_with(&pool).await {
                    Ok(mut listener) => {
                        if let Err(e) = listener.listen(CHANNEL).await {
                            tracing::warn!(error = %e, "LISTEN failed");
                        } else {
                            loop {
                                match listener.recv().await {
                                    Ok(n) => {
                                        if let Ok(seq) = n.payload().parse::<i64>() {
                                            on_commit(seq);
                                        }
                                    }
                                    Err(e) => {
                                        tracing::warn!(error = %e, "event notifications lost; reconnecting");
                                        break;
                                    }
                                }
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot listen for events"),
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        })
    }
}

super::channel_sql::channel_store_impl!(PgStore, pool, |s: &str| s.to_string(), begin());

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

const CONVERSATION_COLUMNS: &str = "id, customer_id, verified, channel, lang, state, slots, created_at, updated_at, handoff_reason, handoff_intent, handoff_at, version, ticket, agent_id, assigned_at, first_response_at, resolution, csat_score";

type Tx<'a> = sqlx::Transaction<'a, sqlx::Postgres>;

/// Appends events in order under the sequence lock and announces the last one at commit.
async fn append_events(
    tx: &mut Tx<'_>,
    c: &Conversation,
    events: &[NewEvent],
    at: DateTime<Utc>,
) -> Result<i64, StoreError> {
    if events.is_empty() {
        return Ok(0);
    }
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(EVENT_LOCK)
        .execute(&mut **tx)
        .await?;
    let mut last = 0;
    for e in events {
        last = sqlx::query_scalar(
            "INSERT INTO events (conversation_id, kind, data, shopper_visible, agent_id, team, at)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING seq",
        )
        .bind(c.id.to_string())
        .bind(e.kind.as_str())
        .bind(e.data.to_string())
        .bind(i64::from(e.shopper_visible))
        .bind(c.agent_id.as_ref().map(AgentId::as_str))
        .bind(c.ticket.as_ref().map(|t| t.team.as_str()))
        .bind(at)
        .fetch_one(&mut **tx)
        .await?;
    }
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(last.to_string())
        .execute(&mut **tx)
        .await?;
    Ok(last)
}

#[async_trait]
impl ConversationStore for PgStore {
    async fn conversation(&self, id: ConversationId) -> Result<Option<Conversation>, StoreError> {
        let row: Option<ConversationRow> = sqlx::query_as(&format!(
            "SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE id = $1"
        ))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.map(Conversation::try_from).transpose()
    }

    async fn messages(&self, id: ConversationId) -> Result<Vec<Message>, StoreError> {
        let rows: Vec<MessageRow> = sqlx::query_as(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages m LEFT JOIN attachments a ON a.id = m.attachment_id
             WHERE m.conversation_id = $1 ORDER BY m.id"
        ))
        .bind(id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(Message::try_from).collect()
    }

    async fn idempotent(
        &self,
        scope: &str,
        client_message_id: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT conversation_id, request_hash, response FROM idempotency_keys WHERE scope = $1 AND client_message_id = $2",
        )
        .bind(scope)
        .bind(client_message_id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let conv: String = row.try_get("conversation_id")?;
        let response: String = row.try_get("response")?;
        Ok(Some(IdempotencyRecord {
            scope: scope.to_string(),
            client_message_id: client_message_id.to_string(),
            request_hash: row.try_get("request_hash")?,
            conversation_id: ConversationId::parse(&conv)
                .map_err(|_| corrupt("conversation id"))?,
            response: serde_json::from_str(&response).map_err(|_| corrupt("response"))?,
        }))
    }

    async fn record_turn(&self, turn: &Turn) -> Result<Committed, StoreError> {
        let mut tx = self.pool.begin().await?;
        let c = &turn.conversation;
        let now = Utc::now();
        if let Some(idem) = &turn.idempotency {
            let inserted = sqlx::query(
                "INSERT INTO idempotency_keys (scope, client_message_id, conversation_id, request_hash, response, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            )
            .bind(&idem.scope)
            .bind(&idem.client_message_id)
            .bind(idem.conversation_id.to_string())
            .bind(&idem.request_hash)
            .bind(idem.response.to_string())
            .bind(now)
            .execute(&mut *tx)
            .await?;
            if inserted.rows_affected() == 0 {
                tx.rollback().await?;
                return Err(StoreError::DuplicateKey);
            }
        }
        if let Some((agent, capacity)) = &turn.capacity_guard {
            // Claims for one agent queue up behind this row lock, on every instance.
            sqlx::query("SELECT id FROM agents WHERE id = $1 FOR UPDATE")
                .bind(agent.as_str())
                .fetch_optional(&mut *tx)
                .await?;
            let held: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM conversations WHERE agent_id = $1 AND state = 'with_human' AND id <> $2",
            )
            .bind(agent.as_str())
            .bind(c.id.to_string())
            .fetch_one(&mut *tx)
            .await?;
            if held >= i64::from(*capacity) {
                tx.rollback().await?;
                return Err(StoreError::OverCapacity);
            }
        }
        let slots = to_json(&c.slots)?;
        let ticket = c.ticket.as_ref().map(to_json).transpose()?;
        let version = if turn.is_new {
            0
        } else {
            turn.expected_version + 1
        };
        let sql = if turn.is_new {
            "INSERT INTO conversations (customer_id, verified, channel, lang, state, slots, created_at, updated_at, handoff_reason, handoff_intent, handoff_at,
                version, ticket, sla_due, priority, team, queue_lang, agent_id, assigned_at, first_response_at, resolution, csat_score, id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23)"
        } else {
            "UPDATE conversations SET customer_id = $1, verified = $2, channel = $3, lang = $4, state = $5, slots = $6, created_at = $7, updated_at = $8,
                handoff_reason = $9, handoff_intent = $10, handoff_at = $11, version = $12, ticket = $13, sla_due = $14, priority = $15, team = $16,
                queue_lang = $17, agent_id = $18, assigned_at = $19, first_response_at = $20, resolution = $21, csat_score = $22
             WHERE id = $23 AND version = $24"
        };
        let q = sqlx::query(sql)
            .bind(c.customer_id.as_str())
            .bind(i64::from(c.verified))
            .bind(&c.channel)
            .bind(c.lang.as_str())
            .bind(c.state.as_str())
            .bind(slots)
            .bind(c.created_at)
            .bind(c.updated_at)
            .bind(&c.handoff_reason)
            .bind(&c.handoff_intent)
            .bind(c.handoff_at)
            .bind(version)
            .bind(ticket)
            .bind(c.ticket.as_ref().map(|t| t.sla_due))
            .bind(c.ticket.as_ref().map_or(0, |t| i64::from(t.priority)))
            .bind(c.ticket.as_ref().map(|t| t.team.clone()))
            .bind(c.ticket.as_ref().map(|t| t.lang.as_str()))
            .bind(c.agent_id.as_ref().map(|a| a.as_str().to_string()))
            .bind(c.assigned_at)
            .bind(c.first_response_at)
            .bind(&c.resolution)
            .bind(c.csat_score.map(i64::from))
            .bind(c.id.to_string());
        let q = if turn.is_new {
            q
        } else {
            q.bind(turn.expected_version)
        };
        if q.execute(&mut *tx).await?.rows_affected() == 0 {
            tx.rollback().await?;
            return Err(StoreError::Conflict);
        }
        let agent_name: Option<String> = match &c.agent_id {
            Some(a) => {
                sqlx::query_scalar("SELECT name FROM agents WHERE id = $1")
                    .bind(a.as_str())
                    .fetch_optional(&mut *tx)
                    .await?
            }
            None => None,
        };
        let mut message_ids = Vec::with_capacity(turn.messages.len());
        let mut events = Vec::with_capacity(turn.messages.len() + turn.events.len());
        for m in &turn.messages {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO messages (conversation_id, author, text, at, channel, intent, confidence, out_of_scope, alternatives, route, route_reason, client_message_id, agent_id, private, attachment_id)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) RETURNING id",
            )
            .bind(c.id.to_string())
            .bind(m.author.as_str())
            .bind(&m.text)
            .bind(m.at)
            .bind(&m.channel)
            .bind(&m.intent)
            .bind(m.confidence.map(f64::from))
            .bind(m.out_of_scope.map(i64::from))
            .bind(to_json(&m.alternatives)?)
            .bind(m.route.as_ref().map(|r| r.route.clone()))
            .bind(m.route.as_ref().map(|r| r.reason.clone()))
            .bind(&m.client_message_id)
            .bind(m.agent_id.as_ref().map(|a| a.as_str().to_string()))
            .bind(i64::from(m.private))
            .bind(m.attachment.as_ref().map(|a| a.id.to_string()))
            .fetch_one(&mut *tx)
            .await?;
            message_ids.push(id);
            if super::channel_sql::is_outbound(m) {
                sqlx::query(super::channel_sql::ENQUEUE_OUTBOUND)
                    .bind(id)
                    .bind(&m.text)
                    .bind(now.timestamp_millis())
                    .bind(now)
                    .bind(c.id.to_string())
                    .execute(&mut *tx)
                    .await?;
            }
            let name = if m.agent_id == c.agent_id {
                agent_name.as_deref()
            } else {
                None
            };
            events.push(NewEvent {
                kind: EventKind::MessageAdded,
                data: message_event_data(id, m, name),
                shopper_visible: !m.private,
            });
        }
        events.extend(turn.events.iter().cloned());
        let last_seq = append_events(&mut tx, c, &events, now).await?;
        tx.commit().await?;
        Ok(Committed {
            message_ids,
            last_seq,
        })
    }

    async fn waiting(&self, limit: i64) -> Result<Vec<Conversation>, StoreError> {
        let rows: Vec<ConversationRow> = sqlx::query_as(&format!(
            "SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE state = 'waiting_for_human' ORDER BY sla_due, handoff_at LIMIT $1"
        ))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(Conversation::try_from).collect()
    }

    async fn ahead_in_line(&self, me: &Conversation) -> Result<usize, StoreError> {
        let Some(ticket) = &me.ticket else {
            return Ok(0);
        };
        let n: i64 = sqlx::query_scalar(super::rows::AHEAD_IN_LINE)
            .bind(&ticket.team)
            .bind(ticket.lang.as_str())
            .bind(ticket.sla_due)
            .bind(i64::from(ticket.priority))
            .bind(me.handoff_at.unwrap_or(me.updated_at))
            .bind(me.id.to_string())
            .fetch_one(&self.pool)
            .await?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    async fn held_by(&self, agent: &AgentId) -> Result<Vec<Conversation>, StoreError> {
        let rows: Vec<ConversationRow> = sqlx::query_as(&format!(
            "SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE agent_id = $1 AND state = 'with_human' ORDER BY assigned_at"
        ))
        .bind(agent.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(Conversation::try_from).collect()
    }

    async fn unanswered_since(
        &self,
        before: DateTime<Utc>,
    ) -> Result<Vec<Conversation>, StoreError> {
        let rows: Vec<ConversationRow> = sqlx::query_as(&format!(
            "SELECT {CONVERSATION_COLUMNS} FROM conversations
             WHERE state = 'with_human' AND assigned_at < $1
               AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = conversations.id
                               AND m.author = 'agent' AND m.at >= conversations.assigned_at)"
        ))
        .bind(before)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(Conversation::try_from).collect()
    }

    async fn answered_since(&self, since: DateTime<Utc>) -> Result<Vec<Conversation>, StoreError> {
        let rows: Vec<ConversationRow> = sqlx::query_as(&format!(
            "SELECT {CONVERSATION_COLUMNS} FROM conversations
             WHERE first_response_at >= $1 ORDER BY first_response_at"
        ))
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(Conversation::try_from).collect()
    }

    async fn recent_handle_seconds(&self, limit: i64) -> Result<Vec<i64>, StoreError> {
        let rows: Vec<(DateTime<Utc>, DateTime<Utc>)> = sqlx::query_as(
            "SELECT assigned_at, updated_at FROM conversations
             WHERE state = 'resolved' AND assigned_at IS NOT NULL ORDER BY updated_at DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(a, b)| (b - a).num_seconds().max(0))
            .collect())
    }

    async fn conversations_since(
        &self,
        customer: &CustomerId,
        since: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM conversations WHERE customer_id = $1 AND created_at >= $2",
        )
        .bind(customer.as_str())
        .bind(since)
        .fetch_one(&self.pool)
        .await?)
    }

    async fn set_csat(
        &self,
        id: ConversationId,
        score: i32,
        comment: Option<&str>,
        event: NewEvent,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let row: Option<ConversationRow> = sqlx::query_as(&format!(
            "UPDATE conversations SET csat_score = $1, csat_comment = $2, version = version + 1
             WHERE id = $3 AND csat_score IS NULL AND state = $4
             RETURNING {CONVERSATION_COLUMNS}"
        ))
        .bind(i64::from(score))
        .bind(comment)
        .bind(id.to_string())
        .bind(ConversationState::Resolved.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            tx.rollback().await?;
            return Ok(false);
        };
        let c = Conversation::try_from(row)?;
        append_events(&mut tx, &c, &[event], Utc::now()).await?;
        tx.commit().await?;
        Ok(true)
    }
}

#[async_trait]
impl CustomerStore for PgStore {
    async fn upsert_customers(&self, customers: &[Customer]) -> Result<usize, StoreError> {
        let mut tx = self.pool.begin().await?;
        let now = Utc::now();
        for c in customers {
            sqlx::query(
                "INSERT INTO customers (id, name, language, tier, lifetime_spend_cents, order_count, complaints_90d, tags, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, language = excluded.language, tier = excluded.tier,
                   lifetime_spend_cents = excluded.lifetime_spend_cents, order_count = excluded.order_count,
                   complaints_90d = excluded.complaints_90d, tags = excluded.tags, updated_at = excluded.updated_at",
            )
            .bind(c.id.as_str())
            .bind(&c.name)
            .bind(c.language.as_str())
            .bind(c.tier.as_str())
            .bind(c.lifetime_spend_cents)
            .bind(c.order_count)
            .bind(c.complaints_90d)
            .bind(to_json(&c.tags)?)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(customers.len())
    }

    async fn customer(&self, id: &CustomerId) -> Result<Option<Customer>, StoreError> {
        let row: Option<CustomerRow> = sqlx::query_as(
            "SELECT id, name, language, tier, lifetime_spend_cents, order_count, complaints_90d, tags FROM customers WHERE id = $1",
        )
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.map(Customer::try_from).transpose()
    }

    async fn customer_count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM customers")
            .fetch_one(&self.pool)
            .await?)
    }
}

#[async_trait]
impl OrderStore for PgStore {
    async fn upsert_orders(&self, orders: &[Order]) -> Result<usize, StoreError> {
        let mut tx = self.pool.begin().await?;
        let now = Utc::now();
        for o in orders {
            sqlx::query(
                "INSERT INTO orders (order_id, customer_id, body, updated_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (order_id) DO UPDATE SET customer_id = excluded.customer_id, body = excluded.body, updated_at = excluded.updated_at",
            )
            .bind(o.order_id.as_str())
            .bind(o.customer_id.as_str())
            .bind(to_json(o)?)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(orders.len())
    }

    async fn order(&self, id: &OrderId) -> Result<Option<Order>, StoreError> {
        let body: Option<String> =
            sqlx::query_scalar("SELECT body FROM orders WHERE order_id = $1")
                .bind(id.as_str())
                .fetch_optional(&self.pool)
                .await?;
        body.map(|b| serde_json::from_str(&b).map_err(|_| corrupt("order body")))
            .transpose()
    }

    async fn orders_of(&self, customer: &CustomerId, limit: i64) -> Result<Vec<Order>, StoreError> {
        let bodies: Vec<String> = sqlx::query_scalar(
            "SELECT body FROM orders WHERE customer_id = $1 ORDER BY order_id DESC LIMIT $2",
        )
        .bind(customer.as_str())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        bodies
            .iter()
            .map(|b| serde_json::from_str(b).map_err(|_| corrupt("order body")))
            .collect()
    }
}

const AGENT_COLUMNS: &str =
    "id, name, languages, teams, capacity, status, created_at, last_seen_at";

#[async_trait]
impl AgentStore for PgStore {
    async fn create_agent(&self, a: &Agent, token_hash: &str) -> Result<(), StoreError> {
        let langs: Vec<&str> = a.languages.iter().map(|l| l.as_str()).collect();
        let r = sqlx::query(
            "INSERT INTO agents (id, name, languages, teams, capacity, status, token_hash, created_at, last_seen_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
        )
        .bind(a.id.as_str())
        .bind(&a.name)
        .bind(to_json(&langs)?)
        .bind(to_json(&a.teams)?)
        .bind(i64::from(a.capacity))
        .bind(a.status.as_str())
        .bind(token_hash)
        .bind(a.created_at)
        .bind(a.last_seen_at)
        .execute(&self.pool)
        .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::AlreadyExists("agent"));
        }
        Ok(())
    }

    async fn agent(&self, id: &AgentId) -> Result<Option<Agent>, StoreError> {
        let row: Option<AgentRow> =
            sqlx::query_as(&format!("SELECT {AGENT_COLUMNS} FROM agents WHERE id = $1"))
                .bind(id.as_str())
                .fetch_optional(&self.pool)
                .await?;
        row.map(Agent::try_from).transpose()
    }

    async fn agent_by_token_hash(&self, hash: &str) -> Result<Option<Agent>, StoreError> {
        let row: Option<AgentRow> = sqlx::query_as(&format!(
            "SELECT {AGENT_COLUMNS} FROM agents WHERE token_hash = $1"
        ))
        .bind(hash)
        .fetch_optional(&self.pool)
        .await?;
        row.map(Agent::try_from).transpose()
    }

    async fn agents(&self) -> Result<Vec<Agent>, StoreError> {
        let rows: Vec<AgentRow> =
            sqlx::query_as(&format!("SELECT {AGENT_COLUMNS} FROM agents ORDER BY id"))
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter().map(Agent::try_from).collect()
    }

    async fn update_agent(&self, a: &Agent) -> Result<bool, StoreError> {
        let langs: Vec<&str> = a.languages.iter().map(|l| l.as_str()).collect();
        let r = sqlx::query(
            "UPDATE agents SET name = $1, languages = $2, teams = $3, capacity = $4, status = $5 WHERE id = $6",
        )
        .bind(&a.name)
        .bind(to_json(&langs)?)
        .bind(to_json(&a.teams)?)
        .bind(i64::from(a.capacity))
        .bind(a.status.as_str())
        .bind(a.id.as_str())
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() > 0)
    }

    async fn delete_agent(&self, id: &AgentId) -> Result<bool, StoreError> {
        let r = sqlx::query("DELETE FROM agents WHERE id = $1")
            .bind(id.as_str())
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    async fn set_agent_status(
        &self,
        id: &AgentId,
        status: crate::domain::AgentStatus,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query("UPDATE agents SET status = $1 WHERE id = $2")
            .bind(status.as_str())
            .bind(id.as_str())
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn touch_agent(&self, id: &AgentId, at: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query("UPDATE agents SET last_seen_at = $1 WHERE id = $2")
            .bind(at)
            .bind(id.as_str())
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

const EVENT_COLUMNS: &str = "seq, conversation_id, kind, data, shopper_visible, agent_id, team, at";

#[async_trait]
impl EventStore for PgStore {
    async fn events_after(
        &self,
        filter: &EventFilter,
        after: i64,
        limit: i64,
    ) -> Result<Vec<Event>, StoreError> {
        let rows: Vec<EventRow> = match filter {
            EventFilter::Shopper(id) => {
                sqlx::query_as(&format!(
                    "SELECT {EVENT_COLUMNS} FROM events WHERE conversation_id = $1 AND shopper_visible = 1 AND seq > $2 ORDER BY seq LIMIT $3"
                ))
                .bind(id.to_string())
                .bind(after)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
            EventFilter::Agent { id, teams } => {
                sqlx::query_as(&format!(
                    "SELECT {EVENT_COLUMNS} FROM events WHERE seq > $1 AND (
                        agent_id = $2
                        OR (kind IN ('queue_changed', 'state_changed') AND team = ANY($3))
                        OR conversation_id IN (SELECT id FROM conversations WHERE agent_id = $2 AND state = 'with_human'))
                     ORDER BY seq LIMIT $4"
                ))
                .bind(after)
                .bind(id.as_str())
                .bind(teams)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
            EventFilter::All => {
                sqlx::query_as(&format!(
                    "SELECT {EVENT_COLUMNS} FROM events WHERE seq > $1 ORDER BY seq LIMIT $2"
                ))
                .bind(after)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.into_iter().map(Event::try_from).collect()
    }

    async fn last_seq(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar::<_, Option<i64>>("SELECT MAX(seq) FROM events")
                .fetch_one(&self.pool)
                .await?
                .unwrap_or(0),
        )
    }
}

#[async_trait]
impl AttachmentStore for PgStore {
    async fn put_attachment(&self, meta: &Attachment, bytes: &[u8]) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO attachments (id, conversation_id, content_type, size, sha256, created_at, bytes)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(meta.id.to_string())
        .bind(meta.conversation_id.to_string())
        .bind(meta.content_type.content_type())
        .bind(i64::try_from(meta.size).map_err(|_| corrupt("attachment size"))?)
        .bind(&meta.sha256)
        .bind(meta.created_at)
        .bind(bytes)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn attachment(&self, id: AttachmentId) -> Result<Option<Attachment>, StoreError> {
        let row: Option<AttachmentRow> = sqlx::query_as(&format!(
            "SELECT {ATTACHMENT_COLUMNS} FROM attachments WHERE id = $1"
        ))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.map(Attachment::try_from).transpose()
    }

    async fn attachment_bytes(&self, id: AttachmentId) -> Result<Option<Vec<u8>>, StoreError> {
        let row: Option<(Vec<u8>, String)> =
            sqlx::query_as("SELECT bytes, sha256 FROM attachments WHERE id = $1")
                .bind(id.to_string())
                .fetch_optional(&self.pool)
                .await?;
        let Some((bytes, sha256)) = row else {
            return Ok(None);
        };
        if crate::domain::attachment::sha256_hex(&bytes) != sha256 {
            return Err(corrupt("attachment bytes do not match their SHA-256"));
        }
        Ok(Some(bytes))
    }

    async fn delete_attachment(&self, id: AttachmentId) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "DELETE FROM attachments WHERE id = $1
               AND NOT EXISTS (SELECT 1 FROM messages WHERE attachment_id = $1)",
        )
        .bind(id.to_string())
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() > 0)
    }
}

#[async_trait]
impl Store for PgStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}
