//! The shop's queue policy, read from `config/routing.toml`: customer tiers from the profile,
//! first-response SLAs per tier and intent, risk signals, teams and their business hours, and
//! the agent reply timeout. The default policy is compiled in, so the binary runs without the
//! file. Parsing validates everything once; the rest of routing trusts the result.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use chrono::{Duration, NaiveDate};
use serde::Deserialize;

use super::sla::{Block, BusinessHours, HoursError};
use crate::domain::{Customer, Tier};

/// The policy shipped with the binary (a copy of `config/routing.toml`).
pub const DEFAULT_POLICY: &str = include_str!("../../config/routing.toml");

/// Why a policy file cannot be used. Every variant names the offending key.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read routing policy {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Syntax errors, unknown keys and wrong types (the message names the key and line).
    #[error("routing policy: {0}")]
    Parse(#[from] toml::de::Error),
    #[error("routing policy: `{key}`: {reason}")]
    Invalid { key: String, reason: String },
}

fn invalid(key: impl Into<String>, reason: impl Into<String>) -> PolicyError {
    PolicyError::Invalid {
        key: key.into(),
        reason: reason.into(),
    }
}

/// A customer tier: who is in it, how soon they get a first answer, and their base priority.
#[derive(Debug, Clone, PartialEq)]
pub struct TierRule {
    pub name: String,
    pub priority: i32,
    pub sla: Duration,
    /// Membership tiers that qualify (any of them).
    pub membership: Vec<Tier>,
    pub min_lifetime_spend_cents: Option<i64>,
    pub min_order_count: Option<i64>,
}

impl TierRule {
    /// Whether the profile meets any of the rule's conditions; a rule without conditions
    /// matches everyone (the catch-all last tier).
    pub fn matches(&self, c: &Customer) -> bool {
        let unconditional = self.membership.is_empty()
            && self.min_lifetime_spend_cents.is_none()
            && self.min_order_count.is_none();
        unconditional
            || self.membership.contains(&c.tier)
            || self
                .min_lifetime_spend_cents
                .is_some_and(|m| c.lifetime_spend_cents >= m)
            || self.min_order_count.is_some_and(|m| c.order_count >= m)
    }
}

/// What the policy says about one intent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IntentRule {
    /// The team that handles it (the default team when unset).
    pub team: Option<String>,
    /// A cap on the tier's SLA: the first response is due no later than this.
    pub sla: Option<Duration>,
    pub priority_boost: i32,
}

/// Risk signals that tighten the SLA and raise the priority.
#[derive(Debug, Clone, PartialEq)]
pub struct RiskRule {
    /// Intents that count as a complaint.
    pub complaint_intents: BTreeSet<String>,
    /// Complaints in the last 90 days at or above this are a signal.
    pub complaints_90d_at_least: Option<i64>,
    /// Contacts in the last 7 days (this one included) at or above this are a signal.
    pub repeat_contacts_7d_at_least: Option<u32>,
    /// An angry message is a signal.
    pub anger: bool,
    /// Applied once to the SLA when any signal is present.
    pub sla_factor: f64,
    /// The factor never takes the SLA below this.
    pub min_sla: Duration,
    /// Added to the priority per signal present.
    pub priority_boost: i32,
}

/// The whole queue policy, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct RoutingPolicy {
    /// In order; the first match decides, the last matches everyone.
    pub tiers: Vec<TierRule>,
    pub intents: BTreeMap<String, IntentRule>,
    pub risk: RiskRule,
    /// Team name to its business hours (`None`: always open).
    pub teams: BTreeMap<String, Option<BusinessHours>>,
    pub default_team: String,
    /// An agent who holds a conversation and does not reply within this loses it back to the
    /// queue, at its original place.
    pub agent_reply_timeout: Duration,
    /// Handle time assumed for wait estimates before any conversation has been handled.
    pub default_handle_time: Duration,
    /// Arrival mix used by `switchboard simulate` when it generates arrivals.
    pub simulation: SimulationMix,
}

/// The arrival mix of generated simulations.
#[derive(Debug, Clone, PartialEq)]
pub struct SimulationMix {
    /// Share of arrivals per membership tier (weights, normalised).
    pub membership: Vec<(Tier, f64)>,
    /// Share of arrivals per intent (weights, normalised).
    pub intents: Vec<(String, f64)>,
    /// Share of arrivals with an angry message.
    pub angry_share: f64,
    /// Mean agent handle time (exponentially distributed, at least a minute).
    pub handle_mean: Duration,
}

impl RoutingPolicy {
    /// Reads and validates a policy file.
    pub fn load(path: &Path) -> Result<Self, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text)
    }

    /// Parses and validates policy text.
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        let file: PolicyFile = toml::from_str(text)?;
        file.validate()
    }

    /// The tier of a customer: the first rule that matches.
    pub fn tier_for(&self, c: &Customer) -> &TierRule {
        self.tiers
            .iter()
            .find(|t| t.matches(c))
            .unwrap_or_else(|| self.tiers.last().expect("validated: at least one tier"))
    }

    /// The team that handles an intent.
    pub fn team_for(&self, intent: Option<&str>) -> &str {
        intent
            .and_then(|i| self.intents.get(i))
            .and_then(|r| r.team.as_deref())
            .unwrap_or(&self.default_team)
    }

    /// The business hours of a team (`None`: always open, or an unknown team).
    pub fn hours(&self, team: &str) -> Option<&BusinessHours> {
        self.teams.get(team).and_then(Option::as_ref)
    }

    /// Checks that every intent the policy names exists in the catalogue, so a renamed intent
    /// fails at start instead of silently losing its SLA.
    pub fn check_intents<'a>(
        &self,
        known: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), PolicyError> {
        let known: BTreeSet<&str> = known.into_iter().collect();
        let named = self
            .intents
            .keys()
            .map(|i| (format!("intents.{i}"), i))
            .chain(
                self.risk
                    .complaint_intents
                    .iter()
                    .map(|i| ("risk.complaint_intents".to_string(), i)),
            )
            .chain(
                self.simulation
                    .intents
                    .iter()
                    .map(|(i, _)| ("simulation.intent_mix".to_string(), i)),
            );
        for (key, intent) in named {
            if !known.contains(intent.as_str()) {
                return Err(invalid(key, format!("unknown intent `{intent}`")));
            }
        }
        Ok(())
    }
}

impl Default for RoutingPolicy {
    fn default() -> Self {
        Self::parse(DEFAULT_POLICY).expect("the compiled-in routing policy is valid")
    }
}

// ---- The file format. Unknown keys are errors so a typo never silently changes the policy.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    default_team: String,
    agent_reply_timeout_minutes: f64,
    default_handle_minutes: f64,
    tiers: Vec<TierFile>,
    #[serde(default)]
    intents: BTreeMap<String, IntentFile>,
    risk: RiskFile,
    teams: BTreeMap<String, TeamFile>,
    simulation: SimulationFile,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TierFile {
    name: String,
    priority: i32,
    sla_minutes: f64,
    #[serde(default)]
    membership: Vec<Tier>,
    min_lifetime_spend_cents: Option<i64>,
    min_order_count: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IntentFile {
    team: Option<String>,
    sla_minutes: Option<f64>,
    #[serde(default)]
    priority_boost: i32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RiskFile {
    #[serde(default)]
    complaint_intents: Vec<String>,
    complaints_90d_at_least: Option<i64>,
    repeat_contacts_7d_at_least: Option<u32>,
    #[serde(default)]
    anger: bool,
    sla_factor: f64,
    min_sla_minutes: f64,
    priority_boost: i32,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TeamFile {
    hours: Option<HoursFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HoursFile {
    time_zone: String,
    #[serde(default)]
    mon: Vec<String>,
    #[serde(default)]
    tue: Vec<String>,
    #[serde(default)]
    wed: Vec<String>,
    #[serde(default)]
    thu: Vec<String>,
    #[serde(default)]
    fri: Vec<String>,
    #[serde(default)]
    sat: Vec<String>,
    #[serde(default)]
    sun: Vec<String>,
    #[serde(default)]
    holidays: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SimulationFile {
    membership_mix: BTreeMap<Tier, f64>,
    intent_mix: BTreeMap<String, f64>,
    angry_share: f64,
    handle_minutes_mean: f64,
}

/// Minutes from the file as a duration: finite and positive (or zero where `zero_ok`).
fn minutes(key: &str, m: f64, zero_ok: bool) -> Result<Duration, PolicyError> {
    if !m.is_finite() || m < 0.0 || (m == 0.0 && !zero_ok) || m > 366.0 * 24.0 * 60.0 {
        return Err(invalid(
            key,
            format!("{m} is not a usable number of minutes"),
        ));
    }
    Ok(Duration::milliseconds((m * 60_000.0).round() as i64))
}

/// Non-negative weights with a positive sum.
fn weights<K: Clone>(key: &str, mix: &BTreeMap<K, f64>) -> Result<Vec<(K, f64)>, PolicyError> {
    if mix.values().any(|w| !w.is_finite() || *w < 0.0) || mix.values().sum::<f64>() <= 0.0 {
        return Err(invalid(
            key,
            "weights must be non-negative with a positive sum",
        ));
    }
    Ok(mix.iter().map(|(k, w)| (k.clone(), *w)).collect())
}

impl PolicyFile {
    fn validate(self) -> Result<RoutingPolicy, PolicyError> {
        let mut teams = BTreeMap::new();
        for (name, team) in self.teams {
            let hours = match team.hours {
                Some(h) => Some(
                    h.validate()
                        .map_err(|e| invalid(format!("teams.{name}.hours"), e.to_string()))?,
                ),
                None => None,
            };
            teams.insert(name, hours);
        }
        if !teams.contains_key(&self.default_team) {
            return Err(invalid(
                "default_team",
                format!("`{}` is not listed under [teams]", self.default_team),
            ));
        }

        if self.tiers.is_empty() {
            return Err(invalid("tiers", "at least one tier is needed"));
        }
        let mut tiers = Vec::with_capacity(self.tiers.len());
        let mut names = BTreeSet::new();
        for (i, t) in self.tiers.into_iter().enumerate() {
            let key = format!("tiers[{i}]");
            if t.name.trim().is_empty() || !names.insert(t.name.clone()) {
                return Err(invalid(
                    format!("{key}.name"),
                    "tier names must be unique and non-empty",
                ));
            }
            tiers.push(TierRule {
                sla: minutes(&format!("{key}.sla_minutes"), t.sla_minutes, false)?,
                name: t.name,
                priority: t.priority,
                membership: t.membership,
                min_lifetime_spend_cents: t.min_lifetime_spend_cents,
                min_order_count: t.min_order_count,
            });
        }
        // Only the last tier may be unconditional: an earlier catch-all hides the ones after it,
        // and without one some customers would have no tier.
        let catch_all = |t: &TierRule| {
            t.membership.is_empty()
                && t.min_lifetime_spend_cents.is_none()
                && t.min_order_count.is_none()
        };
        let last = tiers.len() - 1;
        if let Some(i) = tiers[..last].iter().position(catch_all) {
            return Err(invalid(
                format!("tiers[{i}]"),
                "a tier without conditions must be the last one",
            ));
        }
        if !catch_all(&tiers[last]) {
            return Err(invalid(
                format!("tiers[{last}]"),
                "the last tier must have no conditions (it is everyone else)",
            ));
        }

        let mut intents = BTreeMap::new();
        for (name, i) in self.intents {
            let key = format!("intents.{name}");
            if let Some(team) = &i.team
                && !teams.contains_key(team)
            {
                return Err(invalid(
                    format!("{key}.team"),
                    format!("`{team}` is not listed under [teams]"),
                ));
            }
            let sla = match i.sla_minutes {
                Some(m) => Some(minutes(&format!("{key}.sla_minutes"), m, false)?),
                None => None,
            };
            intents.insert(
                name,
                IntentRule {
                    team: i.team,
                    sla,
                    priority_boost: i.priority_boost,
                },
            );
        }

        let r = self.risk;
        if !(r.sla_factor > 0.0 && r.sla_factor <= 1.0) {
            return Err(invalid(
                "risk.sla_factor",
                "must be in (0, 1]: risk only tightens the SLA",
            ));
        }
        let risk = RiskRule {
            complaint_intents: r.complaint_intents.into_iter().collect(),
            complaints_90d_at_least: r.complaints_90d_at_least,
            repeat_contacts_7d_at_least: r.repeat_contacts_7d_at_least,
            anger: r.anger,
            sla_factor: r.sla_factor,
            min_sla: minutes("risk.min_sla_minutes", r.min_sla_minutes, true)?,
            priority_boost: r.priority_boost,
        };

        let s = self.simulation;
        if !(0.0..=1.0).contains(&s.angry_share) {
            return Err(invalid("simulation.angry_share", "must be between 0 and 1"));
        }
        let simulation = SimulationMix {
            membership: weights("simulation.membership_mix", &s.membership_mix)?,
            intents: weights("simulation.intent_mix", &s.intent_mix)?,
            angry_share: s.angry_share,
            handle_mean: minutes(
                "simulation.handle_minutes_mean",
                s.handle_minutes_mean,
                false,
            )?,
        };

        Ok(RoutingPolicy {
            tiers,
            intents,
            risk,
            teams,
            default_team: self.default_team,
            agent_reply_timeout: minutes(
                "agent_reply_timeout_minutes",
                self.agent_reply_timeout_minutes,
                false,
            )?,
            default_handle_time: minutes(
                "default_handle_minutes",
                self.default_handle_minutes,
                false,
            )?,
            simulation,
        })
    }
}

impl HoursFile {
    fn validate(self) -> Result<BusinessHours, HoursError> {
        let day = |blocks: Vec<String>| -> Result<Vec<Block>, HoursError> {
            blocks.iter().map(|b| Block::parse(b)).collect()
        };
        let weekly = [
            day(self.mon)?,
            day(self.tue)?,
            day(self.wed)?,
            day(self.thu)?,
            day(self.fri)?,
            day(self.sat)?,
            day(self.sun)?,
        ];
        let holidays = self
            .holidays
            .iter()
            .map(|d| {
                NaiveDate::parse_from_str(d, "%Y-%m-%d").map_err(|_| HoursError::Holiday(d.clone()))
            })
            .collect::<Result<_, _>>()?;
        BusinessHours::new(&self.time_zone, weekly, holidays)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{CustomerId, Lang};

    fn customer(tier: Tier, spend: i64, orders: i64) -> Customer {
        Customer {
            tier,
            lifetime_spend_cents: spend,
            order_count: orders,
            ..Customer::unknown(CustomerId::parse("c-1").expect("id"), Lang::En)
        }
    }

    #[test]
    fn default_policy_parses_and_matches_the_file() {
        let p = RoutingPolicy::default();
        let from_file = RoutingPolicy::load(Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/config/routing.toml"
        )))
        .expect("config/routing.toml");
        assert_eq!(p, from_file);
        assert_eq!(p.tiers.first().map(|t| t.sla), Some(Duration::minutes(15)));
        assert_eq!(p.tiers.last().map(|t| t.sla), Some(Duration::hours(2)));
    }

    #[test]
    fn default_policy_names_only_real_intents() {
        let catalogue = crate::intents::Catalog::load(Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/intents"
        )))
        .expect("intents");
        let p = RoutingPolicy::default();
        p.check_intents(catalogue.intents.iter().map(|i| i.name.as_str()))
            .expect("policy intents exist");
        let err = p
            .check_intents(["order_tracking"])
            .expect_err("missing intents");
        assert!(matches!(err, PolicyError::Invalid { .. }), "{err}");
    }

    #[test]
    fn tiers_first_match_wins() {
        let p = RoutingPolicy::default();
        let tier = |c: Customer| p.tier_for(&c).name.clone();
        assert_eq!(tier(customer(Tier::Vip, 0, 0)), "vip");
        assert_eq!(tier(customer(Tier::Standard, 2_000_000, 0)), "vip");
        assert_eq!(tier(customer(Tier::Gold, 0, 0)), "gold");
        assert_eq!(tier(customer(Tier::Standard, 0, 30)), "gold");
        assert_eq!(tier(customer(Tier::Silver, 500_000, 1)), "gold");
        assert_eq!(tier(customer(Tier::Silver, 0, 1)), "regular");
        assert_eq!(tier(customer(Tier::Standard, 0, 0)), "regular");
    }

    /// The default policy text with one line replaced, parsed.
    fn with(from: &str, to: &str) -> Result<RoutingPolicy, PolicyError> {
        assert!(
            DEFAULT_POLICY.contains(from),
            "fixture line `{from}` missing"
        );
        RoutingPolicy::parse(&DEFAULT_POLICY.replacen(from, to, 1))
    }

    fn bad_key(from: &str, to: &str) -> String {
        match with(from, to) {
            Err(PolicyError::Invalid { key, .. }) => key,
            Err(e @ PolicyError::Parse(_)) => format!("parse: {e}"),
            other => panic!("`{to}` accepted: {other:?}"),
        }
    }

    #[test]
    fn bad_policies_name_the_key() {
        assert_eq!(
            bad_key("default_team = \"general\"", "default_team = \"nobody\""),
            "default_team"
        );
        assert_eq!(
            bad_key("sla_minutes = 15", "sla_minutes = -1"),
            "tiers[0].sla_minutes"
        );
        assert_eq!(
            bad_key("sla_factor = 0.5", "sla_factor = 2.0"),
            "risk.sla_factor"
        );
        assert_eq!(
            bad_key("team = \"quality\"", "team = \"nope\""),
            "intents.complaint.team"
        );
        // A catch-all before the end hides the tiers after it.
        assert_eq!(
            bad_key(
                "membership = [\"vip\"]\nmin_lifetime_spend_cents = 2_000_000",
                "membership = []"
            ),
            "tiers[0]"
        );
        assert_eq!(
            bad_key(
                "sla_minutes = 120",
                "sla_minutes = 120\nmin_order_count = 1"
            ),
            "tiers[2]"
        );
        // Business hours are checked where they are declared.
        assert_eq!(
            bad_key(
                "[teams.quality]",
                "[teams.quality.hours]\ntime_zone = \"Mars/Olympus\"\nmon = [\"09:00-18:00\"]"
            ),
            "teams.quality.hours"
        );
        assert_eq!(
            bad_key(
                "[teams.quality]",
                "[teams.quality.hours]\ntime_zone = \"UTC\"\nmon = [\"18:00-09:00\"]"
            ),
            "teams.quality.hours"
        );
        assert_eq!(
            bad_key(
                "[teams.quality]",
                "[teams.quality.hours]\ntime_zone = \"UTC\"\nmon = [\"09:00-18:00\"]\nholidays = [\"10/01\"]"
            ),
            "teams.quality.hours"
        );
        assert!(matches!(
            RoutingPolicy::load(Path::new("/nonexistent/routing.toml")),
            Err(PolicyError::Read { .. })
        ));
        // Unknown keys and bad values are parse errors that quote the key.
        let typo = bad_key("angry_share = 0.05", "angry_shares = 0.05");
        assert!(typo.contains("angry_shares"), "{typo}");
        let tier = bad_key("membership = [\"vip\"]", "membership = [\"platinum\"]");
        assert!(tier.contains("platinum"), "{tier}");
    }
}
