//! Scale-out (issue #11): several instances on one PostgreSQL database behave like one. Real
//! servers on port 0 (in-process, and the real binary where one must be killed) share a fresh
//! database per test.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};
use switchboard::settings::Secret;
use switchboard::store::backend::Backend;

use crate::helpers::{PgDatabase, TestApp, conv, create_agent_at, signed, spawn_app_with};

async fn instance(db: &PgDatabase) -> TestApp {
    let url = db.url.clone();
    spawn_app_with(move |s| s.database_url = Some(Secret::new(url))).await
}

async fn create_agent(client: &reqwest::Client, base: &str, id: &str, capacity: u32) -> String {
    create_agent_at(client, base, id, &format!("Agent {id}"), capacity).await
}

/// `n` shoppers ask for a person, spread over `bases`, eight at a time.
async fn hand_offs(client: &reqwest::Client, bases: &[String], n: usize) -> Vec<String> {
    let ids = futures::stream::iter(0..n)
        .map(|i| {
            let client = client.clone();
            let base = bases[i % bases.len()].clone();
            async move {
                let body = signed(
                    json!({"customer_id": format!("scale-{i}"), "text": "I want to talk to a real person please"}),
                );
                let r = client
                    .post(format!("{base}/api/v1/messages"))
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                let v: Value = r.json().await.unwrap();
                assert_eq!(v["state"], "waiting_for_human", "{v}");
                conv(&v).0
            }
        })
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await;
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), n);
    ids
}

/// One agent claims until nothing is left or they are full, trying the bases in turn. When
/// `killable` names a base, that instance may die and the agent moves on from it; any other
/// failed request fails the test (a claim whose answer is lost cannot be reported).
async fn claim_all(
    client: reqwest::Client,
    bases: Vec<String>,
    token: String,
    start: usize,
    claims: Arc<AtomicUsize>,
    killable: Option<usize>,
) -> Vec<String> {
    let mut failures = 0;
    let mut mine = Vec::new();
    let mut i = start;
    let mut dead: HashSet<String> = HashSet::new();
    loop {
        let live: Vec<&String> = bases.iter().filter(|b| !dead.contains(*b)).collect();
        assert!(failures < 20, "the surviving instance stopped answering");
        let base = live[i % live.len()].clone();
        i += 1;
        let r = client
            .post(format!("{base}/api/v1/agent/claims"))
            .bearer_auth(&token)
            .timeout(Duration::from_secs(120))
            .send()
            .await;
        let r = match r {
            Ok(r) => r,
            Err(e) => {
                failures += 1;
                match killable {
                    Some(k) if base == bases[k] => dead.insert(base),
                    _ => panic!("claim at {base} failed: {e}"),
                };
                continue;
            }
        };
        match r.status().as_u16() {
            200 => {
                let v: Value = match r.json().await {
                    Ok(v) => v,
                    Err(e) => {
                        failures += 1;
                        match killable {
                            Some(k) if base == bases[k] => dead.insert(base),
                            _ => panic!("claim answer from {base} lost: {e}"),
                        };
                        continue;
                    }
                };
                mine.push(v["conversation"]["id"].as_str().unwrap().to_string());
                claims.fetch_add(1, Ordering::SeqCst);
            }
            204 | 409 => return mine,
            other => panic!("claim answered {other}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_agents_on_two_instances_claim_two_hundred_conversations_exactly_once() {
    let db = PgDatabase::create().await;
    let a = instance(&db).await;
    let b = instance(&db).await;
    let bases = vec![a.base.clone(), b.base.clone()];
    let client = a.client.clone();
    let conversations = hand_offs(&client, &bases, 200).await;
    let mut tokens = Vec::new();
    for n in 0..50 {
        tokens.push(create_agent(&client, &bases[n % 2], &format!("agent-{n}"), 5).await);
    }
    let claims = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = tokens
        .iter()
        .enumerate()
        .map(|(n, t)| {
            tokio::spawn(claim_all(
                client.clone(),
                bases.clone(),
                t.clone(),
                n,
                claims.clone(),
                None,
            ))
        })
        .collect();
    let mut owner: HashMap<String, usize> = HashMap::new();
    for (n, t) in tasks.into_iter().enumerate() {
        let mine = t.await.unwrap();
        assert!(mine.len() <= 5, "agent {n} over capacity: {}", mine.len());
        for id in mine {
            assert!(owner.insert(id.clone(), n).is_none(), "{id} claimed twice");
        }
    }
    assert_eq!(owner.len(), 200);
    for id in &conversations {
        assert!(owner.contains_key(id), "{id} never claimed");
    }
    let dir = tempfile::tempdir().unwrap();
    let waiting = assert_stored_claims(&db, dir.path(), &conversations, &owner).await;
    assert!(waiting.is_empty(), "{} still waiting", waiting.len());
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_one_instance_mid_claims_loses_no_conversation_and_doubles_none() {
    crate::helpers::prepare();
    let db = PgDatabase::create().await;
    let a = instance(&db).await;
    let b_dir = tempfile::tempdir().unwrap();
    let (mut b, b_base) = crate::durability::start_with(b_dir.path(), &["--database-url", &db.url]);
    let bases = vec![a.base.clone(), b_base.clone()];
    let client = a.client.clone();
    let conversations = hand_offs(&client, &bases, 200).await;
    let mut tokens = Vec::new();
    for n in 0..50 {
        tokens.push(create_agent(&client, &bases[n % 2], &format!("agent-{n}"), 5).await);
    }
    let claims = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = tokens
        .iter()
        .enumerate()
        .map(|(n, t)| {
            tokio::spawn(claim_all(
                client.clone(),
                bases.clone(),
                t.clone(),
                n,
                claims.clone(),
                Some(1),
            ))
        })
        .collect();
    // Kill -9 instance B once a quarter of the queue is claimed.
    let began = Instant::now();
    while claims.load(Ordering::SeqCst) < 50 && began.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    b.kill().unwrap();
    b.wait().unwrap();
    let mut reported: HashMap<String, usize> = HashMap::new();
    for (n, t) in tasks.into_iter().enumerate() {
        for id in t.await.unwrap() {
            assert!(
                reported.insert(id.clone(), n).is_none(),
                "{id} handed out twice"
            );
        }
    }
    assert_stored_claims(&db, b_dir.path(), &conversations, &reported).await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_message_posted_to_one_instance_reaches_an_agent_connected_to_the_other() {
    let db = PgDatabase::create().await;
    let a = instance(&db).await;
    let b = instance(&db).await;
    let token = create_agent(&b.client, &b.base, "watcher", 5).await;
    let ws_url = format!(
        "{}/api/v1/agent/events?token={token}",
        b.base.replace("http://", "ws://")
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url).await.unwrap();
    // Let the connection reach the live part of its stream.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let answer = a
        .say("cross-1", "I want to talk to a real person please", None)
        .await;
    let sent = Instant::now();
    let (id, _) = conv(&answer);
    let arrived = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(Ok(frame)) = ws.next().await {
            if let Ok(text) = frame.into_text() {
                let v: Value = serde_json::from_str(&text).unwrap_or_default();
                if v["conversation_id"] == id.as_str() {
                    return v;
                }
            }
        }
        panic!("the agent's connection closed");
    })
    .await
    .expect("the handoff on instance A reaches instance B's agent");
    println!(
        "cross-instance push: {} {:?} after the answer on A",
        arrived["type"],
        sent.elapsed()
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn instances_share_tokens_and_retry_keys() {
    let db = PgDatabase::create().await;
    let a = instance(&db).await;
    let b = instance(&db).await;
    // A conversation token issued by A opens the conversation on B.
    let first = a.say("shared-1", "hello", None).await;
    let (id, token) = conv(&first);
    assert_eq!(b.get_conversation(&id, Some(&token)).await.status(), 200);
    // The same retry key sent to both instances at once stores one message, one answer.
    let body = json!({"conversation_id": id, "text": "where is my order", "client_message_id": "same-key"});
    let (ra, rb) = tokio::join!(
        a.post(body.clone(), Some(&token)),
        b.post(body, Some(&token))
    );
    assert_eq!(ra.status(), 200);
    assert_eq!(rb.status(), 200);
    let (va, vb): (Value, Value) = (ra.json().await.unwrap(), rb.json().await.unwrap());
    assert_eq!(va["replies"], vb["replies"]);
    let transcript: Value = b
        .get_conversation(&id, Some(&token))
        .await
        .json()
        .await
        .unwrap();
    let shopper_messages = transcript["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["text"] == "where is my order")
        .count();
    assert_eq!(shopper_messages, 1, "{transcript}");
    // Admin and agent credentials work on either instance.
    let agent = create_agent(&a.client, &a.base, "either", 2).await;
    let r = b
        .client
        .get(format!("{}/api/v1/agent/queue", b.base))
        .bearer_auth(&agent)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // And the agent exists once, in the shared database.
    let store = Backend::open(Some(&db.url), std::path::Path::new("unused"))
        .await
        .unwrap()
        .store();
    assert_eq!(store.agents().await.unwrap().len(), 1);
    let _ = store
        .conversation(switchboard::domain::ConversationId::parse(&id).unwrap())
        .await
        .unwrap()
        .unwrap();
    a.stop().await;
    b.stop().await;
}

/// The database is the truth: every conversation is held by exactly one agent or waiting;
/// every claim the API reported is the stored one; nobody is over capacity. Returns the
/// conversations still waiting.
async fn assert_stored_claims(
    db: &PgDatabase,
    data_dir: &std::path::Path,
    conversations: &[String],
    reported: &HashMap<String, usize>,
) -> HashSet<String> {
    let store = Backend::open(Some(&db.url), data_dir)
        .await
        .unwrap()
        .store();
    let waiting: HashSet<String> = store
        .waiting(1000)
        .await
        .unwrap()
        .iter()
        .map(|c| c.id.to_string())
        .collect();
    let mut held: HashMap<String, String> = HashMap::new();
    for agent in store.agents().await.unwrap() {
        let theirs = store.held_by(&agent.id).await.unwrap();
        assert!(theirs.len() <= 5, "{} holds {}", agent.id, theirs.len());
        for c in theirs {
            assert!(
                held.insert(c.id.to_string(), agent.id.to_string())
                    .is_none()
            );
        }
    }
    for id in conversations {
        assert!(
            held.contains_key(id) ^ waiting.contains(id),
            "{id} lost or in two places"
        );
    }
    for (id, n) in reported {
        assert_eq!(held.get(id), Some(&format!("agent-{n}")), "{id}");
    }
    assert_eq!(held.len() + waiting.len(), conversations.len());
    waiting
}
