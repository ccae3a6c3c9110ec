//! `opamp-agent`: runs one or more agents with an in-process OpAMP client.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use opamp_example_agent::{RunOptions, run_agents};
use tokio::sync::watch;

/// An agent with the OpAMP client inside its process.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// The configuration file (collector-shaped, with the OpAMP settings in extensions.opamp).
    #[arg(short, long, default_value = "agent.yaml")]
    config: PathBuf,
    /// How many agents to run in this process (each with its own instance UID).
    #[arg(long, default_value_t = 1)]
    count: usize,
    /// Where to keep state (instance UIDs, remote config status, connection settings).
    #[arg(long)]
    state_dir: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    opamp_example_agent::process::init_tracing();
    let args = Args::parse();
    let mut options = RunOptions::new(args.config).with_count(args.count);
    if let Some(dir) = args.state_dir {
        options = options.with_state_dir(dir);
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        opamp_example_agent::process::shutdown_signal().await;
        tracing::info!("shutting down");
        let _ = stop_tx.send(true);
    });
    match run_agents(options, stop_rx).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}
