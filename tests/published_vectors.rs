//! The published test vectors: regenerated in memory and compared byte for
//! byte with `test-vectors/`, then checked through the public API.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod vectors;

use serde_json::Value;
use session_ratchet::handshake::{self, PrekeyMessage};
use session_ratchet::kem::xwing::{XWingCiphertext, XWingKeyPair};
use session_ratchet::kem::{MlKemCiphertext, MlKemKeyPair, MlKemPublicKey};
use session_ratchet::prekey::PrekeyBundle;
use session_ratchet::secret::{MlKemSeed, XWingSeed};
use std::path::Path;

fn unhex(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

fn arr<const N: usize>(v: &Value) -> [u8; N] {
    unhex(v).try_into().unwrap()
}

#[test]
fn committed_vectors_match_the_generator() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("test-vectors");
    let mut stale = Vec::new();
    // stored-session-v1.json is frozen (never regenerated), so it is not
    // in `vectors::all()`; it is checked by loading it instead.
    for (stem, value) in vectors::all() {
        let text = vectors::render(&value);
        let path = dir.join(format!("{stem}.json"));
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        if committed != text {
            let new = dir.join(format!("{stem}-new.json"));
            std::fs::write(&new, &text).unwrap();
            stale.push(new.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "generated vectors differ from the committed files; review and promote: {stale:?}"
    );
}

fn load(stem: &str) -> Vec<Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("test-vectors")
        .join(format!("{stem}.json"));
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v["vectors"].as_array().unwrap().clone()
}

#[test]
fn kem_vectors_verify_through_the_public_api() {
    let mut checked = 0;
    for v in load("kem") {
        match v["kind"].as_str().unwrap() {
            "ml-kem-768" => {
                let kp = MlKemKeyPair::from_seed(MlKemSeed::hazmat_from_bytes(arr(&v["seed_d_z"])));
                assert_eq!(
                    kp.public_key().as_bytes().as_slice(),
                    unhex(&v["encapsulation_key"])
                );
                let ct = MlKemCiphertext::from_bytes(&unhex(&v["ciphertext"])).unwrap();
                assert_eq!(
                    kp.decapsulate(&ct).hazmat_bytes().as_slice(),
                    unhex(&v["shared_secret"])
                );
                let mut bad = unhex(&v["ciphertext"]);
                bad[0] ^= 1;
                let bad = MlKemCiphertext::from_bytes(&bad).unwrap();
                assert_eq!(
                    kp.decapsulate(&bad).hazmat_bytes().as_slice(),
                    unhex(&v["modified_ciphertext_first_byte_xor_01_shared_secret"])
                );
            }
            "ml-kem-768-invalid-key" => {
                let e = MlKemPublicKey::from_bytes(&unhex(&v["encapsulation_key"])).unwrap_err();
                assert_eq!(vectors::class(&e), v["expected_error"]);
            }
            "x-wing" => {
                let kp = XWingKeyPair::from_seed(XWingSeed::hazmat_from_bytes(arr(&v["seed"])));
                assert_eq!(kp.public_key().to_bytes(), unhex(&v["encapsulation_key"]));
                let ct = XWingCiphertext::from_bytes(&unhex(&v["ciphertext"])).unwrap();
                assert_eq!(
                    kp.decapsulate(&ct).unwrap().hazmat_bytes().as_slice(),
                    unhex(&v["shared_secret"])
                );
            }
            "x-wing-decapsulation-error" => {
                let kp = XWingKeyPair::from_seed(XWingSeed::hazmat_from_bytes(arr(&v["seed"])));
                let ct = XWingCiphertext::from_bytes(&unhex(&v["ciphertext"])).unwrap();
                assert_eq!(
                    vectors::class(&kp.decapsulate(&ct).unwrap_err()),
                    v["expected_error"]
                );
            }
            other => panic!("unknown kind {other}"),
        }
        checked += 1;
    }
    assert_eq!(checked, 8);
}

#[test]
fn handshake_vectors_verify_through_the_public_api() {
    let all = load("handshake");
    let mut checked = 0;
    for v in &all {
        match v["kind"].as_str().unwrap() {
            "handshake" => {
                let bundle = PrekeyBundle::from_bytes(&unhex(&v["bundle"]))
                    .unwrap()
                    .verify()
                    .unwrap();
                assert_eq!(
                    bundle.identity().to_bytes().as_slice(),
                    unhex(&v["bob_public_identity"])
                );
                let msg = PrekeyMessage::from_bytes(&unhex(&v["prekey_message"])).unwrap();
                assert_eq!(msg.payload(), unhex(&v["payload"]));
                assert_eq!(
                    msg.header().initiator().to_bytes().as_slice(),
                    unhex(&v["alice_public_identity"])
                );
                // Bob's store is rebuilt from the same seed; his side of the
                // handshake must reproduce every published key.
                let seed_byte = unhex(&v["rng_seed"])[0];
                let mut s = vectors::handshake::scenario(
                    seed_byte,
                    v["bundle_offers_one_time_prekey"].as_bool().unwrap(),
                    v["bundle_offers_one_time_kem_prekey"].as_bool().unwrap(),
                );
                let bob = handshake::respond(&s.bob, &s.store, msg.header())
                    .unwrap()
                    .commit(&mut s.store)
                    .unwrap();
                assert_eq!(
                    bob.transcript_hash().as_slice(),
                    unhex(&v["transcript_hash"])
                );
                assert_eq!(
                    bob.root_key().hazmat_bytes().as_slice(),
                    unhex(&v["root_key"])
                );
                assert_eq!(
                    bob.initiator_chain_key().hazmat_bytes().as_slice(),
                    unhex(&v["initiator_chain_key"])
                );
                assert_eq!(
                    bob.initiator_header_key().hazmat_bytes().as_slice(),
                    unhex(&v["initiator_header_key"])
                );
                assert_eq!(
                    bob.responder_header_key().hazmat_bytes().as_slice(),
                    unhex(&v["responder_header_key"])
                );
            }
            "bundle-error" => {
                let input = unhex(&v["input"]);
                let got = match PrekeyBundle::from_bytes(&input) {
                    Err(e) => vectors::class(&e),
                    Ok(b) => vectors::class(&b.verify().unwrap_err()),
                };
                assert_eq!(got, v["expected_error"], "{}", v["name"]);
            }
            "prekey-message-error" => {
                let mut input = match v.get("input") {
                    Some(i) => unhex(i),
                    None => unhex(&v["input_prefix"]),
                };
                if let Some(n) = v.get("input_zero_padded_to_length") {
                    input.resize(n.as_u64().unwrap() as usize, 0);
                }
                let got = vectors::class(&PrekeyMessage::from_bytes(&input).unwrap_err());
                assert_eq!(got, v["expected_error"], "{}", v["name"]);
            }
            "handshake-replay" => {
                let of = all.iter().find(|x| x["name"] == v["of_vector"]).unwrap();
                let msg = PrekeyMessage::from_bytes(&unhex(&of["prekey_message"])).unwrap();
                let mut s = vectors::handshake::scenario(
                    unhex(&v["rng_seed"])[0],
                    of["bundle_offers_one_time_prekey"].as_bool().unwrap(),
                    of["bundle_offers_one_time_kem_prekey"].as_bool().unwrap(),
                );
                handshake::respond(&s.bob, &s.store, msg.header())
                    .unwrap()
                    .commit(&mut s.store)
                    .unwrap();
                let e = handshake::respond(&s.bob, &s.store, msg.header()).unwrap_err();
                assert_eq!(vectors::class(&e), v["expected_error_on_second_delivery"]);
            }
            other => panic!("unknown kind {other}"),
        }
        checked += 1;
    }
    assert_eq!(checked, 4 + 11 + 5 + 3);
}

/// An RNG that hands out exactly the bytes a vector lists.
struct Replay {
    bytes: Vec<u8>,
    pos: usize,
}

impl rand_chacha::rand_core::TryRng for Replay {
    type Error = std::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        let end = self.pos + dst.len();
        assert!(
            end <= self.bytes.len(),
            "the operation drew more bytes than the vector lists"
        );
        dst.copy_from_slice(&self.bytes[self.pos..end]);
        self.pos = end;
        Ok(())
    }
}

impl rand_chacha::rand_core::TryCryptoRng for Replay {}

fn replay(v: &Value) -> Replay {
    Replay {
        bytes: unhex(v),
        pos: 0,
    }
}

#[test]
fn ratchet_vectors_replay_through_the_public_api() {
    use rand_chacha::ChaCha20Rng;
    use rand_chacha::rand_core::SeedableRng;
    use session_ratchet::identity::DeviceIdentity;
    use session_ratchet::prekey::PrekeyStore;
    use session_ratchet::ratchet::Session;

    let v = &load("ratchet")[0];
    let setup = &v["setup"];
    let mut setup_rng = ChaCha20Rng::from_seed(arr(&setup["setup_rng_seed"]));
    let alice_id = DeviceIdentity::generate(&mut setup_rng);
    let bob_id = DeviceIdentity::generate(&mut setup_rng);
    let mut store = PrekeyStore::new(&mut setup_rng, &bob_id);
    store
        .generate_one_time_prekeys(&mut setup_rng, &bob_id, 1)
        .unwrap();
    let bundle = PrekeyBundle::from_bytes(&unhex(&setup["bundle"]))
        .unwrap()
        .verify_for(bob_id.public())
        .unwrap();
    let (mut a, mut b): (Option<Session>, Option<Session>) = (None, None);
    let mut messages: Vec<Vec<u8>> = Vec::new();
    let mut counts = std::collections::BTreeMap::new();
    for e in v["events"].as_array().unwrap() {
        let op = e["op"].as_str().unwrap();
        *counts.entry(op.to_string()).or_insert(0) += 1;
        let is_alice = e["by"] == "alice";
        match op {
            "initiate" => {
                let mut r = replay(&e["draws"]);
                let s = Session::initiate(&mut r, &alice_id, &bundle).unwrap();
                assert_eq!(
                    r.pos,
                    r.bytes.len(),
                    "initiate drew fewer bytes than listed"
                );
                assert_eq!(s.transcript_hash().as_slice(), unhex(&e["transcript_hash"]));
                a = Some(s);
            }
            "encrypt" => {
                let s = if is_alice { a.as_mut() } else { b.as_mut() }.unwrap();
                let mut r = replay(&e["draws"]);
                let m = s
                    .encrypt(&mut r, &unhex(&e["plaintext"]), &unhex(&e["ad"]))
                    .unwrap();
                assert_eq!(r.pos, r.bytes.len(), "encrypt drew fewer bytes than listed");
                assert_eq!(m, unhex(&e["message"]), "message {} differs", e["index"]);
                let t = s.hazmat_last_encryption().unwrap();
                assert_eq!(t.message_key.as_slice(), unhex(&e["message_key"]));
                assert_eq!(t.body_key.as_slice(), unhex(&e["body_key"]));
                assert_eq!(t.header_key.as_slice(), unhex(&e["header_key"]));
                assert_eq!(t.header.as_slice(), unhex(&e["header"]));
                assert_eq!(t.body, unhex(&e["body"]));
                assert_eq!(e["index"].as_u64().unwrap() as usize, messages.len());
                messages.push(m);
            }
            "respond" => {
                let m = &messages[e["index"].as_u64().unwrap() as usize];
                let (s, pt) = Session::respond(&bob_id, &mut store, m, &unhex(&e["ad"])).unwrap();
                assert_eq!(pt, unhex(&e["plaintext"]));
                b = Some(s);
            }
            "decrypt" => {
                let s = if is_alice { a.as_mut() } else { b.as_mut() }.unwrap();
                let m = &messages[e["index"].as_u64().unwrap() as usize];
                assert_eq!(
                    s.decrypt(m, &unhex(&e["ad"])).unwrap(),
                    unhex(&e["plaintext"])
                );
            }
            "reject" => {
                let s = if is_alice { a.as_mut() } else { b.as_mut() }.unwrap();
                let before = s.to_stored();
                let err = s
                    .decrypt(&unhex(&e["input"]), &unhex(&e["ad"]))
                    .unwrap_err();
                assert_eq!(vectors::class(&err), e["expected_error"], "{}", e["name"]);
                assert_eq!(s.to_stored(), before, "{}: state changed", e["name"]);
            }
            other => panic!("unknown op {other}"),
        }
    }
    let fin = &v["final"];
    assert_eq!(
        a.as_ref().unwrap().to_stored().as_bytes(),
        unhex(&fin["alice_stored_state"])
    );
    assert_eq!(
        b.as_ref().unwrap().to_stored().as_bytes(),
        unhex(&fin["bob_stored_state"])
    );
    assert!(
        counts["encrypt"] > 30 && counts["reject"] == 6,
        "{counts:?}"
    );
}

/// The frozen file's stored state still loads and stores back byte for byte.
/// Its message was sealed under the message key itself, before body keys
/// (spec §7.3, §7.11; a clean break, test-vectors/README.md): it is now
/// rejected, and the rejection leaves the loaded state unchanged.
#[test]
fn frozen_stored_session_v1_still_loads_and_rejects_its_old_derivation_message() {
    use session_ratchet::ratchet::{RatchetError, Session, StoredSession};
    let v = &load("stored-session-v1")[0];
    let stored = unhex(&v["stored_state"]);
    let mut s = Session::from_stored(&StoredSession::from_bytes(&stored)).unwrap();
    assert_eq!(s.to_stored().as_bytes(), stored.as_slice());
    assert_eq!(
        s.decrypt(&unhex(&v["message"]), &unhex(&v["ad"])),
        Err(RatchetError::AuthenticationFailed)
    );
    assert_eq!(s.to_stored().as_bytes(), stored.as_slice());
}

#[test]
fn devices_vectors_verify_through_the_public_api() {
    use session_ratchet::account::{Account, SessionId};
    use session_ratchet::device::list::{SignedDeviceList, UpdateOutcome, VerifiedDeviceList};
    use session_ratchet::device::record::PrekeyRecord;
    use session_ratchet::prekey::PrekeyBundle;
    use session_ratchet::secret::RecoverySeed;

    let all = load("devices");
    let list_named = |name: &Value| {
        let l = all.iter().find(|x| x["name"] == *name).unwrap();
        SignedDeviceList::from_bytes(&unhex(&l["encoding"])).unwrap()
    };
    let mut checked = 0;
    for v in &all {
        match v["kind"].as_str().unwrap() {
            "account" => {
                let a = Account::from_recovery_seed(&RecoverySeed::from_bytes(arr(
                    &v["recovery_seed"],
                )));
                assert_eq!(a.public_key().to_bytes().to_vec(), unhex(&v["ed25519_pk"]));
                assert_eq!(a.session_id().to_hex(), v["session_id"].as_str().unwrap());
            }
            "device-list" => {
                let bytes = unhex(&v["encoding"]);
                let l = SignedDeviceList::from_bytes(&bytes).unwrap();
                assert_eq!(l.to_bytes(), bytes);
                assert_eq!(l.hash().to_vec(), unhex(&v["list_hash"]));
                assert_eq!(l.signature().to_vec(), unhex(&v["signature"]));
                assert_eq!(l.version(), v["version"].as_u64().unwrap());
                assert_eq!(l.previous_hash().to_vec(), unhex(&v["previous_hash"]));
                assert_eq!(
                    l.account().to_bytes().to_vec(),
                    unhex(&v["account_ed25519_pk"])
                );
                assert!(l.verify_signature().is_ok());
                let devices = v["devices"].as_array().unwrap();
                assert_eq!(l.devices().len(), devices.len());
                for (d, j) in l.devices().iter().zip(devices) {
                    assert_eq!(d.id().as_bytes().to_vec(), unhex(&j["id"]));
                    assert_eq!(
                        d.identity().to_bytes().to_vec(),
                        unhex(&j["public_identity"])
                    );
                    assert_eq!(d.description(), j["description"].as_str().unwrap());
                    assert_eq!(
                        u64::from(d.platform().to_byte()),
                        j["platform"].as_u64().unwrap()
                    );
                    assert_eq!(d.added_at(), j["added_at"].as_u64().unwrap());
                    assert_eq!(d.updated_at(), j["updated_at"].as_u64().unwrap());
                }
                let tombstones = v["tombstones"].as_array().unwrap();
                assert_eq!(l.tombstones().len(), tombstones.len());
                for (t, j) in l.tombstones().iter().zip(tombstones) {
                    assert_eq!(t.id().as_bytes().to_vec(), unhex(&j["id"]));
                    assert_eq!(t.removed_at(), j["removed_at"].as_u64().unwrap());
                }
                assert_eq!(
                    l.extensions().len(),
                    v["extensions"].as_array().unwrap().len()
                );
            }
            "device-list-update" => {
                let sid = SessionId::from_hex(v["session_id"].as_str().unwrap()).unwrap();
                let held = VerifiedDeviceList::trust_first(list_named(&v["held"]), &sid).unwrap();
                let mids: Vec<SignedDeviceList> = v["intermediates"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|m| SignedDeviceList::from_bytes(&unhex(m)).unwrap())
                    .collect();
                let got = match SignedDeviceList::from_bytes(&unhex(&v["offered"])) {
                    Err(e) => vectors::class(&e),
                    Ok(offered) => match held.accept_update(&offered, &mids) {
                        Ok(UpdateOutcome::Advanced(n)) => {
                            assert_eq!(n.list(), &offered);
                            "Advanced".into()
                        }
                        Ok(UpdateOutcome::Unchanged) => "Unchanged".into(),
                        Err(e) => {
                            if let session_ratchet::device::list::DeviceListError::Fork(ev) = &e {
                                assert!(ev.verify());
                                assert_eq!(ev.offered(), &offered);
                            }
                            vectors::class(&e)
                        }
                    },
                };
                assert_eq!(got, v["expected"], "{}", v["name"]);
            }
            "prekey-record" => {
                let list = list_named(&v["list"]);
                let sid = SessionId::from_account_key(list.account()).unwrap();
                let held = VerifiedDeviceList::trust_first(list, &sid).unwrap();
                let bundles: Vec<PrekeyBundle> = v["bundles"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|b| PrekeyBundle::from_bytes(&unhex(&b["bundle"])).unwrap())
                    .collect();
                let mut rng = replay(&v["draws"]);
                let record = PrekeyRecord::build(&mut rng, &held, &bundles).unwrap();
                assert_eq!(rng.pos, rng.bytes.len(), "every listed draw is used");
                assert_eq!(record.to_bytes(), unhex(&v["record"]));
                let opened = PrekeyRecord::from_bytes(&unhex(&v["record"]))
                    .unwrap()
                    .open(&held)
                    .unwrap();
                assert!(opened.missing().is_empty());
                for ((id, b), j) in opened
                    .bundles()
                    .iter()
                    .zip(v["bundles"].as_array().unwrap())
                {
                    assert_eq!(id.as_bytes().to_vec(), unhex(&j["device_id"]));
                    assert_eq!(b.bundle().to_bytes(), unhex(&j["bundle"]));
                }
            }
            other => panic!("unknown kind {other}"),
        }
        checked += 1;
    }
    assert_eq!(checked, 1 + 5 + 11 + 1);
}

#[test]
fn envelope_vectors_replay_through_the_public_api() {
    use session_ratchet::envelope::{ENVELOPE_HEADER_LEN, ENVELOPE_HINT_LEN, Envelope};
    use session_ratchet::identity::{DeviceIdentity, DevicePublicIdentity};
    use vectors::envelope::{find_slot, open_body, spec_slot};

    let all = load("envelope");
    let devices: Vec<DeviceIdentity> = all[0]["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let mut draws = unhex(&d["ed25519_seed"]);
            draws.extend(unhex(&d["x25519_secret"]));
            let mut rng = Replay {
                bytes: draws,
                pos: 0,
            };
            let device = DeviceIdentity::generate(&mut rng);
            assert_eq!(rng.pos, rng.bytes.len());
            assert_eq!(
                device.public().to_bytes().to_vec(),
                unhex(&d["public_identity"])
            );
            device
        })
        .collect();
    let device = |v: &Value| &devices[v.as_u64().unwrap() as usize];
    let mut checked = 0;
    for v in &all {
        match v["kind"].as_str().unwrap() {
            "devices" => {}
            "envelope" => {
                let recipients = v["recipients"].as_array().unwrap();
                let payloads: Vec<Vec<u8>> =
                    recipients.iter().map(|r| unhex(&r["payload"])).collect();
                let list: Vec<(&DevicePublicIdentity, &[u8])> = recipients
                    .iter()
                    .zip(&payloads)
                    .map(|(r, p)| (device(&r["device"]).public(), p.as_slice()))
                    .collect();
                let mut rng = replay(&v["draws"]);
                let env = Envelope::seal(&mut rng, &list).unwrap();
                assert_eq!(rng.pos, rng.bytes.len(), "every listed draw is used");
                let bytes = unhex(&v["envelope"]);
                assert_eq!(env.to_bytes(), bytes, "{}", v["name"]);
                assert_eq!(env.slot_count() as u64, v["slot_count"].as_u64().unwrap());
                let body_len = env.body_len();
                assert_eq!(body_len as u64, v["body_len"].as_u64().unwrap());
                assert_eq!(
                    env.ephemeral_key().as_bytes().to_vec(),
                    unhex(&v["ephemeral_public"])
                );
                let e: [u8; 32] = arr(&v["ephemeral_secret"]);
                assert_eq!(unhex(&v["draws"])[..32], e);
                let decoded = Envelope::from_bytes(&bytes).unwrap();
                for (r, p) in recipients.iter().zip(&payloads) {
                    let d = device(&r["device"]);
                    assert_eq!(decoded.open(d).unwrap().as_slice(), p.as_slice());
                    // K, hint and slot key from the primitives (§8.7.3); the
                    // slot with that hint opens to `u32(len) ‖ payload ‖ 0…`.
                    let (k, hint, key) = spec_slot(&e, d.public().dh_key().as_bytes());
                    assert_eq!(k.to_vec(), unhex(&r["shared_secret"]));
                    assert_eq!(hint.to_vec(), unhex(&r["hint"]));
                    assert_eq!(key.to_vec(), unhex(&r["slot_key"]));
                    let (_, slot) = find_slot(&bytes, body_len, &hint);
                    let plain = open_body(
                        &key,
                        &bytes[..ENVELOPE_HEADER_LEN],
                        &slot[ENVELOPE_HINT_LEN..],
                    )
                    .unwrap();
                    let mut framed = (p.len() as u32).to_be_bytes().to_vec();
                    framed.extend_from_slice(p);
                    framed.resize(body_len - 16, 0);
                    assert_eq!(plain, framed);
                }
                assert_eq!(
                    decoded.open(device(&v["non_recipient"])).map(|_| ()),
                    Err(session_ratchet::envelope::EnvelopeError::NoSlotForDevice)
                );
            }
            "envelope-error" => {
                let input = unhex(&v["input"]);
                let got = match Envelope::from_bytes(&input) {
                    Err(e) => vectors::class(&e),
                    Ok(env) => {
                        assert_eq!(env.to_bytes(), input);
                        vectors::class(&env.open(device(&v["device"])).unwrap_err())
                    }
                };
                assert_eq!(got, v["expected_error"], "{}", v["name"]);
            }
            other => panic!("unknown kind {other}"),
        }
        checked += 1;
    }
    assert_eq!(checked, 1 + 3 + 18);
}

#[test]
fn link_vectors_replay_through_the_public_api() {
    use session_ratchet::account::Account;
    use session_ratchet::device::link::{
        AwaitingApproval, LinkGrant, LinkInitiator, LinkPayload, LinkRequest, LinkResponse,
        PendingLink, sas_input,
    };
    use session_ratchet::device::list::{
        ClientVersion, DeviceStatus, Platform, SignedDeviceList, VerifiedDeviceList,
    };
    use session_ratchet::device::sas;
    use session_ratchet::identity::{DeviceIdentity, Ed25519PublicKey};
    use session_ratchet::secret::RecoverySeed;
    use vectors::link::class_path;

    let all = load("link");
    let identity = |ed: &Value, x: &Value| {
        DeviceIdentity::generate(&mut replay(&Value::String(format!(
            "{}{}",
            ed.as_str().unwrap(),
            x.as_str().unwrap()
        ))))
    };
    let draws = |v: &Value, keys: &[&str]| {
        let joined: String = keys.iter().map(|k| v[*k].as_str().unwrap()).collect();
        replay(&Value::String(joined))
    };
    let request_fields = |v: &Value| {
        let cv = v["client_version"].as_array().unwrap();
        let cv: Vec<u16> = cv.iter().map(|x| x.as_u64().unwrap() as u16).collect();
        (
            Platform::from_byte(v["platform"].as_u64().unwrap() as u8),
            ClientVersion {
                major: cv[0],
                minor: cv[1],
                patch: cv[2],
            },
            v["description"].as_str().unwrap().to_string(),
        )
    };
    // The new device of a `link` vector, after the published response.
    let new_device = |v: &Value| -> (LinkInitiator, AwaitingApproval) {
        let device = identity(
            &v["new_device_ed25519_seed"],
            &v["new_device_x25519_secret"],
        );
        let (platform, cv, description) = request_fields(v);
        let mut rng = draws(&v["n_draws"], &["xwing_seed", "nonce"]);
        let (initiator, request) =
            LinkInitiator::start(&mut rng, &device, platform, &description, cv);
        assert_eq!(rng.pos, rng.bytes.len());
        assert_eq!(request.to_bytes(), unhex(&v["request"]));
        let response = LinkResponse::from_bytes(&unhex(&v["response"])).unwrap();
        let awaiting = initiator.receive_response(&response).unwrap();
        (initiator, awaiting)
    };
    let named = |name: &Value| all.iter().find(|x| x["name"] == *name).unwrap();
    let sas_indices = |s: &sas::Sas| Value::from(s.indices.to_vec());
    let mut counts = std::collections::BTreeMap::new();
    for v in &all {
        let kind = v["kind"].as_str().unwrap();
        *counts.entry(kind.to_string()).or_insert(0) += 1;
        match kind {
            "link" => {
                let account = Account::from_recovery_seed(&RecoverySeed::from_bytes(arr(
                    &v["recovery_seed"],
                )));
                let approver = identity(&v["approver_ed25519_seed"], &v["approver_x25519_secret"]);
                let held = VerifiedDeviceList::trust_first_with_key(
                    SignedDeviceList::from_bytes(&unhex(&v["held_list"])).unwrap(),
                    &account.public_key(),
                )
                .unwrap();
                let (_, awaiting) = new_device(v);
                // The existing device's side from its draws.
                let mut e_rng = draws(&v["e_draws"], &["eseed", "nonce", "device_id"]);
                let request = LinkRequest::from_bytes(&unhex(&v["request"])).unwrap();
                let (pending, response) =
                    PendingLink::respond(&mut e_rng, &approver, &account, &request).unwrap();
                assert_eq!(response.to_bytes(), unhex(&v["response"]));
                let th = awaiting.transcript_hash();
                assert_eq!(th.to_vec(), unhex(&v["transcript_hash"]));
                assert_eq!(pending.transcript_hash(), th);
                assert_eq!(
                    awaiting.hazmat_payload_key().hazmat_bytes().to_vec(),
                    unhex(&v["payload_key"])
                );
                assert_eq!(
                    pending.hazmat_payload_key().hazmat_bytes().to_vec(),
                    unhex(&v["payload_key"])
                );
                assert_eq!(sas_input(th), unhex(&v["sas_input"]));
                let seed = sas::sas_seed(&unhex(&v["sas_input"])).unwrap();
                assert_eq!(seed.to_vec(), unhex(&v["sas_seed"]));
                assert_eq!(sas::sas_from_seed(&seed), *awaiting.sas());
                assert_eq!(awaiting.sas(), pending.sas());
                assert_eq!(sas_indices(pending.sas()), v["sas_indices"]);
                let names: Vec<&str> = pending.sas().short().unwrap().iter().map(|e| e.1).collect();
                assert_eq!(Value::from(names), v["sas_emoji"]);
                let grant = match v["grant"].as_str().unwrap() {
                    "share-account-seed" => LinkGrant::ShareAccountSeed,
                    "withhold-account-seed" => LinkGrant::WithholdAccountSeed,
                    other => panic!("unknown grant {other}"),
                };
                let contacts: Vec<Ed25519PublicKey> = v["contacts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| Ed25519PublicKey::from_bytes(&arr(c)).unwrap())
                    .collect();
                let (payload, list) = pending
                    .approve(
                        &mut e_rng,
                        &account,
                        &held,
                        v["added_at"].as_u64().unwrap(),
                        grant,
                        &contacts,
                    )
                    .map_err(|e| e.error)
                    .unwrap();
                assert_eq!(e_rng.pos, e_rng.bytes.len(), "every listed draw is used");
                assert_eq!(list.to_bytes(), unhex(&v["new_list"]));
                assert_eq!(payload.to_bytes(), unhex(&v["payload"]));
                let linked = awaiting
                    .open_payload(&LinkPayload::from_bytes(&unhex(&v["payload"])).unwrap())
                    .unwrap();
                assert_eq!(linked.device_id.as_bytes().to_vec(), unhex(&v["device_id"]));
                assert_eq!(linked.list.list(), &list);
                let DeviceStatus::Active(entry) = linked.list.status(&linked.device_id) else {
                    panic!("not listed")
                };
                let (platform, cv, description) = request_fields(v);
                assert_eq!(
                    (
                        entry.platform(),
                        entry.client_version(),
                        entry.description()
                    ),
                    (platform, cv, description.as_str())
                );
                assert_eq!(
                    linked.account.map(|a| a.public_key()),
                    (grant == LinkGrant::ShareAccountSeed).then(|| account.public_key())
                );
                let mut want: Vec<[u8; 32]> = contacts.iter().map(|c| c.to_bytes()).collect();
                want.sort_unstable();
                want.dedup();
                let got: Vec<[u8; 32]> = linked.contacts.iter().map(|c| c.to_bytes()).collect();
                assert_eq!(got, want);
            }
            "link-payload-error" => {
                let (_, awaiting) = new_device(named(&v["of"]));
                let got = match LinkPayload::from_bytes(&unhex(&v["payload"])) {
                    Err(e) => class_path(&e),
                    Ok(p) => class_path(&awaiting.open_payload(&p).unwrap_err()),
                };
                assert_eq!(got, v["expected_error"], "{}", v["name"]);
            }
            "link-mitm" => {
                let of = named(&v["of"]);
                let (initiator, genuine) = new_device(of);
                let fooled = initiator
                    .receive_response(
                        &LinkResponse::from_bytes(&unhex(&v["response_to_n"])).unwrap(),
                    )
                    .unwrap();
                assert_eq!(sas_indices(fooled.sas()), v["sas_indices_at_n"]);
                let account = Account::from_recovery_seed(&RecoverySeed::from_bytes(arr(
                    &of["recovery_seed"],
                )));
                let approver =
                    identity(&of["approver_ed25519_seed"], &of["approver_x25519_secret"]);
                let request = LinkRequest::from_bytes(&unhex(&v["request_to_e"])).unwrap();
                let mut e_rng = draws(&v["e_draws"], &["eseed", "nonce", "device_id"]);
                let (pending, response) =
                    PendingLink::respond(&mut e_rng, &approver, &account, &request).unwrap();
                assert_eq!(response.to_bytes(), unhex(&v["response_from_e"]));
                assert_eq!(sas_indices(pending.sas()), v["sas_indices_at_e"]);
                assert_ne!(fooled.sas(), pending.sas());
                let payload = LinkPayload::from_bytes(&unhex(&v["payload"])).unwrap();
                for n in [&fooled, &genuine] {
                    assert_eq!(
                        class_path(&n.open_payload(&payload).unwrap_err()),
                        v["expected_error"]
                    );
                }
            }
            "link-decode-error" => {
                let input = unhex(&v["input"]);
                let got = match v["object"].as_str().unwrap() {
                    "request" => class_path(&LinkRequest::from_bytes(&input).unwrap_err()),
                    "response" => class_path(&LinkResponse::from_bytes(&input).unwrap_err()),
                    "payload" => class_path(&LinkPayload::from_bytes(&input).unwrap_err()),
                    other => panic!("unknown object {other}"),
                };
                assert_eq!(got, v["expected_error"], "{}", v["name"]);
            }
            other => panic!("unknown kind {other}"),
        }
    }
    let want: std::collections::BTreeMap<String, i32> = [
        ("link", 2),
        ("link-payload-error", 9),
        ("link-mitm", 2),
        ("link-decode-error", 10),
    ]
    .into_iter()
    .map(|(k, n)| (k.to_string(), n))
    .collect();
    assert_eq!(counts, want);
}

#[test]
fn sessions_vectors_replay_through_the_public_api() {
    use session_ratchet::account::Account;
    use session_ratchet::device::list::{
        DeviceId, DeviceStatus, SignedDeviceList, VerifiedDeviceList,
    };
    use session_ratchet::envelope::Envelope;
    use session_ratchet::identity::{DeviceIdentity, Ed25519PublicKey};
    use session_ratchet::prekey::PrekeyStore;
    use session_ratchet::secret::RecoverySeed;
    use session_ratchet::sessions::{SessionManager, SessionsError, StoredDevice};
    use std::collections::BTreeMap;
    use vectors::sessions::{ROUTING_LEN, associated_data, class, kind_byte, routing_header};

    let bytes_rng = |bytes: Vec<u8>| Replay { bytes, pos: 0 };
    let joined =
        |v: &Value, keys: &[&str]| -> Vec<u8> { keys.iter().flat_map(|k| unhex(&v[*k])).collect() };
    let all = load("sessions");
    let setup = &all[0];
    assert_eq!(setup["kind"], "setup");

    // Accounts and their lists.
    let mut keys: BTreeMap<String, Ed25519PublicKey> = BTreeMap::new();
    let mut lists: BTreeMap<String, (Account, SignedDeviceList)> = BTreeMap::new();
    for a in setup["accounts"].as_array().unwrap() {
        let name = a["name"].as_str().unwrap().to_string();
        let account =
            Account::from_recovery_seed(&RecoverySeed::from_bytes(arr(&a["recovery_seed"])));
        assert_eq!(
            account.public_key().to_bytes().to_vec(),
            unhex(&a["account_key"])
        );
        let list = SignedDeviceList::from_bytes(&unhex(&a["device_list"])).unwrap();
        keys.insert(name.clone(), account.public_key());
        lists.insert(name, (account, list));
    }
    let held = |name: &str| {
        let (account, list) = &lists[name];
        VerifiedDeviceList::trust_first(list.clone(), &account.session_id()).unwrap()
    };

    // Devices from their listed draws; a manager for every live one.
    struct Dev {
        account: String,
        id: DeviceId,
    }
    let mut devs: BTreeMap<String, Dev> = BTreeMap::new();
    let mut parts = Vec::new();
    for d in setup["devices"].as_array().unwrap() {
        let name = d["name"].as_str().unwrap().to_string();
        let account = d["account"].as_str().unwrap().to_string();
        let mut rng = bytes_rng(joined(d, &["ed25519_seed", "x25519_secret", "device_id"]));
        let identity = DeviceIdentity::generate(&mut rng);
        let id = DeviceId::generate(&mut rng);
        assert_eq!(rng.pos, rng.bytes.len());
        assert_eq!(
            identity.public().to_bytes().to_vec(),
            unhex(&d["public_identity"])
        );
        let list = held(&account);
        if d.get("revoked").is_some() {
            assert!(matches!(list.status(&id), DeviceStatus::Revoked { .. }));
        } else {
            let DeviceStatus::Active(entry) = list.status(&id) else {
                panic!("{name} not listed")
            };
            assert_eq!(entry.identity(), identity.public());
            let mut rng = bytes_rng(
                [
                    unhex(&d["signed_prekey"]["x25519_secret"]),
                    unhex(&d["last_resort_kem_prekey"]["mlkem_seed_d_z"]),
                ]
                .concat(),
            );
            let store = PrekeyStore::new(&mut rng, &identity);
            assert_eq!(rng.pos, rng.bytes.len());
            let bundle = store.bundle(&identity, None, None).unwrap();
            assert_eq!(bundle.to_bytes(), unhex(&d["bundle"]));
            let verified = bundle.verify().unwrap();
            assert_eq!(verified.signed_prekey().id(), d["signed_prekey"]["id"]);
            assert_eq!(
                verified.kem_prekey().id(),
                d["last_resort_kem_prekey"]["id"]
            );
            parts.push((name.clone(), identity, store, verified));
        }
        devs.insert(name, Dev { account, id });
    }
    let mut managers: BTreeMap<String, SessionManager> = BTreeMap::new();
    let bundles: Vec<(String, session_ratchet::prekey::PrekeyBundle)> = parts
        .iter()
        .map(|(n, _, _, b)| (n.clone(), b.bundle().clone()))
        .collect();
    for (name, identity, store, _) in parts {
        let own = devs[&name].account.clone();
        let mut m = SessionManager::new(identity, devs[&name].id, held(&own), store).unwrap();
        for other in lists.keys().filter(|a| **a != own) {
            m.add_contact(held(other)).unwrap();
        }
        for (peer, bundle) in bundles.iter().filter(|(p, _)| *p != name) {
            let p = &devs[peer];
            m.add_bundle(&keys[&p.account], &p.id, bundle.clone())
                .unwrap();
        }
        managers.insert(name, m);
    }
    let name_of = |k: &Ed25519PublicKey| keys.iter().find(|(_, v)| *v == k).unwrap().0.clone();
    let device_of = |id: &DeviceId| devs.iter().find(|(_, d)| d.id == *id).unwrap().0.clone();

    let mut snapshots: BTreeMap<String, BTreeMap<String, StoredDevice>> = BTreeMap::new();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for v in &all[1..] {
        let kind = v["kind"].as_str().unwrap();
        *counts.entry(kind.to_string()).or_default() += 1;
        let name = v["name"].as_str().unwrap();
        match kind {
            "fanout" | "heal" => {
                let sender = v["sender"].as_str().unwrap().to_string();
                let conversation = keys[v["conversation"].as_str().unwrap()];
                if kind == "heal" {
                    // The device restored from its state at the end of `backup_of`.
                    let backup = &snapshots[v["backup_of"].as_str().unwrap()][&sender];
                    let d = &v["restore_draws"];
                    let mut rng = bytes_rng(joined(
                        d,
                        &["signed_prekey_x25519_secret", "last_resort_mlkem_seed_d_z"],
                    ));
                    let restored = SessionManager::restore_from_backup(&mut rng, backup).unwrap();
                    assert_eq!(rng.pos, rng.bytes.len());
                    let bundle = restored.bundle().unwrap();
                    assert_eq!(bundle.to_bytes(), unhex(&v["restored_bundle"]));
                    let verified = bundle.verify().unwrap();
                    assert_eq!(
                        verified.signed_prekey().id(),
                        v["restored_signed_prekey_id"]
                    );
                    assert_eq!(
                        verified.kem_prekey().id(),
                        v["restored_last_resort_prekey_id"]
                    );
                    managers.insert(sender.clone(), restored);
                }
                let mut draws = Vec::new();
                for d in v["draws"].as_array().unwrap() {
                    match d["op"].as_str().unwrap() {
                        "initiate" => draws.extend(joined(
                            d,
                            &["ephemeral_secret", "mlkem_encaps_m", "ratchet_private_key"],
                        )),
                        "encrypt" => draws.extend(unhex(&d["draws"])),
                        "seal" => {
                            draws.extend(unhex(&d["ephemeral_secret"]));
                            for s in d["dummy_slots"].as_array().unwrap() {
                                draws.extend(unhex(s));
                            }
                        }
                        other => panic!("unknown op {other}"),
                    }
                }
                let mut rng = bytes_rng(draws);
                let now = v["now"].as_u64().unwrap();
                let m = managers.get_mut(&sender).unwrap();
                let out = if kind == "fanout" {
                    m.encrypt(&mut rng, &conversation, &unhex(&v["content"]), now)
                        .unwrap()
                } else {
                    m.heal(&mut rng, &conversation, now).unwrap().unwrap()
                };
                assert_eq!(
                    rng.pos,
                    rng.bytes.len(),
                    "{name}: every listed draw is used"
                );
                let envelope = unhex(&v["envelope"]);
                assert_eq!(out.envelopes, vec![envelope.clone()], "{name}");
                let env = Envelope::from_bytes(&envelope).unwrap();
                let recipients = v["recipients"].as_array().unwrap();
                assert_eq!(
                    out.sessions_started,
                    recipients
                        .iter()
                        .filter(|r| r["new_session"] == true)
                        .count()
                );
                for r in recipients {
                    let device = r["device"].as_str().unwrap();
                    let (acct, id) = (keys[r["account"].as_str().unwrap()], devs[device].id);
                    let payload = env.open(managers[device].identity()).unwrap();
                    assert_eq!(payload.to_vec(), unhex(&r["slot_payload"]));
                    let (header, message) = payload.split_at(ROUTING_LEN);
                    assert_eq!(header, unhex(&r["routing_header"]));
                    assert_eq!(message, unhex(&r["ratchet_message"]));
                    assert_eq!(associated_data(header, &acct, &id), unhex(&r["ad"]));
                    // §8.6.3 from the sender's lists and the session's values.
                    let own = &devs[&sender].account;
                    let conv_name = v["conversation"].as_str().unwrap();
                    assert_eq!(
                        header,
                        routing_header(
                            &keys[own],
                            &devs[&sender].id,
                            &conversation,
                            lists[own].1.version(),
                            lists[conv_name].1.version(),
                            r["session_created"].as_u64().unwrap(),
                            u8::from(r["session_heal"] == true),
                            if kind == "fanout" { 0x01 } else { 0x02 },
                        )
                    );
                    let m = &managers[&sender];
                    assert_eq!(
                        m.active_session(&acct, &id).unwrap().to_vec(),
                        unhex(&r["transcript_hash"])
                    );
                    let t = m.hazmat_last_encryption(&acct, &id).unwrap();
                    assert_eq!(t.header_key.to_vec(), unhex(&r["header_key"]));
                    assert_eq!(t.message_key.to_vec(), unhex(&r["message_key"]));
                    assert_eq!(t.body_key.to_vec(), unhex(&r["body_key"]));
                    assert_eq!(t.header.to_vec(), unhex(&r["header"]));
                    assert_eq!(t.body, unhex(&r["body"]));
                }
                let (sender_key, sender_id) = (keys[&devs[&sender].account], devs[&sender].id);
                for r in v["received"].as_array().unwrap() {
                    let device = r["device"].as_str().unwrap();
                    let m = managers.get_mut(device).unwrap();
                    let got = m.decrypt(&envelope).unwrap();
                    assert_eq!(name_of(&got.sender), r["sender"]);
                    assert_eq!(device_of(&got.sender_device), r["sender_device"]);
                    assert_eq!(name_of(&got.conversation), r["conversation"]);
                    assert_eq!(kind_byte(got.kind), r["content_kind"]);
                    assert_eq!(got.content, unhex(&r["content"]));
                    assert_eq!(got.new_session, r["new_session"]);
                    assert_eq!(got.sender_list_newer, r["sender_list_newer"]);
                    assert_eq!(got.recipient_list_outdated, r["recipient_list_outdated"]);
                    assert_eq!(
                        m.active_session(&sender_key, &sender_id).unwrap().to_vec(),
                        unhex(&r["active_transcript_hash"])
                    );
                    assert_eq!(
                        m.sessions_with(&sender_key, &sender_id) as u64,
                        r["sessions_held"].as_u64().unwrap()
                    );
                }
                for d in v["not_recipients"].as_array().unwrap() {
                    let m = managers.get_mut(d.as_str().unwrap()).unwrap();
                    assert_eq!(m.decrypt(&envelope), Err(SessionsError::NotARecipient));
                }
                snapshots.insert(
                    name.to_string(),
                    managers
                        .iter()
                        .map(|(n, m)| (n.clone(), m.to_stored()))
                        .collect(),
                );
            }
            "routing-error" => {
                let m = managers.get_mut(v["device"].as_str().unwrap()).unwrap();
                let envelope = unhex(&v["envelope"]);
                let opened = Envelope::from_bytes(&envelope).unwrap().open(m.identity());
                match v["slot_payload"].as_str() {
                    Some(_) => assert_eq!(opened.unwrap().to_vec(), unhex(&v["slot_payload"])),
                    None => assert!(opened.is_err()),
                }
                let before = m.to_stored();
                let e = m.decrypt(&envelope).unwrap_err();
                assert_eq!(class(&e), v["expected_error"], "{name}");
                assert_eq!(m.to_stored(), before, "{name}: state changed");
            }
            other => panic!("unknown kind {other}"),
        }
    }
    let want: BTreeMap<String, usize> = [("fanout", 2), ("heal", 1), ("routing-error", 22)]
        .into_iter()
        .map(|(k, n)| (k.to_string(), n))
        .collect();
    assert_eq!(counts, want);
}

#[test]
fn stored_prekeys_vectors_replay_through_the_public_api() {
    use session_ratchet::identity::DeviceIdentity;
    use session_ratchet::prekey::{PrekeyStore, StoredPrekeys};
    use session_ratchet::ratchet::StorageKey;
    use vectors::stored_prekeys::store_class;

    let all = load("stored-prekeys");
    let mut counts = std::collections::BTreeMap::new();
    for v in &all {
        let kind = v["kind"].as_str().unwrap();
        *counts.entry(kind.to_string()).or_insert(0) += 1;
        match kind {
            "stored-prekeys" => {
                let identity = DeviceIdentity::generate(&mut replay(&v["identity_draws"]));
                assert_eq!(
                    identity.public().to_bytes().to_vec(),
                    unhex(&v["public_identity"])
                );
                let bytes = unhex(&v["stored"]);
                let store = PrekeyStore::from_stored(&StoredPrekeys::from_bytes(&bytes)).unwrap();
                assert_eq!(store.to_stored().as_bytes(), bytes.as_slice());
                let bundle = store.bundle(&identity, None, None).unwrap();
                assert_eq!(bundle.to_bytes(), unhex(&v["bundle"]));
                bundle.verify_for(identity.public()).unwrap();
                let ids = |x: Vec<u32>| Value::from(x);
                assert_eq!(ids(store.one_time_prekey_ids()), v["one_time_prekey_ids"]);
                assert_eq!(
                    ids(store.one_time_kem_prekey_ids()),
                    v["one_time_kem_prekey_ids"]
                );
            }
            "stored-prekeys-encrypted" => {
                let of = all.iter().find(|x| x["name"] == v["of"]).unwrap();
                let key = StorageKey::from_bytes(arr(&v["storage_key"]));
                let plain = StoredPrekeys::decrypt(&unhex(&v["encrypted"]), &key).unwrap();
                assert_eq!(plain.as_bytes(), unhex(&of["stored"]).as_slice());
                let mut rng = replay(&v["nonce"]);
                assert_eq!(plain.encrypt(&mut rng, &key), unhex(&v["encrypted"]));
                assert_eq!(rng.pos, rng.bytes.len());
            }
            "stored-prekeys-error" => {
                let input = unhex(&v["input"]);
                let err = if v["storage_key"].is_null() {
                    PrekeyStore::from_stored(&StoredPrekeys::from_bytes(&input))
                        .map(|_| ())
                        .unwrap_err()
                } else {
                    let key = StorageKey::from_bytes(arr(&v["storage_key"]));
                    StoredPrekeys::decrypt(&input, &key)
                        .map(|_| ())
                        .unwrap_err()
                };
                assert_eq!(store_class(&err), v["expected_error"], "{}", v["name"]);
            }
            other => panic!("unknown kind {other}"),
        }
    }
    let want: std::collections::BTreeMap<String, i32> = [
        ("stored-prekeys", 2),
        ("stored-prekeys-encrypted", 1),
        ("stored-prekeys-error", 20),
    ]
    .into_iter()
    .map(|(k, n)| (k.to_string(), n))
    .collect();
    assert_eq!(counts, want);
}

#[test]
fn records_vectors_replay_through_the_public_api() {
    use rand_chacha::ChaCha20Rng;
    use rand_chacha::rand_core::SeedableRng;
    use session_ratchet::client::{
        ClientError, Device, MemoryStore, RecordError, RecordKind, hazmat_open_record,
        hazmat_record_key, hazmat_record_keys, hazmat_record_name, hazmat_seal_record,
    };
    use session_ratchet::ratchet::StorageKey;
    use vectors::records::{kind_of, record_class};

    let key = |v: &Value| StorageKey::from_bytes(arr(v));
    let kind = |v: &Value| kind_of(u8::try_from(v.as_u64().unwrap()).unwrap());
    let all = load("records");
    let mut counts = std::collections::BTreeMap::new();
    for v in &all {
        let vkind = v["kind"].as_str().unwrap();
        *counts.entry(vkind.to_string()).or_insert(0) += 1;
        match vkind {
            "record-keys" => {
                let (k_rec, k_name, check, k_log) = hazmat_record_keys(&key(&v["storage_key"]));
                assert_eq!(k_rec.to_vec(), unhex(&v["k_rec"]));
                assert_eq!(k_name.to_vec(), unhex(&v["k_name"]));
                assert_eq!(check.to_vec(), unhex(&v["check"]));
                assert_eq!(k_log.to_vec(), unhex(&v["k_log"]));
            }
            "record-seal" => {
                let sk = key(&v["storage_key"]);
                let owner = arr(&v["owner"]);
                let k = kind(&v["record_kind"]);
                let (a, d) = (arr(&v["account"]), arr(&v["device"]));
                let g = v["generation"].as_u64().unwrap();
                let plain = unhex(&v["plain"]);
                assert_eq!(
                    hazmat_record_name(k, &a, &d).to_vec(),
                    unhex(&v["record_name"])
                );
                assert_eq!(hazmat_record_key(&sk, k, &a, &d), unhex(&v["key"]));
                let value =
                    hazmat_seal_record(&sk, &owner, k, &a, &d, g, &arr(&v["nonce"]), &plain);
                assert_eq!(value, unhex(&v["value"]), "{}", v["name"]);
                assert_eq!(
                    hazmat_open_record(&sk, &owner, k, &a, &d, &value),
                    Ok((g, plain))
                );
                // The owner is bound into every record's AD but the head's.
                let mut elsewhere = owner;
                elsewhere[0] ^= 1;
                assert_eq!(
                    hazmat_open_record(&sk, &elsewhere, k, &a, &d, &value).is_ok(),
                    k == RecordKind::Head,
                    "{}",
                    v["name"]
                );
            }
            "device-store" => replay_device_store(v),
            "record-open-error" => {
                let k = kind(&v["record_kind"]);
                let (a, d) = (arr(&v["account"]), arr(&v["device"]));
                let value = match v.get("value") {
                    Some(x) => unhex(x),
                    None => {
                        let mut b = unhex(&v["value_prefix"]);
                        b.resize(
                            v["value_zero_padded_to_length"].as_u64().unwrap() as usize,
                            0,
                        );
                        b
                    }
                };
                let err = hazmat_open_record(
                    &key(&v["storage_key"]),
                    &arr(&v["owner"]),
                    k,
                    &a,
                    &d,
                    &value,
                )
                .unwrap_err();
                assert_eq!(record_class(&err), v["expected_error"], "{}", v["name"]);
                if let RecordError::Corrupted { record, .. }
                | RecordError::NewerVersion { record, .. } = err
                {
                    assert_eq!(record, k, "{}", v["name"]);
                }
                if err == RecordError::WrongKey {
                    assert_eq!(k, RecordKind::Head, "{}: WrongKey is the head's", v["name"]);
                }
            }
            other => panic!("unknown kind {other}"),
        }
    }
    let want: std::collections::BTreeMap<String, i32> = [
        ("record-keys", 2),
        ("record-seal", 7),
        ("device-store", 1),
        ("record-open-error", 41),
    ]
    .into_iter()
    .map(|(k, n)| (k.to_string(), n))
    .collect();
    assert_eq!(counts, want);

    /// The published store: every record opens under its name (for the
    /// head's device id) to its generation and content; every anchored
    /// record is at its anchor; together they are a store the crate opens
    /// as a device at the published generation. Then each anchored record,
    /// sealed again one generation older, is `RecordRolledBack` (and one
    /// generation newer, with the head unmoved, `Inconsistent`).
    fn replay_device_store(v: &Value) {
        let kind = |v: &Value| kind_of(u8::try_from(v.as_u64().unwrap()).unwrap());
        let sk = StorageKey::from_bytes(arr(&v["storage_key"]));
        let generation = v["generation"].as_u64().unwrap();
        let records = v["records"].as_array().unwrap();
        let head_rec = records.iter().find(|r| r["record_kind"] == 1).unwrap();
        let zero = [0u8; 32];
        let (hg, head_plain) = hazmat_open_record(
            &sk,
            &zero,
            RecordKind::Head,
            &zero,
            &zero,
            &unhex(&head_rec["value"]),
        )
        .unwrap();
        assert_eq!(hg, generation);
        let owner: [u8; 32] = head_plain[2..34].try_into().unwrap();
        let own_account: [u8; 32] = head_plain[34..66].try_into().unwrap();
        let be64 = |b: &[u8]| u64::from_be_bytes(b[..8].try_into().unwrap());
        let head = &head_rec["fields"];
        let anchors = &head["anchors"];
        let mut store = MemoryStore::new();
        let mut contacts = None;
        // (name, plain, generation, store key) of every record.
        let mut opened = Vec::new();
        for r in records {
            let name = unhex(&r["record_name"]);
            let k = kind(&r["record_kind"]);
            assert_eq!(k as u8, name[0]);
            let (a, d): ([u8; 32], [u8; 32]) = (
                name[1..33].try_into().unwrap(),
                name[33..].try_into().unwrap(),
            );
            let store_key = unhex(&r["key"]);
            assert_eq!(hazmat_record_key(&sk, k, &a, &d), store_key);
            let value = unhex(&r["value"]);
            let (g, plain) = hazmat_open_record(&sk, &owner, k, &a, &d, &value).unwrap();
            assert_eq!(g, r["generation"].as_u64().unwrap());
            assert!(g <= generation);
            assert_eq!(plain, unhex(&r["plain"]));
            if k == RecordKind::ContactIndex {
                contacts = Some(r["fields"]["contacts"].clone());
            }
            store.overwrite(&store_key, Some(value));
            opened.push((k, a, d, plain, g, store_key));
        }
        let find = |k: RecordKind, a: &[u8; 32]| {
            opened
                .iter()
                .find(|(kk, aa, ..)| *kk == k && (*aa == *a || k != RecordKind::Peer))
                .unwrap()
        };
        // The head's anchors, decoded and in the plain content, are the
        // generations their records were written at.
        let head_anchored = [
            (RecordKind::Identity, zero, "identity"),
            (RecordKind::Account, zero, "account"),
            (RecordKind::Prekeys, zero, "prekeys"),
            (RecordKind::ContactIndex, zero, "contact_index"),
            (RecordKind::Peer, own_account, "own_peer"),
        ];
        for (i, (k, a, field)) in head_anchored.iter().enumerate() {
            let anchor = anchors[*field].as_u64().unwrap();
            assert_eq!(be64(&head_plain[83 + 8 * i..]), anchor, "{field}");
            assert_eq!(find(*k, a).4, anchor, "{field}");
        }
        assert_eq!(head_plain.len(), 123);
        // The index's generation of every contact's peer record.
        let contacts = contacts.unwrap();
        let index = &find(RecordKind::ContactIndex, &zero).3;
        let contacts = contacts.as_array().unwrap();
        assert_eq!(index.len(), 4 + 40 * contacts.len());
        for (c, entry) in contacts.iter().zip(index[4..].chunks(40)) {
            let account: [u8; 32] = arr(&c["account_key"]);
            assert_eq!(entry[..32], account);
            let anchor = c["peer_generation"].as_u64().unwrap();
            assert_eq!(be64(&entry[32..]), anchor);
            assert_eq!(find(RecordKind::Peer, &account).4, anchor);
        }

        let rng = || Box::new(ChaCha20Rng::from_seed([0; 32]));
        let device = Device::open(Box::new(store.clone()), &sk, rng(), generation).unwrap();
        assert_eq!(device.generation(), generation);
        assert_eq!(
            device.device_id().as_bytes().to_vec(),
            unhex(&head["device_id"])
        );
        assert_eq!(
            device.account_key().to_bytes().to_vec(),
            unhex(&head["account_key"])
        );
        assert_eq!(device.holds_account_key(), head["account_held"] == true);
        let held: Vec<Value> = device
            .contacts()
            .iter()
            .map(|c| Value::from(hex::encode(c.to_bytes())))
            .collect();
        let listed: Vec<Value> = contacts.iter().map(|c| c["account_key"].clone()).collect();
        assert_eq!(held, listed);

        // One anchored record alone one generation older (rolled back) or
        // newer (not of this state: the head has not moved).
        let mut targets: Vec<(RecordKind, [u8; 32])> =
            head_anchored.iter().map(|(k, a, _)| (*k, *a)).collect();
        targets.extend(
            contacts
                .iter()
                .map(|c| (RecordKind::Peer, arr(&c["account_key"]))),
        );
        for (k, a) in targets {
            let (_, _, d, plain, g, store_key) = find(k, &a);
            for (at, rolled_back) in [(*g - 1, true), (*g + 1, false)] {
                let mut edited = store.clone();
                let value = hazmat_seal_record(&sk, &owner, k, &a, d, at, &[0x5A; 24], plain);
                edited.overwrite(store_key, Some(value));
                let result =
                    Device::open(Box::new(edited), &sk, rng(), generation).and_then(|mut dev| {
                        // A contact's peer record loads when it is needed
                        // (any device id: loading is what is checked).
                        let contact = device.contacts().into_iter().find(|c| c.to_bytes() == a);
                        match contact {
                            Some(c) => dev.active_session(&c, &device.device_id()).map(|_| ()),
                            None => Ok(()),
                        }
                    });
                let err = match result {
                    Err(ClientError::Records(e)) => e,
                    other => panic!("{k:?} at {at}: {:?}", other.map(|_| ())),
                };
                if rolled_back {
                    assert_eq!(
                        err,
                        RecordError::RecordRolledBack {
                            record: k,
                            found: at,
                            expected: *g
                        }
                    );
                } else {
                    assert_eq!(record_class(&err), "Corrupted/Inconsistent", "{k:?}");
                }
            }
        }
    }
}
