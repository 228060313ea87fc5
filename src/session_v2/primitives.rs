//! Internal primitives shared by the Session v2 submodules (spec §9.2).
//!
//! This module owns the thin wrappers over SHAKE256 key expansion, raw XChaCha20 and XChaCha20-Poly1305, Ed25519 verification
//! with libsodium's acceptance rules, and the unbiased shuffle used for slot
//! padding, and re-exports the crate's BLAKE2b wrapper (`crate::kdf`, keyed and
//! personalised). None of it is public: every caller is a Session v2 format.
#![deny(clippy::integer_division_remainder_used)]

use alloc::vec::Vec;
use chacha20::XChaCha20;
use chacha20::cipher::{KeyIvInit, StreamCipher};
use chacha20poly1305::aead::AeadInOut;
use chacha20poly1305::{KeyInit, XChaCha20Poly1305};
use curve25519_dalek::edwards::CompressedEdwardsY;
use ed25519_dalek::{Signature, VerifyingKey};
use rand_core::CryptoRng;
use shake::{ExtendableOutput, Shake256, Update, XofReader};
use zeroize::Zeroize;

/// Length of the Poly1305 tag appended by XChaCha20-Poly1305.
pub(crate) const AEAD_TAG_LEN: usize = 16;
/// Length of an XChaCha20 nonce.
pub(crate) const XNONCE_LEN: usize = 24;

// The BLAKE2b wrapper is shared with the emoji SAS of device linking, which
// does not need this feature; it lives in `crate::kdf`.
pub(crate) use crate::kdf::{
    blake2b_2, blake2b_8, blake2b_16, blake2b_24, blake2b_24_keyed, blake2b_32, blake2b_32_plain,
    blake2b_64,
};

/// `SHAKE256(domain || seed)`, squeezed into `outs` in order.
pub(crate) fn shake256_squeeze(domain: &[u8], seed: &[u8], outs: &mut [&mut [u8]]) {
    let mut h = Shake256::default();
    h.update(domain);
    h.update(seed);
    let mut reader = h.finalize_xof();
    for out in outs.iter_mut() {
        reader.read(out);
    }
}

/// Raw XChaCha20 (libsodium `crypto_stream_xchacha20_xor`: block counter 0), in place.
pub(crate) fn xchacha20_xor(key: &[u8; 32], nonce: &[u8; XNONCE_LEN], buf: &mut [u8]) {
    let mut cipher = XChaCha20::new(key.into(), nonce.into());
    cipher.apply_keystream(buf);
}

/// XChaCha20-Poly1305 (IETF, libsodium `crypto_aead_xchacha20poly1305_ietf_encrypt`)
/// with no associated data: returns `ciphertext || tag`.
pub(crate) fn aead_encrypt(
    key: &[u8; 32],
    nonce: &[u8; XNONCE_LEN],
    plaintext: Vec<u8>,
) -> Option<Vec<u8>> {
    let mut buf = plaintext;
    let cipher = XChaCha20Poly1305::new(key.into());
    let tag = match cipher.encrypt_inout_detached(nonce.into(), &[], buf.as_mut_slice().into()) {
        Ok(tag) => tag,
        Err(_) => {
            buf.zeroize();
            return None;
        }
    };
    buf.extend_from_slice(&tag);
    Some(buf)
}

/// Inverse of [`aead_encrypt`]; `None` when the tag does not verify (or the
/// input is shorter than a tag). The returned plaintext is freshly allocated.
pub(crate) fn aead_decrypt(
    key: &[u8; 32],
    nonce: &[u8; XNONCE_LEN],
    ciphertext: &[u8],
) -> Option<Vec<u8>> {
    let body_len = ciphertext.len().checked_sub(AEAD_TAG_LEN)?;
    let (body, tag) = ciphertext.split_at_checked(body_len)?;
    let tag: &[u8; AEAD_TAG_LEN] = tag.try_into().ok()?;
    let mut buf = body.to_vec();
    let cipher = XChaCha20Poly1305::new(key.into());
    match cipher.decrypt_inout_detached(nonce.into(), &[], buf.as_mut_slice().into(), tag.into()) {
        Ok(()) => Some(buf),
        Err(_) => {
            buf.zeroize();
            None
        }
    }
}

/// Ed25519 verification with libsodium's `crypto_sign_ed25519_verify_detached`
/// acceptance rules: canonical public key encoding, no small-order public key
/// or `R`, canonical `S`, cofactorless equation compared on encodings.
pub(crate) fn ed25519_verify(public: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> bool {
    // Canonical encoding: decompress-then-compress must give back the input.
    match CompressedEdwardsY(*public).decompress() {
        Some(point) if point.compress().to_bytes() == *public => {}
        _ => return false,
    }
    let Ok(key) = VerifyingKey::from_bytes(public) else {
        return false;
    };
    key.verify_strict(message, &Signature::from_bytes(signature))
        .is_ok()
}

/// A uniformly random index in `0..n` (`n ≥ 1`) by rejection sampling on a
/// power-of-two mask: unbiased and division-free.
pub(crate) fn uniform_index<R: CryptoRng + ?Sized>(rng: &mut R, n: usize) -> usize {
    if n <= 1 {
        return 0;
    }
    let bound = n as u64;
    let mask = u64::MAX >> (bound - 1).leading_zeros();
    loop {
        let mut b = [0u8; 8];
        rng.fill_bytes(&mut b);
        let candidate = u64::from_le_bytes(b) & mask;
        if candidate < bound {
            // candidate < n ≤ usize::MAX, so the conversion is lossless.
            return usize::try_from(candidate).unwrap_or(0);
        }
    }
}

/// A uniformly random permutation of `0..n` (Fisher–Yates, from the last
/// position down, each swap partner drawn with [`uniform_index`]).
pub(crate) fn random_permutation<R: CryptoRng + ?Sized>(rng: &mut R, n: usize) -> Vec<usize> {
    let mut perm: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = uniform_index(rng, i + 1);
        perm.swap(i, j);
    }
    perm
}

/// Rounds `n` up to a multiple of 4 (the slot bucket size of §9.7). Division-free.
pub(crate) const fn round_up_to_4(n: usize) -> usize {
    (n + 3) & !3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permutation_is_a_permutation() {
        use rand_chacha::{ChaCha20Rng, rand_core::SeedableRng};
        let mut rng = ChaCha20Rng::from_seed([3; 32]);
        for n in 0..20 {
            let mut p = random_permutation(&mut rng, n);
            p.sort_unstable();
            assert_eq!(p, (0..n).collect::<Vec<_>>());
        }
        assert_eq!(round_up_to_4(0), 0);
        assert_eq!(round_up_to_4(1), 4);
        assert_eq!(round_up_to_4(4), 4);
        assert_eq!(round_up_to_4(5), 8);
    }
}
