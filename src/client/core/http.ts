import { randomUUID } from "node:crypto";
import { arch, platform } from "node:os";
import { Agent, type Dispatcher, errors as undiciErrors, request as undiciRequest } from "undici";
import {
  APIConnectionError,
  APIResponseValidationError,
  APIStatusError,
  APITimeoutError,
  APIUserAbortError,
  TinkerError,
} from "../errors.js";
import { abortError, linkedSignal, sleep, throwIfAborted } from "./abort.js";
import { httpBackoffMs, retryAfterMs } from "./backoff.js";
import type { RedactingLogger } from "./logger.js";
import { TINKER_TS_VERSION } from "./version.js";

export type HttpMethod = "GET" | "POST" | "PUT" | "DELETE";

/**
 * Connection pools by purpose, as in the reference: training requests never queue behind each
 * other on a socket, sampling and polling get wide pools, session traffic a small one.
 */
export type PoolPurpose = "session" | "train" | "sample" | "retrieve" | "rest" | "telemetry";

const POOL_CONNECTIONS: Record<PoolPurpose, number> = {
  session: 20,
  train: 1000,
  sample: 1000,
  retrieve: 1000,
  rest: 50,
  telemetry: 4,
};

export type QueryValue = string | number | boolean | undefined | readonly string[];

export interface HttpRequest {
  method: HttpMethod;
  /** Path below the base URL, e.g. `/api/v1/asample`. Interpolated raw (no escaping). */
  path: string;
  query?: Readonly<Record<string, QueryValue>>;
  /** A JSON value (serialized with `JSON.stringify`) or prepared bytes/text. */
  json?: unknown;
  body?: Uint8Array | string;
  /** Content-Type for `body` (default `application/json`). */
  contentType?: string;
  contentEncoding?: string;
  accept?: string;
  headers?: Readonly<Record<string, string>>;
  /** Per-attempt timeout; default the client's. */
  timeoutMs?: number;
  /** Layer-1 retries for this call; default the client's (10). */
  maxRetries?: number;
  signal?: AbortSignal | undefined;
  purpose?: PoolPurpose;
  /** Use this credential instead of the session's (bootstrap calls use the durable key). */
  apiKey?: string;
  /** Return 3xx responses instead of treating them as errors (archive URLs). */
  acceptRedirect?: boolean;
  /** Which statuses layer 1 retries; default 408, 409, 429, >= 500. */
  retryStatus?: (status: number) => boolean;
}

export interface HttpResponse {
  status: number;
  /** Lower-cased header names. */
  headers: Record<string, string>;
  body: Buffer;
  /** `"POST /api/v1/asample"`, for messages. */
  endpoint: string;
  /** Decode the body as JSON; a non-JSON body is an `APIResponseValidationError`. */
  json(): unknown;
}

export interface HttpClientOptions {
  /** The base URL, or a function resolving it on first use (the embedded local server). */
  baseUrl: string | (() => Promise<string>);
  timeoutMs: number;
  maxRetries: number;
  logger: RedactingLogger;
  /** The credential for `X-API-Key`, asked for on every attempt (a JWT may have been refreshed). */
  credential: () => Promise<string | undefined>;
  defaultHeaders?: Readonly<Record<string, string>>;
  httpBackoffBaseMs?: number;
  httpBackoffCapMs?: number;
}

/** Default retry rule of layer 1 (and of the reference's generated client). */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 409 || status === 429 || status >= 500;
}

/** The initial budget of "bare 400" retries (proxy rejections), replenished by successes. */
const BARE_400_BUDGET = 16;

/**
 * The HTTP layer: undici keep-alive pools, the platform headers, `X-API-Key`, a per-call
 * idempotency key reused across its retries, per-attempt timeouts, AbortSignal, and retry
 * layer 1 (408/409/429/5xx and connection errors, `x-should-retry`, `retry-after[-ms]`).
 */
export class HttpClient {
  private readonly opts: HttpClientOptions;
  private readonly pools = new Map<PoolPurpose, Agent>();
  private readonly baseHeaders: Record<string, string>;
  private bare400Budget = BARE_400_BUDGET;
  private closed = false;

  constructor(opts: HttpClientOptions) {
    this.opts = opts;
    this.baseHeaders = {
      accept: "application/json",
      "user-agent": `tinker-ts/${TINKER_TS_VERSION} (node ${process.versions.node})`,
      "x-stainless-package-version": TINKER_TS_VERSION,
      "x-stainless-os": osName(),
      "x-stainless-arch": arch(),
      "x-stainless-runtime": "node",
      "x-stainless-runtime-version": process.versions.node,
      "x-stainless-async": "async:node",
      ...lowerKeys(opts.defaultHeaders ?? {}),
    };
  }

  private baseUrlValue: string | undefined;
  private baseUrlPromise: Promise<string> | undefined;

  private async resolveBaseUrl(): Promise<string> {
    if (this.baseUrlValue !== undefined) return this.baseUrlValue;
    const b = this.opts.baseUrl;
    if (typeof b === "string") {
      this.baseUrlValue = b;
      return b;
    }
    this.baseUrlPromise ??= b().then((u) => {
      this.baseUrlValue = u.replace(/\/+$/, "");
      return this.baseUrlValue;
    });
    this.baseUrlPromise.catch(() => {
      this.baseUrlPromise = undefined;
    });
    return this.baseUrlPromise;
  }

  /** Send one logical call, retrying per layer 1. Non-2xx final answers throw `APIStatusError`. */
  async request(req: HttpRequest): Promise<HttpResponse> {
    const endpoint = `${req.method} ${req.path}`;
    const maxRetries = req.maxRetries ?? this.opts.maxRetries;
    const timeoutMs = req.timeoutMs ?? this.opts.timeoutMs;
    const idempotencyKey = req.method === "GET" ? undefined : `tinker-ts-retry-${randomUUID()}`;
    const retryStatus = req.retryStatus ?? isRetryableStatus;
    // Serialized once: every retry sends the same bytes.
    const body = req.body ?? (req.json !== undefined ? JSON.stringify(req.json) : undefined);
    for (let retry = 0; ; retry++) {
      throwIfAborted(req.signal);
      // Checked before every attempt: a retry after close() must not open a new pool. Not a
      // connection error, so no retry layer above tries again.
      if (this.closed) {
        throw new TinkerError(`${endpoint}: the client was closed; create a new ServiceClient.`);
      }
      let res: HttpResponse;
      try {
        res = await this.attempt(req, body, endpoint, retry, timeoutMs, idempotencyKey);
      } catch (err) {
        if (err instanceof APIUserAbortError || !(err instanceof APIConnectionError)) throw err;
        if (retry >= maxRetries) throw err;
        const delay = this.backoff(retry);
        this.opts.logger.debug(
          `${endpoint} failed (${err.message}); retry ${retry + 1} in ${Math.round(delay)} ms`,
        );
        await sleep(delay, req.signal);
        continue;
      }
      const { status } = res;
      if (
        (status >= 200 && status < 300) ||
        (req.acceptRedirect && status >= 300 && status < 400)
      ) {
        this.bare400Budget = Math.min(BARE_400_BUDGET, this.bare400Budget + 1);
        return res;
      }
      if (status === 400 && res.body.length === 0 && this.bare400Budget > 0) {
        // An empty 400 comes from a proxy in front of the service, not from the service: drop
        // the pool's sockets and retry it as a connection error.
        this.bare400Budget--;
        this.resetPool(req.purpose ?? "session");
        if (retry < maxRetries) {
          await sleep(this.backoff(retry), req.signal);
          continue;
        }
        throw new APIConnectionError(
          `${endpoint}: a proxy rejected the request with an empty 400 response ${retry + 1} times.`,
          { request: endpoint },
        );
      }
      const should = res.headers["x-should-retry"];
      const retryable = should === "true" ? true : should === "false" ? false : retryStatus(status);
      if (retryable && retry < maxRetries) {
        const delay = retryAfterMs(res.headers) ?? this.backoff(retry);
        this.opts.logger.debug(
          `${endpoint} -> ${status}; retry ${retry + 1} in ${Math.round(delay)} ms`,
        );
        await sleep(delay, req.signal);
        continue;
      }
      throw APIStatusError.fromResponse(status, decodeErrorBody(res.body), {
        request: endpoint,
        headers: res.headers,
      });
    }
  }

  private backoff(retry: number): number {
    return httpBackoffMs(retry, this.opts.httpBackoffBaseMs, this.opts.httpBackoffCapMs);
  }

  private async attempt(
    req: HttpRequest,
    body: Uint8Array | string | undefined,
    endpoint: string,
    retry: number,
    timeoutMs: number,
    idempotencyKey: string | undefined,
  ): Promise<HttpResponse> {
    const headers: Record<string, string> = { ...this.baseHeaders };
    if (req.body !== undefined) {
      headers["content-type"] = req.contentType ?? "application/json";
    } else if (body !== undefined || (req.method !== "GET" && req.method !== "DELETE")) {
      headers["content-type"] = "application/json";
    }
    if (req.contentEncoding) headers["content-encoding"] = req.contentEncoding;
    if (req.accept) headers.accept = req.accept;
    if (idempotencyKey) headers["x-idempotency-key"] = idempotencyKey;
    headers["x-stainless-retry-count"] = String(retry);
    headers["x-stainless-read-timeout"] = String(timeoutMs / 1000);
    Object.assign(headers, lowerKeys(req.headers ?? {}));
    const key = req.apiKey ?? (await this.opts.credential());
    if (key !== undefined) headers["x-api-key"] = key;

    const url = this.url(await this.resolveBaseUrl(), req.path, req.query);
    const linked = linkedSignal(
      [req.signal],
      timeoutMs,
      `${endpoint} timed out after ${timeoutMs / 1000} s. Pass a larger timeout if the server is slow.`,
    );
    const started = Date.now();
    try {
      const res = await undiciRequest(url, {
        method: req.method,
        headers,
        body,
        signal: linked.signal,
        dispatcher: this.pool(req.purpose ?? "session"),
      });
      const buf = Buffer.from(await res.body.arrayBuffer());
      const outHeaders = flattenHeaders(res.headers);
      this.opts.logger.debug(
        `${endpoint} -> ${res.statusCode} (${Date.now() - started} ms, ${buf.length} B)`,
      );
      return {
        status: res.statusCode,
        headers: outHeaders,
        body: buf,
        endpoint,
        json: () => parseJsonBody(buf, endpoint),
      };
    } catch (err) {
      if (linked.signal.aborted) throw abortError(linked.signal);
      throw toConnectionError(err, endpoint, timeoutMs);
    } finally {
      linked.dispose();
    }
  }

  private url(base: string, path: string, query: HttpRequest["query"]): string {
    let url = base + (path.startsWith("/") ? path : `/${path}`);
    if (query) {
      const parts: string[] = [];
      for (const [k, v] of Object.entries(query)) {
        if (v === undefined) continue;
        const s = Array.isArray(v) ? v.join(",") : String(v);
        parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(s)}`);
      }
      if (parts.length > 0) url += `?${parts.join("&")}`;
    }
    return url;
  }

  private pool(requested: PoolPurpose): Dispatcher {
    // Polls share the sampling pool: over HTTP/1.1 a separate pool would double the sockets of
    // every sample (submit + poll) for no gain.
    const purpose: PoolPurpose = requested === "retrieve" ? "sample" : requested;
    let agent = this.pools.get(purpose);
    if (!agent) {
      agent = new Agent({
        connections: POOL_CONNECTIONS[purpose],
        keepAliveTimeout: 30_000,
        connect: { timeout: 5_000 },
        // Timeouts are ours (per attempt); undici's 300 s defaults would cut long polls.
        headersTimeout: 0,
        bodyTimeout: 0,
      });
      this.pools.set(purpose, agent);
    }
    return agent;
  }

  private resetPool(requested: PoolPurpose): void {
    const purpose: PoolPurpose = requested === "retrieve" ? "sample" : requested;
    const agent = this.pools.get(purpose);
    if (!agent) return;
    this.pools.delete(purpose);
    agent.close().catch(() => undefined);
  }

  /** Close every pool. In-flight requests are allowed to finish. */
  async close(): Promise<void> {
    this.closed = true;
    const agents = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(agents.map((a) => a.close().catch(() => undefined)));
  }
}

function osName(): string {
  const p = platform();
  return p === "linux" ? "Linux" : p === "darwin" ? "MacOS" : p === "win32" ? "Windows" : p;
}

function lowerKeys(h: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) out[k.toLowerCase()] = v;
  return out;
}

function flattenHeaders(h: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) {
    if (v === undefined) continue;
    out[k.toLowerCase()] = Array.isArray(v) ? v.join(", ") : v;
  }
  return out;
}

/** Decode an error body for messages: JSON when it parses, else the text. */
export function decodeErrorBody(buf: Buffer): unknown {
  const text = buf.toString("utf8");
  if (text === "") return "";
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function parseJsonBody(buf: Buffer, endpoint: string): unknown {
  const text = buf.toString("utf8");
  try {
    return JSON.parse(text);
  } catch {
    const preview = text.length > 200 ? `${text.slice(0, 200)}...` : text;
    throw new APIResponseValidationError(
      `${endpoint} returned a body that is not JSON: ${JSON.stringify(preview)}`,
      { request: endpoint, body: text },
    );
  }
}

function toConnectionError(err: unknown, endpoint: string, timeoutMs: number): APIConnectionError {
  if (err instanceof APIConnectionError) return err;
  if (
    err instanceof undiciErrors.ConnectTimeoutError ||
    err instanceof undiciErrors.HeadersTimeoutError ||
    err instanceof undiciErrors.BodyTimeoutError
  ) {
    return new APITimeoutError(`${endpoint} timed out (limit ${timeoutMs / 1000} s).`, {
      request: endpoint,
      cause: err,
    });
  }
  const msg = err instanceof Error ? err.message : String(err);
  const code = (err as { code?: string } | null)?.code;
  return new APIConnectionError(
    `Could not reach the Tinker server for ${endpoint}: ${code ? `${code} ` : ""}${msg}. ` +
      "Check the base URL and your network.",
    { request: endpoint, cause: err },
  );
}
