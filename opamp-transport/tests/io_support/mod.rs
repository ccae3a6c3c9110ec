//! Shared helpers of the socket tests: a hyper 1 server on 127.0.0.1:0 (plain or TLS), an
//! echoing WebSocket handler, certificates made with rcgen, and a timeout guard.

#![allow(dead_code)]

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use opamp_proto::{AgentToServer, CustomMessage, ServerToAgent};
use opamp_transport::Error;
use opamp_transport::codec::Limits;
use opamp_transport::http::ServerHttpBody;
use opamp_transport::ws::{self, ServerWsConnection, WsConfig};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The message size limit of the tests: small, so oversize cases stay fast.
pub(crate) const LIMIT: usize = 1024 * 1024;

/// Guard against hangs only; never a timing assertion.
pub(crate) const GUARD: Duration = Duration::from_secs(30);

pub(crate) fn limits() -> Limits {
    Limits::default().with_max_message_size(LIMIT)
}

pub(crate) fn ws_config() -> WsConfig {
    WsConfig::default().with_limits(limits())
}

/// Awaits `future`, failing the test if it takes longer than [`GUARD`].
pub(crate) async fn within<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(GUARD, future)
        .await
        .expect("the operation hung")
}

/// A custom message whose `data` is `size` bytes, to make messages of a chosen size.
pub(crate) fn custom_message(size: usize) -> CustomMessage {
    CustomMessage {
        capability: "io.opamp.test".into(),
        r#type: "blob".into(),
        data: Bytes::from(vec![0x5a; size]),
    }
}

/// An `AgentToServer` with a 16-byte instance UID and a sequence number.
pub(crate) fn agent_message(seq: u64) -> AgentToServer {
    AgentToServer {
        instance_uid: Bytes::from_static(&[7; 16]),
        sequence_num: seq,
        ..Default::default()
    }
}

/// A server on 127.0.0.1:0 serving every connection with hyper 1 (upgrades enabled). The
/// accept loop stops when it is dropped.
pub(crate) struct TestServer {
    pub(crate) addr: SocketAddr,
    tls_errors: Arc<Mutex<Vec<Error>>>,
    connections: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    /// A plain (no TLS) server.
    pub(crate) async fn plain<F, Fut>(handler: F) -> Self
    where
        F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Response<ServerHttpBody>> + Send + 'static,
    {
        Self::start(None, handler).await
    }

    /// A TLS server using `acceptor`.
    #[cfg(feature = "tls")]
    pub(crate) async fn tls<F, Fut>(acceptor: Acceptor, handler: F) -> Self
    where
        F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Response<ServerHttpBody>> + Send + 'static,
    {
        Self::start(Some(acceptor), handler).await
    }

    async fn start<F, Fut>(acceptor: Option<Acceptor>, handler: F) -> Self
    where
        F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Response<ServerHttpBody>> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let tls_errors = Arc::new(Mutex::new(Vec::new()));
        let errors = Arc::clone(&tls_errors);
        let connections = Arc::new(AtomicUsize::new(0));
        let accepted = Arc::clone(&connections);
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                accepted.fetch_add(1, Ordering::SeqCst);
                let handler = handler.clone();
                #[allow(clippy::clone_on_copy)] // `Infallible` (copy) without the tls feature
                let acceptor = acceptor.clone();
                let errors = Arc::clone(&errors);
                tokio::spawn(async move {
                    match acceptor {
                        None => serve_connection(tcp, handler).await,
                        Some(acceptor) => {
                            serve_tls_connection(acceptor, tcp, handler, errors).await
                        }
                    }
                });
            }
        });
        Self {
            addr,
            tls_errors,
            connections,
            task,
        }
    }

    /// `scheme://127.0.0.1:port/v1/opamp`.
    pub(crate) fn url(&self, scheme: &str) -> String {
        format!("{scheme}://{}/v1/opamp", self.addr)
    }

    /// `scheme://localhost:port/v1/opamp` (for TLS: the certificate names localhost).
    pub(crate) fn localhost_url(&self, scheme: &str) -> String {
        format!("{scheme}://localhost:{}/v1/opamp", self.addr.port())
    }

    /// How many TCP connections were accepted so far.
    pub(crate) fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Takes the TLS handshake errors seen so far.
    pub(crate) fn take_tls_errors(&self) -> Vec<Error> {
        std::mem::take(&mut *self.tls_errors.lock().unwrap())
    }
}

#[cfg(feature = "tls")]
type Acceptor = opamp_transport::tls::TlsAcceptor;
#[cfg(not(feature = "tls"))]
type Acceptor = Infallible;

#[cfg(feature = "tls")]
async fn serve_tls_connection<F, Fut>(
    acceptor: Acceptor,
    tcp: tokio::net::TcpStream,
    handler: F,
    errors: Arc<Mutex<Vec<Error>>>,
) where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<ServerHttpBody>> + Send + 'static,
{
    match acceptor.accept(tcp).await {
        Ok(tls) => serve_connection(tls, handler).await,
        Err(err) => errors.lock().unwrap().push(err),
    }
}

#[cfg(not(feature = "tls"))]
async fn serve_tls_connection<F>(
    acceptor: Acceptor,
    _tcp: tokio::net::TcpStream,
    _handler: F,
    _errors: Arc<Mutex<Vec<Error>>>,
) {
    match acceptor {}
}

async fn serve_connection<IO, F, Fut>(io: IO, handler: F)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<ServerHttpBody>> + Send + 'static,
{
    let service = service_fn(move |request| {
        let handler = handler.clone();
        async move { Ok::<_, Infallible>(handler(request).await) }
    });
    let _ = http1::Builder::new()
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades()
        .await;
}

/// Accepts a WebSocket upgrade and runs `session` on the connection in its own task; answers
/// an invalid upgrade with the status the error maps to.
pub(crate) fn accept_ws<S, SFut>(
    mut request: Request<Incoming>,
    config: WsConfig,
    session: S,
) -> Response<ServerHttpBody>
where
    S: FnOnce(ServerWsConnection) -> SFut + Send + 'static,
    SFut: Future<Output = ()> + Send + 'static,
{
    match ws::accept(&mut request, config) {
        Ok((response, pending)) => {
            tokio::spawn(async move {
                match pending.connection().await {
                    Ok(connection) => session(connection).await,
                    Err(err) => panic!("upgrade failed: {err}"),
                }
            });
            response
        }
        Err(err) => ws::upgrade_error_response(&err),
    }
}

/// Answers each `AgentToServer` with a `ServerToAgent` echoing its instance UID and carrying
/// its sequence number in `flags`, until the client closes.
pub(crate) async fn echo_session(mut connection: ServerWsConnection) {
    while let Ok(Some(msg)) = connection.recv::<AgentToServer>().await {
        let reply = ServerToAgent {
            instance_uid: msg.instance_uid,
            flags: msg.sequence_num,
            ..Default::default()
        };
        if connection.send(&reply).await.is_err() {
            break;
        }
    }
}

/// PEM material of a small PKI made for one test run.
pub(crate) struct Pki {
    pub(crate) ca: String,
    pub(crate) server_cert: String,
    pub(crate) server_key: String,
    pub(crate) client_cert: String,
    pub(crate) client_key: String,
    /// A CA that signed nothing here: trusting only it must fail verification.
    pub(crate) other_ca: String,
}

fn make_ca(name: &str) -> rcgen::CertifiedIssuer<'static, rcgen::KeyPair> {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let key = rcgen::KeyPair::generate().expect("CA key");
    rcgen::CertifiedIssuer::self_signed(params, key).expect("CA certificate")
}

/// A CA, a server certificate for `localhost` and `127.0.0.1`, and a client certificate.
pub(crate) fn pki() -> Pki {
    let ca = make_ca("opamp-rs test CA");
    let other_ca = make_ca("unrelated CA");

    let server_key = rcgen::KeyPair::generate().expect("server key");
    let mut server_params =
        rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .expect("server params");
    server_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let server_cert = server_params
        .signed_by(&server_key, &ca)
        .expect("server certificate");

    let client_key = rcgen::KeyPair::generate().expect("client key");
    let mut client_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    client_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "test agent");
    client_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let client_cert = client_params
        .signed_by(&client_key, &ca)
        .expect("client certificate");

    Pki {
        ca: ca.pem(),
        server_cert: server_cert.pem(),
        server_key: server_key.serialize_pem(),
        client_cert: client_cert.pem(),
        client_key: client_key.serialize_pem(),
        other_ca: other_ca.pem(),
    }
}
