//! Runs the classifier on its own thread, off the async runtime. Requests queue on a bounded
//! channel (a full queue is [`NluError::Overloaded`], which HTTP turns into 429); the worker
//! takes every request waiting when it wakes and classifies them in one batch, then answers
//! each on its oneshot.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

use tokio::sync::oneshot;

use super::model::IntentModel;
use super::{Classification, Health, IntentClassifier, NluError};

/// Most messages classified in one forward pass.
const MAX_BATCH: usize = 32;

struct Job {
    texts: Vec<String>,
    reply: oneshot::Sender<Result<Vec<Classification>, NluError>>,
}

/// The classifier worker and its queue.
pub struct ClassifierService {
    tx: SyncSender<Job>,
    health: Health,
}

impl ClassifierService {
    /// Starts the worker thread owning `model`; at most `queue` requests wait for it.
    pub fn start(model: IntentModel, queue: usize) -> Self {
        let health = Health {
            ready: true,
            encoder: model.encoder.name().to_string(),
            head_version: model.artifact.meta.version.clone(),
            intents: model.artifact.meta.labels.len(),
        };
        let (tx, rx) = sync_channel(queue.max(1));
        std::thread::Builder::new()
            .name("classifier".into())
            .spawn(move || worker(model, rx))
            .expect("spawning the classifier thread");
        Self { tx, health }
    }
}

fn worker(model: IntentModel, rx: Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        let mut count = jobs[0].texts.len();
        while count < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => {
                    count += job.texts.len();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        let texts: Vec<&str> = jobs
            .iter()
            .flat_map(|j| j.texts.iter().map(String::as_str))
            .collect();
        // A panic inside the model must cost one batch, not the worker.
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| model.classify_batch(&texts)))
            .unwrap_or_else(|_| Err(NluError::Inference("the model panicked".into())));
        match result {
            Ok(mut all) => {
                for job in jobs.into_iter().rev() {
                    let part = all.split_off(all.len() - job.texts.len());
                    let _ = job.reply.send(Ok(part));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "classification failed");
                let msg = e.to_string();
                for job in jobs {
                    let _ = job.reply.send(Err(NluError::Inference(msg.clone())));
                }
            }
        }
    }
}

#[async_trait::async_trait]
impl IntentClassifier for ClassifierService {
    async fn classify(&self, texts: Vec<String>) -> Result<Vec<Classification>, NluError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, rx) = oneshot::channel();
        match self.tx.try_send(Job { texts, reply }) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(NluError::Overloaded),
            Err(TrySendError::Disconnected(_)) => return Err(NluError::WorkerGone),
        }
        rx.await.map_err(|_| NluError::WorkerGone)?
    }

    fn health(&self) -> Health {
        self.health.clone()
    }
}
