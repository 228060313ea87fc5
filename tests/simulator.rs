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
    }
}

#[test]
fn runs_are_deterministic() {
    let a = sim::run(&sim::Config { seed: 3, days: 4 });
    let b = sim::run(&sim::Config { seed: 3, days: 4 });
    assert_eq!(a.to_json(), b.to_json());
}
