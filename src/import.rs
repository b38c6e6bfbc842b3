//! Importing customers and orders from JSON (an array of objects) or CSV files, for the CLI
//! (`switchboard import`) and the demo seed.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::domain::{Customer, CustomerId, Lang, Order, OrderEvent, OrderId, OrderStatus, Tier};

/// A file that could not be imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {detail}")]
    Invalid { path: PathBuf, detail: String },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

fn is_csv(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
}

fn read(path: &Path) -> Result<Vec<u8>, ImportError> {
    std::fs::read(path).map_err(|source| ImportError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn invalid(path: &Path, detail: impl ToString) -> ImportError {
    ImportError::Invalid {
        path: path.to_path_buf(),
        detail: detail.to_string(),
    }
}

#[derive(Deserialize)]
struct CustomerRow {
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    language: String,
    #[serde(default)]
    tier: String,
    #[serde(default)]
    lifetime_spend_cents: i64,
    #[serde(default)]
    order_count: i64,
    #[serde(default)]
    complaints_90d: i64,
    /// Semicolon-separated.
    #[serde(default)]
    tags: String,
}

/// Reads customers from a JSON array or a CSV file with a header row
/// (`id,name,language,tier,lifetime_spend_cents,order_count,complaints_90d,tags`).
pub fn customers(path: &Path) -> Result<Vec<Customer>, ImportError> {
    let bytes = read(path)?;
    if !is_csv(path) {
        return serde_json::from_slice(&bytes).map_err(|e| invalid(path, e));
    }
    let mut out = Vec::new();
    for (i, row) in csv::Reader::from_reader(bytes.as_slice())
        .deserialize::<CustomerRow>()
        .enumerate()
    {
        let row = row.map_err(|e| invalid(path, format!("row {}: {e}", i + 1)))?;
        let line = |what: &str| invalid(path, format!("row {}: bad {what}", i + 1));
        out.push(Customer {
            id: CustomerId::parse(&row.id).map_err(|_| line("id"))?,
            name: row.name,
            language: if row.language.is_empty() {
                Lang::En
            } else {
                Lang::parse(&row.language).ok_or_else(|| line("language"))?
            },
            tier: if row.tier.is_empty() {
                Tier::Standard
            } else {
                Tier::parse(&row.tier).ok_or_else(|| line("tier"))?
            },
            lifetime_spend_cents: row.lifetime_spend_cents,
            order_count: row.order_count,
            complaints_90d: row.complaints_90d,
            tags: row
                .tags
                .split(';')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(String::from)
                .collect(),
        });
    }
    Ok(out)
}

#[derive(Deserialize)]
struct OrderRow {
    order_id: String,
    customer_id: String,
    status: OrderStatus,
    #[serde(default)]
    carrier: Option<String>,
    #[serde(default)]
    tracking_number: Option<String>,
    placed_at: chrono::DateTime<chrono::Utc>,
    #[serde(default)]
    eta: Option<chrono::NaiveDate>,
    #[serde(default)]
    currency: Option<String>,
    #[serde(default)]
    total_cents: Option<i64>,
    #[serde(default)]
    last_event_at: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(default)]
    last_event_location: Option<String>,
    #[serde(default)]
    last_event_description: Option<String>,
    #[serde(default)]
    last_event_description_zh: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    phone: Option<String>,
    #[serde(default)]
    postcode: Option<String>,
}

/// Reads orders from a JSON array or a CSV file with a header row (`order_id,customer_id,
/// status,carrier,tracking_number,placed_at,eta,currency,total_cents,last_event_at,
/// last_event_location,last_event_description,last_event_description_zh`, and optionally
/// `email,phone,postcode`, the contact details an anonymous shopper must name).
pub fn orders(path: &Path) -> Result<Vec<Order>, ImportError> {
    let bytes = read(path)?;
    if !is_csv(path) {
        return serde_json::from_slice(&bytes).map_err(|e| invalid(path, e));
    }
    let mut out = Vec::new();
    for (i, row) in csv::Reader::from_reader(bytes.as_slice())
        .deserialize::<OrderRow>()
        .enumerate()
    {
        let row = row.map_err(|e| invalid(path, format!("row {}: {e}", i + 1)))?;
        let line = |what: &str| invalid(path, format!("row {}: bad {what}", i + 1));
        let non_empty = |s: Option<String>| s.filter(|s| !s.is_empty());
        out.push(Order {
            order_id: OrderId::parse(&row.order_id).map_err(|_| line("order_id"))?,
            customer_id: CustomerId::parse(&row.customer_id).map_err(|_| line("customer_id"))?,
            status: row.status,
            carrier: non_empty(row.carrier),
            tracking_number: non_empty(row.tracking_number),
            placed_at: row.placed_at,
            eta: row.eta,
            currency: non_empty(row.currency),
            total_cents: row.total_cents,
            items: Vec::new(),
            last_event: match (row.last_event_at, non_empty(row.last_event_description)) {
                (Some(at), Some(description)) => Some(OrderEvent {
                    at,
                    location: non_empty(row.last_event_location),
                    description,
                    description_zh: non_empty(row.last_event_description_zh),
                }),
                _ => None,
            },
            email: non_empty(row.email),
            phone: non_empty(row.phone),
            postcode: non_empty(row.postcode),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_customers_and_orders() {
        let dir = tempfile::tempdir().unwrap();
        let c = dir.path().join("c.csv");
        std::fs::write(&c, "id,name,language,tier,lifetime_spend_cents,order_count,complaints_90d,tags\nc-1,Ann,zh,gold,100,2,1,a;b\n").unwrap();
        let cs = customers(&c).unwrap();
        assert_eq!(cs[0].tier, Tier::Gold);
        assert_eq!(cs[0].tags, vec!["a", "b"]);
        let o = dir.path().join("o.csv");
        std::fs::write(&o, "order_id,customer_id,status,carrier,tracking_number,placed_at,eta,currency,total_cents,last_event_at,last_event_location,last_event_description,last_event_description_zh\n20261120-0001,c-1,in_transit,DHL,X1,2026-11-20T00:00:00Z,2026-11-25,USD,100,2026-11-21T00:00:00Z,Leipzig,Departed hub,\n").unwrap();
        let os = orders(&o).unwrap();
        assert_eq!(os[0].status, OrderStatus::InTransit);
        assert_eq!(
            os[0].last_event.as_ref().unwrap().location.as_deref(),
            Some("Leipzig")
        );
        std::fs::write(
            &o,
            "order_id,customer_id,status,placed_at\nbad,c-1,in_transit,2026-11-20T00:00:00Z\n",
        )
        .unwrap();
        assert!(orders(&o).unwrap_err().to_string().contains("row 1"));
    }
}

/// An agent in an agents file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AgentRow {
    id: String,
    name: String,
    #[serde(default)]
    languages: Vec<String>,
    #[serde(default)]
    teams: Vec<String>,
    capacity: u32,
    /// SHA-256 (hex) of the agent's token: the file never holds a usable credential.
    token_sha256: String,
}

/// Creates the agents of a JSON file that do not exist yet; returns how many were created.
pub async fn agents(store: &dyn crate::store::Store, path: &Path) -> Result<usize, ImportError> {
    let rows: Vec<AgentRow> = serde_json::from_slice(&read(path)?).map_err(|e| invalid(path, e))?;
    let mut created = 0;
    for r in rows {
        let id = crate::domain::AgentId::parse(&r.id).map_err(|e| invalid(path, e))?;
        let hash = r.token_sha256.to_ascii_lowercase();
        if hash.len() != 64 || !hash.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(invalid(
                path,
                format!("agent {id}: token_sha256 must be 64 hex digits"),
            ));
        }
        if !(1..=50).contains(&r.capacity) {
            return Err(invalid(path, format!("agent {id}: capacity must be 1-50")));
        }
        let mut languages: Vec<Lang> = r.languages.iter().filter_map(|l| Lang::parse(l)).collect();
        if languages.is_empty() {
            languages = vec![Lang::En, Lang::Zh];
        }
        let agent = crate::domain::Agent {
            id,
            name: crate::domain::text::clean_line(&r.name),
            languages,
            teams: r.teams,
            capacity: r.capacity,
            status: crate::domain::AgentStatus::Online,
            created_at: chrono::Utc::now(),
            last_seen_at: None,
        };
        match store.create_agent(&agent, &hash).await {
            Ok(()) => created += 1,
            Err(crate::store::StoreError::AlreadyExists(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(created)
}
