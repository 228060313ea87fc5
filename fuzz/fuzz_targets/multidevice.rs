#![no_main]
//! Fuzz target `multidevice`: see `fuzz/sessions_logic.rs` and `fuzz/README.md`.

#[path = "../logic.rs"]
mod logic;

libfuzzer_sys::fuzz_target!(|data: &[u8]| logic::multidevice(data));
