//! The agent console and the admin view (issue #9) in a real browser against the real server
//! and model: a shopper hands off in the widget and an agent claims, answers with a suggested
//! reply and resolves in the console while the shopper's widget follows live and rates; a VIP
//! is listed before a regular shopper; the admin view shows agents' load and queue health.
//! Also the read-only endpoints the pages use. The run writes the README's console screenshots.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::browser::driver::{ALT, Browser, CONTROL, ENTER, PATIENCE};
use crate::browser::{
    ONE_BROWSER, ask, handoff_banner, open_chat, say, screenshot_path, stored_conversation,
};
use crate::helpers::{ADMIN, TestApp, assert_error, conv, create_agent_at, spawn_app};

/// Creates an agent through the admin API and returns their token.
async fn create_agent(app: &TestApp, id: &str, name: &str, capacity: u32) -> String {
    create_agent_at(&app.client, &app.base, id, name, capacity).await
}

async fn get(app: &TestApp, token: &str, path: &str) -> reqwest::Response {
    app.client
        .get(format!("{}{path}", app.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// A shopper hands off through the API; returns `(conversation id, token)`.
async fn hand_off(app: &TestApp, customer: &str, text: &str) -> (String, String) {
    let a = app.say(customer, text, None).await;
    assert_eq!(a["state"], "waiting_for_human", "{a}");
    conv(&a)
}

/// Waits until `script` returns something truthy; on timeout fails with `what` and the page's
/// visible text.
async fn until(b: &Browser, what: &str, script: &str, args: Value) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let v = b.js(script, args.clone()).await;
        let truthy = match &v {
            Value::Null => false,
            Value::Bool(x) => *x,
            Value::String(s) => !s.is_empty(),
            Value::Number(n) => n.as_f64() != Some(0.0),
            Value::Array(a) => !a.is_empty(),
            Value::Object(_) => true,
        };
        if truthy {
            return v;
        }
        if Instant::now() > deadline {
            let text = b
                .js("return document.body.innerText;", json!([]))
                .await
                .as_str()
                .unwrap_or_default()
                .to_string();
            panic!("timed out waiting for {what}; the page shows:\n{text}");
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

/// Lists visible text whose contrast with its background is under WCAG AA (4.5:1, or 3:1 for
/// large text), as `tag.class ratio text`.
const LOW_CONTRAST: &str = r#"
function parse(c) { var m = /rgba?\(([^)]+)\)/.exec(c); if (!m) return null; return m[1].split(",").map(parseFloat); }
function rel(p) { var a = [p[0], p[1], p[2]].map(function (v) { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); }); return 0.2126 * a[0] + 0.7152 * a[1] + 0.0722 * a[2]; }
function bg(e) { while (e) { var p = parse(getComputedStyle(e).backgroundColor); if (p && (p.length < 4 || p[3] > 0.5)) return p; e = e.parentElement; } return [255, 255, 255]; }
var bad = [];
document.querySelectorAll("body *").forEach(function (e) {
  if (e.closest(".sr-only, [hidden], option, noscript")) return;
  var r0 = e.getBoundingClientRect(); if (!r0.width || !r0.height) return;
  var own = Array.from(e.childNodes).some(function (n) { return n.nodeType === 3 && n.textContent.trim(); });
  if (!own || e.disabled) return;
  var s = getComputedStyle(e); if (s.visibility === "hidden") return;
  var L1 = rel(parse(s.color)), L2 = rel(bg(e));
  var ratio = (Math.max(L1, L2) + 0.05) / (Math.min(L1, L2) + 0.05);
  var size = parseFloat(s.fontSize), bold = parseInt(s.fontWeight, 10) >= 700;
  var need = (size >= 24 || (size >= 18.66 && bold)) ? 3 : 4.5;
  if (ratio < need) bad.push(e.tagName + "." + e.className + " " + ratio.toFixed(2) + " " + e.textContent.trim().slice(0, 30));
});
return bad;
"#;

/// Fails when any visible text of the page is under WCAG AA contrast.
async fn assert_contrast(b: &Browser, what: &str) {
    let bad = b.js(LOW_CONTRAST, json!([])).await;
    assert_eq!(bad, json!([]), "low contrast in {what}");
}

/// Opens `path` (the console or the admin view) and signs in with `token`.
async fn sign_in(app: &TestApp, b: &Browser, path: &str, token: &str) {
    b.goto(&format!("{}{path}", app.base)).await;
    let input = b.element("#token").await;
    b.type_into(&input, token).await;
    b.type_into(&input, ENTER).await;
}

/// The conversation ids of the console's queue, in the order shown.
async fn queue_ids(b: &Browser) -> Vec<String> {
    b.js(
        "return Array.from(document.querySelectorAll('.qitem')).map(function (q) { return q.dataset.id; });",
        json!([]),
    )
    .await
    .as_array()
    .unwrap()
    .iter()
    .map(|v| v.as_str().unwrap().to_string())
    .collect()
}

async fn wait_queue_len(b: &Browser, n: usize) {
    until(
        b,
        &format!("{n} conversations in the queue"),
        "return document.querySelectorAll('.qitem').length === arguments[0];",
        json!([n]),
    )
    .await;
}

#[tokio::test]
async fn an_agent_answers_a_handoff_with_a_suggestion_and_the_shopper_rates_it() {
    let _one = ONE_BROWSER.lock().await;
    let app = spawn_app().await;
    let token = create_agent(&app, "ann", "Ann Lee", 3).await;
    let b = Browser::start(1280, 860).await;

    // The shopper asks the bot something, then asks for a person in the widget.
    let shop = b.window().await;
    open_chat(&app, &b, "c-2001", "en").await;
    ask(&b, "Can I return headphones I bought last week?").await;
    say(&b, "I want to talk to a person").await;
    handoff_banner(&b).await;
    let (id, shopper_token) = stored_conversation(&b).await;

    // The agent signs in to the console in another tab and sees the conversation waiting.
    let console = b.new_tab().await;
    b.switch_to(&console).await;
    b.viewport(1280, 860).await;
    sign_in(&app, &b, "/console", &token).await;
    until(
        &b,
        "the handed-off conversation in the queue",
        "var q = document.querySelector('.qitem[data-id=\"' + arguments[0] + '\"]'); return q && q.innerText;",
        json!([id]),
    )
    .await;
    let card = b
        .js(
            "return document.querySelector('.qitem[data-id=\"' + arguments[0] + '\"]').innerText;",
            json!([id]),
        )
        .await;
    let card = card.as_str().unwrap();
    assert!(card.contains("Emily Carter"), "{card}");
    assert!(card.contains("due in"), "an SLA countdown: {card}");

    // Claim this one; the transcript shows the bot's reading of each shopper message.
    b.click_css(&format!(".qitem[data-id=\"{id}\"] button.claim"))
        .await;
    until(
        &b,
        "the claimed conversation with suggestions",
        "var r = document.getElementById('reply'); return r && !r.disabled && document.querySelectorAll('.suggestion').length > 0 && document.activeElement === r;",
        json!([]),
    )
    .await;
    let intents = b
        .js(
            "return Array.from(document.querySelectorAll('.msg.shopper .intent')).map(function (i) { return i.innerText; });",
            json!([]),
        )
        .await;
    let intents = intents.as_array().unwrap();
    assert_eq!(intents.len(), 2, "{intents:?}");
    assert!(
        intents
            .iter()
            .all(|i| i.as_str().unwrap().contains("% sure")),
        "{intents:?}"
    );
    assert!(
        b.js("return document.querySelector('.orders li') !== null && document.querySelector('.col.right').innerText.indexOf('Emily') >= 0;", json!([]))
            .await
            .as_bool()
            .unwrap(),
        "the customer's profile and orders are shown"
    );

    // Alt+2 puts the second suggestion in the box; a click on the first replaces it.
    let suggestions: Vec<String> = b
        .js(
            "return Array.from(document.querySelectorAll('.suggestion')).map(function (s) { return s.title; });",
            json!([]),
        )
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    if suggestions.len() >= 2 {
        b.keys(Some(ALT), "2").await;
        let value = b
            .js("return document.getElementById('reply').value;", json!([]))
            .await;
        assert_eq!(value.as_str().unwrap(), suggestions[1]);
    }
    b.click_css(".suggestion").await;
    let reply = b.element("#reply").await;
    assert_eq!(
        b.js("return document.getElementById('reply').value;", json!([]))
            .await
            .as_str()
            .unwrap(),
        suggestions[0]
    );
    // The agent edits it, then sends with Ctrl+Enter.
    b.type_into(&reply, "\n\nAnn").await;
    b.keys(Some(CONTROL), ENTER).await;
    let sent = format!("{}\n\nAnn", suggestions[0]);
    until(
        &b,
        "the reply in the console's transcript",
        "var want = arguments[0]; return Array.from(document.querySelectorAll('.msg.agent .msg-text')).some(function (m) { return m.textContent === want; });",
        json!([sent]),
    )
    .await;
    assert_eq!(
        b.js("return document.getElementById('reply').value;", json!([]))
            .await,
        ""
    );
    assert_contrast(&b, "the conversation").await;
    b.screenshot(&screenshot_path("console-conversation.png"))
        .await;

    // The shopper's widget shows the reply without a reload.
    b.switch_to(&shop).await;
    until(
        &b,
        "the agent's reply in the widget",
        "var r = document.querySelector('switchboard-chat').shadowRoot; var want = arguments[0]; return Array.from(r.querySelectorAll('.msg.agent')).some(function (m) { return m.textContent.indexOf(want) >= 0; });",
        json!([sent]),
    )
    .await;

    // The shopper answers while the console's tab is in the background: the console shows the
    // message live, beeps and raises a notification (permission granted as an agent would).
    b.cdp(
        "Browser.grantPermissions",
        json!({"permissions": ["notifications"], "origin": app.base}),
    )
    .await;
    b.switch_to(&console).await;
    let alerts = b
        .js(
            "return {alerts: Number(document.body.dataset.alerts || 0), notified: Number(document.body.dataset.notified || 0), permission: Notification.permission};",
            json!([]),
        )
        .await;
    assert_eq!(alerts["permission"], "granted", "{alerts}");
    b.switch_to(&shop).await;
    say(&b, "Thanks! Where do I send the headphones?").await;
    let deadline = Instant::now() + PATIENCE;
    loop {
        let c: Value = app
            .get_conversation(&id, Some(ADMIN))
            .await
            .json()
            .await
            .unwrap();
        let stored = c["messages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["text"] == "Thanks! Where do I send the headphones?");
        if stored {
            break;
        }
        assert!(Instant::now() < deadline, "the message was not stored: {c}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The console, in the background, hears of it over its socket.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    b.switch_to(&console).await;
    until(
        &b,
        "the shopper's new message in the console",
        "var want = arguments[0]; return Array.from(document.querySelectorAll('.msg.shopper .msg-text')).some(function (m) { return m.textContent === want; });",
        json!(["Thanks! Where do I send the headphones?"]),
    )
    .await;
    let after = until(
        &b,
        "an alert for the message",
        "var d = document.body.dataset; return Number(d.alerts || 0) > arguments[0] && d.lastAlert === 'message' ? {notified: Number(d.notified || 0)} : null;",
        json!([alerts["alerts"]]),
    )
    .await;
    assert!(
        after["notified"].as_i64().unwrap() > alerts["notified"].as_i64().unwrap(),
        "no notification while the tab was hidden: {after}"
    );

    // The agent resolves with Alt+R; the shopper is asked to rate and gives 5.
    b.element("#resolve-code").await;
    b.keys(Some(ALT), "r").await;
    until(
        &b,
        "the resolved banner",
        "var x = document.querySelector('.banner'); return x && !x.hidden && x.innerText.indexOf('Resolved') >= 0;",
        json!([]),
    )
    .await;
    let stored: Value = app
        .get_conversation(&id, Some(ADMIN))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(stored["state"], "resolved", "{stored}");
    assert_eq!(stored["resolution"], "answered");
    let agent_msgs: Vec<&Value> = stored["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["author"] == "agent")
        .collect();
    assert_eq!(agent_msgs.len(), 1, "{stored}");
    assert_eq!(agent_msgs[0]["text"], sent.as_str());
    assert_eq!(agent_msgs[0]["agent_id"], "ann");

    b.switch_to(&shop).await;
    until(
        &b,
        "the rating question",
        "return document.querySelector('switchboard-chat').shadowRoot.querySelectorAll('.csat .scale button').length === 5;",
        json!([]),
    )
    .await;
    let five = b.widget(".csat .scale button:nth-child(5)").await;
    b.click(&five).await;
    let deadline = Instant::now() + PATIENCE;
    loop {
        let c: Value = app
            .get_conversation(&id, Some(&shopper_token))
            .await
            .json()
            .await
            .unwrap();
        if c["csat_score"] == 5 {
            break;
        }
        assert!(Instant::now() < deadline, "the rating was not stored: {c}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    app.stop().await;
}

#[tokio::test]
async fn the_console_lists_a_vip_before_a_regular_shopper_and_follows_the_queue_live() {
    let _one = ONE_BROWSER.lock().await;
    let app = spawn_app().await;
    let token = create_agent(&app, "ann", "Ann Lee", 3).await;
    create_agent(&app, "bo", "Bo Chen", 2).await;
    // The regular shopper hands off first, then the VIP.
    let (regular, _) = hand_off(&app, "c-2001", "I want to talk to a real person please").await;
    let (vip, vip_token) = hand_off(&app, "c-2004", "I want to talk to a real person please").await;

    let b = Browser::start(1280, 860).await;
    sign_in(&app, &b, "/console", &token).await;
    wait_queue_len(&b, 2).await;
    assert_eq!(queue_ids(&b).await, [vip.clone(), regular.clone()]);
    let first = b
        .js(
            "var q = document.querySelector('.qitem'); return {tier: q.dataset.tier, text: q.innerText};",
            json!([]),
        )
        .await;
    assert_eq!(first["tier"], "vip", "{first}");
    assert!(
        first["text"].as_str().unwrap().contains("VIP")
            && first["text"].as_str().unwrap().contains("Daniel Kim"),
        "{first}"
    );

    // A new handoff appears without a reload, in its place, with an alert; a keyboard user's
    // focus stays on the control they were on.
    b.js(
        "document.querySelector('.qitem[data-id=\"' + arguments[0] + '\"] button.open').focus(); return null;",
        json!([regular]),
    )
    .await;
    let alerts_before = b
        .js(
            "return Number(document.body.dataset.alerts || 0);",
            json!([]),
        )
        .await;
    let (complaint, _) = hand_off(
        &app,
        "c-1003",
        "我的鞋子又晚到了，这是第三次了，我要投诉，请找人工客服",
    )
    .await;
    wait_queue_len(&b, 3).await;
    let ids = queue_ids(&b).await;
    assert_eq!(ids[0], vip, "{ids:?}");
    assert!(ids.contains(&complaint), "{ids:?}");
    let focus = b
        .js(
            "var a = document.activeElement; var q = a && a.closest('.qitem'); return q ? q.dataset.id + ' ' + a.className : String(a && a.tagName);",
            json!([]),
        )
        .await;
    assert_eq!(focus, json!(format!("{regular} ghost small open")));
    until(
        &b,
        "an alert for the new conversation",
        "return Number(document.body.dataset.alerts || 0) > arguments[0] && document.body.dataset.lastAlert === 'conversation';",
        json!([alerts_before]),
    )
    .await;

    // The SLA clock turns amber with a third of the time left and red past the deadline.
    // The page may rebuild the list meanwhile, so each poll sets the clock again until the
    // page's own ticker has coloured it.
    let clock = |offset_s: i64, since_s: i64, class: &str| {
        format!(
            "var n = document.querySelectorAll('.qitem .sla')[2]; if (n.className === 'sla {class}') return n.textContent; n.dataset.due = new Date(Date.now() + {}).toISOString(); n.dataset.since = new Date(Date.now() - {}).toISOString(); return null;",
            offset_s * 1000,
            since_s * 1000
        )
    };
    until(&b, "an amber clock", &clock(60, 600, "amber"), json!([])).await;
    let red = until(&b, "a red clock", &clock(-5, 600, "red"), json!([])).await;
    assert!(red.as_str().unwrap().starts_with("overdue 0:0"), "{red}");
    b.js(
        "document.querySelectorAll('.qitem .sla')[1].dataset.due = new Date(Date.now() + 90000).toISOString(); return null;",
        json!([]),
    )
    .await;
    // Open previews the VIP read-only: no reply box until it is claimed.
    b.click_css(&format!(".qitem[data-id=\"{vip}\"] button.open"))
        .await;
    until(
        &b,
        "the read-only preview",
        "var x = document.querySelector('.banner'); return x && !x.hidden && x.innerText.indexOf('Claim it to reply') >= 0 && document.querySelector('.composer').hidden && document.querySelector('.msg.shopper .intent') !== null;",
        json!([]),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_contrast(&b, "the queue and a preview").await;
    b.screenshot(&screenshot_path("console-queue.png")).await;

    // The same console in Chinese.
    b.element("select.lang").await;
    b.js(
        "var s = document.querySelector('select.lang'); s.value = 'zh'; s.dispatchEvent(new Event('change')); return null;",
        json!([]),
    )
    .await;
    until(
        &b,
        "the Chinese console",
        "return document.documentElement.lang === 'zh' && document.getElementById('queue-h').innerText.indexOf('排队') === 0;",
        json!([]),
    )
    .await;
    b.element("button[aria-keyshortcuts='Alt+N']").await;
    b.keys(Some(ALT), "n").await;
    until(
        &b,
        "the VIP claimed from the Chinese console",
        "var h = document.querySelector('.conv-head h2'); return h && h.innerText.indexOf('Daniel Kim') >= 0 && document.querySelectorAll('.qitem').length === 2;",
        json!([]),
    )
    .await;
    b.screenshot(&screenshot_path("console-zh.png")).await;
    let mine: Value = get(&app, &token, "/api/v1/agent/me")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(mine["held"][0]["conversation_id"], vip.as_str(), "{mine}");

    // A private note: in the transcript for agents, never for the shopper.
    b.click_css("label[for='mode-note']").await;
    let reply = b.element("#reply").await;
    b.type_into(&reply, "VIP, 17 orders: offer express replacement")
        .await;
    b.keys(Some(CONTROL), ENTER).await;
    until(
        &b,
        "the note in the transcript",
        "var n = document.querySelector('.msg.note'); return n && n.innerText.indexOf('express replacement') >= 0;",
        json!([]),
    )
    .await;
    let shopper_view: Value = app
        .get_conversation(&vip, Some(&vip_token))
        .await
        .json()
        .await
        .unwrap();
    assert!(
        !shopper_view.to_string().contains("express replacement"),
        "{shopper_view}"
    );

    // Transferred to Bo, the conversation stays open for Ann, read-only.
    b.js(
        "var s = document.getElementById('transfer-to'); s.value = 'agent:bo'; return s.value;",
        json!([]),
    )
    .await;
    b.click_css(".actions .transfer").await;
    until(
        &b,
        "the read-only view after the transfer",
        "var x = document.querySelector('.banner'); return x && !x.hidden && x.innerText.indexOf('Bo Chen') >= 0 && document.querySelector('.composer').hidden && document.querySelector('.actions').hidden;",
        json!([]),
    )
    .await;
    let moved: Value = app
        .get_conversation(&vip, Some(ADMIN))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(moved["agent_id"], "bo", "{moved}");

    // Ann steps away from the header's status switch.
    b.js(
        "var s = document.getElementById('my-status'); s.value = 'away'; s.dispatchEvent(new Event('change')); return null;",
        json!([]),
    )
    .await;
    let deadline = Instant::now() + PATIENCE;
    loop {
        let me: Value = get(&app, &token, "/api/v1/agent/me")
            .await
            .json()
            .await
            .unwrap();
        if me["agent"]["status"] == "away" {
            break;
        }
        assert!(Instant::now() < deadline, "Ann is not away: {me}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    app.stop().await;
}

#[tokio::test]
async fn the_admin_view_shows_agents_load_and_queue_health() {
    let _one = ONE_BROWSER.lock().await;
    let app = spawn_app().await;
    let ann = create_agent(&app, "ann", "Ann Lee", 3).await;
    create_agent(&app, "bo", "Bo Chen", 2).await;
    let r = app
        .client
        .patch(format!("{}/api/v1/agents/bo", app.base))
        .bearer_auth(ADMIN)
        .json(&json!({"status": "away"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    hand_off(&app, "c-2001", "I want to talk to a real person please").await;
    hand_off(&app, "c-2004", "I want to talk to a real person please").await;
    hand_off(&app, "c-2003", "I want to talk to a real person please").await;
    // Ann takes one and answers it, so one first answer is counted today.
    let claimed: Value = app
        .client
        .post(format!("{}/api/v1/agent/claims", app.base))
        .bearer_auth(&ann)
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let held = claimed["conversation"]["id"].as_str().unwrap().to_string();
    let r = app
        .client
        .post(format!(
            "{}/api/v1/agent/conversations/{held}/messages",
            app.base
        ))
        .bearer_auth(&ann)
        .json(&json!({"text": "Hello, Ann here."}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    let health: Value = get(&app, ADMIN, "/api/v1/admin/queue-health")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(health["waiting"], 2, "{health}");
    assert_eq!(health["answered_today"], 1, "{health}");
    assert_eq!(health["sla_breaches_today"], 0, "{health}");
    let teams = health["teams"].as_array().unwrap();
    let waiting_sum: u64 = teams.iter().map(|t| t["waiting"].as_u64().unwrap()).sum();
    assert_eq!(waiting_sum, 2);
    assert!(teams.iter().any(|t| t["team"] == "refunds"), "{health}");

    let b = Browser::start(1280, 760).await;
    // The agent's token is not the admin's.
    sign_in(&app, &b, "/console/admin", &ann).await;
    until(
        &b,
        "the refusal",
        "var e = document.getElementById('token-error'); return e && e.innerText;",
        json!([]),
    )
    .await;
    sign_in(&app, &b, "/console/admin", ADMIN).await;
    let ann_row = until(
        &b,
        "Ann's row",
        "var r = document.querySelector('tr[data-agent=\"ann\"]'); return r && r.innerText;",
        json!([]),
    )
    .await;
    let ann_row = ann_row.as_str().unwrap();
    assert!(
        ann_row.contains("1 of 3") && ann_row.contains("online"),
        "{ann_row}"
    );
    let bo_row = b
        .js(
            "return document.querySelector('tr[data-agent=\"bo\"]').innerText;",
            json!([]),
        )
        .await;
    let bo_row = bo_row.as_str().unwrap();
    assert!(
        bo_row.contains("0 of 2") && bo_row.contains("away"),
        "{bo_row}"
    );
    // Each team's waiting count is the API's.
    for t in teams {
        let shown = b
            .js(
                "var r = document.querySelector('tr[data-team=\"' + arguments[0] + '\"] .waiting'); return r && r.innerText;",
                json!([t["team"]]),
            )
            .await;
        assert_eq!(
            shown.as_str().unwrap(),
            t["waiting"].to_string(),
            "{}",
            t["team"]
        );
    }
    let tiles = b
        .js(
            "return document.querySelector('.tiles').innerText;",
            json!([]),
        )
        .await;
    assert!(tiles.as_str().unwrap().contains("100% on time"), "{tiles}");
    assert_contrast(&b, "the admin view").await;
    b.screenshot(&screenshot_path("console-admin.png")).await;
    app.stop().await;
}

#[tokio::test]
async fn the_console_pages_and_their_endpoints_check_who_is_asking() {
    let app = spawn_app().await;
    let token = create_agent(&app, "ann", "Ann Lee", 2).await;
    for page in ["/console", "/console/admin"] {
        let r = app
            .client
            .get(format!("{}{page}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let csp = r.headers()["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'self'"), "{csp}");
        assert!(
            r.text()
                .await
                .unwrap()
                .contains("/console/assets/shared.js")
        );
    }
    let js = app
        .client
        .get(format!("{}/console/assets/console.js", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(js.status(), 200);
    assert_eq!(
        js.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    let etag = js.headers()["etag"].clone();
    let again = app
        .client
        .get(format!("{}/console/assets/console.js", app.base))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    assert_error(
        app.client
            .get(format!("{}/console/assets/nope.js", app.base))
            .send()
            .await
            .unwrap(),
        404,
        "not_found",
    )
    .await;

    // Who am I, and whom could I transfer to.
    let (id, _) = hand_off(&app, "c-2004", "I want to talk to a real person please").await;
    let me: Value = get(&app, &token, "/api/v1/agent/me")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["agent"]["id"], "ann");
    assert_eq!(me["agent"]["load"], 0);
    assert!(me["held"].as_array().unwrap().is_empty());
    let seq = me["last_seq"].as_i64().unwrap();
    assert!(seq > 0, "{me}");
    let r = app
        .client
        .post(format!(
            "{}/api/v1/agent/conversations/{id}/claim",
            app.base
        ))
        .bearer_auth(&token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let me: Value = get(&app, &token, "/api/v1/agent/me")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["held"][0]["conversation_id"], id.as_str(), "{me}");
    assert_eq!(me["held"][0]["customer_name"], "Daniel Kim");
    assert!(me["last_seq"].as_i64().unwrap() > seq);
    let dir: Value = get(&app, &token, "/api/v1/agent/directory")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(dir["agents"][0]["id"], "ann", "{dir}");
    assert_eq!(dir["agents"][0]["load"], 1);
    assert!(dir["agents"][0].get("token").is_none());
    assert!(
        dir["teams"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "general"),
        "{dir}"
    );

    // Without a token, with a wrong one, and an agent on the admin's endpoint.
    let anon = app
        .client
        .get(format!("{}/api/v1/agent/me", app.base))
        .send()
        .await
        .unwrap();
    assert_error(anon, 401, "unauthorized").await;
    assert_error(
        get(&app, "sba_not-a-token", "/api/v1/agent/directory").await,
        401,
        "unauthorized",
    )
    .await;
    assert_error(
        get(&app, &token, "/api/v1/admin/queue-health").await,
        403,
        "forbidden",
    )
    .await;
    // The admin token is nobody in particular on agent endpoints.
    assert_error(get(&app, ADMIN, "/api/v1/agent/me").await, 403, "forbidden").await;

    // An agent sets their own availability: away keeps what they hold, offline returns it.
    let status = |body: Value| {
        app.client
            .patch(format!("{}/api/v1/agent/me", app.base))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    let away: Value = status(json!({"status": "away"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (away["status"].as_str(), away["load"].as_u64()),
        (Some("away"), Some(1)),
        "{away}"
    );
    assert_eq!(away["available"], false);
    assert_error(
        status(json!({"status": "busy"})).await.unwrap(),
        422,
        "invalid_request",
    )
    .await;
    assert_error(
        status(json!({"status": "online", "capacity": 9}))
            .await
            .unwrap(),
        422,
        "invalid_request",
    )
    .await;
    let offline: Value = status(json!({"status": "offline"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(offline["load"], 0, "{offline}");
    let back: Value = app
        .get_conversation(&id, Some(ADMIN))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(back["state"], "waiting_for_human", "{back}");
    app.stop().await;
}

#[tokio::test]
async fn an_agent_transfers_to_a_team_and_hands_back_to_the_bot_from_the_console() {
    let _one = ONE_BROWSER.lock().await;
    let app = spawn_app().await;
    let token = create_agent(&app, "ann", "Ann Lee", 3).await;
    let (first, _) = hand_off(&app, "c-2001", "I want to talk to a real person please").await;
    let (second, _) = hand_off(&app, "c-2003", "I want to talk to a real person please").await;
    let b = Browser::start(1280, 860).await;
    sign_in(&app, &b, "/console", &token).await;
    wait_queue_len(&b, 2).await;

    // Claim the first, then send it to the refunds team's queue.
    b.click_css(&format!(".qitem[data-id=\"{first}\"] button.claim"))
        .await;
    until(
        &b,
        "the claimed conversation",
        "var r = document.getElementById('reply'); return r && !r.disabled && !document.querySelector('.actions').hidden;",
        json!([]),
    )
    .await;
    b.js(
        "var s = document.getElementById('transfer-to'); s.value = 'team:refunds'; return s.value;",
        json!([]),
    )
    .await;
    b.click_css(".actions .transfer").await;
    until(
        &b,
        "the conversation back in the queue, read-only",
        "var x = document.querySelector('.banner'); return x && !x.hidden && x.innerText.indexOf('waiting in the queue') >= 0 && document.querySelector('.composer').hidden;",
        json!([]),
    )
    .await;
    let moved: Value = app
        .get_conversation(&first, Some(ADMIN))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(moved["state"], "waiting_for_human", "{moved}");
    until(
        &b,
        "the transferred conversation listed with its new team",
        "var q = document.querySelector('.qitem[data-id=\"' + arguments[0] + '\"]'); return q && q.innerText.indexOf('refunds') >= 0;",
        json!([first]),
    )
    .await;

    // Claim the second and give it back to the bot.
    b.click_css(&format!(".qitem[data-id=\"{second}\"] button.claim"))
        .await;
    until(
        &b,
        "the second conversation claimed",
        "var h = document.querySelector('.conv-head h2'); return h && h.innerText.indexOf('Sofia Rossi') >= 0 && !document.querySelector('.actions').hidden;",
        json!([]),
    )
    .await;
    b.click_css(".actions .handback").await;
    until(
        &b,
        "the read-only view with the bot",
        "var x = document.querySelector('.banner'); return x && !x.hidden && x.innerText.indexOf('with the bot') >= 0;",
        json!([]),
    )
    .await;
    let back: Value = app
        .get_conversation(&second, Some(ADMIN))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(back["state"], "bot", "{back}");
    let me: Value = get(&app, &token, "/api/v1/agent/me")
        .await
        .json()
        .await
        .unwrap();
    assert!(me["held"].as_array().unwrap().is_empty(), "{me}");
    app.stop().await;
}

#[tokio::test]
async fn a_shoppers_photo_shows_in_the_agents_transcript() {
    let _one = ONE_BROWSER.lock().await;
    let app = spawn_app().await;
    let token = create_agent(&app, "ann", "Ann Lee", 3).await;
    let (id, conversation_token) =
        hand_off(&app, "c-2001", "I want to talk to a real person please").await;
    let photo =
        std::fs::read(crate::helpers::root().join("tests/fixtures/photos/broken-cup.png")).unwrap();
    let r = app
        .client
        .post(format!(
            "{}/api/v1/conversations/{id}/attachments?caption=the%20cup%20arrived%20broken",
            app.base
        ))
        .bearer_auth(&conversation_token)
        .body(photo)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let b = Browser::start(1280, 860).await;
    sign_in(&app, &b, "/console", &token).await;
    wait_queue_len(&b, 1).await;
    b.click_css(&format!(".qitem[data-id=\"{id}\"] button.claim"))
        .await;
    // The photo is fetched with the agent's token and shown, captioned, in the transcript.
    let shown = until(
        &b,
        "the shopper's photo in the transcript",
        "return Array.from(document.querySelectorAll('img')).filter(function (i) { return i.complete && i.naturalWidth > 0; }).map(function (i) { return i.alt; });",
        json!([]),
    )
    .await;
    assert_eq!(shown, json!(["the cup arrived broken"]));
    app.stop().await;
}
