"""Layer `records`: the client records at rest (spec §10.3): the keys a
storage key gives, a sealed record of every kind, one device's whole store
(every record opened by the name the other records imply for the head's
device id, its plain content decoded by §10.3.1 and checked against the
others, every anchored record at its anchor, §10.4), and the open order."""

from __future__ import annotations

import copy

from common import Kind, ProtocolError, VectorContext, VectorFormatError, path_name, unhex
from primitives import chacha20_rng_stream, xchacha20poly1305_seal
from protocol import records as R
from protocol import stored_prekeys

LAYER = "records"

# The classes of the open order (§10.3 steps 1–8); every one is published.
OPEN_CLASSES = ("Corrupted/TooLong", "Corrupted/Truncated", "Corrupted/BadVersion",
                "NewerVersion", "Corrupted/WrongType", "WrongKey", "Corrupted/Authentication")


def _kind(ctx: VectorContext, fld: str = "record_kind") -> int:
    k = ctx.get(fld)
    if not isinstance(k, int) or isinstance(k, bool) or k not in R.KIND_NAMES:
        raise VectorFormatError(f"'{fld}': not a record kind (1…7)")
    return k


def _name_of(ctx: VectorContext) -> bytes:
    """The name from `record_kind`, `account`, `device`; the account and
    device must be zero where the kind has none (§10.3)."""
    kind = _kind(ctx)
    account, device = ctx.hex("account", 32), ctx.hex("device", 32)
    if kind not in R.KINDS_WITH_ACCOUNT and account != bytes(32):
        raise VectorFormatError(f"'account': a {R.KIND_NAMES[kind]} record's name has none")
    if kind not in R.KINDS_WITH_DEVICE and device != bytes(32):
        raise VectorFormatError(f"'device': a {R.KIND_NAMES[kind]} record's name has none")
    return R.record_name(kind, account, device)


def _int_field(ctx: VectorContext, fld: str) -> int:
    v = ctx.get(fld)
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < 2**64:
        raise VectorFormatError(f"'{fld}': not a u64")
    return v


# --------------------------------------------------------------------------
# record-keys
# --------------------------------------------------------------------------

def check_keys(ctx: VectorContext) -> None:
    keys = R.derive_keys(ctx.hex("storage_key", 32))
    ctx.expect("k_rec", keys.k_rec)
    ctx.expect("k_name", keys.k_name)
    ctx.expect("check", keys.check)
    ctx.expect("k_log", keys.k_log)


# --------------------------------------------------------------------------
# record-seal
# --------------------------------------------------------------------------

def check_seal(ctx: VectorContext) -> None:
    keys = R.derive_keys(ctx.hex("storage_key", 32))
    nonce = ctx.hex("nonce", R.NONCE_LEN)
    if chacha20_rng_stream(ctx.hex("rng_seed", 32), R.NONCE_LEN) != nonce:
        ctx.fail("nonce", "not the first 24 bytes of the ChaCha20 stream of rng_seed")
    name = _name_of(ctx)
    owner = ctx.hex("owner", 32)
    generation = _int_field(ctx, "generation")
    plain = ctx.hex("plain")
    ctx.expect("record_name", name)
    ctx.expect("key", R.record_key(keys, name))
    if ctx.expect("value", R.seal(keys, name, generation, nonce, plain, owner)):
        # The published value opens back (§10.3 steps 1–8), and only for
        # its owner unless it is the head (whose AD has no owner).
        value = ctx.hex("value")
        try:
            got = R.open_record(keys, name, value, owner)
        except ProtocolError as e:
            ctx.fail("value", f"does not open: {e.cls} ({e.detail})")
            return
        if got != (generation, plain):
            ctx.fail("value", "opens to another generation or content")
        elsewhere = bytes([owner[0] ^ 1]) + owner[1:]
        try:
            R.open_record(keys, name, value, elsewhere)
            opens = True
        except ProtocolError:
            opens = False
        if opens != (name[0] == R.KIND_HEAD):
            ctx.fail("value", "opens for another owner" if opens
                     else "the head does not open for another owner")
    if len(ctx.hex("value")) != len(plain) + R.OVERHEAD:
        ctx.fail("value", f"not {R.OVERHEAD} bytes longer than its content (§10.9)")


# --------------------------------------------------------------------------
# device-store
# --------------------------------------------------------------------------

RECORD_FIELDS = ("key", "value", "record_kind", "record_name", "generation", "plain", "fields")
RECORD_OUTPUTS = ("record_kind", "record_name", "generation", "plain", "fields")
FIELDS = {
    R.KIND_HEAD: ("device_id", "account_key", "account_held", "signed_prekey_rotated_at",
                  "last_resort_prekey_rotated_at", "anchors"),
    R.KIND_IDENTITY: ("ed25519_seed", "x25519_secret", "public_identity"),
    R.KIND_ACCOUNT: ("ed25519_seed", "account_key"),
    R.KIND_PREKEYS: ("bundle",),
    R.KIND_CONTACT_INDEX: ("contacts",),
    R.KIND_PEER: ("list_version", "devices", "bundle_devices"),
    R.KIND_SESSIONS: ("latest", "active", "archived", "entries"),
}
ENTRY_FIELDS = ("created", "stale", "heal")
CONTACT_FIELDS = ("account_key", "peer_generation")


def _leaves(value, path: tuple) -> list:
    """Every scalar leaf under `value` (dicts by key, lists by index)."""
    if isinstance(value, dict):
        return [p for k in value for p in _leaves(value[k], path + (k,))]
    if isinstance(value, list):
        return [p for i, x in enumerate(value) for p in _leaves(x, path + (i,))]
    return [path]


def store_output_paths(v: dict) -> list:
    paths = [("generation",)]
    for i, rec in enumerate(v.get("records", [])):
        for fld in RECORD_OUTPUTS:
            if fld in rec:
                paths += _leaves(rec[fld], ("records", i, fld))
    return paths


class _Store:
    """The published records and what checking them found."""

    def __init__(self, ctx: VectorContext):
        self.ctx = ctx
        self.keys = R.derive_keys(ctx.hex("storage_key", 32))
        recs = ctx.get("records")
        if not isinstance(recs, list) or not recs:
            raise VectorFormatError("'records': not a non-empty list")
        self.recs = recs
        for i, rec in enumerate(recs):
            if not isinstance(rec, dict):
                raise VectorFormatError(f"records[{i}]: not an object")
            for fld in rec:
                if fld not in RECORD_FIELDS:
                    ctx.fail(path_name(("records", i, fld)), "field not known to the verifier")
            for fld in RECORD_FIELDS:
                if fld not in rec:
                    raise VectorFormatError(f"records[{i}]: missing field '{fld}'")
        self.by_key = {}
        for i, rec in enumerate(recs):
            key = unhex(rec["key"], f"records[{i}].key", R.KEY_LEN)
            if key in self.by_key:
                raise VectorFormatError(f"records[{i}]: key listed twice")
            if self.by_key and key < max(self.by_key):
                ctx.fail("records", f"records[{i}]: not in ascending key order (a store's order)")
            self.by_key[key] = i

    def value(self, i: int) -> bytes:
        return unhex(self.recs[i]["value"], f"records[{i}].value")

    # -- comparing ------------------------------------------------------
    def fail(self, path: tuple, msg: str) -> None:
        self.ctx.fail(path_name(path), msg)

    def compare(self, path: tuple, expected, computed) -> None:
        """Leaf by leaf, so a difference is named by its path."""
        if isinstance(computed, dict):
            if not isinstance(expected, dict) or set(expected) != set(computed):
                self.fail(path, f"MISMATCH: expected fields {sorted(computed)}, "
                                f"published {expected!r}")
                return
            for k in computed:
                self.compare(path + (k,), expected[k], computed[k])
        elif isinstance(computed, list):
            if not isinstance(expected, list) or len(expected) != len(computed):
                self.fail(path, f"MISMATCH: expected {computed!r}, published {expected!r}")
                return
            for j, (e, c) in enumerate(zip(expected, computed)):
                self.compare(path + (j,), e, c)
        elif type(expected) is not type(computed) or expected != computed:
            self.fail(path, f"MISMATCH: computed {computed!r}, published {expected!r}")


def _hex(b: bytes) -> str:
    return b.hex()


def check_store(ctx: VectorContext) -> None:
    s = _Store(ctx)
    keys = s.keys
    opened: dict[int, tuple[bytes, int, bytes]] = {}   # index -> (name, generation, plain)
    # The owner every record but the head binds: the head's device id (the
    # head's own AD has none, so it opens before the owner is known).
    owner = [bytes(32)]

    def open_at(name: bytes) -> tuple[int, bytes] | None:
        """Open the record under `name`, if the store holds it."""
        i = s.by_key.get(R.record_key(keys, name))
        if i is None:
            return None
        try:
            generation, plain = R.open_record(keys, name, s.value(i), owner[0])
        except ProtocolError as e:
            s.fail(("records", i, "value"), f"does not open as the {R.KIND_NAMES[name[0]]} "
                                            f"record: {e.cls} ({e.detail})")
            return None
        opened[i] = (name, generation, plain)
        return generation, plain

    def required(name: bytes, why: str) -> tuple[int, bytes] | None:
        got = open_at(name)
        if got is None and R.record_key(keys, name) not in s.by_key:
            ctx.fail("records", f"no {R.KIND_NAMES[name[0]]} record ({why})")
        return got

    # The head (its key is fixed), then what it and the index imply.
    head_rec = required(R.record_name(R.KIND_HEAD), "§10.1: every device has one")
    if head_rec is None:
        return
    g, head_plain = head_rec
    ctx.expect_value("generation", g)
    try:
        head = R.decode_head(head_plain)
    except ProtocolError as e:
        ctx.fail("records", f"the head does not decode: {e.cls} ({e.detail})")
        return
    owner[0] = head.device_id

    def decoded(name: bytes, got, decoder):
        """The content decoded, or None (reported at the record's plain)."""
        if got is None:
            return None
        try:
            return decoder(got[1])
        except ProtocolError as e:
            i = s.by_key[R.record_key(keys, name)]
            s.fail(("records", i, "plain"), f"does not decode (§10.3.1): {e.cls} ({e.detail})")
            return None

    peers: dict[bytes, R.Peer] = {}
    n = R.record_name(R.KIND_IDENTITY)
    identity = decoded(n, required(n, "§10.1"), R.decode_identity)
    required(R.record_name(R.KIND_PREKEYS), "§10.1")
    n = R.record_name(R.KIND_CONTACT_INDEX)
    contacts = decoded(n, required(n, "§10.1"), R.decode_index)
    account_seed = None
    if head.account_held:
        n = R.record_name(R.KIND_ACCOUNT)
        account_seed = decoded(n, required(n, "the head says the account key is held"),
                               R.decode_account)
    elif open_at(R.record_name(R.KIND_ACCOUNT)) is not None:
        ctx.fail("records", "an account record although the head says the key is not held")
    for acct in [head.account_key] + list(contacts or []):
        got = required(R.record_name(R.KIND_PEER, acct),
                       "the own account" if acct == head.account_key else "a contact")
        if got:
            try:
                peers[acct] = R.decode_peer(got[1], acct)
            except ProtocolError as e:
                i = s.by_key[R.record_key(keys, R.record_name(R.KIND_PEER, acct))]
                s.fail(("records", i, "plain"),
                       f"the peer record is rejected: {e.cls} ({e.detail})")
    # A session set may exist for every active device of every held peer
    # but this device (§10.3.1).
    for acct, peer in peers.items():
        for d in peer.list.devices:
            if acct == head.account_key and d.device_id == head.device_id:
                continue
            open_at(R.record_name(R.KIND_SESSIONS, acct, d.device_id))

    # Every stored record is one of these, and the published outputs.
    for key, i in s.by_key.items():
        if i not in opened:
            if not any(f[0].startswith(f"records[{i}]") for f in ctx.failures):
                s.fail(("records", i, "key"), "no name the other records imply gives this key "
                                              "(or it names a device this device may not hold "
                                              "sessions with)")
            continue
        name, generation, plain = opened[i]
        rec = s.recs[i]
        if key[:1] != name[:1]:
            s.fail(("records", i, "key"), "the key's first byte is not the kind")
        s.compare(("records", i, "record_kind"), rec["record_kind"], name[0])
        s.compare(("records", i, "record_name"), rec["record_name"], _hex(name))
        s.compare(("records", i, "generation"), rec["generation"], generation)
        s.compare(("records", i, "plain"), rec["plain"], _hex(plain))
        # §10.3 steps 9 and 9a against the head and the anchors (§10.4);
        # the store's head is the held one, so a newer record is not of
        # this state (Inconsistent) rather than another process's commit.
        try:
            R.check_generation(name[0], generation, g, _anchor(name, head, contacts))
        except ProtocolError as e:
            s.fail(("records", i, "generation"), f"{e.cls} (§10.3 steps 9, 9a): {e.detail}")
        # Byte for byte: sealing the content again with the stored nonce.
        value = s.value(i)
        if R.seal(keys, name, generation, value[R.HEADER_LEN:R.FIXED_LEN], plain,
                  head.device_id) != value:
            s.fail(("records", i, "value"), "sealing the content again with its nonce differs")
        fields = _fields(s, i, name, plain, head, identity, account_seed, contacts, peers)
        if fields is not None:
            s.compare(("records", i, "fields"), rec["fields"], fields)


def _anchor(name: bytes, head: R.Head, contacts: dict | None) -> int | None:
    """The generation the record `name` was last written at, by the head
    (identity, account, prekeys, contact index, own peer) or the contact
    index (a contact's peer); None for the head and the session sets."""
    kind = name[0]
    if kind == R.KIND_PEER:
        account = name[1:33]
        if account == head.account_key:
            return head.anchors.own_peer
        return (contacts or {}).get(account)
    return head.anchors.of(kind)


def _fields(s: _Store, i: int, name: bytes, plain: bytes, head, identity, account_seed,
            contacts, peers) -> dict | None:
    """The decoded fields of record `i` (§10.3.1), with the checks that tie
    it to the other records; None when it does not decode."""
    kind = name[0]
    at = ("records", i, "fields")

    def bad(msg: str) -> None:
        s.fail(("records", i, "plain"), msg)

    try:
        if kind == R.KIND_HEAD:
            if head.encode() != plain:
                bad("does not re-encode to itself")
            if not head.account_held and head.anchors.account != 0:
                s.fail(at + ("anchors", "account"), "not 0 although the account key is not "
                                                    "held (§10.3.1)")
            return {"device_id": _hex(head.device_id), "account_key": _hex(head.account_key),
                    "account_held": head.account_held,
                    "signed_prekey_rotated_at": head.signed_prekey_rotated_at,
                    "last_resort_prekey_rotated_at": head.last_resort_prekey_rotated_at,
                    "anchors": {a: getattr(head.anchors, a) for a in R.ANCHORS}}
        if kind == R.KIND_IDENTITY:
            if identity is None:
                return None
            if R.encode_identity(identity) != plain:
                bad("does not re-encode to itself")
            own = peers.get(head.account_key)
            entry = own.list.device(head.device_id) if own else None
            if entry is None:
                s.fail(at + ("public_identity",), "the own list does not list this device")
            elif entry.public_identity != identity.public_identity:
                s.fail(at + ("public_identity",), "the own list lists this device with another "
                                                   "identity (§10.3.1)")
            return {"ed25519_seed": _hex(identity.ed25519_seed),
                    "x25519_secret": _hex(identity.x25519_secret),
                    "public_identity": _hex(identity.public_identity)}
        if kind == R.KIND_ACCOUNT:
            if account_seed is None:
                return None
            if R.encode_account(account_seed) != plain:
                bad("does not re-encode to itself")
            account_key = R.account_key_of(account_seed)
            if account_key != head.account_key:
                s.fail(at + ("account_key",), "not the head's account key (§10.3 step 11)")
            return {"ed25519_seed": _hex(account_seed), "account_key": _hex(account_key)}
        if kind == R.KIND_PREKEYS:
            store = stored_prekeys.decode(plain)
            if stored_prekeys.encode(store) != plain:
                bad("not canonical (§4.6)")
            bundle = store.bundle(identity.public_identity) if identity else None
            if bundle is None:
                return None
            try:
                bundle.verify(expected_identity=identity.public_identity)
            except ProtocolError as e:
                s.fail(at + ("bundle",), f"the served bundle does not verify: {e.cls}")
            own = peers.get(head.account_key)
            held = own.bundles.get(head.device_id) if own else None
            if held is not None and held[1] != bundle.encode():
                s.fail(at + ("bundle",), "the own peer record holds another bundle of this device")
            return {"bundle": _hex(bundle.encode())}
        if kind == R.KIND_CONTACT_INDEX:
            if contacts is None:
                return None
            if R.encode_index(contacts) != plain:
                bad("does not re-encode to itself")
            if head.account_key in contacts:
                s.fail(at + ("contacts",), "lists the own account (§10.3.1)")
            return {"contacts": [{"account_key": _hex(c), "peer_generation": contacts[c]}
                                 for c in contacts]}
        if kind == R.KIND_PEER:
            account = name[1:33]
            peer = peers.get(account)
            if peer is None:
                return None
            if peer.encode() != plain:
                bad("does not re-encode to itself")
            return {"list_version": peer.list.version,
                    "devices": [_hex(d.device_id) for d in peer.list.devices],
                    "bundle_devices": [_hex(d) for d in sorted(peer.bundles)]}
        if kind == R.KIND_SESSIONS:
            account, device = name[1:33], name[33:65]
            peer = peers.get(account)
            if peer is None or peer.list.device(device) is None:
                bad("a session set for a device its peer's list does not hold active")
            if account == head.account_key and device == head.device_id:
                bad("a session set with this device itself")
            sset = R.decode_session_set(plain)
            if sset.encode() != plain:
                bad("does not re-encode to itself")
            for e in sset.entries:
                if e.created > sset.latest:
                    s.fail(at + ("latest",), "an entry created after `latest` (§8.6.2)")
            return {"latest": sset.latest, "active": sset.active, "archived": sset.archived,
                    "entries": [{"created": e.created, "stale": e.stale, "heal": e.heal}
                                for e in sset.entries]}
    except ProtocolError as e:
        bad(f"the content does not decode (§10.3.1): {e.cls} ({e.detail})")
        return None
    return None


# --------------------------------------------------------------------------
# record-open-error
# --------------------------------------------------------------------------

def error_input(ctx: VectorContext) -> bytes:
    has_prefix = "value_prefix" in ctx.vector or "value_zero_padded_to_length" in ctx.vector
    if has_prefix == ("value" in ctx.vector):
        raise VectorFormatError("give either 'value' or 'value_prefix' and "
                                "'value_zero_padded_to_length'")
    if not has_prefix:
        return ctx.hex("value")
    prefix = ctx.hex("value_prefix")
    n = ctx.get("value_zero_padded_to_length")
    if not isinstance(n, int) or n < len(prefix):
        raise VectorFormatError("'value_zero_padded_to_length' shorter than the prefix")
    return prefix + bytes(n - len(prefix))


def check_open_error(ctx: VectorContext) -> None:
    keys = R.derive_keys(ctx.hex("storage_key", 32))
    name = _name_of(ctx)
    owner = ctx.hex("owner", 32)
    value = error_input(ctx)
    ctx.expect_error("expected_error", lambda: R.open_record(keys, name, value, owner),
                     step="opening (§10.3 steps 1–8)")


def check_file(vectors: list, problem) -> None:
    """Every failure of the open order has a vector."""
    got = {v.get("expected_error") for v in vectors if v.get("kind") == "record-open-error"}
    for cls in OPEN_CLASSES:
        if cls not in got:
            problem(f"no record-open-error vector of class {cls}")
    for v in vectors:
        if (v.get("kind") == "record-open-error" and v.get("expected_error") == "WrongKey"
                and v.get("record_kind") != R.KIND_HEAD):
            problem(f"{v.get('name')!r}: WrongKey for a record other than the head (§10.3 "
                    f"step 7)")
    kinds = sorted(v.get("record_kind") for v in vectors if v.get("kind") == "record-seal")
    if kinds != sorted(R.KIND_NAMES):
        problem(f"record-seal vectors for kinds {kinds}, expected one for each of 1…7")


KINDS = {
    "record-keys": Kind(check_keys, inputs=("storage_key",),
                        outputs=("k_rec", "k_name", "check", "k_log")),
    "record-seal": Kind(
        check_seal,
        inputs=("storage_key", "owner", "record_kind", "account", "device", "generation",
                "rng_seed", "nonce", "plain"),
        outputs=("record_name", "key", "value"),
    ),
    "device-store": Kind(
        check_store,
        inputs=("storage_key", "life"),
        outputs=("generation", "records"),
        output_paths=store_output_paths,
    ),
    "record-open-error": Kind(
        check_open_error,
        inputs=("storage_key", "owner", "record_kind", "account", "device", "value",
                "value_prefix", "value_zero_padded_to_length"),
        outputs=("expected_error",),
        required=("storage_key", "owner", "record_kind", "account", "device",
                  "expected_error"),
    ),
}

EXPECTED_COUNTS = {
    "record-keys": 2,
    "record-seal": 7,
    "device-store": 1,
    "record-open-error": 41,
}


# --------------------------------------------------------------------------
# Self-test of the rules (`verify.py --self-test`): the published store
# with its inputs edited (records moved, dropped, added, relabelled, sealed
# at other generations than their anchors), and the §10.3.1 decoders'
# rejections no vector reaches.
# --------------------------------------------------------------------------

def self_test(vectors: list) -> list[tuple[str, str | None]]:
    from common import u8, u16
    from protocol.devices import u64

    results: list[tuple[str, str | None]] = []

    def check(case: str, ok: bool) -> None:
        results.append((case, None if ok else "does not hold"))

    def outcome(thunk) -> str:
        try:
            thunk()
            return "succeeded"
        except ProtocolError as e:
            return e.cls

    def expect(case: str, want: str, thunk) -> None:
        got = outcome(thunk)
        results.append((case, None if got == want else f"expected {want}, got {got}"))

    store_v = next(v for v in vectors if v.get("kind") == "device-store")
    sk = unhex(store_v["storage_key"], "storage_key", 32)
    keys = R.derive_keys(sk)
    recs = store_v["records"]

    def rejected(case: str, edit, why: str) -> None:
        """The store check must fail on the edited store vector, for the
        reason `why` (a part of the failure message)."""
        bad = copy.deepcopy(store_v)
        edit(bad)
        ctx = VectorContext("records.json", bad, [bad])
        try:
            check_store(ctx)
        except (ProtocolError, VectorFormatError) as e:
            ctx.failures.append(("<raised>", str(e)))
        found = any(why in msg for _, msg in ctx.failures)
        results.append((case, None if found else f"not rejected for {why!r}: "
                                                 f"{[m for _, m in ctx.failures][:2]}"))

    def index_of(kind: int, nth: int = 0) -> int:
        return [i for i, r in enumerate(recs) if r["record_kind"] == kind][nth]

    ctx = VectorContext("records.json", store_v, [store_v])
    check_store(ctx)
    check("the published store passes", not ctx.failures)

    sets = [i for i, r in enumerate(recs) if r["record_kind"] == R.KIND_SESSIONS]
    peers = [i for i, r in enumerate(recs) if r["record_kind"] == R.KIND_PEER]

    def swap_values(a: int, b: int):
        def edit(v):
            v["records"][a]["value"], v["records"][b]["value"] = (
                v["records"][b]["value"], v["records"][a]["value"])
        return edit

    rejected("two session sets swapped (moved under each other's names)",
             swap_values(sets[0], sets[1]), "does not open as the session set record")
    rejected("two peer records swapped", swap_values(peers[0], peers[1]),
             "does not open as the peer record")
    for kind in (R.KIND_IDENTITY, R.KIND_PREKEYS, R.KIND_CONTACT_INDEX, R.KIND_ACCOUNT):
        j = index_of(kind)
        rejected(f"the {R.KIND_NAMES[kind]} record dropped",
                 lambda v, j=j: v["records"].pop(j), f"no {R.KIND_NAMES[kind]} record")
    rejected("the own peer record dropped",
             lambda v: v["records"].pop(next(i for i in peers if recs[i]["record_name"][2:66]
                                              == recs[index_of(R.KIND_HEAD)]["fields"]
                                              ["account_key"])), "no peer record (the own account)")
    rejected("a contact's peer record dropped (the index names it)",
             lambda v: v["records"].pop(next(i for i in peers if recs[i]["record_name"][2:66]
                                              != recs[index_of(R.KIND_HEAD)]["fields"]
                                              ["account_key"])), "no peer record (a contact)")
    def add_unknown(v):
        v["records"].append(dict(v["records"][sets[-1]], key="07" + "ee" * 16))
        v["records"].sort(key=lambda r: r["key"])

    rejected("a record under a key no name gives", add_unknown, "no name the other records imply")

    head_i = index_of(R.KIND_HEAD)
    own_device = unhex(recs[head_i]["fields"]["device_id"], "device_id")

    def resealed(i: int, generation: int | None = None, plain: bytes | None = None,
                 name: bytes | None = None, owner: bytes | None = None):
        def edit(v):
            r = v["records"][i]
            nm = name or unhex(r["record_name"], "record_name")
            value = unhex(r["value"], "value")
            p = plain if plain is not None else unhex(r["plain"], "plain")
            gen = r["generation"] if generation is None else generation
            r["value"] = R.seal(keys, nm, gen, value[R.HEADER_LEN:R.FIXED_LEN], p,
                                own_device if owner is None else owner).hex()
            r["key"] = R.record_key(keys, nm).hex()
            r["record_name"], r["plain"], r["generation"] = nm.hex(), p.hex(), gen
            v["records"].sort(key=lambda x: x["key"])
        return edit

    g = store_v["generation"]
    rejected("a session set sealed at the head's generation + 1",
             resealed(sets[0], generation=g + 1), "newer than the head's generation")
    rejected("a session set of another device's store under the same storage key",
             resealed(sets[0], owner=bytes([0x77]) * 32),
             "does not open as the session set record: Corrupted/Authentication")
    head_plain = unhex(recs[head_i]["plain"], "plain")
    rejected("the head saying the account key is not held (an account record remains)",
             resealed(head_i, plain=head_plain[:66] + b"\x00" + head_plain[67:]),
             "an account record although")
    idx_i = index_of(R.KIND_CONTACT_INDEX)
    idx_plain = unhex(recs[idx_i]["plain"], "plain")
    own = unhex(recs[head_i]["fields"]["account_key"], "account_key")
    contacts = R.decode_index(idx_plain)
    rejected("the contact index listing the own account",
             resealed(idx_i, plain=R.encode_index({**contacts, own: 1})),
             "lists the own account")

    # The anchors (§10.4, §10.3 steps 9 and 9a): every anchored record is
    # at its anchor; one sealed older is RecordRolledBack, one sealed newer
    # (the head unmoved) is Inconsistent, and so is a head or an index whose
    # anchor moved instead.
    head = R.decode_head(head_plain)
    anchored = [(R.KIND_IDENTITY, index_of(R.KIND_IDENTITY), head.anchors.identity),
                (R.KIND_ACCOUNT, index_of(R.KIND_ACCOUNT), head.anchors.account),
                (R.KIND_PREKEYS, index_of(R.KIND_PREKEYS), head.anchors.prekeys),
                (R.KIND_CONTACT_INDEX, idx_i, head.anchors.contact_index)]
    anchored = [(R.KIND_NAMES[k], i, a) for k, i, a in anchored]
    for i in peers:
        acct = unhex(recs[i]["record_name"], "record_name")[1:33]
        if acct == own:
            anchored.append(("own peer", i, head.anchors.own_peer))
        else:
            anchored.append((f"peer (contact {list(contacts).index(acct) + 1} of the index)",
                             i, contacts[acct]))
    check("every anchored record of the published store is at its anchor",
          all(recs[i]["generation"] == a for _, i, a in anchored))
    for what, i, a in anchored:
        rejected(f"the {what} record sealed one generation older than its anchor",
                 resealed(i, generation=a - 1), "RecordRolledBack")
        if a < g:
            rejected(f"the {what} record sealed one generation newer than its anchor",
                     resealed(i, generation=a + 1), "newer than its anchor")
    for n, fld in enumerate(R.ANCHORS):
        at = 83 + 8 * n
        moved = head_plain[:at] + u64(getattr(head.anchors, fld) + 1) + head_plain[at + 8:]
        rejected(f"the head's {fld} anchor one generation newer than the record",
                 resealed(head_i, plain=moved), "RecordRolledBack")
    contact = next(iter(contacts))
    rejected("the index's generation of a contact's peer record one newer than the record",
             resealed(idx_i, plain=R.encode_index({**contacts, contact: contacts[contact] + 1})),
             "RecordRolledBack")
    rejected("the index's generation of a contact's peer record one older than the record",
             resealed(idx_i, plain=R.encode_index({**contacts, contact: contacts[contact] - 1})),
             "newer than its anchor")
    expect("check_generation: at the anchor", "succeeded",
           lambda: R.check_generation(R.KIND_PREKEYS, 5, 8, 5))
    expect("check_generation: older than the anchor", "RecordRolledBack",
           lambda: R.check_generation(R.KIND_PREKEYS, 4, 8, 5))
    expect("check_generation: newer than the anchor, the head unmoved", "Corrupted/Inconsistent",
           lambda: R.check_generation(R.KIND_PREKEYS, 6, 8, 5))
    expect("check_generation: newer than the anchor, the head moved: start over", "Restart",
           lambda: R.check_generation(R.KIND_PREKEYS, 6, 8, 5, head_moved=True))
    expect("check_generation: newer than the held head, the head moved: start over", "Restart",
           lambda: R.check_generation(R.KIND_SESSIONS, 9, 8, None, head_moved=True))
    expect("check_generation: newer than both is checked before older (step 9 before 9a)",
           "Corrupted/Inconsistent", lambda: R.check_generation(R.KIND_PREKEYS, 9, 8, 10))
    expect("check_generation: a session set older than the head is fine", "succeeded",
           lambda: R.check_generation(R.KIND_SESSIONS, 1, 8, None))
    acct_i = index_of(R.KIND_ACCOUNT)
    rejected("an account record with another seed (not the head's account key)",
             resealed(acct_i, plain=R.encode_account(bytes([0x42]) * 32)),
             "not the head's account key")
    id_i = index_of(R.KIND_IDENTITY)
    rejected("an identity record with another X25519 secret (not the own list's entry)",
             resealed(id_i, plain=unhex(recs[id_i]["plain"], "plain")[:34] + bytes([9]) * 32),
             "with another identity")
    set_name = unhex(recs[sets[0]]["record_name"], "record_name")
    rejected("a session set under a device its peer's list does not hold",
             resealed(sets[0], name=set_name[:33] + bytes([0x77]) * 32),
             "no name the other records imply")
    rejected("a session set with this device itself",
             resealed(sets[0], name=u8(R.KIND_SESSIONS) + own
                      + unhex(recs[head_i]["fields"]["device_id"], "device_id")),
             "no name the other records imply")

    # The open order on values the published vectors do not spell out.
    name = unhex(recs[acct_i]["record_name"], "record_name")
    value = unhex(recs[acct_i]["value"], "value")
    plain = unhex(recs[acct_i]["plain"], "plain")
    gen = recs[acct_i]["generation"]
    nonce = value[R.HEADER_LEN:R.FIXED_LEN]
    O = lambda v, k=keys, n=name, o=own_device: (lambda: R.open_record(k, n, v, o))  # noqa: E731
    expect("round trip", "succeeded", O(value))
    check("opening gives the generation and content",
          R.open_record(keys, name, value, own_device) == (gen, plain))
    empty = R.seal(keys, name, 5, nonce, b"", own_device)
    check("an empty content seals to exactly 67 bytes (§10.9)", len(empty) == R.OVERHEAD)
    expect("an empty content opens", "succeeded", O(empty))
    check("the head record of §10.3.1 is 190 bytes (§10.9)",
          len(unhex(recs[head_i]["value"], "value")) == 190)
    expect("a value exactly 4 MiB long is not TooLong", "Corrupted/Authentication",
           O(value + bytes(R.MAX_RECORD_LEN - len(value))))
    expect("version 0xff", "NewerVersion", O(b"\xff" + value[1:]))
    expect("version 0x02 with a wrong type and 3 bytes", "NewerVersion", O(b"\x02\x00\x00"))
    expect("version 0x00 with a wrong type and 3 bytes", "Corrupted/BadVersion",
           O(b"\x00\x00\x00"))
    expect("version 0x00 under another storage key", "Corrupted/BadVersion",
           O(b"\x00" + value[1:], k=R.derive_keys(bytes(32))))
    expect("kind 0x00", "Corrupted/WrongType", O(value[:2] + b"\x00" + value[3:]))
    expect("wrong type and wrong check, too short for a tag", "Corrupted/WrongType",
           O(value[:1] + b"\x11" + value[2:11] + bytes(16) + value[27:60]))
    expect("the right value under another kind's name", "Corrupted/WrongType",
           O(value, n=R.record_name(R.KIND_PREKEYS)))
    expect("a check of zeros (not the head)", "Corrupted/Authentication",
           O(value[:11] + bytes(16) + value[27:]))
    head_value = unhex(recs[head_i]["value"], "value")
    head_name = R.record_name(R.KIND_HEAD)
    expect("the head with a check of zeros", "WrongKey",
           O(head_value[:11] + bytes(16) + head_value[27:], n=head_name))
    expect("the head under another storage key", "WrongKey",
           O(head_value, k=R.derive_keys(bytes(32)), n=head_name))
    expect("the head opens for any owner (its AD has none)", "succeeded",
           O(head_value, n=head_name, o=bytes([0x77]) * 32))
    expect("the AD binds the owner: the account record for another owner",
           "Corrupted/Authentication", O(value, o=bytes([0x77]) * 32))
    expect("the AD binds the owner: the account record for the owner of zeros",
           "Corrupted/Authentication", O(value, o=bytes(32)))
    expect("the owner follows the name in the AD", "succeeded",
           O(value[:R.FIXED_LEN] + xchacha20poly1305_seal(
               keys.k_rec, nonce, plain,
               R.LABEL_STORED_RECORD + value[:R.HEADER_LEN] + name + own_device)))
    expect("the AD binds the name: sealed under the identity name, kind byte kept",
           "Corrupted/Authentication",
           O(R.seal(keys, R.record_name(R.KIND_IDENTITY), gen, nonce, plain, own_device)[:2]
             + value[2:3]
             + R.seal(keys, R.record_name(R.KIND_IDENTITY), gen, nonce, plain, own_device)[3:]))
    expect("the AD binds the label: sealed without it", "Corrupted/Authentication",
           O(value[:R.FIXED_LEN] + xchacha20poly1305_seal(keys.k_rec, nonce, plain,
                                                            value[:R.HEADER_LEN] + name
                                                            + own_device)))
    check("the head's key does not depend on the storage key",
          R.record_key(R.derive_keys(bytes(32)), R.record_name(R.KIND_HEAD))
          == R.record_key(keys, R.record_name(R.KIND_HEAD)) == b"\x01" + bytes(16))
    check("other keys do",
          R.record_key(R.derive_keys(bytes(32)), name) != R.record_key(keys, name))
    check("a key is the kind and 16 bytes of HMAC", len(R.record_key(keys, name)) == R.KEY_LEN
          and R.record_key(keys, name)[0] == R.KIND_ACCOUNT)
    check("K_log is the last 32 of the 112 HKDF bytes, distinct from the other keys",
          len(keys.k_log) == 32 and keys.k_log not in (keys.k_rec, keys.k_name))

    # §10.3.1 decoders.
    dev, acct = bytes([1]) * 32, bytes([2]) * 32
    good_head = R.Head(dev, acct, True, 7, 8, R.Anchors(1, 2, 3, 4, 5)).encode()
    expect("head: round trip", "succeeded", lambda: R.decode_head(good_head))
    check("head: 123 bytes", len(good_head) == R.HEAD_LEN == 123)
    check("head: the anchors in their order",
          R.decode_head(good_head).anchors == R.Anchors(1, 2, 3, 4, 5)
          and good_head[83:] == b"".join(u64(n) for n in (1, 2, 3, 4, 5)))
    expect("head: without its anchors (the 83 bytes of the old format)", "Truncated",
           lambda: R.decode_head(good_head[:83]))
    expect("head: flag 0x02", "InvalidFlags",
           lambda: R.decode_head(good_head[:66] + b"\x03" + good_head[67:]))
    expect("head: a trailing byte", "TrailingBytes", lambda: R.decode_head(good_head + b"\x00"))
    expect("head: one byte short", "Truncated", lambda: R.decode_head(good_head[:-1]))
    expect("head: the identity's type", "UnexpectedType",
           lambda: R.decode_head(good_head[:1] + b"\x1b" + good_head[2:]))
    expect("identity: a trailing byte", "TrailingBytes",
           lambda: R.decode_identity(unhex(recs[id_i]["plain"], "plain") + b"\x00"))
    expect("account: 31 bytes", "Truncated",
           lambda: R.decode_account(R.encode_account(bytes(32))[:-1]))
    k1, k2 = bytes([1]) * 32, bytes([2]) * 32
    def raw_index(ks: list) -> bytes:
        return u8(1) + u8(R.TYPE_CONTACT_INDEX) + u16(len(ks)) + b"".join(k + u64(7) for k in ks)

    expect("index: round trip", "succeeded", lambda: R.decode_index(raw_index([k1, k2])))
    check("index: each contact with its peer record's generation",
          R.decode_index(raw_index([k1, k2])) == {k1: 7, k2: 7}
          and len(raw_index([k1, k2])) == 4 + 2 * 40)
    expect("index: an entry without its generation", "Truncated",
           lambda: R.decode_index(u8(1) + u8(R.TYPE_CONTACT_INDEX) + u16(1) + k1))

    expect("index: descending", "NotCanonical", lambda: R.decode_index(raw_index([k2, k1])))
    expect("index: repeated", "NotCanonical", lambda: R.decode_index(raw_index([k1, k1])))
    expect("index: empty", "succeeded", lambda: R.decode_index(raw_index([])))
    expect("index: count 4097", "TooMany",
           lambda: R.decode_index(u8(1) + u8(R.TYPE_CONTACT_INDEX) + u16(4097)))
    expect("index: count beyond the input", "Truncated",
           lambda: R.decode_index(u8(1) + u8(R.TYPE_CONTACT_INDEX) + u16(2) + k1 + u64(1)))
    set_plain = unhex(recs[sets[0]]["plain"], "plain")
    expect("session set: round trip", "succeeded", lambda: R.decode_session_set(set_plain))
    expect("session set: active present 2", "InvalidFlags",
           lambda: R.decode_session_set(set_plain[:10] + b"\x02" + set_plain[11:]))
    expect("session set: 4 archived", "TooMany",
           lambda: R.decode_session_set(set_plain[:11] + b"\x04" + set_plain[12:]))
    expect("session set: entry flags 0x04", "InvalidFlags",
           lambda: R.decode_session_set(set_plain[:20] + b"\x04" + set_plain[21:]))
    expect("session set: the active session stale", "Inconsistent",
           lambda: R.decode_session_set(set_plain[:20] + b"\x01" + set_plain[21:]))
    expect("session set: a trailing byte", "TrailingBytes",
           lambda: R.decode_session_set(set_plain + b"\x00"))
    expect("session set: no session", "succeeded",
           lambda: R.decode_session_set(u8(1) + u8(R.TYPE_SESSION_SET) + u64(3) + b"\x00\x00"))
    peer_i = peers[0]
    peer_plain = unhex(recs[peer_i]["plain"], "plain")
    peer_acct = unhex(recs[peer_i]["record_name"], "record_name")[1:33]
    expect("peer: round trip", "succeeded", lambda: R.decode_peer(peer_plain, peer_acct))
    expect("peer: under another account's name", "Inconsistent",
           lambda: R.decode_peer(peer_plain, bytes([3]) * 32))
    expect("peer: a trailing byte", "TrailingBytes",
           lambda: R.decode_peer(peer_plain + b"\x00", peer_acct))
    with_bundle = [i for i in peers
                   if R.decode_peer(unhex(recs[i]["plain"], "plain"),
                                    unhex(recs[i]["record_name"], "record_name")[1:33]).bundles]
    if with_bundle:
        bp = unhex(recs[with_bundle[0]]["plain"], "plain")
        ba = unhex(recs[with_bundle[0]]["record_name"], "record_name")[1:33]
        peer = R.decode_peer(bp, ba)
        did = next(iter(peer.bundles))
        at = bp.index(did, 6 + len(peer.list_bytes))
        expect("peer: a bundle for a device the list does not hold", "Inconsistent",
               lambda: R.decode_peer(bp[:at] + bytes([0x77]) * 32 + bp[at + 32:], ba))
        expect("peer: 17 bundles", "TooMany",
               lambda: R.decode_peer(bp[:6 + len(peer.list_bytes)] + b"\x11"
                                     + bp[7 + len(peer.list_bytes):], ba))

    # The seal vectors' nonces: a fresh stream per vector.
    seals = [v for v in vectors if v.get("kind") == "record-seal"]
    check("every seal vector has its own nonce", len({v["nonce"] for v in seals}) == len(seals))
    return results

