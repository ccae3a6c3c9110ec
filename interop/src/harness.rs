//! Scaffolding the interoperability tests share: starting a third-party client against a
//! [`RecordingServer`], reading the instance UIDs and hashes the peers print as hex, the
//! capabilities of a config-managed agent, and measuring memory growth.

use std::time::Duration;

use opamp_proto::{AgentCapabilities, AgentRemoteConfig, InstanceUid};
use opamp_server::ServerSettings;
use serde_json::Value;

use crate::conformance::rss_bytes;
use crate::{Error, PeerProcess, Peers, RecordingServer};

/// Lowercase hex of `bytes`, as the peers print hashes and instance UIDs.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The instance UID in the `instance_uid` hex field of a peer's event, if it holds one.
pub fn instance_uid_of(event: &Value) -> Option<InstanceUid> {
    let hex = event["instance_uid"].as_str()?;
    if !hex.is_ascii() || hex.len() % 2 != 0 {
        return None;
    }
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    InstanceUid::try_from(bytes.as_slice()).ok()
}

/// The capabilities of an agent that takes remote configs and reports its status, the
/// config's status and heartbeats.
pub fn config_agent_capabilities() -> AgentCapabilities {
    AgentCapabilities::REPORTS_STATUS
        | AgentCapabilities::ACCEPTS_REMOTE_CONFIG
        | AgentCapabilities::REPORTS_REMOTE_CONFIG
        | AgentCapabilities::REPORTS_HEARTBEAT
}

/// A third-party client driver of [`Peers`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientPeer {
    /// The Python `opentelemetry-opamp-client` ([`Peers::python_client`]).
    Python,
    /// `@elastic/opamp-client-node` ([`Peers::node_client`]).
    Node,
}

/// A third-party client running against a [`RecordingServer`].
#[derive(Debug)]
pub struct ClientSession {
    /// Our server, with 1 s heartbeats, offering the first config.
    pub server: RecordingServer,
    /// The client's driver process.
    pub peer: PeerProcess,
    /// The instance UID the client reported in its `started` event.
    pub uid: InstanceUid,
}

/// Starts our server offering `first` (1 s heartbeats), then `client` against its plain-HTTP
/// URL with 1 s heartbeats for at most 90 s as service `service`, and waits up to `limit` for
/// the client's `started` event.
pub async fn start_client_session(
    peers: &Peers,
    client: ClientPeer,
    service: &str,
    first: AgentRemoteConfig,
    limit: Duration,
) -> Result<ClientSession, Error> {
    let server = RecordingServer::start(
        ServerSettings::default().with_heartbeat_interval(Some(Duration::from_secs(1))),
        Some(first),
    )
    .await?;
    let args = ["--heartbeat", "1", "--duration", "90", "--service", service];
    let url = server.http_url();
    let mut peer = match client {
        ClientPeer::Python => peers.python_client(&url, &args)?,
        ClientPeer::Node => peers.node_client(&url, &args)?,
    };
    let started = peer.wait_for_event("started", limit).await?;
    let uid = instance_uid_of(&started).ok_or_else(|| {
        Error::Violation(format!(
            "{}: no valid instance_uid in {started}",
            peer.name()
        ))
    })?;
    Ok(ClientSession { server, peer, uid })
}

/// The resident set size of this process now, for [`rss_growth_since`] (0 where unknown).
pub fn own_rss() -> u64 {
    rss_bytes(std::process::id()).unwrap_or(0)
}

/// How much this process's resident set grew since `before` (from [`own_rss`]).
pub fn rss_growth_since(before: u64) -> u64 {
    own_rss().saturating_sub(before)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_uids_read_back_from_hex() {
        let uid = InstanceUid::new_v7();
        let event = serde_json::json!({ "instance_uid": hex(&uid.to_bytes()) });
        assert_eq!(instance_uid_of(&event), Some(uid));
        for bad in ["", "abc", "zz", "00112233"] {
            assert_eq!(
                instance_uid_of(&serde_json::json!({ "instance_uid": bad })),
                None
            );
        }
        assert_eq!(instance_uid_of(&serde_json::json!({})), None);
    }
}
