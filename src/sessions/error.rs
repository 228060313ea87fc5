//! Errors of session management (spec §8.6).

use crate::device::list::{DeviceId, DeviceListError};
use crate::device::record::PrekeyRecordError;
use crate::envelope::EnvelopeError;
use crate::handshake::HandshakeError;
use crate::prekey::PrekeyError;
use crate::ratchet::{RatchetError, StorageError};
use crate::wire::WireError;
use alloc::vec::Vec;
use core::fmt;

/// Why a session-management operation failed. On every error the manager is
/// unchanged: the same input may be retried after the client has acted on
/// the error (fetched a device list or a prekey record, for example).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionsError {
    /// The account is not a contact of this device. Fetch its device list
    /// (by Session ID), [`super::SessionManager::add_contact`], and retry.
    UnknownAccount {
        /// The account's Ed25519 key bytes.
        account: [u8; 32],
    },
    /// The account is already a contact; use
    /// [`super::SessionManager::update_device_list`] for newer lists.
    AlreadyContact,
    /// Sessions must be started with these devices, and no prekey bundle is
    /// held for them: fetch the accounts' prekey records (or the devices'
    /// bundles), add them, and retry. Nothing was encrypted.
    MissingPrekeys {
        /// `(account key bytes, device)` pairs without a session or a bundle.
        devices: Vec<([u8; 32], DeviceId)>,
    },
    /// The conversation has no active device to send to.
    NoRecipients,
    /// The content is longer than [`super::MAX_CONTENT_LEN`]; nothing
    /// changed. Send it as an attachment.
    ContentTooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// This device was removed from its account's device list: it may no
    /// longer send, and other devices no longer encrypt to it.
    ThisDeviceRevoked,
    /// The device list given for this device does not list it with its
    /// identity: link the device first (spec §8.5).
    NotListed,
    /// The envelope holds no slot for this device: it was sent before this
    /// device was in the sender's copy of the device list, or after this
    /// device was revoked.
    NotARecipient,
    /// The sending device was removed from its account (a tombstone in the
    /// held list): its messages are rejected.
    RevokedSender {
        /// The account's Ed25519 key bytes.
        account: [u8; 32],
        /// The removed device.
        device: DeviceId,
    },
    /// The sending device is not in the held list of its account, and the
    /// sender claims a newer list than the one held: fetch the account's
    /// newer device list, [`super::SessionManager::update_device_list`], and
    /// retry.
    DeviceListOutdated {
        /// The account's Ed25519 key bytes.
        account: [u8; 32],
        /// The version held.
        held: u64,
        /// The version the sender claims to use.
        claimed: u64,
    },
    /// The sending device is not in its account's device list (and the
    /// sender claims no newer list): the message is rejected.
    UnknownSenderDevice {
        /// The account's Ed25519 key bytes.
        account: [u8; 32],
        /// The unknown device.
        device: DeviceId,
    },
    /// A prekey message's initiator identity is not the identity the device
    /// list gives the claimed sending device: forged or misattributed.
    SenderIdentityMismatch {
        /// The claimed device.
        device: DeviceId,
    },
    /// The envelope's routing is inconsistent (a contact's message that is
    /// not addressed to this account, or an unknown conversation).
    Misrouted,
    /// No session with the sending device decrypts the message. `error` is
    /// the active session's verdict (or the newest archived one's). Nothing
    /// changed; a forged message ends here too, so this never starts a new
    /// session by itself (spec §8.8).
    Undecryptable {
        /// The account's Ed25519 key bytes.
        account: [u8; 32],
        /// The device.
        device: DeviceId,
        /// Why the most preferred session refused it.
        error: RatchetError,
    },
    /// The handshake of a new session failed (unknown prekey, replayed base
    /// key, bad ciphertext). If the sender keeps failing with unknown
    /// prekeys, publish fresh prekeys.
    Handshake {
        /// The claimed device.
        device: DeviceId,
        /// The handshake error.
        error: RatchetError,
    },
    /// The envelope could not be built or opened.
    Envelope(EnvelopeError),
    /// Malformed input.
    Wire(WireError),
    /// A device list update was refused.
    DeviceList(DeviceListError),
    /// A prekey record could not be opened.
    PrekeyRecord(PrekeyRecordError),
    /// A prekey bundle is invalid or not the listed device's.
    Prekey(PrekeyError),
    /// Encryption in a session failed.
    Ratchet(RatchetError),
    /// Stored state could not be loaded; the [`StorageError`] says which
    /// of: written by a newer version, corrupted, wrong storage key (or
    /// altered ciphertext).
    Storage(StorageError),
    /// A bound was exceeded (contacts, stored size).
    LimitExceeded,
    /// An internal invariant failed (a bug); nothing changed.
    Internal,
}

impl fmt::Display for SessionsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownAccount { .. } => f.write_str(
                "unknown account: fetch its device list, add it as a contact, then retry",
            ),
            Self::AlreadyContact => {
                f.write_str("already a contact; offer newer lists with update_device_list")
            }
            Self::MissingPrekeys { devices } => write!(
                f,
                "no session and no prekey bundle for {} device(s): fetch their prekey records and retry",
                devices.len()
            ),
            Self::NoRecipients => f.write_str("the conversation has no active device"),
            Self::ContentTooLong { len, max } => write!(
                f,
                "content of {len} bytes exceeds {max}; send it as an attachment"
            ),
            Self::ThisDeviceRevoked => {
                f.write_str("this device was removed from its account and may not send")
            }
            Self::NotListed => f.write_str(
                "this device is not in its account's device list with this identity; link it first",
            ),
            Self::NotARecipient => f.write_str(
                "the envelope has no slot for this device (sent before it was linked, or after it was revoked)",
            ),
            Self::RevokedSender { .. } => {
                f.write_str("message from a revoked device of the account; rejected")
            }
            Self::DeviceListOutdated { held, claimed, .. } => write!(
                f,
                "sender uses device list version {claimed}, this device holds {held}: fetch the newer list and retry"
            ),
            Self::UnknownSenderDevice { .. } => {
                f.write_str("message from a device that is not in its account's device list")
            }
            Self::SenderIdentityMismatch { .. } => f.write_str(
                "new session from an identity that the device list does not give the sending device",
            ),
            Self::Misrouted => f.write_str("envelope routing is inconsistent; rejected"),
            Self::Undecryptable { error, .. } => {
                write!(f, "no session with the sending device decrypts the message: {error}")
            }
            Self::Handshake { error, .. } => write!(f, "new session refused: {error}"),
            Self::Envelope(e) => write!(f, "envelope: {e}"),
            Self::Wire(e) => write!(f, "malformed message: {e}"),
            Self::DeviceList(e) => write!(f, "device list refused: {e}"),
            Self::PrekeyRecord(e) => write!(f, "prekey record: {e}"),
            Self::Prekey(e) => write!(f, "prekey bundle: {e}"),
            Self::Ratchet(e) => write!(f, "encryption failed: {e}"),
            Self::Storage(e) => write!(f, "stored device state cannot be loaded: {e}"),
            Self::LimitExceeded => f.write_str("a documented bound was exceeded"),
            Self::Internal => f.write_str("internal error (bug); nothing changed"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for SessionsError {}

impl From<WireError> for SessionsError {
    fn from(e: WireError) -> Self {
        Self::Wire(e)
    }
}

impl From<EnvelopeError> for SessionsError {
    fn from(e: EnvelopeError) -> Self {
        Self::Envelope(e)
    }
}

impl From<DeviceListError> for SessionsError {
    fn from(e: DeviceListError) -> Self {
        Self::DeviceList(e)
    }
}

impl From<PrekeyRecordError> for SessionsError {
    fn from(e: PrekeyRecordError) -> Self {
        Self::PrekeyRecord(e)
    }
}

impl From<PrekeyError> for SessionsError {
    fn from(e: PrekeyError) -> Self {
        Self::Prekey(e)
    }
}

impl From<HandshakeError> for SessionsError {
    fn from(e: HandshakeError) -> Self {
        Self::Ratchet(RatchetError::Handshake(e))
    }
}
