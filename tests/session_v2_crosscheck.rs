//! Byte-for-byte cross-check of the Session v2 formats against an independent
//! reference (`tests/vectors/session_v2_crosscheck.py`: libsodium via PyNaCl,
//! hashlib, and a pure-Python ML-KEM), whose output is committed as
//! `tests/data/session_v2_python_kat.json`.
#![cfg(feature = "session-v2")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use serde_json::Value;
use session_ratchet::rand_core::{TryCryptoRng, TryRng};
use session_ratchet::secret::{AccountKeySeed, DeviceKeySeed, Ed25519Seed};
use session_ratchet::session_v2::account_keys::{
    account_key_pair, device_key_pair, encode_record, verify_record,
};
use session_ratchet::session_v2::device_group::{
    DeviceEntry, GroupPayload, decrypt_group, encrypt_group, is_kicked,
};
use session_ratchet::session_v2::identity::Identity;
use session_ratchet::session_v2::{dm, link, mnemonic, xeddsa};
use std::convert::Infallible;

/// Replays fixed bytes as "randomness"; panics if asked for more than given.
struct Replay {
    bytes: Vec<u8>,
    pos: usize,
}

impl Replay {
    fn new(bytes: Vec<u8>) -> Self {
        Self { bytes, pos: 0 }
    }
    fn exhausted(&self) -> bool {
        self.pos == self.bytes.len()
    }
}

impl TryRng for Replay {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        let end = self.pos + dst.len();
        dst.copy_from_slice(&self.bytes[self.pos..end]);
        self.pos = end;
        Ok(())
    }
}

impl TryCryptoRng for Replay {}

fn kat() -> Value {
    serde_json::from_str(include_str!("data/session_v2_python_kat.json")).unwrap()
}

fn hx(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

fn id(v: &Value) -> Identity {
    Identity::from_seed_bytes(&hx(v)).unwrap()
}

#[test]
fn identities_match_libsodium() {
    let k = kat();
    let mut sign_bits = Vec::new();
    for e in k["identities"].as_array().unwrap() {
        let seed = hx(&e["seed"]);
        let me = Identity::from_seed_bytes(&seed).unwrap();
        assert_eq!(
            hex::encode(me.ed25519_public()),
            e["ed25519_pk"].as_str().unwrap()
        );
        assert_eq!(
            hex::encode(me.x25519_public().as_bytes()),
            e["x25519_pk"].as_str().unwrap()
        );
        assert_eq!(
            me.session_id().to_string(),
            e["session_id"].as_str().unwrap()
        );
        sign_bits.push(e["ed25519_sign_bit"].as_u64().unwrap());
        let phrase = match seed.len() {
            16 => {
                mnemonic::encode_recovery_seed(&session_ratchet::secret::RecoverySeed::from_bytes(
                    seed.clone().try_into().unwrap(),
                ))
                .unwrap()
            }
            _ => mnemonic::encode_full_seed(&Ed25519Seed::from_bytes(
                seed.clone().try_into().unwrap(),
            ))
            .unwrap(),
        };
        assert_eq!(phrase.as_str(), e["mnemonic"].as_str().unwrap());
    }
    assert!(sign_bits.contains(&0) && sign_bits.contains(&1));
}

#[test]
fn positive_alternative_signatures_match_reference() {
    let k = kat();
    for e in k["xeddsa"].as_array().unwrap() {
        let me = id(&e["seed"]);
        let msg = hx(&e["message"]);
        let sig: [u8; 64] = hx(&e["signature"]).try_into().unwrap();
        assert!(xeddsa::verify(&me.session_id(), &msg, &sig));
        // Signing with the same nonce randomness reproduces the reference bytes.
        let mut rng = Replay::new(hx(&e["z"]));
        assert_eq!(xeddsa::sign(&mut rng, &me, &msg), sig);
        assert!(rng.exhausted());
    }
}

#[test]
fn account_keys_and_record_match_reference() {
    let k = &kat()["account_keys"];
    let keys = account_key_pair(&AccountKeySeed::from_bytes(
        hx(&k["seed"]).try_into().unwrap(),
    ));
    assert_eq!(
        keys.x25519_public().as_bytes().to_vec(),
        hx(&k["x25519_pk"])
    );
    assert_eq!(keys.mlkem_public().as_bytes().to_vec(), hx(&k["mlkem_pk"]));
    let owner = id(&k["owner_seed"]);
    let record = hx(&k["record"]);
    assert_eq!(
        verify_record(&owner.session_id(), &record).unwrap(),
        keys.public_keys()
    );
    let mut rng = Replay::new(hx(&k["record_z"]));
    assert_eq!(encode_record(&mut rng, &owner, &keys.public_keys()), record);

    let d = &kat()["device_keys"];
    let dev = device_key_pair(&DeviceKeySeed::from_bytes(
        hx(&d["seed"]).try_into().unwrap(),
    ));
    assert_eq!(dev.x25519_public().as_bytes().to_vec(), hx(&d["x25519_pk"]));
    assert_eq!(dev.mlkem_public().as_bytes().to_vec(), hx(&d["mlkem_pk"]));
}

#[test]
fn direct_messages_match_reference() {
    let all = kat();
    let k = &all["dm_pfs"];
    let alice = id(&k["sender_seed"]);
    let bob = id(&k["recipient_seed"]);
    let keys = account_key_pair(&AccountKeySeed::from_bytes(
        hx(&k["account_seed"]).try_into().unwrap(),
    ));

    let expected = hx(&k["message"]);
    let mut rng = Replay::new(hx(&k["rng"]));
    let ours = dm::encrypt_pfs(
        &mut rng,
        &alice,
        &bob.session_id(),
        &keys.public_keys(),
        &hx(&k["content"]),
        None,
    )
    .unwrap();
    assert_eq!(ours, expected);
    let got = dm::receive(&bob, &[&keys], &expected).unwrap();
    assert_eq!(*got.content, hx(&k["content"]));
    assert_eq!(got.sender, alice.session_id());
    assert!(got.pfs);

    let p = &all["dm_pfs_pro"];
    let pro = id(&p["pro_seed"]);
    let expected = hx(&p["message"]);
    let mut rng = Replay::new(hx(&p["rng"]));
    let ours = dm::encrypt_pfs(
        &mut rng,
        &alice,
        &bob.session_id(),
        &keys.public_keys(),
        &hx(&p["content"]),
        Some(&pro),
    )
    .unwrap();
    assert_eq!(ours, expected);
    assert_eq!((expected.len() - 1536) % 256, 0);
    let got = dm::receive(&bob, &[&keys], &expected).unwrap();
    assert!(got.pro_signature.is_some());

    let n = &all["dm_non_pfs"];
    let expected = hx(&n["message"]);
    let mut rng = Replay::new(hx(&n["rng"]));
    assert_eq!(
        dm::encrypt_non_pfs(
            &mut rng,
            &alice,
            &bob.session_id(),
            &hx(&n["content"]),
            None
        )
        .unwrap(),
        expected
    );
    let got = dm::receive(&bob, &[&keys], &expected).unwrap();
    assert_eq!(*got.content, hx(&n["content"]));
    assert!(!got.pfs);
}

#[test]
fn device_group_matches_reference() {
    let k = &kat()["device_group"];
    let account = id(&k["account_seed"]);
    let payload = GroupPayload::decode(&hx(&k["payload"])).unwrap();
    assert_eq!(
        payload.encode(),
        hx(&k["payload"]),
        "payload re-encodes identically"
    );
    let expected = hx(&k["message"]);
    let mut rng = Replay::new(hx(&k["rng"]));
    assert_eq!(
        encrypt_group(&mut rng, &account, &payload).unwrap(),
        expected
    );
    assert!(rng.exhausted());
    for seed in k["device_seeds"].as_array().unwrap() {
        let dev = device_key_pair(&DeviceKeySeed::from_bytes(hx(seed).try_into().unwrap()));
        let got = decrypt_group(&expected, account.ed25519_public(), &dev).unwrap();
        assert_eq!(got, payload);
    }
    let kicked: [u8; 32] = hx(&k["kicked_device"]).try_into().unwrap();
    assert!(matches!(
        payload.devices[&kicked],
        DeviceEntry::Removed { .. }
    ));
    assert!(is_kicked(&expected, &account, &kicked).unwrap());
    assert!(!is_kicked(&expected, &account, &[0x50; 32]).unwrap());
}

#[test]
fn link_request_and_sas_match_reference() {
    let k = &kat()["link"];
    let account = id(&k["account_seed"]);
    let plain = hx(&k["plaintext"]);
    let msg = hx(&k["message"]);
    assert_eq!(link::encrypt_link_request(&account, &plain), msg);
    let req = link::decrypt_link_request(&account, &msg).unwrap();
    assert_eq!(req.plaintext, plain);
    assert_eq!(req.device_id, [0x70; 32]);
    assert_eq!(
        link::encode_link_request(&req.device_id, &req.record),
        plain
    );
    let seed = link::sas_seed(&plain).unwrap();
    assert_eq!(seed.to_vec(), hx(&k["sas_seed"]));
    let want: Vec<u8> = k["sas_indices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as u8)
        .collect();
    assert_eq!(link::sas_from_seed(&seed).indices.to_vec(), want);
}
