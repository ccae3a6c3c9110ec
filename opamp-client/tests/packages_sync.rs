//! The package flow against a real local HTTP file server: install, skip on an unchanged
//! all-packages hash, delete packages no longer offered, resume interrupted transfers with
//! Range, refuse wrong hashes and unsigned packages, report progress, and keep the
//! all-packages hash unchanged when anything failed.

mod packages_support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use opamp_client::packages::{
    BoxError, DownloadSettings, FsPackagesStateProvider, PackageSyncer, PackagesStateProvider,
    SignatureVerifier, SyncReport,
};
use opamp_client::proto::{Bytes, PackageStatusEnum, PackageType, PackagesAvailable};
use packages_support::{
    Behaviour, FileServer, Recorder, content, offer, package, sha256, status_of,
};

const TIMEOUT: Duration = Duration::from_secs(30);

struct Setup {
    _dir: tempfile::TempDir,
    provider: Arc<FsPackagesStateProvider>,
    recorder: Arc<Recorder>,
    syncer: PackageSyncer,
}

fn fast_settings() -> DownloadSettings {
    DownloadSettings::default()
        .with_retry_backoff(Duration::from_millis(10), Duration::from_millis(100))
        .with_connect_timeout(Duration::from_secs(10))
        .with_read_timeout(Duration::from_secs(10))
}

async fn setup(settings: DownloadSettings) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let provider = Arc::new(FsPackagesStateProvider::open(dir.path()).await.unwrap());
    let recorder = Arc::new(Recorder::default());
    let syncer = PackageSyncer::new(provider.clone(), recorder.clone()).with_settings(settings);
    Setup {
        _dir: dir,
        provider,
        recorder,
        syncer,
    }
}

async fn sync(syncer: &PackageSyncer, offer: &PackagesAvailable) -> SyncReport {
    tokio::time::timeout(TIMEOUT, syncer.sync(offer))
        .await
        .expect("sync hangs")
        .expect("sync could not run")
}

fn installed_content(provider: &FsPackagesStateProvider, name: &str) -> Vec<u8> {
    std::fs::read(provider.content_path(name).unwrap()).unwrap()
}

fn downloads_left(provider: &FsPackagesStateProvider) -> usize {
    std::fs::read_dir(provider.download_dir()).unwrap().count()
}

#[tokio::test]
async fn installs_offered_packages_and_skips_an_unchanged_offer() {
    let server = FileServer::start().await;
    let a = content(300_000, 1);
    let b = content(1_000, 2);
    server.put("/a.tgz", a.clone());
    server.put("/b.zip", b.clone());
    let s = setup(fast_settings()).await;
    let available = offer(
        "all-1",
        vec![
            ("alpha", package(&server, "/a.tgz", "1.0.0", &a)),
            ("beta", package(&server, "/b.zip", "2.0.0", &b)),
        ],
    );

    let report = sync(&s.syncer, &available).await;
    assert!(report.all_succeeded(), "{report:?}");
    assert!(!report.skipped);
    for (name, data, version) in [("alpha", &a, "1.0.0"), ("beta", &b, "2.0.0")] {
        assert_eq!(installed_content(&s.provider, name), data.as_ref());
        let status = &report.statuses.packages[name];
        assert_eq!(status.status(), PackageStatusEnum::Installed);
        assert_eq!(status.agent_has_version, version);
        assert_eq!(status.server_offered_version, version);
        assert_eq!(status.agent_has_hash, status.server_offered_hash);
        assert!(status.error_message.is_empty());
        assert!(status.download_details.is_none());
        let state = s.provider.package_state(name).await.unwrap().unwrap();
        assert_eq!(state.version, version);
        assert_eq!(state.package_type, PackageType::Addon);
    }
    assert_eq!(
        report.statuses.server_provided_all_packages_hash.as_ref(),
        b"all-1"
    );
    assert_eq!(s.provider.all_packages_hash().await.unwrap(), b"all-1");
    // The offer's headers were sent with every download.
    for req in server.log() {
        assert_eq!(req.headers["authorization"], "Bearer download-token");
    }
    assert_eq!(
        downloads_left(&s.provider),
        0,
        "downloads are moved into place"
    );
    // Statuses were saved for the next start.
    let saved = s.provider.last_reported_statuses().await.unwrap().unwrap();
    assert_eq!(saved, report.statuses);
    // The last report the sink got is the final state.
    assert_eq!(s.recorder.all().last().unwrap(), &report.statuses);

    // The same all-packages hash again: nothing is downloaded.
    let requests = server.log().len();
    let report = sync(&s.syncer, &available).await;
    assert!(report.skipped);
    assert_eq!(server.log().len(), requests);

    // A new all-packages hash with the same packages: compared per package, not downloaded.
    let mut again = available.clone();
    again.all_packages_hash = Bytes::from_static(b"all-2");
    let report = sync(&s.syncer, &again).await;
    assert!(report.all_succeeded() && !report.skipped);
    assert_eq!(server.log().len(), requests);
    assert_eq!(s.provider.all_packages_hash().await.unwrap(), b"all-2");
}

#[tokio::test]
async fn interrupted_transfer_resumes_with_range() {
    let server = FileServer::start().await;
    let data = content(500_000, 3);
    server.put("/big.bin", data.clone());
    server.set(Behaviour {
        cut_times: 2,
        cut_after: 120_000,
        ..Default::default()
    });
    let s = setup(fast_settings()).await;
    let report = sync(
        &s.syncer,
        &offer("r", vec![("big", package(&server, "/big.bin", "1", &data))]),
    )
    .await;
    assert!(report.all_succeeded(), "{report:?}");
    assert_eq!(installed_content(&s.provider, "big"), data.as_ref());

    let requests = server.requests_for("/big.bin");
    assert_eq!(requests.len(), 3, "{requests:?}");
    assert_eq!(requests[0].range(), None);
    // Each retry asks for what is missing; the server cut each body after 120 000 bytes.
    assert_eq!(requests[1].range(), Some("bytes=120000-"));
    assert_eq!(requests[2].range(), Some("bytes=240000-"));
    assert_eq!(requests[1].status, 206);
    assert_eq!(
        requests[1].headers["authorization"],
        "Bearer download-token"
    );
}

#[tokio::test]
async fn server_ignoring_range_restarts_from_zero() {
    let server = FileServer::start().await;
    let data = content(200_000, 4);
    server.put("/f", data.clone());
    server.set(Behaviour {
        cut_times: 1,
        cut_after: 50_000,
        ignore_range: true,
        ..Default::default()
    });
    let s = setup(fast_settings()).await;
    let report = sync(
        &s.syncer,
        &offer("x", vec![("p", package(&server, "/f", "1", &data))]),
    )
    .await;
    assert!(report.all_succeeded(), "{report:?}");
    assert_eq!(installed_content(&s.provider, "p"), data.as_ref());
    let requests = server.requests_for("/f");
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1].range(), Some("bytes=50000-"));
    assert_eq!(requests[1].status, 200);
}

#[tokio::test]
async fn partial_download_survives_a_cancelled_sync() {
    let server = FileServer::start().await;
    let data = content(400_000, 5);
    server.put("/slow", data.clone());
    server.set(Behaviour {
        chunk: Some((20_000, Duration::from_millis(40))),
        ..Default::default()
    });
    let s = setup(fast_settings()).await;
    let available = offer("c", vec![("p", package(&server, "/slow", "1", &data))]);
    // Cancel the sync mid-download (as the client does when it stops).
    let _ = tokio::time::timeout(Duration::from_millis(300), s.syncer.sync(&available)).await;
    assert_eq!(downloads_left(&s.provider), 1, "the partial file is kept");

    server.set(Behaviour::default());
    let report = sync(&s.syncer, &available).await;
    assert!(report.all_succeeded(), "{report:?}");
    assert_eq!(installed_content(&s.provider, "p"), data.as_ref());
    let requests = server.requests_for("/slow");
    let resumed = requests.last().unwrap();
    assert!(
        resumed.range().is_some_and(|r| r != "bytes=0-"),
        "{requests:?}"
    );
    assert_eq!(resumed.status, 206);
}

#[tokio::test]
async fn wrong_hash_fails_and_keeps_the_all_packages_hash() {
    let server = FileServer::start().await;
    let good = content(10_000, 6);
    let bad = content(10_000, 7);
    server.put("/good", good.clone());
    server.put("/bad", bad.clone());
    let s = setup(fast_settings()).await;
    s.provider.set_all_packages_hash(b"previous").await.unwrap();

    let mut wrong = package(&server, "/bad", "9", &bad);
    wrong.file.as_mut().unwrap().content_hash = sha256(b"something else");
    let available = offer(
        "new",
        vec![
            ("good", package(&server, "/good", "1", &good)),
            ("wrong", wrong),
        ],
    );
    let report = sync(&s.syncer, &available).await;
    assert!(!report.all_succeeded());
    assert_eq!(report.failed, ["wrong"]);
    let failed = &report.statuses.packages["wrong"];
    assert_eq!(failed.status(), PackageStatusEnum::InstallFailed);
    assert!(
        failed.error_message.contains("content hash mismatch"),
        "{}",
        failed.error_message
    );
    assert!(failed.agent_has_version.is_empty() && failed.agent_has_hash.is_empty());
    assert_eq!(failed.server_offered_version, "9");
    assert_eq!(
        status_of(&report.statuses, "good"),
        PackageStatusEnum::Installed
    );
    assert_eq!(s.provider.all_packages_hash().await.unwrap(), b"previous");
    assert_eq!(s.provider.file_content_hash("wrong").await.unwrap(), None);
    assert_eq!(
        downloads_left(&s.provider),
        0,
        "the bad download is deleted"
    );
    // Exactly one request for the bad file: a fresh (not resumed) download is not retried.
    assert_eq!(server.requests_for("/bad").len(), 1);

    // The next offer (same hash) retries only the failed package.
    let good_requests = server.requests_for("/good").len();
    let report = sync(&s.syncer, &available).await;
    assert_eq!(report.failed, ["wrong"]);
    assert_eq!(server.requests_for("/good").len(), good_requests);
    assert_eq!(server.requests_for("/bad").len(), 2);
}

#[tokio::test]
async fn packages_no_longer_offered_are_deleted() {
    let server = FileServer::start().await;
    let a = content(1_000, 8);
    let b = content(1_000, 9);
    server.put("/a", a.clone());
    server.put("/b", b.clone());
    let s = setup(fast_settings()).await;
    let both = offer(
        "1",
        vec![
            ("a", package(&server, "/a", "1", &a)),
            ("b", package(&server, "/b", "1", &b)),
        ],
    );
    assert!(sync(&s.syncer, &both).await.all_succeeded());
    let a_dir = s.provider.package_dir("a").unwrap();
    assert!(a_dir.exists());

    let only_b = offer("2", vec![("b", package(&server, "/b", "1", &b))]);
    let report = sync(&s.syncer, &only_b).await;
    assert!(report.all_succeeded(), "{report:?}");
    assert_eq!(s.provider.packages().await.unwrap(), ["b"]);
    assert!(!a_dir.exists());
    assert_eq!(report.statuses.packages.keys().collect::<Vec<_>>(), ["b"]);
}

#[tokio::test]
async fn progress_is_reported_while_downloading() {
    let server = FileServer::start().await;
    let data = content(200_000, 10);
    server.put("/p", data.clone());
    server.set(Behaviour {
        chunk: Some((10_000, Duration::from_millis(25))),
        ..Default::default()
    });
    let s = setup(fast_settings().with_progress_interval(Duration::from_millis(60))).await;
    let report = sync(
        &s.syncer,
        &offer("p", vec![("pkg", package(&server, "/p", "1", &data))]),
    )
    .await;
    assert!(report.all_succeeded(), "{report:?}");

    assert_eq!(
        s.recorder.sequence("pkg"),
        [
            PackageStatusEnum::InstallPending,
            PackageStatusEnum::Downloading,
            PackageStatusEnum::Installing,
            PackageStatusEnum::Installed,
        ]
    );
    let details: Vec<_> = s
        .recorder
        .all()
        .into_iter()
        .filter_map(|st| st.packages["pkg"].download_details)
        .collect();
    // The first report (0 %) and at least one periodic report while data was flowing.
    assert!(details.len() >= 2, "{details:?}");
    let moving: Vec<_> = details
        .iter()
        .filter(|d| d.download_percent > 0.0)
        .collect();
    assert!(!moving.is_empty(), "{details:?}");
    for d in &moving {
        assert!(d.download_percent <= 100.0);
        assert!(d.download_bytes_per_second > 0.0, "{d:?}");
    }
    let percents: Vec<f64> = details.iter().map(|d| d.download_percent).collect();
    assert!(percents.windows(2).all(|w| w[0] <= w[1]), "{percents:?}");
    // Download details only accompany Downloading.
    for st in s.recorder.all() {
        let p = &st.packages["pkg"];
        if p.download_details.is_some() {
            assert_eq!(p.status(), PackageStatusEnum::Downloading);
        }
    }
}

struct PrefixVerifier;

#[async_trait::async_trait]
impl SignatureVerifier for PrefixVerifier {
    async fn verify(
        &self,
        package: &str,
        file: &Path,
        content_hash: &[u8],
        signature: &[u8],
    ) -> Result<(), BoxError> {
        // "Signature" = b"signed:" + content hash; also check the file is the verified one.
        let data = tokio::fs::read(file).await?;
        assert_eq!(sha256(&data).as_ref(), content_hash, "{package}");
        if signature == [b"signed:".as_slice(), content_hash].concat().as_slice() {
            Ok(())
        } else {
            Err("signature does not match".into())
        }
    }
}

#[tokio::test]
async fn signatures_are_checked_and_unsigned_packages_refused_when_required() {
    let server = FileServer::start().await;
    let data = content(5_000, 11);
    server.put("/s", data.clone());
    let strict = fast_settings().with_require_signature(true);

    // Unsigned, signatures required.
    let s = setup(strict.clone()).await;
    let s = Setup {
        syncer: s.syncer.with_signature_verifier(Arc::new(PrefixVerifier)),
        ..s
    };
    let unsigned = package(&server, "/s", "1", &data);
    let report = sync(&s.syncer, &offer("u", vec![("p", unsigned.clone())])).await;
    assert_eq!(report.failed, ["p"]);
    let msg = &report.statuses.packages["p"].error_message;
    assert!(msg.contains("not signed"), "{msg}");
    assert_eq!(s.provider.file_content_hash("p").await.unwrap(), None);

    // Wrong signature.
    let mut badly_signed = unsigned.clone();
    badly_signed.file.as_mut().unwrap().signature = Bytes::from_static(b"forged");
    let report = sync(&s.syncer, &offer("b", vec![("p", badly_signed)])).await;
    assert_eq!(report.failed, ["p"]);
    let msg = &report.statuses.packages["p"].error_message;
    assert!(
        msg.contains("signature verification failed") && msg.contains("does not match"),
        "{msg}"
    );
    assert_eq!(downloads_left(&s.provider), 0);

    // Good signature.
    let mut signed = unsigned.clone();
    let file = signed.file.as_mut().unwrap();
    file.signature = Bytes::from([b"signed:".as_slice(), &file.content_hash].concat());
    let report = sync(&s.syncer, &offer("g", vec![("p", signed.clone())])).await;
    assert!(report.all_succeeded(), "{report:?}");
    assert_eq!(installed_content(&s.provider, "p"), data.as_ref());

    // Signatures required but no verifier: refused even when signed.
    let s = setup(strict).await;
    let report = sync(&s.syncer, &offer("n", vec![("p", signed)])).await;
    assert_eq!(report.failed, ["p"]);
    assert!(
        report.statuses.packages["p"]
            .error_message
            .contains("no signature verifier")
    );

    // Not required: unsigned packages install.
    let s = setup(fast_settings()).await;
    assert!(
        sync(&s.syncer, &offer("ok", vec![("p", unsigned)]))
            .await
            .all_succeeded()
    );
}

#[tokio::test]
async fn http_errors_retry_or_fail_as_appropriate() {
    let server = FileServer::start().await;
    let data = content(2_000, 12);
    server.put("/f", data.clone());

    // 503 with Retry-After, twice, then success.
    server.set(Behaviour {
        fail_times: 2,
        fail_status: 503,
        fail_retry_after: Some("0".into()),
        ..Default::default()
    });
    let s = setup(fast_settings()).await;
    let report = sync(
        &s.syncer,
        &offer("1", vec![("p", package(&server, "/f", "1", &data))]),
    )
    .await;
    assert!(report.all_succeeded(), "{report:?}");
    assert_eq!(server.requests_for("/f").len(), 3);

    // 404 is final: one request, InstallFailed with the status.
    let s = setup(fast_settings()).await;
    let report = sync(
        &s.syncer,
        &offer("2", vec![("p", package(&server, "/missing", "1", &data))]),
    )
    .await;
    assert_eq!(report.failed, ["p"]);
    assert!(report.statuses.packages["p"].error_message.contains("404"));
    assert_eq!(server.requests_for("/missing").len(), 1);

    // Missing credentials: the server answers 401, not retried.
    server.set(Behaviour {
        required_header: Some(("authorization".into(), "Bearer other".into())),
        ..Default::default()
    });
    let s = setup(fast_settings()).await;
    let before = server.requests_for("/f").len();
    let report = sync(
        &s.syncer,
        &offer("3", vec![("p", package(&server, "/f", "1", &data))]),
    )
    .await;
    assert!(report.statuses.packages["p"].error_message.contains("401"));
    assert_eq!(server.requests_for("/f").len(), before + 1);

    // Retries are bounded.
    server.set(Behaviour {
        fail_times: 100,
        fail_status: 500,
        ..Default::default()
    });
    let s = setup(fast_settings().with_max_attempts(3)).await;
    let before = server.requests_for("/f").len();
    let report = sync(
        &s.syncer,
        &offer("4", vec![("p", package(&server, "/f", "1", &data))]),
    )
    .await;
    assert_eq!(report.failed, ["p"]);
    assert_eq!(server.requests_for("/f").len(), before + 3);
}

#[tokio::test]
async fn oversized_packages_are_refused() {
    let server = FileServer::start().await;
    let data = content(50_000, 13);
    server.put("/big", data.clone());
    let s = setup(fast_settings().with_max_package_size(10_000)).await;
    let report = sync(
        &s.syncer,
        &offer("1", vec![("p", package(&server, "/big", "1", &data))]),
    )
    .await;
    assert_eq!(report.failed, ["p"]);
    assert!(
        report.statuses.packages["p"]
            .error_message
            .contains("larger than")
    );
    assert_eq!(server.requests_for("/big").len(), 1);
    assert_eq!(downloads_left(&s.provider), 0);
}

#[tokio::test]
async fn redirects_are_followed_and_type_changes_recreate_the_package() {
    let server = FileServer::start().await;
    let v1 = content(3_000, 14);
    let v2 = content(4_000, 15);
    server.put("/v1", v1.clone());
    server.put("/v2", v2.clone());
    server.set(Behaviour {
        redirects: [("/latest".to_string(), "/v2".to_string())].into(),
        ..Default::default()
    });
    let s = setup(fast_settings()).await;
    let mut first = package(&server, "/v1", "1", &v1);
    first.r#type = PackageType::TopLevel as i32;
    assert!(
        sync(&s.syncer, &offer("1", vec![("", first)]))
            .await
            .all_succeeded()
    );
    assert_eq!(
        s.provider
            .package_state("")
            .await
            .unwrap()
            .unwrap()
            .package_type,
        PackageType::TopLevel
    );

    let second = package(&server, "/latest", "2", &v2); // an add-on now, behind a redirect
    let report = sync(&s.syncer, &offer("2", vec![("", second)])).await;
    assert!(report.all_succeeded(), "{report:?}");
    assert_eq!(installed_content(&s.provider, ""), v2.as_ref());
    let state = s.provider.package_state("").await.unwrap().unwrap();
    assert_eq!(
        (state.package_type, state.version.as_str()),
        (PackageType::Addon, "2")
    );
    let followed = server.requests_for("/v2");
    assert_eq!(followed.len(), 1);
    assert_eq!(
        followed[0].headers["authorization"],
        "Bearer download-token"
    );
}

#[tokio::test]
async fn invalid_offers_fail_per_package() {
    let server = FileServer::start().await;
    let s = setup(fast_settings()).await;
    let data = content(100, 16);
    let mut no_file = package(&server, "/x", "1", &data);
    no_file.file = None;
    let mut short_hash = package(&server, "/x", "1", &data);
    short_hash.file.as_mut().unwrap().content_hash = Bytes::from_static(b"md5?");
    let mut bad_url = package(&server, "/x", "1", &data);
    bad_url.file.as_mut().unwrap().download_url = "ftp://example.com/x".into();
    let report = sync(
        &s.syncer,
        &offer(
            "bad",
            vec![
                ("no-file", no_file),
                ("short", short_hash),
                ("url", bad_url),
            ],
        ),
    )
    .await;
    assert_eq!(report.failed, ["no-file", "short", "url"]);
    for name in ["no-file", "short", "url"] {
        assert_eq!(
            status_of(&report.statuses, name),
            PackageStatusEnum::InstallFailed
        );
    }
    assert!(s.provider.all_packages_hash().await.unwrap().is_empty());
    assert!(server.log().is_empty());
}

fn partial_path(provider: &FsPackagesStateProvider, content_hash: &[u8]) -> std::path::PathBuf {
    let hex: String = content_hash.iter().map(|b| format!("{b:02x}")).collect();
    provider.download_dir().join(format!("{hex}.partial"))
}

#[tokio::test]
async fn a_wrong_partial_file_is_discarded_and_downloaded_again() {
    let server = FileServer::start().await;
    let data = content(100_000, 17);
    server.put("/f", data.clone());
    let s = setup(fast_settings()).await;
    let offered = package(&server, "/f", "1", &data);
    let hash = offered.file.as_ref().unwrap().content_hash.clone();
    // Left over from an earlier attempt, but not a prefix of the file.
    std::fs::write(partial_path(&s.provider, &hash), content(30_000, 99)).unwrap();

    let report = sync(&s.syncer, &offer("w", vec![("p", offered)])).await;
    assert!(report.all_succeeded(), "{report:?}");
    assert_eq!(installed_content(&s.provider, "p"), data.as_ref());
    let requests = server.requests_for("/f");
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!(requests[0].range(), Some("bytes=30000-"));
    assert_eq!(requests[1].range(), None, "started over from scratch");
}

#[tokio::test]
async fn a_complete_partial_file_is_installed_after_416() {
    let server = FileServer::start().await;
    let data = content(40_000, 18);
    server.put("/f", data.clone());
    let s = setup(fast_settings()).await;
    let offered = package(&server, "/f", "1", &data);
    let hash = offered.file.as_ref().unwrap().content_hash.clone();
    // Downloaded completely before a crash, never installed.
    std::fs::write(partial_path(&s.provider, &hash), &data).unwrap();

    let report = sync(&s.syncer, &offer("c", vec![("p", offered)])).await;
    assert!(report.all_succeeded(), "{report:?}");
    assert_eq!(installed_content(&s.provider, "p"), data.as_ref());
    let requests = server.requests_for("/f");
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].status, 416);
}

#[tokio::test]
async fn stale_partial_downloads_are_removed() {
    let server = FileServer::start().await;
    let data = content(1_000, 19);
    server.put("/f", data.clone());
    let s = setup(fast_settings()).await;
    let stale = partial_path(&s.provider, &sha256(b"an old offer"));
    std::fs::write(&stale, b"old").unwrap();
    let report = sync(
        &s.syncer,
        &offer("s", vec![("p", package(&server, "/f", "1", &data))]),
    )
    .await;
    assert!(report.all_succeeded());
    assert!(!stale.exists());
    assert_eq!(downloads_left(&s.provider), 0);
}
