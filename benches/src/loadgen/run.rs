//! Running one load-generator scenario and reporting it.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::Semaphore;

use super::agent::{self, Shared};
use super::conn::Target;
use super::procfs::{self, ProcSample, ServerPid};

/// What to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Connect at a rate, report status, heartbeat.
    Hold,
    /// Closed-loop heartbeats.
    Throughput,
    /// Held agents, then a fleet-wide push.
    Fanout,
    /// Held agents, then a server restart.
    Storm,
    /// Real `opamp_client::Client`s, idle.
    IdleClients,
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "hold" => Ok(Mode::Hold),
            "throughput" => Ok(Mode::Throughput),
            "fanout" => Ok(Mode::Fanout),
            "storm" => Ok(Mode::Storm),
            "idle-clients" => Ok(Mode::IdleClients),
            other => Err(format!(
                "unknown mode {other:?} (hold, throughput, fanout, storm, idle-clients)"
            )),
        }
    }
}

/// A run's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// The mode.
    pub mode: Mode,
    /// `ws://…` or `http://…` OpAMP endpoint.
    pub url: String,
    /// Agents.
    pub agents: usize,
    /// New connections per second while connecting (0: as fast as possible).
    pub rate: f64,
    /// Connection attempts in flight at most.
    pub connect_concurrency: usize,
    /// Heartbeat (poll) interval of held agents.
    pub heartbeat: Duration,
    /// How long to hold (hold), to measure (throughput), or to wait at most (fanout, storm).
    pub duration: Duration,
    /// Fan-out: URL to POST to trigger the push.
    pub push_url: Option<String>,
    /// Fan-out: URL answering `{"applied": N}` (the server's count of `APPLIED`).
    pub applied_url: Option<String>,
    /// Fan-out: pushes to time.
    pub pushes: usize,
    /// Storm: shell command that restarts the server.
    pub restart_cmd: Option<String>,
    /// The server process to watch.
    pub server_pid: ServerPid,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            mode: Mode::Hold,
            url: "ws://127.0.0.1:4320/v1/opamp".into(),
            agents: 100,
            rate: 0.0,
            connect_concurrency: 512,
            heartbeat: Duration::from_secs(30),
            duration: Duration::from_secs(10),
            push_url: None,
            applied_url: None,
            pushes: 3,
            restart_cmd: None,
            server_pid: ServerPid::None,
        }
    }
}

/// What a run measured. `values` holds every figure by name (also printed as JSON).
#[derive(Debug, Clone)]
pub struct Report {
    /// Figures by name.
    pub values: Value,
}

impl Report {
    /// A figure as f64.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.values.get(name).and_then(Value::as_f64)
    }
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Adds `{key}_per_100k`: the figure under `key` (CPU seconds) per 100,000 of `count`
/// messages, when both are known.
fn insert_per_100k(out: &mut serde_json::Map<String, Value>, key: &str, count: u64) {
    if let Some(cpu) = out.get(key).and_then(Value::as_f64)
        && count > 0
    {
        out.insert(
            format!("{key}_per_100k"),
            json!(cpu * 100_000.0 / count as f64),
        );
    }
}

fn ms(d: Option<Duration>) -> Value {
    d.map_or(Value::Null, |d| json!(d.as_secs_f64() * 1000.0))
}

/// Before/after readings of the server and of the load generator itself.
struct Watch {
    server_pid: ServerPid,
    server: Option<ProcSample>,
    own: Option<ProcSample>,
}

impl Watch {
    fn start(server_pid: &ServerPid) -> Watch {
        Watch {
            server_pid: server_pid.clone(),
            server: server_pid.sample(),
            own: procfs::own(),
        }
    }

    fn into_json(self, out: &mut serde_json::Map<String, Value>, prefix: &str) {
        let server = self.server_pid.sample();
        let own = procfs::own();
        if let (Some(a), Some(b)) = (self.server, server) {
            out.insert(
                format!("{prefix}server_cpu_s"),
                json!(secs(b.cpu.saturating_sub(a.cpu))),
            );
            out.insert(format!("{prefix}server_rss_before"), json!(a.rss));
            out.insert(format!("{prefix}server_rss_after"), json!(b.rss));
        }
        if let (Some(a), Some(b)) = (self.own, own) {
            out.insert(
                format!("{prefix}loadgen_cpu_s"),
                json!(secs(b.cpu.saturating_sub(a.cpu))),
            );
            out.insert(format!("{prefix}loadgen_rss"), json!(b.rss));
        }
    }
}

/// Spawns `n` agents at `rate` per second (0: at once, `concurrency` connecting at a time)
/// and waits until all are connected or `limit` passes. Returns the time it took.
async fn connect_all(
    shared: &Arc<Shared>,
    config: &Config,
    closed_loop: bool,
    tasks: &mut tokio::task::JoinSet<()>,
) -> Duration {
    let start = Instant::now();
    let gate = Arc::new(Semaphore::new(config.connect_concurrency.max(1)));
    for index in 0..config.agents {
        if config.rate > 0.0 {
            let at = start + Duration::from_secs_f64(index as f64 / config.rate);
            tokio::time::sleep_until(at.into()).await;
        }
        let Ok(permit) = Arc::clone(&gate).acquire_owned().await else {
            break;
        };
        let shared = Arc::clone(shared);
        tasks.spawn(async move {
            if closed_loop {
                agent::closed_loop(index, &shared, Some(permit)).await;
            } else {
                agent::held(index, &shared, Some(permit)).await;
            }
        });
    }
    let limit = config.duration.max(Duration::from_secs(60));
    let deadline = Instant::now() + limit;
    loop {
        let done = shared.connected.load(Ordering::Acquire)
            + shared.connect_failures.load(Ordering::Acquire) as usize;
        if done >= config.agents || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    start.elapsed()
}

/// Runs one scenario.
pub async fn run(config: Config) -> Result<Report, String> {
    let target = Target::parse(&config.url).await?;
    let start = Instant::now();
    let reconnect = config.mode == Mode::Storm;
    let shared = Arc::new(Shared::new(target, config.heartbeat, reconnect, start));
    let mut out = serde_json::Map::new();
    out.insert(
        "mode".into(),
        json!(format!("{:?}", config.mode).to_lowercase()),
    );
    out.insert("agents".into(), json!(config.agents));
    out.insert(
        "transport".into(),
        json!(format!("{:?}", shared.target.transport).to_lowercase()),
    );
    if config.mode == Mode::IdleClients {
        super::clients::idle_clients(
            &config.url,
            config.agents,
            config.duration.max(Duration::from_secs(60)),
            config.duration,
            &mut out,
        )
        .await?;
        return Ok(Report {
            values: Value::Object(out),
        });
    }
    let mut tasks = tokio::task::JoinSet::new();
    let closed_loop = config.mode == Mode::Throughput;
    let watch = Watch::start(&config.server_pid);
    let connect_time = connect_all(&shared, &config, closed_loop, &mut tasks).await;
    let connected = shared.connected.load(Ordering::Acquire);
    out.insert("connected".into(), json!(connected));
    out.insert(
        "connect_failures".into(),
        json!(shared.connect_failures.load(Ordering::Acquire)),
    );
    out.insert("connect_time_s".into(), json!(secs(connect_time)));
    out.insert(
        "connect_rate_per_s".into(),
        json!(connected as f64 / secs(connect_time).max(1e-9)),
    );
    out.insert(
        "connect_p50_ms".into(),
        ms(shared.connect_times.quantile(0.5)),
    );
    out.insert(
        "connect_p99_ms".into(),
        ms(shared.connect_times.quantile(0.99)),
    );
    watch.into_json(&mut out, "connect_");
    if let (Some(before), Some(after)) = (
        out.get("connect_server_rss_before").and_then(Value::as_f64),
        out.get("connect_server_rss_after").and_then(Value::as_f64),
    ) && connected > 0
    {
        out.insert(
            "server_rss_per_agent_bytes".into(),
            json!((after - before) / connected as f64),
        );
    }

    match config.mode {
        Mode::Hold => {
            let watch = Watch::start(&config.server_pid);
            let replies = shared.replies.load(Ordering::Acquire);
            tokio::time::sleep(config.duration).await;
            let held_replies = shared.replies.load(Ordering::Acquire) - replies;
            out.insert("hold_replies".into(), json!(held_replies));
            out.insert("hold_s".into(), json!(secs(config.duration)));
            out.insert(
                "still_connected".into(),
                json!(shared.connected.load(Ordering::Acquire)),
            );
            watch.into_json(&mut out, "hold_");
            // The whole fleet heartbeating (`--heartbeat` short enough to beat during the
            // hold): server CPU per 100k heartbeats spread over every connection.
            insert_per_100k(&mut out, "hold_server_cpu_s", held_replies);
        }
        Mode::Throughput => {
            let watch = Watch::start(&config.server_pid);
            let replies = shared.replies.load(Ordering::Acquire);
            let began = Instant::now();
            tokio::time::sleep(config.duration).await;
            let count = shared.replies.load(Ordering::Acquire) - replies;
            let took = began.elapsed();
            shared.stop.cancel();
            // The agents flush their last latency samples as they stop.
            let drain = async { while tasks.join_next().await.is_some() {} };
            if tokio::time::timeout(Duration::from_secs(30), drain)
                .await
                .is_err()
            {
                tasks.abort_all();
            }
            out.insert("messages".into(), json!(count));
            out.insert("messages_per_s".into(), json!(count as f64 / secs(took)));
            out.insert("latency_p50_ms".into(), ms(shared.latencies.quantile(0.5)));
            out.insert("latency_p99_ms".into(), ms(shared.latencies.quantile(0.99)));
            watch.into_json(&mut out, "");
            insert_per_100k(&mut out, "server_cpu_s", count);
            insert_per_100k(&mut out, "loadgen_cpu_s", count);
        }
        Mode::Fanout => fanout(&shared, &config, &mut out).await?,
        Mode::Storm => storm(&shared, &config, &mut out).await?,
        Mode::IdleClients => {}
    }
    shared.stop.cancel();
    let drain = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(30), drain)
        .await
        .is_err()
    {
        tasks.abort_all();
    }
    Ok(Report {
        values: Value::Object(out),
    })
}

/// A minimal HTTP/1.1 client for the control URLs (plain `http://`, loopback).
async fn http_call(method: &str, url: &str) -> Result<String, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("control URL must be http://: {url}"))?;
    let (authority, path) = rest
        .find('/')
        .map_or((rest, "/"), |i| (&rest[..i], &rest[i..]));
    let mut tcp = tokio::net::TcpStream::connect(authority)
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    tcp.write_all(head.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    (&mut tcp)
        .take(1 << 20)
        .read_to_end(&mut raw)
        .await
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    if !head.starts_with("HTTP/1.1 2") && !head.starts_with("HTTP/1.0 2") {
        return Err(format!("{url}: {}", head.lines().next().unwrap_or("")));
    }
    Ok(body.to_owned())
}

async fn fanout(
    shared: &Arc<Shared>,
    config: &Config,
    out: &mut serde_json::Map<String, Value>,
) -> Result<(), String> {
    let push_url = config
        .push_url
        .as_deref()
        .ok_or("fanout needs --push-url")?;
    let n = shared.connected.load(Ordering::Acquire);
    let mut received_ms = Vec::new();
    let mut applied_ms = Vec::new();
    let watch = Watch::start(&config.server_pid);
    for _ in 0..config.pushes.max(1) {
        let t0 = Instant::now();
        let body = http_call("POST", push_url).await?;
        let hash_hex = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v.get("hash").and_then(Value::as_str).map(str::to_owned));
        let Some(hash_hex) = hash_hex else {
            return Err(format!("the push URL answered without a \"hash\": {body}"));
        };
        let hash: Vec<u8> = (0..hash_hex.len() / 2)
            .filter_map(|i| u8::from_str_radix(&hash_hex[2 * i..2 * i + 2], 16).ok())
            .collect();
        let deadline = t0 + config.duration.max(Duration::from_secs(10));
        let (got, last) = loop {
            let (got, last) = shared.config_received(&hash).unwrap_or((0, t0));
            if got >= n || Instant::now() >= deadline {
                break (got, last);
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        if got < n {
            return Err(format!(
                "only {got} of {n} agents received the pushed config"
            ));
        }
        received_ms.push(last.saturating_duration_since(t0).as_secs_f64() * 1000.0);
        if let Some(applied_url) = &config.applied_url {
            loop {
                let body = http_call("GET", applied_url).await?;
                let applied = serde_json::from_str::<Value>(&body)
                    .ok()
                    .and_then(|v| v.get("applied").and_then(Value::as_u64))
                    .unwrap_or(0);
                if applied as usize >= n {
                    applied_ms.push(t0.elapsed().as_secs_f64() * 1000.0);
                    break;
                }
                if Instant::now() >= deadline {
                    return Err(format!("the server saw {applied} of {n} APPLIED"));
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        // Let the fleet settle between pushes.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    out.insert("fanout_received_ms".into(), json!(received_ms));
    out.insert(
        "fanout_received_median_ms".into(),
        json!(super::stats::median(&mut received_ms.clone())),
    );
    out.insert("fanout_applied_ms".into(), json!(applied_ms));
    out.insert(
        "fanout_applied_median_ms".into(),
        json!(super::stats::median(&mut applied_ms.clone())),
    );
    watch.into_json(out, "fanout_");
    Ok(())
}

async fn storm(
    shared: &Arc<Shared>,
    config: &Config,
    out: &mut serde_json::Map<String, Value>,
) -> Result<(), String> {
    let cmd = config
        .restart_cmd
        .as_deref()
        .ok_or("storm needs --restart-cmd")?;
    let n = shared.connected.load(Ordering::Acquire);
    let steady = config.server_pid.sample().map(|s| s.rss);
    let t0 = Instant::now();
    let status = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .status()
        .await
        .map_err(|e| format!("restart command: {e}"))?;
    if !status.success() {
        return Err(format!("restart command failed: {status}"));
    }
    // Wait for the connections to drop, then for all to be back.
    let deadline = t0 + config.duration.max(Duration::from_secs(30));
    let mut peak_rss = 0u64;
    while shared.disconnects.load(Ordering::Acquire) == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut sampled = Instant::now();
    while shared.connected.load(Ordering::Acquire) < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
        if sampled.elapsed() >= Duration::from_millis(100) {
            sampled = Instant::now();
            if let Some(s) = config.server_pid.sample() {
                peak_rss = peak_rss.max(s.rss);
            }
        }
    }
    let back = shared.connected.load(Ordering::Acquire);
    out.insert("storm_back".into(), json!(back));
    out.insert("storm_all_back_s".into(), json!(secs(t0.elapsed())));
    out.insert(
        "storm_disconnects".into(),
        json!(shared.disconnects.load(Ordering::Acquire)),
    );
    out.insert(
        "storm_peak_reconnects_per_s".into(),
        json!(shared.reconnects.peak()),
    );
    out.insert("storm_steady_rss".into(), json!(steady));
    if let Some(s) = config.server_pid.sample() {
        peak_rss = peak_rss.max(s.rss);
    }
    out.insert("storm_peak_rss".into(), json!(peak_rss));
    if back < n {
        return Err(format!("only {back} of {n} agents came back"));
    }
    Ok(())
}
