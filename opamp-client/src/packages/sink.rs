//! Where the syncer sends package statuses as they change.

use async_trait::async_trait;
use tokio::sync::{mpsc, watch};

use crate::proto::PackageStatuses;

/// Receives the complete [`PackageStatuses`] each time they change during a sync, for the
/// client to put into its next `AgentToServer.package_statuses`.
///
/// Implemented for a [`watch::Sender`] (the latest statuses replace the previous ones: the
/// natural fit for OpAMP's "one pending status" rule, and never blocks) and for a bounded
/// [`mpsc::Sender`] (waits for room: the sync slows down to the consumer's pace).
#[async_trait]
pub trait PackageStatusSink: Send + Sync {
    /// Takes the current statuses.
    async fn report(&self, statuses: PackageStatuses);
}

#[async_trait]
impl PackageStatusSink for watch::Sender<PackageStatuses> {
    async fn report(&self, statuses: PackageStatuses) {
        self.send_replace(statuses);
    }
}

#[async_trait]
impl PackageStatusSink for watch::Sender<Option<PackageStatuses>> {
    async fn report(&self, statuses: PackageStatuses) {
        self.send_replace(Some(statuses));
    }
}

#[async_trait]
impl PackageStatusSink for mpsc::Sender<PackageStatuses> {
    async fn report(&self, statuses: PackageStatuses) {
        if self.send(statuses).await.is_err() {
            tracing::debug!("package status receiver dropped; status not delivered");
        }
    }
}
