//! The canonical wire encoding (spec §6).
//!
//! This module owns the byte-level rules every encoded object follows: a
//! version byte and a type byte up front, big-endian integers, fixed-length
//! fields for keys, presence flags whose unused bits must be zero, no trailing
//! bytes, and a hard cap on total length checked before anything else. The
//! layouts of individual objects live with their types ([`crate::prekey`],
//! [`crate::handshake`]) and use the [`Reader`]/[`Writer`] here, so there is
//! exactly one implementation of each rule.
//!
//! Decoding is canonical: for every object there is exactly one accepted
//! encoding, and `decode(encode(x)) == x`, `encode(decode(b)) == b`.
//! Nothing is allocated in proportion to a length read from the input: every
//! field is fixed-size except a trailing payload, which is a sub-slice of the
//! (already size-capped) input.

use alloc::vec::Vec;
use core::fmt;
use zeroize::Zeroize;

/// Version byte of every encoding defined by this crate (spec §6.1).
pub const WIRE_VERSION: u8 = 0x01;

/// Largest encoded object this crate accepts: Session's storage limit for one
/// message (76,800 bytes). Longer input is rejected before it is parsed.
pub const MAX_WIRE_LEN: usize = 76_800;

/// Largest stored object (a session with the maximum of skipped keys is
/// about 80 KB): bounds what loading a corrupted blob can allocate.
pub const MAX_STORED_LEN: usize = 1 << 20;

/// Type bytes (spec §6.2). Each encoded object starts `WIRE_VERSION || type`.
pub mod message_type {
    /// A prekey bundle (spec §4.4).
    pub const PREKEY_BUNDLE: u8 = 0x01;
    /// An initiator's prekey message: handshake header plus payload (spec §5.6).
    pub const PREKEY_MESSAGE: u8 = 0x02;
    /// A device certificate (spec §4.2).
    pub const DEVICE_CERTIFICATE: u8 = 0x03;
    /// A double-ratchet message (spec §7.7).
    pub const RATCHET_MESSAGE: u8 = 0x04;
    /// An account's signed device list (spec §8.2).
    pub const DEVICE_LIST: u8 = 0x05;
    /// An account's prekey record: padded, encrypted bundle slots (spec §8.4).
    pub const PREKEY_RECORD: u8 = 0x06;
    /// A fan-out envelope: one padded, encrypted slot per recipient device (spec §8.7).
    pub const ENVELOPE: u8 = 0x07;
    /// A new device's request to join an account (spec §8.5.3).
    pub const LINK_REQUEST: u8 = 0x08;
    /// An existing device's answer to a link request (spec §8.5.4).
    pub const LINK_RESPONSE: u8 = 0x09;
    /// The sealed payload of an approved device link (spec §8.5.6).
    pub const LINK_PAYLOAD: u8 = 0x0A;
    /// A stored session (spec §7.10; storage only, never sent).
    pub const STORED_SESSION: u8 = 0x10;
    /// A stored session encrypted under a storage key (spec §7.10; storage only).
    pub const ENCRYPTED_STORED_SESSION: u8 = 0x11;
    /// A stored Session v2 upgrade session (spec §9.11.7; storage only).
    pub const STORED_UPGRADE_SESSION: u8 = 0x12;
    /// A stored prekey store (spec §4.6; storage only, never sent).
    pub const STORED_PREKEYS: u8 = 0x13;
    /// A stored prekey store encrypted under a storage key (spec §4.6; storage only).
    pub const ENCRYPTED_STORED_PREKEYS: u8 = 0x14;
}

/// Why bytes could not be decoded. Decoding changes no state, so any of these
/// means: drop the input (and, for a peer's message, report it as malformed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WireError {
    /// The input ended inside `field`.
    Truncated {
        /// The field being read.
        field: &'static str,
    },
    /// Bytes remained after the last field; canonical encodings have none.
    TrailingBytes {
        /// How many bytes were left over.
        count: usize,
    },
    /// The input is longer than the object may be: [`MAX_WIRE_LEN`] for
    /// everything sent, unless the object's layout states another cap.
    TooLong {
        /// The input length.
        len: usize,
    },
    /// The version byte is not [`WIRE_VERSION`]; the sender runs a newer
    /// (or different) protocol version.
    UnsupportedVersion {
        /// The version byte received.
        version: u8,
    },
    /// The type byte names a different kind of object than the caller expected.
    UnexpectedType {
        /// The type this decoder handles.
        expected: u8,
        /// The type byte received.
        actual: u8,
    },
    /// A flags byte has bits set that this version does not define.
    InvalidFlags {
        /// The field holding the flags.
        field: &'static str,
        /// The byte received.
        flags: u8,
    },
    /// An Ed25519 public key does not decode to a valid curve point, or is of
    /// small order.
    InvalidEd25519Key {
        /// The field holding the key.
        field: &'static str,
    },
    /// An ML-KEM-768 public key failed the FIPS 203 §7.2 modulus check.
    InvalidMlKemKey {
        /// The field holding the key.
        field: &'static str,
    },
    /// A field that must not be empty was empty.
    Empty {
        /// The field.
        field: &'static str,
    },
    /// A count read from the input exceeds the bound the spec sets for it.
    TooMany {
        /// The counted field.
        field: &'static str,
        /// The count received.
        count: usize,
        /// The largest count allowed.
        max: usize,
    },
    /// A length prefix read from the input exceeds the bound the spec sets for it.
    LengthExceeded {
        /// The length-prefixed field.
        field: &'static str,
        /// The length received.
        len: usize,
        /// The largest length allowed.
        max: usize,
    },
    /// A text field is not valid UTF-8.
    InvalidUtf8 {
        /// The field.
        field: &'static str,
    },
    /// Items that must be in strictly ascending order (so each object has
    /// exactly one encoding) are out of order or repeated.
    NotCanonical {
        /// The field.
        field: &'static str,
    },
    /// A field holds a value the spec does not allow there.
    InvalidValue {
        /// The field.
        field: &'static str,
    },
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { field } => write!(f, "input ends inside field `{field}`"),
            Self::TrailingBytes { count } => {
                write!(f, "{count} unexpected bytes after the last field")
            }
            Self::TooLong { len } => write!(
                f,
                "input of {len} bytes exceeds the size limit of this object type ({MAX_WIRE_LEN} bytes unless its layout states another)"
            ),
            Self::UnsupportedVersion { version } => write!(
                f,
                "wire version {version:#04x} is not supported (this build speaks {WIRE_VERSION:#04x}); the peer may need an update, or this library does"
            ),
            Self::UnexpectedType { expected, actual } => {
                write!(f, "expected object type {expected:#04x}, got {actual:#04x}")
            }
            Self::InvalidFlags { field, flags } => {
                write!(
                    f,
                    "field `{field}` has undefined flag bits set ({flags:#04x})"
                )
            }
            Self::InvalidEd25519Key { field } => {
                write!(f, "field `{field}` is not a valid Ed25519 public key")
            }
            Self::InvalidMlKemKey { field } => write!(
                f,
                "field `{field}` is not a valid ML-KEM-768 public key (FIPS 203 modulus check failed)"
            ),
            Self::Empty { field } => write!(f, "field `{field}` must not be empty"),
            Self::TooMany { field, count, max } => {
                write!(
                    f,
                    "field `{field}` has {count} items; at most {max} are allowed"
                )
            }
            Self::LengthExceeded { field, len, max } => write!(
                f,
                "field `{field}` claims {len} bytes; at most {max} are allowed"
            ),
            Self::InvalidUtf8 { field } => write!(f, "field `{field}` is not valid UTF-8"),
            Self::NotCanonical { field } => write!(
                f,
                "items of `{field}` are out of order or repeated; the encoding is not canonical"
            ),
            Self::InvalidValue { field } => {
                write!(
                    f,
                    "field `{field}` holds a value this version does not allow"
                )
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for WireError {}

/// A cursor over untrusted input. Every read is bounds-checked and names the
/// field it reads, so errors say where the input went wrong.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Starts reading an object of type `ty`: checks the total length cap,
    /// the version byte and the type byte.
    pub(crate) fn start(input: &'a [u8], ty: u8) -> Result<Self, WireError> {
        Self::start_with_limit(input, ty, MAX_WIRE_LEN)
    }

    /// Like [`Reader::start`] but for stored objects, which may exceed
    /// [`MAX_WIRE_LEN`] (up to [`MAX_STORED_LEN`]).
    pub(crate) fn start_unbounded(input: &'a [u8], ty: u8) -> Result<Self, WireError> {
        Self::start_with_limit(input, ty, MAX_STORED_LEN)
    }

    /// Like [`Reader::start`] with an object-specific size cap `limit`.
    pub(crate) fn start_with_limit(
        input: &'a [u8],
        ty: u8,
        limit: usize,
    ) -> Result<Self, WireError> {
        if input.len() > limit {
            return Err(WireError::TooLong { len: input.len() });
        }
        let mut r = Self { rest: input };
        let version = r.u8("version")?;
        if version != WIRE_VERSION {
            return Err(WireError::UnsupportedVersion { version });
        }
        let actual = r.u8("type")?;
        if actual != ty {
            return Err(WireError::UnexpectedType {
                expected: ty,
                actual,
            });
        }
        Ok(r)
    }

    /// A cursor over the decrypted content of an object, which carries no
    /// version or type byte of its own (its envelope had them and is bound
    /// to it as associated data).
    pub(crate) fn content(input: &'a [u8]) -> Self {
        Self { rest: input }
    }

    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, WireError> {
        Ok(u16::from_be_bytes(self.array::<2>(field)?))
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, WireError> {
        let [b] = self.array::<1>(field)?;
        Ok(b)
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, WireError> {
        Ok(u32::from_be_bytes(self.array::<4>(field)?))
    }

    pub(crate) fn u64(&mut self, field: &'static str) -> Result<u64, WireError> {
        Ok(u64::from_be_bytes(self.array::<8>(field)?))
    }

    /// A count (already read as `count`) checked against its bound `max`
    /// before anything is allocated for it (spec §6.5).
    pub(crate) fn check_count(
        count: usize,
        max: usize,
        field: &'static str,
    ) -> Result<usize, WireError> {
        if count > max {
            return Err(WireError::TooMany { field, count, max });
        }
        Ok(count)
    }

    /// A field prefixed by its length `len` (already read), checked against
    /// `max` and then read as a sub-slice (no copy).
    pub(crate) fn bounded(
        &mut self,
        len: usize,
        max: usize,
        field: &'static str,
    ) -> Result<&'a [u8], WireError> {
        if len > max {
            return Err(WireError::LengthExceeded { field, len, max });
        }
        self.slice(len, field)
    }

    /// Bytes not yet read.
    pub(crate) fn remaining(&self) -> usize {
        self.rest.len()
    }

    pub(crate) fn array<const N: usize>(
        &mut self,
        field: &'static str,
    ) -> Result<[u8; N], WireError> {
        let (head, tail) = self
            .rest
            .split_first_chunk::<N>()
            .ok_or(WireError::Truncated { field })?;
        self.rest = tail;
        Ok(*head)
    }

    /// The next `n` bytes as a slice (no copy, no allocation).
    pub(crate) fn slice(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], WireError> {
        let (head, tail) = self
            .rest
            .split_at_checked(n)
            .ok_or(WireError::Truncated { field })?;
        self.rest = tail;
        Ok(head)
    }

    /// A flags byte whose bits outside `allowed` must be zero.
    pub(crate) fn flags(&mut self, allowed: u8, field: &'static str) -> Result<u8, WireError> {
        let flags = self.u8(field)?;
        if flags & !allowed != 0 {
            return Err(WireError::InvalidFlags { field, flags });
        }
        Ok(flags)
    }

    /// All remaining bytes (a trailing variable-length payload).
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        core::mem::take(&mut self.rest)
    }

    /// Ends decoding: no bytes may remain.
    pub(crate) fn finish(self) -> Result<(), WireError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(WireError::TrailingBytes {
                count: self.rest.len(),
            })
        }
    }
}

/// Builds an encoding; the mirror of [`Reader`].
///
/// Every serialiser of the crate writes through it, and many write secrets
/// (stored sessions, identities, prekeys, records), so it never leaves a
/// copy behind in freed memory (spec §1.4): when the buffer must grow it
/// moves the bytes to a larger block and wipes the old one itself (a plain
/// `Vec` would hand the old block to the allocator unwiped), and a writer
/// dropped before [`Writer::finish`] wipes its buffer.
pub(crate) struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// Starts an object of type `ty` with room for `capacity` bytes.
    pub(crate) fn start(ty: u8, capacity: usize) -> Self {
        let mut buf = Vec::with_capacity(capacity.max(2));
        buf.push(WIRE_VERSION);
        buf.push(ty);
        Self { buf }
    }

    pub(crate) fn u8(&mut self, v: u8) -> &mut Self {
        self.bytes(&[v])
    }

    pub(crate) fn u16(&mut self, v: u16) -> &mut Self {
        self.bytes(&v.to_be_bytes())
    }

    pub(crate) fn u32(&mut self, v: u32) -> &mut Self {
        self.bytes(&v.to_be_bytes())
    }

    pub(crate) fn u64(&mut self, v: u64) -> &mut Self {
        self.bytes(&v.to_be_bytes())
    }

    pub(crate) fn bytes(&mut self, v: &[u8]) -> &mut Self {
        crate::secret::extend_wiping(&mut self.buf, v);
        self
    }

    /// The encoding. Its owner wipes it if it holds a secret (the stored
    /// types do, on drop); its spare capacity never held any of it.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        core::mem::take(&mut self.buf)
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.buf.zeroize();
    }
}

/// The input to every signature this crate makes (spec §6.4): a label, a type
/// tag, and fields each prefixed by its 16-bit length, so no two different
/// (label, type, fields) tuples encode alike and a signature over a key of one
/// type can never verify as another.
pub(crate) fn signature_input(label: &[u8], type_tag: u8, fields: &[&[u8]]) -> Vec<u8> {
    let mut out =
        Vec::with_capacity(2 + label.len() + 1 + fields.iter().map(|f| 2 + f.len()).sum::<usize>());
    push_len_prefixed(&mut out, label);
    out.push(type_tag);
    for field in fields {
        push_len_prefixed(&mut out, field);
    }
    out
}

fn push_len_prefixed(out: &mut Vec<u8>, field: &[u8]) {
    // Every field signed by this crate is a key, an id or a label: at most a
    // few kilobytes. Saturating keeps this total; a field over 65,535 bytes
    // would be a programming error that the spec's tests would catch.
    let len = u16::try_from(field.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(field);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn header_checks() {
        assert_eq!(
            Reader::start(&[], 1).err(),
            Some(WireError::Truncated { field: "version" })
        );
        assert_eq!(
            Reader::start(&[1], 1).err(),
            Some(WireError::Truncated { field: "type" })
        );
        assert_eq!(
            Reader::start(&[2, 1], 1).err(),
            Some(WireError::UnsupportedVersion { version: 2 })
        );
        assert_eq!(
            Reader::start(&[1, 2], 1).err(),
            Some(WireError::UnexpectedType {
                expected: 1,
                actual: 2
            })
        );
        let long = alloc::vec![1u8; MAX_WIRE_LEN + 1];
        assert_eq!(
            Reader::start(&long, 1).err(),
            Some(WireError::TooLong {
                len: MAX_WIRE_LEN + 1
            })
        );
        assert!(Reader::start(&[1, 1], 1).unwrap().finish().is_ok());
    }

    #[test]
    fn flags_reject_undefined_bits() {
        let mut r = Reader::start(&[1, 1, 0b100], 1).unwrap();
        assert_eq!(
            r.flags(0b011, "f"),
            Err(WireError::InvalidFlags {
                field: "f",
                flags: 4
            })
        );
        let mut r = Reader::start(&[1, 1, 0b011], 1).unwrap();
        assert_eq!(r.flags(0b011, "f"), Ok(3));
    }

    #[test]
    fn signature_input_is_injective_on_field_boundaries() {
        let a = signature_input(b"L", 1, &[b"ab", b"c"]);
        let b = signature_input(b"L", 1, &[b"a", b"bc"]);
        let c = signature_input(b"L", 2, &[b"ab", b"c"]);
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_eq!(a, [0, 1, b'L', 1, 0, 2, b'a', b'b', 0, 1, b'c']);
    }

    proptest! {
        #[test]
        fn reader_never_panics(input in proptest::collection::vec(any::<u8>(), 0..64), n in 0usize..80) {
            if let Ok(mut r) = Reader::start(&input, input.get(1).copied().unwrap_or(0)) {
                let _ = r.u32("a");
                let _ = r.slice(n, "b");
                let _ = r.array::<7>("c");
                let _ = r.finish();
            }
        }

        #[test]
        fn writer_reader_round_trip(a in any::<u8>(), b in any::<u32>(), c in any::<[u8; 5]>()) {
            let mut w = Writer::start(9, 16);
            w.u8(a).u32(b).bytes(&c);
            let bytes = w.finish();
            let mut r = Reader::start(&bytes, 9).unwrap();
            prop_assert_eq!(r.u8("a").unwrap(), a);
            prop_assert_eq!(r.u32("b").unwrap(), b);
            prop_assert_eq!(r.array::<5>("c").unwrap(), c);
            prop_assert!(r.finish().is_ok());
        }
    }
}
