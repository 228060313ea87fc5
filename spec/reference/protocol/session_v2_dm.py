"""v2 direct messages (spec §9.8)."""

from __future__ import annotations

from dataclasses import dataclass

from common import ProtocolError
from primitives import (
    MLKEM_CIPHERTEXT_LEN,
    _ed_decode,
    _ed_small_order,
    mlkem_check_encapsulation_key,
    mlkem_decaps,
    mlkem_encaps,
    sha3_256,
    shake256,
    x25519,
)
from protocol import session_v2_bencode as bencode
from protocol.session_v2_identity import Identity
from protocol.session_v2_keys import KemKeys
from protocol.session_v2_primitives import (
    ChaChaRng,
    aead_open,
    aead_seal,
    blake2b,
    ed25519_sign,
    ed25519_verify_sodium,
    x25519_public,
)

V2_PREFIX = b"\x00\x02"
KISS_PERS = b"Session-Msg-KISS"
MESSAGE_SIG_PERS = b"SessionV2Message"
XWING_LABEL = b"\\.//^\\"
PFS_SS_DOMAIN = b"SessionV2MessageSS"
NON_PFS_LABEL = b"SessionV2NonPFS"
NON_PFS_SS_DOMAIN = b"SessionV2NonPFSSS"

MAX_MESSAGE_LEN = 76800
HEADER_LEN = 2 + 2 + 32 + MLKEM_CIPHERTEXT_LEN      # prefix, ki, E, ct
TAG_LEN = 16
OVERHEAD = HEADER_LEN + TAG_LEN                      # 1140
MIN_MESSAGE_LEN = 1536
PAD_STEP = 256

assert len(XWING_LABEL) == 6 and OVERHEAD == 1140


def _low_order_dh(k: bytes, u: bytes, cls: str) -> bytes:
    out = x25519(k, u)
    if out == bytes(32):
        raise ProtocolError(cls, "X25519 output is all zero")
    return out


def kiss(e_pub: bytes, recipient_x25519: bytes, dh: bytes) -> bytes:
    """`BLAKE2b-2(E ‖ S, key = DH, pers = KISS_PERS)`; `S` is the recipient's
    32-byte X25519 public key (the Session ID without its prefix)."""
    return blake2b(e_pub + recipient_x25519, 2, key=dh, pers=KISS_PERS)


def padded_length(inner_len: int) -> int:
    total = max(MIN_MESSAGE_LEN, OVERHEAD + inner_len)
    return -(-total // PAD_STEP) * PAD_STEP


def inner_dict(sender: Identity, recipient_session_id: bytes, content: bytes) -> bytes:
    """Step 6: `{"S", "c", "~"}`; `"~"` signs the BLAKE2b-64 pre-hash of the
    dict up to `"~"` keyed with the recipient's 33-byte Session ID."""
    head = bencode.encode_prefix({b"S": sender.ed25519_pk, b"c": content})
    pre = blake2b(head, 64, key=recipient_session_id, pers=MESSAGE_SIG_PERS)
    sig = ed25519_sign(sender.ed25519_seed, pre)
    return bencode.encode({b"S": sender.ed25519_pk, b"c": content, b"~": sig})


def _seal(k_n: bytes, inner: bytes, header: bytes) -> bytes:
    total = padded_length(len(inner))
    if total > MAX_MESSAGE_LEN:
        raise ProtocolError("ContentTooLarge", f"{total} > {MAX_MESSAGE_LEN}")
    padded = inner + bytes(total - OVERHEAD - len(inner))
    return header + aead_seal(k_n[:32], k_n[32:56], padded)


@dataclass
class PfsStart:
    """Steps 1-5 of PFS sending: the 1140-byte wire header without the
    AEAD part, the key/nonce `k ‖ n` (56), and the public KEM values."""
    header: bytes
    k_n: bytes
    e_pub: bytes
    ct: bytes


def pfs_start(rng: ChaChaRng, recipient_session_id: bytes,
              account: tuple[bytes, bytes]) -> PfsStart:
    """Steps 1-5 to `S` with the recipient's account keys `(M, X)`.
    Draws: `e` (32), then `m` (32)."""
    m_pk, x_pk = account
    s = recipient_session_id[1:]
    e = rng.bytes(32)
    e_pub = x25519_public(e)
    ki = bytes(a ^ b for a, b in zip(m_pk[:2],
                                     kiss(e_pub, s, _low_order_dh(e, s, "InvalidRecipientKey"))))
    m = rng.bytes(32)
    mlkem_check_encapsulation_key(m_pk, "InvalidRecipientKey")
    ct, ss_m = mlkem_encaps(m_pk, m)
    ss_x = _low_order_dh(e, x_pk, "InvalidRecipientKey")
    ss = sha3_256(ss_m + ss_x + e_pub + x_pk + XWING_LABEL)
    k_n = shake256(PFS_SS_DOMAIN + ss, 56)
    return PfsStart(V2_PREFIX + ki + e_pub + ct, k_n, e_pub, ct)


def pfs_finish(start: PfsStart, sender: Identity, recipient_session_id: bytes,
               content: bytes) -> bytes:
    """Steps 6-7 (deterministic): the inner dict, padded and sealed."""
    return _seal(start.k_n, inner_dict(sender, recipient_session_id, content), start.header)


def send_pfs(rng: ChaChaRng, sender: Identity, recipient_session_id: bytes,
             account: tuple[bytes, bytes], content: bytes) -> bytes:
    """PFS + PQ message to `S` with the recipient's account keys `(M, X)`.
    Draws: `e` (32), then `m` (32)."""
    return pfs_finish(pfs_start(rng, recipient_session_id, account), sender,
                      recipient_session_id, content)


def _non_pfs_key(dh: bytes, r: bytes, e_pub: bytes) -> bytes:
    ss = sha3_256(dh + r + e_pub + NON_PFS_LABEL)
    return shake256(NON_PFS_SS_DOMAIN + ss, 56)


def send_non_pfs(rng: ChaChaRng, sender: Identity, recipient_session_id: bytes,
                 content: bytes) -> bytes:
    """Fallback without account keys. Draws: `e` (32), `ki` (2), slot (1088)."""
    r = recipient_session_id[1:]
    e = rng.bytes(32)
    e_pub = x25519_public(e)
    ki = rng.bytes(2)
    slot = rng.bytes(MLKEM_CIPHERTEXT_LEN)
    k_n = _non_pfs_key(_low_order_dh(e, r, "InvalidRecipientKey"), r, e_pub)
    return _seal(k_n, inner_dict(sender, recipient_session_id, content), V2_PREFIX + ki + e_pub + slot)


@dataclass
class Received:
    sender_ed25519_pk: bytes
    content: bytes
    pro_signature: bytes | None
    pfs: bool                    # opened with an account key (else: fallback)
    inner: bytes                 # the inner dict, padding stripped


def _parse_inner(plain: bytes, recipient_session_id: bytes) -> tuple[bytes, bytes, bytes | None]:
    inner = plain.rstrip(b"\x00")
    try:
        d = bencode.decode_dict(inner)
    except bencode.BencodeError:
        raise ProtocolError("BadFormat/InnerBencode") from None
    for key in (b"S", b"c", b"~"):
        if key not in d:
            raise ProtocolError("BadFormat/MissingField", key.decode())
    s, c, sig, pro = d.get(b"S"), d.get(b"c"), d.get(b"~"), d.get(b"~P")
    if not (isinstance(s, bytes) and len(s) == 32 and isinstance(c, bytes)
            and isinstance(sig, bytes) and len(sig) == 64
            and (pro is None or (isinstance(pro, bytes) and len(pro) == 64))):
        raise ProtocolError("BadFormat/BadField")
    if not _valid_ed25519_key(s):
        raise ProtocolError("BadFormat/InvalidSenderKey")
    pre = blake2b(d.prefix_before(b"~"), 64, key=recipient_session_id, pers=MESSAGE_SIG_PERS)
    if not ed25519_verify_sodium(s, pre, sig):
        raise ProtocolError("BadSignature")
    return s, c, pro


def _valid_ed25519_key(pk: bytes) -> bool:
    """A decodable point that is not of small order."""
    pt = _ed_decode(pk)
    return pt is not None and not _ed_small_order(pt)


def receive(message: bytes, recipient: Identity, account_keys: list[KemKeys]) -> Received:
    """Receiving as in §9.8 steps 1-5, trying `account_keys` in order."""
    if not message:
        raise ProtocolError("BadFormat/Empty")
    if message[0] != 0x00:
        raise ProtocolError("NotV2")
    if len(message) >= 2 and message[1] != 0x02:
        raise ProtocolError("UnknownVersion", f"v = {message[1]}")
    if len(message) < MIN_MESSAGE_LEN:
        raise ProtocolError("BadFormat/TooShort", f"{len(message)} < {MIN_MESSAGE_LEN}")
    ki = message[2:4]
    e_pub = message[4:36]
    ct = message[36:HEADER_LEN]
    body = message[HEADER_LEN:]
    s = recipient.x25519_pk
    sid = recipient.session_id
    dh = _low_order_dh(recipient.x25519_secret, e_pub, "BadFormat/LowOrderEphemeral")
    hint = bytes(a ^ b for a, b in zip(ki, kiss(e_pub, s, dh)))

    matched = False
    for keys in account_keys:
        if keys.mlkem_pk[:2] != hint:
            continue
        matched = True
        ss_m = mlkem_decaps(keys.mlkem_seed, ct)
        ss_x = x25519(keys.x25519_secret, e_pub)
        ss = sha3_256(ss_m + ss_x + e_pub + keys.x25519_pk + XWING_LABEL)
        k_n = shake256(PFS_SS_DOMAIN + ss, 56)
        plain = aead_open(k_n[:32], k_n[32:56], body)
        if plain is None:
            continue
        sender, content, pro = _parse_inner(plain, sid)
        return Received(sender, content, pro, True, plain.rstrip(b"\x00"))

    k_n = _non_pfs_key(dh, s, e_pub)
    plain = aead_open(k_n[:32], k_n[32:56], body)
    if plain is None:
        raise ProtocolError("DecryptFailed" if matched else "NoPfsKey")
    sender, content, pro = _parse_inner(plain, sid)
    return Received(sender, content, pro, False, plain.rstrip(b"\x00"))
