//! The OpAMP connection settings offer flow as a sans-IO state machine.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ConnectionSettingsError;
use super::csr::{self, CsrRequest};
use super::params::{MergeOptions, OpampConnectionParams};
use crate::proto::{
    AgentCapabilities, Bytes, ConnectionSettingsOffers, ConnectionSettingsRequest,
    ConnectionSettingsStatus, ConnectionSettingsStatuses,
};

/// Default number of connection attempts with a candidate before it is reverted.
pub const DEFAULT_MAX_CANDIDATE_ATTEMPTS: u32 = 3;

/// Carries out the server-initiated OpAMP connection settings flow (spec §"OpAMP Connection
/// Setting Offer Flow", steps 3 to 9) and keeps the key of an agent-initiated CSR
/// (§"Agent-initiated CSR Flow").
///
/// It does no IO and reads no clock: the driver feeds it offers and connection outcomes and
/// acts on what it answers.
///
/// * [`handle_offer`](Self::handle_offer) turns an offer into a *candidate*: the driver then
///   persists [`snapshot`](Self::snapshot), sends `agent_disconnect`, closes the connection
///   and reconnects with [`connect_params`](Self::connect_params) (the candidate).
/// * [`on_connected`](Self::on_connected) (call it when the server has accepted the new
///   connection: WebSocket upgrade done or first HTTP response, and the first
///   `ServerToAgent` without an error) makes the candidate the active settings and answers
///   `APPLIED`.
/// * [`on_connect_failed`](Self::on_connect_failed) retries the candidate up to
///   [`with_max_candidate_attempts`](Self::with_max_candidate_attempts) times, then reverts
///   to the previous settings and answers `FAILED`.
///
/// Offers whose hash equals the last processed one are ignored; invalid offers are refused
/// with `FAILED` without disconnecting; offers that change only the heartbeat interval (or
/// nothing at all) apply at once, without reconnecting.
///
/// ```
/// use opamp_client::connection_settings::{
///     CandidateOutcome, ConnectionSettingsManager, OfferDecision, OpampConnectionParams,
/// };
/// use opamp_client::proto::{
///     AgentCapabilities, Bytes, ConnectionSettingsOffers, ConnectionSettingsStatuses, Header,
///     Headers, OpAmpConnectionSettings,
/// };
///
/// let mut manager = ConnectionSettingsManager::new(
///     OpampConnectionParams::new("wss://opamp.example.com/v1/opamp").with_header("X-API-Key", "old"),
/// );
/// let offer = ConnectionSettingsOffers {
///     hash: Bytes::from_static(b"h1"),
///     opamp: Some(OpAmpConnectionSettings {
///         headers: Some(Headers {
///             headers: vec![Header { key: "X-API-Key".into(), value: "new".into() }],
///         }),
///         ..Default::default()
///     }),
///     ..Default::default()
/// };
/// let caps = AgentCapabilities::REPORTS_STATUS | AgentCapabilities::ACCEPTS_OPAMP_CONNECTION_SETTINGS;
/// let OfferDecision::Reconnect { params, status } = manager.handle_offer(&offer, caps) else {
///     panic!("expected a reconnect");
/// };
/// assert_eq!(status.status(), ConnectionSettingsStatuses::Applying);
/// assert_eq!(params.headers, [("X-API-Key".to_string(), "new".to_string())]);
/// // ... the driver reconnects with `manager.connect_params()` and the server accepts ...
/// let Some(CandidateOutcome::Applied { status, .. }) = manager.on_connected() else {
///     panic!("expected APPLIED");
/// };
/// assert_eq!(status.status(), ConnectionSettingsStatuses::Applied);
/// assert_eq!(manager.active().headers[0].1, "new");
/// ```
#[derive(Debug, Clone)]
pub struct ConnectionSettingsManager {
    state: ConnectionSettingsSnapshot,
    options: MergeOptions,
    max_candidate_attempts: u32,
    changed: bool,
}

/// What the driver must do after [`ConnectionSettingsManager::handle_offer`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum OfferDecision {
    /// The offer's hash equals the last processed one: nothing to do, not even for the
    /// other parts of the offer (own telemetry, other connections).
    Duplicate,
    /// The offer has no `opamp` part, or the agent lacks the capability to accept it (and
    /// it carried no heartbeat interval to apply). Other parts are the caller's to handle.
    NoOpampOffer,
    /// The offer is invalid and was refused; the active settings stay. A candidate from an
    /// earlier offer, if one was pending, is dropped too (the server has moved on from it):
    /// connect with [`ConnectionSettingsManager::connect_params`]. Report `status`.
    Rejected {
        /// `FAILED`, with the reason in `error_message`.
        status: ConnectionSettingsStatus,
        /// Why.
        error: String,
    },
    /// The offer took effect at once, without reconnecting (only the heartbeat interval
    /// changed, or nothing did). Persist the snapshot and report `status` if any.
    Applied {
        /// The heartbeat interval now in effect when the offer changed it.
        heartbeat_interval: Option<Duration>,
        /// `APPLIED`; `None` when the agent only took the heartbeat interval from an offer it
        /// does not otherwise accept.
        status: Option<ConnectionSettingsStatus>,
    },
    /// The offer is a new candidate. Persist the snapshot, report `status` (`APPLYING`),
    /// send `agent_disconnect`, close the connection and reconnect with `params`.
    Reconnect {
        /// The candidate parameters (also [`ConnectionSettingsManager::connect_params`]).
        params: Box<OpampConnectionParams>,
        /// `APPLYING`.
        status: ConnectionSettingsStatus,
    },
}

/// What happened to a candidate after a connection attempt with it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum CandidateOutcome {
    /// The server accepted the connection: the candidate is now the active settings.
    /// Persist the snapshot (the old credentials are gone) and report `status`.
    Applied {
        /// The new active parameters.
        params: OpampConnectionParams,
        /// `APPLIED`.
        status: ConnectionSettingsStatus,
    },
    /// The attempt failed but the candidate has attempts left: reconnect with it again
    /// (after the usual backoff).
    Retry {
        /// The candidate parameters.
        params: OpampConnectionParams,
        /// Attempts made so far.
        attempts: u32,
    },
    /// The candidate failed for good and was dropped: reconnect with the previous settings,
    /// persist the snapshot and report `status`.
    Reverted {
        /// The previous (still active) parameters.
        params: OpampConnectionParams,
        /// `FAILED`, with the last connection error.
        status: ConnectionSettingsStatus,
    },
}

/// Everything [`ConnectionSettingsManager`] needs to survive a restart: the active settings,
/// a candidate under validation (the spec's step 3: after a crash, validation starts again),
/// the last processed offer hash, the last status and the key of a pending CSR.
///
/// Serializable so that a persistence hook can store it. It contains secrets (headers,
/// private keys): store it with file permissions to match. `Debug` redacts them.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ConnectionSettingsSnapshot {
    /// The settings known to work.
    pub active: OpampConnectionParams,
    /// A candidate being validated, with the hash of its offer.
    pub candidate: Option<Candidate>,
    /// Hash of the last processed `ConnectionSettingsOffers`.
    pub last_offer_hash: Vec<u8>,
    /// The last status: hash, status (`ConnectionSettingsStatuses` value) and error message.
    pub status: Option<StoredStatus>,
    /// The private key (PKCS#8 PEM) of a CSR whose certificate has not arrived yet.
    pub csr_private_key_pem: Option<String>,
}

impl ConnectionSettingsSnapshot {
    /// A snapshot with `active` settings and nothing else.
    pub fn new(active: OpampConnectionParams) -> Self {
        Self {
            active,
            candidate: None,
            last_offer_hash: Vec::new(),
            status: None,
            csr_private_key_pem: None,
        }
    }
}

impl fmt::Debug for ConnectionSettingsSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionSettingsSnapshot")
            .field("active", &self.active)
            .field("candidate", &self.candidate)
            .field("last_offer_hash", &Hex(&self.last_offer_hash))
            .field("status", &self.status)
            .field(
                "csr_private_key_pem",
                &self.csr_private_key_pem.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// A candidate under validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Candidate {
    /// The candidate parameters.
    pub params: OpampConnectionParams,
    /// The hash of the offer it came from.
    pub offer_hash: Vec<u8>,
    /// Failed connection attempts with it so far.
    pub attempts: u32,
}

/// A [`ConnectionSettingsStatus`] in a serializable form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StoredStatus {
    /// `last_connection_settings_hash`.
    pub hash: Vec<u8>,
    /// `status`, a `ConnectionSettingsStatuses` value.
    pub status: i32,
    /// `error_message`.
    pub error_message: String,
}

impl From<&StoredStatus> for ConnectionSettingsStatus {
    fn from(s: &StoredStatus) -> Self {
        ConnectionSettingsStatus {
            last_connection_settings_hash: Bytes::from(s.hash.clone()),
            status: s.status,
            error_message: s.error_message.clone(),
        }
    }
}

impl ConnectionSettingsManager {
    /// A manager whose active settings are `initial` (from the client's settings).
    pub fn new(initial: OpampConnectionParams) -> Self {
        Self::from_snapshot(ConnectionSettingsSnapshot::new(initial))
    }

    /// A manager restored from a persisted snapshot. A persisted candidate is validated
    /// again: [`connect_params`](Self::connect_params) returns it.
    pub fn from_snapshot(snapshot: ConnectionSettingsSnapshot) -> Self {
        Self {
            state: snapshot,
            options: MergeOptions::default(),
            max_candidate_attempts: DEFAULT_MAX_CANDIDATE_ATTEMPTS,
            changed: false,
        }
    }

    /// Sets how offers are merged and which are refused.
    #[must_use]
    pub fn with_merge_options(mut self, options: MergeOptions) -> Self {
        self.options = options;
        self
    }

    /// Sets how many failed connection attempts a candidate gets before it is reverted
    /// (at least 1; default [`DEFAULT_MAX_CANDIDATE_ATTEMPTS`]).
    #[must_use]
    pub fn with_max_candidate_attempts(mut self, attempts: u32) -> Self {
        self.max_candidate_attempts = attempts.max(1);
        self
    }

    /// The settings known to work.
    pub fn active(&self) -> &OpampConnectionParams {
        &self.state.active
    }

    /// The candidate being validated, if any.
    pub fn candidate(&self) -> Option<&OpampConnectionParams> {
        self.state.candidate.as_ref().map(|c| &c.params)
    }

    /// The parameters for the next connection attempt: the candidate if there is one, else
    /// the active settings.
    pub fn connect_params(&self) -> &OpampConnectionParams {
        self.candidate().unwrap_or(&self.state.active)
    }

    /// The heartbeat interval in effect (`None`: the client's configured one).
    pub fn heartbeat_interval(&self) -> Option<Duration> {
        self.connect_params().heartbeat_interval
    }

    /// The last status to report in `AgentToServer.connection_settings_status`.
    pub fn status(&self) -> Option<ConnectionSettingsStatus> {
        self.state
            .status
            .as_ref()
            .map(ConnectionSettingsStatus::from)
    }

    /// The hash of the last processed offer (empty if none).
    pub fn last_offer_hash(&self) -> &[u8] {
        &self.state.last_offer_hash
    }

    /// Whether a CSR was sent and its certificate has not been applied yet.
    pub fn has_pending_csr(&self) -> bool {
        self.state.csr_private_key_pem.is_some()
    }

    /// The state to persist.
    pub fn snapshot(&self) -> &ConnectionSettingsSnapshot {
        &self.state
    }

    /// The state to persist, if it changed since the last call.
    pub fn take_changed_snapshot(&mut self) -> Option<ConnectionSettingsSnapshot> {
        std::mem::take(&mut self.changed).then(|| self.state.clone())
    }

    /// Processes a `ConnectionSettingsOffers` received from the server. `capabilities` are
    /// the agent's current capabilities: the `opamp` part is only taken with
    /// `AcceptsOpAMPConnectionSettings`, its heartbeat interval only with `ReportsHeartbeat`.
    pub fn handle_offer(
        &mut self,
        offers: &ConnectionSettingsOffers,
        capabilities: AgentCapabilities,
    ) -> OfferDecision {
        let hash = offers.hash.to_vec();
        if !hash.is_empty() && hash == self.state.last_offer_hash {
            tracing::debug!("connection settings offer unchanged (same hash); ignored");
            return OfferDecision::Duplicate;
        }
        if self.state.last_offer_hash != hash {
            self.state.last_offer_hash.clone_from(&hash);
            self.changed = true;
        }
        let Some(opamp) = &offers.opamp else {
            return OfferDecision::NoOpampOffer;
        };
        let takes_heartbeat = capabilities.contains(AgentCapabilities::REPORTS_HEARTBEAT);
        if !capabilities.contains(AgentCapabilities::ACCEPTS_OPAMP_CONNECTION_SETTINGS) {
            if takes_heartbeat {
                // Zero too: it disables heartbeats (spec
                // §"OpAMPConnectionSettings.heartbeat_interval_seconds").
                let interval = Duration::from_secs(opamp.heartbeat_interval_seconds);
                self.set_heartbeat(interval);
                return OfferDecision::Applied {
                    heartbeat_interval: Some(interval),
                    status: None,
                };
            }
            tracing::debug!(
                "OpAMP connection settings offered, but AcceptsOpAMPConnectionSettings is not set; ignored"
            );
            return OfferDecision::NoOpampOffer;
        }

        let merged = self.state.active.merged_with(
            opamp,
            &self.options,
            self.state.csr_private_key_pem.as_deref(),
        );
        let mut merged = match merged {
            Ok(merged) => merged,
            Err(error) => {
                let error = error.to_string();
                tracing::warn!(%error, "OpAMP connection settings offer refused");
                if self.state.candidate.take().is_some() {
                    tracing::info!("the pending candidate is dropped: a newer offer superseded it");
                }
                let status = self.set_status(&hash, ConnectionSettingsStatuses::Failed, &error);
                return OfferDecision::Rejected { status, error };
            }
        };
        if !takes_heartbeat {
            merged.heartbeat_interval = self.state.active.heartbeat_interval;
        }
        if merged.same_connection(&self.state.active) {
            let heartbeat_changed =
                merged.heartbeat_interval != self.state.active.heartbeat_interval;
            if self.state.candidate.take().is_some() {
                tracing::info!(
                    "a newer offer keeps the current connection; pending candidate dropped"
                );
            }
            self.state.active = merged;
            self.changed = true;
            let status = self.set_status(&hash, ConnectionSettingsStatuses::Applied, "");
            tracing::info!(
                heartbeat_changed,
                "OpAMP connection settings applied without reconnecting"
            );
            return OfferDecision::Applied {
                heartbeat_interval: heartbeat_changed
                    .then_some(self.state.active.heartbeat_interval)
                    .flatten(),
                status: Some(status),
            };
        }
        tracing::info!(endpoint = %merged.endpoint, "new OpAMP connection settings candidate; reconnecting to validate it");
        self.state.candidate = Some(Candidate {
            params: merged.clone(),
            offer_hash: hash.clone(),
            attempts: 0,
        });
        self.changed = true;
        let status = self.set_status(&hash, ConnectionSettingsStatuses::Applying, "");
        OfferDecision::Reconnect {
            params: Box::new(merged),
            status,
        }
    }

    /// Call when a connection made with [`connect_params`](Self::connect_params) has been
    /// accepted by the server. Returns `Applied` when that connection validated a candidate.
    ///
    /// Call it before handling the contents of the `ServerToAgent` that proved the
    /// connection, so that an offer in that message is merged onto the new settings.
    pub fn on_connected(&mut self) -> Option<CandidateOutcome> {
        let candidate = self.state.candidate.take()?;
        let uses_csr_key = match (
            &candidate.params.client_certificate,
            &self.state.csr_private_key_pem,
        ) {
            (Some(cert), Some(key)) => &cert.private_key_pem == key,
            _ => false,
        };
        if uses_csr_key {
            // The key now lives in the active settings.
            self.state.csr_private_key_pem = None;
        }
        self.state.active = candidate.params;
        self.changed = true;
        let status = self.set_status(
            &candidate.offer_hash,
            ConnectionSettingsStatuses::Applied,
            "",
        );
        tracing::info!(endpoint = %self.state.active.endpoint, "OpAMP connection settings candidate validated and applied");
        Some(CandidateOutcome::Applied {
            params: self.state.active.clone(),
            status,
        })
    }

    /// Call when a connection attempt with [`connect_params`](Self::connect_params) failed
    /// (the server could not be reached, TLS failed, or the server refused the
    /// credentials). Returns `None` when no candidate was being validated.
    pub fn on_connect_failed(&mut self, error: &dyn fmt::Display) -> Option<CandidateOutcome> {
        let candidate = self.state.candidate.as_mut()?;
        candidate.attempts += 1;
        self.changed = true;
        if candidate.attempts < self.max_candidate_attempts {
            tracing::warn!(attempts = candidate.attempts, %error, "connection with the candidate settings failed; retrying");
            return Some(CandidateOutcome::Retry {
                params: candidate.params.clone(),
                attempts: candidate.attempts,
            });
        }
        let candidate = self.state.candidate.take()?;
        let message = format!("connecting with the offered settings failed: {error}");
        tracing::warn!(%message, "reverting to the previous OpAMP connection settings");
        let status = self.set_status(
            &candidate.offer_hash,
            ConnectionSettingsStatuses::Failed,
            &message,
        );
        Some(CandidateOutcome::Reverted {
            params: self.state.active.clone(),
            status,
        })
    }

    /// Starts the agent-initiated CSR flow: generates a key pair and a CSR, keeps the key for
    /// the certificate the server will offer, and returns the request for
    /// `AgentToServer.connection_settings_request`. A later call replaces the kept key (e.g.
    /// after the instance UID changed).
    pub fn begin_csr(
        &mut self,
        request: &CsrRequest,
    ) -> Result<ConnectionSettingsRequest, ConnectionSettingsError> {
        let generated = csr::generate(request)?;
        let proto = generated.to_request();
        let (_, key) = generated.into_parts();
        self.state.csr_private_key_pem = Some(key);
        self.changed = true;
        Ok(proto)
    }

    fn set_heartbeat(&mut self, interval: Duration) {
        self.state.active.heartbeat_interval = Some(interval);
        if let Some(candidate) = &mut self.state.candidate {
            candidate.params.heartbeat_interval = Some(interval);
        }
        self.changed = true;
    }

    fn set_status(
        &mut self,
        hash: &[u8],
        status: ConnectionSettingsStatuses,
        error: &str,
    ) -> ConnectionSettingsStatus {
        let stored = StoredStatus {
            hash: hash.to_vec(),
            status: status as i32,
            error_message: error.to_owned(),
        };
        let proto = ConnectionSettingsStatus::from(&stored);
        self.state.status = Some(stored);
        self.changed = true;
        proto
    }
}

struct Hex<'a>(&'a [u8]);

impl fmt::Debug for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}
