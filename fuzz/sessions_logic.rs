//! Session-management targets (spec §8.6, §8.8), included by `logic.rs`.
//!
//! - `sessions_decrypt`: a live device (sessions with two accounts, a
//!   sibling, archived sessions) receives arbitrary bytes; mode 1 wraps them
//!   as a slot payload sealed for the device, so the routing header and the
//!   ratchet are reached. On error the stored device is byte-identical.
//! - `multidevice`: the network simulator (`tests/sim`) with the fuzzer's
//!   bytes as the network's randomness: accounts, loss, delays, duplicates,
//!   order, presence, link, revocation, restore. Every goal of the run must
//!   hold (every expected delivery decrypts, nothing after a revocation
//!   reaches the revoked device, duplicates are refused, pairs converge).

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{SeedableRng, TryRng};
use session_ratchet::account::Account;
use session_ratchet::device::list::{
    ClientVersion, DeviceEntry, DeviceId, DeviceListDraft, Platform, SignedDeviceList,
    VerifiedDeviceList,
};
use session_ratchet::device::record::PrekeyRecord;
use session_ratchet::envelope::Envelope;
use session_ratchet::identity::DeviceIdentity;
use session_ratchet::prekey::PrekeyStore;
use session_ratchet::sessions::{SessionManager, StoredDevice};
use std::convert::Infallible;
use std::sync::OnceLock;

#[path = "../tests/sim/mod.rs"]
mod sim;

const V: ClientVersion = ClientVersion {
    major: 1,
    minor: 0,
    patch: 0,
};

struct World {
    /// The receiving device's stored state.
    receiver: Vec<u8>,
    /// Genuine envelopes for it (some already received: replays).
    seeds: Vec<Vec<u8>>,
}

fn account(
    r: &mut ChaCha20Rng,
    n: usize,
) -> (Account, SignedDeviceList, Vec<SessionManager>, PrekeyRecord) {
    let (account, _) = Account::generate(r);
    let mut draft = DeviceListDraft::first(&account);
    let mut parts = Vec::new();
    for _ in 0..n {
        let identity = DeviceIdentity::generate(r);
        let id = DeviceId::generate(r);
        draft
            .add_device(DeviceEntry::new(
                id,
                *identity.public(),
                Platform::Ios,
                "d",
                V,
                1,
            ))
            .unwrap();
        let store = PrekeyStore::new(r, &identity);
        parts.push((identity, id, store));
    }
    let list = draft.sign(&account).unwrap();
    let verified =
        VerifiedDeviceList::trust_first_with_key(list.clone(), &account.public_key()).unwrap();
    let bundles: Vec<_> = parts
        .iter()
        .map(|(i, _, s)| s.bundle(i, None, None).unwrap())
        .collect();
    let record = PrekeyRecord::build(r, &verified, &bundles).unwrap();
    let devices = parts
        .into_iter()
        .map(|(i, id, s)| {
            let mut m = SessionManager::new(i, id, verified.clone(), s).unwrap();
            m.add_prekey_record(&account.public_key(), &record).unwrap();
            m
        })
        .collect();
    (account, list, devices, record)
}

fn introduce(
    m: &mut SessionManager,
    who: &(Account, SignedDeviceList, Vec<SessionManager>, PrekeyRecord),
) {
    let list = VerifiedDeviceList::trust_first(who.1.clone(), &who.0.session_id()).unwrap();
    m.add_contact(list).unwrap();
    m.add_prekey_record(&who.0.public_key(), &who.3).unwrap();
}

/// Alice (2 devices) talks with Bob (1) and Carol (1); Alice's first device
/// is the receiver.
fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let mut r = ChaCha20Rng::seed_from_u64(0x5E55);
        let mut alice = account(&mut r, 2);
        let mut bob = account(&mut r, 1);
        let mut carol = account(&mut r, 1);
        for m in alice.2.iter_mut() {
            introduce(m, &bob);
            introduce(m, &carol);
        }
        introduce(&mut bob.2[0], &alice);
        introduce(&mut carol.2[0], &alice);
        let (ak, bk, ck) = (
            alice.0.public_key(),
            bob.0.public_key(),
            carol.0.public_key(),
        );
        let mut seeds = Vec::new();
        let mut t = 10;
        // Bob and Carol start sessions; Alice answers; a few more rounds.
        for round in 0..3 {
            for (sender, to) in [(&mut bob.2[0], ak), (&mut carol.2[0], ak)] {
                let out = sender.encrypt(&mut r, &to, b"hello alice", t).unwrap();
                seeds.push(out.envelopes[0].clone());
            }
            t += 1;
            for e in seeds.iter().skip(seeds.len() - 2) {
                let _ = alice.2[0].decrypt(e);
            }
            let out = alice.2[1]
                .encrypt(&mut r, &bk, b"from the laptop", t)
                .unwrap();
            let _ = alice.2[0].decrypt(&out.envelopes[0]);
            seeds.push(out.envelopes[0].clone());
            if round < 2 {
                for to in [bk, ck] {
                    let out = alice.2[0].encrypt(&mut r, &to, b"hi", t).unwrap();
                    let dest = if to == bk {
                        &mut bob.2[0]
                    } else {
                        &mut carol.2[0]
                    };
                    dest.decrypt(&out.envelopes[0]).unwrap();
                }
            }
        }
        // Not yet delivered: a message still to come, and a heal.
        let out = bob.2[0].encrypt(&mut r, &ak, b"pending", t + 1).unwrap();
        seeds.push(out.envelopes[0].clone());
        let heal = carol.2[0]
            .heal_device(&mut r, &ak, alice.2[0].device_id(), t + 2)
            .unwrap();
        seeds.push(heal.envelopes[0].clone());
        World {
            receiver: alice.2[0].to_stored().as_bytes().to_vec(),
            seeds,
        }
    })
}

fn receiver() -> SessionManager {
    SessionManager::from_stored(&StoredDevice::from_bytes(&world().receiver)).unwrap()
}

/// `sessions_decrypt`: `mode ‖ bytes`. Mode even: the bytes are an envelope.
/// Mode odd: the bytes are a slot payload (routing header ‖ ratchet object)
/// sealed for the receiver. On error the receiver's stored state is
/// unchanged; on success it still stores and loads to the same bytes.
pub fn sessions_decrypt(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut device = receiver();
    let envelope = if mode & 1 == 0 {
        rest.to_vec()
    } else {
        let mut r = ChaCha20Rng::seed_from_u64(u64::from(mode));
        match Envelope::seal(&mut r, &[(device.identity().public(), rest)]) {
            Ok(e) => e.to_bytes(),
            Err(_) => return,
        }
    };
    let before = device.to_stored();
    match device.decrypt(&envelope) {
        Ok(received) => {
            let after = device.to_stored();
            let back = SessionManager::from_stored(&after).unwrap();
            assert_eq!(back.to_stored(), after, "stored device does not round-trip");
            assert!(received.content.len() <= envelope.len());
        }
        Err(_) => assert_eq!(
            device.to_stored(),
            before,
            "a failed decrypt changed the device"
        ),
    }
    assert!(device.skipped_keys_held() <= 4 * 4 * session_ratchet::ratchet::MAX_SKIPPED_KEYS);
}

/// Seeds: every genuine envelope (mode 0), and two payload-mode inputs.
pub fn sessions_decrypt_seeds() -> Vec<Vec<u8>> {
    let w = world();
    let mut out: Vec<Vec<u8>> = w
        .seeds
        .iter()
        .map(|e| {
            let mut v = vec![0u8];
            v.extend_from_slice(e);
            v
        })
        .collect();
    let device = receiver();
    if let Some(last) = w.seeds.last()
        && let Ok(payload) = Envelope::from_bytes(last).unwrap().open(device.identity())
    {
        let mut v = vec![1u8];
        v.extend_from_slice(&payload);
        out.push(v);
        let mut v = vec![3u8];
        v.extend_from_slice(&payload[..payload.len() / 2]);
        out.push(v);
    }
    out
}

/// The fuzzer's bytes as an RNG: little-endian words, zeros once exhausted.
struct Bytes {
    data: Vec<u8>,
    at: usize,
}

impl TryRng for Bytes {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        for b in dst {
            *b = self.data.get(self.at).copied().unwrap_or(0);
            self.at = self.at.saturating_add(1);
        }
        Ok(())
    }
}

/// `multidevice`: `days (1 byte, 1–4) ‖ network bytes`. Runs the simulator
/// with the fuzzer choosing every network decision; every goal must hold.
pub fn multidevice(data: &[u8]) {
    let Some((&days, rest)) = data.split_first() else {
        return;
    };
    let cfg = sim::Config {
        seed: 7,
        days: 1 + u64::from(days % 4),
    };
    let net = Box::new(Bytes {
        data: rest.to_vec(),
        at: 0,
    });
    let report = sim::run_with_network(&cfg, net);
    assert!(report.ok(), "{}", report.to_json());
}

/// Seeds: a few byte patterns (all-zero: no loss, no delay; mixed).
pub fn multidevice_seeds() -> Vec<Vec<u8>> {
    let mut r = ChaCha20Rng::seed_from_u64(0xD1CE);
    let mut random = vec![3u8];
    random.extend((0..4096).map(|_| r.try_next_u32().map_or(0, |w| w as u8)));
    vec![vec![0u8; 64], vec![1u8; 512], random]
}
