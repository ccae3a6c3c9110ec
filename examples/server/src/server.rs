//! [`FleetServer::start`]: opens the store, starts the OpAMP listener (WebSocket and plain
//! HTTP, optional TLS and mutual TLS) and the dashboard/API listener, and returns a
//! [`FleetHandle`] that knows the bound addresses and shuts everything down.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use opamp_server::tls::{ClientAuth, PemSource, TlsAcceptor, TlsServerSettings};
use opamp_server::{Server, ServerSettings};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::auth::{AdminAuth, AgentAuth};
use crate::certs::ClientCertIssuer;
use crate::error::FleetError;
use crate::fleet::{Fleet, FleetOptions};
use crate::metrics::Metrics;
use crate::opamp::{FleetCallbacks, FleetConnection};
use crate::settings::FleetConfig;
use crate::store::{SqliteStore, Store};

/// How often `last_seen` times of heartbeating agents are written.
const FLUSH_INTERVAL: Duration = Duration::from_secs(15);
/// Most dashboard connections served at once (TLS listener).
const MAX_HTTP_CONNECTIONS: usize = 512;

/// The fleet server.
#[derive(Debug)]
pub struct FleetServer;

/// A running fleet server.
pub struct FleetHandle {
    opamp_addr: SocketAddr,
    http_addr: SocketAddr,
    tls: bool,
    fleet: Arc<Fleet>,
    server: Server,
    stop: watch::Sender<bool>,
    http_task: JoinHandle<()>,
    flush_task: JoinHandle<()>,
}

impl std::fmt::Debug for FleetHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FleetHandle")
            .field("opamp_addr", &self.opamp_addr)
            .field("http_addr", &self.http_addr)
            .finish_non_exhaustive()
    }
}

fn read(path: &std::path::Path) -> Result<String, FleetError> {
    std::fs::read_to_string(path).map_err(|source| FleetError::Io {
        what: format!("reading {}", path.display()),
        source,
    })
}

fn opamp_tls(
    config: &FleetConfig,
) -> Result<Option<Arc<opamp_server::tls::rustls::ServerConfig>>, FleetError> {
    let Some(tls) = &config.tls else {
        return Ok(None);
    };
    let mut settings =
        TlsServerSettings::new(PemSource::file(&tls.cert), PemSource::file(&tls.key));
    if let Some(ca) = &config.client_ca_cert {
        let cas = vec![PemSource::file(ca)];
        settings = settings.with_client_auth(if config.client_cert_optional {
            ClientAuth::Optional(cas)
        } else {
            ClientAuth::Required(cas)
        });
    }
    Ok(Some(settings.build()?))
}

impl FleetServer {
    /// Starts everything; the listeners are bound when this returns (port 0 picks free
    /// ports, see [`FleetHandle::opamp_addr`] and [`FleetHandle::http_addr`]).
    pub async fn start(config: FleetConfig) -> Result<FleetHandle, FleetError> {
        config.validate()?;
        let agent_auth = AgentAuth::new(config.agent_api_keys.clone(), config.opamp_addr)?;
        let admin_auth = Arc::new(AdminAuth::new(
            config.admin_user.clone(),
            config.admin_password.clone(),
            config.api_token.clone(),
            config.http_addr,
        )?);
        let tls = opamp_tls(&config)?;
        let http_acceptor = match &config.http_tls {
            Some(t) => Some(TlsAcceptor::from_settings(&TlsServerSettings::new(
                PemSource::file(&t.cert),
                PemSource::file(&t.key),
            ))?),
            None => None,
        };
        let issuer = match (&config.client_ca_cert, &config.client_ca_key) {
            (Some(cert), Some(key)) => Some(ClientCertIssuer::from_pem(&read(cert)?, &read(key)?)?),
            _ => None,
        };

        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&config.store).await?);
        let metrics = Arc::new(Metrics::default());
        let http_listener = TcpListener::bind(config.http_addr)
            .await
            .map_err(|source| FleetError::Io {
                what: format!("binding the dashboard to {}", config.http_addr),
                source,
            })?;
        let http_addr = http_listener
            .local_addr()
            .map_err(|source| FleetError::Io {
                what: "reading the dashboard address".into(),
                source,
            })?;

        let fleet = Arc::new(
            Fleet::load(
                store,
                metrics,
                FleetOptions {
                    max_agents: config.max_agents,
                    public_opamp_url: config.public_opamp_url.clone(),
                    new_agents_per_minute: config.new_agents_per_minute,
                    max_agent_bytes: config.max_agent_bytes,
                },
                issuer,
            )
            .await?,
        );
        let with_tls = tls.is_some();
        let mut settings = ServerSettings::default()
            .with_listen_addr(config.opamp_addr)
            .with_path(config.opamp_path.clone())
            .with_heartbeat_interval(Some(config.heartbeat_interval))
            .with_max_message_size(config.max_message_size)
            .with_max_connections(Some(config.max_agents));
        if let Some(tls) = tls {
            settings = settings.with_tls(tls);
        }
        let server = Server::new(
            settings,
            FleetCallbacks {
                auth: agent_auth,
                fleet: Arc::clone(&fleet),
                connection: Arc::new(FleetConnection {
                    fleet: Arc::clone(&fleet),
                }),
            },
        )?;
        let opamp_addr = match server.start().await {
            Ok(a) => a,
            Err(e) => {
                fleet.close().await;
                return Err(e.into());
            }
        };
        // `{scheme}` becomes ws/http after the agent's transport (wss/https with TLS).
        fleet.set_default_public_url(format!(
            "{{scheme}}{}://{}{}",
            if with_tls { "s" } else { "" },
            opamp_addr,
            config.opamp_path
        ));

        let (stop, stop_rx) = watch::channel(false);
        let demo = admin_auth.is_open();
        let router = crate::api::guard::Guard::new(http_addr, demo)
            .wrap(crate::api::router(Arc::clone(&fleet), admin_auth));
        let http_task = match http_acceptor {
            None => {
                let mut rx = stop_rx.clone();
                tokio::spawn(async move {
                    let shutdown = async move { stopped(&mut rx).await };
                    if let Err(e) = axum::serve(http_listener, router)
                        .with_graceful_shutdown(shutdown)
                        .await
                    {
                        tracing::error!(error = %e, "dashboard listener failed");
                    }
                })
            }
            Some(acceptor) => {
                tokio::spawn(serve_tls(http_listener, acceptor, router, stop_rx.clone()))
            }
        };
        let flush_fleet = Arc::clone(&fleet);
        let mut flush_stop = stop_rx;
        let flush_task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(FLUSH_INTERVAL);
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        if let Err(e) = flush_fleet.flush_last_seen().await {
                            tracing::warn!(error = %e, "store: flushing last-seen times failed");
                        }
                    }
                    () = stopped(&mut flush_stop) => break,
                }
            }
        });
        let scheme = if with_tls { "wss" } else { "ws" };
        tracing::info!(
            opamp = %format!("{scheme}://{opamp_addr}{}", config.opamp_path),
            dashboard = %format!("{}://{http_addr}/", if config.http_tls.is_some() { "https" } else { "http" }),
            store = %config.store,
            "fleet server started"
        );
        Ok(FleetHandle {
            opamp_addr,
            http_addr,
            tls: with_tls,
            fleet,
            server,
            stop,
            http_task,
            flush_task,
        })
    }
}

/// Resolves once the stop flag is set (or its sender is gone).
async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

/// Serves the router over TLS, one task per connection, at most [`MAX_HTTP_CONNECTIONS`].
async fn serve_tls(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    router: axum::Router,
    mut stop: watch::Receiver<bool>,
) {
    let permits = Arc::new(tokio::sync::Semaphore::new(MAX_HTTP_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = stopped(&mut stop) => return,
        };
        let Ok((tcp, peer)) = accepted else {
            continue;
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            continue; // over the limit: drop the connection
        };
        let acceptor = acceptor.clone();
        let service = hyper_util::service::TowerToHyperService::new(router.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let tls = match acceptor.accept(tcp).await {
                Ok(t) => t,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "dashboard TLS handshake failed");
                    return;
                }
            };
            let io = hyper_util::rt::TokioIo::new(tls);
            let conn = hyper::server::conn::http1::Builder::new()
                .header_read_timeout(Duration::from_secs(10))
                .timer(hyper_util::rt::TokioTimer::new())
                .serve_connection(io, service)
                .with_upgrades();
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "dashboard connection ended");
            }
        });
    }
}

impl FleetHandle {
    /// The bound OpAMP address.
    pub fn opamp_addr(&self) -> SocketAddr {
        self.opamp_addr
    }

    /// The bound dashboard/API address.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// `ws://…/v1/opamp` (or `wss://`).
    pub fn opamp_ws_url(&self) -> String {
        format!(
            "{}://{}{}",
            if self.tls { "wss" } else { "ws" },
            self.opamp_addr,
            self.server.settings().path
        )
    }

    /// `http://…/v1/opamp` (or `https://`).
    pub fn opamp_http_url(&self) -> String {
        format!(
            "{}://{}{}",
            if self.tls { "https" } else { "http" },
            self.opamp_addr,
            self.server.settings().path
        )
    }

    /// The fleet.
    pub fn fleet(&self) -> &Arc<Fleet> {
        &self.fleet
    }

    /// Stops both listeners (WebSocket agents get a close frame), writes what is pending and
    /// closes the store.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        self.server.shutdown().await;
        let _ = tokio::time::timeout(Duration::from_secs(10), self.http_task).await;
        let _ = self.flush_task.await;
        self.fleet.close().await;
        tracing::info!("fleet server stopped");
    }
}
