#![no_main]
//! Fuzz target `ratchet_decrypt`: see `fuzz/logic.rs` and `fuzz/README.md`.

#[path = "../logic.rs"]
mod logic;

libfuzzer_sys::fuzz_target!(|data: &[u8]| logic::ratchet_decrypt(data));
