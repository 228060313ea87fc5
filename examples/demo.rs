//! A short, readable run of session-ratchet: the hybrid handshake between
//! two devices, a conversation over the hybrid double ratchet with a lost and
//! a late message and completed post-quantum epochs, then two accounts with
//! several devices: a laptop linked with the emoji SAS, fan-out envelopes,
//! and a revocation.
//!
//! `cargo run --release --example demo`
//!
//! Prints sizes and what each side derived. It prints no secret: only public
//! values and whether both sides' keys agree.

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use session_ratchet::account::Account;
use session_ratchet::device::link::{LinkGrant, LinkInitiator, PendingLink};
use session_ratchet::device::list::{
    ClientVersion, DeviceEntry, DeviceId, DeviceListDraft, Platform, SignedDeviceList,
    VerifiedDeviceList,
};
use session_ratchet::device::record::PrekeyRecord;
use session_ratchet::device::sas::Sas;
use session_ratchet::dh::X25519_KEY_LEN;
use session_ratchet::envelope::Envelope;
use session_ratchet::handshake::{self, PrekeyMessage};
use session_ratchet::identity::{DeviceIdentity, SIGNATURE_LEN};
use session_ratchet::kem::{MLKEM_CIPHERTEXT_LEN, MLKEM_PUBLIC_KEY_LEN};
use session_ratchet::prekey::{PrekeyBundle, PrekeyStore};
use session_ratchet::ratchet::{RatchetError, Session};
use session_ratchet::sessions::{SessionManager, SessionsError};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A seeded RNG makes the run reproducible. A client injects an
    // OS-backed `CryptoRng` instead.
    let mut rng = ChaCha20Rng::from_seed(*b"session-ratchet demo, seeded rng");
    println!(
        "session-ratchet demo (ML-KEM backend: {})\n",
        session_ratchet::kem::backend_name()
    );

    // Bob's device publishes its prekeys, then goes offline.
    let bob = DeviceIdentity::generate(&mut rng);
    let mut bob_store = PrekeyStore::new(&mut rng, &bob);
    let one_time = bob_store.generate_one_time_prekeys(&mut rng, &bob, 5)?;
    let one_time_kem = bob_store.generate_one_time_kem_prekeys(&mut rng, &bob, 5)?;
    let bundle = bob_store.bundle(
        &bob,
        one_time.first().map(|k| k.id()),
        one_time_kem.first().map(|k| k.id()),
    )?;
    let bundle_bytes = bundle.to_bytes();
    println!(
        "Bob publishes a prekey bundle: {} bytes",
        bundle_bytes.len()
    );
    let signed_kem = 4 + MLKEM_PUBLIC_KEY_LEN + SIGNATURE_LEN;
    println!(
        "  identity (Ed25519 + X25519)        {} bytes",
        2 * X25519_KEY_LEN
    );
    println!(
        "  signed X25519 prekey               {} bytes (id, key, signature)",
        4 + X25519_KEY_LEN + SIGNATURE_LEN
    );
    println!(
        "  last-resort ML-KEM-768 prekey      {signed_kem} bytes ({MLKEM_PUBLIC_KEY_LEN}-byte key, signed)"
    );
    println!(
        "  one-time X25519 prekey             {} bytes",
        4 + X25519_KEY_LEN
    );
    println!("  one-time ML-KEM-768 prekey         {signed_kem} bytes (signed)\n");

    // Alice's device fetches it, checks every signature and ML-KEM key, and
    // runs the initiator side.
    let alice = DeviceIdentity::generate(&mut rng);
    let verified = PrekeyBundle::from_bytes(&bundle_bytes)?.verify_for(bob.public())?;
    let (alice_seed, header) = handshake::initiate(&mut rng, &alice, &verified)?;
    let first = header
        .wrap(b"(the first ratchet message goes here)".to_vec())
        .to_bytes();
    println!("Alice sends a prekey message: {} bytes", first.len());
    println!(
        "  header: identity 64, base key 32, prekey ids, ML-KEM ciphertext {MLKEM_CIPHERTEXT_LEN}"
    );
    println!("  (every message carries this header until Bob replies)\n");

    // Bob comes online and runs the responder side. Nothing is consumed
    // until he commits (after the ratchet authenticates the payload).
    let msg = PrekeyMessage::from_bytes(&first)?;
    let pending = handshake::respond(&bob, &bob_store, msg.header())?;
    let before = bob_store.one_time_prekey_ids().len();
    let bob_seed = pending.commit(&mut bob_store)?;
    println!(
        "Bob accepts: one-time X25519 prekeys {} -> {}",
        before,
        bob_store.one_time_prekey_ids().len()
    );

    println!("\nWhat each side derived:");
    for (who, seed) in [("Alice", &alice_seed), ("Bob  ", &bob_seed)] {
        println!(
            "  {who} role={:?} transcript={}",
            seed.role(),
            hex(seed.transcript_hash())
        );
    }
    println!(
        "  root keys equal:          {}",
        alice_seed.root_key() == bob_seed.root_key()
    );
    println!(
        "  first chain keys equal:   {}",
        alice_seed.initiator_chain_key() == bob_seed.initiator_chain_key()
    );
    println!(
        "  header keys equal:        {}",
        alice_seed.initiator_header_key() == bob_seed.initiator_header_key()
            && alice_seed.responder_header_key() == bob_seed.responder_header_key()
    );
    println!(
        "  secrets printed:          none (Debug of a key prints {:?})",
        alice_seed.root_key()
    );

    // The same message again is a replay: its one-time prekey is gone.
    match handshake::respond(&bob, &bob_store, msg.header()) {
        Err(e) => println!("\nReplaying Alice's first message: rejected ({e})"),
        Ok(_) => println!("\nReplaying Alice's first message: accepted (unexpected!)"),
    }

    conversation(&mut rng, &alice, &bob, &mut bob_store)?;
    multi_device(&mut rng)
}

/// A conversation over the double ratchet.
fn conversation(
    rng: &mut ChaCha20Rng,
    alice: &DeviceIdentity,
    bob: &DeviceIdentity,
    bob_store: &mut PrekeyStore,
) -> Result<(), Box<dyn std::error::Error>> {
    println!("\n--- A conversation over the hybrid double ratchet ---");
    let otp = bob_store.one_time_prekey_ids().first().copied();
    let bundle = bob_store.bundle(bob, otp, None)?.verify_for(bob.public())?;
    let mut a = Session::initiate(rng, alice, &bundle)?;
    let first = a.encrypt(rng, b"Hi Bob, it's Alice.", b"")?;
    println!(
        "Alice -> Bob  {:>5} bytes  (prekey message: handshake header + first message)",
        first.len()
    );
    let (mut b, text) = Session::respond(bob, bob_store, &first, b"")?;
    println!("Bob reads:    {:?}", String::from_utf8_lossy(&text));

    let lines: [(bool, &str); 6] = [
        (false, "Hi Alice! Good to hear from you."),
        (true, "Did the documents arrive?"),
        (true, "I sent them last night."),
        (false, "Yes, reading them now."),
        (true, "Great. Call me when done."),
        (false, "Will do."),
    ];
    for (from_alice, line) in lines {
        let (s, r, who) = if from_alice {
            (&mut a, &mut b, "Alice -> Bob ")
        } else {
            (&mut b, &mut a, "Bob -> Alice ")
        };
        let m = s.encrypt(rng, line.as_bytes(), b"")?;
        let text = r.decrypt(&m, b"")?;
        println!(
            "{who} {:>5} bytes  {:?}",
            m.len(),
            String::from_utf8_lossy(&text)
        );
    }

    // One message lost, one arriving late.
    let lost = a.encrypt(rng, b"(this one is lost)", b"")?;
    let late = a.encrypt(rng, b"This arrives late.", b"")?;
    let on_time = a.encrypt(rng, b"This arrives first.", b"")?;
    drop(lost);
    println!("Alice sends three; the first is lost, the second is delayed:");
    println!(
        "  Bob reads    {:?}",
        String::from_utf8_lossy(&b.decrypt(&on_time, b"")?)
    );
    println!(
        "  Bob reads    {:?} (late, from a skipped key)",
        String::from_utf8_lossy(&b.decrypt(&late, b"")?)
    );
    match b.decrypt(&late, b"") {
        Err(RatchetError::DuplicateMessage) => {
            println!("  the late message again: rejected as a duplicate")
        }
        other => println!("  the late message again: {other:?} (unexpected!)"),
    }
    println!(
        "  Bob still holds {} skipped key(s) (for the lost message)",
        b.skipped_keys_held()
    );

    // Keep talking until post-quantum epochs have completed on both sides.
    let mut n = 0;
    while a.pq_epochs_mixed() < 2 || b.pq_epochs_mixed() < 2 {
        let (s, r) = if n % 2 == 0 {
            (&mut a, &mut b)
        } else {
            (&mut b, &mut a)
        };
        let m = s.encrypt(rng, b"...", b"")?;
        r.decrypt(&m, b"")?;
        n += 1;
    }
    println!(
        "After {n} more short messages: {} PQ epochs mixed by Alice, {} by Bob",
        a.pq_epochs_mixed(),
        b.pq_epochs_mixed()
    );
    println!("  (each mixes a fresh ML-KEM-768 secret into the root key: a recording");
    println!("   quantum adversary, even one who had stolen earlier state, is locked out)");
    let stats = a.pq_stats();
    println!(
        "  Alice sent {} messages carrying {} bytes of PQ keys/ciphertexts, mostly in padding",
        stats.messages_sent, stats.section_bytes_sent
    );
    println!(
        "  Stored session sizes: Alice {} bytes, Bob {} bytes",
        a.to_stored().as_bytes().len(),
        b.to_stored().as_bytes().len()
    );
    println!(
        "  Every message is a multiple of {} bytes on the wire.",
        a.padding().bucket()
    );
    Ok(())
}

fn emoji(sas: &Sas) -> Result<String, Box<dyn std::error::Error>> {
    Ok(sas
        .short()?
        .iter()
        .map(|(e, name)| format!("{e} {name}"))
        .collect::<Vec<_>>()
        .join("  "))
}

/// Envelope size and slot count, for printing.
fn shape(envelope: &[u8]) -> Result<String, Box<dyn std::error::Error>> {
    let e = Envelope::from_bytes(envelope)?;
    Ok(format!(
        "{} bytes, {} slots of {} bytes",
        e.len(),
        e.slot_count(),
        e.body_len()
    ))
}

/// Two accounts. Alice has a phone and links a laptop (emoji SAS); every
/// message reaches every device in one envelope; then the laptop is revoked.
fn multi_device(rng: &mut ChaCha20Rng) -> Result<(), Box<dyn std::error::Error>> {
    println!("\n--- Multi-device: Alice's phone and laptop, Bob's phone ---");
    let v = ClientVersion {
        major: 1,
        minor: 0,
        patch: 0,
    };
    let mut now = 1_767_225_600; // 2026-01-01

    // An account with one device; the device's manager holds everything it
    // needs to talk to every device of every contact.
    let (alice_account, _) = Account::generate(rng);
    let (bob_account, _) = Account::generate(rng);
    let first_device =
        |rng: &mut ChaCha20Rng,
         account: &Account,
         name: &str|
         -> Result<(SessionManager, SignedDeviceList), Box<dyn std::error::Error>> {
            let identity = DeviceIdentity::generate(rng);
            let id = DeviceId::generate(rng);
            let mut draft = DeviceListDraft::first(account);
            draft.add_device(DeviceEntry::new(
                id,
                *identity.public(),
                Platform::Android,
                name,
                v,
                now,
            ))?;
            let list = draft.sign(account)?;
            let held =
                VerifiedDeviceList::trust_first_with_key(list.clone(), &account.public_key())?;
            let store = PrekeyStore::new(rng, &identity);
            Ok((SessionManager::new(identity, id, held, store)?, list))
        };
    let (mut alice_phone, alice_v1) = first_device(rng, &alice_account, "Alice's phone")?;
    let (mut bob_phone, bob_v1) = first_device(rng, &bob_account, "Bob's phone")?;
    println!("Alice is {}", alice_account.session_id());
    println!("Bob   is {}", bob_account.session_id());
    // Each learns the other's device list, checked against the Session ID.
    alice_phone.add_contact(VerifiedDeviceList::trust_first(
        bob_v1.clone(),
        &bob_account.session_id(),
    )?)?;
    bob_phone.add_contact(VerifiedDeviceList::trust_first(
        alice_v1,
        &alice_account.session_id(),
    )?)?;

    // Alice links her laptop: it shows a QR code with its request, the
    // phone scans it and answers; both derive the SAS from the transcript.
    let laptop = DeviceIdentity::generate(rng);
    let (initiator, request) =
        LinkInitiator::start(rng, &laptop, Platform::Desktop, "Alice's laptop", v);
    let (pending, response) =
        PendingLink::respond(rng, alice_phone.identity(), &alice_account, &request)?;
    let awaiting = initiator.receive_response(&response)?;
    println!(
        "Linking the laptop: request {} bytes, response {} bytes (X-Wing: X25519 + ML-KEM-768)",
        request.to_bytes().len(),
        response.to_bytes().len()
    );
    println!("  phone shows   {}", emoji(pending.sas())?);
    println!("  laptop shows  {}", emoji(awaiting.sas())?);
    let same = pending.sas() == awaiting.sas();
    println!(
        "  the user compares them: {}",
        if same {
            "the same, approve"
        } else {
            "DIFFERENT, reject"
        }
    );
    if !same {
        return Err("SAS mismatch".into());
    }
    now += 60;
    let (payload, alice_v2) = pending
        .approve(
            rng,
            &alice_account,
            alice_phone.own_list(),
            now,
            LinkGrant::ShareAccountSeed,
            &alice_phone.contacts(),
        )
        .map_err(|e| e.error)?;
    alice_phone.update_device_list(&alice_v2, &[])?;
    let linked = awaiting.open_payload(&payload)?;
    println!(
        "  approved: device list v{} ({} bytes) lists {} devices; payload {} bytes",
        alice_v2.version(),
        alice_v2.to_bytes().len(),
        alice_v2.devices().len(),
        payload.to_bytes().len()
    );
    let laptop_store = PrekeyStore::new(rng, &laptop);
    let laptop_id = linked.device_id;
    let mut alice_laptop = SessionManager::new(laptop, laptop_id, linked.list, laptop_store)?;
    println!(
        "  the laptop holds the account key: {}; contacts handed over: {}",
        linked.account.is_some(),
        linked.contacts.len()
    );
    // The laptop has no sessions: it learns Bob's list and starts fresh ones.
    alice_laptop.add_contact(VerifiedDeviceList::trust_first(
        bob_v1,
        &bob_account.session_id(),
    )?)?;

    // Both accounts publish prekey records (one slot per device, padded to 4).
    let publish = |rng: &mut ChaCha20Rng,
                   list: &VerifiedDeviceList,
                   devices: &[&SessionManager]|
     -> Result<PrekeyRecord, Box<dyn std::error::Error>> {
        let bundles = devices
            .iter()
            .map(|d| d.bundle())
            .collect::<Result<Vec<_>, _>>()?;
        Ok(PrekeyRecord::build(rng, list, &bundles)?)
    };
    let alice_record = publish(
        rng,
        &alice_phone.own_list().clone(),
        &[&alice_phone, &alice_laptop],
    )?;
    let bob_record = publish(rng, &bob_phone.own_list().clone(), &[&bob_phone])?;
    println!(
        "Prekey records: Alice {} bytes ({} slots), Bob {} bytes ({} slots)",
        alice_record.to_bytes().len(),
        alice_record.slot_count(),
        bob_record.to_bytes().len(),
        bob_record.slot_count()
    );
    let (ak, bk) = (alice_account.public_key(), bob_account.public_key());
    bob_phone.update_device_list(&alice_v2, &[])?;
    for d in [&mut alice_phone, &mut alice_laptop] {
        d.add_prekey_record(&ak, &alice_record)?;
        d.add_prekey_record(&bk, &bob_record)?;
    }
    bob_phone.add_prekey_record(&ak, &alice_record)?;

    // Bob writes once; the envelope holds a slot for each of Alice's devices.
    now += 60;
    let out = bob_phone.encrypt(rng, &ak, b"Hi Alice, got your new laptop?", now)?;
    let env = out.envelopes.first().ok_or("no envelope")?;
    println!(
        "Bob -> Alice: one envelope, {} ({} new sessions)",
        shape(env)?,
        out.sessions_started
    );
    for (name, device) in [("phone", &mut alice_phone), ("laptop", &mut alice_laptop)] {
        let got = device.decrypt(env)?;
        println!(
            "  Alice's {name:<6} reads {:?}",
            String::from_utf8_lossy(&got.content)
        );
    }
    now += 60;
    let out = alice_laptop.encrypt(rng, &bk, b"Yes! Writing from it now.", now)?;
    let env = out.envelopes.first().ok_or("no envelope")?;
    println!(
        "Alice's laptop -> Bob: {} (Bob's phone and Alice's phone)",
        shape(env)?
    );
    let got = bob_phone.decrypt(env)?;
    println!(
        "  Bob reads            {:?}",
        String::from_utf8_lossy(&got.content)
    );
    let copy = alice_phone.decrypt(env)?;
    println!(
        "  Alice's phone files a copy under the conversation with Bob: {}",
        copy.conversation == bk
    );

    // The laptop is stolen. The phone revokes it; Bob accepts the new list.
    now += 3600;
    let v3 = alice_phone.revoke_device(&alice_account, &laptop_id, now)?;
    let change = bob_phone.update_device_list(&v3, &[])?;
    println!(
        "The laptop is stolen: the phone publishes device list v{} (laptop tombstoned); Bob drops {} device",
        v3.version(),
        change.removed.len()
    );
    now += 60;
    let out = bob_phone.encrypt(rng, &ak, b"Sorry about the laptop.", now)?;
    let env = out.envelopes.first().ok_or("no envelope")?;
    println!(
        "  Bob -> Alice: {}; phone reads {:?}",
        shape(env)?,
        String::from_utf8_lossy(&alice_phone.decrypt(env)?.content)
    );
    match alice_laptop.decrypt(env) {
        Err(SessionsError::NotARecipient) => {
            println!("  the stolen laptop finds no slot for itself: NotARecipient")
        }
        other => println!("  the stolen laptop: {other:?} (unexpected!)"),
    }
    let forged = alice_laptop.encrypt(rng, &bk, b"Send me the files again?", now)?;
    match bob_phone.decrypt(forged.envelopes.first().ok_or("no envelope")?) {
        Err(e @ SessionsError::RevokedSender { .. }) => {
            println!("  the thief writes to Bob: rejected ({e})")
        }
        other => println!("  the thief writes to Bob: {other:?} (unexpected!)"),
    }
    println!(
        "Stored device state: Alice's phone {} bytes, Bob's phone {} bytes",
        alice_phone.to_stored().len(),
        bob_phone.to_stored().len()
    );
    Ok(())
}
