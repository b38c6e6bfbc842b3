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

/// Work for the model thread: a classification batch, or knowledge-base passages to embed.
enum Work {
    Classify(Job),
    Passages {
        texts: Vec<String>,
        reply: oneshot::Sender<Result<Vec<Vec<f32>>, NluError>>,
    },
}

/// The classifier worker and its queue.
pub struct ClassifierService {
    tx: SyncSender<Work>,
    health: Health,
    embedding_version: String,
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
        let embedding_version = model.encoder.version();
        let (tx, rx) = sync_channel(queue.max(1));
        std::thread::Builder::new()
            .name("classifier".into())
            .spawn(move || worker(model, rx))
            .expect("spawning the classifier thread");
        Self {
            tx,
            health,
            embedding_version,
        }
    }
}

fn worker(model: IntentModel, rx: Receiver<Work>) {
    while let Ok(first) = rx.recv() {
        let first = match first {
            Work::Classify(job) => job,
            Work::Passages { texts, reply } => {
                let _ = reply.send(embed_passages(&model, &texts));
                continue;
            }
        };
        let mut jobs = vec![first];
        let mut count = jobs[0].texts.len();
        // Passage work that arrives while a batch is collected runs after that batch.
        let mut later = Vec::new();
        while count < MAX_BATCH {
            match rx.try_recv() {
                Ok(Work::Classify(job)) => {
                    count += job.texts.len();
                    jobs.push(job);
                }
                Ok(passages) => later.push(passages),
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
        for work in later {
            if let Work::Passages { texts, reply } = work {
                let _ = reply.send(embed_passages(&model, &texts));
            }
        }
    }
}

fn embed_passages(model: &IntentModel, texts: &[String]) -> Result<Vec<Vec<f32>>, NluError> {
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    std::panic::catch_unwind(AssertUnwindSafe(|| {
        model.encoder.embed_passages(&refs, &|_| {})
    }))
    .unwrap_or_else(|_| Err(NluError::Inference("the model panicked".into())))
}

#[async_trait::async_trait]
impl IntentClassifier for ClassifierService {
    async fn classify(&self, texts: Vec<String>) -> Result<Vec<Classification>, NluError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, rx) = oneshot::channel();
        match self.tx.try_send(Work::Classify(Job { texts, reply })) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(NluError::Overloaded),
            Err(TrySendError::Disconnected(_)) => return Err(NluError::WorkerGone),
        }
        rx.await.map_err(|_| NluError::WorkerGone)?
    }

    fn health(&self) -> Health {
        self.health.clone()
    }

    async fn embed_passages(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, NluError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, rx) = oneshot::channel();
        // Passages are embedded at start-up, before traffic: wait for room rather than fail.
        let tx = self.tx.clone();
        tokio::task::spawn_blocking(move || tx.send(Work::Passages { texts, reply }))
            .await
            .map_err(|_| NluError::WorkerGone)?
            .map_err(|_| NluError::WorkerGone)?;
        rx.await.map_err(|_| NluError::WorkerGone)?
    }

    fn embedding_version(&self) -> String {
        self.embedding_version.clone()
    }
}
