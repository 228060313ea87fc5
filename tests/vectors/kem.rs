//! `test-vectors/kem.json`: ML-KEM-768 and X-Wing on fixed seeds (spec §3.3, §3.4).

use super::{file, hex};
use serde_json::{Value, json};
use session_ratchet::kem::xwing::{self, XWingCiphertext, XWingKeyPair};
use session_ratchet::kem::{self, MlKemCiphertext, MlKemKeyPair, MlKemPublicKey};
use session_ratchet::secret::{MlKemSeed, XWingSeed};

fn seed_bytes<const N: usize>(tag: u8, i: u8) -> [u8; N] {
    core::array::from_fn(|j| {
        tag.wrapping_mul(31)
            .wrapping_add(i.wrapping_mul(17))
            .wrapping_add(j as u8)
    })
}

pub fn vectors() -> Value {
    let mut v = Vec::new();
    for i in 0..3u8 {
        let seed: [u8; 64] = seed_bytes(1, i);
        let m: [u8; 32] = seed_bytes(2, i);
        let kp = MlKemKeyPair::from_seed(MlKemSeed::hazmat_from_bytes(seed));
        let (ct, ss) = kem::hazmat_encapsulate_deterministic(kp.public_key(), &m).unwrap();
        // Implicit rejection: decapsulating a ciphertext with its first byte flipped.
        let mut bad = *ct.as_bytes();
        bad[0] ^= 0x01;
        let rejected = kp.decapsulate(&MlKemCiphertext::from_bytes(&bad).unwrap());
        v.push(json!({
            "name": format!("ml-kem-768 #{i}"),
            "kind": "ml-kem-768",
            "seed_d_z": hex(seed),
            "m": hex(m),
            "encapsulation_key": hex(kp.public_key().as_bytes()),
            "ciphertext": hex(ct.as_bytes()),
            "shared_secret": hex(ss.hazmat_bytes()),
            "modified_ciphertext_first_byte_xor_01_shared_secret": hex(rejected.hazmat_bytes()),
        }));
    }
    // An encapsulation key failing the FIPS 203 modulus check: the first
    // coefficient set to q = 3329.
    let kp = MlKemKeyPair::from_seed(MlKemSeed::hazmat_from_bytes(seed_bytes(1, 0)));
    let mut ek = *kp.public_key().as_bytes();
    ek[0] = 0x01;
    ek[1] = (ek[1] & 0xF0) | 0x0D;
    assert!(MlKemPublicKey::from_bytes(&ek).is_err());
    v.push(json!({
        "name": "ml-kem-768 encapsulation key with coefficient 3329",
        "kind": "ml-kem-768-invalid-key",
        "encapsulation_key": hex(ek),
        "expected_error": "InvalidMlKemPublicKey",
    }));

    for i in 0..3u8 {
        let seed: [u8; 32] = seed_bytes(3, i);
        let eseed: [u8; 64] = seed_bytes(4, i);
        let kp = XWingKeyPair::from_seed(XWingSeed::hazmat_from_bytes(seed));
        let (ct, ss) = xwing::hazmat_encapsulate_deterministic(kp.public_key(), &eseed).unwrap();
        assert!(kp.decapsulate(&ct).unwrap() == ss);
        v.push(json!({
            "name": format!("x-wing #{i}"),
            "kind": "x-wing",
            "seed": hex(seed),
            "eseed": hex(eseed),
            "encapsulation_key": hex(kp.public_key().to_bytes()),
            "ciphertext": hex(ct.to_bytes()),
            "shared_secret": hex(ss.hazmat_bytes()),
        }));
    }
    // A ciphertext whose X25519 half is the all-zero (low-order) point.
    let kp = XWingKeyPair::from_seed(XWingSeed::hazmat_from_bytes(seed_bytes(3, 0)));
    let (ct, _) =
        xwing::hazmat_encapsulate_deterministic(kp.public_key(), &seed_bytes(4, 0)).unwrap();
    let mut ct = ct.to_bytes();
    let n = ct.len();
    ct[n - 32..].fill(0);
    let err = kp
        .decapsulate(&XWingCiphertext::from_bytes(&ct).unwrap())
        .unwrap_err();
    v.push(json!({
        "name": "x-wing ciphertext with low-order X25519 part",
        "kind": "x-wing-decapsulation-error",
        "seed": hex(seed_bytes::<32>(3, 0)),
        "ciphertext": hex(&ct),
        "expected_error": super::class(&err),
    }));
    file(
        "kem",
        "ML-KEM-768 (FIPS 203, deterministic KeyGen_internal/Encaps_internal) and X-Wing (draft-connolly-cfrg-xwing-kem-06, seed format) on fixed inputs; spec §3.3, §3.4",
        v,
    )
}
