//! Session identities and Session IDs (spec §9.5; facts §1 "Identity").
//!
//! This module owns the long-term Session identity: the Ed25519 key pair from
//! the 16-byte recovery seed (`seed || 16 zero bytes`) or a 32-byte seed, the
//! X25519 key pair derived from it exactly as libsodium's
//! `crypto_sign_ed25519_sk_to_curve25519` / `crypto_sign_ed25519_pk_to_curve25519`
//! do, and the Session ID `0x05 || X25519 public key` with its strict parser.
#![deny(clippy::integer_division_remainder_used)]

use crate::dh::X25519PublicKey;
use crate::secret::{AccountKeySeed, DeviceKeySeed, Ed25519Seed, RecoverySeed, X25519Secret};
use core::fmt;
use ed25519_dalek::{Signer, SigningKey};
use rand_core::CryptoRng;
use sha2::{Digest, Sha512};
use zeroize::Zeroize;

// Session IDs and the Ed25519 → X25519 map are shared with the account layer
// (spec §8.1), which works without this feature; they live in `crate::account`.
pub use crate::account::{
    SESSION_ID_HEX_LEN, SESSION_ID_LEN, SESSION_ID_PREFIX, SessionId, SessionIdError,
    ed25519_pk_to_x25519,
};

/// Builds a recovery seed from its 16 bytes (e.g. loaded from storage).
pub fn recovery_seed_from_bytes(bytes: [u8; 16]) -> RecoverySeed {
    let mut bytes = bytes;
    RecoverySeed::from_mut_array(&mut bytes)
}

impl AccountKeySeed {
    /// Builds an account-key seed from its 32 bytes; the argument copy is zeroized.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        let mut bytes = bytes;
        Self::from_mut_array(&mut bytes)
    }

    /// A fresh random account-key seed (a rotation).
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        Self::random(rng)
    }
}

impl DeviceKeySeed {
    /// Builds a device-key seed from its 32 bytes; the argument copy is zeroized.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        let mut bytes = bytes;
        Self::from_mut_array(&mut bytes)
    }

    /// A fresh random device-key seed.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        Self::random(rng)
    }
}

/// libsodium `crypto_sign_ed25519_sk_to_curve25519`: the clamped first half of
/// `SHA-512(seed)`.
pub(crate) fn ed25519_seed_to_x25519_secret(seed: &Ed25519Seed) -> X25519Secret {
    let mut h = Sha512::digest(seed.expose());
    let mut x = [0u8; 32];
    if let Some(first) = h.first_chunk::<32>() {
        x.copy_from_slice(first);
    }
    h.as_mut_slice().zeroize();
    x[0] &= 248;
    x[31] &= 127;
    x[31] |= 64;
    X25519Secret::from_mut_array(&mut x)
}

/// A Session account's long-term identity: Ed25519 and the derived X25519 key pair.
pub struct Identity {
    seed: Ed25519Seed,
    ed25519_public: [u8; 32],
    x25519_secret: X25519Secret,
    x25519_public: X25519PublicKey,
}

impl Identity {
    /// The identity of a 16-byte recovery seed (Ed25519 seed = seed || 16 zero bytes).
    ///
    /// ```
    /// use session_ratchet::session_v2::identity::{Identity, recovery_seed_from_bytes};
    /// let id = Identity::from_recovery_seed(&recovery_seed_from_bytes([0x11; 16]));
    /// let sid = id.session_id().to_string();
    /// assert_eq!(sid.len(), 66);
    /// assert!(sid.starts_with("05"));
    /// ```
    pub fn from_recovery_seed(seed: &RecoverySeed) -> Self {
        Self::from_ed25519_seed(seed.to_ed25519_seed())
    }

    /// The identity of a 32-byte Ed25519 seed.
    pub fn from_ed25519_seed(seed: Ed25519Seed) -> Self {
        let signing = SigningKey::from_bytes(seed.expose());
        let ed25519_public = signing.verifying_key().to_bytes();
        let x25519_secret = ed25519_seed_to_x25519_secret(&seed);
        // The birational map of our own (valid, prime-order) key always succeeds;
        // the fallback computes the same value from the secret.
        let x25519_public =
            ed25519_pk_to_x25519(&ed25519_public).unwrap_or_else(|| x25519_secret.public_key());
        Self {
            seed,
            ed25519_public,
            x25519_secret,
            x25519_public,
        }
    }

    /// The identity of a 16-byte recovery seed or a 32-byte Ed25519 seed;
    /// `None` for any other length.
    pub fn from_seed_bytes(bytes: &[u8]) -> Option<Self> {
        if let Ok(b) = <[u8; 16]>::try_from(bytes) {
            return Some(Self::from_recovery_seed(&recovery_seed_from_bytes(b)));
        }
        let b = <[u8; 32]>::try_from(bytes).ok()?;
        Some(Self::from_ed25519_seed(Ed25519Seed::from_bytes(b)))
    }

    /// The Ed25519 public key.
    pub fn ed25519_public(&self) -> &[u8; 32] {
        &self.ed25519_public
    }

    /// The X25519 public key (birational map of the Ed25519 key).
    pub fn x25519_public(&self) -> &X25519PublicKey {
        &self.x25519_public
    }

    /// The Session ID `05 || X25519 public key`.
    pub fn session_id(&self) -> SessionId {
        SessionId::from_x25519(&self.x25519_public)
    }

    /// The X25519 secret (clamped first half of SHA-512 of the seed).
    pub(crate) fn x25519_secret(&self) -> &X25519Secret {
        &self.x25519_secret
    }

    /// The 32-byte Ed25519 seed (the account "root seed" of the facts).
    pub(crate) fn ed25519_seed(&self) -> &Ed25519Seed {
        &self.seed
    }

    /// Plain RFC 8032 Ed25519 signature with the identity key.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        SigningKey::from_bytes(self.seed.expose())
            .sign(message)
            .to_bytes()
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("session_id", &self.session_id())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::{String, ToString};

    #[test]
    fn session_id_parse_errors() {
        assert_eq!(
            SessionId::from_hex(""),
            Err(SessionIdError::WrongLength { got: 0 })
        );
        let mut s = String::from("05");
        s.push_str(&"0".repeat(63));
        s.push('g');
        assert_eq!(
            SessionId::from_hex(&s),
            Err(SessionIdError::BadHex { position: 65 })
        );
        let s = "15".to_string() + &"00".repeat(32);
        assert_eq!(
            SessionId::from_hex(&s),
            Err(SessionIdError::WrongPrefix { prefix: 0x15 })
        );
        assert_eq!(
            SessionId::from_bytes(&[5; 32]),
            Err(SessionIdError::WrongLength { got: 32 })
        );
        let upper = "05".to_string() + &"AB".repeat(32);
        assert_eq!(
            SessionId::from_hex(&upper).unwrap().to_hex(),
            upper.to_lowercase()
        );
    }

    #[test]
    fn x25519_public_matches_secret() {
        for b in [0u8, 1, 0x42, 0xff] {
            let id = Identity::from_recovery_seed(&recovery_seed_from_bytes([b; 16]));
            assert_eq!(id.x25519_secret().public_key(), *id.x25519_public());
        }
    }
}
