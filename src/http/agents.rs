//! Agents (admin token): create (the token is shown once and stored only as a hash), list
//! with load, change, delete (their conversations return to the queue); and the `AgentCaller`
//! extractor that tells agent endpoints who is calling.

use axum::extract::{FromRef, FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use base64::Engine;
use chrono::Utc;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::domain::text::{clean_line, is_slug};
use crate::domain::{Agent, AgentId, AgentStatus, Lang};

use super::AppState;
use super::customers::WireLang;
use super::error::{ApiError, ErrorBody};
use super::extract::{Admin, Json, Path};

/// SHA-256 of an agent token, as stored.
pub fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The agent a request acts as: their own token, or the admin token with `X-Agent-Id`.
pub struct AgentCaller(pub Agent);

impl<S> FromRequestParts<S> for AgentCaller
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let app = AppState::from_ref(state);
        let token = super::auth::bearer(&parts.headers)?;
        let agent = if app.tokens.is_admin(token) {
            let id = parts
                .headers
                .get("x-agent-id")
                .and_then(|v| v.to_str().ok())
                // The admin token is nobody in particular until it names an agent.
                .ok_or(ApiError::Forbidden)?;
            let id = AgentId::parse(id).map_err(|_| ApiError::NotFound("agent"))?;
            app.store
                .agent(&id)
                .await?
                .ok_or(ApiError::NotFound("agent"))?
        } else {
            app.store
                .agent_by_token_hash(&token_hash(token))
                .await?
                .ok_or(ApiError::Unauthorized)?
        };
        let now = Utc::now();
        app.store.touch_agent(&agent.id, now).await?;
        Ok(Self(Agent {
            last_seen_at: Some(now),
            ..agent
        }))
    }
}

/// A new agent.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAgentBody {
    #[schema(pattern = r"^[A-Za-z0-9._:@-]{1,64}$", min_length = 1, max_length = 64)]
    pub id: String,
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"[^\s\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]"
    )]
    pub name: String,
    #[serde(default)]
    #[schema(max_items = 2)]
    pub languages: Vec<WireLang>,
    #[serde(default)]
    #[schema(max_items = 20)]
    pub teams: Vec<Team>,
    /// Conversations held at once (1-50).
    #[serde(deserialize_with = "super::customers::int")]
    #[schema(minimum = 1, maximum = 50)]
    pub capacity: u32,
}

/// A created agent and its token (shown once).
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedAgent {
    pub id: String,
    pub token: String,
}

/// An agent as admins see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgentOut {
    pub id: String,
    pub name: String,
    pub languages: Vec<WireLang>,
    pub teams: Vec<String>,
    pub capacity: u32,
    /// `online`, `away` or `offline` as the agent set it.
    pub status: String,
    /// Online and seen recently.
    pub available: bool,
    /// Conversations held now.
    pub load: usize,
    pub last_seen_at: Option<chrono::DateTime<Utc>>,
}

/// Changes to an agent (every field optional).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentPatch {
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"[^\s\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]"
    )]
    pub name: Option<String>,
    #[schema(max_items = 2)]
    pub languages: Option<Vec<WireLang>>,
    #[schema(max_items = 20)]
    pub teams: Option<Vec<Team>>,
    #[serde(default, deserialize_with = "super::customers::opt_int")]
    #[schema(minimum = 1, maximum = 50)]
    pub capacity: Option<u32>,
    pub status: Option<WireStatus>,
}

/// An agent's availability.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum WireStatus {
    Online,
    Away,
    Offline,
}

impl From<WireStatus> for AgentStatus {
    fn from(s: WireStatus) -> Self {
        match s {
            WireStatus::Online => AgentStatus::Online,
            WireStatus::Away => AgentStatus::Away,
            WireStatus::Offline => AgentStatus::Offline,
        }
    }
}

/// A team name: 1-32 of `[a-z0-9_-]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Team(pub String);

impl utoipa::PartialSchema for Team {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some(r"^[a-z0-9_-]{1,32}$"))
            .into()
    }
}

impl ToSchema for Team {}

fn teams(t: Vec<Team>) -> Result<Vec<String>, ApiError> {
    t.into_iter()
        .map(|Team(t)| {
            if is_slug(&t, 32) {
                Ok(t)
            } else {
                Err(ApiError::Unprocessable(
                    "teams are 1-32 of [a-z0-9_-]".into(),
                ))
            }
        })
        .collect()
}

fn name(n: &str) -> Result<String, ApiError> {
    let n = clean_line(n);
    if n.is_empty() || n.chars().count() > 100 {
        return Err(ApiError::Unprocessable(
            "name must be 1-100 visible characters".into(),
        ));
    }
    Ok(n)
}

fn languages(l: Vec<WireLang>) -> Vec<Lang> {
    let mut out: Vec<Lang> = l.into_iter().map(Into::into).collect();
    out.dedup();
    if out.is_empty() {
        out = vec![Lang::En, Lang::Zh];
    }
    out
}

pub async fn out(state: &AppState, a: Agent) -> Result<AgentOut, ApiError> {
    let load = state.store.held_by(&a.id).await?.len();
    let available = a.is_available(
        Utc::now(),
        chrono::Duration::seconds(crate::desk::AGENT_FRESH_SECONDS),
    );
    Ok(AgentOut {
        id: a.id.to_string(),
        name: a.name,
        languages: a.languages.into_iter().map(Into::into).collect(),
        teams: a.teams,
        capacity: a.capacity,
        status: a.status.as_str().into(),
        available,
        load,
        last_seen_at: a.last_seen_at,
    })
}

/// Create an agent; the token in the answer is shown only this once.
#[utoipa::path(
    post, path = "/api/v1/agents", request_body = NewAgentBody,
    responses(
        (status = 201, body = CreatedAgent),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody)
    ),
    security(("bearer" = []))
)]
pub async fn create(
    State(state): State<AppState>,
    _: Admin,
    Json(body): Json<NewAgentBody>,
) -> Result<(StatusCode, axum::Json<CreatedAgent>), ApiError> {
    let id = AgentId::parse(&body.id).map_err(|e| ApiError::Unprocessable(e.to_string()))?;
    if !(1..=50).contains(&body.capacity) || body.languages.len() > 2 || body.teams.len() > 20 {
        return Err(ApiError::Unprocessable(
            "capacity is 1-50, at most 2 languages and 20 teams".into(),
        ));
    }
    let mut raw = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    let token = format!(
        "sba_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    );
    let agent = Agent {
        id: id.clone(),
        name: name(&body.name)?,
        languages: languages(body.languages),
        teams: teams(body.teams)?,
        capacity: body.capacity,
        status: AgentStatus::Online,
        created_at: Utc::now(),
        last_seen_at: None,
    };
    match state.store.create_agent(&agent, &token_hash(&token)).await {
        Ok(()) => {}
        Err(crate::store::StoreError::AlreadyExists(_)) => {
            return Err(ApiError::Conflict {
                code: "agent_exists",
                message: format!("agent {id} already exists"),
            });
        }
        Err(e) => return Err(e.into()),
    }
    Ok((
        StatusCode::CREATED,
        axum::Json(CreatedAgent {
            id: id.to_string(),
            token,
        }),
    ))
}

/// Agents with their load.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgentList {
    pub items: Vec<AgentOut>,
}

/// List agents.
#[utoipa::path(
    get, path = "/api/v1/agents",
    responses((status = 200, body = AgentList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    _: Admin,
) -> Result<axum::Json<AgentList>, ApiError> {
    let mut items = Vec::new();
    for a in state.store.agents().await? {
        items.push(out(&state, a).await?);
    }
    Ok(axum::Json(AgentList { items }))
}

/// Change an agent. Going offline returns their conversations to the queue.
#[utoipa::path(
    patch, path = "/api/v1/agents/{id}", request_body = AgentPatch,
    params(("id" = String, Path, description = "Agent id")),
    responses(
        (status = 200, body = AgentOut),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody)
    ),
    security(("bearer" = []))
)]
pub async fn patch(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<String>,
    Json(p): Json<AgentPatch>,
) -> Result<axum::Json<AgentOut>, ApiError> {
    let id = AgentId::parse(&id).map_err(|_| ApiError::NotFound("agent"))?;
    let mut a = state
        .store
        .agent(&id)
        .await?
        .ok_or(ApiError::NotFound("agent"))?;
    if let Some(n) = &p.name {
        a.name = name(n)?;
    }
    if let Some(l) = p.languages {
        if l.len() > 2 {
            return Err(ApiError::Unprocessable("at most 2 languages".into()));
        }
        a.languages = languages(l);
    }
    if let Some(t) = p.teams {
        if t.len() > 20 {
            return Err(ApiError::Unprocessable("at most 20 teams".into()));
        }
        a.teams = teams(t)?;
    }
    if let Some(c) = p.capacity {
        if !(1..=50).contains(&c) {
            return Err(ApiError::Unprocessable("capacity is 1-50".into()));
        }
        a.capacity = c;
    }
    if let Some(s) = p.status {
        a.status = s.into();
    }
    if !state.store.update_agent(&a).await? {
        return Err(ApiError::NotFound("agent"));
    }
    if a.status == AgentStatus::Offline {
        state.desk.release_all(&a.id, "agent_offline").await?;
    }
    Ok(axum::Json(out(&state, a).await?))
}

/// Delete an agent: their token stops working and their conversations return to the queue.
#[utoipa::path(
    delete, path = "/api/v1/agents/{id}",
    params(("id" = String, Path, description = "Agent id")),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn delete(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = AgentId::parse(&id).map_err(|_| ApiError::NotFound("agent"))?;
    if !state.store.delete_agent(&id).await? {
        return Err(ApiError::NotFound("agent"));
    }
    state.desk.release_all(&id, "agent_deleted").await?;
    Ok(StatusCode::NO_CONTENT)
}
