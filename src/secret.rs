//! Secret newtypes (spec §1.4 "Secret handling").
//!
//! This module owns how secret bytes are held in memory. Every secret in the
//! crate is one of these types or contains one:
//!
//! - the bytes live in a `Box<[u8; N]>`, so moving the owner never leaves a
//!   stale copy on the stack, and are zeroized on drop (`ZeroizeOnDrop`);
//! - `Debug` prints the type name only;
//! - equality is constant-time (`subtle`);
//! - there is no `Clone`: a secret that must exist twice is copied explicitly
//!   with a `pub(crate)` function whose call site says why;
//! - a growable buffer that may hold a secret grows only through
//!   [`reserve_wiping`] (and [`extend_wiping`], [`resize_wiping`]): a `Vec`
//!   that reallocates itself hands its old block to the allocator unwiped.
#![deny(clippy::integer_division_remainder_used)]

use alloc::boxed::Box;
use core::fmt;
use rand_core::CryptoRng;
use subtle::{Choice, ConstantTimeEq};
use zeroize::{Zeroize, ZeroizeOnDrop};

macro_rules! secret_bytes {
    ($(#[$meta:meta])* $name:ident, $len:expr) => {
        $(#[$meta])*
        #[derive(Zeroize, ZeroizeOnDrop)]
        pub struct $name(Box<[u8; $len]>);

        impl $name {
            /// Length of the secret in bytes.
            pub const LEN: usize = $len;

            /// Takes ownership of `bytes` and zeroizes the caller's copy.
            #[allow(dead_code)]
            pub(crate) fn from_mut_array(bytes: &mut [u8; $len]) -> Self {
                let mut inner = Box::new([0u8; $len]);
                inner.copy_from_slice(bytes);
                bytes.zeroize();
                Self(inner)
            }

            /// Copies `bytes` (which the caller zeroizes or does not own).
            #[allow(dead_code)]
            pub(crate) fn from_slice_array(bytes: &[u8; $len]) -> Self {
                let mut inner = Box::new([0u8; $len]);
                inner.copy_from_slice(bytes);
                Self(inner)
            }

            /// Fresh uniformly random secret from the injected RNG.
            #[allow(dead_code)]
            pub(crate) fn random<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
                let mut inner = Box::new([0u8; $len]);
                rng.fill_bytes(inner.as_mut_slice());
                Self(inner)
            }

            /// The secret bytes. Only for feeding a primitive.
            #[allow(dead_code)]
            pub(crate) fn expose(&self) -> &[u8; $len] {
                &self.0
            }

            /// An explicit copy. Each caller documents why two copies must exist.
            #[allow(dead_code)]
            pub(crate) fn duplicate(&self) -> Self {
                Self::from_slice_array(&self.0)
            }

            /// The secret bytes, for producing and checking published test vectors.
            #[cfg(feature = "hazmat-test-vectors")]
            pub fn hazmat_bytes(&self) -> &[u8; $len] {
                &self.0
            }

            /// Builds the secret from raw bytes, for replaying published test vectors.
            #[cfg(feature = "hazmat-test-vectors")]
            pub fn hazmat_from_bytes(bytes: [u8; $len]) -> Self {
                let mut bytes = bytes;
                Self::from_mut_array(&mut bytes)
            }
        }

        impl ConstantTimeEq for $name {
            fn ct_eq(&self, other: &Self) -> Choice {
                self.0.as_slice().ct_eq(other.0.as_slice())
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                self.ct_eq(other).into()
            }
        }

        impl Eq for $name {}

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "(<redacted>)"))
            }
        }
    };
}

secret_bytes!(
    /// An X25519 private key (32 bytes, clamped when used).
    X25519Secret,
    32
);
secret_bytes!(
    /// An Ed25519 private key seed (RFC 8032, 32 bytes).
    Ed25519Seed,
    32
);
secret_bytes!(
    /// An ML-KEM-768 decapsulation key in seed form `d || z` (FIPS 203 §7.1, 64 bytes).
    MlKemSeed,
    64
);
secret_bytes!(
    /// An X-Wing decapsulation key in seed form (draft-connolly-cfrg-xwing-kem-06, 32 bytes).
    XWingSeed,
    32
);
secret_bytes!(
    /// A 32-byte shared secret output by X25519, ML-KEM or X-Wing.
    SharedSecret,
    32
);
secret_bytes!(
    /// The ratchet's root key (spec §5.5).
    RootKey,
    32
);
secret_bytes!(
    /// A symmetric-ratchet chain key (spec §5.5).
    ChainKey,
    32
);
secret_bytes!(
    /// A header-encryption key (spec §5.5).
    HeaderKey,
    32
);
secret_bytes!(
    /// A single-use message key (spec §5.5).
    MessageKey,
    32
);
secret_bytes!(
    /// The key that seals one message body, `AK`, derived from the message
    /// key and the message's nonce (spec §7.3).
    BodyKey,
    32
);

secret_bytes!(
    /// The 32-byte randomness `m` of an ML-KEM encapsulation, kept so the
    /// ciphertext can be recomputed instead of stored (spec §7.10).
    KemCoins,
    32
);

secret_bytes!(
    /// A client's key for encrypting stored sessions (spec §7.10).
    StorageKey,
    32
);

impl StorageKey {
    /// Wraps 32 bytes the client keeps (for example in the platform keystore).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        let mut b = bytes;
        Self::from_mut_array(&mut b)
    }

    /// A fresh random storage key.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        Self::random(rng)
    }
}

secret_bytes!(
    /// A Session recovery seed: the 16 random bytes behind a 13-word recovery phrase.
    RecoverySeed,
    16
);
secret_bytes!(
    /// A Session v2 account-key seed `s` (32 bytes), shared by an account's devices and rotated.
    AccountKeySeed,
    32
);
secret_bytes!(
    /// A Session v2 per-device key seed (32 bytes); never derivable from account secrets.
    DeviceKeySeed,
    32
);
secret_bytes!(
    /// A 32-byte symmetric key (XChaCha20 / XChaCha20-Poly1305).
    SymmetricKey,
    32
);
secret_bytes!(
    /// The 32-byte initial material of a Session v2 → ratchet upgrade (spec §9.11).
    UpgradeMaterial,
    32
);

/// Makes room in `buf` for `extra` more bytes without leaving a copy of its
/// contents in freed memory (spec §1.4): if it must grow, the bytes move to
/// a new block (at least twice the old capacity, so appends stay amortised
/// O(1)) and the old block is wiped before it is freed.
pub(crate) fn reserve_wiping(buf: &mut alloc::vec::Vec<u8>, extra: usize) {
    let need = buf.len().saturating_add(extra);
    if need <= buf.capacity() {
        return;
    }
    let mut next = alloc::vec::Vec::with_capacity(need.max(buf.capacity().saturating_mul(2)));
    next.extend_from_slice(buf);
    // `Vec::zeroize` wipes the whole capacity; the old block is then freed.
    buf.zeroize();
    *buf = next;
}

/// `buf.extend_from_slice(data)`, growing as [`reserve_wiping`] does.
pub(crate) fn extend_wiping(buf: &mut alloc::vec::Vec<u8>, data: &[u8]) {
    reserve_wiping(buf, data.len());
    buf.extend_from_slice(data);
}

/// `buf.resize(len, value)`, growing as [`reserve_wiping`] does.
pub(crate) fn resize_wiping(buf: &mut alloc::vec::Vec<u8>, len: usize, value: u8) {
    reserve_wiping(buf, len.saturating_sub(buf.len()));
    buf.resize(len, value);
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;

    #[test]
    fn debug_prints_no_secret() {
        let s = RootKey::from_slice_array(&[0xAB; 32]);
        let d = format!("{s:?}");
        assert_eq!(d, "RootKey(<redacted>)");
        assert!(!d.contains("ab") && !d.contains("171"));
    }

    #[test]
    fn equality_compares_all_bytes() {
        let a = ChainKey::from_slice_array(&[1; 32]);
        let mut other = [1u8; 32];
        assert_eq!(a, ChainKey::from_slice_array(&other));
        other[31] = 2;
        assert_ne!(a, ChainKey::from_slice_array(&other));
        other[31] = 1;
        other[0] = 0;
        assert_ne!(a, ChainKey::from_slice_array(&other));
    }

    #[test]
    fn from_mut_array_zeroizes_the_source() {
        let mut src = [7u8; 64];
        let s = MlKemSeed::from_mut_array(&mut src);
        assert_eq!(src, [0u8; 64]);
        assert_eq!(s.expose(), &[7u8; 64]);
    }
}
