//! Test helpers: a fleet server on free ports, an OpAMP test agent written with
//! opamp-transport (WebSocket or plain HTTP), and a small JSON HTTP client for the API.
#![allow(dead_code, unreachable_pub)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use opamp_fleet_server::{FleetConfig, FleetHandle, FleetServer};
use opamp_proto::InstanceUid;
use opamp_proto::{
    AgentCapabilities, AgentConfigMap, AgentDescription, AgentToServer, ComponentHealth,
    CustomCapabilities, EffectiveConfig, RemoteConfigStatus, RemoteConfigStatuses, ServerToAgent,
    ServerToAgentFlags,
};
use opamp_transport::http::{HttpClient, HttpClientSettings, HttpRequestOptions};
use opamp_transport::ws::{WsConnectOptions, connect};
use serde_json::Value;
use tokio::task::JoinHandle;

/// Generous limit for anything a test waits for (slow shared machine).
pub const WAIT: Duration = Duration::from_secs(30);

pub fn config(store: &str) -> FleetConfig {
    FleetConfig::default()
        .with_opamp_addr("127.0.0.1:0".parse().unwrap())
        .with_http_addr("127.0.0.1:0".parse().unwrap())
        .with_store(store)
}

pub async fn start(store: &str) -> FleetHandle {
    FleetServer::start(config(store))
        .await
        .expect("server starts")
}

// ---------------- JSON HTTP client ----------------

pub struct Api {
    base: String,
    auth: Option<String>,
    client: Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
}

impl Api {
    pub fn new(handle: &FleetHandle) -> Self {
        Self {
            base: format!("http://{}", handle.http_addr()),
            auth: None,
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    pub fn with_auth(mut self, header: &str) -> Self {
        self.auth = Some(header.to_owned());
        self
    }

    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        body: Option<String>,
    ) -> (u16, String, http::HeaderMap) {
        let mut req = http::Request::builder()
            .method(method)
            .uri(format!("{}{}", self.base, path));
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        if let Some(a) = &self.auth {
            req = req.header("authorization", a);
        }
        // A program, not a browser: a header no cross-origin page can send (CSRF guard).
        req = req.header("x-requested-with", "opamp-fleet-tests");
        let req = req
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .unwrap();
        let resp = tokio::time::timeout(WAIT, self.client.request(req))
            .await
            .expect("API answers in time")
            .expect("API request");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            String::from_utf8_lossy(&bytes).into_owned(),
            headers,
        )
    }

    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let (status, text, _) = self.raw(method, path, body.map(|b| b.to_string())).await;
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    pub async fn get(&self, path: &str) -> Value {
        let (status, v) = self.call("GET", path, None).await;
        assert_eq!(status, 200, "GET {path}: {v}");
        v
    }
}

/// Polls `f` until it returns `Some`, at most [`WAIT`].
pub async fn eventually<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---------------- test agent ----------------

async fn stopped(rx: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

/// How the test agent treats a remote configuration: a body containing `FAIL` is refused
/// (status FAILED with an error), anything else applied (APPLYING, then APPLIED and the
/// effective configuration).
#[derive(Clone)]
pub struct AgentSpec {
    pub uid: InstanceUid,
    pub attrs: Vec<(String, String)>,
    pub capabilities: AgentCapabilities,
    pub api_key: Option<String>,
    pub custom_capabilities: Vec<String>,
    pub healthy: bool,
}

impl AgentSpec {
    pub fn new(attrs: &[(&str, &str)]) -> Self {
        Self {
            uid: InstanceUid::new_v7(),
            attrs: attrs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            capabilities: AgentCapabilities::REPORTS_STATUS
                | AgentCapabilities::ACCEPTS_REMOTE_CONFIG
                | AgentCapabilities::REPORTS_EFFECTIVE_CONFIG
                | AgentCapabilities::REPORTS_REMOTE_CONFIG
                | AgentCapabilities::REPORTS_HEALTH
                | AgentCapabilities::ACCEPTS_RESTART_COMMAND
                | AgentCapabilities::ACCEPTS_OPAMP_CONNECTION_SETTINGS
                | AgentCapabilities::REPORTS_OWN_METRICS,
            api_key: None,
            custom_capabilities: vec!["io.opentelemetry.custom.health".into()],
            healthy: true,
        }
    }

    pub fn uid(&self) -> String {
        self.uid.to_string()
    }

    fn description(&self) -> AgentDescription {
        let mut b = AgentDescription::builder();
        for (k, v) in &self.attrs {
            b = b.identifying(k.as_str(), v.as_str());
        }
        b = b.non_identifying("os.type", "linux");
        b.build()
    }

    fn full_status(&self, seq: u64) -> AgentToServer {
        AgentToServer {
            instance_uid: self.uid.to_bytes(),
            sequence_num: seq,
            capabilities: self.capabilities.bits(),
            agent_description: Some(self.description()),
            health: Some(ComponentHealth {
                healthy: self.healthy,
                status: if self.healthy {
                    "running".into()
                } else {
                    "degraded".into()
                },
                last_error: if self.healthy {
                    String::new()
                } else {
                    "exporter down".into()
                },
                component_health_map: [(
                    "receiver/otlp".to_owned(),
                    ComponentHealth {
                        healthy: true,
                        status: "ok".into(),
                        ..Default::default()
                    },
                )]
                .into(),
                ..Default::default()
            }),
            custom_capabilities: Some(CustomCapabilities {
                capabilities: self.custom_capabilities.clone(),
            }),
            ..Default::default()
        }
    }
}

/// What the agent saw.
#[derive(Default)]
pub struct Seen {
    pub messages: Vec<ServerToAgent>,
    pub configs: Vec<Bytes>,
    pub restarts: usize,
}

/// The agent's reaction to one ServerToAgent: the messages to send back.
fn react(
    spec: &AgentSpec,
    seq: &mut u64,
    msg: &ServerToAgent,
    seen: &Mutex<Seen>,
) -> Vec<AgentToServer> {
    let mut out = Vec::new();
    {
        let mut s = seen.lock().unwrap();
        s.messages.push(msg.clone());
        if msg.command.is_some() {
            s.restarts += 1;
        }
    }
    if msg.flags & ServerToAgentFlags::REPORT_FULL_STATE.bits() != 0 {
        *seq += 1;
        out.push(spec.full_status(*seq));
    }
    if let Some(rc) = &msg.remote_config {
        seen.lock().unwrap().configs.push(rc.config_hash.clone());
        let map = rc.config.clone().unwrap_or_default();
        let bad = map
            .config_map
            .values()
            .any(|f| String::from_utf8_lossy(&f.body).contains("FAIL"));
        let status = |s: RemoteConfigStatuses, err: &str| RemoteConfigStatus {
            last_remote_config_hash: rc.config_hash.clone(),
            status: s as i32,
            error_message: err.into(),
        };
        *seq += 1;
        out.push(AgentToServer {
            instance_uid: spec.uid.to_bytes(),
            sequence_num: *seq,
            capabilities: spec.capabilities.bits(),
            remote_config_status: Some(status(RemoteConfigStatuses::Applying, "")),
            ..Default::default()
        });
        *seq += 1;
        out.push(if bad {
            AgentToServer {
                instance_uid: spec.uid.to_bytes(),
                sequence_num: *seq,
                capabilities: spec.capabilities.bits(),
                remote_config_status: Some(status(
                    RemoteConfigStatuses::Failed,
                    "config rejected: FAIL marker",
                )),
                ..Default::default()
            }
        } else {
            AgentToServer {
                instance_uid: spec.uid.to_bytes(),
                sequence_num: *seq,
                capabilities: spec.capabilities.bits(),
                remote_config_status: Some(status(RemoteConfigStatuses::Applied, "")),
                effective_config: Some(EffectiveConfig {
                    config_map: Some(AgentConfigMap {
                        config_map: map.config_map,
                    }),
                }),
                ..Default::default()
            }
        });
    }
    out
}

pub struct TestAgent {
    pub spec: AgentSpec,
    pub seen: Arc<Mutex<Seen>>,
    task: JoinHandle<()>,
    stop: tokio::sync::watch::Sender<bool>,
}

impl TestAgent {
    /// A WebSocket agent; fails if the upgrade is refused.
    pub async fn ws(url: &str, spec: AgentSpec) -> Result<Self, opamp_transport::Error> {
        Self::ws_with(url, spec, WsConnectOptions::default()).await
    }

    /// A WebSocket agent with connection options (TLS, headers).
    pub async fn ws_with(
        url: &str,
        spec: AgentSpec,
        mut options: WsConnectOptions,
    ) -> Result<Self, opamp_transport::Error> {
        if let Some(k) = &spec.api_key {
            options = options.with_header("x-api-key".parse().unwrap(), k.parse().unwrap());
        }
        let (conn, _) = connect(url, &options).await?;
        let (mut tx, mut rx) = conn.split();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let (stop, mut stop_rx) = tokio::sync::watch::channel(false);
        let s2 = Arc::clone(&seen);
        let sp = spec.clone();
        let task = tokio::spawn(async move {
            let mut seq = 1;
            if tx.send(&sp.full_status(seq)).await.is_err() {
                return;
            }
            loop {
                let msg: ServerToAgent = tokio::select! {
                    m = rx.recv::<ServerToAgent>() => match m {
                        Ok(Some(m)) => m,
                        _ => return,
                    },
                    () = stopped(&mut stop_rx) => {
                        let _ = tx.send(&AgentToServer {
                            instance_uid: sp.uid.to_bytes(),
                            sequence_num: seq + 1,
                            agent_disconnect: Some(Default::default()),
                            ..Default::default()
                        }).await;
                        let _ = tx.close(opamp_transport::ws::CloseCode::Normal, "bye").await;
                        return;
                    }
                };
                for out in react(&sp, &mut seq, &msg, &s2) {
                    if tx.send(&out).await.is_err() {
                        return;
                    }
                }
            }
        });
        Ok(Self {
            spec,
            seen,
            task,
            stop,
        })
    }

    /// A plain-HTTP agent polling every `poll`.
    pub async fn http(
        url: &str,
        spec: AgentSpec,
        poll: Duration,
    ) -> Result<Self, opamp_transport::Error> {
        let client = HttpClient::new(&HttpClientSettings::default());
        let mut options = HttpRequestOptions::default().with_instance_uid(spec.uid());
        if let Some(k) = &spec.api_key {
            options = options.with_header("x-api-key".parse().unwrap(), k.parse().unwrap());
        }
        let seen = Arc::new(Mutex::new(Seen::default()));
        // The first exchange happens here so that a refusal is reported to the caller.
        let first = client
            .round_trip::<_, ServerToAgent>(url, &spec.full_status(1), &options)
            .await?;
        let (stop, mut stop_rx) = tokio::sync::watch::channel(false);
        let s2 = Arc::clone(&seen);
        let sp = spec.clone();
        let url = url.to_owned();
        let task = tokio::spawn(async move {
            let mut seq = 1;
            let mut queue = react(&sp, &mut seq, &first.message, &s2);
            loop {
                let msg = match queue.pop() {
                    Some(m) if queue.is_empty() => m,
                    Some(m) => {
                        // Send in order: the earliest first.
                        queue.push(m);
                        queue.remove(0)
                    }
                    None => {
                        tokio::select! {
                            _ = tokio::time::sleep(poll) => {}
                            () = stopped(&mut stop_rx) => {
                                seq += 1;
                                let bye = AgentToServer {
                                    instance_uid: sp.uid.to_bytes(),
                                    sequence_num: seq,
                                    agent_disconnect: Some(Default::default()),
                                    ..Default::default()
                                };
                                let _ = client.round_trip::<_, ServerToAgent>(&url, &bye, &options).await;
                                return;
                            }
                        }
                        seq += 1;
                        AgentToServer {
                            instance_uid: sp.uid.to_bytes(),
                            sequence_num: seq,
                            capabilities: sp.capabilities.bits(),
                            ..Default::default()
                        }
                    }
                };
                match client
                    .round_trip::<_, ServerToAgent>(&url, &msg, &options)
                    .await
                {
                    Ok(resp) => queue.extend(react(&sp, &mut seq, &resp.message, &s2)),
                    Err(_) => tokio::time::sleep(poll).await,
                }
            }
        });
        Ok(Self {
            spec,
            seen,
            task,
            stop,
        })
    }

    pub fn uid(&self) -> String {
        self.spec.uid()
    }

    /// Config hashes received so far.
    pub fn configs_received(&self) -> usize {
        self.seen.lock().unwrap().configs.len()
    }

    pub fn restarts(&self) -> usize {
        self.seen.lock().unwrap().restarts
    }

    /// Disconnects cleanly (agent_disconnect, then close).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(WAIT, self.task).await;
    }

    /// Drops the connection without a goodbye.
    pub fn kill(self) {
        self.task.abort();
    }
}
