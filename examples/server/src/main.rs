//! `opamp-fleet-server`: the fleet server as a program. `--help` lists the flags.

use opamp_fleet_server::{FleetConfig, FleetError, FleetServer};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(FleetError::HelpRequested(text)) => {
            print!("{text}");
            std::process::ExitCode::SUCCESS
        }
        Err(FleetError::Settings(text)) if text.contains("Usage:") => {
            // A command line clap refused: its text as it is, and the usual usage-error code.
            eprint!("{text}");
            std::process::ExitCode::from(2)
        }
        Err(e) => {
            tracing::error!(error = %e, "fleet server failed");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), FleetError> {
    let config = FleetConfig::from_args(std::env::args_os())?;
    let handle = FleetServer::start(config).await?;
    println!(
        "OpAMP endpoint: {}  (plain HTTP: {})\nDashboard:      http://{}/",
        handle.opamp_ws_url(),
        handle.opamp_http_url(),
        handle.http_addr()
    );
    let _ = tokio::signal::ctrl_c().await;
    tracing::info!("shutting down");
    handle.shutdown().await;
    Ok(())
}
