//! Session identity and the Session Protocol v2 formats, byte-compatible with
//! deployed Session clients (spec chapter 9, `spec/09-session-v2.md`).
//!
//! | module | owns | spec |
//! |---|---|---|
//! | [`bencode`] | strict, canonical, bounded bencode | §9.3 |
//! | [`mnemonic`] | recovery phrases (13 / 25 words, CRC-32 checksum word) | §9.4 |
//! | [`identity`] | Ed25519/X25519 identity, Session IDs | §9.5 |
//! | [`xeddsa`] | "positive alternative" Ed25519 signatures verifiable from a Session ID | §9.6 |
//! | [`account_keys`] | account/device key expansion, the signed account-key record, cache, rotation, retention | §9.7 |
//! | [`dm`] | v2 direct messages (PFS + PQ) and the non-PFS fallback | §9.8 |
//! | [`device_group`] | device records, merge rules, the namespace-21 group message | §9.9 |
//! | [`link`] | device link requests and the emoji short authentication string | §9.10 |
//! | [`upgrade`] | moving a v2 conversation to the hybrid double ratchet (upgrade offers, fallback rule) | §9.11 |
//!
//! Every format constant (personalisation strings, domain prefixes, sizes) is
//! an external format constant of Session: it is a named `const` in the module
//! that uses it and is listed in the spec chapter, not in the crate's own KDF
//! label registry.
//!
//! Randomness only ever comes from an injected `rand_core::CryptoRng`; with a
//! seeded RNG every output is reproducible (the published test vectors rely on it).

pub mod account_keys;
pub mod bencode;
pub mod device_group;
pub mod dm;
pub mod identity;
pub mod link;
pub mod mnemonic;
pub(crate) mod primitives;
pub mod upgrade;
pub mod xeddsa;
