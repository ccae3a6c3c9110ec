//! Settings of package downloads.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use opamp_transport::tls::rustls::ClientConfig;

/// How packages are downloaded and checked.
///
/// Every timeout, retry and size is bounded; the defaults suit packages of up to a few
/// hundred MiB over slow links.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DownloadSettings {
    /// Time allowed to open the TCP connection and complete the TLS handshake. Default 10 s.
    pub connect_timeout: Duration,
    /// Longest wait for the response head or for the next piece of the body. Default 30 s.
    pub read_timeout: Duration,
    /// How often `Downloading` statuses with download details are reported. Default 5 s.
    pub progress_interval: Duration,
    /// Attempts per file before it is given up (each retry resumes with `Range`). Default 5.
    pub max_attempts: u32,
    /// Backoff before the first retry; doubled for each further one. Default 1 s.
    pub retry_initial_backoff: Duration,
    /// Longest backoff between retries (also caps a server's `Retry-After`). Default 60 s.
    pub retry_max_backoff: Duration,
    /// Largest package file accepted. Default 4 GiB.
    pub max_package_size: u64,
    /// Redirects followed per request. Default 5. The offer's headers are only sent to the
    /// origin (scheme, host, port) of the offered URL.
    pub max_redirects: u32,
    /// Refuse packages without a signature (and require a
    /// [`SignatureVerifier`](super::SignatureVerifier)). Default `false`.
    pub require_signature: bool,
    /// TLS configuration for `https` downloads; `None` builds one from
    /// `opamp_transport::tls::TlsClientSettings::default()` (the default roots).
    pub tls_config: Option<Arc<ClientConfig>>,
    /// Where partial downloads are kept; `None` uses the provider's
    /// [`download_dir`](super::PackagesStateProvider::download_dir).
    pub download_dir: Option<PathBuf>,
}

impl Default for DownloadSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            progress_interval: Duration::from_secs(5),
            max_attempts: 5,
            retry_initial_backoff: Duration::from_secs(1),
            retry_max_backoff: Duration::from_secs(60),
            max_package_size: 4 * 1024 * 1024 * 1024,
            max_redirects: 5,
            require_signature: false,
            tls_config: None,
            download_dir: None,
        }
    }
}

impl DownloadSettings {
    /// Sets [`DownloadSettings::connect_timeout`].
    #[must_use]
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets [`DownloadSettings::read_timeout`].
    #[must_use]
    pub fn with_read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = timeout;
        self
    }

    /// Sets [`DownloadSettings::progress_interval`] (at least 10 ms).
    #[must_use]
    pub fn with_progress_interval(mut self, interval: Duration) -> Self {
        self.progress_interval = interval.max(Duration::from_millis(10));
        self
    }

    /// Sets [`DownloadSettings::max_attempts`] (at least 1).
    #[must_use]
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// Sets the retry backoff bounds.
    #[must_use]
    pub fn with_retry_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.retry_initial_backoff = initial;
        self.retry_max_backoff = max.max(initial);
        self
    }

    /// Sets [`DownloadSettings::max_package_size`].
    #[must_use]
    pub fn with_max_package_size(mut self, bytes: u64) -> Self {
        self.max_package_size = bytes;
        self
    }

    /// Sets [`DownloadSettings::max_redirects`].
    #[must_use]
    pub fn with_max_redirects(mut self, redirects: u32) -> Self {
        self.max_redirects = redirects;
        self
    }

    /// Sets [`DownloadSettings::require_signature`].
    #[must_use]
    pub fn with_require_signature(mut self, require: bool) -> Self {
        self.require_signature = require;
        self
    }

    /// Sets [`DownloadSettings::tls_config`].
    #[must_use]
    pub fn with_tls_config(mut self, config: Arc<ClientConfig>) -> Self {
        self.tls_config = Some(config);
        self
    }

    /// Sets [`DownloadSettings::download_dir`].
    #[must_use]
    pub fn with_download_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.download_dir = Some(dir.into());
        self
    }
}
