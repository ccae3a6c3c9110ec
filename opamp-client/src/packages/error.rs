//! Errors of package syncing, package state providers and package downloads.

use std::fmt::Write as _;
use std::io;
use std::path::PathBuf;

/// A boxed error from user code (a custom provider, a signature verifier).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a package could not be synced, stored or downloaded.
///
/// The error text (with its sources) becomes `PackageStatus.error_message` for the package
/// concerned, or `PackageStatuses.error_message` when it concerns no single package.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PackagesError {
    /// A local file operation failed.
    #[error("cannot {action} {}", path.display())]
    Io {
        /// What was being done (`"write"`, `"rename"`, ...).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The name cannot be stored by this provider.
    #[error("invalid package name {name:?}: {reason}")]
    InvalidPackageName {
        /// The name.
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// `create_package` for a package that exists.
    #[error("package {0:?} already exists")]
    AlreadyExists(String),
    /// An operation on a package that does not exist.
    #[error("package {0:?} does not exist")]
    NotFound(String),
    /// Stored state could not be read back.
    #[error("corrupt package state in {}: {reason}", path.display())]
    CorruptState {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A custom [`PackagesStateProvider`](super::PackagesStateProvider) failed.
    #[error("package state provider failed")]
    Provider(#[source] BoxError),
    /// The offer of a package has no `file`.
    #[error("the offer has no downloadable file")]
    NoFile,
    /// The offer's `content_hash` is not a SHA-256 digest.
    #[error("the offered content hash is not a SHA-256 digest ({0} bytes)")]
    InvalidContentHash(usize),
    /// The downloaded content does not have the offered SHA-256 `content_hash`.
    #[error("content hash mismatch: expected {expected}, downloaded content has {actual}")]
    HashMismatch {
        /// The offered hash, hex.
        expected: String,
        /// The hash of what was downloaded, hex.
        actual: String,
    },
    /// The package has no signature and [`DownloadSettings::require_signature`] is set.
    ///
    /// [`DownloadSettings::require_signature`]: super::DownloadSettings::require_signature
    #[error("the package is not signed and unsigned packages are refused")]
    Unsigned,
    /// Signatures are required but no [`SignatureVerifier`](super::SignatureVerifier) is set.
    #[error("signatures are required but no signature verifier is configured")]
    NoVerifier,
    /// The [`SignatureVerifier`](super::SignatureVerifier) rejected the package.
    #[error("signature verification failed")]
    Signature(#[source] BoxError),
    /// Downloading the file failed.
    #[error("download from {url} failed")]
    Download {
        /// The URL (without query string, which may carry credentials).
        url: String,
        /// What went wrong.
        #[source]
        source: DownloadError,
    },
}

impl PackagesError {
    /// Wraps an error of a custom provider.
    pub fn provider(error: impl Into<BoxError>) -> Self {
        PackagesError::Provider(error.into())
    }

    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        PackagesError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

/// Why an HTTP download failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DownloadError {
    /// The URL is not an absolute `http` or `https` URL.
    #[error("invalid URL: {0}")]
    InvalidUrl(&'static str),
    /// An offered header cannot be sent.
    #[error("invalid header {0:?}")]
    InvalidHeader(String),
    /// Connecting (TCP or TLS) failed.
    #[error("cannot connect")]
    Connect(#[source] io::Error),
    /// No TLS configuration could be built for an `https` URL.
    #[error("no TLS configuration")]
    Tls(#[source] BoxError),
    /// A timeout expired.
    #[error("timed out while {0}")]
    Timeout(&'static str),
    /// The HTTP exchange failed (connection reset, truncated response, protocol error).
    #[error("HTTP exchange failed")]
    Http(#[source] BoxError),
    /// The server answered with an unexpected status.
    #[error("HTTP status {0}")]
    Status(u16),
    /// The file is larger than [`DownloadSettings::max_package_size`](super::DownloadSettings::max_package_size).
    #[error("the file is larger than the {limit} bytes allowed")]
    TooLarge {
        /// The limit.
        limit: u64,
    },
    /// A `206 Partial Content` answer whose `Content-Range` does not continue the file.
    #[error("unusable Content-Range {0:?}")]
    BadContentRange(String),
    /// The body ended before `Content-Length` / the range's end.
    #[error("the body ended after {received} of {expected} bytes")]
    Incomplete {
        /// Bytes of the file received in total.
        received: u64,
        /// Bytes expected.
        expected: u64,
    },
    /// More redirects than [`DownloadSettings::max_redirects`](super::DownloadSettings::max_redirects).
    #[error("too many redirects")]
    TooManyRedirects,
    /// A redirect from an `https` URL to a plain `http` one (refused: it would drop the
    /// transport security the offer asked for).
    #[error("refused a redirect from https to http")]
    InsecureRedirect,
    /// Writing the downloaded data failed.
    #[error("cannot write the download to disk")]
    Write(#[source] io::Error),
}

impl DownloadError {
    /// Whether another attempt (resumed with `Range`) may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            DownloadError::Connect(_)
            | DownloadError::Timeout(_)
            | DownloadError::Http(_)
            | DownloadError::BadContentRange(_)
            | DownloadError::Incomplete { .. } => true,
            DownloadError::Status(status) => matches!(status, 408 | 429 | 500 | 502 | 503 | 504),
            _ => false,
        }
    }
}

/// The error and its sources on one line: what is reported in status messages.
pub(crate) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let _ = write!(text, ": {e}");
        source = e.source();
    }
    text
}
