//! The HTTP API (axum): `router(state)`, shared state, and the OpenAPI description. Only this
//! module knows axum, status codes and wire JSON; handlers are thin and call the dialogue
//! engine or the store.

pub mod agents;
pub mod attachments;
pub mod auth;
pub mod channels;
pub mod console;
pub mod customers;
pub mod desk;
pub mod error;
pub mod extract;
pub mod live;
pub mod messages;
pub mod ops;
pub mod overview;
pub mod web;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post, put};
use tokio::sync::Semaphore;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;

use crate::dialogue::Dialogue;
use crate::metrics::Metrics;
use crate::nlu::IntentClassifier;
use crate::settings::Settings;
use crate::store::Store;
use auth::Tokens;
use error::ApiError;
use extract::BodyLimit;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub store: Arc<dyn Store>,
    pub classifier: Arc<dyn IntentClassifier>,
    pub dialogue: Arc<Dialogue>,
    pub tokens: Arc<Tokens>,
    /// Verifies `customer_hash` values.
    pub identity: Arc<crate::identity::IdentityVerifier>,
    /// The human queue and agents' actions.
    pub desk: Arc<crate::desk::Desk>,
    /// Wakes live connections after commits.
    pub notifier: Arc<crate::live::Notifier>,
    pub metrics: Arc<Metrics>,
    /// Caps shopper messages in flight; beyond it the API answers 429.
    pub in_flight: Arc<Semaphore>,
    /// Set when shutdown begins, so `/readyz` turns away new traffic.
    pub shutting_down: Arc<AtomicBool>,
    /// WhatsApp, Telegram and the generic webhook.
    pub channels: Arc<crate::channels::Channels>,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Switchboard API", description = "After-sales chat: understand, answer, route."),
    paths(
        messages::post_message, messages::get_conversation, messages::post_csat,
        attachments::upload, attachments::download,
        agents::create, agents::list, agents::patch, agents::delete,
        desk::queue, desk::claim_next, desk::claim, desk::get, desk::reply, desk::note,
        desk::transfer, desk::handback, desk::resolve,
        overview::me, overview::set_status, overview::directory, overview::queue_health,
        customers::import_customers, customers::put_customer, customers::get_customer,
        ops::healthz, ops::readyz, ops::metrics,
        channels::outbox_list, channels::outbox_retry, channels::link_contact
    ),
    components(schemas(
        messages::MessageRequest, messages::MessageResponse, messages::ConversationOut,
        attachments::AttachmentResponse, attachments::AttachmentOut,
        error::ErrorBody, customers::CustomerBody, customers::CustomerPut, customers::Imported, ops::Ready,
        channels::OutboxList, channels::OutboxOut, channels::OutboxStateParam,
        channels::ContactBody, channels::ContactOut, channels::ContactChannel
    )),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The application's routes.
pub fn router(state: AppState) -> Router {
    let limit = state.settings.max_body_bytes;
    Router::new()
        .route("/api/v1/messages", post(messages::post_message))
        .route(
            "/api/v1/conversations/{id}",
            get(messages::get_conversation),
        )
        .route(
            "/api/v1/customers/import",
            post(customers::import_customers),
        )
        .route(
            "/api/v1/customers/{id}",
            put(customers::put_customer).get(customers::get_customer),
        )
        .route("/api/v1/conversations/{id}/csat", post(messages::post_csat))
        .route(
            "/api/v1/conversations/{id}/attachments",
            post(attachments::upload)
                .layer(DefaultBodyLimit::max(state.settings.max_attachment_bytes)),
        )
        .route("/api/v1/attachments/{id}", get(attachments::download))
        .route(
            "/api/v1/conversations/{id}/events",
            get(live::conversation_events),
        )
        .route("/api/v1/agents", post(agents::create).get(agents::list))
        .route(
            "/api/v1/agents/{id}",
            axum::routing::patch(agents::patch).delete(agents::delete),
        )
        .route("/api/v1/agent/queue", get(desk::queue))
        .route("/api/v1/agent/claims", post(desk::claim_next))
        .route("/api/v1/agent/events", get(live::agent_events))
        .route(
            "/api/v1/agent/me",
            get(overview::me).patch(overview::set_status),
        )
        .route("/api/v1/agent/directory", get(overview::directory))
        .route("/api/v1/admin/queue-health", get(overview::queue_health))
        .route("/api/v1/agent/conversations/{id}", get(desk::get))
        .route("/api/v1/agent/conversations/{id}/claim", post(desk::claim))
        .route(
            "/api/v1/agent/conversations/{id}/messages",
            post(desk::reply),
        )
        .route("/api/v1/agent/conversations/{id}/notes", post(desk::note))
        .route(
            "/api/v1/agent/conversations/{id}/transfer",
            post(desk::transfer),
        )
        .route(
            "/api/v1/agent/conversations/{id}/handback",
            post(desk::handback),
        )
        .route(
            "/api/v1/agent/conversations/{id}/resolve",
            post(desk::resolve),
        )
        .route(
            "/webhooks/whatsapp",
            get(channels::whatsapp_verify).post(channels::whatsapp_receive),
        )
        .route("/webhooks/telegram", post(channels::telegram_receive))
        .route("/webhooks/generic", post(channels::generic_receive))
        .route("/api/v1/outbox", get(channels::outbox_list))
        .route("/api/v1/outbox/{id}/retry", post(channels::outbox_retry))
        .route(
            "/api/v1/channels/{channel}/contacts/{user_id}",
            put(channels::link_contact),
        )
        .route("/api/v1/openapi.json", get(ops::openapi))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .merge(web::routes())
        .merge(console::routes())
        .fallback(|| async { ApiError::NotFound("route") })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(middleware::from_fn_with_state(state.clone(), count_errors))
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::Extension(BodyLimit(limit)))
        .layer(CatchPanicLayer::custom(
            |_: Box<dyn std::any::Any + Send>| {
                axum::response::IntoResponse::into_response(ApiError::Internal(
                    "handler panicked".into(),
                ))
            },
        ))
        .layer(TraceLayer::new_for_http())
        .layer(tower::util::option_layer(web::cors(&state.settings)))
        .with_state(state)
}

/// Counts error responses by status code.
async fn count_errors(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    if resp.status().is_client_error() || resp.status().is_server_error() {
        state
            .metrics
            .errors
            .with_label_values(&[resp.status().as_str()])
            .inc();
    }
    resp
}
