//! A small WebDriver client (the W3C JSON protocol over `reqwest`) driving Debian's headless
//! Chromium through `chromedriver`. The dozen calls the browser tests need do not justify a
//! WebDriver crate and its dependency tree.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

/// The key of an element reference in WebDriver JSON.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
pub const ENTER: &str = "\u{E007}";
pub const TAB: &str = "\u{E004}";
pub const SHIFT: &str = "\u{E008}";
pub const ESCAPE: &str = "\u{E00C}";
pub const CONTROL: &str = "\u{E009}";
pub const ALT: &str = "\u{E00A}";

/// How long a condition may take before a test fails: generous, since the real model answers
/// on a shared machine; passing tests never wait this long.
pub const PATIENCE: Duration = Duration::from_secs(90);

/// One headless Chromium with its own profile, closed on drop.
pub struct Browser {
    driver: Child,
    http: reqwest::Client,
    session: String,
    _profile: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Browser {
    /// Starts chromedriver and a fresh headless Chromium session with a viewport of
    /// `width` × `height` CSS pixels.
    pub async fn start(width: u32, height: u32) -> Browser {
        let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let chromedriver =
            std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
        assert!(
            Path::new(&chromium).exists() && Path::new(&chromedriver).exists(),
            "the browser tests need {chromium} and {chromedriver}: run ./scripts/test.sh, which \
             installs Debian's chromium and chromium-driver"
        );
        let port = free_port();
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let profile = tempfile::tempdir().unwrap();
        let mut browser = Browser {
            driver,
            http: reqwest::Client::new(),
            session: format!("http://127.0.0.1:{port}"),
            _profile: profile,
        };
        let base = browser.session.clone();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = browser
                .http
                .get(format!("{base}/status"))
                .send()
                .await
                .ok()
                .map(|r| r.status().is_success())
                .unwrap_or(false);
            if ready {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--disable-dev-shm-usage", "--hide-scrollbars",
                    "--lang=en-US",
                    format!("--user-data-dir={}", browser._profile.path().display()),
                    format!("--window-size={width},{height}"),
                ]
            }
        }}});
        let resp: Value = browser
            .http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .expect("new session")
            .json()
            .await
            .unwrap();
        let id = resp["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {resp}"))
            .to_string();
        browser.session = format!("{base}/session/{id}");
        browser.viewport(width, height).await;
        browser
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        match self.try_call(method, path, body).await {
            Ok(v) => v,
            Err((err, message)) => panic!("webdriver {path}: {err}: {message}"),
        }
    }

    /// A WebDriver call whose error (`(error, message)`) is the caller's to handle.
    async fn try_call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, (String, Value)> {
        let mut req = self.http.request(method, format!("{}{path}", self.session));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp: Value = req
            .send()
            .await
            .expect("webdriver call")
            .json()
            .await
            .unwrap();
        if let Some(err) = resp["value"]["error"].as_str() {
            return Err((err.to_string(), resp["value"]["message"].clone()));
        }
        Ok(resp["value"].clone())
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    /// Sets the layout viewport exactly (the window size of headless Chromium includes no
    /// chrome, but emulation also pins the device width media queries see).
    pub async fn viewport(&self, width: u32, height: u32) {
        self.post(
            "/goog/cdp/execute",
            json!({"cmd": "Emulation.setDeviceMetricsOverride", "params": {
                "width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 500
            }}),
        )
        .await;
    }

    /// Runs a Chrome DevTools Protocol command (e.g. to grant a permission).
    pub async fn cdp(&self, cmd: &str, params: Value) -> Value {
        self.post("/goog/cdp/execute", json!({"cmd": cmd, "params": params}))
            .await
    }

    pub async fn goto(&self, url: &str) {
        self.post("/url", json!({ "url": url })).await;
    }

    /// Runs `script` (a function body; `arguments` are `args`) in the page.
    pub async fn js(&self, script: &str, args: Value) -> Value {
        self.post("/execute/sync", json!({"script": script, "args": args}))
            .await
    }

    /// An element inside the widget's shadow root.
    pub async fn widget(&self, css: &str) -> Value {
        let el = self
            .js(
                "return document.querySelector('switchboard-chat').shadowRoot.querySelector(arguments[0]);",
                json!([css]),
            )
            .await;
        assert!(el.get(ELEMENT).is_some(), "no widget element {css}");
        el
    }

    /// An element of the page itself (outside any shadow root), waiting until it exists.
    pub async fn element(&self, css: &str) -> Value {
        let el = self
            .wait_for(
                &format!("the element {css}"),
                "return document.querySelector(arguments[0]);",
                json!([css]),
            )
            .await;
        assert!(el.get(ELEMENT).is_some(), "no element {css}");
        el
    }

    /// The handle of the current window (tab).
    pub async fn window(&self) -> String {
        self.call(reqwest::Method::GET, "/window", None)
            .await
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Opens a new tab and returns its handle (the current tab stays current).
    pub async fn new_tab(&self) -> String {
        let v = self.post("/window/new", json!({"type": "tab"})).await;
        v["handle"].as_str().unwrap().to_string()
    }

    /// Makes the tab with `handle` current.
    pub async fn switch_to(&self, handle: &str) {
        self.post("/window", json!({ "handle": handle })).await;
    }

    /// Clicks the page element `css` finds, finding it again when the page replaced it between
    /// the lookup and the click (live pages rebuild their lists).
    pub async fn click_css(&self, css: &str) {
        for _ in 0..20 {
            let el = self.element(css).await;
            let path = format!("/element/{}/click", el[ELEMENT].as_str().unwrap());
            match self
                .try_call(reqwest::Method::POST, &path, Some(json!({})))
                .await
            {
                Ok(_) => return,
                Err((err, _)) if err == "stale element reference" => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err((err, message)) => panic!("webdriver {path}: {err}: {message}"),
            }
        }
        panic!("{css} kept being replaced before it could be clicked");
    }

    pub async fn click(&self, el: &Value) {
        self.post(
            &format!("/element/{}/click", el[ELEMENT].as_str().unwrap()),
            json!({}),
        )
        .await;
    }

    /// Types into an element (WebDriver focuses it first).
    pub async fn type_into(&self, el: &Value, text: &str) {
        self.post(
            &format!("/element/{}/value", el[ELEMENT].as_str().unwrap()),
            json!({ "text": text }),
        )
        .await;
    }

    /// Presses keys on whatever has focus, as a keyboard-only user would. A key inside
    /// `hold` is kept down while the others are pressed (e.g. Shift for Shift+Tab).
    pub async fn keys(&self, hold: Option<&str>, keys: &str) {
        let mut actions = Vec::new();
        if let Some(h) = hold {
            actions.push(json!({"type": "keyDown", "value": h}));
        }
        for k in keys.chars() {
            actions.push(json!({"type": "keyDown", "value": k.to_string()}));
            actions.push(json!({"type": "keyUp", "value": k.to_string()}));
        }
        if let Some(h) = hold {
            actions.push(json!({"type": "keyUp", "value": h}));
        }
        self.post(
            "/actions",
            json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]}),
        )
        .await;
        self.call(reqwest::Method::DELETE, "/actions", None).await;
    }

    /// Waits until `script` returns something truthy and returns it; fails after
    /// [`PATIENCE`] with `what` and the widget's visible text.
    pub async fn wait_for(&self, what: &str, script: &str, args: Value) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let v = self.js(script, args.clone()).await;
            let truthy = match &v {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::String(s) => !s.is_empty(),
                Value::Number(n) => n.as_f64() != Some(0.0),
                _ => true,
            };
            if truthy {
                return v;
            }
            if Instant::now() > deadline {
                let text = self.widget_text().await;
                panic!("timed out waiting for {what}; the widget shows:\n{text}");
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    /// Everything the widget's panel shows, as text.
    pub async fn widget_text(&self) -> String {
        self.js(
            "var r = document.querySelector('switchboard-chat'); return r ? r.shadowRoot.querySelector('.panel').innerText : '';",
            json!([]),
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_string()
    }

    /// Saves a PNG of the viewport.
    pub async fn screenshot(&self, path: &Path) {
        let b64 = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap())
            .unwrap();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ends the session (closing Chromium) without an async runtime, then chromedriver.
        let session = self.session.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let _ = reqwest::Client::new()
                    .delete(&session)
                    .timeout(Duration::from_secs(10))
                    .send()
                    .await;
            });
        })
        .join();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
