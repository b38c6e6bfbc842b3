//! The handoff ticket: what a conversation carries into the human queue (tier, priority, SLA
//! deadline, team, language), computed purely from the customer profile, the intent, the risk
//! signals, the clock and the policy.

use chrono::{DateTime, Duration, Utc};

use super::policy::RoutingPolicy;
use super::sla;
use crate::domain::{Customer, Lang};

/// Everything a ticket depends on.
#[derive(Debug, Clone)]
pub struct TicketInput<'a> {
    pub customer: &'a Customer,
    /// The intent of the message that handed off, when one was recognised.
    pub intent: Option<&'a str>,
    /// The stable handoff reason (`HandoffReason::code()`).
    pub reason_code: &'a str,
    /// The message read as angry (`anger::is_upset`).
    pub angry: bool,
    /// Conversations this customer opened in the last 7 days, this one included.
    pub recent_contacts_7d: u32,
    pub lang: Lang,
    pub now: DateTime<Utc>,
}

pub use crate::domain::{HandoffTicket, RiskSignal};

/// The ticket of a conversation handed off now.
pub fn ticket(input: &TicketInput<'_>, policy: &RoutingPolicy) -> HandoffTicket {
    let tier = policy.tier_for(input.customer);
    let intent_rule = input.intent.and_then(|i| policy.intents.get(i));

    let mut sla = tier.sla;
    let mut priority = tier.priority;
    if let Some(rule) = intent_rule {
        if let Some(cap) = rule.sla {
            sla = sla.min(cap);
        }
        priority += rule.priority_boost;
    }

    let signals = signals(input, policy);
    if !signals.is_empty() {
        let risk = &policy.risk;
        let tightened = scale(sla, risk.sla_factor).max(risk.min_sla);
        // The floor only stops the factor from going too far; it never loosens an SLA that
        // was already below it.
        sla = sla.min(tightened);
        priority += risk.priority_boost * signals.len() as i32;
    }

    let team = policy.team_for(input.intent).to_string();
    let sla_due = sla::due_at(input.now, sla, policy.hours(&team));
    HandoffTicket {
        reason_code: input.reason_code.to_string(),
        tier: tier.name.clone(),
        priority,
        sla_due,
        sla_seconds: sla.num_seconds(),
        team,
        lang: input.lang,
        signals,
        breached_at: None,
    }
}

/// The risk signals present, in a fixed order.
pub fn signals(input: &TicketInput<'_>, policy: &RoutingPolicy) -> Vec<RiskSignal> {
    let risk = &policy.risk;
    let mut out = Vec::new();
    if risk
        .complaints_90d_at_least
        .is_some_and(|n| input.customer.complaints_90d >= n)
    {
        out.push(RiskSignal::FrequentComplainer);
    }
    if risk.anger && input.angry {
        out.push(RiskSignal::Angry);
    }
    if input
        .intent
        .is_some_and(|i| risk.complaint_intents.contains(i))
    {
        out.push(RiskSignal::ComplaintIntent);
    }
    if risk
        .repeat_contacts_7d_at_least
        .is_some_and(|n| input.recent_contacts_7d >= n)
    {
        out.push(RiskSignal::RepeatContact);
    }
    out
}

/// A duration times a factor, to the millisecond.
fn scale(d: Duration, factor: f64) -> Duration {
    Duration::milliseconds((d.num_milliseconds() as f64 * factor).round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{CustomerId, Tier};
    use chrono::TimeZone;

    struct Case {
        membership: Tier,
        spend: i64,
        complaints: i64,
        intent: Option<&'static str>,
        angry: bool,
        contacts: u32,
        // Expected:
        tier: &'static str,
        sla_s: i64,
        priority: i32,
        team: &'static str,
    }

    fn base(membership: Tier, intent: Option<&'static str>) -> Case {
        Case {
            membership,
            spend: 0,
            complaints: 0,
            intent,
            angry: false,
            contacts: 1,
            tier: "",
            sla_s: 0,
            priority: 0,
            team: "",
        }
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0)
            .single()
            .expect("time")
    }

    fn check(c: Case) {
        let policy = RoutingPolicy::default();
        let customer = Customer {
            tier: c.membership,
            lifetime_spend_cents: c.spend,
            complaints_90d: c.complaints,
            ..Customer::unknown(CustomerId::parse("c-1").expect("id"), Lang::Zh)
        };
        let t = ticket(
            &TicketInput {
                customer: &customer,
                intent: c.intent,
                reason_code: "asked_for_human",
                angry: c.angry,
                recent_contacts_7d: c.contacts,
                lang: Lang::Zh,
                now: now(),
            },
            &policy,
        );
        let what = format!("{:?} {:?} angry={}", c.membership, c.intent, c.angry);
        assert_eq!(t.tier, c.tier, "tier of {what}");
        assert_eq!(t.sla_seconds, c.sla_s, "sla of {what}");
        assert_eq!(
            t.sla_due,
            now() + Duration::seconds(c.sla_s),
            "due of {what}"
        );
        assert_eq!(t.priority, c.priority, "priority of {what}");
        assert_eq!(t.team, c.team, "team of {what}");
        assert_eq!(t.lang, Lang::Zh);
        assert_eq!(t.reason_code, "asked_for_human");
    }

    #[test]
    fn ticket_table() {
        use Tier::*;
        // Plain tiers, no intent rule: the tier's SLA and priority, the default team.
        check(Case {
            tier: "vip",
            sla_s: 15 * 60,
            priority: 300,
            team: "general",
            ..base(Vip, Some("human_agent"))
        });
        check(Case {
            tier: "regular",
            sla_s: 120 * 60,
            priority: 100,
            team: "general",
            ..base(Standard, None)
        });
        // High lifetime value without the membership is VIP too.
        check(Case {
            spend: 3_000_000,
            tier: "vip",
            sla_s: 15 * 60,
            priority: 300,
            team: "general",
            ..base(Standard, Some("product_question"))
        });
        check(Case {
            tier: "gold",
            sla_s: 45 * 60,
            priority: 200,
            team: "refunds",
            ..base(Gold, Some("refund_status"))
        });
        // An intent cap tightens a regular's SLA but never loosens a VIP's.
        check(Case {
            tier: "regular",
            sla_s: 60 * 60,
            priority: 130,
            team: "quality",
            ..base(Standard, Some("damaged_item"))
        });
        check(Case {
            tier: "vip",
            sla_s: 15 * 60,
            priority: 330,
            team: "quality",
            ..base(Vip, Some("damaged_item"))
        });
        // A complaint intent is a risk signal: cap 30 min, halved to 15; boost 50 + 25.
        check(Case {
            tier: "regular",
            sla_s: 15 * 60,
            priority: 175,
            team: "quality",
            ..base(Standard, Some("complaint"))
        });
        // Anger alone halves the SLA.
        check(Case {
            angry: true,
            tier: "regular",
            sla_s: 60 * 60,
            priority: 125,
            team: "general",
            ..base(Standard, Some("human_agent"))
        });
        // Several signals: the factor applies once, each signal adds priority.
        check(Case {
            angry: true,
            complaints: 3,
            contacts: 4,
            tier: "regular",
            sla_s: 60 * 60,
            priority: 175,
            team: "logistics",
            ..base(Standard, Some("change_address"))
        });
        // Thresholds are inclusive and one below is no signal.
        check(Case {
            complaints: 1,
            contacts: 2,
            tier: "gold",
            sla_s: 45 * 60,
            priority: 200,
            team: "general",
            ..base(Gold, None)
        });
        check(Case {
            contacts: 3,
            tier: "gold",
            sla_s: 22 * 60 + 30,
            priority: 225,
            team: "general",
            ..base(Gold, None)
        });
        // The floor: an angry VIP complaint is 15 * 0.5 = 7.5 min, above the 5 min floor.
        check(Case {
            angry: true,
            complaints: 5,
            tier: "vip",
            sla_s: 7 * 60 + 30,
            priority: 300 + 50 + 3 * 25,
            team: "quality",
            ..base(Vip, Some("complaint"))
        });
    }

    #[test]
    fn floor_never_loosens_and_hours_move_the_deadline() {
        let text = crate::routing::policy::DEFAULT_POLICY
            .replace("min_sla_minutes = 5", "min_sla_minutes = 20")
            .replace(
                "[teams.quality]",
                "[teams.quality.hours]\ntime_zone = \"UTC\"\nmon = [\"09:00-18:00\"]\ntue = [\"09:00-18:00\"]",
            );
        let policy = RoutingPolicy::parse(&text).expect("policy");
        let customer = Customer {
            tier: Tier::Vip,
            ..Customer::unknown(CustomerId::parse("c-2").expect("id"), Lang::En)
        };
        // Monday 17:55 UTC: 5 minutes left today, the rest on Tuesday morning.
        let now = Utc
            .with_ymd_and_hms(2026, 11, 23, 17, 55, 0)
            .single()
            .expect("time");
        let input = TicketInput {
            customer: &customer,
            intent: Some("complaint"),
            reason_code: "upset_customer",
            angry: false,
            recent_contacts_7d: 1,
            lang: Lang::En,
            now,
        };
        let t = ticket(&input, &policy);
        // 15 min * 0.5 = 7.5 is raised to the 20 min floor, which is above 15: stays 15.
        assert_eq!(t.sla_seconds, 15 * 60);
        assert_eq!(
            t.sla_due,
            Utc.with_ymd_and_hms(2026, 11, 24, 9, 10, 0)
                .single()
                .expect("time")
        );
        assert_eq!(t.signals, vec![RiskSignal::ComplaintIntent]);
    }
}
