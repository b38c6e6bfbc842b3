//! Routing: a pure function from (classification, intent catalogue entry, conversation memory,
//! message text, policy) to what happens next: the bot answers, asks again, or hands off to a
//! human, with a stable reason. No I/O here; exhaustively table-tested.

pub mod anger;
pub mod policy;
pub mod queue;
pub mod sla;
pub mod ticket;

pub use policy::{PolicyError, RoutingPolicy};
pub use queue::{AgentSkills, QueueEntry};
pub use ticket::{HandoffTicket, TicketInput, ticket};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::{Customer, Lang, Slots};
use crate::intents::{AnswerKind, IntentSpec, Role, Route};
use crate::nlu::Classification;

/// Knobs of the bot's routing.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BotPolicy {
    /// Below this calibrated confidence the bot does not act on the intent.
    pub min_confidence: f32,
    /// Consecutive misunderstood or unanswerable messages before a handoff.
    pub max_misses: u32,
}

impl Default for BotPolicy {
    fn default() -> Self {
        Self {
            min_confidence: 0.45,
            max_misses: 2,
        }
    }
}

/// How the bot answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Tracking,
    Faq,
    Smalltalk,
}

/// Why a conversation goes to a human.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandoffReason {
    /// The shopper asked for a person.
    AskedForHuman,
    /// A complaint, or an angry message.
    Upset,
    /// The intent's route is `human` in `intents/`.
    IntentNeedsHuman(String),
    /// The bot failed to understand or answer several times in a row.
    RepeatedMisses,
    /// The order system could not be reached.
    LookupUnavailable,
}

impl HandoffReason {
    /// Stable, machine-readable form stored with the message.
    pub fn code(&self) -> String {
        match self {
            Self::AskedForHuman => "asked_for_human".into(),
            Self::Upset => "upset_customer".into(),
            Self::IntentNeedsHuman(i) => format!("intent_routes_to_human:{i}"),
            Self::RepeatedMisses => "repeated_low_confidence".into(),
            Self::LookupUnavailable => "order_lookup_unavailable".into(),
        }
    }
}

/// The routing decision for one shopper message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Answer(Answer),
    /// Ask the shopper to rephrase (the message was not understood).
    Clarify,
    Handoff(HandoffReason),
}

/// Who is asking and when: what a handoff ticket depends on besides the message.
pub struct RouteContext<'a> {
    /// The verified customer's profile (an empty one for anonymous shoppers).
    pub customer: &'a Customer,
    /// Conversations the customer opened in the last 7 days, this one included.
    pub recent_contacts_7d: u32,
    pub lang: Lang,
    pub now: DateTime<Utc>,
    /// The queue policy (tiers, SLAs, teams, business hours).
    pub routing: &'a RoutingPolicy,
}

/// Everything the decision depends on.
pub struct RouteInput<'a> {
    pub classification: &'a Classification,
    pub spec: Option<&'a IntentSpec>,
    pub slots: &'a Slots,
    pub text: &'a str,
    /// The message carries an order number.
    pub has_order_number: bool,
    /// The bot waits for an anonymous shopper's contact detail and the message has one.
    pub has_contact_factor: bool,
    pub policy: &'a BotPolicy,
}

/// The queue ticket for handing a conversation off for `reason` after the message `text`
/// classified as `c`: routing decides the route and, for a handoff, the tier, priority, SLA
/// deadline and team, from the customer, the clock and the policy. Called once a handoff is
/// decided (by `decide`, after repeated misses, or when the order system is down), so the
/// context's I/O (recent contacts) is only paid for handoffs.
pub fn handoff_ticket(
    c: &Classification,
    text: &str,
    reason: &HandoffReason,
    ctx: &RouteContext<'_>,
) -> HandoffTicket {
    ticket(
        &TicketInput {
            customer: ctx.customer,
            intent: (!c.out_of_scope).then_some(c.intent.as_str()),
            reason_code: &reason.code(),
            angry: anger::is_upset(text),
            recent_contacts_7d: ctx.recent_contacts_7d,
            lang: ctx.lang,
            now: ctx.now,
        },
        ctx.routing,
    )
}

/// Decides what happens to a shopper message in a conversation the bot holds.
pub fn decide(input: &RouteInput<'_>) -> Decision {
    let c = input.classification;
    let confident = !c.out_of_scope && c.confidence >= input.policy.min_confidence;
    let role = input.spec.filter(|_| confident).and_then(|s| s.role);
    if role == Some(Role::AskForHuman) {
        return Decision::Handoff(HandoffReason::AskedForHuman);
    }
    if role == Some(Role::Complaint) || anger::is_upset(input.text) {
        return Decision::Handoff(HandoffReason::Upset);
    }
    // An order number while the bot waits for one is the answer, whatever the classifier says;
    // so is the contact detail that verifies an anonymous shopper's order.
    let tracking_intent = input.spec.is_some_and(|s| s.answer == AnswerKind::Tracking);
    if input.has_order_number && (input.slots.awaiting_order_number || tracking_intent) {
        return Decision::Answer(Answer::Tracking);
    }
    if input.has_contact_factor && input.slots.pending_order.is_some() {
        return Decision::Answer(Answer::Tracking);
    }
    let Some(spec) = input.spec.filter(|_| confident) else {
        return miss(input);
    };
    match (spec.route, spec.answer) {
        (Route::Human, _) | (_, AnswerKind::Handoff) => {
            Decision::Handoff(HandoffReason::IntentNeedsHuman(spec.name.clone()))
        }
        (Route::Bot, AnswerKind::Tracking) => Decision::Answer(Answer::Tracking),
        (Route::Bot, AnswerKind::Faq) => Decision::Answer(Answer::Faq),
        (Route::Bot, AnswerKind::Smalltalk) => Decision::Answer(Answer::Smalltalk),
    }
}

/// A message the bot cannot act on: ask again, or hand off when it keeps happening.
pub fn miss(input: &RouteInput<'_>) -> Decision {
    if input.slots.misses + 1 >= input.policy.max_misses {
        Decision::Handoff(HandoffReason::RepeatedMisses)
    } else {
        Decision::Clarify
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nlu::Classification;

    fn spec(name: &str, route: Route, answer: AnswerKind) -> IntentSpec {
        IntentSpec {
            name: name.into(),
            route,
            answer,
            role: match name {
                "human_agent" => Some(Role::AskForHuman),
                "complaint" => Some(Role::Complaint),
                "greeting" => Some(Role::Greeting),
                _ => None,
            },
            description: String::new(),
            description_zh: String::new(),
        }
    }

    fn cls(intent: &str, confidence: f32, oos: bool) -> Classification {
        Classification {
            intent: intent.into(),
            confidence,
            out_of_scope: oos,
            scope_score: 1.0,
            alternatives: vec![],
            embedding: vec![],
        }
    }

    struct Case {
        intent: &'static str,
        confidence: f32,
        oos: bool,
        text: &'static str,
        awaiting: bool,
        misses: u32,
        order_no: bool,
        /// An anonymous shopper's order waits for a contact detail, and the text has one.
        pending_factor: bool,
        expect: Decision,
    }

    fn check(case: Case) {
        let catalog = [
            spec("order_tracking", Route::Bot, AnswerKind::Tracking),
            spec("refund_policy", Route::Bot, AnswerKind::Faq),
            spec("greeting", Route::Bot, AnswerKind::Smalltalk),
            spec("damaged_item", Route::Human, AnswerKind::Handoff),
            spec("human_agent", Route::Human, AnswerKind::Handoff),
            spec("complaint", Route::Human, AnswerKind::Handoff),
        ];
        let c = cls(case.intent, case.confidence, case.oos);
        let slots = Slots {
            awaiting_order_number: case.awaiting,
            misses: case.misses,
            pending_order: case
                .pending_factor
                .then(|| crate::domain::OrderId::parse("20261119-5508").unwrap()),
        };
        let policy = BotPolicy::default();
        let customer =
            Customer::unknown(crate::domain::CustomerId::parse("c-1").unwrap(), Lang::En);
        let routing = RoutingPolicy::default();
        let input = RouteInput {
            classification: &c,
            spec: catalog.iter().find(|s| s.name == case.intent),
            slots: &slots,
            text: case.text,
            has_order_number: case.order_no,
            has_contact_factor: case.pending_factor,
            policy: &policy,
        };
        if let Decision::Handoff(reason) = &case.expect {
            // A handoff comes with its ticket, computed by routing from the same message.
            let ctx = RouteContext {
                customer: &customer,
                recent_contacts_7d: 1,
                lang: Lang::En,
                now: Utc::now(),
                routing: &routing,
            };
            let t = handoff_ticket(&c, case.text, reason, &ctx);
            assert_eq!(t.reason_code, reason.code());
            assert!(t.sla_due > ctx.now);
        }
        assert_eq!(
            decide(&input),
            case.expect,
            "{} / {}",
            case.intent,
            case.text
        );
    }

    #[test]
    fn routing_table() {
        use Decision::*;
        use HandoffReason::*;
        let base = |intent, expect| Case {
            intent,
            confidence: 0.9,
            oos: false,
            text: "hello there",
            awaiting: false,
            misses: 0,
            order_no: false,
            pending_factor: false,
            expect,
        };
        check(base("order_tracking", Answer(super::Answer::Tracking)));
        check(base("refund_policy", Answer(super::Answer::Faq)));
        check(base("greeting", Answer(super::Answer::Smalltalk)));
        check(base(
            "damaged_item",
            Handoff(IntentNeedsHuman("damaged_item".into())),
        ));
        check(base("human_agent", Handoff(AskedForHuman)));
        check(base("complaint", Handoff(Upset)));
        // Low confidence: clarify first, hand off on the second miss in a row.
        check(Case {
            confidence: 0.2,
            ..base("refund_policy", Clarify)
        });
        check(Case {
            confidence: 0.2,
            misses: 1,
            ..base("refund_policy", Handoff(RepeatedMisses))
        });
        check(Case {
            oos: true,
            ..base("out_of_scope", Clarify)
        });
        check(Case {
            oos: true,
            misses: 1,
            ..base("out_of_scope", Handoff(RepeatedMisses))
        });
        // An order number answers a pending question even when the classifier is unsure.
        check(Case {
            confidence: 0.1,
            awaiting: true,
            order_no: true,
            ..base("greeting", Answer(super::Answer::Tracking))
        });
        check(Case {
            awaiting: true,
            order_no: false,
            ..base("refund_policy", Answer(super::Answer::Faq))
        });
        // The contact detail that verifies an anonymous shopper's order goes back to tracking.
        check(Case {
            confidence: 0.3,
            pending_factor: true,
            ..base("out_of_scope", Answer(super::Answer::Tracking))
        });
        // Anger wins over a bot intent.
        check(Case {
            text: "THIS IS RIDICULOUS!!! where is my order",
            ..base("order_tracking", Handoff(Upset))
        });
        check(Case {
            text: "我要投诉你们",
            ..base("refund_policy", Handoff(Upset))
        });
        // An intent missing from the catalogue is a miss, never a crash.
        check(base("brand_new_intent", Clarify));
    }
}
