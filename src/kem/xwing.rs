//! X-Wing, the hybrid X25519 + ML-KEM-768 KEM (draft-connolly-cfrg-xwing-kem-06; spec §3.4).
//!
//! Keys are in seed format: a 32-byte seed expands with SHAKE256 into the
//! ML-KEM seed `d || z` and the X25519 secret (draft §5.2). The shared secret
//! is `SHA3-256(ss_M || ss_X || ct_X || pk_X || "\.//^\")` (draft §5.3).
//!
//! One deliberate choice where the draft leaves it open: an all-zero X25519
//! output (low-order `pk_X` or `ct_X`) is an error, as RFC 7748 §6.1 permits
//! and the CFRG has leaned towards; the X25519 half then adds nothing, and a
//! peer sending such a value is misbehaving.
#![deny(clippy::integer_division_remainder_used)]

use super::{
    KemError, MLKEM_CIPHERTEXT_LEN, MLKEM_PUBLIC_KEY_LEN, MlKemCiphertext, MlKemKeyPair,
    MlKemPublicKey,
};
use crate::dh::X25519PublicKey;
use crate::kdf::label;
use crate::secret::{MlKemSeed, SharedSecret, X25519Secret, XWingSeed};
use alloc::vec::Vec;
use core::fmt;
use rand_core::CryptoRng;
use sha3::{Digest, Sha3_256};
use shake::{ExtendableOutput, Shake256, Update, XofReader};
use zeroize::Zeroize;

/// Length of an X-Wing encapsulation key: `pk_M (1184) || pk_X (32)`.
pub const XWING_PUBLIC_KEY_LEN: usize = MLKEM_PUBLIC_KEY_LEN + 32;
/// Length of an X-Wing ciphertext: `ct_M (1088) || ct_X (32)`.
pub const XWING_CIPHERTEXT_LEN: usize = MLKEM_CIPHERTEXT_LEN + 32;
/// Length of an X-Wing decapsulation key (seed format).
pub const XWING_SEED_LEN: usize = 32;
/// Length of the encapsulation randomness: `m (32) || ek_X (32)`.
pub const XWING_ENCAPSULATION_RANDOMNESS_LEN: usize = 64;

/// An X-Wing encapsulation key; its ML-KEM half passed the FIPS 203 input check.
#[derive(Clone, PartialEq, Eq)]
pub struct XWingPublicKey {
    mlkem: MlKemPublicKey,
    x25519: X25519PublicKey,
}

impl XWingPublicKey {
    /// Parses and validates `pk_M || pk_X`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KemError> {
        let (pk_m, pk_x) = split_fixed::<MLKEM_PUBLIC_KEY_LEN>(bytes, "X-Wing public key")?;
        Ok(Self { mlkem: MlKemPublicKey::from_bytes(pk_m)?, x25519: X25519PublicKey(pk_x) })
    }

    /// The 1216-byte encoding `pk_M || pk_X`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(XWING_PUBLIC_KEY_LEN);
        out.extend_from_slice(self.mlkem.as_bytes());
        out.extend_from_slice(self.x25519.as_bytes());
        out
    }

    /// The ML-KEM-768 half.
    pub fn mlkem(&self) -> &MlKemPublicKey {
        &self.mlkem
    }

    /// The X25519 half.
    pub fn x25519(&self) -> &X25519PublicKey {
        &self.x25519
    }
}

impl fmt::Debug for XWingPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("XWingPublicKey")
            .field("mlkem", &self.mlkem)
            .field("x25519", &self.x25519)
            .finish()
    }
}

/// An X-Wing ciphertext `ct_M || ct_X`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct XWingCiphertext {
    mlkem: MlKemCiphertext,
    x25519: X25519PublicKey,
}

impl XWingCiphertext {
    /// Parses a received ciphertext (length check only).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KemError> {
        let (ct_m, ct_x) = split_fixed::<MLKEM_CIPHERTEXT_LEN>(bytes, "X-Wing ciphertext")?;
        Ok(Self { mlkem: MlKemCiphertext::from_bytes(ct_m)?, x25519: X25519PublicKey(ct_x) })
    }

    /// The 1120-byte encoding `ct_M || ct_X`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(XWING_CIPHERTEXT_LEN);
        out.extend_from_slice(self.mlkem.as_bytes());
        out.extend_from_slice(self.x25519.as_bytes());
        out
    }
}

/// Splits `bytes` into its first `N` bytes and a trailing 32-byte X25519 value.
fn split_fixed<'a, const N: usize>(
    bytes: &'a [u8],
    what: &'static str,
) -> Result<(&'a [u8], [u8; 32]), KemError> {
    let err = KemError::InvalidLength { what, expected: N + 32, actual: bytes.len() };
    if bytes.len() != N + 32 {
        return Err(err);
    }
    let (head, tail) = bytes.split_at_checked(N).ok_or(err)?;
    let tail: [u8; 32] = tail.try_into().map_err(|_| err)?;
    Ok((head, tail))
}

/// An X-Wing key pair, stored as its 32-byte seed.
pub struct XWingKeyPair {
    seed: XWingSeed,
    public: XWingPublicKey,
}

/// The expanded secret halves of an X-Wing seed (draft §5.2).
struct Expanded {
    mlkem: MlKemKeyPair,
    x25519: X25519Secret,
}

fn expand(seed: &XWingSeed) -> Expanded {
    let mut xof = Shake256::default();
    xof.update(seed.expose());
    let mut reader = xof.finalize_xof();
    let mut d_z = [0u8; 64];
    let mut sk_x = [0u8; 32];
    reader.read(&mut d_z);
    reader.read(&mut sk_x);
    Expanded {
        mlkem: MlKemKeyPair::from_seed(MlKemSeed::from_mut_array(&mut d_z)),
        x25519: X25519Secret::from_mut_array(&mut sk_x),
    }
}

fn combiner(
    ss_m: &SharedSecret,
    ss_x: &SharedSecret,
    ct_x: &X25519PublicKey,
    pk_x: &X25519PublicKey,
) -> SharedSecret {
    let mut h = Sha3_256::new();
    Digest::update(&mut h, ss_m.expose());
    Digest::update(&mut h, ss_x.expose());
    Digest::update(&mut h, ct_x.as_bytes());
    Digest::update(&mut h, pk_x.as_bytes());
    Digest::update(&mut h, label::XWING);
    let mut out: [u8; 32] = h.finalize().into();
    SharedSecret::from_mut_array(&mut out)
}

impl XWingKeyPair {
    /// A fresh key pair from a random 32-byte seed.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        Self::from_seed(XWingSeed::random(rng))
    }

    /// `GenerateKeyPairDerand(seed)` (draft §5.2).
    pub fn from_seed(seed: XWingSeed) -> Self {
        let ex = expand(&seed);
        let public = XWingPublicKey {
            mlkem: ex.mlkem.public_key().clone(),
            x25519: ex.x25519.public_key(),
        };
        Self { seed, public }
    }

    /// The encapsulation key.
    pub fn public_key(&self) -> &XWingPublicKey {
        &self.public
    }

    /// `Decapsulate(sk, ct)` (draft §5.4), rejecting a low-order `ct_X`.
    pub fn decapsulate(&self, ct: &XWingCiphertext) -> Result<SharedSecret, KemError> {
        let ex = expand(&self.seed);
        let ss_m = ex.mlkem.decapsulate(&ct.mlkem);
        let ss_x = ex.x25519.diffie_hellman(&ct.x25519).ok_or(KemError::NonContributoryX25519)?;
        Ok(combiner(&ss_m, &ss_x, &ct.x25519, &self.public.x25519))
    }
}

impl fmt::Debug for XWingKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("XWingKeyPair").field("public", &self.public).finish_non_exhaustive()
    }
}

/// `Encapsulate(pk)` (draft §5.3) with fresh randomness from `rng`.
///
/// ```
/// use session_ratchet::kem::xwing::{encapsulate, XWingKeyPair};
/// # use rand_chacha::{ChaCha20Rng, rand_core::SeedableRng};
/// let mut rng = ChaCha20Rng::from_seed([1; 32]);
/// let bob = XWingKeyPair::generate(&mut rng);
/// let (ct, ss) = encapsulate(&mut rng, bob.public_key())?;
/// assert_eq!(ct.to_bytes().len(), 1120);
/// assert_eq!(bob.decapsulate(&ct)?, ss);
/// # Ok::<(), session_ratchet::kem::KemError>(())
/// ```
pub fn encapsulate<R: CryptoRng + ?Sized>(
    rng: &mut R,
    pk: &XWingPublicKey,
) -> Result<(XWingCiphertext, SharedSecret), KemError> {
    let mut eseed = [0u8; XWING_ENCAPSULATION_RANDOMNESS_LEN];
    rng.fill_bytes(&mut eseed);
    let out = encapsulate_deterministic(pk, &eseed);
    eseed.zeroize();
    out
}

/// `EncapsulateDerand(pk, eseed)` (draft §5.3): `m = eseed[0..32]`, `ek_X = eseed[32..64]`.
pub(crate) fn encapsulate_deterministic(
    pk: &XWingPublicKey,
    eseed: &[u8; XWING_ENCAPSULATION_RANDOMNESS_LEN],
) -> Result<(XWingCiphertext, SharedSecret), KemError> {
    let mut m = [0u8; 32];
    let mut ek_x = [0u8; 32];
    m.copy_from_slice(&eseed[..32]);
    ek_x.copy_from_slice(&eseed[32..]);
    let ek_x = X25519Secret::from_mut_array(&mut ek_x);
    let ct_x = ek_x.public_key();
    let ss_x = ek_x.diffie_hellman(&pk.x25519).ok_or(KemError::NonContributoryX25519);
    let mlkem = super::encapsulate_deterministic(&pk.mlkem, &m);
    m.zeroize();
    let ss_x = ss_x?;
    let (ct_m, ss_m) = mlkem?;
    let ss = combiner(&ss_m, &ss_x, &ct_x, &pk.x25519);
    Ok((XWingCiphertext { mlkem: ct_m, x25519: ct_x }, ss))
}

/// `EncapsulateDerand(pk, eseed)` with caller-chosen randomness, for test vectors only.
#[cfg(feature = "hazmat-test-vectors")]
pub fn hazmat_encapsulate_deterministic(
    pk: &XWingPublicKey,
    eseed: &[u8; XWING_ENCAPSULATION_RANDOMNESS_LEN],
) -> Result<(XWingCiphertext, SharedSecret), KemError> {
    encapsulate_deterministic(pk, eseed)
}
