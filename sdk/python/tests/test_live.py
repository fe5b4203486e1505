"""DeviceClient against a real eagate server (EAGATE_SDK_SERVER; started by
scripts/sdk-test.sh with EAGATE_RATE_LIMIT_DEVICE_PER_SECOND=3)."""

import os
import subprocess
import sys
import threading
import time
import unittest

from eagate_client import DeviceClient, EagateError, Outcome, urllib_transport

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "testing"))
from eagate_owner import Owner, live_server  # noqa: E402


class Recorder:
    """The real transport, with a record of what was sent and answered."""

    def __init__(self, hide_date=False):
        self.log = []
        self.hide_date = hide_date

    def __call__(self, method, url, headers, body, timeout):
        entry = {"method": method, "url": url, "nonce": headers["X-Nonce"], "timestamp": headers["X-Timestamp"],
                 "at": time.monotonic()}
        self.log.append(entry)
        status, answer_headers, raw = urllib_transport(method, url, headers, body, timeout)
        entry["status"] = status
        entry["body"] = raw.decode("utf-8", "replace")
        if self.hide_date:
            answer_headers = {k: v for k, v in answer_headers.items() if k != "date"}
        return status, answer_headers, raw


class Live(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = live_server()
        cls.owner = Owner(cls.server)

    def setUp(self):
        self.device_id, self.secret = self.owner.create_device()
        self.recorder = Recorder()

    def client(self, **kw):
        kw.setdefault("transport", self.recorder)
        return DeviceClient(self.server, self.device_id, self.secret, **kw)

    def test_config_and_heartbeat_reach_the_owner(self):
        c = self.client()
        config = c.config()
        self.assertEqual(config.device_id, self.device_id)
        self.assertEqual(config.long_poll_max_seconds, 30)
        server_time = c.heartbeat(ea_version="py-1.0", terminal_build=4410, broker="Soci\u00e9t\u00e9 G\u00e9n\u00e9rale \u2014 \u6771\u4eac",
                                  account_login=51234567, balance=10250.75, equity=10100.5)
        self.assertLess(abs(server_time - time.time()), 30)
        # Accepted now, written with the server's next activity flush.
        deadline = time.time() + 10
        while self.owner.device(self.device_id)["heartbeat"] is None and time.time() < deadline:
            time.sleep(0.05)
        hb = self.owner.device(self.device_id)["heartbeat"]
        self.assertIsNotNone(hb, "the heartbeat reached the owner within 10 s")
        self.assertEqual((hb["ea_version"], hb["terminal_build"], hb["broker"], hb["account_login"], hb["balance"],
                          hb["equity"]),
                         ("py-1.0", 4410, "Soci\u00e9t\u00e9 G\u00e9n\u00e9rale \u2014 \u6771\u4eac", 51234567, 10250.75, 10100.5))

    def test_the_config_is_fetched_with_if_none_match_and_the_poll_reports_revisions(self):
        o = self.owner
        o.configure(self.device_id, {"sizing": {"type": "risk_percent", "percent": 1}, "max_lot": 0.5,
                                     "allowed_symbols": ["EURUSD", "XAUUSD"], "symbol_map": {"XAUUSD": "GOLD.m"},
                                     "max_open_trades": 3, "max_daily_loss": 250, "magic_number": 777,
                                     "slippage_points": 15})
        c = self.client()
        config = c.config()
        tr = config.trading
        self.assertEqual((tr.mode, tr.sizing_type, tr.sizing_value, tr.max_lot), ("active", "risk_percent", 1.0, 0.5))
        self.assertEqual((tr.allowed_symbols, dict(tr.symbol_map)), (("EURUSD", "XAUUSD"), {"XAUUSD": "GOLD.m"}))
        self.assertEqual((tr.max_open_trades, tr.max_daily_loss, tr.magic_number, tr.slippage_points),
                         (3, 250.0, 777, 15))
        self.assertEqual(config.etag, f'"r{config.config_revision}"')
        self.assertIsNone(c.config_if_changed(config.etag))
        self.assertEqual(self.recorder.log[-1]["status"], 304)
        closing = o.publish(self.device_id, instrument="EURUSD", side="sell", volume=0.1, action="close")
        [signal] = c.poll()
        self.assertEqual((signal.id, signal.action), (closing["id"], "close"))
        self.assertEqual(c.config_revision, config.config_revision)
        self.assertEqual(c.deployment_revision, 0)
        o.configure(self.device_id, {"mode": "close_only"})
        c.poll()
        self.assertNotEqual(c.config_revision, config.config_revision)
        changed = c.config_if_changed(config.etag)
        self.assertIsNotNone(changed)
        self.assertEqual((changed.config_revision, changed.trading.mode, changed.trading.max_lot),
                         (c.config_revision, "close_only", None))

    def test_poll_execute_acknowledge(self):
        first = self.owner.publish(self.device_id, instrument="EURUSD", side="buy", volume=0.1, stop_loss=1.08,
                                   take_profit=1.1)
        second = self.owner.publish(self.device_id, instrument="XAUUSD", side="sell", order_type="limit", volume=1,
                                    entry_price=2400.5, comment="gold \u2014 test")
        c = self.client()
        signals = c.poll(wait=0)
        self.assertEqual([s.id for s in signals], [first["id"], second["id"]])
        self.assertEqual((signals[0].stop_loss, signals[0].take_profit, signals[0].entry_price), (1.08, 1.1, None))
        self.assertEqual((signals[1].order_type, signals[1].entry_price, signals[1].comment),
                         ("limit", 2400.5, "gold \u2014 test"))
        receipt = c.ack(first["id"], Outcome.EXECUTED, ticket=4812, fill_price=1.0851)
        self.assertEqual((receipt.outcome, receipt.ticket, receipt.fill_price), ("executed", 4812, 1.0851))
        again = c.ack(first["id"], "executed", ticket=4812, fill_price=1.0851)
        self.assertEqual(again.acknowledged_at, receipt.acknowledged_at)
        c.ack(second["id"], Outcome.REJECTED, message="no gold on this account\n" + "x" * 600)
        with self.assertRaises(EagateError) as e:
            c.ack(second["id"], Outcome.EXECUTED, ticket=1)
        self.assertEqual((e.exception.code, e.exception.status, e.exception.fatal), ("ack-conflict", 409, False))
        d = self.owner.delivery(second["id"], self.device_id)
        self.assertEqual((d["status"], d["outcome"]), ("acknowledged", "rejected"))
        self.assertEqual(len(d["message"]), 512)
        self.assertTrue(d["message"].startswith("no gold on this account x"))
        self.assertEqual(c.poll(wait=0), [])
        with self.assertRaises(EagateError) as e:
            c.ack("0192f5e4-7c1a-7b3e-9a51-3c2d4e5f6a7b", Outcome.FAILED)
        self.assertEqual(e.exception.code, "not-found")

    def test_long_poll_wakes_up_on_publish(self):
        c = self.client()
        threading.Timer(1.0, lambda: self.owner.publish(self.device_id, instrument="EURUSD", side="sell",
                                                        volume=0.2)).start()
        started = time.monotonic()
        signals = c.poll(wait=20)
        self.assertEqual(len(signals), 1)
        self.assertLess(time.monotonic() - started, 10)

    def test_run_loop(self):
        published = [self.owner.publish(self.device_id, instrument="EURUSD", side="buy", volume=0.1)["id"]
                     for _ in range(2)]
        handled = []

        def handle(signal):
            handled.append(signal.id)
            return Outcome.EXECUTED, 100 + len(handled), 1.0851

        c = self.client()
        c.run(handle, wait=1, should_stop=lambda: len(handled) >= 2)
        self.assertEqual(handled, published)
        self.assertEqual([self.owner.delivery(s, self.device_id)["ticket"] for s in published], [101, 102])

    def test_a_wrong_clock_is_corrected_from_the_clock_skew_answer(self):
        self.recorder = Recorder(hide_date=True)
        c = self.client(clock=lambda: time.time() - 3600)
        c.config()
        first, second = self.recorder.log
        self.assertEqual(first["status"], 401)
        self.assertIn('"code":"clock-skew"', first["body"])
        self.assertEqual(second["status"], 200)
        self.assertNotEqual(first["nonce"], second["nonce"])
        self.assertLessEqual(abs(c.clock_offset - 3600), 2)
        self.assertLess(abs(int(second["timestamp"]) - time.time()), 5)

    def test_a_small_clock_error_is_corrected_from_the_date_header(self):
        c = self.client(clock=lambda: time.time() + 200)
        c.config()
        self.assertEqual([e["status"] for e in self.recorder.log], [200])
        self.assertLessEqual(abs(c.clock_offset + 200), 2)

    def test_rate_limited_requests_are_retried_with_new_nonces(self):
        c = self.client()
        calls = 0
        while c.rate_limited < 2 and calls < 300:
            c.config()
            calls += 1
        self.assertGreaterEqual(c.rate_limited, 2)
        log = self.recorder.log
        for i, entry in enumerate(log):
            if entry["status"] == 429:
                retry = log[i + 1]
                self.assertEqual(retry["url"], entry["url"])
                self.assertNotEqual(retry["nonce"], entry["nonce"])
                self.assertGreaterEqual(retry["at"] - entry["at"], 0.9)
        self.assertEqual(len({e["nonce"] for e in log}), len(log))

    def test_a_revoked_device_gets_a_clear_fatal_error(self):
        self.owner.revoke(self.device_id)
        c = self.client()
        with self.assertRaises(EagateError) as e:
            c.poll(wait=1)
        self.assertEqual((e.exception.code, e.exception.status, e.exception.fatal), ("device-revoked", 401, True))
        self.assertTrue(e.exception.detail)
        self.assertEqual(len(self.recorder.log), 1)
        with self.assertRaises(EagateError):
            c.run(lambda s: None, wait=1)

    def test_a_wrong_secret_is_invalid_signature(self):
        self.secret = "eags_" + "B" * 43
        with self.assertRaises(EagateError) as e:
            self.client().config()
        self.assertEqual((e.exception.code, e.exception.fatal), ("invalid-signature", True))

    def test_an_unreachable_server_is_a_transport_error(self):
        c = DeviceClient("http://127.0.0.1:9", self.device_id, self.secret, max_attempts=2, backoff=0.01)
        with self.assertRaises(EagateError) as e:
            c.config()
        self.assertEqual((e.exception.code, e.exception.status), ("connect-failed", 0))
        self.assertEqual(c.requests, 2)

    def test_the_command_line(self):
        env = dict(os.environ, EAGATE_DEVICE_SECRET=self.secret)
        done = subprocess.run([sys.executable, "-m", "eagate_client", "--server", self.server, "--device-id",
                               self.device_id, "config"], env=env, capture_output=True, text=True, timeout=60)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertIn(f'"device_id": "{self.device_id}"', done.stdout)
        self.assertNotIn(self.secret, done.stdout + done.stderr)
        env["EAGATE_DEVICE_SECRET"] = "eags_" + "C" * 43
        done = subprocess.run([sys.executable, "-m", "eagate_client", "--server", self.server, "--device-id",
                               self.device_id, "heartbeat", "--ea-version", "1"], env=env, capture_output=True,
                              text=True, timeout=60)
        self.assertEqual(done.returncode, 1)
        self.assertIn("error: invalid-signature (HTTP 401)", done.stderr)


if __name__ == "__main__":
    unittest.main()
