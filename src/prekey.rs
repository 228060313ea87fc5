//! Prekeys, prekey bundles and the private prekey store (spec §4.3–§4.5).
//!
//! This module owns what a device publishes so that others can start a
//! session with it while it is offline, and the private half it keeps:
//!
//! - a signed X25519 prekey (medium-term, rotated by the client);
//! - a signed ML-KEM-768 **last-resort** prekey (used when no one-time PQ
//!   prekey is left);
//! - optional one-time X25519 prekeys (unsigned, as in X3DH/PQXDH: a
//!   substituted one only weakens forward secrecy of that first flight) and
//!   one-time ML-KEM-768 prekeys (signed: a KEM key carries no authentication
//!   of its own).
//!
//! The [`PrekeyStore`] hands out each one-time prekey's secret exactly once
//! and remembers, per last-resort PQ prekey, which initiator base keys it has
//! already accepted, so a replayed first message is detected. Its persistent
//! form is [`StoredPrekeys`] (spec §4.6).

use crate::dh::X25519PublicKey;
use crate::identity::{DeviceIdentity, DevicePublicIdentity, IdentityError, SIGNATURE_LEN};
use crate::kdf::label;
use crate::kem::{MLKEM_PUBLIC_KEY_LEN, MlKemKeyPair, MlKemPublicKey};
use crate::secret::X25519Secret;
use crate::wire::{self, Reader, WireError, Writer, message_type};
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;
use core::fmt;
use rand_core::CryptoRng;

mod stored;

pub use stored::{MAX_STORED_PREKEYS_LEN, StoredPrekeys};

/// Signed prekeys kept at once (the current one and two predecessors, so
/// first messages sent to a just-rotated key still decrypt).
pub const MAX_SIGNED_PREKEYS: usize = 3;
/// Last-resort ML-KEM prekeys kept at once (current plus two predecessors).
pub const MAX_LAST_RESORT_PREKEYS: usize = 3;
/// One-time prekeys of each kind held at once.
pub const MAX_ONE_TIME_PREKEYS: usize = 1_000;
/// Prekey ids skipped by [`PrekeyStore::restart_after_restore`] (2^20).
pub const RESTORE_ID_JUMP: PrekeyId = 1 << 20;
/// Initiator base keys remembered per last-resort prekey for replay
/// detection. When full, handshakes with that key fail with
/// [`crate::handshake::HandshakeError::LastResortPrekeyExhausted`] until the
/// client rotates it: refusing is safe, forgetting would allow replays.
pub const MAX_BASE_KEYS_PER_LAST_RESORT: usize = 4_096;

/// Signature type tags (spec §4.3, §6.4): distinct for every kind of signed
/// key, so a signature over one kind never verifies as another.
mod type_tag {
    pub(super) const SIGNED_PREKEY: u8 = 0x01;
    pub(super) const LAST_RESORT_KEM_PREKEY: u8 = 0x02;
    pub(super) const ONE_TIME_KEM_PREKEY: u8 = 0x03;
}

/// Identifies one prekey of a device. Ids are assigned by the store from one
/// counter, so no two prekeys of a device share an id, whatever their kind.
pub type PrekeyId = u32;

/// Errors from prekey bundles and the prekey store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PrekeyError {
    /// A prekey signature in a bundle does not verify under the bundle's
    /// identity key: the bundle was tampered with or forged. Do not use it.
    InvalidSignature {
        /// Which prekey's signature failed.
        prekey: &'static str,
    },
    /// The bundle's identity is not the one expected for this device (for
    /// example, not the one in the account's device list).
    IdentityMismatch,
    /// The store already holds [`MAX_ONE_TIME_PREKEYS`] of this kind.
    TooManyOneTimePrekeys {
        /// How many more could be added now.
        room: usize,
    },
    /// The store's prekey id counter is exhausted (after 2³² − 1 prekeys);
    /// create a new device identity.
    IdsExhausted,
    /// The store has no unused one-time prekey with this id.
    UnknownPrekey {
        /// The id asked for.
        id: PrekeyId,
    },
    /// A stored prekey store (spec §4.6) has a format version this library
    /// does not know: it was written by a newer version. Upgrade the library
    /// before loading it; do not discard it.
    UnsupportedStoreVersion {
        /// The version byte found.
        version: u8,
    },
    /// A stored prekey store is truncated or corrupted; nothing was loaded.
    /// Restore it from a backup, or create a new store and publish its bundle
    /// (first messages sent to the old prekeys can then no longer be read).
    CorruptedStore {
        /// Which field is wrong, and how.
        error: WireError,
    },
    /// The storage key does not open the encrypted prekey store, or the blob
    /// was altered. Check that the right key is used.
    WrongKeyOrTampered,
}

impl fmt::Display for PrekeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidSignature { prekey } => {
                write!(
                    f,
                    "the {prekey} signature in the bundle does not verify; discard the bundle"
                )
            }
            Self::IdentityMismatch => {
                f.write_str("the bundle belongs to a different device identity than expected")
            }
            Self::TooManyOneTimePrekeys { room } => write!(
                f,
                "one-time prekey limit of {MAX_ONE_TIME_PREKEYS} reached; at most {room} more can be added"
            ),
            Self::IdsExhausted => f.write_str("prekey ids exhausted; create a new device identity"),
            Self::UnknownPrekey { id } => write!(f, "no unused one-time prekey with id {id}"),
            Self::UnsupportedStoreVersion { version } => write!(
                f,
                "stored prekey store has format version {version:#04x}, newer than this library supports; upgrade the library and keep the blob"
            ),
            Self::CorruptedStore { error } => write!(
                f,
                "stored prekey store is corrupted ({error}); nothing was loaded: restore a backup or create and publish new prekeys"
            ),
            Self::WrongKeyOrTampered => f.write_str(
                "wrong storage key, or the encrypted prekey store was altered; nothing was loaded",
            ),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for PrekeyError {}

fn prekey_signature_input(
    type_tag: u8,
    identity: &DevicePublicIdentity,
    id: PrekeyId,
    key: &[u8],
) -> Vec<u8> {
    wire::signature_input(
        label::PREKEY_SIGNATURE,
        type_tag,
        &[identity.dh_key().as_bytes(), &id.to_be_bytes(), key],
    )
}

/// A signed X25519 prekey as published.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SignedPrekey {
    id: PrekeyId,
    key: X25519PublicKey,
    signature: [u8; SIGNATURE_LEN],
}

impl SignedPrekey {
    /// The prekey id.
    pub fn id(&self) -> PrekeyId {
        self.id
    }
    /// The public key.
    pub fn key(&self) -> &X25519PublicKey {
        &self.key
    }
    fn verify(&self, identity: &DevicePublicIdentity) -> Result<(), IdentityError> {
        let msg = prekey_signature_input(
            type_tag::SIGNED_PREKEY,
            identity,
            self.id,
            self.key.as_bytes(),
        );
        identity.signing_key().verify(&msg, &self.signature)
    }
}

/// Whether a PQ prekey is the reusable last-resort key or a one-time key.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum KemPrekeyKind {
    /// Reused until rotated; replays are caught by base-key tracking.
    LastResort,
    /// Used once, then deleted.
    OneTime,
}

impl KemPrekeyKind {
    fn type_tag(self) -> u8 {
        match self {
            Self::LastResort => type_tag::LAST_RESORT_KEM_PREKEY,
            Self::OneTime => type_tag::ONE_TIME_KEM_PREKEY,
        }
    }
}

/// A signed ML-KEM-768 prekey as published.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SignedKemPrekey {
    kind: KemPrekeyKind,
    id: PrekeyId,
    key: MlKemPublicKey,
    signature: [u8; SIGNATURE_LEN],
}

impl SignedKemPrekey {
    /// Last resort or one-time.
    pub fn kind(&self) -> KemPrekeyKind {
        self.kind
    }
    /// The prekey id.
    pub fn id(&self) -> PrekeyId {
        self.id
    }
    /// The encapsulation key (already checked per FIPS 203 §7.2).
    pub fn key(&self) -> &MlKemPublicKey {
        &self.key
    }
    fn verify(&self, identity: &DevicePublicIdentity) -> Result<(), IdentityError> {
        let msg =
            prekey_signature_input(self.kind.type_tag(), identity, self.id, self.key.as_bytes());
        identity.signing_key().verify(&msg, &self.signature)
    }
}

/// An unsigned one-time X25519 prekey as published.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct OneTimePrekey {
    id: PrekeyId,
    key: X25519PublicKey,
}

impl OneTimePrekey {
    /// The prekey id.
    pub fn id(&self) -> PrekeyId {
        self.id
    }
    /// The public key.
    pub fn key(&self) -> &X25519PublicKey {
        &self.key
    }
}

/// What an initiator fetches for one device: its identity, signed prekey,
/// last-resort PQ prekey, and at most one one-time prekey of each kind.
///
/// A decoded bundle is untrusted until [`PrekeyBundle::verify`] (or
/// [`PrekeyBundle::verify_for`]) turns it into a [`VerifiedBundle`], the only
/// form the handshake accepts.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PrekeyBundle {
    identity: DevicePublicIdentity,
    signed_prekey: SignedPrekey,
    last_resort: SignedKemPrekey,
    one_time: Option<OneTimePrekey>,
    one_time_kem: Option<SignedKemPrekey>,
}

const FLAG_ONE_TIME: u8 = 0b01;
const FLAG_ONE_TIME_KEM: u8 = 0b10;

impl PrekeyBundle {
    /// The device identity the bundle claims.
    pub fn identity(&self) -> &DevicePublicIdentity {
        &self.identity
    }

    /// Checks every signature against the bundle's own identity key.
    ///
    /// This proves the prekeys belong to that identity, not that the identity
    /// is the one you meant: use [`PrekeyBundle::verify_for`] with the identity
    /// from the peer's verified device list whenever you have it.
    pub fn verify(self) -> Result<VerifiedBundle, PrekeyError> {
        let id = &self.identity;
        self.signed_prekey
            .verify(id)
            .map_err(|_| PrekeyError::InvalidSignature {
                prekey: "signed prekey",
            })?;
        self.last_resort
            .verify(id)
            .map_err(|_| PrekeyError::InvalidSignature {
                prekey: "last-resort ML-KEM prekey",
            })?;
        if let Some(k) = &self.one_time_kem {
            k.verify(id).map_err(|_| PrekeyError::InvalidSignature {
                prekey: "one-time ML-KEM prekey",
            })?;
        }
        Ok(VerifiedBundle(self))
    }

    /// [`PrekeyBundle::verify`], and also requires the bundle's identity to be `expected`.
    pub fn verify_for(
        self,
        expected: &DevicePublicIdentity,
    ) -> Result<VerifiedBundle, PrekeyError> {
        if &self.identity != expected {
            return Err(PrekeyError::IdentityMismatch);
        }
        self.verify()
    }

    /// Canonical encoding (spec §4.4).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::start(
            message_type::PREKEY_BUNDLE,
            2 + 64 + 100 + 2 * 1252 + 1 + 36,
        );
        w.bytes(&self.identity.to_bytes());
        w.u32(self.signed_prekey.id)
            .bytes(self.signed_prekey.key.as_bytes())
            .bytes(&self.signed_prekey.signature);
        write_kem(&mut w, &self.last_resort);
        let flags = if self.one_time.is_some() {
            FLAG_ONE_TIME
        } else {
            0
        } | if self.one_time_kem.is_some() {
            FLAG_ONE_TIME_KEM
        } else {
            0
        };
        w.u8(flags);
        if let Some(otp) = &self.one_time {
            w.u32(otp.id).bytes(otp.key.as_bytes());
        }
        if let Some(k) = &self.one_time_kem {
            write_kem(&mut w, k);
        }
        w.finish()
    }

    /// Decodes a bundle. Checks syntax and key validity (including the FIPS
    /// 203 check of every ML-KEM key), not signatures.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::start(bytes, message_type::PREKEY_BUNDLE)?;
        let identity = DevicePublicIdentity::read(&mut r, "identity")?;
        let signed_prekey = SignedPrekey {
            id: r.u32("signed prekey id")?,
            key: X25519PublicKey(r.array("signed prekey")?),
            signature: r.array("signed prekey signature")?,
        };
        let last_resort = read_kem(
            &mut r,
            KemPrekeyKind::LastResort,
            "last-resort ML-KEM prekey",
        )?;
        let flags = r.flags(FLAG_ONE_TIME | FLAG_ONE_TIME_KEM, "bundle flags")?;
        let one_time = if flags & FLAG_ONE_TIME != 0 {
            Some(OneTimePrekey {
                id: r.u32("one-time prekey id")?,
                key: X25519PublicKey(r.array("one-time prekey")?),
            })
        } else {
            None
        };
        let one_time_kem = if flags & FLAG_ONE_TIME_KEM != 0 {
            Some(read_kem(
                &mut r,
                KemPrekeyKind::OneTime,
                "one-time ML-KEM prekey",
            )?)
        } else {
            None
        };
        r.finish()?;
        Ok(Self {
            identity,
            signed_prekey,
            last_resort,
            one_time,
            one_time_kem,
        })
    }
}

fn write_kem(w: &mut Writer, k: &SignedKemPrekey) {
    w.u32(k.id).bytes(k.key.as_bytes()).bytes(&k.signature);
}

fn read_kem(
    r: &mut Reader<'_>,
    kind: KemPrekeyKind,
    field: &'static str,
) -> Result<SignedKemPrekey, WireError> {
    let id = r.u32(field)?;
    let key = r.slice(MLKEM_PUBLIC_KEY_LEN, field)?;
    let key = MlKemPublicKey::from_bytes(key).map_err(|_| WireError::InvalidMlKemKey { field })?;
    let signature = r.array(field)?;
    Ok(SignedKemPrekey {
        kind,
        id,
        key,
        signature,
    })
}

/// A bundle whose signatures have been checked. Only [`PrekeyBundle::verify`]
/// and [`PrekeyBundle::verify_for`] create one.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct VerifiedBundle(PrekeyBundle);

impl VerifiedBundle {
    /// The device identity.
    pub fn identity(&self) -> &DevicePublicIdentity {
        &self.0.identity
    }
    /// The signed X25519 prekey.
    pub fn signed_prekey(&self) -> &SignedPrekey {
        &self.0.signed_prekey
    }
    /// The one-time X25519 prekey, if the server had one left.
    pub fn one_time_prekey(&self) -> Option<&OneTimePrekey> {
        self.0.one_time.as_ref()
    }
    /// The PQ prekey a handshake uses: the one-time key if offered, else the last-resort key.
    pub fn kem_prekey(&self) -> &SignedKemPrekey {
        self.0.one_time_kem.as_ref().unwrap_or(&self.0.last_resort)
    }
    /// The bundle as decoded.
    pub fn bundle(&self) -> &PrekeyBundle {
        &self.0
    }
}

/// A signed prekey's private half.
pub(crate) struct StoredSignedPrekey {
    pub(crate) public: SignedPrekey,
    pub(crate) secret: X25519Secret,
}

/// A PQ prekey's private half; for last-resort keys, the base keys seen
/// (public values; a set, so membership is all that is kept).
pub(crate) struct StoredKemPrekey {
    pub(crate) public: SignedKemPrekey,
    pub(crate) keypair: MlKemKeyPair,
    pub(crate) seen_base_keys: BTreeSet<[u8; 32]>,
}

/// The private side of a device's prekeys.
///
/// It is the only holder of prekey secrets. One-time secrets leave it only
/// through a committed handshake ([`crate::handshake::PendingResponse::commit`]),
/// which deletes them, so each is used at most once.
pub struct PrekeyStore {
    signed: Vec<StoredSignedPrekey>,
    last_resort: Vec<StoredKemPrekey>,
    one_time: BTreeMap<PrekeyId, (OneTimePrekey, X25519Secret)>,
    one_time_kem: BTreeMap<PrekeyId, StoredKemPrekey>,
    next_id: PrekeyId,
}

impl fmt::Debug for PrekeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrekeyStore")
            .field("signed_prekeys", &self.signed.len())
            .field("last_resort_prekeys", &self.last_resort.len())
            .field("one_time_prekeys", &self.one_time.len())
            .field("one_time_kem_prekeys", &self.one_time_kem.len())
            .field("next_id", &self.next_id)
            .finish()
    }
}

impl PrekeyStore {
    /// A store with one signed prekey and one last-resort ML-KEM prekey.
    ///
    /// ```
    /// use session_ratchet::{identity::DeviceIdentity, prekey::PrekeyStore};
    /// # use rand_chacha::{ChaCha20Rng, rand_core::SeedableRng};
    /// let mut rng = ChaCha20Rng::from_seed([0; 32]);
    /// let bob = DeviceIdentity::generate(&mut rng);
    /// let mut store = PrekeyStore::new(&mut rng, &bob);
    /// store.generate_one_time_prekeys(&mut rng, &bob, 10)?;
    /// store.generate_one_time_kem_prekeys(&mut rng, &bob, 10)?;
    /// // What a server would hand one initiator: one of each one-time kind.
    /// let bundle = store.bundle(&bob, store.one_time_prekey_ids().first().copied(),
    ///                           store.one_time_kem_prekey_ids().first().copied())?;
    /// let verified = bundle.verify_for(bob.public())?;
    /// assert!(verified.one_time_prekey().is_some());
    /// # Ok::<(), session_ratchet::prekey::PrekeyError>(())
    /// ```
    pub fn new<R: CryptoRng + ?Sized>(rng: &mut R, identity: &DeviceIdentity) -> Self {
        let mut store = Self {
            signed: Vec::new(),
            last_resort: Vec::new(),
            one_time: BTreeMap::new(),
            one_time_kem: BTreeMap::new(),
            next_id: 1,
        };
        // A fresh store starts at id 1: neither call can exhaust the counter.
        let _ = store.rotate_signed_prekey(rng, identity);
        let _ = store.rotate_last_resort_prekey(rng, identity);
        store
    }

    /// After this store was restored from a backup: deletes every prekey it
    /// holds (the backup's replay records are out of date, so a replayed
    /// prekey message would be accepted again), skips
    /// [`RESTORE_ID_JUMP`] ids (the lost, newer state may have issued ids
    /// past the backup's counter, and an id must never name two keys), and
    /// creates a new signed and a new last-resort prekey. Peers that started
    /// sessions with the old prekeys fail; the restored device heals them
    /// (spec §8.8). Publish the new bundle.
    pub fn restart_after_restore<R: CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        identity: &DeviceIdentity,
    ) -> Result<(), PrekeyError> {
        let next = self
            .next_id
            .checked_add(RESTORE_ID_JUMP)
            .ok_or(PrekeyError::IdsExhausted)?;
        self.signed.clear();
        self.last_resort.clear();
        self.one_time.clear();
        self.one_time_kem.clear();
        self.next_id = next;
        self.rotate_signed_prekey(rng, identity)?;
        self.rotate_last_resort_prekey(rng, identity)?;
        Ok(())
    }

    fn take_id(&mut self) -> Result<PrekeyId, PrekeyError> {
        let id = self.next_id;
        self.next_id = id.checked_add(1).ok_or(PrekeyError::IdsExhausted)?;
        Ok(id)
    }

    /// Creates a new signed prekey and makes it current; keeps at most
    /// [`MAX_SIGNED_PREKEYS`], dropping (and zeroizing) the oldest.
    pub fn rotate_signed_prekey<R: CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        identity: &DeviceIdentity,
    ) -> Result<PrekeyId, PrekeyError> {
        let id = self.take_id()?;
        let secret = X25519Secret::random(rng);
        let key = secret.public_key();
        let msg = prekey_signature_input(
            type_tag::SIGNED_PREKEY,
            identity.public(),
            id,
            key.as_bytes(),
        );
        let public = SignedPrekey {
            id,
            key,
            signature: identity.sign(&msg),
        };
        self.signed.push(StoredSignedPrekey { public, secret });
        if self.signed.len() > MAX_SIGNED_PREKEYS {
            self.signed.remove(0);
        }
        Ok(id)
    }

    fn new_kem_prekey<R: CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        identity: &DeviceIdentity,
        kind: KemPrekeyKind,
    ) -> Result<StoredKemPrekey, PrekeyError> {
        let id = self.take_id()?;
        let keypair = MlKemKeyPair::generate(rng);
        let msg = prekey_signature_input(
            kind.type_tag(),
            identity.public(),
            id,
            keypair.public_key().as_bytes(),
        );
        let public = SignedKemPrekey {
            kind,
            id,
            key: keypair.public_key().clone(),
            signature: identity.sign(&msg),
        };
        Ok(StoredKemPrekey {
            public,
            keypair,
            seen_base_keys: BTreeSet::new(),
        })
    }

    /// Creates a new last-resort ML-KEM prekey and makes it current; keeps at
    /// most [`MAX_LAST_RESORT_PREKEYS`], dropping the oldest (and its replay set).
    pub fn rotate_last_resort_prekey<R: CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        identity: &DeviceIdentity,
    ) -> Result<PrekeyId, PrekeyError> {
        let k = self.new_kem_prekey(rng, identity, KemPrekeyKind::LastResort)?;
        let id = k.public.id;
        self.last_resort.push(k);
        if self.last_resort.len() > MAX_LAST_RESORT_PREKEYS {
            self.last_resort.remove(0);
        }
        Ok(id)
    }

    /// Adds `count` one-time X25519 prekeys and returns them for upload.
    /// Fails without adding any if the store would exceed [`MAX_ONE_TIME_PREKEYS`].
    pub fn generate_one_time_prekeys<R: CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        _identity: &DeviceIdentity,
        count: usize,
    ) -> Result<Vec<OneTimePrekey>, PrekeyError> {
        let room = MAX_ONE_TIME_PREKEYS.saturating_sub(self.one_time.len());
        if count > room {
            return Err(PrekeyError::TooManyOneTimePrekeys { room });
        }
        let mut out = Vec::with_capacity(count);
        for _ in 0..count {
            let id = self.take_id()?;
            let secret = X25519Secret::random(rng);
            let public = OneTimePrekey {
                id,
                key: secret.public_key(),
            };
            self.one_time.insert(id, (public, secret));
            out.push(public);
        }
        Ok(out)
    }

    /// Adds `count` signed one-time ML-KEM prekeys and returns them for upload.
    /// Fails without adding any if the store would exceed [`MAX_ONE_TIME_PREKEYS`].
    pub fn generate_one_time_kem_prekeys<R: CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        identity: &DeviceIdentity,
        count: usize,
    ) -> Result<Vec<SignedKemPrekey>, PrekeyError> {
        let room = MAX_ONE_TIME_PREKEYS.saturating_sub(self.one_time_kem.len());
        if count > room {
            return Err(PrekeyError::TooManyOneTimePrekeys { room });
        }
        let mut out = Vec::with_capacity(count);
        for _ in 0..count {
            let k = self.new_kem_prekey(rng, identity, KemPrekeyKind::OneTime)?;
            out.push(k.public.clone());
            self.one_time_kem.insert(k.public.id, k);
        }
        Ok(out)
    }

    /// Ids of unused one-time X25519 prekeys, ascending.
    pub fn one_time_prekey_ids(&self) -> Vec<PrekeyId> {
        self.one_time.keys().copied().collect()
    }

    /// Ids of unused one-time ML-KEM prekeys, ascending.
    pub fn one_time_kem_prekey_ids(&self) -> Vec<PrekeyId> {
        self.one_time_kem.keys().copied().collect()
    }

    /// The bundle a server would serve: the current signed and last-resort
    /// prekeys plus the chosen unused one-time prekeys.
    pub fn bundle(
        &self,
        identity: &DeviceIdentity,
        one_time: Option<PrekeyId>,
        one_time_kem: Option<PrekeyId>,
    ) -> Result<PrekeyBundle, PrekeyError> {
        // `new` always creates one of each and rotation only ever replaces, so
        // both lists are non-empty; the error keeps this total without a panic.
        let signed = self
            .signed
            .last()
            .ok_or(PrekeyError::UnknownPrekey { id: 0 })?;
        let last_resort = self
            .last_resort
            .last()
            .ok_or(PrekeyError::UnknownPrekey { id: 0 })?;
        let one_time = one_time
            .map(|id| {
                self.one_time
                    .get(&id)
                    .map(|(p, _)| *p)
                    .ok_or(PrekeyError::UnknownPrekey { id })
            })
            .transpose()?;
        let one_time_kem = one_time_kem
            .map(|id| {
                self.one_time_kem
                    .get(&id)
                    .map(|k| k.public.clone())
                    .ok_or(PrekeyError::UnknownPrekey { id })
            })
            .transpose()?;
        Ok(PrekeyBundle {
            identity: *identity.public(),
            signed_prekey: signed.public.clone(),
            last_resort: last_resort.public.clone(),
            one_time,
            one_time_kem,
        })
    }

    pub(crate) fn signed_prekey(&self, id: PrekeyId) -> Option<&StoredSignedPrekey> {
        self.signed.iter().find(|s| s.public.id == id)
    }

    pub(crate) fn one_time_prekey(&self, id: PrekeyId) -> Option<(&OneTimePrekey, &X25519Secret)> {
        self.one_time.get(&id).map(|(p, s)| (p, s))
    }

    pub(crate) fn kem_prekey(&self, kind: KemPrekeyKind, id: PrekeyId) -> Option<&StoredKemPrekey> {
        match kind {
            KemPrekeyKind::OneTime => self.one_time_kem.get(&id),
            KemPrekeyKind::LastResort => self.last_resort.iter().find(|k| k.public.id == id),
        }
    }

    /// Deletes a one-time X25519 prekey (its secret is zeroized on drop).
    pub(crate) fn remove_one_time_prekey(&mut self, id: PrekeyId) -> bool {
        self.one_time.remove(&id).is_some()
    }

    /// Deletes a one-time ML-KEM prekey.
    pub(crate) fn remove_one_time_kem_prekey(&mut self, id: PrekeyId) -> bool {
        self.one_time_kem.remove(&id).is_some()
    }

    /// How many base keys each last-resort prekey has recorded (oldest first).
    #[cfg(test)]
    pub(crate) fn last_resort_seen_counts(&self) -> Vec<usize> {
        self.last_resort
            .iter()
            .map(|k| k.seen_base_keys.len())
            .collect()
    }

    /// Records `base_key` as used with last-resort prekey `id`.
    pub(crate) fn record_base_key(&mut self, id: PrekeyId, base_key: [u8; 32]) -> bool {
        match self.last_resort.iter_mut().find(|k| k.public.id == id) {
            Some(k) if k.seen_base_keys.len() < MAX_BASE_KEYS_PER_LAST_RESORT => {
                k.seen_base_keys.insert(base_key);
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn setup() -> (ChaCha20Rng, DeviceIdentity, PrekeyStore) {
        let mut rng = ChaCha20Rng::from_seed([2; 32]);
        let id = DeviceIdentity::generate(&mut rng);
        let mut store = PrekeyStore::new(&mut rng, &id);
        store.generate_one_time_prekeys(&mut rng, &id, 3).unwrap();
        store
            .generate_one_time_kem_prekeys(&mut rng, &id, 2)
            .unwrap();
        (rng, id, store)
    }

    #[test]
    fn ids_are_unique_across_kinds() {
        let (_, _, store) = setup();
        let mut ids = store.one_time_prekey_ids();
        ids.extend(store.one_time_kem_prekey_ids());
        ids.push(store.signed.last().unwrap().public.id);
        ids.push(store.last_resort.last().unwrap().public.id);
        let n = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), n);
    }

    #[test]
    fn rotation_keeps_a_bounded_history() {
        let (mut rng, id, mut store) = setup();
        let first = store.signed.last().unwrap().public.id;
        for _ in 0..MAX_SIGNED_PREKEYS {
            store.rotate_signed_prekey(&mut rng, &id).unwrap();
        }
        assert_eq!(store.signed.len(), MAX_SIGNED_PREKEYS);
        assert!(
            store.signed_prekey(first).is_none(),
            "oldest signed prekey must be dropped"
        );
        let first_lr = store.last_resort.last().unwrap().public.id;
        store.rotate_last_resort_prekey(&mut rng, &id).unwrap();
        assert!(
            store
                .kem_prekey(KemPrekeyKind::LastResort, first_lr)
                .is_some()
        );
        for _ in 0..MAX_LAST_RESORT_PREKEYS {
            store.rotate_last_resort_prekey(&mut rng, &id).unwrap();
        }
        assert!(
            store
                .kem_prekey(KemPrekeyKind::LastResort, first_lr)
                .is_none()
        );
    }

    #[test]
    fn one_time_limit_is_exact_and_atomic() {
        let (mut rng, id, mut store) = setup();
        let room = MAX_ONE_TIME_PREKEYS - 3;
        assert_eq!(
            store
                .generate_one_time_prekeys(&mut rng, &id, room + 1)
                .unwrap_err(),
            PrekeyError::TooManyOneTimePrekeys { room }
        );
        assert_eq!(
            store.one_time_prekey_ids().len(),
            3,
            "a refused batch adds nothing"
        );
        store
            .generate_one_time_prekeys(&mut rng, &id, room)
            .unwrap();
        assert_eq!(store.one_time_prekey_ids().len(), MAX_ONE_TIME_PREKEYS);
    }

    #[test]
    fn one_time_kem_limit_is_exact_and_atomic() {
        let (mut rng, id, mut store) = setup();
        let have = store.one_time_kem_prekey_ids().len();
        let room = MAX_ONE_TIME_PREKEYS - have;
        for over in [room + 1, room + 2] {
            assert_eq!(
                store
                    .generate_one_time_kem_prekeys(&mut rng, &id, over)
                    .unwrap_err(),
                PrekeyError::TooManyOneTimePrekeys { room }
            );
            assert_eq!(store.one_time_kem_prekey_ids().len(), have);
        }
        assert_eq!(
            store
                .generate_one_time_prekeys(&mut rng, &id, MAX_ONE_TIME_PREKEYS)
                .unwrap_err(),
            PrekeyError::TooManyOneTimePrekeys {
                room: MAX_ONE_TIME_PREKEYS - store.one_time_prekey_ids().len()
            }
        );
    }

    #[test]
    fn last_resort_rotation_keeps_exactly_the_newest() {
        let (mut rng, id, mut store) = setup();
        let ids: Vec<PrekeyId> = (0..MAX_LAST_RESORT_PREKEYS + 2)
            .map(|_| store.rotate_last_resort_prekey(&mut rng, &id).unwrap())
            .collect();
        let (dropped, kept) = ids.split_at(2);
        for k in kept {
            assert!(store.kem_prekey(KemPrekeyKind::LastResort, *k).is_some());
        }
        for k in dropped {
            assert!(store.kem_prekey(KemPrekeyKind::LastResort, *k).is_none());
        }
        assert_eq!(
            store.last_resort_seen_counts().len(),
            MAX_LAST_RESORT_PREKEYS
        );
    }

    #[test]
    fn bundle_round_trips_in_all_shapes() {
        let (_, id, store) = setup();
        let otp = store.one_time_prekey_ids()[0];
        let okem = store.one_time_kem_prekey_ids()[0];
        for (a, b) in [
            (None, None),
            (Some(otp), None),
            (None, Some(okem)),
            (Some(otp), Some(okem)),
        ] {
            let bundle = store.bundle(&id, a, b).unwrap();
            let bytes = bundle.to_bytes();
            let expected_len = 2
                + 64
                + (4 + 32 + 64)
                + (4 + 1184 + 64)
                + 1
                + a.map_or(0, |_| 36)
                + b.map_or(0, |_| 4 + 1184 + 64);
            assert_eq!(bytes.len(), expected_len);
            let decoded = PrekeyBundle::from_bytes(&bytes).unwrap();
            assert_eq!(decoded, bundle);
            assert_eq!(decoded.to_bytes(), bytes);
            decoded.verify_for(id.public()).unwrap();
        }
        assert_eq!(
            store.bundle(&id, Some(9999), None).unwrap_err(),
            PrekeyError::UnknownPrekey { id: 9999 }
        );
    }
}
