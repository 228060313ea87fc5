"""Layer `sessions`: session management across every device of two accounts
(spec §8.6) and healing after a restore (§8.8). The vectors `setup`,
`fanout`, `fanout`, `heal` are the steps of one scenario, in file order:
every live device runs one session manager whose state carries over from
one step to the next; the `routing-error` vectors are each checked against
one device in its state at the end of the scenario."""

from __future__ import annotations

import copy
import hashlib
import json

from common import Kind, ProtocolError, VectorContext, VectorFormatError, path_name, unhex
from layers.ratchet import expect_at
from primitives import chacha20_rng_stream, ed25519_public
from protocol import envelope as env
from protocol.devices import (Device, DeviceList, Tombstone, accept_first, account_seed,
                              decode_list, session_id_of)
from protocol.prekeys import Bundle, DeviceIdentity, PrekeyStore, bundle_for
from protocol.sessions import Manager, Rng

LAYER = "sessions"

# §8.2.1 entry fields of the scenario's lists (test-vectors/README.md).
PLATFORM = 0x01
CLIENT_VERSION = (1, 2, 3)
ADDED_AT = 1_700_000_000
REMOVED_AT = 1_700_000_500
# §4.3: a new store creates the signed prekey (id 1), then the last-resort
# prekey (id 2); the next id is 3.
SPK_ID, LR_ID, FIRST_FREE_ID = 1, 2, 3

SCENARIO_KINDS = ("setup", "fanout", "heal")

ACCOUNT_FIELDS = {"name", "recovery_seed", "account_key", "device_list"}
ACCOUNT_OUTPUTS = ("account_key", "device_list")
LIVE_DEVICE_FIELDS = {"name", "account", "rng_seed", "ed25519_seed", "x25519_secret", "device_id",
                      "signed_prekey", "last_resort_kem_prekey", "bundle", "public_identity"}
REVOKED_DEVICE_FIELDS = {"name", "account", "rng_seed", "ed25519_seed", "x25519_secret",
                         "device_id", "revoked", "public_identity"}
DEVICE_OUTPUTS = ("public_identity", "bundle")

RECIPIENT_FIELDS = ("device", "account", "new_session", "session_created", "session_heal",
                    "transcript_hash", "header_key", "message_key", "body_key", "header", "body",
                    "routing_header", "ad", "ratchet_message", "slot_payload")
RECEIVED_FIELDS = ("device", "sender", "sender_device", "conversation", "content_kind", "content",
                   "new_session", "sender_list_newer", "recipient_list_outdated",
                   "active_transcript_hash", "sessions_held")
SEND_OUTPUTS = ("envelope", "not_recipients")
HEAL_OUTPUTS = ("restored_signed_prekey_id", "restored_last_resort_prekey_id", "restored_bundle")

# The layout of each listed draw op (§8.6.4 steps 3-5): its fields in draw order.
DRAW_OPS = {
    "initiate": ("recipient", ("ephemeral_secret", "mlkem_encaps_m", "ratchet_private_key")),
    "encrypt": ("recipient", ("draws",)),
    "seal": (None, ("ephemeral_secret", "dummy_slots")),
}


class _Abort(Exception):
    """The step cannot continue (a failure has been recorded)."""


class _DrawsExhausted(Exception):
    pass


class Draws:
    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def __call__(self, n: int) -> bytes:
        if len(self.data) - self.pos < n:
            raise _DrawsExhausted(f"the operation draws {n} more bytes after {self.pos} of the "
                                  f"{len(self.data)} listed")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def left(self) -> int:
        return len(self.data) - self.pos


def _p(*parts) -> str:
    return path_name(parts)


def _obj(v, what: str, keys: set) -> dict:
    if not isinstance(v, dict) or set(v) != keys:
        got = sorted(v) if isinstance(v, dict) else v
        raise VectorFormatError(f"{what}: fields {got}, expected {sorted(keys)}")
    return v


def _int(v, what: str) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < 2**64:
        raise VectorFormatError(f"{what}: not a u64")
    return v


# --------------------------------------------------------------------------
# The scenario state
# --------------------------------------------------------------------------

class Scenario:
    def __init__(self):
        self.accounts: dict = {}        # name -> {"key", "seed", "list"}
        self.devices: dict = {}         # name -> {"account", "identity", "device_id", "revoked"}
        self.managers: dict = {}        # live device name -> Manager
        self.snapshots: dict = {}       # vector name -> {device name -> Manager}

    def account_name(self, key: bytes) -> str | None:
        return next((n for n, a in self.accounts.items() if a["key"] == key), None)

    def device_name(self, account_key: bytes, device_id: bytes) -> str | None:
        return next((n for n, d in self.devices.items()
                     if d["device_id"] == device_id
                     and self.accounts[d["account"]]["key"] == account_key), None)

    def live(self) -> list[str]:
        return [n for n, d in self.devices.items() if not d["revoked"]]


def _scenario_key(steps: list) -> str:
    return hashlib.sha256(json.dumps(steps, sort_keys=True).encode()).hexdigest()


_CACHE: dict = {}


def scenario_after(file: str, steps: list) -> Scenario:
    """The scenario state after the steps (setup first), replayed from the
    vectors and cached (the self-test checks each step many times)."""
    key = _scenario_key(steps)
    if key not in _CACHE:
        if not steps or steps[0].get("kind") != "setup":
            raise VectorFormatError("the scenario starts with a `setup` vector")
        scratch = VectorContext(file, steps[-1], steps)
        try:
            if len(steps) == 1:
                sc = build_setup(scratch)
            else:
                sc = scenario_after(file, steps[:-1])
                run_send_step(scratch, sc, steps[-1])
        except _Abort:
            pass
        if scratch.failures:
            raise VectorFormatError(f"earlier scenario step '{steps[-1].get('name')}' does not "
                                    f"verify: {scratch.failures[0][1]}")
        _CACHE[key] = sc
    return copy.deepcopy(_CACHE[key])


def _steps_before(ctx: VectorContext) -> list:
    idx = next((i for i, v in enumerate(ctx.all_vectors) if v is ctx.vector), None)
    if idx is None:
        raise VectorFormatError("vector not found in its file")
    return [v for v in ctx.all_vectors[:idx] if isinstance(v, dict)
            and v.get("kind") in SCENARIO_KINDS]


def _all_steps(vectors: list) -> list:
    return [v for v in vectors if isinstance(v, dict) and v.get("kind") in SCENARIO_KINDS]


def check_file(vectors: list, report) -> None:
    """The scenario steps come first, setup leading; routing errors after."""
    kinds = [v.get("kind") if isinstance(v, dict) else None for v in vectors]
    n = len(_all_steps(vectors))
    if kinds[:1] != ["setup"] or any(k not in SCENARIO_KINDS for k in kinds[:n]) \
            or "setup" in kinds[1:]:
        report("the file must start with one `setup` vector followed by the scenario steps "
               "(`fanout`, `heal`), then the `routing-error` vectors")


# --------------------------------------------------------------------------
# kind `setup`
# --------------------------------------------------------------------------

def setup_paths(vector: dict) -> list[tuple]:
    paths = []
    for i, a in enumerate(vector.get("accounts") or []):
        paths += [("accounts", i, f) for f in ACCOUNT_OUTPUTS if isinstance(a, dict) and f in a]
    for i, d in enumerate(vector.get("devices") or []):
        paths += [("devices", i, f) for f in DEVICE_OUTPUTS if isinstance(d, dict) and f in d]
    return paths


def build_setup(ctx: VectorContext) -> Scenario:
    """Recompute the setup (checking every output) and the initial state of
    every live device's manager."""
    sc = Scenario()
    accounts, devices = ctx.get("accounts"), ctx.get("devices")
    if not isinstance(accounts, list) or not isinstance(devices, list):
        raise VectorFormatError("accounts and devices: expected lists")

    # Devices (§4.1, §8.2.1, §4.3) from their RNG streams.
    for i, d in enumerate(devices):
        revoked = isinstance(d, dict) and d.get("revoked") is True
        d = _obj(d, f"devices[{i}]", REVOKED_DEVICE_FIELDS if revoked else LIVE_DEVICE_FIELDS)
        where = f"devices[{i}]"
        name = d["name"]
        if not isinstance(name, str) or name in sc.devices:
            raise VectorFormatError(f"{where}.name: not a new name")
        seed = unhex(d["ed25519_seed"], f"{where}.ed25519_seed", 32)
        secret = unhex(d["x25519_secret"], f"{where}.x25519_secret", 32)
        did = unhex(d["device_id"], f"{where}.device_id", 32)
        draws = [seed, secret, did]
        info = {"account": d["account"], "identity": DeviceIdentity(seed, secret),
                "device_id": did, "revoked": revoked}
        if not revoked:
            spk = _obj(d["signed_prekey"], f"{where}.signed_prekey", {"id", "x25519_secret"})
            lr = _obj(d["last_resort_kem_prekey"], f"{where}.last_resort_kem_prekey",
                      {"id", "mlkem_seed_d_z"})
            info["spk"] = (spk["id"], unhex(spk["x25519_secret"], f"{where}.spk", 32))
            info["lr"] = (lr["id"], unhex(lr["mlkem_seed_d_z"], f"{where}.lr", 64))
            draws += [info["spk"][1], info["lr"][1]]
            if (spk["id"], lr["id"]) != (SPK_ID, LR_ID):
                ctx.fail(where, f"prekey ids {spk['id']}, {lr['id']}: the §4.3 counter of a new "
                                f"store gives {SPK_ID}, {LR_ID}")
        stream = b"".join(draws)
        if chacha20_rng_stream(unhex(d["rng_seed"], f"{where}.rng_seed", 32), len(stream)) != stream:
            ctx.fail(where, "the device's secrets and id are not the ChaCha20 stream of its "
                            "rng_seed in the order Ed25519 seed, X25519 secret, device_id, "
                            "signed prekey, last-resort prekey")
        ident = info["identity"]
        expect_at(ctx, _p("devices", i, "public_identity"), d, "public_identity",
                  ident.public_identity)
        if not revoked:
            bundle = bundle_for(ident, info["spk"], info["lr"], None, None).encode()
            expect_at(ctx, _p("devices", i, "bundle"), d, "bundle", bundle)
            published = unhex(d["bundle"], f"{where}.bundle")
            try:
                b = Bundle.decode(published)
                b.verify(expected_identity=ident.public_identity)
                info["bundle"] = b
            except ProtocolError as e:
                ctx.fail(_p("devices", i, "bundle"), f"does not decode and verify: {e.cls}")
                raise _Abort() from None
        sc.devices[name] = info

    # Accounts (§8.1) and their lists (§8.2), rebuilt from the devices.
    for i, a in enumerate(accounts):
        a = _obj(a, f"accounts[{i}]", ACCOUNT_FIELDS)
        name = a["name"]
        if not isinstance(name, str) or name in sc.accounts:
            raise VectorFormatError(f"accounts[{i}].name: not a new name")
        rseed = unhex(a["recovery_seed"], f"accounts[{i}].recovery_seed", 16)
        key = ed25519_public(account_seed(rseed))
        expect_at(ctx, _p("accounts", i, "account_key"), a, "account_key", key)
        members = sorted((n for n, d in sc.devices.items() if d["account"] == name),
                         key=lambda n: sc.devices[n]["device_id"])
        entries = [Device(sc.devices[n]["device_id"], sc.devices[n]["identity"].public_identity,
                          PLATFORM, CLIENT_VERSION, ADDED_AT, ADDED_AT, n) for n in members]
        lst = DeviceList(key, 1, bytes(32), entries, [], [])
        lst.sign(account_seed(rseed))
        gone = [n for n in members if sc.devices[n]["revoked"]]
        if gone:
            prev = lst
            lst = DeviceList(key, 2, prev.list_hash(),
                             [e for e in entries if e.description not in gone],
                             [Tombstone(sc.devices[n]["device_id"], REMOVED_AT) for n in gone], [])
            lst.sign(account_seed(rseed))
        expect_at(ctx, _p("accounts", i, "device_list"), a, "device_list", lst.encode())
        try:
            held = accept_first(decode_list(unhex(a["device_list"], f"accounts[{i}].device_list")),
                                expected_session_id=session_id_of(key))
        except ProtocolError as e:
            ctx.fail(_p("accounts", i, "device_list"), f"not accepted as a first list: {e.cls}")
            raise _Abort() from None
        for n in members:
            dv = sc.devices[n]
            entry = held.device(dv["device_id"])
            if dv["revoked"]:
                ok = entry is None and dv["device_id"] in held.tombstone_ids()
            else:
                ok = entry is not None and entry.public_identity == dv["identity"].public_identity
            if not ok:
                ctx.fail(_p("accounts", i, "device_list"), f"{n} is not "
                         f"{'a tombstone' if dv['revoked'] else 'active with its identity'}")
        live = [n for n in members if not sc.devices[n]["revoked"]]
        if live != sorted(live):
            ctx.fail("devices", f"live devices of {name} are not named in ascending id order")
        sc.accounts[name] = {"key": key, "seed": rseed, "list": held}
    for n, d in sc.devices.items():
        if d["account"] not in sc.accounts:
            raise VectorFormatError(f"device {n}: unknown account {d['account']!r}")

    # Initial state of every live device's manager.
    for n in sc.live():
        d = sc.devices[n]
        store = PrekeyStore()
        store.add_signed(*d["spk"])
        store.add_last_resort(*d["lr"])
        own = sc.accounts[d["account"]]["key"]
        m = Manager(d["identity"], d["device_id"], own, store, FIRST_FREE_ID)
        for acc in sc.accounts.values():
            m.lists[acc["key"]] = copy.deepcopy(acc["list"])
        for o in sc.live():
            if o != n:
                od = sc.devices[o]
                m.bundles[(sc.accounts[od["account"]]["key"], od["device_id"])] = od["bundle"]
        sc.managers[n] = m
    return sc


def check_setup(ctx: VectorContext) -> None:
    try:
        build_setup(ctx)
    except _Abort:
        pass


# --------------------------------------------------------------------------
# kinds `fanout` and `heal`
# --------------------------------------------------------------------------

def send_paths(vector: dict) -> list[tuple]:
    paths = [(f,) for f in SEND_OUTPUTS + HEAL_OUTPUTS if f in vector]
    for lst, fields in (("recipients", RECIPIENT_FIELDS), ("received", RECEIVED_FIELDS)):
        for i, r in enumerate(vector.get(lst) or []):
            if isinstance(r, dict):
                paths += [(lst, i, f) for f in fields if f in r]
    return paths


def _listed_draws(ctx: VectorContext) -> list[tuple[str, str | None, list[bytes]]]:
    """The `draws` list as (op, recipient name, draws in draw order)."""
    listed = ctx.get("draws")
    if not isinstance(listed, list):
        raise VectorFormatError("draws: expected a list")
    out = []
    for i, d in enumerate(listed):
        op = d.get("op") if isinstance(d, dict) else None
        if op not in DRAW_OPS:
            raise VectorFormatError(f"draws[{i}]: unknown op {op!r}")
        who, fields = DRAW_OPS[op]
        _obj(d, f"draws[{i}]", {"op"} | set(fields) | ({who} if who else set()))
        values = []
        for f in fields:
            if f == "dummy_slots":
                if not isinstance(d[f], list):
                    raise VectorFormatError(f"draws[{i}].dummy_slots: expected a list")
                values += [unhex(x, f"draws[{i}].dummy_slots") for x in d[f]]
            else:
                values.append(unhex(d[f], f"draws[{i}].{f}"))
        out.append((op, d[who] if who else None, values))
    return out


def run_send_step(ctx: VectorContext, sc: Scenario, v: dict) -> None:
    """One `fanout` or `heal` step on `sc` (changed in place), every output
    compared; a snapshot of every manager is kept under the vector's name."""
    healing = v.get("kind") == "heal"
    sender = ctx.get("sender")
    if sender not in sc.managers:
        raise VectorFormatError(f"sender {sender!r} is not a live device")
    conv_name = ctx.get("conversation")
    if conv_name not in sc.accounts:
        raise VectorFormatError(f"conversation {conv_name!r} is not an account")
    conv = sc.accounts[conv_name]["key"]
    now = _int(ctx.get("now"), "now")

    if healing:
        # §8.8: the sender goes back to its backup and restores.
        backup = ctx.get("backup_of")
        if backup not in sc.snapshots:
            raise VectorFormatError(f"backup_of {backup!r} names no earlier fanout step")
        mgr = copy.deepcopy(sc.snapshots[backup][sender])
        rd = _obj(ctx.get("restore_draws"), "restore_draws",
                  {"signed_prekey_x25519_secret", "last_resort_mlkem_seed_d_z"})
        rdata = (unhex(rd["signed_prekey_x25519_secret"], "restore_draws.spk", 32)
                 + unhex(rd["last_resort_mlkem_seed_d_z"], "restore_draws.lr", 64))
        if chacha20_rng_stream(ctx.hex("restore_rng_seed", 32), len(rdata)) != rdata:
            ctx.fail("restore_draws", "not the ChaCha20 stream of restore_rng_seed")
        mgr.restore(Draws(rdata))
        ctx.expect_value("restored_signed_prekey_id", max(mgr.store.signed))
        ctx.expect_value("restored_last_resort_prekey_id", max(mgr.store.last_resort))
        ctx.expect("restored_bundle", mgr.bundle().encode())
        sc.managers[sender] = mgr
        content = b""
    else:
        content = ctx.hex("content")
    mgr = sc.managers[sender]

    # The draws: one listed stream, the ChaCha20 stream of rng_seed.
    listed = _listed_draws(ctx)
    data = b"".join(b for _, _, vals in listed for b in vals)
    if chacha20_rng_stream(ctx.hex("rng_seed", 32), len(data)) != data:
        ctx.fail("draws", "the draws are not the ChaCha20 stream of rng_seed")
    source = Draws(data)
    rng = Rng(source)
    try:
        if healing:
            envelopes, traces = mgr.heal(conv, now, rng)
        else:
            envelopes, traces = mgr.send(conv, content, now, rng)
    except ProtocolError as e:
        ctx.fail("envelope", f"the send failed: {e.cls} ({e.detail})")
        raise _Abort() from None
    except _DrawsExhausted as e:
        ctx.fail("draws", str(e))
        raise _Abort() from None
    if source.left():
        ctx.fail("draws", f"the send consumed {source.pos} of the {len(data)} listed bytes")

    # Which operation made each draw (§8.6.4 steps 3-5).
    def name_of(r):
        return None if r is None else sc.device_name(*r)
    made = [(op, name_of(r), vals) for op, r, vals in rng.segments]
    if [(op, r) for op, r, _ in made] != [(op, r) for op, r, _ in listed]:
        ctx.fail("draws", f"the send made the draws {[(op, r) for op, r, _ in made]}, the vector "
                          f"lists {[(op, r) for op, r, _ in listed]}")
    else:
        for (op, r, vals), (_, _, want) in zip(made, listed):
            if op == "encrypt":
                vals, want = [b"".join(vals)], [b"".join(want)]
            if [len(x) for x in vals] != [len(x) for x in want]:
                ctx.fail("draws", f"{op} for {r}: draw sizes {[len(x) for x in vals]}, listed "
                                  f"{[len(x) for x in want]}")

    if len(envelopes) != 1:
        ctx.fail("envelope", f"the send gave {len(envelopes)} envelopes")
        raise _Abort()
    ctx.expect("envelope", envelopes[0])
    published = ctx.hex("envelope")

    # Recipients, in recipient order.
    recips = ctx.get("recipients")
    if not isinstance(recips, list):
        raise VectorFormatError("recipients: expected a list")
    if len(recips) != len(traces):
        ctx.fail("recipients", f"{len(recips)} recipients listed, the send has {len(traces)}")
        raise _Abort()
    names = []
    for i, (r, t) in enumerate(zip(recips, traces)):
        r = _obj(r, f"recipients[{i}]", set(RECIPIENT_FIELDS))
        dname = sc.device_name(t.account, t.device_id)
        names.append(dname)
        for f, value in (("device", dname), ("account", sc.account_name(t.account)),
                         ("new_session", t.new_session), ("session_created", t.created),
                         ("session_heal", t.heal), ("transcript_hash", t.transcript_hash),
                         ("header_key", t.encrypt.header_key),
                         ("message_key", t.encrypt.message_key),
                         ("body_key", t.encrypt.body_key), ("header", t.encrypt.header),
                         ("body", t.encrypt.body), ("routing_header", t.routing_header),
                         ("ad", t.ad), ("ratchet_message", t.ratchet_message),
                         ("slot_payload", t.slot_payload)):
            expect_at(ctx, _p("recipients", i, f), r, f, value)
        # The published envelope opens to the published slot payload (§8.7.5).
        try:
            got = env.open_envelope(sc.devices[dname]["identity"].x25519_secret, published)
            expect_at(ctx, _p("recipients", i, "slot_payload"), r, "slot_payload", got)
        except ProtocolError as e:
            ctx.fail("envelope", f"{dname} cannot open it: {e.cls}")

    # Every recipient receives (§8.6.5), one after the other.
    received = ctx.get("received")
    if not isinstance(received, list):
        raise VectorFormatError("received: expected a list")
    if len(received) != len(names):
        ctx.fail("received", f"{len(received)} reports listed, {len(names)} recipients")
        raise _Abort()
    for i, (r, dname) in enumerate(zip(received, names)):
        r = _obj(r, f"received[{i}]", set(RECEIVED_FIELDS))
        m = sc.managers[dname]
        try:
            rep = m.receive(published)
        except ProtocolError as e:
            ctx.fail(_p("received", i, "content"), f"{dname} fails to receive: {e.cls} ({e.detail})")
            raise _Abort() from None
        ps = m.peer(rep.sender_account, rep.sender_device)
        for f, value in (("device", dname), ("sender", sc.account_name(rep.sender_account)),
                         ("sender_device", sc.device_name(rep.sender_account, rep.sender_device)),
                         ("conversation", sc.account_name(rep.conversation)),
                         ("content_kind", rep.kind), ("content", rep.content),
                         ("new_session", rep.new_session),
                         ("sender_list_newer", rep.sender_list_newer),
                         ("recipient_list_outdated", rep.recipient_list_outdated),
                         ("active_transcript_hash",
                          ps.active.session.th if ps.active else b""),
                         ("sessions_held", len(ps.all()))):
            expect_at(ctx, _p("received", i, f), r, f, value)
        if healing and (ps.active is None or not ps.active.heal
                        or not all(e.stale for e in ps.archived)):
            ctx.fail(_p("received", i, "sessions_held"), f"{dname}: the healing session is not "
                     f"active with every earlier session stale (§8.6.2 rule 2)")

    # Every live device that is no recipient (the sender among them) fails
    # with NotARecipient and changes nothing.
    ctx.expect_value("not_recipients", [sender])
    for n in sc.live():
        if n in names:
            continue
        m = sc.managers[n]
        before = copy.deepcopy(m)
        try:
            m.receive(published)
            ctx.fail("not_recipients", f"{n} receives the envelope")
        except ProtocolError as e:
            if e.cls != "NotARecipient":
                ctx.fail("not_recipients", f"{n} gets {e.cls}, expected NotARecipient")
        if m != before:
            ctx.fail("not_recipients", f"{n}'s state changed")

    sc.snapshots[v.get("name")] = {n: copy.deepcopy(m) for n, m in sc.managers.items()}


def check_send(ctx: VectorContext) -> None:
    sc = scenario_after(ctx.file, _steps_before(ctx))
    try:
        run_send_step(ctx, sc, ctx.vector)
    except _Abort:
        pass


# --------------------------------------------------------------------------
# kind `routing-error`
# --------------------------------------------------------------------------

def routing_error_paths(vector: dict) -> list[tuple]:
    return [(f,) for f in ("slot_payload", "expected_error") if vector.get(f) is not None]


def check_routing_error(ctx: VectorContext) -> None:
    sc = scenario_after(ctx.file, _all_steps(ctx.all_vectors))
    dname = ctx.get("device")
    if dname not in sc.managers:
        raise VectorFormatError(f"device {dname!r} is not a live device")
    m = sc.managers[dname]
    data = ctx.hex("envelope")
    want = ctx.get("slot_payload")
    try:
        got = env.open_envelope(m.identity.x25519_secret, data)
        if want is None:
            ctx.fail("slot_payload", "the device has a slot, the vector says none")
        else:
            ctx.expect("slot_payload", got)
    except ProtocolError as e:
        if want is not None or e.cls != "NoSlotForDevice":
            ctx.fail("slot_payload", f"opening the envelope fails: {e.cls}")
    before = copy.deepcopy(m)
    ctx.expect_error("expected_error", lambda: m.receive(data))
    if m != before:
        ctx.fail("expected_error", "the rejected envelope changed the device's state")


# --------------------------------------------------------------------------

KINDS = {
    "setup": Kind(check_setup, inputs=("accounts", "devices"), outputs=(),
                  output_paths=setup_paths),
    "fanout": Kind(check_send,
                   inputs=("sender", "conversation", "content", "now", "rng_seed", "draws"),
                   outputs=("recipients", "envelope", "received", "not_recipients"),
                   output_paths=send_paths),
    "heal": Kind(check_send,
                 inputs=("backup_of", "sender", "conversation", "now", "restore_rng_seed",
                         "restore_draws", "rng_seed", "draws"),
                 outputs=HEAL_OUTPUTS + ("recipients", "envelope", "received", "not_recipients"),
                 output_paths=send_paths),
    "routing-error": Kind(check_routing_error, inputs=("device", "envelope"),
                          outputs=("slot_payload", "expected_error"),
                          output_paths=routing_error_paths),
}

EXPECTED_COUNTS = {
    "setup": 1,
    "fanout": 2,
    "heal": 1,
    "routing-error": 22,
}


# --------------------------------------------------------------------------
# Self-test of the rules (`verify.py --self-test`): routing checks, reports,
# sending errors, repeated heals and the §8.6.2 rules that no published
# vector reaches, built in memory from the state at the end of the scenario.
# --------------------------------------------------------------------------

def self_test(vectors: list) -> list[tuple[str, str | None]]:
    from types import SimpleNamespace

    from protocol.ratchet import ROLE_INITIATOR, ROLE_RESPONDER
    from protocol.sessions import (Entry, PeerSessions, RoutingHeader, MAX_CONTENT_LEN,
                                   ROUTING_HEADER_LEN, split_payload)

    results: list[tuple[str, str | None]] = []
    sc = scenario_after("sessions.json", _all_steps(vectors))
    A, B = sc.accounts["A"]["key"], sc.accounts["B"]["key"]
    did = {n: d["device_id"] for n, d in sc.devices.items()}
    stranger = bytes([0x77]) * 32
    no_contact = ed25519_public(account_seed(bytes([0xC0]) * 16))
    placeholder = bytes([0x01, 0x04]) + bytes(106)          # §7.7 minimum ratchet message
    first = next(v for v in vectors if v.get("kind") == "fanout")
    slot_b1 = unhex(next(r for r in first["recipients"] if r["device"] == "B1")["slot_payload"],
                    "slot_payload")
    base, _ = split_payload(slot_b1)

    def rng(tag: int) -> Draws:
        return Draws(chacha20_rng_stream(bytes([tag]) * 32, 1 << 16))

    def sealed_for(m: Manager, payload: bytes) -> bytes:
        pairs = [(m.identity.ik_pub, payload)]
        sizes = env.draw_sizes(pairs)
        return env.seal(pairs, [bytes([1]) * 32] + [bytes([2 + i]) * n
                                                    for i, n in enumerate(sizes[1:])])

    def header(**changes) -> bytes:
        return RoutingHeader(**{**base.__dict__, **changes}).encode()

    def expect_error(case: str, m: Manager, data: bytes, want: str) -> None:
        before = copy.deepcopy(m)
        try:
            m.receive(data)
            got = "succeeded"
        except ProtocolError as e:
            got = e.cls
        if got != want:
            results.append((case, f"expected {want}, got {got}"))
        elif m != before:
            results.append((case, "the rejected envelope changed the state"))
        else:
            results.append((case, None))

    b1, a1 = sc.managers["B1"], sc.managers["A1"]
    bad_key = bytes([0x01]) + bytes(31)                      # the identity point: small order
    for case, m, payload, want in (
            ("conversation not a valid Ed25519 key", b1,
             header(conversation=bad_key) + placeholder, "Wire/InvalidEd25519Key"),
            ("invalid sender account, then cut short", b1,
             header(sender_account=bad_key)[:50], "Wire/InvalidEd25519Key"),
            ("session flags 0x80", b1,
             header()[:121] + b"\x80\x01" + placeholder, "Wire/InvalidFlags"),
            ("cut inside sender_list_version", b1, header()[:100], "Wire/Truncated"),
            ("cut before the kind byte", b1, header()[:ROUTING_HEADER_LEN - 1], "Wire/Truncated"),
            ("own account: sender device unknown", b1,
             header(sender_account=B, sender_device=stranger, conversation=A,
                    sender_list_version=1) + placeholder, "UnknownSenderDevice"),
            ("own account: unknown device claims a newer list", b1,
             header(sender_account=B, sender_device=stranger, conversation=A,
                    sender_list_version=2) + placeholder, "DeviceListOutdated"),
            ("own account: sender device revoked", a1,
             header(sender_account=A, sender_device=did["A0"], conversation=B,
                    sender_list_version=3) + placeholder, "RevokedSender"),
            ("revoked device claims a newer list", b1,
             header(sender_device=did["A0"], sender_list_version=3) + placeholder,
             "RevokedSender"),
            ("misrouted before the device status", b1,
             header(sender_device=stranger, conversation=A) + placeholder, "Misrouted"),
            ("own account: conversation check before the device status", b1,
             header(sender_account=B, sender_device=stranger, conversation=no_contact)
             + placeholder, "UnknownAccount"),
            ("ratchet message no held session decrypts", b1,
             header() + placeholder, "Undecryptable/UndecryptableHeader")):
        expect_error(case, m, sealed_for(m, payload), want)

    # A repeated envelope: B1 decrypts A1's prekey message in the session it
    # created, whose first key is used (§8.6.5 step 5, §7.8).
    expect_error("the first fanout delivered again", b1, unhex(first["envelope"], "envelope"),
                 "Undecryptable/DuplicateMessage")

    # A1 writes after the scenario, holding its own list as version 3 and B's
    # as version 0 (in memory): every recipient decrypts in a held session
    # (repeated prekey messages, B2's healing session) and reports both.
    a1x = copy.deepcopy(a1)
    a1x.lists[A].version = 3
    a1x.lists[B].version = 0
    envs, traces = a1x.send(B, b"one more", 1_700_010_000, Rng(rng(0x51)))
    want_recips = ["B1", "B2", "B3", "A2"]
    got_recips = [sc.device_name(t.account, t.device_id) for t in traces]
    problem = None if got_recips == want_recips and not any(t.new_session for t in traces) \
        else f"recipients {got_recips}"
    for n in want_recips:
        m = copy.deepcopy(sc.managers[n])
        try:
            rep = m.receive(envs[0])
        except ProtocolError as e:
            problem = problem or f"{n} gets {e.cls}"
            continue
        want = (b"one more", False, True, n.startswith("B"))
        got = (rep.content, rep.new_session, rep.sender_list_newer, rep.recipient_list_outdated)
        if got != want:
            problem = problem or f"{n} reports {got}, expected {want}"
        if n == "B2" and not m.peer(A, did["A1"]).active.answered:
            problem = problem or "B2's healing session is not answered after A1's reply"
    results.append(("reports after the scenario: newer sender list, older conversation list",
                    problem))

    # Sending errors (§8.6.4 steps 1-2), before anything is drawn or changed.
    def expect_send(case: str, m: Manager, conv: bytes, content: bytes, want: str) -> None:
        before = copy.deepcopy(m)
        r = Rng(rng(0x52))
        try:
            m.send(conv, content, 1_700_010_000, r)
            got = "succeeded"
        except ProtocolError as e:
            got = e.cls
        if got != want:
            results.append((case, f"expected {want}, got {got}"))
        else:
            results.append((case, None if m == before and not r.segments else
                            "the failed send drew or changed something"))

    expect_send("content one byte too long", copy.deepcopy(a1), B, bytes(MAX_CONTENT_LEN + 1),
                "ContentTooLong")
    revoked = copy.deepcopy(a1)
    lst = revoked.lists[A]
    lst.devices = [d for d in lst.devices if d.device_id != did["A1"]]
    lst.tombstones.append(Tombstone(did["A1"], REMOVED_AT + 1))
    expect_send("this device revoked", revoked, B, b"x", "ThisDeviceRevoked")
    nobundle = copy.deepcopy(b1)
    del nobundle.bundles[(B, did["B3"])]
    expect_send("no bundle for a device without a session", nobundle, A, b"x", "MissingPrekeys")
    alone = copy.deepcopy(b1)
    alone.lists[B].devices = [d for d in alone.lists[B].devices if d.device_id == did["B1"]]
    expect_send("conversation with itself, no other device", alone, B, b"x", "NoRecipients")
    ok = copy.deepcopy(b1)
    try:
        ok.send(B, bytes(MAX_CONTENT_LEN), 1_700_010_000, Rng(rng(0x53)))
        results.append(("content of MAX_CONTENT_LEN bytes", None))
    except ProtocolError as e:
        results.append(("content of MAX_CONTENT_LEN bytes", f"fails with {e.cls}"))

    # Heals (§8.8): a second heal of A sends nothing; after a second restore
    # with the clock behind, the sessions get created = latest + 1 and the
    # receivers switch to them, keeping the others stale.
    b2 = copy.deepcopy(sc.managers["B2"])
    envs, _ = b2.heal(A, 1_700_010_000, Rng(rng(0x54)))
    results.append(("a second heal sends nothing", None if not envs else f"{len(envs)} envelopes"))
    b2.restore(rng(0x55))
    envs, traces = b2.heal(A, 0, Rng(rng(0x56)))
    latest = 1_700_004_660
    problem = None
    if [(t.created, t.heal, t.new_session) for t in traces] != [(latest + 1, True, True)] * 2:
        problem = f"sessions {[(t.created, t.heal, t.new_session) for t in traces]}"
    for n, t in zip(("A1", "A2"), traces):
        m = copy.deepcopy(sc.managers[n])
        try:
            rep = m.receive(envs[0])
        except ProtocolError as e:
            problem = problem or f"{n} gets {e.cls}"
            continue
        ps = m.peer(B, did["B2"])
        if not (rep.new_session and rep.kind == 2 and ps.active.session.th == t.transcript_hash
                and len(ps.all()) == 3 and all(e.stale for e in ps.archived)):
            problem = problem or f"{n} did not switch to the new healing session"
    if b2.next_id != FIRST_FREE_ID + 2 * (1 << 20) + 4:
        problem = problem or f"id counter {b2.next_id} after two restores"
    results.append(("heal after a second restore, clock behind", problem))

    # §8.6.2 rules 1-3 on sessions in memory (only `th`, the role and the
    # handshake state matter to the rules).
    def entry(created: int, heal: bool, th: int, mine: bool, answered: bool = False) -> Entry:
        s = SimpleNamespace(th=bytes([th]) * 32,
                            role=ROLE_INITIATOR if mine else ROLE_RESPONDER,
                            handshake_header=None if answered else b"hs")
        return Entry(s, created, heal, mine)

    def rule(case: str, steps, want_active: int, want_stale: list[int]) -> None:
        ps = PeerSessions()
        es = []
        for own, e in steps:
            es.append(e)
            (ps.install_own if own else ps.install_peer)(e)
        got_active = es.index(ps.active) if ps.active in es else None
        got_stale = sorted(es.index(e) for e in ps.all() if e.stale)
        ok = got_active == want_active and got_stale == sorted(want_stale)
        results.append((case, None if ok else
                        f"active {got_active}, stale {got_stale}; expected {want_active}, "
                        f"{want_stale}"))

    rule("first contacts crossing: the later created wins",
         [(True, entry(10, False, 1, True)), (False, entry(11, False, 2, False))], 1, [])
    rule("first contacts crossing, same time: the smaller transcript hash wins",
         [(True, entry(10, False, 1, True)), (False, entry(10, False, 2, False))], 0, [])
    rule("a peer's healing session displaces a first contact, others stale",
         [(False, entry(30, False, 1, False)), (True, entry(10, False, 2, True)),
          (False, entry(5, True, 3, False))], 2, [0, 1])
    rule("both healing at once: preference, nothing stale",
         [(True, entry(20, True, 1, True)), (False, entry(15, True, 2, False))], 0, [])
    rule("a peer's heal after this device's heal was answered",
         [(True, entry(20, True, 1, True, answered=True)), (False, entry(15, True, 2, False))],
         1, [0])
    rule("this device's healing session: the others stale",
         [(False, entry(10, False, 1, False)), (True, entry(11, True, 2, True))], 1, [0])
    ps = PeerSessions()
    for i in range(6):
        ps.install_own(entry(100 + i, False, i, True))
    results.append(("at most 3 archived sessions; latest kept",
                    None if (len(ps.archived), ps.latest, ps.archived[0].created) == (3, 105, 104)
                    else f"{len(ps.archived)} archived, latest {ps.latest}"))
    return results

