"""Tests of check_builtins.py: it must refuse C++ that the shim would
compile, and accept the MQL5 the SDK is written in."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check_builtins  # noqa: E402

BUILTINS = {
    "Print": "function",
    "StringLen": "function",
    "CP_UTF8": "constant",
    "CTrade": "class",
    "CTrade.Buy": "member",
}


def problems(code):
    found, _, _ = check_builtins.check_source("t.mq5", code, BUILTINS)
    return found


class Accepts(unittest.TestCase):
    def test_mql5_in_the_sdk_style(self):
        code = """
#ifndef T_MQH
#define T_MQH
#include "Other.mqh"
#include <Eagate/Eagate.mqh>
#include <Trade/Trade.mqh>
#property version "1.00"
#define LIMIT 64
enum ENUM_COLOUR { RED = 0, GREEN = 1 };
struct Point { double x; double y; };
class CThing
  {
private:
   int               m_items[];
   CTrade            m_trade;
public:
                     CThing(void) { m_items[0] = 0; }
   int               Size(void) const { return LIMIT; }
   void              Move(const Point &p, const ENUM_COLOUR c);
  };
void CThing::Move(const Point &p, const ENUM_COLOUR c)
  {
   string text = "a";
   int n = StringLen(text);
   uchar bytes[];
   if(c == RED && n > 0)
      Print("red ", text);
   m_trade.Buy(0.1, "EURUSD", 0.0, p.x, p.y, "c");
   ushort q = '"';
  }
#endif
"""
        self.assertEqual(problems(code), [])


class Refuses(unittest.TestCase):
    def assertRefused(self, code, fragment):
        found = problems(code)
        self.assertTrue(any(fragment in p for p in found), f"{fragment!r} not in {found}")

    def test_standard_library_and_libc(self):
        self.assertRefused("void F(void) { std::string s; }", "std")
        self.assertRefused("int F(void) { return strlen(\"a\"); }", "strlen")
        self.assertRefused("void F(void) { printf(\"x\"); }", "printf")
        self.assertRefused("void F(void) { memcpy(a, b, 1); }", "memcpy")

    def test_cpp_only_keywords(self):
        for word in ["auto", "nullptr", "constexpr", "static_cast", "decltype", "template", "typename", "using",
                     "namespace", "noexcept", "throw"]:
            self.assertRefused(f"void F(void) {{ {word} x; }}", word)

    def test_cpp_only_syntax(self):
        self.assertRefused("void F(void) { int x{5}; }", "brace initialisation")
        self.assertRefused("void F(CThing *p) { p->Go(); }", "->")
        self.assertRefused("void F(void) { G([&](int a) { return a; }); }", "lambda")
        self.assertRefused('void F(void) { string s = L"x"; }', "prefix")
        self.assertRefused("void F(int y) { int &r = y; }", "reference variable")
        self.assertRefused("void F(void) { ::Print(1); }", "'::'")
        self.assertRefused("void F(void) { char c = '\\xE9'; }", "character literal")

    def test_structures_by_value(self):
        base = "struct Point { double x; };\n"
        self.assertRefused(base + "void F(Point p) { }", "by value")
        self.assertRefused(base + "void F(const Point p) { }", "by value")
        self.assertRefused(base + "Point Make(void) { }", "returns Point by value")

    def test_members_of_unknown_classes(self):
        self.assertRefused("void F(void) { CTrade t; t.PositionClose(1); }", "PositionClose")

    def test_directives_and_includes(self):
        self.assertRefused("#include <vector>\n", "#include <vector>")
        self.assertRefused("#include <Trade/PositionInfo.mqh>\n", "PositionInfo")
        self.assertRefused("#pragma once\n", "#pragma")
        self.assertRefused('#import "user32.dll"\n', "#import")
        self.assertRefused("#property tester_file \"x\"\n", "tester_file")
        self.assertRefused("#define X strlen(y)\n", "strlen")

    def test_non_ascii(self):
        self.assertRefused('string s = "caf\u00e9";', "non-ASCII")

    def test_names_not_on_the_list(self):
        self.assertRefused("void F(void) { ExpertRemove(); }", "ExpertRemove")


class TheList(unittest.TestCase):
    def test_every_entry_must_be_used_and_provided(self):
        files = []
        found = check_builtins.check_files(files, BUILTINS, shim_text="Print StringLen CP_UTF8 CTrade")
        self.assertTrue(any("Print is listed but no source uses it" in p for p in found), found)
        self.assertTrue(any("CTrade.Buy is listed but the shim does not provide it" in p for p in found), found)

    def test_the_real_list_is_well_formed_and_documented(self):
        entries = check_builtins.load_builtins()
        self.assertGreater(len(entries), 50)
        self.assertIn("CryptEncode", entries)
        self.assertIn("WebRequest", entries)

    def test_the_sdk_passes(self):
        self.assertEqual(check_builtins.main(["check_builtins.py"]), 0)


if __name__ == "__main__":
    unittest.main()
