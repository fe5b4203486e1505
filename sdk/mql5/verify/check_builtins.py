#!/usr/bin/env python3
"""Checks that the MQL5 sources use only MQL5: every identifier is a keyword,
something the sources declare themselves, or an MQL5 built-in listed in
shim/builtins.txt (each entry names the MQL5 documentation page it comes
from). So the C++ shim cannot make C++-only code (std::, strlen, nullptr,
auto, lambdas...) look like working MQL5.

Also refused, because C++ accepts them and MQL5 does not (or the SDK does not
rely on them): non-ASCII bytes, directives other than #include/#define/
#ifndef/#endif/#property, includes outside <Eagate/...>, <Trade/Trade.mqh>
and local files, '->', '::' except after one of the sources' own classes,
lambdas, brace initialisation, string-literal prefixes, local reference
variables, structures or classes passed or returned by value. Every entry of
builtins.txt must be used by the sources and provided by the shim, so the
list stays exact.

The declaration finder is a heuristic tuned to the SDK's style (one
declarator per declaration): it errs towards refusing code, never towards
accepting it. Tested by test_check_builtins.py.

Usage: check_builtins.py [FILE_OR_DIR ...]   (default: the SDK and the
test programs under verify/programs)
"""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mql5pp  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SDK = os.path.normpath(os.path.join(HERE, ".."))
BUILTINS = os.path.join(HERE, "shim", "builtins.txt")
SHIM_FILES = [os.path.join(HERE, "shim", "mql5.h"), os.path.join(HERE, "shim", "include", "Trade", "Trade.mqh")]

TYPE_KEYWORDS = {
    "bool", "char", "uchar", "short", "ushort", "int", "uint", "long", "ulong",
    "float", "double", "string", "datetime", "color", "void",
}
KEYWORDS = TYPE_KEYWORDS | {
    "class", "struct", "enum", "const", "static", "private", "protected", "public",
    "virtual", "input", "sinput", "if", "else", "for", "while", "do", "switch", "case",
    "default", "break", "continue", "return", "sizeof", "true", "false", "this", "NULL",
}
PROPERTIES = {"copyright", "link", "version", "description", "strict", "script_show_inputs", "icon"}
KINDS = {"type", "function", "constant", "class", "member"}


def load_builtins(path=BUILTINS):
    entries = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split()
            if len(parts) != 3 or parts[1] not in KINDS or not parts[2].startswith("https://www.mql5.com/"):
                raise SystemExit(f"{path}:{n}: expected 'name kind https://www.mql5.com/...'")
            entries[parts[0]] = parts[1]
    return entries


def significant(tokens):
    """(index into tokens, kind, text, line) of the tokens that matter."""
    out = []
    line = 1
    for i, (kind, text) in enumerate(tokens):
        if kind not in ("ws", "comment"):
            out.append((i, kind, text, line))
        line += text.count("\n")
    return out


def _own_types(toks):
    """(struct and class names, enum names) declared in a token list."""
    records, enums = set(), set()
    for k, (_, kind, t, _) in enumerate(toks):
        if t in ("class", "struct", "enum") and k + 1 < len(toks) and toks[k + 1][1] == "ident":
            (enums if t == "enum" else records).add(toks[k + 1][2])
    return records, enums


def check_source(name, text, builtins, own=None):
    """Returns (problems, declared names, builtins used) for one file. own
    holds what the other files declare: {"records", "enums", "names"}."""
    problems = []
    used = set()
    try:
        text.encode("ascii")
    except UnicodeEncodeError:
        return [f"{name}: non-ASCII characters (keep MQL5 sources ASCII)"], set(), used
    try:
        tokens = mql5pp.tokenize(text, name)
    except mql5pp.PreprocessError as e:
        return [str(e)], set(), used
    toks = significant(tokens)
    builtin_types = {k for k, v in builtins.items() if v in ("type", "class")}
    builtin_members = {k.split(".", 1)[1] for k, v in builtins.items() if v == "member"}
    records, enums = _own_types(toks)
    if own:
        records |= own["records"]
        enums |= own["enums"]
    declared = set(own["names"]) if own else set()
    own_types = records | enums
    types = TYPE_KEYWORDS | builtin_types | own_types

    # Declarations: macros, enum members, identifiers right after a type
    # (possibly with & or *), methods defined as Class::Name.
    for k, (i, kind, t, line) in enumerate(toks):
        if kind == "directive":
            m = re.match(r"#\s*define\s+([A-Za-z_]\w*)", t)
            if m:
                declared.add(m.group(1))
            continue
        if t == "enum" and k + 2 < len(toks) and toks[k + 2][2] == "{":
            j = k + 3
            expect_name = True
            while j < len(toks) and toks[j][2] != "}":
                if expect_name and toks[j][1] == "ident":
                    declared.add(toks[j][2])
                    expect_name = False
                if toks[j][2] == ",":
                    expect_name = True
                j += 1
        if kind != "ident" or k == 0:
            continue
        prev = toks[k - 1][2]
        prev2 = toks[k - 2][2] if k >= 2 else ""
        if prev in types or (prev in ("&", "*") and prev2 in types):
            declared.add(t)
        if prev == ":" and prev2 == ":" and k >= 3 and toks[k - 3][2] in records:
            declared.add(t)

    # Every token.
    depth = 0
    for k, (i, kind, t, line) in enumerate(toks):
        where = f"{name}:{line}"
        prev = toks[k - 1] if k > 0 else (None, "", "", 0)
        prev2 = toks[k - 2] if k > 1 else (None, "", "", 0)
        nxt = toks[k + 1] if k + 1 < len(toks) else (None, "eof", "", 0)
        nxt2 = toks[k + 2] if k + 2 < len(toks) else (None, "eof", "", 0)
        adjacent = i + 1 < len(tokens) and nxt[0] == i + 1
        if kind == "directive":
            problems += _check_directive(where, t, builtins, records, enums, declared, used)
            continue
        if t == "(":
            depth += 1
        elif t == ")":
            depth -= 1
        if kind == "char":
            inner = t[1:-1]
            if not (len(inner) == 1 or re.fullmatch(r"\\[nrt0\\'\"]", inner)):
                problems.append(f"{where}: character literal {t} (one ASCII character or a simple escape)")
            continue
        if kind == "string":
            if prev[1] == "ident" and prev[0] == i - 1:
                problems.append(f"{where}: string literal prefix {prev[2]}")
            continue
        if kind == "punct":
            if t == "-" and nxt[2] == ">" and adjacent:
                problems.append(f"{where}: '->' (the SDK uses no pointers)")
            if t == ":" and nxt[2] == ":" and adjacent and prev[1] != "ident":
                problems.append(f"{where}: '::' without a class")
            if t == "[" and nxt[2] in ("&", "=") and nxt2[2] == "]":
                problems.append(f"{where}: lambda capture")
            if t == "[" and nxt[2] == "]" and prev[1] != "ident":
                problems.append(f"{where}: '[]' that does not declare a dynamic array")
            if t == "{" and prev[1] == "ident" and prev[2] not in ("else", "do", "const") and prev2[2] not in ("class", "struct", "enum"):
                problems.append(f"{where}: brace initialisation after {prev[2]}")
            if t == "&" and prev[2] in types and nxt[1] == "ident" and nxt2[2] == "=" and \
                    (k + 3 >= len(toks) or toks[k + 3][2] != "="):
                problems.append(f"{where}: reference variable {nxt[2]} (MQL5 has reference parameters only)")
            continue
        if kind != "ident":
            continue
        if nxt[2] == ":" and nxt2[2] == ":" and nxt2[0] == nxt[0] + 1 and t not in records:
            problems.append(f"{where}: '{t}::' (only the sources' own classes may be qualified)")
        if t in records and nxt[1] == "ident" and depth > 0 and (
                prev[2] in ("(", ",") or (prev[2] == "const" and prev2[2] in ("(", ","))):
            problems.append(f"{where}: {t} passed by value (MQL5 passes structures and classes by reference)")
        if t in records and nxt[1] == "ident" and nxt2[2] == "(" and depth == 0:
            problems.append(f"{where}: {nxt[2]} returns {t} by value (or constructs it with arguments)")
        if prev[2] == "." and prev[1] == "punct":
            if t in builtin_members:
                used.update(b for b, v in builtins.items() if v == "member" and b.endswith("." + t))
            elif t not in declared:
                problems.append(f"{where}: member {t} is neither declared by the sources nor a listed MQL5 built-in member")
            continue
        if t in KEYWORDS or t in declared or t in own_types:
            continue
        if t in builtins and builtins[t] != "member":
            used.add(t)
            continue
        problems.append(f"{where}: {t} is not MQL5 (not a keyword, not declared here, not in shim/builtins.txt)")
    return problems, declared, used


def _check_directive(where, text, builtins, records, enums, declared, used):
    body = text[1:].strip()
    words = body.split()
    word = words[0] if words else ""
    if word == "include":
        target = body[len("include"):].strip()
        if re.fullmatch(r"<Eagate/[A-Za-z0-9_]+\.mqh>", target) or target == "<Trade/Trade.mqh>" or \
                re.fullmatch(r'"[A-Za-z0-9_]+\.mqh"', target):
            return []
        return [f"{where}: #include {target} is not an SDK, standard-library or local file"]
    if word == "property":
        prop = words[1] if len(words) > 1 else ""
        return [] if prop in PROPERTIES else [f"{where}: #property {prop} is not allowed"]
    if word == "define":
        replacement = body.split(None, 2)[2] if len(words) > 2 else ""
        problems, _, u = check_source(f"{where} #define", replacement, builtins,
                                      {"records": records, "enums": enums, "names": declared})
        used |= u
        return problems
    if word in ("ifndef", "endif"):
        return []
    return [f"{where}: directive #{word} is not allowed"]


def sources(paths):
    files = []
    for p in paths:
        if os.path.isdir(p):
            for root, dirs, names in os.walk(p):
                dirs[:] = sorted(d for d in dirs if os.path.join(root, d) != os.path.join(SDK, "verify"))
                files += [os.path.join(root, n) for n in sorted(names) if n.endswith((".mqh", ".mq5"))]
        else:
            files.append(p)
    return files


def check_files(files, builtins, shim_text=None, require_all_used=True):
    problems = []
    texts = {}
    for f in files:
        with open(f, encoding="utf-8", errors="replace") as fh:
            texts[f] = fh.read()
    # Declarations are shared across files (a program uses the SDK's names).
    records, enums, names = set(), set(), set()
    for f, text in texts.items():
        try:
            r, e = _own_types(significant(mql5pp.tokenize(text, f)))
        except mql5pp.PreprocessError:
            continue
        records |= r
        enums |= e
    for f, text in texts.items():
        _, declared, _ = check_source(f, text, builtins, {"records": records, "enums": enums, "names": set()})
        names |= declared
    used = set()
    for f, text in texts.items():
        shown = os.path.relpath(f, SDK) if f.startswith(SDK) else f
        p, _, u = check_source(shown, text, builtins, {"records": records, "enums": enums, "names": names})
        problems += p
        used |= u
    if require_all_used:
        for b in sorted(set(builtins) - used):
            problems.append(f"shim/builtins.txt: {b} is listed but no source uses it (keep the list exact)")
    if shim_text is not None:
        for b in sorted(builtins):
            leaf = b.split(".")[-1]
            if not re.search(r"\b" + re.escape(leaf) + r"\b", shim_text):
                problems.append(f"shim/builtins.txt: {b} is listed but the shim does not provide it")
    return problems


def main(argv):
    builtins = load_builtins()
    paths = argv[1:] or [SDK, os.path.join(HERE, "programs")]
    files = sources(paths)
    shim_text = ""
    for f in SHIM_FILES:
        with open(f, encoding="utf-8") as fh:
            shim_text += fh.read()
    problems = check_files(files, builtins, shim_text, require_all_used=not argv[1:])
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        print(f"check_builtins: {len(problems)} problems in {len(files)} files", file=sys.stderr)
        return 1
    print(f"check_builtins: {len(files)} files use only MQL5 keywords, their own declarations and "
          f"{len(builtins)} listed built-ins")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
