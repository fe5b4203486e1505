"""DeviceClient without a server: argument checks, answer parsing, and the
retry rules, driven through a scripted transport. The same behaviour is
exercised against a real server in test_live.py."""

import json
import unittest

from eagate_client import DeviceClient, EagateError, Outcome, TransportError

ID = "3f6c1a2e-8d4b-4c7e-9f10-2b3c4d5e6f70"
SECRET = "eags_TESTONLY-0123456789abcdefghijklmnopqrstuvwxyzAB"
SIGNAL = {"id": "0192f5e4-7c1a-7b3e-9a51-3c2d4e5f6a7b", "instrument": "EURUSD", "side": "buy",
          "order_type": "market", "volume": 0.1, "entry_price": None, "stop_loss": 1.08, "take_profit": 1.1,
          "comment": None, "expires_at": None, "created_at": "2025-12-02T20:44:56.123456Z"}


class Scripted:
    """Answers requests from a list; records what was sent."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.sent = []

    def __call__(self, method, url, headers, body, timeout):
        self.sent.append({"method": method, "url": url, "headers": dict(headers), "body": body, "timeout": timeout})
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        status, doc, headers = (answer + ({},))[:3]
        raw = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
        return status, headers, raw


def problem(code, status, **extra):
    return dict({"type": f"urn:eagate:problem:{code}", "code": code, "title": code, "status": status,
                 "detail": f"{code} detail"}, **extra)


def client(transport, **kw):
    sleeps = []
    c = DeviceClient("http://127.0.0.1:1", ID, SECRET, transport=transport, sleep=sleeps.append, **kw)
    return c, sleeps


class Arguments(unittest.TestCase):
    def test_settings_are_checked_and_the_secret_never_echoed(self):
        for url in ["eagate.example.com", "https://eagate.example.com/api", "ftp://x", "https://"]:
            with self.assertRaises(EagateError) as e:
                DeviceClient(url, ID, SECRET)
            self.assertEqual(e.exception.code, "invalid-url")
        for device in ["device-1", ""]:
            with self.assertRaises(EagateError):
                DeviceClient("https://e.example", device, SECRET)
        for secret in ["eags_abc def", "s3cr3tvalue", "eags_", "eags_\u00e9t\u00e9"]:
            with self.assertRaises(EagateError) as e:
                DeviceClient("https://e.example", ID, secret)
            self.assertEqual(e.exception.code, "invalid-argument")
            if len(secret) > 5:
                self.assertNotIn(secret, str(e.exception))
        c = DeviceClient(" https://e.example/ ", ID.upper(), SECRET + "\n")
        self.assertEqual(c.device_id, ID)
        self.assertNotIn(SECRET, repr(c))

    def test_calls_are_checked_before_sending(self):
        c, _ = client(Scripted())
        for call in [lambda: c.poll(wait=-1), lambda: c.poll(limit=0), lambda: c.poll(limit=101),
                     lambda: c.ack("", "executed"), lambda: c.ack("x", "done"),
                     lambda: c.ack("x", "executed", fill_price=float("nan")), lambda: c.ack("x", "executed", ticket=-1),
                     lambda: c.heartbeat(ea_version="x" * 33), lambda: c.heartbeat(balance=float("inf")),
                     lambda: c.heartbeat(terminal_build=-1)]:
            with self.assertRaises(EagateError) as e:
                call()
            self.assertEqual(e.exception.code, "invalid-argument")
            self.assertFalse(e.exception.fatal)


class Answers(unittest.TestCase):
    def test_unknown_fields_are_ignored_and_kept(self):
        future = dict(SIGNAL, risk={"tags": ["a", {"b": [1, 2]}]}, new_flag=True)
        t = Scripted((200, {"config_version": 7, "signals": [future], "server_time": 1764708296, "extra": [None]}))
        c, _ = client(t)
        [signal] = c.poll(wait=5)
        self.assertEqual((signal.instrument, signal.volume, signal.entry_price, signal.stop_loss),
                         ("EURUSD", 0.1, None, 1.08))
        self.assertEqual(signal.raw["new_flag"], True)
        self.assertEqual(c.last_server_time, 1764708296)
        self.assertTrue(t.sent[0]["url"].endswith("/api/v1/device/poll?wait=5&limit=10"))
        self.assertEqual(t.sent[0]["timeout"], 20.0)

    def test_the_poll_carries_the_action_and_both_revisions(self):
        closing = dict(SIGNAL, id="0192f5e4-7c1a-7b3e-9a51-3c2d4e5f6a7c", action="close")
        t = Scripted((200, {"signals": [SIGNAL, closing], "server_time": 1, "config_revision": 7,
                            "deployment_revision": 3}),
                     (200, {"signals": [], "server_time": 2}))
        c, _ = client(t)
        self.assertEqual((c.config_revision, c.deployment_revision), (0, 0))
        first, second = c.poll()
        self.assertEqual((first.action, second.action), ("open", "close"))
        self.assertEqual((c.config_revision, c.deployment_revision), (7, 3))
        c.poll()  # an answer without them keeps the last ones
        self.assertEqual((c.config_revision, c.deployment_revision), (7, 3))

    def test_the_trading_configuration_and_if_none_match(self):
        doc = {"poll_interval_seconds": 5, "long_poll_max_seconds": 30, "server_time": 1, "device_id": ID,
               "name": "n", "config_revision": 4,
               "trading": {"mode": "close_only", "sizing": {"type": "risk_percent", "percent": 1.5}, "max_lot": 0.5,
                           "allowed_symbols": ["EURUSD", "XAUUSD"], "symbol_map": {"XAUUSD": "GOLD.m"},
                           "max_open_trades": 3, "max_daily_loss": 250.0, "slippage_points": 15,
                           "magic_number": 777, "future_field": True}}
        t = Scripted((200, doc, {"etag": '"r4"'}), (304, b""),
                     (200, dict(doc, config_revision=5, trading={"mode": None, "sizing": None}), {"etag": '"r5"'}))
        c, _ = client(t)
        config = c.config()
        self.assertNotIn("If-None-Match", t.sent[0]["headers"])
        self.assertEqual((config.config_revision, config.etag), (4, '"r4"'))
        tr = config.trading
        self.assertEqual((tr.mode, tr.sizing_type, tr.sizing_value, tr.max_lot), ("close_only", "risk_percent", 1.5, 0.5))
        self.assertEqual((tr.allowed_symbols, dict(tr.symbol_map)), (("EURUSD", "XAUUSD"), {"XAUUSD": "GOLD.m"}))
        self.assertEqual((tr.max_open_trades, tr.max_daily_loss, tr.slippage_points, tr.magic_number),
                         (3, 250.0, 15, 777))
        self.assertEqual((tr.map_symbol("XAUUSD"), tr.map_symbol("EURUSD")), ("GOLD.m", "EURUSD"))
        self.assertEqual((tr.symbol_allowed("EURUSD"), tr.symbol_allowed("USDJPY")), (True, False))
        self.assertIsNone(c.config_if_changed(config.etag))
        self.assertEqual(t.sent[1]["headers"]["If-None-Match"], '"r4"')
        changed = c.config_if_changed(config.etag)
        self.assertEqual((changed.config_revision, changed.etag), (5, '"r5"'))
        # Unset fields: the built-in defaults, None where there is none.
        self.assertEqual((changed.trading.mode, changed.trading.sizing_type, changed.trading.sizing_value),
                         ("active", "multiplier", 1.0))
        self.assertEqual((changed.trading.max_lot, changed.trading.allowed_symbols, changed.trading.magic_number),
                         (None, None, None))
        self.assertTrue(changed.trading.symbol_allowed("ANY"))

    def test_a_304_without_if_none_match_is_an_error(self):
        c, _ = client(Scripted((304, b"")))
        with self.assertRaises(EagateError) as e:
            c.heartbeat()
        self.assertEqual((e.exception.code, e.exception.status), ("http-error", 304))

    def test_malformed_answers_are_errors(self):
        for answer in [b"not json", b"[1]", {"signals": "x"}, {"signals": [{"id": "x"}]}]:
            c, _ = client(Scripted((200, answer)))
            with self.assertRaises(EagateError) as e:
                c.poll()
            self.assertEqual(e.exception.code, "bad-response")

    def test_the_body_is_compact_utf8_json(self):
        t = Scripted((200, {"server_time": 1}))
        c, _ = client(t)
        c.heartbeat(ea_version="2.1.0", broker="Soci\u00e9t\u00e9\n\u6771\u4eac", balance=10250.75)
        sent = t.sent[0]
        self.assertEqual(sent["body"], '{"ea_version":"2.1.0","broker":"Soci\u00e9t\u00e9 \u6771\u4eac","balance":10250.75}'.encode())
        self.assertEqual(sent["headers"]["Content-Type"], "application/json")
        self.assertTrue(sent["headers"]["X-Signature"].startswith("v1="))

    def test_c1_controls_are_cleaned_like_the_server_refuses_them(self):
        t = Scripted((200, {"server_time": 1}), (200, {"signal_id": SIGNAL["id"], "outcome": "rejected",
                                                         "acknowledged_at": "2025-12-02T20:44:57Z"}))
        c, _ = client(t)
        c.heartbeat(ea_version="1.0\u0085", broker="Broker\u0085Name\u009f\u0080\u00a0\x7f")
        self.assertEqual(json.loads(t.sent[0]["body"]), {"ea_version": "1.0 ", "broker": "Broker Name  \u00a0 "})
        c.ack(SIGNAL["id"], Outcome.REJECTED, message="line\u0085two\ttab")
        self.assertEqual(json.loads(t.sent[1]["body"])["message"], "line two tab")


class Retries(unittest.TestCase):
    def test_429_waits_for_retry_after_and_uses_a_new_nonce(self):
        t = Scripted((429, problem("rate-limited", 429, retry_after=2), {"retry-after": "2"}),
                     (200, {"poll_interval_seconds": 5, "long_poll_max_seconds": 30, "server_time": 1,
                            "device_id": ID, "name": "n"}))
        c, sleeps = client(t)
        self.assertEqual(c.config().name, "n")
        self.assertEqual(sleeps, [2.0])
        self.assertNotEqual(t.sent[0]["headers"]["X-Nonce"], t.sent[1]["headers"]["X-Nonce"])
        self.assertEqual((c.rate_limited, c.retries), (1, 1))

    def test_clock_skew_is_corrected_once_without_waiting(self):
        t = Scripted((401, problem("clock-skew", 401, server_time=2_000_000_000), {"x-server-time": "2000000000"}),
                     (200, {"server_time": 2_000_000_000}))
        c, sleeps = client(t, clock=lambda: 1_999_996_400.0)
        c.heartbeat()
        self.assertEqual(c.clock_offset, 3600)
        self.assertEqual(sleeps, [])
        self.assertEqual(t.sent[0]["headers"]["X-Timestamp"], "1999996400")
        self.assertEqual(t.sent[1]["headers"]["X-Timestamp"], "2000000000")
        t = Scripted(*[(401, problem("clock-skew", 401, server_time=2_000_000_000))] * 2)
        c, _ = client(t, clock=lambda: 1_999_996_400.0)
        with self.assertRaises(EagateError) as e:
            c.heartbeat()
        self.assertEqual((e.exception.code, len(t.sent)), ("clock-skew", 2))

    def test_the_date_header_corrects_a_drifting_clock(self):
        t = Scripted((200, {"server_time": 1}, {"date": "Sun, 06 Nov 1994 08:49:37 GMT"}))
        c, _ = client(t, clock=lambda: 784111777.0 - 200)
        c.heartbeat()
        self.assertEqual(c.clock_offset, 200)

    def test_network_failures_and_5xx_back_off_then_give_up(self):
        t = Scripted(TransportError("connect-failed", "refused"), (503, problem("service-unavailable", 503)),
                     TransportError("timeout", "slow"), TransportError("timeout", "slow"))
        c, sleeps = client(t)
        with self.assertRaises(EagateError) as e:
            c.heartbeat()
        self.assertEqual((e.exception.code, e.exception.status), ("timeout", 0))
        self.assertEqual(len(t.sent), 4)
        self.assertEqual(len(sleeps), 3)
        self.assertTrue(0.5 <= sleeps[0] <= 0.625 and 1.0 <= sleeps[1] <= 1.25 and 2.0 <= sleeps[2] <= 2.5, sleeps)
        self.assertEqual(len({s["headers"]["X-Nonce"] for s in t.sent}), 4)

    def test_fatal_and_client_errors_are_not_retried(self):
        for code, status, fatal in [("device-revoked", 401, True), ("invalid-signature", 401, True),
                                    ("ack-conflict", 409, False), ("validation-failed", 422, False)]:
            t = Scripted((status, problem(code, status)))
            c, sleeps = client(t)
            with self.assertRaises(EagateError) as e:
                c.ack(SIGNAL["id"], Outcome.REJECTED)
            self.assertEqual((e.exception.code, e.exception.status, e.exception.fatal), (code, status, fatal))
            self.assertEqual(e.exception.detail, f"{code} detail")
            self.assertEqual((len(t.sent), sleeps), (1, []))

    def test_an_answer_without_a_problem_body(self):
        c, _ = client(Scripted((404, b"<html>not here</html>")))
        with self.assertRaises(EagateError) as e:
            c.config()
        self.assertEqual((e.exception.code, e.exception.status), ("http-error", 404))
        self.assertIn("not here", e.exception.detail)


class Loop(unittest.TestCase):
    def test_run_acknowledges_what_the_handler_returns_and_stops(self):
        second = dict(SIGNAL, id="0192f5e4-7c1a-7b3e-9a51-3c2d4e5f6a7c")
        ack = {"signal_id": SIGNAL["id"], "outcome": "executed", "ticket": 1, "fill_price": 1.1, "message": None,
               "acknowledged_at": "2025-12-02T20:44:57Z"}
        t = Scripted((200, {"signals": [SIGNAL, second], "server_time": 1}), (200, ack))
        c, _ = client(t)
        handled = []

        def handle(signal):
            handled.append(signal.id)
            return (Outcome.EXECUTED, 1, 1.1) if len(handled) == 1 else None

        c.run(handle, wait=1)
        self.assertEqual(handled, [SIGNAL["id"], second["id"]])
        self.assertEqual(json.loads(t.sent[1]["body"]), {"signal_id": SIGNAL["id"], "outcome": "executed",
                                                          "ticket": 1, "fill_price": 1.1})


if __name__ == "__main__":
    unittest.main()
