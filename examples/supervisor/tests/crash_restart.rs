//! An agent that crashes is restarted with growing delays (a crash loop never spins), its
//! health is reported with the exit status and the tail of its error output, and it is healthy
//! again once the cause is gone; the server's restart command restarts it.

mod common;

use std::time::Duration;

use common::{LIMIT, Setup, TestServer, healthy, request};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_loop_backs_off_and_recovers() {
    let server = TestServer::start().await;
    let dir_flag = tempfile::tempdir().unwrap();
    let flag = dir_flag.path().join("crash-now");
    let setup = Setup::new(
        &server.url,
        &format!("  crash_if_exists: {}\n", flag.display()),
        "",
    );
    let supervisor = setup.start();
    server.wait_for("a healthy agent", healthy).await;
    assert_eq!(setup.starts().len(), 1);

    // Crash it, and make every restart crash at once until the flag is gone.
    std::fs::write(&flag, b"x").unwrap();
    let answer = request(
        "POST",
        &format!("127.0.0.1:{}", setup.health_port),
        "/crash",
    )
    .await;
    assert_eq!(answer.map(|a| a.0), Some(200));

    let (_, status) = server
        .wait_for("unhealthy with the crash reason", |s| {
            s.health.as_ref().is_some_and(|h| {
                !h.healthy
                    && h.last_error.contains("exit status 2")
                    && h.last_error.contains("crash requested")
            })
        })
        .await;
    assert_eq!(status.health.as_ref().unwrap().status, "exited");

    // Several restarts, each after a longer delay.
    let deadline = tokio::time::Instant::now() + LIMIT;
    while setup.starts().len() < 5 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no restarts: {}",
            setup.starts().len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let starts = setup.starts();
    // starts[1] is the first restart after the requested crash; then the crash loop. The
    // delays are 300 ms, 600 ms, 1.2 s... ±20 %: check lower bounds only.
    let gaps: Vec<u64> = starts
        .windows(2)
        .map(|w| w[1].millis - w[0].millis)
        .collect();
    for (i, gap) in gaps.iter().enumerate().skip(1) {
        let at_least = 300 * (1u64 << (i.min(3))) * 8 / 10;
        assert!(
            *gap >= at_least.min(2400),
            "gap {i} is {gap} ms, expected >= {at_least} ms: {gaps:?}"
        );
    }
    assert!(gaps[3] > gaps[1], "the delay grows: {gaps:?}");

    // The cause is gone: the next restart is healthy and reported so.
    std::fs::remove_file(&flag).unwrap();
    server.wait_for("healthy again", healthy).await;
    setup.wait_agent("the agent answering", |_| true).await;

    // The restart command restarts it (a new process).
    let pid_before = setup.agent_health().await.unwrap().1["pid"]
        .as_u64()
        .unwrap();
    let (conn, _) = server.wait_for("healthy", healthy).await;
    conn.restart().unwrap();
    setup
        .wait_agent("a restarted agent", |b| {
            b["pid"].as_u64() != Some(pid_before)
        })
        .await;
    server
        .wait_for("healthy after the restart command", healthy)
        .await;

    supervisor.stop().await;
    server.shutdown().await;
}
