//! The device object: one type a client holds per device, over a record
//! store it provides (spec chapter 10).
//!
//! | part | owns | spec |
//! |---|---|---|
//! | [`Device`] | one device's whole life cycle: account, identity, prekeys, device lists, contacts, sessions; bytes in, bytes out | §10.1 |
//! | [`RecordStore`], [`MemoryStore`] | the client's database as the device sees it: get, and one atomic conditional batch write | §10.2 |
//! | `records` (internal) | record names, keys, encryption at rest, generations | §10.3 |
//! | [`ClientError`], [`RecordError`] | what went wrong, and what to do | §10.6 |
//!
//! ```text
//!   create_account ──┐                       ┌── open (generation ≥ last seen)
//!   restore_account ─┤                       │
//!   LinkingDevice ───┼──► Device ◄───────────┤
//!     ::finish       │     │  send / receive / heal / contacts / link / revoke / maintain:
//!   migrate (§8.9) ──┘     │  each call loads the records it needs, works on them,
//!                          │  commits exactly the records it changed (one atomic,
//!                          │  conditional batch), and only then returns what to send
//!                          ▼
//!                 restore_from_backup (a store older than the last seen generation)
//! ```
//!
//! Every call that changes state commits before it returns anything to
//! send, so the rule of spec §8.6.4 (persist before sending) holds by
//! construction. Two devices opened on one store (an app and its
//! notification extension) never send from the same state: the second
//! commit conflicts, reloads, and retries (spec §10.5).
//!
//! ```
//! use session_ratchet::client::{Device, DeviceInfo, MemoryStore};
//! use session_ratchet::ratchet::StorageKey;
//! # use rand_chacha::{ChaCha20Rng, rand_core::SeedableRng};
//! # let rng = |n: u8| Box::new(ChaCha20Rng::from_seed([n; 32])); // clients pass an OS RNG
//! let (alice_key, bob_key) = (StorageKey::from_bytes([1; 32]), StorageKey::from_bytes([2; 32]));
//! let (mut alice, _alice_seed) =
//!     Device::create_account(Box::new(MemoryStore::new()), &alice_key, rng(1), DeviceInfo::new("phone"), 1_000)?;
//! let (mut bob, _bob_seed) =
//!     Device::create_account(Box::new(MemoryStore::new()), &bob_key, rng(2), DeviceInfo::new("laptop"), 1_000)?;
//!
//! // Each publishes its device list and prekey record; the other fetches them
//! // by Session ID.
//! let bob_id = bob.session_id();
//! alice.add_contact(&bob_id, &bob.device_list(), Some(&bob.prekey_record()?))?;
//! bob.add_contact(&alice.session_id(), &alice.device_list(), Some(&alice.prekey_record()?))?;
//!
//! for out in alice.send(&bob.account_key(), b"hi Bob", 1_001)? {
//!     // `out.mailboxes` are the accounts to post `out.bytes` to.
//!     let got = bob.receive(&out.bytes)?;
//!     assert_eq!(got.content, b"hi Bob");
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod error;
#[cfg(feature = "hazmat-test-vectors")]
mod hazmat;
mod logging;
mod records;
mod store;
#[cfg(test)]
mod tests;

pub use error::{ClientError, Corruption, RecordError, RecordKind};
#[cfg(feature = "hazmat-test-vectors")]
pub use hazmat::{
    hazmat_open_record, hazmat_record_key, hazmat_record_keys, hazmat_record_name,
    hazmat_seal_record,
};
pub use store::{CommitOutcome, MemoryStore, RecordStore, RecordWrite, StoreError};

use crate::account::{Account, SessionId, StoredAccount};
use crate::device::link::{
    AwaitingApproval, LinkGrant, LinkInitiator, LinkPayload, LinkRequest, LinkResponse,
    MAX_LINK_CONTACTS, PendingLink,
};
use crate::device::list::{
    ClientVersion, DeviceEntry, DeviceId, DeviceListDraft, Platform, SignedDeviceList,
    VerifiedDeviceList,
};
use crate::device::record::PrekeyRecord;
use crate::device::sas::Sas;
use crate::identity::{DeviceIdentity, Ed25519PublicKey, StoredIdentity};
use crate::prekey::{PrekeyStore, StoredPrekeys};
use crate::ratchet::StorageKey;
use crate::secret::RecoverySeed;
use crate::sessions::{ListChange, Outgoing, Received, SessionManager, SessionsError};
use crate::wire::{Reader, WireError, Writer};
use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
#[cfg(feature = "log")]
use logging::LogId;
use logging::event;
use rand_core::CryptoRng;
use records::{Name, RecordKeys};
use zeroize::Zeroizing;

/// How often a call retries after another process committed first.
pub const MAX_COMMIT_ATTEMPTS: usize = 4;
/// Age after which [`Device::maintain`] replaces the signed X25519 prekey
/// (seconds; 7 days). The previous two stay valid for late first messages
/// ([`crate::prekey::MAX_SIGNED_PREKEYS`]), so a key is deleted at most 21
/// days after it was published.
pub const SIGNED_PREKEY_ROTATION_SECS: u64 = 7 * 24 * 3600;
/// Age after which [`Device::maintain`] replaces the last-resort ML-KEM
/// prekey (seconds; 7 days; the same 21-day bound on its life, spec §2.2).
pub const LAST_RESORT_ROTATION_SECS: u64 = 7 * 24 * 3600;
/// Contacts kept in memory at once; older ones are dropped (their records
/// stay in the store and load again when needed).
pub const MAX_CACHED_CONTACTS: usize = 256;

/// Object type of the head record's plain encoding (spec §10.3).
const TYPE_HEAD: u8 = 0x1A;
/// Object type of the contact index's plain encoding (spec §10.3).
const TYPE_CONTACT_INDEX: u8 = 0x1D;
/// Head flag: the account key is held.
const FLAG_ACCOUNT_HELD: u8 = 0x01;

/// How this device describes itself in its account's device list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceInfo {
    /// The platform.
    pub platform: Platform,
    /// A name the user recognises ("Pixel 9"); at most
    /// [`crate::device::list::MAX_DESCRIPTION_LEN`] bytes are kept.
    pub description: String,
    /// The client's version.
    pub client_version: ClientVersion,
}

impl DeviceInfo {
    /// A device of unknown platform and version 0.0.0 with a name.
    pub fn new(description: &str) -> Self {
        Self {
            platform: Platform::Unspecified,
            description: String::from(description),
            client_version: ClientVersion {
                major: 0,
                minor: 0,
                patch: 0,
            },
        }
    }
}

/// One envelope to post, and the accounts whose mailboxes it goes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutgoingEnvelope {
    /// The envelope (wire type `0x07`).
    pub bytes: Vec<u8>,
    /// Post it to each of these accounts' mailboxes (the conversation's
    /// account, and this account's when it has other devices).
    pub mailboxes: Vec<Ed25519PublicKey>,
}

/// What [`Device::heal`] produced.
#[derive(Debug)]
#[non_exhaustive]
pub struct Healed {
    /// The healing notices to post, committed.
    pub envelopes: Vec<OutgoingEnvelope>,
    /// Accounts that could not be healed, with why; nothing changed for them.
    pub failed: Vec<(Ed25519PublicKey, ClientError)>,
}

/// What a finished link gives the new device.
#[derive(Debug)]
#[non_exhaustive]
pub struct Linked {
    /// The new device, committed to its store.
    pub device: Device,
    /// The contacts the approving device talks to: fetch each one's device
    /// list and prekey record and [`Device::add_contact`] it.
    pub contacts: Vec<Ed25519PublicKey>,
}

/// What approving a link gives the existing device.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LinkApproved {
    /// The sealed payload for the new device.
    pub payload: Vec<u8>,
    /// The account's new device list (listing the new device): publish it.
    pub device_list: Vec<u8>,
}

/// The existing device's side of a link in progress: show [`LinkApproval::sas`]
/// and ask the user whether the new device shows the same emoji.
pub struct LinkApproval(PendingLink);

impl fmt::Debug for LinkApproval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinkApproval").finish_non_exhaustive()
    }
}

impl LinkApproval {
    /// The emoji SAS to show.
    pub fn sas(&self) -> &Sas {
        self.0.sas()
    }

    /// The requesting device's description, to show next to the SAS.
    pub fn description(&self) -> &str {
        self.0.request().description()
    }
}

/// A new device joining an account (spec §8.5), before it has a store:
/// send [`LinkingDevice::request`] to an existing device, show the SAS of
/// its response, and [`LinkingDevice::finish`] with the payload once the
/// user has confirmed on the existing device.
pub struct LinkingDevice {
    rng: Option<Box<dyn CryptoRng + Send>>,
    identity: Option<DeviceIdentity>,
    initiator: LinkInitiator,
    awaiting: Option<AwaitingApproval>,
    request: Vec<u8>,
}

impl fmt::Debug for LinkingDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinkingDevice")
            .field("sas_shown", &self.awaiting.is_some())
            .finish_non_exhaustive()
    }
}

impl LinkingDevice {
    /// Starts a link: a fresh identity and the request to show as a QR code
    /// (or send to the account's mailbox).
    pub fn start(mut rng: Box<dyn CryptoRng + Send>, info: &DeviceInfo) -> Self {
        let identity = DeviceIdentity::generate(&mut *rng);
        let (initiator, request) = LinkInitiator::start(
            &mut *rng,
            &identity,
            info.platform,
            &info.description,
            info.client_version,
        );
        Self {
            rng: Some(rng),
            identity: Some(identity),
            initiator,
            awaiting: None,
            request: request.to_bytes(),
        }
    }

    /// The link request to hand to an existing device.
    pub fn request(&self) -> &[u8] {
        &self.request
    }

    /// Takes the existing device's response and returns the SAS to show.
    /// A forged response fails here or gives a different SAS; the link
    /// stays open for the genuine one.
    pub fn receive_response(&mut self, response: &[u8]) -> Result<&Sas, ClientError> {
        let response = LinkResponse::from_bytes(response)?;
        let awaiting = self.initiator.receive_response(&response)?;
        Ok(self.awaiting.insert(awaiting).sas())
    }

    /// Opens the payload of the approving device and becomes a device of
    /// the account, committed to `store` (which must be empty). On error
    /// nothing is written and another payload may be tried.
    pub fn finish(
        &mut self,
        store: Box<dyn RecordStore>,
        storage_key: &StorageKey,
        payload: &[u8],
        now: u64,
    ) -> Result<Linked, ClientError> {
        let awaiting = self.awaiting.as_ref().ok_or(ClientError::LinkOutOfOrder)?;
        let linked = awaiting.open_payload(&LinkPayload::from_bytes(payload)?)?;
        let (Some(identity), Some(rng)) = (self.identity.take(), self.rng.take()) else {
            return Err(ClientError::LinkOutOfOrder);
        };
        let result = Device::create(
            store,
            storage_key,
            rng,
            identity,
            linked.device_id,
            linked.list,
            linked.account,
            now,
        );
        match result {
            Ok(device) => Ok(Linked {
                device,
                contacts: linked.contacts,
            }),
            Err((error, parts)) => {
                if let Some(parts) = parts {
                    let (rng, identity) = *parts;
                    self.rng = Some(rng);
                    self.identity = Some(identity);
                }
                Err(error)
            }
        }
    }
}

/// The head record's content (spec §10.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Head {
    device_id: DeviceId,
    account: [u8; 32],
    account_held: bool,
    signed_rotated_at: u64,
    last_resort_rotated_at: u64,
    anchors: Anchors,
}

/// The generation each rarely written record was last written at (spec
/// §10.4): a record found older than its anchor was rolled back alone.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Anchors {
    identity: u64,
    account: u64,
    prekeys: u64,
    index: u64,
    own_peer: u64,
}

impl Head {
    fn encode(&self) -> Vec<u8> {
        let mut w = Writer::start(TYPE_HEAD, 2 + 32 + 32 + 1 + 16 + 40);
        w.bytes(self.device_id.as_bytes());
        w.bytes(&self.account);
        w.u8(if self.account_held {
            FLAG_ACCOUNT_HELD
        } else {
            0
        });
        w.u64(self.signed_rotated_at);
        w.u64(self.last_resort_rotated_at);
        let a = &self.anchors;
        for g in [a.identity, a.account, a.prekeys, a.index, a.own_peer] {
            w.u64(g);
        }
        w.finish()
    }

    fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::start(bytes, TYPE_HEAD)?;
        let device_id = DeviceId::from_bytes(r.array::<32>("device id")?);
        let account = r.array::<32>("account")?;
        let flags = r.flags(FLAG_ACCOUNT_HELD, "head flags")?;
        let head = Self {
            device_id,
            account,
            account_held: flags & FLAG_ACCOUNT_HELD != 0,
            signed_rotated_at: r.u64("signed prekey rotated")?,
            last_resort_rotated_at: r.u64("last-resort prekey rotated")?,
            anchors: Anchors {
                identity: r.u64("identity generation")?,
                account: r.u64("account generation")?,
                prekeys: r.u64("prekeys generation")?,
                index: r.u64("index generation")?,
                own_peer: r.u64("own peer generation")?,
            },
        };
        r.finish()?;
        Ok(head)
    }
}

/// The contacts, each with the generation its peer record was last
/// written at (spec §10.3.1).
type Contacts = BTreeMap<[u8; 32], u64>;

fn encode_index(contacts: &Contacts) -> Vec<u8> {
    let mut w = Writer::start(TYPE_CONTACT_INDEX, 2 + 2 + 40 * contacts.len());
    w.u16(u16::try_from(contacts.len()).unwrap_or(u16::MAX));
    for (c, g) in contacts {
        w.bytes(c);
        w.u64(*g);
    }
    w.finish()
}

fn decode_index(bytes: &[u8]) -> Result<Contacts, WireError> {
    let mut r = Reader::start(bytes, TYPE_CONTACT_INDEX)?;
    let n = Reader::check_count(
        r.u16("contact count")?.into(),
        crate::sessions::MAX_CONTACTS,
        "contacts",
    )?;
    let mut out = Contacts::new();
    let mut last: Option<[u8; 32]> = None;
    for _ in 0..n {
        let key = r.array::<32>("contact")?;
        if last.is_some_and(|l| l >= key) {
            return Err(WireError::NotCanonical { field: "contacts" });
        }
        last = Some(key);
        out.insert(key, r.u64("peer generation")?);
    }
    r.finish()?;
    Ok(out)
}

/// A record to write in the next commit: its name and plain encoding
/// (`None`: delete it).
type Pending = (Name, Option<Zeroizing<Vec<u8>>>);

/// What loading a store gives.
struct Loaded {
    generation: u64,
    head: Head,
    head_bytes: Vec<u8>,
    account: Option<Account>,
    manager: SessionManager,
    contacts: Contacts,
}

/// One device of an account: the object a client holds (spec §10.1).
///
/// It owns the account key (if this device holds it), the device identity,
/// the prekeys, the device lists of its own account and of every contact,
/// and every session, all kept as separate encrypted records in the
/// client's [`RecordStore`]. It loads a contact's records only when a call
/// needs them, and every call commits exactly the records it changed before
/// it returns anything to send.
///
/// Randomness comes from the RNG given at creation (an OS RNG in a client,
/// a seeded one in tests). Times (`now`) are seconds since the Unix epoch;
/// the crate reads no clock.
pub struct Device {
    store: Box<dyn RecordStore>,
    rng: Box<dyn CryptoRng + Send>,
    keys: RecordKeys,
    head_key: Vec<u8>,
    generation: u64,
    head: Head,
    head_bytes: Option<Vec<u8>>,
    account: Option<Account>,
    manager: SessionManager,
    contacts: Contacts,
    /// Memory may be ahead of the store (a failed commit): reload first.
    stale: bool,
    /// Contacts kept in memory ([`MAX_CACHED_CONTACTS`]; smaller in tests).
    cache_limit: usize,
}

impl fmt::Debug for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Device")
            .field("device_id", &self.head.device_id)
            .field("generation", &self.generation)
            .field("contacts", &self.contacts.len())
            .field("holds_account_key", &self.account.is_some())
            .finish_non_exhaustive()
    }
}

/// Parts handed back when creating a device fails before anything was
/// committed, so a linking device can try again.
type Returned = Option<Box<(Box<dyn CryptoRng + Send>, DeviceIdentity)>>;

impl Device {
    /// Creates a new account with this device as its first device, in an
    /// empty `store`. Returns the account's recovery seed: show it once as
    /// the recovery phrase (feature `session-v2`:
    /// [`crate::session_v2::mnemonic::encode_recovery_seed`]) and do not
    /// keep it. Publish [`Device::device_list`] and [`Device::prekey_record`].
    pub fn create_account(
        store: Box<dyn RecordStore>,
        storage_key: &StorageKey,
        mut rng: Box<dyn CryptoRng + Send>,
        info: DeviceInfo,
        now: u64,
    ) -> Result<(Self, RecoverySeed), ClientError> {
        let (account, seed) = Account::generate(&mut *rng);
        let identity = DeviceIdentity::generate(&mut *rng);
        let device_id = DeviceId::generate(&mut *rng);
        let mut draft = DeviceListDraft::first(&account);
        draft.add_device(entry(device_id, &identity, &info, now))?;
        let list =
            VerifiedDeviceList::trust_first_with_key(draft.sign(&account)?, &account.public_key())?;
        let device = Self::create(
            store,
            storage_key,
            rng,
            identity,
            device_id,
            list,
            Some(account),
            now,
        )
        .map_err(|(e, _)| e)?;
        Ok((device, seed))
    }

    /// Restores an account onto this new device from its recovery seed
    /// alone, when every earlier device is lost (spec §10.1): a fresh
    /// identity, the account's next device list (signed here) adding this
    /// device, no sessions. `current_list` is the account's device list as
    /// fetched from the network (`None` only if the account never
    /// published one). Publish [`Device::device_list`] and
    /// [`Device::prekey_record`], add the contacts again, and
    /// [`Device::revoke`] the lost devices when the user says so.
    #[allow(clippy::too_many_arguments)]
    pub fn restore_account(
        store: Box<dyn RecordStore>,
        storage_key: &StorageKey,
        mut rng: Box<dyn CryptoRng + Send>,
        seed: &RecoverySeed,
        current_list: Option<&[u8]>,
        info: DeviceInfo,
        now: u64,
    ) -> Result<Self, ClientError> {
        let account = Account::from_recovery_seed(seed);
        let identity = DeviceIdentity::generate(&mut *rng);
        let device_id = DeviceId::generate(&mut *rng);
        let mut draft = match current_list {
            Some(bytes) => VerifiedDeviceList::trust_first_with_key(
                SignedDeviceList::from_bytes(bytes)?,
                &account.public_key(),
            )?
            .next_draft()?,
            None => DeviceListDraft::first(&account),
        };
        draft.add_device(entry(device_id, &identity, &info, now))?;
        let list =
            VerifiedDeviceList::trust_first_with_key(draft.sign(&account)?, &account.public_key())?;
        Self::create(
            store,
            storage_key,
            rng,
            identity,
            device_id,
            list,
            Some(account),
            now,
        )
        .map_err(|(e, _)| e)
    }

    /// [`Device::restore_account`] from a 13- or 25-word recovery phrase.
    #[cfg(feature = "session-v2")]
    #[allow(clippy::too_many_arguments)]
    pub fn restore_account_from_phrase(
        store: Box<dyn RecordStore>,
        storage_key: &StorageKey,
        rng: Box<dyn CryptoRng + Send>,
        phrase: &str,
        current_list: Option<&[u8]>,
        info: DeviceInfo,
        now: u64,
    ) -> Result<Self, ClientError> {
        use crate::session_v2::mnemonic::{DecodedSeed, decode};
        match decode(phrase).map_err(ClientError::Phrase)? {
            DecodedSeed::Recovery(seed) => {
                Self::restore_account(store, storage_key, rng, &seed, current_list, info, now)
            }
            // A 25-word phrase is a full Ed25519 seed; Session accounts use
            // 13 words. Not supported here: the account would differ.
            DecodedSeed::Full(_) => Err(ClientError::Phrase(
                crate::session_v2::mnemonic::MnemonicError::WrongWordCount { got: 25 },
            )),
        }
    }

    /// Builds a device from its parts and commits every record (the store
    /// must be empty).
    #[allow(clippy::too_many_arguments)]
    fn create(
        mut store: Box<dyn RecordStore>,
        storage_key: &StorageKey,
        mut rng: Box<dyn CryptoRng + Send>,
        identity: DeviceIdentity,
        device_id: DeviceId,
        list: VerifiedDeviceList,
        account: Option<Account>,
        now: u64,
    ) -> Result<Self, (ClientError, Returned)> {
        let mut keys = RecordKeys::derive(storage_key);
        keys.set_owner(&device_id);
        let head_key = keys.key(&Name::fixed(RecordKind::Head));
        match store.get(&head_key) {
            Ok(None) => {}
            Ok(Some(_)) => {
                return Err((
                    RecordError::NotEmpty.into(),
                    Some(Box::new((rng, identity))),
                ));
            }
            Err(e) => return Err((e.into(), Some(Box::new((rng, identity))))),
        }
        let prekeys = PrekeyStore::new(&mut *rng, &identity);
        let head = Head {
            device_id,
            account: list.list().account().to_bytes(),
            account_held: account.is_some(),
            signed_rotated_at: now,
            last_resort_rotated_at: now,
            anchors: Anchors::default(),
        };
        let manager = SessionManager::new(identity, device_id, list, prekeys)
            .map_err(|e| (e.into(), None))?;
        let mut device = Self {
            store,
            rng,
            keys,
            head_key,
            generation: 0,
            head,
            head_bytes: None,
            account,
            manager,
            contacts: Contacts::new(),
            stale: false,
            cache_limit: MAX_CACHED_CONTACTS,
        };
        let mut writes = device.base_writes();
        writes.push(device.peer_write(&device.head.account));
        device.commit(writes).map_err(|e| (e, None))?;
        Ok(device)
    }

    /// Opens the device in `store`. `min_generation` is the last
    /// [`Device::generation`] the client saw (kept, for example, in the
    /// platform keystore; 0 if unknown): a store older than that is
    /// [`RecordError::RolledBack`]. Reads the head, identity, prekeys,
    /// contact index and this account's own records; contacts load later,
    /// when a call needs them.
    pub fn open(
        mut store: Box<dyn RecordStore>,
        storage_key: &StorageKey,
        rng: Box<dyn CryptoRng + Send>,
        min_generation: u64,
    ) -> Result<Self, ClientError> {
        let (keys, head_key, loaded) = load_store(&mut *store, storage_key)?;
        if loaded.generation < min_generation {
            event!(
                warn,
                "store at generation {} is older than generation {} seen: rolled back",
                loaded.generation,
                min_generation
            );
            return Err(RecordError::RolledBack {
                found: loaded.generation,
                expected: min_generation,
            }
            .into());
        }
        event!(
            info,
            "opened device {} at generation {} with {} contacts",
            LogId::of(&keys, loaded.head.device_id.as_bytes()),
            loaded.generation,
            loaded.contacts.len()
        );
        Ok(Self::from_loaded(store, rng, keys, head_key, loaded))
    }

    fn from_loaded(
        store: Box<dyn RecordStore>,
        rng: Box<dyn CryptoRng + Send>,
        keys: RecordKeys,
        head_key: Vec<u8>,
        l: Loaded,
    ) -> Self {
        Self {
            store,
            rng,
            keys,
            head_key,
            generation: l.generation,
            head: l.head,
            head_bytes: Some(l.head_bytes),
            account: l.account,
            manager: l.manager,
            contacts: l.contacts,
            stale: false,
            cache_limit: MAX_CACHED_CONTACTS,
        }
    }

    /// Opens a store that is older than the state this device last had —
    /// a restored backup, a rolled-back database, or a store that
    /// [`Device::open`] refused as [`RecordError::RolledBack`] — without
    /// ever sending in its sessions again (spec §8.8): every session becomes
    /// stale, every prekey is replaced, and the generation moves past
    /// `min_generation`. Then publish [`Device::prekey_record`] and call
    /// [`Device::heal`].
    pub fn restore_from_backup(
        mut store: Box<dyn RecordStore>,
        storage_key: &StorageKey,
        rng: Box<dyn CryptoRng + Send>,
        min_generation: u64,
        now: u64,
    ) -> Result<Self, ClientError> {
        let (keys, head_key, loaded) = load_store(&mut *store, storage_key)?;
        // Already restored (by another process, or an earlier attempt): the
        // store is not older than what the client saw; restoring again
        // would replace prekeys that may already be published.
        let done = min_generation > 0 && loaded.generation >= min_generation;
        let mut device = Self::from_loaded(store, rng, keys, head_key, loaded);
        if done {
            return Ok(device);
        }
        // The generation jumps, so the client's last-seen value is passed.
        device.generation = device.generation.max(min_generation);
        let contacts: Vec<[u8; 32]> = device.contacts.keys().copied().collect();
        let own = device.head.account;
        for account in core::iter::once(own).chain(contacts) {
            if account != own {
                device.load_peer(&account)?;
            }
            device.manager.mark_all_stale();
            let writes = device.session_writes(&account);
            device.commit(writes)?;
            if account != own {
                device.manager.unload_contact(&account);
            }
        }
        let identity = device.manager.identity();
        let mut prekeys = PrekeyStore::from_stored(&device.manager.prekeys().to_stored())
            .map_err(ClientError::Prekey)?;
        prekeys.restart_after_restore(&mut *device.rng, identity)?;
        *device.manager.prekeys_mut() = prekeys;
        device.head.signed_rotated_at = now;
        device.head.last_resort_rotated_at = now;
        let writes = alloc::vec![device.prekeys_write()];
        device.commit(writes)?;
        Ok(device)
    }

    /// Moves a device stored in the single-blob format of spec §8.9
    /// ([`crate::sessions::StoredDevice`]) into `store` as records. `account`
    /// is the account key if the client kept it beside the blob. Rotation
    /// times start at `now`.
    pub fn migrate(
        store: Box<dyn RecordStore>,
        storage_key: &StorageKey,
        rng: Box<dyn CryptoRng + Send>,
        blob: &crate::sessions::StoredDevice,
        account: Option<Account>,
        now: u64,
    ) -> Result<Self, ClientError> {
        let manager = SessionManager::from_stored(blob)?;
        if let Some(a) = &account
            && a.public_key() != manager.account()
        {
            return Err(ClientError::NoAccountKey);
        }
        let mut keys = RecordKeys::derive(storage_key);
        keys.set_owner(manager.device_id());
        let head_key = keys.key(&Name::fixed(RecordKind::Head));
        let mut store = store;
        if store.get(&head_key)?.is_some() {
            return Err(RecordError::NotEmpty.into());
        }
        let contacts: Contacts = manager
            .contact_keys_loaded()
            .into_iter()
            .map(|k| (k, 0))
            .collect();
        let head = Head {
            device_id: *manager.device_id(),
            account: manager.account().to_bytes(),
            account_held: account.is_some(),
            signed_rotated_at: now,
            last_resort_rotated_at: now,
            anchors: Anchors::default(),
        };
        let mut device = Self {
            store,
            rng,
            keys,
            head_key,
            generation: 0,
            head,
            head_bytes: None,
            account,
            manager,
            contacts,
            stale: false,
            cache_limit: MAX_CACHED_CONTACTS,
        };
        let mut writes = device.base_writes();
        let accounts: Vec<[u8; 32]> = core::iter::once(device.head.account)
            .chain(device.contacts.keys().copied())
            .collect();
        for a in &accounts {
            writes.push(device.peer_write(a));
            writes.extend(device.session_writes(a));
        }
        device.commit(writes)?;
        for a in accounts.iter().skip(1) {
            device.manager.unload_contact(a);
        }
        Ok(device)
    }

    // ---- what a client reads -------------------------------------------

    /// The generation of the last commit: it only moves forward. Keep the
    /// latest value where a rollback of the store cannot reach it (the
    /// platform keystore) and pass it to [`Device::open`].
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// This device's id in its account's device list.
    pub fn device_id(&self) -> DeviceId {
        self.head.device_id
    }

    /// The account's key.
    pub fn account_key(&self) -> Ed25519PublicKey {
        self.manager.account()
    }

    /// The account's Session ID (what users compare and share).
    pub fn session_id(&self) -> SessionId {
        SessionId::from_account_key(&self.manager.account()).unwrap_or_else(|| {
            SessionId::from_x25519(&crate::dh::X25519PublicKey::from_bytes([0; 32]))
        })
    }

    /// Whether this device holds the account key (it can link and revoke).
    pub fn holds_account_key(&self) -> bool {
        self.account.is_some()
    }

    /// Whether this device was removed from its account.
    pub fn is_revoked(&self) -> bool {
        self.manager.is_revoked()
    }

    /// The account's device list as this device holds it: publish it after
    /// creating, linking, restoring or revoking.
    pub fn device_list(&self) -> Vec<u8> {
        self.manager.own_list().list().to_bytes()
    }

    /// The contacts' account keys, ascending.
    pub fn contacts(&self) -> Vec<Ed25519PublicKey> {
        self.contacts
            .keys()
            .filter_map(|k| Ed25519PublicKey::from_bytes(k).ok())
            .collect()
    }

    /// The account's prekey record to publish (spec §8.4): this device's
    /// bundle and those held for its other devices. Draws the slot padding.
    pub fn prekey_record(&mut self) -> Result<Vec<u8>, ClientError> {
        let mut bundles = alloc::vec![self.manager.bundle()?];
        bundles.extend(self.manager.own_bundles());
        let record = PrekeyRecord::build(&mut *self.rng, self.manager.own_list(), &bundles)?;
        Ok(record.to_bytes())
    }

    /// The transcript hash of the active session with a peer device, if
    /// any (two devices that converged report the same value). Loads the
    /// peer's records if needed.
    pub fn active_session(
        &mut self,
        account: &Ed25519PublicKey,
        device: &DeviceId,
    ) -> Result<Option<[u8; 32]>, ClientError> {
        self.run(|d| {
            d.load_peer(&account.to_bytes())?;
            Ok(d.manager.active_session(account, device))
        })
    }

    // ---- what a client does --------------------------------------------

    /// Encrypts `content` for every device of `conversation` (a contact, or
    /// this account for a note to self) and this account's other devices
    /// (spec §8.6.4). Commits first; returns the envelopes to post.
    pub fn send(
        &mut self,
        conversation: &Ed25519PublicKey,
        content: &[u8],
        now: u64,
    ) -> Result<Vec<OutgoingEnvelope>, ClientError> {
        let conv = conversation.to_bytes();
        self.run(|d| {
            d.require_peer(&conv)?;
            let out = d
                .manager
                .encrypt(&mut *d.rng, conversation, content, now)
                .inspect_err(|_| d.stale = true)?;
            let mut writes = d.session_writes(&conv);
            if conv != d.head.account {
                writes.extend(d.session_writes(&d.head.account));
            }
            d.commit(writes)?;
            event!(
                debug,
                "sent to {}: {} envelope(s), {} new session(s)",
                LogId::of(&d.keys, &conv),
                out.envelopes.len(),
                out.sessions_started
            );
            Ok(d.outgoing(out, conversation, true))
        })
    }

    /// Decrypts one envelope from a mailbox (spec §8.6.5). Commits the
    /// session it used (and the prekeys, for a new session) before
    /// returning the content. On error nothing changed.
    pub fn receive(&mut self, envelope: &[u8]) -> Result<Received, ClientError> {
        let result = self.receive_inner(envelope);
        match &result {
            Ok(_r) => event!(
                debug,
                "received {:?} from {}/{} (new session: {})",
                _r.kind,
                LogId::of(&self.keys, &_r.sender.to_bytes()),
                LogId::of(&self.keys, _r.sender_device.as_bytes()),
                _r.new_session
            ),
            Err(_e) => event!(
                info,
                "envelope of {} bytes not decrypted: {}",
                envelope.len(),
                logging::error_kind(_e)
            ),
        }
        result
    }

    fn receive_inner(&mut self, envelope: &[u8]) -> Result<Received, ClientError> {
        self.run(|d| {
            let payload = d.manager.open_slot(envelope)?;
            let (sender, conversation) = SessionManager::slot_accounts(&payload)?;
            for account in [sender, conversation] {
                let key = account.to_bytes();
                if key != d.head.account {
                    d.load_peer(&key)?;
                }
            }
            let received = d.manager.decrypt_slot(&payload)?;
            let sender_key = received.sender.to_bytes();
            let mut writes = alloc::vec![d.set_write(&sender_key, &received.sender_device)];
            if received.new_session {
                writes.push(d.prekeys_write());
            }
            d.commit(writes)?;
            Ok(received)
        })
    }

    /// Starts fresh sessions with every device of every contact (and this
    /// account's other devices) that has none this device may send in, with
    /// a healing notice each (spec §8.8). Call it after
    /// [`Device::restore_from_backup`]. Each account is healed and committed
    /// on its own: one that fails (no prekeys held for a device, a store
    /// error) is listed in [`Healed::failed`] with its sessions unchanged,
    /// and the others' envelopes are returned; call `heal` again after
    /// acting on the errors.
    pub fn heal(&mut self, now: u64) -> Healed {
        let accounts: Vec<[u8; 32]> = core::iter::once(self.head.account)
            .chain(self.contacts.keys().copied())
            .collect();
        let mut out = Healed {
            envelopes: Vec::new(),
            failed: Vec::new(),
        };
        for account in accounts {
            let Ok(key) = Ed25519PublicKey::from_bytes(&account) else {
                continue;
            };
            let sent = self.run(|d| {
                d.require_peer(&account)?;
                let Some(o) = d
                    .manager
                    .heal(&mut *d.rng, &key, now)
                    .inspect_err(|_| d.stale = true)?
                else {
                    return Ok(Vec::new());
                };
                let writes = d.session_writes(&account);
                d.commit(writes)?;
                Ok(d.outgoing(o, &key, false))
            });
            match sent {
                Ok(sent) => out.envelopes.extend(sent),
                Err(e) => out.failed.push((key, e)),
            }
        }
        out
    }

    /// Adds a contact from its device list as fetched from the network,
    /// checked against the Session ID the user gave (spec §8.2.4), and its
    /// prekey record if fetched too. A known contact's list is taken as an
    /// update instead. Returns the contact's account key.
    pub fn add_contact(
        &mut self,
        session_id: &SessionId,
        device_list: &[u8],
        prekey_record: Option<&[u8]>,
    ) -> Result<Ed25519PublicKey, ClientError> {
        let list = SignedDeviceList::from_bytes(device_list)?;
        let verified = VerifiedDeviceList::trust_first(list, session_id)?;
        let account = *verified.list().account();
        let key = account.to_bytes();
        if key == self.head.account || self.contacts.contains_key(&key) {
            self.update_contact(device_list, &[], prekey_record)?;
            return Ok(account);
        }
        if self.contacts.len() >= crate::sessions::MAX_CONTACTS {
            return Err(SessionsError::LimitExceeded.into());
        }
        let record = prekey_record.map(PrekeyRecord::from_bytes).transpose()?;
        self.run(|d| {
            d.manager
                .add_contact(verified.clone())
                .inspect_err(|_| d.stale = true)?;
            if let Some(r) = &record {
                d.manager
                    .add_prekey_record(&account, r)
                    .inspect_err(|_| d.stale = true)?;
            }
            d.contacts.insert(key, 0);
            let writes = alloc::vec![d.peer_write(&key), d.index_write()];
            d.commit(writes).inspect_err(|_| {
                d.contacts.remove(&key);
            })?;
            Ok(account)
        })
    }

    /// Offers a newer device list (of a contact or of this account) and,
    /// optionally, the account's current prekey record (spec §8.2.4, §8.4).
    /// `intermediates` are the lists between the held and the offered one
    /// if the client fetched them. Revoked devices' sessions are deleted.
    pub fn update_contact(
        &mut self,
        device_list: &[u8],
        intermediates: &[Vec<u8>],
        prekey_record: Option<&[u8]>,
    ) -> Result<ListChange, ClientError> {
        let offered = SignedDeviceList::from_bytes(device_list)?;
        let between = intermediates
            .iter()
            .map(|b| SignedDeviceList::from_bytes(b))
            .collect::<Result<Vec<_>, _>>()?;
        let record = prekey_record.map(PrekeyRecord::from_bytes).transpose()?;
        let account = *offered.account();
        let key = account.to_bytes();
        self.run(|d| {
            d.require_peer(&key)?;
            let change = d
                .manager
                .update_device_list(&offered, &between)
                .inspect_err(|_| d.stale = true)?;
            if let Some(r) = &record {
                d.manager
                    .add_prekey_record(&account, r)
                    .inspect_err(|_| d.stale = true)?;
            }
            let mut writes = alloc::vec![d.peer_write(&key)];
            writes.extend(
                change
                    .removed
                    .iter()
                    .map(|dev| (Name::sessions(&key, dev), None)),
            );
            d.commit(writes)?;
            Ok(change)
        })
    }

    /// Revokes one of this account's devices (spec §8.3): signs the next
    /// device list, deletes the sessions with the device, and returns the
    /// list to publish. Needs the account key.
    pub fn revoke(&mut self, device: &DeviceId, now: u64) -> Result<Vec<u8>, ClientError> {
        let own = self.head.account;
        self.run(|d| {
            let account = d.account.as_ref().ok_or(ClientError::NoAccountKey)?;
            let list = d
                .manager
                .revoke_device(account, device, now)
                .inspect_err(|_| d.stale = true)?;
            let writes = alloc::vec![d.peer_write(&own), (Name::sessions(&own, device), None)];
            d.commit(writes)?;
            Ok(list.to_bytes())
        })
    }

    /// Replaces prekeys that are due (every [`SIGNED_PREKEY_ROTATION_SECS`]
    /// and [`LAST_RESORT_ROTATION_SECS`]). Call it at start-up and daily;
    /// when it returns a prekey record, publish it. The account record
    /// carries no one-time prekeys (spec §8.4), so there is nothing to
    /// replenish.
    pub fn maintain(&mut self, now: u64) -> Result<Option<Vec<u8>>, ClientError> {
        let rotated = self.run(|d| {
            // A rotation time in the future (a clock that jumped) counts as due,
            // so one wrong clock cannot freeze rotation.
            let due = |at: u64, every: u64| at > now || now >= at.saturating_add(every);
            let signed_due = due(d.head.signed_rotated_at, SIGNED_PREKEY_ROTATION_SECS);
            let kem_due = due(d.head.last_resort_rotated_at, LAST_RESORT_ROTATION_SECS);
            if !signed_due && !kem_due {
                return Ok(false);
            }
            let identity = d.manager.identity();
            let mut prekeys = PrekeyStore::from_stored(&d.manager.prekeys().to_stored())?;
            if signed_due {
                prekeys.rotate_signed_prekey(&mut *d.rng, identity)?;
                d.head.signed_rotated_at = now;
            }
            if kem_due {
                prekeys.rotate_last_resort_prekey(&mut *d.rng, identity)?;
                d.head.last_resort_rotated_at = now;
            }
            *d.manager.prekeys_mut() = prekeys;
            let writes = alloc::vec![d.prekeys_write()];
            d.commit(writes).inspect_err(|_| d.stale = true)?;
            Ok(true)
        })?;
        if rotated {
            self.prekey_record().map(Some)
        } else {
            Ok(None)
        }
    }

    /// Answers a new device's link request (spec §8.5) and returns the
    /// response to send back; show [`LinkApproval::sas`]. Needs the account
    /// key. Changes nothing.
    pub fn respond_to_link(
        &mut self,
        request: &[u8],
    ) -> Result<(LinkApproval, Vec<u8>), ClientError> {
        let account = self.account.as_ref().ok_or(ClientError::NoAccountKey)?;
        let request = LinkRequest::from_bytes(request)?;
        let (pending, response) =
            PendingLink::respond(&mut *self.rng, self.manager.identity(), account, &request)?;
        Ok((LinkApproval(pending), response.to_bytes()))
    }

    /// The user confirmed that both devices show the same SAS: signs the
    /// next device list adding the new device, commits it, and returns the
    /// payload for the new device and the list to publish. With
    /// `share_account_key` the new device can link and revoke too
    /// (Session's model).
    pub fn approve_link(
        &mut self,
        approval: LinkApproval,
        now: u64,
        share_account_key: bool,
    ) -> Result<LinkApproved, ClientError> {
        if self.stale {
            self.reload()?;
        }
        let account = self.account.as_ref().ok_or(ClientError::NoAccountKey)?;
        let contacts: Vec<Ed25519PublicKey> = self
            .contacts()
            .into_iter()
            .take(MAX_LINK_CONTACTS)
            .collect();
        let grant = if share_account_key {
            LinkGrant::ShareAccountSeed
        } else {
            LinkGrant::WithholdAccountSeed
        };
        let (payload, list) = approval
            .0
            .approve(
                &mut *self.rng,
                account,
                self.manager.own_list(),
                now,
                grant,
                &contacts,
            )
            .map_err(|e| ClientError::Link(e.error))?;
        let own = self.head.account;
        self.run(|d| {
            d.manager
                .update_device_list(&list, &[])
                .inspect_err(|_| d.stale = true)?;
            let writes = alloc::vec![d.peer_write(&own)];
            d.commit(writes)?;
            Ok(())
        })?;
        Ok(LinkApproved {
            payload: payload.to_bytes(),
            device_list: list.to_bytes(),
        })
    }

    // ---- records ---------------------------------------------------------

    /// Runs one call: retried from freshly loaded records when another
    /// process committed first (at most [`MAX_COMMIT_ATTEMPTS`] times).
    fn run<T>(
        &mut self,
        mut op: impl FnMut(&mut Self) -> Result<T, ClientError>,
    ) -> Result<T, ClientError> {
        self.trim_cache();
        for _attempt in 1..=MAX_COMMIT_ATTEMPTS {
            if self.stale {
                self.reload()?;
            }
            match op(self) {
                Err(ClientError::Busy) => {
                    event!(
                        info,
                        "another process committed first; reloading (attempt {} of {})",
                        _attempt,
                        MAX_COMMIT_ATTEMPTS
                    );
                    self.stale = true;
                }
                // A call that fails without committing may have failed on
                // state another process has since moved (a prekey it
                // rotated, a contact it added): if the head moved, run the
                // call again on the new state (spec §10.5).
                Err(e) => {
                    if self.head_moved()? {
                        self.stale = true;
                        continue;
                    }
                    return Err(e);
                }
                ok => return ok,
            }
        }
        event!(
            warn,
            "gave up after {} conflicting commits",
            MAX_COMMIT_ATTEMPTS
        );
        Err(ClientError::Busy)
    }

    /// Whether the store's head differs from the one this device holds.
    fn head_moved(&mut self) -> Result<bool, ClientError> {
        Ok(self.store.get(&self.head_key)?.as_deref() != self.head_bytes.as_deref())
    }

    /// Drops everything in memory and loads the store again; a store older
    /// than what this device committed is a rollback.
    fn reload(&mut self) -> Result<(), ClientError> {
        let loaded = load_with_retries(&mut *self.store, &mut self.keys, &self.head_key)?;
        if loaded.generation < self.generation || loaded.head.device_id != self.head.device_id {
            return Err(RecordError::RolledBack {
                found: loaded.generation,
                expected: self.generation,
            }
            .into());
        }
        self.generation = loaded.generation;
        self.head = loaded.head;
        self.head_bytes = Some(loaded.head_bytes);
        self.account = loaded.account;
        self.manager = loaded.manager;
        self.contacts = loaded.contacts;
        self.stale = false;
        Ok(())
    }

    /// Loads a contact's records (no-op for this account or a loaded
    /// contact). A missing record means "not a contact".
    fn load_peer(&mut self, account: &[u8; 32]) -> Result<bool, ClientError> {
        if self.manager.is_loaded(account) {
            return Ok(true);
        }
        if !self.contacts.contains_key(account) {
            return Ok(false);
        }
        let anchor = self.contacts.get(account).copied();
        let held = Held {
            generation: self.generation,
            head_key: &self.head_key,
            head_bytes: self.head_bytes.as_deref().unwrap_or(&[]),
        };
        let Some(public) = read(
            &mut *self.store,
            &self.keys,
            &Name::peer(account),
            &held,
            anchor,
        )?
        else {
            return Err(RecordError::Missing {
                record: RecordKind::Peer,
            }
            .into());
        };
        self.manager
            .load_peer_records(account, &public, &[])
            .map_err(inconsistent(RecordKind::Peer))?;
        let key = Ed25519PublicKey::from_bytes(account).map_err(|_| {
            ClientError::from(RecordError::Corrupted {
                record: RecordKind::Peer,
                reason: Corruption::Inconsistent,
            })
        })?;
        let devices: Vec<DeviceId> = self
            .manager
            .device_list(&key)
            .map(|l| l.list().devices().iter().map(|d| *d.id()).collect())
            .unwrap_or_default();
        for device in devices {
            let name = Name::sessions(account, &device);
            let held = Held {
                generation: self.generation,
                head_key: &self.head_key,
                head_bytes: self.head_bytes.as_deref().unwrap_or(&[]),
            };
            let loaded =
                read(&mut *self.store, &self.keys, &name, &held, None).and_then(
                    |bytes| match bytes {
                        Some(b) => self
                            .manager
                            .load_session_set_record(account, &device, &b)
                            .map_err(inconsistent(RecordKind::Sessions)),
                        None => Ok(()),
                    },
                );
            if let Err(e) = loaded {
                self.manager.unload_contact(account);
                return Err(e);
            }
        }
        Ok(true)
    }

    /// Like [`Device::load_peer`], but a non-contact is an error.
    fn require_peer(&mut self, account: &[u8; 32]) -> Result<(), ClientError> {
        if *account == self.head.account || self.load_peer(account)? {
            Ok(())
        } else {
            Err(SessionsError::UnknownAccount { account: *account }.into())
        }
    }

    /// Keeps fewer than `cache_limit` contacts in memory before a call
    /// starts (a call loads at most two). Every cached record is committed,
    /// so dropping one loses nothing; it loads again when needed.
    fn trim_cache(&mut self) {
        let loaded = self.manager.contact_keys_loaded();
        let excess = loaded
            .len()
            .saturating_sub(self.cache_limit.saturating_sub(1));
        for victim in loaded.iter().take(excess) {
            self.manager.unload_contact(victim);
        }
    }

    fn base_writes(&self) -> Vec<Pending> {
        let mut writes = alloc::vec![
            (
                Name::fixed(RecordKind::Identity),
                Some(Zeroizing::new(
                    self.manager.identity().to_stored().as_bytes().to_vec()
                ))
            ),
            self.prekeys_write(),
            self.index_write(),
        ];
        if let Some(a) = &self.account {
            writes.push((
                Name::fixed(RecordKind::Account),
                Some(Zeroizing::new(a.to_stored().as_bytes().to_vec())),
            ));
        }
        writes
    }

    fn prekeys_write(&self) -> Pending {
        (
            Name::fixed(RecordKind::Prekeys),
            Some(Zeroizing::new(
                self.manager.prekeys().to_stored().as_bytes().to_vec(),
            )),
        )
    }

    fn index_write(&self) -> Pending {
        (
            Name::fixed(RecordKind::ContactIndex),
            Some(Zeroizing::new(encode_index(&self.contacts))),
        )
    }

    fn peer_write(&self, account: &[u8; 32]) -> Pending {
        (
            Name::peer(account),
            self.manager.peer_record(account).map(Zeroizing::new),
        )
    }

    fn set_write(&self, account: &[u8; 32], device: &DeviceId) -> Pending {
        (
            Name::sessions(account, device),
            self.manager.session_set_record(account, device),
        )
    }

    /// The session sets held with every device of a loaded peer.
    fn session_writes(&self, account: &[u8; 32]) -> Vec<Pending> {
        self.manager
            .session_set_devices(account)
            .iter()
            .map(|d| self.set_write(account, d))
            .collect()
    }

    /// Seals and commits `writes` and the head at the next generation, if
    /// the head is still what this device last saw ([`ClientError::Busy`]
    /// otherwise: the caller reloads and retries).
    fn commit(&mut self, writes: Vec<Pending>) -> Result<(), ClientError> {
        let generation = self.generation.checked_add(1).ok_or(ClientError::Busy)?;
        // The anchors move with the batch (spec §10.4): the head's for the
        // rarely written records, the contact index's for contact peers. A
        // failed commit reloads everything, so updating them first is safe.
        let mut index = false;
        let mut batch_writes = Vec::with_capacity(writes.len() + 1);
        for (name, plain) in writes {
            let a = &mut self.head.anchors;
            match name.kind {
                RecordKind::Identity => a.identity = generation,
                RecordKind::Account => a.account = generation,
                RecordKind::Prekeys => a.prekeys = generation,
                RecordKind::ContactIndex => {
                    index = true;
                    continue;
                }
                RecordKind::Peer if name.account == self.head.account => a.own_peer = generation,
                RecordKind::Peer => {
                    if let Some(g) = self.contacts.get_mut(&name.account) {
                        *g = generation;
                        index = true;
                    }
                }
                _ => {}
            }
            batch_writes.push((name, plain));
        }
        if index {
            self.head.anchors.index = generation;
            batch_writes.push((
                Name::fixed(RecordKind::ContactIndex),
                Some(Zeroizing::new(encode_index(&self.contacts))),
            ));
        }
        let mut batch = Vec::with_capacity(batch_writes.len() + 1);
        for (name, plain) in &batch_writes {
            let key = self.keys.key(name);
            batch.push(match plain {
                Some(p) => {
                    let value = self.keys.seal(&mut *self.rng, name, generation, p);
                    if value.len() > records::MAX_RECORD_LEN {
                        self.stale = true;
                        return Err(RecordError::TooLarge { record: name.kind }.into());
                    }
                    RecordWrite::Put { key, value }
                }
                None => RecordWrite::Delete { key },
            });
        }
        let head = self.keys.seal(
            &mut *self.rng,
            &Name::fixed(RecordKind::Head),
            generation,
            &self.head.encode(),
        );
        batch.push(RecordWrite::Put {
            key: self.head_key.clone(),
            value: head.clone(),
        });
        let outcome = match self
            .store
            .commit(&self.head_key, self.head_bytes.as_deref(), &batch)
        {
            Ok(outcome) => outcome,
            // The store may not know whether it committed (an error after
            // the transaction ended): the head says (spec §10.2).
            Err(e) => match self.store.get(&self.head_key) {
                Ok(Some(current)) if current == head => CommitOutcome::Committed,
                _ => {
                    self.stale = true;
                    return Err(e.into());
                }
            },
        };
        match outcome {
            CommitOutcome::Committed => {
                event!(
                    debug,
                    "committed generation {}: {} records written or deleted",
                    generation,
                    batch.len()
                );
                self.generation = generation;
                self.head_bytes = Some(head);
                Ok(())
            }
            CommitOutcome::Conflict => {
                self.stale = true;
                Err(ClientError::Busy)
            }
        }
    }

    fn outgoing(
        &self,
        out: Outgoing,
        conversation: &Ed25519PublicKey,
        with_own: bool,
    ) -> Vec<OutgoingEnvelope> {
        let own = self.manager.account();
        let mut mailboxes = alloc::vec![*conversation];
        if with_own && *conversation != own && self.manager.own_list().list().devices().len() > 1 {
            mailboxes.push(own);
        }
        out.envelopes
            .into_iter()
            .map(|bytes| OutgoingEnvelope {
                bytes,
                mailboxes: mailboxes.clone(),
            })
            .collect()
    }
}

fn entry(
    device_id: DeviceId,
    identity: &DeviceIdentity,
    info: &DeviceInfo,
    now: u64,
) -> DeviceEntry {
    DeviceEntry::new(
        device_id,
        *identity.public(),
        info.platform,
        &info.description,
        info.client_version,
        now,
    )
}

fn inconsistent(record: RecordKind) -> impl Fn(SessionsError) -> ClientError {
    move |e| {
        let reason = match e {
            SessionsError::Wire(w) => Corruption::Malformed(w),
            _ => Corruption::Inconsistent,
        };
        RecordError::Corrupted { record, reason }.into()
    }
}

/// What a device holds while it reads: the head it loaded.
struct Held<'a> {
    generation: u64,
    head_key: &'a [u8],
    head_bytes: &'a [u8],
}

/// Reads and opens one record. One newer than the held head (or than its
/// anchor) means another process committed since ([`ClientError::Busy`]:
/// reload and retry), unless the head has not moved, in which case the
/// record does not belong to this state. One older than its anchor was
/// rolled back alone (spec §10.4).
fn read(
    store: &mut dyn RecordStore,
    keys: &RecordKeys,
    name: &Name,
    held: &Held<'_>,
    anchor: Option<u64>,
) -> Result<Option<Zeroizing<Vec<u8>>>, ClientError> {
    let Some(bytes) = store.get(&keys.key(name))? else {
        return Ok(None);
    };
    let (g, plain) = keys.open(name, &bytes)?;
    if g > held.generation || anchor.is_some_and(|a| g > a) {
        return Err(
            if store.get(held.head_key)?.as_deref() == Some(held.head_bytes) {
                RecordError::Corrupted {
                    record: name.kind,
                    reason: Corruption::Inconsistent,
                }
                .into()
            } else {
                ClientError::Busy
            },
        );
    }
    if let Some(a) = anchor
        && g < a
    {
        return Err(RecordError::RecordRolledBack {
            record: name.kind,
            found: g,
            expected: a,
        }
        .into());
    }
    Ok(Some(plain))
}

fn require(
    store: &mut dyn RecordStore,
    keys: &RecordKeys,
    kind: RecordKind,
    held: &Held<'_>,
    anchor: u64,
) -> Result<Zeroizing<Vec<u8>>, ClientError> {
    read(store, keys, &Name::fixed(kind), held, Some(anchor))?
        .ok_or(RecordError::Missing { record: kind }.into())
}

/// The record keys of `storage_key`, the head's store key, and the store
/// loaded with them (open and restore from backup).
fn load_store(
    store: &mut dyn RecordStore,
    storage_key: &StorageKey,
) -> Result<(RecordKeys, Vec<u8>, Loaded), ClientError> {
    let mut keys = RecordKeys::derive(storage_key);
    let head_key = keys.key(&Name::fixed(RecordKind::Head));
    let loaded = load_with_retries(store, &mut keys, &head_key)?;
    Ok((keys, head_key, loaded))
}

fn load_with_retries(
    store: &mut dyn RecordStore,
    keys: &mut RecordKeys,
    head_key: &[u8],
) -> Result<Loaded, ClientError> {
    for _ in 0..MAX_COMMIT_ATTEMPTS {
        match load(store, keys, head_key) {
            Err(ClientError::Busy) => continue,
            other => return other,
        }
    }
    Err(ClientError::Busy)
}

/// Loads the head, identity, prekeys, contact index, account and this
/// account's own records (spec §10.4).
fn load(
    store: &mut dyn RecordStore,
    keys: &mut RecordKeys,
    head_key: &[u8],
) -> Result<Loaded, ClientError> {
    let Some(head_bytes) = store.get(head_key)? else {
        // No head: an empty store, unless other records are there.
        return Err(if store
            .get(&keys.key(&Name::fixed(RecordKind::Identity)))?
            .is_some()
        {
            RecordError::Missing {
                record: RecordKind::Head,
            }
        } else {
            RecordError::Empty
        }
        .into());
    };
    let (generation, plain) = keys.open(&Name::fixed(RecordKind::Head), &head_bytes)?;
    let head = Head::decode(&plain).map_err(malformed(RecordKind::Head))?;
    keys.set_owner(&head.device_id);
    let keys: &RecordKeys = keys;
    let held = Held {
        generation,
        head_key,
        head_bytes: &head_bytes,
    };
    let a = head.anchors;
    let identity = require(store, keys, RecordKind::Identity, &held, a.identity)?;
    let identity = DeviceIdentity::from_stored(&StoredIdentity::from_bytes(&identity))
        .map_err(malformed(RecordKind::Identity))?;
    let prekeys = require(store, keys, RecordKind::Prekeys, &held, a.prekeys)?;
    let prekeys = PrekeyStore::from_stored(&StoredPrekeys::from_bytes(&prekeys)).map_err(|_| {
        ClientError::from(RecordError::Corrupted {
            record: RecordKind::Prekeys,
            reason: Corruption::Inconsistent,
        })
    })?;
    let index = require(store, keys, RecordKind::ContactIndex, &held, a.index)?;
    let contacts = decode_index(&index).map_err(malformed(RecordKind::ContactIndex))?;
    let account = if head.account_held {
        let acc = require(store, keys, RecordKind::Account, &held, a.account)?;
        let acc = Account::from_stored(&StoredAccount::from_bytes(&acc))
            .map_err(malformed(RecordKind::Account))?;
        if acc.public_key().to_bytes() != head.account {
            return Err(RecordError::Corrupted {
                record: RecordKind::Account,
                reason: Corruption::Inconsistent,
            }
            .into());
        }
        Some(acc)
    } else {
        None
    };
    let own = read(
        store,
        keys,
        &Name::peer(&head.account),
        &held,
        Some(a.own_peer),
    )?
    .ok_or(RecordError::Missing {
        record: RecordKind::Peer,
    })?;
    let mut manager =
        SessionManager::from_record_parts(identity, head.device_id, prekeys, &own, &[])
            .map_err(inconsistent(RecordKind::Peer))?;
    if manager.account().to_bytes() != head.account || contacts.contains_key(&head.account) {
        return Err(RecordError::Corrupted {
            record: RecordKind::Peer,
            reason: Corruption::Inconsistent,
        }
        .into());
    }
    let siblings: Vec<DeviceId> = manager
        .own_list()
        .list()
        .devices()
        .iter()
        .map(|d| *d.id())
        .filter(|id| *id != head.device_id)
        .collect();
    for device in siblings {
        let name = Name::sessions(&head.account, &device);
        if let Some(b) = read(store, keys, &name, &held, None)? {
            manager
                .load_session_set_record(&head.account, &device, &b)
                .map_err(inconsistent(RecordKind::Sessions))?;
        }
    }
    Ok(Loaded {
        generation,
        head,
        head_bytes,
        account,
        manager,
        contacts,
    })
}

fn malformed(record: RecordKind) -> impl Fn(WireError) -> ClientError {
    move |e| {
        RecordError::Corrupted {
            record,
            reason: Corruption::Malformed(e),
        }
        .into()
    }
}
