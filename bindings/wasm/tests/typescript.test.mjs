// The TypeScript declarations: tests/types.ts type-checks against them (and
// its wrong uses are refused), the ErrorCode union names exactly the codes
// errorCodes() lists, and the README's first example compiles and runs.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { sr } from "./helpers.mjs";

const here = dirname(dirname(fileURLToPath(import.meta.url)));
const tsc = join(here, "node_modules", "typescript", "bin", "tsc");
const noTs = existsSync(tsc) ? false : "typescript is not installed (npm ci in bindings/wasm)";
const dts = readFileSync(join(here, "pkg", "nodejs", "session_ratchet_wasm.d.ts"), "utf8");

test("tests/types.ts type-checks against the declarations", { skip: noTs }, () => {
  execFileSync(process.execPath, [tsc, "-p", join(here, "tsconfig.json")], { stdio: "pipe" });
});

test("the ErrorCode union names exactly the codes errorCodes() lists", () => {
  const union = dts.slice(dts.indexOf("export type ErrorCode ="), dts.indexOf(";", dts.indexOf("export type ErrorCode =")));
  const named = [...union.matchAll(/"([A-Za-z]+)"/g)].map((m) => m[1]);
  assert.deepEqual([...named].sort(), [...sr.errorCodes()].sort());
});

test("the hidden hand-over classes are not in the declarations", () => {
  for (const hidden of ["MemoryStoreShare", "LinkApprovalTake", "__srShare", "__srTake"]) {
    assert.ok(!dts.includes(hidden), hidden);
  }
});

test("the README's first example compiles and prints hi Bob", { skip: noTs }, () => {
  const readme = readFileSync(join(here, "README.md"), "utf8");
  const section = readme.slice(readme.indexOf("## A first message"));
  const code = section.slice(section.indexOf("```ts\n") + 6, section.indexOf("\n```", section.indexOf("```ts\n")));
  assert.match(code, /from "session-ratchet-wasm"/);
  const dir = join(here, "pkg", "readme");
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "first-message.ts"), code.replace('"session-ratchet-wasm"', '"../nodejs/session_ratchet_wasm.js"'));
  writeFileSync(
    join(dir, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: {
        target: "es2022",
        lib: ["es2022", "esnext.disposable", "dom"],
        module: "commonjs",
        moduleResolution: "node10",
        strict: true,
        types: [],
        outDir: ".",
      },
      files: ["first-message.ts"],
    }),
  );
  execFileSync(process.execPath, [tsc, "-p", join(dir, "tsconfig.json")], { stdio: "pipe" });
  const printed = execFileSync(process.execPath, [join(dir, "first-message.js")], { encoding: "utf8" });
  assert.equal(printed, "hi Bob\n");
});
