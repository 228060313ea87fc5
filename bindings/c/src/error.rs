//! Status codes and the error object.

use session_ratchet::account::SessionIdError;
use session_ratchet::client::{ClientError, RecordError};
use session_ratchet::sessions::SessionsError;
use std::ffi::{CString, c_char};

/// A status code: `SR_OK` (0) or one of the `SR_ERR_*` codes, one per
/// error kind. The numbers are stable: a code keeps its number in every
/// later version, and new kinds get new numbers.
pub type sr_status = i32;

/// Success.
pub const SR_OK: sr_status = 0;

// Ranges: 1-9 the boundary, 10-19 malformed input, 20-39 storage, 40-49
// accounts, lists, prekeys and linking, 50-79 sessions.

// ---- the boundary ----------------------------------------------------------

/// A required pointer argument was NULL (the message names it).
pub const SR_ERR_NULL_POINTER: sr_status = 1;
/// An argument is out of range: a wrong length (the message gives the
/// expected one), text that is not UTF-8, an unknown enumeration value.
pub const SR_ERR_INVALID_ARGUMENT: sr_status = 2;
/// A handle argument is not a live handle of the expected type (another
/// type's handle, or one already freed, when that can be seen).
pub const SR_ERR_INVALID_HANDLE: sr_status = 3;
/// The handle is in use by a call on another thread (or by a store
/// callback that called back into it): calls on one handle must be
/// serialised. Nothing was done.
pub const SR_ERR_HANDLE_IN_USE: sr_status = 4;
/// The function is not in this build of the library (a feature is off).
pub const SR_ERR_UNSUPPORTED: sr_status = 5;
/// An internal error (a bug): a panic was caught, or an earlier one left
/// the handle unusable. Free the handle and open the device again from its
/// store.
pub const SR_ERR_INTERNAL: sr_status = 6;
/// An error of a kind this version of the header does not name; the
/// message says what it is.
pub const SR_ERR_OTHER: sr_status = 7;

// ---- malformed input -------------------------------------------------------

/// Input bytes are malformed (an envelope, device list, prekey record, link
/// message or stored blob that does not decode).
pub const SR_ERR_MALFORMED: sr_status = 10;
/// A Session ID is not 33 bytes / 66 hex digits starting with `05`.
pub const SR_ERR_SESSION_ID: sr_status = 11;
/// A recovery phrase does not decode (wrong word, count or checksum).
pub const SR_ERR_PHRASE: sr_status = 12;

// ---- storage (spec §10.2–§10.6) -------------------------------------------

/// The storage key is not the one the records were written with.
pub const SR_ERR_WRONG_KEY: sr_status = 20;
/// A stored record is damaged or does not belong where it is stored.
pub const SR_ERR_CORRUPTED: sr_status = 21;
/// A stored record was written by a newer version of the library: upgrade.
pub const SR_ERR_NEWER_VERSION: sr_status = 22;
/// A record the device needs is missing from the store.
pub const SR_ERR_MISSING_RECORD: sr_status = 23;
/// The store is older than the generation the client last saw (a restored
/// backup or a rolled-back database): recover with
/// `sr_device_restore_from_backup`.
pub const SR_ERR_ROLLED_BACK: sr_status = 24;
/// One record is older than the generation it was last written at: that
/// record alone was rolled back. Treat the store as a backup
/// (`sr_device_restore_from_backup`).
pub const SR_ERR_RECORD_ROLLED_BACK: sr_status = 25;
/// The store holds no device: create, restore or link one into it.
pub const SR_ERR_EMPTY_STORE: sr_status = 26;
/// The store already holds a device: open it instead.
pub const SR_ERR_NOT_EMPTY_STORE: sr_status = 27;
/// The client's store failed (a callback returned a failure; the message
/// carries the client's own text).
pub const SR_ERR_STORE_FAILED: sr_status = 28;
/// Another process kept committing first; retry later.
pub const SR_ERR_BUSY: sr_status = 29;
/// A record to write would exceed the 4 MiB record limit; nothing was
/// committed.
pub const SR_ERR_RECORD_TOO_LARGE: sr_status = 30;

// ---- accounts, device lists, prekeys, linking ------------------------------

/// The call needs the account key, which this device does not hold.
pub const SR_ERR_NO_ACCOUNT_KEY: sr_status = 40;
/// A device list was refused (bad signature, older than the one held, a gap).
pub const SR_ERR_DEVICE_LIST: sr_status = 41;
/// A prekey record could not be built or opened.
pub const SR_ERR_PREKEY_RECORD: sr_status = 42;
/// The prekey store or a prekey bundle was refused.
pub const SR_ERR_PREKEY: sr_status = 43;
/// Device linking failed (a forged or damaged link message, the SAS could
/// not be computed).
pub const SR_ERR_LINK: sr_status = 44;
/// Link steps came in the wrong order.
pub const SR_ERR_LINK_OUT_OF_ORDER: sr_status = 45;

// ---- sessions (spec §8.6) --------------------------------------------------

/// The account is not a contact: fetch its device list, add it, retry
/// (`sr_error_account` gives the account).
pub const SR_ERR_UNKNOWN_ACCOUNT: sr_status = 50;
/// The account is already a contact.
pub const SR_ERR_ALREADY_CONTACT: sr_status = 51;
/// No session and no prekey bundle for some devices: fetch the account's
/// prekey record, offer it with `sr_device_update_contact`, retry.
pub const SR_ERR_MISSING_PREKEYS: sr_status = 52;
/// The conversation has no active device.
pub const SR_ERR_NO_RECIPIENTS: sr_status = 53;
/// The content is longer than `SR_MAX_CONTENT_LEN`.
pub const SR_ERR_CONTENT_TOO_LONG: sr_status = 54;
/// This device was removed from its account and may not send.
pub const SR_ERR_THIS_DEVICE_REVOKED: sr_status = 55;
/// This device is not in its account's device list with its identity.
pub const SR_ERR_NOT_LISTED: sr_status = 56;
/// The envelope holds no slot for this device (sent before it was linked,
/// or after it was revoked).
pub const SR_ERR_NOT_A_RECIPIENT: sr_status = 57;
/// The message comes from a revoked device.
pub const SR_ERR_REVOKED_SENDER: sr_status = 58;
/// The sender uses a newer device list than the one held: fetch it, update
/// the contact, retry.
pub const SR_ERR_DEVICE_LIST_OUTDATED: sr_status = 59;
/// The sending device is not in its account's device list.
pub const SR_ERR_UNKNOWN_SENDER_DEVICE: sr_status = 60;
/// A new session from an identity the device list does not give the
/// sending device.
pub const SR_ERR_SENDER_IDENTITY_MISMATCH: sr_status = 61;
/// The envelope's routing is inconsistent.
pub const SR_ERR_MISROUTED: sr_status = 62;
/// No session with the sending device decrypts the message (a duplicate,
/// a forgery, a message too far ahead); nothing changed.
pub const SR_ERR_UNDECRYPTABLE: sr_status = 63;
/// The handshake of a new session failed (unknown prekey, replay).
pub const SR_ERR_HANDSHAKE: sr_status = 64;
/// An envelope could not be built or opened.
pub const SR_ERR_ENVELOPE: sr_status = 65;
/// Encryption in a session failed.
pub const SR_ERR_RATCHET: sr_status = 66;
/// Stored session state could not be loaded.
pub const SR_ERR_SESSION_STATE: sr_status = 67;
/// A documented bound was exceeded (contacts, stored size).
pub const SR_ERR_LIMIT_EXCEEDED: sr_status = 68;

/// An error: a status code, a message a developer can act on, and (for
/// some kinds) the account it is about. Created by a failing call, owned by
/// the caller, freed with `sr_error_free`. Immutable: it may be read from
/// any thread.
#[derive(Debug)]
#[repr(C)]
pub struct sr_error {
    magic: u64,
    code: sr_status,
    message: CString,
    account: Option<[u8; 32]>,
}

const ERROR_MAGIC: u64 = 0x7372_5f65_7272_6f72; // "sr_error"

/// What a body returns on failure, before it becomes an `sr_error`.
#[derive(Debug)]
pub(crate) struct Error {
    pub(crate) code: sr_status,
    pub(crate) message: String,
    pub(crate) account: Option<[u8; 32]>,
}

impl Error {
    pub(crate) fn new(code: sr_status, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            account: None,
        }
    }

    pub(crate) fn null(what: &str) -> Self {
        Self::new(SR_ERR_NULL_POINTER, format!("argument `{what}` is NULL"))
    }

    pub(crate) fn length(what: &str, expected: usize, got: usize) -> Self {
        Self::new(
            SR_ERR_INVALID_ARGUMENT,
            format!("argument `{what}` must be {expected} bytes long, got {got}"),
        )
    }

    pub(crate) fn invalid(what: &str, why: &str) -> Self {
        Self::new(SR_ERR_INVALID_ARGUMENT, format!("argument `{what}` {why}"))
    }

    pub(crate) fn internal() -> Self {
        Self::new(
            SR_ERR_INTERNAL,
            "internal error (a bug, caught at the library boundary): free the handle and open the device again from its store",
        )
    }

    pub(crate) fn into_raw(self) -> *mut sr_error {
        let message = CString::new(self.message.replace('\0', " ")).unwrap_or_default();
        Box::into_raw(Box::new(sr_error {
            magic: ERROR_MAGIC,
            code: self.code,
            message,
            account: self.account,
        }))
    }
}

impl From<ClientError> for Error {
    fn from(e: ClientError) -> Self {
        let (code, account) = match &e {
            ClientError::Sessions(s) => sessions_code(s),
            ClientError::Records(r) => (records_code(r), None),
            ClientError::Store(_) => (SR_ERR_STORE_FAILED, None),
            ClientError::Busy => (SR_ERR_BUSY, None),
            ClientError::NoAccountKey => (SR_ERR_NO_ACCOUNT_KEY, None),
            ClientError::DeviceList(_) => (SR_ERR_DEVICE_LIST, None),
            ClientError::PrekeyRecord(_) => (SR_ERR_PREKEY_RECORD, None),
            ClientError::Prekey(_) => (SR_ERR_PREKEY, None),
            ClientError::Link(_) => (SR_ERR_LINK, None),
            ClientError::Wire(_) => (SR_ERR_MALFORMED, None),
            ClientError::LinkOutOfOrder => (SR_ERR_LINK_OUT_OF_ORDER, None),
            #[cfg(feature = "session-v2")]
            ClientError::Phrase(_) => (SR_ERR_PHRASE, None),
            _ => (SR_ERR_OTHER, None),
        };
        Self {
            code,
            message: e.to_string(),
            account,
        }
    }
}

impl From<SessionIdError> for Error {
    fn from(e: SessionIdError) -> Self {
        Self::new(SR_ERR_SESSION_ID, format!("Session ID: {e}"))
    }
}

fn records_code(e: &RecordError) -> sr_status {
    match e {
        RecordError::WrongKey => SR_ERR_WRONG_KEY,
        RecordError::Corrupted { .. } => SR_ERR_CORRUPTED,
        RecordError::NewerVersion { .. } => SR_ERR_NEWER_VERSION,
        RecordError::Missing { .. } => SR_ERR_MISSING_RECORD,
        RecordError::RolledBack { .. } => SR_ERR_ROLLED_BACK,
        RecordError::RecordRolledBack { .. } => SR_ERR_RECORD_ROLLED_BACK,
        RecordError::TooLarge { .. } => SR_ERR_RECORD_TOO_LARGE,
        RecordError::Empty => SR_ERR_EMPTY_STORE,
        RecordError::NotEmpty => SR_ERR_NOT_EMPTY_STORE,
        _ => SR_ERR_OTHER,
    }
}

fn sessions_code(e: &SessionsError) -> (sr_status, Option<[u8; 32]>) {
    match e {
        SessionsError::UnknownAccount { account } => (SR_ERR_UNKNOWN_ACCOUNT, Some(*account)),
        SessionsError::AlreadyContact => (SR_ERR_ALREADY_CONTACT, None),
        SessionsError::MissingPrekeys { devices } => {
            (SR_ERR_MISSING_PREKEYS, devices.first().map(|(a, _)| *a))
        }
        SessionsError::NoRecipients => (SR_ERR_NO_RECIPIENTS, None),
        SessionsError::ContentTooLong { .. } => (SR_ERR_CONTENT_TOO_LONG, None),
        SessionsError::ThisDeviceRevoked => (SR_ERR_THIS_DEVICE_REVOKED, None),
        SessionsError::NotListed => (SR_ERR_NOT_LISTED, None),
        SessionsError::NotARecipient => (SR_ERR_NOT_A_RECIPIENT, None),
        SessionsError::RevokedSender { account, .. } => (SR_ERR_REVOKED_SENDER, Some(*account)),
        SessionsError::DeviceListOutdated { account, .. } => {
            (SR_ERR_DEVICE_LIST_OUTDATED, Some(*account))
        }
        SessionsError::UnknownSenderDevice { account, .. } => {
            (SR_ERR_UNKNOWN_SENDER_DEVICE, Some(*account))
        }
        SessionsError::SenderIdentityMismatch { .. } => (SR_ERR_SENDER_IDENTITY_MISMATCH, None),
        SessionsError::Misrouted => (SR_ERR_MISROUTED, None),
        SessionsError::Undecryptable { account, .. } => (SR_ERR_UNDECRYPTABLE, Some(*account)),
        SessionsError::Handshake { .. } => (SR_ERR_HANDSHAKE, None),
        SessionsError::Envelope(_) => (SR_ERR_ENVELOPE, None),
        SessionsError::Wire(_) => (SR_ERR_MALFORMED, None),
        SessionsError::DeviceList(_) => (SR_ERR_DEVICE_LIST, None),
        SessionsError::PrekeyRecord(_) => (SR_ERR_PREKEY_RECORD, None),
        SessionsError::Prekey(_) => (SR_ERR_PREKEY, None),
        SessionsError::Ratchet(_) => (SR_ERR_RATCHET, None),
        SessionsError::Storage(_) => (SR_ERR_SESSION_STATE, None),
        SessionsError::LimitExceeded => (SR_ERR_LIMIT_EXCEEDED, None),
        SessionsError::Internal => (SR_ERR_INTERNAL, None),
        _ => (SR_ERR_OTHER, None),
    }
}

/// Checks that `e` points to a live error.
///
/// # Safety
/// `e` is NULL or was returned by this library and not yet freed.
unsafe fn live<'a>(e: *const sr_error) -> Option<&'a sr_error> {
    if e.is_null() || !e.is_aligned() {
        return None;
    }
    // SAFETY: `e` is non-null and aligned, and by the contract points to an
    // error (or another handle of this library, all of which start with a
    // `u64` magic number), so its first 8 bytes are readable.
    let magic = unsafe { e.cast::<u64>().read() };
    if magic != ERROR_MAGIC {
        return None;
    }
    // SAFETY: the magic number says this is a live `sr_error`.
    Some(unsafe { &*e })
}

/// The error's status code (`SR_ERR_*`); `SR_ERR_INVALID_HANDLE` for NULL
/// or a pointer that is not an error.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sr_error_code(error: *const sr_error) -> sr_status {
    // SAFETY: forwarded contract of this function (NULL or a live error).
    match unsafe { live(error) } {
        Some(e) => e.code,
        None => SR_ERR_INVALID_HANDLE,
    }
}

/// The error's message: UTF-8, NUL-terminated, owned by the error (valid
/// until `sr_error_free`). Never NULL: a NULL or invalid `error` gives a
/// static text saying so.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sr_error_message(error: *const sr_error) -> *const c_char {
    // SAFETY: forwarded contract of this function (NULL or a live error).
    match unsafe { live(error) } {
        Some(e) => e.message.as_ptr(),
        None => c"(not an sr_error)".as_ptr(),
    }
}

/// Copies the account key the error is about into `out` (`out_len` must be
/// `SR_ACCOUNT_KEY_LEN`) and returns true; returns false (and writes
/// nothing) if the error names no account. Kinds that name one:
/// `SR_ERR_UNKNOWN_ACCOUNT`, `SR_ERR_MISSING_PREKEYS` (the first account
/// lacking prekeys), `SR_ERR_REVOKED_SENDER`, `SR_ERR_DEVICE_LIST_OUTDATED`,
/// `SR_ERR_UNKNOWN_SENDER_DEVICE`, `SR_ERR_UNDECRYPTABLE`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sr_error_account(
    error: *const sr_error,
    out: *mut u8,
    out_len: usize,
) -> bool {
    // SAFETY: forwarded contract of this function (NULL or a live error).
    let Some(account) = (unsafe { live(error) }).and_then(|e| e.account) else {
        return false;
    };
    if out.is_null() || out_len != account.len() {
        return false;
    }
    // SAFETY: `out` is non-null and, by the contract, writable for
    // `out_len` = 32 bytes; the source is a distinct local array.
    unsafe { std::ptr::copy_nonoverlapping(account.as_ptr(), out, account.len()) };
    true
}

/// Frees an error. NULL is allowed (nothing happens).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sr_error_free(error: *mut sr_error) {
    crate::ffi::guard_void(|| {
        // SAFETY: forwarded contract of this function (NULL or a live error).
        if unsafe { live(error) }.is_none() {
            return;
        }
        // SAFETY: a live error was allocated by `Error::into_raw` as a
        // `Box<sr_error>`; the caller gives up the pointer.
        let mut boxed = unsafe { Box::from_raw(error) };
        boxed.magic = 0;
        drop(boxed);
    });
}

/// The name of a status code ("SR_OK", "SR_ERR_NOT_A_RECIPIENT", ...), a
/// static string; "SR_ERR_UNKNOWN_CODE" for a number no kind has.
#[unsafe(no_mangle)]
pub extern "C" fn sr_status_name(status: sr_status) -> *const c_char {
    let name = match status {
        SR_OK => c"SR_OK",
        SR_ERR_NULL_POINTER => c"SR_ERR_NULL_POINTER",
        SR_ERR_INVALID_ARGUMENT => c"SR_ERR_INVALID_ARGUMENT",
        SR_ERR_INVALID_HANDLE => c"SR_ERR_INVALID_HANDLE",
        SR_ERR_HANDLE_IN_USE => c"SR_ERR_HANDLE_IN_USE",
        SR_ERR_UNSUPPORTED => c"SR_ERR_UNSUPPORTED",
        SR_ERR_INTERNAL => c"SR_ERR_INTERNAL",
        SR_ERR_OTHER => c"SR_ERR_OTHER",
        SR_ERR_MALFORMED => c"SR_ERR_MALFORMED",
        SR_ERR_SESSION_ID => c"SR_ERR_SESSION_ID",
        SR_ERR_PHRASE => c"SR_ERR_PHRASE",
        SR_ERR_WRONG_KEY => c"SR_ERR_WRONG_KEY",
        SR_ERR_CORRUPTED => c"SR_ERR_CORRUPTED",
        SR_ERR_NEWER_VERSION => c"SR_ERR_NEWER_VERSION",
        SR_ERR_MISSING_RECORD => c"SR_ERR_MISSING_RECORD",
        SR_ERR_ROLLED_BACK => c"SR_ERR_ROLLED_BACK",
        SR_ERR_RECORD_ROLLED_BACK => c"SR_ERR_RECORD_ROLLED_BACK",
        SR_ERR_EMPTY_STORE => c"SR_ERR_EMPTY_STORE",
        SR_ERR_NOT_EMPTY_STORE => c"SR_ERR_NOT_EMPTY_STORE",
        SR_ERR_STORE_FAILED => c"SR_ERR_STORE_FAILED",
        SR_ERR_BUSY => c"SR_ERR_BUSY",
        SR_ERR_RECORD_TOO_LARGE => c"SR_ERR_RECORD_TOO_LARGE",
        SR_ERR_NO_ACCOUNT_KEY => c"SR_ERR_NO_ACCOUNT_KEY",
        SR_ERR_DEVICE_LIST => c"SR_ERR_DEVICE_LIST",
        SR_ERR_PREKEY_RECORD => c"SR_ERR_PREKEY_RECORD",
        SR_ERR_PREKEY => c"SR_ERR_PREKEY",
        SR_ERR_LINK => c"SR_ERR_LINK",
        SR_ERR_LINK_OUT_OF_ORDER => c"SR_ERR_LINK_OUT_OF_ORDER",
        SR_ERR_UNKNOWN_ACCOUNT => c"SR_ERR_UNKNOWN_ACCOUNT",
        SR_ERR_ALREADY_CONTACT => c"SR_ERR_ALREADY_CONTACT",
        SR_ERR_MISSING_PREKEYS => c"SR_ERR_MISSING_PREKEYS",
        SR_ERR_NO_RECIPIENTS => c"SR_ERR_NO_RECIPIENTS",
        SR_ERR_CONTENT_TOO_LONG => c"SR_ERR_CONTENT_TOO_LONG",
        SR_ERR_THIS_DEVICE_REVOKED => c"SR_ERR_THIS_DEVICE_REVOKED",
        SR_ERR_NOT_LISTED => c"SR_ERR_NOT_LISTED",
        SR_ERR_NOT_A_RECIPIENT => c"SR_ERR_NOT_A_RECIPIENT",
        SR_ERR_REVOKED_SENDER => c"SR_ERR_REVOKED_SENDER",
        SR_ERR_DEVICE_LIST_OUTDATED => c"SR_ERR_DEVICE_LIST_OUTDATED",
        SR_ERR_UNKNOWN_SENDER_DEVICE => c"SR_ERR_UNKNOWN_SENDER_DEVICE",
        SR_ERR_SENDER_IDENTITY_MISMATCH => c"SR_ERR_SENDER_IDENTITY_MISMATCH",
        SR_ERR_MISROUTED => c"SR_ERR_MISROUTED",
        SR_ERR_UNDECRYPTABLE => c"SR_ERR_UNDECRYPTABLE",
        SR_ERR_HANDSHAKE => c"SR_ERR_HANDSHAKE",
        SR_ERR_ENVELOPE => c"SR_ERR_ENVELOPE",
        SR_ERR_RATCHET => c"SR_ERR_RATCHET",
        SR_ERR_SESSION_STATE => c"SR_ERR_SESSION_STATE",
        SR_ERR_LIMIT_EXCEEDED => c"SR_ERR_LIMIT_EXCEEDED",
        _ => c"SR_ERR_UNKNOWN_CODE",
    };
    name.as_ptr()
}
