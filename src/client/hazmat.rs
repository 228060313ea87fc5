//! Records at rest without a device (spec §10.3), for producing and
//! checking the published test vectors (`test-vectors/records.json`).
//!
//! Only with the `hazmat-test-vectors` feature: these functions take the
//! nonce from the caller and hand out the keys derived from the storage key
//! and the plain contents of records. A client never needs them; a
//! [`super::Device`] seals and opens its own records.
//!
//! Each function runs the code the device uses: the same derivation, the
//! same record keys, the same sealing (with the nonce given instead of
//! drawn) and the same opening checks, in the order of §10.3.
//!
//! `owner` is the device id the records belong to (the head's
//! `device_id`): every record but the head binds it into its associated
//! data, so a record of another device's store under the same storage key
//! does not open. The head's own sealing and opening do not depend on it.

use super::error::{RecordError, RecordKind};
use super::records::{Name, RecordKeys};
use crate::device::list::DeviceId;
use crate::ratchet::StorageKey;
use alloc::vec::Vec;

fn name(kind: RecordKind, account: &[u8; 32], device: &[u8; 32]) -> Name {
    Name {
        kind,
        account: *account,
        device: *device,
    }
}

fn keys(storage_key: &StorageKey, owner: &[u8; 32]) -> RecordKeys {
    let mut keys = RecordKeys::derive(storage_key);
    keys.set_owner(&DeviceId::from_bytes(*owner));
    keys
}

/// `K_rec`, `K_name`, `check` and `K_log` derived from `storage_key`
/// (spec §10.3, "Keys": bytes 0–31, 32–63, 64–79 and 80–111 of the HKDF
/// output; `K_log` keys the identifier tags of log lines, §10.10), for test
/// vectors only.
pub fn hazmat_record_keys(storage_key: &StorageKey) -> ([u8; 32], [u8; 32], [u8; 16], [u8; 32]) {
    RecordKeys::derive(storage_key).hazmat_parts()
}

/// A record's 65-byte name `kind ‖ account ‖ device` (spec §10.3; zeros
/// where the kind has no account or device), for test vectors only.
pub fn hazmat_record_name(kind: RecordKind, account: &[u8; 32], device: &[u8; 32]) -> [u8; 65] {
    name(kind, account, device).encode()
}

/// The 17-byte store key of a record (spec §10.3: fixed for the head, a
/// keyed hash of the name otherwise; it does not depend on the owner), for
/// test vectors only.
pub fn hazmat_record_key(
    storage_key: &StorageKey,
    kind: RecordKind,
    account: &[u8; 32],
    device: &[u8; 32],
) -> Vec<u8> {
    RecordKeys::derive(storage_key).key(&name(kind, account, device))
}

/// Seals `plain` as the record `kind ‖ account ‖ device` of the device
/// `owner` at `generation` with the caller's `nonce` (spec §10.3, "Value":
/// `AD = LABEL_STORED_RECORD ‖ value[0..27] ‖ name`, then `‖ owner` for
/// every kind but the head), for test vectors only: a nonce must never be
/// reused under one storage key.
#[allow(clippy::too_many_arguments)]
pub fn hazmat_seal_record(
    storage_key: &StorageKey,
    owner: &[u8; 32],
    kind: RecordKind,
    account: &[u8; 32],
    device: &[u8; 32],
    generation: u64,
    nonce: &[u8; 24],
    plain: &[u8],
) -> Vec<u8> {
    keys(storage_key, owner).seal_with_nonce(nonce, &name(kind, account, device), generation, plain)
}

/// Opens `value` as the record `kind ‖ account ‖ device` of the device
/// `owner` (spec §10.3, the checks 1–8 of "Opening a record", in that
/// order: a `check` that differs is [`RecordError::WrongKey`] for the head
/// only, `Corrupted(Authentication)` for every other kind): its generation
/// and plain content, which is not decoded. The checks against the held
/// head and the anchors (steps 9 and 9a) need a device and are not made.
/// For test vectors only.
pub fn hazmat_open_record(
    storage_key: &StorageKey,
    owner: &[u8; 32],
    kind: RecordKind,
    account: &[u8; 32],
    device: &[u8; 32],
    value: &[u8],
) -> Result<(u64, Vec<u8>), RecordError> {
    keys(storage_key, owner)
        .open(&name(kind, account, device), value)
        .map(|(generation, plain)| (generation, plain.to_vec()))
}
