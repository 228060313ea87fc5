"""The upgrade path from v2 direct messages to the hybrid double ratchet
(spec §9.11): identities (§9.11.1), the offer (§9.11.2), key derivation
(§9.11.3), receiving (§9.11.4) and the offering state (§9.11.5).

Error classes are the `UpgradeError` paths of §9.11.8: `Dm/…` for a v2
receive error, `Ratchet/…` for a chapter 7 error, else the variant name.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from common import ProtocolError, ascii_
from primitives import MLKEM_CIPHERTEXT_LEN, ed25519_check_public_key, hkdf, sha256
from protocol import ratchet
from protocol.handshake import SessionSeed
from protocol.ratchet import (
    MIN_MESSAGE_LEN as RATCHET_MIN_MESSAGE_LEN,
    ROLE_INITIATOR,
    ROLE_RESPONDER,
    Chain,
    SendChain,
    Session,
    ratchet_init_keys,
)
from protocol.session_v2_dm import MAX_MESSAGE_LEN, PfsStart, pfs_finish, pfs_start, receive
from protocol.session_v2_identity import SESSION_ID_PREFIX, Identity
from protocol.session_v2_keys import KemKeys
from protocol.session_v2_primitives import ChaChaRng, ed25519_pk_to_x25519, x25519_to_ed25519_positive

# §3.6 labels.
LABEL_UPGRADE_TRANSCRIPT = ascii_("SessionRatchet/v1/upgrade-transcript")
LABEL_UPGRADE_KEYS = ascii_("SessionRatchet/v1/upgrade-keys")

# §9.11.2 offer content.
OFFER_MAGIC = b"\x00SRUP"
OFFER_VERSION = 0x01
OFFER_HEADER_LEN = 5 + 1 + 32 + 32 + 32 + 32
assert OFFER_HEADER_LEN == 134 and OFFER_MAGIC == bytes.fromhex("0053525550")

# §9.8 wire layout of the carrying v2 message.
_E_AT = slice(4, 36)
_CT_AT = slice(36, 36 + MLKEM_CIPHERTEXT_LEN)


def _err(e: ProtocolError, outer: str) -> ProtocolError:
    """Wrap a class in the `UpgradeError` variant. The ratchet's `Wire`
    error carries the §6.5 class in its detail (`"Truncated: …"`); as a
    class path it is `Ratchet/Wire/Truncated`."""
    if e.cls == "Wire" and ":" in e.detail:
        inner, _, detail = e.detail.partition(":")
        return ProtocolError(f"{outer}/Wire/{inner}", detail.strip())
    return ProtocolError(f"{outer}/{e.cls}", e.detail)


# --------------------------------------------------------------------------
# §9.11.1 identities
# --------------------------------------------------------------------------

def positive_alternative(session_id: bytes) -> bytes:
    """The Ed25519 key (sign bit 0) of the Session ID's X25519 key; it must
    pass the strict decoding of §4.1 (`InvalidAccountKey`)."""
    ed = x25519_to_ed25519_positive(session_id[1:])
    if ed is None:
        raise ProtocolError("InvalidAccountKey", "no positive alternative")
    _strict(ed)
    return ed


def _strict(ed: bytes) -> None:
    try:
        ed25519_check_public_key(ed)
    except ProtocolError as e:
        raise ProtocolError("InvalidAccountKey", e.detail) from None


def sender_session_id(ed_a: bytes) -> bytes:
    """`SID_A` of a received `"S"` (§9.5 conversion of a received key)."""
    _strict(ed_a)
    try:
        return bytes([SESSION_ID_PREFIX]) + ed25519_pk_to_x25519(ed_a)
    except ProtocolError as e:
        raise ProtocolError("InvalidAccountKey", e.detail) from None


def public_identity(ed: bytes, session_id: bytes) -> bytes:
    """`DevicePublicIdentity` (§4.1): Ed25519 ‖ X25519."""
    return ed + session_id[1:]


# --------------------------------------------------------------------------
# §9.11.3 key derivation
# --------------------------------------------------------------------------

@dataclass
class Anchor:
    u: bytes
    x1: bytes
    e1: bytes
    h1: bytes

    def header(self) -> bytes:
        return OFFER_MAGIC + bytes([OFFER_VERSION]) + self.u + self.x1 + self.e1 + self.h1


@dataclass
class Derived:
    seed: SessionSeed
    upgrade_id: bytes
    identity_a: bytes
    identity_b: bytes


def transcript_hash(sid_a: bytes, ed_a: bytes, sid_b: bytes, ed_b: bytes, m1: bytes,
                    x1: bytes, e1: bytes, h1: bytes) -> bytes:
    return sha256(LABEL_UPGRADE_TRANSCRIPT + sid_a + ed_a + sid_b + ed_b + m1 + x1 + e1 + h1)


def derive(anchor: Anchor, m1: bytes, sid_a: bytes, ed_a: bytes, sid_b: bytes) -> Derived:
    ed_b = positive_alternative(sid_b)
    th = transcript_hash(sid_a, ed_a, sid_b, ed_b, m1, anchor.x1, anchor.e1, anchor.h1)
    okm = hkdf(bytes(32), anchor.u, LABEL_UPGRADE_KEYS + th, 160)
    seed = SessionSeed(th, okm[0:32], okm[32:64], okm[64:96], okm[96:128])
    return Derived(seed, okm[128:160], public_identity(ed_a, sid_a), public_identity(ed_b, sid_b))


# --------------------------------------------------------------------------
# Sessions (§9.11.5)
# --------------------------------------------------------------------------

@dataclass
class UpgradeSession:
    peer_session_id: bytes
    upgrade_id: bytes
    offering: Anchor | None          # set while offering (initiator only)
    offers_sent: int
    ratchet: Session


def _initiator_state(d: Derived, e1: bytes, draw) -> Session:
    """§9.11.3 step 4 with §7.2: one draw of 32 bytes (DHs); no handshake
    header (the wrapper is empty)."""
    rk0, nhk_i = ratchet_init_keys(d.seed.root_key, d.seed.transcript_hash)
    dhs = draw(32)
    return Session(
        role=ROLE_INITIATOR, th=d.seed.transcript_hash, local_identity=d.identity_a,
        remote_identity=d.identity_b, ek_a=e1, rk=rk0,
        dhs_priv=dhs, dhs_pub=ratchet.x25519_public(dhs), dhr=None,
        sending=SendChain(d.seed.initiator_chain_key, d.seed.initiator_header_key, 0, 0),
        pn=0, nhks=nhk_i, recv=None, nhkr=d.seed.responder_header_key,
        handshake_header=None)


def _responder_state(d: Derived, e1: bytes, ratchet_key_a: bytes) -> Session:
    rk0, nhk_i = ratchet_init_keys(d.seed.root_key, d.seed.transcript_hash)
    return Session(
        role=ROLE_RESPONDER, th=d.seed.transcript_hash, local_identity=d.identity_b,
        remote_identity=d.identity_a, ek_a=e1, rk=rk0,
        dhs_priv=bytes(32), dhs_pub=bytes(32), dhr=ratchet_key_a, sending=None,
        pn=0, nhks=d.seed.responder_header_key,
        recv=Chain(ratchet_key_a, d.seed.initiator_header_key, d.seed.initiator_chain_key),
        nhkr=nhk_i)


# --------------------------------------------------------------------------
# Initiator: initiate and encrypt_offer
# --------------------------------------------------------------------------

@dataclass
class OfferTrace:
    content: bytes          # the offer content "c"
    derived: Derived | None  # the first offer only


def _seal_offer(start: PfsStart, alice: Identity, sid_b: bytes, content: bytes) -> bytes:
    message = pfs_finish(start, alice, sid_b, content)
    if len(message) > MAX_MESSAGE_LEN:
        raise ProtocolError("PlaintextTooLong", f"offer of {len(message)} bytes")
    return message


def initiate(rng: ChaChaRng, alice: Identity, sid_b: bytes, account: tuple[bytes, bytes],
             plaintext: bytes, ad: bytes) -> tuple[UpgradeSession, bytes, OfferTrace]:
    """§9.11.3 with the first offer. `account` is Bob's `(M₁, X₁)`. Draws:
    `u` (32), `e` (32), `m` (32), the ratchet key (32), then `encrypt`'s."""
    if sid_b == alice.session_id:
        raise ProtocolError("SelfUpgrade")
    _strict(alice.ed25519_pk)
    m1, x1 = account
    u = rng.bytes(32)
    start = pfs_start(rng, sid_b, account)
    anchor = Anchor(u, x1, start.e_pub, sha256(start.ct))
    d = derive(anchor, m1, alice.session_id, alice.ed25519_pk, sid_b)
    s = _initiator_state(d, anchor.e1, rng.bytes)
    msg, _ = ratchet.encrypt(s, plaintext, ad, rng.bytes)
    content = anchor.header() + msg
    message = _seal_offer(start, alice, sid_b, content)
    up = UpgradeSession(sid_b, d.upgrade_id, anchor, 1, s)
    return up, message, OfferTrace(content, d)


def encrypt_offer(rng: ChaChaRng, up: UpgradeSession, alice: Identity,
                  account: tuple[bytes, bytes], plaintext: bytes,
                  ad: bytes) -> tuple[bytes, OfferTrace]:
    """A repeat (§9.11.3): `e` (32), `m` (32) for a new v2 message to Bob's
    current account keys, then `encrypt`'s draws. A failure leaves `up`
    unchanged."""
    if up.offering is None:
        raise ProtocolError("NotOffering")
    start = pfs_start(rng, up.peer_session_id, account)
    staged = copy.deepcopy(up.ratchet)
    try:
        msg, _ = ratchet.encrypt(staged, plaintext, ad, rng.bytes)
    except ProtocolError as e:
        raise _err(e, "Ratchet") from None
    content = up.offering.header() + msg
    message = _seal_offer(start, alice, up.peer_session_id, content)
    up.ratchet.__dict__.update(staged.__dict__)
    up.offers_sent += 1
    return message, OfferTrace(content, None)


def decrypt(up: UpgradeSession, data: bytes, ad: bytes) -> bytes:
    """A plain ratchet message of the session (§9.11.4, §9.11.5): in
    `OFFERING` it can only come from Bob and ends the offer phase."""
    try:
        plaintext = ratchet.decrypt(up.ratchet, data, ad)
    except ProtocolError as e:
        raise _err(e, "Ratchet") from None
    up.offering = None
    return plaintext


def encrypt(up: UpgradeSession, plaintext: bytes, ad: bytes, draw) -> bytes:
    if up.offering is not None:
        raise ProtocolError("OfferPending")
    try:
        msg, _ = ratchet.encrypt(up.ratchet, plaintext, ad, draw)
    except ProtocolError as e:
        raise _err(e, "Ratchet") from None
    return msg


# --------------------------------------------------------------------------
# Responder (§9.11.4)
# --------------------------------------------------------------------------

@dataclass
class Offer:
    sender_session_id: bytes
    anchor: Anchor
    ratchet_message: bytes
    derived: Derived
    content: bytes


def receive_offer(message: bytes, bob: Identity, held: list[KemKeys]) -> Offer | None:
    """Steps 1-6. None for an ordinary v2 message (`Incoming::Dm`)."""
    try:
        got = receive(message, bob, held)
    except ProtocolError as e:
        raise _err(e, "Dm") from None
    c = got.content
    if not c.startswith(OFFER_MAGIC):
        return None
    # 2.
    if len(c) > len(OFFER_MAGIC) and c[len(OFFER_MAGIC)] != OFFER_VERSION:
        raise ProtocolError("UnsupportedOfferVersion", f"version {c[len(OFFER_MAGIC)]:#04x}")
    if len(c) < OFFER_HEADER_LEN + RATCHET_MIN_MESSAGE_LEN:
        raise ProtocolError("MalformedOffer", f"{len(c)} bytes")
    anchor = Anchor(c[6:38], c[38:70], c[70:102], c[102:134])
    # 3.
    if not got.pfs:
        raise ProtocolError("OfferWithoutPfs")
    sid_a = sender_session_id(got.sender_ed25519_pk)
    if sid_a == bob.session_id:
        raise ProtocolError("SelfUpgrade")
    # 4.
    pair = next((k for k in held if k.x25519_pk == anchor.x1), None)
    if pair is None:
        raise ProtocolError("UnknownAnchorKey")
    # 5.
    if message[_E_AT] == anchor.e1 and sha256(message[_CT_AT]) != anchor.h1:
        raise ProtocolError("AnchorMismatch")
    # 6.
    d = derive(anchor, pair.mlkem_pk, sid_a, got.sender_ed25519_pk, bob.session_id)
    return Offer(sid_a, anchor, c[OFFER_HEADER_LEN:], d, c)


def accept(offer: Offer, ad: bytes) -> tuple[UpgradeSession, bytes]:
    """No session for `(SID_A, upgrade_id)`: the responder state of §7.2,
    the header opened with `HK_A`, the message decrypted (§7.7)."""
    d = offer.derived
    try:
        pm = ratchet.parse_message(offer.ratchet_message)
        hdr = ratchet._open_header(d.seed.initiator_header_key, pm, d.seed.transcript_hash)
        if hdr is None:
            raise ProtocolError("UndecryptableHeader")
        s = _responder_state(d, offer.anchor.e1, hdr[0])
        plaintext = ratchet._decrypt_ratchet(s, pm, ad, b"")
    except ProtocolError as e:
        raise _err(e, "Ratchet") from None
    return UpgradeSession(offer.sender_session_id, d.upgrade_id, None, 0, s), plaintext


def decrypt_offer(up: UpgradeSession, offer: Offer, ad: bytes) -> bytes:
    """A repeat: the carried ratchet message, with the session (§7.7,
    transactional)."""
    if (offer.sender_session_id, offer.derived.upgrade_id) != (up.peer_session_id, up.upgrade_id):
        raise ProtocolError("OfferMismatch")
    try:
        return ratchet.decrypt(up.ratchet, offer.ratchet_message, ad)
    except ProtocolError as e:
        raise _err(e, "Ratchet") from None
