//! Session management across every device of both parties (spec §8.6,
//! §8.8): which session each pair of devices uses, fan-out of one message to
//! every device in one envelope, revocation effects and self-healing.
//!
//! | part | owns | spec |
//! |---|---|---|
//! | [`SessionManager`] | one device's contacts, their device lists and prekey bundles, and its sessions with every peer device | §8.6.1 |
//! | `set` (internal) | the sessions with one peer device: one active, at most [`MAX_ARCHIVED_SESSIONS`] archived, and the rank rule that picks the active one | §8.6.2 |
//! | `routing` (internal) | the routing header inside each envelope slot, bound into the ratchet's associated data | §8.6.3 |
//! | `stored` (internal) | the persistent form of a whole device | §8.9 |
//!
//! ## Rules in one paragraph
//!
//! A device sends only to active devices of the lists it holds, and accepts
//! only from them. Every message goes to all active devices of the
//! conversation's account and to this account's other devices, in one
//! envelope ([`crate::envelope`]). Only an authenticated prekey message from
//! the listed identity of a device can add a session; which session is active
//! is decided by an order both devices compute identically, and a healing
//! session (from a device that lost state) wins. An undecryptable message
//! never changes anything, so nobody can force a reset; a device that knows
//! it lost state (a restore from backup) starts fresh sessions itself
//! ([`SessionManager::heal`]). Store the state after every `encrypt` and
//! before sending what it returned: sending from an older state would reuse
//! message keys.
//!
//! ```
//! use session_ratchet::account::Account;
//! use session_ratchet::device::list::*;
//! use session_ratchet::device::record::PrekeyRecord;
//! use session_ratchet::identity::DeviceIdentity;
//! use session_ratchet::prekey::PrekeyStore;
//! use session_ratchet::sessions::SessionManager;
//! # use rand_chacha::{ChaCha20Rng, rand_core::SeedableRng};
//! # let mut rng = ChaCha20Rng::from_seed([7; 32]);
//! let v = ClientVersion { major: 1, minor: 0, patch: 0 };
//! // One account with one device, as its own device sees it.
//! let mut device = |rng: &mut ChaCha20Rng, name: &str| -> Result<_, Box<dyn std::error::Error>> {
//!     let (account, _) = Account::generate(rng);
//!     let identity = DeviceIdentity::generate(rng);
//!     let id = DeviceId::generate(rng);
//!     let mut draft = DeviceListDraft::first(&account);
//!     draft.add_device(DeviceEntry::new(id, *identity.public(), Platform::Android, name, v, 0))?;
//!     let list = draft.sign(&account)?;
//!     let store = PrekeyStore::new(rng, &identity);
//!     let bundle = store.bundle(&identity, None, None)?;
//!     let verified = VerifiedDeviceList::trust_first_with_key(list.clone(), &account.public_key())?;
//!     let record = PrekeyRecord::build(rng, &verified, &[bundle])?;
//!     Ok((SessionManager::new(identity, id, verified, store)?, list, record, account))
//! };
//! let (mut alice, alice_list, alice_record, alice_account) = device(&mut rng, "alice")?;
//! let (mut bob, bob_list, bob_record, bob_account) = device(&mut rng, "bob")?;
//!
//! // Each learns the other's list (by Session ID) and prekey record.
//! alice.add_contact(VerifiedDeviceList::trust_first(bob_list, &bob_account.session_id())?)?;
//! alice.add_prekey_record(&bob_account.public_key(), &bob_record)?;
//! bob.add_contact(VerifiedDeviceList::trust_first(alice_list, &alice_account.session_id())?)?;
//!
//! let out = alice.encrypt(&mut rng, &bob_account.public_key(), b"hello", 1_000)?;
//! let got = bob.decrypt(&out.envelopes[0])?;
//! assert_eq!(got.content, b"hello");
//! let back = bob.encrypt(&mut rng, &alice_account.public_key(), b"hi", 1_001)?;
//! assert_eq!(alice.decrypt(&back.envelopes[0])?.content, b"hi");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod error;
mod routing;
mod set;
mod stored;
#[cfg(test)]
mod tests;

pub use error::SessionsError;
pub use routing::ContentKind;
pub use set::MAX_ARCHIVED_SESSIONS;
pub use stored::{MAX_STORED_DEVICE_LEN, StoredDevice};

use crate::account::Account;
use crate::device::list::{
    DeviceId, DeviceStatus, SignedDeviceList, UpdateOutcome, VerifiedDeviceList,
};
use crate::device::record::PrekeyRecord;
use crate::envelope::{Envelope, EnvelopeError};
use crate::handshake::PrekeyMessage;
use crate::identity::{DeviceIdentity, DevicePublicIdentity, Ed25519PublicKey};
use crate::prekey::{PrekeyBundle, PrekeyStore, VerifiedBundle};
use crate::ratchet::{RatchetError, Session};
use crate::wire::{WireError, message_type};
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::fmt;
use rand_core::CryptoRng;
use routing::Routing;
use set::{Entry, SessionSet, Used};

/// Contacts one device holds at most.
pub const MAX_CONTACTS: usize = 4096;
/// How long an unanswered session started by [`SessionManager::heal_device`]
/// is reused before another call starts a fresh one (one day).
pub const HEAL_RETRY_SECS: u64 = 24 * 3600;
/// Most intermediate lists [`SessionManager::update_device_list`] accepts
/// in one call (each costs a signature check).
pub const MAX_LIST_INTERMEDIATES: usize = 64;
/// Longest content one message carries (12 KiB): with a routing header and
/// a first message (handshake header, PQ bootstrap key), a slot then still
/// fits the envelope's payload limit. Larger content goes as an attachment.
pub const MAX_CONTENT_LEN: usize = 12 * 1024;

/// An account as one device knows it: its accepted device list, the prekey
/// bundles of its devices, and this device's sessions with them.
struct Peer {
    list: VerifiedDeviceList,
    bundles: BTreeMap<DeviceId, VerifiedBundle>,
    sessions: BTreeMap<DeviceId, SessionSet>,
}

impl Peer {
    fn new(list: VerifiedDeviceList) -> Self {
        Self {
            list,
            bundles: BTreeMap::new(),
            sessions: BTreeMap::new(),
        }
    }

    /// Forgets everything about devices that are no longer active.
    fn prune(&mut self) {
        let list = &self.list;
        self.bundles.retain(|id, _| list.is_active(id));
        self.sessions.retain(|id, _| list.is_active(id));
    }
}

/// One device's view of all its conversations (spec §8.6).
pub struct SessionManager {
    identity: DeviceIdentity,
    device_id: DeviceId,
    prekeys: PrekeyStore,
    own: Peer,
    contacts: BTreeMap<[u8; 32], Peer>,
}

impl fmt::Debug for SessionManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionManager")
            .field("device_id", &self.device_id)
            .field("contacts", &self.contacts.len())
            .finish_non_exhaustive()
    }
}

/// What one `encrypt` or `heal` produced: normally one envelope. Only when
/// the slots do not fit in one wire object (many new sessions at once: a
/// slot with a prekey message is at least 3 KB) are the recipients split
/// over several. Store the manager's state first, then deliver each envelope
/// to the conversation's account (and, for `encrypt`, to this account).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    /// The envelopes (wire type `0x07`).
    pub envelopes: Vec<Vec<u8>>,
    /// Sessions started for this message (new prekey messages inside).
    pub sessions_started: usize,
}

/// A decrypted message.
#[derive(Clone, PartialEq, Eq)]
pub struct Received {
    /// The sending account.
    pub sender: Ed25519PublicKey,
    /// The sending device.
    pub sender_device: DeviceId,
    /// The account the message was addressed to: this account, or (for a
    /// copy of a message sent by another device of this account) the
    /// contact it was sent to.
    pub conversation: Ed25519PublicKey,
    /// Application message or a healing notice (no content).
    pub kind: ContentKind,
    /// The content.
    pub content: Vec<u8>,
    /// The message started a new session (a prekey message).
    pub new_session: bool,
    /// The sender holds a newer device list of its own account than this
    /// device: fetch it.
    pub sender_list_newer: bool,
    /// The sender (a contact) used an older version of this account's device
    /// list than this device holds, so it may still be writing to a revoked
    /// device: make sure the newer list reaches it (spec §8.3).
    pub recipient_list_outdated: bool,
}

impl fmt::Debug for Received {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Received")
            .field("sender", &self.sender)
            .field("sender_device", &self.sender_device)
            .field("kind", &self.kind)
            .field("content_len", &self.content.len())
            .field("new_session", &self.new_session)
            .finish_non_exhaustive()
    }
}

/// What a device list update changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListChange {
    /// Devices that became active.
    pub added: Vec<DeviceId>,
    /// Devices no longer active (revoked): their sessions and bundles were deleted.
    pub removed: Vec<DeviceId>,
}

/// One recipient of a fan-out.
struct Target {
    account: Ed25519PublicKey,
    device: DeviceId,
    identity: DevicePublicIdentity,
}

impl SessionManager {
    /// A device's manager: its identity, its id in `own_list` (which must
    /// list it with this identity), and its prekey store.
    pub fn new(
        identity: DeviceIdentity,
        device_id: DeviceId,
        own_list: VerifiedDeviceList,
        prekeys: PrekeyStore,
    ) -> Result<Self, SessionsError> {
        Self::with_own_list(identity, device_id, own_list, prekeys, false)
    }

    /// [`SessionManager::new`], or for stored state (`revoked_ok`) also a
    /// device its own list has since revoked: it still decrypts what was
    /// sent before the revocation reached the senders, and never sends.
    pub(crate) fn with_own_list(
        identity: DeviceIdentity,
        device_id: DeviceId,
        own_list: VerifiedDeviceList,
        prekeys: PrekeyStore,
        revoked_ok: bool,
    ) -> Result<Self, SessionsError> {
        match own_list.status(&device_id) {
            DeviceStatus::Active(entry) if entry.identity() == identity.public() => {}
            DeviceStatus::Revoked { .. } if revoked_ok => {}
            DeviceStatus::Revoked { .. } => return Err(SessionsError::ThisDeviceRevoked),
            _ => return Err(SessionsError::NotListed),
        }
        Ok(Self {
            identity,
            device_id,
            prekeys,
            own: Peer::new(own_list),
            contacts: BTreeMap::new(),
        })
    }

    /// This device's id.
    pub fn device_id(&self) -> &DeviceId {
        &self.device_id
    }

    /// This device's identity.
    pub fn identity(&self) -> &DeviceIdentity {
        &self.identity
    }

    /// This device's account key.
    pub fn account(&self) -> Ed25519PublicKey {
        *self.own.list.list().account()
    }

    /// The held list of this device's own account.
    pub fn own_list(&self) -> &VerifiedDeviceList {
        &self.own.list
    }

    /// The held list of `account` (own or contact).
    pub fn device_list(&self, account: &Ed25519PublicKey) -> Option<&VerifiedDeviceList> {
        self.peer(account).map(|p| &p.list)
    }

    /// Whether this device is still active in its own account's held list.
    pub fn is_revoked(&self) -> bool {
        !self.own.list.is_active(&self.device_id)
    }

    /// The prekey store, to rotate prekeys.
    pub fn prekeys_mut(&mut self) -> &mut PrekeyStore {
        &mut self.prekeys
    }

    /// The bundle to publish in the account's prekey record (§8.4): no
    /// one-time prekeys.
    pub fn bundle(&self) -> Result<PrekeyBundle, SessionsError> {
        Ok(self.prekeys.bundle(&self.identity, None, None)?)
    }

    /// Adds a contact from a list the client verified (typically
    /// [`VerifiedDeviceList::trust_first`] with the contact's Session ID).
    pub fn add_contact(&mut self, list: VerifiedDeviceList) -> Result<(), SessionsError> {
        let key = list.list().account().to_bytes();
        if key == self.account().to_bytes() || self.contacts.contains_key(&key) {
            return Err(SessionsError::AlreadyContact);
        }
        if self.contacts.len() >= MAX_CONTACTS {
            return Err(SessionsError::LimitExceeded);
        }
        self.contacts.insert(key, Peer::new(list));
        Ok(())
    }

    /// The contacts' account keys, in ascending byte order.
    pub fn contacts(&self) -> Vec<Ed25519PublicKey> {
        self.contacts
            .values()
            .map(|p| *p.list.list().account())
            .collect()
    }

    fn peer(&self, account: &Ed25519PublicKey) -> Option<&Peer> {
        if *account == self.account() {
            Some(&self.own)
        } else {
            self.contacts.get(&account.to_bytes())
        }
    }

    fn peer_mut(&mut self, account: &Ed25519PublicKey) -> Result<&mut Peer, SessionsError> {
        if *account == self.account() {
            Ok(&mut self.own)
        } else {
            self.contacts
                .get_mut(&account.to_bytes())
                .ok_or(SessionsError::UnknownAccount {
                    account: account.to_bytes(),
                })
        }
    }

    /// Offers a newer device list of this account or of a contact (spec
    /// §8.2.4; `intermediates` as in [`VerifiedDeviceList::accept_update`]).
    /// On success the sessions and bundles of removed devices are deleted
    /// (spec §8.3): nothing is sent to them, and their messages are
    /// rejected from now on. If this device itself was removed, it stops
    /// sending ([`SessionsError::ThisDeviceRevoked`]).
    pub fn update_device_list(
        &mut self,
        offered: &SignedDeviceList,
        intermediates: &[SignedDeviceList],
    ) -> Result<ListChange, SessionsError> {
        if intermediates.len() > MAX_LIST_INTERMEDIATES {
            return Err(SessionsError::LimitExceeded);
        }
        let peer = self.peer_mut(offered.account())?;
        let UpdateOutcome::Advanced(new) = peer.list.accept_update(offered, intermediates)? else {
            return Ok(ListChange::default());
        };
        let active = |l: &VerifiedDeviceList| -> Vec<DeviceId> {
            l.list().devices().iter().map(|d| *d.id()).collect()
        };
        let (before, after) = (active(&peer.list), active(&new));
        let change = ListChange {
            added: after
                .iter()
                .filter(|d| !before.contains(d))
                .copied()
                .collect(),
            removed: before
                .iter()
                .filter(|d| !after.contains(d))
                .copied()
                .collect(),
        };
        peer.list = *new;
        peer.prune();
        Ok(change)
    }

    /// Removes `device` from this account (spec §8.3): signs the next list
    /// with the account key, applies it here, and returns it to publish.
    pub fn revoke_device(
        &mut self,
        account: &Account,
        device: &DeviceId,
        now: u64,
    ) -> Result<SignedDeviceList, SessionsError> {
        if account.public_key() != self.account() {
            return Err(SessionsError::UnknownAccount {
                account: account.public_key().to_bytes(),
            });
        }
        let mut draft = self.own.list.next_draft()?;
        draft.remove_device(device, now)?;
        let signed = draft.sign(account)?;
        self.update_device_list(&signed, &[])?;
        Ok(signed)
    }

    /// Takes the bundles of `account`'s devices from its prekey record
    /// (opened with the held list, spec §8.4.4). Bundles replace older ones.
    /// Returns the devices the record had no slot for.
    pub fn add_prekey_record(
        &mut self,
        account: &Ed25519PublicKey,
        record: &PrekeyRecord,
    ) -> Result<Vec<DeviceId>, SessionsError> {
        let own_id = self.device_id;
        let peer = self.peer_mut(account)?;
        let opened = record.open(&peer.list)?;
        for (id, bundle) in opened.bundles() {
            if *id != own_id {
                peer.bundles.insert(*id, bundle.clone());
            }
        }
        Ok(opened.missing().to_vec())
    }

    /// Adds one device's bundle fetched separately; it must verify for the
    /// identity the held list gives the device.
    pub fn add_bundle(
        &mut self,
        account: &Ed25519PublicKey,
        device: &DeviceId,
        bundle: PrekeyBundle,
    ) -> Result<(), SessionsError> {
        let peer = self.peer_mut(account)?;
        let DeviceStatus::Active(entry) = peer.list.status(device) else {
            return Err(SessionsError::UnknownSenderDevice {
                account: account.to_bytes(),
                device: *device,
            });
        };
        let verified = bundle.verify_for(entry.identity())?;
        peer.bundles.insert(*device, verified);
        Ok(())
    }

    /// The recipients of a message in `conversation`: its active devices
    /// (unless it is this account) and this account's other active devices.
    fn targets(
        &self,
        conversation: &Ed25519PublicKey,
        with_own: bool,
    ) -> Result<Vec<Target>, SessionsError> {
        let own_key = self.account();
        let mut out = Vec::new();
        let mut push = |peer: &Peer, skip: Option<&DeviceId>| {
            for d in peer.list.list().devices() {
                if Some(d.id()) != skip {
                    out.push(Target {
                        account: *peer.list.list().account(),
                        device: *d.id(),
                        identity: *d.identity(),
                    });
                }
            }
        };
        if *conversation != own_key {
            let peer = self.contacts.get(&conversation.to_bytes()).ok_or(
                SessionsError::UnknownAccount {
                    account: conversation.to_bytes(),
                },
            )?;
            push(peer, None);
        }
        if with_own || *conversation == own_key {
            push(&self.own, Some(&self.device_id));
        }
        Ok(out)
    }

    /// Encrypts `content` for every active device of `conversation` and
    /// every other active device of this account (spec §8.6.4), starting
    /// sessions where none is active from the held bundles. `now` (seconds)
    /// dates new sessions (spec §8.6.2).
    ///
    /// Fails before changing anything if a session must be started and no
    /// bundle is held ([`SessionsError::MissingPrekeys`]), or the content is
    /// longer than [`MAX_CONTENT_LEN`]. On success, store the manager's
    /// state (spec §8.9) before the envelopes leave the device (spec §8.6.4).
    pub fn encrypt<R: CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        conversation: &Ed25519PublicKey,
        content: &[u8],
        now: u64,
    ) -> Result<Outgoing, SessionsError> {
        let targets = self.targets(conversation, true)?;
        self.send(
            rng,
            conversation,
            &targets,
            ContentKind::Message,
            content,
            now,
            false,
        )
    }

    /// Starts fresh sessions with every active device of `account` (this
    /// account: its other devices) that has no session this device may send
    /// in, and tells each with a healing notice (spec §8.8). Returns `None`
    /// when every device already has one. Call it for every contact and for
    /// this account after [`SessionManager::restore_from_backup`].
    pub fn heal<R: CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        account: &Ed25519PublicKey,
        now: u64,
    ) -> Result<Option<Outgoing>, SessionsError> {
        let all = self.targets(account, false)?;
        let targets: Vec<Target> = all
            .into_iter()
            .filter(|t| {
                self.peer(&t.account)
                    .and_then(|p| p.sessions.get(&t.device))
                    .is_none_or(|s| s.active.is_none())
            })
            .collect();
        if targets.is_empty() {
            return Ok(None);
        }
        self.send(rng, account, &targets, ContentKind::Heal, &[], now, false)
            .map(Some)
    }

    /// Starts a new session with one device even though a session exists,
    /// and sends it a healing notice (spec §8.8). For a client that knows
    /// the pair's session is broken (the peer reports it out of band, or
    /// its messages keep failing with [`SessionsError::Undecryptable`]). If
    /// the active session is one this device started less than
    /// [`HEAL_RETRY_SECS`] ago and the peer has not answered it, it is reused
    /// instead (the notice repeats its handshake), so repeated calls start
    /// at most one session per round trip or per day; after that, a fresh
    /// bundle (fetch the record first) gets a fresh try.
    pub fn heal_device<R: CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        account: &Ed25519PublicKey,
        device: &DeviceId,
        now: u64,
    ) -> Result<Outgoing, SessionsError> {
        let targets: Vec<Target> = self
            .targets(account, *account == self.account())?
            .into_iter()
            .filter(|t| t.device == *device && t.account == *account)
            .collect();
        if targets.is_empty() {
            return Err(SessionsError::UnknownSenderDevice {
                account: account.to_bytes(),
                device: *device,
            });
        }
        let force = self
            .peer(account)
            .and_then(|p| p.sessions.get(device))
            .and_then(|s| s.active.as_ref())
            .is_some_and(|a| {
                !a.session.is_initiating() || a.created.saturating_add(HEAL_RETRY_SECS) <= now
            });
        self.send(rng, account, &targets, ContentKind::Heal, &[], now, force)
    }

    #[allow(clippy::too_many_arguments)]
    fn send<R: CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        conversation: &Ed25519PublicKey,
        targets: &[Target],
        kind: ContentKind,
        content: &[u8],
        now: u64,
        force_new: bool,
    ) -> Result<Outgoing, SessionsError> {
        if self.is_revoked() {
            return Err(SessionsError::ThisDeviceRevoked);
        }
        if content.len() > MAX_CONTENT_LEN {
            return Err(SessionsError::ContentTooLong {
                len: content.len(),
                max: MAX_CONTENT_LEN,
            });
        }
        if targets.is_empty() {
            return Err(SessionsError::NoRecipients);
        }
        // Plan: which targets need a new session, and do we hold a bundle?
        let mut missing = Vec::new();
        let mut start = Vec::new();
        for t in targets {
            let peer = self.peer(&t.account).ok_or(SessionsError::Internal)?;
            let has_active = peer
                .sessions
                .get(&t.device)
                .is_some_and(|s| s.active.is_some());
            if has_active && !force_new {
                continue;
            }
            match peer.bundles.get(&t.device) {
                Some(b) => start.push((t, b.clone())),
                None => missing.push((t.account.to_bytes(), t.device)),
            }
        }
        if !missing.is_empty() {
            return Err(SessionsError::MissingPrekeys { devices: missing });
        }
        // Start sessions (nothing installed until all handshakes succeed).
        let mut started = Vec::with_capacity(start.len());
        for (t, bundle) in &start {
            let session =
                Session::initiate(rng, &self.identity, bundle).map_err(SessionsError::Ratchet)?;
            started.push((*t, session));
        }
        let sessions_started = started.len();
        for (t, session) in started {
            let peer = self.peer_mut(&t.account)?;
            let set = peer.sessions.entry(t.device).or_default();
            let created = set.next_created(now);
            // A restart with a device this one already had sessions with (or
            // any session a healing call starts) is a healing session.
            let heal = kind == ContentKind::Heal || set.len() > 0;
            set.install_own(Entry {
                session,
                created,
                stale: false,
                heal,
            });
        }
        // Encrypt one slot payload per target.
        let own_key = self.account();
        let own_version = self.own.list.list().version();
        let conversation_version = self
            .peer(conversation)
            .map(|p| p.list.list().version())
            .ok_or(SessionsError::Internal)?;
        let mut payloads = Vec::with_capacity(targets.len());
        for t in targets {
            let device_id = self.device_id;
            let peer = self.peer_mut(&t.account)?;
            let set = peer
                .sessions
                .get_mut(&t.device)
                .ok_or(SessionsError::Internal)?;
            let (created, heal) = set
                .active
                .as_ref()
                .map(|a| (a.created, a.heal))
                .ok_or(SessionsError::Internal)?;
            let routing = Routing {
                sender_account: own_key,
                sender_device: device_id,
                conversation: *conversation,
                sender_list_version: own_version,
                conversation_list_version: conversation_version,
                session_created: created,
                session_heal: heal,
                kind,
            };
            let header = routing.to_bytes();
            let ad = routing::associated_data(&header, &t.account, &t.device);
            let session = set.sender().ok_or(SessionsError::Internal)?;
            let message = session
                .encrypt(rng, content, &ad)
                .map_err(SessionsError::Ratchet)?;
            let mut payload = header;
            payload.extend_from_slice(&message);
            payloads.push((t.identity, payload));
        }
        let envelopes = seal_split(rng, &payloads)?;
        Ok(Outgoing {
            envelopes,
            sessions_started,
        })
    }

    /// Decrypts an envelope (spec §8.6.5). On any error nothing changes.
    pub fn decrypt(&mut self, bytes: &[u8]) -> Result<Received, SessionsError> {
        let payload = self.open_slot(bytes)?;
        self.decrypt_slot(&payload)
    }

    /// Step 1 of [`SessionManager::decrypt`]: this device's slot payload
    /// (routing header and ratchet message). Changes nothing.
    pub(crate) fn open_slot(
        &self,
        bytes: &[u8],
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, SessionsError> {
        let envelope = Envelope::from_bytes(bytes)?;
        envelope.open(&self.identity).map_err(|e| match e {
            EnvelopeError::NoSlotForDevice => SessionsError::NotARecipient,
            e => SessionsError::Envelope(e),
        })
    }

    /// The (sending account, conversation) a slot payload claims, before
    /// anything is authenticated: which peers must be in memory to decrypt it.
    pub(crate) fn slot_accounts(
        payload: &[u8],
    ) -> Result<(Ed25519PublicKey, Ed25519PublicKey), SessionsError> {
        let (routing, _) = Routing::split(payload)?;
        Ok((routing.sender_account, routing.conversation))
    }

    /// The rest of [`SessionManager::decrypt`] on an opened slot payload.
    pub(crate) fn decrypt_slot(&mut self, payload: &[u8]) -> Result<Received, SessionsError> {
        let (routing, message) = Routing::split(payload)?;
        let own_key = self.account();
        let is_own = routing.sender_account == own_key;
        // Routing consistency: a contact writes to this account; another
        // device of this account writes to this account or a known contact.
        if is_own {
            if routing.sender_device == self.device_id {
                return Err(SessionsError::Misrouted);
            }
            if routing.conversation != own_key
                && !self.contacts.contains_key(&routing.conversation.to_bytes())
            {
                return Err(SessionsError::UnknownAccount {
                    account: routing.conversation.to_bytes(),
                });
            }
        } else if routing.conversation != own_key {
            return Err(SessionsError::Misrouted);
        }
        let header = routing.to_bytes();
        let ad = routing::associated_data(&header, &own_key, &self.device_id);
        let own_version = self.own.list.list().version();
        let identity = &self.identity;
        let prekeys = &mut self.prekeys;
        let peer = if is_own {
            &mut self.own
        } else {
            self.contacts
                .get_mut(&routing.sender_account.to_bytes())
                .ok_or(SessionsError::UnknownAccount {
                    account: routing.sender_account.to_bytes(),
                })?
        };
        let held_version = peer.list.list().version();
        let sender_key = routing.sender_account.to_bytes();
        let listed = match peer.list.status(&routing.sender_device) {
            DeviceStatus::Active(entry) => *entry.identity(),
            DeviceStatus::Revoked { .. } => {
                return Err(SessionsError::RevokedSender {
                    account: sender_key,
                    device: routing.sender_device,
                });
            }
            DeviceStatus::Unknown if routing.sender_list_version > held_version => {
                return Err(SessionsError::DeviceListOutdated {
                    account: sender_key,
                    held: held_version,
                    claimed: routing.sender_list_version,
                });
            }
            DeviceStatus::Unknown => {
                return Err(SessionsError::UnknownSenderDevice {
                    account: sender_key,
                    device: routing.sender_device,
                });
            }
        };
        let undecryptable = |error| SessionsError::Undecryptable {
            account: sender_key,
            device: routing.sender_device,
            error,
        };
        let mut new_session = false;
        let content = match message.get(1).copied() {
            Some(message_type::PREKEY_MESSAGE) => {
                let msg = PrekeyMessage::from_bytes(message)?;
                if *msg.header().initiator() != listed {
                    return Err(SessionsError::SenderIdentityMismatch {
                        device: routing.sender_device,
                    });
                }
                let existing = peer
                    .sessions
                    .get_mut(&routing.sender_device)
                    .and_then(|s| s.with_base_key(msg.header().base_key()));
                if let Some(session) = existing {
                    session.decrypt(message, &ad).map_err(undecryptable)?
                } else {
                    let (session, content) = Session::respond(identity, prekeys, message, &ad)
                        .map_err(|error| SessionsError::Handshake {
                            device: routing.sender_device,
                            error,
                        })?;
                    peer.sessions
                        .entry(routing.sender_device)
                        .or_default()
                        .install_received(Entry {
                            session,
                            created: routing.session_created,
                            stale: false,
                            heal: routing.session_heal,
                        });
                    new_session = true;
                    content
                }
            }
            Some(message_type::RATCHET_MESSAGE) => {
                let set = peer
                    .sessions
                    .get_mut(&routing.sender_device)
                    .ok_or(undecryptable(RatchetError::UndecryptableHeader))?;
                let (content, _used): (Vec<u8>, Used) =
                    set.decrypt(message, &ad).map_err(undecryptable)?;
                content
            }
            Some(actual) => {
                return Err(SessionsError::Wire(WireError::UnexpectedType {
                    expected: message_type::RATCHET_MESSAGE,
                    actual,
                }));
            }
            None => {
                return Err(SessionsError::Wire(WireError::Truncated {
                    field: "message",
                }));
            }
        };
        Ok(Received {
            sender: routing.sender_account,
            sender_device: routing.sender_device,
            conversation: routing.conversation,
            kind: routing.kind,
            content,
            new_session,
            sender_list_newer: routing.sender_list_version > held_version,
            recipient_list_outdated: !is_own && routing.conversation_list_version < own_version,
        })
    }

    /// Skipped message keys held over all sessions (bounded by the ratchet's
    /// limits per session, spec §7.8).
    pub fn skipped_keys_held(&self) -> usize {
        core::iter::once(&self.own)
            .chain(self.contacts.values())
            .flat_map(|p| p.sessions.values())
            .map(SessionSet::skipped_keys_held)
            .sum()
    }

    /// Sessions held over all peer devices (active and archived).
    pub fn session_count(&self) -> usize {
        core::iter::once(&self.own)
            .chain(self.contacts.values())
            .flat_map(|p| p.sessions.values())
            .map(SessionSet::len)
            .sum()
    }

    /// Sessions held with one peer device (active and archived).
    pub fn sessions_with(&self, account: &Ed25519PublicKey, device: &DeviceId) -> usize {
        self.peer(account)
            .and_then(|p| p.sessions.get(device))
            .map_or(0, SessionSet::len)
    }

    /// The transcript hash of the active session with a peer device, if
    /// any: two devices that converged report the same value.
    pub fn active_session(
        &self,
        account: &Ed25519PublicKey,
        device: &DeviceId,
    ) -> Option<[u8; 32]> {
        self.peer(account)?
            .sessions
            .get(device)?
            .active
            .as_ref()
            .map(|a| *a.session.transcript_hash())
    }

    /// The secret intermediate values (header key, message key, plaintext
    /// header and body) of the last `encrypt` in the active session with a
    /// peer device: after [`SessionManager::encrypt`] or a heal, those of the
    /// message in that device's slot. Only with the `hazmat-test-vectors`
    /// feature, so published vectors can list them.
    #[cfg(feature = "hazmat-test-vectors")]
    pub fn hazmat_last_encryption(
        &self,
        account: &Ed25519PublicKey,
        device: &DeviceId,
    ) -> Option<&crate::ratchet::EncryptionTrace> {
        self.peer(account)?
            .sessions
            .get(device)?
            .active
            .as_ref()?
            .session
            .hazmat_last_encryption()
    }
}

/// Seals the payloads into as few envelopes as fit: one, unless the
/// envelope would exceed the wire limit, in which case the recipients are
/// halved until every part fits (at most `2 · recipients` seals).
fn seal_split<R: CryptoRng + ?Sized>(
    rng: &mut R,
    payloads: &[(DevicePublicIdentity, Vec<u8>)],
) -> Result<Vec<Vec<u8>>, SessionsError> {
    let refs: Vec<(&DevicePublicIdentity, &[u8])> =
        payloads.iter().map(|(i, p)| (i, p.as_slice())).collect();
    match Envelope::seal(rng, &refs) {
        Ok(e) => Ok(alloc::vec![e.to_bytes()]),
        Err(EnvelopeError::TooLarge { .. }) if payloads.len() > 1 => {
            let (a, b) = payloads.split_at(payloads.len() / 2);
            let mut out = seal_split(rng, a)?;
            out.extend(seal_split(rng, b)?);
            Ok(out)
        }
        Err(e) => Err(SessionsError::Envelope(e)),
    }
}
