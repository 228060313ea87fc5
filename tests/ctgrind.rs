//! Constant-time checks in the style of ctgrind: secret inputs are marked
//! *undefined* with Valgrind memcheck client requests, so memcheck reports
//! every branch and every memory address that depends on a secret. Public
//! results (a verdict, a shared secret handed to the caller, a public key)
//! are marked *defined* again before the test looks at them.
//!
//! `.ci/ctgrind.sh` runs this binary under `valgrind --error-exitcode`:
//! `constant_time_checks` must report nothing, and the positive control
//! `positive_control_leaky_comparison` (a comparison that branches on a
//! secret byte) must be reported, which proves the harness sees leaks.
//! Outside Valgrind the client requests do nothing and these are ordinary
//! functional tests.
//!
//! What is checked, each with the crate and parameters the library uses:
//!
//! - header decryption (XChaCha20-Poly1305, 44-byte header, 34-byte AD) and
//!   message-body decryption (ChaCha20-Poly1305, zero nonce), right and wrong
//!   key (`src/aead.rs`);
//! - ML-KEM-768 decapsulation (libcrux, the default backend) with a valid and
//!   an invalid ciphertext: the secret vector `s` and the rejection secret `z`
//!   are undefined (the public half of the decapsulation key is not);
//! - the ratchet's root step (HKDF-SHA256 with the root key as salt after an
//!   X25519 with a secret scalar) and chain step (two HMAC-SHA256), with the
//!   labels of `src/kdf.rs`;
//! - the link SAS (`session_v2::link::sas_from_seed`) from a secret seed;
//! - hint matching: the direct-message key indicator
//!   (`session_v2::dm::key_indicator`) and the device-group removal check
//!   (`session_v2::device_group::is_kicked`) under a secret identity.
//!
//! The only declassified branch inside a dependency is the AEAD's
//! tag verdict, listed with its reason in `.ci/ctgrind.supp`.
#![cfg(feature = "session-v2")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, XChaCha20Poly1305};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use libcrux_ml_kem::mlkem768;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use session_ratchet::secret::AccountKeySeed;
use session_ratchet::session_v2::account_keys::account_key_pair;
use session_ratchet::session_v2::device_group::{
    DeviceEntry, DeviceRecord, GroupPayload, encrypt_group, is_kicked,
};
use session_ratchet::session_v2::identity::Identity;
use session_ratchet::session_v2::{dm, link};
use sha2::Sha256;
use std::hint::black_box;
use valgrind_requests::{classify, declassify};
use x25519_dalek::{PublicKey, StaticSecret};

fn rng() -> ChaCha20Rng {
    ChaCha20Rng::from_seed([0xC7; 32])
}

fn random<const N: usize>(r: &mut ChaCha20Rng) -> [u8; N] {
    let mut b = [0u8; N];
    r.fill_bytes(&mut b);
    b
}

/// Opens with a secret key; returns the public verdict and plaintext.
fn open_header(key: &[u8; 32], nonce: &[u8; 24], ad: &[u8], ct: &[u8]) -> (bool, Vec<u8>) {
    let mut buf = ct.to_vec();
    let ok = XChaCha20Poly1305::new(key.into())
        .decrypt_in_place(nonce.into(), ad, &mut buf)
        .is_ok();
    declassify(&ok);
    declassify(buf.as_slice());
    (ok, buf)
}

fn open_body(key: &[u8; 32], ad: &[u8], ct: &[u8]) -> (bool, Vec<u8>) {
    let mut buf = ct.to_vec();
    let ok = ChaCha20Poly1305::new(key.into())
        .decrypt_in_place(&[0u8; 12].into(), ad, &mut buf)
        .is_ok();
    declassify(&ok);
    declassify(buf.as_slice());
    (ok, buf)
}

fn aead_decrypt_right_and_wrong_key() {
    let mut r = rng();
    let hk: [u8; 32] = random(&mut r);
    let mk: [u8; 32] = random(&mut r);
    let nonce: [u8; 24] = random(&mut r);
    let header: [u8; 44] = random(&mut r);
    let ad = [0x5Au8; 34];
    let body = b"message body, padded to its bucket".to_vec();

    let mut enc_header = header.to_vec();
    XChaCha20Poly1305::new(&hk.into())
        .encrypt_in_place(&nonce.into(), &ad, &mut enc_header)
        .unwrap();
    let mut enc_body = body.clone();
    ChaCha20Poly1305::new(&mk.into())
        .encrypt_in_place(&[0u8; 12].into(), &ad, &mut enc_body)
        .unwrap();

    for (key, right) in [(hk, true), (random(&mut r), false)] {
        let key = black_box(key);
        classify(&key);
        let (ok, pt) = open_header(&key, &nonce, &ad, &enc_header);
        assert_eq!(ok, right);
        if right {
            assert_eq!(pt, header);
        }
    }
    for (key, right) in [(mk, true), (random(&mut r), false)] {
        let key = black_box(key);
        classify(&key);
        let (ok, pt) = open_body(&key, &ad, &enc_body);
        assert_eq!(ok, right);
        if right {
            assert_eq!(pt, body);
        }
    }
}

fn mlkem_decapsulation_valid_and_invalid() {
    let mut r = rng();
    let (sk, pk) = mlkem768::generate_key_pair(random::<64>(&mut r)).into_parts();
    let (ct, ss) = mlkem768::encapsulate(&pk, random::<32>(&mut r));
    let sk: [u8; 2400] = sk.into();
    let mut bad = *ct.as_slice();
    bad[17] ^= 0x40;
    for (ct, valid) in [(*ct.as_slice(), true), (bad, false)] {
        // dk = s (1152) ‖ ek (1184) ‖ H(ek) (32) ‖ z (32): only s and z are secret.
        let sk = black_box(sk);
        classify(&sk[..1152]);
        classify(&sk[2368..]);
        let got = mlkem768::decapsulate(
            &mlkem768::MlKem768PrivateKey::from(sk),
            &mlkem768::MlKem768Ciphertext::from(ct),
        );
        declassify(&got);
        assert_eq!(got == ss, valid);
    }
}

/// Labels of `src/kdf.rs` (`label::RATCHET_ROOT`, `MESSAGE_KEY`, `CHAIN_KEY`).
const RATCHET_ROOT: &[u8] = b"SessionRatchet/v1/ratchet-root";
const MESSAGE_KEY: &[u8] = b"SessionRatchet/v1/message-key";
const CHAIN_KEY: &[u8] = b"SessionRatchet/v1/chain-key";

fn hmac(key: &[u8; 32], label: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    block[..32].copy_from_slice(key);
    let mut mac = <Hmac<Sha256> as hmac::KeyInit>::new(&block.into());
    mac.update(label);
    mac.finalize().into_bytes().into()
}

fn root_and_chain_kdf_steps() {
    let mut r = rng();
    let rk: [u8; 32] = random(&mut r);
    let own: [u8; 32] = random(&mut r);
    let peer = PublicKey::from(&StaticSecret::from(random::<32>(&mut r)));
    let reference = {
        let dh = StaticSecret::from(own).diffie_hellman(&peer);
        let mut okm = [0u8; 96];
        Hkdf::<Sha256>::new(Some(&rk), dh.as_bytes())
            .expand_multi_info(&[RATCHET_ROOT, &[0]], &mut okm)
            .unwrap();
        okm
    };

    let (rk, own) = (black_box(rk), black_box(own));
    classify(&rk);
    classify(&own);
    // Root step: DH with the secret ratchet key, HKDF with the root key as salt.
    let dh = StaticSecret::from(own).diffie_hellman(&peer);
    let mut okm = [0u8; 96];
    Hkdf::<Sha256>::new(Some(&rk), dh.as_bytes())
        .expand_multi_info(&[RATCHET_ROOT, &[0]], &mut okm)
        .unwrap();
    // Chain step on the new chain key: message key and next chain key.
    let ck: [u8; 32] = okm[32..64].try_into().unwrap();
    let mk = hmac(&ck, MESSAGE_KEY);
    let next = hmac(&ck, CHAIN_KEY);
    declassify(&okm);
    declassify(&mk);
    declassify(&next);
    assert_eq!(okm, reference);
    assert_ne!(mk, next);
}

fn sas_from_secret_seed() {
    let seed: [u8; 16] = black_box(random(&mut rng()));
    let expected = link::sas_from_seed(&seed);
    classify(&seed);
    let sas = link::sas_from_seed(&seed);
    declassify(&sas.indices);
    assert_eq!(sas, expected);
    assert!(sas.indices.iter().all(|&i| i < 64));
}

/// An identity whose seed is undefined; its public keys are declassified.
fn secret_identity(seed: [u8; 16]) -> Identity {
    let seed = black_box(seed);
    classify(&seed);
    let id = Identity::from_seed_bytes(&seed).unwrap();
    declassify(id.ed25519_public());
    declassify(id.x25519_public().as_bytes());
    id
}

fn hint_matching() {
    let mut r = rng();
    let sender = Identity::from_seed_bytes(&[1u8; 16]).unwrap();
    let bob_seed = [2u8; 16];
    let public_bob = Identity::from_seed_bytes(&bob_seed).unwrap();
    let keys = account_key_pair(&AccountKeySeed::from_bytes([3; 32]));
    let msg = dm::encrypt_pfs(
        &mut r,
        &sender,
        &public_bob.session_id(),
        &keys.public_keys(),
        b"hint",
        None,
    )
    .unwrap();
    let expected = dm::key_indicator(&public_bob, &msg).unwrap();

    let bob = secret_identity(bob_seed);
    let ki = dm::key_indicator(&bob, &msg);
    declassify(&ki);
    let ki = ki.unwrap();
    assert_eq!(ki, expected);
    assert_eq!(ki, keys.mlkem_public().as_bytes()[..2]);

    // Device-group removal notice: matched with `ct_eq` under the account secret.
    let account_seed = [4u8; 16];
    let account = Identity::from_seed_bytes(&account_seed).unwrap();
    let dev = account_key_pair(&AccountKeySeed::from_bytes([5; 32]));
    let mut payload = GroupPayload::default();
    payload.devices.insert(
        [6; 32],
        DeviceEntry::Active(Box::new(DeviceRecord::new(1, 0, &dev))),
    );
    payload
        .devices
        .insert([7; 32], DeviceEntry::Removed { removed_at: 99 });
    let group = encrypt_group(&mut r, &account, &payload).unwrap();
    let account = secret_identity(account_seed);
    for (id, kicked) in [([7u8; 32], true), ([6u8; 32], false)] {
        let got = is_kicked(&group, &account, &id);
        declassify(&got);
        assert_eq!(got.unwrap(), kicked);
    }
}

#[test]
fn constant_time_checks() {
    aead_decrypt_right_and_wrong_key();
    mlkem_decapsulation_valid_and_invalid();
    root_and_chain_kdf_steps();
    sas_from_secret_seed();
    hint_matching();
}

/// Branches on secret bytes: the harness must report it (`.ci/ctgrind.sh`
/// expects Valgrind's error exit code for this test alone).
#[inline(never)]
fn leaky_eq(a: &[u8], b: &[u8]) -> bool {
    for (x, y) in a.iter().zip(b) {
        if black_box(*x) != black_box(*y) {
            return false;
        }
    }
    true
}

#[test]
fn positive_control_leaky_comparison() {
    let secret: [u8; 32] = black_box(random(&mut rng()));
    let guess = [0u8; 32];
    classify(&secret);
    let eq = leaky_eq(&secret, &guess);
    declassify(&eq);
    assert!(!eq);
}
