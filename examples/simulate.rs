//! The multi-device network simulator (spec §8.6, §8.8): seeded accounts and
//! devices on a lossy, reordering, duplicating store-and-forward network with
//! offline periods, a link, a revocation, a restore from backup, a restore
//! from the recovery phrase onto a new device, and a device running on from
//! a stale stored state.
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
    // Summed over the runs (the `max_` ones: the largest).
    let mut totals: Vec<(&str, u64)> = Vec::new();
    for seed in &seeds {
        let r = sim::run(&sim::Config { seed: *seed, days });
        all_ok &= r.ok();
        let failures: u64 = r.decrypt_failures.values().sum();
        for (i, (name, v)) in [
            ("messages_sent", r.messages_sent),
            ("deliveries_expected", r.deliveries_expected),
            ("deliveries_decrypted", r.deliveries_decrypted),
            ("decrypt_failures", failures),
            ("session_resets", r.session_resets),
            ("restores", r.restores),
            ("unconverged_pairs", r.unconverged_pairs),
            ("unread_pairs", r.unread_pairs),
            ("phrase_restores", r.phrase_restores),
            ("lost_devices", r.lost_devices),
            ("lost_devices_revoked", r.lost_devices_revoked),
            ("copies_to_lost_devices", r.copies_to_lost_devices),
            ("phrase_device_expected", r.phrase_device_expected),
            ("phrase_device_decrypted", r.phrase_device_decrypted),
            ("stale_reloads", r.stale_reloads),
            ("encryptions_traced", r.encryptions_traced),
            ("message_keys_reused", r.message_keys_reused),
            ("body_keys_reused", r.body_keys_reused),
            ("stale_copies_refused", r.stale_copies_refused),
            ("stale_copies_decrypted", r.stale_copies_decrypted),
            ("stale_duplicates_accepted", r.stale_duplicates_accepted),
            ("copies_across_rollback", r.copies_across_rollback),
            (
                "copies_across_rollback_decrypted",
                r.copies_across_rollback_decrypted,
            ),
            ("refusals_changed_state", r.refusals_changed_state),
            ("failure_heals", r.failure_heals),
            ("failure_heal_sessions", r.failure_heal_sessions),
            ("max_skipped_keys_held", r.max_skipped_keys_held as u64),
            (
                "max_state_bytes_per_device",
                r.max_state_bytes_per_device as u64,
            ),
        ]
        .into_iter()
        .enumerate()
        {
            if totals.len() <= i {
                totals.push((name, 0));
            }
            let t = &mut totals[i].1;
            *t = if name.starts_with("max_") {
                (*t).max(v)
            } else {
                *t + v
            };
        }
        if json {
            println!("{}", r.to_json());
        } else {
            println!(
                "seed {seed}: {} accounts, {} devices, loss {:.0}%: sent {}, delivered {}/{} decrypted, resets {} (restores {}), keys reused {} (body keys {}), ok {}",
                r.accounts,
                r.devices,
                r.loss * 100.0,
                r.messages_sent,
                r.deliveries_decrypted,
                r.deliveries_expected,
                r.session_resets,
                r.restores,
                r.message_keys_reused,
                r.body_keys_reused,
                r.ok()
            );
        }
    }
    if seeds.len() > 1 {
        let fields: Vec<String> = totals
            .iter()
            .map(|(name, v)| format!("\"{name}\":{v}"))
            .collect();
        println!(
            "{{\"summary\":{{\"seeds\":{},\"days\":{days},{},\"all_ok\":{all_ok}}}}}",
            seeds.len(),
            fields.join(",")
        );
    }
    if !all_ok {
        std::process::exit(1);
    }
}
