//! Panics in the Agent's code must not take the client down: every callback (and the header
//! provider) runs under [`CatchUnwind`]; a panic is logged, reported through
//! [`Callbacks::on_callback_panic`], and the callback counts as having done nothing (or, where
//! it answers, as having refused).
//!
//! The whole driver runs under [`CatchUnwind`] too, so that if it ever ends by a panic the
//! handle learns why ([`Client::ended`](crate::Client::ended)).

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_trait::async_trait;
use opamp_proto::{
    EffectiveConfig, InstanceUid, OpAmpConnectionSettings, ServerErrorResponse,
    ServerToAgentCommand,
};

use crate::Error;
use crate::callbacks::{CallbackError, Callbacks, MessageData};

/// A future whose panics come out as `Err(message)` instead of unwinding through the caller.
pub(crate) struct CatchUnwind<F>(Pin<Box<F>>);

impl<F: Future> CatchUnwind<F> {
    pub(crate) fn new(future: F) -> Self {
        CatchUnwind(Box::pin(future))
    }
}

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, String>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let future = self.get_mut().0.as_mut();
        // The future is dropped after a panic (never polled again), so whatever state it
        // left half-updated is not observed through it.
        match std::panic::catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
            Ok(Poll::Ready(value)) => Poll::Ready(Ok(value)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => Poll::Ready(Err(panic_message(payload.as_ref()))),
        }
    }
}

/// The text of a panic payload (`&str` or `String`; anything else is described).
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic with a non-text payload".to_owned()
    }
}

/// The Agent's callbacks, each call guarded against panics.
pub(crate) struct Guarded {
    inner: Arc<dyn Callbacks>,
}

impl Guarded {
    pub(crate) fn new(inner: Arc<dyn Callbacks>) -> Self {
        Guarded { inner }
    }

    /// Runs one callback; on a panic logs it, tells the Agent and returns `None`.
    async fn run<T>(
        &self,
        callback: &'static str,
        future: impl Future<Output = T> + Send,
    ) -> Option<T> {
        match CatchUnwind::new(future).await {
            Ok(value) => Some(value),
            Err(panic) => {
                tracing::error!(
                    callback,
                    %panic,
                    "an OpAMP client callback panicked; the client keeps running"
                );
                let reported =
                    CatchUnwind::new(self.inner.on_callback_panic(callback, &panic)).await;
                if let Err(again) = reported {
                    tracing::error!(panic = %again, "on_callback_panic panicked too");
                }
                None
            }
        }
    }
}

fn panicked(callback: &'static str) -> CallbackError {
    format!("the {callback} callback panicked").into()
}

#[async_trait]
impl Callbacks for Guarded {
    async fn on_connect(&self) {
        self.run("on_connect", self.inner.on_connect()).await;
    }

    async fn on_connect_failed(&self, error: &Error) {
        self.run("on_connect_failed", self.inner.on_connect_failed(error))
            .await;
    }

    async fn on_connection_lost(&self, error: &Error) {
        self.run("on_connection_lost", self.inner.on_connection_lost(error))
            .await;
    }

    async fn on_error(&self, error: &ServerErrorResponse) {
        self.run("on_error", self.inner.on_error(error)).await;
    }

    async fn on_message(&self, msg: MessageData) {
        self.run("on_message", self.inner.on_message(msg)).await;
    }

    async fn on_opamp_connection_settings(
        &self,
        settings: &OpAmpConnectionSettings,
    ) -> Result<(), CallbackError> {
        const NAME: &str = "on_opamp_connection_settings";
        self.run(NAME, self.inner.on_opamp_connection_settings(settings))
            .await
            .unwrap_or_else(|| Err(panicked(NAME)))
    }

    async fn on_opamp_connection_settings_outcome(&self, outcome: Result<(), &str>) {
        self.run(
            "on_opamp_connection_settings_outcome",
            self.inner.on_opamp_connection_settings_outcome(outcome),
        )
        .await;
    }

    async fn on_command(&self, command: &ServerToAgentCommand) {
        self.run("on_command", self.inner.on_command(command)).await;
    }

    async fn get_effective_config(&self) -> Result<Option<EffectiveConfig>, CallbackError> {
        const NAME: &str = "get_effective_config";
        self.run(NAME, self.inner.get_effective_config())
            .await
            .unwrap_or_else(|| Err(panicked(NAME)))
    }

    async fn on_instance_uid_changed(&self, uid: InstanceUid) {
        self.run(
            "on_instance_uid_changed",
            self.inner.on_instance_uid_changed(uid),
        )
        .await;
    }

    async fn on_callback_panic(&self, callback: &'static str, panic: &str) {
        // Only the driver calls it, through `run`; forwarded for completeness.
        self.run(
            "on_callback_panic",
            self.inner.on_callback_panic(callback, panic),
        )
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panic_becomes_an_error() {
        let caught = CatchUnwind::new(async { panic!("boom {}", 1) }).await;
        assert_eq!(caught.unwrap_err(), "boom 1");
        let fine = CatchUnwind::new(async { 7 }).await;
        assert_eq!(fine.unwrap(), 7);
    }
}
