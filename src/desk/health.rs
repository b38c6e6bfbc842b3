//! Queue health for the admin view: per team, how many wait, how long the oldest has waited
//! and how many are past their deadline; for the day, how many first answers were on time.
//! A pure summary of conversations the desk read, so it is tested without a database.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::Conversation;

/// One team's line.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TeamHealth {
    pub team: String,
    /// Conversations waiting for a human.
    pub waiting: usize,
    /// When the longest-waiting conversation was handed off.
    pub oldest_since: Option<DateTime<Utc>>,
    /// How long it has waited, in seconds.
    pub oldest_wait_seconds: Option<i64>,
    /// Waiting conversations already past their first-response deadline.
    pub overdue: usize,
}

/// The queue's state now and its first-response record since `since`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct QueueHealth {
    pub at: DateTime<Utc>,
    /// Start of the period the daily figures cover (midnight UTC).
    pub since: DateTime<Utc>,
    /// Every team of the policy, then any other team a ticket names, in name order.
    pub teams: Vec<TeamHealth>,
    pub waiting: usize,
    /// Waiting now and already past their deadline.
    pub overdue_now: usize,
    /// First human answers given since `since`.
    pub answered_today: usize,
    /// Of those, how many came after the deadline.
    pub breached_today: usize,
    /// SLA breaches of the day: late first answers plus conversations still waiting past
    /// their deadline (each will be a late answer too).
    pub sla_breaches_today: usize,
}

/// Summarises `waiting` conversations (any order) and the conversations first `answered`
/// since `since`, for the `teams` of the policy.
pub fn summarise(
    waiting: &[Conversation],
    answered: &[Conversation],
    teams: &[String],
    since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> QueueHealth {
    let mut by_team: BTreeMap<String, TeamHealth> = teams
        .iter()
        .map(|t| {
            (
                t.clone(),
                TeamHealth {
                    team: t.clone(),
                    waiting: 0,
                    oldest_since: None,
                    oldest_wait_seconds: None,
                    overdue: 0,
                },
            )
        })
        .collect();
    for c in waiting {
        let team = c
            .ticket
            .as_ref()
            .map_or_else(|| "unassigned".to_string(), |t| t.team.clone());
        let line = by_team.entry(team.clone()).or_insert_with(|| TeamHealth {
            team,
            waiting: 0,
            oldest_since: None,
            oldest_wait_seconds: None,
            overdue: 0,
        });
        line.waiting += 1;
        let since = c.handoff_at.unwrap_or(c.updated_at);
        if line.oldest_since.is_none_or(|o| since < o) {
            line.oldest_since = Some(since);
            line.oldest_wait_seconds = Some((now - since).num_seconds().max(0));
        }
        if c.ticket.as_ref().is_some_and(|t| t.sla_due < now) {
            line.overdue += 1;
        }
    }
    let teams: Vec<TeamHealth> = by_team.into_values().collect();
    let overdue_now = teams.iter().map(|t| t.overdue).sum();
    let breached_today = answered
        .iter()
        .filter(|c| c.ticket.as_ref().is_some_and(|t| t.breached_at.is_some()))
        .count();
    QueueHealth {
        at: now,
        since,
        waiting: teams.iter().map(|t| t.waiting).sum(),
        overdue_now,
        teams,
        answered_today: answered.len(),
        breached_today,
        sla_breaches_today: breached_today + overdue_now,
    }
}

/// Midnight UTC of `now`'s day.
pub fn start_of_day(now: DateTime<Utc>) -> DateTime<Utc> {
    now.date_naive()
        .and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .and_utc()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{
        ConversationId, ConversationState, CustomerId, HandoffTicket, Lang, Slots,
    };
    use chrono::Duration;

    fn conv(
        team: &str,
        waited_minutes: i64,
        due_in_minutes: i64,
        now: DateTime<Utc>,
    ) -> Conversation {
        Conversation {
            id: ConversationId::new(),
            customer_id: CustomerId::parse("c-1").unwrap(),
            verified: true,
            channel: "web".into(),
            lang: Lang::En,
            state: ConversationState::WaitingForHuman,
            slots: Slots::default(),
            created_at: now - Duration::minutes(waited_minutes),
            updated_at: now,
            handoff_reason: Some("ask_for_human".into()),
            handoff_intent: None,
            handoff_at: Some(now - Duration::minutes(waited_minutes)),
            version: 1,
            ticket: Some(HandoffTicket {
                reason_code: "ask_for_human".into(),
                tier: "regular".into(),
                priority: 1,
                sla_due: now + Duration::minutes(due_in_minutes),
                sla_seconds: 600,
                team: team.into(),
                lang: Lang::En,
                signals: vec![],
                breached_at: None,
            }),
            agent_id: None,
            assigned_at: None,
            first_response_at: None,
            resolution: None,
            csat_score: None,
        }
    }

    #[test]
    fn teams_count_waits_the_oldest_and_the_overdue() {
        let now = Utc::now();
        let waiting = [
            conv("refunds", 3, 10, now),
            conv("refunds", 40, -5, now),
            conv("general", 1, 100, now),
            conv("billing", 7, -1, now),
        ];
        let teams = ["general".to_string(), "logistics".into(), "refunds".into()];
        let h = summarise(&waiting, &[], &teams, start_of_day(now), now);
        let names: Vec<&str> = h.teams.iter().map(|t| t.team.as_str()).collect();
        // Policy teams with nobody waiting are listed; a team only a ticket names is too.
        assert_eq!(names, ["billing", "general", "logistics", "refunds"]);
        let refunds = &h.teams[3];
        assert_eq!(refunds.waiting, 2);
        assert_eq!(refunds.oldest_wait_seconds, Some(40 * 60));
        assert_eq!(refunds.overdue, 1);
        assert_eq!(h.teams[2].waiting, 0);
        assert_eq!(h.teams[2].oldest_since, None);
        assert_eq!((h.waiting, h.overdue_now), (4, 2));
    }

    #[test]
    fn late_first_answers_count_as_breaches_with_the_overdue() {
        let now = Utc::now();
        let on_time = conv("general", 5, 5, now);
        let mut late = conv("general", 50, -20, now);
        late.ticket.as_mut().unwrap().breached_at = Some(now);
        let overdue = conv("general", 30, -1, now);
        let h = summarise(&[overdue], &[on_time, late], &[], start_of_day(now), now);
        assert_eq!((h.answered_today, h.breached_today), (2, 1));
        assert_eq!(h.sla_breaches_today, 2);
    }

    #[test]
    fn the_day_starts_at_midnight_utc() {
        let t = chrono::DateTime::parse_from_rfc3339("2026-11-26T17:45:12Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(start_of_day(t).to_rfc3339(), "2026-11-26T00:00:00+00:00");
    }
}
