//! The outbox sender: delivers stored replies to the platforms. Each row is leased by a
//! conditional write before it is sent, so two instances never send one row; only the oldest
//! pending row of a conversation is due, so a conversation's replies arrive in order; a failed
//! attempt is retried after an exponential backoff with jitter (or the platform's 429
//! `Retry-After`), and after `max_attempts` failures, or a refusal retrying cannot change, the
//! row is parked as dead for an admin to inspect and retry. Everything is in the database, so
//! a restarted instance resumes where the last one stopped.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::Utc;
use rand::Rng;
use tracing::Instrument;

use super::settings::DeliveryPolicy;
use super::{Channels, Outcome, generic, now_ms, telegram, whatsapp};
use crate::store::StoreError;
use crate::store::channels::{Attempt, OutboxItem};

/// How often the sender looks for due rows when nothing woke it.
const POLL: Duration = Duration::from_millis(100);

/// Runs until `stop` is set (finishing the deliveries in flight) or the task is aborted;
/// `wake` fires after commits.
pub async fn run(
    channels: Arc<Channels>,
    mut wake: tokio::sync::watch::Receiver<i64>,
    stop: Arc<AtomicBool>,
) {
    while !stop.load(Ordering::Relaxed) {
        match tick(&channels).await {
            Ok(0) => {
                let _ = tokio::time::timeout(POLL, wake.changed()).await;
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "outbox sender failed; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

/// Sends every row that is due now (at most one per conversation); returns how many it tried.
pub async fn tick(channels: &Arc<Channels>) -> Result<usize, StoreError> {
    let now = now_ms();
    let lease = channels.policy.send_timeout_ms as i64 + 5_000;
    let due = channels.store.due_outbox(now, 64).await?;
    let mut tasks = tokio::task::JoinSet::new();
    for item in due {
        if channels
            .store
            .lease_outbox(item.id, &channels.owner, now, now + lease)
            .await?
        {
            let c = channels.clone();
            let span = tracing::info_span!(
                "channel_outbox",
                conversation_id = %item.conversation_id,
                outbox = item.id,
                channel = %item.channel
            );
            tasks.spawn(async move { deliver(&c, item).await }.instrument(span));
        }
    }
    let mut n = 0;
    while let Some(r) = tasks.join_next().await {
        if let Ok(Err(e)) = r {
            tracing::warn!(error = %e, "recording a delivery failed");
        }
        n += 1;
    }
    Ok(n)
}

async fn deliver(c: &Channels, item: OutboxItem) -> Result<(), StoreError> {
    let outcome = send(c, &item).await;
    let attempt = match outcome {
        Outcome::Delivered(platform_message_id) => Attempt::Delivered {
            platform_message_id,
        },
        Outcome::RetryAfter(wait) => Attempt::Failed {
            error: format!("rate limited; retry after {}s", wait.as_secs()),
            retry_at_ms: retry_at(&c.policy, item.attempts + 1, Some(wait)),
        },
        Outcome::Transient(error) => Attempt::Failed {
            retry_at_ms: retry_at(&c.policy, item.attempts + 1, None),
            error,
        },
        Outcome::Permanent(error) => Attempt::Failed {
            error,
            retry_at_ms: None,
        },
    };
    let outcome = match &attempt {
        Attempt::Delivered { .. } => {
            tracing::info!("reply delivered");
            "delivered"
        }
        Attempt::Failed {
            error,
            retry_at_ms: None,
        } => {
            tracing::error!(%error, "reply parked as dead");
            "dead"
        }
        Attempt::Failed { error, .. } => {
            tracing::warn!(%error, "reply delivery failed; will retry");
            "retry"
        }
    };
    c.metrics
        .outbox_deliveries
        .with_label_values(&[item.channel.as_str(), outcome])
        .inc();
    c.store
        .record_attempt(item.id, &c.owner, &attempt, Utc::now())
        .await?;
    Ok(())
}

async fn send(c: &Channels, item: &OutboxItem) -> Outcome {
    let off = || Outcome::Permanent(format!("the {} channel is not configured", item.channel));
    match item.channel.as_str() {
        whatsapp::CHANNEL => match &c.whatsapp {
            Some(cfg) => whatsapp::send(&c.http, cfg, &item.address, &item.text).await,
            None => off(),
        },
        telegram::CHANNEL => match &c.telegram {
            Some(cfg) => telegram::send(&c.http, cfg, &item.address, &item.text).await,
            None => off(),
        },
        generic::CHANNEL => match &c.generic {
            Some(cfg) => {
                generic::send(
                    &c.http,
                    cfg,
                    item.id,
                    &item.conversation_id,
                    &item.address,
                    &item.text,
                )
                .await
            }
            None => off(),
        },
        _ => off(),
    }
}

/// When to try again after the `attempt`-th failure, or `None` when the row is to be parked:
/// `base · 2^(attempt-1)` capped at `max`, half of it fixed and half random ("equal jitter"),
/// and never sooner than a 429's `Retry-After`.
pub fn retry_at(
    policy: &DeliveryPolicy,
    attempt: i64,
    retry_after: Option<Duration>,
) -> Option<i64> {
    if attempt >= i64::from(policy.max_attempts) {
        return None;
    }
    let exp = u32::try_from(attempt.clamp(1, 30) - 1).unwrap_or(0);
    let full = policy
        .base_delay_ms
        .saturating_mul(1u64 << exp)
        .min(policy.max_delay_ms)
        .max(1);
    let half = full / 2;
    let mut delay = half + rand::thread_rng().gen_range(0..=full - half);
    if let Some(wait) = retry_after {
        delay = delay.max(wait.as_millis() as u64);
    }
    Some(now_ms() + delay as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> DeliveryPolicy {
        DeliveryPolicy {
            max_attempts: 5,
            base_delay_ms: 1000,
            max_delay_ms: 5000,
            send_timeout_ms: 1000,
            settle_ms: 0,
        }
    }

    #[test]
    fn backoff_doubles_with_jitter_caps_and_gives_up() {
        let p = policy();
        for (attempt, lo, hi) in [
            (1, 500, 1000),
            (2, 1000, 2000),
            (3, 2000, 4000),
            (4, 2500, 5000),
        ] {
            for _ in 0..50 {
                let now = now_ms();
                let d = retry_at(&p, attempt, None).unwrap() - now;
                assert!(
                    d >= lo && d <= hi + 5,
                    "attempt {attempt}: {d} not in {lo}..{hi}"
                );
            }
        }
        assert_eq!(retry_at(&p, 5, None), None);
        let now = now_ms();
        let d = retry_at(&p, 1, Some(Duration::from_secs(3))).unwrap() - now;
        assert!(d >= 3000, "Retry-After is honoured: {d}");
    }
}
