/**
 * A typed client for eagate's HTTP API.
 *
 * The types in `./schema.ts` are generated from docs/openapi.json by
 * openapi-typescript (`just ts-client` regenerates them; CI fails when they
 * are stale). Requests go through openapi-fetch: paths, parameters, bodies
 * and responses are checked by the compiler.
 *
 * ```ts
 * const api = createEagateClient({ baseUrl: "http://127.0.0.1:8080", accessToken: () => token });
 * const { data, error } = await api.POST("/api/v1/devices", { body: { name: "London VPS" } });
 * if (error) console.error(error.code, error.detail); else store(data.secret);
 * ```
 */
import createClient, { type Client, type Middleware } from "openapi-fetch";

import type { components, operations, paths } from "./schema.js";

export type { components, operations, paths };

/** An RFC 9457 problem: the body of every error response. */
export type Problem = components["schemas"]["Problem"];
/** The typed client: `GET`, `POST`, `PATCH`, `DELETE`… over {@link paths}. */
export type EagateClient = Client<paths>;

export interface EagateClientOptions {
  /** Where eagate listens, e.g. `http://127.0.0.1:8080` (no `/api/v1`). */
  baseUrl: string;
  /**
   * The access token for owner routes (from `POST /api/v1/auth/login` or
   * `/refresh`), or a function returning the current one.
   */
  accessToken?: string | (() => string | undefined);
  /** A `fetch` implementation (default: the global one). */
  fetch?: typeof globalThis.fetch;
}

/** A client for the owner API (accounts, devices, signals, audit). */
export function createEagateClient(options: EagateClientOptions): EagateClient {
  const client = createClient<paths>({
    baseUrl: options.baseUrl.replace(/\/+$/, ""),
    ...(options.fetch ? { fetch: options.fetch } : {}),
  });
  const { accessToken } = options;
  if (accessToken !== undefined) {
    const bearer: Middleware = {
      onRequest({ request }) {
        const token = typeof accessToken === "function" ? accessToken() : accessToken;
        if (token && !request.headers.has("Authorization")) {
          request.headers.set("Authorization", `Bearer ${token}`);
        }
        return request;
      },
    };
    client.use(bearer);
  }
  return client;
}

/** Whether `value` is a problem body (for errors of unknown origin). */
export function isProblem(value: unknown): value is Problem {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v.type === "string" && typeof v.code === "string" && typeof v.status === "number";
}
