//! `minimal-server`: the load generator's target on opamp-server. Accepts every agent,
//! answers heartbeats, and pushes a 2 KiB config to the whole fleet on `POST /push` (control
//! API on its own address; `GET /applied` counts `APPLIED` statuses).
//!
//! ```text
//! minimal-server --listen 127.0.0.1:4320 --control 127.0.0.1:4321 [--pid-file F] [--threads 1]
//!                [--ws-read-buffer BYTES]
//! ```

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use opamp_benches::minimal_server::MinimalServer;
use opamp_server::ServerSettings;

/// A minimal OpAMP server for load tests.
#[derive(Debug, Parser)]
#[command(name = "minimal-server", version)]
struct Args {
    /// OpAMP endpoint address (path /v1/opamp).
    #[arg(long, default_value = "127.0.0.1:4320")]
    listen: SocketAddr,
    /// Control API address.
    #[arg(long, default_value = "127.0.0.1:4321")]
    control: SocketAddr,
    /// Heartbeat interval offered to agents, in seconds.
    #[arg(long, default_value_t = 30)]
    heartbeat: u64,
    /// Write the PID here once listening.
    #[arg(long)]
    pid_file: Option<std::path::PathBuf>,
    /// Worker threads (0: one per core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// WebSocket read buffer per connection, in bytes (default: the server's default).
    #[arg(long)]
    ws_read_buffer: Option<usize>,
}

fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let args = Args::parse();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if args.threads > 0 {
        builder.worker_threads(args.threads);
    }
    let runtime = builder.enable_all().build()?;
    runtime.block_on(async move {
        let mut settings = ServerSettings::default()
            .with_heartbeat_interval(Some(Duration::from_secs(args.heartbeat.max(1))));
        if let Some(size) = args.ws_read_buffer {
            settings = settings.with_ws_read_buffer_size(size);
        }
        let server = MinimalServer::start(settings, args.listen, args.control).await?;
        if let Some(path) = &args.pid_file {
            std::fs::write(path, std::process::id().to_string())?;
        }
        eprintln!(
            "minimal-server: OpAMP on {} (ws and http), control on {}",
            server.ws_url(),
            server.control_addr
        );
        tokio::signal::ctrl_c().await?;
        server.shutdown().await;
        Ok(())
    })
}
