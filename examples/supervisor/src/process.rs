//! The agent process: start with piped output, stop with `SIGTERM` then `SIGKILL`, reload
//! with `SIGHUP`, and keep the tail of its standard error for failure reports.
//!
//! On Unix the agent leads its own process group: a `Ctrl-C` on the supervisor's terminal
//! reaches the supervisor only (which then stops the agent in order), and stopping the agent
//! signals the whole group, so processes the agent started stop with it. Started through a
//! [launcher](crate::launch), it also gets `SIGTERM` when the supervisor dies.

use std::io;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

use crate::tail::{Tail, read_lines};

/// Lines of standard error kept.
pub const TAIL_LINES: usize = 40;
/// Bytes of standard error kept.
pub const TAIL_BYTES: usize = 4096;

/// How to start the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchSpec {
    /// The executable.
    pub executable: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// Start it through this [launcher](crate::launch) (the supervisor's own executable), so
    /// that it dies with the supervisor.
    pub launcher: Option<PathBuf>,
}

/// A running agent process.
#[derive(Debug)]
pub struct AgentProcess {
    child: Child,
    pid: Option<u32>,
    started: Instant,
    started_at: SystemTime,
    stderr_tail: Arc<Mutex<Tail>>,
    pumps: Vec<JoinHandle<()>>,
}

fn lock(tail: &Mutex<Tail>) -> std::sync::MutexGuard<'_, Tail> {
    tail.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Describes how a process ended: `exit status 1`, `killed by signal 9`.
pub fn describe_exit(status: &ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exit status {code}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return format!("killed by signal {signal}");
        }
    }
    status.to_string()
}

impl AgentProcess {
    /// Starts the agent. Its output is logged line by line (target `agent`); standard error
    /// is also kept in a bounded tail.
    pub fn spawn(spec: &LaunchSpec) -> io::Result<Self> {
        let mut command = match &spec.launcher {
            Some(launcher) => {
                let mut command = Command::new(launcher);
                command.args(crate::launch::launcher_args(
                    std::process::id(),
                    &spec.executable,
                    &spec.args,
                ));
                command
            }
            None => {
                let mut command = Command::new(&spec.executable);
                command.args(&spec.args);
                command
            }
        };
        #[cfg(unix)]
        command.process_group(0);
        command
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn()?;
        let pid = child.id();
        let stderr_tail = Arc::new(Mutex::new(Tail::new(TAIL_LINES, TAIL_BYTES)));
        let mut pumps = Vec::new();
        if let Some(stdout) = child.stdout.take() {
            pumps.push(tokio::spawn(read_lines(stdout, move |line| {
                tracing::info!(target: "agent", pid, "{line}");
            })));
        }
        if let Some(stderr) = child.stderr.take() {
            let tail = Arc::clone(&stderr_tail);
            pumps.push(tokio::spawn(read_lines(stderr, move |line| {
                tracing::info!(target: "agent", pid, "{line}");
                lock(&tail).push(line);
            })));
        }
        tracing::info!(pid, executable = %spec.executable.display(), "agent process started");
        Ok(AgentProcess {
            child,
            pid,
            started: Instant::now(),
            started_at: SystemTime::now(),
            stderr_tail,
            pumps,
        })
    }

    /// The process ID.
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// When it started (monotonic).
    pub fn started(&self) -> Instant {
        self.started
    }

    /// When it started (wall clock, for `ComponentHealth.start_time_unix_nano`).
    pub fn started_at(&self) -> SystemTime {
        self.started_at
    }

    /// Waits for the process to exit. Cancel-safe.
    pub async fn wait(&mut self) -> io::Result<ExitStatus> {
        self.child.wait().await
    }

    /// Waits (at most 2 s) for the output readers to reach the end of the output, so that
    /// the tail holds everything the process wrote before it exited.
    pub async fn drain_output(&mut self) {
        for pump in self.pumps.drain(..) {
            let abort = pump.abort_handle();
            if tokio::time::timeout(Duration::from_secs(2), pump)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }

    /// The tail of standard error.
    pub fn stderr_tail(&self) -> String {
        lock(&self.stderr_tail).text()
    }

    /// Sends `SIGHUP` (the collector reloads its configuration on it).
    #[cfg(unix)]
    pub fn reload(&self) -> io::Result<()> {
        self.signal(nix::sys::signal::Signal::SIGHUP)
    }

    /// Reloading by signal needs Unix.
    #[cfg(not(unix))]
    pub fn reload(&self) -> io::Result<()> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "SIGHUP needs Unix",
        ))
    }

    #[cfg(unix)]
    fn pid_t(&self) -> io::Result<nix::unistd::Pid> {
        self.pid
            .and_then(|p| i32::try_from(p).ok())
            .map(nix::unistd::Pid::from_raw)
            .ok_or_else(|| io::Error::other("the process has no PID"))
    }

    /// Signals the agent only.
    #[cfg(unix)]
    fn signal(&self, signal: nix::sys::signal::Signal) -> io::Result<()> {
        nix::sys::signal::kill(self.pid_t()?, signal).map_err(io::Error::from)
    }

    /// Signals the agent's process group (the agent and the processes it started).
    #[cfg(unix)]
    fn signal_group(&self, signal: nix::sys::signal::Signal) -> io::Result<()> {
        nix::sys::signal::killpg(self.pid_t()?, signal).map_err(io::Error::from)
    }

    /// Stops the process and its process group: `SIGTERM`, then `SIGKILL` after `timeout`.
    /// Returns how it ended.
    pub async fn stop(mut self, timeout: Duration) -> io::Result<ExitStatus> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return Ok(status);
        }
        tracing::info!(pid = self.pid, "stopping the agent process");
        #[cfg(unix)]
        let asked = self
            .signal_group(nix::sys::signal::Signal::SIGTERM)
            .or_else(|_| self.signal(nix::sys::signal::Signal::SIGTERM))
            .is_ok();
        #[cfg(not(unix))]
        let asked = false;
        if asked && let Ok(result) = tokio::time::timeout(timeout, self.child.wait()).await {
            self.drain_output().await;
            return result;
        }
        tracing::warn!(pid = self.pid, "the agent did not stop in time; killing it");
        #[cfg(unix)]
        let _ = self.signal_group(nix::sys::signal::Signal::SIGKILL);
        self.child.kill().await?;
        let status = self.child.wait().await;
        self.drain_output().await;
        status
    }
}
