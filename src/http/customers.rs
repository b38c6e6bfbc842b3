//! Customer profiles (admin token): import, upsert and read. Wire types here say exactly what
//! is accepted (enums, id pattern, non-negative counts) and convert to the domain type.

use std::collections::HashMap;

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::text::clean_line;
use crate::domain::{Customer, CustomerId, Lang, Tier};

use super::AppState;
use super::error::{ApiError, ErrorBody};
use super::extract::{Admin, Json, Path};

/// A language the bot answers in.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "lowercase")]
pub enum WireLang {
    #[default]
    En,
    Zh,
}

impl From<WireLang> for Lang {
    fn from(l: WireLang) -> Self {
        match l {
            WireLang::En => Lang::En,
            WireLang::Zh => Lang::Zh,
        }
    }
}

impl From<Lang> for WireLang {
    fn from(l: Lang) -> Self {
        match l {
            Lang::En => WireLang::En,
            Lang::Zh => WireLang::Zh,
        }
    }
}

/// Membership tier.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "lowercase")]
pub enum WireTier {
    #[default]
    Standard,
    Silver,
    Gold,
    Vip,
}

impl From<WireTier> for Tier {
    fn from(t: WireTier) -> Self {
        match t {
            WireTier::Standard => Tier::Standard,
            WireTier::Silver => Tier::Silver,
            WireTier::Gold => Tier::Gold,
            WireTier::Vip => Tier::Vip,
        }
    }
}

impl From<Tier> for WireTier {
    fn from(t: Tier) -> Self {
        match t {
            Tier::Standard => WireTier::Standard,
            Tier::Silver => WireTier::Silver,
            Tier::Gold => WireTier::Gold,
            Tier::Vip => WireTier::Vip,
        }
    }
}

/// A customer profile as the shop knows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerBody {
    /// The shop's customer id.
    #[schema(
        example = "c-1001",
        pattern = r"^[A-Za-z0-9._:@-]{1,64}$",
        min_length = 1,
        max_length = 64
    )]
    pub id: String,
    /// Display name (control and bidi-override characters are removed).
    #[serde(default)]
    #[schema(max_length = 200)]
    pub name: String,
    #[serde(default)]
    pub language: WireLang,
    #[serde(default)]
    pub tier: WireTier,
    /// Lifetime spend in the shop's minor currency unit (cents / fen).
    #[serde(default, deserialize_with = "integer")]
    #[schema(minimum = 0)]
    pub lifetime_spend_cents: i64,
    #[serde(default, deserialize_with = "integer")]
    #[schema(minimum = 0)]
    pub order_count: i64,
    /// Complaints in the last 90 days.
    #[serde(default, deserialize_with = "integer")]
    #[schema(minimum = 0)]
    pub complaints_90d: i64,
    #[serde(default)]
    #[schema(max_items = 32)]
    pub tags: Vec<Tag>,
}

/// An integer as JSON Schema means it (`574` and `574.0` are the same integer), of any width.
pub fn int<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<i64>,
{
    use serde::de::Error;
    let i = integer(d)?;
    T::try_from(i).map_err(|_| D::Error::custom(format!("{i} is out of range")))
}

/// [`int`] for optional fields.
pub fn opt_int<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<i64>,
{
    #[derive(Deserialize)]
    struct Wrap<T: TryFrom<i64>>(#[serde(deserialize_with = "int")] T);
    Option::<Wrap<T>>::deserialize(d).map(|w| w.map(|Wrap(v)| v))
}

/// An integer as JSON Schema means it: `574` and `574.0` are the same integer.
fn integer<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    use serde::de::Error;
    let n = serde_json::Number::deserialize(d)?;
    if let Some(i) = n.as_i64() {
        return Ok(i);
    }
    match n.as_f64() {
        Some(f) if f.fract() == 0.0 && f >= i64::MIN as f64 && f < i64::MAX as f64 => Ok(f as i64),
        _ => Err(D::Error::custom(format!("{n} is not a 64-bit integer"))),
    }
}

/// The body of `PUT /api/v1/customers/{id}`: the profile without its id (the path names it;
/// an `id` in the body must equal the path's).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerPut {
    #[serde(default)]
    #[schema(ignore)]
    pub id: Option<String>,
    #[serde(default)]
    #[schema(max_length = 200)]
    pub name: String,
    #[serde(default)]
    pub language: WireLang,
    #[serde(default)]
    pub tier: WireTier,
    #[serde(default, deserialize_with = "integer")]
    #[schema(minimum = 0)]
    pub lifetime_spend_cents: i64,
    #[serde(default, deserialize_with = "integer")]
    #[schema(minimum = 0)]
    pub order_count: i64,
    #[serde(default, deserialize_with = "integer")]
    #[schema(minimum = 0)]
    pub complaints_90d: i64,
    #[serde(default)]
    #[schema(max_items = 32)]
    pub tags: Vec<Tag>,
}

/// A free-form label on a customer: 1-64 characters with at least one visible one.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Tag(pub String);

impl utoipa::PartialSchema for Tag {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .min_length(Some(1))
            .max_length(Some(64))
            .pattern(Some(VISIBLE))
            .into()
    }
}

impl ToSchema for Tag {}

/// A JSON Schema pattern: at least one character that is neither space nor control.
pub const VISIBLE: &str = r"[^\s\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]";

impl CustomerBody {
    fn into_domain(self) -> Result<Customer, ApiError> {
        let bad = |m: String| Err(ApiError::Unprocessable(m));
        let id = CustomerId::parse(&self.id).map_err(|e| ApiError::Unprocessable(e.to_string()))?;
        for (field, v) in [
            ("lifetime_spend_cents", self.lifetime_spend_cents),
            ("order_count", self.order_count),
            ("complaints_90d", self.complaints_90d),
        ] {
            if v < 0 {
                return bad(format!("{field} must not be negative"));
            }
        }
        if self.name.chars().count() > 200 {
            return bad("name is longer than 200 characters".into());
        }
        if self.tags.len() > 32 {
            return bad("at most 32 tags".into());
        }
        let mut tags = Vec::with_capacity(self.tags.len());
        for Tag(t) in self.tags {
            let t = clean_line(&t);
            if t.is_empty() || t.chars().count() > 64 {
                return bad("tags must be 1-64 characters".into());
            }
            tags.push(t);
        }
        Ok(Customer {
            id,
            name: clean_line(&self.name),
            language: self.language.into(),
            tier: self.tier.into(),
            lifetime_spend_cents: self.lifetime_spend_cents,
            order_count: self.order_count,
            complaints_90d: self.complaints_90d,
            tags,
        })
    }
}

impl From<Customer> for CustomerBody {
    fn from(c: Customer) -> Self {
        Self {
            id: c.id.to_string(),
            name: c.name,
            language: c.language.into(),
            tier: c.tier.into(),
            lifetime_spend_cents: c.lifetime_spend_cents,
            order_count: c.order_count,
            complaints_90d: c.complaints_90d,
            tags: c.tags.into_iter().map(Tag).collect(),
        }
    }
}

/// What an import stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct Imported {
    /// Distinct customers written (created or replaced).
    pub imported: usize,
    /// Records in the request.
    pub received: usize,
    /// Ids that appeared more than once; the last record of each was stored.
    pub duplicate_ids: Vec<String>,
}

/// Import (upsert) many customers.
#[utoipa::path(
    post, path = "/api/v1/customers/import", request_body = Vec<CustomerBody>,
    responses(
        (status = 200, body = Imported),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)
    ),
    security(("bearer" = []))
)]
pub async fn import_customers(
    State(state): State<AppState>,
    _: Admin,
    Json(customers): Json<Vec<CustomerBody>>,
) -> Result<axum::Json<Imported>, ApiError> {
    let received = customers.len();
    let mut order: Vec<CustomerId> = Vec::new();
    let mut latest: HashMap<CustomerId, Customer> = HashMap::new();
    let mut duplicates: Vec<String> = Vec::new();
    for (i, body) in customers.into_iter().enumerate() {
        let c = body
            .into_domain()
            .map_err(|e| ApiError::Unprocessable(format!("[{i}]: {e}")))?;
        if latest.contains_key(&c.id) {
            if !duplicates.contains(&c.id.to_string()) {
                duplicates.push(c.id.to_string());
            }
        } else {
            order.push(c.id.clone());
        }
        latest.insert(c.id.clone(), c);
    }
    let unique: Vec<Customer> = order.iter().filter_map(|id| latest.remove(id)).collect();
    let imported = state.store.upsert_customers(&unique).await?;
    Ok(axum::Json(Imported {
        imported,
        received,
        duplicate_ids: duplicates,
    }))
}

/// Create or replace one customer.
#[utoipa::path(
    put, path = "/api/v1/customers/{id}", request_body = CustomerPut,
    params(("id" = String, Path, description = "Customer id", pattern = r"^[A-Za-z0-9._:@-]{1,64}$")),
    responses(
        (status = 200, body = CustomerBody),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)
    ),
    security(("bearer" = []))
)]
pub async fn put_customer(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<String>,
    Json(body): Json<CustomerPut>,
) -> Result<axum::Json<CustomerBody>, ApiError> {
    if body.id.as_ref().is_some_and(|b| *b != id) {
        return Err(ApiError::Unprocessable(
            "body id differs from the path id".into(),
        ));
    }
    let customer = CustomerBody {
        id,
        name: body.name,
        language: body.language,
        tier: body.tier,
        lifetime_spend_cents: body.lifetime_spend_cents,
        order_count: body.order_count,
        complaints_90d: body.complaints_90d,
        tags: body.tags,
    }
    .into_domain()?;
    state
        .store
        .upsert_customers(std::slice::from_ref(&customer))
        .await?;
    Ok(axum::Json(customer.into()))
}

/// Read one customer.
#[utoipa::path(
    get, path = "/api/v1/customers/{id}",
    params(("id" = String, Path, description = "Customer id")),
    responses(
        (status = 200, body = CustomerBody),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)
    ),
    security(("bearer" = []))
)]
pub async fn get_customer(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<axum::Json<CustomerBody>, ApiError> {
    let id = CustomerId::parse(&id).map_err(|_| ApiError::NotFound("customer"))?;
    let c = state
        .store
        .customer(&id)
        .await?
        .ok_or(ApiError::NotFound("customer"))?;
    Ok(axum::Json(c.into()))
}
