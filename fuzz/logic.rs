//! What each fuzz target checks, shared by the libFuzzer targets
//! (`fuzz/fuzz_targets/*.rs`) and the root crate's corpus replay test
//! (`tests/fuzz_corpus.rs`), which both include this file with `#[path]`.
//!
//! Every function takes the raw fuzzer input and panics only when a property
//! of the library is broken: a decoder panicked, accepted a non-canonical
//! encoding, changed a session on error, let a replay through, delivered a
//! wrong plaintext, or exceeded a bound. [`seed_corpus`] builds the committed
//! seed inputs deterministically.
//!
//! In a fuzzing build (`--cfg fuzzing`) the library's AEAD also accepts an
//! all-zero tag and then treats the ciphertext as the plaintext (see
//! `src/aead.rs`); the seeds below include such inputs so the fuzzer starts
//! behind authentication. In a normal build they exercise the error paths.
#![allow(
    dead_code,
    unreachable_pub,
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use session_ratchet::account::Account;
use session_ratchet::device::list::{
    ClientVersion, DeviceEntry as ListEntry, DeviceId, DeviceListDraft, DeviceListError,
    DeviceStatus, Extension, Platform, SignedDeviceList, UpdateOutcome, VerifiedDeviceList,
};
use session_ratchet::device::record::{PrekeyRecord, SLOT_BUNDLE_LEN, SLOT_LEN};
use session_ratchet::envelope::{
    ENVELOPE_BODY_OVERHEAD, ENVELOPE_HEADER_LEN, ENVELOPE_HINT_LEN, Envelope, EnvelopeError,
    MAX_ENVELOPE_PAYLOAD_LEN, MAX_ENVELOPE_SLOTS,
};
use session_ratchet::handshake::PrekeyMessage;
use session_ratchet::identity::{AccountIdentity, DeviceCertificate, DeviceIdentity};
use session_ratchet::prekey::{
    KemPrekeyKind, PrekeyBundle, PrekeyError, PrekeyStore, StoredPrekeys,
};
use session_ratchet::ratchet::{
    self, MAX_SKIPPED_KEYS, RatchetError, Session, StorageKey, StoredSession,
};
use session_ratchet::secret::{AccountKeySeed, DeviceKeySeed};
use session_ratchet::session_v2::account_keys::{KeyPair, account_key_pair, device_key_pair};
use session_ratchet::session_v2::bencode::{self, Limits};
use session_ratchet::session_v2::device_group::{
    DeviceEntry, DeviceRecord, GroupPayload, decrypt_group, encrypt_group, is_kicked,
};
use session_ratchet::session_v2::identity::{Identity, SessionId, ed25519_pk_to_x25519};
use session_ratchet::session_v2::{dm, link};
use std::sync::OnceLock;

#[path = "link_logic.rs"]
mod link_logic;
pub use link_logic::device_link;
#[path = "sessions_logic.rs"]
mod sessions_logic;
pub use sessions_logic::{multidevice, sessions_decrypt};

/// Associated data every fixture message is sent with.
pub const AD: &[u8] = b"fuzz";

/// The fuzz targets, in the order `.ci/fuzz-smoke.sh` runs them.
pub const TARGETS: &[&str] = &[
    "prekey_bundle",
    "prekey_message",
    "device_certificate",
    "ratchet_decrypt",
    "stored_session",
    "bencode",
    "dm_receive",
    "device_group",
    "link_request",
    "interaction",
    "device_list",
    "prekey_record",
    "stored_prekeys",
    "envelope",
    "device_link",
    "sessions_decrypt",
    "multidevice",
];

/// Runs target `name` on `data` (the corpus replay test's entry point).
pub fn run(name: &str, data: &[u8]) {
    match name {
        "prekey_bundle" => prekey_bundle(data),
        "prekey_message" => prekey_message(data),
        "device_certificate" => device_certificate(data),
        "ratchet_decrypt" => ratchet_decrypt(data),
        "stored_session" => stored_session(data),
        "bencode" => bencode_target(data),
        "dm_receive" => dm_receive(data),
        "device_group" => device_group(data),
        "link_request" => link_request(data),
        "interaction" => interaction(data),
        "device_list" => device_list(data),
        "prekey_record" => prekey_record(data),
        "stored_prekeys" => stored_prekeys(data),
        "envelope" => envelope(data),
        "device_link" => device_link(data),
        "sessions_decrypt" => sessions_decrypt(data),
        "multidevice" => multidevice(data),
        other => panic!("unknown fuzz target {other}"),
    }
}

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

/// Replaces the last 16 bytes (a Poly1305 tag) with zeros: accepted without
/// a key only by fuzzing builds.
fn zero_tag(mut m: Vec<u8>) -> Vec<u8> {
    let n = m.len();
    if n >= 16 {
        m[n - 16..].fill(0);
    }
    m
}

// ---------------------------------------------------------------------------
// Handshake fixtures

/// Bob's identity and a fresh prekey store (one one-time X25519 prekey and
/// one one-time ML-KEM prekey), identical on every call.
fn bob() -> (DeviceIdentity, PrekeyStore) {
    let mut r = rng(0xB0B);
    let bob = DeviceIdentity::generate(&mut r);
    let mut store = PrekeyStore::new(&mut r, &bob);
    store.generate_one_time_prekeys(&mut r, &bob, 1).unwrap();
    store
        .generate_one_time_kem_prekeys(&mut r, &bob, 1)
        .unwrap();
    (bob, store)
}

fn alice() -> DeviceIdentity {
    DeviceIdentity::generate(&mut rng(0xA11CE))
}

fn store_fingerprint(store: &PrekeyStore) -> (Vec<u32>, Vec<u32>) {
    (store.one_time_prekey_ids(), store.one_time_kem_prekey_ids())
}

// ---------------------------------------------------------------------------
// Decoders of chapter 6

/// `PrekeyBundle::from_bytes`: no panic; canonical (`encode(decode(b)) = b`);
/// verification of whatever decoded does not panic.
pub fn prekey_bundle(data: &[u8]) {
    if let Ok(b) = PrekeyBundle::from_bytes(data) {
        assert_eq!(b.to_bytes(), data, "bundle encoding is not canonical");
        let id = *b.identity();
        if let Ok(v) = b.verify() {
            assert_eq!(v.identity(), &id);
            assert_eq!(v.bundle().to_bytes(), data);
        }
    }
}

/// `DeviceCertificate::from_bytes`: no panic, canonical, verify total.
pub fn device_certificate(data: &[u8]) {
    if let Ok(c) = DeviceCertificate::from_bytes(data) {
        assert_eq!(c.to_bytes(), data, "certificate encoding is not canonical");
        assert_eq!(data.len(), DeviceCertificate::ENCODED_LEN);
        let _ = c.verify();
    }
}

/// `PrekeyMessage::from_bytes` (canonical), then `Session::respond` on Bob's
/// fixture store: on error the store consumed nothing.
pub fn prekey_message(data: &[u8]) {
    let Ok(m) = PrekeyMessage::from_bytes(data) else {
        return;
    };
    assert_eq!(
        m.to_bytes(),
        data,
        "prekey message encoding is not canonical"
    );
    let (bob, mut store) = bob();
    let before = store_fingerprint(&store);
    match Session::respond(&bob, &mut store, data, AD) {
        Ok((session, _plaintext)) => {
            assert!(session.skipped_keys_held() <= MAX_SKIPPED_KEYS);
            let stored = session.to_stored();
            let back = Session::from_stored(&stored).unwrap();
            assert_eq!(back.to_stored(), stored);
        }
        Err(_) => assert_eq!(
            store_fingerprint(&store),
            before,
            "respond consumed on error"
        ),
    }
}

// ---------------------------------------------------------------------------
// Ratchet decryption on live sessions

struct DecryptFixture {
    /// Stored sessions the target decrypts with, selected by the first input byte.
    states: Vec<Vec<u8>>,
    /// Seed inputs: selector byte ‖ message.
    seeds: Vec<Vec<u8>>,
}

fn send(s: &mut Session, r: &mut ChaCha20Rng, text: &[u8]) -> Vec<u8> {
    s.encrypt(r, text, AD).unwrap()
}

/// A scripted conversation with loss and reordering. States: 0 = Alice
/// still initiating (no reply yet), 1 = Bob with skipped keys and old
/// chains, 2 = Alice established. Seeds are messages each state has not
/// seen yet (genuine, tampered and zero-tag variants).
fn decrypt_fixture() -> &'static DecryptFixture {
    static F: OnceLock<DecryptFixture> = OnceLock::new();
    F.get_or_init(|| {
        let mut r = rng(0xDEC);
        let alice = alice();
        let (bob, mut store) = bob();
        let bundle = store
            .bundle(&bob, None, None)
            .unwrap()
            .verify_for(bob.public())
            .unwrap();
        let mut a = Session::initiate(&mut r, &alice, &bundle).unwrap();
        let p1 = send(&mut a, &mut r, b"prekey 1");
        let p2 = send(&mut a, &mut r, b"prekey 2");
        let state0 = a.to_stored().as_bytes().to_vec();
        let (mut b, _) = Session::respond(&bob, &mut store, &p1, AD).unwrap();
        let r1 = send(&mut b, &mut r, b"reply 1");
        let r2 = send(&mut b, &mut r, b"reply 2");
        a.decrypt(&r2, AD).unwrap();
        // Several DH steps; Bob misses some of Alice's messages.
        let mut missed = vec![p2.clone()];
        for turn in 0..6u8 {
            let m1 = send(&mut a, &mut r, &[b'a', turn, 1]);
            let m2 = send(&mut a, &mut r, &[b'a', turn, 2]);
            let m3 = send(&mut a, &mut r, &[b'a', turn, 3]);
            b.decrypt(&m3, AD).unwrap();
            if turn % 2 == 0 {
                b.decrypt(&m1, AD).unwrap();
                missed.push(m2);
            } else {
                missed.push(m1);
            }
            let rb = send(&mut b, &mut r, &[b'b', turn]);
            a.decrypt(&rb, AD).unwrap();
        }
        let state1 = b.to_stored().as_bytes().to_vec();
        let next_a = send(&mut a, &mut r, b"current chain, ahead");
        let next_a2 = send(&mut a, &mut r, &[0u8; 300]);
        let state2 = a.to_stored().as_bytes().to_vec();
        let next_b = send(&mut b, &mut r, b"bob, new chain");
        let next_b2 = send(&mut b, &mut r, b"bob, second of the chain");

        let mut seeds = Vec::new();
        let mut add = |sel: u8, m: &[u8]| {
            let mut v = vec![sel];
            v.extend_from_slice(m);
            seeds.push(v);
        };
        for m in [&r1, &r2] {
            add(0, m);
            add(0, &zero_tag(m.clone()));
        }
        for m in missed.iter().chain([&next_a, &next_a2, &p1]) {
            add(1, m);
        }
        add(1, &zero_tag(next_a.clone()));
        for m in [&next_b, &next_b2] {
            add(2, m);
            add(2, &zero_tag(m.clone()));
        }
        let mut flipped = next_b.clone();
        flipped[40] ^= 1;
        add(2, &flipped);
        DecryptFixture {
            states: vec![state0, state1, state2],
            seeds,
        }
    })
}

/// `Session::decrypt` on a live session: no panic; on error the stored form
/// is byte-identical; on success the bounds hold and the new state survives
/// a store/load round trip.
pub fn ratchet_decrypt(data: &[u8]) {
    let Some((&sel, msg)) = data.split_first() else {
        return;
    };
    let f = decrypt_fixture();
    let stored = StoredSession::from_bytes(&f.states[usize::from(sel) % f.states.len()]);
    let mut s = Session::from_stored(&stored).unwrap();
    let before = s.to_stored();
    assert_eq!(before, stored);
    match s.decrypt(msg, AD) {
        Ok(_) => {
            assert!(s.skipped_keys_held() <= MAX_SKIPPED_KEYS);
            let after = s.to_stored();
            assert_eq!(Session::from_stored(&after).unwrap().to_stored(), after);
            // Replaying the same message never succeeds twice.
            let again = s.decrypt(msg, AD);
            assert!(again.is_err(), "replayed message decrypted twice");
            assert_eq!(s.to_stored(), after, "state changed on a failed replay");
        }
        Err(_) => assert_eq!(s.to_stored(), before, "state changed on error"),
    }
}

// ---------------------------------------------------------------------------
// Stored sessions

/// `StoredSession::from_bytes` + `Session::from_stored` (and the encrypted
/// form with a fixed key): no panic; an accepted encoding is canonical, and
/// the loaded session can encrypt and decrypt without panicking.
pub fn stored_session(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let stored = if mode & 1 == 0 {
        StoredSession::from_bytes(rest)
    } else {
        match StoredSession::decrypt(rest, &StorageKey::from_bytes([0x5A; 32])) {
            Ok(s) => s,
            Err(_) => return,
        }
    };
    let Ok(mut s) = Session::from_stored(&stored) else {
        return;
    };
    assert_eq!(
        s.to_stored(),
        stored,
        "stored session encoding is not canonical"
    );
    assert!(s.skipped_keys_held() <= MAX_SKIPPED_KEYS);
    let mut r = rng(7);
    let before = s.to_stored();
    if s.decrypt(&[1, 4, 0, 0], AD).is_err() {
        assert_eq!(s.to_stored(), before);
    }
    if s.encrypt(&mut r, b"after load", AD).is_ok() {
        let _ = Session::from_stored(&s.to_stored()).unwrap();
    }
}

/// Seeds: the fixture states, plain and encrypted.
fn stored_seeds() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let key = StorageKey::from_bytes([0x5A; 32]);
    let mut r = rng(0x5707);
    for s in &decrypt_fixture().states {
        let mut v = vec![0u8];
        v.extend_from_slice(s);
        out.push(v);
        let mut v = vec![1u8];
        v.extend_from_slice(&StoredSession::from_bytes(s).encrypt(&mut r, &key));
        out.push(v);
        // Zero-tag variant: `0x01 0x11 nonce plain 0^16`.
        let mut v = vec![1u8, ratchet::STORED_SESSION_VERSION, 0x11];
        v.extend_from_slice(&[0u8; 24]);
        v.extend_from_slice(s);
        v.extend_from_slice(&[0u8; 16]);
        out.push(v);
    }
    out
}

// ---------------------------------------------------------------------------
// Session v2 decoders

/// Strict bencode: no panic; accepted input is canonical; dict-entry view
/// agrees with the tree view.
pub fn bencode_target(data: &[u8]) {
    if let Ok(v) = bencode::decode(data) {
        assert_eq!(bencode::encode(&v), data, "bencode is not canonical");
    }
    if let Ok(entries) = bencode::decode_dict_entries(data, Limits::DEFAULT) {
        let mut prev: Option<&[u8]> = None;
        for e in &entries {
            assert_eq!(bencode::encode(&e.value), e.raw);
            assert!(e.offset < data.len());
            if let Some(p) = prev {
                assert!(p < e.key, "dict keys out of order");
            }
            prev = Some(e.key);
        }
    }
}

fn v2_parties() -> &'static (Identity, Identity, KeyPair, KeyPair) {
    static P: OnceLock<(Identity, Identity, KeyPair, KeyPair)> = OnceLock::new();
    P.get_or_init(|| {
        let sender = Identity::from_seed_bytes(&[1u8; 16]).unwrap();
        let account = Identity::from_seed_bytes(&[2u8; 16]).unwrap();
        let acc_keys = account_key_pair(&AccountKeySeed::from_bytes([3; 32]));
        let dev_keys = device_key_pair(&DeviceKeySeed::from_bytes([4; 32]));
        (sender, account, acc_keys, dev_keys)
    })
}

/// `dm::receive`: mode 0 raw bytes; mode 1/2 the bytes are content sent
/// with PFS / non-PFS and must come back unchanged.
pub fn dm_receive(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (sender, bob, keys, _) = v2_parties();
    match mode % 3 {
        0 => {
            if let Ok(got) = dm::receive(bob, &[keys], rest) {
                let derived =
                    ed25519_pk_to_x25519(&got.sender_ed25519).map(|x| SessionId::from_x25519(&x));
                assert_eq!(
                    derived,
                    Some(got.sender),
                    "sender id does not match its key"
                );
            }
        }
        pfs => {
            let mut r = rng(u64::from(mode));
            let sent = if pfs == 1 {
                dm::encrypt_pfs(
                    &mut r,
                    sender,
                    &bob.session_id(),
                    &keys.public_keys(),
                    rest,
                    None,
                )
            } else {
                dm::encrypt_non_pfs(&mut r, sender, &bob.session_id(), rest, Some(sender))
            };
            let Ok(msg) = sent else { return };
            let got = dm::receive(bob, &[keys], &msg).unwrap();
            assert_eq!(got.content.as_slice(), rest);
            assert_eq!(got.sender, sender.session_id());
            assert_eq!(got.pfs, pfs == 1);
        }
    }
}

/// Device-group messages: mode 0 the payload decoder (idempotent), mode 1
/// the outer message (`decrypt_group`, `is_kicked`), mode 2 a decoded
/// payload re-encrypted must decrypt to itself.
pub fn device_group(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (_, account, _, dev) = v2_parties();
    match mode % 3 {
        0 => {
            if let Ok(p) = GroupPayload::decode(rest) {
                let again = GroupPayload::decode(&p.encode()).unwrap();
                assert_eq!(again, p, "payload encode/decode not idempotent");
            }
        }
        1 => {
            let _ = decrypt_group(rest, account.ed25519_public(), dev);
            let _ = is_kicked(rest, account, &[7; 32]);
        }
        _ => {
            let Ok(p) = GroupPayload::decode(rest) else {
                return;
            };
            if p.devices.len() > 8 {
                return;
            }
            let mut r = rng(9);
            if let Ok(msg) = encrypt_group(&mut r, account, &p) {
                let _ = decrypt_group(&msg, account.ed25519_public(), dev);
                let _ = is_kicked(&msg, account, &[7; 32]);
            }
        }
    }
}

/// Link requests: mode 0 raw message; mode 1 the bytes are a plaintext
/// sealed under the account key, so the plaintext parser sees them.
pub fn link_request(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (_, account, _, _) = v2_parties();
    if mode & 1 == 0 {
        let _ = link::decrypt_link_request(account, rest);
    } else {
        let msg = link::encrypt_link_request(account, rest);
        if let Ok(req) = link::decrypt_link_request(account, &msg) {
            assert_eq!(req.plaintext, rest);
        }
    }
}

/// Seed inputs of one target.
type Seeds = Vec<Vec<u8>>;

fn v2_seeds() -> (Seeds, Seeds, Seeds, Seeds) {
    let (sender, account, keys, dev) = v2_parties();
    let mut r = rng(0x52);
    let with = |m: u8, b: &[u8]| {
        let mut v = vec![m];
        v.extend_from_slice(b);
        v
    };
    // bencode
    let rec = DeviceRecord::new(1, 1_700_000_000, dev);
    let mut payload = GroupPayload::default();
    payload
        .devices
        .insert([7; 32], DeviceEntry::Active(Box::new(rec.clone())));
    payload.devices.insert(
        [8; 32],
        DeviceEntry::Removed {
            removed_at: 1_700_000_100,
        },
    );
    let enc_payload = payload.encode();
    let link_plain = link::encode_link_request(&[9; 32], &rec);
    let bencode = vec![
        b"d1:ai1e1:bl3:xyzi-5eee".to_vec(),
        b"li0ei42e0:4:spame".to_vec(),
        enc_payload.clone(),
        link_plain.clone(),
    ];
    // dm
    let pfs = dm::encrypt_pfs(
        &mut r,
        sender,
        &account.session_id(),
        &keys.public_keys(),
        b"hi",
        None,
    )
    .unwrap();
    let non_pfs =
        dm::encrypt_non_pfs(&mut r, sender, &account.session_id(), b"yo", Some(sender)).unwrap();
    let dm_seeds = vec![
        with(0, &pfs),
        with(0, &non_pfs),
        with(1, b"content"),
        with(2, b""),
    ];
    // device group
    let group_msg = encrypt_group(&mut r, account, &payload).unwrap();
    let group = vec![
        with(0, &enc_payload),
        with(1, &group_msg),
        with(2, &enc_payload),
    ];
    // link request
    let link_msg = link::encrypt_link_request(account, &link_plain);
    let link_seeds = vec![with(0, &link_msg), with(1, &link_plain)];
    (bencode, dm_seeds, group, link_seeds)
}

// ---------------------------------------------------------------------------
// Interaction fuzzer

/// A message in flight or delivered.
struct Sent {
    link: usize,
    /// Sent by the link's first party (Alice on link 0, Bob on link 1).
    from_first: bool,
    bytes: Vec<u8>,
    plaintext: Vec<u8>,
}

/// Two sessions among three parties: link 0 is Alice → Bob from a fresh
/// handshake (Bob has no session until a prekey message reaches him), link 1
/// is Bob ↔ Carol, established.
struct World {
    r: ChaCha20Rng,
    bob: DeviceIdentity,
    store: PrekeyStore,
    /// `[link][0 = first party, 1 = second party]`.
    s: [[Option<Session>; 2]; 2],
    sent: Vec<Sent>,
    /// Indices into `sent`: `[link][direction]` queues (direction 0 = from first).
    queue: [[Vec<usize>; 2]; 2],
    delivered: Vec<usize>,
    counter: u32,
}

fn established_pair() -> &'static (Vec<u8>, Vec<u8>) {
    static P: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    P.get_or_init(|| {
        let mut r = rng(0xC4);
        let b_id = DeviceIdentity::generate(&mut r);
        let c_id = DeviceIdentity::generate(&mut r);
        let mut store = PrekeyStore::new(&mut r, &c_id);
        let bundle = store
            .bundle(&c_id, None, None)
            .unwrap()
            .verify_for(c_id.public())
            .unwrap();
        let mut b = Session::initiate(&mut r, &b_id, &bundle).unwrap();
        let m = send(&mut b, &mut r, b"hello carol");
        let (mut c, _) = Session::respond(&c_id, &mut store, &m, AD).unwrap();
        let m = send(&mut c, &mut r, b"hello bob");
        b.decrypt(&m, AD).unwrap();
        (
            b.to_stored().as_bytes().to_vec(),
            c.to_stored().as_bytes().to_vec(),
        )
    })
}

impl World {
    fn new(seed: u64) -> Self {
        let mut r = rng(seed);
        let (bob, store) = bob();
        let bundle = store
            .bundle(&bob, Some(store.one_time_prekey_ids()[0]), None)
            .unwrap()
            .verify_for(bob.public())
            .unwrap();
        let a = Session::initiate(&mut r, &alice(), &bundle).unwrap();
        let (b1, c1) = established_pair();
        let b1 = Session::from_stored(&StoredSession::from_bytes(b1)).unwrap();
        let c1 = Session::from_stored(&StoredSession::from_bytes(c1)).unwrap();
        Self {
            r,
            bob,
            store,
            s: [[Some(a), None], [Some(b1), Some(c1)]],
            sent: Vec::new(),
            queue: Default::default(),
            delivered: Vec::new(),
            counter: 0,
        }
    }

    fn send(&mut self, link: usize, dir: usize, len: u8) {
        let Some(s) = self.s[link][dir].as_mut() else {
            return;
        };
        self.counter += 1;
        let mut plaintext = self.counter.to_be_bytes().to_vec();
        plaintext.extend(core::iter::repeat_n(
            link as u8 * 2 + dir as u8,
            usize::from(len),
        ));
        let bytes = s.encrypt(&mut self.r, &plaintext, AD).unwrap();
        assert!(s.skipped_keys_held() <= MAX_SKIPPED_KEYS);
        self.queue[link][dir].push(self.sent.len());
        self.sent.push(Sent {
            link,
            from_first: dir == 0,
            bytes,
            plaintext,
        });
    }

    /// Delivers `bytes` to the receiver of `(link, dir)`; returns the result
    /// after checking that failures changed nothing.
    fn receive(&mut self, link: usize, dir: usize, bytes: &[u8]) -> Result<Vec<u8>, RatchetError> {
        let to = 1 - dir;
        match self.s[link][to].as_mut() {
            Some(s) => {
                let before = s.to_stored();
                let res = s.decrypt(bytes, AD);
                match &res {
                    Err(_) => assert_eq!(s.to_stored(), before, "state changed on error"),
                    Ok(_) => assert!(s.skipped_keys_held() <= ratchet::MAX_SKIPPED_KEYS),
                }
                res
            }
            None => {
                // Only Bob on link 0 starts without a session.
                let before = store_fingerprint(&self.store);
                let res = Session::respond(&self.bob, &mut self.store, bytes, AD);
                match res {
                    Ok((s, pt)) => {
                        assert!(s.skipped_keys_held() <= MAX_SKIPPED_KEYS);
                        self.s[link][to] = Some(s);
                        Ok(pt)
                    }
                    Err(e) => {
                        assert_eq!(store_fingerprint(&self.store), before);
                        Err(e)
                    }
                }
            }
        }
    }

    fn deliver(&mut self, link: usize, dir: usize, pick: u8) {
        let q = &mut self.queue[link][dir];
        if q.is_empty() {
            return;
        }
        let id = q.remove(usize::from(pick) % q.len());
        let bytes = self.sent[id].bytes.clone();
        match self.receive(link, dir, &bytes) {
            Ok(pt) => {
                assert_eq!(pt, self.sent[id].plaintext, "wrong plaintext delivered");
                self.delivered.push(id);
            }
            // A genuine, first delivery may fail only because its chain or
            // key was evicted by the bounds (a late message).
            Err(RatchetError::MessageTooOld | RatchetError::UndecryptableHeader) => {}
            Err(e) => panic!("genuine message rejected: {e:?}"),
        }
    }

    fn duplicate(&mut self, pick: u8) {
        if self.delivered.is_empty() {
            return;
        }
        let id = self.delivered[usize::from(pick) % self.delivered.len()];
        let (link, dir) = (self.sent[id].link, usize::from(!self.sent[id].from_first));
        let bytes = self.sent[id].bytes.clone();
        let res = self.receive(link, dir, &bytes);
        assert!(res.is_err(), "a replayed message was accepted");
    }

    fn tamper(&mut self, link: usize, dir: usize, pick: u8, at: u8) {
        let q = &self.queue[link][dir];
        if q.is_empty() {
            return;
        }
        let id = q[usize::from(pick) % q.len()];
        let mut bytes = self.sent[id].bytes.clone();
        let pos = (usize::from(at) * 7919) % bytes.len();
        bytes[pos] ^= 1 << (at % 8);
        let res = self.receive(link, dir, &bytes);
        assert!(res.is_err(), "a tampered message was accepted");
    }

    fn drop_one(&mut self, link: usize, dir: usize, pick: u8) {
        let q = &mut self.queue[link][dir];
        if !q.is_empty() {
            q.remove(usize::from(pick) % q.len());
        }
    }

    fn persist(&mut self, which: u8) {
        let (link, side) = (usize::from(which & 1), usize::from((which >> 1) & 1));
        let encrypted = which & 4 != 0;
        let Some(s) = self.s[link][side].take() else {
            return;
        };
        let stored = s.to_stored();
        let stored = if encrypted {
            let key = StorageKey::from_bytes([which; 32]);
            let blob = stored.encrypt(&mut self.r, &key);
            StoredSession::decrypt(&blob, &key).unwrap()
        } else {
            stored
        };
        let restored = Session::from_stored(&stored).unwrap();
        assert_eq!(restored.to_stored(), stored);
        self.s[link][side] = Some(restored);
    }
}

/// Maximum operations one input may run (each may cost an X25519 or
/// ML-KEM operation).
pub const MAX_OPS: usize = 48;

/// Interaction fuzzer: 8 seed bytes, then operations (send, deliver,
/// drop, duplicate, tamper, persist/restore) on two sessions among three
/// parties. Every delivered plaintext must be the one sent; replays and
/// tampered copies never decrypt; failed decryptions change nothing; the
/// skipped-key bound holds. (Multi-device link/revoke is not implemented
/// in the library yet, so it is not driven here.)
pub fn interaction(data: &[u8]) {
    let Some((seed, ops)) = data.split_first_chunk::<8>() else {
        return;
    };
    let mut w = World::new(u64::from_le_bytes(*seed));
    let mut it = ops.iter().copied();
    let mut n = 0;
    while let Some(op) = it.next() {
        n += 1;
        if n > MAX_OPS {
            break;
        }
        let (link, dir) = (usize::from((op >> 3) & 1), usize::from((op >> 4) & 1));
        let arg = it.next().unwrap_or(0);
        match op % 8 {
            0 | 1 => w.send(link, dir, arg),
            2 | 3 => w.deliver(link, dir, arg),
            4 => w.duplicate(arg),
            5 => w.drop_one(link, dir, arg),
            6 => w.persist(arg),
            _ => {
                let at = it.next().unwrap_or(0);
                w.tamper(link, dir, arg, at)
            }
        }
    }
    // Everything still in flight on link 1 (established) can be delivered
    // in order unless evicted.
    for dir in 0..2 {
        while !w.queue[1][dir].is_empty() {
            w.deliver(1, dir, 0);
        }
    }
}

fn op(code: u8, link: u8, dir: u8) -> u8 {
    code | (link << 3) | (dir << 4)
}

fn interaction_seeds() -> Vec<Vec<u8>> {
    let (send, deliver, dup, drop, persist, tamper) = (0u8, 2u8, 4u8, 5u8, 6u8, 7u8);
    let mut out = Vec::new();
    // Ping-pong on both links with persistence.
    let mut a = 1u64.to_le_bytes().to_vec();
    for i in 0..6u8 {
        let d = i % 2;
        a.extend([op(send, 0, d), 10 * i, op(deliver, 0, d), 0]);
        a.extend([op(send, 1, d), 3, op(deliver, 1, d), 0]);
    }
    a.extend([persist, 0, persist, 3, persist, 5]);
    out.push(a);
    // Loss, reordering and duplicates on the fresh handshake.
    let mut b = 2u64.to_le_bytes().to_vec();
    b.extend([op(send, 0, 0), 0, op(send, 0, 0), 1, op(send, 0, 0), 2]);
    b.extend([
        op(deliver, 0, 0),
        2,
        op(drop, 0, 0),
        0,
        op(deliver, 0, 0),
        0,
    ]);
    b.extend([
        dup,
        0,
        op(send, 0, 1),
        0,
        op(send, 0, 1),
        200,
        op(deliver, 0, 1),
        1,
    ]);
    b.extend([
        op(send, 0, 0),
        5,
        op(deliver, 0, 0),
        0,
        op(deliver, 0, 1),
        0,
        dup,
        1,
    ]);
    out.push(b);
    // Tampering and a long chain delivered out of order.
    let mut c = 3u64.to_le_bytes().to_vec();
    for _ in 0..8 {
        c.extend([op(send, 1, 1), 7]);
    }
    c.extend([
        op(tamper, 1, 1),
        3,
        17,
        op(deliver, 1, 1),
        5,
        op(deliver, 1, 1),
        1,
    ]);
    c.extend([
        persist,
        7,
        op(deliver, 1, 1),
        0,
        dup,
        0,
        op(tamper, 0, 0),
        0,
        0,
    ]);
    out.push(c);
    out
}

// ---------------------------------------------------------------------------
// Device lists and prekey records (chapter 8)

/// Every proper prefix a seed should also start from: the first half and
/// all but the last byte.
fn truncations(b: &[u8]) -> [Vec<u8>; 2] {
    [b[..b.len() / 2].to_vec(), b[..b.len() - 1].to_vec()]
}

const CLIENT: ClientVersion = ClientVersion {
    major: 1,
    minor: 0,
    patch: 0,
};

struct ListFixture {
    /// Held lists to update from, each with the intermediates passed along.
    held: Vec<(VerifiedDeviceList, Vec<SignedDeviceList>)>,
    seeds: Vec<Vec<u8>>,
}

/// One account's history: v1 = {d0, d1}; v2 = v1 + d2; v3 = v2 with d1
/// revoked; v4 = v3 with d0's description changed and an optional list
/// extension. Also a conflicting v3 (d3 added instead: a fork) and a v4
/// with a mandatory extension. Held states: v1 with v2 and v3 as
/// intermediates, v1 alone (newer versions than v2 are a gap), and v3.
fn device_list_fixture() -> &'static ListFixture {
    static F: OnceLock<ListFixture> = OnceLock::new();
    F.get_or_init(|| {
        let mut r = rng(0x1157);
        let (account, _) = Account::generate(&mut r);
        let devices: Vec<DeviceIdentity> =
            (0..4).map(|_| DeviceIdentity::generate(&mut r)).collect();
        let ids: Vec<DeviceId> = (0..4).map(|_| DeviceId::generate(&mut r)).collect();
        let entry = |i: usize| {
            ListEntry::new(
                ids[i],
                *devices[i].public(),
                Platform::Android,
                "device",
                CLIENT,
                100 + i as u64,
            )
        };
        let mut d = DeviceListDraft::first(&account);
        d.add_device(entry(0)).unwrap();
        d.add_device(entry(1)).unwrap();
        let v1 = d.sign(&account).unwrap();
        let h1 = VerifiedDeviceList::trust_first(v1.clone(), &account.session_id()).unwrap();
        let mut d = h1.next_draft().unwrap();
        d.add_device(entry(2)).unwrap();
        let v2 = d.sign(&account).unwrap();
        let h2 = advanced(h1.accept_update(&v2, &[]));
        let mut d = h2.next_draft().unwrap();
        d.remove_device(&ids[1], 500).unwrap();
        let v3 = d.sign(&account).unwrap();
        let mut d = h2.next_draft().unwrap();
        d.add_device(entry(3)).unwrap();
        let fork = d.sign(&account).unwrap();
        let h3 = advanced(h2.accept_update(&v3, &[]));
        let mut d = h3.next_draft().unwrap();
        let mut e = entry(0);
        e.set_description("renamed", 600);
        d.update_device(e).unwrap();
        d.add_extension(Extension::new(0x0001, b"optional").unwrap())
            .unwrap();
        let v4 = d.sign(&account).unwrap();
        let mut d = h3.next_draft().unwrap();
        d.add_extension(Extension::new(0x8001, b"mandatory").unwrap())
            .unwrap();
        let v4_mandatory = d.sign(&account).unwrap();
        advanced(h3.accept_update(&v4, &[]));

        let mut seeds: Vec<Vec<u8>> = [&v1, &v2, &v3, &v4, &fork, &v4_mandatory]
            .iter()
            .map(|l| l.to_bytes())
            .collect();
        seeds.extend(truncations(&v2.to_bytes()));
        ListFixture {
            held: vec![
                (h1.clone(), vec![v2, v3]),
                (h1, Vec::new()),
                (h3, Vec::new()),
            ],
            seeds,
        }
    })
}

fn advanced(r: Result<UpdateOutcome, DeviceListError>) -> VerifiedDeviceList {
    match r {
        Ok(UpdateOutcome::Advanced(v)) => *v,
        other => panic!("fixture update not accepted: {other:?}"),
    }
}

/// The rules an accepted update must satisfy, checked from the outside
/// (spec §8.2.4): same account, newer version, a valid signature, a
/// previous hash naming the version before it on the path, every tombstone
/// kept and every live device kept (live with the same keys, or revoked).
fn check_advanced(
    held: &VerifiedDeviceList,
    intermediates: &[SignedDeviceList],
    offered: &SignedDeviceList,
    new: &VerifiedDeviceList,
) {
    let (h, n) = (held.list(), new.list());
    assert_eq!(
        n, offered,
        "an update other than the offered list was accepted"
    );
    assert_eq!(n.account(), h.account());
    assert!(n.version() > h.version(), "accepted a version not newer");
    assert!(n.verify_signature().is_ok(), "accepted a bad signature");
    let predecessor = if n.version() == h.version() + 1 {
        Some(h)
    } else {
        intermediates
            .iter()
            .find(|i| i.version() == n.version() - 1 && i.hash() == n.previous_hash())
    };
    assert_eq!(
        predecessor.map(|p| p.hash()),
        Some(n.previous_hash()),
        "accepted list does not extend the held history"
    );
    for t in h.tombstones() {
        assert!(
            matches!(new.status(t.id()), DeviceStatus::Revoked { .. }),
            "a tombstone was dropped or resurrected"
        );
    }
    for d in h.devices() {
        match new.status(d.id()) {
            DeviceStatus::Active(e) => {
                assert_eq!(e.identity(), d.identity(), "a device changed its keys");
                assert_eq!(e.added_at(), d.added_at());
            }
            DeviceStatus::Revoked { .. } => {}
            DeviceStatus::Unknown => panic!("a device vanished without a tombstone"),
        }
    }
    let mandatory = n
        .extensions()
        .iter()
        .chain(n.devices().iter().flat_map(|d| d.extensions()))
        .any(|e| e.is_mandatory());
    assert!(!mandatory, "accepted an unknown mandatory extension");
}

/// `SignedDeviceList::from_bytes` (canonical), then
/// `VerifiedDeviceList::accept_update` from each held state: no panic, and
/// every outcome is consistent with the versions and hashes involved.
pub fn device_list(data: &[u8]) {
    let Ok(offered) = SignedDeviceList::from_bytes(data) else {
        return;
    };
    assert_eq!(
        offered.to_bytes(),
        data,
        "device list encoding is not canonical"
    );
    for (held, intermediates) in &device_list_fixture().held {
        let h = held.list();
        match held.accept_update(&offered, intermediates) {
            Ok(UpdateOutcome::Unchanged) => {
                assert_eq!(offered.hash(), h.hash());
                assert_eq!(offered.version(), h.version());
            }
            Ok(UpdateOutcome::Advanced(new)) => {
                check_advanced(held, intermediates, &offered, &new);
            }
            Err(DeviceListError::Fork(e)) => {
                assert!(e.verify(), "fork evidence does not verify");
                assert_eq!(e.held(), h);
                assert!(e.version() <= offered.version());
            }
            Err(DeviceListError::Rollback {
                held: hv,
                offered: ov,
            }) => {
                assert_eq!((hv, ov), (h.version(), offered.version()));
                assert!(ov < hv);
                assert!(offered.verify_signature().is_ok());
            }
            Err(DeviceListError::Gap {
                offered: ov,
                missing,
                ..
            }) => {
                assert_eq!(ov, offered.version());
                assert!(h.version() < missing && missing < ov);
            }
            Err(_) => {}
        }
    }
}

struct RecordFixture {
    /// Lists a record is opened against: v1 = {d0}, v2 = {d0, d1, d2}.
    lists: Vec<VerifiedDeviceList>,
    seeds: Vec<Vec<u8>>,
}

/// Records built for v1 (one real slot) and v2 (three), and a record whose
/// only non-dummy slot is d0's bundle with an all-zero tag (it opens, under
/// every key, only in fuzzing builds).
fn record_fixture() -> &'static RecordFixture {
    static F: OnceLock<RecordFixture> = OnceLock::new();
    F.get_or_init(|| {
        let mut r = rng(0x4EC0);
        let (account, _) = Account::generate(&mut r);
        let mut bundles = Vec::new();
        let mut entries = Vec::new();
        for i in 0..3u64 {
            let d = DeviceIdentity::generate(&mut r);
            let store = PrekeyStore::new(&mut r, &d);
            bundles.push(store.bundle(&d, None, None).unwrap());
            entries.push(ListEntry::new(
                DeviceId::generate(&mut r),
                *d.public(),
                Platform::Desktop,
                "d",
                CLIENT,
                i,
            ));
        }
        let mut d = DeviceListDraft::first(&account);
        d.add_device(entries[0].clone()).unwrap();
        let v1 = VerifiedDeviceList::trust_first(d.sign(&account).unwrap(), &account.session_id())
            .unwrap();
        let mut d = v1.next_draft().unwrap();
        d.add_device(entries[1].clone()).unwrap();
        d.add_device(entries[2].clone()).unwrap();
        let v2 = advanced(v1.accept_update(&d.sign(&account).unwrap(), &[]));

        let r1 = PrekeyRecord::build(&mut r, &v1, &bundles[..1]).unwrap();
        let r2 = PrekeyRecord::build(&mut r, &v2, &bundles).unwrap();
        let mut zero_tag_slot = vec![0u8; 24];
        zero_tag_slot.extend_from_slice(&bundles[0].to_bytes());
        zero_tag_slot.extend_from_slice(&[0u8; 16]);
        assert_eq!(zero_tag_slot.len(), SLOT_LEN);
        let mut slots = vec![zero_tag_slot];
        for i in 1..4u8 {
            slots.push(vec![0x40 * i; SLOT_LEN]);
        }
        slots.sort();
        let mut zero_tag = vec![0x01, 0x06, 4];
        for s in &slots {
            zero_tag.extend_from_slice(s);
        }
        let mut seeds = vec![r1.to_bytes(), r2.to_bytes(), zero_tag];
        seeds.extend(truncations(&r2.to_bytes()));
        RecordFixture {
            lists: vec![v1, v2],
            seeds,
        }
    })
}

/// `PrekeyRecord::from_bytes` (canonical), then `open` against each fixed
/// list: no panic; found and missing devices partition the list's live
/// devices; every bundle found is a verified slot bundle (no one-time
/// prekeys) of the device the list names.
pub fn prekey_record(data: &[u8]) {
    let Ok(record) = PrekeyRecord::from_bytes(data) else {
        return;
    };
    assert_eq!(
        record.to_bytes(),
        data,
        "prekey record encoding is not canonical"
    );
    assert_eq!(data.len(), 3 + record.slot_count() * SLOT_LEN);
    for list in &record_fixture().lists {
        let Ok(opened) = record.open(list) else {
            continue;
        };
        assert!(opened.bundles().len() <= record.slot_count());
        let mut seen: Vec<DeviceId> = opened
            .bundles()
            .iter()
            .map(|(id, _)| *id)
            .chain(opened.missing().iter().copied())
            .collect();
        seen.sort();
        let live: Vec<DeviceId> = list.list().devices().iter().map(|d| *d.id()).collect();
        assert_eq!(
            seen, live,
            "found and missing do not partition the live devices"
        );
        for (id, bundle) in opened.bundles() {
            let DeviceStatus::Active(entry) = list.status(id) else {
                panic!("a bundle for a device that is not live");
            };
            assert_eq!(bundle.identity(), entry.identity());
            assert!(bundle.one_time_prekey().is_none());
            assert_eq!(bundle.kem_prekey().kind(), KemPrekeyKind::LastResort);
            assert_eq!(bundle.bundle().to_bytes().len(), SLOT_BUNDLE_LEN);
        }
    }
}

// ---------------------------------------------------------------------------
// Stored prekey stores

/// Key of the encrypted `stored_prekeys` inputs.
fn prekeys_key() -> StorageKey {
    StorageKey::from_bytes([0x5A; 32])
}

/// `StoredPrekeys::from_bytes` / `StoredPrekeys::decrypt` (fixed key), then
/// `PrekeyStore::from_stored`: no panic; an accepted encoding is canonical;
/// the loaded store serves a bundle, and a new prekey never reuses an id
/// (the store with it still loads).
pub fn stored_prekeys(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let stored = if mode & 1 == 0 {
        StoredPrekeys::from_bytes(rest)
    } else {
        match StoredPrekeys::decrypt(rest, &prekeys_key()) {
            Ok(s) => s,
            Err(_) => return,
        }
    };
    let Ok(mut store) = PrekeyStore::from_stored(&stored) else {
        return;
    };
    assert_eq!(
        store.to_stored(),
        stored,
        "stored prekey encoding is not canonical"
    );
    let (bob, _) = bob();
    let otp = store.one_time_prekey_ids();
    let okem = store.one_time_kem_prekey_ids();
    let bundle = store
        .bundle(&bob, otp.first().copied(), okem.first().copied())
        .expect("a loaded store has current prekeys");
    let bytes = bundle.to_bytes();
    assert_eq!(PrekeyBundle::from_bytes(&bytes).unwrap(), bundle);
    // The current signed and last-resort prekey ids (spec §4.4 offsets; the
    // bundle's signatures are not bob's, so it is not verified).
    let id_at = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    let mut in_use = otp.clone();
    in_use.extend(&okem);
    in_use.extend([id_at(66), id_at(66 + 4 + 32 + 64)]);
    match store.generate_one_time_prekeys(&mut rng(9), &bob, 1) {
        Ok(new) => {
            assert!(!in_use.contains(&new[0].id()), "a prekey id was reused");
            let again = store.to_stored();
            let back = PrekeyStore::from_stored(&again).expect("a grown store no longer loads");
            assert_eq!(back.to_stored(), again);
        }
        Err(PrekeyError::TooManyOneTimePrekeys { .. } | PrekeyError::IdsExhausted) => {}
        Err(e) => panic!("unexpected error adding a prekey: {e}"),
    }
}

/// Seeds: Bob's fixture store; a store after rotations and answered
/// handshakes (consumed one-time prekeys, recorded base keys); each plain,
/// encrypted, with an all-zero tag, and truncated.
fn stored_prekeys_seeds() -> Vec<Vec<u8>> {
    let mut r = rng(0x57E);
    let (me, fresh) = bob();
    let (_, mut used) = bob();
    used.rotate_signed_prekey(&mut r, &me).unwrap();
    used.rotate_last_resort_prekey(&mut r, &me).unwrap();
    used.generate_one_time_prekeys(&mut r, &me, 2).unwrap();
    let alice = alice();
    let first_otp = used.one_time_prekey_ids()[0];
    let first_okem = used.one_time_kem_prekey_ids()[0];
    for (otp, okem) in [
        (Some(first_otp), Some(first_okem)),
        (None, None),
        (None, None),
    ] {
        let bundle = used.bundle(&me, otp, okem).unwrap().verify().unwrap();
        let mut s = Session::initiate(&mut r, &alice, &bundle).unwrap();
        let m = send(&mut s, &mut r, b"first");
        Session::respond(&me, &mut used, &m, AD).unwrap();
    }
    let key = prekeys_key();
    let mut out = Vec::new();
    for store in [&fresh, &used] {
        let plain = store.to_stored();
        let mut v = vec![0u8];
        v.extend_from_slice(plain.as_bytes());
        out.push(v);
        let mut v = vec![1u8];
        v.extend_from_slice(&plain.encrypt(&mut r, &key));
        out.push(v);
        // Zero-tag variant: `0x01 0x14 nonce plain 0^16`.
        let mut v = vec![1u8, 0x01, 0x14];
        v.extend_from_slice(&[0u8; 24]);
        v.extend_from_slice(plain.as_bytes());
        v.extend_from_slice(&[0u8; 16]);
        out.push(v);
    }
    let whole = out[3].clone();
    out.extend(truncations(&whole));
    out
}

// ---------------------------------------------------------------------------
// Envelopes (spec §8.7)

/// The device the target opens with, another recipient, and a device that
/// is never a recipient; identical on every call.
fn envelope_devices() -> &'static [DeviceIdentity; 3] {
    static D: OnceLock<[DeviceIdentity; 3]> = OnceLock::new();
    D.get_or_init(|| {
        let mut r = rng(0xE7E);
        [(); 3].map(|_| DeviceIdentity::generate(&mut r))
    })
}

/// Envelopes: `mode ‖ bytes`. Even mode: the bytes are an envelope;
/// `Envelope::from_bytes` is canonical and within its bounds, and `open`
/// with the fixed device never panics and returns a payload that fits the
/// body. Odd mode: the bytes are a payload sealed for the fixed device (and
/// its first half for another); both get theirs back unchanged after an
/// encode/decode round trip, and a third device finds no slot.
pub fn envelope(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let [own, other, outsider] = envelope_devices();
    if mode & 1 == 0 {
        let Ok(env) = Envelope::from_bytes(rest) else {
            return;
        };
        assert_eq!(env.to_bytes(), rest, "envelope encoding is not canonical");
        assert_eq!(env.len(), rest.len());
        assert!(env.slot_count() % 4 == 0 && env.slot_count() <= MAX_ENVELOPE_SLOTS);
        if let Ok(payload) = env.open(own) {
            assert!(payload.len() + ENVELOPE_BODY_OVERHEAD <= env.body_len());
        }
    } else {
        let half = &rest[..rest.len() / 2];
        let mut r = rng(u64::from(mode));
        let sealed = Envelope::seal(&mut r, &[(own.public(), rest), (other.public(), half)]);
        let env = match sealed {
            Ok(env) => env,
            Err(e) => {
                assert!(
                    matches!(e, EnvelopeError::PayloadTooLarge { .. })
                        && rest.len() > MAX_ENVELOPE_PAYLOAD_LEN,
                    "sealing failed: {e:?}"
                );
                return;
            }
        };
        let back = Envelope::from_bytes(&env.to_bytes()).unwrap();
        assert_eq!(back.open(own).unwrap().as_slice(), rest, "wrong payload");
        assert_eq!(back.open(other).unwrap().as_slice(), half, "wrong payload");
        assert_eq!(
            back.open(outsider).map(|_| ()),
            Err(EnvelopeError::NoSlotForDevice)
        );
    }
}

/// Whether the fixed device opens the envelope of an even-mode input.
pub fn envelope_opens(data: &[u8]) -> bool {
    data.split_first()
        .and_then(|(_, rest)| Envelope::from_bytes(rest).ok())
        .is_some_and(|env| env.open(&envelope_devices()[0]).is_ok())
}

/// Seeds: envelopes of 2 and 5 recipients, one of them with the fixed
/// device's body replaced by a framed plaintext and an all-zero tag (opens
/// in fuzzing builds only), and a payload to seal.
fn envelope_seeds() -> Vec<Vec<u8>> {
    let [own, other, _] = envelope_devices();
    let mut r = rng(0xE7E1);
    let env = Envelope::seal(
        &mut r,
        &[
            (own.public(), b"to the fixed device"),
            (other.public(), b"to another"),
        ],
    )
    .unwrap();
    let bytes = env.to_bytes();
    let slot_len = ENVELOPE_HINT_LEN + env.body_len();
    let mut plain = vec![0u8; env.body_len()];
    plain[..4].copy_from_slice(&5u32.to_be_bytes());
    plain[4..9].copy_from_slice(b"fuzz!");
    // The fixed device's slot is the one whose body change changes its result.
    let original = env.open(own).unwrap();
    let zero_tag = (0..env.slot_count())
        .map(|i| {
            let mut b = bytes.clone();
            let at = ENVELOPE_HEADER_LEN + i * slot_len + ENVELOPE_HINT_LEN;
            b[at..at + env.body_len()].copy_from_slice(&plain);
            b
        })
        .find(|b| Envelope::from_bytes(b).unwrap().open(own).ok() != Some(original.clone()))
        .unwrap();
    let more: Vec<DeviceIdentity> = (0..3).map(|_| DeviceIdentity::generate(&mut r)).collect();
    let mut five: Vec<(&session_ratchet::identity::DevicePublicIdentity, &[u8])> =
        vec![(own.public(), &[0x42; 300]), (other.public(), b"")];
    five.extend(more.iter().map(|d| (d.public(), b"x".as_slice())));
    let big = Envelope::seal(&mut r, &five).unwrap().to_bytes();
    let mut seeds = Vec::new();
    for e in [bytes, zero_tag, big] {
        let mut v = vec![0u8];
        v.extend_from_slice(&e);
        seeds.push(v);
    }
    let mut v = vec![1u8];
    v.extend_from_slice(b"a payload to seal");
    seeds.push(v);
    seeds
}

// ---------------------------------------------------------------------------
// Seed corpora

fn handshake_seeds() -> (Seeds, Seeds, Seeds) {
    let mut r = rng(0x5EED);
    let (bob, mut store) = bob();
    let alice = alice();
    let otp = store.one_time_prekey_ids()[0];
    let kotp = store.one_time_kem_prekey_ids()[0];
    let full = store.bundle(&bob, Some(otp), Some(kotp)).unwrap();
    let plain = store.bundle(&bob, None, None).unwrap();
    let bundles = vec![full.to_bytes(), plain.to_bytes()];
    let mut messages = Vec::new();
    for b in [&full, &plain] {
        let v = b.clone().verify().unwrap();
        let mut s = Session::initiate(&mut r, &alice, &v).unwrap();
        let m = send(&mut s, &mut r, b"first");
        messages.push(zero_tag(m.clone()));
        messages.push(m);
    }
    let account = AccountIdentity::generate(&mut r);
    let certs = vec![account.certify(bob.public()).to_bytes()];
    let _ = &mut store;
    (bundles, messages, certs)
}

/// The committed seed corpus of every target, built deterministically.
pub fn seed_corpus() -> Vec<(&'static str, Vec<Vec<u8>>)> {
    let (bundles, messages, certs) = handshake_seeds();
    let (bencode, dm_seeds, group, link_seeds) = v2_seeds();
    vec![
        ("prekey_bundle", bundles),
        ("prekey_message", messages),
        ("device_certificate", certs),
        ("ratchet_decrypt", decrypt_fixture().seeds.clone()),
        ("stored_session", stored_seeds()),
        ("bencode", bencode),
        ("dm_receive", dm_seeds),
        ("device_group", group),
        ("link_request", link_seeds),
        ("interaction", interaction_seeds()),
        ("device_list", device_list_fixture().seeds.clone()),
        ("prekey_record", record_fixture().seeds.clone()),
        ("stored_prekeys", stored_prekeys_seeds()),
        ("envelope", envelope_seeds()),
        ("device_link", link_logic::device_link_seeds()),
        ("sessions_decrypt", sessions_logic::sessions_decrypt_seeds()),
        ("multidevice", sessions_logic::multidevice_seeds()),
    ]
}

/// Whether `ratchet_decrypt`'s input (selector ‖ message) fails to decrypt.
pub fn decrypt_is_rejected(data: &[u8]) -> bool {
    let Some((&sel, msg)) = data.split_first() else {
        return true;
    };
    let f = decrypt_fixture();
    let stored = StoredSession::from_bytes(&f.states[usize::from(sel) % f.states.len()]);
    let mut s = Session::from_stored(&stored).unwrap();
    s.decrypt(msg, AD).is_err()
}
