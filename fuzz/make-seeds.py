#!/usr/bin/env python3
"""Writes the seed corpora in fuzz/seeds/<target>/ (committed; rerun after
changing an `Input` type in crates/fuzzing).

Each seed is the byte string that `arbitrary` (1.x, `arbitrary_take_rest`)
decodes into a meaningful `Input`: fixed-size fields little-endian from the
front, enum variants as a u32 scaled into the variant count, the lengths of
strings and byte slices from the back (one byte each while a seed stays
under 256 bytes), the last field taking the rest. Seeds are a starting
point for libFuzzer and the inputs of the libFuzzer-free smoke run."""

import json
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent
VECTORS = json.loads((ROOT.parent / "docs/protocol-vectors.json").read_text())


class Enc:
    def __init__(self):
        self.front = bytearray()
        self.lengths = []

    def u8(self, v):
        self.front.append(v & 0xFF)
        return self

    def int(self, v, size):
        self.front += (v % (1 << (8 * size))).to_bytes(size, "little")
        return self

    def variant(self, index, count):
        x = -(-(index << 32) // count)  # ceil: (x * count) >> 32 == index
        assert (x * count) >> 32 == index
        return self.int(x, 4)

    def bool(self, b):
        return self.u8(1 if b else 0)

    def bytes(self, b):
        self.front += b
        self.lengths.append(len(b))
        return self

    def str(self, s):
        return self.bytes(s.encode())

    def rest(self, b):
        if isinstance(b, str):
            b = b.encode()
        self.front += b
        return self

    def done(self):
        out = bytes(self.front) + bytes(reversed(self.lengths))
        assert len(out) <= 256, f"seed too long for one-byte lengths: {len(out)}"
        return out


def write(target, name, data):
    d = ROOT / "seeds" / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


# -- signed_request ------------------------------------------------------------
SLOT_MISSING, SLOT_REPEATED, SLOT_UNREADABLE, SLOT_PRESENT = range(4)
MUTATIONS = ["Method", "Target", "DeviceId", "Timestamp", "Nonce", "Body", "Signature"]
V = VECTORS["vectors"][0]
SECRET = VECTORS["secret"]


def signed(name, headers, mutation, method=V["method"], target=V["request_target"], body=V["body"]):
    e = Enc()
    for slot in headers:
        if isinstance(slot, str):
            e.variant(SLOT_PRESENT, 4).str(slot)
        else:
            e.variant(slot, 4)
    e.str(method).str(target).bytes(body.encode()[:16]).str(SECRET[:12]).int(int(V["timestamp"]), 8)
    kind, value = mutation
    e.variant(MUTATIONS.index(kind), len(MUTATIONS))
    if kind == "Timestamp":
        e.int(value, 8)
    elif kind == "Signature":
        e.u8(value[0]).u8(value[1])
    else:
        e.rest(value)
    write("signed_request", name, e.done())


GOOD = [V["device_id"], V["timestamp"], V["nonce"], V["signature"]]
signed("valid-flip-signature", GOOD, ("Signature", (0, 1)))
signed("valid-method-case", GOOD, ("Method", "post"))
signed("valid-empty-query", GOOD, ("Target", V["request_target"] + "?"))
signed("valid-other-query", GOOD, ("Target", V["request_target"] + "?x=1"))
signed("valid-other-timestamp", GOOD, ("Timestamp", int(V["timestamp"]) + 1))
signed("valid-other-nonce", GOOD, ("Nonce", V["nonce"] + "x"))
signed("valid-other-device", GOOD, ("DeviceId", V["device_id"].replace("3f", "4f", 1)))
signed("valid-other-body", GOOD, ("Body", "{}"))
signed("upper-signature", GOOD[:3] + [V["signature"].upper().replace("V1=", "v1=")], ("Signature", (31, 128)))
signed("missing-timestamp", [GOOD[0], SLOT_MISSING, GOOD[2], GOOD[3]], ("Method", "GET"))
signed("repeated-nonce", [GOOD[0], GOOD[1], SLOT_REPEATED, GOOD[3]], ("Method", "GET"))
signed("unreadable-signature", [GOOD[0], GOOD[1], GOOD[2], SLOT_UNREADABLE], ("Method", "GET"))
signed("upper-device-id", [GOOD[0].upper()] + GOOD[1:], ("Method", "GET"))
signed("signed-timestamp", [GOOD[0], "+1795305600", GOOD[2], GOOD[3]], ("Method", "GET"))
signed("short-nonce", [GOOD[0], GOOD[1], "short", GOOD[3]], ("Method", "GET"))
signed("v2-signature", GOOD[:3] + [V["signature"].replace("v1=", "v2=")], ("Method", "GET"))

# -- jwt -----------------------------------------------------------------------
JWT_MUTATIONS = ["None", "FlipBit", "Truncate", "Insert", "Append", "Header", "Payload", "Signature", "Raw"]


def jwt(name, iat, ttl, now, kind, *args):
    e = Enc().int(0x0192F5E47C1A7B3E9A513C2D4E5F6A7B, 16).int(0x0192F5E47C1A7B3E9A513C2D4E5F6A7C, 16)
    e.int(iat, 4).int(ttl, 4).int(now, 4).variant(JWT_MUTATIONS.index(kind), len(JWT_MUTATIONS))
    if kind in ("FlipBit", "Insert"):
        e.int(args[0], 2).u8(args[1])
    elif kind == "Truncate":
        e.int(args[0], 2)
    elif kind != "None":
        e.rest(args[0])
    write("jwt", name, e.done())


jwt("valid", 0, 900, 60, "None")
jwt("expired", 0, 900, 900, "None")
jwt("issued-in-the-future", 120, 900, 0, "None")
jwt("iat-after-exp", 0, -1, 0, "None")
jwt("flip-bit", 0, 900, 60, "FlipBit", 40, 3)
jwt("truncate", 0, 900, 60, "Truncate", 100)
jwt("insert", 0, 900, 60, "Insert", 20, ord("."))
jwt("append-space", 0, 900, 60, "Append", " ")
jwt("alg-none", 0, 900, 60, "Header", '{"alg":"none","typ":"at+jwt"}')
jwt("alg-hs256", 0, 900, 60, "Header", '{"alg":"HS256","typ":"at+jwt"}')
jwt("typ-jwt", 0, 900, 60, "Header", '{"alg":"EdDSA","typ":"JWT"}')
jwt("kid-jku", 0, 900, 60, "Header", '{"alg":"EdDSA","typ":"at+jwt","jku":"https://x/k","kid":"x"}')
jwt("other-sub", 0, 900, 60, "Payload",
    '{"iss":"eagate","aud":"eagate-api","sub":"0192f5e4-7c1a-7b3e-9a51-3c2d4e5f6a7d",'
    '"sid":"0192f5e4-7c1a-7b3e-9a51-3c2d4e5f6a7c","iat":1800000000,"exp":1800000900}')
jwt("empty-signature", 0, 900, 60, "Signature", b"")
jwt("raw-dots", 0, 900, 60, "Raw", "a.b.c")

# -- json_bodies ---------------------------------------------------------------
# The order of `JsonBody::ALL` (apps/server/src/fuzzing.rs).
ROUTES = ["Register", "Login", "Refresh", "ChangePassword", "DeleteAccount", "DeviceName", "RotateSecret",
          "Publish", "Heartbeat", "Ack", "CreateApiKey", "ConfigPut", "ConfigPatch", "Rollback",
          "CreateDeployment", "DeploymentStatus", "DeviceLabels"]
BODIES = {
    "Register": [
        {"email": "Ann@Example.com", "username": "ann_trader", "password": "correct horse battery"},
        {"email": "ann@localhost", "username": "a", "password": "password1234"},
        {"email": "ann@example.com", "username": "ann_trader", "password": "ann_trader^|horse", "admin": True},
    ],
    "Login": [
        {"login": "ann_trader", "password": "correct horse battery"},
        {"login": "Ann@Example.com", "password": "x"},
        {"login": "", "password": ""},
    ],
    "Refresh": [{"refresh_token": "eagr_AAYNJ3vHvm6oTVZASFirwBy7SR5DDOtRcYF2-hF3kKc"}, {"refresh_token": 1}],
    "ChangePassword": [
        {"current_password": "correct horse battery", "new_password": "an even better passphrase"},
        {"current_password": "", "new_password": "short^|"},
    ],
    "DeleteAccount": [{"password": "correct horse battery"}, {"password": ["not^|a-string-at-all"]}],
    "DeviceName": [{"name": "London VPS"}, {"name": "  Caf\u0065\u0301 \u200d EA "}, {"name": "\u202eevil"}],
    "RotateSecret": [{"grace_seconds": 600}, None, {}, {"grace_seconds": -1}],
    "Publish": [
        {"instrument": "EURUSD", "side": "buy", "order_type": "limit", "volume": 0.25, "entry_price": 1.085,
         "stop_loss": 1.08, "take_profit": 1.095, "comment": "breakout"},
        {"instrument": "XAUUSD", "side": "sell", "order_type": "market", "volume": 1000,
         "expires_at": "2027-01-15T08:30:00Z", "device_ids": ["0192f5e4-7c1a-7b3e-9a51-3c2d4e5f6a7b"]},
        {"instrument": "", "side": "hold", "order_type": "stop", "volume": 1e400},
    ],
    "Heartbeat": [
        {"ea_version": "2.1.0", "terminal_build": 4410, "broker": "Example Broker Ltd", "account_login": 51234567,
         "balance": 10250.75, "equity": 10100.5},
        {},
        {"terminal_build": -1, "balance": 1e16},
    ],
    "Ack": [
        {"signal_id": "0192f5e4-7c1a-7b3e-9a51-3c2d4e5f6a7b", "outcome": "executed", "ticket": 4812,
         "fill_price": 1.0851, "message": "filled\nok"},
        {"signal_id": "{0192f5e4-7c1a-7b3e-9a51-3c2d4e5f6a7b}", "outcome": "rejected"},
        {"signal_id": "x", "outcome": "done", "ticket": -1},
    ],
    "CreateApiKey": [
        {"name": "TradingView relay", "scopes": ["signals:publish", "devices:read"],
         "expires_at": "2027-01-15T08:30:00Z", "allowed_cidrs": ["203.0.113.0/24", "2001:db8::1"]},
        {"name": "", "scopes": [], "allowed_cidrs": ["300.1.2.3/8"]},
        {"name": "x\u202e", "scopes": ["admin"], "expires_at": "1969-12-31T23:59:59Z"},
    ],
    "ConfigPut": [
        {"mode": "live", "max_lot": 2.5, "max_open_trades": 5, "allowed_symbols": ["EURUSD", "XAUUSD"],
         "symbol_map": {"XAUUSD": "GOLD"}, "sizing": {"type": "fixed", "lots": 0.1}, "slippage_points": 20},
        {},
        {"max_lot": 0, "allowed_symbols": [], "magic_number": -1},
    ],
    "ConfigPatch": [
        {"max_lot": None, "symbol_map": {"XAUUSD": None}},
        {"sizing": {"type": "multiplier", "factor": 1.5}},
        {"max_daily_loss": 1e13},
    ],
    "Rollback": [{"version": 2}, {"version": 0}, {"version": -1}],
    "CreateDeployment": [
        {"bundle_id": "0192f5e4-7c1a-7b3e-9a51-3c2d4e5f6a7b", "target": "label", "label": "london",
         "waves": [10, 50, 100], "abort_failure_percent": 20, "abort_min_finished": 3, "timeout_minutes": 60},
        {"bundle_id": "0192f5e4-7c1a-7b3e-9a51-3c2d4e5f6a7b", "target": "devices",
         "device_ids": ["0192f5e4-7c1a-7b3e-9a51-3c2d4e5f6a7b"]},
        {"bundle_id": "x", "target": "all", "waves": [50, 10], "timeout_minutes": 0},
    ],
    "DeploymentStatus": [
        {"status": "failed", "reason": "digest mismatch"},
        {"status": "installed"},
        {"status": "installed", "reason": " \n "},
    ],
    "DeviceLabels": [{"labels": ["london", "vps", "london"]}, {"labels": []}, {"labels": ["-bad", "UPPER"]}],
}
for route, bodies in BODIES.items():
    for i, body in enumerate(bodies):
        text = b"" if body is None else json.dumps(body).encode()
        write("json_bodies", f"{route.lower()}-{i}", bytes([ROUTES.index(route)]) + text)
write("json_bodies", "array", bytes([0]) + b'["ann@example.com","ann","correct horse battery"]')
write("json_bodies", "trailing", bytes([5]) + b'{"name":"x"} {}')
write("json_bodies", "duplicate", bytes([5]) + b'{"name":"x","name":"y"}')

# -- cursor_query --------------------------------------------------------------
CURSOR = "660e48b0ec25d.01a20542519a7459b239fe5225f79297"
# The order of `QueryString::ALL` (apps/server/src/fuzzing.rs).
QUERIES = ["ListDevices", "ListSignals", "ListAudit", "Poll", "AdminAccounts", "AdminAudit", "ListApiKeys",
           "ListBundles", "UploadBundle", "ConfigHistory", "ListDeployments"]


def cursor(name, raw):
    write("cursor_query", name, Enc().variant(0, 3).rest(raw).done())


def page(name, limit, cur):
    e = Enc().variant(1, 3)
    e.bool(limit is not None)
    if limit is not None:
        e.str(limit)
    e.bool(cur is not None)
    if cur is not None:
        e.rest(cur)
    write("cursor_query", name, e.done())


def query(name, operation, raw):
    write("cursor_query", name, Enc().variant(2, 3).u8(QUERIES.index(operation)).rest(raw).done())


cursor("cursor", CURSOR)
cursor("cursor-leading-zero", "0" + CURSOR)
cursor("cursor-upper", CURSOR.upper())
cursor("cursor-negative", "-" + CURSOR)
page("page", "50", CURSOR)
page("page-plus", "+7", None)
page("page-zero", "0", "nope")
page("page-max", "100", None)
query("devices", "ListDevices", f"status=active&limit=20&cursor={CURSOR}")
query("devices-bad", "ListDevices", "status=gone&limit=101&cursor=%zz")
query("signals", "ListSignals", "limit=1")
query("signals-unknown", "ListSignals", "status=active")
query("audit", "ListAudit", f"cursor={CURSOR}&limit=+100")
query("poll", "Poll", "limit=10&wait=25")
query("poll-encoded", "Poll", "limit=%31%30&wait=%2B5")
query("poll-repeated", "Poll", "limit=1&limit=2")
query("admin-accounts", "AdminAccounts", "q=%20trader%20&limit=5")
query("admin-accounts-bad", "AdminAccounts", "q=&limit=0")
query("admin-audit", "AdminAudit",
      "actor=0192f5e4-7c1a-7b3e-9a51-3c2d4e5f6a7b&action=login.failed&from=2026-12-01T00:00:00Z"
      "&to=2026-12-02T00:00:00%2B01:00")
query("admin-audit-bad", "AdminAudit", "from=2026-12-02T00:00:00Z&to=2026-12-01T00:00:00Z&action=nope")
query("api-keys", "ListApiKeys", f"limit=50&cursor={CURSOR}")
query("bundles", "ListBundles", "limit=100")
query("bundle-upload", "UploadBundle", "name=TrendFollower&version=1.4.2-rc.1&notes=Tighter%20stops")
query("bundle-upload-bad", "UploadBundle", "name=-x&version=01.2&notes=")
query("config-history", "ConfigHistory", "limit=3")
query("deployments", "ListDeployments", "cursor=x&limit=1")
