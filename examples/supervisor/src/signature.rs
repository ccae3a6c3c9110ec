//! Checking package signatures with Ed25519 public keys from `supervisor.yaml`.
//!
//! The server chooses the download URL of a package (any `http(s)` URL it likes), so the
//! SHA-256 it sends along only proves that the file is the one the *server* meant. A
//! signature made with a key kept away from the server proves that the vendor built it.
//!
//! Format: `DownloadableFile.signature` holds the 64-byte Ed25519 signature of the file's
//! 32-byte SHA-256 digest (the `content_hash`, already checked against the file by the
//! client), so that large files need not be read into memory. With OpenSSL:
//!
//! ```sh
//! openssl genpkey -algorithm ed25519 -out release.key
//! openssl pkey -in release.key -pubout -out release.pub          # for packages.public_keys
//! openssl dgst -sha256 -binary otelcol > otelcol.sha256
//! openssl pkeyutl -sign -inkey release.key -rawin -in otelcol.sha256 -out otelcol.sig
//! ```
//!
//! A public key is written as a PEM block (`-----BEGIN PUBLIC KEY-----`, as above), or as the
//! base64 of its DER `SubjectPublicKeyInfo` or of its 32 raw bytes.

use std::path::Path;

use async_trait::async_trait;
use base64::Engine;
use opamp_client::packages::{BoxError, SignatureVerifier};
use ring::signature::{ED25519, UnparsedPublicKey};

/// The DER prefix of an Ed25519 `SubjectPublicKeyInfo` (RFC 8410), before the 32 key bytes.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// An Ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(pub [u8; 32]);

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = base64::engine::general_purpose::STANDARD.encode(self.0);
        write!(f, "PublicKey({text})")
    }
}

impl PublicKey {
    /// Parses a PEM block or base64 text (of a DER `SubjectPublicKeyInfo` or of 32 raw
    /// bytes).
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let body: String = if text.starts_with("-----BEGIN") {
            if !text.starts_with("-----BEGIN PUBLIC KEY-----") {
                return Err("expected a \"PUBLIC KEY\" PEM block".into());
            }
            text.lines()
                .filter(|line| !line.starts_with("-----"))
                .collect()
        } else {
            text.split_whitespace().collect()
        };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(body.as_bytes())
            .map_err(|err| format!("not base64: {err}"))?;
        let raw = match bytes.len() {
            32 => bytes.as_slice(),
            44 if bytes.starts_with(&ED25519_SPKI_PREFIX) => &bytes[12..],
            _ => {
                return Err(format!(
                    "not an Ed25519 public key ({} bytes; expected 32 raw bytes or a DER SubjectPublicKeyInfo)",
                    bytes.len()
                ));
            }
        };
        let mut key = [0; 32];
        key.copy_from_slice(raw);
        Ok(PublicKey(key))
    }
}

/// Accepts a package whose signature verifies with one of the keys.
#[derive(Debug, Clone)]
pub struct Ed25519Verifier {
    keys: Vec<PublicKey>,
}

impl Ed25519Verifier {
    /// A verifier trusting `keys` (several: for key rotation).
    pub fn new(keys: Vec<PublicKey>) -> Self {
        Ed25519Verifier { keys }
    }

    /// Checks `signature` of the SHA-256 digest `content_hash`.
    pub fn check(&self, content_hash: &[u8], signature: &[u8]) -> Result<(), String> {
        if signature.len() != 64 {
            return Err(format!(
                "the signature has {} bytes; an Ed25519 signature has 64",
                signature.len()
            ));
        }
        let good = self.keys.iter().any(|key| {
            UnparsedPublicKey::new(&ED25519, key.0)
                .verify(content_hash, signature)
                .is_ok()
        });
        if good {
            Ok(())
        } else {
            Err("the signature does not verify with any of packages.public_keys".into())
        }
    }
}

#[async_trait]
impl SignatureVerifier for Ed25519Verifier {
    async fn verify(
        &self,
        _package: &str,
        _file: &Path,
        content_hash: &[u8],
        signature: &[u8],
    ) -> Result<(), BoxError> {
        self.check(content_hash, signature).map_err(BoxError::from)
    }
}

#[cfg(test)]
mod tests {
    use ring::rand::SystemRandom;
    use ring::signature::{Ed25519KeyPair, KeyPair};

    use super::*;

    #[test]
    fn keys_parse_and_signatures_verify() {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let raw: [u8; 32] = pair.public_key().as_ref().try_into().unwrap();
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
        let spki = [&ED25519_SPKI_PREFIX[..], &raw].concat();
        let pem = format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            b64(&spki)
        );
        for text in [b64(&raw), b64(&spki), pem] {
            assert_eq!(PublicKey::parse(&text).unwrap(), PublicKey(raw), "{text}");
        }
        assert!(PublicKey::parse("not base64!").is_err());
        assert!(PublicKey::parse(&b64(&[1; 31])).is_err());
        assert!(PublicKey::parse("-----BEGIN PRIVATE KEY-----\nAA==\n").is_err());

        let digest = [7u8; 32];
        let signature = pair.sign(&digest);
        let verifier = Ed25519Verifier::new(vec![PublicKey([9; 32]), PublicKey(raw)]);
        verifier.check(&digest, signature.as_ref()).unwrap();
        assert!(verifier.check(&[8u8; 32], signature.as_ref()).is_err());
        assert!(verifier.check(&digest, &signature.as_ref()[..63]).is_err());
        let other = Ed25519Verifier::new(vec![PublicKey([9; 32])]);
        assert!(other.check(&digest, signature.as_ref()).is_err());
    }
}
