//! The persistent form of a whole device (spec §8.9): identity, prekey
//! store, held device lists, bundles and every session.

use super::set::{Entry, MAX_ARCHIVED_SESSIONS, SessionSet};
use super::{MAX_CONTACTS, Peer, SessionManager, SessionsError};
use crate::aead;
use crate::device::list::{DeviceId, MAX_DEVICES, SignedDeviceList, VerifiedDeviceList};
use crate::identity::DeviceIdentity;
use crate::prekey::{PrekeyBundle, PrekeyStore, StoredPrekeys};
use crate::ratchet::StorageKey;
use crate::ratchet::{Session, StoredSession};
use crate::secret::{Ed25519Seed, X25519Secret};
use crate::wire::{Reader, WIRE_VERSION, WireError, Writer};
use alloc::vec::Vec;
use core::fmt;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Object type of a stored device (storage only, never sent).
const TYPE_STORED_DEVICE: u8 = 0x15;
/// Object type of an encrypted stored device.
const TYPE_ENCRYPTED: u8 = 0x16;
/// Largest stored device accepted: 1 GiB. Typical state is about 4 KB per
/// peer device (its bundle and one or two sessions of ~3 KB); the cap leaves
/// room for 4,096 contacts with 16 devices each holding four sessions.
pub const MAX_STORED_DEVICE_LEN: usize = 1 << 30;
/// Largest single stored session or prekey store inside it.
const MAX_PART_LEN: usize = crate::wire::MAX_STORED_LEN;

/// The plain persistent form of a [`SessionManager`]: every secret of the
/// device. Zeroized on drop; `Debug` prints only the length.
#[derive(Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct StoredDevice(Vec<u8>);

impl fmt::Debug for StoredDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoredDevice({} bytes, <redacted>)", self.0.len())
    }
}

impl StoredDevice {
    /// The plain encoding (spec §8.9). Treat it as a secret.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Wraps a plain encoding read back from storage (checked when loaded).
    pub fn from_bytes(bytes: &[u8]) -> Self {
        Self(bytes.to_vec())
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether it is empty (never, for a valid encoding).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Encrypts under `key` (spec §8.9, the construction of §7.10 with type
    /// `0x16`). Draws the 24-byte nonce.
    pub fn encrypt<R: rand_core::CryptoRng + ?Sized>(
        &self,
        rng: &mut R,
        key: &StorageKey,
    ) -> Vec<u8> {
        aead::seal_stored(rng, key, WIRE_VERSION, TYPE_ENCRYPTED, &self.0)
    }

    /// Decrypts a blob made by [`StoredDevice::encrypt`]. A wrong key, an
    /// altered blob and a blob of another type are all
    /// [`SessionsError::Storage`].
    pub fn decrypt(bytes: &[u8], key: &StorageKey) -> Result<Self, SessionsError> {
        aead::open_stored(bytes, key, WIRE_VERSION, TYPE_ENCRYPTED)
            .map(Self)
            .map_err(|_| SessionsError::Storage)
    }
}

fn write_part(w: &mut Writer, bytes: &[u8]) {
    w.u32(u32::try_from(bytes.len()).unwrap_or(u32::MAX));
    w.bytes(bytes);
}

fn read_part<'a>(r: &mut Reader<'a>, field: &'static str) -> Result<&'a [u8], WireError> {
    let len = r.u32(field)? as usize;
    r.bounded(len, MAX_PART_LEN, field)
}

fn write_peer(w: &mut Writer, peer: &Peer) {
    write_part(w, &peer.list.list().to_bytes());
    w.u8(u8::try_from(peer.bundles.len()).unwrap_or(u8::MAX));
    for (id, bundle) in &peer.bundles {
        w.bytes(id.as_bytes());
        write_part(w, &bundle.bundle().to_bytes());
    }
    w.u8(u8::try_from(peer.sessions.len()).unwrap_or(u8::MAX));
    for (id, set) in &peer.sessions {
        w.bytes(id.as_bytes());
        w.u64(set.latest_created);
        w.u8(u8::from(set.active.is_some()));
        w.u8(u8::try_from(set.archived.len()).unwrap_or(u8::MAX));
        for e in set.active.iter().chain(set.archived.iter()) {
            w.u64(e.created);
            w.u8(u8::from(e.stale) | (u8::from(e.heal) << 1));
            write_part(w, e.session.to_stored().as_bytes());
        }
    }
}

fn bad() -> SessionsError {
    SessionsError::Storage
}

fn read_peer(
    r: &mut Reader<'_>,
    account: Option<&crate::identity::Ed25519PublicKey>,
) -> Result<Peer, SessionsError> {
    let list = SignedDeviceList::from_bytes(read_part(r, "device list")?)?;
    // Stored lists were verified when accepted; re-check the signature and
    // the account (a tampered store must not smuggle in a list).
    let list = match account {
        Some(key) => VerifiedDeviceList::trust_first_with_key(list, key)?,
        None => {
            let key = *list.account();
            VerifiedDeviceList::trust_first_with_key(list, &key)?
        }
    };
    let mut peer = Peer::new(list);
    let bundles = Reader::check_count(r.u8("bundle count")?.into(), MAX_DEVICES, "bundles")?;
    let mut last: Option<DeviceId> = None;
    for _ in 0..bundles {
        let id = DeviceId::from_bytes(r.array::<32>("bundle device")?);
        if last.is_some_and(|l| l >= id) {
            return Err(WireError::NotCanonical { field: "bundles" }.into());
        }
        last = Some(id);
        let bundle = PrekeyBundle::from_bytes(read_part(r, "bundle")?)?;
        let entry = peer
            .list
            .list()
            .devices()
            .iter()
            .find(|d| *d.id() == id)
            .ok_or_else(bad)?;
        let verified = bundle.verify_for(entry.identity())?;
        peer.bundles.insert(id, verified);
    }
    let sets = Reader::check_count(
        r.u8("session set count")?.into(),
        MAX_DEVICES,
        "session sets",
    )?;
    let mut last: Option<DeviceId> = None;
    for _ in 0..sets {
        let id = DeviceId::from_bytes(r.array::<32>("session device")?);
        if last.is_some_and(|l| l >= id) {
            return Err(WireError::NotCanonical {
                field: "session sets",
            }
            .into());
        }
        last = Some(id);
        if !peer.list.is_active(&id) {
            return Err(bad());
        }
        let mut set = SessionSet {
            latest_created: r.u64("latest created")?,
            ..SessionSet::default()
        };
        let has_active = r.flags(0x01, "active present")? == 1;
        let archived = Reader::check_count(
            r.u8("archived count")?.into(),
            MAX_ARCHIVED_SESSIONS,
            "archived",
        )?;
        for i in 0..usize::from(has_active) + archived {
            let created = r.u64("created")?;
            let flags = r.flags(0x03, "session flags")?;
            let (stale, heal) = (flags & 1 != 0, flags & 2 != 0);
            let session =
                Session::from_stored(&StoredSession::from_bytes(read_part(r, "session")?))
                    .map_err(|_| bad())?;
            let entry = Entry {
                session,
                created,
                stale,
                heal,
            };
            if i == 0 && has_active {
                if stale {
                    return Err(bad());
                }
                set.active = Some(entry);
            } else {
                set.archived.push_back(entry);
            }
        }
        peer.sessions.insert(id, set);
    }
    Ok(peer)
}

impl SessionManager {
    /// The persistent form of this device (spec §8.9).
    pub fn to_stored(&self) -> StoredDevice {
        let mut w = Writer::start(TYPE_STORED_DEVICE, 4096);
        let (seed, dh) = self.identity.secret_parts();
        w.bytes(seed.expose());
        w.bytes(dh.expose());
        w.bytes(self.device_id.as_bytes());
        write_part(&mut w, self.prekeys.to_stored().as_bytes());
        write_peer(&mut w, &self.own);
        w.u16(u16::try_from(self.contacts.len()).unwrap_or(u16::MAX));
        for peer in self.contacts.values() {
            write_peer(&mut w, peer);
        }
        StoredDevice(w.finish())
    }

    /// Loads a device stored by [`SessionManager::to_stored`]. Everything is
    /// checked again (signatures of held lists, bundles against them,
    /// sessions, prekeys); any failure is [`SessionsError::Storage`] or a
    /// decoding error, never a panic.
    pub fn from_stored(stored: &StoredDevice) -> Result<Self, SessionsError> {
        let mut r = Reader::start_with_limit(&stored.0, TYPE_STORED_DEVICE, MAX_STORED_DEVICE_LEN)?;
        let seed = Ed25519Seed::from_slice_array(&r.array::<32>("identity seed")?);
        let dh = X25519Secret::from_slice_array(&r.array::<32>("identity dh")?);
        let identity = DeviceIdentity::from_secret_parts(&seed, dh);
        let device_id = DeviceId::from_bytes(r.array::<32>("device id")?);
        let prekeys =
            PrekeyStore::from_stored(&StoredPrekeys::from_bytes(read_part(&mut r, "prekeys")?))?;
        let own = read_peer(&mut r, None)?;
        let mut manager = Self::new(identity, device_id, own.list.clone(), prekeys)?;
        manager.own = own;
        let own_key = manager.account().to_bytes();
        let contacts =
            Reader::check_count(r.u16("contact count")?.into(), MAX_CONTACTS, "contacts")?;
        for _ in 0..contacts {
            let peer = read_peer(&mut r, None)?;
            let key = peer.list.list().account().to_bytes();
            let canonical = manager.contacts.keys().next_back().is_none_or(|k| *k < key);
            if key == own_key || !canonical {
                return Err(WireError::NotCanonical { field: "contacts" }.into());
            }
            manager.contacts.insert(key, peer);
        }
        r.finish()?;
        Ok(manager)
    }

    /// Loads a device from a backup (spec §8.8): like
    /// [`SessionManager::from_stored`], but no stored session may send again
    /// (the lost, newer state may already have used its chain keys), and
    /// every prekey of the backup is deleted and replaced (its replay
    /// records are out of date, so old prekey messages would be accepted
    /// again; see [`PrekeyStore::restart_after_restore`]).
    /// Publish [`SessionManager::bundle`] again, then call
    /// [`SessionManager::heal`] for this account and every contact.
    pub fn restore_from_backup<R: rand_core::CryptoRng + ?Sized>(
        rng: &mut R,
        stored: &StoredDevice,
    ) -> Result<Self, SessionsError> {
        let mut manager = Self::from_stored(stored)?;
        for peer in core::iter::once(&mut manager.own).chain(manager.contacts.values_mut()) {
            for set in peer.sessions.values_mut() {
                set.mark_stale();
            }
        }
        manager
            .prekeys
            .restart_after_restore(rng, &manager.identity)?;
        Ok(manager)
    }
}
