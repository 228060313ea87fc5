//! Vectors for the client records at rest (spec §10.3): the keys derived
//! from a storage key, one sealed record of every kind, a whole device's
//! store after a short scripted life (with the anchors of §10.4), and every
//! failure of the open order.

use super::{file, hex};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use serde_json::{Value, json};
use session_ratchet::account::{Account, StoredAccount};
use session_ratchet::client::{
    Corruption, Device, DeviceInfo, MemoryStore, RecordError, RecordKind, hazmat_open_record,
    hazmat_record_key, hazmat_record_keys, hazmat_record_name, hazmat_seal_record,
};
use session_ratchet::device::list::SignedDeviceList;
use session_ratchet::identity::{DeviceIdentity, StoredIdentity};
use session_ratchet::prekey::{PrekeyStore, StoredPrekeys};
use session_ratchet::ratchet::StorageKey;
use std::sync::{Arc, Mutex};

/// The storage key of the scripted device (and of every seal vector).
pub const STORAGE_KEY: [u8; 32] = [0x3C; 32];
/// Another client's storage key: the records do not open under it.
pub const OTHER_STORAGE_KEY: [u8; 32] = [0xC3; 32];
/// A device id no device of the scripted life has: the owner of a record
/// of another store under the same storage key.
pub const OTHER_OWNER: [u8; 32] = [0x77; 32];
/// Largest record accepted (spec §10.3 step 1: 4 MiB).
pub const MAX_RECORD_LEN: usize = 4 << 20;
/// The start of the scripted life (seconds).
const T0: u64 = 1_700_000_000;

/// Every kind, in the order of the §10.3 table.
pub const KINDS: [RecordKind; 7] = [
    RecordKind::Head,
    RecordKind::Identity,
    RecordKind::Account,
    RecordKind::Prekeys,
    RecordKind::ContactIndex,
    RecordKind::Peer,
    RecordKind::Sessions,
];

pub fn kind_of(byte: u8) -> RecordKind {
    *KINDS.iter().find(|k| **k as u8 == byte).unwrap()
}

/// The error path of a record error: its `RecordError` variant, then for
/// `Corrupted` the reason (and for `Malformed` the §6.5 class). The fields
/// `record` and `version` are not part of it.
pub fn record_class(e: &RecordError) -> String {
    match e {
        RecordError::Corrupted {
            reason: Corruption::Malformed(w),
            ..
        } => format!("Corrupted/Malformed/{}", super::class(w)),
        RecordError::Corrupted { reason, .. } => format!("Corrupted/{}", super::class(reason)),
        other => super::class(other),
    }
}

/// One record of the scripted device's store, opened.
pub struct Stored {
    pub kind: RecordKind,
    pub account: [u8; 32],
    pub device: [u8; 32],
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub generation: u64,
    pub plain: Vec<u8>,
}

/// The scripted device (Alice) after its life, and the names it needs.
pub struct Life {
    pub steps: Vec<String>,
    pub generation: u64,
    /// Every record of Alice's store, in key order.
    pub records: Vec<Stored>,
    pub alice: [u8; 32],
    /// Alice's device id: the owner every record but the head binds.
    pub alice_device: [u8; 32],
    pub bob: [u8; 32],
    pub bob_device: [u8; 32],
    pub carol: [u8; 32],
    pub carol_device: [u8; 32],
}

impl Life {
    pub fn find(&self, kind: RecordKind, account: &[u8; 32]) -> &Stored {
        let named = matches!(kind, RecordKind::Peer | RecordKind::Sessions);
        self.records
            .iter()
            .find(|r| r.kind == kind && (!named || r.account == *account))
            .unwrap()
    }
}

fn rng(n: u8) -> Box<ChaCha20Rng> {
    Box::new(ChaCha20Rng::from_seed([n; 32]))
}

fn send(from: &mut Device, to: &mut Device, text: &[u8], now: u64) {
    let out = from.send(&to.account_key(), text, now).unwrap();
    assert_eq!(out.len(), 1);
    let got = to.receive(&out[0].bytes).unwrap();
    assert_eq!(got.content, text);
}

/// Alice creates an account (storage key [`STORAGE_KEY`]); Bob and Carol
/// (each an account with one device, over stores of their own) become her
/// contacts; five messages. Every kind of record then exists in her store.
pub fn life() -> Life {
    let store = Arc::new(Mutex::new(MemoryStore::new()));
    let key = StorageKey::from_bytes(STORAGE_KEY);
    let create = |store: Box<dyn session_ratchet::client::RecordStore>, k: u8, r: u8, name| {
        Device::create_account(
            store,
            &StorageKey::from_bytes([k; 32]),
            rng(r),
            DeviceInfo::new(name),
            T0,
        )
        .unwrap()
        .0
    };
    let mut alice = Device::create_account(
        Box::new(store.clone()),
        &key,
        rng(0xA1),
        DeviceInfo::new("phone"),
        T0,
    )
    .unwrap()
    .0;
    let mut bob = create(Box::new(MemoryStore::new()), 0xB0, 0xB1, "laptop");
    let mut carol = create(Box::new(MemoryStore::new()), 0xC0, 0xC1, "tablet");
    let (ra, rb, rc) = (
        alice.prekey_record().unwrap(),
        bob.prekey_record().unwrap(),
        carol.prekey_record().unwrap(),
    );
    alice
        .add_contact(&bob.session_id(), &bob.device_list(), Some(&rb))
        .unwrap();
    alice
        .add_contact(&carol.session_id(), &carol.device_list(), Some(&rc))
        .unwrap();
    bob.add_contact(&alice.session_id(), &alice.device_list(), Some(&ra))
        .unwrap();
    carol
        .add_contact(&alice.session_id(), &alice.device_list(), Some(&ra))
        .unwrap();
    let messages: [(&str, &str, &[u8], u64); 5] = [
        ("alice", "bob", b"hello Bob", T0 + 10),
        ("bob", "alice", b"hi Alice", T0 + 20),
        ("carol", "alice", b"hello from Carol", T0 + 30),
        ("alice", "carol", b"hi Carol", T0 + 40),
        ("alice", "bob", b"see you", T0 + 50),
    ];
    for (from, to, text, now) in messages {
        match (from, to) {
            ("alice", "bob") => send(&mut alice, &mut bob, text, now),
            ("bob", "alice") => send(&mut bob, &mut alice, text, now),
            ("carol", "alice") => send(&mut carol, &mut alice, text, now),
            ("alice", "carol") => send(&mut alice, &mut carol, text, now),
            _ => unreachable!(),
        }
    }
    let mut steps = vec![
        format!(
            "Alice: Device::create_account, storage key 3c…3c, rng ChaCha20Rng::from_seed(a1…a1), \
             description \"phone\", now {T0}"
        ),
        format!(
            "Bob: create_account over a store of his own, storage key b0…b0, rng seed b1…b1, \
             \"laptop\", now {T0}; Carol likewise with c0…c0, c1…c1, \"tablet\""
        ),
        "Alice adds Bob, then Carol (device list and prekey record of each); Bob and Carol add Alice"
            .to_string(),
    ];
    for (from, to, text, now) in messages {
        steps.push(format!(
            "{from} sends {:?} to {to} at {now}; {to} receives it",
            String::from_utf8_lossy(text)
        ));
    }

    let (a, b, c) = (
        alice.account_key().to_bytes(),
        bob.account_key().to_bytes(),
        carol.account_key().to_bytes(),
    );
    let (ad, bd, cd) = (
        *alice.device_id().as_bytes(),
        *bob.device_id().as_bytes(),
        *carol.device_id().as_bytes(),
    );
    let zero = [0u8; 32];
    let mut names = vec![
        (RecordKind::Head, zero, zero),
        (RecordKind::Identity, zero, zero),
        (RecordKind::Account, zero, zero),
        (RecordKind::Prekeys, zero, zero),
        (RecordKind::ContactIndex, zero, zero),
    ];
    for acct in [a, b, c] {
        names.push((RecordKind::Peer, acct, zero));
    }
    names.push((RecordKind::Sessions, b, bd));
    names.push((RecordKind::Sessions, c, cd));
    let records: Vec<Stored> = store
        .lock()
        .unwrap()
        .records()
        .map(|(k, v)| {
            let &(kind, account, device) = names
                .iter()
                .find(|(kind, acct, dev)| hazmat_record_key(&key, *kind, acct, dev) == k)
                .expect("every record has a known name");
            let (generation, plain) =
                hazmat_open_record(&key, &ad, kind, &account, &device, v).unwrap();
            Stored {
                kind,
                account,
                device,
                key: k.to_vec(),
                value: v.to_vec(),
                generation,
                plain,
            }
        })
        .collect();
    assert_eq!(records.len(), names.len(), "every kind exists");
    Life {
        steps,
        generation: alice.generation(),
        records,
        alice: a,
        alice_device: ad,
        bob: b,
        bob_device: bd,
        carol: c,
        carol_device: cd,
    }
}

fn be64(b: &[u8]) -> u64 {
    u64::from_be_bytes(b[..8].try_into().unwrap())
}

fn be32(b: &[u8]) -> usize {
    u32::from_be_bytes(b[..4].try_into().unwrap()) as usize
}

/// The decoded fields of a plain content (spec §10.3.1), as published.
fn fields(r: &Stored, identity: &DeviceIdentity) -> Value {
    let p = &r.plain;
    assert_eq!(p[0], 0x01);
    match r.kind {
        RecordKind::Head => {
            assert_eq!((p[1], p.len()), (0x1A, 123));
            json!({
                "device_id": hex(&p[2..34]),
                "account_key": hex(&p[34..66]),
                "account_held": p[66] == 1,
                "signed_prekey_rotated_at": be64(&p[67..]),
                "last_resort_prekey_rotated_at": be64(&p[75..]),
                "anchors": {
                    "identity": be64(&p[83..]),
                    "account": be64(&p[91..]),
                    "prekeys": be64(&p[99..]),
                    "contact_index": be64(&p[107..]),
                    "own_peer": be64(&p[115..]),
                },
            })
        }
        RecordKind::Identity => {
            let id = DeviceIdentity::from_stored(&StoredIdentity::from_bytes(p)).unwrap();
            json!({
                "ed25519_seed": hex(&p[2..34]),
                "x25519_secret": hex(&p[34..66]),
                "public_identity": hex(id.public().to_bytes()),
            })
        }
        RecordKind::Account => {
            let account = Account::from_stored(&StoredAccount::from_bytes(p)).unwrap();
            json!({
                "ed25519_seed": hex(&p[2..34]),
                "account_key": hex(account.public_key().to_bytes()),
            })
        }
        RecordKind::Prekeys => {
            let store = PrekeyStore::from_stored(&StoredPrekeys::from_bytes(p)).unwrap();
            json!({ "bundle": hex(store.bundle(identity, None, None).unwrap().to_bytes()) })
        }
        RecordKind::ContactIndex => {
            let n = usize::from(u16::from_be_bytes([p[2], p[3]]));
            assert_eq!(p.len(), 4 + 40 * n);
            let contacts: Vec<Value> = p[4..]
                .chunks(40)
                .map(|c| json!({ "account_key": hex(&c[..32]), "peer_generation": be64(&c[32..]) }))
                .collect();
            json!({ "contacts": contacts })
        }
        RecordKind::Peer => {
            assert_eq!(p[1], 0x17);
            let n = be32(&p[2..]);
            let list = SignedDeviceList::from_bytes(&p[6..6 + n]).unwrap();
            let mut at = 6 + n;
            let bundles = usize::from(p[at]);
            at += 1;
            let mut ids = Vec::new();
            for _ in 0..bundles {
                ids.push(hex(&p[at..at + 32]));
                at += 32;
                at += 4 + be32(&p[at..]);
            }
            assert_eq!(at, p.len());
            let devices: Vec<Value> = list
                .devices()
                .iter()
                .map(|d| hex(d.id().as_bytes()))
                .collect();
            json!({
                "list_version": list.version(),
                "devices": devices,
                "bundle_devices": ids,
            })
        }
        RecordKind::Sessions => {
            assert_eq!(p[1], 0x18);
            let latest = be64(&p[2..]);
            let (active, archived) = (p[10], p[11]);
            let mut at = 12;
            let mut entries = Vec::new();
            for _ in 0..usize::from(active) + usize::from(archived) {
                let created = be64(&p[at..]);
                let flags = p[at + 8];
                entries.push(json!({
                    "created": created,
                    "stale": flags & 1 != 0,
                    "heal": flags & 2 != 0,
                }));
                at += 9;
                at += 4 + be32(&p[at..]);
            }
            assert_eq!(at, p.len());
            json!({
                "latest": latest,
                "active": active == 1,
                "archived": archived,
                "entries": entries,
            })
        }
        _ => unreachable!(),
    }
}

fn key_vector(name: &str, storage_key: [u8; 32]) -> Value {
    let (k_rec, k_name, check, k_log) = hazmat_record_keys(&StorageKey::from_bytes(storage_key));
    json!({
        "name": name, "kind": "record-keys",
        "storage_key": hex(storage_key),
        "k_rec": hex(k_rec), "k_name": hex(k_name), "check": hex(check), "k_log": hex(k_log),
    })
}

/// Generations of the seal vectors, one per kind: small, above 2^32, and
/// 2^53 - 1 (the largest every JSON reader holds exactly).
const SEAL_GENERATIONS: [u64; 7] = [
    1,
    2,
    0x100,
    0x1_0000_0000,
    0x0102_0304_0506,
    7,
    (1 << 53) - 1,
];

fn seal_vector(i: usize, r: &Stored, owner: &[u8; 32]) -> Value {
    let key = StorageKey::from_bytes(STORAGE_KEY);
    let rng_seed = [0x50 + i as u8; 32];
    let mut nonce = [0u8; 24];
    ChaCha20Rng::from_seed(rng_seed).fill_bytes(&mut nonce);
    let generation = SEAL_GENERATIONS[i];
    let value = hazmat_seal_record(
        &key, owner, r.kind, &r.account, &r.device, generation, &nonce, &r.plain,
    );
    let opened = hazmat_open_record(&key, owner, r.kind, &r.account, &r.device, &value).unwrap();
    assert_eq!(opened, (generation, r.plain.clone()));
    // The head's AD does not bind the owner; every other record's does.
    let elsewhere = hazmat_open_record(&key, &OTHER_OWNER, r.kind, &r.account, &r.device, &value);
    assert_eq!(elsewhere.is_ok(), r.kind == RecordKind::Head);
    json!({
        "name": format!("seal {:?}", r.kind),
        "kind": "record-seal",
        "storage_key": hex(STORAGE_KEY),
        "owner": hex(owner),
        "record_kind": r.kind as u8,
        "account": hex(r.account),
        "device": hex(r.device),
        "generation": generation,
        "rng_seed": hex(rng_seed),
        "nonce": hex(nonce),
        "plain": hex(&r.plain),
        "record_name": hex(hazmat_record_name(r.kind, &r.account, &r.device)),
        "key": hex(hazmat_record_key(&key, r.kind, &r.account, &r.device)),
        "value": hex(&value),
    })
}

fn store_vector(life: &Life) -> Value {
    let identity = life
        .records
        .iter()
        .find(|r| r.kind == RecordKind::Identity)
        .map(|r| DeviceIdentity::from_stored(&StoredIdentity::from_bytes(&r.plain)).unwrap())
        .unwrap();
    // Every anchored record is at its anchor (spec §10.4): the head's for
    // the identity, account, prekeys, contact index and own peer records,
    // the contact index's for every contact's peer record.
    let zero = [0u8; 32];
    let head = &life.find(RecordKind::Head, &zero).plain;
    assert_eq!(head[2..34], life.alice_device);
    let anchored = [
        (RecordKind::Identity, zero),
        (RecordKind::Account, zero),
        (RecordKind::Prekeys, zero),
        (RecordKind::ContactIndex, zero),
        (RecordKind::Peer, life.alice),
    ];
    for (i, (kind, account)) in anchored.iter().enumerate() {
        let anchor = be64(&head[83 + 8 * i..]);
        assert_eq!(life.find(*kind, account).generation, anchor, "{kind:?}");
    }
    let index = &life.find(RecordKind::ContactIndex, &zero).plain;
    for entry in index[4..].chunks(40) {
        let account: [u8; 32] = entry[..32].try_into().unwrap();
        let peer = life.find(RecordKind::Peer, &account);
        assert_eq!(peer.generation, be64(&entry[32..]));
    }
    let records: Vec<Value> = life
        .records
        .iter()
        .map(|r| {
            assert!(r.generation <= life.generation);
            json!({
                "key": hex(&r.key),
                "value": hex(&r.value),
                "record_kind": r.kind as u8,
                "record_name": hex(hazmat_record_name(r.kind, &r.account, &r.device)),
                "generation": r.generation,
                "plain": hex(&r.plain),
                "fields": fields(r, &identity),
            })
        })
        .collect();
    json!({
        "name": "Alice's store after her scripted life",
        "kind": "device-store",
        "storage_key": hex(STORAGE_KEY),
        "life": life.steps,
        "generation": life.generation,
        "records": records,
    })
}

/// One negative vector: `value` opened as `kind ‖ account ‖ device` of
/// the device `owner`.
struct Open<'a> {
    name: &'a str,
    storage_key: [u8; 32],
    owner: [u8; 32],
    kind: RecordKind,
    account: [u8; 32],
    device: [u8; 32],
    value: Vec<u8>,
    /// Zero bytes appended up to this length (published as a length).
    pad_to: Option<usize>,
}

fn open_vector(o: Open<'_>) -> Value {
    let mut full = o.value.clone();
    if let Some(n) = o.pad_to {
        full.resize(n, 0);
    }
    let err = hazmat_open_record(
        &StorageKey::from_bytes(o.storage_key),
        &o.owner,
        o.kind,
        &o.account,
        &o.device,
        &full,
    )
    .unwrap_err();
    match err {
        RecordError::Corrupted { record, .. } | RecordError::NewerVersion { record, .. } => {
            assert_eq!(record, o.kind, "{}", o.name);
        }
        _ => {}
    }
    let mut v = json!({
        "name": o.name,
        "kind": "record-open-error",
        "storage_key": hex(o.storage_key),
        "owner": hex(o.owner),
        "record_kind": o.kind as u8,
        "account": hex(o.account),
        "device": hex(o.device),
    });
    match o.pad_to {
        Some(n) => {
            v["value_prefix"] = hex(&o.value);
            v["value_zero_padded_to_length"] = json!(n);
        }
        None => v["value"] = hex(&o.value),
    }
    v["expected_error"] = json!(record_class(&err));
    v
}

fn with(bytes: &[u8], at: usize, f: impl Fn(u8) -> u8) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out[at] = f(out[at]);
    out
}

/// The negative vectors, one per failure of the §10.3 open order (and the
/// order between them). Byte-level defects are made on the account record
/// (small, its name has no account or device); the type, kind and move
/// defects on Bob's session set and peer record; the defects that only the
/// head reports as they are (`WrongKey`) on the head. Every vector opens
/// for Alice's device id as the owner but the one of another store.
fn errors(life: &Life) -> Vec<Value> {
    let (sk, other) = (STORAGE_KEY, OTHER_STORAGE_KEY);
    let zero = [0u8; 32];
    let s = &life.find(RecordKind::Account, &zero).value;
    let set = &life.find(RecordKind::Sessions, &life.bob).value;
    let peer = &life.find(RecordKind::Peer, &life.bob).value;
    let identity = &life.find(RecordKind::Identity, &zero).value;
    let head = &life.find(RecordKind::Head, &zero).value;
    let at = |name, storage_key, value: Vec<u8>| Open {
        name,
        storage_key,
        owner: life.alice_device,
        kind: RecordKind::Account,
        account: zero,
        device: zero,
        value,
        pad_to: None,
    };
    let as_head = |name, storage_key, value: Vec<u8>| Open {
        kind: RecordKind::Head,
        ..at(name, storage_key, value)
    };
    let as_set = |name, storage_key, value: Vec<u8>| Open {
        kind: RecordKind::Sessions,
        account: life.bob,
        device: life.bob_device,
        ..at(name, storage_key, value)
    };
    let padded = |name, value: Vec<u8>, n| Open {
        pad_to: Some(n),
        ..at(name, sk, value)
    };
    let wrong_type = with(s, 1, |_| 0x18);
    // Bob's session set as another device's store under the same storage
    // key holds it: sealed for another owner (with a nonce of its own).
    let mut nonce = [0u8; 24];
    ChaCha20Rng::from_seed([0x60; 32]).fill_bytes(&mut nonce);
    let set_plain = &life.find(RecordKind::Sessions, &life.bob).plain;
    let foreign_set = hazmat_seal_record(
        &StorageKey::from_bytes(sk),
        &OTHER_OWNER,
        RecordKind::Sessions,
        &life.bob,
        &life.bob_device,
        life.find(RecordKind::Sessions, &life.bob).generation,
        &nonce,
        set_plain,
    );
    let list = vec![
        // 1. Length.
        padded("4 MiB + 1 bytes: too long", s.clone(), MAX_RECORD_LEN + 1),
        padded(
            "4 MiB + 1 bytes starting with version 0x02: the length is checked first",
            vec![0x02],
            MAX_RECORD_LEN + 1,
        ),
        padded(
            "exactly 4 MiB: not too long, the zero bytes do not authenticate",
            s.clone(),
            MAX_RECORD_LEN,
        ),
        // 2. Empty.
        at("empty", sk, vec![]),
        // 3. Version.
        at("version 0x02", sk, with(s, 0, |_| 0x02)),
        at("version 0x00", sk, with(s, 0, |_| 0x00)),
        at(
            "version byte 0x02 alone: the version is checked before the length",
            sk,
            vec![0x02],
        ),
        at(
            "version byte 0x00 alone: the version is checked before the length",
            sk,
            vec![0x00],
        ),
        as_head(
            "the head with version 0x00 under another storage key: the version is checked \
             before the key",
            other,
            with(head, 0, |_| 0x00),
        ),
        // 4. The 51 fixed bytes.
        at("version byte only", sk, s[..1].to_vec()),
        at(
            "50 bytes: one short of the fixed bytes",
            sk,
            s[..50].to_vec(),
        ),
        at(
            "10 bytes with type 0xff: the length is checked before the type",
            sk,
            with(&s[..10], 1, |_| 0xFF),
        ),
        // 5. Type and kind.
        at(
            "type 0x18 (a plain session set's) instead of 0x19",
            sk,
            wrong_type.clone(),
        ),
        as_set(
            "kind byte 0x06 under a session-set name",
            sk,
            with(set, 2, |_| RecordKind::Peer as u8),
        ),
        as_set(
            "Bob's peer record opened under his session-set name",
            sk,
            peer.clone(),
        ),
        at(
            "the identity record opened under the account name",
            sk,
            identity.clone(),
        ),
        at(
            "another type under another storage key: the type is checked before the key",
            other,
            wrong_type,
        ),
        as_head(
            "the head with type 0x18 under another storage key: the type is checked before \
             the key",
            other,
            with(head, 1, |_| 0x18),
        ),
        // 6. The tag.
        at("the 51 fixed bytes alone", sk, s[..51].to_vec()),
        at("15 bytes after the fixed bytes", sk, s[..66].to_vec()),
        at(
            "15 bytes after the fixed bytes under another storage key: the length is checked \
             before the key",
            other,
            s[..66].to_vec(),
        ),
        as_head(
            "the head cut to 15 bytes after the fixed bytes under another storage key: the \
             length is checked before the key",
            other,
            head[..66].to_vec(),
        ),
        // 7. The key check: WrongKey for the head only.
        as_head("the head under another storage key", other, head.clone()),
        as_head(
            "the head with its check value changed",
            sk,
            with(head, 11, |x| x ^ 0x80),
        ),
        as_head(
            "the head under another storage key with a flipped ciphertext bit: the key is \
             checked before the AEAD",
            other,
            with(head, 60, |x| x ^ 0x01),
        ),
        at(
            "another storage key: not the head, so Authentication, not WrongKey",
            other,
            s.clone(),
        ),
        at(
            "another storage key and a flipped ciphertext bit: Authentication either way",
            other,
            with(s, 60, |x| x ^ 0x01),
        ),
        at(
            "check value changed: not the head, so Authentication",
            sk,
            with(s, 11, |x| x ^ 0x80),
        ),
        as_set(
            "Bob's session set under another storage key",
            other,
            set.clone(),
        ),
        // 8. The AEAD.
        at(
            "16 bytes after the fixed bytes (a tag, no content)",
            sk,
            s[..67].to_vec(),
        ),
        at("ciphertext bit flipped", sk, with(s, 60, |x| x ^ 0x01)),
        at("tag bit flipped", sk, with(s, s.len() - 1, |x| x ^ 0x40)),
        at("generation changed", sk, with(s, 10, |x| x ^ 0x01)),
        at("nonce bit flipped", sk, with(s, 27, |x| x ^ 0x02)),
        at("last byte cut", sk, s[..s.len() - 1].to_vec()),
        as_head(
            "the head with its generation changed",
            sk,
            with(head, 10, |x| x ^ 0x01),
        ),
        Open {
            account: life.carol,
            device: life.carol_device,
            ..as_set(
                "Bob's session set moved under Carol's session-set name",
                sk,
                set.clone(),
            )
        },
        Open {
            device: [0x77; 32],
            ..as_set(
                "Bob's session set moved under another device of Bob",
                sk,
                set.clone(),
            )
        },
        Open {
            kind: RecordKind::Peer,
            account: life.alice,
            device: zero,
            ..as_set(
                "Bob's peer record moved under Alice's own peer name",
                sk,
                peer.clone(),
            )
        },
        // The owner: a record of another store under the same storage key.
        as_set(
            "Bob's session set of another device's store (owner 77…77) under the same \
             storage key",
            sk,
            foreign_set,
        ),
        Open {
            owner: OTHER_OWNER,
            ..at(
                "Alice's account record opened for another owner (77…77)",
                sk,
                s.clone(),
            )
        },
    ];
    list.into_iter().map(open_vector).collect()
}

pub fn vectors() -> Value {
    let life = life();
    let mut vectors = vec![
        key_vector("the keys of the device's storage key", STORAGE_KEY),
        key_vector("the keys of another storage key", OTHER_STORAGE_KEY),
    ];
    for (i, kind) in KINDS.iter().enumerate() {
        let r = match kind {
            RecordKind::Peer | RecordKind::Sessions => life.find(*kind, &life.bob),
            _ => life.find(*kind, &[0; 32]),
        };
        vectors.push(seal_vector(i, r, &life.alice_device));
    }
    vectors.push(store_vector(&life));
    vectors.extend(errors(&life));
    file(
        "records",
        "Client records at rest (spec §10.3): the record keys derived from a storage key, a sealed \
         record of every kind (name, owner, store key, value), one device's whole store after a \
         short scripted life (every record opened, its plain content decoded, the anchors of \
         §10.4), and every failure of the open order of §10.3",
        vectors,
    )
}
