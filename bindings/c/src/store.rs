//! Record stores (spec §10.2): an in-memory one, and one over the client's
//! database through callbacks.

use crate::error::{Error, sr_error, sr_status};
use crate::ffi::{
    Handle, Out, bytes_in, guard, guard_void, handle, into_handle, str_in, take_handle,
};
use session_ratchet::client::{CommitOutcome, MemoryStore, RecordStore, RecordWrite, StoreError};
use std::ffi::{c_char, c_void};
use std::sync::{Arc, Mutex};

/// A record store: the database a device keeps its encrypted records in.
/// Create one with `sr_memory_store_new` or `sr_callback_store_new`, pass
/// it to any number of device constructors (each device keeps its own
/// reference: two devices on one store are the app and its notification
/// extension, spec §10.5), and free it with `sr_store_free` whenever the
/// caller no longer needs it (devices keep it alive). Send and Sync: a
/// store's operations are serialised by the library.
#[repr(C)]
pub struct sr_store {
    magic: u64,
    kind: StoreKind,
}

#[derive(Debug)]
enum StoreKind {
    Memory(Arc<Mutex<MemoryStore>>),
    Callbacks(Arc<Mutex<CallbackStore>>),
}

impl core::fmt::Debug for sr_store {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("sr_store")
            .field("kind", &self.kind)
            .finish()
    }
}

impl Handle for sr_store {
    const MAGIC: u64 = 0x7372_5f73_746f_7265; // "sr_store"
    const NAME: &'static str = "sr_store";
}

impl sr_store {
    /// A new reference to the store, for a device.
    pub(crate) fn record_store(&self) -> Box<dyn RecordStore> {
        match &self.kind {
            StoreKind::Memory(m) => Box::new(Arc::clone(m)),
            StoreKind::Callbacks(c) => Box::new(Arc::clone(c)),
        }
    }
}

/// The store argument of a device constructor.
///
/// # Safety
/// `store` is NULL or a live handle of this library.
pub(crate) unsafe fn store_arg(store: *const sr_store) -> Result<Box<dyn RecordStore>, Error> {
    // SAFETY: forwarded contract.
    Ok(unsafe { handle(store, "store") }?.record_store())
}

/// A new, empty in-memory store (the crate's `MemoryStore`): for tests and
/// clients that keep nothing across runs. Shareable between devices.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sr_memory_store_new(
    out: *mut *mut sr_store,
    err: *mut *mut sr_error,
) -> sr_status {
    guard(err, || {
        // SAFETY: P2: an output pointer is NULL or writable for its type (or its length) during the call.
        let mut out = unsafe { Out::new(out, "out") }?;
        out.write(into_handle(sr_store {
            magic: sr_store::MAGIC,
            kind: StoreKind::Memory(Arc::new(Mutex::new(MemoryStore::new()))),
        }));
        Ok(())
    })
}

/// A copy of an in-memory store as it is now, independent of it: keep it
/// and open it later to act out a restored backup or a rolled-back
/// database (spec §10.4). `SR_ERR_INVALID_ARGUMENT` for a callback store.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sr_memory_store_snapshot(
    store: *const sr_store,
    out: *mut *mut sr_store,
    err: *mut *mut sr_error,
) -> sr_status {
    guard(err, || {
        // SAFETY: P2: an output pointer is NULL or writable for its type (or its length) during the call.
        let mut out = unsafe { Out::new(out, "out") }?;
        out.write(std::ptr::null_mut());
        // SAFETY: P3: a handle argument is NULL or a live handle of this library.
        let store = unsafe { handle(store, "store") }?;
        let StoreKind::Memory(m) = &store.kind else {
            return Err(Error::invalid(
                "store",
                "is a callback store; only a memory store has snapshots",
            ));
        };
        let copy = m.lock().map_err(|_| Error::internal())?.clone();
        out.write(into_handle(sr_store {
            magic: sr_store::MAGIC,
            kind: StoreKind::Memory(Arc::new(Mutex::new(copy))),
        }));
        Ok(())
    })
}

/// The number of records an in-memory store holds (for tests).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sr_memory_store_len(
    store: *const sr_store,
    out: *mut usize,
    err: *mut *mut sr_error,
) -> sr_status {
    guard(err, || {
        // SAFETY: P2: an output pointer is NULL or writable for its type (or its length) during the call.
        let mut out = unsafe { Out::new(out, "out") }?;
        // SAFETY: P3: a handle argument is NULL or a live handle of this library.
        let store = unsafe { handle(store, "store") }?;
        let StoreKind::Memory(m) = &store.kind else {
            return Err(Error::invalid("store", "is a callback store"));
        };
        out.write(m.lock().map_err(|_| Error::internal())?.len());
        Ok(())
    })
}

/// Releases the caller's reference to a store (devices opened on it keep
/// theirs). NULL is allowed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sr_store_free(store: *mut sr_store) {
    guard_void(|| {
        // SAFETY: P3: a handle argument is NULL or a live handle of this library.
        drop(unsafe { take_handle(store) });
    });
}

// ---- callback stores -------------------------------------------------------

/// `sr_record_write.op`: store `value` under `key`.
pub const SR_WRITE_PUT: u32 = 0;
/// `sr_record_write.op`: remove the record under `key` (absent is fine).
pub const SR_WRITE_DELETE: u32 = 1;

/// A `commit` callback's result: every write was applied, atomically.
pub const SR_COMMIT_COMMITTED: i32 = 0;
/// A `commit` callback's result: the head did not hold the expected value;
/// nothing was written.
pub const SR_COMMIT_CONFLICT: i32 = 1;

/// One write of a commit batch, valid only during the `commit` callback.
#[derive(Debug)]
#[repr(C)]
pub struct sr_record_write {
    /// `SR_WRITE_PUT` or `SR_WRITE_DELETE`.
    pub op: u32,
    /// The record's key.
    pub key: *const u8,
    /// Its length.
    pub key_len: usize,
    /// The value to store (NULL for a delete).
    pub value: *const u8,
    /// Its length (0 for a delete).
    pub value_len: usize,
}

/// Where a callback puts its answer: the value found (`get`), or the
/// reason it failed. Valid only during the callback that received it.
#[repr(C)]
pub struct sr_store_reply {
    magic: u64,
    value: Option<Vec<u8>>,
    error: Option<String>,
}

impl core::fmt::Debug for sr_store_reply {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("sr_store_reply")
    }
}

impl Handle for sr_store_reply {
    const MAGIC: u64 = 0x7372_5f72_6570_6c79; // "sr_reply"
    const NAME: &'static str = "sr_store_reply";
}

impl sr_store_reply {
    fn new() -> Self {
        Self {
            magic: Self::MAGIC,
            value: None,
            error: None,
        }
    }
}

/// The client's database, as callbacks (spec §10.2). Every callback gets
/// `user_data`, is called on the thread that called into the device, never
/// concurrently with another callback of the same store (the library
/// serialises them), and must not call into the library except
/// `sr_store_reply_*`. The store may be used from several threads over its
/// life (devices are Send), so `user_data` must be usable from any thread.
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub struct sr_store_callbacks {
    /// Passed to every callback.
    pub user_data: *mut c_void,
    /// Looks up `key`. Found: call `sr_store_reply_value(reply, value,
    /// len)` (the bytes are copied) and return 0. Absent: return 0 without
    /// a value. Failed: return non-zero (and optionally
    /// `sr_store_reply_error(reply, "why")`).
    pub get: Option<
        unsafe extern "C" fn(
            user_data: *mut c_void,
            key: *const u8,
            key_len: usize,
            reply: *mut sr_store_reply,
        ) -> i32,
    >,
    /// Applies `writes[0..writes_len]` atomically (all or none, surviving a
    /// crash) if the value under `head_key` is byte-for-byte
    /// `expected_head` (`expected_head` NULL: no value under `head_key`),
    /// and returns `SR_COMMIT_COMMITTED`; otherwise writes nothing and
    /// returns `SR_COMMIT_CONFLICT`. Across processes the comparison and
    /// the writes must be one transaction (SQLite: `BEGIN IMMEDIATE`, read,
    /// compare, write, `COMMIT`). Any other value is a failure (optionally
    /// with `sr_store_reply_error`).
    pub commit: Option<
        unsafe extern "C" fn(
            user_data: *mut c_void,
            head_key: *const u8,
            head_key_len: usize,
            expected_head: *const u8,
            expected_head_len: usize,
            writes: *const sr_record_write,
            writes_len: usize,
            reply: *mut sr_store_reply,
        ) -> i32,
    >,
    /// Optional (NULL: none): called once with `user_data` when the last
    /// device and handle using the store are freed.
    pub free_user_data: Option<unsafe extern "C" fn(user_data: *mut c_void)>,
}

#[derive(Debug)]
struct CallbackStore {
    callbacks: sr_store_callbacks,
}

// SAFETY: a `CallbackStore` is only a copy of the caller's function
// pointers and `user_data`. The header makes it the caller's obligation
// that the callbacks and `user_data` may be used from any thread (one
// thread at a time: every use goes through the `Mutex` around the store).
unsafe impl Send for CallbackStore {}

impl Drop for CallbackStore {
    fn drop(&mut self) {
        if let Some(free) = self.callbacks.free_user_data {
            // SAFETY: the caller's own function with its own `user_data`,
            // called once (this store is dropped once), as documented.
            unsafe { free(self.callbacks.user_data) };
        }
    }
}

fn failure(rc: i32, reply: sr_store_reply, call: &str) -> StoreError {
    match reply.error {
        Some(message) => StoreError::failed(&message),
        None => StoreError::failed(&format!("the {call} callback returned {rc}")),
    }
}

impl RecordStore for CallbackStore {
    fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(get) = self.callbacks.get else {
            return Err(StoreError::failed("no get callback"));
        };
        let mut reply = sr_store_reply::new();
        // SAFETY: the caller's callback, with its `user_data`, a key valid
        // for the call, and a reply that lives until it returns.
        let rc = unsafe {
            get(
                self.callbacks.user_data,
                key.as_ptr(),
                key.len(),
                &mut reply,
            )
        };
        reply.magic = 0;
        if rc != 0 {
            return Err(failure(rc, reply, "get"));
        }
        Ok(reply.value)
    }

    fn commit(
        &mut self,
        head: &[u8],
        expected_head: Option<&[u8]>,
        writes: &[RecordWrite],
    ) -> Result<CommitOutcome, StoreError> {
        let Some(commit) = self.callbacks.commit else {
            return Err(StoreError::failed("no commit callback"));
        };
        let batch: Vec<sr_record_write> = writes
            .iter()
            .map(|w| match w {
                RecordWrite::Put { key, value } => sr_record_write {
                    op: SR_WRITE_PUT,
                    key: key.as_ptr(),
                    key_len: key.len(),
                    value: value.as_ptr(),
                    value_len: value.len(),
                },
                RecordWrite::Delete { key } => sr_record_write {
                    op: SR_WRITE_DELETE,
                    key: key.as_ptr(),
                    key_len: key.len(),
                    value: std::ptr::null(),
                    value_len: 0,
                },
            })
            .collect();
        let (expected, expected_len) = match expected_head {
            Some(e) => (e.as_ptr(), e.len()),
            None => (std::ptr::null(), 0),
        };
        let mut reply = sr_store_reply::new();
        // SAFETY: the caller's callback, with its `user_data`; every
        // pointer (head, expected head, the batch and the keys and values
        // it points to) is valid until it returns, and so is the reply.
        let rc = unsafe {
            commit(
                self.callbacks.user_data,
                head.as_ptr(),
                head.len(),
                expected,
                expected_len,
                batch.as_ptr(),
                batch.len(),
                &mut reply,
            )
        };
        reply.magic = 0;
        match rc {
            SR_COMMIT_COMMITTED => Ok(CommitOutcome::Committed),
            SR_COMMIT_CONFLICT => Ok(CommitOutcome::Conflict),
            _ => Err(failure(rc, reply, "commit")),
        }
    }
}

/// A store over the client's database, through `callbacks` (copied; `get`
/// and `commit` must not be NULL). On failure `free_user_data` is not
/// called: the caller still owns `user_data`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sr_callback_store_new(
    callbacks: *const sr_store_callbacks,
    out: *mut *mut sr_store,
    err: *mut *mut sr_error,
) -> sr_status {
    guard(err, || {
        // SAFETY: P2: an output pointer is NULL or writable for its type (or its length) during the call.
        let mut out = unsafe { Out::new(out, "out") }?;
        out.write(std::ptr::null_mut());
        if callbacks.is_null() {
            return Err(Error::null("callbacks"));
        }
        if !callbacks.is_aligned() {
            return Err(Error::invalid("callbacks", "is not aligned"));
        }
        // SAFETY: non-null, aligned, and by the contract a readable
        // `sr_store_callbacks` (every bit pattern of which is valid: the
        // function pointers are `Option`s).
        let callbacks = unsafe { callbacks.read() };
        if callbacks.get.is_none() {
            return Err(Error::null("callbacks->get"));
        }
        if callbacks.commit.is_none() {
            return Err(Error::null("callbacks->commit"));
        }
        out.write(into_handle(sr_store {
            magic: sr_store::MAGIC,
            kind: StoreKind::Callbacks(Arc::new(Mutex::new(CallbackStore { callbacks }))),
        }));
        Ok(())
    })
}

/// From a `get` callback: the value found under the key (copied).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sr_store_reply_value(
    reply: *mut sr_store_reply,
    value: *const u8,
    value_len: usize,
    err: *mut *mut sr_error,
) -> sr_status {
    guard(err, || {
        // SAFETY: P3: a handle argument is NULL or a live handle of this library.
        let reply = unsafe { reply_arg(reply) }?;
        // SAFETY: P1: an input pointer is NULL or readable for its length (a string: to its NUL) during the call.
        let value = unsafe { bytes_in(value, value_len, "value") }?;
        reply.value = Some(value.to_vec());
        Ok(())
    })
}

/// From a callback that fails: the reason (UTF-8, NUL-terminated, copied),
/// which becomes the message of the device call's `SR_ERR_STORE_FAILED`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sr_store_reply_error(
    reply: *mut sr_store_reply,
    message: *const c_char,
    err: *mut *mut sr_error,
) -> sr_status {
    guard(err, || {
        // SAFETY: P3: a handle argument is NULL or a live handle of this library.
        let reply = unsafe { reply_arg(reply) }?;
        // SAFETY: P1: an input pointer is NULL or readable for its length (a string: to its NUL) during the call.
        let message = unsafe { str_in(message, "message") }?;
        reply.error = Some(message.to_owned());
        Ok(())
    })
}

/// # Safety
/// `reply` is NULL or the reply passed to a callback that is still running.
unsafe fn reply_arg<'a>(reply: *mut sr_store_reply) -> Result<&'a mut sr_store_reply, Error> {
    // SAFETY: forwarded contract (checks NULL, alignment and the magic).
    unsafe { handle(reply.cast_const(), "reply") }?;
    // SAFETY: a live reply, owned by the library frame that is running the
    // callback and not touched by it until the callback returns.
    Ok(unsafe { &mut *reply })
}
