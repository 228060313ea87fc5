#![no_main]
//! Fuzz target `device_link`: see `fuzz/link_logic.rs` and `fuzz/README.md`.

#[path = "../logic.rs"]
mod logic;

libfuzzer_sys::fuzz_target!(|data: &[u8]| logic::device_link(data));
