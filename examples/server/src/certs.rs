//! Client certificates for OpAMP connection settings offers (spec §"Connection Settings
//! Management": the server generates a certificate and key and offers them to the agent).
//!
//! The issuer signs with the CA that the OpAMP listener trusts for mutual TLS
//! (`--client-ca-cert` with `--client-ca-key`), so an agent that accepts the offer can
//! reconnect with its new certificate.

use std::fmt;

use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, Issuer, KeyPair};
use sha2::{Digest, Sha256};

use crate::configs::hex;
use crate::error::FleetError;

/// Signs client certificates with a CA certificate and key.
pub struct ClientCertIssuer {
    ca_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl fmt::Debug for ClientCertIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCertIssuer").finish_non_exhaustive()
    }
}

/// A freshly issued certificate with its key (the key is never logged or stored).
pub struct IssuedCert {
    /// PEM certificate.
    pub cert_pem: String,
    /// PEM private key.
    pub key_pem: String,
    /// PEM of the issuing CA.
    pub ca_pem: String,
    /// SHA-256 fingerprint of the certificate (hex of its DER).
    pub fingerprint: String,
}

impl fmt::Debug for IssuedCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedCert")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl ClientCertIssuer {
    /// An issuer from a PEM CA certificate and its PEM private key.
    pub fn from_pem(ca_cert_pem: &str, ca_key_pem: &str) -> Result<Self, FleetError> {
        let key = KeyPair::from_pem(ca_key_pem)
            .map_err(|e| FleetError::Settings(format!("client CA key: {e}")))?;
        let issuer = Issuer::from_ca_cert_pem(ca_cert_pem, key)
            .map_err(|e| FleetError::Settings(format!("client CA certificate: {e}")))?;
        Ok(Self {
            ca_pem: ca_cert_pem.to_owned(),
            issuer,
        })
    }

    /// Issues a client certificate for `common_name` (the agent's instance UID), valid for a
    /// year.
    pub fn issue(&self, common_name: &str) -> Result<IssuedCert, FleetError> {
        let err = |e: rcgen::Error| {
            FleetError::InvalidRequest(format!("cannot issue a certificate: {e}"))
        };
        let key = KeyPair::generate().map_err(err)?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let now = std::time::SystemTime::now();
        params.not_before = now.into();
        params.not_after = (now + std::time::Duration::from_secs(365 * 24 * 3600)).into();
        let cert = params.signed_by(&key, &self.issuer).map_err(err)?;
        Ok(IssuedCert {
            fingerprint: hex(&Sha256::digest(cert.der())),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            ca_pem: self.ca_pem.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issues_client_certificates() {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = ClientCertIssuer::from_pem(&ca_cert.pem(), &ca_key.serialize_pem()).unwrap();
        let c = issuer.issue("agent-1").unwrap();
        assert!(c.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(c.key_pem.contains("PRIVATE KEY"));
        assert_eq!(c.fingerprint.len(), 64);
        assert!(!format!("{c:?}").contains("PRIVATE"));
        assert!(ClientCertIssuer::from_pem("junk", "junk").is_err());
    }
}
