//! The upgrade path from Session v2 direct messages to the hybrid double
//! ratchet (spec §9.11).
//!
//! This module owns how a conversation that runs on v2 direct messages
//! (§9.8) moves to a ratchet [`Session`] (chapter 7) without any new key
//! publication: the initiator draws 32 bytes of **initial material** `u`,
//! derives a ratchet seed from it, and sends `u` together with its first
//! ratchet message inside an ordinary PFS + PQ v2 direct message to the
//! peer's published account keys (an **upgrade offer**). Until the peer's
//! first ratchet reply, every message travels as an offer; afterwards both
//! sides exchange plain ratchet messages.
//!
//! ```text
//!  Alice (initiator)                                       Bob (responder)
//!  ─────────────────                                       ───────────────
//!  u ← RNG; DM draft to (M, X): E₁, ct₁
//!  TH = SHA-256(label ‖ ids ‖ M ‖ X ‖ E₁ ‖ H(ct₁))
//!  RK, CK_A, HK_A, HK_B, id = HKDF(u, label ‖ TH)
//!  ── v2 DM { 00 "SRUP" 01 ‖ u ‖ X ‖ E₁ ‖ H(ct₁) ‖ ratchet msg } ──▶
//!     (every message until the first reply)          receive(): v2 receive,
//!                                                     same derivation ──▶ offer
//!                                                     accept() / decrypt_offer()
//!  ◀──────────────────────────── ratchet message (01 04 …) ──────
//!  decrypt(): offer dropped, plain ratchet from now on
//! ```
//!
//! [`send_path`] tells a client which of v2, an upgrade offer or the ratchet
//! to use for the next message (the fallback rule of §9.11.6).
#![deny(clippy::integer_division_remainder_used)]

use super::account_keys::{KeyPair, PublicKeys};
use super::dm::{self, DmError, ReceivedDm};
use super::identity::{Identity, SessionId};
use super::xeddsa::positive_ed25519_from_x25519;
use crate::dh::X25519PublicKey;
use crate::handshake::{Role, SessionSeed};
use crate::identity::{DevicePublicIdentity, Ed25519PublicKey};
use crate::kdf::{self, label};
use crate::kem::{MLKEM_CIPHERTEXT_LEN, MlKemPublicKey};
use crate::ratchet::{RatchetError, Session, StorageError, StoredSession};
use crate::secret::{ChainKey, HeaderKey, RootKey, UpgradeMaterial};
use crate::wire::{MAX_STORED_LEN, Reader, Writer, message_type};
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;
use rand_core::CryptoRng;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// First bytes of an upgrade offer's content: `00` (field number 0, never a
/// valid `Content` protobuf, so v2-only clients drop it) then `"SRUP"`.
pub const OFFER_MAGIC: [u8; 5] = [0x00, b'S', b'R', b'U', b'P'];
/// Offer format version.
pub const OFFER_VERSION: u8 = 0x01;
/// Offer content before the ratchet message: magic (5), version (1),
/// material `u` (32), anchor `X₁` (32), `E₁` (32), `SHA-256(ct₁)` (32).
pub const OFFER_HEADER_LEN: usize = 5 + 1 + 4 * 32;
/// Offers sent without a reply after which [`send_path`] returns to v2.
pub const MAX_UNANSWERED_OFFERS: u32 = 16;
/// Object type of a stored upgrade session (storage only, never sent).
pub const STORED_UPGRADE_TYPE: u8 = message_type::STORED_UPGRADE_SESSION;

/// Length of the upgrade key material: root key, initiator chain key, both
/// header keys, upgrade id.
const OKM_LEN: usize = 5 * 32;
/// Bound on the v2 inner dict around the content (§9.8 step 6): `d`, `"S"`,
/// `"c"` with a length of at most 5 digits, `"~"`, `e`.
const INNER_DICT_OVERHEAD: usize = 2 + 38 + 9 + 70 + 1;
/// Bound on a first-key PQ section (flags, ack, key chunk of 74 symbols).
const BOOTSTRAP_SECTION: usize = 1 + 4 + 6 + 74 * 16;
const FLAG_OFFER: u8 = 0x01;

/// Why an upgrade operation failed. No error changes any session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UpgradeError {
    /// The v2 direct message carrying the offer failed (see [`DmError`]).
    Dm(DmError),
    /// The ratchet failed (see [`RatchetError`]).
    Ratchet(RatchetError),
    /// The content starts like an offer but is too short or malformed.
    MalformedOffer,
    /// An offer of a newer format version.
    UnsupportedOfferVersion {
        /// The version byte.
        version: u8,
    },
    /// The offer arrived by the non-PFS fallback; offers must use PFS + PQ.
    OfferWithoutPfs,
    /// The offer names an account key (`X₁`) this account no longer holds
    /// (dropped after the 16-day retention) or never published.
    UnknownAnchorKey,
    /// The offer travels in its anchor message (same `E₁`) but the ML-KEM
    /// ciphertext differs from the one it commits to.
    AnchorMismatch,
    /// An account's Ed25519 key is not a strict, prime-order key (or a Session
    /// ID has no Ed25519 counterpart).
    InvalidAccountKey,
    /// Sender and recipient are the same account.
    SelfUpgrade,
    /// A repeated offer was given to a session of another upgrade or peer.
    OfferMismatch,
    /// The session is still offering: send with [`UpgradeSession::encrypt_offer`].
    OfferPending,
    /// The peer already replied: send with [`UpgradeSession::encrypt`].
    NotOffering,
    /// The identity passed is not this session's own account.
    WrongIdentity,
    /// The plaintext does not fit in one offer (76,800-byte v2 limit).
    PlaintextTooLong,
    /// A stored upgrade session could not be loaded.
    Storage(StorageError),
}

impl fmt::Display for UpgradeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dm(e) => write!(f, "upgrade offer transport: {e}"),
            Self::Ratchet(e) => write!(f, "upgraded ratchet session: {e}"),
            Self::MalformedOffer => f.write_str("malformed upgrade offer; drop the message"),
            Self::UnsupportedOfferVersion { version } => write!(
                f,
                "upgrade offer version {version} is unknown; the sender runs a newer client"
            ),
            Self::OfferWithoutPfs => f.write_str(
                "upgrade offer sent without account keys (non-PFS); drop it, the sender must refetch the keys",
            ),
            Self::UnknownAnchorKey => f.write_str(
                "upgrade offer names an account key no longer held; drop it, the sender must start a new upgrade",
            ),
            Self::AnchorMismatch => {
                f.write_str("upgrade offer does not match the message carrying it; drop it")
            }
            Self::InvalidAccountKey => {
                f.write_str("an account's Ed25519 key is invalid; no upgrade with this account")
            }
            Self::SelfUpgrade => f.write_str("an account cannot upgrade a conversation with itself"),
            Self::OfferMismatch => f.write_str(
                "offer belongs to another upgrade or peer; look the session up by sender and upgrade id",
            ),
            Self::OfferPending => {
                f.write_str("the peer has not replied yet; send with encrypt_offer")
            }
            Self::NotOffering => f.write_str("the peer has replied; send with encrypt"),
            Self::WrongIdentity => f.write_str("identity is not this session's own account"),
            Self::PlaintextTooLong => {
                f.write_str("plaintext does not fit in one upgrade offer; split it")
            }
            Self::Storage(e) => write!(f, "stored upgrade session cannot be loaded: {e}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for UpgradeError {}

impl From<DmError> for UpgradeError {
    fn from(e: DmError) -> Self {
        Self::Dm(e)
    }
}

impl From<RatchetError> for UpgradeError {
    fn from(e: RatchetError) -> Self {
        match e {
            RatchetError::Storage(s) => Self::Storage(s),
            other => Self::Ratchet(other),
        }
    }
}

/// The first upgrade message, which the transcript binds: the recipient's
/// account X25519 key `X₁` it was encrypted to, its ephemeral `E₁` and the
/// hash of its ML-KEM ciphertext.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Anchor {
    x25519: [u8; 32],
    ephemeral: [u8; 32],
    ct_hash: [u8; 32],
}

/// The initiator's offer state, kept until the first reply.
struct PendingOffer {
    material: UpgradeMaterial,
    anchor: Anchor,
    offers_sent: u32,
}

/// A ratchet session that started from a Session v2 upgrade offer.
pub struct UpgradeSession {
    session: Session,
    peer: SessionId,
    upgrade_id: [u8; 32],
    offer: Option<PendingOffer>,
}

impl fmt::Debug for UpgradeSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpgradeSession")
            .field("peer", &self.peer)
            .field("role", &self.session.role())
            .field("offering", &self.offer.is_some())
            .finish_non_exhaustive()
    }
}

/// The persistent form of an [`UpgradeSession`]; contains every secret.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct StoredUpgradeSession(Vec<u8>);

/// Constant-time equality: the bytes are secret (only the lengths, which
/// are public, may end the comparison early).
impl PartialEq for StoredUpgradeSession {
    fn eq(&self, other: &Self) -> bool {
        bool::from(subtle::ConstantTimeEq::ct_eq(
            self.0.as_slice(),
            other.0.as_slice(),
        ))
    }
}

impl Eq for StoredUpgradeSession {}

impl fmt::Debug for StoredUpgradeSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "StoredUpgradeSession({} bytes, <redacted>)",
            self.0.len()
        )
    }
}

impl StoredUpgradeSession {
    /// The encoding (spec §9.11.7). Treat it as a secret.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Wraps an encoding read back from storage (checked when loaded).
    pub fn from_bytes(bytes: &[u8]) -> Self {
        Self(bytes.to_vec())
    }
}

/// A decrypted, validated upgrade offer (a v2 DM whose content is an offer).
///
/// Look up a session with [`ReceivedOffer::sender`] and
/// [`ReceivedOffer::upgrade_id`]: if one exists, pass the offer to
/// [`UpgradeSession::decrypt_offer`] (a repeat), otherwise call
/// [`ReceivedOffer::accept`].
pub struct ReceivedOffer {
    sender: SessionId,
    sender_ed25519: [u8; 32],
    upgrade_id: [u8; 32],
    seed: SessionSeed,
    message: Vec<u8>,
}

impl fmt::Debug for ReceivedOffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReceivedOffer")
            .field("sender", &self.sender)
            .finish_non_exhaustive()
    }
}

/// What [`receive`] found in a v2 direct message.
#[derive(Debug)]
pub enum Incoming {
    /// An ordinary v2 direct message (content for the application).
    Dm(ReceivedDm),
    /// An upgrade offer.
    Offer(Box<ReceivedOffer>),
}

/// What the peer is known to support (learned by the client, §9.11.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PeerCapability {
    /// Nothing known: the peer may run a v2-only client.
    Unknown,
    /// The peer advertised the upgrade, or sent an offer or ratchet message.
    Upgraded,
    /// The peer is known not to support it (or withdrew its advertisement).
    V2Only,
}

/// How to send the next message to a peer (§9.11.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendPath {
    /// A plain v2 direct message (`dm::encrypt_pfs`, or the fallback).
    V2,
    /// Start an upgrade: [`UpgradeSession::initiate`].
    StartUpgrade,
    /// Another offer: [`UpgradeSession::encrypt_offer`].
    Offer,
    /// A ratchet message: [`UpgradeSession::encrypt`].
    Ratchet,
}

/// The fallback rule (spec §9.11.6): which path the next message to a peer
/// takes, given what the peer supports and the upgrade session with it.
///
/// ```
/// use session_ratchet::session_v2::upgrade::{send_path, PeerCapability, SendPath};
/// assert_eq!(send_path(PeerCapability::Unknown, None), SendPath::V2);
/// assert_eq!(send_path(PeerCapability::Upgraded, None), SendPath::StartUpgrade);
/// ```
pub fn send_path(capability: PeerCapability, session: Option<&UpgradeSession>) -> SendPath {
    match session {
        Some(s) if !s.is_offering() => SendPath::Ratchet,
        Some(s) => {
            if capability != PeerCapability::V2Only && s.offers_sent() < MAX_UNANSWERED_OFFERS {
                SendPath::Offer
            } else {
                SendPath::V2
            }
        }
        None if capability == PeerCapability::Upgraded => SendPath::StartUpgrade,
        None => SendPath::V2,
    }
}

/// Whether v2 content is an upgrade offer (starts with [`OFFER_MAGIC`]).
pub fn is_offer_content(content: &[u8]) -> bool {
    content.starts_with(&OFFER_MAGIC)
}

/// An account's identity as the ratchet binds it: its Ed25519 key and its
/// Session-ID X25519 key.
fn account_identity(
    ed25519: &[u8; 32],
    session_id: &SessionId,
) -> Result<DevicePublicIdentity, UpgradeError> {
    let key = Ed25519PublicKey::from_bytes(ed25519).map_err(|_| UpgradeError::InvalidAccountKey)?;
    Ok(DevicePublicIdentity::new(key, session_id.x25519()))
}

/// The responder's identity: the initiator knows only its Session ID, so the
/// Ed25519 key is the positive alternative (§9.6) of the Session-ID key.
fn responder_identity(session_id: &SessionId) -> Result<DevicePublicIdentity, UpgradeError> {
    let ed = positive_ed25519_from_x25519(&session_id.x25519())
        .ok_or(UpgradeError::InvalidAccountKey)?;
    account_identity(&ed, session_id)
}

/// `TH` (spec §9.11.3).
fn transcript(
    initiator: &SessionId,
    initiator_identity: &DevicePublicIdentity,
    responder: &SessionId,
    responder_identity: &DevicePublicIdentity,
    anchor_mlkem: &MlKemPublicKey,
    anchor: &Anchor,
) -> [u8; 32] {
    kdf::sha256(&[
        label::UPGRADE_TRANSCRIPT,
        initiator.as_bytes(),
        &initiator_identity.signing_key().to_bytes(),
        responder.as_bytes(),
        &responder_identity.signing_key().to_bytes(),
        anchor_mlkem.as_bytes(),
        &anchor.x25519,
        &anchor.ephemeral,
        &anchor.ct_hash,
    ])
}

/// `RK ‖ CK_A ‖ HK_A ‖ HK_B ‖ upgrade_id = HKDF(0^32, u, LABEL_UPGRADE_KEYS ‖ TH, 160)`.
fn derive(
    material: &UpgradeMaterial,
    th: [u8; 32],
    role: Role,
    local: DevicePublicIdentity,
    remote: DevicePublicIdentity,
    anchor: &Anchor,
) -> (SessionSeed, [u8; 32]) {
    let mut okm = Zeroizing::new([0u8; OKM_LEN]);
    // 160 ≤ 255·32: cannot fail.
    let _ = kdf::hkdf_sha256(
        &[0u8; 32],
        &[material.expose()],
        &[label::UPGRADE_KEYS, &th],
        okm.as_mut_slice(),
    );
    let mut k = Zeroizing::new([[0u8; 32]; 5]);
    for (dst, src) in k.iter_mut().zip(okm.chunks_exact(32)) {
        dst.copy_from_slice(src);
    }
    let [rk, ck, hki, hkr, id] = &mut *k;
    let seed = SessionSeed::from_parts(
        role,
        RootKey::from_mut_array(rk),
        ChainKey::from_mut_array(ck),
        HeaderKey::from_mut_array(hki),
        HeaderKey::from_mut_array(hkr),
        th,
        local,
        remote,
        X25519PublicKey::from_bytes(anchor.ephemeral),
    );
    (seed, *id)
}

/// The offer content (spec §9.11.2).
fn encode_offer(material: &UpgradeMaterial, anchor: &Anchor, message: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(OFFER_HEADER_LEN + message.len()));
    out.extend_from_slice(&OFFER_MAGIC);
    out.push(OFFER_VERSION);
    out.extend_from_slice(material.expose());
    out.extend_from_slice(&anchor.x25519);
    out.extend_from_slice(&anchor.ephemeral);
    out.extend_from_slice(&anchor.ct_hash);
    out.extend_from_slice(message);
    out
}

fn take32(bytes: &[u8], at: usize) -> Result<[u8; 32], UpgradeError> {
    bytes
        .get(at..at.saturating_add(32))
        .and_then(|s| <[u8; 32]>::try_from(s).ok())
        .ok_or(UpgradeError::MalformedOffer)
}

/// Parses offer content: `(u, anchor, ratchet message)`.
fn parse_offer(content: &[u8]) -> Result<(UpgradeMaterial, Anchor, &[u8]), UpgradeError> {
    if !is_offer_content(content) {
        return Err(UpgradeError::MalformedOffer);
    }
    match content.get(OFFER_MAGIC.len()) {
        Some(&OFFER_VERSION) => {}
        Some(&version) => return Err(UpgradeError::UnsupportedOfferVersion { version }),
        None => return Err(UpgradeError::MalformedOffer),
    }
    let mut u = take32(content, 6)?;
    let anchor = Anchor {
        x25519: take32(content, 38)?,
        ephemeral: take32(content, 70)?,
        ct_hash: take32(content, 102)?,
    };
    let message = content
        .get(OFFER_HEADER_LEN..)
        .filter(|m| m.len() >= crate::ratchet::MIN_MESSAGE_LEN)
        .ok_or(UpgradeError::MalformedOffer)?;
    Ok((UpgradeMaterial::from_mut_array(&mut u), anchor, message))
}

/// Refuses plaintexts whose offer could exceed the v2 size limit, before any
/// state changes.
fn check_offer_len(plaintext_len: usize, bucket: u16) -> Result<(), UpgradeError> {
    let worst = plaintext_len
        .saturating_add(crate::ratchet::MIN_MESSAGE_LEN)
        .saturating_add(BOOTSTRAP_SECTION)
        .saturating_add(2 * usize::from(bucket))
        .saturating_add(OFFER_HEADER_LEN)
        .saturating_add(INNER_DICT_OVERHEAD)
        .saturating_add(dm::OVERHEAD)
        .saturating_add(dm::PADDING_MULTIPLE);
    if worst > dm::MAX_MESSAGE_LEN {
        return Err(UpgradeError::PlaintextTooLong);
    }
    Ok(())
}

/// Reads `E` and `ct` of a v2 direct message (already received successfully).
fn dm_kem_values(message: &[u8]) -> Option<(&[u8], &[u8])> {
    let e = message.get(4..36)?;
    let ct = message.get(36..36 + MLKEM_CIPHERTEXT_LEN)?;
    Some((e, ct))
}

/// Receives a v2 direct message and recognises upgrade offers (spec §9.11.4).
///
/// Runs the ordinary v2 receive (§9.8) with the current and retained account
/// keys; content that is not an offer comes back as [`Incoming::Dm`]. An
/// offer is validated and its ratchet seed derived; nothing is stored.
///
/// ```
/// use session_ratchet::secret::AccountKeySeed;
/// use session_ratchet::session_v2::{account_keys::account_key_pair, identity::Identity};
/// use session_ratchet::session_v2::upgrade::{self, Incoming, UpgradeSession};
/// # use rand_chacha::{ChaCha20Rng, rand_core::SeedableRng};
/// let mut rng = ChaCha20Rng::from_seed([7; 32]);
/// let alice = Identity::from_seed_bytes(&[1u8; 16]).unwrap();
/// let bob = Identity::from_seed_bytes(&[2u8; 16]).unwrap();
/// let bob_keys = account_key_pair(&AccountKeySeed::from_bytes([3; 32]));
///
/// // Alice upgrades the conversation; her first message travels as a v2 DM.
/// let (mut a, dm) = UpgradeSession::initiate(
///     &mut rng, &alice, &bob.session_id(), &bob_keys.public_keys(), b"hi Bob", b"")?;
///
/// // Bob receives it like any v2 DM and accepts the offer.
/// let Incoming::Offer(offer) = upgrade::receive(&bob, &[&bob_keys], &dm)? else { unreachable!() };
/// let (mut b, text) = offer.accept(b"")?;
/// assert_eq!(text, b"hi Bob");
///
/// // His reply is a ratchet message; once Alice reads it, she stops offering.
/// let reply = b.encrypt(&mut rng, b"hi Alice", b"")?;
/// assert_eq!(a.decrypt(&reply, b"")?, b"hi Alice");
/// assert!(!a.is_offering());
/// # Ok::<(), upgrade::UpgradeError>(())
/// ```
pub fn receive(
    recipient: &Identity,
    account_keys: &[&KeyPair],
    message: &[u8],
) -> Result<Incoming, UpgradeError> {
    let dm = dm::receive(recipient, account_keys, message)?;
    if !is_offer_content(&dm.content) {
        return Ok(Incoming::Dm(dm));
    }
    let ReceivedDm {
        sender,
        sender_ed25519,
        mut content,
        pfs,
        ..
    } = dm;
    let result = offer_from_content(
        recipient,
        account_keys,
        message,
        sender,
        sender_ed25519,
        &content,
        pfs,
    );
    content.zeroize();
    result.map(|o| Incoming::Offer(Box::new(o)))
}

fn offer_from_content(
    recipient: &Identity,
    account_keys: &[&KeyPair],
    message: &[u8],
    sender: SessionId,
    sender_ed25519: [u8; 32],
    content: &[u8],
    pfs: bool,
) -> Result<ReceivedOffer, UpgradeError> {
    let (material, anchor, ratchet_message) = parse_offer(content)?;
    if !pfs {
        return Err(UpgradeError::OfferWithoutPfs);
    }
    let own = recipient.session_id();
    if sender == own {
        return Err(UpgradeError::SelfUpgrade);
    }
    let anchor_keys = account_keys
        .iter()
        .find(|k| k.x25519_public().as_bytes() == &anchor.x25519)
        .ok_or(UpgradeError::UnknownAnchorKey)?;
    let (e, ct) = dm_kem_values(message).ok_or(UpgradeError::MalformedOffer)?;
    if e == anchor.ephemeral && kdf::sha256(&[ct]) != anchor.ct_hash {
        return Err(UpgradeError::AnchorMismatch);
    }
    let local = responder_identity(&own)?;
    let remote = account_identity(&sender_ed25519, &sender)?;
    let th = transcript(
        &sender,
        &remote,
        &own,
        &local,
        anchor_keys.mlkem_public(),
        &anchor,
    );
    let (seed, upgrade_id) = derive(&material, th, Role::Responder, local, remote, &anchor);
    Ok(ReceivedOffer {
        sender,
        sender_ed25519,
        upgrade_id,
        seed,
        message: ratchet_message.to_vec(),
    })
}

impl ReceivedOffer {
    /// The offering account.
    pub fn sender(&self) -> &SessionId {
        &self.sender
    }

    /// The sender's Ed25519 key (the `"S"` of the v2 message).
    pub fn sender_ed25519(&self) -> &[u8; 32] {
        &self.sender_ed25519
    }

    /// The upgrade id: equal for every offer of one upgrade (public).
    pub fn upgrade_id(&self) -> &[u8; 32] {
        &self.upgrade_id
    }

    /// The transcript hash `TH` the session binds.
    pub fn transcript_hash(&self) -> &[u8; 32] {
        self.seed.transcript_hash()
    }

    /// The derived seed (test vectors only).
    #[cfg(feature = "hazmat-test-vectors")]
    pub fn hazmat_seed(&self) -> &SessionSeed {
        &self.seed
    }

    /// The ratchet message the offer carries.
    pub fn ratchet_message(&self) -> &[u8] {
        &self.message
    }

    /// Creates the responder's session and decrypts the offer's message
    /// (spec §9.11.4). Call it only when no session with this sender and
    /// upgrade id exists. Nothing is kept if the message does not decrypt.
    pub fn accept(
        &self,
        associated_data: &[u8],
    ) -> Result<(UpgradeSession, Vec<u8>), UpgradeError> {
        let (session, plaintext) =
            Session::respond_from_seed(&self.seed, &self.message, associated_data)?;
        Ok((
            UpgradeSession {
                session,
                peer: self.sender,
                upgrade_id: self.upgrade_id,
                offer: None,
            },
            plaintext,
        ))
    }
}

impl UpgradeSession {
    /// Starts an upgrade as initiator (spec §9.11.3): returns the session
    /// and the first offer, a v2 direct message to `peer`'s account keys
    /// `peer_keys` (a verified, fresh or stale record, §9.7) carrying the
    /// ratchet's initial material and `plaintext` as its first message.
    ///
    /// Draws `u` (32), then the v2 message's `e` (32) and `m` (32), then the
    /// ratchet's first key (32) and its first `encrypt`'s draws.
    pub fn initiate<R: CryptoRng + ?Sized>(
        rng: &mut R,
        identity: &Identity,
        peer: &SessionId,
        peer_keys: &PublicKeys,
        plaintext: &[u8],
        associated_data: &[u8],
    ) -> Result<(Self, Vec<u8>), UpgradeError> {
        let own = identity.session_id();
        if peer == &own {
            return Err(UpgradeError::SelfUpgrade);
        }
        let remote = responder_identity(peer)?;
        let local = account_identity(identity.ed25519_public(), &own)?;
        check_offer_len(
            plaintext.len(),
            crate::ratchet::PaddingPolicy::DEFAULT.bucket(),
        )?;
        let material = UpgradeMaterial::random(rng);
        let draft = dm::draft_pfs(rng, peer, peer_keys)?;
        let anchor = Anchor {
            x25519: *peer_keys.x25519.as_bytes(),
            ephemeral: *draft.ephemeral().as_bytes(),
            ct_hash: kdf::sha256(&[draft.ciphertext().as_bytes()]),
        };
        let th = transcript(&own, &local, peer, &remote, &peer_keys.mlkem, &anchor);
        let (seed, upgrade_id) = derive(&material, th, Role::Initiator, local, remote, &anchor);
        let mut session = Session::initiate_from_seed(rng, &seed, None);
        let message = session.encrypt(rng, plaintext, associated_data)?;
        let content = encode_offer(&material, &anchor, &message);
        let dm = draft.seal(identity, peer, &content, None)?;
        Ok((
            Self {
                session,
                peer: *peer,
                upgrade_id,
                offer: Some(PendingOffer {
                    material,
                    anchor,
                    offers_sent: 1,
                }),
            },
            dm,
        ))
    }

    /// Sends the next message as another offer (the peer has not replied):
    /// a new v2 direct message to the peer's *current* account keys, with
    /// the same material and anchor and the next ratchet message.
    ///
    /// Draws `e` (32) and `m` (32) for the v2 message, then the ratchet's.
    /// On any error the session is unchanged.
    pub fn encrypt_offer<R: CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        identity: &Identity,
        peer_keys: &PublicKeys,
        plaintext: &[u8],
        associated_data: &[u8],
    ) -> Result<Vec<u8>, UpgradeError> {
        let offer = self.offer.as_mut().ok_or(UpgradeError::NotOffering)?;
        if account_identity(identity.ed25519_public(), &identity.session_id())?
            != *self.session.local_identity()
        {
            return Err(UpgradeError::WrongIdentity);
        }
        check_offer_len(plaintext.len(), self.session.padding().bucket())?;
        let draft = dm::draft_pfs(rng, &self.peer, peer_keys)?;
        let message = self.session.encrypt(rng, plaintext, associated_data)?;
        let content = encode_offer(&offer.material, &offer.anchor, &message);
        offer.offers_sent = offer.offers_sent.saturating_add(1);
        Ok(draft.seal(identity, &self.peer, &content, None)?)
    }

    /// Encrypts a plain ratchet message (after the peer's first reply, and
    /// always for the responder).
    pub fn encrypt<R: CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        plaintext: &[u8],
        associated_data: &[u8],
    ) -> Result<Vec<u8>, UpgradeError> {
        if self.offer.is_some() {
            return Err(UpgradeError::OfferPending);
        }
        Ok(self.session.encrypt(rng, plaintext, associated_data)?)
    }

    /// Decrypts a ratchet message from the peer. For the initiator, the
    /// first one ends the offer phase. On any error the session is unchanged.
    pub fn decrypt(
        &mut self,
        bytes: &[u8],
        associated_data: &[u8],
    ) -> Result<Vec<u8>, UpgradeError> {
        if bytes.get(1) != Some(&message_type::RATCHET_MESSAGE) {
            // Prekey messages belong to handshake sessions, never to upgrades.
            return Err(RatchetError::HandshakeMismatch.into());
        }
        let plaintext = self.session.decrypt(bytes, associated_data)?;
        self.offer = None;
        Ok(plaintext)
    }

    /// Decrypts a repeated offer of this upgrade (responder): the offer's
    /// sender and upgrade id must be this session's. On any error the
    /// session is unchanged.
    pub fn decrypt_offer(
        &mut self,
        offer: &ReceivedOffer,
        associated_data: &[u8],
    ) -> Result<Vec<u8>, UpgradeError> {
        if self.session.role() != Role::Responder
            || offer.sender != self.peer
            || offer.upgrade_id != self.upgrade_id
        {
            return Err(UpgradeError::OfferMismatch);
        }
        Ok(self.session.decrypt(&offer.message, associated_data)?)
    }

    /// Whether messages still travel as offers (initiator before the reply).
    pub fn is_offering(&self) -> bool {
        self.offer.is_some()
    }

    /// Offers sent so far without a reply (0 once the peer replied).
    pub fn offers_sent(&self) -> u32 {
        self.offer.as_ref().map_or(0, |o| o.offers_sent)
    }

    /// The peer account.
    pub fn peer(&self) -> &SessionId {
        &self.peer
    }

    /// The upgrade id (public), which names this upgrade.
    pub fn upgrade_id(&self) -> &[u8; 32] {
        &self.upgrade_id
    }

    /// The ratchet session (read-only; identities, transcript hash, PQ state).
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The persistent form (spec §9.11.7).
    pub fn to_stored(&self) -> StoredUpgradeSession {
        let stored = self.session.to_stored();
        let mut w = Writer::start(
            STORED_UPGRADE_TYPE,
            2 + 33 + 32 + 1 + 132 + stored.as_bytes().len(),
        );
        w.bytes(self.peer.as_bytes()).bytes(&self.upgrade_id);
        match &self.offer {
            None => {
                w.u8(0);
            }
            Some(o) => {
                w.u8(FLAG_OFFER)
                    .bytes(o.material.expose())
                    .bytes(&o.anchor.x25519)
                    .bytes(&o.anchor.ephemeral)
                    .bytes(&o.anchor.ct_hash)
                    .u32(o.offers_sent);
            }
        }
        w.bytes(stored.as_bytes());
        StoredUpgradeSession(w.finish())
    }

    /// Loads a stored upgrade session; nothing is partially loaded.
    pub fn from_stored(stored: &StoredUpgradeSession) -> Result<Self, UpgradeError> {
        let bytes = stored.as_bytes();
        if bytes.len() > MAX_STORED_LEN {
            return Err(UpgradeError::Storage(StorageError::Corrupted));
        }
        match bytes.first() {
            Some(&v) if v != crate::wire::WIRE_VERSION => {
                return Err(UpgradeError::Storage(StorageError::UnsupportedVersion(v)));
            }
            _ => {}
        }
        Self::read(bytes).map_err(|e| match e {
            UpgradeError::Storage(s) => UpgradeError::Storage(s),
            _ => UpgradeError::Storage(StorageError::Corrupted),
        })
    }

    fn read(bytes: &[u8]) -> Result<Self, UpgradeError> {
        let corrupted = |_| UpgradeError::Storage(StorageError::Corrupted);
        let mut r = Reader::start_unbounded(bytes, STORED_UPGRADE_TYPE).map_err(corrupted)?;
        let peer = SessionId::from_bytes(r.slice(33, "peer").map_err(corrupted)?)
            .map_err(|_| UpgradeError::Storage(StorageError::Corrupted))?;
        let upgrade_id = r.array::<32>("upgrade id").map_err(corrupted)?;
        let offer = if r.flags(FLAG_OFFER, "offer flag").map_err(corrupted)? == FLAG_OFFER {
            let mut u = r.array::<32>("material").map_err(corrupted)?;
            let material = UpgradeMaterial::from_mut_array(&mut u);
            let anchor = Anchor {
                x25519: r.array("anchor key").map_err(corrupted)?,
                ephemeral: r.array("anchor ephemeral").map_err(corrupted)?,
                ct_hash: r.array("anchor ciphertext hash").map_err(corrupted)?,
            };
            let offers_sent = r.u32("offers sent").map_err(corrupted)?;
            Some(PendingOffer {
                material,
                anchor,
                offers_sent,
            })
        } else {
            None
        };
        let session = Session::from_stored(&StoredSession::from_bytes(r.rest()))?;
        if offer.is_some() && session.role() != Role::Initiator {
            return Err(UpgradeError::Storage(StorageError::Corrupted));
        }
        Ok(Self {
            session,
            peer,
            upgrade_id,
            offer,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::AccountKeySeed;
    use crate::session_v2::account_keys::account_key_pair;
    use rand_chacha::ChaCha20Rng;
    use rand_chacha::rand_core::SeedableRng;

    /// An offer claiming to travel in its anchor message (same `E₁`) whose
    /// ciphertext hash differs is refused; with the right hash it is accepted.
    #[test]
    fn anchor_message_must_match_its_commitment() {
        let mut rng = ChaCha20Rng::from_seed([0x31; 32]);
        let alice = Identity::from_seed_bytes(&[1u8; 16]).unwrap();
        let bob = Identity::from_seed_bytes(&[2u8; 16]).unwrap();
        let keys = account_key_pair(&AccountKeySeed::from_bytes([3; 32]));
        let sid = bob.session_id();
        let (mut a, _) =
            UpgradeSession::initiate(&mut rng, &alice, &sid, &keys.public_keys(), b"x", b"")
                .unwrap();
        let msg = a.session.encrypt(&mut rng, b"y", b"").unwrap();
        let material = a.offer.as_ref().unwrap().material.duplicate();
        for (hash_ok, expect_ok) in [(false, false), (true, true)] {
            let draft = dm::draft_pfs(&mut rng, &sid, &keys.public_keys()).unwrap();
            let real = kdf::sha256(&[draft.ciphertext().as_bytes()]);
            let anchor = Anchor {
                x25519: *keys.x25519_public().as_bytes(),
                ephemeral: *draft.ephemeral().as_bytes(),
                ct_hash: if hash_ok { real } else { [0x42; 32] },
            };
            let content = encode_offer(&material, &anchor, &msg);
            let wire = draft.seal(&alice, &sid, &content, None).unwrap();
            let got = receive(&bob, &[&keys], &wire);
            if expect_ok {
                assert!(matches!(got, Ok(Incoming::Offer(_))));
            } else {
                assert_eq!(got.unwrap_err(), UpgradeError::AnchorMismatch);
            }
        }
    }

    #[test]
    fn errors_display_an_action() {
        for e in [
            UpgradeError::MalformedOffer,
            UpgradeError::UnknownAnchorKey,
            UpgradeError::OfferPending,
            UpgradeError::Storage(StorageError::Corrupted),
        ] {
            assert!(alloc::format!("{e}").len() > 20);
        }
    }
}
