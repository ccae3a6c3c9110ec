//! `opamp-supervisor`: runs and manages an agent on behalf of an OpAMP server.
//!
//! Signals: `SIGTERM`, `SIGINT` (Ctrl-C) and `SIGHUP` stop it cleanly: the agent is stopped,
//! the state saved and the server told. `SIGHUP` does not reload `supervisor.yaml` (the
//! server connection, storage and agent command line all come from it): a service manager
//! restarts the supervisor to apply a change. The agent dies with the supervisor even when it
//! is killed (see `opamp_supervisor::launch`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use opamp_example_agent::yaml::env::process_env;
use opamp_supervisor::launch::{default_launcher, exec_agent_if_asked};
use opamp_supervisor::{Supervisor, SupervisorConfig};
use tokio::sync::watch;

/// An OpAMP supervisor for a telemetry agent.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// The supervisor configuration file.
    #[arg(short, long, default_value = "supervisor.yaml")]
    config: PathBuf,
    /// Only check the configuration file and exit.
    #[arg(long)]
    check: bool,
}

fn main() -> ExitCode {
    // In launcher mode this process becomes the agent.
    exec_agent_if_asked();
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(supervise()),
        Err(err) => {
            eprintln!("error: cannot start the runtime: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Completes on `SIGTERM`, `SIGINT` or `SIGHUP`.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::hangup()) {
            Ok(mut hup) => {
                tokio::select! {
                    () = opamp_example_agent::process::shutdown_signal() => {}
                    _ = hup.recv() => tracing::info!("SIGHUP: stopping (restart the supervisor to apply a new supervisor.yaml)"),
                }
            }
            Err(_) => opamp_example_agent::process::shutdown_signal().await,
        }
    }
    #[cfg(not(unix))]
    opamp_example_agent::process::shutdown_signal().await;
}

async fn supervise() -> ExitCode {
    opamp_example_agent::process::init_tracing();
    let args = Args::parse();
    let config = match SupervisorConfig::load(&args.config, &process_env) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    if args.check {
        println!("{}: OK", args.config.display());
        return ExitCode::SUCCESS;
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        stop_signal().await;
        let _ = stop_tx.send(true);
    });
    let supervisor = Supervisor::new(config).with_launcher(default_launcher());
    match supervisor.run(stop_rx).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}
