//! The account's prekey record with count hiding (spec §8.4).
//!
//! This module owns what an account publishes so that a contact can start
//! sessions with all of its devices at once, without the storage node
//! learning how many devices the account has beyond a bucket of 4:
//!
//! - one **real slot** per live device of the signed device list: the
//!   device's prekey bundle (without one-time prekeys, 1419 bytes) encrypted
//!   with XChaCha20-Poly1305 under a **slot key** derived from the account
//!   key, the device id and the device's identity keys, all taken from the
//!   device list;
//! - **dummy slots**, uniformly random bytes of the same length, until the
//!   number of slots is a multiple of 4 (at least 4);
//! - all slots sorted by their bytes, so the order says nothing either.
//!
//! A fetcher holding the verified device list derives each live device's slot
//! key and finds that device's slot by trial decryption; slots that open
//! under no key are dummies (or belong to devices the fetcher's list does not
//! name yet). Without the device list, a real slot (random nonce, then an
//! AEAD ciphertext under a key the node cannot compute) is indistinguishable
//! from a dummy.
#![deny(clippy::integer_division_remainder_used)]

use super::list::{DeviceEntry, DeviceId, MAX_DEVICES, VerifiedDeviceList};
use crate::aead::{self, TAG_LEN, XNONCE_LEN};
use crate::kdf::{self, label};
use crate::prekey::{PrekeyBundle, PrekeyError, VerifiedBundle};
use crate::secret::SymmetricKey;
use crate::wire::{Reader, WireError, Writer, message_type};
use alloc::vec::Vec;
use core::fmt;
use rand_core::CryptoRng;

/// Length of a bundle in a slot: a §4.4 bundle without one-time prekeys.
pub const SLOT_BUNDLE_LEN: usize = 1419;
/// Length of one slot: nonce, encrypted bundle, tag.
pub const SLOT_LEN: usize = XNONCE_LEN + SLOT_BUNDLE_LEN + TAG_LEN;
/// Slot counts are multiples of this.
pub const SLOT_BUCKET: usize = 4;
/// Largest slot count: [`MAX_DEVICES`] rounded up to a bucket.
pub const MAX_SLOTS: usize = MAX_DEVICES.div_ceil(SLOT_BUCKET) * SLOT_BUCKET;
/// Largest encoded record (23,347 bytes).
pub const MAX_PREKEY_RECORD_LEN: usize = 3 + MAX_SLOTS * SLOT_LEN;

/// The number of slots for `devices` live devices: the next multiple of 4,
/// and at least 4.
pub const fn slot_count(devices: usize) -> usize {
    let n = if devices == 0 { 1 } else { devices };
    n.div_ceil(SLOT_BUCKET) * SLOT_BUCKET
}

/// Errors of building and opening prekey records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PrekeyRecordError {
    /// Building: a live device of the list has no bundle. Get its current
    /// bundle (or remove the device) and build again.
    MissingBundle {
        /// The device.
        id: DeviceId,
    },
    /// Building: a bundle's identity is not a live device of the list.
    NotInList,
    /// Building: two bundles for the same device.
    DuplicateBundle {
        /// The device.
        id: DeviceId,
    },
    /// Building: a bundle carries one-time prekeys; slots hold only the
    /// signed and last-resort prekeys (one-time prekeys are served separately).
    OneTimePrekeysInSlot,
    /// A bundle does not decode or verify (building: as given; opening: a
    /// slot that decrypted under the device's key). Do not use it.
    InvalidBundle {
        /// The device.
        id: DeviceId,
        /// The bundle's signature error, if it decoded.
        error: Option<PrekeyError>,
    },
    /// Opening: two slots decrypt under the same device's key.
    DuplicateSlot {
        /// The device.
        id: DeviceId,
    },
    /// A primitive refused its input (cannot happen with the fixed sizes used).
    Internal,
}

impl fmt::Display for PrekeyRecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingBundle { id } => write!(
                f,
                "no bundle for live device {id:?}; fetch its bundle or remove the device first"
            ),
            Self::NotInList => {
                f.write_str("a bundle's identity is not a live device of the device list")
            }
            Self::DuplicateBundle { id } => write!(f, "two bundles for device {id:?}"),
            Self::OneTimePrekeysInSlot => {
                f.write_str("a bundle in a prekey record must not carry one-time prekeys")
            }
            Self::InvalidBundle { id, error } => match error {
                Some(e) => write!(f, "the bundle of device {id:?} is invalid: {e}"),
                None => write!(f, "the bundle of device {id:?} does not decode"),
            },
            Self::DuplicateSlot { id } => write!(
                f,
                "two slots of the record open for device {id:?}; the record is malformed"
            ),
            Self::Internal => f.write_str("internal error in a primitive"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for PrekeyRecordError {}

/// `slot_key = HKDF(salt = account_pub, IKM = device_id ‖ public_identity,
/// info = LABEL_PREKEY_SLOT, 32)` (spec §8.4).
fn slot_key(account: &[u8; 32], device: &DeviceEntry) -> Result<SymmetricKey, PrekeyRecordError> {
    let mut out = [0u8; 32];
    if !kdf::hkdf_sha256(
        account,
        &[device.id().as_bytes(), &device.identity().to_bytes()],
        &[label::PREKEY_SLOT],
        &mut out,
    ) {
        return Err(PrekeyRecordError::Internal);
    }
    Ok(SymmetricKey::from_mut_array(&mut out))
}

/// Associated data of every slot: the record's version and type bytes.
const SLOT_AD: [u8; 2] = [crate::wire::WIRE_VERSION, message_type::PREKEY_RECORD];

/// An account's published prekey record (spec §8.4).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PrekeyRecord {
    /// `slot_count · SLOT_LEN` bytes, slots in ascending byte order.
    slots: Vec<u8>,
}

/// What a fetcher found in a record.
#[derive(Clone, Debug)]
pub struct OpenedRecord {
    found: Vec<(DeviceId, VerifiedBundle)>,
    missing: Vec<DeviceId>,
}

impl OpenedRecord {
    /// The verified bundle of each live device that has a slot, by ascending id.
    pub fn bundles(&self) -> &[(DeviceId, VerifiedBundle)] {
        &self.found
    }
    /// Live devices of the list with no slot in the record (for example
    /// added after the record was built): fetch their bundles separately.
    pub fn missing(&self) -> &[DeviceId] {
        &self.missing
    }
}

impl PrekeyRecord {
    /// Builds the record for the live devices of `list` from their bundles
    /// (one each, without one-time prekeys). Draws, in order: a 24-byte nonce
    /// per live device in ascending id order, then [`SLOT_LEN`] bytes per
    /// dummy slot.
    ///
    /// ```
    /// use session_ratchet::account::Account;
    /// use session_ratchet::device::list::*;
    /// use session_ratchet::device::record::PrekeyRecord;
    /// use session_ratchet::identity::DeviceIdentity;
    /// use session_ratchet::prekey::PrekeyStore;
    /// # use rand_chacha::{ChaCha20Rng, rand_core::SeedableRng};
    /// # let mut rng = ChaCha20Rng::from_seed([0; 32]);
    /// let (account, _) = Account::generate(&mut rng);
    /// let phone = DeviceIdentity::generate(&mut rng);
    /// let store = PrekeyStore::new(&mut rng, &phone);
    /// let id = DeviceId::generate(&mut rng);
    /// let mut draft = DeviceListDraft::first(&account);
    /// let v = ClientVersion { major: 1, minor: 0, patch: 0 };
    /// draft.add_device(DeviceEntry::new(id, *phone.public(), Platform::Ios, "iPhone", v, 0))?;
    /// let list = VerifiedDeviceList::trust_first_with_key(draft.sign(&account)?, &account.public_key())?;
    ///
    /// let record = PrekeyRecord::build(&mut rng, &list, &[store.bundle(&phone, None, None)?])?;
    /// assert_eq!(record.slot_count(), 4); // one real slot, three dummies
    ///
    /// // A contact with the verified list finds the phone's bundle.
    /// let opened = PrekeyRecord::from_bytes(&record.to_bytes())?.open(&list)?;
    /// assert_eq!(opened.bundles()[0].0, id);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn build<R: CryptoRng + ?Sized>(
        rng: &mut R,
        list: &VerifiedDeviceList,
        bundles: &[PrekeyBundle],
    ) -> Result<Self, PrekeyRecordError> {
        let devices = list.list().devices();
        // Match every bundle to a live device before drawing anything.
        let mut plain: Vec<Option<Vec<u8>>> = devices.iter().map(|_| None).collect();
        for bundle in bundles {
            let bytes = bundle.to_bytes();
            if bytes.len() != SLOT_BUNDLE_LEN {
                return Err(PrekeyRecordError::OneTimePrekeysInSlot);
            }
            let (at, device) = devices
                .iter()
                .enumerate()
                .find(|(_, d)| d.identity() == bundle.identity())
                .ok_or(PrekeyRecordError::NotInList)?;
            let id = *device.id();
            bundle
                .clone()
                .verify()
                .map_err(|e| PrekeyRecordError::InvalidBundle { id, error: Some(e) })?;
            match plain.get_mut(at) {
                Some(Some(_)) => return Err(PrekeyRecordError::DuplicateBundle { id }),
                Some(slot) => *slot = Some(bytes),
                None => return Err(PrekeyRecordError::Internal),
            }
        }
        if let Some((device, _)) = devices.iter().zip(&plain).find(|(_, b)| b.is_none()) {
            return Err(PrekeyRecordError::MissingBundle { id: *device.id() });
        }
        let account = list.list().account().to_bytes();
        let mut slots: Vec<Vec<u8>> = Vec::with_capacity(slot_count(devices.len()));
        for (device, bundle) in devices.iter().zip(plain) {
            let mut buf = bundle.ok_or(PrekeyRecordError::MissingBundle { id: *device.id() })?;
            let key = slot_key(&account, device)?;
            let mut nonce = [0u8; XNONCE_LEN];
            rng.fill_bytes(&mut nonce);
            if !aead::seal_x(key.expose(), &nonce, &SLOT_AD, &mut buf) {
                return Err(PrekeyRecordError::Internal);
            }
            let mut slot = Vec::with_capacity(SLOT_LEN);
            slot.extend_from_slice(&nonce);
            slot.append(&mut buf);
            slots.push(slot);
        }
        while slots.len() < slot_count(devices.len()) {
            let mut dummy = alloc::vec![0u8; SLOT_LEN];
            rng.fill_bytes(&mut dummy);
            slots.push(dummy);
        }
        slots.sort_unstable();
        Ok(Self {
            slots: slots.concat(),
        })
    }

    /// The number of slots (a multiple of 4): all the storage node learns.
    pub fn slot_count(&self) -> usize {
        self.slots.len().checked_div(SLOT_LEN).unwrap_or(0)
    }

    /// Finds and verifies the bundle of every live device of `list`
    /// (spec §8.4): trial decryption under each device's slot key, then
    /// bundle decoding and [`PrekeyBundle::verify_for`] the listed identity.
    pub fn open(&self, list: &VerifiedDeviceList) -> Result<OpenedRecord, PrekeyRecordError> {
        let account = list.list().account().to_bytes();
        let mut found = Vec::new();
        let mut missing = Vec::new();
        for device in list.list().devices() {
            let id = *device.id();
            let key = slot_key(&account, device)?;
            let mut bundle: Option<VerifiedBundle> = None;
            for slot in self.slots.chunks_exact(SLOT_LEN) {
                let Some((nonce, ct)) = slot.split_first_chunk::<XNONCE_LEN>() else {
                    return Err(PrekeyRecordError::Internal);
                };
                let mut buf = ct.to_vec();
                if !aead::open_x(key.expose(), nonce, &SLOT_AD, &mut buf) {
                    continue;
                }
                if bundle.is_some() {
                    return Err(PrekeyRecordError::DuplicateSlot { id });
                }
                let decoded = PrekeyBundle::from_bytes(&buf)
                    .map_err(|_| PrekeyRecordError::InvalidBundle { id, error: None })?;
                bundle = Some(
                    decoded
                        .verify_for(device.identity())
                        .map_err(|e| PrekeyRecordError::InvalidBundle { id, error: Some(e) })?,
                );
            }
            match bundle {
                Some(b) => found.push((id, b)),
                None => missing.push(id),
            }
        }
        Ok(OpenedRecord { found, missing })
    }

    /// Canonical encoding: `0x01 ‖ 0x06 ‖ u8(slot count) ‖ slots` (spec §8.4).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::start(message_type::PREKEY_RECORD, 3 + self.slots.len());
        // ≤ MAX_SLOTS by construction.
        w.u8(u8::try_from(self.slot_count()).unwrap_or(u8::MAX))
            .bytes(&self.slots);
        w.finish()
    }

    /// Decodes: the slot count must be a multiple of 4 between 4 and
    /// [`MAX_SLOTS`], the slots strictly ascending, nothing may follow.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::start(bytes, message_type::PREKEY_RECORD)?;
        let count = Reader::check_count(usize::from(r.u8("slot count")?), MAX_SLOTS, "slot count")?;
        if count == 0 || count.checked_rem(SLOT_BUCKET) != Some(0) {
            return Err(WireError::InvalidValue {
                field: "slot count",
            });
        }
        let slots = r.slice(count.saturating_mul(SLOT_LEN), "slots")?;
        r.finish()?;
        let mut prev: Option<&[u8]> = None;
        for slot in slots.chunks_exact(SLOT_LEN) {
            if prev.is_some_and(|p| p >= slot) {
                return Err(WireError::NotCanonical { field: "slots" });
            }
            prev = Some(slot);
        }
        Ok(Self {
            slots: slots.to_vec(),
        })
    }
}

#[cfg(test)]
mod tests;
