//! CPU time and resident memory of a process, from `/proc`.

use std::time::Duration;

/// Clock ticks per second of `/proc/PID/stat` (`USER_HZ`, 100 on Linux).
const TICKS_PER_SECOND: u64 = 100;

/// One reading of a process's resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcSample {
    /// User plus system CPU time consumed so far.
    pub cpu: Duration,
    /// Resident set size in bytes.
    pub rss: u64,
}

/// Reads `/proc/PID/stat` and `/proc/PID/status`; `None` if the process is gone.
pub fn sample(pid: u32) -> Option<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces; fields after the last ')' are fixed.
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After ')': state is field 3, so utime (14) and stime (15) are at 11 and 12.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let ticks = utime + stime;
    let cpu = Duration::from_millis(ticks * 1000 / TICKS_PER_SECOND);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kib: u64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(ProcSample {
        cpu,
        rss: rss_kib * 1024,
    })
}

/// The load generator's own process.
pub fn own() -> Option<ProcSample> {
    sample(std::process::id())
}

/// Where to find the server process: a fixed PID, or a file holding it (re-read on every
/// sample, so a restarted server is followed).
#[derive(Debug, Clone, Default)]
pub enum ServerPid {
    /// Not watched.
    #[default]
    None,
    /// This PID.
    Pid(u32),
    /// The PID written in this file.
    File(std::path::PathBuf),
}

impl ServerPid {
    /// The current PID, if known.
    pub fn pid(&self) -> Option<u32> {
        match self {
            ServerPid::None => None,
            ServerPid::Pid(pid) => Some(*pid),
            ServerPid::File(path) => std::fs::read_to_string(path).ok()?.trim().parse().ok(),
        }
    }

    /// A sample of the server process, if watched and alive.
    pub fn sample(&self) -> Option<ProcSample> {
        sample(self.pid()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_readable() {
        let s = own().expect("own /proc entry");
        assert!(s.rss > 0);
    }

    #[test]
    fn a_missing_process_is_none() {
        assert_eq!(sample(u32::MAX), None);
    }
}
