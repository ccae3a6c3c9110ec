//! A scripted HTTP(S) file server for the package tests, on 127.0.0.1:0: serves files by
//! path, honours `Range`, and can cut a transfer mid-body, ignore `Range`, answer errors,
//! require a header, redirect, or send slowly. Every request is logged.

#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode, header};
use http_body::{Body, Frame};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use opamp_client::proto::{
    DownloadableFile, Header, Headers, PackageAvailable, PackageStatusEnum, PackageStatuses,
    PackageType, PackagesAvailable,
};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// One logged request.
#[derive(Debug, Clone)]
pub struct Logged {
    pub path: String,
    pub headers: HeaderMap,
    pub status: u16,
}

impl Logged {
    pub fn range(&self) -> Option<&str> {
        self.headers
            .get(header::RANGE)
            .and_then(|v| v.to_str().ok())
    }
}

/// What the server does, set per test.
#[derive(Debug, Clone, Default)]
pub struct Behaviour {
    /// For this many GETs, the body stops (connection reset) after `cut_after` bytes.
    pub cut_times: usize,
    pub cut_after: usize,
    /// Answer `200` with the whole file even when asked for a range.
    pub ignore_range: bool,
    /// Answer with this status (and optional Retry-After) for the first `fail_times` requests.
    pub fail_times: usize,
    pub fail_status: u16,
    pub fail_retry_after: Option<String>,
    /// Answer 401 unless this header is present with this value.
    pub required_header: Option<(String, String)>,
    /// Send the body in chunks of this size with this delay before each.
    pub chunk: Option<(usize, Duration)>,
    /// `path -> location` redirects (302).
    pub redirects: HashMap<String, String>,
}

#[derive(Default)]
struct State {
    files: HashMap<String, Bytes>,
    behaviour: Behaviour,
    log: Vec<Logged>,
}

pub struct FileServer {
    pub addr: SocketAddr,
    pub scheme: &'static str,
    state: Arc<Mutex<State>>,
    task: JoinHandle<()>,
}

impl Drop for FileServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FileServer {
    pub async fn start() -> Self {
        Self::start_inner(None).await
    }

    pub async fn start_tls(config: Arc<rustls::ServerConfig>) -> Self {
        Self::start_inner(Some(tokio_rustls::TlsAcceptor::from(config))).await
    }

    async fn start_inner(tls: Option<tokio_rustls::TlsAcceptor>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let scheme = if tls.is_some() { "https" } else { "http" };
        let shared = Arc::clone(&state);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let state = Arc::clone(&shared);
                let tls = tls.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        let state = Arc::clone(&state);
                        async move { Ok::<_, Infallible>(handle(&state, req)) }
                    });
                    let builder = hyper::server::conn::http1::Builder::new();
                    match tls {
                        Some(acceptor) => {
                            let Ok(stream) = acceptor.accept(stream).await else {
                                return;
                            };
                            let _ = builder
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        }
                        None => {
                            let _ = builder
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        }
                    }
                });
            }
        });
        Self {
            addr,
            scheme,
            state,
            task,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.addr)
    }

    pub fn put(&self, path: &str, content: impl Into<Bytes>) {
        self.state
            .lock()
            .unwrap()
            .files
            .insert(path.to_owned(), content.into());
    }

    pub fn set(&self, behaviour: Behaviour) {
        self.state.lock().unwrap().behaviour = behaviour;
    }

    pub fn log(&self) -> Vec<Logged> {
        self.state.lock().unwrap().log.clone()
    }

    pub fn requests_for(&self, path: &str) -> Vec<Logged> {
        self.log().into_iter().filter(|l| l.path == path).collect()
    }
}

type ServerBody = http_body_util::combinators::BoxBody<Bytes, io::Error>;

fn handle(state: &Mutex<State>, req: Request<Incoming>) -> Response<ServerBody> {
    let mut state = state.lock().unwrap();
    let path = req.uri().path().to_owned();
    let (status, response) = respond(&mut state, &path, req.headers());
    state.log.push(Logged {
        path,
        headers: req.headers().clone(),
        status,
    });
    response
}

fn simple(status: u16, extra: &[(&str, String)]) -> (u16, Response<ServerBody>) {
    let mut builder = Response::builder()
        .status(status)
        .header(header::CONTENT_LENGTH, "0");
    for (k, v) in extra {
        builder = builder.header(*k, v.as_str());
    }
    use http_body_util::BodyExt as _;
    let body = http_body_util::Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed();
    (status, builder.body(body).unwrap())
}

fn respond(state: &mut State, path: &str, headers: &HeaderMap) -> (u16, Response<ServerBody>) {
    let b = &mut state.behaviour;
    if b.fail_times > 0 {
        b.fail_times -= 1;
        let extra: Vec<(&str, String)> = b
            .fail_retry_after
            .iter()
            .map(|v| ("retry-after", v.clone()))
            .collect();
        return simple(b.fail_status, &extra);
    }
    if let Some((name, value)) = &b.required_header
        && headers.get(name.as_str()).and_then(|v| v.to_str().ok()) != Some(value.as_str())
    {
        return simple(401, &[]);
    }
    if let Some(location) = b.redirects.get(path) {
        return simple(302, &[("location", location.clone())]);
    }
    let Some(content) = state.files.get(path).cloned() else {
        return simple(404, &[]);
    };
    let len = content.len();
    let range_start = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("bytes="))
        .and_then(|v| v.strip_suffix('-'))
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|_| !b.ignore_range);
    let (status, start) = match range_start {
        Some(start) if start >= len => {
            return simple(416, &[("content-range", format!("bytes */{len}"))]);
        }
        Some(start) => (StatusCode::PARTIAL_CONTENT, start),
        None => (StatusCode::OK, 0),
    };
    let cut = if b.cut_times > 0 {
        b.cut_times -= 1;
        Some(b.cut_after)
    } else {
        None
    };
    let mut builder = Response::builder()
        .status(status)
        .header(header::CONTENT_LENGTH, (len - start).to_string())
        .header(header::ACCEPT_RANGES, "bytes");
    if status == StatusCode::PARTIAL_CONTENT {
        builder = builder.header(
            header::CONTENT_RANGE,
            format!("bytes {start}-{}/{len}", len - 1),
        );
    }
    let body = SlowBody {
        data: content.slice(start..),
        pos: 0,
        cut,
        chunk: b.chunk.map_or(len.max(1), |(size, _)| size),
        delay: b.chunk.map(|(_, d)| d),
        sleep: None,
    };
    (
        status.as_u16(),
        builder.body(http_body_util::BodyExt::boxed(body)).unwrap(),
    )
}

/// A body sent in chunks, optionally slowly, optionally failing after `cut` bytes.
struct SlowBody {
    data: Bytes,
    pos: usize,
    cut: Option<usize>,
    chunk: usize,
    delay: Option<Duration>,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Body for SlowBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = &mut *self;
        if let Some(cut) = this.cut
            && this.pos >= cut
        {
            // Let what was sent reach the client (hyper and TLS flush while the body is
            // pending), then break the connection.
            let pause = this
                .sleep
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(Duration::from_millis(100))));
            if pause.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            return Poll::Ready(Some(Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "cut",
            ))));
        }
        if this.pos >= this.data.len() {
            return Poll::Ready(None);
        }
        if let Some(delay) = this.delay {
            let sleep = this
                .sleep
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(delay)));
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            this.sleep = None;
        }
        let mut end = (this.pos + this.chunk).min(this.data.len());
        if let Some(cut) = this.cut {
            end = end.min(cut);
        }
        let frame = this.data.slice(this.pos..end);
        this.pos = end;
        Poll::Ready(Some(Ok(Frame::data(frame))))
    }
}

use std::future::Future as _;

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> Bytes {
    Bytes::from(Sha256::digest(data).to_vec())
}

/// Deterministic pseudo-random content.
pub fn content(len: usize, seed: u8) -> Bytes {
    let mut x = u32::from(seed) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x & 0xff) as u8
        })
        .collect::<Vec<u8>>()
        .into()
}

/// An offer of one package served by `server` at `path` with `content`.
pub fn package(server: &FileServer, path: &str, version: &str, content: &[u8]) -> PackageAvailable {
    PackageAvailable {
        r#type: PackageType::Addon as i32,
        version: version.into(),
        file: Some(DownloadableFile {
            download_url: server.url(path),
            content_hash: sha256(content),
            signature: Bytes::new(),
            headers: Some(Headers {
                headers: vec![Header {
                    key: "Authorization".into(),
                    value: "Bearer download-token".into(),
                }],
            }),
        }),
        hash: Bytes::from(format!("pkg:{path}:{version}").into_bytes()),
    }
}

pub fn offer(all_hash: &str, packages: Vec<(&str, PackageAvailable)>) -> PackagesAvailable {
    PackagesAvailable {
        packages: packages
            .into_iter()
            .map(|(n, p)| (n.to_owned(), p))
            .collect(),
        all_packages_hash: Bytes::from(all_hash.as_bytes().to_vec()),
    }
}

pub fn status_of(statuses: &PackageStatuses, name: &str) -> PackageStatusEnum {
    statuses.packages[name].status()
}

/// A sink that keeps every statuses message it gets (tests only: unbounded by design).
#[derive(Default)]
pub struct Recorder(Mutex<Vec<PackageStatuses>>);

#[async_trait::async_trait]
impl opamp_client::packages::PackageStatusSink for Recorder {
    async fn report(&self, statuses: PackageStatuses) {
        self.0.lock().unwrap().push(statuses);
    }
}

impl Recorder {
    pub fn all(&self) -> Vec<PackageStatuses> {
        self.0.lock().unwrap().clone()
    }

    /// The successive statuses of one package, consecutive duplicates merged.
    pub fn sequence(&self, name: &str) -> Vec<PackageStatusEnum> {
        let mut seq: Vec<PackageStatusEnum> = Vec::new();
        for s in self.all() {
            if let Some(p) = s.packages.get(name)
                && seq.last() != Some(&p.status())
            {
                seq.push(p.status());
            }
        }
        seq
    }
}
