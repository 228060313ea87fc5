"""Client records at rest (spec §10.3): the keys derived from the storage
key, record names and store keys, the sealed value (bound to its owner, the
head's device id) and the open order, the generation checks against the
held head and the anchors (§10.4), and the plain contents of §10.3.1.

Error classes of opening are variant paths of the record error (§10.6):
`Corrupted/<reason>` (`TooLong`, `Truncated`, `BadVersion`, `WrongType`,
`Authentication`), `NewerVersion` and `WrongKey` (the head's only). The
generation checks give `RecordRolledBack`, `Corrupted/Inconsistent`, or
`Restart` (another process committed: the call starts over, §10.5; not an
error a caller sees). The plain decoders of §10.3.1 raise the §6.5 class
of the defect (`Truncated`, `TrailingBytes`, `InvalidFlags`,
`NotCanonical`, …), which the device reports as
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
    k_log: bytes             # keys the identifier tags of log lines (§10.10)


def derive_keys(storage_key: bytes) -> RecordKeys:
    """`K_rec ‖ K_name ‖ check ‖ K_log = HKDF-SHA256(salt = "", IKM = SK,
    info = LABEL_RECORD_KEYS, L = 112)`: bytes 0–31, 32–63, 64–79, 80–111."""
    okm = hkdf(b"", storage_key, LABEL_RECORD_KEYS, 112)
    return RecordKeys(okm[:32], okm[32:64], okm[64:80], okm[80:112])


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

def _ad(header: bytes, name: bytes, owner: bytes) -> bytes:
    """`LABEL_STORED_RECORD ‖ value[0..27] ‖ name` for the head, and
    `‖ device_id` (the owner, 32 bytes: the head's) for every other record."""
    assert len(owner) == 32
    ad = LABEL_STORED_RECORD + header + name
    return ad if name[0] == KIND_HEAD else ad + owner


def seal(keys: RecordKeys, name: bytes, generation: int, nonce: bytes, plain: bytes,
         owner: bytes) -> bytes:
    """`0x01 ‖ 0x19 ‖ kind ‖ u64(generation) ‖ check ‖ nonce ‖
    XChaCha20-Poly1305(K_rec, nonce, plain, AD)` of the device `owner`
    (not bound into the head's AD)."""
    assert len(nonce) == NONCE_LEN
    header = u8(WIRE_VERSION) + u8(TYPE_RECORD) + name[:1] + u64(generation) + keys.check
    return header + nonce + xchacha20poly1305_seal(keys.k_rec, nonce, plain,
                                                   _ad(header, name, owner))


def corrupted(reason: str, detail: str = "") -> ProtocolError:
    return ProtocolError(f"Corrupted/{reason}", detail)


def open_record(keys: RecordKeys, name: bytes, value: bytes,
                owner: bytes) -> tuple[int, bytes]:
    """Steps 1–8 of "Opening a record" (§10.3), in that order, for the
    device `owner`; the first failing check decides. Returns (generation,
    plain). Steps 9 and 9a are `check_generation`."""
    if len(value) > MAX_RECORD_LEN:                                 # 1
        raise corrupted("TooLong", f"{len(value)} bytes")
    if not value:                                                   # 2
        raise corrupted("Truncated", "empty")
    if value[0] == 0x00:                                            # 3
        raise corrupted("BadVersion", "version 0x00")
    if value[0] != WIRE_VERSION:
        raise ProtocolError("NewerVersion", f"version {value[0]:#04x}")
    if len(value) < FIXED_LEN:                                      # 4
        raise corrupted("Truncated", f"{len(value)} < {FIXED_LEN} fixed bytes")
    if value[1] != TYPE_RECORD or value[2] != name[0]:              # 5
        raise corrupted("WrongType", f"type {value[1]:#04x}, kind {value[2]:#04x}")
    if len(value) - FIXED_LEN < TAG_LEN:                            # 6
        raise corrupted("Truncated", "shorter than the tag")
    if not _hmac.compare_digest(value[11:HEADER_LEN], keys.check):  # 7
        # Only the head tells a wrong key; the head proved the key of the
        # others, so theirs differing is a record of another store.
        if name[0] == KIND_HEAD:
            raise ProtocolError("WrongKey")
        raise corrupted("Authentication", "the check differs (not the head)")
    plain = xchacha20poly1305_open(keys.k_rec, value[HEADER_LEN:FIXED_LEN],
                                   value[FIXED_LEN:], _ad(value[:HEADER_LEN], name, owner))
    if plain is None:                                               # 8
        raise corrupted("Authentication")
    return int.from_bytes(value[3:11], "big"), plain


def check_generation(kind: int, generation: int, held: int, anchor: int | None = None,
                     head_moved: bool = False) -> None:
    """Steps 9 and 9a (§10.3, §10.4): a record's generation against the
    head's the device holds (`held`) and the record's anchor (None for a
    record without one: the head itself and session sets). Newer than
    either: another process committed (`Restart`), unless the store's head
    is still the held one (`head_moved` false): `Corrupted/Inconsistent`.
    Older than its anchor: `RecordRolledBack`."""
    if generation > held or (anchor is not None and generation > anchor):
        if head_moved:
            raise ProtocolError("Restart", f"{KIND_NAMES[kind]} at {generation}")
        newer = (f"the head's generation {held}" if generation > held
                 else f"its anchor {anchor}")
        raise corrupted("Inconsistent", f"the {KIND_NAMES[kind]} record is at generation "
                                        f"{generation}, newer than {newer}; the head has "
                                        f"not moved")
    if anchor is not None and generation < anchor:
        raise ProtocolError("RecordRolledBack", f"the {KIND_NAMES[kind]} record is at "
                                                f"generation {generation} but was written at "
                                                f"{anchor}")


# --------------------------------------------------------------------------
# Plain contents (§10.3.1). Each decoder follows §6.5: version, type, the
# fields in order with bounds checks, no trailing bytes.
# --------------------------------------------------------------------------

def _finish(r: Reader, what: str) -> None:
    if r.remaining():
        raise ProtocolError("TrailingBytes", f"{what}: {r.remaining()} bytes")


def _int(r: Reader, n: int, name: str) -> int:
    return int.from_bytes(r.take(n, name), "big")


# The head's anchors (§10.3.1, §10.4), in their order.
ANCHORS = ("identity", "account", "prekeys", "contact_index", "own_peer")
HEAD_LEN = 123


@dataclass
class Anchors:
    """The generation each rarely written record was last written at."""
    identity: int = 0
    account: int = 0            # 0 when the account key is not held
    prekeys: int = 0
    contact_index: int = 0
    own_peer: int = 0

    def of(self, kind: int) -> int | None:
        """The anchor of the fixed-name kind (the own peer's is `own_peer`)."""
        return {KIND_IDENTITY: self.identity, KIND_ACCOUNT: self.account,
                KIND_PREKEYS: self.prekeys, KIND_CONTACT_INDEX: self.contact_index}.get(kind)


@dataclass
class Head:
    device_id: bytes
    account_key: bytes
    account_held: bool
    signed_prekey_rotated_at: int
    last_resort_prekey_rotated_at: int
    anchors: Anchors

    def encode(self) -> bytes:
        return (u8(WIRE_VERSION) + u8(TYPE_HEAD) + self.device_id + self.account_key
                + u8(FLAG_ACCOUNT_HELD if self.account_held else 0)
                + u64(self.signed_prekey_rotated_at) + u64(self.last_resort_prekey_rotated_at)
                + b"".join(u64(getattr(self.anchors, a)) for a in ANCHORS))


def decode_head(b: bytes) -> Head:
    """`device_id (32) ‖ account key (32) ‖ u8(flags) ‖ u64 ‖ u64` (the
    rotation times), then the five u64 anchors; 123 bytes."""
    r = Reader(b, TYPE_HEAD, "head")
    device_id = r.take(32, "device_id")
    account = r.take(32, "account key")
    flags = r.take(1, "flags")[0]
    if flags & ~FLAG_ACCOUNT_HELD:
        raise ProtocolError("InvalidFlags", f"head flags {flags:#04x}")
    signed = _int(r, 8, "signed prekey rotated at")
    last_resort = _int(r, 8, "last-resort prekey rotated at")
    anchors = Anchors(*(_int(r, 8, f"{a} anchor") for a in ANCHORS))
    head = Head(device_id, account, bool(flags & FLAG_ACCOUNT_HELD), signed, last_resort,
                anchors)
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


def decode_index(b: bytes) -> dict[bytes, int]:
    """`u16(n) ‖ n × (account key (32) ‖ u64(generation of its peer
    record))`, strictly ascending by account key: {account key: the peer
    record's anchor}, in that order."""
    r = Reader(b, TYPE_CONTACT_INDEX, "contact index")
    n = _int(r, 2, "contact count")
    if n > MAX_CONTACTS:
        raise ProtocolError("TooMany", f"{n} contacts")
    out: dict[bytes, int] = {}
    last = None
    for i in range(n):
        key = r.take(32, f"contact {i}")
        if last is not None and key <= last:
            raise ProtocolError("NotCanonical", "contacts not strictly ascending")
        last = key
        out[key] = _int(r, 8, f"contact {i} peer generation")
    _finish(r, "contact index")
    return out


def encode_index(contacts: dict[bytes, int]) -> bytes:
    return (u8(WIRE_VERSION) + u8(TYPE_CONTACT_INDEX) + u16(len(contacts))
            + b"".join(k + u64(contacts[k]) for k in sorted(contacts)))


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
