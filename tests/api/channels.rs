//! Messaging channels end to end (issue #10): WhatsApp, Telegram and the generic signed
//! webhook against the real server, with local fake platform APIs on loopback that accept,
//! fail, time out and rate-limit. Payloads are the platforms' published examples
//! (`tests/fixtures/channels/`).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde_json::{Value, json};
use switchboard::channels::signature::{sign_generic, sign_whatsapp, verify_generic};
use switchboard::settings::{Secret, Settings};

use crate::helpers::{ADMIN, TestApp, assert_error, root, spawn_app, spawn_app_with};

pub const WA_SECRET: &str = "wa-app-secret-for-tests";
pub const WA_VERIFY: &str = "wa-verify-token";
pub const WA_PHONE: &str = "106540352242922";
pub const TG_TOKEN: &str = "123456:TEST-bot-token";
pub const TG_SECRET: &str = "tg-secret_token-0123";
pub const GENERIC_SECRET: &str = "generic-secret-0123456789";

/// What the fake platform does with the next request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Behaviour {
    Accept,
    Fail,
    /// Answers only after the sender's timeout.
    Hang,
    /// 429 with `Retry-After` in seconds.
    RateLimit(u64),
}

#[derive(Debug, Clone)]
pub struct Request {
    pub path: String,
    pub headers: HeaderMap,
    pub raw: String,
    pub body: Value,
}

/// A media file the fake platform holds, or how fetching it fails.
#[derive(Debug, Clone)]
pub enum Media {
    Bytes(Vec<u8>),
    /// The lookup (WhatsApp `GET /{media_id}`, Telegram `getFile`) answers this status.
    LookupFails(u16),
    /// The lookup works; the download answers this status.
    DownloadFails(u16),
}

struct FakeState {
    script: VecDeque<Behaviour>,
    default: Behaviour,
    attempts: Vec<(Request, Behaviour)>,
    delivered: Vec<Request>,
    /// By WhatsApp media id or Telegram file id.
    media: HashMap<String, Media>,
    /// Media requests (path and query), apart from the message deliveries.
    media_requests: Vec<String>,
}

/// A fake platform API (WhatsApp Graph API, Telegram Bot API or a shop's reply endpoint) on
/// a loopback port.
#[derive(Clone)]
pub struct Fake {
    pub base: String,
    state: Arc<Mutex<FakeState>>,
}

impl Fake {
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(FakeState {
            script: VecDeque::new(),
            default: Behaviour::Accept,
            attempts: Vec::new(),
            delivered: Vec::new(),
            media: HashMap::new(),
            media_requests: Vec::new(),
        }));
        let s = state.clone();
        let app = axum::Router::new().fallback(
            move |uri: axum::http::Uri, headers: HeaderMap, body: String| {
                let s = s.clone();
                async move {
                    if let Some(r) = serve_media(&s, &uri, &headers) {
                        return r;
                    }
                    answer(s, uri.path().to_string(), headers, body).await
                }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { base, state }
    }

    /// Behaviours for the next requests, then `default`.
    pub fn script(&self, script: &[Behaviour], default: Behaviour) {
        let mut s = self.state.lock().unwrap();
        s.script = script.iter().copied().collect();
        s.default = default;
    }

    /// Makes `id` a media file (WhatsApp media id or Telegram file id) of the platform.
    pub fn add_media(&self, id: &str, media: Media) {
        self.state
            .lock()
            .unwrap()
            .media
            .insert(id.to_string(), media);
    }

    pub fn media_requests(&self) -> Vec<String> {
        self.state.lock().unwrap().media_requests.clone()
    }

    pub fn delivered(&self) -> Vec<Request> {
        self.state.lock().unwrap().delivered.clone()
    }

    pub fn attempts(&self) -> usize {
        self.state.lock().unwrap().attempts.len()
    }

    /// Waits until at least `n` requests were accepted; returns them.
    pub async fn wait_delivered(&self, n: usize, within: Duration) -> Vec<Request> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let d = self.delivered();
            if d.len() >= n {
                return d;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "only {} of {n} deliveries arrived (attempts: {})",
                d.len(),
                self.attempts()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The platforms' media endpoints: WhatsApp `GET /{version}/{media_id}` (JSON with a
/// download `url`) and the download, both with the access token as bearer; Telegram
/// `getFile?file_id=` (`result.file_path`) and `/file/bot{token}/{file_path}`. `None` for
/// other requests.
fn serve_media(
    state: &Arc<Mutex<FakeState>>,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
) -> Option<axum::response::Response> {
    let path = uri.path();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let wa_lookup = segments.len() == 2 && segments[0] == "v21.0";
    let wa_download = path.starts_with("/wa-media/");
    let tg_lookup = path == format!("/bot{TG_TOKEN}/getFile");
    let tg_download = path.starts_with(&format!("/file/bot{TG_TOKEN}/photos/"));
    if !(wa_lookup || wa_download || tg_lookup || tg_download) {
        return None;
    }
    let mut s = state.lock().unwrap();
    s.media_requests
        .push(format!("{path}?{}", uri.query().unwrap_or_default()));
    let not_found = |what: &str| {
        Some(
            (
                StatusCode::NOT_FOUND,
                axum::Json(json!({"error": {"message": format!("{what} not found"), "code": 100}})),
            )
                .into_response(),
        )
    };
    if (wa_lookup || wa_download)
        && headers.get("authorization").and_then(|v| v.to_str().ok())
            != Some("Bearer wa-access-token")
    {
        return Some((StatusCode::UNAUTHORIZED, "no token").into_response());
    }
    let id = if wa_lookup {
        segments[1].to_string()
    } else if wa_download || tg_download {
        path.rsplit('/')
            .next()
            .unwrap()
            .trim_end_matches(".jpg")
            .to_string()
    } else {
        let query = uri.query().unwrap_or_default();
        query
            .strip_prefix("file_id=")
            .map(str::to_string)
            .unwrap_or_default()
    };
    let Some(media) = s.media.get(&id).cloned() else {
        return if tg_lookup {
            Some((StatusCode::BAD_REQUEST, axum::Json(json!({"ok": false, "error_code": 400, "description": "Bad Request: invalid file_id"}))).into_response())
        } else {
            not_found("media")
        };
    };
    let status = |code: u16| {
        Some((StatusCode::from_u16(code).unwrap(), "media unavailable").into_response())
    };
    match (media, wa_lookup || tg_lookup) {
        (Media::LookupFails(code), true) | (Media::DownloadFails(code), false) => status(code),
        (Media::Bytes(bytes), false) => Some(bytes.into_response()),
        (_, true) if wa_lookup => {
            // The published answer, with the download on this fake.
            let base = format!("http://{}", headers["host"].to_str().unwrap());
            Some(axum::Json(json!({
                "messaging_product": "whatsapp",
                "url": format!("{base}/wa-media/{id}"),
                "mime_type": "image/jpeg",
                "sha256": "unused",
                "file_size": "1",
                "id": id,
            })).into_response())
        }
        (_, true) => Some(axum::Json(json!({
            "ok": true,
            "result": {"file_id": id, "file_unique_id": "u1", "file_size": 1, "file_path": format!("photos/{id}.jpg")}
        })).into_response()),
        (Media::LookupFails(_), false) => not_found("media"),
    }
}

async fn answer(
    state: Arc<Mutex<FakeState>>,
    path: String,
    headers: HeaderMap,
    raw: String,
) -> axum::response::Response {
    let body: Value = serde_json::from_str(&raw).unwrap_or(Value::Null);
    let req = Request {
        path: path.clone(),
        headers,
        raw,
        body,
    };
    let behaviour = {
        let mut s = state.lock().unwrap();
        let b = s.script.pop_front().unwrap_or(s.default);
        s.attempts.push((req.clone(), b));
        b
    };
    match behaviour {
        Behaviour::Fail => {
            (StatusCode::INTERNAL_SERVER_ERROR, "upstream exploded").into_response()
        }
        Behaviour::Hang => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            (StatusCode::OK, "too late").into_response()
        }
        Behaviour::RateLimit(secs) => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", secs.to_string())],
            axum::Json(json!({"ok": false, "error_code": 429, "description": format!("Too Many Requests: retry after {secs}"), "parameters": {"retry_after": secs}})),
        )
            .into_response(),
        Behaviour::Accept => {
            let n = {
                let mut s = state.lock().unwrap();
                s.delivered.push(req);
                s.delivered.len()
            };
            if path.ends_with("/messages") {
                axum::Json(json!({
                    "messaging_product": "whatsapp",
                    "contacts": [{"input": "16505551234", "wa_id": "16505551234"}],
                    "messages": [{"id": format!("wamid.fake-{n}")}]
                }))
                .into_response()
            } else if path.ends_with("/sendMessage") {
                axum::Json(json!({"ok": true, "result": {"message_id": 5000 + n, "chat": {"id": 1111111, "type": "private"}, "date": 1441645600, "text": "ok"}}))
                    .into_response()
            } else {
                axum::Json(json!({"received": true})).into_response()
            }
        }
    }
}

pub fn fixture(name: &str) -> Value {
    let path = root().join("tests/fixtures/channels").join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// Channel settings pointing every platform at `fake`, with short delays.
pub fn configure(s: &mut Settings, fake: &Fake) {
    let c = &mut s.channels;
    c.whatsapp_app_secret = Some(Secret::new(WA_SECRET));
    c.whatsapp_verify_token = Some(Secret::new(WA_VERIFY));
    c.whatsapp_access_token = Some(Secret::new("wa-access-token"));
    c.whatsapp_phone_number_id = Some(WA_PHONE.into());
    c.whatsapp_api_base = Some(fake.base.clone());
    c.telegram_bot_token = Some(Secret::new(TG_TOKEN));
    c.telegram_secret_token = Some(Secret::new(TG_SECRET));
    c.telegram_api_base = Some(fake.base.clone());
    c.generic_secret = Some(Secret::new(GENERIC_SECRET));
    c.generic_reply_url = Some(format!("{}/shop/replies", fake.base));
    c.outbox_base_delay_ms = Some(50);
    c.outbox_max_delay_ms = Some(400);
    c.outbox_max_attempts = Some(10);
    c.send_timeout_ms = Some(700);
    c.inbox_settle_ms = Some(150);
}

async fn app_with_fake() -> (TestApp, Fake) {
    let fake = Fake::start().await;
    let f = fake.clone();
    let app = spawn_app_with(move |s| configure(s, &f)).await;
    (app, fake)
}

/// A WhatsApp message from `from` with this id and text, in Meta's example envelope.
pub fn wa_text(id: &str, from: &str, text: &str, ts: i64) -> Value {
    let mut v = fixture("whatsapp_text.json");
    let m = &mut v["entry"][0]["changes"][0]["value"]["messages"][0];
    m["id"] = json!(id);
    m["from"] = json!(from);
    m["timestamp"] = json!(ts.to_string());
    m["text"]["body"] = json!(text);
    v["entry"][0]["changes"][0]["value"]["contacts"][0]["wa_id"] = json!(from);
    v
}

pub fn tg_text(update_id: i64, message_id: i64, chat: i64, text: &str, date: i64) -> Value {
    let mut v = fixture("telegram_text.json");
    v["update_id"] = json!(update_id);
    v["message"]["message_id"] = json!(message_id);
    v["message"]["from"]["id"] = json!(chat);
    v["message"]["chat"]["id"] = json!(chat);
    v["message"]["text"] = json!(text);
    v["message"]["date"] = json!(date);
    v
}

pub async fn post_whatsapp(base: &str, body: &str, signature: Option<&str>) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(format!("{base}/webhooks/whatsapp"))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(s) = signature {
        req = req.header("x-hub-signature-256", s);
    }
    req.send().await.unwrap()
}

pub async fn post_wa(base: &str, v: &Value) -> reqwest::Response {
    let body = v.to_string();
    post_whatsapp(
        base,
        &body,
        Some(&sign_whatsapp(WA_SECRET, body.as_bytes())),
    )
    .await
}

pub async fn post_tg(base: &str, v: &Value, secret: Option<&str>) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(format!("{base}/webhooks/telegram"))
        .header("content-type", "application/json")
        .body(v.to_string());
    if let Some(s) = secret {
        req = req.header("x-telegram-bot-api-secret-token", s);
    }
    req.send().await.unwrap()
}

async fn post_generic(base: &str, body: &str, signature: Option<String>) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(format!("{base}/webhooks/generic"))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(s) = signature {
        req = req.header("x-switchboard-signature", s);
    }
    req.send().await.unwrap()
}

pub async fn outbox(base: &str, query: &str) -> Vec<Value> {
    let v: Value = reqwest::Client::new()
        .get(format!("{base}/api/v1/outbox{query}"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["items"].as_array().unwrap().clone()
}

pub async fn transcript(base: &str, id: &str) -> Value {
    reqwest::Client::new()
        .get(format!("{base}/api/v1/conversations/{id}"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn texts_by(conv: &Value, author: &str) -> Vec<String> {
    conv["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["author"] == author)
        .map(|m| m["text"].as_str().unwrap().to_string())
        .collect()
}

/// The text each delivery carried, whatever the platform.
pub fn delivered_text(r: &Request) -> String {
    r.body["text"]["body"]
        .as_str()
        .or_else(|| r.body["text"].as_str())
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn whatsapp_subscription_check() {
    let (app, _fake) = app_with_fake().await;
    let get = |q: String| {
        let url = format!("{}/webhooks/whatsapp?{q}", app.base);
        async move { reqwest::get(url).await.unwrap() }
    };
    let ok = get(format!(
        "hub.mode=subscribe&hub.verify_token={WA_VERIFY}&hub.challenge=1158201444"
    ))
    .await;
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.unwrap(), "1158201444");
    let wrong = get("hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1".into()).await;
    assert_eq!(wrong.status(), 403);
    let mode = get(format!(
        "hub.mode=unsubscribe&hub.verify_token={WA_VERIFY}&hub.challenge=1"
    ))
    .await;
    assert_eq!(mode.status(), 403);

    // Without settings every channel is off.
    let off = spawn_app().await;
    let r = reqwest::get(format!(
        "{}/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token={WA_VERIFY}&hub.challenge=1",
        off.base
    ))
    .await
    .unwrap();
    assert_error(r, 404, "not_found").await;
    let body = fixture("whatsapp_text.json");
    assert_error(post_wa(&off.base, &body).await, 404, "not_found").await;
    assert_error(
        post_tg(&off.base, &fixture("telegram_text.json"), Some(TG_SECRET)).await,
        404,
        "not_found",
    )
    .await;
    assert_error(post_generic(&off.base, "{}", None).await, 404, "not_found").await;
}

#[tokio::test]
async fn whatsapp_message_is_answered_through_the_outbox_and_statuses_update_it() {
    let (app, fake) = app_with_fake().await;
    let body = fixture("whatsapp_text.json");
    let r = post_wa(&app.base, &body).await;
    assert_eq!(r.status(), 200);
    let ack: Value = r.json().await.unwrap();
    assert_eq!(ack, json!({"received": 1, "duplicates": 0}));

    let sent = fake.wait_delivered(1, Duration::from_secs(20)).await;
    let req = &sent[0];
    assert_eq!(req.path, format!("/v21.0/{WA_PHONE}/messages"));
    assert_eq!(
        req.headers["authorization"].to_str().unwrap(),
        "Bearer wa-access-token"
    );
    assert_eq!(req.body["messaging_product"], "whatsapp");
    assert_eq!(req.body["to"], "16505551234");
    assert_eq!(req.body["type"], "text");
    assert!(!delivered_text(req).is_empty());

    let rows = outbox(&app.base, "").await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["state"], "sent");
    assert_eq!(rows[0]["platform_message_id"], "wamid.fake-1");
    let id = rows[0]["conversation_id"].as_str().unwrap().to_string();
    let conv = transcript(&app.base, &id).await;
    assert_eq!(conv["channel"], "whatsapp");
    assert_eq!(conv["customer_id"], "wa:16505551234");
    let shopper: Vec<&Value> = conv["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["author"] == "shopper")
        .collect();
    assert_eq!(shopper.len(), 1);
    assert_eq!(shopper[0]["text"], "Does it come in another color?");
    // Stored with the platform's time (1749416383 = 2025-06-08T20:59:43Z), not ours.
    assert_eq!(shopper[0]["at"], "2025-06-08T20:59:43Z");
    let bots = texts_by(&conv, "bot");
    assert_eq!(bots, vec![delivered_text(req)]);

    // Delivery statuses from WhatsApp move the stored reply forward, never back.
    for (status, expect) in [
        ("delivered", "delivered"),
        ("read", "read"),
        ("delivered", "read"),
    ] {
        let mut st = fixture("whatsapp_status.json");
        let s = &mut st["entry"][0]["changes"][0]["value"]["statuses"][0];
        s["id"] = json!("wamid.fake-1");
        s["status"] = json!(status);
        assert_eq!(post_wa(&app.base, &st).await.status(), 200);
        let conv = transcript(&app.base, &id).await;
        let reply = conv["messages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["author"] == "bot")
            .unwrap()
            .clone();
        assert_eq!(reply["delivery"], expect, "after {status}");
    }
    assert_eq!(outbox(&app.base, "").await[0]["delivery_status"], "read");
    // A status for a message we never sent is acknowledged and changes nothing.
    assert_eq!(
        post_wa(&app.base, &fixture("whatsapp_status.json"))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn the_same_whatsapp_message_five_times_at_once_is_stored_and_answered_once() {
    let (app, fake) = app_with_fake().await;
    let body = wa_text(
        "wamid.DUPLICATE-5",
        "16505550005",
        "where is my order?",
        1_764_115_200,
    );
    let posts = (0..5).map(|_| post_wa(&app.base, &body));
    let acks = futures::future::join_all(posts).await;
    let mut received = 0;
    for r in acks {
        assert_eq!(r.status(), 200);
        let a: Value = r.json().await.unwrap();
        received += a["received"].as_u64().unwrap();
    }
    assert_eq!(received, 1, "exactly one delivery stored the message");
    fake.wait_delivered(1, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(fake.delivered().len(), 1, "one answer");
    let rows = outbox(&app.base, "").await;
    assert_eq!(rows.len(), 1);
    let conv = transcript(&app.base, rows[0]["conversation_id"].as_str().unwrap()).await;
    assert_eq!(texts_by(&conv, "shopper"), vec!["where is my order?"]);
    // A redelivery long after is still a duplicate.
    let again: Value = post_wa(&app.base, &body).await.json().await.unwrap();
    assert_eq!(again, json!({"received": 0, "duplicates": 1}));
    let m = metrics(&app.base).await;
    for line in [
        "switchboard_channel_messages_total{channel=\"whatsapp\",outcome=\"new\"} 1",
        "switchboard_channel_messages_total{channel=\"whatsapp\",outcome=\"duplicate\"} 5",
        "switchboard_outbox_deliveries_total{channel=\"whatsapp\",outcome=\"delivered\"} 1",
    ] {
        assert!(m.lines().any(|l| l == line), "no `{line}` in\n{m}");
    }
}

/// The service's Prometheus metrics.
async fn metrics(base: &str) -> String {
    reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn bad_webhooks_get_the_right_status_and_store_nothing() {
    let (app, fake) = app_with_fake().await;
    let good = wa_text("wamid.BAD-1", "16505550001", "hello", 1_764_115_200);
    let body = good.to_string();
    // Signatures are checked before anything is parsed.
    assert_error(
        post_whatsapp(&app.base, &body, None).await,
        401,
        "invalid_signature",
    )
    .await;
    let forged = sign_whatsapp("not-the-secret", body.as_bytes());
    assert_error(
        post_whatsapp(&app.base, &body, Some(&forged)).await,
        401,
        "invalid_signature",
    )
    .await;
    assert_error(
        post_whatsapp(&app.base, &body, Some("sha256=zz")).await,
        401,
        "invalid_signature",
    )
    .await;
    let tampered = body.replace("hello", "HELLO");
    let sig = sign_whatsapp(WA_SECRET, body.as_bytes());
    assert_error(
        post_whatsapp(&app.base, &tampered, Some(&sig)).await,
        401,
        "invalid_signature",
    )
    .await;
    // Signed but malformed.
    for (raw, status, code) in [
        ("{\"object\":", 400, "bad_request"),
        (
            "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"changes\":[{\"value\":{}}]}]}",
            422,
            "invalid_request",
        ),
        ("{\"object\":\"page\",\"entry\":[]}", 422, "invalid_request"),
        ("[]", 422, "invalid_request"),
    ] {
        let sig = sign_whatsapp(WA_SECRET, raw.as_bytes());
        assert_error(
            post_whatsapp(&app.base, raw, Some(&sig)).await,
            status,
            code,
        )
        .await;
    }
    let mut empty_text = good.clone();
    empty_text["entry"][0]["changes"][0]["value"]["messages"][0]["text"]["body"] = json!("  ");
    assert_error(
        post_wa(&app.base, &empty_text).await,
        422,
        "invalid_request",
    )
    .await;
    // Another business number: refused as a whole.
    let mut other = good.clone();
    other["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = json!("999999999");
    assert_error(post_wa(&app.base, &other).await, 404, "not_found").await;
    // Oversized bodies are refused before they are read whole.
    let huge = format!("{{\"pad\":\"{}\"}}", "x".repeat(70 * 1024));
    let sig = sign_whatsapp(WA_SECRET, huge.as_bytes());
    assert_error(
        post_whatsapp(&app.base, &huge, Some(&sig)).await,
        413,
        "payload_too_large",
    )
    .await;

    // Telegram: the secret token.
    let update = tg_text(7001, 1, 4242, "hello", 1_764_115_200);
    assert_error(
        post_tg(&app.base, &update, None).await,
        401,
        "invalid_signature",
    )
    .await;
    assert_error(
        post_tg(&app.base, &update, Some("wrong")).await,
        401,
        "invalid_signature",
    )
    .await;
    let r = reqwest::Client::new()
        .post(format!("{}/webhooks/telegram", app.base))
        .header("x-telegram-bot-api-secret-token", TG_SECRET)
        .body("{\"update_id\":")
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "bad_request").await;

    // Generic: signature, replay window, shape.
    let now = chrono::Utc::now().timestamp();
    let msg = fixture("generic_message.json").to_string();
    assert_error(
        post_generic(&app.base, &msg, None).await,
        401,
        "invalid_signature",
    )
    .await;
    let old = sign_generic(GENERIC_SECRET, now - 600, msg.as_bytes());
    assert_error(
        post_generic(&app.base, &msg, Some(old)).await,
        401,
        "signature_expired",
    )
    .await;
    let future = sign_generic(GENERIC_SECRET, now + 600, msg.as_bytes());
    assert_error(
        post_generic(&app.base, &msg, Some(future)).await,
        401,
        "signature_expired",
    )
    .await;
    let wrong = sign_generic("another-secret-0123456789", now, msg.as_bytes());
    assert_error(
        post_generic(&app.base, &msg, Some(wrong)).await,
        401,
        "invalid_signature",
    )
    .await;
    for bad in [
        json!({"message_id": "m", "customer_id": "c-1", "text": "hi"}),
        json!({"message_id": "m", "customer_id": "c 1", "text": "hi", "sent_at": "2026-11-26T00:00:00Z"}),
        json!({"message_id": "m", "customer_id": "c-1", "text": "", "sent_at": "2026-11-26T00:00:00Z"}),
        json!({"message_id": "m", "customer_id": "c-1", "text": "hi", "sent_at": "2026-11-26T00:00:00Z", "extra": 1}),
        json!({"message_id": "m", "customer_id": "c-1", "text": "hi", "lang": "fr", "sent_at": "2026-11-26T00:00:00Z"}),
    ] {
        let b = bad.to_string();
        let sig = sign_generic(GENERIC_SECRET, now, b.as_bytes());
        assert_error(
            post_generic(&app.base, &b, Some(sig)).await,
            422,
            "invalid_request",
        )
        .await;
    }

    // Nothing was stored: no replies, no outbox rows, and the refused message ids are new
    // when they finally arrive intact.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(fake.attempts(), 0);
    assert!(outbox(&app.base, "").await.is_empty());
    let ack: Value = post_wa(&app.base, &good).await.json().await.unwrap();
    assert_eq!(ack["received"], 1, "{ack}");
    let ack: Value = post_tg(&app.base, &update, Some(TG_SECRET))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ack["received"], 1, "{ack}");
    fake.wait_delivered(2, Duration::from_secs(20)).await;
}

#[tokio::test]
async fn replies_are_delivered_once_and_in_order_through_failures_timeouts_and_429() {
    let (app, fake) = app_with_fake().await;
    use Behaviour::*;
    fake.script(
        &[Fail, Fail, Hang, RateLimit(1), Fail, Accept, Fail],
        Accept,
    );
    let chat = 5551001;
    let texts = [
        "hello",
        "what is your return policy?",
        "thanks a lot",
        "bye",
    ];
    for (i, t) in texts.iter().enumerate() {
        let u = tg_text(
            20_000 + i as i64,
            100 + i as i64,
            chat,
            t,
            1_764_115_200 + i as i64,
        );
        assert_eq!(post_tg(&app.base, &u, Some(TG_SECRET)).await.status(), 200);
    }
    // Wait for every bot reply of the transcript to be delivered.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let (conv, rows) = loop {
        let rows = outbox(&app.base, "").await;
        let done = rows.len() >= texts.len() && rows.iter().all(|r| r["state"] == "sent");
        if done {
            let id = rows[0]["conversation_id"].as_str().unwrap().to_string();
            break (transcript(&app.base, &id).await, rows);
        }
        assert!(tokio::time::Instant::now() < deadline, "{rows:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        texts_by(&conv, "shopper"),
        texts.to_vec(),
        "in platform order"
    );
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let delivered = fake.delivered();
    let got: Vec<String> = delivered.iter().map(delivered_text).collect();
    assert_eq!(got, texts_by(&conv, "bot"), "each reply once, in order");
    assert_eq!(rows.len(), got.len());
    for r in &delivered {
        assert_eq!(r.path, format!("/bot{TG_TOKEN}/sendMessage"));
        assert_eq!(r.body["chat_id"], chat);
    }
    assert!(fake.attempts() >= got.len() + 5, "failures were retried");
    // The 429 was honoured: the attempt after it came at least a second later (seen as the
    // head row's attempts count including the wait).
    let head = rows.iter().min_by_key(|r| r["id"].as_i64()).unwrap();
    assert!(head["attempts"].as_i64().unwrap() >= 6, "{head}");
}

#[tokio::test]
async fn a_reply_is_parked_dead_after_n_failures_and_an_admin_retries_it() {
    let fake = Fake::start().await;
    let f = fake.clone();
    let app = spawn_app_with(move |s| {
        configure(s, &f);
        s.channels.outbox_max_attempts = Some(3);
    })
    .await;
    fake.script(&[], Behaviour::Fail);
    let u = tg_text(30_001, 1, 7777, "hello", 1_764_115_200);
    assert_eq!(post_tg(&app.base, &u, Some(TG_SECRET)).await.status(), 200);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let dead = loop {
        let d = outbox(&app.base, "?state=dead").await;
        if !d.is_empty() {
            break d;
        }
        assert!(tokio::time::Instant::now() < deadline, "never parked");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(dead[0]["attempts"], 3);
    assert!(
        dead[0]["last_error"].as_str().unwrap().contains("500"),
        "{}",
        dead[0]
    );
    assert_eq!(fake.attempts(), 3);
    let id = dead[0]["id"].as_i64().unwrap();
    let conv = transcript(&app.base, dead[0]["conversation_id"].as_str().unwrap()).await;
    let reply = conv["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["author"] == "bot")
        .unwrap()
        .clone();
    assert_eq!(reply["delivery"], "dead");
    let m = metrics(&app.base).await;
    for line in [
        "switchboard_outbox_deliveries_total{channel=\"telegram\",outcome=\"retry\"} 2",
        "switchboard_outbox_deliveries_total{channel=\"telegram\",outcome=\"dead\"} 1",
    ] {
        assert!(m.lines().any(|l| l == line), "no `{line}` in\n{m}");
    }

    let client = reqwest::Client::new();
    let retry = |id: i64, token: &'static str| {
        client
            .post(format!("{}/api/v1/outbox/{id}/retry", app.base))
            .bearer_auth(token)
            .send()
    };
    assert_error(
        retry(id, "not-the-admin-token-000").await.unwrap(),
        403,
        "forbidden",
    )
    .await;
    assert_error(retry(id + 1000, ADMIN).await.unwrap(), 404, "not_found").await;
    fake.script(&[], Behaviour::Accept);
    let r = retry(id, ADMIN).await.unwrap();
    assert_eq!(r.status(), 200);
    let row: Value = r.json().await.unwrap();
    assert_eq!(row["state"], "pending");
    assert_eq!(row["attempts"], 0);
    let sent = fake.wait_delivered(1, Duration::from_secs(20)).await;
    assert_eq!(delivered_text(&sent[0]), reply["text"].as_str().unwrap());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_error(retry(id, ADMIN).await.unwrap(), 409, "not_dead").await;
    assert_eq!(outbox(&app.base, "?state=sent").await.len(), 1);
    let bad = client
        .get(format!("{}/api/v1/outbox?state=lost", app.base))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_error(bad, 400, "bad_request").await;
}

#[tokio::test]
async fn unsupported_messages_get_a_polite_answer_and_stay_in_the_transcript() {
    let (app, fake) = app_with_fake().await;
    assert_eq!(
        post_wa(&app.base, &fixture("whatsapp_image.json"))
            .await
            .status(),
        200
    );
    let mut zh = tg_text(40_001, 9, 8888, "你好", 1_764_115_200);
    zh["message"]["from"]["language_code"] = json!("zh-hans");
    assert_eq!(post_tg(&app.base, &zh, Some(TG_SECRET)).await.status(), 200);
    let mut photo = fixture("telegram_photo.json");
    photo["message"]["from"]["id"] = json!(8888);
    photo["message"]["chat"]["id"] = json!(8888);
    photo["update_id"] = json!(40_002);
    photo["message"]["date"] = json!(1_764_115_260);
    assert_eq!(
        post_tg(&app.base, &photo, Some(TG_SECRET)).await.status(),
        200
    );
    let sent = fake.wait_delivered(3, Duration::from_secs(30)).await;

    let wa = sent.iter().find(|r| r.path.ends_with("/messages")).unwrap();
    assert!(
        delivered_text(wa).contains("only read text"),
        "{}",
        delivered_text(wa)
    );
    let rows = outbox(&app.base, "").await;
    let wa_conv = rows.iter().find(|r| r["channel"] == "whatsapp").unwrap();
    let conv = transcript(&app.base, wa_conv["conversation_id"].as_str().unwrap()).await;
    assert_eq!(
        texts_by(&conv, "shopper"),
        vec!["[image · whatsapp media 1003383421387256] The cup arrived like this"]
    );

    // The Telegram shopper wrote Chinese first: the polite answer is in Chinese.
    let tg: Vec<&Request> = sent
        .iter()
        .filter(|r| r.path.ends_with("/sendMessage"))
        .collect();
    assert_eq!(tg.len(), 2);
    assert!(
        delivered_text(tg[1]).contains("只能读取文字"),
        "{}",
        delivered_text(tg[1])
    );
    let tg_conv = rows.iter().find(|r| r["channel"] == "telegram").unwrap();
    let conv = transcript(&app.base, tg_conv["conversation_id"].as_str().unwrap()).await;
    assert_eq!(
        texts_by(&conv, "shopper")[1],
        "[image · telegram media AgACAgIAAxkBAAIBZ2VqLargeAAA] the box was crushed"
    );
}

fn photo_fixture(name: &str) -> Vec<u8> {
    std::fs::read(root().join("tests/fixtures/photos").join(name)).unwrap()
}

/// The Telegram photo fixture as a new shopper's update.
fn tg_photo(update_id: i64, chat: i64) -> Value {
    let mut photo = fixture("telegram_photo.json");
    photo["message"]["from"]["id"] = json!(chat);
    photo["message"]["chat"]["id"] = json!(chat);
    photo["update_id"] = json!(update_id);
    photo
}

/// The shopper messages of the channel's conversation, once the bot answered there.
async fn shopper_messages(base: &str, channel: &str) -> Vec<Value> {
    let rows = outbox(base, "").await;
    let row = rows.iter().find(|r| r["channel"] == channel).unwrap();
    let conv = transcript(base, row["conversation_id"].as_str().unwrap()).await;
    conv["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["author"] == "shopper")
        .cloned()
        .collect()
}

/// Waits until the bot answered on both WhatsApp and Telegram; returns the deliveries.
async fn both_answered(fake: &Fake) -> Vec<Request> {
    for _ in 0..600 {
        let d = fake.delivered();
        if d.iter().any(|r| r.path.ends_with("/messages"))
            && d.iter().any(|r| r.path.ends_with("/sendMessage"))
        {
            return d;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no answer on both channels: {:?}", fake.delivered().len());
}

async fn download_attachment(base: &str, message: &Value) -> Vec<u8> {
    let id = message["attachment"]["id"].as_str().expect("an attachment");
    let resp = reqwest::Client::new()
        .get(format!("{base}/api/v1/attachments/{id}"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.bytes().await.unwrap().to_vec()
}

#[tokio::test]
async fn whatsapp_and_telegram_photos_reach_the_transcript_as_attachments() {
    let (app, fake) = app_with_fake().await;
    let jpeg = photo_fixture("broken-cup.jpg");
    let png = photo_fixture("broken-cup.png");
    fake.add_media("1003383421387256", Media::Bytes(jpeg.clone()));
    fake.add_media("AgACAgIAAxkBAAIBZ2VqLargeAAA", Media::Bytes(png.clone()));
    assert_eq!(
        post_wa(&app.base, &fixture("whatsapp_image.json"))
            .await
            .status(),
        200
    );
    assert_eq!(
        post_tg(&app.base, &tg_photo(41_001, 7777), Some(TG_SECRET))
            .await
            .status(),
        200
    );
    // A redelivered webhook is the same message: one photo, one answer.
    post_wa(&app.base, &fixture("whatsapp_image.json")).await;
    both_answered(&fake).await;

    let wa = shopper_messages(&app.base, "whatsapp").await;
    assert_eq!(wa.len(), 1, "{wa:?}");
    assert_eq!(wa[0]["text"], "The cup arrived like this");
    assert_eq!(wa[0]["attachment"]["content_type"], "image/jpeg");
    assert_eq!(download_attachment(&app.base, &wa[0]).await, jpeg);

    let tg = shopper_messages(&app.base, "telegram").await;
    assert_eq!(tg.len(), 1, "{tg:?}");
    assert_eq!(tg[0]["text"], "the box was crushed");
    assert_eq!(tg[0]["attachment"]["content_type"], "image/png");
    assert_eq!(download_attachment(&app.base, &tg[0]).await, png);

    // The largest Telegram size was fetched; WhatsApp's lookup and download carried the token
    // (the fake refuses them otherwise).
    let requests = fake.media_requests();
    assert!(
        requests
            .iter()
            .any(|r| r.ends_with("getFile?file_id=AgACAgIAAxkBAAIBZ2VqLargeAAA")),
        "{requests:?}"
    );
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with("/wa-media/1003383421387256")),
        "{requests:?}"
    );
}

#[tokio::test]
async fn a_failed_media_fetch_keeps_the_note_and_the_polite_answer() {
    let (app, fake) = app_with_fake().await;
    fake.add_media("1003383421387256", Media::LookupFails(500));
    fake.add_media("AgACAgIAAxkBAAIBZ2VqLargeAAA", Media::DownloadFails(404));
    post_wa(&app.base, &fixture("whatsapp_image.json")).await;
    post_tg(&app.base, &tg_photo(42_001, 6666), Some(TG_SECRET)).await;
    let sent = both_answered(&fake).await;
    for r in &sent {
        assert!(
            delivered_text(r).contains("only read text"),
            "{}",
            delivered_text(r)
        );
    }
    let wa = shopper_messages(&app.base, "whatsapp").await;
    assert_eq!(
        wa[0]["text"],
        "[image · whatsapp media 1003383421387256] The cup arrived like this"
    );
    assert!(wa[0].get("attachment").is_none_or(Value::is_null), "{wa:?}");
    let tg = shopper_messages(&app.base, "telegram").await;
    assert_eq!(
        tg[0]["text"],
        "[image · telegram media AgACAgIAAxkBAAIBZ2VqLargeAAA] the box was crushed"
    );
    assert!(tg[0].get("attachment").is_none_or(Value::is_null), "{tg:?}");
    // Both fetches were tried (Telegram's download after a working getFile).
    let requests = fake.media_requests();
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with("/v21.0/1003383421387256")),
        "{requests:?}"
    );
    assert!(
        requests
            .iter()
            .any(|r| r.contains("/photos/AgACAgIAAxkBAAIBZ2VqLargeAAA")),
        "{requests:?}"
    );
}

#[tokio::test]
async fn a_photo_over_the_attachment_limit_keeps_the_note() {
    let fake = Fake::start().await;
    let f = fake.clone();
    let app = spawn_app_with(move |s| {
        configure(s, &f);
        s.max_attachment_bytes = 1024;
    })
    .await;
    // A real JPEG's start (it sniffs as one), longer than the limit.
    let mut jpeg = photo_fixture("broken-cup.jpg");
    jpeg.resize(jpeg.len().max(1024) + 1, 0);
    fake.add_media("1003383421387256", Media::Bytes(jpeg));
    post_wa(&app.base, &fixture("whatsapp_image.json")).await;
    let sent = fake.wait_delivered(1, Duration::from_secs(30)).await;
    assert!(delivered_text(&sent[0]).contains("only read text"));
    let wa = shopper_messages(&app.base, "whatsapp").await;
    assert_eq!(
        wa[0]["text"],
        "[image · whatsapp media 1003383421387256] The cup arrived like this"
    );
    assert!(wa[0].get("attachment").is_none_or(Value::is_null), "{wa:?}");
}

#[tokio::test]
async fn a_telegram_shopper_gets_a_person_and_the_agents_reply_arrives_on_telegram() {
    let (app, fake) = app_with_fake().await;
    let chat = 6060606;
    let u = tg_text(
        50_001,
        1,
        chat,
        "I want to talk to a real person please",
        1_764_115_200,
    );
    assert_eq!(post_tg(&app.base, &u, Some(TG_SECRET)).await.status(), 200);
    fake.wait_delivered(1, Duration::from_secs(20)).await;

    let client = reqwest::Client::new();
    let agent: Value = client
        .post(format!("{}/api/v1/agents", app.base))
        .bearer_auth(ADMIN)
        .json(&json!({"id": "ann", "name": "Ann", "languages": ["en", "zh"], "teams": ["general", "quality", "logistics", "refunds"], "capacity": 3}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = agent["token"].as_str().unwrap().to_string();
    let claimed = client
        .post(format!("{}/api/v1/agent/claims", app.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(claimed.status(), 200);
    let claimed: Value = claimed.json().await.unwrap();
    assert_eq!(claimed["conversation"]["channel"], "telegram");
    let id = claimed["conversation"]["id"].as_str().unwrap().to_string();
    let r = client
        .post(format!(
            "{}/api/v1/agent/conversations/{id}/messages",
            app.base
        ))
        .bearer_auth(&token)
        .json(&json!({"text": "Hi, this is Ann from support. How can I help?"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let sent = fake.wait_delivered(2, Duration::from_secs(20)).await;
    assert_eq!(sent[1].body["chat_id"], chat);
    assert_eq!(
        delivered_text(&sent[1]),
        "Hi, this is Ann from support. How can I help?"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(fake.delivered().len(), 2);
}

#[tokio::test]
async fn generic_webhook_round_trip_with_signed_replies() {
    let (app, fake) = app_with_fake().await;
    let msg = fixture("generic_message.json").to_string();
    let sig = sign_generic(
        GENERIC_SECRET,
        chrono::Utc::now().timestamp(),
        msg.as_bytes(),
    );
    let r = post_generic(&app.base, &msg, Some(sig.clone())).await;
    assert_eq!(r.status(), 200);
    // The same signed request again (a retry by the shop) is acknowledged, not processed.
    let again: Value = post_generic(&app.base, &msg, Some(sig))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["duplicates"], 1);
    let sent = fake.wait_delivered(1, Duration::from_secs(20)).await;
    let reply = &sent[0];
    assert_eq!(reply.path, "/shop/replies");
    let header = reply.headers["x-switchboard-signature"].to_str().unwrap();
    assert_eq!(
        verify_generic(
            GENERIC_SECRET,
            Some(header),
            reply.raw.as_bytes(),
            chrono::Utc::now().timestamp()
        ),
        Ok(())
    );
    assert!(reply.headers.contains_key("x-switchboard-delivery"));
    assert_eq!(reply.body["customer_id"], "c-2001");
    // The shop's verified customer: the bot asks for the order number.
    assert!(
        reply.body["text"]
            .as_str()
            .unwrap()
            .contains("order number"),
        "{}",
        reply.body
    );
    let conv = transcript(&app.base, reply.body["conversation_id"].as_str().unwrap()).await;
    assert_eq!(conv["customer_id"], "c-2001");
    assert_eq!(conv["channel"], "generic");
}

#[tokio::test]
async fn messages_delivered_out_of_order_are_processed_in_platform_order() {
    let fake = Fake::start().await;
    let f = fake.clone();
    let app = spawn_app_with(move |s| {
        configure(s, &f);
        s.channels.inbox_settle_ms = Some(1500);
    })
    .await;
    let chat = 7070707;
    let second = tg_text(
        60_002,
        2,
        chat,
        "what is your return policy?",
        1_764_115_260,
    );
    let first = tg_text(60_001, 1, chat, "hello there", 1_764_115_200);
    assert_eq!(
        post_tg(&app.base, &second, Some(TG_SECRET)).await.status(),
        200
    );
    assert_eq!(
        post_tg(&app.base, &first, Some(TG_SECRET)).await.status(),
        200
    );
    let sent = fake.wait_delivered(2, Duration::from_secs(20)).await;
    let rows = outbox(&app.base, "").await;
    let conv = transcript(&app.base, rows[0]["conversation_id"].as_str().unwrap()).await;
    assert_eq!(
        texts_by(&conv, "shopper"),
        vec!["hello there", "what is your return policy?"]
    );
    let at: Vec<&str> = conv["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["author"] == "shopper")
        .map(|m| m["at"].as_str().unwrap())
        .collect();
    assert_eq!(at, vec!["2025-11-26T00:00:00Z", "2025-11-26T00:01:00Z"]);
    let got: Vec<String> = sent.iter().map(delivered_text).collect();
    assert_eq!(got, texts_by(&conv, "bot"));
}

/// The real binary is killed with SIGKILL twice: once after acknowledging messages it had not
/// yet processed, once while the platform is down and replies are being retried. After the
/// restarts every message is answered once and every reply arrives exactly once, in order.
#[tokio::test]
async fn kill_9_loses_no_acknowledged_message_and_no_reply() {
    crate::helpers::prepare();
    let fake = Fake::start().await;
    fake.script(&[], Behaviour::Fail);
    let data = tempfile::tempdir().unwrap();
    let args = |settle: &'static str| {
        vec![
            "--telegram-bot-token".to_string(),
            TG_TOKEN.into(),
            "--telegram-secret-token".into(),
            TG_SECRET.into(),
            "--telegram-api-base".into(),
            fake.base.clone(),
            "--outbox-base-delay-ms".into(),
            "100".into(),
            "--send-timeout-ms".into(),
            "1000".into(),
            "--inbox-settle-ms".into(),
            settle.into(),
        ]
    };
    let start = |settle: &'static str| {
        let a = args(settle);
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        crate::durability::start_with(data.path(), &refs)
    };
    // 1. Acknowledged, then killed before the (long) settle window let it process anything.
    let (mut child, base) = start("60000");
    let chat = 9090909;
    let texts = ["hello", "how long do refunds take?", "thanks"];
    for (i, t) in texts.iter().enumerate() {
        let u = tg_text(
            70_001 + i as i64,
            10 + i as i64,
            chat,
            t,
            1_764_115_200 + i as i64,
        );
        let r = post_tg(&base, &u, Some(TG_SECRET)).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.json::<Value>().await.unwrap()["received"], 1);
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(fake.attempts(), 0);

    // 2. Restarted: the stored messages are answered; the replies fail; killed again.
    let (mut child, base) = start("100");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while fake.attempts() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no delivery attempts"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rows = outbox(&base, "").await;
    assert!(!rows.is_empty());
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(fake.delivered().is_empty());

    // 3. The platform is back: everything pending goes out, once, in order.
    fake.script(&[], Behaviour::Accept);
    let (mut child, base) = start("100");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    let conv = loop {
        let rows = outbox(&base, "").await;
        if rows.len() >= texts.len() && rows.iter().all(|r| r["state"] == "sent") {
            break transcript(&base, rows[0]["conversation_id"].as_str().unwrap()).await;
        }
        assert!(tokio::time::Instant::now() < deadline, "{rows:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        texts_by(&conv, "shopper"),
        texts.to_vec(),
        "each message processed once"
    );
    let got: Vec<String> = fake.delivered().iter().map(delivered_text).collect();
    assert_eq!(got, texts_by(&conv, "bot"), "each reply once, in order");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test]
async fn a_linked_whatsapp_number_is_the_shops_customer() {
    let (app, fake) = app_with_fake().await;
    let client = reqwest::Client::new();
    let put = |path: &str, body: Value| {
        client
            .put(format!("{}{path}", app.base))
            .bearer_auth(ADMIN)
            .json(&body)
            .send()
    };
    let r = put(
        "/api/v1/channels/whatsapp/contacts/16505559999",
        json!({"customer_id": "c-2001"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let linked: Value = r.json().await.unwrap();
    let id = linked["conversation_id"].as_str().unwrap().to_string();
    let m = wa_text("wamid.LINK-1", "16505559999", "hi there", 1_764_115_200);
    assert_eq!(post_wa(&app.base, &m).await.status(), 200);
    fake.wait_delivered(1, Duration::from_secs(20)).await;
    let conv = transcript(&app.base, &id).await;
    assert_eq!(conv["customer_id"], "c-2001");
    assert_eq!(texts_by(&conv, "shopper"), vec!["hi there"]);

    // A Telegram user linked after writing: the same conversation, now the shop's customer.
    let u = tg_text(80_001, 1, 313131, "hello", 1_764_115_200);
    assert_eq!(post_tg(&app.base, &u, Some(TG_SECRET)).await.status(), 200);
    fake.wait_delivered(2, Duration::from_secs(20)).await;
    let r = put(
        "/api/v1/channels/telegram/contacts/313131",
        json!({"customer_id": "c-2003"}),
    )
    .await
    .unwrap();
    let linked: Value = r.json().await.unwrap();
    let conv = transcript(&app.base, linked["conversation_id"].as_str().unwrap()).await;
    assert_eq!(conv["customer_id"], "c-2003");
    assert_eq!(texts_by(&conv, "shopper"), vec!["hello"]);

    for (path, body, status, code) in [
        (
            "/api/v1/channels/sms/contacts/1",
            json!({"customer_id": "c-1"}),
            404,
            "not_found",
        ),
        (
            "/api/v1/channels/whatsapp/contacts/abc",
            json!({"customer_id": "c-1"}),
            422,
            "invalid_request",
        ),
        (
            "/api/v1/channels/whatsapp/contacts/1",
            json!({"customer_id": "a b"}),
            422,
            "invalid_request",
        ),
        (
            "/api/v1/channels/whatsapp/contacts/1",
            json!({"customer": "c-1"}),
            422,
            "invalid_request",
        ),
    ] {
        assert_error(put(path, body).await.unwrap(), status, code).await;
    }
}

/// Two instances on one PostgreSQL database: racing redeliveries store one message, and both
/// instances' senders together deliver every reply exactly once, in each conversation's order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_on_postgresql_store_once_and_deliver_once() {
    let db = crate::helpers::PgDatabase::create().await;
    let fake = Fake::start().await;
    use Behaviour::*;
    fake.script(&[Fail, Accept, Fail, RateLimit(1), Accept, Fail], Accept);
    let mut apps = Vec::new();
    for _ in 0..2 {
        let (f, url) = (fake.clone(), db.url.clone());
        apps.push(
            spawn_app_with(move |s| {
                configure(s, &f);
                // The nine messages are posted at once; give late arrivals time to line up.
                s.channels.inbox_settle_ms = Some(1000);
                s.database_url = Some(Secret::new(url));
            })
            .await,
        );
    }
    let bases: Vec<String> = apps.iter().map(|a| a.base.clone()).collect();
    let dup = wa_text("wamid.TWO-INSTANCES", "16505550042", "hello", 1_764_115_200);
    let mut posts = Vec::new();
    for i in 0..6 {
        let (base, dup) = (bases[i % 2].clone(), dup.clone());
        posts.push(tokio::spawn(async move {
            let r = post_wa(&base, &dup).await;
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()["received"]
                .as_u64()
                .unwrap()
        }));
    }
    // Three Telegram shoppers write three messages each, every message to either instance.
    let texts = ["hi", "what is your return policy?", "thanks"];
    for chat in 0..3i64 {
        for (i, t) in texts.iter().enumerate() {
            let u = tg_text(
                90_000 + chat * 10 + i as i64,
                i as i64 + 1,
                424_200 + chat,
                t,
                1_764_115_200 + i as i64,
            );
            let base = bases[(chat as usize + i) % 2].clone();
            posts.push(tokio::spawn(async move {
                let r = post_tg(&base, &u, Some(TG_SECRET)).await;
                assert_eq!(r.status(), 200);
                r.json::<Value>().await.unwrap()["received"]
                    .as_u64()
                    .unwrap()
            }));
        }
    }
    let mut received = 0;
    for p in posts {
        received += p.await.unwrap();
    }
    assert_eq!(
        received,
        1 + 9,
        "the WhatsApp message once, each Telegram message once"
    );

    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let rows = loop {
        let rows = outbox(&bases[0], "?limit=1000").await;
        if rows.len() >= 10 && rows.iter().all(|r| r["state"] == "sent") {
            break rows;
        }
        assert!(tokio::time::Instant::now() < deadline, "{rows:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let delivered = fake.delivered();
    assert_eq!(delivered.len(), rows.len(), "each reply delivered once");
    let mut conversations: Vec<String> = rows
        .iter()
        .map(|r| r["conversation_id"].as_str().unwrap().to_string())
        .collect();
    conversations.sort();
    conversations.dedup();
    assert_eq!(conversations.len(), 4);
    for id in conversations {
        let conv = transcript(&bases[1], &id).await;
        let to = if conv["channel"] == "telegram" {
            json!(
                conv["customer_id"].as_str().unwrap()[3..]
                    .parse::<i64>()
                    .unwrap()
            )
        } else {
            json!("16505550042")
        };
        let got: Vec<String> = delivered
            .iter()
            .filter(|r| r.body["chat_id"] == to || r.body["to"] == to)
            .map(delivered_text)
            .collect();
        assert_eq!(got, texts_by(&conv, "bot"), "{id}: once each, in order");
        if conv["channel"] == "telegram" {
            assert_eq!(texts_by(&conv, "shopper"), texts.to_vec());
        } else {
            assert_eq!(texts_by(&conv, "shopper"), vec!["hello"]);
        }
    }
}
