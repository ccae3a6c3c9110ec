//! Packages offered by the server: download, verification, installation and status
//! reporting (spec §"Packages", §"Downloading Packages", §"Package Status Reporting",
//! §"Calculating Hashes").
//!
//! * [`PackagesStateProvider`] is the agent's local package store;
//!   [`FsPackagesStateProvider`] keeps it in a directory.
//! * [`PackageSyncer`] carries out the flow for each `PackagesAvailable` offer and reports
//!   [`PackageStatuses`](crate::proto::PackageStatuses) to a [`PackageStatusSink`].
//! * [`DownloadSettings`] bounds downloads (timeouts, retries, size) and sets TLS and the
//!   signature policy; [`SignatureVerifier`] is the agent's signature check.
//!
//! Downloads stream to disk (memory use does not depend on the package size), resume with
//! HTTP `Range` requests after an interruption, and are installed only after their SHA-256
//! matches the offered `content_hash` and their signature passed.

mod download;
mod error;
mod fs;
mod hex;
mod provider;
mod settings;
mod signature;
mod sink;
mod syncer;

pub use error::{BoxError, DownloadError, PackagesError};
pub use fs::FsPackagesStateProvider;
pub use provider::{PackageContent, PackageState, PackagesStateProvider};
pub use settings::DownloadSettings;
pub use signature::SignatureVerifier;
pub use sink::PackageStatusSink;
pub use syncer::{PackageSyncer, SyncReport};
