//! Wiring: builds the service from [`Settings`] (store, classifier, knowledge base, order
//! provider, tokens), binds first so tests can ask for port 0, then serves until a shutdown
//! signal, letting in-flight requests finish.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use rand::RngCore;
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
use crate::settings::{Secret, Settings};
use crate::store::Store;
use crate::store::sqlite::SqliteStore;

/// A built, bound, not yet serving application.
pub struct Application {
    listener: TcpListener,
    state: AppState,
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
        let store: Arc<dyn Store> = Arc::new(
            SqliteStore::open(&settings.data_dir)
                .await
                .with_context(|| format!("opening storage in {}", settings.data_dir.display()))?,
        );
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
            None => load_or_create_admin_token(&settings.data_dir)?,
        };
        let key = load_or_create_key(&settings.data_dir)?;
        let identity = Arc::new(IdentityVerifier::new(resolve_identity_secret(&settings)?));
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
        let state = AppState {
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
        Ok(Self { listener, state })
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
        let sweeper = tokio::spawn(async move {
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
        });
        let app = router(self.state);
        let server = axum::serve(self.listener, app).with_graceful_shutdown(signal);
        let server = tokio::spawn(async move { server.await });
        tokio::pin!(server);
        tokio::select! {
            r = &mut server => { sweeper.abort(); r??; return Ok(()); }
            _ = rx => {}
        }
        let finished = tokio::time::timeout(grace, &mut server).await;
        sweeper.abort();
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

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}

/// The key of conversation tokens, created once per data directory.
fn load_or_create_key(dir: &Path) -> anyhow::Result<Vec<u8>> {
    let path = dir.join("token.key");
    if !path.exists() {
        let mut key = vec![0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        write_private(&path, &key)?;
    }
    std::fs::read(&path).with_context(|| format!("reading {}", path.display()))
}

/// The identity secret: the configured one; in demo mode without one, a secret generated once
/// into `data_dir/identity-secret` (the demo page and `switchboard sign-customer` use it);
/// otherwise none, and every shopper is anonymous.
pub fn resolve_identity_secret(settings: &Settings) -> anyhow::Result<Option<Secret>> {
    if let Some(s) = &settings.identity_secret {
        return Ok(Some(s.clone()));
    }
    let path = settings.data_dir.join("identity-secret");
    if settings.demo_dir.is_none() && !path.exists() {
        return Ok(None);
    }
    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("creating {}", settings.data_dir.display()))?;
    load_or_create_secret_file(&path).map(Some)
}

/// The admin token when none is configured: generated once into `data_dir/admin-token`.
fn load_or_create_admin_token(dir: &Path) -> anyhow::Result<Secret> {
    load_or_create_secret_file(&dir.join("admin-token"))
}

/// A random URL-safe secret kept in a private file, generated on first use.
fn load_or_create_secret_file(path: &Path) -> anyhow::Result<Secret> {
    if !path.exists() {
        let mut raw = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut raw);
        let token = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, raw);
        write_private(path, token.as_bytes())?;
        tracing::info!(path = %path.display(), "generated a secret (not logged; read it from the file)");
    }
    let token =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(Secret::new(token.trim()))
}
