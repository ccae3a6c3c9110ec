//! Issue 14 (fleet server): what an agent holding a key, or a web page the admin visits, must
//! not be able to do. Every test runs on real sockets.

mod common;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use common::{AgentSpec, Api, TestAgent, WAIT, eventually, start};
use opamp_proto::{
    AgentCapabilities, AgentToServer, InstanceUid, RemoteConfigStatus, RemoteConfigStatuses,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One HTTP/1.1 exchange written by hand (forged `Host`, browser headers), on a fresh
/// connection. Returns the status, the response head (lower-case) and the body.
async fn http(addr: std::net::SocketAddr, head: &str, body: &str) -> (u16, String, String) {
    let mut tcp = tokio::time::timeout(WAIT, tokio::net::TcpStream::connect(addr))
        .await
        .unwrap()
        .unwrap();
    let req = format!(
        "{head}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(WAIT, tcp.read_to_end(&mut out))
        .await
        .expect("answer in time")
        .unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let (resp_head, resp_body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = resp_head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, resp_head.to_ascii_lowercase(), resp_body.to_owned())
}

// ---------------- logging of agent strings ----------------

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The log of this test binary, captured (installed once, global: server tasks run on every
/// worker thread).
fn captured_log() -> &'static Captured {
    static LOG: OnceLock<Captured> = OnceLock::new();
    LOG.get_or_init(|| {
        let log = Captured::default();
        let writer = log.clone();
        tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || writer.clone())
            .init();
        log
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_strings_are_logged_escaped() {
    let log = captured_log();
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
    let forged = "bad\n2026-12-02T00:00:00.000000Z  INFO opamp_fleet_server::fleet: audit actor=admin action=agent.forget FORGED\r\u{1b}[2J\u{1b}]0;owned\u{7}";
    tx.send(&AgentToServer {
        instance_uid: uid.to_bytes(),
        sequence_num: 1,
        capabilities: (AgentCapabilities::REPORTS_STATUS
            | AgentCapabilities::REPORTS_REMOTE_CONFIG)
            .bits(),
        remote_config_status: Some(RemoteConfigStatus {
            last_remote_config_hash: vec![1, 2, 3].into(),
            status: RemoteConfigStatuses::Failed as i32,
            error_message: forged.into(),
        }),
        ..Default::default()
    })
    .await
    .unwrap();
    let path = format!("/api/agents/{uid}");
    eventually("the agent's status", || async {
        let (status, v) = api.call("GET", &path, None).await;
        (status == 200 && v["remote_config_status"]["error"] == forged).then_some(())
    })
    .await;
    let text = eventually("the status in the log", || async {
        let text = String::from_utf8_lossy(&log.0.lock().unwrap()).into_owned();
        text.contains("remote config status").then_some(text)
    })
    .await;
    let line = text
        .lines()
        .find(|l| l.contains("remote config status"))
        .unwrap();
    assert!(line.contains(r"bad\n2026-12-02"), "{line}");
    assert!(line.contains(r"FORGED\r\u{1b}[2J"), "{line}");
    for l in text.lines() {
        assert!(
            !l.contains("FORGED") || l.contains("remote config status"),
            "forged line: {l}"
        );
    }
    assert!(
        !text.contains('\u{1b}'),
        "a terminal escape reached the log"
    );
    assert!(
        !text.contains('\u{7}'),
        "a control character reached the log"
    );
    handle.shutdown().await;
}

// ---------------- CSRF and DNS rebinding ----------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_requests_and_foreign_hosts_are_refused() {
    let handle = start(":memory:").await;
    let addr = handle.http_addr();
    let api = Api::new(&handle);
    let agent = TestAgent::ws(
        &handle.opamp_ws_url(),
        AgentSpec::new(&[("service.name", "a")]),
    )
    .await
    .unwrap();
    let uid = agent.uid();
    eventually("agent", || async {
        (api.get("/api/summary").await["total"] == 1).then_some(())
    })
    .await;
    let host = format!("Host: {addr}");
    let restart = format!("POST /api/agents/{uid}/restart HTTP/1.1\r\n{host}");

    // What a page on another origin can make a browser send: a form post (the browser adds
    // Origin and Sec-Fetch-Site), a no-cors fetch, an old browser's bare form post.
    let forged = [
        "\r\nOrigin: http://evil.example\r\nSec-Fetch-Site: cross-site\r\nContent-Type: application/x-www-form-urlencoded",
        "\r\nOrigin: http://evil.example\r\nContent-Type: text/plain;charset=UTF-8",
        "\r\nOrigin: null\r\nContent-Type: multipart/form-data; boundary=x",
        "\r\nSec-Fetch-Site: same-site",
        "\r\nContent-Type: application/x-www-form-urlencoded",
        "",
    ];
    for extra in forged {
        let (status, head, body) = http(addr, &format!("{restart}{extra}"), "").await;
        assert_eq!(status, 403, "{extra:?}: {head}{body}");
        assert!(body.contains("cross_origin"), "{body}");
    }
    let (status, _, body) = http(
        addr,
        &format!(
            "DELETE /api/agents/{uid}/config HTTP/1.1\r\n{host}\r\nOrigin: http://evil.example"
        ),
        "",
    )
    .await;
    assert_eq!(status, 403, "{body}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(agent.restarts(), 0, "a forged request restarted the agent");
    assert_eq!(
        api.get("/api/audit").await["entries"]
            .as_array()
            .unwrap()
            .len(),
        0,
        "nothing in the audit log"
    );

    // The dashboard's own requests, and programs, go through.
    for extra in [
        format!("\r\nOrigin: http://{addr}\r\nSec-Fetch-Site: same-origin"),
        format!("\r\nOrigin: http://{addr}"),
        "\r\nX-Requested-With: curl".to_owned(),
    ] {
        let (status, head, body) = http(addr, &format!("{restart}{extra}"), "").await;
        assert_eq!(status, 200, "{extra:?}: {head}{body}");
    }
    eventually("three restarts", || async {
        (agent.restarts() == 3).then_some(())
    })
    .await;

    // DNS rebinding: demo mode answers only to its own names, reads included.
    for bad in [
        "evil.example".to_owned(),
        format!("evil.example:{}", addr.port()),
        format!("localhost:{}", addr.port() ^ 1),
    ] {
        let (status, _, body) = http(
            addr,
            &format!("GET /api/agents HTTP/1.1\r\nHost: {bad}"),
            "",
        )
        .await;
        assert_eq!(status, 403, "{bad}: {body}");
        assert!(body.contains("host_not_allowed"), "{body}");
        assert!(!body.contains(&uid), "{body}");
    }
    for good in [addr.to_string(), format!("localhost:{}", addr.port())] {
        let (status, _, body) = http(
            addr,
            &format!("GET /api/agents HTTP/1.1\r\nHost: {good}"),
            "",
        )
        .await;
        assert_eq!(status, 200, "{good}: {body}");
    }
    agent.stop().await;
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_credentials_any_host_is_served_but_csrf_still_refused() {
    let config = common::config(":memory:").with_admin("admin", Some("pw".into()));
    let handle = opamp_fleet_server::FleetServer::start(config)
        .await
        .unwrap();
    let addr = handle.http_addr();
    // Basic credentials a browser would add by itself to a cross-site form post.
    let basic = "Authorization: Basic YWRtaW46cHc=";
    let (status, _, body) = http(
        addr,
        &format!("GET /api/summary HTTP/1.1\r\nHost: fleet.example.com\r\n{basic}"),
        "",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, _, body) = http(
        addr,
        &format!(
            "POST /api/configs/x/rollout/pause HTTP/1.1\r\nHost: fleet.example.com\r\n{basic}\r\nOrigin: https://evil.example\r\nContent-Type: text/plain"
        ),
        "",
    )
    .await;
    assert_eq!(status, 403, "{body}");
    // Same origin: reaches the handler (404: no such configuration).
    let (status, _, body) = http(
        addr,
        &format!(
            "POST /api/configs/x/rollout/pause HTTP/1.1\r\nHost: fleet.example.com\r\n{basic}\r\nOrigin: http://fleet.example.com"
        ),
        "",
    )
    .await;
    assert_eq!(status, 404, "{body}");
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_responses_carry_hardening_headers() {
    let handle = start(":memory:").await;
    let addr = handle.http_addr();
    for path in ["/", "/assets/app.js", "/api/summary", "/api/nope"] {
        let (status, head, _) =
            http(addr, &format!("GET {path} HTTP/1.1\r\nHost: {addr}"), "").await;
        assert!(status == 200 || status == 404, "{path}: {head}");
        assert!(
            head.contains("content-security-policy: default-src 'none'; script-src 'self'"),
            "{path}: {head}"
        );
        assert!(head.contains("frame-ancestors 'none'"), "{path}: {head}");
        assert!(head.contains("x-frame-options: deny"), "{path}: {head}");
        assert!(
            head.contains("x-content-type-options: nosniff"),
            "{path}: {head}"
        );
    }
    handle.shutdown().await;
}

// ---------------- trusted operator labels ----------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_operator_labels_select_a_protected_configuration() {
    let handle = start(":memory:").await;
    let api = Api::new(&handle);
    let (status, v) = api
        .call(
            "POST",
            "/api/configs",
            Some(serde_json::json!({
                "name": "prod-eu",
                "selector": "label:environment=prod,label:region=eu",
                "files": { "": { "content_type": "text/yaml", "body": "exporters:\n  otlp:\n    headers: {api-key: s3cret}\n" } },
            })),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    // The attacker claims the attributes, and the reserved keys as well.
    let agent = TestAgent::ws(
        &handle.opamp_ws_url(),
        AgentSpec::new(&[
            ("service.name", "claims-prod"),
            ("environment", "prod"),
            ("region", "eu"),
            ("label:environment", "prod"),
            ("label:region", "eu"),
        ]),
    )
    .await
    .unwrap();
    let uid = agent.uid();
    let path = format!("/api/agents/{uid}");
    eventually("agent", || async {
        let (s, v) = api.call("GET", &path, None).await;
        (s == 200 && v["identifying"]["service.name"] == "claims-prod").then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let v = api.get(&path).await;
    assert!(v["assigned_config"].is_null(), "{v}");
    assert_eq!(
        agent.configs_received(),
        0,
        "the agent chose its configuration"
    );
    assert_eq!(api.get("/api/assignments").await, serde_json::json!({}));

    // Bad labels are refused, nothing changes.
    for bad in [
        serde_json::json!({ "labels": { "env ironment": "prod" } }),
        serde_json::json!({ "labels": { "environment": "prod,region=eu" } }),
        serde_json::json!({ "labels": { "label:environment": "prod" } }),
        serde_json::json!({ "nope": {} }),
    ] {
        let (status, v) = api
            .call("PUT", &format!("{path}/labels"), Some(bad.clone()))
            .await;
        assert!(status == 400 || status == 422, "{bad}: {status} {v}");
    }
    assert_eq!(agent.configs_received(), 0);

    // The operator labels it: now it gets the configuration, and the audit log says who.
    let (status, v) = api
        .call(
            "PUT",
            &format!("{path}/labels"),
            Some(serde_json::json!({ "labels": { "environment": "prod", "region": "eu" } })),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    eventually("the protected configuration", || async {
        (agent.configs_received() == 1).then_some(())
    })
    .await;
    let v = api.get(&path).await;
    assert_eq!(v["assigned_config"], "prod-eu", "{v}");
    assert_eq!(v["labels"]["environment"], "prod", "{v}");
    let audit = api.get("/api/audit").await;
    assert!(
        audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "agent.labels.set" && e["target"] == uid.as_str()),
        "{audit}"
    );
    // The list filter sees the labels under the same names.
    let list = api
        .get("/api/agents?selector=label:environment%3Dprod")
        .await;
    assert_eq!(list["agents"].as_array().unwrap().len(), 1, "{list}");
    agent.stop().await;
    handle.shutdown().await;
}

// ---------------- registry floods ----------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_new_uids_never_evicts_operator_state() {
    let config = common::config(":memory:").with_max_agents(2);
    let handle = opamp_fleet_server::FleetServer::start(config)
        .await
        .unwrap();
    let api = Api::new(&handle);
    let url = handle.opamp_ws_url();
    let known = |uid: String| {
        let api = &api;
        async move { api.call("GET", &format!("/api/agents/{uid}"), None).await.0 == 200 }
    };
    let offline = |uid: String| {
        let api = &api;
        async move {
            let (s, v) = api.call("GET", &format!("/api/agents/{uid}"), None).await;
            (s == 200 && v["status"] == "offline").then_some(())
        }
    };
    // The operator labels agent A, which then goes offline first (the longest offline).
    let a = TestAgent::ws(&url, AgentSpec::new(&[("service.name", "a")]))
        .await
        .unwrap();
    let a_uid = a.uid();
    eventually("A", || async { known(a_uid.clone()).await.then_some(()) }).await;
    let (status, v) = api
        .call(
            "PUT",
            &format!("/api/agents/{a_uid}/labels"),
            Some(serde_json::json!({ "labels": { "owner": "ops" } })),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    a.stop().await;
    eventually("A offline", || offline(a_uid.clone())).await;
    // A flood of new UIDs, one after the other.
    for i in 0..4 {
        let x = TestAgent::ws(&url, AgentSpec::new(&[("service.name", "flood")]))
            .await
            .unwrap();
        let uid = x.uid();
        eventually("flood agent", || async {
            known(uid.clone()).await.then_some(())
        })
        .await;
        x.stop().await;
        eventually("flood agent offline", || offline(uid.clone())).await;
        let v = api.get(&format!("/api/agents/{a_uid}")).await;
        assert_eq!(v["labels"]["owner"], "ops", "round {i}: {v}");
    }
    assert_eq!(api.get("/api/summary").await["total"], 2);
    handle.shutdown().await;
}

/// Connects a raw WebSocket agent with a fresh UID and returns the server's first answer.
async fn first_answer(url: &str, uid: InstanceUid) -> opamp_proto::ServerToAgent {
    let (conn, _) =
        opamp_transport::ws::connect(url, &opamp_transport::ws::WsConnectOptions::default())
            .await
            .unwrap();
    let (mut tx, mut rx) = conn.split();
    tx.send(&AgentToServer {
        instance_uid: uid.to_bytes(),
        sequence_num: 1,
        capabilities: AgentCapabilities::REPORTS_STATUS.bits(),
        ..Default::default()
    })
    .await
    .unwrap();
    let answer = tokio::time::timeout(WAIT, rx.recv::<opamp_proto::ServerToAgent>())
        .await
        .expect("an answer in time")
        .unwrap()
        .expect("an answer");
    let _ = tx
        .close(opamp_transport::ws::CloseCode::Normal, "bye")
        .await;
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_uids_are_rate_limited_per_address() {
    let config = common::config(":memory:").with_new_agents_per_minute(3);
    let handle = opamp_fleet_server::FleetServer::start(config)
        .await
        .unwrap();
    let api = Api::new(&handle);
    let url = handle.opamp_ws_url();
    let mut uids = Vec::new();
    for _ in 0..3 {
        let uid = InstanceUid::new_v7();
        let answer = first_answer(&url, uid).await;
        assert!(answer.error_response.is_none(), "{answer:?}");
        uids.push(uid);
    }
    let refused = first_answer(&url, InstanceUid::new_v7()).await;
    let err = refused.error_response.expect("a refusal");
    assert_eq!(
        err.r#type,
        opamp_proto::ServerErrorResponseType::Unavailable as i32
    );
    assert!(matches!(
        err.details,
        Some(opamp_proto::server_error_response::Details::RetryInfo(ref r)) if r.retry_after_nanoseconds > 0
    ));
    // A known agent is still welcome.
    let again = first_answer(&url, uids[0]).await;
    assert!(again.error_response.is_none(), "{again:?}");
    eventually("three agents", || async {
        (api.get("/api/summary").await["total"] == 3).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(api.get("/api/summary").await["total"], 3);
    handle.shutdown().await;
}

// ---------------- bytes per agent ----------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_kept_per_agent_are_bounded_and_the_cut_is_visible() {
    let limit = 64 * 1024;
    let config = common::config(":memory:").with_max_agent_bytes(limit);
    let handle = opamp_fleet_server::FleetServer::start(config)
        .await
        .unwrap();
    let api = Api::new(&handle);
    let (conn, _) = opamp_transport::ws::connect(
        &handle.opamp_ws_url(),
        &opamp_transport::ws::WsConnectOptions::default(),
    )
    .await
    .unwrap();
    let (mut tx, _rx) = conn.split();
    let uid = InstanceUid::new_v7();
    let big = "x: ".to_owned() + &"y".repeat(1024 * 1024);
    tx.send(&AgentToServer {
        instance_uid: uid.to_bytes(),
        sequence_num: 1,
        capabilities: (AgentCapabilities::REPORTS_STATUS
            | AgentCapabilities::REPORTS_EFFECTIVE_CONFIG
            | AgentCapabilities::REPORTS_REMOTE_CONFIG)
            .bits(),
        agent_description: Some(
            opamp_proto::AgentDescription::builder()
                .identifying("service.name", "big")
                .build(),
        ),
        effective_config: Some(opamp_proto::EffectiveConfig {
            config_map: Some(opamp_proto::AgentConfigMap {
                config_map: [(
                    String::new(),
                    opamp_proto::AgentConfigFile {
                        body: big.into_bytes().into(),
                        content_type: "text/yaml".into(),
                    },
                )]
                .into(),
            }),
        }),
        remote_config_status: Some(RemoteConfigStatus {
            last_remote_config_hash: vec![1].into(),
            status: RemoteConfigStatuses::Failed as i32,
            error_message: "e".repeat(512 * 1024),
        }),
        ..Default::default()
    })
    .await
    .unwrap();
    let path = format!("/api/agents/{uid}");
    let v = eventually("the agent", || async {
        let (s, v) = api.call("GET", &path, None).await;
        (s == 200 && v["identifying"]["service.name"] == "big").then_some(v)
    })
    .await;
    assert!(v["effective_config"].is_null(), "stored anyway");
    let oversized = v["oversized"].as_array().expect("oversized listed");
    assert_eq!(oversized.len(), 1, "{oversized:?}");
    assert!(
        oversized[0]
            .as_str()
            .unwrap()
            .starts_with("effective configuration"),
        "{oversized:?}"
    );
    let err = v["remote_config_status"]["error"].as_str().unwrap();
    assert!(
        err.len() < 8 * 1024,
        "error message kept whole: {}",
        err.len()
    );
    let stored = serde_json::to_vec(&v).unwrap().len();
    assert!(stored < limit + 4096, "record of {stored} bytes");
    handle.shutdown().await;
}

// ---------------- hardening ----------------

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_is_created_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("fleet.sqlite");
    let handle = start(db.to_str().unwrap()).await;
    let api = Api::new(&handle);
    let agent = TestAgent::ws(
        &handle.opamp_ws_url(),
        AgentSpec::new(&[("service.name", "a")]),
    )
    .await
    .unwrap();
    eventually("agent", || async {
        (api.get("/api/summary").await["total"] == 1).then_some(())
    })
    .await;
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let entry = entry.unwrap();
        let mode = entry.metadata().unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}: {mode:o}", entry.path().display());
    }
    agent.stop().await;
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_agent_keys_off_loopback_need_an_explicit_flag() {
    let config = common::config(":memory:")
        .with_opamp_addr("0.0.0.0:0".parse().unwrap())
        .with_agent_api_keys(vec!["k".into()]);
    match opamp_fleet_server::FleetServer::start(config.clone()).await {
        Err(opamp_fleet_server::FleetError::Settings(text)) => {
            assert!(text.contains("--allow-plaintext-agent-keys"), "{text}");
        }
        other => panic!("started without TLS: {other:?}"),
    }
    let handle =
        opamp_fleet_server::FleetServer::start(config.with_allow_plaintext_agent_keys(true))
            .await
            .expect("starts when the risk is accepted");
    handle.shutdown().await;
}
