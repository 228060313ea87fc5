//! The record store (spec §10.2): a foreign trait the Kotlin or Swift client
//! implements over its database, and an in-memory store.

use crate::error::StoreError;
use session_ratchet::client::{
    CommitOutcome, MemoryStore as CoreMemoryStore, RecordStore as CoreRecordStore,
    RecordWrite as CoreRecordWrite, StoreError as CoreStoreError,
};
use std::sync::{Arc, Mutex, MutexGuard};

/// One write of a commit batch: store `value` under `key`, or delete the
/// record under `key` when `value` is null (absent is fine).
#[derive(Clone, PartialEq, Eq, uniffi::Record)]
pub struct RecordWrite {
    /// The record's key (an opaque 17-byte string, spec §10.3).
    pub key: Vec<u8>,
    /// The encrypted record; null: delete the key.
    pub value: Option<Vec<u8>>,
}

impl std::fmt::Debug for RecordWrite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Keys are keyed hashes and values ciphertext; lengths are enough.
        f.debug_struct("RecordWrite")
            .field("key_len", &self.key.len())
            .field("value_len", &self.value.as_ref().map(Vec::len))
            .finish()
    }
}

/// The client's database as a device sees it (spec §10.2): a map of opaque
/// byte strings with one atomic, conditional batch write. Implement it in
/// Kotlin or Swift over SQLite (or any transactional store):
///
/// - `get(key)`: the value last committed under `key`, or null. Never a
///   value older than one already returned or committed (no lagging replica).
/// - `commit(head, expectedHead, writes)`: in **one transaction**, read the
///   value under `head`; if it equals `expectedHead` byte for byte (null: no
///   value), apply every write and return true once durable (SQLite:
///   `BEGIN IMMEDIATE` … `COMMIT` with `synchronous=FULL`); otherwise write
///   nothing and return false (another process committed first; the device
///   reloads and retries). This is the only lock a client needs.
///
/// Throw `StoreException.Failed` (Swift `StoreError.Failed`) when the
/// database fails; the device call fails with `Store` and changes nothing.
/// A store method must not call back into the device that is using it (the
/// device is locked for the call).
#[uniffi::export(with_foreign)]
pub trait RecordStore: Send + Sync {
    /// The value under `key`, if any.
    fn get(&self, key: Vec<u8>) -> Result<Option<Vec<u8>>, StoreError>;

    /// Applies `writes` atomically if the value under `head` is
    /// `expectedHead`; returns false (and writes nothing) on a conflict.
    fn commit(
        &self,
        head: Vec<u8>,
        expected_head: Option<Vec<u8>>,
        writes: Vec<RecordWrite>,
    ) -> Result<bool, StoreError>;
}

/// The crate's store interface over a foreign (or in-memory) `RecordStore`.
pub(crate) struct StoreAdapter(pub(crate) Arc<dyn RecordStore>);

impl CoreRecordStore for StoreAdapter {
    fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, CoreStoreError> {
        Ok(self.0.get(key.to_vec())?)
    }

    fn commit(
        &mut self,
        head: &[u8],
        expected_head: Option<&[u8]>,
        writes: &[CoreRecordWrite],
    ) -> Result<CommitOutcome, CoreStoreError> {
        let writes = writes
            .iter()
            .map(|w| match w {
                CoreRecordWrite::Put { key, value } => RecordWrite {
                    key: key.clone(),
                    value: Some(value.clone()),
                },
                CoreRecordWrite::Delete { key } => RecordWrite {
                    key: key.clone(),
                    value: None,
                },
            })
            .collect::<Vec<_>>();
        let committed = self
            .0
            .commit(head.to_vec(), expected_head.map(<[u8]>::to_vec), writes)?;
        Ok(if committed {
            CommitOutcome::Committed
        } else {
            CommitOutcome::Conflict
        })
    }
}

/// An in-memory store (the crate's `MemoryStore`), for tests and examples.
/// Pass `recordStore()` to a device; pass it to two devices to stand in for
/// one database opened by two processes (an app and its notification
/// extension). `snapshot()` copies it: a copy opened later is a restored
/// backup.
#[derive(Debug, Default, uniffi::Object)]
pub struct MemoryStore {
    inner: Arc<Mutex<CoreMemoryStore>>,
}

impl MemoryStore {
    fn lock(&self) -> MutexGuard<'_, CoreMemoryStore> {
        // The map is consistent even if a holder panicked: every commit
        // applies its batch before it could.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[uniffi::export]
impl MemoryStore {
    /// An empty store.
    #[uniffi::constructor]
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// This store as a `RecordStore` for a device (every call on it reads
    /// and writes this store).
    pub fn record_store(&self) -> Arc<dyn RecordStore> {
        Arc::new(SharedMemoryStore(self.inner.clone()))
    }

    /// An independent copy of the current contents (a backup).
    pub fn snapshot(&self) -> Arc<Self> {
        Arc::new(Self {
            inner: Arc::new(Mutex::new(self.lock().clone())),
        })
    }

    /// Records held.
    pub fn len(&self) -> u64 {
        self.lock().len() as u64
    }

    /// Whether the store holds no record.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Bytes held (keys and values).
    pub fn total_bytes(&self) -> u64 {
        self.lock().total_bytes() as u64
    }
}

/// The Rust implementation of `RecordStore` over a [`MemoryStore`].
#[derive(Debug)]
struct SharedMemoryStore(Arc<Mutex<CoreMemoryStore>>);

impl SharedMemoryStore {
    fn lock(&self) -> MutexGuard<'_, CoreMemoryStore> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn store_failed(e: CoreStoreError) -> StoreError {
    StoreError::Failed {
        reason: e.to_string(),
    }
}

impl RecordStore for SharedMemoryStore {
    fn get(&self, key: Vec<u8>) -> Result<Option<Vec<u8>>, StoreError> {
        self.lock().get(&key).map_err(store_failed)
    }

    fn commit(
        &self,
        head: Vec<u8>,
        expected_head: Option<Vec<u8>>,
        writes: Vec<RecordWrite>,
    ) -> Result<bool, StoreError> {
        let writes: Vec<CoreRecordWrite> = writes
            .into_iter()
            .map(|w| match w.value {
                Some(value) => CoreRecordWrite::Put { key: w.key, value },
                None => CoreRecordWrite::Delete { key: w.key },
            })
            .collect();
        let outcome = self
            .lock()
            .commit(&head, expected_head.as_deref(), &writes)
            .map_err(store_failed)?;
        Ok(outcome == CommitOutcome::Committed)
    }
}
