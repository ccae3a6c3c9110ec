//! The audit log: who changed what, when, with the old and new configuration hash.

use serde::{Deserialize, Serialize};

/// Longest text kept in an audit entry's `details`.
pub const MAX_DETAILS: usize = 2048;

/// One change made through the API or the dashboard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Sequence number assigned by the store (0 before it is stored).
    pub id: i64,
    /// Unix milliseconds.
    pub at: i64,
    /// Who: the dashboard user name, `api-token`, or `local` (loopback without credentials).
    pub actor: String,
    /// What, e.g. `config.create`, `agent.config.set`, `agent.restart`, `rollout.pause`.
    pub action: String,
    /// The object: a configuration name or an agent instance UID.
    pub target: String,
    /// Configuration hash before the change (hex), if one applies.
    pub old_hash: Option<String>,
    /// Configuration hash after the change (hex), if one applies.
    pub new_hash: Option<String>,
    /// Free text (never a configuration body).
    pub details: String,
}

impl AuditEntry {
    /// A new entry at `at`.
    pub fn new(at: i64, actor: &str, action: &str, target: &str) -> Self {
        Self {
            id: 0,
            at,
            actor: actor.to_owned(),
            action: action.to_owned(),
            target: target.to_owned(),
            old_hash: None,
            new_hash: None,
            details: String::new(),
        }
    }

    /// Sets the hashes.
    #[must_use]
    pub fn with_hashes(mut self, old: Option<String>, new: Option<String>) -> Self {
        self.old_hash = old;
        self.new_hash = new;
        self
    }

    /// Sets the details, cut at [`MAX_DETAILS`] bytes (on a character boundary).
    #[must_use]
    pub fn with_details(mut self, details: impl Into<String>) -> Self {
        let mut d: String = details.into();
        if d.len() > MAX_DETAILS {
            let mut cut = MAX_DETAILS;
            while !d.is_char_boundary(cut) {
                cut -= 1;
            }
            d.truncate(cut);
        }
        self.details = d;
        self
    }
}
