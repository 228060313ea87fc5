// The other two packages: `web` (initialised by hand, as a page does) and
// `bundler` (an ES module importing the .wasm, as webpack or Vite resolve
// it; Node 20 needs --experimental-wasm-modules for that) run a message.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { test } from "node:test";

const pkg = new URL("../pkg/", import.meta.url);
const script = (mod) => `
  const sr = ${mod};
  const now = 1767225600;
  const a = sr.Device.createAccount(new sr.MemoryStore(), new Uint8Array(32).fill(1), "a", now).device;
  const b = sr.Device.createAccount(new sr.MemoryStore(), new Uint8Array(32).fill(2), "b", now).device;
  a.addContact(b.sessionId, b.deviceList(), b.prekeyRecord());
  b.addContact(a.sessionId, a.deviceList(), a.prekeyRecord());
  const out = a.send(b.accountKey, new TextEncoder().encode("hi"), now);
  let code;
  try { b.receive(new Uint8Array(3)); } catch (e) { code = e.code; }
  console.log(new TextDecoder().decode(b.receive(out[0].bytes).content), code);
`;

test("the web package, initialised with initSync", async () => {
  const sr = await import(new URL("web/session_ratchet_wasm.js", pkg));
  sr.initSync({ module: readFileSync(new URL("web/session_ratchet_wasm_bg.wasm", pkg)) });
  const d = sr.Device.createAccount(new sr.MemoryStore(), new Uint8Array(32), "web", 1).device;
  assert.match(d.sessionId, /^05/);
  const printed = execFileSync(
    process.execPath,
    [
      "--input-type=module",
      "-e",
      `import { readFileSync } from "node:fs";
       const m = await import(${JSON.stringify(new URL("web/session_ratchet_wasm.js", pkg).href)});
       await m.default({ module_or_path: readFileSync(${JSON.stringify(new URL("web/session_ratchet_wasm_bg.wasm", pkg).pathname)}) });
       ${script("m")}`,
    ],
    { encoding: "utf8" },
  );
  assert.equal(printed, "hi Malformed\n");
});

test("the bundler package, as an ES module importing its .wasm", { skip: !existsSync(new URL("bundler", pkg)) }, () => {
  const printed = execFileSync(
    process.execPath,
    [
      "--experimental-wasm-modules",
      "--no-warnings",
      "--input-type=module",
      "-e",
      `const m = await import(${JSON.stringify(new URL("bundler/session_ratchet_wasm.js", pkg).href)}); ${script("m")}`,
    ],
    { encoding: "utf8" },
  );
  assert.equal(printed, "hi Malformed\n");
});
