"""The owner's side of the live SDK tests: an account on a running eagate
server, its devices and its signals, through the public HTTP API (standard
library only)."""

import json
import os
import urllib.error
import urllib.parse
import urllib.request
import uuid


def live_server():
    """The base URL of the server the live tests use, from EAGATE_SDK_SERVER.
    Without it the tests are skipped, unless EAGATE_SDK_REQUIRE_LIVE=1 (the
    CI script sets it) makes that a failure."""
    import unittest

    url = os.environ.get("EAGATE_SDK_SERVER", "")
    if not url:
        if os.environ.get("EAGATE_SDK_REQUIRE_LIVE") == "1":
            raise AssertionError("EAGATE_SDK_SERVER is not set (run scripts/sdk-test.sh)")
        raise unittest.SkipTest("EAGATE_SDK_SERVER is not set (scripts/sdk-test.sh starts a server)")
    return url.rstrip("/")


class Owner:
    """A fresh user with a bearer token."""

    def __init__(self, base_url):
        self.base = base_url
        name = "sdk" + uuid.uuid4().hex[:12]
        password = "sdk-test-password-" + uuid.uuid4().hex
        self.call("POST", "/api/v1/auth/register",
                  {"email": f"{name}@example.com", "username": name, "password": password}, expect=201)
        tokens = self.call("POST", "/api/v1/auth/login", {"login": name, "password": password})
        self.token = tokens["access_token"]

    def call(self, method, path, body=None, expect=200, headers=None, raw=None):
        """A JSON request (or ``raw`` bytes as application/octet-stream)."""
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        request = urllib.request.Request(self.base + path, data=data, method=method)
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        if data is not None:
            request.add_header("Content-Type", "application/octet-stream" if raw is not None else "application/json")
        token = getattr(self, "token", None)
        if token:
            request.add_header("Authorization", "Bearer " + token)
        try:
            with urllib.request.urlopen(request, timeout=15) as response:
                status, text = response.status, response.read().decode()
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read().decode()
        if status != expect:
            raise AssertionError(f"{method} {path}: expected {expect}, got {status}: {text}")
        return json.loads(text) if text else None

    def create_device(self, name=None):
        """(device id, secret)"""
        created = self.call("POST", "/api/v1/devices", {"name": name or "SDK " + uuid.uuid4().hex[:8]}, expect=201)
        return created["device"]["id"], created["secret"]

    def device(self, device_id):
        return self.call("GET", f"/api/v1/devices/{device_id}")

    def revoke(self, device_id):
        self.call("POST", f"/api/v1/devices/{device_id}/revoke", expect=204)

    def publish(self, device_id, **fields):
        body = {"order_type": "market", "device_ids": [device_id]}
        body.update(fields)
        return self.call("POST", "/api/v1/signals", body, expect=201)

    def configure(self, device_id, document):
        """Replaces the device's trading configuration (whatever its version)."""
        return self.call("PUT", f"/api/v1/devices/{device_id}/config", document, headers={"If-Match": "*"})

    def delivery(self, signal_id, device_id):
        signal = self.call("GET", f"/api/v1/signals/{signal_id}")
        for d in signal["deliveries"]:
            if d["device_id"] == device_id:
                return d
        raise AssertionError(f"signal {signal_id} has no delivery for {device_id}")

    def upload_bundle(self, name, version, data, notes=""):
        """Uploads an EA bundle (the file's bytes); returns its record."""
        query = urllib.parse.urlencode({"name": name, "version": version, "notes": notes})
        return self.call("POST", "/api/v1/bundles?" + query, raw=data, expect=201)

    def deploy(self, bundle_id, device_ids, **options):
        body = {"bundle_id": bundle_id, "target": "devices", "device_ids": list(device_ids)}
        body.update(options)
        return self.call("POST", "/api/v1/deployments", body, expect=201)

    def deployment(self, deployment_id):
        return self.call("GET", f"/api/v1/deployments/{deployment_id}")

    def deployment_device(self, deployment_id, device_id):
        for d in self.deployment(deployment_id)["devices"]:
            if d["device_id"] == device_id:
                return d
        raise AssertionError(f"deployment {deployment_id} does not target {device_id}")
