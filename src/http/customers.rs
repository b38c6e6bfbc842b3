//! Customer profiles (admin/agent token): import, upsert and read.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde::Serialize;

use crate::domain::{Customer, CustomerId};

use super::AppState;
use super::error::{ApiError, ErrorBody};
use super::extract::Json;

/// How many records an import wrote.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Imported {
    pub imported: usize,
}

/// Import (upsert) many customers.
#[utoipa::path(
    post, path = "/api/v1/customers/import", request_body = Vec<Customer>,
    responses((status = 200, body = Imported), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn import_customers(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(customers): Json<Vec<Customer>>,
) -> Result<axum::Json<Imported>, ApiError> {
    state.tokens.require_admin(&headers)?;
    let imported = state.store.upsert_customers(&customers).await?;
    Ok(axum::Json(Imported { imported }))
}

/// Create or replace one customer.
#[utoipa::path(
    put, path = "/api/v1/customers/{id}", request_body = Customer,
    params(("id" = String, Path, description = "Customer id")),
    responses((status = 200, body = Customer), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn put_customer(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(customer): Json<Customer>,
) -> Result<axum::Json<Customer>, ApiError> {
    state.tokens.require_admin(&headers)?;
    if customer.id.as_str() != id {
        return Err(ApiError::Unprocessable(
            "body id differs from the path id".into(),
        ));
    }
    state
        .store
        .upsert_customers(std::slice::from_ref(&customer))
        .await?;
    Ok(axum::Json(customer))
}

/// Read one customer.
#[utoipa::path(
    get, path = "/api/v1/customers/{id}",
    params(("id" = String, Path, description = "Customer id")),
    responses((status = 200, body = Customer), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn get_customer(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<axum::Json<Customer>, ApiError> {
    state.tokens.require_admin(&headers)?;
    let id = CustomerId::parse(&id).map_err(|_| ApiError::NotFound("customer"))?;
    let c = state
        .store
        .customer(&id)
        .await?
        .ok_or(ApiError::NotFound("customer"))?;
    Ok(axum::Json(c))
}
