//! ML-KEM-768 through RustCrypto `ml-kem` (pure Rust; FIPS 203 §6, §7).
//!
//! `ml-kem` validates encapsulation keys when parsing them and zeroizes its
//! decapsulation keys on drop (its `zeroize` feature is on).

use super::{MLKEM_CIPHERTEXT_LEN, MLKEM_PUBLIC_KEY_LEN, MLKEM_SEED_LEN, MlKemBackend};
use alloc::boxed::Box;
use ml_kem::{B32, Decapsulate, KeyExport, Seed, array::Array, ml_kem_768};
use zeroize::Zeroize;

/// The RustCrypto backend.
pub(crate) struct RustCrypto;

fn decapsulation_key(seed: &[u8; MLKEM_SEED_LEN]) -> ml_kem_768::DecapsulationKey {
    let mut s: Seed = Array::from(*seed);
    let dk = ml_kem_768::DecapsulationKey::from_seed(s.clone());
    s.as_mut_slice().zeroize();
    dk
}

fn encapsulation_key(ek: &[u8; MLKEM_PUBLIC_KEY_LEN]) -> Option<ml_kem_768::EncapsulationKey> {
    ml_kem_768::EncapsulationKey::new(&Array::from(*ek)).ok()
}

impl MlKemBackend for RustCrypto {
    const NAME: &'static str = "ml-kem 0.3.4 (RustCrypto)";

    fn public_key(seed: &[u8; MLKEM_SEED_LEN]) -> Box<[u8; MLKEM_PUBLIC_KEY_LEN]> {
        let dk = decapsulation_key(seed);
        let mut out = Box::new([0u8; MLKEM_PUBLIC_KEY_LEN]);
        out.copy_from_slice(dk.encapsulation_key().to_bytes().as_slice());
        out
    }

    fn validate_public_key(ek: &[u8; MLKEM_PUBLIC_KEY_LEN]) -> bool {
        encapsulation_key(ek).is_some()
    }

    fn encapsulate(
        ek: &[u8; MLKEM_PUBLIC_KEY_LEN],
        m: &[u8; 32],
    ) -> Option<(Box<[u8; MLKEM_CIPHERTEXT_LEN]>, [u8; 32])> {
        let ek = encapsulation_key(ek)?;
        let mut m: B32 = Array::from(*m);
        let (ct, ss) = ek.encapsulate_deterministic(&m);
        m.as_mut_slice().zeroize();
        let mut out = Box::new([0u8; MLKEM_CIPHERTEXT_LEN]);
        out.copy_from_slice(ct.as_slice());
        Some((out, ss.into()))
    }

    fn decapsulate(seed: &[u8; MLKEM_SEED_LEN], ct: &[u8; MLKEM_CIPHERTEXT_LEN]) -> [u8; 32] {
        decapsulation_key(seed).decapsulate(&Array::from(*ct)).into()
    }

    #[cfg(test)]
    #[allow(deprecated)] // The expanded form is what the CCTV vectors hash.
    fn expanded_decapsulation_key(seed: &[u8; MLKEM_SEED_LEN]) -> alloc::vec::Vec<u8> {
        use ml_kem::ExpandedKeyEncoding;
        decapsulation_key(seed).to_expanded_bytes().to_vec()
    }
}
