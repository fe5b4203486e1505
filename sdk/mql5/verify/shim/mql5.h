// mql5.h — the MQL5 built-ins the eagate SDK uses, as C++, so the very
// same .mqh/.mq5 files (after the mechanical rewrite in mql5pp.py) compile
// and run on Linux. Force-included (-include mql5.h) before every program.
//
// Principles:
// - Only built-ins listed in builtins.txt exist here; check_builtins.py
//   keeps the MQL5 sources to that list, so nothing C++-only can hide in
//   them.
// - Where MetaTrader's behaviour is documented, follow it (strings are
//   UTF-16; StringToCharArray copies the terminating zero; WebRequest
//   returns the HTTP status or -1 and GetLastError()...).
// - Where it is not, or only one use is modelled, be stricter than
//   MetaTrader: abort with a message (out-of-range reads, CryptEncode of an
//   empty array, code pages other than CP_UTF8), or pick the behaviour that
//   breaks code relying on it (ArrayResize fills new numbers with garbage,
//   StringToCharArray never shrinks its destination).
#pragma once

#include <cfloat>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

static_assert(sizeof(long) == 8, "MQL5 long is 64 bits; build on an LP64 platform");

typedef unsigned char uchar;
typedef unsigned short ushort;
typedef unsigned int uint;
typedef unsigned long ulong;
typedef long datetime;
typedef unsigned int color;

namespace shim {
[[noreturn]] void fatal(const char *what);
}

// ---------------------------------------------------------------- string
// MQL5 strings are UTF-16. Literals reach here wrapped as string("...")
// by mql5pp.py (the constructor is explicit, so "text" + 1 cannot compile
// to pointer arithmetic).
class string {
public:
    std::u16string u;
    string() {}
    explicit string(const char *utf8);
    static string from_u16(std::u16string s) {
        string r;
        r.u = std::move(s);
        return r;
    }
    string &operator+=(const string &o) {
        u += o.u;
        return *this;
    }
    std::string utf8() const;
};
inline string operator+(const string &a, const string &b) {
    string r = a;
    r += b;
    return r;
}
inline bool operator==(const string &a, const string &b) { return a.u == b.u; }
inline bool operator!=(const string &a, const string &b) { return a.u != b.u; }
inline bool operator<(const string &a, const string &b) { return a.u < b.u; }
inline bool operator>(const string &a, const string &b) { return a.u > b.u; }
inline bool operator<=(const string &a, const string &b) { return a.u <= b.u; }
inline bool operator>=(const string &a, const string &b) { return a.u >= b.u; }

// ---------------------------------------------------------------- arrays
// `T name[]` (a dynamic array) becomes `MqlArray<T> name` in mql5pp.py.
template <class T> class MqlArray {
public:
    std::vector<T> v;
    MqlArray() {}
    MqlArray(const MqlArray &) = delete;  // MQL5 arrays cannot be assigned
    MqlArray &operator=(const MqlArray &) = delete;
    template <class I> T &operator[](I i) {
        check(static_cast<long>(i));
        return v[static_cast<size_t>(i)];
    }
    template <class I> const T &operator[](I i) const {
        check(static_cast<long>(i));
        return v[static_cast<size_t>(i)];
    }

private:
    void check(long i) const {
        if (i < 0 || i >= static_cast<long>(v.size())) {
            char msg[96];
            snprintf(msg, sizeof msg, "array out of range: index %ld, size %zu", i, v.size());
            shim::fatal(msg);
        }
    }
};

#define WHOLE_ARRAY (-1)

template <class T> int ArraySize(const MqlArray<T> &a) { return static_cast<int>(a.v.size()); }

// New elements of numeric arrays are unspecified in MQL5: fill them with
// garbage so code that forgets to initialise them fails here too.
template <class T> int ArrayResize(MqlArray<T> &a, int new_size, int reserve = 0) {
    (void)reserve;
    if (new_size < 0) return -1;
    size_t old = a.v.size();
    a.v.resize(static_cast<size_t>(new_size));
    if constexpr (std::is_arithmetic<T>::value) {
        for (size_t i = old; i < a.v.size(); i++) memset(&a.v[i], 0xA5, sizeof(T));
    }
    return new_size;
}

template <class T> void ArrayFree(MqlArray<T> &a) { a.v.clear(); }

// ---------------------------------------------------------------- constants
// LONG_MIN, LONG_MAX, INT_MAX...: from <climits>, with the values MQL5 gives them.
#define CP_ACP 0
#define CP_UTF8 65001
#define EMPTY_VALUE DBL_MAX
#define INIT_SUCCEEDED 0
#define INIT_FAILED 1
#define INIT_PARAMETERS_INCORRECT 32767

#define ERR_FUNCTION_NOT_ALLOWED 4014
#define ERR_WEBREQUEST_INVALID_ADDRESS 5200
#define ERR_WEBREQUEST_CONNECT_FAILED 5201
#define ERR_WEBREQUEST_TIMEOUT 5202
#define ERR_WEBREQUEST_REQUEST_FAILED 5203

enum ENUM_CRYPT_METHOD { CRYPT_BASE64 = 0, CRYPT_AES128 = 1, CRYPT_AES256 = 2, CRYPT_DES = 3, CRYPT_HASH_SHA1 = 4, CRYPT_HASH_SHA256 = 5, CRYPT_HASH_MD5 = 6, CRYPT_ARCH_ZIP = 7 };
enum ENUM_TERMINAL_INFO_INTEGER { TERMINAL_BUILD = 5 };
enum ENUM_MQL_INFO_INTEGER { MQL_TESTER = 6 };
enum ENUM_TERMINAL_INFO_STRING { TERMINAL_DATA_PATH = 3 };
enum ENUM_ACCOUNT_INFO_INTEGER { ACCOUNT_LOGIN = 0 };
enum ENUM_ACCOUNT_INFO_DOUBLE { ACCOUNT_BALANCE = 37, ACCOUNT_EQUITY = 40 };
enum ENUM_ACCOUNT_INFO_STRING { ACCOUNT_COMPANY = 4 };
enum ENUM_SYMBOL_INFO_INTEGER { SYMBOL_DIGITS = 17, SYMBOL_TRADE_MODE = 20 };
enum ENUM_SYMBOL_INFO_DOUBLE { SYMBOL_BID = 1, SYMBOL_ASK = 4, SYMBOL_POINT = 16, SYMBOL_VOLUME_MIN = 34, SYMBOL_VOLUME_MAX = 35, SYMBOL_VOLUME_STEP = 36, SYMBOL_TRADE_TICK_VALUE = 26, SYMBOL_TRADE_TICK_SIZE = 27 };
enum ENUM_SYMBOL_TRADE_MODE { SYMBOL_TRADE_MODE_DISABLED = 0, SYMBOL_TRADE_MODE_LONGONLY = 1, SYMBOL_TRADE_MODE_SHORTONLY = 2, SYMBOL_TRADE_MODE_CLOSEONLY = 3, SYMBOL_TRADE_MODE_FULL = 4 };
enum ENUM_ORDER_PROPERTY_INTEGER { ORDER_TICKET = 0, ORDER_TIME_SETUP = 1, ORDER_TYPE = 2, ORDER_STATE = 3, ORDER_MAGIC = 12 };
enum ENUM_ORDER_PROPERTY_DOUBLE { ORDER_VOLUME_INITIAL = 0, ORDER_PRICE_OPEN = 2 };
enum ENUM_ORDER_PROPERTY_STRING { ORDER_SYMBOL = 0, ORDER_COMMENT = 1 };
enum ENUM_DEAL_PROPERTY_INTEGER { DEAL_TICKET = 0, DEAL_ORDER = 1, DEAL_TIME = 2, DEAL_TYPE = 4, DEAL_ENTRY = 5, DEAL_MAGIC = 6, DEAL_POSITION_ID = 8 };
enum ENUM_DEAL_PROPERTY_DOUBLE { DEAL_VOLUME = 0, DEAL_PRICE = 1, DEAL_COMMISSION = 2, DEAL_SWAP = 3, DEAL_PROFIT = 4 };
enum ENUM_DEAL_ENTRY { DEAL_ENTRY_IN = 0, DEAL_ENTRY_OUT = 1, DEAL_ENTRY_INOUT = 2, DEAL_ENTRY_OUT_BY = 3 };
enum ENUM_POSITION_PROPERTY_INTEGER { POSITION_TICKET = 0, POSITION_TIME = 1, POSITION_TYPE = 2, POSITION_MAGIC = 3 };
enum ENUM_POSITION_PROPERTY_DOUBLE { POSITION_VOLUME = 0, POSITION_PRICE_OPEN = 1, POSITION_PROFIT = 5 };
enum ENUM_POSITION_PROPERTY_STRING { POSITION_SYMBOL = 0, POSITION_COMMENT = 1 };
enum ENUM_POSITION_TYPE { POSITION_TYPE_BUY = 0, POSITION_TYPE_SELL = 1 };
enum ENUM_DEAL_PROPERTY_STRING { DEAL_SYMBOL = 0, DEAL_COMMENT = 1 };
enum ENUM_ORDER_TYPE_TIME { ORDER_TIME_GTC = 0, ORDER_TIME_DAY = 1, ORDER_TIME_SPECIFIED = 2, ORDER_TIME_SPECIFIED_DAY = 3 };

#define TRADE_RETCODE_PLACED 10008
#define TRADE_RETCODE_DONE 10009
#define TRADE_RETCODE_DONE_PARTIAL 10010
#define TRADE_RETCODE_INVALID 10013
#define TRADE_RETCODE_INVALID_VOLUME 10014
#define TRADE_RETCODE_INVALID_PRICE 10015
#define TRADE_RETCODE_INVALID_STOPS 10016
#define TRADE_RETCODE_TIMEOUT 10012
#define TRADE_RETCODE_NO_MONEY 10019
#define TRADE_RETCODE_POSITION_CLOSED 10036

// ---------------------------------------------------------------- strings
int StringLen(const string &s);
string StringSubstr(const string &s, int start, int length = -1);
int StringFind(const string &s, const string &match, int start = 0);
ushort StringGetCharacter(const string &s, int pos);
bool StringToLower(string &s);
bool StringToUpper(string &s);
int StringTrimLeft(string &s);
int StringTrimRight(string &s);
int StringReplace(string &s, const string &find, const string &replacement);
int StringSplit(const string &s, ushort separator, MqlArray<string> &result);
string ShortToString(ushort c);
string IntegerToString(long number, int str_len = 0, ushort fill_symbol = ' ');
string DoubleToString(double value, int digits = 8);
long StringToInteger(const string &s);
double StringToDouble(const string &s);
int StringToCharArray(const string &text, MqlArray<uchar> &array, int start = 0, int count = -1, uint codepage = CP_ACP);
string CharArrayToString(const MqlArray<uchar> &array, int start = 0, int count = -1, uint codepage = CP_ACP);

// ---------------------------------------------------------------- math
template <class A, class B> auto MathMax(A a, B b) -> typename std::common_type<A, B>::type { return a > b ? a : b; }
template <class A, class B> auto MathMin(A a, B b) -> typename std::common_type<A, B>::type { return a < b ? a : b; }
template <class T> T MathAbs(T v) { return v < 0 ? -v : v; }
inline double MathPow(double base, double exponent) { return std::pow(base, exponent); }
inline double MathFloor(double v) { return std::floor(v); }
inline double MathRound(double v) { return std::round(v); }
inline bool MathIsValidNumber(double v) { return std::isfinite(v); }
int MathRand();
void MathSrand(uint seed);
double NormalizeDouble(double value, int digits);

// ---------------------------------------------------------------- time
datetime TimeGMT();
datetime TimeLocal();
datetime TimeCurrent();
uint GetTickCount();
ulong GetTickCount64();
ulong GetMicrosecondCount();

// ---------------------------------------------------------------- terminal
int GetLastError();
void ResetLastError();
void Sleep(int milliseconds);
bool IsStopped();
void ExpertRemove();
bool EventSetTimer(int seconds);
void EventKillTimer();
void SetReturnError(int ret_code);
int MQLInfoInteger(ENUM_MQL_INFO_INTEGER property);
long ChartID();
int TerminalInfoInteger(ENUM_TERMINAL_INFO_INTEGER property);
string TerminalInfoString(ENUM_TERMINAL_INFO_STRING property);
long AccountInfoInteger(ENUM_ACCOUNT_INFO_INTEGER property);
double AccountInfoDouble(ENUM_ACCOUNT_INFO_DOUBLE property);
string AccountInfoString(ENUM_ACCOUNT_INFO_STRING property);

namespace shim {
std::string print_arg(const string &s);
std::string print_arg(bool b);
template <class T> std::string print_arg(T v) {
    static_assert(!std::is_floating_point<T>::value, "shim: format doubles with DoubleToString before printing");
    static_assert(std::is_integral<T>::value || std::is_enum<T>::value, "shim: Print takes strings and integers");
    return std::to_string(static_cast<long long>(v));
}
void emit(const char *kind, const std::string &text);
}  // namespace shim

template <class... A> void Print(const A &...args) {
    std::string text;
    ((text += shim::print_arg(args)), ...);
    shim::emit("print", text);
}
template <class... A> void Alert(const A &...args) {
    std::string text;
    ((text += shim::print_arg(args)), ...);
    shim::emit("alert", text);
}
template <class... A> void Comment(const A &...args) {
    std::string text;
    ((text += shim::print_arg(args)), ...);
    shim::emit("comment", text);
}

// ---------------------------------------------------------------- crypto and network
int CryptEncode(ENUM_CRYPT_METHOD method, const MqlArray<uchar> &data, const MqlArray<uchar> &key, MqlArray<uchar> &result);
int WebRequest(const string &method, const string &url, const string &headers, int timeout,
               const MqlArray<char> &data, MqlArray<char> &result, string &result_headers);

// ---------------------------------------------------------------- files
// The terminal's sandbox MQL5\Files is the directory SHIM_FILES (default
// /tmp/eagate-shim-files). Binary files only; names are relative, "\" or
// "/" separated, without "..". SEEK_SET, SEEK_CUR and SEEK_END come from
// <cstdio> with MQL5's values (0, 1, 2).
static_assert(SEEK_SET == 0 && SEEK_CUR == 1 && SEEK_END == 2, "MQL5's ENUM_FILE_POSITION values");
#define INVALID_HANDLE (-1)
#define FILE_READ 1
#define FILE_WRITE 2
#define FILE_BIN 4
#define FILE_REWRITE 512
int FileOpen(const string &file_name, int open_flags, short delimiter = '\t', uint codepage = CP_ACP);
void FileClose(int file_handle);
ulong FileSize(int file_handle);
bool FileSeek(int file_handle, long offset, int origin);
uint FileWriteArray(int file_handle, const MqlArray<uchar> &array, int start = 0, int count = WHOLE_ARRAY);
uint FileReadArray(int file_handle, MqlArray<uchar> &array, int start = 0, int count = WHOLE_ARRAY);
bool FileIsExist(const string &file_name, int common_flag = 0);
bool FileDelete(const string &file_name, int common_flag = 0);
bool FileMove(const string &src_file_name, int common_flag, const string &dst_file_name, int mode_flags);

// ---------------------------------------------------------------- symbols, orders, history
bool SymbolSelect(const string &name, bool select);
long SymbolInfoInteger(const string &name, ENUM_SYMBOL_INFO_INTEGER property);
double SymbolInfoDouble(const string &name, ENUM_SYMBOL_INFO_DOUBLE property);
int OrdersTotal();
ulong OrderGetTicket(int index);
long OrderGetInteger(ENUM_ORDER_PROPERTY_INTEGER property);
string OrderGetString(ENUM_ORDER_PROPERTY_STRING property);
bool HistorySelect(datetime from_date, datetime to_date);
int HistoryOrdersTotal();
ulong HistoryOrderGetTicket(int index);
long HistoryOrderGetInteger(ulong ticket, ENUM_ORDER_PROPERTY_INTEGER property);
string HistoryOrderGetString(ulong ticket, ENUM_ORDER_PROPERTY_STRING property);
int HistoryDealsTotal();
ulong HistoryDealGetTicket(int index);
long HistoryDealGetInteger(ulong ticket, ENUM_DEAL_PROPERTY_INTEGER property);
double HistoryDealGetDouble(ulong ticket, ENUM_DEAL_PROPERTY_DOUBLE property);
int PositionsTotal();
ulong PositionGetTicket(int index);
long PositionGetInteger(ENUM_POSITION_PROPERTY_INTEGER property);
double PositionGetDouble(ENUM_POSITION_PROPERTY_DOUBLE property);
string PositionGetString(ENUM_POSITION_PROPERTY_STRING property);
datetime GlobalVariableSet(const string &name, double value);
double GlobalVariableGet(const string &name);
bool GlobalVariableCheck(const string &name);
void GlobalVariablesFlush();

// ---------------------------------------------------------------- shim internals
namespace shim {
// Inputs: `input T name = value;` becomes
// `const T name = ShimInput<T>("name", value);`; the environment variable
// MQL5_INPUT_<name> overrides the default.
const char *input_env(const char *name);
string parse_string_input(const char *raw);
template <class T, class D> T ShimInputImpl(const char *name, const D &fallback) {
    const char *raw = input_env(name);
    if (!raw) return static_cast<T>(fallback);
    if constexpr (std::is_same<T, string>::value) {
        return parse_string_input(raw);
    } else if constexpr (std::is_same<T, bool>::value) {
        return strcmp(raw, "true") == 0 || strcmp(raw, "1") == 0;
    } else if constexpr (std::is_floating_point<T>::value) {
        return static_cast<T>(strtod(raw, nullptr));
    } else {
        return static_cast<T>(strtoll(raw, nullptr, 10));
    }
}

struct TradeResult {
    uint retcode = 0;
    ulong order = 0;
    ulong deal = 0;
    double price = 0;
    double volume = 0;
};
// kind: 0 buy, 1 sell, 2 buy limit, 3 sell limit, 4 buy stop, 5 sell stop
TradeResult trade(int kind, double volume, const string &symbol, double price, double sl, double tp,
                  ulong magic, const string &comment);
TradeResult close_position(ulong ticket, ulong magic);

string retcode_description(uint retcode);
}  // namespace shim

template <class T, class D> T ShimInput(const char *name, const D &fallback) {
    return shim::ShimInputImpl<T>(name, fallback);
}
