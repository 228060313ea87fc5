//! The emoji short authentication string (spec §8.5.2).
//!
//! This module owns Session's emoji SAS construction, which both device
//! linking protocols of this crate show to the user: the Session Protocol v2
//! link request (spec §9.10, input `M` = the request plaintext) and the
//! hybrid device link (spec §8.5, input `M` = a label and the transcript hash):
//!
//! - `salt = BLAKE2b-16(M, personal = "SessionLinkEmoji")`;
//! - `seed16 = Argon2id v1.3(password = M, salt, t = 2, m = 16 MiB, p = 1,
//!   16-byte output)`;
//! - `seed16` read as a 128-bit little-endian integer `v`; emoji `j` is
//!   `(v >> 6j) & 63`, an index into the 64 emoji of `data/sas-emoji.json`
//!   (Matrix's SAS list, in index order). Emoji 0…6 are shown; 0…20 form
//!   the optional extended view.
//!
//! The memory-hard hash makes each candidate transcript cost 16 MiB and two
//! passes, which is what keeps a man in the middle from searching for a
//! transcript whose SAS matches the one the other screen shows (spec §8.5.10).
//! The SAS is not secret; nothing here needs to be constant time.
#![deny(clippy::integer_division_remainder_used)]

use crate::kdf::blake2b_16;
use core::fmt;

/// BLAKE2b personalisation of the SAS salt (a Session format constant).
pub const SAS_SALT_PERS: &[u8; 16] = b"SessionLinkEmoji";
/// Argon2id memory cost in KiB (16 MiB).
pub const SAS_ARGON2_MEMORY_KIB: u32 = 16 * 1024;
/// Argon2id passes.
pub const SAS_ARGON2_PASSES: u32 = 2;
/// Argon2id lanes.
pub const SAS_ARGON2_LANES: u32 = 1;
/// Emoji shown by default.
pub const SAS_SHORT_LEN: usize = 7;
/// Emoji in the extended view.
pub const SAS_EXTENDED_LEN: usize = 21;

const EMOJI_JSON: &str = include_str!("data/sas-emoji.json");

/// Why an emoji SAS could not be computed or shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SasError {
    /// Argon2id failed: it could not allocate its 16 MiB, or rejected a
    /// parameter. Free memory and retry; the SAS cannot be shown without it.
    Argon2,
    /// The embedded emoji list is malformed (a build problem, not an input
    /// problem): report it to the library's maintainers.
    CorruptEmojiList,
}

impl fmt::Display for SasError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Argon2 => f.write_str(
                "Argon2id failed computing the link emoji (it needs 16 MiB of memory); retry when memory is available",
            ),
            Self::CorruptEmojiList => f.write_str(
                "the embedded SAS emoji list is corrupt; this build of the library is broken",
            ),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for SasError {}

/// A short authentication string: 21 emoji indices (0–63); show the first 7.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Sas {
    /// Emoji indices `0 … 20`, index `j` = bits `6j … 6j+5` of the seed.
    pub indices: [u8; SAS_EXTENDED_LEN],
}

impl Sas {
    /// The 7 emoji to show, each with its English description.
    pub fn short(&self) -> Result<[(&'static str, &'static str); SAS_SHORT_LEN], SasError> {
        let mut out = [("", ""); SAS_SHORT_LEN];
        for (o, &i) in out.iter_mut().zip(self.indices.iter()) {
            *o = emoji(i).ok_or(SasError::CorruptEmojiList)?;
        }
        Ok(out)
    }

    /// All 21 emoji (the extended view).
    pub fn extended(&self) -> Result<[(&'static str, &'static str); SAS_EXTENDED_LEN], SasError> {
        let mut out = [("", ""); SAS_EXTENDED_LEN];
        for (o, &i) in out.iter_mut().zip(self.indices.iter()) {
            *o = emoji(i).ok_or(SasError::CorruptEmojiList)?;
        }
        Ok(out)
    }
}

/// The 16-byte Argon2id seed of the SAS over `m` (16 MiB, 2 passes).
pub fn sas_seed(m: &[u8]) -> Result<[u8; 16], SasError> {
    use argon2::{Algorithm, Argon2, Params, Version};
    let salt = blake2b_16(None, SAS_SALT_PERS, &[m]);
    let params = Params::new(
        SAS_ARGON2_MEMORY_KIB,
        SAS_ARGON2_PASSES,
        SAS_ARGON2_LANES,
        Some(16),
    )
    .map_err(|_| SasError::Argon2)?;
    let mut out = [0u8; 16];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(m, &salt, &mut out)
        .map_err(|_| SasError::Argon2)?;
    Ok(out)
}

/// The emoji indices of a 16-byte seed (128-bit little-endian integer, 6 bits each).
pub fn sas_from_seed(seed: &[u8; 16]) -> Sas {
    let v = u128::from_le_bytes(*seed);
    let mut indices = [0u8; SAS_EXTENDED_LEN];
    for (j, idx) in indices.iter_mut().enumerate() {
        *idx = ((v >> (6 * j)) & 0x3f) as u8;
    }
    Sas { indices }
}

/// The SAS of `m` (Argon2id: 16 MiB, 2 passes).
///
/// ```no_run
/// use session_ratchet::device::sas;
/// let shown = sas::sas(b"the exact bytes both devices saw")?;
/// println!("{:?}", shown.short()?);
/// # Ok::<(), sas::SasError>(())
/// ```
pub fn sas(m: &[u8]) -> Result<Sas, SasError> {
    Ok(sas_from_seed(&sas_seed(m)?))
}

/// Emoji `index` (0–63) of the Matrix SAS list and its description.
pub fn emoji(index: u8) -> Option<(&'static str, &'static str)> {
    let mut rest = EMOJI_JSON;
    let mut n = 0u8;
    loop {
        let e_at = rest.find("\"emoji\"")?;
        rest = rest.get(e_at + 7..)?;
        let emoji = quoted_value(rest)?;
        let d_at = rest.find("\"description\"")?;
        rest = rest.get(d_at + 13..)?;
        let description = quoted_value(rest)?;
        if n == index {
            return Some((emoji, description));
        }
        n = n.checked_add(1)?;
    }
}

/// The string after `: "` up to the next `"` (the list has no escapes).
fn quoted_value(s: &str) -> Option<&str> {
    let start = s.find('"')? + 1;
    let tail = s.get(start..)?;
    let end = tail.find('"')?;
    tail.get(..end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emoji_list() {
        assert_eq!(emoji(0), Some(("🐶", "Dog")));
        assert_eq!(emoji(63), Some(("📌", "Pin")));
        assert_eq!(emoji(64), None);
        for i in 0..64 {
            assert!(emoji(i).is_some());
        }
    }

    #[test]
    fn sas_bit_layout() {
        // Index 10 straddles the two 64-bit halves (bits 60..65).
        let mut seed = [0u8; 16];
        seed[7] = 0xf0; // bits 60..63 = 1111
        seed[8] = 0x03; // bits 64..65 = 11
        let s = sas_from_seed(&seed);
        assert_eq!(s.indices[10], 63);
        assert_eq!(s.indices[9], 0);
        assert_eq!(s.indices[11], 0);
        let s = sas_from_seed(&[0xff; 16]);
        assert!(s.indices.iter().all(|&i| i == 63));
    }
}
