//! The simulated agents: held (status, heartbeats, config pushes, reconnects) and
//! closed-loop (the next heartbeat when the previous reply arrives).

use std::collections::HashMap;
use std::pin::pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use opamp_proto::{
    AgentConfigFile, AgentConfigMap, AgentDescription, AgentToServer, ComponentHealth,
    EffectiveConfig, InstanceUid, RemoteConfigStatus, RemoteConfigStatuses, ServerToAgent,
};
use rand::Rng;
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;

use super::conn::{Conn, ConnError, Target, connect};
use super::stats::{Latencies, PerSecond};

/// Size of the effective config in the full status report.
pub const EFFECTIVE_CONFIG_SIZE: usize = 2048;
/// Bound on one exchange or connection attempt.
const IO_LIMIT: Duration = Duration::from_secs(30);

/// State shared by all agents of a run.
#[derive(Debug)]
pub struct Shared {
    /// Where to connect.
    pub target: Target,
    /// Heartbeat (or poll) interval of held agents.
    pub heartbeat: Duration,
    /// Reconnect (with backoff) after a lost connection.
    pub reconnect: bool,
    /// Longest backoff between reconnect attempts.
    pub max_backoff: Duration,
    /// Agents connected now.
    pub connected: AtomicUsize,
    /// Failed connection attempts.
    pub connect_failures: AtomicU64,
    /// Lost connections.
    pub disconnects: AtomicU64,
    /// Replies received.
    pub replies: AtomicU64,
    /// Round-trip latencies (closed-loop mode).
    pub latencies: Latencies,
    /// Time to connect and get the first reply, per agent (µs).
    pub connect_times: Latencies,
    /// Reconnections per second.
    pub reconnects: PerSecond,
    /// Per remote config hash: agents that received it, and when the last one did (at most
    /// 1,000 hashes).
    pub configs: Mutex<HashMap<Bytes, (usize, Instant)>>,
    /// Ends every agent.
    pub stop: CancellationToken,
}

impl Shared {
    /// New shared state for agents of `target`.
    pub fn new(target: Target, heartbeat: Duration, reconnect: bool, start: Instant) -> Self {
        Shared {
            target,
            heartbeat,
            reconnect,
            max_backoff: Duration::from_secs(5),
            connected: AtomicUsize::new(0),
            connect_failures: AtomicU64::new(0),
            disconnects: AtomicU64::new(0),
            replies: AtomicU64::new(0),
            latencies: Latencies::default(),
            connect_times: Latencies::default(),
            reconnects: PerSecond::new(start, 3600),
            configs: Mutex::new(HashMap::new()),
            stop: CancellationToken::new(),
        }
    }

    fn note_config(&self, hash: &Bytes, already: &mut Option<Bytes>) {
        if already.as_ref() == Some(hash) {
            return;
        }
        *already = Some(hash.clone());
        let now = Instant::now();
        let mut configs = self.configs.lock().unwrap_or_else(|e| e.into_inner());
        if configs.len() >= 1000 && !configs.contains_key(hash) {
            return;
        }
        let entry = configs.entry(hash.clone()).or_insert((0, now));
        entry.0 += 1;
        entry.1 = entry.1.max(now);
    }

    /// Agents that received the config with `hash`, and when the last one did.
    pub fn config_received(&self, hash: &[u8]) -> Option<(usize, Instant)> {
        let configs = self.configs.lock().unwrap_or_else(|e| e.into_inner());
        configs.get(hash).copied()
    }
}

/// One agent's identity and sequence numbers.
struct Identity {
    uid: Bytes,
    seq: u64,
}

impl Identity {
    fn new() -> Self {
        Identity {
            uid: InstanceUid::new_v7().to_bytes(),
            seq: 0,
        }
    }

    fn next(&mut self) -> u64 {
        let seq = self.seq;
        self.seq += 1;
        seq
    }

    fn full_status(&mut self, index: usize) -> AgentToServer {
        let mut body = format!("# effective config of agent {index}\nreceivers:\n").into_bytes();
        body.resize(EFFECTIVE_CONFIG_SIZE, b'#');
        AgentToServer {
            instance_uid: self.uid.clone(),
            sequence_num: self.next(),
            capabilities: crate::sample::capabilities().bits(),
            agent_description: Some(
                AgentDescription::builder()
                    .service_name("loadgen-agent")
                    .identifying("service.instance.id", index.to_string())
                    .non_identifying("os.type", "linux")
                    .build(),
            ),
            health: Some(ComponentHealth {
                healthy: true,
                status: "running".into(),
                ..Default::default()
            }),
            effective_config: Some(EffectiveConfig {
                config_map: Some(AgentConfigMap {
                    config_map: [(
                        "collector.yaml".to_owned(),
                        AgentConfigFile {
                            body: body.into(),
                            content_type: "text/yaml".into(),
                        },
                    )]
                    .into(),
                }),
            }),
            ..Default::default()
        }
    }

    fn heartbeat(&mut self) -> AgentToServer {
        AgentToServer {
            instance_uid: self.uid.clone(),
            sequence_num: self.next(),
            ..Default::default()
        }
    }

    fn applied(&mut self, hash: Bytes) -> AgentToServer {
        AgentToServer {
            instance_uid: self.uid.clone(),
            sequence_num: self.next(),
            remote_config_status: Some(RemoteConfigStatus {
                last_remote_config_hash: hash,
                status: RemoteConfigStatuses::Applied as i32,
                error_message: String::new(),
            }),
            ..Default::default()
        }
    }
}

/// Connects and sends the full status; returns the connection and the first reply.
async fn open(
    index: usize,
    shared: &Shared,
    id: &mut Identity,
) -> Result<(Conn, ServerToAgent), ConnError> {
    let started = Instant::now();
    let mut conn = tokio::time::timeout(IO_LIMIT, connect(index, &shared.target))
        .await
        .map_err(|_| ConnError::Timeout)??;
    let status = id.full_status(index);
    let reply = conn.exchange(&shared.target, &status, IO_LIMIT).await?;
    let micros = u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX);
    shared.connect_times.extend(&[micros]);
    Ok((conn, reply))
}

fn backoff(attempt: u32, max: Duration) -> Duration {
    let base = Duration::from_millis(100).saturating_mul(1u32 << attempt.min(10));
    let cap = base.min(max);
    // Full jitter.
    let millis = rand::rng().random_range(0..=cap.as_millis().max(1) as u64);
    Duration::from_millis(millis)
}

/// A held agent: full status, then heartbeats every `shared.heartbeat` (polls over HTTP),
/// `APPLIED` for every pushed config, and reconnects with backoff if `shared.reconnect`.
///
/// `permit` (a slot of the connection-setup concurrency limit) is released after the first
/// connection attempt.
pub async fn held(index: usize, shared: &Shared, permit: Option<OwnedSemaphorePermit>) {
    let mut permit = permit;
    let mut id = Identity::new();
    let mut attempt = 0u32;
    let mut was_connected = false;
    let mut seen_config: Option<Bytes> = None;
    while !shared.stop.is_cancelled() {
        let opened = tokio::select! {
            opened = open(index, shared, &mut id) => opened,
            () = shared.stop.cancelled() => return,
        };
        drop(permit.take());
        let (mut conn, first) = match opened {
            Ok(ok) => ok,
            Err(err) => {
                shared.connect_failures.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(index, %err, "connect failed");
                if !shared.reconnect {
                    return;
                }
                let wait = backoff(attempt, shared.max_backoff);
                attempt = attempt.saturating_add(1);
                tokio::select! {
                    () = tokio::time::sleep(wait) => continue,
                    () = shared.stop.cancelled() => return,
                }
            }
        };
        attempt = 0;
        shared.replies.fetch_add(1, Ordering::Relaxed);
        shared.connected.fetch_add(1, Ordering::AcqRel);
        if was_connected {
            shared.reconnects.record(Instant::now());
        }
        was_connected = true;
        let mut pending_applied = None;
        if let Some(config) = first.remote_config {
            shared.note_config(&config.config_hash, &mut seen_config);
            pending_applied = Some(config.config_hash);
        }
        let result = session(
            shared,
            &mut conn,
            &mut id,
            &mut seen_config,
            pending_applied,
        )
        .await;
        shared.connected.fetch_sub(1, Ordering::AcqRel);
        match result {
            Ok(()) => return,
            Err(err) => {
                shared.disconnects.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(index, %err, "connection lost");
                if !shared.reconnect {
                    return;
                }
                let wait = backoff(0, shared.max_backoff);
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = shared.stop.cancelled() => return,
                }
            }
        }
    }
}

/// One connection's life after the first report. `Ok` when stopped.
async fn session(
    shared: &Shared,
    conn: &mut Conn,
    id: &mut Identity,
    seen_config: &mut Option<Bytes>,
    mut pending_applied: Option<Bytes>,
) -> Result<(), ConnError> {
    let mut next_beat = tokio::time::Instant::now() + shared.heartbeat;
    // Made once: a timer or a cancellation waiter made per message would cost the load
    // generator more than the message.
    let mut beat = pin!(tokio::time::sleep_until(next_beat));
    let mut stop = pin!(shared.stop.cancelled());
    loop {
        match conn {
            Conn::Ws(_) => {
                if let Some(hash) = pending_applied.take() {
                    conn.ws_send(&id.applied(hash)).await?;
                }
                tokio::select! {
                    () = &mut stop => return Ok(()),
                    () = &mut beat => {
                        conn.ws_send(&id.heartbeat()).await?;
                        next_beat += shared.heartbeat;
                        beat.as_mut().reset(next_beat);
                    }
                    msg = conn.ws_recv() => {
                        let msg = msg?;
                        shared.replies.fetch_add(1, Ordering::Relaxed);
                        if let Some(config) = msg.remote_config {
                            shared.note_config(&config.config_hash, seen_config);
                            pending_applied = Some(config.config_hash);
                        }
                    }
                }
            }
            Conn::Http { .. } => {
                let msg = match pending_applied.take() {
                    Some(hash) => id.applied(hash),
                    None => {
                        tokio::select! {
                            () = &mut stop => return Ok(()),
                            () = &mut beat => {}
                        }
                        next_beat += shared.heartbeat;
                        beat.as_mut().reset(next_beat);
                        id.heartbeat()
                    }
                };
                let reply = conn.exchange(&shared.target, &msg, IO_LIMIT).await?;
                shared.replies.fetch_add(1, Ordering::Relaxed);
                if let Some(config) = reply.remote_config {
                    shared.note_config(&config.config_hash, seen_config);
                    pending_applied = Some(config.config_hash);
                }
            }
        }
    }
}

/// A closed-loop agent: full status, then a heartbeat each time the previous reply arrived,
/// recording round-trip latencies, until stopped.
pub async fn closed_loop(index: usize, shared: &Shared, permit: Option<OwnedSemaphorePermit>) {
    let mut id = Identity::new();
    let opened = open(index, shared, &mut id).await;
    drop(permit);
    let (mut conn, _) = match opened {
        Ok(ok) => ok,
        Err(err) => {
            tracing::warn!(index, %err, "connect failed");
            shared.connect_failures.fetch_add(1, Ordering::Relaxed);
            return;
        }
    };
    shared.connected.fetch_add(1, Ordering::AcqRel);
    let mut batch = Vec::with_capacity(1024);
    while !shared.stop.is_cancelled() {
        let beat = id.heartbeat();
        let sent = Instant::now();
        match conn.exchange(&shared.target, &beat, IO_LIMIT).await {
            Ok(_) => {
                batch.push(u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX));
                shared.replies.fetch_add(1, Ordering::Relaxed);
                if batch.len() == batch.capacity() {
                    shared.latencies.extend(&batch);
                    batch.clear();
                }
            }
            Err(err) => {
                tracing::warn!(index, %err, "exchange failed");
                shared.disconnects.fetch_add(1, Ordering::Relaxed);
                break;
            }
        }
    }
    shared.latencies.extend(&batch);
    shared.connected.fetch_sub(1, Ordering::AcqRel);
}
