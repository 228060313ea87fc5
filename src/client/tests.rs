use super::*;
use crate::ratchet::RatchetError;
use alloc::format;
use alloc::sync::Arc;
use alloc::vec;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use std::sync::Mutex;

type Shared = Arc<Mutex<MemoryStore>>;

fn rng(n: u8) -> Box<ChaCha20Rng> {
    Box::new(ChaCha20Rng::from_seed([n; 32]))
}

fn key(n: u8) -> StorageKey {
    StorageKey::from_bytes([n; 32])
}

/// A new account whose first device is on `store`, with storage key and
/// RNG seed `n`.
fn account<S: RecordStore + 'static>(
    store: S,
    n: u8,
    name: &str,
    now: u64,
) -> (Device, RecoverySeed) {
    Device::create_account(Box::new(store), &key(n), rng(n), DeviceInfo::new(name), now).unwrap()
}

fn shared() -> Shared {
    Arc::new(Mutex::new(MemoryStore::new()))
}

/// Two accounts with one device each, contacts of each other, each over
/// its own shared store (so tests can open the same store again).
fn pair() -> (Device, Shared, Device, Shared) {
    let (sa, sb) = (shared(), shared());
    let (mut a, _) = account(sa.clone(), 1, "a", 1_000);
    let (mut b, _) = account(sb.clone(), 2, "b", 1_000);
    let (ra, rb) = (a.prekey_record().unwrap(), b.prekey_record().unwrap());
    a.add_contact(&b.session_id(), &b.device_list(), Some(&rb))
        .unwrap();
    b.add_contact(&a.session_id(), &a.device_list(), Some(&ra))
        .unwrap();
    (a, sa, b, sb)
}

fn send_one(from: &mut Device, to: &mut Device, text: &[u8], now: u64) {
    let to_key = to.account_key();
    let out = from.send(&to_key, text, now).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].mailboxes, vec![to_key]);
    let got = to.receive(&out[0].bytes).unwrap();
    assert_eq!(got.content, text);
    assert_eq!(got.sender, from.account_key());
}

#[test]
fn conversation_survives_reopening_after_every_message() {
    let (mut a, sa, mut b, sb) = pair();
    for i in 0..6u8 {
        let text = [b'm', i];
        if i % 2 == 0 {
            send_one(&mut a, &mut b, &text, 2_000 + u64::from(i));
        } else {
            send_one(&mut b, &mut a, &text, 2_000 + u64::from(i));
        }
        // Both devices are dropped and opened again from their stores.
        let (ga, gb) = (a.generation(), b.generation());
        a = Device::open(Box::new(sa.clone()), &key(1), rng(10 + i), ga).unwrap();
        b = Device::open(Box::new(sb.clone()), &key(2), rng(20 + i), gb).unwrap();
        assert_eq!((a.generation(), b.generation()), (ga, gb));
    }
    assert_eq!(a.contacts(), vec![b.account_key()]);
}

#[test]
fn a_send_writes_only_the_sessions_it_used_and_the_head() {
    let (mut a, sa, mut b, _) = pair();
    send_one(&mut a, &mut b, b"first", 2_000);
    send_one(&mut b, &mut a, b"reply", 2_001);
    let before = sa.lock().unwrap().clone();
    let g = a.generation();
    let out = a.send(&b.account_key(), b"third", 2_002).unwrap();
    let after = sa.lock().unwrap().clone();
    assert_eq!(a.generation(), g + 1);
    assert_eq!(after.records_written() - before.records_written(), 2);
    // What changed: the head and the one session-set record.
    let changed: Vec<u8> = after
        .records()
        .filter(|(k, v)| before.records().find(|(k2, _)| k2 == k).map(|(_, v2)| v2) != Some(*v))
        .map(|(k, _)| k[0])
        .collect();
    assert_eq!(
        changed,
        vec![RecordKind::Head as u8, RecordKind::Sessions as u8]
    );
    assert_eq!(b.receive(&out[0].bytes).unwrap().content, b"third");
}

#[test]
fn opening_reads_no_contact_records() {
    let s = shared();
    let (mut a, _) = account(s.clone(), 1, "a", 0);
    let mut peers = Vec::new();
    for n in 0..5u8 {
        let (mut p, _) = account(MemoryStore::new(), 50 + n, "p", 0);
        let r = p.prekey_record().unwrap();
        a.add_contact(&p.session_id(), &p.device_list(), Some(&r))
            .unwrap();
        p.add_contact(&a.session_id(), &a.device_list(), None)
            .unwrap();
        let pk = p.account_key();
        for out in a.send(&pk, b"hello", 10).unwrap() {
            p.receive(&out.bytes).unwrap();
        }
        peers.push(p);
    }
    let reads_before = s.lock().unwrap().records_read();
    let mut a = Device::open(Box::new(s.clone()), &key(1), rng(9), a.generation()).unwrap();
    let reads = s.lock().unwrap().records_read() - reads_before;
    // head, identity, prekeys, contact index, account, own peer: whatever
    // the number of contacts.
    assert_eq!(reads, 6);
    assert_eq!(a.contacts().len(), 5);
    // A contact loads when a call needs it.
    let pk = peers[3].account_key();
    let out = a.send(&pk, b"again", 11).unwrap();
    assert_eq!(peers[3].receive(&out[0].bytes).unwrap().content, b"again");
}

#[test]
fn generations_only_move_forward_and_a_rolled_back_store_is_refused() {
    let (mut a, sa, mut b, _) = pair();
    let snapshot = sa.lock().unwrap().clone();
    let g0 = a.generation();
    send_one(&mut a, &mut b, b"one", 2_000);
    assert!(a.generation() > g0);
    let seen = a.generation();
    *sa.lock().unwrap() = snapshot;
    let err = Device::open(Box::new(sa.clone()), &key(1), rng(3), seen).unwrap_err();
    assert_eq!(
        err,
        ClientError::Records(RecordError::RolledBack {
            found: g0,
            expected: seen
        })
    );
    assert!(format!("{err:?}").contains("RolledBack"));
}

#[test]
fn a_stale_copy_never_reuses_a_message_key_and_its_message_is_refused() {
    let (mut a, sa, mut b, sb) = pair();
    send_one(&mut a, &mut b, b"establish", 2_000);
    send_one(&mut b, &mut a, b"reply", 2_001);
    send_one(&mut a, &mut b, b"a new sending chain", 2_001);
    // The client loses its last commit (a crash before the database synced):
    // the store goes back to a snapshot, and the client has no generation to
    // compare with.
    let snapshot = sa.lock().unwrap().clone();
    let out1 = a
        .send(&b.account_key(), b"from the newer state", 2_002)
        .unwrap();
    *sa.lock().unwrap() = snapshot;
    let mut stale = Device::open(Box::new(sa.clone()), &key(1), rng(77), 0).unwrap();
    let out2 = stale
        .send(&b.account_key(), b"from the stale state", 2_003)
        .unwrap();
    assert_eq!(
        b.receive(&out1[0].bytes).unwrap().content,
        b"from the newer state"
    );
    let before = sb.lock().unwrap().clone();
    let g = b.generation();
    let err = b.receive(&out2[0].bytes).unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Sessions(SessionsError::Undecryptable {
                error: RatchetError::DuplicateMessage,
                ..
            })
        ),
        "{err:?}"
    );
    // The receiver changed nothing.
    assert_eq!(b.generation(), g);
    let after = sb.lock().unwrap().clone();
    assert!(before.records().eq(after.records()));
}

#[test]
fn two_processes_on_one_store_lose_nothing_and_repeat_nothing() {
    // The app and its notification extension open the same store.
    let (mut a, _, mut b, sb) = pair();
    send_one(&mut a, &mut b, b"hello", 2_000);
    let g = b.generation();
    let mut app = b;
    let mut ext = Device::open(Box::new(sb.clone()), &key(2), rng(40), g).unwrap();
    let a_key = a.account_key();
    let mut delivered = Vec::new();
    for round in 0..12u64 {
        // Alice writes; the extension decrypts while the app is suspended,
        // then the app wakes with its old cache and both send.
        let text = format!("a{round}").into_bytes();
        let out = a.send(&app.account_key(), &text, 3_000 + round).unwrap();
        let got = ext.receive(&out[0].bytes).unwrap();
        assert_eq!(got.content, text);
        // The app fetches the same envelope again: its stale cache would
        // accept it; the commit conflicts, it reloads, and sees a duplicate.
        let again = app.receive(&out[0].bytes).unwrap_err();
        assert!(
            matches!(
                again,
                ClientError::Sessions(SessionsError::Undecryptable {
                    error: RatchetError::DuplicateMessage,
                    ..
                })
            ),
            "{again:?}"
        );
        let (first, second) = if round % 2 == 0 {
            (&mut app, &mut ext)
        } else {
            (&mut ext, &mut app)
        };
        for (who, dev) in [("x", first), ("y", second)] {
            let text = format!("{who}{round}").into_bytes();
            for env in dev.send(&a_key, &text, 3_000 + round).unwrap() {
                let got = a.receive(&env.bytes).unwrap();
                delivered.push(got.content);
            }
        }
    }
    // Every message from either process arrived exactly once.
    assert_eq!(delivered.len(), 24);
    let mut unique = delivered.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 24);
}

#[test]
fn wrong_key_swapped_tampered_newer_and_missing_records_are_distinct_errors() {
    let (mut a, sa, mut b, _) = pair();
    send_one(&mut a, &mut b, b"x", 2_000);
    let g = a.generation();
    let open =
        |store: MemoryStore, k: u8| Device::open(Box::new(store), &key(k), rng(5), g).map(|_| ());
    let base = sa.lock().unwrap().clone();
    assert_eq!(open(base.clone(), 1), Ok(()));
    assert_eq!(
        open(base.clone(), 9),
        Err(ClientError::Records(RecordError::WrongKey))
    );
    let find = |kind: RecordKind| {
        base.records()
            .find(|(k, _)| k[0] == kind as u8)
            .map(|(k, v)| (k.to_vec(), v.to_vec()))
            .unwrap()
    };
    // A flipped ciphertext bit.
    let (ik, mut iv) = find(RecordKind::Identity);
    let last = iv.len() - 1;
    iv[last] ^= 1;
    let mut s = base.clone();
    s.overwrite(&ik, Some(iv));
    assert_eq!(
        open(s, 1),
        Err(ClientError::Records(RecordError::Corrupted {
            record: RecordKind::Identity,
            reason: Corruption::Authentication
        }))
    );
    // A record of another kind moved under the identity's key.
    let (_, pv) = find(RecordKind::Prekeys);
    let mut s = base.clone();
    s.overwrite(&ik, Some(pv));
    assert_eq!(
        open(s, 1),
        Err(ClientError::Records(RecordError::Corrupted {
            record: RecordKind::Identity,
            reason: Corruption::WrongType
        }))
    );
    // A newer format version.
    let (_, mut iv) = find(RecordKind::Identity);
    iv[0] = 2;
    let mut s = base.clone();
    s.overwrite(&ik, Some(iv));
    assert_eq!(
        open(s, 1),
        Err(ClientError::Records(RecordError::NewerVersion {
            record: RecordKind::Identity,
            version: 2
        }))
    );
    // A missing record.
    let mut s = base.clone();
    s.overwrite(&ik, None);
    assert_eq!(
        open(s, 1),
        Err(ClientError::Records(RecordError::Missing {
            record: RecordKind::Identity
        }))
    );
    assert_eq!(
        open(MemoryStore::new(), 1),
        Err(ClientError::Records(RecordError::Empty))
    );
}

#[test]
fn session_records_cannot_be_swapped_between_peer_devices() {
    // Alice has two contacts; the session record of one, moved under the
    // other's key, does not authenticate.
    let (mut a, sa, mut b, _) = pair();
    let (mut c, _) = account(MemoryStore::new(), 3, "c", 0);
    let rc = c.prekey_record().unwrap();
    a.add_contact(&c.session_id(), &c.device_list(), Some(&rc))
        .unwrap();
    c.add_contact(&a.session_id(), &a.device_list(), None)
        .unwrap();
    send_one(&mut a, &mut b, b"to b", 2_000);
    send_one(&mut a, &mut c, b"to c", 2_001);
    let g = a.generation();
    let mut store = sa.lock().unwrap().clone();
    let sessions: Vec<(Vec<u8>, Vec<u8>)> = store
        .records()
        .filter(|(k, _)| k[0] == RecordKind::Sessions as u8)
        .map(|(k, v)| (k.to_vec(), v.to_vec()))
        .collect();
    assert_eq!(sessions.len(), 2);
    store.overwrite(&sessions[0].0, Some(sessions[1].1.clone()));
    let mut a = Device::open(Box::new(store), &key(1), rng(6), g).unwrap();
    let errs = [
        a.send(&b.account_key(), b"?", 2_002).map(|_| ()),
        a.send(&c.account_key(), b"?", 2_002).map(|_| ()),
    ];
    let swapped = ClientError::Records(RecordError::Corrupted {
        record: RecordKind::Sessions,
        reason: Corruption::Authentication,
    });
    assert!(errs.contains(&Err(swapped)), "{errs:?}");
}

#[test]
fn link_a_second_device_revoke_it_and_keep_talking() {
    let (mut a, _, mut b, _) = pair();
    let published = a.prekey_record().unwrap();
    let mut linking = LinkingDevice::start(rng(60), &DeviceInfo::new("tablet"));
    let (approval, response) = a.respond_to_link(linking.request()).unwrap();
    let sas_new = linking
        .receive_response(&response)
        .unwrap()
        .short()
        .unwrap();
    assert_eq!(approval.sas().short().unwrap(), sas_new);
    assert_eq!(approval.description(), "tablet");
    let approved = a.approve_link(approval, 2_000, true).unwrap();
    let tablet_store = shared();
    let linked = linking
        .finish(
            Box::new(tablet_store.clone()),
            &key(7),
            &approved.payload,
            2_000,
        )
        .unwrap();
    let mut tablet = linked.device;
    assert_eq!(linked.contacts, vec![b.account_key()]);
    assert!(tablet.holds_account_key());
    assert_eq!(tablet.account_key(), a.account_key());
    // The tablet takes the phone's bundle from the record the account had
    // published, and publishes the record with both; the phone takes it.
    let list = a.device_list();
    tablet.update_contact(&list, &[], Some(&published)).unwrap();
    let ra = tablet.prekey_record().unwrap();
    a.update_contact(&list, &[], Some(&ra)).unwrap();
    let rb = b.prekey_record().unwrap();
    tablet
        .add_contact(&b.session_id(), &b.device_list(), Some(&rb))
        .unwrap();
    // Bob learns the new list and record, then writes to both devices.
    b.update_contact(&list, &[], Some(&ra)).unwrap();
    let out = b.send(&a.account_key(), b"to both", 2_001).unwrap();
    assert_eq!(a.receive(&out[0].bytes).unwrap().content, b"to both");
    assert_eq!(tablet.receive(&out[0].bytes).unwrap().content, b"to both");
    // The phone's message reaches Bob and, as a copy, the tablet.
    let out = a.send(&b.account_key(), b"from phone", 2_002).unwrap();
    assert_eq!(out[0].mailboxes, vec![b.account_key(), a.account_key()]);
    assert_eq!(b.receive(&out[0].bytes).unwrap().content, b"from phone");
    let copy = tablet.receive(&out[0].bytes).unwrap();
    assert_eq!(copy.conversation, b.account_key());
    // The tablet is revoked; Bob accepts the list and stops writing to it.
    let tablet_id = tablet.device_id();
    let revoked = a.revoke(&tablet_id, 3_000).unwrap();
    let change = b.update_contact(&revoked, &[], None).unwrap();
    assert_eq!(change.removed, vec![tablet_id]);
    let out = b.send(&a.account_key(), b"after", 3_001).unwrap();
    assert_eq!(a.receive(&out[0].bytes).unwrap().content, b"after");
    assert!(matches!(
        tablet.receive(&out[0].bytes),
        Err(ClientError::Sessions(SessionsError::NotARecipient))
    ));
}

#[test]
fn restore_from_the_recovery_seed_onto_a_new_device() {
    let sa = shared();
    let (mut old, seed) = account(sa.clone(), 1, "old", 1_000);
    let (mut b, _) = account(MemoryStore::new(), 2, "b", 1_000);
    let (ro, rb) = (old.prekey_record().unwrap(), b.prekey_record().unwrap());
    old.add_contact(&b.session_id(), &b.device_list(), Some(&rb))
        .unwrap();
    b.add_contact(&old.session_id(), &old.device_list(), Some(&ro))
        .unwrap();
    send_one(&mut old, &mut b, b"before the loss", 2_000);
    let old_id = old.device_id();
    let published = old.device_list();
    drop(old);

    // Every device is lost; the user has the phrase and a new phone.
    let mut new = Device::restore_account(
        Box::new(MemoryStore::new()),
        &key(3),
        rng(33),
        &seed,
        Some(&published),
        DeviceInfo::new("new"),
        5_000,
    )
    .unwrap();
    assert_eq!(
        new.session_id(),
        b.contacts()
            .first()
            .and_then(SessionId::from_account_key)
            .unwrap()
    );
    let added = new.device_list();
    let list = new.revoke(&old_id, 5_001).unwrap();
    let rn = new.prekey_record().unwrap();
    new.add_contact(&b.session_id(), &b.device_list(), Some(&rb))
        .unwrap();
    // Bob holds the old list: the new device's message asks for the newer.
    let out = new.send(&b.account_key(), b"I am back", 5_002).unwrap();
    let err = b.receive(&out[0].bytes).unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Sessions(SessionsError::DeviceListOutdated { .. })
        ),
        "{err:?}"
    );
    // Bob fetches the lists since the one he holds (a gap is refused).
    b.update_contact(&list, &[added], Some(&rn)).unwrap();
    let got = b.receive(&out[0].bytes).unwrap();
    assert_eq!(got.content, b"I am back");
    assert!(got.new_session);
    send_one(&mut b, &mut new, b"welcome back", 5_003);
}

#[test]
fn restore_from_backup_heals_every_session() {
    let (mut a, sa, mut b, _) = pair();
    send_one(&mut a, &mut b, b"one", 2_000);
    send_one(&mut b, &mut a, b"two", 2_001);
    let backup = sa.lock().unwrap().clone();
    send_one(&mut a, &mut b, b"three", 2_002);
    let seen = a.generation();
    *sa.lock().unwrap() = backup;
    assert!(matches!(
        Device::open(Box::new(sa.clone()), &key(1), rng(8), seen),
        Err(ClientError::Records(RecordError::RolledBack { .. }))
    ));
    let mut a =
        Device::restore_from_backup(Box::new(sa.clone()), &key(1), rng(8), seen, 3_000).unwrap();
    assert!(a.generation() > seen);
    let heal = a.heal(3_001);
    assert!(heal.failed.is_empty(), "{:?}", heal.failed);
    assert_eq!(heal.envelopes.len(), 1);
    let rec = b.receive(&heal.envelopes[0].bytes).unwrap();
    assert!(rec.new_session);
    send_one(&mut a, &mut b, b"healed", 3_002);
    send_one(&mut b, &mut a, b"indeed", 3_003);
    // The heal reopens cleanly with the new generation.
    Device::open(Box::new(sa.clone()), &key(1), rng(9), a.generation()).unwrap();
}

#[test]
fn maintain_rotates_when_due_and_publishes_a_record() {
    let (mut a, _, mut b, _) = pair();
    assert_eq!(a.maintain(1_000 + 3600).unwrap(), None);
    let record = a
        .maintain(1_000 + SIGNED_PREKEY_ROTATION_SECS)
        .unwrap()
        .expect("rotation due");
    assert_eq!(
        a.maintain(1_000 + SIGNED_PREKEY_ROTATION_SECS + 1).unwrap(),
        None
    );
    // A contact who fetched the new record starts sessions on the new keys.
    let (mut c, _) = account(MemoryStore::new(), 4, "c", 0);
    c.add_contact(&a.session_id(), &a.device_list(), Some(&record))
        .unwrap();
    let rc = c.prekey_record().unwrap();
    a.add_contact(&c.session_id(), &c.device_list(), Some(&rc))
        .unwrap();
    send_one(&mut c, &mut a, b"on the rotated keys", 900_000);
    send_one(&mut a, &mut b, b"old contacts unaffected", 900_001);
}

#[test]
fn errors_leave_the_store_untouched() {
    let (mut a, sa, b, _) = pair();
    let before = sa.lock().unwrap().clone();
    let g = a.generation();
    let stranger = Account::generate(&mut *rng(99)).0.public_key();
    assert!(matches!(
        a.send(&stranger, b"?", 1),
        Err(ClientError::Sessions(SessionsError::UnknownAccount { .. }))
    ));
    assert!(a.receive(b"garbage").is_err());
    assert!(a.receive(&[]).is_err());
    assert!(a.add_contact(&b.session_id(), b"not a list", None).is_err());
    assert!(matches!(
        a.send(
            &b.account_key(),
            &vec![0; crate::sessions::MAX_CONTENT_LEN + 1],
            1
        ),
        Err(ClientError::Sessions(SessionsError::ContentTooLong { .. }))
    ));
    assert_eq!(a.generation(), g);
    assert!(before.records().eq(sa.lock().unwrap().records()));
    // Creating over an existing device is refused.
    assert!(matches!(
        Device::create_account(
            Box::new(sa.clone()),
            &key(1),
            rng(1),
            DeviceInfo::new("a"),
            0
        ),
        Err(ClientError::Records(RecordError::NotEmpty))
    ));
}

#[test]
fn migrate_the_single_blob_fixture_into_records() {
    // `tests/data/stored-device-v1.json`: two managers in the §8.9 blob
    // format as version 0.1.0 wrote them, with a session between them.
    let text = include_str!("../../tests/data/stored-device-v1.json");
    let v: serde_json::Value = serde_json::from_str(text).unwrap();
    let hex = |k: &str| hex::decode(v[k].as_str().unwrap()).unwrap();
    let alice_blob = crate::sessions::StoredDevice::from_bytes(&hex("alice_device"));
    let seed: [u8; 16] = hex("alice_recovery_seed").try_into().unwrap();
    let account = Account::from_recovery_seed(&RecoverySeed::from_bytes(seed));
    let mut bob = SessionManager::from_stored(&crate::sessions::StoredDevice::from_bytes(&hex(
        "bob_device",
    )))
    .unwrap();
    let session_before = {
        let m = SessionManager::from_stored(&alice_blob).unwrap();
        m.active_session(&bob.account(), bob.device_id()).unwrap()
    };
    let store = shared();
    let alice = Device::migrate(
        Box::new(store.clone()),
        &key(1),
        rng(70),
        &alice_blob,
        Some(account),
        5_000,
    )
    .unwrap();
    assert!(alice.holds_account_key());
    let mut alice = Device::open(
        Box::new(store.clone()),
        &key(1),
        rng(71),
        alice.generation(),
    )
    .unwrap();
    assert_eq!(
        alice
            .active_session(&bob.account(), bob.device_id())
            .unwrap(),
        Some(session_before)
    );
    let out = alice
        .send(&bob.account(), b"after migration", 5_001)
        .unwrap();
    assert_eq!(
        bob.decrypt(&out[0].bytes).unwrap().content,
        b"after migration"
    );
    assert!(bob.decrypt(&out[0].bytes).is_err());
    let back = bob
        .encrypt(&mut *rng(72), &alice.account_key(), b"reply", 5_002)
        .unwrap();
    assert_eq!(alice.receive(&back.envelopes[0]).unwrap().content, b"reply");
}

#[test]
fn debug_output_holds_no_secret() {
    let (a, _, _, _) = pair();
    let d = format!("{a:?}");
    assert!(d.contains("generation") && !d.contains("seed"));
    let keys = RecordKeys::derive(&key(1));
    let _ = keys;
    let w = RecordWrite::Put {
        key: vec![7; 17],
        value: vec![0xAB; 40],
    };
    assert_eq!(format!("{w:?}"), "Put(kind 0x07, 40 bytes)");
    let l = LinkingDevice::start(rng(1), &DeviceInfo::new("x"));
    assert!(!format!("{l:?}").contains("identity"));
}

/// Every line the `log` feature emits, captured for the redaction test.
#[cfg(feature = "log")]
mod captured_logs {
    use std::boxed::Box;
    use std::string::String;
    use std::sync::{Mutex, OnceLock};
    use std::vec::Vec;

    struct Capture(Mutex<Vec<String>>);

    impl log::Log for Capture {
        fn enabled(&self, _: &log::Metadata<'_>) -> bool {
            true
        }
        fn log(&self, record: &log::Record<'_>) {
            if record.target().starts_with("session_ratchet")
                && let Ok(mut lines) = self.0.lock()
            {
                lines.push(std::format!("{}", record.args()));
            }
        }
        fn flush(&self) {}
    }

    static CAPTURE: OnceLock<&'static Capture> = OnceLock::new();

    /// Installs the capturing logger (once per test binary) and returns the
    /// lines logged so far by any test.
    pub(super) fn lines() -> Vec<String> {
        let capture = CAPTURE.get_or_init(|| {
            let c: &'static Capture = Box::leak(Box::new(Capture(Mutex::new(Vec::new()))));
            let _ = log::set_logger(c);
            log::set_max_level(log::LevelFilter::Trace);
            c
        });
        capture.0.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

#[cfg(feature = "log")]
#[test]
fn log_lines_hold_no_secret_content_or_full_identifier() {
    let _ = captured_logs::lines();
    let (mut a, sa, mut b, _) = pair();
    let secret_text = b"the content must never be logged";
    send_one(&mut a, &mut b, secret_text, 2_000);
    send_one(&mut b, &mut a, b"reply", 2_001);
    // Failures: garbage, a duplicate, an unknown sender, a conflict.
    let out = a.send(&b.account_key(), b"dup", 2_002).unwrap();
    b.receive(&out[0].bytes).unwrap();
    let _ = b.receive(&out[0].bytes);
    let _ = b.receive(b"garbage");
    let mut other = Device::open(Box::new(sa.clone()), &key(1), rng(90), 0).unwrap();
    a.send(&b.account_key(), b"first", 2_003).unwrap();
    other
        .send(&b.account_key(), b"second, after a conflict", 2_004)
        .unwrap();
    let lines = captured_logs::lines();
    let text = lines.join("\n");
    assert!(
        text.contains("not decrypted: Undecryptable(DuplicateMessage)"),
        "{text}"
    );
    assert!(text.contains("another process committed first"), "{text}");
    assert!(text.contains("committed generation"), "{text}");
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    for account in [a.account_key().to_bytes(), b.account_key().to_bytes()] {
        assert!(
            !text.contains(&hex(&account[..4])),
            "account key prefix logged"
        );
        assert!(
            !text.contains(&format!("{:?}", &account[..4])),
            "account key bytes logged"
        );
    }
    for device in [a.device_id(), b.device_id()] {
        assert!(
            !text.contains(&hex(&device.as_bytes()[..4])),
            "device id prefix logged"
        );
    }
    assert!(!text.contains(core::str::from_utf8(secret_text).unwrap()));
    assert!(!text.contains(&hex(&[1u8; 8])), "storage key logged");
    let identity = a.manager.identity().to_stored();
    assert!(
        !text.contains(&hex(&identity.as_bytes()[2..10])),
        "identity secret logged"
    );
}

#[test]
fn contacts_beyond_the_cache_load_again_when_needed() {
    let (mut a, _) = account(MemoryStore::new(), 1, "a", 0);
    a.cache_limit = 2;
    let mut peers = Vec::new();
    for n in 0..4u8 {
        let (mut p, _) = account(MemoryStore::new(), 30 + n, "p", 0);
        let r = p.prekey_record().unwrap();
        let ra = a.prekey_record().unwrap();
        a.add_contact(&p.session_id(), &p.device_list(), Some(&r))
            .unwrap();
        p.add_contact(&a.session_id(), &a.device_list(), Some(&ra))
            .unwrap();
        peers.push(p);
    }
    for round in 0..3u64 {
        for p in &mut peers {
            send_one(&mut a, p, b"to peer", 100 + round);
            send_one(p, &mut a, b"from peer", 100 + round);
            assert!(a.manager.loaded_contacts() <= 2);
        }
    }
}

#[test]
fn a_device_can_move_between_threads() {
    fn send<T: Send>() {}
    send::<Device>();
    send::<LinkingDevice>();
    send::<LinkApproval>();
    send::<MemoryStore>();
}

fn record_of(store: &MemoryStore, kind: RecordKind) -> (Vec<u8>, Vec<u8>) {
    store
        .records()
        .find(|(k, _)| k[0] == kind as u8)
        .map(|(k, v)| (k.to_vec(), v.to_vec()))
        .unwrap()
}

#[test]
fn one_record_rolled_back_alone_is_refused_when_anchored() {
    let (mut a, sa, mut b, _) = pair();
    send_one(&mut a, &mut b, b"x", 2_000);
    let old = sa.lock().unwrap().clone();
    // Rotate the prekeys and take a newer list of Bob's: the prekey store,
    // the contact index and Bob's peer record are written again.
    a.maintain(2_000 + LAST_RESORT_ROTATION_SECS)
        .unwrap()
        .unwrap();
    let rb = b.prekey_record().unwrap();
    a.update_contact(&b.device_list(), &[], Some(&rb)).unwrap();
    let g = a.generation();
    let new = sa.lock().unwrap().clone();
    for kind in [RecordKind::Prekeys, RecordKind::Peer] {
        let mut s = new.clone();
        // The record as it was before, everything else current.
        for (k, v) in old.records().filter(|(k, _)| k[0] == kind as u8) {
            s.overwrite(k, Some(v.to_vec()));
        }
        let got = Device::open(Box::new(s), &key(1), rng(4), g)
            .and_then(|mut d| d.send(&b.account_key(), b"?", 3_000).map(|_| ()));
        assert!(
            matches!(
                got,
                Err(ClientError::Records(RecordError::RecordRolledBack { record, .. })) if record == kind
            ),
            "{kind:?}: {got:?}"
        );
    }
}

#[test]
fn a_failed_call_on_a_moved_store_runs_again_on_the_new_state() {
    // The extension rotates the prekeys and publishes them while the app
    // still holds the old ones; a first message to the new keys reaches
    // the app.
    let s = shared();
    let (mut app, _) = account(s.clone(), 1, "a", 0);
    let mut ext = Device::open(Box::new(s.clone()), &key(1), rng(2), app.generation()).unwrap();
    let record = ext
        .maintain(LAST_RESORT_ROTATION_SECS + SIGNED_PREKEY_ROTATION_SECS)
        .unwrap()
        .unwrap();
    let (mut c, _) = account(MemoryStore::new(), 3, "c", 0);
    c.add_contact(&app.session_id(), &app.device_list(), Some(&record))
        .unwrap();
    let rc = c.prekey_record().unwrap();
    ext.add_contact(&c.session_id(), &c.device_list(), Some(&rc))
        .unwrap();
    let out = c.send(&app.account_key(), b"to the new keys", 10).unwrap();
    assert_eq!(
        app.receive(&out[0].bytes).unwrap().content,
        b"to the new keys"
    );
}

#[test]
fn a_revoked_device_still_opens_and_never_sends() {
    let (mut a, _, mut b, _) = pair();
    let published = a.prekey_record().unwrap();
    let mut linking = LinkingDevice::start(rng(60), &DeviceInfo::new("tablet"));
    let (approval, response) = a.respond_to_link(linking.request()).unwrap();
    linking.receive_response(&response).unwrap();
    let approved = a.approve_link(approval, 2_000, false).unwrap();
    let ts = shared();
    let mut tablet = linking
        .finish(Box::new(ts.clone()), &key(7), &approved.payload, 2_000)
        .unwrap()
        .device;
    assert!(!tablet.holds_account_key());
    tablet
        .update_contact(&a.device_list(), &[], Some(&published))
        .unwrap();
    let revoked = a.revoke(&tablet.device_id(), 3_000).unwrap();
    tablet.update_contact(&revoked, &[], None).unwrap();
    assert!(tablet.is_revoked());
    let mut tablet =
        Device::open(Box::new(ts.clone()), &key(7), rng(61), tablet.generation()).unwrap();
    assert!(tablet.is_revoked());
    let own = tablet.account_key();
    assert!(matches!(
        tablet.send(&own, b"note to self", 3_001),
        Err(ClientError::Sessions(SessionsError::ThisDeviceRevoked))
    ));
    send_one(&mut a, &mut b, b"still fine", 3_002);
}

#[test]
fn a_deleted_head_is_missing_not_empty_and_foreign_records_do_not_open() {
    let (a, sa, _, _) = pair();
    let g = a.generation();
    let base = sa.lock().unwrap().clone();
    let mut s = base.clone();
    let (hk, _) = record_of(&base, RecordKind::Head);
    s.overwrite(&hk, None);
    assert!(matches!(
        Device::open(Box::new(s), &key(1), rng(1), g),
        Err(ClientError::Records(RecordError::Missing {
            record: RecordKind::Head
        }))
    ));
    // Another device whose client uses the same storage key: its identity
    // record has the same store key here, but belongs to another owner.
    let other = shared();
    Device::create_account(
        Box::new(other.clone()),
        &key(1),
        rng(50),
        DeviceInfo::new("o"),
        0,
    )
    .unwrap();
    let (ik, iv) = record_of(&other.lock().unwrap(), RecordKind::Identity);
    assert_eq!(ik, record_of(&base, RecordKind::Identity).0);
    let mut s = base.clone();
    s.overwrite(&ik, Some(iv));
    assert_eq!(
        Device::open(Box::new(s), &key(1), rng(1), g).map(|_| ()),
        Err(ClientError::Records(RecordError::Corrupted {
            record: RecordKind::Identity,
            reason: Corruption::Authentication
        }))
    );
}

#[test]
fn a_planted_newer_record_with_an_unmoved_head_is_inconsistent_not_busy() {
    let (mut a, sa, mut b, _) = pair();
    send_one(&mut a, &mut b, b"x", 2_000);
    let old = sa.lock().unwrap().clone();
    let g = a.generation();
    send_one(&mut a, &mut b, b"y", 2_001);
    let newer = sa.lock().unwrap().clone();
    let (sk, sv) = record_of(&newer, RecordKind::Sessions);
    let mut s = old.clone();
    s.overwrite(&sk, Some(sv));
    let mut d = Device::open(Box::new(s), &key(1), rng(1), g).unwrap();
    assert_eq!(
        d.send(&b.account_key(), b"?", 2_002).map(|_| ()),
        Err(ClientError::Records(RecordError::Corrupted {
            record: RecordKind::Sessions,
            reason: Corruption::Inconsistent
        }))
    );
}

/// A store that commits and then reports a failure once (an I/O error after
/// the transaction ended).
struct LateFailure(Shared, bool);

impl RecordStore for LateFailure {
    fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.0.get(key)
    }
    fn commit(
        &mut self,
        head: &[u8],
        expected: Option<&[u8]>,
        writes: &[RecordWrite],
    ) -> Result<CommitOutcome, StoreError> {
        let outcome = self.0.commit(head, expected, writes)?;
        if std::mem::take(&mut self.1) {
            return Err(StoreError::failed("disk I/O error after COMMIT"));
        }
        Ok(outcome)
    }
}

#[test]
fn a_commit_whose_outcome_the_store_lost_is_recognised_by_its_head() {
    let (a, sa, mut b, _) = pair();
    let g = a.generation();
    let mut a = Device::open(Box::new(LateFailure(sa.clone(), true)), &key(1), rng(5), g).unwrap();
    let out = a
        .send(&b.account_key(), b"committed after all", 2_000)
        .unwrap();
    assert_eq!(
        b.receive(&out[0].bytes).unwrap().content,
        b"committed after all"
    );
    assert_eq!(a.generation(), g + 1);
}

#[test]
fn the_fixture_s_encrypted_blob_is_the_plain_one_under_its_key() {
    // The bindings migrate from the encrypted §8.9 form with this fixture.
    let text = include_str!("../../tests/data/stored-device-v1.json");
    let v: serde_json::Value = serde_json::from_str(text).unwrap();
    let hex = |k: &str| hex::decode(v[k].as_str().unwrap()).unwrap();
    let blob_key: [u8; 32] = hex("alice_device_encrypted_key").try_into().unwrap();
    let blob_key = StorageKey::from_bytes(blob_key);
    let encrypted = hex("alice_device_encrypted");
    let plain = crate::sessions::StoredDevice::decrypt(&encrypted, &blob_key).unwrap();
    assert_eq!(plain.as_bytes(), hex("alice_device").as_slice());
    assert!(crate::sessions::StoredDevice::decrypt(&encrypted, &key(1)).is_err());
    let mut r = ChaCha20Rng::from_seed([0x5e; 32]);
    assert_eq!(plain.encrypt(&mut r, &blob_key), encrypted);
}
