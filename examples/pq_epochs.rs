//! Measures the ML-KEM ratchet (PQ epochs) under different traffic patterns.
//!
//! `cargo run --release --example pq_epochs -- --json [--messages N] [--seed S]`
//!
//! For each traffic pattern (`lockstep`, `5:1`, `20:1`, `one-sided`) and loss
//! rate (0 and 0.2), two established sessions exchange text messages of 40–200
//! bytes (drawn from a seeded RNG). Lost messages are never delivered; the
//! rest arrive in order. Reported per run:
//!
//! - `epochs_completed`: PQ epochs whose secret both sides have mixed;
//! - `median_messages_per_epoch`: median number of messages sent (both
//!   directions) between consecutive epoch completions, the first counted
//!   from the start;
//! - `mean_pq_bytes_per_message`: mean bytes the PQ ratchet adds to a message
//!   beyond the padded size the same message would have without PQ data;
//! - `mean_pq_section_bytes_per_message`: mean PQ bytes carried per message,
//!   most of them in padding the message would carry anyway;
//! - `mean_wire_bytes_per_message`: mean message size on the wire.
//!
//! The sessions are established first (handshake, one message each way,
//! which also carries each side's first ML-KEM key in full); those two
//! messages are not counted.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use session_ratchet::identity::DeviceIdentity;
use session_ratchet::prekey::PrekeyStore;
use session_ratchet::ratchet::{MIN_MESSAGE_LEN, PaddingPolicy, Session};

struct Run {
    pattern: &'static str,
    loss: f64,
    messages: usize,
    epochs: usize,
    median: Option<f64>,
    pq_added: f64,
    pq_section: f64,
    wire: f64,
}

fn established(seed: u64) -> (Session, Session, ChaCha20Rng, ChaCha20Rng) {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let alice = DeviceIdentity::generate(&mut rng);
    let bob = DeviceIdentity::generate(&mut rng);
    let mut store = PrekeyStore::new(&mut rng, &bob);
    let bundle = store.bundle(&bob, None, None).unwrap().verify().unwrap();
    let mut ra = ChaCha20Rng::seed_from_u64(seed ^ 0xA);
    let mut rb = ChaCha20Rng::seed_from_u64(seed ^ 0xB);
    let mut a = Session::initiate(&mut ra, &alice, &bundle).unwrap();
    let m = a.encrypt(&mut ra, b"hello", b"").unwrap();
    let (mut b, _) = Session::respond(&bob, &mut store, &m, b"").unwrap();
    let r = b.encrypt(&mut rb, b"hi", b"").unwrap();
    a.decrypt(&r, b"").unwrap();
    (a, b, ra, rb)
}

/// Whether message `i` of the pattern is sent by Alice.
fn alice_sends(pattern: &str, i: usize) -> bool {
    match pattern {
        "lockstep" => i.is_multiple_of(2),
        "5:1" => i % 6 != 5,
        "20:1" => i % 21 != 20,
        _ => true,
    }
}

fn run(pattern: &'static str, loss: f64, messages: usize, seed: u64) -> Run {
    let (mut a, mut b, mut ra, mut rb) = established(seed);
    let mut net = ChaCha20Rng::seed_from_u64(seed ^ 0x5EED);
    let bucket = usize::from(PaddingPolicy::DEFAULT.bucket());
    let (mut added, mut wire) = (0usize, 0usize);
    let section_before = a.pq_stats().section_bytes_sent + b.pq_stats().section_bytes_sent;
    let completed = |a: &Session, b: &Session| {
        a.pq_stats().epochs_completed_as_encapsulator
            + b.pq_stats().epochs_completed_as_encapsulator
    };
    let base_completed = completed(&a, &b);
    let mut last = 0usize;
    let mut gaps = Vec::new();
    for i in 0..messages {
        let len = 40 + (net.next_u32() as usize % 161);
        let text: Vec<u8> = (0..len).map(|_| net.next_u32() as u8).collect();
        let from_a = alice_sends(pattern, i);
        let (s, r, rng) = if from_a {
            (&mut a, &mut b, &mut ra)
        } else {
            (&mut b, &mut a, &mut rb)
        };
        let m = s.encrypt(rng, &text, b"").unwrap();
        let padded_without_pq = (MIN_MESSAGE_LEN + len).div_ceil(bucket) * bucket;
        added += m.len() - padded_without_pq;
        wire += m.len();
        let lost = (net.next_u32() as f64) / (u32::MAX as f64) < loss;
        if !lost {
            assert_eq!(r.decrypt(&m, b"").unwrap(), text);
        }
        let done = (completed(&a, &b) - base_completed) as usize;
        while gaps.len() < done {
            gaps.push(i + 1 - last);
            last = i + 1;
        }
    }
    let section =
        a.pq_stats().section_bytes_sent + b.pq_stats().section_bytes_sent - section_before;
    gaps.sort_unstable();
    let median = match gaps.len() {
        0 => None,
        n if !n.is_multiple_of(2) => Some(gaps[n / 2] as f64),
        n => Some((gaps[n / 2 - 1] + gaps[n / 2]) as f64 / 2.0),
    };
    Run {
        pattern,
        loss,
        messages,
        epochs: gaps.len(),
        median,
        pq_added: added as f64 / messages as f64,
        pq_section: section as f64 / messages as f64,
        wire: wire as f64 / messages as f64,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let json = args.iter().any(|a| a == "--json");
    let value = |flag: &str, default: u64| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let messages = value("--messages", 2000) as usize;
    let seed = value("--seed", 1);
    let mut runs = Vec::new();
    for pattern in ["lockstep", "5:1", "20:1", "one-sided"] {
        for loss in [0.0, 0.2] {
            runs.push(run(pattern, loss, messages, seed));
        }
    }
    if json {
        let items: Vec<String> = runs
            .iter()
            .map(|r| {
                format!(
                    "{{\"pattern\":\"{}\",\"loss\":{},\"messages\":{},\"epochs_completed\":{},\"median_messages_per_epoch\":{},\"mean_pq_bytes_per_message\":{:.1},\"mean_pq_section_bytes_per_message\":{:.1},\"mean_wire_bytes_per_message\":{:.1},\"text_bytes\":\"40-200\"}}",
                    r.pattern,
                    r.loss,
                    r.messages,
                    r.epochs,
                    r.median.map_or("null".to_string(), |m| format!("{m}")),
                    r.pq_added,
                    r.pq_section,
                    r.wire
                )
            })
            .collect();
        println!("[{}]", items.join(",\n "));
    } else {
        println!(
            "pattern    loss  messages  epochs  median msgs/epoch  PQ added B/msg  PQ carried B/msg  wire B/msg"
        );
        for r in &runs {
            println!(
                "{:<10} {:>4}  {:>8}  {:>6}  {:>17}  {:>14.1}  {:>16.1}  {:>10.1}",
                r.pattern,
                r.loss,
                r.messages,
                r.epochs,
                r.median.map_or("-".to_string(), |m| format!("{m}")),
                r.pq_added,
                r.pq_section,
                r.wire
            );
        }
    }
}
