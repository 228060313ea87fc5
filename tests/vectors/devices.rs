//! `test-vectors/devices.json`: the account key and Session ID, signed device
//! list versions (including a revocation), the verdicts of the update rules
//! (accept, rollback, fork, bad signature, gap, unknown mandatory extension),
//! decoding errors, and a count-hiding prekey record (spec chapter 8).

use super::{Replay, class, file, hex};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use serde_json::{Value, json};
use session_ratchet::account::Account;
use session_ratchet::device::list::{
    ClientVersion, DeviceEntry, DeviceId, DeviceListDraft, Extension, Platform, SignedDeviceList,
    UpdateOutcome, VerifiedDeviceList,
};
use session_ratchet::device::record::{PrekeyRecord, SLOT_LEN};
use session_ratchet::identity::DeviceIdentity;
use session_ratchet::prekey::{PrekeyBundle, PrekeyStore};
use session_ratchet::secret::RecoverySeed;

/// The account's 16-byte recovery seed.
pub const RECOVERY_SEED: [u8; 16] = [0x5e; 16];
/// Seed of the RNG that creates the devices (identities, ids, prekey stores).
pub const DEVICE_RNG_SEED: [u8; 32] = [0xd5; 32];
/// Seed of the RNG that builds the prekey record.
pub const RECORD_RNG_SEED: [u8; 32] = [0x4e; 32];

const PLATFORMS: [Platform; 4] = [
    Platform::Android,
    Platform::Ios,
    Platform::Desktop,
    Platform::Web,
];
const DESCRIPTIONS: [&str; 4] = ["Pixel 8", "iPhone", "Work laptop — Ünïcode", "Browser"];

pub struct Scenario {
    pub account: Account,
    pub devices: Vec<DeviceIdentity>,
    pub ids: Vec<DeviceId>,
    pub bundles: Vec<PrekeyBundle>,
    /// v1 {0, 1}; v2 adds 2; v3 revokes 1.
    pub lists: Vec<SignedDeviceList>,
    /// Another version 3 (adds 3 to v2): the fork.
    pub fork_v3: SignedDeviceList,
    /// v4 after v3 with a mandatory extension this version does not know.
    pub mandatory_v4: SignedDeviceList,
}

fn entry(s_devices: &[DeviceIdentity], ids: &[DeviceId], i: usize) -> DeviceEntry {
    DeviceEntry::new(
        ids[i],
        *s_devices[i].public(),
        PLATFORMS[i],
        DESCRIPTIONS[i],
        ClientVersion {
            major: 1,
            minor: 14,
            patch: i as u16,
        },
        1_700_000_000 + 1000 * i as u64,
    )
}

pub fn scenario() -> Scenario {
    let account = Account::from_recovery_seed(&RecoverySeed::from_bytes(RECOVERY_SEED));
    let mut rng = ChaCha20Rng::from_seed(DEVICE_RNG_SEED);
    let mut devices = Vec::new();
    let mut ids = Vec::new();
    let mut bundles = Vec::new();
    for _ in 0..4 {
        let d = DeviceIdentity::generate(&mut rng);
        ids.push(DeviceId::generate(&mut rng));
        let store = PrekeyStore::new(&mut rng, &d);
        bundles.push(store.bundle(&d, None, None).unwrap());
        devices.push(d);
    }
    let mut draft = DeviceListDraft::first(&account);
    draft.add_device(entry(&devices, &ids, 0)).unwrap();
    draft.add_device(entry(&devices, &ids, 1)).unwrap();
    let v1 = draft.sign(&account).unwrap();
    let h1 = VerifiedDeviceList::trust_first(v1.clone(), &account.session_id()).unwrap();
    let mut draft = h1.next_draft().unwrap();
    draft.add_device(entry(&devices, &ids, 2)).unwrap();
    let v2 = draft.sign(&account).unwrap();
    let UpdateOutcome::Advanced(h2) = h1.accept_update(&v2, &[]).unwrap() else {
        panic!()
    };
    let mut draft = h2.next_draft().unwrap();
    draft.remove_device(&ids[1], 1_700_500_000).unwrap();
    let v3 = draft.sign(&account).unwrap();
    let mut draft = h2.next_draft().unwrap();
    draft.add_device(entry(&devices, &ids, 3)).unwrap();
    let fork_v3 = draft.sign(&account).unwrap();
    let UpdateOutcome::Advanced(h3) = h2.accept_update(&v3, &[]).unwrap() else {
        panic!()
    };
    let mut draft = h3.next_draft().unwrap();
    draft
        .add_extension(Extension::new(0x8001, b"future rule").unwrap())
        .unwrap();
    let mandatory_v4 = draft.sign(&account).unwrap();
    Scenario {
        account,
        devices,
        ids,
        bundles,
        lists: vec![v1, v2, v3],
        fork_v3,
        mandatory_v4,
    }
}

fn list_json(name: &str, l: &SignedDeviceList) -> Value {
    let devices: Vec<Value> = l
        .devices()
        .iter()
        .map(|d| {
            let v = d.client_version();
            json!({
                "id": hex(d.id().as_bytes()),
                "public_identity": hex(d.identity().to_bytes()),
                "platform": d.platform().to_byte(),
                "client_version": [v.major, v.minor, v.patch],
                "added_at": d.added_at(),
                "updated_at": d.updated_at(),
                "description": d.description(),
                "extensions": [],
            })
        })
        .collect();
    let tombstones: Vec<Value> = l
        .tombstones()
        .iter()
        .map(|t| json!({ "id": hex(t.id().as_bytes()), "removed_at": t.removed_at() }))
        .collect();
    let extensions: Vec<Value> = l
        .extensions()
        .iter()
        .map(|e| json!({ "type": e.ext_type(), "data": hex(e.data()) }))
        .collect();
    json!({
        "name": name,
        "kind": "device-list",
        "account_ed25519_pk": hex(l.account().to_bytes()),
        "version": l.version(),
        "previous_hash": hex(l.previous_hash()),
        "devices": devices,
        "tombstones": tombstones,
        "extensions": extensions,
        "list_hash": hex(l.hash()),
        "signature": hex(l.signature()),
        "encoding": hex(l.to_bytes()),
    })
}

/// The verdict of `accept_update`: `Advanced`, `Unchanged` or the error class.
pub fn verdict(
    held: &SignedDeviceList,
    session_id: &session_ratchet::account::SessionId,
    offered: &[u8],
    intermediates: &[Vec<u8>],
) -> String {
    let held = VerifiedDeviceList::trust_first(held.clone(), session_id).unwrap();
    let offered = match SignedDeviceList::from_bytes(offered) {
        Ok(l) => l,
        Err(e) => return class(&e),
    };
    let mids: Vec<SignedDeviceList> = intermediates
        .iter()
        .map(|b| SignedDeviceList::from_bytes(b).unwrap())
        .collect();
    match held.accept_update(&offered, &mids) {
        Ok(UpdateOutcome::Advanced(_)) => "Advanced".into(),
        Ok(UpdateOutcome::Unchanged) => "Unchanged".into(),
        Err(e) => class(&e),
    }
}

pub fn vectors() -> Value {
    let s = scenario();
    let sid = s.account.session_id();
    let mut v = vec![json!({
        "name": "account from a recovery seed",
        "kind": "account",
        "recovery_seed": hex(RECOVERY_SEED),
        "ed25519_pk": hex(s.account.public_key().to_bytes()),
        "session_id": sid.to_hex(),
    })];
    let names = [
        "list v1",
        "list v2 (device added)",
        "list v3 (device revoked)",
    ];
    for (name, l) in names.iter().zip(&s.lists) {
        v.push(list_json(name, l));
    }
    v.push(list_json("list v3, other branch (fork)", &s.fork_v3));
    v.push(list_json(
        "list v4 with unknown mandatory extension",
        &s.mandatory_v4,
    ));

    let enc: Vec<Vec<u8>> = s.lists.iter().map(|l| l.to_bytes()).collect();
    let mut bad_sig = enc[2].clone();
    *bad_sig.last_mut().unwrap() ^= 0x01;
    // (name, index of the held list, offered encoding, intermediate encodings)
    type Update<'a> = (&'a str, usize, Vec<u8>, Vec<Vec<u8>>);
    let updates: Vec<Update> = vec![
        ("v1 -> v2", 0, enc[1].clone(), vec![]),
        ("v2 -> v3 (revocation)", 1, enc[2].clone(), vec![]),
        (
            "v1 -> v3 bridged by v2",
            0,
            enc[2].clone(),
            vec![enc[1].clone()],
        ),
        ("v3 -> v3 again", 2, enc[2].clone(), vec![]),
        ("v1 -> v3 without v2 (gap)", 0, enc[2].clone(), vec![]),
        ("v3 -> v2 (rollback)", 2, enc[1].clone(), vec![]),
        ("v3 -> v1 (rollback)", 2, enc[0].clone(), vec![]),
        ("v3 -> other v3 (fork)", 2, s.fork_v3.to_bytes(), vec![]),
        ("v2 -> v3 with a flipped signature bit", 1, bad_sig, vec![]),
        (
            "v3 -> v4 with unknown mandatory extension",
            2,
            s.mandatory_v4.to_bytes(),
            vec![],
        ),
        (
            "v3 -> v3 truncated",
            2,
            enc[2][..enc[2].len() - 1].to_vec(),
            vec![],
        ),
    ];
    for (name, held, offered, mids) in updates {
        let expected = verdict(&s.lists[held], &sid, &offered, &mids);
        let mids_hex: Vec<Value> = mids.iter().map(hex).collect();
        v.push(json!({
            "name": name,
            "kind": "device-list-update",
            "session_id": sid.to_hex(),
            "held": names[held],
            "offered": hex(&offered),
            "intermediates": mids_hex,
            "expected": expected,
        }));
    }

    // Prekey record for v3 (devices 0 and 2), built with the record RNG.
    let held = VerifiedDeviceList::trust_first(s.lists[2].clone(), &sid).unwrap();
    let live: Vec<PrekeyBundle> = held
        .list()
        .devices()
        .iter()
        .map(|d| {
            let i = s.ids.iter().position(|x| x == d.id()).unwrap();
            s.bundles[i].clone()
        })
        .collect();
    let mut rng = ChaCha20Rng::from_seed(RECORD_RNG_SEED);
    let mut replay = Replay(rng.clone());
    let record = PrekeyRecord::build(&mut rng, &held, &live).unwrap();
    let n = live.len();
    // One draw per nonce and per dummy slot: a 1459-byte draw skips the
    // rest of its last RNG word (spec §1.5), so draws are taken one by one.
    let mut draws = Vec::new();
    for _ in 0..n {
        draws.extend(replay.take(24));
    }
    for _ in n..record.slot_count() {
        draws.extend(replay.take(SLOT_LEN));
    }
    let bundles: Vec<Value> = held
        .list()
        .devices()
        .iter()
        .zip(&live)
        .map(|(d, b)| json!({ "device_id": hex(d.id().as_bytes()), "bundle": hex(b.to_bytes()) }))
        .collect();
    v.push(json!({
        "name": "prekey record for list v3 (2 devices, 2 dummies)",
        "kind": "prekey-record",
        "list": names[2],
        "rng_seed": hex(RECORD_RNG_SEED),
        "bundles": bundles,
        "draws": hex(&draws),
        "record": hex(record.to_bytes()),
    }));
    file(
        "devices",
        "Accounts and Session IDs, signed device lists and their update verdicts, revocation, and count-hiding prekey records (spec chapter 8)",
        v,
    )
}
