//! Statistical constant-time tests (dudect: Welch's t-test between the
//! running times of two classes of secret inputs with the same public
//! behaviour). A |t| well below 5 is no evidence of a leak; above 5 is.
//!
//! `cargo bench --bench constant_time` (add `-- --continuous NAME` to keep
//! sampling one test). The operations are those `tests/ctgrind.rs` checks:
//!
//! - `header_open_wrong_key`: XChaCha20-Poly1305 header decryption under a
//!   fixed vs a random wrong key (both fail);
//! - `body_open_right_key`: ChaCha20-Poly1305 body decryption under a fixed
//!   vs a random right key (both succeed);
//! - `mlkem_decaps_valid_vs_invalid`: the library's ML-KEM-768
//!   decapsulation of a valid vs an invalid ciphertext (implicit rejection);
//! - `chain_kdf_step`: the chain step (two HMAC-SHA256) under a fixed vs a
//!   random chain key;
//! - `root_kdf_step`: X25519 + HKDF-SHA256 root step under a fixed vs a
//!   random ratchet key and root key;
//! - `sas_from_seed`: link SAS indices from a fixed vs a random seed;
//! - `hint_key_indicator`: the direct-message key indicator under a fixed
//!   vs a random recipient identity.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, XChaCha20Poly1305};
use dudect_bencher::rand::{Rng, RngExt};
use dudect_bencher::{BenchRng, Class, CtRunner};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use session_ratchet::kem::{MlKemCiphertext, MlKemKeyPair, encapsulate};
use session_ratchet::secret::{AccountKeySeed, MlKemSeed};
use session_ratchet::session_v2::account_keys::account_key_pair;
use session_ratchet::session_v2::identity::Identity;
use session_ratchet::session_v2::{dm, link};
use sha2::Sha256;
use std::hint::black_box;
use x25519_dalek::{PublicKey, StaticSecret};

const SAMPLES: usize = 200_000;

fn bytes<const N: usize>(rng: &mut BenchRng) -> [u8; N] {
    let mut b = [0u8; N];
    rng.fill_bytes(&mut b);
    b
}

fn class(rng: &mut BenchRng) -> Class {
    if rng.random::<bool>() {
        Class::Left
    } else {
        Class::Right
    }
}

fn header_open_wrong_key(runner: &mut CtRunner, rng: &mut BenchRng) {
    let nonce: [u8; 24] = bytes(rng);
    let ad = [0x5Au8; 34];
    let mut ct = bytes::<44>(rng).to_vec();
    XChaCha20Poly1305::new(&bytes::<32>(rng).into())
        .encrypt_in_place(&nonce.into(), &ad, &mut ct)
        .unwrap();
    let fixed = [0u8; 32];
    let inputs: Vec<(Class, [u8; 32])> = (0..SAMPLES)
        .map(|_| match class(rng) {
            Class::Left => (Class::Left, fixed),
            Class::Right => (Class::Right, bytes(rng)),
        })
        .collect();
    for (c, key) in inputs {
        runner.run_one(c, || {
            let mut buf = ct.clone();
            XChaCha20Poly1305::new(&black_box(key).into())
                .decrypt_in_place(&nonce.into(), &ad, &mut buf)
                .is_ok()
        });
    }
}

fn body_open_right_key(runner: &mut CtRunner, rng: &mut BenchRng) {
    // Fixed vs random key; the plaintext is random in both classes, so the
    // ciphertexts (public) are equally distributed and only the key differs.
    let ad = [0x33u8; 80];
    let seal = |key: &[u8; 32], rng: &mut BenchRng| {
        let mut buf = bytes::<240>(rng).to_vec();
        ChaCha20Poly1305::new(key.into())
            .encrypt_in_place(&[0u8; 12].into(), &ad, &mut buf)
            .unwrap();
        buf
    };
    let fixed = [0u8; 32];
    let inputs: Vec<(Class, [u8; 32], Vec<u8>)> = (0..SAMPLES)
        .map(|_| match class(rng) {
            Class::Left => (Class::Left, fixed, seal(&fixed, rng)),
            Class::Right => {
                let k = bytes(rng);
                let ct = seal(&k, rng);
                (Class::Right, k, ct)
            }
        })
        .collect();
    for (c, key, ct) in inputs {
        runner.run_one(c, || {
            let mut buf = ct.clone();
            ChaCha20Poly1305::new(&black_box(key).into())
                .decrypt_in_place(&[0u8; 12].into(), &ad, &mut buf)
                .is_ok()
        });
    }
}

fn mlkem_decaps_valid_vs_invalid(runner: &mut CtRunner, rng: &mut BenchRng) {
    // Both classes get a fresh ciphertext per sample (so only validity differs):
    // Left a valid encapsulation, Right the same with one random bit flipped.
    let mut r = ChaCha20Rng::from_seed(bytes(rng));
    let kp = MlKemKeyPair::from_seed(MlKemSeed::hazmat_from_bytes(bytes(rng)));
    let inputs: Vec<(Class, MlKemCiphertext)> = (0..SAMPLES / 10)
        .map(|_| {
            let (ct, _) = encapsulate(&mut r, kp.public_key()).unwrap();
            let mut bytes = ct.as_bytes().to_vec();
            match class(rng) {
                Class::Left => (Class::Left, MlKemCiphertext::from_bytes(&bytes).unwrap()),
                Class::Right => {
                    let i = usize::from(rng.random::<u16>()) % bytes.len();
                    bytes[i] ^= 1 << (rng.random::<u8>() % 8);
                    (Class::Right, MlKemCiphertext::from_bytes(&bytes).unwrap())
                }
            }
        })
        .collect();
    for (c, ct) in inputs {
        runner.run_one(c, || kp.decapsulate(black_box(&ct)));
    }
}

fn hmac(key: &[u8; 32], label: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    block[..32].copy_from_slice(key);
    let mut mac = <Hmac<Sha256> as hmac::KeyInit>::new(&block.into());
    mac.update(label);
    mac.finalize().into_bytes().into()
}

fn chain_kdf_step(runner: &mut CtRunner, rng: &mut BenchRng) {
    let inputs: Vec<(Class, [u8; 32])> = (0..SAMPLES)
        .map(|_| match class(rng) {
            Class::Left => (Class::Left, [0u8; 32]),
            Class::Right => (Class::Right, bytes(rng)),
        })
        .collect();
    for (c, ck) in inputs {
        runner.run_one(c, || {
            let ck = black_box(ck);
            (
                hmac(&ck, b"SessionRatchet/v1/message-key"),
                hmac(&ck, b"SessionRatchet/v1/chain-key"),
            )
        });
    }
}

fn root_kdf_step(runner: &mut CtRunner, rng: &mut BenchRng) {
    let peer = PublicKey::from(&StaticSecret::from(bytes::<32>(rng)));
    let fixed = ([1u8; 32], [2u8; 32]);
    type Keys = ([u8; 32], [u8; 32]);
    let inputs: Vec<(Class, Keys)> = (0..SAMPLES / 4)
        .map(|_| match class(rng) {
            Class::Left => (Class::Left, fixed),
            Class::Right => (Class::Right, (bytes(rng), bytes(rng))),
        })
        .collect();
    for (c, (rk, own)) in inputs {
        runner.run_one(c, || {
            let dh = StaticSecret::from(black_box(own)).diffie_hellman(&peer);
            let mut okm = [0u8; 96];
            Hkdf::<Sha256>::new(Some(&black_box(rk)), dh.as_bytes())
                .expand_multi_info(&[b"SessionRatchet/v1/ratchet-root", &[0]], &mut okm)
                .unwrap();
            okm
        });
    }
}

fn sas_from_seed(runner: &mut CtRunner, rng: &mut BenchRng) {
    let inputs: Vec<(Class, [u8; 16])> = (0..SAMPLES)
        .map(|_| match class(rng) {
            Class::Left => (Class::Left, [0u8; 16]),
            Class::Right => (Class::Right, bytes(rng)),
        })
        .collect();
    for (c, seed) in inputs {
        runner.run_one(c, || link::sas_from_seed(&black_box(seed)));
    }
}

fn hint_key_indicator(runner: &mut CtRunner, rng: &mut BenchRng) {
    let mut r = ChaCha20Rng::from_seed(bytes(rng));
    let sender = Identity::from_seed_bytes(&[1u8; 16]).unwrap();
    let fixed = Identity::from_seed_bytes(&[2u8; 16]).unwrap();
    let keys = account_key_pair(&AccountKeySeed::from_bytes([3; 32]));
    let msg = dm::encrypt_pfs(
        &mut r,
        &sender,
        &fixed.session_id(),
        &keys.public_keys(),
        b"x",
        None,
    )
    .unwrap();
    let inputs: Vec<(Class, Identity)> = (0..SAMPLES / 4)
        .map(|_| match class(rng) {
            Class::Left => (Class::Left, Identity::from_seed_bytes(&[2u8; 16]).unwrap()),
            Class::Right => (
                Class::Right,
                Identity::from_seed_bytes(&bytes::<16>(rng)).unwrap(),
            ),
        })
        .collect();
    for (c, id) in inputs {
        runner.run_one(c, || dm::key_indicator(black_box(&id), &msg));
    }
}

/// `dudect_bencher::ctbench_main!` rejects the `--bench` flag `cargo bench`
/// passes, so this main accepts it: `cargo bench --bench constant_time
/// [-- FILTER] [-- --continuous NAME]`.
fn main() -> std::io::Result<()> {
    use dudect_bencher::ctbench::{BenchMetadata, BenchName, BenchOpts, run_benches_console};
    let benches: [(&'static str, dudect_bencher::ctbench::BenchFn); 7] = [
        ("header_open_wrong_key", header_open_wrong_key),
        ("body_open_right_key", body_open_right_key),
        (
            "mlkem_decaps_valid_vs_invalid",
            mlkem_decaps_valid_vs_invalid,
        ),
        ("chain_kdf_step", chain_kdf_step),
        ("root_kdf_step", root_kdf_step),
        ("sas_from_seed", sas_from_seed),
        ("hint_key_indicator", hint_key_indicator),
    ];
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let continuous = args.iter().any(|a| a == "--continuous");
    let filter = args.iter().find(|a| !a.starts_with("--")).cloned();
    let opts = BenchOpts {
        continuous,
        filter,
        file_out: None,
    };
    let metadata = benches
        .into_iter()
        .map(|(name, benchfn)| BenchMetadata {
            name: BenchName(name),
            seed: Some(0x5E55_10F0),
            benchfn,
        })
        .collect();
    run_benches_console(opts, metadata)
}
