//! ML-KEM-768 through libcrux-ml-kem (formally verified; FIPS 203 §6, §7).
//!
//! libcrux does not check encapsulation keys by itself: [`Libcrux::validate_public_key`]
//! runs its `validate_public_key` (the FIPS 203 §7.2 modulus check), and
//! [`super::MlKemPublicKey`] calls it on every received key.
//! libcrux's key types are not zeroized on drop, so every expanded private
//! key is turned into a plain array here and wiped before returning.

use super::{MLKEM_CIPHERTEXT_LEN, MLKEM_PUBLIC_KEY_LEN, MLKEM_SEED_LEN, MlKemBackend};
use alloc::boxed::Box;
use libcrux_ml_kem::mlkem768;
use zeroize::Zeroize;

/// The libcrux backend.
pub(crate) struct Libcrux;

/// Expanded key pair from a seed; the caller must pass the private half to
/// [`wipe`] when done.
fn keypair(seed: &[u8; MLKEM_SEED_LEN]) -> mlkem768::MlKem768KeyPair {
    let mut s = *seed;
    let kp = mlkem768::generate_key_pair(s);
    s.zeroize();
    kp
}

fn wipe(sk: mlkem768::MlKem768PrivateKey) {
    let mut bytes: [u8; 2400] = sk.into();
    bytes.zeroize();
}

impl MlKemBackend for Libcrux {
    const NAME: &'static str = "libcrux-ml-kem 0.0.11";

    fn public_key(seed: &[u8; MLKEM_SEED_LEN]) -> Box<[u8; MLKEM_PUBLIC_KEY_LEN]> {
        let (sk, pk) = keypair(seed).into_parts();
        wipe(sk);
        let mut out = Box::new([0u8; MLKEM_PUBLIC_KEY_LEN]);
        out.copy_from_slice(pk.as_slice());
        out
    }

    fn validate_public_key(ek: &[u8; MLKEM_PUBLIC_KEY_LEN]) -> bool {
        mlkem768::validate_public_key(&mlkem768::MlKem768PublicKey::from(ek))
    }

    fn encapsulate(
        ek: &[u8; MLKEM_PUBLIC_KEY_LEN],
        m: &[u8; 32],
    ) -> Option<(Box<[u8; MLKEM_CIPHERTEXT_LEN]>, [u8; 32])> {
        // Callers pass only keys that passed `validate_public_key` (the
        // `MlKemPublicKey` invariant), so checking again would double the
        // cost of the modulus check for nothing.
        let pk = mlkem768::MlKem768PublicKey::from(ek);
        let mut m = *m;
        let (ct, ss) = mlkem768::encapsulate(&pk, m);
        m.zeroize();
        let mut out = Box::new([0u8; MLKEM_CIPHERTEXT_LEN]);
        out.copy_from_slice(ct.as_slice());
        Some((out, ss))
    }

    fn decapsulate(seed: &[u8; MLKEM_SEED_LEN], ct: &[u8; MLKEM_CIPHERTEXT_LEN]) -> [u8; 32] {
        let (sk, _pk) = keypair(seed).into_parts();
        let ss = mlkem768::decapsulate(&sk, &mlkem768::MlKem768Ciphertext::from(ct));
        wipe(sk);
        ss
    }

    #[cfg(test)]
    fn expanded_decapsulation_key(seed: &[u8; MLKEM_SEED_LEN]) -> alloc::vec::Vec<u8> {
        keypair(seed).sk().to_vec()
    }
}
