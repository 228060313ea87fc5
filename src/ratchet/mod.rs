//! The hybrid double ratchet (spec chapter 7).
//!
//! This module owns a session between two devices after the handshake:
//! per-message keys (symmetric ratchet), the X25519 DH ratchet (classical
//! post-compromise security), the ML-KEM ratchet ([`pq`]; post-quantum
//! post-compromise security), header encryption, padding, skipped keys with
//! hard bounds, and transactional decryption.
//!
//! ```text
//!            initiate()                      respond(first message)
//!                │                                  │
//!                ▼                                  ▼
//!     ┌─────────────────────┐   first reply   ┌───────────────┐
//!     │ Initiating: every   │ ──────────────▶ │  Established  │ ◀─┐ encrypt / decrypt
//!     │ message carries the │                 │               │ ──┘ (DH step when the
//!     │ handshake header    │                 └───────────────┘      peer's key changes)
//!     └─────────────────────┘
//! ```
//!
//! Decryption never changes the session unless the message authenticates and
//! every part of it is valid: [`Session::decrypt`] computes all effects into
//! a staged update first and commits them last.

mod erasure;
mod error;
mod keys;
mod message;
mod pickle;
pub(crate) mod pq;
#[cfg(test)]
mod tests;

pub use crate::secret::StorageKey;
pub use error::{RatchetError, StorageError};
pub use message::MIN_MESSAGE_LEN;
pub use pickle::{STORED_SESSION_VERSION, StoredSession};
pub use pq::PqStats;

use crate::aead::{self, TAG_LEN, XNONCE_LEN};
use crate::dh::X25519PublicKey;
use crate::handshake::{self, HandshakeHeader, PrekeyMessage, Role, SessionSeed};
use crate::identity::{DeviceIdentity, DevicePublicIdentity};
use crate::prekey::{PrekeyStore, VerifiedBundle};
use crate::secret::{ChainKey, HeaderKey, MessageKey, RootKey, X25519Secret};
use crate::wire::{MAX_WIRE_LEN, message_type};
use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;
use core::fmt;
use message::Header;
use pq::{PqState, PqUpdate};
use rand_core::CryptoRng;

/// Most message keys one received message may make us derive in one chain
/// (the jump `N − Nr`, and separately `PN − Nr` when a chain ends). Bounds the
/// work a single message can cause to 2 × 25,000 HMAC pairs.
pub const MAX_SKIP: u32 = 25_000;
/// Skipped message keys kept per receiving chain (oldest evicted first).
pub const MAX_SKIPPED_KEYS_PER_CHAIN: usize = 1_000;
/// Skipped message keys kept in total (oldest chain's oldest evicted first).
pub const MAX_SKIPPED_KEYS: usize = 2_000;
/// Receiving chains kept besides the current one, for late messages and for
/// telling duplicates from forgeries. Trial decryption tries at most
/// `2 + MAX_OLD_CHAINS` header keys per message.
pub const MAX_OLD_CHAINS: usize = 4;

/// How messages are padded (spec §7.7). Every message's total length on the
/// wire is a multiple of `bucket` bytes, so a message's length reveals only
/// its bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PaddingPolicy {
    bucket: u16,
}

impl PaddingPolicy {
    /// Session v2's default: multiples of 256 bytes.
    pub const DEFAULT: Self = Self { bucket: 256 };

    /// Pads to multiples of `bucket` bytes (at least 1; 1 disables padding).
    pub fn multiple_of(bucket: u16) -> Self {
        Self {
            bucket: bucket.max(1),
        }
    }

    /// The bucket size in bytes.
    pub fn bucket(&self) -> u16 {
        self.bucket
    }

    fn round_up(&self, len: usize) -> usize {
        let b = usize::from(self.bucket);
        len.div_ceil(b).saturating_mul(b)
    }
}

impl Default for PaddingPolicy {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The sending chain.
struct SendChain {
    ck: ChainKey,
    hk: HeaderKey,
    n: u32,
    mix_epoch: u32,
}

/// Message keys skipped in one receiving chain.
#[derive(Default)]
struct Skipped {
    keys: BTreeMap<u32, MessageKey>,
    /// Keys with a smaller index were evicted (or never stored).
    evicted_below: u32,
}

/// A receiving chain: the current one, or an old one kept for late messages.
struct RecvChain {
    dh: X25519PublicKey,
    hk: HeaderKey,
    ck: ChainKey,
    /// Next expected index.
    n: u32,
    skipped: Skipped,
}

/// A session with one peer device.
pub struct Session {
    role: Role,
    th: [u8; 32],
    local: DevicePublicIdentity,
    remote: DevicePublicIdentity,
    base_key: X25519PublicKey,
    rk: RootKey,
    dh_self: X25519Secret,
    dh_self_pub: X25519PublicKey,
    dh_peer: Option<X25519PublicKey>,
    /// `None` when the next `encrypt` must start a new sending chain.
    send: Option<SendChain>,
    pn: u32,
    nhk_send: HeaderKey,
    recv: Option<RecvChain>,
    nhk_recv: HeaderKey,
    old: VecDeque<RecvChain>,
    pq: PqState,
    /// Initiator only: the handshake header, attached until the first reply.
    pending_header: Option<HandshakeHeader>,
    padding: PaddingPolicy,
    /// The keys and plaintexts of the last `encrypt`, for test vectors only.
    #[cfg(feature = "hazmat-test-vectors")]
    trace: Option<EncryptionTrace>,
}

/// The secret intermediate values of one `encrypt`, exposed only with the
/// `hazmat-test-vectors` feature so published vectors can list them.
#[cfg(feature = "hazmat-test-vectors")]
#[derive(Clone, Debug)]
pub struct EncryptionTrace {
    /// The header key that encrypted the header.
    pub header_key: [u8; 32],
    /// The message key `MK` of the message's chain index (§7.3).
    pub message_key: [u8; 32],
    /// The body key `AK` derived from `MK` and the nonce, which encrypted
    /// the body (§7.3, §7.7).
    pub body_key: [u8; 32],
    /// The header plaintext (§7.7).
    pub header: [u8; message::HEADER_LEN],
    /// The body plaintext: PQ section, plaintext and padding (§7.7).
    pub body: Vec<u8>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("role", &self.role)
            .field("remote", &self.remote)
            .field("pq_epochs_mixed", &self.pq.epochs_mixed)
            .finish_non_exhaustive()
    }
}

/// Which header key opened a header.
enum Found {
    Current(Header),
    Old(usize, Header),
    Next(Header),
}

/// Everything a successful decryption changes, applied at once.
struct Staged {
    kind: StagedKind,
    pq: PqUpdate,
}

enum StagedKind {
    /// A message of the current chain at or after the expected index.
    Current {
        ck: ChainKey,
        n: u32,
        skipped: Vec<(u32, MessageKey)>,
    },
    /// A previously skipped key was used.
    UsedSkipped { chain: Option<usize>, n: u32 },
    /// A new receiving chain (DH ratchet step).
    NewChain {
        retire_skipped: Vec<(u32, MessageKey)>,
        rk: RootKey,
        chain: RecvChain,
        nhk_recv: HeaderKey,
        new_chain_skipped: Vec<(u32, MessageKey)>,
        mixed_epoch: u32,
    },
}

/// Derives keys from `ck` for indices `from..to`, returning the skipped keys,
/// the key for `to`, and the chain key after `to`.
fn advance(ck: &ChainKey, from: u32, to: u32) -> (Vec<(u32, MessageKey)>, MessageKey, ChainKey) {
    let mut skipped = Vec::new();
    let (mut ck, mut mk) = keys::chain(ck);
    let mut i = from;
    while i < to {
        skipped.push((i, mk));
        (ck, mk) = keys::chain(&ck);
        i += 1;
    }
    (skipped, mk, ck)
}

/// Keeps only the newest [`MAX_SKIPPED_KEYS_PER_CHAIN`] of `skipped`: the
/// older ones are never stored (they count as evicted).
fn cap_new_skipped(skipped: &mut Vec<(u32, MessageKey)>) {
    let excess = skipped.len().saturating_sub(MAX_SKIPPED_KEYS_PER_CHAIN);
    skipped.drain(..excess);
}

impl Skipped {
    fn insert_all(&mut self, keys: Vec<(u32, MessageKey)>, from: u32) {
        if let Some((first, _)) = keys.first()
            && *first > from
        {
            // Keys from..first were derived but dropped by the per-chain cap.
            self.evicted_below = self.evicted_below.max(*first);
        }
        for (i, k) in keys {
            self.keys.insert(i, k);
        }
        while self.keys.len() > MAX_SKIPPED_KEYS_PER_CHAIN {
            self.evict_oldest();
        }
    }

    fn evict_oldest(&mut self) {
        if let Some((i, _)) = self.keys.pop_first() {
            self.evicted_below = self.evicted_below.max(i.saturating_add(1));
        }
    }
}

impl Session {
    /// Starts a session as initiator from a verified prekey bundle.
    ///
    /// Until the peer's first reply arrives, every message this session
    /// produces is a prekey message carrying the handshake header.
    ///
    /// ```
    /// use session_ratchet::{identity::DeviceIdentity, prekey::PrekeyStore, ratchet::Session};
    /// # use rand_chacha::{ChaCha20Rng, rand_core::SeedableRng};
    /// let mut rng = ChaCha20Rng::from_seed([3; 32]);
    /// let (alice, bob) = (DeviceIdentity::generate(&mut rng), DeviceIdentity::generate(&mut rng));
    /// let mut bob_store = PrekeyStore::new(&mut rng, &bob);
    /// let bundle = bob_store.bundle(&bob, None, None)?.verify_for(bob.public())?;
    ///
    /// let mut a = Session::initiate(&mut rng, &alice, &bundle)?;
    /// let first = a.encrypt(&mut rng, b"hi Bob", b"")?;
    /// let (mut b, plaintext) = Session::respond(&bob, &mut bob_store, &first, b"")?;
    /// assert_eq!(plaintext, b"hi Bob");
    /// let reply = b.encrypt(&mut rng, b"hi Alice", b"")?;
    /// assert_eq!(a.decrypt(&reply, b"")?, b"hi Alice");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn initiate<R: CryptoRng + ?Sized>(
        rng: &mut R,
        identity: &DeviceIdentity,
        bundle: &VerifiedBundle,
    ) -> Result<Self, RatchetError> {
        let (seed, header) = handshake::initiate(rng, identity, bundle)?;
        Ok(Self::initiate_from_seed(rng, &seed, Some(header)))
    }

    /// The initiator's state from a seed (spec §7.2): draws the first ratchet
    /// key. `pending_header` is the handshake header attached to every
    /// message until the first reply; `None` when the seed was delivered by
    /// other means (the Session v2 upgrade, spec §9.11), so messages are
    /// plain ratchet messages from the start.
    pub(crate) fn initiate_from_seed<R: CryptoRng + ?Sized>(
        rng: &mut R,
        seed: &SessionSeed,
        pending_header: Option<HandshakeHeader>,
    ) -> Self {
        let (rk, nhk_next) = keys::init(seed.root_key(), seed.transcript_hash());
        let dh_self = X25519Secret::random(rng);
        let dh_self_pub = dh_self.public_key();
        Self {
            role: Role::Initiator,
            th: *seed.transcript_hash(),
            local: *seed.local_identity(),
            remote: *seed.remote_identity(),
            base_key: *seed.base_key(),
            rk,
            dh_self,
            dh_self_pub,
            dh_peer: None,
            send: Some(SendChain {
                ck: seed.initiator_chain_key().duplicate(),
                hk: seed.initiator_header_key().duplicate(),
                n: 0,
                mix_epoch: 0,
            }),
            pn: 0,
            nhk_send: nhk_next,
            recv: None,
            nhk_recv: seed.responder_header_key().duplicate(),
            old: VecDeque::new(),
            pq: PqState::new(),
            pending_header,
            padding: PaddingPolicy::DEFAULT,
            #[cfg(feature = "hazmat-test-vectors")]
            trace: None,
        }
    }

    /// Creates the responder's session from the initiator's first message and
    /// returns it with the first plaintext.
    ///
    /// The prekey store changes (one-time prekeys consumed, base key
    /// recorded) only if the message authenticates; on any error nothing is
    /// stored or consumed. The caller must check
    /// [`Session::remote_identity`] against the peer's device list.
    pub fn respond(
        identity: &DeviceIdentity,
        store: &mut PrekeyStore,
        bytes: &[u8],
        associated_data: &[u8],
    ) -> Result<(Self, Vec<u8>), RatchetError> {
        let msg = PrekeyMessage::from_bytes(bytes)?;
        let pending = handshake::respond(identity, store, msg.header())?;
        let mut session = Self::responder_from_seed(pending.seed(), msg.payload())?;
        let plaintext =
            session.decrypt_ratchet(msg.payload(), associated_data, Some(msg.header()))?;
        pending.commit(store)?;
        Ok((session, plaintext))
    }

    /// The responder's session from a seed delivered outside a prekey message
    /// (the Session v2 upgrade, spec §9.11) and the initiator's first ratchet
    /// message `payload` (a plain ratchet message, no handshake wrapper).
    /// Returns the session only if the message decrypts (spec §7.2).
    #[cfg_attr(not(feature = "session-v2"), allow(dead_code))]
    pub(crate) fn respond_from_seed(
        seed: &SessionSeed,
        payload: &[u8],
        associated_data: &[u8],
    ) -> Result<(Self, Vec<u8>), RatchetError> {
        let mut session = Self::responder_from_seed(seed, payload)?;
        let plaintext = session.decrypt_ratchet(payload, associated_data, None)?;
        Ok((session, plaintext))
    }

    /// The responder's state before its first message is decrypted: the
    /// initiator's first chain needs no DH step, only its ratchet key, which
    /// the first header (under `HK_A`) reveals.
    fn responder_from_seed(seed: &SessionSeed, payload: &[u8]) -> Result<Self, RatchetError> {
        let parts = message::split(payload)?;
        let th = *seed.transcript_hash();
        let header = open_header(seed.initiator_header_key(), &th, &parts)
            .ok_or(RatchetError::UndecryptableHeader)?;
        let (rk, nhk_next) = keys::init(seed.root_key(), &th);
        // The responder's own ratchet key is created at its first send (the
        // sending chain is started lazily). Until then these zeros stand in
        // for it and are never used for a DH: a new chain arriving before
        // that send is refused (`stage_new_chain`, spec §7.4).
        let dh_self = X25519Secret::from_slice_array(&[0u8; 32]);
        let dh_self_pub = X25519PublicKey([0u8; 32]);
        Ok(Self {
            role: Role::Responder,
            th,
            local: *seed.local_identity(),
            remote: *seed.remote_identity(),
            base_key: *seed.base_key(),
            rk,
            dh_self,
            dh_self_pub,
            dh_peer: Some(header.dh),
            send: None,
            pn: 0,
            nhk_send: seed.responder_header_key().duplicate(),
            recv: Some(RecvChain {
                dh: header.dh,
                hk: seed.initiator_header_key().duplicate(),
                ck: seed.initiator_chain_key().duplicate(),
                n: 0,
                skipped: Skipped::default(),
            }),
            nhk_recv: nhk_next,
            old: VecDeque::new(),
            pq: PqState::new(),
            pending_header: None,
            padding: PaddingPolicy::DEFAULT,
            #[cfg(feature = "hazmat-test-vectors")]
            trace: None,
        })
    }

    /// Which side of the handshake this device was.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The peer device's identity.
    pub fn remote_identity(&self) -> &DevicePublicIdentity {
        &self.remote
    }

    /// This device's identity.
    pub fn local_identity(&self) -> &DevicePublicIdentity {
        &self.local
    }

    /// The handshake transcript hash, bound into every message.
    pub fn transcript_hash(&self) -> &[u8; 32] {
        &self.th
    }

    /// The initiator's handshake base key, which names this session.
    pub fn base_key(&self) -> &X25519PublicKey {
        &self.base_key
    }

    /// Whether messages still carry the handshake header (initiator before
    /// the first reply).
    pub fn is_initiating(&self) -> bool {
        self.pending_header.is_some()
    }

    /// PQ epochs whose secret this side has mixed into its root key.
    pub fn pq_epochs_mixed(&self) -> u64 {
        self.pq.epochs_mixed
    }

    /// The secret intermediate values of the last `encrypt` (test vectors only).
    #[cfg(feature = "hazmat-test-vectors")]
    pub fn hazmat_last_encryption(&self) -> Option<&EncryptionTrace> {
        self.trace.as_ref()
    }

    /// Counters of the ML-KEM ratchet's traffic (diagnostics).
    pub fn pq_stats(&self) -> PqStats {
        self.pq.stats
    }

    /// The padding policy.
    pub fn padding(&self) -> PaddingPolicy {
        self.padding
    }

    /// Changes the padding policy for messages sent from now on.
    pub fn set_padding(&mut self, policy: PaddingPolicy) {
        self.padding = policy;
    }

    /// Skipped message keys currently held (all chains).
    pub fn skipped_keys_held(&self) -> usize {
        self.recv
            .iter()
            .chain(self.old.iter())
            .map(|c| c.skipped.keys.len())
            .sum()
    }

    /// Encrypts `plaintext`, binding `associated_data` (which the receiver
    /// must pass identically).
    pub fn encrypt<R: CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        plaintext: &[u8],
        associated_data: &[u8],
    ) -> Result<Vec<u8>, RatchetError> {
        let header_overhead = if self.pending_header.is_some() {
            PrekeyMessage::MIN_ENCODED_LEN + 4
        } else {
            0
        };
        let base = message::MIN_MESSAGE_LEN + plaintext.len();
        if base.saturating_add(header_overhead) > MAX_WIRE_LEN {
            return Err(RatchetError::PlaintextTooLong);
        }
        if self.send.as_ref().is_some_and(|s| s.n == u32::MAX) {
            return Err(RatchetError::CounterExhausted);
        }
        self.pq.prepare_send(rng)?;
        if self.send.is_none() {
            self.start_sending_chain(rng)?;
        }
        let send = self.send.as_mut().ok_or(RatchetError::Internal)?;

        // PQ capacity: the padding slack, grown by one bucket when the slack
        // is too small and the previous message carried no symbols either
        // (spec §7.6), or to fit the whole first key (bootstrap).
        let padded = self.padding.round_up(base);
        let limit = MAX_WIRE_LEN
            .saturating_sub(header_overhead)
            .saturating_sub(base);
        let mut capacity = padded - base;
        if let Some(need) = self.pq.bootstrap_len() {
            capacity = self.padding.round_up(base + need) - base;
        } else if capacity < MIN_USEFUL_PQ
            && self.pq.has_symbols_to_send()
            && self.pq.idle_streak >= 1
        {
            capacity += usize::from(self.padding.bucket);
        }
        let pq_section = self.pq.build(capacity.min(limit));
        let total = self
            .padding
            .round_up(base + pq_section.len())
            .min(MAX_WIRE_LEN - header_overhead);
        let padding = total - base - pq_section.len();

        let header = Header {
            dh: self.dh_self_pub,
            pn: self.pn,
            n: send.n,
            mix_epoch: send.mix_epoch,
        };
        let (ck, mk) = keys::chain(&send.ck);
        let mut nonce = [0u8; XNONCE_LEN];
        rng.fill_bytes(&mut nonce);
        let mut out = message::start(&nonce, total);
        let mut enc_header = header.encode().to_vec();
        if !aead::seal_x(
            send.hk.expose(),
            &nonce,
            &header_ad(&self.th),
            &mut enc_header,
        ) {
            return Err(RatchetError::Internal);
        }
        out.extend_from_slice(&enc_header);
        let wrap = self.pending_header.as_ref().map(encode_handshake_header);
        let mut body = message::body(&pq_section, plaintext, padding);
        let ak = keys::body_key(&mk, &nonce);
        #[cfg(feature = "hazmat-test-vectors")]
        {
            self.trace = Some(EncryptionTrace {
                header_key: *send.hk.expose(),
                message_key: *mk.expose(),
                body_key: *ak.expose(),
                header: header.encode(),
                body: body.clone(),
            });
        }
        let ad = body_ad(&self.th, associated_data, &out, wrap.as_deref());
        if !aead::seal_single_use(ak.expose(), &ad, &mut body) {
            return Err(RatchetError::Internal);
        }
        out.extend_from_slice(&body);
        send.ck = ck;
        send.n += 1;
        match &self.pending_header {
            Some(h) => Ok(h.wrap(out).to_bytes()),
            None => Ok(out),
        }
    }

    /// DH ratchet step on the sending side (spec §7.4): a fresh ratchet key,
    /// and the pending PQ epoch secret (if any) mixed into the root KDF.
    fn start_sending_chain<R: CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
    ) -> Result<(), RatchetError> {
        let peer = self.dh_peer.ok_or(RatchetError::Internal)?;
        let dh_self = X25519Secret::random(rng);
        let dh = dh_self
            .diffie_hellman(&peer)
            .ok_or(RatchetError::NonContributoryKey)?;
        let mix = self.pq.take_pending_mix();
        let (rk, ck, nhk) = keys::root(&self.rk, &dh, mix.as_ref().map(|(e, ss)| (*e, ss)));
        let hk = core::mem::replace(&mut self.nhk_send, nhk);
        self.rk = rk;
        self.dh_self_pub = dh_self.public_key();
        self.dh_self = dh_self;
        self.send = Some(SendChain {
            ck,
            hk,
            n: 0,
            mix_epoch: mix.map_or(0, |(e, _)| e),
        });
        Ok(())
    }

    /// Decrypts a message from the peer (a ratchet message, or a repeated
    /// prekey message of this session's handshake). On any error the session
    /// is unchanged.
    pub fn decrypt(
        &mut self,
        bytes: &[u8],
        associated_data: &[u8],
    ) -> Result<Vec<u8>, RatchetError> {
        if bytes.get(1) == Some(&message_type::PREKEY_MESSAGE) {
            let msg = PrekeyMessage::from_bytes(bytes)?;
            if self.role != Role::Responder || msg.header().base_key() != &self.base_key {
                return Err(RatchetError::HandshakeMismatch);
            }
            return self.decrypt_ratchet(msg.payload(), associated_data, Some(msg.header()));
        }
        self.decrypt_ratchet(bytes, associated_data, None)
    }

    fn find_header(&self, parts: &message::Parts<'_>) -> Option<Found> {
        if let Some(c) = &self.recv
            && let Some(h) = open_header(&c.hk, &self.th, parts)
        {
            return Some(Found::Current(h));
        }
        if let Some(h) = open_header(&self.nhk_recv, &self.th, parts) {
            return Some(Found::Next(h));
        }
        self.old
            .iter()
            .enumerate()
            .find_map(|(i, c)| open_header(&c.hk, &self.th, parts).map(|h| Found::Old(i, h)))
    }

    /// `wrapper`: the handshake header the message arrived in, which the
    /// sender bound into the body's associated data (spec §7.7).
    fn decrypt_ratchet(
        &mut self,
        bytes: &[u8],
        associated_data: &[u8],
        wrapper: Option<&HandshakeHeader>,
    ) -> Result<Vec<u8>, RatchetError> {
        let parts = message::split(bytes)?;
        let found = self
            .find_header(&parts)
            .ok_or(RatchetError::UndecryptableHeader)?;
        let (kind, mk) = match found {
            Found::Current(h) => self.stage_in_chain(self.recv.as_ref(), None, &h)?,
            Found::Old(i, h) => self.stage_in_chain(self.old.get(i), Some(i), &h)?,
            Found::Next(h) => self.stage_new_chain(&h)?,
        };
        let mut body = parts.enc_body.to_vec();
        let wrap = wrapper.map(encode_handshake_header);
        let ad = body_ad(&self.th, associated_data, parts.prefix, wrap.as_deref());
        let ak = keys::body_key(&mk, &parts.nonce);
        if !aead::open_single_use(ak.expose(), &ad, &mut body) {
            return Err(RatchetError::AuthenticationFailed);
        }
        let (pq_bytes, plaintext) =
            message::parse_body(&body).ok_or(RatchetError::MalformedPqSection)?;
        let pq = self.pq.stage(pq_bytes)?;
        let plaintext = plaintext.to_vec();
        self.apply(Staged { kind, pq });
        Ok(plaintext)
    }

    /// Keys for a message of an existing chain (`None` index: the current one).
    fn stage_in_chain(
        &self,
        chain: Option<&RecvChain>,
        old_index: Option<usize>,
        h: &Header,
    ) -> Result<(StagedKind, MessageKey), RatchetError> {
        let c = chain.ok_or(RatchetError::Internal)?;
        if h.dh != c.dh {
            return Err(RatchetError::UndecryptableHeader);
        }
        if h.n < c.n {
            return match c.skipped.keys.get(&h.n) {
                Some(k) => Ok((
                    StagedKind::UsedSkipped {
                        chain: old_index,
                        n: h.n,
                    },
                    k.duplicate(),
                )),
                None if h.n < c.skipped.evicted_below => Err(RatchetError::MessageTooOld),
                None => Err(RatchetError::DuplicateMessage),
            };
        }
        if old_index.is_some() {
            // An old chain ended at `c.n` (the PN the peer announced).
            return Err(RatchetError::UndecryptableHeader);
        }
        if h.n - c.n > MAX_SKIP {
            return Err(RatchetError::TooFarAhead);
        }
        let (mut skipped, mk, ck) = advance(&c.ck, c.n, h.n);
        cap_new_skipped(&mut skipped);
        Ok((
            StagedKind::Current {
                ck,
                n: h.n + 1,
                skipped,
            },
            mk,
        ))
    }

    /// Keys for the first message seen of the peer's next chain: finish the
    /// current chain up to `PN`, then a DH ratchet step (spec §7.4).
    fn stage_new_chain(&self, h: &Header) -> Result<(StagedKind, MessageKey), RatchetError> {
        // A responder that has not sent has no ratchet key (only the
        // all-zero placeholder of `responder_from_seed`; a real X25519
        // public key is never all zero). Only a deviating peer opens a new
        // chain before it has seen one of ours.
        if self.dh_self_pub.0 == [0u8; 32] {
            return Err(RatchetError::NewChainBeforeReply);
        }
        let mut retire_skipped = Vec::new();
        if let Some(c) = &self.recv {
            if h.pn < c.n {
                // The peer cannot have ended the chain before messages we saw.
                return Err(RatchetError::UndecryptableHeader);
            }
            if h.pn - c.n > MAX_SKIP {
                return Err(RatchetError::TooFarAhead);
            }
            if h.pn > c.n {
                let (mut s, last, _) = advance(&c.ck, c.n, h.pn - 1);
                s.push((h.pn - 1, last));
                cap_new_skipped(&mut s);
                retire_skipped = s;
            }
        }
        if h.n > MAX_SKIP {
            return Err(RatchetError::TooFarAhead);
        }
        let dh = self
            .dh_self
            .diffie_hellman(&h.dh)
            .ok_or(RatchetError::NonContributoryKey)?;
        let mix = match h.mix_epoch {
            0 => None,
            e => Some((
                e,
                self.pq
                    .outgoing_secret(e)
                    .ok_or(RatchetError::UnknownPqEpoch)?,
            )),
        };
        let (rk, ck, nhk_recv) = keys::root(&self.rk, &dh, mix);
        let (mut new_chain_skipped, mk, ck) = advance(&ck, 0, h.n);
        cap_new_skipped(&mut new_chain_skipped);
        let chain = RecvChain {
            dh: h.dh,
            hk: self.nhk_recv.duplicate(),
            ck,
            n: h.n + 1,
            skipped: Skipped::default(),
        };
        Ok((
            StagedKind::NewChain {
                retire_skipped,
                rk,
                chain,
                nhk_recv,
                new_chain_skipped,
                mixed_epoch: h.mix_epoch,
            },
            mk,
        ))
    }

    /// Commits a staged decryption. Cannot fail.
    fn apply(&mut self, staged: Staged) {
        match staged.kind {
            StagedKind::Current { ck, n, skipped } => {
                if let Some(c) = &mut self.recv {
                    let from = c.n;
                    c.ck = ck;
                    c.n = n;
                    c.skipped.insert_all(skipped, from);
                }
            }
            StagedKind::UsedSkipped { chain, n } => {
                let c = match chain {
                    None => self.recv.as_mut(),
                    Some(i) => self.old.get_mut(i),
                };
                if let Some(c) = c {
                    c.skipped.keys.remove(&n);
                }
            }
            StagedKind::NewChain {
                retire_skipped,
                rk,
                chain,
                nhk_recv,
                new_chain_skipped,
                mixed_epoch,
            } => {
                if let Some(mut c) = self.recv.take() {
                    let from = c.n;
                    c.n = c.n.max(retire_skipped.last().map_or(0, |(i, _)| i + 1));
                    c.skipped.insert_all(retire_skipped, from);
                    self.old.push_back(c);
                    while self.old.len() > MAX_OLD_CHAINS {
                        self.old.pop_front();
                    }
                }
                let mut chain = chain;
                chain.skipped.insert_all(new_chain_skipped, 0);
                self.dh_peer = Some(chain.dh);
                self.recv = Some(chain);
                self.rk = rk;
                self.nhk_recv = nhk_recv;
                self.pn = self.send.as_ref().map_or(0, |s| s.n);
                self.send = None;
                if mixed_epoch != 0 {
                    self.pq.complete_outgoing(mixed_epoch);
                }
            }
        }
        self.enforce_total_bound();
        self.pq.apply(staged.pq);
        // Any authenticated message from the peer proves it has the session.
        self.pending_header = None;
    }

    /// Evicts the oldest skipped keys until at most [`MAX_SKIPPED_KEYS`] remain:
    /// oldest chain first, lowest index first.
    fn enforce_total_bound(&mut self) {
        let mut total = self.skipped_keys_held();
        for c in self.old.iter_mut().chain(self.recv.iter_mut()) {
            while total > MAX_SKIPPED_KEYS && !c.skipped.keys.is_empty() {
                c.skipped.evict_oldest();
                total -= 1;
            }
        }
    }
}

/// Smallest PQ section worth sending on its own: flags, ack, one chunk
/// header and one symbol.
const MIN_USEFUL_PQ: usize = 1 + 4 + 10 + 16;

fn header_ad(th: &[u8; 32]) -> [u8; 34] {
    let mut ad = [0u8; 34];
    ad[0] = crate::wire::WIRE_VERSION;
    ad[1] = message_type::RATCHET_MESSAGE;
    ad[2..].copy_from_slice(th);
    ad
}

/// Body associated data (spec §7.7): `TH ‖ u32(len(AD)) ‖ AD ‖ prefix`,
/// followed by the encoded handshake header when the message travels inside
/// a prekey message, so no header field can be altered in transit.
fn body_ad(th: &[u8; 32], app: &[u8], prefix: &[u8], wrapper: Option<&[u8]>) -> Vec<u8> {
    let wrapper = wrapper.unwrap_or_default();
    let mut ad = Vec::with_capacity(32 + 4 + app.len() + prefix.len() + wrapper.len());
    ad.extend_from_slice(th);
    ad.extend_from_slice(&u32::try_from(app.len()).unwrap_or(u32::MAX).to_be_bytes());
    ad.extend_from_slice(app);
    ad.extend_from_slice(prefix);
    ad.extend_from_slice(wrapper);
    ad
}

/// The handshake header's fields as encoded inside a prekey message (§5.6).
fn encode_handshake_header(h: &HandshakeHeader) -> Vec<u8> {
    let mut w = crate::wire::Writer::start(
        message_type::PREKEY_MESSAGE,
        PrekeyMessage::MIN_ENCODED_LEN + 4,
    );
    h.write(&mut w);
    w.finish()
}

fn open_header(hk: &HeaderKey, th: &[u8; 32], parts: &message::Parts<'_>) -> Option<Header> {
    let mut buf = parts.enc_header.to_vec();
    if !aead::open_x(hk.expose(), &parts.nonce, &header_ad(th), &mut buf) {
        return None;
    }
    debug_assert_eq!(buf.len() + TAG_LEN, parts.enc_header.len());
    Header::decode(&buf)
}
