//! The dashboard in a real browser (headless Chromium through chromedriver): the agent row
//! appears, a configuration pushed through the page reaches the agent and shows `APPLIED`,
//! and a bad YAML is refused on the page with nothing sent. Screenshots are saved under
//! `target/`.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`apt-get install -y chromium
//! chromium-driver`); `CHROMIUM` and `CHROMEDRIVER` override the binaries. Without them the
//! test is skipped with a message, except when `CI` is set, where it fails.

mod common;
#[path = "browser/webdriver.rs"]
mod webdriver;

use std::path::{Path, PathBuf};

use common::{AgentSpec, Api, TestAgent, eventually, start};

fn find_binary(env: &str, names: &[&str]) -> Option<String> {
    if let Ok(p) = std::env::var(env) {
        return Some(p);
    }
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for name in names {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate.to_string_lossy().into_owned());
            }
        }
    }
    None
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_shows_agents_and_pushes_configs() {
    let chromium = find_binary(
        "CHROMIUM",
        &["chromium", "chromium-browser", "google-chrome"],
    );
    let chromedriver = find_binary("CHROMEDRIVER", &["chromedriver"]);
    let (Some(chromium), Some(chromedriver)) = (chromium, chromedriver) else {
        let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false");
        assert!(
            !ci,
            "CI is set but chromium/chromedriver are missing: install Debian's chromium and chromium-driver"
        );
        eprintln!(
            "SKIPPED dashboard browser test: chromium and chromedriver not found \
             (apt-get install -y chromium chromium-driver)"
        );
        return;
    };

    let handle = start(":memory:").await;
    let api = Api::new(&handle);
    let spec = AgentSpec::new(&[
        ("service.name", "otel-collector"),
        ("service.version", "0.120.0"),
        ("environment", "production"),
        ("region", "eu-west-1"),
    ]);
    let agent = TestAgent::ws(&handle.opamp_ws_url(), spec.clone())
        .await
        .unwrap();
    let other = TestAgent::ws(
        &handle.opamp_ws_url(),
        AgentSpec::new(&[
            ("service.name", "edge-agent"),
            ("environment", "staging"),
            ("region", "us-east-1"),
        ]),
    )
    .await
    .unwrap();
    eventually("two agents", || async {
        (api.get("/api/summary").await["total"] == 2).then_some(())
    })
    .await;

    let driver = webdriver::Driver::start(&chromedriver).await;
    let profile = tempfile::tempdir().unwrap();
    let s = driver.session(&chromium, profile.path()).await;
    let base = format!("http://{}/", handle.http_addr());
    let shots = target_dir();

    // Fleet overview: the agent row appears, counters are right.
    s.goto(&base).await;
    let row = format!("tr[data-uid=\"{}\"]", spec.uid());
    s.find(&row).await;
    assert!(s.text(&row).await.contains("otel-collector"));
    s.wait_text("#sum-total", "total", |t| t == "2").await;
    s.wait_text("#sum-healthy", "healthy", |t| t == "2").await;

    // Agent page: push a valid configuration; the page shows APPLIED.
    s.goto(&format!("{base}#/agent/{}", spec.uid())).await;
    s.wait_text("#agent-title", "title", |t| t.contains("otel-collector"))
        .await;
    let yaml = "receivers:\n  otlp:\n    protocols:\n      grpc: {}\nexporters:\n  debug:\n    verbosity: basic\nservice:\n  pipelines:\n    traces:\n      receivers: [otlp]\n      exporters: [debug]\n";
    s.type_into("#config-body", yaml).await;
    s.click("#config-push").await;
    s.wait_text("#remote-status", "remote config status", |t| t == "APPLIED")
        .await;
    assert_eq!(agent.configs_received(), 1);
    s.wait_text("#effective", "effective config", |t| {
        t.contains("verbosity: basic")
    })
    .await;
    s.screenshot(&shots.join("opamp-fleet-agent.png")).await;

    // Actions without a body go through the CSRF guard (same-origin requests of the page).
    s.click("#action-full-state").await;
    eventually("full state requested", || async {
        api.get("/api/audit").await["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "agent.full_state")
            .then_some(())
    })
    .await;
    // Operator labels set on the page.
    s.type_into("#labels-input", "environment=prod, team=obs")
        .await;
    s.click("#labels-save").await;
    s.wait_text("#labels", "labels", |t| {
        t.contains("team") && t.contains("obs")
    })
    .await;
    let v = api.get(&format!("/api/agents/{}", spec.uid())).await;
    assert_eq!(v["labels"]["environment"], "prod", "{v}");

    // A bad YAML is refused on the page; nothing reaches the agent or the audit log.
    let audit_before = api.get("/api/audit").await["entries"]
        .as_array()
        .unwrap()
        .len();
    s.type_into("#config-body", "receivers: [otlp\nexporters:\n")
        .await;
    s.click("#config-push").await;
    let err = s
        .wait_text("#config-error", "parse error shown", |t| !t.is_empty())
        .await;
    assert!(err.contains("not valid YAML"), "{err}");
    assert!(err.starts_with("Not sent"), "{err}");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(agent.configs_received(), 1, "nothing was sent");
    let audit_after = api.get("/api/audit").await["entries"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(audit_before, audit_after);
    s.scroll_to("#config-error").await;
    s.screenshot(&shots.join("opamp-fleet-bad-yaml.png")).await;

    // Back to the overview: the config status column is live.
    s.goto(&base).await;
    s.wait_text(
        &format!("{row} td.config-status"),
        "config status column",
        |t| t == "APPLIED",
    )
    .await;
    s.screenshot(&shots.join("opamp-fleet-dashboard.png")).await;
    eprintln!("screenshots in {}", shots.display());

    s.quit().await;
    agent.stop().await;
    other.stop().await;
    handle.shutdown().await;
}
