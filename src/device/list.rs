//! The signed device list (spec §8.2) and revocation (spec §8.3).
//!
//! This module owns the account's list of devices: each version names the
//! live devices (id, identity keys, platform, description, client version,
//! times) and the **tombstones** of removed devices, carries a version number
//! and the hash of the previous version, and is signed by the account key.
//!
//! A client holds one [`VerifiedDeviceList`] per account and moves it
//! forward only through [`VerifiedDeviceList::accept_update`], which rejects
//! bad signatures, rollbacks, forks (with evidence), unbridged gaps,
//! resurrected or dropped tombstones, changed device keys, and unknown
//! mandatory extensions. Accepting is a pure function: the held list is
//! never modified; on success the caller replaces it with the returned one.
#![deny(clippy::integer_division_remainder_used)]

use crate::account::{Account, SessionId};
use crate::identity::{DevicePublicIdentity, Ed25519PublicKey, SIGNATURE_LEN};
use crate::kdf::{self, label};
use crate::wire::{self, Reader, WireError, Writer, message_type};
use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use rand_core::CryptoRng;

/// Live devices one list may name.
pub const MAX_DEVICES: usize = 16;
/// Tombstones one list may hold. Tombstones are never dropped, so an account
/// can remove at most this many devices over its lifetime.
pub const MAX_TOMBSTONES: usize = 1024;
/// Extensions per container (the list itself, or one device entry).
pub const MAX_EXTENSIONS: usize = 4;
/// Bytes of one extension's data.
pub const MAX_EXTENSION_LEN: usize = 256;
/// Bytes of a device description (UTF-8, cut on a character boundary).
pub const MAX_DESCRIPTION_LEN: usize = 64;
/// Extension types with this bit set are mandatory: a client that does not
/// understand one MUST reject the list.
pub const EXTENSION_MANDATORY: u16 = 0x8000;

/// Fixed part of an encoded device entry: id, identity, platform, client
/// version, added and updated times, description length, extension count.
const ENTRY_FIXED_LEN: usize = 32 + 64 + 1 + 6 + 8 + 8 + 1 + 1;
/// Encoded tombstone: id and removal time.
const TOMBSTONE_LEN: usize = 32 + 8;
/// Header: version, type, account key, list version, previous hash, device count.
const HEADER_LEN: usize = 2 + 32 + 8 + 32 + 1;
/// Largest encoded extension.
const MAX_EXTENSION_ENCODED: usize = 4 + MAX_EXTENSION_LEN;

/// Largest encoded device list: every bound at its maximum (61,742 bytes,
/// below [`wire::MAX_WIRE_LEN`]).
pub const MAX_DEVICE_LIST_LEN: usize = HEADER_LEN
    + MAX_DEVICES
        * (ENTRY_FIXED_LEN + MAX_DESCRIPTION_LEN + MAX_EXTENSIONS * MAX_EXTENSION_ENCODED)
    + 2
    + MAX_TOMBSTONES * TOMBSTONE_LEN
    + 1
    + MAX_EXTENSIONS * MAX_EXTENSION_ENCODED
    + SIGNATURE_LEN;

/// Type tag of a device list's signature input (spec §6.4, §3.6).
const DEVICE_LIST_TYPE_TAG: u8 = 0x11;

/// Errors of device-list verification and drafting. Each names what went
/// wrong and what the client should do.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeviceListError {
    /// The list is signed for (or claims) a different account than the one
    /// expected. Drop it.
    WrongAccount,
    /// The account's signature over this version does not verify. Drop the
    /// list; the storage node or the network altered or forged it.
    BadSignature {
        /// The version whose signature failed.
        version: u64,
    },
    /// The list carries a mandatory extension this client does not
    /// understand. Keep the held list and update the client.
    UnknownMandatoryExtension {
        /// The version carrying it.
        version: u64,
        /// The extension type.
        ext_type: u16,
    },
    /// The offered version is older than the held one: a rollback or a stale
    /// copy. Keep the held list.
    Rollback {
        /// The version held.
        held: u64,
        /// The version offered.
        offered: u64,
    },
    /// Two different lists signed by the account carry the same version: the
    /// account key signed conflicting histories (it may be compromised).
    /// Keep the held list, show a warning, and keep the evidence.
    Fork(Box<ForkEvidence>),
    /// The offered version does not directly follow the held one and the
    /// intermediate versions given do not bridge the gap. Fetch the missing
    /// versions and retry.
    Gap {
        /// The version held (or the last one bridged).
        held: u64,
        /// The version offered.
        offered: u64,
        /// The first version that is missing.
        missing: u64,
    },
    /// A version's `previous hash` is not the hash of the version before it:
    /// it extends a different history. Keep the held list.
    ChainMismatch {
        /// The version whose previous hash does not match.
        version: u64,
    },
    /// A removed device id is live again (or is both live and removed). A
    /// removed device can never come back; drop the list.
    TombstoneResurrection {
        /// The device id.
        id: DeviceId,
    },
    /// A tombstone of an earlier version is missing from a later one.
    TombstoneDropped {
        /// The device id.
        id: DeviceId,
    },
    /// A device disappeared from the list without a tombstone.
    DeviceVanished {
        /// The device id.
        id: DeviceId,
    },
    /// A device id kept its place but its identity keys or its `added_at`
    /// changed; a new key pair needs a new device id.
    IdentityChanged {
        /// The device id.
        id: DeviceId,
    },
    /// Drafting: the id is already live in the draft.
    DuplicateDevice {
        /// The device id.
        id: DeviceId,
    },
    /// Drafting: no live device has this id.
    UnknownDevice {
        /// The device id.
        id: DeviceId,
    },
    /// Drafting: the list already names [`MAX_DEVICES`] live devices.
    TooManyDevices,
    /// Drafting: the list already holds [`MAX_TOMBSTONES`] tombstones; no
    /// further device can be removed from this account.
    TooManyTombstones,
    /// Drafting: an extension is too long, repeated, or one too many.
    InvalidExtension {
        /// The extension type.
        ext_type: u16,
    },
    /// Drafting: the version counter is exhausted.
    VersionExhausted,
}

impl fmt::Display for DeviceListError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::WrongAccount => {
                f.write_str("device list belongs to a different account than expected; drop it")
            }
            Self::BadSignature { version } => write!(
                f,
                "device list version {version} is not validly signed by the account; drop it"
            ),
            Self::UnknownMandatoryExtension { version, ext_type } => write!(
                f,
                "device list version {version} has mandatory extension {ext_type:#06x} this client does not understand; keep the held list and update the client"
            ),
            Self::Rollback { held, offered } => write!(
                f,
                "device list version {offered} is older than the held version {held} (rollback or stale copy); keep the held list"
            ),
            Self::Fork(e) => write!(
                f,
                "two different device lists are signed with version {}: the account key signed conflicting histories; keep the held list, warn the user and keep the evidence",
                e.version()
            ),
            Self::Gap {
                held,
                offered,
                missing,
            } => write!(
                f,
                "cannot go from device list version {held} to {offered}: version {missing} is missing; fetch it and retry"
            ),
            Self::ChainMismatch { version } => write!(
                f,
                "device list version {version} does not extend the version before it (previous-hash mismatch); keep the held list"
            ),
            Self::TombstoneResurrection { id } => {
                write!(
                    f,
                    "removed device {id:?} appears as live again; drop the list"
                )
            }
            Self::TombstoneDropped { id } => write!(
                f,
                "the tombstone of removed device {id:?} was dropped; drop the list"
            ),
            Self::DeviceVanished { id } => write!(
                f,
                "device {id:?} left the list without a tombstone; drop the list"
            ),
            Self::IdentityChanged { id } => write!(
                f,
                "device {id:?} changed its identity keys or added time; a new key needs a new device id"
            ),
            Self::DuplicateDevice { id } => write!(f, "device {id:?} is already in the list"),
            Self::UnknownDevice { id } => {
                write!(f, "device {id:?} is not a live device of the list")
            }
            Self::TooManyDevices => write!(
                f,
                "the list already has the maximum of {MAX_DEVICES} devices; remove one first"
            ),
            Self::TooManyTombstones => write!(
                f,
                "the list already holds the maximum of {MAX_TOMBSTONES} tombstones; no more devices can be removed"
            ),
            Self::InvalidExtension { ext_type } => write!(
                f,
                "extension {ext_type:#06x} is repeated, longer than {MAX_EXTENSION_LEN} bytes, or one more than the {MAX_EXTENSIONS} allowed"
            ),
            Self::VersionExhausted => f.write_str("the device list version counter is exhausted"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for DeviceListError {}

/// A device's id in its account's list: 32 random bytes (public).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeviceId([u8; 32]);

impl DeviceId {
    /// A fresh random device id (draws 32 bytes).
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut id = [0u8; 32];
        rng.fill_bytes(&mut id);
        Self(id)
    }

    /// An id from its 32 bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The 32 bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DeviceId(")?;
        crate::util::write_hex_prefix(f, &self.0)?;
        f.write_str(")")
    }
}

/// The platform a device runs on (one byte on the wire). Values this
/// version does not name are kept as [`Platform::Other`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Platform {
    /// `0x00`: not stated.
    Unspecified,
    /// `0x01`.
    Android,
    /// `0x02`.
    Ios,
    /// `0x03`: desktop (Windows, macOS, Linux).
    Desktop,
    /// `0x04`.
    Web,
    /// Any other byte, kept as is.
    Other(u8),
}

impl Platform {
    /// The wire byte.
    pub const fn to_byte(self) -> u8 {
        match self {
            Self::Unspecified => 0,
            Self::Android => 1,
            Self::Ios => 2,
            Self::Desktop => 3,
            Self::Web => 4,
            Self::Other(b) => b,
        }
    }

    /// The platform of a wire byte.
    pub const fn from_byte(b: u8) -> Self {
        match b {
            0 => Self::Unspecified,
            1 => Self::Android,
            2 => Self::Ios,
            3 => Self::Desktop,
            4 => Self::Web,
            other => Self::Other(other),
        }
    }
}

/// A client version `major.minor.patch`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub struct ClientVersion {
    /// Major version.
    pub major: u16,
    /// Minor version.
    pub minor: u16,
    /// Patch version.
    pub patch: u16,
}

/// An extension: a type and opaque data. Types with [`EXTENSION_MANDATORY`]
/// set must be understood by every client that accepts the list; others are
/// kept, covered by the signature, and otherwise ignored. This version
/// defines no extension types.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Extension {
    ext_type: u16,
    data: Vec<u8>,
}

impl Extension {
    /// An extension; `None` if `data` is longer than [`MAX_EXTENSION_LEN`].
    pub fn new(ext_type: u16, data: &[u8]) -> Option<Self> {
        (data.len() <= MAX_EXTENSION_LEN).then(|| Self {
            ext_type,
            data: data.to_vec(),
        })
    }

    /// The type.
    pub fn ext_type(&self) -> u16 {
        self.ext_type
    }

    /// The data.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// Whether a client must understand it to accept the list.
    pub fn is_mandatory(&self) -> bool {
        self.ext_type & EXTENSION_MANDATORY != 0
    }

    fn write(&self, w: &mut Writer) {
        // `data.len() ≤ MAX_EXTENSION_LEN` by construction.
        w.u16(self.ext_type)
            .u16(u16::try_from(self.data.len()).unwrap_or(u16::MAX))
            .bytes(&self.data);
    }
}

fn write_extensions(w: &mut Writer, exts: &[Extension]) {
    // `exts.len() ≤ MAX_EXTENSIONS` by construction.
    w.u8(u8::try_from(exts.len()).unwrap_or(u8::MAX));
    for e in exts {
        e.write(w);
    }
}

fn read_extensions(r: &mut Reader<'_>) -> Result<Vec<Extension>, WireError> {
    let count = Reader::check_count(
        usize::from(r.u8("extension count")?),
        MAX_EXTENSIONS,
        "extension count",
    )?;
    let mut out: Vec<Extension> = Vec::with_capacity(count);
    for _ in 0..count {
        let ext_type = r.u16("extension type")?;
        if out.last().is_some_and(|p| p.ext_type >= ext_type) {
            return Err(WireError::NotCanonical {
                field: "extension type",
            });
        }
        let len = usize::from(r.u16("extension length")?);
        let data = r.bounded(len, MAX_EXTENSION_LEN, "extension data")?;
        out.push(Extension {
            ext_type,
            data: data.to_vec(),
        });
    }
    Ok(out)
}

/// Inserts `ext` keeping types ascending; rejects a repeat or one too many.
fn insert_extension(exts: &mut Vec<Extension>, ext: Extension) -> Result<(), DeviceListError> {
    let ext_type = ext.ext_type;
    match exts.binary_search_by_key(&ext_type, |e| e.ext_type) {
        Ok(_) => Err(DeviceListError::InvalidExtension { ext_type }),
        Err(_) if exts.len() >= MAX_EXTENSIONS => {
            Err(DeviceListError::InvalidExtension { ext_type })
        }
        Err(at) => {
            exts.insert(at, ext);
            Ok(())
        }
    }
}

/// `s` cut to at most `max` bytes on a UTF-8 character boundary.
pub(super) fn cut_utf8(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end = end.saturating_sub(1);
    }
    s.get(..end).unwrap_or_default()
}

/// One live device of the list.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct DeviceEntry {
    id: DeviceId,
    identity: DevicePublicIdentity,
    platform: Platform,
    client_version: ClientVersion,
    added_at: u64,
    updated_at: u64,
    description: String,
    extensions: Vec<Extension>,
}

impl DeviceEntry {
    /// A new entry added at `added_at` (seconds since the Unix epoch; also
    /// its `updated_at`). `description` is cut to [`MAX_DESCRIPTION_LEN`]
    /// bytes on a character boundary.
    pub fn new(
        id: DeviceId,
        identity: DevicePublicIdentity,
        platform: Platform,
        description: &str,
        client_version: ClientVersion,
        added_at: u64,
    ) -> Self {
        Self {
            id,
            identity,
            platform,
            client_version,
            added_at,
            updated_at: added_at,
            description: String::from(cut_utf8(description, MAX_DESCRIPTION_LEN)),
            extensions: Vec::new(),
        }
    }

    /// Replaces the description (cut as in [`DeviceEntry::new`]) and sets `updated_at`.
    pub fn set_description(&mut self, description: &str, updated_at: u64) {
        self.description = String::from(cut_utf8(description, MAX_DESCRIPTION_LEN));
        self.updated_at = updated_at;
    }

    /// Replaces the client version and sets `updated_at`.
    pub fn set_client_version(&mut self, version: ClientVersion, updated_at: u64) {
        self.client_version = version;
        self.updated_at = updated_at;
    }

    /// Adds an extension to this entry.
    pub fn add_extension(&mut self, ext: Extension) -> Result<(), DeviceListError> {
        insert_extension(&mut self.extensions, ext)
    }

    /// The device id.
    pub fn id(&self) -> &DeviceId {
        &self.id
    }
    /// The device's public identity keys.
    pub fn identity(&self) -> &DevicePublicIdentity {
        &self.identity
    }
    /// The platform.
    pub fn platform(&self) -> Platform {
        self.platform
    }
    /// The client version.
    pub fn client_version(&self) -> ClientVersion {
        self.client_version
    }
    /// When the device was added (seconds since the Unix epoch).
    pub fn added_at(&self) -> u64 {
        self.added_at
    }
    /// When the entry last changed (seconds since the Unix epoch).
    pub fn updated_at(&self) -> u64 {
        self.updated_at
    }
    /// The description (at most [`MAX_DESCRIPTION_LEN`] bytes of UTF-8).
    pub fn description(&self) -> &str {
        &self.description
    }
    /// The entry's extensions, by ascending type.
    pub fn extensions(&self) -> &[Extension] {
        &self.extensions
    }

    fn write(&self, w: &mut Writer) {
        let v = self.client_version;
        w.bytes(&self.id.0)
            .bytes(&self.identity.to_bytes())
            .u8(self.platform.to_byte())
            .u16(v.major)
            .u16(v.minor)
            .u16(v.patch)
            .u64(self.added_at)
            .u64(self.updated_at)
            // ≤ MAX_DESCRIPTION_LEN by construction.
            .u8(u8::try_from(self.description.len()).unwrap_or(u8::MAX))
            .bytes(self.description.as_bytes());
        write_extensions(w, &self.extensions);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let id = DeviceId(r.array::<32>("device id")?);
        let identity = DevicePublicIdentity::read(r, "device identity")?;
        let platform = Platform::from_byte(r.u8("platform")?);
        let client_version = ClientVersion {
            major: r.u16("client version")?,
            minor: r.u16("client version")?,
            patch: r.u16("client version")?,
        };
        let added_at = r.u64("added at")?;
        let updated_at = r.u64("updated at")?;
        let len = usize::from(r.u8("description length")?);
        let description = r.bounded(len, MAX_DESCRIPTION_LEN, "description")?;
        let description = core::str::from_utf8(description)
            .map_err(|_| WireError::InvalidUtf8 {
                field: "description",
            })?
            .into();
        let extensions = read_extensions(r)?;
        Ok(Self {
            id,
            identity,
            platform,
            client_version,
            added_at,
            updated_at,
            description,
            extensions,
        })
    }
}

/// A removed device: its id and when it was removed. Permanent.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Tombstone {
    id: DeviceId,
    removed_at: u64,
}

impl Tombstone {
    /// The removed device's id.
    pub fn id(&self) -> &DeviceId {
        &self.id
    }
    /// When it was removed (seconds since the Unix epoch).
    pub fn removed_at(&self) -> u64 {
        self.removed_at
    }
}

/// The list's content: everything the signature covers.
#[derive(Clone, PartialEq, Eq, Debug)]
struct Body {
    account: Ed25519PublicKey,
    version: u64,
    previous_hash: [u8; 32],
    devices: Vec<DeviceEntry>,
    tombstones: Vec<Tombstone>,
    extensions: Vec<Extension>,
}

impl Body {
    fn write(&self, w: &mut Writer) {
        w.bytes(&self.account.to_bytes())
            .u64(self.version)
            .bytes(&self.previous_hash)
            // Both counts are bounded by construction.
            .u8(u8::try_from(self.devices.len()).unwrap_or(u8::MAX));
        for d in &self.devices {
            d.write(w);
        }
        w.u16(u16::try_from(self.tombstones.len()).unwrap_or(u16::MAX));
        for t in &self.tombstones {
            w.bytes(&t.id.0).u64(t.removed_at);
        }
        write_extensions(w, &self.extensions);
    }

    fn encode(&self) -> Vec<u8> {
        let mut w = Writer::start(message_type::DEVICE_LIST, MAX_DEVICE_LIST_LEN);
        self.write(&mut w);
        w.finish()
    }

    /// `SHA-256(LABEL_DEVICE_LIST_HASH ‖ body)` (spec §8.2).
    fn hash(&self) -> [u8; 32] {
        kdf::sha256(&[label::DEVICE_LIST_HASH, &self.encode()])
    }

    fn signature_input(hash: &[u8; 32]) -> Vec<u8> {
        wire::signature_input(label::DEVICE_LIST_SIGNATURE, DEVICE_LIST_TYPE_TAG, &[hash])
    }

    fn status(&self, id: &DeviceId) -> DeviceStatus<'_> {
        if let Some(d) = self
            .devices
            .binary_search_by_key(id, |d| d.id)
            .ok()
            .and_then(|i| self.devices.get(i))
        {
            return DeviceStatus::Active(d);
        }
        match self.tombstones.binary_search_by_key(id, |t| t.id) {
            Ok(i) => {
                self.tombstones
                    .get(i)
                    .map_or(DeviceStatus::Unknown, |t| DeviceStatus::Revoked {
                        removed_at: t.removed_at,
                    })
            }
            Err(_) => DeviceStatus::Unknown,
        }
    }
}

/// A device list as signed by the account: decoded, not yet verified.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SignedDeviceList {
    body: Body,
    hash: [u8; 32],
    signature: [u8; SIGNATURE_LEN],
}

impl SignedDeviceList {
    /// Decodes (spec §8.2, §6.5). Checks syntax, bounds, order and key
    /// validity only; verification is [`VerifiedDeviceList::trust_first`] or
    /// [`VerifiedDeviceList::accept_update`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::start(bytes, message_type::DEVICE_LIST)?;
        let account = r.array::<32>("account key")?;
        let account =
            Ed25519PublicKey::from_bytes(&account).map_err(|_| WireError::InvalidEd25519Key {
                field: "account key",
            })?;
        let version = r.u64("list version")?;
        if version == 0 {
            return Err(WireError::InvalidValue {
                field: "list version",
            });
        }
        let previous_hash = r.array::<32>("previous hash")?;
        if (version == 1) != (previous_hash == [0u8; 32]) {
            return Err(WireError::InvalidValue {
                field: "previous hash",
            });
        }
        let count = Reader::check_count(
            usize::from(r.u8("device count")?),
            MAX_DEVICES,
            "device count",
        )?;
        let mut devices: Vec<DeviceEntry> = Vec::with_capacity(count);
        for _ in 0..count {
            let d = DeviceEntry::read(&mut r)?;
            if devices.last().is_some_and(|p| p.id >= d.id) {
                return Err(WireError::NotCanonical { field: "device id" });
            }
            devices.push(d);
        }
        let count = Reader::check_count(
            usize::from(r.u16("tombstone count")?),
            MAX_TOMBSTONES,
            "tombstone count",
        )?;
        // Allocate only for tombstones the input can actually hold.
        if r.remaining() < count.saturating_mul(TOMBSTONE_LEN) {
            return Err(WireError::Truncated { field: "tombstone" });
        }
        let mut tombstones: Vec<Tombstone> = Vec::with_capacity(count);
        for _ in 0..count {
            let id = DeviceId(r.array::<32>("tombstone id")?);
            let removed_at = r.u64("removed at")?;
            if tombstones.last().is_some_and(|p| p.id >= id) {
                return Err(WireError::NotCanonical {
                    field: "tombstone id",
                });
            }
            if devices.binary_search_by_key(&id, |d| d.id).is_ok() {
                return Err(WireError::InvalidValue {
                    field: "tombstone id (also a live device)",
                });
            }
            tombstones.push(Tombstone { id, removed_at });
        }
        let extensions = read_extensions(&mut r)?;
        let signature = r.array::<SIGNATURE_LEN>("signature")?;
        r.finish()?;
        let body = Body {
            account,
            version,
            previous_hash,
            devices,
            tombstones,
            extensions,
        };
        let hash = body.hash();
        Ok(Self {
            body,
            hash,
            signature,
        })
    }

    /// Canonical encoding (spec §8.2).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::start(message_type::DEVICE_LIST, MAX_DEVICE_LIST_LEN);
        self.body.write(&mut w);
        w.bytes(&self.signature);
        w.finish()
    }

    /// The list hash, `SHA-256(LABEL_DEVICE_LIST_HASH ‖ body)`: what the
    /// next version names as its previous hash and what the account signs.
    pub fn hash(&self) -> &[u8; 32] {
        &self.hash
    }
    /// The account key that claims to have signed this list.
    pub fn account(&self) -> &Ed25519PublicKey {
        &self.body.account
    }
    /// The version number (1 for the first list).
    pub fn version(&self) -> u64 {
        self.body.version
    }
    /// The hash of the previous version (all zero for version 1).
    pub fn previous_hash(&self) -> &[u8; 32] {
        &self.body.previous_hash
    }
    /// The live devices, by ascending id.
    pub fn devices(&self) -> &[DeviceEntry] {
        &self.body.devices
    }
    /// The tombstones, by ascending id.
    pub fn tombstones(&self) -> &[Tombstone] {
        &self.body.tombstones
    }
    /// The list's extensions, by ascending type.
    pub fn extensions(&self) -> &[Extension] {
        &self.body.extensions
    }
    /// The account's signature.
    pub fn signature(&self) -> &[u8; SIGNATURE_LEN] {
        &self.signature
    }

    /// Checks the signature under the list's own account key.
    pub fn verify_signature(&self) -> Result<(), DeviceListError> {
        self.body
            .account
            .verify(&Body::signature_input(&self.hash), &self.signature)
            .map_err(|_| DeviceListError::BadSignature {
                version: self.body.version,
            })
    }

    /// Signature, then extensions: what every version must pass on its own.
    fn check_alone(&self) -> Result<(), DeviceListError> {
        self.verify_signature()?;
        // This version understands no extension type, so every mandatory one is unknown.
        let all = self
            .body
            .extensions
            .iter()
            .chain(self.body.devices.iter().flat_map(|d| d.extensions.iter()));
        for e in all {
            if e.is_mandatory() {
                return Err(DeviceListError::UnknownMandatoryExtension {
                    version: self.body.version,
                    ext_type: e.ext_type,
                });
            }
        }
        Ok(())
    }

    /// The rules between consecutive versions (spec §8.2.4 step 5).
    fn check_successor(&self, next: &Self) -> Result<(), DeviceListError> {
        if next.body.account != self.body.account {
            return Err(DeviceListError::WrongAccount);
        }
        if next.body.previous_hash != self.hash {
            return Err(DeviceListError::ChainMismatch {
                version: next.body.version,
            });
        }
        for t in &self.body.tombstones {
            match next.body.status(&t.id) {
                DeviceStatus::Revoked { .. } => {}
                DeviceStatus::Active(_) => {
                    return Err(DeviceListError::TombstoneResurrection { id: t.id });
                }
                DeviceStatus::Unknown => {
                    return Err(DeviceListError::TombstoneDropped { id: t.id });
                }
            }
        }
        for d in &self.body.devices {
            match next.body.status(&d.id) {
                DeviceStatus::Revoked { .. } => {}
                DeviceStatus::Active(n) => {
                    if n.identity != d.identity || n.added_at != d.added_at {
                        return Err(DeviceListError::IdentityChanged { id: d.id });
                    }
                }
                DeviceStatus::Unknown => return Err(DeviceListError::DeviceVanished { id: d.id }),
            }
        }
        Ok(())
    }
}

/// Two different lists of the same account with the same version, both
/// validly signed: proof that the account key signed conflicting histories.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ForkEvidence {
    held: SignedDeviceList,
    offered: SignedDeviceList,
}

impl ForkEvidence {
    /// The version both lists claim.
    pub fn version(&self) -> u64 {
        self.held.body.version
    }
    /// The list the client held (or had accepted on the way).
    pub fn held(&self) -> &SignedDeviceList {
        &self.held
    }
    /// The conflicting list offered.
    pub fn offered(&self) -> &SignedDeviceList {
        &self.offered
    }
    /// Re-checks the evidence (for example when another client receives it):
    /// same account, same version, different hashes, both signatures valid.
    pub fn verify(&self) -> bool {
        self.held.body.account == self.offered.body.account
            && self.held.body.version == self.offered.body.version
            && self.held.hash != self.offered.hash
            && self.held.verify_signature().is_ok()
            && self.offered.verify_signature().is_ok()
    }
}

/// Whether a device id may be used now (spec §8.3).
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum DeviceStatus<'a> {
    /// A live device of the list: messages may be sent to and accepted from it.
    Active(&'a DeviceEntry),
    /// Removed (tombstoned): never send to it or accept anything from it again.
    Revoked {
        /// When it was removed.
        removed_at: u64,
    },
    /// Not in the list: not (yet) a device of this account.
    Unknown,
}

/// What [`VerifiedDeviceList::accept_update`] decided.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum UpdateOutcome {
    /// The offered list is the held one; nothing changes.
    Unchanged,
    /// The offered list is newer and valid: replace the held list with this.
    Advanced(Box<VerifiedDeviceList>),
}

/// A device list this client has accepted: validly signed by the expected
/// account and reached from the first list it trusted by verified steps.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct VerifiedDeviceList(SignedDeviceList);

impl VerifiedDeviceList {
    /// Accepts the first list seen for the account with Session ID
    /// `expected` (trust on first use of the chain): the account key must
    /// map to the Session ID (spec §8.1), the signature must verify and no
    /// mandatory extension may be unknown.
    pub fn trust_first(
        list: SignedDeviceList,
        expected: &SessionId,
    ) -> Result<Self, DeviceListError> {
        if !expected.matches_account_key(&list.body.account) {
            return Err(DeviceListError::WrongAccount);
        }
        list.check_alone()?;
        Ok(Self(list))
    }

    /// Like [`VerifiedDeviceList::trust_first`] for a client that knows the
    /// account's Ed25519 key itself (for example one of its own devices).
    pub fn trust_first_with_key(
        list: SignedDeviceList,
        expected: &Ed25519PublicKey,
    ) -> Result<Self, DeviceListError> {
        if list.body.account != *expected {
            return Err(DeviceListError::WrongAccount);
        }
        list.check_alone()?;
        Ok(Self(list))
    }

    /// Decides whether `offered` may replace this list (spec §8.2.4).
    /// `intermediates` are the versions between the held one and `offered`,
    /// in ascending order; versions not newer than the held one are checked
    /// for forks and otherwise skipped. Each version costs one signature check.
    ///
    /// Pure: on error nothing changes; on [`UpdateOutcome::Advanced`] the
    /// caller replaces its held list with the returned one.
    pub fn accept_update(
        &self,
        offered: &SignedDeviceList,
        intermediates: &[SignedDeviceList],
    ) -> Result<UpdateOutcome, DeviceListError> {
        let held = &self.0;
        if offered.body.account != held.body.account {
            return Err(DeviceListError::WrongAccount);
        }
        let (h, u) = (held.body.version, offered.body.version);
        if u <= h {
            if u == h && offered.hash == held.hash {
                return Ok(UpdateOutcome::Unchanged);
            }
            if u == h && offered.verify_signature().is_ok() {
                return Err(self.fork(offered));
            }
            offered.verify_signature()?;
            return Err(DeviceListError::Rollback {
                held: h,
                offered: u,
            });
        }
        offered.check_alone()?;
        let mut current = held;
        for step in intermediates {
            let v = step.body.version;
            if v >= u {
                break;
            }
            if v < current.body.version {
                continue;
            }
            if v == current.body.version {
                if v == h && step.hash != held.hash && step.verify_signature().is_ok() {
                    return Err(self.fork(step));
                }
                continue;
            }
            if v != current.body.version.saturating_add(1) {
                break;
            }
            if step.body.account != held.body.account {
                return Err(DeviceListError::WrongAccount);
            }
            step.check_alone()?;
            current.check_successor(step)?;
            current = step;
        }
        let next = current.body.version.saturating_add(1);
        if next != u {
            return Err(DeviceListError::Gap {
                held: current.body.version,
                offered: u,
                missing: next,
            });
        }
        current.check_successor(offered)?;
        Ok(UpdateOutcome::Advanced(Box::new(Self(offered.clone()))))
    }

    fn fork(&self, other: &SignedDeviceList) -> DeviceListError {
        DeviceListError::Fork(Box::new(ForkEvidence {
            held: self.0.clone(),
            offered: other.clone(),
        }))
    }

    /// The verified list.
    pub fn list(&self) -> &SignedDeviceList {
        &self.0
    }

    /// Whether `id` is active, revoked, or unknown in this list (spec §8.3).
    pub fn status(&self, id: &DeviceId) -> DeviceStatus<'_> {
        self.0.body.status(id)
    }

    /// Whether `id` is a live device: the only devices a client sends to or
    /// accepts messages from.
    pub fn is_active(&self, id: &DeviceId) -> bool {
        matches!(self.status(id), DeviceStatus::Active(_))
    }

    /// The live device whose identity keys are `identity`, if any.
    pub fn device_with_identity(&self, identity: &DevicePublicIdentity) -> Option<&DeviceEntry> {
        self.0.body.devices.iter().find(|d| d.identity == *identity)
    }

    /// A draft of the next version: same content, version + 1, previous hash
    /// = this list's hash. Only the account can sign it.
    pub fn next_draft(&self) -> Result<DeviceListDraft, DeviceListError> {
        let version = self
            .0
            .body
            .version
            .checked_add(1)
            .ok_or(DeviceListError::VersionExhausted)?;
        Ok(DeviceListDraft(Body {
            version,
            previous_hash: self.0.hash,
            ..self.0.body.clone()
        }))
    }
}

/// The next version of a device list, being edited by the account holder.
/// Every method either applies completely or returns an error and changes nothing.
#[derive(Clone, Debug)]
pub struct DeviceListDraft(Body);

impl DeviceListDraft {
    /// An empty version 1 for `account`.
    pub fn first(account: &Account) -> Self {
        Self(Body {
            account: account.public_key(),
            version: 1,
            previous_hash: [0; 32],
            devices: Vec::new(),
            tombstones: Vec::new(),
            extensions: Vec::new(),
        })
    }

    /// Adds a live device. Fails for an id that is live or was ever removed.
    pub fn add_device(&mut self, entry: DeviceEntry) -> Result<(), DeviceListError> {
        let id = entry.id;
        match self.0.status(&id) {
            DeviceStatus::Active(_) => return Err(DeviceListError::DuplicateDevice { id }),
            DeviceStatus::Revoked { .. } => {
                return Err(DeviceListError::TombstoneResurrection { id });
            }
            DeviceStatus::Unknown => {}
        }
        if self.0.devices.len() >= MAX_DEVICES {
            return Err(DeviceListError::TooManyDevices);
        }
        let at = self.0.devices.partition_point(|d| d.id < id);
        self.0.devices.insert(at, entry);
        Ok(())
    }

    /// Replaces a live device's metadata (description, platform, client
    /// version, times, extensions). Its identity keys and `added_at` must not
    /// change: a new key pair is a new device.
    pub fn update_device(&mut self, entry: DeviceEntry) -> Result<(), DeviceListError> {
        let id = entry.id;
        let slot = self
            .0
            .devices
            .iter_mut()
            .find(|d| d.id == id)
            .ok_or(DeviceListError::UnknownDevice { id })?;
        if slot.identity != entry.identity || slot.added_at != entry.added_at {
            return Err(DeviceListError::IdentityChanged { id });
        }
        *slot = entry;
        Ok(())
    }

    /// Revokes a live device (spec §8.3): its entry becomes a tombstone.
    pub fn remove_device(&mut self, id: &DeviceId, removed_at: u64) -> Result<(), DeviceListError> {
        let at = self
            .0
            .devices
            .binary_search_by_key(id, |d| d.id)
            .map_err(|_| DeviceListError::UnknownDevice { id: *id })?;
        if self.0.tombstones.len() >= MAX_TOMBSTONES {
            return Err(DeviceListError::TooManyTombstones);
        }
        self.0.devices.remove(at);
        let t_at = self.0.tombstones.partition_point(|t| t.id < *id);
        self.0.tombstones.insert(
            t_at,
            Tombstone {
                id: *id,
                removed_at,
            },
        );
        Ok(())
    }

    /// Adds a list-level extension.
    pub fn add_extension(&mut self, ext: Extension) -> Result<(), DeviceListError> {
        insert_extension(&mut self.0.extensions, ext)
    }

    /// The live devices so far.
    pub fn devices(&self) -> &[DeviceEntry] {
        &self.0.devices
    }

    /// Signs the draft with the account key. Fails if `account` is not the
    /// account the draft belongs to.
    pub fn sign(self, account: &Account) -> Result<SignedDeviceList, DeviceListError> {
        if account.public_key() != self.0.account {
            return Err(DeviceListError::WrongAccount);
        }
        let hash = self.0.hash();
        let signature = account.sign(&Body::signature_input(&hash));
        Ok(SignedDeviceList {
            body: self.0,
            hash,
            signature,
        })
    }
}

#[cfg(test)]
mod tests;
