"""Layer `stored-session-v1`: a frozen stored session (spec §7.10, format
version 1) and a message encrypted for it before body keys (§7.3, §7.11).

The file is frozen: its state must still load, and its message, whose body
was sealed under the message key `MK` itself, must now be rejected
(`AuthenticationFailed`) with the state unchanged. That the rejection comes
from the derivation alone, not from a damaged file, is checked too: opened
under `MK` (the derivation before §7.11) the body gives `plaintext`, and the
same body sealed under the body key `AK` is accepted (a rule case)."""

from __future__ import annotations

import copy

from common import Kind, ProtocolError, VectorContext
from primitives import chacha20poly1305_open, chacha20poly1305_seal
from protocol import ratchet_state
from protocol.ratchet import (_body_ad, _parse_body, decrypt, kdf_body, message_key_for,
                              parse_message)

LAYER = "stored-session-v1"


def _legacy_open(session, message: bytes, ad: bytes) -> tuple[bytes, bytes]:
    """(MK, body plaintext): steps 3-6 of §7.7 on a copy of `session`, then
    the body opened under `MK` with the all-zero nonce, as before §7.11."""
    pm = parse_message(message)
    mk = message_key_for(copy.deepcopy(session), pm)
    body = chacha20poly1305_open(mk, bytes(12), pm.enc_body, _body_ad(session.th, ad, pm.prefix, b""))
    if body is None:
        raise ProtocolError("AuthenticationFailed", "not even under MK")
    return mk, body


def check_stored_session(ctx: VectorContext) -> None:
    stored = ctx.hex("stored_state")
    message = ctx.hex("message")
    ad = ctx.hex("ad")
    try:
        session = ratchet_state.decode(stored)
    except ProtocolError as e:
        ctx.fail("stored_state", f"does not load: {e.cls} ({e.detail})")
        return
    # Canonical form (§1.3, §6.5): re-encoding gives the input.
    ctx.expect("stored_state", ratchet_state.encode(session), side="re-encoded")
    # §7.7 with the body key: the old-derivation body does not authenticate,
    # and the failed decryption changes nothing (§7.9).
    try:
        decrypt(session, message, ad)
        ctx.fail("message", "accepted, but its body is sealed under MK, not under the body key AK")
    except ProtocolError as e:
        if e.cls != "AuthenticationFailed":
            ctx.fail("message", f"rejected with {e.cls} ({e.detail}), expected AuthenticationFailed")
    ctx.expect("stored_state", ratchet_state.encode(session), side="after the rejected message")
    # The derivation before §7.11 opens it to the published plaintext.
    try:
        _, body = _legacy_open(session, message, ad)
        _, plaintext = _parse_body(body)
    except ProtocolError as e:
        ctx.fail("plaintext", f"the message does not open under MK either: {e.cls} ({e.detail})")
        return
    ctx.expect("plaintext", plaintext)


def self_test(vectors: list) -> list[tuple[str, str | None]]:
    """Rule case: the frozen message's body, sealed again under the body key
    `AK = HMAC(MK, LABEL_MESSAGE_BODY_KEY ‖ nonce)`, decrypts."""
    v = vectors[0]
    session = ratchet_state.decode(bytes.fromhex(v["stored_state"]))
    message, ad = bytes.fromhex(v["message"]), bytes.fromhex(v["ad"])
    mk, body = _legacy_open(session, message, ad)
    pm = parse_message(message)
    resealed = pm.prefix + chacha20poly1305_seal(kdf_body(mk, pm.nonce), bytes(12), body,
                                                 _body_ad(session.th, ad, pm.prefix, b""))
    try:
        got = decrypt(session, resealed, ad)
    except ProtocolError as e:
        return [("body resealed under AK", f"rejected: {e.cls} ({e.detail})")]
    want = bytes.fromhex(v["plaintext"])
    return [("body resealed under AK", None if got == want else "wrong plaintext")]


KINDS = {
    "stored-session": Kind(
        check_stored_session,
        inputs=("stored_state", "message", "ad"),
        outputs=("plaintext",),
    ),
}

EXPECTED_COUNTS = {
    "stored-session": 1,
}
