//! Errors of the device object and its records (spec §10).

use super::store::StoreError;
use crate::device::link::LinkError;
use crate::device::list::DeviceListError;
use crate::device::record::PrekeyRecordError;
use crate::prekey::PrekeyError;
use crate::sessions::SessionsError;
use crate::wire::WireError;
use core::fmt;

/// The kinds of record a device keeps (spec §10.3, table "Records").
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum RecordKind {
    /// The head: generation, device id, account, rotation times.
    Head = 0x01,
    /// The device identity's secrets.
    Identity = 0x02,
    /// The account key's seed (only on devices that hold it).
    Account = 0x03,
    /// The prekey store.
    Prekeys = 0x04,
    /// The list of contacts.
    ContactIndex = 0x05,
    /// One account's held device list and prekey bundles (this account's
    /// own, or a contact's).
    Peer = 0x06,
    /// The sessions with one peer device.
    Sessions = 0x07,
}

/// Why a record that authenticated or failed to is not usable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Corruption {
    /// Shorter than its fixed fields.
    Truncated,
    /// Version byte 0: no version of this library writes it.
    BadVersion,
    /// Longer than any record this library writes.
    TooLong,
    /// Another object type or record kind than its key names.
    WrongType,
    /// The right storage key, but the ciphertext does not authenticate
    /// under this record's name: altered, or moved from another record.
    Authentication,
    /// Authenticated but its content does not decode (spec §6.5 class).
    Malformed(WireError),
    /// Authenticated and decoded, but inconsistent with the other records
    /// (a list that does not verify, a session set for an unlisted device).
    Inconsistent,
}

/// Why stored records could not be loaded. Each variant says which
/// record, and `Debug` shows the same as `Display`.
#[derive(Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordError {
    /// The storage key is not the one the records were written with.
    WrongKey,
    /// A record is damaged or does not belong where it is stored.
    Corrupted {
        /// Which record.
        record: RecordKind,
        /// What is wrong.
        reason: Corruption,
    },
    /// A record was written by a newer version of this library; upgrade.
    NewerVersion {
        /// Which record.
        record: RecordKind,
        /// Its format version byte.
        version: u8,
    },
    /// A record the device needs is missing (the store lost it).
    Missing {
        /// Which record.
        record: RecordKind,
    },
    /// The store is older than the last state this client saw: a restored
    /// backup or a rolled-back database. Sending from it could repeat
    /// message numbers, so the device refuses it. Recover with
    /// [`super::Device::restore_from_backup`] (spec §8.8), which never sends in
    /// the stored sessions again.
    RolledBack {
        /// The generation the store holds.
        found: u64,
        /// The generation the client last saw.
        expected: u64,
    },
    /// One record is older than the generation the head (or the contact
    /// index) says it was last written at: that record alone was rolled
    /// back. Treat the store as a backup ([`super::Device::restore_from_backup`]).
    RecordRolledBack {
        /// Which record.
        record: RecordKind,
        /// Its generation.
        found: u64,
        /// The generation it was last written at.
        expected: u64,
    },
    /// A record to write would exceed the 4 MiB record limit; nothing was
    /// committed (a session set at its bounds; start fewer sessions).
    TooLarge {
        /// Which record.
        record: RecordKind,
    },
    /// The store holds no device (nothing was created in it).
    Empty,
    /// The store already holds a device; open it instead of creating one.
    NotEmpty,
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::WrongKey => f.write_str(
                "the storage key is not the one these records were written with; load the right key",
            ),
            Self::Corrupted { record, reason } => {
                write!(f, "stored {record:?} record is corrupted: {reason:?}")
            }
            Self::NewerVersion { record, version } => write!(
                f,
                "stored {record:?} record has format version {version}, newer than this library; upgrade"
            ),
            Self::Missing { record } => write!(f, "the store lost the {record:?} record"),
            Self::RolledBack { found, expected } => write!(
                f,
                "the store is at generation {found} but generation {expected} was seen: \
                 it was rolled back; restore it as a backup"
            ),
            Self::RecordRolledBack {
                record,
                found,
                expected,
            } => write!(
                f,
                "stored {record:?} record is at generation {found} but was written at {expected}: \
                 it was rolled back; restore the store as a backup"
            ),
            Self::TooLarge { record } => {
                write!(f, "a {record:?} record would exceed the 4 MiB limit; nothing was written")
            }
            Self::Empty => f.write_str("the store holds no device; create or link one"),
            Self::NotEmpty => f.write_str("the store already holds a device; open it"),
        }
    }
}

impl fmt::Debug for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::WrongKey => f.write_str("WrongKey"),
            Self::Corrupted { record, reason } => write!(f, "Corrupted({record:?}, {reason:?})"),
            Self::NewerVersion { record, version } => {
                write!(f, "NewerVersion({record:?}, version {version})")
            }
            Self::Missing { record } => write!(f, "Missing({record:?})"),
            Self::RolledBack { found, expected } => {
                write!(f, "RolledBack(found {found}, expected {expected})")
            }
            Self::RecordRolledBack {
                record,
                found,
                expected,
            } => write!(
                f,
                "RecordRolledBack({record:?}, found {found}, expected {expected})"
            ),
            Self::TooLarge { record } => write!(f, "TooLarge({record:?})"),
            Self::Empty => f.write_str("Empty"),
            Self::NotEmpty => f.write_str("NotEmpty"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for RecordError {}

/// Why a [`super::Device`] call failed. On every error the device and its
/// store are as they were before the call: nothing was committed and
/// nothing is to be sent.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientError {
    /// Session management refused (see [`SessionsError`]: most variants
    /// say what to fetch before retrying).
    Sessions(SessionsError),
    /// Stored records could not be loaded.
    Records(RecordError),
    /// The client's store failed.
    Store(StoreError),
    /// Another process kept committing first; the call was retried
    /// [`super::MAX_COMMIT_ATTEMPTS`] times. Retry later.
    Busy,
    /// The call needs the account key, which this device does not hold
    /// (it was linked without it).
    NoAccountKey,
    /// A device list was refused.
    DeviceList(DeviceListError),
    /// A prekey record could not be built or opened.
    PrekeyRecord(PrekeyRecordError),
    /// The prekey store refused (for example: prekey ids exhausted).
    Prekey(PrekeyError),
    /// Device linking failed.
    Link(LinkError),
    /// Input bytes are malformed.
    Wire(WireError),
    /// A link call came in the wrong order (a response before a request,
    /// or a payload before the SAS was shown).
    LinkOutOfOrder,
    /// The recovery phrase does not decode.
    #[cfg(feature = "session-v2")]
    Phrase(crate::session_v2::mnemonic::MnemonicError),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sessions(e) => fmt::Display::fmt(e, f),
            Self::Records(e) => fmt::Display::fmt(e, f),
            Self::Store(e) => fmt::Display::fmt(e, f),
            Self::Busy => f.write_str("another process kept committing first; retry later"),
            Self::NoAccountKey => {
                f.write_str("this device does not hold the account key; use a device that does")
            }
            Self::DeviceList(e) => write!(f, "device list: {e}"),
            Self::PrekeyRecord(e) => write!(f, "prekey record: {e}"),
            Self::Prekey(e) => write!(f, "prekeys: {e}"),
            Self::Link(e) => write!(f, "device link: {e}"),
            Self::Wire(e) => write!(f, "malformed input: {e}"),
            Self::LinkOutOfOrder => f.write_str(
                "link steps out of order: receive the response (and show the SAS) before the payload",
            ),
            #[cfg(feature = "session-v2")]
            Self::Phrase(e) => write!(f, "recovery phrase: {e}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ClientError {}

macro_rules! from_error {
    ($($t:ty => $v:ident),* $(,)?) => {
        $(impl From<$t> for ClientError {
            fn from(e: $t) -> Self {
                Self::$v(e)
            }
        })*
    };
}

from_error!(
    SessionsError => Sessions,
    RecordError => Records,
    StoreError => Store,
    DeviceListError => DeviceList,
    PrekeyRecordError => PrekeyRecord,
    PrekeyError => Prekey,
    LinkError => Link,
    WireError => Wire,
);
