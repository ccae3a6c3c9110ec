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

/// Chromium and chromedriver, or `None` (test skipped; a failure when `CI` is set).
fn browser() -> Option<(String, String)> {
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
        return None;
    };
    Some((chromium, chromedriver))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_shows_agents_and_pushes_configs() {
    let Some((chromium, chromedriver)) = browser() else {
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

/// Every string an agent controls, each a different attempt at markup or script.
const XSS: &[&str] = &[
    "<img src=x onerror=\"window.__xss=(window.__xss||0)+1\">",
    "<script>window.__xss=(window.__xss||0)+1</script>",
    "\"><svg onload=\"window.__xss=(window.__xss||0)+1\">",
    "'><iframe srcdoc=\"<script>parent.__xss=1</script>\">",
    "javascript:window.__xss=1",
];

fn xss(i: usize) -> String {
    format!("{}#{i}", XSS[i % XSS.len()])
}

/// Stored XSS: an agent puts markup and script in every string it reports (description,
/// attribute keys and values, health, remote config error, effective configuration,
/// packages, components, custom capabilities and messages); the dashboard shows them as
/// text, and nothing runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_strings_are_rendered_as_text() {
    use opamp_proto::{
        AgentCapabilities, AgentConfigFile, AgentConfigMap, AgentDescription, AgentToServer,
        AvailableComponents, ComponentDetails, ComponentHealth, CustomCapabilities, CustomMessage,
        EffectiveConfig, InstanceUid, KeyValue, PackageStatus, PackageStatuses, RemoteConfigStatus,
        RemoteConfigStatuses,
    };
    let Some((chromium, chromedriver)) = browser() else {
        return;
    };
    let handle = start(":memory:").await;
    let api = Api::new(&handle);
    let (conn, _) = opamp_transport::ws::connect(
        &handle.opamp_ws_url(),
        &opamp_transport::ws::WsConnectOptions::default(),
    )
    .await
    .unwrap();
    let (mut tx, _rx) = conn.split();
    let uid = InstanceUid::new_v7();
    let kv = |k: String, v: String| KeyValue {
        key: k,
        value: Some(opamp_proto::AnyValue::string(v)),
    };
    let health = ComponentHealth {
        healthy: false,
        status: xss(4),
        last_error: xss(5),
        component_health_map: [(
            xss(6),
            ComponentHealth {
                healthy: false,
                status: xss(7),
                last_error: xss(8),
                ..Default::default()
            },
        )]
        .into(),
        ..Default::default()
    };
    tx.send(&AgentToServer {
        instance_uid: uid.to_bytes(),
        sequence_num: 1,
        capabilities: (AgentCapabilities::REPORTS_STATUS
            | AgentCapabilities::REPORTS_HEALTH
            | AgentCapabilities::REPORTS_EFFECTIVE_CONFIG
            | AgentCapabilities::REPORTS_REMOTE_CONFIG
            | AgentCapabilities::REPORTS_PACKAGE_STATUSES
            | AgentCapabilities::REPORTS_AVAILABLE_COMPONENTS)
            .bits(),
        agent_description: Some(AgentDescription {
            identifying_attributes: vec![
                kv("service.name".into(), xss(0)),
                kv("service.version".into(), xss(1)),
                kv(xss(2), xss(3)),
            ],
            non_identifying_attributes: vec![kv("host.name".into(), xss(9))],
        }),
        health: Some(health),
        remote_config_status: Some(RemoteConfigStatus {
            last_remote_config_hash: vec![0xab].into(),
            status: RemoteConfigStatuses::Failed as i32,
            error_message: xss(10),
        }),
        effective_config: Some(EffectiveConfig {
            config_map: Some(AgentConfigMap {
                config_map: [(
                    xss(11),
                    AgentConfigFile {
                        body: xss(12).into_bytes().into(),
                        content_type: xss(13),
                    },
                )]
                .into(),
            }),
        }),
        package_statuses: Some(PackageStatuses {
            packages: [(
                xss(14),
                PackageStatus {
                    name: xss(14),
                    agent_has_version: xss(15),
                    server_offered_version: xss(16),
                    error_message: xss(17),
                    ..Default::default()
                },
            )]
            .into(),
            error_message: xss(18),
            ..Default::default()
        }),
        available_components: Some(AvailableComponents {
            components: [(
                xss(19),
                ComponentDetails {
                    metadata: vec![kv(xss(20), xss(21))],
                    ..Default::default()
                },
            )]
            .into(),
            hash: vec![1].into(),
        }),
        custom_capabilities: Some(CustomCapabilities {
            capabilities: vec![xss(22)],
        }),
        custom_message: Some(CustomMessage {
            capability: xss(22),
            r#type: xss(23),
            data: xss(24).into_bytes().into(),
        }),
        ..Default::default()
    })
    .await
    .unwrap();
    let uid = uid.to_string();
    eventually("the agent", || async {
        let (s, v) = api.call("GET", &format!("/api/agents/{uid}"), None).await;
        (s == 200 && !v["custom_messages"].as_array().unwrap().is_empty()).then_some(())
    })
    .await;

    let driver = webdriver::Driver::start(&chromedriver).await;
    let profile = tempfile::tempdir().unwrap();
    let s = driver.session(&chromium, profile.path()).await;
    let base = format!("http://{}/", handle.http_addr());
    let injected = "document.querySelectorAll('#main img, #main svg, #main script, #main iframe, #main a[href^=\"javascript\"]').length";

    s.goto(&base).await;
    let row = format!("tr[data-uid=\"{uid}\"]");
    s.wait_text(&row, "agent row", |t| t.contains(&xss(0)))
        .await;
    s.goto(&format!("{base}#/agent/{uid}")).await;
    s.wait_text("#agent-title", "title", |t| t.contains(&xss(0)))
        .await;
    s.wait_text("#custom-in", "custom message", |t| t.contains(&xss(24)))
        .await;
    let page = s.text("#main").await;
    for i in [2, 3, 4, 5, 6, 9, 10, 12, 14, 17, 19, 20, 21, 22, 23, 24] {
        assert!(
            page.contains(&xss(i)),
            "string {i} not shown as text: {page}"
        );
    }
    assert_eq!(
        s.eval(&format!("return {injected};")).await,
        0,
        "markup was inserted"
    );
    assert!(
        s.eval("return window.__xss === undefined;").await == true,
        "agent-supplied script ran"
    );
    s.goto(&format!("{base}#/audit")).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(s.eval("return window.__xss === undefined;").await == true);
    s.screenshot(&target_dir().join("opamp-fleet-xss.png"))
        .await;
    s.quit().await;
    handle.shutdown().await;
}
