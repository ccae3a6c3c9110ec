//! The fake agent at work: the health endpoint, the planned crashes and the signals.

use std::convert::Infallible;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::settings::FakeSettings;

struct Shared {
    settings: Mutex<FakeSettings>,
    started: Instant,
    version: String,
}

impl Shared {
    fn settings(&self) -> FakeSettings {
        self.settings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

async fn bind(endpoint: &str) -> std::io::Result<TcpListener> {
    // The previous agent may still be releasing the port.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match TcpListener::bind(endpoint).await {
            Ok(listener) => return Ok(listener),
            Err(err)
                if Instant::now() < deadline && err.kind() == std::io::ErrorKind::AddrInUse =>
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(err) => return Err(err),
        }
    }
}

fn log_start(settings: &FakeSettings, version: &str) -> std::io::Result<()> {
    let Some(path) = &settings.behaviour.start_log else {
        return Ok(());
    };
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    writeln!(
        file,
        "{millis} {} {version} {}",
        std::process::id(),
        settings.sha256
    )
}

async fn handle(
    shared: Arc<Shared>,
    path: Arc<str>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if request.method() == Method::POST && request.uri().path() == "/crash" {
        eprintln!("fake-agent: crashing on request");
        tokio::spawn(async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            std::process::exit(4);
        });
        return Ok(Response::new(Full::new(Bytes::from_static(b"crashing\n"))));
    }
    if request.uri().path() != &*path {
        let mut response = Response::new(Full::new(Bytes::from_static(b"404 page not found\n")));
        *response.status_mut() = StatusCode::NOT_FOUND;
        return Ok(response);
    }
    let settings = shared.settings();
    let warming_up = settings
        .behaviour
        .start_delay
        .is_some_and(|delay| shared.started.elapsed() < delay);
    let healthy = !settings.behaviour.unhealthy && !warming_up;
    let body = format!(
        "{{\"status\":\"{}\",\"version\":\"{}\",\"pid\":{},\"config_sha256\":\"{}\"}}\n",
        if healthy {
            "Server available"
        } else {
            "Server not available"
        },
        shared.version,
        std::process::id(),
        settings.sha256
    );
    let mut response = Response::new(Full::new(Bytes::from(body)));
    if !healthy {
        *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    }
    Ok(response)
}

async fn serve(listener: TcpListener, shared: Arc<Shared>, path: Arc<str>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let shared = Arc::clone(&shared);
        let path = Arc::clone(&path);
        tokio::spawn(async move {
            let service =
                service_fn(move |request| handle(Arc::clone(&shared), Arc::clone(&path), request));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Runs until a signal, a planned crash or a bad reload; returns the exit code.
pub(crate) async fn run(
    config: PathBuf,
    version: String,
    settings: FakeSettings,
) -> Result<u8, String> {
    log_start(&settings, &version).map_err(|e| format!("start log: {e}"))?;
    if let Some(path) = &settings.behaviour.crash_if_exists
        && path.exists()
    {
        eprintln!("Error: crash requested: {} exists", path.display());
        return Ok(2);
    }
    let mut listeners = Vec::new();
    for check in &settings.health_checks {
        let listener = bind(&check.endpoint).await.map_err(|e| {
            format!(
                "extensions.{}: cannot listen on {}: {e}",
                check.id, check.endpoint
            )
        })?;
        listeners.push((listener, Arc::<str>::from(check.path.as_str())));
    }
    let endpoints: Vec<String> = settings
        .health_checks
        .iter()
        .map(|c| format!("{}{}", c.endpoint, c.path))
        .collect();
    eprintln!(
        "fake-agent {version} started, pid {}, health on {}, config sha256 {}",
        std::process::id(),
        endpoints.join(" "),
        settings.sha256
    );
    let crash_after = settings.behaviour.crash_after;
    let shared = Arc::new(Shared {
        settings: Mutex::new(settings),
        started: Instant::now(),
        version,
    });
    for (listener, path) in listeners {
        tokio::spawn(serve(listener, Arc::clone(&shared), path));
    }
    let crash = async {
        match crash_after {
            Some(delay) => tokio::time::sleep(delay).await,
            None => std::future::pending().await,
        }
    };
    signals(config, shared, crash).await
}

#[cfg(unix)]
async fn signals(
    config: PathBuf,
    shared: Arc<Shared>,
    crash: impl std::future::Future<Output = ()>,
) -> Result<u8, String> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut hup = signal(SignalKind::hangup()).map_err(|e| e.to_string())?;
    tokio::pin!(crash);
    loop {
        tokio::select! {
            _ = term.recv() => {
                eprintln!("fake-agent: shutting down");
                return Ok(0);
            }
            () = &mut crash => {
                eprintln!("Error: planned crash (fake_agent.crash_after)");
                return Ok(3);
            }
            _ = hup.recv() => match crate::settings::FakeSettings::load(&config) {
                Ok(new) if new.health_checks == shared.settings().health_checks => {
                    eprintln!("fake-agent: configuration reloaded, sha256 {}", new.sha256);
                    *shared.settings.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = new;
                }
                Ok(_) => {
                    eprintln!("Error: the health checks cannot change on reload");
                    return Ok(1);
                }
                Err(err) => {
                    eprintln!("Error: invalid configuration on reload: {err}");
                    return Ok(1);
                }
            },
        }
    }
}

#[cfg(not(unix))]
async fn signals(
    _config: PathBuf,
    _shared: Arc<Shared>,
    crash: impl std::future::Future<Output = ()>,
) -> Result<u8, String> {
    tokio::select! {
        _ = tokio::signal::ctrl_c() => Ok(0),
        () = crash => {
            eprintln!("Error: planned crash (fake_agent.crash_after)");
            Ok(3)
        }
    }
}
