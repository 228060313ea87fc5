//! Errors of the double ratchet (spec §7.9).

use crate::handshake::HandshakeError;
use crate::wire::WireError;
use core::fmt;

/// Why a ratchet operation failed. On every error the session is unchanged:
/// the same message may be retried, and later messages still decrypt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RatchetError {
    /// The bytes are not a well-formed message.
    Wire(WireError),
    /// No header key of this session opens the header: the message belongs to
    /// another session, to a chain too old to be kept, or was forged.
    UndecryptableHeader,
    /// The header opened but the body did not authenticate: the message was
    /// altered, or the associated data differs from the sender's.
    AuthenticationFailed,
    /// This message was already decrypted (a duplicate or replay).
    DuplicateMessage,
    /// The message is older than the skipped-key window: its key was
    /// evicted (spec §7.8 bounds), so it can no longer be decrypted.
    MessageTooOld,
    /// The message is further ahead in its chain than
    /// [`super::MAX_SKIP`] allows; refusing bounds the work an attacker can cause.
    TooFarAhead,
    /// The header names a PQ epoch this session never encapsulated.
    UnknownPqEpoch,
    /// A PQ section inside an authenticated message is malformed.
    MalformedPqSection,
    /// PQ chunks for one object disagree with each other.
    InconsistentPqChunks,
    /// A reassembled ML-KEM key failed the FIPS 203 input check.
    InvalidPqKey,
    /// A peer's X25519 ratchet key is of low order.
    NonContributoryKey,
    /// The peer opened a second ratchet chain before this side (the
    /// responder) sent anything, so this side has no ratchet key to answer
    /// it with (spec §7.4). An honest peer never does this: the message is
    /// dropped and the session is unchanged.
    NewChainBeforeReply,
    /// The padded plaintext would exceed the maximum message size.
    PlaintextTooLong,
    /// A counter reached its maximum; start a new session.
    CounterExhausted,
    /// The first message's handshake failed.
    Handshake(HandshakeError),
    /// A prekey message arrived for a session that already has a different
    /// handshake (another base key).
    HandshakeMismatch,
    /// A stored session could not be loaded.
    Storage(StorageError),
    /// An internal invariant failed (a bug); the session is unchanged.
    Internal,
}

/// Why a stored session could not be loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StorageError {
    /// The blob was written by a newer version of this library.
    UnsupportedVersion(u8),
    /// The blob is truncated or corrupted.
    Corrupted,
    /// The blob does not decode: the field and the §6.5 class say where
    /// and why (truncated, a value out of range, trailing bytes, …).
    Malformed(WireError),
    /// The storage key is wrong or the encrypted blob was altered.
    WrongKeyOrTampered,
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnsupportedVersion(v) => {
                write!(
                    f,
                    "stored session format {v} is newer than this library supports; upgrade the library"
                )
            }
            Self::Corrupted => f.write_str("stored session is truncated or corrupted"),
            Self::Malformed(e) => write!(f, "stored session does not decode: {e}"),
            Self::WrongKeyOrTampered => {
                f.write_str("wrong storage key, or the stored session was altered")
            }
        }
    }
}

impl fmt::Display for RatchetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Wire(e) => write!(f, "malformed message: {e}"),
            Self::UndecryptableHeader => f.write_str(
                "no header key of this session fits: wrong session, expired chain, or forged message",
            ),
            Self::AuthenticationFailed => {
                f.write_str("message failed authentication (altered, or associated data differs)")
            }
            Self::DuplicateMessage => f.write_str("message already decrypted (duplicate or replay)"),
            Self::MessageTooOld => f.write_str("message is older than the skipped-key window and cannot be decrypted"),
            Self::TooFarAhead => f.write_str("message skips more messages than allowed"),
            Self::UnknownPqEpoch => f.write_str("header names a PQ epoch this session never started"),
            Self::MalformedPqSection => f.write_str("malformed PQ section"),
            Self::InconsistentPqChunks => f.write_str("PQ chunks of one key or ciphertext disagree"),
            Self::InvalidPqKey => f.write_str("peer's ML-KEM key failed the FIPS 203 check"),
            Self::NonContributoryKey => f.write_str("peer ratchet key is a low-order point"),
            Self::NewChainBeforeReply => f.write_str(
                "peer started a new ratchet chain before this side replied (a deviating peer); message dropped, session unchanged",
            ),
            Self::PlaintextTooLong => f.write_str("plaintext too long for one message"),
            Self::CounterExhausted => f.write_str("session counter exhausted; start a new session"),
            Self::Handshake(e) => write!(f, "handshake failed: {e}"),
            Self::HandshakeMismatch => f.write_str("prekey message belongs to a different handshake"),
            Self::Storage(e) => write!(f, "cannot load session: {e}"),
            Self::Internal => f.write_str("internal error (bug); session unchanged"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for RatchetError {}
#[cfg(feature = "std")]
impl std::error::Error for StorageError {}

impl From<WireError> for RatchetError {
    fn from(e: WireError) -> Self {
        Self::Wire(e)
    }
}

impl From<HandshakeError> for RatchetError {
    fn from(e: HandshakeError) -> Self {
        Self::Handshake(e)
    }
}

impl From<StorageError> for RatchetError {
    fn from(e: StorageError) -> Self {
        Self::Storage(e)
    }
}

impl From<crate::aead::StoredOpenError> for StorageError {
    fn from(e: crate::aead::StoredOpenError) -> Self {
        match e {
            crate::aead::StoredOpenError::UnsupportedVersion(v) => Self::UnsupportedVersion(v),
            crate::aead::StoredOpenError::Malformed(e) => Self::Malformed(e),
            crate::aead::StoredOpenError::WrongKeyOrTampered => Self::WrongKeyOrTampered,
        }
    }
}
