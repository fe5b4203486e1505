"""Tests of the mechanical MQL5 -> C++ rewrite (mql5pp.py)."""

import os
import re
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mql5pp  # noqa: E402

pp = mql5pp.preprocess


def undo(text):
    """The inverse of the rewrite, written independently of it (for the
    sources' style: `name[]` without inner spaces, `input` not `sinput`)."""
    if text.startswith("#line "):
        text = text.split("\n", 1)[1]
    text = re.sub(r"^// (#property)", r"\1", text, flags=re.M)
    return _undo_code(text)


def _undo_code(text):
    toks = mql5pp.tokenize(text)
    out = []
    i = 0
    while i < len(toks):
        kind, t = toks[i]
        if kind == "directive" and t.startswith("#define"):
            out.append("#" + _undo_code(t[1:]))
            i += 1
            continue
        if kind == "ident" and t == "string" and i + 2 < len(toks) and toks[i + 1][1] == "(" and toks[i + 2][0] == "string":
            j = i + 2
            while toks[j][1] != ")":
                j += 1
            out.append("".join(x for _, x in toks[i + 2 : j]))
            i = j + 1
            continue
        if kind == "ident" and t == "MqlArray":
            element = toks[i + 2][1]
            j = i + 4
            while toks[j][0] != "ident":
                j += 1
            out.append(element + "".join(x for _, x in toks[i + 4 : j + 1]) + "[]")
            i = j + 1
            continue
        out.append(t)
        i += 1
    text = "".join(out)
    return re.sub(r'const(\s+)(\w+)(\s+)(\w+)(\s*)= ShimInput<\2>\("\4",(.*?)\);', r"input\1\2\3\4\5=\6;", text)


class DynamicArrays(unittest.TestCase):
    def test_local_declarations(self):
        self.assertEqual(pp("uchar data[];"), "MqlArray<uchar> data;")
        self.assertEqual(pp("   string lines[];\n"), "   MqlArray<string> lines;\n")
        self.assertEqual(pp("EagateSignal signals[];"), "MqlArray<EagateSignal> signals;")

    def test_parameters_by_reference_and_const(self):
        self.assertEqual(
            pp("bool F(const uchar &key[], string &out[], int n)"),
            "bool F(const MqlArray<uchar> &key, MqlArray<string> &out, int n)",
        )
        self.assertEqual(pp("void G(uchar& a [ ])"), "void G(MqlArray<uchar>& a  )")

    def test_members_keep_their_alignment(self):
        self.assertEqual(pp("   int               m_type[];"), "   MqlArray<int>               m_type;")

    def test_indexing_and_sizes_are_untouched(self):
        for code in ["x = a[i];", "a[0] = b[n - 1];", "uchar k[64];", "return list[ 2 ];", "f(a)[1];"]:
            self.assertEqual(pp(code), code)

    def test_return_is_not_a_type(self):
        self.assertEqual(pp("return x[];"), "return x[];")

    def test_multi_dimensional_arrays_are_refused(self):
        with self.assertRaises(mql5pp.PreprocessError):
            pp("double m[][3];")


class StringLiterals(unittest.TestCase):
    def test_literals_become_strings(self):
        self.assertEqual(pp('s = "a" + t;'), 's = string("a") + t;')
        self.assertEqual(pp('Print("x", 1);'), 'Print(string("x"), 1);')

    def test_escapes_are_kept_verbatim(self):
        self.assertEqual(pp(r'q = "\"a\\b\n";'), r'q = string("\"a\\b\n");')

    def test_adjacent_literals_share_one_wrapper(self):
        self.assertEqual(pp('s = "a" "b";'), 's = string("a" "b");')
        self.assertEqual(pp('s = "a"\n    "b";'), 's = string("a"\n    "b");')

    def test_comments_and_character_literals_are_untouched(self):
        self.assertEqual(pp('// "not a literal" x[]\nc = \'"\';'), '// "not a literal" x[]\nc = \'"\';')
        self.assertEqual(pp('/* a "b" */ if(c == \'\\\\\') x = "y";'), '/* a "b" */ if(c == \'\\\\\') x = string("y");')

    def test_a_quote_in_a_character_literal_does_not_open_a_string(self):
        self.assertEqual(pp("if(c == '\"') n++; s = \"t\";"), "if(c == '\"') n++; s = string(\"t\");")

    def test_unterminated_literals_are_refused(self):
        with self.assertRaises(mql5pp.PreprocessError):
            pp('s = "abc;\n')
        with self.assertRaises(mql5pp.PreprocessError):
            pp("/* open")


class Directives(unittest.TestCase):
    def test_property_lines_become_comments(self):
        self.assertEqual(pp('#property version   "1.00"\nint x;'), '// #property version   "1.00"\nint x;')

    def test_includes_are_untouched(self):
        for line in ['#include "Crypto.mqh"', "#include <Eagate/Eagate.mqh>", "#include <Trade/Trade.mqh>"]:
            self.assertEqual(pp(line), line)

    def test_define_replacements_are_code(self):
        self.assertEqual(pp('#define NAME "x"'), '#define NAME string("x")')
        self.assertEqual(pp("#define SIZE 64"), "#define SIZE 64")

    def test_unknown_directives_are_refused(self):
        with self.assertRaises(mql5pp.PreprocessError):
            pp("#import \"user32.dll\"")


class Inputs(unittest.TestCase):
    def test_inputs_become_overridable_constants(self):
        self.assertEqual(
            pp('input string InpUrl = "https://x"; // URL'),
            'const string InpUrl = ShimInput<string>("InpUrl", string("https://x")); // URL',
        )
        self.assertEqual(pp("input int    InpWait = 20;"), 'const int    InpWait = ShimInput<int>("InpWait", 20);')
        self.assertEqual(pp("sinput ulong InpMagic = 5524001;"), 'const ulong InpMagic = ShimInput<ulong>("InpMagic", 5524001);')

    def test_an_input_needs_a_default(self):
        with self.assertRaises(mql5pp.PreprocessError):
            pp("input int InpWait;")


class Files(unittest.TestCase):
    def test_line_numbers_are_kept_and_mapped_to_the_original(self):
        src = '#property strict\nuchar a[];\nstring s = "x"\n  "y";\n'
        out = pp(src, origin="/src/A.mq5")
        self.assertTrue(out.startswith('#line 1 "/src/A.mq5"\n'))
        self.assertEqual(out.count("\n") - 1, src.count("\n"))

    def test_the_sdk_rewrites_and_nothing_else_changes(self):
        """Undo the known rewrites on the real sources: what is left must be
        the original text, so the rewrite cannot have touched anything else."""
        sdk = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
        with tempfile.TemporaryDirectory() as out:
            subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__), "mql5pp.py"), sdk, out],
                           check=True, capture_output=True)
            count = 0
            for root, _, files in os.walk(out):
                for f in files:
                    rel = os.path.relpath(os.path.join(root, f), out)
                    with open(os.path.join(sdk, rel), encoding="ascii") as fh:
                        original = fh.read()
                    with open(os.path.join(root, f), encoding="ascii") as fh:
                        rewritten = fh.read()
                    undone = undo(rewritten)
                    self.assertEqual(undone, original, rel)
                    count += 1
            self.assertGreaterEqual(count, 9)


if __name__ == "__main__":
    unittest.main()
