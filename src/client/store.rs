//! The client's record store (spec §10.2): the one interface between a
//! [`super::Device`] and the client's database.
//!
//! A store is a key-value map of opaque byte strings with one atomic,
//! conditional batch write. The device never asks for more: no queries, no
//! iteration, no schema. Every value it writes is already encrypted and
//! authenticated under the client's storage key (spec §10.3), and every key
//! is a keyed hash, so the database learns record kinds and sizes, never
//! who a record is about.
//!
//! The condition of [`RecordStore::commit`] is what makes two processes safe
//! (spec §10.5): a batch is applied only if the head record still holds the
//! bytes this device last read or wrote, so of two processes that started
//! from the same state only the first commits; the second reloads and
//! retries, and never sends from the state the first one moved past.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// One write of a commit batch.
#[derive(Clone, PartialEq, Eq)]
pub enum RecordWrite {
    /// Store `value` under `key`, replacing any earlier value.
    Put {
        /// The record's key (17 bytes, spec §10.3).
        key: Vec<u8>,
        /// The encrypted record.
        value: Vec<u8>,
    },
    /// Remove the record under `key` (absent is fine).
    Delete {
        /// The record's key.
        key: Vec<u8>,
    },
}

impl RecordWrite {
    /// The key this write touches.
    pub fn key(&self) -> &[u8] {
        match self {
            Self::Put { key, .. } | Self::Delete { key } => key,
        }
    }
}

impl fmt::Debug for RecordWrite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Keys are keyed hashes and values ciphertext; lengths are enough.
        match self {
            Self::Put { key, value } => write!(
                f,
                "Put(kind {:#04x}, {} bytes)",
                key.first().copied().unwrap_or(0),
                value.len()
            ),
            Self::Delete { key } => {
                write!(f, "Delete(kind {:#04x})", key.first().copied().unwrap_or(0))
            }
        }
    }
}

/// What [`RecordStore::commit`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommitOutcome {
    /// Every write was applied, atomically.
    Committed,
    /// The head record did not hold the expected bytes (another process
    /// committed first): nothing was written.
    Conflict,
}

/// A failure of the client's store itself (I/O, a full disk, a closed
/// database). The device changes nothing when it sees one.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreError {
    /// The store could not be read or written; `message` is the client's own.
    Failed {
        /// What the client's store reported.
        message: String,
    },
}

impl StoreError {
    /// A store failure with the client's message.
    pub fn failed(message: &str) -> Self {
        Self::Failed {
            message: String::from(message),
        }
    }
}

impl fmt::Debug for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Failed { message } => write!(f, "record store failed: {message}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for StoreError {}

/// The client's database, as the device sees it (spec §10.2).
///
/// Implement it over SQLite, a key-value store or files:
///
/// - [`RecordStore::get`] returns the value last committed under a key.
/// - [`RecordStore::commit`] applies a batch **atomically** (all writes or
///   none, surviving a crash in between), and only if the value under
///   `head` equals `expected_head` (`None`: no value). Across processes the
///   check and the writes must be one transaction: in SQLite,
///   `BEGIN IMMEDIATE`, read the head, compare, write, `COMMIT`. This is
///   the only lock a client needs.
///
/// [`MemoryStore`] is the reference implementation.
pub trait RecordStore: Send {
    /// The value under `key`, if any.
    fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;

    /// Applies `writes` atomically if the value under `head` is
    /// `expected_head`; otherwise writes nothing and returns
    /// [`CommitOutcome::Conflict`].
    fn commit(
        &mut self,
        head: &[u8],
        expected_head: Option<&[u8]>,
        writes: &[RecordWrite],
    ) -> Result<CommitOutcome, StoreError>;
}

/// An in-memory [`RecordStore`]: a sorted map, with counters of what was
/// written (for tests and the storage benchmark).
///
/// `Clone` takes a snapshot: a clone restored later is a rolled-back
/// database (spec §10.4). To share one store between two devices (two
/// processes), wrap it in `Arc<Mutex<MemoryStore>>` (feature `std`), which
/// is a `RecordStore` too.
///
/// ```
/// use session_ratchet::client::{CommitOutcome, MemoryStore, RecordStore, RecordWrite};
/// let mut store = MemoryStore::new();
/// let put = RecordWrite::Put { key: b"head".to_vec(), value: b"v1".to_vec() };
/// assert_eq!(store.commit(b"head", None, &[put.clone()])?, CommitOutcome::Committed);
/// // A second writer that still expects no head conflicts and writes nothing.
/// assert_eq!(store.commit(b"head", None, &[put])?, CommitOutcome::Conflict);
/// assert_eq!(store.get(b"head")?, Some(b"v1".to_vec()));
/// # Ok::<(), session_ratchet::client::StoreError>(())
/// ```
#[derive(Clone, Default)]
pub struct MemoryStore {
    records: BTreeMap<Vec<u8>, Vec<u8>>,
    bytes_written: u64,
    records_written: u64,
    records_read: u64,
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("records", &self.records.len())
            .field("bytes", &self.total_bytes())
            .finish()
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records held.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether the store holds no record.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Bytes held (keys and values).
    pub fn total_bytes(&self) -> usize {
        self.records.iter().map(|(k, v)| k.len() + v.len()).sum()
    }

    /// Value bytes written by every committed `Put` so far.
    pub fn bytes_written(&self) -> u64 {
        self.bytes_written
    }

    /// Records written (puts and deletes) by every commit so far.
    pub fn records_written(&self) -> u64 {
        self.records_written
    }

    /// Records read (`get` calls) so far.
    pub fn records_read(&self) -> u64 {
        self.records_read
    }

    /// Every key and value, in key order (for inspection and tests).
    pub fn records(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.records
            .iter()
            .map(|(k, v)| (k.as_slice(), v.as_slice()))
    }

    /// Replaces the value under `key` outside any commit: for tests that
    /// simulate a corrupted or swapped record.
    pub fn overwrite(&mut self, key: &[u8], value: Option<Vec<u8>>) {
        match value {
            Some(v) => {
                self.records.insert(key.to_vec(), v);
            }
            None => {
                self.records.remove(key);
            }
        }
    }
}

impl RecordStore for MemoryStore {
    fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.records_read += 1;
        Ok(self.records.get(key).cloned())
    }

    fn commit(
        &mut self,
        head: &[u8],
        expected_head: Option<&[u8]>,
        writes: &[RecordWrite],
    ) -> Result<CommitOutcome, StoreError> {
        if self.records.get(head).map(Vec::as_slice) != expected_head {
            return Ok(CommitOutcome::Conflict);
        }
        for w in writes {
            self.records_written += 1;
            match w {
                RecordWrite::Put { key, value } => {
                    self.bytes_written += value.len() as u64;
                    self.records.insert(key.clone(), value.clone());
                }
                RecordWrite::Delete { key } => {
                    self.records.remove(key);
                }
            }
        }
        Ok(CommitOutcome::Committed)
    }
}

/// A store shared by several devices in one process, standing in for one
/// database opened by two processes (the app and its notification
/// extension). A poisoned lock is a store failure, never a panic.
#[cfg(feature = "std")]
impl<S: RecordStore> RecordStore for std::sync::Arc<std::sync::Mutex<S>> {
    fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.lock()
            .map_err(|_| StoreError::failed("lock poisoned"))?
            .get(key)
    }

    fn commit(
        &mut self,
        head: &[u8],
        expected_head: Option<&[u8]>,
        writes: &[RecordWrite],
    ) -> Result<CommitOutcome, StoreError> {
        self.lock()
            .map_err(|_| StoreError::failed("lock poisoned"))?
            .commit(head, expected_head, writes)
    }
}
