"""Protocol v1 request signing (docs/protocol.md), without any HTTP."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import uuid

ALGORITHM = "EAGATE-HMAC-SHA256"
SIGNATURE_PREFIX = "v1="
EMPTY_BODY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

_NONCE = re.compile(r"[A-Za-z0-9._~-]{16,64}")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def body_sha256_hex(body: bytes) -> str:
    """Lowercase hex SHA-256 of the exact body bytes (of nothing, for no body)."""
    return hashlib.sha256(body).hexdigest()


def split_target(target: str) -> tuple[str, str]:
    """Splits "/path?query" at the first "?"; a "?" with nothing after it
    gives an empty query, exactly like no "?" at all."""
    path, _, query = target.partition("?")
    return path, query


def string_to_sign(method: str, path: str, query: str, device_id: str, timestamp: str, nonce: str,
                   body_sha256: str) -> str:
    """The eight LF-joined fields, no trailing LF. The method is upper-cased;
    path and query are used exactly as sent (never decoded or re-ordered)."""
    return "\n".join([ALGORITHM, method.upper(), path, query, device_id, timestamp, nonce, body_sha256])


def signature(secret: str, method: str, target: str, device_id: str, timestamp: str, nonce: str,
              body: bytes = b"") -> str:
    """The X-Signature value, "v1=" + 64 lowercase hex digits. The key is the
    secret's ASCII bytes exactly as shown (eags_... prefix included)."""
    path, query = split_target(target)
    message = string_to_sign(method, path, query, device_id, timestamp, nonce, body_sha256_hex(body))
    mac = hmac.new(secret.encode("ascii"), message.encode("utf-8"), hashlib.sha256).hexdigest()
    return SIGNATURE_PREFIX + mac


def sign_headers(secret: str, method: str, target: str, device_id: str, unix_seconds: int, nonce: str,
                 body: bytes = b"") -> dict[str, str]:
    """The four headers of one signed request."""
    timestamp = str(int(unix_seconds))
    return {
        "X-Device-Id": device_id,
        "X-Timestamp": timestamp,
        "X-Nonce": nonce,
        "X-Signature": signature(secret, method, target, device_id, timestamp, nonce, body),
    }


def new_nonce() -> str:
    """32 lowercase hex digits (128 bits) from the operating system."""
    return secrets.token_hex(16)


def is_valid_nonce(nonce: str) -> bool:
    """16-64 characters of A-Z a-z 0-9 . _ ~ -"""
    return _NONCE.fullmatch(nonce) is not None


def is_valid_device_id(device_id: str) -> bool:
    """A lowercase hyphenated UUID, as X-Device-Id wants."""
    return _UUID.fullmatch(device_id) is not None


def order_tag(signal_id: str) -> str:
    """The order comment the reference EA uses for a signal: "eagate:" + the
    UUID's 16 bytes in base64url (29 characters, within MetaTrader's 31)."""
    raw = uuid.UUID(signal_id).bytes
    return "eagate:" + base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")
