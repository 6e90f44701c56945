import { randomUUID } from "node:crypto";
import { platform } from "node:os";
import { SoftByteBudget } from "./core/budget.js";
import {
  type ClientOptions,
  DEFAULT_BASE_URL,
  type ResolvedConfig,
  resolveConfig,
} from "./core/config.js";
import { runCredentialCommand } from "./core/credentials.js";
import { HttpClient, type HttpRequest, type HttpResponse } from "./core/http.js";
import { JwtManager } from "./core/jwt.js";
import { type Logger, RateLimitedLog, RedactingLogger } from "./core/logger.js";
import { BillingPause, executeWithRetries, type RetryLoopOptions } from "./core/retry.js";
import type { Timings } from "./core/timings.js";
import { PROTOCOL_SDK_VERSION } from "./core/version.js";
import { APIStatusError, TinkerError } from "./errors.js";
import type { PollContext } from "./future.js";
import {
  bodies,
  parseServerFlags,
  requireString,
  type ServerFlags,
} from "./internal/wire-bridge.js";
import { SampleDispatcher } from "./sample-dispatch.js";
import { defaultTokenizerLoader, type Tokenizer, TokenizerCache } from "./tokenizer-hook.js";

/** What `ServiceClient` exposes about the session it runs. */
export interface SessionInfo {
  sessionId: string;
  flags: ServerFlags;
}

/**
 * Owns everything shared by the clients of one `ServiceClient`: configuration, the HTTP layer,
 * credentials (API key, credential command, JWT exchange and refresh), server flags,
 * dynamic config, the session with its heartbeat, counters, budgets and telemetry.
 *
 * Everything is lazy: nothing is sent until a client needs the server. `close()` stops every
 * timer and closes the pools.
 */
export class ClientHolder {
  readonly config: ResolvedConfig;
  readonly logger: RedactingLogger;
  readonly http: HttpClient;
  readonly timings: Timings;
  readonly billing: BillingPause;
  readonly queueLog: RateLimitedLog;
  responseBytes: SoftByteBudget;
  private tokenizerCache: TokenizerCache<Tokenizer> | undefined;
  private sampleDispatcher: SampleDispatcher | undefined;
  /** Per-session counters (model_seq_id, sampling_session_seq_id). */
  private trainingCounter = 0;
  private samplingCounter = 0;

  private jwt: JwtManager | undefined;
  private flagsPromise: Promise<ServerFlags> | undefined;
  private flagsValue: ServerFlags | undefined;
  private sessionPromise: Promise<string> | undefined;
  private sessionIdValue: string | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private dynamicTimer: NodeJS.Timeout | undefined;
  private lastHeartbeatOk = Date.now();
  private heartbeatWarned = false;
  private dynamicConfigValue: Record<string, unknown> = { refresh_interval_sec: 300 };
  private telemetry: Telemetry | undefined;
  private closed = false;
  private closing: Promise<void> | undefined;
  private readonly secretsSeen = new Set<string>();

  constructor(options: ClientOptions = {}) {
    this.config = resolveConfig(options);
    this.timings = this.config.timings;
    if (this.config.apiKey) this.secretsSeen.add(this.config.apiKey);
    this.logger = new RedactingLogger(options.logger ?? console, this.config.logLevel, () => [
      ...this.secretsSeen,
    ]);
    this.http = new HttpClient({
      baseUrl: this.config.useLocalServer ? () => this.startLocalServer() : this.config.baseUrl,
      timeoutMs: this.config.timeoutMs,
      maxRetries: this.config.maxRetries,
      logger: this.logger,
      credential: () => this.credential(),
      defaultHeaders: this.config.defaultHeaders,
      httpBackoffBaseMs: this.timings.httpBackoffBaseMs,
      httpBackoffCapMs: this.timings.httpBackoffCapMs,
    });
    this.billing = new BillingPause(3_600_000, this.timings.billingResetMs);
    this.queueLog = new RateLimitedLog(this.timings.queueStateLogIntervalMs);
    this.responseBytes = new SoftByteBudget(50 * 1024 * 1024);
    if (this.config.telemetry) this.telemetry = new Telemetry(this);
  }

  /** Server flags; triggers `client/config` (+ JWT exchange, dynamic config) on first use. */
  flags(): Promise<ServerFlags> {
    this.assertOpen();
    if (!this.flagsPromise) {
      this.flagsPromise = this.bootstrap();
      this.flagsPromise.catch(() => {
        this.flagsPromise = undefined;
      });
    }
    return this.flagsPromise;
  }

  /** Flags if already fetched (synchronous). */
  get knownFlags(): ServerFlags | undefined {
    return this.flagsValue;
  }

  /** The session id; creates the session (and starts the heartbeat) on first use. */
  sessionId(): Promise<string> {
    this.assertOpen();
    if (!this.sessionPromise) {
      this.sessionPromise = this.createSession();
      this.sessionPromise.catch(() => {
        this.sessionPromise = undefined;
      });
    }
    return this.sessionPromise;
  }

  nextModelSeqId(): number {
    return this.trainingCounter++;
  }

  nextSamplingSessionSeqId(): number {
    return this.samplingCounter++;
  }

  /**
   * The tokenizer `id`, through the configured `tokenizerLoader` (default: the tokenizers module),
   * loaded once per client.
   */
  tokenizer(id: string): Promise<Tokenizer> {
    this.tokenizerCache ??= new TokenizerCache(
      this.config.tokenizerLoader ?? defaultTokenizerLoader,
    );
    return this.tokenizerCache.get(id);
  }

  /** Flow control of sample submissions shared by every SamplingClient of this client. */
  async sampleDispatch(): Promise<SampleDispatcher> {
    const flags = await this.flags();
    this.sampleDispatcher ??= new SampleDispatcher(flags.sampleDispatchBytesSemaphoreSize);
    return this.sampleDispatcher;
  }

  /** Shared state of future polling. */
  pollContext(): PollContext {
    return {
      http: this.http,
      logger: this.logger,
      timings: this.timings,
      billing: this.billing,
      responseBytes: this.responseBytes,
      queueLog: this.queueLog,
      body: bodies.retrieveFutureBody,
    };
  }

  /** Layer-2 retries (`executeWithRetries`) with this client's timings and billing window. */
  withRetries<T>(
    what: string,
    fn: (attempt: number) => Promise<T>,
    signal?: AbortSignal,
    extra: Partial<RetryLoopOptions> = {},
  ): Promise<T> {
    return executeWithRetries(fn, {
      budgetMs: this.timings.retryBudgetMs,
      baseMs: this.timings.backoffBaseMs,
      capMs: this.timings.maxBackoffMs,
      billing: this.billing,
      billingRetryMs: this.timings.billingRetryMs,
      signal,
      logger: this.logger,
      what,
      ...extra,
    });
  }

  /** One HTTP call wrapped in layer 2. */
  request(what: string, req: HttpRequest): Promise<HttpResponse> {
    return this.withRetries(what, () => this.http.request(req), req.signal);
  }

  /** Record a telemetry event (no-op unless telemetry is on). */
  recordEvent(event: string, data: Record<string, unknown> = {}, severity = "INFO"): void {
    this.telemetry?.record(event, data, severity);
  }

  // --- credentials -------------------------------------------------------------------------

  /** The durable credential: the API key, or the credential command's output. */
  private async durableCredential(): Promise<string | undefined> {
    const { apiKey, credentialCmd } = this.config;
    const forceCmd = this.flagsValue?.credentialDefaultSource === "credential_cmd";
    let key: string | undefined;
    if (credentialCmd && (!apiKey || (forceCmd && !apiKey.startsWith("eyJ")))) {
      key = await runCredentialCommand(credentialCmd);
    } else {
      key = apiKey;
    }
    if (
      key === undefined &&
      !this.config.useLocalServer &&
      this.config.baseUrl === DEFAULT_BASE_URL
    ) {
      throw new TinkerError(
        "No Tinker API key. Set TINKER_API_KEY (or TINKER_CREDENTIAL_CMD), or pass { apiKey } to ServiceClient.",
      );
    }
    if (key) this.secretsSeen.add(key);
    return key;
  }

  /** The value of `X-API-Key` for session traffic: the JWT when exchange is enabled. */
  private async credential(): Promise<string | undefined> {
    if (this.jwt) {
      const t = await this.jwt.get();
      this.secretsSeen.add(t);
      return t;
    }
    return this.durableCredential();
  }

  private async exchangeJwt(): Promise<string> {
    const durable = await this.durableCredential();
    const res = await this.withRetries("auth/token", () =>
      this.http.request({
        method: "POST",
        path: "/api/v1/auth/token",
        json: bodies.authTokenBody(),
        purpose: "session",
        ...(durable ? { apiKey: durable } : {}),
      }),
    );
    const jwt = requireString(res.json(), "jwt", res.endpoint);
    this.secretsSeen.add(jwt);
    return jwt;
  }

  /** The durable key or current JWT, for clients that decode it (`whoami`). */
  async currentCredential(): Promise<string | undefined> {
    await this.flags();
    return this.credential();
  }

  // --- bootstrap ---------------------------------------------------------------------------

  private async bootstrap(): Promise<ServerFlags> {
    const durable = await this.durableCredential();
    const res = await this.withRetries("client/config", () =>
      this.http.request({
        method: "POST",
        path: "/api/v1/client/config",
        json: bodies.clientConfigBody(PROTOCOL_SDK_VERSION),
        purpose: "session",
        ...(durable ? { apiKey: durable } : {}),
      }),
    );
    const flags = parseServerFlags(res.json());
    this.flagsValue = flags;
    this.billing.maxPauseMs = flags.billingExceptionMaxPauseDurationSec * 1000;
    this.responseBytes = new SoftByteBudget(flags.inflightResponseBytesSemaphoreSize);
    if (flags.pjwtAuthEnabled && !(durable ?? "").startsWith("eyJ")) {
      this.jwt = new JwtManager({
        exchange: () => this.exchangeJwt(),
        logger: this.logger,
        refreshBeforeMs: this.timings.jwtRefreshBeforeMs,
        onDemandMs: this.timings.jwtOnDemandMs,
        retryMs: this.timings.jwtRetryMs,
      });
      await this.jwt.refresh();
    }
    await this.refreshDynamicConfig();
    return flags;
  }

  private async refreshDynamicConfig(): Promise<void> {
    try {
      const res = await this.withRetries("client/dynamic_config", () =>
        this.http.request({
          method: "POST",
          path: "/api/v1/client/dynamic_config",
          json: bodies.clientConfigBody(PROTOCOL_SDK_VERSION),
          timeoutMs: this.timings.dynamicConfigTimeoutMs,
          maxRetries: 0,
          purpose: "session",
        }),
      );
      const v = res.json();
      if (v && typeof v === "object" && !Array.isArray(v)) {
        this.dynamicConfigValue = v as Record<string, unknown>;
      }
    } catch (err) {
      if (!(err instanceof APIStatusError && err.status === 404)) {
        this.logger.debug(
          `dynamic_config failed; keeping the last value (${(err as Error).message})`,
        );
      }
    }
    if (this.closed) return;
    const interval = Number(this.dynamicConfigValue.refresh_interval_sec ?? 300);
    const ms = Math.max(
      (Number.isFinite(interval) ? interval : 300) * 1000,
      this.timings.dynamicConfigMinIntervalMs,
    );
    if (this.dynamicTimer) clearTimeout(this.dynamicTimer);
    this.dynamicTimer = setTimeout(() => void this.refreshDynamicConfig(), ms);
    this.dynamicTimer.unref();
  }

  /** The last dynamic config the server sent. */
  get dynamicConfig(): Readonly<Record<string, unknown>> {
    return this.dynamicConfigValue;
  }

  private async createSession(): Promise<string> {
    await this.flags();
    const body = bodies.createSessionBody({
      tags: this.config.tags,
      userMetadata: this.config.userMetadata,
      sdkVersion: PROTOCOL_SDK_VERSION,
      projectId: this.config.projectId,
    });
    const res = await this.http.request({
      method: "POST",
      path: "/api/v1/create_session",
      json: body,
      purpose: "session",
    });
    const value = res.json();
    const sessionId = requireString(value, "session_id", res.endpoint);
    const v = value as Record<string, unknown>;
    if (typeof v.info_message === "string") this.logger.info(v.info_message);
    if (typeof v.warning_message === "string") this.logger.warn(v.warning_message);
    if (typeof v.error_message === "string") this.logger.error(v.error_message);
    this.sessionIdValue = sessionId;
    this.lastHeartbeatOk = Date.now();
    this.scheduleHeartbeat();
    this.telemetry?.start(sessionId);
    this.logger.info(`Session ${sessionId} created`);
    return sessionId;
  }

  private scheduleHeartbeat(): void {
    if (this.closed) return;
    this.heartbeatTimer = setTimeout(() => void this.heartbeat(), this.timings.heartbeatIntervalMs);
    this.heartbeatTimer.unref();
  }

  private async heartbeat(): Promise<void> {
    const sessionId = this.sessionIdValue;
    if (!sessionId || this.closed) return;
    try {
      await this.http.request({
        method: "POST",
        path: "/api/v1/session_heartbeat",
        json: bodies.sessionHeartbeatBody(sessionId),
        timeoutMs: this.timings.heartbeatTimeoutMs,
        maxRetries: 0,
        purpose: "session",
      });
      this.lastHeartbeatOk = Date.now();
      this.heartbeatWarned = false;
    } catch (err) {
      if (err instanceof APIStatusError && err.status === 410) {
        this.logger.warn(`Session ${sessionId} has finished on the server; heartbeats stopped.`);
        return;
      }
      const since = Date.now() - this.lastHeartbeatOk;
      if (since >= this.timings.heartbeatWarnAfterMs && !this.heartbeatWarned) {
        this.heartbeatWarned = true;
        this.logger.warn(
          `No successful heartbeat for ${Math.round(since / 1000)} s; the session will be terminated by the server if this continues (${(err as Error).message})`,
        );
      }
    }
    this.scheduleHeartbeat();
  }

  private localServer: { url: string; close(): Promise<void> } | undefined;

  /** Start (or join) the embedded local server; loaded only when it is needed. */
  private async startLocalServer(): Promise<string> {
    const { ensureLocalServer } = await import("../local/server/embedded.js");
    const handle = await ensureLocalServer(this.config.localServer);
    if (this.closed) {
      await handle.close();
      throw new TinkerError("This ServiceClient was closed; create a new one.");
    }
    this.localServer = handle;
    this.logger.info(`Using the embedded local server at ${handle.url}`);
    return handle.url;
  }

  private assertOpen(): void {
    if (this.closed) throw new TinkerError("This ServiceClient was closed; create a new one.");
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Stop heartbeat, refresh timers and telemetry, then close the HTTP pools. */
  close(): Promise<void> {
    // Concurrent calls share one shutdown (one SESSION_END, pools closed once).
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    await this.telemetry?.stop();
    this.closed = true;
    if (this.heartbeatTimer) clearTimeout(this.heartbeatTimer);
    if (this.dynamicTimer) clearTimeout(this.dynamicTimer);
    this.jwt?.stop();
    await this.http.close();
    await this.localServer?.close();
  }

  /** Known session id, if the session was created. */
  get currentSessionId(): string | undefined {
    return this.sessionIdValue;
  }
}

/**
 * Opt-in telemetry (off by default in tinker-ts): SESSION_START / SESSION_END and generic events,
 * batched (<= 100) every `telemetryFlushMs`; the queue is capped at 10 000 events and failed
 * sends are dropped rather than retried forever.
 */
class Telemetry {
  private readonly queue: Array<Record<string, unknown>> = [];
  private index = 0;
  private timer: NodeJS.Timeout | undefined;
  private sessionId: string | undefined;
  private readonly processUuid = randomUUID();
  private readonly startedAt = Date.now();

  constructor(private readonly holder: ClientHolder) {}

  start(sessionId: string): void {
    this.sessionId = sessionId;
    this.record("SESSION_START", {}, "INFO");
    this.timer = setInterval(() => void this.flush(), this.holder.timings.telemetryFlushMs);
    this.timer.unref();
  }

  record(event: string, data: Record<string, unknown>, severity: string): void {
    if (this.queue.length >= 10_000) return;
    const base: Record<string, unknown> = {
      event,
      event_id: randomUUID(),
      event_session_index: this.index++,
      severity,
      timestamp: new Date().toISOString(),
    };
    if (event === "SESSION_START" || event === "SESSION_END") Object.assign(base, data);
    else Object.assign(base, { event: "GENERIC_EVENT", event_name: event, event_data: data });
    this.queue.push(base);
  }

  async flush(): Promise<void> {
    if (!this.sessionId) return;
    while (this.queue.length > 0) {
      const events = this.queue.splice(0, 100);
      try {
        await this.holder.http.request({
          method: "POST",
          path: "/api/v1/telemetry",
          json: {
            events,
            platform: platform() === "linux" ? "Linux" : platform(),
            sdk_version: PROTOCOL_SDK_VERSION,
            session_id: this.sessionId,
            process_uuid: this.processUuid,
          },
          timeoutMs: this.holder.timings.telemetryTimeoutMs,
          maxRetries: 0,
          purpose: "telemetry",
        });
      } catch {
        return;
      }
    }
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    if (!this.sessionId) return;
    const secs = (Date.now() - this.startedAt) / 1000;
    this.record("SESSION_END", { duration: formatDuration(secs) }, "INFO");
    await this.flush();
  }
}

/** `H:MM:SS.ffffff`, the reference's duration format. */
function formatDuration(totalSeconds: number): string {
  const h = Math.floor(totalSeconds / 3600);
  const m = Math.floor((totalSeconds % 3600) / 60);
  const s = totalSeconds % 60;
  return `${h}:${String(m).padStart(2, "0")}:${s.toFixed(6).padStart(9, "0")}`;
}

export type { Logger };
