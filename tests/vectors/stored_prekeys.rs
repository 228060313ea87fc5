//! Vectors for the stored prekey store (spec §4.6): two stores (fresh, and
//! after rotations, handshakes and consumed one-time prekeys), its encrypted
//! form, and Wycheproof-style rejections of the plain and encrypted decoders.

use super::{file, hex};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use serde_json::{Value, json};
use session_ratchet::identity::DeviceIdentity;
use session_ratchet::prekey::{PrekeyError, PrekeyStore, StoredPrekeys};
use session_ratchet::ratchet::{Session, StorageKey};

/// `UnsupportedStoreVersion`, `WrongKeyOrTampered`, or
/// `CorruptedStore/<§6.5 class>`.
pub fn store_class(e: &PrekeyError) -> String {
    match e {
        PrekeyError::CorruptedStore { error } => format!("CorruptedStore/{}", super::class(error)),
        other => super::class(other),
    }
}

/// The device and its two stores, from `rng_seed`: the identity (Ed25519
/// seed, X25519 secret: the first 64 bytes of the stream), then the store.
pub struct Fixture {
    pub rng_seed: [u8; 32],
    pub identity_draws: Vec<u8>,
    pub identity: DeviceIdentity,
    pub fresh: StoredPrekeys,
    pub used: StoredPrekeys,
}

pub fn fixture() -> Fixture {
    let rng_seed = [0x4C; 32];
    let mut rng = ChaCha20Rng::from_seed(rng_seed);
    let mut draws = [0u8; 64];
    ChaCha20Rng::from_seed(rng_seed).fill_bytes(&mut draws);
    let identity = DeviceIdentity::generate(&mut rng);
    let mut store = PrekeyStore::new(&mut rng, &identity);
    let fresh = store.to_stored();
    // Three one-time X25519 and two one-time ML-KEM prekeys; a second
    // signed prekey; then handshakes: one with a one-time X25519 and a
    // one-time ML-KEM prekey, two with the last-resort prekey only (their
    // base keys enter its replay set).
    store
        .generate_one_time_prekeys(&mut rng, &identity, 3)
        .unwrap();
    store
        .generate_one_time_kem_prekeys(&mut rng, &identity, 2)
        .unwrap();
    store.rotate_signed_prekey(&mut rng, &identity).unwrap();
    let alice = DeviceIdentity::generate(&mut rng);
    let otp = store.one_time_prekey_ids()[0];
    let okem = store.one_time_kem_prekey_ids()[0];
    for (o, k) in [(Some(otp), Some(okem)), (None, None), (None, None)] {
        let bundle = store.bundle(&identity, o, k).unwrap().verify().unwrap();
        let mut s = Session::initiate(&mut rng, &alice, &bundle).unwrap();
        let m = s.encrypt(&mut rng, b"first", b"").unwrap();
        Session::respond(&identity, &mut store, &m, b"").unwrap();
    }
    Fixture {
        rng_seed,
        identity_draws: draws.to_vec(),
        identity,
        fresh,
        used: store.to_stored(),
    }
}

/// Offsets of the fields of a plain stored prekey store (spec §4.6).
struct Layout {
    /// Start of each signed prekey entry.
    spk: Vec<usize>,
    /// Start of each last-resort entry, and of its replay set's keys.
    pqlr: Vec<(usize, usize, usize)>,
    opk_count: usize,
    opk: Vec<usize>,
    next_id: usize,
}

fn layout(b: &[u8]) -> Layout {
    let u16_at = |at: usize| usize::from(u16::from_be_bytes([b[at], b[at + 1]]));
    let mut at = 2;
    let n = usize::from(b[at]);
    at += 1;
    let spk: Vec<usize> = (0..n).map(|i| at + 100 * i).collect();
    at += 100 * n;
    let n = usize::from(b[at]);
    at += 1;
    let mut pqlr = Vec::new();
    for _ in 0..n {
        let keys = u16_at(at + 132);
        pqlr.push((at, at + 134, keys));
        at += 134 + 32 * keys;
    }
    let opk_count = at;
    let n = u16_at(at);
    at += 2;
    let opk: Vec<usize> = (0..n).map(|i| at + 36 * i).collect();
    at += 36 * n;
    let n = u16_at(at);
    at += 2 + 132 * n;
    Layout {
        spk,
        pqlr,
        opk_count,
        opk,
        next_id: at,
    }
}

fn error_vector(name: &str, input: &[u8], key: Option<&[u8; 32]>, expected: &str) -> Value {
    json!({
        "name": name,
        "kind": "stored-prekeys-error",
        "input": hex(input),
        "storage_key": key.map(hex),
        "expected_error": expected,
    })
}

pub fn vectors() -> Value {
    let f = fixture();
    let mut v = Vec::new();
    for (name, stored) in [("fresh", &f.fresh), ("used", &f.used)] {
        let store = PrekeyStore::from_stored(stored).unwrap();
        v.push(json!({
            "name": name,
            "kind": "stored-prekeys",
            "rng_seed": hex(f.rng_seed),
            "identity_draws": hex(&f.identity_draws),
            "public_identity": hex(f.identity.public().to_bytes()),
            "stored": hex(stored.as_bytes()),
            "bundle": hex(store.bundle(&f.identity, None, None).unwrap().to_bytes()),
            "one_time_prekey_ids": store.one_time_prekey_ids(),
            "one_time_kem_prekey_ids": store.one_time_kem_prekey_ids(),
        }));
    }
    // The encrypted form of the used store.
    let key_bytes = [0x5A; 32];
    let key = StorageKey::from_bytes(key_bytes);
    let nonce_seed = [0x4E; 32];
    let mut nonce = [0u8; 24];
    ChaCha20Rng::from_seed(nonce_seed).fill_bytes(&mut nonce);
    let blob = f
        .used
        .encrypt(&mut ChaCha20Rng::from_seed(nonce_seed), &key);
    v.push(json!({
        "name": "used, encrypted",
        "kind": "stored-prekeys-encrypted",
        "of": "used",
        "storage_key": hex(key_bytes),
        "nonce": hex(nonce),
        "encrypted": hex(&blob),
    }));

    // Rejections of the plain decoder, each from the used store.
    let b = f.used.as_bytes().to_vec();
    let l = layout(&b);
    let edit = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut x = b.clone();
        f(&mut x);
        x
    };
    let id_at = |at: usize| [b[at], b[at + 1], b[at + 2], b[at + 3]];
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("version 2", edit(&|x| x[0] = 2), "UnsupportedStoreVersion"),
        (
            "stored-session type",
            edit(&|x| x[1] = 0x10),
            "CorruptedStore/UnexpectedType",
        ),
        ("empty", Vec::new(), "CorruptedStore/Truncated"),
        ("header only", b[..2].to_vec(), "CorruptedStore/Truncated"),
        (
            "cut inside the first signed prekey",
            b[..50].to_vec(),
            "CorruptedStore/Truncated",
        ),
        (
            "cut before next_id",
            b[..b.len() - 1].to_vec(),
            "CorruptedStore/Truncated",
        ),
        (
            "trailing byte",
            edit(&|x| x.push(0)),
            "CorruptedStore/TrailingBytes",
        ),
        (
            "no signed prekey",
            edit(&|x| x[2] = 0),
            "CorruptedStore/InvalidValue",
        ),
        (
            "four signed prekeys",
            edit(&|x| x[2] = 4),
            "CorruptedStore/TooMany",
        ),
        (
            "signed prekey id 0",
            edit(&|x| x[l.spk[0]..l.spk[0] + 4].fill(0)),
            "CorruptedStore/InvalidValue",
        ),
        (
            "signed prekeys out of order",
            edit(&|x| {
                let (a, c) = (l.spk[0], l.spk[1]);
                let first: Vec<u8> = x[a..a + 100].to_vec();
                let second: Vec<u8> = x[c..c + 100].to_vec();
                x[a..a + 100].copy_from_slice(&second);
                x[c..c + 100].copy_from_slice(&first);
            }),
            "CorruptedStore/NotCanonical",
        ),
        (
            "one-time prekey reusing a signed prekey's id",
            edit(&|x| x[l.opk[0]..l.opk[0] + 4].copy_from_slice(&id_at(l.spk[0]))),
            "CorruptedStore/InvalidValue",
        ),
        (
            "replay set out of order",
            edit(&|x| {
                let (_, keys, n) = l.pqlr[0];
                assert!(n >= 2);
                let k0: Vec<u8> = x[keys..keys + 32].to_vec();
                let k1: Vec<u8> = x[keys + 32..keys + 64].to_vec();
                x[keys..keys + 32].copy_from_slice(&k1);
                x[keys + 32..keys + 64].copy_from_slice(&k0);
            }),
            "CorruptedStore/NotCanonical",
        ),
        (
            "1001 one-time prekeys",
            edit(&|x| x[l.opk_count..l.opk_count + 2].copy_from_slice(&1001u16.to_be_bytes())),
            "CorruptedStore/TooMany",
        ),
        (
            "next_id not above every id",
            edit(&|x| x[l.next_id..l.next_id + 4].copy_from_slice(&1u32.to_be_bytes())),
            "CorruptedStore/InvalidValue",
        ),
    ];
    for (name, input, expected) in cases {
        let got = PrekeyStore::from_stored(&StoredPrekeys::from_bytes(&input))
            .map(|_| ())
            .unwrap_err();
        assert_eq!(store_class(&got), expected, "{name}");
        v.push(error_vector(name, &input, None, expected));
    }
    // Rejections of the encrypted form.
    let other_key = [0x5B; 32];
    let enc_cases: Vec<(&str, Vec<u8>, [u8; 32], &str)> = vec![
        ("wrong key", blob.clone(), other_key, "WrongKeyOrTampered"),
        (
            "flipped ciphertext byte",
            {
                let mut x = blob.clone();
                x[40] ^= 1;
                x
            },
            key_bytes,
            "WrongKeyOrTampered",
        ),
        (
            "encrypted, version 2",
            {
                let mut x = blob.clone();
                x[0] = 2;
                x
            },
            key_bytes,
            "UnsupportedStoreVersion",
        ),
        (
            "encrypted session type 0x11",
            {
                let mut x = blob.clone();
                x[1] = 0x11;
                x
            },
            key_bytes,
            "CorruptedStore/UnexpectedType",
        ),
        (
            "encrypted, cut inside the nonce",
            blob[..20].to_vec(),
            key_bytes,
            "CorruptedStore/Truncated",
        ),
    ];
    for (name, input, k, expected) in enc_cases {
        let got = StoredPrekeys::decrypt(&input, &StorageKey::from_bytes(k)).unwrap_err();
        assert_eq!(store_class(&got), expected, "{name}");
        v.push(error_vector(name, &input, Some(&k), expected));
    }
    file(
        "stored-prekeys",
        "The stored prekey store (spec §4.6): a fresh and a used store with the bundle each serves, the encrypted form, and rejections of both decoders.",
        v,
    )
}
