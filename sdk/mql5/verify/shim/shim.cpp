// The MQL5 built-ins declared in mql5.h, for Linux: strings are UTF-16,
// CryptEncode is OpenSSL's SHA-256, WebRequest is libcurl, the trading
// account is a small simulation persisted in a file so that an EA can be
// "restarted" (run again as a new process) against the same account.
//
// Environment (all optional):
//   SHIM_ALLOWED_URLS     comma-separated URL prefixes WebRequest may reach
//                         (MetaTrader's Allow WebRequest list; default none)
//   SHIM_CLOCK_SKEW       seconds added to the terminal's clock (TimeGMT, TimeLocal)
//   SHIM_STATE            file holding the simulated account between runs
//   SHIM_TRACE            file receiving one JSON line per WebRequest
//   SHIM_FAIL_PATH        URL path whose requests fail without being sent...
//   SHIM_FAIL_COUNT       ...this many times (error 5203)
//   SHIM_FORGET_GLOBALS   1: start with no terminal global variables
//   SHIM_HIDE_HEADERS     comma-separated response headers WebRequest does
//                         not pass on (e.g. "date", to test the other way
//                         of learning the server's clock)
//   SHIM_BROKER           the account's company (ACCOUNT_COMPANY), UTF-8
//   SHIM_FILES            the terminal's MQL5\Files folder (FileOpen...;
//                         default /tmp/eagate-shim-files)
//   SHIM_CUT_PATH         URL path prefix whose answers are lost mid-transfer
//                         (sent and answered, then error 5203, no data)...
//   SHIM_CUT_SKIP         ...after this many such requests went through...
//   SHIM_CUT_COUNT        ...this many times
//   SHIM_CORRUPT_PATH     URL path prefix whose next SHIM_CORRUPT_COUNT
//                         successful answers arrive with their first byte
//                         flipped (a corrupted download)
//   SHIM_TRADE_RETCODE    every trade request is carried out but answered
//                         with this retcode and no ticket (e.g. 10012, a
//                         timeout: the EA cannot know what happened)
//   MQL5_INPUT_<name>     value of the program's input <name>
#include "mql5.h"
#include "shim_internal.h"

#include <curl/curl.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/evp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

namespace {

std::mutex g_out;
int g_last_error = 0;
std::atomic<bool> g_stop{false};
std::string g_stop_reason;
bool g_removed = false;
int g_timer = 0;
int g_return_code = 0;
long g_skew = 0;
uint g_rand = 1;
std::vector<std::string> g_allowed;
std::string g_fail_path;
std::vector<std::string> g_hidden;
int g_fail_count = 0;
std::string g_trace_path;
std::string g_state_path;
int g_acks_ok = 0;
std::string g_cut_path, g_corrupt_path;
int g_cut_skip = 0, g_cut_count = 0, g_corrupt_count = 0;
std::string g_files_dir;
std::map<int, FILE *> g_files;
int g_next_handle = 1;
const auto g_start = std::chrono::steady_clock::now();

std::string env(const char *name, const char *fallback = "") {
    const char *v = getenv(name);
    return v ? v : fallback;
}

// ------------------------------------------------------------ UTF-8 / UTF-16
std::u16string utf8_to_u16(const std::string &s, bool strict) {
    std::u16string out;
    size_t i = 0;
    while (i < s.size()) {
        unsigned char c = s[i];
        uint32_t cp = 0xFFFD;
        size_t len = 1;
        if (c < 0x80) {
            cp = c;
        } else {
            int extra = (c >= 0xF0 && c <= 0xF4) ? 3 : (c >= 0xE0 && c <= 0xEF) ? 2 : (c >= 0xC2 && c <= 0xDF) ? 1 : -1;
            bool ok = extra > 0 && i + static_cast<size_t>(extra) < s.size();
            if (ok) {
                uint32_t v = c & (0x3F >> extra);
                for (int k = 1; k <= extra; k++) {
                    unsigned char cc = s[i + k];
                    if ((cc & 0xC0) != 0x80) {
                        ok = false;
                        break;
                    }
                    v = (v << 6) | (cc & 0x3F);
                }
                if (ok && ((extra == 2 && v < 0x800) || (extra == 3 && (v < 0x10000 || v > 0x10FFFF)) ||
                           (v >= 0xD800 && v <= 0xDFFF)))
                    ok = false;
                if (ok) {
                    cp = v;
                    len = static_cast<size_t>(extra) + 1;
                }
            }
            if (!ok && strict) shim::fatal("invalid UTF-8 in a string literal");
        }
        if (cp >= 0x10000) {
            cp -= 0x10000;
            out += static_cast<char16_t>(0xD800 + (cp >> 10));
            out += static_cast<char16_t>(0xDC00 + (cp & 0x3FF));
        } else {
            out += static_cast<char16_t>(cp);
        }
        i += len;
    }
    return out;
}

// Windows' WideCharToMultiByte(CP_UTF8) replaces lone surrogates with U+FFFD.
std::string u16_to_utf8(const std::u16string &s) {
    std::string out;
    for (size_t i = 0; i < s.size(); i++) {
        uint32_t cp = s[i];
        if (cp >= 0xD800 && cp <= 0xDBFF && i + 1 < s.size() && s[i + 1] >= 0xDC00 && s[i + 1] <= 0xDFFF) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (s[i + 1] - 0xDC00);
            i++;
        } else if (cp >= 0xD800 && cp <= 0xDFFF) {
            cp = 0xFFFD;
        }
        if (cp < 0x80) {
            out += static_cast<char>(cp);
        } else if (cp < 0x800) {
            out += static_cast<char>(0xC0 | (cp >> 6));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            out += static_cast<char>(0xE0 | (cp >> 12));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        } else {
            out += static_cast<char>(0xF0 | (cp >> 18));
            out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        }
    }
    return out;
}

std::string json_escape(const std::string &s) {
    std::string out;
    for (unsigned char c : s) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c < 0x20) {
            char buf[8];
            snprintf(buf, sizeof buf, "\\u%04x", c);
            out += buf;
        } else {
            out += static_cast<char>(c);
        }
    }
    return out;
}

std::vector<std::string> split_list(const std::string &text) {
    std::vector<std::string> out;
    std::string cur;
    for (char c : text + ",") {
        if (c == ',') {
            if (!cur.empty()) out.push_back(cur);
            cur.clear();
        } else {
            cur += c;
        }
    }
    return out;
}

std::string without_headers(const std::string &headers, const std::vector<std::string> &hidden) {
    std::istringstream in(headers);
    std::string line, out;
    while (std::getline(in, line)) {
        auto colon = line.find(':');
        bool hide = false;
        for (const auto &h : hidden)
            if (colon == h.size() && strncasecmp(line.c_str(), h.c_str(), h.size()) == 0) hide = true;
        if (!hide) out += line + "\n";
    }
    return out;
}

bool is_space(char16_t c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// ------------------------------------------------------------ simulated account
struct Order {
    ulong ticket = 0;
    bool active = false;
    int type = 0;
    std::string symbol;
    double volume = 0, price = 0, sl = 0, tp = 0;
    ulong magic = 0;
    long time = 0;
    std::string comment;
};
struct Deal {
    ulong ticket = 0, order = 0;
    int type = 0;
    std::string symbol;
    double volume = 0, price = 0;
    ulong magic = 0;
    long time = 0;
    std::string comment;
    int entry = 0;  // DEAL_ENTRY_IN 0, DEAL_ENTRY_OUT 1
    double profit = 0;
    ulong position = 0;
};
// A hedging account: every market order opens its own position, whose
// ticket is the order's.
struct Position {
    ulong ticket = 0;
    int type = 0;  // POSITION_TYPE_BUY 0, POSITION_TYPE_SELL 1
    std::string symbol;
    double volume = 0, price = 0, sl = 0, tp = 0;
    ulong magic = 0;
    long time = 0;
    std::string comment;
};
struct Symbol {
    int digits;
    double bid, ask, vmin, vmax, vstep;
};
const std::map<std::string, Symbol> kSymbols = {
    {"EURUSD", {5, 1.08500, 1.08512, 0.01, 100.0, 0.01}},
    {"USDJPY", {3, 151.230, 151.245, 0.01, 100.0, 0.01}},
    {"XAUUSD", {2, 2321.10, 2321.45, 0.01, 50.0, 0.01}},
};
// Orders above this many lots exceed the simulated free margin.
const double kMarginLots = 20.0;

ulong g_next_ticket = 1000;
std::vector<Order> g_orders;
std::vector<Deal> g_deals;
std::vector<Position> g_positions;
long g_selected_position = -1;
std::map<std::string, double> g_globals;
long g_selected_order = -1;
std::vector<size_t> g_hist_orders, g_hist_deals;

void save_state() {
    if (g_state_path.empty()) return;
    std::ofstream f(g_state_path + ".tmp");
    char buf[64];
    f << "next_ticket\t" << g_next_ticket << "\n";
    for (const auto &o : g_orders) {
        f << "order\t" << o.ticket << "\t" << (o.active ? 1 : 0) << "\t" << o.type << "\t" << o.symbol;
        for (double d : {o.volume, o.price, o.sl, o.tp}) {
            snprintf(buf, sizeof buf, "%.17g", d);
            f << "\t" << buf;
        }
        f << "\t" << o.magic << "\t" << o.time << "\t" << o.comment << "\n";
    }
    for (const auto &d : g_deals) {
        f << "deal\t" << d.ticket << "\t" << d.order << "\t" << d.type << "\t" << d.symbol;
        for (double x : {d.volume, d.price}) {
            snprintf(buf, sizeof buf, "%.17g", x);
            f << "\t" << buf;
        }
        snprintf(buf, sizeof buf, "%.17g", d.profit);
        f << "\t" << d.magic << "\t" << d.time << "\t" << d.comment << "\t" << d.entry << "\t" << buf << "\t"
          << d.position << "\n";
    }
    for (const auto &p : g_positions) {
        f << "position\t" << p.ticket << "\t" << p.type << "\t" << p.symbol;
        for (double d : {p.volume, p.price, p.sl, p.tp}) {
            snprintf(buf, sizeof buf, "%.17g", d);
            f << "\t" << buf;
        }
        f << "\t" << p.magic << "\t" << p.time << "\t" << p.comment << "\n";
    }
    for (const auto &g : g_globals) {
        snprintf(buf, sizeof buf, "%.17g", g.second);
        f << "gv\t" << g.first << "\t" << buf << "\n";
    }
    f.close();
    if (rename((g_state_path + ".tmp").c_str(), g_state_path.c_str()) != 0) shim::fatal("cannot write SHIM_STATE");
}

std::vector<std::string> split_tabs(const std::string &line) {
    std::vector<std::string> parts;
    std::string cur;
    for (char c : line) {
        if (c == '\t') {
            parts.push_back(cur);
            cur.clear();
        } else {
            cur += c;
        }
    }
    parts.push_back(cur);
    return parts;
}

void load_state() {
    if (g_state_path.empty()) return;
    std::ifstream f(g_state_path);
    std::string line;
    while (std::getline(f, line)) {
        auto p = split_tabs(line);
        if (p[0] == "next_ticket" && p.size() == 2) {
            g_next_ticket = std::stoul(p[1]);
        } else if (p[0] == "order" && p.size() == 12) {
            Order o;
            o.ticket = std::stoul(p[1]);
            o.active = p[2] == "1";
            o.type = std::stoi(p[3]);
            o.symbol = p[4];
            o.volume = std::stod(p[5]);
            o.price = std::stod(p[6]);
            o.sl = std::stod(p[7]);
            o.tp = std::stod(p[8]);
            o.magic = std::stoul(p[9]);
            o.time = std::stol(p[10]);
            o.comment = p[11];
            g_orders.push_back(o);
        } else if (p[0] == "deal" && (p.size() == 10 || p.size() == 13)) {
            Deal d;
            d.ticket = std::stoul(p[1]);
            d.order = std::stoul(p[2]);
            d.type = std::stoi(p[3]);
            d.symbol = p[4];
            d.volume = std::stod(p[5]);
            d.price = std::stod(p[6]);
            d.magic = std::stoul(p[7]);
            d.time = std::stol(p[8]);
            d.comment = p[9];
            if (p.size() == 13) {
                d.entry = std::stoi(p[10]);
                d.profit = std::stod(p[11]);
                d.position = std::stoul(p[12]);
            }
            g_deals.push_back(d);
        } else if (p[0] == "position" && p.size() == 11) {
            Position q;
            q.ticket = std::stoul(p[1]);
            q.type = std::stoi(p[2]);
            q.symbol = p[3];
            q.volume = std::stod(p[4]);
            q.price = std::stod(p[5]);
            q.sl = std::stod(p[6]);
            q.tp = std::stod(p[7]);
            q.magic = std::stoul(p[8]);
            q.time = std::stol(p[9]);
            q.comment = p[10];
            g_positions.push_back(q);
        } else if (p[0] == "gv" && p.size() == 3) {
            g_globals[p[1]] = std::stod(p[2]);
        } else if (!line.empty()) {
            shim::fatal("SHIM_STATE has an unreadable line");
        }
    }
    if (env("SHIM_FORGET_GLOBALS") == "1") {
        g_globals.clear();
        save_state();
    }
}

const Symbol *find_symbol(const std::string &name) {
    auto it = kSymbols.find(name);
    return it == kSymbols.end() ? nullptr : &it->second;
}

const Order *order_by_ticket(ulong ticket) {
    for (const auto &o : g_orders)
        if (o.ticket == ticket) return &o;
    return nullptr;
}
const Deal *deal_by_ticket(ulong ticket) {
    for (const auto &d : g_deals)
        if (d.ticket == ticket) return &d;
    return nullptr;
}

// ------------------------------------------------------------ HTTP
size_t on_body(char *ptr, size_t size, size_t n, void *user) {
    static_cast<std::string *>(user)->append(ptr, size * n);
    return size * n;
}
size_t on_header(char *ptr, size_t size, size_t n, void *user) {
    auto *h = static_cast<std::string *>(user);
    std::string line(ptr, size * n);
    // A new status line (after 100 Continue or a redirect) starts over.
    if (line.rfind("HTTP/", 0) == 0) h->clear();
    *h += line;
    return size * n;
}

std::string header_of(const std::string &headers, const std::string &name) {
    std::istringstream in(headers);
    std::string line;
    while (std::getline(in, line)) {
        auto colon = line.find(':');
        if (colon == std::string::npos) continue;
        std::string key = line.substr(0, colon);
        bool same = key.size() == name.size();
        for (size_t i = 0; same && i < key.size(); i++) same = tolower(key[i]) == tolower(name[i]);
        if (!same) continue;
        std::string v = line.substr(colon + 1);
        while (!v.empty() && (v.front() == ' ')) v.erase(0, 1);
        while (!v.empty() && (v.back() == '\r' || v.back() == ' ')) v.pop_back();
        return v;
    }
    return "";
}

void trace(const std::string &method, const std::string &url, const std::string &req_headers, int status,
           int error, const std::string &body_in, const std::string &answer_headers = "") {
    if (g_trace_path.empty()) return;
    std::string body = body_in;
    // A file is traced by its size (the trace is JSON text).
    if (header_of(answer_headers, "Content-Type").rfind("application/octet-stream", 0) == 0)
        body = "(" + std::to_string(body_in.size()) + " bytes)";
    std::ofstream f(g_trace_path, std::ios::app);
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    f << "{\"at_ms\":" << ms << ",\"method\":\"" << json_escape(method) << "\",\"url\":\"" << json_escape(url)
      << "\",\"timestamp\":\"" << json_escape(header_of(req_headers, "X-Timestamp")) << "\",\"nonce\":\""
      << json_escape(header_of(req_headers, "X-Nonce")) << "\",\"content_type\":\""
      << json_escape(header_of(req_headers, "Content-Type")) << "\",\"status\":" << status
      << ",\"error\":" << error << ",\"range\":\"" << json_escape(header_of(req_headers, "Range"))
      << "\",\"content_range\":\"" << json_escape(header_of(answer_headers, "Content-Range"))
      << "\",\"body\":\"" << json_escape(body.substr(0, 4000)) << "\"}\n";
}

std::string url_path(const std::string &url) {
    auto scheme = url.find("://");
    auto slash = url.find('/', scheme == std::string::npos ? 0 : scheme + 3);
    if (slash == std::string::npos) return "/";
    auto q = url.find('?', slash);
    return url.substr(slash, q == std::string::npos ? std::string::npos : q - slash);
}

}  // namespace

// ================================================================ shim API
namespace shim {

void fatal(const char *what) {
    fflush(stdout);
    fprintf(stderr, "shim: FATAL: %s\n", what);
    fflush(stderr);
    _exit(70);
}

void emit(const char *kind, const std::string &text) {
    std::lock_guard<std::mutex> lock(g_out);
    if (strcmp(kind, "print") == 0)
        printf("%s\n", text.c_str());
    else if (strcmp(kind, "alert") == 0)
        printf("ALERT: %s\n", text.c_str());
    else
        printf("COMMENT: %s\n", text.c_str());
    fflush(stdout);
}

std::string print_arg(const string &s) { return s.utf8(); }
std::string print_arg(bool b) { return b ? "true" : "false"; }

const char *input_env(const char *name) {
    std::string key = std::string("MQL5_INPUT_") + name;
    return getenv(key.c_str());
}
string parse_string_input(const char *raw) { return string::from_u16(utf8_to_u16(raw, false)); }

void start() {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    g_skew = strtol(env("SHIM_CLOCK_SKEW", "0").c_str(), nullptr, 10);
    g_allowed = split_list(env("SHIM_ALLOWED_URLS"));
    g_hidden = split_list(env("SHIM_HIDE_HEADERS"));
    g_fail_path = env("SHIM_FAIL_PATH");
    g_fail_count = atoi(env("SHIM_FAIL_COUNT", "0").c_str());
    g_trace_path = env("SHIM_TRACE");
    g_state_path = env("SHIM_STATE");
    g_cut_path = env("SHIM_CUT_PATH");
    g_cut_skip = atoi(env("SHIM_CUT_SKIP", "0").c_str());
    g_cut_count = atoi(env("SHIM_CUT_COUNT", "0").c_str());
    g_corrupt_path = env("SHIM_CORRUPT_PATH");
    g_corrupt_count = atoi(env("SHIM_CORRUPT_COUNT", "0").c_str());
    g_files_dir = env("SHIM_FILES", "/tmp/eagate-shim-files");
    load_state();
}

int timer_period() { return g_timer; }
bool stop_requested() { return g_stop.load(); }
void request_stop(const char *why) {
    if (!g_stop.exchange(true)) g_stop_reason = why;
}
const std::string &stop_reason() { return g_stop_reason; }
bool expert_removed() { return g_removed; }
int acks_ok() { return g_acks_ok; }
int return_code() { return g_return_code; }

// SHIM_TRADE_RETCODE: the request was carried out, the answer says otherwise.
TradeResult injected(TradeResult r) {
    const char *code = getenv("SHIM_TRADE_RETCODE");
    if (code && *code && (r.retcode == TRADE_RETCODE_DONE || r.retcode == TRADE_RETCODE_PLACED)) {
        TradeResult lost;
        lost.retcode = static_cast<uint>(atoi(code));
        return lost;
    }
    return r;
}

TradeResult trade(int kind, double volume, const string &symbol_name, double price, double sl, double tp,
                  ulong magic, const string &comment_in) {
    TradeResult r;
    std::string name = symbol_name.utf8();
    const Symbol *s = find_symbol(name);
    if (!s) {
        r.retcode = TRADE_RETCODE_INVALID;
        return r;
    }
    double steps = volume / s->vstep;
    if (volume < s->vmin - 1e-9 || volume > s->vmax + 1e-9 || std::fabs(steps - std::round(steps)) > 1e-7) {
        r.retcode = TRADE_RETCODE_INVALID_VOLUME;
        return r;
    }
    if (volume > kMarginLots + 1e-9) {
        r.retcode = TRADE_RETCODE_NO_MONEY;
        return r;
    }
    bool buy = kind == 0 || kind == 2 || kind == 4;
    double market = buy ? s->ask : s->bid;
    double open = kind <= 1 ? market : price;
    if (kind == 2 && !(price < s->ask)) r.retcode = TRADE_RETCODE_INVALID_PRICE;
    if (kind == 3 && !(price > s->bid)) r.retcode = TRADE_RETCODE_INVALID_PRICE;
    if (kind == 4 && !(price > s->ask)) r.retcode = TRADE_RETCODE_INVALID_PRICE;
    if (kind == 5 && !(price < s->bid)) r.retcode = TRADE_RETCODE_INVALID_PRICE;
    if (kind >= 2 && price <= 0) r.retcode = TRADE_RETCODE_INVALID_PRICE;
    if (r.retcode) return r;
    if ((sl > 0 && (buy ? sl >= open : sl <= open)) || (tp > 0 && (buy ? tp <= open : tp >= open))) {
        r.retcode = TRADE_RETCODE_INVALID_STOPS;
        return r;
    }
    std::string comment = comment_in.utf8();
    // The trade server keeps at most 31 characters of a comment.
    if (comment.size() > 31) comment.resize(31);
    Order o;
    o.ticket = g_next_ticket++;
    o.active = kind >= 2;
    o.type = kind;
    o.symbol = name;
    o.volume = volume;
    o.price = open;
    o.sl = sl;
    o.tp = tp;
    o.magic = magic;
    o.time = static_cast<long>(TimeCurrent());
    o.comment = comment;
    g_orders.push_back(o);
    r.order = o.ticket;
    r.volume = volume;
    if (kind <= 1) {
        Deal d;
        d.ticket = g_next_ticket++;
        d.order = o.ticket;
        d.type = kind;
        d.symbol = name;
        d.volume = volume;
        d.price = market;
        d.magic = magic;
        d.time = o.time;
        d.comment = comment;
        d.entry = 0;
        d.position = o.ticket;
        g_deals.push_back(d);
        Position q;
        q.ticket = o.ticket;
        q.type = kind;
        q.symbol = name;
        q.volume = volume;
        q.price = market;
        q.sl = sl;
        q.tp = tp;
        q.magic = magic;
        q.time = o.time;
        q.comment = comment;
        g_positions.push_back(q);
        r.deal = d.ticket;
        r.price = market;
        r.retcode = TRADE_RETCODE_DONE;
    } else {
        r.retcode = TRADE_RETCODE_PLACED;
    }
    save_state();
    return injected(r);
}

// The profit of a position at a price: one tick (one point) is worth 1 per lot.
double position_profit(const Position &q, double price) {
    const Symbol *s = find_symbol(q.symbol);
    double point = std::pow(10.0, -(s ? s->digits : 5));
    double diff = q.type == 0 ? price - q.price : q.price - price;
    return std::round(diff / point * q.volume * 100.0) / 100.0;
}

TradeResult close_position(ulong ticket, ulong magic) {
    TradeResult r;
    size_t at = g_positions.size();
    for (size_t i = 0; i < g_positions.size(); i++)
        if (g_positions[i].ticket == ticket) at = i;
    if (at == g_positions.size()) {
        r.retcode = TRADE_RETCODE_POSITION_CLOSED;
        return r;
    }
    Position q = g_positions[at];
    const Symbol *s = find_symbol(q.symbol);
    double price = q.type == 0 ? s->bid : s->ask;
    Order o;
    o.ticket = g_next_ticket++;
    o.active = false;
    o.type = q.type == 0 ? 1 : 0;
    o.symbol = q.symbol;
    o.volume = q.volume;
    o.price = price;
    o.magic = magic;
    o.time = static_cast<long>(TimeCurrent());
    g_orders.push_back(o);
    Deal d;
    d.ticket = g_next_ticket++;
    d.order = o.ticket;
    d.type = o.type;
    d.symbol = q.symbol;
    d.volume = q.volume;
    d.price = price;
    d.magic = magic;
    d.time = o.time;
    d.entry = 1;
    d.profit = position_profit(q, price);
    d.position = q.ticket;
    g_deals.push_back(d);
    g_positions.erase(g_positions.begin() + static_cast<long>(at));
    r.retcode = TRADE_RETCODE_DONE;
    r.order = o.ticket;
    r.deal = d.ticket;
    r.price = price;
    r.volume = q.volume;
    save_state();
    return injected(r);
}

string retcode_description(uint retcode) {
    const char *text = "unknown retcode";
    switch (retcode) {
    case TRADE_RETCODE_PLACED: text = "order placed"; break;
    case TRADE_RETCODE_DONE: text = "request completed"; break;
    case TRADE_RETCODE_INVALID: text = "invalid request"; break;
    case TRADE_RETCODE_INVALID_VOLUME: text = "invalid volume in the request"; break;
    case TRADE_RETCODE_INVALID_PRICE: text = "invalid price in the request"; break;
    case TRADE_RETCODE_INVALID_STOPS: text = "invalid stops in the request"; break;
    case TRADE_RETCODE_NO_MONEY: text = "there is not enough money to complete the request"; break;
    case TRADE_RETCODE_TIMEOUT: text = "request canceled by timeout"; break;
    case TRADE_RETCODE_POSITION_CLOSED: text = "position with the specified identifier has already been closed"; break;
    }
    return string(text);
}

}  // namespace shim

// ================================================================ strings
string::string(const char *utf8) {
    if (utf8) u = utf8_to_u16(utf8, true);
}
std::string string::utf8() const { return u16_to_utf8(u); }

int StringLen(const string &s) { return static_cast<int>(s.u.size()); }

string StringSubstr(const string &s, int start, int length) {
    int n = StringLen(s);
    if (start < 0 || start > n) shim::fatal("StringSubstr: start out of range");
    if (length < 0 || start + length > n) length = n - start;
    return string::from_u16(s.u.substr(static_cast<size_t>(start), static_cast<size_t>(length)));
}

int StringFind(const string &s, const string &match, int start) {
    if (match.u.empty()) shim::fatal("StringFind: empty pattern (not modelled)");
    if (start < 0 || start > StringLen(s)) shim::fatal("StringFind: start out of range");
    auto at = s.u.find(match.u, static_cast<size_t>(start));
    return at == std::u16string::npos ? -1 : static_cast<int>(at);
}

ushort StringGetCharacter(const string &s, int pos) {
    if (pos < 0 || pos >= StringLen(s)) shim::fatal("StringGetCharacter: position out of range");
    return s.u[static_cast<size_t>(pos)];
}

bool StringToLower(string &s) {
    for (auto &c : s.u)
        if (c >= 'A' && c <= 'Z') c = static_cast<char16_t>(c + 32);
    return true;
}
bool StringToUpper(string &s) {
    for (auto &c : s.u)
        if (c >= 'a' && c <= 'z') c = static_cast<char16_t>(c - 32);
    return true;
}
int StringTrimLeft(string &s) {
    size_t i = 0;
    while (i < s.u.size() && is_space(s.u[i])) i++;
    s.u.erase(0, i);
    return static_cast<int>(i);
}
int StringTrimRight(string &s) {
    size_t n = s.u.size();
    while (!s.u.empty() && is_space(s.u.back())) s.u.pop_back();
    return static_cast<int>(n - s.u.size());
}
int StringReplace(string &s, const string &find, const string &replacement) {
    if (find.u.empty()) return -1;
    int count = 0;
    size_t at = 0;
    while ((at = s.u.find(find.u, at)) != std::u16string::npos) {
        s.u.replace(at, find.u.size(), replacement.u);
        at += replacement.u.size();
        count++;
    }
    return count;
}
int StringSplit(const string &s, ushort separator, MqlArray<string> &result) {
    result.v.clear();
    if (s.u.empty()) return 0;
    std::u16string cur;
    for (char16_t c : s.u) {
        if (c == separator) {
            result.v.push_back(string::from_u16(cur));
            cur.clear();
        } else {
            cur += c;
        }
    }
    result.v.push_back(string::from_u16(cur));
    return static_cast<int>(result.v.size());
}
string ShortToString(ushort c) {
    if (c == 0) return string();
    return string::from_u16(std::u16string(1, static_cast<char16_t>(c)));
}
string IntegerToString(long number, int str_len, ushort fill_symbol) {
    std::string digits = std::to_string(number);
    std::u16string out(digits.begin(), digits.end());
    while (static_cast<int>(out.size()) < str_len) out.insert(out.begin(), static_cast<char16_t>(fill_symbol));
    return string::from_u16(out);
}
string DoubleToString(double value, int digits) {
    if (digits < 0 || digits > 16) shim::fatal("DoubleToString: only 0-16 digits are modelled");
    char buf[512];
    snprintf(buf, sizeof buf, "%.*f", digits, value);
    return string::from_u16(utf8_to_u16(buf, true));
}
long StringToInteger(const string &s) { return strtol(s.utf8().c_str(), nullptr, 10); }
double StringToDouble(const string &s) { return strtod(s.utf8().c_str(), nullptr); }

int StringToCharArray(const string &text, MqlArray<uchar> &array, int start, int count, uint codepage) {
    if (start != 0 || count != -1 || codepage != CP_UTF8)
        shim::fatal("StringToCharArray: only start=0, count=-1, CP_UTF8 is modelled");
    std::string bytes = u16_to_utf8(text.u);
    size_t needed = bytes.size() + 1;  // MetaTrader copies the terminating zero too
    if (array.v.size() < needed) array.v.resize(needed);
    for (size_t i = 0; i < bytes.size(); i++) array.v[i] = static_cast<uchar>(bytes[i]);
    array.v[bytes.size()] = 0;
    return static_cast<int>(needed);
}

string CharArrayToString(const MqlArray<uchar> &array, int start, int count, uint codepage) {
    if (codepage != CP_UTF8) shim::fatal("CharArrayToString: only CP_UTF8 is modelled");
    int n = ArraySize(array);
    if (start < 0 || start > n) shim::fatal("CharArrayToString: start out of range");
    if (count < 0 || start + count > n) count = n - start;
    std::string bytes;
    for (int i = start; i < start + count && array.v[static_cast<size_t>(i)] != 0; i++)
        bytes += static_cast<char>(array.v[static_cast<size_t>(i)]);
    return string::from_u16(utf8_to_u16(bytes, false));
}

// ================================================================ math and time
int MathRand() {
    g_rand = g_rand * 214013u + 2531011u;
    return static_cast<int>((g_rand >> 16) & 0x7FFF);
}
void MathSrand(uint seed) { g_rand = seed; }
double NormalizeDouble(double value, int digits) {
    double scale = std::pow(10.0, digits);
    return std::round(value * scale) / scale;
}

datetime TimeGMT() { return static_cast<datetime>(time(nullptr)) + g_skew; }
datetime TimeLocal() { return TimeGMT(); }
// The trade server's clock: correct, but in the broker's time zone (UTC+2).
datetime TimeCurrent() { return static_cast<datetime>(time(nullptr)) + 7200; }
uint GetTickCount() { return static_cast<uint>(GetTickCount64()); }
ulong GetTickCount64() {
    return static_cast<ulong>(std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch()).count());
}
ulong GetMicrosecondCount() {
    return static_cast<ulong>(std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - g_start).count());
}

// ================================================================ terminal
int GetLastError() { return g_last_error; }
void ResetLastError() { g_last_error = 0; }
void Sleep(int milliseconds) {
    if (milliseconds > 0) std::this_thread::sleep_for(std::chrono::milliseconds(milliseconds));
}
bool IsStopped() { return g_stop.load(); }
void ExpertRemove() {
    g_removed = true;
    shim::request_stop("ExpertRemove()");
}
bool EventSetTimer(int seconds) {
    if (seconds <= 0) return false;
    g_timer = seconds;
    return true;
}
void EventKillTimer() { g_timer = 0; }
void SetReturnError(int ret_code) { g_return_code = ret_code; }
// Not the Strategy Tester: a chart in a live terminal.
int MQLInfoInteger(ENUM_MQL_INFO_INTEGER property) { return property == MQL_TESTER ? 0 : 0; }
long ChartID() { return 132000000000000001L; }
int TerminalInfoInteger(ENUM_TERMINAL_INFO_INTEGER property) { return property == TERMINAL_BUILD ? 4410 : 0; }
string TerminalInfoString(ENUM_TERMINAL_INFO_STRING property) {
    return string(property == TERMINAL_DATA_PATH ? "C:\\Users\\shim\\AppData\\Roaming\\MetaQuotes\\Terminal\\SHIM" : "");
}
long AccountInfoInteger(ENUM_ACCOUNT_INFO_INTEGER property) { return property == ACCOUNT_LOGIN ? 51234567 : 0; }
double AccountInfoDouble(ENUM_ACCOUNT_INFO_DOUBLE property) {
    if (property == ACCOUNT_BALANCE) return 10250.75;
    if (property == ACCOUNT_EQUITY) return 10100.5;
    return 0;
}
string AccountInfoString(ENUM_ACCOUNT_INFO_STRING property) {
    if (property != ACCOUNT_COMPANY) return string();
    const char *broker = getenv("SHIM_BROKER");
    if (!broker) return string("Shim Broker Ltd \xe2\x80\x94 \xe6\x9d\xb1\xe4\xba\xac");
    return string::from_u16(utf8_to_u16(broker, false));
}

// ================================================================ crypto
int CryptEncode(ENUM_CRYPT_METHOD method, const MqlArray<uchar> &data, const MqlArray<uchar> &key, MqlArray<uchar> &result) {
    (void)key;
    if (method != CRYPT_HASH_SHA256) shim::fatal("CryptEncode: only CRYPT_HASH_SHA256 is modelled");
    if (data.v.empty()) shim::fatal("CryptEncode: an empty input is not modelled (undocumented in MetaTrader)");
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_Digest(data.v.data(), data.v.size(), digest, &len, EVP_sha256(), nullptr) != 1) {
        g_last_error = 4001;
        return 0;
    }
    result.v.assign(digest, digest + len);
    return static_cast<int>(len);
}

// ================================================================ WebRequest
int WebRequest(const string &method_s, const string &url_s, const string &headers_s, int timeout,
               const MqlArray<char> &data, MqlArray<char> &result, string &result_headers) {
    std::string method = method_s.utf8(), url = url_s.utf8(), headers = headers_s.utf8();
    bool allowed = false;
    for (const auto &a : g_allowed)
        if (url.compare(0, a.size(), a) == 0 && (url.size() == a.size() || url[a.size()] == '/' || url[a.size()] == '?'))
            allowed = true;
    if (!allowed) {
        g_last_error = ERR_FUNCTION_NOT_ALLOWED;
        trace(method, url, headers, -1, g_last_error, "");
        return -1;
    }
    if (!g_fail_path.empty() && g_fail_count > 0 && url_path(url) == g_fail_path) {
        g_fail_count--;
        g_last_error = ERR_WEBREQUEST_REQUEST_FAILED;
        trace(method, url, headers, -1, g_last_error, "(injected failure: not sent)");
        return -1;
    }
    CURL *curl = curl_easy_init();
    if (!curl) shim::fatal("curl_easy_init failed");
    struct curl_slist *list = nullptr;
    bool has_type = false;
    std::istringstream in(headers);
    std::string line;
    while (std::getline(in, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty()) continue;
        if (strncasecmp(line.c_str(), "content-type:", 13) == 0) has_type = true;
        list = curl_slist_append(list, line.c_str());
    }
    // WebRequest's default for a body without a Content-Type.
    if (!data.v.empty() && !has_type) list = curl_slist_append(list, "Content-Type: application/x-www-form-urlencoded");
    list = curl_slist_append(list, "Expect:");
    list = curl_slist_append(list, "User-Agent: MetaTrader 5 Terminal/5.4410 (eagate shim)");
    std::string body, rheaders;
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
    if (!data.v.empty()) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, reinterpret_cast<const char *>(data.v.data()));
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(data.v.size()));
    }
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout));
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(timeout < 10000 ? timeout : 10000));
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &rheaders);
    CURLcode rc = curl_easy_perform(curl);
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(list);
    curl_easy_cleanup(curl);
    if (rc != CURLE_OK) {
        if (rc == CURLE_OPERATION_TIMEDOUT)
            g_last_error = ERR_WEBREQUEST_TIMEOUT;
        else if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST)
            g_last_error = ERR_WEBREQUEST_CONNECT_FAILED;
        else if (rc == CURLE_URL_MALFORMAT || rc == CURLE_UNSUPPORTED_PROTOCOL)
            g_last_error = ERR_WEBREQUEST_INVALID_ADDRESS;
        else
            g_last_error = ERR_WEBREQUEST_REQUEST_FAILED;
        trace(method, url, headers, -1, g_last_error, curl_easy_strerror(rc));
        return -1;
    }
    std::string path = url_path(url);
    if (!g_cut_path.empty() && path.compare(0, g_cut_path.size(), g_cut_path) == 0 && g_cut_count > 0) {
        if (g_cut_skip > 0) {
            g_cut_skip--;
        } else {
            g_cut_count--;
            g_last_error = ERR_WEBREQUEST_REQUEST_FAILED;
            trace(method, url, headers, -1, g_last_error,
                  "(injected: the connection was lost after " + std::to_string(body.size() / 2) + " bytes)", rheaders);
            return -1;
        }
    }
    if (!g_corrupt_path.empty() && path.compare(0, g_corrupt_path.size(), g_corrupt_path) == 0 && g_corrupt_count > 0 &&
        status >= 200 && status < 300 && !body.empty()) {
        g_corrupt_count--;
        body[0] = static_cast<char>(body[0] ^ 0xFF);
    }
    result.v.assign(body.begin(), body.end());
    result_headers = string::from_u16(utf8_to_u16(without_headers(rheaders, g_hidden), false));
    trace(method, url, headers, static_cast<int>(status), 0, body, rheaders);
    if (method == "POST" && url_path(url) == "/api/v1/device/ack" && status >= 200 && status < 300) g_acks_ok++;
    return static_cast<int>(status);
}

// ================================================================ symbols, orders, history
bool SymbolSelect(const string &name, bool select) {
    (void)select;
    if (find_symbol(name.utf8())) return true;
    g_last_error = 4301;  // ERR_MARKET_UNKNOWN_SYMBOL
    return false;
}
long SymbolInfoInteger(const string &name, ENUM_SYMBOL_INFO_INTEGER property) {
    const Symbol *s = find_symbol(name.utf8());
    if (!s) return 0;
    if (property == SYMBOL_DIGITS) return s->digits;
    if (property == SYMBOL_TRADE_MODE) return SYMBOL_TRADE_MODE_FULL;
    return 0;
}
double SymbolInfoDouble(const string &name, ENUM_SYMBOL_INFO_DOUBLE property) {
    const Symbol *s = find_symbol(name.utf8());
    if (!s) return 0;
    switch (property) {
    case SYMBOL_BID: return s->bid;
    case SYMBOL_ASK: return s->ask;
    case SYMBOL_POINT: return std::pow(10.0, -s->digits);
    case SYMBOL_VOLUME_MIN: return s->vmin;
    case SYMBOL_VOLUME_MAX: return s->vmax;
    case SYMBOL_VOLUME_STEP: return s->vstep;
    // One tick is one point; worth 1 account-currency unit per lot (exact
    // for EURUSD in a USD account; a simplification for the others).
    case SYMBOL_TRADE_TICK_SIZE: return std::pow(10.0, -s->digits);
    case SYMBOL_TRADE_TICK_VALUE: return 1.0;
    }
    return 0;
}

int OrdersTotal() {
    int n = 0;
    for (const auto &o : g_orders) n += o.active ? 1 : 0;
    return n;
}
ulong OrderGetTicket(int index) {
    int n = 0;
    for (size_t i = 0; i < g_orders.size(); i++) {
        if (!g_orders[i].active) continue;
        if (n++ == index) {
            g_selected_order = static_cast<long>(i);
            return g_orders[i].ticket;
        }
    }
    g_selected_order = -1;
    return 0;
}
long OrderGetInteger(ENUM_ORDER_PROPERTY_INTEGER property) {
    if (g_selected_order < 0) shim::fatal("OrderGetInteger without a selected order");
    const Order &o = g_orders[static_cast<size_t>(g_selected_order)];
    if (property == ORDER_MAGIC) return static_cast<long>(o.magic);
    if (property == ORDER_TICKET) return static_cast<long>(o.ticket);
    if (property == ORDER_TYPE) return o.type;
    if (property == ORDER_TIME_SETUP) return o.time;
    return 0;
}
string OrderGetString(ENUM_ORDER_PROPERTY_STRING property) {
    if (g_selected_order < 0) shim::fatal("OrderGetString without a selected order");
    const Order &o = g_orders[static_cast<size_t>(g_selected_order)];
    return string(property == ORDER_COMMENT ? o.comment.c_str() : o.symbol.c_str());
}
bool HistorySelect(datetime from_date, datetime to_date) {
    g_hist_orders.clear();
    g_hist_deals.clear();
    for (size_t i = 0; i < g_orders.size(); i++)
        if (!g_orders[i].active && g_orders[i].time >= from_date && g_orders[i].time <= to_date) g_hist_orders.push_back(i);
    for (size_t i = 0; i < g_deals.size(); i++)
        if (g_deals[i].time >= from_date && g_deals[i].time <= to_date) g_hist_deals.push_back(i);
    return true;
}
int HistoryOrdersTotal() { return static_cast<int>(g_hist_orders.size()); }
ulong HistoryOrderGetTicket(int index) {
    if (index < 0 || index >= HistoryOrdersTotal()) return 0;
    return g_orders[g_hist_orders[static_cast<size_t>(index)]].ticket;
}
long HistoryOrderGetInteger(ulong ticket, ENUM_ORDER_PROPERTY_INTEGER property) {
    const Order *o = order_by_ticket(ticket);
    if (!o || o->active) return 0;
    if (property == ORDER_MAGIC) return static_cast<long>(o->magic);
    if (property == ORDER_TICKET) return static_cast<long>(o->ticket);
    if (property == ORDER_TYPE) return o->type;
    if (property == ORDER_TIME_SETUP) return o->time;
    return 0;
}
string HistoryOrderGetString(ulong ticket, ENUM_ORDER_PROPERTY_STRING property) {
    const Order *o = order_by_ticket(ticket);
    if (!o || o->active) return string();
    return string(property == ORDER_COMMENT ? o->comment.c_str() : o->symbol.c_str());
}
int HistoryDealsTotal() { return static_cast<int>(g_hist_deals.size()); }
ulong HistoryDealGetTicket(int index) {
    if (index < 0 || index >= HistoryDealsTotal()) return 0;
    return g_deals[g_hist_deals[static_cast<size_t>(index)]].ticket;
}
long HistoryDealGetInteger(ulong ticket, ENUM_DEAL_PROPERTY_INTEGER property) {
    const Deal *d = deal_by_ticket(ticket);
    if (!d) return 0;
    if (property == DEAL_ORDER) return static_cast<long>(d->order);
    if (property == DEAL_MAGIC) return static_cast<long>(d->magic);
    if (property == DEAL_TICKET) return static_cast<long>(d->ticket);
    if (property == DEAL_TYPE) return d->type;
    if (property == DEAL_TIME) return d->time;
    if (property == DEAL_ENTRY) return d->entry;
    if (property == DEAL_POSITION_ID) return static_cast<long>(d->position);
    return 0;
}
double HistoryDealGetDouble(ulong ticket, ENUM_DEAL_PROPERTY_DOUBLE property) {
    const Deal *d = deal_by_ticket(ticket);
    if (!d) return 0;
    if (property == DEAL_PROFIT) return d->profit;
    if (property == DEAL_SWAP || property == DEAL_COMMISSION) return 0.0;
    return property == DEAL_PRICE ? d->price : d->volume;
}

// ================================================================ positions
int PositionsTotal() { return static_cast<int>(g_positions.size()); }
ulong PositionGetTicket(int index) {
    if (index < 0 || index >= PositionsTotal()) {
        g_selected_position = -1;
        return 0;
    }
    g_selected_position = index;
    return g_positions[static_cast<size_t>(index)].ticket;
}
static const Position &selected_position(const char *what) {
    if (g_selected_position < 0 || g_selected_position >= PositionsTotal())
        shim::fatal((std::string(what) + " without a selected position").c_str());
    return g_positions[static_cast<size_t>(g_selected_position)];
}
long PositionGetInteger(ENUM_POSITION_PROPERTY_INTEGER property) {
    const Position &q = selected_position("PositionGetInteger");
    if (property == POSITION_TICKET) return static_cast<long>(q.ticket);
    if (property == POSITION_TYPE) return q.type;
    if (property == POSITION_MAGIC) return static_cast<long>(q.magic);
    if (property == POSITION_TIME) return q.time;
    return 0;
}
double PositionGetDouble(ENUM_POSITION_PROPERTY_DOUBLE property) {
    const Position &q = selected_position("PositionGetDouble");
    const Symbol *s = find_symbol(q.symbol);
    if (property == POSITION_VOLUME) return q.volume;
    if (property == POSITION_PRICE_OPEN) return q.price;
    if (property == POSITION_PROFIT) return shim::position_profit(q, q.type == 0 ? s->bid : s->ask);
    return 0;
}
string PositionGetString(ENUM_POSITION_PROPERTY_STRING property) {
    const Position &q = selected_position("PositionGetString");
    return string(property == POSITION_SYMBOL ? q.symbol.c_str() : q.comment.c_str());
}

datetime GlobalVariableSet(const string &name, double value) {
    if (name.u.size() > 63) shim::fatal("GlobalVariableSet: names are limited to 63 characters");
    g_globals[name.utf8()] = value;
    save_state();
    return TimeCurrent();
}
double GlobalVariableGet(const string &name) {
    auto it = g_globals.find(name.utf8());
    if (it == g_globals.end()) {
        g_last_error = 4501;  // ERR_GLOBALVARIABLE_NOT_FOUND
        return 0;
    }
    return it->second;
}
bool GlobalVariableCheck(const string &name) { return g_globals.count(name.utf8()) > 0; }
void GlobalVariablesFlush() { save_state(); }

// ================================================================ files
namespace {
// The path of a sandbox file name, or "" for a name outside the sandbox.
std::string sandbox_path(const string &name) {
    std::string n = name.utf8();
    for (auto &c : n)
        if (c == '\\') c = '/';
    if (n.empty() || n[0] == '/' || n.find("..") != std::string::npos || n.find(':') != std::string::npos) return "";
    mkdir(g_files_dir.c_str(), 0700);
    auto slash = n.rfind('/');
    if (slash != std::string::npos) {
        // FileOpen creates the folders a name needs.
        std::string dir = g_files_dir;
        for (size_t at = 0; at <= slash;) {
            auto next = n.find('/', at);
            dir += "/" + n.substr(at, next - at);
            mkdir(dir.c_str(), 0700);
            at = next + 1;
        }
    }
    return g_files_dir + "/" + n;
}
FILE *file_of(int handle) {
    auto it = g_files.find(handle);
    if (it == g_files.end()) shim::fatal("a file function got a handle FileOpen did not return");
    return it->second;
}
}  // namespace

int FileOpen(const string &file_name, int open_flags, short delimiter, uint codepage) {
    (void)delimiter;
    (void)codepage;
    if (!(open_flags & FILE_BIN)) shim::fatal("FileOpen: only FILE_BIN files are modelled");
    std::string path = sandbox_path(file_name);
    if (path.empty()) {
        g_last_error = 5002;  // ERR_WRONG_FILENAME
        return INVALID_HANDLE;
    }
    bool read = open_flags & FILE_READ, write = open_flags & FILE_WRITE;
    FILE *f = nullptr;
    if (read && write) {
        f = fopen(path.c_str(), "r+b");
        if (!f) f = fopen(path.c_str(), "w+b");
    } else if (write) {
        f = fopen(path.c_str(), "wb");  // FILE_WRITE alone: the file starts empty
    } else if (read) {
        f = fopen(path.c_str(), "rb");
    }
    if (!f) {
        g_last_error = 5004;  // ERR_CANNOT_OPEN_FILE
        return INVALID_HANDLE;
    }
    int handle = g_next_handle++;
    g_files[handle] = f;
    return handle;
}
void FileClose(int file_handle) {
    fclose(file_of(file_handle));
    g_files.erase(file_handle);
}
ulong FileSize(int file_handle) {
    FILE *f = file_of(file_handle);
    long at = ftell(f);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, at, SEEK_SET);
    return static_cast<ulong>(size);
}
bool FileSeek(int file_handle, long offset, int origin) { return fseek(file_of(file_handle), offset, origin) == 0; }
uint FileWriteArray(int file_handle, const MqlArray<uchar> &array, int start, int count) {
    int n = ArraySize(array);
    if (start < 0 || start > n) shim::fatal("FileWriteArray: start out of range");
    if (count < 0 || start + count > n) count = n - start;
    FILE *f = file_of(file_handle);
    size_t written = fwrite(array.v.data() + start, 1, static_cast<size_t>(count), f);
    fflush(f);
    return static_cast<uint>(written);
}
uint FileReadArray(int file_handle, MqlArray<uchar> &array, int start, int count) {
    if (start < 0) shim::fatal("FileReadArray: negative start");
    FILE *f = file_of(file_handle);
    std::vector<uchar> data;
    uchar buffer[65536];
    while (count < 0 || static_cast<int>(data.size()) < count) {
        size_t want = sizeof buffer;
        if (count >= 0) want = std::min(want, static_cast<size_t>(count) - data.size());
        size_t got = fread(buffer, 1, want, f);
        if (got == 0) break;
        data.insert(data.end(), buffer, buffer + got);
    }
    if (array.v.size() < static_cast<size_t>(start) + data.size()) ArrayResize(array, start + static_cast<int>(data.size()));
    std::copy(data.begin(), data.end(), array.v.begin() + start);
    return static_cast<uint>(data.size());
}
bool FileIsExist(const string &file_name, int common_flag) {
    if (common_flag) shim::fatal("FileIsExist: FILE_COMMON is not modelled");
    std::string path = sandbox_path(file_name);
    struct stat st;
    return !path.empty() && stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}
bool FileDelete(const string &file_name, int common_flag) {
    if (common_flag) shim::fatal("FileDelete: FILE_COMMON is not modelled");
    std::string path = sandbox_path(file_name);
    return !path.empty() && remove(path.c_str()) == 0;
}
bool FileMove(const string &src_file_name, int common_flag, const string &dst_file_name, int mode_flags) {
    if (common_flag) shim::fatal("FileMove: FILE_COMMON is not modelled");
    std::string from = sandbox_path(src_file_name), to = sandbox_path(dst_file_name);
    if (from.empty() || to.empty()) return false;
    struct stat st;
    if (!(mode_flags & FILE_REWRITE) && stat(to.c_str(), &st) == 0) return false;
    return rename(from.c_str(), to.c_str()) == 0;
}
