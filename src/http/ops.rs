//! Operating endpoints: liveness, readiness, Prometheus metrics and the OpenAPI document.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::OpenApi;

use super::AppState;

/// Readiness details.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Ready {
    pub ready: bool,
    pub model_loaded: bool,
    pub storage: bool,
    pub encoder: String,
    pub head_version: String,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", responses((status = 200, description = "alive")))]
pub async fn healthz() -> &'static str {
    "ok"
}

/// The model is loaded and storage answers.
#[utoipa::path(get, path = "/readyz", responses((status = 200, body = Ready), (status = 503, body = Ready)))]
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let health = state.classifier.health();
    let storage = state.store.ping().await.is_ok();
    let ready = health.ready
        && storage
        && !state
            .shutting_down
            .load(std::sync::atomic::Ordering::Relaxed);
    let body = Ready {
        ready,
        model_loaded: health.ready,
        storage,
        encoder: health.encoder,
        head_version: health.head_version,
    };
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body))
}

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", responses((status = 200, description = "Prometheus metrics")))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    // Queue length per team comes from the database, so every instance reports the shared
    // queue.
    if let Ok(waiting) = state.store.waiting(10_000).await {
        let mut per_team: std::collections::BTreeMap<String, i64> = Default::default();
        for c in &waiting {
            let team = c.ticket.as_ref().map_or("unassigned", |t| t.team.as_str());
            *per_team.entry(team.to_string()).or_default() += 1;
        }
        state.metrics.queue_length.reset();
        for (team, n) in per_team {
            state
                .metrics
                .queue_length
                .with_label_values(&[&team])
                .set(n);
        }
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

/// The API description, generated from the handlers, with this server's configured limits.
pub async fn openapi(State(state): State<AppState>) -> impl IntoResponse {
    let mut doc = serde_json::to_value(super::ApiDoc::openapi()).unwrap_or_default();
    if let Some(text) = doc.pointer_mut("/components/schemas/MessageRequest/properties/text") {
        text["maxLength"] = state.settings.max_text_chars.into();
    }
    axum::Json(doc)
}
