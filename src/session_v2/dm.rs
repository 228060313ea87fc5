//! Session v2 direct messages (spec §9.8; facts §3).
//!
//! This module owns the 1-to-1 message format
//! `00 02 ‖ ki (2) ‖ E (32) ‖ ct (1088) ‖ XChaCha20-Poly1305(padded inner)`:
//!
//! - **PFS + PQ** (`encrypt_pfs`): ephemeral X25519 `e`, the 2-byte key
//!   indicator `ki = M[0..2] ⊕ BLAKE2b-2(E ‖ S, key = eS, pers = "Session-Msg-KISS")`,
//!   ML-KEM-768 to the recipient's account key `M`, the X-Wing combiner
//!   `SHA3-256(ss_m ‖ eX ‖ E ‖ X ‖ "\.//^\")`, then
//!   `SHAKE256("SessionV2MessageSS" ‖ ss)` → key (32) ‖ nonce (24).
//! - **Non-PFS fallback** (`encrypt_non_pfs`): `ss = SHA3-256(eR ‖ R ‖ E ‖
//!   "SessionV2NonPFS")`, `SHAKE256("SessionV2NonPFSSS" ‖ ss)`, with random
//!   `ki` and a random 1088-byte slot so it looks identical on the wire.
//!   Deployed code writes the same `00 02` prefix for it (the design text's
//!   `00 01` is never sent), and receivers tell the two apart by trying PFS
//!   keys first; this crate does the same.
//! - The inner plaintext is the bencoded dict `{"S": sender Ed25519 pk,
//!   "c": content, "~": sig[, "~P": pro sig]}` where `sig` is Ed25519 over
//!   `BLAKE2b-64(dict up to "~", key = recipient Session ID, pers =
//!   "SessionV2Message")`, null-padded so the message is `1536 + 256·N` bytes.
//!
//! Receiving never panics and has one error class per failure.
#![deny(clippy::integer_division_remainder_used)]

use super::account_keys::{KeyPair, PublicKeys};
use super::bencode::{self, BencodeError, Limits, Value};
use super::identity::{Identity, SessionId, ed25519_pk_to_x25519};
use super::primitives::{
    aead_decrypt, aead_encrypt, blake2b_2, blake2b_64, ed25519_verify, shake256_squeeze,
};
use crate::dh::X25519PublicKey;
use crate::kem::{MLKEM_CIPHERTEXT_LEN, MlKemCiphertext, encapsulate_deterministic};
use crate::secret::{SharedSecret, SymmetricKey, X25519Secret};
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::fmt;
use rand_core::CryptoRng;
use sha3::{Digest, Sha3_256};
use zeroize::{Zeroize, Zeroizing};

/// The two-byte prefix of a v2 direct message.
pub const V2_PREFIX: [u8; 2] = [0x00, 0x02];
/// The prefix the design text reserves for the non-PFS fallback; deployed code
/// never writes it and rejects it as an unknown version, as does this crate.
pub const V2_NON_PFS_RESERVED_PREFIX: [u8; 2] = [0x00, 0x01];
/// BLAKE2b personalisation of the key-indicator mask (KISS).
pub const KISS_PERS: &[u8; 16] = b"Session-Msg-KISS";
/// BLAKE2b personalisation of the inner signature pre-hash.
pub const MESSAGE_SIG_PERS: &[u8; 16] = b"SessionV2Message";
/// The X-Wing combiner label `\.//^\` (6 bytes).
pub const XWING_LABEL: &[u8; 6] = br"\.//^\";
/// SHAKE256 domain prefix of the PFS key/nonce derivation.
pub const PFS_SS_DOMAIN: &[u8] = b"SessionV2MessageSS";
/// Label of the non-PFS shared-secret hash.
pub const NON_PFS_LABEL: &[u8] = b"SessionV2NonPFS";
/// SHAKE256 domain prefix of the non-PFS key/nonce derivation.
pub const NON_PFS_SS_DOMAIN: &[u8] = b"SessionV2NonPFSSS";
/// Header: prefix (2) + ki (2) + E (32) + ML-KEM ciphertext (1088).
pub const HEADER_LEN: usize = 2 + 2 + 32 + MLKEM_CIPHERTEXT_LEN;
/// Header plus the Poly1305 tag: 1140 bytes.
pub const OVERHEAD: usize = HEADER_LEN + 16;
/// Smallest message: 1536 bytes (padded inner plaintext ≥ 396 bytes).
pub const MIN_MESSAGE_LEN: usize = 1536;
/// Messages are padded to a multiple of this.
pub const PADDING_MULTIPLE: usize = 256;
/// Largest message the swarm stores (76,800 bytes).
pub const MAX_MESSAGE_LEN: usize = 76_800;

/// What is wrong with the structure of a received message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FormatError {
    /// The message is empty.
    Empty,
    /// Shorter than the 1536-byte minimum.
    TooShort {
        /// Its length.
        len: usize,
    },
    /// The ephemeral key `E` is a low-order point (all-zero X25519 output).
    LowOrderEphemeral,
    /// The decrypted inner plaintext is not a strict bencoded dict.
    InnerBencode(BencodeError),
    /// The inner dict lacks `"S"`, `"c"` or `"~"`.
    MissingField(&'static str),
    /// An inner field has the wrong type or size.
    BadField(&'static str),
    /// `"S"` is not a valid Ed25519 public key (no Session ID derives from it).
    InvalidSenderKey,
}

/// Why sending or receiving a v2 direct message failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DmError {
    /// The first byte is not `00`: not a v2 message (a v1 protobuf envelope).
    NotV2,
    /// `00` followed by a version other than `02` (e.g. `00 03`, or the
    /// reserved `00 01`): from a newer client; it cannot be read.
    UnknownVersion {
        /// The second byte.
        version: u8,
    },
    /// Structurally malformed (see [`FormatError`]); the message is dropped.
    BadFormat(FormatError),
    /// At least one account key matched the indicator, but neither it nor
    /// the non-PFS fallback authenticated: tampered, or encrypted to another key.
    DecryptFailed,
    /// No current or retained account key matches the indicator and the
    /// non-PFS fallback failed: the key is unknown here (refresh the device
    /// group, or it was discarded after the 16-day retention).
    NoPfsKey,
    /// Decrypted, but the sender's signature over the inner dict is invalid.
    BadSignature,
    /// Sending: the content does not fit in a 76,800-byte message.
    ContentTooLarge {
        /// The content length.
        len: usize,
    },
    /// Sending: the recipient's X25519 key (Session ID or account key `X`) is
    /// a low-order point.
    InvalidRecipientKey,
}

impl fmt::Display for DmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotV2 => f.write_str("not a v2 direct message (first byte is not 00); try the v1 decoder"),
            Self::UnknownVersion { version } => write!(
                f,
                "unknown direct-message version 00 {version:02x}; the sender runs a newer client"
            ),
            Self::BadFormat(e) => write!(f, "malformed v2 direct message: {e:?}"),
            Self::DecryptFailed => f.write_str(
                "v2 direct message failed to decrypt with the matching account key and the fallback",
            ),
            Self::NoPfsKey => f.write_str(
                "no account key matches this v2 direct message; refresh the device group keys",
            ),
            Self::BadSignature => f.write_str("v2 direct message sender signature is invalid"),
            Self::ContentTooLarge { len } => write!(
                f,
                "content of {len} bytes does not fit in a {MAX_MESSAGE_LEN}-byte message"
            ),
            Self::InvalidRecipientKey => {
                f.write_str("recipient X25519 key is a low-order point; refetch the recipient's keys")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for DmError {}

/// A decrypted, verified v2 direct message. The content is wiped on drop;
/// `Debug` shows its length only; no `Clone`, so no unwiped copy is made
/// behind the caller's back.
pub struct ReceivedDm {
    /// The sender's Session ID (derived from `S`).
    pub sender: SessionId,
    /// The sender's Ed25519 public key `S`.
    pub sender_ed25519: [u8; 32],
    /// The content (an encoded `Content` protobuf in Session clients),
    /// wiped on drop.
    pub content: Zeroizing<Vec<u8>>,
    /// The Session Pro signature `"~P"`, extracted but not verified (its key is inside the content).
    pub pro_signature: Option<[u8; 64]>,
    /// `true` for PFS + PQ, `false` for the non-PFS fallback (show a weaker-security notice).
    pub pfs: bool,
}

impl fmt::Debug for ReceivedDm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReceivedDm")
            .field("sender", &self.sender)
            .field("content_len", &self.content.len())
            .field("pfs", &self.pfs)
            .finish_non_exhaustive()
    }
}

/// Encrypts `content` with PFS + PQ to the recipient's account keys.
///
/// `pro` is the Session Pro Ed25519 key to add the `"~P"` signature with, if any.
///
/// ```
/// use session_ratchet::secret::AccountKeySeed;
/// use session_ratchet::session_v2::{account_keys::account_key_pair, dm, identity::Identity};
/// # use rand_chacha::{ChaCha20Rng, rand_core::SeedableRng};
/// let mut rng = ChaCha20Rng::from_seed([5; 32]);
/// let alice = Identity::from_seed_bytes(&[1u8; 16]).unwrap();
/// let bob = Identity::from_seed_bytes(&[2u8; 16]).unwrap();
/// let bob_keys = account_key_pair(&AccountKeySeed::from_bytes([3; 32]));
/// let msg = dm::encrypt_pfs(&mut rng, &alice, &bob.session_id(), &bob_keys.public_keys(), b"hi", None)?;
/// assert_eq!(msg.len(), 1536);
/// let got = dm::receive(&bob, &[&bob_keys], &msg)?;
/// assert_eq!((got.content.as_slice(), got.sender, got.pfs), (&b"hi"[..], alice.session_id(), true));
/// # Ok::<(), dm::DmError>(())
/// ```
pub fn encrypt_pfs<R: CryptoRng + ?Sized>(
    rng: &mut R,
    sender: &Identity,
    recipient: &SessionId,
    keys: &PublicKeys,
    content: &[u8],
    pro: Option<&Identity>,
) -> Result<Vec<u8>, DmError> {
    check_content_len(content.len(), pro.is_some())?;
    draft_pfs(rng, recipient, keys)?.seal(sender, recipient, content, pro)
}

/// A PFS + PQ message whose randomness is drawn and keys derived, but whose
/// content is not sealed yet: its public KEM values (`E`, `ct`) are known
/// before the content is chosen (the upgrade path binds them, spec §9.11).
pub(crate) struct PfsDraft {
    ki: [u8; 2],
    big_e: X25519PublicKey,
    ct: MlKemCiphertext,
    key: SymmetricKey,
    nonce: [u8; 24],
}

impl PfsDraft {
    /// The ephemeral X25519 public key `E`.
    pub(crate) fn ephemeral(&self) -> &X25519PublicKey {
        &self.big_e
    }

    /// The ML-KEM-768 ciphertext `ct`.
    pub(crate) fn ciphertext(&self) -> &MlKemCiphertext {
        &self.ct
    }

    /// Seals `content` (steps 6 and 7 of §9.8 sending).
    pub(crate) fn seal(
        self,
        sender: &Identity,
        recipient: &SessionId,
        content: &[u8],
        pro: Option<&Identity>,
    ) -> Result<Vec<u8>, DmError> {
        check_content_len(content.len(), pro.is_some())?;
        seal(
            &self.ki,
            &self.big_e,
            self.ct.as_bytes(),
            self.key.expose(),
            &self.nonce,
            sender,
            recipient,
            content,
            pro,
        )
    }
}

/// Steps 1–5 of §9.8 PFS sending: draws `e` (32) then `m` (32).
pub(crate) fn draft_pfs<R: CryptoRng + ?Sized>(
    rng: &mut R,
    recipient: &SessionId,
    keys: &PublicKeys,
) -> Result<PfsDraft, DmError> {
    let e = X25519Secret::random(rng);
    let big_e = e.public_key();
    let s = recipient.x25519();
    let kiss = kiss(&e, &s, &big_e, &s).ok_or(DmError::InvalidRecipientKey)?;
    let m = keys.mlkem.as_bytes();
    let ki = [m[0] ^ kiss[0], m[1] ^ kiss[1]];
    let mut coins = [0u8; 32];
    rng.fill_bytes(&mut coins);
    let encaps = encapsulate_deterministic(&keys.mlkem, &coins);
    coins.zeroize();
    let (ct, ss_m) = encaps.map_err(|_| DmError::InvalidRecipientKey)?;
    let ss_x = e
        .diffie_hellman(&keys.x25519)
        .ok_or(DmError::InvalidRecipientKey)?;
    let (mut key, nonce) = pfs_key_nonce(&ss_m, &ss_x, &big_e, &keys.x25519);
    Ok(PfsDraft {
        ki,
        big_e,
        ct,
        key: SymmetricKey::from_mut_array(&mut key),
        nonce,
    })
}

/// Encrypts `content` with the non-PFS fallback (recipient has no usable
/// account keys), to the recipient's long-term X25519 key.
pub fn encrypt_non_pfs<R: CryptoRng + ?Sized>(
    rng: &mut R,
    sender: &Identity,
    recipient: &SessionId,
    content: &[u8],
    pro: Option<&Identity>,
) -> Result<Vec<u8>, DmError> {
    check_content_len(content.len(), pro.is_some())?;
    let e = X25519Secret::random(rng);
    let big_e = e.public_key();
    let mut ki = [0u8; 2];
    rng.fill_bytes(&mut ki);
    let mut slot = alloc::vec![0u8; MLKEM_CIPHERTEXT_LEN];
    rng.fill_bytes(&mut slot);
    let r = recipient.x25519();
    let ss = e.diffie_hellman(&r).ok_or(DmError::InvalidRecipientKey)?;
    let (key, nonce) = non_pfs_key_nonce(&ss, &r, &big_e);
    seal(
        &ki, &big_e, &slot, &key, &nonce, sender, recipient, content, pro,
    )
}

/// The 2-byte key indicator of `message` as the recipient sees it: the first
/// two bytes of the ML-KEM key the sender used (or noise for a fallback message).
pub fn key_indicator(recipient: &Identity, message: &[u8]) -> Result<[u8; 2], DmError> {
    let (ki, big_e) = parse_header(message)?;
    let own = recipient.x25519_public();
    let mask = kiss(recipient.x25519_secret(), &big_e, &big_e, own)
        .ok_or(DmError::BadFormat(FormatError::LowOrderEphemeral))?;
    Ok([ki[0] ^ mask[0], ki[1] ^ mask[1]])
}

/// Decrypts with one account key pair (PFS + PQ). [`DmError::DecryptFailed`]
/// when this key does not open it.
pub fn decrypt_pfs(
    recipient: &Identity,
    keys: &KeyPair,
    message: &[u8],
) -> Result<ReceivedDm, DmError> {
    let (_, big_e) = parse_header(message)?;
    let ct_bytes =
        message
            .get(36..HEADER_LEN)
            .ok_or(DmError::BadFormat(FormatError::TooShort {
                len: message.len(),
            }))?;
    let ct = MlKemCiphertext::from_bytes(ct_bytes)
        .map_err(|_| DmError::BadFormat(FormatError::TooShort { len: message.len() }))?;
    let ss_m = keys.mlkem().decapsulate(&ct);
    let ss_x = keys
        .x25519_secret()
        .diffie_hellman(&big_e)
        .ok_or(DmError::BadFormat(FormatError::LowOrderEphemeral))?;
    let (key, nonce) = pfs_key_nonce(&ss_m, &ss_x, &big_e, keys.x25519_public());
    open(recipient, &key, &nonce, message, true)
}

/// Decrypts with the non-PFS fallback (the recipient's long-term key).
pub fn decrypt_non_pfs(recipient: &Identity, message: &[u8]) -> Result<ReceivedDm, DmError> {
    let (_, big_e) = parse_header(message)?;
    let ss = recipient
        .x25519_secret()
        .diffie_hellman(&big_e)
        .ok_or(DmError::BadFormat(FormatError::LowOrderEphemeral))?;
    let (key, nonce) = non_pfs_key_nonce(&ss, recipient.x25519_public(), &big_e);
    open(recipient, &key, &nonce, message, false)
}

/// Receives a v2 direct message the way deployed clients do: every account
/// key (current and retained) whose ML-KEM key starts with the indicator is
/// tried in turn — a hint collision costs a trial, never a failure — and only
/// if none opens it, the non-PFS fallback. A structural or signature error
/// after a successful decryption is final (no further keys are tried).
pub fn receive(
    recipient: &Identity,
    account_keys: &[&KeyPair],
    message: &[u8],
) -> Result<ReceivedDm, DmError> {
    let ki = key_indicator(recipient, message)?;
    let mut matched = false;
    for keys in account_keys {
        let m = keys.mlkem_public().as_bytes();
        if m[..2] != ki {
            continue;
        }
        matched = true;
        match decrypt_pfs(recipient, keys, message) {
            Err(DmError::DecryptFailed) => continue,
            other => return other,
        }
    }
    match decrypt_non_pfs(recipient, message) {
        Err(DmError::DecryptFailed) if matched => Err(DmError::DecryptFailed),
        Err(DmError::DecryptFailed) => Err(DmError::NoPfsKey),
        other => other,
    }
}

fn check_content_len(len: usize, with_pro: bool) -> Result<(), DmError> {
    // Inner dict overhead: "d" "1:S" "32:…" "1:c" "<n>:" "1:~" "64:…" ["2:~P" "64:…"] "e".
    let inner = inner_len(len, with_pro).ok_or(DmError::ContentTooLarge { len })?;
    if inner.saturating_add(OVERHEAD) > MAX_MESSAGE_LEN {
        return Err(DmError::ContentTooLarge { len });
    }
    Ok(())
}

fn inner_len(content_len: usize, with_pro: bool) -> Option<usize> {
    let digits = decimal_digits(content_len);
    let base = 2 + (3 + 35) + (3 + digits + 1) + (3 + 67) + if with_pro { 4 + 67 } else { 0 };
    base.checked_add(content_len)
}

fn decimal_digits(n: usize) -> usize {
    let mut digits = 1;
    let mut power: usize = 10;
    while n >= power {
        digits += 1;
        match power.checked_mul(10) {
            Some(p) => power = p,
            None => break,
        }
    }
    digits
}

/// `BLAKE2b-2(E ‖ S, key = X25519(secret, peer), pers = KISS)`.
fn kiss(
    secret: &X25519Secret,
    peer: &X25519PublicKey,
    big_e: &X25519PublicKey,
    s: &X25519PublicKey,
) -> Option<[u8; 2]> {
    let shared = secret.diffie_hellman(peer)?;
    Some(blake2b_2(
        Some(shared.expose()),
        KISS_PERS,
        &[big_e.as_bytes(), s.as_bytes()],
    ))
}

/// `ss = SHA3-256(parts…)`, then `key ‖ nonce = SHAKE256(domain ‖ ss)` (facts §3 steps 4–5).
fn derive_key_nonce(domain: &[u8], parts: &[&[u8]]) -> ([u8; 32], [u8; 24]) {
    let mut h = Sha3_256::new();
    for p in parts {
        h.update(p);
    }
    let mut ss: [u8; 32] = h.finalize().into();
    let mut key = [0u8; 32];
    let mut nonce = [0u8; 24];
    shake256_squeeze(domain, &ss, &mut [&mut key, &mut nonce]);
    ss.zeroize();
    (key, nonce)
}

/// PFS path: the X-Wing combiner `SHA3-256(ss_M ‖ ss_X ‖ E ‖ X ‖ label)`.
fn pfs_key_nonce(
    ss_m: &SharedSecret,
    ss_x: &SharedSecret,
    big_e: &X25519PublicKey,
    x: &X25519PublicKey,
) -> ([u8; 32], [u8; 24]) {
    derive_key_nonce(
        PFS_SS_DOMAIN,
        &[
            ss_m.expose(),
            ss_x.expose(),
            big_e.as_bytes(),
            x.as_bytes(),
            XWING_LABEL,
        ],
    )
}

/// Non-PFS fallback: `SHA3-256(X25519(e, R) ‖ R ‖ E ‖ label)`.
fn non_pfs_key_nonce(
    ss_r: &SharedSecret,
    r: &X25519PublicKey,
    big_e: &X25519PublicKey,
) -> ([u8; 32], [u8; 24]) {
    derive_key_nonce(
        NON_PFS_SS_DOMAIN,
        &[ss_r.expose(), r.as_bytes(), big_e.as_bytes(), NON_PFS_LABEL],
    )
}

/// The signed inner dict (unpadded).
fn inner_plaintext(
    sender: &Identity,
    recipient: &SessionId,
    content: &[u8],
    pro: Option<&Identity>,
) -> Vec<u8> {
    let mut d = BTreeMap::new();
    d.insert(
        b"S".to_vec(),
        Value::Bytes(sender.ed25519_public().to_vec()),
    );
    d.insert(b"c".to_vec(), Value::Bytes(content.to_vec()));
    let mut out = bencode::dict_body(&d);
    if let Some(Value::Bytes(c)) = d.get_mut(&b"c"[..]) {
        c.zeroize();
    }
    let h = blake2b_64(Some(recipient.as_bytes()), MESSAGE_SIG_PERS, &[&out]);
    let sig = sender.sign(&h);
    bencode::write_bytes(b"~", &mut out);
    bencode::write_bytes(&sig, &mut out);
    if let Some(pro) = pro {
        let pro_sig = pro.sign(&out);
        bencode::write_bytes(b"~P", &mut out);
        bencode::write_bytes(&pro_sig, &mut out);
    }
    out.push(b'e');
    out
}

#[allow(clippy::too_many_arguments)]
fn seal(
    ki: &[u8; 2],
    big_e: &X25519PublicKey,
    slot: &[u8],
    key: &[u8; 32],
    nonce: &[u8; 24],
    sender: &Identity,
    recipient: &SessionId,
    content: &[u8],
    pro: Option<&Identity>,
) -> Result<Vec<u8>, DmError> {
    let mut inner = inner_plaintext(sender, recipient, content, pro);
    let needed = OVERHEAD.saturating_add(inner.len()).max(MIN_MESSAGE_LEN);
    let final_len = needed
        .div_ceil(PADDING_MULTIPLE)
        .saturating_mul(PADDING_MULTIPLE);
    if final_len > MAX_MESSAGE_LEN {
        inner.zeroize();
        return Err(DmError::ContentTooLarge { len: content.len() });
    }
    crate::secret::resize_wiping(&mut inner, final_len - OVERHEAD, 0);
    let sealed =
        aead_encrypt(key, nonce, inner).ok_or(DmError::ContentTooLarge { len: content.len() })?;
    let mut out = Vec::with_capacity(final_len);
    out.extend_from_slice(&V2_PREFIX);
    out.extend_from_slice(ki);
    out.extend_from_slice(big_e.as_bytes());
    out.extend_from_slice(slot);
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// Checks prefix and size; returns `(ki, E)`.
fn parse_header(message: &[u8]) -> Result<([u8; 2], X25519PublicKey), DmError> {
    match message {
        [] => return Err(DmError::BadFormat(FormatError::Empty)),
        [0x00] => return Err(DmError::BadFormat(FormatError::TooShort { len: 1 })),
        [0x00, 0x02, ..] => {}
        [0x00, v, ..] => return Err(DmError::UnknownVersion { version: *v }),
        _ => return Err(DmError::NotV2),
    }
    if message.len() < MIN_MESSAGE_LEN {
        return Err(DmError::BadFormat(FormatError::TooShort {
            len: message.len(),
        }));
    }
    let too_short = DmError::BadFormat(FormatError::TooShort { len: message.len() });
    let ki: [u8; 2] = message
        .get(2..4)
        .and_then(|s| s.try_into().ok())
        .ok_or(too_short)?;
    let e: [u8; 32] = message
        .get(4..36)
        .and_then(|s| s.try_into().ok())
        .ok_or(too_short)?;
    Ok((ki, X25519PublicKey::from_bytes(e)))
}

/// AEAD-opens the body and verifies the inner dict.
fn open(
    recipient: &Identity,
    key: &[u8; 32],
    nonce: &[u8; 24],
    message: &[u8],
    pfs: bool,
) -> Result<ReceivedDm, DmError> {
    let body = message
        .get(HEADER_LEN..)
        .ok_or(DmError::BadFormat(FormatError::TooShort {
            len: message.len(),
        }))?;
    let mut plain = aead_decrypt(key, nonce, body).ok_or(DmError::DecryptFailed)?;
    let result = parse_inner(recipient, &plain, pfs);
    plain.zeroize();
    result
}

fn parse_inner(recipient: &Identity, plain: &[u8], pfs: bool) -> Result<ReceivedDm, DmError> {
    let end = plain.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    let dict = plain.get(..end).unwrap_or_default();
    let entries = bencode::decode_dict_entries(
        dict,
        Limits {
            max_depth: 32,
            max_len: dict.len(),
        },
    )
    .map_err(|e| DmError::BadFormat(FormatError::InnerBencode(e)))?;
    let find = |k: &'static str| entries.iter().find(|e| e.key == k.as_bytes());
    let missing = |k| DmError::BadFormat(FormatError::MissingField(k));
    let bad = |k| DmError::BadFormat(FormatError::BadField(k));
    let s: [u8; 32] = find("S")
        .ok_or(missing("S"))?
        .value
        .as_bytes()
        .and_then(|b| b.try_into().ok())
        .ok_or(bad("S"))?;
    let content = find("c")
        .ok_or(missing("c"))?
        .value
        .as_bytes()
        .ok_or(bad("c"))?;
    let sig_entry = find("~").ok_or(missing("~"))?;
    let sig: [u8; 64] = sig_entry
        .value
        .as_bytes()
        .and_then(|b| b.try_into().ok())
        .ok_or(bad("~"))?;
    let pro_signature = match find("~P") {
        None => None,
        Some(p) => Some(
            p.value
                .as_bytes()
                .and_then(|b| <[u8; 64]>::try_from(b).ok())
                .ok_or(bad("~P"))?,
        ),
    };
    let signed = dict.get(..sig_entry.offset).ok_or(missing("~"))?;
    let sender_x =
        ed25519_pk_to_x25519(&s).ok_or(DmError::BadFormat(FormatError::InvalidSenderKey))?;
    let h = blake2b_64(
        Some(recipient.session_id().as_bytes()),
        MESSAGE_SIG_PERS,
        &[signed],
    );
    if !ed25519_verify(&s, &h, &sig) {
        return Err(DmError::BadSignature);
    }
    Ok(ReceivedDm {
        sender: SessionId::from_x25519(&sender_x),
        sender_ed25519: s,
        content: Zeroizing::new(content.to_vec()),
        pro_signature,
        pfs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;

    #[test]
    fn received_dm_debug_shows_no_content() {
        use crate::secret::AccountKeySeed;
        use rand_chacha::ChaCha20Rng;
        use rand_core::SeedableRng;
        let mut rng = ChaCha20Rng::from_seed([5; 32]);
        let alice = Identity::from_seed_bytes(&[1u8; 16]).unwrap();
        let bob = Identity::from_seed_bytes(&[2u8; 16]).unwrap();
        let keys =
            super::super::account_keys::account_key_pair(&AccountKeySeed::from_bytes([3; 32]));
        let secret = b"the content nobody may log";
        let msg = encrypt_pfs(
            &mut rng,
            &alice,
            &bob.session_id(),
            &keys.public_keys(),
            secret,
            None,
        )
        .unwrap();
        let got = receive(&bob, &[&keys], &msg).unwrap();
        let shown = format!("{got:?}");
        assert!(!shown.contains("content nobody"), "{shown}");
        assert!(!shown.contains(&format!("{:?}", &secret[..8])), "{shown}");
        assert!(shown.contains("content_len: 26"), "{shown}");
    }

    #[test]
    fn inner_len_matches_encoding() {
        let id = Identity::from_seed_bytes(&[4u8; 16]).unwrap();
        let sid = id.session_id();
        for n in [0usize, 1, 9, 10, 99, 100, 1000, 12345] {
            let content = alloc::vec![7u8; n];
            assert_eq!(
                Some(inner_plaintext(&id, &sid, &content, None).len()),
                inner_len(n, false)
            );
            assert_eq!(
                Some(inner_plaintext(&id, &sid, &content, Some(&id)).len()),
                inner_len(n, true)
            );
        }
    }

    #[test]
    fn decimal_digits_counts() {
        for (n, d) in [
            (0, 1),
            (9, 1),
            (10, 2),
            (99, 2),
            (100, 3),
            (76_800, 5),
            (usize::MAX, 20),
        ] {
            assert_eq!(decimal_digits(n), d, "{n}");
        }
    }
}
