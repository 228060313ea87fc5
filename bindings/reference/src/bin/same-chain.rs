//! One same-chain message through the Rust `client::Device` and through the
//! raw `ratchet::Session`, in alternating batches; the Kotlin and
//! JavaScript overhead drivers run it right before their own program.
//!
//! `same-chain [batches] [per_batch]` prints two lines,
//! `device: p10 <ns> ns/message, median <ns> ns/message` and
//! `session: p10 <ns> ns/message, median <ns> ns/message`.

use session_ratchet_reference::{DevicePair, SessionPair, percentile};
use std::error::Error;
use std::time::Instant;

fn arg(n: usize, default: usize) -> usize {
    std::env::args()
        .nth(n)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
        .max(1)
}

fn main() -> Result<(), Box<dyn Error>> {
    let (batches, per_batch) = (arg(1, 300), arg(2, 20));
    let mut device = DevicePair::new()?;
    let mut session = SessionPair::new()?;
    for _ in 0..per_batch {
        device.message()?;
        session.message()?;
    }
    let (mut d, mut s) = (Vec::new(), Vec::new());
    for round in 0..batches {
        // Alternate which goes first, so a speed phase of the machine hits both.
        for device_first in [round % 2 == 0, round % 2 != 0] {
            let start = Instant::now();
            if device_first {
                for _ in 0..per_batch {
                    device.message()?;
                }
                d.push(start.elapsed().as_nanos() as f64 / per_batch as f64);
            } else {
                for _ in 0..per_batch {
                    session.message()?;
                }
                s.push(start.elapsed().as_nanos() as f64 / per_batch as f64);
            }
        }
    }
    for (name, times) in [("device", &mut d), ("session", &mut s)] {
        let p10 = percentile(times, 0.10).ok_or("no batches")?;
        let median = percentile(times, 0.50).ok_or("no batches")?;
        println!("{name}: p10 {p10:.0} ns/message, median {median:.0} ns/message");
    }
    Ok(())
}
