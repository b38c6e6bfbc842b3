//! The inbox worker: takes conversations with stored, unprocessed channel messages (one at a
//! time per conversation, by a lease in the database, so two instances never interleave one
//! shopper's messages), and runs their messages through the dialogue engine in the platform's
//! order. The platform message id is the turn's retry key, so a message processed just before
//! a crash is replayed, not answered twice.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tracing::Instrument;

use super::{Channels, media, now_ms};
use crate::dialogue::{DialogueError, Inbound, Target};
use crate::domain::{ConversationId, CustomerId, Lang};
use crate::nlu::NluError;
use crate::store::StoreError;
use crate::store::channels::InboxItem;

/// How long a worker may hold a conversation before another may take it over.
const LEASE_MS: i64 = 20_000;
/// Attempts before a message that keeps failing is set aside (so later ones proceed).
const MAX_ATTEMPTS: i64 = 10;
/// The first pause after a failed attempt; it doubles per attempt (up to 32 s), so an
/// overloaded classifier gets minutes, not milliseconds, before a message is set aside.
const RETRY_BASE_MS: i64 = 500;
/// How often the worker looks for work when nothing woke it.
const POLL: Duration = Duration::from_millis(100);

/// Runs until `stop` is set (finishing the conversations in hand) or the task is aborted.
pub async fn run(channels: Arc<Channels>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        match tick(&channels).await {
            Ok(0) => {
                let _ = tokio::time::timeout(POLL, channels.inbox_wake.notified()).await;
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "inbox worker failed; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

/// Processes the conversations that have settled messages waiting; returns how many.
pub async fn tick(channels: &Arc<Channels>) -> Result<usize, StoreError> {
    let now = now_ms();
    let settled = now - channels.policy.settle_ms as i64;
    let ids = channels.store.inbox_conversations(settled, now, 32).await?;
    let mut tasks = tokio::task::JoinSet::new();
    for id in ids {
        if channels
            .store
            .lease_inbox(id, &channels.owner, now, now + LEASE_MS)
            .await?
        {
            let c = channels.clone();
            let span = tracing::info_span!("channel_inbox", conversation_id = %id);
            tasks.spawn(
                async move {
                    let pause = match process_conversation(&c, id).await {
                        Ok(pause) => pause,
                        Err(e) => {
                            tracing::warn!(error = %e, "inbox processing failed");
                            Some(RETRY_BASE_MS)
                        }
                    };
                    // Backing off is holding the lease a while longer: nobody (on any
                    // instance) picks the conversation up before then.
                    let _ = match pause {
                        Some(ms) => {
                            let now = now_ms();
                            c.store
                                .lease_inbox(id, &c.owner, now, now + ms)
                                .await
                                .map(|_| ())
                        }
                        None => c.store.release_inbox(id, &c.owner).await,
                    };
                }
                .instrument(span),
            );
        }
    }
    let mut n = 0;
    while tasks.join_next().await.is_some() {
        n += 1;
    }
    Ok(n)
}

/// Processes the conversation's waiting messages in order; `Some(ms)` when a message failed
/// in a way that may pass and the conversation should wait that long before the next try.
async fn process_conversation(c: &Channels, id: ConversationId) -> Result<Option<i64>, StoreError> {
    for item in c.store.pending_inbox(id).await? {
        // Renew the lease before each message: a slow classifier must not let another
        // instance start on this conversation meanwhile.
        let now = now_ms();
        if !c
            .store
            .lease_inbox(id, &c.owner, now, now + LEASE_MS)
            .await?
        {
            return Ok(None);
        }
        match process(c, &item).await {
            Ok(()) => c.store.finish_inbox(item.id, false).await?,
            Err(e) if item.attempts + 1 >= MAX_ATTEMPTS || !retryable(&e) => {
                tracing::error!(message = item.id, error = %e, "inbound message set aside");
                c.store.finish_inbox(item.id, true).await?;
            }
            Err(e) => {
                // Keep the platform's order: later messages wait for this one.
                tracing::warn!(message = item.id, error = %e, "inbound message will be retried");
                c.store.retry_inbox(item.id).await?;
                let exp = u32::try_from(item.attempts.clamp(0, 6)).unwrap_or(6);
                return Ok(Some(RETRY_BASE_MS << exp));
            }
        }
    }
    Ok(None)
}

fn retryable(e: &DialogueError) -> bool {
    matches!(
        e,
        DialogueError::Store(_)
            | DialogueError::Classifier(NluError::Overloaded | NluError::WorkerGone)
    )
}

async fn process(c: &Channels, item: &InboxItem) -> Result<(), DialogueError> {
    let corrupt = |what: &str| DialogueError::Store(StoreError::Corrupt(what.into()));
    let inbound = Inbound {
        target: Target::Channel {
            id: ConversationId::parse(&item.conversation_id)
                .map_err(|_| corrupt("conversation id"))?,
            customer: CustomerId::parse(&item.customer_id).map_err(|_| corrupt("customer id"))?,
            sent_at: item.sent_at,
        },
        text: item.text.clone(),
        channel: item.channel.clone(),
        lang: item.lang.as_deref().and_then(Lang::parse),
        client_message_id: Some(format!("{}:{}", item.channel, item.platform_message_id)),
    };
    if item.kind == "text" {
        c.dialogue.handle(inbound).await?;
        return Ok(());
    }
    let outcome = match (item.kind.as_str(), &item.media_id) {
        ("image", Some(media_id)) => photo(c, item, media_id, inbound).await,
        _ => c
            .dialogue
            .acknowledge_unsupported(inbound)
            .await
            .map(|_| ()),
    };
    match outcome {
        // The message was answered already (as a photo, or by its note after a failed fetch)
        // and the retry after a crash went the other way: its answer stands.
        Err(DialogueError::KeyReused) => {
            tracing::info!(message = item.id, "media message was answered already");
            Ok(())
        }
        other => other,
    }
}

/// A shopper's image: fetched from the platform and stored as a photo message, or, when it
/// cannot be fetched (failed, too large, not an image), answered at once by its media note.
async fn photo(
    c: &Channels,
    item: &InboxItem,
    media_id: &str,
    mut inbound: Inbound,
) -> Result<(), DialogueError> {
    match media::fetch(c, &item.channel, media_id).await {
        Ok(photo) => {
            inbound.text = media::caption(&item.text, &item.channel, &item.kind, media_id);
            c.dialogue.handle_photo(inbound, photo).await?;
        }
        Err(e) => {
            tracing::warn!(message = item.id, error = %e, "media fetch failed; keeping the note");
            c.dialogue.acknowledge_unsupported(inbound).await?;
        }
    }
    Ok(())
}
