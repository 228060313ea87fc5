//! The persistent form of a whole device (spec §8.9): identity, prekey
//! store, held device lists, bundles and every session.

use super::set::{Entry, MAX_ARCHIVED_SESSIONS, SessionSet};
use super::{MAX_CONTACTS, Peer, SessionManager, SessionsError};
use crate::aead;
use crate::device::list::{DeviceId, MAX_DEVICES, SignedDeviceList, VerifiedDeviceList};
use crate::identity::DeviceIdentity;
use crate::prekey::{PrekeyBundle, PrekeyStore, StoredPrekeys};
use crate::ratchet::{Session, StoredSession};
use crate::ratchet::{StorageError, StorageKey};
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
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct StoredDevice(Vec<u8>);

/// Constant-time equality: the bytes are secret (only the lengths, which
/// are public, may end the comparison early).
impl PartialEq for StoredDevice {
    fn eq(&self, other: &Self) -> bool {
        bool::from(subtle::ConstantTimeEq::ct_eq(
            self.0.as_slice(),
            other.0.as_slice(),
        ))
    }
}

impl Eq for StoredDevice {}

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
    /// [`SessionsError::Storage`], each with its own [`StorageError`]: a
    /// newer format version, a blob of another type or too short
    /// (`Corrupted`), a wrong key or altered ciphertext.
    pub fn decrypt(bytes: &[u8], key: &StorageKey) -> Result<Self, SessionsError> {
        aead::open_stored(bytes, key, WIRE_VERSION, TYPE_ENCRYPTED)
            .map(Self)
            .map_err(|e| SessionsError::Storage(e.into()))
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
    write_peer_public(w, peer);
    w.u8(u8::try_from(peer.sessions.len()).unwrap_or(u8::MAX));
    for (id, set) in &peer.sessions {
        w.bytes(id.as_bytes());
        write_set(w, set);
    }
}

/// A peer's public part: its held list and the bundles of its devices.
fn write_peer_public(w: &mut Writer, peer: &Peer) {
    write_part(w, &peer.list.list().to_bytes());
    w.u8(u8::try_from(peer.bundles.len()).unwrap_or(u8::MAX));
    for (id, bundle) in &peer.bundles {
        w.bytes(id.as_bytes());
        write_part(w, &bundle.bundle().to_bytes());
    }
}

/// The sessions with one peer device (without the device id).
fn write_set(w: &mut Writer, set: &SessionSet) {
    let stored = stored_sessions(set);
    write_set_with(w, set, &stored);
}

/// Each session of a set in its stored form, active first.
fn stored_sessions(set: &SessionSet) -> Vec<StoredSession> {
    set.active
        .iter()
        .chain(set.archived.iter())
        .map(|e| e.session.to_stored())
        .collect()
}

fn write_set_with(w: &mut Writer, set: &SessionSet, stored: &[StoredSession]) {
    w.u64(set.latest_created);
    w.u8(u8::from(set.active.is_some()));
    w.u8(u8::try_from(set.archived.len()).unwrap_or(u8::MAX));
    for (e, s) in set.active.iter().chain(set.archived.iter()).zip(stored) {
        w.u64(e.created);
        w.u8(u8::from(e.stale) | (u8::from(e.heal) << 1));
        write_part(w, s.as_bytes());
    }
}

fn bad() -> SessionsError {
    SessionsError::Storage(StorageError::Corrupted)
}

fn read_peer(
    r: &mut Reader<'_>,
    account: Option<&crate::identity::Ed25519PublicKey>,
) -> Result<Peer, SessionsError> {
    let mut peer = read_peer_public(r, account)?;
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
        let set = read_set(r)?;
        peer.sessions.insert(id, set);
    }
    Ok(peer)
}

fn read_peer_public(
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
    Ok(peer)
}

fn read_set(r: &mut Reader<'_>) -> Result<SessionSet, SessionsError> {
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
        let session = Session::from_stored(&StoredSession::from_bytes(read_part(r, "session")?))
            .map_err(|e| match e {
                crate::ratchet::RatchetError::Storage(s) => SessionsError::Storage(s),
                _ => bad(),
            })?;
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
    Ok(set)
}

/// Object type of a stored peer's public part (a record of the client
/// store, spec §10): plain, inside an encrypted record.
const TYPE_STORED_PEER: u8 = 0x17;
/// Object type of the stored sessions with one peer device (spec §10).
const TYPE_STORED_SESSION_SET: u8 = 0x18;

/// Per-record access for the client store ([`crate::client`]): the peers
/// and session sets of a manager one record at a time, so a device loads
/// only the peers an operation needs.
impl SessionManager {
    /// A manager holding only this device's own peer (no contacts
    /// loaded), from the own peer's records.
    pub(crate) fn from_record_parts(
        identity: DeviceIdentity,
        device_id: DeviceId,
        prekeys: PrekeyStore,
        own_public: &[u8],
        own_sets: &[(DeviceId, &[u8])],
    ) -> Result<Self, SessionsError> {
        let list = SignedDeviceList::from_bytes(
            Reader::start_with_limit(own_public, TYPE_STORED_PEER, MAX_STORED_DEVICE_LEN)
                .and_then(|mut r| read_part(&mut r, "device list"))?,
        )?;
        let account = *list.account();
        let list = VerifiedDeviceList::trust_first_with_key(list, &account)?;
        let mut manager = Self::with_own_list(identity, device_id, list, prekeys, true)?;
        manager.load_peer_records(&account.to_bytes(), own_public, own_sets)?;
        Ok(manager)
    }

    /// The stored public part (list and bundles) of a loaded peer.
    pub(crate) fn peer_record(&self, account: &[u8; 32]) -> Option<Vec<u8>> {
        let peer = self.loaded_peer(account)?;
        let mut w = Writer::start(TYPE_STORED_PEER, 4096);
        write_peer_public(&mut w, peer);
        Some(w.finish())
    }

    /// The stored sessions with one device of a loaded peer (`None`: no
    /// session is held, delete the record). Plain secret bytes: wiped on drop.
    pub(crate) fn session_set_record(
        &self,
        account: &[u8; 32],
        device: &DeviceId,
    ) -> Option<zeroize::Zeroizing<Vec<u8>>> {
        let set = self.loaded_peer(account)?.sessions.get(device)?;
        let stored = stored_sessions(set);
        // Exact size: the writer never grows, so no freed block keeps a
        // copy of session secrets.
        let len = 2
            + 8
            + 1
            + 1
            + stored
                .iter()
                .map(|s| 8 + 1 + 4 + s.as_bytes().len())
                .sum::<usize>();
        let mut w = Writer::start(TYPE_STORED_SESSION_SET, len);
        write_set_with(&mut w, set, &stored);
        Some(zeroize::Zeroizing::new(w.finish()))
    }

    /// The devices of a loaded peer with a session set.
    pub(crate) fn session_set_devices(&self, account: &[u8; 32]) -> Vec<DeviceId> {
        self.loaded_peer(account)
            .map(|p| p.sessions.keys().copied().collect())
            .unwrap_or_default()
    }

    /// Whether the peer (own account or a contact) is in memory.
    pub(crate) fn is_loaded(&self, account: &[u8; 32]) -> bool {
        self.loaded_peer(account).is_some()
    }

    fn loaded_peer(&self, account: &[u8; 32]) -> Option<&Peer> {
        if *account == self.account().to_bytes() {
            Some(&self.own)
        } else {
            self.contacts.get(account)
        }
    }

    /// Rebuilds a peer from its stored public part and session sets and
    /// puts it in memory (a contact, or this account's own peer).
    pub(crate) fn load_peer_records(
        &mut self,
        account: &[u8; 32],
        public: &[u8],
        sets: &[(DeviceId, &[u8])],
    ) -> Result<(), SessionsError> {
        let key = crate::identity::Ed25519PublicKey::from_bytes(account).map_err(|_| bad())?;
        let mut r = Reader::start_with_limit(public, TYPE_STORED_PEER, MAX_STORED_DEVICE_LEN)?;
        let mut peer = read_peer_public(&mut r, Some(&key))?;
        r.finish()?;
        for (device, bytes) in sets {
            if !peer.list.is_active(device) {
                return Err(bad());
            }
            let mut r = Reader::start_with_limit(bytes, TYPE_STORED_SESSION_SET, MAX_PART_LEN * 8)?;
            let set = read_set(&mut r)?;
            r.finish()?;
            peer.sessions.insert(*device, set);
        }
        if *account == self.account().to_bytes() {
            self.own = peer;
        } else {
            self.contacts.insert(*account, peer);
        }
        Ok(())
    }

    /// Forgets a loaded contact (its records stay in the store).
    pub(crate) fn unload_contact(&mut self, account: &[u8; 32]) {
        self.contacts.remove(account);
    }

    /// The loaded contacts.
    #[cfg(test)]
    pub(crate) fn loaded_contacts(&self) -> usize {
        self.contacts.len()
    }

    /// The prekey store.
    pub(crate) fn prekeys(&self) -> &PrekeyStore {
        &self.prekeys
    }

    /// Every session becomes stale (spec §8.8) and prekeys are replaced: the
    /// restore of a backup, applied to whatever is loaded.
    pub(crate) fn mark_all_stale(&mut self) {
        for peer in core::iter::once(&mut self.own).chain(self.contacts.values_mut()) {
            for set in peer.sessions.values_mut() {
                set.mark_stale();
            }
        }
    }

    /// The contacts in memory, in ascending key order.
    pub(crate) fn contact_keys_loaded(&self) -> Vec<[u8; 32]> {
        self.contacts.keys().copied().collect()
    }
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
        let mut manager =
            Self::with_own_list(identity, device_id, own.list.clone(), prekeys, true)?;
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

impl SessionManager {
    /// Adds one stored session set to a loaded peer (the peer's record
    /// first, then its sets).
    pub(crate) fn load_session_set_record(
        &mut self,
        account: &[u8; 32],
        device: &DeviceId,
        bytes: &[u8],
    ) -> Result<(), SessionsError> {
        let own = *account == self.account().to_bytes();
        let peer = if own {
            &mut self.own
        } else {
            self.contacts.get_mut(account).ok_or_else(bad)?
        };
        if !peer.list.is_active(device) || (own && *device == self.device_id) {
            return Err(bad());
        }
        let mut r = Reader::start_with_limit(bytes, TYPE_STORED_SESSION_SET, MAX_PART_LEN * 8)?;
        let set = read_set(&mut r)?;
        r.finish()?;
        peer.sessions.insert(*device, set);
        Ok(())
    }

    /// The held bundles of this account's other devices.
    pub(crate) fn own_bundles(&self) -> Vec<PrekeyBundle> {
        self.own
            .bundles
            .values()
            .map(|b| b.bundle().clone())
            .collect()
    }
}
