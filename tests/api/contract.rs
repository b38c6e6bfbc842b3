//! The API contract: every error is the JSON error body, authentication comes before body
//! validation, the OpenAPI document says what the server enforces (checked by schemathesis
//! with all its checks), and text is normalised at the edge.

use serde_json::{Value, json};

use crate::helpers::{ADMIN, assert_error, conv, spawn_app};

fn url(app: &crate::helpers::TestApp, path: &str) -> String {
    format!("{}{path}", app.base)
}

#[tokio::test]
async fn admin_endpoints_check_the_token_before_the_body() {
    let app = spawn_app().await;
    let c = &app.client;
    let import = url(&app, "/api/v1/customers/import");
    for (body, ctype) in [
        ("{not json".to_string(), "application/json"),
        ("[]".to_string(), "text/plain"),
        ("x".repeat(200_000), "application/json"),
        (
            r#"[{"id":"c-1","tier":{}}]"#.to_string(),
            "application/json",
        ),
    ] {
        let resp = c
            .post(&import)
            .header("content-type", ctype)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_error(resp, 401, "unauthorized").await;
    }
    let resp = c
        .put(url(&app, "/api/v1/customers/c-1"))
        .header("content-type", "application/json")
        .bearer_auth("not-the-admin-token")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_error(resp, 403, "forbidden").await;
    app.stop().await;
}

#[tokio::test]
async fn errors_before_handlers_are_json_too() {
    let app = spawn_app().await;
    let c = &app.client;
    // Invalid UTF-8 in a path parameter.
    let resp = c
        .get(url(&app, "/api/v1/customers/%FF"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    assert_error(resp, 400, "bad_request").await;
    let resp = c
        .get(url(&app, "/api/v1/conversations/%FF"))
        .send()
        .await
        .unwrap();
    assert_error(resp, 401, "unauthorized").await;
    let resp = c
        .get(url(&app, "/api/v1/conversations/%FF"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_error(resp, 400, "bad_request").await;
    app.stop().await;
}

#[tokio::test]
async fn customer_profiles_are_validated_and_imports_report_what_they_stored() {
    let app = spawn_app().await;
    let c = &app.client;
    let put = |body: Value| {
        c.put(url(&app, "/api/v1/customers/c-77"))
            .bearer_auth(ADMIN)
            .json(&body)
            .send()
    };
    for bad in [
        json!({"id": "c-77", "lifetime_spend_cents": -1}),
        json!({"id": "c-77", "surprise": 1}),
        json!({"id": "c-77", "order_count": -5}),
        json!({"id": "c-77", "complaints_90d": -1}),
        json!({"id": "c-77", "tier": {}}),
        json!({"id": "c-77", "tier": "platinum"}),
        json!({"id": "c-77", "language": "fr"}),
        json!({"id": "c-77", "tags": [""]}),
        json!({"id": "c-78"}),
        json!({"order_count": 1.5}),
    ] {
        assert_error(put(bad.clone()).await.unwrap(), 422, "invalid_request").await;
    }
    // Names lose control and bidi-override characters.
    let stored: Value =
        put(json!({"id": "c-77", "name": "Ann\u{202E}eL\u{0}\nLee", "tier": "vip"}))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(stored["name"], "AnneL Lee");
    let resp = c
        .post(url(&app, "/api/v1/customers/import"))
        .bearer_auth(ADMIN)
        .json(&json!([
            {"id": "c-90", "name": "first"},
            {"id": "c-91"},
            {"id": "c-90", "name": "second"}
        ]))
        .send()
        .await
        .unwrap();
    let report: Value = resp.json().await.unwrap();
    assert_eq!(
        report,
        json!({"imported": 2, "received": 3, "duplicate_ids": ["c-90"]})
    );
    let c90: Value = c
        .get(url(&app, "/api/v1/customers/c-90"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        c90["name"], "second",
        "the last record of a duplicate id wins"
    );
    app.stop().await;
}

#[tokio::test]
async fn message_text_is_normalised_at_the_edge() {
    let app = spawn_app().await;
    let a = app
        .say("c-2001", "hel\u{0}lo \u{202E}there\u{202C}\r\nfriend", None)
        .await;
    let (id, token) = conv(&a);
    let c: Value = app
        .get_conversation(&id, Some(&token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(c["messages"][0]["text"], "hello there\nfriend");
    // Nothing visible left: refused, nothing stored.
    let resp = app
        .post(
            json!({"customer_id": "c-2001", "text": "\u{0}\u{202E} \u{7}"}),
            None,
        )
        .await;
    assert_error(resp, 422, "invalid_request").await;
    app.stop().await;
}

/// Where the test command installs schemathesis (a virtual environment outside the repo).
fn schemathesis() -> std::path::PathBuf {
    if let Some(p) = std::env::var_os("SCHEMATHESIS") {
        return p.into();
    }
    let home = std::env::var_os("HOME").expect("HOME is set");
    std::path::Path::new(&home).join(".cache/switchboard/schemathesis/bin/st")
}

#[tokio::test]
async fn schemathesis_finds_no_contract_violation() {
    let st = schemathesis();
    assert!(
        st.exists(),
        "schemathesis is missing at {}: run ./scripts/test.sh (it installs it) or set SCHEMATHESIS",
        st.display()
    );
    let app = spawn_app().await;
    // The admin token acts as this agent on agent endpoints, so those are exercised too.
    let r = app
        .client
        .post(format!("{}/api/v1/agents", app.base))
        .bearer_auth(ADMIN)
        .json(&json!({"id": "st", "name": "Schemathesis", "capacity": 50}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let report = tempfile::tempdir().unwrap();
    let base = app.base.clone();
    let out = tokio::process::Command::new(&st)
        .arg("run")
        .arg(format!("{base}/api/v1/openapi.json"))
        .args(["--checks", "all"])
        .args(["-H", &format!("Authorization: Bearer {ADMIN}")])
        .args(["-H", "X-Agent-Id: st"])
        // One worker: with two, hypothesis parses schemathesis' source for lambda descriptions
        // in two threads at once, and CPython 3.11's `ast.parse` then fails now and then with
        // "AST constructor recursion depth mismatch" (a runtime error, not a finding).
        .args(["--max-examples", "30", "--seed", "7", "--workers", "1"])
        .args(["--generation-database", "none", "--no-color"])
        .args(["--request-timeout", "120", "--max-response-time", "120"])
        .arg("--report-dir")
        .arg(report.path())
        .output()
        .await
        .expect("schemathesis runs");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "schemathesis failed:\n{text}");
    app.stop().await;
}
