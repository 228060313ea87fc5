"""The device group (spec §9.9) and link requests with the emoji SAS (spec
§9.10)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from common import ProtocolError
from primitives import (
    MLKEM_CIPHERTEXT_LEN,
    MLKEM_PUBLIC_KEY_LEN,
    mlkem_check_encapsulation_key,
    mlkem_decaps,
    mlkem_encaps,
    x25519,
)
from protocol import session_v2_bencode as bencode
from protocol.session_v2_bencode import BDict
from protocol.session_v2_identity import DATA_DIR, Identity
from protocol.session_v2_keys import KemKeys
from protocol.session_v2_primitives import (
    ChaChaRng,
    aead_open,
    aead_seal,
    argon2id,
    blake2b,
    ed25519_sign,
    ed25519_verify_sodium,
    x25519_public,
    xchacha20_xor,
)

PAYLOAD_NONCE_PERS = b"SessionDevDNonce"
KEY_NONCE_PERS = b"SessionDevKNonce"
KEY_KEY_PERS = b"SessionDevKeyKey"
KEY_HINT_PERS = b"SessionDevKeyIdx"
KICKED_PERS = b"SessionDevKicked"
GROUP_MESSAGE_TAG = b"G"
LINK_MESSAGE_TAG = b"L"
LINK_DOMAIN = b"link-request"
CONFIG_NONCE_KEY_PREFIX = b"libsessionutil-config-encrypted-"
SAS_SALT_PERS = b"SessionLinkEmoji"

MAX_MESSAGE_LEN = 76800
MAX_LINK_MESSAGE_LEN = 16 * 1024
SLOT_LEN = 2 + 32
KICK_LEN = 16
DEVICE_ID_LEN = 32
I64_MIN = -(2**63)
PAD_BASE = 2300
PAD_STEP = 6400


def fmt(sub: str, detail: str = "", outer: str = "BadFormat") -> ProtocolError:
    return ProtocolError(f"{outer}/{sub}", detail)


# --------------------------------------------------------------------------
# §9.9.1 records and payload
# --------------------------------------------------------------------------

@dataclass
class Payload:
    """A decoded payload: device id -> record (`BDict`) or tombstone (int)."""

    devices: dict
    keys: list
    raw: bytes

    def live(self) -> list[tuple[bytes, BDict]]:
        return [(i, r) for i, r in sorted(self.devices.items()) if isinstance(r, BDict)]

    def tombstones(self) -> list[tuple[bytes, int]]:
        return [(i, t) for i, t in sorted(self.devices.items()) if isinstance(t, int)]


def _check_record(rec: BDict, outer: str) -> None:
    for key, typ in ((b"#", int), (b"@", int), (b"M", bytes), (b"X", bytes)):
        if key not in rec:
            raise fmt("MissingField", key.decode(), outer)
        if not isinstance(rec.get(key), typ):
            raise fmt("BadField", key.decode(), outer)
    if len(rec.get(b"M")) != MLKEM_PUBLIC_KEY_LEN or len(rec.get(b"X")) != 32:
        raise fmt("BadField", "M/X length", outer)
    for key, typ in ((b"d", bytes), (b"t", bytes), (b"v", int)):
        if key in rec and not isinstance(rec.get(key), typ):
            raise fmt("BadField", key.decode(), outer)
    try:
        mlkem_check_encapsulation_key(rec.get(b"M"), "InvalidMlKemKey")
    except ProtocolError:
        raise fmt("InvalidMlKemKey", "", outer) from None


def decode_payload(data: bytes, outer: str = "BadPayload") -> Payload:
    try:
        d = bencode.decode_dict(data)
    except bencode.BencodeError as e:
        raise fmt("Bencode", e.cls, outer) from None
    devs = d.get(b"D")
    if devs is None:
        raise fmt("MissingField", "D", outer)
    if not isinstance(devs, BDict):
        raise fmt("BadField", "D", outer)
    out: dict = {}
    for e in devs.entries:
        if len(e.key) != DEVICE_ID_LEN:
            raise fmt("BadDeviceId", "", outer)
        if isinstance(e.value, int):
            if e.value == 0 or e.value == I64_MIN:
                raise fmt("BadTombstone", str(e.value), outer)
        elif isinstance(e.value, BDict):
            _check_record(e.value, outer)
        else:
            raise fmt("BadField", "device entry", outer)
        out[e.key] = e.value
    keys = d.get(b"K", [])
    if not isinstance(keys, list):
        raise fmt("BadField", "K", outer)
    for k in keys:
        if not isinstance(k, BDict):
            raise fmt("BadField", "K entry", outer)
        for key, typ, req in ((b"c", int, True), (b"r", int, False), (b"s", bytes, True)):
            if key not in k:
                if req:
                    raise fmt("MissingField", key.decode(), outer)
                continue
            if not isinstance(k.get(key), typ):
                raise fmt("BadField", key.decode(), outer)
        if len(k.get(b"s")) != 32:
            raise fmt("BadField", "s", outer)
    return Payload(out, keys, data)


def padded_payload_length(n: int) -> int:
    """`2300 + 6400·max(1, ⌈(len − 2300)/6400⌉)`."""
    k = max(1, -(-(n - PAD_BASE) // PAD_STEP))
    return PAD_BASE + PAD_STEP * k


def kick_value(account_ed25519_seed: bytes, device_id: bytes, a_pub: bytes) -> bytes:
    return blake2b(account_ed25519_seed + device_id, KICK_LEN, key=a_pub, pers=KICKED_PERS)


def _slot_key(dh: bytes, a_pub: bytes, b: bytes, s: bytes, m: bytes) -> bytes:
    return blake2b(dh + a_pub + b + s + m, 32, pers=KEY_KEY_PERS)


def _hint(a_pub: bytes, b: bytes, m: bytes, c: bytes, key: bytes) -> bytes:
    return blake2b(a_pub + b + m + c + key, 2, pers=KEY_HINT_PERS)


# --------------------------------------------------------------------------
# §9.9.3 encryption
# --------------------------------------------------------------------------

def encrypt_group(rng: ChaChaRng, account: Identity, payload: Payload) -> bytes:
    live = payload.live()
    if not live:
        raise ProtocolError("NoRecipients")
    n = len(live)
    p = 4 * -(-n // 4)

    a = rng.bytes(32)
    a_pub = x25519_public(a)

    # Step 2: removal notices.
    kicks = [kick_value(account.ed25519_seed, i, a_pub)
             for i, t in payload.tombstones() if t > 0]
    k_field = None
    if kicks:
        kk = 4 * -(-len(kicks) // 4)
        perm = rng.permutation(kk)
        slots = bytearray(rng.bytes(KICK_LEN * kk))
        for i, kick in enumerate(kicks):
            slots[KICK_LEN * perm[i]:KICK_LEN * (perm[i] + 1)] = kick
        k_field = bytes(slots)

    # Steps 3-4: ciphertext slots.
    pos = rng.permutation(p)
    cts: list[bytes] = [b""] * p
    secrets = []
    for i, (_, rec) in enumerate(live):
        ct, ss = mlkem_encaps(rec.get(b"M"), rng.bytes(32))
        cts[pos[i]] = ct
        secrets.append(ss)
    for j in pos[n:]:
        cts[j] = rng.bytes(MLKEM_CIPHERTEXT_LEN)
    c_all = b"".join(cts)

    # Steps 5-6: the payload.
    payload_nonce = blake2b(c_all, 24, key=a_pub, pers=PAYLOAD_NONCE_PERS)
    key_base = rng.bytes(32)
    padded = payload.raw + bytes(padded_payload_length(len(payload.raw)) - len(payload.raw))
    d = aead_seal(key_base, payload_nonce, padded)

    # Step 7: key slots.
    key_slots: list[bytes] = [b""] * p
    for i, (_, rec) in enumerate(live):
        b, m, c = rec.get(b"X"), rec.get(b"M"), cts[pos[i]]
        dh = x25519(a, b)
        if dh == bytes(32):
            key_slots[pos[i]] = rng.bytes(SLOT_LEN)
            continue
        knonce = blake2b(c + d, 24, key=a_pub, pers=KEY_NONCE_PERS)
        key_i = xchacha20_xor(_slot_key(dh, a_pub, b, secrets[i], m), knonce, key_base)
        key_slots[pos[i]] = _hint(a_pub, b, m, c, key_i) + key_i
    for j in pos[n:]:
        key_slots[j] = rng.bytes(2) + rng.bytes(32)

    # Step 8: the signed outer dict.
    outer = {b"": GROUP_MESSAGE_TAG, b"A": a_pub, b"C": c_all, b"K": b"".join(key_slots), b"d": d}
    if k_field is not None:
        outer[b"k"] = k_field
    sig = ed25519_sign(account.ed25519_seed, bencode.encode_prefix(outer))
    outer[b"~"] = sig
    msg = bencode.encode(outer)
    if len(msg) > MAX_MESSAGE_LEN:
        raise ProtocolError("TooLarge", f"{len(msg)} > {MAX_MESSAGE_LEN}")
    return msg


# --------------------------------------------------------------------------
# §9.9.4 decryption
# --------------------------------------------------------------------------

@dataclass
class GroupMessage:
    a_pub: bytes
    c: bytes
    k: bytes
    d: bytes
    kicks: bytes | None


def parse_group_message(msg: bytes, account_ed25519_pk: bytes) -> GroupMessage:
    """The checks that come before any decryption, in the order of §9.9.4."""
    if len(msg) > MAX_MESSAGE_LEN:
        raise fmt("TooLarge")
    try:
        o = bencode.decode_dict(msg)
    except bencode.BencodeError as e:
        raise fmt("Bencode", e.cls) from None
    if b"" not in o:
        raise fmt("MissingField", '""')
    if o.get(b"") != GROUP_MESSAGE_TAG:
        raise fmt("WrongMessageType")
    for key in (b"A", b"C", b"K", b"d", b"~"):
        if key not in o:
            raise fmt("MissingField", key.decode())
        if not isinstance(o.get(key), bytes):
            raise fmt("BadField", key.decode())
    a_pub, c, k, d, sig = (o.get(x) for x in (b"A", b"C", b"K", b"d", b"~"))
    kicks = o.get(b"k")
    if len(a_pub) != 32:
        raise fmt("BadField", "A")
    if not c or len(c) % MLKEM_CIPHERTEXT_LEN:
        raise fmt("BadField", "C")
    if len(k) != SLOT_LEN * (len(c) // MLKEM_CIPHERTEXT_LEN):
        raise fmt("BadField", "K")
    if kicks is not None and (not isinstance(kicks, bytes) or len(kicks) % KICK_LEN):
        raise fmt("BadField", "k")
    if len(d) < 16:
        raise fmt("BadField", "d")
    if len(sig) != 64:
        raise fmt("BadField", "~")
    if not ed25519_verify_sodium(account_ed25519_pk, o.prefix_before(b"~"), sig):
        raise ProtocolError("BadSignature")
    return GroupMessage(a_pub, c, k, d, kicks)


def matching_slots(g: GroupMessage, b: bytes, m: bytes) -> list[int]:
    out = []
    for i in range(len(g.c) // MLKEM_CIPHERTEXT_LEN):
        c = g.c[i * MLKEM_CIPHERTEXT_LEN:(i + 1) * MLKEM_CIPHERTEXT_LEN]
        slot = g.k[i * SLOT_LEN:(i + 1) * SLOT_LEN]
        if _hint(g.a_pub, b, m, c, slot[2:]) == slot[:2]:
            out.append(i)
    return out


def decrypt_group(msg: bytes, account_ed25519_pk: bytes, device: KemKeys) -> tuple[Payload, int]:
    """Returns the decoded payload and the slot that opened it."""
    g = parse_group_message(msg, account_ed25519_pk)
    b, m = device.x25519_pk, device.mlkem_pk
    candidates = matching_slots(g, b, m)
    if not candidates:
        raise ProtocolError("NotARecipient")
    payload_nonce = blake2b(g.c, 24, key=g.a_pub, pers=PAYLOAD_NONCE_PERS)
    for i in candidates:
        c = g.c[i * MLKEM_CIPHERTEXT_LEN:(i + 1) * MLKEM_CIPHERTEXT_LEN]
        key_i = g.k[i * SLOT_LEN + 2:(i + 1) * SLOT_LEN]
        dh = x25519(device.x25519_secret, g.a_pub)
        ss = mlkem_decaps(device.mlkem_seed, c)
        knonce = blake2b(c + g.d, 24, key=g.a_pub, pers=KEY_NONCE_PERS)
        key_base = xchacha20_xor(_slot_key(dh, g.a_pub, b, ss, m), knonce, key_i)
        plain = aead_open(key_base, payload_nonce, g.d)
        if plain is not None:
            return decode_payload(plain.rstrip(b"\x00")), i
    raise ProtocolError("DecryptFailed")


def is_kicked(msg: bytes, account_ed25519_pk: bytes, account_ed25519_seed: bytes,
              device_id: bytes) -> bool:
    g = parse_group_message(msg, account_ed25519_pk)
    if not g.kicks:
        return False
    mine = kick_value(account_ed25519_seed, device_id, g.a_pub)
    found = 0
    for i in range(0, len(g.kicks), KICK_LEN):
        diff = 0
        for x, y in zip(mine, g.kicks[i:i + KICK_LEN]):
            diff |= x ^ y
        found |= int(diff == 0)
    return bool(found)


# --------------------------------------------------------------------------
# §9.10 link requests and the emoji SAS
# --------------------------------------------------------------------------

SAS_EMOJI_FILE = os.path.join(DATA_DIR, "sas-emoji.json")


def load_emoji(path: str = SAS_EMOJI_FILE) -> list[str]:
    with open(path, encoding="utf-8") as fh:
        entries = json.load(fh)
    if len(entries) != 64 or [e.get("number") for e in entries] != list(range(64)):
        raise ProtocolError("CorruptEmojiList")
    return [e["emoji"] for e in entries]


EMOJI = load_emoji()


def _link_key_nonce(account_ed25519_seed: bytes, plaintext_len: int, plaintext: bytes | None):
    key = blake2b(account_ed25519_seed + plaintext_len.to_bytes(8, "big") + LINK_DOMAIN, 32)
    nonce = None
    if plaintext is not None:
        nonce = blake2b(plaintext, 24, key=CONFIG_NONCE_KEY_PREFIX + LINK_DOMAIN)
    return key, nonce


def encrypt_link_request(account_ed25519_seed: bytes, plaintext: bytes) -> bytes:
    key, nonce = _link_key_nonce(account_ed25519_seed, len(plaintext), plaintext)
    value = aead_seal(key, nonce, plaintext) + nonce
    return bencode.encode({b"": LINK_MESSAGE_TAG, b"L": value})


def decrypt_link_request(account_ed25519_seed: bytes, msg: bytes) -> bytes:
    if len(msg) > MAX_LINK_MESSAGE_LEN:
        raise ProtocolError("BadFormat", "too large")
    try:
        o = bencode.decode_dict(msg)
    except bencode.BencodeError as e:
        raise ProtocolError("BadFormat", e.cls) from None
    value = o.get(b"L")
    if o.get(b"") != LINK_MESSAGE_TAG or not isinstance(value, bytes) or len(value) < 16 + 24:
        raise ProtocolError("BadFormat")
    ct, nonce = value[:-24], value[-24:]
    key, _ = _link_key_nonce(account_ed25519_seed, len(ct) - 16, None)
    plain = aead_open(key, nonce, ct)
    if plain is None:
        raise ProtocolError("DecryptFailed")
    return plain


def check_link_plaintext(plaintext: bytes) -> tuple[bytes, BDict]:
    """`{"I": device id (32), "i": device record}`."""
    try:
        d = bencode.decode_dict(plaintext)
    except bencode.BencodeError as e:
        raise ProtocolError("BadRequest", e.cls) from None
    dev_id, rec = d.get(b"I"), d.get(b"i")
    if not isinstance(dev_id, bytes) or len(dev_id) != DEVICE_ID_LEN or not isinstance(rec, BDict):
        raise ProtocolError("BadRequest")
    try:
        _check_record(rec, "BadRequest")
    except ProtocolError:
        raise ProtocolError("BadRequest") from None
    return dev_id, rec


SAS_T = 2
SAS_M_BYTES = 16 * 1024 * 1024


def sas_indices(plaintext: bytes, count: int = 21) -> list[int]:
    salt = blake2b(plaintext, 16, pers=SAS_SALT_PERS)
    seed16 = argon2id(plaintext, salt, SAS_T, SAS_M_BYTES, 16)
    v = int.from_bytes(seed16, "little")
    return [(v >> (6 * j)) & 63 for j in range(count)]
