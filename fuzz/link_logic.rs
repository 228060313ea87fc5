//! Device-link target (spec §8.5), included by `logic.rs`.
//!
//! `device_link`: `mode ‖ bytes`. Mode 0, 1, 2: the bytes are a link
//! request, response or payload; an accepted encoding is canonical. Mode 3:
//! the bytes are a payload the new device of a fixed exchange opens (after
//! decoding); mode 4: the bytes are a response the new device of that
//! exchange receives. Nothing panics; a payload that opens names the new
//! device in a list that verifies under the exchange's account.

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use session_ratchet::account::Account;
use session_ratchet::device::link::{
    AwaitingApproval, LinkGrant, LinkInitiator, LinkPayload, LinkRequest, LinkResponse, PendingLink,
};
use session_ratchet::device::list::{
    ClientVersion, DeviceEntry, DeviceId, DeviceListDraft, Platform, VerifiedDeviceList,
};
use session_ratchet::identity::DeviceIdentity;
use std::sync::OnceLock;

struct Exchange {
    initiator: LinkInitiator,
    awaiting: AwaitingApproval,
    account: Account,
    seeds: Vec<Vec<u8>>,
}

const V: ClientVersion = ClientVersion {
    major: 1,
    minor: 2,
    patch: 3,
};

/// One account with one device E; a new device N asks to join and E
/// approves. Built once (each SAS costs an Argon2id run).
fn exchange() -> &'static Exchange {
    static X: OnceLock<Exchange> = OnceLock::new();
    X.get_or_init(|| {
        let mut r = ChaCha20Rng::seed_from_u64(0x11C);
        let (account, _) = Account::generate(&mut r);
        let e = DeviceIdentity::generate(&mut r);
        let e_id = DeviceId::generate(&mut r);
        let mut draft = DeviceListDraft::first(&account);
        draft
            .add_device(DeviceEntry::new(
                e_id,
                *e.public(),
                Platform::Android,
                "phone",
                V,
                1,
            ))
            .unwrap();
        let held = VerifiedDeviceList::trust_first_with_key(
            draft.sign(&account).unwrap(),
            &account.public_key(),
        )
        .unwrap();
        let n = DeviceIdentity::generate(&mut r);
        let (initiator, request) = LinkInitiator::start(&mut r, &n, Platform::Desktop, "laptop", V);
        let (pending, response) = PendingLink::respond(&mut r, &e, &account, &request).unwrap();
        let awaiting = initiator.receive_response(&response).unwrap();
        let contacts = [Account::generate(&mut r).0.public_key()];
        let (payload, _) = pending
            .approve(
                &mut r,
                &account,
                &held,
                2,
                LinkGrant::ShareAccountSeed,
                &contacts,
            )
            .map_err(|e| e.error)
            .unwrap();
        let with = |mode: u8, b: Vec<u8>| {
            let mut v = vec![mode];
            v.extend(b);
            v
        };
        let seeds = vec![
            with(0, request.to_bytes()),
            with(1, response.to_bytes()),
            with(2, payload.to_bytes()),
            with(3, payload.to_bytes()),
            with(4, response.to_bytes()),
        ];
        Exchange {
            initiator,
            awaiting,
            account,
            seeds,
        }
    })
}

pub fn device_link(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 5 {
        0 => {
            if let Ok(m) = LinkRequest::from_bytes(rest) {
                assert_eq!(m.to_bytes(), rest, "request not canonical");
            }
        }
        1 => {
            if let Ok(m) = LinkResponse::from_bytes(rest) {
                assert_eq!(m.to_bytes(), rest, "response not canonical");
            }
        }
        2 => {
            if let Ok(m) = LinkPayload::from_bytes(rest) {
                assert_eq!(m.to_bytes(), rest, "payload not canonical");
            }
        }
        3 => {
            let x = exchange();
            if let Ok(p) = LinkPayload::from_bytes(rest)
                && let Ok(linked) = x.awaiting.open_payload(&p)
            {
                assert!(linked.list.is_active(&linked.device_id));
                assert_eq!(linked.list.list().account(), &x.account.public_key());
            }
        }
        _ => {
            let x = exchange();
            if let Ok(resp) = LinkResponse::from_bytes(rest) {
                // A forged or altered response never ends the exchange: the
                // genuine payload still opens afterwards.
                let _ = x.initiator.receive_response(&resp);
                let genuine = LinkPayload::from_bytes(&x.seeds[3][1..]).unwrap();
                assert!(x.awaiting.open_payload(&genuine).is_ok());
            }
        }
    }
}

pub fn device_link_seeds() -> Vec<Vec<u8>> {
    exchange().seeds.clone()
}
