#![no_main]
//! Fuzz target `prekey_message`: see `fuzz/logic.rs` and `fuzz/README.md`.

#[path = "../logic.rs"]
mod logic;

libfuzzer_sys::fuzz_target!(|data: &[u8]| logic::prekey_message(data));
