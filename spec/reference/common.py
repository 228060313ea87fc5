"""Encoding helpers, error classes and the per-vector checking context.

Everything here follows spec chapter 1 (conventions) and chapter 6 (wire
encoding). Nothing in this module is specific to one layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable


# --------------------------------------------------------------------------
# Integer encodings (spec §1.2): all big-endian.
# --------------------------------------------------------------------------

def u8(v: int) -> bytes:
    return v.to_bytes(1, "big")


def u16(v: int) -> bytes:
    return v.to_bytes(2, "big")


def u32(v: int) -> bytes:
    return v.to_bytes(4, "big")


def ascii_(s: str) -> bytes:
    """`"text"` of spec §1.2: ASCII, no terminator."""
    return s.encode("ascii")


# --------------------------------------------------------------------------
# Protocol errors. `cls` is the error class named in the spec and in the
# vectors' `expected_error` fields.
# --------------------------------------------------------------------------

class ProtocolError(Exception):
    def __init__(self, cls: str, detail: str = ""):
        super().__init__(f"{cls}: {detail}" if detail else cls)
        self.cls = cls
        self.detail = detail


# Wire constants (spec §6.1).
WIRE_VERSION = 0x01
MAX_WIRE_LEN = 76800


class Reader:
    """Bounds-checked reader for the fixed-layout objects of chapter 6.

    Implements the prefix of the §6.5 decoding order that is common to every
    object: total length, version byte, type byte. Fields are then read with
    `take`, which fails with `Truncated` naming the field.
    """

    def __init__(self, data: bytes, obj_type: int, obj_name: str):
        self.data = data
        self.pos = 0
        self.obj_name = obj_name
        if len(data) > MAX_WIRE_LEN:
            raise ProtocolError("TooLong", f"{obj_name}: {len(data)} > {MAX_WIRE_LEN}")
        version = self.take(1, "version")[0]
        if version != WIRE_VERSION:
            raise ProtocolError("UnsupportedVersion", f"{obj_name}: version {version:#04x}")
        t = self.take(1, "type")[0]
        if t != obj_type:
            raise ProtocolError("UnexpectedType", f"{obj_name}: type {t:#04x}, expected {obj_type:#04x}")

    def take(self, n: int, name: str) -> bytes:
        if len(self.data) - self.pos < n:
            raise ProtocolError("Truncated", f"{self.obj_name}: field {name}")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def take_u32(self, name: str) -> int:
        return int.from_bytes(self.take(4, name), "big")

    def rest(self) -> bytes:
        out = self.data[self.pos:]
        self.pos = len(self.data)
        return out

    def remaining(self) -> int:
        return len(self.data) - self.pos


def check_flags(flags: int, defined_mask: int, obj_name: str) -> None:
    if flags & ~defined_mask & 0xFF:
        raise ProtocolError("InvalidFlags", f"{obj_name}: flags {flags:#04x}")


# --------------------------------------------------------------------------
# Test-vector plumbing.
# --------------------------------------------------------------------------

class VectorFormatError(Exception):
    """The vector itself is malformed (missing field, bad hex, bad length)."""


def unhex(value: Any, what: str, length: int | None = None) -> bytes:
    if not isinstance(value, str):
        raise VectorFormatError(f"{what}: expected a hex string")
    if value != value.lower():
        raise VectorFormatError(f"{what}: hex must be lowercase")
    try:
        b = bytes.fromhex(value)
    except ValueError as e:
        raise VectorFormatError(f"{what}: not hex ({e})") from None
    if length is not None and len(b) != length:
        raise VectorFormatError(f"{what}: {len(b)} bytes, expected {length}")
    return b


def short(b: bytes, n: int = 32) -> str:
    h = b.hex()
    if len(h) <= 2 * n:
        return h
    return f"{h[:n]}…{h[-n:]} ({len(b)} bytes)"


def first_difference(a: bytes, b: bytes) -> str:
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return f"first difference at byte {i}"
    return f"lengths differ ({len(a)} vs {len(b)})"


@dataclass
class Kind:
    """Schema of one vector kind.

    `inputs`: fields the verifier reads; `outputs`: fields it recomputes and
    compares (these are what the self-test corrupts). `required`: fields that
    must be present (default: all inputs and outputs); a field in neither
    list is an error, so that a new field cannot go unchecked.
    """

    check: Callable[["VectorContext"], None]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    required: tuple[str, ...] | None = None
    # For kinds whose outputs are nested (a list of events, an object of
    # final values): the paths of every output leaf of a vector, e.g.
    # ("events", 3, "message"). Failures are then named by the path
    # (`path_name`), and the self-test corrupts each leaf.
    output_paths: Callable[[dict], list] | None = None

    def required_fields(self) -> Iterable[str]:
        return self.required if self.required is not None else self.inputs + self.outputs


def path_name(path: tuple) -> str:
    """("events", 3, "message") -> "events[3].message"."""
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


@dataclass
class VectorContext:
    file: str
    vector: dict
    all_vectors: list
    failures: list = field(default_factory=list)

    @property
    def name(self) -> str:
        return str(self.vector.get("name", "<unnamed>"))

    def where(self, fld: str) -> str:
        return f"{self.file}: vector '{self.name}': field '{fld}'"

    # -- inputs --------------------------------------------------------
    def get(self, fld: str, default: Any = ...) -> Any:
        if fld not in self.vector:
            if default is ...:
                raise VectorFormatError(f"missing field '{fld}'")
            return default
        return self.vector[fld]

    def hex(self, fld: str, length: int | None = None) -> bytes:
        return unhex(self.get(fld), f"field '{fld}'", length)

    def hex_item(self, fld: str, index: int, length: int | None = None) -> bytes:
        """Element `index` of a list-of-hex field."""
        items = self.get(fld)
        if not isinstance(items, list) or not 0 <= index < len(items):
            raise VectorFormatError(f"field '{fld}': no element {index}")
        return unhex(items[index], f"field '{fld}[{index}]'", length)

    # -- outputs -------------------------------------------------------
    def fail(self, fld: str, msg: str) -> None:
        self.failures.append((fld, f"{self.where(fld)}: {msg}"))

    def expect(self, fld: str, computed: bytes, side: str = "") -> bool:
        """Compare a recomputed byte string with the vector's field."""
        try:
            expected = self.hex(fld)
        except VectorFormatError as e:
            self.fail(fld, str(e))
            return False
        if computed != expected:
            who = f" ({side})" if side else ""
            self.fail(fld, f"MISMATCH{who}: expected {short(expected)}, computed "
                           f"{short(computed)}; {first_difference(expected, computed)}")
            return False
        return True

    def expect_value(self, fld: str, computed: Any, side: str = "") -> bool:
        """Compare a recomputed JSON value (string, boolean, integer, float,
        list) with the vector's field: same type and exactly equal (a float
        must be the same binary64 value)."""
        expected = self.get(fld)

        def same(a: Any, b: Any) -> bool:
            if type(a) is not type(b):
                return False
            if isinstance(a, list):
                return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
            return a == b

        if not same(expected, computed):
            who = f" ({side})" if side else ""
            self.fail(fld, f"MISMATCH{who}: expected {expected!r}, computed {computed!r}")
            return False
        return True

    def expect_error(self, fld: str, thunk: Callable[[], Any], step: str = "") -> None:
        """Run `thunk` and require it to fail with the class named in `fld`."""
        expected = self.get(fld)
        at = f" at {step}" if step else ""
        try:
            thunk()
        except ProtocolError as e:
            if e.cls != expected:
                self.fail(fld, f"MISMATCH{at}: expected error {expected}, got {e.cls} ({e.detail})")
            return
        self.fail(fld, f"MISMATCH{at}: expected error {expected}, but the operation succeeded")

    def expect_error_class(self, fld: str, got: str | None, step: str = "") -> None:
        expected = self.get(fld)
        at = f" at {step}" if step else ""
        if got is None:
            self.fail(fld, f"MISMATCH{at}: expected error {expected}, but the operation succeeded")
        elif got != expected:
            self.fail(fld, f"MISMATCH{at}: expected error {expected}, got {got}")
