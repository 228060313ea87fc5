//! X25519 key agreement (RFC 7748; spec §3.1).
//!
//! This module owns X25519 public keys and the rule that every Diffie-Hellman
//! output is checked for contributory behaviour: an all-zero output (the peer
//! sent a low-order point) is rejected, never fed to a KDF.
#![deny(clippy::integer_division_remainder_used)]

use crate::secret::{SharedSecret, X25519Secret};
use core::fmt;
use x25519_dalek::{PublicKey, StaticSecret};

/// Length of an X25519 public or private key.
pub const X25519_KEY_LEN: usize = 32;

/// An X25519 public key (32 bytes, RFC 7748 encoding). Public data.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct X25519PublicKey(pub(crate) [u8; 32]);

impl X25519PublicKey {
    /// Wraps 32 bytes received from a peer. Any 32 bytes are a valid encoding;
    /// low-order points are caught when a Diffie-Hellman output is all zero.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The 32-byte encoding.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for X25519PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "X25519PublicKey(")?;
        crate::util::write_hex_prefix(f, &self.0)?;
        write!(f, ")")
    }
}

impl X25519Secret {
    /// The public key `X25519(sk, 9)`.
    pub(crate) fn public_key(&self) -> X25519PublicKey {
        // `StaticSecret` zeroizes its copy on drop (x25519-dalek `zeroize` feature).
        let sk = StaticSecret::from(*self.expose());
        X25519PublicKey(PublicKey::from(&sk).to_bytes())
    }

    /// `X25519(sk, peer)`, or `None` when the output is all zero (peer key of
    /// low order). The zero check is constant-time (x25519-dalek
    /// `was_contributory`), and only its verdict is branched on.
    pub(crate) fn diffie_hellman(&self, peer: &X25519PublicKey) -> Option<SharedSecret> {
        let sk = StaticSecret::from(*self.expose());
        let shared = sk.diffie_hellman(&PublicKey::from(peer.0));
        if !shared.was_contributory() {
            return None;
        }
        let mut bytes = shared.to_bytes();
        Some(SharedSecret::from_mut_array(&mut bytes))
    }
}
