//! State shared by the [`Client`](crate::Client) handle and the driver task.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::{Notify, oneshot, watch};

use crate::Error;
use crate::connection_settings::ConnectionSettingsManager;
use crate::persistence::StateStore;
use crate::state::{ClientState, CustomMessageId};

/// What the driver should do besides its protocol work, set by the handle.
#[derive(Debug, Default)]
pub(crate) struct Requests {
    /// Pull the effective configuration from the callbacks.
    pub(crate) effective_config: AtomicBool,
    /// Persist the remote config status.
    pub(crate) persist_remote_config_status: AtomicBool,
    /// Persist the connection settings snapshot.
    pub(crate) persist_connection_settings: AtomicBool,
}

impl Requests {
    pub(crate) fn take(flag: &AtomicBool) -> bool {
        flag.swap(false, Ordering::AcqRel)
    }
}

/// Everything the handle and the driver share. Locks are held only for short synchronous
/// sections, never across an `.await`.
pub(crate) struct Shared {
    state: Mutex<ClientState>,
    manager: Mutex<ConnectionSettingsManager>,
    /// Wakes the driver after a setter changed something or a request was made.
    pub(crate) wake: Notify,
    pub(crate) requests: Requests,
    /// Senders waiting for custom messages to go out (at most one is pending at a time).
    custom_waiters: Mutex<HashMap<CustomMessageId, oneshot::Sender<Result<(), Error>>>>,
    /// Becomes true when stop is requested: send `agent_disconnect`, close, end the task.
    pub(crate) stop: watch::Sender<bool>,
    /// Becomes true when the driver task has ended.
    pub(crate) done: watch::Sender<bool>,
    /// The last CSR request, to redo it when the instance UID changes.
    pub(crate) last_csr: Mutex<Option<crate::connection_settings::csr::CsrRequest>>,
    pub(crate) store: Option<Arc<dyn StateStore>>,
    /// The server URL of the settings (for persisted connection settings).
    pub(crate) base_url: String,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("requests", &self.requests)
            .field("done", &*self.done.borrow())
            .finish_non_exhaustive()
    }
}

impl Shared {
    pub(crate) fn new(
        state: ClientState,
        manager: ConnectionSettingsManager,
        store: Option<Arc<dyn StateStore>>,
        base_url: String,
    ) -> Self {
        Shared {
            state: Mutex::new(state),
            manager: Mutex::new(manager),
            wake: Notify::new(),
            requests: Requests::default(),
            custom_waiters: Mutex::new(HashMap::new()),
            stop: watch::Sender::new(false),
            done: watch::Sender::new(false),
            last_csr: Mutex::new(None),
            store,
            base_url,
        }
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, ClientState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn manager(&self) -> MutexGuard<'_, ConnectionSettingsManager> {
        self.manager.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wakes the driver (the wake-up is kept if the driver is not waiting right now).
    pub(crate) fn wake(&self) {
        self.wake.notify_one();
    }

    pub(crate) fn request(&self, flag: &AtomicBool) {
        flag.store(true, Ordering::Release);
        self.wake();
    }

    pub(crate) fn stop_requested(&self) -> bool {
        *self.stop.borrow()
    }

    /// Asks the driver to stop.
    pub(crate) fn request_stop(&self) {
        self.stop.send_replace(true);
        self.wake();
    }

    pub(crate) fn add_custom_waiter(
        &self,
        id: CustomMessageId,
        sender: oneshot::Sender<Result<(), Error>>,
    ) {
        self.custom_waiters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, sender);
    }

    pub(crate) fn resolve_custom_waiter(&self, id: CustomMessageId, result: Result<(), Error>) {
        let sender = self
            .custom_waiters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
        if let Some(sender) = sender {
            let _ = sender.send(result);
        }
    }

    /// Fails every waiter (the client stopped).
    pub(crate) fn fail_custom_waiters(&self) {
        let waiters = std::mem::take(
            &mut *self
                .custom_waiters
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for (_, sender) in waiters {
            let _ = sender.send(Err(Error::Stopped));
        }
    }
}
