//! `switchboard simulate`: a capacity planner. Runs the real ticket and queue-order functions
//! in simulated time (discrete events: arrivals, agents finishing) against an arrival stream,
//! from a JSONL file or generated from a seeded Poisson process with the policy's tier and
//! intent mix, and reports per tier how many were answered within their SLA and how long they
//! waited.
//!
//! Simplifications, stated so a manager can judge the numbers: every agent takes every team and
//! language and one conversation at a time; "answered" means an agent picked the conversation
//! (the first response follows at once); nobody abandons the queue.

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BinaryHeap};
use std::fmt::Write as _;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::{DateTime, Duration, Utc};
use rand::distributions::{Distribution, WeightedIndex};
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::domain::{ConversationId, Customer, CustomerId, Lang, Tier};
use crate::routing::policy::{RoutingPolicy, SimulationMix};
use crate::routing::queue::{Discipline, QueueEntry};
use crate::routing::ticket::{TicketInput, ticket};

/// Options of `switchboard simulate`.
#[derive(Debug, Clone, clap::Args)]
pub struct SimulateArgs {
    /// Routing policy file [default: the compiled-in config/routing.toml].
    #[arg(long, env = "SWITCHBOARD_ROUTING_POLICY")]
    pub policy: Option<PathBuf>,
    /// Agents answering, each handling one conversation at a time.
    #[arg(long)]
    pub agents: usize,
    /// Arrivals, one JSON object per line: {"at_s", "handle_s", "membership"?,
    /// "lifetime_spend_cents"?, "order_count"?, "complaints_90d"?, "intent"?, "angry"?,
    /// "recent_contacts_7d"?, "lang"?}.
    #[arg(long, conflicts_with_all = ["rate", "hours", "seed"])]
    pub arrivals: Option<PathBuf>,
    /// Generated arrivals per hour (a Poisson process with the policy's [simulation] mix).
    #[arg(long, required_unless_present = "arrivals")]
    pub rate: Option<f64>,
    /// Hours of generated arrivals.
    #[arg(long, default_value_t = 8.0)]
    pub hours: f64,
    /// Seed of the generated arrivals (the same seed gives the same arrivals).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Queue order: the policy (earliest SLA deadline first) or first come, first served.
    #[arg(long, value_enum, default_value_t = Order::Policy)]
    pub order: Order,
    /// Simulated start time (RFC 3339); matters only for teams with business hours.
    #[arg(long, default_value = "2026-11-23T09:00:00Z")]
    pub start: DateTime<Utc>,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// The `--order` flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Order {
    Policy,
    Fifo,
}

impl From<Order> for Discipline {
    fn from(o: Order) -> Self {
        match o {
            Order::Policy => Discipline::Deadline,
            Order::Fifo => Discipline::Fifo,
        }
    }
}

/// Why a simulation cannot run.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("cannot read arrivals {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("arrivals line {line}: {reason}")]
    Arrival { line: usize, reason: String },
    #[error("{0}")]
    Options(String),
}

/// One shopper handed to a human: who they are, what they want, how long an agent needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Arrival {
    /// Seconds after the simulation starts.
    pub at_s: i64,
    /// Seconds an agent spends on the conversation.
    pub handle_s: i64,
    #[serde(default)]
    pub membership: Tier,
    #[serde(default)]
    pub lifetime_spend_cents: i64,
    #[serde(default)]
    pub order_count: i64,
    #[serde(default)]
    pub complaints_90d: i64,
    #[serde(default)]
    pub intent: Option<String>,
    #[serde(default)]
    pub angry: bool,
    #[serde(default = "one")]
    pub recent_contacts_7d: u32,
    #[serde(default)]
    pub lang: Lang,
}

fn one() -> u32 {
    1
}

/// Reads a JSONL arrivals file.
pub fn read_arrivals(path: &Path) -> Result<Vec<Arrival>, SimError> {
    let read_err = |source| SimError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_err)?;
    let mut out = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(read_err)?;
        if line.trim().is_empty() {
            continue;
        }
        let a: Arrival = serde_json::from_str(&line).map_err(|e| SimError::Arrival {
            line: i + 1,
            reason: e.to_string(),
        })?;
        if a.at_s < 0 || a.handle_s <= 0 {
            return Err(SimError::Arrival {
                line: i + 1,
                reason: "at_s must be >= 0 and handle_s > 0".into(),
            });
        }
        out.push(a);
    }
    Ok(out)
}

/// Arrivals of a Poisson process of `rate_per_hour` over `hours`, drawn with a seeded RNG
/// from the policy's mix: membership and intent by weight, anger by share, handle times
/// exponential around the mean (at least a minute). The same seed gives the same arrivals.
pub fn generate(
    mix: &SimulationMix,
    rate_per_hour: f64,
    hours: f64,
    seed: u64,
) -> Result<Vec<Arrival>, SimError> {
    if !(rate_per_hour.is_finite() && rate_per_hour > 0.0) {
        return Err(SimError::Options("--rate must be a positive number".into()));
    }
    if !(hours.is_finite() && hours > 0.0) {
        return Err(SimError::Options(
            "--hours must be a positive number".into(),
        ));
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let by_weight = |w: Vec<f64>| WeightedIndex::new(w).expect("validated weights");
    let membership = by_weight(mix.membership.iter().map(|(_, w)| *w).collect());
    let intents = by_weight(mix.intents.iter().map(|(_, w)| *w).collect());
    let mean_handle = mix.handle_mean.num_seconds() as f64;
    let horizon = hours * 3600.0;
    let mut t = 0.0;
    let mut out = Vec::new();
    loop {
        // Exponential gaps; 1 - u is in (0, 1], so the logarithm is finite.
        t += -(1.0 - rng.r#gen::<f64>()).ln() * 3600.0 / rate_per_hour;
        if t >= horizon {
            return Ok(out);
        }
        let handle = (-(1.0 - rng.r#gen::<f64>()).ln() * mean_handle).max(60.0);
        out.push(Arrival {
            at_s: t as i64,
            handle_s: handle.round() as i64,
            membership: mix.membership[membership.sample(&mut rng)].0,
            lifetime_spend_cents: 0,
            order_count: 0,
            complaints_90d: 0,
            intent: Some(mix.intents[intents.sample(&mut rng)].0.clone()),
            angry: rng.gen_bool(mix.angry_share),
            recent_contacts_7d: 1,
            lang: Lang::En,
        });
    }
}

/// One conversation's fate in a simulation.
#[derive(Debug, Clone, PartialEq)]
pub struct Served {
    /// Index into the arrivals.
    pub arrival: usize,
    pub tier: String,
    pub arrived: DateTime<Utc>,
    pub sla_due: DateTime<Utc>,
    /// When an agent picked it.
    pub started: DateTime<Utc>,
}

impl Served {
    pub fn wait(&self) -> Duration {
        self.started - self.arrived
    }
    pub fn within_sla(&self) -> bool {
        self.started <= self.sla_due
    }
}

/// A waiting conversation in the simulator's heap, ordered so the next to serve is the max.
struct Waiting {
    entry: QueueEntry,
    arrival: usize,
    tier: String,
    discipline: Discipline,
}

impl PartialEq for Waiting {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Waiting {}
impl PartialOrd for Waiting {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Waiting {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed: the entry served first is the heap's maximum.
        self.discipline.compare(&other.entry, &self.entry)
    }
}

/// Runs the queue: each arrival gets its ticket from the policy at its arrival time; whenever
/// an agent is free, they take the first waiting conversation in `discipline` order. Returns
/// every arrival's fate, in the order they were picked.
pub fn simulate(
    arrivals: &[Arrival],
    agents: usize,
    discipline: Discipline,
    policy: &RoutingPolicy,
    start: DateTime<Utc>,
) -> Result<Vec<Served>, SimError> {
    if agents == 0 {
        return Err(SimError::Options("--agents must be at least 1".into()));
    }
    let mut by_time: Vec<usize> = (0..arrivals.len()).collect();
    by_time.sort_by_key(|&i| arrivals[i].at_s);
    let at = |i: usize| start + Duration::seconds(arrivals[i].at_s);

    let mut free: BinaryHeap<Reverse<(DateTime<Utc>, usize)>> =
        (0..agents).map(|a| Reverse((start, a))).collect();
    let mut waiting = BinaryHeap::new();
    let mut served = Vec::with_capacity(arrivals.len());
    let mut next = 0;
    while served.len() < arrivals.len() {
        let Reverse((now, agent)) = free.pop().expect("agents never leave");
        // Everyone who arrived by the time this agent is free joins the queue first.
        while next < by_time.len() && at(by_time[next]) <= now {
            let i = by_time[next];
            waiting.push(enqueue(&arrivals[i], i, at(i), discipline, policy));
            next += 1;
        }
        match waiting.pop() {
            Some(w) => {
                served.push(Served {
                    arrival: w.arrival,
                    tier: w.tier,
                    arrived: w.entry.waiting_since,
                    sla_due: w.entry.sla_due,
                    started: now,
                });
                free.push(Reverse((
                    now + Duration::seconds(arrivals[w.arrival].handle_s),
                    agent,
                )));
            }
            // Idle until the next shopper arrives (one must: not everyone is served yet).
            None => free.push(Reverse((at(by_time[next]), agent))),
        }
    }
    Ok(served)
}

/// The queue entry of an arrival, ticketed by the real policy at its arrival time.
fn enqueue(
    a: &Arrival,
    index: usize,
    now: DateTime<Utc>,
    discipline: Discipline,
    policy: &RoutingPolicy,
) -> Waiting {
    let customer = Customer {
        tier: a.membership,
        lifetime_spend_cents: a.lifetime_spend_cents,
        order_count: a.order_count,
        complaints_90d: a.complaints_90d,
        ..Customer::unknown(CustomerId::parse("sim").expect("valid id"), a.lang)
    };
    let t = ticket(
        &TicketInput {
            customer: &customer,
            intent: a.intent.as_deref(),
            reason_code: "simulated",
            angry: a.angry,
            recent_contacts_7d: a.recent_contacts_7d,
            lang: a.lang,
            now,
        },
        policy,
    );
    Waiting {
        entry: QueueEntry {
            conversation_id: ConversationId(uuid::Uuid::from_u128(index as u128)),
            waiting_since: now,
            sla_due: t.sla_due,
            priority: t.priority,
            team: t.team,
            lang: t.lang,
        },
        arrival: index,
        tier: t.tier,
        discipline,
    }
}

/// Per-tier results.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TierReport {
    /// Share picked by an agent by their `sla_due` (1.0 when the tier had no arrivals).
    pub within_sla: f64,
    pub p50_wait_s: i64,
    pub p95_wait_s: i64,
    pub max_wait_s: i64,
    pub count: usize,
    pub breaches: usize,
}

/// The whole simulation's results; `--json` prints exactly this.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub tiers: BTreeMap<String, TierReport>,
    pub max_wait_s: i64,
}

/// Summarises the fates per policy tier (every tier listed, even without arrivals).
pub fn report(served: &[Served], policy: &RoutingPolicy) -> Report {
    let mut tiers = BTreeMap::new();
    for tier in &policy.tiers {
        let mine: Vec<&Served> = served.iter().filter(|s| s.tier == tier.name).collect();
        let mut waits: Vec<i64> = mine.iter().map(|s| s.wait().num_seconds()).collect();
        waits.sort_unstable();
        let within = mine.iter().filter(|s| s.within_sla()).count();
        let share = if mine.is_empty() {
            1.0
        } else {
            within as f64 / mine.len() as f64
        };
        tiers.insert(
            tier.name.clone(),
            TierReport {
                within_sla: (share * 10_000.0).round() / 10_000.0,
                p50_wait_s: percentile(&waits, 0.50),
                p95_wait_s: percentile(&waits, 0.95),
                max_wait_s: waits.last().copied().unwrap_or(0),
                count: mine.len(),
                breaches: mine.len() - within,
            },
        );
    }
    Report {
        tiers,
        max_wait_s: served
            .iter()
            .map(|s| s.wait().num_seconds())
            .max()
            .unwrap_or(0),
    }
}

/// Nearest-rank percentile of sorted values (0 for none).
fn percentile(sorted: &[i64], q: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Seconds as `1h05m`, `4m10s` or `35s`.
fn human(s: i64) -> String {
    match s {
        s if s >= 3600 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        s if s >= 60 => format!("{}m{:02}s", s / 60, s % 60),
        s => format!("{s}s"),
    }
}

/// The report as a table, tiers in policy order.
pub fn render(report: &Report, policy: &RoutingPolicy, heading: &str) -> String {
    let mut out = format!("{heading}\n");
    let _ = writeln!(
        out,
        "{:<10} {:>6} {:>8} {:>11} {:>9} {:>9} {:>9} {:>9}",
        "tier", "SLA", "count", "within SLA", "p50 wait", "p95 wait", "max wait", "breaches"
    );
    for tier in &policy.tiers {
        let Some(r) = report.tiers.get(&tier.name) else {
            continue;
        };
        let _ = writeln!(
            out,
            "{:<10} {:>6} {:>8} {:>10.1}% {:>9} {:>9} {:>9} {:>9}",
            tier.name,
            human(tier.sla.num_seconds()),
            r.count,
            r.within_sla * 100.0,
            human(r.p50_wait_s),
            human(r.p95_wait_s),
            human(r.max_wait_s),
            r.breaches
        );
    }
    let _ = writeln!(out, "longest wait overall: {}", human(report.max_wait_s));
    out
}

/// The `simulate` subcommand.
pub fn run(args: &SimulateArgs) -> anyhow::Result<()> {
    let policy = match &args.policy {
        Some(path) => RoutingPolicy::load(path)?,
        None => RoutingPolicy::default(),
    };
    let (arrivals, source) = match (&args.arrivals, args.rate) {
        (Some(path), _) => (read_arrivals(path)?, path.display().to_string()),
        (None, Some(rate)) => (
            generate(&policy.simulation, rate, args.hours, args.seed)?,
            format!("{rate}/h for {} h, seed {}", args.hours, args.seed),
        ),
        (None, None) => anyhow::bail!("give --arrivals FILE or --rate PER_HOUR"),
    };
    let served = simulate(
        &arrivals,
        args.agents,
        args.order.into(),
        &policy,
        args.start,
    )
    .context("running the simulation")?;
    let report = report(&served, &policy);
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        let order = match args.order {
            Order::Policy => "policy order",
            Order::Fifo => "FIFO order",
        };
        let heading = format!(
            "{order}, {} agents, {} arrivals ({source})",
            args.agents,
            arrivals.len()
        );
        print!("{}", render(&report, &policy, &heading));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn start() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0)
            .single()
            .expect("time")
    }

    fn arrival(at_min: i64, membership: Tier, handle_min: i64) -> Arrival {
        Arrival {
            at_s: at_min * 60,
            handle_s: handle_min * 60,
            membership,
            lifetime_spend_cents: 0,
            order_count: 0,
            complaints_90d: 0,
            intent: Some("human_agent".into()),
            angry: false,
            recent_contacts_7d: 1,
            lang: Lang::En,
        }
    }

    fn run_report(arrivals: &[Arrival], agents: usize, d: Discipline) -> (Vec<Served>, Report) {
        let policy = RoutingPolicy::default();
        let served = simulate(arrivals, agents, d, &policy, start()).expect("simulate");
        let r = report(&served, &policy);
        (served, r)
    }

    #[test]
    fn generated_arrivals_are_deterministic_per_seed() {
        let mix = RoutingPolicy::default().simulation;
        let a = generate(&mix, 40.0, 8.0, 7).expect("arrivals");
        let b = generate(&mix, 40.0, 8.0, 7).expect("arrivals");
        let c = generate(&mix, 40.0, 8.0, 8).expect("arrivals");
        assert_eq!(a, b);
        assert_ne!(a, c);
        // About 320 expected; a Poisson count this far off would be a broken generator.
        assert!((240..400).contains(&a.len()), "{} arrivals", a.len());
        assert!(a.windows(2).all(|w| w[0].at_s <= w[1].at_s));
        assert!(a.iter().all(|x| x.handle_s >= 60 && x.at_s < 8 * 3600));
        assert!(a.iter().any(|x| x.membership == Tier::Vip));
        let (_, ra) = run_report(&a, 4, Discipline::Deadline);
        let (_, rb) = run_report(&b, 4, Discipline::Deadline);
        assert_eq!(ra, rb);
        assert!(generate(&mix, 0.0, 8.0, 1).is_err());
    }

    #[test]
    fn every_arrival_is_served_exactly_once() {
        let mix = RoutingPolicy::default().simulation;
        let arrivals = generate(&mix, 60.0, 4.0, 3).expect("arrivals");
        for d in [Discipline::Deadline, Discipline::Fifo] {
            for agents in [1, 3, 10] {
                let (served, r) = run_report(&arrivals, agents, d);
                let mut seen: Vec<usize> = served.iter().map(|s| s.arrival).collect();
                seen.sort_unstable();
                assert_eq!(seen, (0..arrivals.len()).collect::<Vec<_>>());
                assert_eq!(
                    r.tiers.values().map(|t| t.count).sum::<usize>(),
                    arrivals.len()
                );
                assert!(served.iter().all(|s| s.started >= s.arrived));
                // No agent works on two conversations at once.
                let mut busy: Vec<(DateTime<Utc>, DateTime<Utc>)> = served
                    .iter()
                    .map(|s| {
                        (
                            s.started,
                            s.started + Duration::seconds(arrivals[s.arrival].handle_s),
                        )
                    })
                    .collect();
                busy.sort();
                for (i, (from, _)) in busy.iter().enumerate() {
                    let overlapping = busy[..i].iter().filter(|(_, until)| until > from).count();
                    assert!(overlapping < agents, "more than {agents} busy at {from}");
                }
            }
        }
    }

    #[test]
    fn empty_arrivals_and_zero_agents() {
        let (served, r) = run_report(&[], 2, Discipline::Deadline);
        assert!(served.is_empty());
        assert_eq!(r.max_wait_s, 0);
        assert_eq!(r.tiers["vip"].within_sla, 1.0);
        let policy = RoutingPolicy::default();
        assert!(
            simulate(
                &[arrival(0, Tier::Vip, 5)],
                0,
                Discipline::Fifo,
                &policy,
                start()
            )
            .is_err()
        );
    }

    /// A morning backlog: 40 regulars in the first 20 minutes, a VIP every 10 minutes in the
    /// first hour, two agents at 10 minutes a conversation.
    fn backlog() -> Vec<Arrival> {
        let mut a: Vec<Arrival> = (0..40)
            .map(|i| arrival(i / 2, Tier::Standard, 10))
            .collect();
        a.extend((0..6).map(|i| arrival(5 + 10 * i, Tier::Vip, 10)));
        a
    }

    #[test]
    fn policy_beats_fifo_for_vips_on_a_backlog() {
        let (_, policy) = run_report(&backlog(), 2, Discipline::Deadline);
        let (_, fifo) = run_report(&backlog(), 2, Discipline::Fifo);
        assert_eq!(policy.tiers["vip"].count, 6);
        assert_eq!(policy.tiers["vip"].within_sla, 1.0);
        assert!(fifo.tiers["vip"].within_sla < 0.5, "{fifo:?}");
        assert!(policy.tiers["vip"].max_wait_s <= 15 * 60);
        // The same work is done either way; only who waits changes.
        assert_eq!(policy.tiers["regular"].count, fifo.tiers["regular"].count);
    }

    #[test]
    fn a_vip_flood_does_not_starve_regulars() {
        // One agent, five regulars at the start, then a VIP every 5 minutes for 10 hours at
        // 10 minutes each: more VIP work than the agent can do. Strict VIP-first would leave
        // the regulars waiting the whole 10 hours; deadlines cap their wait by the work due no
        // later than them (the 22 VIPs of the first 105 minutes and the 5 regulars, 10 minutes
        // each).
        let mut a: Vec<Arrival> = (0..5).map(|_| arrival(0, Tier::Standard, 10)).collect();
        a.extend((0..120).map(|i| arrival(5 * i, Tier::Vip, 10)));
        let (_, r) = run_report(&a, 1, Discipline::Deadline);
        assert_eq!(r.tiers["regular"].count, 5);
        assert!(
            r.tiers["regular"].max_wait_s <= 27 * 10 * 60,
            "{:?}",
            r.tiers["regular"]
        );
    }

    #[test]
    fn reads_the_sample_arrivals() {
        let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/demo/arrivals.jsonl"));
        let arrivals = read_arrivals(path).expect("demo/arrivals.jsonl");
        assert!(arrivals.len() >= 50);
        let (served, _) = run_report(&arrivals, 3, Discipline::Deadline);
        assert_eq!(served.len(), arrivals.len());
    }

    #[test]
    fn bad_arrivals_name_the_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.jsonl");
        std::fs::write(
            &path,
            "{\"at_s\": 0, \"handle_s\": 60}\n\n{\"at_s\": 5, \"handle_s\": 0}\n",
        )
        .expect("write");
        match read_arrivals(&path) {
            Err(SimError::Arrival { line, .. }) => assert_eq!(line, 3),
            other => panic!("{other:?}"),
        }
        std::fs::write(
            &path,
            "{\"at_s\": 0, \"handle_s\": 60, \"tier\": \"vip\"}\n",
        )
        .expect("write");
        assert!(matches!(
            read_arrivals(&path),
            Err(SimError::Arrival { line: 1, .. })
        ));
    }

    #[test]
    fn json_report_has_the_documented_shape() {
        let (_, r) = run_report(&backlog(), 2, Discipline::Deadline);
        let v = serde_json::to_value(&r).expect("json");
        // Sorted, so the check holds whether or not serde_json preserves field order.
        let sorted = |m: &serde_json::Map<String, serde_json::Value>| {
            let mut k: Vec<String> = m.keys().cloned().collect();
            k.sort();
            k
        };
        let keys = sorted(v.as_object().expect("object"));
        assert_eq!(keys, ["max_wait_s", "tiers"]);
        let tiers = v["tiers"].as_object().expect("tiers");
        assert_eq!(sorted(tiers), ["gold", "regular", "vip"]);
        let vip = tiers["vip"].as_object().expect("vip");
        let fields = sorted(vip);
        assert_eq!(
            fields,
            [
                "breaches",
                "count",
                "max_wait_s",
                "p50_wait_s",
                "p95_wait_s",
                "within_sla"
            ]
        );
        assert_eq!(vip["count"], 6);
        assert_eq!(
            v["max_wait_s"].as_i64(),
            r.tiers.values().map(|t| t.max_wait_s).max()
        );
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let v: Vec<i64> = (1..=20).collect();
        assert_eq!(percentile(&v, 0.5), 10);
        assert_eq!(percentile(&v, 0.95), 19);
        assert_eq!(percentile(&[7], 0.95), 7);
        assert_eq!(percentile(&[], 0.5), 0);
        assert_eq!(human(3725), "1h02m");
        assert_eq!(human(250), "4m10s");
        assert_eq!(human(35), "35s");
    }

    fn arb_arrival() -> impl Strategy<Value = Arrival> {
        (
            0i64..(3 * 3600),
            60i64..1800,
            prop::sample::select(vec![Tier::Standard, Tier::Silver, Tier::Gold, Tier::Vip]),
            prop::sample::select(vec![
                "human_agent",
                "complaint",
                "damaged_item",
                "refund_status",
            ]),
            any::<bool>(),
        )
            .prop_map(|(at_s, handle_s, membership, intent, angry)| Arrival {
                at_s,
                handle_s,
                membership,
                intent: Some(intent.into()),
                angry,
                ..arrival(0, Tier::Standard, 1)
            })
    }

    proptest! {
        /// No one starves, over time: a conversation is picked no later than any conversation
        /// that arrived after its deadline, and while it waits every conversation picked ahead
        /// of it is due no later than it is. So its wait is bounded by the work that arrived
        /// before its deadline, however many VIPs come after.
        #[test]
        fn no_one_starves_over_time(
            arrivals in prop::collection::vec(arb_arrival(), 1..80),
            agents in 1usize..4,
        ) {
            let (served, _) = run_report(&arrivals, agents, Discipline::Deadline);
            prop_assert_eq!(served.len(), arrivals.len());
            for a in &served {
                for b in &served {
                    if b.arrived > a.sla_due {
                        prop_assert!(a.started <= b.started, "{b:?} overtook {a:?}");
                    }
                    if b.started >= a.arrived && b.started < a.started {
                        prop_assert!(b.sla_due <= a.sla_due, "{b:?} picked while {a:?} waited");
                    }
                }
            }
        }
    }
}
