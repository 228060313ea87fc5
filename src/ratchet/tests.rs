//! Ratchet tests: conversations, loss/reorder/duplicates, transactional
//! failure, bounds at their limits, persistence, and compromise experiments.

use super::*;
use crate::prekey::PrekeyStore;
use alloc::vec::Vec;
use alloc::{format, vec};
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

pub(crate) struct Pair {
    pub(crate) rng: ChaCha20Rng,
    pub(crate) a: Session,
    pub(crate) b: Session,
}

/// A handshake and the first exchange, so both sides are established.
pub(crate) fn pair(seed: u8) -> Pair {
    let mut rng = ChaCha20Rng::from_seed([seed; 32]);
    let alice = DeviceIdentity::generate(&mut rng);
    let bob = DeviceIdentity::generate(&mut rng);
    let mut store = PrekeyStore::new(&mut rng, &bob);
    let otp = store.generate_one_time_prekeys(&mut rng, &bob, 1).unwrap()[0].id();
    let bundle = store
        .bundle(&bob, Some(otp), None)
        .unwrap()
        .verify_for(bob.public())
        .unwrap();
    let mut a = Session::initiate(&mut rng, &alice, &bundle).unwrap();
    let m = a.encrypt(&mut rng, b"hello", b"").unwrap();
    let (b, pt) = Session::respond(&bob, &mut store, &m, b"").unwrap();
    assert_eq!(pt, b"hello");
    Pair { rng, a, b }
}

fn snapshot(s: &Session) -> Vec<u8> {
    s.to_stored().as_bytes().to_vec()
}

fn send(p: &mut Pair, from_a: bool, text: &[u8]) -> Vec<u8> {
    let (s, rng) = if from_a {
        (&mut p.a, &mut p.rng)
    } else {
        (&mut p.b, &mut p.rng)
    };
    s.encrypt(rng, text, b"ad").unwrap()
}

fn recv(p: &mut Pair, to_a: bool, m: &[u8]) -> Result<Vec<u8>, RatchetError> {
    if to_a {
        p.a.decrypt(m, b"ad")
    } else {
        p.b.decrypt(m, b"ad")
    }
}

#[test]
fn alternating_conversation_with_dh_steps() {
    let mut p = pair(1);
    for i in 0..30u32 {
        let text = i.to_be_bytes();
        let m = send(&mut p, i % 2 == 1, &text);
        assert_eq!(recv(&mut p, i % 2 == 0, &m).unwrap(), text);
    }
    assert!(!p.a.is_initiating());
    assert!(
        p.a.pq_epochs_mixed() > 0 && p.b.pq_epochs_mixed() > 0,
        "PQ epochs complete in 30 turns"
    );
}

#[test]
fn initiator_repeats_the_prekey_header_until_reply() {
    let mut rng = ChaCha20Rng::from_seed([2; 32]);
    let alice = DeviceIdentity::generate(&mut rng);
    let bob = DeviceIdentity::generate(&mut rng);
    let mut store = PrekeyStore::new(&mut rng, &bob);
    let bundle = store.bundle(&bob, None, None).unwrap().verify().unwrap();
    let mut a = Session::initiate(&mut rng, &alice, &bundle).unwrap();
    let m1 = a.encrypt(&mut rng, b"1", b"").unwrap();
    let m2 = a.encrypt(&mut rng, b"2", b"").unwrap();
    assert_eq!(m1[1], message_type::PREKEY_MESSAGE);
    assert_eq!(m2[1], message_type::PREKEY_MESSAGE);
    // Bob receives the second first (reordered); the first still decrypts.
    let (mut b, pt) = Session::respond(&bob, &mut store, &m2, b"").unwrap();
    assert_eq!(pt, b"2");
    assert_eq!(b.decrypt(&m1, b"").unwrap(), b"1");
    assert_eq!(
        b.decrypt(&m1, b"").unwrap_err(),
        RatchetError::DuplicateMessage
    );
    let r = b.encrypt(&mut rng, b"r", b"").unwrap();
    assert_eq!(r[1], message_type::RATCHET_MESSAGE);
    a.decrypt(&r, b"").unwrap();
    assert!(!a.is_initiating());
    let m3 = a.encrypt(&mut rng, b"3", b"").unwrap();
    assert_eq!(m3[1], message_type::RATCHET_MESSAGE);
    assert_eq!(b.decrypt(&m3, b"").unwrap(), b"3");
}

#[test]
fn responder_first_message_failure_consumes_nothing() {
    let mut rng = ChaCha20Rng::from_seed([3; 32]);
    let alice = DeviceIdentity::generate(&mut rng);
    let bob = DeviceIdentity::generate(&mut rng);
    let mut store = PrekeyStore::new(&mut rng, &bob);
    let otp = store.generate_one_time_prekeys(&mut rng, &bob, 1).unwrap()[0].id();
    let bundle = store
        .bundle(&bob, Some(otp), None)
        .unwrap()
        .verify()
        .unwrap();
    let mut a = Session::initiate(&mut rng, &alice, &bundle).unwrap();
    let mut m = a.encrypt(&mut rng, b"x", b"").unwrap();
    let last = m.len() - 1;
    m[last] ^= 1;
    assert_eq!(
        Session::respond(&bob, &mut store, &m, b"").unwrap_err(),
        RatchetError::AuthenticationFailed
    );
    assert_eq!(
        store.one_time_prekey_ids(),
        vec![otp],
        "a forged first message consumes nothing"
    );
    // Wrong associated data also fails and consumes nothing.
    m[last] ^= 1;
    assert_eq!(
        Session::respond(&bob, &mut store, &m, b"other").unwrap_err(),
        RatchetError::AuthenticationFailed
    );
    assert_eq!(store.one_time_prekey_ids(), vec![otp]);
    Session::respond(&bob, &mut store, &m, b"").unwrap();
    assert!(store.one_time_prekey_ids().is_empty());
}

#[test]
fn out_of_order_and_lost_messages_across_chains() {
    let mut p = pair(4);
    let a_msgs: Vec<_> = (0..5u8).map(|i| send(&mut p, true, &[i])).collect();
    // Bob gets 4, 1 (skips 0, 2, 3).
    assert_eq!(recv(&mut p, false, &a_msgs[4]).unwrap(), [4]);
    assert_eq!(recv(&mut p, false, &a_msgs[1]).unwrap(), [1]);
    // Bob replies; Alice answers on a new chain.
    let r = send(&mut p, false, b"r");
    recv(&mut p, true, &r).unwrap();
    let a2: Vec<_> = (10..13u8).map(|i| send(&mut p, true, &[i])).collect();
    assert_eq!(recv(&mut p, false, &a2[2]).unwrap(), [12]);
    // Late messages of the old chain still decrypt, each exactly once.
    assert_eq!(recv(&mut p, false, &a_msgs[0]).unwrap(), [0]);
    assert_eq!(recv(&mut p, false, &a_msgs[3]).unwrap(), [3]);
    assert_eq!(
        recv(&mut p, false, &a_msgs[3]).unwrap_err(),
        RatchetError::DuplicateMessage
    );
    assert_eq!(recv(&mut p, false, &a2[0]).unwrap(), [10]);
    assert_eq!(recv(&mut p, false, &a_msgs[2]).unwrap(), [2]);
    assert_eq!(p.b.skipped_keys_held(), 1, "only a2[1] is still skipped");
}

#[test]
fn every_failure_leaves_the_session_unchanged() {
    let mut p = pair(5);
    let good = send(&mut p, true, b"payload");
    let before = snapshot(&p.b);
    let mut cases: Vec<(Vec<u8>, &[u8])> = Vec::new();
    for i in [0usize, 1, 5, 30, 60, 86, 90, good.len() - 1] {
        let mut t = good.clone();
        t[i] ^= 0x20;
        cases.push((t, b"ad"));
    }
    cases.push((good[..good.len() - 1].to_vec(), b"ad"));
    cases.push((good[..50].to_vec(), b"ad"));
    cases.push((vec![], b"ad"));
    cases.push((good.clone(), b"other ad"));
    for (m, ad) in &cases {
        assert!(p.b.decrypt(m, ad).is_err());
        assert_eq!(snapshot(&p.b), before, "state changed by a failed decrypt");
    }
    assert_eq!(p.b.decrypt(&good, b"ad").unwrap(), b"payload");
    let after = snapshot(&p.b);
    assert_eq!(
        p.b.decrypt(&good, b"ad").unwrap_err(),
        RatchetError::DuplicateMessage
    );
    assert_eq!(snapshot(&p.b), after);
}

#[test]
fn skip_bound_is_exact() {
    // A jump of exactly MAX_SKIP message keys is accepted...
    let mut p = pair(6);
    let r = send(&mut p, false, b"r");
    recv(&mut p, true, &r).unwrap();
    let first = send(&mut p, true, b"0");
    recv(&mut p, false, &first).unwrap(); // Bob now expects index 1
    for _ in 0..MAX_SKIP {
        let _ = send(&mut p, true, b"x"); // indices 1..=MAX_SKIP, never delivered
    }
    let at_limit = send(&mut p, true, b"at the limit"); // index MAX_SKIP + 1: jump MAX_SKIP
    assert_eq!(recv(&mut p, false, &at_limit).unwrap(), b"at the limit");
    assert_eq!(
        p.b.skipped_keys_held(),
        MAX_SKIPPED_KEYS_PER_CHAIN,
        "only the newest keys are kept"
    );

    // ...one more is refused, and the state is unchanged.
    let mut q = pair(7);
    let r = send(&mut q, false, b"r");
    recv(&mut q, true, &r).unwrap();
    let first = send(&mut q, true, b"0");
    recv(&mut q, false, &first).unwrap();
    for _ in 0..=MAX_SKIP {
        let _ = send(&mut q, true, b"x");
    }
    let over = send(&mut q, true, b"one too far");
    let before = snapshot(&q.b);
    assert_eq!(
        recv(&mut q, false, &over).unwrap_err(),
        RatchetError::TooFarAhead
    );
    assert_eq!(snapshot(&q.b), before);
}

#[test]
fn per_chain_cap_keeps_the_newest_keys() {
    let mut q = pair(17);
    let msgs: Vec<_> = (0..=MAX_SKIPPED_KEYS_PER_CHAIN + 1)
        .map(|i| send(&mut q, true, &(i as u32).to_be_bytes()))
        .collect();
    let last = msgs.last().unwrap();
    recv(&mut q, false, last).unwrap();
    assert_eq!(
        q.b.skipped_keys_held(),
        MAX_SKIPPED_KEYS_PER_CHAIN,
        "per-chain cap holds exactly"
    );
    assert_eq!(
        recv(&mut q, false, &msgs[0]).unwrap_err(),
        RatchetError::MessageTooOld
    );
    assert_eq!(recv(&mut q, false, &msgs[1]).unwrap(), 1u32.to_be_bytes());
    assert_eq!(
        recv(&mut q, false, &msgs[1]).unwrap_err(),
        RatchetError::DuplicateMessage
    );
}

#[test]
fn total_skipped_bound_evicts_oldest_chain_first() {
    let mut p = pair(8);
    let mut pending = Vec::new();
    // Three of Alice's chains, each with 900 messages Bob never sees but one.
    for round in 0..3u8 {
        let msgs: Vec<_> = (0..900u32)
            .map(|i| send(&mut p, true, &i.to_be_bytes()))
            .collect();
        recv(&mut p, false, msgs.last().unwrap()).unwrap();
        pending.push(msgs);
        let r = send(&mut p, false, &[round]);
        recv(&mut p, true, &r).unwrap();
    }
    assert_eq!(p.b.skipped_keys_held(), MAX_SKIPPED_KEYS);
    // The oldest chain lost keys first: its first messages are too old now,
    // the newest chain's are all there.
    assert_eq!(
        recv(&mut p, false, &pending[0][0]).unwrap_err(),
        RatchetError::MessageTooOld
    );
    assert_eq!(
        recv(&mut p, false, &pending[2][0]).unwrap(),
        0u32.to_be_bytes()
    );
}

#[test]
fn persistence_round_trip_mid_conversation() {
    let mut p = pair(9);
    for i in 0..12u32 {
        let m = send(&mut p, i % 3 == 0, &i.to_be_bytes());
        recv(&mut p, i % 3 != 0, &m).unwrap();
        let key = StorageKey::generate(&mut p.rng);
        let blob = p.a.to_stored().encrypt(&mut p.rng, &key);
        let restored = Session::from_stored(&StoredSession::decrypt(&blob, &key).unwrap()).unwrap();
        assert_eq!(restored.to_stored(), p.a.to_stored());
        p.a = restored;
    }
    let m = send(&mut p, true, b"after");
    assert_eq!(recv(&mut p, false, &m).unwrap(), b"after");
}

#[test]
fn stored_session_errors() {
    let p = pair(10);
    let stored = p.b.to_stored();
    let mut rng = ChaCha20Rng::from_seed([0; 32]);
    let key = StorageKey::generate(&mut rng);
    let blob = stored.encrypt(&mut rng, &key);
    let wrong = StorageKey::generate(&mut rng);
    assert_eq!(
        StoredSession::decrypt(&blob, &wrong).unwrap_err(),
        StorageError::WrongKeyOrTampered
    );
    let mut t = blob.clone();
    t[40] ^= 1;
    assert_eq!(
        StoredSession::decrypt(&t, &key).unwrap_err(),
        StorageError::WrongKeyOrTampered
    );
    let mut future = stored.as_bytes().to_vec();
    future[0] = 2;
    assert_eq!(
        Session::from_stored(&StoredSession::from_bytes(&future)).unwrap_err(),
        RatchetError::Storage(StorageError::UnsupportedVersion(2))
    );
    let bytes = stored.as_bytes();
    for cut in [0, 1, 2, 100, bytes.len() - 1] {
        assert!(Session::from_stored(&StoredSession::from_bytes(&bytes[..cut])).is_err());
    }
    let mut longer = bytes.to_vec();
    longer.push(0);
    assert_eq!(
        Session::from_stored(&StoredSession::from_bytes(&longer)).unwrap_err(),
        RatchetError::Storage(StorageError::Malformed(
            crate::wire::WireError::TrailingBytes { count: 1 }
        ))
    );
    assert!(format!("{stored:?}").contains("redacted"));
}

#[test]
fn padding_hides_lengths_within_a_bucket() {
    let mut p = pair(11);
    // Let the PQ bootstrap and first epochs pass.
    for i in 0..40u32 {
        let m = send(&mut p, i % 2 == 0, b"x");
        recv(&mut p, i % 2 == 1, &m).unwrap();
    }
    for len in [0usize, 1, 50, 100, 140] {
        let m = send(&mut p, true, &vec![7u8; len]);
        assert_eq!(m.len() % 256, 0, "length {len}");
        recv(&mut p, false, &m).unwrap();
    }
    p.a.set_padding(PaddingPolicy::multiple_of(1024));
    let m = send(&mut p, true, b"hi");
    assert_eq!(m.len() % 1024, 0);
    assert_eq!(recv(&mut p, false, &m).unwrap(), b"hi");
}

#[test]
fn header_hides_keys_and_counters() {
    let mut p = pair(12);
    let r = send(&mut p, false, b"reply");
    recv(&mut p, true, &r).unwrap();
    let m1 = send(&mut p, true, b"a");
    let m2 = send(&mut p, true, b"a");
    let ratchet_pub = p.a.dh_self_pub;
    for m in [&m1, &m2] {
        assert!(
            !m.windows(32).any(|w| w == ratchet_pub.as_bytes()),
            "ratchet key visible"
        );
    }
    // The two messages share no 8-byte window past the type bytes.
    let common = m1[2..]
        .windows(8)
        .filter(|w| m2[2..].windows(8).any(|v| v == *w))
        .count();
    assert_eq!(common, 0);
}

/// The classical experiment (spec §7.11): an attacker who copied Alice's
/// whole state can follow the conversation until Alice's next DH ratchet
/// step, and not after.
#[test]
fn dh_ratchet_heals_a_state_compromise() {
    let mut p = pair(13);
    let mut attacker = Session::from_stored(&p.a.to_stored()).unwrap();
    let m = send(&mut p, false, b"before heal");
    assert_eq!(
        attacker.decrypt(&m, b"ad").unwrap(),
        b"before heal",
        "the copy works before healing"
    );
    recv(&mut p, true, &m).unwrap();
    // Alice sends (new ratchet key from fresh randomness), Bob replies on a new chain.
    let x = send(&mut p, true, b"x");
    recv(&mut p, false, &x).unwrap();
    let after = send(&mut p, false, b"after heal");
    assert_eq!(recv(&mut p, true, &after).unwrap(), b"after heal");
    assert!(
        attacker.decrypt(&after, b"ad").is_err(),
        "the copy must not decrypt after the DH step"
    );
}

/// Runs the post-quantum compromise experiment (spec §7.11) and returns
/// (messages the attacker decrypted, index of the first it could not).
///
/// The attacker is Alice's exact state at the compromise, fed Alice's exact
/// RNG stream (so it knows every X25519 secret she will use). With `blind`
/// it cannot know KEM secrets created after the compromise (her next own
/// key id, her next epoch); without it, it knows everything (the control).
fn quantum_experiment(seed: u8, blind: bool) -> (u32, Option<u32>) {
    let mut rng = ChaCha20Rng::from_seed([seed; 32]);
    let alice = DeviceIdentity::generate(&mut rng);
    let bob = DeviceIdentity::generate(&mut rng);
    let mut store = PrekeyStore::new(&mut rng, &bob);
    let bundle = store.bundle(&bob, None, None).unwrap().verify().unwrap();
    // Separate RNG streams, so the attacker can replay exactly Alice's draws.
    let mut rng_a = ChaCha20Rng::from_seed([seed.wrapping_add(1); 32]);
    let mut rng_b = ChaCha20Rng::from_seed([seed.wrapping_add(2); 32]);
    let mut a = Session::initiate(&mut rng_a, &alice, &bundle).unwrap();
    let m = a.encrypt(&mut rng_a, b"hi", b"").unwrap();
    let (mut b, _) = Session::respond(&bob, &mut store, &m, b"").unwrap();
    for _ in 0..30 {
        let m = b.encrypt(&mut rng_b, b"warm up", b"").unwrap();
        a.decrypt(&m, b"").unwrap();
        let m = a.encrypt(&mut rng_a, b"warm up", b"").unwrap();
        b.decrypt(&m, b"").unwrap();
    }
    assert!(a.pq_epochs_mixed() >= 2, "epochs before the compromise");

    let mut q = Session::from_stored(&a.to_stored()).unwrap();
    if blind {
        q.pq.blind = Some((a.pq.next_own_id, a.pq.next_epoch));
    }
    let mut q_rng = rng_a.clone();
    let (mut decrypted, mut locked_out_at) = (0, None);
    for i in 0..120u32 {
        let m = b.encrypt(&mut rng_b, &i.to_be_bytes(), b"").unwrap();
        assert_eq!(a.decrypt(&m, b"").unwrap(), i.to_be_bytes());
        match q.decrypt(&m, b"") {
            Ok(pt) => {
                assert!(
                    locked_out_at.is_none(),
                    "attacker decrypted message {i} after being locked out"
                );
                assert_eq!(pt, i.to_be_bytes());
                decrypted += 1;
            }
            Err(_) => {
                locked_out_at.get_or_insert(i);
            }
        }
        let m = a.encrypt(&mut rng_a, b"a", b"").unwrap();
        b.decrypt(&m, b"").unwrap();
        // The attacker mirrors Alice's step with the same randomness; it
        // stays in step until the first secret it cannot know is mixed.
        let _ = q.encrypt(&mut q_rng, b"a", b"");
    }
    (decrypted, locked_out_at)
}

/// An attacker that copied Alice's state and learns every X25519 secret is
/// locked out by the first epoch whose KEM secret postdates the compromise,
/// and succeeds before it (so the experiment measures something).
#[test]
fn pq_epoch_heals_a_quantum_compromise() {
    let (decrypted, locked_out_at) = quantum_experiment(14, true);
    assert!(decrypted > 0, "the attacker must succeed before the epoch");
    assert!(
        locked_out_at.is_some(),
        "a post-compromise PQ epoch must lock the attacker out"
    );
}

/// Control: the same attacker knowing the KEM secrets too is never locked
/// out, so the lock-out above is due to the ML-KEM ratchet.
#[test]
fn quantum_experiment_control_without_blinding() {
    let (decrypted, locked_out_at) = quantum_experiment(17, false);
    assert_eq!(locked_out_at, None);
    assert_eq!(decrypted, 120);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Long seeded conversations with loss, reordering and duplicates: every
    /// message that arrives decrypts to what was sent, every duplicate is
    /// rejected, and the state survives persistence at random points.
    #[test]
    fn random_conversations(seed in any::<u8>(), script in proptest::collection::vec((any::<bool>(), 0u8..10, 0u8..100), 20..120)) {
        let mut p = pair(seed.wrapping_add(100));
        // (receiver is Alice, bytes, plaintext, send count when sent)
        let mut in_flight: Vec<(bool, Vec<u8>, Vec<u8>, usize)> = Vec::new();
        let mut sent = 0usize;
        let mut delivered: Vec<(bool, Vec<u8>)> = Vec::new();
        for (from_a, action, len) in script {
            let text: Vec<u8> = (0..len).map(|_| p.rng.next_u32() as u8).collect();
            let m = send(&mut p, from_a, &text);
            sent += 1;
            if action != 0 {
                in_flight.push((!from_a, m, text, sent)); // action 0: lost
            }
            // Reordering stays within the documented window: a message is
            // delivered at the latest four sends after it was sent, so its
            // chain is among the MAX_OLD_CHAINS + 1 kept.
            let overdue: Vec<usize> = (0..in_flight.len()).filter(|&i| sent - in_flight[i].3 >= 4).collect();
            for i in overdue.into_iter().rev() {
                let (to_a, m, text, _) = in_flight.remove(i);
                prop_assert_eq!(recv(&mut p, to_a, &m).unwrap(), text);
                delivered.push((to_a, m));
            }
            if action >= 3 && !in_flight.is_empty() {
                let i = usize::from(action) % in_flight.len();
                let (to_a, m, text, _) = in_flight.remove(i);
                prop_assert_eq!(recv(&mut p, to_a, &m).unwrap(), text);
                delivered.push((to_a, m));
            }
            if action == 9 && !delivered.is_empty() {
                let (to_a, m) = delivered[usize::from(len) % delivered.len()].clone();
                let before = snapshot(if to_a { &p.a } else { &p.b });
                // A replay is always rejected: as a duplicate while its chain is
                // kept, as undecryptable once the chain left the window.
                let e = recv(&mut p, to_a, &m).unwrap_err();
                prop_assert!(matches!(e, RatchetError::DuplicateMessage | RatchetError::UndecryptableHeader), "{:?}", e);
                prop_assert_eq!(snapshot(if to_a { &p.a } else { &p.b }), before);
            }
            if action == 8 {
                p.b = Session::from_stored(&p.b.to_stored()).unwrap();
            }
        }
        for (to_a, m, text, _) in in_flight {
            prop_assert_eq!(recv(&mut p, to_a, &m).unwrap(), text);
        }
    }
}

/// Prints the stored size of a typical established session (run with
/// `--nocapture`); asserts the bound the spec states.
#[test]
fn typical_stored_session_size() {
    let mut p = pair(20);
    for i in 0..40u32 {
        let m = send(&mut p, i % 2 == 0, &[0u8; 100]);
        recv(&mut p, i % 2 == 1, &m).unwrap();
    }
    let (a, b) = (
        p.a.to_stored().as_bytes().len(),
        p.b.to_stored().as_bytes().len(),
    );
    std::println!("stored session sizes after 40 alternating messages: {a} and {b} bytes");
    // Regression guard for spec §7.10's stated size (about 3.0 KB, most of
    // it the peer's 1184-byte ML-KEM key and chunks being reassembled).
    assert!(a < 3_200 && b < 3_200, "{a} {b}");
}

#[test]
fn own_pq_keys_rotate_in_lockstep() {
    let mut p = pair(21);
    for i in 0..600u32 {
        let m = send(&mut p, i % 2 == 0, &[0u8; 64]);
        recv(&mut p, i % 2 == 1, &m).unwrap();
    }
    let (a, b) = (p.a.pq_stats(), p.b.pq_stats());
    std::println!(
        "{a:?}\n{b:?}\nown A: {:?}",
        p.a.pq.own.as_ref().map(|k| (k.id, k.acked, k.used))
    );
    assert!(
        a.keys_generated >= 3 && b.keys_generated >= 3,
        "own keys must rotate: {a:?} {b:?}"
    );
}

#[test]
fn one_sided_traffic_keeps_sending_pq_symbols() {
    let mut p = pair(22);
    let r = send(&mut p, false, b"reply");
    recv(&mut p, true, &r).unwrap();
    let before = p.a.pq_stats().section_bytes_sent;
    for _ in 0..20 {
        let m = send(&mut p, true, &[1u8; 100]);
        recv(&mut p, false, &m).unwrap();
    }
    let a = &p.a.pq;
    std::println!(
        "outgoing: {:?} own: {:?} peer: {:?} pending: {:?}",
        a.outgoing.as_ref().map(|o| (o.epoch, o.target, o.cursor)),
        a.own.as_ref().map(|k| (k.id, k.acked, k.used)),
        a.peer.as_ref().map(|k| k.id),
        a.pending_mix.as_ref().map(|(e, t, _)| (*e, *t))
    );
    assert!(
        p.a.pq_stats().section_bytes_sent > before,
        "an encapsulation to the peer's key is in flight"
    );
}

/// Pure padding and framing logic (no cryptography; also run under Miri by
/// `.ci/miri.sh`).
mod padding_pure {
    use super::super::message::{self, Header};
    use super::super::{MAX_WIRE_LEN, PaddingPolicy};
    use crate::dh::X25519PublicKey;
    use alloc::vec;

    #[test]
    fn policy_rounds_up_to_whole_buckets() {
        let p = PaddingPolicy::DEFAULT;
        assert_eq!(p.bucket(), 256);
        assert_eq!(PaddingPolicy::default(), p);
        assert_eq!(p.round_up(0), 0);
        assert_eq!(p.round_up(1), 256);
        assert_eq!(p.round_up(256), 256);
        assert_eq!(p.round_up(257), 512);
        assert_eq!(PaddingPolicy::multiple_of(0).bucket(), 1);
        assert_eq!(PaddingPolicy::multiple_of(1).round_up(77), 77);
        assert_eq!(PaddingPolicy::multiple_of(100).round_up(101), 200);
        // Saturates instead of overflowing.
        assert_eq!(
            PaddingPolicy::multiple_of(256).round_up(usize::MAX),
            usize::MAX
        );
    }

    #[test]
    fn body_round_trips_and_padding_must_be_zero() {
        let b = message::body(b"pq", b"hello", 5);
        assert_eq!(b.len(), message::BODY_FRAMING + 2 + 5 + 5);
        assert_eq!(&b[..2], &[0, 2]);
        assert_eq!(&b[4..8], &[0, 0, 0, 5]);
        assert_eq!(message::parse_body(&b), Some((&b"pq"[..], &b"hello"[..])));
        let mut bad = b.clone();
        *bad.last_mut().unwrap() = 1;
        assert_eq!(message::parse_body(&bad), None);
        // Lengths that run past the end.
        assert_eq!(message::parse_body(&[0, 3, 1, 2]), None);
        assert_eq!(message::parse_body(&[0, 0, 0, 0, 0, 9, 1]), None);
        assert_eq!(message::parse_body(&[0]), None);
        assert_eq!(
            message::parse_body(&[0, 0, 0, 0, 0, 0]),
            Some((&[][..], &[][..]))
        );
    }

    #[test]
    fn header_encoding_is_fixed_and_big_endian() {
        let h = Header {
            dh: X25519PublicKey([9; 32]),
            pn: 0x0102_0304,
            n: 5,
            mix_epoch: 0xA0B0_C0D0,
        };
        let e = h.encode();
        assert_eq!(&e[..32], &[9; 32]);
        assert_eq!(&e[32..], &[1, 2, 3, 4, 0, 0, 0, 5, 0xA0, 0xB0, 0xC0, 0xD0]);
        assert_eq!(Header::decode(&e), Some(h));
        assert_eq!(Header::decode(&e[..43]), None);
        assert_eq!(Header::decode(&[e.as_slice(), &[0]].concat()), None);
    }

    #[test]
    fn split_finds_every_part_and_checks_lengths() {
        let mut m = message::start(&[7; 24], 0);
        assert_eq!(&m[..2], &[crate::wire::WIRE_VERSION, 0x04]);
        m.extend_from_slice(&[1; message::HEADER_LEN + 16]);
        let short = m.clone();
        m.extend_from_slice(&[2; message::BODY_FRAMING + 16]);
        let p = message::split(&m).unwrap();
        assert_eq!(p.nonce, [7; 24]);
        assert_eq!(p.prefix, &m[..message::PREFIX_LEN]);
        assert_eq!(p.enc_header, &[1; message::HEADER_LEN + 16][..]);
        assert_eq!(p.enc_body, &[2; message::BODY_FRAMING + 16][..]);
        assert_eq!(m.len(), message::MIN_MESSAGE_LEN);
        assert!(message::split(&short).is_err());
        assert!(message::split(&m[..m.len() - 1]).is_err());
        let long = vec![0u8; MAX_WIRE_LEN + 1];
        assert!(message::split(&long).is_err());
    }
}

/// Found by the `stored_session` fuzz target: a padding bucket of 0 loaded as
/// 1, so the stored encoding was not canonical (spec §1.3).
#[test]
fn stored_padding_bucket_zero_is_rejected() {
    let p = pair(12);
    let mut bytes = p.a.to_stored().as_bytes().to_vec();
    let n = bytes.len();
    assert_eq!(&bytes[n - 2..], &256u16.to_be_bytes());
    bytes[n - 2..].copy_from_slice(&[0, 0]);
    assert!(matches!(
        Session::from_stored(&StoredSession::from_bytes(&bytes)).unwrap_err(),
        RatchetError::Storage(StorageError::Malformed(_))
    ));
    bytes[n - 2..].copy_from_slice(&[0, 1]);
    let s = Session::from_stored(&StoredSession::from_bytes(&bytes)).unwrap();
    assert_eq!(s.to_stored().as_bytes(), bytes.as_slice());
}

/// The largest plaintext that fits `MAX_WIRE_LEN` is accepted, one more byte
/// is not (established session, no handshake header).
#[test]
fn plaintext_length_limit_is_exact() {
    let mut p = pair(13);
    let m = send(&mut p, false, b"reply");
    recv(&mut p, true, &m).unwrap();
    p.a.set_padding(PaddingPolicy::multiple_of(1));
    let max = MAX_WIRE_LEN - message::MIN_MESSAGE_LEN;
    let before = snapshot(&p.a);
    assert_eq!(
        p.a.encrypt(&mut p.rng, &vec![1u8; max + 1], b"ad")
            .unwrap_err(),
        RatchetError::PlaintextTooLong
    );
    assert_eq!(snapshot(&p.a), before);
    let m = send(&mut p, true, &vec![1u8; max]);
    assert_eq!(m.len(), MAX_WIRE_LEN);
    assert_eq!(recv(&mut p, false, &m).unwrap().len(), max);
}

/// Stored-state bounds on untrusted input: a chain may hold exactly
/// `MAX_SKIPPED_KEYS_PER_CHAIN` skipped keys and a reassembly exactly
/// `MAX_SYMBOLS` symbols; one more is corrupt. The 64-bit epoch counter
/// survives storage in full.
#[test]
fn stored_bounds_are_exact() {
    let p = pair(14);
    let stored = p.b.to_stored();
    let load = |s: &Session| Session::from_stored(&s.to_stored());

    let mut b = Session::from_stored(&stored).unwrap();
    let chain = b.recv.as_mut().unwrap();
    for i in 0..MAX_SKIPPED_KEYS_PER_CHAIN {
        let i = u32::try_from(i).unwrap() + 1_000;
        chain
            .skipped
            .keys
            .insert(i, MessageKey::from_slice_array(&[3; 32]));
    }
    assert_eq!(
        load(&b).unwrap().skipped_keys_held(),
        MAX_SKIPPED_KEYS_PER_CHAIN
    );
    let chain = b.recv.as_mut().unwrap();
    chain
        .skipped
        .keys
        .insert(5_000, MessageKey::from_slice_array(&[3; 32]));
    assert!(matches!(
        load(&b).err(),
        Some(RatchetError::Storage(StorageError::Malformed(_)))
    ));

    let mut b = Session::from_stored(&stored).unwrap();
    let symbols: Vec<_> = (0..=u8::MAX).map(|i| (i, [i; 16])).collect();
    assert_eq!(symbols.len(), erasure::MAX_SYMBOLS);
    b.pq.peer_rx = Some(pq::Reassembly {
        id: 9,
        target: 0,
        symbols,
    });
    let back = load(&b).unwrap();
    assert_eq!(back.pq.peer_rx, b.pq.peer_rx);

    let mut b = Session::from_stored(&stored).unwrap();
    b.pq.epochs_mixed = (5 << 32) | 7;
    assert_eq!(load(&b).unwrap().pq_epochs_mixed(), (5 << 32) | 7);
}

/// With no padding slack at all (every plaintext fills its bucket exactly),
/// PQ epochs still complete, and the bandwidth stays bounded: a message grows
/// by one bucket only when symbols are waiting and the previous message
/// carried none (spec §7.6).
#[test]
fn pq_progresses_without_padding_slack() {
    let mut p = pair(15);
    p.a.set_padding(PaddingPolicy::multiple_of(64));
    p.b.set_padding(PaddingPolicy::multiple_of(64));
    let text = [5u8; 20];
    assert_eq!((message::MIN_MESSAGE_LEN + text.len()) % 64, 0);
    // Bob speaks first, so Alice's messages no longer carry the handshake.
    const N: usize = 300;
    let mut total = 0usize;
    for i in 0..N as u32 {
        let from_a = i % 2 == 1;
        let m = send(&mut p, from_a, &text);
        total += m.len();
        assert_eq!(m.len() % 64, 0);
        assert_eq!(recv(&mut p, !from_a, &m).unwrap(), text);
    }
    assert!(p.a.pq_epochs_mixed() > 0 && p.b.pq_epochs_mixed() > 0);
    // Bandwidth bound from the rules of spec §7.6: every message is its
    // 128-byte base, at most every other one per side grows by one 64-byte
    // bucket (minimum chunk), plus Bob's one bootstrap message (his whole key,
    // under 1,280 bytes). Growing idle messages or growing whenever the
    // slack is short would exceed it.
    let bound = N * 128 + (N / 2) * 64 + 1_280;
    assert!(
        total <= bound,
        "{total} bytes for {N} messages (bound {bound})"
    );
}

/// A message sent in a rollback experiment, opened with the keys the
/// sender's state says it used.
struct Opened {
    message: Vec<u8>,
    header: Header,
    nonce: [u8; XNONCE_LEN],
    /// The body plaintext (PQ section, plaintext, padding).
    body: Vec<u8>,
    /// The encrypted body without its tag.
    sealed: Vec<u8>,
}

/// The message key the next `encrypt` of `s` uses (its sending chain exists).
fn next_message_key(s: &Session) -> MessageKey {
    keys::chain(&s.send.as_ref().unwrap().ck).1
}

/// The ratchet message inside `m` and the handshake header its body binds
/// (a prekey message, §7.7), or `m` itself.
fn inner_message(m: &[u8]) -> (Vec<u8>, Option<Vec<u8>>) {
    if m[1] == message_type::PREKEY_MESSAGE {
        let pm = PrekeyMessage::from_bytes(m).unwrap();
        (
            pm.payload().to_vec(),
            Some(encode_handshake_header(pm.header())),
        )
    } else {
        (m.to_vec(), None)
    }
}

/// Encrypts `text` from `s` (which must continue its sending chain) and
/// opens the header and body again with the chain's header key and the body
/// key derived from its message key.
fn encrypt_and_open(s: &mut Session, rng: &mut ChaCha20Rng, text: &[u8]) -> Opened {
    let mk = next_message_key(s);
    let hk = s.send.as_ref().unwrap().hk.duplicate();
    let message = s.encrypt(rng, text, b"ad").unwrap();
    let (inner, wrapper) = inner_message(&message);
    let parts = message::split(&inner).unwrap();
    let header = open_header(&hk, &s.th, &parts).unwrap();
    let ak = keys::body_key(&mk, &parts.nonce);
    let mut body = parts.enc_body.to_vec();
    let ad = body_ad(&s.th, b"ad", parts.prefix, wrapper.as_deref());
    assert!(aead::open_single_use(ak.expose(), &ad, &mut body));
    let sealed = parts.enc_body[..parts.enc_body.len() - TAG_LEN].to_vec();
    Opened {
        header,
        nonce: parts.nonce,
        body,
        sealed,
        message,
    }
}

fn xor(a: &[u8], b: &[u8]) -> Vec<u8> {
    a.iter().zip(b).map(|(x, y)| x ^ y).collect()
}

/// Two messages from two copies of one stored state: same message key (same
/// header: chain and index), yet the bodies are unrelated (spec §7.11).
fn assert_unrelated_bodies(mk: &MessageKey, m1: &Opened, m2: &Opened) {
    assert_eq!(m1.header, m2.header, "both copies used the same (chain, N)");
    assert_ne!(m1.nonce, m2.nonce);
    assert_ne!(
        keys::body_key(mk, &m1.nonce).expose(),
        keys::body_key(mk, &m2.nonce).expose()
    );
    assert_eq!(m1.body.len(), m2.body.len());
    assert_ne!(m1.body, m2.body);
    // No two-time pad: c1 ⊕ c2 is not p1 ⊕ p2 ...
    assert_ne!(xor(&m1.sealed, &m2.sealed), xor(&m1.body, &m2.body));
    // ... and not in any 16-byte block: the keystreams c ⊕ p differ in
    // every block, and so do the ciphertexts, even over the zero padding
    // both bodies share.
    let (ks1, ks2) = (xor(&m1.sealed, &m1.body), xor(&m2.sealed, &m2.body));
    for (i, (a, b)) in ks1.chunks(16).zip(ks2.chunks(16)).enumerate() {
        assert_ne!(a, b, "keystream block {i}");
    }
    for (i, (a, b)) in m1.sealed.chunks(16).zip(m2.sealed.chunks(16)).enumerate() {
        assert_ne!(a, b, "ciphertext block {i}");
    }
    // The check above is not vacuous: some blocks of plaintext are equal
    // in the two bodies (PQ symbols or padding), where a reused keystream
    // would give equal ciphertext blocks.
    let shared = m1
        .body
        .chunks(16)
        .zip(m2.body.chunks(16))
        .filter(|(a, b)| a == b)
        .count();
    assert!(shared > 0, "the bodies share no block");
    // Control: sealed under the message key itself (the derivation before
    // §7.11), the same two bodies are a two-time pad.
    let (mut o1, mut o2) = (m1.body.clone(), m2.body.clone());
    assert!(aead::seal_single_use(mk.expose(), b"", &mut o1));
    assert!(aead::seal_single_use(mk.expose(), b"", &mut o2));
    let n = m1.body.len();
    assert_eq!(xor(&o1[..n], &o2[..n]), xor(&m1.body, &m2.body));
}

/// Spec §7.11: a sender that reloads an older stored state (a crash before
/// persisting, a second process, a restored backup) and encrypts again
/// reuses a message key, but not a keystream; the receiver accepts the first
/// of the two messages and rejects the second as a duplicate without
/// changing its state.
#[test]
fn rolled_back_sender_reuses_no_keystream() {
    let mut p = pair(16);
    let r = send(&mut p, false, b"reply");
    recv(&mut p, true, &r).unwrap();
    let m = send(&mut p, true, b"first of a new chain");
    recv(&mut p, false, &m).unwrap();

    let stored = p.a.to_stored();
    let mut copy1 = Session::from_stored(&stored).unwrap();
    let mut copy2 = Session::from_stored(&stored).unwrap();
    let mk = next_message_key(&copy1);
    let m1 = encrypt_and_open(&mut copy1, &mut p.rng, b"the first text, 29 bytes long");
    let m2 = encrypt_and_open(&mut copy2, &mut p.rng, b"another text of the same size");
    assert_eq!(m1.header.n, 1);
    assert_unrelated_bodies(&mk, &m1, &m2);

    assert_eq!(
        p.b.decrypt(&m1.message, b"ad").unwrap(),
        b"the first text, 29 bytes long"
    );
    let before = snapshot(&p.b);
    assert_eq!(
        p.b.decrypt(&m2.message, b"ad").unwrap_err(),
        RatchetError::DuplicateMessage
    );
    assert_eq!(
        snapshot(&p.b),
        before,
        "the rejected message changed nothing"
    );
    // The session goes on from the copy whose message was delivered.
    let next = copy1.encrypt(&mut p.rng, b"next", b"ad").unwrap();
    assert_eq!(p.b.decrypt(&next, b"ad").unwrap(), b"next");
}

/// The same for the first flight: two prekey messages from two copies of an
/// initiating state carry one handshake and one message key (index 0).
#[test]
fn rolled_back_initiator_reuses_no_keystream() {
    let mut rng = ChaCha20Rng::from_seed([17; 32]);
    let alice = DeviceIdentity::generate(&mut rng);
    let bob = DeviceIdentity::generate(&mut rng);
    let mut store = PrekeyStore::new(&mut rng, &bob);
    let bundle = store.bundle(&bob, None, None).unwrap().verify().unwrap();
    let a = Session::initiate(&mut rng, &alice, &bundle).unwrap();
    let stored = a.to_stored();
    let mut copy1 = Session::from_stored(&stored).unwrap();
    let mut copy2 = Session::from_stored(&stored).unwrap();
    let mk = next_message_key(&copy1);
    let m1 = encrypt_and_open(&mut copy1, &mut rng, b"hello from one copy");
    let m2 = encrypt_and_open(&mut copy2, &mut rng, b"hello from the copy");
    assert_eq!(m1.message[1], message_type::PREKEY_MESSAGE);
    assert_eq!(m1.header.n, 0);
    assert_unrelated_bodies(&mk, &m1, &m2);

    let (mut b, pt) = Session::respond(&bob, &mut store, &m1.message, b"ad").unwrap();
    assert_eq!(pt, b"hello from one copy");
    let before = snapshot(&b);
    assert_eq!(
        b.decrypt(&m2.message, b"ad").unwrap_err(),
        RatchetError::DuplicateMessage
    );
    assert_eq!(snapshot(&b), before);
}

/// The body key is not the message key: a body sealed under `MK` itself (the
/// derivation before §7.11) does not authenticate, and changes nothing.
#[test]
fn body_sealed_under_the_message_key_is_rejected() {
    let mut p = pair(18);
    let r = send(&mut p, false, b"reply");
    recv(&mut p, true, &r).unwrap();
    let m = send(&mut p, true, b"first of a new chain");
    recv(&mut p, false, &m).unwrap();

    let mk = next_message_key(&p.a);
    let th = p.a.th;
    let sent = encrypt_and_open(&mut p.a, &mut p.rng, b"sealed twice");
    let parts = message::split(&sent.message).unwrap();
    let mut old = sent.body.clone();
    let ad = body_ad(&th, b"ad", parts.prefix, None);
    assert!(aead::seal_single_use(mk.expose(), &ad, &mut old));
    let old_message = [parts.prefix, &old].concat();
    assert_eq!(old_message.len(), sent.message.len());

    let before = snapshot(&p.b);
    assert_eq!(
        p.b.decrypt(&old_message, b"ad").unwrap_err(),
        RatchetError::AuthenticationFailed
    );
    assert_eq!(snapshot(&p.b), before);
    assert_eq!(p.b.decrypt(&sent.message, b"ad").unwrap(), b"sealed twice");
}

#[test]
fn a_new_chain_before_the_responder_replies_is_refused() {
    // Bob (responder) has not sent: his ratchet key is the all-zero
    // placeholder. A deviating Alice opens a second chain anyway, keyed to
    // the public key of that placeholder scalar (clamped zero, 2^254): the
    // DH she computes is the one Bob would compute, so without the guard
    // Bob would accept a chain from a key nobody drew.
    let mut p = pair(60);
    let placeholder = X25519Secret::from_slice_array(&[0u8; 32]).public_key();
    p.a.dh_peer = Some(placeholder);
    p.a.pn = p.a.send.as_ref().unwrap().n; // ends her first chain honestly
    p.a.send = None;
    let m = p.a.encrypt(&mut p.rng, b"deviating", b"ad").unwrap();
    let before = snapshot(&p.b);
    assert_eq!(
        recv(&mut p, false, &m),
        Err(RatchetError::NewChainBeforeReply)
    );
    assert_eq!(snapshot(&p.b), before, "the session is unchanged");
    // Bob's session still works: his reply starts his first real chain.
    let reply = send(&mut p, false, b"reply");
    assert!(!reply.is_empty());
    assert_ne!(p.b.dh_self_pub.0, [0u8; 32]);
}

#[test]
fn stored_forms_compare_in_constant_time_but_correctly() {
    // The stored types hold secrets: their `PartialEq` is subtle's
    // constant-time comparison, which must still be an equality.
    let p = pair(61);
    let a = p.a.to_stored();
    let same = StoredSession::from_bytes(a.as_bytes());
    assert!(a == same);
    let mut flipped = a.as_bytes().to_vec();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    assert!(a != StoredSession::from_bytes(&flipped));
    assert!(a != StoredSession::from_bytes(&a.as_bytes()[..last]));
    assert!(a != p.b.to_stored());
}
