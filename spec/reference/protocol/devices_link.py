"""Linking a device (spec §8.5): the request (0x08) and response (0x09)
with their strict decoders, the transcript hash, payload key and SAS, the
next device list of an approval, the payload (0x0A) and its opening checks.

Written from §8.5 and §8.5.2; the SAS reuses only BLAKE2b and Argon2id."""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass

from common import ProtocolError, ascii_, check_flags, u8, u16
from primitives import (
    XWING_CIPHERTEXT_LEN,
    XWING_PUBLIC_KEY_LEN,
    chacha20poly1305_open,
    chacha20poly1305_seal,
    ed25519_check_public_key,
    ed25519_public,
    hkdf,
    mlkem_check_encapsulation_key,
    sha256,
)
from protocol.devices import (
    MAX_DESCRIPTION_LEN,
    Device,
    DeviceList,
    accept_first,
    cut_description,
    decode_list,
)
from protocol.prekeys import PUBLIC_IDENTITY_LEN, check_public_identity
from protocol.session_v2_primitives import argon2id, blake2b

# §3.6 labels.
LABEL_LINK_TRANSCRIPT = ascii_("SessionRatchet/v1/link-transcript")
LABEL_LINK_PAYLOAD_KEY = ascii_("SessionRatchet/v1/link-payload-key")
LABEL_LINK_SAS = ascii_("SessionRatchet/v1/link-sas")

# §6.2 types.
TYPE_LINK_REQUEST = 0x08
TYPE_LINK_RESPONSE = 0x09
TYPE_LINK_PAYLOAD = 0x0A

# §8.5 sizes and bounds.
NONCE_LEN = 32
REQUEST_MIN_LEN = 2 + PUBLIC_IDENTITY_LEN + XWING_PUBLIC_KEY_LEN + NONCE_LEN + 1 + 6 + 1
assert REQUEST_MIN_LEN == 1322
RESPONSE_LEN = 2 + 32 + PUBLIC_IDENTITY_LEN + XWING_CIPHERTEXT_LEN + NONCE_LEN
assert RESPONSE_LEN == 1250
MAX_CONTACTS = 1024
FLAG_ACCOUNT_SEED = 0x01
PAYLOAD_AD = bytes([0x01, TYPE_LINK_PAYLOAD])
MIN_SEALED_LEN = 32 + 1 + 2 + 16
MAX_PAYLOAD_LEN = 94595
assert MAX_PAYLOAD_LEN == 2 + 32 + 1 + 32 + 2 + 1024 * 32 + 61742 + 16
MAX_WIRE_LEN = 76800

# §8.5.2 the emoji SAS.
SAS_SALT_PERS = b"SessionLinkEmoji"
SAS_T = 2
SAS_M_BYTES = 16 * 1024 * 1024
SAS_EXTENDED = 21
SAS_SHOWN = 7
EMOJI_FILE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          "data", "sas-emoji.json")


def _emoji_descriptions() -> list[str]:
    with open(EMOJI_FILE, encoding="utf-8") as fh:
        entries = json.load(fh)
    if len(entries) != 64 or [e.get("number") for e in entries] != list(range(64)):
        raise ProtocolError("CorruptEmojiList")
    return [e["description"] for e in entries]


EMOJI_DESCRIPTIONS = _emoji_descriptions()


def sas_seed(m: bytes) -> bytes:
    salt = blake2b(m, 16, pers=SAS_SALT_PERS)
    return argon2id(m, salt, SAS_T, SAS_M_BYTES, 16)


def sas_indices_of_seed(seed16: bytes) -> list[int]:
    v = int.from_bytes(seed16, "little")
    return [(v >> (6 * j)) & 63 for j in range(SAS_EXTENDED)]


# --------------------------------------------------------------------------
# §8.5.3 request, §8.5.4 response
# --------------------------------------------------------------------------

@dataclass
class Request:
    public_identity: bytes
    xwing_pk: bytes
    nonce: bytes
    platform: int
    client_version: tuple[int, int, int]
    description: str

    def encode(self) -> bytes:
        desc = cut_description(self.description)
        major, minor, patch = self.client_version
        return (u8(0x01) + u8(TYPE_LINK_REQUEST) + self.public_identity + self.xwing_pk
                + self.nonce + u8(self.platform) + u16(major) + u16(minor) + u16(patch)
                + u8(len(desc)) + desc)


@dataclass
class Response:
    account_pub: bytes
    approver_identity: bytes
    ct: bytes
    nonce: bytes

    def encode(self) -> bytes:
        return (u8(0x01) + u8(TYPE_LINK_RESPONSE) + self.account_pub + self.approver_identity
                + self.ct + self.nonce)


class _Cursor:
    """§6.5 field reader with a caller-given size cap."""

    def __init__(self, data: bytes, obj_type: int, name: str, limit: int = MAX_WIRE_LEN):
        self.data, self.pos, self.name = data, 0, name
        if len(data) > limit:
            raise ProtocolError("TooLong", f"{name}: {len(data)} > {limit}")
        version = self.take(1, "version")[0]
        if version != 0x01:
            raise ProtocolError("UnsupportedVersion", f"{name}: version {version:#04x}")
        t = self.take(1, "type")[0]
        if t != obj_type:
            raise ProtocolError("UnexpectedType", f"{name}: type {t:#04x}")

    def take(self, n: int, fld: str) -> bytes:
        if len(self.data) - self.pos < n:
            raise ProtocolError("Truncated", f"{self.name}: {fld}")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def u(self, n: int, fld: str) -> int:
        return int.from_bytes(self.take(n, fld), "big")

    def rest(self) -> bytes:
        out = self.data[self.pos:]
        self.pos = len(self.data)
        return out

    def finish(self) -> None:
        if self.pos != len(self.data):
            raise ProtocolError("TrailingBytes", f"{self.name}: {len(self.data) - self.pos} bytes")


def decode_request(b: bytes) -> Request:
    r = _Cursor(b, TYPE_LINK_REQUEST, "link request")
    pi = r.take(PUBLIC_IDENTITY_LEN, "public_identity")
    check_public_identity(pi)
    pk = r.take(XWING_PUBLIC_KEY_LEN, "xwing_pk")
    mlkem_check_encapsulation_key(pk[:1184], "InvalidMlKemKey")
    nonce = r.take(NONCE_LEN, "nonce")
    platform = r.u(1, "platform")
    cv = (r.u(2, "major"), r.u(2, "minor"), r.u(2, "patch"))
    dlen = r.u(1, "description_len")
    if dlen > MAX_DESCRIPTION_LEN:
        raise ProtocolError("LengthExceeded", f"description of {dlen} bytes")
    raw = r.take(dlen, "description")
    try:
        desc = raw.decode("utf-8", errors="strict")
    except UnicodeDecodeError:
        raise ProtocolError("InvalidUtf8", "description") from None
    r.finish()
    return Request(pi, pk, nonce, platform, cv, desc)


def decode_response(b: bytes) -> Response:
    r = _Cursor(b, TYPE_LINK_RESPONSE, "link response")
    account_pub = r.take(32, "account_pub")
    ed25519_check_public_key(account_pub)
    approver = r.take(PUBLIC_IDENTITY_LEN, "approver identity")
    check_public_identity(approver)
    ct = r.take(XWING_CIPHERTEXT_LEN, "ct")
    nonce = r.take(NONCE_LEN, "nonce")
    r.finish()
    return Response(account_pub, approver, ct, nonce)


# --------------------------------------------------------------------------
# §8.5.5 transcript hash, payload key, SAS input
# --------------------------------------------------------------------------

def transcript_hash(request: bytes, response: bytes) -> bytes:
    return sha256(LABEL_LINK_TRANSCRIPT + request + response)


def payload_key(th: bytes, ss: bytes) -> bytes:
    return hkdf(th, ss, LABEL_LINK_PAYLOAD_KEY, 32)


def sas_input(th: bytes) -> bytes:
    return LABEL_LINK_SAS + th


# --------------------------------------------------------------------------
# §8.5.6 approval and the payload
# --------------------------------------------------------------------------

def next_list_with(held: DeviceList, device_id: bytes, req: Request, added_at: int,
                   account_seed: bytes) -> DeviceList:
    """The next version of `held` with the new device added, signed."""
    n = copy.deepcopy(held)
    n.version, n.previous_hash = held.version + 1, held.list_hash()
    n.devices = sorted(n.devices + [Device(device_id, req.public_identity, req.platform,
                                           req.client_version, added_at, added_at,
                                           cut_description(req.description).decode("utf-8"),
                                           [])],
                       key=lambda d: d.device_id)
    n.sign(account_seed)
    return n


def payload_plaintext(device_id: bytes, seed: bytes | None, contacts: list[bytes],
                      new_list: bytes) -> bytes:
    """Contacts are given as approval receives them: sorted ascending with
    repeats removed here."""
    cs = sorted(set(contacts))
    if len(cs) > MAX_CONTACTS:
        raise ProtocolError("TooManyContacts", f"{len(cs)} contacts")
    out = device_id + (u8(FLAG_ACCOUNT_SEED) + seed if seed is not None else u8(0))
    out += u16(len(cs)) + b"".join(cs) + new_list
    return out


def seal_payload(key: bytes, plaintext: bytes) -> bytes:
    return PAYLOAD_AD + chacha20poly1305_seal(key, bytes(12), plaintext, PAYLOAD_AD)


def decode_payload_envelope(b: bytes) -> bytes:
    """Returns `sealed`."""
    r = _Cursor(b, TYPE_LINK_PAYLOAD, "link payload", limit=MAX_PAYLOAD_LEN)
    sealed = r.rest()
    if len(sealed) < MIN_SEALED_LEN:
        raise ProtocolError("Truncated", "link payload: sealed part")
    return sealed


@dataclass
class PayloadContent:
    device_id: bytes
    seed: bytes | None
    contacts: list[bytes]
    new_list: DeviceList


def decode_payload_plaintext(p: bytes) -> PayloadContent:
    """§8.5.6 layout, §6.5 order; errors are classes of §6.5."""
    pos = 0

    def take(n: int, fld: str) -> bytes:
        nonlocal pos
        if len(p) - pos < n:
            raise ProtocolError("Truncated", f"payload: {fld}")
        out = p[pos:pos + n]
        pos += n
        return out

    device_id = take(32, "device_id")
    flags = take(1, "flags")[0]
    check_flags(flags, FLAG_ACCOUNT_SEED, "payload")
    seed = take(32, "account seed") if flags & FLAG_ACCOUNT_SEED else None
    count = int.from_bytes(take(2, "contact_count"), "big")
    if count > MAX_CONTACTS:
        raise ProtocolError("TooMany", f"{count} contacts")
    if len(p) - pos < 32 * count:
        raise ProtocolError("Truncated", "payload: contacts")
    contacts: list[bytes] = []
    for i in range(count):
        c = take(32, f"contact {i}")
        ed25519_check_public_key(c)
        if contacts and c <= contacts[-1]:
            raise ProtocolError("NotCanonical", "contacts not strictly ascending")
        contacts.append(c)
    return PayloadContent(device_id, seed, contacts, decode_list(p[pos:]))


def open_payload(key: bytes, req: Request, resp: Response, payload: bytes) -> PayloadContent:
    """§8.5.6 envelope decoding, then the §8.5.7 checks in order. Error
    classes are paths (`MalformedPayload/NotCanonical`, `List/BadSignature`)."""
    sealed = decode_payload_envelope(payload)
    plain = chacha20poly1305_open(key, bytes(12), sealed, PAYLOAD_AD)
    if plain is None:
        raise ProtocolError("PayloadAuthenticationFailed")
    try:
        content = decode_payload_plaintext(plain)
    except ProtocolError as e:
        raise ProtocolError(f"MalformedPayload/{e.cls}", e.detail) from None
    try:
        accept_first(content.new_list, expected_account_pub=resp.account_pub)
    except ProtocolError as e:
        raise ProtocolError(f"List/{e.cls}", e.detail) from None
    entry = content.new_list.device(content.device_id)
    if entry is None:
        raise ProtocolError("NotListed")
    if entry.public_identity != req.public_identity:
        raise ProtocolError("IdentityMismatch")
    if (entry.platform, entry.client_version, entry.description) != (
            req.platform, req.client_version, cut_description(req.description).decode("utf-8")):
        raise ProtocolError("EntryMismatch")
    if not any(d.public_identity == resp.approver_identity for d in content.new_list.devices):
        raise ProtocolError("ApproverNotListed")
    if content.seed is not None and ed25519_public(content.seed) != resp.account_pub:
        raise ProtocolError("WrongAccountSeed")
    return content
