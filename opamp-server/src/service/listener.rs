//! The standalone listener: accepts TCP (optionally TLS) connections and serves HTTP/1.1 with
//! upgrades on the configured path.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};

use opamp_transport::http::error_response;

use crate::Error;
use crate::callbacks::RemoteAddr;
use crate::server::Shared;

#[cfg(feature = "tls")]
type Acceptor = Option<opamp_transport::tls::TlsAcceptor>;
#[cfg(not(feature = "tls"))]
type Acceptor = Option<Infallible>;

/// Starts the accept loop; it ends when the server stops.
pub(crate) fn spawn(
    shared: Arc<Shared>,
    listener: TcpListener,
) -> Result<tokio::task::JoinHandle<()>, Error> {
    #[cfg(feature = "tls")]
    let acceptor: Acceptor = shared
        .settings
        .tls
        .clone()
        .map(opamp_transport::tls::TlsAcceptor::new);
    #[cfg(not(feature = "tls"))]
    let acceptor: Acceptor = None;
    Ok(tokio::spawn(accept_loop(shared, listener, acceptor)))
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener, acceptor: Acceptor) {
    let stop = shared.stop.clone();
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (tcp, remote) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                // E.g. out of file descriptors: back off a little instead of spinning.
                tracing::warn!(%err, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        tokio::spawn(serve_connection(
            Arc::clone(&shared),
            tcp,
            remote,
            acceptor.clone(),
        ));
    }
    tracing::debug!("listener stopped");
}

async fn serve_connection(
    shared: Arc<Shared>,
    tcp: TcpStream,
    remote: SocketAddr,
    acceptor: Acceptor,
) {
    #[cfg(feature = "tls")]
    if let Some(acceptor) = acceptor {
        match acceptor.accept(tcp).await {
            Ok(stream) => {
                let certs = stream.get_ref().1.peer_certificates().map(|chain| {
                    crate::callbacks::PeerCertificates(Arc::new(
                        chain.iter().map(|c| c.clone().into_owned()).collect(),
                    ))
                });
                serve_http(shared, stream, remote, move |req| {
                    if let Some(certs) = &certs {
                        req.extensions_mut().insert(certs.clone());
                    }
                })
                .await;
            }
            Err(err) => tracing::debug!(%remote, %err, "TLS handshake failed"),
        }
        return;
    }
    #[cfg(not(feature = "tls"))]
    let _ = acceptor;
    serve_http(shared, tcp, remote, |_| {}).await;
}

async fn serve_http<IO>(
    shared: Arc<Shared>,
    io: IO,
    remote: SocketAddr,
    decorate: impl Fn(&mut Request<Incoming>) + Send + Sync + 'static,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let stop = shared.stop.clone();
    let close_timeout = shared.settings.close_timeout;
    let header_read_timeout = shared.settings.header_read_timeout;
    let decorate = Arc::new(decorate);
    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        let shared = Arc::clone(&shared);
        request.extensions_mut().insert(RemoteAddr(remote));
        decorate(&mut request);
        async move {
            if request.uri().path() != shared.settings.path {
                return Ok::<_, Infallible>(error_response(StatusCode::NOT_FOUND, None));
            }
            Ok(super::handle(shared, request).await)
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    let mut conn = pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(err) = result {
                tracing::debug!(%remote, %err, "HTTP connection ended with an error");
            }
        }
        () = stop.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(close_timeout, conn).await;
        }
    }
}
