//! The device object.

use crate::error::DeviceError;
use crate::link::LinkApproval;
use crate::store::{RecordStore, StoreAdapter};
use crate::types::{
    DeviceInfo, HealFailure, Healed, ListChange, OutgoingEnvelope, Received, account_from_seed,
    account_key, device_id, recovery_seed, session_id,
};
use session_ratchet::client::Device as CoreDevice;
use session_ratchet::session_v2::mnemonic::encode_recovery_seed;
use session_ratchet::sessions::StoredDevice;
use std::sync::{Arc, Mutex, MutexGuard};
use zeroize::Zeroizing;

/// One device of an account (the crate's `client::Device`, spec ch. 10):
/// its account key if it holds it, identity, prekeys, device lists,
/// contacts and sessions, kept as separate encrypted records in the
/// client's `RecordStore`.
///
/// Every call that changes state commits to the store before it returns
/// anything to send. The object is shared (`Arc`) and thread-safe: calls on
/// one device are **serialised** by a lock inside it, so a second thread
/// waits until the first call returns. For two processes (an app and its
/// notification extension), open one device per process on the same store:
/// the store's conditional commit keeps them from sending from one state.
///
/// Times (`now`) are seconds since the Unix epoch; the library reads no
/// clock. Randomness comes from the operating system.
#[derive(uniffi::Object)]
pub struct Device {
    inner: Mutex<CoreDevice>,
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.inner.try_lock() {
            Ok(d) => std::fmt::Debug::fmt(&*d, f),
            Err(_) => f.write_str("Device(<in use>)"),
        }
    }
}

/// A new account and its first device.
#[derive(Debug, uniffi::Record)]
pub struct CreatedAccount {
    /// The device, committed to its store.
    pub device: Arc<Device>,
    /// The account's 13-word recovery phrase: show it once, never store it.
    pub recovery_phrase: String,
    /// The same recovery seed as 16 bytes (what `restoreAccount` takes).
    pub recovery_seed: Vec<u8>,
}

/// What a finished link gives the new device.
#[derive(Debug, uniffi::Record)]
pub struct Linked {
    /// The new device, committed to its store.
    pub device: Arc<Device>,
    /// The contacts the approving device talks to (32-byte account keys):
    /// fetch each one's device list and prekey record and `addContact` it.
    pub contacts: Vec<Vec<u8>>,
}

/// The existing device's answer to a link request.
#[derive(Debug, uniffi::Record)]
pub struct LinkResponse {
    /// Show its SAS next to the new device's, and approve when they match.
    pub approval: Arc<LinkApproval>,
    /// The response to send back to the new device.
    pub response: Vec<u8>,
}

/// What approving a link gives the existing device.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct LinkApproved {
    /// The sealed payload to send to the new device.
    pub payload: Vec<u8>,
    /// The account's new device list (listing the new device): publish it.
    pub device_list: Vec<u8>,
}

pub(crate) fn os_rng() -> Box<dyn session_ratchet::rand_core::CryptoRng + Send> {
    Box::new(session_ratchet::rand_core::UnwrapErr(getrandom::SysRng))
}

pub(crate) fn store(store: Arc<dyn RecordStore>) -> Box<dyn session_ratchet::client::RecordStore> {
    Box::new(StoreAdapter(store))
}

impl Device {
    pub(crate) fn wrap(device: CoreDevice) -> Arc<Self> {
        Arc::new(Self {
            inner: Mutex::new(device),
        })
    }

    /// For calls that only read what the device was opened or last
    /// committed with: they answer even after a call panicked (a bug).
    fn read(&self) -> MutexGuard<'_, CoreDevice> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock(&self) -> Result<MutexGuard<'_, CoreDevice>, DeviceError> {
        // A call panicked while it held the device (a bug): its memory may
        // be ahead of the store, so refuse; open the store again.
        self.inner.lock().map_err(|_| {
            DeviceError::Internal(
                "an earlier call on this device failed inside the library; open the store again"
                    .to_owned(),
            )
        })
    }
}

/// Creates a new account with this device as its first device, in an empty
/// `store`. Show the recovery phrase once; then publish `deviceList()` and
/// `prekeyRecord()`.
#[uniffi::export]
pub fn create_account(
    store: Arc<dyn RecordStore>,
    storage_key: Vec<u8>,
    info: DeviceInfo,
    now: u64,
) -> Result<CreatedAccount, DeviceError> {
    let key = crate::types::storage_key(storage_key)?;
    let (device, seed) =
        CoreDevice::create_account(self::store(store), &key, os_rng(), (&info).into(), now)?;
    let phrase = encode_recovery_seed(&seed)
        .map_err(|e| DeviceError::Internal(format!("recovery phrase: {e}")))?;
    Ok(CreatedAccount {
        device: Device::wrap(device),
        recovery_phrase: phrase.as_str().to_owned(),
        recovery_seed: seed.export().to_vec(),
    })
}

/// A fresh random 32-byte storage key from the operating system's RNG: keep
/// it in the platform keystore (Android Keystore, iOS Keychain).
#[uniffi::export]
pub fn generate_storage_key() -> Vec<u8> {
    let mut key = [0u8; 32];
    session_ratchet::rand_core::Rng::fill_bytes(&mut *os_rng(), &mut key);
    key.to_vec()
}

#[uniffi::export]
impl Device {
    /// Opens the device in `store`. `minGeneration` is the last
    /// `generation()` the client saw (kept in the platform keystore; 0 if
    /// unknown): a store older than that fails with `RolledBack`.
    #[uniffi::constructor]
    pub fn open(
        store: Arc<dyn RecordStore>,
        storage_key: Vec<u8>,
        min_generation: u64,
    ) -> Result<Arc<Self>, DeviceError> {
        let key = crate::types::storage_key(storage_key)?;
        let device = CoreDevice::open(self::store(store), &key, os_rng(), min_generation)?;
        Ok(Self::wrap(device))
    }

    /// Restores an account onto this new device from its 16-byte recovery
    /// seed, when every earlier device is lost, into an empty `store`.
    /// `currentList` is the account's device list as fetched (null only if
    /// the account never published one). Publish `deviceList()` and
    /// `prekeyRecord()`, add the contacts again, revoke the lost devices.
    #[uniffi::constructor]
    pub fn restore_account(
        store: Arc<dyn RecordStore>,
        storage_key: Vec<u8>,
        recovery_seed: Vec<u8>,
        current_list: Option<Vec<u8>>,
        info: DeviceInfo,
        now: u64,
    ) -> Result<Arc<Self>, DeviceError> {
        let key = crate::types::storage_key(storage_key)?;
        let seed = self::recovery_seed(recovery_seed)?;
        let device = CoreDevice::restore_account(
            self::store(store),
            &key,
            os_rng(),
            &seed,
            current_list.as_deref(),
            (&info).into(),
            now,
        )?;
        Ok(Self::wrap(device))
    }

    /// `restoreAccount` from the 13-word recovery phrase.
    #[uniffi::constructor]
    pub fn restore_account_from_phrase(
        store: Arc<dyn RecordStore>,
        storage_key: Vec<u8>,
        phrase: String,
        current_list: Option<Vec<u8>>,
        info: DeviceInfo,
        now: u64,
    ) -> Result<Arc<Self>, DeviceError> {
        let key = crate::types::storage_key(storage_key)?;
        let phrase = Zeroizing::new(phrase);
        let device = CoreDevice::restore_account_from_phrase(
            self::store(store),
            &key,
            os_rng(),
            phrase.as_str(),
            current_list.as_deref(),
            (&info).into(),
            now,
        )?;
        Ok(Self::wrap(device))
    }

    /// Opens a store older than the state this device last had (a restored
    /// backup, or one `open` refused as `RolledBack`) without ever sending
    /// in its sessions again: every session becomes stale, the prekeys are
    /// replaced, the generation moves past `minGeneration`. Then publish
    /// `prekeyRecord()` and call `heal`.
    #[uniffi::constructor]
    pub fn restore_from_backup(
        store: Arc<dyn RecordStore>,
        storage_key: Vec<u8>,
        min_generation: u64,
        now: u64,
    ) -> Result<Arc<Self>, DeviceError> {
        let key = crate::types::storage_key(storage_key)?;
        let device = CoreDevice::restore_from_backup(
            self::store(store),
            &key,
            os_rng(),
            min_generation,
            now,
        )?;
        Ok(Self::wrap(device))
    }

    /// Moves a device kept in the single-blob format of spec §8.9 (what a
    /// `SessionManager` stored) into an empty `store` as records. `blob` is
    /// the plain encoding, or, with `blobKey`, the encrypted one under that
    /// 32-byte key. `accountSeed` is the account key if the client kept it
    /// beside the blob: the 16-byte recovery seed or the 32-byte Ed25519
    /// seed. Rotation times start at `now`. Delete the blob once this
    /// returns.
    #[uniffi::constructor]
    pub fn migrate(
        store: Arc<dyn RecordStore>,
        storage_key: Vec<u8>,
        blob: Vec<u8>,
        blob_key: Option<Vec<u8>>,
        account_seed: Option<Vec<u8>>,
        now: u64,
    ) -> Result<Arc<Self>, DeviceError> {
        let key = crate::types::storage_key(storage_key)?;
        let blob = Zeroizing::new(blob);
        let account = account_seed.map(account_from_seed).transpose()?;
        let blob = match blob_key {
            None => StoredDevice::from_bytes(&blob),
            Some(k) => StoredDevice::decrypt(&blob, &crate::types::storage_key(k)?)
                .map_err(session_ratchet::client::ClientError::from)?,
        };
        let device = CoreDevice::migrate(self::store(store), &key, os_rng(), &blob, account, now)?;
        Ok(Self::wrap(device))
    }

    /// The generation of the last commit; it only moves forward. Keep the
    /// latest value where a rollback of the store cannot reach it (the
    /// keystore) and pass it to `open`.
    pub fn generation(&self) -> u64 {
        self.read().generation()
    }

    /// This device's 32-byte id in its account's device list.
    pub fn device_id(&self) -> Vec<u8> {
        self.read().device_id().as_bytes().to_vec()
    }

    /// The account's 32-byte key (what `send` and `receive` name accounts by).
    pub fn account_key(&self) -> Vec<u8> {
        self.read().account_key().to_bytes().to_vec()
    }

    /// The account's Session ID, 66 hex digits: what users share and
    /// compare, and what `addContact` checks a device list against.
    pub fn session_id(&self) -> String {
        self.read().session_id().to_hex()
    }

    /// Whether this device holds the account key (it can link and revoke).
    pub fn holds_account_key(&self) -> bool {
        self.read().holds_account_key()
    }

    /// Whether this device was revoked from its account.
    pub fn is_revoked(&self) -> bool {
        self.read().is_revoked()
    }

    /// The account's signed device list as this device holds it: publish
    /// it after creating, linking, restoring or revoking.
    pub fn device_list(&self) -> Vec<u8> {
        self.read().device_list()
    }

    /// The account's prekey record to publish (this device's bundle and
    /// those held for its other devices).
    pub fn prekey_record(&self) -> Result<Vec<u8>, DeviceError> {
        Ok(self.lock()?.prekey_record()?)
    }

    /// The contacts' account keys, ascending.
    pub fn contacts(&self) -> Vec<Vec<u8>> {
        self.read()
            .contacts()
            .iter()
            .map(|k| k.to_bytes().to_vec())
            .collect()
    }

    /// The transcript hash of the active session with one device of an
    /// account, if any (two devices that converged report the same value).
    pub fn active_session(
        &self,
        account: Vec<u8>,
        device: Vec<u8>,
    ) -> Result<Option<Vec<u8>>, DeviceError> {
        let (account, device) = (account_key(&account)?, device_id(&device)?);
        Ok(self
            .lock()?
            .active_session(&account, &device)?
            .map(|h| h.to_vec()))
    }

    /// Adds a contact from its device list as fetched from the network,
    /// checked against the Session ID the user gave, and its prekey record
    /// if fetched too. A known contact's list is taken as an update.
    /// Returns the contact's 32-byte account key.
    pub fn add_contact(
        &self,
        session_id: String,
        device_list: Vec<u8>,
        prekey_record: Option<Vec<u8>>,
    ) -> Result<Vec<u8>, DeviceError> {
        let id = self::session_id(&session_id)?;
        let key = self
            .lock()?
            .add_contact(&id, &device_list, prekey_record.as_deref())?;
        Ok(key.to_bytes().to_vec())
    }

    /// Offers a newer device list (of a contact or of this account) and,
    /// optionally, the account's current prekey record. `intermediates` are
    /// the lists between the held and the offered one, if fetched. Sessions
    /// with revoked devices are deleted.
    pub fn update_contact(
        &self,
        device_list: Vec<u8>,
        intermediates: Vec<Vec<u8>>,
        prekey_record: Option<Vec<u8>>,
    ) -> Result<ListChange, DeviceError> {
        let change =
            self.lock()?
                .update_contact(&device_list, &intermediates, prekey_record.as_deref())?;
        Ok(ListChange {
            added: change.added.iter().map(|d| d.as_bytes().to_vec()).collect(),
            removed: change
                .removed
                .iter()
                .map(|d| d.as_bytes().to_vec())
                .collect(),
        })
    }

    /// Encrypts `content` for every device of `conversation` (a contact's
    /// account key, or this account's for a note to self) and this
    /// account's other devices. Commits first; returns the envelopes to post.
    pub fn send(
        &self,
        conversation: Vec<u8>,
        content: Vec<u8>,
        now: u64,
    ) -> Result<Vec<OutgoingEnvelope>, DeviceError> {
        let conversation = account_key(&conversation)?;
        let out = self.lock()?.send(&conversation, &content, now)?;
        Ok(out.into_iter().map(OutgoingEnvelope::from).collect())
    }

    /// Decrypts one envelope from a mailbox. Commits the session it used
    /// before returning the content (at most once: store the content at
    /// once). On error nothing changed: keep the envelope unless the error
    /// is definitive (anything but `Busy` and `Store`).
    pub fn receive(&self, envelope: Vec<u8>) -> Result<Received, DeviceError> {
        Ok(self.lock()?.receive(&envelope)?.into())
    }

    /// Starts fresh sessions, each with a healing notice, with every device
    /// that has none this device may send in (call it after
    /// `restoreFromBackup`). Each account is healed and committed on its
    /// own: the ones that failed are listed with why, the others' envelopes
    /// are returned. Call it again after acting on the failures.
    pub fn heal(&self, now: u64) -> Result<Healed, DeviceError> {
        let healed = self.lock()?.heal(now);
        Ok(Healed {
            envelopes: healed
                .envelopes
                .into_iter()
                .map(OutgoingEnvelope::from)
                .collect(),
            failures: healed
                .failed
                .into_iter()
                .map(|(account, error)| HealFailure {
                    account: account.to_bytes().to_vec(),
                    error: error.into(),
                })
                .collect(),
        })
    }

    /// Revokes one of this account's devices (needs the account key):
    /// signs the next device list, deletes the sessions with the device,
    /// and returns the list to publish (then publish `prekeyRecord()`).
    pub fn revoke(&self, device: Vec<u8>, now: u64) -> Result<Vec<u8>, DeviceError> {
        let device = device_id(&device)?;
        Ok(self.lock()?.revoke(&device, now)?)
    }

    /// Replaces the prekeys that are due. Call it at start-up and daily;
    /// when it returns a prekey record, publish it.
    pub fn maintain(&self, now: u64) -> Result<Option<Vec<u8>>, DeviceError> {
        Ok(self.lock()?.maintain(now)?)
    }

    /// Answers a new device's link request (needs the account key). Show
    /// the approval's SAS; when the user confirms that the new device shows
    /// the same emoji, `approveLink`. Changes nothing.
    pub fn respond_to_link(&self, request: Vec<u8>) -> Result<LinkResponse, DeviceError> {
        let (approval, response) = self.lock()?.respond_to_link(&request)?;
        Ok(LinkResponse {
            approval: LinkApproval::wrap(approval)?,
            response,
        })
    }

    /// The user confirmed the SAS: signs and commits the next device list
    /// with the new device, and returns the payload for the new device and
    /// the list to publish. With `shareAccountKey` the new device can
    /// link and revoke too. An approval is used once.
    pub fn approve_link(
        &self,
        approval: Arc<LinkApproval>,
        now: u64,
        share_account_key: bool,
    ) -> Result<LinkApproved, DeviceError> {
        let approval = approval.take()?;
        let approved = self
            .lock()?
            .approve_link(approval, now, share_account_key)?;
        Ok(LinkApproved {
            payload: approved.payload,
            device_list: approved.device_list,
        })
    }
}
