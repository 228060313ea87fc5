//! Stored prekey stores (spec §4.6).
//!
//! This module owns the persistent form of a [`PrekeyStore`]: a versioned,
//! canonical encoding held in its own type, [`StoredPrekeys`], separate from
//! the live store so the live layout can change without breaking stored
//! blobs. Only ids, secrets, signatures, replay records and the id counter
//! are stored; every public key is recomputed from its secret when loading
//! (an ML-KEM key pair from its 64-byte seed, §3.3), so a loaded key pair is
//! always consistent and there is no public key to validate.
//!
//! A stored prekey store contains every prekey secret of the device: clients
//! either keep it in storage they already encrypt, or encrypt it here under a
//! [`StorageKey`], with the same construction as stored sessions (§7.10).

use super::{
    KemPrekeyKind, MAX_BASE_KEYS_PER_LAST_RESORT, MAX_LAST_RESORT_PREKEYS, MAX_ONE_TIME_PREKEYS,
    MAX_SIGNED_PREKEYS, OneTimePrekey, PrekeyError, PrekeyId, PrekeyStore, SignedKemPrekey,
    SignedPrekey, StoredKemPrekey, StoredSignedPrekey,
};
use crate::aead::{self, StoredOpenError};
use crate::identity::SIGNATURE_LEN;
use crate::kem::{MLKEM_SEED_LEN, MlKemKeyPair};
use crate::secret::{MlKemSeed, StorageKey, X25519Secret};
use crate::wire::{Reader, WIRE_VERSION, WireError, Writer, message_type};
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;
use core::fmt;
use rand_core::CryptoRng;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// A stored signed prekey: id, X25519 private key, signature.
const SIGNED_ITEM_LEN: usize = 4 + 32 + SIGNATURE_LEN;
/// A stored last-resort prekey before its base keys: id, ML-KEM seed,
/// signature, base-key count.
const LAST_RESORT_FIXED_LEN: usize = 4 + MLKEM_SEED_LEN + SIGNATURE_LEN + 2;
/// One remembered initiator base key.
const BASE_KEY_LEN: usize = 32;
/// A stored one-time X25519 prekey: id, private key.
const ONE_TIME_ITEM_LEN: usize = 4 + 32;
/// A stored one-time ML-KEM prekey: id, seed, signature.
const ONE_TIME_KEM_ITEM_LEN: usize = 4 + MLKEM_SEED_LEN + SIGNATURE_LEN;
/// Everything outside the lists: version, type, the four counts, next id.
const FIXED_LEN: usize = 2 + 1 + 1 + 2 + 2 + 4;

/// Largest stored prekey store: every bound of spec §4.5 at its maximum
/// (561,930 bytes, below [`crate::wire::MAX_STORED_LEN`]).
pub const MAX_STORED_PREKEYS_LEN: usize = FIXED_LEN
    + MAX_SIGNED_PREKEYS * SIGNED_ITEM_LEN
    + MAX_LAST_RESORT_PREKEYS
        * (LAST_RESORT_FIXED_LEN + MAX_BASE_KEYS_PER_LAST_RESORT * BASE_KEY_LEN)
    + MAX_ONE_TIME_PREKEYS * (ONE_TIME_ITEM_LEN + ONE_TIME_KEM_ITEM_LEN);

/// The persistent form of a [`PrekeyStore`] (spec §4.6). Contains every
/// prekey secret of the device: zeroized on drop, compared in constant time,
/// and its `Debug` prints only its length.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct StoredPrekeys(Vec<u8>);

impl fmt::Debug for StoredPrekeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoredPrekeys({} bytes, <redacted>)", self.0.len())
    }
}

impl PartialEq for StoredPrekeys {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_slice().ct_eq(other.0.as_slice()).into()
    }
}

impl Eq for StoredPrekeys {}

impl StoredPrekeys {
    /// The plain encoding (spec §4.6). Treat it as a secret.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Wraps a plain encoding read back from storage (checked when loaded by
    /// [`PrekeyStore::from_stored`]).
    pub fn from_bytes(bytes: &[u8]) -> Self {
        Self(bytes.to_vec())
    }

    /// Encrypts under `key`: `0x01 ‖ 0x14 ‖ nonce (24) ‖
    /// XChaCha20-Poly1305(key, nonce, plain, AD = LABEL_STORED_STATE ‖ 0x01 ‖ 0x14)`.
    /// Draws the 24-byte nonce.
    pub fn encrypt<R: CryptoRng + ?Sized>(&self, rng: &mut R, key: &StorageKey) -> Vec<u8> {
        aead::seal_stored(
            rng,
            key,
            WIRE_VERSION,
            message_type::ENCRYPTED_STORED_PREKEYS,
            &self.0,
        )
    }

    /// Decrypts a blob made by [`StoredPrekeys::encrypt`]. The result is
    /// checked when loaded by [`PrekeyStore::from_stored`].
    pub fn decrypt(bytes: &[u8], key: &StorageKey) -> Result<Self, PrekeyError> {
        aead::open_stored(
            bytes,
            key,
            WIRE_VERSION,
            message_type::ENCRYPTED_STORED_PREKEYS,
        )
        .map(Self)
        .map_err(|e| match e {
            StoredOpenError::UnsupportedVersion(version) => {
                PrekeyError::UnsupportedStoreVersion { version }
            }
            StoredOpenError::Malformed(error) => PrekeyError::CorruptedStore { error },
            StoredOpenError::WrongKeyOrTampered => PrekeyError::WrongKeyOrTampered,
        })
    }
}

/// Counts are bounded by the store's own limits, so none of these saturate.
fn count_u8(n: usize) -> u8 {
    u8::try_from(n).unwrap_or(u8::MAX)
}

fn count_u16(n: usize) -> u16 {
    u16::try_from(n).unwrap_or(u16::MAX)
}

/// Reads a list count: at most `max` (`TooMany`), at least `min`
/// (`InvalidValue`), and the rest of the input must hold `count · item_len`
/// bytes (`Truncated`, naming the list) before anything is read for it.
fn read_count(
    r: &Reader<'_>,
    count: usize,
    (min, max): (usize, usize),
    item_len: usize,
    field: &'static str,
    list: &'static str,
) -> Result<usize, WireError> {
    let count = Reader::check_count(count, max, field)?;
    if count < min {
        return Err(WireError::InvalidValue { field });
    }
    if r.remaining() < count.saturating_mul(item_len) {
        return Err(WireError::Truncated { field: list });
    }
    Ok(count)
}

/// The ids read so far, across all kinds (spec §4.3: one counter, so no two
/// prekeys of a device share an id).
struct Ids(BTreeSet<PrekeyId>);

impl Ids {
    /// Reads the next id of a list: not 0 (never issued), above the previous
    /// id of the same list (`NotCanonical`), not used by another list.
    fn read(
        &mut self,
        r: &mut Reader<'_>,
        previous: &mut Option<PrekeyId>,
        field: &'static str,
    ) -> Result<PrekeyId, WireError> {
        let id = r.u32(field)?;
        if id == 0 {
            return Err(WireError::InvalidValue { field });
        }
        if previous.is_some_and(|p| id <= p) {
            return Err(WireError::NotCanonical { field });
        }
        *previous = Some(id);
        if !self.0.insert(id) {
            return Err(WireError::InvalidValue {
                field: "prekey id (used by another prekey)",
            });
        }
        Ok(id)
    }
}

/// A parsed ML-KEM prekey whose key pair is expanded only once the whole
/// input has been checked (expansion is the expensive part of loading).
struct PendingKem {
    id: PrekeyId,
    seed: MlKemSeed,
    signature: [u8; SIGNATURE_LEN],
    seen_base_keys: BTreeSet<[u8; 32]>,
}

impl PendingKem {
    fn read(
        r: &mut Reader<'_>,
        ids: &mut Ids,
        previous: &mut Option<PrekeyId>,
        kind: KemPrekeyKind,
    ) -> Result<Self, WireError> {
        let (id_field, seed_field, sig_field) = match kind {
            KemPrekeyKind::LastResort => (
                "last-resort prekey id",
                "last-resort prekey seed",
                "last-resort prekey signature",
            ),
            KemPrekeyKind::OneTime => (
                "one-time ML-KEM prekey id",
                "one-time ML-KEM prekey seed",
                "one-time ML-KEM prekey signature",
            ),
        };
        let id = ids.read(r, previous, id_field)?;
        let mut seed = r.array::<MLKEM_SEED_LEN>(seed_field)?;
        let seed = MlKemSeed::from_mut_array(&mut seed);
        let signature = r.array(sig_field)?;
        let mut seen_base_keys = BTreeSet::new();
        if kind == KemPrekeyKind::LastResort {
            let n = usize::from(r.u16("base key count")?);
            let count = read_count(
                r,
                n,
                (0, MAX_BASE_KEYS_PER_LAST_RESORT),
                BASE_KEY_LEN,
                "base key count",
                "base keys",
            )?;
            let mut last: Option<[u8; 32]> = None;
            for _ in 0..count {
                let key = r.array::<BASE_KEY_LEN>("base key")?;
                if last.is_some_and(|l| key <= l) {
                    return Err(WireError::NotCanonical { field: "base key" });
                }
                last = Some(key);
                seen_base_keys.insert(key);
            }
        }
        Ok(Self {
            id,
            seed,
            signature,
            seen_base_keys,
        })
    }

    fn expand(self, kind: KemPrekeyKind) -> StoredKemPrekey {
        let keypair = MlKemKeyPair::from_seed(self.seed);
        StoredKemPrekey {
            public: SignedKemPrekey {
                kind,
                id: self.id,
                key: keypair.public_key().clone(),
                signature: self.signature,
            },
            keypair,
            seen_base_keys: self.seen_base_keys,
        }
    }
}

impl PrekeyStore {
    /// Exact length of [`PrekeyStore::to_stored`]'s output.
    fn stored_len(&self) -> usize {
        FIXED_LEN
            + self.signed.len() * SIGNED_ITEM_LEN
            + self
                .last_resort
                .iter()
                .map(|k| LAST_RESORT_FIXED_LEN + k.seen_base_keys.len() * BASE_KEY_LEN)
                .sum::<usize>()
            + self.one_time.len() * ONE_TIME_ITEM_LEN
            + self.one_time_kem.len() * ONE_TIME_KEM_ITEM_LEN
    }

    /// The persistent form of this store (spec §4.6): every prekey secret,
    /// signature and replay record, and the id counter.
    ///
    /// ```
    /// use session_ratchet::identity::DeviceIdentity;
    /// use session_ratchet::prekey::{PrekeyStore, StoredPrekeys};
    /// use session_ratchet::ratchet::StorageKey;
    /// # use rand_chacha::{ChaCha20Rng, rand_core::SeedableRng};
    /// let mut rng = ChaCha20Rng::from_seed([3; 32]);
    /// let bob = DeviceIdentity::generate(&mut rng);
    /// let mut store = PrekeyStore::new(&mut rng, &bob);
    /// store.generate_one_time_prekeys(&mut rng, &bob, 5)?;
    ///
    /// let key = StorageKey::generate(&mut rng);
    /// let blob = store.to_stored().encrypt(&mut rng, &key);
    /// // … after a restart:
    /// let restored = PrekeyStore::from_stored(&StoredPrekeys::decrypt(&blob, &key)?)?;
    /// assert_eq!(restored.one_time_prekey_ids(), store.one_time_prekey_ids());
    /// assert_eq!(restored.to_stored(), store.to_stored());
    /// # Ok::<(), session_ratchet::prekey::PrekeyError>(())
    /// ```
    pub fn to_stored(&self) -> StoredPrekeys {
        // Exact capacity: the buffer never reallocates, so no unzeroized copy
        // of a secret is left behind.
        let mut w = Writer::start(message_type::STORED_PREKEYS, self.stored_len());
        w.u8(count_u8(self.signed.len()));
        for s in &self.signed {
            w.u32(s.public.id)
                .bytes(s.secret.expose())
                .bytes(&s.public.signature);
        }
        w.u8(count_u8(self.last_resort.len()));
        for k in &self.last_resort {
            w.u32(k.public.id)
                .bytes(k.keypair.seed().expose())
                .bytes(&k.public.signature)
                .u16(count_u16(k.seen_base_keys.len()));
            for base_key in &k.seen_base_keys {
                w.bytes(base_key);
            }
        }
        w.u16(count_u16(self.one_time.len()));
        for (id, (_, secret)) in &self.one_time {
            w.u32(*id).bytes(secret.expose());
        }
        w.u16(count_u16(self.one_time_kem.len()));
        for (id, k) in &self.one_time_kem {
            w.u32(*id)
                .bytes(k.keypair.seed().expose())
                .bytes(&k.public.signature);
        }
        w.u32(self.next_id);
        StoredPrekeys(w.finish())
    }

    /// Loads a stored prekey store (spec §4.6). Checks every bound of §4.5,
    /// the canonical order, that no id is 0 or used twice, and that the id
    /// counter is ahead of every id in use. A newer format version is
    /// [`PrekeyError::UnsupportedStoreVersion`]; any other defect is
    /// [`PrekeyError::CorruptedStore`] naming the field. Nothing is partially
    /// loaded. Signatures are kept as stored, not re-verified: the store does
    /// not know its identity, and initiators verify every bundle (§4.4).
    pub fn from_stored(stored: &StoredPrekeys) -> Result<Self, PrekeyError> {
        Self::read(stored.as_bytes()).map_err(|e| match e {
            WireError::UnsupportedVersion { version } => {
                PrekeyError::UnsupportedStoreVersion { version }
            }
            error => PrekeyError::CorruptedStore { error },
        })
    }

    fn read(bytes: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::start_unbounded(bytes, message_type::STORED_PREKEYS)?;
        // Every loop below runs at most its list's bound from §4.5 (3, 3,
        // 4,096 base keys per last-resort prekey, 1,000, 1,000), enforced
        // by `read_count` before the first item is read.
        let mut ids = Ids(BTreeSet::new());

        let n = usize::from(r.u8("signed prekey count")?);
        let count = read_count(
            &r,
            n,
            (1, MAX_SIGNED_PREKEYS),
            SIGNED_ITEM_LEN,
            "signed prekey count",
            "signed prekeys",
        )?;
        let mut signed_raw = Vec::with_capacity(count);
        let mut previous = None;
        for _ in 0..count {
            let id = ids.read(&mut r, &mut previous, "signed prekey id")?;
            let mut secret = r.array::<32>("signed prekey secret")?;
            let secret = X25519Secret::from_mut_array(&mut secret);
            let signature = r.array::<SIGNATURE_LEN>("signed prekey signature")?;
            signed_raw.push((id, secret, signature));
        }

        let n = usize::from(r.u8("last-resort prekey count")?);
        let count = read_count(
            &r,
            n,
            (1, MAX_LAST_RESORT_PREKEYS),
            LAST_RESORT_FIXED_LEN,
            "last-resort prekey count",
            "last-resort prekeys",
        )?;
        let mut last_resort_raw = Vec::with_capacity(count);
        let mut previous = None;
        for _ in 0..count {
            last_resort_raw.push(PendingKem::read(
                &mut r,
                &mut ids,
                &mut previous,
                KemPrekeyKind::LastResort,
            )?);
        }

        let n = usize::from(r.u16("one-time prekey count")?);
        let count = read_count(
            &r,
            n,
            (0, MAX_ONE_TIME_PREKEYS),
            ONE_TIME_ITEM_LEN,
            "one-time prekey count",
            "one-time prekeys",
        )?;
        let mut one_time_raw = Vec::with_capacity(count);
        let mut previous = None;
        for _ in 0..count {
            let id = ids.read(&mut r, &mut previous, "one-time prekey id")?;
            let mut secret = r.array::<32>("one-time prekey secret")?;
            one_time_raw.push((id, X25519Secret::from_mut_array(&mut secret)));
        }

        let n = usize::from(r.u16("one-time ML-KEM prekey count")?);
        let count = read_count(
            &r,
            n,
            (0, MAX_ONE_TIME_PREKEYS),
            ONE_TIME_KEM_ITEM_LEN,
            "one-time ML-KEM prekey count",
            "one-time ML-KEM prekeys",
        )?;
        let mut one_time_kem_raw = Vec::with_capacity(count);
        let mut previous = None;
        for _ in 0..count {
            one_time_kem_raw.push(PendingKem::read(
                &mut r,
                &mut ids,
                &mut previous,
                KemPrekeyKind::OneTime,
            )?);
        }

        let next_id = r.u32("next prekey id")?;
        // The counter must be ahead of every id in use, or a new prekey
        // would reuse one (at least one signed prekey was read, so `last`
        // exists).
        if ids.0.last().is_none_or(|&max| next_id <= max) {
            return Err(WireError::InvalidValue {
                field: "next prekey id",
            });
        }
        r.finish()?;

        // Everything is valid: derive the public keys.
        let signed = signed_raw
            .into_iter()
            .map(|(id, secret, signature)| StoredSignedPrekey {
                public: SignedPrekey {
                    id,
                    key: secret.public_key(),
                    signature,
                },
                secret,
            })
            .collect();
        let last_resort = last_resort_raw
            .into_iter()
            .map(|k| k.expand(KemPrekeyKind::LastResort))
            .collect();
        let one_time: BTreeMap<_, _> = one_time_raw
            .into_iter()
            .map(|(id, secret)| {
                let public = OneTimePrekey {
                    id,
                    key: secret.public_key(),
                };
                (id, (public, secret))
            })
            .collect();
        let one_time_kem: BTreeMap<_, _> = one_time_kem_raw
            .into_iter()
            .map(|k| (k.id, k.expand(KemPrekeyKind::OneTime)))
            .collect();
        Ok(Self {
            signed,
            last_resort,
            one_time,
            one_time_kem,
            next_id,
        })
    }
}

#[cfg(test)]
mod tests;
