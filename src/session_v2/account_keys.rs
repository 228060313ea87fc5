//! Account and device key pairs, the signed account-key record, the sender's
//! cache states, rotation timing and retention (spec §9.7; facts §2).
//!
//! This module owns:
//! - the SHAKE256 expansions `SHAKE256("SessionAccountKeys" ‖ s)` and
//!   `SHAKE256("SessionDeviceKeys" ‖ s)` into an X25519 secret (32 bytes) then
//!   an ML-KEM-768 seed `d ‖ z` (64 bytes);
//! - the account-key record `{"M": 1184 B, "X": 32 B, "~": 64 B}` published in
//!   namespace −21, signed with the positive-alternative signature over the
//!   encoded dict up to `"~"`;
//! - the sender-side cache state of a fetched record (fresh / stale / expired,
//!   and the one-hour negative "NAK" entry), as pure functions of timestamps;
//! - the rotation time `t_prev + 12 h + ε`, and the 16-day retention of
//!   rotated-away seeds, as pure functions.
#![deny(clippy::integer_division_remainder_used)]

use super::bencode::{self, BencodeError, Limits, Value};
use super::identity::{Identity, SessionId};
use super::primitives::{blake2b_8, shake256_squeeze};
use super::xeddsa;
use crate::dh::X25519PublicKey;
use crate::kem::{MlKemKeyPair, MlKemPublicKey};
use crate::secret::{AccountKeySeed, DeviceKeySeed, MlKemSeed, X25519Secret};
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::fmt;
use rand_core::CryptoRng;

/// SHAKE256 domain prefix of the account-key expansion.
pub const ACCOUNT_KEYS_DOMAIN: &[u8] = b"SessionAccountKeys";
/// SHAKE256 domain prefix of the device-key expansion.
pub const DEVICE_KEYS_DOMAIN: &[u8] = b"SessionDeviceKeys";
/// BLAKE2b personalisation of the rotation jitter `u`.
pub const ROTATION_PERS: &[u8; 16] = b"SessionAccKeyRot";

/// One hour in seconds.
pub const HOUR: i64 = 3600;
/// One day in seconds.
pub const DAY: i64 = 24 * HOUR;
/// A cached record younger than this is fresh.
pub const CACHE_FRESH_SECS: i64 = 24 * HOUR;
/// A cached record older than this is expired (between the two: stale).
pub const CACHE_EXPIRED_SECS: i64 = 48 * HOUR;
/// How long a "no keys published" result (NAK) suppresses refetching.
pub const NAK_SECS: i64 = HOUR;
/// Base rotation period (12 h); the jitter ε adds −1 h … +1 h.
pub const ROTATION_PERIOD_SECS: i64 = 12 * HOUR;
/// How long a rotated-away account seed is kept: 14-day message TTL + 24 h
/// cache lag + 24 h margin.
pub const ACCOUNT_KEY_RETENTION_SECS: i64 = 16 * DAY;
/// TTL of the published record in namespace −21 (30 days).
pub const RECORD_TTL_SECS: i64 = 30 * DAY;
/// Maximum accepted size of an encoded account-key record.
pub const MAX_RECORD_LEN: usize = 4096;

/// An X25519 + ML-KEM-768 key pair expanded from a 32-byte seed.
pub struct KeyPair {
    x25519_secret: X25519Secret,
    x25519_public: X25519PublicKey,
    mlkem: MlKemKeyPair,
}

impl KeyPair {
    fn expand(domain: &[u8], seed: &[u8; 32]) -> Self {
        let mut x = [0u8; 32];
        let mut m = [0u8; 64];
        shake256_squeeze(domain, seed, &mut [&mut x, &mut m]);
        let x25519_secret = X25519Secret::from_mut_array(&mut x);
        let mlkem = MlKemKeyPair::from_seed(MlKemSeed::from_mut_array(&mut m));
        let x25519_public = x25519_secret.public_key();
        Self {
            x25519_secret,
            x25519_public,
            mlkem,
        }
    }

    /// The X25519 public key.
    pub fn x25519_public(&self) -> &X25519PublicKey {
        &self.x25519_public
    }

    /// The ML-KEM-768 encapsulation key.
    pub fn mlkem_public(&self) -> &MlKemPublicKey {
        self.mlkem.public_key()
    }

    /// Both public keys.
    pub fn public_keys(&self) -> PublicKeys {
        PublicKeys {
            mlkem: self.mlkem.public_key().clone(),
            x25519: self.x25519_public,
        }
    }

    pub(crate) fn x25519_secret(&self) -> &X25519Secret {
        &self.x25519_secret
    }

    pub(crate) fn mlkem(&self) -> &MlKemKeyPair {
        &self.mlkem
    }
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPair")
            .field("x25519", &self.x25519_public)
            .field("mlkem", self.mlkem.public_key())
            .finish_non_exhaustive()
    }
}

/// The key pair of an account-key seed: `SHAKE256("SessionAccountKeys" ‖ s)`.
///
/// ```
/// use session_ratchet::secret::AccountKeySeed;
/// use session_ratchet::session_v2::account_keys::account_key_pair;
/// let keys = account_key_pair(&AccountKeySeed::from_bytes([9; 32]));
/// assert_eq!(keys.mlkem_public().as_bytes().len(), 1184);
/// ```
pub fn account_key_pair(seed: &AccountKeySeed) -> KeyPair {
    KeyPair::expand(ACCOUNT_KEYS_DOMAIN, seed.expose())
}

/// The key pair of a device-key seed: `SHAKE256("SessionDeviceKeys" ‖ s)`.
pub fn device_key_pair(seed: &DeviceKeySeed) -> KeyPair {
    KeyPair::expand(DEVICE_KEYS_DOMAIN, seed.expose())
}

/// Published account (or device) public keys: ML-KEM-768 `M` and X25519 `X`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PublicKeys {
    /// `M`: the ML-KEM-768 encapsulation key (validated per FIPS 203).
    pub mlkem: MlKemPublicKey,
    /// `X`: the X25519 public key.
    pub x25519: X25519PublicKey,
}

/// Why an account-key record was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordError {
    /// The record is larger than [`MAX_RECORD_LEN`].
    TooLarge {
        /// Its size.
        len: usize,
    },
    /// Not a strict, canonical bencoded dict.
    Bencode(BencodeError),
    /// A required key (`"M"`, `"X"` or `"~"`) is missing.
    MissingField(&'static str),
    /// A field has the wrong type or length.
    BadField(&'static str),
    /// `M` fails the FIPS 203 encapsulation-key check.
    InvalidMlKemKey,
    /// The signature does not verify against the Session ID.
    BadSignature,
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge { len } => {
                write!(
                    f,
                    "account-key record is {len} bytes, above {MAX_RECORD_LEN}"
                )
            }
            Self::Bencode(e) => write!(f, "account-key record is not valid bencode: {e}"),
            Self::MissingField(k) => write!(f, "account-key record lacks the \"{k}\" field"),
            Self::BadField(k) => write!(
                f,
                "account-key record field \"{k}\" has the wrong type or size"
            ),
            Self::InvalidMlKemKey => f.write_str(
                "account-key record's ML-KEM key fails the FIPS 203 check; treat as no keys",
            ),
            Self::BadSignature => f.write_str(
                "account-key record signature does not verify for this Session ID; discard it",
            ),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for RecordError {}

impl From<BencodeError> for RecordError {
    fn from(e: BencodeError) -> Self {
        Self::Bencode(e)
    }
}

/// Encodes and signs the account-key record for `keys`.
///
/// ```
/// use session_ratchet::secret::AccountKeySeed;
/// use session_ratchet::session_v2::{account_keys::*, identity::Identity};
/// # use rand_chacha::{ChaCha20Rng, rand_core::SeedableRng};
/// let mut rng = ChaCha20Rng::from_seed([2; 32]);
/// let me = Identity::from_seed_bytes(&[1u8; 16]).unwrap();
/// let keys = account_key_pair(&AccountKeySeed::from_bytes([3; 32])).public_keys();
/// let record = encode_record(&mut rng, &me, &keys);
/// assert_eq!(verify_record(&me.session_id(), &record)?, keys);
/// # Ok::<(), RecordError>(())
/// ```
pub fn encode_record<R: CryptoRng + ?Sized>(
    rng: &mut R,
    identity: &Identity,
    keys: &PublicKeys,
) -> Vec<u8> {
    let mut d = BTreeMap::new();
    d.insert(b"M".to_vec(), Value::Bytes(keys.mlkem.as_bytes().to_vec()));
    d.insert(b"X".to_vec(), Value::Bytes(keys.x25519.as_bytes().to_vec()));
    let mut out = bencode::dict_body(&d);
    let sig = xeddsa::sign(rng, identity, &out);
    bencode::write_bytes(b"~", &mut out);
    bencode::write_bytes(&sig, &mut out);
    out.push(b'e');
    out
}

/// Parses an account-key record and verifies its signature against the
/// owner's Session ID. Keys other than `M`, `X`, `~` are ignored (those before
/// `~` are covered by the signature).
pub fn verify_record(owner: &SessionId, record: &[u8]) -> Result<PublicKeys, RecordError> {
    if record.len() > MAX_RECORD_LEN {
        return Err(RecordError::TooLarge { len: record.len() });
    }
    let entries = bencode::decode_dict_entries(
        record,
        Limits {
            max_depth: 8,
            max_len: MAX_RECORD_LEN,
        },
    )?;
    let find = |k: &'static str| {
        entries
            .iter()
            .find(|e| e.key == k.as_bytes())
            .ok_or(RecordError::MissingField(k))
    };
    let m = find("M")?;
    let x = find("X")?;
    let sig = find("~")?;
    let m_bytes = m.value.as_bytes().ok_or(RecordError::BadField("M"))?;
    let x_bytes: [u8; 32] = x
        .value
        .as_bytes()
        .and_then(|b| b.try_into().ok())
        .ok_or(RecordError::BadField("X"))?;
    let sig_bytes: [u8; 64] = sig
        .value
        .as_bytes()
        .and_then(|b| b.try_into().ok())
        .ok_or(RecordError::BadField("~"))?;
    if m_bytes.len() != crate::kem::MLKEM_PUBLIC_KEY_LEN {
        return Err(RecordError::BadField("M"));
    }
    let body = record
        .get(..sig.offset)
        .ok_or(RecordError::MissingField("~"))?;
    if !xeddsa::verify(owner, body, &sig_bytes) {
        return Err(RecordError::BadSignature);
    }
    let mlkem = MlKemPublicKey::from_bytes(m_bytes).map_err(|_| RecordError::InvalidMlKemKey)?;
    Ok(PublicKeys {
        mlkem,
        x25519: X25519PublicKey::from_bytes(x_bytes),
    })
}

/// State of a cached account-key record (facts §2 "Sender-side cache").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheState {
    /// Younger than 24 h: use it, no fetch.
    Fresh,
    /// 24 h … 48 h: use it and start a background refetch.
    Stale,
    /// Older than 48 h: do not use; fetch first, send with the non-PFS fallback meanwhile.
    Expired,
}

/// The cache state of a record fetched at `fetched_at`, at time `now` (unix
/// seconds). A fetch time in the future (clock skew) counts as age 0.
///
/// ```
/// use session_ratchet::session_v2::account_keys::{cache_state, CacheState, HOUR};
/// assert_eq!(cache_state(0, 23 * HOUR), CacheState::Fresh);
/// assert_eq!(cache_state(0, 24 * HOUR), CacheState::Stale);
/// assert_eq!(cache_state(0, 48 * HOUR), CacheState::Stale);
/// assert_eq!(cache_state(0, 48 * HOUR + 1), CacheState::Expired);
/// ```
pub fn cache_state(fetched_at: i64, now: i64) -> CacheState {
    let age = now.saturating_sub(fetched_at).max(0);
    if age < CACHE_FRESH_SECS {
        CacheState::Fresh
    } else if age <= CACHE_EXPIRED_SECS {
        CacheState::Stale
    } else {
        CacheState::Expired
    }
}

/// Whether a negative result ("no keys published", NAK) recorded at
/// `recorded_at` still suppresses fetching at `now` (for 1 h).
pub fn nak_suppresses_fetch(recorded_at: i64, now: i64) -> bool {
    now.saturating_sub(recorded_at).max(0) < NAK_SECS
}

/// `u = LE64(BLAKE2b-8(device_id, key = current_seed, pers = "SessionAccKeyRot")) / 2^64`.
pub fn rotation_u(device_id: &[u8; 32], current_seed: &AccountKeySeed) -> f64 {
    let h = blake2b_8(Some(current_seed.expose()), ROTATION_PERS, &[device_id]);
    // u64 → f64 rounds to nearest (as the C++ conversion does); 2^-64 is exact.
    (u64::from_le_bytes(h) as f64) * (1.0 / 18_446_744_073_709_551_616.0)
}

/// `u^n` by square-and-multiply (no `std` needed).
fn powi(u: f64, mut n: u32) -> f64 {
    let mut base = u;
    let mut acc = 1.0;
    while n > 0 {
        if n & 1 == 1 {
            acc *= base;
        }
        base *= base;
        n >>= 1;
    }
    acc
}

/// When this device should rotate the account key (unix seconds):
/// `t_prev + 12 h + ε`, `ε = −1 h + 2 h·(1 − u^N)`, `N = device_count`
/// (at least 1), ε truncated to whole seconds (towards −1 h).
///
/// ```
/// use session_ratchet::secret::AccountKeySeed;
/// use session_ratchet::session_v2::account_keys::{rotation_time, HOUR};
/// let t = rotation_time(1_000_000, &[1; 32], &AccountKeySeed::from_bytes([2; 32]), 3);
/// assert!((1_000_000 + 11 * HOUR..=1_000_000 + 13 * HOUR).contains(&t));
/// ```
pub fn rotation_time(
    created_at: i64,
    device_id: &[u8; 32],
    current_seed: &AccountKeySeed,
    device_count: u32,
) -> i64 {
    let u = rotation_u(device_id, current_seed);
    let jitter = 2.0 * (HOUR as f64) * (1.0 - powi(u, device_count.max(1)));
    // jitter ∈ [0, 7200]: the cast truncates towards zero, i.e. floors.
    let jitter = jitter.clamp(0.0, 2.0 * HOUR as f64) as i64;
    created_at
        .saturating_add(ROTATION_PERIOD_SECS - HOUR)
        .saturating_add(jitter)
}

/// Whether an account seed rotated away at `rotated_at` (`None` = still
/// current) must still be kept at `now`: kept while `now − rotated_at ≤ 16 days`.
pub fn is_retained(rotated_at: Option<i64>, now: i64) -> bool {
    match rotated_at {
        None => true,
        Some(t) => now.saturating_sub(t) <= ACCOUNT_KEY_RETENTION_SECS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn powi_matches_multiplication() {
        assert_eq!(powi(0.5, 0), 1.0);
        assert_eq!(powi(0.5, 3), 0.125);
        assert_eq!(powi(0.9, 2), 0.9 * 0.9);
    }

    #[test]
    fn retention_and_nak() {
        assert!(is_retained(None, i64::MAX));
        assert!(is_retained(Some(0), 16 * DAY));
        assert!(!is_retained(Some(0), 16 * DAY + 1));
        assert!(nak_suppresses_fetch(0, HOUR - 1));
        assert!(!nak_suppresses_fetch(0, HOUR));
        assert_eq!(cache_state(100, 0), CacheState::Fresh);
    }
}
