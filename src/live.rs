//! Live push: after a change commits, the committing code calls [`Notifier::committed`] with
//! the highest event sequence it wrote; live connections wait on it and then read the events
//! table, which stays the source of truth. A lost or coalesced wake-up costs nothing, and a
//! short poll covers changes committed by another instance.

use std::time::Duration;

use tokio::sync::watch;

/// How long a live connection waits for a wake-up before reading the events table anyway
/// (changes committed by other instances on a shared database).
pub const POLL: Duration = Duration::from_millis(500);

/// Wakes live connections when events were committed.
#[derive(Debug)]
pub struct Notifier {
    tx: watch::Sender<i64>,
}

impl Default for Notifier {
    fn default() -> Self {
        Self {
            tx: watch::channel(0).0,
        }
    }
}

impl Notifier {
    /// Events up to `seq` are committed.
    pub fn committed(&self, seq: i64) {
        if seq > 0 {
            self.tx.send_if_modified(|cur| {
                if seq > *cur {
                    *cur = seq;
                    true
                } else {
                    false
                }
            });
        }
    }

    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.tx.subscribe()
    }
}

/// Waits until something was committed or the poll interval passed.
pub async fn wait(rx: &mut watch::Receiver<i64>) {
    let _ = tokio::time::timeout(POLL, rx.changed()).await;
}
