//! Which connection owns which instance UID, for routing and duplicate detection.
//!
//! Spec §"Duplicate WebSocket Connections" / §"Duplicate instance_uid Detection": the server
//! SHOULD detect two live connections using the same `instance_uid`. The registry is plain
//! data: it records owners and says when a claim collides; what happens then is the
//! [`DuplicateUidPolicy`].

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use opamp_proto::InstanceUid;

/// What the server does when a connection presents an instance UID that another live
/// connection already uses.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DuplicateUidPolicy {
    /// Give the newcomer a fresh UUIDv7 through `agent_identification.new_instance_uid`, as the
    /// spec recommends. The existing connection keeps the UID.
    #[default]
    AssignNewUid,
    /// Answer the newcomer with a `BAD_REQUEST` error and close its WebSocket (close code
    /// 1008); a plain-HTTP newcomer gets `409 Conflict`.
    Reject,
    /// Serve both. Messages addressed to the UID keep going to the existing connection.
    Allow,
    /// The newcomer takes the UID over and the existing connection is closed: for fleets where
    /// a duplicate is far more likely a reconnect that beat the detection of a dead
    /// connection than a cloned agent.
    ReplaceExisting,
}

/// The result of [`UidRegistry::claim`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim<K> {
    /// The UID was free and is now owned by the claimant.
    Claimed,
    /// The claimant already owned the UID.
    AlreadyOwned,
    /// Another owner holds the UID; nothing changed.
    HeldBy(K),
}

/// Owners of instance UIDs. `K` identifies a connection.
#[derive(Debug, Clone)]
pub struct UidRegistry<K> {
    owners: HashMap<InstanceUid, K>,
}

impl<K> Default for UidRegistry<K> {
    fn default() -> Self {
        Self {
            owners: HashMap::new(),
        }
    }
}

impl<K: Clone + PartialEq> UidRegistry<K> {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Claims `uid` for `owner` unless someone else holds it.
    pub fn claim(&mut self, uid: InstanceUid, owner: K) -> Claim<K> {
        match self.owners.entry(uid) {
            Entry::Vacant(v) => {
                v.insert(owner);
                Claim::Claimed
            }
            Entry::Occupied(o) if *o.get() == owner => Claim::AlreadyOwned,
            Entry::Occupied(o) => Claim::HeldBy(o.get().clone()),
        }
    }

    /// Gives `uid` to `owner` whoever held it; returns the previous owner.
    pub fn take_over(&mut self, uid: InstanceUid, owner: K) -> Option<K> {
        self.owners.insert(uid, owner)
    }

    /// Releases `uid` if `owner` holds it; true if it did.
    pub fn release(&mut self, uid: InstanceUid, owner: &K) -> bool {
        match self.owners.entry(uid) {
            Entry::Occupied(o) if o.get() == owner => {
                o.remove();
                true
            }
            _ => false,
        }
    }

    /// The owner of `uid`.
    pub fn owner(&self, uid: &InstanceUid) -> Option<&K> {
        self.owners.get(uid)
    }

    /// Number of UIDs owned.
    pub fn len(&self) -> usize {
        self.owners.len()
    }

    /// True if no UID is owned.
    pub fn is_empty(&self) -> bool {
        self.owners.is_empty()
    }

    /// Every (UID, owner) pair, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&InstanceUid, &K)> {
        self.owners.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uid(n: u8) -> InstanceUid {
        InstanceUid::from_array([n; 16])
    }

    #[test]
    fn claim_release_and_collide() {
        let mut r = UidRegistry::new();
        assert_eq!(r.claim(uid(1), 10u64), Claim::Claimed);
        assert_eq!(r.claim(uid(1), 10), Claim::AlreadyOwned);
        assert_eq!(r.claim(uid(1), 11), Claim::HeldBy(10));
        assert!(!r.release(uid(1), &11));
        assert_eq!(r.owner(&uid(1)), Some(&10));
        assert!(r.release(uid(1), &10));
        assert!(r.is_empty());
        assert_eq!(r.claim(uid(1), 11), Claim::Claimed);
        assert_eq!(r.take_over(uid(1), 12), Some(11));
        assert_eq!(r.owner(&uid(1)), Some(&12));
        assert_eq!(r.len(), 1);
        assert_eq!(r.iter().count(), 1);
    }

    #[test]
    fn one_owner_many_uids() {
        let mut r = UidRegistry::new();
        assert_eq!(r.claim(uid(1), 7u64), Claim::Claimed);
        assert_eq!(r.claim(uid(2), 7), Claim::Claimed);
        assert!(r.release(uid(1), &7));
        assert_eq!(r.owner(&uid(2)), Some(&7));
    }
}
