//! The human queue end to end (issue #8): VIP first, claims that never collide, agent replies
//! pushed to the shopper's WebSocket, resolution and rating, and the bad inputs around them.

use futures::StreamExt;
use serde_json::{Value, json};

use crate::helpers::{ADMIN, TestApp, assert_error, conv, create_agent_at, spawn_app};

async fn create_agent(app: &TestApp, id: &str, capacity: u32) -> String {
    create_agent_at(&app.client, &app.base, id, &format!("Agent {id}"), capacity).await
}

async fn agent_post(app: &TestApp, token: &str, path: &str, body: Value) -> reqwest::Response {
    app.client
        .post(format!("{}{path}", app.base))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn hand_off(app: &TestApp, customer: &str) -> (String, String) {
    let a = app
        .say(customer, "I want to talk to a real person please", None)
        .await;
    assert_eq!(a["state"], "waiting_for_human", "{a}");
    conv(&a)
}

#[tokio::test]
async fn vip_first_claim_reply_live_resolve_and_rate() {
    let app = spawn_app().await;
    let token = create_agent(&app, "ann", 3).await;
    // A regular customer hands off first, then a VIP.
    let (regular, _) = hand_off(&app, "c-2001").await;
    let (vip, vip_token) = hand_off(&app, "c-2004").await;
    let queue: Value = app
        .client
        .get(format!("{}/api/v1/agent/queue", app.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let items = queue["items"].as_array().unwrap();
    assert_eq!(items[0]["conversation_id"], vip.as_str(), "{queue}");
    assert_eq!(items[0]["tier"], "vip");
    assert_eq!(items[1]["conversation_id"], regular.as_str());
    assert_eq!(items[0]["customer"]["tier"], "vip");
    // The regular shopper sees their place in line.
    let reg: Value = app
        .get_conversation(&regular, Some(ADMIN))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(reg["queue"]["position"], 2, "{reg}");

    // The VIP's widget listens live.
    let ws_url = format!(
        "{}/api/v1/conversations/{vip}/events?token={vip_token}",
        app.base.replace("http://", "ws://")
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url).await.unwrap();

    let claimed = agent_post(&app, &token, "/api/v1/agent/claims", json!({})).await;
    assert_eq!(claimed.status(), 200);
    let claimed: Value = claimed.json().await.unwrap();
    assert_eq!(claimed["conversation"]["id"], vip.as_str());
    assert_eq!(claimed["customer"]["tier"], "vip");
    assert!(
        !claimed["conversation"]["messages"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    let r = agent_post(
        &app,
        &token,
        &format!("/api/v1/agent/conversations/{vip}/messages"),
        json!({"text": "Hi, this is Ann. I'm looking into it now."}),
    )
    .await;
    assert_eq!(r.status(), 201);
    // The reply reaches the shopper's WebSocket, after the earlier events, in order.
    let mut last_seq = 0;
    let got = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        while let Some(Ok(msg)) = ws.next().await {
            let Ok(text) = msg.into_text() else { continue };
            let v: Value = serde_json::from_str(&text).unwrap();
            if v["ephemeral"] == true {
                continue;
            }
            let seq = v["seq"].as_i64().unwrap();
            assert!(seq > last_seq, "events arrive in order, once");
            last_seq = seq;
            if v["type"] == "message_added" && v["data"]["message"]["author"] == "agent" {
                return v;
            }
        }
        panic!("socket closed");
    })
    .await
    .expect("the agent's reply is pushed");
    assert_eq!(
        got["data"]["message"]["text"],
        "Hi, this is Ann. I'm looking into it now."
    );
    assert_eq!(got["data"]["message"]["agent"]["name"], "Agent ann");

    // A reconnect after that sequence gets nothing old again.
    let again = format!(
        "{}/api/v1/conversations/{vip}/events?token={vip_token}&after={last_seq}",
        app.base.replace("http://", "ws://")
    );
    let (mut ws2, _) = tokio_tungstenite::connect_async(again).await.unwrap();

    let r = agent_post(
        &app,
        &token,
        &format!("/api/v1/agent/conversations/{vip}/resolve"),
        json!({"code": "answered"}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let next = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        while let Some(Ok(msg)) = ws2.next().await {
            let Ok(text) = msg.into_text() else { continue };
            let v: Value = serde_json::from_str(&text).unwrap();
            if v["ephemeral"] == true {
                continue;
            }
            assert!(v["seq"].as_i64().unwrap() > last_seq, "{v}");
            if v["type"] == "csat_requested" {
                return v;
            }
        }
        panic!("socket closed");
    })
    .await
    .expect("the rating question is pushed");
    assert_eq!(next["type"], "csat_requested");

    let csat = |score: i64| {
        app.client
            .post(format!("{}/api/v1/conversations/{vip}/csat", app.base))
            .bearer_auth(&vip_token)
            .json(&json!({"score": score, "comment": "quick, thanks"}))
            .send()
    };
    assert_error(csat(6).await.unwrap(), 422, "invalid_request").await;
    assert_eq!(csat(5).await.unwrap().status(), 201);
    assert_error(csat(4).await.unwrap(), 409, "already_rated").await;
    let c: Value = app
        .get_conversation(&vip, Some(ADMIN))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(c["csat_score"], 5);
    assert_eq!(c["state"], "resolved");
    app.stop().await;
}

#[tokio::test]
async fn concurrent_claimers_never_share_a_conversation_or_exceed_capacity() {
    let app = spawn_app().await;
    let mut conversations = Vec::new();
    for i in 0..40 {
        let customer = format!("load-{i}");
        conversations.push(hand_off(&app, &customer).await.0);
    }
    // 50 agents with room for one conversation each claim at the same instant.
    let mut tokens = Vec::new();
    for a in 0..50 {
        tokens.push(create_agent(&app, &format!("a{a}"), 1).await);
    }
    let mut tasks = Vec::new();
    for token in tokens.clone() {
        let client = app.client.clone();
        let url = format!("{}/api/v1/agent/claims", app.base);
        tasks.push(tokio::spawn(async move {
            let r = client.post(url).bearer_auth(&token).send().await.unwrap();
            let status = r.status().as_u16();
            let body: Value = if status == 200 {
                r.json().await.unwrap()
            } else {
                Value::Null
            };
            (
                token,
                status,
                body["conversation"]["id"].as_str().map(str::to_string),
            )
        }));
    }
    let mut claimed = std::collections::HashMap::new();
    for t in tasks {
        let (token, status, id) = t.await.unwrap();
        assert!(matches!(status, 200 | 204), "{status}");
        if let Some(id) = id {
            assert!(
                claimed.insert(id.clone(), token.clone()).is_none(),
                "{id} claimed twice"
            );
        }
    }
    // Every waiting conversation was claimed exactly once, by 40 different agents.
    assert_eq!(claimed.len(), 40);
    let agents: std::collections::HashSet<_> = claimed.values().collect();
    assert_eq!(agents.len(), 40, "no agent over its capacity of one");
    for id in &conversations {
        assert!(claimed.contains_key(id), "{id} was not claimed");
    }
    // An agent who won a claim is now full.
    let winner = claimed.values().next().unwrap();
    let again = agent_post(&app, winner, "/api/v1/agent/claims", json!({})).await;
    assert_eq!(again.status(), 409, "that agent is at capacity");
    app.stop().await;
}

#[tokio::test]
async fn queue_bad_input_gets_clear_errors() {
    let app = spawn_app().await;
    let ann = create_agent(&app, "ann", 2).await;
    let bob = create_agent(&app, "bob", 2).await;
    let (id, token) = hand_off(&app, "c-2002").await;
    // Unknown token, and the admin token without saying which agent.
    assert_error(
        agent_post(&app, "nope-not-a-token", "/api/v1/agent/claims", json!({})).await,
        401,
        "unauthorized",
    )
    .await;
    assert_error(
        agent_post(&app, ADMIN, "/api/v1/agent/claims", json!({})).await,
        403,
        "forbidden",
    )
    .await;
    // Ann claims it; Bob cannot claim it again, nor reply in it.
    let path = format!("/api/v1/agent/conversations/{id}/claim");
    assert_eq!(agent_post(&app, &ann, &path, json!({})).await.status(), 200);
    assert_error(
        agent_post(&app, &bob, &path, json!({})).await,
        409,
        "already_taken",
    )
    .await;
    assert_error(
        agent_post(
            &app,
            &bob,
            &format!("/api/v1/agent/conversations/{id}/messages"),
            json!({"text": "hi"}),
        )
        .await,
        403,
        "forbidden",
    )
    .await;
    // A conversation with the bot is not waiting.
    let bot = app.say("c-2003", "hello", None).await;
    let (bot_id, _) = conv(&bot);
    assert_error(
        agent_post(
            &app,
            &bob,
            &format!("/api/v1/agent/conversations/{bot_id}/claim"),
            json!({}),
        )
        .await,
        409,
        "not_waiting",
    )
    .await;
    // A live connection with a wrong token is refused before the upgrade.
    let bad = format!(
        "{}/api/v1/conversations/{id}/events?token=wrong",
        app.base.replace("http://", "ws://")
    );
    assert!(tokio_tungstenite::connect_async(bad).await.is_err());
    let good = format!(
        "{}/api/v1/conversations/{id}/events?token={token}",
        app.base.replace("http://", "ws://")
    );
    assert!(tokio_tungstenite::connect_async(good).await.is_ok());
    // Deleting Ann: her token stops working and the conversation waits again, in place.
    let r = app
        .client
        .delete(format!("{}/api/v1/agents/ann", app.base))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_error(
        agent_post(&app, &ann, "/api/v1/agent/claims", json!({})).await,
        401,
        "unauthorized",
    )
    .await;
    let c: Value = app
        .get_conversation(&id, Some(ADMIN))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(c["state"], "waiting_for_human", "{c}");
    // CSAT before resolution is refused.
    let r = app
        .client
        .post(format!("{}/api/v1/conversations/{id}/csat", app.base))
        .bearer_auth(&token)
        .json(&json!({"score": 5}))
        .send()
        .await
        .unwrap();
    assert_error(r, 409, "not_resolved").await;
    app.stop().await;
}

#[tokio::test]
async fn agents_from_a_file_can_sign_in_with_their_token() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("agents.json");
    let token = "file-agent-token-0123456789";
    let hash = switchboard::http::agents::token_hash(token);
    std::fs::write(
        &file,
        json!([{"id": "fa", "name": "File Agent", "languages": ["zh"], "teams": ["general"], "capacity": 2, "token_sha256": hash}]).to_string(),
    )
    .unwrap();
    let app = crate::helpers::spawn_app_with(|s| s.agents_file = Some(file.clone())).await;
    let r = app
        .client
        .get(format!("{}/api/v1/agent/queue", app.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let agents: Value = app
        .client
        .get(format!("{}/api/v1/agents", app.base))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(agents["items"][0]["id"], "fa");
    assert_eq!(agents["items"][0]["languages"], json!(["zh"]));
    app.stop().await;
}
