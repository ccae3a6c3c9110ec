//! The quick start of the crate docs as a program: an OpAMP server on `127.0.0.1:4320`
//! (`/v1/opamp`, WebSocket and plain HTTP) that admits agents presenting an `X-API-Key`
//! header, offers each a collector configuration chosen from its `environment` and `region`
//! identifying attributes (with a SHA-256 hash), and asks for the agent's description and
//! health when it does not have them.
//!
//! ```text
//! cargo run -p opamp-server --example quickstart [LISTEN_ADDR]
//! ```
//!
//! Stop it with Ctrl-C: every agent gets a WebSocket close frame (1001) first.

use std::sync::atomic::{AtomicBool, Ordering};

use opamp_server::proto::{
    AgentCapabilities, AgentConfigFile, AgentConfigMap, AgentRemoteConfig, AgentToServer,
    ServerToAgent, ServerToAgentFlags,
};
use opamp_server::state::{AgentStatus, StatusChanges};
use opamp_server::{
    Callbacks, ConnectingRequest, Connection, ConnectionCallbacks, ConnectionResponse, Server,
    ServerSettings, async_trait,
};
use sha2::{Digest, Sha256};

/// Admits agents that send a non-empty `X-API-Key` header; 401 for the others.
struct ApiKeyAuth;

#[async_trait]
impl Callbacks for ApiKeyAuth {
    async fn on_connecting(&self, request: &ConnectingRequest<'_>) -> ConnectionResponse {
        match request.header_str("x-api-key") {
            Some(key) if !key.is_empty() => ConnectionResponse::accept(CollectorConfig::default()),
            _ => ConnectionResponse::unauthorized(),
        }
    }
}

/// Per-connection callbacks.
#[derive(Default)]
struct CollectorConfig {
    asked_full_state: AtomicBool,
}

#[async_trait]
impl ConnectionCallbacks for CollectorConfig {
    async fn on_message(&self, conn: &Connection, _msg: &AgentToServer) -> Option<ServerToAgent> {
        // The merged status: parts the agent omitted keep their last reported value.
        let status = conn.status();
        let mut reply = ServerToAgent::default();
        let missing_health =
            status.has_capability(AgentCapabilities::REPORTS_HEALTH) && status.health.is_none();
        if (status.agent_description.is_none() || missing_health)
            && !self.asked_full_state.swap(true, Ordering::Relaxed)
        {
            reply.flags |= ServerToAgentFlags::REPORT_FULL_STATE.bits();
        }
        // (Re)compute the config when the description changes. The server resends it while
        // the agent reports another hash, and only to agents with AcceptsRemoteConfig.
        if conn
            .last_changes()
            .contains(StatusChanges::AGENT_DESCRIPTION)
            || conn.remote_config().is_none()
        {
            reply.remote_config = Some(config_for(&status));
        }
        Some(reply)
    }
}

fn attribute<'a>(status: &'a AgentStatus, key: &str) -> &'a str {
    status
        .identifying_attribute(key)
        .and_then(|v| v.as_str())
        .unwrap_or("")
}

/// The seed's per-environment collector configuration.
const TEMPLATE: &str = r#"receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 0.0.0.0:4317
processors:
  batch:
    timeout: 10s
  resource:
    attributes:
      - key: environment
        value: {env}
        action: upsert
      - key: region
        value: {region}
        action: upsert
exporters:
  otlp:
    endpoint: tempo-{env}-{region}.monitoring.svc:4317
service:
  pipelines:
    traces:
      receivers: [otlp]
      processors: [resource, batch]
      exporters: [otlp]
"#;

/// For agents that did not describe themselves.
const DEFAULT_CONFIG: &str = r#"receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 0.0.0.0:4317
exporters:
  debug:
    verbosity: detailed
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [debug]
"#;

fn config_for(status: &AgentStatus) -> AgentRemoteConfig {
    let body = if status.agent_description.is_some() {
        TEMPLATE
            .replace("{env}", attribute(status, "environment"))
            .replace("{region}", attribute(status, "region"))
    } else {
        DEFAULT_CONFIG.to_owned()
    };
    let file = AgentConfigFile {
        body: body.into(),
        content_type: "text/yaml".into(),
    };
    let hash = Sha256::digest(&file.body);
    AgentRemoteConfig {
        config: Some(AgentConfigMap {
            config_map: [("collector.yaml".to_owned(), file)].into(),
        }),
        config_hash: hash.to_vec().into(),
    }
}

/// Logs connections as they come and go.
#[derive(Default)]
struct Logged<C>(C);

#[async_trait]
impl<C: ConnectionCallbacks> ConnectionCallbacks for Logged<C> {
    async fn on_connected(&self, conn: &Connection) {
        tracing::info!(remote = ?conn.remote_addr(), transport = ?conn.transport(), "agent connected");
    }

    async fn on_message(&self, conn: &Connection, msg: &AgentToServer) -> Option<ServerToAgent> {
        self.0.on_message(conn, msg).await
    }

    async fn on_close(&self, conn: &Connection, reason: opamp_server::CloseReason) {
        tracing::info!(uid = ?conn.instance_uid(), ?reason, "agent disconnected");
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let listen = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:4320".to_owned())
        .parse()?;
    let settings = ServerSettings::default().with_listen_addr(listen);
    let server = Server::new(settings, LoggedAuth)?;
    let addr = server.start().await?;
    tracing::info!("OpAMP server on ws://{addr}/v1/opamp and http://{addr}/v1/opamp");
    tokio::signal::ctrl_c().await?;
    server.shutdown().await;
    Ok(())
}

/// [`ApiKeyAuth`] with logging of the accepted connections.
struct LoggedAuth;

#[async_trait]
impl Callbacks for LoggedAuth {
    async fn on_connecting(&self, request: &ConnectingRequest<'_>) -> ConnectionResponse {
        let response = ApiKeyAuth.on_connecting(request).await;
        if response.is_accepted() {
            ConnectionResponse::accept(Logged(CollectorConfig::default()))
        } else {
            tracing::info!(remote = ?request.remote_addr(), "refused: no API key");
            response
        }
    }
}
