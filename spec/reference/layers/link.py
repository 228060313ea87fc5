"""Layer `link`: linking a new device (spec §8.5): the X-Wing request and
response, transcript hash, payload key, emoji SAS, the approving device's
next list and payload, payloads the new device rejects, men in the middle,
decoding errors."""

from __future__ import annotations

import json

from common import Kind, ProtocolError, VectorContext, VectorFormatError, unhex
from primitives import ed25519_public, x25519_public, xwing_decaps, xwing_encaps, xwing_public_key
from protocol.devices import accept_first, account_seed, decode_list
from protocol.devices_link import (
    EMOJI_DESCRIPTIONS,
    MAX_PAYLOAD_LEN,
    SAS_SHOWN,
    Request,
    Response,
    decode_payload_envelope,
    decode_request,
    decode_response,
    next_list_with,
    open_payload,
    payload_key,
    payload_plaintext,
    sas_indices_of_seed,
    sas_input,
    sas_seed,
    seal_payload,
    transcript_hash,
)
from protocol.session_v2_primitives import ChaChaRng

LAYER = "link"

GRANTS = {"share-account-seed": True, "withhold-account-seed": False}
REQUEST_XWING_AT = 2 + 64
RESPONSE_CT_AT = 2 + 32 + 64


def _obj(v, what: str, keys: set) -> dict:
    if not isinstance(v, dict) or set(v) != keys:
        raise VectorFormatError(f"{what}: expected an object with fields {sorted(keys)}")
    return v


def _int(v, what: str, bits: int) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < 2**bits:
        raise VectorFormatError(f"{what}: not a u{bits}")
    return v


def _draws(ctx_or_v, fld: str, sizes: dict) -> dict:
    v = ctx_or_v.vector if isinstance(ctx_or_v, VectorContext) else ctx_or_v
    d = _obj(v.get(fld), fld, set(sizes))
    return {k: unhex(d[k], f"{fld}.{k}", n) for k, n in sizes.items()}


def _check_stream(ctx: VectorContext, fld: str, seed: bytes, sizes: dict, draws: dict) -> None:
    rng = ChaChaRng(seed)
    for k, n in sizes.items():
        if rng.bytes(n) != draws[k]:
            ctx.fail(fld, f"draw '{k}' is not the next {n} bytes of the ChaCha20 stream (§1.5, §8.5.1)")
            return


N_DRAWS = {"xwing_seed": 32, "nonce": 32}
E_DRAWS = {"eseed": 64, "nonce": 32, "device_id": 32}


class Exchange:
    """A `link` vector's exchange recomputed from its inputs only."""

    def __init__(self, v: dict):
        self.v = v
        rs = unhex(v.get("recovery_seed"), "recovery_seed", 16)
        self.account_seed = account_seed(rs)
        self.account_pub = ed25519_public(self.account_seed)
        self.approver_identity = (ed25519_public(unhex(v.get("approver_ed25519_seed"), "approver_ed25519_seed", 32))
                                  + x25519_public(unhex(v.get("approver_x25519_secret"), "approver_x25519_secret", 32)))
        self.new_identity = (ed25519_public(unhex(v.get("new_device_ed25519_seed"), "new_device_ed25519_seed", 32))
                             + x25519_public(unhex(v.get("new_device_x25519_secret"), "new_device_x25519_secret", 32)))
        self.held = decode_list(unhex(v.get("held_list"), "held_list"))
        cv = v.get("client_version")
        if not isinstance(cv, list) or len(cv) != 3:
            raise VectorFormatError("client_version: expected [major, minor, patch]")
        if not isinstance(v.get("description"), str):
            raise VectorFormatError("description: expected a string")
        self.n = _draws(v, "n_draws", N_DRAWS)
        self.e = _draws(v, "e_draws", E_DRAWS)
        self.request = Request(self.new_identity, xwing_public_key(self.n["xwing_seed"]), self.n["nonce"],
                               _int(v.get("platform"), "platform", 8),
                               tuple(_int(x, "client_version", 16) for x in cv), v["description"])
        self.request_bytes = self.request.encode()
        self.ct, self.ss = xwing_encaps(self.request.xwing_pk, self.e["eseed"], "InvalidMlKemKey")
        self.response = Response(self.account_pub, self.approver_identity, self.ct, self.e["nonce"])
        self.response_bytes = self.response.encode()
        self.ss_n = xwing_decaps(self.n["xwing_seed"], self.ct)
        self.th = transcript_hash(self.request_bytes, self.response_bytes)
        self.key = payload_key(self.th, self.ss)
        self.key_n = payload_key(self.th, self.ss_n)
        self.added_at = _int(v.get("added_at"), "added_at", 64)
        grant = v.get("grant")
        if grant not in GRANTS:
            raise VectorFormatError(f"grant: one of {sorted(GRANTS)}")
        self.share = GRANTS[grant]
        contacts = v.get("contacts")
        if not isinstance(contacts, list):
            raise VectorFormatError("contacts: expected a list")
        self.contacts = [unhex(c, f"contacts[{i}]", 32) for i, c in enumerate(contacts)]

    def approve(self, device_id: bytes, key: bytes) -> tuple[bytes, bytes]:
        """(new list, payload) of E's approval with this vector's inputs."""
        new = next_list_with(self.held, device_id, self.request, self.added_at, self.account_seed)
        plain = payload_plaintext(device_id, self.account_seed if self.share else None,
                                  self.contacts, new.encode())
        return new.encode(), seal_payload(key, plain)


_EXCHANGES: dict[str, Exchange] = {}


def exchange_of(v: dict) -> Exchange:
    key = json.dumps({k: v.get(k) for k in KINDS["link"].inputs}, sort_keys=True)
    if key not in _EXCHANGES:
        _EXCHANGES[key] = Exchange(v)
    return _EXCHANGES[key]


def named_link(ctx: VectorContext) -> Exchange:
    target = ctx.get("of")
    matches = [v for v in ctx.all_vectors
               if isinstance(v, dict) and v.get("name") == target and v.get("kind") == "link"]
    if len(matches) != 1:
        raise VectorFormatError(f"'of': {len(matches)} link vectors named {target!r}")
    return exchange_of(matches[0])


def sas_of(request: bytes, response: bytes) -> list[int]:
    return sas_indices_of_seed(sas_seed(sas_input(transcript_hash(request, response))))


# --------------------------------------------------------------------------
# kind `link`
# --------------------------------------------------------------------------

def check_link(ctx: VectorContext) -> None:
    x = exchange_of(ctx.vector)
    # Setup draws: approver Ed25519 seed, X25519 secret, device id; new
    # device Ed25519 seed, X25519 secret (§4.1 draw order).
    rng = ChaChaRng(ctx.hex("setup_rng_seed", 32))
    setup = [rng.bytes(32) for _ in range(5)]
    for i, fld in ((0, "approver_ed25519_seed"), (1, "approver_x25519_secret"),
                   (3, "new_device_ed25519_seed"), (4, "new_device_x25519_secret")):
        if setup[i] != ctx.hex(fld, 32):
            ctx.fail(fld, "not the stream of setup_rng_seed")
    _check_stream(ctx, "n_draws", ctx.hex("n_rng_seed", 32), N_DRAWS, x.n)
    _check_stream(ctx, "e_draws", ctx.hex("e_rng_seed", 32), E_DRAWS, x.e)

    # The held list: the account's, verified, listing E (at setup draw 3).
    try:
        accept_first(x.held, expected_account_pub=x.account_pub)
    except ProtocolError as e:
        ctx.fail("held_list", f"not accepted for the account: {e.cls}")
    approver = x.held.device(setup[2])
    if approver is None or approver.public_identity != x.approver_identity:
        ctx.fail("held_list", "does not list the approver at the setup device id")

    ctx.expect("request", x.request_bytes)
    ctx.expect("response", x.response_bytes)
    ctx.expect("transcript_hash", x.th)
    ctx.expect("payload_key", x.key)
    ctx.expect("payload_key", x.key_n, side="new device, after decapsulation")
    m = sas_input(x.th)
    ctx.expect("sas_input", m)
    seed = sas_seed(m)
    ctx.expect("sas_seed", seed)
    indices = sas_indices_of_seed(seed)
    ctx.expect_value("sas_indices", indices)
    ctx.expect_value("sas_emoji", [EMOJI_DESCRIPTIONS[i] for i in indices[:SAS_SHOWN]])
    new, payload = x.approve(x.e["device_id"], x.key)
    ctx.expect("new_list", new)
    ctx.expect("device_id", x.e["device_id"])
    ctx.expect("payload", payload)

    # The published messages decode canonically, and the published payload
    # opens for the new device with the published list.
    try:
        if decode_request(ctx.hex("request")).encode() != ctx.hex("request"):
            ctx.fail("request", "the published request is not canonical")
        if decode_response(ctx.hex("response")).encode() != ctx.hex("response"):
            ctx.fail("response", "the published response is not canonical")
    except ProtocolError as e:
        ctx.fail("request", f"a published message is rejected: {e.cls} ({e.detail})")
    try:
        content = open_payload(x.key_n, x.request, x.response, ctx.hex("payload"))
    except ProtocolError as e:
        ctx.fail("payload", f"the published payload does not open: {e.cls} ({e.detail})")
        return
    if content.new_list.encode() != ctx.hex("new_list"):
        ctx.fail("new_list", "the published payload carries another list")
    if content.device_id != ctx.hex("device_id", 32):
        ctx.fail("device_id", "the published payload carries another device id")
    if (content.seed is not None) != x.share:
        ctx.fail("payload", "the seed is present contrary to the grant")
    if content.contacts != sorted(set(x.contacts)):
        ctx.fail("payload", "the contacts are not the sorted distinct given contacts")


# --------------------------------------------------------------------------
# kind `link-payload-error`
# --------------------------------------------------------------------------

def check_payload_error(ctx: VectorContext) -> None:
    x = named_link(ctx)
    ctx.expect_error("expected_error",
                     lambda: open_payload(x.key_n, x.request, x.response, ctx.hex("payload")),
                     step="opening (§8.5.7)")


# --------------------------------------------------------------------------
# kind `link-mitm`
# --------------------------------------------------------------------------

def check_mitm(ctx: VectorContext) -> None:
    x = named_link(ctx)
    sub = ctx.get("substitute")
    if sub not in ("x-wing-key", "ciphertext"):
        raise VectorFormatError("substitute: 'x-wing-key' or 'ciphertext'")
    m_sizes = {"xwing_seed": 32, "eseed": 64} if sub == "x-wing-key" else {"eseed": 64}
    m = _draws(ctx, "mallory_draws", m_sizes)
    _check_stream(ctx, "mallory_draws", ctx.hex("mallory_rng_seed", 32), m_sizes, m)
    e = _draws(ctx, "e_draws", E_DRAWS)
    _check_stream(ctx, "e_draws", ctx.hex("e_rng_seed", 32), E_DRAWS, e)

    request_to_e = x.request_bytes
    if sub == "x-wing-key":
        at = REQUEST_XWING_AT
        request_to_e = request_to_e[:at] + xwing_public_key(m["xwing_seed"]) + request_to_e[at + 1216:]
    ctx.expect("request_to_e", request_to_e)
    req_e = decode_request(request_to_e)
    ct_e, ss_e = xwing_encaps(req_e.xwing_pk, e["eseed"], "InvalidMlKemKey")
    response_from_e = Response(x.account_pub, x.approver_identity, ct_e, e["nonce"]).encode()
    ctx.expect("response_from_e", response_from_e)
    ct_m, _ = xwing_encaps(x.request.xwing_pk, m["eseed"], "InvalidMlKemKey")
    at = RESPONSE_CT_AT
    response_to_n = response_from_e[:at] + ct_m + response_from_e[at + 1120:]
    ctx.expect("response_to_n", response_to_n)
    sas_e = sas_of(request_to_e, response_from_e)
    sas_n = sas_of(x.request_bytes, response_to_n)
    ctx.expect_value("sas_indices_at_e", sas_e)
    ctx.expect_value("sas_indices_at_n", sas_n)
    if sas_e[:SAS_SHOWN] == sas_n[:SAS_SHOWN]:
        ctx.fail("sas_indices_at_n", "the shown emoji agree: the substitution went unnoticed")

    # E approves as in `of`, under the key it shares with the attacker.
    key_e = payload_key(transcript_hash(request_to_e, response_from_e), ss_e)
    _, payload = x.approve(e["device_id"], key_e)
    ctx.expect("payload", payload)
    # N opens the published payload with its own view of the exchange.
    resp_n = decode_response(response_to_n)
    ss_n = xwing_decaps(x.n["xwing_seed"], resp_n.ct)
    key_n = payload_key(transcript_hash(x.request_bytes, response_to_n), ss_n)
    ctx.expect_error("expected_error",
                     lambda: open_payload(key_n, x.request, resp_n, ctx.hex("payload")),
                     step="the new device opening the payload")


# --------------------------------------------------------------------------
# kind `link-decode-error`
# --------------------------------------------------------------------------

DECODERS = {"request": decode_request, "response": decode_response,
            "payload": decode_payload_envelope}


def check_decode_error(ctx: VectorContext) -> None:
    obj = ctx.get("object")
    if obj not in DECODERS:
        raise VectorFormatError(f"object: one of {sorted(DECODERS)}")
    ctx.expect_error("expected_error", lambda: DECODERS[obj](ctx.hex("input")),
                     step=f"decoding the {obj}")


LINK_INPUTS = ("recovery_seed", "setup_rng_seed", "approver_ed25519_seed", "approver_x25519_secret",
               "new_device_ed25519_seed", "new_device_x25519_secret", "held_list", "platform",
               "client_version", "description", "n_rng_seed", "n_draws", "e_rng_seed", "e_draws",
               "added_at", "grant", "contacts")

KINDS = {
    "link": Kind(
        check_link,
        inputs=LINK_INPUTS,
        outputs=("request", "response", "transcript_hash", "payload_key", "sas_input", "sas_seed",
                 "sas_indices", "sas_emoji", "new_list", "device_id", "payload"),
    ),
    "link-payload-error": Kind(
        check_payload_error,
        inputs=("of", "payload"),
        outputs=("expected_error",),
    ),
    "link-mitm": Kind(
        check_mitm,
        inputs=("of", "substitute", "mallory_rng_seed", "mallory_draws", "e_rng_seed", "e_draws"),
        outputs=("request_to_e", "response_from_e", "response_to_n", "sas_indices_at_e",
                 "sas_indices_at_n", "payload", "expected_error"),
    ),
    "link-decode-error": Kind(
        check_decode_error,
        inputs=("object", "input"),
        outputs=("expected_error",),
    ),
}

EXPECTED_COUNTS = {
    "link": 2,
    "link-payload-error": 9,
    "link-mitm": 2,
    "link-decode-error": 10,
}


# --------------------------------------------------------------------------
# Self-test of the rules (`verify.py --self-test`): opening and decoding
# classes of §8.5 that the published vectors do not reach, on payloads and
# messages built in memory from the file's first exchange.
# --------------------------------------------------------------------------

def self_test(vectors: list) -> list[tuple[str, str | None]]:
    import copy

    from protocol.devices import Tombstone
    from protocol.devices_link import MAX_CONTACTS

    results: list[tuple[str, str | None]] = []
    x = exchange_of(next(v for v in vectors if v.get("kind") == "link"))
    did = x.e["device_id"]
    good = next_list_with(x.held, did, x.request, x.added_at, x.account_seed)

    def expect(case: str, want: str, thunk) -> None:
        try:
            thunk()
            got = "succeeded"
        except ProtocolError as e:
            got = e.cls
        results.append((case, None if got == want else f"expected {want}, got {got}"))

    def opened(plain: bytes):
        return lambda: open_payload(x.key_n, x.request, x.response, seal_payload(x.key_n, plain))

    def content(count: int, contacts: bytes, tail: bytes, flags: int = 0) -> bytes:
        return did + bytes([flags]) + count.to_bytes(2, "big") + contacts + tail

    small = (1).to_bytes(32, "little")
    other_seed = bytes(range(32))
    foreign = copy.deepcopy(good)
    foreign.account_pub = ed25519_public(other_seed)
    foreign.sign(other_seed)
    bad_sig = copy.deepcopy(good)
    bad_sig.signature = bytes([good.signature[0] ^ 1]) + good.signature[1:]
    no_approver = copy.deepcopy(good)
    gone = [d for d in no_approver.devices if d.public_identity == x.approver_identity]
    no_approver.devices = [d for d in no_approver.devices if d not in gone]
    no_approver.tombstones = [Tombstone(d.device_id, 1) for d in gone]
    no_approver.sign(x.account_seed)
    for case, plain, want in (
            ("open: the good payload", content(0, b"", good.encode()), "succeeded"),
            ("open: 1025 contacts", content(MAX_CONTACTS + 1, b"", good.encode()),
             "MalformedPayload/TooMany"),
            ("open: contacts beyond the input", content(3, b"", b""), "MalformedPayload/Truncated"),
            ("open: small-order contact", content(1, small, good.encode()),
             "MalformedPayload/InvalidEd25519Key"),
            ("open: a contact repeated", content(2, x.account_pub * 2, good.encode()),
             "MalformedPayload/NotCanonical"),
            ("open: a small-order contact out of order (key checked first)",
             content(2, max(x.account_pub, small) + min(x.account_pub, small), good.encode()),
             "MalformedPayload/InvalidEd25519Key"),
            ("open: trailing byte after the list", content(0, b"", good.encode() + b"\x00"),
             "MalformedPayload/TrailingBytes"),
            ("open: seed flag without the seed", did + b"\x01" + bytes(10), "MalformedPayload/Truncated"),
            ("open: list of another account", content(0, b"", foreign.encode()), "List/WrongAccount"),
            ("open: list with a bad signature", content(0, b"", bad_sig.encode()), "List/BadSignature"),
            ("open: approver removed", content(0, b"", no_approver.encode()), "ApproverNotListed"),
            ("open: the right seed", content(0, b"", good.encode(), 1)[:33] + x.account_seed
             + content(0, b"", good.encode())[33:], "succeeded")):
        expect(case, want, opened(plain))
    expect("open: a wrong key", "PayloadAuthenticationFailed",
           lambda: open_payload(bytes(32), x.request, x.response,
                                seal_payload(x.key_n, content(0, b"", good.encode()))))

    req, resp = x.request_bytes, x.response_bytes
    for case, fn, data, want in (
            ("request: small-order identity key", decode_request, req[:2] + small + req[34:],
             "InvalidEd25519Key"),
            ("request: truncated description", decode_request, req[:-1], "Truncated"),
            ("response: trailing byte", decode_response, resp + b"\x00", "TrailingBytes"),
            ("response: small-order approver key", decode_response,
             resp[:34] + small + resp[66:], "InvalidEd25519Key"),
            ("response: type of a request", decode_response, resp[:1] + b"\x08" + resp[2:],
             "UnexpectedType"),
            ("payload: too long", decode_payload_envelope,
             b"\x01\x0a" + bytes(MAX_PAYLOAD_LEN - 1), "TooLong"),
            ("payload: longest", decode_payload_envelope,
             b"\x01\x0a" + bytes(MAX_PAYLOAD_LEN - 2), "succeeded"),
            ("payload: wire version 2", decode_payload_envelope, b"\x02\x0a" + bytes(60),
             "UnsupportedVersion")):
        expect(case, want, lambda f=fn, d=data: f(d))
    return results
