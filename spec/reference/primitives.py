"""Primitives of spec chapter 3.

- X25519 (§3.1): a small RFC 7748 ladder, so that an all-zero output is
  returned (and then rejected by `dh`) rather than hidden by a library.
- Ed25519 (§3.2): key generation and signing from the `cryptography`
  package (RFC 8032 signing is deterministic); strict verification is the
  RFC 8032 equation from `cryptography` plus the extra checks the spec
  demands, done here in pure Python (point decoding, small-order checks on
  A and R, S < L).
- ML-KEM-768 (§3.3): the deterministic internal algorithms of `kyber-py`
  (`_keygen_internal`, `_encaps_internal`, `decaps`) and an explicit FIPS 203
  §7.2 encapsulation key check.
- X-Wing (§3.4), SHA-256, HKDF-SHA256, HMAC-SHA256 (§3.5), SHA3/SHAKE from
  `hashlib`.
"""

from __future__ import annotations

import functools
import hashlib
import hmac as _hmac

from cryptography.exceptions import InvalidSignature as _CryptoInvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from kyber_py.ml_kem import ML_KEM_768

from common import ProtocolError

# --------------------------------------------------------------------------
# §3.1 X25519
# --------------------------------------------------------------------------

X25519_KEY_LEN = 32
_P = 2**255 - 19
_A24 = 121665


# The pure functions below are memoised: the self-test replays the same
# computations many times.
_memo = functools.lru_cache(maxsize=4096)


@_memo
def x25519(k: bytes, u: bytes) -> bytes:
    """RFC 7748 §5 X25519, including clamping and masking of bit 255 of u."""
    assert len(k) == 32 and len(u) == 32
    kb = bytearray(k)
    kb[0] &= 248
    kb[31] &= 127
    kb[31] |= 64
    scalar = int.from_bytes(kb, "little")
    x1 = int.from_bytes(u, "little") & ((1 << 255) - 1)
    x1 %= _P
    x2, z2, x3, z3 = 1, 0, x1, 1
    swap = 0
    for t in reversed(range(255)):
        kt = (scalar >> t) & 1
        swap ^= kt
        if swap:
            x2, x3, z2, z3 = x3, x2, z3, z2
        swap = kt
        a = (x2 + z2) % _P
        aa = a * a % _P
        b = (x2 - z2) % _P
        bb = b * b % _P
        e = (aa - bb) % _P
        c = (x3 + z3) % _P
        d = (x3 - z3) % _P
        da = d * a % _P
        cb = c * b % _P
        x3 = (da + cb) ** 2 % _P
        z3 = x1 * (da - cb) ** 2 % _P
        x2 = aa * bb % _P
        z2 = e * (aa + _A24 * e) % _P
    if swap:
        x2, x3, z2, z3 = x3, x2, z3, z2
    return (x2 * pow(z2, _P - 2, _P) % _P).to_bytes(32, "little")


X25519_BASE = (9).to_bytes(32, "little")


def x25519_public(k: bytes) -> bytes:
    return x25519(k, X25519_BASE)


def dh(k: bytes, peer: bytes, error_class: str = "NonContributoryKey") -> bytes:
    """`DH(k, P)` of §3.1: all-zero output is an error."""
    out = x25519(k, peer)
    if _hmac.compare_digest(out, bytes(32)):
        raise ProtocolError(error_class, "X25519 output is all zero")
    return out


# --------------------------------------------------------------------------
# §3.2 Ed25519
# --------------------------------------------------------------------------

SIGNATURE_LEN = 64
ED25519_L = 2**252 + 27742317777372353535851937790883648493
_D = (-121665 * pow(121666, _P - 2, _P)) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)


def ed25519_public(seed: bytes) -> bytes:
    return Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def ed25519_sign(seed: bytes, msg: bytes) -> bytes:
    return Ed25519PrivateKey.from_private_bytes(seed).sign(msg)


def _ed_decode(b: bytes):
    """RFC 8032 §5.1.3 point decoding; None if not a valid encoding."""
    if len(b) != 32:
        return None
    v = int.from_bytes(b, "little")
    sign = v >> 255
    y = v & ((1 << 255) - 1)
    if y >= _P:
        return None
    u = (y * y - 1) % _P
    w = (_D * y * y + 1) % _P
    x = u * pow(w, 3, _P) * pow(u * pow(w, 7, _P), (_P - 5) // 8, _P) % _P
    if (w * x * x - u) % _P != 0:
        x = x * _SQRT_M1 % _P
        if (w * x * x - u) % _P != 0:
            return None
    if x == 0 and sign == 1:
        return None
    if (x & 1) != sign:
        x = _P - x
    return (x, y, 1, x * y % _P)


def _ed_add(p, q):
    x1, y1, z1, t1 = p
    x2, y2, z2, t2 = q
    a = (y1 - x1) * (y2 - x2) % _P
    b = (y1 + x1) * (y2 + x2) % _P
    c = 2 * t1 * t2 * _D % _P
    d = 2 * z1 * z2 % _P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def _ed_is_identity(p) -> bool:
    x, y, z, _ = p
    return x % _P == 0 and (y - z) % _P == 0


def _ed_small_order(p) -> bool:
    q = p
    for _ in range(3):  # [8]P
        q = _ed_add(q, q)
    return _ed_is_identity(q)


def ed25519_check_public_key(b: bytes) -> None:
    """Decoding check of §3.2 first bullet (`InvalidEd25519Key`)."""
    p = _ed_decode(b)
    if p is None:
        raise ProtocolError("InvalidEd25519Key", "not a curve point")
    if _ed_small_order(p):
        raise ProtocolError("InvalidEd25519Key", "small-order public key")


def ed25519_verify_strict(pub: bytes, msg: bytes, sig: bytes) -> None:
    """Strict verification of §3.2. `pub` has passed the decoding check."""
    ed25519_check_public_key(pub)
    if len(sig) != SIGNATURE_LEN:
        raise ProtocolError("InvalidSignature", "length")
    r = _ed_decode(sig[:32])
    if r is None or _ed_small_order(r):
        raise ProtocolError("InvalidSignature", "R invalid or of small order")
    if int.from_bytes(sig[32:], "little") >= ED25519_L:
        raise ProtocolError("InvalidSignature", "S >= L")
    # Cofactorless equation [S]B = R + [k]A, checked as in RFC 8032 §5.1.7
    # by recomputing R and comparing encodings.
    try:
        Ed25519PublicKey.from_public_bytes(pub).verify(sig, msg)
    except _CryptoInvalidSignature:
        raise ProtocolError("InvalidSignature", "equation does not hold") from None


# --------------------------------------------------------------------------
# §3.3 ML-KEM-768
# --------------------------------------------------------------------------

MLKEM_PUBLIC_KEY_LEN = 1184
MLKEM_CIPHERTEXT_LEN = 1088
MLKEM_SEED_LEN = 64
_Q = 3329


def mlkem_check_encapsulation_key(ek: bytes, error_class: str) -> None:
    """FIPS 203 §7.2 encapsulation key check (type and modulus check)."""
    if len(ek) != MLKEM_PUBLIC_KEY_LEN:
        raise ProtocolError(error_class, "type check: length")
    # ByteDecode_12 / ByteEncode_12 round trip == every coefficient < q.
    body = ek[:384 * 3]
    for i in range(0, len(body), 3):
        b0, b1, b2 = body[i], body[i + 1], body[i + 2]
        c0 = b0 | ((b1 & 0x0F) << 8)
        c1 = (b1 >> 4) | (b2 << 4)
        if c0 >= _Q or c1 >= _Q:
            raise ProtocolError(error_class, f"modulus check: coefficient at byte {i}")


@_memo
def mlkem_keygen(seed_d_z: bytes) -> tuple[bytes, bytes]:
    """KeyGen_internal(d, z) from the 64-byte seed d ‖ z: (ek, dk)."""
    assert len(seed_d_z) == MLKEM_SEED_LEN
    return ML_KEM_768._keygen_internal(seed_d_z[:32], seed_d_z[32:])


@_memo
def mlkem_encaps(ek: bytes, m: bytes) -> tuple[bytes, bytes]:
    """Encaps_internal(ek, m): returns (CT, SS)."""
    assert len(m) == 32
    k, c = ML_KEM_768._encaps_internal(ek, m)
    return c, k


@_memo
def mlkem_decaps(seed_d_z: bytes, ct: bytes) -> bytes:
    """Decaps with implicit rejection, from the stored 64-byte seed."""
    _, dk = mlkem_keygen(seed_d_z)
    return ML_KEM_768.decaps(dk, ct)


# --------------------------------------------------------------------------
# §3.5 hashes and KDFs
# --------------------------------------------------------------------------

def sha256(b: bytes) -> bytes:
    return hashlib.sha256(b).digest()


def hkdf(salt: bytes, ikm: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def hmac_sha256(key: bytes, data: bytes) -> bytes:
    return _hmac.new(key, data, hashlib.sha256).digest()


def sha3_256(b: bytes) -> bytes:
    return hashlib.sha3_256(b).digest()


def shake256(b: bytes, n: int) -> bytes:
    return hashlib.shake_256(b).digest(n)


# --------------------------------------------------------------------------
# §3.4 X-Wing (draft-connolly-cfrg-xwing-kem-06, seed format)
# --------------------------------------------------------------------------

XWING_SEED_LEN = 32
XWING_PUBLIC_KEY_LEN = 1216
XWING_CIPHERTEXT_LEN = 1120
XWING_LABEL = bytes.fromhex("5c2e2f2f5e5c")
assert XWING_LABEL == b"\\.//^\\"

XWING_ZERO_ERROR = "NonContributoryX25519"


def _xwing_expand(seed: bytes):
    expanded = shake256(seed, 96)
    pk_m, dk_m = ML_KEM_768._keygen_internal(expanded[0:32], expanded[32:64])
    sk_x = expanded[64:96]
    pk_x = x25519_public(sk_x)
    return pk_m, dk_m, sk_x, pk_x


def xwing_public_key(seed: bytes) -> bytes:
    pk_m, _, _, pk_x = _xwing_expand(seed)
    return pk_m + pk_x


def _xwing_combiner(ss_m: bytes, ss_x: bytes, ct_x: bytes, pk_x: bytes) -> bytes:
    return sha3_256(ss_m + ss_x + ct_x + pk_x + XWING_LABEL)


def xwing_encaps(pk: bytes, eseed: bytes, key_error: str) -> tuple[bytes, bytes]:
    """EncapsulateDerand: returns (ct, ss)."""
    if len(pk) != XWING_PUBLIC_KEY_LEN:
        raise ProtocolError(key_error, "X-Wing key length")
    pk_m, pk_x = pk[:1184], pk[1184:]
    mlkem_check_encapsulation_key(pk_m, key_error)
    ek_x = eseed[32:64]
    ct_x = x25519_public(ek_x)
    ss_x = dh(ek_x, pk_x, XWING_ZERO_ERROR)
    ct_m, ss_m = mlkem_encaps(pk_m, eseed[0:32])
    return ct_m + ct_x, _xwing_combiner(ss_m, ss_x, ct_x, pk_x)


def xwing_decaps(seed: bytes, ct: bytes) -> bytes:
    if len(ct) != XWING_CIPHERTEXT_LEN:
        raise ProtocolError("Truncated", "X-Wing ciphertext length")
    _, dk_m, sk_x, pk_x = _xwing_expand(seed)
    ct_m, ct_x = ct[:1088], ct[1088:]
    ss_m = ML_KEM_768.decaps(dk_m, ct_m)
    ss_x = dh(sk_x, ct_x, XWING_ZERO_ERROR)
    return _xwing_combiner(ss_m, ss_x, ct_x, pk_x)


# --------------------------------------------------------------------------
# §1.5 the vector generator's RNG: ChaCha20 keystream (RFC 8439, nonce 0,
# counter from 0) keyed by the 32-byte seed. Draws of whole 32-bit words
# consume the keystream in order.
# --------------------------------------------------------------------------

def chacha20_rng_stream(seed: bytes, n: int) -> bytes:
    enc = Cipher(algorithms.ChaCha20(seed, bytes(16)), mode=None).encryptor()
    return enc.update(bytes(n))


# --------------------------------------------------------------------------
# §3.7 authenticated encryption: ChaCha20-Poly1305 (RFC 8439) from
# `cryptography`, XChaCha20-Poly1305 (IETF) from libsodium (`pynacl`).
# Both return None when the tag does not verify.
# --------------------------------------------------------------------------

import nacl.bindings as _sodium  # noqa: E402
import nacl.exceptions as _sodium_exc  # noqa: E402
from cryptography.exceptions import InvalidTag as _InvalidTag  # noqa: E402
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305 as _ChaChaPoly  # noqa: E402

AEAD_TAG_LEN = 16


def chacha20poly1305_seal(key: bytes, nonce12: bytes, plaintext: bytes, ad: bytes) -> bytes:
    return _ChaChaPoly(key).encrypt(nonce12, plaintext, ad)


def chacha20poly1305_open(key: bytes, nonce12: bytes, ciphertext: bytes, ad: bytes) -> bytes | None:
    if len(ciphertext) < AEAD_TAG_LEN:
        return None
    try:
        return _ChaChaPoly(key).decrypt(nonce12, ciphertext, ad)
    except _InvalidTag:
        return None


def xchacha20poly1305_seal(key: bytes, nonce24: bytes, plaintext: bytes, ad: bytes) -> bytes:
    return _sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, ad, nonce24, key)


def xchacha20poly1305_open(key: bytes, nonce24: bytes, ciphertext: bytes, ad: bytes) -> bytes | None:
    if len(ciphertext) < AEAD_TAG_LEN:
        return None
    try:
        return _sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(ciphertext, ad, nonce24, key)
    except _sodium_exc.CryptoError:
        return None
