//! Key derivation and every domain-separation label (spec §3.5, §3.6).
//!
//! This module owns the KDF label registry: every string that separates one
//! derived key from another is a constant here and appears once in the spec's
//! label table. No other module spells a label.
//!
//! It also owns the crate's one BLAKE2b wrapper (keyed and personalised,
//! libsodium `crypto_generichash_blake2b_salt_personal` semantics), used by
//! the emoji SAS of device linking (spec §8.5.2) and the Session v2 formats
//! (spec chapter 9). Its personalisation strings are Session's external
//! format constants, named where they are used, not labels of this crate.
#![deny(clippy::integer_division_remainder_used)]

use blake2::Blake2bMac;
use blake2::digest::FixedOutput;
use blake2::digest::consts::{U2, U8, U16, U24, U32, U64};
use hkdf::HkdfExtract;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use zeroize::Zeroize;

/// Every domain-separation label (spec §3.6, table "Labels").
pub(crate) mod label {
    /// Prefix shared by all of this crate's labels; the `v1` names the key schedule version.
    #[cfg(test)]
    pub(crate) const PREFIX: &[u8] = b"SessionRatchet/v1/";
    /// Signature over a signed prekey (spec §4.3).
    pub(crate) const PREKEY_SIGNATURE: &[u8] = b"SessionRatchet/v1/prekey-signature";
    /// Signature of an account key over a device's identity keys (spec §4.2).
    pub(crate) const DEVICE_CERTIFICATE: &[u8] = b"SessionRatchet/v1/device-certificate";
    /// Hash of the handshake transcript (spec §5.3).
    pub(crate) const HANDSHAKE_TRANSCRIPT: &[u8] = b"SessionRatchet/v1/handshake-transcript";
    /// HKDF `info` prefix of the handshake key derivation (spec §5.4).
    pub(crate) const HANDSHAKE_KEYS: &[u8] = b"SessionRatchet/v1/handshake-keys";
    /// Ratchet initialisation from the handshake's root key (spec §7.2).
    pub(crate) const RATCHET_INIT: &[u8] = b"SessionRatchet/v1/ratchet-init";
    /// HKDF `info` prefix of the root KDF (spec §7.3).
    pub(crate) const RATCHET_ROOT: &[u8] = b"SessionRatchet/v1/ratchet-root";
    /// HMAC input deriving a message key from a chain key (spec §7.3).
    pub(crate) const MESSAGE_KEY: &[u8] = b"SessionRatchet/v1/message-key";
    /// HMAC input deriving the next chain key (spec §7.3).
    pub(crate) const CHAIN_KEY: &[u8] = b"SessionRatchet/v1/chain-key";
    /// HMAC input deriving a message's body key from its message key and
    /// header nonce (spec §7.3, §7.11).
    pub(crate) const MESSAGE_BODY_KEY: &[u8] = b"SessionRatchet/v1/message-body-key";
    /// Associated-data prefix of stored-state encryption (spec §7.10).
    pub(crate) const STORED_STATE: &[u8] = b"SessionRatchet/v1/stored-state";
    /// Hash of the Session v2 upgrade transcript (spec §9.11.3).
    #[cfg_attr(not(feature = "session-v2"), allow(dead_code))]
    pub(crate) const UPGRADE_TRANSCRIPT: &[u8] = b"SessionRatchet/v1/upgrade-transcript";
    /// HKDF `info` prefix of the Session v2 upgrade key derivation (spec §9.11.3).
    #[cfg_attr(not(feature = "session-v2"), allow(dead_code))]
    pub(crate) const UPGRADE_KEYS: &[u8] = b"SessionRatchet/v1/upgrade-keys";
    /// Prefix of the hash of a device list's signed body (spec §8.2).
    pub(crate) const DEVICE_LIST_HASH: &[u8] = b"SessionRatchet/v1/device-list-hash";
    /// Signature of an account key over a device list's hash (spec §8.2).
    pub(crate) const DEVICE_LIST_SIGNATURE: &[u8] = b"SessionRatchet/v1/device-list-signature";
    /// HKDF `info` of a prekey-record slot key (spec §8.4).
    pub(crate) const PREKEY_SLOT: &[u8] = b"SessionRatchet/v1/prekey-slot";
    /// Associated-data prefix binding an envelope slot's routing header
    /// into the ratchet message it carries (spec §8.6.3).
    pub(crate) const ENVELOPE_ROUTING: &[u8] = b"SessionRatchet/v1/envelope-routing";
    /// HKDF `info` of an envelope slot's hint and key (spec §8.7).
    pub(crate) const ENVELOPE_SLOT: &[u8] = b"SessionRatchet/v1/envelope-slot";
    /// Hash of a device-link transcript (spec §8.5.5).
    pub(crate) const LINK_TRANSCRIPT: &[u8] = b"SessionRatchet/v1/link-transcript";
    /// HKDF `info` of a device-link payload key (spec §8.5.5).
    pub(crate) const LINK_PAYLOAD_KEY: &[u8] = b"SessionRatchet/v1/link-payload-key";
    /// Prefix of the emoji SAS input of a device link (spec §8.5.5).
    pub(crate) const LINK_SAS: &[u8] = b"SessionRatchet/v1/link-sas";
    /// HKDF `info` of the client record keys (spec §10.3).
    pub(crate) const RECORD_KEYS: &[u8] = b"SessionRatchet/v1/record-keys";
    /// Associated-data prefix of an encrypted client record (spec §10.3).
    pub(crate) const STORED_RECORD: &[u8] = b"SessionRatchet/v1/stored-record";
    /// Prefix of the hash that stands for an identifier in log lines (spec §10.10).
    #[cfg_attr(not(feature = "log"), allow(dead_code))]
    pub(crate) const LOG_ID: &[u8] = b"SessionRatchet/v1/log-id";
    /// The X-Wing combiner label, `\.//^\` (draft-connolly-cfrg-xwing-kem-06 §5.3).
    pub(crate) const XWING: &[u8; 6] = br"\.//^\";

    /// All labels of this crate, for the uniqueness test.
    #[cfg(test)]
    pub(crate) const ALL: &[&[u8]] = &[
        PREKEY_SIGNATURE,
        DEVICE_CERTIFICATE,
        HANDSHAKE_TRANSCRIPT,
        HANDSHAKE_KEYS,
        RATCHET_INIT,
        RATCHET_ROOT,
        MESSAGE_KEY,
        CHAIN_KEY,
        MESSAGE_BODY_KEY,
        STORED_STATE,
        UPGRADE_TRANSCRIPT,
        UPGRADE_KEYS,
        DEVICE_LIST_HASH,
        DEVICE_LIST_SIGNATURE,
        PREKEY_SLOT,
        ENVELOPE_ROUTING,
        ENVELOPE_SLOT,
        LINK_TRANSCRIPT,
        LINK_PAYLOAD_KEY,
        LINK_SAS,
        RECORD_KEYS,
        STORED_RECORD,
        LOG_ID,
    ];
}

/// HKDF-SHA256 (RFC 5869) with the input keying material and `info` given as
/// concatenated parts, so callers never build secret-bearing temporary vectors.
///
/// Returns `false` only if `out` is longer than 255 × 32 bytes, which no
/// caller asks for (all lengths are constants); callers turn it into an
/// internal error instead of panicking.
#[must_use]
pub(crate) fn hkdf_sha256(salt: &[u8], ikm: &[&[u8]], info: &[&[u8]], out: &mut [u8]) -> bool {
    let mut extract = HkdfExtract::<Sha256>::new(Some(salt));
    for part in ikm {
        extract.input_ikm(part);
    }
    let (mut prk, hkdf) = extract.finalize();
    prk.as_mut_slice().zeroize();
    hkdf.expand_multi_info(info, out).is_ok()
}

/// HMAC-SHA256 over concatenated parts (the ratchet's chain KDF).
pub(crate) fn hmac_sha256(key: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC zero-pads keys shorter than the 64-byte block (RFC 2104 §2), so
    // padding here gives the same MAC through the infallible fixed-size
    // constructor instead of the fallible `new_from_slice`.
    let mut block = [0u8; 64];
    block[..32].copy_from_slice(key);
    let mut mac = <Hmac<Sha256> as KeyInit>::new(&block.into());
    block.zeroize();
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// SHA-256 over concatenated parts (transcript hashing; no secrets).
pub(crate) fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for part in parts {
        h.update(part);
    }
    h.finalize().into()
}

macro_rules! blake2b_fn {
    ($(#[$doc:meta])* $name:ident, $size:ty, $n:expr) => {
        $(#[$doc])*
        pub(crate) fn $name(key: Option<&[u8]>, pers: &[u8; 16], parts: &[&[u8]]) -> [u8; $n] {
            // A BLAKE2b key is at most 64 bytes and every caller passes a
            // constant-size key of 32 or 33 bytes, so the error arm is never
            // taken; the known-answer tests pin the outputs, so the all-zero
            // value it would give could not go unnoticed.
            let mut out = [0u8; $n];
            if let Ok(mut mac) = Blake2bMac::<$size>::new_with_salt_and_personal(key, &[], pers) {
                for part in parts {
                    mac.update(part);
                }
                out.copy_from_slice(&mac.finalize_fixed());
            }
            out
        }
    };
}

blake2b_fn!(
    /// BLAKE2b with a 2-byte output.
    #[cfg_attr(not(feature = "session-v2"), allow(dead_code))]
    blake2b_2, U2, 2
);
blake2b_fn!(
    /// BLAKE2b with an 8-byte output.
    #[cfg_attr(not(feature = "session-v2"), allow(dead_code))]
    blake2b_8, U8, 8
);
blake2b_fn!(
    /// BLAKE2b with a 16-byte output (the SAS salt, spec §8.5.2).
    blake2b_16, U16, 16
);
blake2b_fn!(
    /// BLAKE2b with a 24-byte output.
    #[cfg_attr(not(feature = "session-v2"), allow(dead_code))]
    blake2b_24, U24, 24
);
blake2b_fn!(
    /// BLAKE2b with a 32-byte output.
    #[cfg_attr(not(feature = "session-v2"), allow(dead_code))]
    blake2b_32, U32, 32
);
blake2b_fn!(
    /// BLAKE2b with a 64-byte output.
    #[cfg_attr(not(feature = "session-v2"), allow(dead_code))]
    blake2b_64, U64, 64
);

/// Unkeyed, unpersonalised BLAKE2b with a 32-byte output (libsodium
/// `crypto_generichash` with no key).
#[cfg_attr(not(feature = "session-v2"), allow(dead_code))]
pub(crate) fn blake2b_32_plain(parts: &[&[u8]]) -> [u8; 32] {
    blake2b_32(None, &[0u8; 16], parts)
}

/// Unpersonalised keyed BLAKE2b with a 24-byte output.
#[cfg_attr(not(feature = "session-v2"), allow(dead_code))]
pub(crate) fn blake2b_24_keyed(key: &[u8], parts: &[&[u8]]) -> [u8; 24] {
    blake2b_24(Some(key), &[0u8; 16], parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Known answers computed with Python's hashlib.blake2b (same parameter
    // block as libsodium's crypto_generichash_blake2b_salt_personal).
    #[test]
    fn blake2b_matches_hashlib() {
        // hashlib.blake2b(b"abc", digest_size=16, key=bytes(range(32)), person=b"SessionDevKicked")
        let key: alloc::vec::Vec<u8> = (0u8..32).collect();
        assert_eq!(
            hex::encode(blake2b_16(Some(&key), b"SessionDevKicked", &[b"a", b"bc"])),
            "3a5aa59e1aaea5e079cca71e2637e012"
        );
        // hashlib.blake2b(b"abc", digest_size=32) (unkeyed, no persona)
        assert_eq!(
            hex::encode(blake2b_32_plain(&[b"abc"])),
            "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319"
        );
    }

    #[test]
    fn labels_are_unique_and_prefixed() {
        for (i, a) in label::ALL.iter().enumerate() {
            assert!(a.starts_with(label::PREFIX));
            for b in &label::ALL[i + 1..] {
                assert_ne!(a, b);
                // No label is a prefix of another: concatenated inputs stay unambiguous.
                assert!(!a.starts_with(b) && !b.starts_with(a));
            }
        }
    }

    #[test]
    fn hkdf_matches_rfc5869_test_case_1() {
        let ikm = [0x0bu8; 22];
        let salt = hex::decode("000102030405060708090a0b0c").unwrap();
        let info = hex::decode("f0f1f2f3f4f5f6f7f8f9").unwrap();
        let mut okm = [0u8; 42];
        // Split both IKM and info to check the multi-part path.
        assert!(hkdf_sha256(
            &salt,
            &[&ikm[..5], &ikm[5..]],
            &[&info[..3], &info[3..]],
            &mut okm
        ));
        assert_eq!(
            hex::encode(okm),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
        );
    }

    #[test]
    fn hmac_matches_rfc4231_with_32_byte_key() {
        // RFC 4231 test case 2 uses a short key; HMAC pads keys with zeros, so
        // the key "Jefe" zero-extended to 32 bytes gives the same MAC.
        let mut key = [0u8; 32];
        key[..4].copy_from_slice(b"Jefe");
        let mac = hmac_sha256(&key, &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
