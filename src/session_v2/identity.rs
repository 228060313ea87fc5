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
use alloc::string::String;
use core::fmt;
use curve25519_dalek::edwards::CompressedEdwardsY;
use ed25519_dalek::{Signer, SigningKey};
use rand_core::CryptoRng;
use sha2::{Digest, Sha512};
use zeroize::{Zeroize, Zeroizing};

/// The Session ID prefix byte of a standard (non-group, unblinded) account.
pub const SESSION_ID_PREFIX: u8 = 0x05;
/// Length of a Session ID in bytes.
pub const SESSION_ID_LEN: usize = 33;
/// Length of a Session ID in hex characters.
pub const SESSION_ID_HEX_LEN: usize = 66;

/// Builds a recovery seed from its 16 bytes (e.g. loaded from storage).
pub fn recovery_seed_from_bytes(bytes: [u8; 16]) -> RecoverySeed {
    let mut bytes = bytes;
    RecoverySeed::from_mut_array(&mut bytes)
}

impl RecoverySeed {
    /// Builds a recovery seed from its 16 bytes; the argument copy is zeroized.
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        recovery_seed_from_bytes(bytes)
    }

    /// A fresh random recovery seed (a new account).
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        Self::random(rng)
    }

    /// A copy of the 16 bytes for persisting or exporting the seed; the copy
    /// is zeroized when dropped.
    pub fn export(&self) -> Zeroizing<[u8; 16]> {
        Zeroizing::new(*self.expose())
    }

    /// The 32-byte Ed25519 seed of this account: the 16 bytes then 16 zero bytes.
    pub fn to_ed25519_seed(&self) -> Ed25519Seed {
        let mut full = [0u8; 32];
        if let Some(head) = full.first_chunk_mut::<16>() {
            head.copy_from_slice(self.expose());
        }
        Ed25519Seed::from_mut_array(&mut full)
    }
}

impl Ed25519Seed {
    /// Builds a 32-byte Ed25519 seed; the argument copy is zeroized.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        let mut bytes = bytes;
        Self::from_mut_array(&mut bytes)
    }

    /// A copy of the 32 bytes for persisting or exporting the seed; the copy
    /// is zeroized when dropped.
    pub fn export(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(*self.expose())
    }
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

/// Why a Session ID string or byte string was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionIdError {
    /// Not 66 hex characters (33 bytes).
    WrongLength {
        /// Characters (or bytes, for byte input) received.
        got: usize,
    },
    /// A character that is not a hex digit.
    BadHex {
        /// 0-based character position.
        position: usize,
    },
    /// The first byte is not `05`. `03` is a closed group, `15`/`25` a
    /// blinded community ID: none of them is an account's Session ID.
    WrongPrefix {
        /// The prefix byte found.
        prefix: u8,
    },
}

impl fmt::Display for SessionIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::WrongLength { got } => write!(
                f,
                "a Session ID is {SESSION_ID_HEX_LEN} hex characters ({SESSION_ID_LEN} bytes), got {got}"
            ),
            Self::BadHex { position } => {
                write!(
                    f,
                    "character {position} of the Session ID is not a hex digit"
                )
            }
            Self::WrongPrefix { prefix } => write!(
                f,
                "a Session ID starts with 05, got {prefix:02x} (03 = group, 15/25 = blinded ID)"
            ),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for SessionIdError {}

/// A Session ID: `0x05 || X25519 public key` (33 bytes). Public data.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionId([u8; SESSION_ID_LEN]);

impl SessionId {
    /// The Session ID of an X25519 public key.
    pub fn from_x25519(key: &X25519PublicKey) -> Self {
        let mut b = [0u8; SESSION_ID_LEN];
        b[0] = SESSION_ID_PREFIX;
        if let Some(tail) = b.last_chunk_mut::<32>() {
            tail.copy_from_slice(key.as_bytes());
        }
        Self(b)
    }

    /// Parses 33 bytes; the first must be `0x05`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SessionIdError> {
        let b: [u8; SESSION_ID_LEN] = bytes
            .try_into()
            .map_err(|_| SessionIdError::WrongLength { got: bytes.len() })?;
        if b[0] != SESSION_ID_PREFIX {
            return Err(SessionIdError::WrongPrefix { prefix: b[0] });
        }
        Ok(Self(b))
    }

    /// Parses 66 hex characters (either case), e.g. `05` followed by 64 more.
    ///
    /// ```
    /// use session_ratchet::session_v2::identity::{SessionId, SessionIdError};
    /// let id = "05".to_string() + &"ab".repeat(32);
    /// assert_eq!(SessionId::from_hex(&id)?.to_string(), id);
    /// assert_eq!(SessionId::from_hex("05ab"), Err(SessionIdError::WrongLength { got: 4 }));
    /// let group = "03".to_string() + &"ab".repeat(32);
    /// assert_eq!(SessionId::from_hex(&group), Err(SessionIdError::WrongPrefix { prefix: 3 }));
    /// # Ok::<(), SessionIdError>(())
    /// ```
    pub fn from_hex(s: &str) -> Result<Self, SessionIdError> {
        let chars = s.as_bytes();
        if chars.len() != SESSION_ID_HEX_LEN {
            return Err(SessionIdError::WrongLength {
                got: s.chars().count(),
            });
        }
        let mut b = [0u8; SESSION_ID_LEN];
        for (i, (out, pair)) in b.iter_mut().zip(chars.chunks_exact(2)).enumerate() {
            let &[hi, lo] = pair else {
                return Err(SessionIdError::WrongLength { got: chars.len() });
            };
            let hi = hex_val(hi).ok_or(SessionIdError::BadHex { position: 2 * i })?;
            let lo = hex_val(lo).ok_or(SessionIdError::BadHex {
                position: 2 * i + 1,
            })?;
            *out = (hi << 4) | lo;
        }
        Self::from_bytes(&b)
    }

    /// The 33 bytes.
    pub fn as_bytes(&self) -> &[u8; SESSION_ID_LEN] {
        &self.0
    }

    /// The X25519 public key (the ID without its prefix).
    pub fn x25519(&self) -> X25519PublicKey {
        let mut k = [0u8; 32];
        if let Some(tail) = self.0.last_chunk::<32>() {
            k.copy_from_slice(tail);
        }
        X25519PublicKey::from_bytes(k)
    }

    /// 66 lowercase hex characters.
    pub fn to_hex(&self) -> String {
        to_hex(&self.0)
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({self})")
    }
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Lowercase hex of `bytes`.
pub(crate) fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        for nibble in [b >> 4, b & 0x0f] {
            if let Some(&d) = DIGITS.get(usize::from(nibble)) {
                s.push(char::from(d));
            }
        }
    }
    s
}

/// libsodium `crypto_sign_ed25519_pk_to_curve25519`: the birational map of an
/// Ed25519 public key to its X25519 public key. `None` (libsodium: −1) for an
/// undecodable point, a small-order point, or one outside the prime-order subgroup.
pub fn ed25519_pk_to_x25519(ed25519_public: &[u8; 32]) -> Option<X25519PublicKey> {
    let point = CompressedEdwardsY(*ed25519_public).decompress()?;
    if point.is_small_order() || !point.is_torsion_free() {
        return None;
    }
    Some(X25519PublicKey::from_bytes(
        point.to_montgomery().to_bytes(),
    ))
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
    use alloc::string::ToString;

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
