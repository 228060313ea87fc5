//! `test-vectors/ratchet.json`: a scripted conversation over the hybrid
//! double ratchet (spec chapter 7), with every message's bytes, keys,
//! header, body and plaintext, and the exact RNG bytes each step drew.

use super::{class, file, hex};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{Rng, SeedableRng, TryCryptoRng, TryRng};
use serde_json::{Value, json};
use session_ratchet::identity::DeviceIdentity;
use session_ratchet::prekey::PrekeyStore;
use session_ratchet::ratchet::{RatchetError, Session};
use std::convert::Infallible;

/// An RNG that logs every byte it hands out, so a vector can list them.
pub struct Recording {
    inner: ChaCha20Rng,
    log: Vec<u8>,
}

impl Recording {
    pub fn new(seed: [u8; 32]) -> Self {
        Self {
            inner: ChaCha20Rng::from_seed(seed),
            log: Vec::new(),
        }
    }
    pub fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.log)
    }
}

impl TryRng for Recording {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let v = self.inner.next_u32();
        self.log.extend_from_slice(&v.to_le_bytes());
        Ok(v)
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let v = self.inner.next_u64();
        self.log.extend_from_slice(&v.to_le_bytes());
        Ok(v)
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.inner.fill_bytes(dst);
        self.log.extend_from_slice(dst);
        Ok(())
    }
}

impl TryCryptoRng for Recording {}

/// The conversation's two parties and their RNGs.
pub struct Script {
    pub alice: Option<Session>,
    pub bob: Option<Session>,
    pub ra: Recording,
    pub rb: Recording,
    pub messages: Vec<Vec<u8>>,
    pub events: Vec<Value>,
    pub setup: Value,
}

pub const AD: &[u8] = b"conversation-id:demo";

impl Script {
    fn encrypt(&mut self, by_alice: bool, text: &[u8]) -> usize {
        let (s, rng, who) = if by_alice {
            (self.alice.as_mut().unwrap(), &mut self.ra, "alice")
        } else {
            (self.bob.as_mut().unwrap(), &mut self.rb, "bob")
        };
        let m = s.encrypt(rng, text, AD).unwrap();
        let t = s.hazmat_last_encryption().unwrap().clone();
        let pq_len = usize::from(u16::from_be_bytes([t.body[0], t.body[1]]));
        self.events.push(json!({
            "op": "encrypt", "by": who, "index": self.messages.len(),
            "plaintext": hex(text), "ad": hex(AD), "draws": hex(rng.take()),
            "header_key": hex(t.header_key), "message_key": hex(t.message_key),
            "body_key": hex(t.body_key),
            "header": hex(t.header), "pq_section": hex(&t.body[2..2 + pq_len]),
            "body": hex(&t.body), "message": hex(&m),
        }));
        self.messages.push(m);
        self.messages.len() - 1
    }

    fn decrypt(&mut self, by_alice: bool, index: usize) {
        let (s, who) = if by_alice {
            (self.alice.as_mut().unwrap(), "alice")
        } else {
            (self.bob.as_mut().unwrap(), "bob")
        };
        let pt = s.decrypt(&self.messages[index], AD).unwrap();
        self.events.push(json!({ "op": "decrypt", "by": who, "index": index, "ad": hex(AD), "plaintext": hex(pt) }));
    }

    fn reject(
        &mut self,
        by_alice: bool,
        name: &str,
        input: Vec<u8>,
        ad: &[u8],
        expected: RatchetError,
    ) {
        let (s, who) = if by_alice {
            (self.alice.as_mut().unwrap(), "alice")
        } else {
            (self.bob.as_mut().unwrap(), "bob")
        };
        let before = s.to_stored();
        let e = s.decrypt(&input, ad).unwrap_err();
        assert_eq!(e, expected, "{name}");
        assert_eq!(
            s.to_stored(),
            before,
            "{name}: a failed decrypt changed the state"
        );
        self.events.push(json!({
            "op": "reject", "by": who, "name": name, "input": hex(&input), "ad": hex(ad),
            "expected_error": class(&e),
        }));
    }
}

/// Runs the scripted conversation (spec §7.2–§7.8).
pub fn script() -> Script {
    let mut setup_rng = ChaCha20Rng::from_seed([0x51; 32]);
    let mut replay = super::Replay(setup_rng.clone());
    let alice_id = DeviceIdentity::generate(&mut setup_rng);
    let bob_id = DeviceIdentity::generate(&mut setup_rng);
    let mut store = PrekeyStore::new(&mut setup_rng, &bob_id);
    let otp = store
        .generate_one_time_prekeys(&mut setup_rng, &bob_id, 1)
        .unwrap()[0]
        .id();
    let bundle = store.bundle(&bob_id, Some(otp), None).unwrap();
    let setup = json!({
        "setup_rng_seed": hex([0x51u8; 32]),
        "alice_ed25519_seed": hex(replay.take(32)),
        "alice_x25519_secret": hex(replay.take(32)),
        "bob_ed25519_seed": hex(replay.take(32)),
        "bob_x25519_secret": hex(replay.take(32)),
        "bob_signed_prekey": { "id": 1, "x25519_secret": hex(replay.take(32)) },
        "bob_last_resort_kem_prekey": { "id": 2, "mlkem_seed_d_z": hex(replay.take(64)) },
        "bob_one_time_prekey": { "id": otp, "x25519_secret": hex(replay.take(32)) },
        "bundle": hex(bundle.to_bytes()),
        "alice_rng_seed": hex([0x52u8; 32]),
        "bob_rng_seed": hex([0x53u8; 32]),
    });
    let verified = bundle.verify_for(bob_id.public()).unwrap();
    let mut s = Script {
        alice: None,
        bob: None,
        ra: Recording::new([0x52; 32]),
        rb: Recording::new([0x53; 32]),
        messages: Vec::new(),
        events: Vec::new(),
        setup,
    };
    let a = Session::initiate(&mut s.ra, &alice_id, &verified).unwrap();
    s.events.push(json!({
        "op": "initiate", "by": "alice", "draws": hex(s.ra.take()),
        "transcript_hash": hex(a.transcript_hash()),
    }));
    s.alice = Some(a);

    // The first flight: two prekey messages; Bob creates the session from the first.
    let m0 = s.encrypt(true, b"Hello Bob, this is Alice.");
    let m1 = s.encrypt(true, b"Are you there?");
    let (b, pt) = Session::respond(&bob_id, &mut store, &s.messages[m0], AD).unwrap();
    s.events.push(
        json!({ "op": "respond", "by": "bob", "index": m0, "ad": hex(AD), "plaintext": hex(pt) }),
    );
    s.bob = Some(b);
    s.decrypt(false, m1);
    // Bob's first reply: a DH sending step; Alice's first receiving step.
    let m2 = s.encrypt(false, b"Hi Alice, I'm here.");
    s.decrypt(true, m2);
    // Out of order within a chain: 5, then 3; 4 is delayed (skipped key).
    let m3 = s.encrypt(true, b"message three");
    let m4 = s.encrypt(true, b"message four (late)");
    let m5 = s.encrypt(true, b"message five");
    s.decrypt(false, m5);
    s.decrypt(false, m3);
    let m6 = s.encrypt(false, b"got three and five");
    s.decrypt(true, m6);
    // A new chain from Alice; the delayed message of her old chain arrives after it.
    let m7 = s.encrypt(true, b"new chain");
    s.decrypt(false, m7);
    s.decrypt(false, m4);
    s.reject(
        false,
        "duplicate of a message from an old chain",
        s.messages[m4].clone(),
        AD,
        RatchetError::DuplicateMessage,
    );
    // Alternating turns until both sides have mixed PQ epochs.
    let mut turn = 0u32;
    while s.alice.as_ref().unwrap().pq_epochs_mixed() < 3
        || s.bob.as_ref().unwrap().pq_epochs_mixed() < 3
    {
        let by_alice = turn % 2 == 1;
        let text = format!("turn {turn}");
        let m = s.encrypt(by_alice, text.as_bytes());
        s.decrypt(!by_alice, m);
        turn += 1;
        assert!(turn < 200, "PQ epochs must complete");
    }
    // Rejections, each leaving the receiver unchanged.
    s.reject(
        false,
        "replay of a message whose chain left the window",
        s.messages[m4].clone(),
        AD,
        RatchetError::UndecryptableHeader,
    );
    let mx = s.encrypt(true, b"the last message");
    let good = s.messages[mx].clone();
    let mut t = good.clone();
    t[40] ^= 0x01;
    s.reject(
        false,
        "header byte altered",
        t,
        AD,
        RatchetError::UndecryptableHeader,
    );
    let mut t = good.clone();
    let last = t.len() - 1;
    t[last] ^= 0x01;
    s.reject(
        false,
        "body tag altered",
        t,
        AD,
        RatchetError::AuthenticationFailed,
    );
    s.reject(
        false,
        "different associated data",
        good.clone(),
        b"another conversation",
        RatchetError::AuthenticationFailed,
    );
    s.reject(
        false,
        "truncated inside the body",
        good[..100].to_vec(),
        AD,
        RatchetError::Wire(session_ratchet::wire::WireError::Truncated {
            field: "encrypted body",
        }),
    );
    s.decrypt(false, mx);
    s
}

pub fn vectors() -> Value {
    let s = script();
    let (a, b) = (s.alice.as_ref().unwrap(), s.bob.as_ref().unwrap());
    let summary = json!({
        "messages": s.messages.len(),
        "alice_pq_epochs_mixed": a.pq_epochs_mixed(),
        "bob_pq_epochs_mixed": b.pq_epochs_mixed(),
        "alice_stored_state": hex(a.to_stored().as_bytes()),
        "bob_stored_state": hex(b.to_stored().as_bytes()),
    });
    file(
        "ratchet",
        "A scripted conversation over the hybrid double ratchet (spec chapter 7): handshake setup, every encrypt with its RNG draws, keys, header, body and message bytes, every decrypt with its plaintext, rejections with the error class and the state unchanged, and both final stored states (§7.10)",
        vec![json!({
            "name": "scripted conversation",
            "kind": "conversation",
            "setup": s.setup,
            "events": s.events,
            "final": summary,
        })],
    )
}

/// The frozen stability vector (`test-vectors/stored-session-v1.json`): a
/// stored session of format version 1 and the next message it had to
/// decrypt. The committed file was written before body keys (spec §7.3,
/// §7.11): its message is sealed under the message key itself, which the
/// crate now rejects; running this again would give a message under the body
/// key, so it is never run over the committed file.
pub fn stability_vector() -> Value {
    let mut s = script();
    let stored = s.bob.as_ref().unwrap().to_stored();
    let m = s.encrypt(true, b"decrypted by a session loaded from storage");
    json!({
        "layer": "stored-session-v1",
        "description": "A stored session (spec §7.10, format version 1) and a message it must decrypt after loading. Frozen: never regenerated, so later library versions prove they still load version 1.",
        "provenance": { "generator": "cargo run --example gen_vectors -- --write-stability-vector", "crate": "session-ratchet", "crate_version": super::CRATE_VERSION },
        "vectors": [{
            "name": "bob after the scripted conversation",
            "kind": "stored-session",
            "stored_state": hex(stored.as_bytes()),
            "message": hex(&s.messages[m]),
            "ad": hex(AD),
            "plaintext": hex(b"decrypted by a session loaded from storage"),
        }],
    })
}
