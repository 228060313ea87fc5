#!/usr/bin/env python3
"""Independent verifier of the published test vectors of `session-ratchet`.

    python3 spec/reference/verify.py test-vectors/
    python3 spec/reference/verify.py --self-test test-vectors/

Written from the specification (`spec/0*.md`) and `test-vectors/README.md`
only. See README.md next to this file.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import random
import sys
import traceback
from collections import Counter

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import Kind, ProtocolError, VectorContext, VectorFormatError, path_name  # noqa: E402
from layers import LAYERS  # noqa: E402

TOP_LEVEL_FIELDS = {"layer", "description", "provenance", "vectors"}

# Layers published before their reference layer exists: a file of one of
# these layers is reported as skipped instead of failing. Each entry is
# temporary: the layer's module (written from spec/ and
# test-vectors/README.md alone) replaces it, and the entry is removed then.
PENDING_LAYERS: set[str] = set()


def pending(doc) -> bool:
    """Whether a parsed file belongs to a layer still awaiting its verifier."""
    return (isinstance(doc, dict) and doc.get("layer") in PENDING_LAYERS
            and doc.get("layer") not in LAYERS)
VECTOR_META_FIELDS = ("name", "kind")


# --------------------------------------------------------------------------
# Checking
# --------------------------------------------------------------------------

def check_vector(fname: str, vector: dict, all_vectors: list, layer) -> list[tuple[str, str]]:
    """Recompute one vector. Returns (field, message) for every problem."""
    ctx = VectorContext(fname, vector, all_vectors)
    if not isinstance(vector, dict):
        return [("<vector>", f"{fname}: a vector is not a JSON object")]
    kind_name = vector.get("kind")
    kind: Kind | None = layer.KINDS.get(kind_name)
    if kind is None:
        return [("kind", f"{ctx.where('kind')}: unknown vector kind {kind_name!r} "
                         f"for layer {layer.LAYER!r}")]
    allowed = set(VECTOR_META_FIELDS) | set(kind.inputs) | set(kind.outputs)
    for fld in vector:
        if fld not in allowed:
            ctx.fail(fld, f"field not known to the verifier for kind {kind_name!r}")
    for fld in list(VECTOR_META_FIELDS) + list(kind.required_fields()):
        if fld not in vector:
            ctx.fail(fld, "required field is missing")
    if ctx.failures:
        return ctx.failures
    try:
        kind.check(ctx)
    except VectorFormatError as e:
        ctx.fail("<format>", f"malformed vector: {e}")
    except ProtocolError as e:
        ctx.fail("<protocol>", f"recomputation failed with an unexpected protocol error "
                               f"{e.cls} ({e.detail})")
    except Exception:  # a bug in the verifier or a wildly malformed vector
        ctx.fail("<exception>", "verifier raised:\n" + traceback.format_exc())
    return ctx.failures


def check_document(fname: str, doc) -> tuple[int, list[str]]:
    """Check one parsed file. Returns (number of vectors checked, problems)."""
    problems: list[str] = []
    if not isinstance(doc, dict):
        return 0, [f"{fname}: top level is not a JSON object"]
    extra = set(doc) - TOP_LEVEL_FIELDS
    missing = TOP_LEVEL_FIELDS - set(doc)
    if extra:
        problems.append(f"{fname}: unknown top-level fields {sorted(extra)}")
    if missing:
        problems.append(f"{fname}: missing top-level fields {sorted(missing)}")
    layer_name = doc.get("layer")
    layer = LAYERS.get(layer_name)
    if layer is None:
        problems.append(f"{fname}: layer {layer_name!r} is not implemented by this verifier "
                        f"(implemented: {', '.join(sorted(LAYERS))}); extend spec/reference/layers/")
        return 0, problems
    vectors = doc.get("vectors")
    if not isinstance(vectors, list) or not vectors:
        problems.append(f"{fname}: 'vectors' must be a non-empty list")
        return 0, problems

    names = Counter(v.get("name") for v in vectors if isinstance(v, dict))
    for n, c in names.items():
        if c > 1:
            problems.append(f"{fname}: vector name {n!r} is used {c} times")

    kinds = Counter(v.get("kind") for v in vectors if isinstance(v, dict))
    for k in kinds:
        if k not in layer.KINDS:
            problems.append(f"{fname}: unknown vector kind {k!r} ({kinds[k]} vectors)")
    for k, want in layer.EXPECTED_COUNTS.items():
        if kinds.get(k, 0) != want:
            problems.append(f"{fname}: {kinds.get(k, 0)} vectors of kind {k!r}, expected {want}")
    if len(vectors) != sum(layer.EXPECTED_COUNTS.values()):
        problems.append(f"{fname}: {len(vectors)} vectors, expected "
                        f"{sum(layer.EXPECTED_COUNTS.values())}")
    if hasattr(layer, "check_file"):
        layer.check_file(vectors, lambda msg: problems.append(f"{fname}: {msg}"))

    checked = 0
    for v in vectors:
        failures = check_vector(fname, v, vectors, layer)
        problems.extend(msg for _, msg in failures)
        checked += 1
    return checked, problems


def vector_files(directory: str) -> list[str]:
    files = sorted(f for f in os.listdir(directory)
                   if f.endswith(".json") and not f.endswith("-new.json"))
    return files


def load(directory: str, fname: str):
    with open(os.path.join(directory, fname), encoding="utf-8") as fh:
        return json.load(fh)


def run_verify(directory: str) -> int:
    files = vector_files(directory)
    if not files:
        print(f"no *.json vector files in {directory}")
        return 1
    ok = True
    for fname in files:
        try:
            doc = load(directory, fname)
        except (OSError, json.JSONDecodeError) as e:
            print(f"{fname}: cannot load: {e}")
            ok = False
            continue
        if pending(doc):
            print(f"{fname}: SKIPPED (no reference layer yet)")
            continue
        checked, problems = check_document(fname, doc)
        if problems:
            ok = False
            print(f"{fname}: FAILED ({len(problems)} problems, {checked} vectors checked)")
            for p in problems:
                print(f"  {p}")
        else:
            print(f"{fname}: {checked} vectors OK")
    print("all vectors OK" if ok else "VERIFICATION FAILED")
    return 0 if ok else 1


# --------------------------------------------------------------------------
# Self-test: corrupted outputs must be detected
# --------------------------------------------------------------------------

def corrupt(value, rng: random.Random):
    """Change one byte of a hex string, one character of any other string
    (an error class, a phrase), flip a boolean, move an integer by one, a
    float by one ulp, or corrupt one element of a list. None if the value is
    of no corruptible type."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + rng.choice((-1, 1))
    if isinstance(value, float):
        return math.nextafter(value, rng.choice((-math.inf, math.inf)))
    if isinstance(value, list):
        if not value:
            return None
        pos = rng.randrange(len(value))
        item = corrupt(value[pos], rng)
        return None if item is None else value[:pos] + [item] + value[pos + 1:]
    if not isinstance(value, str):
        return None
    if value == "":
        return "00"
    try:
        b = bytearray(bytes.fromhex(value))
        is_hex = len(b) > 0
    except ValueError:
        is_hex = False
    if is_hex:
        pos = rng.randrange(len(b))
        b[pos] ^= rng.randrange(1, 256)
        return b.hex()
    pos = rng.randrange(len(value))
    return value[:pos] + ("X" if value[pos] != "X" else "Y") + value[pos + 1:]


def run_self_test(directory: str) -> int:
    files = vector_files(directory)
    if not files:
        print(f"no *.json vector files in {directory}")
        return 1
    ok = True
    for fname in files:
        doc = load(directory, fname)
        if pending(doc):
            print(f"{fname}: SKIPPED (no reference layer yet)")
            continue
        _, problems = check_document(fname, doc)
        if problems:
            print(f"{fname}: the unmodified file does not verify; self-test not meaningful")
            ok = False
            continue
        layer = LAYERS[doc["layer"]]
        vectors = doc["vectors"]
        tried = detected = 0
        missed: list[str] = []
        for i, v in enumerate(vectors):
            kind = layer.KINDS[v["kind"]]
            if kind.output_paths is not None:
                paths = kind.output_paths(v)
            else:
                paths = [(fld,) for fld in kind.outputs if fld in v]
            for path in paths:
                fld = path_name(path)
                rng = random.Random(f"{fname}/{v['name']}/{fld}")
                bad = copy.deepcopy(v)
                parent = bad
                for p in path[:-1]:
                    parent = parent[p]
                value = corrupt(parent[path[-1]], rng)
                if value is None:
                    continue
                parent[path[-1]] = value
                all_bad = vectors[:i] + [bad] + vectors[i + 1:]
                failures = check_vector(fname, bad, all_bad, layer)
                tried += 1
                if any(f == fld for f, _ in failures):
                    detected += 1
                else:
                    missed.append(f"vector '{v['name']}', field '{fld}'")

        # Structural corruptions.
        structural = {
            "unknown layer": dict(doc, layer=doc["layer"] + "-x"),
            "one vector dropped": dict(doc, vectors=vectors[1:]),
            "unknown vector kind": dict(doc, vectors=[dict(vectors[0], kind="x-" + vectors[0]["kind"])]
                                        + vectors[1:]),
            "unknown field": dict(doc, vectors=[dict(vectors[0], extra_field="00")] + vectors[1:]),
        }
        for what, bad_doc in structural.items():
            tried += 1
            _, probs = check_document(fname, bad_doc)
            if probs:
                detected += 1
            else:
                missed.append(what)

        # Layer rule cases: inputs built in memory that must give a stated
        # verdict or error class (for classes no published vector reaches).
        rule_cases = rule_ok = 0
        rule_missed: list[str] = []
        if hasattr(layer, "self_test"):
            try:
                cases = layer.self_test(vectors)
            except Exception:
                cases = [("<rule self-test>", "raised:\n" + traceback.format_exc())]
            for case, problem in cases:
                rule_cases += 1
                if problem is None:
                    rule_ok += 1
                else:
                    rule_missed.append(f"rule case '{case}': {problem}")
        rules = f", {rule_ok}/{rule_cases} rule cases" if rule_cases else ""

        if missed or rule_missed:
            ok = False
            print(f"{fname}: SELF-TEST FAILED: {len(missed)} of {tried} corruptions went unnoticed"
                  + (f", {len(rule_missed)} of {rule_cases} rule cases failed" if rule_cases else ""))
            for m in missed:
                print(f"  unnoticed: {m}")
            for m in rule_missed:
                print(f"  {m}")
        else:
            print(f"{fname}: self-test OK, {detected}/{tried} corruptions detected{rules}")
    print("self-test OK" if ok else "SELF-TEST FAILED")
    return 0 if ok else 1


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("directory", help="directory holding the *.json vector files")
    ap.add_argument("--self-test", action="store_true",
                    help="corrupt output fields in memory and check that every corruption is reported")
    args = ap.parse_args(argv)
    if not os.path.isdir(args.directory):
        print(f"not a directory: {args.directory}")
        return 2
    return run_self_test(args.directory) if args.self_test else run_verify(args.directory)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
