//! `switchboard loadtest`: drives a running server with simulated users for a fixed time and
//! prints throughput and latency percentiles per kind of step.
//!
//! Each simulated user is an [`Actor`] on its own task that performs one step at a time (a
//! shopper posts a message, continuing its conversation for `--turns` messages and then
//! starting a new one). The report is kept per step name, so other kinds of users — an agent
//! that claims a waiting conversation, replies and resolves it — are another `Actor` with
//! their own step names, spawned beside the shoppers in [`run`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Value, json};

/// Options of `switchboard loadtest`.
#[derive(Debug, Clone, clap::Args)]
pub struct LoadtestArgs {
    /// Base URL of the running server; several (repeated or comma-separated) spread the
    /// shoppers and agents over instances sharing one database, round-robin.
    #[arg(long, default_value = "http://127.0.0.1:8080", value_delimiter = ',')]
    pub url: Vec<String>,
    /// Simulated shoppers, each with one request in flight at a time.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Seconds to run (after a one-second warm-up that is not counted).
    #[arg(long, default_value_t = 20)]
    pub duration: u64,
    /// Messages per conversation before a shopper starts a new one.
    #[arg(long, default_value_t = 1)]
    pub turns: usize,
    /// JSONL file of shopper messages ({"text": ...} per line), used in turn.
    #[arg(long, default_value = "tests/fixtures/product_intents.jsonl")]
    pub texts: PathBuf,
    /// Customer ids the shoppers write as, in turn (default: the demo customers).
    #[arg(long, value_delimiter = ',')]
    pub customers: Vec<String>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// The server's identity secret, to sign the customers' ids [default: DATA_DIR's
    /// identity-secret when readable; otherwise the shoppers write anonymously].
    #[arg(long, env = "SWITCHBOARD_IDENTITY_SECRET", hide_env_values = true)]
    pub identity_secret: Option<String>,
    /// Data directory of the server (for its generated identity secret and admin token).
    #[arg(long, default_value = "data")]
    pub data_dir: PathBuf,
    /// Simulated agents working the queue: claim the next conversation, reply, resolve.
    #[arg(long, default_value_t = 0)]
    pub agents: usize,
    /// Every Nth shopper message asks for a person (0: never), feeding the agents' queue.
    #[arg(long, default_value_t = 5)]
    pub handoff_every: usize,
    /// The admin token, to create the agents [default: DATA_DIR/admin-token].
    #[arg(long, env = "SWITCHBOARD_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
}

/// What one step did.
#[derive(Debug)]
pub struct StepOutcome {
    /// The step's name in the report, e.g. `shopper_message`.
    pub step: &'static str,
    /// HTTP status, or `None` when the request failed before an answer.
    pub status: Option<u16>,
}

/// A simulated user.
#[async_trait::async_trait]
pub trait Actor: Send {
    /// Performs the next step against the server.
    async fn step(&mut self, http: &reqwest::Client) -> StepOutcome;
}

/// A shopper posting messages to `/api/v1/messages`.
pub struct Shopper {
    base: String,
    customer: String,
    /// The customer's `customer_hash`; anonymous without one.
    hash: Option<String>,
    handoff_every: usize,
    sent_total: usize,
    texts: Arc<Vec<String>>,
    next_text: usize,
    turns: usize,
    /// The open conversation's id and token, and the messages sent in it.
    conversation: Option<(String, String, usize)>,
}

impl Shopper {
    pub fn new(
        base: &str,
        customer: String,
        hash: Option<String>,
        texts: Arc<Vec<String>>,
        first: usize,
        turns: usize,
    ) -> Self {
        Self {
            base: base.trim_end_matches('/').to_string(),
            customer,
            hash,
            handoff_every: 0,
            sent_total: 0,
            texts,
            next_text: first,
            turns: turns.max(1),
            conversation: None,
        }
    }
}

#[async_trait::async_trait]
impl Actor for Shopper {
    async fn step(&mut self, http: &reqwest::Client) -> StepOutcome {
        self.sent_total += 1;
        let handoff = self.handoff_every > 0 && self.sent_total.is_multiple_of(self.handoff_every);
        let text = if handoff {
            "I want to talk to a real person please"
        } else {
            &self.texts[self.next_text % self.texts.len()]
        };
        self.next_text += 1;
        let mut body = json!({ "text": text });
        let mut req = http.post(format!("{}/api/v1/messages", self.base));
        if let Some((id, token, _)) = &self.conversation {
            body["conversation_id"] = id.clone().into();
            req = req.bearer_auth(token);
        } else if let Some(h) = &self.hash {
            body["customer_id"] = self.customer.clone().into();
            body["customer_hash"] = h.clone().into();
        }
        let step = if handoff {
            "shopper_handoff"
        } else {
            "shopper_message"
        };
        let resp = match req.json(&body).send().await {
            Ok(r) => r,
            Err(_) => return StepOutcome { step, status: None },
        };
        let status = resp.status().as_u16();
        let answer: Option<Value> = resp.json().await.ok();
        let sent = self.conversation.as_ref().map_or(0, |c| c.2) + 1;
        self.conversation = match answer {
            Some(a) if status == 200 && sent < self.turns && !handoff => {
                let field = |k: &str| a[k].as_str().unwrap_or_default().to_string();
                Some((field("conversation_id"), field("conversation_token"), sent))
            }
            _ => None,
        };
        StepOutcome {
            step,
            status: Some(status),
        }
    }
}

/// An agent working the queue: claims the next conversation, replies once, resolves it.
pub struct AgentWorker {
    base: String,
    token: String,
    /// The conversation held, and whether it was answered yet.
    holding: Option<(String, bool)>,
}

#[async_trait::async_trait]
impl Actor for AgentWorker {
    async fn step(&mut self, http: &reqwest::Client) -> StepOutcome {
        let post = |path: String, body: Value| {
            http.post(format!("{}{path}", self.base))
                .bearer_auth(&self.token)
                .json(&body)
                .send()
        };
        match self.holding.clone() {
            None => {
                let r = post("/api/v1/agent/claims".into(), json!({})).await;
                let status = r.as_ref().ok().map(|r| r.status().as_u16());
                if status == Some(200)
                    && let Ok(r) = r
                    && let Ok(v) = r.json::<Value>().await
                {
                    let id = v["conversation"]["id"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string();
                    self.holding = Some((id, false));
                    return StepOutcome {
                        step: "agent_claim",
                        status,
                    };
                }
                // Nothing waiting: look again shortly (not counted as a claim).
                tokio::time::sleep(Duration::from_millis(20)).await;
                StepOutcome {
                    step: "agent_claim_empty",
                    status,
                }
            }
            Some((id, false)) => {
                let r = post(
                    format!("/api/v1/agent/conversations/{id}/messages"),
                    json!({"text": "Hi, this is the support team. Let me look into that for you."}),
                )
                .await;
                self.holding = Some((id, true));
                StepOutcome {
                    step: "agent_reply",
                    status: r.ok().map(|r| r.status().as_u16()),
                }
            }
            Some((id, true)) => {
                let r = post(
                    format!("/api/v1/agent/conversations/{id}/resolve"),
                    json!({"code": "answered"}),
                )
                .await;
                self.holding = None;
                StepOutcome {
                    step: "agent_resolve",
                    status: r.ok().map(|r| r.status().as_u16()),
                }
            }
        }
    }
}

/// Creates `n` load-test agents and returns their tokens.
async fn create_agents(
    http: &reqwest::Client,
    base: &str,
    admin: &str,
    n: usize,
) -> anyhow::Result<Vec<String>> {
    let run = uuid::Uuid::new_v4().simple().to_string();
    let mut tokens = Vec::new();
    for i in 0..n {
        let r = http
            .post(format!("{base}/api/v1/agents"))
            .bearer_auth(admin)
            .json(
                &json!({"id": format!("lt-{}-{i}", &run[..8]), "name": format!("Load agent {i}"),
                "teams": ["general", "quality", "logistics", "refunds"], "capacity": 1}),
            )
            .send()
            .await?;
        anyhow::ensure!(r.status() == 201, "creating an agent: HTTP {}", r.status());
        let v: Value = r.json().await?;
        tokens.push(v["token"].as_str().unwrap_or_default().to_string());
    }
    Ok(tokens)
}

/// Latencies and failures of one step name.
#[derive(Debug, Default)]
struct StepStats {
    ok_ms: Vec<f64>,
    failed: BTreeMap<String, usize>,
}

/// The result of a run, per step name.
#[derive(Debug, serde::Serialize)]
pub struct StepReport {
    pub step: String,
    pub ok: usize,
    pub failed: BTreeMap<String, usize>,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// Runs the load test and returns one report per step name.
pub async fn run(args: &LoadtestArgs) -> anyhow::Result<Vec<StepReport>> {
    let texts: Vec<String> = crate::nlu::data::load_jsonl(&args.texts)
        .with_context(|| format!("reading {}", args.texts.display()))?
        .into_iter()
        .map(|e| e.text)
        .collect();
    anyhow::ensure!(!texts.is_empty(), "no texts in {}", args.texts.display());
    let texts = Arc::new(texts);
    let customers: Vec<String> = if args.customers.is_empty() {
        (1001..=1006)
            .chain(2001..=2006)
            .map(|n| format!("c-{n}"))
            .collect()
    } else {
        args.customers.clone()
    };
    let secret = args.identity_secret.clone().or_else(|| {
        std::fs::read_to_string(args.data_dir.join("identity-secret"))
            .ok()
            .map(|s| s.trim().to_string())
    });
    let hash = |c: &str| {
        let id = crate::domain::CustomerId::parse(c).ok()?;
        secret
            .as_deref()
            .map(|s| crate::identity::sign_with(s, &id))
    };
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency + args.agents)
        .timeout(Duration::from_secs(30))
        .build()?;
    let warmup = Duration::from_secs(1);
    let measured = Duration::from_secs(args.duration.max(1));
    let start = Instant::now();
    let (counted_from, until) = (start + warmup, start + warmup + measured);
    let bases: Vec<String> = args
        .url
        .iter()
        .map(|u| u.trim_end_matches('/').to_string())
        .collect();
    anyhow::ensure!(!bases.is_empty(), "--url names no server");
    let base = bases[0].clone();
    let agent_tokens = if args.agents > 0 {
        let admin = match &args.admin_token {
            Some(t) => t.clone(),
            None => std::fs::read_to_string(args.data_dir.join("admin-token"))
                .context("--agents needs --admin-token or a readable DATA_DIR/admin-token")?
                .trim()
                .to_string(),
        };
        create_agents(&http, &base, &admin, args.agents).await?
    } else {
        Vec::new()
    };
    let mut actors: Vec<Box<dyn Actor>> = Vec::new();
    for i in 0..args.concurrency.max(1) {
        let customer = customers[i % customers.len()].clone();
        let mut shopper = Shopper::new(
            &bases[i % bases.len()],
            customer.clone(),
            hash(&customer),
            texts.clone(),
            i * 7,
            args.turns,
        );
        shopper.handoff_every = if args.agents > 0 {
            args.handoff_every
        } else {
            0
        };
        actors.push(Box::new(shopper));
    }
    for (j, token) in agent_tokens.into_iter().enumerate() {
        actors.push(Box::new(AgentWorker {
            base: bases[j % bases.len()].clone(),
            token,
            holding: None,
        }));
    }
    let mut tasks = Vec::new();
    for mut actor in actors {
        let http = http.clone();
        tasks.push(tokio::spawn(async move {
            let mut stats: BTreeMap<&'static str, StepStats> = BTreeMap::new();
            while Instant::now() < until {
                let t0 = Instant::now();
                let outcome = actor.step(&http).await;
                if t0 < counted_from {
                    continue;
                }
                let s = stats.entry(outcome.step).or_default();
                match outcome.status {
                    Some(200..=299) => s.ok_ms.push(t0.elapsed().as_secs_f64() * 1000.0),
                    Some(code) => *s.failed.entry(code.to_string()).or_default() += 1,
                    None => *s.failed.entry("connection".into()).or_default() += 1,
                }
            }
            stats
        }));
    }
    let mut all: BTreeMap<&'static str, StepStats> = BTreeMap::new();
    for t in tasks {
        for (step, s) in t.await? {
            let a = all.entry(step).or_default();
            a.ok_ms.extend(s.ok_ms);
            for (k, v) in s.failed {
                *a.failed.entry(k).or_default() += v;
            }
        }
    }
    let secs = measured.as_secs_f64();
    Ok(all
        .into_iter()
        .map(|(step, mut s)| {
            s.ok_ms.sort_by(f64::total_cmp);
            let p = |q| crate::nlu::eval::percentile(&s.ok_ms, q);
            StepReport {
                step: step.to_string(),
                ok: s.ok_ms.len(),
                per_second: s.ok_ms.len() as f64 / secs,
                p50_ms: p(0.5),
                p90_ms: p(0.9),
                p99_ms: p(0.99),
                max_ms: s.ok_ms.last().copied().unwrap_or(0.0),
                failed: s.failed,
            }
        })
        .collect())
}

/// `switchboard loadtest`: runs and prints the report.
pub fn main(args: LoadtestArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let reports = runtime.block_on(run(&args))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
        return Ok(());
    }
    println!(
        "{} for {} s, concurrency {}, {} message(s) per conversation",
        args.url.join(" + "),
        args.duration,
        args.concurrency,
        args.turns
    );
    for r in &reports {
        println!(
            "{}: {:.0}/s ({} ok, failed {:?}), p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            r.step, r.per_second, r.ok, r.failed, r.p50_ms, r.p90_ms, r.p99_ms, r.max_ms
        );
    }
    Ok(())
}
