//! Human agents: who they are, which languages and teams they serve, how many conversations
//! they hold at once, and whether they are available.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{IdError, Lang};

/// An agent id (same safe alphabet as customer ids).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(try_from = "String", into = "String")]
pub struct AgentId(String);

impl AgentId {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        if super::ids::is_safe_id(s) {
            Ok(Self(s.to_string()))
        } else {
            Err(IdError::Agent)
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for AgentId {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        Self::parse(&s)
    }
}

impl From<AgentId> for String {
    fn from(id: AgentId) -> String {
        id.0
    }
}

impl std::fmt::Display for AgentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What an agent said about their availability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AgentStatus {
    /// Available while connected (the console's live connection keeps `last_seen_at` fresh).
    #[default]
    Online,
    /// Signed in but taking no new conversations.
    Away,
    /// Not working: holds nothing.
    Offline,
}

impl AgentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Online => "online",
            Self::Away => "away",
            Self::Offline => "offline",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "online" => Some(Self::Online),
            "away" => Some(Self::Away),
            "offline" => Some(Self::Offline),
            _ => None,
        }
    }
}

/// An agent.
#[derive(Debug, Clone, PartialEq)]
pub struct Agent {
    pub id: AgentId,
    pub name: String,
    pub languages: Vec<Lang>,
    pub teams: Vec<String>,
    /// Conversations held at once.
    pub capacity: u32,
    pub status: AgentStatus,
    pub created_at: DateTime<Utc>,
    /// Last sign of life (API call or live connection).
    pub last_seen_at: Option<DateTime<Utc>>,
}

impl Agent {
    /// Takes new conversations: online and seen within `fresh`.
    pub fn is_available(&self, now: DateTime<Utc>, fresh: chrono::Duration) -> bool {
        self.status == AgentStatus::Online && self.last_seen_at.is_some_and(|t| now - t <= fresh)
    }
}
