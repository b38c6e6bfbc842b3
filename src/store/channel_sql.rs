//! The SQL of [`super::ChannelStore`], written once with `$n` placeholders and expanded for
//! each backend by [`channel_store_impl!`] (SQLite reads `$n` as `?n`). Every claim is a
//! conditional `UPDATE` on a lease column, so two instances never process one inbox
//! conversation or send one outbox row at the same time.

/// The outbox row of a stored message: written by `record_turn` in the turn's transaction for
/// every shopper-visible bot or agent message of a conversation that belongs to a channel
/// contact (nothing for widget and API conversations, which have no contact).
pub const ENQUEUE_OUTBOUND: &str = "INSERT INTO channel_outbox (conversation_id, message_id, channel, address, text, state, attempts, next_attempt_ms, created_at)
     SELECT conversation_id, $1, channel, address, $2, 'pending', 0, $3, $4 FROM channel_contacts WHERE conversation_id = $5";

/// Whether a stored message goes out to the shopper's platform.
pub fn is_outbound(m: &crate::domain::NewMessage) -> bool {
    use crate::domain::Author;
    !m.private && matches!(m.author, Author::Bot | Author::Agent)
}

pub const OUTBOX_COLUMNS: &str = "id, conversation_id, message_id, channel, address, text, state, attempts, next_attempt_ms, last_error, platform_message_id, delivery_status, created_at, sent_at";

/// Implements `ChannelStore` for a backend type with a `pool` field for reads and a `$writer`
/// pool field for writes (the same one where the backend has one pool). `$sql` turns the shared
/// SQL into the backend's dialect; `$begin(...)` is the pool method that opens a write
/// transaction.
macro_rules! channel_store_impl {
    ($store:ty, $writer:ident, $sql:expr, $begin:ident($($arg:expr),*)) => {
        #[async_trait::async_trait]
        impl $crate::store::channels::ChannelStore for $store {
            async fn store_inbound(
                &self,
                records: &[$crate::store::channels::InboundRecord],
            ) -> Result<Vec<bool>, $crate::store::StoreError> {
                let sql: fn(&str) -> String = $sql;
                let mut tx = self.$writer.$begin($($arg),*).await?;
                let now = chrono::Utc::now();
                let mut fresh = Vec::with_capacity(records.len());
                for r in records {
                    sqlx::query(&sql(
                        "INSERT INTO channel_contacts (channel, user_id, address, customer_id, conversation_id, created_at)
                         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (channel, user_id) DO NOTHING",
                    ))
                    .bind(&r.channel)
                    .bind(&r.user_id)
                    .bind(&r.address)
                    .bind(r.new_customer_id.as_str())
                    .bind(r.new_conversation_id.to_string())
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    let conversation: String = sqlx::query_scalar(&sql(
                        "SELECT conversation_id FROM channel_contacts WHERE channel = $1 AND user_id = $2",
                    ))
                    .bind(&r.channel)
                    .bind(&r.user_id)
                    .fetch_one(&mut *tx)
                    .await?;
                    let inserted = sqlx::query(&sql(
                        "INSERT INTO channel_inbox (channel, platform_message_id, conversation_id, kind, text, lang, media_id, sent_at, platform_order, state, attempts, received_ms)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending', 0, $10)
                         ON CONFLICT (channel, platform_message_id) DO NOTHING",
                    ))
                    .bind(&r.channel)
                    .bind(&r.platform_message_id)
                    .bind(&conversation)
                    .bind(&r.kind)
                    .bind(&r.text)
                    .bind(&r.lang)
                    .bind(&r.media_id)
                    .bind(r.sent_at)
                    .bind(r.platform_order)
                    .bind(now.timestamp_millis())
                    .execute(&mut *tx)
                    .await?;
                    fresh.push(inserted.rows_affected() > 0);
                }
                tx.commit().await?;
                Ok(fresh)
            }

            async fn inbox_conversations(
                &self,
                settled_ms: i64,
                now_ms: i64,
                limit: i64,
            ) -> Result<Vec<$crate::domain::ConversationId>, $crate::store::StoreError> {
                let sql: fn(&str) -> String = $sql;
                let ids: Vec<String> = sqlx::query_scalar(&sql(
                    "SELECT i.conversation_id FROM channel_inbox i
                     JOIN channel_contacts c ON c.conversation_id = i.conversation_id
                     WHERE i.state = 'pending' AND i.received_ms <= $2 AND c.inbox_lease_until_ms <= $1
                     GROUP BY i.conversation_id ORDER BY MIN(i.id) LIMIT $3",
                ))
                .bind(now_ms)
                .bind(settled_ms)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                ids.iter()
                    .map(|s| {
                        $crate::domain::ConversationId::parse(s)
                            .map_err(|_| $crate::store::StoreError::Corrupt("conversation id".into()))
                    })
                    .collect()
            }

            async fn lease_inbox(
                &self,
                conversation: $crate::domain::ConversationId,
                owner: &str,
                now_ms: i64,
                until_ms: i64,
            ) -> Result<bool, $crate::store::StoreError> {
                let sql: fn(&str) -> String = $sql;
                let r = sqlx::query(&sql(
                    "UPDATE channel_contacts SET inbox_lease_owner = $1, inbox_lease_until_ms = $2
                     WHERE conversation_id = $3 AND (inbox_lease_until_ms <= $4 OR inbox_lease_owner = $1)",
                ))
                .bind(owner)
                .bind(until_ms)
                .bind(conversation.to_string())
                .bind(now_ms)
                .execute(&self.$writer)
                .await?;
                Ok(r.rows_affected() > 0)
            }

            async fn release_inbox(
                &self,
                conversation: $crate::domain::ConversationId,
                owner: &str,
            ) -> Result<(), $crate::store::StoreError> {
                let sql: fn(&str) -> String = $sql;
                sqlx::query(&sql(
                    "UPDATE channel_contacts SET inbox_lease_owner = NULL, inbox_lease_until_ms = 0
                     WHERE conversation_id = $1 AND inbox_lease_owner = $2",
                ))
                .bind(conversation.to_string())
                .bind(owner)
                .execute(&self.$writer)
                .await?;
                Ok(())
            }

            async fn pending_inbox(
                &self,
                conversation: $crate::domain::ConversationId,
            ) -> Result<Vec<$crate::store::channels::InboxItem>, $crate::store::StoreError> {
                let sql: fn(&str) -> String = $sql;
                Ok(sqlx::query_as(&sql(
                    "SELECT i.id, i.channel, i.platform_message_id, i.conversation_id, c.customer_id, i.kind, i.text, i.lang, i.media_id,
                            i.sent_at, i.platform_order, i.attempts
                     FROM channel_inbox i JOIN channel_contacts c ON c.conversation_id = i.conversation_id
                     WHERE i.conversation_id = $1 AND i.state = 'pending'
                     ORDER BY i.platform_order, i.sent_at, i.id",
                ))
                .bind(conversation.to_string())
                .fetch_all(&self.pool)
                .await?)
            }

            async fn finish_inbox(&self, id: i64, failed: bool) -> Result<(), $crate::store::StoreError> {
                let sql: fn(&str) -> String = $sql;
                sqlx::query(&sql("UPDATE channel_inbox SET state = $1 WHERE id = $2"))
                    .bind(if failed { "failed" } else { "done" })
                    .bind(id)
                    .execute(&self.$writer)
                    .await?;
                Ok(())
            }

            async fn retry_inbox(&self, id: i64) -> Result<(), $crate::store::StoreError> {
                let sql: fn(&str) -> String = $sql;
                sqlx::query(&sql("UPDATE channel_inbox SET attempts = attempts + 1 WHERE id = $1"))
                    .bind(id)
                    .execute(&self.$writer)
                    .await?;
                Ok(())
            }

            async fn due_outbox(
                &self,
                now_ms: i64,
                limit: i64,
            ) -> Result<Vec<$crate::store::channels::OutboxItem>, $crate::store::StoreError> {
                let sql: fn(&str) -> String = $sql;
                Ok(sqlx::query_as(&sql(&format!(
                    "SELECT {} FROM channel_outbox o
                     WHERE o.state = 'pending' AND o.next_attempt_ms <= $1 AND o.lease_until_ms <= $1
                       AND NOT EXISTS (SELECT 1 FROM channel_outbox p WHERE p.conversation_id = o.conversation_id
                                       AND p.state = 'pending' AND p.id < o.id)
                     ORDER BY o.id LIMIT $2",
                    $crate::store::channel_sql::OUTBOX_COLUMNS
                )))
                .bind(now_ms)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn lease_outbox(
                &self,
                id: i64,
                owner: &str,
                now_ms: i64,
                until_ms: i64,
            ) -> Result<bool, $crate::store::StoreError> {
                let sql: fn(&str) -> String = $sql;
                let r = sqlx::query(&sql(
                    "UPDATE channel_outbox SET lease_owner = $1, lease_until_ms = $2
                     WHERE id = $3 AND state = 'pending' AND lease_until_ms <= $4 AND next_attempt_ms <= $4",
                ))
                .bind(owner)
                .bind(until_ms)
                .bind(id)
                .bind(now_ms)
                .execute(&self.$writer)
                .await?;
                Ok(r.rows_affected() > 0)
            }

            async fn record_attempt(
                &self,
                id: i64,
                owner: &str,
                attempt: &$crate::store::channels::Attempt,
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<bool, $crate::store::StoreError> {
                use $crate::store::channels::Attempt;
                let sql: fn(&str) -> String = $sql;
                let r = match attempt {
                    Attempt::Delivered { platform_message_id } => {
                        sqlx::query(&sql(
                            "UPDATE channel_outbox SET state = 'sent', attempts = attempts + 1, sent_at = $1, platform_message_id = $2,
                                delivery_status = CASE WHEN delivery_rank = 0 THEN 'sent' ELSE delivery_status END,
                                delivery_rank = CASE WHEN delivery_rank = 0 THEN 1 ELSE delivery_rank END,
                                lease_owner = NULL, lease_until_ms = 0, last_error = NULL
                             WHERE id = $3 AND lease_owner = $4 AND state = 'pending'",
                        ))
                        .bind(now)
                        .bind(platform_message_id)
                        .bind(id)
                        .bind(owner)
                        .execute(&self.$writer)
                        .await?
                    }
                    Attempt::Failed { error, retry_at_ms } => {
                        sqlx::query(&sql(
                            "UPDATE channel_outbox SET state = $1, attempts = attempts + 1, next_attempt_ms = $2, last_error = $3,
                                lease_owner = NULL, lease_until_ms = 0
                             WHERE id = $4 AND lease_owner = $5 AND state = 'pending'",
                        ))
                        .bind(if retry_at_ms.is_some() { "pending" } else { "dead" })
                        .bind(retry_at_ms.unwrap_or(0))
                        .bind(error)
                        .bind(id)
                        .bind(owner)
                        .execute(&self.$writer)
                        .await?
                    }
                };
                Ok(r.rows_affected() > 0)
            }

            async fn outbox(
                &self,
                state: Option<$crate::store::channels::OutboxState>,
                limit: i64,
            ) -> Result<Vec<$crate::store::channels::OutboxItem>, $crate::store::StoreError> {
                let sql: fn(&str) -> String = $sql;
                Ok(sqlx::query_as(&sql(&format!(
                    "SELECT {} FROM channel_outbox WHERE ($1 = '' OR state = $1) ORDER BY id DESC LIMIT $2",
                    $crate::store::channel_sql::OUTBOX_COLUMNS
                )))
                .bind(state.map_or("", |s| s.as_str()))
                .bind(limit)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn outbox_item(
                &self,
                id: i64,
            ) -> Result<Option<$crate::store::channels::OutboxItem>, $crate::store::StoreError> {
                let sql: fn(&str) -> String = $sql;
                Ok(sqlx::query_as(&sql(&format!(
                    "SELECT {} FROM channel_outbox WHERE id = $1",
                    $crate::store::channel_sql::OUTBOX_COLUMNS
                )))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn revive_outbox(&self, id: i64, now_ms: i64) -> Result<bool, $crate::store::StoreError> {
                let sql: fn(&str) -> String = $sql;
                let r = sqlx::query(&sql(
                    "UPDATE channel_outbox SET state = 'pending', attempts = 0, next_attempt_ms = $1, lease_owner = NULL, lease_until_ms = 0
                     WHERE id = $2 AND state = 'dead'",
                ))
                .bind(now_ms)
                .bind(id)
                .execute(&self.$writer)
                .await?;
                Ok(r.rows_affected() > 0)
            }

            async fn update_delivery(
                &self,
                channel: &str,
                platform_message_id: &str,
                status: &str,
                error: Option<&str>,
            ) -> Result<bool, $crate::store::StoreError> {
                let sql: fn(&str) -> String = $sql;
                let found: Option<i64> = sqlx::query_scalar(&sql(
                    "SELECT id FROM channel_outbox WHERE channel = $1 AND platform_message_id = $2",
                ))
                .bind(channel)
                .bind(platform_message_id)
                .fetch_optional(&self.pool)
                .await?;
                let Some(id) = found else { return Ok(false) };
                let rank = $crate::store::channels::delivery_rank(status);
                sqlx::query(&sql(
                    "UPDATE channel_outbox SET delivery_status = $1, delivery_rank = $2, last_error = COALESCE($4, last_error)
                     WHERE id = $3 AND delivery_rank < $2",
                ))
                .bind(status)
                .bind(rank)
                .bind(id)
                .bind(error)
                .execute(&self.$writer)
                .await?;
                Ok(true)
            }

            async fn link_contact(
                &self,
                link: &$crate::store::channels::ContactLink,
            ) -> Result<$crate::domain::ConversationId, $crate::store::StoreError> {
                let sql: fn(&str) -> String = $sql;
                let mut tx = self.$writer.$begin($($arg),*).await?;
                sqlx::query(&sql(
                    "INSERT INTO channel_contacts (channel, user_id, address, customer_id, conversation_id, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT (channel, user_id) DO UPDATE SET customer_id = excluded.customer_id",
                ))
                .bind(&link.channel)
                .bind(&link.user_id)
                .bind(&link.address)
                .bind(link.customer_id.as_str())
                .bind(link.new_conversation_id.to_string())
                .bind(chrono::Utc::now())
                .execute(&mut *tx)
                .await?;
                let id: String = sqlx::query_scalar(&sql(
                    "SELECT conversation_id FROM channel_contacts WHERE channel = $1 AND user_id = $2",
                ))
                .bind(&link.channel)
                .bind(&link.user_id)
                .fetch_one(&mut *tx)
                .await?;
                tx.commit().await?;
                $crate::domain::ConversationId::parse(&id)
                    .map_err(|_| $crate::store::StoreError::Corrupt("conversation id".into()))
            }

            async fn deliveries(
                &self,
                conversation: $crate::domain::ConversationId,
            ) -> Result<Vec<(i64, String, Option<String>)>, $crate::store::StoreError> {
                let sql: fn(&str) -> String = $sql;
                Ok(sqlx::query_as(&sql(
                    "SELECT message_id, state, delivery_status FROM channel_outbox WHERE conversation_id = $1 ORDER BY message_id",
                ))
                .bind(conversation.to_string())
                .fetch_all(&self.pool)
                .await?)
            }
        }
    };
}

pub(crate) use channel_store_impl;
