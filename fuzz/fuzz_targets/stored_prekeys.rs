#![no_main]
//! Fuzz target `stored_prekeys`: see `fuzz/logic.rs` and `fuzz/README.md`.

#[path = "../logic.rs"]
mod logic;

libfuzzer_sys::fuzz_target!(|data: &[u8]| logic::stored_prekeys(data));
