// Type-checked (never run) against the generated declarations by
// tests/typescript.test.mjs: every part of the API used with its types,
// and wrong uses that the declarations must refuse (@ts-expect-error).
import {
  Device,
  LinkApproval,
  LinkingDevice,
  MemoryStore,
  errorCodes,
  recoveryPhrase,
  version,
  type CreatedAccount,
  type DeviceInfo,
  type ErrorCode,
  type Healed,
  type LinkApproved,
  type Linked,
  type LinkResponse,
  type ListChange,
  type OutgoingEnvelope,
  type Received,
  type RecordStore,
  type RecordWrite,
  type SasEmoji,
  type SessionRatchetError,
  type Store,
} from "../pkg/nodejs/session_ratchet_wasm.js";

/** A client's database behind the store interface. */
class MapStore implements RecordStore {
  private readonly records = new Map<string, Uint8Array>();
  private static hex(b: Uint8Array): string {
    return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  }
  get(key: Uint8Array): Uint8Array | undefined {
    return this.records.get(MapStore.hex(key));
  }
  commit(head: Uint8Array, expectedHead: Uint8Array | undefined, writes: RecordWrite[]): boolean {
    const current = this.records.get(MapStore.hex(head));
    const same =
      current === undefined
        ? expectedHead === undefined
        : expectedHead !== undefined && current.length === expectedHead.length && current.every((b, i) => b === expectedHead[i]);
    if (!same) return false;
    for (const w of writes) {
      if (w.value === undefined) this.records.delete(MapStore.hex(w.key));
      else this.records.set(MapStore.hex(w.key), w.value);
    }
    return true;
  }
}

export function everything(): string[] {
  const key = new Uint8Array(32);
  const stores: Store[] = [new MemoryStore(), new MapStore()];
  const info: DeviceInfo = { description: "phone", platform: "ios", clientVersion: [1, 0, 0] };
  const created: CreatedAccount = Device.createAccount(stores[0]!, key, info, 1);
  const alice: Device = created.device;
  const seed: Uint8Array = created.recoverySeed;
  const phrase: string = recoveryPhrase(seed);
  const bob = Device.createAccount(new MapStore(), key, "laptop", 1n).device;
  const contact: Uint8Array = alice.addContact(bob.sessionId, bob.deviceList(), bob.prekeyRecord());
  bob.addContact(alice.sessionId, alice.deviceList());
  const out: OutgoingEnvelope[] = alice.send(contact, new TextEncoder().encode("hi"), Math.floor(Date.now() / 1000));
  const mailboxes: Uint8Array[] = out[0]?.mailboxes ?? [];
  const received: Received = bob.receive(out[0]!.bytes);
  const kind: "message" | "heal" | "other" = received.kind;
  const flags: boolean[] = [received.newSession, received.senderListNewer, received.recipientListOutdated];
  const healed: Healed = bob.heal(2);
  const codes: ErrorCode[] = healed.failed.map((f) => f.error.code);
  const change: ListChange = alice.updateContact(bob.deviceList(), [], undefined);
  const added: Uint8Array[] = change.added;
  const generation: number = alice.generation;
  const reopened = Device.open(stores[0]!, key, generation);
  const rotated: Uint8Array | undefined = reopened.maintain(3);
  const hash: Uint8Array | undefined = reopened.activeSession(contact, bob.deviceId);
  const linking = LinkingDevice.start({ description: "tablet", platform: 3 });
  const linkResponse: LinkResponse = reopened.respondToLink(linking.request());
  const approval: LinkApproval = linkResponse.approval;
  const shown: SasEmoji[] = linking.receiveResponse(linkResponse.response);
  const same: boolean = approval.sas.every((e, i) => e.emoji === shown[i]?.emoji && e.name === shown[i]?.name);
  const approved: LinkApproved = reopened.approveLink(approval, 4, true);
  const linked: Linked = linking.finish(new MemoryStore(), key, approved.payload, 4);
  const revokedList: Uint8Array = reopened.revoke(linked.device.deviceId, 5);
  const restored: Device[] = [
    Device.restoreAccount(new MemoryStore(), key, seed, revokedList, "new", 6),
    Device.restoreAccountFromPhrase(new MemoryStore(), key, phrase, undefined, "new", 6),
    Device.restoreFromBackup(new MemoryStore(), key, 0, 6),
    Device.migrate(new MemoryStore(), key, new Uint8Array(1), undefined, 6),
  ];
  try {
    bob.receive(new Uint8Array(1));
  } catch (e) {
    const err = e as SessionRatchetError;
    if (err.code === "NotARecipient" || err.account !== undefined) restored.pop();
  }
  {
    using disposable = new MemoryStore();
    void disposable.length;
  }
  const all: ErrorCode[] = errorCodes();
  return [
    version(),
    String(mailboxes.length + added.length + codes.length + flags.length + all.length),
    kind,
    String(same),
    String(rotated?.length ?? hash?.length ?? 0),
    String(linked.contacts.length + restored.length),
  ];
}

export function refused(device: Device, key: Uint8Array): void {
  // @ts-expect-error content is bytes, not a string
  device.send(device.accountKey, "hi", 1);
  // @ts-expect-error a number is not a store
  Device.open(5, key, 0);
  // @ts-expect-error a store needs commit too
  Device.open({ get: (_k: Uint8Array) => undefined }, key, 0);
  // @ts-expect-error platforms are named or bytes
  Device.createAccount(new MemoryStore(), key, { description: "x", platform: "toaster" }, 1);
  // @ts-expect-error times are numbers or bigints
  device.heal("now");
  // @ts-expect-error not an error code
  const code: ErrorCode = "NotACode";
  // @ts-expect-error the generation is read-only
  device.generation = 5;
  // @ts-expect-error devices are made by the static constructors
  new Device();
  void code;
}
