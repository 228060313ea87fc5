"""Layer `handshake`: identities, bundles, the hybrid handshake, the prekey
message and the responder's prekey store (spec chapters 4-6)."""

from __future__ import annotations

from dataclasses import dataclass

from common import Kind, ProtocolError, VectorContext, VectorFormatError, unhex
from primitives import MLKEM_SEED_LEN, chacha20_rng_stream
from protocol.handshake import PrekeyMessage, commit, initiate, respond
from protocol.prekeys import Bundle, DeviceIdentity, PrekeyStore, bundle_for

LAYER = "handshake"

# Fields of `draws`, in draw order (§1.5, §4.1, §4.3, §5.2): name, the
# sub-field holding the secret (None for a bare secret), its length.
DRAW_ORDER = (
    ("alice_ed25519_seed", None, 32),
    ("alice_x25519_secret", None, 32),
    ("bob_ed25519_seed", None, 32),
    ("bob_x25519_secret", None, 32),
    ("bob_signed_prekey", "x25519_secret", 32),
    ("bob_last_resort_kem_prekey", "mlkem_seed_d_z", MLKEM_SEED_LEN),
    ("bob_one_time_prekey", "x25519_secret", 32),
    ("bob_one_time_kem_prekey", "mlkem_seed_d_z", MLKEM_SEED_LEN),
    ("ephemeral_x25519_secret", None, 32),
    ("mlkem_encaps_m", None, 32),
)

# Prekey ids (§4.3): one counter from 1 over prekeys of every kind; a new
# store creates the signed prekey, then the last-resort PQ prekey; the
# vectors then create the one-time X25519 and the one-time ML-KEM prekey.
EXPECTED_IDS = {
    "bob_signed_prekey": 1,
    "bob_last_resort_kem_prekey": 2,
    "bob_one_time_prekey": 3,
    "bob_one_time_kem_prekey": 4,
}


@dataclass
class Draws:
    alice: DeviceIdentity
    bob: DeviceIdentity
    spk: tuple[int, bytes]
    pqlr: tuple[int, bytes]
    opk: tuple[int, bytes]
    pqopk: tuple[int, bytes]
    ek: bytes
    m: bytes
    stream: bytes          # all draws concatenated in draw order


def parse_draws(draws: dict) -> Draws:
    if not isinstance(draws, dict):
        raise VectorFormatError("field 'draws': expected an object")
    names = [d[0] for d in DRAW_ORDER]
    if set(draws) != set(names):
        raise VectorFormatError(f"field 'draws': fields {sorted(draws)}, expected {sorted(names)}")
    values, ids = {}, {}
    for name, sub, length in DRAW_ORDER:
        item = draws[name]
        if sub is None:
            values[name] = unhex(item, f"draws.{name}", length)
        else:
            if not isinstance(item, dict) or set(item) != {"id", sub}:
                raise VectorFormatError(f"draws.{name}: expected fields 'id' and '{sub}'")
            if not isinstance(item["id"], int) or not 0 <= item["id"] < 2**32:
                raise VectorFormatError(f"draws.{name}.id: not a u32")
            ids[name] = item["id"]
            values[name] = unhex(item[sub], f"draws.{name}.{sub}", length)
    return Draws(
        alice=DeviceIdentity(values["alice_ed25519_seed"], values["alice_x25519_secret"]),
        bob=DeviceIdentity(values["bob_ed25519_seed"], values["bob_x25519_secret"]),
        spk=(ids["bob_signed_prekey"], values["bob_signed_prekey"]),
        pqlr=(ids["bob_last_resort_kem_prekey"], values["bob_last_resort_kem_prekey"]),
        opk=(ids["bob_one_time_prekey"], values["bob_one_time_prekey"]),
        pqopk=(ids["bob_one_time_kem_prekey"], values["bob_one_time_kem_prekey"]),
        ek=values["ephemeral_x25519_secret"],
        m=values["mlkem_encaps_m"],
        stream=b"".join(values[n] for n in names),
    )


def build_store(d: Draws) -> PrekeyStore:
    """Bob's store: every drawn prekey is in it, whether offered or not."""
    store = PrekeyStore()
    store.add_signed(*d.spk)
    store.add_last_resort(*d.pqlr)
    store.add_one_time(*d.opk)
    store.add_one_time_kem(*d.pqopk)
    return store


def store_snapshot(store: PrekeyStore):
    return (dict(store.signed), dict(store.one_time), dict(store.one_time_kem),
            {k: (v.seed_d_z, frozenset(v.base_keys)) for k, v in store.last_resort.items()})


def get_bool(ctx: VectorContext, fld: str) -> bool:
    v = ctx.get(fld)
    if not isinstance(v, bool):
        raise VectorFormatError(f"field '{fld}': expected a boolean")
    return v


def make_bundle(ctx: VectorContext, d: Draws) -> Bundle:
    offers_opk = get_bool(ctx, "bundle_offers_one_time_prekey")
    offers_pqopk = get_bool(ctx, "bundle_offers_one_time_kem_prekey")
    return bundle_for(d.bob, d.spk, d.pqlr,
                      d.opk if offers_opk else None,
                      d.pqopk if offers_pqopk else None)


# --------------------------------------------------------------------------
# kind `handshake`
# --------------------------------------------------------------------------

def check_handshake(ctx: VectorContext) -> None:
    rng_seed = ctx.hex("rng_seed", 32)
    d = parse_draws(ctx.get("draws"))
    payload = ctx.hex("payload")

    # §1.5: the draws are the RNG output in the specified order and sizes.
    if chacha20_rng_stream(rng_seed, len(d.stream)) != d.stream:
        ctx.fail("draws", "draws are not the ChaCha20 stream of rng_seed in spec draw order")
    for name, want in EXPECTED_IDS.items():
        got = ctx.get("draws")[name]["id"]
        if got != want:
            ctx.fail("draws", f"{name}.id is {got}, the §4.3 id counter gives {want}")

    # §4.1 public identities.
    ctx.expect("alice_public_identity", d.alice.public_identity)
    ctx.expect("bob_public_identity", d.bob.public_identity)

    # §4.3, §4.4 bundle.
    bundle = make_bundle(ctx, d)
    bundle_bytes = bundle.encode()
    ctx.expect("bundle", bundle_bytes)
    # The published bundle decodes, verifies and is canonical (§6.5).
    try:
        published = ctx.hex("bundle")
        dec = Bundle.decode(published)
        dec.verify(expected_identity=d.bob.public_identity)
        if dec.encode() != published:
            ctx.fail("bundle", "published bundle is not canonical: encode(decode(b)) != b")
    except ProtocolError as e:
        ctx.fail("bundle", f"published bundle rejected: {e}")

    # §5.2 initiator, on the decoded and verified bundle.
    decoded = Bundle.decode(bundle_bytes)
    decoded.verify(expected_identity=d.bob.public_identity)
    seed, msg = initiate(d.alice, decoded, d.ek, d.m, payload)
    outputs = {
        "transcript_hash": seed.transcript_hash,
        "root_key": seed.root_key,
        "initiator_chain_key": seed.initiator_chain_key,
        "initiator_header_key": seed.initiator_header_key,
        "responder_header_key": seed.responder_header_key,
    }
    for fld, val in outputs.items():
        ctx.expect(fld, val, side="initiator")
    msg_bytes = msg.encode()
    ctx.expect("prekey_message", msg_bytes)
    try:
        published = ctx.hex("prekey_message")
        if PrekeyMessage.decode(published).encode() != published:
            ctx.fail("prekey_message", "published prekey message is not canonical")
    except ProtocolError as e:
        ctx.fail("prekey_message", f"published prekey message rejected: {e}")

    # §5.7 responder: phase 1 then phase 2, from a fresh store.
    store = build_store(d)
    rmsg = PrekeyMessage.decode(msg_bytes)
    rseed = respond(d.bob, store, rmsg)
    for fld in outputs:
        ctx.expect(fld, getattr(rseed, fld), side="responder")
    commit(store, rmsg)


# --------------------------------------------------------------------------
# kind `bundle-error`
# --------------------------------------------------------------------------

def check_bundle_error(ctx: VectorContext) -> None:
    data = ctx.hex("input")

    def run() -> None:
        Bundle.decode(data).verify()

    ctx.expect_error("expected_error", run, step="bundle decoding/verification")


# --------------------------------------------------------------------------
# kind `prekey-message-error`
# --------------------------------------------------------------------------

def check_prekey_message_error(ctx: VectorContext) -> None:
    has_input = "input" in ctx.vector
    has_prefix = "input_prefix" in ctx.vector or "input_zero_padded_to_length" in ctx.vector
    if has_input == has_prefix:
        raise VectorFormatError("need either 'input' or 'input_prefix' with "
                                "'input_zero_padded_to_length'")
    if has_input:
        data = ctx.hex("input")
    else:
        prefix = ctx.hex("input_prefix")
        n = ctx.get("input_zero_padded_to_length")
        if not isinstance(n, int) or n < len(prefix):
            raise VectorFormatError("'input_zero_padded_to_length' shorter than the prefix")
        data = prefix + bytes(n - len(prefix))
    ctx.expect_error("expected_error", lambda: PrekeyMessage.decode(data),
                     step="prekey message decoding")


# --------------------------------------------------------------------------
# kind `handshake-replay`
# --------------------------------------------------------------------------

def check_replay(ctx: VectorContext) -> None:
    target = ctx.get("of_vector")
    matches = [v for v in ctx.all_vectors
               if v.get("name") == target and v.get("kind") == "handshake"]
    if len(matches) != 1:
        raise VectorFormatError(f"'of_vector': {len(matches)} handshake vectors named {target!r}")
    of = matches[0]
    if ctx.hex("rng_seed", 32) != unhex(of.get("rng_seed"), "of_vector.rng_seed", 32):
        ctx.fail("rng_seed", "differs from the rng_seed of the referenced vector")

    # Rebuild the referenced handshake from its inputs.
    of_ctx = VectorContext(ctx.file, of, ctx.all_vectors)
    d = parse_draws(of["draws"])
    bundle = make_bundle(of_ctx, d)
    _, msg = initiate(d.alice, Bundle.decode(bundle.encode()), d.ek, d.m, unhex(of["payload"], "payload"))
    msg = PrekeyMessage.decode(msg.encode())

    def expect_rejection(step: str, thunk, store: PrekeyStore) -> None:
        before = store_snapshot(store)
        got = None
        try:
            thunk()
        except ProtocolError as e:
            got = e.cls
        ctx.expect_error_class("expected_error_on_second_delivery", got, step)
        if store_snapshot(store) != before:
            ctx.fail("expected_error_on_second_delivery", f"{step}: the failed step changed the store")

    # First delivery is accepted and committed; the second is rejected by
    # phase 1 (§4.5, §5.7).
    store = build_store(d)
    respond(d.bob, store, msg)
    commit(store, msg)
    expect_rejection("second delivery, phase 1 (respond)", lambda: respond(d.bob, store, msg), store)

    # Both deliveries pass phase 1 before either commits: the second commit
    # fails the phase-2 re-check with the same class.
    store = build_store(d)
    respond(d.bob, store, msg)
    respond(d.bob, store, msg)
    commit(store, msg)
    expect_rejection("second delivery, phase 2 (commit)", lambda: commit(store, msg), store)


KINDS = {
    "handshake": Kind(
        check_handshake,
        inputs=("rng_seed", "draws", "bundle_offers_one_time_prekey",
                "bundle_offers_one_time_kem_prekey", "payload"),
        outputs=("alice_public_identity", "bob_public_identity", "bundle", "transcript_hash",
                 "root_key", "initiator_chain_key", "initiator_header_key",
                 "responder_header_key", "prekey_message"),
    ),
    "bundle-error": Kind(
        check_bundle_error,
        inputs=("input",),
        outputs=("expected_error",),
    ),
    "prekey-message-error": Kind(
        check_prekey_message_error,
        inputs=("input", "input_prefix", "input_zero_padded_to_length"),
        outputs=("expected_error",),
        required=("expected_error",),
    ),
    "handshake-replay": Kind(
        check_replay,
        inputs=("of_vector", "rng_seed"),
        outputs=("expected_error_on_second_delivery",),
    ),
}

EXPECTED_COUNTS = {
    "handshake": 4,
    "bundle-error": 11,
    "prekey-message-error": 5,
    "handshake-replay": 3,
}


def check_file(vectors: list, fail) -> None:
    """File-level coverage: every combination of offered one-time prekeys."""
    combos = {(v.get("bundle_offers_one_time_prekey"), v.get("bundle_offers_one_time_kem_prekey"))
              for v in vectors if v.get("kind") == "handshake"}
    for combo in ((False, False), (True, False), (False, True), (True, True)):
        if combo not in combos:
            fail(f"no handshake vector with (one-time prekey, one-time KEM prekey) = {combo}")
