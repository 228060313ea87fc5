//! Authenticated encryption (spec §3.7).
//!
//! This module owns the two AEAD uses of the protocol:
//!
//! - **message bodies**: ChaCha20-Poly1305 (RFC 8439) under a single-use
//!   key with the all-zero nonce — a ratchet message's body key (derived
//!   from its message key and its random header nonce, spec §7.3, so even a
//!   message key reused by a rolled-back sender gives a new one, §7.11), an
//!   envelope slot key or the device-link payload key; each such key
//!   encrypts exactly one body, so a fixed nonce is safe;
//! - **headers and stored state**: XChaCha20-Poly1305 under a long-lived key
//!   with a random 24-byte nonce drawn from the injected RNG.
//!
//! It also owns the one envelope of every encrypted stored object (stored
//! sessions, spec §7.10; stored prekey stores, spec §4.6): [`seal_stored`]
//! and [`open_stored`].
//!
//! ## Fuzzing build only
//!
//! When the crate is compiled with `--cfg fuzzing` (set by `cargo fuzz` and
//! nothing else), both `open` functions also accept a ciphertext whose tag is
//! sixteen zero bytes and then return the bytes before the tag unchanged, as
//! if they were the plaintext. Fuzzers can then write headers, bodies, PQ
//! sections and stored sessions directly and reach the states behind
//! authentication (rustls and vodozemac weaken their fuzzing builds the same
//! way). This code is never compiled otherwise: a unit test below and
//! `tests/fuzz_corpus.rs` check that a zero tag is rejected in normal builds.

use crate::kdf::label;
use crate::secret::StorageKey;
use crate::wire::WireError;
use alloc::vec::Vec;
use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, XChaCha20Poly1305};
use rand_core::CryptoRng;

/// Poly1305 tag length.
pub(crate) const TAG_LEN: usize = 16;
/// XChaCha20 nonce length.
pub(crate) const XNONCE_LEN: usize = 24;

/// Encrypts `buf` in place (appending the tag) under a single-use key.
pub(crate) fn seal_single_use(key: &[u8; 32], ad: &[u8], buf: &mut Vec<u8>) -> bool {
    let cipher = ChaCha20Poly1305::new(key.into());
    cipher.encrypt_in_place(&[0u8; 12].into(), ad, buf).is_ok()
}

/// Fuzzing builds only: accepts an all-zero tag, leaving the bytes before it
/// as the "plaintext". Never compiled outside `--cfg fuzzing`.
#[cfg(fuzzing)]
fn fuzzing_zero_tag(buf: &mut Vec<u8>) -> bool {
    let Some(at) = buf.len().checked_sub(TAG_LEN) else {
        return false;
    };
    if buf.get(at..).is_some_and(|tag| tag.iter().all(|&b| b == 0)) {
        buf.truncate(at);
        return true;
    }
    false
}

/// Decrypts `buf` in place (removing the tag); `false` if authentication fails.
pub(crate) fn open_single_use(key: &[u8; 32], ad: &[u8], buf: &mut Vec<u8>) -> bool {
    #[cfg(fuzzing)]
    if fuzzing_zero_tag(buf) {
        return true;
    }
    let cipher = ChaCha20Poly1305::new(key.into());
    cipher.decrypt_in_place(&[0u8; 12].into(), ad, buf).is_ok()
}

/// Encrypts `buf` in place under a reusable key with a caller-drawn random nonce.
pub(crate) fn seal_x(
    key: &[u8; 32],
    nonce: &[u8; XNONCE_LEN],
    ad: &[u8],
    buf: &mut Vec<u8>,
) -> bool {
    let cipher = XChaCha20Poly1305::new(key.into());
    cipher.encrypt_in_place(nonce.into(), ad, buf).is_ok()
}

/// Decrypts `buf` in place; `false` if authentication fails.
pub(crate) fn open_x(
    key: &[u8; 32],
    nonce: &[u8; XNONCE_LEN],
    ad: &[u8],
    buf: &mut Vec<u8>,
) -> bool {
    #[cfg(fuzzing)]
    if fuzzing_zero_tag(buf) {
        return true;
    }
    let cipher = XChaCha20Poly1305::new(key.into());
    cipher.decrypt_in_place(nonce.into(), ad, buf).is_ok()
}

/// Why an encrypted stored object could not be opened. Each caller maps
/// these to its own area's error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StoredOpenError {
    /// The version byte is not the one expected (written by a newer library).
    UnsupportedVersion(u8),
    /// The input is too short for the envelope, or its type byte names
    /// another kind of object.
    Malformed(WireError),
    /// The storage key is wrong or the bytes were altered.
    WrongKeyOrTampered,
}

/// Associated data of an encrypted stored object: `LABEL_STORED_STATE ‖
/// version ‖ type`, so a blob of one type never opens as another.
fn stored_ad(version: u8, ty: u8) -> Vec<u8> {
    let mut ad = Vec::with_capacity(label::STORED_STATE.len() + 2);
    ad.extend_from_slice(label::STORED_STATE);
    ad.push(version);
    ad.push(ty);
    ad
}

/// Encrypts the plain encoding of a stored object (spec §7.10, §4.6):
/// `version ‖ ty ‖ nonce (24) ‖ XChaCha20-Poly1305(key, nonce, plain,
/// AD = LABEL_STORED_STATE ‖ version ‖ ty)`. Draws the 24-byte nonce.
pub(crate) fn seal_stored<R: CryptoRng + ?Sized>(
    rng: &mut R,
    key: &StorageKey,
    version: u8,
    ty: u8,
    plain: &[u8],
) -> Vec<u8> {
    let mut nonce = [0u8; XNONCE_LEN];
    rng.fill_bytes(&mut nonce);
    // Room for the tag up front: appending it must not reallocate and leave
    // an unzeroized copy of the plaintext behind.
    let mut body = Vec::with_capacity(plain.len() + TAG_LEN);
    body.extend_from_slice(plain);
    // Sealing cannot fail for in-memory buffers below the stored-size limit.
    let _ = seal_x(key.expose(), &nonce, &stored_ad(version, ty), &mut body);
    let mut out = Vec::with_capacity(2 + XNONCE_LEN + body.len());
    out.push(version);
    out.push(ty);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&body);
    out
}

/// Opens a blob made by [`seal_stored`] with the same `version` and `ty`,
/// returning the plain encoding (a secret: the caller wraps it at once).
pub(crate) fn open_stored(
    bytes: &[u8],
    key: &StorageKey,
    version: u8,
    ty: u8,
) -> Result<Vec<u8>, StoredOpenError> {
    let truncated = |field| StoredOpenError::Malformed(WireError::Truncated { field });
    let (&v, rest) = bytes.split_first().ok_or(truncated("version"))?;
    if v != version {
        return Err(StoredOpenError::UnsupportedVersion(v));
    }
    let (&actual, rest) = rest.split_first().ok_or(truncated("type"))?;
    if actual != ty {
        return Err(StoredOpenError::Malformed(WireError::UnexpectedType {
            expected: ty,
            actual,
        }));
    }
    let (nonce, body) = rest
        .split_first_chunk::<XNONCE_LEN>()
        .ok_or(truncated("nonce"))?;
    let mut buf = body.to_vec();
    if !open_x(key.expose(), nonce, &stored_ad(version, ty), &mut buf) {
        return Err(StoredOpenError::WrongKeyOrTampered);
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn chacha20poly1305_rfc8439_2_8_2() {
        let key: [u8; 32] =
            hex::decode("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f")
                .unwrap()
                .try_into()
                .unwrap();
        let nonce = hex::decode("070000004041424344454647").unwrap();
        let ad = hex::decode("50515253c0c1c2c3c4c5c6c7").unwrap();
        let pt = b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.";
        let mut buf = pt.to_vec();
        ChaCha20Poly1305::new(&key.into())
            .encrypt_in_place(nonce.as_slice().try_into().unwrap(), &ad, &mut buf)
            .unwrap();
        assert_eq!(
            hex::encode(&buf[buf.len() - 16..]),
            "1ae10b594f09e26a7e902ecbd0600691"
        );
    }

    #[test]
    fn single_use_round_trip_and_tamper() {
        let key = [9u8; 32];
        let mut buf = b"hello".to_vec();
        assert!(seal_single_use(&key, b"ad", &mut buf));
        assert_eq!(buf.len(), 5 + TAG_LEN);
        let mut t = buf.clone();
        t[0] ^= 1;
        assert!(!open_single_use(&key, b"ad", &mut t));
        let mut t = buf.clone();
        assert!(!open_single_use(&key, b"aD", &mut t));
        assert!(open_single_use(&key, b"ad", &mut buf));
        assert_eq!(buf, b"hello");
    }

    #[test]
    fn x_round_trip_and_wrong_nonce() {
        let (key, nonce) = ([1u8; 32], [2u8; 24]);
        let mut buf = b"header".to_vec();
        assert!(seal_x(&key, &nonce, b"", &mut buf));
        let mut t = buf.clone();
        assert!(!open_x(&key, &[3u8; 24], b"", &mut t));
        assert!(open_x(&key, &nonce, b"", &mut buf));
        assert_eq!(buf, b"header");
    }

    #[test]
    fn stored_envelope_binds_version_and_type() {
        use rand_chacha::ChaCha20Rng;
        use rand_core::SeedableRng;
        let mut rng = ChaCha20Rng::from_seed([5; 32]);
        let key = StorageKey::from_bytes([6; 32]);
        let blob = seal_stored(&mut rng, &key, 1, 0x11, b"plain");
        assert_eq!(blob.len(), 2 + XNONCE_LEN + 5 + TAG_LEN);
        assert_eq!(&blob[..2], &[1, 0x11]);
        assert_eq!(open_stored(&blob, &key, 1, 0x11).unwrap(), b"plain");
        assert_eq!(
            open_stored(&blob, &StorageKey::from_bytes([7; 32]), 1, 0x11),
            Err(StoredOpenError::WrongKeyOrTampered)
        );
        assert_eq!(
            open_stored(&blob, &key, 1, 0x14),
            Err(StoredOpenError::Malformed(WireError::UnexpectedType {
                expected: 0x14,
                actual: 0x11
            }))
        );
        assert_eq!(
            open_stored(&blob, &key, 2, 0x11),
            Err(StoredOpenError::UnsupportedVersion(1))
        );
        // The type byte is bound by the associated data, not only checked.
        let mut retyped = blob.clone();
        retyped[1] = 0x14;
        assert_eq!(
            open_stored(&retyped, &key, 1, 0x14),
            Err(StoredOpenError::WrongKeyOrTampered)
        );
        for (cut, field) in [(0, "version"), (1, "type"), (2, "nonce"), (25, "nonce")] {
            assert_eq!(
                open_stored(&blob[..cut], &key, 1, 0x11),
                Err(StoredOpenError::Malformed(WireError::Truncated { field })),
                "cut at {cut}"
            );
        }
        assert_eq!(
            open_stored(&blob[..2 + XNONCE_LEN], &key, 1, 0x11),
            Err(StoredOpenError::WrongKeyOrTampered)
        );
    }

    /// The fuzzing-only zero-tag acceptance is not compiled into normal builds.
    #[cfg(not(fuzzing))]
    #[test]
    fn zero_tag_is_rejected_outside_fuzzing_builds() {
        for len in [0usize, 1, 44, 300] {
            let mut buf = vec![0u8; len + TAG_LEN];
            assert!(!open_single_use(&[0; 32], b"", &mut buf.clone()));
            assert!(!open_single_use(&[7; 32], b"ad", &mut buf));
            let mut buf = vec![0u8; len + TAG_LEN];
            assert!(!open_x(&[0; 32], &[0; 24], b"", &mut buf.clone()));
            assert!(!open_x(&[7; 32], &[1; 24], b"ad", &mut buf));
        }
    }
}
