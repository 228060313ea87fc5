"""Strict bencode (spec §9.3).

Values decode to `int`, `bytes`, `list` and `BDict`. The decoder rejects
every non-canonical input with a `BencodeError` class of §9.3; the encoder
emits canonical bencode only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from common import ProtocolError

DEFAULT_MAX_DEPTH = 32
DEFAULT_MAX_LEN = 128 * 1024

I64_MIN = -(2**63)
I64_MAX = 2**63 - 1

_DIGITS = b"0123456789"


class BencodeError(ProtocolError):
    """`cls` is one of the §9.3 `BencodeError` variants."""


@dataclass
class BEntry:
    key: bytes
    value: object
    key_offset: int     # offset of the key's length prefix, from the dict's `d`


@dataclass
class BDict:
    """A decoded dict: its entries in (strictly ascending) key order and the
    encoded bytes it was decoded from (`raw`, from `d` to the final `e`)."""

    entries: list[BEntry] = field(default_factory=list)
    raw: bytes = b""

    def get(self, key: bytes, default=None):
        for e in self.entries:
            if e.key == key:
                return e.value
        return default

    def __contains__(self, key: bytes) -> bool:
        return any(e.key == key for e in self.entries)

    def keys(self) -> list[bytes]:
        return [e.key for e in self.entries]

    def prefix_before(self, key: bytes) -> bytes:
        """"The dict up to key `k`" (§9.3): from the opening `d` up to, not
        including, the first byte of the key's length prefix."""
        for e in self.entries:
            if e.key == key:
                return self.raw[:e.key_offset]
        raise KeyError(key)


class _Decoder:
    def __init__(self, data: bytes, max_depth: int, max_len: int):
        if len(data) > max_len:
            raise BencodeError("InputTooLong", f"{len(data)} > {max_len}")
        self.data = data
        self.pos = 0
        self.max_depth = max_depth

    def peek(self) -> int:
        if self.pos >= len(self.data):
            raise BencodeError("UnexpectedEnd", f"at {self.pos}")
        return self.data[self.pos]

    def next(self) -> int:
        b = self.peek()
        self.pos += 1
        return b

    def _digits(self) -> bytes:
        start = self.pos
        while self.pos < len(self.data) and self.data[self.pos] in _DIGITS:
            self.pos += 1
        return self.data[start:self.pos]

    def value(self, depth: int):
        b = self.peek()
        if b == ord("i"):
            return self.integer()
        if b in _DIGITS:
            return self.string()
        if b == ord("l") or b == ord("d"):
            if depth + 1 > self.max_depth:
                raise BencodeError("TooDeep", f"depth {depth + 1} > {self.max_depth}")
            return self.lst(depth + 1) if b == ord("l") else self.dct(depth + 1)
        raise BencodeError("UnexpectedByte", f"{b:#04x} at {self.pos}")

    def integer(self) -> int:
        self.next()  # 'i'
        neg = False
        if self.peek() == ord("-"):
            neg = True
            self.pos += 1
        digits = self._digits()
        end = self.next()
        if end != ord("e"):
            raise BencodeError("UnexpectedByte", f"{end:#04x} in integer at {self.pos - 1}")
        if not digits:
            raise BencodeError("UnexpectedByte", "integer without digits")
        if (len(digits) > 1 and digits[0] == ord("0")) or (neg and digits == b"0"):
            raise BencodeError("NonCanonicalInteger", digits.decode())
        v = int(digits)
        v = -v if neg else v
        if not I64_MIN <= v <= I64_MAX:
            raise BencodeError("IntegerOutOfRange", str(v))
        return v

    def string(self) -> bytes:
        digits = self._digits()
        colon = self.next()
        if colon != ord(":"):
            raise BencodeError("UnexpectedByte", f"{colon:#04x} in string length at {self.pos - 1}")
        if len(digits) > 1 and digits[0] == ord("0"):
            raise BencodeError("NonCanonicalLength", digits.decode())
        n = int(digits)
        # The declared length is checked against the remaining input before
        # anything is allocated for it.
        if n > len(self.data) - self.pos:
            raise BencodeError("LengthExceedsInput", f"{n} > {len(self.data) - self.pos}")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def lst(self, depth: int) -> list:
        self.next()  # 'l'
        out = []
        while self.peek() != ord("e"):
            out.append(self.value(depth))
        self.pos += 1
        return out

    def dct(self, depth: int) -> BDict:
        start = self.pos
        self.next()  # 'd'
        d = BDict()
        prev: bytes | None = None
        while self.peek() != ord("e"):
            key_offset = self.pos - start
            if self.peek() not in _DIGITS:
                raise BencodeError("KeyNotString", f"at {self.pos}")
            key = self.string()
            if prev is not None and key <= prev:
                raise BencodeError("UnsortedKeys", f"{key!r} after {prev!r}")
            prev = key
            d.entries.append(BEntry(key, self.value(depth), key_offset))
        self.pos += 1
        d.raw = self.data[start:self.pos]
        return d


def decode(data: bytes, max_depth: int = DEFAULT_MAX_DEPTH, max_len: int = DEFAULT_MAX_LEN):
    """Decode one value; any byte after it is `TrailingData`."""
    dec = _Decoder(data, max_depth, max_len)
    v = dec.value(0)
    if dec.pos != len(data):
        raise BencodeError("TrailingData", f"{len(data) - dec.pos} bytes")
    return v


def decode_dict(data: bytes, max_depth: int = DEFAULT_MAX_DEPTH,
                max_len: int = DEFAULT_MAX_LEN) -> BDict:
    v = decode(data, max_depth, max_len)
    if not isinstance(v, BDict):
        raise BencodeError("NotADict")
    return v


def encode(v) -> bytes:
    """Canonical encoding. Dicts may be `BDict` or a Python dict with bytes
    keys; keys are emitted in ascending byte order."""
    if isinstance(v, bool):
        raise TypeError("bool is not a bencode value")
    if isinstance(v, int):
        return b"i%de" % v
    if isinstance(v, (bytes, bytearray)):
        return b"%d:" % len(v) + bytes(v)
    if isinstance(v, str):
        return encode(v.encode("utf-8"))
    if isinstance(v, list):
        return b"l" + b"".join(encode(x) for x in v) + b"e"
    if isinstance(v, BDict):
        items = [(e.key, e.value) for e in v.entries]
    elif isinstance(v, dict):
        items = [(k.encode() if isinstance(k, str) else k, x) for k, x in v.items()]
    else:
        raise TypeError(f"not a bencode value: {type(v)}")
    items.sort(key=lambda kv: kv[0])
    for (a, _), (b, _) in zip(items, items[1:]):
        if a == b:
            raise ValueError(f"duplicate key {a!r}")
    return b"d" + b"".join(encode(k) + encode(x) for k, x in items) + b"e"


def encode_prefix(items: dict) -> bytes:
    """The encoding of a dict of the given entries without its final `e`:
    "the dict up to key k" when every entry sorts before `k`."""
    return encode(items)[:-1]
