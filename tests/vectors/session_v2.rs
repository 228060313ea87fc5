//! Deterministic test vectors for the Session v2 formats (spec chapter 9).
//!
//! `vectors()` builds every vector from fixed inputs and seeded
//! `ChaCha20Rng`s, so it always produces the same JSON; the committed
//! `test-vectors/session-v2.json` is its pretty-printed output.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
#![allow(dead_code, unreachable_pub)]

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use serde_json::{Value, json};
use session_ratchet::secret::{AccountKeySeed, DeviceKeySeed, RecoverySeed};
use session_ratchet::session_v2::account_keys::{
    self, CacheState, account_key_pair, device_key_pair, encode_record,
};
use session_ratchet::session_v2::device_group::{
    AccountKeyEntry, DeviceEntry, DeviceRecord, GroupPayload, encode_version, encrypt_group,
};
use session_ratchet::session_v2::identity::{Identity, SessionId};
use session_ratchet::session_v2::upgrade::{self, Incoming, UpgradeSession};
use session_ratchet::session_v2::{bencode, dm, link, mnemonic, xeddsa};
use std::collections::BTreeMap;

/// A stable error-class name from an error's `Debug` form:
/// `BadFormat(TooShort { len: 3 })` → `BadFormat/TooShort`.
pub fn class<E: std::fmt::Debug>(e: &E) -> String {
    let d = format!("{e:?}");
    let mut out = String::new();
    let mut parts = 0;
    let mut chars = d.chars().peekable();
    while parts < 2 {
        let ident: String =
            std::iter::from_fn(|| chars.next_if(|c| c.is_alphanumeric() || *c == '_')).collect();
        if ident.is_empty() {
            break;
        }
        if parts > 0 {
            out.push('/');
        }
        out.push_str(&ident);
        parts += 1;
        if chars.next() != Some('(') {
            break;
        }
    }
    out
}

fn rng(label: u8) -> ChaCha20Rng {
    ChaCha20Rng::from_seed([label; 32])
}

fn h(b: &[u8]) -> String {
    hex::encode(b)
}

/// A test account: identity from a 16-byte seed, plus account and device keys.
pub struct Account {
    pub seed: [u8; 16],
    pub identity: Identity,
    pub account_seed: [u8; 32],
    pub device_seeds: Vec<[u8; 32]>,
}

impl Account {
    pub fn new(tag: u8, devices: usize) -> Self {
        let seed = [tag; 16];
        Self {
            seed,
            identity: Identity::from_recovery_seed(&RecoverySeed::from_bytes(seed)),
            account_seed: [tag.wrapping_add(0x80); 32],
            device_seeds: (0..devices)
                .map(|i| [tag.wrapping_add(i as u8 + 1).wrapping_mul(3); 32])
                .collect(),
        }
    }

    pub fn device_id(&self, i: usize) -> [u8; 32] {
        let mut id = [0u8; 32];
        id[0] = self.seed[0];
        id[1] = i as u8;
        id
    }

    /// The group payload: every device, one removed device, the account key.
    pub fn payload(&self) -> GroupPayload {
        let mut devices = BTreeMap::new();
        for (i, s) in self.device_seeds.iter().enumerate() {
            let keys = device_key_pair(&DeviceKeySeed::from_bytes(*s));
            let mut r = DeviceRecord::new(1 + i as i64, 1_760_000_000 + i as i64, &keys);
            r.set_description(&format!("device {i} — test"));
            r.device_type = [b"i".to_vec(), b"a".to_vec(), b"d".to_vec()][i % 3].clone();
            r.version = encode_version(1, 2, i as i64);
            if i == 0 {
                r.extra.insert(b"~future".to_vec(), bencode::Value::Int(7));
            }
            devices.insert(self.device_id(i), DeviceEntry::Active(Box::new(r)));
        }
        devices.insert(
            [0xee; 32],
            DeviceEntry::Removed {
                removed_at: 1_759_000_000,
            },
        );
        GroupPayload {
            devices,
            account_keys: vec![AccountKeyEntry {
                seed: AccountKeySeed::from_bytes(self.account_seed),
                created: 1_760_000_000,
                rotated: None,
            }],
        }
    }
}

/// Every vector, in a fixed order.
pub fn vectors() -> Value {
    let mut v: Vec<Value> = Vec::new();

    // Mnemonics.
    for seed in [[0u8; 16], [0xff; 16], *b"Session recovery"] {
        let phrase = mnemonic::encode_recovery_seed(&RecoverySeed::from_bytes(seed)).unwrap();
        v.push(
            json!({"name": format!("mnemonic-{}", h(&seed[..2])), "kind": "mnemonic",
            "seed": h(&seed), "phrase": phrase.as_str()}),
        );
    }
    let good = mnemonic::encode_recovery_seed(&RecoverySeed::from_bytes([0x42; 16])).unwrap();
    let words: Vec<&str> = good.words().collect();
    let mut bad_check = words.clone();
    bad_check[12] = if words[12] == "zoom" { "abbey" } else { "zoom" };
    let mut unknown = words.clone();
    unknown[3] = "qqqq";
    for (name, phrase) in [
        ("mnemonic-wrong-count", words[..12].join(" ")),
        ("mnemonic-unknown-word", unknown.join(" ")),
        ("mnemonic-bad-checksum", bad_check.join(" ")),
    ] {
        let err = mnemonic::decode(&phrase).unwrap_err();
        v.push(
            json!({"name": name, "kind": "mnemonic-error", "phrase": phrase, "error": class(&err)}),
        );
    }

    // Identities and Session IDs.
    for seed in [[0u8; 16], [1; 16], [0x42; 16]] {
        let id = Identity::from_recovery_seed(&RecoverySeed::from_bytes(seed));
        v.push(json!({"name": format!("identity-{}", h(&seed[..1])), "kind": "identity", "seed": h(&seed),
            "ed25519_pk": h(id.ed25519_public()), "x25519_pk": h(id.x25519_public().as_bytes()),
            "session_id": id.session_id().to_string()}));
    }
    for (name, input) in [
        ("session-id-wrong-length", "05abcd".to_string()),
        ("session-id-bad-hex", format!("05{}zz", "00".repeat(31))),
        ("session-id-wrong-prefix", format!("03{}", "00".repeat(32))),
    ] {
        let err = SessionId::from_hex(&input).unwrap_err();
        v.push(
            json!({"name": name, "kind": "session-id-error", "input": input, "error": class(&err)}),
        );
    }

    // Positive-alternative signatures (randomised: verification vectors).
    for tag in [1u8, 2] {
        let id = Identity::from_recovery_seed(&RecoverySeed::from_bytes([tag; 16]));
        let msg = format!("xeddsa vector {tag}").into_bytes();
        let sig = xeddsa::sign(&mut rng(0x10 + tag), &id, &msg);
        v.push(json!({"name": format!("xeddsa-{tag}"), "kind": "xeddsa", "session_id": id.session_id().to_string(),
            "message": h(&msg), "signature": h(&sig), "valid": true}));
        let mut bad = sig;
        bad[0] ^= 1;
        v.push(json!({"name": format!("xeddsa-{tag}-tampered"), "kind": "xeddsa", "session_id": id.session_id().to_string(),
            "message": h(&msg), "signature": h(&bad), "valid": false}));
    }

    // Account/device keys and the account-key record.
    let owner = Account::new(0x21, 1);
    let keys = account_key_pair(&AccountKeySeed::from_bytes(owner.account_seed));
    v.push(json!({"name": "account-keys", "kind": "account-keys", "seed": h(&owner.account_seed),
        "x25519_pk": h(keys.x25519_public().as_bytes()), "mlkem_pk": h(keys.mlkem_public().as_bytes())}));
    let dev = device_key_pair(&DeviceKeySeed::from_bytes(owner.device_seeds[0]));
    v.push(json!({"name": "device-keys", "kind": "device-keys", "seed": h(&owner.device_seeds[0]),
        "x25519_pk": h(dev.x25519_public().as_bytes()), "mlkem_pk": h(dev.mlkem_public().as_bytes())}));
    let record = encode_record(&mut rng(0x20), &owner.identity, &keys.public_keys());
    v.push(json!({"name": "account-record", "kind": "account-record", "session_id": owner.identity.session_id().to_string(),
        "record": h(&record), "x25519_pk": h(keys.x25519_public().as_bytes())}));
    let mut tampered = record.clone();
    tampered[10] ^= 1;
    let other = Identity::from_recovery_seed(&RecoverySeed::from_bytes([0x22; 16]));
    for (name, sid, rec) in [
        (
            "account-record-tampered",
            owner.identity.session_id(),
            tampered,
        ),
        (
            "account-record-wrong-owner",
            other.session_id(),
            record.clone(),
        ),
        (
            "account-record-truncated",
            owner.identity.session_id(),
            record[..record.len() - 1].to_vec(),
        ),
    ] {
        let err = account_keys::verify_record(&sid, &rec).unwrap_err();
        v.push(json!({"name": name, "kind": "account-record-error", "session_id": sid.to_string(), "record": h(&rec),
            "error": class(&err)}));
    }

    // Cache states, rotation, retention (pure functions).
    for (age, state) in [
        (0i64, CacheState::Fresh),
        (86_399, CacheState::Fresh),
        (86_400, CacheState::Stale),
        (172_800, CacheState::Stale),
        (172_801, CacheState::Expired),
    ] {
        assert_eq!(account_keys::cache_state(1_000, 1_000 + age), state);
        v.push(json!({"name": format!("cache-{age}"), "kind": "cache-state", "fetched_at": 1_000, "now": 1_000 + age,
            "state": format!("{state:?}")}));
    }
    for n in [1u32, 3, 5] {
        let t = account_keys::rotation_time(
            1_760_000_000,
            &owner.device_id(0),
            &AccountKeySeed::from_bytes(owner.account_seed),
            n,
        );
        v.push(json!({"name": format!("rotation-{n}"), "kind": "rotation-time", "created_at": 1_760_000_000i64,
            "device_id": h(&owner.device_id(0)), "seed": h(&owner.account_seed), "devices": n, "rotate_at": t,
            "u": account_keys::rotation_u(&owner.device_id(0), &AccountKeySeed::from_bytes(owner.account_seed))}));
    }
    for (rotated, now, kept) in [(0i64, 16 * 86_400i64, true), (0, 16 * 86_400 + 1, false)] {
        assert_eq!(account_keys::is_retained(Some(rotated), now), kept);
        v.push(json!({"name": format!("retention-{now}"), "kind": "retention", "rotated_at": rotated, "now": now, "kept": kept}));
    }

    // Bencode negatives.
    for (name, input) in [
        ("bencode-unsorted", &b"d1:bi1e1:ai2ee"[..]),
        ("bencode-leading-zero", b"i01e"),
        ("bencode-length-past-end", b"9999:x"),
        ("bencode-trailing", b"i1ei2e"),
        ("bencode-negative-zero", b"i-0e"),
    ] {
        let err = bencode::decode(input).unwrap_err();
        v.push(
            json!({"name": name, "kind": "bencode-error", "input": h(input), "error": class(&err)}),
        );
    }

    // Direct messages.
    let alice = Account::new(0x31, 1);
    let bob = Account::new(0x32, 1);
    let bob_keys = account_key_pair(&AccountKeySeed::from_bytes(bob.account_seed));
    let bob_sid = bob.identity.session_id();
    for (name, content) in [
        ("dm-pfs-short", b"hello bob".to_vec()),
        ("dm-pfs-long", vec![0x5a; 600]),
    ] {
        let msg = dm::encrypt_pfs(
            &mut rng(0x30),
            &alice.identity,
            &bob_sid,
            &bob_keys.public_keys(),
            &content,
            None,
        )
        .unwrap();
        v.push(json!({"name": name, "kind": "dm-pfs", "sender_seed": h(&alice.seed), "recipient_seed": h(&bob.seed),
            "account_seed": h(&bob.account_seed), "rng_seed": h(&[0x30; 32]), "content": h(&content), "message": h(&msg)}));
    }
    let fallback = dm::encrypt_non_pfs(
        &mut rng(0x33),
        &alice.identity,
        &bob_sid,
        b"no keys yet",
        None,
    )
    .unwrap();
    v.push(json!({"name": "dm-non-pfs", "kind": "dm-non-pfs", "sender_seed": h(&alice.seed), "recipient_seed": h(&bob.seed),
        "account_seed": h(&bob.account_seed), "rng_seed": h(&[0x33; 32]), "content": h(b"no keys yet"), "message": h(&fallback)}));
    let good = dm::encrypt_pfs(
        &mut rng(0x34),
        &alice.identity,
        &bob_sid,
        &bob_keys.public_keys(),
        b"x",
        None,
    )
    .unwrap();
    let mut v3 = good.clone();
    v3[1] = 3;
    let mut v1 = good.clone();
    v1[1] = 1;
    let mut body = good.clone();
    let last = body.len() - 1;
    body[last] ^= 1;
    let mut hint = good.clone();
    hint[2] ^= 0xff;
    hint[3] ^= 0xff;
    let mut ct = good.clone();
    ct[100] ^= 1;
    let other_keys = account_key_pair(&AccountKeySeed::from_bytes([0x99; 32]));
    let to_other = dm::encrypt_pfs(
        &mut rng(0x35),
        &alice.identity,
        &bob_sid,
        &other_keys.public_keys(),
        b"x",
        None,
    )
    .unwrap();
    let carol = Identity::from_recovery_seed(&RecoverySeed::from_bytes([0x36; 16]));
    let mut forged = dm::encrypt_pfs(
        &mut rng(0x36),
        &alice.identity,
        &carol.session_id(),
        &bob_keys.public_keys(),
        b"x",
        None,
    )
    .unwrap();
    let ki = dm::key_indicator(&bob.identity, &forged).unwrap();
    let target = bob_keys.mlkem_public().as_bytes();
    forged[2] ^= ki[0] ^ target[0];
    forged[3] ^= ki[1] ^ target[1];
    for (name, msg) in [
        ("dm-bad-signature", forged),
        ("dm-empty", vec![]),
        ("dm-not-v2", vec![0x0a; 1536]),
        ("dm-unknown-version", v3),
        ("dm-reserved-non-pfs-prefix", v1),
        ("dm-too-short", good[..1535].to_vec()),
        ("dm-tampered-body", body),
        ("dm-tampered-kem-ciphertext", ct),
        ("dm-tampered-hint", hint),
        ("dm-unknown-account-key", to_other),
        ("dm-low-order-ephemeral", {
            let mut m = good.clone();
            m[4..36].copy_from_slice(&[0; 32]);
            m
        }),
    ] {
        let err = dm::receive(&bob.identity, &[&bob_keys], &msg).unwrap_err();
        v.push(json!({"name": name, "kind": "dm-error", "recipient_seed": h(&bob.seed), "account_seed": h(&bob.account_seed),
            "message": h(&msg), "error": class(&err)}));
    }

    // Device groups with 1, 3 and 5 devices.
    for n in [1usize, 3, 5] {
        let acct = Account::new(0x40 + n as u8, n);
        let payload = acct.payload();
        let msg = encrypt_group(&mut rng(0x40), &acct.identity, &payload).unwrap();
        v.push(json!({"name": format!("device-group-{n}"), "kind": "device-group", "account_seed": h(&acct.seed),
            "device_seeds": acct.device_seeds.iter().map(|s| h(s)).collect::<Vec<_>>(), "rng_seed": h(&[0x40; 32]),
            "payload": h(&payload.encode()), "message": h(&msg), "kicked_device": h(&[0xee; 32])}));
    }
    {
        let acct = Account::new(0x43, 3);
        let msg = encrypt_group(&mut rng(0x41), &acct.identity, &acct.payload()).unwrap();
        let stranger = device_key_pair(&DeviceKeySeed::from_bytes([0x01; 32]));
        let dev0 = device_key_pair(&DeviceKeySeed::from_bytes(acct.device_seeds[0]));
        let mut sig = msg.clone();
        let l = sig.len();
        sig[l - 10] ^= 1;
        let mut tag = msg.clone();
        tag[5] = b'X';
        let cases: Vec<(
            &str,
            Vec<u8>,
            &session_ratchet::session_v2::account_keys::KeyPair,
        )> = vec![
            ("device-group-not-recipient", msg.clone(), &stranger),
            ("device-group-bad-signature", sig, &dev0),
            ("device-group-wrong-type", tag, &dev0),
            (
                "device-group-truncated",
                msg[..msg.len() - 1].to_vec(),
                &dev0,
            ),
        ];
        for (name, m, keys) in cases {
            let err = session_ratchet::session_v2::device_group::decrypt_group(
                &m,
                acct.identity.ed25519_public(),
                keys,
            )
            .unwrap_err();
            v.push(json!({"name": name, "kind": "device-group-error", "account_seed": h(&acct.seed), "message": h(&m),
                "device_x25519_pk": h(keys.x25519_public().as_bytes()), "error": class(&err)}));
        }
    }

    // Link request and SAS.
    let acct = Account::new(0x50, 1);
    let keys = device_key_pair(&DeviceKeySeed::from_bytes(acct.device_seeds[0]));
    let mut r = DeviceRecord::new(1, 1_760_000_000, &keys);
    r.set_description("New phone");
    r.device_type = b"a".to_vec();
    let plain = link::encode_link_request(&acct.device_id(0), &r);
    let msg = link::encrypt_link_request(&acct.identity, &plain);
    let sas = link::sas(&plain).unwrap();
    v.push(json!({"name": "link-request", "kind": "link-request", "account_seed": h(&acct.seed), "plaintext": h(&plain),
        "message": h(&msg), "sas_indices": sas.indices.to_vec(),
        "sas_emoji": sas.short().unwrap().iter().map(|(e, _)| *e).collect::<Vec<_>>()}));

    upgrade_vectors(&mut v);

    json!({
        "layer": "session-v2",
        "description": "Session identity and Session Protocol v2 formats (spec/09-session-v2.md). Hex fields; \
            rng_seed is the 32-byte seed of a rand_chacha ChaCha20Rng consumed in the order the spec lists. \
            Randomised outputs (xeddsa signatures, messages) are checked by verifying/decrypting them.",
        "provenance": {
            "generator": "cargo run --example gen_vectors",
            "crate": "session-ratchet",
            "crate_version": env!("CARGO_PKG_VERSION"),
            "rng": "rand_chacha::ChaCha20Rng::from_seed(rng_seed), draws in spec order",
        },
        "vectors": v,
    })
}

/// Bob's side of an upgrade: receive `msg` and accept it (first) or decrypt it
/// as a repeat with `session`.
pub fn bob_receive(
    bob: &Identity,
    keys: &[&account_keys::KeyPair],
    msg: &[u8],
    ad: &[u8],
    session: &mut Option<UpgradeSession>,
) -> Result<Vec<u8>, upgrade::UpgradeError> {
    let Incoming::Offer(offer) = upgrade::receive(bob, keys, msg)? else {
        panic!("not an offer")
    };
    match session {
        Some(s) => s.decrypt_offer(&offer, ad),
        None => {
            let (s, pt) = offer.accept(ad)?;
            *session = Some(s);
            Ok(pt)
        }
    }
}

/// An offer content built by hand (for malformed-offer vectors).
pub fn raw_offer(version: u8, body_len: usize) -> Vec<u8> {
    let mut c = upgrade::OFFER_MAGIC.to_vec();
    c.push(version);
    c.extend(std::iter::repeat_n(0x11u8, body_len));
    c
}

/// `ratchet-upgrade` and `ratchet-upgrade-error` vectors (spec §9.11).
#[allow(clippy::type_complexity)]
fn upgrade_vectors(v: &mut Vec<Value>) {
    let alice = Account::new(0x61, 1);
    let bob = Account::new(0x62, 1);
    let bob_sid = bob.identity.session_id();
    let k1_seed = bob.account_seed;
    let k2_seed = [0xa2u8; 32];
    let k1 = account_key_pair(&AccountKeySeed::from_bytes(k1_seed));
    let k2 = account_key_pair(&AccountKeySeed::from_bytes(k2_seed));
    let ad = b"conversation 7".to_vec();
    // (name, account seed per message, plaintexts)
    let scenarios: Vec<(&str, Vec<[u8; 32]>, Vec<&[u8]>)> = vec![
        (
            "ratchet-upgrade-one-offer",
            vec![k1_seed],
            vec![b"hi Bob, moving to the ratchet"],
        ),
        (
            "ratchet-upgrade-repeat-after-rotation",
            vec![k1_seed, k2_seed],
            vec![b"first offer", b"second offer, after Bob rotated"],
        ),
    ];
    for (name, seeds, plaintexts) in scenarios {
        let mut arng = rng(0x60);
        let key_of = |s: &[u8; 32]| if *s == k1_seed { &k1 } else { &k2 };
        let (mut a, first) = UpgradeSession::initiate(
            &mut arng,
            &alice.identity,
            &bob_sid,
            &key_of(&seeds[0]).public_keys(),
            plaintexts[0],
            &ad,
        )
        .unwrap();
        let mut msgs = vec![first];
        for (s, pt) in seeds.iter().zip(&plaintexts).skip(1) {
            msgs.push(
                a.encrypt_offer(
                    &mut arng,
                    &alice.identity,
                    &key_of(s).public_keys(),
                    pt,
                    &ad,
                )
                .unwrap(),
            );
        }
        // Bob holds his current key first, then the retained one.
        let held: Vec<&account_keys::KeyPair> = if seeds.len() > 1 {
            vec![&k2, &k1]
        } else {
            vec![&k1]
        };
        let Incoming::Offer(offer) = upgrade::receive(&bob.identity, &held, &msgs[0]).unwrap()
        else {
            panic!()
        };
        let seed = offer.hazmat_seed();
        let mut bob_session = None;
        for (m, pt) in msgs.iter().zip(&plaintexts) {
            assert_eq!(
                bob_receive(&bob.identity, &held, m, &ad, &mut bob_session).unwrap(),
                *pt
            );
        }
        let mut b = bob_session.unwrap();
        let reply_pt = b"hi Alice, upgraded".to_vec();
        let reply = b.encrypt(&mut rng(0x63), &reply_pt, &ad).unwrap();
        assert_eq!(a.decrypt(&reply, &ad).unwrap(), reply_pt);
        // The offer content as Bob decrypted it (the first message).
        let content = dm::receive(&bob.identity, &held, &msgs[0]).unwrap().content;
        v.push(json!({"name": name, "kind": "ratchet-upgrade",
            "sender_seed": h(&alice.seed), "recipient_seed": h(&bob.seed),
            "account_seeds_held": if seeds.len() > 1 { vec![h(&k2_seed), h(&k1_seed)] } else { vec![h(&k1_seed)] },
            "rng_seed": h(&[0x60; 32]), "associated_data": h(&ad),
            "messages": msgs.iter().zip(&seeds).zip(&plaintexts).map(|((m, s), pt)| json!({
                "account_seed": h(s), "plaintext": h(pt), "message": h(m)})).collect::<Vec<_>>(),
            "first_content": h(&content),
            "material": h(&content[6..38]), "anchor_x25519": h(&content[38..70]),
            "anchor_ephemeral": h(&content[70..102]), "anchor_ct_hash": h(&content[102..134]),
            "transcript_hash": h(offer.transcript_hash()), "upgrade_id": h(offer.upgrade_id()),
            "root_key": h(seed.root_key().hazmat_bytes()),
            "initiator_chain_key": h(seed.initiator_chain_key().hazmat_bytes()),
            "initiator_header_key": h(seed.initiator_header_key().hazmat_bytes()),
            "responder_header_key": h(seed.responder_header_key().hazmat_bytes()),
            "initiator_identity": h(&b.session().remote_identity().to_bytes()),
            "responder_identity": h(&b.session().local_identity().to_bytes()),
            "reply_rng_seed": h(&[0x63; 32]), "reply_plaintext": h(&reply_pt), "reply": h(&reply)}));
    }

    // Errors: what Bob's receive (then accept) reports.
    let (_, good) = UpgradeSession::initiate(
        &mut rng(0x64),
        &alice.identity,
        &bob_sid,
        &k1.public_keys(),
        b"x",
        &ad,
    )
    .unwrap();
    let mut tampered = good.clone();
    let l = tampered.len();
    tampered[l - 3] ^= 1;
    let (mut a2, _) = UpgradeSession::initiate(
        &mut rng(0x65),
        &alice.identity,
        &bob_sid,
        &k1.public_keys(),
        b"x",
        &ad,
    )
    .unwrap();
    let rotated = a2
        .encrypt_offer(
            &mut rng(0x66),
            &alice.identity,
            &k2.public_keys(),
            b"y",
            &ad,
        )
        .unwrap();
    let craft = |content: &[u8], tag: u8| {
        dm::encrypt_pfs(
            &mut rng(tag),
            &alice.identity,
            &bob_sid,
            &k1.public_keys(),
            content,
            None,
        )
        .unwrap()
    };
    let cases: Vec<(&str, Vec<u8>, Vec<&account_keys::KeyPair>, &[u8])> = vec![
        ("ratchet-upgrade-tampered", tampered, vec![&k1], &ad),
        (
            "ratchet-upgrade-wrong-associated-data",
            good.clone(),
            vec![&k1],
            b"another conversation",
        ),
        (
            "ratchet-upgrade-anchor-key-dropped",
            rotated,
            vec![&k2],
            &ad,
        ),
        (
            "ratchet-upgrade-malformed",
            craft(&raw_offer(1, 40), 0x67),
            vec![&k1],
            &ad,
        ),
        (
            "ratchet-upgrade-unknown-version",
            craft(&raw_offer(2, 300), 0x68),
            vec![&k1],
            &ad,
        ),
        (
            "ratchet-upgrade-non-pfs",
            dm::encrypt_non_pfs(
                &mut rng(0x69),
                &alice.identity,
                &bob_sid,
                &raw_offer(1, 300),
                None,
            )
            .unwrap(),
            vec![&k1],
            &ad,
        ),
    ];
    let seed_of = |k: &&account_keys::KeyPair| {
        if k.x25519_public() == k1.x25519_public() {
            h(&k1_seed)
        } else {
            h(&k2_seed)
        }
    };
    for (name, msg, held, case_ad) in cases {
        let mut none = None;
        let err = bob_receive(&bob.identity, &held, &msg, case_ad, &mut none).unwrap_err();
        v.push(
            json!({"name": name, "kind": "ratchet-upgrade-error", "recipient_seed": h(&bob.seed),
            "account_seeds_held": held.iter().map(seed_of).collect::<Vec<_>>(),
            "associated_data": h(case_ad), "message": h(&msg), "error": class(&err)}),
        );
    }
}
