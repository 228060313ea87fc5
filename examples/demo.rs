//! A short, readable run of session-ratchet between two devices: the hybrid
//! handshake, then a conversation over the hybrid double ratchet with a lost
//! and a late message and a completed post-quantum epoch.
//!
//! `cargo run --release --example demo`
//!
//! Prints sizes and what each side derived. It prints no secret: only public
//! values and whether both sides' keys agree.

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use session_ratchet::dh::X25519_KEY_LEN;
use session_ratchet::handshake::{self, PrekeyMessage};
use session_ratchet::identity::{DeviceIdentity, SIGNATURE_LEN};
use session_ratchet::kem::{MLKEM_CIPHERTEXT_LEN, MLKEM_PUBLIC_KEY_LEN};
use session_ratchet::prekey::{PrekeyBundle, PrekeyStore};
use session_ratchet::ratchet::{RatchetError, Session};

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

    conversation(&mut rng, &alice, &bob, &mut bob_store)
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
