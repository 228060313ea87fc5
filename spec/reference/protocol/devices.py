"""Accounts, Session IDs and signed device lists (spec §8.1–§8.3): the
type-0x05 encoding with its strict decoder, the list hash and signature,
single-version verification, first-list acceptance, updates with their
verdicts, step rules and fork evidence."""

from __future__ import annotations

from dataclasses import dataclass, field

from common import ProtocolError, Reader, ascii_, u8, u16
from primitives import (
    SIGNATURE_LEN,
    ed25519_check_public_key,
    ed25519_public,
    ed25519_sign,
    ed25519_verify_strict,
    sha256,
)
from protocol.prekeys import PUBLIC_IDENTITY_LEN, check_public_identity, signature_input
from protocol.session_v2_primitives import ed25519_pk_to_x25519

# §3.6 labels and signature type tag.
LABEL_DEVICE_LIST_HASH = ascii_("SessionRatchet/v1/device-list-hash")
LABEL_DEVICE_LIST_SIGNATURE = ascii_("SessionRatchet/v1/device-list-signature")
TAG_DEVICE_LIST = 0x11

# §6.2 object type.
TYPE_DEVICE_LIST = 0x05

# §8.2.2 bounds.
MAX_DEVICES = 16
MAX_TOMBSTONES = 1024
MAX_EXTENSIONS = 4
MAX_EXTENSION_LEN = 256
MAX_DESCRIPTION_LEN = 64
MAX_DEVICE_LIST_LEN = 61742
assert MAX_DEVICE_LIST_LEN == 75 + 16 * (121 + 64 + 4 * 260) + 2 + 1024 * 40 + 1 + 4 * 260 + 64

DEVICE_ID_LEN = 32
TOMBSTONE_LEN = 40
HASH_LEN = 32
MANDATORY_BIT = 0x8000

# §8.1
SESSION_ID_PREFIX = 0x05
RECOVERY_SEED_LEN = 16


def u64(v: int) -> bytes:
    return v.to_bytes(8, "big")


# --------------------------------------------------------------------------
# §8.1 accounts and Session IDs
# --------------------------------------------------------------------------

def account_seed(recovery_seed: bytes) -> bytes:
    """`seed = s ‖ 0^16`."""
    assert len(recovery_seed) == RECOVERY_SEED_LEN
    return recovery_seed + bytes(16)


def account_public(recovery_seed: bytes) -> bytes:
    return ed25519_public(account_seed(recovery_seed))


def session_id_of(account_pub: bytes) -> bytes:
    """`0x05 ‖ u` by the birational map; a key that does not decode to a
    point of the prime-order subgroup, or is of small order, has no Session
    ID (`InvalidEd25519Key`)."""
    return bytes([SESSION_ID_PREFIX]) + ed25519_pk_to_x25519(account_pub)


# --------------------------------------------------------------------------
# §8.2.1 content
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class Extension:
    ext_type: int
    data: bytes

    @property
    def mandatory(self) -> bool:
        return bool(self.ext_type & MANDATORY_BIT)


@dataclass
class Device:
    device_id: bytes
    public_identity: bytes
    platform: int
    client_version: tuple[int, int, int]
    added_at: int
    updated_at: int
    description: str
    extensions: list[Extension] = field(default_factory=list)


@dataclass
class Tombstone:
    device_id: bytes
    removed_at: int


@dataclass
class DeviceList:
    account_pub: bytes
    version: int
    previous_hash: bytes
    devices: list[Device]
    tombstones: list[Tombstone]
    extensions: list[Extension]
    signature: bytes = bytes(SIGNATURE_LEN)

    # -- §8.2.2 encoding ------------------------------------------------
    def body(self) -> bytes:
        out = (u8(0x01) + u8(TYPE_DEVICE_LIST) + self.account_pub + u64(self.version)
               + self.previous_hash + u8(len(self.devices)))
        for d in sorted(self.devices, key=lambda d: d.device_id):
            desc = cut_description(d.description)
            major, minor, patch = d.client_version
            out += (d.device_id + d.public_identity + u8(d.platform)
                    + u16(major) + u16(minor) + u16(patch)
                    + u64(d.added_at) + u64(d.updated_at)
                    + u8(len(desc)) + desc + encode_extensions(d.extensions))
        out += u16(len(self.tombstones))
        for t in sorted(self.tombstones, key=lambda t: t.device_id):
            out += t.device_id + u64(t.removed_at)
        out += encode_extensions(self.extensions)
        return out

    def encode(self) -> bytes:
        return self.body() + self.signature

    # -- §8.2.3 ---------------------------------------------------------
    def list_hash(self) -> bytes:
        return list_hash_of_body(self.body())

    def sign(self, seed: bytes) -> None:
        self.signature = ed25519_sign(seed, list_sig_input(self.list_hash()))

    # -- helpers --------------------------------------------------------
    def live_ids(self) -> set[bytes]:
        return {d.device_id for d in self.devices}

    def tombstone_ids(self) -> set[bytes]:
        return {t.device_id for t in self.tombstones}

    def device(self, device_id: bytes) -> Device | None:
        for d in self.devices:
            if d.device_id == device_id:
                return d
        return None


def cut_description(text: str) -> bytes:
    """§8.2.1: the longest prefix of at most 64 bytes ending on a UTF-8
    character boundary."""
    b = text.encode("utf-8")
    if len(b) <= MAX_DESCRIPTION_LEN:
        return b
    n = MAX_DESCRIPTION_LEN
    while n > 0 and (b[n] & 0xC0) == 0x80:  # b[n] continues a character: cut before it
        n -= 1
    return b[:n]


def encode_extensions(exts: list[Extension]) -> bytes:
    out = u8(len(exts))
    for e in sorted(exts, key=lambda e: e.ext_type):
        out += u16(e.ext_type) + u16(len(e.data)) + e.data
    return out


def list_hash_of_body(body: bytes) -> bytes:
    return sha256(LABEL_DEVICE_LIST_HASH + body)


def list_sig_input(list_hash: bytes) -> bytes:
    return signature_input(LABEL_DEVICE_LIST_SIGNATURE, TAG_DEVICE_LIST, [list_hash])


# --------------------------------------------------------------------------
# §8.2.2 strict decoder (§6.5 order, field by field)
# --------------------------------------------------------------------------

def _u(r: Reader, n: int, name: str) -> int:
    return int.from_bytes(r.take(n, name), "big")


def _decode_extensions(r: Reader, where: str) -> list[Extension]:
    count = _u(r, 1, f"{where} extension_count")
    if count > MAX_EXTENSIONS:
        raise ProtocolError("TooMany", f"{where}: {count} extensions")
    exts: list[Extension] = []
    for i in range(count):
        t = _u(r, 2, f"{where} extension {i} type")
        if exts and t <= exts[-1].ext_type:
            raise ProtocolError("NotCanonical", f"{where}: extension types not strictly ascending")
        n = _u(r, 2, f"{where} extension {i} len")
        if n > MAX_EXTENSION_LEN:
            raise ProtocolError("LengthExceeded", f"{where}: extension of {n} bytes")
        exts.append(Extension(t, r.take(n, f"{where} extension {i} data")))
    return exts


def decode_list(b: bytes) -> DeviceList:
    r = Reader(b, TYPE_DEVICE_LIST, "device list")
    account_pub = r.take(32, "account_pub")
    ed25519_check_public_key(account_pub)
    version = _u(r, 8, "version")
    if version == 0:
        raise ProtocolError("InvalidValue", "version 0")
    previous_hash = r.take(HASH_LEN, "previous_hash")
    if (previous_hash == bytes(HASH_LEN)) != (version == 1):
        raise ProtocolError("InvalidValue", "previous_hash is 0^32 iff version = 1")
    device_count = _u(r, 1, "device_count")
    if device_count > MAX_DEVICES:
        raise ProtocolError("TooMany", f"{device_count} devices")
    devices: list[Device] = []
    for i in range(device_count):
        did = r.take(DEVICE_ID_LEN, f"device {i} device_id")
        if devices and did <= devices[-1].device_id:
            raise ProtocolError("NotCanonical", "device ids not strictly ascending")
        pi = r.take(PUBLIC_IDENTITY_LEN, f"device {i} public_identity")
        check_public_identity(pi)
        platform = _u(r, 1, f"device {i} platform")
        major = _u(r, 2, f"device {i} major")
        minor = _u(r, 2, f"device {i} minor")
        patch = _u(r, 2, f"device {i} patch")
        added_at = _u(r, 8, f"device {i} added_at")
        updated_at = _u(r, 8, f"device {i} updated_at")
        dlen = _u(r, 1, f"device {i} description_len")
        if dlen > MAX_DESCRIPTION_LEN:
            raise ProtocolError("LengthExceeded", f"description of {dlen} bytes")
        raw = r.take(dlen, f"device {i} description")
        try:
            desc = raw.decode("utf-8", errors="strict")
        except UnicodeDecodeError:
            raise ProtocolError("InvalidUtf8", f"device {i} description") from None
        exts = _decode_extensions(r, f"device {i}")
        devices.append(Device(did, pi, platform, (major, minor, patch), added_at, updated_at,
                              desc, exts))
    tcount = _u(r, 2, "tombstone_count")
    if tcount > MAX_TOMBSTONES:
        raise ProtocolError("TooMany", f"{tcount} tombstones")
    if r.remaining() < TOMBSTONE_LEN * tcount:
        raise ProtocolError("Truncated", "device list: tombstones")
    live = {d.device_id for d in devices}
    tombstones: list[Tombstone] = []
    for i in range(tcount):
        did = r.take(DEVICE_ID_LEN, f"tombstone {i} device_id")
        if tombstones and did <= tombstones[-1].device_id:
            raise ProtocolError("NotCanonical", "tombstone ids not strictly ascending")
        if did in live:
            raise ProtocolError("InvalidValue", "id is both live and a tombstone")
        tombstones.append(Tombstone(did, _u(r, 8, f"tombstone {i} removed_at")))
    exts = _decode_extensions(r, "list")
    signature = r.take(SIGNATURE_LEN, "signature")
    if r.remaining():
        raise ProtocolError("TrailingBytes", f"device list: {r.remaining()} bytes")
    return DeviceList(account_pub, version, previous_hash, devices, tombstones, exts, signature)


# --------------------------------------------------------------------------
# §8.2.4 accepting a list
# --------------------------------------------------------------------------

def signature_ok(lst: DeviceList) -> bool:
    try:
        ed25519_verify_strict(lst.account_pub, list_sig_input(lst.list_hash()), lst.signature)
        return True
    except ProtocolError:
        return False


def known_extension(ext_type: int) -> bool:
    """This version defines no extension types (§8.2.2)."""
    return False


def check_single_version(lst: DeviceList) -> None:
    """(a) strict signature (`BadSignature`), then (b) no unknown mandatory
    extension in the list or any entry (`UnknownMandatoryExtension`)."""
    if not signature_ok(lst):
        raise ProtocolError("BadSignature", f"version {lst.version}")
    for e in lst.extensions + [e for d in lst.devices for e in d.extensions]:
        if e.mandatory and not known_extension(e.ext_type):
            raise ProtocolError("UnknownMandatoryExtension", f"type {e.ext_type:#06x}")


def accept_first(lst: DeviceList, expected_session_id: bytes | None = None,
                 expected_account_pub: bytes | None = None) -> DeviceList:
    """First list for an account: Session ID (or key) match, then the
    single-version check."""
    match = False
    if expected_account_pub is not None and lst.account_pub == expected_account_pub:
        match = True
    if expected_session_id is not None:
        try:
            match = match or session_id_of(lst.account_pub) == expected_session_id
        except ProtocolError:
            pass  # no Session ID: cannot match
    if not match:
        raise ProtocolError("WrongAccount", "account_pub does not match the expected account")
    check_single_version(lst)
    return lst


def check_step(p: DeviceList, n: DeviceList) -> None:
    """Step rules from `p` to its successor `n`, in the listed order."""
    if n.account_pub != p.account_pub:
        raise ProtocolError("WrongAccount", "step: account key changed")
    if n.previous_hash != p.list_hash():
        raise ProtocolError("ChainMismatch", f"version {n.version} does not name version {p.version}")
    n_live, n_tomb = n.live_ids(), n.tombstone_ids()
    for t in p.tombstones:
        if t.device_id in n_live:
            raise ProtocolError("TombstoneResurrection", t.device_id.hex())
        if t.device_id not in n_tomb:
            raise ProtocolError("TombstoneDropped", t.device_id.hex())
    for d in p.devices:
        if d.device_id in n_tomb:
            continue
        nd = n.device(d.device_id)
        if nd is None:
            raise ProtocolError("DeviceVanished", d.device_id.hex())
        if nd.public_identity != d.public_identity or nd.added_at != d.added_at:
            raise ProtocolError("IdentityChanged", d.device_id.hex())


class ForkError(ProtocolError):
    def __init__(self, a: DeviceList, b: DeviceList):
        super().__init__("Fork", f"two versions {a.version}")
        self.evidence = (a.encode(), b.encode())


class GapError(ProtocolError):
    def __init__(self, first_missing: int):
        super().__init__("Gap", f"first missing version {first_missing}")
        self.first_missing = first_missing


def update(held: DeviceList, offered: bytes, intermediates: list[bytes]) -> tuple[str, DeviceList]:
    """§8.2.4 update. Returns ("Advanced", new held list) or ("Unchanged",
    held); every other verdict is raised with its class. The offered list is
    decoded first, then the intermediates in order (a decoding failure is
    reported with its §6.5 class)."""
    u_list = decode_list(offered)
    inter = [decode_list(b) for b in intermediates]
    h, u = held.version, u_list.version
    # 1.
    if u_list.account_pub != held.account_pub:
        raise ProtocolError("WrongAccount", "offered list of another account")
    # 2., 3.
    if u == h:
        if u_list.list_hash() == held.list_hash():
            return "Unchanged", held
        if signature_ok(u_list):
            raise ForkError(held, u_list)
        raise ProtocolError("BadSignature", "offered list (same version)")
    # 4.
    if u < h:
        if not signature_ok(u_list):
            raise ProtocolError("BadSignature", "offered list (older version)")
        raise ProtocolError("Rollback", f"offered version {u} < held {h}")
    # 5.
    check_single_version(u_list)
    c = held
    for i in inter:
        if i.version >= u:
            break
        if i.version == h and c is held:
            if i.list_hash() != held.list_hash() and signature_ok(i):
                raise ForkError(held, i)
        if i.version <= c.version:
            continue
        if i.version != c.version + 1:
            break
        if i.account_pub != held.account_pub:
            raise ProtocolError("WrongAccount", f"intermediate version {i.version}")
        check_single_version(i)
        check_step(c, i)
        c = i
    # 6.
    if c.version + 1 != u:
        raise GapError(c.version + 1)
    # 7.
    check_step(c, u_list)
    return "Advanced", u_list


def check_fork_evidence(a: bytes, b: bytes) -> None:
    """Anyone can re-check fork evidence: both decode, same account key and
    version, different hashes, valid signatures."""
    la, lb = decode_list(a), decode_list(b)
    if la.account_pub != lb.account_pub:
        raise ProtocolError("NotAFork", "different accounts")
    if la.version != lb.version:
        raise ProtocolError("NotAFork", "different versions")
    if la.list_hash() == lb.list_hash():
        raise ProtocolError("NotAFork", "same list")
    if not (signature_ok(la) and signature_ok(lb)):
        raise ProtocolError("NotAFork", "a signature does not verify")
