#!/usr/bin/env python3
"""Independent reference for the Session v2 formats (spec chapter 9).

Written from the facts alone on top of libsodium (PyNaCl), hashlib and a pure
Python ML-KEM (kyber-py), it prints a JSON file of known answers that the Rust
test `tests/session_v2.rs` replays byte for byte:

    pip install pynacl kyber-py==1.2.0
    python3 tests/vectors/session_v2_crosscheck.py > tests/data/session_v2_python_kat.json

Every random input is fixed; where the Rust code draws randomness, the same
bytes are fed to it in the same order through a replaying RNG.
"""
import hashlib
import json
import os
import struct
import zlib

import nacl.bindings as s
from kyber_py.ml_kem import ML_KEM_768 as MLKEM

HERE_WORDS = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "src", "session_v2", "data", "session-mnemonic-english.txt"
)


def b2b(parts, size, key=b"", person=b""):
    h = hashlib.blake2b(digest_size=size, key=key, person=person)
    for p in parts:
        h.update(p)
    return h.digest()


def shake(domain, seed, n):
    return hashlib.shake_256(domain + seed).digest(n)


def bstr(b):
    return str(len(b)).encode() + b":" + b


def bint(i):
    return b"i" + str(i).encode() + b"e"


def bdict(items):
    """items: list of (key bytes, already-encoded value), sorted here."""
    return b"d" + b"".join(bstr(k) + v for k, v in sorted(items)) + b"e"


# --- identity -------------------------------------------------------------
def identity(seed):
    seed32 = seed + bytes(16) if len(seed) == 16 else seed
    pk, sk = s.crypto_sign_seed_keypair(seed32)
    return {
        "seed32": seed32,
        "ed_pk": pk,
        "ed_sk": sk,
        "x_pk": s.crypto_sign_ed25519_pk_to_curve25519(pk),
        "x_sk": s.crypto_sign_ed25519_sk_to_curve25519(sk),
    }


def ed_sign(sk, msg):
    return s.crypto_sign(msg, sk)[:64]


# --- mnemonic -------------------------------------------------------------
WORDS = [w for w in open(HERE_WORDS).read().split("\n")[3:] if w]


def mnemonic(b):
    n = len(WORDS)
    out = []
    for i in range(0, len(b), 4):
        v = int.from_bytes(b[i:i + 4], "little")
        a = v % n
        bb = (v // n + a) % n
        c = (v // n // n + bb) % n
        out += [WORDS[a], WORDS[bb], WORDS[c]]
    prefixes = "".join(w[:3] for w in out)
    out.append(out[zlib.crc32(prefixes.encode()) % len(out)])
    return " ".join(out)


# --- positive-alternative signature (libsodium ops, as deployed code) ------
def xed_sign(x_sk, msg, z):
    big_a = bytearray(s.crypto_scalarmult_ed25519_base(x_sk))
    negative = big_a[31] >> 7
    big_a[31] &= 0x7F
    a = s.crypto_core_ed25519_scalar_negate(x_sk) if negative else x_sk
    r = s.crypto_core_ed25519_scalar_reduce(b2b([a, msg, z], 64, person=b"xed25519signatur"))
    big_r = s.crypto_scalarmult_ed25519_base_noclamp(r)
    k = s.crypto_core_ed25519_scalar_reduce(hashlib.sha512(big_r + bytes(big_a) + msg).digest())
    sig_s = s.crypto_core_ed25519_scalar_add(s.crypto_core_ed25519_scalar_mul(k, a), r)
    return big_r + sig_s


# --- key expansion ----------------------------------------------------------
def key_pair(domain, seed):
    out = shake(domain, seed, 96)
    x_sk, d, z = out[:32], out[32:64], out[64:]
    ek, dk = MLKEM._keygen_internal(d, z)
    return {"x_sk": x_sk, "x_pk": s.crypto_scalarmult_base(x_sk), "M": ek, "dk": dk}


# --- XChaCha20 (raw, counter 0) ---------------------------------------------
def _rotl(v, c):
    return ((v << c) & 0xFFFFFFFF) | (v >> (32 - c))


def _qr(x, a, b, c, d):
    x[a] = (x[a] + x[b]) & 0xFFFFFFFF; x[d] = _rotl(x[d] ^ x[a], 16)
    x[c] = (x[c] + x[d]) & 0xFFFFFFFF; x[b] = _rotl(x[b] ^ x[c], 12)
    x[a] = (x[a] + x[b]) & 0xFFFFFFFF; x[d] = _rotl(x[d] ^ x[a], 8)
    x[c] = (x[c] + x[d]) & 0xFFFFFFFF; x[b] = _rotl(x[b] ^ x[c], 7)


def _rounds(x):
    for _ in range(10):
        _qr(x, 0, 4, 8, 12); _qr(x, 1, 5, 9, 13); _qr(x, 2, 6, 10, 14); _qr(x, 3, 7, 11, 15)
        _qr(x, 0, 5, 10, 15); _qr(x, 1, 6, 11, 12); _qr(x, 2, 7, 8, 13); _qr(x, 3, 4, 9, 14)


CONST = list(struct.unpack("<4I", b"expand 32-byte k"))


def hchacha20(key, n16):
    x = CONST + list(struct.unpack("<8I", key)) + list(struct.unpack("<4I", n16))
    _rounds(x)
    return struct.pack("<8I", *(x[0:4] + x[12:16]))


def xchacha20_xor(key, nonce, data):
    sub = hchacha20(key, nonce[:16])
    out = bytearray()
    counter = 0
    while len(out) < len(data):
        st = CONST + list(struct.unpack("<8I", sub)) + [counter & 0xFFFFFFFF, counter >> 32] + list(struct.unpack("<2I", nonce[16:]))
        x = st[:]
        _rounds(x)
        block = struct.pack("<16I", *((x[i] + st[i]) & 0xFFFFFFFF for i in range(16)))
        out += block
        counter += 1
    return bytes(a ^ b for a, b in zip(data, out))


def aead(key, nonce, msg):
    return s.crypto_aead_xchacha20poly1305_ietf_encrypt(msg, None, nonce, key)


# --- replayed randomness ------------------------------------------------------
class Stream:
    """Deterministic bytes; also mirrors the Rust permutation algorithm."""

    def __init__(self, label):
        self.data = hashlib.shake_256(label).digest(1 << 16)
        self.pos = 0
        self.used = bytearray()

    def take(self, n):
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        self.used += b
        return b

    def index(self, n):
        if n <= 1:
            return 0
        mask = (1 << (n - 1).bit_length()) - 1
        while True:
            c = int.from_bytes(self.take(8), "little") & mask
            if c < n:
                return c

    def permutation(self, n):
        p = list(range(n))
        for i in range(n - 1, 0, -1):
            j = self.index(i + 1)
            p[i], p[j] = p[j], p[i]
        return p


# --- v2 direct message --------------------------------------------------------
XWING_LABEL = b"\\.//^\\"


def dm_inner(sender, recipient_sid, content, pro=None):
    body = b"d" + bstr(b"S") + bstr(sender["ed_pk"]) + bstr(b"c") + bstr(content)
    sig = ed_sign(sender["ed_sk"], b2b([body], 64, key=recipient_sid, person=b"SessionV2Message"))
    body += bstr(b"~") + bstr(sig)
    if pro is not None:
        body += bstr(b"~P") + bstr(ed_sign(pro["ed_sk"], body))
    return body + b"e"


def dm_seal(ki, big_e, slot, key, nonce, inner):
    final = max(1536, 1140 + len(inner))
    final = (final + 255) // 256 * 256
    padded = inner + bytes(final - 1140 - len(inner))
    return b"\x00\x02" + ki + big_e + slot + aead(key, nonce, padded)


def dm_pfs(sender, recipient, keys, content, e, coins, pro=None):
    big_e = s.crypto_scalarmult_base(e)
    sid = b"\x05" + recipient["x_pk"]
    kiss = b2b([big_e, recipient["x_pk"]], 2, key=s.crypto_scalarmult(e, recipient["x_pk"]), person=b"Session-Msg-KISS")
    ki = bytes([keys["M"][0] ^ kiss[0], keys["M"][1] ^ kiss[1]])
    ss_m, ct = MLKEM._encaps_internal(keys["M"], coins)
    ss_x = s.crypto_scalarmult(e, keys["x_pk"])
    ss = hashlib.sha3_256(ss_m + ss_x + big_e + keys["x_pk"] + XWING_LABEL).digest()
    kn = shake(b"SessionV2MessageSS", ss, 56)
    return dm_seal(ki, big_e, ct, kn[:32], kn[32:], dm_inner(sender, sid, content, pro))


def dm_non_pfs(sender, recipient, content, e, ki, slot):
    big_e = s.crypto_scalarmult_base(e)
    r = recipient["x_pk"]
    ss = hashlib.sha3_256(s.crypto_scalarmult(e, r) + r + big_e + b"SessionV2NonPFS").digest()
    kn = shake(b"SessionV2NonPFSSS", ss, 56)
    return dm_seal(ki, big_e, slot, kn[:32], kn[32:], dm_inner(sender, b"\x05" + r, content))


# --- device group ---------------------------------------------------------------
def record(rec):
    items = [(b"#", bint(rec["seq"])), (b"@", bint(rec["ts"])), (b"M", bstr(rec["M"])), (b"X", bstr(rec["X"])), (b"d", bstr(rec["desc"]))]
    if rec["type"]:
        items.append((b"t", bstr(rec["type"])))
    if rec["version"]:
        items.append((b"v", bint(rec["version"])))
    items += rec.get("extra", [])
    return bdict(items)


def payload(devices, tombstones, account_keys):
    devs = [(i, record(r)) for i, r in devices] + [(i, bint(t)) for i, t in tombstones]
    ks = b"l" + b"".join(bdict([(b"c", bint(c)), (b"s", bstr(seed))]) for c, seed in account_keys) + b"e"
    return bdict([(b"D", bdict(devs)), (b"K", ks)])


def group_encrypt(account, devices, tombstones, account_keys, rng):
    a = rng.take(32)
    big_a = s.crypto_scalarmult_base(a)
    removed = sorted(i for i, t in tombstones if t > 0)
    kslots = (len(removed) + 3) // 4 * 4
    kperm = rng.permutation(kslots)
    kicked = bytearray(rng.take(16 * kslots))
    for i, dev in enumerate(removed):
        kicked[16 * kperm[i]:16 * kperm[i] + 16] = b2b([account["seed32"], dev], 16, key=big_a, person=b"SessionDevKicked")
    recips = sorted(devices)
    n = len(recips)
    slots = (n + 3) // 4 * 4
    pos = rng.permutation(slots)
    cts = bytearray(1088 * slots)
    sss = []
    for i, (_, rec) in enumerate(recips):
        ss, c = MLKEM._encaps_internal(rec["M"], rng.take(32))
        cts[1088 * pos[i]:1088 * pos[i] + 1088] = c
        sss.append(ss)
    for i in range(n, slots):
        cts[1088 * pos[i]:1088 * pos[i] + 1088] = rng.take(1088)
    cts = bytes(cts)
    pnonce = b2b([cts], 24, key=big_a, person=b"SessionDevDNonce")
    key_base = rng.take(32)
    plain = payload(devices, tombstones, account_keys)
    buckets = max(1, -(-(len(plain) - min(len(plain), 2300)) // 6400))
    plain += bytes(2300 + 6400 * buckets - len(plain))
    enc = aead(key_base, pnonce, plain)
    keys = bytearray(34 * slots)
    for i, (_, rec) in enumerate(recips):
        c = cts[1088 * pos[i]:1088 * pos[i] + 1088]
        ab = s.crypto_scalarmult(a, rec["X"])
        knonce = b2b([c, enc], 24, key=big_a, person=b"SessionDevKNonce")
        k = b2b([ab, big_a, rec["X"], sss[i], rec["M"]], 32, person=b"SessionDevKeyKey")
        ek = xchacha20_xor(k, knonce, key_base)
        hint = b2b([big_a, rec["X"], rec["M"], c, ek], 2, person=b"SessionDevKeyIdx")
        keys[34 * pos[i]:34 * pos[i] + 34] = hint + ek
    for i in range(n, slots):
        keys[34 * pos[i]:34 * pos[i] + 2] = rng.take(2)
        keys[34 * pos[i] + 2:34 * pos[i] + 34] = rng.take(32)
    items = [(b"", bstr(b"G")), (b"A", bstr(big_a)), (b"C", bstr(cts)), (b"K", bstr(bytes(keys))), (b"d", bstr(enc))]
    if kicked:
        items.append((b"k", bstr(bytes(kicked))))
    body = bdict(items)[:-1]
    return body + bstr(b"~") + bstr(ed_sign(account["ed_sk"], body)) + b"e"


# --- link request + SAS -------------------------------------------------------------
def link_encrypt(account, plain):
    key = b2b([account["seed32"], struct.pack(">Q", len(plain)), b"link-request"], 32)
    nonce = b2b([plain], 24, key=b"libsessionutil-config-encrypted-link-request")
    return bdict([(b"", bstr(b"L")), (b"L", bstr(aead(key, nonce, plain) + nonce))])


def sas(m):
    salt = b2b([m], 16, person=b"SessionLinkEmoji")
    seed = s.crypto_pwhash_alg(16, m, salt, 2, 16 * 1024 * 1024, s.crypto_pwhash_ALG_ARGON2ID13)
    v = int.from_bytes(seed, "little")
    return seed, [(v >> (6 * j)) & 63 for j in range(21)]


def main():
    h = lambda b: b.hex()
    out = {"identities": [], "xeddsa": []}
    seeds = [bytes(range(16)), bytes([0xFF] * 16), bytes([0x42] * 16), bytes(range(32))]
    for seed in seeds:
        idn = identity(seed)
        z = bytes([0x5A]) * 64
        msg = b"positive alternative known answer"
        out["identities"].append({
            "seed": h(seed), "ed25519_pk": h(idn["ed_pk"]), "x25519_pk": h(idn["x_pk"]),
            "x25519_sk": h(idn["x_sk"]), "session_id": "05" + h(idn["x_pk"]),
            "ed25519_sign_bit": idn["ed_pk"][31] >> 7, "mnemonic": mnemonic(seed),
        })
        out["xeddsa"].append({"seed": h(seed), "message": h(msg), "z": h(z), "signature": h(xed_sign(idn["x_sk"], msg, z))})

    alice, bob, pro = identity(bytes([1] * 16)), identity(bytes([2] * 16)), identity(bytes([0x33] * 32))
    acct_seed = bytes([0x11] * 32)
    keys = key_pair(b"SessionAccountKeys", acct_seed)
    z = bytes([0x77] * 64)
    body = bdict([(b"M", bstr(keys["M"])), (b"X", bstr(keys["x_pk"]))])[:-1]
    rec = body + bstr(b"~") + bstr(xed_sign(bob["x_sk"], body, z)) + b"e"
    out["account_keys"] = {"seed": h(acct_seed), "x25519_pk": h(keys["x_pk"]), "mlkem_pk": h(keys["M"]),
                           "owner_seed": h(bytes([2] * 16)), "record_z": h(z), "record": h(rec)}
    dev_keys = key_pair(b"SessionDeviceKeys", bytes([0x12] * 32))
    out["device_keys"] = {"seed": h(bytes([0x12] * 32)), "x25519_pk": h(dev_keys["x_pk"]), "mlkem_pk": h(dev_keys["M"])}

    e, coins = bytes([0x21] * 32), bytes([0x22] * 32)
    out["dm_pfs"] = {"sender_seed": h(bytes([1] * 16)), "recipient_seed": h(bytes([2] * 16)), "account_seed": h(acct_seed),
                     "content": h(b"cross-check content"), "rng": h(e + coins),
                     "message": h(dm_pfs(alice, bob, keys, b"cross-check content", e, coins))}
    big = bytes(range(256)) * 3
    out["dm_pfs_pro"] = {"pro_seed": h(bytes([0x33] * 32)), "content": h(big), "rng": h(e + coins),
                         "message": h(dm_pfs(alice, bob, keys, big, e, coins, pro))}
    e2, ki, slot = bytes([0x23] * 32), bytes([0x24, 0x25]), bytes([0x26] * 1088)
    out["dm_non_pfs"] = {"content": h(b"fallback content"), "rng": h(e2 + ki + slot),
                         "message": h(dm_non_pfs(alice, bob, b"fallback content", e2, ki, slot))}

    account = identity(bytes([0x31] * 16))
    devices = []
    for i in range(3):
        kp = key_pair(b"SessionDeviceKeys", bytes([0x40 + i] * 32))
        rec = {"seq": 3 + i, "ts": 1_750_000_000 + i, "M": kp["M"], "X": kp["x_pk"], "desc": ["Phone", "Desktop é", ""][i].encode(),
               "type": [b"i", b"d", b"custom-client"][i], "version": [2025000, 0, 3000007][i]}
        if i == 0:
            rec["extra"] = [(b"zz", b"li1ei2e3:abce")]
        devices.append((bytes([0x50 + i] * 32), rec))
    tombstones = [(bytes([0x60] * 32), 1_749_000_000)]
    rng = Stream(b"session-v2 device group cross-check")
    msg = group_encrypt(account, devices, tombstones, [(1_740_000_000, acct_seed)], rng)
    out["device_group"] = {"account_seed": h(bytes([0x31] * 16)), "device_seeds": [h(bytes([0x40 + i] * 32)) for i in range(3)],
                           "rng": h(bytes(rng.used)), "payload": h(payload(devices, tombstones, [(1_740_000_000, acct_seed)])),
                           "message": h(msg), "kicked_device": h(bytes([0x60] * 32))}

    link_plain = bdict([(b"I", bstr(bytes([0x70] * 32))), (b"i", record(devices[0][1]))])
    seed16, idx = sas(link_plain)
    out["link"] = {"account_seed": h(bytes([0x31] * 16)), "plaintext": h(link_plain),
                   "message": h(link_encrypt(account, link_plain)), "sas_seed": h(seed16), "sas_indices": idx}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
