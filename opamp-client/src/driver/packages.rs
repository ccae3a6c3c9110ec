//! The package task: runs the [`PackageSyncer`] for the latest `PackagesAvailable` offer, one
//! sync at a time, and feeds the statuses it reports into the client state.

use std::sync::{Arc, Weak};

use async_trait::async_trait;
use opamp_proto::{AgentCapabilities, PackageStatusEnum, PackageStatuses, PackagesAvailable};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::Shared;
use crate::packages::{PackageStatusSink, PackageSyncer};
use crate::settings::PackagesSettings;

/// Puts reported statuses into the state (they become `AgentToServer.package_statuses`).
struct StateSink(Weak<Shared>);

#[async_trait]
impl PackageStatusSink for StateSink {
    async fn report(&self, statuses: PackageStatuses) {
        let Some(shared) = self.0.upgrade() else {
            return;
        };
        let result = shared.state().set_package_statuses(statuses);
        match result {
            Ok(()) => shared.wake(),
            Err(err) => tracing::debug!(%err, "package statuses not reported"),
        }
    }
}

pub(super) struct PackageTask {
    offers: watch::Sender<Option<PackagesAvailable>>,
    handle: JoinHandle<()>,
}

impl PackageTask {
    /// Restores the statuses last reported (the spec wants every package the Agent has in
    /// them) and starts the task.
    pub(super) async fn start(settings: PackagesSettings, shared: &Arc<Shared>) -> Self {
        let sink: Arc<dyn PackageStatusSink> = Arc::new(StateSink(Arc::downgrade(shared)));
        let mut syncer =
            PackageSyncer::new(settings.provider, sink).with_settings(settings.download);
        if let Some(verifier) = settings.verifier {
            syncer = syncer.with_signature_verifier(verifier);
        }
        let reports = shared
            .state()
            .capabilities()
            .contains(AgentCapabilities::REPORTS_PACKAGE_STATUSES);
        if reports {
            match syncer.last_reported_statuses().await {
                Ok(Some(mut statuses)) => {
                    // A sync cut short (the process was killed while a package was pending,
                    // downloading or installing) never finished: forget the offer's hash, so
                    // that the server sees a difference and offers the packages again (spec
                    // §"Packages"); otherwise neither side would ever resume it.
                    let unfinished = statuses.packages.values().any(|p| {
                        matches!(
                            p.status(),
                            PackageStatusEnum::InstallPending
                                | PackageStatusEnum::Installing
                                | PackageStatusEnum::Downloading
                        )
                    });
                    if unfinished {
                        statuses.server_provided_all_packages_hash = Default::default();
                    }
                    let _ = shared.state().set_package_statuses(statuses);
                }
                Ok(None) => {}
                Err(err) => tracing::warn!(%err, "cannot read the last package statuses"),
            }
        }
        let (offers, mut rx) = watch::channel::<Option<PackagesAvailable>>(None);
        let handle = tokio::spawn(async move {
            while rx.changed().await.is_ok() {
                let offer = rx.borrow_and_update().clone();
                let Some(offer) = offer else {
                    continue;
                };
                match syncer.sync(&offer).await {
                    Ok(report) if report.all_succeeded() => {
                        tracing::info!(skipped = report.skipped, "packages in sync");
                    }
                    Ok(report) => tracing::warn!(
                        failed = ?report.failed,
                        error = ?report.error,
                        "some packages could not be installed"
                    ),
                    Err(err) => tracing::error!(%err, "package sync failed"),
                }
            }
        });
        PackageTask { offers, handle }
    }

    /// Hands the latest offer to the task (an offer still waiting is replaced).
    pub(super) fn offer(&self, available: PackagesAvailable) {
        self.offers.send_replace(Some(available));
    }

    /// Cancels a sync in progress and waits for the task to end.
    pub(super) async fn shutdown(self) {
        self.handle.abort();
        let _ = self.handle.await;
    }
}
