//! The routing header at the start of every envelope slot (spec §8.6.3).
//!
//! It tells the receiving device which account and device sent the slot,
//! which conversation it belongs to, and which device-list versions the
//! sender used. It is readable only by the slot's recipient (the envelope
//! encrypts it) and authenticated by the ratchet: the whole header, the
//! recipient account and the recipient device are the ratchet message's
//! associated data, so a slot cannot be re-wrapped with other routing.

use super::SessionsError;
use crate::device::list::DeviceId;
use crate::identity::Ed25519PublicKey;
use crate::kdf::label;
use crate::wire::{WIRE_VERSION, WireError, message_type};
use alloc::vec::Vec;

/// Format byte of this routing header.
const ROUTING_FORMAT: u8 = 0x01;
/// Length of the routing header.
pub(crate) const ROUTING_LEN: usize = 1 + 32 + 32 + 32 + 8 + 8 + 8 + 1 + 1;
/// `session_flags` bit: the session is a healing session (spec §8.8).
const SESSION_HEAL: u8 = 0x01;

/// What a slot carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ContentKind {
    /// An application message.
    Message,
    /// A healing notice: a fresh session announced with empty content
    /// (spec §8.8). Clients do not show it.
    Heal,
}

impl ContentKind {
    fn to_byte(self) -> u8 {
        match self {
            Self::Message => 0x01,
            Self::Heal => 0x02,
        }
    }

    fn from_byte(b: u8) -> Option<Self> {
        match b {
            0x01 => Some(Self::Message),
            0x02 => Some(Self::Heal),
            _ => None,
        }
    }
}

/// A decoded routing header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Routing {
    pub(crate) sender_account: Ed25519PublicKey,
    pub(crate) sender_device: DeviceId,
    pub(crate) conversation: Ed25519PublicKey,
    pub(crate) sender_list_version: u64,
    pub(crate) conversation_list_version: u64,
    pub(crate) session_created: u64,
    pub(crate) session_heal: bool,
    pub(crate) kind: ContentKind,
}

impl Routing {
    pub(crate) fn to_bytes(self) -> Vec<u8> {
        let mut out = Vec::with_capacity(ROUTING_LEN);
        out.push(ROUTING_FORMAT);
        out.extend_from_slice(&self.sender_account.to_bytes());
        out.extend_from_slice(self.sender_device.as_bytes());
        out.extend_from_slice(&self.conversation.to_bytes());
        out.extend_from_slice(&self.sender_list_version.to_be_bytes());
        out.extend_from_slice(&self.conversation_list_version.to_be_bytes());
        out.extend_from_slice(&self.session_created.to_be_bytes());
        out.push(if self.session_heal { SESSION_HEAL } else { 0 });
        out.push(self.kind.to_byte());
        out
    }

    /// Splits a slot payload into its routing header and the ratchet
    /// object (a prekey message or a ratchet message) that follows. Fields
    /// are read and checked one at a time (spec §6.5), then the object's
    /// version and type bytes; the rest of the object is checked by its own
    /// decoder.
    pub(crate) fn split(payload: &[u8]) -> Result<(Self, &[u8]), SessionsError> {
        let truncated = |field| SessionsError::Wire(WireError::Truncated { field });
        let mut at = 0usize;
        let mut take = |n: usize, field: &'static str| -> Result<&[u8], SessionsError> {
            let s = payload
                .get(at..at.saturating_add(n))
                .ok_or(truncated(field))?;
            at += n;
            Ok(s)
        };
        let format = take(1, "routing format")?;
        if format != [ROUTING_FORMAT] {
            return Err(SessionsError::Wire(WireError::InvalidValue {
                field: "routing format",
            }));
        }
        let key = |b: &[u8], field| -> Result<Ed25519PublicKey, SessionsError> {
            let arr: [u8; 32] = b.try_into().map_err(|_| truncated(field))?;
            Ed25519PublicKey::from_bytes(&arr)
                .map_err(|_| SessionsError::Wire(WireError::InvalidEd25519Key { field }))
        };
        let u64_of = |b: &[u8]| -> Result<u64, SessionsError> {
            let arr: [u8; 8] = b.try_into().map_err(|_| SessionsError::Internal)?;
            Ok(u64::from_be_bytes(arr))
        };
        let sender_account = key(take(32, "sender account")?, "sender account")?;
        let device: [u8; 32] = take(32, "sender device")?
            .try_into()
            .map_err(|_| SessionsError::Internal)?;
        let conversation = key(take(32, "conversation")?, "conversation")?;
        let sender_list_version = u64_of(take(8, "sender list version")?)?;
        let conversation_list_version = u64_of(take(8, "conversation list version")?)?;
        let session_created = u64_of(take(8, "session created")?)?;
        let flags = take(1, "session flags")?.first().copied().unwrap_or(0xff);
        if flags & !SESSION_HEAL != 0 {
            return Err(SessionsError::Wire(WireError::InvalidFlags {
                field: "session flags",
                flags,
            }));
        }
        let kind = take(1, "content kind")?
            .first()
            .copied()
            .and_then(ContentKind::from_byte)
            .ok_or(SessionsError::Wire(WireError::InvalidValue {
                field: "content kind",
            }))?;
        let message = payload.get(ROUTING_LEN..).ok_or(SessionsError::Internal)?;
        // The object's version, then its type (spec §6.5 order).
        match message {
            [] => return Err(truncated("message version")),
            [version, ..] if *version != WIRE_VERSION => {
                return Err(SessionsError::Wire(WireError::UnsupportedVersion {
                    version: *version,
                }));
            }
            [_] => return Err(truncated("message type")),
            [_, t, ..]
                if *t != message_type::PREKEY_MESSAGE && *t != message_type::RATCHET_MESSAGE =>
            {
                return Err(SessionsError::Wire(WireError::UnexpectedType {
                    expected: message_type::RATCHET_MESSAGE,
                    actual: *t,
                }));
            }
            _ => {}
        }
        Ok((
            Self {
                sender_account,
                sender_device: DeviceId::from_bytes(device),
                conversation,
                sender_list_version,
                conversation_list_version,
                session_created,
                session_heal: flags & SESSION_HEAL != 0,
                kind,
            },
            message,
        ))
    }
}

/// The ratchet's associated data for one slot:
/// `LABEL_ENVELOPE_ROUTING ‖ routing header ‖ recipient account ‖ recipient device`.
pub(crate) fn associated_data(
    header: &[u8],
    recipient_account: &Ed25519PublicKey,
    recipient_device: &DeviceId,
) -> Vec<u8> {
    let mut ad = Vec::with_capacity(label::ENVELOPE_ROUTING.len() + header.len() + 64);
    ad.extend_from_slice(label::ENVELOPE_ROUTING);
    ad.extend_from_slice(header);
    ad.extend_from_slice(&recipient_account.to_bytes());
    ad.extend_from_slice(recipient_device.as_bytes());
    ad
}
