//! The record of the running agent, `<storage>/agent.json`, and stopping an agent left over
//! by a supervisor that did not stop cleanly.
//!
//! The record holds the agent's process ID and its start time as the kernel counts it
//! (`/proc/<pid>/stat`, field 22), so that a process ID reused by another program is never
//! mistaken for the agent: at start-up, the supervisor stops the recorded process only if a
//! process with that ID *and* that start time still runs. The agent leads its own process
//! group, so the whole group (the agent and its children) is stopped: `SIGTERM`, then
//! `SIGKILL` after `stop_timeout`. Linux only (elsewhere nothing is recorded).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The record file name in the storage directory.
pub const AGENT_RECORD: &str = "agent.json";

/// A started agent process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentRecord {
    /// Its process ID (also its process group ID).
    pub pid: u32,
    /// Its start time, in clock ticks after boot (`/proc/<pid>/stat`, field 22).
    pub start_ticks: u64,
    /// The executable it was started from (for the logs).
    pub executable: PathBuf,
}

/// What `/proc/<pid>/stat` says about a process: state, process group, start time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// The state letter (`R`, `S`, `Z`...).
    pub state: char,
    /// The process group ID.
    pub pgid: i64,
    /// The start time in clock ticks after boot.
    pub start_ticks: u64,
}

/// Reads `/proc/<pid>/stat` (`None`: no such process, or not Linux).
pub fn proc_stat(pid: u32) -> Option<ProcStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces and parentheses.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is field 3 (state); field N is fields[N - 3].
    Some(ProcStat {
        state: fields.first()?.chars().next()?,
        pgid: fields.get(2)?.parse().ok()?,
        start_ticks: fields.get(19)?.parse().ok()?,
    })
}

/// Whether the process `pid` runs (exists and is not a zombie).
pub fn is_running(pid: u32) -> bool {
    proc_stat(pid).is_some_and(|stat| stat.state != 'Z' && stat.state != 'X')
}

impl AgentRecord {
    /// The record of the process `pid` started from `executable` (`None` if its start time
    /// cannot be read).
    pub fn of(pid: u32, executable: &Path) -> Option<Self> {
        let stat = proc_stat(pid)?;
        Some(AgentRecord {
            pid,
            start_ticks: stat.start_ticks,
            executable: executable.to_owned(),
        })
    }

    /// Whether the recorded process still runs: same process ID, same start time.
    pub fn still_runs(&self) -> bool {
        proc_stat(self.pid).is_some_and(|stat| {
            stat.start_ticks == self.start_ticks && stat.state != 'Z' && stat.state != 'X'
        })
    }

    /// Writes the record to `storage_dir` (atomically).
    pub fn save(&self, storage_dir: &Path) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        opamp_client::persistence::write_atomic(&storage_dir.join(AGENT_RECORD), &bytes, true)
    }

    /// Reads the record of `storage_dir`, if any (an unreadable record is logged and ignored).
    pub fn load(storage_dir: &Path) -> Option<Self> {
        let path = storage_dir.join(AGENT_RECORD);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return None,
            Err(err) => {
                tracing::warn!(%err, file = %path.display(), "cannot read the agent record");
                return None;
            }
        };
        match serde_json::from_slice(&bytes) {
            Ok(record) => Some(record),
            Err(err) => {
                tracing::warn!(%err, file = %path.display(), "ignoring a corrupt agent record");
                None
            }
        }
    }

    /// Removes the record of `storage_dir`.
    pub fn remove(storage_dir: &Path) {
        let path = storage_dir.join(AGENT_RECORD);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => {
                tracing::warn!(%err, file = %path.display(), "cannot remove the agent record")
            }
        }
    }

    #[cfg(unix)]
    fn signal(&self, signal: nix::sys::signal::Signal) {
        use nix::unistd::Pid;
        let Ok(pid) = i32::try_from(self.pid) else {
            return;
        };
        // The agent leads its process group unless it left it; then only it is signalled.
        let leads_group = proc_stat(self.pid).is_some_and(|s| s.pgid == i64::from(pid));
        let result = if leads_group {
            nix::sys::signal::killpg(Pid::from_raw(pid), signal)
        } else {
            nix::sys::signal::kill(Pid::from_raw(pid), signal)
        };
        if let Err(err) = result {
            tracing::debug!(%err, pid, "cannot signal the leftover agent");
        }
    }

    async fn wait_gone(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        while self.still_runs() {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        true
    }
}

/// Stops the agent recorded in `storage_dir` if it still runs (`SIGTERM` to its process
/// group, `SIGKILL` after `timeout`), and removes the record. Returns the record of the
/// process stopped, if one was.
pub async fn stop_leftover(storage_dir: &Path, timeout: Duration) -> Option<AgentRecord> {
    let record = AgentRecord::load(storage_dir)?;
    let stopped = if record.still_runs() {
        tracing::warn!(
            pid = record.pid,
            executable = %record.executable.display(),
            "an agent started by a previous supervisor still runs; stopping it"
        );
        #[cfg(unix)]
        {
            use nix::sys::signal::Signal;
            record.signal(Signal::SIGTERM);
            if !record.wait_gone(timeout).await {
                tracing::warn!(
                    pid = record.pid,
                    "the leftover agent did not stop in time; killing it"
                );
                record.signal(Signal::SIGKILL);
                if !record.wait_gone(Duration::from_secs(10)).await {
                    tracing::error!(pid = record.pid, "the leftover agent survived SIGKILL");
                }
            }
        }
        #[cfg(not(unix))]
        let _ = timeout;
        Some(record)
    } else {
        tracing::debug!(pid = record.pid, "the recorded agent no longer runs");
        None
    };
    AgentRecord::remove(storage_dir);
    stopped
}
