"""The hybrid handshake (spec chapter 5)."""

from __future__ import annotations

from dataclasses import dataclass

from common import ProtocolError, Reader, ascii_, check_flags, u8, u32
from primitives import (
    MLKEM_CIPHERTEXT_LEN,
    X25519_KEY_LEN,
    dh,
    hkdf,
    mlkem_decaps,
    mlkem_encaps,
    mlkem_keygen,
    sha256,
    x25519_public,
)
from protocol.prekeys import (
    PQ_KIND_LAST_RESORT,
    PQ_KIND_ONE_TIME,
    PUBLIC_IDENTITY_LEN,
    TYPE_PREKEY_MESSAGE,
    Bundle,
    DeviceIdentity,
    MAX_BASE_KEYS_PER_LAST_RESORT,
    PrekeyStore,
    check_public_identity,
    split_public_identity,
)

LABEL_HANDSHAKE_TRANSCRIPT = ascii_("SessionRatchet/v1/handshake-transcript")
LABEL_HANDSHAKE_KEYS = ascii_("SessionRatchet/v1/handshake-keys")

MSG_FLAG_OPK = 0x01
MSG_FLAG_PQ_ONE_TIME = 0x02


# --------------------------------------------------------------------------
# §5.6 prekey message
# --------------------------------------------------------------------------

@dataclass
class PrekeyMessage:
    public_identity_a: bytes
    ek_a: bytes
    spk_id: int
    opk_id: int | None
    pq_kind: int
    pq_id: int
    ct: bytes
    payload: bytes

    def encode(self) -> bytes:
        flags = (MSG_FLAG_OPK if self.opk_id is not None else 0) | \
                (MSG_FLAG_PQ_ONE_TIME if self.pq_kind == PQ_KIND_ONE_TIME else 0)
        out = (u8(0x01) + u8(TYPE_PREKEY_MESSAGE) + self.public_identity_a + self.ek_a
               + u32(self.spk_id) + u8(flags))
        if self.opk_id is not None:
            out += u32(self.opk_id)
        return out + u32(self.pq_id) + self.ct + self.payload

    @classmethod
    def decode(cls, b: bytes) -> "PrekeyMessage":
        """§5.6 with the §6.5 order."""
        r = Reader(b, TYPE_PREKEY_MESSAGE, "prekey message")
        pi = r.take(PUBLIC_IDENTITY_LEN, "public_identity_A")
        ek_a = r.take(X25519_KEY_LEN, "EK_A")
        spk_id = r.take_u32("SPK id")
        flags = r.take(1, "flags")[0]
        opk_id = r.take_u32("OPK id") if flags & MSG_FLAG_OPK else None
        pq_id = r.take_u32("PQ prekey id")
        ct = r.take(MLKEM_CIPHERTEXT_LEN, "CT")
        payload = r.rest()
        check_flags(flags, MSG_FLAG_OPK | MSG_FLAG_PQ_ONE_TIME, "prekey message")
        check_public_identity(pi)
        if not payload:
            raise ProtocolError("Empty", "prekey message: payload")
        kind = PQ_KIND_ONE_TIME if flags & MSG_FLAG_PQ_ONE_TIME else PQ_KIND_LAST_RESORT
        return cls(pi, ek_a, spk_id, opk_id, kind, pq_id, ct, payload)


# --------------------------------------------------------------------------
# §5.3-§5.5
# --------------------------------------------------------------------------

def transcript_hash(pi_a: bytes, pi_b: bytes, spk_id: int, spk_b: bytes,
                    opk: tuple[int, bytes] | None, pq_kind: int, pq_id: int, pqpk_b: bytes,
                    ek_a: bytes, ct: bytes) -> bytes:
    data = LABEL_HANDSHAKE_TRANSCRIPT + pi_a + pi_b + u32(spk_id) + spk_b
    data += (u8(1) + u32(opk[0]) + opk[1]) if opk is not None else u8(0)
    data += u8(pq_kind) + u32(pq_id) + pqpk_b + ek_a + ct
    return sha256(data)


@dataclass
class SessionSeed:
    transcript_hash: bytes
    root_key: bytes
    initiator_chain_key: bytes
    initiator_header_key: bytes
    responder_header_key: bytes


def derive_keys(th: bytes, dhs: list[bytes], ss: bytes) -> SessionSeed:
    ikm = b"\xff" * 32 + b"".join(dhs) + ss
    okm = hkdf(bytes(32), ikm, LABEL_HANDSHAKE_KEYS + th, 128)
    return SessionSeed(th, okm[0:32], okm[32:64], okm[64:96], okm[96:128])


# --------------------------------------------------------------------------
# §5.2 initiator
# --------------------------------------------------------------------------

def initiate(alice: DeviceIdentity, bundle: Bundle, ek: bytes, m: bytes,
             payload: bytes) -> tuple[SessionSeed, PrekeyMessage]:
    """`bundle` is decoded and verified. `ek`, `m` are the two draws of steps
    2 and 3, in that order."""
    pi_a = alice.public_identity
    if bundle.public_identity == pi_a:
        raise ProtocolError("SameIdentity")
    ek_a = x25519_public(ek)
    pq_kind, pq_id, pqpk_b = bundle.pq_prekey_used()
    ct, ss = mlkem_encaps(pqpk_b, m)
    _, ik_b = split_public_identity(bundle.public_identity)
    dhs = [dh(alice.x25519_secret, bundle.spk_pub),
           dh(ek, ik_b),
           dh(ek, bundle.spk_pub)]
    if bundle.opk is not None:
        dhs.append(dh(ek, bundle.opk[1]))
    th = transcript_hash(pi_a, bundle.public_identity, bundle.spk_id, bundle.spk_pub,
                         bundle.opk, pq_kind, pq_id, pqpk_b, ek_a, ct)
    seed = derive_keys(th, dhs, ss)
    msg = PrekeyMessage(pi_a, ek_a, bundle.spk_id,
                        bundle.opk[0] if bundle.opk else None,
                        pq_kind, pq_id, ct, payload)
    return seed, msg


# --------------------------------------------------------------------------
# §5.7 responder
# --------------------------------------------------------------------------

def _check_store(store: PrekeyStore, msg: PrekeyMessage) -> None:
    """Steps 2-5 of phase 1, in spec order."""
    if msg.spk_id not in store.signed:
        raise ProtocolError("UnknownSignedPrekey", f"id {msg.spk_id}")
    _check_one_time_and_pq(store, msg)


def _check_one_time_and_pq(store: PrekeyStore, msg: PrekeyMessage) -> None:
    """Steps 3-5 of phase 1; also the phase-2 re-check (which does not look
    at the signed prekey)."""
    if msg.opk_id is not None and msg.opk_id not in store.one_time:
        raise ProtocolError("UnknownOneTimePrekey", f"id {msg.opk_id}")
    if msg.pq_kind == PQ_KIND_ONE_TIME:
        if msg.pq_id not in store.one_time_kem:
            raise ProtocolError("UnknownKemPrekey", f"one-time id {msg.pq_id}")
    else:
        entry = store.last_resort.get(msg.pq_id)
        if entry is None:
            raise ProtocolError("UnknownKemPrekey", f"last-resort id {msg.pq_id}")
        if msg.ek_a in entry.base_keys:
            raise ProtocolError("ReplayedHandshake")
        if len(entry.base_keys) >= MAX_BASE_KEYS_PER_LAST_RESORT:
            raise ProtocolError("LastResortPrekeyExhausted")


def respond(bob: DeviceIdentity, store: PrekeyStore, msg: PrekeyMessage) -> SessionSeed:
    """Phase 1: reads the store, changes nothing."""
    pi_b = bob.public_identity
    if msg.public_identity_a == pi_b:
        raise ProtocolError("SameIdentity")
    _check_store(store, msg)
    spk_secret = store.signed[msg.spk_id]
    _, ik_a = split_public_identity(msg.public_identity_a)
    dhs = [dh(spk_secret, ik_a),
           dh(bob.x25519_secret, msg.ek_a),
           dh(spk_secret, msg.ek_a)]
    opk = None
    if msg.opk_id is not None:
        opk_secret = store.one_time[msg.opk_id]
        dhs.append(dh(opk_secret, msg.ek_a))
        opk = (msg.opk_id, x25519_public(opk_secret))
    if msg.pq_kind == PQ_KIND_ONE_TIME:
        pq_seed = store.one_time_kem[msg.pq_id]
    else:
        pq_seed = store.last_resort[msg.pq_id].seed_d_z
    ss = mlkem_decaps(pq_seed, msg.ct)
    pqpk_b, _ = mlkem_keygen(pq_seed)
    th = transcript_hash(msg.public_identity_a, pi_b, msg.spk_id,
                         x25519_public(spk_secret), opk, msg.pq_kind, msg.pq_id,
                         pqpk_b, msg.ek_a, msg.ct)
    return derive_keys(th, dhs, ss)


def commit(store: PrekeyStore, msg: PrekeyMessage) -> None:
    """Phase 2: re-check against the current store, then consume."""
    _check_one_time_and_pq(store, msg)
    if msg.opk_id is not None:
        del store.one_time[msg.opk_id]
    if msg.pq_kind == PQ_KIND_ONE_TIME:
        del store.one_time_kem[msg.pq_id]
    else:
        store.last_resort[msg.pq_id].base_keys.add(msg.ek_a)
