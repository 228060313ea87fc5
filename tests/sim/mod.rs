//! A deterministic, seeded network simulator that drives real accounts and
//! devices through the crate's public API (spec §8.6, §8.8).
//!
//! Model (one step = one simulated hour):
//! - 2–4 accounts with 1–5 devices each; every account is a contact of every
//!   other; each pair's first devices write to each other in the very first
//!   step (simultaneous first messages).
//! - Store-and-forward: an envelope is posted to the conversation's mailbox
//!   and to the sender's own mailbox; per mailbox it is lost with the run's
//!   loss rate (0–30 %), delayed 0–6 hours, duplicated with probability 5 %;
//!   devices fetch what is available in random order (reordering); items
//!   expire 14 days after posting.
//! - Devices go offline for hours, and some for up to 14 days.
//! - Scripted mid-run events: a device is linked (the §8.5 exchange, SAS
//!   compared), a device is revoked (and
//!   keeps trying to read and write, as a thief would), a device is restored
//!   from a backup at least a week old.
//! - Devices sync device lists and prekey records from a directory once a
//!   day, and at once when a decrypt says a list is outdated or a send says
//!   prekeys are missing.
//!
//! Accounting: a *delivery* is one device-copy of an application message
//! that reached a device that was a recipient when it was sent, within the
//! TTL, not a duplicate. Copies encrypted to state that a restore destroyed
//! (sent before the sender learned of the restore) and copies reaching a
//! device after its revocation are counted apart, not as deliveries.
#![allow(dead_code)]

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use session_ratchet::account::Account;
use session_ratchet::device::link::{LinkGrant, LinkInitiator, PendingLink};
use session_ratchet::device::list::{
    ClientVersion, DeviceEntry, DeviceId, DeviceListDraft, Platform, SignedDeviceList,
    VerifiedDeviceList,
};
use session_ratchet::device::record::PrekeyRecord;
use session_ratchet::identity::{DeviceIdentity, Ed25519PublicKey};
use session_ratchet::prekey::{PrekeyBundle, PrekeyStore};
use session_ratchet::sessions::{ContentKind, SessionManager, SessionsError, StoredDevice};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::rc::Rc;

const HOUR: u64 = 3600;
const DAY: u64 = 24 * HOUR;
const TTL: u64 = 14 * DAY;
const START: u64 = 1_767_225_600; // 2026-01-01
const V: ClientVersion = ClientVersion {
    major: 1,
    minor: 0,
    patch: 0,
};

/// What a run is asked to do.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) seed: u64,
    pub(crate) days: u64,
}

/// What a run measured.
#[derive(Clone, Debug, Default)]
pub(crate) struct Report {
    pub(crate) seed: u64,
    pub(crate) days: u64,
    pub(crate) accounts: usize,
    pub(crate) devices: usize,
    pub(crate) loss: f64,
    pub(crate) messages_sent: u64,
    pub(crate) deliveries_expected: u64,
    pub(crate) deliveries_decrypted: u64,
    pub(crate) decrypt_failures: BTreeMap<String, u64>,
    pub(crate) send_failures: BTreeMap<String, u64>,
    pub(crate) session_resets: u64,
    pub(crate) sessions_started: u64,
    pub(crate) max_skipped_keys_held: usize,
    pub(crate) max_state_bytes_per_device: usize,
    pub(crate) envelope_bytes_p50: usize,
    pub(crate) envelope_bytes_p99: usize,
    pub(crate) envelopes: u64,
    pub(crate) links: u64,
    pub(crate) revocations: u64,
    pub(crate) restores: u64,
    pub(crate) duplicates_rejected: u64,
    pub(crate) duplicates_accepted: u64,
    pub(crate) expired_undelivered: u64,
    pub(crate) lost_in_network: u64,
    pub(crate) copies_to_lost_state: u64,
    pub(crate) copies_to_lost_state_decrypted: u64,
    pub(crate) revoked_decrypts_after_revocation: u64,
    pub(crate) revoked_sender_rejected: u64,
    pub(crate) revoked_device_send_refused: u64,
    pub(crate) revoked_sender_accepted_before_list_sync: u64,
    pub(crate) not_for_device: u64,
    pub(crate) unconverged_pairs: u64,
}

impl Report {
    /// The run met its goals.
    pub(crate) fn ok(&self) -> bool {
        self.deliveries_decrypted == self.deliveries_expected
            && self.revoked_decrypts_after_revocation == 0
            && self.duplicates_accepted == 0
            && self.unconverged_pairs == 0
            && self.send_failures.is_empty()
            && self.session_resets <= self.restores * self.devices.saturating_sub(1) as u64
    }

    pub(crate) fn to_json(&self) -> String {
        let map = |m: &BTreeMap<String, u64>| -> String {
            let v: Vec<String> = m.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
            v.join(",")
        };
        format!(
            concat!(
                "{{\"seed\":{},\"days\":{},\"accounts\":{},\"devices\":{},\"loss\":{:.3},",
                "\"messages_sent\":{},\"deliveries_expected\":{},\"deliveries_decrypted\":{},",
                "\"decrypt_failures\":{{{}}},\"send_failures\":{{{}}},\"session_resets\":{},\"sessions_started\":{},",
                "\"max_skipped_keys_held\":{},\"max_state_bytes_per_device\":{},",
                "\"envelope_bytes_p50\":{},\"envelope_bytes_p99\":{},\"envelopes\":{},",
                "\"links\":{},\"revocations\":{},\"restores\":{},",
                "\"duplicates_rejected\":{},\"duplicates_accepted\":{},",
                "\"expired_undelivered\":{},\"lost_in_network\":{},",
                "\"copies_to_lost_state\":{},\"copies_to_lost_state_decrypted\":{},",
                "\"revoked_decrypts_after_revocation\":{},\"revoked_sender_rejected\":{},\"revoked_device_send_refused\":{},",
                "\"revoked_sender_accepted_before_list_sync\":{},\"not_for_device\":{},",
                "\"unconverged_pairs\":{},\"ok\":{}}}"
            ),
            self.seed,
            self.days,
            self.accounts,
            self.devices,
            self.loss,
            self.messages_sent,
            self.deliveries_expected,
            self.deliveries_decrypted,
            map(&self.decrypt_failures),
            map(&self.send_failures),
            self.session_resets,
            self.sessions_started,
            self.max_skipped_keys_held,
            self.max_state_bytes_per_device,
            self.envelope_bytes_p50,
            self.envelope_bytes_p99,
            self.envelopes,
            self.links,
            self.revocations,
            self.restores,
            self.duplicates_rejected,
            self.duplicates_accepted,
            self.expired_undelivered,
            self.lost_in_network,
            self.copies_to_lost_state,
            self.copies_to_lost_state_decrypted,
            self.revoked_decrypts_after_revocation,
            self.revoked_sender_rejected,
            self.revoked_device_send_refused,
            self.revoked_sender_accepted_before_list_sync,
            self.not_for_device,
            self.unconverged_pairs,
            self.ok(),
        )
    }
}

/// The network's randomness: a seeded ChaCha20 stream, or (under fuzzing)
/// the fuzzer's bytes.
pub(crate) type Net = Box<dyn Rng>;

fn chance(rng: &mut Net, p: f64) -> bool {
    ((rng.next_u64() >> 11) as f64) / ((1u64 << 53) as f64) < p
}

fn below(rng: &mut Net, n: u64) -> u64 {
    if n == 0 { 0 } else { rng.next_u64() % n }
}

struct Dev {
    acct: usize,
    id: DeviceId,
    mgr: SessionManager,
    offline_until: u64,
    seen: BTreeSet<u64>,
    revoked_at: Option<u64>,
    /// Restores this device went through.
    restores: u32,
    backups: Vec<(u64, StoredDevice)>,
    /// `known_restores[d]`: restores of device `d` this device has learned of
    /// (from a new session it started).
    known_restores: HashMap<usize, u32>,
    /// App messages this device decrypted (to spot accepted duplicates).
    decrypted: BTreeSet<u64>,
    last_sync: u64,
}

impl Dev {
    fn new(acct: usize, id: DeviceId, mgr: SessionManager, now: u64, seen: BTreeSet<u64>) -> Self {
        Self {
            acct,
            id,
            mgr,
            offline_until: 0,
            seen,
            revoked_at: None,
            restores: 0,
            backups: Vec::new(),
            known_restores: HashMap::new(),
            decrypted: BTreeSet::new(),
            last_sync: now,
        }
    }
}

struct Acct {
    account: Account,
    devices: Vec<usize>,
    lists: Vec<SignedDeviceList>,
    bundles: BTreeMap<DeviceId, PrekeyBundle>,
    record: PrekeyRecord,
}

struct Item {
    id: u64,
    env: Rc<Vec<u8>>,
    posted: u64,
    available: u64,
    msg: Option<u64>,
}

struct Msg {
    sender: usize,
    sent_at: u64,
    /// Target device → the restore count the sender knew for it.
    targets: HashMap<usize, u32>,
    sender_revoked: bool,
}

struct World {
    crypto: ChaCha20Rng,
    net: Net,
    now: u64,
    loss: f64,
    devs: Vec<Dev>,
    accts: Vec<Acct>,
    by_id: HashMap<DeviceId, usize>,
    mailboxes: Vec<Vec<Item>>,
    msgs: HashMap<u64, Msg>,
    /// (receiver, sender) device pairs where a message got through.
    talked: BTreeSet<(usize, usize)>,
    /// (device, message) pairs already counted, for duplicates.
    counted: BTreeSet<(usize, u64)>,
    next_item: u64,
    next_msg: u64,
    envelope_sizes: Vec<usize>,
    report: Report,
    /// The settling phase: no loss, no delay, no duplicates.
    reliable: bool,
}

fn err_name(e: &SessionsError) -> String {
    match e {
        SessionsError::Undecryptable { error, .. } => format!("Undecryptable/{error:?}"),
        SessionsError::Handshake { error, .. } => format!("Handshake/{error:?}"),
        SessionsError::Envelope(e) => format!("Envelope/{e:?}"),
        other => {
            let s = format!("{other:?}");
            s.split([' ', '(', '{']).next().unwrap_or("?").to_string()
        }
    }
}

impl World {
    fn new(cfg: &Config, mut net: Net) -> Self {
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&cfg.seed.to_le_bytes());
        let crypto = ChaCha20Rng::from_seed(seed);
        let n_accts = 2 + below(&mut net, 3) as usize;
        let loss = below(&mut net, 31) as f64 / 100.0;
        let mut w = World {
            crypto,
            net,
            now: START,
            loss,
            devs: Vec::new(),
            accts: Vec::new(),
            by_id: HashMap::new(),
            mailboxes: (0..n_accts).map(|_| Vec::new()).collect(),
            msgs: HashMap::new(),
            counted: BTreeSet::new(),
            talked: BTreeSet::new(),
            next_item: 0,
            next_msg: 0,
            envelope_sizes: Vec::new(),
            reliable: false,
            report: Report {
                seed: cfg.seed,
                days: cfg.days,
                accounts: n_accts,
                loss,
                ..Report::default()
            },
        };
        for a in 0..n_accts {
            // Leave room for the link event: at most 4 devices at the start.
            let n = 1 + below(&mut w.net, 4) as usize;
            w.create_account(a, n);
        }
        for d in 0..w.devs.len() {
            let acct = w.devs[d].acct;
            for b in 0..n_accts {
                if b != acct {
                    let list = VerifiedDeviceList::trust_first(
                        w.accts[b].lists.last().unwrap().clone(),
                        &w.accts[b].account.session_id(),
                    )
                    .unwrap();
                    w.devs[d].mgr.add_contact(list).unwrap();
                }
            }
            w.fetch_records(d);
            let stored = w.devs[d].mgr.to_stored();
            w.devs[d].backups.push((w.now, stored));
        }
        w
    }

    fn create_account(&mut self, a: usize, n: usize) {
        let (account, _) = Account::generate(&mut self.crypto);
        let mut draft = DeviceListDraft::first(&account);
        let mut parts = Vec::new();
        for _ in 0..n {
            let identity = DeviceIdentity::generate(&mut self.crypto);
            let id = DeviceId::generate(&mut self.crypto);
            draft
                .add_device(DeviceEntry::new(
                    id,
                    *identity.public(),
                    Platform::Android,
                    "d",
                    V,
                    self.now,
                ))
                .unwrap();
            let store = PrekeyStore::new(&mut self.crypto, &identity);
            parts.push((identity, id, store));
        }
        let list = draft.sign(&account).unwrap();
        let verified =
            VerifiedDeviceList::trust_first_with_key(list.clone(), &account.public_key()).unwrap();
        let mut bundles = BTreeMap::new();
        for (identity, id, store) in &parts {
            bundles.insert(*id, store.bundle(identity, None, None).unwrap());
        }
        let all: Vec<_> = bundles.values().cloned().collect();
        let record = PrekeyRecord::build(&mut self.crypto, &verified, &all).unwrap();
        let mut devices = Vec::new();
        for (identity, id, store) in parts {
            let mgr = SessionManager::new(identity, id, verified.clone(), store).unwrap();
            self.by_id.insert(id, self.devs.len());
            devices.push(self.devs.len());
            self.devs
                .push(Dev::new(a, id, mgr, self.now, BTreeSet::new()));
        }
        self.accts.push(Acct {
            account,
            devices,
            lists: vec![list],
            bundles,
            record,
        });
    }

    fn key(&self, a: usize) -> Ed25519PublicKey {
        self.accts[a].account.public_key()
    }

    fn acct_of(&self, key: &Ed25519PublicKey) -> usize {
        (0..self.accts.len())
            .find(|&a| self.key(a) == *key)
            .unwrap()
    }

    fn rebuild_record(&mut self, a: usize) {
        let list = VerifiedDeviceList::trust_first_with_key(
            self.accts[a].lists.last().unwrap().clone(),
            &self.key(a),
        )
        .unwrap();
        let live: Vec<DeviceId> = list.list().devices().iter().map(|d| *d.id()).collect();
        self.accts[a].bundles.retain(|id, _| live.contains(id));
        let all: Vec<_> = self.accts[a].bundles.values().cloned().collect();
        self.accts[a].record = PrekeyRecord::build(&mut self.crypto, &list, &all).unwrap();
    }

    fn fetch_records(&mut self, d: usize) {
        for a in 0..self.accts.len() {
            let key = self.key(a);
            let record = self.accts[a].record.clone();
            // A list older than the record's: the record's new slots stay unopened.
            let _ = self.devs[d].mgr.add_prekey_record(&key, &record);
        }
    }

    /// Brings every list the device holds up to the directory's.
    fn sync_lists(&mut self, d: usize) {
        for a in 0..self.accts.len() {
            let key = self.key(a);
            let held = match self.devs[d].mgr.device_list(&key) {
                Some(l) => l.list().version(),
                None => continue,
            };
            let lists = &self.accts[a].lists;
            let latest = lists.last().unwrap();
            if latest.version() > held {
                let inter: Vec<_> = lists[held as usize..lists.len() - 1].to_vec();
                self.devs[d].mgr.update_device_list(latest, &inter).unwrap();
            }
        }
        self.fetch_records(d);
        self.devs[d].last_sync = self.now;
    }

    fn online(&self, d: usize) -> bool {
        self.devs[d].offline_until <= self.now
    }

    fn post(&mut self, a: usize, env: &Rc<Vec<u8>>, msg: Option<u64>) {
        if self.reliable {
            self.mailboxes[a].push(Item {
                id: self.next_item,
                env: Rc::clone(env),
                posted: self.now,
                available: self.now,
                msg,
            });
            self.next_item += 1;
            return;
        }
        if chance(&mut self.net, self.loss) {
            self.report.lost_in_network += 1;
            return;
        }
        let copies = if chance(&mut self.net, 0.05) { 2 } else { 1 };
        for _ in 0..copies {
            let delay = below(&mut self.net, 6 * HOUR);
            self.mailboxes[a].push(Item {
                id: self.next_item,
                env: Rc::clone(env),
                posted: self.now,
                available: self.now + delay,
                msg,
            });
            self.next_item += 1;
        }
    }

    /// Counts sessions started; a new session between two devices that had
    /// already exchanged a message is a reset.
    fn note_starts(&mut self, d: usize, before: &HashMap<usize, usize>, started: usize) {
        self.report.sessions_started += started as u64;
        for (&t, &n) in before {
            let key = self.key(self.devs[t].acct);
            let id = self.devs[t].id;
            let talked = self.talked.contains(&(d, t)) || self.talked.contains(&(t, d));
            if talked && self.devs[d].mgr.sessions_with(&key, &id) > n {
                self.report.session_resets += 1;
            }
        }
    }

    fn session_counts(&self, d: usize) -> HashMap<usize, usize> {
        let mut out = HashMap::new();
        for (t, dev) in self.devs.iter().enumerate() {
            if t != d {
                let key = self.key(dev.acct);
                out.insert(t, self.devs[d].mgr.sessions_with(&key, &dev.id));
            }
        }
        out
    }

    fn send(&mut self, d: usize, to: usize) {
        let conv = self.key(to);
        let own = self.devs[d].acct;
        // The recipients, as the sender's lists name them.
        let mut targets = HashMap::new();
        for a in [to, own] {
            if let Some(list) = self.devs[d].mgr.device_list(&self.key(a)) {
                for e in list.list().devices() {
                    if let Some(&t) = self.by_id.get(e.id())
                        && t != d
                    {
                        let known = self.devs[d].known_restores.get(&t).copied().unwrap_or(0);
                        targets.insert(t, known);
                    }
                }
            }
        }
        let before = self.session_counts(d);
        let msg_id = self.next_msg;
        self.next_msg += 1;
        let content = format!("m{msg_id}").into_bytes();
        let mut out = self.devs[d]
            .mgr
            .encrypt(&mut self.crypto, &conv, &content, self.now);
        if let Err(SessionsError::MissingPrekeys { .. }) = out {
            self.sync_lists(d);
            out = self.devs[d]
                .mgr
                .encrypt(&mut self.crypto, &conv, &content, self.now);
        }
        let out = match out {
            Ok(o) => o,
            Err(SessionsError::ThisDeviceRevoked) if self.devs[d].revoked_at.is_some() => {
                // The thief saw its own revocation: the library refuses to send.
                self.report.revoked_device_send_refused += 1;
                return;
            }
            Err(e) => {
                *self.report.send_failures.entry(err_name(&e)).or_default() += 1;
                return;
            }
        };
        self.note_starts(d, &before, out.sessions_started);
        self.report.messages_sent += 1;
        self.msgs.insert(
            msg_id,
            Msg {
                sender: d,
                sent_at: self.now,
                targets,
                sender_revoked: self.devs[d].revoked_at.is_some(),
            },
        );
        for env in out.envelopes {
            self.envelope_sizes.push(env.len());
            let env = Rc::new(env);
            self.post(to, &env, Some(msg_id));
            if to != own {
                self.post(own, &env, Some(msg_id));
            }
        }
    }

    fn heal(&mut self, d: usize) {
        for a in 0..self.accts.len() {
            let key = self.key(a);
            let before = self.session_counts(d);
            let mut out = self.devs[d].mgr.heal(&mut self.crypto, &key, self.now);
            if let Err(SessionsError::MissingPrekeys { .. }) = out {
                self.sync_lists(d);
                out = self.devs[d].mgr.heal(&mut self.crypto, &key, self.now);
            }
            match out {
                Ok(Some(out)) => {
                    self.note_starts(d, &before, out.sessions_started);
                    // A healing notice goes to that account's mailbox only.
                    for env in out.envelopes {
                        self.envelope_sizes.push(env.len());
                        let env = Rc::new(env);
                        self.post(a, &env, None);
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    *self
                        .report
                        .send_failures
                        .entry(format!("heal/{}", err_name(&e)))
                        .or_default() += 1;
                }
            }
        }
    }

    fn fetch(&mut self, d: usize) {
        let a = self.devs[d].acct;
        let now = self.now;
        let mut ready: Vec<usize> = (0..self.mailboxes[a].len())
            .filter(|&i| {
                let it = &self.mailboxes[a][i];
                it.available <= now && it.posted + TTL > now && !self.devs[d].seen.contains(&it.id)
            })
            .collect();
        // Random order: the network reorders.
        for i in (1..ready.len()).rev() {
            let j = below(&mut self.net, i as u64 + 1) as usize;
            ready.swap(i, j);
        }
        for i in ready {
            let (id, env, msg) = {
                let it = &self.mailboxes[a][i];
                (it.id, Rc::clone(&it.env), it.msg)
            };
            self.devs[d].seen.insert(id);
            self.deliver(d, &env, msg);
        }
    }

    fn deliver(&mut self, d: usize, env: &[u8], msg: Option<u64>) {
        let mut result = self.devs[d].mgr.decrypt(env);
        if matches!(
            result,
            Err(SessionsError::DeviceListOutdated { .. })
                | Err(SessionsError::UnknownSenderDevice { .. })
        ) {
            self.sync_lists(d);
            result = self.devs[d].mgr.decrypt(env);
        }
        if let Ok(r) = &result {
            self.talked.insert((d, self.by_id[&r.sender_device]));
        }
        if let Ok(r) = &result
            && r.new_session
        {
            let s = self.by_id[&r.sender_device];
            let restores = self.devs[s].restores;
            self.devs[d].known_restores.insert(s, restores);
        }
        let Some(m) = msg else { return };
        let info = &self.msgs[&m];
        let target = info.targets.get(&d).copied();
        if self.devs[d].revoked_at.is_some() {
            // A revoked device may read what was sent while its sender still
            // listed it; anything sent after must stay closed to it.
            if target.is_none() && result.is_ok() {
                self.report.revoked_decrypts_after_revocation += 1;
            }
            return;
        }
        let Some(known) = target else {
            if result.is_ok() {
                *self
                    .report
                    .decrypt_failures
                    .entry("decrypted_by_non_recipient".into())
                    .or_default() += 1;
            } else {
                self.report.not_for_device += 1;
            }
            return;
        };
        if !self.counted.insert((d, m)) {
            match result {
                Ok(_) => self.report.duplicates_accepted += 1,
                Err(_) => self.report.duplicates_rejected += 1,
            }
            return;
        }
        // A revoked device's messages are refused once the recipient holds
        // the list that removed it, whenever they were sent (spec §8.3).
        if let Err(SessionsError::RevokedSender { .. }) = result {
            self.report.revoked_sender_rejected += 1;
            return;
        }
        if info.sender_revoked
            || self.devs[info.sender]
                .revoked_at
                .is_some_and(|at| info.sent_at >= at)
        {
            match result {
                Err(SessionsError::RevokedSender { .. }) => {
                    self.report.revoked_sender_rejected += 1
                }
                Ok(_) => self.report.revoked_sender_accepted_before_list_sync += 1,
                Err(e) => {
                    *self
                        .report
                        .decrypt_failures
                        .entry(format!("from_revoked/{}", err_name(&e)))
                        .or_default() += 1
                }
            }
            return;
        }
        if self.devs[d].restores > known {
            self.report.copies_to_lost_state += 1;
            if result.is_ok() {
                self.report.copies_to_lost_state_decrypted += 1;
            }
            return;
        }
        self.report.deliveries_expected += 1;
        match result {
            Ok(r) => {
                debug_assert_eq!(r.kind, ContentKind::Message);
                if r.content == format!("m{m}").into_bytes() {
                    self.report.deliveries_decrypted += 1;
                    self.devs[d].decrypted.insert(m);
                } else {
                    *self
                        .report
                        .decrypt_failures
                        .entry("wrong_plaintext".into())
                        .or_default() += 1;
                }
            }
            Err(e) => {
                *self
                    .report
                    .decrypt_failures
                    .entry(err_name(&e))
                    .or_default() += 1;
            }
        }
    }

    /// A new device joins account `a` through the link protocol (spec §8.5)
    /// with one of its live devices: request, response, the same SAS on both
    /// screens, approval, payload.
    fn link(&mut self, a: usize) {
        let Some(&by) = self.accts[a]
            .devices
            .iter()
            .find(|&&x| self.devs[x].revoked_at.is_none())
        else {
            return;
        };
        self.sync_lists(by);
        let identity = DeviceIdentity::generate(&mut self.crypto);
        let (initiator, request) =
            LinkInitiator::start(&mut self.crypto, &identity, Platform::Desktop, "new", V);
        let (pending, response) = PendingLink::respond(
            &mut self.crypto,
            self.devs[by].mgr.identity(),
            &self.accts[a].account,
            &request,
        )
        .unwrap();
        let awaiting = initiator.receive_response(&response).unwrap();
        assert_eq!(
            pending.sas(),
            awaiting.sas(),
            "both screens show the same emoji"
        );
        let contacts = self.devs[by].mgr.contacts();
        let (payload, list) = pending
            .approve(
                &mut self.crypto,
                &self.accts[a].account,
                self.devs[by].mgr.own_list(),
                self.now,
                LinkGrant::ShareAccountSeed,
                &contacts,
            )
            .map_err(|e| e.error)
            .unwrap();
        self.devs[by].mgr.update_device_list(&list, &[]).unwrap();
        let linked = awaiting.open_payload(&payload).unwrap();
        let id = linked.device_id;
        let store = PrekeyStore::new(&mut self.crypto, &identity);
        self.accts[a]
            .bundles
            .insert(id, store.bundle(&identity, None, None).unwrap());
        self.accts[a].lists.push(list);
        self.rebuild_record(a);
        let mut mgr = SessionManager::new(identity, id, linked.list, store).unwrap();
        // The contacts it was handed: their lists come from the directory,
        // checked against their Session IDs.
        for key in &linked.contacts {
            let b = self.acct_of(key);
            let l = VerifiedDeviceList::trust_first(
                self.accts[b].lists.last().unwrap().clone(),
                &self.accts[b].account.session_id(),
            )
            .unwrap();
            mgr.add_contact(l).unwrap();
        }
        let d = self.devs.len();
        self.by_id.insert(id, d);
        self.accts[a].devices.push(d);
        // It reads only what is posted from now on.
        let seen = self.mailboxes[a].iter().map(|i| i.id).collect();
        self.devs.push(Dev::new(a, id, mgr, self.now, seen));
        self.fetch_records(d);
        self.report.links += 1;
    }

    /// Device `victim` of its account is revoked by a sibling.
    fn revoke(&mut self, victim: usize) {
        let a = self.devs[victim].acct;
        let Some(&by) = self.accts[a]
            .devices
            .iter()
            .find(|&&x| x != victim && self.devs[x].revoked_at.is_none())
        else {
            return;
        };
        self.sync_lists(by);
        let id = self.devs[victim].id;
        let list = self.devs[by]
            .mgr
            .revoke_device(&self.accts[a].account, &id, self.now)
            .unwrap();
        self.accts[a].lists.push(list);
        self.rebuild_record(a);
        self.devs[victim].revoked_at = Some(self.now);
        self.report.revocations += 1;
    }

    /// Device `d` is wiped and restored from its oldest backup at least a
    /// week old.
    fn restore(&mut self, d: usize) -> bool {
        let week_ago = self.now.saturating_sub(7 * DAY);
        let Some(pos) = self.devs[d]
            .backups
            .iter()
            .rposition(|(t, _)| *t <= week_ago)
        else {
            return false;
        };
        let stored = StoredDevice::from_bytes(self.devs[d].backups[pos].1.as_bytes());
        let mgr = SessionManager::restore_from_backup(&mut self.crypto, &stored).unwrap();
        self.devs[d].mgr = mgr;
        self.devs[d].restores += 1;
        self.devs[d].known_restores.clear();
        let a = self.devs[d].acct;
        let bundle = self.devs[d].mgr.bundle().unwrap();
        self.accts[a].bundles.insert(self.devs[d].id, bundle);
        self.rebuild_record(a);
        self.sync_lists(d);
        self.heal(d);
        self.report.restores += 1;
        true
    }

    fn sample(&mut self, with_size: bool) {
        for d in 0..self.devs.len() {
            let k = self.devs[d].mgr.skipped_keys_held();
            self.report.max_skipped_keys_held = self.report.max_skipped_keys_held.max(k);
            if with_size {
                let n = self.devs[d].mgr.to_stored().len();
                self.report.max_state_bytes_per_device =
                    self.report.max_state_bytes_per_device.max(n);
            }
        }
    }

    fn live(&self, d: usize) -> bool {
        self.devs[d].revoked_at.is_none()
    }

    fn step(&mut self, hour: u64, plan: &Plan) {
        if plan.link == Some(hour) {
            let a = below(&mut self.net, self.accts.len() as u64) as usize;
            self.link(a);
        }
        if plan.revoke == Some(hour) {
            let candidates: Vec<usize> = (0..self.devs.len())
                .filter(|&d| {
                    self.live(d)
                        && self.accts[self.devs[d].acct]
                            .devices
                            .iter()
                            .filter(|&&x| self.live(x))
                            .count()
                            > 1
                })
                .collect();
            if !candidates.is_empty() {
                let v = candidates[below(&mut self.net, candidates.len() as u64) as usize];
                self.revoke(v);
            }
        }
        if plan.restore == Some(hour) {
            let candidates: Vec<usize> = (0..self.devs.len()).filter(|&d| self.live(d)).collect();
            for _ in 0..candidates.len() {
                let d = candidates[below(&mut self.net, candidates.len() as u64) as usize];
                if self.restore(d) {
                    break;
                }
            }
        }
        // Presence.
        for d in 0..self.devs.len() {
            if self.online(d) && self.live(d) {
                if chance(&mut self.net, 0.002) {
                    self.devs[d].offline_until = self.now + DAY + below(&mut self.net, 13 * DAY);
                } else if chance(&mut self.net, 0.03) {
                    self.devs[d].offline_until = self.now + HOUR + below(&mut self.net, 12 * HOUR);
                }
            }
        }
        // Sends (the first hour: every pair's first devices, simultaneously).
        if hour == 0 {
            for a in 0..self.accts.len() {
                for b in 0..self.accts.len() {
                    if a != b {
                        let d = self.accts[a].devices[0];
                        self.send(d, b);
                    }
                }
            }
        } else {
            for d in 0..self.devs.len() {
                let thief = self.devs[d].revoked_at.is_some();
                let p = if thief { 0.02 } else { 0.15 };
                if self.online(d) && chance(&mut self.net, p) {
                    let own = self.devs[d].acct;
                    let others: Vec<usize> = (0..self.accts.len()).filter(|&b| b != own).collect();
                    let to = if chance(&mut self.net, 0.05) {
                        own
                    } else {
                        others[below(&mut self.net, others.len() as u64) as usize]
                    };
                    if to == own && self.devs[d].mgr.own_list().list().devices().len() < 2 {
                        continue;
                    }
                    self.send(d, to);
                }
            }
        }
        // Daily upkeep and backups.
        for d in 0..self.devs.len() {
            if self.online(d) && self.live(d) && self.now >= self.devs[d].last_sync + DAY {
                self.sync_lists(d);
                if ((self.now - START) / DAY).is_multiple_of(2) {
                    let stored = self.devs[d].mgr.to_stored();
                    self.devs[d].backups.push((self.now, stored));
                    if self.devs[d].backups.len() > 12 {
                        self.devs[d].backups.remove(0);
                    }
                }
            }
        }
        // Fetches.
        for d in 0..self.devs.len() {
            if self.online(d) {
                self.fetch(d);
            }
        }
        self.sample(hour.is_multiple_of(24));
        self.now += HOUR;
    }

    /// Counts items that expired before a recipient fetched them.
    fn count_expired(&mut self) {
        for (d, dev) in self.devs.iter().enumerate() {
            for it in &self.mailboxes[dev.acct] {
                if let Some(m) = it.msg
                    && !dev.seen.contains(&it.id)
                    && self.msgs[&m].targets.contains_key(&d)
                {
                    self.report.expired_undelivered += 1;
                }
            }
        }
    }

    /// After a quiet period with everyone online on a working network and
    /// two rounds of messages, every pair of live devices must use the same
    /// session both ways.
    fn settle(&mut self) {
        self.reliable = true;
        for d in 0..self.devs.len() {
            self.devs[d].offline_until = 0;
        }
        for round in 0..3 {
            for d in 0..self.devs.len() {
                if self.live(d) {
                    self.sync_lists(d);
                }
            }
            for _ in 0..8 {
                self.now += HOUR;
                for d in 0..self.devs.len() {
                    self.fetch(d);
                }
            }
            if round < 2 {
                for d in 0..self.devs.len() {
                    if self.live(d) {
                        for b in 0..self.accts.len() {
                            if b != self.devs[d].acct {
                                self.send(d, b);
                            }
                        }
                    }
                }
                self.now += 6 * HOUR;
            }
        }
        for x in 0..self.devs.len() {
            for y in (x + 1)..self.devs.len() {
                if !self.live(x) || !self.live(y) {
                    continue;
                }
                let (kx, ky) = (self.key(self.devs[x].acct), self.key(self.devs[y].acct));
                let (ix, iy) = (self.devs[x].id, self.devs[y].id);
                let at_x = self.devs[x].mgr.active_session(&ky, &iy);
                let at_y = self.devs[y].mgr.active_session(&kx, &ix);
                if at_x.is_some() && at_y.is_some() && at_x != at_y {
                    self.report.unconverged_pairs += 1;
                }
            }
        }
    }
}

struct Plan {
    link: Option<u64>,
    revoke: Option<u64>,
    restore: Option<u64>,
}

/// Runs one simulation.
pub(crate) fn run(cfg: &Config) -> Report {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&cfg.seed.to_le_bytes());
    seed[8] = 1;
    run_with_network(cfg, Box::new(ChaCha20Rng::from_seed(seed)))
}

/// Runs one simulation whose network decisions (accounts, loss, delays,
/// duplicates, order, presence, events) come from `net`.
pub(crate) fn run_with_network(cfg: &Config, net: Net) -> Report {
    let mut w = World::new(cfg, net);
    let hours = cfg.days * 24;
    let plan = Plan {
        link: (hours >= 48).then(|| hours / 4 + below(&mut w.net, 24)),
        revoke: (hours >= 72).then(|| hours / 2 + below(&mut w.net, 24)),
        restore: (cfg.days >= 10).then(|| (hours * 2) / 3 + below(&mut w.net, 24)),
    };
    for hour in 0..hours {
        w.step(hour, &plan);
    }
    w.settle();
    w.count_expired();
    w.report.devices = w.devs.len();
    w.envelope_sizes.sort_unstable();
    let pct = |p: usize| -> usize {
        if w.envelope_sizes.is_empty() {
            0
        } else {
            w.envelope_sizes[(w.envelope_sizes.len() - 1) * p / 100]
        }
    };
    w.report.envelope_bytes_p50 = pct(50);
    w.report.envelope_bytes_p99 = pct(99);
    w.report.envelopes = w.envelope_sizes.len() as u64;
    w.report
}
