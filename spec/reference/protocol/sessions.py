"""Session management across devices (spec §8.6) and healing (§8.8): the
routing header of a slot payload and its associated data, sessions per peer
device with the active one and the preference order, the session manager's
send (fan-out to every device of a conversation, one envelope) and receive
(routing checks, new sessions from prekey messages, decryption by rule 3),
and the restore and heal of a device that lost state.

Error classes are paths of variants joined by `/` (`Wire/Truncated`,
`Handshake/UndecryptableHeader`, `Undecryptable/AuthenticationFailed`);
the classes of §8.6.5 alone are bare names (`Misrouted`, …)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Callable

from common import ProtocolError, ascii_, u8
from primitives import ed25519_check_public_key
from protocol import envelope as env
from protocol.devices import DeviceList, u64
from protocol.handshake import PrekeyMessage, commit, initiate, respond
from protocol.prekeys import TYPE_PREKEY_MESSAGE, Bundle, DeviceIdentity, PrekeyStore, bundle_for
from protocol.ratchet import (TYPE_RATCHET_MESSAGE, EncryptTrace, Session, decrypt, encrypt,
                              init_initiator, respond_first, ROLE_INITIATOR)

# §3.6 label of the ratchet associated data of a slot (§8.6.3).
LABEL_ENVELOPE_ROUTING = ascii_("SessionRatchet/v1/envelope-routing")

# §8.6.3 routing header.
ROUTING_FORMAT = 0x01
ROUTING_HEADER_LEN = 1 + 32 + 32 + 32 + 8 + 8 + 8 + 1 + 1
assert ROUTING_HEADER_LEN == 123
FLAG_HEAL = 0x01
KIND_MESSAGE = 0x01
KIND_HEALING_NOTICE = 0x02
KINDS = (KIND_MESSAGE, KIND_HEALING_NOTICE)

# §8.6.6 bounds, §8.8 constants.
MAX_CONTACTS = 4096
MAX_CONTENT_LEN = 12288
MAX_ARCHIVED_SESSIONS = 3
RESTORE_ID_JUMP = 2**20
HEAL_RETRY_SECS = 86400
U64_MAX = 2**64 - 1

WIRE_VERSION = 0x01


def wire(e: ProtocolError) -> ProtocolError:
    """A §6.5 class of a slot payload, wrapped as `Wire/<class>`."""
    return ProtocolError(f"Wire/{e.cls}", e.detail)


# --------------------------------------------------------------------------
# §8.6.3 the routing header
# --------------------------------------------------------------------------

@dataclass
class RoutingHeader:
    sender_account: bytes
    sender_device: bytes
    conversation: bytes
    sender_list_version: int
    conversation_list_version: int
    session_created: int
    heal: bool
    kind: int

    def encode(self) -> bytes:
        return (u8(ROUTING_FORMAT) + self.sender_account + self.sender_device + self.conversation
                + u64(self.sender_list_version) + u64(self.conversation_list_version)
                + u64(self.session_created) + u8(FLAG_HEAL if self.heal else 0) + u8(self.kind))


def split_payload(payload: bytes) -> tuple[RoutingHeader, bytes]:
    """§8.6.3: the routing header field by field, each field read and
    checked before the next, then the version and type bytes of the ratchet
    object. Failures are `Wire/<§6.5 class>`."""
    pos = 0

    def take(n: int, name: str) -> bytes:
        nonlocal pos
        if len(payload) - pos < n:
            raise ProtocolError("Wire/Truncated", f"routing header: {name}")
        out = payload[pos:pos + n]
        pos += n
        return out

    def account(name: str) -> bytes:
        key = take(32, name)
        try:
            ed25519_check_public_key(key)
        except ProtocolError as e:
            raise wire(e) from None
        return key

    fmt = take(1, "format")[0]
    if fmt != ROUTING_FORMAT:
        raise ProtocolError("Wire/InvalidValue", f"routing format {fmt:#04x}")
    sender_account = account("sender_account")
    sender_device = take(32, "sender_device")
    conversation = account("conversation")
    slv = int.from_bytes(take(8, "sender_list_version"), "big")
    clv = int.from_bytes(take(8, "conversation_list_version"), "big")
    created = int.from_bytes(take(8, "session_created"), "big")
    flags = take(1, "session_flags")[0]
    if flags & ~FLAG_HEAL:
        raise ProtocolError("Wire/InvalidFlags", f"session flags {flags:#04x}")
    kind = take(1, "kind")[0]
    if kind not in KINDS:
        raise ProtocolError("Wire/InvalidValue", f"kind {kind:#04x}")
    rest = payload[pos:]
    if len(rest) < 1:
        raise ProtocolError("Wire/Truncated", "ratchet object: version")
    if rest[0] != WIRE_VERSION:
        raise ProtocolError("Wire/UnsupportedVersion", f"ratchet object: version {rest[0]:#04x}")
    if len(rest) < 2:
        raise ProtocolError("Wire/Truncated", "ratchet object: type")
    if rest[1] not in (TYPE_PREKEY_MESSAGE, TYPE_RATCHET_MESSAGE):
        raise ProtocolError("Wire/UnexpectedType", f"ratchet object: type {rest[1]:#04x}")
    return (RoutingHeader(sender_account, sender_device, conversation, slv, clv, created,
                          bool(flags & FLAG_HEAL), kind), rest)


def routing_ad(header: bytes, recipient_account: bytes, recipient_device: bytes) -> bytes:
    """§8.6.3: the application associated data given to §7.7."""
    return LABEL_ENVELOPE_ROUTING + header + recipient_account + recipient_device


# --------------------------------------------------------------------------
# §8.6.2 sessions per peer device
# --------------------------------------------------------------------------

@dataclass
class Entry:
    session: Session
    created: int
    heal: bool
    mine: bool              # this device started it (§8.6.4 step 3)
    stale: bool = False

    @property
    def answered(self) -> bool:
        """A session this device started has been answered once a message
        of the peer decrypted in it (the initiator stops repeating its
        handshake then, §7.2)."""
        return not (self.session.role == ROLE_INITIATOR
                    and self.session.handshake_header is not None)


def preferred(s: Entry, t: Entry) -> bool:
    """`S` preferred to `T` (§8.6.2)."""
    ks, kt = (s.heal, s.created), (t.heal, t.created)
    if ks != kt:
        return ks > kt
    return s.session.th < t.session.th


@dataclass
class PeerSessions:
    active: Entry | None = None
    archived: list = field(default_factory=list)     # front first
    latest: int = 0                                  # kept after deletion

    def all(self) -> list[Entry]:
        return ([self.active] if self.active is not None else []) + list(self.archived)

    def archive(self, e: Entry) -> None:
        """To the front; the last one goes when a fourth would be kept."""
        self.archived.insert(0, e)
        del self.archived[MAX_ARCHIVED_SESSIONS:]

    def mark_others_stale(self, keep: Entry) -> None:
        for e in self.all():
            if e is not keep:
                e.stale = True

    def install_own(self, e: Entry) -> None:
        """Rule 1."""
        old = self.active
        self.active = e
        if old is not None:
            self.archive(old)
        if e.heal:
            self.mark_others_stale(e)
        self.latest = max(self.latest, e.created)

    def install_peer(self, e: Entry) -> None:
        """Rule 2."""
        self.latest = max(self.latest, e.created)
        a = self.active
        if a is None:
            self.active = e
            return
        newer_peer_heal = a.heal and not a.mine and preferred(a, e)
        if e.heal and not (a.heal and a.mine and not a.answered) and not newer_peer_heal:
            self.active = e
            self.archive(a)
            self.mark_others_stale(e)
            return
        if preferred(e, a):
            self.active = e
            self.archive(a)
        else:
            self.archive(e)

    def make_all_stale(self) -> None:
        """§8.8 restore step 1: the active session joins the archived ones."""
        if self.active is not None:
            self.archive(self.active)
            self.active = None
        for e in self.archived:
            e.stale = True


# --------------------------------------------------------------------------
# Draws
# --------------------------------------------------------------------------

class Rng:
    """A draw source that records which operation made each draw:
    `mark(op, recipient)` opens a segment, `rng(n)` draws `n` bytes."""

    def __init__(self, draw: Callable[[int], bytes]):
        self._draw = draw
        self.segments: list[list] = []     # [op, recipient, [draws]]

    def mark(self, op: str, recipient=None) -> None:
        self.segments.append([op, recipient, []])

    def __call__(self, n: int) -> bytes:
        out = self._draw(n)
        self.segments[-1][2].append(out)
        return out


# --------------------------------------------------------------------------
# The manager
# --------------------------------------------------------------------------

@dataclass
class SlotTrace:
    """What a send did for one recipient."""
    account: bytes
    device_id: bytes
    new_session: bool
    created: int
    heal: bool
    transcript_hash: bytes
    encrypt: EncryptTrace
    routing_header: bytes
    ad: bytes
    ratchet_message: bytes
    slot_payload: bytes


@dataclass
class Report:
    """§8.6.5 step 7."""
    sender_account: bytes
    sender_device: bytes
    conversation: bytes
    kind: int
    content: bytes
    new_session: bool
    sender_list_newer: bool
    recipient_list_outdated: bool


@dataclass
class Manager:
    identity: DeviceIdentity
    device_id: bytes
    account: bytes                                    # own account key
    store: PrekeyStore
    next_id: int                                      # §4.3 id counter
    lists: dict = field(default_factory=dict)         # account key -> DeviceList (own included)
    bundles: dict = field(default_factory=dict)       # (account, device_id) -> Bundle
    peers: dict = field(default_factory=dict)         # (account, device_id) -> PeerSessions

    # -- lists ------------------------------------------------------------
    @property
    def own_list(self) -> DeviceList:
        return self.lists[self.account]

    def is_contact(self, account: bytes) -> bool:
        return account != self.account and account in self.lists

    def active_devices(self, account: bytes) -> list:
        lst = self.lists[account]
        return sorted(lst.devices, key=lambda d: d.device_id)

    def peer(self, account: bytes, device_id: bytes) -> PeerSessions:
        return self.peers.setdefault((account, device_id), PeerSessions())

    def has_active(self, account: bytes, device_id: bytes) -> bool:
        ps = self.peers.get((account, device_id))
        return ps is not None and ps.active is not None

    # -- §8.6.1 / §8.6.4 --------------------------------------------------
    def recipients(self, conversation: bytes) -> list[tuple[bytes, bytes, bytes]]:
        """(account, device_id, public_identity) in recipient order."""
        out = []
        if conversation != self.account:
            out += [(conversation, d.device_id, d.public_identity)
                    for d in self.active_devices(conversation)]
        out += [(self.account, d.device_id, d.public_identity)
                for d in self.active_devices(self.account) if d.device_id != self.device_id]
        return out

    def send(self, conversation: bytes, content: bytes, now: int, rng: Rng,
             kind: int = KIND_MESSAGE, healing: bool = False,
             only: list | None = None) -> tuple[list[bytes], list[SlotTrace]]:
        """§8.6.4. `only`: the recipients of a heal (§8.8), else every
        recipient of §8.6.1. Returns the envelopes and a trace per slot."""
        if self.own_list.device(self.device_id) is None:
            raise ProtocolError("ThisDeviceRevoked")
        if len(content) > MAX_CONTENT_LEN:
            raise ProtocolError("ContentTooLong", f"{len(content)} bytes")
        if conversation != self.account and not self.is_contact(conversation):
            raise ProtocolError("UnknownAccount")
        recips = only if only is not None else self.recipients(conversation)
        if not recips:
            raise ProtocolError("NoRecipients")
        missing = [(a, d) for a, d, _ in recips
                   if not self.has_active(a, d) and (a, d) not in self.bundles]
        if missing:
            raise ProtocolError("MissingPrekeys", f"{len(missing)} devices")

        # Step 3: every session is started before any message is encrypted.
        started = set()
        for a, d, pi in recips:
            ps = self.peer(a, d)
            if ps.active is not None:
                continue
            bundle: Bundle = self.bundles[(a, d)]
            rng.mark("initiate", (a, d))
            ek, m = rng(32), rng(32)
            seed, msg = initiate(self.identity, bundle, ek, m, b"\x00")
            session = init_initiator(seed, msg, self.identity.public_identity,
                                     bundle.public_identity, rng)
            created = min(max(now, ps.latest + 1), U64_MAX)
            heal = healing or bool(ps.all())
            ps.install_own(Entry(session, created, heal, mine=True))
            started.add((a, d))

        # Step 4.
        traces = []
        for a, d, pi in recips:
            e = self.peer(a, d).active
            rh = RoutingHeader(self.account, self.device_id, conversation,
                               self.own_list.version, self.lists[conversation].version,
                               e.created, e.heal, kind).encode()
            ad = routing_ad(rh, a, d)
            rng.mark("encrypt", (a, d))
            out, trace = encrypt(e.session, content, ad, rng)
            traces.append(SlotTrace(a, d, (a, d) in started, e.created, e.heal, e.session.th,
                                    trace, rh, ad, out, rh + out))

        # Step 5.
        pairs = [(pi[32:], t.slot_payload) for (_, _, pi), t in zip(recips, traces)]
        return self._seal(pairs, rng), traces

    def _seal(self, pairs: list, rng: Rng) -> list[bytes]:
        try:
            sizes = env.draw_sizes(pairs)
        except ProtocolError as e:
            if e.cls != "TooLarge" or len(pairs) < 2:
                raise
            half = len(pairs) // 2
            return self._seal(pairs[:half], rng) + self._seal(pairs[half:], rng)
        rng.mark("seal")
        return [env.seal(pairs, [rng(n) for n in sizes])]

    # -- §8.6.5 -------------------------------------------------------------
    def receive(self, envelope: bytes) -> Report:
        """Transactional: on any failure nothing changes."""
        staged = copy.deepcopy(self)
        report = staged._receive(envelope)
        self.__dict__.update(staged.__dict__)
        return report

    def _receive(self, envelope: bytes) -> Report:
        # 1.
        # §8.6.5 step 1: a decoding failure (§8.7.2) is `Wire/<class>`, an
        # opening failure other than "no slot" is `Envelope/<class>`.
        try:
            env.decode(envelope)
        except ProtocolError as e:
            raise ProtocolError(f"Wire/{e.cls}", e.detail) from None
        try:
            payload = env.open_envelope(self.identity.x25519_secret, envelope)
        except ProtocolError as e:
            if e.cls == "NoSlotForDevice":
                raise ProtocolError("NotARecipient") from None
            raise ProtocolError(f"Envelope/{e.cls}", e.detail) from None
        # 2.
        rh, obj = split_payload(payload)
        # 3.
        if rh.sender_account == self.account:
            if rh.sender_device == self.device_id:
                raise ProtocolError("Misrouted", "sent by this device")
            if rh.conversation != self.account and not self.is_contact(rh.conversation):
                raise ProtocolError("UnknownAccount", "conversation")
        else:
            if rh.conversation != self.account:
                raise ProtocolError("Misrouted", "conversation is another account")
            if not self.is_contact(rh.sender_account):
                raise ProtocolError("UnknownAccount", "sender")
        # 4.
        held = self.lists[rh.sender_account]
        dev = held.device(rh.sender_device)
        if dev is None:
            if rh.sender_device in held.tombstone_ids():
                raise ProtocolError("RevokedSender")
            if rh.sender_list_version > held.version:
                raise ProtocolError("DeviceListOutdated")
            raise ProtocolError("UnknownSenderDevice")
        ad = routing_ad(payload[:ROUTING_HEADER_LEN], self.account, self.device_id)
        ps = self.peer(rh.sender_account, rh.sender_device)
        new_session = False
        if obj[1] == TYPE_PREKEY_MESSAGE:
            # 5.
            try:
                msg = PrekeyMessage.decode(obj)
            except ProtocolError as e:
                raise wire(e) from None
            if msg.public_identity_a != dev.public_identity:
                raise ProtocolError("SenderIdentityMismatch")
            same = [e for e in ps.all() if e.session.ek_a == msg.ek_a]
            if same:
                try:
                    content = decrypt(same[0].session, obj, ad)
                except ProtocolError as e:
                    raise ProtocolError(f"Undecryptable/{e.cls}", e.detail) from None
            else:
                try:
                    seed = respond(self.identity, self.store, msg)
                except ProtocolError as e:
                    raise ProtocolError(f"Handshake/Handshake/{e.cls}", e.detail) from None
                wrapper = obj[:len(obj) - len(msg.payload)]
                try:
                    session, content = respond_first(seed, msg, wrapper,
                                                     self.identity.public_identity, ad)
                except ProtocolError as e:
                    raise ProtocolError(f"Handshake/{e.cls}", e.detail) from None
                try:
                    commit(self.store, msg)
                except ProtocolError as e:
                    raise ProtocolError(f"Handshake/Handshake/{e.cls}", e.detail) from None
                ps.install_peer(Entry(session, rh.session_created, rh.heal, mine=False))
                new_session = True
        else:
            # 6.
            content = self._decrypt_rule3(ps, obj, ad)
        # 7.
        outdated = (rh.sender_account != self.account
                    and rh.conversation_list_version < self.own_list.version)
        return Report(rh.sender_account, rh.sender_device, rh.conversation, rh.kind, content,
                      new_session, rh.sender_list_version > held.version, outdated)

    def _decrypt_rule3(self, ps: PeerSessions, obj: bytes, ad: bytes) -> bytes:
        """Rule 3: the active session, then each archived one in order."""
        if not ps.all():
            raise ProtocolError("Undecryptable/UndecryptableHeader", "no session with the device")
        first_error = None
        if ps.active is not None:
            try:
                return decrypt(ps.active.session, obj, ad)
            except ProtocolError as e:
                first_error = e
        for e in list(ps.archived):
            try:
                content = decrypt(e.session, obj, ad)
            except ProtocolError as err:
                first_error = first_error or err
                continue
            ps.archived.remove(e)
            ps.archived.insert(0, e)
            a = ps.active
            if not e.stale and (a is None or preferred(e, a)):
                ps.archived.remove(e)
                ps.active = e
                if a is not None:
                    ps.archive(a)
            return content
        raise ProtocolError(f"Undecryptable/{first_error.cls}", first_error.detail)

    # -- §8.8 ---------------------------------------------------------------
    def restore(self, draw: Callable[[int], bytes]) -> None:
        """Restore steps 1 and 2: every session stale; every prekey deleted;
        the id counter advanced by RESTORE_ID_JUMP; a new signed prekey (32
        bytes drawn) and then a new last-resort prekey (64)."""
        for ps in self.peers.values():
            ps.make_all_stale()
        self.next_id += RESTORE_ID_JUMP
        self.store = PrekeyStore()
        self.store.add_signed(self.next_id, draw(32))
        self.store.add_last_resort(self.next_id + 1, draw(64))
        self.next_id += 2

    def bundle(self) -> Bundle:
        """The current bundle (§4.4) without one-time prekeys."""
        spk_id = max(self.store.signed)
        lr_id = max(self.store.last_resort)
        return bundle_for(self.identity, (spk_id, self.store.signed[spk_id]),
                          (lr_id, self.store.last_resort[lr_id].seed_d_z), None, None)

    def heal_recipients(self, account: bytes) -> list[tuple[bytes, bytes, bytes]]:
        """§8.8 step 3: the account's active devices (this account: the
        other ones) without an active session, in ascending id order."""
        return [(a, d, pi) for a, d, pi in
                ((account, dev.device_id, dev.public_identity)
                 for dev in self.active_devices(account) if dev.device_id != self.device_id)
                if not self.has_active(a, d)]

    def heal(self, account: bytes, now: int, rng: Rng) -> tuple[list[bytes], list[SlotTrace]]:
        """One heal of `account` (§8.8 step 3): nothing is sent when every
        device has an active session."""
        only = self.heal_recipients(account)
        if not only:
            return [], []
        return self.send(account, b"", now, rng, kind=KIND_HEALING_NOTICE, healing=True, only=only)
