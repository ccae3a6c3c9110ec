//! Resumable HTTP(S) download of one package file to disk, with its SHA-256 checked.
//!
//! The body is streamed to a partial file in the download directory, never held in memory.
//! After an interruption the next attempt asks for the rest with `Range: bytes=<len>-`; a
//! `206` must continue exactly where the file ends, a `200` restarts from zero. When the
//! SHA-256 of a file assembled from several responses is wrong, the download starts over once
//! from scratch before the package is reported failed.

use std::io::SeekFrom;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode, Uri, header};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use opamp_transport::codec::parse_retry_after;
use opamp_transport::tls::TlsClientSettings;
use rustls_pki_types::ServerName;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncSeekExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::timeout;

use super::{DownloadError, DownloadSettings, PackagesError, hex};

/// Bytes of the file on disk, its total size when known, and the bytes received over the
/// network by this download (for the transfer rate; resumed bytes are not counted).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Progress {
    pub(crate) downloaded: u64,
    pub(crate) total: Option<u64>,
    pub(crate) transferred: u64,
}

/// One file to download.
pub(crate) struct FileRequest<'a> {
    pub(crate) url: &'a str,
    pub(crate) headers: &'a [(String, String)],
    pub(crate) sha256: [u8; 32],
    pub(crate) dest: &'a Path,
}

/// A failed attempt, with the server's `Retry-After` if it sent one.
struct Failure {
    error: DownloadError,
    retry_after: Option<Duration>,
}

impl From<DownloadError> for Failure {
    fn from(error: DownloadError) -> Self {
        Failure {
            error,
            retry_after: None,
        }
    }
}

/// Downloads `req.url` into `req.dest` (resuming what is already there) until its SHA-256
/// matches, retrying interrupted transfers. Returns the file size.
pub(crate) async fn download(
    req: &FileRequest<'_>,
    settings: &DownloadSettings,
    progress: &watch::Sender<Progress>,
) -> Result<u64, PackagesError> {
    let url_for_errors = redact_query(req.url);
    let fail = |source| PackagesError::Download {
        url: url_for_errors.clone(),
        source,
    };
    let uri: Uri = req
        .url
        .parse()
        .map_err(|_| fail(DownloadError::InvalidUrl("not a URL")))?;
    target(&uri).map_err(fail)?;
    let headers = offered_headers(req.headers).map_err(fail)?;

    let mut attempt = 0u32;
    let mut resumed = false;
    let mut restarted = false;
    loop {
        attempt += 1;
        match fetch_once(&uri, &headers, req.dest, settings, progress, &mut resumed).await {
            Ok(()) => {
                let (digest, len) = sha256_file(req.dest).await?;
                if digest == req.sha256 {
                    return Ok(len);
                }
                remove_partial(req.dest).await;
                if resumed && !restarted {
                    tracing::warn!(url = %url_for_errors, "resumed download has the wrong SHA-256; downloading it again from the start");
                    restarted = true;
                    resumed = false;
                    continue;
                }
                return Err(PackagesError::HashMismatch {
                    expected: hex::encode(&req.sha256),
                    actual: hex::encode(&digest),
                });
            }
            Err(failure) if failure.error.is_retryable() && attempt < settings.max_attempts => {
                let delay = backoff(settings, attempt)
                    .max(failure.retry_after.unwrap_or_default())
                    .min(settings.retry_max_backoff);
                tracing::warn!(
                    url = %url_for_errors,
                    attempt,
                    error = %super::error::error_chain(&failure.error),
                    ?delay,
                    "package download interrupted; will resume"
                );
                tokio::time::sleep(delay).await;
            }
            Err(failure) => {
                if matches!(failure.error, DownloadError::TooLarge { .. }) {
                    remove_partial(req.dest).await;
                }
                return Err(fail(failure.error));
            }
        }
    }
}

/// Exponential backoff with jitter: between half and all of `initial * 2^(attempt-1)`.
fn backoff(settings: &DownloadSettings, attempt: u32) -> Duration {
    let base = settings
        .retry_initial_backoff
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
        .min(settings.retry_max_backoff);
    base.mul_f64(rand::random_range(0.5..=1.0))
}

async fn fetch_once(
    uri: &Uri,
    headers: &HeaderMap,
    dest: &Path,
    settings: &DownloadSettings,
    progress: &watch::Sender<Progress>,
    resumed: &mut bool,
) -> Result<(), Failure> {
    let write_err = |e| Failure::from(DownloadError::Write(e));
    let mut file = tokio::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dest)
        .await
        .map_err(write_err)?;
    let mut offset = file.metadata().await.map_err(write_err)?.len();
    if offset > settings.max_package_size {
        file.set_len(0).await.map_err(write_err)?;
        offset = 0;
    }
    file.seek(SeekFrom::Start(offset))
        .await
        .map_err(write_err)?;
    progress.send_modify(|p| {
        p.downloaded = offset;
        p.total = None;
    });

    let (response, _connection) =
        get(uri, headers, (offset > 0).then_some(offset), settings).await?;
    let status = response.status();
    let total = match status {
        StatusCode::OK => {
            if offset > 0 {
                tracing::debug!("server ignored the Range request; downloading from the start");
                file.set_len(0).await.map_err(write_err)?;
                file.seek(SeekFrom::Start(0)).await.map_err(write_err)?;
                offset = 0;
            }
            content_length(&response)
        }
        StatusCode::PARTIAL_CONTENT => {
            let value = response
                .headers()
                .get(header::CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            match parse_content_range(value) {
                Some((start, complete)) if start == offset => {
                    if offset > 0 {
                        *resumed = true;
                        tracing::info!(offset, "resuming package download");
                    }
                    complete
                }
                _ => {
                    // Not the continuation of our file: start over on the next attempt.
                    file.set_len(0).await.map_err(write_err)?;
                    return Err(DownloadError::BadContentRange(value.to_owned()).into());
                }
            }
        }
        StatusCode::RANGE_NOT_SATISFIABLE if offset > 0 => {
            // The partial file may already be complete; the caller checks its hash and starts
            // over if it is not.
            *resumed = true;
            return Ok(());
        }
        _ => {
            let retry_after = response
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, SystemTime::now()));
            return Err(Failure {
                error: DownloadError::Status(status.as_u16()),
                retry_after,
            });
        }
    };
    let limit = settings.max_package_size;
    if total.is_some_and(|t| t > limit) {
        return Err(DownloadError::TooLarge { limit }.into());
    }
    progress.send_modify(|p| {
        p.downloaded = offset;
        p.total = total;
    });

    let mut body = response.into_body();
    let mut received = offset;
    let outcome = loop {
        let frame = match timeout(settings.read_timeout, body.frame()).await {
            Err(_) => break Err(DownloadError::Timeout("reading the body")),
            Ok(None) => break Ok(()),
            Ok(Some(Err(e))) => break Err(DownloadError::Http(Box::new(e))),
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        received += data.len() as u64;
        if received > limit {
            break Err(DownloadError::TooLarge { limit });
        }
        if let Err(e) = file.write_all(&data).await {
            break Err(DownloadError::Write(e));
        }
        progress.send_modify(|p| {
            p.downloaded = received;
            p.transferred += data.len() as u64;
        });
    };
    // Keep what arrived, so that the next attempt resumes after it.
    file.flush().await.map_err(write_err)?;
    file.sync_data().await.map_err(write_err)?;
    outcome?;
    match total {
        Some(expected) if received != expected => {
            Err(DownloadError::Incomplete { received, expected }.into())
        }
        _ => Ok(()),
    }
}

/// Aborts the task driving a connection when dropped.
struct ConnectionGuard(tokio::task::JoinHandle<()>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// GET `uri`, following redirects (never from `https` to `http`). Offered headers only go to
/// the offered origin.
async fn get(
    uri: &Uri,
    headers: &HeaderMap,
    range_from: Option<u64>,
    settings: &DownloadSettings,
) -> Result<(Response<Incoming>, ConnectionGuard), Failure> {
    let mut current = uri.clone();
    for _ in 0..=settings.max_redirects {
        let same_origin =
            current.scheme() == uri.scheme() && current.authority() == uri.authority();
        let (response, guard) = request_once(
            &current,
            same_origin.then_some(headers),
            range_from,
            settings,
        )
        .await?;
        let redirect = matches!(response.status().as_u16(), 301 | 302 | 303 | 307 | 308);
        let location = response
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok());
        match (redirect, location) {
            (true, Some(location)) => {
                let next = resolve(&current, location)?;
                if !is_https(&next) && is_https(&current) {
                    return Err(DownloadError::InsecureRedirect.into());
                }
                current = next;
                tracing::debug!(to = %redact_query(&current.to_string()), "following redirect");
            }
            _ => return Ok((response, guard)),
        }
    }
    Err(DownloadError::TooManyRedirects.into())
}

fn is_https(uri: &Uri) -> bool {
    uri.scheme_str()
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https"))
}

/// A connection that hyper can drive: TCP or TLS over TCP.
trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

async fn request_once(
    uri: &Uri,
    headers: Option<&HeaderMap>,
    range_from: Option<u64>,
    settings: &DownloadSettings,
) -> Result<(Response<Incoming>, ConnectionGuard), Failure> {
    let (host, port, tls) = target(uri)?;
    let connecting = DownloadError::Timeout("connecting");
    let tcp = timeout(
        settings.connect_timeout,
        TcpStream::connect((host.as_str(), port)),
    )
    .await
    .map_err(|_| connecting)?
    .map_err(DownloadError::Connect)?;
    let _ = tcp.set_nodelay(true);
    let io: Box<dyn Io> = if tls {
        let config = match &settings.tls_config {
            Some(config) => Arc::clone(config),
            None => TlsClientSettings::default()
                .build()
                .map_err(|e| DownloadError::Tls(Box::new(e)))?,
        };
        let name = ServerName::try_from(host.clone())
            .map_err(|_| DownloadError::InvalidUrl("the host is not a valid TLS server name"))?;
        let stream = timeout(
            settings.connect_timeout,
            tokio_rustls::TlsConnector::from(config).connect(name, tcp),
        )
        .await
        .map_err(|_| DownloadError::Timeout("in the TLS handshake"))?
        .map_err(DownloadError::Connect)?;
        Box::new(stream)
    } else {
        Box::new(tcp)
    };
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| DownloadError::Http(Box::new(e)))?;
    let guard = ConnectionGuard(tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(%error, "download connection ended with an error");
        }
    }));

    let authority = uri.authority().map_or("", |a| a.as_str());
    let host_header = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut request = Request::get(path)
        .body(Empty::<Bytes>::new())
        .map_err(|_| DownloadError::InvalidUrl("bad path"))?;
    let request_headers = request.headers_mut();
    if let Some(headers) = headers {
        request_headers.extend(headers.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    let host_value =
        HeaderValue::from_str(host_header).map_err(|_| DownloadError::InvalidUrl("bad host"))?;
    request_headers.insert(header::HOST, host_value);
    request_headers
        .entry(header::USER_AGENT)
        .or_insert(HeaderValue::from_static(concat!(
            "opamp-rs/",
            env!("CARGO_PKG_VERSION")
        )));
    request_headers.insert(
        header::ACCEPT_ENCODING,
        HeaderValue::from_static("identity"),
    );
    match range_from {
        Some(from) => {
            let range = HeaderValue::from_str(&format!("bytes={from}-"))
                .map_err(|_| DownloadError::InvalidUrl("bad range"))?;
            request_headers.insert(header::RANGE, range);
        }
        None => {
            request_headers.remove(header::RANGE);
        }
    }
    let response = timeout(settings.read_timeout, sender.send_request(request))
        .await
        .map_err(|_| DownloadError::Timeout("waiting for the response"))?
        .map_err(|e| DownloadError::Http(Box::new(e)))?;
    Ok((response, guard))
}

/// Host (IPv6 without brackets), port and whether TLS is used.
fn target(uri: &Uri) -> Result<(String, u16, bool), DownloadError> {
    let tls = match uri.scheme_str().map(str::to_ascii_lowercase).as_deref() {
        Some("http") => false,
        Some("https") => true,
        Some(_) => {
            return Err(DownloadError::InvalidUrl(
                "the scheme must be http or https",
            ));
        }
        None => return Err(DownloadError::InvalidUrl("not an absolute URL")),
    };
    let host = uri.host().ok_or(DownloadError::InvalidUrl("no host"))?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() {
        return Err(DownloadError::InvalidUrl("no host"));
    }
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    Ok((host.to_owned(), port, tls))
}

/// Resolves a `Location` header against the URL it came from.
fn resolve(base: &Uri, location: &str) -> Result<Uri, DownloadError> {
    let bad = DownloadError::InvalidUrl("bad redirect location");
    if location.contains("://") {
        return location.parse().map_err(|_| bad);
    }
    let scheme = base.scheme_str().unwrap_or("http");
    let authority = base.authority().map_or("", |a| a.as_str());
    let joined = if let Some(rest) = location.strip_prefix("//") {
        format!("{scheme}://{rest}")
    } else if location.starts_with('/') {
        format!("{scheme}://{authority}{location}")
    } else {
        let dir = base.path().rsplit_once('/').map_or("", |(dir, _)| dir);
        format!("{scheme}://{authority}{dir}/{location}")
    };
    joined.parse().map_err(|_| bad)
}

fn offered_headers(headers: &[(String, String)]) -> Result<HeaderMap, DownloadError> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let invalid = || DownloadError::InvalidHeader(name.clone());
        let name_parsed = HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid())?;
        let value = HeaderValue::from_str(value).map_err(|_| invalid())?;
        map.append(name_parsed, value);
    }
    Ok(map)
}

fn content_length(response: &Response<Incoming>) -> Option<u64> {
    response
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// Parses `bytes <start>-<end>/<complete or *>`: the start, and the complete length if known.
fn parse_content_range(value: &str) -> Option<(u64, Option<u64>)> {
    let rest = value.trim().strip_prefix("bytes")?.trim_start();
    let (range, complete) = rest.split_once('/')?;
    let (start, end) = range.split_once('-')?;
    let start: u64 = start.trim().parse().ok()?;
    let end: u64 = end.trim().parse().ok()?;
    if end < start {
        return None;
    }
    let complete = match complete.trim() {
        "*" => None,
        n => {
            let n: u64 = n.parse().ok()?;
            if end >= n {
                return None;
            }
            Some(n)
        }
    };
    Some((start, complete))
}

/// SHA-256 and size of a file, read in 64 KiB blocks.
pub(crate) async fn sha256_file(path: &Path) -> Result<([u8; 32], u64), PackagesError> {
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(|e| PackagesError::io("open", path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut len = 0u64;
    loop {
        let n = file
            .read(&mut buf)
            .await
            .map_err(|e| PackagesError::io("read", path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        len += n as u64;
    }
    Ok((hasher.finalize().into(), len))
}

async fn remove_partial(path: &Path) {
    if let Err(error) = tokio::fs::remove_file(path).await
        && error.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(%error, path = %path.display(), "cannot remove a download");
    }
}

/// The URL without its query string (which may carry credentials), for logs and errors.
pub(crate) fn redact_query(url: &str) -> String {
    match url.split_once('?') {
        Some((base, _)) => format!("{base}?<redacted>"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges() {
        assert_eq!(
            parse_content_range("bytes 100-199/200"),
            Some((100, Some(200)))
        );
        assert_eq!(parse_content_range("bytes 0-9/*"), Some((0, None)));
        assert_eq!(parse_content_range("bytes 5-4/10"), None);
        assert_eq!(parse_content_range("bytes 0-10/10"), None);
        assert_eq!(parse_content_range("items 0-1/2"), None);
        assert_eq!(parse_content_range(""), None);
    }

    #[test]
    fn redirects_resolve() {
        let base: Uri = "https://a.example:8443/dir/file.tgz?x=1".parse().unwrap();
        assert_eq!(
            resolve(&base, "/other").unwrap().to_string(),
            "https://a.example:8443/other"
        );
        assert_eq!(
            resolve(&base, "next.tgz").unwrap().to_string(),
            "https://a.example:8443/dir/next.tgz"
        );
        assert_eq!(
            resolve(&base, "//b.example/x").unwrap().to_string(),
            "https://b.example/x"
        );
        assert_eq!(
            resolve(&base, "http://c.example/y").unwrap().to_string(),
            "http://c.example/y"
        );
    }

    #[test]
    fn backoff_grows_within_bounds() {
        let settings = DownloadSettings::default()
            .with_retry_backoff(Duration::from_millis(100), Duration::from_secs(1));
        for attempt in 1..40 {
            let d = backoff(&settings, attempt);
            assert!(d <= Duration::from_secs(1), "{d:?}");
            assert!(d >= Duration::from_millis(50), "{d:?}");
        }
        assert!(backoff(&settings, 5) >= Duration::from_millis(500));
    }

    #[test]
    fn targets() {
        assert_eq!(
            target(&"http://[::1]:8080/x".parse().unwrap()).unwrap(),
            ("::1".into(), 8080, false)
        );
        assert_eq!(
            target(&"https://h/x".parse().unwrap()).unwrap(),
            ("h".into(), 443, true)
        );
        assert!(target(&"ftp://h/x".parse().unwrap()).is_err());
        assert_eq!(redact_query("http://h/p?token=s"), "http://h/p?<redacted>");
    }
}
