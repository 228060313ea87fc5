//! "Positive alternative" Ed25519 signatures verifiable from a Session ID
//! (spec §9.6; facts §2 "Account-key record", XEd25519 style).
//!
//! This module owns signing with an account's X25519 secret so that anyone
//! holding only the Session ID can verify:
//!
//! - **verify**: map the X25519 public key `u` to the Edwards point with
//!   `y = (u − 1)/(u + 1)` and sign bit 0, then run a standard Ed25519
//!   verification (libsodium acceptance rules). This is byte-compatible with
//!   deployed code.
//! - **sign**: `a` = the clamped X25519 secret, `A = aB`; if `A`'s sign bit is
//!   1, sign with `−a` (so the public key is the positive alternative).
//!   The nonce is `r = BLAKE2b-64(a ‖ M ‖ Z, pers = "xed25519signatur") mod L`
//!   with `Z` 64 bytes from the injected RNG, as deployed code does; the
//!   signature is therefore randomised and only verification can be compared
//!   byte for byte.
#![deny(clippy::integer_division_remainder_used)]

use super::identity::{Identity, SessionId};
use super::primitives::{blake2b_64, ed25519_verify};
use crate::dh::X25519PublicKey;
use curve25519_dalek::montgomery::MontgomeryPoint;
use curve25519_dalek::{EdwardsPoint, Scalar};
use rand_core::CryptoRng;
use sha2::{Digest, Sha512};
use subtle::{Choice, ConditionallySelectable};
use zeroize::Zeroize;

/// BLAKE2b personalisation of the signing nonce (deployed code's constant).
pub const XED25519_NONCE_PERS: &[u8; 16] = b"xed25519signatur";

/// The Ed25519 public key with sign bit 0 whose birational image is `x25519`.
/// `None` when no such point exists (`u = −1`, or `u` on the twist).
pub fn positive_ed25519_from_x25519(x25519: &X25519PublicKey) -> Option<[u8; 32]> {
    MontgomeryPoint(*x25519.as_bytes())
        .to_edwards(0)
        .map(|p| p.compress().to_bytes())
}

/// Verifies `signature` over `message` against a Session ID alone.
///
/// ```
/// use session_ratchet::session_v2::{identity::Identity, xeddsa};
/// # use rand_chacha::{ChaCha20Rng, rand_core::SeedableRng};
/// let mut rng = ChaCha20Rng::from_seed([1; 32]);
/// let id = Identity::from_seed_bytes(&[7u8; 16]).unwrap();
/// let sig = xeddsa::sign(&mut rng, &id, b"hello");
/// assert!(xeddsa::verify(&id.session_id(), b"hello", &sig));
/// assert!(!xeddsa::verify(&id.session_id(), b"hellO", &sig));
/// ```
pub fn verify(session_id: &SessionId, message: &[u8], signature: &[u8; 64]) -> bool {
    verify_x25519(&session_id.x25519(), message, signature)
}

/// [`verify`] with the X25519 public key directly.
pub fn verify_x25519(x25519: &X25519PublicKey, message: &[u8], signature: &[u8; 64]) -> bool {
    match positive_ed25519_from_x25519(x25519) {
        Some(ed) => ed25519_verify(&ed, message, signature),
        None => false,
    }
}

/// Signs `message` with the identity's X25519 secret so that [`verify`]
/// accepts it for the identity's Session ID. Takes 64 random bytes.
pub fn sign<R: CryptoRng + ?Sized>(rng: &mut R, identity: &Identity, message: &[u8]) -> [u8; 64] {
    let mut z = [0u8; 64];
    rng.fill_bytes(&mut z);
    let sig = sign_with_nonce_randomness(identity, message, &z);
    z.zeroize();
    sig
}

/// The signing core with caller-provided nonce randomness `z`.
pub(crate) fn sign_with_nonce_randomness(
    identity: &Identity,
    message: &[u8],
    z: &[u8; 64],
) -> [u8; 64] {
    let mut a_bytes = *identity.x25519_secret().expose();
    let mut a = Scalar::from_bytes_mod_order(a_bytes);
    let mut big_a = EdwardsPoint::mul_base(&a).compress().to_bytes();
    let negative = Choice::from(big_a[31] >> 7);
    big_a[31] &= 0x7f;
    let mut neg_a = -a;
    a.conditional_assign(&neg_a, negative);
    // The nonce hashes the scalar as deployed code holds it: the clamped bytes
    // when positive, the reduced negation when negated.
    let neg_bytes = neg_a.to_bytes();
    for (dst, src) in a_bytes.iter_mut().zip(neg_bytes.iter()) {
        dst.conditional_assign(src, negative);
    }
    let mut rh = blake2b_64(None, XED25519_NONCE_PERS, &[&a_bytes, message, z]);
    let mut r = Scalar::from_bytes_mod_order_wide(&rh);
    let big_r = EdwardsPoint::mul_base(&r).compress().to_bytes();
    let mut h = Sha512::new();
    h.update(big_r);
    h.update(big_a);
    h.update(message);
    let hram: [u8; 64] = h.finalize().into();
    let k = Scalar::from_bytes_mod_order_wide(&hram);
    let s = r + k * a;
    let mut sig = [0u8; 64];
    if let Some((r_out, s_out)) = sig.split_first_chunk_mut::<32>() {
        r_out.copy_from_slice(&big_r);
        s_out.copy_from_slice(&s.to_bytes());
    }
    a.zeroize();
    neg_a.zeroize();
    r.zeroize();
    rh.zeroize();
    a_bytes.zeroize();
    sig
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session_v2::identity::recovery_seed_from_bytes;

    #[test]
    fn positive_key_matches_real_key_up_to_sign() {
        let mut saw_negative = false;
        let mut saw_positive = false;
        for b in 0u8..16 {
            let id = Identity::from_recovery_seed(&recovery_seed_from_bytes([b; 16]));
            let pos = positive_ed25519_from_x25519(id.x25519_public()).unwrap();
            let real = id.ed25519_public();
            assert_eq!(pos[..31], real[..31]);
            assert_eq!(pos[31], real[31] & 0x7f);
            if real[31] & 0x80 != 0 {
                saw_negative = true;
            } else {
                saw_positive = true;
            }
            let sig = sign_with_nonce_randomness(&id, b"msg", &[b; 64]);
            assert!(verify(&id.session_id(), b"msg", &sig));
            let mut bad = sig;
            bad[40] ^= 1;
            assert!(!verify(&id.session_id(), b"msg", &bad));
        }
        assert!(saw_negative && saw_positive, "both sign cases exercised");
    }
}
