//! Session v2: published vectors, end-to-end round trips between two accounts
//! with 1, 3 and 5 devices, merge rules, and every error class.
#![cfg(feature = "session-v2")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

#[path = "vectors/session_v2.rs"]
mod vectors;

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use serde_json::Value;
use session_ratchet::secret::{AccountKeySeed, DeviceKeySeed, RecoverySeed};
use session_ratchet::session_v2::account_keys::{
    KeyPair, account_key_pair, device_key_pair, encode_record, verify_record,
};
use session_ratchet::session_v2::device_group::{
    DeviceEntry, DeviceGroupError, DeviceRecord, GroupPayload, decrypt_group, encrypt_group,
    is_kicked, merge_devices,
};
use session_ratchet::session_v2::identity::{Identity, SessionId};
use session_ratchet::session_v2::upgrade::{
    self, Incoming, MAX_UNANSWERED_OFFERS, PeerCapability, SendPath, StoredUpgradeSession,
    UpgradeError, UpgradeSession, send_path,
};
use session_ratchet::session_v2::{bencode, dm, link, mnemonic, xeddsa};
use std::collections::BTreeMap;
use vectors::{Account, class};

fn hx(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

fn identity(v: &Value) -> Identity {
    Identity::from_seed_bytes(&hx(v)).unwrap()
}

fn arr32(v: &Value) -> [u8; 32] {
    hx(v).try_into().unwrap()
}

#[test]
fn vectors_verify_through_public_api() {
    let all = vectors::vectors();
    let list = all["vectors"].as_array().unwrap();
    assert!(list.len() > 50);
    for v in list {
        let name = v["name"].as_str().unwrap();
        match v["kind"].as_str().unwrap() {
            "mnemonic" => {
                let seed: [u8; 16] = hx(&v["seed"]).try_into().unwrap();
                assert_eq!(
                    mnemonic::decode(v["phrase"].as_str().unwrap()).unwrap(),
                    mnemonic::DecodedSeed::Recovery(RecoverySeed::from_bytes(seed)),
                    "{name}"
                );
            }
            "mnemonic-error" => {
                let err = mnemonic::decode(v["phrase"].as_str().unwrap()).unwrap_err();
                assert_eq!(class(&err), v["error"].as_str().unwrap(), "{name}");
            }
            "identity" => {
                let id = identity(&v["seed"]);
                assert_eq!(
                    id.session_id().to_string(),
                    v["session_id"].as_str().unwrap()
                );
                assert_eq!(id.ed25519_public().to_vec(), hx(&v["ed25519_pk"]));
            }
            "session-id-error" => {
                let err = SessionId::from_hex(v["input"].as_str().unwrap()).unwrap_err();
                assert_eq!(class(&err), v["error"].as_str().unwrap(), "{name}");
            }
            "xeddsa" => {
                let sid = SessionId::from_hex(v["session_id"].as_str().unwrap()).unwrap();
                let sig: [u8; 64] = hx(&v["signature"]).try_into().unwrap();
                assert_eq!(
                    xeddsa::verify(&sid, &hx(&v["message"]), &sig),
                    v["valid"].as_bool().unwrap(),
                    "{name}"
                );
            }
            "account-keys" => {
                let k = account_key_pair(&AccountKeySeed::from_bytes(arr32(&v["seed"])));
                assert_eq!(k.mlkem_public().as_bytes().to_vec(), hx(&v["mlkem_pk"]));
                assert_eq!(k.x25519_public().as_bytes().to_vec(), hx(&v["x25519_pk"]));
            }
            "device-keys" => {
                let k = device_key_pair(&DeviceKeySeed::from_bytes(arr32(&v["seed"])));
                assert_eq!(k.mlkem_public().as_bytes().to_vec(), hx(&v["mlkem_pk"]));
            }
            "account-record" => {
                let sid = SessionId::from_hex(v["session_id"].as_str().unwrap()).unwrap();
                let keys = verify_record(&sid, &hx(&v["record"])).unwrap();
                assert_eq!(keys.x25519.as_bytes().to_vec(), hx(&v["x25519_pk"]));
            }
            "account-record-error" => {
                let sid = SessionId::from_hex(v["session_id"].as_str().unwrap()).unwrap();
                let err = verify_record(&sid, &hx(&v["record"])).unwrap_err();
                assert_eq!(class(&err), v["error"].as_str().unwrap(), "{name}");
            }
            "cache-state" | "rotation-time" | "retention" => {
                // Recomputed inside vectors(); the committed file pins the values.
            }
            "bencode-error" => {
                let err = bencode::decode(&hx(&v["input"])).unwrap_err();
                assert_eq!(class(&err), v["error"].as_str().unwrap(), "{name}");
            }
            kind @ ("dm-pfs" | "dm-non-pfs") => {
                let bob = identity(&v["recipient_seed"]);
                let keys = account_key_pair(&AccountKeySeed::from_bytes(arr32(&v["account_seed"])));
                let got = dm::receive(&bob, &[&keys], &hx(&v["message"])).unwrap();
                assert_eq!(*got.content, hx(&v["content"]), "{name}");
                assert_eq!(got.sender, identity(&v["sender_seed"]).session_id());
                assert_eq!(got.pfs, kind == "dm-pfs");
            }
            "dm-error" => {
                let bob = identity(&v["recipient_seed"]);
                let keys = account_key_pair(&AccountKeySeed::from_bytes(arr32(&v["account_seed"])));
                let err = dm::receive(&bob, &[&keys], &hx(&v["message"])).unwrap_err();
                assert_eq!(class(&err), v["error"].as_str().unwrap(), "{name}");
            }
            "device-group" => {
                let account = identity(&v["account_seed"]);
                let msg = hx(&v["message"]);
                for s in v["device_seeds"].as_array().unwrap() {
                    let dev = device_key_pair(&DeviceKeySeed::from_bytes(arr32(s)));
                    let p = decrypt_group(&msg, account.ed25519_public(), &dev).unwrap();
                    assert_eq!(p.encode(), hx(&v["payload"]), "{name}");
                }
                assert!(is_kicked(&msg, &account, &arr32(&v["kicked_device"])).unwrap());
            }
            "device-group-error" => {
                // The device key is not in the vector (only its public half);
                // the class is pinned by the committed file and re-derived in vectors().
                assert!(v["error"].as_str().unwrap().len() > 3);
            }
            "link-request" => {
                let account = identity(&v["account_seed"]);
                let req = link::decrypt_link_request(&account, &hx(&v["message"])).unwrap();
                assert_eq!(req.plaintext, hx(&v["plaintext"]));
            }
            "ratchet-upgrade" => check_upgrade_vector(v),
            "ratchet-upgrade-error" => {
                let bob = identity(&v["recipient_seed"]);
                let keys: Vec<KeyPair> = v["account_seeds_held"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| account_key_pair(&AccountKeySeed::from_bytes(arr32(s))))
                    .collect();
                let held: Vec<&KeyPair> = keys.iter().collect();
                let err = vectors::bob_receive(
                    &bob,
                    &held,
                    &hx(&v["message"]),
                    &hx(&v["associated_data"]),
                    &mut None,
                )
                .unwrap_err();
                assert_eq!(class(&err), v["error"].as_str().unwrap(), "{name}");
            }
            other => panic!("unknown vector kind {other}"),
        }
    }
}

/// Everything an account's device holds after reading its device group.
struct Device {
    keys: KeyPair,
    account_keys: Vec<KeyPair>,
}

/// Builds an account with `n` devices, encrypts its group, and has every device decrypt it.
fn linked_account(tag: u8, n: usize, rng: &mut ChaCha20Rng) -> (Account, Vec<Device>, Vec<u8>) {
    let acct = Account::new(tag, n);
    let payload = acct.payload();
    let msg = encrypt_group(rng, &acct.identity, &payload).unwrap();
    let devices = acct
        .device_seeds
        .iter()
        .map(|s| {
            let keys = device_key_pair(&DeviceKeySeed::from_bytes(*s));
            let got = decrypt_group(&msg, acct.identity.ed25519_public(), &keys).unwrap();
            assert_eq!(got, payload);
            let account_keys = got
                .account_keys
                .iter()
                .map(|k| account_key_pair(&k.seed))
                .collect();
            Device { keys, account_keys }
        })
        .collect();
    (acct, devices, msg)
}

#[test]
fn two_accounts_with_1_3_5_devices_round_trip() {
    let mut rng = ChaCha20Rng::from_seed([0xa0; 32]);
    for n in [1usize, 3, 5] {
        let (alice, alice_devs, _) = linked_account(0x10 + n as u8, n, &mut rng);
        let (bob, bob_devs, group_msg) = linked_account(0x20 + n as u8, n, &mut rng);
        // Bob's first device publishes the account-key record; Alice fetches and verifies it.
        let record = encode_record(
            &mut rng,
            &bob.identity,
            &bob_devs[0].account_keys[0].public_keys(),
        );
        let bob_keys = verify_record(&bob.identity.session_id(), &record).unwrap();
        for (i, _) in alice_devs.iter().enumerate() {
            let content = format!("from alice device {i} of {n}").into_bytes();
            let pfs = dm::encrypt_pfs(
                &mut rng,
                &alice.identity,
                &bob.identity.session_id(),
                &bob_keys,
                &content,
                None,
            )
            .unwrap();
            let fallback = dm::encrypt_non_pfs(
                &mut rng,
                &alice.identity,
                &bob.identity.session_id(),
                &content,
                None,
            )
            .unwrap();
            assert_eq!(
                pfs.len(),
                fallback.len(),
                "fallback is indistinguishable by size"
            );
            for d in &bob_devs {
                let refs: Vec<&KeyPair> = d.account_keys.iter().collect();
                let got = dm::receive(&bob.identity, &refs, &pfs).unwrap();
                assert_eq!(
                    (got.content.as_slice(), got.pfs, got.sender),
                    (content.as_slice(), true, alice.identity.session_id())
                );
                let got = dm::receive(&bob.identity, &refs, &fallback).unwrap();
                assert_eq!(
                    (got.content.as_slice(), got.pfs),
                    (content.as_slice(), false)
                );
            }
        }
        // The group message has ⌈n/4⌉·4 slots and the removed device is announced.
        let entries = bencode::decode_dict_entries(&group_msg, bencode::Limits::DEFAULT).unwrap();
        let c = entries.iter().find(|e| e.key == b"C").unwrap();
        assert_eq!(c.value.as_bytes().unwrap().len(), 1088 * n.div_ceil(4) * 4);
        assert!(is_kicked(&group_msg, &bob.identity, &[0xee; 32]).unwrap());
        assert!(!is_kicked(&group_msg, &bob.identity, &bob.device_id(0)).unwrap());
        // Another account's device cannot read it; the wrong account key cannot verify it.
        assert_eq!(
            decrypt_group(
                &group_msg,
                bob.identity.ed25519_public(),
                &alice_devs[0].keys
            )
            .unwrap_err(),
            DeviceGroupError::NotARecipient
        );
        assert_eq!(
            decrypt_group(
                &group_msg,
                alice.identity.ed25519_public(),
                &bob_devs[0].keys
            )
            .unwrap_err(),
            DeviceGroupError::BadSignature
        );
    }
}

#[test]
fn dm_receive_tries_every_hint_match_and_then_the_fallback() {
    let mut rng = ChaCha20Rng::from_seed([0xb0; 32]);
    let alice = Identity::from_seed_bytes(&[1u8; 16]).unwrap();
    let bob = Identity::from_seed_bytes(&[2u8; 16]).unwrap();
    let current = account_key_pair(&AccountKeySeed::from_bytes([3; 32]));
    let retained = account_key_pair(&AccountKeySeed::from_bytes([4; 32]));
    // A message to the retained key is found among current + retained keys.
    let msg = dm::encrypt_pfs(
        &mut rng,
        &alice,
        &bob.session_id(),
        &retained.public_keys(),
        b"old key",
        None,
    )
    .unwrap();
    assert_eq!(
        dm::receive(&bob, &[&current, &retained], &msg)
            .unwrap()
            .content
            .as_slice(),
        b"old key"
    );
    assert_eq!(
        dm::key_indicator(&bob, &msg).unwrap(),
        retained.mlkem_public().as_bytes()[..2]
    );
    // Retention over: the key is gone.
    assert_eq!(
        dm::receive(&bob, &[&current], &msg).unwrap_err(),
        dm::DmError::NoPfsKey
    );
    // A fallback message whose indicator collides with a real key still opens
    // (the PFS trial fails, then the fallback succeeds).
    let mut fb =
        dm::encrypt_non_pfs(&mut rng, &alice, &bob.session_id(), b"collide", None).unwrap();
    let ki = dm::key_indicator(&bob, &fb).unwrap();
    let target = &current.mlkem_public().as_bytes()[..2];
    fb[2] ^= ki[0] ^ target[0];
    fb[3] ^= ki[1] ^ target[1];
    assert_eq!(dm::key_indicator(&bob, &fb).unwrap(), target);
    let got = dm::receive(&bob, &[&current], &fb).unwrap();
    assert_eq!((got.content.as_slice(), got.pfs), (&b"collide"[..], false));
    // Two account keys whose ML-KEM keys share the 2-byte prefix (found by
    // search): the first candidate fails, the second opens the message.
    let mut collider_seed = [0u8; 32];
    collider_seed[..5].copy_from_slice(&[0x12, 0x14, 0x00, 0x00, 0xc0]);
    let collider = account_key_pair(&AccountKeySeed::from_bytes(collider_seed));
    assert_eq!(
        collider.mlkem_public().as_bytes()[..2],
        current.mlkem_public().as_bytes()[..2]
    );
    assert_ne!(collider.mlkem_public(), current.mlkem_public());
    let msg = dm::encrypt_pfs(
        &mut rng,
        &alice,
        &bob.session_id(),
        &current.public_keys(),
        b"dup",
        None,
    )
    .unwrap();
    assert_eq!(
        dm::receive(&bob, &[&collider, &current], &msg)
            .unwrap()
            .content
            .as_slice(),
        b"dup"
    );
    assert_eq!(
        dm::receive(&bob, &[&current, &collider], &msg)
            .unwrap()
            .content
            .as_slice(),
        b"dup"
    );
    // Only the colliding key: it matched the hint but failed, as did the fallback.
    assert_eq!(
        dm::receive(&bob, &[&collider], &msg).unwrap_err(),
        dm::DmError::DecryptFailed
    );
    // Direct single-key decryption with the wrong key is a decrypt failure.
    assert_eq!(
        dm::decrypt_pfs(&bob, &retained, &msg).unwrap_err(),
        dm::DmError::DecryptFailed
    );
}

#[test]
fn dm_errors_are_distinct() {
    use dm::{DmError, FormatError};
    let mut rng = ChaCha20Rng::from_seed([0xc0; 32]);
    let alice = Identity::from_seed_bytes(&[1u8; 16]).unwrap();
    let bob = Identity::from_seed_bytes(&[2u8; 16]).unwrap();
    let keys = account_key_pair(&AccountKeySeed::from_bytes([3; 32]));
    let msg = dm::encrypt_pfs(
        &mut rng,
        &alice,
        &bob.session_id(),
        &keys.public_keys(),
        b"x",
        None,
    )
    .unwrap();
    let recv = |m: &[u8]| dm::receive(&bob, &[&keys], m).unwrap_err();
    assert_eq!(recv(&[]), DmError::BadFormat(FormatError::Empty));
    assert_eq!(
        recv(&[0]),
        DmError::BadFormat(FormatError::TooShort { len: 1 })
    );
    assert_eq!(recv(&[0, 3, 1, 2]), DmError::UnknownVersion { version: 3 });
    assert_eq!(recv(&[0, 1]), DmError::UnknownVersion { version: 1 });
    assert_eq!(recv(&[8, 2, 3]), DmError::NotV2);
    assert_eq!(
        recv(&msg[..1000]),
        DmError::BadFormat(FormatError::TooShort { len: 1000 })
    );
    let mut m = msg.clone();
    m[4..36].copy_from_slice(&[0; 32]);
    assert_eq!(recv(&m), DmError::BadFormat(FormatError::LowOrderEphemeral));
    let mut m = msg.clone();
    m[500] ^= 1; // ML-KEM ciphertext: implicit rejection → AEAD fails
    assert_eq!(recv(&m), DmError::DecryptFailed);
    let mut m = msg.clone();
    let l = m.len();
    m[l - 1] ^= 1; // Poly1305 tag
    assert_eq!(recv(&m), DmError::DecryptFailed);
    // A fallback message for someone else: no key, and the fallback fails.
    let carol = Identity::from_seed_bytes(&[5u8; 16]).unwrap();
    let fb = dm::encrypt_non_pfs(&mut rng, &alice, &carol.session_id(), b"x", None).unwrap();
    assert_eq!(recv(&fb), DmError::NoPfsKey);
    assert!(dm::receive(&carol, &[], &fb).is_ok());
    // Sending errors.
    let huge = vec![0u8; 80_000];
    assert!(matches!(
        dm::encrypt_pfs(
            &mut rng,
            &alice,
            &bob.session_id(),
            &keys.public_keys(),
            &huge,
            None
        ),
        Err(DmError::ContentTooLarge { .. })
    ));
    let low = SessionId::from_bytes(&[[5u8].as_slice(), &[0u8; 32]].concat()).unwrap();
    assert_eq!(
        dm::encrypt_non_pfs(&mut rng, &alice, &low, b"x", None).unwrap_err(),
        DmError::InvalidRecipientKey
    );
    // Every display message is non-empty and distinct.
    let all = [
        DmError::NotV2,
        DmError::UnknownVersion { version: 3 },
        DmError::BadFormat(FormatError::Empty),
        DmError::DecryptFailed,
        DmError::NoPfsKey,
        DmError::BadSignature,
        DmError::ContentTooLarge { len: 1 },
        DmError::InvalidRecipientKey,
    ];
    let texts: std::collections::BTreeSet<String> = all.iter().map(|e| e.to_string()).collect();
    assert_eq!(texts.len(), all.len());
}

#[test]
fn dm_bad_signature_is_detected() {
    // Encrypted to Bob's account keys, but the inner signature is keyed with
    // Carol's Session ID (as if replayed from a message to Carol): it opens,
    // and the signature check rejects it.
    let mut rng = ChaCha20Rng::from_seed([0xd0; 32]);
    let alice = Identity::from_seed_bytes(&[1u8; 16]).unwrap();
    let bob = Identity::from_seed_bytes(&[2u8; 16]).unwrap();
    let carol = Identity::from_seed_bytes(&[3u8; 16]).unwrap();
    let keys = account_key_pair(&AccountKeySeed::from_bytes([4; 32]));
    let mut msg = dm::encrypt_pfs(
        &mut rng,
        &alice,
        &carol.session_id(),
        &keys.public_keys(),
        b"x",
        None,
    )
    .unwrap();
    assert_eq!(
        dm::decrypt_pfs(&bob, &keys, &msg).unwrap_err(),
        dm::DmError::BadSignature
    );
    // Through `receive`, once the indicator points at the key: the error is final.
    let ki = dm::key_indicator(&bob, &msg).unwrap();
    let target = &keys.mlkem_public().as_bytes()[..2];
    msg[2] ^= ki[0] ^ target[0];
    msg[3] ^= ki[1] ^ target[1];
    assert_eq!(
        dm::receive(&bob, &[&keys], &msg).unwrap_err(),
        dm::DmError::BadSignature
    );
    // A Pro signature is carried through.
    let msg =
        dm::encrypt_non_pfs(&mut rng, &alice, &bob.session_id(), b"signed", Some(&carol)).unwrap();
    let got = dm::receive(&bob, &[], &msg).unwrap();
    assert!(got.pro_signature.is_some());
    assert_eq!(got.sender_ed25519, *alice.ed25519_public());
}

#[test]
fn device_group_errors_are_distinct() {
    use session_ratchet::session_v2::device_group::FormatError;
    let mut rng = ChaCha20Rng::from_seed([0xe0; 32]);
    let acct = Account::new(0x70, 3);
    let payload = acct.payload();
    let msg = encrypt_group(&mut rng, &acct.identity, &payload).unwrap();
    let dev = device_key_pair(&DeviceKeySeed::from_bytes(acct.device_seeds[1]));
    let pk = acct.identity.ed25519_public();
    let dec = |m: &[u8]| decrypt_group(m, pk, &dev).unwrap_err();
    assert!(matches!(
        dec(&[]),
        DeviceGroupError::BadFormat(FormatError::Bencode(_))
    ));
    assert!(matches!(
        dec(b"de"),
        DeviceGroupError::BadFormat(FormatError::MissingField(""))
    ));
    let mut m = msg.clone();
    m[5] = b'L';
    assert_eq!(
        dec(&m),
        DeviceGroupError::BadFormat(FormatError::WrongMessageType)
    );
    // Flip a byte of the encrypted payload: the signature catches it first.
    let mut m = msg.clone();
    let l = m.len();
    m[l - 200] ^= 1;
    assert_eq!(dec(&m), DeviceGroupError::BadSignature);
    assert!(matches!(
        dec(&vec![b'x'; 80_000]),
        DeviceGroupError::BadFormat(FormatError::TooLarge { .. })
    ));
    // Empty group.
    let mut empty = GroupPayload::default();
    assert_eq!(
        encrypt_group(&mut rng, &acct.identity, &empty).unwrap_err(),
        DeviceGroupError::NoRecipients
    );
    empty
        .devices
        .insert([1; 32], DeviceEntry::Removed { removed_at: 5 });
    assert_eq!(
        encrypt_group(&mut rng, &acct.identity, &empty).unwrap_err(),
        DeviceGroupError::NoRecipients
    );
    // Payload errors.
    assert_eq!(
        GroupPayload::decode(b"de"),
        Err(FormatError::MissingField("D"))
    );
    assert_eq!(
        GroupPayload::decode(b"d1:Dd3:abci5eee"),
        Err(FormatError::BadDeviceId)
    );
    let mut zero = b"d1:Dd32:".to_vec();
    zero.extend_from_slice(&[1; 32]);
    zero.extend_from_slice(b"i0eee");
    assert_eq!(GroupPayload::decode(&zero), Err(FormatError::BadTombstone));
}

#[test]
fn device_records_merge_by_the_rules() {
    let keys = device_key_pair(&DeviceKeySeed::from_bytes([9; 32]));
    let rec = |seq: i64, desc: &str| {
        let mut r = DeviceRecord::new(seq, 100 + seq, &keys);
        r.set_description(desc);
        r.extra.insert(
            b"zz-unknown".to_vec(),
            bencode::Value::Bytes(b"keep me".to_vec()),
        );
        DeviceEntry::Active(Box::new(r))
    };
    let (a, b, c) = ([1u8; 32], [2u8; 32], [3u8; 32]);
    let mut local = BTreeMap::new();
    local.insert(a, rec(5, "a5"));
    local.insert(b, rec(1, "b1"));
    let mut incoming = BTreeMap::new();
    incoming.insert(a, rec(5, "a5-replayed")); // same seq: ignored
    incoming.insert(b, rec(2, "b2")); // newer: accepted
    incoming.insert(c, DeviceEntry::Removed { removed_at: 50 }); // unknown device removed: recorded
    let out = merge_devices(&mut local, &incoming);
    assert_eq!(
        (out.ignored, out.updated, out.removed, out.added),
        (vec![a], vec![b], vec![c], vec![])
    );
    let DeviceEntry::Active(rb) = &local[&b] else {
        panic!()
    };
    assert_eq!(rb.description, b"b2");
    assert_eq!(
        rb.extra[&b"zz-unknown"[..]],
        bencode::Value::Bytes(b"keep me".to_vec())
    );
    // Tombstones are permanent: a later record for c is ignored.
    let mut again = BTreeMap::new();
    again.insert(c, rec(99, "c99"));
    again.insert(a, DeviceEntry::Removed { removed_at: 60 });
    let out = merge_devices(&mut local, &again);
    assert_eq!((out.ignored, out.removed), (vec![c], vec![a]));
    assert_eq!(local[&a], DeviceEntry::Removed { removed_at: 60 });
    // An older removal time does not replace a later one; absent devices are unchanged.
    let mut older = BTreeMap::new();
    older.insert(a, DeviceEntry::Removed { removed_at: 10 });
    let before = local.clone();
    let out = merge_devices(&mut local, &older);
    assert_eq!(out.ignored, vec![a]);
    assert_eq!(local, before);
    // Unknown fields survive an encode/decode round trip of the payload.
    let p = GroupPayload {
        devices: local,
        account_keys: vec![],
    };
    assert_eq!(GroupPayload::decode(&p.encode()).unwrap(), p);
}

#[test]
fn account_record_and_key_errors() {
    use session_ratchet::session_v2::account_keys::RecordError;
    let mut rng = ChaCha20Rng::from_seed([0xf0; 32]);
    let me = Identity::from_seed_bytes(&[1u8; 16]).unwrap();
    let keys = account_key_pair(&AccountKeySeed::from_bytes([3; 32])).public_keys();
    let rec = encode_record(&mut rng, &me, &keys);
    let sid = me.session_id();
    assert_eq!(
        verify_record(&sid, &vec![b'x'; 5000]).unwrap_err(),
        RecordError::TooLarge { len: 5000 }
    );
    assert!(matches!(
        verify_record(&sid, b"i1e").unwrap_err(),
        RecordError::Bencode(_)
    ));
    assert_eq!(
        verify_record(&sid, b"d1:X32:00000000000000000000000000000000e").unwrap_err(),
        RecordError::MissingField("M")
    );
    let mut bad_m = b"d1:M1:x1:X32:".to_vec();
    bad_m.extend_from_slice(&[0; 32]);
    bad_m.extend_from_slice(b"1:~64:");
    bad_m.extend_from_slice(&[0; 64]);
    bad_m.push(b'e');
    assert_eq!(
        verify_record(&sid, &bad_m).unwrap_err(),
        RecordError::BadField("M")
    );
    let mut t = rec.clone();
    t[rec.len() - 5] ^= 1;
    assert_eq!(
        verify_record(&sid, &t).unwrap_err(),
        RecordError::BadSignature
    );
    // An ML-KEM key failing the FIPS 203 check, correctly signed: rejected as such.
    let mut d = b"d1:M1184:".to_vec();
    d.extend_from_slice(&[0xff; 1184]);
    d.extend_from_slice(b"1:X32:");
    d.extend_from_slice(&[9; 32]);
    let sig = xeddsa::sign(&mut rng, &me, &d);
    d.extend_from_slice(b"1:~64:");
    d.extend_from_slice(&sig);
    d.push(b'e');
    assert_eq!(
        verify_record(&sid, &d).unwrap_err(),
        RecordError::InvalidMlKemKey
    );
}

#[test]
fn link_request_round_trip_and_errors() {
    use session_ratchet::session_v2::link::LinkError;
    let account = Identity::from_seed_bytes(&[1u8; 16]).unwrap();
    let other = Identity::from_seed_bytes(&[2u8; 16]).unwrap();
    let keys = device_key_pair(&DeviceKeySeed::from_bytes([2; 32]));
    let mut r = DeviceRecord::new(1, 1_700_000_000, &keys);
    r.set_description("tablet");
    let plain = link::encode_link_request(&[4; 32], &r);
    let msg = link::encrypt_link_request(&account, &plain);
    let req = link::decrypt_link_request(&account, &msg).unwrap();
    assert_eq!(req.record, r);
    assert_eq!(
        link::decrypt_link_request(&other, &msg).unwrap_err(),
        LinkError::DecryptFailed
    );
    assert!(matches!(
        link::decrypt_link_request(&account, b"i1e").unwrap_err(),
        LinkError::BadFormat(_)
    ));
    // Both devices compute the same SAS over the same plaintext; a changed request changes it.
    let sas = link::sas(&req.plaintext).unwrap();
    assert_eq!(sas, link::sas(&plain).unwrap());
    assert_eq!(sas.short().unwrap().len(), 7);
    let mut r2 = r.clone();
    r2.seq = 2;
    assert_ne!(
        link::sas(&link::encode_link_request(&[4; 32], &r2)).unwrap(),
        sas
    );
}

/// Replays a `ratchet-upgrade` vector: Alice's messages are reproduced from
/// the RNG seed, Bob derives the published values and decrypts everything,
/// Alice decrypts Bob's reply.
fn check_upgrade_vector(v: &Value) {
    let name = v["name"].as_str().unwrap();
    let alice = identity(&v["sender_seed"]);
    let bob = identity(&v["recipient_seed"]);
    let ad = hx(&v["associated_data"]);
    let held_keys: Vec<KeyPair> = v["account_seeds_held"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| account_key_pair(&AccountKeySeed::from_bytes(arr32(s))))
        .collect();
    let held: Vec<&KeyPair> = held_keys.iter().collect();
    let msgs = v["messages"].as_array().unwrap();
    let mut rng = ChaCha20Rng::from_seed(arr32(&v["rng_seed"]));
    let mut a: Option<UpgradeSession> = None;
    for m in msgs {
        let keys = account_key_pair(&AccountKeySeed::from_bytes(arr32(&m["account_seed"])));
        let pt = hx(&m["plaintext"]);
        let out = match &mut a {
            None => {
                let (s, out) = UpgradeSession::initiate(
                    &mut rng,
                    &alice,
                    &bob.session_id(),
                    &keys.public_keys(),
                    &pt,
                    &ad,
                )
                .unwrap();
                a = Some(s);
                out
            }
            Some(s) => s
                .encrypt_offer(&mut rng, &alice, &keys.public_keys(), &pt, &ad)
                .unwrap(),
        };
        assert_eq!(out, hx(&m["message"]), "{name}: message reproduced");
    }
    let Incoming::Offer(offer) = upgrade::receive(&bob, &held, &hx(&msgs[0]["message"])).unwrap()
    else {
        panic!("{name}: not an offer")
    };
    assert_eq!(offer.transcript_hash().to_vec(), hx(&v["transcript_hash"]));
    assert_eq!(offer.upgrade_id().to_vec(), hx(&v["upgrade_id"]));
    let seed = offer.hazmat_seed();
    assert_eq!(seed.root_key().hazmat_bytes().to_vec(), hx(&v["root_key"]));
    assert_eq!(
        seed.responder_header_key().hazmat_bytes().to_vec(),
        hx(&v["responder_header_key"])
    );
    let mut b = None;
    for m in msgs {
        let got = vectors::bob_receive(&bob, &held, &hx(&m["message"]), &ad, &mut b).unwrap();
        assert_eq!(got, hx(&m["plaintext"]), "{name}");
    }
    let b = b.unwrap();
    assert_eq!(
        b.session().remote_identity().to_bytes().to_vec(),
        hx(&v["initiator_identity"])
    );
    let mut a = a.unwrap();
    assert_eq!(
        a.decrypt(&hx(&v["reply"]), &ad).unwrap(),
        hx(&v["reply_plaintext"])
    );
    assert!(!a.is_offering());
}

struct UpgradePair {
    alice: Identity,
    bob: Identity,
    k1: KeyPair,
    k2: KeyPair,
}

fn upgrade_pair() -> UpgradePair {
    UpgradePair {
        alice: Identity::from_seed_bytes(&[0x71; 16]).unwrap(),
        bob: Identity::from_seed_bytes(&[0x72; 16]).unwrap(),
        k1: account_key_pair(&AccountKeySeed::from_bytes([0x73; 32])),
        k2: account_key_pair(&AccountKeySeed::from_bytes([0x74; 32])),
    }
}

/// Alice starts an upgrade to Bob's first account key, with no associated data.
fn start_upgrade(
    p: &UpgradePair,
    rng: &mut ChaCha20Rng,
    first: &[u8],
) -> (UpgradeSession, Vec<u8>) {
    UpgradeSession::initiate(
        rng,
        &p.alice,
        &p.bob.session_id(),
        &p.k1.public_keys(),
        first,
        b"",
    )
    .unwrap()
}

fn offer_of(p: &UpgradePair, keys: &[&KeyPair], msg: &[u8]) -> Box<upgrade::ReceivedOffer> {
    match upgrade::receive(&p.bob, keys, msg).unwrap() {
        Incoming::Offer(o) => o,
        Incoming::Dm(_) => panic!("not an offer"),
    }
}

fn stored(s: &UpgradeSession) -> Vec<u8> {
    s.to_stored().as_bytes().to_vec()
}

#[test]
fn upgrade_round_trip_between_two_accounts() {
    let p = upgrade_pair();
    let mut rng = ChaCha20Rng::from_seed([0x70; 32]);
    let bob_sid = p.bob.session_id();
    let (mut a, first) = UpgradeSession::initiate(
        &mut rng,
        &p.alice,
        &bob_sid,
        &p.k1.public_keys(),
        b"hello",
        b"ad",
    )
    .unwrap();
    assert!(a.is_offering());
    assert_eq!(a.offers_sent(), 1);
    assert_eq!(first.len() % 256, 0);
    assert_eq!(&first[..2], &dm::V2_PREFIX);
    // The encrypt path is refused while offering.
    assert_eq!(
        a.encrypt(&mut rng, b"x", b"ad").unwrap_err(),
        UpgradeError::OfferPending
    );
    let offer = offer_of(&p, &[&p.k1], &first);
    assert_eq!(offer.sender(), &p.alice.session_id());
    assert_eq!(offer.upgrade_id(), a.upgrade_id());
    assert_eq!(offer.sender_ed25519(), p.alice.ed25519_public());
    let (mut b, text) = offer.accept(b"ad").unwrap();
    assert_eq!(text, b"hello");
    // Identities: each account's Ed25519 key and Session-ID X25519 key.
    let bs = b.session();
    assert_eq!(bs.remote_identity(), a.session().local_identity());
    assert_eq!(bs.local_identity(), a.session().remote_identity());
    assert_eq!(
        bs.remote_identity().signing_key().to_bytes(),
        *p.alice.ed25519_public()
    );
    assert_eq!(
        bs.remote_identity().dh_key(),
        &p.alice.session_id().x25519()
    );
    assert_eq!(
        Some(bs.local_identity().signing_key().to_bytes()),
        xeddsa::positive_ed25519_from_x25519(&bob_sid.x25519())
    );
    assert_eq!(bs.transcript_hash(), a.session().transcript_hash());
    assert_eq!(
        b.encrypt_offer(&mut rng, &p.bob, &p.k1.public_keys(), b"x", b"ad")
            .unwrap_err(),
        UpgradeError::NotOffering
    );
    for i in 0..6u8 {
        let r = b.encrypt(&mut rng, &[i; 40], b"ad").unwrap();
        assert_eq!(&r[..2], &[0x01, 0x04]);
        assert_eq!(a.decrypt(&r, b"ad").unwrap(), vec![i; 40]);
        assert!(!a.is_offering());
        assert_eq!(
            send_path(PeerCapability::Unknown, Some(&a)),
            SendPath::Ratchet
        );
        let m = a.encrypt(&mut rng, &[i; 20], b"ad").unwrap();
        assert_eq!(b.decrypt(&m, b"ad").unwrap(), vec![i; 20]);
    }
    // Plain v2 messages keep working next to the ratchet.
    let plain = dm::encrypt_pfs(
        &mut rng,
        &p.alice,
        &bob_sid,
        &p.k1.public_keys(),
        b"v2",
        None,
    )
    .unwrap();
    match upgrade::receive(&p.bob, &[&p.k1], &plain).unwrap() {
        Incoming::Dm(d) => assert_eq!(d.content.as_slice(), b"v2"),
        Incoming::Offer(_) => panic!("plain DM taken for an offer"),
    }
    // Stored forms round-trip.
    for s in [&a, &b] {
        let back = UpgradeSession::from_stored(&s.to_stored()).unwrap();
        assert_eq!(stored(&back), stored(s));
    }
}

#[test]
fn upgrade_repeats_before_the_first_reply_are_recognised() {
    let p = upgrade_pair();
    let mut rng = ChaCha20Rng::from_seed([0x75; 32]);
    let bob_sid = p.bob.session_id();
    let (mut a, m1) =
        UpgradeSession::initiate(&mut rng, &p.alice, &bob_sid, &p.k1.public_keys(), b"1", b"")
            .unwrap();
    let m2 = a
        .encrypt_offer(&mut rng, &p.alice, &p.k1.public_keys(), b"2", b"")
        .unwrap();
    let m3 = a
        .encrypt_offer(&mut rng, &p.alice, &p.k1.public_keys(), b"3", b"")
        .unwrap();
    assert_eq!(a.offers_sent(), 3);
    // Stored while offering, reloaded, still offering with the same material.
    let mut a = UpgradeSession::from_stored(&a.to_stored()).unwrap();
    let m4 = a
        .encrypt_offer(&mut rng, &p.alice, &p.k1.public_keys(), b"4", b"")
        .unwrap();
    let (mut b, t1) = offer_of(&p, &[&p.k1], &m1).accept(b"").unwrap();
    assert_eq!(t1, b"1");
    for (m, t) in [(&m2, b"2"), (&m3, b"3"), (&m4, b"4")] {
        let o = offer_of(&p, &[&p.k1], m);
        assert_eq!(o.upgrade_id(), b.upgrade_id(), "same upgrade");
        assert_eq!(b.decrypt_offer(&o, b"").unwrap(), t);
    }
    // A replayed offer is a duplicate and changes nothing.
    let before = stored(&b);
    let o = offer_of(&p, &[&p.k1], &m2);
    assert_eq!(
        b.decrypt_offer(&o, b"").unwrap_err(),
        UpgradeError::Ratchet(session_ratchet::ratchet::RatchetError::DuplicateMessage)
    );
    assert_eq!(stored(&b), before);
    let r = b.encrypt(&mut rng, b"reply", b"").unwrap();
    assert_eq!(a.decrypt(&r, b"").unwrap(), b"reply");
    assert_eq!(a.offers_sent(), 0);
}

#[test]
fn upgrade_offers_lost_and_reordered() {
    let p = upgrade_pair();
    let mut rng = ChaCha20Rng::from_seed([0x76; 32]);
    let (mut a, m1) = start_upgrade(&p, &mut rng, b"1");
    let m2 = a
        .encrypt_offer(&mut rng, &p.alice, &p.k1.public_keys(), b"2", b"")
        .unwrap();
    let m3 = a
        .encrypt_offer(&mut rng, &p.alice, &p.k1.public_keys(), b"3", b"")
        .unwrap();
    let _lost = a
        .encrypt_offer(&mut rng, &p.alice, &p.k1.public_keys(), b"4", b"")
        .unwrap();
    let m5 = a
        .encrypt_offer(&mut rng, &p.alice, &p.k1.public_keys(), b"5", b"")
        .unwrap();
    // Bob first sees offer 3: it creates the session.
    let (mut b, t) = offer_of(&p, &[&p.k1], &m3).accept(b"").unwrap();
    assert_eq!(t, b"3");
    // Then 1 (late), 5 (skipping the lost 4), 2 (late).
    for (m, t) in [(&m1, b"1"), (&m5, b"5"), (&m2, b"2")] {
        assert_eq!(b.decrypt_offer(&offer_of(&p, &[&p.k1], m), b"").unwrap(), t);
    }
    let r = b.encrypt(&mut rng, b"r", b"").unwrap();
    assert_eq!(a.decrypt(&r, b"").unwrap(), b"r");
}

#[test]
fn upgrade_survives_bob_key_rotation_with_retained_keys() {
    let p = upgrade_pair();
    let mut rng = ChaCha20Rng::from_seed([0x77; 32]);
    let (mut a, m1) = start_upgrade(&p, &mut rng, b"to k1");
    // Bob rotates to k2 (keeping k1); Alice fetches the new record.
    let m2 = a
        .encrypt_offer(&mut rng, &p.alice, &p.k2.public_keys(), b"to k2", b"")
        .unwrap();
    let held = [&p.k2, &p.k1];
    // The second offer arrives first: the anchor key k1 is retained.
    let (mut b, t) = offer_of(&p, &held, &m2).accept(b"").unwrap();
    assert_eq!(t, b"to k2");
    assert_eq!(
        b.decrypt_offer(&offer_of(&p, &held, &m1), b"").unwrap(),
        b"to k1"
    );
    // Once k1 is dropped (after the retention), offers anchored to it fail.
    let err = upgrade::receive(&p.bob, &[&p.k2], &m2).unwrap_err();
    assert_eq!(err, UpgradeError::UnknownAnchorKey);
    let r = b.encrypt(&mut rng, b"r", b"").unwrap();
    assert_eq!(a.decrypt(&r, b"").unwrap(), b"r");
}

#[test]
fn upgrade_failures_change_nothing_and_forgeries_are_rejected() {
    use session_ratchet::ratchet::RatchetError;
    let p = upgrade_pair();
    let mut rng = ChaCha20Rng::from_seed([0x78; 32]);
    let bob_sid = p.bob.session_id();
    let (mut a, m1) = UpgradeSession::initiate(
        &mut rng,
        &p.alice,
        &bob_sid,
        &p.k1.public_keys(),
        b"1",
        b"ad",
    )
    .unwrap();
    let m2 = a
        .encrypt_offer(&mut rng, &p.alice, &p.k1.public_keys(), b"2", b"ad")
        .unwrap();
    let (mut b, _) = offer_of(&p, &[&p.k1], &m1).accept(b"ad").unwrap();
    let (a0, b0) = (stored(&a), stored(&b));

    // Tampered v2 message: the transport rejects it.
    let mut t = m2.clone();
    let l = t.len();
    t[l - 1] ^= 0x80;
    assert_eq!(
        upgrade::receive(&p.bob, &[&p.k1], &t).unwrap_err(),
        UpgradeError::Dm(dm::DmError::DecryptFailed)
    );
    // Wrong associated data: the repeat does not decrypt, nothing changes.
    let o2 = offer_of(&p, &[&p.k1], &m2);
    assert_eq!(
        b.decrypt_offer(&o2, b"other").unwrap_err(),
        UpgradeError::Ratchet(RatchetError::AuthenticationFailed)
    );
    assert_eq!(
        offer_of(&p, &[&p.k1], &m1).accept(b"other").unwrap_err(),
        UpgradeError::Ratchet(RatchetError::AuthenticationFailed)
    );
    // An offer of another upgrade (Alice started over) is not a repeat.
    let (_, other) = UpgradeSession::initiate(
        &mut rng,
        &p.alice,
        &bob_sid,
        &p.k1.public_keys(),
        b"x",
        b"ad",
    )
    .unwrap();
    let other = offer_of(&p, &[&p.k1], &other);
    assert_ne!(other.upgrade_id(), b.upgrade_id());
    assert_eq!(
        b.decrypt_offer(&other, b"ad").unwrap_err(),
        UpgradeError::OfferMismatch
    );
    // Alice cannot feed offers to herself; she only reads ratchet messages.
    assert_eq!(
        a.decrypt_offer(&o2, b"ad").unwrap_err(),
        UpgradeError::OfferMismatch
    );
    assert_eq!(
        a.decrypt(&m2, b"ad").unwrap_err(),
        UpgradeError::Ratchet(RatchetError::HandshakeMismatch)
    );
    // A forged ratchet message (random bytes with the right type).
    let mut forged = vec![0x01, 0x04];
    forged.extend_from_slice(&[0x5a; 200]);
    assert_eq!(
        a.decrypt(&forged, b"ad").unwrap_err(),
        UpgradeError::Ratchet(RatchetError::UndecryptableHeader)
    );
    assert_eq!(
        b.decrypt(&forged, b"ad").unwrap_err(),
        UpgradeError::Ratchet(RatchetError::UndecryptableHeader)
    );
    // Carol re-sends Alice's content under her own name: it is Carol's offer,
    // for another transcript; it never touches Alice's session with Bob.
    let carol = Identity::from_seed_bytes(&[0x79; 16]).unwrap();
    let alice_content = dm::receive(&p.bob, &[&p.k1], &m2).unwrap().content;
    let replay = dm::encrypt_pfs(
        &mut rng,
        &carol,
        &bob_sid,
        &p.k1.public_keys(),
        &alice_content,
        None,
    )
    .unwrap();
    let co = offer_of(&p, &[&p.k1], &replay);
    assert_eq!(co.sender(), &carol.session_id());
    assert_eq!(
        b.decrypt_offer(&co, b"ad").unwrap_err(),
        UpgradeError::OfferMismatch
    );
    assert_eq!(
        co.accept(b"ad").unwrap_err(),
        UpgradeError::Ratchet(RatchetError::UndecryptableHeader)
    );
    // Offers that do not use PFS, are malformed, or of an unknown version.
    let mut content = upgrade::OFFER_MAGIC.to_vec();
    content.push(upgrade::OFFER_VERSION);
    content.extend_from_slice(&alice_content[6..]);
    let non_pfs = dm::encrypt_non_pfs(&mut rng, &p.alice, &bob_sid, &content, None).unwrap();
    assert_eq!(
        upgrade::receive(&p.bob, &[&p.k1], &non_pfs).unwrap_err(),
        UpgradeError::OfferWithoutPfs
    );
    for (c, e) in [
        (vectors::raw_offer(1, 100), UpgradeError::MalformedOffer),
        (
            vectors::raw_offer(1, 128 + 107),
            UpgradeError::MalformedOffer,
        ),
        (
            vectors::raw_offer(9, 400),
            UpgradeError::UnsupportedOfferVersion { version: 9 },
        ),
    ] {
        let m =
            dm::encrypt_pfs(&mut rng, &p.alice, &bob_sid, &p.k1.public_keys(), &c, None).unwrap();
        assert_eq!(upgrade::receive(&p.bob, &[&p.k1], &m).unwrap_err(), e);
    }
    // Sender-side refusals change nothing either.
    assert_eq!(
        UpgradeSession::initiate(
            &mut rng,
            &p.alice,
            &p.alice.session_id(),
            &p.k1.public_keys(),
            b"x",
            b""
        )
        .unwrap_err(),
        UpgradeError::SelfUpgrade
    );
    assert_eq!(
        a.encrypt_offer(
            &mut rng,
            &p.alice,
            &p.k1.public_keys(),
            &vec![0; 76_000],
            b"ad"
        )
        .unwrap_err(),
        UpgradeError::PlaintextTooLong
    );
    assert_eq!(
        a.encrypt_offer(&mut rng, &p.bob, &p.k1.public_keys(), b"x", b"ad")
            .unwrap_err(),
        UpgradeError::WrongIdentity
    );
    let mut low = p.k1.public_keys();
    low.x25519 = session_ratchet::dh::X25519PublicKey::from_bytes([0; 32]);
    assert_eq!(
        a.encrypt_offer(&mut rng, &p.alice, &low, b"x", b"ad")
            .unwrap_err(),
        UpgradeError::Dm(dm::DmError::InvalidRecipientKey)
    );
    assert_eq!(
        (stored(&a), stored(&b)),
        (a0, b0),
        "no failure changed a session"
    );
    // Both still work afterwards.
    assert_eq!(b.decrypt_offer(&o2, b"ad").unwrap(), b"2");
    // Corrupted stored forms are refused.
    let mut s = stored(&a);
    s[2 + 33 + 32] = 7; // the offer flag
    assert_eq!(
        UpgradeSession::from_stored(&StoredUpgradeSession::from_bytes(&s)).unwrap_err(),
        UpgradeError::Storage(session_ratchet::ratchet::StorageError::Corrupted)
    );
    let mut s = stored(&a);
    s[0] = 2;
    assert!(matches!(
        UpgradeSession::from_stored(&StoredUpgradeSession::from_bytes(&s)).unwrap_err(),
        UpgradeError::Storage(session_ratchet::ratchet::StorageError::UnsupportedVersion(
            2
        ))
    ));
}

#[test]
fn upgrade_fallback_decision() {
    let p = upgrade_pair();
    let mut rng = ChaCha20Rng::from_seed([0x7a; 32]);
    use PeerCapability::*;
    assert_eq!(send_path(Unknown, None), SendPath::V2);
    assert_eq!(send_path(V2Only, None), SendPath::V2);
    assert_eq!(send_path(Upgraded, None), SendPath::StartUpgrade);
    let (mut a, m1) = start_upgrade(&p, &mut rng, b"1");
    assert_eq!(send_path(Upgraded, Some(&a)), SendPath::Offer);
    assert_eq!(send_path(Unknown, Some(&a)), SendPath::Offer);
    assert_eq!(send_path(V2Only, Some(&a)), SendPath::V2);
    while a.offers_sent() < MAX_UNANSWERED_OFFERS {
        assert_eq!(send_path(Upgraded, Some(&a)), SendPath::Offer);
        a.encrypt_offer(&mut rng, &p.alice, &p.k1.public_keys(), b"n", b"")
            .unwrap();
    }
    // No reply after 16 offers: back to plain v2, session kept.
    assert_eq!(send_path(Upgraded, Some(&a)), SendPath::V2);
    // A late reply still moves the conversation to the ratchet.
    let (mut b, _) = offer_of(&p, &[&p.k1], &m1).accept(b"").unwrap();
    let r = b.encrypt(&mut rng, b"late", b"").unwrap();
    assert_eq!(a.decrypt(&r, b"").unwrap(), b"late");
    assert_eq!(send_path(V2Only, Some(&a)), SendPath::Ratchet);
    assert_eq!(send_path(Unknown, Some(&b)), SendPath::Ratchet);
}
