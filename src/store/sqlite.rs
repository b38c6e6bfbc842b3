//! The embedded backend: SQLite through sqlx, in WAL mode with `synchronous = FULL`, so a
//! committed turn survives `kill -9` and power loss. Migrations are compiled in.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use super::{IdempotencyRecord, Store, StoreError, Turn};
use crate::domain::{
    Author, Conversation, ConversationId, ConversationState, Customer, CustomerId, Lang, Message,
    NewMessage, Order, OrderId, RouteDecision, Tier,
};

/// The SQLite store.
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
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
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(Self { pool })
    }
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

fn conversation_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<Conversation, StoreError> {
    let id: String = row.try_get("id")?;
    let customer: String = row.try_get("customer_id")?;
    let state: String = row.try_get("state")?;
    let lang: String = row.try_get("lang")?;
    let slots: String = row.try_get("slots")?;
    Ok(Conversation {
        id: ConversationId::parse(&id).map_err(|_| corrupt("conversation id"))?,
        customer_id: CustomerId::parse(&customer).map_err(|_| corrupt("customer id"))?,
        verified: row.try_get::<i64, _>("verified")? != 0,
        channel: row.try_get("channel")?,
        lang: Lang::parse(&lang).unwrap_or_default(),
        state: ConversationState::parse(&state).ok_or_else(|| corrupt("state"))?,
        slots: serde_json::from_str(&slots).map_err(|_| corrupt("slots"))?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        handoff_reason: row.try_get("handoff_reason")?,
        handoff_intent: row.try_get("handoff_intent")?,
        handoff_at: row.try_get("handoff_at")?,
    })
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn upsert_customers(&self, customers: &[Customer]) -> Result<usize, StoreError> {
        let mut tx = self.pool.begin().await?;
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
            .bind(serde_json::to_string(&c.tags).unwrap_or_else(|_| "[]".into()))
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(customers.len())
    }

    async fn customer(&self, id: &CustomerId) -> Result<Option<Customer>, StoreError> {
        let row = sqlx::query("SELECT * FROM customers WHERE id = ?")
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let lang: String = row.try_get("language")?;
        let tier: String = row.try_get("tier")?;
        let tags: String = row.try_get("tags")?;
        Ok(Some(Customer {
            id: id.clone(),
            name: row.try_get("name")?,
            language: Lang::parse(&lang).unwrap_or_default(),
            tier: Tier::parse(&tier).ok_or_else(|| corrupt("tier"))?,
            lifetime_spend_cents: row.try_get("lifetime_spend_cents")?,
            order_count: row.try_get("order_count")?,
            complaints_90d: row.try_get("complaints_90d")?,
            tags: serde_json::from_str(&tags).map_err(|_| corrupt("tags"))?,
        }))
    }

    async fn customer_count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM customers")
            .fetch_one(&self.pool)
            .await?)
    }

    async fn upsert_orders(&self, orders: &[Order]) -> Result<usize, StoreError> {
        let mut tx = self.pool.begin().await?;
        let now = Utc::now();
        for o in orders {
            let body = serde_json::to_string(o).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            sqlx::query(
                "INSERT INTO orders (order_id, customer_id, body, updated_at) VALUES (?, ?, ?, ?)
                 ON CONFLICT(order_id) DO UPDATE SET customer_id = excluded.customer_id, body = excluded.body, updated_at = excluded.updated_at",
            )
            .bind(o.order_id.as_str())
            .bind(o.customer_id.as_str())
            .bind(body)
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

    async fn conversation(&self, id: ConversationId) -> Result<Option<Conversation>, StoreError> {
        let row = sqlx::query("SELECT * FROM conversations WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(conversation_from_row).transpose()
    }

    async fn messages(&self, id: ConversationId) -> Result<Vec<Message>, StoreError> {
        let rows = sqlx::query("SELECT * FROM messages WHERE conversation_id = ? ORDER BY id")
            .bind(id.to_string())
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                let author: String = row.try_get("author")?;
                let alternatives: String = row.try_get("alternatives")?;
                let route: Option<String> = row.try_get("route")?;
                let reason: Option<String> = row.try_get("route_reason")?;
                let oos: Option<i64> = row.try_get("out_of_scope")?;
                let confidence: Option<f64> = row.try_get("confidence")?;
                Ok(Message {
                    id: row.try_get("id")?,
                    body: NewMessage {
                        author: Author::parse(&author).ok_or_else(|| corrupt("author"))?,
                        text: row.try_get("text")?,
                        at: row.try_get::<DateTime<Utc>, _>("at")?,
                        channel: row.try_get("channel")?,
                        intent: row.try_get("intent")?,
                        confidence: confidence.map(|c| c as f32),
                        out_of_scope: oos.map(|v| v != 0),
                        alternatives: serde_json::from_str(&alternatives)
                            .map_err(|_| corrupt("alternatives"))?,
                        route: route.map(|route| RouteDecision {
                            route,
                            reason: reason.unwrap_or_default(),
                        }),
                        client_message_id: row.try_get("client_message_id")?,
                    },
                })
            })
            .collect()
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

    async fn record_turn(&self, turn: &Turn) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let c = &turn.conversation;
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
            .bind(Utc::now())
            .execute(&mut *tx)
            .await?;
            if inserted.rows_affected() == 0 {
                tx.rollback().await?;
                return Err(StoreError::DuplicateKey);
            }
        }
        let slots =
            serde_json::to_string(&c.slots).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        if turn.is_new {
            sqlx::query(
                "INSERT INTO conversations (id, customer_id, verified, channel, lang, state, slots, created_at, updated_at, handoff_reason, handoff_intent, handoff_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(c.id.to_string())
            .bind(c.customer_id.as_str())
            .bind(i64::from(c.verified))
            .bind(&c.channel)
            .bind(c.lang.as_str())
            .bind(c.state.as_str())
            .bind(&slots)
            .bind(c.created_at)
            .bind(c.updated_at)
            .bind(&c.handoff_reason)
            .bind(&c.handoff_intent)
            .bind(c.handoff_at)
            .execute(&mut *tx)
            .await?;
        } else {
            sqlx::query(
                "UPDATE conversations SET lang = ?, state = ?, slots = ?, updated_at = ?, handoff_reason = ?, handoff_intent = ?, handoff_at = ? WHERE id = ?",
            )
            .bind(c.lang.as_str())
            .bind(c.state.as_str())
            .bind(&slots)
            .bind(c.updated_at)
            .bind(&c.handoff_reason)
            .bind(&c.handoff_intent)
            .bind(c.handoff_at)
            .bind(c.id.to_string())
            .execute(&mut *tx)
            .await?;
        }
        for m in &turn.messages {
            sqlx::query(
                "INSERT INTO messages (conversation_id, author, text, at, channel, intent, confidence, out_of_scope, alternatives, route, route_reason, client_message_id)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(c.id.to_string())
            .bind(m.author.as_str())
            .bind(&m.text)
            .bind(m.at)
            .bind(&m.channel)
            .bind(&m.intent)
            .bind(m.confidence.map(f64::from))
            .bind(m.out_of_scope.map(i64::from))
            .bind(serde_json::to_string(&m.alternatives).unwrap_or_else(|_| "[]".into()))
            .bind(m.route.as_ref().map(|r| r.route.clone()))
            .bind(m.route.as_ref().map(|r| r.reason.clone()))
            .bind(&m.client_message_id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
