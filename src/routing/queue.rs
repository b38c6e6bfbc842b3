//! The human queue's order, eligibility and wait estimates as pure functions. The order is
//! earliest-deadline-first on the tickets' value-based deadlines (`sla_due`): a VIP's short SLA
//! puts them ahead of a backlog of regulars, while a regular's deadline is fixed when they
//! arrive, so nobody who arrives after it can overtake them. The order never depends on the
//! clock, so positions are stable and a conversation returned to the queue keeps its place.

use std::cmp::Ordering;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::domain::{ConversationId, Lang};

/// A conversation waiting for a human, as the queue sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueueEntry {
    pub conversation_id: ConversationId,
    /// When it entered the queue (kept when an agent returns it).
    pub waiting_since: DateTime<Utc>,
    /// From its `HandoffTicket`.
    pub sla_due: DateTime<Utc>,
    pub priority: i32,
    pub team: String,
    pub lang: Lang,
}

/// Which order the queue serves in. `Deadline` is the product; `Fifo` exists so the capacity
/// planner can show what the policy buys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Discipline {
    /// Earliest `sla_due` first (the policy).
    #[default]
    Deadline,
    /// Longest waiting first.
    Fifo,
}

impl Discipline {
    /// Whether `a` is served before `b` (`Less`). A total order: ties end on the id.
    pub fn compare(self, a: &QueueEntry, b: &QueueEntry) -> Ordering {
        match self {
            Self::Deadline => compare(a, b),
            Self::Fifo => a
                .waiting_since
                .cmp(&b.waiting_since)
                .then_with(|| a.conversation_id.0.cmp(&b.conversation_id.0)),
        }
    }
}

/// The policy order: earliest `sla_due`; then higher priority; then longer waiting; then the
/// conversation id, so the order is total and the same on every instance.
pub fn compare(a: &QueueEntry, b: &QueueEntry) -> Ordering {
    a.sla_due
        .cmp(&b.sla_due)
        .then_with(|| b.priority.cmp(&a.priority))
        .then_with(|| a.waiting_since.cmp(&b.waiting_since))
        .then_with(|| a.conversation_id.0.cmp(&b.conversation_id.0))
}

/// Sorts entries into the order they are served.
pub fn order(entries: &mut [QueueEntry]) {
    entries.sort_by(compare);
}

/// What an agent can take: their languages and teams, and how many conversations at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentSkills {
    pub languages: Vec<Lang>,
    pub teams: Vec<String>,
    /// Conversations the agent may hold at once.
    pub capacity: u32,
}

/// Whether the agent speaks the conversation's language and belongs to its team.
pub fn eligible(entry: &QueueEntry, agent: &AgentSkills) -> bool {
    agent.languages.contains(&entry.lang) && agent.teams.contains(&entry.team)
}

/// Whether an agent holding `held` conversations may take one more.
pub fn has_capacity(agent: &AgentSkills, held: u32) -> bool {
    held < agent.capacity
}

/// The conversation an agent should take next from entries already in queue order: the first
/// they are eligible for, or none when they are at capacity or nothing fits.
pub fn next_for<'a>(
    ordered: impl IntoIterator<Item = &'a QueueEntry>,
    agent: &AgentSkills,
    held: u32,
) -> Option<&'a QueueEntry> {
    if !has_capacity(agent, held) {
        return None;
    }
    ordered.into_iter().find(|e| eligible(e, agent))
}

/// Conversations served before `entry` by the agents who can take it (same team and language).
/// This is the shopper's position: 0 means next.
pub fn ahead_of<'a>(
    entries: impl IntoIterator<Item = &'a QueueEntry>,
    entry: &QueueEntry,
) -> usize {
    entries
        .into_iter()
        .filter(|e| e.team == entry.team && e.lang == entry.lang)
        .filter(|e| compare(e, entry) == Ordering::Less)
        .count()
}

/// Expected wait of a shopper with `ahead` conversations before them in their line
/// (`ahead_of`), when the eligible online agents handle `slots` conversations at once (the sum
/// of their capacities) and recent conversations took `recent_handle_times` (the policy's
/// `default_handle_time` before any is known). Each slot works through the line at one mean
/// handle time per conversation; `None` when nobody who could answer is online.
pub fn expected_wait(
    ahead: usize,
    slots: usize,
    recent_handle_times: &[Duration],
    default_handle: Duration,
) -> Option<Duration> {
    if slots == 0 {
        return None;
    }
    let mean = if recent_handle_times.is_empty() {
        default_handle
    } else {
        let total: i64 = recent_handle_times
            .iter()
            .map(|d| d.num_milliseconds().max(0))
            .sum();
        Duration::milliseconds(total / recent_handle_times.len() as i64)
    };
    // The shopper is served when `ahead + 1` conversations have started; each round of
    // `slots` conversations takes one mean handle time, the first round is already running
    // for half of it on average.
    let rounds = i32::try_from(ahead / slots).unwrap_or(i32::MAX);
    Some(
        mean.checked_mul(rounds)
            .unwrap_or(Duration::MAX)
            .checked_add(&(mean / 2))
            .unwrap_or(Duration::MAX),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Customer, CustomerId, Tier};
    use crate::routing::policy::RoutingPolicy;
    use crate::routing::ticket::{TicketInput, ticket};
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 8, 0, 0)
            .single()
            .expect("time")
    }

    fn id(n: u128) -> ConversationId {
        ConversationId(uuid::Uuid::from_u128(n))
    }

    /// An entry `n` arriving `at` minutes after t0, due `sla` minutes later.
    fn entry(n: u128, at: i64, sla: i64, priority: i32) -> QueueEntry {
        QueueEntry {
            conversation_id: id(n),
            waiting_since: t0() + Duration::minutes(at),
            sla_due: t0() + Duration::minutes(at + sla),
            priority,
            team: "general".into(),
            lang: Lang::En,
        }
    }

    /// Orders the entries and returns their numbers.
    fn served(mut entries: Vec<QueueEntry>, d: Discipline) -> Vec<u128> {
        entries.sort_by(|a, b| d.compare(a, b));
        entries
            .iter()
            .map(|e| e.conversation_id.0.as_u128())
            .collect()
    }

    #[test]
    fn order_table() {
        use Discipline::*;
        // (entries, expected policy order, expected FIFO order)
        let cases: Vec<(Vec<QueueEntry>, Vec<u128>, Vec<u128>)> = vec![
            // A VIP (15 min) arriving behind two regulars (120 min) goes first.
            (
                vec![
                    entry(1, 0, 120, 100),
                    entry(2, 5, 120, 100),
                    entry(3, 10, 15, 300),
                ],
                vec![3, 1, 2],
                vec![1, 2, 3],
            ),
            // A regular whose deadline comes before the VIP's is served first: bounded wait.
            (
                vec![entry(1, 0, 120, 100), entry(2, 110, 15, 300)],
                vec![1, 2],
                vec![1, 2],
            ),
            // Equal deadlines: higher priority first.
            (
                vec![entry(1, 0, 30, 100), entry(2, 15, 15, 300)],
                vec![2, 1],
                vec![1, 2],
            ),
            // Equal deadline and priority: longer waiting first.
            (
                vec![entry(1, 10, 20, 100), entry(2, 0, 30, 100)],
                vec![2, 1],
                vec![2, 1],
            ),
            // Everything equal: the id decides, so every instance agrees.
            (
                vec![entry(9, 0, 30, 100), entry(4, 0, 30, 100)],
                vec![4, 9],
                vec![4, 9],
            ),
            // Breached entries stay in deadline order ahead of the rest.
            (
                vec![
                    entry(1, 0, 120, 100),
                    entry(2, 0, 15, 300),
                    entry(3, 300, 15, 300),
                ],
                vec![2, 1, 3],
                vec![1, 2, 3],
            ),
            (vec![], vec![], vec![]),
        ];
        for (entries, policy, fifo) in cases {
            assert_eq!(served(entries.clone(), Deadline), policy, "{entries:?}");
            assert_eq!(served(entries, Fifo), fifo);
        }
    }

    fn agent(languages: &[Lang], teams: &[&str], capacity: u32) -> AgentSkills {
        AgentSkills {
            languages: languages.to_vec(),
            teams: teams.iter().map(|t| t.to_string()).collect(),
            capacity,
        }
    }

    #[test]
    fn eligibility_and_capacity() {
        let mut zh_quality = entry(1, 0, 15, 300);
        zh_quality.lang = Lang::Zh;
        zh_quality.team = "quality".into();
        let en_general = entry(2, 0, 120, 100);
        let cases = [
            (agent(&[Lang::Zh], &["quality"], 1), true, false),
            (
                agent(&[Lang::En, Lang::Zh], &["quality", "general"], 1),
                true,
                true,
            ),
            (agent(&[Lang::En], &["quality"], 1), false, false),
            (agent(&[Lang::Zh], &["general"], 1), false, false),
            (agent(&[], &[], 1), false, false),
        ];
        for (a, quality, general) in cases {
            assert_eq!(eligible(&zh_quality, &a), quality, "{a:?}");
            assert_eq!(eligible(&en_general, &a), general, "{a:?}");
        }

        let mut queue = vec![en_general.clone(), zh_quality.clone()];
        order(&mut queue);
        let both = agent(&[Lang::En, Lang::Zh], &["quality", "general"], 2);
        assert_eq!(next_for(&queue, &both, 0), Some(&zh_quality));
        assert_eq!(next_for(&queue, &both, 1), Some(&zh_quality));
        assert_eq!(next_for(&queue, &both, 2), None, "at capacity");
        let en_only = agent(&[Lang::En], &["general", "quality"], 1);
        assert_eq!(next_for(&queue, &en_only, 0), Some(&en_general));
        assert_eq!(
            next_for(&queue, &agent(&[Lang::En], &["refunds"], 3), 0),
            None
        );
        assert!(has_capacity(&both, 1));
        assert!(!has_capacity(&agent(&[Lang::En], &["general"], 0), 0));
    }

    #[test]
    fn position_counts_only_the_same_line() {
        let mut other_team = entry(1, 0, 5, 100);
        other_team.team = "refunds".into();
        let mut other_lang = entry(2, 0, 5, 100);
        other_lang.lang = Lang::Zh;
        let earlier = entry(3, 0, 10, 100);
        let me = entry(4, 1, 60, 100);
        let later = entry(5, 2, 120, 100);
        let all = [other_team, other_lang, earlier, me.clone(), later];
        assert_eq!(ahead_of(&all, &me), 1);
        assert_eq!(ahead_of(&all, &all[2]), 0);
        assert_eq!(ahead_of(&all, &all[4]), 2);
    }

    #[test]
    fn expected_wait_table() {
        let m = Duration::minutes;
        let cases: [(usize, usize, Vec<Duration>, Option<Duration>); 6] = [
            // Next in line with one slot: half a handle time.
            (0, 1, vec![m(10)], Some(m(5))),
            // Three ahead, one slot: three whole handle times and a half.
            (3, 1, vec![m(6), m(14)], Some(m(35))),
            // Three ahead, two slots: one round, then half.
            (3, 2, vec![m(10)], Some(m(15))),
            (1, 4, vec![m(10)], Some(m(5))),
            // No history: the default handle time.
            (2, 1, vec![], Some(m(20))),
            // Nobody online.
            (0, 0, vec![m(10)], None),
        ];
        for (ahead, slots, recent, expect) in cases {
            assert_eq!(
                expected_wait(ahead, slots, &recent, m(8)),
                expect,
                "{ahead} ahead, {slots} slots"
            );
        }
    }

    /// A random waiting conversation, ticketed by the real default policy.
    fn arb_entry() -> impl Strategy<Value = QueueEntry> {
        (
            0u128..1_000_000,
            0i64..(8 * 3600),
            prop::sample::select(vec![Tier::Standard, Tier::Silver, Tier::Gold, Tier::Vip]),
            prop::sample::select(vec![
                "human_agent",
                "complaint",
                "damaged_item",
                "refund_status",
                "product_question",
                "payment_problem",
            ]),
            any::<bool>(),
            0u32..5,
            0i64..4,
        )
            .prop_map(|(n, at, membership, intent, angry, contacts, complaints)| {
                let customer = Customer {
                    tier: membership,
                    complaints_90d: complaints,
                    ..Customer::unknown(CustomerId::parse("c-p").expect("id"), Lang::En)
                };
                let now = t0() + Duration::seconds(at);
                let t = ticket(
                    &TicketInput {
                        customer: &customer,
                        intent: Some(intent),
                        reason_code: "asked_for_human",
                        angry,
                        recent_contacts_7d: contacts,
                        lang: Lang::En,
                        now,
                    },
                    &RoutingPolicy::default(),
                );
                QueueEntry {
                    conversation_id: id(n),
                    waiting_since: now,
                    sla_due: t.sla_due,
                    priority: t.priority,
                    team: t.team,
                    lang: t.lang,
                }
            })
    }

    proptest! {
        /// No one starves: a waiting conversation is served before any conversation that
        /// arrived more than its SLA later, i.e. after its deadline
        /// (`b.waiting_since > a.sla_due` implies `a` comes first).
        #[test]
        fn no_one_starves(mut entries in prop::collection::vec(arb_entry(), 0..60)) {
            order(&mut entries);
            for (i, a) in entries.iter().enumerate() {
                for b in &entries[..i] {
                    prop_assert!(
                        b.waiting_since <= a.sla_due,
                        "{b:?} arrived after {a:?} was due but is served first"
                    );
                }
            }
        }

        /// A VIP arriving during a backlog of regular customers (without risk signals, who
        /// arrived less than their SLA minus the VIP's ago) is served first.
        #[test]
        fn vip_first_during_a_backlog(
            backlog in prop::collection::vec(
                (0i64..(105 * 60), prop::sample::select(vec!["human_agent", "product_question", "refund_status", "return_request"])),
                1..80,
            ),
        ) {
            let policy = RoutingPolicy::default();
            let now = t0() + Duration::minutes(105);
            let regular = Customer::unknown(CustomerId::parse("c-r").expect("id"), Lang::En);
            let vip = Customer { tier: Tier::Vip, ..regular.clone() };
            let mk = |n: u128, c: &Customer, at: DateTime<Utc>, intent: &str| {
                let t = ticket(&TicketInput {
                    customer: c, intent: Some(intent), reason_code: "asked_for_human",
                    angry: false, recent_contacts_7d: 1, lang: Lang::En, now: at,
                }, &policy);
                QueueEntry { conversation_id: id(n), waiting_since: at, sla_due: t.sla_due,
                    priority: t.priority, team: "general".into(), lang: Lang::En }
            };
            // Regulars arrived in the 105 minutes before the VIP: their 120-minute deadlines
            // all fall after the VIP's 15-minute one.
            let mut entries: Vec<QueueEntry> = backlog.iter().enumerate()
                .map(|(i, (s, intent))| mk(i as u128 + 1, &regular, t0() + Duration::seconds(*s + 1), intent))
                .collect();
            entries.push(mk(0, &vip, now, "human_agent"));
            order(&mut entries);
            prop_assert_eq!(entries[0].conversation_id, id(0));
        }

        /// The order is total and consistent: sorting any permutation gives the same result.
        #[test]
        fn order_is_deterministic(entries in prop::collection::vec(arb_entry(), 0..40), seed in any::<u64>()) {
            use rand::{SeedableRng, seq::SliceRandom};
            let mut a = entries;
            for (i, e) in a.iter_mut().enumerate() {
                e.conversation_id = id(i as u128);
            }
            let mut b = a.clone();
            b.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
            order(&mut a);
            order(&mut b);
            prop_assert_eq!(a, b);
        }
    }
}
