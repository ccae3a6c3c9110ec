//! Third-party peers: where `interop/setup.sh` installs them, and their driver processes.
//!
//! Each driver script under `interop/peers/` runs one peer against a URL and prints what
//! happens as JSON lines (`{"event": ..., ...}`). [`PeerProcess`] starts one, collects those
//! lines, and kills the process when dropped.
//!
//! When a peer is not installed, [`Peers::locate`] returns `Ok(None)` after printing a loud
//! message, so a test can skip — except when the environment variable `CI` is `true`, where
//! a missing peer is an [`Error::PeerMissing`] and the test fails.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio_util::codec::{FramedRead, LinesCodec};

use crate::Error;

/// Longest line a driver may print; longer lines end the stream.
const MAX_LINE: usize = 1 << 20;
/// Lines buffered between the reader task and the test.
const LINE_QUEUE: usize = 1024;
/// Most events a [`PeerProcess`] keeps for [`PeerProcess::events`].
const MAX_KEPT_EVENTS: usize = 100_000;

/// Where the pinned peers live.
#[derive(Debug, Clone)]
pub struct Peers {
    /// The `interop/` directory.
    pub root: PathBuf,
    /// The Python interpreter of `interop/.venv`.
    pub python: PathBuf,
    /// `interop/node_modules`.
    pub node_modules: PathBuf,
    /// The `node` executable.
    pub node: PathBuf,
}

/// True when the environment variable `CI` is `true` (missing peers fail instead of skipping).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// The `interop/` directory of this repository.
pub fn interop_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

impl Peers {
    /// Finds the peers installed by `interop/setup.sh` (both the Python and the npm ones).
    ///
    /// `Ok(None)` (after a loud message on stderr) when something is missing outside CI;
    /// [`Error::PeerMissing`] when it is missing and `CI=true`.
    pub fn locate() -> Result<Option<Peers>, Error> {
        let root = interop_dir();
        let python = root.join(".venv/bin/python");
        let node_modules = root.join("node_modules");
        let mut missing = Vec::new();
        if !python.is_file() {
            missing.push(format!("{} (Python peer)", python.display()));
        }
        for package in ["@elastic/opamp-client-node", "@elastic/mockopampserver"] {
            if !node_modules.join(package).join("package.json").is_file() {
                missing.push(format!("{} ({package})", node_modules.display()));
            }
        }
        let node = find_on_path("node");
        if node.is_none() {
            missing.push("`node` on PATH".to_owned());
        }
        if missing.is_empty() {
            return Ok(Some(Peers {
                root,
                python,
                node_modules,
                node: node.unwrap_or_default(),
            }));
        }
        let what = missing.join(", ");
        if in_ci() {
            return Err(Error::PeerMissing(what));
        }
        // Straight to the stderr handle: libtest captures `eprintln!` of passing tests, and
        // this must be seen.
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
             !!! SKIPPED: interop peers not installed: {what}\n\
             !!! Run `bash interop/setup.sh` first (with CI=true this test fails).\n\
             !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n"
        );
        Ok(None)
    }

    /// The path of a driver script in `interop/peers/`.
    pub fn script(&self, name: &str) -> PathBuf {
        self.root.join("peers").join(name)
    }

    /// Starts `peers/python_client.py` (opentelemetry-opamp-client) against `url`.
    pub fn python_client(&self, url: &str, args: &[&str]) -> Result<PeerProcess, Error> {
        let script = self.script("python_client.py");
        let mut all = vec![script.to_string_lossy().into_owned(), url.to_owned()];
        all.extend(args.iter().map(|a| (*a).to_owned()));
        PeerProcess::spawn("python-client", &self.python, &all, &self.root)
    }

    /// Starts `peers/node_client.js` (@elastic/opamp-client-node) against `url`.
    pub fn node_client(&self, url: &str, args: &[&str]) -> Result<PeerProcess, Error> {
        let script = self.script("node_client.js");
        let mut all = vec![script.to_string_lossy().into_owned(), url.to_owned()];
        all.extend(args.iter().map(|a| (*a).to_owned()));
        PeerProcess::spawn("node-client", &self.node, &all, &self.root)
    }

    /// Starts `peers/mock_server.js` (@elastic/mockopampserver) on a free loopback port.
    pub fn mock_server(&self, args: &[&str]) -> Result<PeerProcess, Error> {
        let script = self.script("mock_server.js");
        let mut all = vec![script.to_string_lossy().into_owned()];
        all.extend(args.iter().map(|a| (*a).to_owned()));
        PeerProcess::spawn("mock-server", &self.node, &all, &self.root)
    }
}

/// A running driver process and the JSON events it printed.
///
/// The process is killed when this is dropped.
#[derive(Debug)]
pub struct PeerProcess {
    name: String,
    child: Child,
    lines: mpsc::Receiver<Result<Value, Error>>,
    events: Vec<Value>,
    ended: bool,
}

impl PeerProcess {
    /// Starts `program args…` in `dir`, reading JSON lines from its stdout; its stderr goes
    /// to this process's stderr (so a failing test shows the peer's own logs).
    pub fn spawn(
        name: &str,
        program: &Path,
        args: &[String],
        dir: &Path,
    ) -> Result<PeerProcess, Error> {
        let process_error = |source| Error::Process {
            name: name.to_owned(),
            source,
        };
        let mut child = Command::new(program)
            .args(args)
            .current_dir(dir)
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(process_error)?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| process_error(std::io::Error::other("stdout was not captured")))?;
        let (tx, rx) = mpsc::channel(LINE_QUEUE);
        let peer = name.to_owned();
        tokio::spawn(async move {
            let mut lines = FramedRead::new(stdout, LinesCodec::new_with_max_length(MAX_LINE));
            while let Some(line) = lines.next().await {
                let item = match line {
                    Ok(line) => match parse_line(&peer, &line) {
                        Ok(event) => Ok(event),
                        Err(err) => {
                            // A library printing to stdout: not an event, shown for debugging.
                            eprintln!("[{peer}] {err}");
                            continue;
                        }
                    },
                    Err(err) => Err(Error::Process {
                        name: peer.clone(),
                        source: std::io::Error::other(err),
                    }),
                };
                let stop = item.is_err();
                if tx.send(item).await.is_err() || stop {
                    break;
                }
            }
        });
        tracing::debug!(peer = name, "started");
        Ok(PeerProcess {
            name: name.to_owned(),
            child,
            lines: rx,
            events: Vec::new(),
            ended: false,
        })
    }

    /// The peer's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Every event received so far (up to 100,000).
    pub fn events(&self) -> &[Value] {
        &self.events
    }

    /// Events received so far whose `"event"` is `kind`.
    pub fn events_of(&self, kind: &str) -> Vec<&Value> {
        self.events.iter().filter(|e| e["event"] == kind).collect()
    }

    /// The next event, waiting at most `limit`. `Ok(None)` once the process closed stdout.
    pub async fn next_event(&mut self, limit: Duration) -> Result<Option<Value>, Error> {
        if self.ended {
            return Ok(None);
        }
        match tokio::time::timeout(limit, self.lines.recv()).await {
            Err(_) => Err(Error::timeout(
                format!("an event from {}", self.name),
                limit,
            )),
            Ok(None) => {
                self.ended = true;
                Ok(None)
            }
            Ok(Some(Err(err))) => Err(err),
            Ok(Some(Ok(event))) => {
                tracing::debug!(peer = %self.name, %event, "peer event");
                if self.events.len() < MAX_KEPT_EVENTS {
                    self.events.push(event.clone());
                }
                Ok(Some(event))
            }
        }
    }

    /// Waits (at most `limit` in all) for an event for which `matches` is true and returns it.
    pub async fn wait_for(
        &mut self,
        what: &str,
        limit: Duration,
        mut matches: impl FnMut(&Value) -> bool,
    ) -> Result<Value, Error> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_event(left).await {
                Ok(Some(event)) if matches(&event) => return Ok(event),
                Ok(Some(_)) => continue,
                Ok(None) => {
                    return Err(Error::PeerExited {
                        name: self.name.clone(),
                        waiting_for: what.to_owned(),
                    });
                }
                Err(Error::Timeout { .. }) => return Err(Error::timeout(what, limit)),
                Err(err) => return Err(err),
            }
        }
    }

    /// Waits for an event whose `"event"` is `kind`.
    pub async fn wait_for_event(&mut self, kind: &str, limit: Duration) -> Result<Value, Error> {
        self.wait_for(
            &format!("a {kind:?} event from {}", self.name),
            limit,
            |e| e["event"] == kind,
        )
        .await
    }

    /// Collects events for `window` (or until the process ends).
    pub async fn drain_for(&mut self, window: Duration) -> Result<(), Error> {
        let deadline = tokio::time::Instant::now() + window;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            match self.next_event(left).await {
                Ok(Some(_)) => continue,
                Ok(None) | Err(Error::Timeout { .. }) => return Ok(()),
                Err(err) => return Err(err),
            }
        }
    }

    /// Asks the process to stop (SIGTERM where the drivers print a summary), waits at most
    /// `limit` for it to exit, and kills it otherwise. Events printed meanwhile are kept.
    pub async fn stop(&mut self, limit: Duration) -> Result<(), Error> {
        if let Some(pid) = self.child.id() {
            // The drivers handle SIGTERM by shutting their peer down and printing a summary.
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status()
                .await;
        }
        let _ = self.drain_for(limit).await;
        match tokio::time::timeout(limit, self.child.wait()).await {
            Ok(Ok(_)) => Ok(()),
            _ => {
                let _ = self.child.kill().await;
                Ok(())
            }
        }
    }
}

fn parse_line(peer: &str, line: &str) -> Result<Value, Error> {
    match serde_json::from_str::<Value>(line) {
        Ok(value) if value.is_object() => Ok(value),
        _ => Err(Error::BadLine {
            name: peer.to_owned(),
            line: line.chars().take(200).collect(),
        }),
    }
}
