//! Identifier newtypes, validated when parsed.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A rejected identifier.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum IdError {
    #[error("customer id must be 1-64 characters of letters, digits, '-', '_', '.', ':' or '@'")]
    Customer,
    #[error("conversation id must be a UUID")]
    Conversation,
    #[error("order id must look like 20231104-8812")]
    Order,
    #[error("agent id must be 1-64 characters of letters, digits, '-', '_', '.', ':' or '@'")]
    Agent,
}

/// Whether `s` is an opaque external id: 1-64 of letters, digits, `-`, `_`, `.`, `:`, `@`.
pub fn is_safe_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '@'))
}

/// A shop's customer id (opaque to us, restricted to a safe alphabet).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(try_from = "String", into = "String")]
pub struct CustomerId(String);

impl CustomerId {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        if is_safe_id(s) {
            Ok(Self(s.to_string()))
        } else {
            Err(IdError::Customer)
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for CustomerId {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        Self::parse(&s)
    }
}

impl From<CustomerId> for String {
    fn from(id: CustomerId) -> String {
        id.0
    }
}

impl fmt::Display for CustomerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A conversation id (UUID v4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ConversationId(pub uuid::Uuid);

impl ConversationId {
    pub fn new() -> Self {
        Self(uuid::Uuid::new_v4())
    }
    pub fn parse(s: &str) -> Result<Self, IdError> {
        uuid::Uuid::parse_str(s)
            .map(Self)
            .map_err(|_| IdError::Conversation)
    }
}

impl Default for ConversationId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for ConversationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// An order number: eight digits, a dash, four digits (e.g. `20231104-8812`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct OrderId(String);

impl OrderId {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let b = s.as_bytes();
        let ok =
            b.len() == 13 && b[8] == b'-' && b[..8].iter().chain(&b[9..]).all(u8::is_ascii_digit);
        if ok {
            Ok(Self(s.to_string()))
        } else {
            Err(IdError::Order)
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for OrderId {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        Self::parse(&s)
    }
}

impl From<OrderId> for String {
    fn from(id: OrderId) -> String {
        id.0
    }
}

impl fmt::Display for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_at_the_edge() {
        assert!(CustomerId::parse("c-1001").is_ok());
        assert!(CustomerId::parse("").is_err());
        assert!(CustomerId::parse("a b").is_err());
        assert!(CustomerId::parse(&"x".repeat(65)).is_err());
        assert!(OrderId::parse("20231104-8812").is_ok());
        assert!(OrderId::parse("2023110-48812").is_err());
        assert!(OrderId::parse("20231104-881").is_err());
        assert!(ConversationId::parse("nope").is_err());
    }
}
