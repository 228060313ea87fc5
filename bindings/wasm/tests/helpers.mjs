// Shared by the test files: the built package (pkg/nodejs, made by
// run-tests.sh), stores, and assertions on thrown errors.
import assert from "node:assert/strict";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
export const sr = require("../pkg/nodejs/session_ratchet_wasm.js");

export const NOW = 1767225600;
export const DAY = 24 * 3600;
export const enc = (s) => new TextEncoder().encode(s);
export const dec = (b) => new TextDecoder().decode(b);
/** A 32-byte storage key. */
export const key = (n) => new Uint8Array(32).fill(n);
export const hex = (u) => Buffer.from(u.buffer, u.byteOffset, u.byteLength).toString("hex");
export const bytesEqual = (a, b) => a.length === b.length && Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;

/**
 * A RecordStore over a Map, as a client writes one over its database (one
 * SQLite transaction per commit in a real client). `hooks` can make it
 * misbehave: `get(key)` / `commit(...)` run first and may throw or return
 * a replacement result (anything but `undefined`).
 */
export function mapStore(hooks = {}) {
  const records = new Map();
  const same = (a, b) => (a === undefined ? b === undefined : b !== undefined && bytesEqual(a, b));
  const store = {
    records,
    gets: 0,
    commits: 0,
    get(k) {
      this.gets++;
      if (hooks.get) {
        const r = hooks.get(k);
        if (r !== undefined) return r;
      }
      return records.get(hex(k));
    },
    commit(head, expected, writes) {
      this.commits++;
      if (hooks.commit) {
        const r = hooks.commit(head, expected, writes);
        if (r !== undefined) return r;
      }
      if (!same(records.get(hex(head)), expected)) return false;
      for (const w of writes) {
        if (w.value === undefined) records.delete(hex(w.key));
        else records.set(hex(w.key), new Uint8Array(w.value));
      }
      return true;
    },
    /** An independent copy (a backup of the database). */
    snapshot() {
      const copy = mapStore();
      for (const [k, v] of records) copy.records.set(k, new Uint8Array(v));
      return copy;
    },
  };
  return store;
}

/** Asserts that `fn` throws an Error (a TypeError with `type`) whose `code` is `code`. */
export function throwsCode(fn, code, { type = false, message } = {}) {
  let thrown;
  try {
    fn();
  } catch (e) {
    thrown = e;
  }
  assert.ok(thrown !== undefined, `expected a throw with code ${code}, got none`);
  assert.ok(thrown instanceof Error, `expected an Error, got ${String(thrown)}`);
  assert.equal(thrown.code, code, `code of: ${thrown.message}`);
  assert.ok(typeof thrown.message === "string" && thrown.message.length > 0);
  if (type) assert.ok(thrown instanceof TypeError, `expected a TypeError: ${thrown.message}`);
  if (message) assert.match(thrown.message, message);
  return thrown;
}

/** Two accounts with one device each, contacts of each other. */
export function pair({ aliceStore = new sr.MemoryStore(), bobStore = new sr.MemoryStore() } = {}) {
  const a = sr.Device.createAccount(aliceStore, key(1), "alice phone", NOW);
  const b = sr.Device.createAccount(bobStore, key(2), { description: "bob laptop", platform: "desktop" }, NOW);
  const alice = a.device;
  const bob = b.device;
  alice.addContact(bob.sessionId, bob.deviceList(), bob.prekeyRecord());
  bob.addContact(alice.sessionId, alice.deviceList(), alice.prekeyRecord());
  return { alice, bob, aliceStore, bobStore, aliceSeed: a.recoverySeed, alicePhrase: a.recoveryPhrase };
}

/** `from` sends `text` to `to`'s account; `to` receives it. Returns what `to` received. */
export function sendOne(from, to, text, now = NOW) {
  const out = from.send(to.accountKey, enc(text), now);
  assert.equal(out.length, 1);
  const got = to.receive(out[0].bytes);
  assert.equal(dec(got.content), text);
  assert.ok(bytesEqual(got.sender, from.accountKey));
  return got;
}
