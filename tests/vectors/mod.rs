//! Deterministic generators of the published test vectors (`test-vectors/`).
//!
//! Shared by `tests/vectors.rs` (which regenerates in memory and compares with
//! the committed files) and `examples/gen_vectors.rs` (which writes
//! `test-vectors/<layer>-new.json` for a human to review and promote).
//! Every random input is drawn from a seeded `ChaCha20Rng` and then listed
//! explicitly in the vector, in the draw order the spec makes normative, so a
//! verifier needs no RNG.
#![allow(
    dead_code,
    unreachable_pub,
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

pub mod devices;
pub mod envelope;
pub mod handshake;
pub mod kem;
pub mod link;
pub mod ratchet;
pub mod records;
#[cfg(feature = "session-v2")]
pub mod session_v2;
pub mod sessions;
pub mod stored_prekeys;

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::Rng;
use serde_json::{Value, json};

/// Crate version recorded in every file's provenance.
pub const CRATE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// `(file stem, contents)` for every layer.
pub fn all() -> Vec<(&'static str, Value)> {
    #[allow(unused_mut)]
    let mut files = vec![
        ("kem", kem::vectors()),
        ("handshake", handshake::vectors()),
        ("ratchet", ratchet::vectors()),
        ("devices", devices::vectors()),
        ("envelope", envelope::vectors()),
        ("link", link::vectors()),
        ("sessions", sessions::vectors()),
        ("stored-prekeys", stored_prekeys::vectors()),
        ("records", records::vectors()),
    ];
    #[cfg(feature = "session-v2")]
    files.push(("session-v2", session_v2::vectors()));
    files
}

/// The bytes a file holds: pretty JSON with a trailing newline.
pub fn render(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap();
    s.push('\n');
    s
}

/// Wraps a layer's vectors with its description and provenance.
pub fn file(layer: &str, description: &str, vectors: Vec<Value>) -> Value {
    json!({
        "layer": layer,
        "description": description,
        "provenance": {
            "generator": "cargo run --example gen_vectors",
            "crate": "session-ratchet",
            "crate_version": CRATE_VERSION,
            "rng": "rand_chacha::ChaCha20Rng::from_seed(rng_seed); every draw is also listed explicitly",
        },
        "vectors": vectors,
    })
}

pub fn hex(b: impl AsRef<[u8]>) -> Value {
    Value::String(::hex::encode(b))
}

/// Reads `n` bytes from a clone of the RNG that is kept in step with the
/// real one, to list what an operation drew.
pub struct Replay(pub ChaCha20Rng);

impl Replay {
    pub fn take(&mut self, n: usize) -> Vec<u8> {
        let mut v = vec![0u8; n];
        self.0.fill_bytes(&mut v);
        v
    }
}

/// The error class of a decoding or processing error: its variant name.
pub fn class(e: &impl core::fmt::Debug) -> String {
    let s = format!("{e:?}");
    s.split([' ', '(', '{'])
        .next()
        .unwrap_or_default()
        .to_string()
}
