//! `loadgen`: simulates N OpAMP agents over WebSocket or plain HTTP against any OpAMP server.
//!
//! ```text
//! loadgen --mode hold --url ws://127.0.0.1:4320/v1/opamp --agents 19000 --rate 20000 \
//!         --heartbeat 30 --duration 20 --server-pid $(pgrep -f minimal-server)
//! ```
//! See `benches/README.md` for every mode and the measured figures.

use std::time::Duration;

use clap::Parser;
use opamp_benches::loadgen::{self, Config, Mode, ServerPid};

/// Simulated OpAMP agents for load tests.
#[derive(Debug, Parser)]
#[command(name = "loadgen", version)]
struct Args {
    /// hold, throughput, fanout, storm or idle-clients.
    #[arg(long, default_value = "hold")]
    mode: Mode,
    /// OpAMP endpoint: ws://HOST:PORT/PATH or http://HOST:PORT/PATH.
    #[arg(long, default_value = "ws://127.0.0.1:4320/v1/opamp")]
    url: String,
    /// Number of agents (closed-loop agents in throughput mode).
    #[arg(long, default_value_t = 100)]
    agents: usize,
    /// New connections per second while connecting (0: as fast as possible).
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// Connection attempts in flight at most.
    #[arg(long, default_value_t = 512)]
    connect_concurrency: usize,
    /// Heartbeat (poll) interval of held agents, in seconds.
    #[arg(long, default_value_t = 30.0)]
    heartbeat: f64,
    /// Seconds to hold (hold), to measure (throughput), or to wait at most (fanout, storm).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Fan-out: URL to POST to make the server push a new config to every agent; it must
    /// answer JSON with the config's "hash" (hex).
    #[arg(long)]
    push_url: Option<String>,
    /// Fan-out: URL answering JSON {"applied": N}, the server's count of APPLIED statuses.
    #[arg(long)]
    applied_url: Option<String>,
    /// Fan-out: number of pushes to time.
    #[arg(long, default_value_t = 3)]
    pushes: usize,
    /// Storm: shell command that restarts the server.
    #[arg(long)]
    restart_cmd: Option<String>,
    /// PID of the server process, to report its RSS and CPU time.
    #[arg(long)]
    server_pid: Option<u32>,
    /// File holding the server's PID (re-read, so a restarted server is followed).
    #[arg(long)]
    server_pid_file: Option<std::path::PathBuf>,
    /// Worker threads of the load generator (1 keeps it lean beside the server).
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let server_pid = match (args.server_pid, args.server_pid_file) {
        (Some(pid), _) => ServerPid::Pid(pid),
        (None, Some(file)) => ServerPid::File(file),
        (None, None) => ServerPid::None,
    };
    let config = Config {
        mode: args.mode,
        url: args.url,
        agents: args.agents,
        rate: args.rate,
        connect_concurrency: args.connect_concurrency,
        heartbeat: Duration::from_secs_f64(args.heartbeat.max(0.001)),
        duration: Duration::from_secs_f64(args.duration.max(0.0)),
        push_url: args.push_url,
        applied_url: args.applied_url,
        pushes: args.pushes,
        restart_cmd: args.restart_cmd,
        server_pid,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("loadgen: cannot start the runtime: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(loadgen::run(config)) {
        Ok(report) => {
            println!("{}", report.values);
            std::process::ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("loadgen: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}
