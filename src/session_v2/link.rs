//! Device link requests and the emoji short authentication string
//! (spec §9.10; facts §4 "Linking").
//!
//! This module owns:
//! - the link-request plaintext `{"I": device id, "i": device record}` and its
//!   encryption "with the account root key": deployed code's config
//!   encryption with `key_base` = the account's 32-byte Ed25519 seed and domain
//!   `"link-request"` (key = `BLAKE2b-32(key_base ‖ BE64(len) ‖ domain)`,
//!   nonce = `BLAKE2b-24(plaintext, key = "libsessionutil-config-encrypted-" ‖ domain)`,
//!   output `XChaCha20-Poly1305(plaintext) ‖ nonce`), wrapped as `{"": "L", "L": …}`;
//! - the SAS over the request plaintext `M`. The construction (BLAKE2b salt,
//!   Argon2id, 6 bits per emoji) is shared with the hybrid device link of
//!   spec §8.5 and lives in [`crate::device::sas`] (spec §8.5.2); its items
//!   are re-exported here unchanged.
#![deny(clippy::integer_division_remainder_used)]

use super::bencode::{self, BencodeError, Limits, Value};
use super::device_group::{DeviceId, DeviceRecord, FormatError};
use super::identity::Identity;
use super::primitives::{aead_decrypt, aead_encrypt, blake2b_24_keyed, blake2b_32_plain};
use crate::device::sas::SasError;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::fmt;
use zeroize::Zeroize;

/// The `""` type tag of a link-request message.
pub const LINK_MESSAGE_TAG: &[u8] = b"L";
/// The config-encryption domain of a link request.
pub const LINK_DOMAIN: &[u8] = b"link-request";
/// Prefix of the config-encryption nonce key.
pub const CONFIG_NONCE_KEY_PREFIX: &[u8] = b"libsessionutil-config-encrypted-";
pub use crate::device::sas::{
    SAS_ARGON2_LANES, SAS_ARGON2_MEMORY_KIB, SAS_ARGON2_PASSES, SAS_EXTENDED_LEN, SAS_SALT_PERS,
    SAS_SHORT_LEN, Sas, emoji, sas, sas_from_seed, sas_seed,
};
/// Link requests are stored with a 10-minute TTL.
pub const LINK_REQUEST_TTL_SECS: i64 = 600;
/// Largest accepted link-request message.
pub const MAX_LINK_MESSAGE_LEN: usize = 16 * 1024;

/// Why a link request or its SAS could not be processed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LinkError {
    /// Not a `{"": "L", "L": …}` message (or too large).
    BadFormat(FormatError),
    /// The request did not decrypt with this account's root key.
    DecryptFailed,
    /// The decrypted request is malformed.
    BadRequest(FormatError),
    /// Argon2id failed (allocation of 16 MiB, or a parameter error).
    Argon2,
    /// The embedded emoji list is malformed (a build problem).
    CorruptEmojiList,
}

impl fmt::Display for LinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadFormat(e) => write!(f, "malformed link-request message: {e:?}"),
            Self::DecryptFailed => {
                f.write_str("link request does not decrypt with this account's key; ignore it")
            }
            Self::BadRequest(e) => write!(f, "malformed link request: {e:?}"),
            Self::Argon2 => f.write_str("Argon2id failed computing the link emoji (needs 16 MiB)"),
            Self::CorruptEmojiList => f.write_str("the embedded SAS emoji list is corrupt"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for LinkError {}

impl From<SasError> for LinkError {
    fn from(e: SasError) -> Self {
        match e {
            SasError::Argon2 => Self::Argon2,
            SasError::CorruptEmojiList => Self::CorruptEmojiList,
        }
    }
}

/// A decrypted link request.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct LinkRequest {
    /// `"I"`: the new device's id.
    pub device_id: DeviceId,
    /// `"i"`: the record it asks to have added.
    pub record: DeviceRecord,
    /// The exact plaintext `M`, which the SAS is computed over.
    pub plaintext: Vec<u8>,
}

/// The link-request plaintext `{"I": device_id, "i": record}`.
pub fn encode_link_request(device_id: &DeviceId, record: &DeviceRecord) -> Vec<u8> {
    let mut d = BTreeMap::new();
    d.insert(b"I".to_vec(), Value::Bytes(device_id.to_vec()));
    d.insert(b"i".to_vec(), record.to_value());
    bencode::encode(&Value::Dict(d))
}

fn config_key(key_base: &[u8; 32], len: usize) -> [u8; 32] {
    blake2b_32_plain(&[key_base, &(len as u64).to_be_bytes(), LINK_DOMAIN])
}

fn config_nonce(plaintext: &[u8]) -> [u8; 24] {
    let mut nonce_key = Vec::with_capacity(CONFIG_NONCE_KEY_PREFIX.len() + LINK_DOMAIN.len());
    nonce_key.extend_from_slice(CONFIG_NONCE_KEY_PREFIX);
    nonce_key.extend_from_slice(LINK_DOMAIN);
    blake2b_24_keyed(&nonce_key, &[plaintext])
}

/// Encrypts a link-request plaintext with the account root key and wraps it
/// as `{"": "L", "L": ciphertext ‖ nonce}`. Deterministic (the nonce is a
/// keyed hash of the plaintext), so it takes no RNG.
///
/// ```
/// use session_ratchet::secret::DeviceKeySeed;
/// use session_ratchet::session_v2::{account_keys::device_key_pair, device_group::DeviceRecord, identity::Identity, link};
/// let account = Identity::from_seed_bytes(&[1u8; 16]).unwrap();
/// let keys = device_key_pair(&DeviceKeySeed::from_bytes([2; 32]));
/// let plain = link::encode_link_request(&[9; 32], &DeviceRecord::new(1, 1_700_000_000, &keys));
/// let msg = link::encrypt_link_request(&account, &plain);
/// let req = link::decrypt_link_request(&account, &msg)?;
/// assert_eq!(req.device_id, [9; 32]);
/// # Ok::<(), link::LinkError>(())
/// ```
pub fn encrypt_link_request(account: &Identity, plaintext: &[u8]) -> Vec<u8> {
    let mut key = config_key(account.ed25519_seed().expose(), plaintext.len());
    let nonce = config_nonce(plaintext);
    let mut sealed = aead_encrypt(&key, &nonce, plaintext.to_vec()).unwrap_or_default();
    key.zeroize();
    sealed.extend_from_slice(&nonce);
    let mut d = BTreeMap::new();
    d.insert(b"".to_vec(), Value::Bytes(LINK_MESSAGE_TAG.to_vec()));
    d.insert(b"L".to_vec(), Value::Bytes(sealed));
    bencode::encode(&Value::Dict(d))
}

/// Decrypts and parses a link request.
pub fn decrypt_link_request(account: &Identity, message: &[u8]) -> Result<LinkRequest, LinkError> {
    let fmt_err = |e| LinkError::BadFormat(e);
    if message.len() > MAX_LINK_MESSAGE_LEN {
        return Err(fmt_err(FormatError::TooLarge { len: message.len() }));
    }
    let v = bencode::decode_with_limits(
        message,
        Limits {
            max_depth: 4,
            max_len: MAX_LINK_MESSAGE_LEN,
        },
    )
    .map_err(|e| fmt_err(FormatError::Bencode(e)))?;
    let d = v
        .as_dict()
        .ok_or(fmt_err(FormatError::Bencode(BencodeError::NotADict)))?;
    let tag = d
        .get(&b""[..])
        .and_then(Value::as_bytes)
        .ok_or(fmt_err(FormatError::MissingField("")))?;
    if tag != LINK_MESSAGE_TAG {
        return Err(fmt_err(FormatError::WrongMessageType));
    }
    let sealed = d
        .get(&b"L"[..])
        .and_then(Value::as_bytes)
        .ok_or(fmt_err(FormatError::MissingField("L")))?;
    let split = sealed
        .len()
        .checked_sub(24)
        .ok_or(fmt_err(FormatError::BadField("L")))?;
    let (ct, nonce) = sealed
        .split_at_checked(split)
        .ok_or(fmt_err(FormatError::BadField("L")))?;
    let nonce: [u8; 24] = nonce
        .try_into()
        .map_err(|_| fmt_err(FormatError::BadField("L")))?;
    let plain_len = ct
        .len()
        .checked_sub(16)
        .ok_or(fmt_err(FormatError::BadField("L")))?;
    let mut key = config_key(account.ed25519_seed().expose(), plain_len);
    let plain = aead_decrypt(&key, &nonce, ct);
    key.zeroize();
    let plaintext = plain.ok_or(LinkError::DecryptFailed)?;
    let inner = bencode::decode_with_limits(
        &plaintext,
        Limits {
            max_depth: 32,
            max_len: MAX_LINK_MESSAGE_LEN,
        },
    )
    .map_err(|e| LinkError::BadRequest(FormatError::Bencode(e)))?;
    let inner = inner
        .as_dict()
        .ok_or(LinkError::BadRequest(FormatError::Bencode(
            BencodeError::NotADict,
        )))?;
    let device_id: DeviceId = inner
        .get(&b"I"[..])
        .and_then(Value::as_bytes)
        .ok_or(LinkError::BadRequest(FormatError::MissingField("I")))?
        .try_into()
        .map_err(|_| LinkError::BadRequest(FormatError::BadDeviceId))?;
    let record = DeviceRecord::from_value(
        inner
            .get(&b"i"[..])
            .ok_or(LinkError::BadRequest(FormatError::MissingField("i")))?,
    )
    .map_err(LinkError::BadRequest)?;
    Ok(LinkRequest {
        device_id,
        record,
        plaintext,
    })
}
