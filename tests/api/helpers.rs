//! Test helpers: the shared real classifier, `spawn_app()` on port 0 with a fresh data
//! directory, and small HTTP helpers.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use serde_json::{Value, json};
use switchboard::app::Application;
use switchboard::nlu::IntentClassifier;
use switchboard::nlu::model::IntentModel;
use switchboard::nlu::service::ClassifierService;
use switchboard::settings::{Secret, Settings};

pub const ADMIN: &str = "test-admin-token-0123456789";

/// Creates an agent through the admin API (both languages, every team) and returns their
/// token.
pub async fn create_agent_at(
    client: &reqwest::Client,
    base: &str,
    id: &str,
    name: &str,
    capacity: u32,
) -> String {
    let r = client
        .post(format!("{base}/api/v1/agents"))
        .bearer_auth(ADMIN)
        .json(&json!({"id": id, "name": name, "languages": ["en", "zh"],
            "teams": ["general", "quality", "logistics", "refunds"], "capacity": capacity}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    r.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string()
}
/// The identity secret test servers share with the "shop".
pub const IDENTITY: &str = "test-identity-secret-0123456789";

/// The `customer_hash` the shop's backend would send for `customer`.
pub fn hash(customer: &str) -> String {
    switchboard::identity::sign_with(
        IDENTITY,
        &switchboard::domain::CustomerId::parse(customer).unwrap(),
    )
}

/// Adds the shop's signature to a request that starts a conversation for a named customer
/// (and has none yet), as a shop's widget would.
pub fn signed(mut body: Value) -> Value {
    if let Some(c) = body["customer_id"].as_str().map(str::to_string)
        && body.get("conversation_id").is_none()
        && body.get("customer_hash").is_none()
        && switchboard::domain::CustomerId::parse(&c).is_ok()
    {
        body["customer_hash"] = json!(hash(&c));
    }
    body
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

static PREPARED: OnceLock<()> = OnceLock::new();
static MODEL: OnceLock<Arc<IntentModel>> = OnceLock::new();
static CLASSIFIER: OnceLock<Arc<dyn IntentClassifier>> = OnceLock::new();

/// Makes sure the product head is trained and current, once per test binary, before anything
/// (a test server, a spawned binary) loads it.
pub fn prepare() {
    PREPARED.get_or_init(|| {
        let r = root();
        switchboard::commands::train::ensure_product_model(
            &r.join("models"),
            switchboard::models::DEFAULT_ENCODER,
            "switchboard",
            &r.join("intents"),
            &r.join("training-data"),
        )
        .expect("the product classifier loads (run `switchboard models fetch` first)");
    });
}

fn load_model() -> IntentModel {
    prepare();
    let dir = root()
        .join("models")
        .join(switchboard::models::DEFAULT_ENCODER);
    IntentModel::load(&dir, "switchboard").expect("the trained product head loads")
}

/// The product classifier, loaded once per test binary.
pub fn model() -> Arc<IntentModel> {
    MODEL.get_or_init(|| Arc::new(load_model())).clone()
}

/// The classifier service every test server shares.
pub fn classifier() -> Arc<dyn IntentClassifier> {
    CLASSIFIER
        .get_or_init(|| Arc::new(ClassifierService::start(load_model(), 256)))
        .clone()
}

/// Settings of a test server: port 0, a fresh data directory, the repository's data.
pub fn settings(data_dir: &Path) -> Settings {
    let r = root();
    Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data_dir.to_path_buf(),
        models_dir: r.join("models"),
        intents_dir: r.join("intents"),
        training_dir: r.join("training-data"),
        kb_dir: r.join("kb"),
        demo_dir: Some(r.join("demo")),
        admin_token: Some(Secret::new(ADMIN)),
        identity_secret: Some(Secret::new(IDENTITY)),
        ..Settings::default()
    }
}

/// A running test server.
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    /// Kept alive for the server's lifetime; removed on drop.
    _data_dir: tempfile::TempDir,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    if std::env::var_os("TEST_LOG").is_some() {
        switchboard::telemetry::init_logging();
    }
    start_in(tempfile::tempdir().unwrap(), configure).await
}

async fn start_in(data_dir: tempfile::TempDir, configure: impl FnOnce(&mut Settings)) -> TestApp {
    let mut s = settings(data_dir.path());
    configure(&mut s);
    let app = Application::build(s, Some(classifier()))
        .await
        .expect("app builds");
    let base = format!("http://{}", app.local_addr());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(app.run_until(async {
        let _ = rx.await;
    }));
    TestApp {
        base,
        client: reqwest::Client::new(),
        _data_dir: data_dir,
        shutdown: Some(tx),
        handle: Some(handle),
    }
}

impl TestApp {
    /// The server's data directory.
    pub fn data_dir(&self) -> &Path {
        self._data_dir.path()
    }

    pub async fn post_raw(
        &self,
        body: impl Into<reqwest::Body>,
        content_type: &str,
        token: Option<&str>,
    ) -> reqwest::Response {
        let mut req = self
            .client
            .post(format!("{}/api/v1/messages", self.base))
            .header("content-type", content_type)
            .body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.expect("request sent")
    }

    /// Posts a message; a new conversation for a named customer is signed like a shop's
    /// widget would (use [`TestApp::post_unsigned`] to send it as written).
    pub async fn post(&self, body: Value, token: Option<&str>) -> reqwest::Response {
        self.post_unsigned(signed(body), token).await
    }

    /// Posts a message exactly as given.
    pub async fn post_unsigned(&self, body: Value, token: Option<&str>) -> reqwest::Response {
        self.post_raw(body.to_string(), "application/json", token)
            .await
    }

    /// Sends a message and expects 200; returns the JSON answer.
    pub async fn say(&self, customer: &str, text: &str, conv: Option<(&str, &str)>) -> Value {
        let mut body = json!({"customer_id": customer, "text": text});
        if let Some((id, _)) = conv {
            body["conversation_id"] = json!(id);
        }
        let resp = self.post(body, conv.map(|(_, t)| t)).await;
        assert_eq!(resp.status(), 200, "{text}");
        resp.json().await.unwrap()
    }

    pub async fn get_conversation(&self, id: &str, token: Option<&str>) -> reqwest::Response {
        let mut req = self
            .client
            .get(format!("{}/api/v1/conversations/{id}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap()
    }

    /// Stops the server but keeps its address and data directory, so that
    /// [`StoppedApp::start_again`] restarts it as a process restart would.
    pub async fn shut_down(mut self) -> StoppedApp {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            h.await.unwrap().unwrap();
        }
        StoppedApp {
            addr: self.base.trim_start_matches("http://").parse().unwrap(),
            data_dir: self._data_dir,
        }
    }

    /// Stops the server, letting in-flight requests finish.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            h.await.unwrap().unwrap();
        }
    }
}

/// A stopped test server whose data directory is kept.
pub struct StoppedApp {
    addr: std::net::SocketAddr,
    data_dir: tempfile::TempDir,
}

impl StoppedApp {
    /// Starts a new server on the same address and data directory.
    pub async fn start_again(self) -> TestApp {
        let addr = self.addr;
        start_in(self.data_dir, |s| s.listen = addr).await
    }
}

/// The `(conversation_id, conversation_token)` of an answer.
pub fn conv(answer: &Value) -> (String, String) {
    (
        answer["conversation_id"].as_str().unwrap().to_string(),
        answer["conversation_token"].as_str().unwrap().to_string(),
    )
}

/// Asserts an error response: status and JSON `{error, message}`.
pub async fn assert_error(resp: reqwest::Response, status: u16, code: &str) {
    assert_eq!(resp.status().as_u16(), status);
    let body: Value = resp.json().await.expect("error body is JSON");
    assert_eq!(body["error"], code, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

/// The PostgreSQL server the tests use (`SWITCHBOARD_TEST_POSTGRES`, default the machine's
/// local server with trust auth). Tests that need it fail, not skip, when it is unreachable.
pub fn postgres_server() -> String {
    std::env::var("SWITCHBOARD_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_string())
}

/// A fresh, empty PostgreSQL database for one test, dropped when this goes out of scope.
pub struct PgDatabase {
    pub url: String,
    name: String,
}

impl PgDatabase {
    pub async fn create() -> Self {
        use sqlx::Connection;
        let name = format!("switchboard_test_{}", uuid::Uuid::new_v4().simple());
        let server = postgres_server();
        let mut admin = sqlx::PgConnection::connect(&format!("{server}/postgres"))
            .await
            .unwrap_or_else(|e| {
                panic!("PostgreSQL at {server} is needed by this test (start it: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start): {e}")
            });
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .expect("test database created");
        Self {
            url: format!("{server}/{name}"),
            name,
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let server = postgres_server();
        let name = self.name.clone();
        // Drop runs inside the test's runtime: use a thread of our own to wait for the drop.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                use sqlx::Connection;
                if let Ok(mut admin) =
                    sqlx::PgConnection::connect(&format!("{server}/postgres")).await
                {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut admin)
                        .await;
                }
            });
        })
        .join();
    }
}
