//! # session-ratchet-wasm
//!
//! JavaScript and TypeScript bindings (wasm-bindgen) over
//! [`session_ratchet::client::Device`], the device object a client holds
//! (spec chapter 10): for a desktop client (Electron) or any other
//! JavaScript host with WebAssembly and `crypto.getRandomValues`.
//!
//! | module | owns |
//! |---|---|
//! | `error` | the thrown `Error`s: a stable `code` string per error kind, the crate's message |
//! | `js` | the boundary: argument checks (bytes, numbers, strings, device info), building result objects |
//! | `store` | record stores: `MemoryStore` (shareable) and a store over the client's own JavaScript database object |
//! | `device` | the `Device` class: create, restore, open, migrate, contacts, send, receive, heal, revoke, maintain, link |
//! | `link` | `LinkingDevice` (the new device) and `LinkApproval` (the existing one) |
//!
//! Every argument is taken as a plain JavaScript value and checked here, so
//! a call with a wrong type throws a `TypeError` with code
//! `"InvalidArgument"` instead of being coerced (a string where bytes are
//! expected would otherwise become zeros). The TypeScript declarations
//! still give each parameter its real type.
//!
//! No `unsafe` here (`forbid(unsafe_code)`, like the core): the JavaScript
//! stores a device holds stay on their thread through a thread-local table
//! (see `store`), so nothing needs an `unsafe impl Send`; the glue that
//! `#[wasm_bindgen]` generates is wasm-bindgen's own.
//!
//! Randomness is the host's (`crypto.getRandomValues`, through `getrandom`)
//! and the crate reads no clock: every call that needs the time takes `now`
//! in seconds since the Unix epoch.

#![forbid(unsafe_code)]

mod device;
mod error;
mod js;
mod link;
mod store;

pub use device::{Device, recovery_phrase};
pub use error::{Error, error_codes};
pub use link::{LinkApproval, LinkingDevice};
pub use store::MemoryStore;

use session_ratchet::rand_core::{CryptoRng, UnwrapErr};
use wasm_bindgen::prelude::wasm_bindgen;

/// The RNG every device draws from: the host's (on wasm32,
/// `crypto.getRandomValues`).
fn os_rng() -> Box<dyn CryptoRng + Send> {
    Box::new(UnwrapErr(getrandom::SysRng))
}

/// The version of this package (and of the core crate it was built with).
#[wasm_bindgen]
pub fn version() -> String {
    String::from(env!("CARGO_PKG_VERSION"))
}

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &'static str = r#"
/** The client's database, as a device sees it (spec §10.2). Both calls are synchronous. */
export interface RecordStore {
  /** The value last committed under `key`, or `undefined` (or `null`) if none. */
  get(key: Uint8Array): Uint8Array | undefined | null;
  /**
   * Applies `writes` atomically if the value under `head` equals
   * `expectedHead` (`undefined`: no value). Returns `true` if it committed,
   * `false` (writing nothing) if the head held something else. Across
   * processes the check and the writes must be one transaction (SQLite:
   * `BEGIN IMMEDIATE`, read, compare, write, `COMMIT`). Throwing is a store
   * failure: the device then reads the head to learn whether the commit
   * happened.
   */
  commit(head: Uint8Array, expectedHead: Uint8Array | undefined, writes: RecordWrite[]): boolean;
}

/** One write of a commit: a put (`value` set) or a delete (`value` absent). */
export interface RecordWrite {
  key: Uint8Array;
  value?: Uint8Array;
}

/** Where a device keeps its records: the client's database, or a `MemoryStore`. */
export type Store = RecordStore | MemoryStore;

/** A platform, by name or wire byte. */
export type Platform = "unspecified" | "android" | "ios" | "desktop" | "web" | number;

/** How a device describes itself in its account's device list (a string: the description alone). */
export interface DeviceInfo {
  /** A name the user recognises ("Work laptop"); at most 64 bytes are kept. */
  description: string;
  platform?: Platform;
  /** The client's version, `[major, minor, patch]`. */
  clientVersion?: [number, number, number];
}

/** Seconds since the Unix epoch (the crate reads no clock), or a generation. */
export type Time = number | bigint;

/** One envelope to post, and the accounts (32-byte keys) whose mailboxes it goes to. */
export interface OutgoingEnvelope {
  bytes: Uint8Array;
  mailboxes: Uint8Array[];
}

/** A decrypted envelope. */
export interface Received {
  /** The sending account's key (32 bytes). */
  sender: Uint8Array;
  /** The sending device's id (32 bytes). */
  senderDevice: Uint8Array;
  /** The account the message was addressed to: this one, or (a copy sent by another device of this account) the contact. */
  conversation: Uint8Array;
  /** `"message"`; `"heal"` for a healing notice (empty content; do not show it); `"other"` for a kind of a later version (do not show it). */
  kind: "message" | "heal" | "other";
  content: Uint8Array;
  /** The message started a new session. */
  newSession: boolean;
  /** The sender holds a newer device list of its own account: fetch it. */
  senderListNewer: boolean;
  /** The sender used an older list of this account than this device holds: make sure the newer one reaches it. */
  recipientListOutdated: boolean;
}

/** What `heal` produced: the envelopes to post (committed), and the accounts it could not heal. */
export interface Healed {
  envelopes: OutgoingEnvelope[];
  failed: { account: Uint8Array; error: SessionRatchetError }[];
}

/** What a device list update changed (device ids). */
export interface ListChange {
  added: Uint8Array[];
  removed: Uint8Array[];
}

/** One emoji of a short authentication string, with its English name. */
export interface SasEmoji {
  emoji: string;
  name: string;
}

/** What `createAccount` gives. */
export interface CreatedAccount {
  device: Device;
  /** The 16-byte recovery seed: show it once as `recoveryPhrase`, then drop it. */
  recoverySeed: Uint8Array;
  /** The 13-word recovery phrase of `recoverySeed`. */
  recoveryPhrase: string;
}

/** What `respondToLink` gives the existing device. */
export interface LinkResponse {
  /** Send it back to the new device. */
  response: Uint8Array;
  /** Show `approval.sas` and ask whether the new device shows the same emoji. */
  approval: LinkApproval;
}

/** What `approveLink` gives the existing device. */
export interface LinkApproved {
  /** The sealed payload for the new device. */
  payload: Uint8Array;
  /** The account's new device list: publish it. */
  deviceList: Uint8Array;
}

/** What `LinkingDevice.finish` gives the new device. */
export interface Linked {
  device: Device;
  /** Contacts of the approving device: fetch each one's device list and prekey record and `addContact` it. */
  contacts: Uint8Array[];
}

/** The stable code of each error kind. */
export type ErrorCode =
  | "InvalidArgument" | "Consumed" | "Internal" | "Other"
  | "Malformed" | "SessionId" | "Phrase"
  | "WrongKey" | "Corrupted" | "NewerVersion" | "MissingRecord" | "RolledBack" | "RecordRolledBack"
  | "EmptyStore" | "NotEmptyStore" | "StoreFailed" | "Busy" | "RecordTooLarge"
  | "NoAccountKey" | "DeviceList" | "PrekeyRecord" | "Prekey" | "Link" | "LinkOutOfOrder"
  | "UnknownAccount" | "AlreadyContact" | "MissingPrekeys" | "NoRecipients" | "ContentTooLong"
  | "ThisDeviceRevoked" | "NotListed" | "NotARecipient" | "RevokedSender" | "DeviceListOutdated"
  | "UnknownSenderDevice" | "SenderIdentityMismatch" | "Misrouted" | "Undecryptable" | "Handshake"
  | "Envelope" | "Ratchet" | "SessionState" | "LimitExceeded";

/**
 * What every call throws: an `Error` (a `TypeError` for an argument of the
 * wrong type) with a stable `code` and the crate's message. Kinds about an
 * account (`UnknownAccount`, `MissingPrekeys`, `RevokedSender`,
 * `DeviceListOutdated`, `UnknownSenderDevice`, `Undecryptable`) carry its key.
 */
export interface SessionRatchetError extends Error {
  code: ErrorCode;
  account?: Uint8Array;
}
"#;
