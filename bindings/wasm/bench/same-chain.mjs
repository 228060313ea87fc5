// The JavaScript side of the binding's overhead measurement: one
// same-chain message (Alice's send and Bob's receive, in a session both
// sides already use) through the wasm binding, each device over a
// MemoryStore (the crate's, as in examples/same_chain.rs) and then over a
// JavaScript Map behind the RecordStore interface (what a client's own
// database adds on top of the binding).
//
//   node bench/same-chain.mjs [batches] [batch]
//
// prints one line per store: "js same-chain message (<store>): p10 <us> us (...)".
import { createRequire } from "node:module";
const require = createRequire(import.meta.url);
const sr = require("../pkg/nodejs/session_ratchet_wasm.js");

const batches = Number(process.argv[2] ?? 60);
const batch = Number(process.argv[3] ?? 50);
const key = new Uint8Array(32).fill(7);
const now = 1767225600;

// A RecordStore over a Map, as a client would write one over its database.
function mapStore() {
  const m = new Map();
  const hex = (u) => Buffer.from(u.buffer, u.byteOffset, u.byteLength).toString("hex");
  const same = (a, b) => (a === undefined ? b === undefined : b !== undefined && Buffer.compare(a, b) === 0);
  return {
    get: (k) => m.get(hex(k)),
    commit(head, expected, writes) {
      if (!same(m.get(hex(head)), expected)) return false;
      for (const w of writes) {
        if (w.value === undefined) m.delete(hex(w.key));
        else m.set(hex(w.key), w.value);
      }
      return true;
    },
  };
}

function measure(label, makeStore) {
  const alice = sr.Device.createAccount(makeStore(), key, "alice", now).device;
  const bob = sr.Device.createAccount(makeStore(), key, "bob", now).device;
  alice.addContact(bob.sessionId, bob.deviceList(), bob.prekeyRecord());
  bob.addContact(alice.sessionId, alice.deviceList(), alice.prekeyRecord());
  const a = alice.accountKey;
  const b = bob.accountKey;
  for (const out of alice.send(b, new TextEncoder().encode("hello"), now)) bob.receive(out.bytes);
  for (const out of bob.send(a, new TextEncoder().encode("hello back"), now)) alice.receive(out.bytes);
  const content = new Uint8Array(64).fill(0x61);
  const perMessage = [];
  for (let i = 0; i < batches; i++) {
    const start = process.hrtime.bigint();
    for (let j = 0; j < batch; j++) {
      for (const out of alice.send(b, content, now)) {
        const got = bob.receive(out.bytes);
        if (got.content.length !== content.length) throw new Error("wrong content");
      }
    }
    perMessage.push(Number(process.hrtime.bigint() - start) / 1e3 / batch);
  }
  perMessage.sort((x, y) => x - y);
  const p10 = perMessage[Math.floor(perMessage.length / 10)];
  console.log(`js same-chain message (${label}): p10 ${p10.toFixed(1)} us (${batches} batches of ${batch})`);
  alice.free();
  bob.free();
}

measure("MemoryStore", () => new sr.MemoryStore());
measure("JS Map store", mapStore);
