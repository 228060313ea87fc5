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
//! - Scripted mid-run events, in this order: a device is linked (the §8.5
//!   exchange, SAS compared); a device is revoked (and keeps trying to read
//!   and write, as a thief would); an account is restored from its
//!   recovery phrase; a device is restored from a backup at least a week
//!   old (in another account); a device runs on from a stale stored state.
//! - **Restore from the recovery phrase** (at 7/12 of the run): every live
//!   device of one account is *lost* at once (silent from then on: it never
//!   sends or fetches again). A new device is made from the account's
//!   recovery seed alone, as `client::Device::restore_account` does:
//!   `Account::from_recovery_seed`, a fresh identity and device id, the
//!   account's published list fetched and its `next_draft()` adding the new
//!   device, signed with the account key, fresh prekeys. It publishes its
//!   list and prekey record and adds every contact again (their lists and
//!   records from the directory); 6–30 hours later the user has it revoke
//!   the lost devices (one signed list per device). Contacts learn of it
//!   from `DeviceListOutdated` / `sender_list_newer` or their daily sync.
//! - **Stale state** (at 3/4 of the run, on a device never restored from
//!   backup, not revoked, not lost; online if possible, the device restored
//!   from the phrase only if there is no other): the state the device stores
//!   after its next send is the last its store keeps. The user sends a
//!   second message at once in the same conversation; the device runs on
//!   (sends, fetches) and crashes right after that message or after 1–2
//!   more sends (at the latest three days after the event started, or when
//!   settling begins). It
//!   restarts from the kept state with `SessionManager::from_stored` —
//!   *not* `restore_from_backup`: it does not know — and its outbox, which
//!   the kept state still holds as unsent, sends the messages sent since
//!   then again. It then runs normally.
//! - Devices sync device lists and prekey records from a directory once a
//!   day, and at once when a decrypt says a list is outdated or that the
//!   sender holds a newer list of its own account, or a send says prekeys
//!   are missing.
//! - The client's rule for broken pairs (spec §8.8, `heal_device`): when
//!   two fetches in a row brought messages from one sending device and none
//!   decrypted (`Undecryptable`, other than as a duplicate or too old), the
//!   device heals that sending device.
//! - Settling: everyone online, no loss, delay or duplicates; three rounds
//!   of messages from every live device to every other account, 8 hours of
//!   fetching after each.
//!
//! Accounting: a *delivery* is one device-copy of an application message
//! that reached a device that was a recipient when it was sent, within the
//! TTL, not a duplicate. Counted apart, not as deliveries:
//! - copies encrypted to state that a restore from backup destroyed (sent
//!   before the sender learned of the restore): `copies_to_lost_state`;
//! - copies reaching a device after its revocation;
//! - copies addressed to a lost device (of an account restored from its
//!   phrase) that it had not fetched when it was lost — sent before the
//!   loss and not yet fetched, or sent after it while the senders' lists
//!   still named it: `copies_to_lost_devices` (never delivered);
//! - copies sealed under a *reused message key* (one the encryption of
//!   another copy to the same device used too: the stale device's original
//!   and its repeat), once the second encryption happened: at most one of
//!   them can open (`stale_copies_decrypted`); the others are refused with
//!   the receiver's stored state byte for byte unchanged, after it had
//!   decrypted the other copy (`stale_copies_refused`). A copy under a
//!   reused key that is neither is judged by the rules below;
//! - after the crash, copies between the stale device and another device
//!   that the rollback may have made unreadable (`copies_across_rollback`):
//!   those the stale device sealed between its kept state and the crash
//!   (from the lost state), delivered after the crash; and those sealed in a
//!   *forked* session, delivered after it forked. A session forks when the
//!   peer device decrypts a copy the lost state sealed on a ratchet chain it
//!   started after the kept state (its first message, `N = 0`, sealed then):
//!   the peer then holds a ratchet key whose private half only the lost
//!   state had, so neither side can read the other's new chains in that
//!   session until one of them heals. Copies in later sessions count as
//!   deliveries again.
//!
//! The stale device's reloaded state forgot what it read between the kept
//! state and the crash: a network duplicate of such a message that it
//! decrypts again is `stale_duplicates_accepted`, not
//! `duplicates_accepted`.
//!
//! Keystream reuse is measured with the `hazmat-test-vectors` trace
//! (`SessionManager::hazmat_last_encryption`): the message key and the
//! body key (derived from the message key and the message's nonce, spec
//! §7.3) of every encryption of the run (messages, healing notices).
//! `message_keys_reused` counts encryptions under a message key used
//! before (the stale device's repeats: it shows the event reached the
//! case); `body_keys_reused` counts encryptions under a body key used
//! before, and must be 0.
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
use session_ratchet::ratchet::RatchetError;
use session_ratchet::secret::RecoverySeed;
use session_ratchet::sessions::{
    ContentKind, Received, SessionManager, SessionsError, StoredDevice,
};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
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
    pub(crate) unread_pairs: u64,
    pub(crate) phrase_restores: u64,
    pub(crate) lost_devices: u64,
    pub(crate) lost_devices_revoked: u64,
    pub(crate) copies_to_lost_devices: u64,
    pub(crate) phrase_device_expected: u64,
    pub(crate) phrase_device_decrypted: u64,
    pub(crate) stale_reloads: u64,
    pub(crate) stale_window_sends: u64,
    pub(crate) encryptions_traced: u64,
    pub(crate) message_keys_reused: u64,
    pub(crate) body_keys_reused: u64,
    pub(crate) stale_copies_refused: u64,
    pub(crate) stale_copies_decrypted: u64,
    pub(crate) stale_duplicates_accepted: u64,
    pub(crate) copies_across_rollback: u64,
    pub(crate) copies_across_rollback_decrypted: u64,
    pub(crate) failure_heals: u64,
    pub(crate) failure_heal_sessions: u64,
    pub(crate) refusals_changed_state: u64,
}

impl Report {
    /// The run met its goals.
    pub(crate) fn ok(&self) -> bool {
        self.deliveries_decrypted == self.deliveries_expected
            && self.revoked_decrypts_after_revocation == 0
            && self.duplicates_accepted == 0
            && self.unconverged_pairs == 0
            && self.unread_pairs == 0
            && self.body_keys_reused == 0
            && self.refusals_changed_state == 0
            && self.send_failures.is_empty()
            && self.session_resets
                <= (self.restores + self.stale_reloads) * self.devices.saturating_sub(1) as u64
                    + self.failure_heal_sessions
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
                "\"unconverged_pairs\":{},\"unread_pairs\":{},",
                "\"phrase_restores\":{},\"lost_devices\":{},\"lost_devices_revoked\":{},\"copies_to_lost_devices\":{},",
                "\"phrase_device_expected\":{},\"phrase_device_decrypted\":{},",
                "\"stale_reloads\":{},\"stale_window_sends\":{},\"encryptions_traced\":{},",
                "\"message_keys_reused\":{},\"body_keys_reused\":{},",
                "\"stale_copies_refused\":{},\"stale_copies_decrypted\":{},\"stale_duplicates_accepted\":{},",
                "\"copies_across_rollback\":{},\"copies_across_rollback_decrypted\":{},\"failure_heals\":{},\"failure_heal_sessions\":{},\"refusals_changed_state\":{},",
                "\"ok\":{}}}"
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
            self.unread_pairs,
            self.phrase_restores,
            self.lost_devices,
            self.lost_devices_revoked,
            self.copies_to_lost_devices,
            self.phrase_device_expected,
            self.phrase_device_decrypted,
            self.stale_reloads,
            self.stale_window_sends,
            self.encryptions_traced,
            self.message_keys_reused,
            self.body_keys_reused,
            self.stale_copies_refused,
            self.stale_copies_decrypted,
            self.stale_duplicates_accepted,
            self.copies_across_rollback,
            self.copies_across_rollback_decrypted,
            self.failure_heals,
            self.failure_heal_sessions,
            self.refusals_changed_state,
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
    /// Lost with every device of its account (a restore from the recovery
    /// phrase followed): silent from then on.
    lost_at: Option<u64>,
    /// Created by a restore from the recovery phrase.
    phrase: bool,
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
            lost_at: None,
            phrase: false,
        }
    }
}

struct Acct {
    account: Account,
    /// The recovery seed (the phrase the user wrote down).
    seed: RecoverySeed,
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
    /// Every message key used by an encryption → the copies it sealed
    /// (message, recipient device; `None`: a healing notice).
    message_keys: HashMap<[u8; 32], Vec<(Option<u64>, usize)>>,
    /// Every body key used by an encryption.
    body_keys: HashSet<[u8; 32]>,
    /// Copies sealed under a message key another encryption also used.
    reused_copies: HashSet<(u64, usize)>,
    /// The stale-state event in progress: the device runs on while its
    /// older state is all the store kept.
    stale: Option<Stale>,
    /// The device of the stale-state event, and the messages it decrypted
    /// between the kept state and the crash (its reloaded state forgot them).
    stale_dev: Option<usize>,
    stale_window_decrypted: BTreeSet<u64>,
    /// When the stale device crashed and reloaded its kept state.
    stale_crashed_at: Option<u64>,
    /// Copies the stale device sealed after its kept state, before the
    /// crash (from the state the crash lost).
    window_copies: HashSet<(u64, usize)>,
    /// (recipient, ratchet key) of the sending chains the stale device
    /// started after its kept state: only the lost state has their keys.
    window_chains: HashSet<(usize, [u8; 32])>,
    /// Window copies on such a chain.
    lost_chain_copies: HashSet<(u64, usize)>,
    /// The session (transcript hash) each copy from or to the stale device
    /// was sealed in, from its kept state on.
    copy_session: HashMap<(u64, usize), [u8; 32]>,
    /// (peer device, session) pairs forked by the rollback: the peer read a
    /// message of a chain only the lost state had.
    forked: HashSet<(usize, [u8; 32])>,
    /// Fetches in a row that brought only undecryptable messages, per
    /// (receiver, sending device).
    failing: HashMap<(usize, usize), u32>,
    /// This fetch so far, per sending device: (failed, decrypted).
    batch: HashMap<usize, (u32, u32)>,
    /// The message key of every copy (message, recipient).
    copy_key: HashMap<(u64, usize), [u8; 32]>,
    /// The account restored from its recovery phrase.
    phrase_acct: Option<usize>,
    /// When the restored device revokes the lost ones: (time, new device).
    revoke_lost_at: Option<(u64, usize)>,
    /// The messages of the last round of the settling period.
    last_round: BTreeSet<u64>,
}

/// A device whose newest state will not survive a crash.
struct Stale {
    dev: usize,
    /// The state the store still holds, written after the device's first
    /// send since the event started (and the sender-side knowledge of
    /// restores that goes with it).
    kept: Option<(StoredDevice, HashMap<usize, u32>)>,
    /// The next send is the user's second message, sent at once after the
    /// first.
    burst: bool,
    /// Sends after that one until the crash (it crashes right after the
    /// last; 0: right after the second message).
    sends_left: u32,
    /// The conversations of the sends since the kept state: the outbox the
    /// kept state still holds as unsent.
    outbox: Vec<usize>,
    /// It crashes at this time at the latest.
    deadline: u64,
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
            message_keys: HashMap::new(),
            body_keys: HashSet::new(),
            reused_copies: HashSet::new(),
            stale: None,
            stale_dev: None,
            stale_window_decrypted: BTreeSet::new(),
            stale_crashed_at: None,
            window_copies: HashSet::new(),
            window_chains: HashSet::new(),
            lost_chain_copies: HashSet::new(),
            copy_session: HashMap::new(),
            forked: HashSet::new(),
            failing: HashMap::new(),
            batch: HashMap::new(),
            copy_key: HashMap::new(),
            phrase_acct: None,
            revoke_lost_at: None,
            last_round: BTreeSet::new(),
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
        let (account, seed) = Account::generate(&mut self.crypto);
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
            seed,
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
        let mut sealed: Vec<usize> = targets.keys().copied().collect();
        sealed.sort_unstable();
        self.trace(d, &sealed, Some(msg_id));
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
        if let Some(st) = &mut self.stale
            && st.dev == d
        {
            if st.kept.is_none() {
                st.kept = Some((
                    self.devs[d].mgr.to_stored(),
                    self.devs[d].known_restores.clone(),
                ));
                st.burst = true;
                self.send(d, to);
                return;
            }
            self.report.stale_window_sends += 1;
            st.outbox.push(to);
            if st.burst {
                st.burst = false;
            } else {
                st.sends_left -= 1;
            }
            if st.sends_left == 0 {
                self.crash();
            }
        }
    }

    /// Records the keys of the encryptions one `encrypt` or heal made, one
    /// per device in `sealed` (the library exposes the last encryption of
    /// each pair's active session).
    fn trace(&mut self, d: usize, sealed: &[usize], msg: Option<u64>) {
        for &t in sealed {
            let key = self.key(self.devs[t].acct);
            let id = self.devs[t].id;
            let Some(tr) = self.devs[d].mgr.hazmat_last_encryption(&key, &id) else {
                *self
                    .report
                    .send_failures
                    .entry("untraced_encryption".into())
                    .or_default() += 1;
                continue;
            };
            let (mk, bk) = (tr.message_key, tr.body_key);
            let header = tr.header;
            self.report.encryptions_traced += 1;
            if let Some(sd) = self.stale_dev
                && (d == sd || t == sd)
                && let Some(m) = msg
                && let Some(th) = self.devs[d].mgr.active_session(&key, &id)
            {
                self.copy_session.insert((m, t), th);
            }
            if self
                .stale
                .as_ref()
                .is_some_and(|st| st.dev == d && st.kept.is_some())
            {
                // Header plaintext (spec §7.7): ratchet key, PN, N, epoch.
                let mut dh = [0u8; 32];
                dh.copy_from_slice(&header[..32]);
                let n = u32::from_be_bytes([header[36], header[37], header[38], header[39]]);
                if n == 0 {
                    self.window_chains.insert((t, dh));
                }
                if let Some(m) = msg {
                    self.window_copies.insert((m, t));
                    if self.window_chains.contains(&(t, dh)) {
                        self.lost_chain_copies.insert((m, t));
                    }
                }
            }
            if !self.body_keys.insert(bk) {
                self.report.body_keys_reused += 1;
            }
            if let Some(m) = msg {
                self.copy_key.insert((m, t), mk);
            }
            let uses = self.message_keys.entry(mk).or_default();
            uses.push((msg, t));
            if uses.len() > 1 {
                self.report.message_keys_reused += 1;
                for &(m, r) in uses.iter() {
                    if let Some(m) = m {
                        self.reused_copies.insert((m, r));
                    }
                }
            }
        }
    }

    /// The devices `d` holds as active in account `a`'s list, itself excluded.
    fn listed(&self, d: usize, a: usize) -> Vec<usize> {
        let Some(list) = self.devs[d].mgr.device_list(&self.key(a)) else {
            return Vec::new();
        };
        let mut out: Vec<usize> = list
            .list()
            .devices()
            .iter()
            .filter_map(|e| self.by_id.get(e.id()).copied())
            .filter(|&t| t != d)
            .collect();
        out.sort_unstable();
        out
    }

    /// The crash of the stale-state event: the device starts again from the
    /// state its store kept, not knowing that it is older than what it sent
    /// from (no `restore_from_backup`). The outbox still holds the messages
    /// sent since the kept state as unsent, and they go out again.
    fn crash(&mut self) {
        let Some(st) = self.stale.take() else { return };
        let Some((kept, known_restores)) = st.kept else {
            return;
        };
        let d = st.dev;
        self.devs[d].mgr = SessionManager::from_stored(&kept).unwrap();
        self.devs[d].known_restores = known_restores;
        self.report.stale_reloads += 1;
        self.stale_crashed_at = Some(self.now);
        for to in st.outbox {
            self.send(d, to);
        }
    }

    fn heal(&mut self, d: usize) {
        for a in 0..self.accts.len() {
            let key = self.key(a);
            let before = self.session_counts(d);
            let unsealed = |w: &Self| -> Vec<usize> {
                w.listed(d, a)
                    .into_iter()
                    .filter(|&t| {
                        let dev = &w.devs[t];
                        w.devs[d]
                            .mgr
                            .active_session(&w.key(dev.acct), &dev.id)
                            .is_none()
                    })
                    .collect()
            };
            let mut sealed = unsealed(self);
            let mut out = self.devs[d].mgr.heal(&mut self.crypto, &key, self.now);
            if let Err(SessionsError::MissingPrekeys { .. }) = out {
                self.sync_lists(d);
                sealed = unsealed(self);
                out = self.devs[d].mgr.heal(&mut self.crypto, &key, self.now);
            }
            match out {
                Ok(Some(out)) => {
                    self.note_starts(d, &before, out.sessions_started);
                    self.trace(d, &sealed, None);
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
        self.heal_failing(d);
    }

    fn deliver(&mut self, d: usize, env: &[u8], msg: Option<u64>) {
        // A copy sealed under a reused message key: check that refusing it
        // leaves the receiver's state as it was.
        let watch = msg.is_some_and(|m| self.reused_copies.contains(&(m, d)));
        let mut kept = watch.then(|| self.devs[d].mgr.to_stored());
        let mut result = self.devs[d].mgr.decrypt(env);
        if matches!(
            result,
            Err(SessionsError::DeviceListOutdated { .. })
                | Err(SessionsError::UnknownSenderDevice { .. })
        ) {
            self.sync_lists(d);
            kept = watch.then(|| self.devs[d].mgr.to_stored());
            result = self.devs[d].mgr.decrypt(env);
        }
        let unchanged = match (&kept, &result) {
            (Some(k), Err(_)) => Some(k.as_bytes() == self.devs[d].mgr.to_stored().as_bytes()),
            _ => None,
        };
        if let Ok(r) = &result {
            self.talked.insert((d, self.by_id[&r.sender_device]));
            if let (Some(st), Some(m)) = (&self.stale, msg)
                && st.dev == d
                && st.kept.is_some()
            {
                self.stale_window_decrypted.insert(m);
            }
        }
        if let Ok(r) = &result
            && r.new_session
        {
            let s = self.by_id[&r.sender_device];
            let restores = self.devs[s].restores;
            self.devs[d].known_restores.insert(s, restores);
        }
        if let (Ok(_), Some(m)) = (&result, msg)
            && self.lost_chain_copies.contains(&(m, d))
            && let Some(&th) = self.copy_session.get(&(m, d))
        {
            self.forked.insert((d, th));
        }
        if let Ok(r) = &result
            && r.sender_list_newer
        {
            self.sync_lists(d);
        }
        self.note_outcome(&result);
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
                // The reloaded state of the stale-state event forgot what
                // it read between the kept state and the crash.
                Ok(_)
                    if self.stale_dev == Some(d)
                        && self.stale.is_none()
                        && self.stale_window_decrypted.contains(&m) =>
                {
                    self.report.stale_duplicates_accepted += 1
                }
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
        if unchanged == Some(false) {
            self.report.refusals_changed_state += 1;
        }
        if self.reused_copies.contains(&(m, d)) {
            // One of the copies under one message key can open; the others
            // are refused as duplicates (the error names the most preferred
            // session's refusal, which need not be the session the copy was
            // sealed in). Anything else is judged below.
            let twin_read = self.copy_key.get(&(m, d)).is_some_and(|k| {
                self.message_keys[k].iter().any(|&(o, r)| {
                    r == d && o.is_some_and(|o| o != m && self.devs[d].decrypted.contains(&o))
                })
            });
            match &result {
                Err(_) if twin_read && unchanged == Some(true) => {
                    self.report.stale_copies_refused += 1;
                    return;
                }
                Ok(r) if r.content == format!("m{m}").into_bytes() => {
                    self.report.stale_copies_decrypted += 1;
                    self.devs[d].decrypted.insert(m);
                    return;
                }
                _ => {}
            }
        }
        if let Some(sd) = self.stale_dev
            && self.stale_crashed_at.is_some()
            && (d == sd || info.sender == sd)
        {
            let peer = if d == sd { info.sender } else { d };
            let across = self.window_copies.contains(&(m, d))
                || self
                    .copy_session
                    .get(&(m, d))
                    .is_some_and(|th| self.forked.contains(&(peer, *th)));
            if across {
                self.report.copies_across_rollback += 1;
                if let Ok(r) = &result
                    && r.content == format!("m{m}").into_bytes()
                {
                    self.report.copies_across_rollback_decrypted += 1;
                    self.devs[d].decrypted.insert(m);
                }
                return;
            }
        }
        if self.devs[d].restores > known {
            self.report.copies_to_lost_state += 1;
            if result.is_ok() {
                self.report.copies_to_lost_state_decrypted += 1;
            }
            return;
        }
        self.report.deliveries_expected += 1;
        let phrase = self.devs[d].phrase;
        if phrase {
            self.report.phrase_device_expected += 1;
        }
        match result {
            Ok(r) => {
                debug_assert_eq!(r.kind, ContentKind::Message);
                if r.content == format!("m{m}").into_bytes() {
                    self.report.deliveries_decrypted += 1;
                    if phrase {
                        self.report.phrase_device_decrypted += 1;
                    }
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
        let Some(&by) = self.accts[a].devices.iter().find(|&&x| self.live(x)) else {
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
            .find(|&&x| x != victim && self.live(x))
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

    /// One decryption's outcome for the client's rule on broken pairs.
    fn note_outcome(&mut self, result: &Result<Received, SessionsError>) {
        match result {
            Ok(r) => {
                self.batch
                    .entry(self.by_id[&r.sender_device])
                    .or_default()
                    .1 += 1
            }
            Err(SessionsError::Undecryptable { device, error, .. })
                if !matches!(
                    error,
                    RatchetError::DuplicateMessage | RatchetError::MessageTooOld
                ) =>
            {
                self.batch.entry(self.by_id[device]).or_default().0 += 1
            }
            Err(_) => {}
        }
    }

    /// The client's rule for a broken pair (spec §8.8, explicit healing):
    /// when two fetches in a row brought messages from one device and none
    /// of them decrypted (failing in every session, not as duplicates or
    /// as too old), heal that device.
    fn heal_failing(&mut self, d: usize) {
        let batch = std::mem::take(&mut self.batch);
        let mut senders: Vec<(usize, (u32, u32))> = batch.into_iter().collect();
        senders.sort_unstable();
        for (s, (failed, decrypted)) in senders {
            if decrypted > 0 || failed == 0 {
                self.failing.remove(&(d, s));
                continue;
            }
            let n = self.failing.entry((d, s)).or_default();
            *n += 1;
            if *n >= 2 && self.live(d) {
                self.failing.remove(&(d, s));
                self.heal_device(d, s);
            }
        }
    }

    fn heal_device(&mut self, d: usize, s: usize) {
        let a = self.devs[s].acct;
        let (key, id) = (self.key(a), self.devs[s].id);
        let before = self.session_counts(d);
        let mut out = self.devs[d]
            .mgr
            .heal_device(&mut self.crypto, &key, &id, self.now);
        if let Err(SessionsError::MissingPrekeys { .. }) = out {
            self.sync_lists(d);
            out = self.devs[d]
                .mgr
                .heal_device(&mut self.crypto, &key, &id, self.now);
        }
        match out {
            Ok(out) => {
                self.report.failure_heals += 1;
                self.report.failure_heal_sessions += out.sessions_started as u64;
                self.note_starts(d, &before, out.sessions_started);
                self.trace(d, &[s], None);
                for env in out.envelopes {
                    self.envelope_sizes.push(env.len());
                    let env = Rc::new(env);
                    self.post(a, &env, None);
                }
            }
            Err(e) => {
                *self
                    .report
                    .send_failures
                    .entry(format!("heal_device/{}", err_name(&e)))
                    .or_default() += 1;
            }
        }
    }

    /// Every device of account `a` is lost at once; the user restores the
    /// account from its recovery phrase onto a new device, as
    /// `client::Device::restore_account` does: the account from the seed
    /// alone, a fresh identity and device id, the account's current list
    /// fetched and its next version (adding this device) signed with the
    /// account key, fresh prekeys. It publishes its list and prekey record
    /// and adds the contacts again; the lost devices are revoked hours later.
    fn phrase_restore(&mut self, a: usize) {
        let lost: Vec<usize> = self.accts[a]
            .devices
            .iter()
            .copied()
            .filter(|&x| self.live(x))
            .collect();
        for &x in &lost {
            self.devs[x].lost_at = Some(self.now);
        }
        self.report.lost_devices += lost.len() as u64;
        let account = Account::from_recovery_seed(&self.accts[a].seed);
        assert_eq!(
            account.public_key(),
            self.key(a),
            "the phrase gives the account"
        );
        let identity = DeviceIdentity::generate(&mut self.crypto);
        let id = DeviceId::generate(&mut self.crypto);
        let fetched =
            SignedDeviceList::from_bytes(&self.accts[a].lists.last().unwrap().to_bytes()).unwrap();
        let mut draft = VerifiedDeviceList::trust_first_with_key(fetched, &account.public_key())
            .unwrap()
            .next_draft()
            .unwrap();
        draft
            .add_device(DeviceEntry::new(
                id,
                *identity.public(),
                Platform::Ios,
                "restored",
                V,
                self.now,
            ))
            .unwrap();
        let list = draft.sign(&account).unwrap();
        let verified =
            VerifiedDeviceList::trust_first_with_key(list.clone(), &account.public_key()).unwrap();
        let store = PrekeyStore::new(&mut self.crypto, &identity);
        let mut mgr = SessionManager::new(identity, id, verified, store).unwrap();
        self.accts[a].bundles.insert(id, mgr.bundle().unwrap());
        self.accts[a].lists.push(list);
        self.accts[a].account = account;
        self.rebuild_record(a);
        for b in 0..self.accts.len() {
            if b != a {
                let l = VerifiedDeviceList::trust_first(
                    self.accts[b].lists.last().unwrap().clone(),
                    &self.accts[b].account.session_id(),
                )
                .unwrap();
                mgr.add_contact(l).unwrap();
            }
        }
        let d = self.devs.len();
        self.by_id.insert(id, d);
        self.accts[a].devices.push(d);
        // What the mailbox holds was sealed to the lost devices only.
        let seen = self.mailboxes[a].iter().map(|i| i.id).collect();
        let mut dev = Dev::new(a, id, mgr, self.now, seen);
        dev.phrase = true;
        self.devs.push(dev);
        self.fetch_records(d);
        self.report.phrase_restores += 1;
        let after = (6 + below(&mut self.net, 25)) * HOUR;
        self.revoke_lost_at = Some((self.now + after, d));
    }

    /// The user tells the restored device `d` that the lost devices are
    /// gone: it signs the next lists removing them.
    fn revoke_lost(&mut self, d: usize) {
        let a = self.devs[d].acct;
        self.sync_lists(d);
        let lost: Vec<usize> = self.accts[a]
            .devices
            .iter()
            .copied()
            .filter(|&x| self.devs[x].lost_at.is_some() && self.devs[x].revoked_at.is_none())
            .collect();
        for x in lost {
            let id = self.devs[x].id;
            let list = self.devs[d]
                .mgr
                .revoke_device(&self.accts[a].account, &id, self.now)
                .unwrap();
            self.accts[a].lists.push(list);
            self.devs[x].revoked_at = Some(self.now);
            self.report.lost_devices_revoked += 1;
        }
        self.rebuild_record(a);
    }

    /// Starts the stale-state event on a device that is not restored or
    /// revoked (online if possible; the restored-from-phrase device only if
    /// there is no other): the state the store writes after its next send
    /// is the last one it keeps. The user sends a second message at once
    /// in the same conversation (so the lost state used chain positions the
    /// kept state will use again); the device runs on and crashes right
    /// after that message or after 1–2 more sends (or three days after the
    /// start).
    fn stale_start(&mut self) {
        let pools = [
            |w: &Self, d: usize| w.online(d) && w.devs[d].restores == 0 && !w.devs[d].phrase,
            |w: &Self, d: usize| w.devs[d].restores == 0 && !w.devs[d].phrase,
            |w: &Self, d: usize| w.devs[d].restores == 0,
        ];
        let Some(candidates) = pools
            .iter()
            .map(|p| {
                (0..self.devs.len())
                    .filter(|&d| self.live(d) && p(self, d))
                    .collect::<Vec<usize>>()
            })
            .find(|c| !c.is_empty())
        else {
            return;
        };
        let d = candidates[below(&mut self.net, candidates.len() as u64) as usize];
        self.stale = Some(Stale {
            dev: d,
            kept: None,
            burst: false,
            sends_left: below(&mut self.net, 3) as u32,
            outbox: Vec::new(),
            deadline: self.now + 3 * DAY,
        });
        self.stale_dev = Some(d);
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

    /// Neither revoked nor lost.
    fn live(&self, d: usize) -> bool {
        self.devs[d].revoked_at.is_none() && self.devs[d].lost_at.is_none()
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
        if plan.phrase == Some(hour) {
            // An account that leaves room elsewhere for the restore from
            // backup and the stale-state event.
            let room: Vec<usize> = (0..self.accts.len())
                .filter(|&a| {
                    (0..self.devs.len())
                        .filter(|&x| self.live(x) && self.devs[x].acct != a)
                        .count()
                        >= 2
                })
                .collect();
            let pool: Vec<usize> = if room.is_empty() {
                (0..self.accts.len()).collect()
            } else {
                room
            };
            let a = pool[below(&mut self.net, pool.len() as u64) as usize];
            self.phrase_acct = Some(a);
            self.phrase_restore(a);
        }
        if let Some((at, d)) = self.revoke_lost_at
            && self.now >= at
        {
            self.revoke_lost_at = None;
            self.revoke_lost(d);
        }
        if plan.stale == Some(hour) {
            self.stale_start();
        }
        if self
            .stale
            .as_ref()
            .is_some_and(|st| self.now >= st.deadline)
        {
            self.crash();
        }
        if plan.restore == Some(hour) {
            let candidates: Vec<usize> = (0..self.devs.len())
                .filter(|&d| self.live(d) && Some(self.devs[d].acct) != self.phrase_acct)
                .collect();
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
                if self.devs[d].lost_at.is_some() {
                    continue;
                }
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
            if self.online(d) && self.devs[d].lost_at.is_none() {
                self.fetch(d);
            }
        }
        self.sample(hour.is_multiple_of(24));
        self.now += HOUR;
    }

    /// Counts items that expired before a recipient fetched them.
    fn count_expired(&mut self) {
        for (d, dev) in self.devs.iter().enumerate() {
            let mut to_lost = BTreeSet::new();
            for it in &self.mailboxes[dev.acct] {
                if let Some(m) = it.msg
                    && !dev.seen.contains(&it.id)
                    && self.msgs[&m].targets.contains_key(&d)
                {
                    if dev.lost_at.is_some() {
                        to_lost.insert(m);
                    } else {
                        self.report.expired_undelivered += 1;
                    }
                }
            }
            self.report.copies_to_lost_devices += to_lost.len() as u64;
        }
    }

    /// After a quiet period with everyone online on a working network and
    /// three rounds of messages, every pair of live devices must hold the
    /// same active session both ways (`unconverged_pairs`), and every copy
    /// of the last round must have been read (`unread_pairs`).
    fn settle(&mut self) {
        // Events still due happen now.
        self.crash();
        if let Some((_, d)) = self.revoke_lost_at.take() {
            self.revoke_lost(d);
        }
        self.reliable = true;
        for d in 0..self.devs.len() {
            self.devs[d].offline_until = 0;
        }
        for round in 0..4 {
            for d in 0..self.devs.len() {
                if self.live(d) {
                    self.sync_lists(d);
                }
            }
            for _ in 0..8 {
                self.now += HOUR;
                for d in 0..self.devs.len() {
                    if self.devs[d].lost_at.is_none() {
                        self.fetch(d);
                    }
                }
            }
            let first = self.next_msg;
            if round < 3 {
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
            if round == 2 {
                self.last_round = (first..self.next_msg).collect();
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
                if at_x.is_none() || at_y.is_none() || at_x != at_y {
                    self.report.unconverged_pairs += 1;
                }
            }
        }
        // Every copy of the last round reached a live recipient (the
        // network is reliable): each must have been read.
        let mut unread = BTreeSet::new();
        for m in &self.last_round {
            let info = &self.msgs[m];
            for &t in info.targets.keys() {
                if self.live(t) && !self.devs[t].decrypted.contains(m) {
                    unread.insert((info.sender.min(t), info.sender.max(t)));
                }
            }
        }
        self.report.unread_pairs = unread.len() as u64;
    }
}

struct Plan {
    link: Option<u64>,
    revoke: Option<u64>,
    restore: Option<u64>,
    phrase: Option<u64>,
    stale: Option<u64>,
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
        phrase: (hours >= 72).then(|| (hours * 7) / 12 + below(&mut w.net, 24)),
        stale: (hours >= 72).then(|| (hours * 3) / 4 + below(&mut w.net, 24)),
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
