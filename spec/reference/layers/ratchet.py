"""Layer `ratchet`: one scripted conversation over the hybrid double ratchet
(spec chapter 7), from the handshake (chapters 4-5) to both parties' stored
states (§7.10)."""

from __future__ import annotations

from collections import Counter

from common import (Kind, ProtocolError, VectorContext, VectorFormatError, first_difference,
                    path_name, short, unhex)
from primitives import MLKEM_SEED_LEN, chacha20_rng_stream
from protocol import ratchet_state
from protocol.handshake import PrekeyMessage, commit, initiate, respond
from protocol.prekeys import Bundle, DeviceIdentity, PrekeyStore, bundle_for
from protocol.ratchet import decrypt, encrypt, init_initiator, respond_first

LAYER = "ratchet"

# `setup` fields drawn from `setup_rng_seed`, in draw order (§4.1: Ed25519
# seed then X25519 secret per device; §4.3: a new store creates the signed
# prekey, then the last-resort PQ prekey; then one one-time prekey): name,
# the sub-field holding the secret (None for a bare secret), its length.
SETUP_DRAWS = (
    ("alice_ed25519_seed", None, 32),
    ("alice_x25519_secret", None, 32),
    ("bob_ed25519_seed", None, 32),
    ("bob_x25519_secret", None, 32),
    ("bob_signed_prekey", "x25519_secret", 32),
    ("bob_last_resort_kem_prekey", "mlkem_seed_d_z", MLKEM_SEED_LEN),
    ("bob_one_time_prekey", "x25519_secret", 32),
)
# §4.3 id counter, in creation order.
SETUP_IDS = {"bob_signed_prekey": 1, "bob_last_resort_kem_prekey": 2, "bob_one_time_prekey": 3}
SETUP_FIELDS = {d[0] for d in SETUP_DRAWS} | {"setup_rng_seed", "alice_rng_seed", "bob_rng_seed",
                                              "bundle"}

PARTIES = ("alice", "bob")

# Fields of each event op: (inputs, outputs). Outputs are what the verifier
# recomputes and compares (and what the self-test corrupts).
EVENT_FIELDS = {
    "initiate": (("op", "by", "draws"), ("transcript_hash",)),
    "encrypt": (("op", "by", "plaintext", "ad", "draws"),
                ("index", "header_key", "message_key", "body_key", "header", "pq_section", "body",
                 "message")),
    "respond": (("op", "by", "index", "ad"), ("plaintext",)),
    "decrypt": (("op", "by", "index", "ad"), ("plaintext",)),
    "reject": (("op", "by", "name", "input", "ad"), ("expected_error",)),
}
FINAL_FIELDS = ("alice_stored_state", "bob_stored_state", "alice_pq_epochs_mixed",
                "bob_pq_epochs_mixed", "messages")

# Number of events of each op the published conversation holds.
EXPECTED_EVENTS = {"initiate": 1, "encrypt": 56, "respond": 1, "decrypt": 55, "reject": 6}


class _Abort(Exception):
    """The conversation cannot continue (a failure has been recorded)."""


class _DrawsExhausted(Exception):
    pass


class Draws:
    """Serves an operation exactly the bytes the vector lists for it."""

    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def __call__(self, n: int) -> bytes:
        if len(self.data) - self.pos < n:
            raise _DrawsExhausted(f"the operation draws {n} more bytes after "
                                  f"{self.pos} of the {len(self.data)} listed")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def left(self) -> int:
        return len(self.data) - self.pos


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

def _path(*parts) -> str:
    return path_name(parts)


def _hex(obj: dict, fld: str, where: str, length: int | None = None) -> bytes:
    if fld not in obj:
        raise VectorFormatError(f"{where}: missing field '{fld}'")
    return unhex(obj[fld], f"{where}.{fld}", length)


def expect_at(ctx: VectorContext, path: str, obj: dict, fld: str, computed) -> bool:
    """Compare a recomputed value with obj[fld]; failures are named by path."""
    want = obj.get(fld)
    if isinstance(computed, bytes):
        try:
            expected = unhex(want, path)
        except VectorFormatError as e:
            ctx.fail(path, str(e))
            return False
        if expected != computed:
            ctx.fail(path, f"MISMATCH: expected {short(expected)}, computed {short(computed)}; "
                           f"{first_difference(expected, computed)}")
            return False
        return True
    if type(want) is not type(computed) or want != computed:
        ctx.fail(path, f"MISMATCH: expected {want!r}, computed {computed!r}")
        return False
    return True


def output_paths(vector: dict) -> list[tuple]:
    """Every output leaf of a conversation vector, as a path."""
    paths = []
    for i, ev in enumerate(vector.get("events", [])):
        outs = EVENT_FIELDS.get(ev.get("op"), ((), ()))[1]
        paths += [("events", i, f) for f in outs if f in ev]
    paths += [("final", f) for f in FINAL_FIELDS if f in vector.get("final", {})]
    return paths


# --------------------------------------------------------------------------
# setup
# --------------------------------------------------------------------------

class Setup:
    def __init__(self, ctx: VectorContext):
        s = ctx.get("setup")
        if not isinstance(s, dict) or set(s) != SETUP_FIELDS:
            raise VectorFormatError(f"setup: fields {sorted(s) if isinstance(s, dict) else s}, "
                                    f"expected {sorted(SETUP_FIELDS)}")
        values, ids = {}, {}
        for name, sub, length in SETUP_DRAWS:
            item = s[name]
            if sub is None:
                values[name] = unhex(item, f"setup.{name}", length)
            else:
                if not isinstance(item, dict) or set(item) != {"id", sub}:
                    raise VectorFormatError(f"setup.{name}: expected fields 'id' and '{sub}'")
                ids[name] = item["id"]
                values[name] = unhex(item[sub], f"setup.{name}.{sub}", length)
        stream = b"".join(values[d[0]] for d in SETUP_DRAWS)
        if chacha20_rng_stream(_hex(s, "setup_rng_seed", "setup", 32), len(stream)) != stream:
            ctx.fail("setup", "the setup secrets are not the ChaCha20 stream of setup_rng_seed "
                              "in spec draw order")
        for name, want in SETUP_IDS.items():
            if ids[name] != want:
                ctx.fail("setup", f"{name}.id is {ids[name]}, the §4.3 id counter gives {want}")
        self.alice = DeviceIdentity(values["alice_ed25519_seed"], values["alice_x25519_secret"])
        self.bob = DeviceIdentity(values["bob_ed25519_seed"], values["bob_x25519_secret"])
        self.spk = (ids["bob_signed_prekey"], values["bob_signed_prekey"])
        self.pqlr = (ids["bob_last_resort_kem_prekey"], values["bob_last_resort_kem_prekey"])
        self.opk = (ids["bob_one_time_prekey"], values["bob_one_time_prekey"])
        self.rng_seed = {p: _hex(s, f"{p}_rng_seed", "setup", 32) for p in PARTIES}

        # The bundle offers every prekey of the store (§4.4); it is
        # published, decodes strictly, verifies and is canonical.
        built = bundle_for(self.bob, self.spk, self.pqlr, self.opk, None).encode()
        published = _hex(s, "bundle", "setup")
        if built != published:
            ctx.fail("setup", "setup.bundle is not the bundle of Bob's identity and prekeys")
        self.bundle = Bundle.decode(published)
        self.bundle.verify(expected_identity=self.bob.public_identity)
        if self.bundle.encode() != published:
            ctx.fail("setup", "setup.bundle is not canonical")

    def store(self) -> PrekeyStore:
        st = PrekeyStore()
        st.add_signed(*self.spk)
        st.add_last_resort(*self.pqlr)
        st.add_one_time(*self.opk)
        return st


# --------------------------------------------------------------------------
# kind `conversation`
# --------------------------------------------------------------------------

def _event_schema(ctx: VectorContext, events: list) -> None:
    if not isinstance(events, list):
        raise VectorFormatError("field 'events': expected a list")
    for i, ev in enumerate(events):
        if not isinstance(ev, dict) or ev.get("op") not in EVENT_FIELDS:
            raise VectorFormatError(f"events[{i}]: unknown op {ev.get('op') if isinstance(ev, dict) else ev!r}")
        ins, outs = EVENT_FIELDS[ev["op"]]
        for f in ev:
            if f not in ins and f not in outs:
                ctx.fail(_path("events", i, f), f"field not known to the verifier for op {ev['op']!r}")
        for f in ins + outs:
            if f not in ev:
                ctx.fail(_path("events", i, f), "required field is missing")
        if ev.get("by") not in PARTIES:
            raise VectorFormatError(f"events[{i}].by: {ev.get('by')!r}")
    counts = Counter(ev["op"] for ev in events)
    for op, want in EXPECTED_EVENTS.items():
        if counts.get(op, 0) != want:
            ctx.fail("events", f"{counts.get(op, 0)} events of op {op!r}, expected {want}")
    if not events or events[0]["op"] != "initiate" or events[0]["by"] != "alice":
        raise VectorFormatError("events[0] must be alice's initiate")
    final = ctx.get("final")
    if not isinstance(final, dict):
        raise VectorFormatError("field 'final': expected an object")
    for f in final:
        if f not in FINAL_FIELDS:
            ctx.fail(_path("final", f), "field not known to the verifier")
    for f in FINAL_FIELDS:
        if f not in final:
            ctx.fail(_path("final", f), "required field is missing")


def check_conversation(ctx: VectorContext) -> None:
    events = ctx.get("events")
    _event_schema(ctx, events)
    if ctx.failures:
        return
    setup = Setup(ctx)

    # §1.5: each party's draws, in event order, are its RNG's stream.
    for p in PARTIES:
        listed = b"".join(unhex(ev["draws"], f"events[{i}].draws")
                          for i, ev in enumerate(events) if ev["by"] == p and "draws" in ev)
        if chacha20_rng_stream(setup.rng_seed[p], len(listed)) != listed:
            ctx.fail("events", f"{p}'s draws are not the ChaCha20 stream of {p}_rng_seed")

    sessions = {"alice": None, "bob": None}
    store = setup.store()
    messages: list[bytes] = []       # by message index
    try:
        for i, ev in enumerate(events):
            _run_event(ctx, setup, store, sessions, messages, i, ev)
            # The stored state (§7.10) is the whole state: the party goes on
            # from its state stored and loaded again, which must be canonical.
            p = ev["by"]
            if sessions[p] is not None:
                stored = ratchet_state.encode(sessions[p])
                try:
                    sessions[p] = ratchet_state.decode(stored)
                except ProtocolError as e:
                    ctx.fail(_path("events", i), f"{p}'s stored state does not load: {e}")
                    raise _Abort() from None
                if ratchet_state.encode(sessions[p]) != stored:
                    ctx.fail(_path("events", i), f"{p}'s stored state is not canonical")
    except _Abort:
        return

    final = ctx.get("final")
    for p in PARTIES:
        s = sessions[p]
        if s is None:
            ctx.fail(_path("final", f"{p}_stored_state"), f"{p} has no session")
            continue
        stored = ratchet_state.encode(s)
        expect_at(ctx, _path("final", f"{p}_stored_state"), final, f"{p}_stored_state", stored)
        expect_at(ctx, _path("final", f"{p}_pq_epochs_mixed"), final, f"{p}_pq_epochs_mixed",
                  s.pq.epochs_mixed)
        # The published state loads and is canonical (§7.10, §6.5).
        try:
            published = unhex(final.get(f"{p}_stored_state"), f"final.{p}_stored_state")
            if ratchet_state.encode(ratchet_state.decode(published)) != published:
                ctx.fail(_path("final", f"{p}_stored_state"), "published state is not canonical")
        except (ProtocolError, VectorFormatError) as e:
            ctx.fail(_path("final", f"{p}_stored_state"), f"published state does not load: {e}")
    expect_at(ctx, _path("final", "messages"), final, "messages", len(messages))


def _run_event(ctx: VectorContext, setup: Setup, store: PrekeyStore, sessions: dict,
               messages: list, i: int, ev: dict) -> None:
    op, by = ev["op"], ev["by"]
    where = f"events[{i}]"

    def fail_abort(fld: str, msg: str):
        ctx.fail(_path("events", i, fld), msg)
        raise _Abort()

    def run_draws(fn):
        draws = Draws(unhex(ev["draws"], f"{where}.draws"))
        try:
            out = fn(draws)
        except ProtocolError as e:
            fail_abort(EVENT_FIELDS[op][1][0], f"{op} failed: {e.cls} ({e.detail})")
        except _DrawsExhausted as e:
            fail_abort("draws", str(e))
        if draws.left():
            ctx.fail(_path("events", i, "draws"), f"{op} consumed {len(draws.data) - draws.left()} "
                                                  f"of the {len(draws.data)} listed bytes")
        return out

    if op == "initiate":
        if by != "alice" or sessions["alice"] is not None:
            raise VectorFormatError(f"{where}: only alice initiates, once")

        def go(draws):
            ek, m = draws(32), draws(32)
            seed, msg = initiate(setup.alice, setup.bundle, ek, m, b"\x00")
            return seed, init_initiator(seed, msg, setup.alice.public_identity,
                                        setup.bundle.public_identity, draws)
        seed, sessions["alice"] = run_draws(go)
        expect_at(ctx, _path("events", i, "transcript_hash"), ev, "transcript_hash",
                  seed.transcript_hash)
        return

    ad = unhex(ev["ad"], f"{where}.ad")
    s = sessions[by]

    if op == "encrypt":
        if s is None:
            raise VectorFormatError(f"{where}: {by} has no session")
        pt = unhex(ev["plaintext"], f"{where}.plaintext")
        out, trace = run_draws(lambda draws: encrypt(s, pt, ad, draws))
        expect_at(ctx, _path("events", i, "index"), ev, "index", len(messages))
        for fld, val in (("header_key", trace.header_key), ("message_key", trace.message_key),
                         ("body_key", trace.body_key), ("header", trace.header), ("pq_section", trace.pq_section),
                         ("body", trace.body), ("message", out)):
            expect_at(ctx, _path("events", i, fld), ev, fld, val)
        messages.append(out)
        return

    if op in ("respond", "decrypt"):
        idx = ev["index"]
        if not isinstance(idx, int) or not 0 <= idx < len(messages):
            fail_abort("plaintext", f"index {idx!r} names no message sent so far")
        data = messages[idx]
        try:
            if op == "respond":
                if by != "bob" or s is not None:
                    raise VectorFormatError(f"{where}: only bob responds, once")
                msg = PrekeyMessage.decode(data)
                seed = respond(setup.bob, store, msg)          # §5.7 phase 1
                wrapper = data[:len(data) - len(msg.payload)]
                sessions["bob"], got = respond_first(seed, msg, wrapper, setup.bob.public_identity, ad)
                commit(store, msg)                              # phase 2
            else:
                if s is None:
                    raise VectorFormatError(f"{where}: {by} has no session")
                got = decrypt(s, data, ad)
        except ProtocolError as e:
            fail_abort("plaintext", f"{op} of message {idx} failed: {e.cls} ({e.detail})")
        expect_at(ctx, _path("events", i, "plaintext"), ev, "plaintext", got)
        return

    if op == "reject":
        if s is None:
            raise VectorFormatError(f"{where}: {by} has no session")
        data = unhex(ev["input"], f"{where}.input")
        before = ratchet_state.encode(s)
        got = None
        try:
            decrypt(s, data, ad)
        except ProtocolError as e:
            got = e.cls
        path = _path("events", i, "expected_error")
        want = ev["expected_error"]
        if got is None:
            fail_abort("expected_error", f"MISMATCH: expected error {want}, but the message was accepted")
        if got != want:
            ctx.fail(path, f"MISMATCH: expected error {want}, got {got}")
        if ratchet_state.encode(s) != before:
            fail_abort("expected_error", "the rejected message changed the stored state (§7.9)")
        return


# --------------------------------------------------------------------------

KINDS = {
    "conversation": Kind(
        check_conversation,
        inputs=("setup", "events"),
        outputs=("final",),
        output_paths=output_paths,
    ),
}

EXPECTED_COUNTS = {
    "conversation": 1,
}
