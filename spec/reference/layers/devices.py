"""Layer `devices`: accounts and Session IDs, signed device lists and their
update verdicts, revocation, and count-hiding prekey records (spec
chapter 8)."""

from __future__ import annotations

from common import Kind, ProtocolError, VectorContext, VectorFormatError, unhex
from protocol.devices import (
    Device,
    DeviceList,
    Extension,
    Tombstone,
    account_public,
    account_seed,
    accept_first,
    check_fork_evidence,
    decode_list,
    list_sig_input,
    session_id_of,
    signature_ok,
    update,
)
from protocol.devices_prekey_record import build_record, draw_sizes, open_record
from protocol.prekeys import PUBLIC_IDENTITY_LEN
from protocol.session_v2_identity import parse_session_id
from protocol.session_v2_primitives import ChaChaRng
from primitives import ed25519_verify_strict

LAYER = "devices"

# §8.2.4 results that are not errors.
RESULTS = ("Advanced", "Unchanged")


# --------------------------------------------------------------------------
# helpers: JSON <-> lists
# --------------------------------------------------------------------------

def _int(v, what: str, bits: int) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < 2**bits:
        raise VectorFormatError(f"{what}: not a u{bits}")
    return v


def _obj(v, what: str, keys: set) -> dict:
    if not isinstance(v, dict) or set(v) != keys:
        raise VectorFormatError(f"{what}: expected an object with fields {sorted(keys)}")
    return v


def _list(v, what: str) -> list:
    if not isinstance(v, list):
        raise VectorFormatError(f"{what}: expected a list")
    return v


def parse_extensions(v, what: str) -> list[Extension]:
    return [Extension(_int(_obj(e, f"{what}[{i}]", {"type", "data"})["type"], f"{what}[{i}].type", 16),
                      unhex(e["data"], f"{what}[{i}].data"))
            for i, e in enumerate(_list(v, what))]


DEVICE_FIELDS = {"id", "public_identity", "platform", "client_version", "added_at",
                 "updated_at", "description", "extensions"}


def parse_device(v, what: str) -> Device:
    _obj(v, what, DEVICE_FIELDS)
    cv = _list(v["client_version"], f"{what}.client_version")
    if len(cv) != 3:
        raise VectorFormatError(f"{what}.client_version: expected [major, minor, patch]")
    if not isinstance(v["description"], str):
        raise VectorFormatError(f"{what}.description: expected a string")
    return Device(
        unhex(v["id"], f"{what}.id", 32),
        unhex(v["public_identity"], f"{what}.public_identity", PUBLIC_IDENTITY_LEN),
        _int(v["platform"], f"{what}.platform", 8),
        tuple(_int(x, f"{what}.client_version", 16) for x in cv),
        _int(v["added_at"], f"{what}.added_at", 64),
        _int(v["updated_at"], f"{what}.updated_at", 64),
        v["description"],
        parse_extensions(v["extensions"], f"{what}.extensions"),
    )


def list_from_fields(v: dict) -> DeviceList:
    """The unsigned list of a `device-list` vector's input fields."""
    return DeviceList(
        unhex(v.get("account_ed25519_pk"), "account_ed25519_pk", 32),
        _int(v.get("version"), "version", 64),
        unhex(v.get("previous_hash"), "previous_hash", 32),
        [parse_device(d, f"devices[{i}]") for i, d in enumerate(_list(v.get("devices"), "devices"))],
        [Tombstone(unhex(_obj(t, f"tombstones[{i}]", {"id", "removed_at"})["id"], f"tombstones[{i}].id", 32),
                   _int(t["removed_at"], f"tombstones[{i}].removed_at", 64))
         for i, t in enumerate(_list(v.get("tombstones"), "tombstones"))],
        parse_extensions(v.get("extensions"), "extensions"),
    )


def fields_of(lst: DeviceList) -> dict:
    """The vector form of a decoded list (inverse of `list_from_fields`)."""
    def exts(es):
        return [{"type": e.ext_type, "data": e.data.hex()} for e in es]
    return {
        "account_ed25519_pk": lst.account_pub.hex(),
        "version": lst.version,
        "previous_hash": lst.previous_hash.hex(),
        "devices": [{"id": d.device_id.hex(), "public_identity": d.public_identity.hex(),
                     "platform": d.platform, "client_version": list(d.client_version),
                     "added_at": d.added_at, "updated_at": d.updated_at,
                     "description": d.description, "extensions": exts(d.extensions)}
                    for d in lst.devices],
        "tombstones": [{"id": t.device_id.hex(), "removed_at": t.removed_at} for t in lst.tombstones],
        "extensions": exts(lst.extensions),
    }


def account_seed_for(ctx: VectorContext, account_pub: bytes) -> bytes:
    """The signing seed of an account key: the `account` vector of the file
    whose recovery seed gives that key (§8.1)."""
    for v in ctx.all_vectors:
        if isinstance(v, dict) and v.get("kind") == "account":
            s = unhex(v.get("recovery_seed"), "account.recovery_seed", 16)
            if account_public(s) == account_pub:
                return account_seed(s)
    raise VectorFormatError(f"no account vector has the key {account_pub.hex()}")


def named_vector(ctx: VectorContext, fld: str, kind: str) -> dict:
    target = ctx.get(fld)
    matches = [v for v in ctx.all_vectors
               if isinstance(v, dict) and v.get("name") == target and v.get("kind") == kind]
    if len(matches) != 1:
        raise VectorFormatError(f"'{fld}': {len(matches)} {kind} vectors named {target!r}")
    return matches[0]


def signed_list(ctx: VectorContext, v: dict) -> DeviceList:
    """A `device-list` vector's list rebuilt from its fields and signed with
    the account key (Ed25519 is deterministic)."""
    lst = list_from_fields(v)
    lst.sign(account_seed_for(ctx, lst.account_pub))
    return lst


# --------------------------------------------------------------------------
# kind `account`
# --------------------------------------------------------------------------

def check_account(ctx: VectorContext) -> None:
    s = ctx.hex("recovery_seed", 16)
    pk = account_public(s)
    ctx.expect("ed25519_pk", pk)
    sid = session_id_of(pk)
    ctx.expect_value("session_id", sid.hex())
    try:
        if parse_session_id(ctx.get("session_id")) != sid:
            ctx.fail("session_id", "the published Session ID parses to another value")
    except (ProtocolError, TypeError) as e:
        ctx.fail("session_id", f"the published Session ID is rejected: {e}")


# --------------------------------------------------------------------------
# kind `device-list`
# --------------------------------------------------------------------------

def check_device_list(ctx: VectorContext) -> None:
    lst = signed_list(ctx, ctx.vector)
    body = lst.body()
    ctx.expect("list_hash", lst.list_hash())
    ctx.expect("signature", lst.signature)
    ctx.expect("encoding", lst.encode())

    # The published signature verifies strictly over the published hash.
    try:
        ed25519_verify_strict(lst.account_pub, list_sig_input(ctx.hex("list_hash", 32)),
                              ctx.hex("signature", 64))
    except ProtocolError as e:
        ctx.fail("signature", f"the published signature does not verify: {e.cls}")

    # The published encoding decodes to the fields, is canonical, and its
    # body hashes to `list_hash`, its signature is `signature`.
    published = ctx.hex("encoding")
    try:
        dec = decode_list(published)
    except ProtocolError as e:
        ctx.fail("encoding", f"the published encoding is rejected: {e.cls} ({e.detail})")
        return
    want = {k: ctx.vector[k] for k in fields_of(dec)}
    if fields_of(dec) != want:
        ctx.fail("encoding", "the published encoding decodes to other fields")
    if dec.encode() != published:
        ctx.fail("encoding", "the published encoding is not canonical")
    if dec.list_hash() != lst.list_hash() or published[:-64] != body:
        ctx.fail("encoding", "the published body differs from the encoding of the fields")
    if not signature_ok(dec):
        ctx.fail("encoding", "the signature inside the published encoding does not verify")


# --------------------------------------------------------------------------
# kind `device-list-update`
# --------------------------------------------------------------------------

def check_update(ctx: VectorContext) -> None:
    try:
        sid = parse_session_id(ctx.get("session_id"))
    except ProtocolError as e:
        raise VectorFormatError(f"'session_id' does not parse: {e.cls}") from None
    held_v = named_vector(ctx, "held", "device-list")
    held = signed_list(ctx, held_v)
    # The held list is a first list for the Session ID (§8.2.4).
    try:
        accept_first(decode_list(held.encode()), expected_session_id=sid)
    except ProtocolError as e:
        ctx.fail("held", f"the held list is not accepted as a first list: {e.cls} ({e.detail})")
        return
    offered = ctx.hex("offered")
    inter = [ctx.hex_item("intermediates", i) for i in range(len(_list(ctx.get("intermediates"),
                                                                        "intermediates")))]
    try:
        verdict, new = update(held, offered, inter)
    except ProtocolError as e:
        ctx.expect_value("expected", e.cls, side=f"update ({e.detail})")
        if e.cls == "Fork":
            ev = getattr(e, "evidence", None)
            if ev != (held.encode(), offered):
                ctx.fail("expected", "the fork evidence is not (held, offered)")
            else:
                try:
                    check_fork_evidence(*ev)
                except ProtocolError as fe:
                    ctx.fail("expected", f"the fork evidence does not re-check: {fe.detail}")
        return
    ctx.expect_value("expected", verdict, side="update")
    if verdict == "Advanced" and new.encode() != offered:
        ctx.fail("expected", "Advanced, but the new held list is not the offered list")
    if verdict == "Unchanged" and new is not held:
        ctx.fail("expected", "Unchanged, but the held list changed")


# --------------------------------------------------------------------------
# kind `prekey-record`
# --------------------------------------------------------------------------

def check_prekey_record(ctx: VectorContext) -> None:
    lst = signed_list(ctx, named_vector(ctx, "list", "device-list"))
    bundles = []
    for i, b in enumerate(_list(ctx.get("bundles"), "bundles")):
        _obj(b, f"bundles[{i}]", {"device_id", "bundle"})
        bundles.append((unhex(b["device_id"], f"bundles[{i}].device_id", 32),
                        unhex(b["bundle"], f"bundles[{i}].bundle")))

    # §1.5 / §8.4.2: the draws are the ChaCha20 stream of rng_seed, one
    # draw per nonce then per dummy slot, each of whole 32-bit words.
    sizes = draw_sizes(len(lst.devices))
    draws_all = ctx.hex("draws")
    if len(draws_all) != sum(sizes):
        raise VectorFormatError(f"'draws': {len(draws_all)} bytes, expected {sum(sizes)} "
                                f"(draw sizes {sizes})")
    draws, pos = [], 0
    for n in sizes:
        draws.append(draws_all[pos:pos + n])
        pos += n
    rng = ChaChaRng(ctx.hex("rng_seed", 32))
    if [rng.bytes(n) for n in sizes] != draws:
        ctx.fail("draws", "the draws are not the ChaCha20 stream of rng_seed in §8.4.2 order "
                          "(whole 32-bit words per draw)")

    ctx.expect("record", build_record(lst, bundles, draws))

    # Opening the published record with the list finds every device's
    # bundle and no other.
    try:
        found = open_record(lst, ctx.hex("record"))
    except ProtocolError as e:
        ctx.fail("record", f"opening the published record failed: {e.cls} ({e.detail})")
        return
    want = {did: b for did, b in bundles}
    got = {did: b.encode() for did, b in found.items()}
    if got != want:
        ctx.fail("record", f"opening finds bundles of {sorted(d.hex()[:8] for d in got)}, "
                           f"expected {sorted(d.hex()[:8] for d in want)}")


KINDS = {
    "account": Kind(
        check_account,
        inputs=("recovery_seed",),
        outputs=("ed25519_pk", "session_id"),
    ),
    "device-list": Kind(
        check_device_list,
        inputs=("account_ed25519_pk", "version", "previous_hash", "devices", "tombstones",
                "extensions"),
        outputs=("list_hash", "signature", "encoding"),
    ),
    "device-list-update": Kind(
        check_update,
        inputs=("session_id", "held", "offered", "intermediates"),
        outputs=("expected",),
    ),
    "prekey-record": Kind(
        check_prekey_record,
        inputs=("list", "rng_seed", "bundles", "draws"),
        outputs=("record",),
    ),
}

EXPECTED_COUNTS = {
    "account": 1,
    "device-list": 5,
    "device-list-update": 11,
    "prekey-record": 1,
}


# --------------------------------------------------------------------------
# Self-test of the rules (`verify.py --self-test`): the verdicts and error
# classes of §8.2.2, §8.2.4 and §8.4 that the published vectors do not reach
# are produced here from lists built and signed in memory from the file's
# own lists, so a checker that echoed the vectors would fail.
# --------------------------------------------------------------------------

def self_test(vectors: list) -> list[tuple[str, str | None]]:
    """(case, problem or None) for every in-memory rule case."""
    import copy
    import dataclasses

    from primitives import ed25519_public, xchacha20poly1305_open, xchacha20poly1305_seal
    from protocol.devices import check_step, cut_description
    from protocol.devices_prekey_record import (
        NONCE_LEN, SLOT_AD, SLOT_LEN, decode_record, encode_record, slot_key)

    ctx = VectorContext("<self-test>", {}, vectors)
    lists = [signed_list(ctx, v) for v in vectors if v.get("kind") == "device-list"]
    v1 = next(l for l in lists if l.version == 1)
    v2 = next(l for l in lists if l.version == 2)
    v3 = next(l for l in lists if l.version == 3 and l.tombstones)      # revocation
    fork3 = next(l for l in lists if l.version == 3 and not l.tombstones)
    seed = account_seed_for(ctx, v1.account_pub)
    other_seed = bytes(range(32))
    results: list[tuple[str, str | None]] = []

    def next_of(p: DeviceList, edit=None, key: bytes = seed) -> DeviceList:
        n = copy.deepcopy(p)
        n.version, n.previous_hash = p.version + 1, p.list_hash()
        n.account_pub = ed25519_public(key)
        if edit:
            edit(n)
        n.sign(key)
        return n

    def with_bad_signature(lst: DeviceList) -> DeviceList:
        return dataclasses.replace(lst, signature=bytes([lst.signature[0] ^ 1]) + lst.signature[1:])

    def expect(case: str, want: str, thunk) -> None:
        """`thunk` returns a verdict (or None: "succeeded") or raises."""
        try:
            got = thunk() or "succeeded"
        except ProtocolError as e:
            got = e.cls
        results.append((case, None if got == want else f"expected {want}, got {got}"))

    def upd(held: DeviceList, offered: DeviceList, inter=()) -> str:
        return update(held, offered.encode(), [i.encode() for i in inter])[0]

    # §8.2.4 step rules, each from v3 (one tombstone) to an edited v4.
    removed = next(d for d in v2.devices if d.device_id == v3.tombstones[0].device_id)

    def drop_tombstone(n):
        n.tombstones = []

    def resurrect(n):
        n.tombstones = []
        n.devices = sorted(n.devices + [copy.deepcopy(removed)], key=lambda d: d.device_id)

    def vanish(n):
        n.devices = n.devices[1:]

    def revoke(n):
        n.tombstones = sorted(n.tombstones + [Tombstone(n.devices[0].device_id, 1)],
                              key=lambda t: t.device_id)
        n.devices = n.devices[1:]

    def new_identity(n):
        n.devices[0].public_identity = v1.devices[0].public_identity

    def new_added_at(n):
        n.devices[0].added_at += 1

    def new_updated_at(n):
        n.devices[0].updated_at += 1
        n.devices[0].description = "renamed"

    def bad_chain(n):
        n.previous_hash = v1.list_hash()

    for case, edit, want in (
            ("step: tombstone dropped", drop_tombstone, "TombstoneDropped"),
            ("step: tombstoned id live again", resurrect, "TombstoneResurrection"),
            ("step: live device vanished", vanish, "DeviceVanished"),
            ("step: live device revoked", revoke, "Advanced"),
            ("step: public identity changed", new_identity, "IdentityChanged"),
            ("step: added_at changed", new_added_at, "IdentityChanged"),
            ("step: updated_at and description changed", new_updated_at, "Advanced"),
            ("step: previous_hash of another version", bad_chain, "ChainMismatch"),
            ("update: optional unknown list extension",
             lambda n: setattr(n, "extensions", [Extension(0x0001, b"x")]), "Advanced"),
            ("update: unknown mandatory extension in an entry",
             lambda n: setattr(n.devices[1], "extensions", [Extension(0x8002, b"")]),
             "UnknownMandatoryExtension")):
        expect(case, want, lambda e=edit: upd(v3, next_of(v3, e)))
    expect("step rules: account key changed", "WrongAccount",
           lambda: check_step(v3, next_of(v3, key=other_seed)))
    expect("update: list of another account", "WrongAccount",
           lambda: upd(v3, next_of(v3, key=other_seed)))
    expect("update: same version, bad signature", "BadSignature",
           lambda: upd(v3, with_bad_signature(fork3)))
    expect("update: older version, bad signature", "BadSignature",
           lambda: upd(v3, with_bad_signature(v1)))
    expect("update: newer version, bad signature checked before the gap", "BadSignature",
           lambda: upd(v1, with_bad_signature(v3)))

    v4 = next_of(v3)
    v5 = next_of(v4)
    expect("update: two intermediates", "Advanced", lambda: upd(v2, v5, [v3, v4]))
    expect("update: old, repeated and later intermediates skipped", "Advanced",
           lambda: upd(v3, v4, [v1, v3, v4, v5]))
    expect("update: intermediates with old and repeated versions", "Advanced",
           lambda: upd(v3, v5, [v1, v3, v4, v4]))
    expect("update: intermediate forks the held version", "Fork",
           lambda: upd(v3, v5, [fork3, v4]))
    expect("update: intermediate of the held version with a bad signature is skipped", "Advanced",
           lambda: upd(v3, v5, [with_bad_signature(fork3), v4]))
    expect("update: intermediate with a bad signature", "BadSignature",
           lambda: upd(v2, v5, [v3, with_bad_signature(v4)]))
    expect("update: intermediates stop at a gap", "Gap", lambda: upd(v1, v5, [v2, v4]))
    expect("update: intermediate breaks a step rule", "TombstoneDropped",
           lambda: upd(v3, next_of(next_of(v3, drop_tombstone)), [next_of(v3, drop_tombstone)]))
    expect("update: offered does not follow the last intermediate", "ChainMismatch",
           lambda: upd(v2, next_of(fork3), [v3]))
    expect("first list: another Session ID", "WrongAccount",
           lambda: accept_first(next_of(v3, key=other_seed),
                                expected_session_id=session_id_of(v1.account_pub)) and None)
    expect("first list: by account key", "succeeded",
           lambda: accept_first(v1, expected_account_pub=v1.account_pub) and None)
    expect("first list: bad signature", "BadSignature",
           lambda: accept_first(with_bad_signature(v1),
                                expected_session_id=session_id_of(v1.account_pub)) and None)
    expect("fork evidence: the same list twice", "NotAFork",
           lambda: check_fork_evidence(v3.encode(), v3.encode()))
    expect("fork evidence: two versions", "NotAFork",
           lambda: check_fork_evidence(v2.encode(), v3.encode()))

    # §8.2.2 decoder classes, on edited encodings of the file's lists.
    b1, s1 = v1.body(), v1.signature
    ent0 = 75                                   # first device entry
    dlen_at = ent0 + 32 + 64 + 1 + 6 + 8 + 8    # its description_len

    def entry_len(d: Device) -> int:
        return 32 + 64 + 1 + 6 + 16 + 1 + len(d.description.encode()) + 1

    b2 = v2.body()
    e0, e1 = entry_len(v2.devices[0]), entry_len(v2.devices[1])
    swapped = b2[:ent0] + b2[ent0 + e0:ent0 + e0 + e1] + b2[ent0:ent0 + e0] + b2[ent0 + e0 + e1:]
    b3 = v3.body()
    both = b3[:-41] + v3.devices[0].device_id + b3[-9:]   # tombstone id := a live id
    for case, data, want in (
            ("decode: version 0", b1[:34] + bytes(8) + b1[42:] + s1, "InvalidValue"),
            ("decode: version 1 with a previous hash", b2[:34] + b1[34:42] + b2[42:] + s1,
             "InvalidValue"),
            ("decode: version 2 with a zero previous hash", b1[:34] + b2[34:42] + b1[42:] + s1,
             "InvalidValue"),
            ("decode: 17 devices", b1[:74] + bytes([17]) + b1[75:] + s1, "TooMany"),
            ("decode: description of 65 bytes", b1[:dlen_at] + bytes([65]) + b1[dlen_at + 1:] + s1,
             "LengthExceeded"),
            ("decode: description not UTF-8", b1[:dlen_at + 1] + b"\xff" + b1[dlen_at + 2:] + s1,
             "InvalidUtf8"),
            ("decode: device ids not ascending", swapped + v2.signature, "NotCanonical"),
            ("decode: id both live and a tombstone", both + v3.signature, "InvalidValue"),
            ("decode: type of a bundle", b1[:1] + b"\x01" + b1[2:] + s1, "UnexpectedType"),
            ("decode: wire version 2", b"\x02" + b1[1:] + s1, "UnsupportedVersion"),
            ("decode: trailing byte", v1.encode() + b"\x00", "TrailingBytes"),
            ("decode: tombstones beyond the input", b1[:-3] + b"\x03\xff\x00" + s1, "Truncated"),
            ("decode: 1025 tombstones", b1[:-3] + b"\x04\x01\x00" + s1, "TooMany"),
            ("decode: 5 list extensions", b1[:-1] + b"\x05" + s1, "TooMany"),
            ("decode: extension of 257 bytes", b1[:-1] + b"\x01\x00\x01\x01\x01" + s1,
             "LengthExceeded"),
            ("decode: extension types repeated",
             b1[:-1] + b"\x02\x00\x01\x00\x00\x00\x01\x00\x00" + s1, "NotCanonical"),
            ("decode: small-order account key", b1[:2] + (1).to_bytes(32, "little") + b1[34:] + s1,
             "InvalidEd25519Key"),
            ("decode: too long", b1 + bytes(76801 - len(b1)), "TooLong")):
        expect(case, want, lambda d=data: decode_list(d) and None)

    # §8.2.1 descriptions are cut on a character boundary.
    for text, want in (("é" * 40, "é" * 32), ("a" + "é" * 40, "a" + "é" * 31), ("a" * 64, "a" * 64)):
        got = cut_description(text)
        results.append((f"description cut ({len(text.encode())} bytes)",
                        None if got == want.encode() else f"got {len(got)} bytes"))

    # §8.4 record decoding and opening, from the file's record.
    rec_v = next(v for v in vectors if v.get("kind") == "prekey-record")
    slots = decode_record(unhex(rec_v["record"], "record"))
    keys = {d.device_id: slot_key(v3.account_pub, d.device_id, d.public_identity) for d in v3.devices}

    def opens(key: bytes, s: bytes) -> bool:
        return xchacha20poly1305_open(key, s[:NONCE_LEN], s[NONCE_LEN:], SLOT_AD) is not None

    real = {did: next(s for s in slots if opens(k, s)) for did, k in keys.items()}
    dummies = [s for s in slots if s not in real.values()]
    did0 = v3.devices[0].device_id
    bundle0 = next(unhex(b["bundle"], "bundle") for b in rec_v["bundles"]
                   if unhex(b["device_id"], "device_id") == did0)
    nonce = bytes(NONCE_LEN)
    again = nonce + xchacha20poly1305_seal(keys[did0], nonce, bundle0, SLOT_AD)
    forged = nonce + xchacha20poly1305_seal(keys[did0], nonce, bundle0[:-1] + b"\x01", SLOT_AD)
    others = [s for did, s in real.items() if did != did0]
    for case, rec, want in (
            ("record: 5 slots", b"\x01\x06\x05" + b"".join(slots), "InvalidValue"),
            ("record: 0 slots", b"\x01\x06\x00", "InvalidValue"),
            ("record: 20 slots", b"\x01\x06\x14" + b"".join(slots), "TooMany"),
            ("record: slots out of order", encode_record([slots[1], slots[0]] + slots[2:]),
             "NotCanonical"),
            ("record: a slot repeated", encode_record([slots[0]] + slots[:3]), "NotCanonical"),
            ("record: last slot cut", encode_record(slots)[:-1], "Truncated"),
            ("record: two slots for one device",
             encode_record(sorted([again] + list(real.values()) + dummies[1:])), "DuplicateSlot"),
            ("record: a slot that is no valid bundle",
             encode_record(sorted([forged] + others + dummies)), "InvalidBundle")):
        expect(case, want, lambda r=rec: open_record(v3, r) and "opened")
    found = open_record(v3, encode_record(sorted(dummies + others + [bytes([0xFF]) * SLOT_LEN])))
    results.append(("record: a device is missing",
                    None if set(found) == {did for did in real if did != did0} else "wrong devices"))
    return results
