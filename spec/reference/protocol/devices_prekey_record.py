"""Prekey records and count hiding (spec §8.4): slot keys, building from the
listed draws, the type-0x06 encoding with its strict decoder, opening."""

from __future__ import annotations

from common import ProtocolError, Reader, ascii_, u8
from primitives import hkdf, xchacha20poly1305_open, xchacha20poly1305_seal
from protocol.devices import DeviceList
from protocol.prekeys import Bundle

LABEL_PREKEY_SLOT = ascii_("SessionRatchet/v1/prekey-slot")

TYPE_PREKEY_RECORD = 0x06
SLOT_LEN = 1459
NONCE_LEN = 24
BUNDLE_LEN_NO_ONE_TIME = 1419
MAX_SLOTS = 16
SLOT_AD = bytes([0x01, TYPE_PREKEY_RECORD])
assert SLOT_LEN == NONCE_LEN + BUNDLE_LEN_NO_ONE_TIME + 16
MAX_RECORD_LEN = 3 + MAX_SLOTS * SLOT_LEN
assert MAX_RECORD_LEN == 23347


def slot_count(n: int) -> int:
    """`4·⌈max(n, 1)/4⌉`."""
    return 4 * -(-max(n, 1) // 4)


def slot_key(account_pub: bytes, device_id: bytes, public_identity: bytes) -> bytes:
    return hkdf(account_pub, device_id + public_identity, LABEL_PREKEY_SLOT, 32)


def draw_sizes(n: int) -> list[int]:
    """§8.4.2 draw order: a 24-byte nonce per live device (ascending id),
    then one `SLOT_LEN` draw per dummy slot."""
    return [NONCE_LEN] * n + [SLOT_LEN] * (slot_count(n) - n)


def check_bundles(lst: DeviceList, bundles: list[tuple[bytes, bytes]]) -> dict[bytes, bytes]:
    """The builder's preconditions (§8.4.2): exactly one bundle per live
    device, none carrying one-time prekeys, each verifying for the identity
    the list gives that device. Returns device_id -> bundle bytes."""
    out: dict[bytes, bytes] = {}
    for did, b in bundles:
        if did in out:
            raise ProtocolError("DuplicateBundle", did.hex())
        dev = lst.device(did)
        if dev is None:
            raise ProtocolError("UnknownDevice", did.hex())
        dec = Bundle.decode(b)
        if dec.opk is not None or dec.pqopk is not None:
            raise ProtocolError("OneTimePrekeyInRecord", did.hex())
        dec.verify(expected_identity=dev.public_identity)
        out[did] = b
    missing = lst.live_ids() - set(out)
    if missing:
        raise ProtocolError("MissingBundle", f"{len(missing)} live devices without a bundle")
    return out


def build_record(lst: DeviceList, bundles: list[tuple[bytes, bytes]], draws: list[bytes]) -> bytes:
    """Build the record from the listed draws (one byte string per draw, in
    §8.4.2 order). Nothing is drawn if a precondition fails."""
    by_id = check_bundles(lst, bundles)
    devices = sorted(lst.devices, key=lambda d: d.device_id)
    n = len(devices)
    sizes = draw_sizes(n)
    if [len(d) for d in draws] != sizes:
        raise ValueError(f"draws of sizes {[len(d) for d in draws]}, expected {sizes}")
    slots = []
    for dev, nonce in zip(devices, draws[:n]):
        key = slot_key(lst.account_pub, dev.device_id, dev.public_identity)
        slots.append(nonce + xchacha20poly1305_seal(key, nonce, by_id[dev.device_id], SLOT_AD))
    slots.extend(draws[n:])
    assert all(len(s) == SLOT_LEN for s in slots)
    slots.sort()
    return encode_record(slots)


def encode_record(slots: list[bytes]) -> bytes:
    return u8(0x01) + u8(TYPE_PREKEY_RECORD) + u8(len(slots)) + b"".join(slots)


def decode_record(b: bytes) -> list[bytes]:
    r = Reader(b, TYPE_PREKEY_RECORD, "prekey record")
    count = r.take(1, "slot_count")[0]
    if count > MAX_SLOTS:
        raise ProtocolError("TooMany", f"{count} slots")
    if count == 0 or count % 4:
        raise ProtocolError("InvalidValue", f"slot count {count}")
    slots: list[bytes] = []
    for i in range(count):
        s = r.take(SLOT_LEN, f"slot {i}")
        if slots and s <= slots[-1]:
            raise ProtocolError("NotCanonical", "slots not strictly ascending")
        slots.append(s)
    if r.remaining():
        raise ProtocolError("TrailingBytes", f"prekey record: {r.remaining()} bytes")
    return slots


def open_record(lst: DeviceList, record: bytes) -> dict[bytes, Bundle]:
    """§8.4.4: device_id -> decoded, verified bundle for every device whose
    key opens a slot; devices whose key opens none are missing."""
    slots = decode_record(record)
    found: dict[bytes, Bundle] = {}
    for dev in sorted(lst.devices, key=lambda d: d.device_id):
        key = slot_key(lst.account_pub, dev.device_id, dev.public_identity)
        opened = None
        for s in slots:
            pt = xchacha20poly1305_open(key, s[:NONCE_LEN], s[NONCE_LEN:], SLOT_AD)
            if pt is None:
                continue
            if opened is not None:
                raise ProtocolError("DuplicateSlot", dev.device_id.hex())
            opened = pt
        if opened is None:
            continue
        try:
            bundle = Bundle.decode(opened)
            bundle.verify(expected_identity=dev.public_identity)
        except ProtocolError as e:
            raise ProtocolError("InvalidBundle", f"{dev.device_id.hex()}: {e.cls}") from None
        found[dev.device_id] = bundle
    return found
