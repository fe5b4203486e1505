"""Live tests of the MQL5 SDK and the reference EA, compiled as C++ against
the shim (build.sh), talking to a real eagate server over HTTP.

Environment: EAGATE_SDK_SERVER (the server's base URL; scripts/sdk-test.sh
starts one with EAGATE_RATE_LIMIT_DEVICE_PER_SECOND=3) and
EAGATE_SDK_MQL5_BUILD (build.sh's output directory).
"""

import json
import os
import subprocess
import sys
import tempfile
import time
import unittest
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "testing"))
from eagate_owner import Owner, live_server  # noqa: E402

REPO = os.path.normpath(os.path.join(HERE, "..", "..", ".."))


class Run:
    """One run of a compiled MQL5 program."""

    def __init__(self, rc, out, err, trace, state):
        self.rc, self.out, self.err, self.trace, self.state = rc, out, err, trace, state

    def orders(self):
        return [o for o in self.state if o["kind"] == "order"]

    def deals(self):
        return [d for d in self.state if d["kind"] == "deal"]

    def positions(self):
        return [p for p in self.state if p["kind"] == "position"]


def read_state(path):
    rows = []
    if not os.path.exists(path):
        return rows
    with open(path, encoding="utf-8") as f:
        for line in f:
            p = line.rstrip("\n").split("\t")
            if p[0] == "order":
                rows.append({"kind": "order", "ticket": int(p[1]), "active": p[2] == "1", "type": int(p[3]),
                             "symbol": p[4], "volume": float(p[5]), "price": float(p[6]), "sl": float(p[7]),
                             "tp": float(p[8]), "magic": int(p[9]), "comment": p[11]})
            elif p[0] == "deal":
                rows.append({"kind": "deal", "ticket": int(p[1]), "order": int(p[2]), "type": int(p[3]),
                             "symbol": p[4], "volume": float(p[5]), "price": float(p[6]), "magic": int(p[7]),
                             "comment": p[9], "entry": int(p[10]) if len(p) > 10 else 0,
                             "profit": float(p[11]) if len(p) > 11 else 0.0})
            elif p[0] == "position":
                rows.append({"kind": "position", "ticket": int(p[1]), "type": int(p[2]), "symbol": p[3],
                             "volume": float(p[4]), "price": float(p[5]), "magic": int(p[8]), "comment": p[10]})
    return rows


class MQL5Live(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = live_server()
        cls.build = os.environ.get("EAGATE_SDK_MQL5_BUILD") or os.path.join(REPO, "target", "sdk-mql5")
        if not os.path.exists(os.path.join(cls.build, "EagateReferenceEA")):
            raise AssertionError(f"no compiled programs in {cls.build}: run sdk/mql5/verify/build.sh")
        cls.owner = Owner(cls.server)
        cls.tmp = tempfile.TemporaryDirectory()

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def setUp(self):
        self.device_id, self.secret = self.owner.create_device()
        self.state = os.path.join(self.tmp.name, uuid.uuid4().hex + ".state")
        self.files = os.path.join(self.tmp.name, uuid.uuid4().hex + "-files")

    def run_program(self, program, inputs=None, env=None, timeout=90):
        trace = os.path.join(self.tmp.name, uuid.uuid4().hex + ".trace")
        full = dict(os.environ)
        full.update({
            "MQL5_INPUT_InpServerUrl": self.server,
            "MQL5_INPUT_InpDeviceId": self.device_id,
            "MQL5_INPUT_InpDeviceSecret": self.secret,
            "SHIM_ALLOWED_URLS": self.server,
            "SHIM_TRACE": trace,
            "SHIM_STATE": self.state,
            "SHIM_MAX_SECONDS": "60",
            "SHIM_FILES": self.files,
        })
        for k, v in (inputs or {}).items():
            full["MQL5_INPUT_" + k] = str(v)
        full.update(env or {})
        done = subprocess.run([os.path.join(self.build, program)], env=full, capture_output=True, text=True,
                              timeout=timeout)
        lines = []
        if os.path.exists(trace):
            with open(trace, encoding="utf-8") as f:
                lines = [json.loads(line) for line in f]
        run = Run(done.returncode, done.stdout, done.stderr, lines, read_state(self.state))
        # Whatever happened, the secret is never printed.
        self.assertNotIn(self.secret, run.out + run.err, "the device secret was printed")
        self.assertNotIn(self.secret[5:], run.out + run.err, "the device secret was printed")
        return run

    def assertFreshNonces(self, run):
        sent = [t["nonce"] for t in run.trace if t["status"] != -1 or t["error"] != 4014]
        self.assertEqual(len(sent), len(set(sent)), "a nonce was sent twice")

    # ------------------------------------------------------------------ the EA

    def test_reference_ea_executes_acknowledges_and_reports(self):
        """Five signals, a terminal clock 1000 s fast, a device limit of 3
        requests per second: everything is executed once, acknowledged with
        the ticket and fill price or the reason, and the heartbeat arrives."""
        o = self.owner
        buy = o.publish(self.device_id, instrument="EURUSD", side="buy", volume=0.1, stop_loss=1.08,
                        take_profit=1.1, comment="live test buy")
        sell = o.publish(self.device_id, instrument="USDJPY", side="sell", volume=0.05)
        limit = o.publish(self.device_id, instrument="EURUSD", side="buy", order_type="limit", volume=0.2,
                          entry_price=1.07, stop_loss=1.06)
        unknown = o.publish(self.device_id, instrument="NOSUCH", side="buy", volume=0.1)
        too_big = o.publish(self.device_id, instrument="EURUSD", side="sell", volume=30)
        run = self.run_program("EagateReferenceEA", {"InpPollWaitSeconds": 2},
                               {"SHIM_STOP_AFTER_ACKS": "5", "SHIM_CLOCK_SKEW": "1000"})
        self.assertEqual(run.rc, 0, run.out + run.err)
        self.assertIn("s ahead of the server's", run.out)

        orders = {o_["comment"]: o_ for o_ in run.orders()}
        self.assertEqual(len(run.orders()), 3, run.state)
        deals = {d["order"]: d for d in run.deals()}

        def tag(signal):
            import base64
            return "eagate:" + base64.urlsafe_b64encode(uuid.UUID(signal["id"]).bytes).decode().rstrip("=")

        d = o.delivery(buy["id"], self.device_id)
        order = orders[tag(buy)]
        self.assertEqual((d["status"], d["outcome"]), ("acknowledged", "executed"))
        self.assertEqual(d["ticket"], order["ticket"])
        self.assertEqual(d["fill_price"], 1.08512)
        self.assertEqual(deals[order["ticket"]]["price"], 1.08512)
        self.assertEqual((order["symbol"], order["type"], order["volume"], order["sl"], order["tp"]),
                         ("EURUSD", 0, 0.1, 1.08, 1.1))
        self.assertEqual(order["magic"], 5524001)

        d = o.delivery(sell["id"], self.device_id)
        order = orders[tag(sell)]
        self.assertEqual((d["outcome"], d["ticket"], d["fill_price"]), ("executed", order["ticket"], 151.23))
        self.assertEqual((order["symbol"], order["type"], order["volume"], order["sl"]), ("USDJPY", 1, 0.05, 0.0))

        d = o.delivery(limit["id"], self.device_id)
        order = orders[tag(limit)]
        self.assertEqual((d["outcome"], d["ticket"], d["fill_price"]), ("executed", order["ticket"], None))
        self.assertTrue(order["active"])
        self.assertEqual((order["type"], order["price"], order["sl"]), (2, 1.07, 1.06))
        self.assertIn("limit order placed", d["message"])

        d = o.delivery(unknown["id"], self.device_id)
        self.assertEqual((d["outcome"], d["ticket"]), ("rejected", None))
        self.assertIn("NOSUCH is not available", d["message"])

        d = o.delivery(too_big["id"], self.device_id)
        self.assertEqual(d["outcome"], "failed")
        self.assertIn("10019", d["message"])

        # Accepted (202), written with the server's next activity flush.
        deadline = time.time() + 10
        while o.device(self.device_id)["heartbeat"] is None and time.time() < deadline:
            time.sleep(0.05)
        hb = o.device(self.device_id)["heartbeat"]
        self.assertIsNotNone(hb, "the heartbeat reached the owner within 10 s")
        self.assertEqual(hb["ea_version"], "1.2.0")
        self.assertEqual(hb["terminal_build"], 4410)
        self.assertEqual(hb["broker"], "Shim Broker Ltd \u2014 \u6771\u4eac")
        self.assertEqual(hb["account_login"], 51234567)
        self.assertEqual((hb["balance"], hb["equity"]), (10250.75, 10100.5))

        self.assertFreshNonces(run)
        for t in run.trace:
            if t["method"] == "POST" and t["status"] != -1:
                self.assertEqual(t["content_type"], "application/json")
        # The first request was signed with the wrong clock, then corrected.
        self.assertEqual(run.trace[0]["status"], 401)
        self.assertIn("clock-skew", run.trace[0]["body"])
        self.assertLess(abs(int(run.trace[1]["timestamp"]) - time.time()), 30)

    def test_the_config_is_fetched_with_if_none_match_and_applied(self):
        """The client reads the trading configuration (304 when unchanged,
        the poll's config_revision matches); the EA sizes by risk, caps at
        max_lot, uses the configured magic number and refuses opening
        signals while close_only."""
        o = self.owner
        o.configure(self.device_id, {
            "sizing": {"type": "risk_percent", "percent": 1}, "max_lot": 0.5,
            "allowed_symbols": ["EURUSD", "XAUUSD"], "symbol_map": {"XAUUSD": "GOLD.m"},
            "magic_number": 777, "slippage_points": 15})
        run = self.run_program("EagateProbe", {"InpScenario": "config"})
        self.assertEqual(run.rc, 0, run.out + run.err)
        self.assertIn("mode=active sizing=risk_percent:1 max_lot=0.5 allowed=EURUSD,XAUUSD map=XAUUSD=GOLD.m "
                      "gold=GOLD.m eurusd_allowed=yes magic=777 slippage=15", run.out)
        sent = [t for t in run.trace if t["url"].endswith("/api/v1/device/config")]
        self.assertEqual([t["status"] for t in sent], [200, 304], run.trace)

        # Risk 1% of 10250.75 at 500 points of 1.0 per lot: 0.20 lots.
        risky = o.publish(self.device_id, instrument="EURUSD", side="buy", volume=1.0, stop_loss=1.08012)
        no_stop = o.publish(self.device_id, instrument="EURUSD", side="buy", volume=1.0)
        self.assertEqual(o.delivery(no_stop["id"], self.device_id)["skip_reason"], "no_stop_loss")
        run = self.run_program("EagateReferenceEA", {"InpPollWaitSeconds": 1}, {"SHIM_STOP_AFTER_ACKS": "1"})
        self.assertEqual(run.rc, 0, run.out + run.err)
        d = o.delivery(risky["id"], self.device_id)
        self.assertEqual(d["outcome"], "executed", d)
        (order,) = run.orders()
        self.assertEqual((order["volume"], order["magic"]), (0.2, 777))

        # The same magic number: the position opened above is the EA's.
        o.configure(self.device_id, {"mode": "close_only", "magic_number": 777})
        opening = o.publish(self.device_id, instrument="EURUSD", side="buy", volume=0.1)
        self.assertEqual(o.delivery(opening["id"], self.device_id)["skip_reason"], "close_only")
        closing = o.publish(self.device_id, instrument="EURUSD", side="buy", volume=0.1, action="close")
        run = self.run_program("EagateReferenceEA", {"InpPollWaitSeconds": 1}, {"SHIM_STOP_AFTER_ACKS": "1"})
        self.assertEqual(run.rc, 0, run.out + run.err)
        self.assertIn("mode close_only", run.out)
        d = o.delivery(closing["id"], self.device_id)
        self.assertEqual(d["outcome"], "executed", d)
        self.assertEqual(d["message"], f"closed 1 buy position on EURUSD ({order['ticket']})")
        self.assertEqual(run.positions(), [])
        (out,) = [x for x in run.deals() if x["entry"] == 1]
        self.assertEqual((out["type"], out["volume"], out["price"], out["magic"]), (1, 0.2, 1.085, 777))
        self.assertEqual(d["fill_price"], 1.085)

    def test_max_open_trades_refuses_and_action_close_frees_a_slot(self):
        """max_open_trades 2: the third opening signal is rejected with the
        reason; a close signal closes the EA's buy positions on EURUSD (not
        its sell), and the next opening signal trades; a close with nothing
        to close is rejected."""
        o = self.owner
        o.configure(self.device_id, {"max_open_trades": 2})
        first = o.publish(self.device_id, instrument="EURUSD", side="buy", volume=0.1)
        second = o.publish(self.device_id, instrument="EURUSD", side="sell", volume=0.2)
        third = o.publish(self.device_id, instrument="USDJPY", side="buy", volume=0.1)
        close = o.publish(self.device_id, instrument="EURUSD", side="buy", volume=0.1, action="close")
        fourth = o.publish(self.device_id, instrument="USDJPY", side="buy", volume=0.1)
        run = self.run_program("EagateReferenceEA", {"InpPollWaitSeconds": 1}, {"SHIM_STOP_AFTER_ACKS": "5"})
        self.assertEqual(run.rc, 0, run.out + run.err)
        outcomes = [o.delivery(s["id"], self.device_id) for s in (first, second, third, close, fourth)]
        self.assertEqual([d["outcome"] for d in outcomes], ["executed", "executed", "rejected", "executed", "executed"])
        self.assertEqual(outcomes[2]["message"], "max_open_trades 2 reached: 2 positions open with magic 5524001")
        self.assertEqual(outcomes[3]["message"], f"closed 1 buy position on EURUSD ({outcomes[0]['ticket']})")
        self.assertEqual(outcomes[3]["fill_price"], 1.085)
        left = sorted((p["symbol"], p["type"], p["volume"]) for p in run.positions())
        self.assertEqual(left, [("EURUSD", 1, 0.2), ("USDJPY", 0, 0.1)])
        nothing = o.publish(self.device_id, instrument="XAUUSD", side="sell", volume=0.1, action="close")
        run = self.run_program("EagateReferenceEA", {"InpPollWaitSeconds": 1}, {"SHIM_STOP_AFTER_ACKS": "1"})
        self.assertEqual(run.rc, 0, run.out + run.err)
        d = o.delivery(nothing["id"], self.device_id)
        self.assertEqual((d["outcome"], d["message"]),
                         ("rejected", "no open sell position of this EA on XAUUSD to close"))

    def test_max_daily_loss_refuses_new_trades_once_reached(self):
        """max_daily_loss 5: a 1-lot EURUSD buy closed at the bid loses the
        12-point spread (12.00 at 1 per point per lot); the next opening
        signal is rejected with today's loss."""
        o = self.owner
        o.configure(self.device_id, {"max_daily_loss": 5})
        opening = o.publish(self.device_id, instrument="EURUSD", side="buy", volume=1)
        closing = o.publish(self.device_id, instrument="EURUSD", side="buy", volume=1, action="close")
        refused = o.publish(self.device_id, instrument="EURUSD", side="buy", volume=0.1)
        run = self.run_program("EagateReferenceEA", {"InpPollWaitSeconds": 1}, {"SHIM_STOP_AFTER_ACKS": "3"})
        self.assertEqual(run.rc, 0, run.out + run.err)
        self.assertEqual(o.delivery(opening["id"], self.device_id)["outcome"], "executed")
        self.assertEqual(o.delivery(closing["id"], self.device_id)["outcome"], "executed")
        (out,) = [x for x in run.deals() if x["entry"] == 1]
        self.assertEqual(out["profit"], -12.0)
        d = o.delivery(refused["id"], self.device_id)
        self.assertEqual((d["outcome"], d["message"]), ("rejected", "max_daily_loss 5 reached: today's loss is 12.00 "
                                                                    "(closed deals and open positions with magic 5524001)"))
        self.assertEqual(len(run.positions()), 0)

    def test_an_uncertain_trade_result_looks_for_the_order_before_saying_failed(self):
        """The trade server places the order but answers 10012 (timeout)
        without a ticket: the EA finds the order by its comment and
        acknowledges executed with its ticket."""
        signal = self.owner.publish(self.device_id, instrument="EURUSD", side="buy", volume=0.1)
        run = self.run_program("EagateReferenceEA", {"InpPollWaitSeconds": 1},
                               {"SHIM_STOP_AFTER_ACKS": "1", "SHIM_TRADE_RETCODE": "10012"})
        self.assertEqual(run.rc, 0, run.out + run.err)
        (order,) = run.orders()
        d = self.owner.delivery(signal["id"], self.device_id)
        self.assertEqual((d["outcome"], d["ticket"], d["fill_price"]), ("executed", order["ticket"], 1.08512))
        self.assertIn("trade server retcode 10012: request canceled by timeout, but order", d["message"])

    def test_a_redelivered_signal_is_acknowledged_not_traded_twice(self):
        """The order is placed but every acknowledgement is lost; the EA is
        restarted: it finds what it did (terminal global variables, or the
        order's comment when those are gone) and acknowledges, no new order."""
        for forget in ("0", "1"):
            with self.subTest(forget_globals=forget):
                self.state = os.path.join(self.tmp.name, uuid.uuid4().hex + ".state")
                signal = self.owner.publish(self.device_id, instrument="EURUSD", side="buy", volume=0.3)
                first = self.run_program("EagateReferenceEA", {"InpPollWaitSeconds": 1},
                                         {"SHIM_FAIL_PATH": "/api/v1/device/ack", "SHIM_FAIL_COUNT": "100",
                                          "SHIM_STOP_AFTER_TIMERS": "1"})
                self.assertEqual(first.rc, 0, first.out + first.err)
                self.assertEqual(len(first.orders()), 1, first.state)
                self.assertTrue(any("(injected failure" in t["body"] for t in first.trace))
                self.assertEqual(self.owner.delivery(signal["id"], self.device_id)["status"], "delivered")

                second = self.run_program("EagateReferenceEA", {"InpPollWaitSeconds": 1},
                                          {"SHIM_STOP_AFTER_ACKS": "1", "SHIM_FORGET_GLOBALS": forget})
                self.assertEqual(second.rc, 0, second.out + second.err)
                self.assertEqual(len(second.orders()), 1, "the signal was traded twice")
                self.assertIn("handled before" if forget == "0" else "found order", second.out)
                d = self.owner.delivery(signal["id"], self.device_id)
                self.assertEqual((d["status"], d["outcome"]), ("acknowledged", "executed"))
                self.assertEqual(d["ticket"], first.orders()[0]["ticket"])
                self.assertEqual(d["fill_price"], 1.08512)

    def wait_for_heartbeat(self):
        deadline = time.time() + 10
        while self.owner.device(self.device_id)["heartbeat"] is None and time.time() < deadline:
            time.sleep(0.05)
        return self.owner.device(self.device_id)["heartbeat"]

    def test_a_broker_name_with_a_c1_control_is_cleaned_and_trading_goes_on(self):
        """The server refuses every char::is_control, C1 (U+0080-U+009F)
        included: the SDK sends a space instead, so the heartbeat is
        accepted and the signal executed."""
        signal = self.owner.publish(self.device_id, instrument="EURUSD", side="buy", volume=0.1)
        run = self.run_program("EagateReferenceEA", {"InpPollWaitSeconds": 1},
                               {"SHIM_STOP_AFTER_ACKS": "1", "SHIM_BROKER": "Shim\u0085Broker\u009fLtd"})
        self.assertEqual(run.rc, 0, run.out + run.err)
        beats = [t for t in run.trace if t["url"].endswith("/api/v1/device/heartbeat")]
        self.assertEqual([t["status"] for t in beats], [202], run.trace)
        d = self.owner.delivery(signal["id"], self.device_id)
        self.assertEqual((d["status"], d["outcome"]), ("acknowledged", "executed"))
        hb = self.wait_for_heartbeat()
        self.assertIsNotNone(hb, "the heartbeat reached the owner within 10 s")
        self.assertEqual(hb["broker"], "Shim Broker Ltd")

    def test_a_failing_heartbeat_does_not_stop_trading(self):
        """Every heartbeat fails (the network, injected): the EA logs it and
        still polls, executes and acknowledges."""
        signal = self.owner.publish(self.device_id, instrument="EURUSD", side="sell", volume=0.1)
        run = self.run_program("EagateReferenceEA", {"InpPollWaitSeconds": 1},
                               {"SHIM_STOP_AFTER_ACKS": "1", "SHIM_FAIL_PATH": "/api/v1/device/heartbeat",
                                "SHIM_FAIL_COUNT": "100"})
        self.assertEqual(run.rc, 0, run.out + run.err)
        self.assertIn("heartbeat failed: request-failed", run.out)
        self.assertIn("polling goes on", run.out)
        d = self.owner.delivery(signal["id"], self.device_id)
        self.assertEqual((d["status"], d["outcome"]), ("acknowledged", "executed"))
        self.assertIsNone(self.owner.device(self.device_id)["heartbeat"])

    # ------------------------------------------------------------------ deployments

    def test_a_deployed_bundle_is_downloaded_resumed_verified_and_installed(self):
        """The owner deploys a 200,000-byte bundle; the EA downloads it in
        64 KiB Range requests. First run: the first chunk arrives, then the
        connection keeps breaking and the EA gives up for now (the partial
        file stays). Second run (a restart): it resumes at byte 65536, a
        transfer is cut once more and retried from the same byte, the
        SHA-256 matches, the file is in MQL5\\Files and the owner sees the
        device installed."""
        o = self.owner
        data = os.urandom(200_000)
        bundle = o.upload_bundle("RefEA", "2.0.0-rc.1", data, notes="live test")
        deployment = o.deploy(bundle["id"], [self.device_id])
        self.assertEqual(o.deployment_device(deployment["id"], self.device_id)["status"], "pending")
        inputs = {"InpPollWaitSeconds": 1, "InpDownloadChunkKiB": 64}
        first = self.run_program("EagateReferenceEA", inputs,
                                 {"SHIM_CUT_PATH": "/api/v1/device/bundles/", "SHIM_CUT_SKIP": "1",
                                  "SHIM_CUT_COUNT": "100", "SHIM_STOP_AFTER_TIMERS": "1"})
        self.assertEqual(first.rc, 0, first.out + first.err)
        self.assertIn("the download of bundle RefEA 2.0.0-rc.1 stopped: request-failed", first.out)
        # (429s from the test server's 3 requests/s limit are retried and left out)
        gets = [t for t in first.trace if "/api/v1/device/bundles/" in t["url"] and t["status"] != 429]
        self.assertEqual([(t["range"], t["status"]) for t in gets],
                         [("bytes=0-65535", 206)] + [("bytes=65536-131071", -1)] * 4, first.trace)
        self.assertEqual(gets[0]["content_range"], "bytes 0-65535/200000")
        with open(os.path.join(self.files, "RefEA-2.0.0-rc.1.ex5.part"), "rb") as f:
            self.assertEqual(f.read(), data[:65536])
        self.assertEqual(o.deployment_device(deployment["id"], self.device_id)["status"], "downloading")

        second = self.run_program("EagateReferenceEA", inputs,
                                  {"SHIM_CUT_PATH": "/api/v1/device/bundles/", "SHIM_CUT_SKIP": "1",
                                   "SHIM_CUT_COUNT": "1", "SHIM_STOP_AFTER_TIMERS": "2"})
        self.assertEqual(second.rc, 0, second.out + second.err)
        gets = [t for t in second.trace if "/api/v1/device/bundles/" in t["url"] and t["status"] != 429]
        self.assertEqual([(t["range"], t["status"]) for t in gets],
                         [("bytes=65536-131071", 206), ("bytes=131072-196607", -1), ("bytes=131072-196607", 206),
                          ("bytes=196608-199999", 206)], second.trace)
        self.assertIn("saved as MQL5\\Files\\RefEA-2.0.0-rc.1.ex5 (SHA-256 verified, resumed at byte 65536)", second.out)
        with open(os.path.join(self.files, "RefEA-2.0.0-rc.1.ex5"), "rb") as f:
            self.assertEqual(f.read(), data)
        self.assertFalse(os.path.exists(os.path.join(self.files, "RefEA-2.0.0-rc.1.ex5.part")))
        reports = [json.loads(t["body"])["status"] for t in first.trace + second.trace
                   if t["url"].endswith("/status") and t["status"] == 200]
        self.assertEqual(reports, ["downloading", "installed"])
        progress = o.deployment(deployment["id"])
        self.assertEqual((progress["state"], progress["counts"]["installed"]), ("completed", 1), progress)
        self.assertEqual(o.deployment_device(deployment["id"], self.device_id)["status"], "installed")
        self.assertFreshNonces(second)

    def test_a_corrupted_download_is_reported_failed_with_the_reason(self):
        o = self.owner
        data = os.urandom(5000)
        bundle = o.upload_bundle("RefEA", "3.1.4", data)
        deployment = o.deploy(bundle["id"], [self.device_id])
        run = self.run_program("EagateReferenceEA", {"InpPollWaitSeconds": 1},
                               {"SHIM_CORRUPT_PATH": "/api/v1/device/bundles/", "SHIM_CORRUPT_COUNT": "1",
                                "SHIM_STOP_AFTER_TIMERS": "2"})
        self.assertEqual(run.rc, 0, run.out + run.err)
        self.assertIn("bundle RefEA 3.1.4 failed: digest-mismatch", run.out)
        device = o.deployment_device(deployment["id"], self.device_id)
        self.assertEqual(device["status"], "failed", device)
        self.assertIn("digest-mismatch", device["reason"])
        self.assertIn("the server announced 5000 bytes with " + bundle["sha256"], device["reason"])
        self.assertFalse(os.path.exists(os.path.join(self.files, "RefEA-3.1.4.ex5")))
        self.assertFalse(os.path.exists(os.path.join(self.files, "RefEA-3.1.4.ex5.part")))

    def test_a_revoked_device_stops_with_a_clear_error(self):
        self.owner.revoke(self.device_id)
        run = self.run_program("EagateReferenceEA", {"InpPollWaitSeconds": 1})
        self.assertEqual(run.rc, 5, "the EA should stop by itself: " + run.out + run.err)
        self.assertIn("ALERT: EagateReferenceEA stopped: heartbeat failed: device-revoked (HTTP 401)", run.out)
        self.assertIn("The owner revoked this device", run.out)
        self.assertEqual(len(run.trace), 1, "a revoked device must not be retried")

    def test_a_wrong_secret_is_reported_not_retried(self):
        self.secret = "eags_" + "A" * 43
        run = self.run_program("EagateCheckConnection")
        self.assertEqual(run.rc, 1)
        self.assertIn("invalid-signature (HTTP 401)", run.out)
        self.assertEqual(len(run.trace), 1)

    def test_webrequest_not_allowed_names_the_setting(self):
        run = self.run_program("EagateCheckConnection", env={"SHIM_ALLOWED_URLS": "https://elsewhere.example"})
        self.assertEqual(run.rc, 1)
        self.assertIn("webrequest-not-allowed", run.out)
        self.assertIn("Tools > Options > Expert Advisors", run.out)
        self.assertIn(self.server, run.out)

    # ------------------------------------------------------------------ clock, retries

    def test_a_wrong_clock_is_corrected_from_the_clock_skew_answer(self):
        run = self.run_program("EagateCheckConnection", env={"SHIM_CLOCK_SKEW": "-3600", "SHIM_HIDE_HEADERS": "date"})
        self.assertEqual(run.rc, 0, run.out + run.err)
        self.assertIn("3600 s behind the server's (clock-skew answer)", run.out)
        first, second = run.trace
        self.assertEqual(first["status"], 401)
        self.assertIn('"code":"clock-skew"', first["body"])
        self.assertLess(abs(int(first["timestamp"]) + 3600 - time.time()), 30)
        self.assertEqual(second["status"], 200)
        self.assertLess(abs(int(second["timestamp"]) - time.time()), 5)
        self.assertNotEqual(first["nonce"], second["nonce"])

    def test_a_small_clock_error_is_corrected_from_the_date_header(self):
        run = self.run_program("EagateCheckConnection", env={"SHIM_CLOCK_SKEW": "-200"})
        self.assertEqual(run.rc, 0, run.out + run.err)
        self.assertEqual([t["status"] for t in run.trace], [200])
        offset = int(run.out.split("clock offset ")[1].split(" s")[0])
        self.assertLessEqual(abs(offset - 200), 2)
        self.assertIn("(Date header)", run.out)

    def test_rate_limited_requests_are_retried_with_new_nonces(self):
        run = self.run_program("EagateProbe", {"InpScenario": "burst"})
        self.assertEqual(run.rc, 0, run.out + run.err)
        statuses = [t["status"] for t in run.trace]
        self.assertGreaterEqual(statuses.count(429), 2)
        for i, t in enumerate(run.trace):
            if t["status"] == 429:
                retry = run.trace[i + 1]
                self.assertEqual((retry["method"], retry["url"]), (t["method"], t["url"]))
                self.assertNotEqual(retry["nonce"], t["nonce"])
                self.assertGreaterEqual(retry["at_ms"] - t["at_ms"], 900, "Retry-After was not respected")
        self.assertEqual(statuses[-1], 200)
        self.assertFreshNonces(run)

    def test_network_failures_are_retried_with_new_nonces(self):
        run = self.run_program("EagateCheckConnection",
                               env={"SHIM_FAIL_PATH": "/api/v1/device/config", "SHIM_FAIL_COUNT": "2"})
        self.assertEqual(run.rc, 0, run.out + run.err)
        self.assertEqual([t["status"] for t in run.trace], [-1, -1, 200])
        self.assertFreshNonces(run)

    def test_repeated_and_conflicting_acknowledgements(self):
        signal = self.owner.publish(self.device_id, instrument="EURUSD", side="sell", volume=0.1)
        run = self.run_program("EagateProbe", {"InpScenario": "ack-twice", "InpSignalId": signal["id"]})
        self.assertEqual(run.rc, 0, run.out + run.err)
        d = self.owner.delivery(signal["id"], self.device_id)
        self.assertEqual((d["outcome"], d["message"]), ("rejected", "probe: first"))


class MQL5Offline(unittest.TestCase):
    def test_the_self_test_passes_and_covers_every_vector(self):
        build = os.environ.get("EAGATE_SDK_MQL5_BUILD") or os.path.join(REPO, "target", "sdk-mql5")
        done = subprocess.run([os.path.join(build, "EagateSelfTest")], capture_output=True, text=True, timeout=60)
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        with open(os.path.join(REPO, "docs", "protocol-vectors.json"), encoding="utf-8") as f:
            vectors = json.load(f)["vectors"]
        self.assertIn(" 0 failed", done.stdout)
        checks = int(done.stdout.split("eagate self-test: ")[1].split(" checks")[0])
        self.assertGreater(checks, 150 + 6 * len(vectors))


if __name__ == "__main__":
    unittest.main()
