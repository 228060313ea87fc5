#![no_main]
//! Fuzz target `envelope`: see `fuzz/logic.rs` and `fuzz/README.md`.

#[path = "../logic.rs"]
mod logic;

libfuzzer_sys::fuzz_target!(|data: &[u8]| logic::envelope(data));
