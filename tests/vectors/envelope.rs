//! `test-vectors/envelope.json`: fan-out envelopes for 1, 3 and 5 devices
//! with every intermediate value (`e`, each `K`, hint and slot key), and
//! decoding and opening errors (spec §8.7).
//!
//! Slot keys are recomputed here from the primitives (X25519, HKDF-SHA256),
//! independently of the library's code, and must agree with its envelopes.

use super::{Replay, class, file, hex};
use chacha20poly1305::ChaCha20Poly1305;
use chacha20poly1305::aead::{AeadInOut, KeyInit};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use serde_json::{Value, json};
use session_ratchet::envelope::{ENVELOPE_HEADER_LEN, ENVELOPE_HINT_LEN, Envelope};
use session_ratchet::identity::{DeviceIdentity, DevicePublicIdentity};

/// Seed of the RNG that creates the devices.
pub const DEVICE_RNG_SEED: [u8; 32] = [0xde; 32];
/// Number of devices: recipients are chosen among the first five; the
/// last is never one.
pub const DEVICES: usize = 6;
/// `(name, rng_seed, recipient device indices, payload lengths)`.
pub type Case = (&'static str, [u8; 32], &'static [usize], &'static [usize]);
pub const CASES: [Case; 3] = [
    ("envelope for 1 device", [0xe1; 32], &[0], &[40]),
    (
        "envelope for 3 devices",
        [0xe3; 32],
        &[2, 0, 4],
        &[120, 0, 236],
    ),
    (
        "envelope for 5 devices",
        [0xe5; 32],
        &[0, 1, 2, 3, 4],
        &[50, 600, 3, 300, 1],
    ),
];
/// The label of spec §3.6, spelled here independently of the library.
const LABEL_ENVELOPE_SLOT: &[u8] = b"SessionRatchet/v1/envelope-slot";

pub struct Fixture {
    pub devices: Vec<DeviceIdentity>,
    /// Per device: the Ed25519 seed and X25519 secret it was generated from.
    pub secrets: Vec<([u8; 32], [u8; 32])>,
}

pub fn fixture() -> Fixture {
    let mut rng = ChaCha20Rng::from_seed(DEVICE_RNG_SEED);
    let mut replay = Replay(rng.clone());
    let mut devices = Vec::new();
    let mut secrets = Vec::new();
    for _ in 0..DEVICES {
        devices.push(DeviceIdentity::generate(&mut rng));
        let ed: [u8; 32] = replay.take(32).try_into().unwrap();
        let x: [u8; 32] = replay.take(32).try_into().unwrap();
        secrets.push((ed, x));
    }
    Fixture { devices, secrets }
}

/// The payload of recipient `i`: readable text padded with a counter.
pub fn payload(i: usize, len: usize) -> Vec<u8> {
    let text = format!("payload {i}: ");
    text.bytes()
        .chain((0..).map(|j: u32| j as u8))
        .take(len)
        .collect()
}

/// `(K, hint, slot_key)` of spec §8.7.3, from `e` and the recipient key `P`.
pub fn spec_slot(e: &[u8; 32], p: &[u8; 32]) -> ([u8; 32], [u8; 16], [u8; 32]) {
    let secret = x25519_dalek::StaticSecret::from(*e);
    let big_e = x25519_dalek::PublicKey::from(&secret).to_bytes();
    let k = secret
        .diffie_hellman(&x25519_dalek::PublicKey::from(*p))
        .to_bytes();
    let ikm = [k.as_slice(), &big_e, p].concat();
    let mut okm = [0u8; 48];
    hkdf::Hkdf::<sha2::Sha256>::new(Some(&big_e), &ikm)
        .expand(LABEL_ENVELOPE_SLOT, &mut okm)
        .unwrap();
    (
        k,
        okm[..16].try_into().unwrap(),
        okm[16..].try_into().unwrap(),
    )
}

/// ChaCha20-Poly1305 with the all-zero nonce (spec §8.7.4), from the crate.
pub fn seal_body(key: &[u8; 32], header: &[u8], plain: &[u8]) -> Vec<u8> {
    let mut buf = plain.to_vec();
    ChaCha20Poly1305::new(key.into())
        .encrypt_in_place(&[0u8; 12].into(), header, &mut buf)
        .unwrap();
    buf
}

/// Opens `body` (spec §8.7.5 step 4); `None` if it does not authenticate.
pub fn open_body(key: &[u8; 32], header: &[u8], body: &[u8]) -> Option<Vec<u8>> {
    let mut buf = body.to_vec();
    ChaCha20Poly1305::new(key.into())
        .decrypt_in_place(&[0u8; 12].into(), header, &mut buf)
        .ok()?;
    Some(buf)
}

/// The slot whose hint is `hint`, as `(offset of the slot, slot bytes)`.
pub fn find_slot<'a>(bytes: &'a [u8], body_len: usize, hint: &[u8]) -> (usize, &'a [u8]) {
    let slot_len = ENVELOPE_HINT_LEN + body_len;
    bytes[ENVELOPE_HEADER_LEN..]
        .chunks_exact(slot_len)
        .enumerate()
        .find(|(_, s)| &s[..ENVELOPE_HINT_LEN] == hint)
        .map(|(i, s)| (ENVELOPE_HEADER_LEN + i * slot_len, s))
        .unwrap()
}

/// The error class of decoding `input` and, if a device is named, opening it.
pub fn outcome(f: &Fixture, input: &[u8], device: Option<usize>) -> String {
    match Envelope::from_bytes(input) {
        Err(e) => class(&e),
        Ok(env) => match device.map(|d| env.open(&f.devices[d])) {
            None => "Ok".into(),
            Some(Ok(_)) => "Ok".into(),
            Some(Err(e)) => class(&e),
        },
    }
}

pub fn vectors() -> Value {
    let f = fixture();
    let devices: Vec<Value> = f
        .devices
        .iter()
        .zip(&f.secrets)
        .map(|(d, (ed, x))| {
            json!({
                "ed25519_seed": hex(ed),
                "x25519_secret": hex(x),
                "public_identity": hex(d.public().to_bytes()),
            })
        })
        .collect();
    let mut v = vec![json!({
        "name": "device identities",
        "kind": "devices",
        "rng_seed": hex(DEVICE_RNG_SEED),
        "devices": devices,
    })];

    let mut sealed = Vec::new();
    for (name, seed, who, lens) in CASES {
        let payloads: Vec<Vec<u8>> = lens
            .iter()
            .enumerate()
            .map(|(i, &l)| payload(i, l))
            .collect();
        let recipients: Vec<(&DevicePublicIdentity, &[u8])> = who
            .iter()
            .zip(&payloads)
            .map(|(&d, p)| (f.devices[d].public(), p.as_slice()))
            .collect();
        let mut rng = ChaCha20Rng::from_seed(seed);
        let mut replay = Replay(rng.clone());
        let env = Envelope::seal(&mut rng, &recipients).unwrap();
        let bytes = env.to_bytes();
        let e: [u8; 32] = replay.take(32).try_into().unwrap();
        let mut draws = e.to_vec();
        for _ in who.len()..env.slot_count() {
            draws.extend(replay.take(ENVELOPE_HINT_LEN + env.body_len()));
        }
        let header = &bytes[..ENVELOPE_HEADER_LEN];
        let mut slots = Vec::new();
        for ((&d, p), i) in who.iter().zip(&payloads).zip(0..) {
            let dh = *f.devices[d].public().dh_key().as_bytes();
            let (k, hint, key) = spec_slot(&e, &dh);
            // The library's slot is the spec's.
            let (_, slot) = find_slot(&bytes, env.body_len(), &hint);
            let plain = open_body(&key, header, &slot[ENVELOPE_HINT_LEN..]).unwrap();
            assert_eq!(&plain[4..4 + p.len()], p.as_slice(), "recipient {i}");
            slots.push(json!({
                "device": d,
                "payload": hex(p),
                "shared_secret": hex(k),
                "hint": hex(hint),
                "slot_key": hex(key),
            }));
        }
        v.push(json!({
            "name": name,
            "kind": "envelope",
            "rng_seed": hex(seed),
            "draws": hex(&draws),
            "ephemeral_secret": hex(e),
            "ephemeral_public": hex(env.ephemeral_key().as_bytes()),
            "recipients": slots,
            "non_recipient": DEVICES - 1,
            "slot_count": env.slot_count(),
            "body_len": env.body_len(),
            "envelope": hex(&bytes),
        }));
        sealed.push((env, bytes, e, who));
    }

    // Negative vectors, from the 1-device and 3-device envelopes.
    let (one, one_e, one_dev) = (&sealed[0].1, sealed[0].2, sealed[0].3[0]);
    let three = &sealed[1].1;
    let body_len = sealed[0].0.body_len();
    let slot_len = ENVELOPE_HINT_LEN + body_len;
    let dh = *f.devices[one_dev].public().dh_key().as_bytes();
    let (_, hint, key) = spec_slot(&one_e, &dh);
    let (own_at, _) = find_slot(one, body_len, &hint);
    let with = |src: &[u8], at: usize, val: &[u8]| {
        let mut b = src.to_vec();
        b[at..at + val.len()].copy_from_slice(val);
        b
    };
    let mut trailing = one.clone();
    trailing.push(0);
    let mut unsorted = one[..ENVELOPE_HEADER_LEN].to_vec();
    for i in [1usize, 0, 2, 3] {
        unsorted.extend_from_slice(&one[ENVELOPE_HEADER_LEN + i * slot_len..][..slot_len]);
    }
    let mut tampered_body = one.clone();
    tampered_body[own_at + ENVELOPE_HINT_LEN + 7] ^= 0x01;
    let mut tampered_hint = one.clone();
    tampered_hint[own_at + ENVELOPE_HINT_LEN - 1] ^= 0x01;
    // A slot that authenticates but has a non-zero byte in its padding.
    let mut plain = vec![0u8; body_len - 16];
    plain[..4].copy_from_slice(&3u32.to_be_bytes());
    plain[4..7].copy_from_slice(b"pad");
    plain[body_len - 17] = 0x01;
    let bad_padding = with(
        one,
        own_at + ENVELOPE_HINT_LEN,
        &seal_body(&key, &one[..ENVELOPE_HEADER_LEN], &plain),
    );
    // A slot whose length field exceeds its room.
    let mut plain = vec![0u8; body_len - 16];
    plain[..4].copy_from_slice(&((body_len - 19) as u32).to_be_bytes());
    let bad_length = with(
        one,
        own_at + ENVELOPE_HINT_LEN,
        &seal_body(&key, &one[..ENVELOPE_HEADER_LEN], &plain),
    );
    let negatives: Vec<(&str, Vec<u8>, Option<usize>)> = vec![
        ("truncated by one byte", one[..one.len() - 1].to_vec(), None),
        ("truncated inside the body length", one[..37].to_vec(), None),
        ("trailing byte", trailing, None),
        ("wire version 2", with(one, 0, &[2]), None),
        ("prekey record type", with(one, 1, &[0x06]), None),
        ("slot count 0", with(one, 34, &[0]), None),
        ("slot count 3", with(one, 34, &[3]), None),
        ("slot count 36", with(one, 34, &[36]), None),
        ("slot count 8 with 4 slots", with(one, 34, &[8]), None),
        (
            "body length 300",
            with(one, 35, &300u32.to_be_bytes()),
            None,
        ),
        (
            "body length above the maximum",
            with(one, 35, &19_200u32.to_be_bytes()),
            None,
        ),
        ("slots not sorted", unsorted, None),
        ("tampered body", tampered_body, Some(one_dev)),
        ("tampered hint", tampered_hint, Some(one_dev)),
        (
            "ephemeral key of low order",
            with(one, 2, &[0u8; 32]),
            Some(one_dev),
        ),
        ("non-zero padding", bad_padding, Some(one_dev)),
        ("length beyond the body", bad_length, Some(one_dev)),
        ("non-recipient", three.clone(), Some(DEVICES - 1)),
    ];
    for (name, input, device) in negatives {
        let expected = outcome(&f, &input, device);
        assert_ne!(expected, "Ok", "{name}");
        v.push(json!({
            "name": name,
            "kind": "envelope-error",
            "input": hex(&input),
            "device": device,
            "expected_error": expected,
        }));
    }
    file(
        "envelope",
        "Fan-out envelopes: slot keys, padding, dummy slots, ordering, decoding and opening errors (spec §8.7)",
        v,
    )
}
