"""The hybrid double ratchet (spec chapter 7): initialisation (§7.2), the
KDFs (§7.3), the DH ratchet (§7.4), messages with header encryption and
padding (§7.7), skipped keys and bounds (§7.8), transactional decryption
(§7.9). The ML-KEM ratchet is in `ratchet_pq`, the stored state in
`ratchet_state`."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Callable

from common import MAX_WIRE_LEN, WIRE_VERSION, ProtocolError, Reader, ascii_, u8, u16, u32
from primitives import (
    AEAD_TAG_LEN,
    chacha20poly1305_open,
    chacha20poly1305_seal,
    dh,
    hkdf,
    hmac_sha256,
    x25519_public,
    xchacha20poly1305_open,
    xchacha20poly1305_seal,
)
from protocol.handshake import PrekeyMessage, SessionSeed
from protocol.prekeys import TYPE_PREKEY_MESSAGE
from protocol.ratchet_pq import PqState, parse_section, round_up

# §3.6 labels.
LABEL_RATCHET_INIT = ascii_("SessionRatchet/v1/ratchet-init")
LABEL_RATCHET_ROOT = ascii_("SessionRatchet/v1/ratchet-root")
LABEL_MESSAGE_KEY = ascii_("SessionRatchet/v1/message-key")
LABEL_CHAIN_KEY = ascii_("SessionRatchet/v1/chain-key")
LABEL_MESSAGE_BODY_KEY = ascii_("SessionRatchet/v1/message-body-key")

# §6.2.
TYPE_RATCHET_MESSAGE = 0x04

# §7.7.
NONCE_LEN = 24
HEADER_LEN = 32 + 4 + 4 + 4
ENC_HEADER_LEN = HEADER_LEN + AEAD_TAG_LEN
PREFIX_LEN = 2 + NONCE_LEN + ENC_HEADER_LEN          # 86
MIN_BODY_CT_LEN = 6 + AEAD_TAG_LEN                   # 22
MIN_MESSAGE_LEN = 2 + NONCE_LEN + ENC_HEADER_LEN + 6 + AEAD_TAG_LEN
assert PREFIX_LEN == 86 and MIN_MESSAGE_LEN == 108
DEFAULT_BUCKET = 256

# §7.8.
MAX_SKIP = 25_000
MAX_SKIPPED_KEYS_PER_CHAIN = 1_000
MAX_SKIPPED_KEYS = 2_000
MAX_OLD_CHAINS = 4

ROLE_INITIATOR = 1
ROLE_RESPONDER = 2
U32_MAX = 2**32 - 1


# --------------------------------------------------------------------------
# §7.3 KDFs
# --------------------------------------------------------------------------

def kdf_rk(rk: bytes, dh_out: bytes, pq: tuple[int, bytes] | None) -> tuple[bytes, bytes, bytes]:
    if pq is None:
        okm = hkdf(rk, dh_out, LABEL_RATCHET_ROOT + u8(0), 96)
    else:
        e, ss = pq
        okm = hkdf(rk, dh_out + ss, LABEL_RATCHET_ROOT + u8(1) + u32(e), 96)
    return okm[0:32], okm[32:64], okm[64:96]


def kdf_ck(ck: bytes) -> tuple[bytes, bytes]:
    """Returns (MK, CK')."""
    return hmac_sha256(ck, LABEL_MESSAGE_KEY), hmac_sha256(ck, LABEL_CHAIN_KEY)


def kdf_body(mk: bytes, nonce: bytes) -> bytes:
    """§7.3: the body key AK of the message with message key `mk` and
    24-byte header nonce `nonce`."""
    assert len(nonce) == NONCE_LEN
    return hmac_sha256(mk, LABEL_MESSAGE_BODY_KEY + nonce)


def ratchet_init_keys(rk_hs: bytes, th: bytes) -> tuple[bytes, bytes]:
    """§7.2: (RK_0, NHK_I)."""
    okm = hkdf(bytes(32), rk_hs, LABEL_RATCHET_INIT + th, 64)
    return okm[0:32], okm[32:64]


# --------------------------------------------------------------------------
# State
# --------------------------------------------------------------------------

@dataclass
class Chain:
    """A receiving chain (current or in OLD)."""
    ratchet_key: bytes
    header_key: bytes
    chain_key: bytes
    next_index: int = 0
    eviction_mark: int = 0
    skipped: dict = field(default_factory=dict)    # index -> message key


@dataclass
class SendChain:
    ck: bytes
    hk: bytes
    n: int = 0
    e: int = 0


@dataclass
class Session:
    role: int
    th: bytes
    local_identity: bytes
    remote_identity: bytes
    ek_a: bytes
    rk: bytes
    dhs_priv: bytes
    dhs_pub: bytes
    dhr: bytes | None
    sending: SendChain | None
    pn: int
    nhks: bytes
    recv: Chain | None
    nhkr: bytes
    old: list = field(default_factory=list)
    pq: PqState = field(default_factory=PqState)
    handshake_header: bytes | None = None    # §5.6 header fields, while initiating
    bucket: int = DEFAULT_BUCKET


@dataclass
class EncryptTrace:
    """The intermediate values an `encrypt` vector lists."""
    header_key: bytes
    message_key: bytes
    body_key: bytes
    header: bytes
    pq_section: bytes
    body: bytes


Draw = Callable[[int], bytes]


# --------------------------------------------------------------------------
# §7.2 initialisation
# --------------------------------------------------------------------------

def header_fields(msg: PrekeyMessage) -> bytes:
    """The §5.6 prekey message without version, type and payload."""
    full = PrekeyMessage(msg.public_identity_a, msg.ek_a, msg.spk_id, msg.opk_id, msg.pq_kind,
                         msg.pq_id, msg.ct, b"").encode()
    return full[2:]


def init_initiator(seed: SessionSeed, msg: PrekeyMessage, local_identity: bytes,
                   remote_identity: bytes, draw: Draw, bucket: int = DEFAULT_BUCKET) -> Session:
    """Right after the handshake's draws: one draw of 32 bytes (DHs)."""
    rk0, nhk_i = ratchet_init_keys(seed.root_key, seed.transcript_hash)
    dhs = draw(32)
    return Session(
        role=ROLE_INITIATOR, th=seed.transcript_hash, local_identity=local_identity,
        remote_identity=remote_identity, ek_a=msg.ek_a, rk=rk0,
        dhs_priv=dhs, dhs_pub=x25519_public(dhs), dhr=None,
        sending=SendChain(seed.initiator_chain_key, seed.initiator_header_key, 0, 0),
        pn=0, nhks=nhk_i, recv=None, nhkr=seed.responder_header_key,
        handshake_header=header_fields(msg), bucket=bucket)


def _init_responder(seed: SessionSeed, msg: PrekeyMessage, local_identity: bytes,
                    ratchet_key_a: bytes, bucket: int) -> Session:
    rk0, nhk_i = ratchet_init_keys(seed.root_key, seed.transcript_hash)
    return Session(
        role=ROLE_RESPONDER, th=seed.transcript_hash, local_identity=local_identity,
        remote_identity=msg.public_identity_a, ek_a=msg.ek_a, rk=rk0,
        dhs_priv=bytes(32), dhs_pub=bytes(32), dhr=ratchet_key_a, sending=None,
        pn=0, nhks=seed.responder_header_key,
        recv=Chain(ratchet_key_a, seed.initiator_header_key, seed.initiator_chain_key),
        nhkr=nhk_i, bucket=bucket)


# --------------------------------------------------------------------------
# §7.7 encrypt
# --------------------------------------------------------------------------

def _header_ad() -> bytes:
    return u8(WIRE_VERSION) + u8(TYPE_RATCHET_MESSAGE)


def _body_ad(th: bytes, ad: bytes, prefix: bytes, wrapper: bytes) -> bytes:
    return th + u32(len(ad)) + ad + prefix + wrapper


def _wrapper(s: Session) -> bytes:
    if s.handshake_header is None:
        return b""
    return u8(WIRE_VERSION) + u8(TYPE_PREKEY_MESSAGE) + s.handshake_header


def _sending_step(s: Session, draw: Draw) -> None:
    """§7.4 sending step."""
    s.dhs_priv = draw(32)
    s.dhs_pub = x25519_public(s.dhs_priv)
    dh_out = dh(s.dhs_priv, s.dhr, "NonContributoryKey")
    pending = s.pq.take_pending()
    s.rk, ck, nhk = kdf_rk(s.rk, dh_out, None if pending is None else (pending.epoch, pending.ss))
    s.sending = SendChain(ck, s.nhks, 0, pending.epoch if pending else 0)
    s.nhks = nhk


def encrypt(s: Session, plaintext: bytes, ad: bytes, draw: Draw) -> tuple[bytes, EncryptTrace]:
    """Changes `s` in place. Returns the output bytes (a prekey message
    while initiating) and the intermediate values."""
    wrapper = _wrapper(s)
    limit = MAX_WIRE_LEN - len(wrapper)
    base = MIN_MESSAGE_LEN + len(plaintext)
    if base > limit:
        raise ProtocolError("PlaintextTooLong", f"{len(plaintext)} bytes")
    if s.sending is not None and s.sending.n >= U32_MAX:
        raise ProtocolError("CounterExhausted")
    s.pq.prepare(draw)
    if s.sending is None:
        _sending_step(s, draw)
    chain = s.sending
    section = s.pq.build_section(s.pq.capacity(base, s.bucket, limit))
    header = s.dhs_pub + u32(s.pn) + u32(chain.n) + u32(chain.e)
    mk, ck_next = kdf_ck(chain.ck)
    pad = round_up(base + len(section), s.bucket) - base - len(section)
    body = u16(len(section)) + section + u32(len(plaintext)) + plaintext + bytes(pad)
    nonce = draw(NONCE_LEN)
    enc_header = xchacha20poly1305_seal(chain.hk, nonce, header, _header_ad() + s.th)
    prefix = u8(WIRE_VERSION) + u8(TYPE_RATCHET_MESSAGE) + nonce + enc_header
    ak = kdf_body(mk, nonce)
    enc_body = chacha20poly1305_seal(ak, bytes(12), body, _body_ad(s.th, ad, prefix, wrapper))
    trace = EncryptTrace(chain.hk, mk, ak, header, section, body)
    chain.ck = ck_next
    chain.n += 1
    return wrapper + prefix + enc_body, trace


# --------------------------------------------------------------------------
# §7.8 skipped keys
# --------------------------------------------------------------------------

def _advance(chain: Chain, until: int) -> None:
    """Derive the keys chain.next_index … until−1 and keep them as skipped."""
    while chain.next_index < until:
        mk, ck = kdf_ck(chain.chain_key)
        chain.skipped[chain.next_index] = mk
        chain.chain_key = ck
        chain.next_index += 1
    _evict_lowest(chain, len(chain.skipped) - MAX_SKIPPED_KEYS_PER_CHAIN)


def _evict_lowest(chain: Chain, count: int) -> int:
    """Evict up to `count` skipped keys of the chain, lowest index first,
    raising its eviction mark. Returns the number evicted."""
    if count <= 0:
        return 0
    victims = sorted(chain.skipped)[:count]
    for i in victims:
        del chain.skipped[i]
        chain.eviction_mark = max(chain.eviction_mark, i + 1)
    return len(victims)


def _enforce_total(s: Session) -> None:
    """MAX_SKIPPED_KEYS: evict from the oldest chain first (OLD front to
    back, then the current chain)."""
    chains = list(s.old) + ([s.recv] if s.recv is not None else [])
    excess = sum(len(c.skipped) for c in chains) - MAX_SKIPPED_KEYS
    for c in chains:
        if excess <= 0:
            break
        excess -= _evict_lowest(c, excess)


def _next_key(chain: Chain) -> bytes:
    """The key of index chain.next_index; the chain moves past it."""
    mk, ck = kdf_ck(chain.chain_key)
    chain.chain_key = ck
    chain.next_index += 1
    return mk


def _skipped_key(chain: Chain, n: int) -> bytes:
    mk = chain.skipped.pop(n, None)
    if mk is None:
        if n < chain.eviction_mark:
            raise ProtocolError("MessageTooOld", f"index {n}")
        raise ProtocolError("DuplicateMessage", f"index {n}")
    return mk


# --------------------------------------------------------------------------
# §7.7 decrypt, §7.9 transactional
# --------------------------------------------------------------------------

@dataclass
class ParsedMessage:
    nonce: bytes
    enc_header: bytes
    enc_body: bytes
    prefix: bytes


def parse_message(b: bytes) -> ParsedMessage:
    try:
        r = Reader(b, TYPE_RATCHET_MESSAGE, "ratchet message")
        nonce = r.take(NONCE_LEN, "nonce")
        enc_header = r.take(ENC_HEADER_LEN, "enc_header")
        enc_body = r.rest()
        if len(enc_body) < MIN_BODY_CT_LEN:
            raise ProtocolError("Truncated", "ratchet message: enc_body")
    except ProtocolError as e:
        raise ProtocolError("Wire", f"{e.cls}: {e.detail}") from None
    return ParsedMessage(nonce, enc_header, enc_body, b[:PREFIX_LEN])


def _parse_header(h: bytes) -> tuple[bytes, int, int, int]:
    return (h[0:32], int.from_bytes(h[32:36], "big"), int.from_bytes(h[36:40], "big"),
            int.from_bytes(h[40:44], "big"))


def _open_header(hk: bytes, pm: ParsedMessage, th: bytes):
    h = xchacha20poly1305_open(hk, pm.nonce, pm.enc_header, _header_ad() + th)
    return None if h is None else _parse_header(h)


def _parse_body(body: bytes) -> tuple[bytes, bytes]:
    """(section, plaintext); §7.7 body layout, zero padding required."""
    def bad(why: str):
        return ProtocolError("MalformedPqSection", f"body: {why}")
    if len(body) < 2:
        raise bad("truncated")
    sl = int.from_bytes(body[0:2], "big")
    if len(body) < 2 + sl + 4:
        raise bad("truncated")
    section = body[2:2 + sl]
    pl = int.from_bytes(body[2 + sl:6 + sl], "big")
    if len(body) < 6 + sl + pl:
        raise bad("plaintext length")
    plaintext = body[6 + sl:6 + sl + pl]
    if any(body[6 + sl + pl:]):
        raise bad("non-zero padding")
    return section, plaintext


def message_key_for(s: Session, pm: ParsedMessage) -> bytes:
    """Steps 3-6 of §7.7 on `s` (a staged copy): the message key `MK` of
    the message whose header `pm` carries, with every state change those
    steps make applied to `s`."""
    # 3. trial decryption
    candidates = []
    if s.recv is not None:
        candidates.append(("current", s.recv.header_key, s.recv))
    candidates.append(("next", s.nhkr, None))
    for c in s.old:
        candidates.append(("old", c.header_key, c))
    found = None
    for what, hk, chain in candidates:
        hdr = _open_header(hk, pm, s.th)
        if hdr is not None:
            found = (what, chain, hdr)
            break
    if found is None:
        raise ProtocolError("UndecryptableHeader")
    what, chain, (b, pn_, n, e) = found

    if what == "current":
        # 4.
        if b != s.dhr:
            raise ProtocolError("UndecryptableHeader", "ratchet key is not DHr")
        if n >= chain.next_index:
            if n - chain.next_index > MAX_SKIP:
                raise ProtocolError("TooFarAhead")
            _advance(chain, n)
            mk = _next_key(chain)
            _enforce_total(s)
        else:
            mk = _skipped_key(chain, n)
    elif what == "old":
        # 5.
        if n >= chain.next_index:
            raise ProtocolError("UndecryptableHeader", "beyond the end of an old chain")
        mk = _skipped_key(chain, n)
    else:
        # 6. receiving step (§7.4)
        if s.dhs_pub == bytes(32):
            # step 0: a responder that has not sent has no ratchet key
            raise ProtocolError("NewChainBeforeReply")
        if s.recv is not None:
            if pn_ < s.recv.next_index:
                raise ProtocolError("UndecryptableHeader", "PN below the receiving chain's index")
            if pn_ - s.recv.next_index > MAX_SKIP:
                raise ProtocolError("TooFarAhead")
            _advance(s.recv, pn_)
            s.old.append(s.recv)
            while len(s.old) > MAX_OLD_CHAINS:
                s.old.pop(0)
            s.recv = None
        if n > MAX_SKIP:
            raise ProtocolError("TooFarAhead")
        dh_out = dh(s.dhs_priv, b, "NonContributoryKey")
        pq = (e, s.pq.own_secret_for(e)) if e != 0 else None
        s.rk, ck, nhk = kdf_rk(s.rk, dh_out, pq)
        s.recv = Chain(b, s.nhkr, ck)
        s.nhkr = nhk
        s.dhr = b
        _advance(s.recv, n)
        mk = _next_key(s.recv)
        _enforce_total(s)
        if s.sending is not None:
            s.pn = s.sending.n
        s.sending = None
        if e != 0:
            s.pq.complete_outgoing()
    return mk


def _decrypt_ratchet(s: Session, pm: ParsedMessage, ad: bytes, wrapper: bytes) -> bytes:
    """Steps 3-7 of §7.7 on `s` (a staged copy)."""
    mk = message_key_for(s, pm)
    # 7. body, under the body key AK derived from MK and the nonce (§7.3)
    ak = kdf_body(mk, pm.nonce)
    body = chacha20poly1305_open(ak, bytes(12), pm.enc_body, _body_ad(s.th, ad, pm.prefix, wrapper))
    if body is None:
        raise ProtocolError("AuthenticationFailed")
    section, plaintext = _parse_body(body)
    s.pq.receive_section(parse_section(section))
    return plaintext


def _commit(s: Session, staged: Session) -> None:
    s.__dict__.update(staged.__dict__)


def decrypt(s: Session, data: bytes, ad: bytes) -> bytes:
    """§7.7 decryption of a ratchet message or (responder) a prekey message
    of this session. Any error leaves `s` unchanged (§7.9)."""
    staged = copy.deepcopy(s)
    if len(data) >= 2 and data[0] == WIRE_VERSION and data[1] == TYPE_PREKEY_MESSAGE:
        try:
            msg = PrekeyMessage.decode(data)
        except ProtocolError as e:
            raise ProtocolError("Wire", f"{e.cls}: {e.detail}") from None
        if s.role != ROLE_RESPONDER or msg.ek_a != s.ek_a:
            raise ProtocolError("HandshakeMismatch")
        wrapper = data[:len(data) - len(msg.payload)]
        plaintext = _decrypt_ratchet(staged, parse_message(msg.payload), ad, wrapper)
    else:
        plaintext = _decrypt_ratchet(staged, parse_message(data), ad, b"")
    if staged.role == ROLE_INITIATOR:
        staged.handshake_header = None   # a message from the responder arrived
    _commit(s, staged)
    return plaintext


def respond_first(seed: SessionSeed, msg: PrekeyMessage, wrapper: bytes, local_identity: bytes,
                  ad: bytes, bucket: int = DEFAULT_BUCKET) -> tuple[Session, bytes]:
    """§7.2 responder: `seed` from handshake phase 1 (§5.7). Opens the
    header with HK_A, initialises, and decrypts. The caller commits the
    handshake (phase 2) only if this returns."""
    pm = parse_message(msg.payload)
    hdr = _open_header(seed.initiator_header_key, pm, seed.transcript_hash)
    if hdr is None:
        raise ProtocolError("UndecryptableHeader")
    s = _init_responder(seed, msg, local_identity, hdr[0], bucket)
    plaintext = _decrypt_ratchet(s, pm, ad, wrapper)
    return s, plaintext
