//! The queue ticket of a handed-off conversation: why, for which team and language, how urgent,
//! and by when the first human answer is due. Computed by `routing::ticket`, stored with the
//! conversation, read by the queue.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Lang;

/// A risk signal that tightened the SLA or raised the priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RiskSignal {
    /// Complaints in the last 90 days at or above the policy's threshold.
    FrequentComplainer,
    Angry,
    ComplaintIntent,
    /// Contacts in the last 7 days at or above the policy's threshold.
    RepeatContact,
}

/// The queue ticket of a handed-off conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandoffTicket {
    pub reason_code: String,
    /// The policy tier name (e.g. `vip`, `regular`).
    pub tier: String,
    /// Higher is more urgent; breaks ties between equal deadlines and is shown to agents.
    pub priority: i32,
    /// The first response is due by then.
    pub sla_due: DateTime<Utc>,
    /// The SLA granted, in seconds of the team's open time.
    pub sla_seconds: i64,
    pub team: String,
    pub lang: Lang,
    pub signals: Vec<RiskSignal>,
    /// When the first human answer came after `sla_due` (stored, counted in metrics).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breached_at: Option<DateTime<Utc>>,
}
