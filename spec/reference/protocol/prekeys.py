"""Identities, prekeys, bundles and the prekey store (spec chapter 4), with
the signature inputs of §6.4 and the decoding rules of §6.5."""

from __future__ import annotations

from dataclasses import dataclass, field

from common import ProtocolError, Reader, ascii_, check_flags, u8, u16, u32
from primitives import (
    MLKEM_PUBLIC_KEY_LEN,
    SIGNATURE_LEN,
    X25519_KEY_LEN,
    ed25519_check_public_key,
    ed25519_public,
    ed25519_sign,
    ed25519_verify_strict,
    mlkem_check_encapsulation_key,
    mlkem_keygen,
    x25519_public,
)

# §3.6 label registry and signature type tags.
LABEL_PREKEY_SIGNATURE = ascii_("SessionRatchet/v1/prekey-signature")
LABEL_DEVICE_CERTIFICATE = ascii_("SessionRatchet/v1/device-certificate")

TAG_SIGNED_PREKEY = 0x01
TAG_LAST_RESORT_KEM_PREKEY = 0x02
TAG_ONE_TIME_KEM_PREKEY = 0x03
TAG_DEVICE_CERTIFICATE = 0x10

# §6.2 object types.
TYPE_BUNDLE = 0x01
TYPE_PREKEY_MESSAGE = 0x02
TYPE_DEVICE_CERTIFICATE = 0x03

# §6.5: a key inside a wire object that fails the §3.3 check.
WIRE_MLKEM_KEY_ERROR = "InvalidMlKemKey"

PUBLIC_IDENTITY_LEN = 64

# §4.5 store bounds.
MAX_SIGNED_PREKEYS = 3
MAX_LAST_RESORT_PREKEYS = 3
MAX_ONE_TIME_PREKEYS = 1000
MAX_BASE_KEYS_PER_LAST_RESORT = 4096


def signature_input(label: bytes, type_tag: int, fields: list[bytes]) -> bytes:
    """§6.4."""
    out = u16(len(label)) + label + u8(type_tag)
    for f in fields:
        out += u16(len(f)) + f
    return out


def prekey_sig_input(type_tag: int, ik_pub: bytes, prekey_id: int, key: bytes) -> bytes:
    """§4.3."""
    return signature_input(LABEL_PREKEY_SIGNATURE, type_tag, [ik_pub, u32(prekey_id), key])


# --------------------------------------------------------------------------
# §4.1 device identity
# --------------------------------------------------------------------------

@dataclass
class DeviceIdentity:
    ed25519_seed: bytes
    x25519_secret: bytes

    @property
    def iks_pub(self) -> bytes:
        return ed25519_public(self.ed25519_seed)

    @property
    def ik_pub(self) -> bytes:
        return x25519_public(self.x25519_secret)

    @property
    def public_identity(self) -> bytes:
        return self.iks_pub + self.ik_pub

    def sign(self, msg: bytes) -> bytes:
        return ed25519_sign(self.ed25519_seed, msg)


def split_public_identity(pi: bytes) -> tuple[bytes, bytes]:
    assert len(pi) == PUBLIC_IDENTITY_LEN
    return pi[:32], pi[32:]


def check_public_identity(pi: bytes) -> None:
    """Key check of §4.1: IKS_pub as §3.2; IK_pub is any 32 bytes."""
    ed25519_check_public_key(pi[:32])


# --------------------------------------------------------------------------
# §4.4 prekey bundle
# --------------------------------------------------------------------------

BUNDLE_FLAG_OPK = 0x01
BUNDLE_FLAG_PQOPK = 0x02


@dataclass
class Bundle:
    public_identity: bytes
    spk_id: int
    spk_pub: bytes
    spk_sig: bytes
    pqlr_id: int
    pqlr_pub: bytes
    pqlr_sig: bytes
    opk: tuple[int, bytes] | None = None                 # (id, pub)
    pqopk: tuple[int, bytes, bytes] | None = None        # (id, pub, sig)

    def encode(self) -> bytes:
        flags = (BUNDLE_FLAG_OPK if self.opk else 0) | (BUNDLE_FLAG_PQOPK if self.pqopk else 0)
        out = (u8(0x01) + u8(TYPE_BUNDLE) + self.public_identity
               + u32(self.spk_id) + self.spk_pub + self.spk_sig
               + u32(self.pqlr_id) + self.pqlr_pub + self.pqlr_sig + u8(flags))
        if self.opk:
            out += u32(self.opk[0]) + self.opk[1]
        if self.pqopk:
            out += u32(self.pqopk[0]) + self.pqopk[1] + self.pqopk[2]
        return out

    @classmethod
    def decode(cls, b: bytes) -> "Bundle":
        """§4.4 with the §6.5 order: length, version, type, every field with a
        bounds check, flags, keys, trailing bytes."""
        r = Reader(b, TYPE_BUNDLE, "bundle")
        pi = r.take(PUBLIC_IDENTITY_LEN, "public_identity")
        spk_id = r.take_u32("SPK id")
        spk_pub = r.take(X25519_KEY_LEN, "SPK_pub")
        spk_sig = r.take(SIGNATURE_LEN, "SPK signature")
        pqlr_id = r.take_u32("PQLR id")
        pqlr_pub = r.take(MLKEM_PUBLIC_KEY_LEN, "PQLR_pub")
        pqlr_sig = r.take(SIGNATURE_LEN, "PQLR signature")
        flags = r.take(1, "flags")[0]
        opk = pqopk = None
        if flags & BUNDLE_FLAG_OPK:
            opk = (r.take_u32("OPK id"), r.take(X25519_KEY_LEN, "OPK_pub"))
        if flags & BUNDLE_FLAG_PQOPK:
            pqopk = (r.take_u32("PQOPK id"), r.take(MLKEM_PUBLIC_KEY_LEN, "PQOPK_pub"),
                     r.take(SIGNATURE_LEN, "PQOPK signature"))
        check_flags(flags, BUNDLE_FLAG_OPK | BUNDLE_FLAG_PQOPK, "bundle")
        check_public_identity(pi)
        mlkem_check_encapsulation_key(pqlr_pub, WIRE_MLKEM_KEY_ERROR)
        if pqopk:
            mlkem_check_encapsulation_key(pqopk[1], WIRE_MLKEM_KEY_ERROR)
        if r.remaining():
            raise ProtocolError("TrailingBytes", f"bundle: {r.remaining()} bytes")
        return cls(pi, spk_id, spk_pub, spk_sig, pqlr_id, pqlr_pub, pqlr_sig, opk, pqopk)

    def verify(self, expected_identity: bytes | None = None) -> None:
        """§4.4 verification, in the listed order."""
        iks_pub, ik_pub = split_public_identity(self.public_identity)
        ed25519_verify_strict(iks_pub, prekey_sig_input(TAG_SIGNED_PREKEY, ik_pub, self.spk_id,
                                                        self.spk_pub), self.spk_sig)
        ed25519_verify_strict(iks_pub, prekey_sig_input(TAG_LAST_RESORT_KEM_PREKEY, ik_pub,
                                                        self.pqlr_id, self.pqlr_pub), self.pqlr_sig)
        if self.pqopk:
            pid, pub, sig = self.pqopk
            ed25519_verify_strict(iks_pub, prekey_sig_input(TAG_ONE_TIME_KEM_PREKEY, ik_pub,
                                                            pid, pub), sig)
        if expected_identity is not None and expected_identity != self.public_identity:
            raise ProtocolError("IdentityMismatch")

    # The PQ prekey used by a handshake (§4.4): PQOPK if present, else PQLR.
    def pq_prekey_used(self) -> tuple[int, int, bytes]:
        """(kind, id, key) with kind 1 = last resort, 2 = one-time (§5.3)."""
        if self.pqopk:
            return PQ_KIND_ONE_TIME, self.pqopk[0], self.pqopk[1]
        return PQ_KIND_LAST_RESORT, self.pqlr_id, self.pqlr_pub


PQ_KIND_LAST_RESORT = 1
PQ_KIND_ONE_TIME = 2


# --------------------------------------------------------------------------
# §4.5 prekey store (private side)
# --------------------------------------------------------------------------

@dataclass
class LastResortEntry:
    seed_d_z: bytes
    base_keys: set = field(default_factory=set)


@dataclass
class PrekeyStore:
    """The responder's store. Keys are ids; values are the secrets (X25519
    private keys, ML-KEM 64-byte seeds)."""

    signed: dict = field(default_factory=dict)          # id -> x25519 secret
    last_resort: dict = field(default_factory=dict)     # id -> LastResortEntry
    one_time: dict = field(default_factory=dict)        # id -> x25519 secret
    one_time_kem: dict = field(default_factory=dict)    # id -> mlkem seed

    def add_signed(self, pid: int, secret: bytes) -> None:
        self.signed[pid] = secret
        while len(self.signed) > MAX_SIGNED_PREKEYS:
            del self.signed[min(self.signed)]

    def add_last_resort(self, pid: int, seed: bytes) -> None:
        self.last_resort[pid] = LastResortEntry(seed)
        while len(self.last_resort) > MAX_LAST_RESORT_PREKEYS:
            del self.last_resort[min(self.last_resort)]

    def add_one_time(self, pid: int, secret: bytes) -> None:
        if len(self.one_time) >= MAX_ONE_TIME_PREKEYS:
            raise ValueError("MAX_ONE_TIME_PREKEYS reached")  # class not named by §4.5
        self.one_time[pid] = secret

    def add_one_time_kem(self, pid: int, seed: bytes) -> None:
        if len(self.one_time_kem) >= MAX_ONE_TIME_PREKEYS:
            raise ValueError("MAX_ONE_TIME_PREKEYS reached")  # class not named by §4.5
        self.one_time_kem[pid] = seed


def bundle_for(identity: DeviceIdentity, spk: tuple[int, bytes], pqlr: tuple[int, bytes],
               opk: tuple[int, bytes] | None, pqopk: tuple[int, bytes] | None) -> Bundle:
    """Build and sign a bundle from the device's secrets (§4.3, §4.4)."""
    ik_pub = identity.ik_pub
    spk_id, spk_secret = spk
    spk_pub = x25519_public(spk_secret)
    pqlr_id, pqlr_seed = pqlr
    pqlr_pub, _ = mlkem_keygen(pqlr_seed)
    b = Bundle(
        identity.public_identity,
        spk_id, spk_pub,
        identity.sign(prekey_sig_input(TAG_SIGNED_PREKEY, ik_pub, spk_id, spk_pub)),
        pqlr_id, pqlr_pub,
        identity.sign(prekey_sig_input(TAG_LAST_RESORT_KEM_PREKEY, ik_pub, pqlr_id, pqlr_pub)),
    )
    if opk is not None:
        b.opk = (opk[0], x25519_public(opk[1]))
    if pqopk is not None:
        pid, seed = pqopk
        pub, _ = mlkem_keygen(seed)
        b.pqopk = (pid, pub, identity.sign(prekey_sig_input(TAG_ONE_TIME_KEM_PREKEY, ik_pub, pid, pub)))
    return b
