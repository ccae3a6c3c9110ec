//! [`FleetConfig`]: addresses, TLS, credentials, store and limits, from command-line flags
//! and an optional TOML file (flags win over the file, the file over the defaults).
//!
//! ```
//! use opamp_fleet_server::FleetConfig;
//!
//! let config = FleetConfig::from_args(["opamp-fleet-server", "--http-addr", "127.0.0.1:8080"])?;
//! assert_eq!(config.opamp_addr.to_string(), "127.0.0.1:4320");
//! assert_eq!(config.http_addr.port(), 8080);
//! # Ok::<(), opamp_fleet_server::FleetError>(())
//! ```
//!
//! A configuration file uses the long flag names with underscores:
//!
//! ```toml
//! opamp_addr = "0.0.0.0:4320"
//! http_addr = "0.0.0.0:4321"
//! store = "/var/lib/opamp-fleet/fleet.sqlite"
//! agent_api_keys = ["k1", "k2"]
//! admin_password = "change-me"
//! tls_cert = "/etc/opamp/server.pem"
//! tls_key = "/etc/opamp/server.key"
//! client_ca_cert = "/etc/opamp/clients-ca.pem"
//! ```

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use serde::Deserialize;

use crate::error::FleetError;

/// Default OpAMP address (spec §"Communication Model": port 4320).
pub const DEFAULT_OPAMP_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 4320);
/// Default dashboard and API address.
pub const DEFAULT_HTTP_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 4321);

/// Command-line flags. Every flag is optional; unset ones come from `--config` or defaults.
#[derive(Debug, Parser, Default)]
#[command(
    name = "opamp-fleet-server",
    version,
    about = "OpAMP fleet server with a web dashboard"
)]
struct Cli {
    /// TOML configuration file (keys: the long flag names with underscores).
    #[arg(long, env = "OPAMP_FLEET_CONFIG")]
    config: Option<PathBuf>,
    /// OpAMP listen address (WebSocket and plain HTTP) [default: 127.0.0.1:4320].
    #[arg(long)]
    opamp_addr: Option<SocketAddr>,
    /// OpAMP URL path [default: /v1/opamp].
    #[arg(long)]
    opamp_path: Option<String>,
    /// Dashboard, JSON API and /metrics listen address [default: 127.0.0.1:4321].
    #[arg(long)]
    http_addr: Option<SocketAddr>,
    /// Store location: a SQLite file path or `:memory:` [default: opamp-fleet.sqlite].
    #[arg(long)]
    store: Option<String>,
    /// An API key agents must present (`X-API-Key` or `Authorization: Bearer`); repeatable.
    /// Required when the OpAMP address is not loopback.
    #[arg(
        long = "agent-api-key",
        env = "OPAMP_FLEET_AGENT_API_KEYS",
        value_delimiter = ','
    )]
    agent_api_keys: Vec<String>,
    /// Dashboard user name for HTTP Basic authentication [default: admin].
    #[arg(long)]
    admin_user: Option<String>,
    /// Dashboard password (HTTP Basic). Required, or --api-token, when the dashboard address
    /// is not loopback.
    #[arg(long, env = "OPAMP_FLEET_ADMIN_PASSWORD", hide_env_values = true)]
    admin_password: Option<String>,
    /// Token for the JSON API (`Authorization: Bearer`).
    #[arg(long, env = "OPAMP_FLEET_API_TOKEN", hide_env_values = true)]
    api_token: Option<String>,
    /// PEM certificate chain of the OpAMP listener (enables wss:// and https://).
    #[arg(long)]
    tls_cert: Option<PathBuf>,
    /// PEM private key of the OpAMP listener.
    #[arg(long)]
    tls_key: Option<PathBuf>,
    /// PEM CA that signs agents' client certificates: enables mutual TLS on the OpAMP
    /// listener.
    #[arg(long)]
    client_ca_cert: Option<PathBuf>,
    /// PEM key of the client CA: lets the dashboard issue and offer new client certificates.
    #[arg(long)]
    client_ca_key: Option<PathBuf>,
    /// Accept agents without a client certificate even when --client-ca-cert is set.
    #[arg(long)]
    client_cert_optional: bool,
    /// PEM certificate chain of the dashboard listener (enables https://).
    #[arg(long)]
    http_tls_cert: Option<PathBuf>,
    /// PEM private key of the dashboard listener.
    #[arg(long)]
    http_tls_key: Option<PathBuf>,
    /// Heartbeat interval offered to agents, seconds [default: 30].
    #[arg(long)]
    heartbeat_seconds: Option<u64>,
    /// Most agents remembered and connected [default: 10000].
    #[arg(long)]
    max_agents: Option<usize>,
    /// Largest OpAMP message in bytes [default: 4 MiB].
    #[arg(long)]
    max_message_size: Option<usize>,
    /// OpAMP URL offered to agents in connection settings [default: from --opamp-addr].
    #[arg(long)]
    public_opamp_url: Option<String>,
    /// New instance UIDs admitted per minute from one address; 0: unlimited [default: 600].
    #[arg(long)]
    new_agents_per_minute: Option<u32>,
    /// Most bytes of reports kept per agent; larger parts are not stored [default: 256 KiB].
    #[arg(long)]
    max_agent_bytes: Option<usize>,
    /// Accept agent API keys over plain ws:// and http:// on a non-loopback address (they
    /// cross the network readable). Without it such a setup refuses to start: give
    /// --tls-cert and --tls-key instead.
    #[arg(long)]
    allow_plaintext_agent_keys: bool,
}

/// The same keys as [`Cli`], read from a TOML file.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    opamp_addr: Option<SocketAddr>,
    opamp_path: Option<String>,
    http_addr: Option<SocketAddr>,
    store: Option<String>,
    #[serde(default)]
    agent_api_keys: Vec<String>,
    admin_user: Option<String>,
    admin_password: Option<String>,
    api_token: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    client_ca_cert: Option<PathBuf>,
    client_ca_key: Option<PathBuf>,
    #[serde(default)]
    client_cert_optional: bool,
    http_tls_cert: Option<PathBuf>,
    http_tls_key: Option<PathBuf>,
    heartbeat_seconds: Option<u64>,
    max_agents: Option<usize>,
    max_message_size: Option<usize>,
    public_opamp_url: Option<String>,
    new_agents_per_minute: Option<u32>,
    max_agent_bytes: Option<usize>,
    #[serde(default)]
    allow_plaintext_agent_keys: bool,
}

/// A certificate chain and its key, as PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

/// Everything the fleet server needs to start. Build it with [`FleetConfig::from_args`] or
/// from [`Default`] and the `with_*` methods.
#[non_exhaustive]
#[derive(Clone)]
pub struct FleetConfig {
    /// OpAMP listen address. Default `127.0.0.1:4320`.
    pub opamp_addr: SocketAddr,
    /// OpAMP path. Default `/v1/opamp`.
    pub opamp_path: String,
    /// Dashboard/API listen address. Default `127.0.0.1:4321`.
    pub http_addr: SocketAddr,
    /// Store location (SQLite file or `:memory:`). Default `opamp-fleet.sqlite`.
    pub store: String,
    /// Accepted agent API keys; empty accepts every agent, which only a loopback address
    /// allows.
    pub agent_api_keys: Vec<String>,
    /// Dashboard user (HTTP Basic).
    pub admin_user: String,
    /// Dashboard password (HTTP Basic).
    pub admin_password: Option<String>,
    /// API token (Bearer).
    pub api_token: Option<String>,
    /// TLS of the OpAMP listener.
    pub tls: Option<TlsFiles>,
    /// CA of agents' client certificates (mutual TLS on the OpAMP listener).
    pub client_ca_cert: Option<PathBuf>,
    /// Key of that CA (to issue client certificates for rotation).
    pub client_ca_key: Option<PathBuf>,
    /// With a client CA: accept agents without a certificate too.
    pub client_cert_optional: bool,
    /// TLS of the dashboard listener.
    pub http_tls: Option<TlsFiles>,
    /// Heartbeat interval offered to agents. Default 30 s.
    pub heartbeat_interval: Duration,
    /// Most agents. Default 10 000.
    pub max_agents: usize,
    /// Largest OpAMP message. Default 4 MiB.
    pub max_message_size: usize,
    /// OpAMP URL offered in connection settings; default derived from the listen address.
    pub public_opamp_url: Option<String>,
    /// New instance UIDs admitted per minute from one source address (0: unlimited).
    /// Default 600.
    pub new_agents_per_minute: u32,
    /// Most bytes of reports kept per agent. Default 256 KiB.
    pub max_agent_bytes: usize,
    /// Accept agent API keys without TLS on a non-loopback address (refused otherwise).
    pub allow_plaintext_agent_keys: bool,
}

impl Default for FleetConfig {
    fn default() -> Self {
        Self {
            opamp_addr: DEFAULT_OPAMP_ADDR,
            opamp_path: "/v1/opamp".to_owned(),
            http_addr: DEFAULT_HTTP_ADDR,
            store: "opamp-fleet.sqlite".to_owned(),
            agent_api_keys: Vec::new(),
            admin_user: "admin".to_owned(),
            admin_password: None,
            api_token: None,
            tls: None,
            client_ca_cert: None,
            client_ca_key: None,
            client_cert_optional: false,
            http_tls: None,
            heartbeat_interval: Duration::from_secs(30),
            max_agents: 10_000,
            max_message_size: 4 * 1024 * 1024,
            public_opamp_url: None,
            new_agents_per_minute: 600,
            max_agent_bytes: crate::fleet::DEFAULT_MAX_AGENT_BYTES,
            allow_plaintext_agent_keys: false,
        }
    }
}

impl fmt::Debug for FleetConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Keys, passwords and tokens are never printed.
        f.debug_struct("FleetConfig")
            .field("opamp_addr", &self.opamp_addr)
            .field("opamp_path", &self.opamp_path)
            .field("http_addr", &self.http_addr)
            .field("store", &self.store)
            .field("agent_api_keys", &self.agent_api_keys.len())
            .field("admin_user", &self.admin_user)
            .field("admin_password", &self.admin_password.is_some())
            .field("api_token", &self.api_token.is_some())
            .field("tls", &self.tls)
            .field("client_ca_cert", &self.client_ca_cert)
            .field("client_ca_key", &self.client_ca_key.is_some())
            .field("client_cert_optional", &self.client_cert_optional)
            .field("http_tls", &self.http_tls)
            .field("heartbeat_interval", &self.heartbeat_interval)
            .field("max_agents", &self.max_agents)
            .field("max_message_size", &self.max_message_size)
            .field("public_opamp_url", &self.public_opamp_url)
            .field("new_agents_per_minute", &self.new_agents_per_minute)
            .field("max_agent_bytes", &self.max_agent_bytes)
            .field(
                "allow_plaintext_agent_keys",
                &self.allow_plaintext_agent_keys,
            )
            .finish()
    }
}

fn tls_pair(
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    what: &str,
) -> Result<Option<TlsFiles>, FleetError> {
    match (cert, key) {
        (Some(cert), Some(key)) => Ok(Some(TlsFiles { cert, key })),
        (None, None) => Ok(None),
        _ => Err(FleetError::Settings(format!(
            "{what}: give both the certificate and the key"
        ))),
    }
}

impl FleetConfig {
    /// Parses command-line arguments (the first is the program name) and the `--config`
    /// file they name. `--help` and `--version` come back as an error carrying their text.
    pub fn from_args<I, T>(args: I) -> Result<Self, FleetError>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let cli = Cli::try_parse_from(args).map_err(|e| {
            use clap::error::ErrorKind;
            match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                    FleetError::HelpRequested(e.to_string())
                }
                _ => FleetError::Settings(e.to_string()),
            }
        })?;
        let file = match &cli.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| FleetError::Io {
                    what: format!("reading {}", path.display()),
                    source,
                })?;
                toml::from_str::<FileConfig>(&text)
                    .map_err(|e| FleetError::Settings(format!("{}: {e}", path.display())))?
            }
            None => FileConfig::default(),
        };
        let d = Self::default();
        let keys = if cli.agent_api_keys.is_empty() {
            file.agent_api_keys
        } else {
            cli.agent_api_keys
        };
        Ok(Self {
            opamp_addr: cli.opamp_addr.or(file.opamp_addr).unwrap_or(d.opamp_addr),
            opamp_path: cli.opamp_path.or(file.opamp_path).unwrap_or(d.opamp_path),
            http_addr: cli.http_addr.or(file.http_addr).unwrap_or(d.http_addr),
            store: cli.store.or(file.store).unwrap_or(d.store),
            agent_api_keys: keys.into_iter().filter(|k| !k.is_empty()).collect(),
            admin_user: cli.admin_user.or(file.admin_user).unwrap_or(d.admin_user),
            admin_password: cli.admin_password.or(file.admin_password),
            api_token: cli.api_token.or(file.api_token),
            tls: tls_pair(
                cli.tls_cert.or(file.tls_cert),
                cli.tls_key.or(file.tls_key),
                "OpAMP TLS",
            )?,
            client_ca_cert: cli.client_ca_cert.or(file.client_ca_cert),
            client_ca_key: cli.client_ca_key.or(file.client_ca_key),
            client_cert_optional: cli.client_cert_optional || file.client_cert_optional,
            http_tls: tls_pair(
                cli.http_tls_cert.or(file.http_tls_cert),
                cli.http_tls_key.or(file.http_tls_key),
                "dashboard TLS",
            )?,
            heartbeat_interval: cli
                .heartbeat_seconds
                .or(file.heartbeat_seconds)
                .map(Duration::from_secs)
                .unwrap_or(d.heartbeat_interval),
            max_agents: cli.max_agents.or(file.max_agents).unwrap_or(d.max_agents),
            max_message_size: cli
                .max_message_size
                .or(file.max_message_size)
                .unwrap_or(d.max_message_size),
            public_opamp_url: cli.public_opamp_url.or(file.public_opamp_url),
            new_agents_per_minute: cli
                .new_agents_per_minute
                .or(file.new_agents_per_minute)
                .unwrap_or(d.new_agents_per_minute),
            max_agent_bytes: cli
                .max_agent_bytes
                .or(file.max_agent_bytes)
                .unwrap_or(d.max_agent_bytes),
            allow_plaintext_agent_keys: cli.allow_plaintext_agent_keys
                || file.allow_plaintext_agent_keys,
        })
    }

    /// Checks combinations that cannot work.
    pub fn validate(&self) -> Result<(), FleetError> {
        if !self.opamp_path.starts_with('/') {
            return Err(FleetError::Settings(
                "the OpAMP path must start with '/'".into(),
            ));
        }
        if self.max_agents == 0 || self.max_message_size < 1024 {
            return Err(FleetError::Settings(
                "max_agents must be positive and max_message_size at least 1024".into(),
            ));
        }
        if self.client_ca_cert.is_some() && self.tls.is_none() {
            return Err(FleetError::Settings(
                "--client-ca-cert needs --tls-cert and --tls-key".into(),
            ));
        }
        if self.client_ca_key.is_some() && self.client_ca_cert.is_none() {
            return Err(FleetError::Settings(
                "--client-ca-key needs --client-ca-cert".into(),
            ));
        }
        if self.max_agent_bytes < 4096 {
            return Err(FleetError::Settings(
                "max_agent_bytes must be at least 4096".into(),
            ));
        }
        if !self.agent_api_keys.is_empty()
            && self.tls.is_none()
            && !self.opamp_addr.ip().is_loopback()
        {
            if !self.allow_plaintext_agent_keys {
                return Err(FleetError::Settings(format!(
                    "OpAMP listens on {} without TLS: agent API keys would cross the network \
                     in clear text. Give --tls-cert and --tls-key, or accept the risk with \
                     --allow-plaintext-agent-keys",
                    self.opamp_addr
                )));
            }
            tracing::warn!(
                addr = %self.opamp_addr,
                "INSECURE: agent API keys accepted over plain ws:// and http:// on a non-loopback \
                 address (--allow-plaintext-agent-keys); anyone on the network path can read \
                 and reuse them"
            );
        }
        Ok(())
    }

    /// Sets [`FleetConfig::opamp_addr`].
    #[must_use]
    pub fn with_opamp_addr(mut self, addr: SocketAddr) -> Self {
        self.opamp_addr = addr;
        self
    }

    /// Sets [`FleetConfig::http_addr`].
    #[must_use]
    pub fn with_http_addr(mut self, addr: SocketAddr) -> Self {
        self.http_addr = addr;
        self
    }

    /// Sets [`FleetConfig::store`].
    #[must_use]
    pub fn with_store(mut self, store: impl Into<String>) -> Self {
        self.store = store.into();
        self
    }

    /// Sets [`FleetConfig::agent_api_keys`].
    #[must_use]
    pub fn with_agent_api_keys(mut self, keys: Vec<String>) -> Self {
        self.agent_api_keys = keys;
        self
    }

    /// Sets the dashboard credentials.
    #[must_use]
    pub fn with_admin(mut self, user: impl Into<String>, password: Option<String>) -> Self {
        self.admin_user = user.into();
        self.admin_password = password;
        self
    }

    /// Sets [`FleetConfig::api_token`].
    #[must_use]
    pub fn with_api_token(mut self, token: Option<String>) -> Self {
        self.api_token = token;
        self
    }

    /// Sets [`FleetConfig::tls`].
    #[must_use]
    pub fn with_tls(mut self, tls: Option<TlsFiles>) -> Self {
        self.tls = tls;
        self
    }

    /// Sets the client CA (mutual TLS) and optionally its key (certificate rotation).
    #[must_use]
    pub fn with_client_ca(mut self, cert: Option<PathBuf>, key: Option<PathBuf>) -> Self {
        self.client_ca_cert = cert;
        self.client_ca_key = key;
        self
    }

    /// Sets [`FleetConfig::http_tls`].
    #[must_use]
    pub fn with_http_tls(mut self, tls: Option<TlsFiles>) -> Self {
        self.http_tls = tls;
        self
    }

    /// Sets [`FleetConfig::heartbeat_interval`].
    #[must_use]
    pub fn with_heartbeat_interval(mut self, interval: Duration) -> Self {
        self.heartbeat_interval = interval;
        self
    }

    /// Sets [`FleetConfig::max_agents`].
    #[must_use]
    pub fn with_max_agents(mut self, max_agents: usize) -> Self {
        self.max_agents = max_agents;
        self
    }

    /// Sets [`FleetConfig::new_agents_per_minute`].
    #[must_use]
    pub fn with_new_agents_per_minute(mut self, n: u32) -> Self {
        self.new_agents_per_minute = n;
        self
    }

    /// Sets [`FleetConfig::max_agent_bytes`].
    #[must_use]
    pub fn with_max_agent_bytes(mut self, bytes: usize) -> Self {
        self.max_agent_bytes = bytes;
        self
    }

    /// Sets [`FleetConfig::allow_plaintext_agent_keys`].
    #[must_use]
    pub fn with_allow_plaintext_agent_keys(mut self, allow: bool) -> Self {
        self.allow_plaintext_agent_keys = allow;
        self
    }

    /// Sets [`FleetConfig::max_message_size`].
    #[must_use]
    pub fn with_max_message_size(mut self, size: usize) -> Self {
        self.max_message_size = size;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_file_which_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("fleet.toml");
        std::fs::write(
            &file,
            "http_addr = \"127.0.0.1:9000\"\nstore = \"f.sqlite\"\nagent_api_keys = [\"a\"]\nheartbeat_seconds = 10\n",
        )
        .unwrap();
        let c = FleetConfig::from_args([
            "x",
            "--config",
            file.to_str().unwrap(),
            "--store",
            "cli.sqlite",
        ])
        .unwrap();
        assert_eq!(c.http_addr.port(), 9000);
        assert_eq!(c.store, "cli.sqlite");
        assert_eq!(c.agent_api_keys, vec!["a".to_owned()]);
        assert_eq!(c.heartbeat_interval, Duration::from_secs(10));
        assert_eq!(c.opamp_addr, DEFAULT_OPAMP_ADDR);
        let c = FleetConfig::from_args(["x", "--agent-api-key", "k1,k2"]).unwrap();
        assert_eq!(c.agent_api_keys.len(), 2);
        assert!(!format!("{c:?}").contains("k1"));
    }

    #[test]
    fn help_and_version_are_texts_to_print_not_errors_in_the_settings() {
        for flag in ["--help", "--version"] {
            match FleetConfig::from_args(["opamp-fleet-server", flag]) {
                Err(FleetError::HelpRequested(text)) => {
                    assert!(text.contains("opamp-fleet-server"), "{flag}: {text}");
                }
                other => panic!("{flag}: {other:?}"),
            }
        }
        assert!(matches!(
            FleetConfig::from_args(["opamp-fleet-server", "--no-such-flag"]),
            Err(FleetError::Settings(_))
        ));
    }

    #[test]
    fn bad_input_is_refused() {
        assert!(FleetConfig::from_args(["x", "--opamp-addr", "nope"]).is_err());
        assert!(FleetConfig::from_args(["x", "--tls-cert", "a.pem"]).is_err());
        assert!(FleetConfig::from_args(["x", "--config", "/nonexistent/x.toml"]).is_err());
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, "unknown_key = 1\n").unwrap();
        assert!(FleetConfig::from_args(["x", "--config", file.to_str().unwrap()]).is_err());
        let c = FleetConfig::default().with_client_ca(Some("ca.pem".into()), None);
        assert!(c.validate().is_err());
        assert!(FleetConfig::default().validate().is_ok());
    }
}
