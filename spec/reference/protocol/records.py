"""Client records at rest (spec §10.3): the keys derived from the storage
key, record names and store keys, the sealed value and the open order, and
the plain contents of §10.3.1.

Error classes of opening are variant paths of the record error (§10.6):
`Corrupted/<reason>` (`TooLong`, `Truncated`, `WrongType`,
`Authentication`), `NewerVersion` and `WrongKey`. The plain decoders of
§10.3.1 raise the §6.5 class of the defect (`Truncated`, `TrailingBytes`,
`InvalidFlags`, `NotCanonical`, …), which the device reports as
`Corrupted/Malformed/<class>` (§10.3 step 10); contradictions between
records are `Corrupted/Inconsistent` (step 11).
"""

from __future__ import annotations

import hmac as _hmac
from dataclasses import dataclass

from common import WIRE_VERSION, ProtocolError, Reader, ascii_, u8, u16, u32
from primitives import (
    ed25519_public,
    hkdf,
    hmac_sha256,
    xchacha20poly1305_open,
    xchacha20poly1305_seal,
)
from protocol import ratchet_state
from protocol.devices import DeviceList, decode_list, signature_ok, u64
from protocol.prekeys import Bundle, DeviceIdentity

LABEL_RECORD_KEYS = ascii_("SessionRatchet/v1/record-keys")
LABEL_STORED_RECORD = ascii_("SessionRatchet/v1/stored-record")

# §10.3 "Kinds".
KIND_HEAD = 0x01
KIND_IDENTITY = 0x02
KIND_ACCOUNT = 0x03
KIND_PREKEYS = 0x04
KIND_CONTACT_INDEX = 0x05
KIND_PEER = 0x06
KIND_SESSIONS = 0x07
KIND_NAMES = {KIND_HEAD: "head", KIND_IDENTITY: "identity", KIND_ACCOUNT: "account",
              KIND_PREKEYS: "prekeys", KIND_CONTACT_INDEX: "contact index", KIND_PEER: "peer",
              KIND_SESSIONS: "session set"}
# Kinds whose name carries an account, and a device (§10.3 table).
KINDS_WITH_ACCOUNT = (KIND_PEER, KIND_SESSIONS)
KINDS_WITH_DEVICE = (KIND_SESSIONS,)

# Object types (§10.3, §10.3.1).
TYPE_RECORD = 0x19
TYPE_HEAD = 0x1A
TYPE_STORED_IDENTITY = 0x1B
TYPE_STORED_ACCOUNT = 0x1C
TYPE_CONTACT_INDEX = 0x1D
TYPE_STORED_PEER = 0x17
TYPE_SESSION_SET = 0x18

NAME_LEN = 65
KEY_LEN = 17
CHECK_LEN = 16
NONCE_LEN = 24
TAG_LEN = 16
# version, type, kind, generation, check: everything before the nonce.
HEADER_LEN = 1 + 1 + 1 + 8 + CHECK_LEN          # 27
FIXED_LEN = HEADER_LEN + NONCE_LEN              # 51
MAX_RECORD_LEN = 4 * 2**20                      # 4 MiB
OVERHEAD = FIXED_LEN + TAG_LEN                  # 67, §10.9

FLAG_ACCOUNT_HELD = 0x01
MAX_CONTACTS = 4096
# §8.9 bounds the peer-record rows reuse.
MAX_BUNDLES = 16
MAX_SETS_ARCHIVED = 3
MAX_PART_LEN = 1 << 20


# --------------------------------------------------------------------------
# Keys, names, store keys
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class RecordKeys:
    k_rec: bytes
    k_name: bytes
    check: bytes


def derive_keys(storage_key: bytes) -> RecordKeys:
    """`K_rec ‖ K_name ‖ check = HKDF-SHA256(salt = "", IKM = SK,
    info = LABEL_RECORD_KEYS, L = 80)`."""
    okm = hkdf(b"", storage_key, LABEL_RECORD_KEYS, 80)
    return RecordKeys(okm[:32], okm[32:64], okm[64:80])


def record_name(kind: int, account: bytes = bytes(32), device: bytes = bytes(32)) -> bytes:
    """`kind (1) ‖ account (32) ‖ device (32)`, zeros where the kind has none."""
    assert len(account) == 32 and len(device) == 32
    return u8(kind) + account + device


def record_key(keys: RecordKeys, name: bytes) -> bytes:
    """`0x01 ‖ 0^16` for the head; `kind ‖ HMAC-SHA256(K_name, name)[0..16]`
    for every other record."""
    if name[0] == KIND_HEAD:
        return u8(KIND_HEAD) + bytes(16)
    return name[:1] + hmac_sha256(keys.k_name, name)[:16]


# --------------------------------------------------------------------------
# The value: sealing and the open order
# --------------------------------------------------------------------------

def _ad(header: bytes, name: bytes) -> bytes:
    return LABEL_STORED_RECORD + header + name


def seal(keys: RecordKeys, name: bytes, generation: int, nonce: bytes, plain: bytes) -> bytes:
    """`0x01 ‖ 0x19 ‖ kind ‖ u64(generation) ‖ check ‖ nonce ‖
    XChaCha20-Poly1305(K_rec, nonce, plain, AD = LABEL_STORED_RECORD ‖
    value[0..27] ‖ name)`."""
    assert len(nonce) == NONCE_LEN
    header = u8(WIRE_VERSION) + u8(TYPE_RECORD) + name[:1] + u64(generation) + keys.check
    return header + nonce + xchacha20poly1305_seal(keys.k_rec, nonce, plain, _ad(header, name))


def corrupted(reason: str, detail: str = "") -> ProtocolError:
    return ProtocolError(f"Corrupted/{reason}", detail)


def open_record(keys: RecordKeys, name: bytes, value: bytes) -> tuple[int, bytes]:
    """Steps 1–8 of "Opening a record" (§10.3), in that order; the first
    failing check decides. Returns (generation, plain)."""
    if len(value) > MAX_RECORD_LEN:                                 # 1
        raise corrupted("TooLong", f"{len(value)} bytes")
    if not value:                                                   # 2
        raise corrupted("Truncated", "empty")
    if value[0] != WIRE_VERSION:                                    # 3
        raise ProtocolError("NewerVersion", f"version {value[0]:#04x}")
    if len(value) < FIXED_LEN:                                      # 4
        raise corrupted("Truncated", f"{len(value)} < {FIXED_LEN} fixed bytes")
    if value[1] != TYPE_RECORD or value[2] != name[0]:              # 5
        raise corrupted("WrongType", f"type {value[1]:#04x}, kind {value[2]:#04x}")
    if len(value) - FIXED_LEN < TAG_LEN:                            # 6
        raise corrupted("Truncated", "shorter than the tag")
    if not _hmac.compare_digest(value[11:HEADER_LEN], keys.check):  # 7
        raise ProtocolError("WrongKey")
    plain = xchacha20poly1305_open(keys.k_rec, value[HEADER_LEN:FIXED_LEN],
                                   value[FIXED_LEN:], _ad(value[:HEADER_LEN], name))
    if plain is None:                                               # 8
        raise corrupted("Authentication")
    return int.from_bytes(value[3:11], "big"), plain


# --------------------------------------------------------------------------
# Plain contents (§10.3.1). Each decoder follows §6.5: version, type, the
# fields in order with bounds checks, no trailing bytes.
# --------------------------------------------------------------------------

def _finish(r: Reader, what: str) -> None:
    if r.remaining():
        raise ProtocolError("TrailingBytes", f"{what}: {r.remaining()} bytes")


def _int(r: Reader, n: int, name: str) -> int:
    return int.from_bytes(r.take(n, name), "big")


@dataclass
class Head:
    device_id: bytes
    account_key: bytes
    account_held: bool
    signed_prekey_rotated_at: int
    last_resort_prekey_rotated_at: int

    def encode(self) -> bytes:
        return (u8(WIRE_VERSION) + u8(TYPE_HEAD) + self.device_id + self.account_key
                + u8(FLAG_ACCOUNT_HELD if self.account_held else 0)
                + u64(self.signed_prekey_rotated_at) + u64(self.last_resort_prekey_rotated_at))


def decode_head(b: bytes) -> Head:
    r = Reader(b, TYPE_HEAD, "head")
    device_id = r.take(32, "device_id")
    account = r.take(32, "account key")
    flags = r.take(1, "flags")[0]
    if flags & ~FLAG_ACCOUNT_HELD:
        raise ProtocolError("InvalidFlags", f"head flags {flags:#04x}")
    head = Head(device_id, account, bool(flags & FLAG_ACCOUNT_HELD),
                _int(r, 8, "signed prekey rotated at"), _int(r, 8, "last-resort prekey rotated at"))
    _finish(r, "head")
    return head


def decode_identity(b: bytes) -> DeviceIdentity:
    r = Reader(b, TYPE_STORED_IDENTITY, "identity")
    identity = DeviceIdentity(r.take(32, "Ed25519 seed"), r.take(32, "X25519 secret"))
    _finish(r, "identity")
    return identity


def encode_identity(identity: DeviceIdentity) -> bytes:
    return (u8(WIRE_VERSION) + u8(TYPE_STORED_IDENTITY) + identity.ed25519_seed
            + identity.x25519_secret)


def decode_account(b: bytes) -> bytes:
    """The account's Ed25519 seed."""
    r = Reader(b, TYPE_STORED_ACCOUNT, "account")
    seed = r.take(32, "Ed25519 seed")
    _finish(r, "account")
    return seed


def encode_account(seed: bytes) -> bytes:
    return u8(WIRE_VERSION) + u8(TYPE_STORED_ACCOUNT) + seed


def account_key_of(seed: bytes) -> bytes:
    return ed25519_public(seed)


def decode_index(b: bytes) -> list[bytes]:
    r = Reader(b, TYPE_CONTACT_INDEX, "contact index")
    n = _int(r, 2, "contact count")
    if n > MAX_CONTACTS:
        raise ProtocolError("TooMany", f"{n} contacts")
    out: list[bytes] = []
    for i in range(n):
        key = r.take(32, f"contact {i}")
        if out and key <= out[-1]:
            raise ProtocolError("NotCanonical", "contacts not strictly ascending")
        out.append(key)
    _finish(r, "contact index")
    return out


def encode_index(contacts: list[bytes]) -> bytes:
    return (u8(WIRE_VERSION) + u8(TYPE_CONTACT_INDEX) + u16(len(contacts))
            + b"".join(sorted(contacts)))


class _StoredReader(Reader):
    """A Reader for stored objects: the record bounds them (4 MiB), not the
    76,800-byte wire limit."""

    def __init__(self, data: bytes, obj_type: int, obj_name: str):
        self.data = data
        self.pos = 0
        self.obj_name = obj_name
        version = self.take(1, "version")[0]
        if version != WIRE_VERSION:
            raise ProtocolError("UnsupportedVersion", f"{obj_name}: version {version:#04x}")
        t = self.take(1, "type")[0]
        if t != obj_type:
            raise ProtocolError("UnexpectedType", f"{obj_name}: type {t:#04x}")


def _part(r: Reader, name: str) -> bytes:
    n = r.take_u32(f"{name} length")
    if n > MAX_PART_LEN:
        raise ProtocolError("TooLong", f"{name}: {n} bytes")
    return r.take(n, name)


@dataclass
class Peer:
    list: DeviceList
    list_bytes: bytes
    bundles: dict            # device_id -> (Bundle, encoding)

    def encode(self) -> bytes:
        out = u8(WIRE_VERSION) + u8(TYPE_STORED_PEER) + u32(len(self.list_bytes)) + self.list_bytes
        out += u8(len(self.bundles))
        for did in sorted(self.bundles):
            enc = self.bundles[did][1]
            out += did + u32(len(enc)) + enc
        return out


def decode_peer(b: bytes, account: bytes) -> Peer:
    """`u32(n) ‖ list`, `u8(bundles) ‖ bundles` (the first three rows of a
    §8.9 peer record). The list must verify under `account` (the name's)
    and each bundle must name an active device of it and verify for that
    device's identity; those failures are `Inconsistent` (step 11)."""
    r = _StoredReader(b, TYPE_STORED_PEER, "peer")
    list_bytes = _part(r, "device list")
    lst = decode_list(list_bytes)
    if lst.account_pub != account or not signature_ok(lst):
        raise ProtocolError("Inconsistent", "the list does not verify under the name's account")
    n = r.take(1, "bundle count")[0]
    if n > MAX_BUNDLES:
        raise ProtocolError("TooMany", f"{n} bundles")
    bundles: dict = {}
    last = None
    for i in range(n):
        did = r.take(32, f"bundle {i} device")
        if last is not None and did <= last:
            raise ProtocolError("NotCanonical", "bundles not strictly ascending")
        last = did
        enc = _part(r, f"bundle {i}")
        bundle = Bundle.decode(enc)
        entry = lst.device(did)
        if entry is None:
            raise ProtocolError("Inconsistent", "a bundle for a device the list does not hold")
        try:
            bundle.verify(expected_identity=entry.public_identity)
        except ProtocolError as e:
            raise ProtocolError("Inconsistent", f"bundle {i}: {e.cls}") from None
        bundles[did] = (bundle, enc)
    _finish(r, "peer")
    return Peer(lst, list_bytes, bundles)


@dataclass
class SessionEntry:
    created: int
    stale: bool
    heal: bool
    stored: bytes            # the plain stored session (§7.10, type 0x10)


@dataclass
class SessionSet:
    latest: int
    active: bool
    entries: list            # [SessionEntry], the active one first

    @property
    def archived(self) -> int:
        return len(self.entries) - int(self.active)

    def encode(self) -> bytes:
        out = (u8(WIRE_VERSION) + u8(TYPE_SESSION_SET) + u64(self.latest) + u8(int(self.active))
               + u8(self.archived))
        for e in self.entries:
            out += (u64(e.created) + u8(int(e.stale) | (int(e.heal) << 1))
                    + u32(len(e.stored)) + e.stored)
        return out


def decode_session_set(b: bytes) -> SessionSet:
    """`u64(latest) ‖ u8(active present) ‖ u8(archived) ‖ entries` (one §8.9
    set without its device_id); every stored session decodes (§7.10) and is
    canonical."""
    r = _StoredReader(b, TYPE_SESSION_SET, "session set")
    latest = _int(r, 8, "latest")
    active = r.take(1, "active present")[0]
    if active > 1:
        raise ProtocolError("InvalidFlags", f"active present {active}")
    archived = r.take(1, "archived count")[0]
    if archived > MAX_SETS_ARCHIVED:
        raise ProtocolError("TooMany", f"{archived} archived sessions")
    entries = []
    for i in range(active + archived):
        created = _int(r, 8, f"entry {i} created")
        flags = r.take(1, f"entry {i} flags")[0]
        if flags & ~0x03:
            raise ProtocolError("InvalidFlags", f"entry {i} flags {flags:#04x}")
        stored = _part(r, f"entry {i} session")
        try:
            session = ratchet_state.decode(stored)
        except ProtocolError as e:
            raise ProtocolError("Inconsistent", f"entry {i}: the session does not load "
                                                f"({e.cls})") from None
        if ratchet_state.encode(session) != stored:
            raise ProtocolError("Inconsistent", f"entry {i}: the session is not canonical")
        stale = bool(flags & 0x01)
        if i == 0 and active and stale:
            raise ProtocolError("Inconsistent", "the active session is stale")
        entries.append(SessionEntry(created, stale, bool(flags & 0x02), stored))
    _finish(r, "session set")
    return SessionSet(latest, bool(active), entries)
