//! Hooks to persist and restore client state across restarts: the [`StateStore`] trait, an
//! in-memory implementation ([`MemoryStateStore`]) and a file-based one ([`FileStateStore`]).
//!
//! What is kept, and why:
//!
//! * the **instance UID**, so that the Agent keeps its identity, including a UID assigned by
//!   the server (spec §"ServerToAgent.agent_identification");
//! * the **remote config status**, so that after a restart the Agent reports the hash of the
//!   configuration it runs and the server does not resend it (spec §"Configuration");
//! * the **OpAMP connection settings**: the settings known to work and a candidate being
//!   validated (spec §"OpAMP Connection Setting Offer Flow", step 3: after a crash, validation
//!   starts again).
//!
//! The client calls the store from a blocking thread (`tokio::task::spawn_blocking`), so an
//! implementation may do synchronous IO.

mod atomic;
mod file;
mod memory;

pub use atomic::write_atomic;
pub use file::FileStateStore;
pub use memory::MemoryStateStore;

use std::fmt;

use opamp_proto::{InstanceUid, RemoteConfigStatus};
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::connection_settings::ConnectionSettingsSnapshot;

/// Persisted OpAMP connection settings: the manager's snapshot (active settings, candidate,
/// last offer hash and status, pending CSR key) and the server URL of the client settings it
/// grew from. When the Agent is restarted with another server URL, the snapshot belongs to
/// the old server and is discarded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PersistedConnectionSettings {
    /// `ClientSettings::server_url` when the snapshot was taken.
    pub base_url: String,
    /// The connection settings manager's state.
    pub snapshot: ConnectionSettingsSnapshot,
}

impl PersistedConnectionSettings {
    /// Settings that grew from `base_url`.
    pub fn new(base_url: impl Into<String>, snapshot: ConnectionSettingsSnapshot) -> Self {
        PersistedConnectionSettings {
            base_url: base_url.into(),
            snapshot,
        }
    }
}

/// Where the client keeps the state it must not forget when the process restarts.
///
/// `load_*` return `Ok(None)` when nothing was saved yet.
pub trait StateStore: Send + Sync + fmt::Debug + 'static {
    /// The saved instance UID.
    fn load_instance_uid(&self) -> Result<Option<InstanceUid>, Error>;
    /// Saves the instance UID (at first start, and when the server assigns a new one).
    fn save_instance_uid(&self, uid: InstanceUid) -> Result<(), Error>;

    /// The saved remote config status.
    fn load_remote_config_status(&self) -> Result<Option<RemoteConfigStatus>, Error>;
    /// Saves the remote config status (each time the Agent sets a new one).
    fn save_remote_config_status(&self, status: &RemoteConfigStatus) -> Result<(), Error>;

    /// The saved OpAMP connection settings (active settings and candidate).
    fn load_connection_settings(&self) -> Result<Option<PersistedConnectionSettings>, Error>;
    /// Saves the OpAMP connection settings (each time they change). They hold secrets
    /// (headers, private keys).
    fn save_connection_settings(&self, settings: &PersistedConnectionSettings)
    -> Result<(), Error>;
}
