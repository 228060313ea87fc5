//! A small, strict, bounded bencode codec (spec §9.3; facts §2–§4 "bencoded").
//!
//! This module owns the byte encoding of every Session v2 structure that is a
//! "bt-encoded" dict: account-key records, DM inner plaintexts, device
//! records, device-group messages and link requests.
//!
//! - **Canonical output**: dict keys in ascending byte order, integers without
//!   leading zeros or `-0`, string lengths without leading zeros.
//! - **Strict input**: anything the encoder would not produce is rejected —
//!   unsorted or duplicate keys, non-canonical integers or lengths, non-string
//!   keys, trailing bytes after the top-level value.
//! - **Bounded**: [`Limits`] caps the input length and the nesting depth; a
//!   string's declared length is checked against the remaining input before
//!   anything is allocated for it, so no allocation is proportional to an
//!   attacker-chosen number. Decoding never panics on any input (property test).
//!
//! Integers are signed 64-bit; a value outside `i64` is rejected.
#![deny(clippy::integer_division_remainder_used)]

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::fmt;
use zeroize::Zeroize;

use crate::secret::extend_wiping;

/// A bencoded value. Byte strings are wiped when the value is dropped (a
/// decoded message's values include its content).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// `i<decimal>e`.
    Int(i64),
    /// `<len>:<bytes>`.
    Bytes(Vec<u8>),
    /// `l<values>e`.
    List(Vec<Value>),
    /// `d<key><value>…e`, keys are byte strings in ascending order.
    Dict(BTreeMap<Vec<u8>, Value>),
}

impl Drop for Value {
    fn drop(&mut self) {
        if let Self::Bytes(b) = self {
            b.zeroize();
        }
    }
}

impl Value {
    /// The integer, if this is an integer.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Self::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The bytes, if this is a byte string.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Self::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The dict, if this is a dict.
    pub fn as_dict(&self) -> Option<&BTreeMap<Vec<u8>, Value>> {
        match self {
            Self::Dict(d) => Some(d),
            _ => None,
        }
    }

    /// The list, if this is a list.
    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Self::List(l) => Some(l),
            _ => None,
        }
    }
}

/// Bounds applied while decoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Maximum nesting depth (the top-level value is depth 1).
    pub max_depth: usize,
    /// Maximum input length in bytes.
    pub max_len: usize,
}

impl Limits {
    /// Depth 32, length 128 KiB: above every Session v2 structure (the swarm
    /// stores at most 76,800 bytes per message).
    pub const DEFAULT: Self = Self {
        max_depth: 32,
        max_len: 128 * 1024,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Why a byte string is not strict, canonical, bounded bencode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BencodeError {
    /// The input is longer than [`Limits::max_len`].
    InputTooLong {
        /// The input length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Lists/dicts are nested deeper than [`Limits::max_depth`].
    TooDeep {
        /// Byte offset of the value that went too deep.
        offset: usize,
    },
    /// The input ended in the middle of a value.
    UnexpectedEnd,
    /// A byte that cannot start or continue a value here.
    UnexpectedByte {
        /// Byte offset.
        offset: usize,
    },
    /// An integer with a leading zero, `-0`, or no digits.
    NonCanonicalInteger {
        /// Byte offset of the integer.
        offset: usize,
    },
    /// An integer outside the signed 64-bit range.
    IntegerOutOfRange {
        /// Byte offset of the integer.
        offset: usize,
    },
    /// A string length with a leading zero or too many digits.
    NonCanonicalLength {
        /// Byte offset of the length.
        offset: usize,
    },
    /// A string length larger than the rest of the input.
    LengthExceedsInput {
        /// Byte offset of the length.
        offset: usize,
    },
    /// A dict key that is not greater than the previous key (unsorted or duplicate).
    UnsortedKeys {
        /// Byte offset of the offending key.
        offset: usize,
    },
    /// A dict key that is not a byte string.
    KeyNotString {
        /// Byte offset of the offending key.
        offset: usize,
    },
    /// Bytes after the end of the top-level value.
    TrailingData {
        /// Byte offset of the first extra byte.
        offset: usize,
    },
    /// The top-level value is not a dict where one is required.
    NotADict,
}

impl fmt::Display for BencodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InputTooLong { len, max } => {
                write!(
                    f,
                    "bencode input is {len} bytes, above the {max}-byte limit"
                )
            }
            Self::TooDeep { offset } => {
                write!(f, "bencode nesting too deep at byte {offset}")
            }
            Self::UnexpectedEnd => f.write_str("bencode input ends in the middle of a value"),
            Self::UnexpectedByte { offset } => write!(f, "unexpected bencode byte at {offset}"),
            Self::NonCanonicalInteger { offset } => {
                write!(f, "non-canonical bencode integer at byte {offset}")
            }
            Self::IntegerOutOfRange { offset } => {
                write!(
                    f,
                    "bencode integer at byte {offset} does not fit in 64 bits"
                )
            }
            Self::NonCanonicalLength { offset } => {
                write!(f, "non-canonical bencode string length at byte {offset}")
            }
            Self::LengthExceedsInput { offset } => {
                write!(
                    f,
                    "bencode string at byte {offset} is longer than the remaining input"
                )
            }
            Self::UnsortedKeys { offset } => {
                write!(
                    f,
                    "bencode dict key at byte {offset} is unsorted or duplicated"
                )
            }
            Self::KeyNotString { offset } => {
                write!(f, "bencode dict key at byte {offset} is not a byte string")
            }
            Self::TrailingData { offset } => {
                write!(
                    f,
                    "unexpected bytes after the bencode value at byte {offset}"
                )
            }
            Self::NotADict => f.write_str("expected a bencoded dict"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for BencodeError {}

/// Encodes `value` canonically.
///
/// ```
/// use session_ratchet::session_v2::bencode::{decode, encode, Value};
/// let mut d = std::collections::BTreeMap::new();
/// d.insert(b"b".to_vec(), Value::Int(-3));
/// d.insert(b"a".to_vec(), Value::Bytes(b"xy".to_vec()));
/// let bytes = encode(&Value::Dict(d));
/// assert_eq!(bytes, b"d1:a2:xy1:bi-3ee");
/// assert_eq!(encode(&decode(&bytes)?), bytes);
/// # Ok::<(), session_ratchet::session_v2::bencode::BencodeError>(())
/// ```
pub fn encode(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(value, &mut out);
    out
}

/// Appends the canonical encoding of `value` to `out`.
pub fn encode_into(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Int(i) => {
            extend_wiping(out, b"i");
            write_decimal_i64(*i, out);
            extend_wiping(out, b"e");
        }
        Value::Bytes(b) => write_bytes(b, out),
        Value::List(l) => {
            extend_wiping(out, b"l");
            for v in l {
                encode_into(v, out);
            }
            extend_wiping(out, b"e");
        }
        Value::Dict(d) => {
            extend_wiping(out, b"d");
            for (k, v) in d {
                write_bytes(k, out);
                encode_into(v, out);
            }
            extend_wiping(out, b"e");
        }
    }
}

/// Appends `<len>:<bytes>`.
pub(crate) fn write_bytes(b: &[u8], out: &mut Vec<u8>) {
    write_decimal_u64(b.len() as u64, out);
    extend_wiping(out, b":");
    extend_wiping(out, b);
}

fn write_decimal_u64(mut n: u64, out: &mut Vec<u8>) {
    // Division-free decimal conversion (subtracting powers of ten), so this
    // module stays clean of `/` and `%`; the numbers are lengths and counters.
    const POW10: [u64; 20] = [
        1,
        10,
        100,
        1_000,
        10_000,
        100_000,
        1_000_000,
        10_000_000,
        100_000_000,
        1_000_000_000,
        10_000_000_000,
        100_000_000_000,
        1_000_000_000_000,
        10_000_000_000_000,
        100_000_000_000_000,
        1_000_000_000_000_000,
        10_000_000_000_000_000,
        100_000_000_000_000_000,
        1_000_000_000_000_000_000,
        10_000_000_000_000_000_000,
    ];
    let mut started = false;
    for p in POW10.iter().rev() {
        let mut digit = 0u8;
        while n >= *p {
            n -= *p;
            digit += 1;
        }
        if digit != 0 || started || *p == 1 {
            started = true;
            extend_wiping(out, &[b'0' + digit]);
        }
    }
}

fn write_decimal_i64(i: i64, out: &mut Vec<u8>) {
    if i < 0 {
        extend_wiping(out, b"-");
    }
    write_decimal_u64(i.unsigned_abs(), out);
}

/// Decodes one value with [`Limits::DEFAULT`].
pub fn decode(input: &[u8]) -> Result<Value, BencodeError> {
    decode_with_limits(input, Limits::DEFAULT)
}

/// Decodes one value; the whole input must be exactly one canonical value.
pub fn decode_with_limits(input: &[u8], limits: Limits) -> Result<Value, BencodeError> {
    if input.len() > limits.max_len {
        return Err(BencodeError::InputTooLong {
            len: input.len(),
            max: limits.max_len,
        });
    }
    let mut p = Parser {
        input,
        pos: 0,
        max_depth: limits.max_depth,
    };
    let v = p.value(1)?;
    if p.pos != input.len() {
        return Err(BencodeError::TrailingData { offset: p.pos });
    }
    Ok(v)
}

/// One entry of a top-level dict, with where it sits in the input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DictEntry<'a> {
    /// The key.
    pub key: &'a [u8],
    /// The decoded value.
    pub value: Value,
    /// Byte offset where the entry's key starts: the input before it is the
    /// "body up to this key" that Session signatures cover.
    pub offset: usize,
    /// The raw encoded value.
    pub raw: &'a [u8],
}

/// Decodes a top-level dict and returns its entries in order, each with its
/// offset and raw encoding (for signatures over "the dict up to a key").
pub fn decode_dict_entries(
    input: &[u8],
    limits: Limits,
) -> Result<Vec<DictEntry<'_>>, BencodeError> {
    if input.len() > limits.max_len {
        return Err(BencodeError::InputTooLong {
            len: input.len(),
            max: limits.max_len,
        });
    }
    if input.first() != Some(&b'd') {
        return Err(if input.is_empty() {
            BencodeError::UnexpectedEnd
        } else {
            BencodeError::NotADict
        });
    }
    let mut p = Parser {
        input,
        pos: 1,
        max_depth: limits.max_depth,
    };
    let mut entries: Vec<DictEntry<'_>> = Vec::new();
    loop {
        match p.peek()? {
            b'e' => {
                p.pos += 1;
                break;
            }
            _ => {
                let offset = p.pos;
                let key = p.key_after(entries.last().map(|e| e.key))?;
                let start = p.pos;
                let value = p.value(2)?;
                let raw = input.get(start..p.pos).ok_or(BencodeError::UnexpectedEnd)?;
                entries.push(DictEntry {
                    key,
                    value,
                    offset,
                    raw,
                });
            }
        }
    }
    if p.pos != input.len() {
        return Err(BencodeError::TrailingData { offset: p.pos });
    }
    Ok(entries)
}

struct Parser<'a> {
    input: &'a [u8],
    pos: usize,
    max_depth: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Result<u8, BencodeError> {
        self.input
            .get(self.pos)
            .copied()
            .ok_or(BencodeError::UnexpectedEnd)
    }

    fn value(&mut self, depth: usize) -> Result<Value, BencodeError> {
        if depth > self.max_depth {
            return Err(BencodeError::TooDeep { offset: self.pos });
        }
        match self.peek()? {
            b'i' => self.int().map(Value::Int),
            b'0'..=b'9' => self.bytes().map(|b| Value::Bytes(b.to_vec())),
            b'l' => {
                self.pos += 1;
                let mut items = Vec::new();
                while self.peek()? != b'e' {
                    items.push(self.value(depth + 1)?);
                }
                self.pos += 1;
                Ok(Value::List(items))
            }
            b'd' => {
                self.pos += 1;
                let mut map = BTreeMap::new();
                let mut last: Option<&'a [u8]> = None;
                while self.peek()? != b'e' {
                    let key = self.key_after(last)?;
                    let v = self.value(depth + 1)?;
                    map.insert(key.to_vec(), v);
                    last = Some(key);
                }
                self.pos += 1;
                Ok(Value::Dict(map))
            }
            _ => Err(BencodeError::UnexpectedByte { offset: self.pos }),
        }
    }

    /// A dict key, which must be a string strictly greater than `last`.
    fn key_after(&mut self, last: Option<&[u8]>) -> Result<&'a [u8], BencodeError> {
        let offset = self.pos;
        if !self.peek()?.is_ascii_digit() {
            return Err(BencodeError::KeyNotString { offset });
        }
        let key = self.bytes()?;
        if let Some(prev) = last
            && key <= prev
        {
            return Err(BencodeError::UnsortedKeys { offset });
        }
        Ok(key)
    }

    fn int(&mut self) -> Result<i64, BencodeError> {
        let offset = self.pos;
        self.pos += 1; // 'i'
        let negative = self.peek()? == b'-';
        if negative {
            self.pos += 1;
        }
        let digits_start = self.pos;
        let mut magnitude: u64 = 0;
        loop {
            let b = self.peek()?;
            match b {
                b'0'..=b'9' => {
                    magnitude = magnitude
                        .checked_mul(10)
                        .and_then(|m| m.checked_add(u64::from(b - b'0')))
                        .ok_or(BencodeError::IntegerOutOfRange { offset })?;
                    self.pos += 1;
                }
                b'e' => break,
                _ => return Err(BencodeError::UnexpectedByte { offset: self.pos }),
            }
        }
        let ndigits = self.pos - digits_start;
        let first = self.input.get(digits_start).copied();
        if ndigits == 0 || (first == Some(b'0') && (ndigits > 1 || negative)) {
            return Err(BencodeError::NonCanonicalInteger { offset });
        }
        self.pos += 1; // 'e'
        if negative {
            // -(2^63) is the most negative i64.
            if magnitude > i64::MAX.unsigned_abs() + 1 {
                return Err(BencodeError::IntegerOutOfRange { offset });
            }
            Ok(0i64.wrapping_sub_unsigned(magnitude))
        } else {
            i64::try_from(magnitude).map_err(|_| BencodeError::IntegerOutOfRange { offset })
        }
    }

    fn bytes(&mut self) -> Result<&'a [u8], BencodeError> {
        let offset = self.pos;
        let mut len: usize = 0;
        let mut ndigits = 0usize;
        loop {
            let b = self.peek()?;
            match b {
                b'0'..=b'9' => {
                    ndigits += 1;
                    if ndigits > 19 {
                        return Err(BencodeError::NonCanonicalLength { offset });
                    }
                    len = len
                        .checked_mul(10)
                        .and_then(|l| l.checked_add(usize::from(b - b'0')))
                        .ok_or(BencodeError::LengthExceedsInput { offset })?;
                    self.pos += 1;
                }
                b':' => break,
                _ => return Err(BencodeError::UnexpectedByte { offset: self.pos }),
            }
        }
        if ndigits > 1 && self.input.get(offset) == Some(&b'0') {
            return Err(BencodeError::NonCanonicalLength { offset });
        }
        self.pos += 1; // ':'
        // Checked against the remaining input before any use of `len`.
        let remaining = self.input.len().saturating_sub(self.pos);
        if len > remaining {
            return Err(BencodeError::LengthExceedsInput { offset });
        }
        let out = self
            .input
            .get(self.pos..self.pos + len)
            .ok_or(BencodeError::UnexpectedEnd)?;
        self.pos += len;
        Ok(out)
    }
}

/// Builds a dict body for "sign everything up to the signature key": the
/// canonical encoding of `entries` without the closing `e`.
pub(crate) fn dict_body(entries: &BTreeMap<Vec<u8>, Value>) -> Vec<u8> {
    // Written straight from the entries: no clone of them (they may hold
    // message content) and growth that wipes.
    let mut out = Vec::new();
    extend_wiping(&mut out, b"d");
    for (k, v) in entries {
        write_bytes(k, &mut out);
        encode_into(v, &mut out);
    }
    out
}

#[cfg(test)]
#[allow(clippy::integer_division_remainder_used)]
mod tests {
    use super::*;
    use alloc::string::String;
    use alloc::vec;
    use proptest::prelude::*;

    fn d(entries: &[(&[u8], Value)]) -> Value {
        Value::Dict(
            entries
                .iter()
                .map(|(k, v)| (k.to_vec(), v.clone()))
                .collect(),
        )
    }

    #[test]
    fn known_encodings() {
        assert_eq!(encode(&Value::Int(0)), b"i0e");
        assert_eq!(encode(&Value::Int(-42)), b"i-42e");
        assert_eq!(encode(&Value::Int(i64::MIN)), b"i-9223372036854775808e");
        assert_eq!(encode(&Value::Int(i64::MAX)), b"i9223372036854775807e");
        assert_eq!(encode(&Value::Bytes(vec![])), b"0:");
        assert_eq!(encode(&Value::Bytes(vec![b'x'; 10])), b"10:xxxxxxxxxx");
        assert_eq!(
            encode(&Value::List(vec![
                Value::Int(1),
                Value::Bytes(b"a".to_vec())
            ])),
            b"li1e1:ae"
        );
        assert_eq!(
            encode(&d(&[(b"b", Value::Int(1)), (b"a", Value::Int(2))])),
            b"d1:ai2e1:bi1ee"
        );
    }

    #[test]
    fn rejects_non_canonical() {
        use BencodeError::*;
        let cases: &[(&[u8], BencodeError)] = &[
            (b"", UnexpectedEnd),
            (b"i01e", NonCanonicalInteger { offset: 0 }),
            (b"i-0e", NonCanonicalInteger { offset: 0 }),
            (b"ie", NonCanonicalInteger { offset: 0 }),
            (b"i-e", NonCanonicalInteger { offset: 0 }),
            (b"i9223372036854775808e", IntegerOutOfRange { offset: 0 }),
            (b"i-9223372036854775809e", IntegerOutOfRange { offset: 0 }),
            (b"01:a", NonCanonicalLength { offset: 0 }),
            (b"5:abc", LengthExceedsInput { offset: 0 }),
            (b"99999999999999999999:a", NonCanonicalLength { offset: 0 }),
            (b"d1:bi1e1:ai2ee", UnsortedKeys { offset: 7 }),
            (b"d1:ai1e1:ai2ee", UnsortedKeys { offset: 7 }),
            (b"di1ei2ee", KeyNotString { offset: 1 }),
            (b"i1ei2e", TrailingData { offset: 3 }),
            (b"x", UnexpectedByte { offset: 0 }),
            (b"l", UnexpectedEnd),
            (b"i12", UnexpectedEnd),
        ];
        for (input, err) in cases {
            assert_eq!(
                decode(input),
                Err(*err),
                "{}",
                String::from_utf8_lossy(input)
            );
        }
        assert_eq!(
            decode_with_limits(
                b"llleee",
                Limits {
                    max_depth: 2,
                    max_len: 100
                }
            ),
            Err(TooDeep { offset: 2 })
        );
        assert_eq!(
            decode_with_limits(
                b"i1e",
                Limits {
                    max_depth: 2,
                    max_len: 2
                }
            ),
            Err(InputTooLong { len: 3, max: 2 })
        );
        assert_eq!(
            decode_dict_entries(b"li1ee", Limits::DEFAULT),
            Err(NotADict)
        );
    }

    #[test]
    fn dict_entries_report_offsets() {
        let input = b"d1:ai1e1:~2:xye";
        let e = decode_dict_entries(input, Limits::DEFAULT).unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[1].key, b"~");
        assert_eq!(&input[..e[1].offset], b"d1:ai1e");
        assert_eq!(e[1].raw, b"2:xy");
    }

    fn arb_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            any::<i64>().prop_map(Value::Int),
            proptest::collection::vec(any::<u8>(), 0..8).prop_map(Value::Bytes),
        ];
        leaf.prop_recursive(4, 32, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::List),
                proptest::collection::btree_map(
                    proptest::collection::vec(any::<u8>(), 0..4),
                    inner,
                    0..4
                )
                .prop_map(Value::Dict),
            ]
        })
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode(&bytes);
            let _ = decode_dict_entries(&bytes, Limits::DEFAULT);
        }

        #[test]
        fn decoding_mutated_encodings_never_panics(v in arb_value(), idx in any::<usize>(), byte in any::<u8>()) {
            let mut bytes = encode(&v);
            if !bytes.is_empty() {
                let i = idx % bytes.len();
                bytes[i] = byte;
            }
            if let Ok(decoded) = decode(&bytes) {
                // Whatever is accepted is canonical: it re-encodes to the same bytes.
                prop_assert_eq!(encode(&decoded), bytes);
            }
        }

        #[test]
        fn round_trip(v in arb_value()) {
            let bytes = encode(&v);
            prop_assert_eq!(decode(&bytes), Ok(v));
        }
    }
}
