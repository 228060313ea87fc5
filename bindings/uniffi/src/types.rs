//! Records and enums that cross the boundary, and the conversions of keys
//! and ids from bytes.

use crate::error::DeviceError;
use session_ratchet::account::Account;
use session_ratchet::account::SessionId;
use session_ratchet::client::{DeviceInfo as CoreDeviceInfo, OutgoingEnvelope as CoreOutgoing};
use session_ratchet::device::list::{
    ClientVersion as CoreClientVersion, DeviceId, Platform as CorePlatform,
};
use session_ratchet::device::sas::Sas;
use session_ratchet::identity::Ed25519PublicKey;
use session_ratchet::ratchet::StorageKey;
use session_ratchet::secret::{Ed25519Seed, RecoverySeed};
use session_ratchet::sessions::{ContentKind as CoreContentKind, Received as CoreReceived};
use zeroize::Zeroizing;

/// The platform a device runs on, as its account's device list states it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum Platform {
    /// Not stated.
    Unspecified,
    /// Android.
    Android,
    /// iOS.
    Ios,
    /// Desktop (Windows, macOS, Linux).
    Desktop,
    /// Web.
    Web,
}

/// A client's version, as its device list entry states it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Record)]
pub struct ClientVersion {
    /// Major version.
    pub major: u16,
    /// Minor version.
    pub minor: u16,
    /// Patch version.
    pub patch: u16,
}

/// How a device describes itself in its account's device list.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct DeviceInfo {
    /// The platform.
    pub platform: Platform,
    /// A name the user recognises ("Pixel 9"); at most 64 bytes are kept.
    pub description: String,
    /// The client's version.
    pub client_version: ClientVersion,
}

impl From<&DeviceInfo> for CoreDeviceInfo {
    fn from(i: &DeviceInfo) -> Self {
        let mut info = CoreDeviceInfo::new(&i.description);
        info.platform = match i.platform {
            Platform::Unspecified => CorePlatform::Unspecified,
            Platform::Android => CorePlatform::Android,
            Platform::Ios => CorePlatform::Ios,
            Platform::Desktop => CorePlatform::Desktop,
            Platform::Web => CorePlatform::Web,
        };
        info.client_version = CoreClientVersion {
            major: i.client_version.major,
            minor: i.client_version.minor,
            patch: i.client_version.patch,
        };
        info
    }
}

/// One envelope to post, and the accounts whose mailboxes it goes to.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct OutgoingEnvelope {
    /// The envelope bytes.
    pub bytes: Vec<u8>,
    /// Post it to each of these accounts' mailboxes (32-byte account keys):
    /// the conversation's, and this account's when it has other devices.
    pub mailboxes: Vec<Vec<u8>>,
}

impl From<CoreOutgoing> for OutgoingEnvelope {
    fn from(o: CoreOutgoing) -> Self {
        Self {
            bytes: o.bytes,
            mailboxes: o.mailboxes.iter().map(|k| k.to_bytes().to_vec()).collect(),
        }
    }
}

/// What a received envelope carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum ContentKind {
    /// An application message: show `content`.
    Message,
    /// A healing notice: a fresh session, no content. Do not show it.
    Heal,
}

/// A decrypted envelope. The device has committed before returning it
/// (receiving is at most once): store the content at once.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct Received {
    /// The sending account (32-byte account key).
    pub sender: Vec<u8>,
    /// The sending device (32-byte device id).
    pub sender_device: Vec<u8>,
    /// The conversation: this account, or (for a copy of a message another
    /// device of this account sent) the contact it was sent to.
    pub conversation: Vec<u8>,
    /// A message or a healing notice.
    pub kind: ContentKind,
    /// The content (empty for a healing notice).
    pub content: Vec<u8>,
    /// The message started a new session.
    pub new_session: bool,
    /// The sender holds a newer device list of its own account: fetch it
    /// and `updateContact`.
    pub sender_list_newer: bool,
    /// The sender used an older version of this account's device list:
    /// make sure it gets the current one (it may still write to a revoked
    /// device).
    pub recipient_list_outdated: bool,
}

impl From<CoreReceived> for Received {
    fn from(r: CoreReceived) -> Self {
        Self {
            sender: r.sender.to_bytes().to_vec(),
            sender_device: r.sender_device.as_bytes().to_vec(),
            conversation: r.conversation.to_bytes().to_vec(),
            kind: match r.kind {
                CoreContentKind::Heal => ContentKind::Heal,
                _ => ContentKind::Message,
            },
            content: r.content,
            new_session: r.new_session,
            sender_list_newer: r.sender_list_newer,
            recipient_list_outdated: r.recipient_list_outdated,
        }
    }
}

/// An account `heal` could not heal, and why; nothing changed for it.
#[derive(Clone, Debug, uniffi::Record)]
pub struct HealFailure {
    /// The account (32-byte account key).
    pub account: Vec<u8>,
    /// Why (for example `MissingPrekeys`: fetch its prekey record, offer
    /// it with `updateContact`, then heal again).
    pub error: DeviceError,
}

/// What `heal` produced.
#[derive(Clone, Debug, uniffi::Record)]
pub struct Healed {
    /// The healing notices to post, committed.
    pub envelopes: Vec<OutgoingEnvelope>,
    /// The accounts that failed, each with its error.
    pub failures: Vec<HealFailure>,
}

/// What a device list update changed.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct ListChange {
    /// Devices that became active (32-byte device ids).
    pub added: Vec<Vec<u8>>,
    /// Devices no longer active (revoked): their sessions were deleted.
    pub removed: Vec<Vec<u8>>,
}

/// One emoji of the SAS and its English name, to show side by side.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct SasEmoji {
    /// The emoji.
    pub emoji: String,
    /// Its name ("Dog").
    pub name: String,
}

pub(crate) fn sas_emoji(sas: &Sas) -> Result<Vec<SasEmoji>, DeviceError> {
    let short = sas
        .short()
        .map_err(|e| DeviceError::Internal(format!("SAS: {e}")))?;
    Ok(short
        .iter()
        .map(|(emoji, name)| SasEmoji {
            emoji: (*emoji).to_owned(),
            name: (*name).to_owned(),
        })
        .collect())
}

fn array<const N: usize>(bytes: &[u8], what: &str) -> Result<[u8; N], DeviceError> {
    bytes.try_into().map_err(|_| {
        DeviceError::InvalidArgument(format!("{what} is {N} bytes, got {len}", len = bytes.len()))
    })
}

/// Takes the foreign copy of the key and wipes it.
pub(crate) fn storage_key(bytes: Vec<u8>) -> Result<StorageKey, DeviceError> {
    let bytes = Zeroizing::new(bytes);
    Ok(StorageKey::from_bytes(array::<32>(
        &bytes,
        "a storage key",
    )?))
}

/// Takes the foreign copy of the seed and wipes it.
pub(crate) fn recovery_seed(bytes: Vec<u8>) -> Result<RecoverySeed, DeviceError> {
    let bytes = Zeroizing::new(bytes);
    Ok(RecoverySeed::from_bytes(array::<16>(
        &bytes,
        "a recovery seed",
    )?))
}

/// An account key kept beside a §8.9 blob: the 16-byte recovery seed or
/// the 32-byte Ed25519 seed. Wipes the foreign copy.
pub(crate) fn account_from_seed(bytes: Vec<u8>) -> Result<Account, DeviceError> {
    let bytes = Zeroizing::new(bytes);
    if let Ok(s) = <[u8; 16]>::try_from(bytes.as_slice()) {
        let s = Zeroizing::new(s);
        return Ok(Account::from_recovery_seed(&RecoverySeed::from_bytes(*s)));
    }
    if let Ok(s) = <[u8; 32]>::try_from(bytes.as_slice()) {
        let s = Zeroizing::new(s);
        return Ok(Account::from_seed(&Ed25519Seed::from_bytes(*s)));
    }
    Err(DeviceError::InvalidArgument(format!(
        "an account seed is 16 (recovery seed) or 32 (Ed25519 seed) bytes, got {}",
        bytes.len()
    )))
}

pub(crate) fn account_key(bytes: &[u8]) -> Result<Ed25519PublicKey, DeviceError> {
    Ed25519PublicKey::from_bytes(&array::<32>(bytes, "an account key")?)
        .map_err(|e| DeviceError::InvalidArgument(format!("not an account key: {e}")))
}

pub(crate) fn device_id(bytes: &[u8]) -> Result<DeviceId, DeviceError> {
    Ok(DeviceId::from_bytes(array::<32>(bytes, "a device id")?))
}

pub(crate) fn session_id(hex: &str) -> Result<SessionId, DeviceError> {
    SessionId::from_hex(hex).map_err(|e| DeviceError::InvalidArgument(e.to_string()))
}
