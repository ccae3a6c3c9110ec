//! The OpAMP settings of the agent: the `extensions.opamp` section of its configuration file,
//! shaped like the OpenTelemetry Collector's OpAMP extension settings.
//!
//! ```yaml
//! extensions:
//!   opamp:
//!     server:
//!       ws:                       # or http: (then polling_interval is allowed)
//!         endpoint: wss://opamp.example.com:4320/v1/opamp
//!         headers:
//!           X-API-Key: ${OPAMP_API_KEY}
//!         tls: { insecure_skip_verify: false, ca_file: ca.pem, cert_file: c.pem, key_file: k.pem }
//!     instance_uid: ${INSTANCE_ID}          # a UUID; default: persisted or new UUIDv7
//!     agent_description:
//!       identifying_attributes:
//!         - key: service.name
//!           string_value: otel-collector
//!       non_identifying_attributes:
//!         - key: os.type
//!           string_value: linux
//!     capabilities:
//!       reports_effective_config: true
//!       accepts_remote_config: true
//!     heartbeat_interval: 30s
//! ```
//!
//! The section types other than [`OpampExtensionSection`] are shared with the supervisor
//! example.

mod capabilities;
mod description;
mod endpoint;

use std::path::Path;
use std::time::Duration;

use opamp_client::ClientSettings;
use opamp_client::proto::{AgentCapabilities, AgentDescription, InstanceUid};
use serde::Deserialize;

pub use capabilities::CapabilitiesSection;
pub use description::{AttributeSection, DescriptionSection};
pub use endpoint::{Endpoint, EndpointSection, TlsSection, Transport};

use crate::yaml::{ConfigError, duration, join_key};

/// The default heartbeat interval (spec §"Heartbeat": 30 s).
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(30);

/// The capabilities this agent can honour.
pub const SUPPORTED_CAPABILITIES: AgentCapabilities = AgentCapabilities::from_bits(
    AgentCapabilities::REPORTS_STATUS.bits()
        | AgentCapabilities::REPORTS_EFFECTIVE_CONFIG.bits()
        | AgentCapabilities::REPORTS_HEALTH.bits()
        | AgentCapabilities::REPORTS_REMOTE_CONFIG.bits()
        | AgentCapabilities::ACCEPTS_REMOTE_CONFIG.bits()
        | AgentCapabilities::ACCEPTS_RESTART_COMMAND.bits()
        | AgentCapabilities::ACCEPTS_OPAMP_CONNECTION_SETTINGS.bits()
        | AgentCapabilities::REPORTS_CONNECTION_SETTINGS_STATUS.bits()
        | AgentCapabilities::REPORTS_HEARTBEAT.bits(),
);

/// The capabilities used when the file does not set them (as the collector's extension:
/// effective config, health and heartbeats).
pub const DEFAULT_CAPABILITIES: AgentCapabilities = AgentCapabilities::from_bits(
    AgentCapabilities::REPORTS_EFFECTIVE_CONFIG.bits()
        | AgentCapabilities::REPORTS_HEALTH.bits()
        | AgentCapabilities::REPORTS_HEARTBEAT.bits(),
);

/// `server:`: exactly one of `ws` and `http`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ServerSection {
    /// A WebSocket endpoint.
    pub ws: Option<EndpointSection>,
    /// A plain HTTP endpoint.
    pub http: Option<EndpointSection>,
}

/// The `extensions.opamp` section, as written.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct OpampExtensionSection {
    /// The server.
    pub server: ServerSection,
    /// The instance UID (a UUID).
    pub instance_uid: Option<String>,
    /// The agent description.
    #[serde(default)]
    pub agent_description: DescriptionSection,
    /// The capabilities.
    #[serde(default)]
    pub capabilities: CapabilitiesSection,
    /// Heartbeat interval (WebSocket) and default polling interval (plain HTTP).
    #[serde(default, deserialize_with = "duration::deserialize_option")]
    pub heartbeat_interval: Option<Duration>,
}

/// Checked OpAMP settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct OpampSettings {
    /// The server endpoint.
    pub endpoint: Endpoint,
    /// The configured instance UID.
    pub instance_uid: Option<InstanceUid>,
    /// The agent description.
    pub description: AgentDescription,
    /// The capabilities.
    pub capabilities: AgentCapabilities,
    /// Heartbeat / polling interval.
    pub heartbeat_interval: Duration,
}

/// Parses an instance UID written as a UUID.
pub fn parse_instance_uid(file: &Path, key: &str, text: &str) -> Result<InstanceUid, ConfigError> {
    let uuid = uuid::Uuid::parse_str(text.trim())
        .map_err(|err| ConfigError::invalid(file, key, format!("{text:?} is not a UUID: {err}")))?;
    if uuid.is_nil() {
        return Err(ConfigError::invalid(
            file,
            key,
            "the nil UUID is not a valid instance UID",
        ));
    }
    Ok(InstanceUid::from(uuid))
}

impl OpampExtensionSection {
    /// Checks the section found at `prefix` of `file`.
    pub fn check(&self, file: &Path, prefix: &str) -> Result<OpampSettings, ConfigError> {
        let key = |name: &str| join_key(prefix, name);
        let endpoint = match (&self.server.ws, &self.server.http) {
            (Some(ws), None) => ws.check(file, &key("server.ws"), Some(Transport::WebSocket))?,
            (None, Some(http)) => http.check(file, &key("server.http"), Some(Transport::Http))?,
            (Some(_), Some(_)) => {
                return Err(ConfigError::invalid(
                    file,
                    key("server"),
                    "set either ws or http, not both",
                ));
            }
            (None, None) => {
                return Err(ConfigError::invalid(file, key("server"), "set ws or http"));
            }
        };
        let instance_uid = match &self.instance_uid {
            Some(text) => Some(parse_instance_uid(file, &key("instance_uid"), text)?),
            None => None,
        };
        let defaults = AgentDescription::builder()
            .service_name("opamp-example-agent")
            .service_version(env!("CARGO_PKG_VERSION"))
            .os_type_from_host()
            .host_arch_from_host();
        let description =
            self.agent_description
                .build(file, &key("agent_description"), defaults)?;
        let capabilities = self.capabilities.resolve(
            file,
            &key("capabilities"),
            DEFAULT_CAPABILITIES,
            SUPPORTED_CAPABILITIES,
        )?;
        let heartbeat_interval = self
            .heartbeat_interval
            .unwrap_or(DEFAULT_HEARTBEAT_INTERVAL);
        if heartbeat_interval < Duration::from_secs(1) {
            return Err(ConfigError::invalid(
                file,
                key("heartbeat_interval"),
                "must be at least 1s",
            ));
        }
        Ok(OpampSettings {
            endpoint,
            instance_uid,
            description,
            capabilities,
            heartbeat_interval,
        })
    }
}

impl OpampSettings {
    /// The client settings (without persistence; see `ClientSettings::with_state_store`).
    pub fn client_settings(&self) -> ClientSettings {
        let interval = match self.endpoint.transport {
            Transport::Http => self
                .endpoint
                .polling_interval
                .unwrap_or(self.heartbeat_interval),
            Transport::WebSocket => self.heartbeat_interval,
        };
        let mut settings = ClientSettings::new(self.endpoint.url.clone())
            .with_headers(self.endpoint.headers.clone())
            .with_tls(self.endpoint.tls.clone())
            .with_capabilities(self.capabilities)
            .with_agent_description(self.description.clone())
            .with_heartbeat_interval(interval);
        if let Some(uid) = self.instance_uid {
            settings = settings.with_instance_uid(uid);
        }
        settings
    }
}
