//+------------------------------------------------------------------+
//| Eagate/Client.mqh                                                |
//| CEagateClient: the eagate device API over WebRequest. Every      |
//| request is signed (protocol v1) with a fresh nonce; the server's |
//| clock offset is learned from its Date header and from clock-skew |
//| answers; 429, 5xx, 408 and network failures are retried with     |
//| back-off and a new nonce; every failure leaves a code and the    |
//| server's detail in LastCode()/LastDetail().                      |
//|                                                                  |
//|   CEagateClient client;                                          |
//|   if(!client.Init(url, device_id, secret)) Print(client.LastError());
//|   EagateSignal signals[];                                        |
//|   if(client.Poll(20, signals)) ...                               |
//|   client.Ack(signals[0].id, EAGATE_EXECUTED, ticket, price, ""); |
//+------------------------------------------------------------------+
#ifndef EAGATE_CLIENT_MQH
#define EAGATE_CLIENT_MQH

#include "Protocol.mqh"
#include "Json.mqh"

#define EAGATE_SDK_VERSION "1.1.0"

// Codes the SDK reports itself; everything else in LastCode() is the
// server's problem code (docs/protocol.md, docs/api.md).
#define EAGATE_ERR_INVALID_ARGUMENT "invalid-argument"
#define EAGATE_ERR_NOT_INITIALISED "not-initialised"
#define EAGATE_ERR_WEBREQUEST_NOT_ALLOWED "webrequest-not-allowed"
#define EAGATE_ERR_INVALID_URL "invalid-url"
#define EAGATE_ERR_CONNECT_FAILED "connect-failed"
#define EAGATE_ERR_TIMEOUT "timeout"
#define EAGATE_ERR_REQUEST_FAILED "request-failed"
#define EAGATE_ERR_BAD_RESPONSE "bad-response"
#define EAGATE_ERR_HTTP "http-error"
#define EAGATE_ERR_STOPPED "stopped"
#define EAGATE_ERR_CRYPTO "crypto-failed"
#define EAGATE_ERR_FILE "file-error"
#define EAGATE_ERR_DIGEST_MISMATCH "digest-mismatch"

// A Date header this far (seconds) from our idea of the server's clock
// replaces the learned offset.
#define EAGATE_CLOCK_TOLERANCE_SECONDS 30

enum ENUM_EAGATE_OUTCOME
  {
   EAGATE_EXECUTED = 0,  // the signal was executed (ticket, fill price)
   EAGATE_REJECTED = 1,  // the EA decided not to execute it (reason in message)
   EAGATE_FAILED = 2     // execution was attempted and failed (reason in message)
  };

//+------------------------------------------------------------------+
string EagateOutcomeName(const ENUM_EAGATE_OUTCOME outcome)
  {
   if(outcome == EAGATE_EXECUTED)
      return "executed";
   if(outcome == EAGATE_REJECTED)
      return "rejected";
   if(outcome == EAGATE_FAILED)
      return "failed";
   return "";
  }

//+------------------------------------------------------------------+
//| A trading signal as a device receives it. Absent prices are 0    |
//| (MQL5's "no stop loss" convention); absent times are 0.          |
//+------------------------------------------------------------------+
struct EagateSignal
  {
   string            id;
   string            instrument;
   string            side;          // buy | sell
   string            order_type;    // market | limit | stop
   double            volume;
   double            entry_price;
   double            stop_loss;
   double            take_profit;
   string            comment;
   string            action;        // open | close (close the EA's positions on the instrument)
   string            expires_at;    // RFC 3339 UTC, "" when none
   string            created_at;
   long              expires_at_unix;
   long              created_at_unix;
  };

//+------------------------------------------------------------------+
//| What a heartbeat reports. Fields left at their defaults ("" or   |
//| -1 or EMPTY_VALUE) are not sent.                                 |
//+------------------------------------------------------------------+
struct EagateHeartbeat
  {
   string            ea_version;
   long              terminal_build;
   string            broker;
   long              account_login;
   double            balance;
   double            equity;
                     EagateHeartbeat(void)
     {
      ea_version = "";
      terminal_build = -1;
      broker = "";
      account_login = -1;
      balance = EMPTY_VALUE;
      equity = EMPTY_VALUE;
     }
  };

//+------------------------------------------------------------------+
//| The device's settings and trading configuration. The server has  |
//| already applied mode, allowed_symbols, symbol_map, fixed and     |
//| multiplier sizing and max_lot to the signals it delivers; the EA |
//| applies risk_percent sizing, max_open_trades, max_daily_loss,    |
//| slippage_points and magic_number. Unset numbers are 0 (-1 for    |
//| slippage_points and magic_number, where 0 is a value).           |
//+------------------------------------------------------------------+
struct EagateConfig
  {
   long              poll_interval_seconds;
   long              long_poll_max_seconds;
   long              server_time;
   string            device_id;
   string            name;
   long              config_revision; // polls report it: refetch when it differs
   string            etag;            // send back with ConfigIfChanged
   bool              not_modified;    // the last ConfigIfChanged answered 304
   string            mode;            // active | close_only | paused
   string            sizing_type;     // fixed | multiplier | risk_percent
   double            sizing_value;    // lots, factor or percent
   double            max_lot;
   string            allowed_symbols; // comma-separated; "" = all
   string            symbol_map;      // "SIGNAL=BROKER,..."; "" = none
   long              max_open_trades;
   double            max_daily_loss;
   long              slippage_points;
   long              magic_number;
  };

//+------------------------------------------------------------------+
//| The broker symbol a signal symbol maps to (itself if unmapped).  |
//+------------------------------------------------------------------+
string EagateMapSymbol(const EagateConfig &config, const string symbol)
  {
   string pairs[];
   int n = StringSplit(config.symbol_map, ',', pairs);
   for(int i = 0; i < n; i++)
     {
      int eq = StringFind(pairs[i], "=");
      if(eq > 0 && StringSubstr(pairs[i], 0, eq) == symbol)
         return StringSubstr(pairs[i], eq + 1);
     }
   return symbol;
  }

//+------------------------------------------------------------------+
//| Whether the configuration lets the device trade a signal symbol. |
//+------------------------------------------------------------------+
bool EagateSymbolAllowed(const EagateConfig &config, const string symbol)
  {
   if(config.allowed_symbols == "")
      return true;
   string symbols[];
   int n = StringSplit(config.allowed_symbols, ',', symbols);
   for(int i = 0; i < n; i++)
      if(symbols[i] == symbol)
         return true;
   return false;
  }

//+------------------------------------------------------------------+
//| What the device should install now (GET /api/v1/device/deployment)|
//+------------------------------------------------------------------+
struct EagateDeployment
  {
   string            deployment_id;
   string            status;          // pending | downloading
   string            bundle_id;
   string            bundle_name;
   string            bundle_version;  // semantic version, exactly as uploaded
   string            bundle_notes;
   long              bundle_size;     // bytes
   string            bundle_sha256;   // 64 lowercase hex digits
   string            download_path;
   string            deadline;        // RFC 3339 UTC, "" when none
  };

//+------------------------------------------------------------------+
//| The server's record of an acknowledgement (ticket -1 and price 0 |
//| when absent).                                                    |
//+------------------------------------------------------------------+
struct EagateAckReceipt
  {
   string            signal_id;
   string            outcome;
   long              ticket;
   double            fill_price;
   string            message;
   string            acknowledged_at;
  };

//+------------------------------------------------------------------+
//| Fills a heartbeat from the terminal and the trading account.     |
//+------------------------------------------------------------------+
void EagateHeartbeatFromTerminal(EagateHeartbeat &heartbeat, const string ea_version)
  {
   heartbeat.ea_version = ea_version;
   heartbeat.terminal_build = TerminalInfoInteger(TERMINAL_BUILD);
   heartbeat.broker = AccountInfoString(ACCOUNT_COMPANY);
   heartbeat.account_login = AccountInfoInteger(ACCOUNT_LOGIN);
   heartbeat.balance = AccountInfoDouble(ACCOUNT_BALANCE);
   heartbeat.equity = AccountInfoDouble(ACCOUNT_EQUITY);
  }

//+------------------------------------------------------------------+
//| An order comment that identifies a signal within MetaTrader's    |
//| 31-character limit: "eagate:" + the 16 UUID bytes in base64url   |
//| (29 characters). "" if the id is not a UUID.                     |
//+------------------------------------------------------------------+
string EagateOrderTag(const string signal_id)
  {
   string id = signal_id;
   StringToLower(id);
   if(!EagateIsValidUuid(id))
      return "";
   string hex = id;
   StringReplace(hex, "-", "");
   uchar bytes[];
   if(!EagateHexDecode(hex, bytes))
      return "";
   return "eagate:" + EagateBase64Url(bytes);
  }

//+------------------------------------------------------------------+
//| Keeps at most max_chars characters (not splitting a surrogate    |
//| pair) and replaces control characters with spaces: C0 (below     |
//| 0x20), DEL and C1 (0x80-0x9F), everything the server refuses.    |
//+------------------------------------------------------------------+
string EagateCleanText(const string text, const int max_chars)
  {
   string out = "";
   int n = StringLen(text);
   int kept = 0;
   for(int i = 0; i < n && kept < max_chars; i++)
     {
      ushort c = StringGetCharacter(text, i);
      if(c < 0x20 || (c >= 0x7F && c <= 0x9F))
        {
         out += " ";
         kept++;
         continue;
        }
      if(c >= 0xD800 && c <= 0xDBFF && i + 1 < n)
        {
         out += StringSubstr(text, i, 2);
         i++;
         kept++;
         continue;
        }
      out += ShortToString(c);
      kept++;
     }
   return out;
  }

//+------------------------------------------------------------------+
//| The device API client.                                           |
//+------------------------------------------------------------------+
class CEagateClient
  {
private:
   string            m_base;
   string            m_device_id;
   uchar             m_key[];
   bool              m_ready;
   CEagateNonceSource m_nonces;
   CEagateJson       m_json;
   long              m_offset;
   int               m_timeout_ms;
   int               m_max_attempts;
   int               m_backoff_ms;
   int               m_max_backoff_ms;
   bool              m_debug;
   int               m_status;
   string            m_code;
   string            m_detail;
   long              m_server_time;
   long              m_requests;
   long              m_retries;
   long              m_rate_limited;
   long              m_clock_corrections;
   long              m_config_revision;
   long              m_deployment_revision;
   int               m_chunk_bytes;

   bool              Fail(const int status, const string code, const string detail);
   void              Log(const string text);
   string            HeaderValue(const string headers, const string name);
   void              AdoptOffset(const long offset, const string source);
   void              LearnClock(const string headers);
   void              ReadProblem(const int status, const string headers, const string body, long &server_time, int &retry_after);
   int               Backoff(const int attempt);
   bool              ParseObject(const string response);
   bool              Send(const string method, const string target, const string body, const string extra_headers,
                          const int timeout_ms, uchar &answer[], string &answer_headers);
   bool              FileBytes(const string file_name, uchar &bytes[]);
   bool              AppendFile(const string file_name, const uchar &bytes[], const bool start_over);

public:
                     CEagateClient(void);
   bool              Init(const string server_url, const string device_id, const string secret);
   void              SetTimeout(const int milliseconds) { m_timeout_ms = milliseconds; }
   void              SetRetryPolicy(const int max_attempts, const int backoff_ms, const int max_backoff_ms);
   void              SetDebug(const bool enabled) { m_debug = enabled; }
   bool              Request(const string method, const string target, const string body,
                             const int timeout_ms, string &response);
   bool              RequestWith(const string method, const string target, const string body,
                                 const string extra_headers, const int timeout_ms, string &response);
   bool              Poll(const int wait_seconds, EagateSignal &signals[], const int limit = 10);
   bool              Ack(const string signal_id, const ENUM_EAGATE_OUTCOME outcome, const long ticket,
                         const double fill_price, const string message);
   bool              Ack(const string signal_id, const ENUM_EAGATE_OUTCOME outcome, const long ticket,
                         const double fill_price, const string message, EagateAckReceipt &receipt);
   bool              Heartbeat(const EagateHeartbeat &fields);
   bool              Config(EagateConfig &config);
   bool              ConfigIfChanged(EagateConfig &config);
   // The trading configuration revision of the last poll (0 before one).
   long              ConfigRevision(void) const { return m_config_revision; }
   // The deployment revision of the last poll (0 before one): when it
   // changes, ask Deployment() for a bundle to install.
   long              DeploymentRevision(void) const { return m_deployment_revision; }
   bool              Deployment(EagateDeployment &deployment, bool &found);
   bool              ReportDeployment(const string deployment_id, const string status, const string reason);
   // Bytes per download request (Range), 4 KiB-16 MiB; 1 MiB by default.
   void              SetDownloadChunk(const int bytes) { m_chunk_bytes = MathMax(4096, MathMin(bytes, 16777216)); }
   bool              DownloadBundle(const EagateDeployment &deployment, const string file_name, long &resumed_from);
   // The last call's outcome: HTTP status (0 when no answer), code and
   // the server's detail; "" code means success.
   int               LastStatus(void) const { return m_status; }
   string            LastCode(void) const { return m_code; }
   string            LastDetail(void) const { return m_detail; }
   string            LastError(void) const;
   bool              LastErrorIsFatal(void) const;
   // Seconds to add to TimeGMT() to get the server's clock.
   long              ClockOffset(void) const { return m_offset; }
   void              SetClockOffset(const long seconds) { m_offset = seconds; }
   long              ServerTime(void) const { return (long)TimeGMT() + m_offset; }
   // The server_time of the last successful answer that carried one.
   long              LastServerTime(void) const { return m_server_time; }
   string            DeviceId(void) const { return m_device_id; }
   // Counters since Init: HTTP requests sent, retries, 429 answers,
   // clock corrections.
   long              RequestCount(void) const { return m_requests; }
   long              RetryCount(void) const { return m_retries; }
   long              RateLimitedCount(void) const { return m_rate_limited; }
   long              ClockCorrectionCount(void) const { return m_clock_corrections; }
  };

//+------------------------------------------------------------------+
CEagateClient::CEagateClient(void)
  {
   m_base = "";
   m_device_id = "";
   m_ready = false;
   m_offset = 0;
   m_timeout_ms = 15000;
   m_max_attempts = 4;
   m_backoff_ms = 500;
   m_max_backoff_ms = 8000;
   m_debug = false;
   m_status = 0;
   m_code = "";
   m_detail = "";
   m_server_time = 0;
   m_requests = 0;
   m_retries = 0;
   m_rate_limited = 0;
   m_clock_corrections = 0;
   m_config_revision = 0;
   m_deployment_revision = 0;
   m_chunk_bytes = 1048576;
  }

//+------------------------------------------------------------------+
bool CEagateClient::Fail(const int status, const string code, const string detail)
  {
   m_status = status;
   m_code = code;
   m_detail = detail;
   return false;
  }

//+------------------------------------------------------------------+
void CEagateClient::Log(const string text)
  {
   if(m_debug)
      Print("eagate: ", text);
  }

//+------------------------------------------------------------------+
//| "code (HTTP status): detail", or "" after a success.             |
//+------------------------------------------------------------------+
string CEagateClient::LastError(void) const
  {
   if(m_code == "")
      return "";
   string text = m_code;
   if(m_status > 0)
      text += " (HTTP " + IntegerToString(m_status) + ")";
   if(m_detail != "")
      text += ": " + m_detail;
   return text;
  }

//+------------------------------------------------------------------+
//| Errors that retrying cannot fix: a person must act (wrong        |
//| secret, revoked device, URL not allowed in the terminal...).     |
//+------------------------------------------------------------------+
bool CEagateClient::LastErrorIsFatal(void) const
  {
   return m_code == "invalid-signature" || m_code == "device-revoked" ||
          m_code == "malformed-header" || m_code == EAGATE_ERR_WEBREQUEST_NOT_ALLOWED ||
          m_code == EAGATE_ERR_INVALID_URL || m_code == EAGATE_ERR_NOT_INITIALISED ||
          m_code == EAGATE_ERR_CRYPTO;
  }

//+------------------------------------------------------------------+
void CEagateClient::SetRetryPolicy(const int max_attempts, const int backoff_ms, const int max_backoff_ms)
  {
   m_max_attempts = MathMax(1, max_attempts);
   m_backoff_ms = MathMax(0, backoff_ms);
   m_max_backoff_ms = MathMax(m_backoff_ms, max_backoff_ms);
  }

//+------------------------------------------------------------------+
//| server_url is the server's origin ("https://eagate.example.com", |
//| a port is allowed, a path is not); device_id and secret as shown |
//| when the device was registered. Nothing is sent yet.             |
//+------------------------------------------------------------------+
bool CEagateClient::Init(const string server_url, const string device_id, const string secret)
  {
   m_ready = false;
   m_status = 0;
   m_code = "";
   m_detail = "";
   string url = server_url;
   StringTrimLeft(url);
   StringTrimRight(url);
   string lower = url;
   StringToLower(lower);
   int host_at = -1;
   if(StringFind(lower, "https://") == 0)
      host_at = 8;
   if(StringFind(lower, "http://") == 0)
      host_at = 7;
   if(host_at < 0)
      return Fail(0, EAGATE_ERR_INVALID_URL, "the server URL must start with https:// (or http:// for local tests)");
   while(StringLen(url) > host_at && StringGetCharacter(url, StringLen(url) - 1) == '/')
      url = StringSubstr(url, 0, StringLen(url) - 1);
   string rest = StringSubstr(url, host_at);
   if(StringLen(rest) == 0)
      return Fail(0, EAGATE_ERR_INVALID_URL, "the server URL has no host");
   if(StringFind(rest, "/") >= 0 || StringFind(rest, "?") >= 0 || StringFind(rest, "#") >= 0 || StringFind(rest, " ") >= 0)
      return Fail(0, EAGATE_ERR_INVALID_URL, "the server URL must be an origin such as https://eagate.example.com, without a path");
   string id = device_id;
   StringTrimLeft(id);
   StringTrimRight(id);
   StringToLower(id);
   if(!EagateIsValidUuid(id))
      return Fail(0, EAGATE_ERR_INVALID_ARGUMENT, "the device id must be a UUID such as 3f6c1a2e-8d4b-4c7e-9f10-2b3c4d5e6f70");
   string key = secret;
   StringTrimLeft(key);
   StringTrimRight(key);
   bool printable = StringLen(key) > 5;
   for(int i = 0; i < StringLen(key); i++)
     {
      ushort c = StringGetCharacter(key, i);
      if(c <= 0x20 || c >= 0x7F)
         printable = false;
     }
   if(StringFind(key, "eags_") != 0 || !printable)
      return Fail(0, EAGATE_ERR_INVALID_ARGUMENT, "the device secret must be the eags_... text shown when the device was registered, without spaces or line breaks");
   m_base = url;
   m_device_id = id;
   EagateUtf8Bytes(key, m_key);
   m_nonces.Init(m_key);
   if(m_nonces.Next() == "")
      return Fail(0, EAGATE_ERR_CRYPTO, "CryptEncode(CRYPT_HASH_SHA256) failed, error " + IntegerToString(GetLastError()));
   m_ready = true;
   return true;
  }

//+------------------------------------------------------------------+
//| The value of a response header (case-insensitive name), or "".   |
//+------------------------------------------------------------------+
string CEagateClient::HeaderValue(const string headers, const string name)
  {
   string lines[];
   int n = StringSplit(headers, '\n', lines);
   string wanted = name;
   StringToLower(wanted);
   for(int i = 0; i < n; i++)
     {
      string line = lines[i];
      int colon = StringFind(line, ":");
      if(colon <= 0)
         continue;
      string key = StringSubstr(line, 0, colon);
      StringTrimLeft(key);
      StringTrimRight(key);
      StringToLower(key);
      if(key != wanted)
         continue;
      string value = StringSubstr(line, colon + 1);
      StringTrimLeft(value);
      StringTrimRight(value);
      return value;
     }
   return "";
  }

//+------------------------------------------------------------------+
//| Adopts a new clock offset (server time - TimeGMT()), saying so   |
//| when it moves by more than a second or two.                      |
//+------------------------------------------------------------------+
void CEagateClient::AdoptOffset(const long offset, const string source)
  {
   long change = offset - m_offset;
   m_offset = offset;
   if(change >= -2 && change <= 2)
      return;
   m_clock_corrections++;
   long magnitude = offset;
   string direction = " s behind";
   if(offset < 0)
     {
      magnitude = -offset;
      direction = " s ahead of";
     }
   Print("eagate: this computer's clock is ", IntegerToString(magnitude), direction,
         " the server's (", source, "); signing with the server's time");
  }

//+------------------------------------------------------------------+
//| The Date header tells the server's time to the second: if our    |
//| offset is off by more than the tolerance, replace it.            |
//+------------------------------------------------------------------+
void CEagateClient::LearnClock(const string headers)
  {
   long server = EagateParseHttpDate(HeaderValue(headers, "Date"));
   if(server <= 0)
      return;
   long candidate = server - (long)TimeGMT();
   long drift = candidate - m_offset;
   if(drift > -EAGATE_CLOCK_TOLERANCE_SECONDS && drift < EAGATE_CLOCK_TOLERANCE_SECONDS)
      return;
   AdoptOffset(candidate, "Date header");
  }

//+------------------------------------------------------------------+
//| Reads an RFC 9457 problem body into the last error.              |
//+------------------------------------------------------------------+
void CEagateClient::ReadProblem(const int status, const string headers, const string body,
                                long &server_time, int &retry_after)
  {
   server_time = 0;
   retry_after = 0;
   string code = "";
   string detail = "";
   if(m_json.Parse(body) && m_json.Type(m_json.Root()) == EAGATE_JSON_OBJECT)
     {
      int root = m_json.Root();
      code = m_json.GetString(root, "code", "");
      if(code == "")
        {
         string type = m_json.GetString(root, "type", "");
         if(StringFind(type, "urn:eagate:problem:") == 0)
            code = StringSubstr(type, 19);
        }
      detail = m_json.GetString(root, "detail", "");
      if(detail == "")
         detail = m_json.GetString(root, "title", "");
      server_time = m_json.GetLong(root, "server_time", 0);
      retry_after = (int)m_json.GetLong(root, "retry_after", 0);
     }
   if(code == "")
     {
      code = EAGATE_ERR_HTTP;
      if(detail == "")
         detail = "HTTP " + IntegerToString(status) + " without a problem body: " + EagateCleanText(body, 200);
     }
   long header_time = StringToInteger(HeaderValue(headers, "X-Server-Time"));
   if(header_time > 0)
      server_time = header_time;
   long header_retry = StringToInteger(HeaderValue(headers, "Retry-After"));
   if(header_retry > 0)
      retry_after = (int)header_retry;
   Fail(status, code, detail);
  }

//+------------------------------------------------------------------+
//| Exponential back-off with up to 25% jitter, in milliseconds.     |
//+------------------------------------------------------------------+
int CEagateClient::Backoff(const int attempt)
  {
   double delay = m_backoff_ms * MathPow(2.0, attempt - 1);
   if(delay > m_max_backoff_ms)
      delay = m_max_backoff_ms;
   delay += delay * 0.25 * MathRand() / 32767.0;
   return (int)delay;
  }

//+------------------------------------------------------------------+
//| Sends one signed request and retries what can be retried. body   |
//| is JSON text ("" for none); target is "/api/v1/device/...", with |
//| its query exactly as it must be signed. On success response is   |
//| the answer's text and LastStatus() its 2xx status.               |
//+------------------------------------------------------------------+
bool CEagateClient::Request(const string method, const string target, const string body,
                            const int timeout_ms, string &response)
  {
   return RequestWith(method, target, body, "", timeout_ms, response);
  }

//+------------------------------------------------------------------+
//| Request with extra header lines ("Name: value\r\n", unsigned);   |
//| a 304 answer (to If-None-Match) succeeds with an empty response. |
//+------------------------------------------------------------------+
bool CEagateClient::RequestWith(const string method, const string target, const string body,
                                const string extra_headers, const int timeout_ms, string &response)
  {
   response = "";
   uchar answer[];
   string answer_headers = "";
   if(!Send(method, target, body, extra_headers, timeout_ms, answer, answer_headers))
      return false;
   response = EagateUtf8String(answer);
   return true;
  }

//+------------------------------------------------------------------+
//| The request loop: signs, sends, retries. On success answer holds |
//| the answer's bytes and answer_headers its headers.               |
//+------------------------------------------------------------------+
bool CEagateClient::Send(const string method, const string target, const string body,
                         const string extra_headers, const int timeout_ms, uchar &answer[], string &answer_headers)
  {
   ArrayResize(answer, 0);
   answer_headers = "";
   m_status = 0;
   m_code = "";
   m_detail = "";
   if(!m_ready)
      return Fail(0, EAGATE_ERR_NOT_INITIALISED, "Init() has not succeeded");
   uchar body_bytes[];
   int body_size = EagateUtf8Bytes(body, body_bytes);
   char data[];
   ArrayResize(data, body_size);
   for(int i = 0; i < body_size; i++)
      data[i] = (char)body_bytes[i];
   string url = m_base + target;
   bool clock_corrected = false;
   int attempt = 0;
   while(true)
     {
      attempt++;
      if(IsStopped())
         return Fail(0, EAGATE_ERR_STOPPED, "the program is being stopped");
      string timestamp = IntegerToString((long)TimeGMT() + m_offset);
      string nonce = m_nonces.Next();
      string signature = EagateSignature(m_key, method, target, m_device_id, timestamp, nonce, body_bytes);
      if(nonce == "" || signature == "")
         return Fail(0, EAGATE_ERR_CRYPTO, "CryptEncode(CRYPT_HASH_SHA256) failed, error " + IntegerToString(GetLastError()));
      string headers = "X-Device-Id: " + m_device_id + "\r\n" +
                       "X-Timestamp: " + timestamp + "\r\n" +
                       "X-Nonce: " + nonce + "\r\n" +
                       "X-Signature: " + signature + "\r\n" +
                       "Accept: application/json\r\n";
      if(body_size > 0)
         headers += "Content-Type: application/json\r\n";
      headers += extra_headers;
      char result[];
      string result_headers = "";
      m_requests++;
      ResetLastError();
      int status = WebRequest(method, url, headers, timeout_ms, data, result, result_headers);
      int delay_ms = 0;
      if(status == -1)
        {
         int error = GetLastError();
         if(error == ERR_FUNCTION_NOT_ALLOWED)
            return Fail(0, EAGATE_ERR_WEBREQUEST_NOT_ALLOWED,
                        "add " + m_base + " under Tools > Options > Expert Advisors > Allow WebRequest for listed URL");
         if(error == ERR_WEBREQUEST_INVALID_ADDRESS)
            return Fail(0, EAGATE_ERR_INVALID_URL, "the terminal rejected the URL " + url);
         if(error == ERR_WEBREQUEST_CONNECT_FAILED)
            Fail(0, EAGATE_ERR_CONNECT_FAILED, "could not connect to " + m_base);
         else
            if(error == ERR_WEBREQUEST_TIMEOUT)
               Fail(0, EAGATE_ERR_TIMEOUT, "no answer within " + IntegerToString(timeout_ms) + " ms");
            else
               Fail(0, EAGATE_ERR_REQUEST_FAILED, "WebRequest failed, error " + IntegerToString(error));
         delay_ms = Backoff(attempt);
         Log(method + " " + target + " -> " + m_code + " (attempt " + IntegerToString(attempt) + ")");
        }
      else
        {
         LearnClock(result_headers);
         int size = ArraySize(result);
         ArrayResize(answer, size);
         for(int i = 0; i < size; i++)
            answer[i] = (uchar)result[i];
         Log(method + " " + target + " -> " + IntegerToString(status) + " (attempt " + IntegerToString(attempt) + ")");
         if((status >= 200 && status < 300) || status == 304)
           {
            m_status = status;
            answer_headers = result_headers;
            return true;
           }
         long server_time = 0;
         int retry_after = 0;
         ReadProblem(status, result_headers, EagateUtf8String(answer), server_time, retry_after);
         ArrayResize(answer, 0);
         if(status == 401 && m_code == "clock-skew" && !clock_corrected && server_time > 0)
           {
            AdoptOffset(server_time - (long)TimeGMT(), "clock-skew answer");
            clock_corrected = true;
            attempt--;
            continue;
           }
         if(status == 429)
           {
            m_rate_limited++;
            delay_ms = 1000 * MathMax(1, MathMin(retry_after, 60));
           }
         else
            if(status >= 500 || status == 408 || (status == 401 && m_code == "replayed"))
               delay_ms = Backoff(attempt);
            else
               return false;
        }
      if(attempt >= m_max_attempts)
         return false;
      m_retries++;
      Sleep(delay_ms);
     }
   return false;
  }

//+------------------------------------------------------------------+
//| Parses a 2xx answer that must be a JSON object.                  |
//+------------------------------------------------------------------+
bool CEagateClient::ParseObject(const string response)
  {
   if(!m_json.Parse(response))
      return Fail(m_status, EAGATE_ERR_BAD_RESPONSE, "the answer is not JSON: " + m_json.Error());
   if(m_json.Type(m_json.Root()) != EAGATE_JSON_OBJECT)
      return Fail(m_status, EAGATE_ERR_BAD_RESPONSE, "the answer is not a JSON object");
   long server_time = m_json.GetLong(m_json.Root(), "server_time", 0);
   if(server_time > 0)
      m_server_time = server_time;
   return true;
  }

//+------------------------------------------------------------------+
//| Fetches pending signals, oldest first (at most limit, 1-100).    |
//| With wait_seconds > 0 the server holds the request until a       |
//| signal arrives or the wait ends; WebRequest blocks the EA for    |
//| that long. Delivery is at least once: execute idempotently.      |
//+------------------------------------------------------------------+
bool CEagateClient::Poll(const int wait_seconds, EagateSignal &signals[], const int limit)
  {
   ArrayResize(signals, 0);
   if(wait_seconds < 0 || wait_seconds > 300)
      return Fail(0, EAGATE_ERR_INVALID_ARGUMENT, "wait_seconds must be 0-300 (the server caps it, 30 by default)");
   if(limit < 1 || limit > 100)
      return Fail(0, EAGATE_ERR_INVALID_ARGUMENT, "limit must be 1-100");
   string target = "/api/v1/device/poll?wait=" + IntegerToString(wait_seconds) + "&limit=" + IntegerToString(limit);
   string response = "";
   if(!Request("GET", target, "", m_timeout_ms + wait_seconds * 1000, response))
      return false;
   if(!ParseObject(response))
      return false;
   m_config_revision = m_json.GetLong(m_json.Root(), "config_revision", m_config_revision);
   m_deployment_revision = m_json.GetLong(m_json.Root(), "deployment_revision", m_deployment_revision);
   int list = m_json.Get(m_json.Root(), "signals");
   if(m_json.Type(list) != EAGATE_JSON_ARRAY)
      return Fail(m_status, EAGATE_ERR_BAD_RESPONSE, "the answer has no signals array");
   int count = m_json.Size(list);
   ArrayResize(signals, count);
   for(int i = 0; i < count; i++)
     {
      int item = m_json.At(list, i);
      if(m_json.Type(item) != EAGATE_JSON_OBJECT)
        {
         ArrayResize(signals, 0);
         return Fail(m_status, EAGATE_ERR_BAD_RESPONSE, "signal " + IntegerToString(i) + " is not an object");
        }
      signals[i].id = m_json.GetString(item, "id", "");
      signals[i].instrument = m_json.GetString(item, "instrument", "");
      signals[i].side = m_json.GetString(item, "side", "");
      signals[i].order_type = m_json.GetString(item, "order_type", "");
      signals[i].volume = m_json.GetDouble(item, "volume", 0.0);
      signals[i].entry_price = m_json.GetDouble(item, "entry_price", 0.0);
      signals[i].stop_loss = m_json.GetDouble(item, "stop_loss", 0.0);
      signals[i].take_profit = m_json.GetDouble(item, "take_profit", 0.0);
      signals[i].comment = m_json.GetString(item, "comment", "");
      signals[i].action = m_json.GetString(item, "action", "open");
      signals[i].expires_at = m_json.GetString(item, "expires_at", "");
      signals[i].created_at = m_json.GetString(item, "created_at", "");
      signals[i].expires_at_unix = 0;
      if(signals[i].expires_at != "")
         signals[i].expires_at_unix = EagateParseRfc3339(signals[i].expires_at);
      signals[i].created_at_unix = EagateParseRfc3339(signals[i].created_at);
      if(signals[i].id == "" || signals[i].instrument == "" || signals[i].side == "" ||
         signals[i].order_type == "" || signals[i].volume <= 0.0 || signals[i].expires_at_unix < 0)
        {
         ArrayResize(signals, 0);
         return Fail(m_status, EAGATE_ERR_BAD_RESPONSE, "signal " + IntegerToString(i) + " lacks a required field");
        }
     }
   return true;
  }

//+------------------------------------------------------------------+
//| Acknowledges a signal. ticket <= 0, fill_price <= 0 and an empty |
//| message are not sent; the message is cut to 512 characters.      |
//| Safe to repeat: the same outcome again returns the first receipt.|
//+------------------------------------------------------------------+
bool CEagateClient::Ack(const string signal_id, const ENUM_EAGATE_OUTCOME outcome, const long ticket,
                        const double fill_price, const string message, EagateAckReceipt &receipt)
  {
   receipt.signal_id = "";
   receipt.outcome = "";
   receipt.ticket = -1;
   receipt.fill_price = 0.0;
   receipt.message = "";
   receipt.acknowledged_at = "";
   string outcome_name = EagateOutcomeName(outcome);
   if(signal_id == "" || outcome_name == "")
      return Fail(0, EAGATE_ERR_INVALID_ARGUMENT, "Ack needs a signal id and an outcome");
   if(!MathIsValidNumber(fill_price))
      return Fail(0, EAGATE_ERR_INVALID_ARGUMENT, "fill_price is not a finite number");
   string body = "{\"signal_id\":" + EagateJsonQuote(signal_id) + ",\"outcome\":\"" + outcome_name + "\"";
   if(ticket > 0)
      body += ",\"ticket\":" + IntegerToString(ticket);
   if(fill_price > 0.0)
      body += ",\"fill_price\":" + EagateJsonNumber(fill_price);
   if(message != "")
      body += ",\"message\":" + EagateJsonQuote(EagateCleanText(message, 512));
   body += "}";
   string response = "";
   if(!Request("POST", "/api/v1/device/ack", body, m_timeout_ms, response))
      return false;
   if(!ParseObject(response))
      return false;
   int root = m_json.Root();
   receipt.signal_id = m_json.GetString(root, "signal_id", "");
   receipt.outcome = m_json.GetString(root, "outcome", "");
   receipt.ticket = m_json.GetLong(root, "ticket", -1);
   receipt.fill_price = m_json.GetDouble(root, "fill_price", 0.0);
   receipt.message = m_json.GetString(root, "message", "");
   receipt.acknowledged_at = m_json.GetString(root, "acknowledged_at", "");
   if(receipt.signal_id == "" || receipt.outcome == "")
      return Fail(m_status, EAGATE_ERR_BAD_RESPONSE, "the acknowledgement lacks signal_id or outcome");
   return true;
  }

//+------------------------------------------------------------------+
bool CEagateClient::Ack(const string signal_id, const ENUM_EAGATE_OUTCOME outcome, const long ticket,
                        const double fill_price, const string message)
  {
   EagateAckReceipt receipt;
   return Ack(signal_id, outcome, ticket, fill_price, message, receipt);
  }

//+------------------------------------------------------------------+
//| Reports the terminal's state; the owner sees the latest one on   |
//| the device. Values the server would refuse (a version over 32    |
//| characters, a non-finite balance...) are left out; the broker    |
//| name is cleaned and cut to 128 characters.                       |
//+------------------------------------------------------------------+
bool CEagateClient::Heartbeat(const EagateHeartbeat &fields)
  {
   string body = "";
   if(fields.ea_version != "")
     {
      if(StringLen(fields.ea_version) > 32)
         return Fail(0, EAGATE_ERR_INVALID_ARGUMENT, "ea_version is longer than 32 characters");
      body += ",\"ea_version\":" + EagateJsonQuote(EagateCleanText(fields.ea_version, 32));
     }
   if(fields.terminal_build >= 0 && fields.terminal_build <= 1000000)
      body += ",\"terminal_build\":" + IntegerToString(fields.terminal_build);
   if(fields.broker != "")
      body += ",\"broker\":" + EagateJsonQuote(EagateCleanText(fields.broker, 128));
   if(fields.account_login >= 0)
      body += ",\"account_login\":" + IntegerToString(fields.account_login);
   if(fields.balance != EMPTY_VALUE && MathIsValidNumber(fields.balance) && MathAbs(fields.balance) <= 1e15)
      body += ",\"balance\":" + EagateJsonNumber(fields.balance);
   if(fields.equity != EMPTY_VALUE && MathIsValidNumber(fields.equity) && MathAbs(fields.equity) <= 1e15)
      body += ",\"equity\":" + EagateJsonNumber(fields.equity);
   if(body == "")
      body = "{}";
   else
      body = "{" + StringSubstr(body, 1) + "}";
   string response = "";
   if(!Request("POST", "/api/v1/device/heartbeat", body, m_timeout_ms, response))
      return false;
   return ParseObject(response);
  }

//+------------------------------------------------------------------+
//| The device's settings (and a cheap way to test a connection).    |
//+------------------------------------------------------------------+
bool CEagateClient::Config(EagateConfig &config)
  {
   config.etag = "";
   return ConfigIfChanged(config);
  }

//+------------------------------------------------------------------+
//| Fetches the settings unless config.etag is still current: then   |
//| the server answers 304, config is left as it is and              |
//| config.not_modified is true.                                     |
//+------------------------------------------------------------------+
bool CEagateClient::ConfigIfChanged(EagateConfig &config)
  {
   config.not_modified = false;
   string extra = "";
   if(config.etag != "")
      extra = "If-None-Match: " + config.etag + "\r\n";
   string response = "";
   if(!RequestWith("GET", "/api/v1/device/config", "", extra, m_timeout_ms, response))
      return false;
   if(m_status == 304)
     {
      config.not_modified = true;
      return true;
     }
   if(!ParseObject(response))
      return false;
   int root = m_json.Root();
   config.poll_interval_seconds = m_json.GetLong(root, "poll_interval_seconds", 0);
   config.long_poll_max_seconds = m_json.GetLong(root, "long_poll_max_seconds", 0);
   config.server_time = m_json.GetLong(root, "server_time", 0);
   config.device_id = m_json.GetString(root, "device_id", "");
   config.name = m_json.GetString(root, "name", "");
   config.config_revision = m_json.GetLong(root, "config_revision", 0);
   config.etag = "\"r" + IntegerToString(config.config_revision) + "\"";
   config.mode = "active";
   config.sizing_type = "multiplier";
   config.sizing_value = 1.0;
   config.max_lot = 0.0;
   config.allowed_symbols = "";
   config.symbol_map = "";
   config.max_open_trades = 0;
   config.max_daily_loss = 0.0;
   config.slippage_points = -1;
   config.magic_number = -1;
   int trading = m_json.Get(root, "trading");
   if(m_json.Type(trading) != EAGATE_JSON_OBJECT)
      return true;
   config.mode = m_json.GetString(trading, "mode", "active");
   int sizing = m_json.Get(trading, "sizing");
   if(m_json.Type(sizing) == EAGATE_JSON_OBJECT)
     {
      config.sizing_type = m_json.GetString(sizing, "type", "multiplier");
      if(config.sizing_type == "fixed")
         config.sizing_value = m_json.GetDouble(sizing, "lots", 0.0);
      if(config.sizing_type == "multiplier")
         config.sizing_value = m_json.GetDouble(sizing, "factor", 1.0);
      if(config.sizing_type == "risk_percent")
         config.sizing_value = m_json.GetDouble(sizing, "percent", 0.0);
     }
   config.max_lot = m_json.GetDouble(trading, "max_lot", 0.0);
   int symbols = m_json.Get(trading, "allowed_symbols");
   if(m_json.Type(symbols) == EAGATE_JSON_ARRAY)
      for(int i = 0; i < m_json.Size(symbols); i++)
        {
         string symbol = "";
         if(m_json.AsString(m_json.At(symbols, i), symbol))
            config.allowed_symbols += (config.allowed_symbols == "" ? "" : ",") + symbol;
        }
   int map = m_json.Get(trading, "symbol_map");
   if(m_json.Type(map) == EAGATE_JSON_OBJECT)
      for(int i = 0; i < m_json.Size(map); i++)
        {
         int entry = m_json.At(map, i);
         string to = "";
         if(m_json.AsString(entry, to))
            config.symbol_map += (config.symbol_map == "" ? "" : ",") + m_json.Key(entry) + "=" + to;
        }
   config.max_open_trades = m_json.GetLong(trading, "max_open_trades", 0);
   config.max_daily_loss = m_json.GetDouble(trading, "max_daily_loss", 0.0);
   config.slippage_points = m_json.GetLong(trading, "slippage_points", -1);
   config.magic_number = m_json.GetLong(trading, "magic_number", -1);
   return true;
  }

//+------------------------------------------------------------------+
//| The deployment to work on: found is false when there is none     |
//| (204). Ask when a poll's DeploymentRevision() changed.           |
//+------------------------------------------------------------------+
bool CEagateClient::Deployment(EagateDeployment &deployment, bool &found)
  {
   found = false;
   deployment.deployment_id = "";
   deployment.status = "";
   deployment.bundle_id = "";
   deployment.bundle_name = "";
   deployment.bundle_version = "";
   deployment.bundle_notes = "";
   deployment.bundle_size = 0;
   deployment.bundle_sha256 = "";
   deployment.download_path = "";
   deployment.deadline = "";
   string response = "";
   if(!Request("GET", "/api/v1/device/deployment", "", m_timeout_ms, response))
      return false;
   if(m_status == 204)
      return true;
   if(!ParseObject(response))
      return false;
   int root = m_json.Root();
   deployment.deployment_id = m_json.GetString(root, "deployment_id", "");
   deployment.status = m_json.GetString(root, "status", "");
   deployment.download_path = m_json.GetString(root, "download_path", "");
   deployment.deadline = m_json.GetString(root, "deadline", "");
   int bundle = m_json.Get(root, "bundle");
   if(m_json.Type(bundle) == EAGATE_JSON_OBJECT)
     {
      deployment.bundle_id = m_json.GetString(bundle, "id", "");
      deployment.bundle_name = m_json.GetString(bundle, "name", "");
      deployment.bundle_version = m_json.GetString(bundle, "version", "");
      deployment.bundle_notes = m_json.GetString(bundle, "notes", "");
      deployment.bundle_size = m_json.GetLong(bundle, "size", 0);
      deployment.bundle_sha256 = m_json.GetString(bundle, "sha256", "");
     }
   if(!EagateIsValidUuid(deployment.deployment_id) || !EagateIsValidUuid(deployment.bundle_id) ||
      deployment.bundle_size <= 0 || StringLen(deployment.bundle_sha256) != 64 || deployment.bundle_name == "")
      return Fail(m_status, EAGATE_ERR_BAD_RESPONSE, "the deployment lacks its id or its bundle's id, name, size or sha256");
   found = true;
   return true;
  }

//+------------------------------------------------------------------+
//| Reports the device's status in a deployment: "downloading",      |
//| "installed" or "failed" (with a reason, cleaned and cut to 512   |
//| characters). Repeating the current status is accepted; another   |
//| move is 409 invalid-transition.                                  |
//+------------------------------------------------------------------+
bool CEagateClient::ReportDeployment(const string deployment_id, const string status, const string reason)
  {
   if(!EagateIsValidUuid(deployment_id))
      return Fail(0, EAGATE_ERR_INVALID_ARGUMENT, "the deployment id must be a UUID");
   if(status != "downloading" && status != "installed" && status != "failed")
      return Fail(0, EAGATE_ERR_INVALID_ARGUMENT, "status must be downloading, installed or failed");
   if((status == "failed") != (reason != ""))
      return Fail(0, EAGATE_ERR_INVALID_ARGUMENT, "a reason goes with failed, and only with failed");
   string body = "{\"status\":\"" + status + "\"";
   if(reason != "")
      body += ",\"reason\":" + EagateJsonQuote(EagateCleanText(reason, 512));
   body += "}";
   string response = "";
   if(!Request("POST", "/api/v1/device/deployments/" + deployment_id + "/status", body, m_timeout_ms, response))
      return false;
   return ParseObject(response);
  }

//+------------------------------------------------------------------+
//| The bytes of a file in MQL5\Files (false if it cannot be read).  |
//+------------------------------------------------------------------+
bool CEagateClient::FileBytes(const string file_name, uchar &bytes[])
  {
   ArrayResize(bytes, 0);
   ResetLastError();
   int handle = FileOpen(file_name, FILE_READ | FILE_BIN);
   if(handle == INVALID_HANDLE)
      return Fail(0, EAGATE_ERR_FILE, "cannot open " + file_name + ", error " + IntegerToString(GetLastError()));
   ulong size = FileSize(handle);
   uint got = 0;
   if(size > 0)
      got = FileReadArray(handle, bytes, 0, (int)size);
   FileClose(handle);
   if(got != size)
      return Fail(0, EAGATE_ERR_FILE, "read " + IntegerToString(got) + " of the " + IntegerToString((long)size) + " bytes of " + file_name);
   return true;
  }

//+------------------------------------------------------------------+
//| Appends bytes to a file in MQL5\Files (start_over: empties it    |
//| first). Never relies on FileOpen truncating.                     |
//+------------------------------------------------------------------+
bool CEagateClient::AppendFile(const string file_name, const uchar &bytes[], const bool start_over)
  {
   if(start_over && FileIsExist(file_name) && !FileDelete(file_name))
      return Fail(0, EAGATE_ERR_FILE, "cannot delete " + file_name + ", error " + IntegerToString(GetLastError()));
   ResetLastError();
   int handle = FileOpen(file_name, FILE_READ | FILE_WRITE | FILE_BIN);
   if(handle == INVALID_HANDLE)
      return Fail(0, EAGATE_ERR_FILE, "cannot open " + file_name + " for writing, error " + IntegerToString(GetLastError()));
   bool ok = FileSeek(handle, 0, SEEK_END);
   uint written = 0;
   if(ok)
      written = FileWriteArray(handle, bytes, 0, ArraySize(bytes));
   FileClose(handle);
   if(!ok || written != (uint)ArraySize(bytes))
      return Fail(0, EAGATE_ERR_FILE, "wrote " + IntegerToString(written) + " of " + IntegerToString(ArraySize(bytes)) +
                  " bytes to " + file_name + ", error " + IntegerToString(GetLastError()));
   return true;
  }

//+------------------------------------------------------------------+
//| Downloads the deployment's bundle to file_name (in MQL5\Files) and |
//| checks its SHA-256. Bytes arrive in file_name + ".part", one     |
//| Range request of SetDownloadChunk() bytes at a time (WebRequest  |
//| keeps nothing of a broken transfer), so a failure loses at most  |
//| one chunk and a later call, even after a restart, resumes from   |
//| what was saved (If-Range: a changed file starts over). A file    |
//| already there with the right digest is not downloaded again.     |
//| Errors: digest-mismatch (the partial file is deleted: report     |
//| failed, or call again to start over), file-error, bad-response,  |
//| and the request errors. resumed_from: bytes already saved.       |
//+------------------------------------------------------------------+
bool CEagateClient::DownloadBundle(const EagateDeployment &deployment, const string file_name, long &resumed_from)
  {
   resumed_from = 0;
   string sha = deployment.bundle_sha256;
   StringToLower(sha);
   long size = deployment.bundle_size;
   if(!EagateIsValidUuid(deployment.bundle_id) || StringLen(sha) != 64 || size <= 0 || file_name == "")
      return Fail(0, EAGATE_ERR_INVALID_ARGUMENT, "DownloadBundle needs a deployment with its bundle's id, size and sha256, and a file name");
   uchar content[];
   if(FileIsExist(file_name) && FileBytes(file_name, content) && ArraySize(content) == size &&
      EagateSha256Hex(content) == sha)
     {
      resumed_from = size;
      m_code = "";
      m_detail = "";
      return true;
     }
   string part = file_name + ".part";
   long have = 0;
   if(FileIsExist(part))
     {
      if(!FileBytes(part, content))
         return false;
      have = ArraySize(content);
      if(have > size)
        {
         FileDelete(part);
         have = 0;
        }
     }
   ArrayResize(content, 0);
   resumed_from = have;
   string etag = "\"" + sha + "\"";
   string target = "/api/v1/device/bundles/" + deployment.bundle_id;
   bool empty_part = (have == 0);
   while(have < size)
     {
      long last = MathMin(size, have + m_chunk_bytes) - 1;
      string extra = "Range: bytes=" + IntegerToString(have) + "-" + IntegerToString(last) + "\r\n" +
                     "If-Range: " + etag + "\r\n";
      uchar chunk[];
      string headers = "";
      if(!Send("GET", target, "", extra, m_timeout_ms, chunk, headers))
         return false;
      string served = HeaderValue(headers, "ETag");
      StringToLower(served);
      if(served != "" && served != etag)
         return Fail(m_status, EAGATE_ERR_BAD_RESPONSE, "the server sent another file (ETag " + served + ", expected " + etag + ")");
      int n = ArraySize(chunk);
      if(m_status == 206)
        {
         string expected = "bytes " + IntegerToString(have) + "-";
         if(StringFind(HeaderValue(headers, "Content-Range"), expected) != 0 || n == 0 || have + n > size)
            return Fail(m_status, EAGATE_ERR_BAD_RESPONSE, "the server answered range " + HeaderValue(headers, "Content-Range") +
                        " to bytes=" + IntegerToString(have) + "-" + IntegerToString(last));
         if(!AppendFile(part, chunk, empty_part))
            return false;
         empty_part = false;
         have += n;
         continue;
        }
      if(m_status != 200)
         return Fail(m_status, EAGATE_ERR_BAD_RESPONSE, "a download answered HTTP " + IntegerToString(m_status));
      // The whole file (the server ignored the range): start over with it.
      if(!AppendFile(part, chunk, true))
         return false;
      have = n;
      resumed_from = 0;
      break;
     }
   if(!FileBytes(part, content))
      return false;
   string actual = EagateSha256Hex(content);
   if(ArraySize(content) != size || actual != sha)
     {
      FileDelete(part);
      return Fail(m_status, EAGATE_ERR_DIGEST_MISMATCH, "the downloaded " + IntegerToString(ArraySize(content)) + " bytes have SHA-256 " +
                  actual + ", the server announced " + IntegerToString(size) + " bytes with " + sha + "; the partial file was deleted");
     }
   if(!FileMove(part, 0, file_name, FILE_REWRITE))
      return Fail(0, EAGATE_ERR_FILE, "cannot rename " + part + " to " + file_name + ", error " + IntegerToString(GetLastError()));
   m_code = "";
   m_detail = "";
   return true;
  }

#endif
