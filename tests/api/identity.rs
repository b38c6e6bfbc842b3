//! Verified shopper identity and retry keys (issue #7): who may act as a customer, what a
//! replayed retry key may reveal, and anonymous order tracking behind a second factor.

use serde_json::{Value, json};

use crate::helpers::{assert_error, conv, hash, spawn_app, spawn_app_with};

async fn ok(resp: reqwest::Response) -> Value {
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

/// Regression for issue #7.1: a retry key once let anyone fetch another caller's
/// conversation token by naming their customer id.
#[tokio::test]
async fn a_replayed_retry_key_never_hands_out_another_callers_token() {
    let app = spawn_app().await;
    let victim = ok(app
        .post(
            json!({"customer_id": "c-2003", "text": "where is my order 20261119-5508?", "client_message_id": "1"}),
            None,
        )
        .await)
    .await;
    let (victim_id, victim_token) = conv(&victim);
    // The attack as reported: the same customer id and key, no signature.
    let attack = json!({"customer_id": "c-2003", "text": "hi", "client_message_id": "1"});
    assert_error(
        app.post_unsigned(attack.clone(), None).await,
        401,
        "identity_not_verified",
    )
    .await;
    // A forged signature does no better.
    let mut forged = attack.clone();
    forged["customer_hash"] = json!(hash("c-2004"));
    assert_error(
        app.post_unsigned(forged, None).await,
        401,
        "identity_not_verified",
    )
    .await;
    // Anonymously, the same key is someone else's key space: a new conversation.
    let anon = ok(app
        .post_unsigned(json!({"text": "hi", "client_message_id": "1"}), None)
        .await)
    .await;
    assert_eq!(anon["replayed"], false);
    assert_ne!(anon["conversation_id"], victim["conversation_id"]);
    assert_ne!(anon["conversation_token"], victim["conversation_token"]);
    // The victim's own retry still replays.
    let retry = ok(app
        .post(
            json!({"customer_id": "c-2003", "text": "where is my order 20261119-5508?", "client_message_id": "1"}),
            None,
        )
        .await)
    .await;
    assert_eq!(retry["replayed"], true);
    assert_eq!(retry["conversation_id"], victim_id.as_str());
    assert_eq!(retry["conversation_token"], victim_token.as_str());
    app.stop().await;
}

/// Regression for issue #7.2: a key reused in a second conversation was answered with the
/// first conversation's reply and the new message was dropped.
#[tokio::test]
async fn a_reused_retry_key_is_refused_or_scoped_never_silently_replayed() {
    let app = spawn_app().await;
    let a = ok(app
        .post(
            json!({"customer_id": "c-2001", "text": "hello", "client_message_id": "k"}),
            None,
        )
        .await)
    .await;
    let (a_id, a_token) = conv(&a);
    // Same customer, same key, different first message: 409, not the old answer.
    assert_error(
        app.post(json!({"customer_id": "c-2001", "text": "what is your return policy", "client_message_id": "k"}), None)
            .await,
        409,
        "idempotency_key_reused",
    )
    .await;
    // A second conversation (started without a key) can use key "k" for its own messages.
    let b = ok(app
        .post(json!({"customer_id": "c-2001", "text": "hi there"}), None)
        .await)
    .await;
    let (b_id, b_token) = conv(&b);
    assert_ne!(a_id, b_id);
    let in_b = ok(app
        .post(
            json!({"conversation_id": b_id, "text": "what is your return policy", "client_message_id": "k"}),
            Some(&b_token),
        )
        .await)
    .await;
    assert_eq!(in_b["replayed"], false);
    assert_eq!(in_b["conversation_id"], b_id.as_str());
    // Within one conversation, a key reused for different text is refused too.
    ok(app
        .post(
            json!({"conversation_id": a_id, "text": "thanks", "client_message_id": "k2"}),
            Some(&a_token),
        )
        .await)
    .await;
    assert_error(
        app.post(
            json!({"conversation_id": a_id, "text": "something else", "client_message_id": "k2"}),
            Some(&a_token),
        )
        .await,
        409,
        "idempotency_key_reused",
    )
    .await;
    // Every accepted message is stored: A has hello + thanks, B has hi there + the policy question.
    for (id, token, expect) in [(&a_id, &a_token, 2), (&b_id, &b_token, 2)] {
        let c: Value = app
            .get_conversation(id, Some(token))
            .await
            .json()
            .await
            .unwrap();
        let shopper = c["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["author"] == "shopper")
            .count();
        assert_eq!(shopper, expect, "{c}");
    }
    app.stop().await;
}

#[tokio::test]
async fn only_a_valid_hash_starts_a_conversation_as_a_known_customer() {
    let app = spawn_app().await;
    let body = |h: Option<String>| {
        let mut b = json!({"customer_id": "c-1001", "text": "你好"});
        if let Some(h) = h {
            b["customer_hash"] = json!(h);
        }
        b
    };
    assert_error(
        app.post_unsigned(body(None), None).await,
        401,
        "identity_not_verified",
    )
    .await;
    assert_error(
        app.post_unsigned(body(Some("0".repeat(64))), None).await,
        401,
        "identity_not_verified",
    )
    .await;
    assert_error(
        app.post_unsigned(body(Some("xyz".into())), None).await,
        422,
        "invalid_request",
    )
    .await;
    // A hash without an id proves nothing: that shopper is anonymous.
    let anon: Value = ok(app
        .post_unsigned(json!({"customer_hash": hash("c-1001"), "text": "hi"}), None)
        .await)
    .await;
    let (anon_id, anon_token) = conv(&anon);
    let c: Value = app
        .get_conversation(&anon_id, Some(&anon_token))
        .await
        .json()
        .await
        .unwrap();
    assert!(
        c["customer_id"].as_str().unwrap().starts_with("anon-"),
        "{c}"
    );
    // Upper-case hex is the same hash.
    let a = ok(app
        .post_unsigned(body(Some(hash("c-1001").to_uppercase())), None)
        .await)
    .await;
    assert_eq!(a["lang"], "zh");
    // Continuing needs the token, not the hash; naming another customer is refused.
    let (id, token) = conv(&a);
    ok(app
        .post_unsigned(json!({"conversation_id": id, "text": "谢谢"}), Some(&token))
        .await)
    .await;
    assert_error(
        app.post_unsigned(
            json!({"conversation_id": id, "customer_id": "c-1002", "text": "谢谢"}),
            Some(&token),
        )
        .await,
        403,
        "forbidden",
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn anonymous_tracking_asks_for_a_contact_detail_before_showing_an_order() {
    let app = spawn_app().await;
    let first = ok(app
        .post_unsigned(
            json!({"text": "where is my order 20261119-5508?", "lang": "en"}),
            None,
        )
        .await)
    .await;
    assert_eq!(first["route_reason"], "tracking:ask_verification");
    let reply = first["replies"][0]["text"].as_str().unwrap();
    assert!(
        !reply.contains("DHL") && !reply.contains("transit"),
        "{reply}"
    );
    let (id, token) = conv(&first);
    let say = |text: &str| {
        let body = json!({"conversation_id": id, "text": text});
        let token = token.clone();
        let app = &app;
        async move { ok(app.post_unsigned(body, Some(&token)).await).await }
    };
    // A wrong detail reads the same as a wrong order number.
    let wrong = say("my email is someone.else@example.com").await;
    assert_eq!(wrong["route_reason"], "tracking:verification_failed");
    let wrong_text = wrong["replies"][0]["text"].as_str().unwrap();
    assert!(!wrong_text.contains("DHL"), "{wrong_text}");
    // The right one (the demo order's email) shows it.
    let orders: Value = serde_json::from_str(
        &std::fs::read_to_string(crate::helpers::root().join("demo/orders.json")).unwrap(),
    )
    .unwrap();
    let order = orders
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["order_id"] == "20261119-5508")
        .unwrap();
    let email = order["email"].as_str().unwrap();
    let right = say(&format!("it's {email}")).await;
    assert_eq!(right["route_reason"], "tracking:answered", "{right}");
    assert!(
        right["replies"][0]["text"]
            .as_str()
            .unwrap()
            .contains("20261119-5508")
    );
    // Anonymous shoppers have no profile: the conversation's customer is a fresh anon- id.
    let c: Value = app
        .get_conversation(&id, Some(&token))
        .await
        .json()
        .await
        .unwrap();
    assert!(
        c["customer_id"].as_str().unwrap().starts_with("anon-"),
        "{c}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_verified_customer_never_sees_someone_elses_order() {
    let app = spawn_app().await;
    // 20261119-5508 is c-2001's order; c-2002 asks with a correct-looking contact detail.
    let a = app
        .say(
            "c-2002",
            "where is order 20261119-5508? my postcode is 94107",
            None,
        )
        .await;
    assert_eq!(a["route_reason"], "tracking:not_found");
    app.stop().await;
}

#[tokio::test]
async fn without_an_identity_secret_in_production_every_shopper_is_anonymous() {
    let app = spawn_app_with(|s| {
        s.identity_secret = None;
        s.demo_dir = None;
    })
    .await;
    assert_error(
        app.post(json!({"customer_id": "c-2001", "text": "hi"}), None)
            .await,
        401,
        "identity_not_verified",
    )
    .await;
    let anon = ok(app.post_unsigned(json!({"text": "hello"}), None).await).await;
    assert_eq!(anon["route"], "bot");
    app.stop().await;
}
