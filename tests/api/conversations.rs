//! The conversation API end to end: tracking, FAQ, small talk, handoff, tokens, idempotency.

use serde_json::json;

use crate::helpers::{ADMIN, assert_error, conv, spawn_app};

#[tokio::test]
async fn order_tracking_asks_for_the_number_then_answers() {
    let app = spawn_app().await;
    let first = app.say("c-2001", "Where is my order?", None).await;
    assert_eq!(first["route"], "bot");
    assert_eq!(first["intent"]["name"], "order_tracking");
    assert_eq!(first["route_reason"], "tracking:ask_order_number");
    let (id, token) = conv(&first);
    let second = app
        .say("c-2001", "it's 20261119-5508", Some((&id, &token)))
        .await;
    let reply = second["replies"][0]["text"].as_str().unwrap();
    assert!(
        reply.contains("20261119-5508") && reply.contains("DHL") && reply.contains("in transit"),
        "{reply}"
    );
    assert!(reply.contains("2026-11-26"), "ETA missing: {reply}");
    app.stop().await;
}

#[tokio::test]
async fn tracking_answers_in_chinese_and_never_reveals_other_customers_orders() {
    let app = spawn_app().await;
    let own = app
        .say("c-1001", "我的快递到哪了？订单号是 20261120-7731", None)
        .await;
    let reply = own["replies"][0]["text"].as_str().unwrap();
    assert!(reply.contains("运输中") && reply.contains("SF"), "{reply}");
    assert_eq!(own["lang"], "zh");
    // c-2001's order asked for by c-1001 reads exactly like a missing order.
    let other = app
        .say("c-1001", "查一下订单 20261119-5508 到哪了", None)
        .await;
    let reply = other["replies"][0]["text"].as_str().unwrap();
    assert!(
        !reply.contains("DHL") && !reply.contains("Cincinnati"),
        "{reply}"
    );
    assert_eq!(other["route_reason"], "tracking:not_found");
    app.stop().await;
}

#[tokio::test]
async fn policy_questions_are_answered_from_the_knowledge_base_in_both_languages() {
    let app = spawn_app().await;
    for (customer, text, article) in [
        ("c-2001", "what is your return policy?", "faq:return-policy"),
        ("c-2001", "do you do VAT invoices?", "faq:invoices"),
        ("c-1001", "退货政策是什么", "faq:return-policy"),
        ("c-1001", "保修期多长时间", "faq:warranty"),
        (
            "c-2001",
            "how do I send my headphones in for repair?",
            "faq:repair-service",
        ),
        (
            "c-1001",
            "发国际快递要交关税吗",
            "faq:international-customs",
        ),
    ] {
        let a = app.say(customer, text, None).await;
        assert_eq!(a["route"], "bot", "{text}: {a}");
        // Answers name the passage too: `faq:<article>#<passage>` (#12).
        let reason = a["route_reason"].as_str().unwrap();
        assert!(reason.starts_with(&format!("{article}#")), "{text}: {a}");
        assert_eq!(a["state"], "bot");
    }
    app.stop().await;
}

#[tokio::test]
async fn small_talk_is_answered_in_the_shoppers_language() {
    let app = spawn_app().await;
    let en = app.say("c-2001", "hello!", None).await;
    assert_eq!(en["route_reason"], "smalltalk:greeting");
    assert!(en["replies"][0]["text"].as_str().unwrap().starts_with("Hi"));
    let zh = app.say("c-1001", "你能做什么", None).await;
    assert_eq!(zh["route_reason"], "smalltalk:capabilities");
    assert!(zh["replies"][0]["text"].as_str().unwrap().contains("我是"));
    app.stop().await;
}

#[tokio::test]
async fn human_intents_hand_off_with_everything_an_agent_needs() {
    let app = spawn_app().await;
    let a = app
        .say("c-1001", "收到的杯子碎了，盒子也压扁了", None)
        .await;
    assert_eq!(a["route"], "human");
    assert_eq!(a["state"], "waiting_for_human");
    assert_eq!(a["route_reason"], "intent_routes_to_human:damaged_item");
    assert!(a["replies"][0]["text"].as_str().unwrap().contains("人工"));
    let (id, token) = conv(&a);
    // Later messages wait for the human; the bot does not take the conversation back.
    let b = app.say("c-1001", "你好？", Some((&id, &token))).await;
    assert_eq!(b["state"], "waiting_for_human");
    assert_eq!(b["route"], "human");
    // The agent (admin token) reads the transcript with classification and the reason.
    let resp = app.get_conversation(&id, Some(ADMIN)).await;
    assert_eq!(resp.status(), 200);
    let c: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(c["state"], "waiting_for_human");
    assert_eq!(
        c["handoff"]["reason"],
        "intent_routes_to_human:damaged_item"
    );
    let msgs = c["messages"].as_array().unwrap();
    assert_eq!(msgs[0]["author"], "shopper");
    assert_eq!(msgs[0]["intent"]["name"], "damaged_item");
    assert!(msgs[0]["alternatives"].as_array().unwrap().len() >= 2);
    assert_eq!(msgs[0]["route"], "human");
    assert!(msgs.iter().any(|m| m["author"] == "bot"));
    assert!(msgs.iter().any(|m| m["author"] == "system"));
    app.stop().await;
}

#[tokio::test]
async fn explicit_requests_anger_and_repeated_confusion_hand_off() {
    let app = spawn_app().await;
    let human = app
        .say("c-2001", "I want to talk to a real person", None)
        .await;
    assert_eq!(human["route_reason"], "asked_for_human");
    let angry = app
        .say("c-2001", "THIS IS RIDICULOUS, WHERE IS MY MONEY", None)
        .await;
    assert_eq!(angry["route"], "human");
    // Two messages in a row the bot cannot place: clarify once, then hand off.
    let a = app.say("c-2001", "purple monkey dishwasher", None).await;
    assert_eq!(a["route"], "bot");
    assert_eq!(a["intent"]["out_of_scope"], true);
    let (id, token) = conv(&a);
    let b = app
        .say(
            "c-2001",
            "what's the capital of Mongolia",
            Some((&id, &token)),
        )
        .await;
    assert_eq!(b["route"], "human", "{b}");
    assert_eq!(b["route_reason"], "repeated_low_confidence");
    app.stop().await;
}

#[tokio::test]
async fn tokens_guard_conversations() {
    let app = spawn_app().await;
    let a = app.say("c-2001", "hello", None).await;
    let (id, token) = conv(&a);
    let b = app.say("c-2002", "hi there", None).await;
    let (_, other_token) = conv(&b);
    assert_eq!(app.get_conversation(&id, Some(&token)).await.status(), 200);
    assert_error(app.get_conversation(&id, None).await, 401, "unauthorized").await;
    assert_error(
        app.get_conversation(&id, Some(&other_token)).await,
        403,
        "forbidden",
    )
    .await;
    assert_error(
        app.get_conversation(&id, Some("garbage")).await,
        403,
        "forbidden",
    )
    .await;
    // Writing into someone else's conversation: without a token, with another token, or with
    // the right token but another customer id.
    let body = json!({"customer_id": "c-2001", "conversation_id": id, "text": "hello again"});
    assert_error(app.post(body.clone(), None).await, 401, "unauthorized").await;
    assert_error(
        app.post(body.clone(), Some(&other_token)).await,
        403,
        "forbidden",
    )
    .await;
    let wrong_customer = json!({"customer_id": "c-2002", "conversation_id": id, "text": "hello"});
    assert_error(
        app.post(wrong_customer, Some(&token)).await,
        403,
        "forbidden",
    )
    .await;
    // Nothing was stored by the rejected writes.
    let c: serde_json::Value = app
        .get_conversation(&id, Some(ADMIN))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(c["messages"].as_array().unwrap().len(), 2);
    app.stop().await;
}

#[tokio::test]
async fn a_retry_with_the_same_client_message_id_stores_one_message() {
    let app = spawn_app().await;
    let body = json!({"customer_id": "c-2001", "text": "what's your refund policy", "client_message_id": "m-1"});
    let first: serde_json::Value = app.post(body.clone(), None).await.json().await.unwrap();
    let second: serde_json::Value = app.post(body.clone(), None).await.json().await.unwrap();
    assert_eq!(first["conversation_id"], second["conversation_id"]);
    assert_eq!(first["replies"], second["replies"]);
    assert_eq!(first["replayed"], false);
    assert_eq!(second["replayed"], true);
    let (id, token) = conv(&first);
    // Concurrent duplicates inside an existing conversation also store once.
    let dup = json!({"customer_id": "c-2001", "conversation_id": id, "text": "thanks", "client_message_id": "m-2"});
    let (r1, r2) = tokio::join!(
        app.post(dup.clone(), Some(&token)),
        app.post(dup.clone(), Some(&token))
    );
    assert_eq!(r1.status(), 200);
    assert_eq!(r2.status(), 200);
    let c: serde_json::Value = app
        .get_conversation(&id, Some(&token))
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
    assert_eq!(shopper, 2, "{c}");
    app.stop().await;
}

#[tokio::test]
async fn operating_endpoints() {
    let app = spawn_app().await;
    let ready: serde_json::Value = app
        .client
        .get(format!("{}/readyz", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["ready"], true);
    assert_eq!(ready["model_loaded"], true);
    app.say("c-2001", "hello", None).await;
    let metrics = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("switchboard_messages_total{intent=\"greeting\",route=\"bot\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("switchboard_classification_seconds_bucket"));
    assert!(metrics.contains("switchboard_automated_answer_rate 1"));
    let spec: serde_json::Value = app
        .client
        .get(format!("{}/api/v1/openapi.json", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(spec["paths"]["/api/v1/messages"]["post"].is_object());
    assert!(spec["paths"]["/api/v1/conversations/{id}"]["get"].is_object());
    // Customers: admin only.
    let url = format!("{}/api/v1/customers/c-1001", app.base);
    assert_eq!(app.client.get(&url).send().await.unwrap().status(), 401);
    let c: serde_json::Value = app
        .client
        .get(&url)
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(c["tier"], "vip");
    app.stop().await;
}

#[tokio::test]
async fn graceful_shutdown_finishes_in_flight_requests() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app().await;
    let body = crate::helpers::signed(
        json!({"customer_id": "c-2001", "text": "what's your return policy?"}),
    )
    .to_string();
    let (head, tail) = body.split_at(body.len() / 2);
    let addr = app.base.trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let request = format!(
        "POST /api/v1/messages HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{head}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    // The request is half sent when shutdown begins; the rest follows afterwards.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let stopping = tokio::spawn(app.stop());
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    stream.write_all(tail.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("faq:return-policy"), "{response}");
    stopping.await.unwrap();
}
