//! Customers as the shop knows them: the value and risk signals the handoff priority uses.

use serde::{Deserialize, Serialize};

use super::{CustomerId, Lang};

/// Membership tier, lowest first.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    #[default]
    Standard,
    Silver,
    Gold,
    Vip,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Standard => "standard",
            Self::Silver => "silver",
            Self::Gold => "gold",
            Self::Vip => "vip",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "standard" => Some(Self::Standard),
            "silver" => Some(Self::Silver),
            "gold" => Some(Self::Gold),
            "vip" => Some(Self::Vip),
            _ => None,
        }
    }
}

/// A customer profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Customer {
    #[schema(value_type = String, example = "c-1001")]
    pub id: CustomerId,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    #[schema(value_type = String, example = "zh")]
    pub language: Lang,
    #[serde(default)]
    #[schema(value_type = String, example = "vip")]
    pub tier: Tier,
    /// Lifetime spend in the shop's minor currency unit (cents / fen).
    #[serde(default)]
    pub lifetime_spend_cents: i64,
    #[serde(default)]
    pub order_count: i64,
    /// Complaints in the last 90 days.
    #[serde(default)]
    pub complaints_90d: i64,
    #[serde(default)]
    pub tags: Vec<String>,
}

impl Customer {
    /// A profile for a customer the shop has not told us about yet.
    pub fn unknown(id: CustomerId, language: Lang) -> Self {
        Self {
            id,
            name: String::new(),
            language,
            tier: Tier::Standard,
            lifetime_spend_cents: 0,
            order_count: 0,
            complaints_90d: 0,
            tags: Vec::new(),
        }
    }
}
