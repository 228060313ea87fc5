"""The erasure code of spec §7.6.

An object is cut into `k` data symbols of 16 bytes. Symbol `i` (0…255) is
`P(i)`, evaluated byte position by byte position in GF(2⁸) with the
reduction polynomial x⁸ + x⁴ + x³ + x + 1 (0x11B), where `P` is the unique
polynomial of degree < k through (j, d_j) for j < k. Symbols 0…k−1 are the
data; any k distinct symbols determine the object.

Evaluation is Lagrange interpolation; a byte string is multiplied by a
field element with `bytes.translate` and a 256-entry table.
"""

from __future__ import annotations

from common import ProtocolError

SYMBOL_LEN = 16
GF_POLY = 0x11B

_EXP = [0] * 512
_LOG = [0] * 256


def _init_tables() -> None:
    x = 1
    for i in range(255):
        _EXP[i] = x
        _LOG[x] = i
        # multiply by the generator 0x03 = x + 1
        x2 = x << 1
        if x2 & 0x100:
            x2 ^= GF_POLY
        x = x2 ^ x
    for i in range(255, 512):
        _EXP[i] = _EXP[i - 255]


_init_tables()


def gf_mul(a: int, b: int) -> int:
    if a == 0 or b == 0:
        return 0
    return _EXP[_LOG[a] + _LOG[b]]


def gf_inv(a: int) -> int:
    assert a != 0
    return _EXP[255 - _LOG[a]]


def _gf_mul_slow(a: int, b: int) -> int:
    """Shift-and-add multiplication, to check the tables at import."""
    r = 0
    while b:
        if b & 1:
            r ^= a
        a <<= 1
        if a & 0x100:
            a ^= GF_POLY
        b >>= 1
    return r


assert all(gf_mul(a, b) == _gf_mul_slow(a, b) for a in range(256) for b in (1, 2, 3, 0x53, 0xCA, 0xFF))
assert gf_mul(0x53, 0xCA) == 0x01  # the FIPS 197 example of an inverse pair

_MUL_TABLES = [bytes(gf_mul(c, v) for v in range(256)) for c in range(256)]


def _scale_xor(acc: int, sym: bytes, c: int) -> int:
    if c == 0:
        return acc
    return acc ^ int.from_bytes(sym.translate(_MUL_TABLES[c]), "big")


def _lagrange_coefficients(xs: list[int], x: int) -> list[int]:
    """L_j(x) for the points xs (distinct field elements)."""
    out = []
    for j, xj in enumerate(xs):
        num = den = 1
        for m, xm in enumerate(xs):
            if m != j:
                num = gf_mul(num, x ^ xm)
                den = gf_mul(den, xj ^ xm)
        out.append(gf_mul(num, gf_inv(den)))
    return out


def _evaluate(points: list[tuple[int, bytes]], x: int) -> bytes:
    xs = [p[0] for p in points]
    coeffs = _lagrange_coefficients(xs, x)
    acc = 0
    for c, (_, sym) in zip(coeffs, points):
        acc = _scale_xor(acc, sym, c)
    return acc.to_bytes(SYMBOL_LEN, "big")


def split(obj: bytes, k: int) -> list[bytes]:
    assert len(obj) == k * SYMBOL_LEN
    return [obj[i * SYMBOL_LEN:(i + 1) * SYMBOL_LEN] for i in range(k)]


_ENCODE_COEFFICIENTS: dict = {}


def symbol(data_symbols: list[bytes], i: int) -> bytes:
    """Symbol `i` (0…255) of the object whose data symbols are given."""
    k = len(data_symbols)
    assert 0 <= i <= 255
    if i < k:
        return data_symbols[i]
    coeffs = _ENCODE_COEFFICIENTS.get((k, i))
    if coeffs is None:
        coeffs = _ENCODE_COEFFICIENTS[(k, i)] = _lagrange_coefficients(list(range(k)), i)
    acc = 0
    for c, sym in zip(coeffs, data_symbols):
        acc = _scale_xor(acc, sym, c)
    return acc.to_bytes(SYMBOL_LEN, "big")


def decode(held: dict[int, bytes], k: int) -> bytes:
    """The object determined by the held symbols (at least k distinct
    indices). Every held symbol must be the one the decoded object implies
    (`InconsistentPqChunks`)."""
    assert len(held) >= k
    indices = sorted(held)[:k]
    points = [(i, held[i]) for i in indices]
    data = [held[j] if j in held and j in indices else _evaluate(points, j) for j in range(k)]
    for i, sym in held.items():
        if symbol(data, i) != sym:
            raise ProtocolError("InconsistentPqChunks", f"symbol {i} does not match the decoded object")
    return b"".join(data)
