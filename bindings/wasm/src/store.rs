//! Record stores (spec §10.2): the crate's `MemoryStore`, shareable between
//! devices, and a store over the client's own JavaScript database object.
//!
//! The core's `RecordStore` is `Send` (a device may move between threads),
//! and a JavaScript object is not: it lives on the thread (the JavaScript
//! realm) that made it. Rather than claiming `Send` for it with an `unsafe
//! impl`, a [`JsStore`] holds only a number; the object itself stays in a
//! table local to the thread that made it. Used on any other thread the
//! store finds nothing and fails like a closed database (a store error,
//! never undefined behaviour). On wasm32-unknown-unknown there is one thread
//! and that never happens; the design simply needs no `unsafe` to be sound.

use crate::error::Error;
use crate::js;
use js_sys::{Array, Function, Uint8Array};
use session_ratchet::client::{CommitOutcome, RecordStore, RecordWrite, StoreError};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use wasm_bindgen::convert::TryFromJsValue;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};

/// The hidden method by which a device recognises a [`MemoryStore`]
/// argument (and shares its records instead of calling it through
/// JavaScript).
const SHARE: &str = "__srShare";

/// An in-memory record store: the crate's `MemoryStore`. Pass the same
/// store to two devices to stand in for one database opened by two
/// processes (spec §10.5). It also has the `RecordStore` methods (`get`,
/// `commit`), so it can sit behind a JavaScript wrapper.
#[wasm_bindgen]
#[derive(Debug)]
pub struct MemoryStore {
    inner: Arc<Mutex<session_ratchet::client::MemoryStore>>,
}

/// A new reference to a [`MemoryStore`]'s records, handed from the store's
/// JavaScript object to a device (consumed on the way).
#[wasm_bindgen(skip_typescript)]
#[derive(Debug)]
pub struct MemoryStoreShare {
    inner: Arc<Mutex<session_ratchet::client::MemoryStore>>,
}

impl MemoryStore {
    fn with<T>(
        &self,
        f: impl FnOnce(&mut session_ratchet::client::MemoryStore) -> T,
    ) -> Result<T, Error> {
        let mut guard = self
            .inner
            .lock()
            .map_err(|_| Error::new("StoreFailed", "record store failed: lock poisoned"))?;
        Ok(f(&mut guard))
    }
}

#[wasm_bindgen]
impl MemoryStore {
    /// A new, empty store.
    #[wasm_bindgen(constructor)]
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Mutex::new(session_ratchet::client::MemoryStore::new())),
        }
    }

    /// Records held.
    #[wasm_bindgen(getter)]
    pub fn length(&self) -> Result<u32, Error> {
        self.with(|s| u32::try_from(s.len()).unwrap_or(u32::MAX))
    }

    /// Bytes held (keys and values).
    #[wasm_bindgen(getter, js_name = totalBytes)]
    pub fn total_bytes(&self) -> Result<f64, Error> {
        #[allow(clippy::cast_precision_loss)]
        self.with(|s| s.total_bytes() as f64)
    }

    /// Value bytes written by every commit so far.
    #[wasm_bindgen(getter, js_name = bytesWritten)]
    pub fn bytes_written(&self) -> Result<f64, Error> {
        #[allow(clippy::cast_precision_loss)]
        self.with(|s| s.bytes_written() as f64)
    }

    /// An independent copy of the records as they are now: restored later
    /// (open a device on it), it is a rolled-back database (spec §10.4).
    pub fn snapshot(&self) -> Result<MemoryStore, Error> {
        let copy = self.with(|s| s.clone())?;
        Ok(Self {
            inner: Arc::new(Mutex::new(copy)),
        })
    }

    /// Every key held, in order (to inspect, or to damage records in tests).
    #[wasm_bindgen(unchecked_return_type = "Uint8Array[]")]
    pub fn keys(&self) -> Result<Array, Error> {
        self.with(|s| s.records().map(|(k, _)| js::u8a(k)).collect())
    }

    /// `RecordStore.get`: the value under `key`, or `undefined`.
    #[wasm_bindgen(unchecked_return_type = "Uint8Array | undefined")]
    pub fn get(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Uint8Array")] key: JsValue,
    ) -> Result<JsValue, Error> {
        let key = js::bytes(&key, "key")?;
        let value = self
            .with(|s| s.get(&key))?
            .map_err(|e| Error::new("StoreFailed", e.to_string()))?;
        Ok(value.map_or(JsValue::UNDEFINED, |v| js::u8a(&v)))
    }

    /// `RecordStore.commit`: applies `writes` if the value under `head` is
    /// `expectedHead`; `false` (nothing written) otherwise.
    pub fn commit(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Uint8Array")] head: JsValue,
        #[wasm_bindgen(js_name = expectedHead, unchecked_param_type = "Uint8Array | undefined")]
        expected_head: JsValue,
        #[wasm_bindgen(unchecked_param_type = "RecordWrite[]")] writes: JsValue,
    ) -> Result<bool, Error> {
        let head = js::bytes(&head, "head")?;
        let expected = js::opt_bytes(&expected_head, "expectedHead")?;
        let list = writes
            .dyn_ref::<Array>()
            .ok_or_else(|| Error::wrong_type("writes", "an array of { key, value? }"))?;
        let mut batch = Vec::with_capacity(list.length() as usize);
        for w in list.iter() {
            if !w.is_object() {
                return Err(Error::wrong_type("writes[]", "{ key, value? }"));
            }
            let key = js::bytes(&js::field(&w, "key")?, "writes[].key")?;
            batch.push(
                match js::opt_bytes(&js::field(&w, "value")?, "writes[].value")? {
                    Some(value) => RecordWrite::Put { key, value },
                    None => RecordWrite::Delete { key },
                },
            );
        }
        let outcome = self
            .with(|s| s.commit(&head, expected.as_deref(), &batch))?
            .map_err(|e| Error::new("StoreFailed", e.to_string()))?;
        Ok(outcome == CommitOutcome::Committed)
    }

    /// Replaces (or with no `value`, removes) the record under `key` outside
    /// any commit: for tests that damage, swap or lose a record.
    pub fn overwrite(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Uint8Array")] key: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Uint8Array | undefined")] value: JsValue,
    ) -> Result<(), Error> {
        let key = js::bytes(&key, "key")?;
        let value = js::opt_bytes(&value, "value")?;
        self.with(|s| s.overwrite(&key, value))
    }

    /// Hands a new reference to the records to a device.
    #[wasm_bindgen(js_name = __srShare, skip_typescript)]
    pub fn share(&self) -> MemoryStoreShare {
        MemoryStoreShare {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

/// The store argument of a device constructor: a [`MemoryStore`] (its
/// records, shared) or any object with `get` and `commit` methods.
pub(crate) fn store_arg(v: &JsValue) -> Result<Box<dyn RecordStore>, Error> {
    let not_a_store = || {
        Error::wrong_type(
            "store",
            "a MemoryStore or an object with get(key) and commit(head, expectedHead, writes) methods",
        )
    };
    if !v.is_object() {
        return Err(not_a_store());
    }
    let share = js::field(v, SHARE)?;
    if let Some(share) = share.dyn_ref::<Function>() {
        let handle = share
            .call0(v)
            .map_err(|_| Error::invalid("store", "is a MemoryStore that was freed"))?;
        let shared = MemoryStoreShare::try_from_js_value(handle).map_err(|_| not_a_store())?;
        return Ok(Box::new(shared.inner));
    }
    let get = js::field(v, "get")?
        .dyn_into::<Function>()
        .map_err(|_| not_a_store())?;
    let commit = js::field(v, "commit")?
        .dyn_into::<Function>()
        .map_err(|_| not_a_store())?;
    Ok(Box::new(JsStore::register(JsObjects {
        this: v.clone(),
        get,
        commit,
    })))
}

/// The client's database object and its two methods.
struct JsObjects {
    this: JsValue,
    get: Function,
    commit: Function,
}

thread_local! {
    /// The JavaScript stores made on this thread, by number. A store's
    /// objects are cloned out (a reference count) before any call into
    /// JavaScript, which may itself create or drop stores.
    static JS_STORES: RefCell<BTreeMap<u64, Rc<JsObjects>>> = const { RefCell::new(BTreeMap::new()) };
    static NEXT_ID: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// A `RecordStore` over a JavaScript object with `get` and `commit`: only a
/// number into this thread's table (see the module documentation).
#[derive(Debug)]
struct JsStore {
    id: u64,
}

impl JsStore {
    fn register(objects: JsObjects) -> Self {
        let id = NEXT_ID.with(|n| {
            let id = n.get();
            n.set(id.wrapping_add(1));
            id
        });
        JS_STORES.with(|t| t.borrow_mut().insert(id, Rc::new(objects)));
        Self { id }
    }

    fn objects(&self) -> Result<Rc<JsObjects>, StoreError> {
        JS_STORES
            .try_with(|t| t.try_borrow().ok().and_then(|t| t.get(&self.id).cloned()))
            .ok()
            .flatten()
            .ok_or_else(|| {
                StoreError::failed("a JavaScript store was used on a thread other than its own")
            })
    }
}

impl Drop for JsStore {
    fn drop(&mut self) {
        // On another thread (never on wasm32) the entry is not there: the
        // object then lives as long as its own thread's table.
        let _ = JS_STORES.try_with(|t| {
            if let Ok(mut t) = t.try_borrow_mut() {
                t.remove(&self.id);
            }
        });
    }
}

/// The text of a JavaScript exception, for the store error's message.
fn thrown(e: &JsValue) -> String {
    if let Some(err) = e.dyn_ref::<js_sys::Error>() {
        return String::from(err.message());
    }
    e.as_string()
        .unwrap_or_else(|| String::from("(a value that is not an Error)"))
}

impl RecordStore for JsStore {
    fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let o = self.objects()?;
        let value = o
            .get
            .call1(&o.this, &js::u8a(key))
            .map_err(|e| StoreError::failed(&format!("get threw: {}", thrown(&e))))?;
        if js::is_absent(&value) {
            return Ok(None);
        }
        match value.dyn_ref::<Uint8Array>() {
            Some(a) => Ok(Some(a.to_vec())),
            None => Err(StoreError::failed(
                "get returned neither a Uint8Array nor undefined (it must be synchronous)",
            )),
        }
    }

    fn commit(
        &mut self,
        head: &[u8],
        expected_head: Option<&[u8]>,
        writes: &[RecordWrite],
    ) -> Result<CommitOutcome, StoreError> {
        let o = self.objects()?;
        let list: Array = writes
            .iter()
            .map(|w| match w {
                RecordWrite::Put { key, value } => {
                    js::object(&[("key", js::u8a(key)), ("value", js::u8a(value))])
                }
                RecordWrite::Delete { key } => js::object(&[("key", js::u8a(key))]),
            })
            .collect();
        let expected = expected_head.map_or(JsValue::UNDEFINED, js::u8a);
        let result = o
            .commit
            .call3(&o.this, &js::u8a(head), &expected, &list)
            .map_err(|e| StoreError::failed(&format!("commit threw: {}", thrown(&e))))?;
        match result.as_bool() {
            Some(true) => Ok(CommitOutcome::Committed),
            Some(false) => Ok(CommitOutcome::Conflict),
            None => Err(StoreError::failed(
                "commit returned something other than true or false (it must be synchronous)",
            )),
        }
    }
}

// A device owns its store; the core requires `Send` of it.
const _: () = {
    const fn is_send<T: Send>() {}
    is_send::<JsStore>();
};
