//! `test-vectors/handshake.json`: bundles, prekey choices, transcript hash,
//! derived keys, first-message bytes, and negative cases (spec chapters 4–6).

use super::{Replay, class, file, hex};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use serde_json::{Value, json};
use session_ratchet::handshake::{self, PrekeyMessage, SessionSeed};
use session_ratchet::identity::DeviceIdentity;
use session_ratchet::prekey::{PrekeyBundle, PrekeyStore};

/// The first-message payload used by every vector.
pub const PAYLOAD: &[u8] = b"first ratchet message";

/// One generated handshake: everything drawn, and the live objects.
pub struct Scenario {
    pub rng_seed: [u8; 32],
    pub offer_one_time: bool,
    pub offer_one_time_kem: bool,
    pub alice: DeviceIdentity,
    pub bob: DeviceIdentity,
    pub store: PrekeyStore,
    pub bundle: Vec<u8>,
    pub alice_seed: SessionSeed,
    pub message: Vec<u8>,
    pub draws: Value,
}

/// Runs the scenario in the spec's draw order (§1.5, §4.1, §4.3, §5.2).
pub fn scenario(index: u8, offer_one_time: bool, offer_one_time_kem: bool) -> Scenario {
    let rng_seed = [index; 32];
    let mut rng = ChaCha20Rng::from_seed(rng_seed);
    let mut replay = Replay(rng.clone());
    let alice = DeviceIdentity::generate(&mut rng);
    let bob = DeviceIdentity::generate(&mut rng);
    let mut store = PrekeyStore::new(&mut rng, &bob);
    let otp = store.generate_one_time_prekeys(&mut rng, &bob, 1).unwrap()[0].id();
    let okem = store
        .generate_one_time_kem_prekeys(&mut rng, &bob, 1)
        .unwrap()[0]
        .id();
    let bundle = store
        .bundle(
            &bob,
            offer_one_time.then_some(otp),
            offer_one_time_kem.then_some(okem),
        )
        .unwrap();
    let verified = bundle.clone().verify_for(bob.public()).unwrap();
    let (alice_seed, header) = handshake::initiate(&mut rng, &alice, &verified).unwrap();
    let message = header.wrap(PAYLOAD.to_vec()).to_bytes();

    let draws = json!({
        "alice_ed25519_seed": hex(replay.take(32)),
        "alice_x25519_secret": hex(replay.take(32)),
        "bob_ed25519_seed": hex(replay.take(32)),
        "bob_x25519_secret": hex(replay.take(32)),
        "bob_signed_prekey": { "id": 1, "x25519_secret": hex(replay.take(32)) },
        "bob_last_resort_kem_prekey": { "id": 2, "mlkem_seed_d_z": hex(replay.take(64)) },
        "bob_one_time_prekey": { "id": otp, "x25519_secret": hex(replay.take(32)) },
        "bob_one_time_kem_prekey": { "id": okem, "mlkem_seed_d_z": hex(replay.take(64)) },
        "ephemeral_x25519_secret": hex(replay.take(32)),
        "mlkem_encaps_m": hex(replay.take(32)),
    });
    Scenario {
        rng_seed,
        offer_one_time,
        offer_one_time_kem,
        alice,
        bob,
        store,
        bundle: bundle.to_bytes(),
        alice_seed,
        message,
        draws,
    }
}

/// The four prekey combinations, in vector order.
pub const CASES: [(u8, bool, bool); 4] = [
    (1, false, false),
    (2, true, false),
    (3, false, true),
    (4, true, true),
];

pub fn case_name(otp: bool, okem: bool) -> String {
    format!(
        "handshake, {} one-time X25519 prekey, {} one-time ML-KEM prekey",
        if otp { "with" } else { "without" },
        if okem { "with" } else { "without" }
    )
}

fn negative(name: &str, kind: &str, input: &[u8], expected_error: String) -> Value {
    json!({ "name": name, "kind": kind, "input": hex(input), "expected_error": expected_error })
}

fn bundle_error(bytes: &[u8]) -> String {
    match PrekeyBundle::from_bytes(bytes) {
        Err(e) => class(&e),
        Ok(b) => match b.verify() {
            Err(e) => class(&e),
            Ok(_) => "Ok".into(),
        },
    }
}

pub fn vectors() -> Value {
    let mut v = Vec::new();
    for (index, otp, okem) in CASES {
        let s = scenario(index, otp, okem);
        let seed = &s.alice_seed;
        v.push(json!({
            "name": case_name(otp, okem),
            "kind": "handshake",
            "rng_seed": hex(s.rng_seed),
            "draws": s.draws,
            "bundle_offers_one_time_prekey": otp,
            "bundle_offers_one_time_kem_prekey": okem,
            "payload": hex(PAYLOAD),
            "alice_public_identity": hex(s.alice.public().to_bytes()),
            "bob_public_identity": hex(s.bob.public().to_bytes()),
            "bundle": hex(&s.bundle),
            "transcript_hash": hex(seed.transcript_hash()),
            "root_key": hex(seed.root_key().hazmat_bytes()),
            "initiator_chain_key": hex(seed.initiator_chain_key().hazmat_bytes()),
            "initiator_header_key": hex(seed.initiator_header_key().hazmat_bytes()),
            "responder_header_key": hex(seed.responder_header_key().hazmat_bytes()),
            "prekey_message": hex(&s.message),
        }));
    }

    // Negative vectors on the bundle with both one-time prekeys (case 4).
    let s = scenario(4, true, true);
    let b = &s.bundle;
    let (spk_sig, lr, lr_sig) = (2 + 64 + 4 + 32, 2 + 64 + 100, 2 + 64 + 100 + 4 + 1184);
    let okem_at = lr_sig + 64 + 1 + 36;
    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
    cases.push((
        "bundle truncated inside the last-resort key",
        b[..lr + 100].to_vec(),
    ));
    cases.push((
        "bundle with one trailing byte",
        [b.as_slice(), &[0]].concat(),
    ));
    let mut t = b.clone();
    t[0] = 0x02;
    cases.push(("bundle with wire version 0x02", t));
    let mut t = b.clone();
    t[1] = 0x02;
    cases.push(("bundle with the prekey-message type byte", t));
    let mut t = b.clone();
    t[lr_sig + 64] |= 0x04;
    cases.push(("bundle with an undefined flag bit", t));
    let mut t = b.clone();
    t[2..34].fill(0);
    t[2] = 1; // Ed25519 identity point: small order.
    cases.push(("bundle whose Ed25519 identity key has small order", t));
    let mut t = b.clone();
    t[lr + 4] = 0xFF;
    t[lr + 5] = 0xFF;
    cases.push((
        "bundle whose last-resort ML-KEM key fails the modulus check",
        t,
    ));
    let mut t = b.clone();
    t[spk_sig] ^= 0x01;
    cases.push(("bundle with a corrupted signed-prekey signature", t));
    let mut t = b.clone();
    t[spk_sig - 32] ^= 0x01;
    cases.push(("bundle with a substituted signed prekey", t));
    let mut t = b.clone();
    let entry = t[okem_at..okem_at + 4 + 1184 + 64].to_vec();
    t[lr..lr + 4 + 1184 + 64].copy_from_slice(&entry);
    cases.push((
        "bundle with the one-time ML-KEM prekey moved into the last-resort slot",
        t,
    ));
    let mut t = b.clone();
    t[34..66].copy_from_slice(&[0x42; 32]);
    cases.push(("bundle with a substituted X25519 identity key", t));
    for (name, input) in cases {
        let err = bundle_error(&input);
        v.push(negative(name, "bundle-error", &input, err));
    }

    let m = &s.message;
    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
    cases.push((
        "prekey message without payload",
        m[..m.len() - PAYLOAD.len()].to_vec(),
    ));
    cases.push((
        "prekey message truncated inside the ciphertext",
        m[..600].to_vec(),
    ));
    let mut t = m.clone();
    t[2 + 64 + 32 + 4] = 0x07;
    cases.push(("prekey message with an undefined flag bit", t));
    let mut t = m.clone();
    t[2..34].fill(0);
    t[2] = 1;
    cases.push((
        "prekey message whose initiator Ed25519 key has small order",
        t,
    ));
    for (name, input) in cases {
        let err = class(&PrekeyMessage::from_bytes(&input).unwrap_err());
        v.push(negative(name, "prekey-message-error", &input, err));
    }
    let mut long = m.clone();
    long.resize(session_ratchet::wire::MAX_WIRE_LEN + 1, 0);
    v.push(json!({
        "name": "prekey message one byte over the size limit",
        "kind": "prekey-message-error",
        "input_prefix": hex(m),
        "input_zero_padded_to_length": long.len(),
        "expected_error": class(&PrekeyMessage::from_bytes(&long).unwrap_err()),
    }));

    // Stateful rejections: the responder processes, commits, then sees the
    // same message again.
    for (index, otp, okem, expected) in [
        (2u8, true, false, "UnknownOneTimePrekey"),
        (3, false, true, "UnknownKemPrekey"),
        (1, false, false, "ReplayedHandshake"),
    ] {
        v.push(json!({
            "name": format!("replay of: {}", case_name(otp, okem)),
            "kind": "handshake-replay",
            "of_vector": case_name(otp, okem),
            "rng_seed": hex([index; 32]),
            "expected_error_on_second_delivery": expected,
        }));
    }
    file(
        "handshake",
        "Hybrid handshake (spec chapter 5): draws in spec order, bundle bytes (§4.4), transcript hash (§5.3), derived keys (§5.4, §5.5), prekey message (§5.6), and negative cases for every decoder and responder check",
        v,
    )
}
