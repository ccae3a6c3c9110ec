//! The OpAMP side: callbacks of the `opamp-server` SDK that admit agents by API key and feed
//! their messages and disconnections to the [`Fleet`].

use std::sync::Arc;

use opamp_proto::{AgentToServer, ServerToAgent};
use opamp_server::{
    Callbacks, CloseReason, ConnectingRequest, Connection, ConnectionCallbacks, ConnectionResponse,
    async_trait,
};

use crate::auth::AgentAuth;
use crate::fleet::Fleet;
use crate::logsafe::Untrusted;

/// Admission: an agent without an accepted API key gets `401 Unauthorized` (spec
/// §"Authentication").
pub(crate) struct FleetCallbacks {
    pub(crate) auth: AgentAuth,
    pub(crate) fleet: Arc<Fleet>,
    pub(crate) connection: Arc<dyn ConnectionCallbacks>,
}

#[async_trait]
impl Callbacks for FleetCallbacks {
    async fn on_connecting(&self, request: &ConnectingRequest<'_>) -> ConnectionResponse {
        if self.auth.check(request.headers()) {
            ConnectionResponse::accept_shared(Arc::clone(&self.connection))
        } else {
            self.fleet.metrics().inc_rejected();
            tracing::warn!(
                remote = ?request.remote_addr(),
                transport = ?request.transport(),
                "agent refused: missing or wrong API key"
            );
            ConnectionResponse::unauthorized()
        }
    }
}

/// Per-connection callbacks, shared by every connection.
pub(crate) struct FleetConnection {
    pub(crate) fleet: Arc<Fleet>,
}

#[async_trait]
impl ConnectionCallbacks for FleetConnection {
    async fn on_message(
        &self,
        conn: &Connection,
        message: &AgentToServer,
    ) -> Option<ServerToAgent> {
        // A new instance UID over the limits is refused, not recorded.
        if let Some(refusal) = self.fleet.admit(conn).await {
            return Some(refusal);
        }
        // Offers are made on `conn` by the fleet; the SDK merges them into its reply.
        self.fleet.agent_message(conn, message).await;
        None
    }

    async fn on_close(&self, conn: &Connection, reason: CloseReason) {
        tracing::debug!(conn = conn.id(), ?reason, "connection closed");
        self.fleet.agent_closed(conn).await;
    }

    async fn on_read_message_error(&self, conn: &Connection, error: &opamp_server::Error) {
        tracing::warn!(conn = conn.id(), remote = ?conn.remote_addr(), error = %Untrusted(&error.to_string()), "unusable message from agent");
    }
}
