//! Crash safety: the real binary is killed with SIGKILL while shoppers are writing; after a
//! restart every acknowledged message is there exactly once.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{ADMIN, IDENTITY, root, signed};

/// Starts `switchboard serve` on port 0 and returns it with its base URL.
fn start(data_dir: &std::path::Path) -> (Child, String) {
    start_with(data_dir, &[])
}

/// Starts `switchboard serve` on port 0 with extra arguments.
pub(crate) fn start_with(data_dir: &std::path::Path, extra: &[&str]) -> (Child, String) {
    let r = root();
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .current_dir(&r)
        .args(["serve", "--listen", "127.0.0.1:0", "--admin-token", ADMIN])
        .args(["--identity-secret", IDENTITY])
        .args(extra)
        .arg("--data-dir")
        .arg(data_dir)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(addr) = line.split("addr=").nth(1) {
                let _ = tx.send(addr.split_whitespace().next().unwrap_or("").to_string());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(300))
        .expect("server reports its address");
    (child, format!("http://{addr}"))
}

#[tokio::test]
async fn kill_9_loses_no_acknowledged_message_and_duplicates_none() {
    crate::helpers::prepare();
    let data = tempfile::tempdir().unwrap();
    let (mut child, base) = start(data.path());
    let client = reqwest::Client::new();
    // Eight shoppers write in parallel; the process is killed while they do.
    let mut tasks = Vec::new();
    for s in 0..8 {
        let client = client.clone();
        let base = base.clone();
        tasks.push(tokio::spawn(async move {
            let mut acked: Vec<(String, String)> = Vec::new();
            let mut conv: Option<(String, String)> = None;
            for i in 0..50 {
                let key = format!("s{s}-m{i}");
                let mut body = signed(json!({"customer_id": format!("c-20{s:02}"), "text": format!("hello number {i}"), "client_message_id": key}));
                let mut req = client.post(format!("{base}/api/v1/messages"));
                if let Some((id, token)) = &conv {
                    body = json!({"conversation_id": id, "text": format!("hello number {i}"), "client_message_id": key});
                    req = req.bearer_auth(token);
                }
                match req.json(&body).send().await {
                    Ok(r) if r.status() == 200 => {
                        let v: Value = r.json().await.unwrap();
                        let id = v["conversation_id"].as_str().unwrap().to_string();
                        conv.get_or_insert((id.clone(), v["conversation_token"].as_str().unwrap().to_string()));
                        acked.push((id, key));
                    }
                    _ => break,
                }
            }
            acked
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let mut acked = Vec::new();
    for t in tasks {
        acked.extend(t.await.unwrap());
    }
    assert!(
        !acked.is_empty(),
        "some messages were acknowledged before the kill"
    );

    let (mut child, base) = start(data.path());
    for (id, key) in &acked {
        let c: Value = client
            .get(format!("{base}/api/v1/conversations/{id}"))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let n = c["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| {
                m["author"] == "shopper"
                    && m["text"] == format!("hello number {}", key.split("-m").nth(1).unwrap())
            })
            .count();
        assert_eq!(
            n, 1,
            "acknowledged message {key} must be stored exactly once"
        );
    }
    // A retry of an acknowledged message after the restart is a replay, not a new message.
    let (id, key) = &acked[0];
    let customer = format!("c-20{:02}", key[1..2].parse::<u32>().unwrap());
    let body = signed(
        json!({"customer_id": customer, "text": "hello number 0", "client_message_id": key}),
    );
    let v: Value = client
        .post(format!("{base}/api/v1/messages"))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["replayed"], true, "{v}");
    assert_eq!(&v["conversation_id"], id);
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test]
async fn kill_9_during_claims_leaves_every_conversation_waiting_or_held() {
    crate::helpers::prepare();
    let data = tempfile::tempdir().unwrap();
    let (mut child, base) = start(data.path());
    let client = reqwest::Client::new();
    let mut ids = Vec::new();
    for i in 0..24 {
        let body = signed(
            json!({"customer_id": format!("k-{i}"), "text": "I want to talk to a real person please"}),
        );
        let v: Value = client
            .post(format!("{base}/api/v1/messages"))
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(v["state"], "waiting_for_human", "{v}");
        ids.push(v["conversation_id"].as_str().unwrap().to_string());
    }
    let mut tokens = Vec::new();
    for a in 0..6 {
        let v: Value = client
            .post(format!("{base}/api/v1/agents"))
            .bearer_auth(ADMIN)
            .json(&json!({"id": format!("k{a}"), "name": "K", "capacity": 3, "teams": ["general", "quality", "logistics", "refunds"]}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        tokens.push(v["token"].as_str().unwrap().to_string());
    }
    // Claims race while the process is killed.
    let mut tasks = Vec::new();
    for i in 0..30 {
        let client = client.clone();
        let url = format!("{base}/api/v1/agent/claims");
        let token = tokens[i % tokens.len()].clone();
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20 * i as u64)).await;
            match client.post(url).bearer_auth(&token).send().await {
                Ok(r) if r.status() == 200 => {
                    let v: Value = r.json().await.unwrap_or_default();
                    v["conversation"]["id"].as_str().map(str::to_string)
                }
                _ => None,
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    child.kill().unwrap();
    child.wait().unwrap();
    let mut acknowledged = Vec::new();
    for t in tasks {
        if let Some(id) = t.await.unwrap() {
            acknowledged.push(id);
        }
    }

    let (mut child, base) = start(data.path());
    let mut held: std::collections::HashMap<String, usize> = Default::default();
    for id in &ids {
        let c: Value = client
            .get(format!("{base}/api/v1/conversations/{id}"))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        match c["state"].as_str().unwrap() {
            "waiting_for_human" => assert!(c.get("agent_id").is_none(), "{c}"),
            "with_human" => {
                *held
                    .entry(c["agent_id"].as_str().unwrap().to_string())
                    .or_default() += 1
            }
            other => panic!("conversation {id} is {other} after the crash"),
        }
    }
    for id in &acknowledged {
        let c: Value = client
            .get(format!("{base}/api/v1/conversations/{id}"))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            c["state"], "with_human",
            "an acknowledged claim survives: {c}"
        );
    }
    assert!(held.values().all(|n| *n <= 3), "{held:?}");
    child.kill().unwrap();
    child.wait().unwrap();
}
