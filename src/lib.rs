//! # session-ratchet
//!
//! The cryptographic core of Session Protocol v2: a hybrid (X25519 +
//! ML-KEM-768) asynchronous handshake from signed prekeys, and the hybrid
//! double ratchet built on it. The normative description is `spec/` in the
//! repository; every module names the spec section it implements.
//!
//! ## Layout
//!
//! | module | owns | spec |
//! |---|---|---|
//! | [`client`] | the device object a client holds: one per device, over per-record encrypted storage with generations | §10 |
//! | [`secret`] | secret newtypes: boxed, zeroized, redacted, constant-time equality | §1.4 |
//! | [`dh`] | X25519 public keys and contributory Diffie-Hellman | §3.1 |
//! | [`kem`] | ML-KEM-768 (two backends) and X-Wing | §3.3, §3.4 |
//! | `kdf` (internal) | HKDF/HMAC/SHA-256 and every domain-separation label | §3.5, §3.6 |
//! | [`identity`] | device and account identities, device certificates | §4.1, §4.2 |
//! | [`account`] | accounts: key from a (recovery) seed, Session IDs | §8.1 |
//! | [`device`] | signed device lists, revocation, count-hiding prekey records, linking a device with an emoji SAS | §8.2–§8.5 |
//! | [`envelope`] | fan-out envelopes: one message to many devices, padded so storage learns only buckets | §8.7 |
//! | [`prekey`] | signed prekeys, bundles, the private prekey store | §4.3–§4.5 |
//! | [`handshake`] | the hybrid PQXDH-style handshake and its output | §5 |
//! | [`ratchet`] | the hybrid double ratchet: DH and ML-KEM ratchets, header encryption, padding, storage | §7 |
//! | [`sessions`] | session management across all devices of both parties; healing | §8.6, §8.8 |
//! | [`wire`] | the canonical byte encoding of everything sent | §6 |
//! | [`session_v2`] | Session identity and the Session Protocol v2 formats (feature `session-v2`) | §9 |
//!
//! ## Randomness
//!
//! Nothing in this crate reads a system RNG. Every function that needs
//! randomness takes a `rand_core::CryptoRng`; with a seeded RNG every output is
//! reproducible, which is what makes the published test vectors possible.
#![no_std]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
// Tests may panic on a broken expectation; library code may not (Cargo.toml [lints]).
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod account;
pub(crate) mod aead;
pub mod client;
pub mod device;
pub mod dh;
pub mod envelope;
pub mod handshake;
pub mod identity;
pub(crate) mod kdf;
pub mod kem;
pub mod prekey;
pub mod ratchet;
pub mod secret;
#[cfg(feature = "session-v2")]
pub mod session_v2;
pub mod sessions;
mod util;
pub mod wire;

pub use rand_core;

/// The README's code examples run as doctests, so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
