"""Layer `stored-prekeys`: the stored prekey store (spec §4.6), the bundle a
loaded store serves, the encrypted form, and the rejections of both
decoders."""

from __future__ import annotations

from common import Kind, ProtocolError, VectorContext, VectorFormatError, short, unhex
from primitives import MLKEM_SEED_LEN, X25519_KEY_LEN, chacha20_rng_stream, ed25519_verify_strict
from protocol.prekeys import Bundle, DeviceIdentity, prekey_sig_input
from protocol.stored_prekeys import (
    StoredPrekeys,
    decode,
    encode,
    load_encrypted,
    open_sealed,
    seal,
)

LAYER = "stored-prekeys"

IDENTITY_DRAWS_LEN = 64
# §4.3: a new store creates one signed prekey (32 bytes drawn, id 1), then
# one last-resort PQ prekey (64 bytes drawn, id 2), right after the identity.
CREATION_DRAWS = (("signed", 1, X25519_KEY_LEN), ("last_resort", 2, MLKEM_SEED_LEN))


def identity_of(ctx: VectorContext) -> DeviceIdentity:
    """§4.1 from the listed draws (Ed25519 seed, then X25519 secret), which
    must be the start of the ChaCha20 stream of `rng_seed` (§1.5)."""
    draws = ctx.hex("identity_draws", IDENTITY_DRAWS_LEN)
    if chacha20_rng_stream(ctx.hex("rng_seed", 32), IDENTITY_DRAWS_LEN) != draws:
        ctx.fail("identity_draws", "not the first 64 bytes of the ChaCha20 stream of rng_seed")
    return DeviceIdentity(draws[:32], draws[32:])


def check_creation_draws(ctx: VectorContext, store: StoredPrekeys) -> None:
    """The store was created from the stream that made the identity (§4.3):
    the prekeys it was created with, when still held, hold those draws."""
    stream = chacha20_rng_stream(ctx.hex("rng_seed", 32),
                                 IDENTITY_DRAWS_LEN + sum(n for _, _, n in CREATION_DRAWS))
    pos = IDENTITY_DRAWS_LEN
    for lst, pid, n in CREATION_DRAWS:
        draw = stream[pos:pos + n]
        pos += n
        for p in getattr(store, lst):
            secret = p.secret if lst == "signed" else p.seed
            if p.id == pid and secret != draw:
                ctx.fail("stored", f"prekey {pid} does not hold the draw that created it (§4.3)")


def check_stored_prekeys(ctx: VectorContext) -> None:
    identity = identity_of(ctx)
    ctx.expect("public_identity", identity.public_identity)
    published_identity = ctx.hex("public_identity", 64)

    stored = ctx.hex("stored")
    try:
        store = decode(stored)
    except ProtocolError as e:
        ctx.fail("stored", f"does not load: {e.cls} ({e.detail})")
        return
    # Canonical (§4.6): re-encoding gives the input.
    ctx.expect("stored", encode(store), side="re-encoded")
    check_creation_draws(ctx, store)

    # Every stored signature is the prekey's signature as published (§4.3):
    # Ed25519 is deterministic, so it is recomputed from the identity and the
    # public key recomputed from the stored secret; it also verifies strictly
    # under the published identity.
    iks_pub, ik_pub = published_identity[:32], published_identity[32:]
    for list_name, tag, pid, pub, sig in store.signed_items():
        msg = prekey_sig_input(tag, identity.ik_pub, pid, pub)
        if identity.sign(msg) != sig:
            ctx.fail("stored", f"{list_name} {pid}: the stored signature is not the identity's "
                               f"signature over the recomputed public key")
        try:
            ed25519_verify_strict(iks_pub, prekey_sig_input(tag, ik_pub, pid, pub), sig)
        except ProtocolError as e:
            ctx.fail("public_identity", f"{list_name} {pid}: signature does not verify: {e.cls}")

    # The bundle the loaded store serves (§4.4, no one-time prekeys).
    ctx.expect("bundle", store.bundle(identity.public_identity).encode())
    try:
        published = Bundle.decode(ctx.hex("bundle"))
        if published.opk is not None or published.pqopk is not None:
            ctx.fail("bundle", "carries a one-time prekey")
        published.verify(expected_identity=published_identity)
    except ProtocolError as e:
        ctx.fail("bundle", f"the published bundle fails §4.4 for public_identity: "
                           f"{e.cls} ({e.detail})")

    ctx.expect_value("one_time_prekey_ids", [p.id for p in store.one_time])
    ctx.expect_value("one_time_kem_prekey_ids", [p.id for p in store.one_time_kem])
    # The same ids, as the §4.5 store holds them after loading.
    loaded = store.to_prekey_store()
    assert sorted(loaded.one_time) == [p.id for p in store.one_time]
    assert sorted(loaded.one_time_kem) == [p.id for p in store.one_time_kem]


def of_vector(ctx: VectorContext) -> dict:
    name = ctx.get("of")
    found = [v for v in ctx.all_vectors if isinstance(v, dict)
             and v.get("kind") == "stored-prekeys" and v.get("name") == name]
    if len(found) != 1:
        raise VectorFormatError(f"'of': no single stored-prekeys vector named {name!r}")
    return found[0]


def check_encrypted(ctx: VectorContext) -> None:
    stored = unhex(of_vector(ctx).get("stored"), "of.stored")
    key = ctx.hex("storage_key", 32)
    ctx.expect("encrypted", seal(key, ctx.hex("nonce", 24), stored))
    published = ctx.hex("encrypted")
    try:
        plain = open_sealed(key, published)
        load_encrypted(key, published)
    except ProtocolError as e:
        ctx.fail("encrypted", f"does not open and load: {e.cls} ({e.detail})")
        return
    if plain != stored:
        ctx.fail("encrypted", f"decrypts to {short(plain)}, not to the stored object of "
                              f"{ctx.get('of')!r}")


def check_error(ctx: VectorContext) -> None:
    data = ctx.hex("input")
    key = ctx.get("storage_key")
    if key is None:
        ctx.expect_error("expected_error", lambda: decode(data), step="the plain decoder")
    else:
        k = ctx.hex("storage_key", 32)
        ctx.expect_error("expected_error", lambda: load_encrypted(k, data),
                         step="decrypting and decoding")


KINDS = {
    "stored-prekeys": Kind(
        check_stored_prekeys,
        inputs=("rng_seed", "identity_draws", "stored"),
        outputs=("public_identity", "bundle", "one_time_prekey_ids", "one_time_kem_prekey_ids"),
    ),
    "stored-prekeys-encrypted": Kind(
        check_encrypted,
        inputs=("of", "storage_key", "nonce"),
        outputs=("encrypted",),
    ),
    "stored-prekeys-error": Kind(
        check_error,
        inputs=("input", "storage_key"),
        outputs=("expected_error",),
    ),
}

EXPECTED_COUNTS = {
    "stored-prekeys": 2,
    "stored-prekeys-encrypted": 1,
    "stored-prekeys-error": 20,
}


# --------------------------------------------------------------------------
# Self-test of the rules (`verify.py --self-test`): the §4.6 rejections and
# bounds that no published vector reaches, on stores edited from the
# file's fullest store, and the encrypted form's header and key checks.
# --------------------------------------------------------------------------

def self_test(vectors: list) -> list[tuple[str, str | None]]:
    import copy

    from primitives import mlkem_keygen, x25519_public, xchacha20poly1305_seal
    from protocol import ratchet_state
    from protocol.prekeys import TAG_LAST_RESORT_KEM_PREKEY, TAG_SIGNED_PREKEY
    from protocol.stored_prekeys import (
        FRESH_STORED_PREKEYS_LEN,
        MAX_STORED_PREKEYS_LEN,
        LastResortPrekey,
        OneTimeKemPrekey,
        OneTimePrekey,
        SignedPrekey,
        encode_raw,
        storage_ad,
    )
    from protocol.ratchet_state import MAX_STORED_LEN

    results: list[tuple[str, str | None]] = []

    def outcome(thunk) -> str:
        try:
            thunk()
            return "succeeded"
        except ProtocolError as e:
            return e.cls

    def expect(case: str, want: str, thunk) -> None:
        got = outcome(thunk)
        results.append((case, None if got == want else f"expected {want}, got {got}"))

    def plain(case: str, want: str, data: bytes) -> None:
        expect(case, want, lambda: decode(data))

    def check(case: str, ok: bool) -> None:
        results.append((case, None if ok else "does not hold"))

    stores = [v for v in vectors if v.get("kind") == "stored-prekeys"]
    base_v = max(stores, key=lambda v: len(v["stored"]))
    base = decode(unhex(base_v["stored"], "stored"))
    ids = base.all_ids()
    top = max(ids)
    spk, lr = base.signed[0], base.last_resort[0]
    opk, pqopk = base.one_time[0], base.one_time_kem[0]

    def edited(**fields) -> StoredPrekeys:
        s = copy.deepcopy(base)
        for k, v in fields.items():
            setattr(s, k, v)
        return s

    def raw(**fields) -> bytes:
        return encode_raw(edited(**fields))

    def key(i: int) -> bytes:
        return i.to_bytes(32, "big")

    C = "CorruptedStore/"
    # Counts: bounds, empty required lists.
    plain("last-resort count 0", C + "InvalidValue", raw(last_resort=[]))
    four_lr = [LastResortPrekey(top + 1 + i, lr.seed, lr.signature) for i in range(4)]
    plain("last-resort count 4", C + "TooMany", raw(last_resort=four_lr, next_id=top + 5))
    good = raw()
    plain("signed count 255", C + "TooMany", good[:2] + b"\xff" + good[3:])
    many_pq = [OneTimeKemPrekey(top + 1 + i, pqopk.seed, pqopk.signature) for i in range(1001)]
    plain("one-time ML-KEM count 1001", C + "TooMany", raw(one_time_kem=many_pq,
                                                            next_id=top + 1002))
    plain("one-time ML-KEM count 1000", "succeeded",
          raw(one_time_kem=many_pq[:1000], next_id=top + 1001))
    lr_many = copy.deepcopy(lr)
    lr_many.base_keys = [key(i) for i in range(1, 4098)]
    plain("base-key count 4097", C + "TooMany", raw(last_resort=[lr_many]))
    lr_many.base_keys = lr_many.base_keys[:4096]
    plain("base-key count 4096", "succeeded", raw(last_resort=[lr_many]))
    lr_none = copy.deepcopy(lr)
    lr_none.base_keys = []
    plain("empty replay set", "succeeded", raw(last_resort=[lr_none]))
    plain("no one-time prekeys of either kind", "succeeded", raw(one_time=[], one_time_kem=[]))

    # Ids: 0, order within a list, repeats across lists (every list pair
    # the vectors do not reach), and the order of these rules.
    def with_id(item, pid):
        out = copy.deepcopy(item)
        out.id = pid
        return out

    plain("last-resort id 0", C + "InvalidValue", raw(last_resort=[with_id(lr, 0)]))
    plain("one-time id 0", C + "InvalidValue", raw(one_time=[with_id(opk, 0)]))
    plain("one-time ML-KEM id 0", C + "InvalidValue", raw(one_time_kem=[with_id(pqopk, 0)]))
    for case, fields in (
            ("last-resort id of a signed prekey", {"last_resort": [with_id(lr, spk.id)]}),
            ("one-time id of a last-resort prekey", {"one_time": [with_id(opk, lr.id)]}),
            ("one-time ML-KEM id of a one-time prekey",
             {"one_time_kem": [with_id(pqopk, opk.id)]}),
            ("one-time ML-KEM id of a signed prekey",
             {"one_time_kem": [with_id(pqopk, spk.id)]}),
            ("one-time ML-KEM id of a last-resort prekey",
             {"one_time_kem": [with_id(pqopk, lr.id)]})):
        plain(case, C + "InvalidValue", raw(**fields))
    plain("one-time id repeated in its list", C + "NotCanonical",
          raw(one_time=[opk, with_id(opk, opk.id)]))
    plain("one-time ML-KEM ids descending", C + "NotCanonical",
          raw(one_time_kem=[with_id(pqopk, top + 2), with_id(pqopk, top + 1)],
              next_id=top + 3))
    plain("last-resort ids descending", C + "NotCanonical",
          raw(last_resort=[with_id(lr, top + 2), with_id(lr, top + 1)], next_id=top + 3))
    plain("id 0 after a higher id is InvalidValue before NotCanonical", C + "InvalidValue",
          raw(one_time=[opk, with_id(opk, 0)]))
    plain("an id below the previous one that another list holds is NotCanonical first",
          C + "NotCanonical",
          raw(one_time=[with_id(opk, top + 1), with_id(opk, spk.id)], next_id=top + 2))
    lr_rep = copy.deepcopy(lr)
    lr_rep.base_keys = [key(5), key(5)]
    plain("base key repeated", C + "NotCanonical", raw(last_resort=[lr_rep]))
    lr_two = [copy.deepcopy(lr), with_id(lr, top + 1)]
    lr_two[1].base_keys = list(lr.base_keys)
    plain("the same base key under two last-resort prekeys", "succeeded",
          raw(last_resort=lr_two, next_id=top + 2))

    # next_id.
    plain("next_id equal to the highest id", C + "InvalidValue", raw(next_id=top))
    plain("next_id one above the highest id", "succeeded", raw(next_id=top + 1))
    plain("next_id 2^32 - 1", "succeeded", raw(next_id=2**32 - 1))
    plain("id 2^32 - 1 leaves no next_id", C + "InvalidValue",
          raw(one_time_kem=[with_id(pqopk, 2**32 - 1)], next_id=2**32 - 1))

    # Room for a count's items is checked before any item is read; an item
    # field is validated before the next field is read.
    pos_opk = 2 + 1 + 100 * len(base.signed) + 1 + sum(134 + 32 * len(p.base_keys)
                                                      for p in base.last_resort)
    bad_first = raw(one_time=[with_id(opk, 0)])
    room = len(bad_first) - pos_opk - 2
    plain("one-time count beyond the input, first id 0", C + "Truncated",
          bad_first[:pos_opk] + (room // 36 + 1).to_bytes(2, "big") + bad_first[pos_opk + 2:])
    pos_bk = 2 + 1 + 100 * len(base.signed) + 1 + 132
    lr_bad = copy.deepcopy(lr)
    lr_bad.base_keys = [key(9), key(3)]
    data = raw(last_resort=[lr_bad])
    plain("replay set beyond the input, keys out of order", C + "Truncated",
          data[:pos_bk] + (4096).to_bytes(2, "big") + data[pos_bk + 2:])
    lr_a = copy.deepcopy(lr)
    lr_a.base_keys = [key(i) for i in range(1, 11)]
    first_end = 2 + 1 + 100 * len(base.signed) + 1 + 134 + 320
    data = raw(last_resort=[lr_a, with_id(lr, top + 1)], next_id=top + 2)
    plain("input ends inside a later last-resort prekey", C + "Truncated",
          data[:first_end + 14])
    data = raw(last_resort=[lr_a, with_id(lr, 0)], next_id=top + 2)
    plain("a later last-resort id 0, input ending inside its seed", C + "InvalidValue",
          data[:first_end + 14])
    data = raw(last_resort=four_lr, next_id=top + 5)
    plain("last-resort count 4, input ending after it", C + "TooMany",
          data[:2 + 1 + 100 * len(base.signed) + 1])

    # Header and size.
    plain("version 0x02 alone", "UnsupportedStoreVersion", b"\x02")
    plain("version 0x00", "UnsupportedStoreVersion", b"\x00" + good[1:])
    plain("version byte only", C + "Truncated", b"\x01")
    plain("encrypted type 0x14 to the plain decoder", C + "UnexpectedType",
          good[:1] + b"\x14" + good[2:])
    plain("larger than 1 MiB", C + "TooLong", good + bytes(MAX_STORED_LEN + 1 - len(good)))
    plain("exactly 1 MiB (trailing bytes)", C + "TrailingBytes",
          good + bytes(MAX_STORED_LEN - len(good)))

    # Signatures are not verified on load.
    zero_sig = edited()
    for lst in (zero_sig.signed, zero_sig.last_resort, zero_sig.one_time_kem):
        for p in lst:
            p.signature = bytes(64)
    plain("zeroed signatures load", "succeeded", encode_raw(zero_sig))

    # Canonical encoding: the encoder orders lists and replay sets.
    shuffled = edited()
    for lst in (shuffled.signed, shuffled.last_resort, shuffled.one_time, shuffled.one_time_kem):
        lst.reverse()
    for p in shuffled.last_resort:
        p.base_keys.reverse()
    check("the encoder writes the canonical order", encode(shuffled) == good
          and encode(decode(good)) == good)

    # A store at every bound of §4.5, and a new store (§4.3).
    n = 0

    def nid() -> int:
        nonlocal n
        n += 1
        return n

    full = StoredPrekeys(
        [SignedPrekey(nid(), spk.secret, spk.signature) for _ in range(3)],
        [LastResortPrekey(nid(), lr.seed, lr.signature,
                          [bytes([j]) + key(i)[1:] for i in range(4096)]) for j in range(3)],
        [OneTimePrekey(nid(), opk.secret) for _ in range(1000)],
        [OneTimeKemPrekey(nid(), pqopk.seed, pqopk.signature) for _ in range(1000)], n + 1)
    full_b = encode(full)
    check(f"a store at every bound is {MAX_STORED_PREKEYS_LEN} bytes",
          len(full_b) == MAX_STORED_PREKEYS_LEN)
    expect("a store at every bound loads", "succeeded", lambda: decode(full_b))
    check("a store at every bound re-encodes", encode(decode(full_b)) == full_b)
    over = copy.deepcopy(full)
    over.one_time.append(OneTimePrekey(nid(), opk.secret))
    over.next_id = n + 1
    plain("one one-time prekey beyond every bound", C + "TooMany", encode(over))

    # A new store (§4.3) of each file device: the signed prekey (id 1) and
    # the last-resort prekey (id 2) from the draws after the identity,
    # signed by it; a published store with next_id 3 must be exactly that.
    for v in stores:
        stream = chacha20_rng_stream(unhex(v["rng_seed"], "rng_seed", 32), 160)
        ident = DeviceIdentity(stream[:32], stream[32:64])
        spk_secret, lr_seed = stream[64:96], stream[96:160]
        new = StoredPrekeys(
            [SignedPrekey(1, spk_secret, ident.sign(prekey_sig_input(
                TAG_SIGNED_PREKEY, ident.ik_pub, 1, x25519_public(spk_secret))))],
            [LastResortPrekey(2, lr_seed, ident.sign(prekey_sig_input(
                TAG_LAST_RESORT_KEM_PREKEY, ident.ik_pub, 2, mlkem_keygen(lr_seed)[0])))],
            [], [], 3)
        fresh = encode(new)
        check(f"a new store of {v['name']!r}'s device is {FRESH_STORED_PREKEYS_LEN} bytes",
              len(fresh) == FRESH_STORED_PREKEYS_LEN)
        published = unhex(v["stored"], "stored")
        if decode(published).next_id == 3:
            check(f"{v['name']!r} is the new store of its device", published == fresh)

    # Encrypted form.
    ek = bytes([0x42]) * 32
    nonce = bytes(range(24))
    sealed = seal(ek, nonce, good)
    E = lambda data, k=ek: (lambda: load_encrypted(k, data))  # noqa: E731
    expect("encrypted: round trip", "succeeded", E(sealed))
    check("encrypted: opens to the plain object", open_sealed(ek, sealed) == good)
    expect("encrypted: empty", C + "Truncated", E(b""))
    expect("encrypted: version byte only", C + "Truncated", E(b"\x01"))
    expect("encrypted: version 0x02 alone", "UnsupportedStoreVersion", E(b"\x02"))
    expect("encrypted: type checked before the nonce length", C + "UnexpectedType",
           E(b"\x01\x11" + nonce[:5]))
    expect("encrypted: 23 nonce bytes", C + "Truncated", E(sealed[:25]))
    expect("encrypted: nonce only", "WrongKeyOrTampered", E(sealed[:26]))
    expect("encrypted: tag cut", "WrongKeyOrTampered", E(sealed[:-1]))
    expect("encrypted: the plain object", C + "UnexpectedType", E(good))
    expect("encrypted: sealed with the session's associated data", "WrongKeyOrTampered",
           E(sealed[:26] + xchacha20poly1305_seal(ek, nonce, good, storage_ad(0x11))))
    expect("encrypted: a prekey store relabelled as a session does not open as one",
           "WrongKeyOrTampered",
           lambda: ratchet_state.open_sealed(ek, b"\x01\x11" + sealed[2:]))
    expect("encrypted: the plain decoder runs after decryption", C + "TrailingBytes",
           E(seal(ek, nonce, good + b"\x00")))
    expect("encrypted: a session-typed plain object inside", C + "UnexpectedType",
           E(seal(ek, nonce, good[:1] + b"\x10" + good[2:])))
    expect("encrypted: the nonce is authenticated", "WrongKeyOrTampered",
           E(sealed[:2] + bytes([sealed[2] ^ 1]) + sealed[3:]))
    return results
