//! The errors every call throws: a JavaScript `Error` (a `TypeError` for an
//! argument of the wrong type) with a stable `code` string per error kind,
//! the crate's message, and for some kinds the account it is about.

use js_sys::{Array, Reflect, Uint8Array};
use session_ratchet::account::SessionIdError;
use session_ratchet::client::{ClientError, RecordError};
use session_ratchet::sessions::SessionsError;
use wasm_bindgen::JsValue;
use wasm_bindgen::prelude::wasm_bindgen;

/// Every code, in the order the README lists them. A code keeps its
/// spelling in every later version; new kinds get new codes.
const CODES: &[&str] = &[
    // The boundary.
    INVALID_ARGUMENT,
    CONSUMED,
    INTERNAL,
    OTHER,
    // Malformed input.
    "Malformed",
    "SessionId",
    "Phrase",
    // Storage (spec §10.2-§10.6).
    "WrongKey",
    "Corrupted",
    "NewerVersion",
    "MissingRecord",
    "RolledBack",
    "RecordRolledBack",
    "EmptyStore",
    "NotEmptyStore",
    "StoreFailed",
    "Busy",
    "RecordTooLarge",
    // Accounts, device lists, prekeys, linking.
    "NoAccountKey",
    "DeviceList",
    "PrekeyRecord",
    "Prekey",
    "Link",
    "LinkOutOfOrder",
    // Sessions (spec §8.6).
    "UnknownAccount",
    "AlreadyContact",
    "MissingPrekeys",
    "NoRecipients",
    "ContentTooLong",
    "ThisDeviceRevoked",
    "NotListed",
    "NotARecipient",
    "RevokedSender",
    "DeviceListOutdated",
    "UnknownSenderDevice",
    "SenderIdentityMismatch",
    "Misrouted",
    "Undecryptable",
    "Handshake",
    "Envelope",
    "Ratchet",
    "SessionState",
    "LimitExceeded",
];

/// An argument of the wrong type or out of range (thrown as a `TypeError`
/// when the type is wrong).
pub(crate) const INVALID_ARGUMENT: &str = "InvalidArgument";
/// An object that a call used up (a `LinkApproval` already approved).
pub(crate) const CONSUMED: &str = "Consumed";
/// A bug inside the library.
pub(crate) const INTERNAL: &str = "Internal";
/// An error of a kind this version does not name; the message says what.
const OTHER: &str = "Other";

/// Every error code, as `SessionRatchetError.code` spells it.
#[wasm_bindgen(js_name = errorCodes, unchecked_return_type = "ErrorCode[]")]
pub fn error_codes() -> Array {
    CODES.iter().map(|c| JsValue::from_str(c)).collect()
}

/// What a call throws, before it becomes a JavaScript `Error` (the
/// `Err` of every exported function; wasm-bindgen throws it).
#[derive(Debug)]
pub struct Error {
    code: &'static str,
    message: String,
    account: Option<[u8; 32]>,
    type_error: bool,
}

impl Error {
    pub(crate) fn new(code: &'static str, message: impl Into<String>) -> Self {
        debug_assert!(CODES.contains(&code));
        Self {
            code,
            message: message.into(),
            account: None,
            type_error: false,
        }
    }

    /// An argument of the wrong JavaScript type (a `TypeError`).
    pub(crate) fn wrong_type(what: &str, expected: &str) -> Self {
        Self {
            type_error: true,
            ..Self::new(
                INVALID_ARGUMENT,
                format!("argument `{what}` must be {expected}"),
            )
        }
    }

    /// An argument of the right type whose value is refused.
    pub(crate) fn invalid(what: &str, why: &str) -> Self {
        Self::new(INVALID_ARGUMENT, format!("argument `{what}` {why}"))
    }

    /// The stable code of the error's kind (`"NotARecipient"`, ...).
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The message (the crate's own, for errors of the core).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The JavaScript `Error` (or `TypeError`) with `code`, and `account`
    /// when the kind names one.
    pub fn to_js(&self) -> JsValue {
        let error: JsValue = if self.type_error {
            js_sys::TypeError::new(&self.message).into()
        } else {
            js_sys::Error::new(&self.message).into()
        };
        // Setting a property of a fresh Error object cannot fail.
        let _ = Reflect::set(
            &error,
            &JsValue::from_str("code"),
            &JsValue::from_str(self.code),
        );
        if let Some(a) = &self.account {
            let _ = Reflect::set(
                &error,
                &JsValue::from_str("account"),
                &Uint8Array::from(a.as_slice()).into(),
            );
        }
        error
    }
}

impl From<Error> for JsValue {
    fn from(e: Error) -> Self {
        e.to_js()
    }
}

impl From<ClientError> for Error {
    fn from(e: ClientError) -> Self {
        let (code, account) = match &e {
            ClientError::Sessions(s) => sessions_code(s),
            ClientError::Records(r) => (records_code(r), None),
            ClientError::Store(_) => ("StoreFailed", None),
            ClientError::Busy => ("Busy", None),
            ClientError::NoAccountKey => ("NoAccountKey", None),
            ClientError::DeviceList(_) => ("DeviceList", None),
            ClientError::PrekeyRecord(_) => ("PrekeyRecord", None),
            ClientError::Prekey(_) => ("Prekey", None),
            ClientError::Link(_) => ("Link", None),
            ClientError::Wire(_) => ("Malformed", None),
            ClientError::LinkOutOfOrder => ("LinkOutOfOrder", None),
            ClientError::Phrase(_) => ("Phrase", None),
            _ => (OTHER, None),
        };
        Self {
            account,
            ..Self::new(code, e.to_string())
        }
    }
}

impl From<SessionIdError> for Error {
    fn from(e: SessionIdError) -> Self {
        Self::new("SessionId", format!("Session ID: {e}"))
    }
}

fn records_code(e: &RecordError) -> &'static str {
    match e {
        RecordError::WrongKey => "WrongKey",
        RecordError::Corrupted { .. } => "Corrupted",
        RecordError::NewerVersion { .. } => "NewerVersion",
        RecordError::Missing { .. } => "MissingRecord",
        RecordError::RolledBack { .. } => "RolledBack",
        RecordError::RecordRolledBack { .. } => "RecordRolledBack",
        RecordError::TooLarge { .. } => "RecordTooLarge",
        RecordError::Empty => "EmptyStore",
        RecordError::NotEmpty => "NotEmptyStore",
        _ => OTHER,
    }
}

fn sessions_code(e: &SessionsError) -> (&'static str, Option<[u8; 32]>) {
    match e {
        SessionsError::UnknownAccount { account } => ("UnknownAccount", Some(*account)),
        SessionsError::AlreadyContact => ("AlreadyContact", None),
        SessionsError::MissingPrekeys { devices } => {
            ("MissingPrekeys", devices.first().map(|(a, _)| *a))
        }
        SessionsError::NoRecipients => ("NoRecipients", None),
        SessionsError::ContentTooLong { .. } => ("ContentTooLong", None),
        SessionsError::ThisDeviceRevoked => ("ThisDeviceRevoked", None),
        SessionsError::NotListed => ("NotListed", None),
        SessionsError::NotARecipient => ("NotARecipient", None),
        SessionsError::RevokedSender { account, .. } => ("RevokedSender", Some(*account)),
        SessionsError::DeviceListOutdated { account, .. } => ("DeviceListOutdated", Some(*account)),
        SessionsError::UnknownSenderDevice { account, .. } => {
            ("UnknownSenderDevice", Some(*account))
        }
        SessionsError::SenderIdentityMismatch { .. } => ("SenderIdentityMismatch", None),
        SessionsError::Misrouted => ("Misrouted", None),
        SessionsError::Undecryptable { account, .. } => ("Undecryptable", Some(*account)),
        SessionsError::Handshake { .. } => ("Handshake", None),
        SessionsError::Envelope(_) => ("Envelope", None),
        SessionsError::Wire(_) => ("Malformed", None),
        SessionsError::DeviceList(_) => ("DeviceList", None),
        SessionsError::PrekeyRecord(_) => ("PrekeyRecord", None),
        SessionsError::Prekey(_) => ("Prekey", None),
        SessionsError::Ratchet(_) => ("Ratchet", None),
        SessionsError::Storage(_) => ("SessionState", None),
        SessionsError::LimitExceeded => ("LimitExceeded", None),
        SessionsError::Internal => (INTERNAL, None),
        _ => (OTHER, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_identifiers() {
        // tests/typescript.test.mjs checks them against the ErrorCode union.
        let mut seen = std::collections::BTreeSet::new();
        for c in CODES {
            assert!(seen.insert(*c), "duplicate code {c}");
            assert!(c.chars().all(|ch| ch.is_ascii_alphanumeric()));
        }
    }

    #[test]
    fn client_errors_map_to_their_codes() {
        let e = Error::from(ClientError::Sessions(SessionsError::NotARecipient));
        assert_eq!(e.code(), "NotARecipient");
        let e = Error::from(ClientError::Records(RecordError::WrongKey));
        assert_eq!(e.code(), "WrongKey");
        let e = Error::from(ClientError::Sessions(SessionsError::UnknownAccount {
            account: [3; 32],
        }));
        assert_eq!((e.code(), e.account), ("UnknownAccount", Some([3; 32])));
        assert!(!e.message().is_empty());
    }
}
