//! The Rust side of the binding's overhead measurement: one same-chain
//! message (Alice's `send` and Bob's `receive`, in a session both sides
//! already use) through `session_ratchet::client::Device` natively, each
//! device over a `MemoryStore` and the OS RNG. `bench/same-chain.mjs` does
//! the same through the JavaScript binding; `run-tests.sh` runs both in one
//! run and prints the ratio.
//!
//! `cargo run --release -p session-ratchet-wasm --example same_chain -- [batches] [batch]`
//! prints one line: `rust same-chain message: p10 <µs> us (<batches> batches of <batch>)`.
#![allow(missing_docs)]

use session_ratchet::client::{Device, DeviceInfo, MemoryStore};
use session_ratchet::rand_core::UnwrapErr;
use session_ratchet::ratchet::StorageKey;
use std::error::Error;
use std::time::Instant;

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let batches: usize = args.next().map_or(Ok(60), |a| a.parse())?;
    let batch: usize = args.next().map_or(Ok(50), |a| a.parse())?;
    let rng = || Box::new(UnwrapErr(getrandom::SysRng));
    let key = StorageKey::from_bytes([7; 32]);
    let now = 1_767_225_600;
    let (mut alice, _) = Device::create_account(
        Box::new(MemoryStore::new()),
        &key,
        rng(),
        DeviceInfo::new("alice"),
        now,
    )?;
    let (mut bob, _) = Device::create_account(
        Box::new(MemoryStore::new()),
        &key,
        rng(),
        DeviceInfo::new("bob"),
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
    let (a, b) = (alice.account_key(), bob.account_key());
    // Establish the session both ways, then measure Alice's chain.
    for out in alice.send(&b, b"hello", now)? {
        bob.receive(&out.bytes)?;
    }
    for out in bob.send(&a, b"hello back", now)? {
        alice.receive(&out.bytes)?;
    }
    let content = [0x61u8; 64];
    let mut per_message = Vec::with_capacity(batches);
    for _ in 0..batches {
        let start = Instant::now();
        for _ in 0..batch {
            for out in alice.send(&b, &content, now)? {
                let got = bob.receive(&out.bytes)?;
                if got.content.len() != content.len() {
                    return Err("wrong content".into());
                }
            }
        }
        per_message.push(start.elapsed().as_secs_f64() * 1e6 / batch as f64);
    }
    per_message.sort_by(f64::total_cmp);
    let p10 = per_message
        .get(per_message.len() / 10)
        .copied()
        .ok_or("no batches")?;
    println!("rust same-chain message: p10 {p10:.1} us ({batches} batches of {batch})");
    Ok(())
}
