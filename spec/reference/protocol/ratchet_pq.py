"""The ML-KEM ratchet ("PQ epochs") of spec §7.5 and the PQ section of §7.6:
state, the preparation at the start of `encrypt`, section building and
parsing, and receiving a section."""

from __future__ import annotations

from dataclasses import dataclass, field

from common import ProtocolError, u8, u32
from primitives import (
    MLKEM_CIPHERTEXT_LEN,
    MLKEM_PUBLIC_KEY_LEN,
    mlkem_check_encapsulation_key,
    mlkem_decaps,
    mlkem_encaps,
    mlkem_keygen,
)
from protocol import ratchet_erasure as ec

KEY_SYMBOLS = 74          # 1184 / 16
CT_SYMBOLS = 68           # 1088 / 16
SYMBOL_LEN = ec.SYMBOL_LEN
assert KEY_SYMBOLS * SYMBOL_LEN == MLKEM_PUBLIC_KEY_LEN
assert CT_SYMBOLS * SYMBOL_LEN == MLKEM_CIPHERTEXT_LEN

FLAG_ACK = 0x01
FLAG_KEY_CHUNK = 0x02
FLAG_CT_CHUNK = 0x04
ACK_LEN = 4
KEY_CHUNK_OVERHEAD = 6      # u32 key_id ‖ u8 first ‖ u8 count
CT_CHUNK_OVERHEAD = 10      # u32 epoch ‖ u32 target ‖ u8 first ‖ u8 count

U32_MAX = 2**32 - 1


# --------------------------------------------------------------------------
# State (§7.5)
# --------------------------------------------------------------------------

@dataclass
class OwnKey:
    id: int
    seed: bytes            # ML-KEM d ‖ z (64)
    acked: bool = False
    used: bool = False
    cursor: int = 0        # next symbol index to send (u8)

    def public(self) -> bytes:
        return mlkem_keygen(self.seed)[0]


@dataclass
class Outgoing:
    epoch: int
    target: int            # the peer key id encapsulated to
    m: bytes               # the 32 coins
    ct: bytes
    ss: bytes
    cursor: int = 0


@dataclass
class Reassembly:
    id: int                # peer key id, or epoch
    target: int            # ciphertext: target own key id; peer key: 0
    symbols: dict = field(default_factory=dict)   # index -> 16 bytes, insertion order kept


@dataclass
class Pending:
    epoch: int
    target: int
    ss: bytes


@dataclass
class PqState:
    own: OwnKey | None = None
    previous: OwnKey | None = None
    next_own_id: int = 1
    bootstrapped: bool = False
    peer_id: int | None = None
    peer_key: bytes | None = None
    key_reassembly: Reassembly | None = None
    ct_reassembly: Reassembly | None = None
    outgoing: Outgoing | None = None
    next_epoch: int = 1
    pending: Pending | None = None
    last_mixed: int = 0
    idle_streak: int = 0
    epochs_mixed: int = 0

    # -- start of every encrypt ----------------------------------------
    def prepare(self, draw) -> None:
        """§7.5 'At the start of every encrypt': key generation (64 bytes),
        then encapsulation (32 bytes), before any other draw."""
        if self.own is None or (self.own.acked and self.own.used):
            seed = draw(64)
            new = OwnKey(self.next_own_id, seed)
            self.next_own_id += 1
            self.previous = self.own
            self.own = new
        if self.outgoing is None and self.peer_key is not None:
            m = draw(32)
            ct, ss = mlkem_encaps(self.peer_key, m)
            self.outgoing = Outgoing(self.next_epoch, self.peer_id, m, ct, ss, 0)
            self.next_epoch += 1

    # -- mixing ----------------------------------------------------------
    def take_pending(self) -> Pending | None:
        """At a sending step (§7.4 step 3): the pending peer epoch, if any,
        is mixed now; the own key it targeted becomes `used`."""
        p = self.pending
        if p is None:
            return None
        self.pending = None
        self.last_mixed = p.epoch
        for k in (self.own, self.previous):
            if k is not None and k.id == p.target:
                k.used = True
        self.epochs_mixed += 1
        return p

    def own_secret_for(self, epoch: int) -> bytes:
        """§7.4 receiving step, step 4."""
        if self.outgoing is None or self.outgoing.epoch != epoch:
            raise ProtocolError("UnknownPqEpoch", f"epoch {epoch}")
        return self.outgoing.ss

    def complete_outgoing(self) -> None:
        """§7.4 step 6: the encapsulator has mixed its epoch."""
        self.outgoing = None
        self.epochs_mixed += 1

    # -- capacity and building (§7.6) -----------------------------------
    def key_pending(self) -> bool:
        return self.own is not None and not self.own.acked

    def capacity(self, base: int, bucket: int, limit: int) -> int:
        """§7.6 'Capacity'. `limit` is the largest message length allowed
        (MAX_WIRE_LEN less the prekey wrapper while initiating)."""
        if self.key_pending() and not self.bootstrapped:
            c = round_up(base + 1 + ACK_LEN + KEY_CHUNK_OVERHEAD + KEY_SYMBOLS * SYMBOL_LEN, bucket) - base
        else:
            c = round_up(base, bucket) - base
            if c < 31 and (self.outgoing is not None or self.key_pending()) and self.idle_streak >= 1:
                c += bucket
        return max(0, min(c, limit - base))

    def build_section(self, capacity: int) -> bytes:
        room = capacity - 1
        flags = 0
        ack = key_chunk = ct_chunk = b""
        # 1. ack
        if self.peer_key is not None and room >= ACK_LEN:
            flags |= FLAG_ACK
            ack = u32(self.peer_id)
            room -= ACK_LEN
        # 2. lanes
        key_pending = self.key_pending()
        bootstrap = key_pending and not self.bootstrapped
        t = floor_plus(room - 16, 16)
        if not bootstrap and self.outgoing is not None and key_pending and t >= 2:
            ct_max, key_max = (t + 1) // 2, t // 2
        else:
            ct_max, key_max = CT_SYMBOLS, KEY_SYMBOLS

        def key_step(limit: int) -> None:
            nonlocal room, flags, key_chunk
            if not key_pending:
                return
            n = min(floor_plus(room - KEY_CHUNK_OVERHEAD, 16), KEY_SYMBOLS, limit)
            if n <= 0:
                return
            own = self.own
            data = ec.split(own.public(), KEY_SYMBOLS)
            first = own.cursor
            syms = b"".join(ec.symbol(data, (first + i) % 256) for i in range(n))
            key_chunk = u32(own.id) + u8(first) + u8(n) + syms
            own.cursor = (first + n) % 256
            room -= KEY_CHUNK_OVERHEAD + SYMBOL_LEN * n
            flags |= FLAG_KEY_CHUNK
            if n == KEY_SYMBOLS:
                self.bootstrapped = True

        def ct_step() -> None:
            nonlocal room, flags, ct_chunk
            out = self.outgoing
            if out is None:
                return
            n = min(floor_plus(room - CT_CHUNK_OVERHEAD, 16), CT_SYMBOLS, ct_max)
            if n <= 0:
                return
            data = ec.split(out.ct, CT_SYMBOLS)
            first = out.cursor
            syms = b"".join(ec.symbol(data, (first + i) % 256) for i in range(n))
            ct_chunk = u32(out.epoch) + u32(out.target) + u8(first) + u8(n) + syms
            out.cursor = (first + n) % 256
            room -= CT_CHUNK_OVERHEAD + SYMBOL_LEN * n
            flags |= FLAG_CT_CHUNK

        # 3./4. the key chunk first when bootstrapping, else after the ciphertext chunk
        if bootstrap:
            key_step(KEY_SYMBOLS)
            ct_step()
        else:
            ct_step()
            key_step(key_max)
        # 5. idle streak
        if flags & (FLAG_KEY_CHUNK | FLAG_CT_CHUNK):
            self.idle_streak = 0
        else:
            self.idle_streak = min(self.idle_streak + 1, U32_MAX)
        # 6.
        if flags == 0:
            return b""
        return u8(flags) + ack + key_chunk + ct_chunk

    # -- receiving (§7.5), on a staged copy ------------------------------
    def receive_section(self, sec: "Section") -> None:
        if sec.ack is not None:
            if self.own is not None and sec.ack == self.own.id:
                self.own.acked = True
                self.bootstrapped = True
        if sec.key_chunk is not None:
            self._receive_key_chunk(*sec.key_chunk)
        if sec.ct_chunk is not None:
            self._receive_ct_chunk(*sec.ct_chunk)

    @staticmethod
    def _add_symbols(r: Reassembly, first: int, syms: list[bytes]) -> None:
        for i, s in enumerate(syms):
            idx = (first + i) % 256
            have = r.symbols.get(idx)
            if have is not None:
                if have != s:
                    raise ProtocolError("InconsistentPqChunks", f"symbol {idx} differs")
                continue
            r.symbols[idx] = s

    def _receive_key_chunk(self, key_id: int, first: int, syms: list[bytes]) -> None:
        if self.peer_id is not None and key_id <= self.peer_id:
            return
        r = self.key_reassembly
        if r is not None and key_id < r.id:
            return
        if r is None or key_id > r.id:
            r = self.key_reassembly = Reassembly(key_id, 0)
        self._add_symbols(r, first, syms)
        if len(r.symbols) >= KEY_SYMBOLS:
            key = ec.decode(r.symbols, KEY_SYMBOLS)
            mlkem_check_encapsulation_key(key, "InvalidPqKey")
            self.peer_id, self.peer_key = key_id, key
            self.key_reassembly = None

    def _receive_ct_chunk(self, epoch: int, target: int, first: int, syms: list[bytes]) -> None:
        if epoch <= self.last_mixed or (self.pending is not None and epoch <= self.pending.epoch):
            return
        r = self.ct_reassembly
        if r is not None and epoch < r.id:
            return
        if r is not None and epoch == r.id and target != r.target:
            raise ProtocolError("InconsistentPqChunks", f"epoch {epoch}: target {target} != {r.target}")
        if r is None or epoch > r.id:
            r = self.ct_reassembly = Reassembly(epoch, target)
        self._add_symbols(r, first, syms)
        if len(r.symbols) >= CT_SYMBOLS:
            ct = ec.decode(r.symbols, CT_SYMBOLS)
            self.ct_reassembly = None
            key = next((k for k in (self.own, self.previous) if k is not None and k.id == target), None)
            if key is None:
                return  # stale: the target key is no longer held
            self.pending = Pending(epoch, target, mlkem_decaps(key.seed, ct))


def round_up(x: int, bucket: int) -> int:
    return -(-x // bucket) * bucket


def floor_plus(x: int, d: int) -> int:
    """⌊x/d⌋⁺ of §7.6: ⌊x/d⌋ for x ≥ 0, else 0."""
    return x // d if x >= 0 else 0


# --------------------------------------------------------------------------
# Section parsing (§7.6)
# --------------------------------------------------------------------------

@dataclass
class Section:
    ack: int | None = None
    key_chunk: tuple | None = None      # (key_id, first, [symbols])
    ct_chunk: tuple | None = None       # (epoch, target, first, [symbols])


def parse_section(b: bytes) -> Section:
    sec = Section()
    if not b:
        return sec
    pos = 0

    def take(n: int) -> bytes:
        nonlocal pos
        if len(b) - pos < n:
            raise ProtocolError("MalformedPqSection", "truncated")
        out = b[pos:pos + n]
        pos += n
        return out

    def take_u32() -> int:
        return int.from_bytes(take(4), "big")

    def take_symbols() -> tuple[int, list[bytes]]:
        first, count = take(1)[0], take(1)[0]
        if count < 1:
            raise ProtocolError("MalformedPqSection", "count 0")
        raw = take(SYMBOL_LEN * count)
        return first, [raw[i * SYMBOL_LEN:(i + 1) * SYMBOL_LEN] for i in range(count)]

    flags = take(1)[0]
    if flags == 0 or flags & ~(FLAG_ACK | FLAG_KEY_CHUNK | FLAG_CT_CHUNK):
        raise ProtocolError("MalformedPqSection", f"flags {flags:#04x}")
    if flags & FLAG_ACK:
        sec.ack = take_u32()
    if flags & FLAG_KEY_CHUNK:
        key_id = take_u32()
        sec.key_chunk = (key_id, *take_symbols())
    if flags & FLAG_CT_CHUNK:
        epoch = take_u32()
        target = take_u32()
        sec.ct_chunk = (epoch, target, *take_symbols())
    if pos != len(b):
        raise ProtocolError("MalformedPqSection", "trailing bytes")
    return sec
