//! Handshake agreement, an independent recomputation of the key schedule from
//! raw primitives, and every rejection path (with the store left unchanged).

use super::*;
use crate::prekey::{PrekeyBundle, PrekeyError};
use alloc::vec;
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

struct Bob {
    identity: DeviceIdentity,
    store: PrekeyStore,
}

fn bob(rng: &mut ChaCha20Rng) -> Bob {
    let identity = DeviceIdentity::generate(rng);
    let mut store = PrekeyStore::new(rng, &identity);
    store.generate_one_time_prekeys(rng, &identity, 2).unwrap();
    store
        .generate_one_time_kem_prekeys(rng, &identity, 2)
        .unwrap();
    Bob { identity, store }
}

fn bundle(b: &Bob, otp: bool, okem: bool) -> VerifiedBundle {
    let otp = otp.then(|| b.store.one_time_prekey_ids()[0]);
    let okem = okem.then(|| b.store.one_time_kem_prekey_ids()[0]);
    b.store
        .bundle(&b.identity, otp, okem)
        .unwrap()
        .verify_for(b.identity.public())
        .unwrap()
}

/// A fingerprint of everything the store could change, to prove "unchanged".
fn store_state(s: &PrekeyStore) -> (Vec<PrekeyId>, Vec<PrekeyId>, Vec<usize>) {
    (
        s.one_time_prekey_ids(),
        s.one_time_kem_prekey_ids(),
        s.last_resort_seen_counts(),
    )
}

fn assert_same_keys(a: &SessionSeed, b: &SessionSeed) {
    assert_eq!(a.root_key, b.root_key);
    assert_eq!(a.initiator_chain_key, b.initiator_chain_key);
    assert_eq!(a.initiator_header_key, b.initiator_header_key);
    assert_eq!(a.responder_header_key, b.responder_header_key);
    assert_eq!(a.transcript_hash, b.transcript_hash);
    assert_eq!(a.base_key, b.base_key);
    assert_eq!(a.local, b.remote);
    assert_eq!(a.remote, b.local);
}

#[test]
fn agreement_for_every_prekey_combination() {
    for (otp, okem) in [(false, false), (true, false), (false, true), (true, true)] {
        let mut rng = ChaCha20Rng::from_seed([otp as u8 * 2 + okem as u8; 32]);
        let alice = DeviceIdentity::generate(&mut rng);
        let mut b = bob(&mut rng);
        let before = store_state(&b.store);
        let (seed_a, header) = initiate(&mut rng, &alice, &bundle(&b, otp, okem)).unwrap();
        assert_eq!(header.one_time_prekey_id.is_some(), otp);
        assert_eq!(header.kem_kind == KemPrekeyKind::OneTime, okem);

        let msg = PrekeyMessage::from_bytes(&header.wrap(vec![1, 2, 3]).to_bytes()).unwrap();
        let pending = respond(&b.identity, &b.store, msg.header()).unwrap();
        assert_eq!(
            store_state(&b.store),
            before,
            "respond must not consume anything"
        );
        let seed_b = pending.commit(&mut b.store).unwrap();
        assert_same_keys(&seed_a, &seed_b);
        assert_eq!(seed_a.role(), Role::Initiator);
        assert_eq!(seed_b.role(), Role::Responder);
        // The four keys are distinct (domain separation inside the OKM).
        let ks = [
            seed_a.root_key.expose(),
            seed_a.initiator_chain_key.expose(),
            seed_a.initiator_header_key.expose(),
            seed_a.responder_header_key.expose(),
        ];
        for i in 0..4 {
            for j in i + 1..4 {
                assert_ne!(ks[i], ks[j]);
            }
        }
        // Exactly the used one-time keys are gone.
        let after = store_state(&b.store);
        assert_eq!(after.0.len(), before.0.len() - otp as usize);
        assert_eq!(after.1.len(), before.1.len() - okem as usize);
        assert_eq!(
            after.2.iter().sum::<usize>(),
            before.2.iter().sum::<usize>() + !okem as usize
        );
    }
}

/// Recomputes the initiator's keys with the raw primitive crates, following
/// the spec text (§5.2–§5.5) rather than this crate's helpers. Fails on any
/// wrong byte, order, label or length.
#[test]
fn key_schedule_matches_spec_formula() {
    use hkdf::Hkdf;
    use sha2::{Digest, Sha256};
    for (otp, okem) in [(false, false), (true, true)] {
        let mut rng = ChaCha20Rng::from_seed([42; 32]);
        let alice = DeviceIdentity::generate(&mut rng);
        let b = bob(&mut rng);
        let vb = bundle(&b, otp, okem);
        // §5.2: the initiator draws EK_A (32 bytes) then m (32 bytes).
        let mut replay = rng.clone();
        let (seed, header) = initiate(&mut rng, &alice, &vb).unwrap();
        let mut ek = [0u8; 32];
        let mut m = [0u8; 32];
        replay.fill_bytes(&mut ek);
        replay.fill_bytes(&mut m);

        let x = |k: &[u8; 32], p: &X25519PublicKey| x25519_dalek::x25519(*k, *p.as_bytes());
        let ik_a = alice.dh_secret().expose();
        let spk = vb.signed_prekey().key();
        let mut ikm = vec![0xFFu8; 32];
        ikm.extend(x(ik_a, spk));
        ikm.extend(x(&ek, vb.identity().dh_key()));
        ikm.extend(x(&ek, spk));
        if let Some(o) = vb.one_time_prekey() {
            ikm.extend(x(&ek, o.key()));
        }
        let pq = vb.kem_prekey();
        let lc_pk = libcrux_ml_kem::mlkem768::MlKem768PublicKey::from(pq.key().as_bytes());
        let (ct, ss) = libcrux_ml_kem::mlkem768::encapsulate(&lc_pk, m);
        assert_eq!(ct.as_slice(), header.kem_ciphertext.as_bytes());
        ikm.extend(ss);

        let mut th = Sha256::new();
        th.update(b"SessionRatchet/v1/handshake-transcript");
        th.update(alice.public().to_bytes());
        th.update(vb.identity().to_bytes());
        th.update(vb.signed_prekey().id().to_be_bytes());
        th.update(spk.as_bytes());
        match vb.one_time_prekey() {
            Some(o) => {
                th.update([1u8]);
                th.update(o.id().to_be_bytes());
                th.update(o.key().as_bytes());
            }
            None => th.update([0u8]),
        }
        th.update([if okem { 2u8 } else { 1u8 }]);
        th.update(pq.id().to_be_bytes());
        th.update(pq.key().as_bytes());
        th.update(header.base_key.as_bytes());
        th.update(ct.as_slice());
        let th: [u8; 32] = th.finalize().into();
        assert_eq!(&th, seed.transcript_hash());

        let mut info = b"SessionRatchet/v1/handshake-keys".to_vec();
        info.extend(th);
        let mut okm = [0u8; 128];
        Hkdf::<Sha256>::new(Some(&[0u8; 32]), &ikm)
            .expand(&info, &mut okm)
            .unwrap();
        assert_eq!(seed.root_key.expose(), &okm[0..32]);
        assert_eq!(seed.initiator_chain_key.expose(), &okm[32..64]);
        assert_eq!(seed.initiator_header_key.expose(), &okm[64..96]);
        assert_eq!(seed.responder_header_key.expose(), &okm[96..128]);
        assert_eq!(
            header.base_key.as_bytes(),
            &x25519_dalek::x25519(ek, x25519_dalek::X25519_BASEPOINT_BYTES)
        );
    }
}

#[test]
fn header_is_repeated_until_reply_and_encodes_identically() {
    let mut rng = ChaCha20Rng::from_seed([3; 32]);
    let alice = DeviceIdentity::generate(&mut rng);
    let b = bob(&mut rng);
    let (_, header) = initiate(&mut rng, &alice, &bundle(&b, true, true)).unwrap();
    let m1 = PrekeyMessage::from_bytes(&header.wrap(vec![1]).to_bytes()).unwrap();
    let m2 = PrekeyMessage::from_bytes(&header.wrap(vec![2, 2]).to_bytes()).unwrap();
    assert_eq!(m1.header(), m2.header());
    assert_eq!(m1.header(), &header);
    assert_eq!(m2.payload(), &[2, 2]);
}

#[test]
fn one_time_prekey_cannot_be_used_twice() {
    let mut rng = ChaCha20Rng::from_seed([4; 32]);
    let alice = DeviceIdentity::generate(&mut rng);
    let mut b = bob(&mut rng);
    let (_, header) = initiate(&mut rng, &alice, &bundle(&b, true, false)).unwrap();
    respond(&b.identity, &b.store, &header)
        .unwrap()
        .commit(&mut b.store)
        .unwrap();
    let before = store_state(&b.store);
    let id = header.one_time_prekey_id.unwrap();
    assert_eq!(
        respond(&b.identity, &b.store, &header).unwrap_err(),
        HandshakeError::UnknownOneTimePrekey { id }
    );
    assert_eq!(store_state(&b.store), before);
}

#[test]
fn one_time_kem_prekey_cannot_be_used_twice() {
    let mut rng = ChaCha20Rng::from_seed([5; 32]);
    let alice = DeviceIdentity::generate(&mut rng);
    let mut b = bob(&mut rng);
    let (_, header) = initiate(&mut rng, &alice, &bundle(&b, false, true)).unwrap();
    respond(&b.identity, &b.store, &header)
        .unwrap()
        .commit(&mut b.store)
        .unwrap();
    let id = header.kem_prekey_id;
    assert_eq!(
        respond(&b.identity, &b.store, &header).unwrap_err(),
        HandshakeError::UnknownKemPrekey { id }
    );
}

#[test]
fn two_pending_responses_for_one_prekey_commit_once() {
    // Two different initiators got the same one-time prekey (a misbehaving
    // server); both pass `respond`, only the first commit may consume it.
    let mut rng = ChaCha20Rng::from_seed([6; 32]);
    let (a1, a2) = (
        DeviceIdentity::generate(&mut rng),
        DeviceIdentity::generate(&mut rng),
    );
    let mut b = bob(&mut rng);
    let vb = bundle(&b, true, false);
    let (_, h1) = initiate(&mut rng, &a1, &vb).unwrap();
    let (_, h2) = initiate(&mut rng, &a2, &vb).unwrap();
    let p1 = respond(&b.identity, &b.store, &h1).unwrap();
    let p2 = respond(&b.identity, &b.store, &h2).unwrap();
    p1.commit(&mut b.store).unwrap();
    let before = store_state(&b.store);
    let id = h2.one_time_prekey_id.unwrap();
    assert_eq!(
        p2.commit(&mut b.store).unwrap_err(),
        HandshakeError::UnknownOneTimePrekey { id }
    );
    assert_eq!(store_state(&b.store), before);
}

#[test]
fn last_resort_replay_is_detected() {
    let mut rng = ChaCha20Rng::from_seed([7; 32]);
    let alice = DeviceIdentity::generate(&mut rng);
    let mut b = bob(&mut rng);
    let vb = bundle(&b, false, false);
    let (_, header) = initiate(&mut rng, &alice, &vb).unwrap();
    // Not committed yet: the same message may be processed again (e.g. after
    // a failed payload check) without being taken for a replay.
    let _ = respond(&b.identity, &b.store, &header).unwrap();
    respond(&b.identity, &b.store, &header)
        .unwrap()
        .commit(&mut b.store)
        .unwrap();
    let before = store_state(&b.store);
    assert_eq!(
        respond(&b.identity, &b.store, &header).unwrap_err(),
        HandshakeError::ReplayedHandshake
    );
    assert_eq!(store_state(&b.store), before);
    // A fresh handshake with the same last-resort key still works.
    let (_, h2) = initiate(&mut rng, &alice, &vb).unwrap();
    respond(&b.identity, &b.store, &h2)
        .unwrap()
        .commit(&mut b.store)
        .unwrap();
}

#[test]
fn last_resort_limit_is_enforced_exactly() {
    let mut rng = ChaCha20Rng::from_seed([8; 32]);
    let b = bob(&mut rng);
    let mut store = b.store;
    let lr_id = store
        .bundle(&b.identity, None, None)
        .unwrap()
        .verify()
        .unwrap()
        .kem_prekey()
        .id();
    for i in 0..crate::prekey::MAX_BASE_KEYS_PER_LAST_RESORT as u32 {
        let mut k = [0u8; 32];
        k[..4].copy_from_slice(&i.to_be_bytes());
        assert!(store.record_base_key(lr_id, k));
    }
    assert!(
        !store.record_base_key(lr_id, [0xEE; 32]),
        "one past the limit is refused"
    );
    let alice = DeviceIdentity::generate(&mut rng);
    let vb = store
        .bundle(&b.identity, None, None)
        .unwrap()
        .verify()
        .unwrap();
    let (_, header) = initiate(&mut rng, &alice, &vb).unwrap();
    assert_eq!(
        respond(&b.identity, &store, &header).unwrap_err(),
        HandshakeError::LastResortPrekeyExhausted
    );
}

#[test]
fn unknown_and_rotated_prekeys_are_rejected() {
    let mut rng = ChaCha20Rng::from_seed([9; 32]);
    let alice = DeviceIdentity::generate(&mut rng);
    let mut b = bob(&mut rng);
    let (_, header) = initiate(&mut rng, &alice, &bundle(&b, false, false)).unwrap();
    for _ in 0..crate::prekey::MAX_SIGNED_PREKEYS {
        b.store.rotate_signed_prekey(&mut rng, &b.identity).unwrap();
    }
    let id = header.signed_prekey_id;
    assert_eq!(
        respond(&b.identity, &b.store, &header).unwrap_err(),
        HandshakeError::UnknownSignedPrekey { id }
    );

    let mut b = bob(&mut rng);
    let (_, header) = initiate(&mut rng, &alice, &bundle(&b, false, false)).unwrap();
    for _ in 0..crate::prekey::MAX_LAST_RESORT_PREKEYS {
        b.store
            .rotate_last_resort_prekey(&mut rng, &b.identity)
            .unwrap();
    }
    let id = header.kem_prekey_id;
    assert_eq!(
        respond(&b.identity, &b.store, &header).unwrap_err(),
        HandshakeError::UnknownKemPrekey { id }
    );

    // A header misdelivered to another device: ids are per-device counters,
    // so it may find prekeys with the same ids, but never the same keys.
    let other = bob(&mut rng);
    let (seed_a, header) = initiate(&mut rng, &alice, &bundle(&b, true, true)).unwrap();
    match respond(&other.identity, &other.store, &header) {
        Ok(p) => assert_ne!(p.seed().root_key, seed_a.root_key),
        Err(e) => assert!(matches!(
            e,
            HandshakeError::UnknownKemPrekey { .. } | HandshakeError::UnknownOneTimePrekey { .. }
        )),
    }
}

#[test]
fn kem_kind_confusion_is_rejected() {
    // Claiming a one-time KEM prekey id as last resort (or the reverse) finds nothing.
    let mut rng = ChaCha20Rng::from_seed([10; 32]);
    let alice = DeviceIdentity::generate(&mut rng);
    let b = bob(&mut rng);
    let (_, mut header) = initiate(&mut rng, &alice, &bundle(&b, false, true)).unwrap();
    header.kem_kind = KemPrekeyKind::LastResort;
    let id = header.kem_prekey_id;
    assert_eq!(
        respond(&b.identity, &b.store, &header).unwrap_err(),
        HandshakeError::UnknownKemPrekey { id }
    );
}

#[test]
fn tampered_header_gives_different_keys() {
    // Any change to a header field the responder can still process yields
    // different keys, so the first payload will not authenticate.
    let mut rng = ChaCha20Rng::from_seed([11; 32]);
    let alice = DeviceIdentity::generate(&mut rng);
    let b = bob(&mut rng);
    let (seed_a, header) = initiate(&mut rng, &alice, &bundle(&b, false, false)).unwrap();
    let mut bytes = header.wrap(vec![0]).to_bytes();
    let ct_start = bytes.len() - 1 - MLKEM_CIPHERTEXT_LEN;
    bytes[ct_start + 100] ^= 0x01;
    let msg = PrekeyMessage::from_bytes(&bytes).unwrap();
    let pending = respond(&b.identity, &b.store, msg.header()).unwrap();
    assert_ne!(pending.seed().root_key, seed_a.root_key);
    assert_ne!(pending.seed().transcript_hash, seed_a.transcript_hash);
}

#[test]
fn low_order_keys_are_rejected() {
    let mut rng = ChaCha20Rng::from_seed([12; 32]);
    let alice = DeviceIdentity::generate(&mut rng);
    let b = bob(&mut rng);
    let (_, mut header) = initiate(&mut rng, &alice, &bundle(&b, true, false)).unwrap();
    header.base_key = X25519PublicKey([0; 32]);
    assert_eq!(
        respond(&b.identity, &b.store, &header).unwrap_err(),
        HandshakeError::NonContributoryKey
    );

    // A bundle whose signed prekey is low-order (validly signed by a
    // malicious responder) is refused by the initiator.
    let mut bytes = b.store.bundle(&b.identity, None, None).unwrap().to_bytes();
    let spk_off = 2 + 64 + 4;
    bytes[spk_off..spk_off + 32].copy_from_slice(&[0u8; 32]);
    let tampered = PrekeyBundle::from_bytes(&bytes).unwrap();
    assert!(matches!(
        tampered.verify(),
        Err(PrekeyError::InvalidSignature { .. })
    ));
}

#[test]
fn self_handshake_is_rejected() {
    let mut rng = ChaCha20Rng::from_seed([13; 32]);
    let b = bob(&mut rng);
    assert_eq!(
        initiate(&mut rng, &b.identity, &bundle(&b, false, false)).unwrap_err(),
        HandshakeError::SameIdentity
    );
}

#[test]
fn bundle_signature_and_type_checks() {
    let mut rng = ChaCha20Rng::from_seed([14; 32]);
    let b = bob(&mut rng);
    let okem = b.store.one_time_kem_prekey_ids()[0];
    let bytes = b
        .store
        .bundle(&b.identity, None, Some(okem))
        .unwrap()
        .to_bytes();
    let spk_sig = 2 + 64 + 4 + 32;
    let lr = spk_sig + 64;
    let lr_sig = lr + 4 + 1184;
    let okem_at = lr_sig + 64 + 1;
    // Each signature, corrupted, is reported by name.
    for (off, what) in [
        (spk_sig, "signed prekey"),
        (lr_sig, "last-resort ML-KEM prekey"),
        (okem_at + 4 + 1184, "one-time ML-KEM prekey"),
    ] {
        let mut t = bytes.clone();
        t[off + 5] ^= 0x40;
        let e = PrekeyBundle::from_bytes(&t).unwrap().verify().unwrap_err();
        assert_eq!(e, PrekeyError::InvalidSignature { prekey: what });
    }
    // Type confusion: move the (validly signed) one-time KEM prekey into the
    // last-resort slot. Its signature carries the one-time type tag, so it fails.
    let mut t = bytes.clone();
    let okem_entry = t[okem_at..okem_at + 4 + 1184 + 64].to_vec();
    t[lr..lr + 4 + 1184 + 64].copy_from_slice(&okem_entry);
    let e = PrekeyBundle::from_bytes(&t).unwrap().verify().unwrap_err();
    assert_eq!(
        e,
        PrekeyError::InvalidSignature {
            prekey: "last-resort ML-KEM prekey"
        }
    );
    // Identity substitution: someone else's identity with Bob's prekeys fails.
    let other = DeviceIdentity::generate(&mut rng);
    let mut t = bytes.clone();
    t[2..66].copy_from_slice(&other.public().to_bytes());
    assert!(PrekeyBundle::from_bytes(&t).unwrap().verify().is_err());
    assert_eq!(
        PrekeyBundle::from_bytes(&bytes)
            .unwrap()
            .verify_for(other.public())
            .unwrap_err(),
        PrekeyError::IdentityMismatch
    );
    // An ML-KEM key failing the FIPS 203 modulus check is a decode error.
    let mut t = bytes.clone();
    t[lr + 4] = 0xFF;
    t[lr + 5] = 0xFF;
    assert_eq!(
        PrekeyBundle::from_bytes(&t).unwrap_err(),
        WireError::InvalidMlKemKey {
            field: "last-resort ML-KEM prekey"
        }
    );
}

#[test]
fn bundle_and_message_length_errors() {
    let mut rng = ChaCha20Rng::from_seed([15; 32]);
    let alice = DeviceIdentity::generate(&mut rng);
    let b = bob(&mut rng);
    let bytes = b.store.bundle(&b.identity, None, None).unwrap().to_bytes();
    for cut in [0, 1, 2, 65, 66, 100, bytes.len() - 1] {
        assert!(
            matches!(
                PrekeyBundle::from_bytes(&bytes[..cut]).unwrap_err(),
                WireError::Truncated { .. }
            ),
            "cut at {cut}"
        );
    }
    let mut long = bytes.clone();
    long.push(0);
    assert_eq!(
        PrekeyBundle::from_bytes(&long).unwrap_err(),
        WireError::TrailingBytes { count: 1 }
    );
    let mut flags = bytes.clone();
    *flags.last_mut().unwrap() = 0x04;
    assert!(matches!(
        PrekeyBundle::from_bytes(&flags).unwrap_err(),
        WireError::InvalidFlags { .. }
    ));

    let (_, header) = initiate(&mut rng, &alice, &bundle(&b, true, false)).unwrap();
    let msg = header.wrap(vec![7; 10]).to_bytes();
    assert_eq!(msg.len(), PrekeyMessage::MIN_ENCODED_LEN + 4 + 9);
    assert_eq!(
        PrekeyMessage::from_bytes(&msg[..msg.len() - 10]).unwrap_err(),
        WireError::Empty { field: "payload" }
    );
    assert!(matches!(
        PrekeyMessage::from_bytes(&msg[..50]).unwrap_err(),
        WireError::Truncated { .. }
    ));
    let mut huge = msg.clone();
    huge.resize(crate::wire::MAX_WIRE_LEN + 1, 0);
    assert!(matches!(
        PrekeyMessage::from_bytes(&huge).unwrap_err(),
        WireError::TooLong { .. }
    ));
    assert!(matches!(
        PrekeyBundle::from_bytes(&msg).unwrap_err(),
        WireError::UnexpectedType {
            expected: 1,
            actual: 2
        }
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..3000)) {
        let _ = PrekeyBundle::from_bytes(&bytes);
        let _ = PrekeyMessage::from_bytes(&bytes);
        let _ = crate::identity::DeviceCertificate::from_bytes(&bytes);
    }

    /// Arbitrary bytes behind a valid header prefix reach the deep fields.
    #[test]
    fn decoders_never_panic_past_the_header(ty in 1u8..4, body in proptest::collection::vec(any::<u8>(), 0..2600)) {
        let mut bytes = vec![crate::wire::WIRE_VERSION, ty];
        bytes.extend(body);
        let _ = PrekeyBundle::from_bytes(&bytes);
        let _ = PrekeyMessage::from_bytes(&bytes);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Canonical: every single-byte change to a valid prekey message either
    /// fails to decode or decodes to a different message.
    #[test]
    fn prekey_message_is_canonical(seed in any::<[u8; 32]>(), pos in any::<prop::sample::Index>(), flip in 1u8..=255) {
        let mut rng = ChaCha20Rng::from_seed(seed);
        let alice = DeviceIdentity::generate(&mut rng);
        let b = bob(&mut rng);
        let (_, header) = initiate(&mut rng, &alice, &bundle(&b, seed[0] & 1 == 1, seed[1] & 1 == 1)).unwrap();
        let msg = header.wrap(vec![1, 2, 3]);
        let bytes = msg.to_bytes();
        prop_assert_eq!(PrekeyMessage::from_bytes(&bytes).unwrap(), msg.clone());
        let mut t = bytes.clone();
        let i = pos.index(t.len());
        t[i] ^= flip;
        if let Ok(m) = PrekeyMessage::from_bytes(&t) {
            prop_assert_ne!(m.clone(), msg);
            prop_assert_eq!(m.to_bytes(), t);
        }
    }
}
