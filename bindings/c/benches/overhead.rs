//! The cost of the C ABI: one same-chain message (a send by one device and
//! its receive by the other, after the session is established) through the
//! `extern "C"` functions, next to the same calls on the Rust `Device` and
//! the same message through the raw `ratchet::Session` (no envelope, no
//! store), in one process and one run. The two device pairs use the same
//! store type (the one `sr_memory_store_new` makes); all use the OS RNG.
//!
//! Batches of each alternate, so drift hits both alike; the figure is the
//! 10th percentile of the batch times (the least disturbed), per message.
//!
//! `cargo bench -p session-ratchet-c --bench overhead [-- ROUNDS BATCH]`
// A benchmark may stop on a broken expectation.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use session_ratchet::client::{Device, DeviceInfo, MemoryStore};
use session_ratchet::ratchet::StorageKey;
use session_ratchet_c::*;
use std::hint::black_box;
use std::mem::MaybeUninit;
use std::ptr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use session_ratchet_reference::{CONTENT, NOW, SessionPair, percentile};

fn ok(status: sr_status, err: *mut sr_error) {
    if status != SR_OK {
        // SAFETY: a failing call stored a live error (or NULL) in `err`.
        let text = unsafe { sr_error_message(err) };
        // SAFETY: the message is NUL-terminated and lives with the error.
        let message = unsafe { std::ffi::CStr::from_ptr(text) };
        panic!("status {status}: {}", message.to_string_lossy());
    }
}

/// A device created through the C ABI.
fn c_device(store: *const sr_store, key: &[u8; 32], name: &std::ffi::CStr) -> *mut sr_device {
    let info = sr_device_info {
        platform: SR_PLATFORM_DESKTOP,
        description: name.as_ptr(),
        version_major: 1,
        version_minor: 0,
        version_patch: 0,
    };
    let mut device = ptr::null_mut();
    let mut seed = MaybeUninit::<sr_buffer>::uninit();
    let mut err = ptr::null_mut();
    // SAFETY: every pointer is valid for the call (P1-P3).
    let st = unsafe {
        sr_device_create_account(
            store,
            key.as_ptr(),
            key.len(),
            ptr::null_mut(),
            &info,
            NOW,
            &mut device,
            seed.as_mut_ptr(),
            &mut err,
        )
    };
    ok(st, err);
    // SAFETY: the call succeeded, so it filled the seed buffer.
    unsafe { sr_buffer_free(seed.as_mut_ptr()) };
    device
}

fn c_buffer(f: impl FnOnce(*mut sr_buffer, *mut *mut sr_error) -> sr_status) -> Vec<u8> {
    let mut buf = MaybeUninit::<sr_buffer>::uninit();
    let mut err = ptr::null_mut();
    ok(f(buf.as_mut_ptr(), &mut err), err);
    // SAFETY: the call succeeded and filled the buffer.
    let mut buf = unsafe { buf.assume_init() };
    // SAFETY: a library buffer of `len` bytes (NULL only when empty).
    let bytes = unsafe { std::slice::from_raw_parts(buf.ptr, buf.len) }.to_vec();
    // SAFETY: a buffer the library filled.
    unsafe { sr_buffer_free(&mut buf) };
    bytes
}

fn c_account_key(d: *const sr_device) -> [u8; 32] {
    let mut key = [0u8; 32];
    let mut err = ptr::null_mut();
    // SAFETY: a live device and a 32-byte output.
    ok(
        unsafe { sr_device_account_key(d, key.as_mut_ptr(), 32, &mut err) },
        err,
    );
    key
}

/// A introduces itself to B (list, prekey record, Session ID).
fn c_add(a: *mut sr_device, b: *mut sr_device) {
    // SAFETY: live handles and outputs (P1-P3) in each call below.
    let list = c_buffer(|o, e| unsafe { sr_device_device_list(a, o, e) });
    // SAFETY: as above.
    let record = c_buffer(|o, e| unsafe { sr_device_prekey_record(a, o, e) });
    let mut sid = [0u8; 33];
    let mut err = ptr::null_mut();
    // SAFETY: as above.
    ok(
        unsafe { sr_device_session_id_bytes(a, sid.as_mut_ptr(), 33, &mut err) },
        err,
    );
    // SAFETY: as above.
    let st = unsafe {
        sr_device_add_contact_bytes(
            b,
            sid.as_ptr(),
            33,
            list.as_ptr(),
            list.len(),
            record.as_ptr(),
            record.len(),
            ptr::null_mut(),
            0,
            &mut err,
        )
    };
    ok(st, err);
}

/// One message from `from` to `to` through the C ABI.
fn c_message(from: *mut sr_device, to: *mut sr_device, to_key: &[u8; 32], now: u64) {
    let mut out = MaybeUninit::<sr_envelopes>::uninit();
    let mut err = ptr::null_mut();
    // SAFETY: live handles, valid inputs and outputs (P1-P3).
    let st = unsafe {
        sr_device_send(
            from,
            to_key.as_ptr(),
            32,
            CONTENT.as_ptr(),
            CONTENT.len(),
            now,
            out.as_mut_ptr(),
            &mut err,
        )
    };
    ok(st, err);
    // SAFETY: the call succeeded and filled the list.
    let mut out = unsafe { out.assume_init() };
    assert_eq!(out.len, 1);
    // SAFETY: `ptr` holds `len` = 1 envelopes.
    let env = unsafe { &*out.ptr };
    let mut got = MaybeUninit::<sr_received>::uninit();
    // SAFETY: as above; the envelope bytes are the library's.
    let st =
        unsafe { sr_device_receive(to, env.bytes.ptr, env.bytes.len, got.as_mut_ptr(), &mut err) };
    ok(st, err);
    // SAFETY: the call succeeded and filled the message.
    let mut got = unsafe { got.assume_init() };
    black_box(got.content.len);
    // SAFETY: structures the library filled.
    unsafe { sr_received_free(&mut got) };
    // SAFETY: as above.
    unsafe { sr_envelopes_free(&mut out) };
}

type Shared = Arc<Mutex<MemoryStore>>;

fn rust_device(key: &[u8; 32], name: &str) -> Device {
    let store: Shared = Arc::new(Mutex::new(MemoryStore::new()));
    let rng = Box::new(session_ratchet::rand_core::UnwrapErr(getrandom::SysRng));
    Device::create_account(
        Box::new(store),
        &StorageKey::from_bytes(*key),
        rng,
        DeviceInfo::new(name),
        NOW,
    )
    .unwrap()
    .0
}

fn rust_message(
    from: &mut Device,
    to: &mut Device,
    to_key: &session_ratchet::identity::Ed25519PublicKey,
    now: u64,
) {
    let out = from.send(to_key, CONTENT, now).unwrap();
    assert_eq!(out.len(), 1);
    let got = to.receive(&out[0].bytes).unwrap();
    black_box(got.content.len());
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let rounds = args.first().copied().unwrap_or(300);
    let batch = args.get(1).copied().unwrap_or(16);

    // Two pairs, each with a session established both ways.
    let (mut store_a, mut store_b) = (ptr::null_mut(), ptr::null_mut());
    let mut err = ptr::null_mut();
    // SAFETY: valid outputs.
    ok(unsafe { sr_memory_store_new(&mut store_a, &mut err) }, err);
    // SAFETY: valid outputs.
    ok(unsafe { sr_memory_store_new(&mut store_b, &mut err) }, err);
    let ca = c_device(store_a, &[1; 32], c"alice");
    let cb = c_device(store_b, &[2; 32], c"bob");
    c_add(ca, cb);
    c_add(cb, ca);
    let (ca_key, cb_key) = (c_account_key(ca), c_account_key(cb));
    c_message(ca, cb, &cb_key, NOW);
    c_message(cb, ca, &ca_key, NOW);

    let mut ra = rust_device(&[1; 32], "alice");
    let mut rb = rust_device(&[2; 32], "bob");
    let (ra_key, rb_key) = (ra.account_key(), rb.account_key());
    ra.add_contact(
        &rb.session_id(),
        &rb.device_list(),
        Some(&rb.prekey_record().unwrap()),
    )
    .unwrap();
    rb.add_contact(
        &ra.session_id(),
        &ra.device_list(),
        Some(&ra.prekey_record().unwrap()),
    )
    .unwrap();
    rust_message(&mut ra, &mut rb, &rb_key, NOW);
    rust_message(&mut rb, &mut ra, &ra_key, NOW);

    let mut raw = SessionPair::new().unwrap();

    // Warm up all three, then run their batches in a rotating order.
    for i in 0..batch as u64 {
        c_message(ca, cb, &cb_key, NOW + i);
        rust_message(&mut ra, &mut rb, &rb_key, NOW + i);
        raw.message().unwrap();
    }
    let mut times: [Vec<f64>; 3] = Default::default();
    for round in 0..rounds {
        let now = NOW + 100 + round as u64;
        for k in 0..3 {
            let which = (round + k) % 3;
            let start = Instant::now();
            for _ in 0..batch {
                match which {
                    0 => c_message(ca, cb, &cb_key, now),
                    1 => rust_message(&mut ra, &mut rb, &rb_key, now),
                    _ => raw.message().unwrap(),
                }
            }
            times[which].push(start.elapsed().as_secs_f64() / batch as f64);
        }
    }
    let [c, r, s] = times.map(|mut t| {
        (
            percentile(&mut t, 0.10).unwrap(),
            percentile(&mut t, 0.50).unwrap(),
        )
    });
    println!("same-chain message (send + receive), {rounds} rotating batches of {batch}:");
    for (name, (p10, p50)) in [("raw Session", s), ("Rust Device", r), ("C ABI", c)] {
        println!(
            "  {name:<12} p10 {:.2} us, median {:.2} us",
            p10 * 1e6,
            p50 * 1e6
        );
    }
    println!(
        "  ratio C/Rust Device: p10 {:.3}, median {:.3}",
        c.0 / r.0,
        c.1 / r.1
    );
    println!(
        "  ratio C/raw Session: p10 {:.2}, median {:.2}",
        c.0 / s.0,
        c.1 / s.1
    );

    // SAFETY: live handles, freed once.
    unsafe {
        sr_device_free(ca);
    }
    // SAFETY: as above.
    unsafe { sr_device_free(cb) };
    // SAFETY: as above.
    unsafe { sr_store_free(store_a) };
    // SAFETY: as above.
    unsafe { sr_store_free(store_b) };
}
