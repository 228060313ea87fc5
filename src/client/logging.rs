//! Redacting log lines (feature `log`, spec §10.10): why a message did not
//! decrypt, what a call committed, when another process got there first.
//!
//! A line never holds a secret, content or a full identifier: accounts
//! and devices appear as [`LogId`], the first 4 bytes of
//! `HMAC-SHA256(K_log, LABEL_LOG_ID ‖ id)` under a key derived from the
//! storage key: enough to tell devices apart in one device's log, and no
//! way for a log reader to test candidate Session IDs; errors appear by
//! their kind ([`error_kind`]), since some error values carry full
//! account keys.
// Without the feature only the (empty) macro is used.
#![cfg_attr(not(feature = "log"), allow(dead_code))]

use super::ClientError;
use super::records::RecordKeys;
use crate::sessions::SessionsError;
use core::fmt;

/// A public identifier shown in a log line: 8 hex digits of a labelled hash.
pub(crate) struct LogId([u8; 4]);

impl LogId {
    pub(crate) fn of(keys: &RecordKeys, id: &[u8]) -> Self {
        Self(keys.log_tag(id))
    }
}

impl fmt::Display for LogId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// The name of an error's kind, with the ratchet's verdict where that is
/// what a developer needs (it carries no identifier).
pub(crate) fn error_kind(e: &ClientError) -> ErrorKind<'_> {
    ErrorKind(e)
}

pub(crate) struct ErrorKind<'a>(&'a ClientError);

impl fmt::Display for ErrorKind<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            ClientError::Sessions(s) => match s {
                SessionsError::Undecryptable { error, .. } => {
                    write!(f, "Undecryptable({error:?})")
                }
                SessionsError::Handshake { error, .. } => write!(f, "Handshake({error:?})"),
                SessionsError::UnknownAccount { .. } => f.write_str("UnknownAccount"),
                SessionsError::MissingPrekeys { devices } => {
                    write!(f, "MissingPrekeys({} devices)", devices.len())
                }
                SessionsError::RevokedSender { .. } => f.write_str("RevokedSender"),
                SessionsError::DeviceListOutdated { held, claimed, .. } => {
                    write!(f, "DeviceListOutdated(held {held}, claimed {claimed})")
                }
                SessionsError::UnknownSenderDevice { .. } => f.write_str("UnknownSenderDevice"),
                SessionsError::SenderIdentityMismatch { .. } => {
                    f.write_str("SenderIdentityMismatch")
                }
                other => write!(f, "{other:?}"),
            },
            // The other variants carry no identifier.
            other => write!(f, "{other:?}"),
        }
    }
}

/// Emits a log line when the `log` feature is on; compiles to nothing
/// otherwise (its arguments are not evaluated).
macro_rules! event {
    ($level:ident, $($arg:tt)+) => {{
        #[cfg(feature = "log")]
        {
            ::log::$level!(target: "session_ratchet::client", $($arg)+);
        }
    }};
}
pub(crate) use event;
