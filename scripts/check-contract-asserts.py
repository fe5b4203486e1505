#!/usr/bin/env python3
"""Every assert in the port contract suites (crates/domain/src/testing/contracts)
carries a message: a contract runs against fakes and real adapters, and a
failure there must say which rule broke, not only `left != right`.

Fails listing each `assert!(cond)`, `assert_eq!(a, b)`, `assert_ne!(a, b)`
without a message argument. Usage: scripts/check-contract-asserts.py [FILE...]
"""
import glob
import re
import sys

MACRO = re.compile(r"\b(assert|assert_eq|assert_ne)!\(")


def top_level_args(text, start):
    """The macro's arguments from `start` (just after its `(`), split at
    top-level commas; strings, chars and nesting respected."""
    depth, args, cur, i = 0, [], "", start
    while i < len(text):
        c = text[i]
        if c == '"':
            j = i + 1
            while text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            cur += text[i : j + 1]
            i = j + 1
            continue
        if c == "'" and re.match(r"'(\\.|[^\\'])'", text[i : i + 4]):
            m = re.match(r"'(\\.|[^\\'])'", text[i:])
            cur += m.group(0)
            i += len(m.group(0))
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            if depth == 0:
                args.append(cur)
                return [a for a in args if a.strip()]
            depth -= 1
        elif c == "," and depth == 0:
            args.append(cur)
            cur = ""
            i += 1
            continue
        cur += c
        i += 1
    raise ValueError("unbalanced macro call")


def bare(path):
    text = open(path, encoding="utf-8").read()
    for m in MACRO.finditer(text):
        need = 2 if m.group(1) == "assert" else 3
        if len(top_level_args(text, m.end())) < need:
            yield text.count("\n", 0, m.start()) + 1, m.group(1)


def main():
    files = sys.argv[1:] or sorted(glob.glob("crates/domain/src/testing/contracts/*.rs"))
    if not files:
        print("check-contract-asserts: no contract files found", file=sys.stderr)
        return 1
    found = [(f, line, name) for f in files for line, name in bare(f)]
    for f, line, name in found:
        print(f"{f}:{line}: {name}! without a message", file=sys.stderr)
    if found:
        print(f"check-contract-asserts: {len(found)} contract asserts without a message", file=sys.stderr)
        return 1
    print(f"check-contract-asserts: every assert in {len(files)} contract files has a message")
    return 0


if __name__ == "__main__":
    sys.exit(main())
