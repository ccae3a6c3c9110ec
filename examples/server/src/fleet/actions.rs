//! Operator actions on one agent: push or remove its own configuration, restart, request full
//! state, connection settings offers, custom messages, retry a failed configuration, forget.

use std::collections::BTreeMap;

use opamp_proto::{
    AgentCapabilities, ConnectionSettingsOffers, CustomMessage, Header, Headers, Message,
    OpAmpConnectionSettings, TelemetryConnectionSettings, TlsCertificate,
};
use opamp_server::Connection;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{Dirty, Fleet, State};
use crate::audit::AuditEntry;
use crate::configs::{ConfigFiles, OfferedConfig, hex, validate_files};
use crate::error::FleetError;
use crate::now_ms;

/// Most headers in one connection settings offer.
pub const MAX_HEADERS: usize = 32;
/// Longest custom message payload sent.
pub const MAX_CUSTOM_DATA: usize = 64 * 1024;
/// Longest heartbeat interval offered (one day).
pub const MAX_HEARTBEAT_SECONDS: u64 = 86_400;

/// Settings to offer an agent (spec §"Connection Settings Management"). Omitted parts are
/// not offered.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionSettingsRequest {
    /// OpAMP connection settings (needs `AcceptsOpAMPConnectionSettings`).
    #[serde(default)]
    pub opamp: Option<OpampSettingsRequest>,
    /// Where to send its own metrics (needs `ReportsOwnMetrics`).
    #[serde(default)]
    pub own_metrics: Option<TelemetryRequest>,
    /// Where to send its own traces (needs `ReportsOwnTraces`).
    #[serde(default)]
    pub own_traces: Option<TelemetryRequest>,
    /// Where to send its own logs (needs `ReportsOwnLogs`).
    #[serde(default)]
    pub own_logs: Option<TelemetryRequest>,
}

/// OpAMP connection settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpampSettingsRequest {
    /// New server endpoint (`ws://`, `wss://`, `http://` or `https://`); default: this
    /// server's public URL.
    #[serde(default)]
    pub destination_endpoint: Option<String>,
    /// Heartbeat interval in seconds (0 disables heartbeats).
    #[serde(default)]
    pub heartbeat_interval_seconds: Option<u64>,
    /// Headers to send with every request.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Issue a new client certificate (signed by the mutual-TLS client CA) and offer it.
    #[serde(default)]
    pub rotate_client_certificate: bool,
}

/// An own-telemetry destination.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryRequest {
    /// Full OTLP/HTTP URL, e.g. `https://collector:4318/v1/metrics`.
    pub destination_endpoint: String,
    /// Headers to send.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// A custom message to send (spec §"Custom Messages").
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomMessageRequest {
    /// Capability, e.g. `io.opentelemetry.custom.health`; the agent must have advertised it.
    pub capability: String,
    /// Message type.
    #[serde(rename = "type")]
    pub message_type: String,
    /// Payload (text).
    #[serde(default)]
    pub data: String,
}

fn check_url(url: &str, schemes: &[&str], what: &str) -> Result<(), FleetError> {
    let uri: http::Uri = url
        .parse()
        .map_err(|_| FleetError::InvalidRequest(format!("{what}: {url:?} is not a URL")))?;
    let scheme_ok = uri.scheme_str().is_some_and(|s| schemes.contains(&s));
    if !scheme_ok || uri.authority().is_none() {
        return Err(FleetError::InvalidRequest(format!(
            "{what}: {url:?} must be an absolute {} URL",
            schemes.join("/")
        )));
    }
    Ok(())
}

fn headers(map: &BTreeMap<String, String>) -> Result<Option<Headers>, FleetError> {
    if map.len() > MAX_HEADERS {
        return Err(FleetError::InvalidRequest(format!(
            "at most {MAX_HEADERS} headers"
        )));
    }
    for (k, v) in map {
        http::HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| FleetError::InvalidRequest(format!("invalid header name {k:?}")))?;
        http::HeaderValue::from_str(v)
            .map_err(|_| FleetError::InvalidRequest(format!("invalid value of header {k:?}")))?;
    }
    Ok((!map.is_empty()).then(|| Headers {
        headers: map
            .iter()
            .map(|(k, v)| Header {
                key: k.clone(),
                value: v.clone(),
            })
            .collect(),
    }))
}

fn telemetry(t: &TelemetryRequest, what: &str) -> Result<TelemetryConnectionSettings, FleetError> {
    check_url(&t.destination_endpoint, &["http", "https"], what)?;
    Ok(TelemetryConnectionSettings {
        destination_endpoint: t.destination_endpoint.clone(),
        headers: headers(&t.headers)?,
        ..Default::default()
    })
}

impl State {
    fn live(&self, uid: &str) -> Result<Connection, FleetError> {
        if !self.agents.contains_key(uid) {
            return Err(FleetError::UnknownAgent(uid.to_owned()));
        }
        self.conns
            .get(uid)
            .map(|l| l.conn.clone())
            .ok_or_else(|| FleetError::NotConnected(uid.to_owned()))
    }

    fn require(
        &self,
        uid: &str,
        cap: AgentCapabilities,
        name: &'static str,
    ) -> Result<(), FleetError> {
        let a = self
            .agents
            .get(uid)
            .ok_or_else(|| FleetError::UnknownAgent(uid.to_owned()))?;
        if a.caps().contains(cap) {
            Ok(())
        } else {
            Err(FleetError::NotSupported {
                agent: uid.to_owned(),
                capability: name,
            })
        }
    }
}

impl Fleet {
    /// Pushes `files` to one agent (it wins over named configurations). The files are
    /// validated first; nothing is stored or sent when they are not valid.
    pub async fn set_agent_config(
        &self,
        uid: &str,
        files: ConfigFiles,
        actor: &str,
    ) -> Result<OfferedConfig, FleetError> {
        validate_files(&files)?;
        let now = now_ms();
        let state = &mut *self.lock().await;
        state.require(
            uid,
            AgentCapabilities::ACCEPTS_REMOTE_CONFIG,
            "AcceptsRemoteConfig",
        )?;
        let offer = OfferedConfig::new("agent", files);
        let agent = state
            .agents
            .get_mut(uid)
            .ok_or_else(|| FleetError::UnknownAgent(uid.to_owned()))?;
        let old_hash = agent.offered.as_ref().map(|o| o.hash.clone());
        // An operator pushing a configuration again means "try it again".
        agent.failed_hashes.remove(&offer.hash);
        agent.override_config = Some(offer.clone());
        let mut dirty = Dirty::default();
        dirty.agents.insert(uid.to_owned());
        dirty.merge(state.reconcile_agent(uid, None, now, &self.metrics));
        self.persist(state, &dirty).await?;
        self.audit(
            AuditEntry::new(now, actor, "agent.config.set", uid)
                .with_hashes(old_hash, Some(offer.hash.clone()))
                .with_details(format!("{} file(s)", offer.files.len())),
        )
        .await?;
        Ok(offer)
    }

    /// Removes the agent's own configuration; it goes back to its named configuration.
    pub async fn clear_agent_config(&self, uid: &str, actor: &str) -> Result<(), FleetError> {
        let now = now_ms();
        let state = &mut *self.lock().await;
        let agent = state
            .agents
            .get_mut(uid)
            .ok_or_else(|| FleetError::UnknownAgent(uid.to_owned()))?;
        let Some(old) = agent.override_config.take() else {
            return Err(FleetError::InvalidRequest(
                "the agent has no configuration of its own".into(),
            ));
        };
        let mut dirty = Dirty::default();
        dirty.agents.insert(uid.to_owned());
        dirty.merge(state.reconcile_agent(uid, None, now, &self.metrics));
        self.persist(state, &dirty).await?;
        let new_hash = state
            .agents
            .get(uid)
            .and_then(|a| state.desired_config(a))
            .map(|d| d.hash);
        self.audit(
            AuditEntry::new(now, actor, "agent.config.clear", uid)
                .with_hashes(Some(old.hash), new_hash),
        )
        .await
    }

    /// Forgets the hashes the agent reported `FAILED`, so they may be offered again.
    pub async fn retry_agent_config(&self, uid: &str, actor: &str) -> Result<(), FleetError> {
        let now = now_ms();
        let state = &mut *self.lock().await;
        let agent = state
            .agents
            .get_mut(uid)
            .ok_or_else(|| FleetError::UnknownAgent(uid.to_owned()))?;
        let cleared = std::mem::take(&mut agent.failed_hashes);
        if let Some(live) = state.conns.get_mut(uid) {
            live.offered_hash = None; // offer again even if the hash is unchanged
        }
        let mut dirty = Dirty::default();
        dirty.agents.insert(uid.to_owned());
        dirty.merge(state.reconcile_agent(uid, None, now, &self.metrics));
        self.persist(state, &dirty).await?;
        self.audit(
            AuditEntry::new(now, actor, "agent.config.retry", uid)
                .with_details(format!("{} failed hash(es) cleared", cleared.len())),
        )
        .await
    }

    /// Asks the agent to restart (needs `AcceptsRestartCommand`).
    pub async fn restart_agent(&self, uid: &str, actor: &str) -> Result<(), FleetError> {
        let conn = {
            let state = self.lock().await;
            let conn = state.live(uid)?;
            state.require(
                uid,
                AgentCapabilities::ACCEPTS_RESTART_COMMAND,
                "AcceptsRestartCommand",
            )?;
            conn
        };
        conn.restart()?;
        self.metrics.inc_commands();
        self.audit(AuditEntry::new(now_ms(), actor, "agent.restart", uid))
            .await
    }

    /// Asks the agent to report its full state.
    pub async fn request_full_state(&self, uid: &str, actor: &str) -> Result<(), FleetError> {
        let conn = self.lock().await.live(uid)?;
        conn.request_full_state()?;
        self.audit(AuditEntry::new(now_ms(), actor, "agent.full_state", uid))
            .await
    }

    /// Sends a custom message (the agent must have advertised the capability).
    pub async fn send_custom_message(
        &self,
        uid: &str,
        req: CustomMessageRequest,
        actor: &str,
    ) -> Result<(), FleetError> {
        if req.capability.is_empty() || req.message_type.is_empty() {
            return Err(FleetError::InvalidRequest(
                "capability and type are required".into(),
            ));
        }
        if req.data.len() > MAX_CUSTOM_DATA {
            return Err(FleetError::InvalidRequest(format!(
                "data is larger than {MAX_CUSTOM_DATA} bytes"
            )));
        }
        let conn = {
            let state = self.lock().await;
            let conn = state.live(uid)?;
            let advertised = state
                .agents
                .get(uid)
                .is_some_and(|a| a.custom_capabilities.contains(&req.capability));
            if !advertised {
                return Err(FleetError::NotSupported {
                    agent: uid.to_owned(),
                    capability: "the custom capability",
                });
            }
            conn
        };
        conn.send_custom_message(CustomMessage {
            capability: req.capability.clone(),
            r#type: req.message_type.clone(),
            data: req.data.into_bytes().into(),
        })?;
        self.audit(
            AuditEntry::new(now_ms(), actor, "agent.custom_message", uid)
                .with_details(format!("{} / {}", req.capability, req.message_type)),
        )
        .await
    }

    /// Offers connection settings: OpAMP (endpoint, heartbeat, headers, a new client
    /// certificate) and own-telemetry destinations. Each part needs its capability.
    pub async fn offer_connection_settings(
        &self,
        uid: &str,
        req: ConnectionSettingsRequest,
        actor: &str,
    ) -> Result<String, FleetError> {
        if req.opamp.is_none()
            && req.own_metrics.is_none()
            && req.own_traces.is_none()
            && req.own_logs.is_none()
        {
            return Err(FleetError::InvalidRequest("nothing to offer".into()));
        }
        let (conn, transport) = {
            let state = self.lock().await;
            let conn = state.live(uid)?;
            if req.opamp.is_some() {
                state.require(
                    uid,
                    AgentCapabilities::ACCEPTS_OPAMP_CONNECTION_SETTINGS,
                    "AcceptsOpAMPConnectionSettings",
                )?;
            }
            if req.own_metrics.is_some() {
                state.require(
                    uid,
                    AgentCapabilities::REPORTS_OWN_METRICS,
                    "ReportsOwnMetrics",
                )?;
            }
            if req.own_traces.is_some() {
                state.require(
                    uid,
                    AgentCapabilities::REPORTS_OWN_TRACES,
                    "ReportsOwnTraces",
                )?;
            }
            if req.own_logs.is_some() {
                state.require(uid, AgentCapabilities::REPORTS_OWN_LOGS, "ReportsOwnLogs")?;
            }
            let transport = conn.transport();
            (conn, transport)
        };
        let mut details = Vec::new();
        let mut offers = ConnectionSettingsOffers::default();
        if let Some(o) = &req.opamp {
            let scheme = match super::agents::transport_name(transport) {
                "http" => "http",
                _ => "ws",
            };
            let endpoint = match &o.destination_endpoint {
                Some(e) => e.clone(),
                None => self.public_opamp_url().replace("{scheme}", scheme),
            };
            check_url(
                &endpoint,
                &["ws", "wss", "http", "https"],
                "destination_endpoint",
            )?;
            if o.heartbeat_interval_seconds
                .is_some_and(|s| s > MAX_HEARTBEAT_SECONDS)
            {
                return Err(FleetError::InvalidRequest(format!(
                    "heartbeat_interval_seconds must be at most {MAX_HEARTBEAT_SECONDS}"
                )));
            }
            let certificate = if o.rotate_client_certificate {
                let issuer = self.issuer.as_ref().ok_or_else(|| {
                    FleetError::InvalidRequest(
                        "client certificate rotation needs --client-ca-cert and --client-ca-key"
                            .into(),
                    )
                })?;
                let issued = issuer.issue(uid)?;
                details.push(format!("client certificate {}", issued.fingerprint));
                Some(TlsCertificate {
                    cert: issued.cert_pem.into_bytes().into(),
                    private_key: issued.key_pem.into_bytes().into(),
                    ca_cert: issued.ca_pem.into_bytes().into(),
                })
            } else {
                None
            };
            details.push(format!("opamp endpoint {endpoint}"));
            if let Some(h) = o.heartbeat_interval_seconds {
                details.push(format!("heartbeat {h}s"));
            }
            offers.opamp = Some(OpAmpConnectionSettings {
                destination_endpoint: endpoint,
                headers: headers(&o.headers)?,
                certificate,
                heartbeat_interval_seconds: o.heartbeat_interval_seconds.unwrap_or(0),
                ..Default::default()
            });
        }
        if let Some(t) = &req.own_metrics {
            offers.own_metrics = Some(telemetry(t, "own_metrics")?);
            details.push(format!("own metrics {}", t.destination_endpoint));
        }
        if let Some(t) = &req.own_traces {
            offers.own_traces = Some(telemetry(t, "own_traces")?);
            details.push(format!("own traces {}", t.destination_endpoint));
        }
        if let Some(t) = &req.own_logs {
            offers.own_logs = Some(telemetry(t, "own_logs")?);
            details.push(format!("own logs {}", t.destination_endpoint));
        }
        // The hash covers every offered setting (spec §"ConnectionSettingsOffers").
        let hash = Sha256::digest(offers.encode_to_vec());
        offers.hash = hash.to_vec().into();
        conn.offer_connection_settings(offers)?;
        self.metrics.inc_connection_offers();
        let hash = hex(&hash);
        self.audit(
            AuditEntry::new(now_ms(), actor, "agent.connection_settings", uid)
                .with_details(details.join("; ")),
        )
        .await?;
        Ok(hash)
    }

    /// Forgets an agent that is not connected.
    pub async fn forget_agent(&self, uid: &str, actor: &str) -> Result<(), FleetError> {
        let now = now_ms();
        let state = &mut *self.lock().await;
        if !state.agents.contains_key(uid) {
            return Err(FleetError::UnknownAgent(uid.to_owned()));
        }
        if state.conns.contains_key(uid) {
            return Err(FleetError::InvalidRequest("the agent is connected".into()));
        }
        state.agents.remove(uid);
        state.seen_dirty.remove(uid);
        let mut dirty = Dirty::default();
        for (name, r) in &mut state.rollouts {
            if r.remove_target(uid, now) {
                dirty.rollouts.insert(name.clone());
            }
        }
        self.store.delete_agent(uid).await?;
        self.persist(state, &dirty).await?;
        self.emit("agent", uid);
        self.audit(AuditEntry::new(now, actor, "agent.forget", uid))
            .await
    }
}
