//! What storing a device costs: per-record storage (spec ch. 10) next to
//! the single blob of spec §8.9, for the same device state.
//!
//! `cargo bench --bench storage` (add `-- 10,100` to choose contact counts;
//! the default is 10, 100 and 1000).
//!
//! For each contact count `N`, one device (one account, one device) holds
//! `N` contacts of 3 devices each, with an established session with every
//! contact device (a first message each way). The same state is measured
//! in both formats: a `SessionManager` stored as one blob, and the
//! `client::Device` migrated from that blob into a `MemoryStore`.
//!
//! - **bytes written per message**: the blob client must rewrite the whole
//!   blob before sending (§8.6.4); the device object commits the session
//!   sets of the 3 devices the message went to and the head. The sessions
//!   the message used are the 3 stored sessions inside those records (the
//!   record value minus its 67 bytes of record overhead and the set's
//!   framing: every set here holds exactly one session).
//! - **open**: `SessionManager::from_stored` on the blob (with its
//!   decryption, as a client stores it encrypted) against `Device::open`
//!   (head, identity, prekeys, contact index, own records), and the first
//!   send after opening, which loads one contact.
//!
//! Times are the 10th percentile of many short batches (the machine is
//! shared); bytes are exact.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use session_ratchet::account::Account;
use session_ratchet::client::{Device, MemoryStore, RecordKind};
use session_ratchet::device::list::*;
use session_ratchet::device::record::PrekeyRecord;
use session_ratchet::identity::{DeviceIdentity, Ed25519PublicKey};
use session_ratchet::prekey::PrekeyStore;
use session_ratchet::ratchet::StorageKey;
use session_ratchet::sessions::{SessionManager, StoredDevice};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const DEVICES_PER_CONTACT: usize = 3;
/// Record overhead (spec §10.9) and a one-session set's framing (§10.3.1:
/// the type header, u64 latest, two u8 counts, and the entry's u64, u8, u32).
const RECORD_OVERHEAD: usize = 67;
const SET_FRAMING: usize = 2 + 8 + 1 + 1 + 8 + 1 + 4;

fn v() -> ClientVersion {
    ClientVersion {
        major: 1,
        minor: 0,
        patch: 0,
    }
}

/// An account with `n` devices, each a session manager, with its list and
/// prekey record.
fn account(
    rng: &mut ChaCha20Rng,
    n: usize,
) -> (Account, Vec<SessionManager>, SignedDeviceList, PrekeyRecord) {
    let (account, _) = Account::generate(rng);
    let mut draft = DeviceListDraft::first(&account);
    let mut parts = Vec::new();
    for i in 0..n {
        let identity = DeviceIdentity::generate(rng);
        let id = DeviceId::generate(rng);
        draft
            .add_device(DeviceEntry::new(
                id,
                *identity.public(),
                Platform::Android,
                &format!("d{i}"),
                v(),
                0,
            ))
            .unwrap();
        let store = PrekeyStore::new(rng, &identity);
        parts.push((identity, id, store));
    }
    let list = draft.sign(&account).unwrap();
    let verified =
        VerifiedDeviceList::trust_first_with_key(list.clone(), &account.public_key()).unwrap();
    let bundles: Vec<_> = parts
        .iter()
        .map(|(identity, _, store)| store.bundle(identity, None, None).unwrap())
        .collect();
    let record = PrekeyRecord::build(rng, &verified, &bundles).unwrap();
    let managers = parts
        .into_iter()
        .map(|(identity, id, store)| {
            SessionManager::new(identity, id, verified.clone(), store).unwrap()
        })
        .collect();
    (account, managers, list, record)
}

struct World {
    me: SessionManager,
    contacts: Vec<(Ed25519PublicKey, Vec<SessionManager>)>,
    rng: ChaCha20Rng,
}

fn world(n: usize) -> World {
    let mut rng = ChaCha20Rng::seed_from_u64(n as u64);
    let (me_account, mut mine, my_list, _) = account(&mut rng, 1);
    let mut me = mine.pop().unwrap();
    let mut contacts = Vec::new();
    for _ in 0..n {
        let (acct, mut devices, list, record) = account(&mut rng, DEVICES_PER_CONTACT);
        let key = acct.public_key();
        me.add_contact(VerifiedDeviceList::trust_first_with_key(list, &key).unwrap())
            .unwrap();
        me.add_prekey_record(&key, &record).unwrap();
        for d in &mut devices {
            d.add_prekey_record(&key, &record).unwrap();
            d.add_contact(
                VerifiedDeviceList::trust_first_with_key(my_list.clone(), &me_account.public_key())
                    .unwrap(),
            )
            .unwrap();
        }
        // A first message each way: every session established.
        let out = me.encrypt(&mut rng, &key, b"hello", 1_000).unwrap();
        for i in 0..devices.len() {
            devices[i].decrypt(&out.envelopes[0]).unwrap();
            let back = devices[i]
                .encrypt(&mut rng, &me_account.public_key(), b"hi", 1_001)
                .unwrap();
            me.decrypt(&back.envelopes[0]).unwrap();
            // The copies to the contact's other devices.
            for (j, sibling) in devices.iter_mut().enumerate() {
                if j != i {
                    sibling.decrypt(&back.envelopes[0]).unwrap();
                }
            }
        }
        contacts.push((key, devices));
    }
    World { me, contacts, rng }
}

/// The 10th percentile of `batches` timings of `per_batch` calls, per call.
fn p10(batches: usize, per_batch: usize, mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..batches)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..per_batch {
                f();
            }
            t.elapsed() / per_batch as u32
        })
        .collect();
    times.sort();
    times[times.len() / 10]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn main() {
    let counts: Vec<usize> = std::env::args()
        .skip(1)
        .find(|a| a.chars().all(|c| c.is_ascii_digit() || c == ','))
        .filter(|a| !a.is_empty())
        .map(|a| a.split(',').map(|x| x.parse().unwrap()).collect())
        .unwrap_or_else(|| vec![10, 100, 1000]);
    println!(
        "| contacts (x{DEVICES_PER_CONTACT} devices) | blob size | blob: bytes written per message | records: bytes written per message | sessions used | records / sessions used | store size | blob open | device open | first send after open (loads 1 contact) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for n in counts {
        let mut w = world(n);
        let key = StorageKey::from_bytes([9; 32]);
        let blob = w.me.to_stored();
        let encrypted = blob.encrypt(&mut w.rng, &key);
        let blob_open = p10(if n >= 1000 { 5 } else { 20 }, 1, || {
            let plain = StoredDevice::decrypt(&encrypted, &key).unwrap();
            std::hint::black_box(SessionManager::from_stored(&plain).unwrap());
        });
        let store = Arc::new(Mutex::new(MemoryStore::new()));
        let device = Device::migrate(
            Box::new(store.clone()),
            &key,
            Box::new(ChaCha20Rng::seed_from_u64(1)),
            &blob,
            None,
            2_000,
        )
        .unwrap();
        let generation = device.generation();
        drop(device);
        let store_size = store.lock().unwrap().total_bytes();
        let device_open = p10(50, 4, || {
            std::hint::black_box(
                Device::open(
                    Box::new(store.clone()),
                    &key,
                    Box::new(ChaCha20Rng::seed_from_u64(2)),
                    generation,
                )
                .unwrap(),
            );
        });
        // Messages to contacts in turn: bytes written, and the sessions used.
        let mut device = Device::open(
            Box::new(store.clone()),
            &key,
            Box::new(ChaCha20Rng::seed_from_u64(3)),
            generation,
        )
        .unwrap();
        let messages = 30.min(n).max(10);
        let (mut written, mut used) = (0usize, 0usize);
        for i in 0..messages {
            let (contact, devices) = &mut w.contacts[i % n];
            let before: std::collections::BTreeMap<Vec<u8>, Vec<u8>> = store
                .lock()
                .unwrap()
                .records()
                .map(|(k, v)| (k.to_vec(), v.to_vec()))
                .collect();
            let b0 = store.lock().unwrap().bytes_written();
            let out = device
                .send(contact, b"a 40-byte message of a usual length....", 3_000)
                .unwrap();
            let s = store.lock().unwrap();
            written += (s.bytes_written() - b0) as usize;
            for (k, val) in s.records() {
                if k[0] == RecordKind::Sessions as u8
                    && before.get(k).map(Vec::as_slice) != Some(val)
                {
                    used += val.len() - RECORD_OVERHEAD - SET_FRAMING;
                }
            }
            drop(s);
            // The contact's devices really receive it.
            for d in devices.iter_mut() {
                d.decrypt(&out[0].bytes).unwrap();
            }
        }
        // First send after a fresh open: loads one contact's records.
        let (contact, _) = &w.contacts[n / 2];
        let contact = *contact;
        let first_send = p10(20, 1, || {
            let mut d = Device::open(
                Box::new(store.clone()),
                &key,
                Box::new(ChaCha20Rng::seed_from_u64(4)),
                0,
            )
            .unwrap();
            std::hint::black_box(d.send(&contact, b"x", 4_000).unwrap());
        });
        println!(
            "| {n} | {} B | {} B | {} B | {} B | {:.3} | {} B | {:.0} µs | {:.0} µs | {:.0} µs |",
            blob.len(),
            blob.len(),
            written / messages,
            used / messages,
            written as f64 / used as f64,
            store_size,
            us(blob_open),
            us(device_open),
            us(first_send),
        );
    }
}
