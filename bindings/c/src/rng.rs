//! Randomness for a device: the OS RNG, or (feature `hazmat-test-vectors`)
//! a seeded one for tests.

use crate::error::{Error, sr_error, sr_status};
use crate::ffi::{Handle, Out, guard, guard_void, into_handle, take_handle};
use session_ratchet::rand_core::{CryptoRng, UnwrapErr};

/// The random-number generator a device draws from. Every constructor that
/// takes an `sr_rng *` takes ownership of it, whatever the result (do not
/// free it afterwards); NULL there means the OS RNG. Send: it may be
/// created on one thread and passed to a device on another.
#[repr(C)]
pub struct sr_rng {
    magic: u64,
    rng: Box<dyn CryptoRng + Send>,
}

impl core::fmt::Debug for sr_rng {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("sr_rng")
    }
}

impl Handle for sr_rng {
    const MAGIC: u64 = 0x7372_5f72_6e67_0000; // "sr_rng"
    const NAME: &'static str = "sr_rng";
}

/// Bytes of the seed of `sr_rng_new_seeded`.
pub const SR_RNG_SEED_LEN: usize = 32;

/// The operating system's RNG (`getrandom`).
pub(crate) fn os_rng() -> Box<dyn CryptoRng + Send> {
    Box::new(UnwrapErr(getrandom::SysRng))
}

/// Takes the RNG argument of a constructor: NULL is the OS RNG.
///
/// # Safety
/// `rng` is NULL or a live `sr_rng` the caller gives up.
pub(crate) unsafe fn take_rng(rng: *mut sr_rng) -> Result<Box<dyn CryptoRng + Send>, Error> {
    if rng.is_null() {
        return Ok(os_rng());
    }
    // SAFETY: forwarded contract.
    match unsafe { take_handle(rng) } {
        Some(boxed) => Ok(boxed.rng),
        None => Err(Error::new(
            crate::error::SR_ERR_INVALID_HANDLE,
            "argument `rng` is not a live sr_rng (a handle of another type, or one already given to a device)",
        )),
    }
}

/// A new handle on the operating system's RNG (the same as passing NULL
/// where an `sr_rng *` is taken).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sr_rng_new_os(
    out: *mut *mut sr_rng,
    err: *mut *mut sr_error,
) -> sr_status {
    guard(err, || {
        // SAFETY: P2: an output pointer is NULL or writable for its type (or its length) during the call.
        let mut out = unsafe { Out::new(out, "out") }?;
        out.write(into_handle(sr_rng {
            magic: sr_rng::MAGIC,
            rng: os_rng(),
        }));
        Ok(())
    })
}

/// TESTS ONLY (feature `hazmat-test-vectors`): a ChaCha20 RNG from a
/// 32-byte seed (`seed_len` must be `SR_RNG_SEED_LEN`). Every key and nonce
/// a device draws from it follows from the seed, so never use it in a
/// client.
#[cfg(feature = "hazmat-test-vectors")]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sr_rng_new_seeded(
    seed: *const u8,
    seed_len: usize,
    out: *mut *mut sr_rng,
    err: *mut *mut sr_error,
) -> sr_status {
    use rand_chacha::ChaCha20Rng;
    use rand_chacha::rand_core::SeedableRng;
    guard(err, || {
        // SAFETY: P2: an output pointer is NULL or writable for its type (or its length) during the call.
        let mut out = unsafe { Out::new(out, "out") }?;
        out.write(std::ptr::null_mut());
        // SAFETY: P1: an input pointer is NULL or readable for its length (a string: to its NUL) during the call.
        let mut bytes = unsafe { crate::ffi::array_in::<SR_RNG_SEED_LEN>(seed, seed_len, "seed") }?;
        let rng = ChaCha20Rng::from_seed(bytes);
        zeroize::Zeroize::zeroize(&mut bytes);
        out.write(into_handle(sr_rng {
            magic: sr_rng::MAGIC,
            rng: Box::new(rng),
        }));
        Ok(())
    })
}

/// Frees an RNG that was not given to a constructor. NULL is allowed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sr_rng_free(rng: *mut sr_rng) {
    guard_void(|| {
        // SAFETY: P3: a handle argument is NULL or a live handle of this library.
        drop(unsafe { take_handle(rng) });
    });
}
