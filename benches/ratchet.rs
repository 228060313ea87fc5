//! Double-ratchet cost next to the primitives it must call, and next to
//! vodozemac (Matrix Olm) on the same payload, measured in the same run.
//!
//! `cargo bench --bench ratchet`
//!
//! - `same_chain_256B`: one 256-byte message encrypted and decrypted on an
//!   established chain (no direction change). Floor: sender 2 HMAC (chain
//!   step) + 1 HMAC (body key, spec §7.3) + XChaCha20-Poly1305 seal (header)
//!   + ChaCha20-Poly1305 seal (body); receiver the same with opens. The PQ ratchet adds only cached symbols here.
//! - `dh_turn_256B`: lockstep traffic, every message a DH ratchet turn. Floor:
//!   sender X25519 key generation + X25519 + HKDF(96) + the same-chain floor;
//!   receiver X25519 + HKDF(96) + one extra header open (trial decryption
//!   tries the current chain first) + the same-chain floor; plus the ML-KEM
//!   work the run actually did (encapsulations, decapsulations with seed
//!   expansion, key generations), amortized per message from the sessions'
//!   own counters.
//! - `pq_epoch_message`: decrypting the message whose chunks complete a peer
//!   ciphertext (reassembly + decapsulation); in lockstep it is also a DH
//!   receiving step. Floor: same-chain receive + X25519 + HKDF(96) + one extra
//!   header open + ML-KEM key expansion + decapsulation.
//! - `vodozemac_*`: Olm (vodozemac 0.11, X25519 + AES-256-CBC + HMAC) on the
//!   same 256-byte payload, same chain and direction-changing turns.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, XChaCha20Poly1305};
use criterion::{BatchSize, Criterion};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use session_ratchet::identity::DeviceIdentity;
use session_ratchet::prekey::PrekeyStore;
use session_ratchet::ratchet::{Session, StoredSession};
use sha2::Sha256;
use std::hint::black_box;

const PAYLOAD: [u8; 256] = [0x5A; 256];

fn pair(seed: u64) -> (Session, Session, ChaCha20Rng, ChaCha20Rng) {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let alice = DeviceIdentity::generate(&mut rng);
    let bob = DeviceIdentity::generate(&mut rng);
    let mut store = PrekeyStore::new(&mut rng, &bob);
    let bundle = store.bundle(&bob, None, None).unwrap().verify().unwrap();
    let mut ra = ChaCha20Rng::seed_from_u64(seed + 1);
    let mut rb = ChaCha20Rng::seed_from_u64(seed + 2);
    let mut a = Session::initiate(&mut ra, &alice, &bundle).unwrap();
    let m = a.encrypt(&mut ra, b"hello", b"").unwrap();
    let (mut b, _) = Session::respond(&bob, &mut store, &m, b"").unwrap();
    // Warm up: PQ keys exchanged, a few epochs, caches filled.
    for _ in 0..40 {
        let m = b.encrypt(&mut rb, &PAYLOAD, b"").unwrap();
        a.decrypt(&m, b"").unwrap();
        let m = a.encrypt(&mut ra, &PAYLOAD, b"").unwrap();
        b.decrypt(&m, b"").unwrap();
    }
    (a, b, ra, rb)
}

fn primitives(c: &mut Criterion) {
    let mut g = c.benchmark_group("primitives");
    let key = [7u8; 32];
    g.bench_function("hmac_sha256_x2", |b| {
        b.iter(|| {
            let mut m1 =
                <Hmac<Sha256> as hmac::digest::KeyInit>::new_from_slice(black_box(&key)).unwrap();
            m1.update(b"SessionRatchet/v1/message-key");
            let mut m2 =
                <Hmac<Sha256> as hmac::digest::KeyInit>::new_from_slice(black_box(&key)).unwrap();
            m2.update(b"SessionRatchet/v1/chain-key");
            (m1.finalize(), m2.finalize())
        })
    });
    // The body key (spec §7.3): one HMAC of the message key over the label
    // and the message's 24-byte nonce, at each end of every message.
    g.bench_function("hmac_sha256_body_key", |b| {
        b.iter(|| {
            let mut m =
                <Hmac<Sha256> as hmac::digest::KeyInit>::new_from_slice(black_box(&key)).unwrap();
            m.update(b"SessionRatchet/v1/message-body-key");
            m.update(black_box(&[6u8; 24]));
            m.finalize()
        })
    });
    let xc = XChaCha20Poly1305::new(&key.into());
    let header = [1u8; 44];
    let mut sealed_header = header.to_vec();
    xc.encrypt_in_place(&[2u8; 24].into(), &[3u8; 34], &mut sealed_header)
        .unwrap();
    g.bench_function("xchacha_seal_header", |b| {
        b.iter(|| {
            let mut v = black_box(header).to_vec();
            xc.encrypt_in_place(&[2u8; 24].into(), &[3u8; 34], &mut v)
                .unwrap();
            v
        })
    });
    g.bench_function("xchacha_open_header", |b| {
        b.iter(|| {
            let mut v = black_box(&sealed_header).clone();
            xc.decrypt_in_place(&[2u8; 24].into(), &[3u8; 34], &mut v)
                .unwrap();
            v
        })
    });
    // Body of a 256-byte message padded into the 512-byte bucket.
    let cc = ChaCha20Poly1305::new(&key.into());
    let body = [4u8; 512 - 86 - 16];
    let ad = [5u8; 36 + 86];
    let mut sealed_body = body.to_vec();
    cc.encrypt_in_place(&[0u8; 12].into(), &ad, &mut sealed_body)
        .unwrap();
    g.bench_function("chacha_seal_body", |b| {
        b.iter(|| {
            let mut v = black_box(body).to_vec();
            cc.encrypt_in_place(&[0u8; 12].into(), &ad, &mut v).unwrap();
            v
        })
    });
    g.bench_function("chacha_open_body", |b| {
        b.iter(|| {
            let mut v = black_box(&sealed_body).clone();
            cc.decrypt_in_place(&[0u8; 12].into(), &ad, &mut v).unwrap();
            v
        })
    });
    g.bench_function("x25519_keygen", |b| {
        b.iter(|| x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(black_box(key))))
    });
    let u = x25519_dalek::x25519([9u8; 32], x25519_dalek::X25519_BASEPOINT_BYTES);
    g.bench_function("x25519", |b| {
        b.iter(|| x25519_dalek::x25519(black_box(key), black_box(u)))
    });
    g.bench_function("hkdf_sha256_96B", |b| {
        b.iter(|| {
            let mut okm = [0u8; 96];
            Hkdf::<Sha256>::new(Some(&key), black_box(&[6u8; 64]))
                .expand(&[7u8; 33], &mut okm)
                .unwrap();
            okm
        })
    });
    let seed = [3u8; 64];
    let kp = libcrux_ml_kem::mlkem768::generate_key_pair(seed);
    let (ct, _) = libcrux_ml_kem::mlkem768::encapsulate(kp.public_key(), [4u8; 32]);
    g.bench_function("mlkem768_keygen", |b| {
        b.iter(|| libcrux_ml_kem::mlkem768::generate_key_pair(black_box(seed)))
    });
    g.bench_function("mlkem768_encaps", |b| {
        b.iter(|| libcrux_ml_kem::mlkem768::encapsulate(kp.public_key(), black_box([4u8; 32])))
    });
    g.bench_function("mlkem768_decaps", |b| {
        b.iter(|| libcrux_ml_kem::mlkem768::decapsulate(kp.private_key(), black_box(&ct)))
    });
    g.finish();
}

/// Counts of ML-KEM operations per message in lockstep traffic, from the
/// sessions' own counters over `n` messages.
fn lockstep_pq_rates(n: usize) -> (f64, f64, f64) {
    let (mut a, mut b, mut ra, mut rb) = pair(99);
    let before = (a.pq_stats(), b.pq_stats());
    for i in 0..n {
        if i % 2 == 0 {
            let m = a.encrypt(&mut ra, &PAYLOAD, b"").unwrap();
            b.decrypt(&m, b"").unwrap();
        } else {
            let m = b.encrypt(&mut rb, &PAYLOAD, b"").unwrap();
            a.decrypt(&m, b"").unwrap();
        }
    }
    let (sa, sb) = (a.pq_stats(), b.pq_stats());
    let d = |x: u64, y: u64| (x - y) as f64 / n as f64;
    (
        d(
            sa.encapsulations + sb.encapsulations,
            before.0.encapsulations + before.1.encapsulations,
        ),
        d(
            sa.decapsulations + sb.decapsulations,
            before.0.decapsulations + before.1.decapsulations,
        ),
        d(
            sa.keys_generated + sb.keys_generated,
            before.0.keys_generated + before.1.keys_generated,
        ),
    )
}

fn ratchet(c: &mut Criterion) {
    let mut g = c.benchmark_group("ratchet");
    let (mut a, mut b, mut ra, _) = pair(1);
    g.bench_function("same_chain_256B", |bch| {
        bch.iter(|| {
            let m = a.encrypt(&mut ra, black_box(&PAYLOAD), b"").unwrap();
            b.decrypt(&m, b"").unwrap()
        })
    });
    let (mut a, mut b, mut ra, mut rb) = pair(2);
    let mut turn = 0u64;
    g.bench_function("dh_turn_256B", |bch| {
        bch.iter(|| {
            turn += 1;
            if turn.is_multiple_of(2) {
                let m = a.encrypt(&mut ra, black_box(&PAYLOAD), b"").unwrap();
                b.decrypt(&m, b"").unwrap()
            } else {
                let m = b.encrypt(&mut rb, black_box(&PAYLOAD), b"").unwrap();
                a.decrypt(&m, b"").unwrap()
            }
        })
    });

    // Find a message whose decryption completes a peer ciphertext.
    let (mut a, mut b, mut ra, mut rb) = pair(3);
    let mut found = None;
    for i in 0..200 {
        let (s, r, rng) = if i % 2 == 0 {
            (&mut a, &mut b, &mut ra)
        } else {
            (&mut b, &mut a, &mut rb)
        };
        let m = s.encrypt(rng, &PAYLOAD, b"").unwrap();
        let before = r.to_stored();
        let dec = r.pq_stats().decapsulations;
        r.decrypt(&m, b"").unwrap();
        if r.pq_stats().decapsulations > dec {
            found = Some((before, m));
            break;
        }
    }
    let (state, msg) = found.expect("an epoch completes within 200 messages");
    g.bench_function("pq_epoch_message", |bch| {
        bch.iter_batched(
            || Session::from_stored(&StoredSession::from_bytes(state.as_bytes())).unwrap(),
            |mut s| s.decrypt(black_box(&msg), b"").unwrap(),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn vodozemac_peer(c: &mut Criterion) {
    use vodozemac::olm::{Account, OlmMessage, SessionConfig};
    let alice = Account::new();
    let mut bob = Account::new();
    bob.generate_one_time_keys(1);
    let otk = *bob.one_time_keys().values().next().unwrap();
    bob.mark_keys_as_published();
    let mut a = alice
        .create_outbound_session(SessionConfig::version_1(), bob.curve25519_key(), otk)
        .unwrap();
    let first = a.encrypt(b"hello").unwrap();
    let OlmMessage::PreKey(pre) = first else {
        unreachable!("the first Olm message is a pre-key message")
    };
    let mut b = bob
        .create_inbound_session(SessionConfig::version_1(), alice.curve25519_key(), &pre)
        .unwrap()
        .session;
    let r = b.encrypt(b"hi").unwrap();
    a.decrypt(&r).unwrap();
    let mut g = c.benchmark_group("vodozemac");
    g.bench_function("same_chain_256B", |bch| {
        bch.iter(|| {
            let m = a.encrypt(black_box(PAYLOAD)).unwrap();
            b.decrypt(&m).unwrap()
        })
    });
    let mut turn = 0u64;
    g.bench_function("dh_turn_256B", |bch| {
        bch.iter(|| {
            turn += 1;
            if turn.is_multiple_of(2) {
                let m = a.encrypt(black_box(PAYLOAD)).unwrap();
                b.decrypt(&m).unwrap()
            } else {
                let m = b.encrypt(black_box(PAYLOAD)).unwrap();
                a.decrypt(&m).unwrap()
            }
        })
    });
    g.finish();
}

fn mean_ns(group: &str, name: &str) -> Option<f64> {
    let dir = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let text =
        std::fs::read_to_string(format!("{dir}/criterion/{group}/{name}/new/estimates.json"))
            .ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["mean"]["point_estimate"].as_f64()
}

fn report() {
    let p = |n| mean_ns("primitives", n);
    let names = [
        "hmac_sha256_x2",
        "hmac_sha256_body_key",
        "xchacha_seal_header",
        "xchacha_open_header",
        "chacha_seal_body",
        "chacha_open_body",
        "x25519_keygen",
        "x25519",
        "hkdf_sha256_96B",
        "mlkem768_keygen",
        "mlkem768_encaps",
        "mlkem768_decaps",
    ];
    let v: Option<Vec<f64>> = names.iter().map(|n| p(n)).collect();
    let Some(v) = v else {
        println!("(ratios unavailable: run the whole bench without a filter)");
        return;
    };
    let [
        hmac,
        body_key,
        xseal,
        xopen,
        seal,
        open,
        keygen,
        x,
        hkdf,
        kg,
        enc,
        dec,
    ] = v[..]
    else {
        return;
    };
    // Each side: the chain step (two HMACs), the body key (one HMAC), the
    // header AEAD and the body AEAD.
    let same = 2.0 * hmac + body_key + xseal + seal + 2.0 * hmac + body_key + xopen + open;
    let (encs, decs, keys) = lockstep_pq_rates(2000);
    let pq = encs * enc + decs * (kg + dec) + keys * kg;
    let turn = same + keygen + x + hkdf + x + hkdf + xopen + pq;
    // In lockstep the message that completes a ciphertext also starts a new
    // receiving chain: an X25519, an HKDF and one extra header open.
    let epoch = 2.0 * hmac + body_key + xopen + open + x + hkdf + xopen + kg + dec;
    println!(
        "\nlockstep ML-KEM work per message: {encs:.3} encaps, {decs:.3} decaps, {keys:.3} keygens"
    );
    println!(
        "body key (spec §7.3): {:.3} µs per HMAC, {:.3} µs per message (encrypt and decrypt)",
        body_key / 1e3,
        2.0 * body_key / 1e3
    );
    println!("ratio to primitive floor (criterion means, same run):");
    for (name, floor) in [
        ("same_chain_256B", same),
        ("dh_turn_256B", turn),
        ("pq_epoch_message", epoch),
    ] {
        if let Some(t) = mean_ns("ratchet", name) {
            println!(
                "  {name:<18} {:>8.2} µs   floor {:>8.2} µs   ratio {:.2}",
                t / 1e3,
                floor / 1e3,
                t / floor
            );
        }
    }
    for name in ["same_chain_256B", "dh_turn_256B"] {
        if let (Some(ours), Some(olm)) = (mean_ns("ratchet", name), mean_ns("vodozemac", name)) {
            println!(
                "  {name:<18} session-ratchet {:>8.2} µs   vodozemac {:>8.2} µs   ratio {:.2}",
                ours / 1e3,
                olm / 1e3,
                ours / olm
            );
        }
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    primitives(&mut c);
    ratchet(&mut c);
    vodozemac_peer(&mut c);
    c.final_summary();
    report();
}
