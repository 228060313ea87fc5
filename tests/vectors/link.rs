//! `test-vectors/link.json`: linking a new device (spec §8.5): full
//! exchanges from seeded RNGs (request, response, transcript hash, payload
//! key, SAS, new device list, payload), payloads the new device must reject,
//! men in the middle who substitute the X-Wing key or the ciphertext, and
//! decoding errors.

use super::{Replay, file, hex};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use serde_json::{Value, json};
use session_ratchet::account::Account;
use session_ratchet::device::link::{
    AwaitingApproval, LinkGrant, LinkInitiator, LinkPayload, LinkRequest, LinkResponse,
    PendingLink, sas_input,
};
use session_ratchet::device::list::{
    ClientVersion, DeviceEntry, DeviceId, DeviceListDraft, Platform, SignedDeviceList,
    VerifiedDeviceList,
};
use session_ratchet::device::sas;
use session_ratchet::identity::{AccountIdentity, DeviceIdentity, Ed25519PublicKey};
use session_ratchet::kem::xwing::{XWingKeyPair, XWingPublicKey, hazmat_encapsulate_deterministic};
use session_ratchet::secret::{RecoverySeed, XWingSeed};

/// The account's 16-byte recovery seed.
pub const RECOVERY_SEED: [u8; 16] = [0x1e; 16];
/// Seed of the RNG that creates both device identities and the approver's id.
pub const SETUP_RNG_SEED: [u8; 32] = [0x11; 32];
/// Seed of the RNG that creates the contacts' account keys.
pub const CONTACTS_RNG_SEED: [u8; 32] = [0xc0; 32];
/// When the approving device was listed (held list version 1).
pub const APPROVER_ADDED_AT: u64 = 1_700_000_000;

/// Offsets of the substituted fields.
pub const REQUEST_XWING_AT: usize = 2 + 64;
pub const RESPONSE_CT_AT: usize = 2 + 32 + 64;

pub struct Setup {
    pub account: Account,
    pub approver: DeviceIdentity,
    pub new_device: DeviceIdentity,
    pub held: VerifiedDeviceList,
    /// Draws of the setup RNG: approver ed25519 seed, x25519 secret, device
    /// id; new device ed25519 seed, x25519 secret.
    pub draws: Vec<Vec<u8>>,
}

pub fn setup() -> Setup {
    let account = Account::from_recovery_seed(&RecoverySeed::from_bytes(RECOVERY_SEED));
    let mut rng = ChaCha20Rng::from_seed(SETUP_RNG_SEED);
    let mut replay = Replay(rng.clone());
    let approver = DeviceIdentity::generate(&mut rng);
    let approver_id = DeviceId::generate(&mut rng);
    let new_device = DeviceIdentity::generate(&mut rng);
    let draws = vec![
        replay.take(32),
        replay.take(32),
        replay.take(32),
        replay.take(32),
        replay.take(32),
    ];
    let mut draft = DeviceListDraft::first(&account);
    draft
        .add_device(DeviceEntry::new(
            approver_id,
            *approver.public(),
            Platform::Android,
            "Pixel 8",
            ClientVersion {
                major: 1,
                minor: 14,
                patch: 0,
            },
            APPROVER_ADDED_AT,
        ))
        .unwrap();
    let held = VerifiedDeviceList::trust_first_with_key(
        draft.sign(&account).unwrap(),
        &account.public_key(),
    )
    .unwrap();
    Setup {
        account,
        approver,
        new_device,
        held,
        draws,
    }
}

pub fn contacts() -> Vec<Ed25519PublicKey> {
    let mut rng = ChaCha20Rng::from_seed(CONTACTS_RNG_SEED);
    let mut keys: Vec<Ed25519PublicKey> = (0..3)
        .map(|_| AccountIdentity::generate(&mut rng).public_key())
        .collect();
    // Given unsorted and with a repeat: approval sorts and removes it.
    keys.push(keys[0]);
    keys.reverse();
    keys
}

/// The inputs of one positive exchange.
pub struct Case {
    pub name: &'static str,
    pub n_rng_seed: [u8; 32],
    pub e_rng_seed: [u8; 32],
    pub platform: Platform,
    pub client_version: ClientVersion,
    pub description: &'static str,
    pub added_at: u64,
    pub grant: LinkGrant,
    pub contacts: Vec<Ed25519PublicKey>,
}

pub fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "link a laptop, account seed shared, three contacts",
            n_rng_seed: [0x4e; 32],
            e_rng_seed: [0xe1; 32],
            platform: Platform::Desktop,
            client_version: ClientVersion {
                major: 1,
                minor: 14,
                patch: 2,
            },
            description: "Work laptop",
            added_at: 1_700_000_600,
            grant: LinkGrant::ShareAccountSeed,
            contacts: contacts(),
        },
        Case {
            name: "link a tablet, account seed withheld, no contacts",
            n_rng_seed: [0x4f; 32],
            e_rng_seed: [0xe2; 32],
            platform: Platform::Other(0x2a),
            client_version: ClientVersion {
                major: 2,
                minor: 0,
                patch: 65535,
            },
            description: "Tablette de Zoë",
            added_at: 1_700_000_700,
            grant: LinkGrant::WithholdAccountSeed,
            contacts: vec![],
        },
    ]
}

pub fn grant_name(g: LinkGrant) -> &'static str {
    match g {
        LinkGrant::ShareAccountSeed => "share-account-seed",
        LinkGrant::WithholdAccountSeed => "withhold-account-seed",
    }
}

/// One exchange run through the public API.
pub struct Run {
    pub request: LinkRequest,
    pub response: LinkResponse,
    pub awaiting: AwaitingApproval,
    pub n_draws: Vec<Vec<u8>>,
    pub e_draws: Vec<Vec<u8>>,
    pub payload: LinkPayload,
    pub list: SignedDeviceList,
}

pub fn run(s: &Setup, c: &Case) -> Run {
    let mut n_rng = ChaCha20Rng::from_seed(c.n_rng_seed);
    let mut n_replay = Replay(n_rng.clone());
    let (initiator, request) = LinkInitiator::start(
        &mut n_rng,
        &s.new_device,
        c.platform,
        c.description,
        c.client_version,
    );
    let n_draws = vec![n_replay.take(32), n_replay.take(32)];
    let mut e_rng = ChaCha20Rng::from_seed(c.e_rng_seed);
    let mut e_replay = Replay(e_rng.clone());
    let (pending, response) =
        PendingLink::respond(&mut e_rng, &s.approver, &s.account, &request).unwrap();
    let awaiting = initiator.receive_response(&response).unwrap();
    assert_eq!(awaiting.sas(), pending.sas());
    let (payload, list) = pending
        .approve(
            &mut e_rng,
            &s.account,
            &s.held,
            c.added_at,
            c.grant,
            &c.contacts,
        )
        .map_err(|e| e.error)
        .unwrap();
    let e_draws = vec![e_replay.take(64), e_replay.take(32), e_replay.take(32)];
    Run {
        request,
        response,
        awaiting,
        n_draws,
        e_draws,
        payload,
        list,
    }
}

/// The error class as a path of variants (`List/BadSignature`,
/// `MalformedPayload/NotCanonical`, `Truncated`).
pub fn class_path(e: &impl core::fmt::Debug) -> String {
    let s = format!("{e:?}");
    let mut out = String::new();
    let mut rest = s.as_str();
    loop {
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        out.push_str(&rest[..end]);
        if rest[end..].starts_with('(') {
            out.push('/');
            rest = &rest[end + 1..];
        } else {
            return out;
        }
    }
}

fn sas_json(sas: &sas::Sas) -> (Value, Value) {
    let indices: Vec<u8> = sas.indices.to_vec();
    let names: Vec<&str> = sas.short().unwrap().iter().map(|(_, d)| *d).collect();
    (json!(indices), json!(names))
}

fn open_class(awaiting: &AwaitingApproval, payload: &[u8]) -> String {
    match LinkPayload::from_bytes(payload) {
        Err(e) => class_path(&e),
        Ok(p) => match awaiting.open_payload(&p) {
            Ok(_) => "Opened".into(),
            Err(e) => class_path(&e),
        },
    }
}

pub fn vectors() -> Value {
    let s = setup();
    let held = s.held.list().to_bytes();
    let mut v = Vec::new();
    let mut runs = Vec::new();
    for c in cases() {
        let r = run(&s, &c);
        let th = *r.awaiting.transcript_hash();
        let m = sas_input(&th);
        let seed = sas::sas_seed(&m).unwrap();
        let (indices, names) = sas_json(r.awaiting.sas());
        assert_eq!(sas::sas_from_seed(&seed), *r.awaiting.sas());
        let linked = r.awaiting.open_payload(&r.payload).unwrap();
        let v_contacts: Vec<Value> = c.contacts.iter().map(|k| hex(k.to_bytes())).collect();
        let cv = c.client_version;
        v.push(json!({
            "name": c.name,
            "kind": "link",
            "recovery_seed": hex(RECOVERY_SEED),
            "setup_rng_seed": hex(SETUP_RNG_SEED),
            "approver_ed25519_seed": hex(&s.draws[0]),
            "approver_x25519_secret": hex(&s.draws[1]),
            "new_device_ed25519_seed": hex(&s.draws[3]),
            "new_device_x25519_secret": hex(&s.draws[4]),
            "held_list": hex(&held),
            "platform": c.platform.to_byte(),
            "client_version": [cv.major, cv.minor, cv.patch],
            "description": c.description,
            "n_rng_seed": hex(c.n_rng_seed),
            "n_draws": { "xwing_seed": hex(&r.n_draws[0]), "nonce": hex(&r.n_draws[1]) },
            "e_rng_seed": hex(c.e_rng_seed),
            "e_draws": {
                "eseed": hex(&r.e_draws[0]),
                "nonce": hex(&r.e_draws[1]),
                "device_id": hex(&r.e_draws[2]),
            },
            "added_at": c.added_at,
            "grant": grant_name(c.grant),
            "contacts": v_contacts,
            "request": hex(r.request.to_bytes()),
            "response": hex(r.response.to_bytes()),
            "transcript_hash": hex(th),
            "payload_key": hex(r.awaiting.hazmat_payload_key().hazmat_bytes()),
            "sas_input": hex(&m),
            "sas_seed": hex(seed),
            "sas_indices": indices,
            "sas_emoji": names,
            "new_list": hex(r.list.to_bytes()),
            "device_id": hex(linked.device_id.as_bytes()),
            "payload": hex(r.payload.to_bytes()),
        }));
        runs.push(r);
    }
    let first = cases().remove(0);
    let r0 = &runs[0];
    let a0 = &r0.awaiting;
    let name0 = first.name;

    // Payloads the new device of the first exchange must reject.
    let device_id = DeviceId::from_bytes(r0.e_draws[2].clone().try_into().unwrap());
    let entry = |identity, desc: &str| {
        DeviceEntry::new(
            device_id,
            identity,
            first.platform,
            desc,
            first.client_version,
            first.added_at,
        )
    };
    let signed = |e: Option<DeviceEntry>| {
        let mut d = s.held.next_draft().unwrap();
        if let Some(e) = e {
            d.add_device(e).unwrap();
        }
        d.sign(&s.account).unwrap().to_bytes()
    };
    let content = |flags: u8, seed: &[u8], contacts: &[[u8; 32]], list: &[u8]| {
        let mut p = device_id.as_bytes().to_vec();
        p.push(flags);
        p.extend_from_slice(seed);
        p.extend_from_slice(&(contacts.len() as u16).to_be_bytes());
        for c in contacts {
            p.extend_from_slice(c);
        }
        p.extend_from_slice(list);
        p
    };
    let good_list = r0.list.to_bytes();
    let mut sorted: Vec<[u8; 32]> = first.contacts.iter().map(|k| k.to_bytes()).collect();
    sorted.sort_unstable();
    sorted.dedup();
    let mut descending = sorted.clone();
    descending.reverse();
    let mut tampered = r0.payload.to_bytes();
    *tampered.last_mut().unwrap() ^= 0x01;
    let crafted: Vec<(&str, Vec<u8>)> = vec![
        ("payload with its last byte flipped", tampered),
        ("payload of the other exchange", runs[1].payload.to_bytes()),
        (
            "list without the new device",
            a0.hazmat_seal(&content(0, &[], &[], &held)).to_bytes(),
        ),
        (
            "list naming the device id with the approver's identity",
            a0.hazmat_seal(&content(
                0,
                &[],
                &[],
                &signed(Some(entry(*s.approver.public(), first.description))),
            ))
            .to_bytes(),
        ),
        (
            "list with another description",
            a0.hazmat_seal(&content(
                0,
                &[],
                &[],
                &signed(Some(entry(*s.new_device.public(), "Laptop"))),
            ))
            .to_bytes(),
        ),
        (
            "account seed of another account",
            a0.hazmat_seal(&content(1, &[0x42; 32], &[], &good_list))
                .to_bytes(),
        ),
        (
            "contacts in descending order",
            a0.hazmat_seal(&content(0, &[], &descending, &good_list))
                .to_bytes(),
        ),
        (
            "undefined flag bit",
            a0.hazmat_seal(&content(2, &[], &[], &good_list)).to_bytes(),
        ),
        (
            "sealed part shorter than the fixed fields and the tag",
            r0.payload.to_bytes()[..2 + 50].to_vec(),
        ),
    ];
    for (name, payload) in crafted {
        let expected = open_class(a0, &payload);
        assert_ne!(expected, "Opened", "{name}");
        v.push(json!({
            "name": name,
            "kind": "link-payload-error",
            "of": name0,
            "payload": hex(&payload),
            "expected_error": expected,
        }));
    }

    // Men in the middle of the first exchange (spec §8.5.10).
    let request0 = r0.request.to_bytes();
    let mitm: Vec<(&str, &str, [u8; 32], [u8; 32])> = vec![
        (
            "man in the middle substitutes the X-Wing key",
            "x-wing-key",
            [0x3a; 32],
            [0xe3; 32],
        ),
        (
            "man in the middle substitutes the ciphertext",
            "ciphertext",
            [0x3b; 32],
            [0xe4; 32],
        ),
    ];
    for (name, substitute, mallory_seed, e_seed) in mitm {
        let mut m_draws = Replay(ChaCha20Rng::from_seed(mallory_seed));
        let mut request_to_e = request0.clone();
        let mut mallory_draws = serde_json::Map::new();
        if substitute == "x-wing-key" {
            let seed = m_draws.take(32);
            let kp = XWingKeyPair::from_seed(XWingSeed::hazmat_from_bytes(
                seed.clone().try_into().unwrap(),
            ));
            request_to_e[REQUEST_XWING_AT..REQUEST_XWING_AT + 1216]
                .copy_from_slice(&kp.public_key().to_bytes());
            mallory_draws.insert("xwing_seed".into(), hex(&seed));
        }
        let eseed = m_draws.take(64);
        mallory_draws.insert("eseed".into(), hex(&eseed));
        let mut e_rng = ChaCha20Rng::from_seed(e_seed);
        let mut e_replay = Replay(e_rng.clone());
        let (pending, response_from_e) = PendingLink::respond(
            &mut e_rng,
            &s.approver,
            &s.account,
            &LinkRequest::from_bytes(&request_to_e).unwrap(),
        )
        .unwrap();
        let pk_n = XWingPublicKey::from_bytes(&request0[REQUEST_XWING_AT..REQUEST_XWING_AT + 1216])
            .unwrap();
        let (ct, _) =
            hazmat_encapsulate_deterministic(&pk_n, &eseed.clone().try_into().unwrap()).unwrap();
        let mut response_to_n = response_from_e.to_bytes();
        response_to_n[RESPONSE_CT_AT..RESPONSE_CT_AT + 1120].copy_from_slice(&ct.to_bytes());
        let fooled = LinkInitiator::start(
            &mut ChaCha20Rng::from_seed(first.n_rng_seed),
            &s.new_device,
            first.platform,
            first.description,
            first.client_version,
        )
        .0
        .receive_response(&LinkResponse::from_bytes(&response_to_n).unwrap())
        .unwrap();
        assert_ne!(fooled.sas(), pending.sas());
        let (sas_e, _) = sas_json(pending.sas());
        let (sas_n, _) = sas_json(fooled.sas());
        let (payload, _) = pending
            .approve(
                &mut e_rng,
                &s.account,
                &s.held,
                first.added_at,
                first.grant,
                &first.contacts,
            )
            .map_err(|e| e.error)
            .unwrap();
        let e_draws = json!({
            "eseed": hex(e_replay.take(64)),
            "nonce": hex(e_replay.take(32)),
            "device_id": hex(e_replay.take(32)),
        });
        v.push(json!({
            "name": name,
            "kind": "link-mitm",
            "of": name0,
            "substitute": substitute,
            "mallory_rng_seed": hex(mallory_seed),
            "mallory_draws": mallory_draws,
            "e_rng_seed": hex(e_seed),
            "e_draws": e_draws,
            "request_to_e": hex(&request_to_e),
            "response_from_e": hex(response_from_e.to_bytes()),
            "response_to_n": hex(&response_to_n),
            "sas_indices_at_e": sas_e,
            "sas_indices_at_n": sas_n,
            "payload": hex(payload.to_bytes()),
            "expected_error": open_class(&fooled, &payload.to_bytes()),
        }));
    }

    // Decoding errors (spec §6.5, §8.5.3, §8.5.4, §8.5.6).
    let response0 = r0.response.to_bytes();
    let desc_len_at = request0.len() - first.description.len() - 1;
    let with = |b: &[u8], at: usize, x: u8| {
        let mut b = b.to_vec();
        b[at] = x;
        b
    };
    let mut long_desc = request0[..desc_len_at].to_vec();
    long_desc.push(65);
    long_desc.extend_from_slice(&[b'a'; 65]);
    let mut bad_mlkem = request0.clone();
    bad_mlkem[REQUEST_XWING_AT..REQUEST_XWING_AT + 2].fill(0xff);
    let mut small_order = [0u8; 32];
    small_order[0] = 1;
    let mut bad_account = response0.clone();
    bad_account[2..34].copy_from_slice(&small_order);
    let mut payload_as_list = r0.payload.to_bytes();
    payload_as_list[1] = 0x05;
    let decode: Vec<(&str, &str, Vec<u8>)> = vec![
        (
            "request cut inside the X-Wing key",
            "request",
            request0[..REQUEST_XWING_AT + 100].to_vec(),
        ),
        (
            "request with a trailing byte",
            "request",
            [request0.as_slice(), &[0]].concat(),
        ),
        (
            "request of wire version 2",
            "request",
            with(&request0, 0, 2),
        ),
        (
            "response bytes decoded as a request",
            "request",
            response0.clone(),
        ),
        ("request with a 65-byte description", "request", long_desc),
        (
            "request with a description that is not UTF-8",
            "request",
            with(&request0, desc_len_at + 1, 0xff),
        ),
        ("request with an invalid ML-KEM key", "request", bad_mlkem),
        (
            "response cut before the nonce",
            "response",
            response0[..response0.len() - 32].to_vec(),
        ),
        (
            "response with a small-order account key",
            "response",
            bad_account,
        ),
        (
            "payload with the type of a device list",
            "payload",
            payload_as_list,
        ),
    ];
    for (name, object, input) in decode {
        let expected = match object {
            "request" => LinkRequest::from_bytes(&input)
                .err()
                .map(|e| class_path(&e)),
            "response" => LinkResponse::from_bytes(&input)
                .err()
                .map(|e| class_path(&e)),
            _ => LinkPayload::from_bytes(&input)
                .err()
                .map(|e| class_path(&e)),
        }
        .expect("decoding must fail");
        v.push(json!({
            "name": name,
            "kind": "link-decode-error",
            "object": object,
            "input": hex(&input),
            "expected_error": expected,
        }));
    }
    file(
        "link",
        "Linking a new device: X-Wing request and response, transcript hash, payload key, emoji SAS, approval with the next device list, the sealed payload, rejected payloads, men in the middle, decoding errors (spec §8.5)",
        v,
    )
}
