"""Fan-out envelopes (spec §8.7): sizes, slot keys, sealing from listed
draws, the type-0x07 codec with its strict decoder, opening."""

from __future__ import annotations

from common import MAX_WIRE_LEN, ProtocolError, Reader, ascii_, u8, u32
from primitives import chacha20poly1305_open, chacha20poly1305_seal, dh, hkdf, x25519_public

LABEL_ENVELOPE_SLOT = ascii_("SessionRatchet/v1/envelope-slot")

TYPE_ENVELOPE = 0x07
HINT_LEN = 16
PAD = 256
SLOT_BUCKET = 4
MAX_SLOTS = 32
MAX_RECIPIENTS = 32
HEADER_LEN = 2 + 32 + 1 + 4
OVERHEAD = 4 + 16
MAX_BODY_LEN = 18944
MAX_PAYLOAD_LEN = MAX_BODY_LEN - OVERHEAD
ZERO_NONCE = bytes(12)


def slot_count(n: int) -> int:
    """`4·⌈n/4⌉` (§8.7.1)."""
    return SLOT_BUCKET * -(-n // SLOT_BUCKET)


def body_len(longest: int) -> int:
    """`256·⌈(m + 20)/256⌉` (§8.7.1)."""
    return PAD * -(-(longest + OVERHEAD) // PAD)


def envelope_len(count: int, blen: int) -> int:
    return HEADER_LEN + count * (HINT_LEN + blen)


assert MAX_BODY_LEN % PAD == 0
assert envelope_len(4, MAX_BODY_LEN) <= MAX_WIRE_LEN < envelope_len(4, MAX_BODY_LEN + PAD)


def header(eph_pub: bytes, count: int, blen: int) -> bytes:
    return u8(0x01) + u8(TYPE_ENVELOPE) + eph_pub + u8(count) + u32(blen)


def slot_secrets(k: bytes, eph_pub: bytes, p: bytes) -> tuple[bytes, bytes]:
    """§8.7.3: `(hint, slot_key)` from `K`, `E` and `P`."""
    okm = hkdf(eph_pub, k + eph_pub + p, LABEL_ENVELOPE_SLOT, 48)
    return okm[:16], okm[16:]


def check_recipients(recipients: list[tuple[bytes, bytes]]) -> tuple[int, int]:
    """§8.7.4 checks before any draw; returns `(slot_count, body_len)`."""
    n = len(recipients)
    if n == 0:
        raise ProtocolError("NoRecipients")
    if n > MAX_RECIPIENTS:
        raise ProtocolError("TooManyRecipients", f"{n}")
    seen: set[bytes] = set()
    for i, (p, payload) in enumerate(recipients):
        if p in seen:
            raise ProtocolError("DuplicateRecipient", f"recipient {i}")
        seen.add(p)
        if len(payload) > MAX_PAYLOAD_LEN:
            raise ProtocolError("PayloadTooLarge", f"recipient {i}: {len(payload)} bytes")
    count = slot_count(n)
    blen = body_len(max(len(p) for _, p in recipients))
    if envelope_len(count, blen) > MAX_WIRE_LEN:
        raise ProtocolError("TooLarge", f"{envelope_len(count, blen)} bytes")
    return count, blen


def draw_sizes(recipients: list[tuple[bytes, bytes]]) -> list[int]:
    """§8.7.4 draw order: `e` (32), then one `16 + body_len` draw per dummy."""
    count, blen = check_recipients(recipients)
    return [32] + [HINT_LEN + blen] * (count - len(recipients))


def seal(recipients: list[tuple[bytes, bytes]], draws: list[bytes]) -> bytes:
    """§8.7.4 with the listed draws. `recipients`: (X25519 key `P`, payload)."""
    count, blen = check_recipients(recipients)
    sizes = draw_sizes(recipients)
    if [len(d) for d in draws] != sizes:
        raise ValueError(f"draws of sizes {[len(d) for d in draws]}, expected {sizes}")
    e = draws[0]
    eph_pub = x25519_public(e)
    ad = header(eph_pub, count, blen)
    slots = list(draws[1:])
    for p, payload in recipients:
        k = dh(e, p, "InvalidRecipientKey")
        hint, key = slot_secrets(k, eph_pub, p)
        plain = u32(len(payload)) + payload + bytes(blen - OVERHEAD - len(payload))
        slots.append(hint + chacha20poly1305_seal(key, ZERO_NONCE, plain, ad))
    slots.sort()
    if any(a == b for a, b in zip(slots, slots[1:])):
        raise ProtocolError("BrokenRng", "two equal slots")
    return ad + b"".join(slots)


def decode(b: bytes) -> tuple[bytes, int, int, list[bytes]]:
    """§8.7.2 strict decoder: `(E, slot_count, body_len, slots)`."""
    r = Reader(b, TYPE_ENVELOPE, "envelope")
    eph_pub = r.take(32, "E")
    count = r.take(1, "slot_count")[0]
    if count > MAX_SLOTS:
        raise ProtocolError("TooMany", f"{count} slots")
    if count == 0 or count % SLOT_BUCKET:
        raise ProtocolError("InvalidValue", f"slot count {count}")
    blen = r.take_u32("body_len")
    if blen > MAX_BODY_LEN:
        raise ProtocolError("LengthExceeded", f"body length {blen}")
    if blen == 0 or blen % PAD:
        raise ProtocolError("InvalidValue", f"body length {blen}")
    data = r.take(count * (HINT_LEN + blen), "slots")
    slots = [data[i:i + HINT_LEN + blen] for i in range(0, len(data), HINT_LEN + blen)]
    if any(a >= b for a, b in zip(slots, slots[1:])):
        raise ProtocolError("NotCanonical", "slots not strictly ascending")
    if r.remaining():
        raise ProtocolError("TrailingBytes", f"envelope: {r.remaining()} bytes")
    return eph_pub, count, blen, slots


def open_envelope(secret: bytes, b: bytes) -> bytes:
    """§8.7.5 by the device with X25519 identity secret `secret`."""
    eph_pub, count, blen, slots = decode(b)
    p = x25519_public(secret)
    k = dh(secret, eph_pub, "InvalidEphemeralKey")
    hint, key = slot_secrets(k, eph_pub, p)
    matching = [s for s in slots if s[:HINT_LEN] == hint]
    if not matching:
        raise ProtocolError("NoSlotForDevice")
    ad = header(eph_pub, count, blen)
    for s in matching:
        plain = chacha20poly1305_open(key, ZERO_NONCE, s[HINT_LEN:], ad)
        if plain is None:
            continue
        n, rest = int.from_bytes(plain[:4], "big"), plain[4:]
        if n > len(rest) or any(rest[n:]):
            raise ProtocolError("BadPadding", f"length {n}, room {len(rest)}")
        return rest[:n]
    raise ProtocolError("SlotAuthentication")
