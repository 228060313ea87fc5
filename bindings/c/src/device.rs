//! `sr_device`: the device object (`session_ratchet::client::Device`).

use crate::error::{
    Error, SR_ERR_HANDLE_IN_USE, SR_ERR_INTERNAL, SR_ERR_INVALID_ARGUMENT, sr_error, sr_status,
};
use crate::ffi::{
    Handle, Out, OutBytes, array_in, bytes_in, guard, guard_void, handle, into_handle,
    opt_bytes_in, sr_buffer, str_in, string_out, take_handle,
};
use crate::rng::{sr_rng, take_rng};
use crate::store::{sr_store, store_arg};
use session_ratchet::account::{Account, SessionId};
use session_ratchet::client::{ClientError, Device, DeviceInfo, OutgoingEnvelope};
use session_ratchet::device::list::{ClientVersion, DeviceId, Platform};
use session_ratchet::identity::Ed25519PublicKey;
use session_ratchet::ratchet::StorageKey;
use session_ratchet::secret::{Ed25519Seed, RecoverySeed};
use session_ratchet::sessions::{ContentKind, StoredDevice};
use std::ffi::c_char;
use std::sync::{Mutex, TryLockError};
use zeroize::Zeroize;

/// Bytes of an account key (an Ed25519 public key).
pub const SR_ACCOUNT_KEY_LEN: usize = 32;
/// Bytes of a device id.
pub const SR_DEVICE_ID_LEN: usize = 32;
/// Bytes of a storage key.
pub const SR_STORAGE_KEY_LEN: usize = 32;
/// Bytes of an account's recovery seed.
pub const SR_RECOVERY_SEED_LEN: usize = 16;
/// Bytes of a full Ed25519 account seed (accepted by `sr_device_migrate`).
pub const SR_ACCOUNT_SEED_LEN: usize = 32;
/// Bytes of a session's transcript hash (`sr_device_active_session`).
pub const SR_SESSION_HASH_LEN: usize = 32;
/// Bytes of a Session ID (`05` and an X25519 key).
pub const SR_SESSION_ID_LEN: usize = 33;
/// Hex digits of a Session ID.
pub const SR_SESSION_ID_HEX_LEN: usize = 66;
/// The longest content `sr_device_send` takes (bytes).
pub const SR_MAX_CONTENT_LEN: usize = 12 * 1024;
const _: () = assert!(SR_MAX_CONTENT_LEN == session_ratchet::sessions::MAX_CONTENT_LEN);

/// `sr_device_info.platform`: not stated.
pub const SR_PLATFORM_UNSPECIFIED: u8 = 0;
/// `sr_device_info.platform`: Android.
pub const SR_PLATFORM_ANDROID: u8 = 1;
/// `sr_device_info.platform`: iOS.
pub const SR_PLATFORM_IOS: u8 = 2;
/// `sr_device_info.platform`: desktop (Windows, macOS, Linux).
pub const SR_PLATFORM_DESKTOP: u8 = 3;
/// `sr_device_info.platform`: web.
pub const SR_PLATFORM_WEB: u8 = 4;

/// `sr_received.kind`: an application message.
pub const SR_CONTENT_MESSAGE: u8 = 1;
/// `sr_received.kind`: a healing notice (a fresh session announced with
/// empty content, spec §8.8): do not show it.
pub const SR_CONTENT_HEAL: u8 = 2;

/// Parsed account keys kept per handle: clients pass keys as bytes, and
/// parsing one (a point decompression) costs as much as a few messages'
/// worth of hashing.
const KEY_CACHE: usize = 16;

/// One device of an account (spec §10.1). Send: it may move between
/// threads. One thread at a time: a call made while another call on the
/// same handle is running fails with `SR_ERR_HANDLE_IN_USE` (never
/// undefined behaviour), so serialise calls on a handle; different handles
/// are independent, even on one store.
#[repr(C)]
pub struct sr_device {
    magic: u64,
    state: Mutex<State>,
}

/// What the handle's lock guards: the device, and recently parsed keys.
pub(crate) struct State {
    pub(crate) device: Device,
    keys: Vec<([u8; 32], Ed25519PublicKey)>,
}

impl core::fmt::Debug for sr_device {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("sr_device")
    }
}

impl Handle for sr_device {
    const MAGIC: u64 = 0x7372_5f64_6576_6963; // "sr_devic"
    const NAME: &'static str = "sr_device";
}

pub(crate) fn new_device(device: Device) -> *mut sr_device {
    into_handle(sr_device {
        magic: sr_device::MAGIC,
        state: Mutex::new(State {
            device,
            keys: Vec::new(),
        }),
    })
}

impl State {
    /// Parses an account key, from the cache when it was seen recently.
    fn key(&mut self, bytes: [u8; 32], what: &str) -> Result<Ed25519PublicKey, Error> {
        if let Some(i) = self.keys.iter().position(|(b, _)| *b == bytes) {
            if i != 0 {
                self.keys.swap(0, i);
            }
            if let Some((_, k)) = self.keys.first() {
                return Ok(*k);
            }
        }
        let key = Ed25519PublicKey::from_bytes(&bytes)
            .map_err(|_| Error::invalid(what, "is not a valid Ed25519 public key"))?;
        if self.keys.len() >= KEY_CACHE {
            self.keys.pop();
        }
        self.keys.insert(0, (bytes, key));
        Ok(key)
    }
}

/// Runs `f` on the device behind a handle; a handle in use on another
/// thread is refused.
///
/// # Safety
/// `device` is NULL or a live handle of this library.
pub(crate) unsafe fn with_device<T>(
    device: *const sr_device,
    f: impl FnOnce(&mut State) -> Result<T, Error>,
) -> Result<T, Error> {
    // SAFETY: forwarded contract.
    let handle = unsafe { handle(device, "device") }?;
    let mut state = match handle.state.try_lock() {
        Ok(guard) => guard,
        Err(TryLockError::WouldBlock) => {
            return Err(Error::new(
                SR_ERR_HANDLE_IN_USE,
                "the device handle is in use by another call (another thread, or a store callback calling back): serialise calls on one handle",
            ));
        }
        Err(TryLockError::Poisoned(_)) => {
            return Err(Error::new(
                SR_ERR_INTERNAL,
                "an earlier call on this device handle failed internally: free it and open the device again from its store",
            ));
        }
    };
    f(&mut state)
}

// ---- arguments -------------------------------------------------------------

/// How a device describes itself in its account's device list.
#[derive(Debug)]
#[repr(C)]
pub struct sr_device_info {
    /// `SR_PLATFORM_*` (other values are kept as they are).
    pub platform: u8,
    /// A name the user recognises ("Pixel 9"): UTF-8, NUL-terminated, not
    /// NULL; at most 64 bytes are kept.
    pub description: *const c_char,
    /// The client's version: major.
    pub version_major: u16,
    /// Minor.
    pub version_minor: u16,
    /// Patch.
    pub version_patch: u16,
}

/// # Safety
/// `info` is NULL or a readable `sr_device_info` whose `description` is
/// NULL or NUL-terminated.
pub(crate) unsafe fn info_arg(info: *const sr_device_info) -> Result<DeviceInfo, Error> {
    if info.is_null() {
        return Err(Error::null("info"));
    }
    if !info.is_aligned() {
        return Err(Error::invalid("info", "is not aligned"));
    }
    // SAFETY: non-null, aligned and readable (the contract); every bit
    // pattern of `sr_device_info` is valid.
    let info = unsafe { info.read() };
    // SAFETY: forwarded contract for `description`.
    let description = unsafe { str_in(info.description, "info->description") }?;
    let mut out = DeviceInfo::new(description);
    out.platform = Platform::from_byte(info.platform);
    out.client_version = ClientVersion {
        major: info.version_major,
        minor: info.version_minor,
        patch: info.version_patch,
    };
    Ok(out)
}

/// # Safety
/// `key` is readable for `len` bytes (or NULL).
pub(crate) unsafe fn storage_key_arg(key: *const u8, len: usize) -> Result<StorageKey, Error> {
    // SAFETY: forwarded contract.
    let mut bytes = unsafe { array_in::<SR_STORAGE_KEY_LEN>(key, len, "storage_key") }?;
    let key = StorageKey::from_bytes(bytes);
    bytes.zeroize();
    Ok(key)
}

/// # Safety
/// `ptr` is readable for `len` bytes (or NULL).
unsafe fn device_id_arg(ptr: *const u8, len: usize, what: &str) -> Result<DeviceId, Error> {
    // SAFETY: forwarded contract.
    unsafe { array_in::<SR_DEVICE_ID_LEN>(ptr, len, what) }.map(DeviceId::from_bytes)
}

/// An input slice of the caller's.
#[derive(Debug)]
#[repr(C)]
pub struct sr_slice {
    /// The bytes (NULL only when `len` is 0).
    pub ptr: *const u8,
    /// How many.
    pub len: usize,
}

/// Sets a constructor's device output to NULL first, so it is NULL after
/// any failure.
///
/// # Safety
/// `out` is NULL or writable.
unsafe fn device_out(out: *mut *mut sr_device) -> Result<Out<*mut sr_device>, Error> {
    // SAFETY: forwarded contract.
    let mut out = unsafe { Out::new(out, "out") }?;
    out.write(std::ptr::null_mut());
    Ok(out)
}

/// # Safety
/// `out` is NULL or writable.
unsafe fn buffer_out(out: *mut sr_buffer, what: &str) -> Result<Out<sr_buffer>, Error> {
    // SAFETY: forwarded contract.
    let mut out = unsafe { Out::new(out, what) }?;
    out.write(sr_buffer::EMPTY);
    Ok(out)
}

/// # Safety
/// `out` is NULL or writable.
unsafe fn opt_buffer_out(out: *mut sr_buffer, what: &str) -> Result<Option<Out<sr_buffer>>, Error> {
    // SAFETY: forwarded contract.
    let mut out = unsafe { Out::optional(out, what) }?;
    if let Some(o) = out.as_mut() {
        o.write(sr_buffer::EMPTY);
    }
    Ok(out)
}

fn concat_keys(keys: impl IntoIterator<Item = [u8; 32]>) -> Vec<u8> {
    keys.into_iter().flatten().collect()
}

// ---- creating and opening --------------------------------------------------

/// Creates a new account with this device as its first device, in an empty
/// `store`, and returns the device in `*out` and the account's 16-byte
/// recovery seed in `*recovery_seed` (show it once as the recovery phrase,
/// `sr_recovery_phrase`, then free it; do not keep it). Publish
/// `sr_device_device_list` and `sr_device_prekey_record`. `rng` is taken
/// (NULL: the OS RNG). `now`: seconds since the Unix epoch.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sr_device_create_account(
    store: *const sr_store,
    storage_key: *const u8,
    storage_key_len: usize,
    rng: *mut sr_rng,
    info: *const sr_device_info,
    now: u64,
    out: *mut *mut sr_device,
    recovery_seed: *mut sr_buffer,
    err: *mut *mut sr_error,
) -> sr_status {
    guard(err, || {
        // SAFETY: P3: `rng` is NULL or a live sr_rng that the caller gives up.
        let rng = unsafe { take_rng(rng) };
        // SAFETY: P2: an output pointer is NULL or writable for its type (or its length) during the call.
        let mut out = unsafe { device_out(out) }?;
        // SAFETY: P2: an output pointer is NULL or writable for its type (or its length) during the call.
        let mut seed_out = unsafe { buffer_out(recovery_seed, "recovery_seed") }?;
        let rng = rng?;
        // SAFETY: P3: a handle argument is NULL or a live handle of this library.
        let store = unsafe { store_arg(store) }?;
        // SAFETY: P1: an input pointer is NULL or readable for its length (a string: to its NUL) during the call.
        let key = unsafe { storage_key_arg(storage_key, storage_key_len) }?;
        // SAFETY: P1: an input pointer is NULL or readable for its length (a string: to its NUL) during the call.
        let info = unsafe { info_arg(info) }?;
        let (device, seed) = Device::create_account(store, &key, rng, info, now)?;
        seed_out.write(sr_buffer::from_vec(seed.export().to_vec()));
        out.write(new_device(device));
        Ok(())
    })
}

/// Restores an account onto this new device from its 16-byte recovery seed
/// (when every earlier device is lost, spec §10.1), into an empty `store`.
/// `current_list` is the account's device list as fetched (NULL only if the
/// account never published one). Then publish the device list and prekey
/// record, add the contacts again, and revoke the lost devices.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sr_device_restore_account(
    store: *const sr_store,
    storage_key: *const u8,
    storage_key_len: usize,
    rng: *mut sr_rng,
    recovery_seed: *const u8,
    recovery_seed_len: usize,
    current_list: *const u8,
    current_list_len: usize,
    info: *const sr_device_info,
    now: u64,
    out: *mut *mut sr_device,
    err: *mut *mut sr_error,
) -> sr_status {
    guard(err, || {
        // SAFETY: P3: `rng` is NULL or a live sr_rng that the caller gives up.
        let rng = unsafe { take_rng(rng) };
        // SAFETY: P2: an output pointer is NULL or writable for its type (or its length) during the call.
        let mut out = unsafe { device_out(out) }?;
        let rng = rng?;
        // SAFETY: P3: a handle argument is NULL or a live handle of this library.
        let store = unsafe { store_arg(store) }?;
        // SAFETY: P1: an input pointer is NULL or readable for its length (a string: to its NUL) during the call.
        let key = unsafe { storage_key_arg(storage_key, storage_key_len) }?;
        // SAFETY: P1: an input pointer is NULL or readable for its length (a string: to its NUL) during the call.
        let mut seed = unsafe {
            array_in::<SR_RECOVERY_SEED_LEN>(recovery_seed, recovery_seed_len, "recovery_seed")
        }?;
        let seed_obj = RecoverySeed::from_bytes(seed);
        seed.zeroize();
        // SAFETY: P1: an input pointer is NULL or readable for its length (a string: to its NUL) during the call.
        let list = unsafe { opt_bytes_in(current_list, current_list_len, "current_list") }?;
        // SAFETY: P1: an input pointer is NULL or readable for its length (a string: to its NUL) during the call.
        let info = unsafe { info_arg(info) }?;
        let device = Device::restore_account(store, &key, rng, &seed_obj, list, info, now)?;
        out.write(new_device(device));
        Ok(())
    })
}

/// `sr_device_restore_account` from the 13-word recovery phrase (UTF-8,
/// NUL-terminated). `SR_ERR_PHRASE` if it does not decode;
/// `SR_ERR_UNSUPPORTED` in a build without the `session-v2` feature.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sr_device_restore_account_from_phrase(
    store: *const sr_store,
    storage_key: *const u8,
    storage_key_len: usize,
    rng: *mut sr_rng,
    phrase: *const c_char,
    current_list: *const u8,
    current_list_len: usize,
    info: *const sr_device_info,
    now: u64,
    out: *mut *mut sr_device,
    err: *mut *mut sr_error,
) -> sr_status {
    guard(err, || {
        // SAFETY: P3: `rng` is NULL or a live sr_rng that the caller gives up.
        let rng = unsafe { take_rng(rng) };
        // SAFETY: P2: an output pointer is NULL or writable for its type (or its length) during the call.
        let mut out = unsafe { device_out(out) }?;
        let rng = rng?;
        // SAFETY: P3: a handle argument is NULL or a live handle of this library.
        let store = unsafe { store_arg(store) }?;
        // SAFETY: P1: an input pointer is NULL or readable for its length (a string: to its NUL) during the call.
        let key = unsafe { storage_key_arg(storage_key, storage_key_len) }?;
        // SAFETY: P1: an input pointer is NULL or readable for its length (a string: to its NUL) during the call.
        let phrase = unsafe { str_in(phrase, "phrase") }?;
        // SAFETY: P1: an input pointer is NULL or readable for its length (a string: to its NUL) during the call.
        let list = unsafe { opt_bytes_in(current_list, current_list_len, "current_list") }?;
        // SAFETY: P1: an input pointer is NULL or readable for its length (a string: to its NUL) during the call.
        let info = unsafe { info_arg(info) }?;
        #[cfg(feature = "session-v2")]
        {
            let device =
                Device::restore_account_from_phrase(store, &key, rng, phrase, list, info, now)?;
            out.write(new_device(device));
            Ok(())
        }
        #[cfg(not(feature = "session-v2"))]
        {
            let _ = (store, key, rng, phrase, list, info, now, &mut out);
            Err(Error::new(
                crate::error::SR_ERR_UNSUPPORTED,
                "recovery phrases need the library's `session-v2` feature",
            ))
        }
    })
}

/// The 13-word recovery phrase of a 16-byte recovery seed, in `*out` (free
/// it with `sr_string_free`, which wipes it). `SR_ERR_UNSUPPORTED` without
/// the `session-v2` feature.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sr_recovery_phrase(
    recovery_seed: *const u8,
    recovery_seed_len: usize,
    out: *mut *mut c_char,
    err: *mut *mut sr_error,
) -> sr_status {
    guard(err, || {
        // SAFETY: P2: an output pointer is NULL or writable for its type (or its length) during the call.
        let mut out = unsafe { Out::new(out, "out") }?;
        out.write(std::ptr::null_mut());
        // SAFETY: P1: an input pointer is NULL or readable for its length (a string: to its NUL) during the call.
        let mut seed = unsafe {
            array_in::<SR_RECOVERY_SEED_LEN>(recovery_seed, recovery_seed_len, "recovery_seed")
        }?;
        let seed_obj = RecoverySeed::from_bytes(seed);
        seed.zeroize();
        #[cfg(feature = "session-v2")]
        {
            let phrase = session_ratchet::session_v2::mnemonic::encode_recovery_seed(&seed_obj)
                .map_err(|e| {
                    Error::new(crate::error::SR_ERR_PHRASE, format!("recovery phrase: {e}"))
                })?;
            out.write(string_out(phrase.as_str())?);
            Ok(())
        }
        #[cfg(not(feature = "session-v2"))]
        {
            let _ = (seed_obj, &mut out);
            Err(Error::new(
                crate::error::SR_ERR_UNSUPPORTED,
                "recovery phrases need the library's `session-v2` feature",
            ))
        }
    })
}

/// Opens the device in `store`. `min_generation` is the last
/// `sr_device_generation` the client saw (kept, for example, in the
/// platform keystore; 0 if unknown): an older store is
/// `SR_ERR_ROLLED_BACK`. A wrong storage key is `SR_ERR_WRONG_KEY`; an
/// empty store `SR_ERR_EMPTY_STORE`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sr_device_open(
    store: *const sr_store,
    storage_key: *const u8,
    storage_key_len: usize,
    rng: *mut sr_rng,
    min_generation: u64,
    out: *mut *mut sr_device,
    err: *mut *mut sr_error,
) -> sr_status {
    guard(err, || {
        // SAFETY: P3: `rng` is NULL or a live sr_rng that the caller gives up.
        let rng = unsafe { take_rng(rng) };
        // SAFETY: P2: an output pointer is NULL or writable for its type (or its length) during the call.
        let mut out = unsafe { device_out(out) }?;
        let rng = rng?;
        // SAFETY: P3: a handle argument is NULL or a live handle of this library.
        let store = unsafe { store_arg(store) }?;
        // SAFETY: P1: an input pointer is NULL or readable for its length (a string: to its NUL) during the call.
        let key = unsafe { storage_key_arg(storage_key, storage_key_len) }?;
        let device = Device::open(store, &key, rng, min_generation)?;
        out.write(new_device(device));
        Ok(())
    })
}

/// Opens a store older than the state this device last had (a restored
/// backup, a rolled-back database, a store `sr_device_open` refused with
/// `SR_ERR_ROLLED_BACK`) without ever sending in its sessions again (spec
/// §8.8): every session becomes stale, every prekey is replaced, and the
/// generation moves past `min_generation`. Then publish the prekey record
/// and call `sr_device_heal`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sr_device_restore_from_backup(
    store: *const sr_store,
    storage_key: *const u8,
    storage_key_len: usize,
    rng: *mut sr_rng,
    min_generation: u64,
    now: u64,
    out: *mut *mut sr_device,
    err: *mut *mut sr_error,
) -> sr_status {
    guard(err, || {
        // SAFETY: P3: `rng` is NULL or a live sr_rng that the caller gives up.
        let rng = unsafe { take_rng(rng) };
        // SAFETY: P2: an output pointer is NULL or writable for its type (or its length) during the call.
        let mut out = unsafe { device_out(out) }?;
        let rng = rng?;
        // SAFETY: P3: a handle argument is NULL or a live handle of this library.
        let store = unsafe { store_arg(store) }?;
        // SAFETY: P1: an input pointer is NULL or readable for its length (a string: to its NUL) during the call.
        let key = unsafe { storage_key_arg(storage_key, storage_key_len) }?;
        let device = Device::restore_from_backup(store, &key, rng, min_generation, now)?;
        out.write(new_device(device));
        Ok(())
    })
}

/// Moves a device stored in the single-blob format of spec §8.9 (the plain
/// encoding, `blob`) into an empty `store` as records. `account_seed` is the
/// account key if the client kept it beside the blob: its 16-byte recovery
/// seed or 32-byte Ed25519 seed (NULL: the device does not hold it). A blob
/// kept encrypted (§8.9's encrypted form) goes to
/// `sr_device_migrate_encrypted` instead.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sr_device_migrate(
    store: *const sr_store,
    storage_key: *const u8,
    storage_key_len: usize,
    rng: *mut sr_rng,
    blob: *const u8,
    blob_len: usize,
    account_seed: *const u8,
    account_seed_len: usize,
    now: u64,
    out: *mut *mut sr_device,
    err: *mut *mut sr_error,
) -> sr_status {
    // SAFETY: the caller's contract is this function's (P1-P3), with no blob key.
    unsafe {
        migrate(
            store,
            (storage_key, storage_key_len),
            rng,
            (blob, blob_len),
            None,
            (account_seed, account_seed_len),
            now,
            out,
            err,
        )
    }
}

/// `sr_device_migrate` for a blob kept in the encrypted form of spec §8.9
/// (`StoredDevice::encrypt`): `blob_key` is the 32-byte key it was
/// encrypted under (it may equal `storage_key`). A wrong key or an altered
/// blob gives `SR_ERR_SESSION_STATE` and writes nothing.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sr_device_migrate_encrypted(
    store: *const sr_store,
    storage_key: *const u8,
    storage_key_len: usize,
    rng: *mut sr_rng,
    blob: *const u8,
    blob_len: usize,
    blob_key: *const u8,
    blob_key_len: usize,
    account_seed: *const u8,
    account_seed_len: usize,
    now: u64,
    out: *mut *mut sr_device,
    err: *mut *mut sr_error,
) -> sr_status {
    // SAFETY: the caller's contract is this function's (P1-P3).
    unsafe {
        migrate(
            store,
            (storage_key, storage_key_len),
            rng,
            (blob, blob_len),
            Some((blob_key, blob_key_len)),
            (account_seed, account_seed_len),
            now,
            out,
            err,
        )
    }
}

/// The body of both migrate functions; `blob_key` given: the blob is the
/// encrypted form under it.
///
/// # Safety
/// P1-P3 for every pointer, as the public functions state.
#[allow(clippy::too_many_arguments)]
unsafe fn migrate(
    store: *const sr_store,
    storage_key: (*const u8, usize),
    rng: *mut sr_rng,
    blob: (*const u8, usize),
    blob_key: Option<(*const u8, usize)>,
    account_seed: (*const u8, usize),
    now: u64,
    out: *mut *mut sr_device,
    err: *mut *mut sr_error,
) -> sr_status {
    guard(err, || {
        // SAFETY: P3: `rng` is NULL or a live sr_rng that the caller gives up.
        let rng = unsafe { take_rng(rng) };
        // SAFETY: P2: an output pointer is NULL or writable for its type (or its length) during the call.
        let mut out = unsafe { device_out(out) }?;
        let rng = rng?;
        // SAFETY: P3: a handle argument is NULL or a live handle of this library.
        let store = unsafe { store_arg(store) }?;
        // SAFETY: P1: an input pointer is NULL or readable for its length (a string: to its NUL) during the call.
        let key = unsafe { storage_key_arg(storage_key.0, storage_key.1) }?;
        // SAFETY: P1: an input pointer is NULL or readable for its length (a string: to its NUL) during the call.
        let blob = unsafe { bytes_in(blob.0, blob.1, "blob") }?;
        if blob.is_empty() {
            return Err(Error::invalid("blob", "is empty"));
        }
        // SAFETY: P1: an input pointer is NULL or readable for its length (a string: to its NUL) during the call.
        let seed = unsafe { opt_bytes_in(account_seed.0, account_seed.1, "account_seed") }?;
        let account = match seed {
            None => None,
            Some(s) => Some(account_from_seed(s)?),
        };
        let blob = match blob_key {
            None => StoredDevice::from_bytes(blob),
            Some((ptr, len)) => {
                // SAFETY: P1: an input pointer is NULL or readable for its length (a string: to its NUL) during the call.
                let mut bytes = unsafe { array_in::<SR_STORAGE_KEY_LEN>(ptr, len, "blob_key") }?;
                let blob_key = StorageKey::from_bytes(bytes);
                bytes.zeroize();
                StoredDevice::decrypt(blob, &blob_key).map_err(ClientError::from)?
            }
        };
        let device = Device::migrate(store, &key, rng, &blob, account, now)?;
        out.write(new_device(device));
        Ok(())
    })
}

fn account_from_seed(seed: &[u8]) -> Result<Account, Error> {
    if let Ok(mut s) = <[u8; SR_RECOVERY_SEED_LEN]>::try_from(seed) {
        let account = Account::from_recovery_seed(&RecoverySeed::from_bytes(s));
        s.zeroize();
        return Ok(account);
    }
    if let Ok(mut s) = <[u8; SR_ACCOUNT_SEED_LEN]>::try_from(seed) {
        let account = Account::from_seed(&Ed25519Seed::from_bytes(s));
        s.zeroize();
        return Ok(account);
    }
    Err(Error::new(
        SR_ERR_INVALID_ARGUMENT,
        format!(
            "argument `account_seed` must be {SR_RECOVERY_SEED_LEN} (recovery seed) or {SR_ACCOUNT_SEED_LEN} (Ed25519 seed) bytes long, got {}",
            seed.len()
        ),
    ))
}

/// Frees a device handle (its store keeps every committed record). NULL is
/// allowed. Must not race with a call on the same handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sr_device_free(device: *mut sr_device) {
    guard_void(|| {
        // SAFETY: P3: a handle argument is NULL or a live handle of this library.
        drop(unsafe { take_handle(device) });
    });
}

// ---- what a client reads ---------------------------------------------------

/// The generation of the device's last commit (it only moves forward): keep
/// the latest value where a rollback of the store cannot reach it and pass
/// it to `sr_device_open`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sr_device_generation(
    device: *const sr_device,
    out: *mut u64,
    err: *mut *mut sr_error,
) -> sr_status {
    guard(err, || {
        // SAFETY: P2: an output pointer is NULL or writable for its type (or its length) during the call.
        let mut out = unsafe { Out::new(out, "out") }?;
        // SAFETY: P3: a handle argument is NULL or a live handle of this library.
        let g = unsafe { with_device(device, |s| Ok(s.device.generation())) }?;
        out.write(g);
        Ok(())
    })
}

/// This device's id (`out_len` must be `SR_DEVICE_ID_LEN`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sr_device_id(
    device: *const sr_device,
    out: *mut u8,
    out_len: usize,
    err: *mut *mut sr_error,
) -> sr_status {
    guard(err, || {
        // SAFETY: P2: an output pointer is NULL or writable for its type (or its length) during the call.
        let mut out = unsafe { OutBytes::new(out, out_len, SR_DEVICE_ID_LEN, "out") }?;
        // SAFETY: P3: a handle argument is NULL or a live handle of this library.
        let id = unsafe { with_device(device, |s| Ok(s.device.device_id())) }?;
        out.write(id.as_bytes())
    })
}

/// The account's key (`out_len` must be `SR_ACCOUNT_KEY_LEN`): what
/// `sr_device_send` takes as the conversation.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sr_device_account_key(
    device: *const sr_device,
    out: *mut u8,
    out_len: usize,
    err: *mut *mut sr_error,
) -> sr_status {
    guard(err, || {
        // SAFETY: P2: an output pointer is NULL or writable for its type (or its length) during the call.
        let mut out = unsafe { OutBytes::new(out, out_len, SR_ACCOUNT_KEY_LEN, "out") }?;
        // SAFETY: P3: a handle argument is NULL or a live handle of this library.
        let key = unsafe { with_device(device, |s| Ok(s.device.account_key())) }?;
        out.write(&key.to_bytes())
    })
}

/// The transcript hash of the active session with one device of an
/// account (spec §8.6.1), in `out` (`out_len` must be
/// `SR_SESSION_HASH_LEN`), and `*found` = true; `*found` = false (and `out`
/// zeroed) when there is none. Two devices that converged report the same
/// value: a client may compare them to diagnose a drift. Loads the
/// contact's records if needed; an account that is no contact has none.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sr_device_active_session(
    device: *mut sr_device,
    account: *const u8,
    account_len: usize,
    device_id: *const u8,
    device_id_len: usize,
    out: *mut u8,
    out_len: usize,
    found: *mut bool,
    err: *mut *mut sr_error,
) -> sr_status {
    guard(err, || {
        // SAFETY: P2: an output pointer is NULL or writable for its type (or its length) during the call.
        let mut out = unsafe { OutBytes::new(out, out_len, SR_SESSION_HASH_LEN, "out") }?;
        // SAFETY: P2: an output pointer is NULL or writable for its type (or its length) during the call.
        let mut found = unsafe { Out::new(found, "found") }?;
        found.write(false);
        out.write(&[0; SR_SESSION_HASH_LEN])?;
        // SAFETY: P1: an input pointer is NULL or readable for its length (a string: to its NUL) during the call.
        let account = unsafe { array_in::<SR_ACCOUNT_KEY_LEN>(account, account_len, "account") }?;
        // SAFETY: P1: an input pointer is NULL or readable for its length (a string: to its NUL) during the call.
        let id = unsafe { device_id_arg(device_id, device_id_len, "device_id") }?;
        // SAFETY: P3: a handle argument is NULL or a live handle of this library.
        let hash = unsafe {
            with_device(device.cast_const(), |s| {
                let account = s.key(account, "account")?;
                Ok(s.device.active_session(&account, &id)?)
            })
        }?;
        if let Some(h) = hash {
            out.write(&h)?;
            found.write(true);
        }
        Ok(())
    })
}

/// The account's Session ID as 66 lowercase hex digits (what users compare
/// and share), in `*out`; free it with `sr_string_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sr_device_session_id(
    device: *const sr_device,
    out: *mut *mut c_char,
    err: *mut *mut sr_error,
) -> sr_status {
    guard(err, || {
        // SAFETY: P2: an output pointer is NULL or writable for its type (or its length) during the call.
        let mut out = unsafe { Out::new(out, "out") }?;
        out.write(std::ptr::null_mut());
        // SAFETY: P3: a handle argument is NULL or a live handle of this library.
        let id = unsafe { with_device(device, |s| Ok(s.device.session_id())) }?;
        out.write(string_out(&id.to_hex())?);
        Ok(())
    })
}

/// The account's Session ID as its 33 bytes (`out_len` must be
/// `SR_SESSION_ID_LEN`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sr_device_session_id_bytes(
    device: *const sr_device,
    out: *mut u8,
    out_len: usize,
    err: *mut *mut sr_error,
) -> sr_status {
    guard(err, || {
        // SAFETY: P2: an output pointer is NULL or writable for its type (or its length) during the call.
        let mut out = unsafe { OutBytes::new(out, out_len, SR_SESSION_ID_LEN, "out") }?;
        // SAFETY: P3: a handle argument is NULL or a live handle of this library.
        let id = unsafe { with_device(device, |s| Ok(s.device.session_id())) }?;
        out.write(id.as_bytes())
    })
}

/// Whether this device holds the account key (it can link and revoke).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sr_device_holds_account_key(
    device: *const sr_device,
    out: *mut bool,
    err: *mut *mut sr_error,
) -> sr_status {
    guard(err, || {
        // SAFETY: P2: an output pointer is NULL or writable for its type (or its length) during the call.
        let mut out = unsafe { Out::new(out, "out") }?;
        // SAFETY: P3: a handle argument is NULL or a live handle of this library.
        let held = unsafe { with_device(device, |s| Ok(s.device.holds_account_key())) }?;
        out.write(held);
        Ok(())
    })
}

/// Whether this device was removed from its account.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sr_device_is_revoked(
    device: *const sr_device,
    out: *mut bool,
    err: *mut *mut sr_error,
) -> sr_status {
    guard(err, || {
        // SAFETY: P2: an output pointer is NULL or writable for its type (or its length) during the call.
        let mut out = unsafe { Out::new(out, "out") }?;
        // SAFETY: P3: a handle argument is NULL or a live handle of this library.
        let revoked = unsafe { with_device(device, |s| Ok(s.device.is_revoked())) }?;
        out.write(revoked);
        Ok(())
    })
}

/// The account's device list as this device holds it: publish it after
/// creating, linking, restoring or revoking.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sr_device_device_list(
    device: *const sr_device,
    out: *mut sr_buffer,
    err: *mut *mut sr_error,
) -> sr_status {
    guard(err, || {
        // SAFETY: P2: an output pointer is NULL or writable for its type (or its length) during the call.
        let mut out = unsafe { buffer_out(out, "out") }?;
        // SAFETY: P3: a handle argument is NULL or a live handle of this library.
        let list = unsafe { with_device(device, |s| Ok(s.device.device_list())) }?;
        out.write(sr_buffer::from_vec(list));
        Ok(())
    })
}

/// The account's prekey record to publish (spec §8.4): this device's bundle
/// and those it holds for its other devices.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sr_device_prekey_record(
    device: *mut sr_device,
    out: *mut sr_buffer,
    err: *mut *mut sr_error,
) -> sr_status {
    guard(err, || {
        // SAFETY: P2: an output pointer is NULL or writable for its type (or its length) during the call.
        let mut out = unsafe { buffer_out(out, "out") }?;
        // SAFETY: P3: a handle argument is NULL or a live handle of this library.
        let record =
            unsafe { with_device(device.cast_const(), |s| Ok(s.device.prekey_record()?)) }?;
        out.write(sr_buffer::from_vec(record));
        Ok(())
    })
}

/// The contacts' account keys, ascending, concatenated (`out->len` is
/// `SR_ACCOUNT_KEY_LEN` times their number).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sr_device_contacts(
    device: *const sr_device,
    out: *mut sr_buffer,
    err: *mut *mut sr_error,
) -> sr_status {
    guard(err, || {
        // SAFETY: P2: an output pointer is NULL or writable for its type (or its length) during the call.
        let mut out = unsafe { buffer_out(out, "out") }?;
        // SAFETY: P3: a handle argument is NULL or a live handle of this library.
        let keys = unsafe { with_device(device, |s| Ok(s.device.contacts())) }?;
        out.write(sr_buffer::from_vec(concat_keys(
            keys.iter().map(Ed25519PublicKey::to_bytes),
        )));
        Ok(())
    })
}

// ---- contacts --------------------------------------------------------------

/// # Safety
/// The header's pointer contract for every argument.
#[allow(clippy::too_many_arguments)]
unsafe fn add_contact(
    device: *const sr_device,
    session_id: Result<SessionId, Error>,
    device_list: *const u8,
    device_list_len: usize,
    prekey_record: *const u8,
    prekey_record_len: usize,
    account_out: *mut u8,
    account_out_len: usize,
) -> Result<(), Error> {
    let mut account_out = if account_out.is_null() && account_out_len == 0 {
        None
    } else {
        // SAFETY: forwarded contract.
        Some(unsafe {
            OutBytes::new(
                account_out,
                account_out_len,
                SR_ACCOUNT_KEY_LEN,
                "account_out",
            )
        }?)
    };
    let session_id = session_id?;
    // SAFETY: forwarded contract.
    let list = unsafe { bytes_in(device_list, device_list_len, "device_list") }?;
    // SAFETY: forwarded contract.
    let record = unsafe { opt_bytes_in(prekey_record, prekey_record_len, "prekey_record") }?;
    // SAFETY: forwarded contract.
    let account = unsafe {
        with_device(device, |s| {
            Ok(s.device.add_contact(&session_id, list, record)?)
        })
    }?;
    if let Some(out) = account_out.as_mut() {
        out.write(&account.to_bytes())?;
    }
    Ok(())
}

/// Adds a contact from its device list as fetched from the network, checked
/// against the Session ID the user gave (66 hex digits, NUL-terminated), and
/// its prekey record if fetched too (NULL: none). A known contact's list is
/// taken as an update. Writes the contact's account key to `account_out`
/// (`SR_ACCOUNT_KEY_LEN` bytes; NULL with length 0: not wanted).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sr_device_add_contact(
    device: *mut sr_device,
    session_id_hex: *const c_char,
    device_list: *const u8,
    device_list_len: usize,
    prekey_record: *const u8,
    prekey_record_len: usize,
    account_out: *mut u8,
    account_out_len: usize,
    err: *mut *mut sr_error,
) -> sr_status {
    guard(err, || {
        // SAFETY: P1: an input pointer is NULL or readable for its length (a string: to its NUL) during the call.
        let sid = unsafe { str_in(session_id_hex, "session_id_hex") }
            .and_then(|s| Ok(SessionId::from_hex(s)?));
        // SAFETY: P1-P3 hold for every argument (this function's own contract).
        unsafe {
            add_contact(
                device.cast_const(),
                sid,
                device_list,
                device_list_len,
                prekey_record,
                prekey_record_len,
                account_out,
                account_out_len,
            )
        }
    })
}

/// `sr_device_add_contact` with the Session ID as its 33 bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sr_device_add_contact_bytes(
    device: *mut sr_device,
    session_id: *const u8,
    session_id_len: usize,
    device_list: *const u8,
    device_list_len: usize,
    prekey_record: *const u8,
    prekey_record_len: usize,
    account_out: *mut u8,
    account_out_len: usize,
    err: *mut *mut sr_error,
) -> sr_status {
    guard(err, || {
        // SAFETY: P1: an input pointer is NULL or readable for its length (a string: to its NUL) during the call.
        let sid = unsafe { bytes_in(session_id, session_id_len, "session_id") }.and_then(|b| {
            if b.is_empty() && session_id.is_null() {
                return Err(Error::null("session_id"));
            }
            Ok(SessionId::from_bytes(b)?)
        });
        // SAFETY: P1-P3 hold for every argument (this function's own contract).
        unsafe {
            add_contact(
                device.cast_const(),
                sid,
                device_list,
                device_list_len,
                prekey_record,
                prekey_record_len,
                account_out,
                account_out_len,
            )
        }
    })
}

/// Offers a newer device list (of a contact or of this account) and,
/// optionally, the account's current prekey record (NULL: none).
/// `intermediates[0..intermediates_len]` are the lists between the held and
/// the offered one, if fetched (NULL with 0: none). Revoked devices'
/// sessions are deleted. The devices that became active and those removed
/// are written, as concatenated `SR_DEVICE_ID_LEN`-byte ids, to `added` and
/// `removed` (each may be NULL: not wanted).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sr_device_update_contact(
    device: *mut sr_device,
    device_list: *const u8,
    device_list_len: usize,
    intermediates: *const sr_slice,
    intermediates_len: usize,
    prekey_record: *const u8,
    prekey_record_len: usize,
    added: *mut sr_buffer,
    removed: *mut sr_buffer,
    err: *mut *mut sr_error,
) -> sr_status {
    guard(err, || {
        // SAFETY: P2: an output pointer is NULL or writable for its type (or its length) during the call.
        let mut added = unsafe { opt_buffer_out(added, "added") }?;
        // SAFETY: P2: an output pointer is NULL or writable for its type (or its length) during the call.
        let mut removed = unsafe { opt_buffer_out(removed, "removed") }?;
        // SAFETY: P1: an input pointer is NULL or readable for its length (a string: to its NUL) during the call.
        let list = unsafe { bytes_in(device_list, device_list_len, "device_list") }?;
        let between: Vec<Vec<u8>> = if intermediates.is_null() {
            if intermediates_len != 0 {
                return Err(Error::null("intermediates"));
            }
            Vec::new()
        } else {
            if !intermediates.is_aligned() {
                return Err(Error::invalid("intermediates", "is not aligned"));
            }
            if intermediates_len > 4096 {
                return Err(Error::invalid("intermediates_len", "is beyond 4096 lists"));
            }
            // SAFETY: non-null, aligned, and by the contract an array of
            // `intermediates_len` readable `sr_slice`s.
            let slices = unsafe { std::slice::from_raw_parts(intermediates, intermediates_len) };
            slices
                .iter()
                .map(|s| {
                    // SAFETY: each slice is readable for its length (the contract).
                    unsafe { bytes_in(s.ptr, s.len, "intermediates[i]") }.map(<[u8]>::to_vec)
                })
                .collect::<Result<_, _>>()?
        };
        // SAFETY: P1: an input pointer is NULL or readable for its length (a string: to its NUL) during the call.
        let record = unsafe { opt_bytes_in(prekey_record, prekey_record_len, "prekey_record") }?;
        // SAFETY: P3: a handle argument is NULL or a live handle of this library.
        let change = unsafe {
            with_device(device.cast_const(), |s| {
                Ok(s.device.update_contact(list, &between, record)?)
            })
        }?;
        if let Some(out) = added.as_mut() {
            out.write(sr_buffer::from_vec(concat_keys(
                change.added.iter().map(|d| *d.as_bytes()),
            )));
        }
        if let Some(out) = removed.as_mut() {
            out.write(sr_buffer::from_vec(concat_keys(
                change.removed.iter().map(|d| *d.as_bytes()),
            )));
        }
        Ok(())
    })
}

// ---- sending and receiving -------------------------------------------------

/// One envelope to post, and the accounts whose mailboxes it goes to.
#[derive(Debug)]
#[repr(C)]
pub struct sr_envelope {
    /// The envelope's bytes.
    pub bytes: sr_buffer,
    /// Post it to each of these accounts' mailboxes: concatenated
    /// `SR_ACCOUNT_KEY_LEN`-byte account keys.
    pub mailboxes: sr_buffer,
}

/// Envelopes to post: `ptr[0..len]` (NULL when `len` is 0). Free with
/// `sr_envelopes_free`.
#[derive(Debug)]
#[repr(C)]
pub struct sr_envelopes {
    /// The envelopes.
    pub ptr: *mut sr_envelope,
    /// How many.
    pub len: usize,
}

impl sr_envelopes {
    const EMPTY: Self = Self {
        ptr: std::ptr::null_mut(),
        len: 0,
    };

    fn from_outgoing(out: Vec<OutgoingEnvelope>) -> Self {
        if out.is_empty() {
            return Self::EMPTY;
        }
        let items: Box<[sr_envelope]> = out
            .into_iter()
            .map(|e| sr_envelope {
                bytes: sr_buffer::from_vec(e.bytes),
                mailboxes: sr_buffer::from_vec(concat_keys(
                    e.mailboxes.iter().map(Ed25519PublicKey::to_bytes),
                )),
            })
            .collect();
        let len = items.len();
        Self {
            ptr: Box::into_raw(items).cast::<sr_envelope>(),
            len,
        }
    }
}

/// Frees envelopes and sets them to empty. NULL is allowed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sr_envelopes_free(envelopes: *mut sr_envelopes) {
    guard_void(|| {
        if envelopes.is_null() || !envelopes.is_aligned() {
            return;
        }
        // SAFETY: non-null, aligned; by the contract envelopes this library
        // filled, not used elsewhere during the call.
        let envelopes = unsafe { &mut *envelopes };
        if !envelopes.ptr.is_null() {
            let raw = std::ptr::slice_from_raw_parts_mut(envelopes.ptr, envelopes.len);
            // SAFETY: `ptr`/`len` are the `Box<[sr_envelope]>` made by
            // `from_outgoing`, given back once (the contract).
            let mut items = unsafe { Box::from_raw(raw) };
            for e in items.iter_mut() {
                // SAFETY: buffers made by `sr_buffer::from_vec`.
                unsafe { e.bytes.release() };
                // SAFETY: buffers made by `sr_buffer::from_vec`.
                unsafe { e.mailboxes.release() };
            }
        }
        *envelopes = sr_envelopes::EMPTY;
    });
}

/// Encrypts `content` for every device of `conversation` (a contact's
/// account key, or this account's for a note to self) and this account's
/// other devices (spec §8.6.4). Commits first; returns the envelopes to
/// post in `*out`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sr_device_send(
    device: *mut sr_device,
    conversation: *const u8,
    conversation_len: usize,
    content: *const u8,
    content_len: usize,
    now: u64,
    out: *mut sr_envelopes,
    err: *mut *mut sr_error,
) -> sr_status {
    guard(err, || {
        // SAFETY: P2: an output pointer is NULL or writable for its type (or its length) during the call.
        let mut out = unsafe { Out::new(out, "out") }?;
        out.write(sr_envelopes::EMPTY);
        // SAFETY: P1: an input pointer is NULL or readable for its length (a string: to its NUL) during the call.
        let conv = unsafe {
            array_in::<SR_ACCOUNT_KEY_LEN>(conversation, conversation_len, "conversation")
        }?;
        // SAFETY: P1: an input pointer is NULL or readable for its length (a string: to its NUL) during the call.
        let content = unsafe { bytes_in(content, content_len, "content") }?;
        // SAFETY: P3: a handle argument is NULL or a live handle of this library.
        let sent = unsafe {
            with_device(device.cast_const(), |s| {
                let conv = s.key(conv, "conversation")?;
                Ok(s.device.send(&conv, content, now)?)
            })
        }?;
        out.write(sr_envelopes::from_outgoing(sent));
        Ok(())
    })
}

/// A decrypted message. Free with `sr_received_free` (wipes the content).
#[derive(Debug)]
#[repr(C)]
pub struct sr_received {
    /// The sending account's key.
    pub sender: [u8; SR_ACCOUNT_KEY_LEN],
    /// The sending device's id.
    pub sender_device: [u8; SR_DEVICE_ID_LEN],
    /// The conversation: this account, or (for a copy of a message another
    /// device of this account sent) the contact it was sent to.
    pub conversation: [u8; SR_ACCOUNT_KEY_LEN],
    /// `SR_CONTENT_MESSAGE` or `SR_CONTENT_HEAL`.
    pub kind: u8,
    /// The message started a new session (a prekey message).
    pub new_session: bool,
    /// The sender holds a newer device list of its own account: fetch it.
    pub sender_list_newer: bool,
    /// The sender used an older list of this account than this device
    /// holds (it may still write to a revoked device): make sure the newer
    /// list reaches it (spec §8.3).
    pub recipient_list_outdated: bool,
    /// The content.
    pub content: sr_buffer,
}

/// Decrypts one envelope from a mailbox (spec §8.6.5) into `*out`. Commits
/// the session it used before returning; on error nothing changed (and
/// `*out` holds empty content).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sr_device_receive(
    device: *mut sr_device,
    envelope: *const u8,
    envelope_len: usize,
    out: *mut sr_received,
    err: *mut *mut sr_error,
) -> sr_status {
    guard(err, || {
        // SAFETY: P2: an output pointer is NULL or writable for its type (or its length) during the call.
        let mut out = unsafe { Out::new(out, "out") }?;
        out.write(sr_received {
            sender: [0; 32],
            sender_device: [0; 32],
            conversation: [0; 32],
            kind: 0,
            new_session: false,
            sender_list_newer: false,
            recipient_list_outdated: false,
            content: sr_buffer::EMPTY,
        });
        // SAFETY: P1: an input pointer is NULL or readable for its length (a string: to its NUL) during the call.
        let envelope = unsafe { bytes_in(envelope, envelope_len, "envelope") }?;
        // SAFETY: P3: a handle argument is NULL or a live handle of this library.
        let got = unsafe { with_device(device.cast_const(), |s| Ok(s.device.receive(envelope)?)) }?;
        out.write(sr_received {
            sender: got.sender.to_bytes(),
            sender_device: *got.sender_device.as_bytes(),
            conversation: got.conversation.to_bytes(),
            kind: match got.kind {
                ContentKind::Message => SR_CONTENT_MESSAGE,
                ContentKind::Heal => SR_CONTENT_HEAL,
                _ => 0,
            },
            new_session: got.new_session,
            sender_list_newer: got.sender_list_newer,
            recipient_list_outdated: got.recipient_list_outdated,
            content: sr_buffer::from_vec(got.content),
        });
        Ok(())
    })
}

/// Wipes and frees a received message's content. NULL is allowed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sr_received_free(received: *mut sr_received) {
    guard_void(|| {
        if received.is_null() || !received.is_aligned() {
            return;
        }
        // SAFETY: non-null, aligned, and by the contract a message this
        // library filled; only its content buffer is touched.
        let content = unsafe { &mut (*received).content };
        // SAFETY: a buffer made by `sr_buffer::from_vec`.
        unsafe { content.release() };
    });
}

/// Starts fresh sessions, with a healing notice each, with every device of
/// every contact (and this account's other devices) that has none this
/// device may send in (spec §8.8); call it after
/// `sr_device_restore_from_backup`. `*out` holds the envelopes to post
/// (committed). Accounts that could not be healed (nothing changed for
/// them; sending to one says why) are written to `failed` as concatenated
/// `SR_ACCOUNT_KEY_LEN`-byte account keys (NULL: not wanted): call it again
/// later.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sr_device_heal(
    device: *mut sr_device,
    now: u64,
    out: *mut sr_envelopes,
    failed: *mut sr_buffer,
    err: *mut *mut sr_error,
) -> sr_status {
    guard(err, || {
        // SAFETY: P2: an output pointer is NULL or writable for its type (or its length) during the call.
        let mut out = unsafe { Out::new(out, "out") }?;
        out.write(sr_envelopes::EMPTY);
        // SAFETY: P2: an output pointer is NULL or writable for its type (or its length) during the call.
        let mut failed = unsafe { opt_buffer_out(failed, "failed") }?;
        // SAFETY: P3: a handle argument is NULL or a live handle of this library.
        let healed = unsafe { with_device(device.cast_const(), |s| Ok(s.device.heal(now))) }?;
        if let Some(f) = failed.as_mut() {
            f.write(sr_buffer::from_vec(concat_keys(
                healed.failed.iter().map(|(k, _)| k.to_bytes()),
            )));
        }
        out.write(sr_envelopes::from_outgoing(healed.envelopes));
        Ok(())
    })
}

/// Revokes one of this account's devices (spec §8.3): signs the next device
/// list, deletes the sessions with the device, and returns the list to
/// publish in `*list_out`. Needs the account key (`SR_ERR_NO_ACCOUNT_KEY`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sr_device_revoke(
    device: *mut sr_device,
    device_id: *const u8,
    device_id_len: usize,
    now: u64,
    list_out: *mut sr_buffer,
    err: *mut *mut sr_error,
) -> sr_status {
    guard(err, || {
        // SAFETY: P2: an output pointer is NULL or writable for its type (or its length) during the call.
        let mut out = unsafe { buffer_out(list_out, "list_out") }?;
        // SAFETY: P1: an input pointer is NULL or readable for its length (a string: to its NUL) during the call.
        let id = unsafe { device_id_arg(device_id, device_id_len, "device_id") }?;
        // SAFETY: P3: a handle argument is NULL or a live handle of this library.
        let list = unsafe { with_device(device.cast_const(), |s| Ok(s.device.revoke(&id, now)?)) }?;
        out.write(sr_buffer::from_vec(list));
        Ok(())
    })
}

/// Replaces prekeys that are due (every 7 days); call it at start-up and
/// daily. When it rotated, `*record_out` is the prekey record to publish;
/// otherwise it is empty (`len` 0).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sr_device_maintain(
    device: *mut sr_device,
    now: u64,
    record_out: *mut sr_buffer,
    err: *mut *mut sr_error,
) -> sr_status {
    guard(err, || {
        // SAFETY: P2: an output pointer is NULL or writable for its type (or its length) during the call.
        let mut out = unsafe { buffer_out(record_out, "record_out") }?;
        // SAFETY: P3: a handle argument is NULL or a live handle of this library.
        let record = unsafe { with_device(device.cast_const(), |s| Ok(s.device.maintain(now)?)) }?;
        out.write(record.map_or(sr_buffer::EMPTY, sr_buffer::from_vec));
        Ok(())
    })
}
