//! The embedded backend: SQLite through sqlx, in WAL mode with `synchronous = FULL`, so a
//! committed turn survives `kill -9` and power loss. Migrations are compiled in. Writers take
//! the database lock at `BEGIN IMMEDIATE`, so a read-then-write transaction never fails on
//! lock upgrade; version checks decide races between requests. Every write goes through one
//! connection (`writer`, a pool of one, which hands its connection out first come first
//! served): SQLite has one writer at a time anyway, and writers waiting on the pool's queue
//! are served in order as soon as the lock is free, where writers on several connections
//! would poll the lock with SQLite's busy handler, sleeping up to 100 ms between tries (the
//! service's latency tail under load). Reads use the other connections and never wait for
//! writes (WAL).

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use super::files::AttachmentFiles;
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

/// The SQLite store.
#[derive(Clone)]
pub struct SqliteStore {
    /// Reads.
    pool: SqlitePool,
    /// Writes: one connection.
    writer: SqlitePool,
    /// Attachment bytes, as files in `dir/attachments`.
    files: Arc<AttachmentFiles>,
}

impl SqliteStore {
    /// Opens (creating when missing) `dir/switchboard.db` and runs migrations.
    pub async fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?;
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(dir.join("switchboard.db"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(30));
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&writer).await?;
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        let files = Arc::new(AttachmentFiles::new(dir.join("attachments")));
        Ok(Self {
            pool,
            writer,
            files,
        })
    }
}

super::channel_sql::channel_store_impl!(
    SqliteStore,
    writer,
    |s: &str| s.replace('$', "?"),
    begin_with("BEGIN IMMEDIATE")
);

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

const CONVERSATION_COLUMNS: &str = "id, customer_id, verified, channel, lang, state, slots, created_at, updated_at, handoff_reason, handoff_intent, handoff_at, version, ticket, agent_id, assigned_at, first_response_at, resolution, csat_score";

async fn insert_event(
    tx: &mut sqlx::SqliteConnection,
    c: &Conversation,
    e: &NewEvent,
    at: DateTime<Utc>,
) -> Result<i64, StoreError> {
    let seq: i64 = sqlx::query_scalar(
        "INSERT INTO events (conversation_id, kind, data, shopper_visible, agent_id, team, at)
         VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING seq",
    )
    .bind(c.id.to_string())
    .bind(e.kind.as_str())
    .bind(e.data.to_string())
    .bind(i64::from(e.shopper_visible))
    .bind(c.agent_id.as_ref().map(AgentId::as_str))
    .bind(c.ticket.as_ref().map(|t| t.team.as_str()))
    .bind(at)
    .fetch_one(&mut *tx)
    .await?;
    Ok(seq)
}

#[async_trait]
impl ConversationStore for SqliteStore {
    async fn conversation(&self, id: ConversationId) -> Result<Option<Conversation>, StoreError> {
        let row: Option<ConversationRow> = sqlx::query_as(&format!(
            "SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE id = ?"
        ))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.map(Conversation::try_from).transpose()
    }

    async fn messages(&self, id: ConversationId) -> Result<Vec<Message>, StoreError> {
        let rows: Vec<MessageRow> = sqlx::query_as(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages m LEFT JOIN attachments a ON a.id = m.attachment_id
             WHERE m.conversation_id = ? ORDER BY m.id"
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
            "SELECT conversation_id, request_hash, response FROM idempotency_keys WHERE scope = ? AND client_message_id = ?",
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
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let c = &turn.conversation;
        let now = Utc::now();
        if let Some(idem) = &turn.idempotency {
            let inserted = sqlx::query(
                "INSERT INTO idempotency_keys (scope, client_message_id, conversation_id, request_hash, response, created_at)
                 VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
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
            let held: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM conversations WHERE agent_id = ? AND state = 'with_human' AND id <> ?",
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
        let q = if turn.is_new {
            sqlx::query(
                "INSERT INTO conversations (customer_id, verified, channel, lang, state, slots, created_at, updated_at, handoff_reason, handoff_intent, handoff_at,
                    version, ticket, sla_due, priority, team, queue_lang, agent_id, assigned_at, first_response_at, resolution, csat_score, id)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(c.customer_id.as_str())
            .bind(i64::from(c.verified))
            .bind(&c.channel)
            .bind(c.lang.as_str())
            .bind(c.state.as_str())
        } else {
            sqlx::query(
                "UPDATE conversations SET customer_id = ?, verified = ?, channel = ?, lang = ?, state = ?, slots = ?, created_at = ?, updated_at = ?,
                    handoff_reason = ?, handoff_intent = ?, handoff_at = ?, version = ?, ticket = ?, sla_due = ?, priority = ?, team = ?,
                    queue_lang = ?, agent_id = ?, assigned_at = ?, first_response_at = ?, resolution = ?, csat_score = ?
                 WHERE id = ? AND version = ?",
            )
            .bind(c.customer_id.as_str())
            .bind(i64::from(c.verified))
            .bind(&c.channel)
            .bind(c.lang.as_str())
            .bind(c.state.as_str())
        };
        let q = q
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
        let mut committed = Committed {
            message_ids: Vec::with_capacity(turn.messages.len()),
            last_seq: 0,
        };
        let agent_name: Option<String> = match &c.agent_id {
            Some(a) => {
                sqlx::query_scalar("SELECT name FROM agents WHERE id = ?")
                    .bind(a.as_str())
                    .fetch_optional(&mut *tx)
                    .await?
            }
            None => None,
        };
        // The turn's messages in one statement, then its events (each message's first, in
        // order, then the turn's own) in another: ids and seqs follow the VALUES order.
        if !turn.messages.is_empty() {
            let alternatives = turn
                .messages
                .iter()
                .map(|m| to_json(&m.alternatives))
                .collect::<Result<Vec<_>, _>>()?;
            let mut insert = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                "INSERT INTO messages (conversation_id, author, text, at, channel, intent, confidence, out_of_scope, alternatives, route, route_reason, client_message_id, agent_id, private, attachment_id) ",
            );
            insert.push_values(
                turn.messages.iter().zip(alternatives),
                |mut row, (m, alternatives)| {
                    row.push_bind(c.id.to_string())
                        .push_bind(m.author.as_str())
                        .push_bind(m.text.clone())
                        .push_bind(m.at)
                        .push_bind(m.channel.clone())
                        .push_bind(m.intent.clone())
                        .push_bind(m.confidence.map(f64::from))
                        .push_bind(m.out_of_scope.map(i64::from))
                        .push_bind(alternatives)
                        .push_bind(m.route.as_ref().map(|r| r.route.clone()))
                        .push_bind(m.route.as_ref().map(|r| r.reason.clone()))
                        .push_bind(m.client_message_id.clone())
                        .push_bind(m.agent_id.as_ref().map(|a| a.as_str().to_string()))
                        .push_bind(i64::from(m.private))
                        .push_bind(m.attachment.as_ref().map(|a| a.id.to_string()));
                },
            );
            insert.push(" RETURNING id");
            let mut ids: Vec<i64> = insert.build_query_scalar().fetch_all(&mut *tx).await?;
            ids.sort_unstable();
            committed.message_ids = ids;
        }
        let mut events = Vec::with_capacity(turn.messages.len() + turn.events.len());
        for (m, &id) in turn.messages.iter().zip(&committed.message_ids) {
            if super::channel_sql::is_outbound(m) {
                sqlx::query(&super::channel_sql::ENQUEUE_OUTBOUND.replace('$', "?"))
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
        if !events.is_empty() {
            let mut insert = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                "INSERT INTO events (conversation_id, kind, data, shopper_visible, agent_id, team, at) ",
            );
            insert.push_values(&events, |mut row, e| {
                row.push_bind(c.id.to_string())
                    .push_bind(e.kind.as_str())
                    .push_bind(e.data.to_string())
                    .push_bind(i64::from(e.shopper_visible))
                    .push_bind(c.agent_id.as_ref().map(|a| a.as_str().to_string()))
                    .push_bind(c.ticket.as_ref().map(|t| t.team.clone()))
                    .push_bind(now);
            });
            insert.push(" RETURNING seq");
            let seqs: Vec<i64> = insert.build_query_scalar().fetch_all(&mut *tx).await?;
            committed.last_seq = seqs.into_iter().max().unwrap_or(0);
        }
        tx.commit().await?;
        Ok(committed)
    }

    async fn waiting(&self, limit: i64) -> Result<Vec<Conversation>, StoreError> {
        let rows: Vec<ConversationRow> = sqlx::query_as(&format!(
            "SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE state = 'waiting_for_human' ORDER BY sla_due, handoff_at LIMIT ?"
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
        let n: i64 = sqlx::query_scalar(&super::rows::AHEAD_IN_LINE.replace('$', "?"))
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
            "SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE agent_id = ? AND state = 'with_human' ORDER BY assigned_at"
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
             WHERE state = 'with_human' AND assigned_at < ?
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
             WHERE first_response_at >= ? ORDER BY first_response_at"
        ))
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(Conversation::try_from).collect()
    }

    async fn recent_handle_seconds(&self, limit: i64) -> Result<Vec<i64>, StoreError> {
        let rows: Vec<(DateTime<Utc>, DateTime<Utc>)> = sqlx::query_as(
            "SELECT assigned_at, updated_at FROM conversations
             WHERE state = 'resolved' AND assigned_at IS NOT NULL ORDER BY updated_at DESC LIMIT ?",
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
            "SELECT COUNT(*) FROM conversations WHERE customer_id = ? AND created_at >= ?",
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
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let done = sqlx::query(
            "UPDATE conversations SET csat_score = ?, csat_comment = ?, version = version + 1
             WHERE id = ? AND csat_score IS NULL AND state = ?",
        )
        .bind(i64::from(score))
        .bind(comment)
        .bind(id.to_string())
        .bind(ConversationState::Resolved.as_str())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        let row: ConversationRow = sqlx::query_as(&format!(
            "SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE id = ?"
        ))
        .bind(id.to_string())
        .fetch_one(&mut *tx)
        .await?;
        let c = Conversation::try_from(row)?;
        insert_event(&mut tx, &c, &event, Utc::now()).await?;
        tx.commit().await?;
        Ok(true)
    }
}

#[async_trait]
impl CustomerStore for SqliteStore {
    async fn upsert_customers(&self, customers: &[Customer]) -> Result<usize, StoreError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let now = Utc::now();
        for c in customers {
            sqlx::query(
                "INSERT INTO customers (id, name, language, tier, lifetime_spend_cents, order_count, complaints_90d, tags, updated_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT(id) DO UPDATE SET name = excluded.name, language = excluded.language, tier = excluded.tier,
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
            "SELECT id, name, language, tier, lifetime_spend_cents, order_count, complaints_90d, tags FROM customers WHERE id = ?",
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
impl OrderStore for SqliteStore {
    async fn upsert_orders(&self, orders: &[Order]) -> Result<usize, StoreError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let now = Utc::now();
        for o in orders {
            sqlx::query(
                "INSERT INTO orders (order_id, customer_id, body, updated_at) VALUES (?, ?, ?, ?)
                 ON CONFLICT(order_id) DO UPDATE SET customer_id = excluded.customer_id, body = excluded.body, updated_at = excluded.updated_at",
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
        let body: Option<String> = sqlx::query_scalar("SELECT body FROM orders WHERE order_id = ?")
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        body.map(|b| serde_json::from_str(&b).map_err(|_| corrupt("order body")))
            .transpose()
    }

    async fn orders_of(&self, customer: &CustomerId, limit: i64) -> Result<Vec<Order>, StoreError> {
        let bodies: Vec<String> = sqlx::query_scalar(
            "SELECT body FROM orders WHERE customer_id = ? ORDER BY order_id DESC LIMIT ?",
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
impl AgentStore for SqliteStore {
    async fn create_agent(&self, a: &Agent, token_hash: &str) -> Result<(), StoreError> {
        let langs: Vec<&str> = a.languages.iter().map(|l| l.as_str()).collect();
        let r = sqlx::query(
            "INSERT INTO agents (id, name, languages, teams, capacity, status, token_hash, created_at, last_seen_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
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
        .execute(&self.writer)
        .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::AlreadyExists("agent"));
        }
        Ok(())
    }

    async fn agent(&self, id: &AgentId) -> Result<Option<Agent>, StoreError> {
        let row: Option<AgentRow> =
            sqlx::query_as(&format!("SELECT {AGENT_COLUMNS} FROM agents WHERE id = ?"))
                .bind(id.as_str())
                .fetch_optional(&self.pool)
                .await?;
        row.map(Agent::try_from).transpose()
    }

    async fn agent_by_token_hash(&self, hash: &str) -> Result<Option<Agent>, StoreError> {
        let row: Option<AgentRow> = sqlx::query_as(&format!(
            "SELECT {AGENT_COLUMNS} FROM agents WHERE token_hash = ?"
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
            "UPDATE agents SET name = ?, languages = ?, teams = ?, capacity = ?, status = ? WHERE id = ?",
        )
        .bind(&a.name)
        .bind(to_json(&langs)?)
        .bind(to_json(&a.teams)?)
        .bind(i64::from(a.capacity))
        .bind(a.status.as_str())
        .bind(a.id.as_str())
        .execute(&self.writer)
        .await?;
        Ok(r.rows_affected() > 0)
    }

    async fn delete_agent(&self, id: &AgentId) -> Result<bool, StoreError> {
        let r = sqlx::query("DELETE FROM agents WHERE id = ?")
            .bind(id.as_str())
            .execute(&self.writer)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    async fn set_agent_status(
        &self,
        id: &AgentId,
        status: crate::domain::AgentStatus,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query("UPDATE agents SET status = ? WHERE id = ?")
            .bind(status.as_str())
            .bind(id.as_str())
            .execute(&self.writer)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn touch_agent(&self, id: &AgentId, at: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query("UPDATE agents SET last_seen_at = ? WHERE id = ?")
            .bind(at)
            .bind(id.as_str())
            .execute(&self.writer)
            .await?;
        Ok(())
    }
}

const EVENT_COLUMNS: &str = "seq, conversation_id, kind, data, shopper_visible, agent_id, team, at";

#[async_trait]
impl EventStore for SqliteStore {
    async fn events_after(
        &self,
        filter: &EventFilter,
        after: i64,
        limit: i64,
    ) -> Result<Vec<Event>, StoreError> {
        let rows: Vec<EventRow> = match filter {
            EventFilter::Shopper(id) => {
                sqlx::query_as(&format!(
                    "SELECT {EVENT_COLUMNS} FROM events WHERE conversation_id = ? AND shopper_visible = 1 AND seq > ? ORDER BY seq LIMIT ?"
                ))
                .bind(id.to_string())
                .bind(after)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
            EventFilter::Agent { id, teams } => {
                // Queue events of the agent's teams, and everything on conversations they
                // hold (now or when the event happened).
                sqlx::query_as(&format!(
                    "SELECT {EVENT_COLUMNS} FROM events WHERE seq > ? AND (
                        agent_id = ?
                        OR (kind IN ('queue_changed', 'state_changed') AND team IN (SELECT value FROM json_each(?)))
                        OR conversation_id IN (SELECT id FROM conversations WHERE agent_id = ? AND state = 'with_human'))
                     ORDER BY seq LIMIT ?"
                ))
                .bind(after)
                .bind(id.as_str())
                .bind(to_json(teams)?)
                .bind(id.as_str())
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
            EventFilter::All => {
                sqlx::query_as(&format!(
                    "SELECT {EVENT_COLUMNS} FROM events WHERE seq > ? ORDER BY seq LIMIT ?"
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

fn io(e: std::io::Error) -> StoreError {
    StoreError::Database(sqlx::Error::Io(e))
}

/// Runs blocking file work off the async runtime.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Corrupt(format!("file task: {e}")))?
        .map_err(io)
}

#[async_trait]
impl AttachmentStore for SqliteStore {
    async fn put_attachment(&self, meta: &Attachment, bytes: &[u8]) -> Result<(), StoreError> {
        // The file is durable before the row that names it commits.
        let (files, id, data) = (self.files.clone(), meta.id, bytes.to_vec());
        blocking(move || files.write(id, &data)).await?;
        let inserted = sqlx::query(
            "INSERT INTO attachments (id, conversation_id, content_type, size, sha256, created_at)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(meta.id.to_string())
        .bind(meta.conversation_id.to_string())
        .bind(meta.content_type.content_type())
        .bind(i64::try_from(meta.size).map_err(|_| corrupt("attachment size"))?)
        .bind(&meta.sha256)
        .bind(meta.created_at)
        .execute(&self.writer)
        .await;
        if let Err(e) = inserted {
            let files = self.files.clone();
            let _ = blocking(move || files.remove(id)).await;
            return Err(e.into());
        }
        Ok(())
    }

    async fn attachment(&self, id: AttachmentId) -> Result<Option<Attachment>, StoreError> {
        let row: Option<AttachmentRow> = sqlx::query_as(&format!(
            "SELECT {ATTACHMENT_COLUMNS} FROM attachments WHERE id = ?"
        ))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.map(Attachment::try_from).transpose()
    }

    async fn attachment_bytes(&self, id: AttachmentId) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(meta) = self.attachment(id).await? else {
            return Ok(None);
        };
        let files = self.files.clone();
        let bytes = blocking(move || files.read(id))
            .await?
            .ok_or_else(|| corrupt("attachment file missing"))?;
        if crate::domain::attachment::sha256_hex(&bytes) != meta.sha256 {
            return Err(corrupt("attachment file does not match its SHA-256"));
        }
        Ok(Some(bytes))
    }

    async fn delete_attachment(&self, id: AttachmentId) -> Result<bool, StoreError> {
        let deleted = sqlx::query(
            "DELETE FROM attachments WHERE id = ?
               AND NOT EXISTS (SELECT 1 FROM messages WHERE attachment_id = ?)",
        )
        .bind(id.to_string())
        .bind(id.to_string())
        .execute(&self.writer)
        .await?
        .rows_affected()
            > 0;
        if deleted {
            let files = self.files.clone();
            blocking(move || files.remove(id)).await?;
        }
        Ok(deleted)
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}
