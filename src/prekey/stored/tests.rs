//! Stored prekey stores: canonical round trips, behaviour across a restart,
//! every rejection with its specific error, the size bound, and a committed
//! blob that pins the format.

use super::*;
use crate::handshake::HandshakeError;
use crate::identity::DeviceIdentity;
use crate::ratchet::{RatchetError, Session, StoredSession};
use crate::wire::MAX_STORED_LEN;
use alloc::format;
use alloc::vec;
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const AD: &[u8] = b"ad";

fn load(bytes: &[u8]) -> Result<PrekeyStore, PrekeyError> {
    PrekeyStore::from_stored(&StoredPrekeys::from_bytes(bytes))
}

/// The wire error a rejected plain encoding reports.
fn corrupt(bytes: &[u8]) -> WireError {
    match load(bytes) {
        Err(PrekeyError::CorruptedStore { error }) => error,
        Err(other) => panic!("expected CorruptedStore, got {other:?}"),
        Ok(_) => panic!("expected CorruptedStore, got a store"),
    }
}

fn reloaded(store: &PrekeyStore) -> PrekeyStore {
    let stored = store.to_stored();
    let back = PrekeyStore::from_stored(&stored).unwrap();
    assert_eq!(back.to_stored(), stored, "re-encoding differs");
    back
}

/// Everything observable about a store except its secrets.
fn public_state(s: &PrekeyStore) -> (Vec<Part>, Vec<usize>, PrekeyId) {
    let mut parts: Vec<Part> = s
        .signed
        .iter()
        .map(|k| Part::Signed(k.public.clone()))
        .collect();
    parts.extend(
        s.last_resort
            .iter()
            .chain(s.one_time_kem.values())
            .map(|k| Part::Kem(k.public.clone())),
    );
    parts.extend(s.one_time.values().map(|(p, _)| Part::OneTime(*p)));
    (parts, s.last_resort_seen_counts(), s.next_id)
}

#[derive(Debug, PartialEq)]
enum Part {
    Signed(SignedPrekey),
    Kem(SignedKemPrekey),
    OneTime(OneTimePrekey),
}

fn setup(seed: u8) -> (ChaCha20Rng, DeviceIdentity, PrekeyStore) {
    let mut rng = ChaCha20Rng::from_seed([seed; 32]);
    let id = DeviceIdentity::generate(&mut rng);
    let mut store = PrekeyStore::new(&mut rng, &id);
    store.generate_one_time_prekeys(&mut rng, &id, 3).unwrap();
    store
        .generate_one_time_kem_prekeys(&mut rng, &id, 2)
        .unwrap();
    (rng, id, store)
}

#[test]
fn round_trip_is_canonical_in_every_shape() {
    let (mut rng, id, mut store) = setup(1);
    let fresh = PrekeyStore::new(&mut rng, &id);
    for s in [&fresh, &store] {
        let back = reloaded(s);
        assert_eq!(public_state(&back), public_state(s));
        assert_eq!(s.to_stored().as_bytes().len(), s.stored_len());
    }
    assert_eq!(fresh.to_stored().as_bytes().len(), FIXED_LEN + 100 + 134);
    for _ in 0..MAX_SIGNED_PREKEYS + 1 {
        store.rotate_signed_prekey(&mut rng, &id).unwrap();
        store.rotate_last_resort_prekey(&mut rng, &id).unwrap();
    }
    let lr = store.last_resort.last().unwrap().public.id;
    for k in [[9u8; 32], [1; 32], [5; 32]] {
        assert!(store.record_base_key(lr, k));
    }
    let back = reloaded(&store);
    assert_eq!(public_state(&back), public_state(&store));
    assert_eq!(back.last_resort_seen_counts(), vec![0, 0, 3]);
    // Secrets survive too: the same keys come out of the loaded store.
    for (a, b) in store.signed.iter().zip(&back.signed) {
        assert_eq!(a.secret, b.secret);
    }
    for (a, b) in store.one_time_kem.values().zip(back.one_time_kem.values()) {
        assert_eq!(a.keypair.seed(), b.keypair.seed());
    }
}

#[test]
fn the_loaded_counter_continues_without_reusing_ids() {
    let (mut rng, id, store) = setup(2);
    let mut back = reloaded(&store);
    let next = back.rotate_signed_prekey(&mut rng, &id).unwrap();
    assert_eq!(next, store.next_id);
    let new = back.generate_one_time_prekeys(&mut rng, &id, 2).unwrap();
    assert_eq!(new[0].id(), store.next_id + 1);
}

/// A session started against a bundle taken before the store was saved is
/// answered by the loaded store; the one-time prekeys it used stay consumed
/// across a second save, so the same first message fails afterwards.
#[test]
fn restored_store_answers_handshakes_and_keeps_consumption() {
    let (mut rng, bob, store) = setup(3);
    let alice = DeviceIdentity::generate(&mut rng);
    let otp = store.one_time_prekey_ids()[1];
    let okem = store.one_time_kem_prekey_ids()[0];
    let bundle = store
        .bundle(&bob, Some(otp), Some(okem))
        .unwrap()
        .verify_for(bob.public())
        .unwrap();
    let mut a = Session::initiate(&mut rng, &alice, &bundle).unwrap();
    let first = a.encrypt(&mut rng, b"hello", AD).unwrap();

    let key = StorageKey::generate(&mut rng);
    let blob = store.to_stored().encrypt(&mut rng, &key);
    drop(store);
    let mut restored =
        PrekeyStore::from_stored(&StoredPrekeys::decrypt(&blob, &key).unwrap()).unwrap();
    let (mut b, plaintext) = Session::respond(&bob, &mut restored, &first, AD).unwrap();
    assert_eq!(plaintext, b"hello");
    assert!(!restored.one_time_prekey_ids().contains(&otp));
    assert!(!restored.one_time_kem_prekey_ids().contains(&okem));

    // The conversation goes on with the restored store's session.
    let reply = b.encrypt(&mut rng, b"hi", AD).unwrap();
    assert_eq!(a.decrypt(&reply, AD).unwrap(), b"hi");

    let mut again = reloaded(&restored);
    assert_eq!(again.one_time_prekey_ids().len(), 2);
    assert_eq!(again.one_time_kem_prekey_ids().len(), 1);
    assert_eq!(
        Session::respond(&bob, &mut again, &first, AD).unwrap_err(),
        RatchetError::Handshake(HandshakeError::UnknownOneTimePrekey { id: otp })
    );
}

/// A first message to the last-resort prekey is a replay after a restart too.
#[test]
fn last_resort_replay_records_survive() {
    let (mut rng, bob, mut store) = setup(4);
    let alice = DeviceIdentity::generate(&mut rng);
    let bundle = store
        .bundle(&bob, None, None)
        .unwrap()
        .verify_for(bob.public())
        .unwrap();
    let mut a = Session::initiate(&mut rng, &alice, &bundle).unwrap();
    let first = a.encrypt(&mut rng, b"once", AD).unwrap();
    Session::respond(&bob, &mut store, &first, AD).unwrap();
    assert_eq!(store.last_resort_seen_counts(), vec![1]);

    let mut restored = reloaded(&store);
    assert_eq!(restored.last_resort_seen_counts(), vec![1]);
    assert_eq!(
        Session::respond(&bob, &mut restored, &first, AD).unwrap_err(),
        RatchetError::Handshake(HandshakeError::ReplayedHandshake)
    );
    // A fresh handshake with the same last-resort prekey is still answered.
    let mut a2 = Session::initiate(&mut rng, &alice, &bundle).unwrap();
    let second = a2.encrypt(&mut rng, b"twice", AD).unwrap();
    Session::respond(&bob, &mut restored, &second, AD).unwrap();
    assert_eq!(reloaded(&restored).last_resort_seen_counts(), vec![2]);
}

#[test]
fn encrypted_form_and_its_errors() {
    let (mut rng, _, store) = setup(5);
    let stored = store.to_stored();
    let key = StorageKey::generate(&mut rng);
    let blob = stored.encrypt(&mut rng, &key);
    assert_eq!(&blob[..2], &[0x01, 0x14]);
    assert_eq!(blob.len(), 2 + 24 + stored.as_bytes().len() + 16);
    assert_eq!(StoredPrekeys::decrypt(&blob, &key).unwrap(), stored);

    let wrong = StorageKey::generate(&mut rng);
    assert_eq!(
        StoredPrekeys::decrypt(&blob, &wrong).unwrap_err(),
        PrekeyError::WrongKeyOrTampered
    );
    let mut t = blob.clone();
    t[40] ^= 1;
    assert_eq!(
        StoredPrekeys::decrypt(&t, &key).unwrap_err(),
        PrekeyError::WrongKeyOrTampered
    );
    let mut future = blob.clone();
    future[0] = 2;
    assert_eq!(
        StoredPrekeys::decrypt(&future, &key).unwrap_err(),
        PrekeyError::UnsupportedStoreVersion { version: 2 }
    );
    assert_eq!(
        StoredPrekeys::decrypt(&blob[..20], &key).unwrap_err(),
        PrekeyError::CorruptedStore {
            error: WireError::Truncated { field: "nonce" }
        }
    );
    // An encrypted session under the same key is not a prekey store, and
    // the reverse: the type byte is checked and bound by the associated data.
    let session_blob = StoredSession::from_bytes(stored.as_bytes()).encrypt(&mut rng, &key);
    assert_eq!(
        StoredPrekeys::decrypt(&session_blob, &key).unwrap_err(),
        PrekeyError::CorruptedStore {
            error: WireError::UnexpectedType {
                expected: 0x14,
                actual: 0x11
            }
        }
    );
    let mut relabelled = session_blob;
    relabelled[1] = 0x14;
    assert_eq!(
        StoredPrekeys::decrypt(&relabelled, &key).unwrap_err(),
        PrekeyError::WrongKeyOrTampered
    );
    assert!(StoredSession::decrypt(&blob, &key).is_err());
}

#[test]
fn debug_is_redacted_and_errors_say_what_to_do() {
    let (_, _, store) = setup(6);
    let stored = store.to_stored();
    let d = format!("{stored:?}");
    assert_eq!(
        d,
        format!(
            "StoredPrekeys({} bytes, <redacted>)",
            stored.as_bytes().len()
        )
    );
    for e in [
        PrekeyError::UnsupportedStoreVersion { version: 2 },
        PrekeyError::CorruptedStore {
            error: WireError::Truncated { field: "x" },
        },
        PrekeyError::WrongKeyOrTampered,
    ] {
        assert!(format!("{e}").len() > 40);
    }
}

/// Test-only encoder of arbitrary (also invalid) layouts: ids, base keys and
/// the counter as given, constant bytes for secrets and signatures.
#[derive(Clone)]
struct Raw {
    signed: Vec<u32>,
    last_resort: Vec<(u32, Vec<[u8; 32]>)>,
    one_time: Vec<u32>,
    one_time_kem: Vec<u32>,
    next_id: u32,
}

impl Raw {
    fn valid() -> Self {
        Self {
            signed: vec![1, 5],
            last_resort: vec![(2, vec![[1; 32], [2; 32]]), (7, vec![])],
            one_time: vec![3, 6],
            one_time_kem: vec![4],
            next_id: 8,
        }
    }

    fn encode(&self) -> Vec<u8> {
        let mut b = vec![0x01, 0x13, self.signed.len() as u8];
        for id in &self.signed {
            b.extend_from_slice(&id.to_be_bytes());
            b.extend_from_slice(&[0x11; 32 + 64]);
        }
        b.push(self.last_resort.len() as u8);
        for (id, keys) in &self.last_resort {
            b.extend_from_slice(&id.to_be_bytes());
            b.extend_from_slice(&[0x22; 64 + 64]);
            b.extend_from_slice(&(keys.len() as u16).to_be_bytes());
            for k in keys {
                b.extend_from_slice(k);
            }
        }
        b.extend_from_slice(&(self.one_time.len() as u16).to_be_bytes());
        for id in &self.one_time {
            b.extend_from_slice(&id.to_be_bytes());
            b.extend_from_slice(&[0x33; 32]);
        }
        b.extend_from_slice(&(self.one_time_kem.len() as u16).to_be_bytes());
        for id in &self.one_time_kem {
            b.extend_from_slice(&id.to_be_bytes());
            b.extend_from_slice(&[0x44; 64 + 64]);
        }
        b.extend_from_slice(&self.next_id.to_be_bytes());
        b
    }

    /// Offset of the last-resort count.
    fn lr_at(&self) -> usize {
        3 + self.signed.len() * SIGNED_ITEM_LEN
    }

    /// Offset of the one-time prekey count.
    fn otp_at(&self) -> usize {
        self.lr_at()
            + 1
            + self
                .last_resort
                .iter()
                .map(|(_, k)| LAST_RESORT_FIXED_LEN + 32 * k.len())
                .sum::<usize>()
    }

    /// Offset of the one-time ML-KEM prekey count.
    fn okem_at(&self) -> usize {
        self.otp_at() + 2 + self.one_time.len() * ONE_TIME_ITEM_LEN
    }
}

#[test]
fn the_test_encoder_writes_what_the_store_writes() {
    let raw = Raw::valid();
    let bytes = raw.encode();
    let store = load(&bytes).unwrap();
    assert_eq!(store.to_stored().as_bytes(), bytes.as_slice());
    assert_eq!(store.one_time_prekey_ids(), vec![3, 6]);
    assert_eq!(store.one_time_kem_prekey_ids(), vec![4]);
    assert_eq!(store.last_resort_seen_counts(), vec![2, 0]);
    assert_eq!(raw.okem_at() + 2 + 132 + 4, bytes.len());
}

#[test]
fn header_rejections() {
    let bytes = Raw::valid().encode();
    assert_eq!(corrupt(&[]), WireError::Truncated { field: "version" });
    let mut b = bytes.clone();
    b[0] = 2;
    assert_eq!(
        load(&b).err(),
        Some(PrekeyError::UnsupportedStoreVersion { version: 2 })
    );
    b[0] = 1;
    b[1] = 0x10;
    assert_eq!(
        corrupt(&b),
        WireError::UnexpectedType {
            expected: 0x13,
            actual: 0x10
        }
    );
    let long = vec![1u8; MAX_STORED_LEN + 1];
    assert_eq!(
        corrupt(&long),
        WireError::TooLong {
            len: MAX_STORED_LEN + 1
        }
    );
    let mut b = bytes.clone();
    b.push(0);
    assert_eq!(corrupt(&b), WireError::TrailingBytes { count: 1 });
    assert_eq!(
        corrupt(&bytes[..bytes.len() - 1]),
        WireError::Truncated {
            field: "next prekey id"
        }
    );
}

#[test]
fn count_rejections() {
    let raw = Raw::valid();
    let bytes = raw.encode();
    let with = |at: usize, value: &[u8]| {
        let mut b = bytes.clone();
        b[at..at + value.len()].copy_from_slice(value);
        b
    };
    let field = "signed prekey count";
    assert_eq!(corrupt(&with(2, &[0])), WireError::InvalidValue { field });
    assert_eq!(
        corrupt(&with(2, &[4])),
        WireError::TooMany {
            field,
            count: 4,
            max: 3
        }
    );
    let field = "last-resort prekey count";
    let lr = raw.lr_at();
    assert_eq!(corrupt(&with(lr, &[0])), WireError::InvalidValue { field });
    assert_eq!(
        corrupt(&with(lr, &[4])),
        WireError::TooMany {
            field,
            count: 4,
            max: 3
        }
    );
    let base = lr + 1 + 4 + 64 + 64;
    assert_eq!(
        corrupt(&with(base, &4097u16.to_be_bytes())),
        WireError::TooMany {
            field: "base key count",
            count: 4097,
            max: 4096
        }
    );
    assert_eq!(
        corrupt(&with(raw.otp_at(), &1001u16.to_be_bytes())),
        WireError::TooMany {
            field: "one-time prekey count",
            count: 1001,
            max: 1000
        }
    );
    assert_eq!(
        corrupt(&with(raw.okem_at(), &1001u16.to_be_bytes())),
        WireError::TooMany {
            field: "one-time ML-KEM prekey count",
            count: 1001,
            max: 1000
        }
    );
}

/// A count the rest of the input cannot hold is refused before any item is
/// read (nothing is allocated or expanded for it).
#[test]
fn truncated_lists_are_rejected_up_front() {
    let mut raw = Raw::valid();
    raw.last_resort[1].1 = vec![[3; 32], [4; 32]];
    let bytes = raw.encode();
    let second_lr = raw.lr_at() + 1 + LAST_RESORT_FIXED_LEN + 2 * 32;
    for (cut, field) in [
        (3 + 50, "signed prekeys"),
        (raw.lr_at() + 1 + 100, "last-resort prekeys"),
        (second_lr + LAST_RESORT_FIXED_LEN + 40, "base keys"),
        (raw.otp_at() + 2 + 40, "one-time prekeys"),
        (raw.okem_at() + 2 + 100, "one-time ML-KEM prekeys"),
    ] {
        assert_eq!(
            corrupt(&bytes[..cut]),
            WireError::Truncated { field },
            "cut at {cut}"
        );
    }
    // Every shorter prefix fails, and none panics.
    for cut in 0..bytes.len() {
        assert!(load(&bytes[..cut]).is_err());
    }
}

#[test]
fn id_rejections() {
    let check = |edit: fn(&mut Raw), expected: WireError| {
        let mut raw = Raw::valid();
        edit(&mut raw);
        assert_eq!(corrupt(&raw.encode()), expected);
    };
    check(
        |r| r.signed = vec![0, 5],
        WireError::InvalidValue {
            field: "signed prekey id",
        },
    );
    check(
        |r| r.signed = vec![5, 1],
        WireError::NotCanonical {
            field: "signed prekey id",
        },
    );
    check(
        |r| r.signed = vec![5, 5],
        WireError::NotCanonical {
            field: "signed prekey id",
        },
    );
    check(
        |r| r.last_resort.swap(0, 1),
        WireError::NotCanonical {
            field: "last-resort prekey id",
        },
    );
    check(
        |r| r.last_resort[0].0 = 0,
        WireError::InvalidValue {
            field: "last-resort prekey id",
        },
    );
    check(
        |r| r.one_time = vec![6, 3],
        WireError::NotCanonical {
            field: "one-time prekey id",
        },
    );
    check(
        |r| r.one_time = vec![0],
        WireError::InvalidValue {
            field: "one-time prekey id",
        },
    );
    check(
        |r| r.one_time_kem = vec![9, 4],
        WireError::NotCanonical {
            field: "one-time ML-KEM prekey id",
        },
    );
    check(
        |r| r.one_time_kem = vec![0],
        WireError::InvalidValue {
            field: "one-time ML-KEM prekey id",
        },
    );
    // The same id in two lists (each list in order on its own).
    for edit in [
        (|r: &mut Raw| r.last_resort[0].0 = 1) as fn(&mut Raw),
        |r| r.one_time = vec![3, 7],
        |r| r.one_time_kem = vec![5],
        |r| r.one_time_kem = vec![3],
    ] {
        check(
            edit,
            WireError::InvalidValue {
                field: "prekey id (used by another prekey)",
            },
        );
    }
}

#[test]
fn base_keys_must_be_strictly_ascending() {
    for keys in [vec![[2u8; 32], [1; 32]], vec![[1; 32], [1; 32]]] {
        let mut raw = Raw::valid();
        raw.last_resort[0].1 = keys;
        assert_eq!(
            corrupt(&raw.encode()),
            WireError::NotCanonical { field: "base key" }
        );
    }
}

#[test]
fn the_counter_must_be_ahead_of_every_id() {
    for next_id in [0, 1, 7] {
        let mut raw = Raw::valid();
        raw.next_id = next_id;
        assert_eq!(
            corrupt(&raw.encode()),
            WireError::InvalidValue {
                field: "next prekey id"
            },
            "next id {next_id}"
        );
    }
    // The largest id may be anywhere; here a one-time prekey.
    let mut raw = Raw::valid();
    raw.one_time = vec![3, 20];
    raw.next_id = 20;
    assert_eq!(
        corrupt(&raw.encode()),
        WireError::InvalidValue {
            field: "next prekey id"
        }
    );
    raw.next_id = 21;
    assert!(load(&raw.encode()).is_ok());
    // An exhausted counter loads: the store refuses new ids, never reuses one.
    raw.next_id = u32::MAX;
    let mut store = load(&raw.encode()).unwrap();
    let mut rng = ChaCha20Rng::from_seed([7; 32]);
    let id = DeviceIdentity::generate(&mut rng);
    assert_eq!(
        store.rotate_signed_prekey(&mut rng, &id).unwrap_err(),
        PrekeyError::IdsExhausted
    );
}

/// Every bound of §4.5 at its maximum: exactly `MAX_STORED_PREKEYS_LEN`
/// bytes, under the stored-object cap, and it loads.
#[test]
fn the_largest_store_fits_and_loads() {
    assert_eq!(MAX_STORED_PREKEYS_LEN, 561_930);
    const { assert!(MAX_STORED_PREKEYS_LEN <= MAX_STORED_LEN) };
    let mut raw = Raw::valid();
    raw.signed = vec![1, 2, 3];
    raw.last_resort = (4..7)
        .map(|id| {
            let keys = (0..MAX_BASE_KEYS_PER_LAST_RESORT as u32)
                .map(|i| {
                    let mut k = [id as u8; 32];
                    k[28..].copy_from_slice(&i.to_be_bytes());
                    k
                })
                .collect();
            (id, keys)
        })
        .collect();
    raw.one_time = (10..1010).collect();
    raw.one_time_kem = (2000..3000).collect();
    raw.next_id = 3000;
    let bytes = raw.encode();
    assert_eq!(bytes.len(), MAX_STORED_PREKEYS_LEN);
    let store = load(&bytes).unwrap();
    assert_eq!(store.to_stored().as_bytes(), bytes.as_slice());
    assert_eq!(
        store.last_resort_seen_counts(),
        vec![MAX_BASE_KEYS_PER_LAST_RESORT; 3]
    );
}

/// A blob written by this version, committed so that a format change cannot
/// go unnoticed: it must load, re-encode byte for byte, and equal what the
/// same seeded steps produce today.
#[test]
fn committed_blob_is_stable() {
    let committed = include_str!("../../../tests/data/stored_prekeys_v1.hex").trim();
    let mut rng = ChaCha20Rng::from_seed([0x5A; 32]);
    let bob = DeviceIdentity::generate(&mut rng);
    let mut store = PrekeyStore::new(&mut rng, &bob);
    store.generate_one_time_prekeys(&mut rng, &bob, 2).unwrap();
    store
        .generate_one_time_kem_prekeys(&mut rng, &bob, 1)
        .unwrap();
    let lr = store.last_resort[0].public.id;
    assert!(store.record_base_key(lr, [0xB1; 32]));
    assert!(store.record_base_key(lr, [0xA0; 32]));
    let today = hex::encode(store.to_stored().as_bytes());
    assert_eq!(today, committed, "the stored prekey format changed");

    let loaded = load(&hex::decode(committed).unwrap()).unwrap();
    assert_eq!(hex::encode(loaded.to_stored().as_bytes()), committed);
    let otp = loaded.one_time_prekey_ids()[0];
    let okem = loaded.one_time_kem_prekey_ids()[0];
    loaded
        .bundle(&bob, Some(otp), Some(okem))
        .unwrap()
        .verify_for(bob.public())
        .unwrap();
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(
        tail in proptest::collection::vec(any::<u8>(), 0..600),
        header in any::<bool>(),
    ) {
        let mut b = if header { vec![0x01, 0x13] } else { Vec::new() };
        b.extend_from_slice(&tail);
        if let Ok(s) = load(&b) {
            let again = s.to_stored();
            prop_assert_eq!(again.as_bytes(), b.as_slice());
        }
    }

    /// Mutations of a valid blob: never a panic; whatever loads re-encodes
    /// to exactly the input (secrets and signatures are free bytes, so many
    /// mutations load).
    #[test]
    fn mutated_blobs_are_rejected_or_canonical(
        at in any::<prop::sample::Index>(),
        xor in 1u8..=255,
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let bytes = Raw::valid().encode();
        let mut b = bytes.clone();
        let i = at.index(b.len());
        b[i] ^= xor;
        if truncate {
            b.truncate(cut.index(bytes.len()));
        }
        if let Ok(s) = load(&b) {
            let again = s.to_stored();
            prop_assert_eq!(again.as_bytes(), b.as_slice());
        }
    }
}
