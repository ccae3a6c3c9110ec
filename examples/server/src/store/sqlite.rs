//! [`SqliteStore`]: the embedded store, one SQLite file through sqlx, with migrations
//! embedded in the binary.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::{Snapshot, Store, StoreError};
use crate::agent::AgentRecord;
use crate::audit::AuditEntry;
use crate::configs::NamedConfig;
use crate::rollout::Rollout;

/// Schema migrations, applied in order; each runs once (recorded in `schema_migrations`).
const MIGRATIONS: &[(i64, &str)] = &[(1, include_str!("../../migrations/0001_initial.sql"))];

/// The embedded SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

/// Creates the database file readable and writable by its owner only (it holds
/// configuration bodies, which may carry secrets); SQLite gives its `-wal` and `-shm` files
/// the same mode. An existing file keeps its mode, with a warning if others may read it.
fn private_file(path: &std::path::Path) -> Result<(), StoreError> {
    if path.as_os_str().is_empty() || path.as_os_str() == ":memory:" {
        return Ok(());
    }
    let mut open = std::fs::OpenOptions::new();
    open.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut open, 0o600);
    match open.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            #[cfg(unix)]
            if let Ok(meta) = std::fs::metadata(path) {
                use std::os::unix::fs::PermissionsExt;
                let mode = meta.permissions().mode();
                if mode & 0o077 != 0 {
                    tracing::warn!(
                        path = %path.display(),
                        mode = %format!("{:o}", mode & 0o777),
                        "the store is readable by other users; it holds configuration bodies (chmod 600)"
                    );
                }
            }
            Ok(())
        }
        Err(e) => Err(StoreError::Create {
            path: path.display().to_string(),
            source: e,
        }),
    }
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `location`: a file path, a `sqlite:` URL,
    /// or `:memory:` for a store that lives as long as the process.
    pub async fn open(location: &str) -> Result<Self, StoreError> {
        let memory = location == ":memory:" || location == "sqlite::memory:";
        let options = if memory {
            SqliteConnectOptions::from_str("sqlite::memory:")?
        } else if location.starts_with("sqlite:") {
            SqliteConnectOptions::from_str(location)?.create_if_missing(true)
        } else {
            if location.is_empty() {
                return Err(StoreError::InvalidLocation(location.to_owned()));
            }
            SqliteConnectOptions::new()
                .filename(location)
                .create_if_missing(true)
        };
        if !memory {
            private_file(options.get_filename())?;
        }
        let options = options
            .journal_mode(if memory {
                SqliteJournalMode::Memory
            } else {
                SqliteJournalMode::Wal
            })
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        // An in-memory database exists per connection: keep exactly one.
        let pool = SqlitePoolOptions::new()
            .max_connections(if memory { 1 } else { 4 })
            .min_connections(if memory { 1 } else { 0 })
            .idle_timeout(if memory {
                None
            } else {
                Some(Duration::from_secs(600))
            })
            .max_lifetime(if memory {
                None
            } else {
                Some(Duration::from_secs(3600))
            })
            .connect_with(options)
            .await?;
        let store = Self { pool };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY NOT NULL, applied_at BIGINT NOT NULL)",
        )
        .execute(&self.pool)
        .await?;
        for (version, sql) in MIGRATIONS {
            let mut tx = self.pool.begin().await?;
            let done: Option<i64> =
                sqlx::query_scalar("SELECT version FROM schema_migrations WHERE version = ?")
                    .bind(version)
                    .fetch_optional(&mut *tx)
                    .await?;
            if done.is_none() {
                sqlx::raw_sql(sql).execute(&mut *tx).await?;
                sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)")
                    .bind(version)
                    .bind(crate::now_ms())
                    .execute(&mut *tx)
                    .await?;
                tracing::info!(version, "store: applied migration");
            }
            tx.commit().await?;
        }
        Ok(())
    }

    async fn put_doc<T: Serialize>(
        &self,
        table: &'static str,
        key_col: &'static str,
        key: &str,
        doc: &T,
    ) -> Result<(), StoreError> {
        let data = serde_json::to_string(doc).map_err(|source| StoreError::Document {
            key: key.to_owned(),
            source,
        })?;
        // Table and column names are constants of this module, never input.
        let sql = format!(
            "INSERT INTO {table} ({key_col}, data, updated_at) VALUES (?, ?, ?) \
             ON CONFLICT({key_col}) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at"
        );
        sqlx::query(&sql)
            .bind(key)
            .bind(data)
            .bind(crate::now_ms())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn delete_doc(
        &self,
        table: &'static str,
        key_col: &'static str,
        key: &str,
    ) -> Result<(), StoreError> {
        let sql = format!("DELETE FROM {table} WHERE {key_col} = ?");
        sqlx::query(&sql).bind(key).execute(&self.pool).await?;
        Ok(())
    }

    async fn load_docs<T: DeserializeOwned>(
        &self,
        table: &'static str,
        key_col: &'static str,
    ) -> Result<Vec<T>, StoreError> {
        let sql = format!("SELECT {key_col}, data FROM {table} ORDER BY {key_col}");
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let key: String = row.try_get(0)?;
            let data: String = row.try_get(1)?;
            match serde_json::from_str(&data) {
                Ok(doc) => out.push(doc),
                // One damaged row must not keep the server from starting.
                Err(source) => {
                    tracing::error!(table, key = %crate::logsafe::Untrusted(&key), error = %source, "store: skipping unreadable row")
                }
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn load(&self) -> Result<Snapshot, StoreError> {
        Ok(Snapshot {
            agents: self.load_docs("agents", "instance_uid").await?,
            configs: self.load_docs("configs", "name").await?,
            rollouts: self.load_docs("rollouts", "config").await?,
        })
    }

    async fn put_agent(&self, agent: &AgentRecord) -> Result<(), StoreError> {
        self.put_doc("agents", "instance_uid", &agent.instance_uid, agent)
            .await
    }

    async fn delete_agent(&self, instance_uid: &str) -> Result<(), StoreError> {
        self.delete_doc("agents", "instance_uid", instance_uid)
            .await
    }

    async fn put_config(&self, config: &NamedConfig) -> Result<(), StoreError> {
        self.put_doc("configs", "name", &config.name, config).await
    }

    async fn delete_config(&self, name: &str) -> Result<(), StoreError> {
        self.delete_doc("configs", "name", name).await
    }

    async fn put_rollout(&self, rollout: &Rollout) -> Result<(), StoreError> {
        self.put_doc("rollouts", "config", &rollout.config, rollout)
            .await
    }

    async fn delete_rollout(&self, config: &str) -> Result<(), StoreError> {
        self.delete_doc("rollouts", "config", config).await
    }

    async fn append_audit(&self, e: &AuditEntry) -> Result<i64, StoreError> {
        let id = sqlx::query(
            "INSERT INTO audit (at, actor, action, target, old_hash, new_hash, details) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(e.at)
        .bind(&e.actor)
        .bind(&e.action)
        .bind(&e.target)
        .bind(&e.old_hash)
        .bind(&e.new_hash)
        .bind(&e.details)
        .execute(&self.pool)
        .await?
        .last_insert_rowid();
        Ok(id)
    }

    async fn audit(&self, limit: u32, before: Option<i64>) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, at, actor, action, target, old_hash, new_hash, details FROM audit \
             WHERE id < ? ORDER BY id DESC LIMIT ?",
        )
        .bind(before.unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(AuditEntry {
                    id: r.try_get(0)?,
                    at: r.try_get(1)?,
                    actor: r.try_get(2)?,
                    action: r.try_get(3)?,
                    target: r.try_get(4)?,
                    old_hash: r.try_get(5)?,
                    new_hash: r.try_get(6)?,
                    details: r.try_get(7)?,
                })
            })
            .collect()
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::configs::{ConfigFile, ConfigFiles, OfferedConfig};
    use crate::rollout::RolloutPolicy;

    fn config(name: &str) -> NamedConfig {
        let mut files = ConfigFiles::new();
        files.insert(String::new(), ConfigFile::yaml("a: 1"));
        let offer = OfferedConfig::new("x", files.clone());
        NamedConfig {
            name: name.into(),
            description: String::new(),
            selector: "env=prod".into(),
            priority: 0,
            files,
            hash: offer.hash,
            version: 1,
            rollout: RolloutPolicy::default(),
            created_at: 1,
            updated_at: 1,
            updated_by: "t".into(),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn round_trips_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fleet.sqlite");
        let path = path.to_str().unwrap();
        {
            let s = SqliteStore::open(path).await.unwrap();
            let mut a = AgentRecord::new("u1".into(), 5);
            a.identifying.insert("service.name".into(), "col".into());
            s.put_agent(&a).await.unwrap();
            a.capabilities = 7;
            s.put_agent(&a).await.unwrap();
            s.put_config(&config("c1")).await.unwrap();
            s.put_config(&config("c2")).await.unwrap();
            s.delete_config("c2").await.unwrap();
            let r = Rollout::new("c1", "h", 1, RolloutPolicy::default(), 3);
            s.put_rollout(&r).await.unwrap();
            for i in 0..5 {
                let id = s
                    .append_audit(&AuditEntry::new(i, "me", "config.create", &format!("c{i}")))
                    .await
                    .unwrap();
                assert_eq!(id, i + 1);
            }
            s.close().await;
        }
        let s = SqliteStore::open(path).await.unwrap();
        let snap = s.load().await.unwrap();
        assert_eq!(snap.agents.len(), 1);
        assert_eq!(snap.agents[0].capabilities, 7);
        assert_eq!(snap.configs, vec![config("c1")]);
        assert_eq!(snap.rollouts.len(), 1);
        let page = s.audit(2, None).await.unwrap();
        assert_eq!(page.iter().map(|e| e.id).collect::<Vec<_>>(), vec![5, 4]);
        let older = s.audit(10, Some(4)).await.unwrap();
        assert_eq!(older.len(), 3);
        assert_eq!(older[0].target, "c2");
    }

    #[tokio::test]
    async fn memory_store_and_bad_rows() {
        let s = SqliteStore::open(":memory:").await.unwrap();
        sqlx::query("INSERT INTO configs (name, data, updated_at) VALUES ('bad', '{not json', 0)")
            .execute(&s.pool)
            .await
            .unwrap();
        s.put_config(&config("good")).await.unwrap();
        let snap = s.load().await.unwrap();
        assert_eq!(snap.configs.len(), 1, "the damaged row is skipped");
        assert!(SqliteStore::open("").await.is_err());
    }
}
