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

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staging_a_package_follows_no_planted_link() {
    use std::os::unix::fs::PermissionsExt;

    let v2 = wrapper_script("v2");
    let files = FileServer::start(BTreeMap::from([("/otelcol-v2".to_owned(), v2.clone())])).await;
    let server = TestServer::start().await;
    let setup = Setup::new(&server.url, "", UNSIGNED_PACKAGES);
    // Links planted by another local user where the supervisor used to write: the temporary
    // file's predictable name, and the final name.
    let victim = setup.path("victim.txt");
    std::fs::write(&victim, b"precious\n").unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o600)).unwrap();
    let bin_dir = setup.path("data").join("bin");
    std::fs::create_dir_all(&bin_dir).unwrap();
    let hash = common::hex(&sha256(&v2));
    let planted_tmp = bin_dir.join(format!(".agent-{hash}.tmp"));
    std::os::unix::fs::symlink(&victim, &planted_tmp).unwrap();
    let final_name = bin_dir.join(format!("agent-{hash}"));
    std::os::unix::fs::symlink(&victim, &final_name).unwrap();

    let supervisor = setup.start();
    let (conn, _) = server.wait_for("a healthy agent", healthy).await;
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

    // The victim was neither written nor made executable.
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious\n");
    let mode = std::fs::metadata(&victim).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // The executable is a regular file of its own, and no temporary file is left.
    let meta = std::fs::symlink_metadata(&final_name).unwrap();
    assert!(meta.file_type().is_file(), "{meta:?}");
    assert_eq!(std::fs::read(&final_name).unwrap(), v2);
    let left: Vec<String> = std::fs::read_dir(&bin_dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp") && *n != format!(".agent-{hash}.tmp"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    supervisor.stop().await;
    server.shutdown().await;
}
