//! Valgrind memcheck client requests for `tests/ctgrind.rs`: mark memory as
//! undefined (secret) or defined (public) so memcheck reports every branch
//! and every memory address that depends on a secret.
//!
//! A test-only dev-dependency of `session-ratchet`; the library itself keeps
//! `#![forbid(unsafe_code)]`. A client request is the magic instruction
//! sequence of `valgrind.h` (`VALGRIND_DO_CLIENT_REQUEST_EXPR`): it is a no-op
//! on a real CPU and is intercepted when running under Valgrind, so the
//! functions below are safe to call in any build. On architectures other than
//! x86_64 and aarch64 they do nothing and [`running_on_valgrind`] is `false`.
//! No C headers or build script are needed.
#![no_std]

/// `VG_USERREQ_TOOL_BASE('M','C')` (memcheck.h).
const MC_BASE: usize = ((b'M' as usize) << 24) | ((b'C' as usize) << 16);
/// `VG_USERREQ__MAKE_MEM_UNDEFINED`.
const MAKE_MEM_UNDEFINED: usize = MC_BASE + 1;
/// `VG_USERREQ__MAKE_MEM_DEFINED`.
const MAKE_MEM_DEFINED: usize = MC_BASE + 2;
/// `VG_USERREQ__RUNNING_ON_VALGRIND` (valgrind.h).
const RUNNING_ON_VALGRIND: usize = 0x1001;

/// Issues a client request; returns `default` when not under Valgrind.
#[inline(never)]
fn request(default: usize, args: &[usize; 6]) -> usize {
    #[allow(unused_mut)]
    let mut result = default;
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the rotations of rdi add up to 128 bits (rdi is unchanged and is
    // declared clobbered anyway) and `xchg rbx, rbx` is a no-op, so on a real
    // CPU the block only moves `default` through rdx. Under Valgrind the
    // sequence is recognised and the request reads the six words `args`
    // points to, which live for the whole call; memcheck only changes its
    // shadow state, never the program's memory.
    unsafe {
        core::arch::asm!(
            "rol rdi, 3",
            "rol rdi, 13",
            "rol rdi, 61",
            "rol rdi, 51",
            "xchg rbx, rbx",
            inout("rdx") result,
            in("rax") args.as_ptr(),
            inout("rdi") 0usize => _,
            options(nostack),
        );
    }
    #[cfg(target_arch = "aarch64")]
    // SAFETY: the rotations of x12 add up to 128 bits and `orr x10, x10, x10`
    // is a no-op, so on a real CPU the block only moves `default` through x3.
    // Under Valgrind the request reads the six words at x4 (`args`, alive for
    // the call) and writes its result to x3.
    unsafe {
        core::arch::asm!(
            "ror x12, x12, #3",
            "ror x12, x12, #13",
            "ror x12, x12, #51",
            "ror x12, x12, #61",
            "orr x10, x10, x10",
            inout("x3") result,
            in("x4") args.as_ptr(),
            inout("x12") 0usize => _,
            options(nostack),
        );
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    let _ = args;
    result
}

/// Whether the program runs under Valgrind.
pub fn running_on_valgrind() -> bool {
    request(0, &[RUNNING_ON_VALGRIND, 0, 0, 0, 0, 0]) != 0
}

/// [`make_undefined`] for the bytes of any value (a secret held in a local).
pub fn classify<T: ?Sized>(value: &T) {
    request(
        0,
        &[
            MAKE_MEM_UNDEFINED,
            core::ptr::from_ref(value).cast::<u8>() as usize,
            core::mem::size_of_val(value),
            0,
            0,
            0,
        ],
    );
}

/// [`make_defined`] for the bytes of any value (a result that is public).
pub fn declassify<T: ?Sized>(value: &T) {
    request(
        0,
        &[
            MAKE_MEM_DEFINED,
            core::ptr::from_ref(value).cast::<u8>() as usize,
            core::mem::size_of_val(value),
            0,
            0,
            0,
        ],
    );
}
