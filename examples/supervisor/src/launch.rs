//! Starting the agent so that it does not outlive the supervisor.
//!
//! On Linux the agent is started through the supervisor's own executable in a *launcher*
//! mode: the launcher asks the kernel to send it `SIGTERM` when its parent dies
//! (`PR_SET_PDEATHSIG`, kept across `exec`), checks that the supervisor is still its parent
//! (it may have died before the request), and then `exec`s the agent in its place, with the
//! same process ID. A supervisor killed with `SIGKILL` therefore takes its agent down with it,
//! without any `unsafe` code in this crate (the alternative, a `pre_exec` hook, needs it).
//!
//! The parent death signal follows the *thread* that started the child: the supervisor starts
//! agents from its main loop, which runs for as long as the supervisor does.
//!
//! A program embedding [`Supervisor`](crate::Supervisor) enables this with
//! [`Supervisor::with_launcher`](crate::Supervisor::with_launcher) and calls
//! [`exec_agent_if_asked`] first thing in its `main`, as `opamp-supervisor` does.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The first argument that selects the launcher mode.
pub const LAUNCH_COMMAND: &str = "__opamp-supervisor-exec-agent";

/// The command line that starts `executable args...` through `launcher`, for the supervisor
/// with process ID `supervisor_pid`.
pub fn launcher_args(supervisor_pid: u32, executable: &Path, args: &[String]) -> Vec<OsString> {
    let mut all: Vec<OsString> = vec![
        LAUNCH_COMMAND.into(),
        supervisor_pid.to_string().into(),
        executable.as_os_str().to_owned(),
    ];
    all.extend(args.iter().map(OsString::from));
    all
}

/// The launcher to use by default: this executable, on Linux (elsewhere there is no parent
/// death signal, and the agent is started directly).
pub fn default_launcher() -> Option<PathBuf> {
    if cfg!(target_os = "linux") {
        std::env::current_exe().ok()
    } else {
        None
    }
}

/// If this process was started in launcher mode (first argument [`LAUNCH_COMMAND`]), becomes
/// the agent and never returns (it exits with 126 if the parent death signal cannot be set,
/// 125 if the supervisor is already gone, 127 if the agent cannot be executed). Otherwise
/// returns at once.
pub fn exec_agent_if_asked() {
    let mut args = std::env::args_os().skip(1);
    if args.next().as_deref() != Some(std::ffi::OsStr::new(LAUNCH_COMMAND)) {
        return;
    }
    let code = launch(args);
    std::process::exit(code);
}

#[cfg(target_os = "linux")]
fn launch(mut args: impl Iterator<Item = OsString>) -> i32 {
    use std::os::unix::process::CommandExt;

    use nix::sys::signal::Signal;

    let parent = args
        .next()
        .and_then(|p| p.into_string().ok())
        .and_then(|p| p.parse::<i32>().ok());
    let (Some(parent), Some(executable)) = (parent, args.next()) else {
        eprintln!("{LAUNCH_COMMAND}: expected <supervisor pid> <executable> [args...]");
        return 2;
    };
    if let Err(err) = nix::sys::prctl::set_pdeathsig(Signal::SIGTERM) {
        eprintln!("{LAUNCH_COMMAND}: cannot set the parent death signal: {err}");
        return 126;
    }
    if nix::unistd::getppid().as_raw() != parent {
        eprintln!(
            "{LAUNCH_COMMAND}: the supervisor (pid {parent}) is gone; not starting the agent"
        );
        return 125;
    }
    let err = std::process::Command::new(&executable).args(args).exec();
    eprintln!(
        "{LAUNCH_COMMAND}: cannot execute {}: {err}",
        Path::new(&executable).display()
    );
    127
}

#[cfg(not(target_os = "linux"))]
fn launch(_args: impl Iterator<Item = OsString>) -> i32 {
    eprintln!("{LAUNCH_COMMAND}: the launcher needs Linux");
    2
}
