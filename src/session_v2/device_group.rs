//! The device group: per-device records, their merge rules, and the
//! namespace-21 group message encrypted for N devices (spec §9.9; facts §4).
//!
//! This module owns:
//! - the per-device record (`{"#": seq, "@": timestamp, "M": ML-KEM pk,
//!   "X": X25519 pk, "d": description, "t": type, "v": version, …unknown}`),
//!   removal tombstones (device id → removal time) and the payload
//!   `{"D": {id: record | tombstone}, "K": [{"c", "r"?, "s"}]}`;
//! - the merge rules (seq strictly increasing, tombstones permanent, absent
//!   records unchanged, unknown fields preserved) as a pure function;
//! - encryption for N devices: per-device ML-KEM ciphertexts, 34-byte key
//!   slots `hint (2) ‖ XChaCha20(key_base)`, both padded with random slots to a
//!   multiple of 4 and shuffled with one permutation, the `kicked` list, the
//!   plaintext padding `2300 + 6400·k` of deployed code, and the outer dict
//!   signed with plain Ed25519 by the account's identity key;
//! - decryption by one device (hint check, then trial of each matching slot).
#![deny(clippy::integer_division_remainder_used)]

use super::account_keys::KeyPair;
use super::bencode::{self, BencodeError, Limits, Value};
use super::identity::Identity;
use super::mnemonic::ct_divmod;
use super::primitives::{
    aead_decrypt, aead_encrypt, blake2b_2, blake2b_16, blake2b_24, blake2b_32, ed25519_verify,
    random_permutation, round_up_to_4, xchacha20_xor,
};
use crate::dh::X25519PublicKey;
use crate::kem::{
    MLKEM_CIPHERTEXT_LEN, MLKEM_PUBLIC_KEY_LEN, MlKemCiphertext, MlKemPublicKey,
    encapsulate_deterministic,
};
use crate::secret::{AccountKeySeed, SharedSecret, SymmetricKey, X25519Secret};
use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;
use rand_core::CryptoRng;
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

/// A device id: 32 random bytes chosen by the device.
pub type DeviceId = [u8; 32];

/// BLAKE2b personalisation of the payload nonce.
pub const PAYLOAD_NONCE_PERS: &[u8; 16] = b"SessionDevDNonce";
/// BLAKE2b personalisation of the per-device key-slot nonce.
pub const KEY_NONCE_PERS: &[u8; 16] = b"SessionDevKNonce";
/// BLAKE2b personalisation of the per-device key-slot key.
pub const KEY_KEY_PERS: &[u8; 16] = b"SessionDevKeyKey";
/// BLAKE2b personalisation of the 2-byte key-slot hint.
pub const KEY_HINT_PERS: &[u8; 16] = b"SessionDevKeyIdx";
/// BLAKE2b personalisation of a `kicked` entry.
pub const KICKED_PERS: &[u8; 16] = b"SessionDevKicked";
/// The `""` type tag of a device-group message.
pub const GROUP_MESSAGE_TAG: &[u8] = b"G";
/// Length of a key slot: hint (2) + encrypted key_base (32).
pub const KEY_SLOT_LEN: usize = 34;
/// Length of a `kicked` entry.
pub const KICKED_ENTRY_LEN: usize = 16;
/// Plaintext padding of deployed code: a fixed allowance for the account-key list …
pub const ACCOUNT_KEYS_ALLOWANCE: usize = 2300;
/// … plus whole buckets of 4 devices × 1600 bytes.
pub const PAYLOAD_BUCKET: usize = 6400;
/// Largest message the swarm stores.
pub const MAX_MESSAGE_LEN: usize = 76_800;
/// Maximum description length in bytes.
pub const MAX_DESCRIPTION_LEN: usize = 64;
/// Device-group messages live this long in namespace 21 (30 days).
pub const GROUP_MESSAGE_TTL_SECS: i64 = 30 * 86_400;

/// What is wrong with a received group message or payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FormatError {
    /// Larger than [`MAX_MESSAGE_LEN`].
    TooLarge {
        /// Its size.
        len: usize,
    },
    /// Not strict bencode.
    Bencode(BencodeError),
    /// The `""` tag is not `"G"` (e.g. `"L"`: a link request).
    WrongMessageType,
    /// A required field is missing.
    MissingField(&'static str),
    /// A field has the wrong type or size (e.g. `C` not a non-empty multiple
    /// of 1088 bytes, or `K` not 34 bytes per ciphertext).
    BadField(&'static str),
    /// A device record's ML-KEM key fails the FIPS 203 check.
    InvalidMlKemKey,
    /// A device-dict key is not 32 bytes.
    BadDeviceId,
    /// A tombstone with value 0 or `i64::MIN`.
    BadTombstone,
}

/// Why a device-group operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeviceGroupError {
    /// The outer message is malformed.
    BadFormat(FormatError),
    /// The outer signature does not verify with the account's Ed25519 key.
    BadSignature,
    /// No key slot carries this device's hint: the device is not a recipient
    /// (not yet accepted, or removed — check [`is_kicked`]).
    NotARecipient,
    /// A slot matched the hint but the payload did not authenticate with it.
    DecryptFailed,
    /// The decrypted payload is malformed.
    BadPayload(FormatError),
    /// Encrypting: the payload has no active device to encrypt for.
    NoRecipients,
    /// Encrypting: the message would exceed 76,800 bytes.
    TooLarge {
        /// The size it would have.
        len: usize,
    },
}

impl fmt::Display for DeviceGroupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadFormat(e) => write!(f, "malformed device-group message: {e:?}"),
            Self::BadSignature => {
                f.write_str("device-group message signature is not from this account; discard it")
            }
            Self::NotARecipient => f.write_str(
                "this device is not among the device-group message's recipients (not linked, or removed)",
            ),
            Self::DecryptFailed => {
                f.write_str("device-group payload failed to authenticate; the message was tampered with")
            }
            Self::BadPayload(e) => write!(f, "malformed device-group payload: {e:?}"),
            Self::NoRecipients => f.write_str("the device group has no active device to encrypt for"),
            Self::TooLarge { len } => write!(
                f,
                "device-group message would be {len} bytes, above {MAX_MESSAGE_LEN}; remove devices"
            ),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for DeviceGroupError {}

/// One device's record. Unknown fields are kept in `extra` and written back.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct DeviceRecord {
    /// `"#"`: increases with every change; a record is accepted only if it increases.
    pub seq: i64,
    /// `"@"`: unix seconds of the last update.
    pub timestamp: i64,
    /// `"M"`: the device's ML-KEM-768 public key.
    pub mlkem: MlKemPublicKey,
    /// `"X"`: the device's X25519 public key.
    pub x25519: X25519PublicKey,
    /// `"d"`: free text, at most 64 bytes (see [`truncate_description`]).
    pub description: Vec<u8>,
    /// `"t"`: `i`, `a`, `d`, or a longer custom value; omitted when empty.
    pub device_type: Vec<u8>,
    /// `"v"`: `1000000·major + 1000·minor + patch`; omitted when 0.
    pub version: i64,
    /// Fields this version does not know, preserved verbatim.
    pub extra: BTreeMap<Vec<u8>, Value>,
}

const RECORD_KEYS: [&[u8]; 7] = [b"#", b"@", b"M", b"X", b"d", b"t", b"v"];

impl DeviceRecord {
    /// A record with no description, type or version.
    pub fn new(seq: i64, timestamp: i64, keys: &KeyPair) -> Self {
        Self {
            seq,
            timestamp,
            mlkem: keys.mlkem_public().clone(),
            x25519: *keys.x25519_public(),
            description: Vec::new(),
            device_type: Vec::new(),
            version: 0,
            extra: BTreeMap::new(),
        }
    }

    /// Sets the description, cut to 64 bytes on a UTF-8 character boundary.
    pub fn set_description(&mut self, text: &str) {
        self.description = truncate_description(text).as_bytes().to_vec();
    }

    /// The record as a bencode dict.
    pub fn to_value(&self) -> Value {
        let mut d: BTreeMap<Vec<u8>, Value> = self
            .extra
            .iter()
            .filter(|(k, _)| !RECORD_KEYS.contains(&k.as_slice()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        d.insert(b"#".to_vec(), Value::Int(self.seq));
        d.insert(b"@".to_vec(), Value::Int(self.timestamp));
        d.insert(b"M".to_vec(), Value::Bytes(self.mlkem.as_bytes().to_vec()));
        d.insert(b"X".to_vec(), Value::Bytes(self.x25519.as_bytes().to_vec()));
        d.insert(b"d".to_vec(), Value::Bytes(self.description.clone()));
        if !self.device_type.is_empty() {
            d.insert(b"t".to_vec(), Value::Bytes(self.device_type.clone()));
        }
        if self.version != 0 {
            d.insert(b"v".to_vec(), Value::Int(self.version));
        }
        Value::Dict(d)
    }

    /// Parses a record dict.
    pub fn from_value(v: &Value) -> Result<Self, FormatError> {
        let d = v.as_dict().ok_or(FormatError::BadField("record"))?;
        let int = |k: &'static str| -> Result<Option<i64>, FormatError> {
            match d.get(k.as_bytes()) {
                None => Ok(None),
                Some(v) => v.as_int().map(Some).ok_or(FormatError::BadField(k)),
            }
        };
        let bytes = |k: &'static str| -> Result<Option<&[u8]>, FormatError> {
            match d.get(k.as_bytes()) {
                None => Ok(None),
                Some(v) => v.as_bytes().map(Some).ok_or(FormatError::BadField(k)),
            }
        };
        let seq = int("#")?.ok_or(FormatError::MissingField("#"))?;
        let timestamp = int("@")?.ok_or(FormatError::MissingField("@"))?;
        let m = bytes("M")?.ok_or(FormatError::MissingField("M"))?;
        if m.len() != MLKEM_PUBLIC_KEY_LEN {
            return Err(FormatError::BadField("M"));
        }
        let mlkem = MlKemPublicKey::from_bytes(m).map_err(|_| FormatError::InvalidMlKemKey)?;
        let x: [u8; 32] = bytes("X")?
            .ok_or(FormatError::MissingField("X"))?
            .try_into()
            .map_err(|_| FormatError::BadField("X"))?;
        let extra = d
            .iter()
            .filter(|(k, _)| !RECORD_KEYS.contains(&k.as_slice()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Ok(Self {
            seq,
            timestamp,
            mlkem,
            x25519: X25519PublicKey::from_bytes(x),
            description: bytes("d")?.unwrap_or_default().to_vec(),
            device_type: bytes("t")?.unwrap_or_default().to_vec(),
            version: int("v")?.unwrap_or(0),
            extra,
        })
    }
}

/// `text` cut to at most 64 bytes without splitting a UTF-8 character.
pub fn truncate_description(text: &str) -> &str {
    let mut end = text.len().min(MAX_DESCRIPTION_LEN);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.get(..end).unwrap_or_default()
}

/// `1000000·major + 1000·minor + patch`, minor and patch clamped to 0..=999.
pub fn encode_version(major: i64, minor: i64, patch: i64) -> i64 {
    major
        .saturating_mul(1_000_000)
        .saturating_add(minor.clamp(0, 999) * 1000)
        .saturating_add(patch.clamp(0, 999))
}

/// `(major, minor, patch)` of a non-negative encoded version.
pub fn decode_version(v: i64) -> Option<(i64, i64, i64)> {
    let v = u64::try_from(v).ok()?;
    let (rest, patch) = ct_divmod(v, 1000);
    let (major, minor) = ct_divmod(rest, 1000);
    Some((
        i64::try_from(major).ok()?,
        i64::try_from(minor).ok()?,
        i64::try_from(patch).ok()?,
    ))
}

/// A device-dict entry: a live record or a removal tombstone.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum DeviceEntry {
    /// A device in the group.
    Active(Box<DeviceRecord>),
    /// A removed device: its id maps to the removal time. Permanent.
    Removed {
        /// Unix seconds of the removal (deployed code writes a negated time
        /// for a device that left by itself; such entries are kept as they are
        /// but announce no kick).
        removed_at: i64,
    },
}

/// An account-key seed as carried in the payload's `"K"` list.
#[derive(PartialEq, Eq, Debug)]
pub struct AccountKeyEntry {
    /// `"s"`: the seed.
    pub seed: AccountKeySeed,
    /// `"c"`: creation time (unix seconds).
    pub created: i64,
    /// `"r"`: when it was rotated away, if it was.
    pub rotated: Option<i64>,
}

/// The decrypted device-group payload.
#[derive(PartialEq, Eq, Debug, Default)]
pub struct GroupPayload {
    /// `"D"`: device id → record or tombstone.
    pub devices: BTreeMap<DeviceId, DeviceEntry>,
    /// `"K"`: the account-key seeds (current first), shared by all devices.
    pub account_keys: Vec<AccountKeyEntry>,
}

impl GroupPayload {
    /// The payload's bencoding (unpadded plaintext).
    pub fn encode(&self) -> Vec<u8> {
        let mut devs = BTreeMap::new();
        for (id, entry) in &self.devices {
            let v = match entry {
                DeviceEntry::Active(r) => r.to_value(),
                DeviceEntry::Removed { removed_at } => Value::Int(*removed_at),
            };
            devs.insert(id.to_vec(), v);
        }
        let mut top = BTreeMap::new();
        top.insert(b"D".to_vec(), Value::Dict(devs));
        if !self.account_keys.is_empty() {
            let list = self
                .account_keys
                .iter()
                .map(|k| {
                    let mut e = BTreeMap::new();
                    e.insert(b"c".to_vec(), Value::Int(k.created));
                    if let Some(r) = k.rotated {
                        e.insert(b"r".to_vec(), Value::Int(r));
                    }
                    e.insert(b"s".to_vec(), Value::Bytes(k.seed.expose().to_vec()));
                    Value::Dict(e)
                })
                .collect();
            top.insert(b"K".to_vec(), Value::List(list));
        }
        let mut v = Value::Dict(top);
        let out = bencode::encode(&v);
        wipe_seeds(&mut v);
        out
    }

    /// Parses a payload. A missing `"K"` is an empty list; unknown top-level keys are ignored.
    pub fn decode(bytes: &[u8]) -> Result<Self, FormatError> {
        let mut v = bencode::decode_with_limits(
            bytes,
            Limits {
                max_depth: 32,
                max_len: MAX_MESSAGE_LEN,
            },
        )
        .map_err(FormatError::Bencode)?;
        let r = Self::from_value(&v);
        wipe_seeds(&mut v);
        r
    }

    fn from_value(v: &Value) -> Result<Self, FormatError> {
        let top = v
            .as_dict()
            .ok_or(FormatError::Bencode(BencodeError::NotADict))?;
        let devs = top.get(&b"D"[..]).ok_or(FormatError::MissingField("D"))?;
        let devs = devs.as_dict().ok_or(FormatError::BadField("D"))?;
        let mut devices = BTreeMap::new();
        for (k, v) in devs {
            let id: DeviceId = k
                .as_slice()
                .try_into()
                .map_err(|_| FormatError::BadDeviceId)?;
            let entry = match v {
                Value::Int(t) => {
                    if *t == 0 || *t == i64::MIN {
                        return Err(FormatError::BadTombstone);
                    }
                    DeviceEntry::Removed { removed_at: *t }
                }
                other => DeviceEntry::Active(Box::new(DeviceRecord::from_value(other)?)),
            };
            devices.insert(id, entry);
        }
        let mut account_keys = Vec::new();
        if let Some(list) = top.get(&b"K"[..]) {
            for e in list.as_list().ok_or(FormatError::BadField("K"))? {
                let d = e.as_dict().ok_or(FormatError::BadField("K"))?;
                let created = d
                    .get(&b"c"[..])
                    .and_then(Value::as_int)
                    .ok_or(FormatError::MissingField("c"))?;
                let rotated = match d.get(&b"r"[..]) {
                    None => None,
                    Some(r) => Some(r.as_int().ok_or(FormatError::BadField("r"))?),
                };
                let s: [u8; 32] = d
                    .get(&b"s"[..])
                    .and_then(Value::as_bytes)
                    .ok_or(FormatError::MissingField("s"))?
                    .try_into()
                    .map_err(|_| FormatError::BadField("s"))?;
                account_keys.push(AccountKeyEntry {
                    seed: AccountKeySeed::from_bytes(s),
                    created,
                    rotated,
                });
            }
        }
        Ok(Self {
            devices,
            account_keys,
        })
    }
}

/// Zeroizes the account seeds inside a payload value.
fn wipe_seeds(v: &mut Value) {
    if let Value::Dict(top) = v
        && let Some(Value::List(list)) = top.get_mut(&b"K"[..])
    {
        for e in list.iter_mut() {
            if let Value::Dict(d) = e
                && let Some(Value::Bytes(s)) = d.get_mut(&b"s"[..])
            {
                s.zeroize();
            }
        }
    }
}

/// What a merge changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MergeOutcome {
    /// Devices seen for the first time.
    pub added: Vec<DeviceId>,
    /// Records replaced by a higher `seq`.
    pub updated: Vec<DeviceId>,
    /// Devices newly removed (or whose removal time moved later).
    pub removed: Vec<DeviceId>,
    /// Incoming entries ignored (not newer, or for a removed device).
    pub ignored: Vec<DeviceId>,
}

/// Merges `incoming` device entries into `local` (facts §4; deployed code's rules):
///
/// - a record replaces a local record only if its `seq` is strictly greater;
/// - a record for a removed device is ignored: tombstones are permanent and a
///   removed device must rejoin with a new id;
/// - a tombstone replaces a record, and is recorded even when no record was
///   held (so a later stale record cannot resurrect the device); between two
///   tombstones the later removal time wins;
/// - devices absent from `incoming` are left unchanged; unknown fields travel
///   with their record.
///
/// ```
/// use session_ratchet::secret::DeviceKeySeed;
/// use session_ratchet::session_v2::account_keys::device_key_pair;
/// use session_ratchet::session_v2::device_group::*;
/// use std::collections::BTreeMap;
/// let keys = device_key_pair(&DeviceKeySeed::from_bytes([1; 32]));
/// let mut local = BTreeMap::new();
/// local.insert([1u8; 32], DeviceEntry::Active(Box::new(DeviceRecord::new(5, 100, &keys))));
/// let mut incoming = BTreeMap::new();
/// incoming.insert([1u8; 32], DeviceEntry::Active(Box::new(DeviceRecord::new(4, 200, &keys))));
/// incoming.insert([2u8; 32], DeviceEntry::Removed { removed_at: 300 });
/// let out = merge_devices(&mut local, &incoming);
/// assert_eq!(out.ignored, vec![[1u8; 32]]); // seq 4 ≤ 5
/// assert_eq!(out.removed, vec![[2u8; 32]]);
/// ```
pub fn merge_devices(
    local: &mut BTreeMap<DeviceId, DeviceEntry>,
    incoming: &BTreeMap<DeviceId, DeviceEntry>,
) -> MergeOutcome {
    let mut out = MergeOutcome::default();
    for (id, entry) in incoming {
        match (local.get(id), entry) {
            (None, DeviceEntry::Active(_)) => {
                local.insert(*id, entry.clone());
                out.added.push(*id);
            }
            (Some(DeviceEntry::Active(cur)), DeviceEntry::Active(new)) => {
                if new.seq > cur.seq {
                    local.insert(*id, entry.clone());
                    out.updated.push(*id);
                } else {
                    out.ignored.push(*id);
                }
            }
            (Some(DeviceEntry::Removed { .. }), DeviceEntry::Active(_)) => out.ignored.push(*id),
            (None | Some(DeviceEntry::Active(_)), DeviceEntry::Removed { .. }) => {
                local.insert(*id, entry.clone());
                out.removed.push(*id);
            }
            (
                Some(DeviceEntry::Removed { removed_at: cur }),
                DeviceEntry::Removed { removed_at: new },
            ) => {
                if new.unsigned_abs() > cur.unsigned_abs() {
                    local.insert(*id, entry.clone());
                    out.removed.push(*id);
                } else {
                    out.ignored.push(*id);
                }
            }
        }
    }
    out
}

/// `kick = BLAKE2b-16(account_seed ‖ device_id, key = A, pers = "SessionDevKicked")`,
/// `account_seed` being the account's 32-byte Ed25519 seed.
fn kicked_entry(account: &Identity, big_a: &X25519PublicKey, device_id: &DeviceId) -> [u8; 16] {
    blake2b_16(
        Some(big_a.as_bytes()),
        KICKED_PERS,
        &[account.ed25519_seed().expose(), device_id],
    )
}

/// The padded plaintext length for an encoded payload of `len` bytes:
/// `2300 + 6400·max(1, ⌈(len − 2300)/6400⌉)` (deployed code).
pub fn padded_payload_len(len: usize) -> usize {
    let over = len.saturating_sub(ACCOUNT_KEYS_ALLOWANCE);
    let buckets = over.div_ceil(PAYLOAD_BUCKET).max(1);
    ACCOUNT_KEYS_ALLOWANCE.saturating_add(buckets.saturating_mul(PAYLOAD_BUCKET))
}

/// Encrypts `payload` for every active device in it, signed by `account`.
///
/// Randomness is drawn in this order (spec §9.9.3): `a` (32), the `kicked`
/// permutation, `kicked` noise, the slot permutation, per-recipient ML-KEM
/// coins (32 each, in device-id order), padding ciphertexts (1088 each),
/// `key_base` (32), padding key slots (2 + 32 each).
///
/// ```
/// use session_ratchet::secret::DeviceKeySeed;
/// use session_ratchet::session_v2::{account_keys::device_key_pair, device_group::*, identity::Identity};
/// # use rand_chacha::{ChaCha20Rng, rand_core::SeedableRng};
/// let mut rng = ChaCha20Rng::from_seed([8; 32]);
/// let account = Identity::from_seed_bytes(&[1u8; 16]).unwrap();
/// let phone = device_key_pair(&DeviceKeySeed::from_bytes([2; 32]));
/// let mut payload = GroupPayload::default();
/// payload.devices.insert([7; 32], DeviceEntry::Active(Box::new(DeviceRecord::new(1, 0, &phone))));
/// let msg = encrypt_group(&mut rng, &account, &payload)?;
/// assert_eq!(decrypt_group(&msg, account.ed25519_public(), &phone)?, payload);
/// # Ok::<(), DeviceGroupError>(())
/// ```
pub fn encrypt_group<R: CryptoRng + ?Sized>(
    rng: &mut R,
    account: &Identity,
    payload: &GroupPayload,
) -> Result<Vec<u8>, DeviceGroupError> {
    let recipients: Vec<&DeviceRecord> = payload
        .devices
        .values()
        .filter_map(|e| match e {
            DeviceEntry::Active(r) => Some(r.as_ref()),
            DeviceEntry::Removed { .. } => None,
        })
        .collect();
    if recipients.is_empty() {
        return Err(DeviceGroupError::NoRecipients);
    }
    let a = X25519Secret::random(rng);
    let big_a = a.public_key();

    // Removal notices.
    let removed: Vec<&DeviceId> = payload
        .devices
        .iter()
        .filter(|(_, e)| matches!(e, DeviceEntry::Removed { removed_at } if *removed_at > 0))
        .map(|(id, _)| id)
        .collect();
    let kick_slots = round_up_to_4(removed.len());
    let kick_perm = random_permutation(rng, kick_slots);
    let mut kicked = vec![0u8; KICKED_ENTRY_LEN * kick_slots];
    rng.fill_bytes(&mut kicked);
    for (id, &slot) in removed.iter().zip(&kick_perm) {
        let at = slot * KICKED_ENTRY_LEN;
        if let Some(dst) = kicked.get_mut(at..at + KICKED_ENTRY_LEN) {
            dst.copy_from_slice(&kicked_entry(account, &big_a, id));
        }
    }

    // ML-KEM ciphertexts, padded and shuffled.
    let n = recipients.len();
    let slots = round_up_to_4(n);
    let pos = random_permutation(rng, slots);
    let mut cts = vec![0u8; MLKEM_CIPHERTEXT_LEN * slots];
    let mut secrets: Vec<SharedSecret> = Vec::with_capacity(n);
    for (rec, &p) in recipients.iter().zip(&pos) {
        let mut coins = [0u8; 32];
        rng.fill_bytes(&mut coins);
        let enc = encapsulate_deterministic(&rec.mlkem, &coins);
        coins.zeroize();
        let (ct, ss) =
            enc.map_err(|_| DeviceGroupError::BadFormat(FormatError::InvalidMlKemKey))?;
        let at = p * MLKEM_CIPHERTEXT_LEN;
        if let Some(dst) = cts.get_mut(at..at + MLKEM_CIPHERTEXT_LEN) {
            dst.copy_from_slice(ct.as_bytes());
        }
        secrets.push(ss);
    }
    for &p in pos.iter().skip(n) {
        let at = p * MLKEM_CIPHERTEXT_LEN;
        if let Some(dst) = cts.get_mut(at..at + MLKEM_CIPHERTEXT_LEN) {
            rng.fill_bytes(dst);
        }
    }

    let payload_nonce = blake2b_24(Some(big_a.as_bytes()), PAYLOAD_NONCE_PERS, &[&cts]);
    let key_base = SymmetricKey::random(rng);
    let mut plain = payload.encode();
    plain.resize(padded_payload_len(plain.len()), 0);
    let enc = aead_encrypt(key_base.expose(), &payload_nonce, plain)
        .ok_or(DeviceGroupError::TooLarge { len: usize::MAX })?;

    // Key slots.
    let mut keys = vec![0u8; KEY_SLOT_LEN * slots];
    for ((rec, &p), ss) in recipients.iter().zip(&pos).zip(&secrets) {
        let at = p * KEY_SLOT_LEN;
        let ct_at = p * MLKEM_CIPHERTEXT_LEN;
        let ct = cts
            .get(ct_at..ct_at + MLKEM_CIPHERTEXT_LEN)
            .unwrap_or_default();
        let Some(slot) = keys.get_mut(at..at + KEY_SLOT_LEN) else {
            continue;
        };
        let Some(ab) = a.diffie_hellman(&rec.x25519) else {
            // A low-order device key cannot be encrypted to: noise, as deployed code does.
            rng.fill_bytes(slot);
            continue;
        };
        let mut encrypted_key = slot_key(
            &ab,
            &big_a,
            &rec.x25519,
            ss,
            &rec.mlkem,
            ct,
            &enc,
            key_base.expose(),
        );
        let hint = blake2b_2(
            None,
            KEY_HINT_PERS,
            &[
                big_a.as_bytes(),
                rec.x25519.as_bytes(),
                rec.mlkem.as_bytes(),
                ct,
                &encrypted_key,
            ],
        );
        if let Some((h, k)) = slot.split_first_chunk_mut::<2>() {
            h.copy_from_slice(&hint);
            k.copy_from_slice(&encrypted_key);
        }
        encrypted_key.zeroize();
    }
    for &p in pos.iter().skip(n) {
        let at = p * KEY_SLOT_LEN;
        if let Some(slot) = keys.get_mut(at..at + KEY_SLOT_LEN)
            && let Some((h, k)) = slot.split_first_chunk_mut::<2>()
        {
            rng.fill_bytes(h);
            rng.fill_bytes(k);
        }
    }

    let mut outer = BTreeMap::new();
    outer.insert(b"".to_vec(), Value::Bytes(GROUP_MESSAGE_TAG.to_vec()));
    outer.insert(b"A".to_vec(), Value::Bytes(big_a.as_bytes().to_vec()));
    outer.insert(b"C".to_vec(), Value::Bytes(cts));
    outer.insert(b"K".to_vec(), Value::Bytes(keys));
    outer.insert(b"d".to_vec(), Value::Bytes(enc));
    if !kicked.is_empty() {
        outer.insert(b"k".to_vec(), Value::Bytes(kicked));
    }
    let mut out = bencode::dict_body(&outer);
    let sig = account.sign(&out);
    bencode::write_bytes(b"~", &mut out);
    bencode::write_bytes(&sig, &mut out);
    out.push(b'e');
    if out.len() > MAX_MESSAGE_LEN {
        return Err(DeviceGroupError::TooLarge { len: out.len() });
    }
    Ok(out)
}

/// `XChaCha20(key_base, k_i, knonce_i)` with
/// `k_i = BLAKE2b-32(aB ‖ A ‖ B ‖ s ‖ M, pers = KeyKey)` and
/// `knonce_i = BLAKE2b-24(c ‖ payload, key = A, pers = KNonce)`. Self-inverse.
#[allow(clippy::too_many_arguments)]
fn slot_key(
    ab: &SharedSecret,
    big_a: &X25519PublicKey,
    b: &X25519PublicKey,
    ss: &SharedSecret,
    m: &MlKemPublicKey,
    ct: &[u8],
    enc_payload: &[u8],
    input: &[u8; 32],
) -> [u8; 32] {
    let knonce = blake2b_24(Some(big_a.as_bytes()), KEY_NONCE_PERS, &[ct, enc_payload]);
    let mut k = blake2b_32(
        None,
        KEY_KEY_PERS,
        &[
            ab.expose(),
            big_a.as_bytes(),
            b.as_bytes(),
            ss.expose(),
            m.as_bytes(),
        ],
    );
    let mut out = *input;
    xchacha20_xor(&k, &knonce, &mut out);
    k.zeroize();
    out
}

/// The parsed, signature-checked outer dict.
struct Outer<'a> {
    big_a: X25519PublicKey,
    cts: &'a [u8],
    keys: &'a [u8],
    payload: &'a [u8],
    kicked: &'a [u8],
}

fn parse_outer<'a>(
    message: &'a [u8],
    account_ed25519: &[u8; 32],
) -> Result<Outer<'a>, DeviceGroupError> {
    let fmt = DeviceGroupError::BadFormat;
    if message.len() > MAX_MESSAGE_LEN {
        return Err(fmt(FormatError::TooLarge { len: message.len() }));
    }
    let entries = bencode::decode_dict_entries(
        message,
        Limits {
            max_depth: 4,
            max_len: MAX_MESSAGE_LEN,
        },
    )
    .map_err(|e| fmt(FormatError::Bencode(e)))?;
    let find = |k: &'static str| -> Result<&'a [u8], DeviceGroupError> {
        let e = entries
            .iter()
            .find(|e| e.key == k.as_bytes())
            .ok_or(fmt(FormatError::MissingField(k)))?;
        if !matches!(e.value, Value::Bytes(_)) {
            return Err(fmt(FormatError::BadField(k)));
        }
        // The raw value of a byte string is "<len>:<bytes>"; it borrows `message`.
        let raw: &'a [u8] = e.raw;
        let colon = raw
            .iter()
            .position(|&b| b == b':')
            .ok_or(fmt(FormatError::BadField(k)))?;
        raw.get(colon + 1..).ok_or(fmt(FormatError::BadField(k)))
    };
    if find("")? != GROUP_MESSAGE_TAG {
        return Err(fmt(FormatError::WrongMessageType));
    }
    let big_a: [u8; 32] = find("A")?
        .try_into()
        .map_err(|_| fmt(FormatError::BadField("A")))?;
    let cts = find("C")?;
    let keys = find("K")?;
    let payload = find("d")?;
    let kicked = match entries.iter().any(|e| e.key == b"k") {
        true => find("k")?,
        false => &[],
    };
    let sig: [u8; 64] = find("~")?
        .try_into()
        .map_err(|_| fmt(FormatError::BadField("~")))?;
    let (count, rem) = ct_divmod(cts.len() as u64, MLKEM_CIPHERTEXT_LEN as u64);
    if cts.is_empty() || rem != 0 {
        return Err(fmt(FormatError::BadField("C")));
    }
    if keys.len() as u64 != count * KEY_SLOT_LEN as u64 {
        return Err(fmt(FormatError::BadField("K")));
    }
    let (_, krem) = ct_divmod(kicked.len() as u64, KICKED_ENTRY_LEN as u64);
    if krem != 0 {
        return Err(fmt(FormatError::BadField("k")));
    }
    if payload.len() < 16 {
        return Err(fmt(FormatError::BadField("d")));
    }
    let sig_offset = entries
        .iter()
        .find(|e| e.key == b"~")
        .map(|e| e.offset)
        .unwrap_or_default();
    let body = message.get(..sig_offset).unwrap_or_default();
    if !ed25519_verify(account_ed25519, body, &sig) {
        return Err(DeviceGroupError::BadSignature);
    }
    Ok(Outer {
        big_a: X25519PublicKey::from_bytes(big_a),
        cts,
        keys,
        payload,
        kicked,
    })
}

/// Decrypts a group message as the device holding `device_keys`, after
/// checking the outer signature against the account's Ed25519 public key.
pub fn decrypt_group(
    message: &[u8],
    account_ed25519: &[u8; 32],
    device_keys: &KeyPair,
) -> Result<GroupPayload, DeviceGroupError> {
    let outer = parse_outer(message, account_ed25519)?;
    let b = device_keys.x25519_public();
    let m = device_keys.mlkem_public();
    let payload_nonce = blake2b_24(
        Some(outer.big_a.as_bytes()),
        PAYLOAD_NONCE_PERS,
        &[outer.cts],
    );
    let mut matched = false;
    for (ct, slot) in outer
        .cts
        .chunks_exact(MLKEM_CIPHERTEXT_LEN)
        .zip(outer.keys.chunks_exact(KEY_SLOT_LEN))
    {
        let Some((hint, enc_key)) = slot.split_first_chunk::<2>() else {
            continue;
        };
        let Ok(enc_key) = <&[u8; 32]>::try_from(enc_key) else {
            continue;
        };
        let expected = blake2b_2(
            None,
            KEY_HINT_PERS,
            &[
                outer.big_a.as_bytes(),
                b.as_bytes(),
                m.as_bytes(),
                ct,
                enc_key,
            ],
        );
        if expected != *hint {
            continue;
        }
        matched = true;
        let Ok(ciphertext) = MlKemCiphertext::from_bytes(ct) else {
            continue;
        };
        let ss = device_keys.mlkem().decapsulate(&ciphertext);
        let Some(ab) = device_keys.x25519_secret().diffie_hellman(&outer.big_a) else {
            continue;
        };
        let mut key_base = slot_key(&ab, &outer.big_a, b, &ss, m, ct, outer.payload, enc_key);
        let plain = aead_decrypt(&key_base, &payload_nonce, outer.payload);
        key_base.zeroize();
        let Some(mut plain) = plain else { continue };
        let end = plain.iter().rposition(|&x| x != 0).map_or(0, |i| i + 1);
        let result = GroupPayload::decode(plain.get(..end).unwrap_or_default())
            .map_err(DeviceGroupError::BadPayload);
        plain.zeroize();
        return result;
    }
    Err(if matched {
        DeviceGroupError::DecryptFailed
    } else {
        DeviceGroupError::NotARecipient
    })
}

/// Whether the signed group message announces the removal of `device_id`
/// (for a removed device, which can no longer read the payload).
pub fn is_kicked(
    message: &[u8],
    account: &Identity,
    device_id: &DeviceId,
) -> Result<bool, DeviceGroupError> {
    let outer = parse_outer(message, account.ed25519_public())?;
    let ours = kicked_entry(account, &outer.big_a, device_id);
    let mut found = subtle::Choice::from(0);
    for entry in outer.kicked.chunks_exact(KICKED_ENTRY_LEN) {
        found |= entry.ct_eq(&ours[..]);
    }
    Ok(found.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn padding_rule() {
        assert_eq!(padded_payload_len(0), 8700);
        assert_eq!(padded_payload_len(8700), 8700);
        assert_eq!(padded_payload_len(8701), 15_100);
        assert_eq!(padded_payload_len(2300), 8700);
    }

    #[test]
    fn description_truncation() {
        let s = "é".repeat(40); // 80 bytes
        assert_eq!(truncate_description(&s).len(), 64);
        let s = "a".to_string() + &"é".repeat(40);
        assert_eq!(truncate_description(&s).len(), 63);
        assert_eq!(truncate_description("short"), "short");
    }

    #[test]
    fn versions() {
        assert_eq!(encode_version(2, 25, 0), 2_025_000);
        assert_eq!(encode_version(3, 0, 7), 3_000_007);
        assert_eq!(encode_version(1, 5000, -3), 1_999_000);
        assert_eq!(decode_version(2_025_000), Some((2, 25, 0)));
        assert_eq!(decode_version(-1), None);
    }
}
