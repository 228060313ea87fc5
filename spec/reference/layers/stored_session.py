"""Layer `stored-session-v1`: a frozen stored session (spec §7.10, format
version 1) and a message it must decrypt after loading."""

from __future__ import annotations

from common import Kind, ProtocolError, VectorContext
from protocol import ratchet_state
from protocol.ratchet import decrypt

LAYER = "stored-session-v1"


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
    try:
        plaintext = decrypt(session, message, ad)
    except ProtocolError as e:
        ctx.fail("plaintext", f"decrypting the message after loading failed: {e.cls} ({e.detail})")
        return
    ctx.expect("plaintext", plaintext)


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
