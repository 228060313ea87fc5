//! An account's devices: the signed device list, revocation, the
//! count-hiding prekey record, and linking new devices with an emoji SAS
//! (spec §8.2–§8.5).
//!
//! | module | owns | spec |
//! |---|---|---|
//! | [`list`] | the signed, versioned, hash-chained device list; its encoding; the rules a client applies before accepting an update (rollback, fork, gap, tombstones, extensions); revocation | §8.2, §8.3 |
//! | [`record`] | the account's prekey record: one encrypted bundle slot per device, padded with random dummy slots to a multiple of 4 | §8.4 |
//! | [`link`] | linking a new device: hybrid (X-Wing) request and response, the SAS over their transcript, approval that signs the next list, the sealed payload | §8.5 |
//! | [`sas`] | the emoji short authentication string (Session's Argon2id construction), shared with the Session v2 link request | §8.5.2 |
//!
//! The account key ([`crate::account::Account`]) signs every version of the
//! list. Devices keep their own random identities
//! ([`crate::identity::DeviceIdentity`]); the list binds each to a random
//! 32-byte [`DeviceId`].
//!
//! A typical flow, from the account's side and from a contact's:
//!
//! ```
//! use session_ratchet::account::Account;
//! use session_ratchet::device::list::{
//!     ClientVersion, DeviceEntry, DeviceId, DeviceListDraft, DeviceStatus, Platform,
//!     SignedDeviceList, UpdateOutcome, VerifiedDeviceList,
//! };
//! use session_ratchet::identity::DeviceIdentity;
//! # use rand_chacha::{ChaCha20Rng, rand_core::SeedableRng};
//! # let mut rng = ChaCha20Rng::from_seed([0; 32]);
//! let (account, _recovery_seed) = Account::generate(&mut rng);
//! let phone = DeviceIdentity::generate(&mut rng);
//! let laptop = DeviceIdentity::generate(&mut rng);
//! let (phone_id, laptop_id) = (DeviceId::generate(&mut rng), DeviceId::generate(&mut rng));
//! let v = ClientVersion { major: 1, minor: 14, patch: 2 };
//!
//! let mut draft = DeviceListDraft::first(&account);
//! draft.add_device(DeviceEntry::new(phone_id, *phone.public(), Platform::Android, "Pixel", v, 1_700_000_000))?;
//! draft.add_device(DeviceEntry::new(laptop_id, *laptop.public(), Platform::Desktop, "Laptop", v, 1_700_000_100))?;
//! let v1 = draft.sign(&account)?;
//!
//! // A contact knows only the Session ID; it pins the first list it sees.
//! let held = VerifiedDeviceList::trust_first(SignedDeviceList::from_bytes(&v1.to_bytes())?, &account.session_id())?;
//!
//! // The laptop is lost: the account revokes it.
//! let mut draft = held.next_draft()?;
//! draft.remove_device(&laptop_id, 1_700_100_000)?;
//! let v2 = draft.sign(&account)?;
//!
//! let UpdateOutcome::Advanced(held) = held.accept_update(&v2, &[])? else { unreachable!() };
//! assert_eq!(held.status(&laptop_id), DeviceStatus::Revoked { removed_at: 1_700_100_000 });
//! assert!(held.is_active(&phone_id));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod link;
pub mod list;
pub mod record;
pub mod sas;
