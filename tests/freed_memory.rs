//! Secrets left in freed memory (spec §1.4: every secret MUST be erased).
//!
//! This test binary runs under `scan-alloc`'s global allocator, which scans
//! every freed block, and every block a `realloc` moves away from, for the
//! secrets a test registers. Each test names its secrets, runs one path
//! that serialises, parses or derives them, drops everything, and expects
//! no freed block to have held any of them.
//!
//! The secrets come from the RNG: [`Draws`] records every draw of 32 bytes
//! or more (identity seeds, X25519 secrets, ML-KEM seeds are drawn whole
//! and stored as drawn), in a fixed array wiped on drop, so the test's own
//! bookkeeping never lands in a freed block. Draws that are public by
//! design (nonces are 24 bytes, so they are not recorded) are never watched.
//!
//! The controls at the top show that the scanner finds an unwiped copy
//! (freed, or left behind by a growing `Vec`) and does not flag a wiped one.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use scan_alloc::{ScanAlloc, take_hits, watch};
use session_ratchet::rand_core::{TryCryptoRng, TryRng};
use std::convert::Infallible;
use std::sync::Mutex;
use zeroize::{Zeroize, Zeroizing};

#[global_allocator]
static ALLOC: ScanAlloc = ScanAlloc;

/// The scanner's registry is global: one test at a time.
static SERIAL: Mutex<()> = Mutex::new(());

const MAX_DRAWS: usize = 64;

/// A seeded RNG that remembers its draws of 32 bytes or more (the first 64
/// bytes of each), without allocating; wiped on drop.
struct Draws {
    inner: ChaCha20Rng,
    draws: [[u8; 64]; MAX_DRAWS],
    lens: [usize; MAX_DRAWS],
    count: usize,
}

impl Draws {
    fn new(seed: u8) -> Self {
        Self {
            inner: ChaCha20Rng::from_seed([seed; 32]),
            draws: [[0; 64]; MAX_DRAWS],
            lens: [0; MAX_DRAWS],
            count: 0,
        }
    }

    /// Every recorded draw, as 32-byte secrets (a 64-byte draw, such as an
    /// ML-KEM seed d ‖ z, counts as two).
    fn secrets(&self) -> Vec<[u8; 32]> {
        let mut out = Vec::new();
        for i in 0..self.count {
            for half in self.draws[i][..self.lens[i]].chunks_exact(32) {
                out.push(half.try_into().unwrap());
            }
        }
        out
    }

    /// Forgets the draws so far (they are not the secrets of what follows).
    fn forget(&mut self) {
        self.draws.zeroize();
        self.count = 0;
    }
}

impl Drop for Draws {
    fn drop(&mut self) {
        self.draws.zeroize();
    }
}

impl TryRng for Draws {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(self.inner.next_u32())
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(self.inner.next_u64())
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.inner.fill_bytes(dst);
        if dst.len() >= 32 && self.count < MAX_DRAWS {
            let n = dst.len().min(64);
            self.draws[self.count][..n].copy_from_slice(&dst[..n]);
            self.lens[self.count] = n;
            self.count += 1;
        }
        Ok(())
    }
}

impl TryCryptoRng for Draws {}

/// Runs `path` while watching `secrets`; returns how many freed blocks held
/// each.
fn scan(secrets: &[[u8; 32]], path: impl FnOnce()) -> Vec<u32> {
    let refs: Vec<&[u8]> = secrets.iter().map(|s| &s[..]).collect();
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    watch(&refs);
    path();
    take_hits()
}

/// `path` leaves none of `secrets` in freed memory.
fn assert_clean(what: &str, secrets: &[[u8; 32]], path: impl FnOnce()) {
    assert!(!secrets.is_empty(), "{what}: no secrets to watch");
    let hits = scan(secrets, path);
    let leaked: Vec<usize> = (0..hits.len()).filter(|&i| hits[i] > 0).collect();
    assert!(
        leaked.is_empty(),
        "{what}: secrets {leaked:?} of {} found in freed memory ({hits:?} blocks)",
        secrets.len()
    );
}

// ---- controls -------------------------------------------------------------

const CANARY: [u8; 32] = *b"a secret that must be wiped here";

#[test]
fn control_an_unwiped_freed_copy_is_found() {
    let hits = scan(&[CANARY], || {
        let v = std::hint::black_box(CANARY.to_vec());
        drop(v);
    });
    assert_eq!(hits, [1]);
}

#[test]
fn control_a_growing_vec_leaves_its_old_block_behind() {
    let hits = scan(&[CANARY], || {
        let mut v = Zeroizing::new(Vec::with_capacity(32));
        v.extend_from_slice(&CANARY);
        // Growing moves the bytes and frees the old block unwiped; the
        // final block is wiped by `Zeroizing`.
        v.extend_from_slice(&[0; 100]);
        std::hint::black_box(&v);
    });
    assert_eq!(hits, [1]);
}

#[test]
fn control_a_wiped_copy_is_not_found() {
    let hits = scan(&[CANARY], || {
        let v = Zeroizing::new(std::hint::black_box(CANARY.to_vec()));
        drop(v);
        let mut w = CANARY.to_vec();
        w.zeroize();
    });
    assert_eq!(hits, [0]);
}

// ---- identities, accounts, prekeys ---------------------------------------

use session_ratchet::identity::{DeviceIdentity, StoredIdentity};
use session_ratchet::prekey::{PrekeyStore, StoredPrekeys};

#[test]
fn identity_to_and_from_stored() {
    let mut rng = Draws::new(1);
    let id = DeviceIdentity::generate(&mut rng);
    let secrets = rng.secrets();
    assert_eq!(secrets.len(), 2, "an Ed25519 seed and an X25519 secret");
    assert_clean("identity", &secrets, || {
        let stored = id.to_stored();
        let back = DeviceIdentity::from_stored(&StoredIdentity::from_bytes(stored.as_bytes()));
        drop(back.unwrap());
        drop(stored);
    });
    drop(id);
}

#[test]
fn prekey_store_to_and_from_stored() {
    let mut rng = Draws::new(2);
    let id = DeviceIdentity::generate(&mut rng);
    rng.forget();
    let mut store = PrekeyStore::new(&mut rng, &id);
    for _ in 0..3 {
        store.rotate_signed_prekey(&mut rng, &id).unwrap();
    }
    let secrets = rng.secrets();
    assert!(
        secrets.len() >= 5,
        "prekey secrets drawn: {}",
        secrets.len()
    );
    assert_clean("prekey store", &secrets, || {
        let stored = store.to_stored();
        let back = PrekeyStore::from_stored(&StoredPrekeys::from_bytes(stored.as_bytes()));
        drop(back.unwrap());
        drop(stored);
    });
}

// ---- sessions --------------------------------------------------------------

use session_ratchet::ratchet::{Session, StoredSession};

/// Alice and Bob with a session, Bob holding skipped message keys.
fn sessions(seed: u8) -> (Session, Session, Draws, Draws) {
    let mut ra = Draws::new(seed);
    let mut rb = Draws::new(seed + 1);
    let alice_id = DeviceIdentity::generate(&mut ra);
    let bob_id = DeviceIdentity::generate(&mut rb);
    let mut prekeys = PrekeyStore::new(&mut rb, &bob_id);
    let bundle = prekeys
        .bundle(&bob_id, None, None)
        .unwrap()
        .verify()
        .unwrap();
    let mut alice = Session::initiate(&mut ra, &alice_id, &bundle).unwrap();
    let first = alice.encrypt(&mut ra, b"hello", b"").unwrap();
    let (mut bob, _) = Session::respond(&bob_id, &mut prekeys, &first, b"").unwrap();
    for turn in 0..3 {
        let m = bob.encrypt(&mut rb, b"turn", b"").unwrap();
        alice.decrypt(&m, b"").unwrap();
        let m = alice.encrypt(&mut ra, b"turn", b"").unwrap();
        bob.decrypt(&m, b"").unwrap();
        let _ = turn;
    }
    // Three messages Bob never gets: their keys stay skipped in his state.
    for _ in 0..3 {
        alice.encrypt(&mut ra, b"lost", b"").unwrap();
    }
    let m = alice.encrypt(&mut ra, b"arrives", b"").unwrap();
    bob.decrypt(&m, b"").unwrap();
    ra.forget();
    rb.forget();
    (alice, bob, ra, rb)
}

/// The secrets a session's stored form holds that the test can name: the
/// current sending header key and the skipped message keys, from the
/// hazmat trace of the messages just sent.
#[test]
fn session_to_and_from_stored() {
    let (mut alice, mut bob, mut ra, _rb) = sessions(10);
    let mut secrets = Vec::new();
    // Keys of messages Bob will hold as skipped, and the header key.
    for _ in 0..4 {
        alice.encrypt(&mut ra, b"skipped", b"").unwrap();
        let t = alice.hazmat_last_encryption().unwrap();
        secrets.push(t.message_key);
        secrets.push(t.header_key);
    }
    let m = alice.encrypt(&mut ra, b"last", b"").unwrap();
    bob.decrypt(&m, b"").unwrap();
    // The ratchet secrets drawn by the last turns, too.
    secrets.extend(ra.secrets());
    secrets.dedup();
    assert_clean("session", &secrets, || {
        for s in [&alice, &bob] {
            let stored = s.to_stored();
            let back = Session::from_stored(&StoredSession::from_bytes(stored.as_bytes()));
            drop(back.unwrap());
            drop(stored);
        }
    });
}

#[test]
fn session_encrypt_and_decrypt() {
    let (mut alice, mut bob, mut ra, mut rb) = sessions(20);
    alice.encrypt(&mut ra, b"warm", b"").unwrap();
    let t = alice.hazmat_last_encryption().unwrap();
    let secrets = [t.message_key, t.body_key, t.header_key];
    assert_clean("encrypt and decrypt", &secrets, || {
        let m = alice.encrypt(&mut ra, b"next", b"").unwrap();
        bob.decrypt(&m, b"").unwrap();
        let m = bob.encrypt(&mut rb, b"back", b"").unwrap();
        alice.decrypt(&m, b"").unwrap();
    });
}

// ---- a device's sessions (the single-blob manager of spec §8.9) -----------

use session_ratchet::account::Account;
use session_ratchet::device::list::{
    ClientVersion, DeviceEntry, DeviceId, DeviceListDraft, Platform, VerifiedDeviceList,
};
use session_ratchet::device::record::PrekeyRecord;
use session_ratchet::sessions::{SessionManager, StoredDevice};

#[test]
fn session_manager_to_and_from_stored() {
    // Alice's identity comes first from the recording RNG: its two draws
    // are the secrets the stored form starts with.
    let mut draws = Draws::new(40);
    let alice_id = DeviceIdentity::generate(&mut draws);
    let secrets = draws.secrets();
    assert_eq!(secrets.len(), 2);
    let mut rng = ChaCha20Rng::from_seed([41; 32]);
    let v = ClientVersion {
        major: 1,
        minor: 0,
        patch: 0,
    };
    let list_of =
        |rng: &mut ChaCha20Rng, account: &Account, ids: &[(&DeviceIdentity, DeviceId)]| {
            let mut draft = DeviceListDraft::first(account);
            for (i, (identity, id)) in ids.iter().enumerate() {
                draft
                    .add_device(DeviceEntry::new(
                        *id,
                        *identity.public(),
                        Platform::Android,
                        &format!("d{i}"),
                        v,
                        0,
                    ))
                    .unwrap();
            }
            let _ = rng;
            VerifiedDeviceList::trust_first_with_key(
                draft.sign(account).unwrap(),
                &account.public_key(),
            )
            .unwrap()
        };
    let (alice_account, _) = Account::generate(&mut rng);
    let alice_dev = DeviceId::generate(&mut rng);
    let alice_list = list_of(&mut rng, &alice_account, &[(&alice_id, alice_dev)]);
    let alice_prekeys = PrekeyStore::new(&mut rng, &alice_id);
    let mut alice = SessionManager::new(alice_id, alice_dev, alice_list, alice_prekeys).unwrap();
    // Bob: two devices, so Alice holds two sessions (a stored form of
    // several kilobytes, past any first guess of its size).
    let (bob_account, _) = Account::generate(&mut rng);
    let bob_ids: Vec<(DeviceIdentity, DeviceId)> = (0..2)
        .map(|_| {
            (
                DeviceIdentity::generate(&mut rng),
                DeviceId::generate(&mut rng),
            )
        })
        .collect();
    let refs: Vec<(&DeviceIdentity, DeviceId)> = bob_ids.iter().map(|(i, d)| (i, *d)).collect();
    let bob_list = list_of(&mut rng, &bob_account, &refs);
    let bob_stores: Vec<PrekeyStore> = bob_ids
        .iter()
        .map(|(i, _)| PrekeyStore::new(&mut rng, i))
        .collect();
    let bundles: Vec<_> = bob_ids
        .iter()
        .zip(&bob_stores)
        .map(|((i, _), s)| s.bundle(i, None, None).unwrap())
        .collect();
    let record = PrekeyRecord::build(&mut rng, &bob_list, &bundles).unwrap();
    let bob_key = bob_account.public_key();
    alice.add_contact(bob_list).unwrap();
    alice.add_prekey_record(&bob_key, &record).unwrap();
    alice.encrypt(&mut rng, &bob_key, b"hello", 1_000).unwrap();
    assert!(
        alice.to_stored().len() > 4096,
        "the stored form outgrows 4 KiB"
    );
    assert_clean("session manager", &secrets, || {
        let stored = alice.to_stored();
        let back = SessionManager::from_stored(&StoredDevice::from_bytes(stored.as_bytes()));
        drop(back.unwrap());
        drop(stored);
    });
}

// ---- Session v2: recovery phrases ---------------------------------------------

#[cfg(feature = "session-v2")]
use session_ratchet::secret::RecoverySeed;
#[cfg(feature = "session-v2")]
use session_ratchet::session_v2::mnemonic;

#[cfg(feature = "session-v2")]
#[test]
fn recovery_phrase_encode_and_decode() {
    let seed = RecoverySeed::from_bytes(*b"sixteen secret b");
    let phrase = mnemonic::encode_recovery_seed(&seed).unwrap();
    // The first 32 bytes of the phrase, and the first word prefixes joined
    // (the string the checksum is computed over).
    let mut head = [0u8; 32];
    head.copy_from_slice(&phrase.as_str().as_bytes()[..32]);
    let mut prefixes = [0u8; 32];
    let mut n = 0;
    for w in phrase.words() {
        for b in w.bytes().take(3) {
            if n < 32 {
                prefixes[n] = b.to_ascii_lowercase();
                n += 1;
            }
        }
    }
    assert_eq!(n, 32);
    let text = Zeroizing::new(phrase.as_str().to_owned());
    drop(phrase);
    assert_clean("mnemonic", &[head, prefixes], || {
        let p = mnemonic::encode_recovery_seed(&seed).unwrap();
        drop(p);
        let decoded = mnemonic::decode(&text).unwrap();
        drop(decoded);
    });
}

// ---- Session v2: direct messages --------------------------------------------

#[cfg(feature = "session-v2")]
#[test]
fn v2_direct_message_encrypt_and_receive() {
    use session_ratchet::secret::AccountKeySeed;
    use session_ratchet::session_v2::{account_keys::account_key_pair, dm, identity::Identity};
    let mut rng = ChaCha20Rng::from_seed([50; 32]);
    let alice = Identity::from_seed_bytes(&[1u8; 16]).unwrap();
    let bob = Identity::from_seed_bytes(&[2u8; 16]).unwrap();
    let keys = account_key_pair(&AccountKeySeed::from_bytes([3; 32]));
    let public = keys.public_keys();
    // The content is the user's secret: no freed block may keep it.
    let content: [u8; 32] = *b"what the source told the reporte";
    assert_clean("v2 DM", &[content], || {
        for pfs in [true, false] {
            let msg = if pfs {
                dm::encrypt_pfs(&mut rng, &alice, &bob.session_id(), &public, &content, None)
            } else {
                dm::encrypt_non_pfs(&mut rng, &alice, &bob.session_id(), &content, None)
            }
            .unwrap();
            let got = dm::receive(&bob, &[&keys], &msg).unwrap();
            assert_eq!(got.content.as_slice(), content);
            drop(got);
        }
    });
}

// ---- the device object (spec ch. 10) -----------------------------------------

#[test]
fn device_send_receive_and_open() {
    use session_ratchet::client::{
        Device, DeviceInfo, MemoryStore, RecordKind, hazmat_open_record, hazmat_record_key,
    };
    use session_ratchet::ratchet::StorageKey;
    use std::sync::Arc;
    type Shared = Arc<Mutex<MemoryStore>>;
    let store: Shared = Arc::new(Mutex::new(MemoryStore::new()));
    let key = StorageKey::from_bytes([7; 32]);
    let rng = |n: u8| Box::new(ChaCha20Rng::from_seed([n; 32]));
    let (mut alice, _) = Device::create_account(
        Box::new(store.clone()),
        &key,
        rng(30),
        DeviceInfo::new("alice"),
        1,
    )
    .unwrap();
    let (mut bob, _) = Device::create_account(
        Box::new(MemoryStore::new()),
        &key,
        rng(31),
        DeviceInfo::new("bob"),
        1,
    )
    .unwrap();
    alice
        .add_contact(
            &bob.session_id(),
            &bob.device_list(),
            Some(&bob.prekey_record().unwrap()),
        )
        .unwrap();
    bob.add_contact(
        &alice.session_id(),
        &alice.device_list(),
        Some(&alice.prekey_record().unwrap()),
    )
    .unwrap();
    let bob_key = bob.account_key();
    for out in alice.send(&bob_key, b"hello", 2).unwrap() {
        bob.receive(&out.bytes).unwrap();
    }
    // Alice's identity secrets, read from her identity record (spec §10.3):
    // its plain content is the stored identity (version, type, the Ed25519
    // seed, the X25519 secret).
    let secrets: Vec<[u8; 32]> = {
        let zero = [0u8; 32];
        let name = hazmat_record_key(&key, RecordKind::Identity, &zero, &zero);
        let guard = store.lock().unwrap();
        let value = guard
            .records()
            .find(|(k, _)| *k == name.as_slice())
            .unwrap()
            .1;
        let owner = *alice.device_id().as_bytes();
        let (_, plain) =
            hazmat_open_record(&key, &owner, RecordKind::Identity, &zero, &zero, value).unwrap();
        let plain = Zeroizing::new(plain);
        vec![
            plain[2..34].try_into().unwrap(),
            plain[34..66].try_into().unwrap(),
        ]
    };
    assert_clean("device", &secrets, || {
        for out in alice.send(&bob_key, b"more", 3).unwrap() {
            bob.receive(&out.bytes).unwrap();
        }
        let reopened = Device::open(Box::new(store.clone()), &key, rng(32), alice.generation());
        drop(reopened.unwrap());
    });
}
