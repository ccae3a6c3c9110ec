//! rustls configuration for both sides: client configurations (server verification, client
//! certificates for mTLS) and server configurations (certificate, optional or required client
//! certificates), built from PEM files or in-memory PEM, plus a [`TlsAcceptor`] for servers.
//!
//! The crypto provider is chosen explicitly, never taken from the process default unless no
//! provider feature is enabled: `tls-aws-lc` selects aws-lc-rs, otherwise `tls-ring` selects
//! *ring*; [`TlsClientSettings::with_crypto_provider`] and
//! [`TlsServerSettings::with_crypto_provider`] override the choice.
//!
//! Trust anchors for server verification are the roots of the `tls-webpki-roots` (Mozilla's
//! bundle) and `tls-native-roots` (the operating system's store) features, plus any CA added
//! with [`TlsClientSettings::with_ca`].
//!
//! ```
//! use opamp_transport::tls::{PemSource, TlsClientSettings};
//!
//! // Trust only a private CA, and present a client certificate (mTLS).
//! let settings = TlsClientSettings::default()
//!     .with_default_roots(false)
//!     .with_ca(PemSource::file("/etc/opamp/ca.pem"))
//!     .with_client_cert(
//!         PemSource::file("/etc/opamp/client.pem"),
//!         PemSource::memory("-----BEGIN PRIVATE KEY-----\n..."),
//!     );
//! // Debug output shows file paths, never key material.
//! let debug = format!("{settings:?}");
//! assert!(debug.contains("client.pem") && !debug.contains("PRIVATE KEY"));
//! // Files are read when the rustls configuration is built.
//! assert!(settings.build().is_err());
//! ```

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use rustls;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::Error;

/// Largest PEM file read from disk (a CA bundle of a few hundred certificates is well below).
pub const MAX_PEM_FILE_SIZE: u64 = 8 * 1024 * 1024;

/// A server-side TLS stream produced by [`TlsAcceptor::accept`].
pub type ServerTlsStream<IO> = tokio_rustls::server::TlsStream<IO>;

/// Where PEM data comes from: bytes in memory or a file read when the configuration is built.
///
/// `Debug` shows the file path or the length of in-memory data, never the data itself.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PemSource {
    /// PEM text held in memory.
    Memory(Vec<u8>),
    /// A PEM file, read (at most [`MAX_PEM_FILE_SIZE`] bytes) each time a configuration is built.
    File(PathBuf),
}

impl PemSource {
    /// PEM text held in memory.
    pub fn memory(pem: impl Into<Vec<u8>>) -> Self {
        PemSource::Memory(pem.into())
    }

    /// A PEM file on disk.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        PemSource::File(path.into())
    }

    fn load(&self) -> Result<Vec<u8>, Error> {
        match self {
            PemSource::Memory(pem) => Ok(pem.clone()),
            PemSource::File(path) => read_capped(path),
        }
    }

    fn certificates(&self, what: &'static str) -> Result<Vec<CertificateDer<'static>>, Error> {
        let pem = self.load()?;
        let certs = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| Error::Pem { what, source })?;
        if certs.is_empty() {
            return Err(Error::InvalidTlsConfig(match what {
                "CA certificate" => "no CERTIFICATE block in the CA PEM",
                _ => "no CERTIFICATE block in the certificate chain PEM",
            }));
        }
        Ok(certs)
    }

    fn private_key(&self) -> Result<PrivateKeyDer<'static>, Error> {
        let pem = self.load()?;
        PrivateKeyDer::from_pem_slice(&pem).map_err(|source| Error::Pem {
            what: "private key",
            source,
        })
    }
}

impl fmt::Debug for PemSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PemSource::Memory(pem) => write!(f, "Memory(<{} bytes>)", pem.len()),
            PemSource::File(path) => f.debug_tuple("File").field(path).finish(),
        }
    }
}

fn read_capped(path: &Path) -> Result<Vec<u8>, Error> {
    let file_error = |source| Error::ReadFile {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(file_error)?;
    let mut data = Vec::new();
    file.take(MAX_PEM_FILE_SIZE + 1)
        .read_to_end(&mut data)
        .map_err(file_error)?;
    if data.len() as u64 > MAX_PEM_FILE_SIZE {
        return Err(Error::InvalidTlsConfig("PEM file larger than 8 MiB"));
    }
    Ok(data)
}

/// A certificate chain and its private key, both PEM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertifiedKeySource {
    /// The certificate chain, leaf first.
    pub cert_chain: PemSource,
    /// The private key of the leaf certificate (PKCS#8, PKCS#1 or SEC1).
    pub private_key: PemSource,
}

impl CertifiedKeySource {
    fn load(&self) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), Error> {
        Ok((
            self.cert_chain.certificates("certificate chain")?,
            self.private_key.private_key()?,
        ))
    }
}

/// The crypto provider of the enabled features: aws-lc-rs when `tls-aws-lc` is on, else *ring*
/// when `tls-ring` is on, else the process default installed by the application.
pub fn default_crypto_provider() -> Result<Arc<CryptoProvider>, Error> {
    #[cfg(feature = "tls-aws-lc")]
    {
        Ok(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
    }
    #[cfg(all(feature = "tls-ring", not(feature = "tls-aws-lc")))]
    {
        Ok(Arc::new(rustls::crypto::ring::default_provider()))
    }
    #[cfg(not(any(feature = "tls-ring", feature = "tls-aws-lc")))]
    {
        CryptoProvider::get_default()
            .cloned()
            .ok_or(Error::InvalidTlsConfig(
                "no crypto provider: enable tls-ring or tls-aws-lc, or install a process default",
            ))
    }
}

/// Settings for a TLS client (`wss://` and `https://` connections).
///
/// Defaults: verify the server against the default roots of the enabled features
/// (`tls-webpki-roots`, `tls-native-roots`), no client certificate, the provider of
/// [`default_crypto_provider`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct TlsClientSettings {
    /// Extra trust anchors (CA certificates) for verifying the server.
    pub ca_certs: Vec<PemSource>,
    /// Whether the roots of the `tls-webpki-roots` / `tls-native-roots` features are trusted too.
    /// Turn off to trust only [`TlsClientSettings::ca_certs`].
    pub default_roots: bool,
    /// A client certificate to present (mutual TLS).
    pub client_cert: Option<CertifiedKeySource>,
    /// **Dangerous**: accept any server certificate without verification. Only for tests and
    /// lab setups: it makes the connection open to anyone in the middle.
    pub insecure_skip_verify: bool,
    /// The crypto provider; `None` uses [`default_crypto_provider`].
    pub crypto_provider: Option<Arc<CryptoProvider>>,
}

impl Default for TlsClientSettings {
    fn default() -> Self {
        Self {
            ca_certs: Vec::new(),
            default_roots: true,
            client_cert: None,
            insecure_skip_verify: false,
            crypto_provider: None,
        }
    }
}

impl TlsClientSettings {
    /// Adds a CA certificate bundle to trust (the default roots stay trusted unless
    /// [`TlsClientSettings::with_default_roots`] turns them off).
    #[must_use]
    pub fn with_ca(mut self, ca: PemSource) -> Self {
        self.ca_certs.push(ca);
        self
    }

    /// Sets whether the roots of the enabled root features are trusted.
    #[must_use]
    pub fn with_default_roots(mut self, default_roots: bool) -> Self {
        self.default_roots = default_roots;
        self
    }

    /// Presents this certificate chain and key to servers that ask for one (mutual TLS).
    #[must_use]
    pub fn with_client_cert(mut self, cert_chain: PemSource, private_key: PemSource) -> Self {
        self.client_cert = Some(CertifiedKeySource {
            cert_chain,
            private_key,
        });
        self
    }

    /// **Dangerous**: skip server certificate verification (see
    /// [`TlsClientSettings::insecure_skip_verify`]).
    #[must_use]
    pub fn with_insecure_skip_verify(mut self, insecure_skip_verify: bool) -> Self {
        self.insecure_skip_verify = insecure_skip_verify;
        self
    }

    /// Uses this crypto provider instead of [`default_crypto_provider`].
    #[must_use]
    pub fn with_crypto_provider(mut self, provider: Arc<CryptoProvider>) -> Self {
        self.crypto_provider = Some(provider);
        self
    }

    /// Builds the rustls client configuration (reads PEM files now).
    ///
    /// Fails with [`Error::InvalidTlsConfig`] when no trust anchor is left (no root feature,
    /// no CA, verification not skipped), and with [`Error::Pem`] or [`Error::ReadFile`] for
    /// unreadable PEM.
    pub fn build(&self) -> Result<Arc<ClientConfig>, Error> {
        let provider = match &self.crypto_provider {
            Some(provider) => Arc::clone(provider),
            None => default_crypto_provider()?,
        };
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(Error::Tls)?;
        let builder = if self.insecure_skip_verify {
            tracing::warn!(
                "TLS server certificate verification is disabled (insecure_skip_verify)"
            );
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoServerVerification(provider)))
        } else {
            builder.with_root_certificates(self.root_store()?)
        };
        let config = match &self.client_cert {
            Some(source) => {
                let (chain, key) = source.load()?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(Error::Tls)?
            }
            None => builder.with_no_client_auth(),
        };
        Ok(Arc::new(config))
    }

    fn root_store(&self) -> Result<RootCertStore, Error> {
        let mut roots = RootCertStore::empty();
        if self.default_roots {
            add_default_roots(&mut roots);
        }
        for ca in &self.ca_certs {
            for cert in ca.certificates("CA certificate")? {
                roots.add(cert).map_err(Error::Tls)?;
            }
        }
        if roots.is_empty() {
            return Err(Error::InvalidTlsConfig(
                "no trust anchors: add a CA or enable tls-webpki-roots / tls-native-roots",
            ));
        }
        Ok(roots)
    }
}

#[allow(unused_variables)]
fn add_default_roots(roots: &mut RootCertStore) {
    #[cfg(feature = "tls-webpki-roots")]
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    #[cfg(feature = "tls-native-roots")]
    {
        let native = rustls_native_certs::load_native_certs();
        for error in &native.errors {
            tracing::warn!(%error, "could not load some native root certificates");
        }
        let (added, ignored) = roots.add_parsable_certificates(native.certs);
        tracing::debug!(added, ignored, "loaded native root certificates");
    }
}

/// A server certificate verifier that accepts every certificate but still checks handshake
/// signatures (so the peer must hold the key of the certificate it shows).
#[derive(Debug)]
struct NoServerVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoServerVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Whether and how a TLS server asks clients for a certificate.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientAuth {
    /// Client certificates are not requested.
    #[default]
    None,
    /// A certificate is requested and verified against these CAs when sent, but clients
    /// without one are accepted too.
    Optional(Vec<PemSource>),
    /// Every client must present a certificate issued by one of these CAs.
    Required(Vec<PemSource>),
}

/// Settings for a TLS server: its certificate chain and key, and client authentication.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct TlsServerSettings {
    /// The server's certificate chain and private key.
    pub identity: CertifiedKeySource,
    /// Client certificate policy (mutual TLS).
    pub client_auth: ClientAuth,
    /// ALPN protocols offered; defaults to `http/1.1` (the only HTTP version OpAMP needs here).
    pub alpn_protocols: Vec<Vec<u8>>,
    /// The crypto provider; `None` uses [`default_crypto_provider`].
    pub crypto_provider: Option<Arc<CryptoProvider>>,
}

impl TlsServerSettings {
    /// Settings for a server presenting `cert_chain` (leaf first) with `private_key`.
    pub fn new(cert_chain: PemSource, private_key: PemSource) -> Self {
        Self {
            identity: CertifiedKeySource {
                cert_chain,
                private_key,
            },
            client_auth: ClientAuth::None,
            alpn_protocols: vec![b"http/1.1".to_vec()],
            crypto_provider: None,
        }
    }

    /// Sets the client certificate policy.
    #[must_use]
    pub fn with_client_auth(mut self, client_auth: ClientAuth) -> Self {
        self.client_auth = client_auth;
        self
    }

    /// Sets the ALPN protocols offered to clients (empty: no ALPN).
    #[must_use]
    pub fn with_alpn_protocols(mut self, alpn_protocols: Vec<Vec<u8>>) -> Self {
        self.alpn_protocols = alpn_protocols;
        self
    }

    /// Uses this crypto provider instead of [`default_crypto_provider`].
    #[must_use]
    pub fn with_crypto_provider(mut self, provider: Arc<CryptoProvider>) -> Self {
        self.crypto_provider = Some(provider);
        self
    }

    /// Builds the rustls server configuration (reads PEM files now).
    pub fn build(&self) -> Result<Arc<ServerConfig>, Error> {
        let provider = match &self.crypto_provider {
            Some(provider) => Arc::clone(provider),
            None => default_crypto_provider()?,
        };
        let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(Error::Tls)?;
        let builder = match &self.client_auth {
            ClientAuth::None => builder.with_no_client_auth(),
            ClientAuth::Optional(cas) | ClientAuth::Required(cas) => {
                let mut roots = RootCertStore::empty();
                for ca in cas {
                    for cert in ca.certificates("CA certificate")? {
                        roots.add(cert).map_err(Error::Tls)?;
                    }
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
                let verifier = if matches!(self.client_auth, ClientAuth::Optional(_)) {
                    verifier.allow_unauthenticated()
                } else {
                    verifier
                };
                builder.with_client_cert_verifier(verifier.build().map_err(Error::ClientVerifier)?)
            }
        };
        let (chain, key) = self.identity.load()?;
        let mut config = builder.with_single_cert(chain, key).map_err(Error::Tls)?;
        config.alpn_protocols = self.alpn_protocols.clone();
        Ok(Arc::new(config))
    }
}

/// Server side of TLS: runs the handshake on accepted connections, with a time limit.
#[derive(Clone)]
pub struct TlsAcceptor {
    inner: tokio_rustls::TlsAcceptor,
    handshake_timeout: Duration,
}

impl fmt::Debug for TlsAcceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsAcceptor")
            .field("handshake_timeout", &self.handshake_timeout)
            .finish_non_exhaustive()
    }
}

impl TlsAcceptor {
    /// Default limit for one handshake: 10 seconds.
    pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

    /// An acceptor using `config`.
    pub fn new(config: Arc<ServerConfig>) -> Self {
        Self {
            inner: tokio_rustls::TlsAcceptor::from(config),
            handshake_timeout: Self::DEFAULT_HANDSHAKE_TIMEOUT,
        }
    }

    /// An acceptor with the configuration built from `settings`.
    pub fn from_settings(settings: &TlsServerSettings) -> Result<Self, Error> {
        Ok(Self::new(settings.build()?))
    }

    /// Sets the time limit of one handshake (a peer that stalls is dropped after it).
    #[must_use]
    pub fn with_handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// The rustls configuration in use.
    pub fn config(&self) -> &Arc<ServerConfig> {
        self.inner.config()
    }

    /// Runs the server handshake on `io` (typically an accepted `TcpStream`).
    ///
    /// Errors: [`Error::Tls`] when the peer fails the handshake (e.g. no or a wrong client
    /// certificate while one is required), [`Error::Timeout`] after the handshake timeout.
    pub async fn accept<IO>(&self, io: IO) -> Result<ServerTlsStream<IO>, Error>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        match tokio::time::timeout(self.handshake_timeout, self.inner.accept(io)).await {
            Ok(result) => result.map_err(from_handshake_error),
            Err(_) => Err(Error::Timeout {
                operation: "TLS handshake",
                after: self.handshake_timeout,
            }),
        }
    }
}

/// tokio-rustls reports handshake failures as `io::Error`s wrapping a `rustls::Error`: unwrap
/// them into [`Error::Tls`] so callers can match on them.
pub(crate) fn from_handshake_error(err: std::io::Error) -> Error {
    match err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(tls) => Error::Tls(tls.clone()),
        None => Error::Io(err),
    }
}
