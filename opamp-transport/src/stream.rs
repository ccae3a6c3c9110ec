//! Client-side connection establishment shared by the WebSocket and plain-HTTP clients: a TCP
//! connection, wrapped in TLS for `wss://` and `https://` URLs.

use std::io;
use std::pin::Pin;
#[cfg(feature = "tls")]
use std::sync::Arc;
use std::task::{Context, Poll};

use http::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::Error;

/// A client connection: plain TCP, or TLS over TCP.
///
/// Returned inside [`crate::ws::ClientWsConnection`] and used by the
/// [`crate::http::HttpClient`] connection pool.
#[derive(Debug)]
#[non_exhaustive]
pub enum MaybeTlsStream {
    /// A `ws://` or `http://` connection.
    Plain(TcpStream),
    /// A `wss://` or `https://` connection.
    #[cfg(feature = "tls")]
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl MaybeTlsStream {
    /// The TCP stream under any TLS layer (for addresses and socket options).
    pub fn tcp(&self) -> &TcpStream {
        match self {
            MaybeTlsStream::Plain(tcp) => tcp,
            #[cfg(feature = "tls")]
            MaybeTlsStream::Tls(tls) => tls.get_ref().0,
        }
    }

    /// Whether the connection runs over TLS.
    pub fn is_tls(&self) -> bool {
        !matches!(self, MaybeTlsStream::Plain(_))
    }
}

impl AsyncRead for MaybeTlsStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTlsStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            #[cfg(feature = "tls")]
            MaybeTlsStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for MaybeTlsStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTlsStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            #[cfg(feature = "tls")]
            MaybeTlsStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTlsStream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            #[cfg(feature = "tls")]
            MaybeTlsStream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            MaybeTlsStream::Plain(s) => s.is_write_vectored(),
            #[cfg(feature = "tls")]
            MaybeTlsStream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTlsStream::Plain(s) => Pin::new(s).poll_flush(cx),
            #[cfg(feature = "tls")]
            MaybeTlsStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTlsStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            #[cfg(feature = "tls")]
            MaybeTlsStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

impl Connection for MaybeTlsStream {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

/// The TLS client configuration a connection uses (nothing when built without TLS, where
/// `https`/`wss` URLs are refused).
#[derive(Clone, Debug, Default)]
pub(crate) struct TlsClientConfig {
    /// `None` builds one from [`crate::tls::TlsClientSettings::default`] on use.
    #[cfg(feature = "tls")]
    pub(crate) config: Option<Arc<rustls::ClientConfig>>,
}

/// Where to connect, taken from a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// Host name or IP address, IPv6 without brackets.
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) tls: bool,
}

impl Target {
    /// Parses `url` for a client whose URLs use the scheme `plain` or `secure` (any case), e.g.
    /// `ws`/`wss` or `http`/`https`; `reason` names them in the error for any other scheme.
    pub(crate) fn parse_url(
        url: &str,
        [plain, secure]: [&str; 2],
        reason: &'static str,
    ) -> Result<(Uri, Self), Error> {
        let uri: Uri = url.parse().map_err(|_| Error::InvalidUrl {
            url: url.to_owned(),
            reason: "not a valid URI",
        })?;
        let allowed = uri
            .scheme_str()
            .is_some_and(|s| s.eq_ignore_ascii_case(plain) || s.eq_ignore_ascii_case(secure));
        if !allowed {
            return Err(Error::InvalidUrl {
                url: url.to_owned(),
                reason,
            });
        }
        let target = Self::from_uri(&uri)?;
        Ok((uri, target))
    }

    /// Parses the scheme, host and port of `uri`. `ws`/`http` are plain, `wss`/`https` use TLS.
    pub(crate) fn from_uri(uri: &Uri) -> Result<Self, Error> {
        let invalid = |reason: &'static str| Error::InvalidUrl {
            url: uri.to_string(),
            reason,
        };
        let (tls, default_port) = match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("ws") || s.eq_ignore_ascii_case("http") => {
                (false, 80)
            }
            Some(s) if s.eq_ignore_ascii_case("wss") || s.eq_ignore_ascii_case("https") => {
                (true, 443)
            }
            Some(_) => return Err(invalid("scheme must be ws, wss, http or https")),
            None => return Err(invalid("missing scheme")),
        };
        let host = uri.host().ok_or_else(|| invalid("missing host"))?;
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if host.is_empty() {
            return Err(invalid("missing host"));
        }
        Ok(Target {
            host: host.to_owned(),
            port: uri.port_u16().unwrap_or(default_port),
            tls,
        })
    }
}

/// Opens a TCP connection to `target` and, for TLS targets, runs the TLS handshake.
///
/// `tls` is the configuration to use; `None` builds one from
/// [`crate::tls::TlsClientSettings::default`] (the default roots of the enabled features).
pub(crate) async fn connect(
    target: &Target,
    tls: &TlsClientConfig,
) -> Result<MaybeTlsStream, Error> {
    let tcp = TcpStream::connect((target.host.as_str(), target.port)).await?;
    // Small request/response exchanges: do not wait for Nagle's algorithm.
    tcp.set_nodelay(true)?;
    if !target.tls {
        return Ok(MaybeTlsStream::Plain(tcp));
    }
    connect_tls(target, tcp, tls).await
}

#[cfg(feature = "tls")]
async fn connect_tls(
    target: &Target,
    tcp: TcpStream,
    tls: &TlsClientConfig,
) -> Result<MaybeTlsStream, Error> {
    use rustls_pki_types::ServerName;

    let config = match &tls.config {
        Some(config) => Arc::clone(config),
        None => crate::tls::TlsClientSettings::default().build()?,
    };
    let name = ServerName::try_from(target.host.clone()).map_err(|_| Error::InvalidUrl {
        url: target.host.clone(),
        reason: "host is not a valid TLS server name",
    })?;
    let stream = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(crate::tls::from_handshake_error)?;
    Ok(MaybeTlsStream::Tls(Box::new(stream)))
}

#[cfg(not(feature = "tls"))]
async fn connect_tls(
    _target: &Target,
    _tcp: TcpStream,
    _tls: &TlsClientConfig,
) -> Result<MaybeTlsStream, Error> {
    Err(Error::TlsNotEnabled)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(url: &str) -> Result<Target, Error> {
        Target::from_uri(&url.parse::<Uri>().unwrap())
    }

    #[test]
    fn parses_schemes_and_default_ports() {
        let t = target("ws://example.com/v1/opamp").unwrap();
        assert_eq!((t.host.as_str(), t.port, t.tls), ("example.com", 80, false));
        let t = target("wss://example.com/v1/opamp").unwrap();
        assert_eq!((t.port, t.tls), (443, true));
        let t = target("HTTPS://127.0.0.1:4320/").unwrap();
        assert_eq!((t.host.as_str(), t.port, t.tls), ("127.0.0.1", 4320, true));
        let t = target("http://[::1]:8080/").unwrap();
        assert_eq!((t.host.as_str(), t.port, t.tls), ("::1", 8080, false));
    }

    #[test]
    fn rejects_other_schemes_and_relative_urls() {
        assert!(matches!(
            target("ftp://example.com/"),
            Err(Error::InvalidUrl { .. })
        ));
        assert!(matches!(target("/v1/opamp"), Err(Error::InvalidUrl { .. })));
    }

    #[test]
    fn parse_url_keeps_to_the_client_schemes() {
        let (uri, t) = Target::parse_url("WSS://example.com/x", ["ws", "wss"], "ws only").unwrap();
        assert_eq!((uri.path(), t.port, t.tls), ("/x", 443, true));
        assert!(matches!(
            Target::parse_url("https://example.com/", ["ws", "wss"], "ws only"),
            Err(Error::InvalidUrl {
                reason: "ws only",
                ..
            })
        ));
        assert!(matches!(
            Target::parse_url("http://exa mple/", ["http", "https"], "http only"),
            Err(Error::InvalidUrl {
                reason: "not a valid URI",
                ..
            })
        ));
    }
}
