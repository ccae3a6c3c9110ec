//! Test harness: an opamp-server that records reports, the fake agent, a supervisor running
//! in the test's runtime, and a small HTTP file server for packages.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::rt::TokioIo;
use opamp_example_agent::yaml::env::process_env;
use opamp_server::proto::{
    AgentConfigFile, AgentConfigMap, AgentRemoteConfig, AgentToServer, RemoteConfigStatus,
    ServerToAgent,
};
use opamp_server::state::AgentStatus;
use opamp_server::{
    Callbacks, ConnectingRequest, Connection, ConnectionCallbacks, ConnectionResponse, Server,
    ServerSettings, async_trait,
};
use opamp_supervisor::{Error, Supervisor, SupervisorConfig};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Generous limit, only to avoid hanging forever on a slow machine.
pub const LIMIT: Duration = Duration::from_secs(90);

pub fn fake_agent() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_fake-agent"))
}

/// A port that was free a moment ago (for the fake agent's health endpoint).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

pub fn sha256(bytes: &[u8]) -> Vec<u8> {
    Sha256::digest(bytes).to_vec()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// ---------------------------------------------------------------------------------------
// The OpAMP server.

#[derive(Default)]
pub struct Log {
    pub statuses: Mutex<Vec<RemoteConfigStatus>>,
    /// SHA-256 (hex) of every effective configuration file reported.
    pub effective: Mutex<std::collections::BTreeSet<String>>,
}

struct Accept(Arc<Log>);
struct Record(Arc<Log>);

#[async_trait]
impl Callbacks for Accept {
    async fn on_connecting(&self, _request: &ConnectingRequest<'_>) -> ConnectionResponse {
        ConnectionResponse::accept(Record(Arc::clone(&self.0)))
    }
}

#[async_trait]
impl ConnectionCallbacks for Record {
    async fn on_message(&self, _conn: &Connection, msg: &AgentToServer) -> Option<ServerToAgent> {
        if let Some(status) = &msg.remote_config_status {
            self.0.statuses.lock().unwrap().push(status.clone());
        }
        if let Some(map) = msg
            .effective_config
            .as_ref()
            .and_then(|e| e.config_map.as_ref())
        {
            let mut effective = self.0.effective.lock().unwrap();
            for file in map.config_map.values() {
                effective.insert(hex(&sha256(&file.body)));
            }
        }
        None
    }
}

pub struct TestServer {
    pub server: Server,
    pub url: String,
    pub log: Arc<Log>,
}

impl TestServer {
    pub async fn start() -> Self {
        let log = Arc::new(Log::default());
        let settings = ServerSettings::default()
            .with_listen_addr("127.0.0.1:0".parse().unwrap())
            .with_heartbeat_interval(None);
        let server = Server::new(settings, Accept(Arc::clone(&log))).unwrap();
        let addr = server.start().await.unwrap();
        TestServer {
            server,
            url: format!("ws://{addr}/v1/opamp"),
            log,
        }
    }

    /// Waits until an open connection's merged status satisfies `pred`.
    pub async fn wait_for(
        &self,
        what: &str,
        pred: impl Fn(&AgentStatus) -> bool,
    ) -> (Connection, Arc<AgentStatus>) {
        let deadline = tokio::time::Instant::now() + LIMIT;
        let mut last = None;
        loop {
            for conn in self.server.connections() {
                if conn.is_closed() {
                    continue;
                }
                let status = conn.status();
                if pred(&status) {
                    return (conn, status);
                }
                last = Some(status);
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}; last status: {last:#?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn statuses(&self) -> Vec<RemoteConfigStatus> {
        self.log.statuses.lock().unwrap().clone()
    }

    /// Whether an effective configuration file with this SHA-256 (hex) was ever reported.
    pub fn was_reported(&self, sha256_hex: &str) -> bool {
        self.log.effective.lock().unwrap().contains(sha256_hex)
    }

    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

pub fn healthy(status: &AgentStatus) -> bool {
    status.health.as_ref().is_some_and(|h| h.healthy)
}

pub fn remote_status(status: &AgentStatus, hash: &[u8], wanted: i32) -> bool {
    status
        .remote_config_status
        .as_ref()
        .is_some_and(|r| r.status == wanted && r.last_remote_config_hash.as_ref() == hash)
}

/// The text of the only file of an effective configuration.
pub fn effective_text(status: &AgentStatus) -> Option<String> {
    let map = status.effective_config.as_ref()?.config_map.as_ref()?;
    let file = map.config_map.values().next()?;
    Some(String::from_utf8_lossy(&file.body).into_owned())
}

pub fn yaml_config(body: &str) -> AgentRemoteConfig {
    AgentRemoteConfig {
        config: Some(AgentConfigMap {
            config_map: [(
                "collector.yaml".to_owned(),
                AgentConfigFile {
                    body: body.to_owned().into(),
                    content_type: "text/yaml".into(),
                },
            )]
            .into(),
        }),
        config_hash: sha256(body.as_bytes()).into(),
    }
}

// ---------------------------------------------------------------------------------------
// The supervised setup.

pub const BASE: &str = "receivers:
  otlp: {}
exporters:
  debug: {}
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [debug]
";

/// A directory with `supervisor.yaml`, `base.yaml` and the fake agent's files.
pub struct Setup {
    pub dir: tempfile::TempDir,
    pub health_port: u16,
    /// `agent:` settings that replace the defaults of the test (`("reload", "sighup")`).
    pub agent_overrides: Vec<(&'static str, &'static str)>,
}

impl Setup {
    /// `behaviour` is the rest of the `fake_agent:` section of the base configuration
    /// (YAML, indented by two spaces), e.g. `"  crash_if_exists: /x\n"`.
    pub fn new(server_url: &str, behaviour: &str, extra_capabilities: &str) -> Self {
        Self::with_overrides(server_url, behaviour, extra_capabilities, Vec::new())
    }

    pub fn with_overrides(
        server_url: &str,
        behaviour: &str,
        extra_capabilities: &str,
        agent_overrides: Vec<(&'static str, &'static str)>,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let health_port = free_port();
        let setup = Setup {
            dir,
            health_port,
            agent_overrides,
        };
        setup.write_files(server_url, behaviour, extra_capabilities);
        setup
    }

    pub fn write_files(&self, server_url: &str, behaviour: &str, extra_capabilities: &str) {
        let start_log = self.path("starts.log");
        let base = format!(
            "{BASE}fake_agent:\n  start_log: {}\n{behaviour}",
            start_log.display()
        );
        std::fs::write(self.path("base.yaml"), base).unwrap();
        let exe = fake_agent().display().to_string();
        let health_url = format!("http://127.0.0.1:{}/", self.health_port);
        let mut agent: Vec<(&str, &str)> = vec![
            ("executable", &exe),
            ("config_file", "effective.yaml"),
            ("base_config", "base.yaml"),
            ("health_check_url", &health_url),
            ("inject_health_check", "true"),
            ("health_check_interval", "200ms"),
            ("config_apply_timeout", "30s"),
            ("config_stable_time", "600ms"),
            ("stop_timeout", "10s"),
            (
                "restart_backoff",
                "{initial: 300ms, max: 3s, reset_after: 1m}",
            ),
        ];
        for (key, value) in &self.agent_overrides {
            match agent.iter_mut().find(|(k, _)| k == key) {
                Some(entry) => entry.1 = value,
                None => agent.push((key, value)),
            }
        }
        let agent: String = agent.iter().map(|(k, v)| format!("  {k}: {v}\n")).collect();
        let supervisor = format!(
            "server:
  endpoint: {server_url}
heartbeat_interval: 1s
capabilities:
  accepts_remote_config: true
  reports_remote_config: true
  accepts_restart_command: true
  reports_own_metrics: true
{extra_capabilities}agent:
{agent}storage:
  directory: data
"
        );
        std::fs::write(self.path("supervisor.yaml"), supervisor).unwrap();
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn config(&self) -> SupervisorConfig {
        SupervisorConfig::load(&self.path("supervisor.yaml"), &process_env).unwrap()
    }

    pub fn start(&self) -> Running {
        let (stop, rx) = watch::channel(false);
        let handle = tokio::spawn(Supervisor::new(self.config()).run(rx));
        Running { stop, handle }
    }

    /// Lines of the fake agent's start log.
    pub fn starts(&self) -> Vec<StartLine> {
        std::fs::read_to_string(self.path("starts.log"))
            .unwrap_or_default()
            .lines()
            .map(StartLine::parse)
            .collect()
    }

    pub fn effective_file(&self) -> String {
        std::fs::read_to_string(self.path("effective.yaml")).unwrap_or_default()
    }

    /// The fake agent's health answer: (status code, body as JSON).
    pub async fn agent_health(&self) -> Option<(u16, serde_json::Value)> {
        get(&format!("127.0.0.1:{}", self.health_port), "/")
            .await
            .map(|(code, body)| (code, serde_json::from_slice(&body).unwrap_or_default()))
    }

    /// Waits until the fake agent answers 200 and `pred` holds for its answer.
    pub async fn wait_agent(
        &self,
        what: &str,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = tokio::time::Instant::now() + LIMIT;
        loop {
            if let Some((200, body)) = self.agent_health().await
                && pred(&body)
            {
                return body;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

pub struct StartLine {
    pub millis: u64,
    pub pid: u32,
    pub version: String,
    pub sha256: String,
}

impl StartLine {
    fn parse(line: &str) -> Self {
        let parts: Vec<&str> = line.split_whitespace().collect();
        StartLine {
            millis: parts[0].parse().unwrap(),
            pid: parts[1].parse().unwrap(),
            version: parts[2].to_owned(),
            sha256: parts[3].to_owned(),
        }
    }
}

pub struct Running {
    stop: watch::Sender<bool>,
    handle: JoinHandle<Result<(), Error>>,
}

impl Running {
    pub async fn stop(self) {
        self.stop.send(true).unwrap();
        tokio::time::timeout(LIMIT, self.handle)
            .await
            .expect("the supervisor stops")
            .unwrap()
            .unwrap();
    }
}

/// A plain HTTP/1.1 request to `authority`.
pub async fn request(method: &str, authority: &str, path: &str) -> Option<(u16, Bytes)> {
    let stream = tokio::net::TcpStream::connect(authority).await.ok()?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .ok()?;
    tokio::spawn(conn);
    let request = http::Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::HOST, authority)
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = tokio::time::timeout(Duration::from_secs(10), sender.send_request(request))
        .await
        .ok()?
        .ok()?;
    let code = response.status().as_u16();
    let body = response.into_body().collect().await.ok()?.to_bytes();
    Some((code, body))
}

pub async fn get(authority: &str, path: &str) -> Option<(u16, Bytes)> {
    request("GET", authority, path).await
}

// ---------------------------------------------------------------------------------------
// A file server for package downloads.

pub struct FileServer {
    pub base_url: String,
    task: JoinHandle<()>,
}

impl FileServer {
    pub async fn start(files: BTreeMap<String, Vec<u8>>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let files = Arc::new(files);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let files = Arc::clone(&files);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |req: http::Request<hyper::body::Incoming>| {
                            let files = Arc::clone(&files);
                            async move {
                                let response = match files.get(req.uri().path()) {
                                    Some(body) => {
                                        http::Response::new(Full::new(Bytes::from(body.clone())))
                                    }
                                    None => http::Response::builder()
                                        .status(404)
                                        .body(Full::new(Bytes::new()))
                                        .unwrap(),
                                };
                                Ok::<_, Infallible>(response)
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        FileServer {
            base_url: format!("http://{addr}"),
            task,
        }
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A shell script that runs the fake agent with another version tag.
pub fn wrapper_script(version: &str) -> Vec<u8> {
    format!(
        "#!/bin/sh\nexec '{}' --version-tag {version} \"$@\"\n",
        fake_agent().display()
    )
    .into_bytes()
}

pub fn exists(path: &Path) -> bool {
    path.exists()
}

// ---------------------------------------------------------------------------------------
// The supervisor as a real process (for signals and crashes).

pub fn supervisor_exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_opamp-supervisor"))
}

/// A running `opamp-supervisor` process; killed (SIGKILL) when dropped.
pub struct SupervisorProcess {
    child: std::process::Child,
}

impl Setup {
    /// Starts `opamp-supervisor --config supervisor.yaml`, its output appended to
    /// `supervisor.log`.
    pub fn spawn_process(&self) -> SupervisorProcess {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path("supervisor.log"))
            .unwrap();
        let child = std::process::Command::new(supervisor_exe())
            .arg("--config")
            .arg(self.path("supervisor.yaml"))
            .env("RUST_LOG", "info")
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        SupervisorProcess { child }
    }

    pub fn supervisor_log(&self) -> String {
        std::fs::read_to_string(self.path("supervisor.log")).unwrap_or_default()
    }

    /// The process ID of the agent answering on the health port.
    pub async fn agent_pid(&self) -> u32 {
        let body = self.wait_agent("the agent answering", |_| true).await;
        u32::try_from(body["pid"].as_u64().unwrap()).unwrap()
    }
}

impl SupervisorProcess {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap());
        nix::sys::signal::kill(pid, signal).unwrap();
    }

    /// Waits (at most [`LIMIT`]) for the process to exit.
    pub async fn wait(&mut self) -> std::process::ExitStatus {
        let deadline = tokio::time::Instant::now() + LIMIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the supervisor process did not exit"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL, and wait for the exit.
    pub async fn kill9(mut self) {
        self.signal(nix::sys::signal::Signal::SIGKILL);
        self.wait().await;
    }
}

impl Drop for SupervisorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether process `pid` runs (exists and is not a zombie).
pub fn runs(pid: u32) -> bool {
    opamp_supervisor::leftover::is_running(pid)
}

/// Waits (at most [`LIMIT`]) until process `pid` no longer runs.
pub async fn wait_gone(pid: u32, what: &str) {
    let deadline = tokio::time::Instant::now() + LIMIT;
    while runs(pid) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} (pid {pid}) still runs"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
