"""Layer `kem`: ML-KEM-768 (spec §3.3) and X-Wing (spec §3.4)."""

from __future__ import annotations

from common import Kind, VectorContext
from primitives import (
    MLKEM_PUBLIC_KEY_LEN,
    MLKEM_SEED_LEN,
    XWING_CIPHERTEXT_LEN,
    XWING_SEED_LEN,
    mlkem_check_encapsulation_key,
    mlkem_decaps,
    mlkem_encaps,
    mlkem_keygen,
    xwing_decaps,
    xwing_encaps,
    xwing_public_key,
)

LAYER = "kem"

# Error class of the §3.3 input check when applied to a bare ML-KEM key.
MLKEM_KEY_ERROR = "InvalidMlKemPublicKey"


def check_ml_kem(ctx: VectorContext) -> None:
    seed = ctx.hex("seed_d_z", MLKEM_SEED_LEN)
    m = ctx.hex("m", 32)
    ek, _ = mlkem_keygen(seed)
    ctx.expect("encapsulation_key", ek)
    mlkem_check_encapsulation_key(ek, MLKEM_KEY_ERROR)
    ct, ss = mlkem_encaps(ek, m)
    ctx.expect("ciphertext", ct)
    ctx.expect("shared_secret", ss)
    # Decapsulation recovers the secret; a ciphertext with its first byte
    # XORed with 0x01 gives the implicit-rejection secret.
    ctx.expect("shared_secret", mlkem_decaps(seed, ct), side="decapsulation")
    modified = bytes([ct[0] ^ 0x01]) + ct[1:]
    ctx.expect("modified_ciphertext_first_byte_xor_01_shared_secret",
               mlkem_decaps(seed, modified))


def check_ml_kem_invalid_key(ctx: VectorContext) -> None:
    ek = ctx.hex("encapsulation_key", MLKEM_PUBLIC_KEY_LEN)
    ctx.expect_error("expected_error",
                     lambda: mlkem_check_encapsulation_key(ek, MLKEM_KEY_ERROR),
                     step="FIPS 203 §7.2 check")


def check_x_wing(ctx: VectorContext) -> None:
    seed = ctx.hex("seed", XWING_SEED_LEN)
    eseed = ctx.hex("eseed", 64)
    pk = xwing_public_key(seed)
    ctx.expect("encapsulation_key", pk)
    ct, ss = xwing_encaps(pk, eseed, MLKEM_KEY_ERROR)
    ctx.expect("ciphertext", ct)
    ctx.expect("shared_secret", ss)
    ctx.expect("shared_secret", xwing_decaps(seed, ct), side="decapsulation")


def check_x_wing_decaps_error(ctx: VectorContext) -> None:
    seed = ctx.hex("seed", XWING_SEED_LEN)
    ct = ctx.hex("ciphertext", XWING_CIPHERTEXT_LEN)
    ctx.expect_error("expected_error", lambda: xwing_decaps(seed, ct),
                     step="X-Wing decapsulation")


KINDS = {
    "ml-kem-768": Kind(
        check_ml_kem,
        inputs=("seed_d_z", "m"),
        outputs=("encapsulation_key", "ciphertext", "shared_secret",
                 "modified_ciphertext_first_byte_xor_01_shared_secret"),
    ),
    "ml-kem-768-invalid-key": Kind(
        check_ml_kem_invalid_key,
        inputs=("encapsulation_key",),
        outputs=("expected_error",),
    ),
    "x-wing": Kind(
        check_x_wing,
        inputs=("seed", "eseed"),
        outputs=("encapsulation_key", "ciphertext", "shared_secret"),
    ),
    "x-wing-decapsulation-error": Kind(
        check_x_wing_decaps_error,
        inputs=("seed", "ciphertext"),
        outputs=("expected_error",),
    ),
}

# Number of vectors of each kind the published file holds. A change in the
# generator that adds or drops vectors must be reflected here.
EXPECTED_COUNTS = {
    "ml-kem-768": 3,
    "ml-kem-768-invalid-key": 1,
    "x-wing": 3,
    "x-wing-decapsulation-error": 1,
}
