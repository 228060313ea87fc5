// The whole life of two accounts through the binding: linked devices with
// the SAS compared, fan-out to every device of both accounts, revocation,
// reopening from the store, two processes on one store, backups, healing,
// prekey rotation, restoring from the recovery seed and phrase, migration.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import {
  DAY,
  NOW,
  bytesEqual,
  dec,
  enc,
  key,
  mapStore,
  pair,
  sendOne,
  sr,
  throwsCode,
} from "./helpers.mjs";

/** Links a new device to `existing`'s account; returns it with its store. */
function link(existing, info, storageKey, { share = true, store = new sr.MemoryStore(), now = NOW } = {}) {
  const linking = sr.LinkingDevice.start(info);
  const { response, approval } = existing.respondToLink(linking.request());
  const shownOnNew = linking.receiveResponse(response);
  const shownOnExisting = approval.sas;
  // The user compares the emoji on both screens.
  assert.equal(shownOnNew.length, 7);
  assert.deepEqual(shownOnNew, shownOnExisting);
  for (const { emoji, name } of shownOnNew) {
    assert.ok(emoji.length > 0 && name.length > 0);
  }
  assert.equal(approval.sasExtended.length, 21);
  assert.deepEqual(approval.sasExtended.slice(0, 7), shownOnExisting);
  assert.equal(approval.used, false);
  const approved = existing.approveLink(approval, now, share);
  assert.equal(approval.used, true);
  assert.ok(bytesEqual(approved.deviceList, existing.deviceList()));
  const linked = linking.finish(store, storageKey, approved.payload, now);
  linking.free();
  return { device: linked.device, contacts: linked.contacts, store, description: approval };
}

test("two accounts, linked devices, fan-out, revocation, reopening", async (t) => {
  const aliceDb = mapStore(); // Alice's phone keeps its records in the client's own database
  const { alice, bob, bobStore } = pair({ aliceStore: aliceDb });
  let aliceDesktop;
  let bobTablet;
  let aliceDesktopStore;

  await t.test("a new account: ids, keys, recovery phrase, first message", () => {
    assert.match(alice.sessionId, /^05[0-9a-f]{64}$/);
    assert.equal(alice.accountKey.length, 32);
    assert.equal(alice.deviceId.length, 32);
    assert.ok(alice.holdsAccountKey);
    assert.equal(alice.isRevoked, false);
    assert.ok(alice.generation >= 1);
    assert.ok(aliceDb.records.size >= 5, "every record in the client's database");
    assert.deepEqual(alice.contacts(), [bob.accountKey]);
    const got = sendOne(alice, bob, "hi Bob");
    assert.equal(got.kind, "message");
    assert.equal(got.newSession, true);
    assert.ok(bytesEqual(got.conversation, bob.accountKey));
    assert.ok(bytesEqual(got.senderDevice, alice.deviceId));
    const back = sendOne(bob, alice, "hi Alice");
    assert.equal(back.newSession, false);
    const hashA = alice.activeSession(bob.accountKey, bob.deviceId);
    assert.equal(hashA.length, 32);
    assert.deepEqual(hashA, bob.activeSession(alice.accountKey, alice.deviceId));
  });

  await t.test("Alice links a desktop; the SAS matches on both screens", () => {
    const published = alice.prekeyRecord();
    const info = { description: "Alice desktop", platform: "desktop", clientVersion: [1, 2, 3] };
    const linked = link(alice, info, key(3), { share: true });
    aliceDesktop = linked.device;
    aliceDesktopStore = linked.store;
    assert.deepEqual(linked.contacts, [bob.accountKey]);
    assert.ok(bytesEqual(aliceDesktop.accountKey, alice.accountKey));
    assert.equal(aliceDesktop.sessionId, alice.sessionId);
    assert.ok(aliceDesktop.holdsAccountKey, "shared the account key");
    // The desktop takes the phone's bundle from the published record and
    // publishes one with both; the phone, then Bob, take it.
    const list = alice.deviceList();
    aliceDesktop.updateContact(list, [], published);
    const record = aliceDesktop.prekeyRecord();
    alice.updateContact(list, [], record);
    aliceDesktop.addContact(bob.sessionId, bob.deviceList(), bob.prekeyRecord());
    const change = bob.updateContact(list, [], record);
    assert.deepEqual(change.added, [aliceDesktop.deviceId]);
    assert.deepEqual(change.removed, []);
  });

  await t.test("Bob links a tablet without the account key", () => {
    const published = bob.prekeyRecord();
    const linked = link(bob, "Bob tablet", key(4), { share: false });
    bobTablet = linked.device;
    assert.equal(bobTablet.holdsAccountKey, false);
    const list = bob.deviceList();
    bobTablet.updateContact(list, [], published);
    const record = bobTablet.prekeyRecord();
    bob.updateContact(list, [], record);
    bobTablet.addContact(alice.sessionId, alice.deviceList(), alice.prekeyRecord());
    alice.updateContact(list, [], record);
    aliceDesktop.updateContact(list, [], record);
    // Only a device with the account key links or revokes.
    throwsCode(() => bobTablet.respondToLink(sr.LinkingDevice.start("x").request()), "NoAccountKey");
    throwsCode(() => bobTablet.revoke(bob.deviceId, NOW), "NoAccountKey");
  });

  await t.test("one envelope reaches every device of both accounts", () => {
    const out = alice.send(bob.accountKey, enc("to everyone"), NOW + 10);
    assert.equal(out.length, 1);
    assert.deepEqual(out[0].mailboxes, [bob.accountKey, alice.accountKey]);
    for (const d of [bob, bobTablet, aliceDesktop]) {
      const got = d.receive(out[0].bytes);
      assert.equal(dec(got.content), "to everyone");
      assert.ok(bytesEqual(got.sender, alice.accountKey));
      assert.ok(bytesEqual(got.senderDevice, alice.deviceId));
      assert.ok(bytesEqual(got.conversation, bob.accountKey), "a copy names the conversation");
    }
    const reply = bobTablet.send(alice.accountKey, enc("from the tablet"), NOW + 11);
    assert.deepEqual(reply[0].mailboxes, [alice.accountKey, bob.accountKey]);
    for (const d of [alice, aliceDesktop, bob]) {
      assert.equal(dec(d.receive(reply[0].bytes).content), "from the tablet");
    }
    // A note to self reaches the account's other device only.
    const note = aliceDesktop.send(alice.accountKey, enc("buy milk"), NOW + 12);
    assert.deepEqual(note[0].mailboxes, [alice.accountKey]);
    assert.equal(dec(alice.receive(note[0].bytes).content), "buy milk");
    throwsCode(() => bob.receive(note[0].bytes), "NotARecipient");
  });

  await t.test("the desktop is revoked: it gets NotARecipient and may not send", () => {
    const desktopId = aliceDesktop.deviceId;
    const list = alice.revoke(desktopId, NOW + 20);
    for (const d of [bob, bobTablet]) {
      const change = d.updateContact(list);
      assert.deepEqual(change.removed, [desktopId]);
    }
    const out = bob.send(alice.accountKey, enc("after the revocation"), NOW + 21);
    assert.equal(dec(alice.receive(out[0].bytes).content), "after the revocation");
    assert.equal(dec(bobTablet.receive(out[0].bytes).content), "after the revocation");
    const e = throwsCode(() => aliceDesktop.receive(out[0].bytes), "NotARecipient");
    assert.equal(e.account, undefined);
    aliceDesktop.updateContact(list);
    assert.ok(aliceDesktop.isRevoked);
    throwsCode(() => aliceDesktop.send(bob.accountKey, enc("x"), NOW + 22), "ThisDeviceRevoked");
    // A revoked device still opens from its store (and still may not send).
    const reopened = sr.Device.open(aliceDesktopStore, key(3), aliceDesktop.generation);
    assert.ok(reopened.isRevoked);
    reopened.free();
  });

  await t.test("a device dropped and opened again from its store and generation", () => {
    const seen = bob.generation;
    const id = bob.deviceId;
    bob.free();
    throwsCode(() => sr.Device.open(bobStore, key(2), seen + 1), "RolledBack");
    throwsCode(() => sr.Device.open(bobStore, key(9), seen), "WrongKey");
    const again = sr.Device.open(bobStore, key(2), seen);
    assert.equal(again.generation, seen);
    assert.ok(bytesEqual(again.deviceId, id));
    assert.deepEqual(again.contacts(), [alice.accountKey]);
    sendOne(again, alice, "back again", NOW + 30);
    // The phone on the client's own database, too.
    const phoneSeen = alice.generation;
    const phone = sr.Device.open(aliceDb, key(1), phoneSeen);
    sendOne(phone, again, "phone reopened", NOW + 31);
    assert.ok(phone.generation > phoneSeen);
    phone.free();
    again.free();
  });
});

test("two processes on one store never send from the same state", async (t) => {
  for (const [label, makeStore] of [
    ["MemoryStore", () => new sr.MemoryStore()],
    ["the client's database", () => mapStore()],
  ]) {
    await t.test(label, () => {
      const { alice, bob, bobStore } = pair({ bobStore: makeStore() });
      sendOne(alice, bob, "one");
      sendOne(bob, alice, "two");
      // The app (bob) and its notification extension (ext) on one store.
      const ext = sr.Device.open(bobStore, key(2), bob.generation);
      const m1 = alice.send(bob.accountKey, enc("while the app sleeps"), NOW + 1);
      assert.equal(dec(ext.receive(m1[0].bytes).content), "while the app sleeps");
      // The app's memory is behind the store: its commit conflicts, it
      // reloads and sends from the extension's state.
      const before = ext.generation;
      const out = bob.send(alice.accountKey, enc("from the app"), NOW + 2);
      assert.ok(bob.generation > before);
      assert.equal(dec(alice.receive(out[0].bytes).content), "from the app");
      // The extension consumed m1's key: the app cannot decrypt it again.
      throwsCode(() => bob.receive(m1[0].bytes), "Undecryptable");
      // And the extension in turn reloads after the app's commit.
      const out2 = ext.send(alice.accountKey, enc("from the extension"), NOW + 3);
      assert.equal(dec(alice.receive(out2[0].bytes).content), "from the extension");
      assert.ok(ext.generation > bob.generation);
      const m2 = alice.send(bob.accountKey, enc("both fine"), NOW + 4);
      assert.equal(dec(bob.receive(m2[0].bytes).content), "both fine");
      for (const d of [alice, bob, ext]) d.free();
    });
  }
});

test("a restored backup never sends in its old sessions again and heals", () => {
  const { alice, bob, bobStore } = pair();
  sendOne(alice, bob, "one");
  sendOne(bob, alice, "two");
  const backup = bobStore.snapshot();
  sendOne(bob, alice, "three");
  const seen = bob.generation;
  bob.free();
  throwsCode(() => sr.Device.open(backup, key(2), seen), "RolledBack");
  const restored = sr.Device.restoreFromBackup(backup, key(2), seen, NOW + 100);
  assert.ok(restored.generation > seen);
  // Publish the new prekeys, then heal every session.
  alice.updateContact(restored.deviceList(), [], restored.prekeyRecord());
  const healed = restored.heal(NOW + 101);
  assert.deepEqual(healed.failed, []);
  assert.equal(healed.envelopes.length, 1);
  assert.deepEqual(healed.envelopes[0].mailboxes, [alice.accountKey]);
  const notice = alice.receive(healed.envelopes[0].bytes);
  assert.equal(notice.kind, "heal");
  assert.equal(notice.content.length, 0);
  assert.equal(notice.newSession, true);
  sendOne(restored, alice, "healed", NOW + 102);
  sendOne(alice, restored, "indeed", NOW + 103);
  // Restoring again with the generation seen since is a no-op.
  const g = restored.generation;
  const again = sr.Device.restoreFromBackup(backup, key(2), g, NOW + 104);
  assert.equal(again.generation, g);
});

test("heal reports the accounts it could not heal, with their errors", () => {
  const { alice, bob } = pair();
  const carol = sr.Device.createAccount(new sr.MemoryStore(), key(5), "carol", NOW).device;
  // Carol knows Bob's list but holds no prekey record of his: no session can start.
  carol.addContact(bob.sessionId, bob.deviceList());
  const healed = carol.heal(NOW + 1);
  assert.deepEqual(healed.envelopes, []);
  assert.equal(healed.failed.length, 1);
  assert.ok(bytesEqual(healed.failed[0].account, bob.accountKey));
  const e = healed.failed[0].error;
  assert.ok(e instanceof Error);
  assert.equal(e.code, "MissingPrekeys");
  assert.ok(bytesEqual(e.account, bob.accountKey));
  throwsCode(() => carol.send(bob.accountKey, enc("x"), NOW + 2), "MissingPrekeys");
  // With the record the same call heals (nothing to heal: the session is new).
  carol.updateContact(bob.deviceList(), [], bob.prekeyRecord());
  const out = carol.send(bob.accountKey, enc("now it works"), NOW + 3);
  // Bob does not know Carol yet: the error names her account.
  const unknown = throwsCode(() => bob.receive(out[0].bytes), "UnknownAccount");
  assert.ok(bytesEqual(unknown.account, carol.accountKey));
  bob.addContact(carol.sessionId, carol.deviceList(), carol.prekeyRecord());
  assert.equal(dec(bob.receive(out[0].bytes).content), "now it works");
  assert.deepEqual(alice.heal(NOW + 4).failed, []);
});

test("maintain rotates prekeys when due and the new record is used", () => {
  const { alice, bob } = pair();
  assert.equal(alice.maintain(NOW + 3600), undefined);
  const record = alice.maintain(NOW + 8 * DAY);
  assert.ok(record instanceof Uint8Array && record.length > 0);
  assert.equal(alice.maintain(NOW + 8 * DAY + 60), undefined);
  bob.updateContact(alice.deviceList(), [], record);
  sendOne(bob, alice, "after rotation", NOW + 8 * DAY + 61);
  // bigint times are taken too.
  assert.equal(alice.maintain(BigInt(NOW + 8 * DAY + 120)), undefined);
});

test("restore the account from its 16-byte seed and from its phrase", async (t) => {
  for (const [label, restore] of [
    ["from the seed", (store, p) => sr.Device.restoreAccount(store, key(6), p.aliceSeed, p.published, "new phone", NOW + 50)],
    [
      "from the phrase (any case, any spacing)",
      (store, p) =>
        sr.Device.restoreAccountFromPhrase(store, key(6), `  ${p.alicePhrase.toUpperCase()} `, p.published, "new phone", NOW + 50),
    ],
  ]) {
    await t.test(label, () => {
      const p = pair();
      const { alice, bob } = p;
      sendOne(alice, bob, "before the loss");
      assert.equal(sr.recoveryPhrase(p.aliceSeed), p.alicePhrase);
      assert.equal(p.alicePhrase.split(" ").length, 13);
      p.published = alice.deviceList();
      const lost = alice.deviceId;
      alice.free(); // every device is lost; the user has the phrase and a new phone
      const fresh = restore(new sr.MemoryStore(), p);
      assert.ok(bytesEqual(fresh.accountKey, bob.contacts()[0]));
      assert.ok(fresh.holdsAccountKey);
      assert.deepEqual(fresh.contacts(), []);
      const added = fresh.deviceList();
      const list = fresh.revoke(lost, NOW + 51);
      const record = fresh.prekeyRecord();
      fresh.addContact(bob.sessionId, bob.deviceList(), bob.prekeyRecord());
      // Bob holds the older list: the message asks for the newer one first.
      const out = fresh.send(bob.accountKey, enc("I am back"), NOW + 52);
      const e = throwsCode(() => bob.receive(out[0].bytes), "DeviceListOutdated");
      assert.ok(bytesEqual(e.account, fresh.accountKey));
      // Lists are offered in order (a gap is refused), here with the one between.
      bob.updateContact(list, [added], record);
      const got = bob.receive(out[0].bytes);
      assert.equal(dec(got.content), "I am back");
      assert.equal(got.newSession, true);
      sendOne(bob, fresh, "welcome back", NOW + 53);
    });
  }
  await t.test("an account that never published a list", () => {
    const lone = sr.Device.createAccount(new sr.MemoryStore(), key(7), "lone", NOW);
    const back = sr.Device.restoreAccount(new sr.MemoryStore(), key(7), lone.recoverySeed, undefined, "again", NOW + 1);
    assert.ok(bytesEqual(back.accountKey, lone.device.accountKey));
  });
});

test("migrate a device from the single-blob format into records", () => {
  const fixture = JSON.parse(readFileSync(new URL("../../../tests/data/stored-device-v1.json", import.meta.url)));
  const bytes = (h) => new Uint8Array(Buffer.from(h, "hex"));
  const aliceStore = new sr.MemoryStore();
  const alice = sr.Device.migrate(aliceStore, key(1), bytes(fixture.alice_device), bytes(fixture.alice_recovery_seed), NOW);
  assert.ok(alice.holdsAccountKey);
  const bob = sr.Device.migrate(new sr.MemoryStore(), key(2), bytes(fixture.bob_device), undefined, NOW);
  assert.equal(bob.holdsAccountKey, false);
  // The session the blobs held carries on, and survives reopening.
  const hash = alice.activeSession(bob.accountKey, bob.deviceId);
  assert.equal(hash.length, 32);
  const reopened = sr.Device.open(aliceStore, key(1), alice.generation);
  assert.deepEqual(reopened.activeSession(bob.accountKey, bob.deviceId), hash);
  const out = reopened.send(bob.accountKey, enc("after migration"), NOW + 1);
  const got = bob.receive(out[0].bytes);
  assert.equal(dec(got.content), "after migration");
  assert.equal(got.newSession, false);
  sendOne(bob, reopened, "reply", NOW + 2);
  // An account seed that is not this account's is refused.
  throwsCode(
    () => sr.Device.migrate(new sr.MemoryStore(), key(1), bytes(fixture.alice_device), new Uint8Array(16), NOW),
    "NoAccountKey",
  );
  throwsCode(() => sr.Device.migrate(aliceStore, key(1), bytes(fixture.alice_device), undefined, NOW), "NotEmptyStore");
});

test("migrate a device from the encrypted single-blob form", () => {
  const fixture = JSON.parse(readFileSync(new URL("../../../tests/data/stored-device-v1.json", import.meta.url)));
  const bytes = (h) => new Uint8Array(Buffer.from(h, "hex"));
  const seed = bytes(fixture.alice_recovery_seed);
  const blob = bytes(fixture.alice_device_encrypted);
  const store = new sr.MemoryStore();
  throwsCode(() => sr.Device.migrateEncrypted(store, key(1), blob, new Uint8Array(32).fill(1), seed, NOW), "SessionState");
  throwsCode(() => sr.Device.migrateEncrypted(store, key(1), blob, new Uint8Array(31), seed, NOW), "InvalidArgument");
  throwsCode(() => sr.Device.migrateEncrypted(store, key(1), blob, undefined, seed, NOW), "InvalidArgument");
  assert.equal(store.length, 0, "nothing written by a failed migration");
  const alice = sr.Device.migrateEncrypted(store, key(1), blob, bytes(fixture.alice_device_encrypted_key), seed, NOW);
  const plain = sr.Device.migrate(new sr.MemoryStore(), key(1), bytes(fixture.alice_device), seed, NOW);
  assert.ok(alice.holdsAccountKey);
  assert.deepEqual(alice.deviceId, plain.deviceId);
  assert.deepEqual(alice.accountKey, plain.accountKey);
});
