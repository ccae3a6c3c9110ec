//! Fleet-wide sends that encode a message once.
//!
//! Every `ServerToAgent` must carry the instance UID of the agent it goes to (spec
//! §"ServerToAgent.instance_uid"), so one byte string cannot serve every agent. Protobuf,
//! however, merges concatenated encodings, and field 1 (`instance_uid`) is 18 bytes on the wire.
//! A [`PreparedMessage`] encodes everything but the UID once; each agent's frame is the
//! WebSocket header, its own UID field and the shared bytes, assembled by a plain copy at
//! write time.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use prost::Message;

use opamp_proto::{
    AgentCapabilities, AgentRemoteConfig, InstanceUid, PackagesAvailable, ServerToAgent,
};
use opamp_transport::codec::Limits;

use crate::Error;
use crate::state::AgentStatus;

/// WebSocket header (varint 0) + tag of field 1 (LEN) + length 16.
const UID_PREFIX: [u8; 3] = [0x00, 0x0A, 0x10];
/// Bytes a frame adds to the shared encoding.
const FRAME_OVERHEAD: usize = UID_PREFIX.len() + InstanceUid::LEN;

/// A `ServerToAgent` encoded once for many agents. Cheap to clone.
#[derive(Clone)]
pub struct PreparedMessage {
    inner: Arc<Inner>,
}

struct Inner {
    message: ServerToAgent,
    encoded: Bytes,
    required: AgentCapabilities,
    custom_capability: Option<String>,
    remote_config: Option<Arc<AgentRemoteConfig>>,
    packages: Option<Arc<PackagesAvailable>>,
}

impl std::fmt::Debug for PreparedMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedMessage")
            .field("encoded_len", &self.inner.encoded.len())
            .field("required", &self.inner.required)
            .finish_non_exhaustive()
    }
}

impl PreparedMessage {
    /// Encodes `message` (its `instance_uid` is ignored) for sending to many agents.
    ///
    /// Fails if the message, with an agent's UID, would be over the limit, or if it carries
    /// something that is per agent by nature (`agent_identification`) or that the server
    /// tailors per agent (`connection_settings`: use
    /// [`crate::Connection::offer_connection_settings`]).
    pub fn new(mut message: ServerToAgent, limits: &Limits) -> Result<Self, Error> {
        if message.agent_identification.is_some() {
            return Err(Error::InvalidMessage(
                "agent_identification is per agent and cannot be broadcast",
            ));
        }
        if message.connection_settings.is_some() {
            return Err(Error::InvalidMessage(
                "connection settings are offered per agent (Connection::offer_connection_settings)",
            ));
        }
        message.instance_uid = Bytes::new();
        if let Some(config) = message.remote_config.take() {
            message.remote_config = Some(crate::state::with_config_hash(config));
        }
        if let Some(packages) = message.packages_available.take() {
            message.packages_available = Some(crate::state::with_packages_hash(packages));
        }
        let len = message.encoded_len();
        limits.check((len + FRAME_OVERHEAD) as u64)?;
        let mut encoded = BytesMut::with_capacity(len);
        message
            .encode(&mut encoded)
            .map_err(|_| Error::InvalidMessage("message could not be encoded"))?;
        let mut required = AgentCapabilities::empty();
        if message.remote_config.is_some() {
            required |= AgentCapabilities::ACCEPTS_REMOTE_CONFIG;
        }
        if message.packages_available.is_some() {
            required |= AgentCapabilities::ACCEPTS_PACKAGES;
        }
        if message.command.is_some() {
            required |= AgentCapabilities::ACCEPTS_RESTART_COMMAND;
        }
        Ok(Self {
            inner: Arc::new(Inner {
                custom_capability: message
                    .custom_message
                    .as_ref()
                    .map(|m| m.capability.clone()),
                remote_config: message.remote_config.clone().map(Arc::new),
                packages: message.packages_available.clone().map(Arc::new),
                encoded: encoded.freeze(),
                required,
                message,
            }),
        })
    }

    /// The message (without instance UID).
    pub fn message(&self) -> &ServerToAgent {
        &self.inner.message
    }

    /// Length of the shared encoding.
    pub fn encoded_len(&self) -> usize {
        self.inner.encoded.len()
    }

    /// The capabilities an agent needs to take the whole message.
    pub fn required_capabilities(&self) -> AgentCapabilities {
        self.inner.required
    }

    /// True if an agent with `status` accepts every part of the message, so the shared
    /// frame can go to it unchanged.
    pub(crate) fn fits(&self, status: &AgentStatus) -> bool {
        status.capabilities.contains(self.inner.required)
            && self
                .inner
                .custom_capability
                .as_deref()
                .is_none_or(|c| status.has_custom_capability(c))
    }

    pub(crate) fn remote_config(&self) -> Option<&Arc<AgentRemoteConfig>> {
        self.inner.remote_config.as_ref()
    }

    pub(crate) fn packages(&self) -> Option<&Arc<PackagesAvailable>> {
        self.inner.packages.as_ref()
    }

    /// The WebSocket message for the agent `uid`: header, UID field, shared encoding.
    pub(crate) fn frame_for(&self, uid: &InstanceUid) -> Bytes {
        let mut frame = BytesMut::with_capacity(FRAME_OVERHEAD + self.inner.encoded.len());
        frame.put_slice(&UID_PREFIX);
        frame.put_slice(uid.as_bytes());
        frame.put_slice(&self.inner.encoded);
        frame.freeze()
    }
}

/// What a fleet-wide send did for one agent (counted into a [`BroadcastReport`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Delivery {
    /// The shared frame went to the agent's writer.
    Framed,
    /// Merged into the agent's pending message.
    Queued,
    /// Nothing was handed to the agent.
    Skipped,
}

/// How a fleet-wide send went.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BroadcastReport {
    /// WebSocket agents whose writer got the shared frame.
    pub framed: usize,
    /// Agents the message was merged into the pending message of (plain-HTTP agents get it on
    /// their next poll; WebSocket agents that cannot take the shared frame get a tailored one).
    pub queued: usize,
    /// Agents skipped (closed, not matching the filter, already up to date, or not accepting
    /// the message).
    pub skipped: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use opamp_proto::{AgentToServer, CustomMessage};

    #[test]
    fn frame_decodes_to_the_message_with_the_uid() {
        let msg = ServerToAgent {
            flags: 1,
            remote_config: Some(AgentRemoteConfig {
                config: None,
                config_hash: Bytes::from_static(b"h"),
            }),
            ..Default::default()
        };
        let prepared = PreparedMessage::new(msg.clone(), &Limits::default()).unwrap();
        let uid = InstanceUid::from_array([7; 16]);
        let frame = prepared.frame_for(&uid);
        let decoded: ServerToAgent =
            opamp_transport::codec::decode_ws_message(&frame, &Limits::default()).unwrap();
        assert_eq!(
            decoded,
            ServerToAgent {
                instance_uid: uid.to_bytes(),
                ..msg
            }
        );
        assert_eq!(frame.len(), prepared.encoded_len() + FRAME_OVERHEAD);
    }

    #[test]
    fn per_agent_content_and_oversize_are_refused() {
        let limits = Limits::default();
        assert!(
            PreparedMessage::new(
                ServerToAgent {
                    agent_identification: Some(Default::default()),
                    ..Default::default()
                },
                &limits
            )
            .is_err()
        );
        assert!(
            PreparedMessage::new(
                ServerToAgent {
                    connection_settings: Some(Default::default()),
                    ..Default::default()
                },
                &limits
            )
            .is_err()
        );
        let small = Limits::default().with_max_message_size(20);
        let big = ServerToAgent {
            custom_message: Some(CustomMessage {
                capability: "c".into(),
                r#type: "t".into(),
                data: Bytes::from(vec![0; 100]),
            }),
            ..Default::default()
        };
        assert!(
            PreparedMessage::new(big, &small)
                .unwrap_err()
                .is_too_large()
        );
    }

    #[test]
    fn fits_checks_capabilities_and_custom_capability() {
        let prepared = PreparedMessage::new(
            ServerToAgent {
                remote_config: Some(AgentRemoteConfig::default()),
                custom_message: Some(CustomMessage {
                    capability: "io.x".into(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(
            prepared.remote_config().unwrap().config_hash.len(),
            32,
            "missing hash filled"
        );
        let mut status = AgentStatus::default();
        assert!(!prepared.fits(&status));
        status.merge_from(&AgentToServer {
            capabilities: AgentCapabilities::ACCEPTS_REMOTE_CONFIG.bits(),
            custom_capabilities: Some(opamp_proto::CustomCapabilities {
                capabilities: vec!["io.x".into()],
            }),
            ..Default::default()
        });
        assert!(prepared.fits(&status));
    }
}
