"""The stored state of a session (spec §7.10): canonical encoder and strict
decoder (type 0x10), and the encrypted form (type 0x11)."""

from __future__ import annotations

from common import WIRE_VERSION, ProtocolError, ascii_, u8, u16, u32
from primitives import (
    MLKEM_CIPHERTEXT_LEN,
    MLKEM_PUBLIC_KEY_LEN,
    MLKEM_SEED_LEN,
    mlkem_check_encapsulation_key,
    mlkem_encaps,
    x25519_public,
    xchacha20poly1305_open,
    xchacha20poly1305_seal,
)
from protocol.handshake import MSG_FLAG_OPK, MSG_FLAG_PQ_ONE_TIME
from protocol.ratchet import (
    MAX_OLD_CHAINS,
    MAX_SKIPPED_KEYS_PER_CHAIN,
    ROLE_INITIATOR,
    ROLE_RESPONDER,
    Chain,
    SendChain,
    Session,
)
from protocol.ratchet_pq import OwnKey, Outgoing, Pending, PqState, Reassembly, SYMBOL_LEN

LABEL_STORED_STATE = ascii_("SessionRatchet/v1/stored-state")

TYPE_STORED_SESSION = 0x10
TYPE_ENCRYPTED_STORED_SESSION = 0x11
MAX_STORED_LEN = 1 << 20          # 1 MiB
MAX_REASSEMBLY_SYMBOLS = 256


# --------------------------------------------------------------------------
# Encoding
# --------------------------------------------------------------------------

def _flag(present: bool) -> bytes:
    return u8(1 if present else 0)


def _enc_chain(c: Chain) -> bytes:
    out = (c.ratchet_key + c.header_key + c.chain_key + u32(c.next_index) + u32(c.eviction_mark)
           + u32(len(c.skipped)))
    for i in sorted(c.skipped):
        out += u32(i) + c.skipped[i]
    return out


def _enc_own(k: OwnKey) -> bytes:
    return u32(k.id) + k.seed + u8(int(k.acked)) + u8(int(k.used)) + u8(k.cursor)


def _enc_reassembly(r: Reassembly) -> bytes:
    out = u32(r.id) + u32(r.target) + u16(len(r.symbols))
    for i, sym in r.symbols.items():
        out += u8(i) + sym
    return out


def _enc_outgoing(o: Outgoing, peer_id: int | None) -> bytes:
    out = u32(o.epoch) + u32(o.target) + o.m + u8(o.cursor)
    if o.target == peer_id:
        return out + _flag(False)
    return out + _flag(True) + o.ct + o.ss


def _enc_pq(p: PqState) -> bytes:
    out = _flag(p.own is not None) + (_enc_own(p.own) if p.own else b"")
    out += _flag(p.previous is not None) + (_enc_own(p.previous) if p.previous else b"")
    out += u32(p.next_own_id) + u8(int(p.bootstrapped))
    out += _flag(p.peer_key is not None)
    if p.peer_key is not None:
        out += u32(p.peer_id) + p.peer_key
    out += _flag(p.key_reassembly is not None)
    if p.key_reassembly is not None:
        out += _enc_reassembly(p.key_reassembly)
    out += _flag(p.ct_reassembly is not None)
    if p.ct_reassembly is not None:
        out += _enc_reassembly(p.ct_reassembly)
    out += _flag(p.outgoing is not None)
    if p.outgoing is not None:
        out += _enc_outgoing(p.outgoing, p.peer_id)
    out += u32(p.next_epoch)
    out += _flag(p.pending is not None)
    if p.pending is not None:
        out += u32(p.pending.epoch) + u32(p.pending.target) + p.pending.ss
    out += u32(p.last_mixed) + u32(p.idle_streak)
    out += u32(p.epochs_mixed >> 32) + u32(p.epochs_mixed & 0xFFFFFFFF)
    return out


def encode(s: Session) -> bytes:
    out = u8(WIRE_VERSION) + u8(TYPE_STORED_SESSION)
    out += u8(s.role) + s.th + s.local_identity + s.remote_identity + s.ek_a + s.rk
    out += s.dhs_priv + s.dhs_pub
    out += _flag(s.dhr is not None) + (s.dhr or b"")
    out += _flag(s.sending is not None)
    if s.sending is not None:
        out += s.sending.ck + s.sending.hk + u32(s.sending.n) + u32(s.sending.e)
    out += u32(s.pn) + s.nhks
    out += _flag(s.recv is not None) + (_enc_chain(s.recv) if s.recv else b"")
    out += s.nhkr
    out += u8(len(s.old)) + b"".join(_enc_chain(c) for c in s.old)
    out += _enc_pq(s.pq)
    out += _flag(s.handshake_header is not None) + (s.handshake_header or b"")
    out += u16(s.bucket)
    return out


# --------------------------------------------------------------------------
# Decoding: any defect is `Corrupted` (a version other than 0x01 is
# `UnsupportedVersion`).
# --------------------------------------------------------------------------

class _R:
    def __init__(self, b: bytes):
        self.b, self.pos = b, 0

    def take(self, n: int, what: str) -> bytes:
        if len(self.b) - self.pos < n:
            raise ProtocolError("Corrupted", f"truncated at {what}")
        out = self.b[self.pos:self.pos + n]
        self.pos += n
        return out

    def u8(self, what: str) -> int:
        return self.take(1, what)[0]

    def u16(self, what: str) -> int:
        return int.from_bytes(self.take(2, what), "big")

    def u32(self, what: str) -> int:
        return int.from_bytes(self.take(4, what), "big")

    def flag(self, what: str) -> bool:
        v = self.u8(what)
        if v not in (0, 1):
            raise ProtocolError("Corrupted", f"flag {what} = {v:#04x}")
        return v == 1


def _dec_chain(r: _R) -> Chain:
    c = Chain(r.take(32, "ratchet key"), r.take(32, "header key"), r.take(32, "chain key"))
    c.next_index = r.u32("next index")
    c.eviction_mark = r.u32("eviction mark")
    count = r.u32("skipped count")
    if count > MAX_SKIPPED_KEYS_PER_CHAIN:
        raise ProtocolError("Corrupted", f"{count} skipped keys")
    last = -1
    for _ in range(count):
        i = r.u32("skipped index")
        if i <= last:
            raise ProtocolError("Corrupted", "skipped indices not increasing")
        last = i
        c.skipped[i] = r.take(32, "skipped key")
    return c


def _dec_own(r: _R) -> OwnKey:
    k = OwnKey(r.u32("own key id"), r.take(MLKEM_SEED_LEN, "own key seed"))
    k.acked = r.flag("acked")
    k.used = r.flag("used")
    k.cursor = r.u8("cursor")
    return k


def _dec_reassembly(r: _R) -> Reassembly:
    a = Reassembly(r.u32("reassembly id"), r.u32("reassembly target"))
    count = r.u16("reassembly count")
    if count > MAX_REASSEMBLY_SYMBOLS:
        raise ProtocolError("Corrupted", f"{count} symbols")
    for _ in range(count):
        i = r.u8("symbol index")
        if i in a.symbols:
            raise ProtocolError("Corrupted", "symbol index repeated")
        a.symbols[i] = r.take(SYMBOL_LEN, "symbol")
    return a


def _dec_pq(r: _R) -> PqState:
    p = PqState()
    p.own = _dec_own(r) if r.flag("own key") else None
    p.previous = _dec_own(r) if r.flag("previous own key") else None
    p.next_own_id = r.u32("next own id")
    p.bootstrapped = r.flag("bootstrapped")
    if r.flag("peer key"):
        p.peer_id = r.u32("peer key id")
        p.peer_key = r.take(MLKEM_PUBLIC_KEY_LEN, "peer key")
        try:
            mlkem_check_encapsulation_key(p.peer_key, "Corrupted")
        except ProtocolError:
            raise ProtocolError("Corrupted", "peer key fails the FIPS 203 check") from None
    p.key_reassembly = _dec_reassembly(r) if r.flag("key reassembly") else None
    p.ct_reassembly = _dec_reassembly(r) if r.flag("ciphertext reassembly") else None
    if r.flag("outgoing"):
        epoch, target = r.u32("outgoing epoch"), r.u32("outgoing target")
        m = r.take(32, "outgoing m")
        cursor = r.u8("outgoing cursor")
        if r.flag("outgoing ct"):
            ct = r.take(MLKEM_CIPHERTEXT_LEN, "outgoing ct")
            ss = r.take(32, "outgoing ss")
            if target == p.peer_id:
                raise ProtocolError("Corrupted", "outgoing ciphertext stored for the held peer key")
        else:
            if p.peer_key is None or target != p.peer_id:
                raise ProtocolError("Corrupted", "outgoing target is not the stored peer key")
            ct, ss = mlkem_encaps(p.peer_key, m)
        p.outgoing = Outgoing(epoch, target, m, ct, ss, cursor)
    p.next_epoch = r.u32("next epoch")
    if r.flag("pending"):
        p.pending = Pending(r.u32("pending epoch"), r.u32("pending target"), r.take(32, "pending SS"))
    p.last_mixed = r.u32("last mixed")
    p.idle_streak = r.u32("idle streak")
    p.epochs_mixed = (r.u32("epochs mixed high") << 32) | r.u32("epochs mixed low")
    return p


def _dec_handshake_header(r: _R) -> bytes:
    start = r.pos
    r.take(64 + 32 + 4, "handshake header")
    flags = r.u8("handshake header flags")
    if flags & ~(MSG_FLAG_OPK | MSG_FLAG_PQ_ONE_TIME):
        raise ProtocolError("Corrupted", "handshake header flags")
    if flags & MSG_FLAG_OPK:
        r.take(4, "OPK id")
    r.take(4 + MLKEM_CIPHERTEXT_LEN, "handshake header")
    return r.b[start:r.pos]


def decode(b: bytes) -> Session:
    if len(b) > MAX_STORED_LEN:
        raise ProtocolError("Corrupted", "larger than 1 MiB")
    if len(b) < 1:
        raise ProtocolError("Corrupted", "empty")
    if b[0] != WIRE_VERSION:
        raise ProtocolError("UnsupportedVersion", f"{b[0]:#04x}")
    r = _R(b)
    r.take(1, "version")
    if r.u8("type") != TYPE_STORED_SESSION:
        raise ProtocolError("Corrupted", "type")
    role = r.u8("role")
    if role not in (ROLE_INITIATOR, ROLE_RESPONDER):
        raise ProtocolError("Corrupted", f"role {role}")
    th = r.take(32, "TH")
    local_identity = r.take(64, "local identity")
    remote_identity = r.take(64, "remote identity")
    ek_a = r.take(32, "EK_A")
    rk = r.take(32, "RK")
    dhs_priv = r.take(32, "DHs private")
    dhs_pub = r.take(32, "DHs public")
    if not (dhs_priv == dhs_pub == bytes(32)) and x25519_public(dhs_priv) != dhs_pub:
        raise ProtocolError("Corrupted", "DHs public is not the key of DHs private")
    dhr = r.take(32, "DHr") if r.flag("DHr") else None
    sending = None
    if r.flag("sending chain"):
        sending = SendChain(r.take(32, "CKs"), r.take(32, "HKs"), r.u32("Ns"), r.u32("Es"))
    pn = r.u32("PN")
    nhks = r.take(32, "NHKs")
    recv = _dec_chain(r) if r.flag("receiving chain") else None
    nhkr = r.take(32, "NHKr")
    n_old = r.u8("OLD count")
    if n_old > MAX_OLD_CHAINS:
        raise ProtocolError("Corrupted", f"{n_old} old chains")
    old = [_dec_chain(r) for _ in range(n_old)]
    pq = _dec_pq(r)
    handshake_header = _dec_handshake_header(r) if r.flag("handshake header") else None
    bucket = r.u16("padding bucket")
    if bucket == 0:
        raise ProtocolError("Corrupted", "padding bucket 0")
    if r.pos != len(b):
        raise ProtocolError("Corrupted", "trailing bytes")
    return Session(role=role, th=th, local_identity=local_identity,
                   remote_identity=remote_identity, ek_a=ek_a, rk=rk, dhs_priv=dhs_priv,
                   dhs_pub=dhs_pub, dhr=dhr, sending=sending, pn=pn, nhks=nhks, recv=recv,
                   nhkr=nhkr, old=old, pq=pq, handshake_header=handshake_header, bucket=bucket)


# --------------------------------------------------------------------------
# Encrypted form (type 0x11)
# --------------------------------------------------------------------------

def _storage_ad() -> bytes:
    return LABEL_STORED_STATE + u8(WIRE_VERSION) + u8(TYPE_ENCRYPTED_STORED_SESSION)


def seal(storage_key: bytes, nonce: bytes, stored: bytes) -> bytes:
    return (u8(WIRE_VERSION) + u8(TYPE_ENCRYPTED_STORED_SESSION) + nonce
            + xchacha20poly1305_seal(storage_key, nonce, stored, _storage_ad()))


def open_sealed(storage_key: bytes, b: bytes) -> bytes:
    if len(b) > MAX_STORED_LEN + 2 + 24 + 16:
        raise ProtocolError("Corrupted", "larger than 1 MiB")
    if len(b) >= 1 and b[0] != WIRE_VERSION:
        raise ProtocolError("UnsupportedVersion")
    if len(b) < 2 + 24 or b[1] != TYPE_ENCRYPTED_STORED_SESSION:
        raise ProtocolError("WrongKeyOrTampered")
    pt = xchacha20poly1305_open(storage_key, b[2:26], b[26:], _storage_ad())
    if pt is None:
        raise ProtocolError("WrongKeyOrTampered")
    return pt
