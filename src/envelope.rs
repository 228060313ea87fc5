//! Fan-out envelopes (spec §8.7).
//!
//! This module owns the blob that carries one outgoing message to several
//! devices at once. Each recipient device gets a **slot**: a 16-byte hint
//! and a sealed body holding that device's payload (for the session layer, a
//! ratchet message plus routing fields; here, opaque bytes). The envelope is
//! padded twice, so a storage node that keeps it learns only two buckets:
//!
//! - the number of slots is the number of recipients rounded up to a
//!   multiple of 4, filled with random **dummy slots**;
//! - every body has the same length, the longest payload plus framing
//!   rounded up to a multiple of [`ENVELOPE_PAD`].
//!
//! Slot keys come from one X25519 exchange between a fresh ephemeral key
//! (its public half `E` is in the header) and each recipient's X25519
//! identity key. A recipient derives its hint and key with one X25519,
//! finds its slot by comparing the hint with every slot's hint in constant
//! time, and opens it. Slots are sorted by their bytes, so their order says
//! nothing either.
//!
//! An envelope authenticates nothing about its sender: anyone who knows a
//! device's public identity can build one for it. Sender authentication
//! comes from the ratchet message inside.
#![deny(clippy::integer_division_remainder_used)]

use crate::aead::{self, TAG_LEN};
use crate::dh::{X25519_KEY_LEN, X25519PublicKey};
use crate::identity::{DeviceIdentity, DevicePublicIdentity};
use crate::kdf::{self, label};
use crate::secret::{SharedSecret, SymmetricKey, X25519Secret};
use crate::wire::{MAX_WIRE_LEN, Reader, WireError, Writer, message_type};
use alloc::vec::Vec;
use core::fmt;
use rand_core::CryptoRng;
use subtle::{
    Choice, ConditionallySelectable, ConstantTimeEq, ConstantTimeGreater, ConstantTimeLess,
};
use zeroize::Zeroizing;

/// Length of a slot's hint.
pub const ENVELOPE_HINT_LEN: usize = 16;
/// Bodies are padded to a multiple of this: the ratchet's default padding
/// bucket (spec §7.7), so the envelope reveals payload lengths no more
/// finely than the ratchet messages inside already do.
pub const ENVELOPE_PAD: usize = 256;
/// Slot counts are multiples of this.
pub const ENVELOPE_SLOT_BUCKET: usize = 4;
/// Largest slot count.
pub const MAX_ENVELOPE_SLOTS: usize = 32;
/// Most recipient devices of one envelope: every slot may be real. A
/// sender addresses at most a contact's 16 devices and its own 15 others.
pub const MAX_ENVELOPE_RECIPIENTS: usize = MAX_ENVELOPE_SLOTS;
/// Length of the header: version, type, `E`, slot count, body length. It is
/// the associated data of every body.
pub const ENVELOPE_HEADER_LEN: usize = 2 + X25519_KEY_LEN + 1 + 4;
/// Bytes a body adds to its payload: the `u32` payload length and the tag.
pub const ENVELOPE_BODY_OVERHEAD: usize = 4 + TAG_LEN;
/// Largest body length: the largest multiple of [`ENVELOPE_PAD`] for which
/// an envelope of 4 slots fits in [`MAX_WIRE_LEN`].
pub const MAX_ENVELOPE_BODY_LEN: usize = 18_944;
/// Largest payload any envelope can carry (18,924 bytes).
pub const MAX_ENVELOPE_PAYLOAD_LEN: usize = MAX_ENVELOPE_BODY_LEN - ENVELOPE_BODY_OVERHEAD;

// MAX_ENVELOPE_BODY_LEN is the largest padded body length that fits.
const _: () = assert!(
    MAX_ENVELOPE_BODY_LEN.is_multiple_of(ENVELOPE_PAD)
        && envelope_len(ENVELOPE_SLOT_BUCKET, MAX_ENVELOPE_BODY_LEN) <= MAX_WIRE_LEN
        && envelope_len(ENVELOPE_SLOT_BUCKET, MAX_ENVELOPE_BODY_LEN + ENVELOPE_PAD) > MAX_WIRE_LEN
);

/// The number of slots for `recipients` recipient devices: the next
/// multiple of 4, and at least 4.
pub const fn envelope_slot_count(recipients: usize) -> usize {
    let n = if recipients == 0 { 1 } else { recipients };
    n.div_ceil(ENVELOPE_SLOT_BUCKET) * ENVELOPE_SLOT_BUCKET
}

/// The body length of an envelope whose longest payload has
/// `longest_payload` bytes: payload and framing, rounded up to a multiple of
/// [`ENVELOPE_PAD`].
pub const fn envelope_body_len(longest_payload: usize) -> usize {
    longest_payload
        .saturating_add(ENVELOPE_BODY_OVERHEAD)
        .div_ceil(ENVELOPE_PAD)
        .saturating_mul(ENVELOPE_PAD)
}

/// Encoded length of an envelope with `slot_count` slots of `body_len`-byte
/// bodies.
pub const fn envelope_len(slot_count: usize, body_len: usize) -> usize {
    slot_count
        .saturating_mul(ENVELOPE_HINT_LEN.saturating_add(body_len))
        .saturating_add(ENVELOPE_HEADER_LEN)
}

/// Errors of sealing, decoding and opening envelopes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// Sealing: the recipient list is empty.
    NoRecipients,
    /// Sealing: more recipient devices than one envelope holds. Split them
    /// over several envelopes.
    TooManyRecipients {
        /// The number of recipients given.
        count: usize,
        /// [`MAX_ENVELOPE_RECIPIENTS`].
        max: usize,
    },
    /// Sealing: two recipients have the same X25519 identity key. Each
    /// device must appear once; two devices never share a key.
    DuplicateRecipient {
        /// Position of the repeated recipient in the list.
        index: usize,
        /// Position of its first occurrence.
        earlier: usize,
    },
    /// Sealing: a payload is longer than any envelope can carry. Send it on
    /// its own channel, or make it smaller.
    PayloadTooLarge {
        /// Position of the recipient in the list.
        index: usize,
        /// The payload's length.
        len: usize,
        /// [`MAX_ENVELOPE_PAYLOAD_LEN`].
        max: usize,
    },
    /// Sealing: the envelope would exceed [`MAX_WIRE_LEN`]. Every slot is as
    /// long as the longest payload, so split the recipients over several
    /// envelopes (fewer slots), or put the largest payloads in their own.
    TooLarge {
        /// The length the envelope would have.
        len: usize,
        /// [`MAX_WIRE_LEN`].
        max: usize,
    },
    /// Sealing: a recipient's X25519 identity key is of low order, so no
    /// secret key can be agreed with it. The identity is not a real device's.
    InvalidRecipientKey {
        /// Position of the recipient in the list.
        index: usize,
    },
    /// Sealing: the RNG produced two identical slots. It is not a working
    /// cryptographic RNG; nothing was output.
    BrokenRng,
    /// Opening: the envelope's ephemeral key is of low order. No honest
    /// sender produces one; drop the envelope.
    InvalidEphemeralKey,
    /// Opening: no slot is addressed to this device. It may have been
    /// revoked, or the sender used a device list that does not include it
    /// (an older one, or one that is not yet updated): the sender must fetch
    /// the current device list and send again.
    NoSlotForDevice,
    /// Opening: a slot is addressed to this device but does not
    /// authenticate. The envelope was altered in storage or transit; drop it.
    SlotAuthentication,
    /// Opening: this device's slot authenticated but is not a length, the
    /// payload and zero padding. Only the sender can produce this; drop the
    /// envelope.
    BadPadding,
    /// The bytes are not an envelope (spec §6.5).
    Wire(WireError),
    /// A primitive refused its input (cannot happen with the fixed sizes used).
    Internal,
}

impl fmt::Display for EnvelopeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoRecipients => f.write_str("an envelope needs at least one recipient device"),
            Self::TooManyRecipients { count, max } => write!(
                f,
                "{count} recipient devices; an envelope holds at most {max}: split them over several envelopes"
            ),
            Self::DuplicateRecipient { index, earlier } => write!(
                f,
                "recipient {index} has the same X25519 identity key as recipient {earlier}; list each device once"
            ),
            Self::PayloadTooLarge { index, len, max } => write!(
                f,
                "the payload for recipient {index} has {len} bytes; an envelope carries at most {max} per device"
            ),
            Self::TooLarge { len, max } => write!(
                f,
                "the envelope would have {len} bytes, over the {max}-byte limit; split the recipients over several envelopes or send the largest payloads separately"
            ),
            Self::InvalidRecipientKey { index } => write!(
                f,
                "recipient {index} has a low-order X25519 identity key; it is not a real device"
            ),
            Self::BrokenRng => f.write_str(
                "the RNG produced two identical envelope slots; it is not a working cryptographic RNG",
            ),
            Self::InvalidEphemeralKey => f.write_str(
                "the envelope's ephemeral key is of low order; the envelope is forged, drop it",
            ),
            Self::NoSlotForDevice => f.write_str(
                "the envelope has no slot for this device: the device may have been revoked, or the sender used a device list without it and must send again with the current list",
            ),
            Self::SlotAuthentication => f.write_str(
                "this device's slot does not authenticate; the envelope was altered, drop it",
            ),
            Self::BadPadding => f.write_str(
                "this device's slot has a malformed length or non-zero padding; drop the envelope",
            ),
            Self::Wire(e) => write!(f, "malformed envelope: {e}"),
            Self::Internal => f.write_str("internal error in a primitive"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for EnvelopeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Wire(e) => Some(e),
            _ => None,
        }
    }
}

impl From<WireError> for EnvelopeError {
    fn from(e: WireError) -> Self {
        Self::Wire(e)
    }
}

/// `hint ‖ slot_key = HKDF(salt = E, IKM = K ‖ E ‖ P, info =
/// LABEL_ENVELOPE_SLOT, 48)` (spec §8.7.3).
fn slot_secrets(
    shared: &SharedSecret,
    ephemeral: &X25519PublicKey,
    dh_key: &X25519PublicKey,
) -> Result<(Zeroizing<[u8; ENVELOPE_HINT_LEN]>, SymmetricKey), EnvelopeError> {
    let mut okm = Zeroizing::new([0u8; ENVELOPE_HINT_LEN + SymmetricKey::LEN]);
    if !kdf::hkdf_sha256(
        ephemeral.as_bytes(),
        &[shared.expose(), ephemeral.as_bytes(), dh_key.as_bytes()],
        &[label::ENVELOPE_SLOT],
        okm.as_mut_slice(),
    ) {
        return Err(EnvelopeError::Internal);
    }
    let (hint, key) = okm
        .split_first_chunk::<ENVELOPE_HINT_LEN>()
        .ok_or(EnvelopeError::Internal)?;
    let key = key
        .first_chunk::<{ SymmetricKey::LEN }>()
        .ok_or(EnvelopeError::Internal)?;
    Ok((Zeroizing::new(*hint), SymmetricKey::from_slice_array(key)))
}

/// The header, which is also every body's associated data (spec §8.7.2).
fn header(ephemeral: &X25519PublicKey, slot_count: usize, body_len: usize) -> Vec<u8> {
    let mut w = Writer::start(message_type::ENVELOPE, ENVELOPE_HEADER_LEN);
    // Both fit their fields by construction (≤ 32 and ≤ 18,944).
    w.bytes(ephemeral.as_bytes())
        .u8(u8::try_from(slot_count).unwrap_or(u8::MAX))
        .u32(u32::try_from(body_len).unwrap_or(u32::MAX));
    w.finish()
}

/// Checks `u32(len) ‖ payload ‖ zeros` in constant time with respect to
/// `len` and the bytes, and returns the payload.
fn unframe(plain: &[u8]) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
    let (len, rest) = plain
        .split_first_chunk::<4>()
        .ok_or(EnvelopeError::BadPadding)?;
    let len = u64::from(u32::from_be_bytes(*len));
    let room = u64::try_from(rest.len()).unwrap_or(u64::MAX);
    let fits = !len.ct_gt(&room);
    let mut stray = 0u8;
    let mut at = 0u64;
    for b in rest {
        stray |= u8::conditional_select(&0, b, !at.ct_lt(&len));
        at = at.saturating_add(1);
    }
    if !bool::from(fits & stray.ct_eq(&0)) {
        return Err(EnvelopeError::BadPadding);
    }
    let payload = usize::try_from(len)
        .ok()
        .and_then(|len| rest.get(..len))
        .ok_or(EnvelopeError::BadPadding)?;
    Ok(Zeroizing::new(payload.to_vec()))
}

/// A fan-out envelope (spec §8.7): one padded, encrypted slot per recipient
/// device, plus random dummy slots.
#[derive(Clone, PartialEq, Eq)]
pub struct Envelope {
    ephemeral: X25519PublicKey,
    slot_count: usize,
    body_len: usize,
    /// `slot_count` slots of `hint ‖ body`, in ascending byte order.
    slots: Vec<u8>,
}

impl fmt::Debug for Envelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Envelope")
            .field("ephemeral", &self.ephemeral)
            .field("slot_count", &self.slot_count)
            .field("body_len", &self.body_len)
            .finish_non_exhaustive()
    }
}

impl Envelope {
    /// Seals one payload per recipient device (spec §8.7.4). Payloads are
    /// opaque; an empty payload is allowed.
    ///
    /// Checks everything that does not need a key before drawing anything:
    /// the recipient count ([`EnvelopeError::NoRecipients`],
    /// [`EnvelopeError::TooManyRecipients`]), repeated devices
    /// ([`EnvelopeError::DuplicateRecipient`]), payload sizes
    /// ([`EnvelopeError::PayloadTooLarge`]) and the total size
    /// ([`EnvelopeError::TooLarge`]: every slot is as long as the longest
    /// payload, so splitting the recipients over several envelopes helps).
    /// Then draws, in order, the 32-byte ephemeral secret `e`, and for each
    /// dummy slot `16 + body_len` bytes (its hint and body) as one draw.
    ///
    /// ```
    /// use session_ratchet::envelope::{Envelope, EnvelopeError};
    /// use session_ratchet::identity::DeviceIdentity;
    /// # use rand_chacha::{ChaCha20Rng, rand_core::SeedableRng};
    /// # let mut rng = ChaCha20Rng::from_seed([0; 32]);
    /// let phone = DeviceIdentity::generate(&mut rng);
    /// let laptop = DeviceIdentity::generate(&mut rng);
    /// let revoked = DeviceIdentity::generate(&mut rng);
    ///
    /// let envelope = Envelope::seal(
    ///     &mut rng,
    ///     &[(phone.public(), b"for the phone"), (laptop.public(), b"for the laptop")],
    /// )?;
    /// assert_eq!(envelope.slot_count(), 4); // two real slots, two dummies
    ///
    /// // The storage node keeps the bytes; each device opens its own slot.
    /// let received = Envelope::from_bytes(&envelope.to_bytes())?;
    /// assert_eq!(received.open(&phone)?.as_slice(), b"for the phone");
    /// assert_eq!(received.open(&laptop)?.as_slice(), b"for the laptop");
    /// assert_eq!(received.open(&revoked), Err(EnvelopeError::NoSlotForDevice));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn seal<R: CryptoRng + ?Sized>(
        rng: &mut R,
        recipients: &[(&DevicePublicIdentity, &[u8])],
    ) -> Result<Self, EnvelopeError> {
        let n = recipients.len();
        if n == 0 {
            return Err(EnvelopeError::NoRecipients);
        }
        if n > MAX_ENVELOPE_RECIPIENTS {
            return Err(EnvelopeError::TooManyRecipients {
                count: n,
                max: MAX_ENVELOPE_RECIPIENTS,
            });
        }
        let mut longest = 0;
        // At most 32 recipients, so the pairwise search is bounded.
        for (index, (identity, payload)) in recipients.iter().enumerate() {
            if let Some(earlier) = recipients
                .iter()
                .take(index)
                .position(|(other, _)| other.dh_key() == identity.dh_key())
            {
                return Err(EnvelopeError::DuplicateRecipient { index, earlier });
            }
            if payload.len() > MAX_ENVELOPE_PAYLOAD_LEN {
                return Err(EnvelopeError::PayloadTooLarge {
                    index,
                    len: payload.len(),
                    max: MAX_ENVELOPE_PAYLOAD_LEN,
                });
            }
            longest = longest.max(payload.len());
        }
        let slot_count = envelope_slot_count(n);
        let body_len = envelope_body_len(longest);
        let len = envelope_len(slot_count, body_len);
        if len > MAX_WIRE_LEN {
            return Err(EnvelopeError::TooLarge {
                len,
                max: MAX_WIRE_LEN,
            });
        }

        let e = X25519Secret::random(rng);
        let ephemeral = e.public_key();
        let slot_len = ENVELOPE_HINT_LEN + body_len;
        let mut slots: Vec<Vec<u8>> = Vec::with_capacity(slot_count);
        for _ in n..slot_count {
            let mut dummy = alloc::vec![0u8; slot_len];
            rng.fill_bytes(&mut dummy);
            slots.push(dummy);
        }
        let ad = header(&ephemeral, slot_count, body_len);
        for (index, (identity, payload)) in recipients.iter().enumerate() {
            let dh_key = identity.dh_key();
            let shared = e
                .diffie_hellman(dh_key)
                .ok_or(EnvelopeError::InvalidRecipientKey { index })?;
            let (hint, key) = slot_secrets(&shared, &ephemeral, dh_key)?;
            let payload_len = u32::try_from(payload.len()).map_err(|_| EnvelopeError::Internal)?;
            // Capacity for the tag too, so sealing never reallocates and
            // leaves no stray plaintext copy behind.
            let mut body = Zeroizing::new(Vec::with_capacity(body_len));
            body.extend_from_slice(&payload_len.to_be_bytes());
            body.extend_from_slice(payload);
            body.resize(body_len.saturating_sub(TAG_LEN), 0);
            if !aead::seal_single_use(key.expose(), &ad, &mut body) {
                return Err(EnvelopeError::Internal);
            }
            let mut slot = Vec::with_capacity(slot_len);
            slot.extend_from_slice(hint.as_slice());
            slot.extend_from_slice(&body);
            slots.push(slot);
        }
        slots.sort_unstable();
        if slots.windows(2).any(|w| matches!(w, [a, b] if a == b)) {
            return Err(EnvelopeError::BrokenRng);
        }
        Ok(Self {
            ephemeral,
            slot_count,
            body_len,
            slots: slots.concat(),
        })
    }

    /// Opens this device's slot and returns its payload (spec §8.7.5).
    ///
    /// One X25519 with the device's identity key gives the hint and the slot
    /// key; the hint is compared with every slot's hint in constant time,
    /// then the matching slot is opened (several only in a forged envelope:
    /// they are tried in order, at most [`Envelope::slot_count`] of them).
    /// Errors: [`EnvelopeError::InvalidEphemeralKey`],
    /// [`EnvelopeError::NoSlotForDevice`],
    /// [`EnvelopeError::SlotAuthentication`], [`EnvelopeError::BadPadding`].
    pub fn open(&self, identity: &DeviceIdentity) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
        let own = identity.public().dh_key();
        let shared = identity
            .dh_secret()
            .diffie_hellman(&self.ephemeral)
            .ok_or(EnvelopeError::InvalidEphemeralKey)?;
        let (hint, key) = slot_secrets(&shared, &self.ephemeral, own)?;
        let slot_len = ENVELOPE_HINT_LEN + self.body_len;
        // Every hint is compared, with no early exit; only which slots
        // matched is branched on (a public verdict, spec §8.7.5).
        let matches: Vec<Choice> = self
            .slots
            .chunks_exact(slot_len)
            .map(|slot| {
                slot.first_chunk::<ENVELOPE_HINT_LEN>()
                    .map_or(Choice::from(0), |h| h.ct_eq(&*hint))
            })
            .collect();
        let any = matches.iter().fold(Choice::from(0), |acc, m| acc | *m);
        if !bool::from(any) {
            return Err(EnvelopeError::NoSlotForDevice);
        }
        let ad = self.header();
        for (slot, matched) in self.slots.chunks_exact(slot_len).zip(matches) {
            if !bool::from(matched) {
                continue;
            }
            let body = slot
                .get(ENVELOPE_HINT_LEN..)
                .ok_or(EnvelopeError::Internal)?;
            let mut buf = Zeroizing::new(body.to_vec());
            if aead::open_single_use(key.expose(), &ad, &mut buf) {
                return unframe(&buf);
            }
        }
        Err(EnvelopeError::SlotAuthentication)
    }

    /// The number of slots (a multiple of 4): all the storage node learns
    /// about the number of recipients.
    pub fn slot_count(&self) -> usize {
        self.slot_count
    }

    /// The length of every body (a multiple of [`ENVELOPE_PAD`]): all the
    /// storage node learns about the payload lengths.
    pub fn body_len(&self) -> usize {
        self.body_len
    }

    /// The ephemeral X25519 public key `E`.
    pub fn ephemeral_key(&self) -> &X25519PublicKey {
        &self.ephemeral
    }

    /// The encoded length in bytes.
    // An envelope always has a header and slots, so `is_empty` would be
    // meaningless.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        ENVELOPE_HEADER_LEN + self.slots.len()
    }

    fn header(&self) -> Vec<u8> {
        header(&self.ephemeral, self.slot_count, self.body_len)
    }

    /// Canonical encoding: header, then the slots (spec §8.7.2).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len());
        out.extend_from_slice(&self.header());
        out.extend_from_slice(&self.slots);
        out
    }

    /// Decodes and checks the structure (spec §8.7.2): the slot count a
    /// multiple of 4 between 4 and [`MAX_ENVELOPE_SLOTS`], the body length a
    /// multiple of [`ENVELOPE_PAD`] up to [`MAX_ENVELOPE_BODY_LEN`], the slots
    /// strictly ascending, nothing after them. Any 32 bytes are accepted as
    /// `E`; a low-order `E` is rejected by [`Envelope::open`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::start(bytes, message_type::ENVELOPE)?;
        let ephemeral = X25519PublicKey::from_bytes(r.array::<X25519_KEY_LEN>("ephemeral key")?);
        let slot_count = Reader::check_count(
            usize::from(r.u8("slot count")?),
            MAX_ENVELOPE_SLOTS,
            "slot count",
        )?;
        if slot_count == 0 || !slot_count.is_multiple_of(ENVELOPE_SLOT_BUCKET) {
            return Err(WireError::InvalidValue {
                field: "slot count",
            });
        }
        let body_len = usize::try_from(r.u32("body length")?).unwrap_or(usize::MAX);
        if body_len > MAX_ENVELOPE_BODY_LEN {
            return Err(WireError::LengthExceeded {
                field: "body length",
                len: body_len,
                max: MAX_ENVELOPE_BODY_LEN,
            });
        }
        if body_len == 0 || !body_len.is_multiple_of(ENVELOPE_PAD) {
            return Err(WireError::InvalidValue {
                field: "body length",
            });
        }
        let slot_len = ENVELOPE_HINT_LEN + body_len;
        let slots = r.slice(slot_count.saturating_mul(slot_len), "slots")?;
        let mut prev: Option<&[u8]> = None;
        for slot in slots.chunks_exact(slot_len) {
            if prev.is_some_and(|p| p >= slot) {
                return Err(WireError::NotCanonical { field: "slots" });
            }
            prev = Some(slot);
        }
        r.finish()?;
        Ok(Self {
            ephemeral,
            slot_count,
            body_len,
            slots: slots.to_vec(),
        })
    }
}

#[cfg(test)]
mod tests;
