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

#[tokio::main]
async fn main() -> ExitCode {
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
        opamp_example_agent::process::shutdown_signal().await;
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
