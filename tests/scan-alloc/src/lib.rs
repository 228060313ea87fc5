//! Test-only: a global allocator that looks for secrets left in freed memory.
//!
//! `tests/freed_memory.rs` installs [`ScanAlloc`] as its global allocator,
//! registers the secret byte strings a path is about to handle
//! ([`watch`]), runs the path, and asks which were found ([`take_hits`]).
//! On every `dealloc` the block is scanned for each registered string
//! before it goes back to the system allocator. `realloc` always moves
//! (allocate, copy, scan and free the old block), as an allocator that
//! cannot grow in place would: so a `Vec` that grows while holding a
//! secret is caught whatever the system allocator would have done.
//!
//! Scanning costs O(block × patterns); it is on only between [`watch`] and
//! [`take_hits`], and the registry is a fixed static table (the allocator
//! must not allocate). Callers serialise their scans (one lock per test
//! binary), since the registry is global.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// At most this many secrets are watched at once.
pub const MAX_PATTERNS: usize = 64;
/// The longest secret (bytes) that is stored for matching; a longer one is
/// matched on its first `MAX_PATTERN_LEN` bytes.
pub const MAX_PATTERN_LEN: usize = 64;
/// The shortest secret accepted: shorter strings would match by chance.
pub const MIN_PATTERN_LEN: usize = 12;

struct Registry {
    patterns: [[u8; MAX_PATTERN_LEN]; MAX_PATTERNS],
    lens: [usize; MAX_PATTERNS],
    count: usize,
    hits: [u32; MAX_PATTERNS],
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    patterns: [[0; MAX_PATTERN_LEN]; MAX_PATTERNS],
    lens: [0; MAX_PATTERNS],
    count: 0,
    hits: [0; MAX_PATTERNS],
});
static ACTIVE: AtomicBool = AtomicBool::new(false);

fn registry() -> std::sync::MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(|p| p.into_inner())
}

/// Starts watching for `secrets` (each named by its index in the slice):
/// clears earlier patterns and hits, and turns scanning on.
///
/// # Panics
/// If there are more than [`MAX_PATTERNS`] or one is shorter than
/// [`MIN_PATTERN_LEN`] (a test bug).
pub fn watch(secrets: &[&[u8]]) {
    assert!(secrets.len() <= MAX_PATTERNS, "too many secrets to watch");
    let mut r = registry();
    r.count = 0;
    r.hits = [0; MAX_PATTERNS];
    for s in secrets {
        assert!(s.len() >= MIN_PATTERN_LEN, "a secret to watch is too short");
        let n = s.len().min(MAX_PATTERN_LEN);
        let i = r.count;
        r.patterns[i] = [0; MAX_PATTERN_LEN];
        r.patterns[i][..n].copy_from_slice(&s[..n]);
        r.lens[i] = n;
        r.count += 1;
    }
    ACTIVE.store(true, Ordering::SeqCst);
}

/// Stops scanning and returns, per watched secret (in the order given to
/// [`watch`]), how many freed blocks held it; clears the patterns.
pub fn take_hits() -> Vec<u32> {
    ACTIVE.store(false, Ordering::SeqCst);
    let mut r = registry();
    let out = r.hits[..r.count].to_vec();
    r.patterns = [[0; MAX_PATTERN_LEN]; MAX_PATTERNS];
    r.count = 0;
    out
}

fn scan(block: &[u8]) {
    if !ACTIVE.load(Ordering::Relaxed) {
        return;
    }
    // Blocking: a scan must never be skipped because another thread is
    // scanning. `watch` and `take_hits` free nothing while they hold the
    // lock, so this cannot deadlock on itself.
    let mut r = registry();
    for i in 0..r.count {
        let p = &r.patterns[i][..r.lens[i]];
        if block.windows(p.len()).any(|w| w == p) {
            r.hits[i] += 1;
        }
    }
}

/// The scanning allocator: the system allocator, with every freed block
/// scanned while a watch is on.
#[derive(Debug)]
pub struct ScanAlloc;

// SAFETY: every method forwards to `System` with the caller's arguments
// (which satisfy `GlobalAlloc`'s contract) and reads a block only while it
// is still allocated; `realloc` allocates the new block before the old one
// is read and freed.
unsafe impl GlobalAlloc for ScanAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's layout, forwarded.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` is a live block of `layout.size()` bytes of this
        // allocator (the caller's contract); it is read before it is freed.
        let block = unsafe { std::slice::from_raw_parts(ptr, layout.size()) };
        scan(block);
        // SAFETY: the caller's pointer and layout, forwarded.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees `new_size` rounded to `layout.align()`
        // does not overflow, so this layout is valid.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: a valid, non-zero-size layout (the caller's contract).
        let new = unsafe { System.alloc(new_layout) };
        if new.is_null() {
            return new;
        }
        // SAFETY: `ptr` holds `layout.size()` readable bytes and `new` has
        // room for `new_size`; distinct blocks, so no overlap.
        unsafe { std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size)) };
        // SAFETY: `ptr` is a live block of `layout`, freed once, here.
        unsafe { self.dealloc(ptr, layout) };
        new
    }
}
