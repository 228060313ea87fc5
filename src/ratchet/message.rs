//! Ratchet message layout (spec §7.7): encrypted header, padded body.
#![allow(unreachable_pub)] // MIN_MESSAGE_LEN is re-exported from `ratchet`.
//!
//! ```text
//! 0x01 ‖ 0x04 ‖ nonce (24) ‖ Enc_HK(header, 44 bytes) + tag (16) ‖ Enc_AK(body) + tag (16)
//! header = DH_pub (32) ‖ u32 PN ‖ u32 N ‖ u32 mixed PQ epoch (0 = none)
//! body   = u16 len(pq) ‖ pq section ‖ u32 len(plaintext) ‖ plaintext ‖ zero padding
//! AK     = HMAC(MK, LABEL_MESSAGE_BODY_KEY ‖ nonce)   (the body key, §7.3)
//! ```

use crate::aead::{TAG_LEN, XNONCE_LEN};
use crate::dh::X25519PublicKey;
use crate::wire::{MAX_WIRE_LEN, WIRE_VERSION, WireError, message_type};
use alloc::vec::Vec;

/// Length of the header plaintext.
pub(crate) const HEADER_LEN: usize = 32 + 4 + 4 + 4;
/// Bytes before the encrypted body: version, type, nonce, encrypted header.
pub(crate) const PREFIX_LEN: usize = 2 + XNONCE_LEN + HEADER_LEN + TAG_LEN;
/// Fixed body framing: the two length fields.
pub(crate) const BODY_FRAMING: usize = 2 + 4;
/// Length of a ratchet message with an empty plaintext and no PQ section,
/// before padding: a message with plaintext `p` is at least this plus `len(p)`.
pub const MIN_MESSAGE_LEN: usize = PREFIX_LEN + BODY_FRAMING + TAG_LEN;

/// The decrypted header.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Header {
    pub(crate) dh: X25519PublicKey,
    pub(crate) pn: u32,
    pub(crate) n: u32,
    pub(crate) mix_epoch: u32,
}

impl Header {
    pub(crate) fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[..32].copy_from_slice(self.dh.as_bytes());
        out[32..36].copy_from_slice(&self.pn.to_be_bytes());
        out[36..40].copy_from_slice(&self.n.to_be_bytes());
        out[40..44].copy_from_slice(&self.mix_epoch.to_be_bytes());
        out
    }

    pub(crate) fn decode(b: &[u8]) -> Option<Self> {
        if b.len() != HEADER_LEN {
            return None;
        }
        let (dh, rest) = b.split_first_chunk::<32>()?;
        let (pn, rest) = rest.split_first_chunk::<4>()?;
        let (n, rest) = rest.split_first_chunk::<4>()?;
        let (mix, _) = rest.split_first_chunk::<4>()?;
        Some(Self {
            dh: X25519PublicKey(*dh),
            pn: u32::from_be_bytes(*pn),
            n: u32::from_be_bytes(*n),
            mix_epoch: u32::from_be_bytes(*mix),
        })
    }
}

/// A ratchet message split into its parts (no cryptography yet).
pub(crate) struct Parts<'a> {
    pub(crate) prefix: &'a [u8],
    pub(crate) nonce: [u8; XNONCE_LEN],
    pub(crate) enc_header: &'a [u8],
    pub(crate) enc_body: &'a [u8],
}

pub(crate) fn split(bytes: &[u8]) -> Result<Parts<'_>, WireError> {
    if bytes.len() > MAX_WIRE_LEN {
        return Err(WireError::TooLong { len: bytes.len() });
    }
    let mut r = crate::wire::Reader::start(bytes, message_type::RATCHET_MESSAGE)?;
    let nonce = r.array::<XNONCE_LEN>("header nonce")?;
    let enc_header = r.slice(HEADER_LEN + TAG_LEN, "encrypted header")?;
    let enc_body = r.rest();
    if enc_body.len() < BODY_FRAMING + TAG_LEN {
        return Err(WireError::Truncated {
            field: "encrypted body",
        });
    }
    let (prefix, _) = bytes
        .split_at_checked(PREFIX_LEN)
        .ok_or(WireError::Truncated { field: "prefix" })?;
    Ok(Parts {
        prefix,
        nonce,
        enc_header,
        enc_body,
    })
}

/// Starts a message: version, type and nonce.
pub(crate) fn start(nonce: &[u8; XNONCE_LEN], capacity: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(capacity);
    out.push(WIRE_VERSION);
    out.push(message_type::RATCHET_MESSAGE);
    out.extend_from_slice(nonce);
    out
}

/// Builds the body plaintext: `u16 len(pq) ‖ pq ‖ u32 len(pt) ‖ pt ‖ zeros`.
pub(crate) fn body(pq: &[u8], pt: &[u8], padding: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(BODY_FRAMING + pq.len() + pt.len() + padding + TAG_LEN);
    out.extend_from_slice(&u16::try_from(pq.len()).unwrap_or(u16::MAX).to_be_bytes());
    out.extend_from_slice(pq);
    out.extend_from_slice(&u32::try_from(pt.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(pt);
    out.resize(out.len() + padding, 0);
    out
}

/// Splits a decrypted body into (pq section, plaintext). The padding must be zeros.
pub(crate) fn parse_body(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = b.split_first_chunk::<2>()?;
    let (pq, rest) = rest.split_at_checked(usize::from(u16::from_be_bytes(*len)))?;
    let (len, rest) = rest.split_first_chunk::<4>()?;
    let (pt, padding) = rest.split_at_checked(usize::try_from(u32::from_be_bytes(*len)).ok()?)?;
    if padding.iter().any(|&z| z != 0) {
        return None;
    }
    Some((pq, pt))
}
