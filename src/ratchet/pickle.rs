//! Stored sessions (spec §7.10).
//!
//! This module owns the persistent form of a [`Session`]: a versioned,
//! canonical binary encoding held in its own type, [`StoredSession`], which is
//! separate from the live session so the live layout can change without
//! breaking stored blobs. ML-KEM secrets are stored as their 64-byte seeds.
//! A stored session contains every secret of the session; clients either
//! keep it in storage they already encrypt, or encrypt it here under a
//! [`StorageKey`] (XChaCha20-Poly1305, random nonce, labelled associated data).

use super::erasure::SYMBOL_LEN;
use super::error::{RatchetError, StorageError};
use super::pq::{Outgoing, OwnKey, PeerKey, PqState, Reassembly};
use super::{PaddingPolicy, RecvChain, SendChain, Session, Skipped};
use crate::aead::{self, StoredOpenError};
use crate::dh::X25519PublicKey;
use crate::handshake::{HandshakeHeader, Role};
use crate::identity::DevicePublicIdentity;
use crate::kem::{
    MLKEM_CIPHERTEXT_LEN, MLKEM_PUBLIC_KEY_LEN, MlKemCiphertext, MlKemKeyPair, MlKemPublicKey,
};
use crate::secret::{
    ChainKey, HeaderKey, KemCoins, MessageKey, MlKemSeed, RootKey, SharedSecret, StorageKey,
    X25519Secret,
};
use crate::wire::{Reader, WireError, Writer, message_type};
use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;
use core::fmt;
use rand_core::CryptoRng;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Format version of stored sessions written by this library.
pub const STORED_SESSION_VERSION: u8 = 0x01;
/// Object type of a plain stored session.
const TYPE_PLAIN: u8 = message_type::STORED_SESSION;
/// Object type of an encrypted stored session.
const TYPE_ENCRYPTED: u8 = message_type::ENCRYPTED_STORED_SESSION;

/// The persistent form of a session. Contains every secret of the session:
/// zeroized on drop, and its `Debug` prints only its length.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct StoredSession(Vec<u8>);

/// Constant-time equality: the bytes are secret (only the lengths, which
/// are public, may end the comparison early).
impl PartialEq for StoredSession {
    fn eq(&self, other: &Self) -> bool {
        bool::from(subtle::ConstantTimeEq::ct_eq(
            self.0.as_slice(),
            other.0.as_slice(),
        ))
    }
}

impl Eq for StoredSession {}

impl fmt::Debug for StoredSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoredSession({} bytes, <redacted>)", self.0.len())
    }
}

impl StoredSession {
    /// The plain encoding (spec §7.10). Treat it as a secret.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Wraps a plain encoding read back from storage (checked when loaded).
    pub fn from_bytes(bytes: &[u8]) -> Self {
        Self(bytes.to_vec())
    }

    /// Encrypts under `key`: `0x01 ‖ 0x11 ‖ nonce (24) ‖ XChaCha20-Poly1305(key,
    /// nonce, plain, AD = LABEL_STORED_STATE ‖ 0x01 ‖ 0x11)`.
    pub fn encrypt<R: CryptoRng + ?Sized>(&self, rng: &mut R, key: &StorageKey) -> Vec<u8> {
        aead::seal_stored(rng, key, STORED_SESSION_VERSION, TYPE_ENCRYPTED, &self.0)
    }

    /// Decrypts a blob made by [`StoredSession::encrypt`].
    pub fn decrypt(bytes: &[u8], key: &StorageKey) -> Result<Self, StorageError> {
        aead::open_stored(bytes, key, STORED_SESSION_VERSION, TYPE_ENCRYPTED)
            .map(Self)
            .map_err(|e| match e {
                StoredOpenError::UnsupportedVersion(v) => StorageError::UnsupportedVersion(v),
                StoredOpenError::Malformed(e) => StorageError::Malformed(e),
                StoredOpenError::WrongKeyOrTampered => StorageError::WrongKeyOrTampered,
            })
    }
}

fn flag(w: &mut Writer, present: bool) {
    w.u8(u8::from(present));
}

fn read_flag(r: &mut Reader<'_>, field: &'static str) -> Result<bool, WireError> {
    Ok(r.flags(1, field)? == 1)
}

fn write_skipped(w: &mut Writer, s: &Skipped) {
    w.u32(s.evicted_below)
        .u32(u32::try_from(s.keys.len()).unwrap_or(u32::MAX));
    for (i, k) in &s.keys {
        w.u32(*i).bytes(k.expose());
    }
}

fn read_skipped(r: &mut Reader<'_>) -> Result<Skipped, WireError> {
    let evicted_below = r.u32("evicted_below")?;
    let n = r.u32("skipped count")?;
    if usize::try_from(n).map_or(true, |n| n > super::MAX_SKIPPED_KEYS_PER_CHAIN) {
        return Err(WireError::TooLong {
            len: usize::try_from(n).unwrap_or(usize::MAX),
        });
    }
    let mut keys = BTreeMap::new();
    let mut last: Option<u32> = None;
    for _ in 0..n {
        let i = r.u32("skipped index")?;
        // Canonical: strictly increasing indices.
        if last.is_some_and(|l| i <= l) {
            return Err(WireError::InvalidFlags {
                field: "skipped index order",
                flags: 0,
            });
        }
        last = Some(i);
        let mut k = r.array::<32>("skipped key")?;
        keys.insert(i, MessageKey::from_mut_array(&mut k));
    }
    Ok(Skipped {
        keys,
        evicted_below,
    })
}

fn write_recv(w: &mut Writer, c: &RecvChain) {
    w.bytes(c.dh.as_bytes())
        .bytes(c.hk.expose())
        .bytes(c.ck.expose())
        .u32(c.n);
    write_skipped(w, &c.skipped);
}

fn read_recv(r: &mut Reader<'_>) -> Result<RecvChain, WireError> {
    let dh = X25519PublicKey(r.array("chain ratchet key")?);
    let mut hk = r.array::<32>("chain header key")?;
    let mut ck = r.array::<32>("chain key")?;
    let n = r.u32("chain index")?;
    Ok(RecvChain {
        dh,
        hk: HeaderKey::from_mut_array(&mut hk),
        ck: ChainKey::from_mut_array(&mut ck),
        n,
        skipped: read_skipped(r)?,
    })
}

fn write_reassembly(w: &mut Writer, a: &Reassembly) {
    w.u32(a.id)
        .u32(a.target)
        .u16(u16::try_from(a.symbols.len()).unwrap_or(u16::MAX));
    for (i, s) in &a.symbols {
        w.u8(*i).bytes(s);
    }
}

fn read_reassembly(r: &mut Reader<'_>) -> Result<Reassembly, WireError> {
    let id = r.u32("reassembly id")?;
    let target = r.u32("reassembly target")?;
    let n = r.u16("symbol count")?;
    if usize::from(n) > super::erasure::MAX_SYMBOLS {
        return Err(WireError::TooLong {
            len: usize::from(n),
        });
    }
    let mut symbols = Vec::with_capacity(usize::from(n));
    for _ in 0..n {
        let i = r.u8("symbol index")?;
        if symbols.iter().any(|(j, _)| *j == i) {
            return Err(WireError::InvalidFlags {
                field: "duplicate symbol index",
                flags: i,
            });
        }
        symbols.push((i, r.array::<SYMBOL_LEN>("symbol")?));
    }
    Ok(Reassembly {
        id,
        target,
        symbols,
    })
}

fn write_own(w: &mut Writer, k: &OwnKey) {
    w.u32(k.id)
        .bytes(k.keypair.seed().expose())
        .u8(u8::from(k.acked))
        .u8(u8::from(k.used))
        .u8(k.cursor);
}

fn read_own(r: &mut Reader<'_>) -> Result<OwnKey, WireError> {
    let id = r.u32("own key id")?;
    let mut seed = r.array::<64>("own key seed")?;
    let keypair = MlKemKeyPair::from_seed(MlKemSeed::from_mut_array(&mut seed));
    let acked = read_flag(r, "own key acked")?;
    let used = read_flag(r, "own key used")?;
    let cursor = r.u8("own key cursor")?;
    Ok(OwnKey {
        id,
        keypair,
        acked,
        used,
        cursor,
        encoder: None,
    })
}

impl Session {
    /// The persistent form of this session (spec §7.10).
    ///
    /// ```
    /// # use session_ratchet::{identity::DeviceIdentity, prekey::PrekeyStore};
    /// use session_ratchet::ratchet::{Session, StorageKey, StoredSession};
    /// # use rand_chacha::{ChaCha20Rng, rand_core::SeedableRng};
    /// # let mut rng = ChaCha20Rng::from_seed([4; 32]);
    /// # let (alice, bob) = (DeviceIdentity::generate(&mut rng), DeviceIdentity::generate(&mut rng));
    /// # let store = PrekeyStore::new(&mut rng, &bob);
    /// # let bundle = store.bundle(&bob, None, None)?.verify()?;
    /// let session = Session::initiate(&mut rng, &alice, &bundle)?;
    /// let key = StorageKey::generate(&mut rng);
    /// let blob = session.to_stored().encrypt(&mut rng, &key);
    /// let restored = Session::from_stored(&StoredSession::decrypt(&blob, &key)?)?;
    /// assert_eq!(restored.to_stored(), session.to_stored());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn to_stored(&self) -> StoredSession {
        let mut w = Writer::start(TYPE_PLAIN, 2048);
        w.u8(match self.role {
            Role::Initiator => 1,
            Role::Responder => 2,
        });
        w.bytes(&self.th)
            .bytes(&self.local.to_bytes())
            .bytes(&self.remote.to_bytes());
        w.bytes(self.base_key.as_bytes()).bytes(self.rk.expose());
        w.bytes(self.dh_self.expose())
            .bytes(self.dh_self_pub.as_bytes());
        flag(&mut w, self.dh_peer.is_some());
        if let Some(p) = &self.dh_peer {
            w.bytes(p.as_bytes());
        }
        flag(&mut w, self.send.is_some());
        if let Some(s) = &self.send {
            w.bytes(s.ck.expose())
                .bytes(s.hk.expose())
                .u32(s.n)
                .u32(s.mix_epoch);
        }
        w.u32(self.pn).bytes(self.nhk_send.expose());
        flag(&mut w, self.recv.is_some());
        if let Some(c) = &self.recv {
            write_recv(&mut w, c);
        }
        w.bytes(self.nhk_recv.expose());
        w.u8(u8::try_from(self.old.len()).unwrap_or(u8::MAX));
        for c in &self.old {
            write_recv(&mut w, c);
        }
        self.write_pq(&mut w);
        flag(&mut w, self.pending_header.is_some());
        if let Some(h) = &self.pending_header {
            h.write(&mut w);
        }
        w.u16(self.padding.bucket);
        StoredSession(w.finish())
    }

    fn write_pq(&self, w: &mut Writer) {
        let pq = &self.pq;
        for k in [&pq.own, &pq.own_prev] {
            flag(w, k.is_some());
            if let Some(k) = k {
                write_own(w, k);
            }
        }
        w.u32(pq.next_own_id).u8(u8::from(pq.bootstrapped));
        flag(w, pq.peer.is_some());
        if let Some(p) = &pq.peer {
            w.u32(p.id).bytes(p.ek.as_bytes());
        }
        for a in [&pq.peer_rx, &pq.incoming] {
            flag(w, a.is_some());
            if let Some(a) = a {
                write_reassembly(w, a);
            }
        }
        flag(w, pq.outgoing.is_some());
        if let Some(o) = &pq.outgoing {
            // The ciphertext and secret follow from the coins and the target
            // key; they are stored only when the target is no longer the
            // peer key held (saves 1,120 bytes in the usual case).
            w.u32(o.epoch)
                .u32(o.target)
                .bytes(o.coins.expose())
                .u8(o.cursor);
            let recomputable = pq.peer.as_ref().is_some_and(|p| p.id == o.target);
            flag(w, !recomputable);
            if !recomputable {
                w.bytes(o.ct.as_bytes()).bytes(o.ss.expose());
            }
        }
        w.u32(pq.next_epoch);
        flag(w, pq.pending_mix.is_some());
        if let Some((e, t, ss)) = &pq.pending_mix {
            w.u32(*e).u32(*t).bytes(ss.expose());
        }
        w.u32(pq.last_mixed_peer_epoch).u32(pq.idle_streak);
        w.u32(u32::try_from(pq.epochs_mixed >> 32).unwrap_or(0))
            .u32(u32::try_from(pq.epochs_mixed & 0xFFFF_FFFF).unwrap_or(0));
    }

    /// Loads a stored session. A blob from a newer format version, or a
    /// corrupted one, is a [`StorageError`]; nothing is partially loaded.
    pub fn from_stored(stored: &StoredSession) -> Result<Self, RatchetError> {
        let bytes = stored.as_bytes();
        match bytes.first() {
            Some(&v) if v != STORED_SESSION_VERSION => {
                return Err(StorageError::UnsupportedVersion(v).into());
            }
            _ => {}
        }
        Self::read(bytes).map_err(|e| StorageError::Malformed(e).into())
    }

    fn read(bytes: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::start_unbounded(bytes, TYPE_PLAIN)?;
        let role = match r.u8("role")? {
            1 => Role::Initiator,
            2 => Role::Responder,
            f => {
                return Err(WireError::InvalidFlags {
                    field: "role",
                    flags: f,
                });
            }
        };
        let th = r.array::<32>("transcript hash")?;
        let local = DevicePublicIdentity::read(&mut r, "local identity")?;
        let remote = DevicePublicIdentity::read(&mut r, "remote identity")?;
        let base_key = X25519PublicKey(r.array("base key")?);
        let mut rk = r.array::<32>("root key")?;
        let mut dh = r.array::<32>("ratchet secret")?;
        let dh_self_pub = X25519PublicKey(r.array("ratchet public key")?);
        let dh_peer = if read_flag(&mut r, "peer key flag")? {
            Some(X25519PublicKey(r.array("peer key")?))
        } else {
            None
        };
        let send = if read_flag(&mut r, "send flag")? {
            let mut ck = r.array::<32>("send chain key")?;
            let mut hk = r.array::<32>("send header key")?;
            Some(SendChain {
                ck: ChainKey::from_mut_array(&mut ck),
                hk: HeaderKey::from_mut_array(&mut hk),
                n: r.u32("send index")?,
                mix_epoch: r.u32("send mix epoch")?,
            })
        } else {
            None
        };
        let pn = r.u32("pn")?;
        let mut nhk_send = r.array::<32>("next send header key")?;
        let recv = if read_flag(&mut r, "recv flag")? {
            Some(read_recv(&mut r)?)
        } else {
            None
        };
        let mut nhk_recv = r.array::<32>("next recv header key")?;
        let n_old = r.u8("old chain count")?;
        if usize::from(n_old) > super::MAX_OLD_CHAINS {
            return Err(WireError::TooLong {
                len: usize::from(n_old),
            });
        }
        let mut old = VecDeque::new();
        for _ in 0..n_old {
            old.push_back(read_recv(&mut r)?);
        }
        let pq = read_pq(&mut r)?;
        let pending_header = if read_flag(&mut r, "header flag")? {
            Some(HandshakeHeader::read(&mut r)?)
        } else {
            None
        };
        let bucket = r.u16("padding bucket")?;
        if bucket == 0 {
            // `PaddingPolicy` never holds 0 (it would load as 1): reject, so
            // the encoding stays canonical (spec §1.3).
            return Err(WireError::InvalidFlags {
                field: "padding bucket",
                flags: 0,
            });
        }
        let padding = PaddingPolicy::multiple_of(bucket);
        r.finish()?;
        Ok(Self {
            role,
            th,
            local,
            remote,
            base_key,
            rk: RootKey::from_mut_array(&mut rk),
            dh_self: X25519Secret::from_mut_array(&mut dh),
            dh_self_pub,
            dh_peer,
            send,
            pn,
            nhk_send: HeaderKey::from_mut_array(&mut nhk_send),
            recv,
            nhk_recv: HeaderKey::from_mut_array(&mut nhk_recv),
            old,
            pq,
            pending_header,
            padding,
            #[cfg(feature = "hazmat-test-vectors")]
            trace: None,
        })
    }
}

fn read_pq(r: &mut Reader<'_>) -> Result<PqState, WireError> {
    let mut pq = PqState::new();
    pq.own = if read_flag(r, "own key flag")? {
        Some(read_own(r)?)
    } else {
        None
    };
    pq.own_prev = if read_flag(r, "previous key flag")? {
        Some(read_own(r)?)
    } else {
        None
    };
    pq.next_own_id = r.u32("next own key id")?;
    pq.bootstrapped = read_flag(r, "bootstrapped")?;
    pq.peer = if read_flag(r, "peer key flag")? {
        let id = r.u32("peer key id")?;
        let ek = r.slice(MLKEM_PUBLIC_KEY_LEN, "peer key")?;
        Some(PeerKey {
            id,
            ek: MlKemPublicKey::from_bytes(ek)
                .map_err(|_| WireError::InvalidMlKemKey { field: "peer key" })?,
        })
    } else {
        None
    };
    pq.peer_rx = if read_flag(r, "peer rx flag")? {
        Some(read_reassembly(r)?)
    } else {
        None
    };
    pq.incoming = if read_flag(r, "incoming flag")? {
        Some(read_reassembly(r)?)
    } else {
        None
    };
    pq.outgoing = if read_flag(r, "outgoing flag")? {
        let epoch = r.u32("outgoing epoch")?;
        let target = r.u32("outgoing target")?;
        let mut coins = r.array::<32>("outgoing coins")?;
        let coins = KemCoins::from_mut_array(&mut coins);
        let cursor = r.u8("outgoing cursor")?;
        let (ct, ss) = if read_flag(r, "outgoing ciphertext flag")? {
            let ct =
                MlKemCiphertext::from_bytes(r.slice(MLKEM_CIPHERTEXT_LEN, "outgoing ciphertext")?)
                    .map_err(|_| WireError::Truncated {
                        field: "outgoing ciphertext",
                    })?;
            let mut ss = r.array::<32>("outgoing secret")?;
            (ct, SharedSecret::from_mut_array(&mut ss))
        } else {
            // Canonical: the short form only when the target is the peer key held.
            let peer =
                pq.peer
                    .as_ref()
                    .filter(|p| p.id == target)
                    .ok_or(WireError::InvalidFlags {
                        field: "outgoing ciphertext flag",
                        flags: 0,
                    })?;
            crate::kem::encapsulate_deterministic(&peer.ek, coins.expose())
                .map_err(|_| WireError::InvalidMlKemKey { field: "peer key" })?
        };
        Some(Outgoing {
            epoch,
            target,
            coins,
            ct,
            ss,
            cursor,
            encoder: None,
        })
    } else {
        None
    };
    pq.next_epoch = r.u32("next epoch")?;
    pq.pending_mix = if read_flag(r, "pending mix flag")? {
        let e = r.u32("pending epoch")?;
        let t = r.u32("pending target")?;
        let mut ss = r.array::<32>("pending secret")?;
        Some((e, t, SharedSecret::from_mut_array(&mut ss)))
    } else {
        None
    };
    pq.last_mixed_peer_epoch = r.u32("last mixed epoch")?;
    pq.idle_streak = r.u32("idle streak")?;
    let hi = u64::from(r.u32("epochs high")?);
    let lo = u64::from(r.u32("epochs low")?);
    pq.epochs_mixed = (hi << 32) | lo;
    Ok(pq)
}
