"""Layer `session-v2`: Session identity and the Session Protocol v2 formats
(spec chapter 9)."""

from __future__ import annotations

from common import Kind, ProtocolError, VectorContext, VectorFormatError, unhex
from primitives import MLKEM_PUBLIC_KEY_LEN, mlkem_check_encapsulation_key
from protocol import session_v2_bencode as bencode
from protocol.session_v2_dm import receive, send_non_pfs, send_pfs
from protocol.session_v2_group import (
    EMOJI,
    check_link_plaintext,
    decode_payload,
    decrypt_group,
    decrypt_link_request,
    encrypt_group,
    encrypt_link_request,
    is_kicked,
    parse_group_message,
    sas_indices,
)
from protocol.session_v2_identity import (
    format_session_id,
    identity_from_seed,
    mnemonic_decode,
    mnemonic_encode,
    parse_session_id,
)
from protocol.session_v2_keys import (
    KemKeys,
    account_keys,
    cache_state,
    device_keys,
    retained,
    rotation_time,
    verify_account_record,
)
from protocol.session_v2_primitives import ChaChaRng, xeddsa_verify
from protocol import session_v2_upgrade as upgrade
from layers.ratchet import expect_at

LAYER = "session-v2"

SAS_SHOWN = 7       # emoji shown (§9.10: indices 0…6)
SAS_EXTENDED = 21   # optional extended display (indices 0…20)


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

def get_int(ctx: VectorContext, fld: str) -> int:
    v = ctx.get(fld)
    if not isinstance(v, int) or isinstance(v, bool):
        raise VectorFormatError(f"field '{fld}': expected an integer")
    return v


def get_str(ctx: VectorContext, fld: str) -> str:
    v = ctx.get(fld)
    if not isinstance(v, str):
        raise VectorFormatError(f"field '{fld}': expected a string")
    return v


def seed16or32(ctx: VectorContext, fld: str) -> bytes:
    b = ctx.hex(fld)
    if len(b) not in (16, 32):
        raise VectorFormatError(f"field '{fld}': {len(b)} bytes, expected 16 or 32")
    return b


def session_id_field(ctx: VectorContext, fld: str) -> bytes:
    """A Session ID input: must itself parse (§9.5)."""
    try:
        return parse_session_id(get_str(ctx, fld))
    except ProtocolError as e:
        raise VectorFormatError(f"field '{fld}': not a Session ID ({e.cls})") from None


def expect_error_of(ctx: VectorContext, thunk, step: str) -> None:
    ctx.expect_error("error", thunk, step=step)


# --------------------------------------------------------------------------
# §9.4 recovery phrases
# --------------------------------------------------------------------------

def check_mnemonic(ctx: VectorContext) -> None:
    seed = seed16or32(ctx, "seed")
    ctx.expect_value("phrase", mnemonic_encode(seed), side="encoding")
    # The published phrase decodes back to the seed.
    try:
        if mnemonic_decode(get_str(ctx, "phrase")) != seed:
            ctx.fail("phrase", "the published phrase decodes to a different seed")
    except ProtocolError as e:
        ctx.fail("phrase", f"the published phrase is rejected: {e}")


def check_mnemonic_error(ctx: VectorContext) -> None:
    phrase = get_str(ctx, "phrase")
    expect_error_of(ctx, lambda: mnemonic_decode(phrase), "phrase decoding")


# --------------------------------------------------------------------------
# §9.5 identity and Session IDs
# --------------------------------------------------------------------------

def check_identity(ctx: VectorContext) -> None:
    ident = identity_from_seed(seed16or32(ctx, "seed"))
    ctx.expect("ed25519_pk", ident.ed25519_pk)
    ctx.expect("x25519_pk", ident.x25519_pk)
    ctx.expect("session_id", ident.session_id)
    # The published Session ID parses and is shown in lowercase.
    try:
        published = get_str(ctx, "session_id")
        parse_session_id(published)
        if published != format_session_id(ident.x25519_pk):
            ctx.fail("session_id", "not the 66 lowercase hex digits of 05 ‖ X25519 key")
    except ProtocolError as e:
        ctx.fail("session_id", f"the published Session ID is rejected: {e}")


def check_session_id_error(ctx: VectorContext) -> None:
    text = get_str(ctx, "input")
    expect_error_of(ctx, lambda: parse_session_id(text), "Session ID parsing")


# --------------------------------------------------------------------------
# §9.6 positive-alternative signatures
# --------------------------------------------------------------------------

def check_xeddsa(ctx: VectorContext) -> None:
    sid = session_id_field(ctx, "session_id")
    ok = xeddsa_verify(sid[1:], ctx.hex("message"), ctx.hex("signature", 64))
    ctx.expect_value("valid", ok, side="verification")


# --------------------------------------------------------------------------
# §9.7 keys, records, cache, rotation, retention
# --------------------------------------------------------------------------

def _check_keys(ctx: VectorContext, derive) -> None:
    keys = derive(ctx.hex("seed", 32))
    ctx.expect("x25519_pk", keys.x25519_pk)
    ctx.expect("mlkem_pk", keys.mlkem_pk)
    try:
        mlkem_check_encapsulation_key(ctx.hex("mlkem_pk", MLKEM_PUBLIC_KEY_LEN), "InvalidMlKemKey")
    except ProtocolError as e:
        ctx.fail("mlkem_pk", f"fails the FIPS 203 check: {e}")


def check_account_keys(ctx: VectorContext) -> None:
    _check_keys(ctx, account_keys)


def check_device_keys(ctx: VectorContext) -> None:
    _check_keys(ctx, device_keys)


def check_account_record(ctx: VectorContext) -> None:
    sid = session_id_field(ctx, "session_id")
    record = ctx.hex("record")
    try:
        _, x = verify_account_record(record, sid)
    except ProtocolError as e:
        ctx.fail("record", f"record rejected by the receiver: {e}")
        return
    ctx.expect("x25519_pk", x, side="record field X")
    # Canonical: the record re-encodes to the same bytes.
    if bencode.encode(bencode.decode(record)) != record:
        ctx.fail("record", "not canonical bencode")


def check_account_record_error(ctx: VectorContext) -> None:
    sid = session_id_field(ctx, "session_id")
    record = ctx.hex("record")
    expect_error_of(ctx, lambda: verify_account_record(record, sid), "record verification")


def check_cache_state(ctx: VectorContext) -> None:
    ctx.expect_value("state", cache_state(get_int(ctx, "fetched_at"), get_int(ctx, "now")))


def check_rotation_time(ctx: VectorContext) -> None:
    u, at = rotation_time(get_int(ctx, "created_at"), ctx.hex("device_id", 32),
                          ctx.hex("seed", 32), get_int(ctx, "devices"))
    ctx.expect_value("u", u)
    ctx.expect_value("rotate_at", at)


def check_retention(ctx: VectorContext) -> None:
    ctx.expect_value("kept", retained(get_int(ctx, "rotated_at"), get_int(ctx, "now")))


# --------------------------------------------------------------------------
# §9.3 bencode
# --------------------------------------------------------------------------

def check_bencode_error(ctx: VectorContext) -> None:
    data = ctx.hex("input")
    expect_error_of(ctx, lambda: bencode.decode(data), "bencode decoding")


# --------------------------------------------------------------------------
# §9.8 direct messages
# --------------------------------------------------------------------------

def _dm_parties(ctx: VectorContext):
    recipient = identity_from_seed(seed16or32(ctx, "recipient_seed"))
    account = account_keys(ctx.hex("account_seed", 32))
    return recipient, account


def _check_dm(ctx: VectorContext, pfs: bool) -> None:
    recipient, account = _dm_parties(ctx)
    sender = identity_from_seed(seed16or32(ctx, "sender_seed"))
    content = ctx.hex("content")
    rng = ChaChaRng(ctx.hex("rng_seed", 32))
    if pfs:
        msg = send_pfs(rng, sender, recipient.session_id,
                       (account.mlkem_pk, account.x25519_pk), content)
    else:
        msg = send_non_pfs(rng, sender, recipient.session_id, content)
    ctx.expect("message", msg)

    # The published message, received as §9.8 says, with the recipient's
    # account key as the only candidate.
    try:
        got = receive(ctx.hex("message"), recipient, [account])
    except ProtocolError as e:
        ctx.fail("message", f"the published message is rejected by the receiver: {e}")
        return
    if got.pfs != pfs:
        ctx.fail("message", f"opened by the {'PFS' if got.pfs else 'non-PFS'} path")
    if got.content != content:
        ctx.fail("message", "decrypts to a different content")
    if got.sender_ed25519_pk != sender.ed25519_pk:
        ctx.fail("message", "names a different sender key")
    if got.pro_signature is not None:
        ctx.fail("message", "carries an unexpected \"~P\"")
    n = len(ctx.hex("message"))
    if n < 1536 or (n - 1536) % 256:
        ctx.fail("message", f"length {n} is not 1536 + 256·N")


def check_dm_pfs(ctx: VectorContext) -> None:
    _check_dm(ctx, pfs=True)


def check_dm_non_pfs(ctx: VectorContext) -> None:
    _check_dm(ctx, pfs=False)


def check_dm_error(ctx: VectorContext) -> None:
    recipient, account = _dm_parties(ctx)
    msg = ctx.hex("message")
    expect_error_of(ctx, lambda: receive(msg, recipient, [account]), "receive")


# --------------------------------------------------------------------------
# §9.9 device group
# --------------------------------------------------------------------------

def check_device_group(ctx: VectorContext) -> None:
    account = identity_from_seed(seed16or32(ctx, "account_seed"))
    seeds = ctx.get("device_seeds")
    if not isinstance(seeds, list) or not seeds:
        raise VectorFormatError("field 'device_seeds': expected a non-empty list")
    devices = [device_keys(ctx.hex_item("device_seeds", i, 32)) for i in range(len(seeds))]
    kicked = ctx.hex("kicked_device", 32)

    # The payload: a valid, canonical payload whose live records, in
    # device-id order, carry the keys of `device_seeds`, and which holds a
    # positive tombstone for `kicked_device`.
    payload_bytes = ctx.hex("payload")
    try:
        payload = decode_payload(payload_bytes)
    except ProtocolError as e:
        ctx.fail("payload", f"payload rejected: {e}")
        return
    if bencode.encode(bencode.decode(payload_bytes)) != payload_bytes:
        ctx.fail("payload", "not canonical bencode")
    live = payload.live()
    if len(live) != len(devices):
        ctx.fail("payload", f"{len(live)} live records, {len(devices)} device seeds")
    for i, ((dev_id, rec), keys) in enumerate(zip(live, devices)):
        if rec.get(b"X") != keys.x25519_pk or rec.get(b"M") != keys.mlkem_pk:
            ctx.fail("payload", f"record {dev_id.hex()[:8]}… does not carry the keys of device_seeds[{i}]")
    if not any(i == kicked and t > 0 for i, t in payload.tombstones()):
        ctx.fail("payload", "no positive tombstone for kicked_device")

    # Encryption from rng_seed, byte for byte (§9.9.3).
    msg = encrypt_group(ChaChaRng(ctx.hex("rng_seed", 32)), account, payload)
    ctx.expect("message", msg)

    # The published message, received by every device (§9.9.4).
    published = ctx.hex("message")
    for i, keys in enumerate(devices):
        try:
            got, _ = decrypt_group(published, account.ed25519_pk, keys)
        except ProtocolError as e:
            ctx.fail("message", f"device_seeds[{i}] cannot open the published message: {e}")
            continue
        if got.raw != payload_bytes:
            ctx.fail("payload", f"device_seeds[{i}] decrypts a different payload")

    # Removal notices: found by the kicked device, by no live device.
    try:
        if not is_kicked(published, account.ed25519_pk, account.ed25519_seed, kicked):
            ctx.fail("message", "kicked_device does not find its removal notice")
        for dev_id, _ in live:
            if is_kicked(published, account.ed25519_pk, account.ed25519_seed, dev_id):
                ctx.fail("message", f"live device {dev_id.hex()[:8]}… is reported kicked")
    except ProtocolError as e:
        ctx.fail("message", f"removal check failed: {e}")


def _published_devices(ctx: VectorContext) -> dict[bytes, KemKeys]:
    """Device keys of every device seed published in the file, by X25519 key."""
    out: dict[bytes, KemKeys] = {}
    for v in ctx.all_vectors:
        seeds = []
        if v.get("kind") == "device-group" and isinstance(v.get("device_seeds"), list):
            seeds = v["device_seeds"]
        elif v.get("kind") == "device-keys":
            seeds = [v.get("seed")]
        for s in seeds:
            try:
                keys = device_keys(bytes.fromhex(s))
            except (TypeError, ValueError):
                continue
            out[keys.x25519_pk] = keys
    return out


def check_device_group_error(ctx: VectorContext) -> None:
    account = identity_from_seed(seed16or32(ctx, "account_seed"))
    x_pk = ctx.hex("device_x25519_pk", 32)
    msg = ctx.hex("message")
    known = _published_devices(ctx)
    device = known.get(x_pk)
    if device is not None:
        expect_error_of(ctx, lambda: decrypt_group(msg, account.ed25519_pk, device),
                        "group message decryption")
        return

    # The device's ML-KEM key is not published (only its X25519 key is), so
    # the hint test cannot be recomputed. Every check before decryption must
    # pass, and the message, opened by a published device, must have no
    # live record with this X25519 key: the sender made no slot for it.
    try:
        parse_group_message(msg, account.ed25519_pk)
    except ProtocolError as e:
        ctx.expect_error_class("error", e.cls, "checks before decryption")
        return
    if ctx.get("error") != "NotARecipient":
        ctx.fail("error", "the device's keys are not published in the file: "
                          f"cannot check {ctx.get('error')!r}")
        return
    for keys in known.values():
        try:
            payload, _ = decrypt_group(msg, account.ed25519_pk, keys)
        except ProtocolError:
            continue
        if any(rec.get(b"X") == x_pk for _, rec in payload.live()):
            ctx.fail("error", "MISMATCH: the device is a live recipient of the message")
        return
    ctx.fail("error", "no published device opens the message: NotARecipient cannot be checked")


# --------------------------------------------------------------------------
# §9.10 link requests and the emoji SAS
# --------------------------------------------------------------------------

def check_link_request(ctx: VectorContext) -> None:
    account = identity_from_seed(seed16or32(ctx, "account_seed"))
    plaintext = ctx.hex("plaintext")
    try:
        check_link_plaintext(plaintext)
    except ProtocolError as e:
        raise VectorFormatError(f"field 'plaintext': not a link request ({e})") from None
    ctx.expect("message", encrypt_link_request(account.ed25519_seed, plaintext))
    try:
        if decrypt_link_request(account.ed25519_seed, ctx.hex("message")) != plaintext:
            ctx.fail("message", "decrypts to a different plaintext")
    except ProtocolError as e:
        ctx.fail("message", f"the published message is rejected: {e}")
    idx = sas_indices(plaintext, SAS_EXTENDED)
    ctx.expect_value("sas_indices", idx)
    ctx.expect_value("sas_emoji", [EMOJI[j] for j in idx[:SAS_SHOWN]])


# --------------------------------------------------------------------------
# §9.11 upgrade to the ratchet
# --------------------------------------------------------------------------

UPGRADE_MESSAGE_FIELDS = ("account_seed", "plaintext", "message")
UPGRADE_DERIVED = ("transcript_hash", "upgrade_id", "root_key", "initiator_chain_key",
                   "initiator_header_key", "responder_header_key", "initiator_identity",
                   "responder_identity")
UPGRADE_OUTPUTS = ("first_content", "material", "anchor_x25519", "anchor_ephemeral",
                   "anchor_ct_hash") + UPGRADE_DERIVED + ("reply",)


def _held_keys(ctx: VectorContext) -> list[KemKeys]:
    seeds = ctx.get("account_seeds_held")
    if not isinstance(seeds, list) or not seeds:
        raise VectorFormatError("field 'account_seeds_held': expected a non-empty list")
    return [account_keys(ctx.hex_item("account_seeds_held", i, 32)) for i in range(len(seeds))]


def _upgrade_messages(ctx: VectorContext) -> list[dict]:
    msgs = ctx.get("messages")
    if not isinstance(msgs, list) or not msgs:
        raise VectorFormatError("field 'messages': expected a non-empty list")
    for i, m in enumerate(msgs):
        if not isinstance(m, dict):
            raise VectorFormatError(f"messages[{i}]: expected an object")
        for f in m:
            if f not in UPGRADE_MESSAGE_FIELDS:
                ctx.fail(f"messages[{i}].{f}", "field not known to the verifier")
        for f in UPGRADE_MESSAGE_FIELDS:
            if f not in m:
                ctx.fail(f"messages[{i}].{f}", "required field is missing")
    return msgs


def upgrade_output_paths(vector: dict) -> list[tuple]:
    paths = [(f,) for f in UPGRADE_OUTPUTS if f in vector]
    msgs = vector.get("messages")
    if isinstance(msgs, list):
        paths += [("messages", i, "message") for i, m in enumerate(msgs)
                  if isinstance(m, dict) and "message" in m]
    return paths


def _derived_values(d: upgrade.Derived) -> dict[str, bytes]:
    return {
        "transcript_hash": d.seed.transcript_hash,
        "upgrade_id": d.upgrade_id,
        "root_key": d.seed.root_key,
        "initiator_chain_key": d.seed.initiator_chain_key,
        "initiator_header_key": d.seed.initiator_header_key,
        "responder_header_key": d.seed.responder_header_key,
        "initiator_identity": d.identity_a,
        "responder_identity": d.identity_b,
    }


def check_ratchet_upgrade(ctx: VectorContext) -> None:
    alice = identity_from_seed(seed16or32(ctx, "sender_seed"))
    bob = identity_from_seed(seed16or32(ctx, "recipient_seed"))
    held = _held_keys(ctx)
    ad = ctx.hex("associated_data")
    msgs = _upgrade_messages(ctx)
    if ctx.failures:
        return
    v = ctx.vector

    # Alice (§9.11.3): every offer from one RNG, byte for byte.
    rng = ChaChaRng(ctx.hex("rng_seed", 32))
    up = None
    for i, m in enumerate(msgs):
        acct = account_keys(unhex(m["account_seed"], f"messages[{i}].account_seed", 32))
        pt = unhex(m["plaintext"], f"messages[{i}].plaintext")
        if i == 0:
            up, out, trace = upgrade.initiate(rng, alice, bob.session_id,
                                              (acct.mlkem_pk, acct.x25519_pk), pt, ad)
            a = up.offering
            ctx.expect("first_content", trace.content, side="Alice")
            ctx.expect("material", a.u)
            ctx.expect("anchor_x25519", a.x1, side="account key of messages[0].account_seed")
            ctx.expect("anchor_ephemeral", a.e1, side="Alice")
            ctx.expect("anchor_ct_hash", a.h1, side="Alice")
            for fld, val in _derived_values(trace.derived).items():
                ctx.expect(fld, val, side="Alice")
        else:
            out, _ = upgrade.encrypt_offer(rng, up, alice, (acct.mlkem_pk, acct.x25519_pk), pt, ad)
        expect_at(ctx, f"messages[{i}].message", m, "message", out)
    if up.offers_sent != len(msgs) or up.offering is None:
        ctx.fail("messages", "Alice is not offering after her offers")

    # The anchor values are E and SHA-256(ct) of the published first message.
    first = unhex(msgs[0]["message"], "messages[0].message")
    ctx.expect("anchor_ephemeral", first[4:36], side="E of messages[0].message")
    ctx.expect("anchor_ct_hash", upgrade.sha256(first[36:1124]), side="ct of messages[0].message")

    # Bob (§9.11.4) receives the published messages in order.
    bob_up = None
    for i, m in enumerate(msgs):
        where = f"messages[{i}].message"
        data = unhex(m["message"], where)
        try:
            offer = upgrade.receive_offer(data, bob, held)
            if offer is None:
                ctx.fail(where, "Bob receives an ordinary v2 message, not an offer")
                return
            if bob_up is None:
                for fld, val in _derived_values(offer.derived).items():
                    ctx.expect(fld, val, side="Bob")
                ctx.expect("first_content", offer.content, side="Bob's decrypted \"c\"")
                bob_up, got = upgrade.accept(offer, ad)
            else:
                if not ctx.expect("upgrade_id", offer.derived.upgrade_id, side=f"Bob, {where}"):
                    return
                got = upgrade.decrypt_offer(bob_up, offer, ad)
        except ProtocolError as e:
            ctx.fail(where, f"Bob rejects the published offer: {e.cls} ({e.detail})")
            return
        expect_at(ctx, f"messages[{i}].plaintext", m, "plaintext", got)

    # Bob's reply: a plain ratchet message (§7.4-§7.7 draws).
    reply_rng = ChaChaRng(ctx.hex("reply_rng_seed", 32))
    reply = upgrade.encrypt(bob_up, ctx.hex("reply_plaintext"), ad, reply_rng.bytes)
    ctx.expect("reply", reply, side="Bob")

    # Alice decrypts the published reply, which ends her offer phase.
    try:
        got = upgrade.decrypt(up, ctx.hex("reply"), ad)
    except ProtocolError as e:
        ctx.fail("reply", f"Alice rejects the published reply: {e.cls} ({e.detail})")
        return
    if got != ctx.hex("reply_plaintext"):
        ctx.fail("reply", "Alice decrypts the reply to a different plaintext")
    if up.offering is not None:
        ctx.fail("reply", "Alice is still offering after Bob's reply")


def check_ratchet_upgrade_error(ctx: VectorContext) -> None:
    bob = identity_from_seed(seed16or32(ctx, "recipient_seed"))
    held = _held_keys(ctx)
    ad = ctx.hex("associated_data")
    msg = ctx.hex("message")

    def go():
        offer = upgrade.receive_offer(msg, bob, held)
        if offer is not None:
            upgrade.accept(offer, ad)
    expect_error_of(ctx, go, "offer receive and accept")


# --------------------------------------------------------------------------
# schema
# --------------------------------------------------------------------------

KINDS = {
    "mnemonic": Kind(check_mnemonic, inputs=("seed",), outputs=("phrase",)),
    "mnemonic-error": Kind(check_mnemonic_error, inputs=("phrase",), outputs=("error",)),
    "identity": Kind(check_identity, inputs=("seed",),
                     outputs=("ed25519_pk", "x25519_pk", "session_id")),
    "session-id-error": Kind(check_session_id_error, inputs=("input",), outputs=("error",)),
    "xeddsa": Kind(check_xeddsa, inputs=("session_id", "message", "signature"),
                   outputs=("valid",)),
    "account-keys": Kind(check_account_keys, inputs=("seed",), outputs=("x25519_pk", "mlkem_pk")),
    "device-keys": Kind(check_device_keys, inputs=("seed",), outputs=("x25519_pk", "mlkem_pk")),
    "account-record": Kind(check_account_record, inputs=("session_id",),
                           outputs=("record", "x25519_pk")),
    "account-record-error": Kind(check_account_record_error, inputs=("record", "session_id"),
                                 outputs=("error",)),
    "cache-state": Kind(check_cache_state, inputs=("fetched_at", "now"), outputs=("state",)),
    "rotation-time": Kind(check_rotation_time, inputs=("created_at", "device_id", "devices", "seed"),
                          outputs=("u", "rotate_at")),
    "retention": Kind(check_retention, inputs=("rotated_at", "now"), outputs=("kept",)),
    "bencode-error": Kind(check_bencode_error, inputs=("input",), outputs=("error",)),
    "dm-pfs": Kind(check_dm_pfs,
                   inputs=("account_seed", "content", "recipient_seed", "rng_seed", "sender_seed"),
                   outputs=("message",)),
    "dm-non-pfs": Kind(check_dm_non_pfs,
                       inputs=("account_seed", "content", "recipient_seed", "rng_seed", "sender_seed"),
                       outputs=("message",)),
    "dm-error": Kind(check_dm_error, inputs=("account_seed", "message", "recipient_seed"),
                     outputs=("error",)),
    "device-group": Kind(check_device_group,
                         inputs=("account_seed", "device_seeds", "kicked_device", "rng_seed"),
                         outputs=("message", "payload")),
    "device-group-error": Kind(check_device_group_error,
                               inputs=("account_seed", "device_x25519_pk", "message"),
                               outputs=("error",)),
    "link-request": Kind(check_link_request, inputs=("account_seed", "plaintext"),
                         outputs=("message", "sas_indices", "sas_emoji")),
    "ratchet-upgrade": Kind(check_ratchet_upgrade,
                            inputs=("sender_seed", "recipient_seed", "account_seeds_held", "rng_seed",
                                    "associated_data", "messages", "reply_rng_seed",
                                    "reply_plaintext"),
                            outputs=UPGRADE_OUTPUTS, output_paths=upgrade_output_paths),
    "ratchet-upgrade-error": Kind(check_ratchet_upgrade_error,
                                  inputs=("recipient_seed", "account_seeds_held", "associated_data",
                                          "message"),
                                  outputs=("error",)),
}

EXPECTED_COUNTS = {
    "mnemonic": 3,
    "mnemonic-error": 3,
    "identity": 3,
    "session-id-error": 3,
    "xeddsa": 4,
    "account-keys": 1,
    "device-keys": 1,
    "account-record": 1,
    "account-record-error": 3,
    "cache-state": 5,
    "rotation-time": 3,
    "retention": 2,
    "bencode-error": 5,
    "dm-pfs": 2,
    "dm-non-pfs": 1,
    "dm-error": 11,
    "device-group": 3,
    "device-group-error": 4,
    "link-request": 1,
    "ratchet-upgrade": 2,
    "ratchet-upgrade-error": 6,
}


def check_file(vectors: list, fail) -> None:
    """File-level coverage: both xeddsa verdicts are exercised."""
    verdicts = {v.get("valid") for v in vectors if v.get("kind") == "xeddsa"}
    for want in (True, False):
        if want not in verdicts:
            fail(f"no xeddsa vector with valid = {want}")
