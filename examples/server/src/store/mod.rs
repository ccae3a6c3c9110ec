//! Persistence behind the [`Store`] trait: agents' last known state, named configurations,
//! rollouts and the audit log. [`SqliteStore`] is the embedded default (one file, nothing to
//! install); the trait keeps the fleet independent of it (a PostgreSQL store for several
//! replicas would implement the same trait over the same JSON-document schema).

mod sqlite;

pub use sqlite::SqliteStore;

use async_trait::async_trait;

use crate::agent::AgentRecord;
use crate::audit::AuditEntry;
use crate::configs::NamedConfig;
use crate::rollout::Rollout;

/// Why the store failed.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database reported an error.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A stored document could not be encoded or decoded.
    #[error("stored document {key:?} is not valid: {source}")]
    Document {
        /// The row.
        key: String,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// The store location is not usable.
    #[error("invalid store location {0:?}")]
    InvalidLocation(String),
    /// The database file could not be created.
    #[error("cannot create the store {path:?}: {source}")]
    Create {
        /// The file.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// Everything loaded at start.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Agents.
    pub agents: Vec<AgentRecord>,
    /// Named configurations.
    pub configs: Vec<NamedConfig>,
    /// Rollouts.
    pub rollouts: Vec<Rollout>,
}

/// Where the fleet keeps its state.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Reads everything (at start).
    async fn load(&self) -> Result<Snapshot, StoreError>;
    /// Inserts or replaces an agent.
    async fn put_agent(&self, agent: &AgentRecord) -> Result<(), StoreError>;
    /// Removes an agent.
    async fn delete_agent(&self, instance_uid: &str) -> Result<(), StoreError>;
    /// Inserts or replaces a named configuration.
    async fn put_config(&self, config: &NamedConfig) -> Result<(), StoreError>;
    /// Removes a named configuration.
    async fn delete_config(&self, name: &str) -> Result<(), StoreError>;
    /// Inserts or replaces the rollout of a configuration.
    async fn put_rollout(&self, rollout: &Rollout) -> Result<(), StoreError>;
    /// Removes the rollout of a configuration.
    async fn delete_rollout(&self, config: &str) -> Result<(), StoreError>;
    /// Appends to the audit log; returns the entry's id.
    async fn append_audit(&self, entry: &AuditEntry) -> Result<i64, StoreError>;
    /// The newest audit entries (newest first), at most `limit`, older than `before` if given.
    async fn audit(&self, limit: u32, before: Option<i64>) -> Result<Vec<AuditEntry>, StoreError>;
    /// Flushes and closes.
    async fn close(&self);
}
