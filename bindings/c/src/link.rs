//! Linking a new device to an account (spec §8.5): `sr_linking` on the new
//! device, `sr_link_approval` on the existing one.

use crate::device::{
    info_arg, new_device, sr_device, sr_device_info, storage_key_arg, with_device,
};
use crate::error::{
    Error, SR_ERR_HANDLE_IN_USE, SR_ERR_INTERNAL, SR_ERR_LINK, sr_error, sr_status,
};
use crate::ffi::{
    Handle, Out, bytes_in, guard, guard_void, handle, into_handle, sr_buffer, string_out,
    take_handle,
};
use crate::rng::{sr_rng, take_rng};
use crate::store::{sr_store, store_arg};
use session_ratchet::client::{LinkApproval, LinkingDevice};
use session_ratchet::device::sas::{SAS_EXTENDED_LEN, SAS_SHORT_LEN, Sas, emoji};
use std::ffi::c_char;
use std::sync::{Mutex, TryLockError};

/// Emoji shown by default (the first `SR_SAS_SHORT_LEN` of `sr_sas`).
pub const SR_SAS_SHORT_LEN: usize = 7;
/// Emoji in the extended view (all of `sr_sas`).
pub const SR_SAS_EXTENDED_LEN: usize = 21;
const _: () = assert!(SR_SAS_SHORT_LEN == SAS_SHORT_LEN && SR_SAS_EXTENDED_LEN == SAS_EXTENDED_LEN);
/// Bytes of each `sr_sas.emoji` entry, with its NUL.
pub const SR_SAS_EMOJI_SIZE: usize = 16;
/// Bytes of each `sr_sas.names` entry, with its NUL.
pub const SR_SAS_NAME_SIZE: usize = 24;

/// An emoji short authentication string (spec §8.5.2): both devices show
/// it and the user confirms they match. Show the first `SR_SAS_SHORT_LEN`
/// (all `SR_SAS_EXTENDED_LEN` in the extended view). Plain data, no free.
#[derive(Debug)]
#[repr(C)]
pub struct sr_sas {
    /// Emoji indices (0–63) into the Matrix SAS list.
    pub indices: [u8; SR_SAS_EXTENDED_LEN],
    /// Each emoji, UTF-8, NUL-terminated.
    pub emoji: [[c_char; SR_SAS_EMOJI_SIZE]; SR_SAS_EXTENDED_LEN],
    /// Each emoji's English name ("Dog"), UTF-8, NUL-terminated.
    pub names: [[c_char; SR_SAS_NAME_SIZE]; SR_SAS_EXTENDED_LEN],
}

impl sr_sas {
    const EMPTY: Self = Self {
        indices: [0; SR_SAS_EXTENDED_LEN],
        emoji: [[0; SR_SAS_EMOJI_SIZE]; SR_SAS_EXTENDED_LEN],
        names: [[0; SR_SAS_NAME_SIZE]; SR_SAS_EXTENDED_LEN],
    };

    fn from_sas(sas: &Sas) -> Result<Self, Error> {
        let mut out = Self::EMPTY;
        out.indices = sas.indices;
        let rows = out.emoji.iter_mut().zip(out.names.iter_mut());
        for ((e, n), &i) in rows.zip(sas.indices.iter()) {
            let (glyph, name) = emoji(i).ok_or_else(|| {
                Error::new(
                    SR_ERR_LINK,
                    "the embedded SAS emoji list is corrupt; this build of the library is broken",
                )
            })?;
            copy_c(e, glyph)?;
            copy_c(n, name)?;
        }
        Ok(out)
    }
}

/// Copies `s` and a NUL into `dst` (which it must fit with room to spare).
fn copy_c<const N: usize>(dst: &mut [c_char; N], s: &str) -> Result<(), Error> {
    if s.len() >= N {
        return Err(Error::internal());
    }
    for (d, b) in dst.iter_mut().zip(s.bytes().chain(core::iter::repeat(0))) {
        *d = b as c_char;
    }
    Ok(())
}

// ---- the new device ----------------------------------------------------------

/// A new device joining an account, before it has a store: send
/// `sr_linking_request` to an existing device, show the SAS that
/// `sr_linking_receive_response` gives for its response, and
/// `sr_linking_finish` with the payload once the user confirmed on the
/// existing device. Send; one thread at a time (concurrent calls fail with
/// `SR_ERR_HANDLE_IN_USE`). Free with `sr_linking_free`.
#[repr(C)]
pub struct sr_linking {
    magic: u64,
    inner: Mutex<LinkingDevice>,
}

impl core::fmt::Debug for sr_linking {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("sr_linking")
    }
}

impl Handle for sr_linking {
    const MAGIC: u64 = 0x7372_5f6c_696e_6b67; // "sr_linkg"
    const NAME: &'static str = "sr_linking";
}

/// # Safety
/// `linking` is NULL or a live handle of this library.
unsafe fn with_linking<T>(
    linking: *const sr_linking,
    f: impl FnOnce(&mut LinkingDevice) -> Result<T, Error>,
) -> Result<T, Error> {
    // SAFETY: forwarded contract.
    let h = unsafe { handle(linking, "linking") }?;
    let mut inner = match h.inner.try_lock() {
        Ok(g) => g,
        Err(TryLockError::WouldBlock) => {
            return Err(Error::new(
                SR_ERR_HANDLE_IN_USE,
                "the linking handle is in use by another call: serialise calls on one handle",
            ));
        }
        Err(TryLockError::Poisoned(_)) => {
            return Err(Error::new(
                SR_ERR_INTERNAL,
                "an earlier call on this linking handle failed internally: start the link again",
            ));
        }
    };
    f(&mut inner)
}

/// Starts a link: a fresh identity, and the request (`sr_linking_request`)
/// to show as a QR code or send to the account. `rng` is taken (NULL: the
/// OS RNG); the device that `sr_linking_finish` makes keeps it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sr_linking_start(
    rng: *mut sr_rng,
    info: *const sr_device_info,
    out: *mut *mut sr_linking,
    err: *mut *mut sr_error,
) -> sr_status {
    guard(err, || {
        // SAFETY: P3: `rng` is NULL or a live sr_rng that the caller gives up.
        let rng = unsafe { take_rng(rng) };
        // SAFETY: P2: an output pointer is NULL or writable for its type (or its length) during the call.
        let mut out = unsafe { Out::new(out, "out") }?;
        out.write(std::ptr::null_mut());
        let rng = rng?;
        // SAFETY: P1: an input pointer is NULL or readable for its length (a string: to its NUL) during the call.
        let info = unsafe { info_arg(info) }?;
        let linking = LinkingDevice::start(rng, &info);
        out.write(into_handle(sr_linking {
            magic: sr_linking::MAGIC,
            inner: Mutex::new(linking),
        }));
        Ok(())
    })
}

/// The link request to hand to an existing device (a copy, in `*out`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sr_linking_request(
    linking: *const sr_linking,
    out: *mut sr_buffer,
    err: *mut *mut sr_error,
) -> sr_status {
    guard(err, || {
        // SAFETY: P2: an output pointer is NULL or writable for its type (or its length) during the call.
        let mut out = unsafe { Out::new(out, "out") }?;
        out.write(sr_buffer::EMPTY);
        // SAFETY: P3: a handle argument is NULL or a live handle of this library.
        let request = unsafe { with_linking(linking, |l| Ok(l.request().to_vec())) }?;
        out.write(sr_buffer::from_vec(request));
        Ok(())
    })
}

/// Takes the existing device's response and writes the SAS to show to
/// `*sas_out` (this computes a memory-hard hash: 16 MiB, tens of
/// milliseconds). A forged response fails here or gives a different SAS;
/// the link stays open for the genuine one.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sr_linking_receive_response(
    linking: *mut sr_linking,
    response: *const u8,
    response_len: usize,
    sas_out: *mut sr_sas,
    err: *mut *mut sr_error,
) -> sr_status {
    guard(err, || {
        // SAFETY: P2: an output pointer is NULL or writable for its type (or its length) during the call.
        let mut out = unsafe { Out::new(sas_out, "sas_out") }?;
        out.write(sr_sas::EMPTY);
        // SAFETY: P1: an input pointer is NULL or readable for its length (a string: to its NUL) during the call.
        let response = unsafe { bytes_in(response, response_len, "response") }?;
        // SAFETY: P3: a handle argument is NULL or a live handle of this library.
        let sas =
            unsafe { with_linking(linking.cast_const(), |l| Ok(*l.receive_response(response)?)) }?;
        out.write(sr_sas::from_sas(&sas)?);
        Ok(())
    })
}

/// Opens the approving device's payload and becomes a device of the
/// account, committed to `store` (which must be empty): the device in
/// `*out`. `contacts_out` (NULL: not wanted) receives the contacts the
/// approving device talks to, as concatenated `SR_ACCOUNT_KEY_LEN`-byte
/// account keys: fetch each one's device list and prekey record and add
/// it. On error nothing is written and another payload may be tried. The
/// linking handle is spent after a success; free it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sr_linking_finish(
    linking: *mut sr_linking,
    store: *const sr_store,
    storage_key: *const u8,
    storage_key_len: usize,
    payload: *const u8,
    payload_len: usize,
    now: u64,
    out: *mut *mut sr_device,
    contacts_out: *mut sr_buffer,
    err: *mut *mut sr_error,
) -> sr_status {
    guard(err, || {
        // SAFETY: P2: an output pointer is NULL or writable for its type (or its length) during the call.
        let mut out = unsafe { Out::new(out, "out") }?;
        out.write(std::ptr::null_mut());
        // SAFETY: P2: an output pointer is NULL or writable for its type (or its length) during the call.
        let mut contacts = unsafe { Out::optional(contacts_out, "contacts_out") }?;
        if let Some(c) = contacts.as_mut() {
            c.write(sr_buffer::EMPTY);
        }
        // SAFETY: P3: a handle argument is NULL or a live handle of this library.
        let store = unsafe { store_arg(store) }?;
        // SAFETY: P1: an input pointer is NULL or readable for its length (a string: to its NUL) during the call.
        let key = unsafe { storage_key_arg(storage_key, storage_key_len) }?;
        // SAFETY: P1: an input pointer is NULL or readable for its length (a string: to its NUL) during the call.
        let payload = unsafe { bytes_in(payload, payload_len, "payload") }?;
        // SAFETY: P3: a handle argument is NULL or a live handle of this library.
        let linked = unsafe {
            with_linking(linking.cast_const(), |l| {
                Ok(l.finish(store, &key, payload, now)?)
            })
        }?;
        if let Some(c) = contacts.as_mut() {
            c.write(sr_buffer::from_vec(
                linked.contacts.iter().flat_map(|k| k.to_bytes()).collect(),
            ));
        }
        out.write(new_device(linked.device));
        Ok(())
    })
}

/// Frees a linking handle. NULL is allowed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sr_linking_free(linking: *mut sr_linking) {
    guard_void(|| {
        // SAFETY: P3: a handle argument is NULL or a live handle of this library.
        drop(unsafe { take_handle(linking) });
    });
}

// ---- the existing device -----------------------------------------------------

/// The existing device's side of a link in progress: show its SAS and ask
/// the user whether the new device shows the same emoji; then
/// `sr_device_approve_link` (which takes it) or `sr_link_approval_free`.
/// Send; read-only.
#[repr(C)]
pub struct sr_link_approval {
    magic: u64,
    approval: LinkApproval,
}

impl core::fmt::Debug for sr_link_approval {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("sr_link_approval")
    }
}

impl Handle for sr_link_approval {
    const MAGIC: u64 = 0x7372_5f61_7070_726f; // "sr_appro"
    const NAME: &'static str = "sr_link_approval";
}

/// Answers a new device's link request (spec §8.5): the approval in
/// `*approval_out` (show its SAS) and the response to send back in
/// `*response_out`. Needs the account key. Changes nothing.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sr_device_respond_to_link(
    device: *mut sr_device,
    request: *const u8,
    request_len: usize,
    approval_out: *mut *mut sr_link_approval,
    response_out: *mut sr_buffer,
    err: *mut *mut sr_error,
) -> sr_status {
    guard(err, || {
        // SAFETY: P2: an output pointer is NULL or writable for its type (or its length) during the call.
        let mut approval_out = unsafe { Out::new(approval_out, "approval_out") }?;
        approval_out.write(std::ptr::null_mut());
        // SAFETY: P2: an output pointer is NULL or writable for its type (or its length) during the call.
        let mut response_out = unsafe { Out::new(response_out, "response_out") }?;
        response_out.write(sr_buffer::EMPTY);
        // SAFETY: P1: an input pointer is NULL or readable for its length (a string: to its NUL) during the call.
        let request = unsafe { bytes_in(request, request_len, "request") }?;
        // SAFETY: P3: a handle argument is NULL or a live handle of this library.
        let (approval, response) = unsafe {
            with_device(device.cast_const(), |s| {
                Ok(s.device.respond_to_link(request)?)
            })
        }?;
        response_out.write(sr_buffer::from_vec(response));
        approval_out.write(into_handle(sr_link_approval {
            magic: sr_link_approval::MAGIC,
            approval,
        }));
        Ok(())
    })
}

/// The SAS to show on the existing device, in `*sas_out`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sr_link_approval_sas(
    approval: *const sr_link_approval,
    sas_out: *mut sr_sas,
    err: *mut *mut sr_error,
) -> sr_status {
    guard(err, || {
        // SAFETY: P2: an output pointer is NULL or writable for its type (or its length) during the call.
        let mut out = unsafe { Out::new(sas_out, "sas_out") }?;
        out.write(sr_sas::EMPTY);
        // SAFETY: P3: a handle argument is NULL or a live handle of this library.
        let approval = unsafe { handle(approval, "approval") }?;
        out.write(sr_sas::from_sas(approval.approval.sas())?);
        Ok(())
    })
}

/// The requesting device's description, to show next to the SAS, in
/// `*out` (free with `sr_string_free`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sr_link_approval_description(
    approval: *const sr_link_approval,
    out: *mut *mut c_char,
    err: *mut *mut sr_error,
) -> sr_status {
    guard(err, || {
        // SAFETY: P2: an output pointer is NULL or writable for its type (or its length) during the call.
        let mut out = unsafe { Out::new(out, "out") }?;
        out.write(std::ptr::null_mut());
        // SAFETY: P3: a handle argument is NULL or a live handle of this library.
        let approval = unsafe { handle(approval, "approval") }?;
        out.write(string_out(approval.approval.description())?);
        Ok(())
    })
}

/// The user confirmed that both devices show the same SAS: signs the next
/// device list adding the new device, commits it, and returns the payload
/// for the new device (`*payload_out`) and the list to publish
/// (`*list_out`). With `share_account_key` the new device can link and
/// revoke too (Session's model). Takes `approval`, whatever the result (do
/// not free it afterwards).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sr_device_approve_link(
    device: *mut sr_device,
    approval: *mut sr_link_approval,
    now: u64,
    share_account_key: bool,
    payload_out: *mut sr_buffer,
    list_out: *mut sr_buffer,
    err: *mut *mut sr_error,
) -> sr_status {
    guard(err, || {
        let taken = if approval.is_null() {
            None
        } else {
            // SAFETY: P3: `approval` is a live handle that the caller gives up.
            Some(unsafe { take_handle(approval) })
        };
        // SAFETY: P2: an output pointer is NULL or writable for its type (or its length) during the call.
        let mut payload_out = unsafe { Out::new(payload_out, "payload_out") }?;
        payload_out.write(sr_buffer::EMPTY);
        // SAFETY: P2: an output pointer is NULL or writable for its type (or its length) during the call.
        let mut list_out = unsafe { Out::new(list_out, "list_out") }?;
        list_out.write(sr_buffer::EMPTY);
        let approval = match taken {
            None => return Err(Error::null("approval")),
            Some(None) => {
                return Err(Error::new(
                    crate::error::SR_ERR_INVALID_HANDLE,
                    "argument `approval` is not a live sr_link_approval (a handle of another type, or one already used)",
                ));
            }
            Some(Some(a)) => a.approval,
        };
        // SAFETY: P3: a handle argument is NULL or a live handle of this library.
        let approved = unsafe {
            with_device(device.cast_const(), |s| {
                Ok(s.device.approve_link(approval, now, share_account_key)?)
            })
        }?;
        payload_out.write(sr_buffer::from_vec(approved.payload));
        list_out.write(sr_buffer::from_vec(approved.device_list));
        Ok(())
    })
}

/// Frees an approval that was not given to `sr_device_approve_link` (the
/// user said the emoji differ). NULL is allowed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sr_link_approval_free(approval: *mut sr_link_approval) {
    guard_void(|| {
        // SAFETY: P3: `approval` is a live handle that the caller gives up.
        drop(unsafe { take_handle(approval) });
    });
}
