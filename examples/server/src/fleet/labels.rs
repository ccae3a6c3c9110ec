//! Operator labels: trusted key/value pairs an admin sets on an agent (agent page or API).
//! The agent cannot set or change them; selectors match them as `label:KEY` (see
//! [`crate::selector`]), so a configuration can require them.

use std::collections::BTreeMap;

use super::{Dirty, Fleet};
use crate::audit::AuditEntry;
use crate::error::FleetError;
use crate::now_ms;
use crate::selector::{valid_label_key, valid_label_value};

/// Most operator labels on one agent.
pub const MAX_LABELS: usize = 32;

/// Checks a label set.
pub fn validate_labels(labels: &BTreeMap<String, String>) -> Result<(), FleetError> {
    if labels.len() > MAX_LABELS {
        return Err(FleetError::InvalidRequest(format!(
            "at most {MAX_LABELS} labels"
        )));
    }
    for (k, v) in labels {
        if !valid_label_key(k) {
            return Err(FleetError::InvalidRequest(format!(
                "invalid label key {k:?} (letters, digits, '.', '_', '-', '/'; at most 256 bytes)"
            )));
        }
        if !valid_label_value(v) {
            return Err(FleetError::InvalidRequest(format!(
                "invalid value of label {k:?} (at most 256 bytes; no ',', '(', ')', '=', '!', control characters or surrounding spaces)"
            )));
        }
    }
    Ok(())
}

impl Fleet {
    /// Replaces the operator labels of a known agent (connected or not); the configuration
    /// it gets is re-evaluated at once.
    pub async fn set_agent_labels(
        &self,
        uid: &str,
        labels: BTreeMap<String, String>,
        actor: &str,
    ) -> Result<BTreeMap<String, String>, FleetError> {
        validate_labels(&labels)?;
        let now = now_ms();
        let state = &mut *self.lock().await;
        let agent = state
            .agents
            .get_mut(uid)
            .ok_or_else(|| FleetError::UnknownAgent(uid.to_owned()))?;
        let old = std::mem::replace(&mut agent.labels, labels.clone());
        let mut dirty = Dirty::default();
        dirty.agents.insert(uid.to_owned());
        dirty.merge(state.reconcile_agent(uid, None, now, &self.metrics));
        self.persist(state, &dirty).await?;
        let show = |m: &BTreeMap<String, String>| {
            m.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        self.audit(
            AuditEntry::new(now, actor, "agent.labels.set", uid).with_details(format!(
                "{{{}}} -> {{{}}}",
                show(&old),
                show(&labels)
            )),
        )
        .await?;
        Ok(labels)
    }
}
