//! The OpAMP connection settings flow as the driver carries it out (spec §"OpAMP Connection
//! Setting Offer Flow"): offers go through the
//! [`ConnectionSettingsManager`](crate::connection_settings::ConnectionSettingsManager);
//! candidates are tried by reconnecting, kept on success and reverted on failure, and every
//! change is persisted and reported.

use opamp_proto::{
    AgentCapabilities, Bytes, ConnectionSettingsOffers, ConnectionSettingsStatus,
    ConnectionSettingsStatuses, InstanceUid, OpAmpConnectionSettings,
};

use super::Driver;
use crate::Error;
use crate::connection_settings::{CandidateOutcome, OfferDecision};
use crate::persistence::PersistedConnectionSettings;

impl Driver {
    fn report_connection_settings_status(&self, status: ConnectionSettingsStatus) {
        let mut state = self.shared.state();
        if state
            .capabilities()
            .contains(AgentCapabilities::REPORTS_CONNECTION_SETTINGS_STATUS)
        {
            // Cannot fail: the capability is checked above.
            let _ = state.set_connection_settings_status(status);
        }
    }

    pub(super) async fn persist_connection_settings(&self) {
        let snapshot = self.shared.manager().take_changed_snapshot();
        if let Some(snapshot) = snapshot {
            let persisted =
                PersistedConnectionSettings::new(self.shared.base_url.clone(), snapshot);
            self.with_store("connection settings", move |store| {
                store.save_connection_settings(&persisted)
            })
            .await;
        }
    }

    /// Handles an offer of new OpAMP connection settings. Returns true when the connection
    /// must be replaced to try them.
    pub(super) async fn handle_opamp_offer(
        &mut self,
        settings: OpAmpConnectionSettings,
        hash: Bytes,
    ) -> bool {
        let refuse = |error: String| ConnectionSettingsStatus {
            last_connection_settings_hash: hash.clone(),
            status: ConnectionSettingsStatuses::Failed as i32,
            error_message: error,
        };
        // An unusable proxy is refused before the agent is asked: nothing it says could
        // make the proxy usable.
        let refused = match settings
            .proxy
            .as_ref()
            .map(|proxy| crate::connection_settings::ProxyParams::new(&proxy.url).validate())
        {
            Some(Err(err)) => Some(err.to_string()),
            _ => self
                .callbacks
                .on_opamp_connection_settings(&settings)
                .await
                .err()
                .map(|err| format!("refused by the agent: {err}")),
        };
        if let Some(error) = refused {
            tracing::info!(%error, "OpAMP connection settings offer refused");
            self.report_connection_settings_status(refuse(error.clone()));
            self.callbacks
                .on_opamp_connection_settings_outcome(Err(&error))
                .await;
            return false;
        }
        let offers = ConnectionSettingsOffers {
            hash,
            opamp: Some(settings),
            ..Default::default()
        };
        let capabilities = self.shared.state().capabilities();
        let decision = self.shared.manager().handle_offer(&offers, capabilities);
        let reconnect = match decision {
            OfferDecision::Rejected { status, error } => {
                self.report_connection_settings_status(status);
                self.callbacks
                    .on_opamp_connection_settings_outcome(Err(&error))
                    .await;
                false
            }
            OfferDecision::Applied {
                heartbeat_interval,
                status,
            } => {
                if let Some(interval) = heartbeat_interval {
                    self.shared
                        .state()
                        .set_offered_heartbeat_interval(Some(interval));
                }
                if let Some(status) = status {
                    self.report_connection_settings_status(status);
                    self.callbacks
                        .on_opamp_connection_settings_outcome(Ok(()))
                        .await;
                }
                false
            }
            OfferDecision::Reconnect { status, .. } => {
                // APPLYING goes out with agent_disconnect, before the switch.
                self.report_connection_settings_status(status);
                self.shared.state().report_full_state_on_connect();
                true
            }
            OfferDecision::Duplicate | OfferDecision::NoOpampOffer => false,
        };
        self.persist_connection_settings().await;
        reconnect
    }

    /// The server accepted a connection (its first answer was not an error): a candidate
    /// under validation becomes the active settings.
    pub(super) async fn connection_confirmed(&mut self) {
        let outcome = self.shared.manager().on_connected();
        if let Some(CandidateOutcome::Applied { status, params }) = outcome {
            tracing::info!(endpoint = %params.endpoint, "offered OpAMP connection settings applied");
            self.report_connection_settings_status(status);
            self.shared
                .state()
                .set_offered_heartbeat_interval(params.heartbeat_interval);
            self.persist_connection_settings().await;
            self.callbacks
                .on_opamp_connection_settings_outcome(Ok(()))
                .await;
        }
    }

    /// A connection attempt failed. With a candidate under validation this counts against
    /// it; returns true when the candidate was reverted (the parameters changed).
    pub(super) async fn candidate_failed(&mut self, error: &Error) -> bool {
        let outcome = self.shared.manager().on_connect_failed(error);
        let reverted = match outcome {
            Some(CandidateOutcome::Reverted { status, params }) => {
                tracing::warn!(endpoint = %params.endpoint, "reverting to the previous OpAMP connection settings");
                let error = status.error_message.clone();
                self.report_connection_settings_status(status);
                {
                    let mut state = self.shared.state();
                    state.report_full_state_on_connect();
                    state.set_offered_heartbeat_interval(params.heartbeat_interval);
                }
                self.callbacks
                    .on_opamp_connection_settings_outcome(Err(&error))
                    .await;
                true
            }
            _ => false,
        };
        self.persist_connection_settings().await;
        reverted
    }

    /// A CSR bound to the old instance UID must be redone after the server assigned a new one
    /// (spec §"Using instance_uid in the CSR").
    pub(super) async fn redo_csr(&self, uid: InstanceUid) {
        let request = self
            .shared
            .last_csr
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let Some(request) = request.filter(|r| r.instance_uid.is_some()) else {
            return;
        };
        if !self.shared.manager().has_pending_csr() {
            return;
        }
        let request = request.with_instance_uid(uid);
        let shared = std::sync::Arc::clone(&self.shared);
        let generated = tokio::task::spawn_blocking(move || {
            let proto = shared.manager().begin_csr(&request);
            (proto, request)
        })
        .await;
        match generated {
            Ok((Ok(proto), request)) => {
                *self
                    .shared
                    .last_csr
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(request);
                if let Err(err) = self.shared.state().request_connection_settings(proto) {
                    tracing::warn!(%err, "cannot send the new CSR");
                }
                self.persist_connection_settings().await;
            }
            Ok((Err(err), _)) => tracing::error!(%err, "cannot regenerate the CSR"),
            Err(err) => tracing::error!(%err, "CSR generation panicked"),
        }
    }
}
