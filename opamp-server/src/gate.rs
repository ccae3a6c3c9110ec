//! The gate every callback-running task passes: shutdown closes it and waits until the tasks
//! inside have left, so that no callback runs once shutdown returns.

use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::Notify;

#[derive(Debug, Default)]
struct Inner {
    closed: bool,
    active: usize,
}

/// Counts tasks that may run callbacks; refuses new ones once closed.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    inner: Mutex<Inner>,
    idle: Notify,
}

/// Held while a task may run callbacks.
#[derive(Debug)]
pub(crate) struct GateGuard {
    gate: Arc<Gate>,
}

impl Gate {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Enters the gate; `None` once it is closed.
    pub(crate) fn enter(self: &Arc<Self>) -> Option<GateGuard> {
        let mut inner = self.lock();
        if inner.closed {
            return None;
        }
        inner.active += 1;
        Some(GateGuard {
            gate: Arc::clone(self),
        })
    }

    /// True once closed.
    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Closes the gate (no new entries).
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.idle.notify_waiters();
    }

    /// Waits until every guard is dropped. Call after [`Gate::close`].
    pub(crate) async fn wait_idle(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.lock().active == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for GateGuard {
    fn drop(&mut self) {
        let mut inner = self.gate.lock();
        inner.active -= 1;
        if inner.active == 0 {
            drop(inner);
            self.gate.idle.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn close_waits_for_guards() {
        let gate = Arc::new(Gate::default());
        let guard = gate.enter().unwrap();
        gate.close();
        assert!(gate.is_closed());
        assert!(gate.enter().is_none());
        let waiter = tokio::spawn({
            let gate = Arc::clone(&gate);
            async move { gate.wait_idle().await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished());
        drop(guard);
        tokio::time::timeout(Duration::from_secs(10), waiter)
            .await
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn idle_gate_returns_at_once() {
        let gate = Arc::new(Gate::default());
        gate.close();
        tokio::time::timeout(Duration::from_secs(10), gate.wait_idle())
            .await
            .unwrap();
    }
}
