//! Wiring: builds the service from [`Settings`] (store, classifier, knowledge base, order
//! provider, tokens), binds first so tests can ask for port 0, then serves until a shutdown
//! signal, letting in-flight requests finish.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::desk::Desk;
use crate::dialogue::kb::{self, KnowledgeBase};
use crate::dialogue::{Deps, Dialogue};
use crate::http::auth::Tokens;
use crate::http::{AppState, router};
use crate::identity::IdentityVerifier;
use crate::intents::Catalog;
use crate::live::Notifier;
use crate::metrics::Metrics;
use crate::nlu::IntentClassifier;
use crate::nlu::service::ClassifierService;
use crate::orders::http::{HttpOrders, HttpOrdersConfig};
use crate::orders::{OrderProvider, StoreOrders};
use crate::routing::RoutingPolicy;
use crate::settings::Settings;
use crate::store::Store;
use crate::store::backend::Backend;

mod keys;

/// A built, bound, not yet serving application.
pub struct Application {
    listener: TcpListener,
    state: AppState,
    /// Background tasks (the commit listener on a shared database), stopped with the app.
    background: Background,
}

/// Tasks that live as long as the application and are aborted when it goes.
#[derive(Default)]
struct Background(Vec<tokio::task::JoinHandle<()>>);

impl Drop for Background {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// Loads the configured classifier (fetching the encoder and training the product head
/// first when needed) and starts its worker thread.
pub async fn start_classifier(settings: &Settings) -> anyhow::Result<Arc<dyn IntentClassifier>> {
    let s = settings.clone();
    let model = tokio::task::spawn_blocking(move || {
        crate::commands::train::ensure_product_model(
            &s.models_dir,
            &s.encoder,
            &s.head,
            &s.intents_dir,
            &s.training_dir,
        )
    })
    .await
    .context("model loading thread")??;
    Ok(Arc::new(ClassifierService::start(
        model,
        settings.classifier_queue,
    )))
}

impl Application {
    /// Builds everything. `classifier` lets tests share one loaded model between servers.
    pub async fn build(
        settings: Settings,
        classifier: Option<Arc<dyn IntentClassifier>>,
    ) -> anyhow::Result<Self> {
        settings.validate()?;
        let listener = TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("binding {}", settings.listen))?;
        let backend = match &settings.database_url {
            Some(url) => Backend::open(Some(url.expose()), &settings.data_dir)
                .await
                .context("connecting to PostgreSQL (--database-url)")?,
            None => Backend::open(None, &settings.data_dir)
                .await
                .with_context(|| format!("opening storage in {}", settings.data_dir.display()))?,
        };
        tracing::info!(backend = backend.name(), "store ready");
        let store = backend.store();
        if let Some(demo) = &settings.demo_dir {
            seed_demo(store.as_ref(), demo).await?;
        }
        if let Some(file) = &settings.agents_file {
            let n = crate::import::agents(store.as_ref(), file)
                .await
                .with_context(|| format!("loading agents from {}", file.display()))?;
            tracing::info!(created = n, "agents file loaded");
        }
        let classifier = match classifier {
            Some(c) => c,
            None => start_classifier(&settings).await?,
        };
        let catalog = Arc::new(Catalog::load(&settings.intents_dir).context("loading intents")?);
        let articles = kb::load_dir(&settings.kb_dir).context("loading the knowledge base")?;
        let kb = Arc::new(
            KnowledgeBase::build(articles, classifier.as_ref(), settings.kb_min_score).await?,
        );
        let orders: Arc<dyn OrderProvider> = match &settings.orders.http_url {
            Some(url) => Arc::new(HttpOrders::new(HttpOrdersConfig {
                url_template: url.clone(),
                token: settings
                    .orders
                    .http_token
                    .as_ref()
                    .map(|t| t.expose().to_string()),
                timeout: Duration::from_millis(settings.orders.timeout_ms.unwrap_or(2000)),
                retries: settings.orders.retries.unwrap_or(2),
            })?),
            None => Arc::new(StoreOrders::new(store.clone())),
        };
        let admin = match &settings.admin_token {
            Some(t) => t.clone(),
            None => keys::admin_token(&backend, &settings.data_dir).await?,
        };
        let key = keys::token_key(&backend, &settings.data_dir).await?;
        let identity = Arc::new(IdentityVerifier::new(
            keys::identity_secret(&backend, &settings).await?,
        ));
        if !identity.is_configured() {
            tracing::warn!(
                "no identity secret: every shopper is anonymous (set SWITCHBOARD_IDENTITY_SECRET)"
            );
        }
        let metrics = Arc::new(Metrics::new());
        let routing = Arc::new(match &settings.routing_policy {
            Some(path) => RoutingPolicy::load(path)
                .with_context(|| format!("loading the routing policy {}", path.display()))?,
            None => RoutingPolicy::default(),
        });
        routing
            .check_intents(catalog.intents.iter().map(|i| i.name.as_str()))
            .context("the routing policy names an unknown intent")?;
        let notifier = Arc::new(Notifier::default());
        // Commits by other instances on a shared database wake this one's live connections.
        let wake = notifier.clone();
        let commit_listener = backend.listen(Arc::new(move |seq| wake.committed(seq)));
        let desk = Arc::new(Desk {
            store: store.clone(),
            policy: routing.clone(),
            notifier: notifier.clone(),
            metrics: metrics.clone(),
        });
        let dialogue = Arc::new(Dialogue::new(Deps {
            store: store.clone(),
            classifier: classifier.clone(),
            orders,
            kb,
            catalog,
            policy: settings.policy.clone(),
            metrics: metrics.clone(),
            routing,
            notifier: notifier.clone(),
            desk: desk.clone(),
        }));
        let mut channels = crate::channels::Channels::new(
            &settings.channels,
            store.clone(),
            dialogue.clone(),
            metrics.clone(),
        )?;
        channels.max_media_bytes = settings.max_attachment_bytes;
        let channels = Arc::new(channels);
        let state = AppState {
            channels,
            in_flight: Arc::new(Semaphore::new(settings.max_in_flight)),
            settings: Arc::new(settings),
            store,
            classifier,
            dialogue,
            tokens: Arc::new(Tokens::new(key, admin)),
            identity,
            desk,
            notifier,
            metrics,
            shutting_down: Arc::new(AtomicBool::new(false)),
        };
        Ok(Self {
            listener,
            state,
            background: Background(commit_listener.into_iter().collect()),
        })
    }

    /// The bound address (port 0 resolved).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("bound listener has an address")
    }

    /// Serves until `shutdown` completes, then lets in-flight requests finish (bounded by the
    /// configured timeout).
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let flag = self.state.shutting_down.clone();
        let grace = Duration::from_secs(self.state.settings.shutdown_timeout_secs);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let signal = async move {
            shutdown.await;
            flag.store(true, Ordering::Relaxed);
            tracing::info!("shutting down: finishing in-flight requests");
            let _ = tx.send(());
        };
        // The sweeper returns conversations whose agent did not answer in time, or went away,
        // to the queue. Every instance may run it: each return is a conditional write.
        let desk = self.state.desk.clone();
        let every = Duration::from_secs(self.state.settings.sweep_interval_secs.max(1));
        let mut background = self.background;
        background.0.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                match desk.sweep(chrono::Utc::now()).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(returned = n, "returned conversations to the queue"),
                    Err(e) => tracing::warn!(error = %e, "queue sweep failed"),
                }
            }
        }));
        // Channel workers: every instance may run them; leases in the database decide who
        // processes which conversation and sends which reply. On shutdown they finish what
        // they started (a reply the platform accepted is recorded as sent) and stop.
        let mut workers = Background::default();
        if self.state.channels.any() {
            let c = self.state.channels.clone();
            let stop = self.state.shutting_down.clone();
            workers.0.push(tokio::spawn(crate::channels::inbox::run(
                c.clone(),
                stop.clone(),
            )));
            workers.0.push(tokio::spawn(crate::channels::outbox::run(
                c,
                self.state.notifier.subscribe(),
                stop,
            )));
        }
        let app = router(self.state);
        let server = axum::serve(self.listener, app).with_graceful_shutdown(signal);
        let server = tokio::spawn(async move { server.await });
        tokio::pin!(server);
        tokio::select! {
            r = &mut server => { drop(background); r??; return Ok(()); }
            _ = rx => {}
        }
        let finished = tokio::time::timeout(grace, &mut server).await;
        for worker in &mut workers.0 {
            let _ = tokio::time::timeout(grace, worker).await;
        }
        drop(workers);
        drop(background);
        match finished {
            Ok(r) => r??,
            Err(_) => tracing::warn!("in-flight requests did not finish within {grace:?}"),
        }
        Ok(())
    }

    /// Serves until SIGTERM or Ctrl-C.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(shutdown_signal()).await
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

/// Imports the demo customers and orders into an empty store.
async fn seed_demo(store: &dyn Store, dir: &Path) -> anyhow::Result<()> {
    let customers = dir.join("customers.json");
    if store.customer_count().await? > 0 || !customers.is_file() {
        return Ok(());
    }
    let cs = crate::import::customers(&customers)?;
    store.upsert_customers(&cs).await?;
    let orders = dir.join("orders.json");
    let n = if orders.is_file() {
        let os = crate::import::orders(&orders)?;
        store.upsert_orders(&os).await?
    } else {
        0
    };
    tracing::info!(customers = cs.len(), orders = n, "seeded demo data");
    Ok(())
}
