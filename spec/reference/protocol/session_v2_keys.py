"""Account and device keys, the account-key record, its cache, rotation and
retention (spec §9.7)."""

from __future__ import annotations

from dataclasses import dataclass

from common import ProtocolError
from primitives import MLKEM_PUBLIC_KEY_LEN, mlkem_check_encapsulation_key, mlkem_keygen, shake256
from protocol import session_v2_bencode as bencode
from protocol.session_v2_primitives import blake2b, x25519_public, xeddsa_verify

ACCOUNT_KEYS_DOMAIN = b"SessionAccountKeys"
DEVICE_KEYS_DOMAIN = b"SessionDeviceKeys"
ROTATION_PERS = b"SessionAccKeyRot"

MAX_RECORD_LEN = 4096

HOUR = 3600
DAY = 24 * HOUR


@dataclass
class KemKeys:
    """An X25519 secret `x` and an ML-KEM-768 seed `d ‖ z`, with their public
    keys `X` and `M`."""

    x25519_secret: bytes
    mlkem_seed: bytes
    x25519_pk: bytes
    mlkem_pk: bytes


def expand_keys(domain: bytes, seed: bytes) -> KemKeys:
    """§9.7: SHAKE256(domain ‖ s) squeezed: x (32), then d ‖ z (64)."""
    out = shake256(domain + seed, 96)
    x, dz = out[:32], out[32:96]
    ek, _ = mlkem_keygen(dz)
    return KemKeys(x, dz, x25519_public(x), ek)


def account_keys(seed: bytes) -> KemKeys:
    return expand_keys(ACCOUNT_KEYS_DOMAIN, seed)


def device_keys(seed: bytes) -> KemKeys:
    return expand_keys(DEVICE_KEYS_DOMAIN, seed)


# --------------------------------------------------------------------------
# Account-key record
# --------------------------------------------------------------------------

def _bencode_error(e: bencode.BencodeError, outer: str) -> ProtocolError:
    return ProtocolError(f"{outer}/{e.cls}", e.detail)


def verify_account_record(record: bytes, owner_session_id: bytes) -> tuple[bytes, bytes]:
    """Returns `(M, X)` of a valid record signed by the owner of the Session
    ID; raises `RecordError` classes otherwise."""
    if len(record) > MAX_RECORD_LEN:
        raise ProtocolError("TooLarge", f"{len(record)} > {MAX_RECORD_LEN}")
    try:
        d = bencode.decode_dict(record)
    except bencode.BencodeError as e:
        raise _bencode_error(e, "Bencode") from None
    for key in (b"M", b"X", b"~"):
        if key not in d:
            raise ProtocolError("MissingField", key.decode())
    m, x, sig = d.get(b"M"), d.get(b"X"), d.get(b"~")
    for key, val, n in ((b"M", m, MLKEM_PUBLIC_KEY_LEN), (b"X", x, 32), (b"~", sig, 64)):
        if not isinstance(val, bytes) or len(val) != n:
            raise ProtocolError("BadField", key.decode())
    mlkem_check_encapsulation_key(m, "InvalidMlKemKey")
    if not xeddsa_verify(owner_session_id[1:], d.prefix_before(b"~"), sig):
        raise ProtocolError("BadSignature")
    return m, x


# --------------------------------------------------------------------------
# Cache state, rotation, retention
# --------------------------------------------------------------------------

FRESH_FOR = 24 * HOUR
STALE_UNTIL = 48 * HOUR
NAK_FOR = 1 * HOUR


def cache_state(fetched_at: int, now: int) -> str:
    age = max(0, now - fetched_at)
    if age < FRESH_FOR:
        return "Fresh"
    if age <= STALE_UNTIL:
        return "Stale"
    return "Expired"


def rotation_u(device_id: bytes, current_seed: bytes) -> float:
    h = blake2b(device_id, 8, key=current_seed, pers=ROTATION_PERS)
    # int -> float rounds to nearest (ties to even); / 2^64 is exact.
    return float(int.from_bytes(h, "little")) / 2.0**64


def powi(u: float, n: int) -> float:
    """u^n by right-to-left binary square-and-multiply in binary64."""
    result, base = 1.0, u
    while n:
        if n & 1:
            result *= base
        n >>= 1
        if n:
            base *= base
    return result


def rotation_time(created_at: int, device_id: bytes, current_seed: bytes, devices: int) -> tuple[float, int]:
    u = rotation_u(device_id, current_seed)
    n = max(1, devices)
    jitter = 2.0 * HOUR * (1.0 - powi(u, n))
    return u, created_at + 11 * HOUR + int(jitter // 1)


RETENTION = 16 * DAY


def retained(rotated_at: int, now: int) -> bool:
    return now - rotated_at <= RETENTION
