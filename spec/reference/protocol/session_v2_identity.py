"""Recovery phrases (spec §9.4), identities and Session IDs (spec §9.5)."""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass

from common import ProtocolError
from protocol.session_v2_primitives import (
    ed25519_pk_to_x25519,
    ed25519_public,
    ed25519_seed_of,
    x25519_public,
    x25519_secret_of,
)

DATA_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data")
WORD_LIST_FILE = os.path.join(DATA_DIR, "session-mnemonic-english.txt")

SESSION_ID_PREFIX = 0x05
SESSION_ID_HEX_LEN = 66


# --------------------------------------------------------------------------
# §9.4 recovery phrases
# --------------------------------------------------------------------------

N_WORDS = 1626
PREFIX_LEN = 3


def load_word_list(path: str = WORD_LIST_FILE) -> list[str]:
    with open(path, encoding="utf-8") as fh:
        lines = fh.read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    header, words = lines[:3], lines[3:]
    if header[2] != str(PREFIX_LEN) or len(words) != N_WORDS:
        raise ProtocolError("CorruptWordList", f"header {header}, {len(words)} words")
    prefixes = [w[:PREFIX_LEN] for w in words]
    if len(set(prefixes)) != N_WORDS or any(len(p) != PREFIX_LEN for p in prefixes):
        raise ProtocolError("CorruptWordList", "prefixes are not distinct 3-letter strings")
    return words


WORDS = load_word_list()


def _fold(s: str) -> str:
    """Case-fold ASCII letters only (§9.12 point 14)."""
    return "".join(c.lower() if "A" <= c <= "Z" else c for c in s)


_BY_PREFIX = {_fold(w[:PREFIX_LEN]): i for i, w in enumerate(WORDS)}


def _checksum_index(indices: list[int]) -> int:
    data = "".join(WORDS[i][:PREFIX_LEN] for i in indices).encode("utf-8")
    return zlib.crc32(data) % len(indices)


assert zlib.crc32(b"123456789") == 0xCBF43926


def mnemonic_encode(seed: bytes) -> str:
    if len(seed) not in (16, 32):
        raise ValueError("seed must be 16 or 32 bytes")
    n = N_WORDS
    idx: list[int] = []
    for g in range(0, len(seed), 4):
        v = int.from_bytes(seed[g:g + 4], "little")
        w1 = v % n
        w2 = (v // n + w1) % n
        w3 = (v // (n * n) + w2) % n
        idx += [w1, w2, w3]
    idx.append(idx[_checksum_index(idx)])
    return " ".join(WORDS[i] for i in idx)


def mnemonic_decode(phrase: str) -> bytes:
    typed = phrase.split()
    if len(typed) not in (13, 25):
        raise ProtocolError("WrongWordCount", f"got {len(typed)}")
    idx = []
    for pos, w in enumerate(typed, start=1):
        i = _BY_PREFIX.get(_fold(w[:PREFIX_LEN]))
        if i is None:
            raise ProtocolError("UnknownWord", f"position {pos}")
        idx.append(i)
    data, check = idx[:-1], idx[-1]
    if data[_checksum_index(data)] != check:
        raise ProtocolError("BadChecksum")
    n = N_WORDS
    out = b""
    for g in range(0, len(data), 3):
        a, b, c = data[g:g + 3]
        v = a + ((n - a + b) % n) * n + ((n - b + c) % n) * n * n
        if v >= 2**32:
            raise ProtocolError("InvalidWordGroup", f"group {g // 3 + 1}")
        out += v.to_bytes(4, "little")
    return out


# --------------------------------------------------------------------------
# §9.5 identity and Session IDs
# --------------------------------------------------------------------------

@dataclass
class Identity:
    ed25519_seed: bytes     # 32 bytes
    ed25519_pk: bytes
    x25519_secret: bytes
    x25519_pk: bytes

    @property
    def session_id(self) -> bytes:
        return bytes([SESSION_ID_PREFIX]) + self.x25519_pk


def identity_from_seed(seed: bytes) -> Identity:
    ed_seed = ed25519_seed_of(seed)
    ed_pk = ed25519_public(ed_seed)
    x_sk = x25519_secret_of(ed_seed)
    x_pk = x25519_public(x_sk)
    if ed25519_pk_to_x25519(ed_pk) != x_pk:
        raise AssertionError("birational map and X25519(secret, 9) disagree")
    return Identity(ed_seed, ed_pk, x_sk, x_pk)


_HEX = "0123456789abcdefABCDEF"


def parse_session_id(text: str) -> bytes:
    """§9.5: 66 hex digits of either case, prefix 05. Errors in this order:
    length, hex digit, prefix."""
    if len(text) != SESSION_ID_HEX_LEN:
        raise ProtocolError("WrongLength", f"got {len(text)}")
    for pos, ch in enumerate(text):
        if ch not in _HEX:
            raise ProtocolError("BadHex", f"position {pos}")
    raw = bytes.fromhex(text)
    if raw[0] != SESSION_ID_PREFIX:
        raise ProtocolError("WrongPrefix", f"prefix {raw[0]:02x}")
    return raw


def format_session_id(x25519_pk: bytes) -> str:
    return (bytes([SESSION_ID_PREFIX]) + x25519_pk).hex()
