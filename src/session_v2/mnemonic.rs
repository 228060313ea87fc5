//! Recovery phrases: 16-byte seed ↔ 13 words, 32-byte seed ↔ 25 words
//! (spec §9.4; facts §1 "Recovery phrase").
//!
//! This module owns the word list (`data/session-mnemonic-english.txt`, 1626
//! words after a 3-line header), the 3-words-per-32-bit-group encoding, the
//! CRC-32 checksum word, and decoding by case-insensitive 3-character prefixes.
//!
//! # Timing
//!
//! The phrase *is* the seed, so this module avoids the obvious leaks: the
//! base-1626 arithmetic uses a division-free, branch-free long division
//! ([`ct_divmod`]), conditional reductions are masked, and the CRC-32 is the
//! table-free bitwise form (no secret-indexed table). What remains
//! variable-time is unavoidable for text the user reads and types: looking a
//! word up by index, matching typed words against the list, and building the
//! phrase string. Those run only at user-interaction time (showing or
//! entering a recovery phrase), on data that is displayed on screen anyway.
#![deny(clippy::integer_division_remainder_used)]

use crate::secret::{Ed25519Seed, RecoverySeed};
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use subtle::{ConditionallySelectable, ConstantTimeGreater};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// The English word list, verbatim: 3 header lines (native name, English
/// name, prefix length), then 1626 words in index order.
const WORD_LIST: &str = include_str!("data/session-mnemonic-english.txt");
/// Number of words in the list (`n` in the facts).
pub const WORD_COUNT: u32 = 1626;
/// Number of header lines before the first word.
const HEADER_LINES: usize = 3;
/// Characters (Unicode code points) of a word that identify it.
pub const PREFIX_LEN: usize = 3;
/// Words in a phrase for a 16-byte seed: 12 data words and a checksum word.
pub const WORDS_16: usize = 13;
/// Words in a phrase for a 32-byte seed: 24 data words and a checksum word.
pub const WORDS_32: usize = 25;

/// Why a recovery phrase was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MnemonicError {
    /// The phrase does not have 13 (16-byte seed) or 25 (32-byte seed) words.
    WrongWordCount {
        /// Words found (separated by whitespace).
        got: usize,
    },
    /// A word's first three letters match no word of the list.
    UnknownWord {
        /// 1-based position of the word in the phrase.
        position: usize,
    },
    /// The last word is not the checksum of the others: a word was mistyped,
    /// swapped or left out.
    BadChecksum,
    /// A group of three words encodes a value above 2³²−1 (no seed encodes to it).
    InvalidWordGroup {
        /// 1-based index of the group of three words.
        group: usize,
    },
    /// The embedded word list is malformed (a build problem, not a user error).
    CorruptWordList,
}

impl fmt::Display for MnemonicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::WrongWordCount { got } => write!(
                f,
                "a recovery phrase has {WORDS_16} words (or {WORDS_32} for a long seed), got {got}"
            ),
            Self::UnknownWord { position } => write!(
                f,
                "word {position} of the recovery phrase is not in the word list; check its spelling"
            ),
            Self::BadChecksum => f.write_str(
                "the recovery phrase checksum does not match; a word is mistyped, swapped or missing",
            ),
            Self::InvalidWordGroup { group } => write!(
                f,
                "words {}-{} of the recovery phrase do not form a valid group; check them",
                group * 3 - 2,
                group * 3
            ),
            Self::CorruptWordList => f.write_str("the embedded mnemonic word list is corrupt"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for MnemonicError {}

/// A recovery phrase: the words joined by single spaces. It encodes a seed,
/// so it is zeroized on drop and its `Debug` output is redacted.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct RecoveryPhrase(String);

/// Constant-time equality: the bytes are secret (only the lengths, which
/// are public, may end the comparison early).
impl PartialEq for RecoveryPhrase {
    fn eq(&self, other: &Self) -> bool {
        bool::from(subtle::ConstantTimeEq::ct_eq(
            self.0.as_bytes(),
            other.0.as_bytes(),
        ))
    }
}

impl Eq for RecoveryPhrase {}

impl RecoveryPhrase {
    /// The phrase, words separated by single spaces, for display to the user.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The words of the phrase.
    pub fn words(&self) -> impl Iterator<Item = &str> {
        self.0.split(' ')
    }
}

impl fmt::Debug for RecoveryPhrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecoveryPhrase(<redacted>)")
    }
}

/// A seed recovered from a phrase: 13 words give a 16-byte recovery seed,
/// 25 words a 32-byte Ed25519 seed.
#[derive(Debug, PartialEq, Eq)]
pub enum DecodedSeed {
    /// From a 13-word phrase.
    Recovery(RecoverySeed),
    /// From a 25-word phrase.
    Full(Ed25519Seed),
}

/// Encodes a 16-byte recovery seed as a 13-word phrase.
///
/// ```
/// use session_ratchet::session_v2::{identity::recovery_seed_from_bytes, mnemonic};
/// let seed = recovery_seed_from_bytes([0u8; 16]);
/// let phrase = mnemonic::encode_recovery_seed(&seed)?;
/// assert_eq!(phrase.words().count(), 13);
/// let back = mnemonic::decode(&phrase.as_str().to_uppercase())?;
/// assert_eq!(back, mnemonic::DecodedSeed::Recovery(seed));
/// # Ok::<(), mnemonic::MnemonicError>(())
/// ```
pub fn encode_recovery_seed(seed: &RecoverySeed) -> Result<RecoveryPhrase, MnemonicError> {
    encode_bytes(seed.expose())
}

/// Encodes a 32-byte seed as a 25-word phrase.
pub fn encode_full_seed(seed: &Ed25519Seed) -> Result<RecoveryPhrase, MnemonicError> {
    encode_bytes(seed.expose())
}

/// Decodes a 13- or 25-word phrase (words separated by any whitespace,
/// matched by their first three characters, ASCII case-insensitively).
pub fn decode(phrase: &str) -> Result<DecodedSeed, MnemonicError> {
    let words: Vec<&str> = phrase.split_whitespace().collect();
    match words.len() {
        WORDS_16 => {
            let mut out = [0u8; 16];
            let r = decode_words(&words, &mut out);
            let seed = RecoverySeed::from_mut_array(&mut out);
            r.map(|()| DecodedSeed::Recovery(seed))
        }
        WORDS_32 => {
            let mut out = [0u8; 32];
            let r = decode_words(&words, &mut out);
            let seed = Ed25519Seed::from_mut_array(&mut out);
            r.map(|()| DecodedSeed::Full(seed))
        }
        got => Err(MnemonicError::WrongWordCount { got }),
    }
}

/// `(v / m, v mod m)` by restoring binary long division with masked
/// subtraction: constant-time (no data-dependent branch or division
/// instruction, which is variable-time on some cores). `m` must be non-zero.
pub(crate) fn ct_divmod(v: u64, m: u64) -> (u64, u64) {
    let mut q: u64 = 0;
    let mut r: u64 = 0;
    for bit in (0..64).rev() {
        // r < m ≤ 2^63 here in all our uses (m ≤ 1626), so the shift cannot overflow.
        r = (r << 1) | ((v >> bit) & 1);
        // r ≥ m  ⇔  r > m − 1 (m ≥ 1).
        let ge = r.ct_gt(&(m - 1));
        let sub = u64::conditional_select(&0, &m, ge);
        r -= sub;
        q |= u64::conditional_select(&0, &1, ge) << bit;
    }
    (q, r)
}

/// `x mod n` for `x < 2n`, by one masked subtraction.
fn ct_reduce_once(x: u64, n: u64) -> u64 {
    let ge = x.ct_gt(&(n - 1));
    x - u64::conditional_select(&0, &n, ge)
}

/// CRC-32/ISO-HDLC (zlib `crc32`, reflected polynomial 0xEDB88320), table-free
/// and branch-free.
pub(crate) fn crc32(data: &[u8]) -> u32 {
    let mut c: u32 = 0xFFFF_FFFF;
    for &b in data {
        c ^= u32::from(b);
        for _ in 0..8 {
            let mask = 0u32.wrapping_sub(c & 1);
            c = (c >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !c
}

/// The `i`-th word of the list.
fn word(i: u64) -> Result<&'static str, MnemonicError> {
    let i = usize::try_from(i).map_err(|_| MnemonicError::CorruptWordList)?;
    WORD_LIST
        .lines()
        .nth(HEADER_LINES + i)
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .ok_or(MnemonicError::CorruptWordList)
}

/// The first [`PREFIX_LEN`] code points of `w`, ASCII letters lowercased
/// (other characters kept as they are, as the deployed decoder does).
fn prefix(w: &str) -> Zeroizing<String> {
    // Room for PREFIX_LEN characters of up to 4 bytes each: the string never
    // grows, so no freed block keeps a word's prefix (a phrase's prefixes
    // identify its words).
    let mut p = Zeroizing::new(String::with_capacity(PREFIX_LEN * 4));
    for c in w.chars().take(PREFIX_LEN) {
        p.push(c.to_ascii_lowercase());
    }
    p
}

/// The prefixes of `words` joined, in a string that never grows (wiped on drop).
fn joined_prefixes<'a>(words: impl Iterator<Item = &'a str> + Clone) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(
        words.clone().count() * PREFIX_LEN * 4,
    ));
    for w in words {
        out.push_str(&prefix(w));
    }
    out
}

/// Index of the list word whose prefix equals the prefix of `w`.
fn index_of(w: &str) -> Option<u32> {
    let p = prefix(w);
    let pos = WORD_LIST
        .lines()
        .skip(HEADER_LINES)
        .position(|line| prefix(line.trim()) == p)?;
    u32::try_from(pos).ok()
}

/// Which of `count` data words is repeated as the checksum word.
fn checksum_index(prefixes: &str, count: usize) -> usize {
    let (_, r) = ct_divmod(u64::from(crc32(prefixes.as_bytes())), count as u64);
    // r < count, so the conversion is lossless.
    usize::try_from(r).unwrap_or(0)
}

fn encode_bytes(bytes: &[u8]) -> Result<RecoveryPhrase, MnemonicError> {
    let n = u64::from(WORD_COUNT);
    // 3 indices per 4 bytes: the capacity is never exceeded (no growth).
    let mut indices: Zeroizing<Vec<u64>> = Zeroizing::new(Vec::with_capacity(bytes.len()));
    for chunk in bytes.chunks_exact(4) {
        let mut le = [0u8; 4];
        le.copy_from_slice(chunk);
        let v = u64::from(u32::from_le_bytes(le));
        le.zeroize();
        let (q1, w1) = ct_divmod(v, n);
        let (q2, r2) = ct_divmod(q1, n);
        let w2 = ct_reduce_once(r2 + w1, n);
        // q2 = ⌊v/n²⌋ ≤ 1624 < n, so one reduction suffices.
        let w3 = ct_reduce_once(q2 + w2, n);
        indices.extend_from_slice(&[w1, w2, w3]);
    }
    // Words are looked up from their indices when needed: a `Vec` of word
    // slices would leave pointers (which name the words) in freed memory.
    for &i in indices.iter() {
        word(i)?;
    }
    let data_words = || indices.iter().map(|&i| word(i).unwrap_or(""));
    let prefixes = joined_prefixes(data_words());
    let check = indices
        .get(checksum_index(&prefixes, indices.len()))
        .copied()
        .ok_or(MnemonicError::CorruptWordList)?;
    drop(prefixes);
    let check = word(check)?;
    let all = || data_words().chain(core::iter::once(check));
    // Exact length (the words and a space between each two): the phrase is
    // written once into its final block and never moved.
    let len = all().map(str::len).sum::<usize>() + indices.len();
    let mut phrase = String::with_capacity(len);
    for (i, w) in all().enumerate() {
        if i > 0 {
            phrase.push(' ');
        }
        phrase.push_str(w);
    }
    Ok(RecoveryPhrase(phrase))
}

/// Decodes `words` (data words then the checksum word) into `out`.
fn decode_words(words: &[&str], out: &mut [u8]) -> Result<(), MnemonicError> {
    let n = u64::from(WORD_COUNT);
    let (data_words, checksum_word) = match words.split_last() {
        Some((last, rest)) => (rest, *last),
        None => return Err(MnemonicError::WrongWordCount { got: 0 }),
    };
    let mut idx: Vec<u64> = Vec::with_capacity(data_words.len());
    for (pos, w) in data_words.iter().enumerate() {
        match index_of(w) {
            Some(i) => idx.push(u64::from(i)),
            None => {
                idx.zeroize();
                return Err(MnemonicError::UnknownWord { position: pos + 1 });
            }
        }
    }
    let Some(check_idx) = index_of(checksum_word) else {
        idx.zeroize();
        return Err(MnemonicError::UnknownWord {
            position: words.len(),
        });
    };
    let mut result = Ok(());
    for (g, (group, dst)) in idx.chunks_exact(3).zip(out.chunks_exact_mut(4)).enumerate() {
        let &[a, b, c] = group else { continue };
        let x = a + ct_reduce_once(n - a + b, n) * n + ct_reduce_once(n - b + c, n) * n * n;
        match u32::try_from(x) {
            Ok(v) => dst.copy_from_slice(&v.to_le_bytes()),
            Err(_) => {
                if result.is_ok() {
                    result = Err(MnemonicError::InvalidWordGroup { group: g + 1 });
                }
            }
        }
    }
    // The checksum is computed over the prefixes of the list words the data
    // words resolved to, and compared by index (so "abbey" and "ABBot" agree).
    for &i in &idx {
        word(i)?;
    }
    let prefixes = joined_prefixes(idx.iter().map(|&i| word(i).unwrap_or("")));
    let expected = idx
        .get(checksum_index(&prefixes, data_words.len()))
        .copied();
    drop(prefixes);
    idx.zeroize();
    result?;
    if expected != Some(u64::from(check_idx)) {
        out.zeroize();
        return Err(MnemonicError::BadChecksum);
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::integer_division_remainder_used)]
mod tests {
    use super::*;

    #[test]
    fn word_list_is_complete_with_unique_prefixes() {
        let words: Vec<&str> = WORD_LIST.lines().skip(HEADER_LINES).collect();
        assert_eq!(words.len(), WORD_COUNT as usize);
        assert_eq!(WORD_LIST.lines().nth(2), Some("3"));
        let mut prefixes: Vec<String> = words
            .iter()
            .map(|w| String::from(prefix(w).as_str()))
            .collect();
        prefixes.sort();
        prefixes.dedup();
        assert_eq!(prefixes.len(), WORD_COUNT as usize);
        assert_eq!(word(0).unwrap(), "abbey");
        assert_eq!(word(1625).unwrap(), "zoom");
        assert!(word(1626).is_err());
    }

    #[test]
    fn crc32_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn ct_divmod_matches_division() {
        for v in [
            0u64,
            1,
            1625,
            1626,
            1627,
            2_643_875,
            2_643_876,
            u32::MAX as u64,
            1 << 40,
        ] {
            for m in [1u64, 12, 24, 1626] {
                assert_eq!(ct_divmod(v, m), (v / m, v % m), "{v} {m}");
            }
        }
    }

    // Known answers from an independent Python implementation of facts §1
    // (zlib.crc32 for the checksum); see the spec chapter, §9.4.
    #[test]
    fn known_phrases() {
        let zero = RecoverySeed::from_slice_array(&[0u8; 16]);
        assert_eq!(
            encode_recovery_seed(&zero).unwrap().as_str(),
            "abbey abbey abbey abbey abbey abbey abbey abbey abbey abbey abbey abbey abbey"
        );
        let seed = RecoverySeed::from_slice_array(&[
            0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d,
            0x0e, 0x0f,
        ]);
        assert_eq!(
            encode_recovery_seed(&seed).unwrap().as_str(),
            KNOWN_PHRASE_0F
        );
    }

    const KNOWN_PHRASE_0F: &str =
        "amaze buffet cake entrance symptoms tiger lamb maze nestle python dusted faxed faxed";
    const KNOWN_PHRASE_32: &str = "amaze buffet cake entrance symptoms tiger lamb maze nestle python dusted faxed update vague zinger boxes ornament renting glass gained island nabbing afield calamity boxes";

    #[test]
    fn known_long_phrase_round_trips() {
        let mut b = [0u8; 32];
        for (i, x) in b.iter_mut().enumerate() {
            *x = i as u8;
        }
        let seed = Ed25519Seed::from_slice_array(&b);
        assert_eq!(encode_full_seed(&seed).unwrap().as_str(), KNOWN_PHRASE_32);
        assert_eq!(decode(KNOWN_PHRASE_32), Ok(DecodedSeed::Full(seed)));
        // Prefix matching, case-insensitive, extra whitespace.
        let sloppy = KNOWN_PHRASE_0F
            .replace("amaze", "AMAZING")
            .replace(' ', "  \t");
        assert_eq!(
            decode(&sloppy),
            Ok(DecodedSeed::Recovery(RecoverySeed::from_slice_array(&[
                0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
            ])))
        );
    }

    #[test]
    fn errors() {
        assert_eq!(
            decode("abbey abbey"),
            Err(MnemonicError::WrongWordCount { got: 2 })
        );
        let mut w = [
            "abbey", "abbey", "abbey", "abbey", "abbey", "abbey", "abbey", "abbey", "abbey",
            "abbey", "abbey", "abbey", "abbey",
        ];
        assert!(decode(&w.join(" ")).is_ok());
        w[4] = "qqqq";
        assert_eq!(
            decode(&w.join(" ")),
            Err(MnemonicError::UnknownWord { position: 5 })
        );
        w[4] = "abbey";
        w[12] = "abducts";
        assert_eq!(decode(&w.join(" ")), Err(MnemonicError::BadChecksum));
        // a = 0, b = 1625, c = 1624 gives 1625·n + 1625·n² ≥ 2^32: no seed encodes to it.
        let mut big = w;
        big[1] = "zoom";
        big[2] = word(1624).unwrap();
        assert_eq!(
            decode(&big.join(" ")),
            Err(MnemonicError::InvalidWordGroup { group: 1 })
        );
    }
}
