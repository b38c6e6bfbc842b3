//! Choosing the store: PostgreSQL when a database URL is configured (several instances share
//! it), otherwise the embedded SQLite store in the data directory.

use std::path::Path;
use std::sync::Arc;

use super::postgres::PgStore;
use super::sqlite::SqliteStore;
use super::{Store, StoreError};

/// An opened, migrated store.
#[derive(Clone)]
pub enum Backend {
    Sqlite(Arc<SqliteStore>),
    Postgres(Arc<PgStore>),
}

impl Backend {
    /// Opens PostgreSQL at `database_url`, or SQLite in `data_dir`, running migrations.
    pub async fn open(database_url: Option<&str>, data_dir: &Path) -> Result<Self, StoreError> {
        Ok(match database_url {
            Some(url) => Self::Postgres(Arc::new(PgStore::connect(url).await?)),
            None => Self::Sqlite(Arc::new(SqliteStore::open(data_dir).await?)),
        })
    }

    pub fn store(&self) -> Arc<dyn Store> {
        match self {
            Self::Sqlite(s) => s.clone(),
            Self::Postgres(s) => s.clone(),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "SQLite",
            Self::Postgres(_) => "PostgreSQL",
        }
    }

    /// Calls `on_commit` with the last event sequence of every commit made by any instance on
    /// a shared database; `None` for the embedded store, where this process is the only writer.
    pub fn listen(
        &self,
        on_commit: Arc<dyn Fn(i64) + Send + Sync>,
    ) -> Option<tokio::task::JoinHandle<()>> {
        match self {
            Self::Sqlite(_) => None,
            Self::Postgres(pg) => Some(pg.listen(on_commit)),
        }
    }

    /// On a shared database, the instances' common value of a generated secret: `candidate`
    /// when this instance is the first to store it. `None` for the embedded store.
    pub async fn shared_secret(
        &self,
        name: &str,
        candidate: &str,
    ) -> Result<Option<String>, StoreError> {
        match self {
            Self::Sqlite(_) => Ok(None),
            Self::Postgres(pg) => pg.shared_secret(name, candidate).await.map(Some),
        }
    }
}
