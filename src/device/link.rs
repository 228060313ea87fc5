//! Linking a new device to an account (spec §8.5).
//!
//! This module owns the exchange through which a **new device** (N), which
//! holds only its fresh [`DeviceIdentity`], joins an account with the help of
//! an **existing device** (E), which holds the [`Account`] key and the
//! account's [`VerifiedDeviceList`]:
//!
//! ```text
//!  new device N                                       existing device E
//!  ────────────                                       ─────────────────
//!  LinkInitiator::start: X-Wing key, nonce
//!  ── LinkRequest (0x08, QR code or mailbox) ───────────────────▶
//!                                PendingLink::respond: encapsulate, nonce
//!  ◀─────────────────────────────────────── LinkResponse (0x09) ──
//!  receive_response                     th = SHA-256(label ‖ request ‖ response)
//!  both screens show the emoji SAS of th; the user compares them
//!                                  approve: draw the device id, sign the
//!                                  next list adding N, seal the payload
//!  ◀──────────────────────────────────────── LinkPayload (0x0A) ──
//!  open_payload: list verifies, names N as requested   (or reject: nothing changes)
//! ```
//!
//! The key exchange is X-Wing (hybrid X25519 + ML-KEM-768), so a recorded
//! exchange stays confidential against a future quantum computer. The SAS
//! ([`crate::device::sas`]) is computed over the hash of both messages: a man
//! in the middle who substitutes a key or a ciphertext makes the two screens
//! differ. Until the user confirms, the existing device has signed nothing.
#![deny(clippy::integer_division_remainder_used)]

use super::list::{
    ClientVersion, DeviceEntry, DeviceId, DeviceListDraft, DeviceListError, DeviceStatus,
    MAX_DESCRIPTION_LEN, MAX_DEVICE_LIST_LEN, MAX_DEVICES, Platform, SignedDeviceList,
    VerifiedDeviceList, cut_utf8,
};
use super::sas::{self, Sas, SasError};
use crate::account::Account;
use crate::aead::{self, TAG_LEN};
use crate::identity::{DeviceIdentity, DevicePublicIdentity, Ed25519PublicKey};
use crate::kdf::{self, label};
use crate::kem::KemError;
use crate::kem::xwing::{
    self, XWING_CIPHERTEXT_LEN, XWING_PUBLIC_KEY_LEN, XWingCiphertext, XWingKeyPair, XWingPublicKey,
};
use crate::secret::{Ed25519Seed, SharedSecret, SymmetricKey};
use crate::wire::{Reader, WIRE_VERSION, WireError, Writer, message_type};
use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use rand_core::CryptoRng;
use zeroize::Zeroizing;

#[cfg(test)]
mod tests;

/// Length of each side's random nonce.
pub const LINK_NONCE_LEN: usize = 32;
/// Most contacts a link payload may carry.
pub const MAX_LINK_CONTACTS: usize = 1024;
/// Length of a link request with an empty description (1322 bytes).
pub const LINK_REQUEST_MIN_LEN: usize = 2 + 64 + XWING_PUBLIC_KEY_LEN + LINK_NONCE_LEN + 1 + 6 + 1;
/// Length of the longest link request (1386 bytes).
pub const MAX_LINK_REQUEST_LEN: usize = LINK_REQUEST_MIN_LEN + MAX_DESCRIPTION_LEN;
/// Length of a link response (fixed, 1250 bytes).
pub const LINK_RESPONSE_LEN: usize = 2 + 32 + 64 + XWING_CIPHERTEXT_LEN + LINK_NONCE_LEN;
/// Fixed fields of the payload plaintext without the account seed: device
/// id, flags, contact count.
const PAYLOAD_FIXED_LEN: usize = 32 + 1 + 2;
/// Shortest sealed part of a payload: the fixed fields and the tag.
const MIN_SEALED_LEN: usize = PAYLOAD_FIXED_LEN + TAG_LEN;
/// Length of the longest link payload (94,595 bytes): a seed, the maximum
/// of contacts and the largest device list. It exceeds
/// [`crate::wire::MAX_WIRE_LEN`]; see spec §8.5.6 for carrying it.
pub const MAX_LINK_PAYLOAD_LEN: usize =
    2 + PAYLOAD_FIXED_LEN + 32 + MAX_LINK_CONTACTS * 32 + MAX_DEVICE_LIST_LEN + TAG_LEN;
/// How long a client keeps a link exchange open, in seconds. The crate reads
/// no clock: the client drops its [`LinkInitiator`], [`AwaitingApproval`] or
/// [`PendingLink`] after this long (spec §8.5.10).
pub const LINK_TIMEOUT_SECS: u64 = 600;

/// Flags bit of the payload: the account's Ed25519 seed follows.
const FLAG_ACCOUNT_SEED: u8 = 0x01;
/// Associated data of the sealed payload: its envelope's version and type.
const PAYLOAD_AD: [u8; 2] = [WIRE_VERSION, message_type::LINK_PAYLOAD];

/// Errors of device linking. Each says what went wrong and what to do; on
/// every error the caller's state (device list, account, link state) is
/// unchanged.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LinkError {
    /// The X-Wing exchange failed: the other side's key or ciphertext has a
    /// low-order X25519 part (`NonContributoryX25519`). The message was
    /// forged or corrupted; abandon this exchange and start a new one.
    Kem(KemError),
    /// The emoji SAS could not be computed (see [`SasError`]).
    Sas(SasError),
    /// Approving: the account given is not the one the response named, or
    /// the device list given belongs to another account. Approve with the
    /// same account as in [`PendingLink::respond`] and that account's list.
    WrongAccount,
    /// The approving device is not a live device of the device list (when
    /// approving: of the list held; when opening: of the new list). Only a
    /// listed device can vouch for a new one.
    ApproverNotListed,
    /// Approving: the new device's identity is already a live device of the
    /// list. Nothing to do; the request was already approved.
    AlreadyListed,
    /// Approving: more contacts than [`MAX_LINK_CONTACTS`] (after removing
    /// repeats). Pass the most important ones; the new device learns the
    /// others later.
    TooManyContacts {
        /// Distinct contacts given.
        count: usize,
    },
    /// The device list could not be drafted (approving: for example it
    /// already holds [`MAX_DEVICES`] devices; remove one first) or does not
    /// verify (opening: [`DeviceListError`] says why; do not join).
    List(DeviceListError),
    /// Opening: the payload does not authenticate under this exchange's key:
    /// it was altered, belongs to another exchange, or a third party sits in
    /// the middle (the SAS screens differed). Do not join; start again.
    PayloadAuthenticationFailed,
    /// Opening: the payload authenticated but its content is malformed: the
    /// approving device is faulty. Do not join.
    MalformedPayload(WireError),
    /// Opening: the new list has no live device with the payload's device id.
    NotListed,
    /// Opening: the new list lists the payload's device id with identity
    /// keys other than this device's. Do not join.
    IdentityMismatch,
    /// Opening: the new list's entry for this device differs from the
    /// requested platform, client version or description. Do not join.
    EntryMismatch,
    /// Opening: the account seed in the payload does not give the account
    /// key the response named. Do not join.
    WrongAccountSeed,
    /// A primitive refused its input (cannot happen with the fixed sizes used).
    Internal,
}

impl fmt::Display for LinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Kem(e) => write!(
                f,
                "the link key exchange failed ({e}); abandon this link attempt and start a new one"
            ),
            Self::Sas(e) => write!(f, "cannot compute the link emoji: {e}"),
            Self::WrongAccount => f.write_str(
                "the account or device list given is not the account this link response was made for",
            ),
            Self::ApproverNotListed => f.write_str(
                "the approving device is not a live device of the account's device list",
            ),
            Self::AlreadyListed => {
                f.write_str("the requesting device is already in the account's device list")
            }
            Self::TooManyContacts { count } => write!(
                f,
                "{count} contacts given; a link payload carries at most {MAX_LINK_CONTACTS}"
            ),
            Self::List(e) => write!(f, "device list: {e}"),
            Self::PayloadAuthenticationFailed => f.write_str(
                "the link payload does not belong to this exchange (altered, from another exchange, or intercepted); do not join, start again",
            ),
            Self::MalformedPayload(e) => write!(
                f,
                "the link payload is malformed ({e}); the approving device is faulty, do not join"
            ),
            Self::NotListed => {
                f.write_str("the new device list does not list this device; do not join")
            }
            Self::IdentityMismatch => f.write_str(
                "the new device list gives this device's id other identity keys; do not join",
            ),
            Self::EntryMismatch => f.write_str(
                "the new device list lists this device with other platform, version or description than requested; do not join",
            ),
            Self::WrongAccountSeed => f.write_str(
                "the account seed in the link payload is not the seed of the account; do not join",
            ),
            Self::Internal => f.write_str("internal error in a primitive"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for LinkError {}

impl From<DeviceListError> for LinkError {
    fn from(e: DeviceListError) -> Self {
        Self::List(e)
    }
}

/// A new device's request to join an account (spec §8.5.3, type `0x08`):
/// its identity, an ephemeral X-Wing key, a nonce, and the device-list
/// fields it asks for. Public: typically shown as a QR code.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct LinkRequest {
    identity: DevicePublicIdentity,
    xwing: XWingPublicKey,
    nonce: [u8; LINK_NONCE_LEN],
    platform: Platform,
    client_version: ClientVersion,
    description: String,
}

impl LinkRequest {
    /// The requesting device's identity keys.
    pub fn identity(&self) -> &DevicePublicIdentity {
        &self.identity
    }
    /// The platform it asks to be listed with.
    pub fn platform(&self) -> Platform {
        self.platform
    }
    /// The client version it asks to be listed with.
    pub fn client_version(&self) -> ClientVersion {
        self.client_version
    }
    /// The description it asks to be listed with (at most 64 bytes): show
    /// it when asking the user to approve.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// Canonical encoding (spec §8.5.3).
    pub fn to_bytes(&self) -> Vec<u8> {
        let v = self.client_version;
        let mut w = Writer::start(message_type::LINK_REQUEST, MAX_LINK_REQUEST_LEN);
        w.bytes(&self.identity.to_bytes())
            .bytes(&self.xwing.to_bytes())
            .bytes(&self.nonce)
            .u8(self.platform.to_byte())
            .u16(v.major)
            .u16(v.minor)
            .u16(v.patch)
            // ≤ MAX_DESCRIPTION_LEN by construction.
            .u8(u8::try_from(self.description.len()).unwrap_or(u8::MAX))
            .bytes(self.description.as_bytes());
        w.finish()
    }

    /// Decodes (spec §8.5.3, §6.5): syntax and key validity (the identity's
    /// Ed25519 key, the X-Wing key's ML-KEM half).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::start(bytes, message_type::LINK_REQUEST)?;
        let identity = DevicePublicIdentity::read(&mut r, "device identity")?;
        let field = "X-Wing public key";
        let xwing = XWingPublicKey::from_bytes(r.slice(XWING_PUBLIC_KEY_LEN, field)?)
            .map_err(|_| WireError::InvalidMlKemKey { field })?;
        let nonce = r.array::<LINK_NONCE_LEN>("nonce")?;
        let platform = Platform::from_byte(r.u8("platform")?);
        let client_version = ClientVersion {
            major: r.u16("client version")?,
            minor: r.u16("client version")?,
            patch: r.u16("client version")?,
        };
        let len = usize::from(r.u8("description length")?);
        let description = r.bounded(len, MAX_DESCRIPTION_LEN, "description")?;
        let description = core::str::from_utf8(description)
            .map_err(|_| WireError::InvalidUtf8 {
                field: "description",
            })?
            .into();
        r.finish()?;
        Ok(Self {
            identity,
            xwing,
            nonce,
            platform,
            client_version,
            description,
        })
    }
}

/// An existing device's answer to a [`LinkRequest`] (spec §8.5.4, type
/// `0x09`): the account key, the approving device's identity, the X-Wing
/// ciphertext to the request's key, and a nonce.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct LinkResponse {
    account: Ed25519PublicKey,
    approver: DevicePublicIdentity,
    ciphertext: XWingCiphertext,
    nonce: [u8; LINK_NONCE_LEN],
}

impl LinkResponse {
    /// The account the new device is asked to join.
    pub fn account(&self) -> &Ed25519PublicKey {
        &self.account
    }
    /// The identity of the device that answered.
    pub fn approver(&self) -> &DevicePublicIdentity {
        &self.approver
    }

    /// Canonical encoding (spec §8.5.4), [`LINK_RESPONSE_LEN`] bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::start(message_type::LINK_RESPONSE, LINK_RESPONSE_LEN);
        w.bytes(&self.account.to_bytes())
            .bytes(&self.approver.to_bytes())
            .bytes(&self.ciphertext.to_bytes())
            .bytes(&self.nonce);
        w.finish()
    }

    /// Decodes (spec §8.5.4, §6.5).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::start(bytes, message_type::LINK_RESPONSE)?;
        let field = "account key";
        let account = Ed25519PublicKey::from_bytes(&r.array::<32>(field)?)
            .map_err(|_| WireError::InvalidEd25519Key { field })?;
        let approver = DevicePublicIdentity::read(&mut r, "approver identity")?;
        let field = "X-Wing ciphertext";
        let ciphertext = XWingCiphertext::from_bytes(r.slice(XWING_CIPHERTEXT_LEN, field)?)
            .map_err(|_| WireError::Truncated { field })?;
        let nonce = r.array::<LINK_NONCE_LEN>("nonce")?;
        r.finish()?;
        Ok(Self {
            account,
            approver,
            ciphertext,
            nonce,
        })
    }
}

/// The sealed payload of an approved link (spec §8.5.6, type `0x0A`). Only
/// the new device of the same exchange can open it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct LinkPayload {
    /// ChaCha20-Poly1305 ciphertext and tag.
    sealed: Vec<u8>,
}

impl LinkPayload {
    /// The encoding `0x01 ‖ 0x0A ‖ sealed` (spec §8.5.6).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::start(message_type::LINK_PAYLOAD, 2 + self.sealed.len());
        w.bytes(&self.sealed);
        w.finish()
    }

    /// Decodes the envelope (spec §8.5.6, §6.5): at most
    /// [`MAX_LINK_PAYLOAD_LEN`] bytes, and a sealed part that can hold the
    /// fixed fields and the tag. The content is checked when opened.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, WireError> {
        let mut r =
            Reader::start_with_limit(bytes, message_type::LINK_PAYLOAD, MAX_LINK_PAYLOAD_LEN)?;
        let sealed = r.rest();
        if sealed.len() < MIN_SEALED_LEN {
            return Err(WireError::Truncated {
                field: "sealed payload",
            });
        }
        Ok(Self {
            sealed: sealed.to_vec(),
        })
    }
}

/// What the approving device hands over besides the device list.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum LinkGrant {
    /// The account's Ed25519 seed is included: the new device can sign
    /// device lists itself (Session's model: every device holds the account key).
    ShareAccountSeed,
    /// The account key stays on the existing devices (a hardened
    /// deployment): the new device can use the account but not change its list.
    WithholdAccountSeed,
}

/// The secrets and public results both sides derive from one exchange.
struct Exchange {
    transcript_hash: [u8; 32],
    payload_key: SymmetricKey,
    sas: Sas,
}

impl Exchange {
    /// `th`, the payload key and the SAS of one request/response pair
    /// (spec §8.5.5).
    fn derive(request: &[u8], response: &[u8], shared: &SharedSecret) -> Result<Self, LinkError> {
        let transcript_hash = kdf::sha256(&[label::LINK_TRANSCRIPT, request, response]);
        let mut key = [0u8; 32];
        if !kdf::hkdf_sha256(
            &transcript_hash,
            &[shared.expose()],
            &[label::LINK_PAYLOAD_KEY],
            &mut key,
        ) {
            return Err(LinkError::Internal);
        }
        let payload_key = SymmetricKey::from_mut_array(&mut key);
        let sas = sas::sas(&sas_input(&transcript_hash)).map_err(LinkError::Sas)?;
        Ok(Self {
            transcript_hash,
            payload_key,
            sas,
        })
    }
}

impl fmt::Debug for Exchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Exchange")
            .field("sas", &self.sas)
            .finish_non_exhaustive()
    }
}

/// The SAS input `M = LABEL_LINK_SAS ‖ th` (spec §8.5.5).
pub fn sas_input(transcript_hash: &[u8; 32]) -> Vec<u8> {
    let mut m = Vec::with_capacity(label::LINK_SAS.len() + 32);
    m.extend_from_slice(label::LINK_SAS);
    m.extend_from_slice(transcript_hash);
    m
}

/// The new device's side before the response arrives: holds the ephemeral
/// X-Wing key of its request.
#[derive(Debug)]
pub struct LinkInitiator {
    xwing: XWingKeyPair,
    request: LinkRequest,
}

impl LinkInitiator {
    /// Starts linking `device` to an account: draws an X-Wing key (32-byte
    /// seed) and a 32-byte nonce, in that order, and builds the request.
    /// `description` is cut to 64 bytes on a character boundary.
    ///
    /// The whole exchange, both sides:
    ///
    /// ```
    /// use session_ratchet::account::Account;
    /// use session_ratchet::device::link::{LinkGrant, LinkInitiator, LinkPayload, LinkRequest, LinkResponse, PendingLink};
    /// use session_ratchet::device::list::*;
    /// use session_ratchet::identity::DeviceIdentity;
    /// # use rand_chacha::{ChaCha20Rng, rand_core::SeedableRng};
    /// # let mut rng = ChaCha20Rng::from_seed([0; 32]);
    /// let v = ClientVersion { major: 1, minor: 14, patch: 2 };
    /// // The existing device (E) and its account.
    /// let (account, _) = Account::generate(&mut rng);
    /// let phone = DeviceIdentity::generate(&mut rng);
    /// let mut draft = DeviceListDraft::first(&account);
    /// draft.add_device(DeviceEntry::new(DeviceId::generate(&mut rng), *phone.public(), Platform::Android, "Pixel", v, 1_700_000_000))?;
    /// let held = VerifiedDeviceList::trust_first_with_key(draft.sign(&account)?, &account.public_key())?;
    ///
    /// // The new device (N) shows its request as a QR code.
    /// let laptop = DeviceIdentity::generate(&mut rng);
    /// let (initiator, request) = LinkInitiator::start(&mut rng, &laptop, Platform::Desktop, "Laptop", v);
    ///
    /// // E scans it and answers.
    /// let request = LinkRequest::from_bytes(&request.to_bytes())?;
    /// let (pending, response) = PendingLink::respond(&mut rng, &phone, &account, &request)?;
    ///
    /// // N receives the answer; both screens show the same emoji.
    /// let awaiting = initiator.receive_response(&LinkResponse::from_bytes(&response.to_bytes())?)?;
    /// assert_eq!(awaiting.sas(), pending.sas());
    ///
    /// // The user confirms on E, which signs the next list and seals the payload.
    /// let (payload, new_list) = pending
    ///     .approve(&mut rng, &account, &held, 1_700_000_500, LinkGrant::ShareAccountSeed, &[])
    ///     .map_err(|e| e.error)?;
    /// let UpdateOutcome::Advanced(held) = held.accept_update(&new_list, &[])? else { unreachable!() };
    ///
    /// // N opens it: it is listed, and holds the account key.
    /// let linked = awaiting.open_payload(&LinkPayload::from_bytes(&payload.to_bytes())?)?;
    /// assert!(held.is_active(&linked.device_id));
    /// assert_eq!(linked.account.map(|a| a.public_key()), Some(account.public_key()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn start<R: CryptoRng + ?Sized>(
        rng: &mut R,
        device: &DeviceIdentity,
        platform: Platform,
        description: &str,
        client_version: ClientVersion,
    ) -> (Self, LinkRequest) {
        let xwing = XWingKeyPair::generate(rng);
        let mut nonce = [0u8; LINK_NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        let request = LinkRequest {
            identity: *device.public(),
            xwing: xwing.public_key().clone(),
            nonce,
            platform,
            client_version,
            description: String::from(cut_utf8(description, MAX_DESCRIPTION_LEN)),
        };
        (
            Self {
                xwing,
                request: request.clone(),
            },
            request,
        )
    }

    /// The request this initiator sent.
    pub fn request(&self) -> &LinkRequest {
        &self.request
    }

    /// Takes the existing device's response: decapsulates, derives the
    /// transcript hash, the payload key and the SAS (spec §8.5.5). Does not
    /// consume the initiator, so a forged response does not end the
    /// exchange; drop the initiator once the exchange is over.
    pub fn receive_response(&self, response: &LinkResponse) -> Result<AwaitingApproval, LinkError> {
        let shared = self
            .xwing
            .decapsulate(&response.ciphertext)
            .map_err(LinkError::Kem)?;
        let exchange = Exchange::derive(&self.request.to_bytes(), &response.to_bytes(), &shared)?;
        Ok(AwaitingApproval {
            exchange,
            request: self.request.clone(),
            response: response.clone(),
        })
    }

    /// Abandons the exchange (the user cancelled, or it timed out). Dropping
    /// the initiator does the same: its X-Wing secret is erased.
    pub fn reject(self) {}
}

/// The new device after the response: shows the SAS and waits for the
/// existing device's payload.
#[derive(Debug)]
pub struct AwaitingApproval {
    exchange: Exchange,
    request: LinkRequest,
    response: LinkResponse,
}

impl AwaitingApproval {
    /// The emoji to show; the user compares them with the existing device's.
    pub fn sas(&self) -> &Sas {
        &self.exchange.sas
    }

    /// The transcript hash `th` (public; spec §8.5.5).
    pub fn transcript_hash(&self) -> &[u8; 32] {
        &self.exchange.transcript_hash
    }

    /// The response this state was derived from (the account to be joined).
    pub fn response(&self) -> &LinkResponse {
        &self.response
    }

    /// The payload key, for producing and checking published test vectors.
    #[cfg(feature = "hazmat-test-vectors")]
    pub fn hazmat_payload_key(&self) -> &SymmetricKey {
        &self.exchange.payload_key
    }

    /// Seals `plaintext` as a payload under this exchange's key, for
    /// producing negative test vectors (payloads a faulty approver could send).
    #[cfg(feature = "hazmat-test-vectors")]
    pub fn hazmat_seal(&self, plaintext: &[u8]) -> LinkPayload {
        let mut sealed = plaintext.to_vec();
        // Sealing fails only beyond ChaCha20's 256 GiB message limit.
        let _ = aead::seal_single_use(self.exchange.payload_key.expose(), &PAYLOAD_AD, &mut sealed);
        LinkPayload { sealed }
    }

    /// Opens and checks the payload (spec §8.5.7): it authenticates under
    /// this exchange's key; its content decodes; the list verifies under the
    /// response's account key; it lists the payload's device id with this
    /// device's identity and the requested fields; it lists the approving
    /// device; an included account seed gives the account key. Takes
    /// `&self`: on error nothing changes and another payload may be tried.
    pub fn open_payload(&self, payload: &LinkPayload) -> Result<LinkedDevice, LinkError> {
        let mut buf = Zeroizing::new(payload.sealed.clone());
        if !aead::open_single_use(self.exchange.payload_key.expose(), &PAYLOAD_AD, &mut buf) {
            return Err(LinkError::PayloadAuthenticationFailed);
        }
        let content = PayloadContent::read(&buf).map_err(LinkError::MalformedPayload)?;
        let list = VerifiedDeviceList::trust_first_with_key(content.list, &self.response.account)?;
        let DeviceStatus::Active(entry) = list.status(&content.device_id) else {
            return Err(LinkError::NotListed);
        };
        let request = &self.request;
        if entry.identity() != &request.identity {
            return Err(LinkError::IdentityMismatch);
        }
        if entry.platform() != request.platform
            || entry.client_version() != request.client_version
            || entry.description() != request.description
        {
            return Err(LinkError::EntryMismatch);
        }
        if list.device_with_identity(&self.response.approver).is_none() {
            return Err(LinkError::ApproverNotListed);
        }
        let account = match content.seed {
            None => None,
            Some(seed) => {
                let account = Account::from_seed(&seed);
                if account.public_key() != self.response.account {
                    return Err(LinkError::WrongAccountSeed);
                }
                Some(account)
            }
        };
        Ok(LinkedDevice {
            device_id: content.device_id,
            list,
            account,
            contacts: content.contacts,
        })
    }

    /// The user rejected the SAS (or cancelled): the exchange ends and its
    /// keys are erased. The new device joined nothing.
    pub fn reject(self) {}
}

/// What the new device holds after a successful link.
#[derive(Debug)]
#[non_exhaustive]
pub struct LinkedDevice {
    /// This device's id in the account's list.
    pub device_id: DeviceId,
    /// The account's device list, verified, listing this device: hold it
    /// as the account's first list (spec §8.2.4).
    pub list: VerifiedDeviceList,
    /// The account key, if the approving device shared it.
    pub account: Option<Account>,
    /// Account keys of the contacts the existing device talks to, ascending:
    /// this device holds no sessions and starts fresh ones with them.
    pub contacts: Vec<Ed25519PublicKey>,
}

/// The decoded plaintext of a payload.
struct PayloadContent {
    device_id: DeviceId,
    seed: Option<Ed25519Seed>,
    contacts: Vec<Ed25519PublicKey>,
    list: SignedDeviceList,
}

impl PayloadContent {
    /// Decodes the payload plaintext (spec §8.5.6), field by field (§6.5).
    fn read(plain: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::content(plain);
        let device_id = DeviceId::from_bytes(r.array::<32>("device id")?);
        let flags = r.flags(FLAG_ACCOUNT_SEED, "payload flags")?;
        let seed = if flags & FLAG_ACCOUNT_SEED != 0 {
            let mut bytes = r.array::<32>("account seed")?;
            Some(Ed25519Seed::from_mut_array(&mut bytes))
        } else {
            None
        };
        let count = Reader::check_count(
            usize::from(r.u16("contact count")?),
            MAX_LINK_CONTACTS,
            "contact count",
        )?;
        // Allocate only for contacts the input can actually hold.
        if r.remaining() < count.saturating_mul(32) {
            return Err(WireError::Truncated { field: "contact" });
        }
        let mut contacts: Vec<Ed25519PublicKey> = Vec::with_capacity(count);
        for _ in 0..count {
            let bytes = r.array::<32>("contact")?;
            let key = Ed25519PublicKey::from_bytes(&bytes)
                .map_err(|_| WireError::InvalidEd25519Key { field: "contact" })?;
            if contacts.last().is_some_and(|p| p.to_bytes() >= bytes) {
                return Err(WireError::NotCanonical { field: "contact" });
            }
            contacts.push(key);
        }
        let list = SignedDeviceList::from_bytes(r.rest())?;
        Ok(Self {
            device_id,
            seed,
            contacts,
            list,
        })
    }

    /// The payload plaintext, in a buffer with room for the tag so sealing
    /// never reallocates (which would leave a copy of the seed behind).
    fn write(&self) -> Zeroizing<Vec<u8>> {
        let list = self.list.to_bytes();
        let seed_len = if self.seed.is_some() { 32 } else { 0 };
        let len = PAYLOAD_FIXED_LEN + seed_len + 32 * self.contacts.len() + list.len();
        let mut out = Zeroizing::new(Vec::with_capacity(len + TAG_LEN));
        out.extend_from_slice(self.device_id.as_bytes());
        match &self.seed {
            Some(seed) => {
                out.push(FLAG_ACCOUNT_SEED);
                out.extend_from_slice(seed.expose());
            }
            None => out.push(0),
        }
        // ≤ MAX_LINK_CONTACTS by construction.
        let count = u16::try_from(self.contacts.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&count.to_be_bytes());
        for c in &self.contacts {
            out.extend_from_slice(&c.to_bytes());
        }
        out.extend_from_slice(&list);
        out
    }

    /// Encrypts the content under the exchange's single-use payload key.
    fn seal(&self, key: &SymmetricKey) -> Result<LinkPayload, LinkError> {
        let mut buf = self.write();
        if !aead::seal_single_use(key.expose(), &PAYLOAD_AD, &mut buf) {
            return Err(LinkError::Internal);
        }
        // The buffer now holds only ciphertext; move it out without a copy.
        let sealed = core::mem::take(&mut *buf);
        Ok(LinkPayload { sealed })
    }
}

/// The existing device's side after answering: shows the SAS and waits for
/// the user to approve or reject.
#[derive(Debug)]
pub struct PendingLink(Box<Pending>);

#[derive(Debug)]
struct Pending {
    exchange: Exchange,
    request: LinkRequest,
    account: Ed25519PublicKey,
    approver: DevicePublicIdentity,
}

/// Why [`PendingLink::approve`] failed, with the pending link handed back.
/// A failed check (spec §8.5.6) draws and signs nothing, so the caller can
/// fix the cause (for example remove a device from a full list) and approve
/// again; nothing that was signed is ever returned on failure.
#[derive(Debug)]
pub struct ApproveError {
    /// What went wrong.
    pub error: LinkError,
    /// The unchanged pending link.
    pub pending: PendingLink,
}

impl fmt::Display for ApproveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot approve the link: {}", self.error)
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ApproveError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl PendingLink {
    /// Answers `request` as `me`, a device of `account` (spec §8.5.4):
    /// draws the X-Wing encapsulation randomness (64 bytes), then a 32-byte
    /// nonce, and derives the transcript hash, the payload key and the SAS.
    /// Reads the account and changes nothing.
    pub fn respond<R: CryptoRng + ?Sized>(
        rng: &mut R,
        me: &DeviceIdentity,
        account: &Account,
        request: &LinkRequest,
    ) -> Result<(Self, LinkResponse), LinkError> {
        let (ciphertext, shared) =
            xwing::encapsulate(rng, &request.xwing).map_err(LinkError::Kem)?;
        let mut nonce = [0u8; LINK_NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        let response = LinkResponse {
            account: account.public_key(),
            approver: *me.public(),
            ciphertext,
            nonce,
        };
        let exchange = Exchange::derive(&request.to_bytes(), &response.to_bytes(), &shared)?;
        let pending = Pending {
            exchange,
            request: request.clone(),
            account: response.account,
            approver: response.approver,
        };
        Ok((Self(Box::new(pending)), response))
    }

    /// The emoji to show; the user compares them with the new device's.
    pub fn sas(&self) -> &Sas {
        &self.0.exchange.sas
    }

    /// The transcript hash `th` (public; spec §8.5.5).
    pub fn transcript_hash(&self) -> &[u8; 32] {
        &self.0.exchange.transcript_hash
    }

    /// The request being answered: show its description and platform when
    /// asking the user to approve.
    pub fn request(&self) -> &LinkRequest {
        &self.0.request
    }

    /// The payload key, for producing and checking published test vectors.
    #[cfg(feature = "hazmat-test-vectors")]
    pub fn hazmat_payload_key(&self) -> &SymmetricKey {
        &self.0.exchange.payload_key
    }

    /// The user confirmed that both screens show the same emoji: adds the
    /// new device to the next version of `held` and seals the payload
    /// (spec §8.5.6). Checks first, drawing nothing on failure: `account` is
    /// the responding account and `held` its list; this device is listed in
    /// `held` and the new one is not; the list has room; `contacts` (sorted
    /// and de-duplicated here) are at most [`MAX_LINK_CONTACTS`]. Then draws
    /// the new device's id (32 bytes) and lists it with the requested fields,
    /// added at `added_at`.
    ///
    /// Returns the payload for the new device and the new list. The caller
    /// publishes the list, moves its own held list forward with
    /// [`VerifiedDeviceList::accept_update`], and sends the payload.
    pub fn approve<R: CryptoRng + ?Sized>(
        self,
        rng: &mut R,
        account: &Account,
        held: &VerifiedDeviceList,
        added_at: u64,
        grant: LinkGrant,
        contacts: &[Ed25519PublicKey],
    ) -> Result<(LinkPayload, SignedDeviceList), ApproveError> {
        let (mut draft, contacts) = match self.check_approval(account, held, contacts) {
            Ok(ok) => ok,
            Err(error) => {
                return Err(ApproveError {
                    error,
                    pending: self,
                });
            }
        };
        let p = &self.0;
        let device_id = DeviceId::generate(rng);
        let entry = DeviceEntry::new(
            device_id,
            p.request.identity,
            p.request.platform,
            &p.request.description,
            p.request.client_version,
            added_at,
        );
        // Fails only if the 32 random bytes repeat an id of the list.
        let list = match draft.add_device(entry).and_then(|()| draft.sign(account)) {
            Ok(list) => list,
            Err(e) => {
                return Err(ApproveError {
                    error: LinkError::List(e),
                    pending: self,
                });
            }
        };
        let content = PayloadContent {
            device_id,
            seed: match grant {
                LinkGrant::ShareAccountSeed => Some(account.identity().seed()),
                LinkGrant::WithholdAccountSeed => None,
            },
            contacts,
            list,
        };
        match content.seal(&p.exchange.payload_key) {
            Ok(payload) => Ok((payload, content.list)),
            Err(error) => Err(ApproveError {
                error,
                pending: self,
            }),
        }
    }

    /// Every precondition of [`PendingLink::approve`]: the next draft of
    /// `held` and the sorted distinct contacts.
    fn check_approval(
        &self,
        account: &Account,
        held: &VerifiedDeviceList,
        contacts: &[Ed25519PublicKey],
    ) -> Result<(DeviceListDraft, Vec<Ed25519PublicKey>), LinkError> {
        let p = &self.0;
        if account.public_key() != p.account || *held.list().account() != p.account {
            return Err(LinkError::WrongAccount);
        }
        if held.device_with_identity(&p.approver).is_none() {
            return Err(LinkError::ApproverNotListed);
        }
        if held.device_with_identity(&p.request.identity).is_some() {
            return Err(LinkError::AlreadyListed);
        }
        if held.list().devices().len() >= MAX_DEVICES {
            return Err(LinkError::List(DeviceListError::TooManyDevices));
        }
        let draft = held.next_draft()?;
        let mut sorted: Vec<Ed25519PublicKey> = contacts.to_vec();
        sorted.sort_unstable_by_key(Ed25519PublicKey::to_bytes);
        sorted.dedup();
        if sorted.len() > MAX_LINK_CONTACTS {
            return Err(LinkError::TooManyContacts {
                count: sorted.len(),
            });
        }
        Ok((draft, sorted))
    }

    /// The user saw different emoji, or declined: the exchange ends, its keys
    /// are erased, and nothing was signed or drawn. The account and its
    /// device list are untouched (this state never had write access to them).
    pub fn reject(self) {}
}
