//! What [`ClientState`](super::ClientState) asks its driver to do or to tell the Agent.

use opamp_proto::{
    Bytes, InstanceUid, OpAmpConnectionSettings, ServerErrorResponse, ServerToAgentCommand,
};

use crate::callbacks::MessageData;

/// Identifies a custom message given to
/// [`ClientState::send_custom_message`](super::ClientState::send_custom_message), so that the
/// driver can tell its sender when it went out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CustomMessageId(pub(crate) u64);

impl CustomMessageId {
    /// The number behind the id (ids grow by one per custom message).
    pub fn get(self) -> u64 {
        self.0
    }
}

/// An output of [`ClientState`](super::ClientState), drained with
/// [`ClientState::poll_event`](super::ClientState::poll_event).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// Offers and data for the Agent, already filtered by the Agent's capabilities (and, for a
    /// custom message, by its custom capabilities). Emitted only when something is set.
    Message(Box<MessageData>),
    /// The server offered new settings for the OpAMP connection itself and the Agent has
    /// `AcceptsOpAMPConnectionSettings` (spec §"OpAMP Connection Setting Offer Flow").
    OpampConnectionSettings {
        /// The offered settings.
        settings: Box<OpAmpConnectionSettings>,
        /// `ConnectionSettingsOffers.hash`, which covers every offered setting.
        hash: Bytes,
    },
    /// The server asked for a command the Agent accepts (spec §"ServerToAgentCommand Message").
    Command(ServerToAgentCommand),
    /// The server answered with an error (spec §"ServerErrorResponse Message"). Throttling
    /// (`UNAVAILABLE`) is already applied to the retry schedule when this is seen.
    ServerError(ServerErrorResponse),
    /// The server assigned a new instance UID, already in use for the next message; it should
    /// be persisted (spec §"ServerToAgent.agent_identification").
    InstanceUidChanged {
        /// The UID used until now.
        old: InstanceUid,
        /// The UID used from now on.
        new: InstanceUid,
    },
    /// A custom message was delivered (written to the WebSocket, or answered over HTTP).
    CustomMessageSent(CustomMessageId),
    /// A custom message will never be delivered (the server rejected the message carrying it
    /// as a bad request, the message was too large, or the client stopped).
    CustomMessageDropped(CustomMessageId),
}
