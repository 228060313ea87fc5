//! The boundary: the guard around every body, pointer checks, and the
//! buffers and strings the library hands out.

use crate::error::{Error, SR_OK, sr_error, sr_status};
use std::ffi::{CStr, CString, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr;
use zeroize::Zeroize;

/// Runs `body`, catching any panic, and turns its outcome into a status
/// code; on failure stores a new error in `*err` (when `err` is not NULL).
pub(crate) fn guard(
    err: *mut *mut sr_error,
    body: impl FnOnce() -> Result<(), Error>,
) -> sr_status {
    let error = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => return SR_OK,
        Ok(Err(e)) => e,
        Err(_) => Error::internal(),
    };
    let code = error.code;
    if !err.is_null() && err.is_aligned() {
        let raw = error.into_raw();
        // SAFETY: `err` is non-null and aligned and, by the header's
        // contract, points to a writable `sr_error *`.
        unsafe { err.write(raw) };
    }
    code
}

/// Runs a body that reports nothing (a free function), catching any panic.
pub(crate) fn guard_void(body: impl FnOnce()) {
    // Nothing to report to: a panic while freeing (none is known) only
    // leaks the object.
    let _ = catch_unwind(AssertUnwindSafe(body));
}

// ---- handles ---------------------------------------------------------------

/// A handle type: a `#[repr(C)]` struct whose first field is a `u64`
/// magic number, so a pointer of the wrong handle type is refused.
pub(crate) trait Handle: Sized {
    /// The magic number in the first field of a live handle.
    const MAGIC: u64;
    /// The C type's name, for messages.
    const NAME: &'static str;
}

/// A live handle, or an error naming the argument.
///
/// # Safety
/// `p` is NULL or points to a handle created by this library (of any type)
/// that has not been freed.
pub(crate) unsafe fn handle<'a, T: Handle>(p: *const T, what: &str) -> Result<&'a T, Error> {
    if p.is_null() {
        return Err(Error::null(what));
    }
    if !p.is_aligned() {
        return Err(invalid_handle::<T>(what));
    }
    // SAFETY: by the contract `p` points to a live handle of this library;
    // every handle starts with a `u64`, so 8 aligned bytes are readable.
    let magic = unsafe { p.cast::<u64>().read() };
    if magic != T::MAGIC {
        return Err(invalid_handle::<T>(what));
    }
    // SAFETY: the magic number says `p` is a live `T`; the library never
    // hands out `&mut` to a handle while it is shared with the caller.
    Ok(unsafe { &*p })
}

fn invalid_handle<T: Handle>(what: &str) -> Error {
    Error::new(
        crate::error::SR_ERR_INVALID_HANDLE,
        format!(
            "argument `{what}` is not a live {} (a handle of another type, or one already freed)",
            T::NAME
        ),
    )
}

/// Hands a new handle to the caller.
pub(crate) fn into_handle<T: Handle>(value: T) -> *mut T {
    Box::into_raw(Box::new(value))
}

/// Takes a handle back from the caller (to free or consume it); `None` for
/// NULL or a pointer that is not a live `T`.
///
/// # Safety
/// As for [`handle`]; the caller gives up `p`.
pub(crate) unsafe fn take_handle<T: Handle>(p: *mut T) -> Option<Box<T>> {
    // SAFETY: forwarded contract.
    unsafe { handle(p.cast_const(), "handle") }.ok()?;
    // SAFETY: `p` is a live `T`, allocated by `into_handle` as a `Box<T>`,
    // and the caller gives it up.
    let mut boxed = unsafe { Box::from_raw(p) };
    // A freed handle passed again is then refused while its memory still
    // holds this (not guaranteed: the allocator may reuse it).
    let own: *mut T = &mut *boxed;
    // SAFETY: `own` is the box's own, live, aligned `T`, whose first field
    // is the `u64` magic number.
    unsafe { own.cast::<u64>().write_volatile(0) };
    Some(boxed)
}

// ---- inputs ----------------------------------------------------------------

/// A byte input: `len` bytes at `ptr`; NULL only with `len` 0.
///
/// # Safety
/// A non-null `ptr` is readable for `len` bytes for `'a`, and not written
/// during the call.
pub(crate) unsafe fn bytes_in<'a>(
    ptr: *const u8,
    len: usize,
    what: &str,
) -> Result<&'a [u8], Error> {
    if ptr.is_null() {
        return if len == 0 {
            Ok(&[])
        } else {
            Err(Error::null(what))
        };
    }
    if len > isize::MAX as usize {
        return Err(Error::invalid(what, "has a length beyond any buffer"));
    }
    // SAFETY: non-null, readable for `len` bytes (the contract), `len` fits
    // `isize`, and `u8` needs no alignment.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// An optional byte input: NULL means absent.
///
/// # Safety
/// As for [`bytes_in`].
pub(crate) unsafe fn opt_bytes_in<'a>(
    ptr: *const u8,
    len: usize,
    what: &str,
) -> Result<Option<&'a [u8]>, Error> {
    if ptr.is_null() {
        return if len == 0 {
            Ok(None)
        } else {
            Err(Error::invalid(
                what,
                "is NULL (absent) but its length is not 0",
            ))
        };
    }
    // SAFETY: forwarded contract.
    unsafe { bytes_in(ptr, len, what) }.map(Some)
}

/// A fixed-length byte input, copied.
///
/// # Safety
/// As for [`bytes_in`].
pub(crate) unsafe fn array_in<const N: usize>(
    ptr: *const u8,
    len: usize,
    what: &str,
) -> Result<[u8; N], Error> {
    if ptr.is_null() {
        return Err(Error::null(what));
    }
    if len != N {
        return Err(Error::length(what, N, len));
    }
    // SAFETY: forwarded contract.
    let bytes = unsafe { bytes_in(ptr, len, what) }?;
    let mut out = [0u8; N];
    out.copy_from_slice(bytes);
    Ok(out)
}

/// A NUL-terminated UTF-8 string input.
///
/// # Safety
/// A non-null `ptr` points to a NUL-terminated string readable for `'a`.
pub(crate) unsafe fn str_in<'a>(ptr: *const c_char, what: &str) -> Result<&'a str, Error> {
    if ptr.is_null() {
        return Err(Error::null(what));
    }
    // SAFETY: non-null and NUL-terminated (the contract).
    let s = unsafe { CStr::from_ptr(ptr) };
    s.to_str()
        .map_err(|_| Error::invalid(what, "is not valid UTF-8"))
}

// ---- outputs ---------------------------------------------------------------

/// An output slot of the caller's: written with `ptr::write` (its old
/// content is neither read nor dropped).
#[derive(Debug)]
pub(crate) struct Out<T>(*mut T);

impl<T> Out<T> {
    /// Checks an output pointer.
    ///
    /// # Safety
    /// A non-null `ptr` is valid for writing a `T` until the call returns.
    pub(crate) unsafe fn new(ptr: *mut T, what: &str) -> Result<Self, Error> {
        if ptr.is_null() {
            return Err(Error::null(what));
        }
        if !ptr.is_aligned() {
            return Err(Error::invalid(what, "is not aligned for its type"));
        }
        Ok(Self(ptr))
    }

    /// An optional output: NULL means the caller does not want it.
    ///
    /// # Safety
    /// As for [`Out::new`].
    pub(crate) unsafe fn optional(ptr: *mut T, what: &str) -> Result<Option<Self>, Error> {
        if ptr.is_null() {
            Ok(None)
        } else {
            // SAFETY: forwarded contract.
            unsafe { Self::new(ptr, what) }.map(Some)
        }
    }

    pub(crate) fn write(&mut self, value: T) {
        // SAFETY: `new` checked non-null and alignment, and its contract
        // makes the slot writable for the rest of the call.
        unsafe { self.0.write(value) };
    }
}

/// A fixed-length byte output of the caller's.
#[derive(Debug)]
pub(crate) struct OutBytes {
    ptr: *mut u8,
    len: usize,
}

impl OutBytes {
    /// Checks a byte output of exactly `need` bytes.
    ///
    /// # Safety
    /// A non-null `ptr` is writable for `len` bytes until the call returns.
    pub(crate) unsafe fn new(
        ptr: *mut u8,
        len: usize,
        need: usize,
        what: &str,
    ) -> Result<Self, Error> {
        if ptr.is_null() {
            return Err(Error::null(what));
        }
        if len != need {
            return Err(Error::length(what, need, len));
        }
        Ok(Self { ptr, len })
    }

    /// Writes exactly the checked length (a shorter `src` is an internal
    /// error, never a short write).
    pub(crate) fn write(&mut self, src: &[u8]) -> Result<(), Error> {
        if src.len() != self.len {
            return Err(Error::internal());
        }
        // SAFETY: `new` checked non-null and the length, its contract makes
        // the bytes writable, and `src` is library memory distinct from the
        // caller's output.
        unsafe { ptr::copy_nonoverlapping(src.as_ptr(), self.ptr, self.len) };
        Ok(())
    }
}

/// A byte buffer owned by the library: `len` bytes at `ptr` (NULL when
/// `len` is 0). Free it with `sr_buffer_free`, which also wipes it; do not
/// change `ptr` or `len`.
#[derive(Debug)]
#[repr(C)]
pub struct sr_buffer {
    /// The bytes (NULL when empty).
    pub ptr: *mut u8,
    /// How many.
    pub len: usize,
}

impl sr_buffer {
    /// The empty buffer (what every output buffer holds after a failure).
    pub(crate) const EMPTY: Self = Self {
        ptr: ptr::null_mut(),
        len: 0,
    };

    pub(crate) fn from_vec(v: Vec<u8>) -> Self {
        if v.is_empty() {
            return Self::EMPTY;
        }
        let boxed = v.into_boxed_slice();
        let len = boxed.len();
        Self {
            ptr: Box::into_raw(boxed).cast::<u8>(),
            len,
        }
    }

    /// Wipes and frees the bytes; leaves the buffer empty.
    ///
    /// # Safety
    /// `ptr` and `len` are as [`sr_buffer::from_vec`] made them (or NULL).
    pub(crate) unsafe fn release(&mut self) {
        if !self.ptr.is_null() {
            let raw = ptr::slice_from_raw_parts_mut(self.ptr, self.len);
            // SAFETY: `ptr`/`len` are a `Box<[u8]>` made by `from_vec`
            // (the contract), given back once.
            let mut boxed = unsafe { Box::from_raw(raw) };
            boxed.zeroize();
        }
        *self = Self::EMPTY;
    }
}

/// Wipes and frees a buffer's bytes and sets it to empty (`ptr` NULL, `len`
/// 0), so freeing it twice is harmless. NULL `buffer`, or an empty one, is
/// allowed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sr_buffer_free(buffer: *mut sr_buffer) {
    guard_void(|| {
        if buffer.is_null() || !buffer.is_aligned() {
            return;
        }
        // SAFETY: non-null and aligned; by the contract a buffer this
        // library filled, not used by another thread during the call.
        let buffer = unsafe { &mut *buffer };
        // SAFETY: a buffer this library filled (the contract).
        unsafe { buffer.release() };
    });
}

/// A new library-owned C string.
pub(crate) fn string_out(s: &str) -> Result<*mut c_char, Error> {
    CString::new(s)
        .map(CString::into_raw)
        .map_err(|_| Error::internal())
}

/// Wipes and frees a string returned by this library. NULL is allowed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sr_string_free(string: *mut c_char) {
    guard_void(|| {
        if string.is_null() {
            return;
        }
        // SAFETY: a string made by `string_out` (`CString::into_raw`),
        // given back once (the contract).
        let owned = unsafe { CString::from_raw(string) };
        owned.into_bytes().zeroize();
    });
}

/// The library's version, a static NUL-terminated string.
#[unsafe(no_mangle)]
pub extern "C" fn sr_version() -> *const c_char {
    const VERSION: &CStr =
        match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
            Ok(v) => v,
            Err(_) => c"unknown",
        };
    VERSION.as_ptr()
}
