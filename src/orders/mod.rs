//! Order providers: where the bot looks orders up. The embedded provider reads orders imported
//! into the store; the HTTP provider calls the shop's own order API.

pub mod http;

use std::sync::Arc;

use async_trait::async_trait;

use crate::domain::{CustomerId, Order, OrderId};
use crate::store::Store;

/// An order lookup failed for a reason other than "no such order".
#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    #[error("order system unavailable: {0}")]
    Unavailable(String),
}

/// Looks orders up by number.
#[async_trait]
pub trait OrderProvider: Send + Sync {
    /// The order, `None` when the shop has no such order. `customer` is the verified shopper
    /// asking (none for an anonymous one), passed on so the shop's API can check ownership too;
    /// the caller still never describes an order that belongs to someone else.
    async fn find(
        &self,
        id: &OrderId,
        customer: Option<&CustomerId>,
    ) -> Result<Option<Order>, OrderError>;
}

/// Orders imported into the embedded store (`switchboard import orders`).
pub struct StoreOrders {
    store: Arc<dyn Store>,
}

impl StoreOrders {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }
}

#[async_trait]
impl OrderProvider for StoreOrders {
    async fn find(
        &self,
        id: &OrderId,
        _customer: Option<&CustomerId>,
    ) -> Result<Option<Order>, OrderError> {
        self.store
            .order(id)
            .await
            .map_err(|e| OrderError::Unavailable(e.to_string()))
    }
}
