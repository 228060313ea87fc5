//! ML-KEM-768 (FIPS 203) and the X-Wing hybrid KEM (spec §3.3, §3.4).
//!
//! This module owns the post-quantum KEM: its public types, the input checks
//! FIPS 203 §7.2 requires on every received encapsulation key, and the choice
//! of implementation. The arithmetic lives in one of two backends behind the
//! small internal [`MlKemBackend`] trait:
//!
//! - `mlkem-libcrux` (default): libcrux-ml-kem, formally verified;
//! - otherwise RustCrypto `ml-kem`, pure Rust (feature `mlkem-rustcrypto`
//!   names this choice; the backend is always compiled as the fallback).
//!
//! Both produce identical bytes for identical seeds; the unit tests prove it
//! with the C2SP/CCTV accumulated vectors and a cross-backend property test.
//! Decapsulation keys are held only as their 64-byte seed `d || z`.
#![deny(clippy::integer_division_remainder_used)]

use crate::secret::{MlKemSeed, SharedSecret};
use crate::util::write_hex_prefix;
use alloc::boxed::Box;
use core::fmt;
use rand_core::CryptoRng;
use zeroize::Zeroize;

#[cfg(any(feature = "mlkem-libcrux", test))]
mod libcrux_backend;
// Always compiled (the fallback when `mlkem-libcrux` is off); unused outside
// the cross-backend tests when libcrux is selected.
#[cfg_attr(all(feature = "mlkem-libcrux", not(test)), allow(dead_code))]
mod rustcrypto_backend;
#[cfg(test)]
mod tests;
pub mod xwing;

/// Length of an ML-KEM-768 encapsulation (public) key.
pub const MLKEM_PUBLIC_KEY_LEN: usize = 1184;
/// Length of an ML-KEM-768 ciphertext.
pub const MLKEM_CIPHERTEXT_LEN: usize = 1088;
/// Length of an ML-KEM decapsulation key in seed form `d || z`.
pub const MLKEM_SEED_LEN: usize = 64;
/// Length of an ML-KEM shared secret.
pub const MLKEM_SHARED_SECRET_LEN: usize = 32;

/// The backend this build uses. libcrux wins when both features are on.
#[cfg(feature = "mlkem-libcrux")]
type Active = libcrux_backend::Libcrux;
#[cfg(not(feature = "mlkem-libcrux"))]
type Active = rustcrypto_backend::RustCrypto;

/// Name of the ML-KEM implementation compiled in (for diagnostics and benches).
pub const fn backend_name() -> &'static str {
    <Active as MlKemBackend>::NAME
}

/// The four deterministic ML-KEM-768 operations the crate needs.
///
/// Implementations must be FIPS 203 `ML-KEM.KeyGen_internal`,
/// `ML-KEM.Encaps_internal` and `ML-KEM.Decaps`, bit for bit.
pub(crate) trait MlKemBackend {
    /// Human-readable name of the implementation.
    const NAME: &'static str;

    /// Encapsulation key of `KeyGen_internal(d, z)` where `seed = d || z`.
    fn public_key(seed: &[u8; MLKEM_SEED_LEN]) -> Box<[u8; MLKEM_PUBLIC_KEY_LEN]>;

    /// The FIPS 203 §7.2 encapsulation-key check (modulus check; the type
    /// check is the fixed length).
    fn validate_public_key(ek: &[u8; MLKEM_PUBLIC_KEY_LEN]) -> bool;

    /// `Encaps_internal(ek, m)`. Callers pass only keys that passed
    /// [`MlKemBackend::validate_public_key`]; a backend whose API re-checks
    /// anyway returns `None` on failure.
    fn encapsulate(
        ek: &[u8; MLKEM_PUBLIC_KEY_LEN],
        m: &[u8; 32],
    ) -> Option<(
        Box<[u8; MLKEM_CIPHERTEXT_LEN]>,
        [u8; MLKEM_SHARED_SECRET_LEN],
    )>;

    /// `Decaps(dk, c)` where `dk` is expanded from `seed` (implicit rejection
    /// on an invalid ciphertext, as FIPS 203 requires).
    fn decapsulate(
        seed: &[u8; MLKEM_SEED_LEN],
        ct: &[u8; MLKEM_CIPHERTEXT_LEN],
    ) -> [u8; MLKEM_SHARED_SECRET_LEN];

    /// The 2400-byte expanded decapsulation key, for the CCTV accumulated test.
    #[cfg(test)]
    fn expanded_decapsulation_key(seed: &[u8; MLKEM_SEED_LEN]) -> alloc::vec::Vec<u8>;
}

/// Errors from parsing or using KEM keys and ciphertexts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KemError {
    /// The input has the wrong length for this field.
    InvalidLength {
        /// What was being parsed.
        what: &'static str,
        /// The required length.
        expected: usize,
        /// The length received.
        actual: usize,
    },
    /// An ML-KEM-768 encapsulation key failed the FIPS 203 §7.2 modulus check:
    /// it was not produced by a conforming key generator and must not be used.
    InvalidMlKemPublicKey,
    /// The X25519 part of a hybrid operation produced an all-zero output: the
    /// peer's X25519 key is a low-order point.
    NonContributoryX25519,
}

impl fmt::Display for KemError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidLength { what, expected, actual } => {
                write!(f, "{what} must be {expected} bytes, got {actual}")
            }
            Self::InvalidMlKemPublicKey => f.write_str(
                "ML-KEM-768 public key failed the FIPS 203 modulus check; reject the key and its bundle",
            ),
            Self::NonContributoryX25519 => {
                f.write_str("X25519 key is a low-order point (all-zero shared secret); reject the peer's key")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for KemError {}

/// An ML-KEM-768 encapsulation key that passed the FIPS 203 §7.2 input check.
///
/// Holding one proves the check ran: the only constructors validate.
#[derive(Clone, PartialEq, Eq)]
pub struct MlKemPublicKey(Box<[u8; MLKEM_PUBLIC_KEY_LEN]>);

impl MlKemPublicKey {
    /// Parses and validates a received encapsulation key.
    ///
    /// ```
    /// use session_ratchet::kem::{KemError, MlKemPublicKey};
    /// assert!(matches!(
    ///     MlKemPublicKey::from_bytes(&[0u8; 10]),
    ///     Err(KemError::InvalidLength { expected: 1184, .. })
    /// ));
    /// // 0xFF everywhere encodes coefficients ≥ q: the modulus check rejects it.
    /// assert_eq!(
    ///     MlKemPublicKey::from_bytes(&[0xFF; 1184]),
    ///     Err(KemError::InvalidMlKemPublicKey)
    /// );
    /// ```
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KemError> {
        let array: &[u8; MLKEM_PUBLIC_KEY_LEN] =
            bytes.try_into().map_err(|_| KemError::InvalidLength {
                what: "ML-KEM-768 public key",
                expected: MLKEM_PUBLIC_KEY_LEN,
                actual: bytes.len(),
            })?;
        if !Active::validate_public_key(array) {
            return Err(KemError::InvalidMlKemPublicKey);
        }
        let mut boxed = Box::new([0u8; MLKEM_PUBLIC_KEY_LEN]);
        boxed.copy_from_slice(array);
        Ok(Self(boxed))
    }

    /// The 1184-byte encoding.
    pub fn as_bytes(&self) -> &[u8; MLKEM_PUBLIC_KEY_LEN] {
        &self.0
    }
}

impl fmt::Debug for MlKemPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MlKemPublicKey(")?;
        write_hex_prefix(f, self.0.as_slice())?;
        f.write_str(")")
    }
}

/// An ML-KEM-768 ciphertext (1088 bytes). Any 1088 bytes are accepted:
/// decapsulation of a malformed one yields an unrelated pseudorandom secret
/// (implicit rejection), which fails authentication later.
#[derive(Clone, PartialEq, Eq)]
pub struct MlKemCiphertext(Box<[u8; MLKEM_CIPHERTEXT_LEN]>);

impl MlKemCiphertext {
    /// Parses a received ciphertext (length check only).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KemError> {
        let array: &[u8; MLKEM_CIPHERTEXT_LEN] =
            bytes.try_into().map_err(|_| KemError::InvalidLength {
                what: "ML-KEM-768 ciphertext",
                expected: MLKEM_CIPHERTEXT_LEN,
                actual: bytes.len(),
            })?;
        let mut boxed = Box::new([0u8; MLKEM_CIPHERTEXT_LEN]);
        boxed.copy_from_slice(array);
        Ok(Self(boxed))
    }

    /// The 1088-byte encoding.
    pub fn as_bytes(&self) -> &[u8; MLKEM_CIPHERTEXT_LEN] {
        &self.0
    }
}

impl fmt::Debug for MlKemCiphertext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MlKemCiphertext(")?;
        write_hex_prefix(f, self.0.as_slice())?;
        f.write_str(")")
    }
}

/// An ML-KEM-768 key pair, stored as its 64-byte seed plus the public key.
pub struct MlKemKeyPair {
    seed: MlKemSeed,
    public: MlKemPublicKey,
}

impl MlKemKeyPair {
    /// A fresh key pair: `d || z` drawn from `rng`.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        Self::from_seed(MlKemSeed::random(rng))
    }

    /// The key pair of `KeyGen_internal(d, z)`, `seed = d || z`.
    pub fn from_seed(seed: MlKemSeed) -> Self {
        let public = MlKemPublicKey(Active::public_key(seed.expose()));
        Self { seed, public }
    }

    /// The encapsulation key.
    pub fn public_key(&self) -> &MlKemPublicKey {
        &self.public
    }

    /// The decapsulation key seed `d ‖ z`.
    pub(crate) fn seed(&self) -> &MlKemSeed {
        &self.seed
    }

    /// `ML-KEM.Decaps`. Never fails: an invalid ciphertext gives the implicit
    /// rejection secret, which no sender can predict.
    pub fn decapsulate(&self, ct: &MlKemCiphertext) -> SharedSecret {
        let mut ss = Active::decapsulate(self.seed.expose(), ct.as_bytes());
        SharedSecret::from_mut_array(&mut ss)
    }
}

impl fmt::Debug for MlKemKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MlKemKeyPair")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

/// `ML-KEM.Encaps` to `pk` with fresh randomness from `rng`.
///
/// The error is [`KemError::InvalidMlKemPublicKey`], which a validated
/// [`MlKemPublicKey`] never produces; it exists so that a backend's refusal
/// can never turn into a silent all-zero secret.
///
/// ```
/// use session_ratchet::kem::{encapsulate, MlKemKeyPair};
/// # use rand_chacha::{ChaCha20Rng, rand_core::SeedableRng};
/// let mut rng = ChaCha20Rng::from_seed([7; 32]);
/// let bob = MlKemKeyPair::generate(&mut rng);
/// let (ct, ss_alice) = encapsulate(&mut rng, bob.public_key())?;
/// assert_eq!(bob.decapsulate(&ct), ss_alice);
/// # Ok::<(), session_ratchet::kem::KemError>(())
/// ```
pub fn encapsulate<R: CryptoRng + ?Sized>(
    rng: &mut R,
    pk: &MlKemPublicKey,
) -> Result<(MlKemCiphertext, SharedSecret), KemError> {
    let mut m = [0u8; 32];
    rng.fill_bytes(&mut m);
    let out = encapsulate_deterministic(pk, &m);
    m.zeroize();
    out
}

/// `ML-KEM.Encaps_internal(pk, m)`.
pub(crate) fn encapsulate_deterministic(
    pk: &MlKemPublicKey,
    m: &[u8; 32],
) -> Result<(MlKemCiphertext, SharedSecret), KemError> {
    let (ct, mut ss) =
        Active::encapsulate(pk.as_bytes(), m).ok_or(KemError::InvalidMlKemPublicKey)?;
    Ok((MlKemCiphertext(ct), SharedSecret::from_mut_array(&mut ss)))
}

/// `ML-KEM.Encaps_internal(pk, m)` with caller-chosen `m`, for test vectors only.
#[cfg(feature = "hazmat-test-vectors")]
pub fn hazmat_encapsulate_deterministic(
    pk: &MlKemPublicKey,
    m: &[u8; 32],
) -> Result<(MlKemCiphertext, SharedSecret), KemError> {
    encapsulate_deterministic(pk, m)
}
