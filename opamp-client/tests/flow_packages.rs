//! Packages end to end through the driver: an offer from the OpAMP server is downloaded from
//! a file server (resumed after an interrupted transfer), checked, installed, and its
//! statuses reported in `AgentToServer.package_statuses`; a wrong hash is reported as
//! `InstallFailed`.

mod common;
#[path = "packages_support/mod.rs"]
mod packages_support;

use std::sync::Arc;
use std::time::Duration;

use common::{Push, Recording, TestServer};
use opamp_client::packages::{DownloadSettings, FsPackagesStateProvider};
use opamp_client::proto::{AgentCapabilities, PackageStatusEnum, ServerToAgent};
use opamp_client::{Client, ClientSettings, PackagesSettings};
use packages_support::{Behaviour, FileServer, content, offer, package};

async fn client_for(
    server: &TestServer,
    dir: &std::path::Path,
) -> (Client, Arc<FsPackagesStateProvider>) {
    let provider = Arc::new(FsPackagesStateProvider::open(dir).await.unwrap());
    let download = DownloadSettings::default()
        .with_progress_interval(Duration::from_millis(50))
        .with_retry_backoff(Duration::from_millis(50), Duration::from_millis(200));
    let client = Client::start(
        ClientSettings::new(server.ws_url())
            .with_capabilities(
                AgentCapabilities::ACCEPTS_PACKAGES | AgentCapabilities::REPORTS_PACKAGE_STATUSES,
            )
            .with_packages(
                PackagesSettings::new(provider.clone()).with_download_settings(download),
            ),
        Recording::default(),
    )
    .unwrap();
    (client, provider)
}

/// Waits for a report where `name` has `status`; returns it.
async fn wait_for_status(
    server: &TestServer,
    name: &str,
    status: PackageStatusEnum,
) -> opamp_client::proto::PackageStatuses {
    loop {
        let msg = server.next_message().await;
        if let Some(statuses) = msg.package_statuses
            && statuses
                .packages
                .get(name)
                .is_some_and(|p| p.status() == status)
        {
            return statuses;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offered_package_is_downloaded_resumed_installed_and_reported() {
    let files = FileServer::start().await;
    let data = content(200_000, 7);
    files.put("/agent.tgz", data.clone());
    files.set(Behaviour {
        cut_times: 1,
        cut_after: 50_000,
        ..Default::default()
    });
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (client, provider) = client_for(&server, dir.path()).await;
    server.next_message().await;

    let available = offer(
        "all-1",
        vec![("agent", package(&files, "/agent.tgz", "1.2.3", &data))],
    );
    server
        .push(Push::Message(ServerToAgent {
            packages_available: Some(available),
            ..Default::default()
        }))
        .await;
    let statuses = wait_for_status(&server, "agent", PackageStatusEnum::Installed).await;
    assert_eq!(
        statuses.server_provided_all_packages_hash.as_ref(),
        b"all-1"
    );
    assert_eq!(statuses.packages["agent"].agent_has_version, "1.2.3");
    let installed = tokio::fs::read(provider.content_path("agent").unwrap())
        .await
        .unwrap();
    assert_eq!(installed, data.as_ref());
    let ranges: Vec<_> = files
        .requests_for("/agent.tgz")
        .iter()
        .filter_map(|r| r.range().map(str::to_owned))
        .collect();
    assert!(
        !ranges.is_empty(),
        "the interrupted transfer was resumed with Range"
    );
    client.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn package_with_a_wrong_hash_is_reported_failed() {
    let files = FileServer::start().await;
    let data = content(10_000, 3);
    files.put("/bad.tgz", data.clone());
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (client, provider) = client_for(&server, dir.path()).await;
    server.next_message().await;

    let mut bad = package(&files, "/bad.tgz", "9", &data);
    bad.file.as_mut().unwrap().content_hash = vec![0u8; 32].into();
    server
        .push(Push::Message(ServerToAgent {
            packages_available: Some(offer("all-2", vec![("bad", bad)])),
            ..Default::default()
        }))
        .await;
    let statuses = wait_for_status(&server, "bad", PackageStatusEnum::InstallFailed).await;
    assert!(!statuses.packages["bad"].error_message.is_empty());
    assert!(!provider.content_path("bad").unwrap().exists());
    client.stop().await.unwrap();
}
