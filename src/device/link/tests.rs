use super::*;
use crate::device::list::UpdateOutcome;
use crate::identity::AccountIdentity;
use crate::secret::XWingSeed;
use alloc::string::ToString;
use alloc::vec;
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

const V: ClientVersion = ClientVersion {
    major: 1,
    minor: 14,
    patch: 2,
};
const ADDED_AT: u64 = 1_700_000_500;

/// The existing device's world: an account whose v1 list holds `phone`.
struct Existing {
    account: Account,
    phone: DeviceIdentity,
    held: VerifiedDeviceList,
}

fn existing(rng: &mut ChaCha20Rng) -> Existing {
    let account = Account::from_seed(&Ed25519Seed::from_bytes([3; 32]));
    let phone = DeviceIdentity::generate(rng);
    let mut draft = DeviceListDraft::first(&account);
    draft
        .add_device(DeviceEntry::new(
            DeviceId::generate(rng),
            *phone.public(),
            Platform::Android,
            "Pixel",
            V,
            1_700_000_000,
        ))
        .unwrap();
    let held = VerifiedDeviceList::trust_first_with_key(
        draft.sign(&account).unwrap(),
        &account.public_key(),
    )
    .unwrap();
    Existing {
        account,
        phone,
        held,
    }
}

/// One exchange up to the SAS, messages passed through their encodings.
struct Exchanged {
    e: Existing,
    laptop: DeviceIdentity,
    initiator: LinkInitiator,
    /// Taken by [`approve`].
    pending: Option<PendingLink>,
    awaiting: AwaitingApproval,
    rng: ChaCha20Rng,
}

fn exchanged(seed: u8) -> Exchanged {
    let mut rng = ChaCha20Rng::from_seed([seed; 32]);
    let e = existing(&mut rng);
    let laptop = DeviceIdentity::generate(&mut rng);
    let (initiator, request) =
        LinkInitiator::start(&mut rng, &laptop, Platform::Desktop, "Laptop", V);
    let request = LinkRequest::from_bytes(&request.to_bytes()).unwrap();
    let (pending, response) =
        PendingLink::respond(&mut rng, &e.phone, &e.account, &request).unwrap();
    let response = LinkResponse::from_bytes(&response.to_bytes()).unwrap();
    let awaiting = initiator.receive_response(&response).unwrap();
    Exchanged {
        e,
        laptop,
        initiator,
        pending: Some(pending),
        awaiting,
        rng,
    }
}

fn approve(
    mut x: Exchanged,
    grant: LinkGrant,
    contacts: &[Ed25519PublicKey],
) -> (Exchanged, LinkPayload, SignedDeviceList) {
    let pending = x.pending.take().unwrap();
    let (payload, list) = pending
        .approve(
            &mut x.rng,
            &x.e.account,
            &x.e.held,
            ADDED_AT,
            grant,
            contacts,
        )
        .unwrap();
    let payload = LinkPayload::from_bytes(&payload.to_bytes()).unwrap();
    (x, payload, list)
}

fn pending(x: &Exchanged) -> &PendingLink {
    x.pending.as_ref().unwrap()
}

fn keys(n: usize, seed: u8) -> Vec<Ed25519PublicKey> {
    let mut rng = ChaCha20Rng::from_seed([seed; 32]);
    (0..n)
        .map(|_| AccountIdentity::generate(&mut rng).public_key())
        .collect()
}

/// Seals arbitrary content under the new device's payload key, as a faulty
/// or malicious approver holding the right key could.
fn seal_raw(awaiting: &AwaitingApproval, plain: &[u8]) -> LinkPayload {
    let mut buf = plain.to_vec();
    assert!(aead::seal_single_use(
        awaiting.exchange.payload_key.expose(),
        &PAYLOAD_AD,
        &mut buf
    ));
    LinkPayload { sealed: buf }
}

fn seal_content(
    awaiting: &AwaitingApproval,
    device_id: DeviceId,
    seed: Option<[u8; 32]>,
    list: SignedDeviceList,
) -> LinkPayload {
    let content = PayloadContent {
        device_id,
        seed: seed.map(Ed25519Seed::from_bytes),
        contacts: Vec::new(),
        list,
    };
    content.seal(&awaiting.exchange.payload_key).unwrap()
}

#[test]
fn end_to_end_both_sides_agree_and_the_new_device_is_listed() {
    let x = exchanged(1);
    assert_eq!(x.awaiting.sas(), pending(&x).sas());
    assert_eq!(x.awaiting.transcript_hash(), pending(&x).transcript_hash());
    assert_eq!(
        x.awaiting.exchange.payload_key,
        pending(&x).0.exchange.payload_key
    );
    assert!(x.awaiting.sas().short().is_ok());
    let mut contacts = keys(5, 40);
    contacts.push(contacts[2]);
    contacts.reverse();
    let (x, payload, new_list) = approve(x, LinkGrant::ShareAccountSeed, &contacts);

    let linked = x.awaiting.open_payload(&payload).unwrap();
    assert_eq!(linked.list.list(), &new_list);
    assert_eq!(new_list.version(), 2);
    let DeviceStatus::Active(entry) = linked.list.status(&linked.device_id) else {
        panic!("not listed")
    };
    assert_eq!(entry.identity(), x.laptop.public());
    assert_eq!(entry.platform(), Platform::Desktop);
    assert_eq!(entry.description(), "Laptop");
    assert_eq!((entry.client_version(), entry.added_at()), (V, ADDED_AT));
    assert!(
        linked
            .list
            .device_with_identity(x.e.phone.public())
            .is_some()
    );
    assert_eq!(
        linked.account.as_ref().map(Account::public_key),
        Some(x.e.account.public_key())
    );
    // Contacts arrive sorted and without the repeat.
    let mut want = keys(5, 40);
    want.sort_unstable_by_key(Ed25519PublicKey::to_bytes);
    assert_eq!(linked.contacts, want);

    // The existing device moves its own list forward to the published one.
    let UpdateOutcome::Advanced(held) = x.e.held.accept_update(&new_list, &[]).unwrap() else {
        panic!("not advanced")
    };
    assert!(held.is_active(&linked.device_id));
}

#[test]
fn withheld_seed_gives_a_listed_device_without_the_account_key() {
    let (x, payload, _) = approve(exchanged(2), LinkGrant::WithholdAccountSeed, &[]);
    let linked = x.awaiting.open_payload(&payload).unwrap();
    assert!(linked.account.is_none());
    assert!(linked.contacts.is_empty());
    assert!(linked.list.is_active(&linked.device_id));
    // Plaintext: id (32), flags 0, count 0, then the list.
    assert_eq!(
        payload.sealed.len(),
        PAYLOAD_FIXED_LEN + linked.list.list().to_bytes().len() + TAG_LEN
    );
}

#[test]
fn sizes_match_the_spec() {
    assert_eq!(LINK_REQUEST_MIN_LEN, 1322);
    assert_eq!(MAX_LINK_REQUEST_LEN, 1386);
    assert_eq!(LINK_RESPONSE_LEN, 1250);
    assert_eq!(MAX_LINK_PAYLOAD_LEN, 94_595);
    let x = exchanged(3);
    let request = x.initiator.request().to_bytes();
    assert_eq!(request.len(), LINK_REQUEST_MIN_LEN + "Laptop".len());
    assert_eq!(x.awaiting.response().to_bytes().len(), LINK_RESPONSE_LEN);
    assert_eq!(
        sas_input(&[7; 32]),
        [b"SessionRatchet/v1/link-sas".as_slice(), &[7; 32]].concat()
    );
}

#[test]
fn a_man_in_the_middle_replacing_the_xwing_key_shows_different_emoji() {
    let mut rng = ChaCha20Rng::from_seed([4; 32]);
    let e = existing(&mut rng);
    let laptop = DeviceIdentity::generate(&mut rng);
    let (initiator, request) = LinkInitiator::start(&mut rng, &laptop, Platform::Ios, "iPad", V);
    // The attacker forwards the request with its own X-Wing key ...
    let mallory = XWingKeyPair::generate(&mut rng);
    let mut forged = request.clone();
    forged.xwing = mallory.public_key().clone();
    let (pending, response) =
        PendingLink::respond(&mut rng, &e.phone, &e.account, &forged).unwrap();
    // ... and answers the new device with its own encapsulation.
    let (ct, _) = xwing::encapsulate(&mut rng, &request.xwing).unwrap();
    let mut relayed = response.clone();
    relayed.ciphertext = ct;
    let awaiting = initiator.receive_response(&relayed).unwrap();
    assert_ne!(awaiting.sas(), pending.sas());

    // Had the user approved anyway, the new device could not open the payload ...
    let (payload, _) = pending
        .approve(
            &mut rng,
            &e.account,
            &e.held,
            ADDED_AT,
            LinkGrant::ShareAccountSeed,
            &[],
        )
        .unwrap();
    assert_eq!(
        awaiting.open_payload(&payload).unwrap_err(),
        LinkError::PayloadAuthenticationFailed
    );
    // ... but the attacker could: the SAS comparison is what stops it.
    let stolen = LinkInitiator {
        xwing: mallory,
        request: forged,
    }
    .receive_response(&response)
    .unwrap()
    .open_payload(&payload)
    .unwrap();
    assert!(stolen.account.is_some());
}

#[test]
fn a_man_in_the_middle_replacing_the_ciphertext_shows_different_emoji() {
    let mut x = exchanged(5);
    let mut relayed = x.awaiting.response().clone();
    let (ct, _) = xwing::encapsulate(&mut x.rng, &x.initiator.request().xwing).unwrap();
    relayed.ciphertext = ct;
    let fooled = x.initiator.receive_response(&relayed).unwrap();
    assert_ne!(fooled.sas(), pending(&x).sas());
    let (x, payload, _) = approve(x, LinkGrant::WithholdAccountSeed, &[]);
    assert_eq!(
        fooled.open_payload(&payload).unwrap_err(),
        LinkError::PayloadAuthenticationFailed
    );
    // The genuine exchange still opens it.
    assert!(x.awaiting.open_payload(&payload).is_ok());
}

#[test]
fn changing_any_field_of_either_message_changes_the_emoji() {
    let mut rng = ChaCha20Rng::from_seed([6; 32]);
    let e = existing(&mut rng);
    let laptop = DeviceIdentity::generate(&mut rng);
    // Initiators sharing one X-Wing key, so only the changed field differs.
    let initiator = |request: LinkRequest| LinkInitiator {
        xwing: XWingKeyPair::from_seed(XWingSeed::from_slice_array(&[6; 32])),
        request,
    };
    let (base, request) = LinkInitiator::start(&mut rng, &laptop, Platform::Desktop, "Laptop", V);
    let base = initiator(LinkRequest {
        xwing: initiator(request.clone()).xwing.public_key().clone(),
        ..base.request
    });
    let (pending, response) =
        PendingLink::respond(&mut rng, &e.phone, &e.account, base.request()).unwrap();
    let agreed = base.receive_response(&response).unwrap();
    assert_eq!(agreed.sas(), pending.sas());

    let mut nonce_changed = base.request().clone();
    nonce_changed.nonce[0] ^= 1;
    let mut described = base.request().clone();
    described.description = "Laptop2".into();
    let mut platform = base.request().clone();
    platform.platform = Platform::Web;
    for request in [nonce_changed, described, platform] {
        let changed = initiator(request).receive_response(&response).unwrap();
        assert_ne!(changed.sas(), pending.sas());
        assert_ne!(changed.transcript_hash(), pending.transcript_hash());
    }
    let mut nonce = response.clone();
    nonce.nonce[31] ^= 0x80;
    let mut approver = response.clone();
    approver.approver = *laptop.public();
    for response in [nonce, approver] {
        let changed = base.receive_response(&response).unwrap();
        assert_ne!(changed.sas(), pending.sas());
    }
}

#[test]
fn rejecting_changes_nothing_and_produces_nothing() {
    let mut rng = ChaCha20Rng::from_seed([7; 32]);
    let e = existing(&mut rng);
    let list_before = e.held.list().to_bytes();
    let account_before = e.account.public_key();
    let laptop = DeviceIdentity::generate(&mut rng);
    let (initiator, request) = LinkInitiator::start(&mut rng, &laptop, Platform::Web, "Browser", V);
    let (pending, response) =
        PendingLink::respond(&mut rng, &e.phone, &e.account, &request).unwrap();
    let awaiting = initiator.receive_response(&response).unwrap();
    // Both sides reject: the calls return `()`, nothing to publish or send.
    let () = pending.reject();
    let () = awaiting.reject();
    let () = initiator.reject();
    assert_eq!(e.held.list().to_bytes(), list_before);
    assert_eq!(e.account.public_key(), account_before);
    // The held list still advances exactly as before: nothing was signed.
    let next = e.held.next_draft().unwrap();
    assert_eq!(next.devices().len(), 1);
}

#[test]
fn a_tampered_payload_is_rejected_and_the_state_is_kept() {
    let (x, payload, _) = approve(exchanged(8), LinkGrant::ShareAccountSeed, &keys(2, 41));
    let bytes = payload.to_bytes();
    for i in 2..bytes.len() {
        let mut b = bytes.clone();
        b[i] ^= 0x01;
        let p = LinkPayload::from_bytes(&b).unwrap();
        assert_eq!(
            x.awaiting.open_payload(&p).unwrap_err(),
            LinkError::PayloadAuthenticationFailed,
            "byte {i}"
        );
    }
    // Cut off or extended: the tag no longer matches.
    let short = LinkPayload::from_bytes(&bytes[..bytes.len() - 1]).unwrap();
    assert_eq!(
        x.awaiting.open_payload(&short).unwrap_err(),
        LinkError::PayloadAuthenticationFailed
    );
    // The failures left the state usable.
    assert!(x.awaiting.open_payload(&payload).is_ok());
}

#[test]
fn a_payload_from_another_exchange_is_rejected() {
    let (x, _, _) = approve(exchanged(9), LinkGrant::ShareAccountSeed, &[]);
    let (_, other, _) = approve(exchanged(10), LinkGrant::ShareAccountSeed, &[]);
    assert_eq!(
        x.awaiting.open_payload(&other).unwrap_err(),
        LinkError::PayloadAuthenticationFailed
    );
}

#[test]
fn payload_content_is_checked_against_the_request_and_response() {
    let x = exchanged(11);
    let mut rng = ChaCha20Rng::from_seed([12; 32]);
    let account = &x.e.account;
    let laptop = x.laptop.public();
    let id = DeviceId::generate(&mut rng);
    let with = |f: &dyn Fn(&mut DeviceListDraft), acct: &Account| {
        let mut d = x.e.held.next_draft().unwrap();
        f(&mut d);
        d.sign(acct).unwrap()
    };
    let entry = |identity: DevicePublicIdentity, desc: &str| {
        DeviceEntry::new(id, identity, Platform::Desktop, desc, V, ADDED_AT)
    };
    let good = with(
        &|d| d.add_device(entry(*laptop, "Laptop")).unwrap(),
        account,
    );
    // Sanity: the crafted good payload opens.
    assert!(
        x.awaiting
            .open_payload(&seal_content(&x.awaiting, id, None, good.clone()))
            .is_ok()
    );

    let other_device = DeviceIdentity::generate(&mut rng);
    let cases: Vec<(LinkPayload, LinkError)> = vec![
        // The list does not contain the new device at all.
        (
            seal_content(&x.awaiting, id, None, with(&|_| {}, account)),
            LinkError::NotListed,
        ),
        // The id is listed with another device's identity.
        (
            seal_content(
                &x.awaiting,
                id,
                None,
                with(
                    &|d| {
                        d.add_device(entry(*other_device.public(), "Laptop"))
                            .unwrap()
                    },
                    account,
                ),
            ),
            LinkError::IdentityMismatch,
        ),
        // Listed, but not as requested.
        (
            seal_content(
                &x.awaiting,
                id,
                None,
                with(
                    &|d| d.add_device(entry(*laptop, "Laptop!")).unwrap(),
                    account,
                ),
            ),
            LinkError::EntryMismatch,
        ),
        // The seed is not the account's.
        (
            seal_content(&x.awaiting, id, Some([4; 32]), good.clone()),
            LinkError::WrongAccountSeed,
        ),
        // The payload's id is another one.
        (
            seal_content(
                &x.awaiting,
                DeviceId::from_bytes([0xAA; 32]),
                None,
                good.clone(),
            ),
            LinkError::NotListed,
        ),
    ];
    for (payload, want) in cases {
        assert_eq!(x.awaiting.open_payload(&payload).unwrap_err(), want);
    }

    // A list of another account, or with a broken signature.
    let mallory = Account::from_seed(&Ed25519Seed::from_bytes([5; 32]));
    let mut draft = DeviceListDraft::first(&mallory);
    draft.add_device(entry(*laptop, "Laptop")).unwrap();
    let foreign = draft.sign(&mallory).unwrap();
    assert_eq!(
        x.awaiting
            .open_payload(&seal_content(&x.awaiting, id, None, foreign))
            .unwrap_err(),
        LinkError::List(DeviceListError::WrongAccount)
    );
    let mut bad = good.to_bytes();
    *bad.last_mut().unwrap() ^= 1;
    let bad = SignedDeviceList::from_bytes(&bad).unwrap();
    assert_eq!(
        x.awaiting
            .open_payload(&seal_content(&x.awaiting, id, None, bad))
            .unwrap_err(),
        LinkError::List(DeviceListError::BadSignature { version: 2 })
    );

    // The approving device was removed from the list it sent.
    let phone_id = *x.e.held.list().devices()[0].id();
    let without_approver = with(
        &|d| {
            d.add_device(entry(*laptop, "Laptop")).unwrap();
            d.remove_device(&phone_id, ADDED_AT).unwrap();
        },
        account,
    );
    assert_eq!(
        x.awaiting
            .open_payload(&seal_content(&x.awaiting, id, None, without_approver))
            .unwrap_err(),
        LinkError::ApproverNotListed
    );
    // None of it changed the state.
    assert!(
        x.awaiting
            .open_payload(&seal_content(&x.awaiting, id, None, good))
            .is_ok()
    );
}

#[test]
fn malformed_payload_content_is_rejected_with_its_wire_error() {
    let x = exchanged(13);
    let mut rng = ChaCha20Rng::from_seed([14; 32]);
    let id = DeviceId::generate(&mut rng);
    let mut d = x.e.held.next_draft().unwrap();
    d.add_device(DeviceEntry::new(
        id,
        *x.laptop.public(),
        Platform::Desktop,
        "Laptop",
        V,
        1,
    ))
    .unwrap();
    let list = d.sign(&x.e.account).unwrap().to_bytes();
    let mut contacts = keys(2, 42);
    contacts.sort_unstable_by_key(Ed25519PublicKey::to_bytes);
    let plain = |flags: u8, count: u16, cs: &[[u8; 32]], tail: &[u8]| {
        let mut p = id.as_bytes().to_vec();
        p.push(flags);
        p.extend_from_slice(&count.to_be_bytes());
        for c in cs {
            p.extend_from_slice(c);
        }
        p.extend_from_slice(tail);
        p
    };
    let (c0, c1) = (contacts[0].to_bytes(), contacts[1].to_bytes());
    let mut small_order = [0u8; 32];
    small_order[0] = 1;
    let cases: Vec<(Vec<u8>, WireError)> = vec![
        (
            plain(0x02, 0, &[], &list),
            WireError::InvalidFlags {
                field: "payload flags",
                flags: 2,
            },
        ),
        (
            plain(0, 1025, &[], &list),
            WireError::TooMany {
                field: "contact count",
                count: 1025,
                max: 1024,
            },
        ),
        (
            plain(0, 2, &[c1, c0], &list),
            WireError::NotCanonical { field: "contact" },
        ),
        (
            plain(0, 2, &[c0, c0], &list),
            WireError::NotCanonical { field: "contact" },
        ),
        (
            plain(0, 1, &[small_order], &list),
            WireError::InvalidEd25519Key { field: "contact" },
        ),
        (
            plain(0, 1000, &[c0], &[]),
            WireError::Truncated { field: "contact" },
        ),
        (
            plain(0, 0, &[], &[list.as_slice(), &[0]].concat()),
            WireError::TrailingBytes { count: 1 },
        ),
        (
            plain(0, 0, &[], &list[..list.len() - 1]),
            WireError::Truncated { field: "signature" },
        ),
        (
            plain(0, 0, &[], &[]),
            WireError::Truncated { field: "version" },
        ),
        (
            id.as_bytes().to_vec(),
            WireError::Truncated {
                field: "payload flags",
            },
        ),
        (
            [id.as_bytes().as_slice(), &[1], &[9; 16]].concat(),
            WireError::Truncated {
                field: "account seed",
            },
        ),
    ];
    for (p, want) in cases {
        assert_eq!(
            x.awaiting
                .open_payload(&seal_raw(&x.awaiting, &p))
                .unwrap_err(),
            LinkError::MalformedPayload(want)
        );
    }
    // The same content in canonical order opens.
    let ok = x
        .awaiting
        .open_payload(&seal_raw(&x.awaiting, &plain(0, 2, &[c0, c1], &list)))
        .unwrap();
    assert_eq!(ok.contacts, contacts);
}

#[test]
fn approval_checks_come_first_and_hand_the_pending_link_back() {
    let x = exchanged(15);
    let mut rng = x.rng.clone();
    let untouched = rng.clone();
    let e = &x.e;
    let other = Account::from_seed(&Ed25519Seed::from_bytes([6; 32]));
    let mut d = DeviceListDraft::first(&other);
    d.add_device(DeviceEntry::new(
        DeviceId::from_bytes([1; 32]),
        *e.phone.public(),
        Platform::Android,
        "",
        V,
        0,
    ))
    .unwrap();
    let other_list =
        VerifiedDeviceList::trust_first_with_key(d.sign(&other).unwrap(), &other.public_key())
            .unwrap();
    // A list without the approving device.
    let mut d = DeviceListDraft::first(&e.account);
    d.add_device(DeviceEntry::new(
        DeviceId::from_bytes([2; 32]),
        *x.laptop.public(),
        Platform::Android,
        "",
        V,
        0,
    ))
    .unwrap();
    let has_new = VerifiedDeviceList::trust_first_with_key(
        d.sign(&e.account).unwrap(),
        &e.account.public_key(),
    )
    .unwrap();
    let mut d = e.held.next_draft().unwrap();
    d.add_device(DeviceEntry::new(
        DeviceId::from_bytes([3; 32]),
        *x.laptop.public(),
        Platform::Desktop,
        "",
        V,
        0,
    ))
    .unwrap();
    let already = VerifiedDeviceList::trust_first_with_key(
        d.sign(&e.account).unwrap(),
        &e.account.public_key(),
    )
    .unwrap();
    let mut d = e.held.next_draft().unwrap();
    let mut filler_rng = ChaCha20Rng::from_seed([16; 32]);
    while d.devices().len() < MAX_DEVICES {
        let id = DeviceIdentity::generate(&mut filler_rng);
        d.add_device(DeviceEntry::new(
            DeviceId::generate(&mut filler_rng),
            *id.public(),
            Platform::Web,
            "",
            V,
            0,
        ))
        .unwrap();
    }
    let full = VerifiedDeviceList::trust_first_with_key(
        d.sign(&e.account).unwrap(),
        &e.account.public_key(),
    )
    .unwrap();
    let too_many = keys(MAX_LINK_CONTACTS + 1, 43);

    let mut pending = x.pending.unwrap();
    let cases: Vec<(
        &Account,
        &VerifiedDeviceList,
        &[Ed25519PublicKey],
        LinkError,
    )> = vec![
        (&other, &e.held, &[], LinkError::WrongAccount),
        (&e.account, &other_list, &[], LinkError::WrongAccount),
        (&e.account, &has_new, &[], LinkError::ApproverNotListed),
        (&e.account, &already, &[], LinkError::AlreadyListed),
        (
            &e.account,
            &full,
            &[],
            LinkError::List(DeviceListError::TooManyDevices),
        ),
        (
            &e.account,
            &e.held,
            &too_many,
            LinkError::TooManyContacts { count: 1025 },
        ),
    ];
    for (account, held, contacts, want) in cases {
        let err = pending
            .approve(
                &mut rng,
                account,
                held,
                ADDED_AT,
                LinkGrant::ShareAccountSeed,
                contacts,
            )
            .unwrap_err();
        assert_eq!(err.error, want);
        assert!(!err.to_string().is_empty());
        pending = err.pending;
    }
    // Nothing was drawn, and the handed-back link still approves, with the
    // maximum of contacts (repeats removed).
    assert_eq!(rng, untouched);
    let mut contacts = too_many[..MAX_LINK_CONTACTS].to_vec();
    contacts.push(too_many[0]);
    let (payload, _) = pending
        .approve(
            &mut rng,
            &e.account,
            &e.held,
            ADDED_AT,
            LinkGrant::ShareAccountSeed,
            &contacts,
        )
        .unwrap();
    let linked = x.awaiting.open_payload(&payload).unwrap();
    assert_eq!(linked.contacts.len(), MAX_LINK_CONTACTS);
    assert!(payload.to_bytes().len() <= MAX_LINK_PAYLOAD_LEN);
}

#[test]
fn low_order_x25519_parts_are_rejected_without_ending_the_exchange() {
    let x = exchanged(17);
    let mut rng = ChaCha20Rng::from_seed([18; 32]);
    // A request whose X-Wing key has an all-zero X25519 half.
    let mut bytes = x.initiator.request().to_bytes();
    let at = 2 + 64 + XWING_PUBLIC_KEY_LEN - 32;
    bytes[at..at + 32].fill(0);
    let request = LinkRequest::from_bytes(&bytes).unwrap();
    assert_eq!(
        PendingLink::respond(&mut rng, &x.e.phone, &x.e.account, &request).unwrap_err(),
        LinkError::Kem(KemError::NonContributoryX25519)
    );
    // A response whose ciphertext has an all-zero X25519 half.
    let mut bytes = x.awaiting.response().to_bytes();
    let at = LINK_RESPONSE_LEN - LINK_NONCE_LEN - 32;
    bytes[at..at + 32].fill(0);
    let response = LinkResponse::from_bytes(&bytes).unwrap();
    assert_eq!(
        x.initiator.receive_response(&response).unwrap_err(),
        LinkError::Kem(KemError::NonContributoryX25519)
    );
    // The initiator still takes the genuine response.
    let again = x.initiator.receive_response(x.awaiting.response()).unwrap();
    assert_eq!(again.sas(), pending(&x).sas());
}

#[test]
fn long_descriptions_are_cut_on_a_character_boundary() {
    let mut rng = ChaCha20Rng::from_seed([19; 32]);
    let laptop = DeviceIdentity::generate(&mut rng);
    let (_, request) =
        LinkInitiator::start(&mut rng, &laptop, Platform::Desktop, &"é".repeat(40), V);
    assert_eq!(request.description(), "é".repeat(32));
    assert_eq!(
        LinkRequest::from_bytes(&request.to_bytes()).unwrap(),
        request
    );
}

/// Every proper prefix of `bytes` fails to decode as truncated.
fn assert_truncations<T: core::fmt::Debug>(
    bytes: &[u8],
    decode: impl Fn(&[u8]) -> Result<T, WireError>,
) {
    for n in 0..bytes.len() {
        let err = decode(&bytes[..n]).unwrap_err();
        assert!(
            matches!(err, WireError::Truncated { .. }),
            "prefix {n}: {err:?}"
        );
    }
}

#[test]
fn request_decoder_rejects_every_malformation() {
    let x = exchanged(20);
    let request = x.initiator.request();
    let bytes = request.to_bytes();
    assert_eq!(&LinkRequest::from_bytes(&bytes).unwrap(), request);
    assert_truncations(&bytes, LinkRequest::from_bytes);
    let with = |at: usize, v: u8| {
        let mut b = bytes.clone();
        b[at] = v;
        LinkRequest::from_bytes(&b).unwrap_err()
    };
    assert_eq!(with(0, 2), WireError::UnsupportedVersion { version: 2 });
    assert_eq!(
        with(1, 9),
        WireError::UnexpectedType {
            expected: 8,
            actual: 9
        }
    );
    let len_at = LINK_REQUEST_MIN_LEN - 1;
    assert_eq!(
        with(len_at, 65),
        WireError::LengthExceeded {
            field: "description",
            len: 65,
            max: 64
        }
    );
    assert_eq!(
        with(len_at, 7),
        WireError::Truncated {
            field: "description"
        }
    );
    assert_eq!(with(len_at, 5), WireError::TrailingBytes { count: 1 });
    assert_eq!(
        with(len_at + 1, 0xFF),
        WireError::InvalidUtf8 {
            field: "description"
        }
    );
    let mut long = bytes[..len_at].to_vec();
    long.push(65);
    long.extend_from_slice(&[b'a'; 65]);
    assert_eq!(
        LinkRequest::from_bytes(&long).unwrap_err(),
        WireError::LengthExceeded {
            field: "description",
            len: 65,
            max: 64
        }
    );
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert_eq!(
        LinkRequest::from_bytes(&trailing).unwrap_err(),
        WireError::TrailingBytes { count: 1 }
    );
    // The identity's Ed25519 key must be valid (y = 1: small order).
    let mut b = bytes.clone();
    b[2..34].fill(0);
    b[2] = 1;
    assert_eq!(
        LinkRequest::from_bytes(&b).unwrap_err(),
        WireError::InvalidEd25519Key {
            field: "device identity"
        }
    );
    // The X-Wing key's ML-KEM half must pass the FIPS 203 check.
    let mut b = bytes.clone();
    b[66..68].fill(0xFF);
    assert_eq!(
        LinkRequest::from_bytes(&b).unwrap_err(),
        WireError::InvalidMlKemKey {
            field: "X-Wing public key"
        }
    );
    // A bad key early is reported before a truncation later (§6.5).
    assert_eq!(
        LinkRequest::from_bytes(&b[..100]).unwrap_err(),
        WireError::Truncated {
            field: "X-Wing public key"
        }
    );
    assert_eq!(
        LinkRequest::from_bytes(&b[..len_at]).unwrap_err(),
        WireError::InvalidMlKemKey {
            field: "X-Wing public key"
        }
    );
}

#[test]
fn response_decoder_rejects_every_malformation() {
    let x = exchanged(21);
    let response = x.awaiting.response();
    let bytes = response.to_bytes();
    assert_eq!(&LinkResponse::from_bytes(&bytes).unwrap(), response);
    assert_truncations(&bytes, LinkResponse::from_bytes);
    let mut b = bytes.clone();
    b[0] = 0;
    assert_eq!(
        LinkResponse::from_bytes(&b).unwrap_err(),
        WireError::UnsupportedVersion { version: 0 }
    );
    let mut b = bytes.clone();
    b[1] = message_type::LINK_REQUEST;
    assert_eq!(
        LinkResponse::from_bytes(&b).unwrap_err(),
        WireError::UnexpectedType {
            expected: 9,
            actual: 8
        }
    );
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert_eq!(
        LinkResponse::from_bytes(&trailing).unwrap_err(),
        WireError::TrailingBytes { count: 1 }
    );
    let mut small = [0u8; 32];
    small[0] = 1;
    let mut b = bytes.clone();
    b[2..34].copy_from_slice(&small);
    assert_eq!(
        LinkResponse::from_bytes(&b).unwrap_err(),
        WireError::InvalidEd25519Key {
            field: "account key"
        }
    );
    let mut b = bytes.clone();
    b[34..66].copy_from_slice(&small);
    assert_eq!(
        LinkResponse::from_bytes(&b).unwrap_err(),
        WireError::InvalidEd25519Key {
            field: "approver identity"
        }
    );
}

#[test]
fn payload_envelope_decoder_rejects_every_malformation() {
    let (_, payload, _) = approve(exchanged(22), LinkGrant::ShareAccountSeed, &[]);
    let bytes = payload.to_bytes();
    assert_eq!(LinkPayload::from_bytes(&bytes).unwrap(), payload);
    for n in 0..2 + MIN_SEALED_LEN {
        assert!(matches!(
            LinkPayload::from_bytes(&bytes[..n]).unwrap_err(),
            WireError::Truncated { .. }
        ));
    }
    assert!(LinkPayload::from_bytes(&bytes[..2 + MIN_SEALED_LEN]).is_ok());
    let mut b = bytes.clone();
    b[0] = 2;
    assert_eq!(
        LinkPayload::from_bytes(&b).unwrap_err(),
        WireError::UnsupportedVersion { version: 2 }
    );
    let mut b = bytes.clone();
    b[1] = message_type::DEVICE_LIST;
    assert_eq!(
        LinkPayload::from_bytes(&b).unwrap_err(),
        WireError::UnexpectedType {
            expected: 0x0A,
            actual: 5
        }
    );
    let mut long = vec![0u8; MAX_LINK_PAYLOAD_LEN + 1];
    long[..2].copy_from_slice(&PAYLOAD_AD);
    assert_eq!(
        LinkPayload::from_bytes(&long).unwrap_err(),
        WireError::TooLong {
            len: MAX_LINK_PAYLOAD_LEN + 1
        }
    );
    assert!(LinkPayload::from_bytes(&long[..MAX_LINK_PAYLOAD_LEN]).is_ok());
}

#[test]
fn secrets_stay_out_of_debug_output() {
    let x = exchanged(23);
    let key = hex::encode(x.awaiting.exchange.payload_key.expose());
    for text in [
        alloc::format!("{:?}", x.awaiting),
        alloc::format!("{:?}", x.pending),
        alloc::format!("{:?}", x.initiator),
    ] {
        assert!(!text.contains(&key[..16]), "{text}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4))]

    #[test]
    fn both_sides_always_agree(seed in any::<[u8; 32]>(), grant_seed in any::<bool>(), desc_len in 0usize..70) {
        let mut rng = ChaCha20Rng::from_seed(seed);
        let e = existing(&mut rng);
        let laptop = DeviceIdentity::generate(&mut rng);
        let description: String = "x".repeat(desc_len);
        let (initiator, request) = LinkInitiator::start(&mut rng, &laptop, Platform::Other(9), &description, V);
        let (pending, response) = PendingLink::respond(&mut rng, &e.phone, &e.account, &LinkRequest::from_bytes(&request.to_bytes()).unwrap()).unwrap();
        let awaiting = initiator.receive_response(&LinkResponse::from_bytes(&response.to_bytes()).unwrap()).unwrap();
        prop_assert_eq!(awaiting.sas(), pending.sas());
        prop_assert_eq!(awaiting.transcript_hash(), pending.transcript_hash());
        let grant = if grant_seed { LinkGrant::ShareAccountSeed } else { LinkGrant::WithholdAccountSeed };
        let added_at = rng.next_u64();
        let (payload, list) = pending.approve(&mut rng, &e.account, &e.held, added_at, grant, &[]).unwrap();
        let linked = awaiting.open_payload(&LinkPayload::from_bytes(&payload.to_bytes()).unwrap()).unwrap();
        prop_assert_eq!(linked.list.list(), &list);
        prop_assert_eq!(linked.account.is_some(), grant_seed);
    }
}
