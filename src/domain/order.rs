//! Orders as an order provider reports them.

use serde::{Deserialize, Serialize};

use super::{CustomerId, OrderId};

/// Where an order is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Placed,
    Paid,
    Shipped,
    InTransit,
    OutForDelivery,
    Delivered,
    Cancelled,
    Returned,
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderItem {
    pub sku: String,
    pub name: String,
    pub qty: i64,
    pub price_cents: i64,
}

/// The latest carrier scan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderEvent {
    pub at: chrono::DateTime<chrono::Utc>,
    #[serde(default)]
    pub location: Option<String>,
    pub description: String,
    #[serde(default)]
    pub description_zh: Option<String>,
}

/// An order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub order_id: OrderId,
    pub customer_id: CustomerId,
    pub status: OrderStatus,
    #[serde(default)]
    pub carrier: Option<String>,
    #[serde(default)]
    pub tracking_number: Option<String>,
    pub placed_at: chrono::DateTime<chrono::Utc>,
    #[serde(default)]
    pub eta: Option<chrono::NaiveDate>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub total_cents: Option<i64>,
    #[serde(default)]
    pub items: Vec<OrderItem>,
    #[serde(default)]
    pub last_event: Option<OrderEvent>,
    /// Contact details on the order: an anonymous shopper must name one of them (the second
    /// factor) before the bot describes the order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// The delivery postcode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postcode: Option<String>,
}
