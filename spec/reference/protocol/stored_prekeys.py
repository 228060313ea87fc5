"""The stored prekey store (spec §4.6): canonical encoder, strict decoder
(type 0x13), the encrypted form (type 0x14), the bundle a loaded store
serves and the prekey store (§4.5) it loads into.

Error classes: `UnsupportedStoreVersion` for a version byte other than
0x01, `WrongKeyOrTampered` for an encrypted form that does not open, and
`CorruptedStore/<§6.5 class>` for every other defect, naming the field in
the detail.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from common import WIRE_VERSION, ProtocolError, u8, u16, u32
from primitives import (
    MLKEM_SEED_LEN,
    SIGNATURE_LEN,
    X25519_KEY_LEN,
    mlkem_keygen,
    x25519_public,
    xchacha20poly1305_open,
    xchacha20poly1305_seal,
)
from protocol.prekeys import (
    MAX_BASE_KEYS_PER_LAST_RESORT,
    MAX_LAST_RESORT_PREKEYS,
    MAX_ONE_TIME_PREKEYS,
    MAX_SIGNED_PREKEYS,
    TAG_LAST_RESORT_KEM_PREKEY,
    TAG_ONE_TIME_KEM_PREKEY,
    TAG_SIGNED_PREKEY,
    Bundle,
    LastResortEntry,
    PrekeyStore,
)
from protocol.ratchet_state import LABEL_STORED_STATE, MAX_STORED_LEN

TYPE_STORED_PREKEYS = 0x13
TYPE_ENCRYPTED_STORED_PREKEYS = 0x14
NONCE_LEN = 24
BASE_KEY_LEN = 32

# Fixed item sizes (§4.6); for a last-resort PQ prekey, the part before its
# base keys.
SIGNED_ITEM_LEN = 4 + X25519_KEY_LEN + SIGNATURE_LEN                  # 100
LAST_RESORT_ITEM_LEN = 4 + MLKEM_SEED_LEN + SIGNATURE_LEN + 2         # 134
ONE_TIME_ITEM_LEN = 4 + X25519_KEY_LEN                                # 36
ONE_TIME_KEM_ITEM_LEN = 4 + MLKEM_SEED_LEN + SIGNATURE_LEN            # 132

MAX_STORED_PREKEYS_LEN = 561_930
FRESH_STORED_PREKEYS_LEN = 246

UNSUPPORTED = "UnsupportedStoreVersion"
WRONG_KEY = "WrongKeyOrTampered"


def corrupted(cls: str, detail: str) -> ProtocolError:
    return ProtocolError(f"CorruptedStore/{cls}", detail)


@dataclass
class SignedPrekey:
    id: int
    secret: bytes          # X25519 private key
    signature: bytes


@dataclass
class LastResortPrekey:
    id: int
    seed: bytes            # ML-KEM d || z
    signature: bytes
    base_keys: list = field(default_factory=list)     # EK_A values, the replay set


@dataclass
class OneTimePrekey:
    id: int
    secret: bytes


@dataclass
class OneTimeKemPrekey:
    id: int
    seed: bytes
    signature: bytes


@dataclass
class StoredPrekeys:
    signed: list            # [SignedPrekey], oldest first; the last is current
    last_resort: list       # [LastResortPrekey], oldest first; the last is current
    one_time: list          # [OneTimePrekey]
    one_time_kem: list      # [OneTimeKemPrekey]
    next_id: int

    def all_ids(self) -> list[int]:
        return [p.id for lst in (self.signed, self.last_resort, self.one_time,
                                 self.one_time_kem) for p in lst]

    # -- what a loaded store gives --------------------------------------

    def bundle(self, public_identity: bytes) -> Bundle:
        """§4.4 bundle without one-time prekeys (flags 0x00) carrying the
        current signed and last-resort prekeys: public keys recomputed from
        the stored secrets (§3.1, §3.3), ids and signatures as stored."""
        spk, pqlr = self.signed[-1], self.last_resort[-1]
        return Bundle(public_identity,
                      spk.id, x25519_public(spk.secret), spk.signature,
                      pqlr.id, mlkem_keygen(pqlr.seed)[0], pqlr.signature)

    def signed_items(self) -> list[tuple[str, int, int, bytes, bytes]]:
        """(list name, type tag, id, public key, signature) of every signed
        prekey in the store, in layout order (§4.3)."""
        out = [("signed prekey", TAG_SIGNED_PREKEY, p.id, x25519_public(p.secret), p.signature)
               for p in self.signed]
        out += [("last-resort PQ prekey", TAG_LAST_RESORT_KEM_PREKEY, p.id,
                 mlkem_keygen(p.seed)[0], p.signature) for p in self.last_resort]
        out += [("one-time PQ prekey", TAG_ONE_TIME_KEM_PREKEY, p.id, mlkem_keygen(p.seed)[0],
                 p.signature) for p in self.one_time_kem]
        return out

    def to_prekey_store(self) -> PrekeyStore:
        """The private side of §4.5 that this object persists."""
        s = PrekeyStore()
        for p in self.signed:
            s.signed[p.id] = p.secret
        for p in self.last_resort:
            s.last_resort[p.id] = LastResortEntry(p.seed, set(p.base_keys))
        for p in self.one_time:
            s.one_time[p.id] = p.secret
        for p in self.one_time_kem:
            s.one_time_kem[p.id] = p.seed
        return s


# --------------------------------------------------------------------------
# Encoding. `encode_raw` writes the lists in the order given (the self-test
# uses it to build non-canonical inputs); `encode` writes the canonical
# order of §4.6.
# --------------------------------------------------------------------------

def encode_raw(s: StoredPrekeys) -> bytes:
    out = bytearray(u8(WIRE_VERSION) + u8(TYPE_STORED_PREKEYS))
    out += u8(len(s.signed))
    for p in s.signed:
        out += u32(p.id) + p.secret + p.signature
    out += u8(len(s.last_resort))
    for p in s.last_resort:
        out += u32(p.id) + p.seed + p.signature + u16(len(p.base_keys)) + b"".join(p.base_keys)
    out += u16(len(s.one_time))
    for p in s.one_time:
        out += u32(p.id) + p.secret
    out += u16(len(s.one_time_kem))
    for p in s.one_time_kem:
        out += u32(p.id) + p.seed + p.signature
    out += u32(s.next_id)
    return bytes(out)


def encode(s: StoredPrekeys) -> bytes:
    def by_id(lst):
        return sorted(lst, key=lambda p: p.id)

    canon = StoredPrekeys(
        by_id(s.signed),
        [LastResortPrekey(p.id, p.seed, p.signature, sorted(p.base_keys))
         for p in by_id(s.last_resort)],
        by_id(s.one_time), by_id(s.one_time_kem), s.next_id)
    return encode_raw(canon)


# --------------------------------------------------------------------------
# Decoding (§4.6 with §6.5): field by field in layout order, each field read
# with a bounds check and validated before the next one is read.
# --------------------------------------------------------------------------

class _Reader:
    def __init__(self, b: bytes):
        self.b = b
        self.pos = 0

    def remaining(self) -> int:
        return len(self.b) - self.pos

    def take(self, n: int, what: str) -> bytes:
        if self.remaining() < n:
            raise corrupted("Truncated", f"input ends inside {what}")
        out = self.b[self.pos:self.pos + n]
        self.pos += n
        return out

    def int(self, n: int, what: str) -> int:
        return int.from_bytes(self.take(n, what), "big")


class _Ids:
    """The id rules of §4.6, in their order: 0 is `InvalidValue`, not above
    the previous id of its list is `NotCanonical`, already read in another
    list is `InvalidValue`."""

    def __init__(self):
        self.seen: dict[int, str] = {}

    def check(self, pid: int, prev: int | None, list_name: str, index: int) -> None:
        what = f"{list_name} {index}: id"
        if pid == 0:
            raise corrupted("InvalidValue", f"{what} 0")
        if prev is not None and pid <= prev:
            raise corrupted("NotCanonical", f"{what} {pid} not above {prev}")
        if pid in self.seen:
            raise corrupted("InvalidValue", f"{what} {pid} already used by a {self.seen[pid]}")
        self.seen[pid] = list_name


def _count(r: _Reader, size: int, bound: int, item_len: int, list_name: str,
           at_least_one: bool = False) -> int:
    """A count: its bound as soon as it is read (`TooMany`), 0 where the list
    must not be empty (`InvalidValue`), then room for `count` items of
    their fixed size in the rest of the input (`Truncated`, naming the
    list) before any item is read."""
    count = r.int(size, f"the count of {list_name}")
    if count > bound:
        raise corrupted("TooMany", f"{list_name}: {count} items (at most {bound})")
    if at_least_one and count == 0:
        raise corrupted("InvalidValue", f"{list_name}: none (a store has a current one)")
    if r.remaining() < count * item_len:
        raise corrupted("Truncated", f"{list_name}: {count} items need {count * item_len} "
                                     f"bytes, {r.remaining()} left")
    return count


def decode(b: bytes) -> StoredPrekeys:
    if len(b) > MAX_STORED_LEN:
        raise corrupted("TooLong", f"{len(b)} bytes > {MAX_STORED_LEN}")
    r = _Reader(b)
    version = r.take(1, "the version")[0]
    if version != WIRE_VERSION:
        raise ProtocolError(UNSUPPORTED, f"version {version:#04x}")
    t = r.take(1, "the type")[0]
    if t != TYPE_STORED_PREKEYS:
        raise corrupted("UnexpectedType", f"type {t:#04x}, expected {TYPE_STORED_PREKEYS:#04x}")
    ids = _Ids()

    name = "signed prekey"
    signed = []
    for i in range(_count(r, 1, MAX_SIGNED_PREKEYS, SIGNED_ITEM_LEN, f"the {name}s",
                          at_least_one=True)):
        pid = r.int(4, f"{name} {i}: id")
        ids.check(pid, signed[-1].id if signed else None, name, i)
        secret = r.take(X25519_KEY_LEN, f"{name} {i}: private key")
        sig = r.take(SIGNATURE_LEN, f"{name} {i}: signature")
        signed.append(SignedPrekey(pid, secret, sig))

    name = "last-resort PQ prekey"
    last_resort = []
    for i in range(_count(r, 1, MAX_LAST_RESORT_PREKEYS, LAST_RESORT_ITEM_LEN, f"the {name}s",
                          at_least_one=True)):
        pid = r.int(4, f"{name} {i}: id")
        ids.check(pid, last_resort[-1].id if last_resort else None, name, i)
        seed = r.take(MLKEM_SEED_LEN, f"{name} {i}: ML-KEM seed")
        sig = r.take(SIGNATURE_LEN, f"{name} {i}: signature")
        keys: list[bytes] = []
        set_name = f"the replay set of {name} {i}"
        for j in range(_count(r, 2, MAX_BASE_KEYS_PER_LAST_RESORT, BASE_KEY_LEN, set_name)):
            k = r.take(BASE_KEY_LEN, f"{set_name}: key {j}")
            if keys and k <= keys[-1]:
                raise corrupted("NotCanonical", f"{set_name}: key {j} not above the previous one")
            keys.append(k)
        last_resort.append(LastResortPrekey(pid, seed, sig, keys))

    name = "one-time prekey"
    one_time = []
    for i in range(_count(r, 2, MAX_ONE_TIME_PREKEYS, ONE_TIME_ITEM_LEN, f"the {name}s")):
        pid = r.int(4, f"{name} {i}: id")
        ids.check(pid, one_time[-1].id if one_time else None, name, i)
        one_time.append(OneTimePrekey(pid, r.take(X25519_KEY_LEN, f"{name} {i}: private key")))

    name = "one-time PQ prekey"
    one_time_kem = []
    for i in range(_count(r, 2, MAX_ONE_TIME_PREKEYS, ONE_TIME_KEM_ITEM_LEN, f"the {name}s")):
        pid = r.int(4, f"{name} {i}: id")
        ids.check(pid, one_time_kem[-1].id if one_time_kem else None, name, i)
        seed = r.take(MLKEM_SEED_LEN, f"{name} {i}: ML-KEM seed")
        sig = r.take(SIGNATURE_LEN, f"{name} {i}: signature")
        one_time_kem.append(OneTimeKemPrekey(pid, seed, sig))

    next_id = r.int(4, "next_id")
    if ids.seen and next_id <= max(ids.seen):
        raise corrupted("InvalidValue", f"next_id {next_id} not above id {max(ids.seen)}")
    if r.remaining():
        raise corrupted("TrailingBytes", f"{r.remaining()} bytes after next_id")
    return StoredPrekeys(signed, last_resort, one_time, one_time_kem, next_id)


# --------------------------------------------------------------------------
# Encrypted form (type 0x14): the construction of §7.10 with its own type
# byte, which is part of the associated data.
# --------------------------------------------------------------------------

def storage_ad(type_byte: int = TYPE_ENCRYPTED_STORED_PREKEYS) -> bytes:
    return LABEL_STORED_STATE + u8(WIRE_VERSION) + u8(type_byte)


def seal(storage_key: bytes, nonce: bytes, stored: bytes) -> bytes:
    assert len(nonce) == NONCE_LEN
    return (u8(WIRE_VERSION) + u8(TYPE_ENCRYPTED_STORED_PREKEYS) + nonce
            + xchacha20poly1305_seal(storage_key, nonce, stored, storage_ad()))


def open_sealed(storage_key: bytes, b: bytes) -> bytes:
    """The plain stored object inside an encrypted form. The header is read
    in §6.5 order (version, type, nonce); §4.6 states no size cap for the
    encrypted form, so the cap is applied to the plain object only."""
    if len(b) < 1:
        raise corrupted("Truncated", "input ends inside the version")
    if b[0] != WIRE_VERSION:
        raise ProtocolError(UNSUPPORTED, f"version {b[0]:#04x}")
    if len(b) < 2:
        raise corrupted("Truncated", "input ends inside the type")
    if b[1] != TYPE_ENCRYPTED_STORED_PREKEYS:
        raise corrupted("UnexpectedType",
                        f"type {b[1]:#04x}, expected {TYPE_ENCRYPTED_STORED_PREKEYS:#04x}")
    if len(b) < 2 + NONCE_LEN:
        raise corrupted("Truncated", "input ends inside the nonce")
    pt = xchacha20poly1305_open(storage_key, b[2:2 + NONCE_LEN], b[2 + NONCE_LEN:], storage_ad())
    if pt is None:
        raise ProtocolError(WRONG_KEY)
    return pt


def load_encrypted(storage_key: bytes, b: bytes) -> StoredPrekeys:
    return decode(open_sealed(storage_key, b))
