//! Bad input gets a clear JSON error, never a 500, and stores nothing.

use serde_json::json;

use crate::helpers::{ADMIN, assert_error, conv, spawn_app, spawn_app_with};

#[tokio::test]
async fn malformed_requests_get_clear_errors() {
    let app = spawn_app().await;
    let cases: Vec<(Vec<u8>, &str, u16, &str)> = vec![
        (
            b"{not json".to_vec(),
            "application/json",
            400,
            "bad_request",
        ),
        (
            b"{\"customer_id\": 5, \"text\": \"hi\"}".to_vec(),
            "application/json",
            422,
            "invalid_request",
        ),
        (
            b"{\"customer_id\": \"c-1\"}".to_vec(),
            "application/json",
            422,
            "invalid_request",
        ),
        (
            b"{\"customer_id\": \"c-1\", \"text\": \"hi\", \"surprise\": 1}".to_vec(),
            "application/json",
            422,
            "invalid_request",
        ),
        (
            b"{\"customer_id\": \"c-1\", \"text\": \"\xff\xfe\"}".to_vec(),
            "application/json",
            400,
            "bad_request",
        ),
        (
            b"{\"customer_id\": \"c-1\", \"text\": \"hi\"}".to_vec(),
            "text/plain",
            415,
            "unsupported_media_type",
        ),
        (
            b"{\"customer_id\": \"c 1\", \"text\": \"hi\"}".to_vec(),
            "application/json",
            422,
            "invalid_request",
        ),
        (
            b"{\"customer_id\": \"c-1\", \"text\": \"   \"}".to_vec(),
            "application/json",
            422,
            "invalid_request",
        ),
        (
            b"{\"customer_id\": \"c-1\", \"text\": \"hi\", \"lang\": \"klingon\"}".to_vec(),
            "application/json",
            422,
            "invalid_request",
        ),
        (
            b"{\"customer_id\": \"c-1\", \"text\": \"hi\", \"channel\": \"NO SPACES\"}".to_vec(),
            "application/json",
            422,
            "invalid_request",
        ),
        (b"[]".to_vec(), "application/json", 422, "invalid_request"),
    ];
    for (body, ct, status, code) in cases {
        let shown = String::from_utf8_lossy(&body).into_owned();
        let resp = app.post_raw(body, ct, None).await;
        assert_eq!(resp.status().as_u16(), status, "{shown}");
        assert_error(resp, status, code).await;
    }
    // Nothing reached the store: customer c-1 has no conversation, so a fresh message starts
    // the only one.
    let metrics = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!metrics.contains("switchboard_shopper_messages_total 1"));
    app.stop().await;
}

#[tokio::test]
async fn oversized_bodies_and_texts_are_rejected() {
    let app = spawn_app_with(|s| {
        s.max_body_bytes = 4096;
        s.max_text_chars = 500;
    })
    .await;
    let huge = json!({"customer_id": "c-1", "text": "a".repeat(10_000)});
    assert_error(app.post(huge, None).await, 413, "payload_too_large").await;
    let long = json!({"customer_id": "c-1", "text": "a".repeat(600)});
    assert_error(app.post(long, None).await, 422, "invalid_request").await;
    app.stop().await;
}

#[tokio::test]
async fn unknown_ids_are_404_and_wrong_methods_are_clear() {
    let app = spawn_app().await;
    let missing = uuid::Uuid::new_v4().to_string();
    assert_error(
        app.get_conversation(&missing, Some(ADMIN)).await,
        404,
        "not_found",
    )
    .await;
    assert_error(
        app.get_conversation("not-a-uuid", Some(ADMIN)).await,
        404,
        "not_found",
    )
    .await;
    assert_error(
        app.get_conversation("not-a-uuid", None).await,
        401,
        "unauthorized",
    )
    .await;
    // Posting into a conversation that does not exist: the token cannot match, so 403.
    let body = json!({"customer_id": "c-1", "conversation_id": missing, "text": "hi"});
    assert_error(app.post(body, Some("whatever")).await, 403, "forbidden").await;
    let body = json!({"customer_id": "c-1", "conversation_id": "zzz", "text": "hi"});
    assert_error(app.post(body, Some("whatever")).await, 404, "not_found").await;
    let resp = app
        .client
        .get(format!("{}/api/v1/nothing-here", app.base))
        .send()
        .await
        .unwrap();
    assert_error(resp, 404, "not_found").await;
    let resp = app
        .client
        .delete(format!("{}/api/v1/messages", app.base))
        .send()
        .await
        .unwrap();
    assert_error(resp, 405, "method_not_allowed").await;
    app.stop().await;
}

#[tokio::test]
async fn overload_answers_429_with_retry_after() {
    let app = spawn_app_with(|s| s.max_in_flight = 1).await;
    let sends = (0..24).map(|i| {
        app.post(
            json!({"customer_id": format!("c-{i}"), "text": "where is my parcel, it is late"}),
            None,
        )
    });
    let responses = futures::future::join_all(sends).await;
    let mut busy = 0;
    for r in responses {
        match r.status().as_u16() {
            200 => {}
            429 => {
                assert_eq!(r.headers()["retry-after"], "1");
                assert_error(r, 429, "overloaded").await;
                busy += 1;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(
        busy > 0,
        "24 concurrent messages with one slot should be turned away at least once"
    );
    app.stop().await;
}

#[tokio::test]
async fn hostile_texts_are_handled() {
    let app = spawn_app().await;
    for text in [
        "🙂🔥💯".repeat(200),
        "\u{0}\u{7}\u{1b}[31mred\u{202e}evil".to_string(),
        "مرحبا שלום Привет 你好 hello".to_string(),
        "\u{FEFF}\u{200B}\u{0301}".to_string(),
        "退".repeat(3000),
    ] {
        let resp = app
            .post(json!({"customer_id": "c-2001", "text": text}), None)
            .await;
        assert_eq!(resp.status(), 200);
        let a: serde_json::Value = resp.json().await.unwrap();
        let (id, _) = conv(&a);
        let c: serde_json::Value = app
            .get_conversation(&id, Some(ADMIN))
            .await
            .json()
            .await
            .unwrap();
        // Stored as normalised at the edge: no control or bidi-override characters.
        assert_eq!(
            c["messages"][0]["text"].as_str().unwrap(),
            switchboard::domain::text::clean(&text).trim()
        );
    }
    app.stop().await;
}
