#![no_main]
//! Fuzz target `prekey_record`: see `fuzz/logic.rs` and `fuzz/README.md`.

#[path = "../logic.rs"]
mod logic;

libfuzzer_sys::fuzz_target!(|data: &[u8]| logic::prekey_record(data));
