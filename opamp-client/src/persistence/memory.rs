//! [`MemoryStateStore`]: state kept for the life of the process only.

use std::sync::{Mutex, PoisonError};

use opamp_proto::{InstanceUid, RemoteConfigStatus};

use super::PersistedConnectionSettings;
use super::StateStore;
use crate::Error;

#[derive(Default)]
struct Inner {
    instance_uid: Option<InstanceUid>,
    remote_config_status: Option<RemoteConfigStatus>,
    connection_settings: Option<PersistedConnectionSettings>,
}

/// A [`StateStore`] in memory: survives client restarts inside one process (e.g. a client
/// rebuilt with new settings), not process restarts. Useful for tests and for Agents with
/// ephemeral storage only.
///
/// ```
/// use opamp_client::persistence::{MemoryStateStore, StateStore};
/// use opamp_client::proto::InstanceUid;
///
/// let store = MemoryStateStore::new();
/// assert_eq!(store.load_instance_uid()?, None);
/// let uid = InstanceUid::new_v7();
/// store.save_instance_uid(uid)?;
/// assert_eq!(store.load_instance_uid()?, Some(uid));
/// # Ok::<(), opamp_client::Error>(())
/// ```
#[derive(Default)]
pub struct MemoryStateStore {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for MemoryStateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("MemoryStateStore")
            .field("instance_uid", &inner.instance_uid)
            .field(
                "remote_config_status",
                &inner.remote_config_status.is_some(),
            )
            .field("connection_settings", &inner.connection_settings.is_some())
            .finish()
    }
}

impl MemoryStateStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        f(&mut self.inner.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl StateStore for MemoryStateStore {
    fn load_instance_uid(&self) -> Result<Option<InstanceUid>, Error> {
        Ok(self.with(|i| i.instance_uid))
    }

    fn save_instance_uid(&self, uid: InstanceUid) -> Result<(), Error> {
        self.with(|i| i.instance_uid = Some(uid));
        Ok(())
    }

    fn load_remote_config_status(&self) -> Result<Option<RemoteConfigStatus>, Error> {
        Ok(self.with(|i| i.remote_config_status.clone()))
    }

    fn save_remote_config_status(&self, status: &RemoteConfigStatus) -> Result<(), Error> {
        self.with(|i| i.remote_config_status = Some(status.clone()));
        Ok(())
    }

    fn load_connection_settings(&self) -> Result<Option<PersistedConnectionSettings>, Error> {
        Ok(self.with(|i| i.connection_settings.clone()))
    }

    fn save_connection_settings(
        &self,
        settings: &PersistedConnectionSettings,
    ) -> Result<(), Error> {
        self.with(|i| i.connection_settings = Some(settings.clone()));
        Ok(())
    }
}
