"""DeviceClient: the eagate device API, signed with protocol v1."""

from __future__ import annotations

import email.utils
import enum
import http.client
import json
import logging
import math
import random
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Union

from . import signing

log = logging.getLogger("eagate_client")
log.addHandler(logging.NullHandler())

# A Date header this far (seconds) from our idea of the server's clock
# replaces the learned offset.
CLOCK_TOLERANCE_SECONDS = 30

#: Codes of errors retrying cannot fix: a person must act.
FATAL_CODES = frozenset({
    "invalid-signature", "device-revoked", "malformed-header", "invalid-url", "not-initialised",
})


class Outcome(str, enum.Enum):
    """What the EA did with a signal."""

    EXECUTED = "executed"  # executed (ticket, fill price)
    REJECTED = "rejected"  # the EA decided not to execute it (reason in message)
    FAILED = "failed"  # execution was attempted and failed (reason in message)


class EagateError(Exception):
    """A failed call: the server's problem code (docs/protocol.md,
    docs/api.md) or one of the client's own (invalid-argument, invalid-url,
    connect-failed, timeout, request-failed, bad-response, http-error), the
    HTTP status (0 when there was no answer) and the server's detail."""

    def __init__(self, code: str, status: int, detail: str):
        super().__init__(f"{code} (HTTP {status}): {detail}" if status else f"{code}: {detail}")
        self.code = code
        self.status = status
        self.detail = detail

    @property
    def fatal(self) -> bool:
        """True when retrying cannot help (wrong secret, revoked device...)."""
        return self.code in FATAL_CODES


class TransportError(Exception):
    """No HTTP answer: code is connect-failed, timeout or request-failed."""

    def __init__(self, code: str, detail: str):
        super().__init__(detail)
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class Signal:
    """A trading signal as a device receives it. ``raw`` keeps every field
    the server sent, including ones this version does not know."""

    id: str
    instrument: str
    side: str  # buy | sell
    order_type: str  # market | limit | stop
    volume: float
    entry_price: Optional[float]
    stop_loss: Optional[float]
    take_profit: Optional[float]
    comment: Optional[str]
    expires_at: Optional[str]
    created_at: str
    #: ``open``, or ``close``: close this EA's positions on the instrument
    #: that were opened in ``side`` direction.
    action: str = "open"
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class AckReceipt:
    signal_id: str
    outcome: str
    ticket: Optional[int]
    fill_price: Optional[float]
    message: Optional[str]
    acknowledged_at: str


@dataclass(frozen=True)
class TradingConfig:
    """The device's effective trading configuration (docs/api.md). The
    server already applied mode, allowed_symbols, symbol_map, fixed and
    multiplier sizing and max_lot to the signals it delivers; the EA applies
    risk_percent sizing, max_open_trades, max_daily_loss, slippage_points and
    magic_number. None: not set."""

    mode: str = "active"  # active | close_only | paused
    sizing_type: str = "multiplier"  # fixed | multiplier | risk_percent
    #: lots (fixed), factor (multiplier) or percent of the balance (risk_percent)
    sizing_value: float = 1.0
    max_lot: Optional[float] = None
    allowed_symbols: Optional[tuple[str, ...]] = None
    symbol_map: Mapping[str, str] = field(default_factory=dict)
    max_open_trades: Optional[int] = None
    max_daily_loss: Optional[float] = None
    slippage_points: Optional[int] = None
    magic_number: Optional[int] = None

    def map_symbol(self, symbol: str) -> str:
        """The broker symbol a signal symbol maps to (itself if unmapped)."""
        return self.symbol_map.get(symbol, symbol)

    def symbol_allowed(self, symbol: str) -> bool:
        return self.allowed_symbols is None or symbol in self.allowed_symbols

    @classmethod
    def from_json(cls, doc: Any) -> "TradingConfig":
        if not isinstance(doc, dict):
            return cls()
        sizing = doc.get("sizing") if isinstance(doc.get("sizing"), dict) else {}
        sizing_type = sizing.get("type") if isinstance(sizing.get("type"), str) else "multiplier"
        key = {"fixed": "lots", "multiplier": "factor", "risk_percent": "percent"}.get(sizing_type, "factor")
        value = _opt_num(sizing, key)
        symbols = doc.get("allowed_symbols")
        mapping = doc.get("symbol_map") if isinstance(doc.get("symbol_map"), dict) else {}
        return cls(
            mode=doc["mode"] if isinstance(doc.get("mode"), str) else "active",
            sizing_type=sizing_type,
            sizing_value=value if value is not None else (1.0 if sizing_type == "multiplier" else 0.0),
            max_lot=_opt_num(doc, "max_lot"),
            allowed_symbols=tuple(x for x in symbols if isinstance(x, str)) if isinstance(symbols, list) else None,
            symbol_map={k: v for k, v in mapping.items() if isinstance(v, str)},
            max_open_trades=_opt_int(doc, "max_open_trades"),
            max_daily_loss=_opt_num(doc, "max_daily_loss"),
            slippage_points=_opt_int(doc, "slippage_points"),
            magic_number=_opt_int(doc, "magic_number"),
        )


@dataclass(frozen=True)
class DeviceConfig:
    poll_interval_seconds: int
    long_poll_max_seconds: int
    server_time: int
    device_id: str
    name: str
    #: Polls report it (``DeviceClient.config_revision``): refetch when it differs.
    config_revision: int = 0
    #: Send it back with ``config_if_changed`` (``If-None-Match``).
    etag: str = ""
    trading: TradingConfig = field(default_factory=TradingConfig)


Response = tuple  # (status: int, headers: dict[str, str] with lower-case names, body: bytes)
Transport = Callable[[str, str, Mapping[str, str], Optional[bytes], float], Response]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: D102
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def urllib_transport(method: str, url: str, headers: Mapping[str, str], body: Optional[bytes],
                     timeout: float) -> Response:
    """The default transport: urllib, no redirects, no proxies beyond the
    environment's."""
    request = urllib.request.Request(url, data=body, method=method, headers=dict(headers))
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as e:
        try:
            return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()
        finally:
            e.close()
    except (socket.timeout, TimeoutError) as e:
        raise TransportError("timeout", f"no answer within {timeout} s") from e
    except urllib.error.URLError as e:
        reason = e.reason
        if isinstance(reason, (socket.timeout, TimeoutError)):
            raise TransportError("timeout", f"no answer within {timeout} s") from e
        if isinstance(reason, (ConnectionError, socket.gaierror, OSError)):
            raise TransportError("connect-failed", f"could not connect: {reason}") from e
        raise TransportError("request-failed", str(reason)) from e
    except (OSError, http.client.HTTPException) as e:
        raise TransportError("request-failed", f"{type(e).__name__}: {e}") from e


def _clean_text(text: str, limit: int) -> str:
    """Control characters (C0, DEL and C1: U+0080-U+009F, all of which the
    server refuses) become spaces; at most ``limit`` characters."""
    return "".join(" " if ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F else c for c in text[:limit])


class DeviceClient:
    """A client for one device. Every request is signed with a fresh nonce;
    the server's clock offset is learned from its Date header and from
    clock-skew answers; 429 (after Retry-After), 5xx, 408, replayed and
    network failures are retried with back-off and a new nonce; every failure
    raises EagateError with the server's code and detail.

    >>> client = DeviceClient("https://eagate.example.com", device_id, secret)  # doctest: +SKIP
    >>> for signal in client.poll(wait=20):                                    # doctest: +SKIP
    ...     client.ack(signal.id, Outcome.EXECUTED, ticket=4812, fill_price=1.0851)
    """

    def __init__(self, server_url: str, device_id: str, secret: str, *, timeout: float = 15.0,
                 max_attempts: int = 4, backoff: float = 0.5, max_backoff: float = 8.0,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep,
                 transport: Optional[Transport] = None):
        url = server_url.strip().rstrip("/")
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise EagateError("invalid-url", 0, "the server URL must start with https:// (or http:// for local tests)")
        if parts.path or parts.query or parts.fragment:
            raise EagateError("invalid-url", 0,
                              "the server URL must be an origin such as https://eagate.example.com, without a path")
        device_id = device_id.strip().lower()
        if not signing.is_valid_device_id(device_id):
            raise EagateError("invalid-argument", 0,
                              "the device id must be a UUID such as 3f6c1a2e-8d4b-4c7e-9f10-2b3c4d5e6f70")
        secret = secret.strip()
        if not secret.startswith("eags_") or len(secret) <= 5 or any(not (0x20 < ord(c) < 0x7F) for c in secret):
            raise EagateError("invalid-argument", 0, "the device secret must be the eags_... text shown when the "
                                                     "device was registered, without spaces or line breaks")
        self._base = url
        self._device_id = device_id
        self._secret = secret
        self.timeout = timeout
        self.max_attempts = max(1, max_attempts)
        self.backoff = max(0.0, backoff)
        self.max_backoff = max(self.backoff, max_backoff)
        self._clock = clock
        self._sleep = sleep
        self._transport = transport or urllib_transport
        #: Seconds to add to the local clock to get the server's.
        self.clock_offset = 0
        #: server_time of the last successful answer that carried one.
        self.last_server_time = 0
        self.requests = 0
        self.retries = 0
        self.rate_limited = 0
        self.clock_corrections = 0
        #: The trading configuration's revision from the last poll (0 before
        #: one): when it differs from ``DeviceConfig.config_revision``, call
        #: ``config_if_changed``.
        self.config_revision = 0
        #: The deployment revision from the last poll (0 before one): when it
        #: changes, GET /api/v1/device/deployment has something new.
        self.deployment_revision = 0

    def __repr__(self) -> str:
        return f"DeviceClient({self._base!r}, device_id={self._device_id!r})"

    @property
    def device_id(self) -> str:
        return self._device_id

    def server_time(self) -> int:
        """The server's clock, as far as this client knows it."""
        return int(self._clock()) + self.clock_offset

    # ------------------------------------------------------------------ endpoints

    def poll(self, wait: int = 0, limit: int = 10) -> list[Signal]:
        """Pending signals, oldest first (at most ``limit``, 1-100). With
        ``wait`` > 0 the server holds the request until a signal arrives or
        the wait ends. Delivery is at least once: execute idempotently."""
        if not 0 <= wait <= 300:
            raise EagateError("invalid-argument", 0, "wait must be 0-300 (the server caps it, 30 by default)")
        if not 1 <= limit <= 100:
            raise EagateError("invalid-argument", 0, "limit must be 1-100")
        status, doc = self.request("GET", f"/api/v1/device/poll?wait={wait}&limit={limit}",
                                   timeout=self.timeout + wait)
        items = doc.get("signals")
        if not isinstance(items, list):
            raise EagateError("bad-response", status, "the answer has no signals array")
        if _opt_int(doc, "config_revision") is not None:
            self.config_revision = doc["config_revision"]
        if _opt_int(doc, "deployment_revision") is not None:
            self.deployment_revision = doc["deployment_revision"]
        signals = []
        for i, item in enumerate(items):
            try:
                signals.append(Signal(
                    id=_str(item, "id"), instrument=_str(item, "instrument"), side=_str(item, "side"),
                    order_type=_str(item, "order_type"), volume=_num(item, "volume"),
                    entry_price=_opt_num(item, "entry_price"), stop_loss=_opt_num(item, "stop_loss"),
                    take_profit=_opt_num(item, "take_profit"), comment=_opt_str(item, "comment"),
                    expires_at=_opt_str(item, "expires_at"), created_at=_str(item, "created_at"),
                    action=_opt_str(item, "action") or "open", raw=item))
            except (KeyError, TypeError, ValueError) as e:
                raise EagateError("bad-response", status, f"signal {i} lacks a required field: {e}") from e
        return signals

    def ack(self, signal_id: str, outcome: Union[Outcome, str], ticket: Optional[int] = None,
            fill_price: Optional[float] = None, message: Optional[str] = None) -> AckReceipt:
        """Acknowledges a signal; the message is cut to 512 characters. Safe
        to repeat: the same outcome again returns the first receipt."""
        try:
            outcome = Outcome(outcome)
        except ValueError as e:
            raise EagateError("invalid-argument", 0, "outcome must be executed, rejected or failed") from e
        if not signal_id:
            raise EagateError("invalid-argument", 0, "ack needs a signal id")
        body: dict[str, Any] = {"signal_id": signal_id, "outcome": outcome.value}
        if ticket is not None:
            if isinstance(ticket, bool) or not isinstance(ticket, int) or ticket < 0:
                raise EagateError("invalid-argument", 0, "ticket must be a non-negative integer")
            body["ticket"] = ticket
        if fill_price is not None:
            if not (isinstance(fill_price, (int, float)) and math.isfinite(fill_price) and fill_price > 0):
                raise EagateError("invalid-argument", 0, "fill_price must be a finite number above 0")
            body["fill_price"] = fill_price
        if message:
            body["message"] = _clean_text(message, 512)
        status, doc = self.request("POST", "/api/v1/device/ack", body)
        try:
            return AckReceipt(signal_id=_str(doc, "signal_id"), outcome=_str(doc, "outcome"),
                              ticket=doc.get("ticket"), fill_price=_opt_num(doc, "fill_price"),
                              message=_opt_str(doc, "message"), acknowledged_at=_str(doc, "acknowledged_at"))
        except (KeyError, TypeError, ValueError) as e:
            raise EagateError("bad-response", status, f"the acknowledgement lacks {e}") from e

    def heartbeat(self, ea_version: Optional[str] = None, terminal_build: Optional[int] = None,
                  broker: Optional[str] = None, account_login: Optional[int] = None,
                  balance: Optional[float] = None, equity: Optional[float] = None) -> int:
        """Reports the terminal's state (fields left None are not sent); the
        owner sees the latest heartbeat on the device. Returns the server's
        time. The broker name is cleaned and cut to 128 characters."""
        body: dict[str, Any] = {}
        if ea_version is not None:
            if len(ea_version) > 32:
                raise EagateError("invalid-argument", 0, "ea_version is longer than 32 characters")
            body["ea_version"] = _clean_text(ea_version, 32)
        if terminal_build is not None:
            if isinstance(terminal_build, bool) or not isinstance(terminal_build, int) or not 0 <= terminal_build <= 1_000_000:
                raise EagateError("invalid-argument", 0, "terminal_build must be 0-1000000")
            body["terminal_build"] = terminal_build
        if broker is not None:
            body["broker"] = _clean_text(broker, 128)
        if account_login is not None:
            if isinstance(account_login, bool) or not isinstance(account_login, int) or account_login < 0:
                raise EagateError("invalid-argument", 0, "account_login must be a non-negative integer")
            body["account_login"] = account_login
        for name, value in (("balance", balance), ("equity", equity)):
            if value is not None:
                if not (isinstance(value, (int, float)) and math.isfinite(value) and abs(value) <= 1e15):
                    raise EagateError("invalid-argument", 0, f"{name} must be a finite number, |x| <= 1e15")
                body[name] = value
        _, doc = self.request("POST", "/api/v1/device/heartbeat", body)
        return int(doc.get("server_time", 0))

    def config(self) -> DeviceConfig:
        """The device's settings and trading configuration (and a cheap way
        to test a connection)."""
        config = self.config_if_changed(None)
        assert config is not None  # no If-None-Match: never 304
        return config

    def config_if_changed(self, etag: Optional[str]) -> Optional[DeviceConfig]:
        """The configuration, unless ``etag`` (a ``DeviceConfig.etag``) is
        still current: then the server answers 304 and this returns None.
        Call it when a poll's ``config_revision`` differs from the one you
        hold."""
        extra = {"If-None-Match": etag} if etag else {}
        status, headers, doc = self._request(method="GET", target="/api/v1/device/config", extra_headers=extra)
        if status == 304:
            return None
        try:
            revision = _opt_int(doc, "config_revision") or 0
            return DeviceConfig(poll_interval_seconds=int(doc["poll_interval_seconds"]),
                                long_poll_max_seconds=int(doc["long_poll_max_seconds"]),
                                server_time=int(doc["server_time"]), device_id=_str(doc, "device_id"),
                                name=_str(doc, "name"), config_revision=revision,
                                etag=headers.get("etag") or f'"r{revision}"',
                                trading=TradingConfig.from_json(doc.get("trading")))
        except (KeyError, TypeError, ValueError) as e:
            raise EagateError("bad-response", status, f"the configuration lacks {e}") from e

    def run(self, handle: Callable[[Signal], Optional[tuple]], wait: int = 20,
            should_stop: Callable[[], bool] = lambda: False) -> None:
        """The reference loop: long-poll, hand each signal to ``handle`` and
        acknowledge what it returns, ``(outcome, ticket, fill_price,
        message)``, until ``handle`` returns None or ``should_stop()``.
        Transient failures back off and continue; fatal ones raise.
        ``handle`` must be idempotent per signal id (delivery is at least
        once)."""
        pause = 1.0
        while not should_stop():
            try:
                signals = self.poll(wait=wait)
            except EagateError as e:
                if e.fatal:
                    raise
                log.warning("eagate: poll failed: %s; next attempt in %.0f s", e, pause)
                self._sleep(pause)
                pause = min(pause * 2, 60.0)
                continue
            pause = 1.0
            for signal in signals:
                result = handle(signal)
                if result is None:
                    return
                while True:
                    try:
                        self.ack(signal.id, *result)
                        break
                    except EagateError as e:
                        if e.fatal or e.code == "invalid-argument":
                            raise
                        if 400 <= e.status < 500 and e.code not in ("rate-limited", "replayed", "request-timeout"):
                            # Refused for good (e.g. ack-conflict): nothing to retry.
                            log.warning("eagate: acknowledgement of %s refused: %s", signal.id, e)
                            break
                        log.warning("eagate: acknowledgement of %s failed: %s; retrying", signal.id, e)
                        self._sleep(pause)
                        pause = min(pause * 2, 60.0)

    # ------------------------------------------------------------------ transport

    def request(self, method: str, target: str, body: Optional[Mapping[str, Any]] = None,
                timeout: Optional[float] = None) -> tuple[int, dict]:
        """Sends one signed request (``target`` = path and query exactly as
        they must be signed) and retries what can be retried. Returns the
        2xx status and the decoded JSON object."""
        status, _, doc = self._request(method, target, body, timeout)
        return status, doc

    def _request(self, method: str, target: str, body: Optional[Mapping[str, Any]] = None,
                 timeout: Optional[float] = None,
                 extra_headers: Optional[Mapping[str, str]] = None) -> tuple[int, Mapping[str, str], dict]:
        """request() with extra (unsigned) headers; also returns the answer's
        headers. A 304 (to If-None-Match) succeeds with an empty object."""
        data = b"" if body is None else json.dumps(body, ensure_ascii=False, separators=(",", ":"),
                                                   allow_nan=False).encode("utf-8")
        url = self._base + target
        attempt = 0
        clock_corrected = False
        while True:
            attempt += 1
            headers = signing.sign_headers(self._secret, method, target, self._device_id, self.server_time(),
                                           signing.new_nonce(), data)
            headers["Accept"] = "application/json"
            headers.update(extra_headers or {})
            if data:
                headers["Content-Type"] = "application/json"
            self.requests += 1
            try:
                status, answer_headers, raw = self._transport(method, url, headers, data or None,
                                                              timeout if timeout is not None else self.timeout)
            except TransportError as e:
                error = EagateError(e.code, 0, e.detail)
                delay = self._backoff(attempt)
            else:
                self._learn_clock(answer_headers.get("date", ""))
                if status == 304 and extra_headers:
                    return status, answer_headers, {}
                if status == 204:
                    return status, answer_headers, {}
                if 200 <= status < 300:
                    return status, answer_headers, self._object(status, raw)
                error, server_time, retry_after = self._problem(status, answer_headers, raw)
                if error.code == "clock-skew" and status == 401 and not clock_corrected and server_time:
                    self._adopt_offset(server_time - int(self._clock()), "clock-skew answer")
                    clock_corrected = True
                    attempt -= 1
                    continue
                if status == 429:
                    self.rate_limited += 1
                    delay = float(max(1, min(retry_after or 1, 60)))
                elif status >= 500 or status == 408 or (status == 401 and error.code == "replayed"):
                    delay = self._backoff(attempt)
                else:
                    raise error
            if attempt >= self.max_attempts:
                raise error
            self.retries += 1
            self._sleep(delay)

    def _backoff(self, attempt: int) -> float:
        delay = min(self.backoff * 2 ** (attempt - 1), self.max_backoff)
        return delay * (1 + 0.25 * random.random())

    def _adopt_offset(self, offset: int, source: str) -> None:
        change = offset - self.clock_offset
        self.clock_offset = offset
        if abs(change) > 2:
            self.clock_corrections += 1
            log.warning("eagate: this computer's clock is %d s %s the server's (%s); signing with the server's time",
                        abs(offset), "ahead of" if offset < 0 else "behind", source)

    def _learn_clock(self, date: str) -> None:
        if not date:
            return
        try:
            server = int(email.utils.parsedate_to_datetime(date).timestamp())
        except (TypeError, ValueError, IndexError, OverflowError):
            return
        candidate = server - int(self._clock())
        if abs(candidate - self.clock_offset) >= CLOCK_TOLERANCE_SECONDS:
            self._adopt_offset(candidate, "Date header")

    def _object(self, status: int, raw: bytes) -> dict:
        try:
            doc = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise EagateError("bad-response", status, f"the answer is not JSON: {e}") from e
        if not isinstance(doc, dict):
            raise EagateError("bad-response", status, "the answer is not a JSON object")
        if isinstance(doc.get("server_time"), int) and doc["server_time"] > 0:
            self.last_server_time = doc["server_time"]
        return doc

    @staticmethod
    def _problem(status: int, headers: Mapping[str, str], raw: bytes) -> tuple[EagateError, int, int]:
        code, detail, server_time, retry_after = "", "", 0, 0
        try:
            doc = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            doc = None
        if isinstance(doc, dict):
            code = doc.get("code") if isinstance(doc.get("code"), str) else ""
            if not code and isinstance(doc.get("type"), str) and doc["type"].startswith("urn:eagate:problem:"):
                code = doc["type"][len("urn:eagate:problem:"):]
            detail = doc.get("detail") or doc.get("title") or ""
            detail = detail if isinstance(detail, str) else ""
            server_time = doc.get("server_time") if isinstance(doc.get("server_time"), int) else 0
            retry_after = doc.get("retry_after") if isinstance(doc.get("retry_after"), int) else 0
        if not code:
            code = "http-error"
            detail = detail or f"HTTP {status} without a problem body: {_clean_text(raw.decode('utf-8', 'replace'), 200)}"
        value = headers.get("x-server-time", "").strip()
        if value.isdigit() and int(value) > 0:
            server_time = int(value)
        value = headers.get("retry-after", "").strip()
        if value.isdigit() and int(value) > 0:
            retry_after = int(value)
        return EagateError(code, status, detail), server_time, retry_after


def _str(doc: Mapping[str, Any], key: str) -> str:
    value = doc[key]
    if not isinstance(value, str) or not value:
        raise ValueError(key)
    return value


def _opt_str(doc: Mapping[str, Any], key: str) -> Optional[str]:
    value = doc.get(key)
    return value if isinstance(value, str) else None


def _num(doc: Mapping[str, Any], key: str) -> float:
    value = doc[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(key)
    return float(value)


def _opt_int(doc: Mapping[str, Any], key: str) -> Optional[int]:
    value = doc.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _opt_num(doc: Mapping[str, Any], key: str) -> Optional[float]:
    value = doc.get(key)
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)
