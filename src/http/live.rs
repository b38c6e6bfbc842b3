//! Live push over WebSocket. `GET /api/v1/conversations/{id}/events` (the conversation token
//! as `?token=` or subprotocol `bearer.<token>`, since browsers cannot set headers on a
//! WebSocket) and `GET /api/v1/agent/events` (agent token the same ways). Credentials are
//! checked before the upgrade. Each connection first sends what happened after `?after=<seq>`,
//! then live events, always read from the events table in sequence order: nothing twice,
//! nothing lost across reconnects.

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;

use crate::domain::{ConversationId, ConversationState, Event};
use crate::store::EventFilter;

use super::AppState;
use super::agents::token_hash;
use super::error::ApiError;
use super::extract::Path;

/// How often a waiting shopper's place in line is recomputed without a local commit.
const POSITION_REFRESH: std::time::Duration = std::time::Duration::from_secs(5);

/// Query parameters of a live connection.
#[derive(Debug, Deserialize)]
pub struct LiveQuery {
    pub token: Option<String>,
    /// Resume after this sequence (0 = from the beginning).
    pub after: Option<i64>,
}

/// The token from `?token=` or a `bearer.<token>` subprotocol.
fn token(q: &LiveQuery, headers: &HeaderMap) -> Result<String, ApiError> {
    if let Some(t) = q.token.as_deref().filter(|t| !t.is_empty()) {
        return Ok(t.to_string());
    }
    headers
        .get("sec-websocket-protocol")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split(',')
                .map(str::trim)
                .find_map(|p| p.strip_prefix("bearer."))
                .map(str::to_string)
        })
        .ok_or(ApiError::Unauthorized)
}

fn frame(e: &Event) -> String {
    serde_json::json!({
        "seq": e.seq,
        "type": e.kind.as_str(),
        "conversation_id": e.conversation_id.to_string(),
        "at": e.at,
        "data": e.data,
    })
    .to_string()
}

/// The shopper's live connection to their conversation.
pub async fn conversation_events(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<LiveQuery>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let t = token(&q, &headers)?;
    let id = ConversationId::parse(&id).map_err(|_| ApiError::Forbidden)?;
    state.tokens.check_conversation(&t, id, true)?;
    let after = q.after.unwrap_or(0).max(0);
    let ws = ws.protocols(["bearer"]);
    Ok(ws.on_upgrade(move |socket| pump(state, socket, EventFilter::Shopper(id), after, Some(id))))
}

/// An agent's live connection: queue changes in their teams and their conversations.
pub async fn agent_events(
    State(state): State<AppState>,
    Query(q): Query<LiveQuery>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let t = token(&q, &headers)?;
    let agent = state
        .store
        .agent_by_token_hash(&token_hash(&t))
        .await?
        .ok_or(ApiError::Unauthorized)?;
    let after = q.after.unwrap_or(0).max(0);
    let filter = EventFilter::Agent {
        id: agent.id.clone(),
        teams: agent.teams.clone(),
    };
    let ws = ws.protocols(["bearer"]);
    Ok(ws.on_upgrade(move |socket| async move {
        let id = agent.id.clone();
        let _ = state.store.touch_agent(&id, chrono::Utc::now()).await;
        pump(state, socket, filter, after, None).await;
    }))
}

/// Sends events after `after` in order until the client goes away. For a shopper waiting in
/// line, an ephemeral `queue_changed` frame with their position follows every batch.
async fn pump(
    state: AppState,
    mut socket: WebSocket,
    filter: EventFilter,
    mut after: i64,
    shopper: Option<ConversationId>,
) {
    let mut wake = state.notifier.subscribe();
    let mut last_position = None;
    let mut position_seen = -1;
    let mut position_at = std::time::Instant::now();
    let mut last_touch = std::time::Instant::now();
    loop {
        // On shutdown, close so that clients reconnect to a live instance.
        if state
            .shutting_down
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            let _ = socket.send(Message::Close(None)).await;
            return;
        }
        // An agent's open connection is their sign of life (online while connected).
        if let EventFilter::Agent { id, .. } = &filter
            && last_touch.elapsed() >= std::time::Duration::from_secs(15)
        {
            let _ = state.store.touch_agent(id, chrono::Utc::now()).await;
            last_touch = std::time::Instant::now();
        }
        let events = match state.store.events_after(&filter, after, 200).await {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, "live connection: reading events failed");
                break;
            }
        };
        for e in &events {
            if socket.send(Message::Text(frame(e).into())).await.is_err() {
                return;
            }
            after = e.seq;
        }
        // The place in line moves when anything in the queue changes: recompute it after a
        // commit in this instance, and every few seconds for commits elsewhere, not on every
        // poll.
        let committed = *wake.borrow();
        let due = committed != position_seen || position_at.elapsed() >= POSITION_REFRESH;
        if let Some(id) = shopper
            && due
            && let Ok(Some(c)) = state.store.conversation(id).await
        {
            position_seen = committed;
            position_at = std::time::Instant::now();
            let status = if c.state == ConversationState::WaitingForHuman {
                state.desk.status(&c).await.ok().flatten()
            } else {
                None
            };
            if status != last_position {
                if let Some(s) = status {
                    let f = serde_json::json!({
                        "seq": after, "ephemeral": true, "type": "queue_changed",
                        "conversation_id": id.to_string(), "at": chrono::Utc::now(),
                        "data": {"position": s.position, "expected_wait_seconds": s.expected_wait_seconds},
                    });
                    if socket
                        .send(Message::Text(f.to_string().into()))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                last_position = status;
            }
        }
        if events.len() == 200 {
            continue;
        }
        tokio::select! {
            _ = crate::live::wait(&mut wake) => {}
            msg = socket.recv() => match msg {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            },
        }
    }
}
