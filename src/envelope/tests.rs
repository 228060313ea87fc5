// Test arithmetic on public positions and sizes only.
#![allow(clippy::integer_division_remainder_used)]

use super::*;
use alloc::format;
use alloc::string::ToString;
use alloc::vec;
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng, TryCryptoRng, TryRng};

fn devices(n: usize, seed: u8) -> Vec<DeviceIdentity> {
    let mut rng = ChaCha20Rng::from_seed([seed; 32]);
    (0..n).map(|_| DeviceIdentity::generate(&mut rng)).collect()
}

/// A payload that differs per recipient and per test case.
fn payload(case: usize, i: usize) -> Vec<u8> {
    let len = (case * 37 + i * 101) % 700;
    (0..len).map(|j| (j + i * 7 + case) as u8).collect()
}

fn seal_for(
    seed: u8,
    devices: &[DeviceIdentity],
    payloads: &[Vec<u8>],
) -> Result<Envelope, EnvelopeError> {
    let recipients: Vec<(&DevicePublicIdentity, &[u8])> = devices
        .iter()
        .zip(payloads)
        .map(|(d, p)| (d.public(), p.as_slice()))
        .collect();
    Envelope::seal(&mut ChaCha20Rng::from_seed([seed; 32]), &recipients)
}

fn slots_of(env: &Envelope) -> Vec<&[u8]> {
    env.slots
        .chunks_exact(ENVELOPE_HINT_LEN + env.body_len)
        .collect()
}

/// The position of `device`'s slot, found from its hint.
fn slot_index(env: &Envelope, device: &DeviceIdentity) -> usize {
    let shared = device.dh_secret().diffie_hellman(&env.ephemeral).unwrap();
    let (hint, _) = slot_secrets(&shared, &env.ephemeral, device.public().dh_key()).unwrap();
    let found: Vec<usize> = slots_of(env)
        .iter()
        .enumerate()
        .filter(|(_, s)| s[..ENVELOPE_HINT_LEN] == hint[..])
        .map(|(i, _)| i)
        .collect();
    assert_eq!(found.len(), 1);
    found[0]
}

#[test]
fn every_recipient_count_round_trips() {
    let all = devices(MAX_ENVELOPE_RECIPIENTS + 1, 1);
    let outsider = &all[MAX_ENVELOPE_RECIPIENTS];
    for n in 1..=MAX_ENVELOPE_RECIPIENTS {
        let payloads: Vec<Vec<u8>> = (0..n).map(|i| payload(n, i)).collect();
        let env = seal_for(n as u8, &all[..n], &payloads).unwrap();
        let longest = payloads.iter().map(Vec::len).max().unwrap();
        assert_eq!(env.slot_count(), envelope_slot_count(n));
        assert_eq!(env.body_len(), envelope_body_len(longest));
        let bytes = env.to_bytes();
        // Every slot has the same length: the header, then equal slots.
        assert_eq!(bytes.len(), env.len());
        assert_eq!(
            bytes.len(),
            ENVELOPE_HEADER_LEN + env.slot_count() * (ENVELOPE_HINT_LEN + env.body_len())
        );
        let back = Envelope::from_bytes(&bytes).unwrap();
        assert_eq!(back, env);
        for (d, p) in all[..n].iter().zip(&payloads) {
            assert_eq!(back.open(d).unwrap().as_slice(), p.as_slice(), "n = {n}");
        }
        assert_eq!(back.open(outsider), Err(EnvelopeError::NoSlotForDevice));
    }
}

#[test]
fn slot_counts_are_buckets_of_four() {
    let all = devices(9, 2);
    for (n, want) in [(1, 4), (2, 4), (4, 4), (5, 8), (8, 8), (9, 12)] {
        let payloads = vec![b"x".to_vec(); n];
        let env = seal_for(3, &all[..n], &payloads).unwrap();
        assert_eq!(env.slot_count(), want, "{n} recipients");
        assert_eq!(envelope_slot_count(n), want);
    }
    assert_eq!(envelope_slot_count(0), 4);
    assert_eq!(envelope_slot_count(29), 32);
    assert_eq!(envelope_slot_count(32), 32);
}

#[test]
fn body_length_is_the_longest_payload_padded() {
    assert_eq!(envelope_body_len(0), 256);
    assert_eq!(envelope_body_len(236), 256);
    assert_eq!(envelope_body_len(237), 512);
    assert_eq!(
        envelope_body_len(MAX_ENVELOPE_PAYLOAD_LEN),
        MAX_ENVELOPE_BODY_LEN
    );
    let all = devices(3, 4);
    let payloads = vec![vec![1u8; 10], vec![2u8; 500], vec![]];
    let env = seal_for(5, &all, &payloads).unwrap();
    assert_eq!(env.body_len(), 768);
    // The short payloads are padded to the long one's bucket.
    for (d, p) in all.iter().zip(&payloads) {
        assert_eq!(env.open(d).unwrap().as_slice(), p.as_slice());
    }
}

#[test]
fn empty_payloads_are_carried() {
    let all = devices(2, 6);
    let env = seal_for(7, &all, &[vec![], vec![]]).unwrap();
    assert_eq!(env.body_len(), ENVELOPE_PAD);
    assert!(env.open(&all[0]).unwrap().is_empty());
    assert!(env.open(&all[1]).unwrap().is_empty());
}

#[test]
fn sealing_is_deterministic_for_a_seeded_rng() {
    let all = devices(5, 8);
    let payloads: Vec<Vec<u8>> = (0..5).map(|i| payload(5, i)).collect();
    let a = seal_for(9, &all, &payloads).unwrap();
    let b = seal_for(9, &all, &payloads).unwrap();
    assert_eq!(a.to_bytes(), b.to_bytes());
}

#[test]
fn draws_are_e_then_one_draw_per_dummy() {
    let all = devices(2, 10);
    let payloads = vec![b"one".to_vec(), b"two".to_vec()];
    let env = seal_for(11, &all, &payloads).unwrap();
    let mut replay = ChaCha20Rng::from_seed([11; 32]);
    let mut e = [0u8; 32];
    replay.fill_bytes(&mut e);
    let e = X25519Secret::from_mut_array(&mut e);
    assert_eq!(env.ephemeral_key(), &e.public_key());
    let slots = slots_of(&env);
    for _ in 2..4 {
        let mut dummy = vec![0u8; ENVELOPE_HINT_LEN + env.body_len()];
        replay.fill_bytes(&mut dummy);
        assert!(slots.contains(&dummy.as_slice()), "dummy is not a slot");
    }
    // Nothing else was drawn.
    let mut after = ChaCha20Rng::from_seed([11; 32]);
    Envelope::seal(
        &mut after,
        &[
            (all[0].public(), b"one".as_slice()),
            (all[1].public(), b"two".as_slice()),
        ],
    )
    .unwrap();
    assert_eq!(after.next_u32(), replay.next_u32());
}

#[test]
fn dummies_and_keys_are_fresh_per_rng() {
    let all = devices(1, 12);
    let payloads = vec![b"same".to_vec()];
    let a = seal_for(13, &all, &payloads).unwrap();
    let b = seal_for(14, &all, &payloads).unwrap();
    assert_ne!(a.ephemeral_key(), b.ephemeral_key());
    let (sa, sb) = (slots_of(&a), slots_of(&b));
    for s in &sa {
        assert!(!sb.contains(s));
    }
    // Three dummies each, all different from each other.
    let ia = slot_index(&a, &all[0]);
    let dummies: Vec<&[u8]> = sa
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != ia)
        .map(|(_, s)| *s)
        .collect();
    assert_eq!(dummies.len(), 3);
    assert!(dummies[0] != dummies[1] && dummies[1] != dummies[2]);
}

#[test]
fn slots_are_sorted() {
    let all = devices(6, 15);
    let payloads: Vec<Vec<u8>> = (0..6).map(|i| payload(6, i)).collect();
    let env = seal_for(16, &all, &payloads).unwrap();
    let slots = slots_of(&env);
    assert!(slots.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn every_flipped_byte_breaks_only_the_affected_slot() {
    let all = devices(3, 17);
    let payloads: Vec<Vec<u8>> = (0..3).map(|i| payload(3, i)).collect();
    let env = seal_for(18, &all, &payloads).unwrap();
    let bytes = env.to_bytes();
    let slot_len = ENVELOPE_HINT_LEN + env.body_len();
    let owners: Vec<usize> = all.iter().map(|d| slot_index(&env, d)).collect();
    for at in 0..bytes.len() {
        let mut b = bytes.clone();
        b[at] ^= 0x01;
        let decoded = Envelope::from_bytes(&b);
        if at < ENVELOPE_HEADER_LEN {
            match at {
                0 => assert_eq!(decoded, Err(WireError::UnsupportedVersion { version: 0 })),
                1 => assert_eq!(
                    decoded,
                    Err(WireError::UnexpectedType {
                        expected: message_type::ENVELOPE,
                        actual: message_type::ENVELOPE ^ 1
                    })
                ),
                // E: every device derives another hint.
                2..34 => {
                    let d = decoded.unwrap();
                    for dev in &all {
                        assert_eq!(
                            d.open(dev),
                            Err(EnvelopeError::NoSlotForDevice),
                            "byte {at}"
                        );
                    }
                }
                // Slot count 4 → 5, body length changed: never decodes.
                _ => assert!(decoded.is_err(), "byte {at}"),
            }
            continue;
        }
        let slot = (at - ENVELOPE_HEADER_LEN) / slot_len;
        let in_hint = (at - ENVELOPE_HEADER_LEN) % slot_len < ENVELOPE_HINT_LEN;
        let d = match decoded {
            Ok(d) => d,
            Err(e) => {
                // Only a changed hint can change the order.
                assert!(in_hint, "byte {at}: {e}");
                assert_eq!(e, WireError::NotCanonical { field: "slots" });
                continue;
            }
        };
        for (i, dev) in all.iter().enumerate() {
            let got = d.open(dev);
            if owners[i] != slot {
                assert_eq!(got.unwrap().as_slice(), payloads[i].as_slice(), "byte {at}");
            } else if in_hint {
                assert_eq!(got, Err(EnvelopeError::NoSlotForDevice), "byte {at}");
            } else {
                assert_eq!(got, Err(EnvelopeError::SlotAuthentication), "byte {at}");
            }
        }
    }
}

#[test]
fn duplicate_recipients_are_rejected() {
    let all = devices(3, 19);
    let (a, b) = (all[0].public(), all[1].public());
    let mut rng = ChaCha20Rng::from_seed([20; 32]);
    assert_eq!(
        Envelope::seal(&mut rng, &[(a, b"1"), (b, b"2"), (a, b"3")]),
        Err(EnvelopeError::DuplicateRecipient {
            index: 2,
            earlier: 0
        })
    );
    // Same X25519 key under another signing key is the same recipient.
    let twin = DevicePublicIdentity::new(*all[2].public().signing_key(), *b.dh_key());
    assert_eq!(
        Envelope::seal(&mut rng, &[(a, b"1"), (b, b"2"), (&twin, b"3")]),
        Err(EnvelopeError::DuplicateRecipient {
            index: 2,
            earlier: 1
        })
    );
}

#[test]
fn recipient_counts_are_bounded() {
    let mut rng = ChaCha20Rng::from_seed([21; 32]);
    assert_eq!(
        Envelope::seal(&mut rng, &[]),
        Err(EnvelopeError::NoRecipients)
    );
    let all = devices(MAX_ENVELOPE_RECIPIENTS + 1, 22);
    let recipients: Vec<(&DevicePublicIdentity, &[u8])> =
        all.iter().map(|d| (d.public(), b"hi".as_slice())).collect();
    assert_eq!(
        Envelope::seal(&mut rng, &recipients),
        Err(EnvelopeError::TooManyRecipients {
            count: 33,
            max: MAX_ENVELOPE_RECIPIENTS
        })
    );
    assert_eq!(
        Envelope::seal(&mut rng, &recipients[..MAX_ENVELOPE_RECIPIENTS])
            .unwrap()
            .slot_count(),
        MAX_ENVELOPE_SLOTS
    );
}

#[test]
fn size_limits_are_exact() {
    let all = devices(MAX_ENVELOPE_RECIPIENTS, 23);
    let mut rng = ChaCha20Rng::from_seed([24; 32]);
    let big = vec![7u8; MAX_ENVELOPE_PAYLOAD_LEN];
    let env = Envelope::seal(&mut rng, &[(all[0].public(), big.as_slice())]).unwrap();
    assert_eq!(env.body_len(), MAX_ENVELOPE_BODY_LEN);
    assert_eq!(env.len(), 75_879);
    assert_eq!(env.open(&all[0]).unwrap().as_slice(), big.as_slice());
    let bigger = vec![7u8; MAX_ENVELOPE_PAYLOAD_LEN + 1];
    assert_eq!(
        Envelope::seal(
            &mut rng,
            &[
                (all[0].public(), b"".as_slice()),
                (all[1].public(), bigger.as_slice())
            ]
        ),
        Err(EnvelopeError::PayloadTooLarge {
            index: 1,
            len: MAX_ENVELOPE_PAYLOAD_LEN + 1,
            max: MAX_ENVELOPE_PAYLOAD_LEN
        })
    );
    // Five recipients need 8 slots: the largest payload no longer fits.
    let five: Vec<(&DevicePublicIdentity, &[u8])> = all[..5]
        .iter()
        .map(|d| (d.public(), big.as_slice()))
        .collect();
    assert_eq!(
        Envelope::seal(&mut rng, &five),
        Err(EnvelopeError::TooLarge {
            len: envelope_len(8, MAX_ENVELOPE_BODY_LEN),
            max: MAX_WIRE_LEN
        })
    );
    // 32 slots: bodies of 2304 bytes fit, 2560 do not.
    let fits = vec![1u8; 2304 - ENVELOPE_BODY_OVERHEAD];
    let over = vec![1u8; 2304 - ENVELOPE_BODY_OVERHEAD + 1];
    let mut recipients: Vec<(&DevicePublicIdentity, &[u8])> =
        all.iter().map(|d| (d.public(), fits.as_slice())).collect();
    let env = Envelope::seal(&mut rng, &recipients).unwrap();
    assert_eq!(env.len(), 39 + 32 * (16 + 2304));
    assert_eq!(env.open(&all[31]).unwrap().as_slice(), fits.as_slice());
    recipients[31].1 = over.as_slice();
    assert_eq!(
        Envelope::seal(&mut rng, &recipients),
        Err(EnvelopeError::TooLarge {
            len: 39 + 32 * (16 + 2560),
            max: MAX_WIRE_LEN
        })
    );
}

/// A low-order X25519 point (u = 0).
const LOW_ORDER: [u8; 32] = [0; 32];

#[test]
fn low_order_keys_are_rejected() {
    let all = devices(2, 25);
    let bad = DevicePublicIdentity::new(
        *all[0].public().signing_key(),
        X25519PublicKey::from_bytes(LOW_ORDER),
    );
    let mut rng = ChaCha20Rng::from_seed([26; 32]);
    assert_eq!(
        Envelope::seal(&mut rng, &[(all[1].public(), b"a"), (&bad, b"b")]),
        Err(EnvelopeError::InvalidRecipientKey { index: 1 })
    );
    // A low-order E decodes (any 32 bytes do) and is rejected when opening.
    let env = Envelope::seal(&mut rng, &[(all[1].public(), b"a")]).unwrap();
    let mut bytes = env.to_bytes();
    bytes[2..34].copy_from_slice(&LOW_ORDER);
    let forged = Envelope::from_bytes(&bytes).unwrap();
    assert_eq!(
        forged.open(&all[1]),
        Err(EnvelopeError::InvalidEphemeralKey)
    );
}

/// An RNG that returns zeros: dummies repeat.
struct ZeroRng;

impl TryRng for ZeroRng {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok(0)
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        Ok(0)
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        dst.fill(0);
        Ok(())
    }
}

impl TryCryptoRng for ZeroRng {}

#[test]
fn repeated_dummies_are_refused() {
    let all = devices(4, 27);
    assert_eq!(
        Envelope::seal(&mut ZeroRng, &[(all[0].public(), b"a".as_slice())]),
        Err(EnvelopeError::BrokenRng)
    );
    // With no dummies, the real slots differ even under this RNG.
    let four: Vec<(&DevicePublicIdentity, &[u8])> =
        all.iter().map(|d| (d.public(), b"a".as_slice())).collect();
    let env = Envelope::seal(&mut ZeroRng, &four).unwrap();
    assert_eq!(env.open(&all[3]).unwrap().as_slice(), b"a");
}

/// Builds a 4-slot envelope for `device` whose slot holds `plain` (the body
/// plaintext, `body_len − 16` bytes) sealed under the real slot key, plus
/// `extra` further slots carrying the same hint and the given bodies.
fn forge(device: &DeviceIdentity, body_len: usize, plain: &[u8], extra: &[Vec<u8>]) -> Envelope {
    let mut rng = ChaCha20Rng::from_seed([28; 32]);
    let e = X25519Secret::random(&mut rng);
    let ephemeral = e.public_key();
    let shared = e.diffie_hellman(device.public().dh_key()).unwrap();
    let (hint, key) = slot_secrets(&shared, &ephemeral, device.public().dh_key()).unwrap();
    let ad = header(&ephemeral, 4, body_len);
    let mut body = plain.to_vec();
    assert_eq!(body.len(), body_len - TAG_LEN);
    assert!(aead::seal_single_use(key.expose(), &ad, &mut body));
    let mut slots = vec![[hint.as_slice(), &body].concat()];
    for b in extra {
        slots.push([hint.as_slice(), b].concat());
    }
    while slots.len() < 4 {
        let mut dummy = vec![0u8; ENVELOPE_HINT_LEN + body_len];
        rng.fill_bytes(&mut dummy);
        slots.push(dummy);
    }
    slots.sort();
    let bytes = [ad, slots.concat()].concat();
    Envelope::from_bytes(&bytes).unwrap()
}

fn framed(len: u32, payload: &[u8], body_len: usize) -> Vec<u8> {
    let mut p = len.to_be_bytes().to_vec();
    p.extend_from_slice(payload);
    p.resize(body_len - TAG_LEN, 0);
    p
}

#[test]
fn malformed_framing_is_bad_padding() {
    let d = &devices(1, 29)[0];
    let room = 256 - ENVELOPE_BODY_OVERHEAD;
    // Control: the largest payload a 256-byte body holds.
    let full = vec![0xAB; room];
    assert_eq!(
        forge(d, 256, &framed(room as u32, &full, 256), &[])
            .open(d)
            .unwrap()
            .as_slice(),
        full.as_slice()
    );
    for len in [room as u32 + 1, 0x8000_0000, u32::MAX] {
        assert_eq!(
            forge(d, 256, &framed(len, &[], 256), &[]).open(d),
            Err(EnvelopeError::BadPadding),
            "length {len}"
        );
    }
    // A non-zero byte anywhere in the padding.
    for at in [4 + 3, 4 + 100, 256 - TAG_LEN - 1] {
        let mut p = framed(3, b"abc", 256);
        p[at] = 1;
        assert_eq!(
            forge(d, 256, &p, &[]).open(d),
            Err(EnvelopeError::BadPadding),
            "byte {at}"
        );
    }
}

#[test]
fn repeated_hints_are_tried_in_order() {
    let d = &devices(1, 30)[0];
    let good = framed(2, b"ok", 256);
    // Garbage bodies under the same hint sort before or after the real one.
    for fill in [0x00u8, 0xFF] {
        let env = forge(d, 256, &good, &[vec![fill; 256]]);
        assert_eq!(env.open(d).unwrap().as_slice(), b"ok");
    }
    // Every slot carries the hint, none authenticates.
    let env = forge(d, 256, &good, &[vec![1; 256], vec![2; 256], vec![3; 256]]);
    let mut bytes = env.to_bytes();
    let target = ENVELOPE_HEADER_LEN + slot_index_any(&env, d) * 272 + 20;
    bytes[target] ^= 1;
    let broken = Envelope::from_bytes(&bytes).unwrap();
    assert_eq!(broken.open(d), Err(EnvelopeError::SlotAuthentication));
}

/// The slot whose body authenticates for `device`, among several with its hint.
fn slot_index_any(env: &Envelope, device: &DeviceIdentity) -> usize {
    let shared = device.dh_secret().diffie_hellman(&env.ephemeral).unwrap();
    let (_, key) = slot_secrets(&shared, &env.ephemeral, device.public().dh_key()).unwrap();
    let ad = env.header();
    slots_of(env)
        .iter()
        .position(|s| {
            let mut b = s[ENVELOPE_HINT_LEN..].to_vec();
            aead::open_single_use(key.expose(), &ad, &mut b)
        })
        .unwrap()
}

/// A 4-slot envelope with one recipient and 256-byte bodies (1127 bytes).
fn small() -> (Vec<u8>, DeviceIdentity) {
    let d = devices(1, 32).pop().unwrap();
    let env = seal_for(33, core::slice::from_ref(&d), &[b"small".to_vec()]).unwrap();
    (env.to_bytes(), d)
}

#[test]
fn truncation_at_every_length_is_reported() {
    let (bytes, _) = small();
    assert_eq!(bytes.len(), 1127);
    for len in 0..bytes.len() {
        let field = match len {
            0 => "version",
            1 => "type",
            2..34 => "ephemeral key",
            34 => "slot count",
            35..39 => "body length",
            _ => "slots",
        };
        assert_eq!(
            Envelope::from_bytes(&bytes[..len]),
            Err(WireError::Truncated { field }),
            "length {len}"
        );
    }
}

#[test]
fn decoder_rejections() {
    let (bytes, d) = small();
    let with = |at: usize, v: &[u8]| {
        let mut b = bytes.clone();
        b[at..at + v.len()].copy_from_slice(v);
        Envelope::from_bytes(&b)
    };
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert_eq!(
        Envelope::from_bytes(&trailing),
        Err(WireError::TrailingBytes { count: 1 })
    );
    assert_eq!(
        with(0, &[2]),
        Err(WireError::UnsupportedVersion { version: 2 })
    );
    assert_eq!(
        with(1, &[message_type::PREKEY_RECORD]),
        Err(WireError::UnexpectedType {
            expected: message_type::ENVELOPE,
            actual: message_type::PREKEY_RECORD
        })
    );
    for count in [0u8, 3, 6] {
        assert_eq!(
            with(34, &[count]),
            Err(WireError::InvalidValue {
                field: "slot count"
            }),
            "count {count}"
        );
    }
    for count in [36u8, 255] {
        assert_eq!(
            with(34, &[count]),
            Err(WireError::TooMany {
                field: "slot count",
                count: usize::from(count),
                max: MAX_ENVELOPE_SLOTS
            })
        );
    }
    // Eight slots announced, four present.
    assert_eq!(with(34, &[8]), Err(WireError::Truncated { field: "slots" }));
    for body_len in [0u32, 16, 255, 257, 300] {
        assert_eq!(
            with(35, &body_len.to_be_bytes()),
            Err(WireError::InvalidValue {
                field: "body length"
            }),
            "body length {body_len}"
        );
    }
    for body_len in [MAX_ENVELOPE_BODY_LEN as u32 + 256, u32::MAX] {
        assert_eq!(
            with(35, &body_len.to_be_bytes()),
            Err(WireError::LengthExceeded {
                field: "body length",
                len: body_len as usize,
                max: MAX_ENVELOPE_BODY_LEN
            })
        );
    }
    // 128 + 16 < 272: reading 4 slots of 528 bytes runs out.
    assert_eq!(
        with(35, &512u32.to_be_bytes()),
        Err(WireError::Truncated { field: "slots" })
    );
    let mut long = bytes.clone();
    long.resize(MAX_WIRE_LEN + 1, 0);
    assert_eq!(
        Envelope::from_bytes(&long),
        Err(WireError::TooLong {
            len: MAX_WIRE_LEN + 1
        })
    );

    // Slots out of order, and a repeated slot.
    let slot_len = 272;
    let slot = |i: usize| &bytes[39 + i * slot_len..39 + (i + 1) * slot_len];
    let mut swapped = bytes[..39].to_vec();
    for i in [1, 0, 2, 3] {
        swapped.extend_from_slice(slot(i));
    }
    assert_eq!(
        Envelope::from_bytes(&swapped),
        Err(WireError::NotCanonical { field: "slots" })
    );
    let mut repeated = bytes[..39].to_vec();
    for i in [0, 1, 1, 3] {
        repeated.extend_from_slice(slot(i));
    }
    assert_eq!(
        Envelope::from_bytes(&repeated),
        Err(WireError::NotCanonical { field: "slots" })
    );
    // Order is checked before trailing bytes (§6.5: fields, then the end).
    swapped.push(0);
    assert_eq!(
        Envelope::from_bytes(&swapped),
        Err(WireError::NotCanonical { field: "slots" })
    );
    // The untouched input still opens.
    assert_eq!(
        Envelope::from_bytes(&bytes)
            .unwrap()
            .open(&d)
            .unwrap()
            .as_slice(),
        b"small"
    );
}

#[test]
fn errors_convert_and_display() {
    let e: EnvelopeError = WireError::TrailingBytes { count: 1 }.into();
    assert_eq!(
        e,
        EnvelopeError::Wire(WireError::TrailingBytes { count: 1 })
    );
    assert!(e.to_string().contains("unexpected bytes"));
    assert!(
        EnvelopeError::NoSlotForDevice
            .to_string()
            .contains("revoked")
    );
    let (bytes, _) = small();
    let env = Envelope::from_bytes(&bytes).unwrap();
    let dbg = format!("{env:?}");
    assert!(dbg.contains("slot_count: 4") && dbg.contains("body_len: 256"));
    // No slot bytes in the debug output.
    assert!(dbg.len() < 200);
}

#[test]
fn a_signing_key_alone_does_not_matter() {
    // Only the X25519 key selects the slot: the same device under another
    // signing key opens it, which is why duplicates are keyed by it.
    let all = devices(2, 34);
    let env = seal_for(35, &all[..1], &[b"k".to_vec()]).unwrap();
    let renamed =
        DevicePublicIdentity::new(*all[1].public().signing_key(), *all[0].public().dh_key());
    let env2 = Envelope::seal(
        &mut ChaCha20Rng::from_seed([35; 32]),
        &[(&renamed, b"k".as_slice())],
    )
    .unwrap();
    assert_eq!(env, env2);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic_and_accepted_bytes_are_canonical(
        raw in proptest::collection::vec(any::<u8>(), 0..2048),
        count in prop_oneof![Just(4u8), Just(8u8), any::<u8>()],
        body_len in prop_oneof![Just(256u32), Just(512u32), any::<u32>()],
        slots in proptest::collection::vec(any::<u8>(), 0..6000),
        sort in any::<bool>(),
    ) {
        let _ = Envelope::from_bytes(&raw);
        let mut framed = vec![crate::wire::WIRE_VERSION, message_type::ENVELOPE];
        framed.extend_from_slice(&[9u8; 32]);
        framed.push(count);
        framed.extend_from_slice(&body_len.to_be_bytes());
        let slot_len = ENVELOPE_HINT_LEN + body_len as usize;
        let mut slots = slots;
        if sort && usize::from(count) * slot_len <= slots.len() && slot_len > 0 {
            let mut chunks: Vec<Vec<u8>> = slots.chunks(slot_len).map(<[u8]>::to_vec).collect();
            let n = usize::from(count);
            chunks.truncate(n);
            chunks.sort();
            slots = chunks.concat();
        }
        framed.extend_from_slice(&slots);
        if let Ok(env) = Envelope::from_bytes(&framed) {
            prop_assert_eq!(env.to_bytes(), framed.clone());
            prop_assert_eq!(env.len(), framed.len());
            // Opening whatever decoded never panics.
            let d = &devices(1, 36)[0];
            prop_assert!(env.open(d).is_err());
        }
    }

    #[test]
    fn random_payloads_round_trip(
        lens in proptest::collection::vec(0usize..1200, 1..7),
        seed in any::<[u8; 32]>(),
    ) {
        let all = devices(lens.len(), 37);
        let payloads: Vec<Vec<u8>> = lens.iter().enumerate().map(|(i, &l)| vec![i as u8; l]).collect();
        let recipients: Vec<(&DevicePublicIdentity, &[u8])> =
            all.iter().zip(&payloads).map(|(d, p)| (d.public(), p.as_slice())).collect();
        let env = Envelope::seal(&mut ChaCha20Rng::from_seed(seed), &recipients).unwrap();
        let back = Envelope::from_bytes(&env.to_bytes()).unwrap();
        for (d, p) in all.iter().zip(&payloads) {
            let got = back.open(d).unwrap();
            prop_assert_eq!(got.as_slice(), p.as_slice());
        }
    }
}
