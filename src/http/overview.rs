//! What the agent console needs beside the desk endpoints: who the calling agent is and what
//! they hold (`/api/v1/agent/me`, where they also set themselves online or away), their
//! colleagues and the teams a conversation can be transferred to (`/api/v1/agent/directory`),
//! and, for the admin view, the queue's health (`/api/v1/admin/queue-health`).

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::desk::health::QueueHealth;

use super::AppState;
use super::agents::{AgentCaller, AgentOut, WireStatus, out};
use super::error::{ApiError, ErrorBody};
use super::extract::{Admin, Json};

/// A conversation the calling agent holds.
#[derive(Debug, Serialize, ToSchema)]
pub struct HeldOut {
    pub conversation_id: String,
    pub customer_id: String,
    /// The verified customer's name (empty for anonymous shoppers).
    pub customer_name: String,
    pub lang: String,
    pub assigned_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// The calling agent, what they hold, and where their live connection should start.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeOut {
    pub agent: AgentOut,
    /// Held conversations, oldest claim first.
    pub held: Vec<HeldOut>,
    /// The event sequence to resume the live connection after (`?after=`).
    pub last_seq: i64,
}

/// Who am I: the calling agent, the conversations they hold and the current event sequence.
#[utoipa::path(
    get, path = "/api/v1/agent/me",
    responses((status = 200, body = MeOut), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn me(
    State(state): State<AppState>,
    AgentCaller(agent): AgentCaller,
) -> Result<axum::Json<MeOut>, ApiError> {
    // Read the sequence first: events after it are replayed, so nothing between is lost.
    let last_seq = state.store.last_seq().await?;
    let mut held = Vec::new();
    for c in state.store.held_by(&agent.id).await? {
        let name = if c.verified {
            state
                .store
                .customer(&c.customer_id)
                .await?
                .map(|p| p.name)
                .unwrap_or_default()
        } else {
            String::new()
        };
        held.push(HeldOut {
            conversation_id: c.id.to_string(),
            customer_id: c.customer_id.to_string(),
            customer_name: name,
            lang: c.lang.as_str().into(),
            assigned_at: c.assigned_at,
        });
    }
    Ok(axum::Json(MeOut {
        agent: out(&state, agent).await?,
        held,
        last_seq,
    }))
}

/// The calling agent's own availability.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusBody {
    pub status: WireStatus,
}

/// Set my availability: `online` takes new conversations, `away` keeps what I hold but takes
/// nothing new, `offline` also returns what I hold to the queue (as an admin's change does).
#[utoipa::path(
    patch, path = "/api/v1/agent/me", request_body = StatusBody,
    responses((status = 200, body = AgentOut), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn set_status(
    State(state): State<AppState>,
    AgentCaller(mut agent): AgentCaller,
    Json(body): Json<StatusBody>,
) -> Result<axum::Json<AgentOut>, ApiError> {
    agent.status = body.status.into();
    if !state
        .store
        .set_agent_status(&agent.id, agent.status)
        .await?
    {
        return Err(ApiError::NotFound("agent"));
    }
    if agent.status == crate::domain::AgentStatus::Offline {
        state.desk.release_all(&agent.id, "agent_offline").await?;
    }
    Ok(axum::Json(out(&state, agent).await?))
}

/// Colleagues and teams, for transfers.
#[derive(Debug, Serialize, ToSchema)]
pub struct DirectoryOut {
    /// Every agent with availability and load (never their tokens).
    pub agents: Vec<AgentOut>,
    /// The teams of the routing policy.
    pub teams: Vec<String>,
}

/// Where a conversation can go: the agents (with availability and load) and the teams.
#[utoipa::path(
    get, path = "/api/v1/agent/directory",
    responses((status = 200, body = DirectoryOut), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn directory(
    State(state): State<AppState>,
    AgentCaller(_agent): AgentCaller,
) -> Result<axum::Json<DirectoryOut>, ApiError> {
    let mut agents = Vec::new();
    for a in state.store.agents().await? {
        agents.push(out(&state, a).await?);
    }
    Ok(axum::Json(DirectoryOut {
        agents,
        teams: state.desk.policy.teams.keys().cloned().collect(),
    }))
}

/// Queue health (admin): waiting conversations per team with the oldest wait and those past
/// their deadline, and today's first answers and SLA breaches (the day starts at midnight UTC).
#[utoipa::path(
    get, path = "/api/v1/admin/queue-health",
    responses((status = 200, body = QueueHealth), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn queue_health(
    State(state): State<AppState>,
    _: Admin,
) -> Result<axum::Json<QueueHealth>, ApiError> {
    Ok(axum::Json(state.desk.health(chrono::Utc::now()).await?))
}
