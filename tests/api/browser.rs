//! The chat widget in a real browser (headless Chromium via chromedriver) against the real
//! server and model: a shopper tracks an order and asks for a person, keyboard-only use, the
//! widget at 360 px, and a server restart while a message is on its way. The run writes the
//! README's screenshots to `docs/screenshots/`.

#[path = "browser_driver.rs"]
pub(crate) mod driver;

use serde_json::{Value, json};

use crate::helpers::{TestApp, root, spawn_app};
use driver::{Browser, ENTER, ESCAPE, SHIFT, TAB};

/// One browser at a time: each is a few hundred MB and the machines have few cores.
pub(crate) static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The widget's messages without their author labels.
const MESSAGES: &str = "return Array.from(document.querySelector('switchboard-chat').shadowRoot.querySelectorAll('.msg')).map(function (m) { var c = m.cloneNode(true); var w = c.querySelector('.who'); if (w) w.remove(); return {cls: m.className, text: c.textContent}; });";

/// The widget's messages as `(class, text)`.
async fn messages(b: &Browser) -> Vec<(String, String)> {
    b.js(MESSAGES, json!([]))
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["cls"].as_str().unwrap().to_string(),
                m["text"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// How many bot messages the widget shows.
async fn bots(b: &Browser) -> usize {
    messages(b)
        .await
        .iter()
        .filter(|(c, _)| c.contains("bot"))
        .count()
}

/// Sends `text` and waits for the bot's answer (more bot messages than before, and no typing
/// indicator); returns the last answer's text.
pub(crate) async fn ask(b: &Browser, text: &str) -> String {
    let before = bots(b).await;
    say(b, text).await;
    b.wait_for(
        &format!("the answer to {text:?}"),
        "var r = document.querySelector('switchboard-chat').shadowRoot; var m = r.querySelectorAll('.msg.bot'); if (m.length <= arguments[0] || r.querySelector('.typing')) return null; var c = m[m.length - 1].cloneNode(true); c.querySelector('.who').remove(); return c.textContent;",
        json!([before]),
    )
    .await
    .as_str()
    .unwrap()
    .to_string()
}

/// The conversation the widget keeps in local storage: `(id, token)`.
pub(crate) async fn stored_conversation(b: &Browser) -> (String, String) {
    let v = b
        .wait_for(
            "a stored conversation",
            "for (var i = 0; i < localStorage.length; i++) { var k = localStorage.key(i); if (k.indexOf('switchboard:') === 0) { var s = JSON.parse(localStorage.getItem(k)); if (s.id) return s; } } return null;",
            json!([]),
        )
        .await;
    (
        v["id"].as_str().unwrap().to_string(),
        v["token"].as_str().unwrap().to_string(),
    )
}

async fn conversation(app: &TestApp, b: &Browser) -> Value {
    let (id, token) = stored_conversation(b).await;
    let resp = app.get_conversation(&id, Some(&token)).await;
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

/// Opens the demo page as `customer` in `lang` and opens the chat panel.
pub(crate) async fn open_chat(app: &TestApp, b: &Browser, customer: &str, lang: &str) {
    b.goto(&format!("{}/?customer={customer}&lang={lang}", app.base))
        .await;
    b.wait_for(
        "the widget",
        "var r = document.querySelector('switchboard-chat'); return !!(r && r.shadowRoot.querySelector('.launcher'));",
        json!([]),
    )
    .await;
    let launcher = b.widget(".launcher").await;
    b.click(&launcher).await;
    b.wait_for(
        "the input to have focus",
        "var r = document.querySelector('switchboard-chat').shadowRoot; return r.activeElement === r.querySelector('textarea');",
        json!([]),
    )
    .await;
}

pub(crate) async fn say(b: &Browser, text: &str) {
    let input = b.widget("textarea").await;
    b.type_into(&input, text).await;
    b.type_into(&input, ENTER).await;
}

pub(crate) fn screenshot_path(name: &str) -> std::path::PathBuf {
    root().join("docs").join("screenshots").join(name)
}

/// Waits for the handoff banner and returns its text.
pub(crate) async fn handoff_banner(b: &Browser) -> String {
    b.wait_for(
        "the waiting-for-a-person banner",
        "var s = document.querySelector('switchboard-chat').shadowRoot.querySelector('.status'); return (!s.hidden && s.dataset.state === 'waiting_for_human') ? s.innerText : null;",
        json!([]),
    )
    .await
    .as_str()
    .unwrap()
    .to_string()
}

#[tokio::test]
async fn a_signed_in_shopper_tracks_an_order_then_asks_for_a_person() {
    let _one = ONE_BROWSER.lock().await;
    let app = spawn_app().await;
    let b = Browser::start(1100, 780).await;
    open_chat(&app, &b, "c-2001", "en").await;

    let question = ask(&b, "Where is my order?").await;
    assert!(question.to_lowercase().contains("order"), "{question}");
    let tracking = ask(&b, "it's 20261119-5508").await;
    assert!(
        tracking.contains("20261119-5508") && tracking.contains("DHL"),
        "{tracking}"
    );
    b.screenshot(&screenshot_path("widget-en.png")).await;

    say(&b, "我要找人工客服").await;
    let banner = handoff_banner(&b).await;
    let conv = conversation(&app, &b).await;
    assert_eq!(conv["state"], "waiting_for_human", "{conv}");
    if let Some(pos) = conv["queue"]["position"].as_u64() {
        assert!(
            banner.contains(&format!("number {pos}")) || pos <= 1,
            "{banner}"
        );
    } else {
        assert!(banner.contains("Waiting for a person"), "{banner}");
    }
    // Every shopper message is stored once and shown once.
    let shopper: Vec<&str> = conv["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["author"] == "shopper")
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        shopper,
        ["Where is my order?", "it's 20261119-5508", "我要找人工客服"]
    );
    let shown = messages(&b).await;
    assert_eq!(
        shown.iter().filter(|(c, _)| c.contains("shopper")).count(),
        3,
        "{shown:?}"
    );
    // The transcript survives a reload, from local storage and the conversation endpoint.
    b.goto(&format!("{}/?customer=c-2001&lang=en", app.base))
        .await;
    b.wait_for(
        "the transcript after a reload",
        "var r = document.querySelector('switchboard-chat'); return r && r.shadowRoot.querySelectorAll('.msg.shopper').length === 3;",
        json!([]),
    )
    .await;
    handoff_banner(&b).await;
    app.stop().await;
}

#[tokio::test]
async fn a_chinese_shopper_sees_a_chinese_widget_and_the_handoff_state() {
    let _one = ONE_BROWSER.lock().await;
    let app = spawn_app().await;
    let b = Browser::start(1100, 780).await;
    open_chat(&app, &b, "c-1001", "zh").await;
    let placeholder = b
        .js(
            "return document.querySelector('switchboard-chat').shadowRoot.querySelector('textarea').placeholder;",
            json!([]),
        )
        .await;
    assert_eq!(placeholder, "请输入消息…");

    let tracking = ask(&b, "我的快递到哪了？订单号是 20261120-7731").await;
    assert!(
        tracking.contains("运输中") && tracking.contains("SF"),
        "{tracking}"
    );
    say(&b, "我要找人工客服").await;
    let banner = handoff_banner(&b).await;
    assert!(banner.contains("人工客服"), "{banner}");
    b.screenshot(&screenshot_path("widget-zh.png")).await;
    app.stop().await;
}

#[tokio::test]
async fn the_widget_works_with_the_keyboard_alone() {
    let _one = ONE_BROWSER.lock().await;
    let app = spawn_app().await;
    let b = Browser::start(1100, 780).await;
    b.goto(&format!("{}/?customer=c-2003&lang=en", app.base))
        .await;
    b.wait_for(
        "the widget",
        "var r = document.querySelector('switchboard-chat'); return !!(r && r.shadowRoot.querySelector('.launcher'));",
        json!([]),
    )
    .await;
    let on_launcher = "var h = document.querySelector('switchboard-chat'); return document.activeElement === h && h.shadowRoot.activeElement === h.shadowRoot.querySelector('.launcher');";
    let mut reached = false;
    for _ in 0..30 {
        b.keys(None, TAB).await;
        if b.js(on_launcher, json!([])).await == Value::Bool(true) {
            reached = true;
            break;
        }
    }
    assert!(reached, "Tab never reaches the chat button");
    b.keys(None, ENTER).await;
    b.wait_for(
        "the input to have focus",
        "var r = document.querySelector('switchboard-chat').shadowRoot; return r.activeElement === r.querySelector('textarea');",
        json!([]),
    )
    .await;
    b.keys(None, "What is your return policy?").await;
    b.keys(None, ENTER).await;
    b.wait_for(
        "the answer",
        "var r = document.querySelector('switchboard-chat').shadowRoot; return r.querySelectorAll('.msg.bot').length >= 2 && !r.querySelector('.typing');",
        json!([]),
    )
    .await;

    // Shift+Tab from the input reaches the quick replies; Enter sends one.
    b.keys(Some(SHIFT), TAB).await;
    let label = b
        .js(
            "var r = document.querySelector('switchboard-chat').shadowRoot; var a = r.activeElement; return (a && a.parentNode === r.querySelector('.quick')) ? a.textContent : null;",
            json!([]),
        )
        .await;
    let label = label
        .as_str()
        .unwrap_or_else(|| panic!("Shift+Tab from the input does not reach a quick reply"))
        .to_string();
    b.keys(None, ENTER).await;
    b.wait_for(
        "the quick reply's message",
        "return document.querySelector('switchboard-chat').shadowRoot.querySelectorAll('.msg.shopper').length === 2;",
        json!([]),
    )
    .await;
    b.wait_for(
        "the quick reply's answer",
        "var r = document.querySelector('switchboard-chat').shadowRoot; return r.querySelectorAll('.msg.bot').length >= 3 && !r.querySelector('.typing');",
        json!([]),
    )
    .await;
    let conv = conversation(&app, &b).await;
    let shopper = conv["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["author"] == "shopper")
        .count();
    assert_eq!(shopper, 2, "{label}: {conv}");

    // Escape closes the panel and gives focus back to the chat button.
    let input = b.widget("textarea").await;
    b.click(&input).await;
    b.keys(None, ESCAPE).await;
    assert_eq!(b.js(on_launcher, json!([])).await, Value::Bool(true));
    app.stop().await;
}

#[tokio::test]
async fn the_widget_fits_a_360_pixel_phone() {
    let _one = ONE_BROWSER.lock().await;
    let app = spawn_app().await;
    let b = Browser::start(360, 740).await;
    open_chat(&app, &b, "c-1001", "zh").await;
    ask(&b, "你们的退货政策是什么？").await;
    let fit = b
        .js(
            "var r = document.querySelector('switchboard-chat').shadowRoot; var p = r.querySelector('.panel').getBoundingClientRect(); var i = r.querySelector('textarea').getBoundingClientRect(); var s = r.querySelector('.send').getBoundingClientRect(); return {scroll: document.documentElement.scrollWidth, inner: window.innerWidth, height: window.innerHeight, panel: [p.left, p.right], input: [i.left, i.right, i.top, i.bottom], send: [s.left, s.right]};",
            json!([]),
        )
        .await;
    let n = |v: &Value| v.as_f64().unwrap();
    assert_eq!(n(&fit["inner"]), 360.0, "{fit}");
    assert!(n(&fit["scroll"]) <= 360.0, "horizontal scroll: {fit}");
    assert!(
        n(&fit["panel"][0]) >= 0.0 && n(&fit["panel"][1]) <= 360.0,
        "{fit}"
    );
    assert!(
        n(&fit["input"][0]) >= 0.0
            && n(&fit["input"][1]) - n(&fit["input"][0]) >= 150.0
            && n(&fit["input"][3]) <= n(&fit["height"]),
        "the input is not usable: {fit}"
    );
    assert!(n(&fit["send"][1]) <= 360.0, "{fit}");
    b.screenshot(&screenshot_path("widget-360-zh.png")).await;
    app.stop().await;
}

#[tokio::test]
async fn a_message_sent_while_the_server_restarts_is_stored_once_and_answered_once() {
    let _one = ONE_BROWSER.lock().await;
    let app = spawn_app().await;
    let b = Browser::start(1100, 780).await;
    open_chat(&app, &b, "c-2001", "en").await;
    ask(&b, "Where is my order?").await;
    let (id, token) = stored_conversation(&b).await;

    let stopped = app.shut_down().await;
    let before = bots(&b).await;
    say(&b, "What is your return policy?").await;
    // The widget has tried, failed and is retrying the same message.
    b.wait_for(
        "the widget to notice the server is gone",
        "return !!document.querySelector('switchboard-chat').shadowRoot.querySelector('.offline');",
        json!([]),
    )
    .await;
    let app = stopped.start_again().await;
    b.wait_for(
        "the answer after the restart",
        "var r = document.querySelector('switchboard-chat').shadowRoot; return r.querySelectorAll('.msg.bot').length > arguments[0] && !r.querySelector('.typing');",
        json!([before]),
    )
    .await;
    b.wait_for(
        "the connection notice to clear",
        "return !document.querySelector('switchboard-chat').shadowRoot.querySelector('.offline');",
        json!([]),
    )
    .await;

    let conv: Value = app
        .get_conversation(&id, Some(&token))
        .await
        .json()
        .await
        .unwrap();
    let count = |author: &str, pred: &dyn Fn(&str) -> bool| {
        conv["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["author"] == author && pred(m["text"].as_str().unwrap_or("")))
            .count()
    };
    assert_eq!(
        count("shopper", &|t| t == "What is your return policy?"),
        1,
        "{conv}"
    );
    let shown = messages(&b).await;
    // Each of the bot's stored answers is shown exactly once (besides the local welcome).
    for m in conv["messages"].as_array().unwrap() {
        if m["author"] == "bot" {
            let text = m["text"].as_str().unwrap();
            let times = shown
                .iter()
                .filter(|(c, t)| c.contains("bot") && t == text)
                .count();
            assert_eq!(times, 1, "{text}: {shown:?}");
        }
    }
    assert_eq!(
        shown
            .iter()
            .filter(|(c, t)| c.contains("shopper") && t.contains("What is your return policy?"))
            .count(),
        1,
        "{shown:?}"
    );
    assert_eq!(
        shown.iter().filter(|(c, _)| c.contains("bot")).count(),
        1 + count("bot", &|_| true),
        "{shown:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_widget_script_is_served_with_its_type_and_a_validator() {
    let app = spawn_app().await;
    let url = format!("{}/widget.js", app.base);
    let resp = app.client.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert!(
        resp.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age")
    );
    let etag = resp.headers()["etag"].clone();
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("customElements.define(\"switchboard-chat\"")
    );
    let again = app
        .client
        .get(&url)
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    app.stop().await;
}

#[tokio::test]
async fn the_demo_page_signs_the_chosen_demo_customer_or_none() {
    let app = spawn_app().await;
    let page = |q: &'static str| {
        let url = format!("{}/{q}", app.base);
        let client = app.client.clone();
        async move {
            let resp = client.get(url).send().await.unwrap();
            assert_eq!(resp.status(), 200);
            assert!(
                resp.headers()["content-type"]
                    .to_str()
                    .unwrap()
                    .starts_with("text/html")
            );
            resp.text().await.unwrap()
        }
    };
    let en = page("?customer=c-2001").await;
    assert!(en.contains("<html lang=\"en\">"));
    assert!(en.contains(&format!(
        "data-customer-id=\"c-2001\" data-customer-hash=\"{}\"",
        crate::helpers::hash("c-2001")
    )));
    let zh = page("?customer=c-1001").await;
    assert!(zh.contains("<html lang=\"zh\">") && zh.contains("灯叶小铺"));
    assert!(zh.contains(&crate::helpers::hash("c-1001")));
    let anonymous = page("?customer=anonymous&lang=zh").await;
    assert!(!anonymous.contains("data-customer-id"));
    // An id outside the demo list is not signed by the page.
    let other = page("?customer=c-1002").await;
    assert!(!other.contains("data-customer-id"));
    app.stop().await;
}

#[tokio::test]
async fn only_configured_shop_origins_may_call_the_api_cross_origin() {
    let app = crate::helpers::spawn_app_with(|s| {
        s.cors_origins = vec!["https://shop.example".into()];
    })
    .await;
    let preflight = |origin: &'static str| {
        app.client
            .request(
                reqwest::Method::OPTIONS,
                format!("{}/api/v1/messages", app.base),
            )
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type,authorization",
            )
            .send()
    };
    let allowed = preflight("https://shop.example").await.unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://shop.example"
    );
    let allowed_headers = allowed.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(allowed_headers.contains("authorization") && allowed_headers.contains("content-type"));
    let refused = preflight("https://evil.example").await.unwrap();
    assert!(
        refused
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    app.stop().await;
}

/// The widget's photo messages: `(has a loaded thumbnail, caption)`, and its notices.
const PHOTOS: &str = "var r = document.querySelector('switchboard-chat').shadowRoot; return {photos: Array.from(r.querySelectorAll('.msg.shopper img.photo')).map(function (i) { return i.complete && i.naturalWidth > 0; }), notices: Array.from(r.querySelectorAll('.msg.system')).map(function (m) { return m.textContent; })};";

#[tokio::test]
async fn a_shopper_attaches_a_photo_with_the_keyboard_and_a_non_image_is_refused() {
    let _one = ONE_BROWSER.lock().await;
    let app = spawn_app().await;
    let b = Browser::start(1100, 780).await;
    open_chat(&app, &b, "c-2001", "en").await;
    ask(&b, "Hello").await;

    // Tab from the message box reaches the attach button, which says what it does.
    b.keys(None, TAB).await;
    let focused = b
        .js(
            "var r = document.querySelector('switchboard-chat').shadowRoot; var a = r.activeElement; return a && a.classList.contains('attach') && !a.hidden ? a.getAttribute('aria-label') : null;",
            json!([]),
        )
        .await;
    assert_eq!(focused, "Attach a photo");
    // The button opens the file chooser; WebDriver fills the chooser's input as a person's
    // choice would.
    let photo = root().join("tests/fixtures/photos/broken-cup.jpg");
    let chooser = b.widget("input[type=file]").await;
    b.type_into(&chooser, photo.to_str().unwrap()).await;
    b.wait_for(
        "the photo in the transcript and the bot's acknowledgement",
        "var r = document.querySelector('switchboard-chat').shadowRoot; var i = r.querySelector('.msg.shopper img.photo'); var m = r.querySelectorAll('.msg.bot'); return i && i.complete && i.naturalWidth > 0 && !r.querySelector('.msg.shopper .note') && m.length >= 3 && m[m.length - 1].textContent.indexOf('photo') >= 0;",
        json!([]),
    )
    .await;
    b.screenshot(&screenshot_path("widget-photo-en.png")).await;

    // Stored once, as the same bytes.
    let conv = conversation(&app, &b).await;
    let stored: Vec<&Value> = conv["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m.get("attachment"))
        .collect();
    assert_eq!(stored.len(), 1, "{conv}");
    let bytes = app
        .client
        .get(format!(
            "{}{}",
            app.base,
            stored[0]["url"].as_str().unwrap()
        ))
        .bearer_auth(crate::helpers::ADMIN)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(bytes, std::fs::read(&photo).unwrap());

    // A text file named like a photo passes the browser's look at its name, and the service
    // refuses it; a plain text file is refused before it is sent. Both say why.
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("receipt.png");
    std::fs::write(&fake, "not a picture, just text").unwrap();
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "some notes").unwrap();
    for (i, file) in [fake, notes].iter().enumerate() {
        let chooser = b.widget("input[type=file]").await;
        b.type_into(&chooser, file.to_str().unwrap()).await;
        b.wait_for(
            "the refusal",
            "var r = document.querySelector('switchboard-chat').shadowRoot; return Array.from(r.querySelectorAll('.msg.system')).filter(function (m) { return m.textContent.indexOf('Only photos can be attached') >= 0; }).length === arguments[0];",
            json!([i + 1]),
        )
        .await;
    }
    let shown = b.js(PHOTOS, json!([])).await;
    assert_eq!(shown["photos"], json!([true]), "{shown}");
    let conv = conversation(&app, &b).await;
    let photos = conv["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m.get("attachment").is_some())
        .count();
    assert_eq!(photos, 1, "{conv}");

    // After a reload the stored photo is fetched with the conversation's token and shown.
    b.goto(&format!("{}/?customer=c-2001&lang=en", app.base))
        .await;
    b.wait_for(
        "the photo after a reload",
        "var r = document.querySelector('switchboard-chat'); var i = r && r.shadowRoot.querySelector('.msg.shopper img.photo'); return i && i.complete && i.naturalWidth > 0;",
        json!([]),
    )
    .await;
    app.stop().await;
}
