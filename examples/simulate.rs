//! The multi-device network simulator (spec §8.6, §8.8): seeded accounts and
//! devices on a lossy, reordering, duplicating store-and-forward network with
//! offline periods, a link, a revocation and a restore from backup.
//!
//! ```text
//! cargo run --release --example simulate -- --json --seed 7 --days 30
//! cargo run --release --example simulate -- --json --seeds 1..100 --days 30
//! ```
//!
//! Prints one JSON object per seed, and with `--seeds` a summary line. Exits
//! with status 1 if any run misses its goals (see `Report::ok`).
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

#[path = "../tests/sim/mod.rs"]
mod sim;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| -> Option<String> {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let json = args.iter().any(|a| a == "--json");
    let days = value("--days").and_then(|v| v.parse().ok()).unwrap_or(30);
    let seeds: Vec<u64> = match (value("--seeds"), value("--seed")) {
        (Some(range), _) => {
            let (a, b) = range.split_once("..").expect("--seeds A..B");
            (a.parse().expect("seed")..=b.parse().expect("seed")).collect()
        }
        (None, Some(s)) => vec![s.parse().expect("--seed N")],
        (None, None) => vec![1],
    };
    let mut all_ok = true;
    let mut totals = (0u64, 0u64, 0u64, 0u64, 0usize, 0usize, 0u64);
    for seed in &seeds {
        let r = sim::run(&sim::Config { seed: *seed, days });
        all_ok &= r.ok();
        totals.0 += r.messages_sent;
        totals.1 += r.deliveries_expected;
        totals.2 += r.deliveries_decrypted;
        totals.3 += r.session_resets;
        totals.4 = totals.4.max(r.max_skipped_keys_held);
        totals.5 = totals.5.max(r.max_state_bytes_per_device);
        totals.6 += r.restores;
        if json {
            println!("{}", r.to_json());
        } else {
            println!(
                "seed {seed}: {} accounts, {} devices, loss {:.0}%: sent {}, delivered {}/{} decrypted, resets {} (restores {}), ok {}",
                r.accounts,
                r.devices,
                r.loss * 100.0,
                r.messages_sent,
                r.deliveries_decrypted,
                r.deliveries_expected,
                r.session_resets,
                r.restores,
                r.ok()
            );
        }
    }
    if seeds.len() > 1 {
        println!(
            "{{\"summary\":{{\"seeds\":{},\"days\":{days},\"messages_sent\":{},\"deliveries_expected\":{},\"deliveries_decrypted\":{},\"session_resets\":{},\"restores\":{},\"max_skipped_keys_held\":{},\"max_state_bytes_per_device\":{},\"all_ok\":{all_ok}}}}}",
            seeds.len(),
            totals.0,
            totals.1,
            totals.2,
            totals.3,
            totals.6,
            totals.4,
            totals.5
        );
    }
    if !all_ok {
        std::process::exit(1);
    }
}
