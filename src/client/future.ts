import { EventEmitter } from "eventemitter3";
import { abortError, linkedSignal, sleep } from "./core/abort.js";
import { exponentialBackoffMs } from "./core/backoff.js";
import type { SoftByteBudget } from "./core/budget.js";
import type { HttpClient, HttpResponse } from "./core/http.js";
import type { Logger, RateLimitedLog } from "./core/logger.js";
import type { BillingPause } from "./core/retry.js";
import type { Timings } from "./core/timings.js";
import {
  APIConnectionError,
  APIError,
  APIResponseValidationError,
  APIStatusError,
  RequestFailedError,
  type RequestFailureCategory,
} from "./errors.js";

/** Values of `X-Tinker-Request-Type`. */
export type FutureRequestType =
  | "CreateModel"
  | "Forward"
  | "ForwardBackward"
  | "OptimStep"
  | "SaveWeights"
  | "LoadWeights"
  | "SaveWeightsForSampler"
  | "Sample";

/** Server queue state reported while a request waits (`try_again` / 408 answers). */
export type QueueState = "active" | "paused_capacity" | "paused_rate_limit" | (string & {});

export interface QueueStateEvent {
  requestId: string;
  requestType: FutureRequestType;
  queueState: QueueState;
  reason: string | undefined;
}

/** Events an `APIFuture` emits. */
export interface FutureEvents {
  /** The server reported the request's queue state (each `try_again`). */
  queueState: (event: QueueStateEvent) => void;
  /** The submitting POST was acknowledged with a request id. */
  submitted: (requestId: string) => void;
}

/**
 * The server said the promise behind a request expired or broke (HTTP 410). Sampling resubmits
 * automatically; for training calls it reaches the caller, who may re-issue the call.
 */
export class FutureExpiredError extends APIError {
  override name = "FutureExpiredError";
}

/** A parsed `retrieve_future` success payload. */
export type FuturePayload =
  | { kind: "binary"; bytes: Uint8Array }
  | { kind: "json"; value: unknown };

export interface PollContext {
  http: HttpClient;
  logger: Logger;
  timings: Timings;
  billing: BillingPause;
  /** In-flight budget for large (`complete_metadata`) payloads. */
  responseBytes: SoftByteBudget;
  queueLog: RateLimitedLog;
  /** Builds the retrieve_future JSON body. */
  body: (requestId: string, allowMetadataOnly: boolean) => unknown;
}

export interface PollRequest {
  requestId: string;
  requestType: FutureRequestType;
  /** Ask for protobuf (SampleResponse / ForwardBackwardOutput). */
  acceptProtobuf: boolean;
  /** Seconds between building the submitting request and receiving its request id. */
  roundtripSec?: number;
  signal?: AbortSignal | undefined;
  onQueueState?: (e: QueueStateEvent) => void;
}

const BAD_REQUEST_BUDGET = 3;

/**
 * Long-poll `POST /api/v1/retrieve_future` until the request finishes, implementing every row of
 * the reference's response table (see the module docs of `APIFuture`).
 */
export async function pollFuture(ctx: PollContext, req: PollRequest): Promise<FuturePayload> {
  const endpoint = "POST /api/v1/retrieve_future";
  let allowMetadataOnly = true;
  let release: (() => void) | undefined;
  let backoffCount = 0;
  let badRequests = 0;
  try {
    for (let iteration = 0; ; iteration++) {
      const headers: Record<string, string> = {
        "X-Tinker-Request-Iteration": String(iteration),
        "X-Tinker-Request-Type": req.requestType,
        // The reference reads poll answers raw (it inspects status and content type itself).
        "X-Stainless-Raw-Response": "raw",
      };
      if (iteration === 0 && req.roundtripSec !== undefined) {
        headers["X-Tinker-Create-Promise-Roundtrip-Time"] = String(req.roundtripSec);
      }
      let res: HttpResponse;
      try {
        res = await ctx.http.request({
          method: "POST",
          path: "/api/v1/retrieve_future",
          json: ctx.body(req.requestId, allowMetadataOnly),
          headers,
          accept: req.acceptProtobuf ? "application/x-protobuf" : "application/json",
          timeoutMs: ctx.timings.pollTimeoutMs,
          maxRetries: 0,
          purpose: "retrieve",
          signal: req.signal,
        });
      } catch (err) {
        if (err instanceof APIConnectionError) {
          // Includes per-poll timeouts: back off min(2^k, 30) s.
          await sleep(backoff(ctx, backoffCount++), req.signal);
          continue;
        }
        if (!(err instanceof APIStatusError)) throw err;
        const status = err.status;
        // Consecutive 429s grow the back-off; any other HTTP answer resets it.
        if (status !== 429) backoffCount = 0;
        if (status === 408) {
          badRequests = 0;
          notifyQueueState(ctx, req, err.body);
          continue;
        }
        if (status >= 500) continue;
        if (status === 429) {
          await sleep(backoff(ctx, backoffCount++), req.signal);
          continue;
        }
        if (status === 400 && ++badRequests <= BAD_REQUEST_BUDGET) continue;
        if (status === 402) {
          if (ctx.billing.onPaymentRequired()) {
            ctx.logger.warn(
              `${req.requestType} ${req.requestId}: payment required (402); waiting while the billing issue is resolved`,
            );
            await sleep(ctx.timings.billingRetryMs, req.signal);
            continue;
          }
          throw withMessage(
            err,
            `${req.requestType} request ${req.requestId} failed: payment required (402) for longer than the billing pause window. Check your Tinker billing status.`,
          );
        }
        if (status === 410) {
          throw new FutureExpiredError(
            `${req.requestType} request ${req.requestId}: the server's promise expired (410). Submit the request again.`,
            { request: endpoint, body: err.body, cause: err },
          );
        }
        throw withMessage(
          err,
          `Error retrieving result of ${req.requestType} request ${req.requestId}: ${err.message}` +
            (status === 404
              ? ". The server no longer knows this request (results expire); submit it again."
              : ""),
        );
      }
      backoffCount = 0;
      const contentType = res.headers["content-type"] ?? "";
      if (contentType.includes("application/x-protobuf")) {
        return {
          kind: "binary",
          bytes: new Uint8Array(res.body.buffer, res.body.byteOffset, res.body.length),
        };
      }
      const value = res.json();
      if (value !== null && typeof value === "object" && !Array.isArray(value)) {
        const obj = value as Record<string, unknown>;
        if (obj.type === "try_again") {
          notifyQueueState(ctx, req, obj);
          continue;
        }
        if (obj.status === "complete_metadata") {
          if (!allowMetadataOnly) {
            throw new APIResponseValidationError(
              `${req.requestType} request ${req.requestId}: the server sent complete_metadata twice.`,
              { request: endpoint, body: obj },
            );
          }
          const size = Number(obj.response_payload_size ?? 0);
          release = await ctx.responseBytes.acquire(Number.isFinite(size) ? size : 0, req.signal);
          allowMetadataOnly = false;
          continue;
        }
        if ("error" in obj) {
          const category = normalizeCategory(obj.category);
          throw new RequestFailedError(
            `${req.requestType} request ${req.requestId} failed (${category} error): ${String(obj.error)}`,
            req.requestId,
            category,
          );
        }
      }
      return { kind: "json", value };
    }
  } finally {
    release?.();
  }
}

function backoff(ctx: PollContext, k: number): number {
  return exponentialBackoffMs(k, ctx.timings.backoffBaseMs, ctx.timings.maxBackoffMs);
}

function normalizeCategory(c: unknown): RequestFailureCategory {
  return c === "user" || c === "server" ? c : "unknown";
}

/** Give a poll's status error a message naming the request (class, status, body and stack kept). */
function withMessage(err: APIStatusError, message: string): APIStatusError {
  err.message = message;
  return err;
}

function notifyQueueState(ctx: PollContext, req: PollRequest, body: unknown): void {
  if (body === null || typeof body !== "object") return;
  const b = body as Record<string, unknown>;
  if (typeof b.queue_state !== "string") return;
  const event: QueueStateEvent = {
    requestId: req.requestId,
    requestType: req.requestType,
    queueState: b.queue_state,
    reason: typeof b.queue_state_reason === "string" ? b.queue_state_reason : undefined,
  };
  req.onQueueState?.(event);
  if (event.queueState === "active") return;
  if (!ctx.queueLog.allow(event.queueState)) return;
  const why = event.reason ? ` (${event.reason})` : "";
  if (event.queueState === "paused_rate_limit") {
    ctx.logger.warn(
      `${req.requestType} is paused: the concurrent training clients rate limit was hit${why}. It will resume automatically.`,
    );
  } else if (event.queueState === "paused_capacity") {
    ctx.logger.warn(
      `${req.requestType} is queued: the Tinker backend is running short on capacity${why}. It will resume automatically.`,
    );
  } else {
    ctx.logger.info(`${req.requestType} queue state: ${event.queueState}${why}`);
  }
}

/** What the work behind an `APIFuture` reports to it. */
export interface FutureHooks {
  /** The submitting POST was acknowledged with `requestId`. */
  onSubmitted: (requestId: string) => void;
  /** The server reported a queue state while polling. */
  onQueueState: (e: QueueStateEvent) => void;
}

export interface ResultOptions {
  /** Give up waiting after this many ms (`APITimeoutError`); the request itself keeps running. */
  timeout?: number;
  /** Stop waiting when this fires (`APIUserAbortError`). */
  signal?: AbortSignal;
}

/**
 * The result of a Tinker request that runs on the server asynchronously.
 *
 * Await it directly, or call `result({ timeout, signal })` to bound the wait. Calling `cancel()`
 * stops polling (the server may still execute the request). Listen to `queueState` to see when
 * the server pauses the request for capacity or rate limits.
 *
 * Polling follows the reference's `retrieve_future` table: `try_again` and 408 re-poll at once
 * (reporting the queue state), `complete_metadata` reserves the payload size in the in-flight
 * byte budget and fetches the payload, `{error, category}` rejects with `RequestFailedError`,
 * 5xx re-polls at once, 429 and connection errors back off `min(2^k, 30)` s, 400 is retried 3
 * times (proxies inject them), 402 waits out the billing pause window, 410 rejects with
 * `FutureExpiredError`, anything else rejects with the status error.
 */
export class APIFuture<T> extends EventEmitter<FutureEvents> implements PromiseLike<T> {
  private readonly promise: Promise<T>;
  private readonly controller = new AbortController();
  private requestIdValue: string | undefined;
  /** Resolves once the submitting POST was acknowledged (or rejects if it failed). */
  readonly submitted: Promise<string>;

  /**
   * @param run starts the work; it receives this future's abort signal and hooks to report the
   *   request id and queue states.
   */
  constructor(run: (signal: AbortSignal, hooks: FutureHooks) => Promise<T>) {
    super();
    let resolveSubmitted!: (id: string) => void;
    let rejectSubmitted!: (e: unknown) => void;
    this.submitted = new Promise<string>((res, rej) => {
      resolveSubmitted = res;
      rejectSubmitted = rej;
    });
    this.submitted.catch(() => undefined);
    this.promise = run(this.controller.signal, {
      onSubmitted: (id) => {
        if (this.requestIdValue === undefined) resolveSubmitted(id);
        this.requestIdValue = id;
        this.emit("submitted", id);
      },
      onQueueState: (e) => this.emit("queueState", e),
    });
    this.promise.catch((e: unknown) => rejectSubmitted(e));
  }

  /** A future that is already settled with `value` (client-side results). */
  static resolved<T>(value: T): APIFuture<T> {
    return new APIFuture<T>(async () => value);
  }

  /** The server's request id, once the POST was acknowledged (the last one, after resubmits). */
  get requestId(): string | undefined {
    return this.requestIdValue;
  }

  // biome-ignore lint/suspicious/noThenProperty: APIFuture is deliberately awaitable.
  then<R1 = T, R2 = never>(
    onfulfilled?: ((value: T) => R1 | PromiseLike<R1>) | null,
    onrejected?: ((reason: unknown) => R2 | PromiseLike<R2>) | null,
  ): Promise<R1 | R2> {
    return this.promise.then(onfulfilled, onrejected);
  }

  catch<R = never>(onrejected?: ((reason: unknown) => R | PromiseLike<R>) | null): Promise<T | R> {
    return this.promise.catch(onrejected);
  }

  /** Wait for the result, at most `timeout` ms, or until `signal` fires. */
  async result(opts: ResultOptions = {}): Promise<T> {
    if (opts.timeout === undefined && opts.signal === undefined) return this.promise;
    const linked = linkedSignal(
      [opts.signal],
      opts.timeout,
      `Timed out after ${(opts.timeout ?? 0) / 1000} s waiting for the result` +
        (this.requestIdValue ? ` of request ${this.requestIdValue}` : "") +
        ". The request is still running on the server; wait again or cancel() it.",
    );
    try {
      return await new Promise<T>((resolve, reject) => {
        const onAbort = () => reject(abortError(linked.signal));
        if (linked.signal.aborted) onAbort();
        linked.signal.addEventListener("abort", onAbort, { once: true });
        this.promise.then(resolve, reject);
      });
    } finally {
      linked.dispose();
    }
  }

  /** Stop polling; the future rejects with `APIUserAbortError`. */
  cancel(reason?: unknown): void {
    this.controller.abort(reason);
  }
}

/**
 * @internal A future derived from `inner`: it reports `inner`'s request id and queue states,
 * `cancel()` cancels `inner`, and it resolves with `map` of `inner`'s value.
 */
export function followFuture<T, U>(
  inner: APIFuture<T>,
  map: (value: T) => U | Promise<U>,
): APIFuture<U> {
  return new APIFuture<U>(async (signal, hooks) => {
    const onAbort = () => inner.cancel(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    inner.on("submitted", hooks.onSubmitted);
    inner.on("queueState", hooks.onQueueState);
    if (inner.requestId !== undefined) hooks.onSubmitted(inner.requestId);
    try {
      return await map(await inner);
    } finally {
      signal.removeEventListener("abort", onAbort);
      inner.off("submitted", hooks.onSubmitted);
      inner.off("queueState", hooks.onQueueState);
    }
  });
}
