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

use super::error::{RecordError, RecordKind};
use super::records::{Name, RecordKeys};
use crate::ratchet::StorageKey;
use alloc::vec::Vec;

fn name(kind: RecordKind, account: &[u8; 32], device: &[u8; 32]) -> Name {
    Name {
        kind,
        account: *account,
        device: *device,
    }
}

/// `K_rec`, `K_name` and `check` derived from `storage_key` (spec §10.3,
/// "Keys"), for test vectors only.
pub fn hazmat_record_keys(storage_key: &StorageKey) -> ([u8; 32], [u8; 32], [u8; 16]) {
    RecordKeys::derive(storage_key).hazmat_parts()
}

/// A record's 65-byte name `kind ‖ account ‖ device` (spec §10.3; zeros
/// where the kind has no account or device), for test vectors only.
pub fn hazmat_record_name(kind: RecordKind, account: &[u8; 32], device: &[u8; 32]) -> [u8; 65] {
    name(kind, account, device).encode()
}

/// The 17-byte store key of a record (spec §10.3: fixed for the head, a
/// keyed hash of the name otherwise), for test vectors only.
pub fn hazmat_record_key(
    storage_key: &StorageKey,
    kind: RecordKind,
    account: &[u8; 32],
    device: &[u8; 32],
) -> Vec<u8> {
    RecordKeys::derive(storage_key).key(&name(kind, account, device))
}

/// Seals `plain` as the record `kind ‖ account ‖ device` at `generation`
/// with the caller's `nonce` (spec §10.3, "Value"), for test vectors only:
/// a nonce must never be reused under one storage key.
pub fn hazmat_seal_record(
    storage_key: &StorageKey,
    kind: RecordKind,
    account: &[u8; 32],
    device: &[u8; 32],
    generation: u64,
    nonce: &[u8; 24],
    plain: &[u8],
) -> Vec<u8> {
    RecordKeys::derive(storage_key).seal_with_nonce(
        nonce,
        &name(kind, account, device),
        generation,
        plain,
    )
}

/// Opens `value` as the record `kind ‖ account ‖ device` (spec §10.3, the
/// checks 1–8 of "Opening a record", in that order): its generation and
/// plain content, which is not decoded. For test vectors only.
pub fn hazmat_open_record(
    storage_key: &StorageKey,
    kind: RecordKind,
    account: &[u8; 32],
    device: &[u8; 32],
    value: &[u8],
) -> Result<(u64, Vec<u8>), RecordError> {
    RecordKeys::derive(storage_key)
        .open(&name(kind, account, device), value)
        .map(|(generation, plain)| (generation, plain.to_vec()))
}
