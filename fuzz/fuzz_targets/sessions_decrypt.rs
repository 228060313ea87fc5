#![no_main]
//! Fuzz target `sessions_decrypt`: see `fuzz/sessions_logic.rs` and `fuzz/README.md`.

#[path = "../logic.rs"]
mod logic;

libfuzzer_sys::fuzz_target!(|data: &[u8]| logic::sessions_decrypt(data));
