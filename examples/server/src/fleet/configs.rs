//! Named configurations and their rollouts: create, change, delete, pause, resume.

use serde::{Deserialize, Serialize};

use super::{Dirty, Fleet};
use crate::audit::AuditEntry;
use crate::configs::{
    ConfigError, ConfigFiles, MAX_DESCRIPTION, NamedConfig, config_hash, hex, validate_files,
    validate_name,
};
use crate::error::FleetError;
use crate::now_ms;
use crate::rollout::{Rollout, RolloutPolicy};
use crate::selector::Selector;

/// A named configuration as the API receives it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigInput {
    /// Name (required when creating; must equal the path when updating, if given).
    #[serde(default)]
    pub name: Option<String>,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Label selector (empty: every agent).
    #[serde(default)]
    pub selector: String,
    /// Priority among matching configurations.
    #[serde(default)]
    pub priority: i32,
    /// The files.
    pub files: ConfigFiles,
    /// Rollout policy of new versions.
    #[serde(default)]
    pub rollout: RolloutPolicy,
}

impl ConfigInput {
    fn validate(&self) -> Result<(), FleetError> {
        validate_files(&self.files)?;
        self.selector
            .parse::<Selector>()
            .map_err(ConfigError::from)?;
        if self.description.len() > MAX_DESCRIPTION {
            return Err(ConfigError::DescriptionTooLong.into());
        }
        self.rollout.validate().map_err(ConfigError::Rollout)?;
        Ok(())
    }
}

/// Most named configurations.
pub const MAX_CONFIGS: usize = 1000;

impl Fleet {
    /// Every named configuration.
    pub async fn configs(&self) -> Vec<NamedConfig> {
        self.lock().await.configs.values().cloned().collect()
    }

    /// One named configuration.
    pub async fn config(&self, name: &str) -> Result<NamedConfig, FleetError> {
        self.lock()
            .await
            .configs
            .get(name)
            .cloned()
            .ok_or_else(|| FleetError::UnknownConfig(name.to_owned()))
    }

    /// The rollout of a configuration's current version.
    pub async fn rollout(&self, name: &str) -> Result<Rollout, FleetError> {
        self.lock()
            .await
            .rollouts
            .get(name)
            .cloned()
            .ok_or_else(|| FleetError::UnknownConfig(name.to_owned()))
    }

    /// Every rollout.
    pub async fn rollouts(&self) -> Vec<Rollout> {
        self.lock().await.rollouts.values().cloned().collect()
    }

    /// Creates a named configuration and starts rolling it out.
    pub async fn create_config(
        &self,
        input: ConfigInput,
        actor: &str,
    ) -> Result<NamedConfig, FleetError> {
        let name = input
            .name
            .clone()
            .ok_or_else(|| FleetError::InvalidRequest("\"name\" is required".into()))?;
        validate_name(&name)?;
        input.validate()?;
        let now = now_ms();
        let state = &mut *self.lock().await;
        if state.configs.contains_key(&name) {
            return Err(FleetError::ConfigExists(name));
        }
        if state.configs.len() >= MAX_CONFIGS {
            return Err(FleetError::InvalidRequest(format!(
                "at most {MAX_CONFIGS} configurations"
            )));
        }
        let hash = hex(&config_hash(&input.files));
        let config = NamedConfig {
            name: name.clone(),
            description: input.description,
            selector: input.selector,
            priority: input.priority,
            files: input.files,
            hash: hash.clone(),
            version: 1,
            rollout: input.rollout,
            created_at: now,
            updated_at: now,
            updated_by: actor.to_owned(),
        };
        self.store.put_config(&config).await?;
        state.configs.insert(name.clone(), config.clone());
        state.rollouts.insert(
            name.clone(),
            Rollout::new(&name, &hash, 1, config.rollout, now),
        );
        let mut dirty = state.reconcile_all(now, &self.metrics);
        dirty.rollouts.insert(name.clone());
        self.persist(state, &dirty).await?;
        self.emit("config", &name);
        self.audit(
            AuditEntry::new(now, actor, "config.create", &name)
                .with_hashes(None, Some(hash))
                .with_details(format!(
                    "selector {:?}, priority {}",
                    config.selector, config.priority
                )),
        )
        .await?;
        Ok(config)
    }

    /// Changes a named configuration. New files start a new rollout; a new selector or
    /// priority only changes which agents it targets.
    pub async fn update_config(
        &self,
        name: &str,
        input: ConfigInput,
        actor: &str,
    ) -> Result<NamedConfig, FleetError> {
        if input.name.as_deref().is_some_and(|n| n != name) {
            return Err(FleetError::InvalidRequest(
                "the name cannot be changed".into(),
            ));
        }
        input.validate()?;
        let now = now_ms();
        let state = &mut *self.lock().await;
        let old = state
            .configs
            .get(name)
            .cloned()
            .ok_or_else(|| FleetError::UnknownConfig(name.to_owned()))?;
        let hash = hex(&config_hash(&input.files));
        let new_version = hash != old.hash;
        let config = NamedConfig {
            name: name.to_owned(),
            description: input.description,
            selector: input.selector,
            priority: input.priority,
            files: input.files,
            hash: hash.clone(),
            version: old.version + u64::from(new_version),
            rollout: input.rollout,
            created_at: old.created_at,
            updated_at: now,
            updated_by: actor.to_owned(),
        };
        self.store.put_config(&config).await?;
        state.configs.insert(name.to_owned(), config.clone());
        let mut dirty = Dirty::default();
        if new_version || !state.rollouts.contains_key(name) {
            state.rollouts.insert(
                name.to_owned(),
                Rollout::new(name, &hash, config.version, config.rollout, now),
            );
            dirty.rollouts.insert(name.to_owned());
        } else if let Some(r) = state.rollouts.get_mut(name)
            && r.policy != config.rollout
        {
            r.policy = config.rollout;
            dirty.rollouts.insert(name.to_owned());
        }
        dirty.merge(state.reconcile_all(now, &self.metrics));
        self.persist(state, &dirty).await?;
        self.emit("config", name);
        let mut what = Vec::new();
        if new_version {
            what.push(format!("version {}", config.version));
        }
        if old.selector != config.selector {
            what.push(format!(
                "selector {:?} -> {:?}",
                old.selector, config.selector
            ));
        }
        if old.priority != config.priority {
            what.push(format!("priority {} -> {}", old.priority, config.priority));
        }
        if old.rollout != config.rollout {
            what.push("rollout policy".to_owned());
        }
        self.audit(
            AuditEntry::new(now, actor, "config.update", name)
                .with_hashes(Some(old.hash), Some(hash))
                .with_details(what.join("; ")),
        )
        .await?;
        Ok(config)
    }

    /// Deletes a named configuration and its rollout. Agents keep what they run.
    pub async fn delete_config(&self, name: &str, actor: &str) -> Result<(), FleetError> {
        let now = now_ms();
        let state = &mut *self.lock().await;
        let old = state
            .configs
            .remove(name)
            .ok_or_else(|| FleetError::UnknownConfig(name.to_owned()))?;
        state.rollouts.remove(name);
        self.store.delete_config(name).await?;
        self.store.delete_rollout(name).await?;
        let dirty = state.reconcile_all(now, &self.metrics);
        self.persist(state, &dirty).await?;
        self.emit("config", name);
        self.audit(
            AuditEntry::new(now, actor, "config.delete", name).with_hashes(Some(old.hash), None),
        )
        .await
    }

    /// Pauses (`pause = true`) or resumes a rollout. Resuming a halted rollout accepts the
    /// failures so far.
    pub async fn set_rollout_paused(
        &self,
        name: &str,
        pause: bool,
        actor: &str,
    ) -> Result<Rollout, FleetError> {
        let now = now_ms();
        let state = &mut *self.lock().await;
        let r = state
            .rollouts
            .get_mut(name)
            .ok_or_else(|| FleetError::UnknownConfig(name.to_owned()))?;
        let changed = if pause { r.pause(now) } else { r.resume(now) };
        if !changed {
            return Err(FleetError::InvalidRequest(format!(
                "the rollout is {:?}; cannot {}",
                r.state,
                if pause { "pause it" } else { "resume it" }
            )));
        }
        let hash = r.hash.clone();
        let mut dirty = Dirty::default();
        dirty.rollouts.insert(name.to_owned());
        dirty.merge(state.reconcile_all(now, &self.metrics));
        self.persist(state, &dirty).await?;
        let snapshot = state.rollouts.get(name).cloned();
        self.audit(
            AuditEntry::new(
                now,
                actor,
                if pause {
                    "rollout.pause"
                } else {
                    "rollout.resume"
                },
                name,
            )
            .with_hashes(None, Some(hash)),
        )
        .await?;
        snapshot.ok_or_else(|| FleetError::UnknownConfig(name.to_owned()))
    }
}
