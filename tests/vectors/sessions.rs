//! `test-vectors/sessions.json`: session management across every device of
//! two accounts (spec §8.6, §8.8). One scenario, run in file order: account
//! A (devices A1, A2; A0 revoked) and account B (B1, B2, B3) are set up; A1
//! writes to B (four new sessions), B2 replies to A (a ratchet message for
//! A1, new sessions with A2, B1 and B3); B2 is then restored from a backup
//! taken before its reply and heals A. Every draw of every send is listed,
//! with each recipient's routing header, associated data, ratchet message
//! and slot payload, the envelope, and what each recipient reports. Then
//! envelopes that B1 must reject, each with its error class.
//!
//! Routing headers and associated data are rebuilt here from the spec's
//! layout (§8.6.3), independently of the library, and must equal what the
//! library put in the slots.

use super::link::class_path;
use super::{file, hex};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{Rng, SeedableRng, TryCryptoRng, TryRng};
use serde_json::{Value, json};
use session_ratchet::account::Account;
use session_ratchet::device::list::{
    ClientVersion, DeviceEntry, DeviceId, DeviceListDraft, Platform, SignedDeviceList,
    VerifiedDeviceList,
};
use session_ratchet::envelope::Envelope;
use session_ratchet::identity::{DevicePublicIdentity, Ed25519PublicKey};
use session_ratchet::prekey::{PrekeyBundle, PrekeyStore};
use session_ratchet::secret::RecoverySeed;
use session_ratchet::sessions::{ContentKind, SessionManager, SessionsError, StoredDevice};
use std::collections::BTreeMap;
use std::convert::Infallible;

/// Length of the routing header (spec §8.6.3).
pub const ROUTING_LEN: usize = 123;
/// A prekey message without one-time prekeys, minus its payload (§5.6).
pub const PREKEY_WRAPPER_LEN: usize = 2 + 64 + 32 + 4 + 1 + 4 + 1088;
/// The label of spec §3.6, spelled here independently of the library.
pub const LABEL_ENVELOPE_ROUTING: &[u8] = b"SessionRatchet/v1/envelope-routing";

/// `(account name, recovery seed, RNG seeds of its live devices, RNG seed
/// of its revoked device)`. Live devices are named by ascending device id.
pub type AccountSpec = (
    &'static str,
    [u8; 16],
    &'static [[u8; 32]],
    Option<[u8; 32]>,
);
pub const ACCOUNTS: [AccountSpec; 2] = [
    ("A", [0xa0; 16], &[[0xa1; 32], [0xa2; 32]], Some([0xa9; 32])),
    ("B", [0xb0; 16], &[[0xb1; 32], [0xb2; 32], [0xb3; 32]], None),
];
/// An account that neither A nor B knows.
pub const OUTSIDER_RECOVERY_SEED: [u8; 16] = [0xc0; 16];
/// A device id that no list names.
pub const UNKNOWN_DEVICE_ID: [u8; 32] = [0x77; 32];
/// When every device was listed, and when A0 was removed (A's list v2).
pub const LISTED_AT: u64 = 1_700_000_000;
pub const REVOKED_AT: u64 = 1_700_000_500;
pub const CLIENT_VERSION: ClientVersion = ClientVersion {
    major: 1,
    minor: 2,
    patch: 3,
};

/// `(vector name, sender, conversation account, content, now, rng seed)`.
pub type SendSpec = (
    &'static str,
    &'static str,
    &'static str,
    &'static [u8],
    u64,
    [u8; 32],
);
pub const FANOUTS: [SendSpec; 2] = [
    (
        "A1 writes to B: new sessions with B1, B2, B3 and A2",
        "A1",
        "B",
        b"Hello B, this is A1. Every device of yours and my other device get this.",
        1_700_001_000,
        [0xf1; 32],
    ),
    (
        "B2 replies to A: a ratchet message for A1, new sessions with A2, B1, B3",
        "B2",
        "A",
        b"Hi A, B2 here.",
        1_700_001_060,
        [0xf2; 32],
    ),
];
/// B2 is restored from its state at the end of the first fanout.
pub const HEAL_NAME: &str = "B2, restored from a backup taken before its reply, heals A";
pub const HEAL_DEVICE: &str = "B2";
pub const HEAL_ACCOUNT: &str = "A";
pub const RESTORE_RNG_SEED: [u8; 32] = [0xe0; 32];
pub const HEAL_RNG_SEED: [u8; 32] = [0xf3; 32];
pub const HEAL_NOW: u64 = 1_700_004_660;
/// The device that receives every `routing-error` vector.
pub const VICTIM: &str = "B1";
/// Seed of the RNG that seals the `routing-error` envelopes (their bytes
/// are published; the draws are not).
pub const NEGATIVE_RNG_SEED: [u8; 32] = [0xd0; 32];

/// An RNG that logs every draw separately, so a vector can list each one
/// with the operation that made it.
pub struct Chunks {
    inner: ChaCha20Rng,
    log: Vec<Vec<u8>>,
}

impl Chunks {
    pub fn new(seed: [u8; 32]) -> Self {
        Self {
            inner: ChaCha20Rng::from_seed(seed),
            log: Vec::new(),
        }
    }
    pub fn take(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.log)
    }
}

impl TryRng for Chunks {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let v = self.inner.next_u32();
        self.log.push(v.to_le_bytes().to_vec());
        Ok(v)
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let v = self.inner.next_u64();
        self.log.push(v.to_le_bytes().to_vec());
        Ok(v)
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.inner.fill_bytes(dst);
        self.log.push(dst.to_vec());
        Ok(())
    }
}

impl TryCryptoRng for Chunks {}

/// One device of the scenario.
pub struct Device {
    pub name: String,
    pub account: usize,
    pub rng_seed: [u8; 32],
    /// Its draws in order: Ed25519 seed, X25519 secret, device id, and for a
    /// live device the signed prekey's X25519 secret and the last-resort
    /// prekey's ML-KEM seed.
    pub draws: Vec<Vec<u8>>,
    pub id: DeviceId,
    pub public: DevicePublicIdentity,
    pub bundle: Option<Vec<u8>>,
}

pub struct World {
    pub accounts: Vec<Account>,
    pub lists: Vec<SignedDeviceList>,
    pub devices: Vec<Device>,
    pub managers: BTreeMap<String, SessionManager>,
}

impl World {
    pub fn device(&self, name: &str) -> &Device {
        self.devices.iter().find(|d| d.name == name).unwrap()
    }
    pub fn account_index(&self, name: &str) -> usize {
        ACCOUNTS.iter().position(|a| a.0 == name).unwrap()
    }
    pub fn key(&self, account: usize) -> Ed25519PublicKey {
        self.accounts[account].public_key()
    }
    /// The name of the account (or the outsider) with this key.
    pub fn account_name(&self, key: &Ed25519PublicKey) -> &'static str {
        (0..ACCOUNTS.len())
            .find(|&i| self.key(i) == *key)
            .map_or("C", |i| ACCOUNTS[i].0)
    }
    pub fn device_name(&self, id: &DeviceId) -> String {
        self.devices
            .iter()
            .find(|d| d.id == *id)
            .map(|d| d.name.clone())
            .unwrap()
    }
    /// Live devices of an account, in ascending device id order.
    pub fn live(&self, account: usize) -> Vec<&Device> {
        self.devices
            .iter()
            .filter(|d| d.account == account && d.bundle.is_some())
            .collect()
    }
}

fn make_device(seed: [u8; 32], account: usize, live: bool) -> (Device, Option<SessionParts>) {
    let mut rng = ChaCha20Rng::from_seed(seed);
    let mut replay = super::Replay(rng.clone());
    let identity = session_ratchet::identity::DeviceIdentity::generate(&mut rng);
    let id = DeviceId::generate(&mut rng);
    let mut draws = vec![replay.take(32), replay.take(32), replay.take(32)];
    let public = *identity.public();
    let (bundle, parts) = if live {
        let store = PrekeyStore::new(&mut rng, &identity);
        draws.push(replay.take(32));
        draws.push(replay.take(64));
        let bundle = store.bundle(&identity, None, None).unwrap().to_bytes();
        (Some(bundle), Some((identity, store)))
    } else {
        (None, None)
    };
    (
        Device {
            name: String::new(),
            account,
            rng_seed: seed,
            draws,
            id,
            public,
            bundle,
        },
        parts,
    )
}

type SessionParts = (session_ratchet::identity::DeviceIdentity, PrekeyStore);

fn entry(d: &Device) -> DeviceEntry {
    DeviceEntry::new(
        d.id,
        d.public,
        Platform::Android,
        &d.name,
        CLIENT_VERSION,
        LISTED_AT,
    )
}

/// Builds both accounts, their lists and every live device's manager (spec
/// §8.6: own list, the other account as contact, every other live device's
/// bundle).
pub fn setup() -> World {
    let mut accounts = Vec::new();
    let mut lists = Vec::new();
    let mut devices = Vec::new();
    let mut parts = BTreeMap::new();
    for (a, (name, recovery, live_seeds, revoked)) in ACCOUNTS.iter().enumerate() {
        let account = Account::from_recovery_seed(&RecoverySeed::from_bytes(*recovery));
        let mut live: Vec<(Device, SessionParts)> = live_seeds
            .iter()
            .map(|s| {
                let (d, p) = make_device(*s, a, true);
                (d, p.unwrap())
            })
            .collect();
        live.sort_by_key(|(d, _)| d.id);
        let mut draft = DeviceListDraft::first(&account);
        let old = revoked.map(|s| {
            let mut d = make_device(s, a, false).0;
            d.name = format!("{name}0");
            d
        });
        if let Some(d) = &old {
            draft.add_device(entry(d)).unwrap();
        }
        for (i, (d, _)) in live.iter_mut().enumerate() {
            d.name = format!("{name}{}", i + 1);
            draft.add_device(entry(d)).unwrap();
        }
        let mut list = draft.sign(&account).unwrap();
        if let Some(d) = &old {
            let held =
                VerifiedDeviceList::trust_first_with_key(list, &account.public_key()).unwrap();
            let mut draft = held.next_draft().unwrap();
            draft.remove_device(&d.id, REVOKED_AT).unwrap();
            list = draft.sign(&account).unwrap();
        }
        devices.extend(old);
        for (d, p) in live {
            parts.insert(d.name.clone(), p);
            devices.push(d);
        }
        accounts.push(account);
        lists.push(list);
    }
    let mut world = World {
        accounts,
        lists,
        devices,
        managers: BTreeMap::new(),
    };
    for (name, (identity, store)) in parts {
        let d = world.device(&name);
        let own = d.account;
        let verified =
            VerifiedDeviceList::trust_first_with_key(world.lists[own].clone(), &world.key(own))
                .unwrap();
        let mut m = SessionManager::new(identity, d.id, verified, store).unwrap();
        for (other, list) in world.lists.iter().enumerate() {
            if other != own {
                let session_id = world.accounts[other].session_id();
                m.add_contact(VerifiedDeviceList::trust_first(list.clone(), &session_id).unwrap())
                    .unwrap();
            }
        }
        for peer in world.devices.iter().filter(|p| p.name != name) {
            if let Some(bundle) = &peer.bundle {
                m.add_bundle(
                    &world.key(peer.account),
                    &peer.id,
                    PrekeyBundle::from_bytes(bundle).unwrap(),
                )
                .unwrap();
            }
        }
        world.managers.insert(name, m);
    }
    world
}

/// The routing header of spec §8.6.3, from its fields.
#[allow(clippy::too_many_arguments)]
pub fn routing_header(
    sender_account: &Ed25519PublicKey,
    sender_device: &DeviceId,
    conversation: &Ed25519PublicKey,
    sender_list_version: u64,
    conversation_list_version: u64,
    session_created: u64,
    session_flags: u8,
    kind: u8,
) -> Vec<u8> {
    let mut h = vec![0x01];
    h.extend_from_slice(&sender_account.to_bytes());
    h.extend_from_slice(sender_device.as_bytes());
    h.extend_from_slice(&conversation.to_bytes());
    h.extend_from_slice(&sender_list_version.to_be_bytes());
    h.extend_from_slice(&conversation_list_version.to_be_bytes());
    h.extend_from_slice(&session_created.to_be_bytes());
    h.push(session_flags);
    h.push(kind);
    assert_eq!(h.len(), ROUTING_LEN);
    h
}

/// The ratchet's associated data for one slot (spec §8.6.3).
pub fn associated_data(header: &[u8], account: &Ed25519PublicKey, device: &DeviceId) -> Vec<u8> {
    [
        LABEL_ENVELOPE_ROUTING,
        header,
        &account.to_bytes(),
        device.as_bytes(),
    ]
    .concat()
}

/// The error class: the path of variants from the outermost error down
/// (as in `link.json`), continued into the ratchet or handshake error that
/// `Undecryptable` and `Handshake` carry.
pub fn class(e: &SessionsError) -> String {
    match e {
        SessionsError::Undecryptable { error, .. } => {
            format!("Undecryptable/{}", class_path(error))
        }
        SessionsError::Handshake { error, .. } => format!("Handshake/{}", class_path(error)),
        e => class_path(e),
    }
}

pub fn kind_byte(k: ContentKind) -> u8 {
    match k {
        ContentKind::Message => 0x01,
        ContentKind::Heal => 0x02,
        _ => panic!("unknown kind"),
    }
}

/// What a send produced, for the negative vectors.
pub struct Sent {
    pub envelope: Vec<u8>,
    /// Slot payload per recipient name.
    pub payloads: BTreeMap<String, Vec<u8>>,
}

/// Runs one send (`content = None`: a heal) and every recipient's
/// decryption, and describes both.
fn send(
    w: &mut World,
    name: &str,
    sender: &str,
    conversation: &str,
    content: Option<&[u8]>,
    now: u64,
    seed: [u8; 32],
) -> (Value, Sent) {
    let conv = w.account_index(conversation);
    let s = w.device(sender);
    let (own, sender_id) = (s.account, s.id);
    let own_key = w.key(own);
    let conv_key = w.key(conv);
    // Recipients in §8.6.4 step 2 order: the conversation's devices, then
    // (not for a heal, §8.8) this account's others; a heal addresses only
    // the devices without an active session.
    let mut accounts = vec![conv];
    if content.is_some() && conv != own {
        accounts.push(own);
    }
    let m = &w.managers[sender];
    let mut recipients: Vec<(String, usize, DeviceId)> = Vec::new();
    let mut new: Vec<bool> = Vec::new();
    for acct in accounts {
        for d in w.live(acct) {
            let fresh = m.active_session(&w.key(acct), &d.id).is_none();
            if d.name != sender && (content.is_some() || fresh) {
                recipients.push((d.name.clone(), acct, d.id));
                new.push(fresh);
            }
        }
    }
    let sessions_before: Vec<usize> = recipients
        .iter()
        .map(|(_, a, id)| m.sessions_with(&w.key(*a), id))
        .collect();
    let mut rng = Chunks::new(seed);
    let m = w.managers.get_mut(sender).unwrap();
    let out = match content {
        Some(c) => m.encrypt(&mut rng, &conv_key, c, now).unwrap(),
        None => m.heal(&mut rng, &conv_key, now).unwrap().unwrap(),
    };
    assert_eq!(out.envelopes.len(), 1);
    assert_eq!(out.sessions_started, new.iter().filter(|n| **n).count());
    let envelope = out.envelopes[0].clone();
    let env = Envelope::from_bytes(&envelope).unwrap();

    // The draws, operation by operation (§8.6.4 steps 3–5).
    let mut chunks = rng.take().into_iter();
    let mut draws = Vec::new();
    for ((r, _, _), _) in recipients.iter().zip(&new).filter(|(_, n)| **n) {
        let c: Vec<Vec<u8>> = (0..3).map(|_| chunks.next().unwrap()).collect();
        assert!(c.iter().all(|c| c.len() == 32));
        draws.push(json!({
            "op": "initiate",
            "recipient": r,
            "ephemeral_secret": hex(&c[0]),
            "mlkem_encaps_m": hex(&c[1]),
            "ratchet_private_key": hex(&c[2]),
        }));
    }
    for (r, _, _) in &recipients {
        let mut bytes = Vec::new();
        loop {
            let c = chunks.next().unwrap();
            assert!(matches!(c.len(), 24 | 32 | 64), "{}", c.len());
            bytes.extend_from_slice(&c);
            if c.len() == 24 {
                break;
            }
        }
        draws.push(json!({ "op": "encrypt", "recipient": r, "draws": hex(&bytes) }));
    }
    let e = chunks.next().unwrap();
    assert_eq!(e.len(), 32);
    let dummies: Vec<Value> = chunks
        .map(|c| {
            assert_eq!(c.len(), 16 + env.body_len());
            hex(&c)
        })
        .collect();
    assert_eq!(dummies.len(), env.slot_count() - recipients.len());
    draws.push(json!({ "op": "seal", "ephemeral_secret": hex(&e), "dummy_slots": dummies }));

    // Each recipient's slot, rebuilt from the spec's layout.
    let kind = if content.is_some() { 0x01 } else { 0x02 };
    let sender_mgr = &w.managers[sender];
    let own_version = w.lists[own].version();
    let conv_version = w.lists[conv].version();
    let mut slots = Vec::new();
    let mut payloads = BTreeMap::new();
    for (((r, acct, id), is_new), before) in recipients.iter().zip(&new).zip(&sessions_before) {
        let identity = w.managers[r].identity();
        let payload = env.open(identity).unwrap().to_vec();
        let (header, message) = payload.split_at(ROUTING_LEN);
        let created = u64::from_be_bytes(header[113..121].try_into().unwrap());
        let heal = header[121] == 0x01;
        if *is_new {
            // §8.6.2: created = max(now, latest + 1); heal for a healing
            // call or while sessions were held (a restart).
            assert_eq!(created, now);
            assert_eq!(heal, content.is_none() || *before > 0);
        }
        let want = routing_header(
            &own_key,
            &sender_id,
            &conv_key,
            own_version,
            conv_version,
            created,
            u8::from(heal),
            kind,
        );
        assert_eq!(header, want.as_slice(), "{r}");
        assert_eq!(message[1], if *is_new { 0x02 } else { 0x04 });
        let ad = associated_data(header, &w.key(*acct), id);
        let t = sender_mgr
            .hazmat_last_encryption(&w.key(*acct), id)
            .unwrap();
        let th = sender_mgr.active_session(&w.key(*acct), id).unwrap();
        // The body is sealed under the body key (§7.3: from the message key
        // and the message's nonce) with the §7.7 associated data built from
        // this `ad`: `TH ‖ u32(len(ad)) ‖ ad ‖ prefix ‖ wrapper`.
        let (wrapper, inner) = if *is_new || message[1] == 0x02 {
            assert_eq!(message[2 + 64 + 32 + 4], 0x00, "no one-time prekeys");
            message.split_at(PREKEY_WRAPPER_LEN)
        } else {
            message.split_at(0)
        };
        let body_ad = [
            th.as_slice(),
            &(ad.len() as u32).to_be_bytes(),
            &ad,
            &inner[..86],
            wrapper,
        ]
        .concat();
        assert_eq!(
            super::envelope::seal_body(&t.body_key, &body_ad, &t.body),
            inner[86..],
            "{r}: body"
        );
        slots.push(json!({
            "device": r,
            "account": ACCOUNTS[*acct].0,
            "new_session": is_new,
            "session_created": created,
            "session_heal": heal,
            "transcript_hash": hex(th),
            "header_key": hex(t.header_key),
            "message_key": hex(t.message_key),
            "body_key": hex(t.body_key),
            "header": hex(t.header),
            "body": hex(&t.body),
            "routing_header": hex(header),
            "ad": hex(&ad),
            "ratchet_message": hex(message),
            "slot_payload": hex(&payload),
        }));
        payloads.insert(r.clone(), payload);
    }

    // Every recipient decrypts, in recipient order.
    let mut received = Vec::new();
    for (r, _, _) in &recipients {
        let got = w.managers.get_mut(r).unwrap().decrypt(&envelope).unwrap();
        assert_eq!(got.content, content.unwrap_or_default());
        let m = &w.managers[r];
        received.push(json!({
            "device": r,
            "sender": w.account_name(&got.sender),
            "sender_device": w.device_name(&got.sender_device),
            "conversation": w.account_name(&got.conversation),
            "content_kind": kind_byte(got.kind),
            "content": hex(&got.content),
            "new_session": got.new_session,
            "sender_list_newer": got.sender_list_newer,
            "recipient_list_outdated": got.recipient_list_outdated,
            "active_transcript_hash": hex(m.active_session(&own_key, &sender_id).unwrap()),
            "sessions_held": m.sessions_with(&own_key, &sender_id),
        }));
    }
    // The sender finds no slot for itself in what it sent.
    assert_eq!(
        w.managers.get_mut(sender).unwrap().decrypt(&envelope),
        Err(SessionsError::NotARecipient)
    );
    let mut v = json!({
        "name": name,
        "kind": if content.is_some() { "fanout" } else { "heal" },
        "sender": sender,
        "conversation": conversation,
        "now": now,
        "rng_seed": hex(seed),
        "draws": draws,
        "recipients": slots,
        "envelope": hex(&envelope),
        "received": received,
        "not_recipients": [sender],
    });
    if let Some(c) = content {
        v["content"] = hex(c);
    }
    (v, Sent { envelope, payloads })
}

fn setup_vector(w: &World) -> Value {
    let accounts: Vec<Value> = ACCOUNTS
        .iter()
        .enumerate()
        .map(|(i, (name, recovery, _, _))| {
            json!({
                "name": name,
                "recovery_seed": hex(recovery),
                "account_key": hex(w.key(i).to_bytes()),
                "device_list": hex(w.lists[i].to_bytes()),
            })
        })
        .collect();
    let devices: Vec<Value> = w
        .devices
        .iter()
        .map(|d| {
            let mut v = json!({
                "name": d.name,
                "account": ACCOUNTS[d.account].0,
                "rng_seed": hex(d.rng_seed),
                "ed25519_seed": hex(&d.draws[0]),
                "x25519_secret": hex(&d.draws[1]),
                "device_id": hex(&d.draws[2]),
                "public_identity": hex(d.public.to_bytes()),
            });
            assert_eq!(d.draws[2], d.id.as_bytes());
            match &d.bundle {
                Some(b) => {
                    v["signed_prekey"] = json!({ "id": 1, "x25519_secret": hex(&d.draws[3]) });
                    v["last_resort_kem_prekey"] =
                        json!({ "id": 2, "mlkem_seed_d_z": hex(&d.draws[4]) });
                    v["bundle"] = hex(b);
                }
                None => v["revoked"] = json!(true),
            }
            v
        })
        .collect();
    json!({
        "name": "accounts A and B",
        "kind": "setup",
        "accounts": accounts,
        "devices": devices,
    })
}

pub fn vectors() -> Value {
    let mut w = setup();
    let mut v = vec![setup_vector(&w)];
    let mut sent = Vec::new();
    let mut backup: Option<StoredDevice> = None;
    for (name, sender, conversation, content, now, seed) in FANOUTS {
        let (vector, s) = send(&mut w, name, sender, conversation, Some(content), now, seed);
        v.push(vector);
        sent.push(s);
        if backup.is_none() {
            backup = Some(w.managers[HEAL_DEVICE].to_stored());
        }
    }

    // B2 loses its state and is restored from the backup (spec §8.8).
    let mut restore_rng = Chunks::new(RESTORE_RNG_SEED);
    let restored = SessionManager::restore_from_backup(&mut restore_rng, &backup.unwrap()).unwrap();
    let restore_draws = restore_rng.take();
    assert_eq!(
        restore_draws.iter().map(Vec::len).collect::<Vec<_>>(),
        [32, 64]
    );
    let bundle = restored.bundle().unwrap();
    let verified = bundle.clone().verify().unwrap();
    w.managers.insert(HEAL_DEVICE.to_string(), restored);
    let (mut heal, heal_sent) = send(
        &mut w,
        HEAL_NAME,
        HEAL_DEVICE,
        HEAL_ACCOUNT,
        None,
        HEAL_NOW,
        HEAL_RNG_SEED,
    );
    heal["backup_of"] = json!(FANOUTS[0].0);
    heal["restore_rng_seed"] = hex(RESTORE_RNG_SEED);
    heal["restore_draws"] = json!({
        "signed_prekey_x25519_secret": hex(&restore_draws[0]),
        "last_resort_mlkem_seed_d_z": hex(&restore_draws[1]),
    });
    heal["restored_signed_prekey_id"] = json!(verified.signed_prekey().id());
    heal["restored_last_resort_prekey_id"] = json!(verified.kem_prekey().id());
    heal["restored_bundle"] = hex(bundle.to_bytes());
    // The healing session is active at every receiver (spec §8.6.2 rule 2).
    for (r, s) in heal["received"]
        .as_array()
        .unwrap()
        .iter()
        .zip(heal["recipients"].as_array().unwrap())
    {
        assert_eq!(r["active_transcript_hash"], s["transcript_hash"]);
    }
    v.push(heal);

    v.extend(routing_errors(&mut w, &sent[0], &heal_sent));
    file(
        "sessions",
        "Session management across every device of two accounts (spec §8.6, §8.8): fan-out with new sessions, a reply, a heal after a restore, with every draw, routing header, associated data, ratchet message, slot payload, envelope and receiver report; envelopes one device must reject, with the error class",
        v,
    )
}

/// Envelopes sealed for B1 that it must reject (spec §8.6.3, §8.6.5).
fn routing_errors(w: &mut World, first: &Sent, heal: &Sent) -> Vec<Value> {
    let a = w.key(w.account_index("A"));
    let b = w.key(w.account_index("B"));
    let outsider =
        Account::from_recovery_seed(&RecoverySeed::from_bytes(OUTSIDER_RECOVERY_SEED)).public_key();
    let (a0, a2, b1, b2) = (
        w.device("A0").id,
        w.device("A2").id,
        w.device("B1").id,
        w.device("B2").id,
    );
    // A1's genuine slot for B1 in the first fanout, and its parts.
    let genuine = &first.payloads[VICTIM];
    let (h, m1) = genuine.split_at(ROUTING_LEN);
    let m_b3 = &first.payloads["B3"][ROUTING_LEN..];
    assert_eq!(&first.payloads["B3"][..ROUTING_LEN], h);
    // A placeholder ratchet message (the minimum length, §7.7) where the
    // error is found before the message is read.
    let with_type = |t: u8| {
        let mut x = vec![0x01, t];
        x.resize(108, 0);
        x
    };
    let placeholder = with_type(0x04);
    let set = |at: usize, val: &[u8]| {
        let mut x = h.to_vec();
        x[at..at + val.len()].copy_from_slice(val);
        x
    };
    let routed =
        |account: &Ed25519PublicKey, device: &DeviceId, conv: &Ed25519PublicKey, v: u64| {
            let mut x = h.to_vec();
            x[1..33].copy_from_slice(&account.to_bytes());
            x[33..65].copy_from_slice(device.as_bytes());
            x[65..97].copy_from_slice(&conv.to_bytes());
            x[97..105].copy_from_slice(&v.to_be_bytes());
            x
        };
    let cat = |x: &[u8], y: &[u8]| [x, y].concat();
    let mut small_order = [0u8; 32];
    small_order[0] = 1;
    let unknown = DeviceId::from_bytes(UNKNOWN_DEVICE_ID);
    let a_version = w.lists[0].version();
    let b_version = w.lists[1].version();

    // A message B1 has not seen (A1 writes again, after the scenario),
    // with a routing field changed after encryption. The same RNG then seals
    // every envelope below.
    let mut rng = ChaCha20Rng::from_seed(NEGATIVE_RNG_SEED);
    let later = w
        .managers
        .get_mut("A1")
        .unwrap()
        .encrypt(&mut rng, &b, b"one more", HEAL_NOW + 60)
        .unwrap();
    let later_slot = Envelope::from_bytes(&later.envelopes[0])
        .unwrap()
        .open(w.managers[VICTIM].identity())
        .unwrap()
        .to_vec();
    let mut altered = later_slot.clone();
    altered[120] ^= 0x01; // session_created + 1

    let cases: Vec<(&str, Option<Vec<u8>>)> = vec![
        (
            "format byte 0x02",
            Some(cat(&set(0, &[0x02]), &placeholder)),
        ),
        (
            "header truncated inside the sender device",
            Some(h[..50].to_vec()),
        ),
        (
            "header truncated after a bad format byte",
            Some(set(0, &[0x02])[..50].to_vec()),
        ),
        (
            "sender account not a valid Ed25519 key",
            Some(cat(&set(1, &small_order), &placeholder)),
        ),
        (
            "session flags 0x02",
            Some(cat(&set(121, &[0x02]), &placeholder)),
        ),
        ("kind 0x03", Some(cat(&set(122, &[0x03]), &placeholder))),
        ("empty ratchet object", Some(h.to_vec())),
        ("ratchet object of one byte", Some(cat(h, &[0x01]))),
        (
            "ratchet object of wire version 2",
            Some(cat(h, &[0x02, 0x04])),
        ),
        (
            "ratchet object of another type (0x06)",
            Some(cat(h, &with_type(0x06))),
        ),
        (
            "sender account not a contact",
            Some(cat(&routed(&outsider, &unknown, &b, 1), &placeholder)),
        ),
        (
            "sender account not a contact, writing to another account",
            Some(cat(&routed(&outsider, &unknown, &a, 1), &placeholder)),
        ),
        (
            "contact writing in another conversation",
            Some(cat(
                &routed(&a, &w.device("A1").id, &a, a_version),
                &placeholder,
            )),
        ),
        (
            "own account, sent by this device",
            Some(cat(&routed(&b, &b1, &a, b_version), &placeholder)),
        ),
        (
            "own account, conversation not a contact",
            Some(cat(&routed(&b, &b2, &outsider, b_version), &placeholder)),
        ),
        (
            "sender device unknown",
            Some(cat(&routed(&a, &unknown, &b, a_version), &placeholder)),
        ),
        (
            "sender device revoked",
            Some(cat(&routed(&a, &a0, &b, a_version), &placeholder)),
        ),
        (
            "sender device unknown, sender claims a newer list",
            Some(cat(&routed(&a, &unknown, &b, a_version + 1), &placeholder)),
        ),
        (
            "prekey message of A1 attributed to A2",
            Some(cat(&routed(&a, &a2, &b, a_version), m1)),
        ),
        ("prekey message for B3 in a slot for B1", Some(cat(h, m_b3))),
        ("routing field changed after encryption", Some(altered)),
        ("envelope without a slot for B1", None),
    ];
    let victim_identity = *w.managers[VICTIM].identity().public();
    let mut out = Vec::new();
    for (name, payload) in cases {
        let envelope = match &payload {
            Some(p) => Envelope::seal(&mut rng, &[(&victim_identity, p.as_slice())])
                .unwrap()
                .to_bytes(),
            None => heal.envelope.clone(),
        };
        let m = w.managers.get_mut(VICTIM).unwrap();
        let before = m.to_stored();
        let e = m.decrypt(&envelope).unwrap_err();
        assert_eq!(m.to_stored(), before, "{name}: state changed");
        out.push(json!({
            "name": name,
            "kind": "routing-error",
            "device": VICTIM,
            "envelope": hex(&envelope),
            "slot_payload": payload.as_ref().map(hex),
            "expected_error": class(&e),
        }));
    }
    out
}
