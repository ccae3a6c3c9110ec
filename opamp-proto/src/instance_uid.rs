//! [`InstanceUid`]: the 16-byte identifier of an Agent instance.

use std::fmt;
use std::str::FromStr;

use bytes::Bytes;
use uuid::Uuid;

use crate::Error;

/// The identifier of one running Agent instance: exactly 16 bytes, normally a
/// UUID v7.
///
/// Carried in `AgentToServer.instance_uid`, `ServerToAgent.instance_uid` and
/// `AgentIdentification.new_instance_uid`. See spec §AgentToServer.instance_uid.
///
/// `Display` and `FromStr` use the hyphenated UUID form
/// (`01936f0e-1c2a-7b3c-8d4e-5f6a7b8c9d0e`).
///
/// ```
/// use opamp_proto::InstanceUid;
///
/// let uid: InstanceUid = "01936f0e-1c2a-7b3c-8d4e-5f6a7b8c9d0e".parse()?;
/// assert_eq!(uid.to_string(), "01936f0e-1c2a-7b3c-8d4e-5f6a7b8c9d0e");
/// assert!(InstanceUid::try_from(&[1u8, 2, 3][..]).is_err());
/// # Ok::<(), opamp_proto::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct InstanceUid([u8; 16]);

impl InstanceUid {
    /// Length of an instance UID in bytes.
    pub const LEN: usize = 16;

    /// A new time-ordered random UID (UUID v7), as the spec recommends.
    pub fn new_v7() -> Self {
        Self(Uuid::now_v7().into_bytes())
    }

    /// Wraps 16 raw bytes.
    pub const fn from_array(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// The raw 16 bytes.
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// The raw bytes as [`Bytes`], ready for a message field.
    pub fn to_bytes(&self) -> Bytes {
        Bytes::copy_from_slice(&self.0)
    }

    /// The same value as a [`Uuid`].
    pub const fn to_uuid(&self) -> Uuid {
        Uuid::from_bytes(self.0)
    }

    /// True if all 16 bytes are zero (never a valid self-generated UID).
    pub fn is_nil(&self) -> bool {
        self.0 == [0; 16]
    }
}

impl From<[u8; 16]> for InstanceUid {
    fn from(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }
}

impl From<InstanceUid> for [u8; 16] {
    fn from(uid: InstanceUid) -> Self {
        uid.0
    }
}

impl From<Uuid> for InstanceUid {
    fn from(uuid: Uuid) -> Self {
        Self(uuid.into_bytes())
    }
}

impl From<InstanceUid> for Uuid {
    fn from(uid: InstanceUid) -> Self {
        uid.to_uuid()
    }
}

impl From<InstanceUid> for Bytes {
    fn from(uid: InstanceUid) -> Self {
        uid.to_bytes()
    }
}

impl From<InstanceUid> for Vec<u8> {
    fn from(uid: InstanceUid) -> Self {
        uid.0.to_vec()
    }
}

impl TryFrom<&[u8]> for InstanceUid {
    type Error = Error;

    /// Accepts exactly 16 bytes; any other length is
    /// [`Error::InvalidInstanceUidLength`].
    fn try_from(bytes: &[u8]) -> Result<Self, Error> {
        <[u8; 16]>::try_from(bytes)
            .map(Self)
            .map_err(|_| Error::InvalidInstanceUidLength { len: bytes.len() })
    }
}

impl TryFrom<&Bytes> for InstanceUid {
    type Error = Error;

    fn try_from(bytes: &Bytes) -> Result<Self, Error> {
        Self::try_from(bytes.as_ref())
    }
}

impl TryFrom<Bytes> for InstanceUid {
    type Error = Error;

    fn try_from(bytes: Bytes) -> Result<Self, Error> {
        Self::try_from(bytes.as_ref())
    }
}

impl TryFrom<&Vec<u8>> for InstanceUid {
    type Error = Error;

    fn try_from(bytes: &Vec<u8>) -> Result<Self, Error> {
        Self::try_from(bytes.as_slice())
    }
}

impl AsRef<[u8]> for InstanceUid {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Display for InstanceUid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.to_uuid().hyphenated(), f)
    }
}

impl fmt::Debug for InstanceUid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InstanceUid({self})")
    }
}

impl FromStr for InstanceUid {
    type Err = Error;

    /// Parses the hyphenated form; the other spellings the `uuid` crate
    /// understands (simple, braced, `urn:uuid:`) are accepted too.
    fn from_str(s: &str) -> Result<Self, Error> {
        Uuid::try_parse(s)
            .map(Self::from)
            .map_err(Error::InvalidInstanceUid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "01936f0e-1c2a-7b3c-8d4e-5f6a7b8c9d0e";
    const RAW: [u8; 16] = [
        0x01, 0x93, 0x6f, 0x0e, 0x1c, 0x2a, 0x7b, 0x3c, 0x8d, 0x4e, 0x5f, 0x6a, 0x7b, 0x8c, 0x9d,
        0x0e,
    ];

    #[test]
    fn parse_and_display_round_trip() {
        let uid: InstanceUid = TEXT.parse().unwrap();
        assert_eq!(uid.as_bytes(), &RAW);
        assert_eq!(uid.to_string(), TEXT);
        assert_eq!(format!("{uid:?}"), format!("InstanceUid({TEXT})"));
        let upper: InstanceUid = TEXT.to_uppercase().parse().unwrap();
        assert_eq!(upper, uid);
    }

    #[test]
    fn bad_strings_are_rejected() {
        for bad in [
            "",
            "not-a-uuid",
            "01936f0e-1c2a-7b3c-8d4e-5f6a7b8c9d0",
            "01936f0e",
        ] {
            let err = bad.parse::<InstanceUid>().unwrap_err();
            assert!(
                matches!(err, Error::InvalidInstanceUid(_)),
                "{bad:?} gave {err:?}"
            );
        }
    }

    #[test]
    fn wrong_lengths_are_rejected() {
        for len in [0usize, 1, 15, 17, 32] {
            let v = vec![7u8; len];
            assert_eq!(
                InstanceUid::try_from(v.as_slice()),
                Err(Error::InvalidInstanceUidLength { len })
            );
            assert_eq!(
                InstanceUid::try_from(Bytes::from(v)),
                Err(Error::InvalidInstanceUidLength { len })
            );
        }
        let ok = InstanceUid::try_from(&RAW[..]).unwrap();
        assert_eq!(ok, InstanceUid::from(RAW));
        assert_eq!(Bytes::from(ok).as_ref(), &RAW[..]);
    }

    #[test]
    fn v7_uids_are_version_7_and_distinct() {
        let a = InstanceUid::new_v7();
        let b = InstanceUid::new_v7();
        assert_ne!(a, b);
        assert_eq!(a.to_uuid().get_version_num(), 7);
        assert!(!a.is_nil());
        assert!(InstanceUid::default().is_nil());
    }
}
