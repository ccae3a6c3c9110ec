//! The package syncing flow: from a `PackagesAvailable` offer to installed packages and
//! their statuses.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::{Mutex, watch};
use tokio::time::{Instant, MissedTickBehavior};

use super::download::{self, FileRequest, Progress};
use super::error::error_chain;
use super::provider::{PackageContent, PackageState, PackagesStateProvider};
use super::{DownloadSettings, PackageStatusSink, PackagesError, SignatureVerifier, hex};
use crate::proto::{
    Bytes, DownloadableFile, PackageAvailable, PackageDownloadDetails, PackageStatus,
    PackageStatusEnum, PackageStatuses, PackageType, PackagesAvailable,
};

const PARTIAL_SUFFIX: &str = ".partial";

/// Carries out the spec's package flow (§"Packages", §"Downloading Packages", §"Package
/// Status Reporting") for each `PackagesAvailable` offer:
///
/// 1. If the offer's `all_packages_hash` equals the stored one, nothing is done.
/// 2. Local packages that are not offered any more are deleted.
/// 3. Each offered package whose hash differs from the local one is (re)created if needed
///    (also when its type changed); its file is downloaded unless the local file already has
///    the offered `content_hash`. Downloads go over HTTP or HTTPS with the offer's headers,
///    stream to disk, resume with `Range` after an interruption, and are checked against the
///    SHA-256 `content_hash` and the signature hook before the provider installs them.
/// 4. The all-packages hash is stored only when every package succeeded, so a failed
///    package is retried on the next offer.
///
/// Statuses go to the [`PackageStatusSink`] (and the provider's last-reported statuses) at
/// each step: `InstallPending` for every package to process, then per package
/// `Downloading` with `download_details` (percent, bytes per second) every
/// [`progress_interval`](DownloadSettings::progress_interval), `Installing`, and
/// `Installed` or `InstallFailed` with the error.
///
/// One sync runs at a time; a second call waits for the first. Dropping the future of
/// [`sync`](Self::sync) cancels it; a partial download stays on disk and resumes next time.
///
/// ```no_run
/// # async fn demo(offer: opamp_client::proto::PackagesAvailable) -> Result<(), opamp_client::packages::PackagesError> {
/// use std::sync::Arc;
/// use opamp_client::packages::{DownloadSettings, FsPackagesStateProvider, PackageSyncer};
/// use opamp_client::proto::PackageStatuses;
///
/// let provider = FsPackagesStateProvider::open("/var/lib/my-agent/packages").await?;
/// let (statuses_tx, mut statuses_rx) = tokio::sync::watch::channel(PackageStatuses::default());
/// let syncer = PackageSyncer::new(Arc::new(provider), Arc::new(statuses_tx))
///     .with_settings(DownloadSettings::default().with_require_signature(false));
/// let report = syncer.sync(&offer).await?;
/// println!("all installed: {}", report.all_succeeded());
/// # Ok(()) }
/// ```
pub struct PackageSyncer {
    provider: Arc<dyn PackagesStateProvider>,
    sink: Arc<dyn PackageStatusSink>,
    settings: DownloadSettings,
    verifier: Option<Arc<dyn SignatureVerifier>>,
    running: Mutex<()>,
}

impl std::fmt::Debug for PackageSyncer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackageSyncer")
            .field("settings", &self.settings)
            .field("verifier", &self.verifier.is_some())
            .finish_non_exhaustive()
    }
}

/// The result of [`PackageSyncer::sync`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SyncReport {
    /// The final statuses (also sent to the sink).
    pub statuses: PackageStatuses,
    /// The all-packages hash was unchanged: nothing was done.
    pub skipped: bool,
    /// Packages that failed to install, by name.
    pub failed: Vec<String>,
    /// An error that concerns no single package (e.g. a package could not be deleted).
    pub error: Option<String>,
}

impl SyncReport {
    /// Whether every package is installed as offered (and the all-packages hash stored).
    pub fn all_succeeded(&self) -> bool {
        self.failed.is_empty() && self.error.is_none()
    }
}

impl PackageSyncer {
    /// A syncer over `provider` that reports statuses to `sink`, with default
    /// [`DownloadSettings`] and no signature verifier.
    pub fn new(provider: Arc<dyn PackagesStateProvider>, sink: Arc<dyn PackageStatusSink>) -> Self {
        Self {
            provider,
            sink,
            settings: DownloadSettings::default(),
            verifier: None,
            running: Mutex::new(()),
        }
    }

    /// Sets the download settings.
    #[must_use]
    pub fn with_settings(mut self, settings: DownloadSettings) -> Self {
        self.settings = settings;
        self
    }

    /// Sets the signature verifier.
    #[must_use]
    pub fn with_signature_verifier(mut self, verifier: Arc<dyn SignatureVerifier>) -> Self {
        self.verifier = Some(verifier);
        self
    }

    /// The provider.
    pub fn provider(&self) -> &Arc<dyn PackagesStateProvider> {
        &self.provider
    }

    /// The statuses last reported (e.g. for the first status report after a restart).
    pub async fn last_reported_statuses(&self) -> Result<Option<PackageStatuses>, PackagesError> {
        self.provider.last_reported_statuses().await
    }

    /// Syncs the local packages with `available`. Per-package failures are reported in the
    /// statuses and listed in the [`SyncReport`]; an `Err` means the sync could not run at
    /// all (the provider failed), and is also reported in `PackageStatuses.error_message`.
    pub async fn sync(&self, available: &PackagesAvailable) -> Result<SyncReport, PackagesError> {
        let _running = self.running.lock().await;
        let loaded = self.provider.last_reported_statuses().await.unwrap_or_else(|error| {
            tracing::warn!(error = %error_chain(&error), "cannot read the last reported package statuses");
            None
        });
        let mut run = Run {
            syncer: self,
            statuses: loaded.clone().unwrap_or_default(),
            failed: Vec::new(),
            error: None,
        };
        run.statuses.server_provided_all_packages_hash = available.all_packages_hash.clone();
        run.statuses.error_message.clear();

        match run.execute(available).await {
            Ok(skipped) => {
                if !skipped || loaded.as_ref() != Some(&run.statuses) {
                    run.report().await;
                }
                Ok(SyncReport {
                    statuses: run.statuses,
                    skipped,
                    failed: run.failed,
                    error: run.error,
                })
            }
            Err(error) => {
                let message = error_chain(&error);
                tracing::error!(error = %message, "package sync failed");
                run.statuses.error_message = message;
                run.report().await;
                Err(error)
            }
        }
    }
}

/// One sync in progress.
struct Run<'a> {
    syncer: &'a PackageSyncer,
    statuses: PackageStatuses,
    failed: Vec<String>,
    error: Option<String>,
}

impl Run<'_> {
    fn provider(&self) -> &dyn PackagesStateProvider {
        self.syncer.provider.as_ref()
    }

    /// Saves and sends the current statuses.
    async fn report(&self) {
        if let Err(error) = self
            .provider()
            .set_last_reported_statuses(&self.statuses)
            .await
        {
            tracing::warn!(error = %error_chain(&error), "cannot save the package statuses");
        }
        self.syncer.sink.report(self.statuses.clone()).await;
    }

    fn status_mut(&mut self, name: &str) -> &mut PackageStatus {
        self.statuses
            .packages
            .entry(name.to_owned())
            .or_insert_with(|| PackageStatus {
                name: name.to_owned(),
                ..Default::default()
            })
    }

    fn set_status(&mut self, name: &str, status: PackageStatusEnum, error: &str) {
        let entry = self.status_mut(name);
        entry.status = status as i32;
        entry.error_message = error.to_owned();
        entry.download_details = None;
    }

    /// Returns whether the offer was skipped (all-packages hash unchanged).
    async fn execute(&mut self, available: &PackagesAvailable) -> Result<bool, PackagesError> {
        let local_hash = self.provider().all_packages_hash().await?;
        if !available.all_packages_hash.is_empty() && local_hash == available.all_packages_hash {
            tracing::debug!("all packages are up to date (all_packages_hash unchanged)");
            return Ok(true);
        }
        tracing::info!(offered = available.packages.len(), "syncing packages");

        self.delete_unoffered(available).await?;
        self.remove_stale_downloads(available).await;

        // Plan: mark what is up to date and what is pending, and say so once.
        let mut pending = Vec::new();
        for (name, offer) in &available.packages {
            let local = self.provider().package_state(name).await?;
            let entry = self.status_mut(name);
            entry.server_offered_version.clone_from(&offer.version);
            entry.server_offered_hash = offer.hash.clone();
            entry.agent_has_version = local
                .as_ref()
                .map(|l| l.version.clone())
                .unwrap_or_default();
            entry.agent_has_hash = local
                .as_ref()
                .map(|l| Bytes::from(l.hash.clone()))
                .unwrap_or_default();
            let up_to_date = local
                .as_ref()
                .is_some_and(|l| !l.hash.is_empty() && l.hash == offer.hash);
            if up_to_date {
                self.set_status(name, PackageStatusEnum::Installed, "");
            } else {
                self.set_status(name, PackageStatusEnum::InstallPending, "");
                pending.push((name.clone(), offer.clone(), local));
            }
        }
        self.report().await;

        for (name, offer, local) in pending {
            tracing::info!(package = %name, version = %offer.version, "installing package");
            match self.sync_package(&name, &offer, local).await {
                Ok(()) => {
                    let entry = self.status_mut(&name);
                    entry.agent_has_version.clone_from(&offer.version);
                    entry.agent_has_hash = offer.hash.clone();
                    self.set_status(&name, PackageStatusEnum::Installed, "");
                    tracing::info!(package = %name, version = %offer.version, "package installed");
                }
                Err(error) => {
                    let message = error_chain(&error);
                    tracing::warn!(package = %name, error = %message, "package installation failed");
                    self.set_status(&name, PackageStatusEnum::InstallFailed, &message);
                    self.failed.push(name.clone());
                }
            }
            self.report().await;
        }

        if self.failed.is_empty() && self.error.is_none() {
            self.provider()
                .set_all_packages_hash(&available.all_packages_hash)
                .await?;
            tracing::info!("all packages synced");
        }
        Ok(false)
    }

    async fn delete_unoffered(
        &mut self,
        available: &PackagesAvailable,
    ) -> Result<(), PackagesError> {
        let mut errors = Vec::new();
        for name in self.provider().packages().await? {
            if available.packages.contains_key(&name) {
                continue;
            }
            tracing::info!(package = %name, "deleting a package that is no longer offered");
            if let Err(error) = self.provider().delete_package(&name).await {
                let message = format!("cannot delete package {name:?}: {}", error_chain(&error));
                tracing::warn!(%message);
                // The agent still has it: keep reporting it.
                if let Ok(Some(state)) = self.provider().package_state(&name).await {
                    let entry = self.status_mut(&name);
                    entry.agent_has_version = state.version;
                    entry.agent_has_hash = Bytes::from(state.hash);
                    entry.server_offered_version.clear();
                    entry.server_offered_hash = Bytes::new();
                    entry.status = PackageStatusEnum::Installed as i32;
                }
                errors.push((name, message));
            }
        }
        let kept: BTreeSet<&String> = errors.iter().map(|(name, _)| name).collect();
        self.statuses
            .packages
            .retain(|name, _| available.packages.contains_key(name) || kept.contains(name));
        if !errors.is_empty() {
            let message = errors
                .into_iter()
                .map(|(_, m)| m)
                .collect::<Vec<_>>()
                .join("; ");
            self.statuses.error_message.clone_from(&message);
            self.error = Some(message);
        }
        Ok(())
    }

    fn download_dir(&self) -> PathBuf {
        self.syncer
            .settings
            .download_dir
            .clone()
            .unwrap_or_else(|| self.provider().download_dir())
    }

    /// Deletes partial downloads of files that are no longer offered (bounded disk use).
    async fn remove_stale_downloads(&self, available: &PackagesAvailable) {
        let dir = self.download_dir();
        let wanted: BTreeSet<String> = available
            .packages
            .values()
            .filter_map(|p| p.file.as_ref())
            .map(|f| partial_name(&f.content_hash))
            .collect();
        let Ok(mut entries) = tokio::fs::read_dir(&dir).await else {
            return;
        };
        while let Ok(Some(entry)) = entries.next_entry().await {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(PARTIAL_SUFFIX) && !wanted.contains(&name) {
                tracing::debug!(file = %name, "removing a stale partial download");
                let _ = tokio::fs::remove_file(entry.path()).await;
            }
        }
    }

    async fn sync_package(
        &mut self,
        name: &str,
        offer: &PackageAvailable,
        local: Option<PackageState>,
    ) -> Result<(), PackagesError> {
        let package_type =
            PackageType::try_from(offer.r#type).map_err(|_| PackagesError::InvalidPackageName {
                name: name.to_owned(),
                reason: "the offered package type is unknown",
            })?;
        match &local {
            Some(state) if state.package_type != package_type => {
                tracing::info!(package = %name, "package type changed; re-creating the package");
                self.provider().delete_package(name).await?;
                self.provider().create_package(name, package_type).await?;
                let entry = self.status_mut(name);
                entry.agent_has_version.clear();
                entry.agent_has_hash = Bytes::new();
            }
            Some(_) => {}
            None => self.provider().create_package(name, package_type).await?,
        }

        let file = offer.file.as_ref().ok_or(PackagesError::NoFile)?;
        let sha256: [u8; 32] = file
            .content_hash
            .as_ref()
            .try_into()
            .map_err(|_| PackagesError::InvalidContentHash(file.content_hash.len()))?;
        let have = self.provider().file_content_hash(name).await?;
        if have.as_deref() == Some(file.content_hash.as_ref()) {
            tracing::debug!(package = %name, "package file unchanged; not downloading");
            self.set_status(name, PackageStatusEnum::Installing, "");
            self.report().await;
        } else {
            self.download_and_install(name, file, sha256).await?;
        }
        let state = PackageState::new(package_type)
            .with_hash(offer.hash.to_vec())
            .with_version(offer.version.clone());
        self.provider().set_package_state(name, &state).await
    }

    async fn download_and_install(
        &mut self,
        name: &str,
        file: &DownloadableFile,
        sha256: [u8; 32],
    ) -> Result<(), PackagesError> {
        let dir = self.download_dir();
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| PackagesError::io("create", &dir, e))?;
        let dest = dir.join(partial_name(&file.content_hash));
        let headers: Vec<(String, String)> = file
            .headers
            .iter()
            .flat_map(|h| &h.headers)
            .map(|h| (h.key.clone(), h.value.clone()))
            .collect();

        self.set_status(name, PackageStatusEnum::Downloading, "");
        self.status_mut(name).download_details = Some(PackageDownloadDetails::default());
        self.report().await;

        let request = FileRequest {
            url: &file.download_url,
            headers: &headers,
            sha256,
            dest: &dest,
        };
        let len = self.download_with_progress(name, &request).await?;

        let verified = self.check_signature(name, &dest, file).await;
        if let Err(error) = verified {
            let _ = tokio::fs::remove_file(&dest).await;
            return Err(error);
        }

        self.set_status(name, PackageStatusEnum::Installing, "");
        self.report().await;
        let content = PackageContent::new(
            &dest,
            len,
            file.content_hash.to_vec(),
            file.signature.to_vec(),
            file.download_url.clone(),
        );
        let result = self.provider().update_content(name, &content).await;
        if let Err(error) = tokio::fs::remove_file(&dest).await
            && error.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(%error, file = %dest.display(), "cannot remove a verified download");
        }
        result
    }

    /// Runs the download while reporting `Downloading` details every progress interval.
    async fn download_with_progress(
        &mut self,
        name: &str,
        request: &FileRequest<'_>,
    ) -> Result<u64, PackagesError> {
        let settings = self.syncer.settings.clone();
        let interval = settings.progress_interval;
        let (progress_tx, progress_rx) = watch::channel(Progress::default());
        let download = download::download(request, &settings, &progress_tx);
        tokio::pin!(download);
        let mut ticker = tokio::time::interval_at(Instant::now() + interval, interval);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut last = (Instant::now(), 0u64);
        loop {
            tokio::select! {
                result = &mut download => return result,
                _ = ticker.tick() => {
                    let progress = *progress_rx.borrow();
                    let now = Instant::now();
                    let elapsed = now.duration_since(last.0).as_secs_f64();
                    let bytes_per_second = if elapsed > 0.0 {
                        progress.transferred.saturating_sub(last.1) as f64 / elapsed
                    } else {
                        0.0
                    };
                    last = (now, progress.transferred);
                    let percent = progress
                        .total
                        .filter(|t| *t > 0)
                        .map_or(0.0, |t| (progress.downloaded as f64 / t as f64 * 100.0).min(100.0));
                    tracing::info!(
                        package = %name,
                        downloaded = progress.downloaded,
                        total = ?progress.total,
                        percent = format_args!("{percent:.1}"),
                        bytes_per_second = format_args!("{bytes_per_second:.0}"),
                        "downloading package"
                    );
                    self.status_mut(name).download_details = Some(PackageDownloadDetails {
                        download_percent: percent,
                        download_bytes_per_second: bytes_per_second,
                    });
                    self.report().await;
                }
            }
        }
    }

    async fn check_signature(
        &self,
        name: &str,
        path: &Path,
        file: &DownloadableFile,
    ) -> Result<(), PackagesError> {
        let require = self.syncer.settings.require_signature;
        match (&self.syncer.verifier, file.signature.is_empty()) {
            (_, true) if require => Err(PackagesError::Unsigned),
            (_, true) => Ok(()),
            (Some(verifier), false) => verifier
                .verify(name, path, &file.content_hash, &file.signature)
                .await
                .map_err(PackagesError::Signature),
            (None, false) if require => Err(PackagesError::NoVerifier),
            (None, false) => {
                tracing::warn!(package = %name, "package is signed but no signature verifier is configured; signature not checked");
                Ok(())
            }
        }
    }
}

fn partial_name(content_hash: &[u8]) -> String {
    format!("{}{PARTIAL_SUFFIX}", hex::encode(content_hash))
}
