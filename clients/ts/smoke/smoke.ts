/**
 * Smoke test of the generated client against a live server
 * (EAGATE_BASE_URL): register, log in, register a device, list devices,
 * publish a signal, and a publish the server rejects with its problem body.
 * Run by scripts/ts-client.sh smoke, which starts the server.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";

import { createEagateClient, isProblem } from "../src/index.js";

const baseUrl = process.env.EAGATE_BASE_URL;
if (!baseUrl) {
  console.error("smoke: set EAGATE_BASE_URL (e.g. http://127.0.0.1:8080)");
  process.exit(2);
}

const step = (what: string) => console.log(`ts-client smoke: ${what}`);
const suffix = randomBytes(4).toString("hex");
const username = `ts_smoke_${suffix}`;
const password = `ts-smoke-password-${suffix}`;

const api = createEagateClient({ baseUrl });

step("register an account");
const registered = await api.POST("/api/v1/auth/register", {
  body: { email: `${username}@example.com`, username, password },
});
assert.equal(registered.response.status, 201, JSON.stringify(registered.error));
assert.equal(registered.data?.username, username);

step("log in");
const login = await api.POST("/api/v1/auth/login", { body: { login: username, password } });
assert.equal(login.response.status, 200, JSON.stringify(login.error));
const token = login.data?.access_token;
assert.ok(token, "an access token");
const owner = createEagateClient({ baseUrl, accessToken: token });

step("register a device");
const created = await owner.POST("/api/v1/devices", { body: { name: `TS smoke ${suffix}` } });
assert.equal(created.response.status, 201, JSON.stringify(created.error));
assert.ok(created.data, "a body");
assert.match(created.data.secret, /^\S{16,}$/, "the secret, shown once");
const deviceId = created.data.device.id;
assert.equal(created.data.device.status, "active");

step("list devices");
const listed = await owner.GET("/api/v1/devices", { params: { query: { status: "active", limit: 10 } } });
assert.equal(listed.response.status, 200, JSON.stringify(listed.error));
assert.deepEqual(
  listed.data?.items.map((d) => d.id),
  [deviceId],
);
assert.equal("secret" in (listed.data?.items[0] ?? {}), false, "a listing never shows the secret");

step("publish a signal");
const published = await owner.POST("/api/v1/signals", {
  body: { instrument: "EURUSD", side: "buy", order_type: "market", volume: 0.1, device_ids: [deviceId] },
  headers: { "Idempotency-Key": `ts-smoke-${suffix}` },
});
assert.equal(published.response.status, 201, JSON.stringify(published.error));
assert.equal(published.data?.instrument, "EURUSD");
assert.deepEqual(
  published.data?.deliveries.map((d) => [d.device_id, d.status]),
  [[deviceId, "pending"]],
);

step("a rejected publish answers with its problem");
const rejected = await owner.POST("/api/v1/signals", {
  body: { instrument: "EURUSD", side: "sell", order_type: "market", volume: 0 },
});
assert.equal(rejected.data, undefined);
assert.equal(rejected.response.status, 422);
assert.equal(rejected.response.headers.get("content-type"), "application/problem+json");
const problem = rejected.error;
assert.ok(isProblem(problem), JSON.stringify(problem));
assert.equal(problem.code, "validation-failed");
assert.equal(problem.type, "urn:eagate:problem:validation-failed");
assert.equal(problem.status, 422);
assert.deepEqual(
  problem.errors?.map((e) => e.field),
  ["volume"],
);
assert.match(problem.detail, /volume/);

step("no token, no devices");
const anonymous = await api.GET("/api/v1/devices");
assert.equal(anonymous.response.status, 401);
assert.equal(anonymous.error?.code, "invalid-token");

console.log("ts-client smoke: passed");
