//! # session-ratchet-c
//!
//! The C ABI over [`session_ratchet::client::Device`], the device object a
//! client holds (spec chapter 10). The header is
//! `bindings/c/include/session_ratchet.h`, generated from this crate by
//! cbindgen (`bindings/c/cbindgen.toml`) and committed; its preamble states
//! the rules every function follows (status codes and errors, ownership,
//! pointers, threads).
//!
//! | module | owns |
//! |---|---|
//! | `error` | status codes (`sr_status`, one per error kind), the error object `sr_error` |
//! | `ffi` | the boundary: pointer checks, library-owned buffers and strings, the guard around every body |
//! | `store` | record stores: `sr_memory_store_new` (shareable) and callback stores over the client's database |
//! | `rng` | `sr_rng`: the OS RNG, and a seeded ChaCha20 RNG under the `hazmat-test-vectors` feature |
//! | `device` | `sr_device`: create, restore, open, migrate, contacts, send, receive, heal, revoke, maintain |
//! | `link` | linking a new device: `sr_linking` (the new device), `sr_link_approval` (the existing one) |
//!
//! `unsafe` appears only here in the workspace, only to cross the boundary
//! (dereferencing the caller's pointers, handing out and taking back
//! allocations, calling the client's store callbacks), and every block says
//! why it is sound. No panic crosses the boundary: every body runs inside
//! `catch_unwind` (the core is panic-free; this is a second line).
// The C names are the header's names (`sr_device`, `sr_buffer`, ...).
#![allow(non_camel_case_types)]
// Every exported function takes raw pointers and is therefore `unsafe` to
// call from Rust. Its safety contract is the same for all of them and is
// stated once, in the header's preamble ("Pointers"), rather than repeated
// in each function's `# Safety` section.
#![allow(clippy::missing_safety_doc)]

mod device;
mod error;
mod ffi;
mod link;
mod rng;
mod store;

pub use device::*;
pub use error::*;
pub use ffi::*;
pub use link::*;
pub use rng::*;
pub use store::*;

/// The thread-safety the header promises: every handle may be used from
/// several threads through shared references (calls on one device or
/// linking handle are serialised by its lock, the rest is immutable or
/// locked), and moved between threads.
const _: () = {
    const fn shared_across_threads<T: Send + Sync>() {}
    const fn moved_across_threads<T: Send>() {}
    shared_across_threads::<sr_device>();
    shared_across_threads::<sr_linking>();
    shared_across_threads::<sr_link_approval>();
    shared_across_threads::<sr_store>();
    shared_across_threads::<sr_error>();
    moved_across_threads::<sr_rng>();
};
