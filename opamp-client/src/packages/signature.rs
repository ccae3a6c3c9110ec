//! The hook that checks a package's signature before it is installed.

use std::path::Path;

use async_trait::async_trait;

use super::BoxError;

/// Verifies the signature of a downloaded package file before it is installed (spec
/// §"DownloadableFile.signature", §"Code Signing"): the method is agent-specific, e.g. a
/// detached GPG signature or a cosign bundle, checked against keys kept off the OpAMP server.
///
/// Called only for files whose SHA-256 already matches the offered `content_hash`, and only
/// when the offer carries a signature; unsigned packages are accepted or refused according
/// to [`DownloadSettings::require_signature`](super::DownloadSettings::require_signature).
///
/// ```
/// use std::path::Path;
/// use opamp_client::packages::{BoxError, SignatureVerifier};
///
/// /// Accepts files whose signature is the hex SHA-256 of a shared secret and the content hash.
/// struct SharedSecret(Vec<u8>);
///
/// #[async_trait::async_trait]
/// impl SignatureVerifier for SharedSecret {
///     async fn verify(&self, _package: &str, _file: &Path, content_hash: &[u8], signature: &[u8])
///         -> Result<(), BoxError>
///     {
///         let expected = [self.0.as_slice(), content_hash].concat();
///         if signature == expected.as_slice() { Ok(()) } else { Err("bad signature".into()) }
///     }
/// }
/// ```
#[async_trait]
pub trait SignatureVerifier: Send + Sync {
    /// Checks `signature` for the package `package` whose content is in `file` and whose
    /// (verified) SHA-256 is `content_hash`. An error refuses the package; its text is
    /// reported to the server.
    async fn verify(
        &self,
        package: &str,
        file: &Path,
        content_hash: &[u8],
        signature: &[u8],
    ) -> Result<(), BoxError>;
}
