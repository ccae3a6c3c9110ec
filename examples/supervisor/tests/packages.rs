//! A new agent executable offered as a package is downloaded, checked, swapped in and kept
//! once healthy (INSTALLED); a bad one is rolled back to the previous executable
//! (INSTALL_FAILED with the reason) and the agent is healthy again.

mod common;

use std::collections::BTreeMap;

use common::{FileServer, Setup, TestServer, healthy, sha256, wrapper_script};
use opamp_server::proto::{
    DownloadableFile, PackageAvailable, PackageStatusEnum, PackageType, PackagesAvailable,
};
use opamp_server::state::AgentStatus;

/// Packages accepted without signatures (signatures: `package_signatures.rs`).
const UNSIGNED_PACKAGES: &str = "  accepts_packages: true\n  reports_package_statuses: true\npackages:\n  require_signature: false\n";

const BROKEN: &[u8] = b"#!/bin/sh\necho 'broken build: libfoo.so.3 not found' >&2\nexit 7\n";

fn offer(base_url: &str, path: &str, content: &[u8], version: &str) -> PackagesAvailable {
    let package = PackageAvailable {
        r#type: PackageType::TopLevel as i32,
        version: version.into(),
        file: Some(DownloadableFile {
            download_url: format!("{base_url}{path}"),
            content_hash: sha256(content).into(),
            ..Default::default()
        }),
        hash: sha256(version.as_bytes()).into(),
    };
    PackagesAvailable {
        packages: BTreeMap::from([("otelcol".to_owned(), package)]),
        all_packages_hash: sha256(format!("all-{version}").as_bytes()).into(),
    }
}

fn package_status(status: &AgentStatus) -> Option<(i32, String, String)> {
    let statuses = status.package_statuses.as_ref()?;
    let package = statuses.packages.get("otelcol")?;
    Some((
        package.status,
        package.server_offered_version.clone(),
        package.error_message.clone(),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn package_update_applied_and_bad_package_rolled_back() {
    let v2 = wrapper_script("v2");
    let files = FileServer::start(BTreeMap::from([
        ("/otelcol-v2".to_owned(), v2.clone()),
        ("/otelcol-v3".to_owned(), BROKEN.to_vec()),
    ]))
    .await;
    let server = TestServer::start().await;
    let setup = Setup::new(&server.url, "", UNSIGNED_PACKAGES);
    let supervisor = setup.start();
    let (conn, _) = server.wait_for("a healthy agent", healthy).await;
    setup
        .wait_agent("the v1 agent", |b| b["version"] == "v1")
        .await;

    // v2: installed once healthy.
    conn.offer_packages(offer(&files.base_url, "/otelcol-v2", &v2, "2.0.0"))
        .unwrap();
    server
        .wait_for("v2 installed", |s| {
            package_status(s)
                .is_some_and(|(st, v, _)| st == PackageStatusEnum::Installed as i32 && v == "2.0.0")
                && healthy(s)
        })
        .await;
    setup
        .wait_agent("the v2 agent", |b| b["version"] == "v2")
        .await;
    let bin_dir = setup.path("data").join("bin");
    let installed: Vec<_> = std::fs::read_dir(&bin_dir).unwrap().flatten().collect();
    assert_eq!(installed.len(), 1, "only the running executable is kept");

    // v3 never becomes healthy: INSTALL_FAILED with its error output, v2 restored.
    conn.offer_packages(offer(&files.base_url, "/otelcol-v3", BROKEN, "3.0.0"))
        .unwrap();
    let (_, status) = server
        .wait_for("v3 failed", |s| {
            package_status(s).is_some_and(|(st, v, _)| {
                st == PackageStatusEnum::InstallFailed as i32 && v == "3.0.0"
            })
        })
        .await;
    let (_, _, message) = package_status(&status).unwrap();
    assert!(message.contains("libfoo.so.3 not found"), "{message}");
    assert!(
        message.contains("previous executable restored"),
        "{message}"
    );
    server.wait_for("healthy on v2 again", healthy).await;
    setup
        .wait_agent("the v2 agent again", |b| b["version"] == "v2")
        .await;

    // After a supervisor restart, v2 is still the executable.
    supervisor.stop().await;
    let supervisor = setup.start();
    setup
        .wait_agent("v2 after a restart", |b| b["version"] == "v2")
        .await;
    supervisor.stop().await;
    server.shutdown().await;
}
