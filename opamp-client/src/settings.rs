//! [`ClientSettings`]: everything [`Client::start`](crate::Client::start) needs.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use http::{HeaderMap, HeaderName, HeaderValue};
use opamp_proto::{
    AgentCapabilities, AgentDescription, AvailableComponents, ComponentHealth, InstanceUid,
    RemoteConfigStatus,
};
use opamp_transport::tls::TlsClientSettings;

use crate::callbacks::CallbackError;
use crate::connection_settings::{MergeOptions, ProxyParams};
use crate::packages::{DownloadSettings, PackagesStateProvider, SignatureVerifier};
use crate::persistence::StateStore;
use crate::state::{
    BackoffPolicy, DEFAULT_HEARTBEAT_INTERVAL, DEFAULT_MIN_THROTTLE_DELAY, ExponentialBackoff,
};

/// The default message size limit (spec §"WebSocket Message Size Limits": 64 MiB).
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 64 * 1024 * 1024;

/// Supplies headers for every connection attempt (WebSocket) and every HTTP request, e.g. a
/// freshly refreshed bearer token. Its headers replace static headers of the same name.
///
/// Implemented for closures returning a [`HeaderMap`]:
///
/// ```
/// use http::{HeaderMap, HeaderValue, header::AUTHORIZATION};
/// use opamp_client::ClientSettings;
///
/// let settings = ClientSettings::new("wss://opamp.example.com/v1/opamp")
///     .with_header_provider(|| {
///         let mut headers = HeaderMap::new();
///         headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer fresh-token"));
///         headers
///     });
/// ```
#[async_trait]
pub trait HeaderProvider: Send + Sync + 'static {
    /// The headers for the next attempt or request. An error fails that attempt (it is
    /// retried with backoff).
    async fn headers(&self) -> Result<HeaderMap, CallbackError>;
}

#[async_trait]
impl<F> HeaderProvider for F
where
    F: Fn() -> HeaderMap + Send + Sync + 'static,
{
    async fn headers(&self) -> Result<HeaderMap, CallbackError> {
        Ok(self())
    }
}

/// How packages offered by the server are handled (only with `AcceptsPackages`).
#[derive(Clone)]
#[non_exhaustive]
pub struct PackagesSettings {
    /// The Agent's package store.
    pub provider: Arc<dyn PackagesStateProvider>,
    /// Download limits, TLS and signature policy.
    pub download: DownloadSettings,
    /// The signature check, if the Agent has one.
    pub verifier: Option<Arc<dyn SignatureVerifier>>,
}

impl PackagesSettings {
    /// Packages kept by `provider`, downloaded with the default [`DownloadSettings`].
    pub fn new(provider: Arc<dyn PackagesStateProvider>) -> Self {
        PackagesSettings {
            provider,
            download: DownloadSettings::default(),
            verifier: None,
        }
    }

    /// Sets the download settings.
    #[must_use]
    pub fn with_download_settings(mut self, download: DownloadSettings) -> Self {
        self.download = download;
        self
    }

    /// Sets the signature check.
    #[must_use]
    pub fn with_signature_verifier(mut self, verifier: Arc<dyn SignatureVerifier>) -> Self {
        self.verifier = Some(verifier);
        self
    }
}

impl fmt::Debug for PackagesSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PackagesSettings")
            .field("download", &self.download)
            .field("verifier", &self.verifier.is_some())
            .finish_non_exhaustive()
    }
}

/// Settings of a [`Client`](crate::Client). Only the server URL is required; everything else
/// has a default and a `with_*` method.
///
/// The URL scheme picks the transport: `ws`/`wss` for WebSocket, `http`/`https` for plain
/// HTTP polling.
///
/// `Debug` prints header names but never header values.
#[non_exhaustive]
pub struct ClientSettings {
    /// The OpAMP server URL (default path `/v1/opamp`).
    pub server_url: String,
    /// Headers sent with every connection attempt and HTTP request.
    pub headers: HeaderMap,
    /// Headers computed for every connection attempt and HTTP request.
    pub header_provider: Option<Arc<dyn HeaderProvider>>,
    /// TLS for `wss://` and `https://`: trusted CAs, client certificate, crypto provider.
    /// Offered connection settings (client certificate, TLS settings) are applied on top of
    /// it by [`OpampConnectionParams::tls_client_settings`](crate::connection_settings::OpampConnectionParams::tls_client_settings).
    pub tls: TlsClientSettings,
    /// An HTTP `CONNECT` proxy to reach the server through (`http://host[:port]` or
    /// `host:port`); `https://` and SOCKS proxies are refused when the client starts. The
    /// server may offer another one in OpAMP connection settings.
    pub proxy: Option<ProxyParams>,
    /// The instance UID. `None`: the persisted one, else a new UUIDv7 (then persisted).
    pub instance_uid: Option<InstanceUid>,
    /// Ask the server to assign the instance UID (`RequestInstanceUid`).
    pub request_instance_uid: bool,
    /// The Agent's capabilities (`ReportsStatus` is always set).
    pub capabilities: AgentCapabilities,
    /// The agent description (spec §"AgentDescription Message").
    pub agent_description: Option<AgentDescription>,
    /// The initial health (needs `ReportsHealth`).
    pub health: Option<ComponentHealth>,
    /// The initial remote config status, when no persisted one exists (needs
    /// `ReportsRemoteConfig`).
    pub remote_config_status: Option<RemoteConfigStatus>,
    /// The Agent's custom capabilities (spec §"CustomCapabilities").
    pub custom_capabilities: Vec<String>,
    /// The available components (needs `ReportsAvailableComponents`).
    pub available_components: Option<AvailableComponents>,
    /// Heartbeat interval (WebSocket, with `ReportsHeartbeat`) and polling interval (plain
    /// HTTP). An interval offered by the server wins (with `ReportsHeartbeat`); an offered
    /// `0` disables WebSocket heartbeats, while plain HTTP keeps polling at this interval
    /// (spec §"OpAMPConnectionSettings.heartbeat_interval_seconds"). Default 30 s.
    pub heartbeat_interval: Duration,
    /// Delays between failed attempts. Default [`ExponentialBackoff`].
    pub backoff: Box<dyn BackoffPolicy>,
    /// The least delay after an HTTP 429/503 without `Retry-After`. Default 30 s (spec
    /// §"Throttling").
    pub min_throttle_delay: Duration,
    /// Largest message sent or received. Default 64 MiB.
    pub max_message_size: usize,
    /// Gzip plain-HTTP request bodies. Default off.
    pub compression: bool,
    /// Limit for opening a connection (TCP, TLS, WebSocket upgrade). Default 30 s.
    pub connect_timeout: Duration,
    /// Limit for one HTTP exchange and for one WebSocket write. Default 30 s.
    pub request_timeout: Duration,
    /// After this long without receiving anything on a WebSocket, a ping is sent. Default
    /// 30 s.
    pub ws_ping_interval: Duration,
    /// After this long without receiving anything (not even a pong), the WebSocket connection
    /// is considered half-open, closed and replaced. Default 75 s.
    pub ws_read_timeout: Duration,
    /// Time allowed, in [`Client::stop`](crate::Client::stop), to deliver `agent_disconnect`
    /// and close. Default 5 s.
    pub stop_timeout: Duration,
    /// Where to persist state across restarts. Default none.
    pub state_store: Option<Arc<dyn StateStore>>,
    /// Package handling (with `AcceptsPackages`). Default none: offers only reach
    /// [`Callbacks::on_message`](crate::Callbacks::on_message).
    pub packages: Option<PackagesSettings>,
    /// How OpAMP connection settings offers are merged and checked.
    pub connection_settings: MergeOptions,
    /// Connection attempts with offered settings before reverting. Default 3.
    pub connection_settings_attempts: u32,
}

impl fmt::Debug for ClientSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header_names: Vec<&str> = self.headers.keys().map(HeaderName::as_str).collect();
        f.debug_struct("ClientSettings")
            .field("server_url", &self.server_url)
            .field("headers", &header_names)
            .field("header_provider", &self.header_provider.is_some())
            .field("tls", &self.tls)
            .field("proxy", &self.proxy)
            .field("instance_uid", &self.instance_uid)
            .field("request_instance_uid", &self.request_instance_uid)
            .field("capabilities", &self.capabilities)
            .field("agent_description", &self.agent_description)
            .field("custom_capabilities", &self.custom_capabilities)
            .field("heartbeat_interval", &self.heartbeat_interval)
            .field("backoff", &self.backoff)
            .field("min_throttle_delay", &self.min_throttle_delay)
            .field("max_message_size", &self.max_message_size)
            .field("compression", &self.compression)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("ws_ping_interval", &self.ws_ping_interval)
            .field("ws_read_timeout", &self.ws_read_timeout)
            .field("stop_timeout", &self.stop_timeout)
            .field("state_store", &self.state_store)
            .field("packages", &self.packages)
            .field("connection_settings", &self.connection_settings)
            .finish_non_exhaustive()
    }
}

impl ClientSettings {
    /// Settings for the server at `server_url`, with every default.
    pub fn new(server_url: impl Into<String>) -> Self {
        ClientSettings {
            server_url: server_url.into(),
            headers: HeaderMap::new(),
            header_provider: None,
            tls: TlsClientSettings::default(),
            proxy: None,
            instance_uid: None,
            request_instance_uid: false,
            capabilities: AgentCapabilities::REPORTS_STATUS,
            agent_description: None,
            health: None,
            remote_config_status: None,
            custom_capabilities: Vec::new(),
            available_components: None,
            heartbeat_interval: DEFAULT_HEARTBEAT_INTERVAL,
            backoff: Box::new(ExponentialBackoff::new()),
            min_throttle_delay: DEFAULT_MIN_THROTTLE_DELAY,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            compression: false,
            connect_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(30),
            ws_ping_interval: Duration::from_secs(30),
            ws_read_timeout: Duration::from_secs(75),
            stop_timeout: Duration::from_secs(5),
            state_store: None,
            packages: None,
            connection_settings: MergeOptions::default(),
            connection_settings_attempts:
                crate::connection_settings::DEFAULT_MAX_CANDIDATE_ATTEMPTS,
        }
    }

    /// Adds a static header (see [`try_with_header`](Self::try_with_header) for strings).
    #[must_use]
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.append(name, value);
        self
    }

    /// Adds a static header given as strings, checking that they are valid HTTP.
    pub fn try_with_header(mut self, name: &str, value: &str) -> Result<Self, crate::Error> {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| crate::Error::InvalidSettings(format!("invalid header name {name:?}")))?;
        let value = HeaderValue::from_str(value).map_err(|_| {
            crate::Error::InvalidSettings(format!("invalid value for header {name}"))
        })?;
        self.headers.append(name, value);
        Ok(self)
    }

    /// Replaces the static headers.
    #[must_use]
    pub fn with_headers(mut self, headers: HeaderMap) -> Self {
        self.headers = headers;
        self
    }

    /// Sets the header provider, called for every connection attempt and HTTP request.
    #[must_use]
    pub fn with_header_provider(mut self, provider: impl HeaderProvider) -> Self {
        self.header_provider = Some(Arc::new(provider));
        self
    }

    /// Sets the TLS settings.
    #[must_use]
    pub fn with_tls(mut self, tls: TlsClientSettings) -> Self {
        self.tls = tls;
        self
    }

    /// Connects through an HTTP `CONNECT` proxy.
    #[must_use]
    pub fn with_proxy(mut self, proxy: ProxyParams) -> Self {
        self.proxy = Some(proxy);
        self
    }

    /// Sets the instance UID.
    #[must_use]
    pub fn with_instance_uid(mut self, uid: InstanceUid) -> Self {
        self.instance_uid = Some(uid);
        self
    }

    /// Asks the server to assign the instance UID.
    #[must_use]
    pub fn with_request_instance_uid(mut self, request: bool) -> Self {
        self.request_instance_uid = request;
        self
    }

    /// Sets the capabilities (`ReportsStatus` is added).
    #[must_use]
    pub fn with_capabilities(mut self, capabilities: AgentCapabilities) -> Self {
        self.capabilities = capabilities | AgentCapabilities::REPORTS_STATUS;
        self
    }

    /// Sets the agent description.
    #[must_use]
    pub fn with_agent_description(mut self, description: AgentDescription) -> Self {
        self.agent_description = Some(description);
        self
    }

    /// Sets the initial health.
    #[must_use]
    pub fn with_health(mut self, health: ComponentHealth) -> Self {
        self.health = Some(health);
        self
    }

    /// Sets the initial remote config status.
    #[must_use]
    pub fn with_remote_config_status(mut self, status: RemoteConfigStatus) -> Self {
        self.remote_config_status = Some(status);
        self
    }

    /// Sets the custom capabilities.
    #[must_use]
    pub fn with_custom_capabilities(
        mut self,
        capabilities: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.custom_capabilities = capabilities.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the available components.
    #[must_use]
    pub fn with_available_components(mut self, components: AvailableComponents) -> Self {
        self.available_components = Some(components);
        self
    }

    /// Sets the heartbeat / polling interval.
    #[must_use]
    pub fn with_heartbeat_interval(mut self, interval: Duration) -> Self {
        self.heartbeat_interval = interval;
        self
    }

    /// Sets the backoff policy.
    #[must_use]
    pub fn with_backoff(mut self, backoff: impl BackoffPolicy + 'static) -> Self {
        self.backoff = Box::new(backoff);
        self
    }

    /// Sets the least delay after a throttling answer without `Retry-After`.
    #[must_use]
    pub fn with_min_throttle_delay(mut self, delay: Duration) -> Self {
        self.min_throttle_delay = delay;
        self
    }

    /// Sets the message size limit.
    #[must_use]
    pub fn with_max_message_size(mut self, size: usize) -> Self {
        self.max_message_size = size;
        self
    }

    /// Gzips plain-HTTP request bodies.
    #[must_use]
    pub fn with_compression(mut self, compression: bool) -> Self {
        self.compression = compression;
        self
    }

    /// Sets the connect timeout.
    #[must_use]
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets the HTTP exchange / WebSocket write timeout.
    #[must_use]
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Sets the WebSocket liveness check: a ping after `ping_interval` of silence, and the
    /// connection replaced after `read_timeout` of silence.
    #[must_use]
    pub fn with_ws_liveness(mut self, ping_interval: Duration, read_timeout: Duration) -> Self {
        self.ws_ping_interval = ping_interval;
        self.ws_read_timeout = read_timeout;
        self
    }

    /// Sets the time allowed to deliver `agent_disconnect` on stop.
    #[must_use]
    pub fn with_stop_timeout(mut self, timeout: Duration) -> Self {
        self.stop_timeout = timeout;
        self
    }

    /// Sets the persistence hook.
    #[must_use]
    pub fn with_state_store(mut self, store: Arc<dyn StateStore>) -> Self {
        self.state_store = Some(store);
        self
    }

    /// Sets package handling.
    #[must_use]
    pub fn with_packages(mut self, packages: PackagesSettings) -> Self {
        self.packages = Some(packages);
        self
    }

    /// Sets how OpAMP connection settings offers are merged and checked.
    #[must_use]
    pub fn with_connection_settings_options(mut self, options: MergeOptions) -> Self {
        self.connection_settings = options;
        self
    }

    /// Sets how many connection attempts offered settings get before they are reverted.
    #[must_use]
    pub fn with_connection_settings_attempts(mut self, attempts: u32) -> Self {
        self.connection_settings_attempts = attempts.max(1);
        self
    }

    /// Checks what can be checked before starting: the URL scheme, the proxy
    /// ([`ConnectionSettingsError::UnsupportedProxy`](crate::connection_settings::ConnectionSettingsError::UnsupportedProxy)
    /// in [`Error::ConnectionSettings`](crate::Error::ConnectionSettings) for `https://` and
    /// SOCKS proxies), header values usable as text, interval sanity.
    pub(crate) fn validate(&self) -> Result<(), crate::Error> {
        crate::driver::transport_of(&self.server_url)?;
        if let Some(proxy) = &self.proxy {
            proxy.validate()?;
        }
        for (name, value) in &self.headers {
            if value.to_str().is_err() {
                return Err(crate::Error::InvalidSettings(format!(
                    "header {name} is not visible ASCII text"
                )));
            }
        }
        if self.ws_read_timeout <= self.ws_ping_interval {
            return Err(crate::Error::InvalidSettings(
                "ws_read_timeout must be longer than ws_ping_interval".into(),
            ));
        }
        if self.max_message_size == 0 {
            return Err(crate::Error::InvalidSettings(
                "max_message_size must not be 0".into(),
            ));
        }
        Ok(())
    }
}
