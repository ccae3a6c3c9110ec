//! Crash consistency of the supervisor (real processes): it is killed with `SIGKILL` again
//! and again while it applies a remote configuration or swaps the agent executable, at
//! different points of the work. After every kill no agent is left running and the agent's
//! configuration file is whole; after every restart the agent runs a configuration file the
//! supervisor reported, and the persisted state says what the server was told.
#![cfg(target_os = "linux")]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{
    FileServer, LIMIT, Setup, TestServer, healthy, hex, runs, sha256, wait_gone, wrapper_script,
    yaml_config,
};
use opamp_server::proto::{
    DownloadableFile, PackageAvailable, PackageStatusEnum, PackageType, PackagesAvailable,
    RemoteConfigStatuses,
};
use opamp_server::state::AgentStatus;
use opamp_supervisor::state::{PersistedState, StateFile};

/// Delays between an offer and the kill: before the offer is read, while the file is
/// written and the agent restarted, while it starts, while it is healthy but not yet stable,
/// after it is applied.
const KILL_AFTER_MS: [u64; 5] = [20, 250, 550, 900, 1400];

/// Kills the supervisor, then checks that no agent it started still runs and that the
/// configuration file is whole YAML.
async fn kill_and_check(server: &TestServer, setup: &Setup, supervisor: common::SupervisorProcess) {
    supervisor.kill9().await;
    // The server notices (so that no status of the dead connection is read later).
    let deadline = tokio::time::Instant::now() + LIMIT;
    while server.server.connections().iter().any(|c| !c.is_closed()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the connection stays open"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for start in setup.starts() {
        wait_gone(start.pid, "an agent of the killed supervisor").await;
    }
    let text = setup.effective_file();
    if !text.is_empty() {
        let parsed: Result<serde_json::Value, _> = serde_norway::from_str(&text);
        assert!(
            parsed.as_ref().is_ok_and(serde_json::Value::is_object),
            "a half-written configuration file: {text:?}"
        );
    }
}

fn state(setup: &Setup) -> PersistedState {
    StateFile::new(&setup.path("data")).load().unwrap()
}

/// Whether the persisted state holds what the server was told about remote configuration.
fn state_matches_remote_status(state: &PersistedState, status: &AgentStatus) -> bool {
    let good = state
        .last_good
        .as_ref()
        .map_or(&[][..], |g| g.remote_hash());
    match &status.remote_config_status {
        None => good.is_empty(),
        Some(reported) if reported.status == RemoteConfigStatuses::Applied as i32 => {
            good == reported.last_remote_config_hash.as_ref()
        }
        Some(reported) if reported.status == RemoteConfigStatuses::Failed as i32 => {
            state.failed_remote_hash.as_deref()
                == Some(hex(&reported.last_remote_config_hash).as_str())
        }
        Some(_) => false,
    }
}

/// After a restart, once settled: the agent runs the configuration file on disk, the
/// supervisor reported that very file, and the state matches the reported status.
async fn check_after_restart(server: &TestServer, setup: &Setup, round: usize) {
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        let (_, status) = server
            .wait_for("a healthy agent, no apply in progress", |s| {
                healthy(s)
                    && s.remote_config_status
                        .as_ref()
                        .is_none_or(|r| r.status != RemoteConfigStatuses::Applying as i32)
            })
            .await;
        let file = setup.effective_file();
        let file_sha = hex(&sha256(file.as_bytes()));
        let running = setup.agent_health().await.map(|(_, body)| body);
        let agent_sha = running
            .as_ref()
            .and_then(|b| b["config_sha256"].as_str().map(str::to_owned));
        let state = state(setup);
        let consistent = agent_sha.as_deref() == Some(file_sha.as_str())
            && server.was_reported(&file_sha)
            && common::effective_text(&status).as_deref() == Some(file.as_str())
            && state_matches_remote_status(&state, &status);
        if consistent {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "round {round}: not consistent: file sha {file_sha}, agent {running:?}, reported {}, \
             status {:?}, state good {:?} failed {:?}\n{}",
            server.was_reported(&file_sha),
            status.remote_config_status,
            state.last_good.as_ref().map(|g| hex(g.remote_hash())),
            state.failed_remote_hash,
            setup.supervisor_log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_config_applies() {
    let server = TestServer::start().await;
    let setup = Setup::new(&server.url, "", "");
    for (round, kill_after) in KILL_AFTER_MS.iter().enumerate() {
        let supervisor = setup.spawn_process();
        check_after_restart(&server, &setup, round).await;
        let (conn, _) = server.wait_for("a connection", |_| true).await;
        // A configuration the agent takes a moment to become healthy on.
        let config = yaml_config(&format!(
            "fake_agent:\n  start_delay: {}ms\n",
            200 + round * 10
        ));
        conn.offer_remote_config(config).unwrap();
        tokio::time::sleep(Duration::from_millis(*kill_after)).await;
        kill_and_check(&server, &setup, supervisor).await;
    }
    let mut supervisor = setup.spawn_process();
    check_after_restart(&server, &setup, KILL_AFTER_MS.len()).await;
    supervisor.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(supervisor.wait().await.success());
    server.shutdown().await;
}

fn package_offer(base_url: &str, round: usize, content: &[u8]) -> PackagesAvailable {
    let version = format!("1.{round}.0");
    let package = PackageAvailable {
        r#type: PackageType::TopLevel as i32,
        version: version.clone(),
        file: Some(DownloadableFile {
            download_url: format!("{base_url}/otelcol-{round}"),
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

fn package_status(status: &AgentStatus) -> Option<(i32, String)> {
    let package = status.package_statuses.as_ref()?.packages.get("otelcol")?;
    Some((package.status, package.server_offered_version.clone()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_package_swaps() {
    let rounds = KILL_AFTER_MS.len();
    let scripts: Vec<Vec<u8>> = (0..rounds)
        .map(|r| wrapper_script(&format!("r{r}")))
        .collect();
    let files = FileServer::start(
        scripts
            .iter()
            .enumerate()
            .map(|(r, s)| (format!("/otelcol-{r}"), s.clone()))
            .collect(),
    )
    .await;
    let server = TestServer::start().await;
    let setup = Setup::new(
        &server.url,
        "",
        "  accepts_packages: true\n  reports_package_statuses: true\npackages:\n  require_signature: false\n",
    );
    let mut last_offer: Option<(usize, PackagesAvailable)> = None;
    for round in 0..=rounds {
        let mut supervisor = setup.spawn_process();
        let (conn, _) = server.wait_for("a healthy agent", healthy).await;
        // A server following the spec offers again what the agent does not report installed.
        if let Some((offered, offer)) = &last_offer {
            conn.offer_packages(offer.clone()).unwrap();
            let version = format!("1.{offered}.0");
            server
                .wait_for("the last offer installed", |s| {
                    healthy(s)
                        && package_status(s).is_some_and(|(st, v)| {
                            st == PackageStatusEnum::Installed as i32 && v == version
                        })
                })
                .await;
            // The agent runs that version, from the executable the state names.
            let tag = format!("r{offered}");
            setup
                .wait_agent("the installed version running", |b| {
                    b["version"] == tag.as_str()
                })
                .await;
            let good = state(&setup).last_good.unwrap();
            assert_eq!(
                std::fs::read(&good.executable).unwrap(),
                scripts[*offered],
                "round {round}: the state names another executable"
            );
        }
        if round == rounds {
            supervisor.signal(nix::sys::signal::Signal::SIGTERM);
            assert!(supervisor.wait().await.success());
            break;
        }
        let offer = package_offer(&files.base_url, round, &scripts[round]);
        conn.offer_packages(offer.clone()).unwrap();
        last_offer = Some((round, offer));
        tokio::time::sleep(Duration::from_millis(KILL_AFTER_MS[round] + 200)).await;
        kill_and_check(&server, &setup, supervisor).await;
        assert!(setup.starts().iter().all(|s| !runs(s.pid)));
    }
    server.shutdown().await;
}
