//! The Rust side of the binding-overhead measurement: one same-chain
//! message (Alice's `send` and Bob's `receive`, after the session is
//! established) on the Rust `client::Device`, timed exactly as
//! `tests/kotlin/Overhead.kt` times it through Kotlin/JNA.
//!
//! `cargo run --release -p session-ratchet-uniffi --example overhead -- [batches] [per_batch]`
//! prints `rust: p10 N ns/message, median M ns/message`; the p10 over many
//! short batches is the figure compared (the least disturbed batches on a
//! shared machine).

use session_ratchet::client::{Device, DeviceInfo, MemoryStore};
use session_ratchet::rand_core::{CryptoRng, UnwrapErr};
use session_ratchet::ratchet::StorageKey;
use std::hint::black_box;
use std::time::Instant;

fn os_rng() -> Box<dyn CryptoRng + Send> {
    Box::new(UnwrapErr(getrandom::SysRng))
}

fn arg(n: usize, default: usize) -> usize {
    std::env::args()
        .nth(n)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (batches, per_batch) = (arg(1, 300), arg(2, 20).max(1));
    let now = 1_767_225_600;
    let key = StorageKey::from_bytes([7; 32]);
    let info = |name: &str| DeviceInfo::new(name);
    let (mut alice, _) = Device::create_account(
        Box::new(MemoryStore::new()),
        &key,
        os_rng(),
        info("alice"),
        now,
    )?;
    let (mut bob, _) = Device::create_account(
        Box::new(MemoryStore::new()),
        &key,
        os_rng(),
        info("bob"),
        now,
    )?;
    alice.add_contact(
        &bob.session_id(),
        &bob.device_list(),
        Some(&bob.prekey_record()?),
    )?;
    bob.add_contact(
        &alice.session_id(),
        &alice.device_list(),
        Some(&alice.prekey_record()?),
    )?;
    let (alice_key, bob_key) = (alice.account_key(), bob.account_key());
    // Establish the session both ways, so what follows is one chain.
    for out in alice.send(&bob_key, b"hello", now)? {
        bob.receive(&out.bytes)?;
    }
    for out in bob.send(&alice_key, b"hello back", now)? {
        alice.receive(&out.bytes)?;
    }
    let content = [0x61u8; 32];
    let mut one = || -> Result<(), Box<dyn std::error::Error>> {
        for out in alice.send(&bob_key, &content, now)? {
            black_box(bob.receive(&out.bytes)?);
        }
        Ok(())
    };
    for _ in 0..per_batch * 10 {
        one()?;
    }
    let mut per_message: Vec<f64> = Vec::with_capacity(batches);
    for _ in 0..batches {
        let t = Instant::now();
        for _ in 0..per_batch {
            one()?;
        }
        per_message.push(t.elapsed().as_nanos() as f64 / per_batch as f64);
    }
    per_message.sort_by(f64::total_cmp);
    let at = |q: usize| {
        per_message
            .get(per_message.len() * q / 100)
            .copied()
            .unwrap_or(0.0)
    };
    println!(
        "rust: p10 {:.0} ns/message, median {:.0} ns/message ({batches} batches of {per_batch})",
        at(10),
        at(50)
    );
    Ok(())
}
