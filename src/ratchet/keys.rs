//! The ratchet key schedule (spec §7.2, §7.3).
//!
//! This module owns every KDF call of the double ratchet: initialisation from
//! the handshake seed, the root KDF (DH output plus an optional PQ epoch
//! secret), and the symmetric chain step.
#![deny(clippy::integer_division_remainder_used)]

use crate::aead::XNONCE_LEN;
use crate::kdf::{self, label};
use crate::secret::{BodyKey, ChainKey, HeaderKey, MessageKey, RootKey, SharedSecret};
use zeroize::Zeroize;

fn split3(okm: &mut [u8; 96]) -> (RootKey, ChainKey, HeaderKey) {
    let mut k = [[0u8; 32]; 3];
    for (dst, src) in k.iter_mut().zip(okm.chunks_exact(32)) {
        dst.copy_from_slice(src);
    }
    okm.zeroize();
    let [mut a, mut b, mut c] = k;
    k.zeroize();
    (
        RootKey::from_mut_array(&mut a),
        ChainKey::from_mut_array(&mut b),
        HeaderKey::from_mut_array(&mut c),
    )
}

/// `RK_0 ‖ NHK_I = HKDF(0^32, RK_hs, LABEL_RATCHET_INIT ‖ TH, 64)`: the first
/// root key of the ratchet and the header key of the initiator's second
/// sending chain (spec §7.2).
pub(crate) fn init(handshake_root: &RootKey, transcript_hash: &[u8; 32]) -> (RootKey, HeaderKey) {
    let mut okm = [0u8; 64];
    // 64 ≤ 255·32: cannot fail.
    let _ = kdf::hkdf_sha256(
        &[0u8; 32],
        &[handshake_root.expose()],
        &[label::RATCHET_INIT, transcript_hash],
        &mut okm,
    );
    let mut rk = [0u8; 32];
    let mut hk = [0u8; 32];
    rk.copy_from_slice(&okm[..32]);
    hk.copy_from_slice(&okm[32..]);
    okm.zeroize();
    (
        RootKey::from_mut_array(&mut rk),
        HeaderKey::from_mut_array(&mut hk),
    )
}

/// The root KDF (spec §7.3):
/// `RK' ‖ CK ‖ NHK = HKDF(RK, DH ‖ [SS_e], LABEL_RATCHET_ROOT ‖ u8(0), 96)`
/// without a PQ epoch, or with `info = LABEL_RATCHET_ROOT ‖ u8(1) ‖ u32(e)`
/// when the secret `SS_e` of PQ epoch `e` is mixed.
pub(crate) fn root(
    rk: &RootKey,
    dh: &SharedSecret,
    pq: Option<(u32, &SharedSecret)>,
) -> (RootKey, ChainKey, HeaderKey) {
    let mut okm = [0u8; 96];
    let _ = match pq {
        None => kdf::hkdf_sha256(
            rk.expose(),
            &[dh.expose()],
            &[label::RATCHET_ROOT, &[0]],
            &mut okm,
        ),
        Some((epoch, ss)) => kdf::hkdf_sha256(
            rk.expose(),
            &[dh.expose(), ss.expose()],
            &[label::RATCHET_ROOT, &[1], &epoch.to_be_bytes()],
            &mut okm,
        ),
    };
    split3(&mut okm)
}

/// The chain step (spec §7.3): `MK = HMAC(CK, LABEL_MESSAGE_KEY)`,
/// `CK' = HMAC(CK, LABEL_CHAIN_KEY)`.
pub(crate) fn chain(ck: &ChainKey) -> (ChainKey, MessageKey) {
    let mut mk = kdf::hmac_sha256(ck.expose(), &[label::MESSAGE_KEY]);
    let mut next = kdf::hmac_sha256(ck.expose(), &[label::CHAIN_KEY]);
    (
        ChainKey::from_mut_array(&mut next),
        MessageKey::from_mut_array(&mut mk),
    )
}

/// The body key (spec §7.3): `AK = HMAC(MK, LABEL_MESSAGE_BODY_KEY ‖ nonce)`,
/// with `nonce` the message's 24-byte header nonce. A message key used twice
/// (a sender that rolled back its state) still gives two unrelated body keys
/// unless the two random nonces collide (spec §7.11).
pub(crate) fn body_key(mk: &MessageKey, nonce: &[u8; XNONCE_LEN]) -> BodyKey {
    let mut ak = kdf::hmac_sha256(mk.expose(), &[label::MESSAGE_BODY_KEY, nonce]);
    BodyKey::from_mut_array(&mut ak)
}
