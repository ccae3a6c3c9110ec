//! Signed packages: with `packages.public_keys`, an executable whose Ed25519 signature (of its
//! SHA-256) verifies is installed; one signed by another key, or not signed, is refused and
//! never run. Without keys, `accepts_packages` needs an explicit `require_signature: false`.

mod common;

use std::collections::BTreeMap;

use base64::Engine;
use common::{FileServer, Setup, TestServer, healthy, sha256, wrapper_script};
use opamp_server::proto::{
    DownloadableFile, PackageAvailable, PackageStatusEnum, PackageType, PackagesAvailable,
};
use opamp_server::state::AgentStatus;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};

fn key_pair() -> Ed25519KeyPair {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap()
}

fn offer(
    base_url: &str,
    path: &str,
    content: &[u8],
    version: &str,
    signature: Vec<u8>,
) -> PackagesAvailable {
    let package = PackageAvailable {
        r#type: PackageType::TopLevel as i32,
        version: version.into(),
        file: Some(DownloadableFile {
            download_url: format!("{base_url}{path}"),
            content_hash: sha256(content).into(),
            signature: signature.into(),
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
    let package = status.package_statuses.as_ref()?.packages.get("otelcol")?;
    Some((
        package.status,
        package.server_offered_version.clone(),
        package.error_message.clone(),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_packages_signed_with_a_configured_key_are_installed() {
    let vendor = key_pair();
    let attacker = key_pair();
    let v2 = wrapper_script("v2");
    let v3 = wrapper_script("v3");
    let v4 = wrapper_script("v4");
    let files = FileServer::start(BTreeMap::from([
        ("/v2".to_owned(), v2.clone()),
        ("/v3".to_owned(), v3.clone()),
        ("/v4".to_owned(), v4.clone()),
    ]))
    .await;
    let server = TestServer::start().await;
    let public = base64::engine::general_purpose::STANDARD.encode(vendor.public_key().as_ref());
    // One key inline, written as the raw key in base64, next to an unrelated one in a file.
    let other = key_pair();
    let spki = [
        &[
            0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
        ][..],
        other.public_key().as_ref(),
    ]
    .concat();
    let setup = Setup::new(
        &server.url,
        "",
        &format!(
            "  accepts_packages: true\n  reports_package_statuses: true\npackages:\n  public_keys: [\"{public}\"]\n  public_key_files: [other.pub]\n"
        ),
    );
    std::fs::write(
        setup.path("other.pub"),
        format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            base64::engine::general_purpose::STANDARD.encode(&spki)
        ),
    )
    .unwrap();
    let supervisor = setup.start();
    let (conn, _) = server.wait_for("a healthy agent", healthy).await;

    // Signed by the vendor: installed.
    let signature = vendor.sign(&sha256(&v2)).as_ref().to_vec();
    conn.offer_packages(offer(&files.base_url, "/v2", &v2, "2.0.0", signature))
        .unwrap();
    server
        .wait_for("v2 installed", |s| {
            package_status(s)
                .is_some_and(|(st, v, _)| st == PackageStatusEnum::Installed as i32 && v == "2.0.0")
                && healthy(s)
        })
        .await;
    setup
        .wait_agent("v2 running", |b| b["version"] == "v2")
        .await;

    // Signed by someone else: refused.
    let forged = attacker.sign(&sha256(&v3)).as_ref().to_vec();
    conn.offer_packages(offer(&files.base_url, "/v3", &v3, "3.0.0", forged))
        .unwrap();
    let (_, status) = server
        .wait_for("v3 refused", |s| {
            package_status(s).is_some_and(|(st, v, _)| {
                st == PackageStatusEnum::InstallFailed as i32 && v == "3.0.0"
            })
        })
        .await;
    let (_, _, message) = package_status(&status).unwrap();
    assert!(message.contains("does not verify"), "{message}");

    // Not signed: refused.
    conn.offer_packages(offer(&files.base_url, "/v4", &v4, "4.0.0", Vec::new()))
        .unwrap();
    let (_, status) = server
        .wait_for("v4 refused", |s| {
            package_status(s).is_some_and(|(st, v, _)| {
                st == PackageStatusEnum::InstallFailed as i32 && v == "4.0.0"
            })
        })
        .await;
    let (_, _, message) = package_status(&status).unwrap();
    assert!(message.contains("not signed"), "{message}");

    // Neither ever ran.
    assert!(
        setup
            .starts()
            .iter()
            .all(|s| s.version != "v3" && s.version != "v4")
    );
    setup.wait_agent("still v2", |b| b["version"] == "v2").await;
    supervisor.stop().await;
    server.shutdown().await;
}

#[test]
fn accepting_packages_needs_a_key_or_an_explicit_opt_out() {
    let setup = Setup::new(
        "ws://127.0.0.1:1/v1/opamp",
        "",
        "  accepts_packages: true\n",
    );
    let load = || {
        opamp_supervisor::SupervisorConfig::load(
            &setup.path("supervisor.yaml"),
            &opamp_example_agent::yaml::env::process_env,
        )
    };
    let err = load().unwrap_err().to_string();
    assert!(err.contains("packages.public_keys"), "{err}");
    assert!(err.contains("require_signature: false"), "{err}");

    let setup = Setup::new(
        "ws://127.0.0.1:1/v1/opamp",
        "",
        "  accepts_packages: true\npackages:\n  public_keys: [\"AAAA\"]\n",
    );
    let err = opamp_supervisor::SupervisorConfig::load(
        &setup.path("supervisor.yaml"),
        &opamp_example_agent::yaml::env::process_env,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("packages.public_keys[0]"), "{err}");
}
