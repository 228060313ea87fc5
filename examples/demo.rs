//! A short, readable run of the hybrid handshake between two devices.
//!
//! `cargo run --release --example demo`
//!
//! Prints the sizes of what travels and what each side derived. It prints no
//! secret: only public values and whether both sides' keys agree.

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use session_ratchet::dh::X25519_KEY_LEN;
use session_ratchet::handshake::{self, PrekeyMessage};
use session_ratchet::identity::{DeviceIdentity, SIGNATURE_LEN};
use session_ratchet::kem::{MLKEM_CIPHERTEXT_LEN, MLKEM_PUBLIC_KEY_LEN};
use session_ratchet::prekey::{PrekeyBundle, PrekeyStore};

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
    Ok(())
}
