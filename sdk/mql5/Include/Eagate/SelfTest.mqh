//+------------------------------------------------------------------+
//| Eagate/SelfTest.mqh                                              |
//| The SDK's own tests: SHA-256 and HMAC (RFC 4231), hex, base64url,|
//| UTF-8, the JSON reader and writer, the published protocol        |
//| vectors, nonces, dates and argument checks. Offline: nothing is  |
//| sent. Run by Scripts/EagateSelfTest.mq5 inside MetaTrader, and   |
//| by the C++ verification on Linux.                                |
//+------------------------------------------------------------------+
#ifndef EAGATE_SELFTEST_MQH
#define EAGATE_SELFTEST_MQH

#include "Eagate.mqh"
#include "SelfTestVectors.mqh"

int g_eagate_checks = 0;
int g_eagate_failures = 0;

//+------------------------------------------------------------------+
void EagateExpect(const bool ok, const string name)
  {
   g_eagate_checks++;
   if(ok)
      return;
   g_eagate_failures++;
   Print("FAIL ", name);
  }

//+------------------------------------------------------------------+
void EagateExpectEqual(const string got, const string want, const string name)
  {
   g_eagate_checks++;
   if(got == want)
      return;
   g_eagate_failures++;
   Print("FAIL ", name, ": got [", got, "] want [", want, "]");
  }

//+------------------------------------------------------------------+
void EagateExpectLong(const long got, const long want, const string name)
  {
   EagateExpectEqual(IntegerToString(got), IntegerToString(want), name);
  }

//+------------------------------------------------------------------+
void EagateAppend(string &list[], const string value)
  {
   int n = ArraySize(list);
   ArrayResize(list, n + 1);
   list[n] = value;
  }

//+------------------------------------------------------------------+
//| A byte array made of count copies of value.                      |
//+------------------------------------------------------------------+
void EagateRepeat(const uchar value, const int count, uchar &out[])
  {
   ArrayResize(out, count);
   for(int i = 0; i < count; i++)
      out[i] = value;
  }

//+------------------------------------------------------------------+
string EagateHmacOfHex(const string key_hex, const string data_hex)
  {
   uchar key[];
   uchar data[];
   uchar mac[];
   EagateHexDecode(key_hex, key);
   EagateHexDecode(data_hex, data);
   if(!EagateHmacSha256(key, data, mac))
      return "failed";
   return EagateHex(mac);
  }

//+------------------------------------------------------------------+
string EagateHmacOfText(const string key_text, const string data_text)
  {
   uchar key[];
   EagateUtf8Bytes(key_text, key);
   return EagateHmacSha256Hex(key, data_text);
  }

//+------------------------------------------------------------------+
string EagateSha256OfText(const string text)
  {
   uchar bytes[];
   EagateUtf8Bytes(text, bytes);
   return EagateSha256Hex(bytes);
  }

//+------------------------------------------------------------------+
string EagateBase64UrlOfText(const string text)
  {
   uchar bytes[];
   EagateUtf8Bytes(text, bytes);
   return EagateBase64Url(bytes);
  }

//+------------------------------------------------------------------+
void EagateTestCrypto(void)
  {
   EagateExpectEqual(EagateSha256OfText("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "sha256 abc");
   EagateExpectEqual(EagateSha256OfText(""), EAGATE_SHA256_EMPTY_HEX, "sha256 of nothing");
   uchar many[];
   EagateRepeat('a', 1000, many);
   EagateExpectEqual(EagateSha256Hex(many), "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3", "sha256 of 1000 bytes");
   // RFC 4231 test cases 1, 2, 3, 4, 6 and 7.
   EagateExpectEqual(EagateHmacOfHex("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "4869205468657265"),
                     "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7", "rfc4231 case 1");
   EagateExpectEqual(EagateHmacOfText("Jefe", "what do ya want for nothing?"),
                     "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", "rfc4231 case 2");
   uchar key[];
   uchar data[];
   uchar mac[];
   EagateRepeat(0xaa, 20, key);
   EagateRepeat(0xdd, 50, data);
   EagateHmacSha256(key, data, mac);
   EagateExpectEqual(EagateHex(mac), "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe", "rfc4231 case 3");
   EagateHexDecode("0102030405060708090a0b0c0d0e0f10111213141516171819", key);
   EagateRepeat(0xcd, 50, data);
   EagateHmacSha256(key, data, mac);
   EagateExpectEqual(EagateHex(mac), "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b", "rfc4231 case 4");
   EagateRepeat(0xaa, 131, key);
   EagateExpectEqual(EagateHmacSha256Hex(key, "Test Using Larger Than Block-Size Key - Hash Key First"),
                     "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54", "rfc4231 case 6");
   EagateExpectEqual(EagateHmacSha256Hex(key, "This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm."),
                     "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2", "rfc4231 case 7");
   EagateRepeat('k', 64, key);
   EagateExpectEqual(EagateHmacSha256Hex(key, "block-size key"),
                     "3639ed45f96410ae1abf821aaf15a4e616209464f7e06fb79435d35e485bd3c2", "hmac with a 64-byte key");
   EagateRepeat('k', 65, key);
   EagateExpectEqual(EagateHmacSha256Hex(key, "block-size key"),
                     "492c0e30e79bd478c547ea77404336b1093be9a3fe2de81aca2185a7a92a69fa", "hmac with a 65-byte key");
   ArrayResize(key, 0);
   EagateExpectEqual(EagateHmacSha256Hex(key, "empty key"),
                     "bf6e6a0f34cd9fdf69c67b8c62969c87cd4f783d4665217df03f062dc4a0406e", "hmac with an empty key");
   // UTF-8: no terminating zero, non-BMP characters as four bytes.
   uchar bytes[];
   EagateExpectLong(EagateUtf8Bytes("abc", bytes), 3, "utf8 length has no terminator");
   EagateExpectLong(ArraySize(bytes), 3, "utf8 array has no terminator");
   string text = ShortToString(0xe9) + ShortToString(0x20ac) + ShortToString(0xD83D) + ShortToString(0xDE00);
   EagateUtf8Bytes(text, bytes);
   EagateExpectEqual(EagateHex(bytes), "c3a9e282acf09f9880", "utf8 of e-acute, euro, emoji");
   EagateExpectEqual(EagateSha256Hex(bytes), "df9226927fd572c1ee66eec85de1bb139497614899f36e4e90474cb71f6ef9d0", "sha256 of utf8");
   EagateExpect(EagateUtf8String(bytes) == text, "utf8 decodes back");
   EagateExpectLong(EagateUtf8Bytes("", bytes), 0, "utf8 of nothing");
   // hex
   EagateExpect(EagateHexDecode("00ff10Ab", bytes) && EagateHex(bytes) == "00ff10ab", "hex round trip");
   EagateExpect(!EagateHexDecode("abc", bytes), "odd hex refused");
   EagateExpect(!EagateHexDecode("zz", bytes), "non-hex refused");
   // base64url (RFC 4648 test vectors, no padding)
   EagateExpectEqual(EagateBase64UrlOfText(""), "", "base64url empty");
   EagateExpectEqual(EagateBase64UrlOfText("f"), "Zg", "base64url f");
   EagateExpectEqual(EagateBase64UrlOfText("fo"), "Zm8", "base64url fo");
   EagateExpectEqual(EagateBase64UrlOfText("foo"), "Zm9v", "base64url foo");
   EagateExpectEqual(EagateBase64UrlOfText("foobar"), "Zm9vYmFy", "base64url foobar");
   EagateHexDecode("fbff", bytes);
   EagateExpectEqual(EagateBase64Url(bytes), "-_8", "base64url alphabet");
  }

//+------------------------------------------------------------------+
void EagateTestJsonReader(void)
  {
   CEagateJson doc;
   EagateExpect(doc.Parse("{\"a\":1,\"b\":[true,false,null,\"x\"],\"c\":{\"d\":{\"e\":-2.5}}}"), "parse nested");
   int root = doc.Root();
   EagateExpectLong(doc.Type(root), EAGATE_JSON_OBJECT, "root is an object");
   EagateExpectLong(doc.Size(root), 3, "three members");
   EagateExpectLong(doc.GetLong(root, "a", 0), 1, "integer member");
   int b = doc.Get(root, "b");
   EagateExpectLong(doc.Size(b), 4, "array size");
   EagateExpect(doc.Type(doc.At(b, 0)) == EAGATE_JSON_BOOL && doc.Type(doc.At(b, 2)) == EAGATE_JSON_NULL, "array element types");
   bool flag = true;
   EagateExpect(doc.AsBool(doc.At(b, 1), flag) && !flag, "false");
   EagateExpect(doc.IsNull(doc.At(b, 2)), "null");
   EagateExpectLong(doc.At(b, 4), -1, "past the end");
   EagateExpectEqual(doc.GetString(doc.Get(doc.Get(root, "c"), "d"), "e", "none"), "none", "number is not a string");
   EagateExpect(doc.GetDouble(doc.Get(doc.Get(root, "c"), "d"), "e", 0) == -2.5, "nested number");
   EagateExpectLong(doc.Get(root, "missing"), -1, "missing member");
   EagateExpectLong(doc.Get(b, "a"), -1, "Get on an array");
   EagateExpectEqual(doc.Key(doc.At(root, 1)), "b", "member name");
   // duplicates: the first wins
   EagateExpect(doc.Parse("{\"k\":1,\"k\":2}") && doc.GetLong(doc.Root(), "k", 0) == 1, "duplicate member: first");
   // escapes
   EagateExpect(doc.Parse("\"q\\\"b\\\\s\\/n\\nr\\rt\\tb\\bf\\f\""), "parse escapes");
   string s = "";
   doc.AsString(doc.Root(), s);
   EagateExpect(s == "q\"b\\s/n\nr\rt\tb" + ShortToString(8) + "f" + ShortToString(12), "escapes decoded");
   // unicode
   EagateExpect(doc.Parse("\"caf\\u00e9 \\u20ac \\ud83d\\ude00\""), "parse \\u escapes");
   doc.AsString(doc.Root(), s);
   EagateExpect(s == "caf" + ShortToString(0xe9) + " " + ShortToString(0x20ac) + " " + ShortToString(0xD83D) + ShortToString(0xDE00), "\\u escapes decoded to UTF-16");
   uchar bytes[];
   EagateUtf8Bytes(s, bytes);
   EagateExpectEqual(EagateHex(bytes), "636166c3a920e282ac20f09f9880", "\\u escapes to UTF-8");
   string raw = "\"" + ShortToString(0x6771) + ShortToString(0x4eac) + "\"";
   EagateExpect(doc.Parse(raw) && doc.AsString(doc.Root(), s) && s == ShortToString(0x6771) + ShortToString(0x4eac), "raw non-ASCII kept");
   EagateExpect(!doc.Parse("\"\\ud83d\""), "lone high surrogate refused");
   EagateExpect(!doc.Parse("\"\\ude00\""), "lone low surrogate refused");
   EagateExpect(!doc.Parse("\"\\ud83d\\u0041\""), "high surrogate with a non-low refused");
   EagateExpect(!doc.Parse("\"\\u0000\""), "NUL refused");
   EagateExpect(!doc.Parse("\"\\x41\""), "unknown escape refused");
   EagateExpect(!doc.Parse("\"\\u12\""), "short \\u refused");
   EagateExpect(!doc.Parse("\"a" + ShortToString(10) + "b\""), "raw control character refused");
   EagateExpect(!doc.Parse("\"abc"), "unterminated string refused");
   // numbers
   double d = 0;
   long l = 0;
   EagateExpect(doc.Parse("[0,-0,1.5,-2.25e3,1E-7,1.0851,123456789012,9007199254740993,9223372036854775807,-9223372036854775808,9223372036854775808,1e300,0.1]"), "parse numbers");
   int n = doc.Root();
   EagateExpect(doc.AsDouble(doc.At(n, 0), d) && d == 0.0, "0");
   EagateExpect(doc.AsDouble(doc.At(n, 1), d) && d == 0.0, "-0");
   EagateExpect(doc.AsDouble(doc.At(n, 2), d) && d == 1.5, "1.5");
   EagateExpect(doc.AsDouble(doc.At(n, 3), d) && d == -2250.0, "-2.25e3");
   EagateExpect(doc.AsDouble(doc.At(n, 4), d) && d == 0.0000001, "1E-7");
   EagateExpect(doc.AsDouble(doc.At(n, 5), d) && d == 1.0851, "1.0851 exactly");
   EagateExpect(doc.AsDouble(doc.At(n, 12), d) && d == 0.1, "0.1 exactly");
   EagateExpect(doc.AsLong(doc.At(n, 6), l) && l == 123456789012, "long");
   EagateExpect(doc.AsLong(doc.At(n, 7), l) && IntegerToString(l) == "9007199254740993", "2^53+1 exact as long");
   EagateExpect(doc.AsLong(doc.At(n, 8), l) && l == LONG_MAX, "LONG_MAX");
   EagateExpect(doc.AsLong(doc.At(n, 9), l) && l == LONG_MIN, "LONG_MIN");
   EagateExpect(!doc.AsLong(doc.At(n, 10), l), "LONG_MAX+1 is not a long");
   EagateExpect(!doc.AsLong(doc.At(n, 2), l), "1.5 is not a long");
   EagateExpect(doc.AsDouble(doc.At(n, 11), d) && d == 1e300, "1e300");
   string bad[];
   ArrayResize(bad, 0);
   EagateAppend(bad, "01");
   EagateAppend(bad, "1.");
   EagateAppend(bad, ".5");
   EagateAppend(bad, "-");
   EagateAppend(bad, "+1");
   EagateAppend(bad, "1e");
   EagateAppend(bad, "1e+");
   EagateAppend(bad, "NaN");
   EagateAppend(bad, "Infinity");
   EagateAppend(bad, "-Infinity");
   EagateAppend(bad, "0x10");
   EagateAppend(bad, "1.5.2");
   EagateAppend(bad, "--1");
   EagateAppend(bad, "");
   EagateAppend(bad, "  ");
   EagateAppend(bad, "[1,]");
   EagateAppend(bad, "{\"a\":1,}");
   EagateAppend(bad, "{\"a\" 1}");
   EagateAppend(bad, "{a:1}");
   EagateAppend(bad, "[1 2]");
   EagateAppend(bad, "{} x");
   EagateAppend(bad, "tru");
   EagateAppend(bad, "nul");
   EagateAppend(bad, "[");
   EagateAppend(bad, "{");
   EagateAppend(bad, "]");
   EagateAppend(bad, "{\"a\":}");
   EagateAppend(bad, "[,1]");
   EagateAppend(bad, "'a'");
   for(int i = 0; i < ArraySize(bad); i++)
      EagateExpect(!doc.Parse(bad[i]), "invalid JSON refused: [" + bad[i] + "]");
   EagateExpect(doc.Error() != "", "an error is reported");
   EagateExpectLong(doc.Root(), -1, "no root after an error");
   EagateExpect(doc.Parse(" \t\r\n{ } \n"), "whitespace around a value");
   EagateExpect(doc.Parse("[]") && doc.Size(doc.Root()) == 0, "empty array");
   string deep = "";
   for(int i = 0; i < EAGATE_JSON_MAX_DEPTH; i++)
      deep += "[";
   for(int i = 0; i < EAGATE_JSON_MAX_DEPTH; i++)
      deep += "]";
   EagateExpect(doc.Parse(deep), "nesting up to the limit");
   EagateExpect(!doc.Parse("[" + deep + "]"), "nesting past the limit refused");
   // A poll answer with fields this SDK does not know.
   string future = "{\"config_version\":7,\"signals\":[{\"id\":\"0192f5e4-7c1a-7b3e-9a51-3c2d4e5f6a7b\",\"instrument\":\"EURUSD\",\"side\":\"buy\",\"order_type\":\"market\",\"volume\":0.1,\"entry_price\":null,\"stop_loss\":1.08,\"take_profit\":1.1,\"comment\":\"x\",\"expires_at\":null,\"created_at\":\"2025-12-02T20:44:56.123456Z\",\"risk\":{\"tags\":[\"a\",{\"b\":[1,2,{}]}],\"score\":-1e-3},\"new_flag\":true}],\"server_time\":1764708296,\"extra\":[null]}";
   EagateExpect(doc.Parse(future), "unknown fields parse");
   int signals = doc.Get(doc.Root(), "signals");
   EagateExpectLong(doc.Size(signals), 1, "one signal among unknown fields");
   EagateExpectEqual(doc.GetString(doc.At(signals, 0), "instrument", ""), "EURUSD", "known field next to unknown ones");
   EagateExpect(doc.GetDouble(doc.At(signals, 0), "entry_price", -1) == -1, "null number gives the fallback");
   EagateExpectLong(doc.GetLong(doc.Root(), "server_time", 0), 1764708296, "field after unknown ones");
  }

//+------------------------------------------------------------------+
void EagateTestJsonWriter(void)
  {
   CEagateJson doc;
   string tricky = "a\"b\\c/d" + ShortToString(10) + ShortToString(13) + ShortToString(9) + ShortToString(1) + ShortToString(0x1f) + ShortToString(0xe9) + ShortToString(0xD83D) + ShortToString(0xDE00);
   string quoted = EagateJsonQuote(tricky);
   EagateExpectEqual(quoted, "\"a\\\"b\\\\c/d\\n\\r\\t\\u0001\\u001f" + ShortToString(0xe9) + ShortToString(0xD83D) + ShortToString(0xDE00) + "\"", "quote escapes");
   string back = "";
   EagateExpect(doc.Parse(quoted) && doc.AsString(doc.Root(), back) && back == tricky, "quote round trip");
   EagateExpectEqual(EagateJsonQuote("x" + ShortToString(0xD83D) + "y"), "\"x\\ufffdy\"", "lone high surrogate replaced");
   EagateExpectEqual(EagateJsonQuote(ShortToString(0xDE00)), "\"\\ufffd\"", "lone low surrogate replaced");
   EagateExpectEqual(EagateJsonQuote(""), "\"\"", "empty string");
   EagateExpectEqual(EagateJsonNumber(1.08512), "1.08512", "price");
   EagateExpectEqual(EagateJsonNumber(10250.75), "10250.75", "balance");
   EagateExpectEqual(EagateJsonNumber(0.1), "0.1", "0.1");
   EagateExpectEqual(EagateJsonNumber(100.0), "100", "integral");
   EagateExpectEqual(EagateJsonNumber(-3.5), "-3.5", "negative");
   EagateExpectEqual(EagateJsonNumber(-0.0), "0", "negative zero");
   EagateExpectEqual(EagateJsonNumber(1e15), "1000000000000000", "1e15");
   string third = EagateJsonNumber(0.1 + 0.2);
   double parsed = 0;
   EagateExpect(doc.Parse(third) && doc.AsDouble(doc.Root(), parsed) && MathAbs(parsed - 0.3) < 1e-15, "0.1+0.2 stays a close JSON number");
  }

//+------------------------------------------------------------------+
void EagateTestVectors(void)
  {
   CEagateJson doc;
   EagateExpect(doc.Parse(EagateProtocolVectorsJson()), "vectors parse");
   int root = doc.Root();
   uchar key[];
   EagateUtf8Bytes(doc.GetString(root, "secret", ""), key);
   int vectors = doc.Get(root, "vectors");
   EagateExpectLong(doc.Size(vectors), EAGATE_PROTOCOL_VECTOR_COUNT, "every published vector is embedded");
   for(int i = 0; i < doc.Size(vectors); i++)
     {
      int v = doc.At(vectors, i);
      string name = "vector '" + doc.GetString(v, "name", "?") + "'";
      uchar body[];
      EagateUtf8Bytes(doc.GetString(v, "body", ""), body);
      EagateExpectEqual(EagateBodySha256Hex(body), doc.GetString(v, "body_sha256", "-"), name + " body_sha256");
      string path = "";
      string query = "";
      EagateSplitTarget(doc.GetString(v, "request_target", ""), path, query);
      EagateExpectEqual(path, doc.GetString(v, "path", "-"), name + " path");
      EagateExpectEqual(query, doc.GetString(v, "query", "-"), name + " query");
      string sts = EagateStringToSign(doc.GetString(v, "method", ""), path, query, doc.GetString(v, "device_id", ""),
                                      doc.GetString(v, "timestamp", ""), doc.GetString(v, "nonce", ""),
                                      EagateBodySha256Hex(body));
      EagateExpectEqual(sts, doc.GetString(v, "string_to_sign", "-"), name + " string_to_sign");
      string signature = EagateSignature(key, doc.GetString(v, "method", ""), doc.GetString(v, "request_target", ""),
                                         doc.GetString(v, "device_id", ""), doc.GetString(v, "timestamp", ""),
                                         doc.GetString(v, "nonce", ""), body);
      EagateExpectEqual(signature, doc.GetString(v, "signature", "-"), name + " signature");
      string lower = doc.GetString(v, "method", "");
      StringToLower(lower);
      EagateExpectEqual(EagateSignature(key, lower, doc.GetString(v, "request_target", ""), doc.GetString(v, "device_id", ""),
                                        doc.GetString(v, "timestamp", ""), doc.GetString(v, "nonce", ""), body),
                        doc.GetString(v, "signature", "-"), name + " signature with a lower-case method");
     }
  }

//+------------------------------------------------------------------+
void EagateTestProtocol(void)
  {
   EagateExpectEqual(EagateStringToSign("post", "/p", "", "d", "1", "n", "h"), "EAGATE-HMAC-SHA256\nPOST\n/p\n\nd\n1\nn\nh", "string to sign has 8 lines");
   string path = "";
   string query = "";
   EagateSplitTarget("/a?b=1?c", path, query);
   EagateExpect(path == "/a" && query == "b=1?c", "split at the first ?");
   // nonces
   uchar key[];
   EagateUtf8Bytes("eags_TESTONLY-0123456789abcdefghijklmnopqrstuvwxyzAB", key);
   CEagateNonceSource nonces;
   nonces.Init(key);
   string seen[];
   ArrayResize(seen, 500);
   bool valid = true;
   bool distinct = true;
   for(int i = 0; i < 500; i++)
     {
      seen[i] = nonces.Next();
      if(!EagateIsValidNonce(seen[i]) || StringLen(seen[i]) != 32)
         valid = false;
      for(int j = 0; j < i; j++)
         if(seen[j] == seen[i])
            distinct = false;
     }
   EagateExpect(valid, "nonces are 32 valid characters");
   EagateExpect(distinct, "500 nonces are distinct");
   CEagateNonceSource other;
   other.Init(key);
   EagateExpect(other.Next() != seen[0], "a second source starts elsewhere");
   EagateExpect(EagateIsValidNonce("n-8f3a2c1d9e7b6a5f") && EagateIsValidNonce("n-percent.encoded~1"), "documented nonces are valid");
   EagateExpect(!EagateIsValidNonce("short") && !EagateIsValidNonce("has space in it!!") && !EagateIsValidNonce("semi;colon-000000"), "invalid nonces refused");
   EagateExpect(EagateIsValidUuid("3f6c1a2e-8d4b-4c7e-9f10-2b3c4d5e6f70"), "uuid");
   EagateExpect(!EagateIsValidUuid("3F6C1A2E-8D4B-4C7E-9F10-2B3C4D5E6F70") && !EagateIsValidUuid("3f6c1a2e8d4b4c7e9f102b3c4d5e6f70") && !EagateIsValidUuid(""), "not a lowercase hyphenated uuid");
   // dates
   EagateExpectLong(EagateParseHttpDate("Sun, 06 Nov 1994 08:49:37 GMT"), 784111777, "http date (RFC 9110 example)");
   EagateExpectLong(EagateParseHttpDate(" Thu, 29 Feb 2024 00:00:00 GMT "), 1709164800, "http date on a leap day");
   EagateExpectLong(EagateParseHttpDate("Fri, 30 Feb 2024 00:00:00 GMT"), -1, "impossible date");
   EagateExpectLong(EagateParseHttpDate("Sun, 06 Foo 1994 08:49:37 GMT"), -1, "unknown month");
   EagateExpectLong(EagateParseHttpDate("Sunday, 06-Nov-94 08:49:37 GMT"), -1, "obsolete format");
   EagateExpectLong(EagateParseHttpDate(""), -1, "no date");
   EagateExpectLong(EagateParseRfc3339("2025-12-02T20:44:56.123456789Z"), 1764708296, "rfc3339 with nanoseconds");
   EagateExpectLong(EagateParseRfc3339("2025-12-02T20:44:56Z"), 1764708296, "rfc3339 without fraction");
   EagateExpectLong(EagateParseRfc3339("2025-12-02T20:44:56+02:00"), 1764701096, "rfc3339 with an offset");
   EagateExpectLong(EagateParseRfc3339("1970-01-01T00:00:00Z"), 0, "epoch");
   EagateExpectLong(EagateParseRfc3339("2025-13-02T20:44:56Z"), -1, "month 13");
   EagateExpectLong(EagateParseRfc3339("2025-12-02T20:44:56"), -1, "no zone");
   EagateExpectLong(EagateParseRfc3339("2025-12-02T20:44:56.Z"), -1, "empty fraction");
   // order tags
   string tag = EagateOrderTag("0192f5e4-7c1a-7b3e-9a51-3c2d4e5f6a7b");
   EagateExpectEqual(tag, "eagate:AZL15Hwaez6aUTwtTl9qew", "order tag");
   EagateExpect(StringLen(tag) <= 31, "order tag fits a comment");
   EagateExpectEqual(EagateOrderTag("0192F5E4-7C1A-7B3E-9A51-3C2D4E5F6A7B"), tag, "order tag ignores case");
   EagateExpectEqual(EagateOrderTag("not-a-uuid"), "", "no tag for a non-uuid");
   EagateExpectEqual(EagateCleanText("a" + ShortToString(10) + "b", 10), "a b", "control characters cleaned");
   EagateExpectEqual(EagateCleanText("a" + ShortToString(0x85) + "b" + ShortToString(0x9F) + ShortToString(0x7F), 10), "a b  ",
                     "C1 controls (U+0080-U+009F) and DEL cleaned");
   EagateExpectEqual(EagateCleanText(ShortToString(0x7E) + ShortToString(0xA0) + ShortToString(0x80), 10),
                     "~" + ShortToString(0xA0) + " ", "U+00A0 kept, U+0080 cleaned");
   EagateExpectEqual(EagateCleanText("abcdef", 3), "abc", "text cut");
   EagateExpectEqual(EagateCleanText("a" + ShortToString(0xD83D) + ShortToString(0xDE00) + "b", 2), "a" + ShortToString(0xD83D) + ShortToString(0xDE00), "a surrogate pair is one character");
  }

//+------------------------------------------------------------------+
//| Argument checks that fail before anything is sent.               |
//+------------------------------------------------------------------+
void EagateTestClientArguments(void)
  {
   CEagateClient client;
   EagateSignal signals[];
   EagateExpect(!client.Poll(0, signals) && client.LastCode() == EAGATE_ERR_NOT_INITIALISED, "poll before Init");
   string id = "3f6c1a2e-8d4b-4c7e-9f10-2b3c4d5e6f70";
   string secret = "eags_TESTONLY-0123456789abcdefghijklmnopqrstuvwxyzAB";
   EagateExpect(!client.Init("eagate.example.com", id, secret) && client.LastCode() == EAGATE_ERR_INVALID_URL, "URL without a scheme");
   EagateExpect(!client.Init("https://eagate.example.com/api", id, secret) && client.LastCode() == EAGATE_ERR_INVALID_URL, "URL with a path");
   EagateExpect(!client.Init("https://", id, secret) && client.LastCode() == EAGATE_ERR_INVALID_URL, "URL without a host");
   EagateExpect(!client.Init("https://eagate.example.com", "device-1", secret) && client.LastCode() == EAGATE_ERR_INVALID_ARGUMENT, "device id not a uuid");
   EagateExpect(!client.Init("https://eagate.example.com", id, "eags_abc def") && client.LastCode() == EAGATE_ERR_INVALID_ARGUMENT, "secret with a space");
   EagateExpect(!client.Init("https://eagate.example.com", id, "secret") && client.LastCode() == EAGATE_ERR_INVALID_ARGUMENT, "secret without its prefix");
   EagateExpect(StringFind(client.LastError(), "eags_abc") < 0, "the secret is not echoed");
   EagateExpect(client.Init(" https://eagate.example.com/ ", "3F6C1A2E-8D4B-4C7E-9F10-2B3C4D5E6F70", secret + " "), "valid settings (trimmed, case-folded)");
   EagateExpectEqual(client.DeviceId(), id, "device id lower-cased");
   EagateExpect(!client.Poll(-1, signals) && client.LastCode() == EAGATE_ERR_INVALID_ARGUMENT, "negative wait");
   EagateExpect(!client.Poll(10, signals, 0) && client.LastCode() == EAGATE_ERR_INVALID_ARGUMENT, "limit 0");
   EagateExpect(!client.Poll(10, signals, 101) && client.LastCode() == EAGATE_ERR_INVALID_ARGUMENT, "limit 101");
   EagateExpect(!client.Ack("", EAGATE_EXECUTED, 1, 1.0, "") && client.LastCode() == EAGATE_ERR_INVALID_ARGUMENT, "ack without a signal id");
   EagateHeartbeat heartbeat;
   heartbeat.ea_version = "123456789012345678901234567890123";
   EagateExpect(!client.Heartbeat(heartbeat) && client.LastCode() == EAGATE_ERR_INVALID_ARGUMENT, "ea_version over 32 characters");
   EagateExpect(!client.LastErrorIsFatal(), "an argument error is not fatal");
   EagateExpectEqual(EagateOutcomeName(EAGATE_EXECUTED) + EagateOutcomeName(EAGATE_REJECTED) + EagateOutcomeName(EAGATE_FAILED), "executedrejectedfailed", "outcome names");
  }

//+------------------------------------------------------------------+
//| Runs everything; returns the number of failed checks.            |
//+------------------------------------------------------------------+
int EagateRunSelfTests(void)
  {
   g_eagate_checks = 0;
   g_eagate_failures = 0;
   EagateTestCrypto();
   EagateTestJsonReader();
   EagateTestJsonWriter();
   EagateTestVectors();
   EagateTestProtocol();
   EagateTestClientArguments();
   Print("eagate self-test: ", IntegerToString(g_eagate_checks), " checks, ", IntegerToString(g_eagate_failures), " failed");
   return g_eagate_failures;
  }

#endif
