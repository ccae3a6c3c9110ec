//! Why an OpAMP connection settings offer or a CSR could not be used.

/// Why an offered [`OpAmpConnectionSettings`](crate::proto::OpAmpConnectionSettings) was
/// refused, or why a certificate signing request could not be generated.
///
/// The `Display` text of an offer error is what the client reports to the server in
/// `ConnectionSettingsStatus.error_message`; it never contains key material or header values.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectionSettingsError {
    /// The destination endpoint is empty, unparsable, or not a `ws`, `wss`, `http` or
    /// `https` URL with a host.
    #[error("invalid destination endpoint {endpoint:?}: {reason}")]
    InvalidEndpoint {
        /// The endpoint as offered.
        endpoint: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A header name or value cannot be sent in HTTP.
    #[error("invalid header {name:?}: {reason}")]
    InvalidHeader {
        /// The header name as offered.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The offered certificate (or CA certificate) is not usable PEM / X.509.
    #[error("invalid {what}: {reason}")]
    InvalidCertificate {
        /// Which certificate: `"client certificate"` or `"CA certificate"`.
        what: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The offered private key is not a PEM private key (PKCS#8, PKCS#1 or SEC1).
    #[error("invalid private key: {0}")]
    InvalidPrivateKey(String),
    /// The certificate's public key is not the public key of the private key it comes with.
    #[error("the offered certificate does not belong to the private key")]
    KeyMismatch,
    /// The offer carries a certificate without a private key, and no key from an earlier
    /// certificate signing request is kept.
    #[error("certificate offered without a private key, and no key from a CSR is kept")]
    MissingPrivateKey,
    /// Certificate offers are refused because the connection settings can only be kept in
    /// ephemeral storage (spec §"OpAMP Connection Setting Offer Flow", final note).
    #[error(
        "certificate offers are refused: connection settings are kept in ephemeral storage only"
    )]
    EphemeralStorage,
    /// The TLS settings of the offer are not usable.
    #[error("invalid TLS settings: {0}")]
    InvalidTls(String),
    /// The proxy settings of the offer are not usable.
    #[error("invalid proxy settings: {0}")]
    InvalidProxy(String),
    /// The proxy is of a kind the client cannot use. Only HTTP `CONNECT` proxies
    /// (`http://host[:port]` or `host:port`) are supported: `https://` proxies (TLS to the
    /// proxy, then `CONNECT`) and SOCKS proxies (`socks5://`, `socks5h://`) are refused,
    /// in [`ClientSettings`](crate::ClientSettings) when the client starts and in offers
    /// (reported `FAILED` without disconnecting).
    #[error(
        "unsupported proxy {url:?}: {scheme}:// proxies are not supported, only http:// (CONNECT) proxies"
    )]
    UnsupportedProxy {
        /// The proxy URL.
        url: String,
        /// Its scheme, lowercase (`https`, `socks5` or `socks5h`).
        scheme: String,
    },
    /// A PEM value is not UTF-8 text.
    #[error("{0} is not UTF-8 PEM text")]
    NotUtf8(&'static str),
    /// Generating the key pair or the certificate signing request failed.
    #[error("cannot generate the certificate signing request")]
    Csr(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
}
