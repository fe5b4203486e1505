//+------------------------------------------------------------------+
//| Eagate/Json.mqh                                                  |
//| A small, strict JSON reader (RFC 8259) and the escaping the SDK  |
//| needs to write request bodies.                                   |
//|                                                                  |
//| The document is kept as a flat table of nodes addressed by index |
//| (no pointers, no objects created at run time). Members the SDK   |
//| does not know are parsed and ignored, so new server fields never |
//| break an EA.                                                     |
//|                                                                  |
//|   CEagateJson doc;                                               |
//|   if(!doc.Parse(text)) Print(doc.Error());                       |
//|   int signals = doc.Get(doc.Root(), "signals");                  |
//|   for(int i = 0; i < doc.Size(signals); i++)                     |
//|      Print(doc.GetString(doc.At(signals, i), "id", ""));         |
//+------------------------------------------------------------------+
#ifndef EAGATE_JSON_MQH
#define EAGATE_JSON_MQH

#include "Crypto.mqh"

#define EAGATE_JSON_MAX_DEPTH 64

enum ENUM_EAGATE_JSON_TYPE
  {
   EAGATE_JSON_NONE = 0,
   EAGATE_JSON_NULL = 1,
   EAGATE_JSON_BOOL = 2,
   EAGATE_JSON_NUMBER = 3,
   EAGATE_JSON_STRING = 4,
   EAGATE_JSON_ARRAY = 5,
   EAGATE_JSON_OBJECT = 6
  };

//+------------------------------------------------------------------+
//| A number's JSON text as a double. Integers up to 2^53 scaled by  |
//| at most 10^22 are converted exactly (one correctly rounded       |
//| multiplication or division); anything else goes through          |
//| StringToDouble.                                                  |
//+------------------------------------------------------------------+
double EagateJsonToDouble(const string text)
  {
   int n = StringLen(text);
   int i = 0;
   bool negative = false;
   if(i < n && StringGetCharacter(text, i) == '-')
     {
      negative = true;
      i++;
     }
   double mantissa = 0.0;
   int digits = 0;
   int scale = 0;
   bool exact = true;
   while(i < n)
     {
      ushort c = StringGetCharacter(text, i);
      if(c < '0' || c > '9')
         break;
      if(mantissa > 0.0 || c != '0')
         digits++;
      mantissa = mantissa * 10.0 + (c - '0');
      i++;
     }
   if(i < n && StringGetCharacter(text, i) == '.')
     {
      i++;
      while(i < n)
        {
         ushort c = StringGetCharacter(text, i);
         if(c < '0' || c > '9')
            break;
         if(mantissa > 0.0 || c != '0')
            digits++;
         mantissa = mantissa * 10.0 + (c - '0');
         scale--;
         i++;
        }
     }
   if(i < n)
     {
      ushort e = StringGetCharacter(text, i);
      if(e == 'e' || e == 'E')
        {
         i++;
         bool exp_negative = false;
         if(i < n && (StringGetCharacter(text, i) == '+' || StringGetCharacter(text, i) == '-'))
           {
            exp_negative = (StringGetCharacter(text, i) == '-');
            i++;
           }
         int exponent = 0;
         while(i < n)
           {
            ushort c = StringGetCharacter(text, i);
            if(c < '0' || c > '9')
               break;
            if(exponent < 100000)
               exponent = exponent * 10 + (c - '0');
            i++;
           }
         if(exp_negative)
            scale -= exponent;
         else
            scale += exponent;
        }
     }
   if(digits > 15 || scale > 22 || scale < -22)
      exact = false;
   if(!exact)
      return StringToDouble(text);
   double value = mantissa;
   if(scale > 0)
      value = mantissa * MathPow(10.0, scale);
   if(scale < 0)
      value = mantissa / MathPow(10.0, -scale);
   if(negative)
      value = -value;
   return value;
  }

//+------------------------------------------------------------------+
//| A JSON string literal for text: quotes, backslashes and control  |
//| characters escaped; a lone UTF-16 surrogate becomes U+FFFD, so   |
//| the UTF-8 sent is always valid.                                  |
//+------------------------------------------------------------------+
string EagateJsonQuote(const string text)
  {
   string hex = "0123456789abcdef";
   string out = "\"";
   int n = StringLen(text);
   int run_start = 0;
   for(int i = 0; i < n; i++)
     {
      ushort c = StringGetCharacter(text, i);
      string escape = "";
      bool special = true;
      if(c == '"')
         escape = "\\\"";
      else
         if(c == '\\')
            escape = "\\\\";
         else
            if(c == '\n')
               escape = "\\n";
            else
               if(c == '\r')
                  escape = "\\r";
               else
                  if(c == '\t')
                     escape = "\\t";
                  else
                     if(c < 0x20)
                        escape = "\\u00" + StringSubstr(hex, c >> 4, 1) + StringSubstr(hex, c & 15, 1);
                     else
                        if(c >= 0xD800 && c <= 0xDBFF)
                          {
                           bool paired = false;
                           if(i + 1 < n)
                             {
                              ushort next = StringGetCharacter(text, i + 1);
                              paired = (next >= 0xDC00 && next <= 0xDFFF);
                             }
                           if(paired)
                             {
                              special = false;
                              i++;
                             }
                           else
                              escape = "\\ufffd";
                          }
                        else
                           if(c >= 0xDC00 && c <= 0xDFFF)
                              escape = "\\ufffd";
                           else
                              special = false;
      if(special)
        {
         out += StringSubstr(text, run_start, i - run_start);
         out += escape;
         run_start = i + 1;
        }
     }
   out += StringSubstr(text, run_start, n - run_start);
   out += "\"";
   return out;
  }

//+------------------------------------------------------------------+
//| A finite double as JSON: the shortest of 0..16 decimals that     |
//| reads back as the same value (16 if none does). The caller       |
//| checks MathIsValidNumber first; NaN and infinities are not JSON. |
//+------------------------------------------------------------------+
string EagateJsonNumber(const double value)
  {
   string text = "";
   for(int digits = 0; digits <= 16; digits++)
     {
      text = DoubleToString(value, digits);
      if(StringToDouble(text) == value)
         break;
     }
   if(text == "-0")
      text = "0";
   return text;
  }

//+------------------------------------------------------------------+
//| The JSON document.                                               |
//+------------------------------------------------------------------+
class CEagateJson
  {
private:
   int               m_type[];
   string            m_key[];
   string            m_text[];
   int               m_first[];
   int               m_next[];
   int               m_size[];
   int               m_count;
   string            m_src;
   int               m_len;
   int               m_pos;
   string            m_error;

   int               NewNode(const int type, const string key);
   ushort            Peek(void);
   void              SkipSpace(void);
   bool              Fail(const string what);
   bool              Expect(const string word);
   bool              ParseValue(const string key, const int depth, int &node);
   bool              ParseString(string &out);
   bool              ParseHex4(int &value);
   bool              ParseNumber(string &out);
   bool              ParseContainer(const int node, const bool is_object, const int depth);

public:
                     CEagateJson(void);
   bool              Parse(const string text);
   string            Error(void) const { return m_error; }
   int               Root(void) const;
   int               Type(const int node) const;
   int               Size(const int node) const;
   int               At(const int array, const int index) const;
   int               Get(const int object, const string key) const;
   string            Key(const int node) const;
   bool              IsNull(const int node) const { return Type(node) == EAGATE_JSON_NULL; }
   bool              AsString(const int node, string &out) const;
   bool              AsDouble(const int node, double &out) const;
   bool              AsLong(const int node, long &out) const;
   bool              AsBool(const int node, bool &out) const;
   string            GetString(const int object, const string key, const string fallback) const;
   double            GetDouble(const int object, const string key, const double fallback) const;
   long              GetLong(const int object, const string key, const long fallback) const;
   bool              GetBool(const int object, const string key, const bool fallback) const;
  };

//+------------------------------------------------------------------+
CEagateJson::CEagateJson(void)
  {
   m_count = 0;
   m_len = 0;
   m_pos = 0;
   m_src = "";
   m_error = "";
  }

//+------------------------------------------------------------------+
int CEagateJson::NewNode(const int type, const string key)
  {
   if(m_count >= ArraySize(m_type))
     {
      int capacity = 16 + m_count * 2;
      ArrayResize(m_type, capacity);
      ArrayResize(m_key, capacity);
      ArrayResize(m_text, capacity);
      ArrayResize(m_first, capacity);
      ArrayResize(m_next, capacity);
      ArrayResize(m_size, capacity);
     }
   int node = m_count;
   m_count++;
   m_type[node] = type;
   m_key[node] = key;
   m_text[node] = "";
   m_first[node] = -1;
   m_next[node] = -1;
   m_size[node] = 0;
   return node;
  }

//+------------------------------------------------------------------+
ushort CEagateJson::Peek(void)
  {
   if(m_pos >= m_len)
      return 0;
   return StringGetCharacter(m_src, m_pos);
  }

//+------------------------------------------------------------------+
void CEagateJson::SkipSpace(void)
  {
   while(m_pos < m_len)
     {
      ushort c = StringGetCharacter(m_src, m_pos);
      if(c != ' ' && c != '\t' && c != '\n' && c != '\r')
         return;
      m_pos++;
     }
  }

//+------------------------------------------------------------------+
bool CEagateJson::Fail(const string what)
  {
   if(m_error == "")
      m_error = what + " at character " + IntegerToString(m_pos);
   return false;
  }

//+------------------------------------------------------------------+
bool CEagateJson::Expect(const string word)
  {
   int n = StringLen(word);
   if(m_pos + n > m_len || StringSubstr(m_src, m_pos, n) != word)
      return Fail("invalid literal");
   m_pos += n;
   return true;
  }

//+------------------------------------------------------------------+
//| Parses text, replacing any previous document.                    |
//+------------------------------------------------------------------+
bool CEagateJson::Parse(const string text)
  {
   m_count = 0;
   m_src = text;
   m_len = StringLen(text);
   m_pos = 0;
   m_error = "";
   int root = -1;
   SkipSpace();
   if(!ParseValue("", 0, root))
     {
      m_count = 0;
      return false;
     }
   SkipSpace();
   if(m_pos != m_len)
     {
      Fail("unexpected data after the JSON value");
      m_count = 0;
      return false;
     }
   m_src = "";
   return true;
  }

//+------------------------------------------------------------------+
bool CEagateJson::ParseValue(const string key, const int depth, int &node)
  {
   if(depth >= EAGATE_JSON_MAX_DEPTH)
      return Fail("nesting deeper than " + IntegerToString(EAGATE_JSON_MAX_DEPTH));
   ushort c = Peek();
   if(c == '{' || c == '[')
     {
      node = NewNode(c == '{' ? EAGATE_JSON_OBJECT : EAGATE_JSON_ARRAY, key);
      m_pos++;
      return ParseContainer(node, c == '{', depth + 1);
     }
   if(c == '"')
     {
      string value = "";
      if(!ParseString(value))
         return false;
      node = NewNode(EAGATE_JSON_STRING, key);
      m_text[node] = value;
      return true;
     }
   if(c == 't' || c == 'f')
     {
      string word = (c == 't') ? "true" : "false";
      if(!Expect(word))
         return false;
      node = NewNode(EAGATE_JSON_BOOL, key);
      m_text[node] = word;
      return true;
     }
   if(c == 'n')
     {
      if(!Expect("null"))
         return false;
      node = NewNode(EAGATE_JSON_NULL, key);
      return true;
     }
   if(c == '-' || (c >= '0' && c <= '9'))
     {
      string number = "";
      if(!ParseNumber(number))
         return false;
      node = NewNode(EAGATE_JSON_NUMBER, key);
      m_text[node] = number;
      return true;
     }
   if(m_pos >= m_len)
      return Fail("unexpected end of input");
   return Fail("unexpected character");
  }

//+------------------------------------------------------------------+
bool CEagateJson::ParseContainer(const int node, const bool is_object, const int depth)
  {
   ushort close = is_object ? '}' : ']';
   int last = -1;
   SkipSpace();
   if(Peek() == close)
     {
      m_pos++;
      return true;
     }
   while(true)
     {
      string key = "";
      if(is_object)
        {
         if(Peek() != '"')
            return Fail("expected a member name");
         if(!ParseString(key))
            return false;
         SkipSpace();
         if(Peek() != ':')
            return Fail("expected ':'");
         m_pos++;
         SkipSpace();
        }
      int child = -1;
      if(!ParseValue(key, depth, child))
         return false;
      if(last < 0)
         m_first[node] = child;
      else
         m_next[last] = child;
      last = child;
      m_size[node]++;
      SkipSpace();
      ushort c = Peek();
      if(c == ',')
        {
         m_pos++;
         SkipSpace();
         continue;
        }
      if(c == close)
        {
         m_pos++;
         return true;
        }
      if(m_pos >= m_len)
         return Fail("unexpected end of input");
      return Fail(is_object ? "expected ',' or '}'" : "expected ',' or ']'");
     }
   return false;
  }

//+------------------------------------------------------------------+
bool CEagateJson::ParseHex4(int &value)
  {
   value = 0;
   if(m_pos + 4 > m_len)
      return Fail("truncated \\u escape");
   for(int i = 0; i < 4; i++)
     {
      int d = EagateHexDigit(StringGetCharacter(m_src, m_pos));
      if(d < 0)
         return Fail("invalid \\u escape");
      value = value * 16 + d;
      m_pos++;
     }
   return true;
  }

//+------------------------------------------------------------------+
//| A string literal (the cursor is on its opening quote). Escapes   |
//| are decoded; \u escapes become UTF-16 code units (MQL5 strings   |
//| are UTF-16), surrogate pairs must be complete.                   |
//+------------------------------------------------------------------+
bool CEagateJson::ParseString(string &out)
  {
   out = "";
   m_pos++;
   int run_start = m_pos;
   while(true)
     {
      if(m_pos >= m_len)
         return Fail("unterminated string");
      ushort c = StringGetCharacter(m_src, m_pos);
      if(c == '"')
        {
         out += StringSubstr(m_src, run_start, m_pos - run_start);
         m_pos++;
         return true;
        }
      if(c < 0x20)
         return Fail("control character in string");
      if(c != '\\')
        {
         m_pos++;
         continue;
        }
      out += StringSubstr(m_src, run_start, m_pos - run_start);
      m_pos++;
      if(m_pos >= m_len)
         return Fail("unterminated string");
      ushort e = StringGetCharacter(m_src, m_pos);
      m_pos++;
      if(e == '"')
         out += "\"";
      else
         if(e == '\\')
            out += "\\";
         else
            if(e == '/')
               out += "/";
            else
               if(e == 'b')
                  out += ShortToString(0x08);
               else
                  if(e == 'f')
                     out += ShortToString(0x0C);
                  else
                     if(e == 'n')
                        out += "\n";
                     else
                        if(e == 'r')
                           out += "\r";
                        else
                           if(e == 't')
                              out += "\t";
                           else
                              if(e == 'u')
                                {
                                 int unit = 0;
                                 if(!ParseHex4(unit))
                                    return false;
                                 if(unit >= 0xDC00 && unit <= 0xDFFF)
                                    return Fail("unpaired low surrogate");
                                 if(unit >= 0xD800 && unit <= 0xDBFF)
                                   {
                                    if(m_pos + 2 > m_len || StringGetCharacter(m_src, m_pos) != '\\' || StringGetCharacter(m_src, m_pos + 1) != 'u')
                                       return Fail("unpaired high surrogate");
                                    m_pos += 2;
                                    int low = 0;
                                    if(!ParseHex4(low))
                                       return false;
                                    if(low < 0xDC00 || low > 0xDFFF)
                                       return Fail("unpaired high surrogate");
                                    out += ShortToString((ushort)unit);
                                    out += ShortToString((ushort)low);
                                   }
                                 else
                                   {
                                    if(unit == 0)
                                       return Fail("\\u0000 is not supported in MQL5 strings");
                                    out += ShortToString((ushort)unit);
                                   }
                                }
                              else
                                 return Fail("invalid escape");
      run_start = m_pos;
     }
   return false;
  }

//+------------------------------------------------------------------+
//| A number, checked against the JSON grammar; kept as its text.    |
//+------------------------------------------------------------------+
bool CEagateJson::ParseNumber(string &out)
  {
   int start = m_pos;
   if(Peek() == '-')
      m_pos++;
   ushort c = Peek();
   if(c == '0')
     {
      m_pos++;
      c = Peek();
      if(c >= '0' && c <= '9')
         return Fail("leading zero in number");
     }
   else
     {
      if(c < '1' || c > '9')
         return Fail("invalid number");
      while(Peek() >= '0' && Peek() <= '9')
         m_pos++;
     }
   if(Peek() == '.')
     {
      m_pos++;
      if(Peek() < '0' || Peek() > '9')
         return Fail("invalid number");
      while(Peek() >= '0' && Peek() <= '9')
         m_pos++;
     }
   if(Peek() == 'e' || Peek() == 'E')
     {
      m_pos++;
      if(Peek() == '+' || Peek() == '-')
         m_pos++;
      if(Peek() < '0' || Peek() > '9')
         return Fail("invalid number");
      while(Peek() >= '0' && Peek() <= '9')
         m_pos++;
     }
   out = StringSubstr(m_src, start, m_pos - start);
   return true;
  }

//+------------------------------------------------------------------+
//| The root node, or -1 when nothing was parsed.                    |
//+------------------------------------------------------------------+
int CEagateJson::Root(void) const
  {
   if(m_count > 0)
      return 0;
   return -1;
  }

//+------------------------------------------------------------------+
int CEagateJson::Type(const int node) const
  {
   if(node < 0 || node >= m_count)
      return EAGATE_JSON_NONE;
   return m_type[node];
  }

//+------------------------------------------------------------------+
//| Elements of an array or members of an object (0 for others).     |
//+------------------------------------------------------------------+
int CEagateJson::Size(const int node) const
  {
   if(node < 0 || node >= m_count)
      return 0;
   return m_size[node];
  }

//+------------------------------------------------------------------+
//| The index-th element (or member) of a container, or -1.          |
//+------------------------------------------------------------------+
int CEagateJson::At(const int array, const int index) const
  {
   if(array < 0 || array >= m_count || index < 0 || index >= m_size[array])
      return -1;
   int child = m_first[array];
   for(int i = 0; i < index && child >= 0; i++)
      child = m_next[child];
   return child;
  }

//+------------------------------------------------------------------+
//| The first member named key of an object, or -1.                  |
//+------------------------------------------------------------------+
int CEagateJson::Get(const int object, const string key) const
  {
   if(Type(object) != EAGATE_JSON_OBJECT)
      return -1;
   for(int child = m_first[object]; child >= 0; child = m_next[child])
      if(m_key[child] == key)
         return child;
   return -1;
  }

//+------------------------------------------------------------------+
string CEagateJson::Key(const int node) const
  {
   if(node < 0 || node >= m_count)
      return "";
   return m_key[node];
  }

//+------------------------------------------------------------------+
bool CEagateJson::AsString(const int node, string &out) const
  {
   if(Type(node) != EAGATE_JSON_STRING)
      return false;
   out = m_text[node];
   return true;
  }

//+------------------------------------------------------------------+
bool CEagateJson::AsDouble(const int node, double &out) const
  {
   if(Type(node) != EAGATE_JSON_NUMBER)
      return false;
   out = EagateJsonToDouble(m_text[node]);
   return MathIsValidNumber(out);
  }

//+------------------------------------------------------------------+
//| An integer literal that fits a long (no fraction, no exponent).  |
//+------------------------------------------------------------------+
bool CEagateJson::AsLong(const int node, long &out) const
  {
   if(Type(node) != EAGATE_JSON_NUMBER)
      return false;
   string text = m_text[node];
   int n = StringLen(text);
   int i = 0;
   bool negative = false;
   if(StringGetCharacter(text, 0) == '-')
     {
      negative = true;
      i = 1;
     }
   long value = 0;
   for(; i < n; i++)
     {
      ushort c = StringGetCharacter(text, i);
      if(c < '0' || c > '9')
         return false;
      int d = c - '0';
      // Accumulate negatively so LONG_MIN fits; refuse overflow.
      if(value < (LONG_MIN + d) / 10)
         return false;
      value = value * 10 - d;
     }
   if(!negative)
     {
      if(value == LONG_MIN)
         return false;
      value = -value;
     }
   out = value;
   return true;
  }

//+------------------------------------------------------------------+
bool CEagateJson::AsBool(const int node, bool &out) const
  {
   if(Type(node) != EAGATE_JSON_BOOL)
      return false;
   out = (m_text[node] == "true");
   return true;
  }

//+------------------------------------------------------------------+
string CEagateJson::GetString(const int object, const string key, const string fallback) const
  {
   string value = "";
   if(AsString(Get(object, key), value))
      return value;
   return fallback;
  }

//+------------------------------------------------------------------+
double CEagateJson::GetDouble(const int object, const string key, const double fallback) const
  {
   double value = 0.0;
   if(AsDouble(Get(object, key), value))
      return value;
   return fallback;
  }

//+------------------------------------------------------------------+
long CEagateJson::GetLong(const int object, const string key, const long fallback) const
  {
   long value = 0;
   if(AsLong(Get(object, key), value))
      return value;
   return fallback;
  }

//+------------------------------------------------------------------+
bool CEagateJson::GetBool(const int object, const string key, const bool fallback) const
  {
   bool value = false;
   if(AsBool(Get(object, key), value))
      return value;
   return fallback;
  }

#endif
