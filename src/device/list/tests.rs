use super::*;
use crate::identity::DeviceIdentity;
use crate::secret::Ed25519Seed;
use alloc::vec;
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const V: ClientVersion = ClientVersion {
    major: 1,
    minor: 2,
    patch: 3,
};

struct Fixture {
    account: Account,
    ids: Vec<DeviceId>,
    devices: Vec<DeviceIdentity>,
}

fn fixture(n: usize) -> Fixture {
    let mut rng = ChaCha20Rng::from_seed([9; 32]);
    let account = Account::from_seed(&Ed25519Seed::from_bytes([3; 32]));
    let devices: Vec<_> = (0..n).map(|_| DeviceIdentity::generate(&mut rng)).collect();
    let ids = (0..n).map(|_| DeviceId::generate(&mut rng)).collect();
    Fixture {
        account,
        ids,
        devices,
    }
}

fn entry(f: &Fixture, i: usize) -> DeviceEntry {
    DeviceEntry::new(
        f.ids[i],
        *f.devices[i].public(),
        Platform::Android,
        "device",
        V,
        100 + i as u64,
    )
}

/// v1 = {0, 1}; v2 = v1 + {2}; v3 = v2 − {1} (revocation).
fn chain(f: &Fixture) -> Vec<SignedDeviceList> {
    let mut d = DeviceListDraft::first(&f.account);
    d.add_device(entry(f, 0)).unwrap();
    d.add_device(entry(f, 1)).unwrap();
    let v1 = d.sign(&f.account).unwrap();
    let held =
        VerifiedDeviceList::trust_first_with_key(v1.clone(), &f.account.public_key()).unwrap();
    let mut d = held.next_draft().unwrap();
    d.add_device(entry(f, 2)).unwrap();
    let v2 = d.sign(&f.account).unwrap();
    let held = VerifiedDeviceList(v2.clone());
    let mut d = held.next_draft().unwrap();
    d.remove_device(&f.ids[1], 500).unwrap();
    let v3 = d.sign(&f.account).unwrap();
    vec![v1, v2, v3]
}

fn trusted(f: &Fixture, l: &SignedDeviceList) -> VerifiedDeviceList {
    VerifiedDeviceList::trust_first(l.clone(), &f.account.session_id()).unwrap()
}

fn advanced(r: Result<UpdateOutcome, DeviceListError>) -> VerifiedDeviceList {
    match r {
        Ok(UpdateOutcome::Advanced(v)) => *v,
        other => panic!("expected Advanced, got {other:?}"),
    }
}

/// Re-signs `body` as the account would (bypassing the draft checks), to
/// build lists an honest draft would refuse.
fn sign_body(account: &Account, body: Body) -> SignedDeviceList {
    let hash = body.hash();
    let signature = account.sign(&Body::signature_input(&hash));
    SignedDeviceList {
        body,
        hash,
        signature,
    }
}

#[test]
fn encoding_round_trips_and_is_canonical() {
    let f = fixture(3);
    for l in chain(&f) {
        let bytes = l.to_bytes();
        let back = SignedDeviceList::from_bytes(&bytes).unwrap();
        assert_eq!(back, l);
        assert_eq!(back.to_bytes(), bytes);
    }
}

#[test]
fn chain_of_updates_is_accepted_step_by_step_and_with_intermediates() {
    let f = fixture(3);
    let c = chain(&f);
    let held = trusted(&f, &c[0]);
    let h2 = advanced(held.accept_update(&c[1], &[]));
    let h3 = advanced(h2.accept_update(&c[2], &[]));
    // Gap bridged by the intermediate version.
    assert_eq!(advanced(held.accept_update(&c[2], &c[1..2])), h3);
    // Whole history passed: older versions are skipped.
    assert_eq!(advanced(held.accept_update(&c[2], &c)), h3);
    assert_eq!(h3.accept_update(&c[2], &[]), Ok(UpdateOutcome::Unchanged));
}

#[test]
fn revocation_is_reported_by_status() {
    let f = fixture(3);
    let c = chain(&f);
    let h3 = trusted(&f, &c[2]);
    assert_eq!(
        h3.status(&f.ids[1]),
        DeviceStatus::Revoked { removed_at: 500 }
    );
    assert!(!h3.is_active(&f.ids[1]));
    assert!(h3.is_active(&f.ids[0]) && h3.is_active(&f.ids[2]));
    assert!(matches!(h3.status(&f.ids[0]), DeviceStatus::Active(e) if e.id() == &f.ids[0]));
    assert_eq!(
        h3.status(&DeviceId::from_bytes([0xEE; 32])),
        DeviceStatus::Unknown
    );
    assert!(h3.device_with_identity(f.devices[1].public()).is_none());
    assert!(h3.device_with_identity(f.devices[2].public()).is_some());
}

#[test]
fn bad_signature_is_rejected() {
    let f = fixture(3);
    let c = chain(&f);
    let held = trusted(&f, &c[1]);
    let mut bytes = c[2].to_bytes();
    *bytes.last_mut().unwrap() ^= 1;
    let forged = SignedDeviceList::from_bytes(&bytes).unwrap();
    assert_eq!(
        held.accept_update(&forged, &[]),
        Err(DeviceListError::BadSignature { version: 3 })
    );
    assert_eq!(
        VerifiedDeviceList::trust_first(forged, &f.account.session_id()),
        Err(DeviceListError::BadSignature { version: 3 })
    );
    // A body change breaks the signature as well (description byte).
    let mut bytes = c[2].to_bytes();
    let pos = bytes.windows(6).position(|w| w == b"device").unwrap();
    bytes[pos] = b'D';
    let altered = SignedDeviceList::from_bytes(&bytes).unwrap();
    assert_eq!(
        held.accept_update(&altered, &[]),
        Err(DeviceListError::BadSignature { version: 3 })
    );
}

#[test]
fn rollback_is_rejected() {
    let f = fixture(3);
    let c = chain(&f);
    let held = trusted(&f, &c[2]);
    assert_eq!(
        held.accept_update(&c[0], &[]),
        Err(DeviceListError::Rollback {
            held: 3,
            offered: 1
        })
    );
    assert_eq!(
        held.accept_update(&c[1], &[]),
        Err(DeviceListError::Rollback {
            held: 3,
            offered: 2
        })
    );
}

#[test]
fn fork_is_rejected_with_verifiable_evidence() {
    let f = fixture(4);
    let c = chain(&f);
    let h2 = trusted(&f, &c[1]);
    let mut d = h2.next_draft().unwrap();
    d.add_device(entry(&f, 3)).unwrap();
    let other_v3 = d.sign(&f.account).unwrap();
    let h3 = advanced(h2.accept_update(&c[2], &[]));
    let Err(DeviceListError::Fork(e)) = h3.accept_update(&other_v3, &[]) else {
        panic!("expected a fork")
    };
    assert_eq!(e.version(), 3);
    assert_eq!(e.held(), &c[2]);
    assert_eq!(e.offered(), &other_v3);
    assert!(e.verify());
    // Evidence that is not a fork does not verify.
    let fake = ForkEvidence {
        held: c[2].clone(),
        offered: c[2].clone(),
    };
    assert!(!fake.verify());
    // A fork met among the intermediates is reported too.
    let h3_other = advanced(h2.accept_update(&other_v3, &[]));
    let mut d = h3_other.next_draft().unwrap();
    d.remove_device(&f.ids[3], 900).unwrap();
    let other_v4 = d.sign(&f.account).unwrap();
    assert!(matches!(
        h3.accept_update(&other_v4, core::slice::from_ref(&other_v3)),
        Err(DeviceListError::Fork(_))
    ));
    // A successor of the other branch, without intermediates, does not chain.
    let h3b = advanced(h2.accept_update(&c[2], &[]));
    assert_eq!(
        h3b.accept_update(&other_v4, &[]),
        Err(DeviceListError::ChainMismatch { version: 4 })
    );
}

#[test]
fn unbridged_gap_is_rejected() {
    let f = fixture(3);
    let c = chain(&f);
    let held = trusted(&f, &c[0]);
    assert_eq!(
        held.accept_update(&c[2], &[]),
        Err(DeviceListError::Gap {
            held: 1,
            offered: 3,
            missing: 2
        })
    );
    // An intermediate with a bad signature stops the chain.
    let mut bytes = c[1].to_bytes();
    *bytes.last_mut().unwrap() ^= 0x80;
    let bad = SignedDeviceList::from_bytes(&bytes).unwrap();
    assert_eq!(
        held.accept_update(&c[2], &[bad]),
        Err(DeviceListError::BadSignature { version: 2 })
    );
}

#[test]
fn previous_hash_must_match() {
    let f = fixture(3);
    let c = chain(&f);
    let held = trusted(&f, &c[0]);
    let mut body = c[1].body.clone();
    body.previous_hash = [7; 32];
    let v2 = sign_body(&f.account, body);
    assert_eq!(
        held.accept_update(&v2, &[]),
        Err(DeviceListError::ChainMismatch { version: 2 })
    );
}

#[test]
fn unknown_mandatory_extension_is_rejected_and_optional_is_kept() {
    let f = fixture(3);
    let c = chain(&f);
    let held = trusted(&f, &c[2]);
    let mut d = held.next_draft().unwrap();
    d.add_extension(Extension::new(0x0001, b"optional").unwrap())
        .unwrap();
    let v4 = d.sign(&f.account).unwrap();
    let h4 = advanced(held.accept_update(&v4, &[]));
    assert_eq!(h4.list().extensions()[0].data(), b"optional");

    let mut d = h4.next_draft().unwrap();
    d.add_extension(Extension::new(0x8001, b"must understand").unwrap())
        .unwrap();
    let v5 = d.sign(&f.account).unwrap();
    assert_eq!(
        h4.accept_update(&v5, &[]),
        Err(DeviceListError::UnknownMandatoryExtension {
            version: 5,
            ext_type: 0x8001
        })
    );
    // Also inside a device entry.
    let mut d = h4.next_draft().unwrap();
    let mut e = h4.list().devices()[0].clone();
    e.add_extension(Extension::new(0xFFFF, &[]).unwrap())
        .unwrap();
    d.update_device(e).unwrap();
    let v5 = d.sign(&f.account).unwrap();
    assert_eq!(
        h4.accept_update(&v5, &[]),
        Err(DeviceListError::UnknownMandatoryExtension {
            version: 5,
            ext_type: 0xFFFF
        })
    );
}

#[test]
fn tombstones_cannot_be_resurrected_dropped_or_skipped() {
    let f = fixture(3);
    let c = chain(&f);
    let h3 = trusted(&f, &c[2]);
    // The draft refuses.
    let mut d = h3.next_draft().unwrap();
    assert_eq!(
        d.add_device(entry(&f, 1)),
        Err(DeviceListError::TombstoneResurrection { id: f.ids[1] })
    );
    // A list signed anyway is rejected by verification.
    let mut body = h3.next_draft().unwrap().0;
    body.tombstones.clear();
    let at = body.devices.partition_point(|d| d.id < f.ids[1]);
    body.devices.insert(at, entry(&f, 1));
    let v4 = sign_body(&f.account, body);
    assert_eq!(
        h3.accept_update(&v4, &[]),
        Err(DeviceListError::TombstoneResurrection { id: f.ids[1] })
    );
    // Dropping the tombstone.
    let mut body = h3.next_draft().unwrap().0;
    body.tombstones.clear();
    let v4 = sign_body(&f.account, body);
    assert_eq!(
        h3.accept_update(&v4, &[]),
        Err(DeviceListError::TombstoneDropped { id: f.ids[1] })
    );
    // A device vanishing without a tombstone.
    let mut body = h3.next_draft().unwrap().0;
    body.devices.retain(|d| d.id != f.ids[0]);
    let v4 = sign_body(&f.account, body);
    assert_eq!(
        h3.accept_update(&v4, &[]),
        Err(DeviceListError::DeviceVanished { id: f.ids[0] })
    );
    // A device id keeping its place with new keys.
    let mut body = h3.next_draft().unwrap().0;
    let other = DeviceIdentity::generate(&mut ChaCha20Rng::from_seed([77; 32]));
    body.devices[0].identity = *other.public();
    let v4 = sign_body(&f.account, body);
    assert_eq!(
        h3.accept_update(&v4, &[]),
        Err(DeviceListError::IdentityChanged {
            id: h3.list().devices()[0].id
        })
    );
    // A list naming an id both live and removed does not even decode.
    let mut body = h3.next_draft().unwrap().0;
    body.devices.insert(0, entry(&f, 1));
    body.devices.sort_by_key(|d| d.id);
    let both = sign_body(&f.account, body);
    assert!(matches!(
        SignedDeviceList::from_bytes(&both.to_bytes()),
        Err(WireError::InvalidValue { .. })
    ));
}

#[test]
fn wrong_account_is_rejected() {
    let f = fixture(3);
    let c = chain(&f);
    let other = Account::from_seed(&Ed25519Seed::from_bytes([4; 32]));
    assert_eq!(
        VerifiedDeviceList::trust_first(c[0].clone(), &other.session_id()),
        Err(DeviceListError::WrongAccount)
    );
    assert_eq!(
        VerifiedDeviceList::trust_first_with_key(c[0].clone(), &other.public_key()),
        Err(DeviceListError::WrongAccount)
    );
    let held = trusted(&f, &c[0]);
    let mut d = DeviceListDraft::first(&other);
    d.add_device(entry(&f, 0)).unwrap();
    let theirs = d.sign(&other).unwrap();
    assert_eq!(
        held.accept_update(&theirs, &[]),
        Err(DeviceListError::WrongAccount)
    );
    // Signing a draft with another account's key is refused.
    assert_eq!(
        held.next_draft().unwrap().sign(&other).unwrap_err(),
        DeviceListError::WrongAccount
    );
}

#[test]
fn drafts_enforce_bounds_and_change_nothing_on_error() {
    let f = fixture(1);
    let mut rng = ChaCha20Rng::from_seed([5; 32]);
    let mut d = DeviceListDraft::first(&f.account);
    let dev = DeviceIdentity::generate(&mut rng);
    for i in 0..MAX_DEVICES {
        let e = DeviceEntry::new(
            DeviceId::generate(&mut rng),
            *dev.public(),
            Platform::Other(0x7F),
            "x",
            V,
            i as u64,
        );
        d.add_device(e).unwrap();
    }
    let before = d.devices().to_vec();
    let extra = DeviceEntry::new(
        DeviceId::generate(&mut rng),
        *dev.public(),
        Platform::Web,
        "",
        V,
        0,
    );
    assert_eq!(d.add_device(extra), Err(DeviceListError::TooManyDevices));
    assert_eq!(
        d.add_device(before[0].clone()),
        Err(DeviceListError::DuplicateDevice { id: before[0].id })
    );
    assert_eq!(d.devices(), before.as_slice());
    let unknown = DeviceId::from_bytes([0; 32]);
    assert_eq!(
        d.remove_device(&unknown, 0),
        Err(DeviceListError::UnknownDevice { id: unknown })
    );
    assert_eq!(d.devices(), before.as_slice());
    for i in 0..MAX_EXTENSIONS {
        d.add_extension(Extension::new(i as u16, &[0xAB; MAX_EXTENSION_LEN]).unwrap())
            .unwrap();
    }
    assert_eq!(
        d.add_extension(Extension::new(99, &[]).unwrap()),
        Err(DeviceListError::InvalidExtension { ext_type: 99 })
    );
    assert_eq!(
        d.add_extension(Extension::new(0, &[]).unwrap()),
        Err(DeviceListError::InvalidExtension { ext_type: 0 })
    );
    assert!(Extension::new(1, &[0; MAX_EXTENSION_LEN + 1]).is_none());
    let list = d.sign(&f.account).unwrap();
    assert_eq!(
        SignedDeviceList::from_bytes(&list.to_bytes()).unwrap(),
        list
    );
}

#[test]
fn maximal_list_fits_the_stated_bound() {
    let f = fixture(1);
    let mut rng = ChaCha20Rng::from_seed([6; 32]);
    let dev = DeviceIdentity::generate(&mut rng);
    let mut body = DeviceListDraft::first(&f.account).0;
    body.version = 2;
    body.previous_hash = [1; 32];
    let full_exts: Vec<Extension> = (0..MAX_EXTENSIONS as u16)
        .map(|t| Extension::new(t, &[0x55; MAX_EXTENSION_LEN]).unwrap())
        .collect();
    for _ in 0..MAX_DEVICES {
        let mut e = DeviceEntry::new(
            DeviceId::generate(&mut rng),
            *dev.public(),
            Platform::Desktop,
            &"é".repeat(40), // 80 bytes, cut to 64 on a boundary
            V,
            1,
        );
        assert_eq!(e.description().len(), MAX_DESCRIPTION_LEN);
        e.extensions = full_exts.clone();
        body.devices.push(e);
    }
    body.devices.sort_by_key(|d| d.id);
    for _ in 0..MAX_TOMBSTONES {
        body.tombstones.push(Tombstone {
            id: DeviceId::generate(&mut rng),
            removed_at: u64::MAX,
        });
    }
    body.tombstones.sort_by_key(|t| t.id);
    body.extensions = full_exts;
    let list = sign_body(&f.account, body.clone());
    let bytes = list.to_bytes();
    assert_eq!(bytes.len(), MAX_DEVICE_LIST_LEN);
    assert_eq!(MAX_DEVICE_LIST_LEN, 61_742);
    assert!(bytes.len() <= wire::MAX_WIRE_LEN);
    assert_eq!(SignedDeviceList::from_bytes(&bytes).unwrap(), list);
    assert!(VerifiedDeviceList::trust_first_with_key(list, &f.account.public_key()).is_ok());

    // One more tombstone (count field) is rejected before anything is read.
    let mut over = bytes.clone();
    let tomb_count_at =
        bytes.len() - 64 - 1 - MAX_EXTENSIONS * (4 + MAX_EXTENSION_LEN) - MAX_TOMBSTONES * 40 - 2;
    assert_eq!(
        &over[tomb_count_at..tomb_count_at + 2],
        &(MAX_TOMBSTONES as u16).to_be_bytes()
    );
    over[tomb_count_at..tomb_count_at + 2]
        .copy_from_slice(&(MAX_TOMBSTONES as u16 + 1).to_be_bytes());
    assert_eq!(
        SignedDeviceList::from_bytes(&over),
        Err(WireError::TooMany {
            field: "tombstone count",
            count: MAX_TOMBSTONES + 1,
            max: MAX_TOMBSTONES
        })
    );
}

#[test]
fn decoder_rejects_malformed_encodings() {
    let f = fixture(3);
    let c = chain(&f);
    let good = c[2].to_bytes();
    // Every truncation fails (and never panics).
    for n in 0..good.len() {
        assert!(
            SignedDeviceList::from_bytes(&good[..n]).is_err(),
            "prefix {n}"
        );
    }
    assert!(matches!(
        SignedDeviceList::from_bytes(&good[..good.len() - 1]),
        Err(WireError::Truncated { field: "signature" })
    ));
    let mut long = good.clone();
    long.push(0);
    assert_eq!(
        SignedDeviceList::from_bytes(&long),
        Err(WireError::TrailingBytes { count: 1 })
    );
    let mut huge = good.clone();
    huge.resize(wire::MAX_WIRE_LEN + 1, 0);
    assert!(matches!(
        SignedDeviceList::from_bytes(&huge),
        Err(WireError::TooLong { .. })
    ));
    // Device count above the bound.
    let mut b = good.clone();
    b[74] = (MAX_DEVICES + 1) as u8;
    assert!(matches!(
        SignedDeviceList::from_bytes(&b),
        Err(WireError::TooMany {
            field: "device count",
            ..
        })
    ));
    // Version 0, and a previous hash that does not fit the version.
    let mut b = good.clone();
    b[34..42].copy_from_slice(&0u64.to_be_bytes());
    assert!(matches!(
        SignedDeviceList::from_bytes(&b),
        Err(WireError::InvalidValue {
            field: "list version"
        })
    ));
    let mut b = good.clone();
    b[34..42].copy_from_slice(&1u64.to_be_bytes());
    assert!(matches!(
        SignedDeviceList::from_bytes(&b),
        Err(WireError::InvalidValue {
            field: "previous hash"
        })
    ));
    // Devices out of order: swap the first two entries' ids.
    let mut b = good.clone();
    let e0 = 75;
    let entry_len = ENTRY_FIXED_LEN + "device".len();
    let e1 = e0 + entry_len;
    let (id0, id1) = (b[e0..e0 + 32].to_vec(), b[e1..e1 + 32].to_vec());
    b[e0..e0 + 32].copy_from_slice(&id1);
    b[e1..e1 + 32].copy_from_slice(&id0);
    assert_eq!(
        SignedDeviceList::from_bytes(&b),
        Err(WireError::NotCanonical { field: "device id" })
    );
    // Description: too long, and not UTF-8.
    let desc_len_at = e0 + 32 + 64 + 1 + 6 + 16;
    let mut b = good.clone();
    b[desc_len_at] = (MAX_DESCRIPTION_LEN + 1) as u8;
    assert!(matches!(
        SignedDeviceList::from_bytes(&b),
        Err(WireError::LengthExceeded {
            field: "description",
            ..
        })
    ));
    let mut b = good.clone();
    b[desc_len_at + 1] = 0xFF;
    assert_eq!(
        SignedDeviceList::from_bytes(&b),
        Err(WireError::InvalidUtf8 {
            field: "description"
        })
    );
    // Extension count and length bounds; extension order.
    let ext_count_at = desc_len_at + 1 + "device".len();
    let mut b = good.clone();
    b[ext_count_at] = (MAX_EXTENSIONS + 1) as u8;
    assert!(matches!(
        SignedDeviceList::from_bytes(&b),
        Err(WireError::TooMany {
            field: "extension count",
            ..
        })
    ));
    let mut b = good[..ext_count_at].to_vec();
    b.extend_from_slice(&[1, 0, 9, 0x01, 0x01]);
    b.extend_from_slice(&[0; 257]);
    assert!(matches!(
        SignedDeviceList::from_bytes(&b),
        Err(WireError::LengthExceeded {
            field: "extension data",
            ..
        })
    ));
    let mut b = good[..ext_count_at].to_vec();
    b.extend_from_slice(&[2, 0, 9, 0, 0, 0, 9, 0, 0]);
    assert_eq!(
        SignedDeviceList::from_bytes(&b),
        Err(WireError::NotCanonical {
            field: "extension type"
        })
    );
    // Bad account key (small order).
    let mut b = good.clone();
    b[2..34].copy_from_slice(&{
        let mut k = [0u8; 32];
        k[0] = 1;
        k
    });
    assert_eq!(
        SignedDeviceList::from_bytes(&b),
        Err(WireError::InvalidEd25519Key {
            field: "account key"
        })
    );
    // Tombstone count larger than the input can hold: rejected before allocating.
    let tomb_at = good.len() - 64 - 1 - 40 - 2;
    let mut b = good.clone();
    b[tomb_at..tomb_at + 2].copy_from_slice(&1000u16.to_be_bytes());
    assert_eq!(
        SignedDeviceList::from_bytes(&b),
        Err(WireError::Truncated { field: "tombstone" })
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = SignedDeviceList::from_bytes(&bytes);
        let mut framed = vec![wire::WIRE_VERSION, message_type::DEVICE_LIST];
        framed.extend_from_slice(&bytes);
        let _ = SignedDeviceList::from_bytes(&framed);
    }

    #[test]
    fn mutated_lists_never_panic_and_never_verify_as_another(
        pos in any::<prop::sample::Index>(), xor in 1u8..=255,
    ) {
        let f = fixture(3);
        let c = chain(&f);
        let held = VerifiedDeviceList(c[1].clone());
        let mut b = c[2].to_bytes();
        let i = pos.index(b.len());
        b[i] ^= xor;
        if let Ok(l) = SignedDeviceList::from_bytes(&b) {
            prop_assert_eq!(l.to_bytes(), b);
            prop_assert!(held.accept_update(&l, &[]).is_err());
        }
    }

    #[test]
    #[allow(clippy::needless_range_loop)]
    fn encode_decode_round_trip(
        n in 0usize..4,
        descs in proptest::collection::vec(".{0,40}", 4),
        platform in any::<u8>(),
        times in any::<(u64, u64)>(),
        exts in proptest::collection::btree_map(any::<u16>(), proptest::collection::vec(any::<u8>(), 0..40), 0..=MAX_EXTENSIONS),
        tombs in 0usize..5,
    ) {
        let f = fixture(4);
        let mut rng = ChaCha20Rng::from_seed([times.0 as u8; 32]);
        let mut d = DeviceListDraft::first(&f.account);
        for i in 0..n {
            let mut e = DeviceEntry::new(f.ids[i], *f.devices[i].public(), Platform::from_byte(platform), &descs[i], V, times.0);
            e.set_client_version(ClientVersion { major: 9, minor: platform.into(), patch: 0 }, times.1);
            d.add_device(e).unwrap();
        }
        for (t, data) in &exts {
            d.add_extension(Extension::new(*t, data).unwrap()).unwrap();
        }
        for _ in 0..tombs {
            let id = DeviceId::generate(&mut rng);
            d.add_device(DeviceEntry::new(id, *f.devices[0].public(), Platform::Ios, "", V, 0)).ok();
            d.remove_device(&id, times.1).ok();
        }
        let l = d.sign(&f.account).unwrap();
        let bytes = l.to_bytes();
        let back = SignedDeviceList::from_bytes(&bytes).unwrap();
        prop_assert_eq!(back.to_bytes(), bytes);
        prop_assert_eq!(&back, &l);
        prop_assert_eq!(back.hash(), l.hash());
        prop_assert!(back.verify_signature().is_ok());
    }
}

#[test]
fn description_is_cut_on_a_character_boundary() {
    let f = fixture(1);
    let long = "ab".repeat(40);
    let e = DeviceEntry::new(f.ids[0], *f.devices[0].public(), Platform::Ios, &long, V, 0);
    assert_eq!(e.description().len(), 64);
    // 63 ASCII bytes then a 4-byte character: cut before it.
    let s = alloc::format!("{}😀", "a".repeat(63));
    let e = DeviceEntry::new(f.ids[0], *f.devices[0].public(), Platform::Ios, &s, V, 0);
    assert_eq!(e.description(), "a".repeat(63));
}

#[test]
fn accessors_report_what_was_signed() {
    let f = fixture(3);
    let lists = chain(&f);
    let (v1, v2, v3) = (&lists[0], &lists[1], &lists[2]);
    assert_eq!((v1.version(), v2.version(), v3.version()), (1, 2, 3));
    assert_eq!(v1.previous_hash(), &[0u8; 32]);
    assert_eq!(v2.previous_hash(), v1.hash());
    assert_eq!(v3.previous_hash(), v2.hash());
    assert_ne!(v1.hash(), v2.hash());
    assert_eq!(v3.tombstones().len(), 1);
    assert_eq!(v3.tombstones()[0].id(), &f.ids[1]);
    assert_eq!(v3.tombstones()[0].removed_at(), 500);
    // The signature is the account's over the list hash (§8.2.3).
    let input = Body::signature_input(v3.hash());
    assert!(v3.account().verify(&input, v3.signature()).is_ok());
    assert!(v3.account().verify(&input, v2.signature()).is_err());
    let e = &v3.devices()[0];
    assert_eq!(
        e.added_at(),
        100 + f.ids.iter().position(|i| i == e.id()).unwrap() as u64
    );
    assert_eq!(e.updated_at(), e.added_at());
}

#[test]
fn updating_a_device_changes_only_its_metadata() {
    let f = fixture(3);
    let lists = chain(&f);
    let held = trusted(&f, &lists[0]);
    let mut draft = held.next_draft().unwrap();
    let mut e = entry(&f, 0);
    e.set_description("renamed", 777);
    let newer = ClientVersion {
        major: 2,
        minor: 0,
        patch: 0,
    };
    e.set_client_version(newer, 778);
    let ext = Extension::new(0x0002, b"x").unwrap();
    e.add_extension(ext.clone()).unwrap();
    draft.update_device(e).unwrap();
    let v2 = draft.sign(&f.account).unwrap();
    let got = v2.devices().iter().find(|d| d.id() == &f.ids[0]).unwrap();
    assert_eq!(got.description(), "renamed");
    assert_eq!(got.client_version(), newer);
    assert_eq!(got.updated_at(), 778);
    assert_eq!(got.added_at(), 100);
    assert_eq!(got.extensions(), core::slice::from_ref(&ext));
    assert_eq!(got.extensions()[0].ext_type(), 0x0002);
    // A new identity, or a changed `added_at`, is a new device, not an update.
    let mut draft = held.next_draft().unwrap();
    let mut other_keys = entry(&f, 1);
    other_keys.id = f.ids[0];
    assert_eq!(
        draft.update_device(other_keys),
        Err(DeviceListError::IdentityChanged { id: f.ids[0] })
    );
    let mut moved = entry(&f, 0);
    moved.added_at = 1;
    assert_eq!(
        draft.update_device(moved),
        Err(DeviceListError::IdentityChanged { id: f.ids[0] })
    );
}
