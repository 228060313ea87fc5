use super::routing::{Routing, associated_data};
use super::*;
use crate::device::list::{ClientVersion, DeviceEntry, DeviceListDraft, Platform};
use crate::ratchet::StorageError;
use alloc::{format, vec};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;

const V: ClientVersion = ClientVersion {
    major: 1,
    minor: 0,
    patch: 0,
};

/// An account and all of its devices' managers, plus what its storage node
/// would serve: the current list and prekey record.
pub(super) struct Acct {
    pub(super) account: Account,
    pub(super) devices: Vec<SessionManager>,
    pub(super) list: SignedDeviceList,
    pub(super) record: PrekeyRecord,
}

impl Acct {
    pub(super) fn new(rng: &mut ChaCha20Rng, n: usize) -> Self {
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
                    "d",
                    V,
                    i as u64,
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
        let mut devices: Vec<SessionManager> = parts
            .into_iter()
            .map(|(identity, id, store)| {
                SessionManager::new(identity, id, verified.clone(), store).unwrap()
            })
            .collect();
        for d in &mut devices {
            d.add_prekey_record(&account.public_key(), &record).unwrap();
        }
        Self {
            account,
            devices,
            list,
            record,
        }
    }

    pub(super) fn key(&self) -> Ed25519PublicKey {
        self.account.public_key()
    }

    /// Every device of `self` learns `other`'s list and record.
    pub(super) fn learn(&mut self, other: &Acct) {
        for d in &mut self.devices {
            let list =
                VerifiedDeviceList::trust_first(other.list.clone(), &other.account.session_id())
                    .unwrap();
            d.add_contact(list).unwrap();
            d.add_prekey_record(&other.key(), &other.record).unwrap();
        }
    }
}

/// The transcript hashes of every session `m` holds with one peer device.
fn all_transcripts(
    m: &SessionManager,
    account: &Ed25519PublicKey,
    device: &DeviceId,
) -> Vec<[u8; 32]> {
    let set = m
        .peer(account)
        .and_then(|p| p.sessions.get(device))
        .unwrap();
    set.active
        .iter()
        .chain(set.archived.iter())
        .map(|e| *e.session.transcript_hash())
        .collect()
}

/// The first device of `x` writes to `y`, whose first device reads it and
/// answers: afterwards both hold a confirmed session.
fn round_trip(rng: &mut ChaCha20Rng, x: &mut Acct, y: &mut Acct, now: u64) {
    let m = x.devices[0].encrypt(rng, &y.key(), b"ping", now).unwrap();
    y.devices[0].decrypt(&m.envelopes[0]).unwrap();
    let r = y.devices[0]
        .encrypt(rng, &x.key(), b"pong", now + 1)
        .unwrap();
    x.devices[0].decrypt(&r.envelopes[0]).unwrap();
}

/// `x` and `y` (single-device accounts) use the same active session, and a
/// message from `x` travels in it to `y`.
fn assert_converged(
    rng: &mut ChaCha20Rng,
    x: &mut SessionManager,
    y: &mut SessionManager,
    now: u64,
) {
    let at_x = x.active_session(&y.account(), y.device_id()).unwrap();
    assert_eq!(y.active_session(&x.account(), x.device_id()), Some(at_x));
    let m = x.encrypt(rng, &y.account(), b"after", now).unwrap();
    assert_eq!(m.sessions_started, 0);
    assert_eq!(y.decrypt(&m.envelopes[0]).unwrap().content, b"after");
}

/// Two single-device accounts whose first messages cross: both start a
/// session in the same second ("a1" to Bob, "b1" to Alice), neither delivered.
fn crossing_first_messages(seed: u8) -> (ChaCha20Rng, Acct, Acct, Outgoing, Outgoing) {
    let mut rng = ChaCha20Rng::from_seed([seed; 32]);
    let (mut alice, mut bob) = pair(&mut rng, 1, 1);
    let a1 = alice.devices[0]
        .encrypt(&mut rng, &bob.key(), b"a1", 50)
        .unwrap();
    let b1 = bob.devices[0]
        .encrypt(&mut rng, &alice.key(), b"b1", 50)
        .unwrap();
    (rng, alice, bob, a1, b1)
}

fn pair(rng: &mut ChaCha20Rng, a: usize, b: usize) -> (Acct, Acct) {
    let mut alice = Acct::new(rng, a);
    let mut bob = Acct::new(rng, b);
    alice.learn(&bob);
    bob.learn(&alice);
    (alice, bob)
}

#[test]
fn fan_out_reaches_every_device_of_both_accounts() {
    let mut rng = ChaCha20Rng::from_seed([1; 32]);
    let (mut alice, mut bob) = pair(&mut rng, 2, 3);
    let out = alice.devices[0]
        .encrypt(&mut rng, &bob.key(), b"to all of bob", 100)
        .unwrap();
    assert_eq!(out.envelopes.len(), 1);
    assert_eq!(out.sessions_started, 4);
    let env = &out.envelopes[0];
    let (alice_key, bob_key) = (alice.key(), bob.key());
    for d in &mut bob.devices {
        let got = d.decrypt(env).unwrap();
        assert_eq!(got.content, b"to all of bob");
        assert_eq!(got.sender, alice_key);
        assert_eq!(got.conversation, bob_key);
        assert_eq!(got.kind, ContentKind::Message);
        assert!(got.new_session);
    }
    // Alice's other device gets the sent copy, filed under Bob.
    let copy = alice.devices[1].decrypt(env).unwrap();
    assert_eq!(copy.conversation, bob.key());
    assert_eq!(copy.content, b"to all of bob");
    // The sender itself is not a recipient.
    assert_eq!(
        alice.devices[0].decrypt(env),
        Err(SessionsError::NotARecipient)
    );

    let reply = bob.devices[2]
        .encrypt(&mut rng, &alice.key(), b"re", 101)
        .unwrap();
    // Bob's third device starts sessions with Alice's second device and its
    // own two siblings; with Alice's first device it answers in the session
    // Alice started.
    assert_eq!(reply.sessions_started, 3);
    for d in &mut alice.devices {
        let got = d.decrypt(&reply.envelopes[0]).unwrap();
        assert_eq!(got.content, b"re");
    }
    let again = alice.devices[0]
        .encrypt(&mut rng, &bob.key(), b"2", 102)
        .unwrap();
    assert_eq!(again.sessions_started, 0);
    assert_eq!(
        bob.devices[2].decrypt(&again.envelopes[0]).unwrap().content,
        b"2"
    );
    // A duplicate is refused and changes nothing.
    assert!(matches!(
        bob.devices[2].decrypt(&again.envelopes[0]),
        Err(SessionsError::Undecryptable {
            error: RatchetError::DuplicateMessage,
            ..
        })
    ));
}

#[test]
fn missing_prekeys_is_reported_before_anything_changes() {
    let mut rng = ChaCha20Rng::from_seed([2; 32]);
    let mut alice = Acct::new(&mut rng, 1);
    let bob = Acct::new(&mut rng, 2);
    let list =
        VerifiedDeviceList::trust_first(bob.list.clone(), &bob.account.session_id()).unwrap();
    alice.devices[0].add_contact(list).unwrap();
    let err = alice.devices[0]
        .encrypt(&mut rng, &bob.key(), b"x", 1)
        .unwrap_err();
    let SessionsError::MissingPrekeys { devices } = err else {
        panic!("{err:?}")
    };
    assert_eq!(devices.len(), 2);
    assert_eq!(alice.devices[0].session_count(), 0);
    alice.devices[0]
        .add_prekey_record(&bob.key(), &bob.record)
        .unwrap();
    assert!(
        alice.devices[0]
            .encrypt(&mut rng, &bob.key(), b"x", 1)
            .is_ok()
    );
    // Unknown accounts are named.
    let stranger = Acct::new(&mut rng, 1);
    assert_eq!(
        alice.devices[0].encrypt(&mut rng, &stranger.key(), b"x", 1),
        Err(SessionsError::UnknownAccount {
            account: stranger.key().to_bytes()
        })
    );
}

#[test]
fn simultaneous_first_messages_converge_on_one_session() {
    for seed in 0..8u8 {
        let (mut rng, mut alice, mut bob, a1, b1) = crossing_first_messages(seed);
        let (a_id, b_id) = (*alice.devices[0].device_id(), *bob.devices[0].device_id());
        // Delivery in either order.
        if seed % 2 == 0 {
            assert_eq!(
                bob.devices[0].decrypt(&a1.envelopes[0]).unwrap().content,
                b"a1"
            );
            assert_eq!(
                alice.devices[0].decrypt(&b1.envelopes[0]).unwrap().content,
                b"b1"
            );
        } else {
            assert_eq!(
                alice.devices[0].decrypt(&b1.envelopes[0]).unwrap().content,
                b"b1"
            );
            assert_eq!(
                bob.devices[0].decrypt(&a1.envelopes[0]).unwrap().content,
                b"a1"
            );
        }
        let at_alice = alice.devices[0].active_session(&bob.key(), &b_id).unwrap();
        let at_bob = bob.devices[0].active_session(&alice.key(), &a_id).unwrap();
        assert_eq!(at_alice, at_bob, "seed {seed}: both pick the same session");
        // Equal times and first contacts: the smaller transcript hash wins.
        assert_eq!(alice.devices[0].sessions_with(&bob.key(), &b_id), 2);
        assert_eq!(alice.devices[0].session_count(), 2);
        let both = all_transcripts(&alice.devices[0], &bob.key(), &b_id);
        assert_eq!(at_alice, *both.iter().min().unwrap());
        // And it carries traffic both ways without new sessions.
        for i in 0..3 {
            let m = alice.devices[0]
                .encrypt(&mut rng, &bob.key(), b"a", 60 + i)
                .unwrap();
            assert_eq!(m.sessions_started, 0);
            bob.devices[0].decrypt(&m.envelopes[0]).unwrap();
            let r = bob.devices[0]
                .encrypt(&mut rng, &alice.key(), b"b", 60 + i)
                .unwrap();
            assert_eq!(r.sessions_started, 0);
            alice.devices[0].decrypt(&r.envelopes[0]).unwrap();
        }
        assert_eq!(
            alice.devices[0].active_session(&bob.key(), &b_id),
            bob.devices[0].active_session(&alice.key(), &a_id)
        );
    }
}

#[test]
fn revocation_stops_sending_to_and_accepting_from_the_device() {
    let mut rng = ChaCha20Rng::from_seed([3; 32]);
    let (mut alice, mut bob) = pair(&mut rng, 1, 3);
    let first = alice.devices[0]
        .encrypt(&mut rng, &bob.key(), b"hi", 1)
        .unwrap();
    for d in &mut bob.devices {
        d.decrypt(&first.envelopes[0]).unwrap();
    }
    // The third device sends something before it is revoked.
    let before = bob.devices[2]
        .encrypt(&mut rng, &alice.key(), b"old", 2)
        .unwrap();
    let lost = *bob.devices[2].device_id();
    let v2 = bob.devices[0]
        .revoke_device(&bob.account, &lost, 3)
        .unwrap();
    assert_eq!(v2.version(), 2);
    bob.devices[1].update_device_list(&v2, &[]).unwrap();
    let change = alice.devices[0].update_device_list(&v2, &[]).unwrap();
    assert_eq!(change.removed, vec![lost]);
    // Messages from the revoked device are refused, even ones sent before.
    assert_eq!(
        alice.devices[0].decrypt(&before.envelopes[0]),
        Err(SessionsError::RevokedSender {
            account: bob.key().to_bytes(),
            device: lost
        })
    );
    // New messages have no slot for it.
    let after = alice.devices[0]
        .encrypt(&mut rng, &bob.key(), b"new", 4)
        .unwrap();
    assert_eq!(
        bob.devices[2].decrypt(&after.envelopes[0]),
        Err(SessionsError::NotARecipient)
    );
    assert_eq!(
        bob.devices[0].decrypt(&after.envelopes[0]).unwrap().content,
        b"new"
    );
    assert_eq!(
        bob.devices[1].decrypt(&after.envelopes[0]).unwrap().content,
        b"new"
    );
    // Once the removed device sees the list, it stops sending.
    bob.devices[2].update_device_list(&v2, &[]).unwrap();
    assert!(bob.devices[2].is_revoked());
    assert_eq!(
        bob.devices[2].encrypt(&mut rng, &alice.key(), b"x", 5),
        Err(SessionsError::ThisDeviceRevoked)
    );
    // A rollback to the list that still had it is refused.
    assert!(matches!(
        alice.devices[0].update_device_list(&bob.list, &[]),
        Err(SessionsError::DeviceList(_))
    ));
}

/// A slot payload claiming to come from `claimed` (account, device), built by
/// someone who only knows public keys.
fn forged_envelope(
    rng: &mut ChaCha20Rng,
    claimed_account: Ed25519PublicKey,
    claimed_device: DeviceId,
    to: &SessionManager,
    message: &[u8],
    created: u64,
) -> Vec<u8> {
    let routing = Routing {
        sender_account: claimed_account,
        sender_device: claimed_device,
        conversation: to.account(),
        sender_list_version: 1,
        conversation_list_version: 1,
        session_created: created,
        session_heal: false,
        kind: ContentKind::Message,
    };
    let mut payload = routing.to_bytes();
    payload.extend_from_slice(message);
    Envelope::seal(rng, &[(to.identity().public(), payload.as_slice())])
        .unwrap()
        .to_bytes()
}

#[test]
fn forged_resets_change_nothing() {
    let mut rng = ChaCha20Rng::from_seed([4; 32]);
    let (mut alice, mut bob) = pair(&mut rng, 1, 1);
    let b_id = *bob.devices[0].device_id();
    round_trip(&mut rng, &mut alice, &mut bob, 1);
    let active = alice.devices[0].active_session(&bob.key(), &b_id).unwrap();
    let sessions = alice.devices[0].session_count();

    // 1. A new session from Mallory's own identity, claiming Bob's device,
    //    dated far in the future so it would win the rank.
    let mallory = DeviceIdentity::generate(&mut rng);
    let mut store = PrekeyStore::new(&mut rng, alice.devices[0].identity());
    let bundle = store
        .bundle(alice.devices[0].identity(), None, None)
        .unwrap()
        .verify()
        .unwrap();
    let mut forged = Session::initiate(&mut rng, &mallory, &bundle).unwrap();
    let routing = Routing {
        sender_account: bob.key(),
        sender_device: b_id,
        conversation: alice.key(),
        sender_list_version: 1,
        conversation_list_version: 1,
        session_created: u64::MAX,
        session_heal: true,
        kind: ContentKind::Message,
    };
    let ad = associated_data(
        &routing.to_bytes(),
        &alice.key(),
        alice.devices[0].device_id(),
    );
    let msg = forged.encrypt(&mut rng, b"reset!", &ad).unwrap();
    let env = forged_envelope(&mut rng, bob.key(), b_id, &alice.devices[0], &msg, u64::MAX);
    assert_eq!(
        alice.devices[0].decrypt(&env),
        Err(SessionsError::SenderIdentityMismatch { device: b_id })
    );
    let _ = &mut store;

    // 2. Garbage claiming to be a ratchet message from Bob's device.
    let mut garbage = vec![crate::wire::WIRE_VERSION, message_type::RATCHET_MESSAGE];
    garbage.extend((0..200).map(|i| i as u8));
    let env = forged_envelope(&mut rng, bob.key(), b_id, &alice.devices[0], &garbage, 9);
    assert!(matches!(
        alice.devices[0].decrypt(&env),
        Err(SessionsError::Undecryptable { .. })
    ));
    // 3. A genuine message of Bob re-wrapped with other routing: the
    //    ratchet's associated data no longer matches.
    let genuine = bob.devices[0]
        .encrypt(&mut rng, &alice.key(), b"real", 3)
        .unwrap();
    let slot = Envelope::from_bytes(&genuine.envelopes[0])
        .unwrap()
        .open(alice.devices[0].identity())
        .unwrap();
    let (mut routing, message) = Routing::split(&slot).unwrap();
    routing.kind = ContentKind::Heal;
    let mut payload = routing.to_bytes();
    payload.extend_from_slice(message);
    let rewrapped = Envelope::seal(
        &mut rng,
        &[(alice.devices[0].identity().public(), payload.as_slice())],
    )
    .unwrap()
    .to_bytes();
    assert!(matches!(
        alice.devices[0].decrypt(&rewrapped),
        Err(SessionsError::Undecryptable { .. })
    ));

    // Nothing changed: same active session, same count, traffic flows.
    assert_eq!(
        alice.devices[0].active_session(&bob.key(), &b_id),
        Some(active)
    );
    assert_eq!(alice.devices[0].session_count(), sessions);
    assert_eq!(
        alice.devices[0]
            .decrypt(&genuine.envelopes[0])
            .unwrap()
            .content,
        b"real"
    );
}

#[test]
fn unknown_devices_and_outdated_lists_are_named() {
    let mut rng = ChaCha20Rng::from_seed([5; 32]);
    let (mut alice, mut bob) = pair(&mut rng, 1, 1);
    // Bob adds a second device (list v2) that writes to Alice at once.
    let identity = DeviceIdentity::generate(&mut rng);
    let id = DeviceId::generate(&mut rng);
    let held = VerifiedDeviceList::trust_first_with_key(bob.list.clone(), &bob.key()).unwrap();
    let mut draft = held.next_draft().unwrap();
    draft
        .add_device(DeviceEntry::new(
            id,
            *identity.public(),
            Platform::Desktop,
            "laptop",
            V,
            9,
        ))
        .unwrap();
    let v2 = draft.sign(&bob.account).unwrap();
    let v2_verified = VerifiedDeviceList::trust_first_with_key(v2.clone(), &bob.key()).unwrap();
    let store = PrekeyStore::new(&mut rng, &identity);
    let mut laptop = SessionManager::new(identity, id, v2_verified, store).unwrap();
    let list =
        VerifiedDeviceList::trust_first(alice.list.clone(), &alice.account.session_id()).unwrap();
    laptop.add_contact(list).unwrap();
    laptop
        .add_prekey_record(&alice.key(), &alice.record)
        .unwrap();
    laptop.add_prekey_record(&bob.key(), &bob.record).unwrap();
    let m = laptop
        .encrypt(&mut rng, &alice.key(), b"from laptop", 10)
        .unwrap();
    assert_eq!(
        alice.devices[0].decrypt(&m.envelopes[0]),
        Err(SessionsError::DeviceListOutdated {
            account: bob.key().to_bytes(),
            held: 1,
            claimed: 2
        })
    );
    alice.devices[0].update_device_list(&v2, &[]).unwrap();
    assert_eq!(
        alice.devices[0].decrypt(&m.envelopes[0]).unwrap().content,
        b"from laptop"
    );
    // The phone learns of its sibling from the list, then takes its copy.
    bob.devices[0].update_device_list(&v2, &[]).unwrap();
    assert_eq!(
        bob.devices[0].decrypt(&m.envelopes[0]).unwrap().content,
        b"from laptop"
    );
    // A stranger's account is unknown.
    let mut carol = Acct::new(&mut rng, 1);
    carol.learn(&alice);
    let c = carol.devices[0]
        .encrypt(&mut rng, &alice.key(), b"hello?", 11)
        .unwrap();
    assert_eq!(
        alice.devices[0].decrypt(&c.envelopes[0]),
        Err(SessionsError::UnknownAccount {
            account: carol.key().to_bytes()
        })
    );
}

#[test]
fn heal_device_starts_one_session_per_round_trip_and_the_peer_adopts_it() {
    let mut rng = ChaCha20Rng::from_seed([6; 32]);
    let (mut alice, mut bob) = pair(&mut rng, 1, 1);
    let (a_id, b_id) = (*alice.devices[0].device_id(), *bob.devices[0].device_id());
    round_trip(&mut rng, &mut alice, &mut bob, 1);
    let old = alice.devices[0].active_session(&bob.key(), &b_id).unwrap();

    let h1 = alice.devices[0]
        .heal_device(&mut rng, &bob.key(), &b_id, 3)
        .unwrap();
    assert_eq!(h1.sessions_started, 1);
    let h2 = alice.devices[0]
        .heal_device(&mut rng, &bob.key(), &b_id, 4)
        .unwrap();
    assert_eq!(h2.sessions_started, 0, "still waiting for a reply: reuse");
    let new = alice.devices[0].active_session(&bob.key(), &b_id).unwrap();
    assert_ne!(new, old);
    // A message Bob sent in the old session before seeing the heal still decrypts.
    let late = bob.devices[0]
        .encrypt(&mut rng, &alice.key(), b"late", 5)
        .unwrap();
    let got = bob.devices[0].decrypt(&h1.envelopes[0]).unwrap();
    assert_eq!(got.kind, ContentKind::Heal);
    assert!(got.new_session);
    assert_eq!(
        bob.devices[0].active_session(&alice.key(), &a_id),
        Some(new)
    );
    assert_eq!(
        alice.devices[0]
            .decrypt(&late.envelopes[0])
            .unwrap()
            .content,
        b"late"
    );
    assert_eq!(
        alice.devices[0].active_session(&bob.key(), &b_id),
        Some(new)
    );
    let after = bob.devices[0]
        .encrypt(&mut rng, &alice.key(), b"after", 6)
        .unwrap();
    assert_eq!(
        alice.devices[0]
            .decrypt(&after.envelopes[0])
            .unwrap()
            .content,
        b"after"
    );
    assert_eq!(
        bob.devices[0].decrypt(&h2.envelopes[0]).unwrap().kind,
        ContentKind::Heal
    );
}

#[test]
fn stored_device_round_trips_and_keeps_working() {
    let mut rng = ChaCha20Rng::from_seed([7; 32]);
    let (mut alice, mut bob) = pair(&mut rng, 2, 1);
    let m = alice.devices[0]
        .encrypt(&mut rng, &bob.key(), b"1", 1)
        .unwrap();
    bob.devices[0].decrypt(&m.envelopes[0]).unwrap();
    alice.devices[1].decrypt(&m.envelopes[0]).unwrap();
    let stored = bob.devices[0].to_stored();
    assert!(format!("{stored:?}").contains("redacted"));
    let mut restored =
        SessionManager::from_stored(&StoredDevice::from_bytes(stored.as_bytes())).unwrap();
    assert_eq!(restored.to_stored(), stored, "encoding is canonical");
    assert_eq!(restored.session_count(), bob.devices[0].session_count());
    let r = restored.encrypt(&mut rng, &alice.key(), b"2", 2).unwrap();
    assert_eq!(
        r.sessions_started, 1,
        "only the session with alice's second device is new"
    );
    assert_eq!(
        alice.devices[0].decrypt(&r.envelopes[0]).unwrap().content,
        b"2"
    );

    // Encrypted storage: wrong key and tampering are refused.
    let key = crate::ratchet::StorageKey::generate(&mut rng);
    let blob = stored.encrypt(&mut rng, &key);
    assert_eq!(StoredDevice::decrypt(&blob, &key).unwrap(), stored);
    let other = crate::ratchet::StorageKey::generate(&mut rng);
    assert_eq!(
        StoredDevice::decrypt(&blob, &other),
        Err(SessionsError::Storage(StorageError::WrongKeyOrTampered))
    );
    let mut bad = blob.clone();
    bad[40] ^= 1;
    assert_eq!(
        StoredDevice::decrypt(&bad, &key),
        Err(SessionsError::Storage(StorageError::WrongKeyOrTampered))
    );
    // A stored session's blob is not a stored device.
    let session_blob =
        crate::ratchet::StoredSession::from_bytes(&[1, 0x10]).encrypt(&mut rng, &key);
    assert_eq!(
        StoredDevice::decrypt(&session_blob, &key),
        Err(SessionsError::Storage(StorageError::Malformed(
            crate::wire::WireError::UnexpectedType {
                expected: 0x16,
                actual: 0x11
            }
        )))
    );

    // Every truncation is refused without a panic.
    let bytes = stored.as_bytes();
    for cut in (0..bytes.len()).step_by(97) {
        assert!(SessionManager::from_stored(&StoredDevice::from_bytes(&bytes[..cut])).is_err());
    }
    let mut extra = bytes.to_vec();
    extra.push(0);
    assert!(SessionManager::from_stored(&StoredDevice::from_bytes(&extra)).is_err());
}

#[test]
fn restore_from_backup_never_sends_in_old_sessions_and_heals() {
    let mut rng = ChaCha20Rng::from_seed([8; 32]);
    let (mut alice, mut bob) = pair(&mut rng, 1, 1);
    let (a_id, b_id) = (*alice.devices[0].device_id(), *bob.devices[0].device_id());
    let m = alice.devices[0]
        .encrypt(&mut rng, &bob.key(), b"1", 1)
        .unwrap();
    bob.devices[0].decrypt(&m.envelopes[0]).unwrap();
    let backup = bob.devices[0].to_stored();
    // Bob's state moves on after the backup.
    for i in 0..3 {
        let r = bob.devices[0]
            .encrypt(&mut rng, &alice.key(), b"x", 2 + i)
            .unwrap();
        alice.devices[0].decrypt(&r.envelopes[0]).unwrap();
        let m = alice.devices[0]
            .encrypt(&mut rng, &bob.key(), b"y", 2 + i)
            .unwrap();
        bob.devices[0].decrypt(&m.envelopes[0]).unwrap();
    }
    // The phone is wiped and restored from the old backup.
    let mut restored = SessionManager::restore_from_backup(&mut rng, &backup).unwrap();
    assert_eq!(restored.active_session(&alice.key(), &a_id), None);
    // A plain encrypt would start a new session too; heal announces it at once.
    let heal = restored.heal(&mut rng, &alice.key(), 10).unwrap().unwrap();
    assert_eq!(heal.sessions_started, 1);
    assert!(restored.heal(&mut rng, &alice.key(), 11).unwrap().is_none());
    let got = alice.devices[0].decrypt(&heal.envelopes[0]).unwrap();
    assert_eq!(got.kind, ContentKind::Heal);
    let new = restored.active_session(&alice.key(), &a_id).unwrap();
    assert_eq!(
        alice.devices[0].active_session(&bob.key(), &b_id),
        Some(new)
    );
    let m = alice.devices[0]
        .encrypt(&mut rng, &bob.key(), b"after", 12)
        .unwrap();
    assert_eq!(restored.decrypt(&m.envelopes[0]).unwrap().content, b"after");
    // The rotated prekeys are what the device publishes now.
    assert_ne!(
        restored.bundle().unwrap().to_bytes(),
        bob.devices[0].bundle().unwrap().to_bytes()
    );
}

#[test]
fn a_replayed_prekey_message_after_restore_is_refused() {
    let mut rng = ChaCha20Rng::from_seed([9; 32]);
    let (mut alice, mut bob) = pair(&mut rng, 1, 1);
    let (a_id, b_id) = (*alice.devices[0].device_id(), *bob.devices[0].device_id());
    let backup = bob.devices[0].to_stored();
    let first = alice.devices[0]
        .encrypt(&mut rng, &bob.key(), b"first", 100)
        .unwrap();
    bob.devices[0].decrypt(&first.envelopes[0]).unwrap();
    // Bob is restored from the backup that never saw `first`, and heals.
    let mut restored = SessionManager::restore_from_backup(&mut rng, &backup).unwrap();
    let heal = restored.heal(&mut rng, &alice.key(), 200).unwrap().unwrap();
    alice.devices[0].decrypt(&heal.envelopes[0]).unwrap();
    let healed = restored.active_session(&alice.key(), &a_id).unwrap();
    assert_eq!(
        alice.devices[0].active_session(&bob.key(), &b_id),
        Some(healed)
    );
    // An attacker replays Alice's first prekey message. The backup's replay
    // records do not know it, but a restore deletes the backup's prekeys,
    // so its handshake fails and nothing changes.
    let sessions = restored.session_count();
    assert!(matches!(
        restored.decrypt(&first.envelopes[0]),
        Err(SessionsError::Handshake { .. })
    ));
    assert_eq!(restored.session_count(), sessions);
    assert_eq!(restored.active_session(&alice.key(), &a_id), Some(healed));
    let m = restored
        .encrypt(&mut rng, &alice.key(), b"still healed", 201)
        .unwrap();
    assert_eq!(m.sessions_started, 0);
    assert_eq!(
        alice.devices[0].decrypt(&m.envelopes[0]).unwrap().content,
        b"still healed"
    );
}

#[test]
fn a_healing_session_wins_even_from_a_device_whose_clock_is_behind() {
    let mut rng = ChaCha20Rng::from_seed([10; 32]);
    let (mut alice, mut bob) = pair(&mut rng, 1, 1);
    let b_id = *bob.devices[0].device_id();
    round_trip(&mut rng, &mut alice, &mut bob, 1_000);
    let backup = bob.devices[0].to_stored();
    // Later Alice restarts the pair with a healing session dated 5,000, and
    // Bob answers in it: both sides now hold a healing session newer than
    // anything Bob's backup knows.
    let h = alice.devices[0]
        .heal_device(&mut rng, &bob.key(), &b_id, 5_000)
        .unwrap();
    assert_eq!(h.sessions_started, 1);
    bob.devices[0].decrypt(&h.envelopes[0]).unwrap();
    let r = bob.devices[0]
        .encrypt(&mut rng, &alice.key(), b"2", 5_001)
        .unwrap();
    alice.devices[0].decrypt(&r.envelopes[0]).unwrap();
    // Bob's phone is restored from the old backup, and its clock says 2,000.
    let mut restored = SessionManager::restore_from_backup(&mut rng, &backup).unwrap();
    let heal = restored
        .heal(&mut rng, &alice.key(), 2_000)
        .unwrap()
        .unwrap();
    let got = alice.devices[0].decrypt(&heal.envelopes[0]).unwrap();
    assert!(got.new_session);
    // Alice adopts it although it is dated earlier than her active session.
    assert_converged(&mut rng, &mut alice.devices[0], &mut restored, 5_002);
}

#[test]
fn a_healing_session_replaces_a_dead_first_contact() {
    let mut rng = ChaCha20Rng::from_seed([11; 32]);
    let (mut alice, bob) = pair(&mut rng, 1, 1);
    let backup = bob.devices[0].to_stored();
    // Bob is restored; his old prekeys are gone, but Alice still holds his
    // old bundle and starts a first-contact session with it: it is dead.
    let mut restored = SessionManager::restore_from_backup(&mut rng, &backup).unwrap();
    let dead = alice.devices[0]
        .encrypt(&mut rng, &bob.key(), b"lost", 100)
        .unwrap();
    assert!(matches!(
        restored.decrypt(&dead.envelopes[0]),
        Err(SessionsError::Handshake { .. })
    ));
    // Bob heals (his clock is behind Alice's): Alice's dead session gives way.
    let heal = restored.heal(&mut rng, &alice.key(), 50).unwrap().unwrap();
    alice.devices[0].decrypt(&heal.envelopes[0]).unwrap();
    assert_converged(&mut rng, &mut alice.devices[0], &mut restored, 101);
}

#[test]
fn content_limit_is_checked_first_and_large_first_messages_split() {
    let mut rng = ChaCha20Rng::from_seed([12; 32]);
    let (mut alice, mut bob) = pair(&mut rng, 1, 5);
    let too_long = vec![0x55; MAX_CONTENT_LEN + 1];
    assert_eq!(
        alice.devices[0].encrypt(&mut rng, &bob.key(), &too_long, 1),
        Err(SessionsError::ContentTooLong {
            len: MAX_CONTENT_LEN + 1,
            max: MAX_CONTENT_LEN
        })
    );
    assert_eq!(alice.devices[0].session_count(), 0);
    // The largest content in five new sessions: the slots do not fit one
    // envelope, so the recipients are split, and everyone reads it.
    let largest = vec![0xAA; MAX_CONTENT_LEN];
    let out = alice.devices[0]
        .encrypt(&mut rng, &bob.key(), &largest, 1)
        .unwrap();
    assert_eq!(out.sessions_started, 5);
    assert!(out.envelopes.len() > 1);
    for d in &mut bob.devices {
        let got = out
            .envelopes
            .iter()
            .find_map(|e| d.decrypt(e).ok())
            .unwrap();
        assert_eq!(got.content, largest);
    }
}

#[test]
fn heal_device_retries_with_a_fresh_session_after_a_day() {
    let mut rng = ChaCha20Rng::from_seed([13; 32]);
    let (mut alice, mut bob) = pair(&mut rng, 1, 1);
    let b_id = *bob.devices[0].device_id();
    round_trip(&mut rng, &mut alice, &mut bob, 1);
    let first = alice.devices[0]
        .heal_device(&mut rng, &bob.key(), &b_id, 10)
        .unwrap();
    assert_eq!(first.sessions_started, 1);
    let soon = alice.devices[0]
        .heal_device(&mut rng, &bob.key(), &b_id, 10 + HEAL_RETRY_SECS - 1)
        .unwrap();
    assert_eq!(soon.sessions_started, 0);
    let later = alice.devices[0]
        .heal_device(&mut rng, &bob.key(), &b_id, 10 + HEAL_RETRY_SECS)
        .unwrap();
    assert_eq!(later.sessions_started, 1);
    // Bob gets only the last one: it becomes the pair's session.
    bob.devices[0].decrypt(&later.envelopes[0]).unwrap();
    let a_id = *alice.devices[0].device_id();
    assert_eq!(
        bob.devices[0].active_session(&alice.key(), &a_id),
        alice.devices[0].active_session(&bob.key(), &b_id)
    );
    // Too many intermediates in one update are refused before any check.
    let many = vec![bob.list.clone(); MAX_LIST_INTERMEDIATES + 1];
    assert_eq!(
        alice.devices[0].update_device_list(&bob.list, &many),
        Err(SessionsError::LimitExceeded)
    );
}

#[test]
fn routing_header_is_decoded_field_by_field_then_the_object_version_and_type() {
    use crate::wire::WireError;
    let mut rng = ChaCha20Rng::from_seed([12; 32]);
    let (alice, _) = pair(&mut rng, 1, 1);
    let routing = Routing {
        sender_account: alice.key(),
        sender_device: *alice.devices[0].device_id(),
        conversation: alice.key(),
        sender_list_version: 1,
        conversation_list_version: 1,
        session_created: 7,
        session_heal: true,
        kind: ContentKind::Heal,
    };
    let header = routing.to_bytes();
    let with = |at: usize, b: u8, object: &[u8]| {
        let mut p = header.clone();
        p[at] = b;
        p.extend_from_slice(object);
        p
    };
    let object = [0x01, message_type::RATCHET_MESSAGE, 0, 0];
    let wire = |e| Err(SessionsError::Wire(e));
    // A good header round-trips and hands over the object unchanged.
    let good = with(0, 0x01, &object);
    assert_eq!(Routing::split(&good), Ok((routing, &object[..])));
    // Each field is checked before the next is read: a bad format byte in
    // a short payload is reported, not the truncation.
    assert_eq!(
        Routing::split(&with(0, 0x02, &object)[..50]),
        wire(WireError::InvalidValue {
            field: "routing format"
        })
    );
    assert_eq!(
        Routing::split(&header[..50]),
        wire(WireError::Truncated {
            field: "sender device"
        })
    );
    let mut bad_key = good.clone();
    bad_key[1..33].copy_from_slice(&[0; 32]);
    bad_key[1] = 1;
    assert_eq!(
        Routing::split(&bad_key),
        wire(WireError::InvalidEd25519Key {
            field: "sender account"
        })
    );
    assert_eq!(
        Routing::split(&with(121, 0x03, &object)),
        wire(WireError::InvalidFlags {
            field: "session flags",
            flags: 0x03
        })
    );
    assert_eq!(
        Routing::split(&with(122, 0x00, &object)),
        wire(WireError::InvalidValue {
            field: "content kind"
        })
    );
    // Then the object's version byte, then its type byte.
    assert_eq!(
        Routing::split(&header),
        wire(WireError::Truncated {
            field: "message version"
        })
    );
    assert_eq!(
        Routing::split(&with(0, 0x01, &[0x02])),
        wire(WireError::UnsupportedVersion { version: 0x02 })
    );
    assert_eq!(
        Routing::split(&with(0, 0x01, &[0x01])),
        wire(WireError::Truncated {
            field: "message type"
        })
    );
    assert_eq!(
        Routing::split(&with(0, 0x01, &[0x01, message_type::ENVELOPE])),
        wire(WireError::UnexpectedType {
            expected: message_type::RATCHET_MESSAGE,
            actual: message_type::ENVELOPE
        })
    );
}

#[test]
fn messages_crossing_a_simultaneous_start_decrypt_in_the_losing_session() {
    for seed in 20..26u8 {
        let (mut rng, mut alice, mut bob, a1, b1) = crossing_first_messages(seed);
        let (a_id, b_id) = (*alice.devices[0].device_id(), *bob.devices[0].device_id());
        // Each sends a second message in its own new session before seeing
        // the other's: one of them is in the session that loses.
        let a2 = alice.devices[0]
            .encrypt(&mut rng, &bob.key(), b"a2", 51)
            .unwrap();
        let b2 = bob.devices[0]
            .encrypt(&mut rng, &alice.key(), b"b2", 51)
            .unwrap();
        assert_eq!(a2.sessions_started + b2.sessions_started, 0);
        for (to, env, want) in [
            (0, &a1, b"a1"),
            (1, &b1, b"b1"),
            (0, &a2, b"a2"),
            (1, &b2, b"b2"),
        ] {
            let got = if to == 0 {
                bob.devices[0].decrypt(&env.envelopes[0]).unwrap()
            } else {
                alice.devices[0].decrypt(&env.envelopes[0]).unwrap()
            };
            assert_eq!(&got.content, want);
        }
        assert_eq!(
            alice.devices[0].active_session(&bob.key(), &b_id),
            bob.devices[0].active_session(&alice.key(), &a_id)
        );
    }
}

#[test]
fn simultaneous_heals_converge_on_the_preferred_session() {
    let mut rng = ChaCha20Rng::from_seed([14; 32]);
    let (mut alice, mut bob) = pair(&mut rng, 1, 1);
    let (a_id, b_id) = (*alice.devices[0].device_id(), *bob.devices[0].device_id());
    round_trip(&mut rng, &mut alice, &mut bob, 1);
    // Both decide the pair is broken at the same moment (Bob's clock ahead).
    let ha = alice.devices[0]
        .heal_device(&mut rng, &bob.key(), &b_id, 100)
        .unwrap();
    let hb = bob.devices[0]
        .heal_device(&mut rng, &alice.key(), &a_id, 105)
        .unwrap();
    bob.devices[0].decrypt(&ha.envelopes[0]).unwrap();
    alice.devices[0].decrypt(&hb.envelopes[0]).unwrap();
    // Both healing sessions are unanswered on their own side, so the order
    // decides: the later one (Bob's) on both sides.
    let at_alice = alice.devices[0].active_session(&bob.key(), &b_id).unwrap();
    assert_eq!(
        Some(at_alice),
        bob.devices[0].active_session(&alice.key(), &a_id)
    );
    assert_eq!(
        at_alice,
        all_transcripts(&bob.devices[0], &alice.key(), &a_id)[0],
        "Bob's own healing session stays active"
    );
    let m = alice.devices[0]
        .encrypt(&mut rng, &bob.key(), b"3", 106)
        .unwrap();
    assert_eq!(
        bob.devices[0].decrypt(&m.envelopes[0]).unwrap().content,
        b"3"
    );
}

#[test]
fn a_repeated_prekey_message_decrypts_in_the_session_it_created() {
    let mut rng = ChaCha20Rng::from_seed([15; 32]);
    let (mut alice, mut bob) = pair(&mut rng, 1, 1);
    let a_id = *alice.devices[0].device_id();
    let m1 = alice.devices[0]
        .encrypt(&mut rng, &bob.key(), b"1", 1)
        .unwrap();
    let m2 = alice.devices[0]
        .encrypt(&mut rng, &bob.key(), b"2", 2)
        .unwrap();
    let m3 = alice.devices[0]
        .encrypt(&mut rng, &bob.key(), b"3", 3)
        .unwrap();
    assert!(
        bob.devices[0]
            .decrypt(&m1.envelopes[0])
            .unwrap()
            .new_session
    );
    let got = bob.devices[0].decrypt(&m3.envelopes[0]).unwrap();
    assert!(!got.new_session);
    assert_eq!(got.content, b"3");
    assert_eq!(bob.devices[0].sessions_with(&alice.key(), &a_id), 1);
    // m2 was skipped: its key is held until it arrives.
    assert_eq!(bob.devices[0].skipped_keys_held(), 1);
    assert_eq!(
        bob.devices[0].decrypt(&m2.envelopes[0]).unwrap().content,
        b"2"
    );
    assert_eq!(bob.devices[0].skipped_keys_held(), 0);
}

#[test]
fn an_archived_session_is_promoted_only_if_preferred_and_not_stale() {
    use super::set::{Entry, SessionSet};
    let mut rng = ChaCha20Rng::from_seed([16; 32]);
    let alice = DeviceIdentity::generate(&mut rng);
    let bob = DeviceIdentity::generate(&mut rng);
    let mut store = PrekeyStore::new(&mut rng, &bob);
    let bundle = store.bundle(&bob, None, None).unwrap().verify().unwrap();
    // Two sessions Alice started; Bob holds the older as active and the
    // newer archived (as after an eviction-free reordering).
    let mut sessions = Vec::new();
    let mut firsts = Vec::new();
    for _ in 0..2 {
        let mut s = Session::initiate(&mut rng, &alice, &bundle).unwrap();
        let first = s.encrypt(&mut rng, b"hi", b"").unwrap();
        let (b, _) = Session::respond(&bob, &mut store, &first, b"").unwrap();
        firsts.push(s);
        sessions.push(b);
    }
    let newer = sessions.pop().unwrap();
    let older = sessions.pop().unwrap();
    for stale in [true, false] {
        let mut set = SessionSet::default();
        let older = Session::from_stored(&older.to_stored()).unwrap();
        let newer = Session::from_stored(&newer.to_stored()).unwrap();
        set.active = Some(Entry {
            session: older,
            created: 1,
            stale: false,
            heal: false,
        });
        set.archived.push_back(Entry {
            session: newer,
            created: 2,
            stale,
            heal: false,
        });
        let mut sender = Session::from_stored(&firsts[1].to_stored()).unwrap();
        let msg = sender.encrypt(&mut rng, b"in the newer one", b"").unwrap();
        let (plain, used) = set.decrypt(&msg, b"").unwrap();
        assert_eq!(plain, b"in the newer one");
        assert_eq!(used, super::set::Used::Archived { promoted: !stale });
        assert_eq!(
            set.active.as_ref().unwrap().created,
            if stale { 1 } else { 2 }
        );
        assert_eq!(set.len(), 2);
    }
}

#[test]
fn a_late_prekey_message_of_an_older_heal_does_not_displace_the_newer_heal() {
    // Found by the simulator: Alice's first healing session goes unanswered,
    // a day later she heals again; Bob gets the second heal first and the
    // first one's prekey message late.
    let mut rng = ChaCha20Rng::from_seed([17; 32]);
    let (mut alice, mut bob) = pair(&mut rng, 1, 1);
    let (a_id, b_id) = (*alice.devices[0].device_id(), *bob.devices[0].device_id());
    round_trip(&mut rng, &mut alice, &mut bob, 1);
    let first = alice.devices[0]
        .heal_device(&mut rng, &bob.key(), &b_id, 10)
        .unwrap();
    let second = alice.devices[0]
        .heal_device(&mut rng, &bob.key(), &b_id, 10 + HEAL_RETRY_SECS)
        .unwrap();
    assert_eq!(second.sessions_started, 1);
    bob.devices[0].decrypt(&second.envelopes[0]).unwrap();
    let newer = bob.devices[0].active_session(&alice.key(), &a_id);
    assert!(
        bob.devices[0]
            .decrypt(&first.envelopes[0])
            .unwrap()
            .new_session
    );
    assert_eq!(bob.devices[0].active_session(&alice.key(), &a_id), newer);
    assert_eq!(
        newer,
        alice.devices[0].active_session(&bob.key(), &b_id),
        "both sides on Alice's newer heal"
    );
    let m = bob.devices[0]
        .encrypt(&mut rng, &alice.key(), b"back", 10 + HEAL_RETRY_SECS + 1)
        .unwrap();
    assert_eq!(
        alice.devices[0].decrypt(&m.envelopes[0]).unwrap().content,
        b"back"
    );
}
