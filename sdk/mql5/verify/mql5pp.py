#!/usr/bin/env python3
"""The mechanical rewrite that lets MQL5 sources compile as C++ against the
shim (shim/mql5.h). It changes only what C++ cannot spell the MQL5 way, and
keeps every line where it was (plus a leading #line, so compiler messages
name the original file and line):

1. ``T name[]`` (a dynamic array: a variable, member or parameter, ``&`` and
   ``const`` allowed) becomes ``MqlArray<T> name``.
2. String literals become ``string("...")`` (adjacent literals are joined in
   one wrapper), so they are MQL5 strings, never C pointers.
3. ``input T name = value;`` (and ``sinput``) becomes
   ``const T name = ShimInput<T>("name", value);`` so a test can set inputs
   through the environment (MQL5_INPUT_<name>).
4. ``#property`` lines become comments.

Anything it does not understand (multi-dimensional dynamic arrays, an input
without a default, an unterminated literal) is an error, never a guess.
Tested by test_mql5pp.py.

Usage: mql5pp.py SOURCE_ROOT OUTPUT_ROOT   (every .mqh/.mq5 below SOURCE_ROOT,
except the verify/ folder, is written to the same relative path below
OUTPUT_ROOT)
"""

import os
import re
import sys

NOT_TYPES = {"return", "else", "case", "new", "delete", "sizeof", "do", "goto"}


class PreprocessError(Exception):
    pass


def tokenize(text, name="<input>"):
    """Splits MQL5 text into (kind, text) tokens; kinds: ws, comment,
    string, char, ident, number, punct, directive. Joining the texts gives
    back the input exactly."""
    tokens = []
    i = 0
    n = len(text)
    line_start = True
    while i < n:
        c = text[i]
        if c in " \t\r\n":
            j = i
            while j < n and text[j] in " \t\r\n":
                if text[j] == "\n":
                    line_start = True
                j += 1
            tokens.append(("ws", text[i:j]))
            i = j
            continue
        if c == "#" and line_start:
            j = text.find("\n", i)
            j = n if j < 0 else j
            tokens.append(("directive", text[i:j]))
            i = j
            continue
        line_start = False
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            tokens.append(("comment", text[i:j]))
            i = j
            continue
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            if j < 0:
                raise PreprocessError(f"{name}: unterminated comment")
            tokens.append(("comment", text[i : j + 2]))
            i = j + 2
            continue
        if c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                if text[j] == "\n":
                    raise PreprocessError(f"{name}: unterminated literal on line {text.count(chr(10), 0, i) + 1}")
                j += 2 if text[j] == "\\" else 1
            if j >= n:
                raise PreprocessError(f"{name}: unterminated literal on line {text.count(chr(10), 0, i) + 1}")
            tokens.append(("string" if c == '"' else "char", text[i : j + 1]))
            i = j + 1
            continue
        if c.isalpha() or c == "_":
            m = re.compile(r"[A-Za-z_][A-Za-z0-9_]*").match(text, i)
            tokens.append(("ident", m.group(0)))
            i = m.end()
            continue
        if c.isdigit() or (c == "." and i + 1 < n and text[i + 1].isdigit()):
            m = re.compile(r"(0[xX][0-9A-Fa-f]+|(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?)").match(text, i)
            tokens.append(("number", m.group(0)))
            i = m.end()
            continue
        tokens.append(("punct", c))
        i += 1
    return tokens


def _next(tokens, i):
    """Index of the next token that is not whitespace or a comment."""
    i += 1
    while i < len(tokens) and tokens[i][0] in ("ws", "comment"):
        i += 1
    return i


def _at(tokens, i):
    return tokens[i] if i < len(tokens) else ("eof", "")


def _rewrite_directive(text):
    body = text.lstrip("#").lstrip()
    if body.startswith("property"):
        return "// " + text
    if body.startswith(("include", "ifndef", "ifdef", "endif", "else", "undef")):
        return text
    if body.startswith("define"):
        # The replacement text is code: wrap its literals too.
        return "#" + "".join(t for _, t in _rewrite_tokens(tokenize(text[1:]), "#define"))
    raise PreprocessError(f"unsupported directive: {text}")


def _rewrite_tokens(tokens, name):
    out = []
    i = 0
    while i < len(tokens):
        kind, text = tokens[i]
        if kind == "directive":
            out.append(("directive", _rewrite_directive(text)))
            i += 1
            continue
        # input / sinput declarations
        if kind == "ident" and text in ("input", "sinput"):
            t = _next(tokens, i)
            v = _next(tokens, t)
            eq = _next(tokens, v)
            if _at(tokens, t)[0] != "ident" or _at(tokens, v)[0] != "ident" or _at(tokens, eq)[1] != "=":
                raise PreprocessError(f"{name}: an input needs a type, a name and a default value")
            semi = eq
            while semi < len(tokens) and tokens[semi][1] != ";":
                semi += 1
            if semi >= len(tokens):
                raise PreprocessError(f"{name}: unterminated input declaration")
            type_name, var = tokens[t][1], tokens[v][1]
            out.append(("ident", "const"))
            out.extend(tokens[i + 1 : eq + 1])
            out.append(("punct", f' ShimInput<{type_name}>("{var}",'))
            out.extend(_rewrite_tokens(tokens[eq + 1 : semi], name))
            out.append(("punct", ")"))
            i = semi
            continue
        # T [&] name [ ]
        if kind == "ident" and text not in NOT_TYPES:
            j = _next(tokens, i)
            amp = None
            if _at(tokens, j)[1] == "&":
                amp = j
                j = _next(tokens, j)
            if _at(tokens, j)[0] == "ident":
                b1 = _next(tokens, j)
                b2 = _next(tokens, b1)
                if _at(tokens, b1)[1] == "[" and _at(tokens, b2)[1] == "]":
                    if _at(tokens, _next(tokens, b2))[1] == "[":
                        raise PreprocessError(f"{name}: multi-dimensional dynamic arrays are not supported")
                    out.append(("ident", f"MqlArray<{text}>"))
                    out.extend(tokens[i + 1 : j + 1])
                    # drop "[ ]" but keep any line breaks inside it
                    for k in range(j + 1, b2 + 1):
                        if tokens[k][0] in ("ws", "comment"):
                            out.append(tokens[k])
                    i = b2 + 1
                    continue
        # adjacent string literals -> one string(...)
        if kind == "string":
            j = i
            last = i
            while True:
                k = _next(tokens, last)
                if _at(tokens, k)[0] == "string" and all(tokens[x][0] == "ws" for x in range(last + 1, k)):
                    last = k
                else:
                    break
            out.append(("string", "string(" + "".join(t for _, t in tokens[j : last + 1]) + ")"))
            i = last + 1
            continue
        out.append(tokens[i])
        i += 1
    return out


def preprocess(text, name="<input>", origin=None):
    """Returns the C++ text for one MQL5 file. With origin, a #line
    directive maps messages back to the original file."""
    tokens = tokenize(text, name)
    body = "".join(t for _, t in _rewrite_tokens(tokens, name))
    if body.count("\n") != text.count("\n"):
        raise PreprocessError(f"{name}: internal error: line count changed")
    if origin is None:
        return body
    escaped = origin.replace("\\", "\\\\").replace('"', '\\"')
    return f'#line 1 "{escaped}"\n' + body


def main(argv):
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[-4], file=sys.stderr)
        return 2
    source, output = os.path.abspath(argv[1]), os.path.abspath(argv[2])
    count = 0
    for root, dirs, files in os.walk(source):
        dirs[:] = sorted(d for d in dirs if not (root == source and d == "verify"))
        for f in sorted(files):
            if not f.endswith((".mqh", ".mq5")):
                continue
            path = os.path.join(root, f)
            rel = os.path.relpath(path, source)
            with open(path, encoding="ascii") as fh:
                text = fh.read()
            try:
                result = preprocess(text, rel, origin=path)
            except PreprocessError as e:
                print(f"mql5pp: {e}", file=sys.stderr)
                return 1
            target = os.path.join(output, rel)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "w", encoding="ascii") as fh:
                fh.write(result)
            count += 1
    print(f"mql5pp: {count} files rewritten into {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
