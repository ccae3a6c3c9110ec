//! Key pair and certificate signing request generation for the agent-initiated CSR flow
//! (spec §"Agent-initiated CSR Flow", §"Using instance_uid in the CSR").
//!
//! ```
//! use opamp_client::connection_settings::csr::{self, CsrRequest};
//! use opamp_client::proto::InstanceUid;
//!
//! let uid = InstanceUid::new_v7();
//! let generated = csr::generate(&CsrRequest::new("my-agent").with_instance_uid(uid))?;
//! assert!(generated.csr_pem().starts_with("-----BEGIN CERTIFICATE REQUEST-----"));
//! let request = generated.to_request(); // goes into AgentToServer.connection_settings_request
//! assert!(request.opamp.is_some());
//! # Ok::<(), opamp_client::connection_settings::ConnectionSettingsError>(())
//! ```

use std::fmt;

use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, SanType};

use super::ConnectionSettingsError;
use crate::proto::{
    Bytes, CertificateRequest, ConnectionSettingsRequest, InstanceUid,
    OpAmpConnectionSettingsRequest,
};

/// The key algorithm of a generated key pair.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyAlgorithm {
    /// ECDSA on P-256 with SHA-256 (the default: supported by every TLS stack).
    #[default]
    EcdsaP256,
    /// ECDSA on P-384 with SHA-384.
    EcdsaP384,
    /// Ed25519.
    Ed25519,
}

/// Where the instance UID goes in the CSR.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum InstanceUidPlacement {
    /// A URI subject alternative name `urn:uuid:<instance uid>` (the default).
    #[default]
    SanUri,
    /// The subject common name is the instance UID (replacing [`CsrRequest::common_name`]).
    CommonName,
    /// Both a URI subject alternative name and the common name.
    Both,
}

/// What to put in a certificate signing request.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CsrRequest {
    /// Subject common name (unless the instance UID takes its place).
    pub common_name: String,
    /// Subject organization, if any.
    pub organization: Option<String>,
    /// The agent's instance UID, to bind the certificate to this agent.
    pub instance_uid: Option<InstanceUid>,
    /// Where the instance UID goes, when set.
    pub instance_uid_placement: InstanceUidPlacement,
    /// DNS subject alternative names, if any.
    pub dns_names: Vec<String>,
    /// The key algorithm.
    pub key_algorithm: KeyAlgorithm,
}

impl CsrRequest {
    /// A request with this common name, an ECDSA P-256 key and nothing else.
    pub fn new(common_name: impl Into<String>) -> Self {
        Self {
            common_name: common_name.into(),
            organization: None,
            instance_uid: None,
            instance_uid_placement: InstanceUidPlacement::default(),
            dns_names: Vec::new(),
            key_algorithm: KeyAlgorithm::default(),
        }
    }

    /// Puts the instance UID in the CSR (see [`CsrRequest::instance_uid_placement`]).
    #[must_use]
    pub fn with_instance_uid(mut self, uid: InstanceUid) -> Self {
        self.instance_uid = Some(uid);
        self
    }

    /// Sets where the instance UID goes.
    #[must_use]
    pub fn with_instance_uid_placement(mut self, placement: InstanceUidPlacement) -> Self {
        self.instance_uid_placement = placement;
        self
    }

    /// Sets the subject organization.
    #[must_use]
    pub fn with_organization(mut self, organization: impl Into<String>) -> Self {
        self.organization = Some(organization.into());
        self
    }

    /// Adds a DNS subject alternative name.
    #[must_use]
    pub fn with_dns_name(mut self, name: impl Into<String>) -> Self {
        self.dns_names.push(name.into());
        self
    }

    /// Sets the key algorithm.
    #[must_use]
    pub fn with_key_algorithm(mut self, algorithm: KeyAlgorithm) -> Self {
        self.key_algorithm = algorithm;
        self
    }
}

impl Default for CsrRequest {
    fn default() -> Self {
        Self::new("opamp-agent")
    }
}

/// A freshly generated key pair and the CSR signed with it.
///
/// Keep the private key: the server's certificate offer will carry no private key
/// (spec §"Agent-initiated CSR Flow" step 7). `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct GeneratedCsr {
    csr_pem: String,
    private_key_pem: String,
}

impl GeneratedCsr {
    /// The CSR, PEM (`CERTIFICATE REQUEST`).
    pub fn csr_pem(&self) -> &str {
        &self.csr_pem
    }

    /// The private key, PKCS#8 PEM.
    pub fn private_key_pem(&self) -> &str {
        &self.private_key_pem
    }

    /// The `connection_settings_request` to send to the server.
    pub fn to_request(&self) -> ConnectionSettingsRequest {
        ConnectionSettingsRequest {
            opamp: Some(OpAmpConnectionSettingsRequest {
                certificate_request: Some(CertificateRequest {
                    csr: Bytes::from(self.csr_pem.clone().into_bytes()),
                }),
            }),
        }
    }

    /// The CSR PEM and the private key PEM.
    pub fn into_parts(self) -> (String, String) {
        (self.csr_pem, self.private_key_pem)
    }
}

impl fmt::Debug for GeneratedCsr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeneratedCsr")
            .field("csr_pem", &self.csr_pem)
            .field("private_key_pem", &format_args!("<redacted>"))
            .finish()
    }
}

/// Generates a key pair and a PEM CSR for `request`.
pub fn generate(request: &CsrRequest) -> Result<GeneratedCsr, ConnectionSettingsError> {
    let csr_error = |e: rcgen::Error| ConnectionSettingsError::Csr(Box::new(e));
    let algorithm = match request.key_algorithm {
        KeyAlgorithm::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
        KeyAlgorithm::EcdsaP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
        KeyAlgorithm::Ed25519 => &rcgen::PKCS_ED25519,
    };
    let key = KeyPair::generate_for(algorithm).map_err(csr_error)?;

    let mut params = CertificateParams::new(request.dns_names.clone()).map_err(csr_error)?;
    let mut subject = DistinguishedName::new();
    let uid = request.instance_uid.map(|uid| uid.to_string());
    let cn_is_uid = matches!(
        request.instance_uid_placement,
        InstanceUidPlacement::CommonName | InstanceUidPlacement::Both
    );
    match (&uid, cn_is_uid) {
        (Some(uid), true) => subject.push(DnType::CommonName, uid.as_str()),
        _ => subject.push(DnType::CommonName, request.common_name.as_str()),
    }
    if let Some(org) = &request.organization {
        subject.push(DnType::OrganizationName, org.as_str());
    }
    params.distinguished_name = subject;
    if let Some(uid) = &uid
        && matches!(
            request.instance_uid_placement,
            InstanceUidPlacement::SanUri | InstanceUidPlacement::Both
        )
    {
        let uri =
            rcgen::string::Ia5String::try_from(format!("urn:uuid:{uid}")).map_err(csr_error)?;
        params.subject_alt_names.push(SanType::URI(uri));
    }
    let csr = params.serialize_request(&key).map_err(csr_error)?;
    Ok(GeneratedCsr {
        csr_pem: csr.pem().map_err(csr_error)?,
        private_key_pem: key.serialize_pem(),
    })
}
