use super::*;
use crate::account::Account;
use crate::device::list::{ClientVersion, DeviceListDraft, Platform};
use crate::identity::DeviceIdentity;
use crate::prekey::PrekeyStore;
use crate::secret::Ed25519Seed;
use alloc::vec;
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const V: ClientVersion = ClientVersion {
    major: 1,
    minor: 0,
    patch: 0,
};

struct Fixture {
    list: VerifiedDeviceList,
    bundles: Vec<PrekeyBundle>,
    devices: Vec<DeviceIdentity>,
    stores: Vec<PrekeyStore>,
}

fn fixture(n: usize) -> Fixture {
    fixture_seeded(n, 21)
}

fn fixture_seeded(n: usize, seed: u8) -> Fixture {
    let mut rng = ChaCha20Rng::from_seed([seed; 32]);
    let account = Account::from_seed(&Ed25519Seed::from_bytes([8; 32]));
    let mut draft = DeviceListDraft::first(&account);
    let mut devices = Vec::new();
    let mut stores = Vec::new();
    let mut bundles = Vec::new();
    for i in 0..n {
        let d = DeviceIdentity::generate(&mut rng);
        let s = PrekeyStore::new(&mut rng, &d);
        bundles.push(s.bundle(&d, None, None).unwrap());
        draft
            .add_device(DeviceEntry::new(
                DeviceId::generate(&mut rng),
                *d.public(),
                Platform::Android,
                "d",
                V,
                i as u64,
            ))
            .unwrap();
        devices.push(d);
        stores.push(s);
    }
    let list = VerifiedDeviceList::trust_first_with_key(
        draft.sign(&account).unwrap(),
        &account.public_key(),
    )
    .unwrap();
    Fixture {
        list,
        bundles,
        devices,
        stores,
    }
}

#[test]
fn slot_counts_are_buckets_of_four() {
    assert_eq!(SLOT_LEN, 1459);
    assert_eq!(MAX_SLOTS, 16);
    assert_eq!(MAX_PREKEY_RECORD_LEN, 23_347);
    let expected = [4, 4, 4, 4, 4, 8, 8, 8, 8, 12, 12, 12, 12, 16, 16, 16, 16];
    for (n, e) in expected.iter().enumerate() {
        assert_eq!(slot_count(n), *e, "{n} devices");
    }
}

#[test]
fn every_device_count_builds_opens_and_round_trips() {
    for n in [0, 1, 3, 4, 5] {
        let f = fixture(n);
        let mut rng = ChaCha20Rng::from_seed([n as u8; 32]);
        let record = PrekeyRecord::build(&mut rng, &f.list, &f.bundles).unwrap();
        assert_eq!(record.slot_count(), slot_count(n));
        let bytes = record.to_bytes();
        assert_eq!(bytes.len(), 3 + slot_count(n) * SLOT_LEN);
        let back = PrekeyRecord::from_bytes(&bytes).unwrap();
        assert_eq!(back.to_bytes(), bytes);
        let opened = back.open(&f.list).unwrap();
        assert!(opened.missing().is_empty());
        assert_eq!(opened.bundles().len(), n);
        for (id, b) in opened.bundles() {
            let entry = f
                .list
                .list()
                .devices()
                .iter()
                .find(|d| d.id() == id)
                .unwrap();
            assert_eq!(b.identity(), entry.identity());
        }
    }
}

#[test]
fn bundles_may_be_given_in_any_order_and_dummies_look_random() {
    let f = fixture(3);
    let mut reversed = f.bundles.clone();
    reversed.reverse();
    let a = PrekeyRecord::build(&mut ChaCha20Rng::from_seed([1; 32]), &f.list, &f.bundles).unwrap();
    let b = PrekeyRecord::build(&mut ChaCha20Rng::from_seed([1; 32]), &f.list, &reversed).unwrap();
    assert_eq!(a, b);
    // No slot carries the bundle's plaintext structure (version/type bytes,
    // identity keys) anywhere.
    for d in &f.devices {
        let key = d.public().to_bytes();
        assert!(!a.slots.windows(32).any(|w| w == &key[..32]));
    }
    // Byte frequencies over all slots are roughly uniform (sanity check,
    // not a proof): no value appears more than 3× its expected count.
    let mut hist = [0usize; 256];
    for &x in &a.slots {
        hist[x as usize] += 1;
    }
    let expected = a.slots.len() >> 8; // ÷ 256 byte values
    assert!(hist.iter().all(|&c| c < 3 * expected), "{hist:?}");
}

#[test]
fn a_fetcher_without_the_device_list_finds_nothing() {
    let f = fixture(2);
    let other = fixture_seeded(2, 22);
    let record =
        PrekeyRecord::build(&mut ChaCha20Rng::from_seed([2; 32]), &f.list, &f.bundles).unwrap();
    // Another account's list (other device ids and keys) opens no slot.
    let opened = record.open(&other.list).unwrap();
    assert!(opened.bundles().is_empty());
    assert_eq!(opened.missing().len(), 2);
}

#[test]
fn build_rejects_bad_inputs_without_drawing() {
    let mut f = fixture(2);
    let mut rng = ChaCha20Rng::from_seed([3; 32]);
    let untouched = rng.clone();
    let id0 = *f.list.list().devices()[0].id();
    let missing = PrekeyRecord::build(&mut rng, &f.list, &f.bundles[..1]).unwrap_err();
    assert!(matches!(missing, PrekeyRecordError::MissingBundle { .. }));
    let dup = vec![f.bundles[0].clone(), f.bundles[0].clone()];
    assert!(matches!(
        PrekeyRecord::build(&mut rng, &f.list, &dup),
        Err(PrekeyRecordError::DuplicateBundle { .. })
    ));
    let stranger = fixture_seeded(1, 23);
    assert_eq!(
        PrekeyRecord::build(&mut rng, &f.list, &stranger.bundles),
        Err(PrekeyRecordError::NotInList)
    );
    assert_eq!(rng, untouched);
    let store = &mut f.stores[0];
    let otp = store
        .generate_one_time_prekeys(&mut rng, &f.devices[0], 1)
        .unwrap()[0]
        .id();
    let rng_before = rng.clone();
    let with_otp = store.bundle(&f.devices[0], Some(otp), None).unwrap();
    assert_eq!(
        PrekeyRecord::build(&mut rng, &f.list, &[with_otp]),
        Err(PrekeyRecordError::OneTimePrekeysInSlot)
    );
    assert_eq!(rng, rng_before);
    let _ = id0;
}

#[test]
fn decoder_rejects_malformed_records() {
    let f = fixture(1);
    let record =
        PrekeyRecord::build(&mut ChaCha20Rng::from_seed([4; 32]), &f.list, &f.bundles).unwrap();
    let good = record.to_bytes();
    for n in [0, 1, 2, 3, 100, good.len() - 1] {
        assert!(PrekeyRecord::from_bytes(&good[..n]).is_err());
    }
    let mut long = good.clone();
    long.push(0);
    assert_eq!(
        PrekeyRecord::from_bytes(&long),
        Err(WireError::TrailingBytes { count: 1 })
    );
    for bad_count in [0u8, 3, 5] {
        let mut b = good.clone();
        b[2] = bad_count;
        assert!(matches!(
            PrekeyRecord::from_bytes(&b),
            Err(WireError::InvalidValue {
                field: "slot count"
            })
        ));
    }
    let mut b = good.clone();
    b[2] = 20;
    assert!(matches!(
        PrekeyRecord::from_bytes(&b),
        Err(WireError::TooMany {
            field: "slot count",
            ..
        })
    ));
    // Slots out of order (swap the first two).
    let mut b = good.clone();
    let (s0, s1) = (
        b[3..3 + SLOT_LEN].to_vec(),
        b[3 + SLOT_LEN..3 + 2 * SLOT_LEN].to_vec(),
    );
    b[3..3 + SLOT_LEN].copy_from_slice(&s1);
    b[3 + SLOT_LEN..3 + 2 * SLOT_LEN].copy_from_slice(&s0);
    assert_eq!(
        PrekeyRecord::from_bytes(&b),
        Err(WireError::NotCanonical { field: "slots" })
    );
    // A repeated slot.
    let mut b = good.clone();
    b[3 + SLOT_LEN..3 + 2 * SLOT_LEN].copy_from_slice(&s0);
    assert!(PrekeyRecord::from_bytes(&b).is_err());
}

#[test]
fn a_tampered_real_slot_counts_as_missing() {
    let f = fixture(1);
    let record =
        PrekeyRecord::build(&mut ChaCha20Rng::from_seed([4; 32]), &f.list, &f.bundles).unwrap();
    let opened = record.open(&f.list).unwrap();
    assert_eq!(opened.bundles().len(), 1);
    let mut bytes = record.to_bytes();
    // Flip a byte in every slot: none opens any more.
    for i in 0..4 {
        bytes[3 + i * SLOT_LEN + 100] ^= 1;
    }
    let tampered = PrekeyRecord::from_bytes(&bytes).unwrap_or_else(|_| {
        // Flipping may reorder slots; re-sort to keep the encoding canonical.
        let mut slots: Vec<&[u8]> = bytes[3..].chunks(SLOT_LEN).collect();
        slots.sort();
        let mut b = bytes[..3].to_vec();
        b.extend(slots.concat());
        PrekeyRecord::from_bytes(&b).unwrap()
    });
    let opened = tampered.open(&f.list).unwrap();
    assert!(opened.bundles().is_empty());
    assert_eq!(opened.missing().len(), 1);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn decoding_arbitrary_bytes_never_panics(
        count in any::<u8>(),
        body in proptest::collection::vec(any::<u8>(), 0..4096),
    ) {
        let _ = PrekeyRecord::from_bytes(&body);
        let mut framed = vec![crate::wire::WIRE_VERSION, message_type::PREKEY_RECORD, count];
        framed.extend_from_slice(&body);
        if let Ok(r) = PrekeyRecord::from_bytes(&framed) {
            prop_assert_eq!(r.to_bytes(), framed);
        }
    }

    #[test]
    fn random_slots_sorted_decode_and_round_trip(seed in any::<[u8; 32]>(), buckets in 1usize..=4) {
        let mut rng = ChaCha20Rng::from_seed(seed);
        let mut slots: Vec<Vec<u8>> = (0..buckets * 4)
            .map(|_| {
                let mut s = vec![0u8; SLOT_LEN];
                rng.fill_bytes(&mut s);
                s
            })
            .collect();
        slots.sort();
        let mut bytes = vec![1, message_type::PREKEY_RECORD, (buckets * 4) as u8];
        bytes.extend(slots.concat());
        let r = PrekeyRecord::from_bytes(&bytes).unwrap();
        prop_assert_eq!(r.to_bytes(), bytes);
        prop_assert_eq!(r.slot_count(), buckets * 4);
    }
}
