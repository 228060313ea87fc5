//! The ML-KEM ratchet: PQ epochs (spec §7.5, §7.6).
//!
//! This module owns the post-quantum half of post-compromise security. Each
//! party publishes a stream of ML-KEM-768 encapsulation keys; the peer
//! encapsulates to the latest one it has; the decapsulator mixes the shared
//! secret into the root KDF at its next DH ratchet step and names the epoch in
//! the (encrypted) header, so the encapsulator mixes the same secret at the
//! same step. Keys and ciphertexts travel as 16-byte erasure-coded symbols
//! ([`super::erasure`]) in the padding slack of ordinary messages.
//!
//! ```text
//!  own key lane (per party)            encapsulation lane (per party)
//!  ────────────────────────            ──────────────────────────────
//!  Generate K(id) ──▶ Sending ──ack──▶ Acked      PeerKey known ──▶ Encapsulate(epoch e)
//!        ▲                               │               │                 │
//!        │                  peer's ct to K mixed        │            Sending ct symbols
//!        └────────── rotate ◀─ Used ◀────┘               │                 │ peer mixes e in
//!                                                        │                 ▼ a header we receive
//!                                                        └──────────── Completed(e) ─▶ next epoch
//!  decapsulator side: ct symbols ──▶ Reassembled ──▶ Decapsulated (pending mix)
//!                       ──▶ mixed at our next sending chain, header names e ──▶ Completed
//! ```
//!
//! Everything here is driven by authenticated messages only; [`PqState::stage`]
//! computes the effect of a received section without changing anything, and
//! [`PqState::apply`] commits it once the whole message has authenticated.

use super::erasure::{self, Encoder, SYMBOL_LEN, Symbol};
use super::error::RatchetError;
use crate::kem::{
    self, MLKEM_CIPHERTEXT_LEN, MLKEM_PUBLIC_KEY_LEN, MlKemCiphertext, MlKemKeyPair, MlKemPublicKey,
};
use crate::secret::{KemCoins, SharedSecret};
use alloc::vec::Vec;
use rand_core::CryptoRng;

/// Symbols in an encapsulation key (1184 / 16).
pub(crate) const KEY_SYMBOLS: usize = MLKEM_PUBLIC_KEY_LEN / SYMBOL_LEN;
/// Symbols in a ciphertext (1088 / 16).
pub(crate) const CT_SYMBOLS: usize = MLKEM_CIPHERTEXT_LEN / SYMBOL_LEN;

const FLAG_ACK: u8 = 0x01;
const FLAG_KEY: u8 = 0x02;
const FLAG_CT: u8 = 0x04;
/// Bytes of a section's flags byte.
const FLAGS_LEN: usize = 1;
/// Bytes of the acknowledgement field.
const ACK_LEN: usize = 4;
/// Bytes before the symbols of a key chunk: key id, first index, count.
const KEY_CHUNK_HEADER: usize = 4 + 1 + 1;
/// Bytes before the symbols of a ciphertext chunk: epoch, target key id, first index, count.
const CT_CHUNK_HEADER: usize = 4 + 4 + 1 + 1;

/// One of our own published KEM keys.
pub(crate) struct OwnKey {
    pub(crate) id: u32,
    pub(crate) keypair: MlKemKeyPair,
    /// The peer said it has the whole key.
    pub(crate) acked: bool,
    /// A peer encapsulation to this key has been mixed: time to rotate.
    pub(crate) used: bool,
    /// Next symbol index to send.
    pub(crate) cursor: u8,
    /// Symbol cache (memory only; rebuilt after loading).
    pub(crate) encoder: Option<Encoder>,
}

/// The peer's latest complete encapsulation key.
pub(crate) struct PeerKey {
    pub(crate) id: u32,
    pub(crate) ek: MlKemPublicKey,
}

/// Our encapsulation for the current epoch, sent until the peer mixes it.
pub(crate) struct Outgoing {
    pub(crate) epoch: u32,
    pub(crate) target: u32,
    /// The encapsulation randomness: with the target key it determines `ct` and `ss`.
    pub(crate) coins: KemCoins,
    pub(crate) ct: MlKemCiphertext,
    pub(crate) ss: SharedSecret,
    pub(crate) cursor: u8,
    /// Symbol cache (memory only; rebuilt after loading).
    pub(crate) encoder: Option<Encoder>,
}

/// Symbols received so far for one object.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) struct Reassembly {
    /// Key id (for keys) or epoch (for ciphertexts).
    pub(crate) id: u32,
    /// Target own key id (ciphertexts only; 0 for keys).
    pub(crate) target: u32,
    pub(crate) symbols: Vec<Symbol>,
}

/// The whole ML-KEM ratchet state of one party.
pub(crate) struct PqState {
    pub(crate) own: Option<OwnKey>,
    pub(crate) own_prev: Option<OwnKey>,
    pub(crate) next_own_id: u32,
    /// Our first key goes out in full in one message (spec §7.6, bootstrap).
    pub(crate) bootstrapped: bool,
    pub(crate) peer: Option<PeerKey>,
    pub(crate) peer_rx: Option<Reassembly>,
    pub(crate) outgoing: Option<Outgoing>,
    pub(crate) next_epoch: u32,
    pub(crate) incoming: Option<Reassembly>,
    /// A decapsulated peer epoch waiting for our next sending chain.
    pub(crate) pending_mix: Option<(u32, u32, SharedSecret)>,
    /// Highest peer epoch we have mixed (older ciphertext chunks are ignored).
    pub(crate) last_mixed_peer_epoch: u32,
    /// Messages sent in a row that carried no PQ symbols.
    pub(crate) idle_streak: u32,
    /// Epochs this party has mixed (as encapsulator or decapsulator).
    pub(crate) epochs_mixed: u64,
    /// Diagnostics since the session was created or loaded (not stored).
    pub(crate) stats: PqStats,
    /// Test-only attacker model: secrets of KEM operations at or after these
    /// ids are unknown to the holder of this state (spec §2.4 experiment).
    #[cfg(test)]
    pub(crate) blind: Option<(u32, u32)>,
}

/// Counters describing the ML-KEM ratchet's traffic, for diagnostics and
/// measurements. They count since the session was created or loaded (they
/// are not part of the stored state).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PqStats {
    /// Messages this side encrypted.
    pub messages_sent: u64,
    /// Bytes of PQ sections this side sent (inside the encrypted body).
    pub section_bytes_sent: u64,
    /// Epochs this side encapsulated that the peer has mixed (completed).
    pub epochs_completed_as_encapsulator: u64,
    /// Own ML-KEM keys generated.
    pub keys_generated: u64,
    /// Peer ciphertexts reassembled and decapsulated.
    pub decapsulations: u64,
    /// Own encapsulations made.
    pub encapsulations: u64,
}

/// What a received PQ section changes, computed without changing anything.
#[derive(Default)]
pub(crate) struct PqUpdate {
    ack_own: Option<u32>,
    peer_rx: Option<Option<Reassembly>>,
    new_peer: Option<PeerKey>,
    incoming: Option<Option<Reassembly>>,
    decapsulated: Option<(u32, u32, SharedSecret)>,
}

/// A parsed chunk of symbols.
struct Chunk<'a> {
    first: u8,
    data: &'a [u8],
}

impl Chunk<'_> {
    fn symbols(&self) -> impl Iterator<Item = Symbol> + '_ {
        self.data.chunks_exact(SYMBOL_LEN).zip(0u8..).map(|(c, i)| {
            let mut s = [0u8; SYMBOL_LEN];
            s.copy_from_slice(c);
            (self.first.wrapping_add(i), s)
        })
    }
}

/// Parsed PQ section.
struct Section<'a> {
    ack: Option<u32>,
    key: Option<(u32, Chunk<'a>)>,
    ct: Option<(u32, u32, Chunk<'a>)>,
}

fn take<'a>(b: &mut &'a [u8], n: usize) -> Result<&'a [u8], RatchetError> {
    let (h, t) = b
        .split_at_checked(n)
        .ok_or(RatchetError::MalformedPqSection)?;
    *b = t;
    Ok(h)
}

fn take_u32(b: &mut &[u8]) -> Result<u32, RatchetError> {
    let s = take(b, 4)?;
    let a: [u8; 4] = s.try_into().map_err(|_| RatchetError::MalformedPqSection)?;
    Ok(u32::from_be_bytes(a))
}

fn take_u8(b: &mut &[u8]) -> Result<u8, RatchetError> {
    take(b, 1)?
        .first()
        .copied()
        .ok_or(RatchetError::MalformedPqSection)
}

fn take_chunk<'a>(b: &mut &'a [u8]) -> Result<Chunk<'a>, RatchetError> {
    let first = take_u8(b)?;
    let count = usize::from(take_u8(b)?);
    if count == 0 {
        return Err(RatchetError::MalformedPqSection);
    }
    let data = take(b, count * SYMBOL_LEN)?;
    Ok(Chunk { first, data })
}

fn parse(mut b: &[u8]) -> Result<Option<Section<'_>>, RatchetError> {
    if b.is_empty() {
        return Ok(None);
    }
    let flags = take_u8(&mut b)?;
    if flags & !(FLAG_ACK | FLAG_KEY | FLAG_CT) != 0 || flags == 0 {
        return Err(RatchetError::MalformedPqSection);
    }
    let ack = if flags & FLAG_ACK != 0 {
        Some(take_u32(&mut b)?)
    } else {
        None
    };
    let key = if flags & FLAG_KEY != 0 {
        let id = take_u32(&mut b)?;
        Some((id, take_chunk(&mut b)?))
    } else {
        None
    };
    let ct = if flags & FLAG_CT != 0 {
        let epoch = take_u32(&mut b)?;
        let target = take_u32(&mut b)?;
        Some((epoch, target, take_chunk(&mut b)?))
    } else {
        None
    };
    if !b.is_empty() {
        return Err(RatchetError::MalformedPqSection);
    }
    Ok(Some(Section { ack, key, ct }))
}

/// Adds symbols to a reassembly, refusing a different value for an index
/// already held (an inconsistent stream).
fn merge(into: &mut Reassembly, symbols: impl Iterator<Item = Symbol>) -> Result<(), RatchetError> {
    for (i, s) in symbols {
        match into.symbols.iter().find(|(j, _)| *j == i) {
            Some((_, old)) if *old != s => return Err(RatchetError::InconsistentPqChunks),
            Some(_) => {}
            None => into.symbols.push((i, s)),
        }
    }
    Ok(())
}

impl PqState {
    pub(crate) fn new() -> Self {
        Self {
            own: None,
            own_prev: None,
            next_own_id: 1,
            bootstrapped: false,
            peer: None,
            peer_rx: None,
            outgoing: None,
            next_epoch: 1,
            incoming: None,
            pending_mix: None,
            last_mixed_peer_epoch: 0,
            idle_streak: 0,
            epochs_mixed: 0,
            stats: PqStats::default(),
            #[cfg(test)]
            blind: None,
        }
    }

    /// Rotations and new encapsulations that need randomness; called at the
    /// start of every `encrypt`.
    pub(crate) fn prepare_send<R: CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
    ) -> Result<(), RatchetError> {
        let rotate = match &self.own {
            None => true,
            Some(k) => k.acked && k.used,
        };
        if rotate {
            let id = self.next_own_id;
            self.next_own_id = id.checked_add(1).ok_or(RatchetError::CounterExhausted)?;
            let new = OwnKey {
                id,
                keypair: MlKemKeyPair::generate(rng),
                acked: false,
                used: false,
                cursor: 0,
                encoder: None,
            };
            self.own_prev = self.own.replace(new);
            self.stats.keys_generated = self.stats.keys_generated.saturating_add(1);
        }
        if self.outgoing.is_none()
            && let Some(peer) = &self.peer
        {
            let epoch = self.next_epoch;
            self.next_epoch = epoch.checked_add(1).ok_or(RatchetError::CounterExhausted)?;
            let coins = KemCoins::random(rng);
            self.stats.encapsulations = self.stats.encapsulations.saturating_add(1);
            let (ct, ss) = kem::encapsulate_deterministic(&peer.ek, coins.expose())
                .map_err(|_| RatchetError::Internal)?;
            #[cfg(test)]
            let ss = self.blinded(ss, self.blind.is_some_and(|(_, e)| epoch >= e));
            self.outgoing = Some(Outgoing {
                epoch,
                target: peer.id,
                coins,
                ct,
                ss,
                cursor: 0,
                encoder: None,
            });
        }
        Ok(())
    }

    #[cfg(test)]
    fn blinded(&self, ss: SharedSecret, blind: bool) -> SharedSecret {
        if blind {
            SharedSecret::from_slice_array(&[0xBB; 32])
        } else {
            ss
        }
    }

    fn key_unacked(&self) -> bool {
        self.own.as_ref().is_some_and(|k| !k.acked)
    }

    /// Whether there is anything besides an acknowledgement to send.
    pub(crate) fn has_symbols_to_send(&self) -> bool {
        self.outgoing.is_some() || self.key_unacked()
    }

    /// Bytes a section needs to carry every remaining symbol of our first key
    /// (the bootstrap message), if the bootstrap is still due.
    pub(crate) fn bootstrap_len(&self) -> Option<usize> {
        if self.bootstrapped || !self.key_unacked() {
            return None;
        }
        Some(FLAGS_LEN + ACK_LEN + KEY_CHUNK_HEADER + KEY_SYMBOLS * SYMBOL_LEN)
    }

    /// Builds a section of at most `capacity` bytes. Room goes to the
    /// acknowledgement first, then ciphertext symbols, then key symbols; the
    /// wire order is flags, ack, key chunk, ciphertext chunk (spec §7.6).
    /// Advances the send cursors.
    pub(crate) fn build(&mut self, capacity: usize) -> Vec<u8> {
        let mut room = capacity.saturating_sub(FLAGS_LEN);
        let mut flags = 0u8;
        let (mut ack, mut key, mut ct) = (Vec::new(), Vec::new(), Vec::new());
        if let Some(p) = self.peer.as_ref().filter(|_| room >= ACK_LEN) {
            flags |= FLAG_ACK;
            room -= ACK_LEN;
            ack.extend_from_slice(&p.id.to_be_bytes());
        }
        // Bootstrap: a side's first key goes out whole, before anything else.
        // Otherwise, when both a ciphertext and an unacknowledged own key are
        // pending, the symbol room is shared (the ciphertext gets the larger
        // half) so neither lane starves; a lone lane takes it all (spec §7.6).
        let key_pending = self.own.as_ref().is_some_and(|k| !k.acked);
        let bootstrap = key_pending && !self.bootstrapped;
        let total = room.saturating_sub(CT_CHUNK_HEADER + KEY_CHUNK_HEADER) / SYMBOL_LEN;
        let (ct_max, key_max) =
            if !bootstrap && self.outgoing.is_some() && key_pending && total >= 2 {
                (total.div_ceil(2), total / 2)
            } else {
                (CT_SYMBOLS, KEY_SYMBOLS)
            };
        if bootstrap {
            self.build_key_chunk(&mut room, &mut flags, &mut key, KEY_SYMBOLS);
        }
        if let Some(o) = &mut self.outgoing {
            let n = (room.saturating_sub(CT_CHUNK_HEADER) / SYMBOL_LEN)
                .min(CT_SYMBOLS)
                .min(ct_max);
            if n > 0 {
                flags |= FLAG_CT;
                room -= CT_CHUNK_HEADER + n * SYMBOL_LEN;
                ct.extend_from_slice(&o.epoch.to_be_bytes());
                ct.extend_from_slice(&o.target.to_be_bytes());
                let enc = o
                    .encoder
                    .get_or_insert_with(|| Encoder::new(o.ct.as_bytes()));
                push_symbols(&mut ct, enc, &mut o.cursor, n);
            }
        }
        if !bootstrap {
            self.build_key_chunk(&mut room, &mut flags, &mut key, key_max);
        }
        let sent_symbols = flags & (FLAG_KEY | FLAG_CT) != 0;
        self.stats.messages_sent = self.stats.messages_sent.saturating_add(1);
        self.idle_streak = if sent_symbols {
            0
        } else {
            self.idle_streak.saturating_add(1)
        };
        if flags == 0 {
            return Vec::new();
        }
        let mut out = Vec::with_capacity(FLAGS_LEN + ack.len() + key.len() + ct.len());
        self.stats.section_bytes_sent = self
            .stats
            .section_bytes_sent
            .saturating_add((FLAGS_LEN + ack.len() + key.len() + ct.len()) as u64);
        out.push(flags);
        out.extend_from_slice(&ack);
        out.extend_from_slice(&key);
        out.extend_from_slice(&ct);
        out
    }

    /// Adds a chunk of the unacknowledged own key, if any and if it fits.
    fn build_key_chunk(&mut self, room: &mut usize, flags: &mut u8, key: &mut Vec<u8>, max: usize) {
        if let Some(k) = self.own.as_mut().filter(|k| !k.acked) {
            let n = (room.saturating_sub(KEY_CHUNK_HEADER) / SYMBOL_LEN)
                .min(KEY_SYMBOLS)
                .min(max);
            if n > 0 {
                *flags |= FLAG_KEY;
                *room -= KEY_CHUNK_HEADER + n * SYMBOL_LEN;
                key.extend_from_slice(&k.id.to_be_bytes());
                let enc = k
                    .encoder
                    .get_or_insert_with(|| Encoder::new(k.keypair.public_key().as_bytes()));
                push_symbols(key, enc, &mut k.cursor, n);
                if n >= KEY_SYMBOLS {
                    self.bootstrapped = true;
                }
            }
        }
    }

    /// Computes the effect of a received section. Changes nothing.
    pub(crate) fn stage(&self, bytes: &[u8]) -> Result<PqUpdate, RatchetError> {
        let mut up = PqUpdate::default();
        let Some(sec) = parse(bytes)? else {
            return Ok(up);
        };
        if let Some(id) = sec.ack
            && self.own.as_ref().is_some_and(|k| k.id == id)
        {
            up.ack_own = Some(id);
        }
        if let Some((id, chunk)) = sec.key {
            let have = self.peer.as_ref().map_or(0, |p| p.id);
            if id > have {
                let mut rx = match &self.peer_rx {
                    Some(r) if r.id == id => r.clone(),
                    Some(r) if r.id > id => return Ok(up), // older key still in flight: ignore
                    _ => Reassembly {
                        id,
                        target: 0,
                        symbols: Vec::new(),
                    },
                };
                merge(&mut rx, chunk.symbols())?;
                if rx.symbols.len() >= KEY_SYMBOLS {
                    let bytes = erasure::decode(KEY_SYMBOLS, &rx.symbols)
                        .ok_or(RatchetError::InconsistentPqChunks)?;
                    let ek = MlKemPublicKey::from_bytes(&bytes)
                        .map_err(|_| RatchetError::InvalidPqKey)?;
                    up.new_peer = Some(PeerKey { id, ek });
                    up.peer_rx = Some(None);
                } else {
                    up.peer_rx = Some(Some(rx));
                }
            }
        }
        if let Some((epoch, target, chunk)) = sec.ct {
            let pending = self.pending_mix.as_ref().map_or(0, |(e, _, _)| *e);
            if epoch > self.last_mixed_peer_epoch && epoch > pending {
                let mut rx = match &self.incoming {
                    Some(r) if r.id == epoch => {
                        if r.target != target {
                            return Err(RatchetError::InconsistentPqChunks);
                        }
                        r.clone()
                    }
                    Some(r) if r.id > epoch => return Ok(up),
                    _ => Reassembly {
                        id: epoch,
                        target,
                        symbols: Vec::new(),
                    },
                };
                merge(&mut rx, chunk.symbols())?;
                if rx.symbols.len() >= CT_SYMBOLS {
                    let bytes = erasure::decode(CT_SYMBOLS, &rx.symbols)
                        .ok_or(RatchetError::InconsistentPqChunks)?;
                    let ct = MlKemCiphertext::from_bytes(&bytes)
                        .map_err(|_| RatchetError::MalformedPqSection)?;
                    let key = [self.own.as_ref(), self.own_prev.as_ref()]
                        .into_iter()
                        .flatten()
                        .find(|k| k.id == target);
                    // A ciphertext to a key we no longer hold is stale: drop it.
                    if let Some(k) = key {
                        let ss = k.keypair.decapsulate(&ct);
                        #[cfg(test)]
                        let ss = self.blinded(ss, self.blind.is_some_and(|(kid, _)| k.id >= kid));
                        up.decapsulated = Some((epoch, target, ss));
                    }
                    up.incoming = Some(None);
                } else {
                    up.incoming = Some(Some(rx));
                }
            }
        }
        Ok(up)
    }

    /// Commits a staged update.
    pub(crate) fn apply(&mut self, up: PqUpdate) {
        if let (Some(id), Some(k)) = (up.ack_own, self.own.as_mut())
            && k.id == id
        {
            k.acked = true;
            self.bootstrapped = true;
        }
        if let Some(rx) = up.peer_rx {
            self.peer_rx = rx;
        }
        if let Some(p) = up.new_peer {
            self.peer = Some(p);
        }
        if let Some(rx) = up.incoming {
            self.incoming = rx;
        }
        if let Some(d) = up.decapsulated {
            self.pending_mix = Some(d);
            self.stats.decapsulations = self.stats.decapsulations.saturating_add(1);
        }
    }

    /// The secret of our own encapsulation `epoch`, which the peer says it mixed.
    pub(crate) fn outgoing_secret(&self, epoch: u32) -> Option<&SharedSecret> {
        self.outgoing
            .as_ref()
            .filter(|o| o.epoch == epoch)
            .map(|o| &o.ss)
    }

    /// The peer mixed our epoch: it is complete.
    pub(crate) fn complete_outgoing(&mut self, epoch: u32) {
        if self.outgoing.as_ref().is_some_and(|o| o.epoch == epoch) {
            self.outgoing = None;
            self.epochs_mixed = self.epochs_mixed.saturating_add(1);
            self.stats.epochs_completed_as_encapsulator = self
                .stats
                .epochs_completed_as_encapsulator
                .saturating_add(1);
        }
    }

    /// Takes the decapsulated secret to mix into our new sending chain.
    pub(crate) fn take_pending_mix(&mut self) -> Option<(u32, SharedSecret)> {
        let (epoch, target, ss) = self.pending_mix.take()?;
        self.last_mixed_peer_epoch = epoch;
        self.epochs_mixed = self.epochs_mixed.saturating_add(1);
        for k in [self.own.as_mut(), self.own_prev.as_mut()]
            .into_iter()
            .flatten()
        {
            if k.id == target {
                k.used = true;
            }
        }
        Some((epoch, ss))
    }
}

/// Appends `first || count || symbols`; `n` is at most [`KEY_SYMBOLS`] (74).
fn push_symbols(out: &mut Vec<u8>, enc: &mut Encoder, cursor: &mut u8, n: usize) {
    out.push(*cursor);
    out.push(u8::try_from(n).unwrap_or(u8::MAX));
    for _ in 0..n {
        out.extend_from_slice(&enc.symbol(*cursor));
        *cursor = cursor.wrapping_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    /// Two PQ states exchanging sections directly (no ratchet): keys and
    /// ciphertexts arrive, and the two sides end with the same secret.
    #[test]
    fn sections_carry_keys_and_ciphertexts() {
        let mut rng = ChaCha20Rng::from_seed([1; 32]);
        let (mut a, mut b) = (PqState::new(), PqState::new());
        for _ in 0..40 {
            a.prepare_send(&mut rng).unwrap();
            let s = a.build(200);
            let up = b.stage(&s).unwrap();
            b.apply(up);
            b.prepare_send(&mut rng).unwrap();
            let s = b.build(200);
            let up = a.stage(&s).unwrap();
            a.apply(up);
            if let Some((e, ss)) = a.take_pending_mix() {
                assert!(
                    b.outgoing_secret(e).unwrap() == &ss,
                    "both sides hold the same epoch secret"
                );
                return;
            }
            if let Some((e, ss)) = b.take_pending_mix() {
                assert!(
                    a.outgoing_secret(e).unwrap() == &ss,
                    "both sides hold the same epoch secret"
                );
                return;
            }
        }
        panic!("no epoch completed in 40 rounds");
    }

    #[test]
    fn malformed_sections_are_rejected() {
        let s = PqState::new();
        for bad in [
            &[0u8][..],
            &[0x08],
            &[0x01, 0, 0],
            &[0x02, 0, 0, 0, 1, 0, 0],
            &[0x02, 0, 0, 0, 1, 0, 1, 9],
        ] {
            assert_eq!(
                s.stage(bad).err(),
                Some(RatchetError::MalformedPqSection),
                "{bad:?}"
            );
        }
        assert!(s.stage(&[]).is_ok());
    }

    #[test]
    fn conflicting_symbol_is_rejected_without_change() {
        let mut rng = ChaCha20Rng::from_seed([2; 32]);
        let mut a = PqState::new();
        a.prepare_send(&mut rng).unwrap();
        let s1 = a.build(FLAGS_LEN + KEY_CHUNK_HEADER + 2 * SYMBOL_LEN);
        let mut b = PqState::new();
        let up = b.stage(&s1).unwrap();
        b.apply(up);
        let before = b.peer_rx.clone();
        let mut s2 = s1.clone();
        let last = s2.len() - 1;
        s2[last] ^= 1;
        assert_eq!(b.stage(&s2).err(), Some(RatchetError::InconsistentPqChunks));
        assert_eq!(b.peer_rx, before);
    }

    /// Runs `a` and `b` until `b` holds a ciphertext for `a` (and `a` has an
    /// acknowledged key).
    fn until_outgoing(rng: &mut ChaCha20Rng) -> (PqState, PqState) {
        let (mut a, mut b) = (PqState::new(), PqState::new());
        for _ in 0..40 {
            a.prepare_send(rng).unwrap();
            let up = b.stage(&a.build(2000)).unwrap();
            b.apply(up);
            b.prepare_send(rng).unwrap();
            if b.outgoing.is_some() {
                // As if b had already sent its first key whole: its next
                // section follows the ordinary rules, not the bootstrap.
                b.bootstrapped = true;
                return (a, b);
            }
            let up = a.stage(&b.build(2000)).unwrap();
            a.apply(up);
        }
        panic!("no ciphertext in 40 rounds");
    }

    /// A section never exceeds the capacity it is built for (the chunk
    /// header lengths used for the budget match what is written).
    #[test]
    fn sections_fit_their_capacity() {
        // The same deterministic pair for every capacity (states are not Clone).
        let fixture = || {
            let mut rng = ChaCha20Rng::from_seed([4; 32]);
            let (mut a, b) = until_outgoing(&mut rng);
            a.prepare_send(&mut rng).unwrap();
            (a, b)
        };
        for cap in (0..400).step_by(3).chain([1000, 2000]) {
            let (mut a, mut b) = fixture();
            for st in [&mut a, &mut b] {
                let s = st.build(cap);
                assert!(
                    s.len() <= cap,
                    "section of {} bytes for capacity {cap}",
                    s.len()
                );
            }
        }
        // Exactly one ciphertext chunk with one symbol fits its own header.
        let one = FLAGS_LEN + ACK_LEN + CT_CHUNK_HEADER + SYMBOL_LEN;
        assert_eq!(fixture().1.build(one).len(), one);
        let s = fixture().1.build(one - 1);
        assert!(
            s.len() < one && s[0] & FLAG_CT == 0,
            "no room for a ciphertext chunk"
        );
    }

    /// Once the peer acknowledged our key and no ciphertext is pending,
    /// there is nothing but an acknowledgement to send.
    #[test]
    fn acknowledged_key_leaves_nothing_to_send() {
        let mut rng = ChaCha20Rng::from_seed([5; 32]);
        let (mut a, mut b) = (PqState::new(), PqState::new());
        a.prepare_send(&mut rng).unwrap();
        assert!(a.has_symbols_to_send());
        let up = b.stage(&a.build(2000)).unwrap();
        b.apply(up);
        let up = a.stage(&b.build(100)).unwrap();
        a.apply(up);
        assert!(a.own.as_ref().unwrap().acked);
        assert!(a.outgoing.is_none());
        assert!(!a.has_symbols_to_send());
        assert_eq!(a.bootstrap_len(), None);
    }

    /// A chunk of a newer key replaces an older partial reassembly; a chunk
    /// of an older key never replaces a newer one. The same for ciphertexts.
    #[test]
    fn newer_objects_replace_older_partial_ones_never_the_reverse() {
        let mut rng = ChaCha20Rng::from_seed([6; 32]);
        let mut a = PqState::new();
        a.prepare_send(&mut rng).unwrap();
        let id = a.own.as_ref().unwrap().id;
        let key_section = a.build(FLAGS_LEN + KEY_CHUNK_HEADER + 2 * SYMBOL_LEN);
        let partial = |id| Reassembly {
            id,
            target: 0,
            symbols: Vec::new(),
        };

        let mut older = PqState::new();
        older.peer_rx = Some(partial(id - 1));
        let up = older.stage(&key_section).unwrap();
        assert!(matches!(&up.peer_rx, Some(Some(r)) if r.id == id && r.symbols.len() == 2));

        let mut newer = PqState::new();
        newer.peer_rx = Some(partial(id + 1));
        let up = newer.stage(&key_section).unwrap();
        assert!(up.peer_rx.is_none(), "an older key's chunk was not ignored");

        let (_, mut b) = until_outgoing(&mut rng);
        let (epoch, target) = b.outgoing.as_ref().map(|o| (o.epoch, o.target)).unwrap();
        let ct_section = b.build(FLAGS_LEN + ACK_LEN + CT_CHUNK_HEADER + 2 * SYMBOL_LEN);
        let mut newer = PqState::new();
        newer.incoming = Some(Reassembly {
            id: epoch + 1,
            target,
            symbols: Vec::new(),
        });
        let up = newer.stage(&ct_section).unwrap();
        assert!(
            up.incoming.is_none(),
            "an older epoch's chunk was not ignored"
        );
        let mut older = PqState::new();
        older.incoming = Some(Reassembly {
            id: epoch - 1,
            target,
            symbols: Vec::new(),
        });
        let up = older.stage(&ct_section).unwrap();
        assert!(matches!(&up.incoming, Some(Some(r)) if r.id == epoch));
    }

    /// The bootstrap section carries the whole first key in one message and
    /// asks for no more room than that needs.
    #[test]
    fn bootstrap_carries_the_whole_key_in_minimal_room() {
        let mut rng = ChaCha20Rng::from_seed([7; 32]);
        let mut a = PqState::new();
        a.prepare_send(&mut rng).unwrap();
        let need = a.bootstrap_len().unwrap();
        assert!(need <= FLAGS_LEN + ACK_LEN + KEY_CHUNK_HEADER + MLKEM_PUBLIC_KEY_LEN);
        let s = a.build(need);
        assert!(s.len() <= need);
        let up = PqState::new().stage(&s).unwrap();
        assert!(up.new_peer.is_some(), "the whole key arrived");
        assert_eq!(a.bootstrap_len(), None, "bootstrap done");
    }

    /// A chunk received twice (a retransmission) is accepted and changes
    /// nothing; only a different value for a held index is inconsistent.
    #[test]
    fn repeated_identical_chunk_is_accepted() {
        let mut rng = ChaCha20Rng::from_seed([8; 32]);
        let mut a = PqState::new();
        a.prepare_send(&mut rng).unwrap();
        let s1 = a.build(FLAGS_LEN + KEY_CHUNK_HEADER + 3 * SYMBOL_LEN);
        let mut b = PqState::new();
        let up = b.stage(&s1).unwrap();
        b.apply(up);
        let held = b.peer_rx.clone();
        let up = b.stage(&s1).unwrap();
        b.apply(up);
        assert_eq!(b.peer_rx, held);
    }
}
