//! `fake-agent`: a small stand-in for a telemetry agent, for the supervisor's tests and demos.
//!
//! It reads a collector-shaped configuration file (`--config`), checks its pipelines as the
//! collector would, and, like the collector, serves every `health_check` (or
//! `health_check/<name>`) extension listed in `service.extensions` on its `endpoint`
//! (default `localhost:13133`) and `path` (default `/`; other paths get 404): 200 when
//! healthy, 503 otherwise; `POST /crash` makes it crash. Two on one port fail as the
//! collector does ("address already in use"). An optional `fake_agent:`
//! section makes it misbehave on purpose:
//!
//! ```yaml
//! fake_agent:
//!   fail: "reason"            # refuse the configuration: print the reason, exit 1
//!   unhealthy: true           # run, but answer 503 forever
//!   start_delay: 500ms        # answer 503 for this long after starting
//!   crash_after: 2s           # exit 3 after this long
//!   crash_if_exists: /tmp/x   # exit 2 at start while this file exists
//!   start_log: /tmp/starts    # append one line per start: unix-millis pid version sha256
//! ```
//!
//! `SIGHUP` reloads the configuration (exit 1 if it became invalid); `SIGTERM` stops it.

mod server;
mod settings;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// A fake telemetry agent.
#[derive(Debug, Parser)]
#[command(about)]
struct Args {
    /// The configuration file.
    #[arg(long)]
    config: PathBuf,
    /// A version reported on the health endpoint and in the start log.
    #[arg(long, default_value = "v1")]
    version_tag: String,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = Args::parse();
    let settings = match settings::FakeSettings::load(&args.config) {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("Error: invalid configuration: {err}");
            return ExitCode::from(1);
        }
    };
    match server::run(args.config, args.version_tag, settings).await {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("Error: {err}");
            ExitCode::from(1)
        }
    }
}
