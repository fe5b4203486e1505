//+------------------------------------------------------------------+
//| Eagate/Protocol.mqh                                              |
//| eagate request signing, protocol v1 (docs/protocol.md): the      |
//| string to sign, the X-Signature value, nonces, and the date      |
//| formats the server sends.                                        |
//+------------------------------------------------------------------+
#ifndef EAGATE_PROTOCOL_MQH
#define EAGATE_PROTOCOL_MQH

#include "Crypto.mqh"

#define EAGATE_ALGORITHM "EAGATE-HMAC-SHA256"
#define EAGATE_SIGNATURE_PREFIX "v1="
#define EAGATE_NONCE_MIN_LENGTH 16
#define EAGATE_NONCE_MAX_LENGTH 64

//+------------------------------------------------------------------+
//| Splits a request target ("/path?query") at the first '?'. A '?'  |
//| with nothing after it gives an empty query, like no '?' at all.  |
//+------------------------------------------------------------------+
void EagateSplitTarget(const string target, string &path, string &query)
  {
   int q = StringFind(target, "?");
   if(q < 0)
     {
      path = target;
      query = "";
      return;
     }
   path = StringSubstr(target, 0, q);
   query = StringSubstr(target, q + 1);
  }

//+------------------------------------------------------------------+
//| The string to sign: eight fields joined by LF, no trailing LF.   |
//| The method is upper-cased; everything else is used exactly as    |
//| sent (path and query are never decoded or re-ordered).           |
//+------------------------------------------------------------------+
string EagateStringToSign(const string method, const string path, const string query,
                          const string device_id, const string timestamp, const string nonce,
                          const string body_sha256_hex)
  {
   string upper = method;
   StringToUpper(upper);
   return EAGATE_ALGORITHM + "\n" + upper + "\n" + path + "\n" + query + "\n" + device_id + "\n" + timestamp + "\n" + nonce + "\n" + body_sha256_hex;
  }

//+------------------------------------------------------------------+
//| Lowercase hex SHA-256 of the exact body bytes.                   |
//+------------------------------------------------------------------+
string EagateBodySha256Hex(const uchar &body[])
  {
   return EagateSha256Hex(body);
  }

//+------------------------------------------------------------------+
//| The X-Signature value, "v1=" + 64 lowercase hex digits, for one  |
//| request. key is the secret's ASCII bytes (EagateUtf8Bytes of the |
//| eags_... string, prefix included); target is the path and query  |
//| exactly as they go on the request line. Returns "" on failure.   |
//+------------------------------------------------------------------+
string EagateSignature(const uchar &key[], const string method, const string target,
                       const string device_id, const string timestamp, const string nonce,
                       const uchar &body[])
  {
   string path = "";
   string query = "";
   EagateSplitTarget(target, path, query);
   string body_hash = EagateBodySha256Hex(body);
   if(body_hash == "")
      return "";
   string message = EagateStringToSign(method, path, query, device_id, timestamp, nonce, body_hash);
   string mac = EagateHmacSha256Hex(key, message);
   if(mac == "")
      return "";
   return EAGATE_SIGNATURE_PREFIX + mac;
  }

//+------------------------------------------------------------------+
//| Is c one of A-Z a-z 0-9 . _ ~ - ?                                |
//+------------------------------------------------------------------+
bool EagateIsNonceChar(const ushort c)
  {
   return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
          c == '.' || c == '_' || c == '~' || c == '-';
  }

//+------------------------------------------------------------------+
//| 16-64 characters of A-Z a-z 0-9 . _ ~ -                          |
//+------------------------------------------------------------------+
bool EagateIsValidNonce(const string nonce)
  {
   int n = StringLen(nonce);
   if(n < EAGATE_NONCE_MIN_LENGTH || n > EAGATE_NONCE_MAX_LENGTH)
      return false;
   for(int i = 0; i < n; i++)
      if(!EagateIsNonceChar(StringGetCharacter(nonce, i)))
         return false;
   return true;
  }

//+------------------------------------------------------------------+
//| A lowercase hyphenated UUID (8-4-4-4-12), as X-Device-Id wants.  |
//+------------------------------------------------------------------+
bool EagateIsValidUuid(const string id)
  {
   if(StringLen(id) != 36)
      return false;
   for(int i = 0; i < 36; i++)
     {
      ushort c = StringGetCharacter(id, i);
      if(i == 8 || i == 13 || i == 18 || i == 23)
        {
         if(c != '-')
            return false;
        }
      else
         if(!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
     }
   return true;
  }

//+------------------------------------------------------------------+
//| Nonces: 32 lowercase hex digits (128 bits). MQL5 offers no       |
//| operating-system random source without DLL imports, so each      |
//| nonce is HMAC-SHA256, keyed with the device secret, over a seed  |
//| gathered at start (microsecond and millisecond counters, local   |
//| and GMT clocks, MathRand after seeding it, the terminal's data   |
//| path, the chart), a 64-bit counter and the microsecond counter   |
//| at the time of the call. Without the secret nobody can predict a |
//| nonce; the counter keeps them distinct within a run and the      |
//| seed across runs.                                                |
//+------------------------------------------------------------------+
class CEagateNonceSource
  {
private:
   uchar             m_key[];
   string            m_seed;
   ulong             m_counter;

public:
                     CEagateNonceSource(void) { m_seed = ""; m_counter = 0; }
   void              Init(const uchar &key[]);
   string            Next(void);
  };

//+------------------------------------------------------------------+
void CEagateNonceSource::Init(const uchar &key[])
  {
   int n = ArraySize(key);
   ArrayResize(m_key, n);
   for(int i = 0; i < n; i++)
      m_key[i] = key[i];
   MathSrand((uint)(GetTickCount() ^ (uint)(GetMicrosecondCount() & 0xFFFFFFFF)));
   m_seed = IntegerToString((long)GetMicrosecondCount()) + "|" +
            IntegerToString((long)GetTickCount64()) + "|" +
            IntegerToString((long)TimeLocal()) + "|" +
            IntegerToString((long)TimeGMT()) + "|" +
            IntegerToString(MathRand()) + "." + IntegerToString(MathRand()) + "." +
            IntegerToString(MathRand()) + "." + IntegerToString(MathRand()) + "|" +
            TerminalInfoString(TERMINAL_DATA_PATH) + "|" +
            IntegerToString(ChartID());
   m_counter = 0;
  }

//+------------------------------------------------------------------+
string CEagateNonceSource::Next(void)
  {
   m_counter++;
   string message = "eagate-nonce\n" + m_seed + "\n" + IntegerToString((long)m_counter) + "\n" +
                    IntegerToString((long)GetMicrosecondCount()) + "\n" + IntegerToString(MathRand());
   uchar bytes[];
   EagateUtf8Bytes(message, bytes);
   uchar mac[];
   if(!EagateHmacSha256(m_key, bytes, mac))
      return "";
   ArrayResize(mac, 16);
   return EagateHex(mac);
  }

//+------------------------------------------------------------------+
//| Days since 1970-01-01 of a proleptic Gregorian date.             |
//+------------------------------------------------------------------+
long EagateDaysFromCivil(const long year, const long month, const long day)
  {
   long y = year;
   if(month <= 2)
      y--;
   long era = (y >= 0 ? y : y - 399) / 400;
   long yoe = y - era * 400;
   long mp = (month + 9) % 12;
   long doy = (153 * mp + 2) / 5 + day - 1;
   long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
   return era * 146097 + doe - 719468;
  }

//+------------------------------------------------------------------+
int EagateDaysInMonth(const long year, const long month)
  {
   if(month == 2)
     {
      bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
      return leap ? 29 : 28;
     }
   if(month == 4 || month == 6 || month == 9 || month == 11)
      return 30;
   return 31;
  }

//+------------------------------------------------------------------+
//| Unix seconds of a UTC date and time, or -1 when out of range.    |
//+------------------------------------------------------------------+
long EagateUnixTime(const long year, const long month, const long day,
                    const long hour, const long minute, const long second)
  {
   if(year < 1970 || year > 9999 || month < 1 || month > 12 || day < 1 ||
      day > EagateDaysInMonth(year, month) || hour < 0 || hour > 23 ||
      minute < 0 || minute > 59 || second < 0 || second > 60)
      return -1;
   return EagateDaysFromCivil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second;
  }

//+------------------------------------------------------------------+
//| count decimal digits at text[at], or -1.                         |
//+------------------------------------------------------------------+
long EagateDigits(const string text, const int at, const int count)
  {
   if(at < 0 || at + count > StringLen(text))
      return -1;
   long value = 0;
   for(int i = 0; i < count; i++)
     {
      ushort c = StringGetCharacter(text, at + i);
      if(c < '0' || c > '9')
         return -1;
      value = value * 10 + (c - '0');
     }
   return value;
  }

//+------------------------------------------------------------------+
//| An HTTP Date header (IMF-fixdate, RFC 9110):                     |
//| "Sun, 06 Nov 1994 08:49:37 GMT". Unix seconds, or -1.            |
//+------------------------------------------------------------------+
long EagateParseHttpDate(const string value)
  {
   string text = value;
   StringTrimLeft(text);
   StringTrimRight(text);
   if(StringLen(text) != 29 || StringSubstr(text, 3, 2) != ", " || StringSubstr(text, 25, 4) != " GMT")
      return -1;
   int month_at = StringFind("JanFebMarAprMayJunJulAugSepOctNovDec", StringSubstr(text, 8, 3));
   if(month_at < 0 || month_at % 3 != 0)
      return -1;
   if(StringGetCharacter(text, 7) != ' ' || StringGetCharacter(text, 11) != ' ' ||
      StringGetCharacter(text, 16) != ' ' || StringGetCharacter(text, 19) != ':' ||
      StringGetCharacter(text, 22) != ':')
      return -1;
   long day = EagateDigits(text, 5, 2);
   long year = EagateDigits(text, 12, 4);
   long hour = EagateDigits(text, 17, 2);
   long minute = EagateDigits(text, 20, 2);
   long second = EagateDigits(text, 23, 2);
   if(day < 0 || year < 0 || hour < 0 || minute < 0 || second < 0)
      return -1;
   return EagateUnixTime(year, month_at / 3 + 1, day, hour, minute, second);
  }

//+------------------------------------------------------------------+
//| An RFC 3339 timestamp as the server writes them                  |
//| ("2025-12-02T20:44:56.123456Z", or with a +hh:mm offset).        |
//| Unix seconds (fraction dropped), or -1.                          |
//+------------------------------------------------------------------+
long EagateParseRfc3339(const string text)
  {
   int n = StringLen(text);
   if(n < 20)
      return -1;
   ushort t = StringGetCharacter(text, 10);
   if(StringGetCharacter(text, 4) != '-' || StringGetCharacter(text, 7) != '-' ||
      (t != 'T' && t != 't' && t != ' ') || StringGetCharacter(text, 13) != ':' ||
      StringGetCharacter(text, 16) != ':')
      return -1;
   long year = EagateDigits(text, 0, 4);
   long month = EagateDigits(text, 5, 2);
   long day = EagateDigits(text, 8, 2);
   long hour = EagateDigits(text, 11, 2);
   long minute = EagateDigits(text, 14, 2);
   long second = EagateDigits(text, 17, 2);
   if(year < 0 || month < 0 || day < 0 || hour < 0 || minute < 0 || second < 0)
      return -1;
   int i = 19;
   if(StringGetCharacter(text, i) == '.')
     {
      i++;
      int fraction_start = i;
      while(i < n && StringGetCharacter(text, i) >= '0' && StringGetCharacter(text, i) <= '9')
         i++;
      if(i == fraction_start)
         return -1;
     }
   if(i >= n)
      return -1;
   long offset = 0;
   ushort z = StringGetCharacter(text, i);
   if(z == 'Z' || z == 'z')
     {
      if(i + 1 != n)
         return -1;
     }
   else
     {
      if((z != '+' && z != '-') || i + 6 != n || StringGetCharacter(text, i + 3) != ':')
         return -1;
      long oh = EagateDigits(text, i + 1, 2);
      long om = EagateDigits(text, i + 4, 2);
      if(oh < 0 || om < 0 || oh > 23 || om > 59)
         return -1;
      offset = oh * 3600 + om * 60;
      if(z == '-')
         offset = -offset;
     }
   long local = EagateUnixTime(year, month, day, hour, minute, second);
   if(local < 0)
      return -1;
   return local - offset;
  }

#endif
