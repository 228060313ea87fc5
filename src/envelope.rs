//! TEMPORARY stand-in with the agreed API; replaced by the real module.
#![allow(missing_docs, clippy::missing_errors_doc, clippy::indexing_slicing)]
use crate::identity::{DeviceIdentity, DevicePublicIdentity};
use crate::wire::WireError;
use alloc::vec::Vec;
use rand_core::CryptoRng;
use zeroize::Zeroizing;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope(Vec<u8>);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EnvelopeError {
    NoSlotForDevice,
    TooLarge,
    Wire(WireError),
}

impl core::fmt::Display for EnvelopeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{self:?}")
    }
}

pub fn seal<R: CryptoRng + ?Sized>(
    _rng: &mut R,
    recipients: &[(&DevicePublicIdentity, &[u8])],
) -> Result<Envelope, EnvelopeError> {
    let mut out = Vec::new();
    for (id, p) in recipients {
        out.extend_from_slice(&id.to_bytes());
        out.extend_from_slice(&(p.len() as u32).to_be_bytes());
        out.extend_from_slice(p);
    }
    if out.len() > crate::wire::MAX_WIRE_LEN {
        return Err(EnvelopeError::TooLarge);
    }
    Ok(Envelope(out))
}

impl Envelope {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, WireError> {
        Ok(Self(bytes.to_vec()))
    }
    pub fn to_bytes(&self) -> Vec<u8> {
        self.0.clone()
    }
    pub fn open(&self, identity: &DeviceIdentity) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
        let me = identity.public().to_bytes();
        let mut rest = &self.0[..];
        while rest.len() >= 68 {
            let (id, r) = rest.split_at(64);
            let (l, r) = r.split_at(4);
            let n = u32::from_be_bytes([l[0], l[1], l[2], l[3]]) as usize;
            if r.len() < n {
                break;
            }
            let (p, r) = r.split_at(n);
            if id == me {
                return Ok(Zeroizing::new(p.to_vec()));
            }
            rest = r;
        }
        Err(EnvelopeError::NoSlotForDevice)
    }
}
