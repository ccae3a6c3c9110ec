//! `supervisor.yaml`: what the supervisor connects to, which agent it runs and how.
//!
//! ```yaml
//! server:
//!   endpoint: ws://127.0.0.1:4320/v1/opamp     # ws, wss, http or https
//!   headers: { Authorization: "Bearer ${OPAMP_TOKEN}" }
//!   tls: { ca_file: ca.pem }                   # as in the agent example
//! heartbeat_interval: 30s
//! capabilities:
//!   accepts_remote_config: true
//!   reports_remote_config: true
//!   reports_own_metrics: true
//!   accepts_restart_command: true
//!   accepts_packages: true
//!   reports_package_statuses: true
//! agent:
//!   executable: /usr/local/bin/otelcol
//!   args: ["--config", "{config_file}"]        # the default
//!   env: { GOMAXPROCS: "2" }
//!   config_file: effective.yaml                 # written by the supervisor, read by the agent
//!   base_config: base.yaml                      # optional local base layer
//!   health_check_url: http://localhost:13133    # the default
//!   inject_health_check: true                   # add the supervisor's own health check extension
//!   health_check_interval: 1s
//!   config_apply_timeout: 30s
//!   config_stable_time: 3s                      # healthy this long before APPLIED
//!   stop_timeout: 10s
//!   reload: restart                             # or sighup
//!   restart_backoff: { initial: 1s, max: 1m, reset_after: 1m }
//!   own_metrics_target: localhost:8888
//!   description:
//!     identifying_attributes:
//!       - { key: service.name, string_value: io.opentelemetry.collector }
//! packages:                                     # with accepts_packages
//!   require_signature: true                     # the default
//!   public_keys: ["MCowBQYDK2VwAyEA..."]         # Ed25519, PEM or base64 (see signature)
//!   public_key_files: [release.pub]
//! storage:
//!   directory: data
//! ```
//!
//! Relative paths are relative to the directory of `supervisor.yaml`. Every error names the
//! file and the key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use opamp_client::proto::{AgentCapabilities, AgentDescription};
use opamp_example_agent::settings::{
    CapabilitiesSection, DescriptionSection, Endpoint, EndpointSection,
};
use opamp_example_agent::yaml::{self, ConfigError, Value, duration, env::Lookup, join_key};
use serde::Deserialize;

use crate::backoff::BackoffSettings;
use crate::signature::PublicKey;

/// The default health check URL (the collector's `health_check` extension).
pub const DEFAULT_HEALTH_CHECK_URL: &str = "http://localhost:13133";
/// The placeholder replaced by the config file path in `agent.args`.
pub const CONFIG_FILE_PLACEHOLDER: &str = "{config_file}";

/// The capabilities the supervisor can honour.
pub const SUPPORTED_CAPABILITIES: AgentCapabilities = AgentCapabilities::from_bits(
    AgentCapabilities::REPORTS_STATUS.bits()
        | AgentCapabilities::ACCEPTS_REMOTE_CONFIG.bits()
        | AgentCapabilities::REPORTS_EFFECTIVE_CONFIG.bits()
        | AgentCapabilities::ACCEPTS_PACKAGES.bits()
        | AgentCapabilities::REPORTS_PACKAGE_STATUSES.bits()
        | AgentCapabilities::REPORTS_OWN_TRACES.bits()
        | AgentCapabilities::REPORTS_OWN_METRICS.bits()
        | AgentCapabilities::REPORTS_OWN_LOGS.bits()
        | AgentCapabilities::ACCEPTS_OPAMP_CONNECTION_SETTINGS.bits()
        | AgentCapabilities::ACCEPTS_RESTART_COMMAND.bits()
        | AgentCapabilities::REPORTS_HEALTH.bits()
        | AgentCapabilities::REPORTS_REMOTE_CONFIG.bits()
        | AgentCapabilities::REPORTS_HEARTBEAT.bits()
        | AgentCapabilities::REPORTS_CONNECTION_SETTINGS_STATUS.bits(),
);

/// The capabilities used when `capabilities:` does not set them.
pub const DEFAULT_CAPABILITIES: AgentCapabilities = AgentCapabilities::from_bits(
    AgentCapabilities::REPORTS_EFFECTIVE_CONFIG.bits()
        | AgentCapabilities::REPORTS_HEALTH.bits()
        | AgentCapabilities::REPORTS_HEARTBEAT.bits(),
);

/// How a new configuration reaches a running agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReloadMode {
    /// Stop the agent and start it again (always works).
    #[default]
    Restart,
    /// Send `SIGHUP` (the collector reloads its configuration on it). Unix only.
    Sighup,
}

/// `agent.restart_backoff`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct BackoffSection {
    /// First delay. Default 1s.
    #[serde(default, deserialize_with = "duration::deserialize_option")]
    pub initial: Option<Duration>,
    /// Largest delay. Default 1m.
    #[serde(default, deserialize_with = "duration::deserialize_option")]
    pub max: Option<Duration>,
    /// A run at least this long resets the delay. Default 1m.
    #[serde(default, deserialize_with = "duration::deserialize_option")]
    pub reset_after: Option<Duration>,
}

/// `agent:` as written. `Debug` shows environment variable names, not their values.
#[derive(Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
#[allow(missing_docs)] // documented in the module example
pub struct AgentSection {
    pub executable: PathBuf,
    pub args: Option<Vec<String>>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    pub config_file: PathBuf,
    pub base_config: Option<PathBuf>,
    pub health_check_url: Option<String>,
    #[serde(default)]
    pub inject_health_check: bool,
    #[serde(default, deserialize_with = "duration::deserialize_option")]
    pub health_check_interval: Option<Duration>,
    #[serde(default, deserialize_with = "duration::deserialize_option")]
    pub config_apply_timeout: Option<Duration>,
    #[serde(default, deserialize_with = "duration::deserialize_option")]
    pub config_stable_time: Option<Duration>,
    #[serde(default, deserialize_with = "duration::deserialize_option")]
    pub stop_timeout: Option<Duration>,
    #[serde(default)]
    pub reload: ReloadMode,
    #[serde(default)]
    pub restart_backoff: BackoffSection,
    pub own_metrics_target: Option<String>,
    #[serde(default)]
    pub description: DescriptionSection,
}

/// `storage:` as written.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct StorageSection {
    /// Where state is kept. Default `data` next to `supervisor.yaml`.
    pub directory: Option<PathBuf>,
}

/// `packages:` as written.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PackagesSection {
    /// Refuse packages without a signature that verifies. Default `true`.
    pub require_signature: Option<bool>,
    /// Ed25519 public keys, PEM or base64 ([`signature`](crate::signature)).
    #[serde(default)]
    pub public_keys: Vec<String>,
    /// Files each holding one such key.
    #[serde(default)]
    pub public_key_files: Vec<PathBuf>,
}

/// How package signatures are checked.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PackageSettings {
    /// Refuse packages without a signature that verifies with one of the keys.
    pub require_signature: bool,
    /// The keys that sign packages.
    pub public_keys: Vec<PublicKey>,
}

impl PackagesSection {
    fn check(
        &self,
        file: &Path,
        capabilities: AgentCapabilities,
    ) -> Result<PackageSettings, ConfigError> {
        let mut public_keys = Vec::new();
        for (i, text) in self.public_keys.iter().enumerate() {
            let key = PublicKey::parse(text).map_err(|reason| {
                ConfigError::invalid(file, format!("packages.public_keys[{i}]"), reason)
            })?;
            public_keys.push(key);
        }
        for (i, written) in self.public_key_files.iter().enumerate() {
            let path = yaml::resolve_path(file, written);
            let key = format!("packages.public_key_files[{i}]");
            let text = std::fs::read_to_string(&path).map_err(|err| {
                ConfigError::invalid(file, key.clone(), format!("{}: {err}", path.display()))
            })?;
            let parsed = PublicKey::parse(&text).map_err(|reason| {
                ConfigError::invalid(file, key, format!("{}: {reason}", path.display()))
            })?;
            public_keys.push(parsed);
        }
        let require_signature = self.require_signature.unwrap_or(true);
        if require_signature
            && public_keys.is_empty()
            && capabilities.contains(AgentCapabilities::ACCEPTS_PACKAGES)
        {
            return Err(ConfigError::invalid(
                file,
                "packages.public_keys",
                "accepts_packages needs a key to check package signatures (the server can \
                 offer any URL); or set packages.require_signature: false",
            ));
        }
        Ok(PackageSettings {
            require_signature,
            public_keys,
        })
    }
}

/// `supervisor.yaml` as written.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SupervisorFile {
    /// The OpAMP server.
    pub server: EndpointSection,
    /// Heartbeat interval (and default plain HTTP polling interval). Default 30s.
    #[serde(default, deserialize_with = "duration::deserialize_option")]
    pub heartbeat_interval: Option<Duration>,
    /// Capabilities.
    #[serde(default)]
    pub capabilities: CapabilitiesSection,
    /// The agent.
    pub agent: AgentSection,
    /// Package signature checks.
    #[serde(default)]
    pub packages: PackagesSection,
    /// Storage.
    #[serde(default)]
    pub storage: StorageSection,
}

/// The agent, checked. `Debug` shows neither environment values nor the base configuration.
#[derive(Clone)]
#[non_exhaustive]
pub struct AgentSettings {
    /// The executable configured (a package update may replace it; see the README).
    pub executable: PathBuf,
    /// Arguments, with `{config_file}` replaced.
    pub args: Vec<String>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// The configuration file the supervisor writes and the agent reads.
    pub config_file: PathBuf,
    /// The local base configuration, parsed.
    pub base_config: Option<Value>,
    /// The health check URL.
    pub health_check_url: http::Uri,
    /// Whether to add the supervisor's own health check extension
    /// ([`HEALTH_CHECK_EXTENSION`](crate::merge::HEALTH_CHECK_EXTENSION)) for that URL to the
    /// configuration.
    pub inject_health_check: bool,
    /// How often health is checked.
    pub health_check_interval: Duration,
    /// How long a new configuration or binary has to become healthy.
    pub config_apply_timeout: Duration,
    /// How long it must stay healthy (within the timeout) before it counts as applied.
    pub config_stable_time: Duration,
    /// How long the agent has to exit after `SIGTERM` before it is killed.
    pub stop_timeout: Duration,
    /// How configuration changes reach the agent.
    pub reload: ReloadMode,
    /// Restart delays.
    pub restart_backoff: BackoffSettings,
    /// The scrape target of the own-metrics pipeline (the agent's Prometheus endpoint).
    pub own_metrics_target: String,
    /// The agent description reported.
    pub description: AgentDescription,
}

/// `supervisor.yaml`, checked.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SupervisorConfig {
    /// The file it came from.
    pub file: PathBuf,
    /// The server.
    pub server: Endpoint,
    /// Heartbeat / polling interval.
    pub heartbeat_interval: Duration,
    /// Capabilities.
    pub capabilities: AgentCapabilities,
    /// The agent.
    pub agent: AgentSettings,
    /// Package signature checks.
    pub packages: PackageSettings,
    /// The storage directory.
    pub storage_dir: PathBuf,
}

fn positive(
    file: &Path,
    key: &str,
    value: Option<Duration>,
    default: Duration,
) -> Result<Duration, ConfigError> {
    let value = value.unwrap_or(default);
    if value.is_zero() {
        return Err(ConfigError::invalid(file, key, "must be greater than 0"));
    }
    Ok(value)
}

fn default_description(executable: &Path) -> opamp_client::proto::AgentDescriptionBuilder {
    let name = executable
        .file_name()
        .map_or_else(|| "agent".into(), |n| n.to_string_lossy().into_owned());
    let mut builder = AgentDescription::builder()
        .service_name(name)
        .os_type_from_host()
        .host_arch_from_host();
    #[cfg(unix)]
    if let Ok(host) = nix::unistd::gethostname()
        && let Some(host) = host.to_str()
    {
        builder = builder.host_name(host);
    }
    builder
}

impl SupervisorConfig {
    /// Reads and checks `path` (with `${ENV}` expansion from `lookup`).
    pub fn load(path: &Path, lookup: Lookup<'_>) -> Result<Self, ConfigError> {
        let file: SupervisorFile = yaml::load(path, lookup)?;
        file.check(path)
    }
}

impl SupervisorFile {
    /// Checks the settings read from `file`.
    pub fn check(&self, file: &Path) -> Result<SupervisorConfig, ConfigError> {
        let server = self.server.check(file, "server", None)?;
        let heartbeat_interval = positive(
            file,
            "heartbeat_interval",
            self.heartbeat_interval,
            Duration::from_secs(30),
        )?;
        let capabilities = self.capabilities.resolve(
            file,
            "capabilities",
            DEFAULT_CAPABILITIES,
            SUPPORTED_CAPABILITIES,
        )?;
        let agent = self.agent.check(file, "agent")?;
        let packages = self.packages.check(file, capabilities)?;
        let storage_dir = yaml::resolve_path(
            file,
            self.storage
                .directory
                .as_deref()
                .unwrap_or(Path::new("data")),
        );
        Ok(SupervisorConfig {
            file: file.to_owned(),
            server,
            heartbeat_interval,
            capabilities,
            agent,
            packages,
            storage_dir,
        })
    }
}

/// Checks that `path` is an executable file.
pub fn check_executable(path: &Path) -> Result<(), String> {
    let meta = std::fs::metadata(path).map_err(|err| format!("{}: {err}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{} is not a file", path.display()));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o111 == 0 {
            return Err(format!("{} is not executable", path.display()));
        }
    }
    Ok(())
}

impl AgentSection {
    fn check(&self, file: &Path, prefix: &str) -> Result<AgentSettings, ConfigError> {
        let key = |name: &str| join_key(prefix, name);
        if self.executable.as_os_str().is_empty() {
            return Err(ConfigError::invalid(
                file,
                key("executable"),
                "must not be empty",
            ));
        }
        let executable = yaml::resolve_path(file, &self.executable);
        check_executable(&executable)
            .map_err(|reason| ConfigError::invalid(file, key("executable"), reason))?;

        let config_file = yaml::resolve_path(file, &self.config_file);
        let dir = config_file
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if self.config_file.as_os_str().is_empty() || config_file.file_name().is_none() {
            return Err(ConfigError::invalid(
                file,
                key("config_file"),
                "must name a file",
            ));
        }
        if !dir.is_dir() {
            return Err(ConfigError::invalid(
                file,
                key("config_file"),
                format!("directory {} does not exist", dir.display()),
            ));
        }
        let config_text = config_file.to_string_lossy().into_owned();
        let args = self
            .args
            .clone()
            .unwrap_or_else(|| vec!["--config".into(), CONFIG_FILE_PLACEHOLDER.into()])
            .into_iter()
            .map(|arg| arg.replace(CONFIG_FILE_PLACEHOLDER, &config_text))
            .collect();
        let mut env = Vec::new();
        for (name, value) in &self.env {
            if name.is_empty() || name.contains('=') || name.contains('\0') || value.contains('\0')
            {
                return Err(ConfigError::invalid(
                    file,
                    join_key(&key("env"), name),
                    "invalid environment variable",
                ));
            }
            env.push((name.clone(), value.clone()));
        }

        let base_config = match &self.base_config {
            Some(written) => {
                let path = yaml::resolve_path(file, written);
                let text = yaml::read_file(&path)?;
                let value = yaml::parse(&path, &text)?;
                if !value.is_mapping() {
                    return Err(ConfigError::invalid(
                        &path,
                        ".",
                        "the base configuration must be a mapping",
                    ));
                }
                Some(value)
            }
            None => None,
        };

        let url_text = self
            .health_check_url
            .as_deref()
            .unwrap_or(DEFAULT_HEALTH_CHECK_URL);
        let health_check_url: http::Uri = url_text.parse().map_err(|_| {
            ConfigError::invalid(
                file,
                key("health_check_url"),
                format!("{url_text:?} is not a URL"),
            )
        })?;
        if health_check_url.scheme_str() != Some("http") || health_check_url.host().is_none() {
            return Err(ConfigError::invalid(
                file,
                key("health_check_url"),
                "expected an http:// URL with a host",
            ));
        }

        if self.inject_health_check
            && let Some(base) = &base_config
        {
            let port = health_check_url.port_u16().unwrap_or(80);
            crate::merge::check_health_port(base, port)
                .map_err(|reason| ConfigError::invalid(file, key("base_config"), reason))?;
        }

        let health_check_interval = positive(
            file,
            &key("health_check_interval"),
            self.health_check_interval,
            Duration::from_secs(1),
        )?;
        let config_apply_timeout = positive(
            file,
            &key("config_apply_timeout"),
            self.config_apply_timeout,
            Duration::from_secs(30),
        )?;
        if config_apply_timeout < health_check_interval {
            return Err(ConfigError::invalid(
                file,
                key("config_apply_timeout"),
                "must be at least health_check_interval",
            ));
        }
        let config_stable_time = self.config_stable_time.unwrap_or(Duration::from_secs(3));
        if config_stable_time >= config_apply_timeout {
            return Err(ConfigError::invalid(
                file,
                key("config_stable_time"),
                "must be shorter than config_apply_timeout",
            ));
        }
        let stop_timeout = positive(
            file,
            &key("stop_timeout"),
            self.stop_timeout,
            Duration::from_secs(10),
        )?;
        #[cfg(not(unix))]
        if self.reload == ReloadMode::Sighup {
            return Err(ConfigError::invalid(
                file,
                key("reload"),
                "sighup needs a Unix system",
            ));
        }
        let backoff_key = key("restart_backoff");
        let b = &self.restart_backoff;
        let initial = positive(
            file,
            &join_key(&backoff_key, "initial"),
            b.initial,
            Duration::from_secs(1),
        )?;
        let max = positive(
            file,
            &join_key(&backoff_key, "max"),
            b.max,
            Duration::from_secs(60),
        )?;
        if max < initial {
            return Err(ConfigError::invalid(
                file,
                join_key(&backoff_key, "max"),
                "must be at least initial",
            ));
        }
        let reset_after = positive(
            file,
            &join_key(&backoff_key, "reset_after"),
            b.reset_after,
            Duration::from_secs(60),
        )?;
        let own_metrics_target = self
            .own_metrics_target
            .clone()
            .unwrap_or_else(|| "localhost:8888".into());
        let description =
            self.description
                .build(file, &key("description"), default_description(&executable))?;
        Ok(AgentSettings {
            executable,
            args,
            env,
            config_file,
            base_config,
            health_check_url,
            inject_health_check: self.inject_health_check,
            health_check_interval,
            config_apply_timeout,
            config_stable_time,
            stop_timeout,
            reload: self.reload,
            restart_backoff: BackoffSettings::new(initial, max, reset_after),
            own_metrics_target,
            description,
        })
    }
}

impl std::fmt::Debug for AgentSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentSection")
            .field("executable", &self.executable)
            .field("args", &self.args)
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .field("config_file", &self.config_file)
            .field("base_config", &self.base_config)
            .field("health_check_url", &self.health_check_url)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for AgentSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentSettings")
            .field("executable", &self.executable)
            .field("args", &self.args)
            .field("env", &self.env.iter().map(|(k, _)| k).collect::<Vec<_>>())
            .field("config_file", &self.config_file)
            .field("base_config", &self.base_config.is_some())
            .field("health_check_url", &self.health_check_url)
            .field("reload", &self.reload)
            .finish_non_exhaustive()
    }
}

impl AgentSettings {
    /// The port of the health check URL.
    pub fn health_check_port(&self) -> u16 {
        self.health_check_url.port_u16().unwrap_or(80)
    }

    /// `host:port` of the health check URL (for the injected health check extension), the
    /// host as written.
    pub fn health_check_endpoint(&self) -> String {
        let host = self.health_check_url.host().unwrap_or("localhost");
        let port = self.health_check_port();
        if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        }
    }
}
