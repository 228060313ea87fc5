//! The multi-device simulator in `cargo test`: several seeds, short runs.
//! The long run (100 seeds × 30 days) is `cargo run --release --example
//! simulate -- --json --seeds 1..100 --days 30`.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod sim;

#[test]
fn every_expected_delivery_decrypts() {
    let mut stale_runs = 0;
    for seed in 1..=10 {
        let r = sim::run(&sim::Config { seed, days: 14 });
        assert!(r.ok(), "seed {seed}: {}", r.to_json());
        assert!(
            r.deliveries_expected > 100,
            "seed {seed}: too little traffic: {}",
            r.to_json()
        );
        assert_eq!(r.links, 1);
        assert_eq!(r.restores, 1, "seed {seed}: {}", r.to_json());
        // The restore from the recovery phrase: the new device is written
        // to and reads, and the lost devices end up revoked.
        assert_eq!(r.phrase_restores, 1, "seed {seed}: {}", r.to_json());
        assert!(r.lost_devices > 0 && r.lost_devices_revoked == r.lost_devices);
        assert!(r.phrase_device_expected > 0, "seed {seed}: {}", r.to_json());
        assert_eq!(r.phrase_device_decrypted, r.phrase_device_expected);
        // The stale state: whenever it happened, the device sent again from
        // chain positions it had used (message keys reused), and no body
        // key was ever used twice (part of `ok`).
        if r.stale_reloads > 0 {
            stale_runs += 1;
            assert!(r.message_keys_reused > 0, "seed {seed}: {}", r.to_json());
        }
        assert_eq!(r.body_keys_reused, 0);
    }
    // The event needs a device that sends before the run ends.
    assert!(stale_runs >= 8, "{stale_runs} runs with a stale state");
}

#[test]
fn runs_are_deterministic() {
    let a = sim::run(&sim::Config { seed: 3, days: 4 });
    let b = sim::run(&sim::Config { seed: 3, days: 4 });
    assert_eq!(a.to_json(), b.to_json());
    // A short run with every event, the stale state included.
    let a = sim::run(&sim::Config { seed: 2, days: 4 });
    let b = sim::run(&sim::Config { seed: 2, days: 4 });
    assert_eq!(a.to_json(), b.to_json());
    assert_eq!(
        (a.phrase_restores, a.stale_reloads),
        (1, 1),
        "{}",
        a.to_json()
    );
}
