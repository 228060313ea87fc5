//! Small helpers shared by the `Debug` impls of public types.

use core::fmt;

/// Writes the first 8 bytes of a public value as hex, then `…`: enough to tell
/// keys apart in logs without flooding them with 1184-byte ML-KEM keys.
pub(crate) fn write_hex_prefix(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    for b in bytes.iter().take(8) {
        write!(f, "{b:02x}")?;
    }
    if bytes.len() > 8 {
        f.write_str("…")?;
    }
    Ok(())
}
