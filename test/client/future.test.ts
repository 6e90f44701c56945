import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { SoftByteBudget } from "../../src/client/core/budget.js";
import { HttpClient } from "../../src/client/core/http.js";
import { type Logger, RateLimitedLog, RedactingLogger } from "../../src/client/core/logger.js";
import { BillingPause } from "../../src/client/core/retry.js";
import { DEFAULT_TIMINGS } from "../../src/client/core/timings.js";
import {
  type APIStatusError,
  APITimeoutError,
  APIUserAbortError,
  BadRequestError,
  NotFoundError,
  RequestFailedError,
} from "../../src/client/errors.js";
import {
  APIFuture,
  FutureExpiredError,
  type PollContext,
  pollFuture,
  type QueueStateEvent,
} from "../../src/client/future.js";
import { bodyJson, FaultServer } from "./helpers/fault-server.js";

const ROUTE = "POST /api/v1/retrieve_future";

function memoryLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const push = (level: string) => (m: string) => lines.push(`${level} ${m}`);
  return {
    lines,
    debug: push("debug"),
    info: push("info"),
    warn: push("warn"),
    error: push("error"),
  };
}

describe("retrieve_future polling table", () => {
  let server: FaultServer;
  let ctx: PollContext;
  let sink: ReturnType<typeof memoryLogger>;
  let http: HttpClient;
  beforeEach(async () => {
    server = await FaultServer.start();
    sink = memoryLogger();
    const logger = new RedactingLogger(sink, "debug");
    http = new HttpClient({
      baseUrl: server.url,
      timeoutMs: 5000,
      maxRetries: 10,
      logger,
      credential: async () => "tml-k",
      httpBackoffBaseMs: 1,
      httpBackoffCapMs: 2,
    });
    ctx = {
      http,
      logger,
      timings: {
        ...DEFAULT_TIMINGS,
        backoffBaseMs: 20,
        maxBackoffMs: 60,
        billingRetryMs: 10,
        pollTimeoutMs: 300,
      },
      billing: new BillingPause(200, 1000),
      responseBytes: new SoftByteBudget(1000),
      queueLog: new RateLimitedLog(60_000),
      body: (id, allow) => ({ request_id: id, allow_metadata_only: allow }),
    };
  });
  afterEach(async () => {
    await http.close();
    await server.close();
  });

  const poll = (extra: Partial<Parameters<typeof pollFuture>[1]> = {}) =>
    pollFuture(ctx, {
      requestId: "r1",
      requestType: "OptimStep",
      acceptProtobuf: false,
      roundtripSec: 0.25,
      ...extra,
    });

  it("returns the bare JSON result and sends the iteration/type/roundtrip headers", async () => {
    server.script(ROUTE, { json: { type: "try_again", request_id: "r1", queue_state: "active" } });
    server.on(ROUTE, () => ({ json: { metrics: { "x:sum": 1 } } }));
    const out = await poll();
    expect(out).toEqual({ kind: "json", value: { metrics: { "x:sum": 1 } } });
    const [a, b] = server.requests;
    expect(a!.headers["x-tinker-request-iteration"]).toBe("0");
    expect(b!.headers["x-tinker-request-iteration"]).toBe("1");
    expect(a!.headers["x-tinker-request-type"]).toBe("OptimStep");
    expect(a!.headers["x-tinker-create-promise-roundtrip-time"]).toBe("0.25");
    expect(b!.headers["x-tinker-create-promise-roundtrip-time"]).toBeUndefined();
    expect(a!.headers["x-stainless-read-timeout"]).toBe("0.3");
    expect(bodyJson(a!)).toEqual({ request_id: "r1", allow_metadata_only: true });
    expect(a!.headers.accept).toBe("application/json");
  });

  it("try_again surfaces the queue state as an event and a rate-limited warning", async () => {
    const paused = {
      type: "try_again",
      request_id: "r1",
      queue_state: "paused_rate_limit",
      queue_state_reason: "limit 4",
    };
    server.script(
      ROUTE,
      { json: paused },
      { json: paused },
      { json: { ...paused, queue_state: "paused_capacity" } },
    );
    server.on(ROUTE, () => ({ json: { ok: 1 } }));
    const events: QueueStateEvent[] = [];
    await poll({ onQueueState: (e) => events.push(e) });
    expect(events.map((e) => e.queueState)).toEqual([
      "paused_rate_limit",
      "paused_rate_limit",
      "paused_capacity",
    ]);
    expect(events[0]!.reason).toBe("limit 4");
    const warns = sink.lines.filter((l) => l.startsWith("warn"));
    expect(warns).toHaveLength(2); // one per state within the 60 s window
    expect(warns[0]).toMatch(/rate limit/);
    expect(warns[1]).toMatch(/short on capacity/);
  });

  it("complete_metadata reserves the payload bytes, then re-polls without metadata", async () => {
    server.script(ROUTE, { json: { status: "complete_metadata", response_payload_size: 700 } });
    let remainingDuring = 0;
    server.on(ROUTE, () => {
      remainingDuring = ctx.responseBytes.remaining;
      return { json: { path: "tinker://x/weights/y" } };
    });
    const out = await poll();
    expect(out.kind).toBe("json");
    expect(bodyJson(server.requests[1]!)).toEqual({ request_id: "r1", allow_metadata_only: false });
    expect(remainingDuring).toBe(300);
    expect(ctx.responseBytes.remaining).toBe(1000);
  });

  it("{error, category} rejects with RequestFailedError", async () => {
    server.on(ROUTE, () => ({ json: { error: "target_tokens out of range", category: "user" } }));
    const err = await poll().catch((e) => e);
    expect(err).toBeInstanceOf(RequestFailedError);
    expect((err as RequestFailedError).category).toBe("user");
    expect((err as RequestFailedError).requestId).toBe("r1");
    expect((err as Error).message).toContain("target_tokens out of range");
    expect(server.requests).toHaveLength(1);
  });

  it("408 and 5xx re-poll immediately; 408 carries a queue state", async () => {
    server.script(
      ROUTE,
      { status: 408, json: { queue_state: "paused_capacity" } },
      { status: 500 },
      { status: 503, json: { detail: "x" } },
    );
    server.on(ROUTE, () => ({ json: { ok: 1 } }));
    const events: QueueStateEvent[] = [];
    const t0 = Date.now();
    await poll({ onQueueState: (e) => events.push(e) });
    expect(server.requests).toHaveLength(4);
    expect(events.map((e) => e.queueState)).toEqual(["paused_capacity"]);
    expect(Date.now() - t0).toBeLessThan(1000);
    // Layer-1 retries are off for polls: each retry is a new iteration.
    expect(server.requests.map((r) => r.headers["x-stainless-retry-count"])).toEqual([
      "0",
      "0",
      "0",
      "0",
    ]);
  });

  it("429 and dropped connections back off min(2^k, 30) (scaled) before re-polling", async () => {
    server.script(ROUTE, { status: 429 }, { status: 429 }, { drop: true });
    server.on(ROUTE, () => ({ json: { ok: 1 } }));
    await poll();
    const at = server.requests.map((r) => r.at);
    expect(at[1]! - at[0]!).toBeGreaterThanOrEqual(18); // 20 ms
    expect(at[2]! - at[1]!).toBeGreaterThanOrEqual(38); // 40 ms
    expect(at[3]! - at[2]!).toBeGreaterThanOrEqual(58); // 60 ms (cap)
  });

  it("a poll that times out is retried with back-off", async () => {
    server.script(ROUTE, { hang: true });
    server.on(ROUTE, () => ({ json: { ok: 2 } }));
    expect(await poll()).toEqual({ kind: "json", value: { ok: 2 } });
  });

  it("400 is retried 3 times, the 4th is fatal", async () => {
    server.on(ROUTE, () => ({ status: 400, json: { detail: "bad" } }));
    const err = await poll().catch((e) => e);
    expect(err).toBeInstanceOf(BadRequestError);
    expect(server.requests).toHaveLength(4);
    expect((err as Error).message).toMatch(/Error retrieving result of OptimStep request r1/);
  });

  it("402 pauses for billing within the window, then fails with a billing message", async () => {
    server.script(ROUTE, { status: 402, json: {} }, { status: 402, json: {} });
    server.on(ROUTE, () => ({ json: { ok: 1 } }));
    expect(await poll()).toEqual({ kind: "json", value: { ok: 1 } });

    ctx.billing = new BillingPause(50, 1000);
    server.on(ROUTE, () => ({ status: 402, json: { detail: "billing" } }));
    const err = await poll().catch((e) => e);
    expect((err as APIStatusError).status).toBe(402);
    expect((err as Error).message).toMatch(/billing/);
  });

  it("410 rejects with FutureExpiredError", async () => {
    server.on(ROUTE, () => ({ status: 410, json: { detail: "promise expired" } }));
    const err = await poll().catch((e) => e);
    expect(err).toBeInstanceOf(FutureExpiredError);
    expect(((err as Error).cause as APIStatusError).status).toBe(410);
  });

  it("other 4xx are fatal with the status class", async () => {
    server.on(ROUTE, () => ({ status: 404, json: { detail: "Future not found" } }));
    const err = await poll().catch((e) => e);
    expect(err).toBeInstanceOf(NotFoundError);
    expect((err as Error).message).toMatch(/submit it again/);
    expect((err as NotFoundError).body).toEqual({ detail: "Future not found" });
    expect(server.requests).toHaveLength(1);
  });

  it("protobuf answers are returned as bytes; Accept asks for protobuf", async () => {
    server.on(ROUTE, () => ({
      body: Buffer.from([8, 1]),
      headers: { "content-type": "application/x-protobuf" },
    }));
    const out = await poll({ acceptProtobuf: true, requestType: "Sample" });
    expect(out.kind).toBe("binary");
    expect([...(out as { bytes: Uint8Array }).bytes]).toEqual([8, 1]);
    expect(server.requests[0]!.headers.accept).toBe("application/x-protobuf");
  });

  it("a malformed JSON answer is an APIResponseValidationError", async () => {
    server.on(ROUTE, () => ({ body: "{oops", headers: { "content-type": "application/json" } }));
    await expect(poll()).rejects.toThrow(/not JSON/);
  });

  it("an abort stops polling", async () => {
    server.on(ROUTE, () => ({
      json: { type: "try_again", request_id: "r1", queue_state: "active" },
      delayMs: 20,
    }));
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    await expect(poll({ signal: ac.signal })).rejects.toBeInstanceOf(APIUserAbortError);
  });
});

describe("APIFuture", () => {
  it("is awaitable and result() bounds the wait without cancelling", async () => {
    let resolve!: (v: number) => void;
    const f = new APIFuture<number>(() => new Promise<number>((r) => (resolve = r)));
    const err = await f.result({ timeout: 30 }).catch((e) => e);
    expect(err).toBeInstanceOf(APITimeoutError);
    resolve(7);
    expect(await f).toBe(7);
    expect(await f.result({ timeout: 10 })).toBe(7);
  });

  it("result({signal}) rejects with APIUserAbortError; cancel() aborts the work", async () => {
    const f = new APIFuture<number>(
      (signal) =>
        new Promise<number>((_, rej) =>
          signal.addEventListener("abort", () => rej(new APIUserAbortError())),
        ),
    );
    const ac = new AbortController();
    ac.abort();
    await expect(f.result({ signal: ac.signal })).rejects.toBeInstanceOf(APIUserAbortError);
    f.cancel();
    await expect(f).rejects.toBeInstanceOf(APIUserAbortError);
  });

  it("reports submission and queue states", async () => {
    const f = new APIFuture<string>(async (_s, hooks) => {
      hooks.onSubmitted("req-9");
      hooks.onQueueState({
        requestId: "req-9",
        requestType: "Sample",
        queueState: "paused_capacity",
        reason: undefined,
      });
      return "done";
    });
    const states: string[] = [];
    f.on("queueState", (e) => states.push(e.queueState));
    expect(await f.submitted).toBe("req-9");
    expect(await f).toBe("done");
    expect(f.requestId).toBe("req-9");
  });
});
