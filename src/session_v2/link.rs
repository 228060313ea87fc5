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
//! - the SAS: `salt = BLAKE2b-16(M, pers = "SessionLinkEmoji")`,
//!   `seed16 = Argon2id v1.3(M, salt, t = 2, m = 16 MiB, p = 1, 16 bytes)`,
//!   read as a 128-bit little-endian integer; emoji `j` = bits `6j … 6j+5`,
//!   7 shown (21 in the extended view), from the 64-entry list in
//!   `data/sas-emoji.json`.
#![deny(clippy::integer_division_remainder_used)]

use super::bencode::{self, BencodeError, Limits, Value};
use super::device_group::{DeviceId, DeviceRecord, FormatError};
use super::identity::Identity;
use super::primitives::{
    aead_decrypt, aead_encrypt, blake2b_16, blake2b_24_keyed, blake2b_32_plain,
};
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
/// BLAKE2b personalisation of the SAS salt.
pub const SAS_SALT_PERS: &[u8; 16] = b"SessionLinkEmoji";
/// Argon2id memory cost in KiB (16 MiB).
pub const SAS_ARGON2_MEMORY_KIB: u32 = 16 * 1024;
/// Argon2id passes.
pub const SAS_ARGON2_PASSES: u32 = 2;
/// Argon2id lanes.
pub const SAS_ARGON2_LANES: u32 = 1;
/// Emoji shown by default.
pub const SAS_SHORT_LEN: usize = 7;
/// Emoji in the extended view.
pub const SAS_EXTENDED_LEN: usize = 21;
/// Link requests are stored with a 10-minute TTL.
pub const LINK_REQUEST_TTL_SECS: i64 = 600;
/// Largest accepted link-request message.
pub const MAX_LINK_MESSAGE_LEN: usize = 16 * 1024;

const EMOJI_JSON: &str = include_str!("data/sas-emoji.json");

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

/// A short authentication string: 21 emoji indices (0–63); show the first 7.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Sas {
    /// Emoji indices `0 … 20`, index `j` = bits `6j … 6j+5` of the seed.
    pub indices: [u8; SAS_EXTENDED_LEN],
}

impl Sas {
    /// The 7 emoji to show, each with its English description.
    pub fn short(&self) -> Result<[(&'static str, &'static str); SAS_SHORT_LEN], LinkError> {
        let mut out = [("", ""); SAS_SHORT_LEN];
        for (o, &i) in out.iter_mut().zip(self.indices.iter()) {
            *o = emoji(i).ok_or(LinkError::CorruptEmojiList)?;
        }
        Ok(out)
    }

    /// All 21 emoji (the extended view).
    pub fn extended(&self) -> Result<[(&'static str, &'static str); SAS_EXTENDED_LEN], LinkError> {
        let mut out = [("", ""); SAS_EXTENDED_LEN];
        for (o, &i) in out.iter_mut().zip(self.indices.iter()) {
            *o = emoji(i).ok_or(LinkError::CorruptEmojiList)?;
        }
        Ok(out)
    }
}

/// The 16-byte Argon2id seed of the SAS over the link-request plaintext `m`.
pub fn sas_seed(m: &[u8]) -> Result<[u8; 16], LinkError> {
    use argon2::{Algorithm, Argon2, Params, Version};
    let salt = blake2b_16(None, SAS_SALT_PERS, &[m]);
    let params = Params::new(
        SAS_ARGON2_MEMORY_KIB,
        SAS_ARGON2_PASSES,
        SAS_ARGON2_LANES,
        Some(16),
    )
    .map_err(|_| LinkError::Argon2)?;
    let mut out = [0u8; 16];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(m, &salt, &mut out)
        .map_err(|_| LinkError::Argon2)?;
    Ok(out)
}

/// The emoji indices of a 16-byte seed (128-bit little-endian integer, 6 bits each).
pub fn sas_from_seed(seed: &[u8; 16]) -> Sas {
    let v = u128::from_le_bytes(*seed);
    let mut indices = [0u8; SAS_EXTENDED_LEN];
    for (j, idx) in indices.iter_mut().enumerate() {
        *idx = ((v >> (6 * j)) & 0x3f) as u8;
    }
    Sas { indices }
}

/// The SAS of a link-request plaintext `m` (Argon2id: 16 MiB, 2 passes).
///
/// ```no_run
/// use session_ratchet::session_v2::link;
/// let sas = link::sas(b"d1:I32:...e")?;
/// println!("{:?}", sas.short()?);
/// # Ok::<(), link::LinkError>(())
/// ```
pub fn sas(m: &[u8]) -> Result<Sas, LinkError> {
    Ok(sas_from_seed(&sas_seed(m)?))
}

/// Emoji `index` (0–63) of the Matrix SAS list and its description.
pub fn emoji(index: u8) -> Option<(&'static str, &'static str)> {
    let mut rest = EMOJI_JSON;
    let mut n = 0u8;
    loop {
        let e_at = rest.find("\"emoji\"")?;
        rest = rest.get(e_at + 7..)?;
        let emoji = quoted_value(rest)?;
        let d_at = rest.find("\"description\"")?;
        rest = rest.get(d_at + 13..)?;
        let description = quoted_value(rest)?;
        if n == index {
            return Some((emoji, description));
        }
        n = n.checked_add(1)?;
    }
}

/// The string after `: "` up to the next `"` (the list has no escapes).
fn quoted_value(s: &str) -> Option<&str> {
    let start = s.find('"')? + 1;
    let tail = s.get(start..)?;
    let end = tail.find('"')?;
    tail.get(..end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emoji_list() {
        assert_eq!(emoji(0), Some(("🐶", "Dog")));
        assert_eq!(emoji(63), Some(("📌", "Pin")));
        assert_eq!(emoji(64), None);
        for i in 0..64 {
            assert!(emoji(i).is_some());
        }
    }

    #[test]
    fn sas_bit_layout() {
        // Index 10 straddles the two 64-bit halves (bits 60..65).
        let mut seed = [0u8; 16];
        seed[7] = 0xf0; // bits 60..63 = 1111
        seed[8] = 0x03; // bits 64..65 = 11
        let s = sas_from_seed(&seed);
        assert_eq!(s.indices[10], 63);
        assert_eq!(s.indices[9], 0);
        assert_eq!(s.indices[11], 0);
        let s = sas_from_seed(&[0xff; 16]);
        assert!(s.indices.iter().all(|&i| i == 63));
    }
}
