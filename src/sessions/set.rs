//! The sessions one device holds with one peer device, and the rules that
//! pick the active one (spec §8.6.2).
//!
//! ```text
//!            install: preferred, or a peer's healing session
//!   (none) ─────────────────────────────────────────► active ◄── decrypt ok in archived S,
//!                                                       │         S not stale and preferred
//!      install: not preferred / displaced               │
//!      (displaced by a healing session: stale)          │ restore from backup (stale)
//!                                                       ▼
//!                                 archived (≤ MAX_ARCHIVED_SESSIONS, most
//!                                 recently installed or useful first; the
//!                                 last one is dropped)
//! ```
//!
//! A session is *preferred* over another by the key
//! `(heal, created, reverse transcript hash)`: a healing session (started by
//! a device that already had sessions with the peer) before a first-contact
//! one, then the later creation time, then the smaller transcript hash.
//! Both devices of a pair know all three values of every session they share
//! (the initiator fixes `heal` and `created`, and they travel, authenticated,
//! with every message), so they order sessions identically. A healing
//! session received from the peer becomes active even if not preferred —
//! the peer says it lost the others — unless this device's own healing
//! session to the peer is still unanswered (both healed at once: the order
//! decides), or the active session is a healing session the peer started
//! later (a late prekey message of the peer's earlier heal). The sessions
//! it displaces become stale.

use crate::dh::X25519PublicKey;
use crate::ratchet::{RatchetError, Session};
use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::cmp::Ordering;

/// Archived sessions kept per peer device, beyond the active one.
pub const MAX_ARCHIVED_SESSIONS: usize = 3;

/// One session and what the selection rules need to know about it.
pub(crate) struct Entry {
    pub(crate) session: Session,
    /// Creation time chosen by the initiator (seconds; spec §8.6.2).
    pub(crate) created: u64,
    /// Restored from a backup, or superseded by a peer's healing session:
    /// may decrypt, never sends, never becomes active again.
    pub(crate) stale: bool,
    /// Started by a device that already had sessions with the peer
    /// (spec §8.8); fixed by the initiator, carried in every message.
    pub(crate) heal: bool,
}

impl Entry {
    /// Whether this session is preferred over `other` (spec §8.6.2).
    pub(crate) fn preferred_to(&self, other: &Entry) -> bool {
        match (self.heal, self.created).cmp(&(other.heal, other.created)) {
            Ordering::Greater => true,
            Ordering::Less => false,
            Ordering::Equal => self.session.transcript_hash() < other.session.transcript_hash(),
        }
    }

    /// A healing session this device started that the peer has not answered.
    fn unanswered_own_heal(&self) -> bool {
        self.heal && self.session.is_initiating()
    }
}

/// Sessions with one peer device.
#[derive(Default)]
pub(crate) struct SessionSet {
    pub(crate) active: Option<Entry>,
    /// Most recently useful first.
    pub(crate) archived: VecDeque<Entry>,
    /// The latest `created` of any session ever held with this device, so a
    /// new initiation always outranks every earlier one (even evicted ones).
    pub(crate) latest_created: u64,
}

/// Where a decrypting session was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Used {
    Active,
    Archived { promoted: bool },
}

impl SessionSet {
    /// The session to send in, if there is one that may send.
    pub(crate) fn sender(&mut self) -> Option<&mut Session> {
        self.active.as_mut().map(|e| &mut e.session)
    }

    /// The creation time for a session this device starts now.
    pub(crate) fn next_created(&self, now: u64) -> u64 {
        now.max(self.latest_created.saturating_add(1))
    }

    /// Adds a session this device started: it becomes active. If it is a
    /// healing session, every other session with the peer becomes stale.
    pub(crate) fn install_own(&mut self, entry: Entry) {
        self.latest_created = self.latest_created.max(entry.created);
        if entry.heal {
            self.mark_stale();
        } else if let Some(active) = self.active.take() {
            self.archive(active);
        }
        self.active = Some(entry);
    }

    /// Adds a session created by the peer's prekey message (rule 1 of spec
    /// §8.6.2): a healing session becomes active (the others stale) unless
    /// this device's own healing session is still unanswered; otherwise the
    /// preferred of the two is active and the other is archived.
    pub(crate) fn install_received(&mut self, entry: Entry) {
        self.latest_created = self.latest_created.max(entry.created);
        let Some(active) = self.active.take() else {
            self.active = Some(entry);
            return;
        };
        // A late prekey message of the peer's own older healing session
        // must not displace its newer one: the peer orders its own
        // sessions by `created` (spec §8.6.2 rule 1).
        let newer_peer_heal = active.heal
            && active.session.role() == crate::handshake::Role::Responder
            && active.preferred_to(&entry);
        if entry.heal && !active.unanswered_own_heal() && !newer_peer_heal {
            self.active = Some(active);
            self.mark_stale();
            self.active = Some(entry);
        } else if entry.preferred_to(&active) {
            self.archive(active);
            self.active = Some(entry);
        } else {
            self.active = Some(active);
            self.archive(entry);
        }
    }

    fn archive(&mut self, entry: Entry) {
        self.archived.push_front(entry);
        self.archived.truncate(MAX_ARCHIVED_SESSIONS);
    }

    /// The session (active or archived) created by the handshake with this
    /// base key, for a repeated prekey message.
    pub(crate) fn with_base_key(&mut self, base_key: &X25519PublicKey) -> Option<&mut Session> {
        if let Some(a) = self.active.as_mut()
            && a.session.base_key() == base_key
        {
            return Some(&mut a.session);
        }
        self.archived
            .iter_mut()
            .find(|e| e.session.base_key() == base_key)
            .map(|e| &mut e.session)
    }

    /// Tries the active session, then each archived one (at most
    /// `1 + MAX_ARCHIVED_SESSIONS` attempts; each leaves its session unchanged
    /// on failure). An archived session that decrypts moves to the front of
    /// the archive, and becomes active if it is not stale and is preferred
    /// to the active one.
    pub(crate) fn decrypt(
        &mut self,
        bytes: &[u8],
        ad: &[u8],
    ) -> Result<(Vec<u8>, Used), RatchetError> {
        let mut first_error = None;
        if let Some(a) = self.active.as_mut() {
            match a.session.decrypt(bytes, ad) {
                Ok(p) => return Ok((p, Used::Active)),
                Err(e) => first_error = Some(e),
            }
        }
        let mut hit = None;
        for (i, e) in self.archived.iter_mut().enumerate() {
            match e.session.decrypt(bytes, ad) {
                Ok(p) => {
                    hit = Some((i, p));
                    break;
                }
                Err(err) => {
                    first_error.get_or_insert(err);
                }
            }
        }
        let Some((i, plaintext)) = hit else {
            return Err(first_error.unwrap_or(RatchetError::UndecryptableHeader));
        };
        let entry = self.archived.remove(i).ok_or(RatchetError::Internal)?;
        let promote = !entry.stale
            && match &self.active {
                None => true,
                Some(a) => entry.preferred_to(a),
            };
        if promote {
            if let Some(old) = self.active.take() {
                self.archived.push_front(old);
            }
            self.active = Some(entry);
        } else {
            self.archived.push_front(entry);
        }
        self.archived.truncate(MAX_ARCHIVED_SESSIONS);
        Ok((plaintext, Used::Archived { promoted: promote }))
    }

    /// After a restore from backup (no held session may send again: its
    /// chain keys may already have been used by the lost, newer state), and
    /// when a healing session supersedes the others.
    pub(crate) fn mark_stale(&mut self) {
        if let Some(a) = self.active.take() {
            self.archived.push_front(a);
        }
        for e in &mut self.archived {
            e.stale = true;
        }
        self.archived.truncate(MAX_ARCHIVED_SESSIONS);
    }

    /// Skipped message keys held by all sessions of the set.
    pub(crate) fn skipped_keys_held(&self) -> usize {
        self.active
            .iter()
            .chain(self.archived.iter())
            .map(|e| e.session.skipped_keys_held())
            .sum()
    }

    /// Number of sessions held.
    pub(crate) fn len(&self) -> usize {
        usize::from(self.active.is_some()) + self.archived.len()
    }
}
