//! The HTTP order provider against a local stand-in for a shop's order API on loopback.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::{Value, json};

use crate::helpers::spawn_app_with;

#[derive(Clone)]
struct Shop {
    calls: Arc<AtomicUsize>,
    /// Calls that fail with 503 before the API recovers.
    failures: usize,
}

/// Like a shop that checks ownership itself: it wants the verified customer Switchboard
/// passes along, and does not show an order to anyone else.
async fn order(
    State(shop): State<Shop>,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
) -> Result<axum::Json<Value>, StatusCode> {
    let n = shop.calls.fetch_add(1, Ordering::SeqCst);
    if n < shop.failures {
        return Err(StatusCode::SERVICE_UNAVAILABLE);
    }
    let customer = headers
        .get("x-switchboard-customer-id")
        .and_then(|v| v.to_str().ok())
        .ok_or(StatusCode::BAD_REQUEST)?;
    if id != "20261201-4242" || customer != "c-2001" {
        return Err(StatusCode::NOT_FOUND);
    }
    Ok(axum::Json(json!({
        "order_id": "20261201-4242", "customer_id": "c-2001", "status": "out_for_delivery",
        "carrier": "UPS", "tracking_number": "1Z999", "placed_at": "2026-12-01T10:00:00Z",
        "eta": "2026-12-03", "items": [],
        "last_event": {"at": "2026-12-03T07:00:00Z", "location": "Leeds", "description": "Out for delivery"}
    })))
}

async fn shop_api(failures: usize) -> (String, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let app = axum::Router::new()
        .route("/orders/{id}", get(order))
        .with_state(Shop {
            calls: calls.clone(),
            failures,
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/orders/{{order_id}}"), calls)
}

#[tokio::test]
async fn looks_orders_up_through_the_shop_api_with_retries() {
    let (url, calls) = shop_api(1).await;
    let app = spawn_app_with(|s| {
        s.orders.http_url = Some(url);
        s.orders.retries = Some(2);
    })
    .await;
    let a = app
        .say("c-2001", "where is order 20261201-4242?", None)
        .await;
    let reply = a["replies"][0]["text"].as_str().unwrap();
    assert!(
        reply.contains("out for delivery") && reply.contains("UPS") && reply.contains("Leeds"),
        "{reply}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2, "one 503, then a retry");
    // Not this customer's order: same answer as a missing one.
    let b = app
        .say("c-2002", "where is order 20261201-4242?", None)
        .await;
    assert_eq!(b["route_reason"], "tracking:not_found");
    app.stop().await;
}

#[tokio::test]
async fn an_unreachable_order_api_hands_off_with_a_clear_answer() {
    // A port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let app = spawn_app_with(|s| {
        s.orders.http_url = Some(format!("http://127.0.0.1:{port}/orders/{{order_id}}"));
        s.orders.retries = Some(1);
        s.orders.timeout_ms = Some(500);
    })
    .await;
    let a = app
        .say("c-2001", "where is my order 20261201-4242", None)
        .await;
    assert_eq!(a["route"], "human");
    assert_eq!(a["route_reason"], "order_lookup_unavailable");
    assert_eq!(a["state"], "waiting_for_human");
    assert!(
        a["replies"][0]["text"]
            .as_str()
            .unwrap()
            .contains("order system")
    );
    app.stop().await;
}
