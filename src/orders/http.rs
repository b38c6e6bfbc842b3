//! The shop's order API over HTTP: `GET` a configured URL template (`{order_id}` is replaced)
//! returning the order as JSON (the same shape as `demo/orders.json` entries); 404 means no
//! such order. The verified customer asking is sent as `X-Switchboard-Customer-Id` (and
//! replaces `{customer_id}` in the template when present); anonymous lookups send neither. Each attempt has a timeout; transient failures are retried with backoff.

use std::time::Duration;

use async_trait::async_trait;

use super::{OrderError, OrderProvider};
use crate::domain::{CustomerId, Order, OrderId};

/// Settings of the HTTP provider.
#[derive(Debug, Clone)]
pub struct HttpOrdersConfig {
    /// E.g. `https://shop.example/api/orders/{order_id}`.
    pub url_template: String,
    /// Sent as `Authorization: Bearer …` when set.
    pub token: Option<String>,
    pub timeout: Duration,
    /// Attempts after the first one.
    pub retries: u32,
}

/// Calls the shop's order API.
pub struct HttpOrders {
    client: reqwest::Client,
    config: HttpOrdersConfig,
}

impl HttpOrders {
    pub fn new(config: HttpOrdersConfig) -> Result<Self, OrderError> {
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(|e| OrderError::Unavailable(e.to_string()))?;
        Ok(Self { client, config })
    }

    async fn attempt(
        &self,
        id: &OrderId,
        customer: Option<&CustomerId>,
    ) -> Result<Option<Order>, Attempt> {
        let url = self
            .config
            .url_template
            .replace("{order_id}", id.as_str())
            .replace("{customer_id}", customer.map_or("", |c| c.as_str()));
        let mut req = self.client.get(&url);
        if let Some(c) = customer {
            req = req.header("x-switchboard-customer-id", c.as_str());
        }
        if let Some(t) = &self.config.token {
            req = req.bearer_auth(t);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| Attempt::Retry(e.to_string()))?;
        let status = resp.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Err(Attempt::Retry(format!("HTTP {status}")));
        }
        if !status.is_success() {
            return Err(Attempt::Fail(format!("HTTP {status}")));
        }
        let order: Order = resp
            .json()
            .await
            .map_err(|e| Attempt::Fail(format!("bad order JSON: {e}")))?;
        // Never trust an answer about a different order than the one asked for.
        if &order.order_id != id {
            return Err(Attempt::Fail("order API answered for another order".into()));
        }
        Ok(Some(order))
    }
}

enum Attempt {
    Retry(String),
    Fail(String),
}

#[async_trait]
impl OrderProvider for HttpOrders {
    async fn find(
        &self,
        id: &OrderId,
        customer: Option<&CustomerId>,
    ) -> Result<Option<Order>, OrderError> {
        let mut delay = Duration::from_millis(100);
        let mut last = String::new();
        for attempt in 0..=self.config.retries {
            if attempt > 0 {
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            match self.attempt(id, customer).await {
                Ok(found) => return Ok(found),
                Err(Attempt::Fail(e)) => return Err(OrderError::Unavailable(e)),
                Err(Attempt::Retry(e)) => {
                    tracing::warn!(order = %id, attempt, error = %e, "order lookup failed");
                    last = e;
                }
            }
        }
        Err(OrderError::Unavailable(last))
    }
}
