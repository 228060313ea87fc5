"""Primitives used by the Session v2 formats (spec §9.1, §9.5, §9.6).

- BLAKE2b with key and 16-byte personalisation: `hashlib.blake2b`, whose
  parameter block is libsodium's `crypto_generichash_blake2b_salt_personal`
  (salt all zero, personalisation zero-padded to 16 bytes).
- XChaCha20-Poly1305 (IETF) and Argon2id v1.3: `pynacl` (libsodium).
- XChaCha20 (the raw stream, block counter 0): HChaCha20 written here over
  the ChaCha20 block function of `cryptography`; checked at import against
  libsodium's AEAD, whose ciphertext is the same stream from block 1.
- Edwards arithmetic for the birational maps and the positive-alternative
  signatures (§9.6): pure Python; verification is libsodium's.
- `ChaChaRng`: the draw semantics of `rand_chacha::ChaCha20Rng` (§1.5, §9.1).
"""

from __future__ import annotations

import hashlib
import struct

import nacl.bindings as sodium
import nacl.exceptions
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

from common import ProtocolError
from primitives import (
    ED25519_L,
    _ed_add,
    _ed_decode,
    _ed_is_identity,
    _ed_small_order,
    ed25519_public,
    x25519,
    x25519_public,
)

P = 2**255 - 19
L = ED25519_L


# --------------------------------------------------------------------------
# BLAKE2b (§9.1)
# --------------------------------------------------------------------------

def blake2b(data: bytes, n: int, key: bytes = b"", pers: bytes = b"") -> bytes:
    """`BLAKE2b-n(data, key = K, pers = P)`; `pers` is at most 16 bytes and
    zero-padded (libsodium's `_salt_personal` with an all-zero salt)."""
    assert len(pers) <= 16
    return hashlib.blake2b(data, digest_size=n, key=key, person=pers).digest()


# --------------------------------------------------------------------------
# XChaCha20 and XChaCha20-Poly1305 (§9.1)
# --------------------------------------------------------------------------

def _rotl(v: int, c: int) -> int:
    return ((v << c) & 0xFFFFFFFF) | (v >> (32 - c))


def _quarter(s: list, a: int, b: int, c: int, d: int) -> None:
    s[a] = (s[a] + s[b]) & 0xFFFFFFFF; s[d] = _rotl(s[d] ^ s[a], 16)
    s[c] = (s[c] + s[d]) & 0xFFFFFFFF; s[b] = _rotl(s[b] ^ s[c], 12)
    s[a] = (s[a] + s[b]) & 0xFFFFFFFF; s[d] = _rotl(s[d] ^ s[a], 8)
    s[c] = (s[c] + s[d]) & 0xFFFFFFFF; s[b] = _rotl(s[b] ^ s[c], 7)


def hchacha20(key: bytes, nonce16: bytes) -> bytes:
    """HChaCha20 (draft-irtf-cfrg-xchacha §2.2)."""
    assert len(key) == 32 and len(nonce16) == 16
    s = [0x61707865, 0x3320646E, 0x79622D32, 0x6B206574]
    s += list(struct.unpack("<8I", key)) + list(struct.unpack("<4I", nonce16))
    for _ in range(10):
        _quarter(s, 0, 4, 8, 12); _quarter(s, 1, 5, 9, 13)
        _quarter(s, 2, 6, 10, 14); _quarter(s, 3, 7, 11, 15)
        _quarter(s, 0, 5, 10, 15); _quarter(s, 1, 6, 11, 12)
        _quarter(s, 2, 7, 8, 13); _quarter(s, 3, 4, 9, 14)
    return struct.pack("<8I", *(s[0:4] + s[12:16]))


def _chacha20_stream(key: bytes, nonce8: bytes, n: int, counter: int = 0) -> bytes:
    """Original ChaCha20 (64-bit counter, 64-bit nonce) keystream. The
    16-byte `cryptography` nonce is the initial state words 12-15."""
    iv = counter.to_bytes(8, "little") + nonce8
    return Cipher(algorithms.ChaCha20(key, iv), mode=None).encryptor().update(bytes(n))


def xchacha20_xor(key: bytes, nonce24: bytes, data: bytes) -> bytes:
    """libsodium `crypto_stream_xchacha20_xor`: block counter 0, no MAC."""
    assert len(nonce24) == 24
    stream = _chacha20_stream(hchacha20(key, nonce24[:16]), nonce24[16:], len(data))
    return bytes(a ^ b for a, b in zip(data, stream))


def aead_seal(key: bytes, nonce24: bytes, plaintext: bytes) -> bytes:
    """XChaCha20-Poly1305 (IETF), tag appended, no associated data."""
    return sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, None, nonce24, key)


def aead_open(key: bytes, nonce24: bytes, ciphertext: bytes) -> bytes | None:
    """None when the tag does not verify."""
    if len(ciphertext) < 16:
        return None
    try:
        return sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(ciphertext, None, nonce24, key)
    except nacl.exceptions.CryptoError:
        return None


def _self_check_xchacha() -> None:
    key, nonce = bytes(range(32)), bytes(range(100, 124))
    pt = bytes(200)
    ct = aead_seal(key, nonce, pt)[:-16]
    # The AEAD encrypts with the same stream from block 1 (block 0 keys Poly1305).
    assert xchacha20_xor(key, nonce, bytes(64) + pt)[64:] == ct, "XChaCha20 self-check failed"


_self_check_xchacha()


# --------------------------------------------------------------------------
# Argon2id v1.3 (§9.10): libsodium, which always uses one lane.
# --------------------------------------------------------------------------

def argon2id(password: bytes, salt: bytes, t: int, m_bytes: int, outlen: int) -> bytes:
    assert len(salt) == sodium.crypto_pwhash_SALTBYTES
    return sodium.crypto_pwhash_alg(outlen, password, salt, t, m_bytes,
                                    sodium.crypto_pwhash_ALG_ARGON2ID13)


# --------------------------------------------------------------------------
# Edwards25519 helpers (§9.5, §9.6)
# --------------------------------------------------------------------------

_B = _ed_decode(bytes.fromhex("5866666666666666666666666666666666666666666666666666666666666666"))
_IDENTITY = (0, 1, 1, 0)


def ed_scalarmult(k: int, pt) -> tuple:
    q = _IDENTITY
    for bit in reversed(range(k.bit_length())):
        q = _ed_add(q, q)
        if (k >> bit) & 1:
            q = _ed_add(q, pt)
    return q


def ed_encode(pt) -> bytes:
    x, y, z, _ = pt
    zi = pow(z, P - 2, P)
    x, y = x * zi % P, y * zi % P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def ed_base_mult(k: int) -> bytes:
    return ed_encode(ed_scalarmult(k % L, _B))


def ed25519_pk_to_x25519(pk: bytes) -> bytes:
    """Birational map `u = (1 + y)/(1 − y)` of a *received* Ed25519 key
    (§9.5): fails for an undecodable point, a small-order point or a point
    outside the prime-order subgroup (libsodium's checks)."""
    pt = _ed_decode(pk)
    if pt is None:
        raise ProtocolError("InvalidEd25519Key", "not a curve point")
    if _ed_small_order(pt):
        raise ProtocolError("InvalidEd25519Key", "small order")
    if not _ed_is_identity(ed_scalarmult(L, pt)):
        raise ProtocolError("InvalidEd25519Key", "not in the prime-order subgroup")
    y = int.from_bytes(pk, "little") & ((1 << 255) - 1)
    u = (1 + y) * pow((1 - y) % P, P - 2, P) % P
    return u.to_bytes(32, "little")


def x25519_to_ed25519_positive(u_bytes: bytes) -> bytes | None:
    """§9.6: `y = (u − 1)/(u + 1)`, sign bit 0. None for `u = −1`. The
    result may still not decode (twist points); verification rejects it."""
    u = (int.from_bytes(u_bytes, "little") & ((1 << 255) - 1)) % P
    if (u + 1) % P == 0:
        return None
    y = (u - 1) * pow(u + 1, P - 2, P) % P
    return y.to_bytes(32, "little")


# --------------------------------------------------------------------------
# Ed25519 verification with libsodium's rules (§9.6, §9.12 point 18)
# --------------------------------------------------------------------------

def ed25519_verify_sodium(pk: bytes, msg: bytes, sig: bytes) -> bool:
    """libsodium `crypto_sign_verify_detached`: canonical public key, neither
    the key nor `R` of small order, canonical `S`, cofactorless equation
    compared on encodings."""
    if len(pk) != 32 or len(sig) != 64:
        return False
    try:
        sodium.crypto_sign_open(sig + msg, pk)
        return True
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.CryptoError, ValueError):
        return False


def ed25519_sign(seed: bytes, msg: bytes) -> bytes:
    """RFC 8032 (deterministic)."""
    from primitives import ed25519_sign as _sign
    return _sign(seed, msg)


# --------------------------------------------------------------------------
# Identity derivation (§9.5)
# --------------------------------------------------------------------------

def ed25519_seed_of(seed: bytes) -> bytes:
    """A 16-byte recovery seed is followed by 16 zero bytes; 32 bytes as is."""
    if len(seed) == 16:
        return seed + bytes(16)
    if len(seed) == 32:
        return seed
    raise ValueError(f"seed of {len(seed)} bytes")


def clamp(k: bytes) -> bytes:
    b = bytearray(k)
    b[0] &= 248
    b[31] &= 127
    b[31] |= 64
    return bytes(b)


def x25519_secret_of(ed_seed: bytes) -> bytes:
    """libsodium `crypto_sign_ed25519_sk_to_curve25519`."""
    return clamp(hashlib.sha512(ed_seed).digest()[:32])


# --------------------------------------------------------------------------
# Positive-alternative signatures (§9.6)
# --------------------------------------------------------------------------

XED25519_NONCE_PERS = b"xed25519signatur"


def xeddsa_verify(x25519_pub: bytes, msg: bytes, sig: bytes) -> bool:
    ed = x25519_to_ed25519_positive(x25519_pub)
    if ed is None:
        return False
    return ed25519_verify_sodium(ed, msg, sig)


def xeddsa_sign(x25519_secret: bytes, msg: bytes, z: bytes) -> bytes:
    """Signing with the clamped X25519 secret and 64 random bytes `Z`."""
    assert len(z) == 64
    a_bytes = clamp(x25519_secret)
    a = int.from_bytes(a_bytes, "little")
    A = ed_base_mult(a)
    if A[31] & 0x80:
        a = (-a) % L
        a_bytes = a.to_bytes(32, "little")
        A = A[:31] + bytes([A[31] & 0x7F])
    r = int.from_bytes(blake2b(a_bytes + msg + z, 64, pers=XED25519_NONCE_PERS), "little") % L
    R = ed_base_mult(r)
    h = int.from_bytes(hashlib.sha512(R + A + msg).digest(), "little") % L
    return R + ((r + h * a) % L).to_bytes(32, "little")


# --------------------------------------------------------------------------
# §1.5 / §9.1 draws of rand_chacha::ChaCha20Rng
# --------------------------------------------------------------------------

class ChaChaRng:
    """The ChaCha20 keystream of `seed` (nonce 0, counter from 0), consumed
    in whole 32-bit words: a draw of `n` bytes takes the next `⌈n/4⌉` words
    and uses their first `n` bytes (rand_core's `fill_bytes`); a u64 draw is
    the little-endian value of the next 8 bytes."""

    _CHUNK = 64 * 1024

    def __init__(self, seed: bytes):
        assert len(seed) == 32
        self._enc = Cipher(algorithms.ChaCha20(seed, bytes(16)), mode=None).encryptor()
        self._buf = b""
        self._pos = 0
        self.consumed = 0

    def _take(self, n: int) -> bytes:
        while len(self._buf) - self._pos < n:
            self._buf = self._buf[self._pos:] + self._enc.update(bytes(self._CHUNK))
            self._pos = 0
        out = self._buf[self._pos:self._pos + n]
        self._pos += n
        self.consumed += n
        return out

    def bytes(self, n: int) -> bytes:
        return self._take(-(-n // 4) * 4)[:n]

    def u64(self) -> int:
        return int.from_bytes(self._take(8), "little")

    def uniform_below(self, bound: int) -> int:
        """§9.9.3: 8 bytes (LE u64) masked to the next power of two ≥ bound,
        retried while ≥ bound."""
        mask = (1 << max(0, (bound - 1).bit_length())) - 1
        while True:
            v = self.u64() & mask
            if v < bound:
                return v

    def permutation(self, n: int) -> list[int]:
        """§9.9.3 Fisher–Yates from the last position down."""
        perm = list(range(n))
        for i in range(n - 1, 0, -1):
            j = self.uniform_below(i + 1)
            perm[i], perm[j] = perm[j], perm[i]
        return perm


__all__ = [
    "ChaChaRng", "aead_open", "aead_seal", "argon2id", "blake2b", "clamp",
    "ed25519_pk_to_x25519", "ed25519_public", "ed25519_seed_of", "ed25519_sign",
    "ed25519_verify_sodium", "x25519", "x25519_public", "x25519_secret_of",
    "x25519_to_ed25519_positive", "xchacha20_xor", "xeddsa_sign", "xeddsa_verify",
]
