//! Device and account identities (spec §4.1, §4.2).
//!
//! This module owns long-term identity keys:
//!
//! - a **device identity** is an Ed25519 signing key plus an X25519 key
//!   agreement key, generated at random on the device. It is never derived
//!   from an account secret, so whoever holds the account's recovery seed
//!   still cannot impersonate an existing device;
//! - an **account identity** is an Ed25519 key from a 32-byte seed (Session
//!   accounts use their 16-byte recovery seed followed by 16 zero bytes). It
//!   signs **device certificates** binding a device's identity keys to the
//!   account; the signed, versioned device list builds on these.

use crate::dh::X25519PublicKey;
use crate::kdf::label;
use crate::secret::{Ed25519Seed, X25519Secret};
use crate::wire::{self, Reader, WireError, Writer, message_type};
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rand_core::CryptoRng;

/// Length of an Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;

/// Type tag of a device certificate's signature input (spec §6.4).
const CERTIFICATE_TYPE_TAG: u8 = 0x10;

/// Errors about identity keys and the signatures they make.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdentityError {
    /// The bytes are not a valid Ed25519 public key (no curve point, or a
    /// small-order point that would accept forged signatures).
    InvalidEd25519Key,
    /// A signature did not verify under the claimed key.
    InvalidSignature,
}

impl fmt::Display for IdentityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidEd25519Key => f.write_str("not a valid Ed25519 public key"),
            Self::InvalidSignature => f.write_str(
                "signature does not verify: the data was altered or signed by another key",
            ),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for IdentityError {}

/// A validated Ed25519 public key: decodes to a point that is not of small order.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Ed25519PublicKey(VerifyingKey);

impl Ed25519PublicKey {
    /// Parses and validates a 32-byte Ed25519 public key.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, IdentityError> {
        let key = VerifyingKey::from_bytes(bytes).map_err(|_| IdentityError::InvalidEd25519Key)?;
        // RFC 8032 §5.1.3 decoding rejects y ≥ p; curve25519-dalek reduces
        // such encodings silently, so require the canonical re-encoding.
        // Public data: a plain comparison is fine.
        if key.is_weak() || key.to_edwards().compress().to_bytes() != *bytes {
            return Err(IdentityError::InvalidEd25519Key);
        }
        Ok(Self(key))
    }

    /// The 32-byte encoding.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// Strict verification (RFC 8032 with the cofactorless check and
    /// rejection of non-canonical `R` and small-order keys).
    pub fn verify(
        &self,
        message: &[u8],
        signature: &[u8; SIGNATURE_LEN],
    ) -> Result<(), IdentityError> {
        self.0
            .verify_strict(message, &Signature::from_bytes(signature))
            .map_err(|_| IdentityError::InvalidSignature)
    }
}

impl fmt::Debug for Ed25519PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Ed25519PublicKey(")?;
        crate::util::write_hex_prefix(f, self.0.as_bytes())?;
        f.write_str(")")
    }
}

/// The public half of a device identity: what peers pin and what bundles carry.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct DevicePublicIdentity {
    signing_key: Ed25519PublicKey,
    dh_key: X25519PublicKey,
}

impl DevicePublicIdentity {
    /// Builds a public identity from its two keys.
    pub fn new(signing_key: Ed25519PublicKey, dh_key: X25519PublicKey) -> Self {
        Self {
            signing_key,
            dh_key,
        }
    }

    /// The device's Ed25519 signing key.
    pub fn signing_key(&self) -> &Ed25519PublicKey {
        &self.signing_key
    }

    /// The device's X25519 identity key.
    pub fn dh_key(&self) -> &X25519PublicKey {
        &self.dh_key
    }

    /// `signing_key || dh_key`, 64 bytes (spec §4.1).
    pub fn to_bytes(&self) -> [u8; 64] {
        let mut out = [0u8; 64];
        out[..32].copy_from_slice(&self.signing_key.to_bytes());
        out[32..].copy_from_slice(self.dh_key.as_bytes());
        out
    }

    pub(crate) fn read(r: &mut Reader<'_>, field: &'static str) -> Result<Self, WireError> {
        let sig = r.array::<32>(field)?;
        let dh = r.array::<32>(field)?;
        let signing_key = Ed25519PublicKey::from_bytes(&sig)
            .map_err(|_| WireError::InvalidEd25519Key { field })?;
        Ok(Self {
            signing_key,
            dh_key: X25519PublicKey(dh),
        })
    }
}

/// A device's long-term identity: Ed25519 signing key and X25519 identity key.
pub struct DeviceIdentity {
    // `SigningKey` zeroizes itself on drop (ed25519-dalek `zeroize` feature);
    // boxed so moves leave no copy behind.
    signing: Box<SigningKey>,
    dh: X25519Secret,
    public: DevicePublicIdentity,
}

impl DeviceIdentity {
    /// A fresh device identity from `rng`.
    ///
    /// ```
    /// use session_ratchet::identity::DeviceIdentity;
    /// # use rand_chacha::{ChaCha20Rng, rand_core::SeedableRng};
    /// let mut rng = ChaCha20Rng::from_seed([0; 32]);
    /// let phone = DeviceIdentity::generate(&mut rng);
    /// assert_eq!(phone.public().to_bytes().len(), 64);
    /// ```
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let seed = Ed25519Seed::random(rng);
        let signing = Box::new(SigningKey::from_bytes(seed.expose()));
        let dh = X25519Secret::random(rng);
        let public = DevicePublicIdentity {
            signing_key: Ed25519PublicKey(signing.verifying_key()),
            dh_key: dh.public_key(),
        };
        Self {
            signing,
            dh,
            public,
        }
    }

    /// The public identity.
    pub fn public(&self) -> &DevicePublicIdentity {
        &self.public
    }

    pub(crate) fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        self.signing.sign(message).to_bytes()
    }

    pub(crate) fn dh_secret(&self) -> &X25519Secret {
        &self.dh
    }

    /// The two secrets, for stored device state (spec §8.9): the Ed25519
    /// seed and the X25519 secret.
    pub(crate) fn secret_parts(&self) -> (Ed25519Seed, X25519Secret) {
        (
            Ed25519Seed::from_slice_array(&self.signing.to_bytes()),
            self.dh.duplicate(),
        )
    }

    /// Rebuilds an identity from [`DeviceIdentity::secret_parts`].
    pub(crate) fn from_secret_parts(seed: &Ed25519Seed, dh: X25519Secret) -> Self {
        let signing = Box::new(SigningKey::from_bytes(seed.expose()));
        let public = DevicePublicIdentity {
            signing_key: Ed25519PublicKey(signing.verifying_key()),
            dh_key: dh.public_key(),
        };
        Self {
            signing,
            dh,
            public,
        }
    }
}

impl fmt::Debug for DeviceIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceIdentity")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

/// An account's Ed25519 identity, which certifies its devices.
pub struct AccountIdentity {
    signing: Box<SigningKey>,
}

impl AccountIdentity {
    /// The account key of a 32-byte Ed25519 seed (RFC 8032 key generation).
    /// A Session recovery seed `s` (16 bytes) gives the seed `s || 0^16`.
    pub fn from_seed(seed: &Ed25519Seed) -> Self {
        Self {
            signing: Box::new(SigningKey::from_bytes(seed.expose())),
        }
    }

    /// A fresh account key from `rng`.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        Self::from_seed(&Ed25519Seed::random(rng))
    }

    /// The account's public key.
    pub fn public_key(&self) -> Ed25519PublicKey {
        Ed25519PublicKey(self.signing.verifying_key())
    }

    /// A copy of the 32-byte seed, for handing the account key to a newly
    /// linked device (spec §8.5.6).
    pub(crate) fn seed(&self) -> Ed25519Seed {
        let mut seed = self.signing.to_bytes();
        Ed25519Seed::from_mut_array(&mut seed)
    }

    /// Plain Ed25519 signature with the account key (callers build a
    /// labelled `signature_input` first, spec §6.4).
    pub(crate) fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        self.signing.sign(message).to_bytes()
    }

    /// Signs a certificate binding `device` to this account (spec §4.2).
    ///
    /// ```
    /// use session_ratchet::identity::{AccountIdentity, DeviceIdentity, DeviceCertificate};
    /// # use rand_chacha::{ChaCha20Rng, rand_core::SeedableRng};
    /// let mut rng = ChaCha20Rng::from_seed([0; 32]);
    /// let account = AccountIdentity::generate(&mut rng);
    /// let laptop = DeviceIdentity::generate(&mut rng);
    /// let cert = account.certify(laptop.public());
    /// let parsed = DeviceCertificate::from_bytes(&cert.to_bytes())?;
    /// assert_eq!(parsed.verify()?, laptop.public());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn certify(&self, device: &DevicePublicIdentity) -> DeviceCertificate {
        let account = self.public_key();
        let msg = certificate_signature_input(&account, device);
        DeviceCertificate {
            account,
            device: *device,
            signature: self.signing.sign(&msg).to_bytes(),
        }
    }
}

impl fmt::Debug for AccountIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccountIdentity")
            .field("public", &self.public_key())
            .finish_non_exhaustive()
    }
}

fn certificate_signature_input(
    account: &Ed25519PublicKey,
    device: &DevicePublicIdentity,
) -> Vec<u8> {
    wire::signature_input(
        label::DEVICE_CERTIFICATE,
        CERTIFICATE_TYPE_TAG,
        &[
            &account.to_bytes(),
            &device.signing_key.to_bytes(),
            device.dh_key.as_bytes(),
        ],
    )
}

/// An account's signature over one device's identity keys (spec §4.2).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct DeviceCertificate {
    account: Ed25519PublicKey,
    device: DevicePublicIdentity,
    signature: [u8; SIGNATURE_LEN],
}

impl DeviceCertificate {
    /// Encoded length: version, type, account key, device identity, signature.
    pub const ENCODED_LEN: usize = 2 + 32 + 64 + SIGNATURE_LEN;

    /// The certifying account key.
    pub fn account(&self) -> &Ed25519PublicKey {
        &self.account
    }

    /// Checks the signature; on success returns the certified device identity.
    pub fn verify(&self) -> Result<&DevicePublicIdentity, IdentityError> {
        let msg = certificate_signature_input(&self.account, &self.device);
        self.account.verify(&msg, &self.signature)?;
        Ok(&self.device)
    }

    /// Canonical encoding (spec §4.2).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::start(message_type::DEVICE_CERTIFICATE, Self::ENCODED_LEN);
        w.bytes(&self.account.to_bytes())
            .bytes(&self.device.to_bytes())
            .bytes(&self.signature);
        w.finish()
    }

    /// Decodes (does not verify: call [`DeviceCertificate::verify`]).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::start(bytes, message_type::DEVICE_CERTIFICATE)?;
        let account = r.array::<32>("account key")?;
        let account =
            Ed25519PublicKey::from_bytes(&account).map_err(|_| WireError::InvalidEd25519Key {
                field: "account key",
            })?;
        let device = DevicePublicIdentity::read(&mut r, "device identity")?;
        let signature = r.array::<SIGNATURE_LEN>("signature")?;
        r.finish()?;
        Ok(Self {
            account,
            device,
            signature,
        })
    }
}

/// Object type of a stored device identity (storage only, spec §10.3).
const TYPE_STORED_IDENTITY: u8 = 0x1B;

/// The persistent form of a [`DeviceIdentity`] (spec §10.3):
/// `0x01 ‖ 0x1B ‖ Ed25519 seed (32) ‖ X25519 secret (32)`. Both secrets of
/// the device: zeroized on drop, redacted `Debug`, no `Clone`, no `==`.
///
/// ```
/// use session_ratchet::identity::{DeviceIdentity, StoredIdentity};
/// # use rand_chacha::{ChaCha20Rng, rand_core::SeedableRng};
/// let phone = DeviceIdentity::generate(&mut ChaCha20Rng::from_seed([3; 32]));
/// let stored = phone.to_stored();
/// let back = DeviceIdentity::from_stored(&StoredIdentity::from_bytes(stored.as_bytes()))?;
/// assert_eq!(back.public(), phone.public());
/// # Ok::<(), session_ratchet::wire::WireError>(())
/// ```
pub struct StoredIdentity(zeroize::Zeroizing<Vec<u8>>);

impl fmt::Debug for StoredIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StoredIdentity(<redacted>)")
    }
}

impl StoredIdentity {
    /// The plain encoding. Treat it as a secret.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Wraps a plain encoding read back from storage (checked when loaded).
    pub fn from_bytes(bytes: &[u8]) -> Self {
        Self(zeroize::Zeroizing::new(bytes.to_vec()))
    }
}

impl DeviceIdentity {
    /// The persistent form of this identity (spec §10.3).
    pub fn to_stored(&self) -> StoredIdentity {
        let (seed, dh) = self.secret_parts();
        let mut w = Writer::start(TYPE_STORED_IDENTITY, 2 + 64);
        w.bytes(seed.expose());
        w.bytes(dh.expose());
        StoredIdentity(zeroize::Zeroizing::new(w.finish()))
    }

    /// Loads an identity stored by [`DeviceIdentity::to_stored`].
    pub fn from_stored(stored: &StoredIdentity) -> Result<Self, WireError> {
        let mut r = Reader::start(&stored.0, TYPE_STORED_IDENTITY)?;
        let seed = Ed25519Seed::from_slice_array(&zeroize::Zeroizing::new(
            r.array::<32>("identity seed")?,
        ));
        let dh =
            X25519Secret::from_slice_array(&zeroize::Zeroizing::new(r.array::<32>("identity dh")?));
        r.finish()?;
        Ok(Self::from_secret_parts(&seed, dh))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn certificate_rejects_tampering_and_wrong_account() {
        let mut rng = ChaCha20Rng::from_seed([1; 32]);
        let account = AccountIdentity::generate(&mut rng);
        let other = AccountIdentity::generate(&mut rng);
        let device = DeviceIdentity::generate(&mut rng);
        let cert = account.certify(device.public());
        assert_eq!(cert.verify(), Ok(device.public()));
        let bytes = cert.to_bytes();
        assert_eq!(bytes.len(), DeviceCertificate::ENCODED_LEN);
        // Flip one bit in every position of the device part and the signature.
        for i in 34..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 1;
            match DeviceCertificate::from_bytes(&b) {
                Ok(c) => assert_eq!(c.verify(), Err(IdentityError::InvalidSignature), "byte {i}"),
                Err(e) => assert!(
                    matches!(e, WireError::InvalidEd25519Key { .. }),
                    "byte {i}: {e}"
                ),
            }
        }
        // Same device certified by another account does not verify as the first.
        let mut forged = other.certify(device.public());
        forged.account = account.public_key();
        assert_eq!(forged.verify(), Err(IdentityError::InvalidSignature));
    }

    #[test]
    fn account_key_from_seed_is_rfc8032() {
        // RFC 8032 §7.1 test 1 secret key → public key.
        let seed = hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
            .unwrap();
        let seed = Ed25519Seed::from_slice_array(&seed.try_into().unwrap());
        assert_eq!(
            hex::encode(AccountIdentity::from_seed(&seed).public_key().to_bytes()),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
    }

    #[test]
    fn non_canonical_ed25519_encodings_are_rejected() {
        // y = p + 9 (a valid point's y plus p would also be rejected); use the
        // canonical encoding of a real key with y increased by p where it fits.
        let mut rng = <rand_chacha::ChaCha20Rng as rand_core::SeedableRng>::from_seed([5; 32]);
        let good = AccountIdentity::generate(&mut rng).public_key().to_bytes();
        assert!(Ed25519PublicKey::from_bytes(&good).is_ok());
        // p = 2^255 - 19; y = 1 + p encodes the identity non-canonically.
        let mut y = [0xFFu8; 32];
        y[0] = 0xEE; // 2^255 - 19 + 1 = 0x7F..FFEE, little-endian
        y[31] = 0x7F;
        assert_eq!(
            Ed25519PublicKey::from_bytes(&y),
            Err(IdentityError::InvalidEd25519Key)
        );
        // y = 9 + p with the sign bit set: non-canonical.
        let mut y9 = [0xFFu8; 32];
        y9[0] = 0xF6;
        assert_eq!(
            Ed25519PublicKey::from_bytes(&y9),
            Err(IdentityError::InvalidEd25519Key)
        );
    }

    #[test]
    fn small_order_ed25519_keys_are_rejected() {
        // The identity point (y = 1) has order 1.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(
            Ed25519PublicKey::from_bytes(&identity),
            Err(IdentityError::InvalidEd25519Key)
        );
    }
}
