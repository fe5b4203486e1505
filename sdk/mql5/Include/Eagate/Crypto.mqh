//+------------------------------------------------------------------+
//| Eagate/Crypto.mqh                                                |
//| SHA-256 (the terminal's CryptEncode), HMAC-SHA256 (RFC 2104),    |
//| hex, base64url and UTF-8 helpers for the eagate device SDK.      |
//+------------------------------------------------------------------+
#ifndef EAGATE_CRYPTO_MQH
#define EAGATE_CRYPTO_MQH

// SHA-256 of zero bytes. CryptEncode's behaviour on an empty input is not
// documented, so the SDK never asks it and uses this constant instead.
#define EAGATE_SHA256_EMPTY_HEX "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define EAGATE_HMAC_BLOCK_SIZE 64
#define EAGATE_SHA256_SIZE 32

//+------------------------------------------------------------------+
//| The UTF-8 bytes of a string, without the terminating zero that   |
//| StringToCharArray appends (hashing that zero is the classic MQL5 |
//| signing bug). Returns the number of bytes.                       |
//+------------------------------------------------------------------+
int EagateUtf8Bytes(const string text, uchar &bytes[])
  {
   ArrayResize(bytes, 0);
   if(StringLen(text) == 0)
      return 0;
   int n = StringToCharArray(text, bytes, 0, -1, CP_UTF8);
   if(n > 0 && bytes[n - 1] == 0)
      n--;
   if(n < 0)
      n = 0;
   ArrayResize(bytes, n);
   return n;
  }

//+------------------------------------------------------------------+
//| Decodes UTF-8 bytes into a string.                               |
//+------------------------------------------------------------------+
string EagateUtf8String(const uchar &bytes[])
  {
   if(ArraySize(bytes) == 0)
      return "";
   return CharArrayToString(bytes, 0, ArraySize(bytes), CP_UTF8);
  }

//+------------------------------------------------------------------+
//| Lowercase hex of bytes.                                          |
//+------------------------------------------------------------------+
string EagateHex(const uchar &bytes[])
  {
   string digits = "0123456789abcdef";
   string out = "";
   int n = ArraySize(bytes);
   for(int i = 0; i < n; i++)
     {
      out += StringSubstr(digits, bytes[i] >> 4, 1);
      out += StringSubstr(digits, bytes[i] & 15, 1);
     }
   return out;
  }

//+------------------------------------------------------------------+
//| The value of one hex digit, or -1.                               |
//+------------------------------------------------------------------+
int EagateHexDigit(const ushort c)
  {
   if(c >= '0' && c <= '9')
      return c - '0';
   if(c >= 'a' && c <= 'f')
      return c - 'a' + 10;
   if(c >= 'A' && c <= 'F')
      return c - 'A' + 10;
   return -1;
  }

//+------------------------------------------------------------------+
//| Decodes hex (either case) into bytes; false on odd length or a   |
//| non-hex character.                                               |
//+------------------------------------------------------------------+
bool EagateHexDecode(const string hex, uchar &bytes[])
  {
   ArrayResize(bytes, 0);
   int n = StringLen(hex);
   if(n % 2 != 0)
      return false;
   ArrayResize(bytes, n / 2);
   for(int i = 0; i < n; i += 2)
     {
      int hi = EagateHexDigit(StringGetCharacter(hex, i));
      int lo = EagateHexDigit(StringGetCharacter(hex, i + 1));
      if(hi < 0 || lo < 0)
        {
         ArrayResize(bytes, 0);
         return false;
        }
      bytes[i / 2] = (uchar)(hi * 16 + lo);
     }
   return true;
  }

//+------------------------------------------------------------------+
//| base64url without padding (RFC 4648 section 5).                  |
//+------------------------------------------------------------------+
string EagateBase64Url(const uchar &bytes[])
  {
   string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
   string out = "";
   int n = ArraySize(bytes);
   for(int i = 0; i < n; i += 3)
     {
      int b0 = bytes[i];
      int b1 = 0;
      int b2 = 0;
      if(i + 1 < n)
         b1 = bytes[i + 1];
      if(i + 2 < n)
         b2 = bytes[i + 2];
      int triple = (b0 << 16) | (b1 << 8) | b2;
      out += StringSubstr(alphabet, (triple >> 18) & 63, 1);
      out += StringSubstr(alphabet, (triple >> 12) & 63, 1);
      if(i + 1 < n)
         out += StringSubstr(alphabet, (triple >> 6) & 63, 1);
      if(i + 2 < n)
         out += StringSubstr(alphabet, triple & 63, 1);
     }
   return out;
  }

//+------------------------------------------------------------------+
//| SHA-256 of bytes through the terminal's CryptEncode. An empty    |
//| input gives the well-known digest without calling CryptEncode.   |
//+------------------------------------------------------------------+
bool EagateSha256(const uchar &data[], uchar &digest[])
  {
   ArrayResize(digest, 0);
   if(ArraySize(data) == 0)
      return EagateHexDecode(EAGATE_SHA256_EMPTY_HEX, digest);
   uchar no_key[];
   ResetLastError();
   int n = CryptEncode(CRYPT_HASH_SHA256, data, no_key, digest);
   if(n != EAGATE_SHA256_SIZE || ArraySize(digest) != EAGATE_SHA256_SIZE)
     {
      ArrayResize(digest, 0);
      return false;
     }
   return true;
  }

//+------------------------------------------------------------------+
//| Lowercase hex SHA-256 of bytes ("" if the terminal failed).      |
//+------------------------------------------------------------------+
string EagateSha256Hex(const uchar &data[])
  {
   uchar digest[];
   if(!EagateSha256(data, digest))
      return "";
   return EagateHex(digest);
  }

//+------------------------------------------------------------------+
//| HMAC-SHA256 (RFC 2104 with a 64-byte block): keys longer than a  |
//| block are hashed first, shorter ones padded with zeros.          |
//+------------------------------------------------------------------+
bool EagateHmacSha256(const uchar &key[], const uchar &message[], uchar &mac[])
  {
   ArrayResize(mac, 0);
   uchar block[];
   ArrayResize(block, EAGATE_HMAC_BLOCK_SIZE);
   for(int i = 0; i < EAGATE_HMAC_BLOCK_SIZE; i++)
      block[i] = 0;
   if(ArraySize(key) > EAGATE_HMAC_BLOCK_SIZE)
     {
      uchar hashed[];
      if(!EagateSha256(key, hashed))
         return false;
      for(int i = 0; i < EAGATE_SHA256_SIZE; i++)
         block[i] = hashed[i];
     }
   else
     {
      for(int i = 0; i < ArraySize(key); i++)
         block[i] = key[i];
     }
   int m = ArraySize(message);
   uchar inner[];
   ArrayResize(inner, EAGATE_HMAC_BLOCK_SIZE + m);
   for(int i = 0; i < EAGATE_HMAC_BLOCK_SIZE; i++)
      inner[i] = (uchar)(block[i] ^ 0x36);
   for(int i = 0; i < m; i++)
      inner[EAGATE_HMAC_BLOCK_SIZE + i] = message[i];
   uchar inner_hash[];
   if(!EagateSha256(inner, inner_hash))
      return false;
   uchar outer[];
   ArrayResize(outer, EAGATE_HMAC_BLOCK_SIZE + EAGATE_SHA256_SIZE);
   for(int i = 0; i < EAGATE_HMAC_BLOCK_SIZE; i++)
      outer[i] = (uchar)(block[i] ^ 0x5c);
   for(int i = 0; i < EAGATE_SHA256_SIZE; i++)
      outer[EAGATE_HMAC_BLOCK_SIZE + i] = inner_hash[i];
   return EagateSha256(outer, mac);
  }

//+------------------------------------------------------------------+
//| Lowercase hex HMAC-SHA256 of a string message ("" on failure).   |
//+------------------------------------------------------------------+
string EagateHmacSha256Hex(const uchar &key[], const string message)
  {
   uchar bytes[];
   EagateUtf8Bytes(message, bytes);
   uchar mac[];
   if(!EagateHmacSha256(key, bytes, mac))
      return "";
   return EagateHex(mac);
  }

#endif
