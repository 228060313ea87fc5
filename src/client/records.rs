//! Records at rest (spec §10.3): names, keys, encryption and generations.
//!
//! ```text
//! name  = kind (1) ‖ account (32, zeros if none) ‖ device (32, zeros if none)
//! key   = kind ‖ HMAC-SHA256(K_name, name)[0..16]                    (17 bytes)
//!         (the head's key is fixed: 0x01 ‖ 0^16)
//! value = 0x01 ‖ 0x19 ‖ kind ‖ u64 generation ‖ check (16) ‖ nonce (24)
//!         ‖ XChaCha20-Poly1305(K_rec, nonce, plain,
//!              AD = LABEL_STORED_RECORD ‖ value[0..27] ‖ name)
//! K_rec ‖ K_name ‖ check ‖ K_log = HKDF-SHA256(salt = "", storage key, LABEL_RECORD_KEYS, 112)
//! (every record but the head also binds its owner, the device id, into the AD)
//! ```

use super::error::{Corruption, RecordError, RecordKind};
use crate::aead::{self, TAG_LEN, XNONCE_LEN};
use crate::device::list::DeviceId;
use crate::kdf::{self, label};
use crate::secret::{StorageKey, SymmetricKey};
use crate::wire::WIRE_VERSION;
use alloc::vec::Vec;
use rand_core::CryptoRng;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

/// Object type of an encrypted client record (spec §10.3).
pub(crate) const TYPE_RECORD: u8 = 0x19;
/// Length of a record key.
pub(crate) const KEY_LEN: usize = 17;
/// Length of the key check value in every record.
const CHECK_LEN: usize = 16;
/// Bytes before the ciphertext: version, type, kind, generation, check, nonce.
const PREFIX_LEN: usize = 3 + 8 + CHECK_LEN + XNONCE_LEN;
/// Largest record accepted (a prekey store with full replay sets is the
/// largest: about 400 KB; the cap leaves room).
pub(crate) const MAX_RECORD_LEN: usize = 4 << 20;

/// The name of one record: what it is and whom it is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Name {
    pub(crate) kind: RecordKind,
    pub(crate) account: [u8; 32],
    pub(crate) device: [u8; 32],
}

impl Name {
    pub(crate) fn fixed(kind: RecordKind) -> Self {
        Self {
            kind,
            account: [0; 32],
            device: [0; 32],
        }
    }

    pub(crate) fn peer(account: &[u8; 32]) -> Self {
        Self {
            kind: RecordKind::Peer,
            account: *account,
            device: [0; 32],
        }
    }

    pub(crate) fn sessions(account: &[u8; 32], device: &DeviceId) -> Self {
        Self {
            kind: RecordKind::Sessions,
            account: *account,
            device: *device.as_bytes(),
        }
    }

    pub(super) fn encode(&self) -> [u8; 65] {
        let mut out = [0u8; 65];
        out[0] = self.kind as u8;
        out[1..33].copy_from_slice(&self.account);
        out[33..].copy_from_slice(&self.device);
        out
    }
}

/// The keys derived from the client's storage key.
pub(crate) struct RecordKeys {
    enc: SymmetricKey,
    name: SymmetricKey,
    check: [u8; CHECK_LEN],
    log: SymmetricKey,
    /// The device id the records belong to (from the head): bound into the
    /// AD of every other record, so a record of another store under the
    /// same storage key does not open here.
    owner: [u8; 32],
}

impl RecordKeys {
    pub(crate) fn derive(storage_key: &StorageKey) -> Self {
        let mut okm = Zeroizing::new([0u8; 112]);
        // 112 bytes is far below HKDF's limit, so this cannot fail.
        let _ = kdf::hkdf_sha256(
            &[],
            &[storage_key.expose()],
            &[label::RECORD_KEYS],
            okm.as_mut_slice(),
        );
        let (enc, rest) = okm.split_first_chunk::<32>().unwrap_or((&[0; 32], &[]));
        let (name, rest) = rest.split_first_chunk::<32>().unwrap_or((&[0; 32], &[]));
        let (check, rest) = rest
            .split_first_chunk::<CHECK_LEN>()
            .unwrap_or((&[0; CHECK_LEN], &[]));
        let log = rest.first_chunk::<32>().unwrap_or(&[0; 32]);
        let (mut enc, mut name, mut log) = (*enc, *name, *log);
        Self {
            enc: SymmetricKey::from_mut_array(&mut enc),
            name: SymmetricKey::from_mut_array(&mut name),
            check: *check,
            log: SymmetricKey::from_mut_array(&mut log),
            owner: [0; 32],
        }
    }

    /// Binds the records to their device (known once the head is open, or
    /// when the device is created).
    pub(crate) fn set_owner(&mut self, device_id: &DeviceId) {
        self.owner = *device_id.as_bytes();
    }

    /// The 4-byte tag that stands for an identifier in log lines (spec
    /// §10.10): keyed, so a log reader cannot test candidate ids.
    #[cfg_attr(not(feature = "log"), allow(dead_code))]
    pub(crate) fn log_tag(&self, id: &[u8]) -> [u8; 4] {
        let mac = kdf::hmac_sha256(self.log.expose(), &[label::LOG_ID, id]);
        *mac.first_chunk::<4>().unwrap_or(&[0; 4])
    }

    /// The store key of a record. The head's is fixed (`0x01 ‖ 0^16`), so
    /// a wrong storage key still finds it and is told apart from an empty
    /// store; every other key is a keyed hash of the record's name.
    pub(crate) fn key(&self, name: &Name) -> Vec<u8> {
        if name.kind == RecordKind::Head {
            let mut out = alloc::vec![0u8; KEY_LEN];
            if let Some(first) = out.first_mut() {
                *first = RecordKind::Head as u8;
            }
            return out;
        }
        let mac = kdf::hmac_sha256(self.name.expose(), &[&name.encode()]);
        let mut out = Vec::with_capacity(KEY_LEN);
        out.push(name.kind as u8);
        out.extend_from_slice(mac.get(..KEY_LEN - 1).unwrap_or(&[]));
        out
    }

    /// Encrypts a record's plain encoding at `generation`.
    pub(crate) fn seal<R: CryptoRng + ?Sized>(
        &self,
        rng: &mut R,
        name: &Name,
        generation: u64,
        plain: &[u8],
    ) -> Vec<u8> {
        let mut nonce = [0u8; XNONCE_LEN];
        rng.fill_bytes(&mut nonce);
        self.seal_with_nonce(&nonce, name, generation, plain)
    }

    /// [`RecordKeys::seal`] with the nonce given: the one sealing code, also
    /// behind the published test vectors (`client::hazmat_seal_record`).
    pub(crate) fn seal_with_nonce(
        &self,
        nonce: &[u8; XNONCE_LEN],
        name: &Name,
        generation: u64,
        plain: &[u8],
    ) -> Vec<u8> {
        let mut out = Vec::with_capacity(PREFIX_LEN + plain.len() + TAG_LEN);
        out.push(WIRE_VERSION);
        out.push(TYPE_RECORD);
        out.push(name.kind as u8);
        out.extend_from_slice(&generation.to_be_bytes());
        out.extend_from_slice(&self.check);
        out.extend_from_slice(nonce);
        let ad = self.ad(out.get(..PREFIX_LEN - XNONCE_LEN).unwrap_or(&[]), name);
        // Room for the tag up front: sealing never reallocates, so no freed
        // block keeps a copy of the plaintext.
        let mut body = Zeroizing::new(Vec::with_capacity(plain.len() + TAG_LEN));
        body.extend_from_slice(plain);
        // In-memory buffers below the record limit always seal.
        let _ = aead::seal_x(self.enc.expose(), nonce, &ad, &mut body);
        out.extend_from_slice(&body);
        out
    }

    /// Opens a record stored under `name`: its generation and plain bytes.
    pub(crate) fn open(
        &self,
        name: &Name,
        bytes: &[u8],
    ) -> Result<(u64, Zeroizing<Vec<u8>>), RecordError> {
        let record = name.kind;
        let corrupted = |reason| RecordError::Corrupted { record, reason };
        if bytes.len() > MAX_RECORD_LEN {
            return Err(corrupted(Corruption::TooLong));
        }
        let (&version, rest) = bytes
            .split_first()
            .ok_or(corrupted(Corruption::Truncated))?;
        if version == 0 {
            return Err(corrupted(Corruption::BadVersion));
        }
        if version != WIRE_VERSION {
            return Err(RecordError::NewerVersion { record, version });
        }
        let (prefix, body) = rest
            .split_at_checked(PREFIX_LEN - 1)
            .ok_or(corrupted(Corruption::Truncated))?;
        let (ty, rest) = prefix
            .split_first()
            .ok_or(corrupted(Corruption::Truncated))?;
        let (kind, rest) = rest.split_first().ok_or(corrupted(Corruption::Truncated))?;
        if *ty != TYPE_RECORD || *kind != record as u8 {
            return Err(corrupted(Corruption::WrongType));
        }
        let (generation, rest) = rest
            .split_first_chunk::<8>()
            .ok_or(corrupted(Corruption::Truncated))?;
        let (check, rest) = rest
            .split_first_chunk::<CHECK_LEN>()
            .ok_or(corrupted(Corruption::Truncated))?;
        let nonce = rest
            .first_chunk::<XNONCE_LEN>()
            .ok_or(corrupted(Corruption::Truncated))?;
        if body.len() < TAG_LEN {
            return Err(corrupted(Corruption::Truncated));
        }
        if !bool::from(check.ct_eq(&self.check)) {
            // Decided on the head only: the head proved the key of the
            // others, so theirs differing means a record from another store.
            return Err(if record == RecordKind::Head {
                RecordError::WrongKey
            } else {
                corrupted(Corruption::Authentication)
            });
        }
        let head = bytes
            .get(..PREFIX_LEN - XNONCE_LEN)
            .ok_or(corrupted(Corruption::Truncated))?;
        let mut buf = Zeroizing::new(body.to_vec());
        if !aead::open_x(self.enc.expose(), nonce, &self.ad(head, name), &mut buf) {
            return Err(corrupted(Corruption::Authentication));
        }
        Ok((u64::from_be_bytes(*generation), buf))
    }
}

#[cfg(feature = "hazmat-test-vectors")]
impl RecordKeys {
    /// `K_rec`, `K_name`, `check` and `K_log`, for the published test
    /// vectors.
    pub(super) fn hazmat_parts(&self) -> ([u8; 32], [u8; 32], [u8; CHECK_LEN], [u8; 32]) {
        (
            *self.enc.expose(),
            *self.name.expose(),
            self.check,
            *self.log.expose(),
        )
    }
}

impl Drop for RecordKeys {
    fn drop(&mut self) {
        self.check.zeroize();
    }
}

impl RecordKeys {
    /// `LABEL_STORED_RECORD ‖ prefix ‖ name`, and the owner for every
    /// record but the head.
    fn ad(&self, prefix: &[u8], name: &Name) -> Vec<u8> {
        let mut ad = Vec::with_capacity(label::STORED_RECORD.len() + prefix.len() + 65 + 32);
        ad.extend_from_slice(label::STORED_RECORD);
        ad.extend_from_slice(prefix);
        ad.extend_from_slice(&name.encode());
        if name.kind != RecordKind::Head {
            ad.extend_from_slice(&self.owner);
        }
        ad
    }
}
