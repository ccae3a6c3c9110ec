//! Offers the server wants an agent to have, tracked by hash.
//!
//! Each offer kind carries a hash the agent echoes back in its status: remote config
//! (`AgentRemoteConfig.config_hash` ↔ `RemoteConfigStatus.last_remote_config_hash`, spec
//! §"Configuration"), packages (`PackagesAvailable.all_packages_hash` ↔
//! `PackageStatuses.server_provided_all_packages_hash`, spec §"Packages") and connection
//! settings (`ConnectionSettingsOffers.hash` ↔ `ConnectionSettingsStatus.last_connection_settings_hash`,
//! spec §"Connection Settings Management"). The server MUST offer again while the agent reports
//! a different hash. An [`OfferSlot`] sends an offer once, then again each time the agent
//! explicitly reports a different hash, and never once the agent reports the offered hash.

use std::sync::Arc;

use bytes::Bytes;
use prost::Message;
use sha2::{Digest, Sha256};

use opamp_proto::{
    AgentConfigMap, AgentRemoteConfig, ConnectionSettingsOffers, OpAmpConnectionSettings,
    PackagesAvailable,
};

/// An offer identified by a hash.
pub(crate) trait Offer {
    /// The hash the agent echoes once it has the offer.
    fn offer_hash(&self) -> &[u8];
}

impl Offer for AgentRemoteConfig {
    fn offer_hash(&self) -> &[u8] {
        &self.config_hash
    }
}

impl Offer for PackagesAvailable {
    fn offer_hash(&self) -> &[u8] {
        &self.all_packages_hash
    }
}

impl Offer for ConnectionSettingsOffers {
    fn offer_hash(&self) -> &[u8] {
        &self.hash
    }
}

/// One desired offer and whether it went out since it last became due.
#[derive(Debug, Clone)]
pub(crate) struct OfferSlot<T> {
    desired: Option<Arc<T>>,
    sent: bool,
}

impl<T> Default for OfferSlot<T> {
    fn default() -> Self {
        Self {
            desired: None,
            sent: false,
        }
    }
}

impl<T: Offer> OfferSlot<T> {
    /// The desired offer.
    pub(crate) fn desired(&self) -> Option<&Arc<T>> {
        self.desired.as_ref()
    }

    /// Replaces the desired offer. An offer with the hash of the current one keeps its
    /// "sent" mark (the agent already has, or was already sent, that content).
    pub(crate) fn set(&mut self, offer: Arc<T>) {
        let same = self
            .desired
            .as_ref()
            .is_some_and(|d| d.offer_hash() == offer.offer_hash());
        self.desired = Some(offer);
        if !same {
            self.sent = false;
        }
    }

    /// Forgets the desired offer.
    pub(crate) fn clear(&mut self) {
        self.desired = None;
        self.sent = false;
    }

    /// True if the offer must go out now, given the hash the agent last reported.
    pub(crate) fn due(&self, reported: Option<&[u8]>) -> bool {
        match &self.desired {
            Some(d) => !self.sent && reported != Some(d.offer_hash()),
            None => false,
        }
    }

    /// The agent explicitly reported `hash` in the message just received: a hash other than
    /// the desired one makes the offer due again.
    pub(crate) fn observe_report(&mut self, hash: &[u8]) {
        if self
            .desired
            .as_ref()
            .is_some_and(|d| d.offer_hash() != hash)
        {
            self.sent = false;
        }
    }

    /// Records that the offer went out.
    pub(crate) fn mark_sent(&mut self) {
        self.sent = true;
    }
}

/// SHA-256 over the deterministic protobuf encoding of `config` (maps are sorted), a stable
/// `config_hash` for an [`AgentRemoteConfig`] built without one.
pub fn config_hash(config: &AgentConfigMap) -> Bytes {
    Bytes::copy_from_slice(&Sha256::digest(config.encode_to_vec()))
}

/// SHA-256 over the deterministic protobuf encoding of the offer with its hash cleared.
pub(crate) fn encoded_hash<M: Message + Clone>(msg: &M, clear: impl FnOnce(&mut M)) -> Bytes {
    let mut copy = msg.clone();
    clear(&mut copy);
    Bytes::copy_from_slice(&Sha256::digest(copy.encode_to_vec()))
}

/// Fills a missing `config_hash` with [`config_hash`].
pub(crate) fn with_config_hash(mut config: AgentRemoteConfig) -> AgentRemoteConfig {
    if config.config_hash.is_empty() {
        config.config_hash = config_hash(&config.config.clone().unwrap_or_default());
    }
    config
}

/// Fills a missing `all_packages_hash` with a SHA-256 of the offer.
pub(crate) fn with_packages_hash(mut packages: PackagesAvailable) -> PackagesAvailable {
    if packages.all_packages_hash.is_empty() {
        packages.all_packages_hash = encoded_hash(&packages, |p| p.all_packages_hash.clear());
    }
    packages
}

/// Fills a missing `hash` with a SHA-256 of the offer.
pub(crate) fn with_settings_hash(mut offers: ConnectionSettingsOffers) -> ConnectionSettingsOffers {
    if offers.hash.is_empty() {
        offers.hash = encoded_hash(&offers, |o| o.hash.clear());
    }
    offers
}

/// The connection settings offer an agent gets when the server offers a heartbeat interval:
/// the embedder's offer (if any) with `opamp.heartbeat_interval_seconds` filled in unless the
/// embedder set it, under a hash that covers the interval too.
pub(crate) fn with_heartbeat(
    base: Option<&ConnectionSettingsOffers>,
    heartbeat_seconds: u64,
) -> ConnectionSettingsOffers {
    if let Some(base) = base
        && base
            .opamp
            .as_ref()
            .is_some_and(|o| o.heartbeat_interval_seconds != 0)
    {
        return base.clone();
    }
    let mut offer = base.cloned().unwrap_or_default();
    offer
        .opamp
        .get_or_insert_with(OpAmpConnectionSettings::default)
        .heartbeat_interval_seconds = heartbeat_seconds;
    let mut hasher = Sha256::new();
    hasher.update(b"opamp-server heartbeat offer\0");
    hasher.update(&offer.hash);
    hasher.update(heartbeat_seconds.to_be_bytes());
    if base.is_none() {
        hasher.update(offer.encode_to_vec());
    }
    offer.hash = Bytes::copy_from_slice(&hasher.finalize());
    offer
}

#[cfg(test)]
mod tests {
    use super::*;
    use opamp_proto::AgentConfigFile;

    fn config(hash: &'static [u8]) -> Arc<AgentRemoteConfig> {
        Arc::new(AgentRemoteConfig {
            config: None,
            config_hash: Bytes::from_static(hash),
        })
    }

    #[test]
    fn sent_once_then_again_on_explicit_mismatch() {
        let mut slot = OfferSlot::default();
        assert!(!slot.due(None));
        slot.set(config(b"h1"));
        assert!(slot.due(None));
        assert!(slot.due(Some(b"old")));
        assert!(!slot.due(Some(b"h1")));
        slot.mark_sent();
        assert!(!slot.due(Some(b"old")));
        // The agent reports a different hash: offer again.
        slot.observe_report(b"old");
        assert!(slot.due(Some(b"old")));
        slot.mark_sent();
        // The agent reports the offered hash: nothing more to do.
        slot.observe_report(b"h1");
        assert!(!slot.due(Some(b"h1")));
    }

    #[test]
    fn same_hash_keeps_sent_mark() {
        let mut slot = OfferSlot::default();
        slot.set(config(b"h1"));
        slot.mark_sent();
        slot.set(config(b"h1"));
        assert!(!slot.due(None));
        slot.set(config(b"h2"));
        assert!(slot.due(None));
        slot.clear();
        assert!(!slot.due(None));
        assert!(slot.desired().is_none());
    }

    #[test]
    fn hashes_are_filled_and_stable() {
        let map = AgentConfigMap {
            config_map: [(
                "a.yaml".to_owned(),
                AgentConfigFile {
                    body: Bytes::from_static(b"x: 1"),
                    content_type: "text/yaml".into(),
                },
            )]
            .into(),
        };
        let filled = with_config_hash(AgentRemoteConfig {
            config: Some(map.clone()),
            config_hash: Bytes::new(),
        });
        assert_eq!(filled.config_hash.len(), 32);
        assert_eq!(filled.config_hash, config_hash(&map));
        let kept = with_config_hash(AgentRemoteConfig {
            config: Some(map),
            config_hash: Bytes::from_static(b"mine"),
        });
        assert_eq!(kept.config_hash, Bytes::from_static(b"mine"));

        let p = with_packages_hash(PackagesAvailable::default());
        assert_eq!(p.all_packages_hash.len(), 32);
        let s = with_settings_hash(ConnectionSettingsOffers::default());
        assert_eq!(s.hash.len(), 32);
    }

    #[test]
    fn heartbeat_is_added_under_a_new_hash() {
        let only = with_heartbeat(None, 30);
        assert_eq!(only.opamp.as_ref().unwrap().heartbeat_interval_seconds, 30);
        assert_eq!(only.hash.len(), 32);
        assert_ne!(only.hash, with_heartbeat(None, 15).hash);

        let base = ConnectionSettingsOffers {
            hash: Bytes::from_static(b"base"),
            ..Default::default()
        };
        let merged = with_heartbeat(Some(&base), 30);
        assert_eq!(
            merged.opamp.as_ref().unwrap().heartbeat_interval_seconds,
            30
        );
        assert_ne!(merged.hash, base.hash);

        let explicit = ConnectionSettingsOffers {
            hash: Bytes::from_static(b"explicit"),
            opamp: Some(OpAmpConnectionSettings {
                heartbeat_interval_seconds: 5,
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(with_heartbeat(Some(&explicit), 30), explicit);
    }
}
