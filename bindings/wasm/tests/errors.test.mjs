// Every error path with bad input: garbage bytes, wrong keys, damaged or
// missing records, a misbehaving database, arguments of the wrong type,
// and objects used after they were consumed or freed. Each throws an Error
// with the right `code` (never a crash), and leaves the device usable and
// its store as it was.
import assert from "node:assert/strict";
import { test } from "node:test";
import { NOW, bytesEqual, dec, enc, key, mapStore, pair, sendOne, sr, throwsCode } from "./helpers.mjs";

const garbage = [new Uint8Array(0), new Uint8Array([7]), new Uint8Array(300).fill(0xa5), crypto.getRandomValues(new Uint8Array(97))];
const seen = new Set();
const expectCode = (fn, code, opts) => {
  seen.add(code);
  return throwsCode(fn, code, opts);
};
/** Asserts a throw whose code is one of `codes`. */
const expectOneOf = (fn, codes) => {
  let thrown;
  try {
    fn();
  } catch (e) {
    thrown = e;
  }
  assert.ok(thrown instanceof Error, "expected an Error");
  assert.ok(codes.includes(thrown.code), `code ${thrown.code} (${thrown.message}) not in ${codes}`);
  seen.add(thrown.code);
};
const snapshotOf = (store) => store.keys().map((k) => [k, store.get(k)]);
const storeUnchanged = (store, before) => assert.deepEqual(snapshotOf(store), before);
/** The key of the record of kind `kind` (the first byte of a record's key, spec §10.3). */
const recordKey = (store, kind) => store.keys().find((k) => k[0] === kind);
const HEAD = 0x01;
const IDENTITY = 0x02;

test("garbage bytes are refused with the kind of input they should have been", () => {
  const { alice, bob, bobStore } = pair();
  const first = alice.send(bob.accountKey, enc("hi"), NOW)[0].bytes;
  const before = snapshotOf(bobStore);
  for (const g of garbage) {
    expectOneOf(() => bob.receive(g), ["Malformed", "Envelope"]);
    expectOneOf(() => bob.addContact(alice.sessionId, g), ["Malformed", "DeviceList"]);
    expectOneOf(() => bob.addContact(alice.sessionId, alice.deviceList(), g), ["Malformed", "PrekeyRecord"]);
    expectOneOf(() => bob.updateContact(g), ["Malformed", "DeviceList"]);
    expectOneOf(() => bob.updateContact(alice.deviceList(), [g]), ["Malformed", "DeviceList"]);
    expectOneOf(() => bob.updateContact(alice.deviceList(), [], g), ["Malformed", "PrekeyRecord"]);
    expectOneOf(() => bob.respondToLink(g), ["Malformed", "Link"]);
    expectOneOf(() => sr.Device.migrate(new sr.MemoryStore(), key(1), g, undefined, NOW), ["Malformed", "SessionState"]);
    expectOneOf(
      () => sr.Device.restoreAccount(new sr.MemoryStore(), key(1), new Uint8Array(16), g, "x", NOW),
      ["Malformed", "DeviceList"],
    );
  }
  // A real envelope, truncated or with a byte changed: refused, or (a byte
  // of another recipient's padding slot) the same message. Each probe runs
  // on its own copy of Bob's store.
  expectOneOf(() => bob.receive(first.slice(0, first.length - 1)), ["Malformed", "Envelope"]);
  let refused = 0;
  for (let at = 0; at < first.length; at += 37) {
    const changed = first.slice();
    changed[at] ^= 0x01;
    const probe = sr.Device.open(bobStore.snapshot(), key(2), bob.generation);
    try {
      assert.equal(dec(probe.receive(changed).content), "hi");
    } catch (e) {
      assert.ok(e instanceof Error && typeof e.code === "string", String(e));
      assert.ok(["Malformed", "Envelope", "NotARecipient", "Undecryptable", "Handshake"].includes(e.code), e.code);
      seen.add(e.code);
      refused++;
    }
    probe.free();
  }
  assert.ok(refused > 0);
  storeUnchanged(bobStore, before);
  // Nothing changed: the genuine envelope still opens, once.
  assert.equal(dec(bob.receive(first).content), "hi");
  expectCode(() => bob.receive(first), "Undecryptable");
  // A device list that is not the Session ID's.
  const carol = sr.Device.createAccount(new sr.MemoryStore(), key(3), "carol", NOW).device;
  expectCode(() => bob.addContact(carol.sessionId, alice.deviceList()), "DeviceList");
  expectCode(
    () => sr.Device.restoreAccount(new sr.MemoryStore(), key(1), new Uint8Array(16), alice.deviceList(), "x", NOW),
    "DeviceList",
  );
  // Session IDs and phrases.
  for (const id of ["", "05", "zz".repeat(33), "03" + "ab".repeat(32), new Uint8Array(33), new Uint8Array(32)]) {
    expectCode(() => bob.addContact(id, alice.deviceList()), "SessionId");
  }
  const words = sr.Device.createAccount(new sr.MemoryStore(), key(5), "x", NOW).recoveryPhrase.split(" ");
  const badChecksum = [...words.slice(0, 12), words[12] === words[0] ? words[1] : words[0]].join(" ");
  for (const phrase of ["", "not a phrase", words.slice(0, 12).join(" "), badChecksum, `${words.join(" ")} ${words[0]}`]) {
    expectCode(() => sr.Device.restoreAccountFromPhrase(new sr.MemoryStore(), key(1), phrase, undefined, "x", NOW), "Phrase");
  }
  sendOne(bob, alice, "still fine");
});

test("link messages: garbage, out of order, forged, used up", () => {
  const { alice } = pair();
  const linking = sr.LinkingDevice.start("tablet");
  expectCode(() => linking.finish(new sr.MemoryStore(), key(4), new Uint8Array(10), NOW), "LinkOutOfOrder");
  for (const g of garbage) expectOneOf(() => linking.receiveResponse(g), ["Malformed", "Link"]);
  // A response to another device's request does not open.
  const other = sr.LinkingDevice.start("other");
  const forged = alice.respondToLink(other.request());
  try {
    // Taken, but its SAS is not the one the existing device shows.
    assert.notDeepEqual(linking.receiveResponse(forged.response), forged.approval.sas);
  } catch (e) {
    assert.ok(["Link", "Malformed"].includes(e.code), e.message);
  }
  const { response, approval } = alice.respondToLink(linking.request());
  assert.deepEqual(linking.receiveResponse(response), approval.sas);
  assert.equal(approval.description, "tablet");
  for (const g of garbage) expectOneOf(() => linking.finish(new sr.MemoryStore(), key(4), g, NOW), ["Malformed", "Link"]);
  // The payload of the other link does not open here.
  other.receiveResponse(forged.response);
  const otherPayload = alice.approveLink(forged.approval, NOW, false).payload;
  expectOneOf(() => linking.finish(new sr.MemoryStore(), key(4), otherPayload, NOW), ["Link", "Malformed"]);
  const { payload } = alice.approveLink(approval, NOW, true);
  // Used up: approving again, or reading it, throws Consumed.
  expectCode(() => alice.approveLink(approval, NOW, true), "Consumed");
  expectCode(() => approval.sas, "Consumed");
  // Finishing into a store that holds a device fails and may be retried.
  const used = new sr.MemoryStore();
  sr.Device.createAccount(used, key(4), "someone", NOW);
  expectCode(() => linking.finish(used, key(4), payload, NOW), "NotEmptyStore");
  const tablet = linking.finish(new sr.MemoryStore(), key(4), payload, NOW).device;
  assert.ok(bytesEqual(tablet.accountKey, alice.accountKey));
  expectCode(() => linking.finish(new sr.MemoryStore(), key(4), payload, NOW), "LinkOutOfOrder");
});

test("storage: empty, not empty, wrong key, damaged, missing and rolled-back records", () => {
  const { alice, bob, bobStore } = pair();
  sendOne(alice, bob, "one");
  const g = bob.generation;
  expectCode(() => sr.Device.open(new sr.MemoryStore(), key(2), 0), "EmptyStore");
  expectCode(() => sr.Device.open(mapStore(), key(2), 0), "EmptyStore");
  expectCode(() => sr.Device.createAccount(bobStore, key(2), "again", NOW), "NotEmptyStore");
  expectCode(() => sr.Device.restoreAccount(bobStore, key(2), new Uint8Array(16), undefined, "again", NOW), "NotEmptyStore");
  expectCode(() => sr.Device.open(bobStore, key(8), g), "WrongKey");
  expectCode(() => sr.Device.restoreFromBackup(bobStore, key(8), g, NOW), "WrongKey");
  expectCode(() => sr.Device.open(bobStore, key(2), g + 1), "RolledBack");
  const ok = sr.Device.open(bobStore, key(2), g);
  ok.free();

  // A damaged identity record (one bit), then garbage in its place.
  for (const damage of [(v) => ((v[v.length - 1] ^= 1), v), () => new Uint8Array([1, 2, 3]), () => new Uint8Array(400)]) {
    const store = bobStore.snapshot();
    const k = recordKey(store, IDENTITY);
    store.overwrite(k, damage(store.get(k).slice()));
    expectCode(() => sr.Device.open(store, key(2), g), "Corrupted");
  }
  // A record swapped for another's.
  {
    const store = bobStore.snapshot();
    const id = recordKey(store, IDENTITY);
    const prekeys = recordKey(store, 0x04);
    store.overwrite(id, store.get(prekeys));
    expectCode(() => sr.Device.open(store, key(2), g), "Corrupted");
  }
  // A damaged head cannot be told from a wrong key (spec §10.6).
  {
    const store = bobStore.snapshot();
    const h = recordKey(store, HEAD);
    const v = store.get(h).slice();
    v[v.length - 1] ^= 1;
    store.overwrite(h, v);
    expectOneOf(() => sr.Device.open(store, key(2), g), ["WrongKey", "Corrupted"]);
  }
  // The head deleted: the records are there, the device is not.
  {
    const store = bobStore.snapshot();
    store.overwrite(recordKey(store, HEAD), undefined);
    expectCode(() => sr.Device.open(store, key(2), 0), "MissingRecord");
  }
  // The identity deleted.
  {
    const store = bobStore.snapshot();
    store.overwrite(recordKey(store, IDENTITY), undefined);
    expectCode(() => sr.Device.open(store, key(2), 0), "MissingRecord");
  }
  // One record rolled back alone (an older copy of the prekeys).
  {
    const old = bobStore.snapshot();
    bob.maintain(NOW + 30 * 24 * 3600);
    const store = bobStore.snapshot();
    const p = recordKey(store, 0x04);
    store.overwrite(p, old.get(p));
    expectCode(() => sr.Device.open(store, key(2), 0), "RecordRolledBack");
  }
  sendOne(bob, alice, "still fine");
});

test("sending: unknown accounts, bad account keys, content too long", () => {
  const { alice, bob, aliceStore } = pair();
  const carol = sr.Device.createAccount(new sr.MemoryStore(), key(3), "carol", NOW).device;
  const before = snapshotOf(aliceStore);
  const e = expectCode(() => alice.send(carol.accountKey, enc("x"), NOW), "UnknownAccount");
  assert.ok(bytesEqual(e.account, carol.accountKey));
  assert.equal(alice.activeSession(carol.accountKey, carol.deviceId), undefined);
  // 32 bytes that are not an Ed25519 point.
  const notAPoint = new Uint8Array(32).fill(0xff);
  notAPoint[31] = 0x7f;
  expectCode(() => alice.send(notAPoint, enc("x"), NOW), "InvalidArgument");
  expectCode(() => alice.send(bob.accountKey, new Uint8Array(12 * 1024 + 1), NOW), "ContentTooLong");
  expectCode(() => alice.revoke(new Uint8Array(32), NOW), "DeviceList");
  storeUnchanged(aliceStore, before);
  // The longest content goes through.
  const out = alice.send(bob.accountKey, new Uint8Array(12 * 1024).fill(1), NOW);
  assert.equal(bob.receive(out[0].bytes).content.length, 12 * 1024);
});

test("a misbehaving database: throws, wrong results, promises, conflicts, lost outcomes", () => {
  const hooks = {};
  const db = mapStore(hooks);
  const { alice, bob } = pair({ aliceStore: db });
  sendOne(alice, bob, "one");
  const records = () => [...db.records.entries()].map(([k, v]) => [k, Buffer.from(v).toString("hex")]);
  const before = records();
  // Reads fail: opening (which must read) throws and changes nothing.
  for (const [h, message] of [
    [{ get: () => { throw new Error("disk on fire"); } }, /get threw: disk on fire/],
    [{ get: () => "not bytes" }, /neither a Uint8Array/],
    [{ get: () => Promise.resolve(new Uint8Array(1)) }, /synchronous/],
  ]) {
    Object.assign(hooks, h);
    expectCode(() => sr.Device.open(db, key(1), 0), "StoreFailed", { message });
    delete hooks.get;
  }
  // Commits fail: the send throws and nothing is written.
  for (const [h, message] of [
    [{ commit: () => { throw new Error("database is locked"); } }, /commit threw: database is locked/],
    [{ commit: () => "yes" }, /true or false/],
    [{ commit: () => Promise.resolve(true) }, /synchronous/],
    [{ commit: () => { throw "a string"; } }, /commit threw: a string/],
  ]) {
    Object.assign(hooks, h);
    expectCode(() => alice.send(bob.accountKey, enc("x"), NOW + 1), "StoreFailed", { message });
    delete hooks.commit;
    assert.deepEqual(records(), before, "nothing written");
  }
  // After a failed commit the device reloads: a read failing then is a store failure too.
  hooks.commit = () => false;
  hooks.get = () => {
    throw new Error("gone");
  };
  expectCode(() => alice.send(bob.accountKey, enc("x"), NOW + 1), "StoreFailed", { message: /gone/ });
  delete hooks.get;
  delete hooks.commit;
  // Another process keeps committing first: the call gives up with Busy.
  hooks.commit = () => false;
  expectCode(() => alice.send(bob.accountKey, enc("x"), NOW + 1), "Busy");
  expectCode(() => sr.Device.createAccount(mapStore({ commit: () => false }), key(5), "x", NOW), "Busy");
  delete hooks.commit;
  // The store committed, then threw (the outcome was lost): the head says it did.
  let once = true;
  hooks.commit = (head, expected, writes) => {
    if (!once) return undefined;
    once = false;
    delete hooks.commit;
    db.commit(head, expected, writes);
    throw new Error("connection reset after COMMIT");
  };
  const out = alice.send(bob.accountKey, enc("committed anyway"), NOW + 2);
  assert.equal(dec(bob.receive(out[0].bytes).content), "committed anyway");
  // A store that calls back into the device it serves: the inner call
  // throws (the object is in use), so the store fails; no crash.
  hooks.commit = () => {
    void alice.generation;
  };
  expectCode(() => alice.send(bob.accountKey, enc("x"), NOW + 3), "StoreFailed", { message: /recursive use/ });
  delete hooks.commit;
  sendOne(alice, bob, "all fine after", NOW + 4);
  sendOne(bob, alice, "and back", NOW + 5);
});

test("arguments of the wrong type throw TypeError with code InvalidArgument", () => {
  const { alice, bob } = pair();
  const T = { type: true };
  const k = key(9);
  const wrongBytes = ["bytes", 42, {}, [1, 2, 3], null, undefined, true, new ArrayBuffer(32), new Uint16Array(16)];
  const wrongTimes = ["5", {}, null, undefined, [], true];
  const badTimes = [-1, 1.5, NaN, Infinity, 2 ** 53, -1n, 2n ** 64n];
  // Stores.
  for (const s of [5, "store", null, undefined, {}, { get() {} }, { get: 1, commit: 2 }, () => {}]) {
    expectCode(() => sr.Device.createAccount(s, k, "x", NOW), "InvalidArgument", T);
    expectCode(() => sr.Device.open(s, k, 0), "InvalidArgument", T);
  }
  // Storage keys, seeds, ids: type, then length.
  for (const w of wrongBytes) {
    expectCode(() => sr.Device.createAccount(new sr.MemoryStore(), w, "x", NOW), "InvalidArgument", T);
    expectCode(() => sr.Device.restoreAccount(new sr.MemoryStore(), k, w, undefined, "x", NOW), "InvalidArgument", T);
    expectCode(() => alice.receive(w), "InvalidArgument", T);
    expectCode(() => alice.send(w, enc("x"), NOW), "InvalidArgument", T);
    expectCode(() => alice.send(bob.accountKey, w, NOW), "InvalidArgument", T);
    expectCode(() => alice.revoke(w, NOW), "InvalidArgument", T);
    expectCode(() => alice.activeSession(bob.accountKey, w), "InvalidArgument", T);
    expectCode(() => alice.respondToLink(w), "InvalidArgument", T);
    expectCode(() => sr.recoveryPhrase(w), "InvalidArgument", T);
    if (w !== null && w !== undefined) {
      expectCode(() => alice.addContact(bob.sessionId, bob.deviceList(), w), "InvalidArgument", T);
      expectCode(() => alice.updateContact(bob.deviceList(), [], w), "InvalidArgument", T);
      expectCode(() => sr.Device.migrate(new sr.MemoryStore(), k, new Uint8Array(4), w, NOW), "InvalidArgument", T);
    }
  }
  for (const n of [0, 16, 31, 33]) {
    expectCode(() => sr.Device.open(new sr.MemoryStore(), new Uint8Array(n), 0), "InvalidArgument", { message: /32 bytes/ });
    expectCode(() => alice.revoke(new Uint8Array(n), NOW), "InvalidArgument", { message: /32 bytes/ });
  }
  expectCode(() => sr.recoveryPhrase(new Uint8Array(15)), "InvalidArgument", { message: /16 bytes/ });
  expectCode(() => sr.Device.migrate(new sr.MemoryStore(), k, new Uint8Array(4), new Uint8Array(20), NOW), "InvalidArgument");
  // Strings are not bytes (no silent UTF-8 or zero filling).
  expectCode(() => alice.send(bob.accountKey, "hello", NOW), "InvalidArgument", T);
  // Times and generations.
  for (const w of wrongTimes) {
    expectCode(() => alice.send(bob.accountKey, enc("x"), w), "InvalidArgument", T);
    expectCode(() => sr.Device.open(new sr.MemoryStore(), k, w), "InvalidArgument", T);
  }
  for (const b of badTimes) {
    expectCode(() => alice.maintain(b), "InvalidArgument");
    expectCode(() => alice.heal(b), "InvalidArgument");
  }
  // Device info.
  for (const info of [5, null, undefined, [], () => {}, { description: 5 }, {}]) {
    expectCode(() => sr.Device.createAccount(new sr.MemoryStore(), k, info, NOW), "InvalidArgument", T);
    expectCode(() => sr.LinkingDevice.start(info), "InvalidArgument", T);
  }
  for (const info of [
    { description: "x", platform: "toaster" },
    { description: "x", platform: 256 },
    { description: "x", clientVersion: [1, 2, 70000] },
    { description: "x", clientVersion: [1, 2, -1] },
    "d".repeat(65),
  ]) {
    expectCode(() => sr.Device.createAccount(new sr.MemoryStore(), k, info, NOW), "InvalidArgument");
  }
  expectCode(() => sr.Device.createAccount(new sr.MemoryStore(), k, { description: "x", clientVersion: [1, 2] }, NOW), "InvalidArgument", T);
  // Other argument types.
  for (const w of [5, {}, null, undefined]) expectCode(() => alice.addContact(w, bob.deviceList()), "InvalidArgument", T);
  for (const w of ["lists", 5, {}, ["x"], [new Uint8Array(1), 7]]) {
    expectCode(() => alice.updateContact(bob.deviceList(), w), "InvalidArgument", T);
  }
  for (const w of [5, new Uint8Array(3), null]) {
    expectCode(() => sr.Device.restoreAccountFromPhrase(new sr.MemoryStore(), k, w, undefined, "x", NOW), "InvalidArgument", T);
  }
  const linking = sr.LinkingDevice.start("t");
  const { approval } = alice.respondToLink(linking.request());
  for (const w of [{}, null, 5, "approval", linking, new sr.MemoryStore()]) {
    expectCode(() => alice.approveLink(w, NOW, true), "InvalidArgument", T);
  }
  expectCode(() => alice.approveLink(approval, NOW, "yes"), "InvalidArgument", T);
  expectCode(() => alice.approveLink(approval, "now", true), "InvalidArgument", T);
  assert.equal(approval.used, false, "a refused call does not use the approval up");
  // MemoryStore's own RecordStore methods check their arguments too.
  const m = new sr.MemoryStore();
  expectCode(() => m.get("k"), "InvalidArgument", T);
  expectCode(() => m.commit(new Uint8Array(1), undefined, "writes"), "InvalidArgument", T);
  expectCode(() => m.commit(new Uint8Array(1), undefined, [5]), "InvalidArgument", T);
  expectCode(() => m.commit(new Uint8Array(1), undefined, [{ key: "k" }]), "InvalidArgument", T);
  expectCode(() => m.commit(new Uint8Array(1), "head", []), "InvalidArgument", T);
  assert.equal(m.commit(new Uint8Array([1]), undefined, [{ key: new Uint8Array([1]), value: new Uint8Array([2]) }]), true);
  assert.equal(m.commit(new Uint8Array([1]), undefined, []), false, "conflict");
  assert.deepEqual(m.get(new Uint8Array([1])), new Uint8Array([2]));
  assert.equal(m.length, 1);
  sendOne(alice, bob, "still fine");
});

test("freed objects, wrong receivers and missing arguments throw, never crash", () => {
  const { alice, bob } = pair();
  const d = sr.Device.createAccount(new sr.MemoryStore(), key(5), "short-lived", NOW).device;
  d.free();
  assert.throws(() => d.send(bob.accountKey, enc("x"), NOW));
  assert.throws(() => d.generation);
  assert.throws(() => sr.Device.prototype.receive.call({}, new Uint8Array(3)));
  assert.throws(() => sr.Device.prototype.receive.call(new sr.MemoryStore(), new Uint8Array(3)));
  const freedStore = new sr.MemoryStore();
  freedStore.free();
  expectCode(() => sr.Device.createAccount(freedStore, key(5), "x", NOW), "InvalidArgument", { message: /freed/ });
  const linking = sr.LinkingDevice.start("t");
  const { approval } = alice.respondToLink(linking.request());
  approval.free();
  expectCode(() => alice.approveLink(approval, NOW, true), "InvalidArgument", { message: /freed/ });
  expectCode(() => alice.send(), "InvalidArgument", { type: true });
  expectCode(() => sr.Device.open(), "InvalidArgument", { type: true });
  sendOne(alice, bob, "still fine");
});

test("every code thrown is one errorCodes() lists", () => {
  const codes = sr.errorCodes();
  assert.equal(new Set(codes).size, codes.length);
  for (const c of seen) assert.ok(codes.includes(c), c);
  assert.ok(seen.size >= 20, `saw ${seen.size} distinct codes`);
  assert.match(sr.version(), /^\d+\.\d+\.\d+$/);
});
