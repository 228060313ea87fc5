//! The hybrid asynchronous handshake (spec §5).
//!
//! PQXDH (revision 2) style, with the lessons of its analyses built in: the
//! KDF `info` binds a transcript hash of both identities, every prekey public
//! key (the full ML-KEM key), the KEM ciphertext and the protocol label, so
//! no re-encapsulation or key-substitution attack can make the two sides
//! agree on a key while disagreeing about who or what they talked to.
//!
//! ```text
//!  initiator A                                         responder B (offline)
//!  ───────────                                         ─────────────────────
//!  fetch bundle(B) ── verify signatures, FIPS 203 key check
//!  EK_A ← random
//!  DH1 = DH(IK_A, SPK_B)    DH2 = DH(EK_A, IK_B)
//!  DH3 = DH(EK_A, SPK_B)    DH4 = DH(EK_A, OPK_B)   (if OPK_B offered)
//!  (CT, SS) = ML-KEM.Encaps(PQPK_B)                  (one-time if offered,
//!                                                     else last resort)
//!  TH = SHA-256(label ‖ identities ‖ prekeys ‖ EK_A ‖ CT)
//!  keys = HKDF(0^32, 0xFF^32 ‖ DH1..DH4 ‖ SS, label ‖ TH)
//!  ── PrekeyMessage(header, payload) ──────────────────────────────▶
//!     (every message until B's first reply carries the header)
//!                                  respond(): look up prekeys, recompute,
//!                                  nothing consumed yet ──▶ PendingResponse
//!                                  caller authenticates the payload, then
//!                                  commit(): one-time keys deleted,
//!                                  last-resort base key recorded
//! ```
//!
//! Single-use values are consumed: `EK_A` is dropped (zeroized) inside
//! [`initiate`]; a [`PendingResponse`] is consumed by [`PendingResponse::commit`].
#![deny(clippy::integer_division_remainder_used)]

use crate::dh::X25519PublicKey;
use crate::identity::{DeviceIdentity, DevicePublicIdentity};
use crate::kdf::{self, label};
use crate::kem::{self, KemError, MLKEM_CIPHERTEXT_LEN, MlKemCiphertext, MlKemPublicKey};
use crate::prekey::{KemPrekeyKind, PrekeyId, PrekeyStore, VerifiedBundle};
use crate::secret::{ChainKey, HeaderKey, RootKey, SharedSecret, X25519Secret};
use crate::wire::{Reader, WireError, Writer, message_type};
use alloc::vec::Vec;
use core::fmt;
use rand_core::CryptoRng;
use zeroize::Zeroize;

#[cfg(test)]
mod tests;

/// Length of the handshake key material: root key, initiator chain key,
/// initiator header key, responder header key (spec §5.5).
const OKM_LEN: usize = 4 * 32;

/// The 32-byte `0xFF` prefix of the IKM (spec §5.4): keeps the first block of
/// the KDF input from ever equalling a valid X25519 output under another protocol
/// sharing these keys (as in X3DH/PQXDH with curve X25519).
const IKM_PREFIX: [u8; 32] = [0xFF; 32];

/// Errors of the handshake. None of them changes the prekey store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The initiator and responder identities are the same device: a
    /// reflected or self-addressed handshake.
    SameIdentity,
    /// The message names a signed prekey this device does not have (rotated
    /// out long ago, or never issued). The initiator must fetch a fresh bundle.
    UnknownSignedPrekey {
        /// The id in the message.
        id: PrekeyId,
    },
    /// The message names a one-time X25519 prekey that was already used or
    /// never issued. A second message using it is a replay.
    UnknownOneTimePrekey {
        /// The id in the message.
        id: PrekeyId,
    },
    /// The message names an ML-KEM prekey (one-time: already used or never
    /// issued; last resort: rotated out) this device does not have.
    UnknownKemPrekey {
        /// The id in the message.
        id: PrekeyId,
    },
    /// This initiator base key was already accepted with this last-resort
    /// prekey: the message is a replay of an earlier first message.
    ReplayedHandshake,
    /// The last-resort prekey has accepted its maximum number of handshakes
    /// ([`crate::prekey::MAX_BASE_KEYS_PER_LAST_RESORT`]); rotate it and
    /// publish the new bundle.
    LastResortPrekeyExhausted,
    /// A peer X25519 key (identity, prekey or base key) is a low-order point.
    NonContributoryKey,
    /// A KEM operation failed.
    Kem(KemError),
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SameIdentity => f.write_str("initiator and responder are the same device identity"),
            Self::UnknownSignedPrekey { id } => {
                write!(f, "signed prekey {id} is unknown or rotated out; the sender must fetch a new bundle")
            }
            Self::UnknownOneTimePrekey { id } => {
                write!(f, "one-time prekey {id} was already used or never issued (possible replay)")
            }
            Self::UnknownKemPrekey { id } => {
                write!(f, "ML-KEM prekey {id} was already used, rotated out or never issued")
            }
            Self::ReplayedHandshake => {
                f.write_str("this first message was already accepted (same base key and last-resort prekey)")
            }
            Self::LastResortPrekeyExhausted => f.write_str(
                "the last-resort ML-KEM prekey reached its handshake limit; rotate it and republish the bundle",
            ),
            Self::NonContributoryKey => f.write_str("a peer X25519 key is a low-order point"),
            Self::Kem(e) => write!(f, "KEM failure: {e}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for HandshakeError {}

impl From<KemError> for HandshakeError {
    fn from(e: KemError) -> Self {
        Self::Kem(e)
    }
}

/// Which side of the handshake a [`SessionSeed`] belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Sent the first message.
    Initiator,
    /// Received it.
    Responder,
}

/// What the handshake hands to the double ratchet (spec §5.5): the root key,
/// the initiator's first sending chain key, and the header keys of both
/// directions, plus the public facts the session binds to.
pub struct SessionSeed {
    role: Role,
    root_key: RootKey,
    initiator_chain_key: ChainKey,
    initiator_header_key: HeaderKey,
    responder_header_key: HeaderKey,
    transcript_hash: [u8; 32],
    local: DevicePublicIdentity,
    remote: DevicePublicIdentity,
    base_key: X25519PublicKey,
}

impl SessionSeed {
    /// A seed from explicit parts, for key schedules other than the handshake
    /// that start the same ratchet (the Session v2 upgrade, spec §9.11).
    #[allow(clippy::too_many_arguments)]
    #[cfg_attr(not(feature = "session-v2"), allow(dead_code))]
    pub(crate) fn from_parts(
        role: Role,
        root_key: RootKey,
        initiator_chain_key: ChainKey,
        initiator_header_key: HeaderKey,
        responder_header_key: HeaderKey,
        transcript_hash: [u8; 32],
        local: DevicePublicIdentity,
        remote: DevicePublicIdentity,
        base_key: X25519PublicKey,
    ) -> Self {
        Self {
            role,
            root_key,
            initiator_chain_key,
            initiator_header_key,
            responder_header_key,
            transcript_hash,
            local,
            remote,
            base_key,
        }
    }

    /// Which side this is.
    pub fn role(&self) -> Role {
        self.role
    }
    /// The transcript hash `TH` (public): both sides' identities, all prekeys
    /// used, the base key and the KEM ciphertext. Use it as the session's
    /// associated data.
    pub fn transcript_hash(&self) -> &[u8; 32] {
        &self.transcript_hash
    }
    /// This device's identity.
    pub fn local_identity(&self) -> &DevicePublicIdentity {
        &self.local
    }
    /// The peer device's identity. The responder must check it against the
    /// peer's device list before trusting the session.
    pub fn remote_identity(&self) -> &DevicePublicIdentity {
        &self.remote
    }
    /// The initiator's base key `EK_A`, which names the session: repeated
    /// prekey messages carrying the same base key belong to the same session.
    pub fn base_key(&self) -> &X25519PublicKey {
        &self.base_key
    }
    /// The root key.
    pub fn root_key(&self) -> &RootKey {
        &self.root_key
    }
    /// The initiator's first sending chain key.
    pub fn initiator_chain_key(&self) -> &ChainKey {
        &self.initiator_chain_key
    }
    /// The header key of the initiator→responder direction.
    pub fn initiator_header_key(&self) -> &HeaderKey {
        &self.initiator_header_key
    }
    /// The header key of the responder's first sending chain.
    pub fn responder_header_key(&self) -> &HeaderKey {
        &self.responder_header_key
    }
}

impl fmt::Debug for SessionSeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionSeed")
            .field("role", &self.role)
            .field("remote", &self.remote)
            .finish_non_exhaustive()
    }
}

/// The part of the initiator's first messages that lets the responder run
/// its half of the handshake (spec §5.6).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct HandshakeHeader {
    initiator: DevicePublicIdentity,
    base_key: X25519PublicKey,
    signed_prekey_id: PrekeyId,
    one_time_prekey_id: Option<PrekeyId>,
    kem_kind: KemPrekeyKind,
    kem_prekey_id: PrekeyId,
    kem_ciphertext: MlKemCiphertext,
}

const FLAG_ONE_TIME: u8 = 0b01;
const FLAG_KEM_ONE_TIME: u8 = 0b10;

impl HandshakeHeader {
    /// The initiator's identity.
    pub fn initiator(&self) -> &DevicePublicIdentity {
        &self.initiator
    }
    /// The initiator's base key `EK_A`.
    pub fn base_key(&self) -> &X25519PublicKey {
        &self.base_key
    }
    /// Wraps a payload (the first ratchet messages) into a prekey message.
    /// The initiator calls this for every message until the first reply.
    pub fn wrap(&self, payload: Vec<u8>) -> PrekeyMessage {
        PrekeyMessage {
            header: self.clone(),
            payload,
        }
    }
}

/// An initiator message that carries the handshake header (spec §5.6, §6.3).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PrekeyMessage {
    header: HandshakeHeader,
    payload: Vec<u8>,
}

impl PrekeyMessage {
    /// Smallest encoding: header without a one-time prekey id, one payload byte.
    pub const MIN_ENCODED_LEN: usize = 2 + 64 + 32 + 4 + 1 + 4 + MLKEM_CIPHERTEXT_LEN + 1;

    /// The handshake header.
    pub fn header(&self) -> &HandshakeHeader {
        &self.header
    }
    /// The payload (opaque here; the ratchet's first message).
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// Canonical encoding (spec §5.6).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::start(
            message_type::PREKEY_MESSAGE,
            Self::MIN_ENCODED_LEN + 4 + self.payload.len(),
        );
        self.header.write(&mut w);
        w.bytes(&self.payload);
        w.finish()
    }

    /// Decodes a prekey message (syntax and key validity only).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::start(bytes, message_type::PREKEY_MESSAGE)?;
        let header = HandshakeHeader::read(&mut r)?;
        let payload = r.rest();
        if payload.is_empty() {
            return Err(WireError::Empty { field: "payload" });
        }
        Ok(Self {
            header,
            payload: payload.to_vec(),
        })
    }
}

impl HandshakeHeader {
    /// Writes the header fields (spec §5.6, everything between the type byte and the payload).
    pub(crate) fn write(&self, w: &mut Writer) {
        w.bytes(&self.initiator.to_bytes())
            .bytes(self.base_key.as_bytes())
            .u32(self.signed_prekey_id);
        let flags = if self.one_time_prekey_id.is_some() {
            FLAG_ONE_TIME
        } else {
            0
        } | if self.kem_kind == KemPrekeyKind::OneTime {
            FLAG_KEM_ONE_TIME
        } else {
            0
        };
        w.u8(flags);
        if let Some(id) = self.one_time_prekey_id {
            w.u32(id);
        }
        w.u32(self.kem_prekey_id)
            .bytes(self.kem_ciphertext.as_bytes());
    }

    /// Reads the header fields.
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let initiator = DevicePublicIdentity::read(r, "initiator identity")?;
        let base_key = X25519PublicKey(r.array("base key")?);
        let signed_prekey_id = r.u32("signed prekey id")?;
        let flags = r.flags(FLAG_ONE_TIME | FLAG_KEM_ONE_TIME, "prekey message flags")?;
        let one_time_prekey_id = if flags & FLAG_ONE_TIME != 0 {
            Some(r.u32("one-time prekey id")?)
        } else {
            None
        };
        let kem_kind = if flags & FLAG_KEM_ONE_TIME != 0 {
            KemPrekeyKind::OneTime
        } else {
            KemPrekeyKind::LastResort
        };
        let kem_prekey_id = r.u32("ML-KEM prekey id")?;
        let ct = r.slice(MLKEM_CIPHERTEXT_LEN, "ML-KEM ciphertext")?;
        // `slice` fixed the length, so this cannot fail.
        let kem_ciphertext = MlKemCiphertext::from_bytes(ct).map_err(|_| WireError::Truncated {
            field: "ML-KEM ciphertext",
        })?;
        Ok(Self {
            initiator,
            base_key,
            signed_prekey_id,
            one_time_prekey_id,
            kem_kind,
            kem_prekey_id,
            kem_ciphertext,
        })
    }
}

/// Public inputs of the transcript hash, in spec order (§5.3).
struct Transcript<'a> {
    initiator: &'a DevicePublicIdentity,
    responder: &'a DevicePublicIdentity,
    signed_prekey: (PrekeyId, &'a X25519PublicKey),
    one_time_prekey: Option<(PrekeyId, &'a X25519PublicKey)>,
    kem_prekey: (KemPrekeyKind, PrekeyId, &'a MlKemPublicKey),
    base_key: &'a X25519PublicKey,
    kem_ciphertext: &'a MlKemCiphertext,
}

impl Transcript<'_> {
    fn hash(&self) -> [u8; 32] {
        let (spk_id, spk) = self.signed_prekey;
        let otp_id_bytes;
        let (otp_flag, otp_id, otp_key): (u8, &[u8], &[u8]) = match self.one_time_prekey {
            Some((id, key)) => {
                otp_id_bytes = id.to_be_bytes();
                (1, &otp_id_bytes, key.as_bytes())
            }
            None => (0, &[], &[]),
        };
        let (kind, kem_id, kem_key) = self.kem_prekey;
        let kind_byte: u8 = match kind {
            KemPrekeyKind::LastResort => 1,
            KemPrekeyKind::OneTime => 2,
        };
        kdf::sha256(&[
            label::HANDSHAKE_TRANSCRIPT,
            &self.initiator.to_bytes(),
            &self.responder.to_bytes(),
            &spk_id.to_be_bytes(),
            spk.as_bytes(),
            &[otp_flag],
            otp_id,
            otp_key,
            &[kind_byte],
            &kem_id.to_be_bytes(),
            kem_key.as_bytes(),
            self.base_key.as_bytes(),
            self.kem_ciphertext.as_bytes(),
        ])
    }
}

/// `HKDF(salt = 0^32, IKM = 0xFF^32 ‖ DH1 ‖ DH2 ‖ DH3 [‖ DH4] ‖ SS, info = label ‖ TH)`
/// split into the four 32-byte keys (spec §5.4, §5.5).
#[allow(clippy::too_many_arguments)]
fn derive(
    role: Role,
    dhs: &[&SharedSecret],
    kem_secret: &SharedSecret,
    transcript_hash: [u8; 32],
    local: DevicePublicIdentity,
    remote: DevicePublicIdentity,
    base_key: X25519PublicKey,
) -> SessionSeed {
    let mut ikm: Vec<&[u8]> = Vec::with_capacity(6);
    ikm.push(&IKM_PREFIX);
    ikm.extend(dhs.iter().map(|d| d.expose().as_slice()));
    ikm.push(kem_secret.expose());
    let mut okm = [0u8; OKM_LEN];
    // OKM_LEN = 128 ≤ 255·32: `hkdf_sha256` cannot refuse it.
    let _ = kdf::hkdf_sha256(
        &[0u8; 32],
        &ikm,
        &[label::HANDSHAKE_KEYS, &transcript_hash],
        &mut okm,
    );
    let mut k = [[0u8; 32]; 4];
    for (dst, src) in k.iter_mut().zip(okm.chunks_exact(32)) {
        dst.copy_from_slice(src);
    }
    okm.zeroize();
    let [mut rk, mut ck, mut hki, mut hkr] = k;
    k.zeroize();
    SessionSeed {
        role,
        root_key: RootKey::from_mut_array(&mut rk),
        initiator_chain_key: ChainKey::from_mut_array(&mut ck),
        initiator_header_key: HeaderKey::from_mut_array(&mut hki),
        responder_header_key: HeaderKey::from_mut_array(&mut hkr),
        transcript_hash,
        local,
        remote,
        base_key,
    }
}

/// Runs the initiator's side against a verified bundle.
///
/// Returns the [`SessionSeed`] and the [`HandshakeHeader`] to send with every
/// message until the responder replies.
///
/// ```
/// use session_ratchet::{handshake, identity::DeviceIdentity, prekey::PrekeyStore};
/// # use rand_chacha::{ChaCha20Rng, rand_core::SeedableRng};
/// let mut rng = ChaCha20Rng::from_seed([9; 32]);
/// let (alice, bob) = (DeviceIdentity::generate(&mut rng), DeviceIdentity::generate(&mut rng));
/// let mut bob_store = PrekeyStore::new(&mut rng, &bob);
/// let bundle = bob_store.bundle(&bob, None, None)?.verify_for(bob.public())?;
///
/// let (alice_seed, header) = handshake::initiate(&mut rng, &alice, &bundle)?;
/// let wire = header.wrap(b"first ratchet message".to_vec()).to_bytes();
///
/// let msg = handshake::PrekeyMessage::from_bytes(&wire)?;
/// let pending = handshake::respond(&bob, &bob_store, msg.header())?;
/// // ... authenticate msg.payload() with pending.seed(), then:
/// let bob_seed = pending.commit(&mut bob_store)?;
/// assert_eq!(alice_seed.transcript_hash(), bob_seed.transcript_hash());
/// assert_eq!(alice_seed.root_key(), bob_seed.root_key());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn initiate<R: CryptoRng + ?Sized>(
    rng: &mut R,
    identity: &DeviceIdentity,
    bundle: &VerifiedBundle,
) -> Result<(SessionSeed, HandshakeHeader), HandshakeError> {
    let responder = *bundle.identity();
    if &responder == identity.public() {
        return Err(HandshakeError::SameIdentity);
    }
    let spk = bundle.signed_prekey();
    let otp = bundle.one_time_prekey();
    let kem_prekey = bundle.kem_prekey();

    // Spec §5.2: EK_A is drawn first, then the 32-byte ML-KEM coins `m`.
    let ephemeral = X25519Secret::random(rng);
    let base_key = ephemeral.public_key();
    let (ct, kem_secret) = kem::encapsulate(rng, kem_prekey.key())?;

    let dh1 = identity.dh_secret().diffie_hellman(spk.key());
    let dh2 = ephemeral.diffie_hellman(responder.dh_key());
    let dh3 = ephemeral.diffie_hellman(spk.key());
    let dh4 = otp.map(|o| ephemeral.diffie_hellman(o.key()));
    drop(ephemeral);
    let (Some(dh1), Some(dh2), Some(dh3)) = (dh1, dh2, dh3) else {
        return Err(HandshakeError::NonContributoryKey);
    };
    let dh4 = match dh4 {
        Some(None) => return Err(HandshakeError::NonContributoryKey),
        Some(Some(d)) => Some(d),
        None => None,
    };

    let transcript = Transcript {
        initiator: identity.public(),
        responder: &responder,
        signed_prekey: (spk.id(), spk.key()),
        one_time_prekey: otp.map(|o| (o.id(), o.key())),
        kem_prekey: (kem_prekey.kind(), kem_prekey.id(), kem_prekey.key()),
        base_key: &base_key,
        kem_ciphertext: &ct,
    }
    .hash();
    let mut dhs = alloc::vec![&dh1, &dh2, &dh3];
    if let Some(d) = &dh4 {
        dhs.push(d);
    }
    let seed = derive(
        Role::Initiator,
        &dhs,
        &kem_secret,
        transcript,
        *identity.public(),
        responder,
        base_key,
    );
    let header = HandshakeHeader {
        initiator: *identity.public(),
        base_key,
        signed_prekey_id: spk.id(),
        one_time_prekey_id: otp.map(|o| o.id()),
        kem_kind: kem_prekey.kind(),
        kem_prekey_id: kem_prekey.id(),
        kem_ciphertext: ct,
    };
    Ok((seed, header))
}

/// What committing a response will consume from the store.
#[derive(Debug)]
struct Consumption {
    one_time_prekey: Option<PrekeyId>,
    one_time_kem_prekey: Option<PrekeyId>,
    last_resort: Option<(PrekeyId, [u8; 32])>,
}

/// A responder handshake that has derived its keys but consumed nothing.
///
/// Authenticate the first payload with [`PendingResponse::seed`]; only if that
/// succeeds call [`PendingResponse::commit`], which deletes the one-time
/// prekeys used and records the base key. Dropping it changes nothing.
#[derive(Debug)]
#[must_use = "nothing is consumed until `commit` is called"]
pub struct PendingResponse {
    seed: SessionSeed,
    consumption: Consumption,
}

impl PendingResponse {
    /// The derived keys, for authenticating the first payload.
    pub fn seed(&self) -> &SessionSeed {
        &self.seed
    }

    /// Consumes the one-time prekeys and records the base key, then returns
    /// the seed. Re-checks everything first (the store may have changed since
    /// [`respond`]), and changes nothing if any check fails.
    pub fn commit(self, store: &mut PrekeyStore) -> Result<SessionSeed, HandshakeError> {
        let c = &self.consumption;
        if let Some(id) = c.one_time_prekey {
            store
                .one_time_prekey(id)
                .ok_or(HandshakeError::UnknownOneTimePrekey { id })?;
        }
        if let Some(id) = c.one_time_kem_prekey {
            store
                .kem_prekey(KemPrekeyKind::OneTime, id)
                .ok_or(HandshakeError::UnknownKemPrekey { id })?;
        }
        if let Some((id, base_key)) = &c.last_resort {
            check_last_resort(store, *id, base_key)?;
        }
        // All checks passed: now mutate. Each step below was just shown to succeed.
        if let Some(id) = c.one_time_prekey {
            store.remove_one_time_prekey(id);
        }
        if let Some(id) = c.one_time_kem_prekey {
            store.remove_one_time_kem_prekey(id);
        }
        if let Some((id, base_key)) = c.last_resort {
            store.record_base_key(id, base_key);
        }
        Ok(self.seed)
    }
}

fn check_last_resort(
    store: &PrekeyStore,
    id: PrekeyId,
    base_key: &[u8; 32],
) -> Result<(), HandshakeError> {
    let k = store
        .kem_prekey(KemPrekeyKind::LastResort, id)
        .ok_or(HandshakeError::UnknownKemPrekey { id })?;
    // Base keys are public values: a plain comparison leaks nothing secret.
    if k.seen_base_keys.contains(base_key) {
        return Err(HandshakeError::ReplayedHandshake);
    }
    if k.seen_base_keys.len() >= crate::prekey::MAX_BASE_KEYS_PER_LAST_RESORT {
        return Err(HandshakeError::LastResortPrekeyExhausted);
    }
    Ok(())
}

/// Runs the responder's side for a received header. Reads the store, changes
/// nothing; see [`PendingResponse`].
pub fn respond(
    identity: &DeviceIdentity,
    store: &PrekeyStore,
    header: &HandshakeHeader,
) -> Result<PendingResponse, HandshakeError> {
    if &header.initiator == identity.public() {
        return Err(HandshakeError::SameIdentity);
    }
    let spk = store.signed_prekey(header.signed_prekey_id).ok_or(
        HandshakeError::UnknownSignedPrekey {
            id: header.signed_prekey_id,
        },
    )?;
    let otp = match header.one_time_prekey_id {
        Some(id) => Some(
            store
                .one_time_prekey(id)
                .ok_or(HandshakeError::UnknownOneTimePrekey { id })?,
        ),
        None => None,
    };
    let kem = store
        .kem_prekey(header.kem_kind, header.kem_prekey_id)
        .ok_or(HandshakeError::UnknownKemPrekey {
            id: header.kem_prekey_id,
        })?;
    if header.kem_kind == KemPrekeyKind::LastResort {
        check_last_resort(store, header.kem_prekey_id, header.base_key.as_bytes())?;
    }

    let dh1 = spk.secret.diffie_hellman(header.initiator.dh_key());
    let dh2 = identity.dh_secret().diffie_hellman(&header.base_key);
    let dh3 = spk.secret.diffie_hellman(&header.base_key);
    let (Some(dh1), Some(dh2), Some(dh3)) = (dh1, dh2, dh3) else {
        return Err(HandshakeError::NonContributoryKey);
    };
    let dh4 = match &otp {
        Some((_, secret)) => Some(
            secret
                .diffie_hellman(&header.base_key)
                .ok_or(HandshakeError::NonContributoryKey)?,
        ),
        None => None,
    };
    let kem_secret = kem.keypair.decapsulate(&header.kem_ciphertext);

    let transcript = Transcript {
        initiator: &header.initiator,
        responder: identity.public(),
        signed_prekey: (spk.public.id(), spk.public.key()),
        one_time_prekey: otp.map(|(public, _)| (public.id(), public.key())),
        kem_prekey: (
            header.kem_kind,
            header.kem_prekey_id,
            kem.keypair.public_key(),
        ),
        base_key: &header.base_key,
        kem_ciphertext: &header.kem_ciphertext,
    }
    .hash();
    let mut dhs = alloc::vec![&dh1, &dh2, &dh3];
    if let Some(d) = &dh4 {
        dhs.push(d);
    }
    let seed = derive(
        Role::Responder,
        &dhs,
        &kem_secret,
        transcript,
        *identity.public(),
        header.initiator,
        header.base_key,
    );
    Ok(PendingResponse {
        seed,
        consumption: Consumption {
            one_time_prekey: header.one_time_prekey_id,
            one_time_kem_prekey: (header.kem_kind == KemPrekeyKind::OneTime)
                .then_some(header.kem_prekey_id),
            last_resort: (header.kem_kind == KemPrekeyKind::LastResort)
                .then_some((header.kem_prekey_id, *header.base_key.as_bytes())),
        },
    })
}
