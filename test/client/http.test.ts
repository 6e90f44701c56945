import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { httpBackoffMs, retryAfterMs } from "../../src/client/core/backoff.js";
import { HttpClient } from "../../src/client/core/http.js";
import { RedactingLogger } from "../../src/client/core/logger.js";
import { BillingPause, executeWithRetries } from "../../src/client/core/retry.js";
import {
  APIConnectionError,
  APIStatusError,
  APITimeoutError,
  APIUserAbortError,
  AuthenticationError,
  BadRequestError,
  ConflictError,
  InternalServerError,
  TinkerError,
} from "../../src/client/errors.js";
import { FaultServer } from "./helpers/fault-server.js";

const quiet = new RedactingLogger(console, "off");

function client(
  server: FaultServer,
  extra: Partial<ConstructorParameters<typeof HttpClient>[0]> = {},
) {
  return new HttpClient({
    baseUrl: server.url,
    timeoutMs: 5_000,
    maxRetries: 10,
    logger: quiet,
    credential: async () => "tml-secret-key",
    httpBackoffBaseMs: 1,
    httpBackoffCapMs: 5,
    ...extra,
  });
}

describe("HttpClient (retry layer 1)", () => {
  let server: FaultServer;
  let http: HttpClient;
  beforeEach(async () => {
    server = await FaultServer.start();
    http = client(server);
  });
  afterEach(async () => {
    await http.close();
    await server.close();
  });

  it("sends the protocol headers on every request", async () => {
    server.on("POST /api/v1/x", () => ({ json: { ok: true } }));
    const res = await http.request({ method: "POST", path: "/api/v1/x", json: { a: 1 } });
    expect(res.json()).toEqual({ ok: true });
    const h = server.requests[0]!.headers;
    expect(h["x-api-key"]).toBe("tml-secret-key");
    expect(h["content-type"]).toBe("application/json");
    expect(h.accept).toBe("application/json");
    expect(h["user-agent"]).toMatch(/^tinker-ts\//);
    expect(h["x-stainless-retry-count"]).toBe("0");
    expect(h["x-stainless-read-timeout"]).toBe("5");
    expect(h["x-idempotency-key"]).toMatch(/^tinker-ts-retry-[0-9a-f-]{36}$/);
    expect(h["x-stainless-runtime"]).toBe("node");
  });

  it("GET carries no idempotency key and no content type", async () => {
    server.on("GET /api/v1/y", () => ({ json: {} }));
    await http.request({
      method: "GET",
      path: "/api/v1/y",
      query: { limit: 5, ids: ["a", "b"], none: undefined },
    });
    const r = server.requests[0]!;
    expect(r.headers["x-idempotency-key"]).toBeUndefined();
    expect(r.headers["content-type"]).toBeUndefined();
    expect(r.query.get("limit")).toBe("5");
    expect(r.query.get("ids")).toBe("a,b");
    expect(r.query.has("none")).toBe(false);
  });

  it("retries a 503 burst, reusing the idempotency key and counting retries", async () => {
    server.script(
      "POST /api/v1/x",
      { status: 503 },
      { status: 502 },
      { status: 500, json: { e: 1 } },
    );
    server.on("POST /api/v1/x", () => ({ json: { done: true } }));
    const res = await http.request({ method: "POST", path: "/api/v1/x", json: {} });
    expect(res.json()).toEqual({ done: true });
    const reqs = server.requestsTo("POST /api/v1/x");
    expect(reqs).toHaveLength(4);
    expect(new Set(reqs.map((r) => r.headers["x-idempotency-key"])).size).toBe(1);
    expect(reqs.map((r) => r.headers["x-stainless-retry-count"])).toEqual(["0", "1", "2", "3"]);
  });

  it("two logical calls get different idempotency keys", async () => {
    server.on("POST /api/v1/x", () => ({ json: {} }));
    await http.request({ method: "POST", path: "/api/v1/x", json: {} });
    await http.request({ method: "POST", path: "/api/v1/x", json: {} });
    const [a, b] = server.requestsTo("POST /api/v1/x");
    expect(a!.headers["x-idempotency-key"]).not.toBe(b!.headers["x-idempotency-key"]);
  });

  it("retries 408, 409 and 429 but not 400/401/404", async () => {
    server.script("POST /api/v1/x", { status: 408 }, { status: 409 }, { status: 429 });
    server.on("POST /api/v1/x", () => ({ json: {} }));
    await http.request({ method: "POST", path: "/api/v1/x", json: {} });
    expect(server.requestsTo("POST /api/v1/x")).toHaveLength(4);

    server.on("POST /api/v1/bad", () => ({ status: 400, json: { detail: "bad field" } }));
    const err = await http
      .request({ method: "POST", path: "/api/v1/bad", json: {} })
      .catch((e) => e);
    expect(err).toBeInstanceOf(BadRequestError);
    expect((err as Error).message).toContain("Error code: 400");
    expect((err as Error).message).toContain("bad field");
    expect(server.requestsTo("POST /api/v1/bad")).toHaveLength(1);

    server.on("POST /api/v1/auth", () => ({ status: 401, json: { detail: "nope" } }));
    await expect(
      http.request({ method: "POST", path: "/api/v1/auth", json: {} }),
    ).rejects.toBeInstanceOf(AuthenticationError);
    expect(server.requestsTo("POST /api/v1/auth")).toHaveLength(1);
  });

  it("honours x-should-retry both ways", async () => {
    server.script("POST /api/v1/x", {
      status: 400,
      json: {},
      headers: { "x-should-retry": "true" },
    });
    server.on("POST /api/v1/x", () => ({ json: {} }));
    await http.request({ method: "POST", path: "/api/v1/x", json: {} });
    expect(server.requestsTo("POST /api/v1/x")).toHaveLength(2);

    server.on("POST /api/v1/z", () => ({
      status: 503,
      json: {},
      headers: { "x-should-retry": "false" },
    }));
    await expect(
      http.request({ method: "POST", path: "/api/v1/z", json: {} }),
    ).rejects.toBeInstanceOf(InternalServerError);
    expect(server.requestsTo("POST /api/v1/z")).toHaveLength(1);
  });

  it("gives up after maxRetries with the last status error", async () => {
    server.on("POST /api/v1/x", () => ({ status: 409, json: { detail: "busy" } }));
    const err = await http
      .request({ method: "POST", path: "/api/v1/x", json: {}, maxRetries: 2 })
      .catch((e) => e);
    expect(err).toBeInstanceOf(ConflictError);
    expect((err as APIStatusError).status).toBe(409);
    expect(server.requestsTo("POST /api/v1/x")).toHaveLength(3);
  });

  it("waits the Retry-After / retry-after-ms hint", async () => {
    server.script("POST /api/v1/x", { status: 429, headers: { "retry-after-ms": "300" } });
    server.script("POST /api/v1/x", { status: 429, headers: { "retry-after": "1" } });
    server.on("POST /api/v1/x", () => ({ json: {} }));
    const t0 = Date.now();
    await http.request({ method: "POST", path: "/api/v1/x", json: {} });
    const reqs = server.requestsTo("POST /api/v1/x");
    expect(reqs[1]!.at - reqs[0]!.at).toBeGreaterThanOrEqual(280);
    expect(reqs[2]!.at - reqs[1]!.at).toBeGreaterThanOrEqual(950);
    expect(Date.now() - t0).toBeLessThan(4000);
  });

  it("retries dropped connections and malformed responses are typed", async () => {
    server.script("POST /api/v1/x", { drop: true }, { drop: true });
    server.on("POST /api/v1/x", () => ({
      body: "not json{",
      headers: { "content-type": "application/json" },
    }));
    const res = await http.request({ method: "POST", path: "/api/v1/x", json: {} });
    expect(server.requestsTo("POST /api/v1/x")).toHaveLength(3);
    expect(() => res.json()).toThrow(/not JSON/);
  });

  it("a dropped connection past the retry budget is an APIConnectionError", async () => {
    server.on("POST /api/v1/x", () => ({ drop: true }));
    const err = await http
      .request({ method: "POST", path: "/api/v1/x", json: {}, maxRetries: 1 })
      .catch((e) => e);
    expect(err).toBeInstanceOf(APIConnectionError);
    expect((err as Error).message).toMatch(
      /Could not reach the Tinker server for POST \/api\/v1\/x/,
    );
  });

  it("treats a bare empty 400 as a proxy rejection and retries it", async () => {
    server.script("POST /api/v1/x", { status: 400 }, { status: 400 });
    server.on("POST /api/v1/x", () => ({ json: { ok: 1 } }));
    const res = await http.request({ method: "POST", path: "/api/v1/x", json: {} });
    expect(res.json()).toEqual({ ok: 1 });
    expect(server.requestsTo("POST /api/v1/x")).toHaveLength(3);
  });

  it("per-attempt timeout raises APITimeoutError and is retried", async () => {
    server.script("POST /api/v1/x", { hang: true });
    server.on("POST /api/v1/x", () => ({ json: { ok: 1 } }));
    const res = await http.request({ method: "POST", path: "/api/v1/x", json: {}, timeoutMs: 200 });
    expect(res.json()).toEqual({ ok: 1 });
    server.on("POST /api/v1/slow", () => ({ hang: true }));
    const err = await http
      .request({ method: "POST", path: "/api/v1/slow", json: {}, timeoutMs: 100, maxRetries: 1 })
      .catch((e) => e);
    expect(err).toBeInstanceOf(APITimeoutError);
    expect((err as Error).message).toMatch(/timed out after 0.1 s/);
  });

  it("AbortSignal cancels an in-flight request and a retry sleep", async () => {
    server.on("POST /api/v1/slow", () => ({ hang: true }));
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    const err = await http
      .request({ method: "POST", path: "/api/v1/slow", json: {}, signal: ac.signal })
      .catch((e) => e);
    expect(err).toBeInstanceOf(APIUserAbortError);

    server.on("POST /api/v1/busy", () => ({ status: 503, headers: { "retry-after": "30" } }));
    const ac2 = new AbortController();
    const t0 = Date.now();
    setTimeout(() => ac2.abort(), 100);
    const err2 = await http
      .request({ method: "POST", path: "/api/v1/busy", json: {}, signal: ac2.signal })
      .catch((e) => e);
    expect(err2).toBeInstanceOf(APIUserAbortError);
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  it("close() ends a call that is between retries, without reopening a pool", async () => {
    const slow = client(server, { httpBackoffBaseMs: 100, httpBackoffCapMs: 100 });
    server.on("POST /api/v1/x", () => ({ status: 503, json: {} }));
    const call = slow.request({ method: "POST", path: "/api/v1/x" }).catch((e: unknown) => e);
    await vi.waitFor(() => expect(server.requests).toHaveLength(1));
    await slow.close();
    const err = await call;
    expect(err).toBeInstanceOf(TinkerError);
    expect(err).not.toBeInstanceOf(APIConnectionError);
    expect((err as Error).message).toMatch(/POST \/api\/v1\/x: the client was closed/);
    expect(server.requests).toHaveLength(1);
  });

  it("sends raw bytes with their content type and encoding", async () => {
    server.on("POST /api/v1/bin", () => ({ json: {} }));
    await http.request({
      method: "POST",
      path: "/api/v1/bin",
      body: new Uint8Array([1, 2, 3]),
      contentType: "application/x-protobuf",
      contentEncoding: "zstd",
    });
    const r = server.requests[0]!;
    expect(r.headers["content-type"]).toBe("application/x-protobuf");
    expect(r.headers["content-encoding"]).toBe("zstd");
    expect([...r.body]).toEqual([1, 2, 3]);
  });
});

describe("backoff arithmetic", () => {
  it("layer 1: min(0.5*2^n, 10) s with jitter in [0.75, 1]", () => {
    expect(httpBackoffMs(0, 500, 10_000, () => 0)).toBe(500);
    expect(httpBackoffMs(3, 500, 10_000, () => 0)).toBe(4000);
    expect(httpBackoffMs(10, 500, 10_000, () => 0)).toBe(10_000);
    expect(httpBackoffMs(10, 500, 10_000, () => 1)).toBe(7500);
  });
  it("retry-after parsing keeps only hints in (0, 60] s", () => {
    expect(retryAfterMs({ "retry-after-ms": "1500" })).toBe(1500);
    expect(retryAfterMs({ "retry-after": "2" })).toBe(2000);
    expect(retryAfterMs({ "retry-after": "61" })).toBeUndefined();
    expect(retryAfterMs({ "retry-after": "-1" })).toBeUndefined();
    const now = Date.parse("2026-01-01T00:00:00Z");
    expect(retryAfterMs({ "retry-after": "Thu, 01 Jan 2026 00:00:05 GMT" }, now)).toBe(5000);
    expect(retryAfterMs({})).toBeUndefined();
  });
});

describe("executeWithRetries (layer 2)", () => {
  const status = (s: number) => APIStatusError.fromResponse(s, { detail: "x" });

  it("retries retryable errors with min(2^n,30) back-off until success", async () => {
    const seen: number[] = [];
    const t0 = Date.now();
    const out = await executeWithRetries(
      async (n) => {
        seen.push(Date.now() - t0);
        if (n < 3) throw n === 0 ? new APIConnectionError("down") : status(503);
        return "ok";
      },
      { baseMs: 10, capMs: 40 },
    );
    expect(out).toBe("ok");
    expect(seen).toHaveLength(4);
    // 10, 20, 40 ms sleeps
    expect(seen[3]! - seen[0]!).toBeGreaterThanOrEqual(65);
  });

  it("stops at the budget and rethrows the last error unchanged", async () => {
    let calls = 0;
    const err = await executeWithRetries(
      async () => {
        calls++;
        throw status(429);
      },
      { baseMs: 20, capMs: 20, budgetMs: 100 },
    ).catch((e) => e);
    expect(err).toBeInstanceOf(APIStatusError);
    expect((err as APIStatusError).status).toBe(429);
    expect(calls).toBeGreaterThanOrEqual(4);
    expect(calls).toBeLessThanOrEqual(8);
  });

  it("does not retry user errors", async () => {
    let calls = 0;
    await expect(
      executeWithRetries(async () => {
        calls++;
        throw status(422);
      }),
    ).rejects.toBeInstanceOf(APIStatusError);
    expect(calls).toBe(1);
  });

  it("402 pauses within the billing window, then fails", async () => {
    let t = 0;
    const billing = new BillingPause(1000, 500, () => t);
    let calls = 0;
    const err = await executeWithRetries(
      async () => {
        calls++;
        t += 300;
        throw status(402);
      },
      { billing, billingRetryMs: 1 },
    ).catch((e) => e);
    expect((err as APIStatusError).status).toBe(402);
    // 402 at t=300 (window start), 600, 900, 1200, 1500 (1200 ms past start -> fatal)
    expect(calls).toBe(5);
  });

  it("billing window restarts after a quiet period", () => {
    let t = 0;
    const b = new BillingPause(1000, 500, () => t);
    expect(b.onPaymentRequired()).toBe(true);
    t = 400;
    expect(b.onPaymentRequired()).toBe(true);
    t = 800;
    expect(b.onPaymentRequired()).toBe(true);
    t = 1100;
    expect(b.onPaymentRequired()).toBe(false);
    t = 2000; // 900 ms quiet > reset 500
    expect(b.onPaymentRequired()).toBe(true);
  });

  it("an abort during the back-off ends the loop", async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 30);
    await expect(
      executeWithRetries(
        async () => {
          throw new APIConnectionError("down");
        },
        { baseMs: 10_000, signal: ac.signal },
      ),
    ).rejects.toBeInstanceOf(APIUserAbortError);
  });
});
