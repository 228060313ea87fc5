//! The Rust side of every binding's overhead measurement, in one place.
//!
//! A binding's cost is one same-chain message (a send by one side and its
//! receive by the other, in a session both sides already use) through the
//! binding, next to the same message through
//! - [`DevicePair`]: the Rust `client::Device` each binding wraps (envelope,
//!   per-record commits to a `MemoryStore`), and
//! - [`SessionPair`]: the raw `ratchet::Session` underneath (no envelope,
//!   no store), the floor the device object adds to.
//!
//! The C bench links this crate and interleaves all three in one process;
//! the Kotlin and JavaScript drivers run the `same-chain` binary (both
//! Rust contenders, interleaved) right before the binding's own program.
//! Every contender uses the OS RNG and the same [`CONTENT`].

use session_ratchet::client::{ClientError, Device, DeviceInfo, MemoryStore};
use session_ratchet::identity::{DeviceIdentity, Ed25519PublicKey};
use session_ratchet::prekey::PrekeyStore;
use session_ratchet::rand_core::UnwrapErr;
use session_ratchet::ratchet::{Session, StorageKey};
use std::error::Error;
use std::hint::black_box;

/// The message content every contender sends: 64 bytes, the size of a short
/// chat message.
pub const CONTENT: &[u8; 64] = &[0x61; 64];

/// The time every contender's devices are created and send at.
pub const NOW: u64 = 1_767_225_600;

type OsRng = UnwrapErr<getrandom::SysRng>;

fn os_rng() -> OsRng {
    UnwrapErr(getrandom::SysRng)
}

/// Two Rust devices on two accounts, each over its own `MemoryStore`, with a
/// session established both ways.
#[derive(Debug)]
pub struct DevicePair {
    alice: Device,
    bob: Device,
    bob_key: Ed25519PublicKey,
}

impl DevicePair {
    /// Creates both accounts, introduces them and exchanges one message
    /// each way, so that what follows stays on one chain.
    pub fn new() -> Result<Self, ClientError> {
        let key = StorageKey::from_bytes([7; 32]);
        let create = |name: &str| {
            Device::create_account(
                Box::new(MemoryStore::new()),
                &key,
                Box::new(os_rng()),
                DeviceInfo::new(name),
                NOW,
            )
            .map(|(device, _seed)| device)
        };
        let (mut alice, mut bob) = (create("alice")?, create("bob")?);
        alice.add_contact(
            &bob.session_id(),
            &bob.device_list(),
            Some(&bob.prekey_record()?),
        )?;
        bob.add_contact(
            &alice.session_id(),
            &alice.device_list(),
            Some(&alice.prekey_record()?),
        )?;
        let (alice_key, bob_key) = (alice.account_key(), bob.account_key());
        for out in alice.send(&bob_key, b"hello", NOW)? {
            bob.receive(&out.bytes)?;
        }
        for out in bob.send(&alice_key, b"hello back", NOW)? {
            alice.receive(&out.bytes)?;
        }
        Ok(Self {
            alice,
            bob,
            bob_key,
        })
    }

    /// One message from Alice to Bob: `send`, then `receive` of each
    /// envelope (one: Alice has no other device).
    pub fn message(&mut self) -> Result<(), ClientError> {
        for out in self.alice.send(&self.bob_key, CONTENT, NOW)? {
            black_box(self.bob.receive(&out.bytes)?.content.len());
        }
        Ok(())
    }
}

/// Two raw ratchet sessions (Alice initiated to Bob's prekey bundle), with
/// a message exchanged each way.
#[derive(Debug)]
pub struct SessionPair {
    alice: Session,
    bob: Session,
    rng: OsRng,
}

impl SessionPair {
    /// Runs the handshake and one message each way.
    pub fn new() -> Result<Self, Box<dyn Error>> {
        let mut rng = os_rng();
        let alice_id = DeviceIdentity::generate(&mut rng);
        let bob_id = DeviceIdentity::generate(&mut rng);
        let mut prekeys = PrekeyStore::new(&mut rng, &bob_id);
        // No one-time prekey ids: the bundle carries the signed and
        // last-resort keys only (enough for a session).
        let bundle = prekeys.bundle(&bob_id, None, None)?.verify()?;
        let mut alice = Session::initiate(&mut rng, &alice_id, &bundle)?;
        let first = alice.encrypt(&mut rng, b"hello", b"")?;
        let (mut bob, _) = Session::respond(&bob_id, &mut prekeys, &first, b"")?;
        let back = bob.encrypt(&mut rng, b"hello back", b"")?;
        alice.decrypt(&back, b"")?;
        Ok(Self { alice, bob, rng })
    }

    /// One message from Alice to Bob: `encrypt`, then `decrypt`.
    pub fn message(&mut self) -> Result<(), Box<dyn Error>> {
        let wire = self.alice.encrypt(&mut self.rng, CONTENT, b"")?;
        black_box(self.bob.decrypt(&wire, b"")?.len());
        Ok(())
    }
}

/// The `p`-quantile (0.0..=1.0) of `times`, sorting them; `None` when empty.
pub fn percentile(times: &mut [f64], p: f64) -> Option<f64> {
    times.sort_by(f64::total_cmp);
    let last = times.len().checked_sub(1)?;
    let at = ((last as f64) * p.clamp(0.0, 1.0)).round() as usize;
    times.get(at).copied()
}
