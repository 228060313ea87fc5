//! Accounts and Session IDs (spec §8.1).
//!
//! This module owns what identifies an **account** across all its devices:
//!
//! - the account's Ed25519 key ([`AccountIdentity`]) from a 32-byte seed.
//!   Session accounts use their 16-byte recovery seed followed by 16 zero
//!   bytes, so an account restored from its recovery phrase has the same key;
//! - its **Session ID**, `0x05 ‖ X25519 public key`, where the X25519 key is
//!   the birational (Edwards → Montgomery) map of the Ed25519 key, exactly as
//!   libsodium's `crypto_sign_ed25519_pk_to_curve25519` computes it.
//!
//! The account key signs the account's device list ([`crate::device`]).
//! Device identities ([`crate::identity::DeviceIdentity`]) are never derived
//! from the account seed: whoever learns the recovery phrase can sign a new
//! device list, but cannot impersonate an existing device.
//!
//! This module does not need the `session-v2` feature; the Session v2 formats
//! ([`crate::session_v2`], when enabled) re-export its Session ID type.
#![deny(clippy::integer_division_remainder_used)]

use crate::dh::X25519PublicKey;
use crate::identity::{AccountIdentity, Ed25519PublicKey, SIGNATURE_LEN};
use crate::secret::{Ed25519Seed, RecoverySeed};
use alloc::string::String;
use core::fmt;
use curve25519_dalek::edwards::CompressedEdwardsY;
use rand_core::CryptoRng;
use zeroize::Zeroizing;

/// The Session ID prefix byte of a standard (non-group, unblinded) account.
pub const SESSION_ID_PREFIX: u8 = 0x05;
/// Length of a Session ID in bytes.
pub const SESSION_ID_LEN: usize = 33;
/// Length of a Session ID in hex characters.
pub const SESSION_ID_HEX_LEN: usize = 66;

impl RecoverySeed {
    /// Builds a recovery seed from its 16 bytes; the argument copy is zeroized.
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        let mut bytes = bytes;
        Self::from_mut_array(&mut bytes)
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

/// An account: its Ed25519 identity and the Session ID derived from it.
///
/// ```
/// use session_ratchet::account::{Account, SessionId};
/// use session_ratchet::secret::RecoverySeed;
/// let account = Account::from_recovery_seed(&RecoverySeed::from_bytes([0x11; 16]));
/// let id = account.session_id();
/// assert!(id.to_hex().starts_with("05"));
/// // A contact who knows only the Session ID can check an account key.
/// assert!(id.matches_account_key(&account.public_key()));
/// assert_eq!(SessionId::from_account_key(&account.public_key()), Some(id));
/// ```
pub struct Account {
    identity: AccountIdentity,
    session_id: SessionId,
}

impl Account {
    /// The account of a 16-byte Session recovery seed (Ed25519 seed
    /// `seed ‖ 0^16`, spec §8.1).
    pub fn from_recovery_seed(seed: &RecoverySeed) -> Self {
        Self::from_seed(&seed.to_ed25519_seed())
    }

    /// The account of a 32-byte Ed25519 seed.
    pub fn from_seed(seed: &Ed25519Seed) -> Self {
        let identity = AccountIdentity::from_seed(seed);
        let public = identity.public_key();
        // Our own key is the image of a clamped scalar times the base point,
        // so it is torsion-free and the map always succeeds; the fallback
        // (never taken) keeps this total without a panic path.
        let session_id = SessionId::from_account_key(&public)
            .unwrap_or_else(|| SessionId::from_x25519(&X25519PublicKey::from_bytes([0; 32])));
        Self {
            identity,
            session_id,
        }
    }

    /// A new account with a fresh recovery seed (draws 16 bytes), returned
    /// with the seed so the client can show the recovery phrase.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> (Self, RecoverySeed) {
        let seed = RecoverySeed::random(rng);
        (Self::from_recovery_seed(&seed), seed)
    }

    /// The account's Ed25519 public key.
    pub fn public_key(&self) -> Ed25519PublicKey {
        self.identity.public_key()
    }

    /// The account's Session ID.
    pub fn session_id(&self) -> SessionId {
        self.session_id
    }

    /// The account identity (signs device certificates, spec §4.2).
    pub fn identity(&self) -> &AccountIdentity {
        &self.identity
    }

    /// Signs `message` with the account key (device lists, spec §8.2).
    pub(crate) fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        self.identity.sign(message)
    }
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("session_id", &self.session_id)
            .finish_non_exhaustive()
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
    /// use session_ratchet::account::{SessionId, SessionIdError};
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

impl SessionId {
    /// The Session ID of an account's Ed25519 key: `0x05 ‖` its birational
    /// map to X25519 (spec §8.1). `None` for a key with a torsion component,
    /// which no honestly generated account key has.
    pub fn from_account_key(key: &Ed25519PublicKey) -> Option<Self> {
        ed25519_pk_to_x25519(&key.to_bytes()).map(|x| Self::from_x25519(&x))
    }

    /// Whether `key` is the account key behind this Session ID. The map
    /// forgets the sign of the Edwards `x` coordinate, so two keys (`A` and
    /// `−A`) match each ID; only the account holder knows the secret of either.
    pub fn matches_account_key(&self, key: &Ed25519PublicKey) -> bool {
        Self::from_account_key(key).is_some_and(|id| id == *self)
    }
}

/// Object type of a stored account key (storage only, spec §10.3).
const TYPE_STORED_ACCOUNT: u8 = 0x1C;

/// The persistent form of an [`Account`] (spec §10.3):
/// `0x01 ‖ 0x1C ‖ Ed25519 seed (32)`. Whoever holds it can sign the
/// account's device lists: zeroized on drop, redacted `Debug`, no `Clone`.
///
/// ```
/// use session_ratchet::account::{Account, StoredAccount};
/// # use rand_chacha::{ChaCha20Rng, rand_core::SeedableRng};
/// let (account, _seed) = Account::generate(&mut ChaCha20Rng::from_seed([4; 32]));
/// let back = Account::from_stored(&StoredAccount::from_bytes(account.to_stored().as_bytes()))?;
/// assert_eq!(back.public_key(), account.public_key());
/// # Ok::<(), session_ratchet::wire::WireError>(())
/// ```
pub struct StoredAccount(Zeroizing<alloc::vec::Vec<u8>>);

impl fmt::Debug for StoredAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StoredAccount(<redacted>)")
    }
}

impl StoredAccount {
    /// The plain encoding. Treat it as a secret.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Wraps a plain encoding read back from storage (checked when loaded).
    pub fn from_bytes(bytes: &[u8]) -> Self {
        Self(Zeroizing::new(bytes.to_vec()))
    }
}

impl Account {
    /// The persistent form of this account key (spec §10.3).
    pub fn to_stored(&self) -> StoredAccount {
        let seed = self.identity.seed();
        let mut w = crate::wire::Writer::start(TYPE_STORED_ACCOUNT, 2 + 32);
        w.bytes(seed.expose());
        StoredAccount(Zeroizing::new(w.finish()))
    }

    /// Loads an account stored by [`Account::to_stored`].
    pub fn from_stored(stored: &StoredAccount) -> Result<Self, crate::wire::WireError> {
        let mut r = crate::wire::Reader::start(&stored.0, TYPE_STORED_ACCOUNT)?;
        let seed = Ed25519Seed::from_slice_array(&Zeroizing::new(r.array::<32>("account seed")?));
        r.finish()?;
        Ok(Self::from_seed(&seed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::DeviceIdentity;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn recovery_seed_account_is_the_zero_padded_ed25519_seed() {
        let seed = RecoverySeed::from_bytes([0x42; 16]);
        let mut full = [0u8; 32];
        full[..16].copy_from_slice(&[0x42; 16]);
        let a = Account::from_recovery_seed(&seed);
        let b = Account::from_seed(&Ed25519Seed::from_bytes(full));
        assert_eq!(a.public_key(), b.public_key());
        assert_eq!(a.session_id(), b.session_id());
        assert_eq!(a.session_id().as_bytes()[0], SESSION_ID_PREFIX);
    }

    #[test]
    fn session_id_is_the_birational_map_of_the_account_key() {
        // RFC 8032 §7.1 test 1; the X25519 value is libsodium's
        // crypto_sign_ed25519_pk_to_curve25519 of that key.
        let seed: [u8; 32] =
            hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
                .unwrap()
                .try_into()
                .unwrap();
        let account = Account::from_seed(&Ed25519Seed::from_bytes(seed));
        // u = (1 + y) / (1 − y) computed independently with the curve crate.
        let point = CompressedEdwardsY(account.public_key().to_bytes())
            .decompress()
            .unwrap();
        let mut expected = [0u8; 33];
        expected[0] = 5;
        expected[1..].copy_from_slice(&point.to_montgomery().to_bytes());
        assert_eq!(account.session_id().as_bytes(), &expected);
        let other = Account::from_seed(&Ed25519Seed::from_bytes([7; 32]));
        assert!(
            !account
                .session_id()
                .matches_account_key(&other.public_key())
        );
    }

    #[test]
    fn device_identities_are_not_derivable_from_the_account_seed() {
        // `DeviceIdentity::generate` takes only an RNG: no account input
        // exists. Restoring the same account twice and creating a device
        // each time gives two unrelated devices, and neither device key
        // equals a key derived from the seed (account Ed25519 key, Session ID
        // X25519 key), even when the device RNG is seeded with the account
        // seed itself.
        let seed = [0x33u8; 32];
        let restores = [
            Account::from_seed(&Ed25519Seed::from_bytes(seed)),
            Account::from_seed(&Ed25519Seed::from_bytes(seed)),
        ];
        assert_eq!(restores[0].public_key(), restores[1].public_key());
        let devices = [
            DeviceIdentity::generate(&mut ChaCha20Rng::from_seed([1; 32])),
            DeviceIdentity::generate(&mut ChaCha20Rng::from_seed([2; 32])),
            DeviceIdentity::generate(&mut ChaCha20Rng::from_seed(seed)),
        ];
        assert_ne!(devices[0].public(), devices[1].public());
        for d in &devices {
            assert_ne!(d.public().signing_key(), &restores[0].public_key());
            assert_ne!(d.public().dh_key(), &restores[0].session_id().x25519());
        }
    }
}
