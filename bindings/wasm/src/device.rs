//! The `Device` class: one device of an account over its record store
//! (spec §10.1), `session_ratchet::client::Device` with JavaScript values.

use crate::error::Error;
use crate::js::{self, object, u8a, u8a_list};
use crate::link::{LinkApproval, take_approval};
use crate::os_rng;
use crate::store::store_arg;
use js_sys::Array;
use session_ratchet::account::Account;
use session_ratchet::client::{self, ClientError};
use session_ratchet::identity::Ed25519PublicKey;
use session_ratchet::secret::{Ed25519Seed, RecoverySeed};
use session_ratchet::session_v2::mnemonic::encode_recovery_seed;
use session_ratchet::sessions::{ContentKind, StoredDevice};
use wasm_bindgen::JsValue;
use wasm_bindgen::prelude::wasm_bindgen;

/// Parsed account keys kept per device: clients pass keys as bytes, and
/// parsing one (a point decompression) costs about as much as the hashing
/// of a message.
const KEY_CACHE: usize = 16;

/// One device of an account: the object a client holds (spec §10.1). Every
/// call that changes state commits to the store before it returns anything
/// to send; on an error nothing was committed and nothing is to be sent.
#[wasm_bindgen]
#[derive(Debug)]
pub struct Device {
    inner: client::Device,
    keys: Vec<([u8; 32], Ed25519PublicKey)>,
}

impl Device {
    pub(crate) fn wrap(inner: client::Device) -> Self {
        Self {
            inner,
            keys: Vec::new(),
        }
    }

    /// An account key argument, parsed once per device for the last few keys.
    fn account(&mut self, v: &JsValue, what: &str) -> Result<Ed25519PublicKey, Error> {
        let bytes = js::array::<32>(v, what)?;
        if let Some((_, key)) = self.keys.iter().find(|(b, _)| *b == bytes) {
            return Ok(*key);
        }
        let (_, key) = js::account(v, what)?;
        if self.keys.len() >= KEY_CACHE {
            self.keys.remove(0);
        }
        self.keys.push((bytes, key));
        Ok(key)
    }
}

/// The 13-word recovery phrase of a 16-byte recovery seed.
#[wasm_bindgen(js_name = recoveryPhrase, unchecked_return_type = "string")]
pub fn recovery_phrase(
    #[wasm_bindgen(js_name = recoverySeed, unchecked_param_type = "Uint8Array")]
    recovery_seed: JsValue,
) -> Result<JsValue, Error> {
    let seed = js::secret::<16>(&recovery_seed, "recoverySeed")?;
    Ok(JsValue::from_str(&phrase(&RecoverySeed::from_bytes(
        *seed,
    ))?))
}

/// The phrase of a seed; the Rust copy is wiped when dropped (the string
/// handed to JavaScript is the caller's).
fn phrase(seed: &RecoverySeed) -> Result<zeroize::Zeroizing<String>, Error> {
    encode_recovery_seed(seed)
        .map(|p| zeroize::Zeroizing::new(String::from(p.as_str())))
        .map_err(|e| Error::from(ClientError::Phrase(e)))
}

#[wasm_bindgen]
impl Device {
    // ---- making a device -------------------------------------------------

    /// Creates a new account with this device as its first device, in an
    /// empty store. Show the recovery phrase once and do not keep it;
    /// publish `deviceList()` and `prekeyRecord()`.
    #[wasm_bindgen(js_name = createAccount, unchecked_return_type = "CreatedAccount")]
    pub fn create_account(
        #[wasm_bindgen(unchecked_param_type = "Store")] store: JsValue,
        #[wasm_bindgen(js_name = storageKey, unchecked_param_type = "Uint8Array")]
        storage_key: JsValue,
        #[wasm_bindgen(unchecked_param_type = "DeviceInfo | string")] info: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Time")] now: JsValue,
    ) -> Result<JsValue, Error> {
        let store = store_arg(&store)?;
        let key = js::storage_key(&storage_key)?;
        let info = js::device_info(&info)?;
        let now = js::u64_arg(&now, "now")?;
        let (device, seed) = client::Device::create_account(store, &key, os_rng(), info, now)?;
        let phrase = phrase(&seed)?;
        let seed_bytes = seed.export();
        Ok(object(&[
            ("device", Self::wrap(device).into()),
            ("recoverySeed", u8a(seed_bytes.as_slice())),
            ("recoveryPhrase", JsValue::from_str(&phrase)),
        ]))
    }

    /// Restores an account onto this new device from its 16-byte recovery
    /// seed, when every earlier device is lost: a fresh identity added to
    /// the account's next device list (signed here), no sessions.
    /// `currentList` is the account's device list as fetched (omit it only
    /// if the account never published one). Publish `deviceList()` and
    /// `prekeyRecord()`, add the contacts again, revoke the lost devices.
    #[wasm_bindgen(js_name = restoreAccount)]
    pub fn restore_account(
        #[wasm_bindgen(unchecked_param_type = "Store")] store: JsValue,
        #[wasm_bindgen(js_name = storageKey, unchecked_param_type = "Uint8Array")]
        storage_key: JsValue,
        #[wasm_bindgen(js_name = recoverySeed, unchecked_param_type = "Uint8Array")]
        recovery_seed: JsValue,
        #[wasm_bindgen(js_name = currentList, unchecked_param_type = "Uint8Array | undefined")]
        current_list: JsValue,
        #[wasm_bindgen(unchecked_param_type = "DeviceInfo | string")] info: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Time")] now: JsValue,
    ) -> Result<Device, Error> {
        let store = store_arg(&store)?;
        let key = js::storage_key(&storage_key)?;
        let seed = js::secret::<16>(&recovery_seed, "recoverySeed")?;
        let seed = RecoverySeed::from_bytes(*seed);
        let list = js::opt_bytes(&current_list, "currentList")?;
        let info = js::device_info(&info)?;
        let now = js::u64_arg(&now, "now")?;
        let device = client::Device::restore_account(
            store,
            &key,
            os_rng(),
            &seed,
            list.as_deref(),
            info,
            now,
        )?;
        Ok(Self::wrap(device))
    }

    /// `restoreAccount` from the 13-word recovery phrase.
    #[wasm_bindgen(js_name = restoreAccountFromPhrase)]
    pub fn restore_account_from_phrase(
        #[wasm_bindgen(unchecked_param_type = "Store")] store: JsValue,
        #[wasm_bindgen(js_name = storageKey, unchecked_param_type = "Uint8Array")]
        storage_key: JsValue,
        #[wasm_bindgen(unchecked_param_type = "string")] phrase: JsValue,
        #[wasm_bindgen(js_name = currentList, unchecked_param_type = "Uint8Array | undefined")]
        current_list: JsValue,
        #[wasm_bindgen(unchecked_param_type = "DeviceInfo | string")] info: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Time")] now: JsValue,
    ) -> Result<Device, Error> {
        let store = store_arg(&store)?;
        let key = js::storage_key(&storage_key)?;
        let phrase = zeroize::Zeroizing::new(js::string(&phrase, "phrase")?);
        let list = js::opt_bytes(&current_list, "currentList")?;
        let info = js::device_info(&info)?;
        let now = js::u64_arg(&now, "now")?;
        let device = client::Device::restore_account_from_phrase(
            store,
            &key,
            os_rng(),
            &phrase,
            list.as_deref(),
            info,
            now,
        )?;
        Ok(Self::wrap(device))
    }

    /// Opens the device in `store`. `minGeneration` is the last `generation`
    /// the client saw (kept next to the storage key, where a restored backup
    /// cannot reach it; 0 if unknown): an older store throws `RolledBack`.
    pub fn open(
        #[wasm_bindgen(unchecked_param_type = "Store")] store: JsValue,
        #[wasm_bindgen(js_name = storageKey, unchecked_param_type = "Uint8Array")]
        storage_key: JsValue,
        #[wasm_bindgen(js_name = minGeneration, unchecked_param_type = "Time")]
        min_generation: JsValue,
    ) -> Result<Device, Error> {
        let store = store_arg(&store)?;
        let key = js::storage_key(&storage_key)?;
        let min = js::u64_arg(&min_generation, "minGeneration")?;
        Ok(Self::wrap(client::Device::open(
            store,
            &key,
            os_rng(),
            min,
        )?))
    }

    /// Opens a store older than the state this device last had (a restored
    /// backup; what `open` refused as `RolledBack`) without ever sending in
    /// its sessions again: every session becomes stale, every prekey is
    /// replaced. Then publish `prekeyRecord()` and call `heal`.
    #[wasm_bindgen(js_name = restoreFromBackup)]
    pub fn restore_from_backup(
        #[wasm_bindgen(unchecked_param_type = "Store")] store: JsValue,
        #[wasm_bindgen(js_name = storageKey, unchecked_param_type = "Uint8Array")]
        storage_key: JsValue,
        #[wasm_bindgen(js_name = minGeneration, unchecked_param_type = "Time")]
        min_generation: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Time")] now: JsValue,
    ) -> Result<Device, Error> {
        let store = store_arg(&store)?;
        let key = js::storage_key(&storage_key)?;
        let min = js::u64_arg(&min_generation, "minGeneration")?;
        let now = js::u64_arg(&now, "now")?;
        let device = client::Device::restore_from_backup(store, &key, os_rng(), min, now)?;
        Ok(Self::wrap(device))
    }

    /// Moves a device kept in the single-blob format of spec §8.9 (its
    /// plain encoding) into an empty store as records. `accountSeed` is the
    /// account key if the client kept it beside the blob: the 16-byte
    /// recovery seed or the 32-byte Ed25519 seed.
    pub fn migrate(
        #[wasm_bindgen(unchecked_param_type = "Store")] store: JsValue,
        #[wasm_bindgen(js_name = storageKey, unchecked_param_type = "Uint8Array")]
        storage_key: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Uint8Array")] blob: JsValue,
        #[wasm_bindgen(js_name = accountSeed, unchecked_param_type = "Uint8Array | undefined")]
        account_seed: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Time")] now: JsValue,
    ) -> Result<Device, Error> {
        let store = store_arg(&store)?;
        let key = js::storage_key(&storage_key)?;
        let blob = zeroize::Zeroizing::new(js::bytes(&blob, "blob")?);
        let account = account_from_seed(&account_seed)?;
        let now = js::u64_arg(&now, "now")?;
        let blob = StoredDevice::from_bytes(&blob);
        let device = client::Device::migrate(store, &key, os_rng(), &blob, account, now)?;
        Ok(Self::wrap(device))
    }

    /// `migrate` for a blob kept in the encrypted form of spec §8.9
    /// (`StoredDevice::encrypt`): `blobKey` is the 32-byte key it was
    /// encrypted under (it may equal `storageKey`). A wrong key or an
    /// altered blob fails with `SessionState` and writes nothing.
    #[wasm_bindgen(js_name = migrateEncrypted)]
    pub fn migrate_encrypted(
        #[wasm_bindgen(unchecked_param_type = "Store")] store: JsValue,
        #[wasm_bindgen(js_name = storageKey, unchecked_param_type = "Uint8Array")]
        storage_key: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Uint8Array")] blob: JsValue,
        #[wasm_bindgen(js_name = blobKey, unchecked_param_type = "Uint8Array")] blob_key: JsValue,
        #[wasm_bindgen(js_name = accountSeed, unchecked_param_type = "Uint8Array | undefined")]
        account_seed: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Time")] now: JsValue,
    ) -> Result<Device, Error> {
        let store = store_arg(&store)?;
        let key = js::storage_key(&storage_key)?;
        let blob = js::bytes(&blob, "blob")?;
        let blob_key = js::storage_key_named(&blob_key, "blobKey")?;
        let account = account_from_seed(&account_seed)?;
        let now = js::u64_arg(&now, "now")?;
        let blob = StoredDevice::decrypt(&blob, &blob_key).map_err(client::ClientError::from)?;
        let device = client::Device::migrate(store, &key, os_rng(), &blob, account, now)?;
        Ok(Self::wrap(device))
    }

    // ---- what a client reads ---------------------------------------------

    /// The generation of the last commit (it only moves forward): keep the
    /// latest value where a rollback of the store cannot reach it and pass
    /// it to `open`.
    #[wasm_bindgen(getter)]
    pub fn generation(&self) -> f64 {
        js::generation_out(self.inner.generation())
    }

    /// This device's id (32 bytes).
    #[wasm_bindgen(getter, js_name = deviceId, unchecked_return_type = "Uint8Array")]
    pub fn device_id(&self) -> JsValue {
        u8a(self.inner.device_id().as_bytes())
    }

    /// The account's key (32 bytes): what `send` takes for a note to self,
    /// and what contacts' `send` takes for this account.
    #[wasm_bindgen(getter, js_name = accountKey, unchecked_return_type = "Uint8Array")]
    pub fn account_key(&self) -> JsValue {
        u8a(&self.inner.account_key().to_bytes())
    }

    /// The account's Session ID (66 hex digits): what users compare and share.
    #[wasm_bindgen(getter, js_name = sessionId)]
    pub fn session_id(&self) -> String {
        self.inner.session_id().to_string()
    }

    /// Whether this device holds the account key (it can link and revoke).
    #[wasm_bindgen(getter, js_name = holdsAccountKey)]
    pub fn holds_account_key(&self) -> bool {
        self.inner.holds_account_key()
    }

    /// Whether this device was removed from its account.
    #[wasm_bindgen(getter, js_name = isRevoked)]
    pub fn is_revoked(&self) -> bool {
        self.inner.is_revoked()
    }

    /// The account's device list as this device holds it: publish it after
    /// creating, linking, restoring or revoking.
    #[wasm_bindgen(js_name = deviceList, unchecked_return_type = "Uint8Array")]
    pub fn device_list(&self) -> JsValue {
        u8a(&self.inner.device_list())
    }

    /// The contacts' account keys, ascending.
    #[wasm_bindgen(unchecked_return_type = "Uint8Array[]")]
    pub fn contacts(&self) -> JsValue {
        let keys: Vec<[u8; 32]> = self.inner.contacts().iter().map(|k| k.to_bytes()).collect();
        u8a_list(keys.iter().map(|k| k.as_slice()))
    }

    /// The account's prekey record to publish (spec §8.4).
    #[wasm_bindgen(js_name = prekeyRecord, unchecked_return_type = "Uint8Array")]
    pub fn prekey_record(&mut self) -> Result<JsValue, Error> {
        Ok(u8a(&self.inner.prekey_record()?))
    }

    /// The transcript hash of the active session with a peer device, if
    /// any (two devices that converged report the same 32 bytes).
    #[wasm_bindgen(js_name = activeSession, unchecked_return_type = "Uint8Array | undefined")]
    pub fn active_session(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "Uint8Array")] account: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Uint8Array")] device: JsValue,
    ) -> Result<JsValue, Error> {
        let account = self.account(&account, "account")?;
        let device = js::device_id(&device, "device")?;
        Ok(self
            .inner
            .active_session(&account, &device)?
            .map_or(JsValue::UNDEFINED, |h| u8a(&h)))
    }

    // ---- what a client does ----------------------------------------------

    /// Adds a contact from its device list as fetched, checked against the
    /// Session ID the user gave (a string of 66 hex digits, or 33 bytes),
    /// and its prekey record if fetched too. A known contact's list is taken
    /// as an update. Returns the contact's account key.
    #[wasm_bindgen(js_name = addContact, unchecked_return_type = "Uint8Array")]
    pub fn add_contact(
        &mut self,
        #[wasm_bindgen(js_name = sessionId, unchecked_param_type = "string | Uint8Array")]
        session_id: JsValue,
        #[wasm_bindgen(js_name = deviceList, unchecked_param_type = "Uint8Array")]
        device_list: JsValue,
        #[wasm_bindgen(js_name = prekeyRecord, unchecked_optional_param_type = "Uint8Array")]
        prekey_record: JsValue,
    ) -> Result<JsValue, Error> {
        let id = js::session_id(&session_id)?;
        let list = js::bytes(&device_list, "deviceList")?;
        let record = js::opt_bytes(&prekey_record, "prekeyRecord")?;
        let key = self.inner.add_contact(&id, &list, record.as_deref())?;
        Ok(u8a(&key.to_bytes()))
    }

    /// Offers a newer device list (of a contact or of this account) and,
    /// optionally, the lists between (`intermediates`) and the account's
    /// current prekey record. Revoked devices' sessions are deleted.
    #[wasm_bindgen(js_name = updateContact, unchecked_return_type = "ListChange")]
    pub fn update_contact(
        &mut self,
        #[wasm_bindgen(js_name = deviceList, unchecked_param_type = "Uint8Array")]
        device_list: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "Uint8Array[]")] intermediates: JsValue,
        #[wasm_bindgen(js_name = prekeyRecord, unchecked_optional_param_type = "Uint8Array")]
        prekey_record: JsValue,
    ) -> Result<JsValue, Error> {
        let list = js::bytes(&device_list, "deviceList")?;
        let between = js::byte_list(&intermediates, "intermediates")?;
        let record = js::opt_bytes(&prekey_record, "prekeyRecord")?;
        let change = self
            .inner
            .update_contact(&list, &between, record.as_deref())?;
        Ok(object(&[
            (
                "added",
                u8a_list(change.added.iter().map(|d| d.as_bytes().as_slice())),
            ),
            (
                "removed",
                u8a_list(change.removed.iter().map(|d| d.as_bytes().as_slice())),
            ),
        ]))
    }

    /// Encrypts `content` for every device of `conversation` (a contact's
    /// account key, or this account's for a note to self) and this
    /// account's other devices. Commits first; returns the envelopes to post.
    #[wasm_bindgen(unchecked_return_type = "OutgoingEnvelope[]")]
    pub fn send(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "Uint8Array")] conversation: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Uint8Array")] content: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Time")] now: JsValue,
    ) -> Result<JsValue, Error> {
        let conversation = self.account(&conversation, "conversation")?;
        let content = zeroize::Zeroizing::new(js::bytes(&content, "content")?);
        let now = js::u64_arg(&now, "now")?;
        let out = self.inner.send(&conversation, &content, now)?;
        Ok(js::envelopes(&out))
    }

    /// Decrypts one envelope from a mailbox. Commits the session it used
    /// before returning the content; on an error nothing changed.
    #[wasm_bindgen(unchecked_return_type = "Received")]
    pub fn receive(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "Uint8Array")] envelope: JsValue,
    ) -> Result<JsValue, Error> {
        let envelope = js::bytes(&envelope, "envelope")?;
        let r = self.inner.receive(&envelope)?;
        let kind = match r.kind {
            ContentKind::Message => "message",
            ContentKind::Heal => "heal",
            // A kind a later version adds: not for display.
            _ => "other",
        };
        Ok(object(&[
            ("sender", u8a(&r.sender.to_bytes())),
            ("senderDevice", u8a(r.sender_device.as_bytes())),
            ("conversation", u8a(&r.conversation.to_bytes())),
            ("kind", JsValue::from_str(kind)),
            ("content", u8a(&r.content)),
            ("newSession", JsValue::from_bool(r.new_session)),
            ("senderListNewer", JsValue::from_bool(r.sender_list_newer)),
            (
                "recipientListOutdated",
                JsValue::from_bool(r.recipient_list_outdated),
            ),
        ]))
    }

    /// Starts fresh sessions with every device that has none this device
    /// may send in, with a healing notice each (after `restoreFromBackup`).
    /// Each account is healed and committed on its own: `failed` lists the
    /// ones that could not be (with the error; nothing changed for them),
    /// `envelopes` the notices to post for the others. Never throws for an
    /// account's failure; call it again after acting on the errors.
    #[wasm_bindgen(unchecked_return_type = "Healed")]
    pub fn heal(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "Time")] now: JsValue,
    ) -> Result<JsValue, Error> {
        let now = js::u64_arg(&now, "now")?;
        let healed = self.inner.heal(now);
        let failed: Array = healed
            .failed
            .into_iter()
            .map(|(account, e)| {
                object(&[
                    ("account", u8a(&account.to_bytes())),
                    ("error", Error::from(e).to_js()),
                ])
            })
            .collect();
        Ok(object(&[
            ("envelopes", js::envelopes(&healed.envelopes)),
            ("failed", failed.into()),
        ]))
    }

    /// Revokes one of this account's devices: signs the next device list,
    /// deletes the sessions with the device, and returns the list to
    /// publish. Needs the account key.
    #[wasm_bindgen(unchecked_return_type = "Uint8Array")]
    pub fn revoke(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "Uint8Array")] device: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Time")] now: JsValue,
    ) -> Result<JsValue, Error> {
        let device = js::device_id(&device, "device")?;
        let now = js::u64_arg(&now, "now")?;
        Ok(u8a(&self.inner.revoke(&device, now)?))
    }

    /// Replaces the prekeys that are due (call it at start-up and daily);
    /// returns the prekey record to publish when it replaced any.
    #[wasm_bindgen(unchecked_return_type = "Uint8Array | undefined")]
    pub fn maintain(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "Time")] now: JsValue,
    ) -> Result<JsValue, Error> {
        let now = js::u64_arg(&now, "now")?;
        Ok(self
            .inner
            .maintain(now)?
            .map_or(JsValue::UNDEFINED, |r| u8a(&r)))
    }

    /// Answers a new device's link request: the response to send back, and
    /// the approval whose SAS to show. Needs the account key. Changes nothing.
    #[wasm_bindgen(js_name = respondToLink, unchecked_return_type = "LinkResponse")]
    pub fn respond_to_link(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "Uint8Array")] request: JsValue,
    ) -> Result<JsValue, Error> {
        let request = js::bytes(&request, "request")?;
        let (approval, response) = self.inner.respond_to_link(&request)?;
        Ok(object(&[
            ("response", u8a(&response)),
            ("approval", LinkApproval::wrap(approval).into()),
        ]))
    }

    /// The user confirmed that both devices show the same SAS: signs the
    /// next device list adding the new device, commits it, and returns the
    /// payload for the new device and the list to publish. With
    /// `shareAccountKey` the new device can link and revoke too. Uses up the
    /// approval, whatever the outcome.
    #[wasm_bindgen(js_name = approveLink, unchecked_return_type = "LinkApproved")]
    pub fn approve_link(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "LinkApproval")] approval: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Time")] now: JsValue,
        #[wasm_bindgen(js_name = shareAccountKey, unchecked_param_type = "boolean")]
        share_account_key: JsValue,
    ) -> Result<JsValue, Error> {
        let now = js::u64_arg(&now, "now")?;
        let share = js::boolean(&share_account_key, "shareAccountKey")?;
        let approval = take_approval(&approval)?;
        let approved = self.inner.approve_link(approval, now, share)?;
        Ok(object(&[
            ("payload", u8a(&approved.payload)),
            ("deviceList", u8a(&approved.device_list)),
        ]))
    }
}

fn account_from_seed(v: &JsValue) -> Result<Option<Account>, Error> {
    let Some(seed) = js::opt_bytes(v, "accountSeed")?.map(zeroize::Zeroizing::new) else {
        return Ok(None);
    };
    if let Ok(s) = <[u8; 16]>::try_from(seed.as_slice()) {
        let s = zeroize::Zeroizing::new(s);
        return Ok(Some(Account::from_recovery_seed(
            &RecoverySeed::from_bytes(*s),
        )));
    }
    if let Ok(s) = <[u8; 32]>::try_from(seed.as_slice()) {
        let s = zeroize::Zeroizing::new(s);
        return Ok(Some(Account::from_seed(&Ed25519Seed::from_bytes(*s))));
    }
    Err(Error::invalid(
        "accountSeed",
        &format!(
            "must be 16 (recovery seed) or 32 (Ed25519 seed) bytes long, got {}",
            seed.len()
        ),
    ))
}
