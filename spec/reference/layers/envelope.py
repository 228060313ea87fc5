"""Layer `envelope`: fan-out envelopes with their slot keys, padding, dummy
slots and ordering, and their decoding and opening errors (spec §8.7)."""

from __future__ import annotations

from common import (Kind, ProtocolError, VectorContext, VectorFormatError, first_difference,
                    short, unhex)
from primitives import ed25519_public, x25519, x25519_public
from protocol.envelope import (HEADER_LEN, HINT_LEN, decode, draw_sizes, open_envelope, seal,
                               slot_secrets)
from protocol.session_v2_primitives import ChaChaRng

LAYER = "envelope"

DEVICE_FIELDS = ("ed25519_seed", "x25519_secret", "public_identity")
RECIPIENT_INPUTS = ("device", "payload")
RECIPIENT_OUTPUTS = ("shared_secret", "hint", "slot_key")


def expect_at(ctx: VectorContext, path: str, want, computed: bytes) -> None:
    """Compare a recomputed byte string with a nested hex field."""
    try:
        expected = unhex(want, path)
    except VectorFormatError as e:
        ctx.fail(path, str(e))
        return
    if expected != computed:
        ctx.fail(path, f"MISMATCH: expected {short(expected)}, computed {short(computed)}; "
                       f"{first_difference(expected, computed)}")


def derive_devices(rng_seed: bytes, n: int) -> list[tuple[bytes, bytes, bytes]]:
    """§4.1: per device, the Ed25519 seed (32) then the X25519 secret (32)
    drawn from the §1.5 RNG; returns (seed, secret, public identity)."""
    rng = ChaChaRng(rng_seed)
    out = []
    for _ in range(n):
        seed, secret = rng.bytes(32), rng.bytes(32)
        out.append((seed, secret, ed25519_public(seed) + x25519_public(secret)))
    return out


def file_devices(ctx: VectorContext) -> list[tuple[bytes, bytes, bytes]]:
    """The devices of the file's `devices` vector, recomputed from its seed."""
    v = [x for x in ctx.all_vectors if isinstance(x, dict) and x.get("kind") == "devices"]
    if len(v) != 1 or not isinstance(v[0].get("devices"), list):
        raise VectorFormatError("the file needs exactly one `devices` vector")
    return derive_devices(unhex(v[0].get("rng_seed"), "devices.rng_seed", 32), len(v[0]["devices"]))


def device_index(v, what: str, devices: list) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < len(devices):
        raise VectorFormatError(f"{what}: not a device index")
    return v


# --------------------------------------------------------------------------
# kind `devices`
# --------------------------------------------------------------------------

def devices_paths(vector: dict) -> list[tuple]:
    devs = vector.get("devices")
    if not isinstance(devs, list):
        return []
    return [("devices", i, f) for i, d in enumerate(devs) if isinstance(d, dict)
            for f in DEVICE_FIELDS if f in d]


def check_devices(ctx: VectorContext) -> None:
    devs = ctx.get("devices")
    if not isinstance(devs, list) or not devs:
        raise VectorFormatError("devices: expected a non-empty list")
    for i, (d, values) in enumerate(zip(devs, derive_devices(ctx.hex("rng_seed", 32), len(devs)))):
        if not isinstance(d, dict) or set(d) != set(DEVICE_FIELDS):
            raise VectorFormatError(f"devices[{i}]: expected fields {list(DEVICE_FIELDS)}")
        for f, value in zip(DEVICE_FIELDS, values):
            expect_at(ctx, f"devices[{i}].{f}", d[f], value)


# --------------------------------------------------------------------------
# kind `envelope`
# --------------------------------------------------------------------------

SCALAR_OUTPUTS = ("ephemeral_secret", "ephemeral_public", "slot_count", "body_len", "envelope")


def envelope_paths(vector: dict) -> list[tuple]:
    paths = [(f,) for f in SCALAR_OUTPUTS if f in vector]
    recips = vector.get("recipients")
    if isinstance(recips, list):
        paths += [("recipients", i, f) for i, r in enumerate(recips) if isinstance(r, dict)
                  for f in RECIPIENT_OUTPUTS if f in r]
    return paths


def check_envelope(ctx: VectorContext) -> None:
    devices = file_devices(ctx)
    recips = ctx.get("recipients")
    if not isinstance(recips, list):
        raise VectorFormatError("recipients: expected a list")
    chosen = []
    for i, r in enumerate(recips):
        if not isinstance(r, dict) or set(r) != set(RECIPIENT_INPUTS + RECIPIENT_OUTPUTS):
            raise VectorFormatError(f"recipients[{i}]: expected fields "
                                    f"{list(RECIPIENT_INPUTS + RECIPIENT_OUTPUTS)}")
        d = device_index(r["device"], f"recipients[{i}].device", devices)
        chosen.append((d, unhex(r["payload"], f"recipients[{i}].payload")))
    pairs = [(devices[d][2][32:], payload) for d, payload in chosen]

    # §1.5 / §8.7.4: the draws are the ChaCha20 stream of rng_seed: e, then
    # one draw per dummy slot.
    sizes = draw_sizes(pairs)
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
        ctx.fail("draws", "the draws are not the ChaCha20 stream of rng_seed in §8.7.4 order")

    e = draws[0]
    eph_pub = x25519_public(e)
    ctx.expect("ephemeral_secret", e)
    ctx.expect("ephemeral_public", eph_pub)
    for i, ((_, _), (p, _)) in enumerate(zip(chosen, pairs)):
        k = x25519(e, p)
        hint, key = slot_secrets(k, eph_pub, p)
        for f, value in zip(RECIPIENT_OUTPUTS, (k, hint, key)):
            expect_at(ctx, f"recipients[{i}].{f}", recips[i][f], value)
    sealed = seal(pairs, draws)
    ctx.expect("envelope", sealed)
    _, count, blen, _ = decode(sealed)
    ctx.expect_value("slot_count", count)
    ctx.expect_value("body_len", blen)

    # Every recipient opens the published envelope; the non-recipient cannot.
    published = ctx.hex("envelope")
    for i, (d, payload) in enumerate(chosen):
        try:
            got = open_envelope(devices[d][1], published)
        except ProtocolError as e:
            ctx.fail("envelope", f"recipient {i} cannot open it: {e.cls} ({e.detail})")
            continue
        if got != payload:
            ctx.fail("envelope", f"recipient {i} opens another payload")
    outsider = device_index(ctx.get("non_recipient"), "non_recipient", devices)
    if outsider in (d for d, _ in chosen):
        raise VectorFormatError("non_recipient is a recipient")
    try:
        open_envelope(devices[outsider][1], published)
        ctx.fail("envelope", "the non-recipient opens it")
    except ProtocolError as e:
        if e.cls != "NoSlotForDevice":
            ctx.fail("envelope", f"the non-recipient gets {e.cls}, expected NoSlotForDevice")


# --------------------------------------------------------------------------
# kind `envelope-error`
# --------------------------------------------------------------------------

def check_envelope_error(ctx: VectorContext) -> None:
    devices = file_devices(ctx)
    data = ctx.hex("input")
    dev = ctx.get("device")
    if dev is not None:
        dev = device_index(dev, "device", devices)

    def run() -> None:
        decode(data)
        if dev is not None:
            open_envelope(devices[dev][1], data)

    ctx.expect_error("expected_error", run)


KINDS = {
    "devices": Kind(check_devices, inputs=("rng_seed",), outputs=("devices",),
                    output_paths=devices_paths),
    "envelope": Kind(check_envelope,
                     inputs=("rng_seed", "recipients", "draws", "non_recipient"),
                     outputs=SCALAR_OUTPUTS, output_paths=envelope_paths),
    "envelope-error": Kind(check_envelope_error, inputs=("input", "device"),
                           outputs=("expected_error",)),
}

EXPECTED_COUNTS = {
    "devices": 1,
    "envelope": 3,
    "envelope-error": 18,
}


# --------------------------------------------------------------------------
# Self-test of the rules (`verify.py --self-test`): the sealing errors and
# the opening paths that no published vector reaches, built in memory from
# the file's devices.
# --------------------------------------------------------------------------

def self_test(vectors: list) -> list[tuple[str, str | None]]:
    from primitives import chacha20poly1305_seal
    from protocol.envelope import (MAX_PAYLOAD_LEN, ZERO_NONCE, header, u32)

    results: list[tuple[str, str | None]] = []
    dv = next(v for v in vectors if v.get("kind") == "devices")
    devs = derive_devices(unhex(dv["rng_seed"], "rng_seed"), len(dv["devices"]))
    keys = [d[2][32:] for d in devs]

    def expect(case: str, want: str, thunk) -> None:
        try:
            got = thunk()
            results.append((case, f"expected {want}, got {got!r}"))
        except ProtocolError as e:
            results.append((case, None if e.cls == want else f"expected {want}, got {e.cls}"))

    def draws_for(pairs, fill: int = 7) -> list[bytes]:
        return [bytes([fill + i]) * n for i, n in enumerate(draw_sizes(pairs))]

    big = bytes(MAX_PAYLOAD_LEN)
    for case, pairs, want in (
            ("seal: no recipients", [], "NoRecipients"),
            ("seal: 33 recipients", [(bytes([i]) * 32, b"") for i in range(33)],
             "TooManyRecipients"),
            ("seal: a device twice", [(keys[0], b"a"), (keys[1], b"b"), (keys[0], b"c")],
             "DuplicateRecipient"),
            ("seal: payload too large", [(keys[0], big + b"x")], "PayloadTooLarge"),
            ("seal: five largest payloads", [(k, big) for k in keys[:5]], "TooLarge"),
            ("seal: low-order recipient key", [(keys[0], b"a"), (bytes(32), b"b")],
             "InvalidRecipientKey")):
        expect(case, want, lambda p=pairs: seal(p, draws_for(p)))
    one = [(keys[0], b"a")]
    expect("seal: repeated dummies", "BrokenRng",
           lambda: seal(one, [bytes([1]) * 32] + [bytes(HINT_LEN + 256)] * 3))

    # The largest payload fits alone; an empty payload is carried.
    for case, payload in (("seal: largest payload", big), ("seal: empty payload", b"")):
        env = seal([(keys[0], payload)], draws_for([(keys[0], payload)]))
        got = open_envelope(devs[0][1], env)
        results.append((case, None if got == payload else "payload differs"))

    # Several slots carry the device's hint: the one that authenticates wins;
    # if none does, SlotAuthentication.
    env_v = next(v for v in vectors if v.get("kind") == "envelope")
    env = unhex(env_v["envelope"], "envelope")
    d0 = env_v["recipients"][0]["device"]
    eph_pub, count, blen, slots = decode(env)
    hint, key = slot_secrets(x25519(devs[d0][1], eph_pub), eph_pub, keys[d0])
    own = next(s for s in slots if s[:HINT_LEN] == hint)
    others = [s for s in slots if s != own]
    ad = header(eph_pub, count, blen)
    for fill in (0x00, 0xFF):
        forged = sorted([hint + bytes([fill]) * blen, own] + others[1:])
        got = open_envelope(devs[d0][1], ad + b"".join(forged))
        results.append((f"open: a second slot with the hint ({fill:#04x})",
                        None if got == open_envelope(devs[d0][1], env) else "wrong payload"))
    expect("open: no slot with the hint authenticates", "SlotAuthentication",
           lambda: open_envelope(devs[d0][1], ad + b"".join(
               sorted([hint + bytes([1]) * blen, hint + bytes([2]) * blen] + others[1:]))))
    # Padding: a full body opens; one byte more in the length does not.
    room = blen - 20
    for case, n, want in (("open: length fills the body", room, None),
                          ("open: length one beyond", room + 1, "BadPadding")):
        plain = u32(n) + bytes(blen - 20)
        body = chacha20poly1305_seal(key, ZERO_NONCE, plain, ad)
        data = ad + b"".join(sorted([hint + body] + others))
        if want is None:
            got = open_envelope(devs[d0][1], data)
            results.append((case, None if got == bytes(room) else "wrong payload"))
        else:
            expect(case, want, lambda b=data: open_envelope(devs[d0][1], b))
    for case, data, want in (
            ("decode: too long", env + bytes(76801 - len(env)), "TooLong"),
            ("decode: slot count 255", env[:34] + b"\xff" + env[35:], "TooMany"),
            ("decode: body length 2^32 - 1", env[:35] + b"\xff" * 4 + env[39:], "LengthExceeded"),
            ("decode: repeated slot", ad + b"".join([slots[0]] + slots[:3]), "NotCanonical"),
            ("decode: order before trailing bytes",
             ad + b"".join([slots[1], slots[0]] + slots[2:]) + b"\x00", "NotCanonical")):
        expect(case, want, lambda b=data: decode(b))
    assert HEADER_LEN == 39
    return results
