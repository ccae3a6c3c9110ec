//! The macro behind the capability and flag bit sets.

/// Defines a `u64` bit-set newtype with named bits.
///
/// Unknown bits are kept as they are: a set decoded from a newer peer
/// re-encodes unchanged and its `Debug` shows the extra bits in hex.
macro_rules! bit_set {
    (
        $(#[$meta:meta])*
        $name:ident from $proto:ty {
            $(
                $(#[$bit_meta:meta])*
                $bit:ident = $value:expr, $variant:ident;
            )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(u64);

        impl $name {
            $(
                $(#[$bit_meta])*
                pub const $bit: Self = Self($value);
            )+

            /// Every bit with a name, paired with that name.
            pub const NAMED: &'static [(&'static str, Self)] = &[$((stringify!($bit), Self::$bit)),+];

            /// The set with no bit.
            pub const fn empty() -> Self {
                Self(0)
            }

            /// The set of every bit this version of the crate knows.
            pub const fn all_known() -> Self {
                Self(0 $(| $value)+)
            }

            /// Wraps raw bits from the wire; unknown bits are kept.
            pub const fn from_bits(bits: u64) -> Self {
                Self(bits)
            }

            /// The raw bits, for the wire.
            pub const fn bits(self) -> u64 {
                self.0
            }

            /// The bits this version of the crate has no name for.
            pub const fn unknown_bits(self) -> u64 {
                self.0 & !Self::all_known().0
            }

            /// True if no bit is set.
            pub const fn is_empty(self) -> bool {
                self.0 == 0
            }

            /// True if every bit of `other` is set in `self`.
            pub const fn contains(self, other: Self) -> bool {
                self.0 & other.0 == other.0
            }

            /// True if any bit of `other` is set in `self`.
            pub const fn intersects(self, other: Self) -> bool {
                self.0 & other.0 != 0
            }

            /// Sets the bits of `other`.
            pub fn insert(&mut self, other: Self) {
                self.0 |= other.0;
            }

            /// Clears the bits of `other`.
            pub fn remove(&mut self, other: Self) {
                self.0 &= !other.0;
            }

            /// Sets or clears the bits of `other`.
            pub fn set(&mut self, other: Self, on: bool) {
                if on {
                    self.insert(other);
                } else {
                    self.remove(other);
                }
            }

            /// `self` with the bits of `other` set.
            #[must_use]
            pub const fn with(self, other: Self) -> Self {
                Self(self.0 | other.0)
            }

            /// `self` with the bits of `other` cleared.
            #[must_use]
            pub const fn without(self, other: Self) -> Self {
                Self(self.0 & !other.0)
            }

            /// The names of the known bits that are set, lowest bit first.
            pub fn names(self) -> impl Iterator<Item = &'static str> {
                Self::NAMED
                    .iter()
                    .filter(move |(_, bit)| self.contains(*bit))
                    .map(|(name, _)| *name)
            }
        }

        impl From<u64> for $name {
            fn from(bits: u64) -> Self {
                Self(bits)
            }
        }

        impl From<$name> for u64 {
            fn from(set: $name) -> Self {
                set.0
            }
        }

        impl From<$proto> for $name {
            /// The single bit of a protobuf enum value (`Unspecified` is empty).
            fn from(value: $proto) -> Self {
                // The enum values are non-negative bit masks.
                Self(u64::from(value as i32 as u32))
            }
        }

        impl ::core::ops::BitOr for $name {
            type Output = Self;
            fn bitor(self, rhs: Self) -> Self {
                Self(self.0 | rhs.0)
            }
        }

        impl ::core::ops::BitOrAssign for $name {
            fn bitor_assign(&mut self, rhs: Self) {
                self.0 |= rhs.0;
            }
        }

        impl ::core::ops::BitAnd for $name {
            type Output = Self;
            fn bitand(self, rhs: Self) -> Self {
                Self(self.0 & rhs.0)
            }
        }

        impl ::core::ops::BitAndAssign for $name {
            fn bitand_assign(&mut self, rhs: Self) {
                self.0 &= rhs.0;
            }
        }

        impl ::core::ops::BitXor for $name {
            type Output = Self;
            fn bitxor(self, rhs: Self) -> Self {
                Self(self.0 ^ rhs.0)
            }
        }

        impl ::core::ops::BitXorAssign for $name {
            fn bitxor_assign(&mut self, rhs: Self) {
                self.0 ^= rhs.0;
            }
        }

        impl ::core::ops::Sub for $name {
            type Output = Self;
            /// The bits of `self` that are not in `rhs`.
            fn sub(self, rhs: Self) -> Self {
                Self(self.0 & !rhs.0)
            }
        }

        impl ::core::ops::SubAssign for $name {
            fn sub_assign(&mut self, rhs: Self) {
                self.0 &= !rhs.0;
            }
        }

        impl ::core::ops::Not for $name {
            type Output = Self;
            /// Complements all 64 bits, so `a & !b` clears exactly the bits
            /// of `b` and keeps unknown bits of `a`.
            fn not(self) -> Self {
                Self(!self.0)
            }
        }

        impl ::core::iter::FromIterator<$name> for $name {
            fn from_iter<I: IntoIterator<Item = $name>>(iter: I) -> Self {
                iter.into_iter().fold(Self::empty(), |acc, bit| acc | bit)
            }
        }

        impl ::core::fmt::Debug for $name {
            /// Lists the names of the set bits, then any unknown bits in hex,
            /// e.g. `Name(A | B | 0x10000)`; `Name(empty)` when nothing is set.
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.write_str(concat!(stringify!($name), "("))?;
                if self.is_empty() {
                    f.write_str("empty")?;
                }
                let mut first = true;
                for name in self.names() {
                    if !first {
                        f.write_str(" | ")?;
                    }
                    f.write_str(name)?;
                    first = false;
                }
                let unknown = self.unknown_bits();
                if unknown != 0 {
                    if !first {
                        f.write_str(" | ")?;
                    }
                    write!(f, "{unknown:#x}")?;
                }
                f.write_str(")")
            }
        }

        // Every named bit must match the protobuf enum value of the same
        // meaning; checked at compile time.
        const _: () = {
            $(
                assert!($value == <$proto>::$variant as i32 as u64);
            )+
        };
    };
}

pub(crate) use bit_set;
