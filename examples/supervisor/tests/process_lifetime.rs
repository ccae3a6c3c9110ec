//! The agent never outlives its supervisor (real processes): a supervisor killed with
//! `SIGKILL` takes its agent down, an agent left over by an earlier supervisor is stopped at
//! start-up (and only if it really is that agent), and `SIGHUP` stops the supervisor cleanly.
#![cfg(target_os = "linux")]

mod common;

use std::os::unix::process::CommandExt;

use common::{BASE, Setup, TestServer, fake_agent, healthy, runs, wait_gone};
use nix::sys::signal::Signal;
use opamp_supervisor::leftover::{AGENT_RECORD, AgentRecord};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_of_the_supervisor_stops_its_agent() {
    let server = TestServer::start().await;
    let setup = Setup::new(&server.url, "", "");
    let supervisor = setup.spawn_process();
    server.wait_for("a healthy agent", healthy).await;
    let first = setup.agent_pid().await;
    let record = AgentRecord::load(&setup.path("data")).expect("the agent is recorded");
    assert_eq!(record.pid, first);

    supervisor.kill9().await;
    wait_gone(first, "the agent of the killed supervisor").await;

    // The next supervisor runs its own agent, and a clean stop stops it.
    let mut supervisor = setup.spawn_process();
    setup
        .wait_agent("a new agent", |b| {
            b["pid"].as_u64() != Some(u64::from(first))
        })
        .await;
    server.wait_for("a healthy agent again", healthy).await;
    let second = setup.agent_pid().await;
    assert_eq!(setup.starts().len(), 2, "{}", setup.supervisor_log());
    supervisor.signal(Signal::SIGTERM);
    assert!(supervisor.wait().await.success());
    wait_gone(second, "the agent after a clean stop").await;
    assert!(!setup.path("data").join(AGENT_RECORD).exists());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leftover_agent_is_stopped_at_start_up_but_not_an_unrelated_process() {
    let server = TestServer::start().await;
    let setup = Setup::new(&server.url, "", "");
    let data = setup.path("data");
    std::fs::create_dir_all(&data).unwrap();

    // A record whose process ID now belongs to another program (another start time).
    let mut unrelated = std::process::Command::new("sleep")
        .arg("300")
        .process_group(0)
        .spawn()
        .unwrap();
    let mut record = AgentRecord::of(unrelated.id(), &fake_agent()).unwrap();
    record.start_ticks += 1;
    record.save(&data).unwrap();
    let mut supervisor = setup.spawn_process();
    server.wait_for("a healthy agent", healthy).await;
    assert!(runs(unrelated.id()), "an unrelated process was killed");
    supervisor.signal(Signal::SIGTERM);
    assert!(supervisor.wait().await.success());
    unrelated.kill().unwrap();
    unrelated.wait().unwrap();

    // An agent left running on the health port by a supervisor that was killed.
    let orphan_config = setup.path("orphan.yaml");
    std::fs::write(
        &orphan_config,
        format!(
            "{BASE}  extensions: [health_check]\nextensions:\n  health_check:\n    endpoint: 127.0.0.1:{}\n",
            setup.health_port
        ),
    )
    .unwrap();
    let mut orphan = std::process::Command::new(fake_agent())
        .arg("--config")
        .arg(&orphan_config)
        .args(["--version-tag", "orphan"])
        .process_group(0)
        .spawn()
        .unwrap();
    setup
        .wait_agent("the orphan answering", |b| b["version"] == "orphan")
        .await;
    AgentRecord::of(orphan.id(), &fake_agent())
        .unwrap()
        .save(&data)
        .unwrap();

    let mut supervisor = setup.spawn_process();
    let reaped = tokio::task::spawn_blocking(move || orphan.wait().unwrap());
    tokio::time::timeout(common::LIMIT, reaped)
        .await
        .expect("the supervisor stops the leftover agent")
        .unwrap();
    setup
        .wait_agent("the supervisor's own agent", |b| b["version"] == "v1")
        .await;
    server.wait_for("healthy on its own agent", healthy).await;
    let own = setup.agent_pid().await;
    assert!(
        setup.supervisor_log().contains("still runs; stopping it"),
        "{}",
        setup.supervisor_log()
    );
    supervisor.signal(Signal::SIGTERM);
    assert!(supervisor.wait().await.success());
    wait_gone(own, "the agent after a clean stop").await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_stops_the_supervisor_and_its_agent_cleanly() {
    let server = TestServer::start().await;
    let setup = Setup::new(&server.url, "", "");
    let mut supervisor = setup.spawn_process();
    server.wait_for("a healthy agent", healthy).await;
    let agent = setup.agent_pid().await;

    supervisor.signal(Signal::SIGHUP);
    let status = supervisor.wait().await;
    assert!(status.success(), "{status:?}\n{}", setup.supervisor_log());
    wait_gone(agent, "the agent after SIGHUP").await;
    assert!(setup.supervisor_log().contains("supervisor stopped"));
    assert!(!setup.path("data").join(AGENT_RECORD).exists());
    server.shutdown().await;
}
