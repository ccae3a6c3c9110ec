//! `opamp-supervisor`: runs and manages an agent on behalf of an OpAMP server.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use opamp_example_agent::yaml::env::process_env;
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

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
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
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    match Supervisor::new(config).run(stop_rx).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}
