//! The agent's local package store, as the syncer sees it.

use std::path::{Path, PathBuf};

use async_trait::async_trait;

use super::PackagesError;
use crate::proto::{PackageStatuses, PackageType};

/// What the agent has of one package.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PackageState {
    /// Top-level or add-on.
    pub package_type: PackageType,
    /// The package hash offered by the server when this version was installed (opaque).
    pub hash: Vec<u8>,
    /// The version installed.
    pub version: String,
}

impl PackageState {
    /// A package of `package_type` with no content yet (empty hash and version).
    pub fn new(package_type: PackageType) -> Self {
        Self {
            package_type,
            hash: Vec::new(),
            version: String::new(),
        }
    }

    /// Sets the package hash.
    #[must_use]
    pub fn with_hash(mut self, hash: impl Into<Vec<u8>>) -> Self {
        self.hash = hash.into();
        self
    }

    /// Sets the version.
    #[must_use]
    pub fn with_version(mut self, version: impl Into<String>) -> Self {
        self.version = version.into();
        self
    }
}

/// A downloaded package file, already verified: its SHA-256 equals `content_hash`, and its
/// signature passed the [`SignatureVerifier`](super::SignatureVerifier) (or signatures are
/// not required).
///
/// The file lives in the provider's [`download_dir`](PackagesStateProvider::download_dir);
/// a provider may read it ([`PackageContent::open`]) or move it away (rename). The syncer
/// deletes it after [`PackagesStateProvider::update_content`] returns, if it is still there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageContent {
    pub(crate) path: PathBuf,
    pub(crate) len: u64,
    pub(crate) content_hash: Vec<u8>,
    pub(crate) signature: Vec<u8>,
    pub(crate) download_url: String,
}

impl PackageContent {
    /// Describes a verified file (for providers' own tests and wrappers).
    pub fn new(
        path: impl Into<PathBuf>,
        len: u64,
        content_hash: impl Into<Vec<u8>>,
        signature: impl Into<Vec<u8>>,
        download_url: impl Into<String>,
    ) -> Self {
        Self {
            path: path.into(),
            len,
            content_hash: content_hash.into(),
            signature: signature.into(),
            download_url: download_url.into(),
        }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its size in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the file is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The SHA-256 of the content, as offered (and verified).
    pub fn content_hash(&self) -> &[u8] {
        &self.content_hash
    }

    /// The offered signature (may be empty).
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }

    /// Where it was downloaded from (its suffix, e.g. `.tar.gz`, may tell how to unpack it).
    pub fn download_url(&self) -> &str {
        &self.download_url
    }

    /// Opens the file for reading, as a stream.
    pub async fn open(&self) -> Result<tokio::fs::File, PackagesError> {
        tokio::fs::File::open(&self.path)
            .await
            .map_err(|e| PackagesError::io("open", &self.path, e))
    }
}

/// The agent's local package state, queried and updated by the
/// [`PackageSyncer`](super::PackageSyncer) (modelled on opamp-go's `PackagesStateProvider`).
///
/// State should be persistent so that a restarted agent does not download everything again.
/// [`FsPackagesStateProvider`](super::FsPackagesStateProvider) keeps it in a directory.
/// The syncer calls one method at a time.
#[async_trait]
pub trait PackagesStateProvider: Send + Sync {
    /// The all-packages hash stored by [`set_all_packages_hash`](Self::set_all_packages_hash)
    /// (empty if none).
    async fn all_packages_hash(&self) -> Result<Vec<u8>, PackagesError>;

    /// Remembers the all-packages hash; called only after every package synced successfully.
    async fn set_all_packages_hash(&self, hash: &[u8]) -> Result<(), PackagesError>;

    /// Names of all packages the agent has.
    async fn packages(&self) -> Result<Vec<String>, PackagesError>;

    /// The state of a package, `None` if the agent does not have it.
    async fn package_state(&self, name: &str) -> Result<Option<PackageState>, PackagesError>;

    /// Remembers the state of an existing package; called after its content was updated.
    async fn set_package_state(
        &self,
        name: &str,
        state: &PackageState,
    ) -> Result<(), PackagesError>;

    /// Creates an empty package (empty hash, no content). Fails if it exists.
    async fn create_package(
        &self,
        name: &str,
        package_type: PackageType,
    ) -> Result<(), PackagesError>;

    /// The content hash of the package's file, `None` if the package or its file is missing.
    async fn file_content_hash(&self, name: &str) -> Result<Option<Vec<u8>>, PackagesError>;

    /// Replaces the package's content with `content` (already verified) and records its
    /// content hash. Must be all-or-nothing: on error the previous content stays.
    async fn update_content(
        &self,
        name: &str,
        content: &PackageContent,
    ) -> Result<(), PackagesError>;

    /// Deletes a package and its content.
    async fn delete_package(&self, name: &str) -> Result<(), PackagesError>;

    /// The statuses stored by [`set_last_reported_statuses`](Self::set_last_reported_statuses).
    async fn last_reported_statuses(&self) -> Result<Option<PackageStatuses>, PackagesError>;

    /// Remembers the statuses last reported to the server (called at every status change).
    async fn set_last_reported_statuses(
        &self,
        statuses: &PackageStatuses,
    ) -> Result<(), PackagesError>;

    /// A directory for downloads in progress. Partial files are kept there so that an
    /// interrupted download resumes with an HTTP `Range` request, even after a restart.
    /// It should be on the same file system as the packages so that installing is a rename.
    fn download_dir(&self) -> PathBuf;
}
