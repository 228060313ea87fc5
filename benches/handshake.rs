//! Handshake cost next to the cost of the primitives it must call.
//!
//! `cargo bench --bench handshake`
//!
//! The "floor" of each side is the sum of the raw primitive calls the spec
//! (chapter 5) requires, each measured here with the primitive crate called
//! directly:
//!
//! - initiator: X25519 base-point multiplication (EK_A), 4 X25519, ML-KEM
//!   encapsulation, SHA-256 over the transcript input, HKDF (128 bytes out);
//! - responder: 4 X25519, ML-KEM key expansion from the stored 64-byte seed
//!   (spec §3.3 stores only seeds) plus decapsulation, SHA-256, HKDF.
//!
//! Bundle verification (3 Ed25519 verifications, 2 ML-KEM key checks) is
//! reported on its own. After the run, the ratios are printed from
//! criterion's own estimates.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use criterion::Criterion;
use ed25519_dalek::{Signer, SigningKey};
use hkdf::Hkdf;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use session_ratchet::handshake;
use session_ratchet::identity::DeviceIdentity;
use session_ratchet::prekey::{PrekeyBundle, PrekeyStore};
use sha2::{Digest, Sha256};
use std::hint::black_box;

fn primitives(c: &mut Criterion) {
    let mut g = c.benchmark_group("primitives");
    let k = [7u8; 32];
    let u = x25519_dalek::x25519([9u8; 32], x25519_dalek::X25519_BASEPOINT_BYTES);
    // Public-key derivation as x25519-dalek does it (what `initiate` calls for EK_A).
    g.bench_function("x25519_basepoint", |b| {
        b.iter(|| x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(black_box(k))))
    });
    g.bench_function("x25519", |b| {
        b.iter(|| x25519_dalek::x25519(black_box(k), black_box(u)))
    });

    let seed = [3u8; 64];
    let kp = libcrux_ml_kem::mlkem768::generate_key_pair(seed);
    let (ct, _) = libcrux_ml_kem::mlkem768::encapsulate(kp.public_key(), [4u8; 32]);
    g.bench_function("mlkem768_encaps", |b| {
        b.iter(|| libcrux_ml_kem::mlkem768::encapsulate(kp.public_key(), black_box([4u8; 32])))
    });
    g.bench_function("mlkem768_keygen", |b| {
        b.iter(|| libcrux_ml_kem::mlkem768::generate_key_pair(black_box(seed)))
    });
    g.bench_function("mlkem768_decaps", |b| {
        b.iter(|| libcrux_ml_kem::mlkem768::decapsulate(kp.private_key(), black_box(&ct)))
    });
    g.bench_function("mlkem768_validate", |b| {
        b.iter(|| libcrux_ml_kem::mlkem768::validate_public_key(black_box(kp.public_key())))
    });

    let sk = SigningKey::from_bytes(&[5u8; 32]);
    let msg = [1u8; 1300];
    let sig = sk.sign(&msg);
    let vk = sk.verifying_key();
    g.bench_function("ed25519_verify_strict_1300B", |b| {
        b.iter(|| vk.verify_strict(black_box(&msg), &sig).unwrap())
    });

    // Transcript input with OPK and one-time PQ prekey: 39 + 64 + 64 + 36 +
    // 37 + 1189 + 32 + 1088 bytes.
    let transcript = vec![0xA5u8; 39 + 64 + 64 + 36 + 37 + 1189 + 32 + 1088];
    g.bench_function("sha256_transcript", |b| {
        b.iter(|| Sha256::digest(black_box(&transcript)))
    });
    let ikm = [0x11u8; 192];
    let info = [0x22u8; 64];
    g.bench_function("hkdf_sha256_128B", |b| {
        b.iter(|| {
            let mut okm = [0u8; 128];
            Hkdf::<Sha256>::new(Some(&[0u8; 32]), black_box(&ikm))
                .expand(&info, &mut okm)
                .unwrap();
            okm
        })
    });
    g.finish();
}

fn protocol(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::from_seed([1; 32]);
    let alice = DeviceIdentity::generate(&mut rng);
    let bob = DeviceIdentity::generate(&mut rng);
    let mut store = PrekeyStore::new(&mut rng, &bob);
    let otp = store.generate_one_time_prekeys(&mut rng, &bob, 1).unwrap()[0].id();
    let okem = store
        .generate_one_time_kem_prekeys(&mut rng, &bob, 1)
        .unwrap()[0]
        .id();
    let bytes = store
        .bundle(&bob, Some(otp), Some(okem))
        .unwrap()
        .to_bytes();
    let verified = PrekeyBundle::from_bytes(&bytes).unwrap().verify().unwrap();
    let (_, header) = handshake::initiate(&mut rng, &alice, &verified).unwrap();

    let mut g = c.benchmark_group("handshake");
    g.bench_function("bundle_decode_and_verify", |b| {
        b.iter(|| {
            PrekeyBundle::from_bytes(black_box(&bytes))
                .unwrap()
                .verify()
                .unwrap()
        })
    });
    g.bench_function("initiate", |b| {
        b.iter(|| handshake::initiate(&mut rng, &alice, black_box(&verified)).unwrap())
    });
    // Phase 1 is all the cryptography; `commit` only deletes map entries.
    g.bench_function("respond", |b| {
        b.iter(|| handshake::respond(&bob, &store, black_box(&header)).unwrap())
    });
    g.finish();
}

/// Reads criterion's mean estimate (ns) for `group/name`.
fn mean_ns(group: &str, name: &str) -> Option<f64> {
    let dir = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let path = format!("{dir}/criterion/{group}/{name}/new/estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["mean"]["point_estimate"].as_f64()
}

fn report() {
    let p = |n| mean_ns("primitives", n);
    let h = |n| mean_ns("handshake", n);
    let (
        Some(base),
        Some(x),
        Some(enc),
        Some(kg),
        Some(dec),
        Some(val),
        Some(ed),
        Some(sha),
        Some(kdf),
    ) = (
        p("x25519_basepoint"),
        p("x25519"),
        p("mlkem768_encaps"),
        p("mlkem768_keygen"),
        p("mlkem768_decaps"),
        p("mlkem768_validate"),
        p("ed25519_verify_strict_1300B"),
        p("sha256_transcript"),
        p("hkdf_sha256_128B"),
    )
    else {
        println!("(ratios unavailable: run the whole bench without a filter)");
        return;
    };
    let init_floor = base + 4.0 * x + enc + sha + kdf;
    let resp_floor = 4.0 * x + kg + dec + sha + kdf;
    let verify_floor = 3.0 * ed + 2.0 * val;
    println!("\nratio to primitive floor (criterion means, same run):");
    for (name, floor) in [
        ("initiate", init_floor),
        ("respond", resp_floor),
        ("bundle_decode_and_verify", verify_floor),
    ] {
        if let Some(t) = h(name) {
            println!(
                "  {name:<26} {:>9.1} µs   floor {:>9.1} µs   ratio {:.2}",
                t / 1e3,
                floor / 1e3,
                t / floor
            );
        }
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    primitives(&mut c);
    protocol(&mut c);
    c.final_summary();
    report();
}
