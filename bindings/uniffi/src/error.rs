//! The one error type of every device call, and the store's error.

use session_ratchet::client::{ClientError, RecordError, StoreError as CoreStoreError};
use session_ratchet::sessions::SessionsError;
use std::fmt;

/// Why a call failed (Kotlin `DeviceException`, Swift `DeviceError`). Each
/// variant is one thing a client does differently; its message is the
/// crate's, saying what to do. On every error the device and its store are
/// as they were before the call: nothing was committed and nothing is to be
/// sent.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Error)]
#[uniffi(flat_error)]
pub enum DeviceError {
    /// An argument has the wrong length or is not a valid key or id
    /// (a 31-byte account key, a Session ID that is not 66 hex digits).
    InvalidArgument(String),
    /// Input bytes do not decode: garbage, truncated or another format
    /// (an envelope, a device list, a prekey record, a link message). Drop it.
    Malformed(String),
    /// The storage key is not the one the store was written with.
    WrongKey(String),
    /// A stored record is damaged or does not belong where it is stored.
    Corrupted(String),
    /// A stored record was written by a newer version of this library: upgrade.
    NewerVersion(String),
    /// A record the device needs is missing from the store (the store lost it).
    MissingRecord(String),
    /// The store is older than the generation passed to `open`: a restored
    /// backup or a rolled-back database. Open it with `restoreFromBackup`.
    RolledBack(String),
    /// One record was rolled back alone: treat the store as a backup
    /// (`restoreFromBackup`).
    RecordRolledBack(String),
    /// A record would exceed the 4 MiB record limit; nothing was written.
    TooLarge(String),
    /// The store holds no device: create, restore or link one into it.
    Empty(String),
    /// The store already holds a device: open it instead.
    NotEmpty(String),
    /// The client's `RecordStore` failed (its own message follows).
    Store(String),
    /// Another process kept committing first; retry later.
    Busy(String),
    /// The call needs the account key, which this device does not hold.
    NoAccountKey(String),
    /// The account is not a contact: fetch its device list, `addContact`, retry.
    UnknownAccount(String),
    /// The account is already a contact (offer newer lists with `updateContact`).
    AlreadyContact(String),
    /// No session and no prekey bundle for some devices: fetch the accounts'
    /// prekey records, offer them (`updateContact`), retry.
    MissingPrekeys(String),
    /// The conversation has no active device to send to.
    NoRecipients(String),
    /// The content is longer than a message may be: send it as an attachment.
    ContentTooLong(String),
    /// This device was revoked from its account and may no longer send.
    ThisDeviceRevoked(String),
    /// This device is not in its account's device list: link it first.
    NotListed(String),
    /// The envelope holds no slot for this device (sent before it was
    /// linked, or after it was revoked).
    NotARecipient(String),
    /// The message comes from a revoked device; rejected.
    RevokedSender(String),
    /// The sender uses a newer device list of its account than the one held:
    /// fetch it, `updateContact`, then receive again.
    DeviceListOutdated(String),
    /// The sending device is not in its account's device list; rejected.
    UnknownSenderDevice(String),
    /// A new session from an identity the device list does not give the
    /// sending device: forged or misattributed; rejected.
    SenderIdentityMismatch(String),
    /// The envelope's routing is inconsistent; rejected.
    Misrouted(String),
    /// No session with the sending device decrypts the message (a replay, a
    /// forgery, or a message from a state this device no longer has).
    Undecryptable(String),
    /// A new session's handshake failed (an unknown prekey: publish fresh
    /// prekeys if it keeps happening).
    Handshake(String),
    /// A device list was refused (does not verify, or an older version).
    DeviceList(String),
    /// A prekey record could not be built or opened.
    PrekeyRecord(String),
    /// The prekeys or a prekey bundle were refused.
    Prekey(String),
    /// Device linking failed (a forged or altered message, the wrong
    /// account, the device already listed).
    Link(String),
    /// Link steps out of order, or a link object already used.
    LinkOutOfOrder(String),
    /// The recovery phrase does not decode (a word, the checksum, the count).
    Phrase(String),
    /// A documented bound was exceeded (contacts, devices, stored size).
    LimitExceeded(String),
    /// A bug: an invariant failed, or an earlier call panicked while holding
    /// this object. Nothing changed.
    Internal(String),
}

impl DeviceError {
    /// The message of any variant.
    pub fn message(&self) -> &str {
        use DeviceError::*;
        match self {
            InvalidArgument(m)
            | Malformed(m)
            | WrongKey(m)
            | Corrupted(m)
            | NewerVersion(m)
            | MissingRecord(m)
            | RolledBack(m)
            | RecordRolledBack(m)
            | TooLarge(m)
            | Empty(m)
            | NotEmpty(m)
            | Store(m)
            | Busy(m)
            | NoAccountKey(m)
            | UnknownAccount(m)
            | AlreadyContact(m)
            | MissingPrekeys(m)
            | NoRecipients(m)
            | ContentTooLong(m)
            | ThisDeviceRevoked(m)
            | NotListed(m)
            | NotARecipient(m)
            | RevokedSender(m)
            | DeviceListOutdated(m)
            | UnknownSenderDevice(m)
            | SenderIdentityMismatch(m)
            | Misrouted(m)
            | Undecryptable(m)
            | Handshake(m)
            | DeviceList(m)
            | PrekeyRecord(m)
            | Prekey(m)
            | Link(m)
            | LinkOutOfOrder(m)
            | Phrase(m)
            | LimitExceeded(m)
            | Internal(m) => m,
        }
    }
}

impl fmt::Display for DeviceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for DeviceError {}

impl From<ClientError> for DeviceError {
    fn from(e: ClientError) -> Self {
        let m = e.to_string();
        match e {
            ClientError::Sessions(s) => from_sessions(&s, m),
            ClientError::Records(r) => match r {
                RecordError::WrongKey => Self::WrongKey(m),
                RecordError::Corrupted { .. } => Self::Corrupted(m),
                RecordError::NewerVersion { .. } => Self::NewerVersion(m),
                RecordError::Missing { .. } => Self::MissingRecord(m),
                RecordError::RolledBack { .. } => Self::RolledBack(m),
                RecordError::RecordRolledBack { .. } => Self::RecordRolledBack(m),
                RecordError::TooLarge { .. } => Self::TooLarge(m),
                RecordError::Empty => Self::Empty(m),
                RecordError::NotEmpty => Self::NotEmpty(m),
                _ => Self::Corrupted(m),
            },
            ClientError::Store(_) => Self::Store(m),
            ClientError::Busy => Self::Busy(m),
            ClientError::NoAccountKey => Self::NoAccountKey(m),
            ClientError::DeviceList(_) => Self::DeviceList(m),
            ClientError::PrekeyRecord(_) => Self::PrekeyRecord(m),
            ClientError::Prekey(_) => Self::Prekey(m),
            ClientError::Link(_) => Self::Link(m),
            ClientError::Wire(_) => Self::Malformed(m),
            ClientError::LinkOutOfOrder => Self::LinkOutOfOrder(m),
            ClientError::Phrase(_) => Self::Phrase(m),
            _ => Self::Internal(m),
        }
    }
}

fn from_sessions(e: &SessionsError, m: String) -> DeviceError {
    use DeviceError as D;
    match e {
        SessionsError::UnknownAccount { .. } => D::UnknownAccount(m),
        SessionsError::AlreadyContact => D::AlreadyContact(m),
        SessionsError::MissingPrekeys { .. } => D::MissingPrekeys(m),
        SessionsError::NoRecipients => D::NoRecipients(m),
        SessionsError::ContentTooLong { .. } => D::ContentTooLong(m),
        SessionsError::ThisDeviceRevoked => D::ThisDeviceRevoked(m),
        SessionsError::NotListed => D::NotListed(m),
        SessionsError::NotARecipient => D::NotARecipient(m),
        SessionsError::RevokedSender { .. } => D::RevokedSender(m),
        SessionsError::DeviceListOutdated { .. } => D::DeviceListOutdated(m),
        SessionsError::UnknownSenderDevice { .. } => D::UnknownSenderDevice(m),
        SessionsError::SenderIdentityMismatch { .. } => D::SenderIdentityMismatch(m),
        SessionsError::Misrouted => D::Misrouted(m),
        SessionsError::Undecryptable { .. } => D::Undecryptable(m),
        SessionsError::Handshake { .. } => D::Handshake(m),
        SessionsError::Envelope(_) | SessionsError::Wire(_) => D::Malformed(m),
        SessionsError::DeviceList(_) => D::DeviceList(m),
        SessionsError::PrekeyRecord(_) => D::PrekeyRecord(m),
        SessionsError::Prekey(_) => D::Prekey(m),
        SessionsError::Storage(_) => D::Corrupted(m),
        SessionsError::LimitExceeded => D::LimitExceeded(m),
        _ => D::Internal(m),
    }
}

/// A failure of the client's own store (Kotlin `StoreException`, Swift
/// `StoreError`): throw it from a `RecordStore` method when the database
/// cannot be read or written. The device call that used the store then
/// fails with `Store` and changes nothing.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Error)]
pub enum StoreError {
    /// The database failed; `reason` is the client's own message.
    Failed {
        /// What the database reported.
        reason: String,
    },
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Failed { reason } => f.write_str(reason),
        }
    }
}

impl std::error::Error for StoreError {}

/// Any other exception a foreign `RecordStore` threw.
impl From<uniffi::UnexpectedUniFFICallbackError> for StoreError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        Self::Failed { reason: e.reason }
    }
}

impl From<StoreError> for CoreStoreError {
    fn from(e: StoreError) -> Self {
        CoreStoreError::failed(&e.to_string())
    }
}
