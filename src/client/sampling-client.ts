import { setMaxListeners } from "node:events";
import { performance } from "node:perf_hooks";
import { linkedSignal, sleep } from "./core/abort.js";
import { jitteredBackoffMs } from "./core/backoff.js";
import { Semaphore } from "./core/budget.js";
import { isRetryableError } from "./core/retry.js";
import {
  APIConnectionError,
  APIResponseValidationError,
  APIStatusError,
  APITimeoutError,
  TinkerValidationError,
} from "./errors.js";
import {
  APIFuture,
  FutureExpiredError,
  type FutureHooks,
  followFuture,
  pollFuture,
} from "./future.js";
import { bodies, requireString, sampleResponseFromJson } from "./internal/wire-bridge.js";
import { RestClient } from "./rest-client.js";
import { estimatePromptBytes } from "./sample-dispatch.js";
import type { ClientHolder } from "./session.js";
import { resolveTokenizerId, type Tokenizer } from "./tokenizer-hook.js";
import { ModelInput } from "./types/model-input.js";
import type { SampleResponse } from "./types/outputs.js";
import type { SamplingParams } from "./types/params.js";
import { decodeSampleResponse } from "./wire/proto.js";

export interface SampleOptions {
  /** Return one logprob per prompt token (`promptLogprobs`). */
  includePromptLogprobs?: boolean;
  /** Return the top-k alternatives per prompt position (`topkPromptLogprobs`); 0 = off. */
  topkPromptLogprobs?: number;
  /** Give up after this many ms (`APITimeoutError`); retries count against it. */
  timeout?: number;
  signal?: AbortSignal;
}

export interface SamplingClientTarget {
  /** A sampler checkpoint, `tinker://<run>/sampler_weights/<name>`. */
  modelPath?: string;
  /** A base model name, e.g. `Qwen/Qwen3-8B`. */
  baseModel?: string;
}

/** What `GET /api/v1/samplers/{id}` says about a sampler. */
export interface SamplerInfo {
  samplerId: string;
  baseModel: string;
  modelPath: string | undefined;
}

const LARGE_PROMPT_BYTES = 128 * 1024;

/**
 * Samples from a base model or a saved sampler checkpoint. Create one with
 * `ServiceClient.createSamplingClient` or `TrainingClient.saveWeightsAndGetSamplingClient`.
 *
 * Every `sample` call takes the next per-client `seq_id` (from 0) and is retried by the
 * reference's sampling retry handler: timeouts, connection errors, expired promises (410) and
 * 408/409/429/5xx are retried with `min(0.5 * 2^n, 10)` s +/- 25 % back-off without an attempt
 * limit (bound it with `timeout`), each retry under a new `seq_id`. A 429 on submission makes
 * every submitter back off 1 s (5 s for prompts over 128 KiB) and resend with the same `seq_id`.
 * At most `sample_max_concurrent_requests` (server flag, 2000) samples are in flight per client.
 */
export class SamplingClient {
  private readonly holder: ClientHolder;
  private readonly sessionIdPromise: Promise<string>;
  private seqCounter = 0;
  private inFlight: Semaphore | undefined;
  private lastProgress = Date.now();
  private stuckController = SamplingClient.stuckSignalController();
  private stuckTimer: NodeJS.Timeout | undefined;
  private infoPromise: Promise<SamplerInfo> | undefined;
  private tokenizerPromise: Promise<Tokenizer> | undefined;
  private readonly target: SamplingClientTarget;

  /** Every in-flight sample listens to this signal (removed when it settles): no listener cap. */
  private static stuckSignalController(): AbortController {
    const c = new AbortController();
    setMaxListeners(0, c.signal);
    return c;
  }

  /** @internal Use `ServiceClient.createSamplingClient`. */
  constructor(
    holder: ClientHolder,
    samplingSessionId: string | Promise<string>,
    target: SamplingClientTarget,
  ) {
    this.holder = holder;
    this.sessionIdPromise = Promise.resolve(samplingSessionId);
    this.sessionIdPromise.catch(() => undefined);
    this.target = target;
  }

  /** @internal Create the sampling session (`create_sampling_session`) and a client on it. */
  static async create(
    holder: ClientHolder,
    target: SamplingClientTarget,
    opts: { signal?: AbortSignal; timeout?: number } = {},
  ): Promise<SamplingClient> {
    const { modelPath, baseModel } = target;
    if (modelPath === undefined && baseModel === undefined) {
      throw new TinkerValidationError(
        "Pass modelPath (a tinker://.../sampler_weights/... path) or baseModel to create a sampling client.",
        "modelPath",
      );
    }
    if (modelPath !== undefined && !modelPath.startsWith("tinker://")) {
      throw new TinkerValidationError(
        `modelPath must start with tinker://, got "${modelPath}"`,
        "modelPath",
      );
    }
    const sessionId = await holder.sessionId();
    const seq = holder.nextSamplingSessionSeqId();
    const body = bodies.createSamplingSessionBody({
      sessionId,
      samplingSessionSeqId: seq,
      baseModel,
      modelPath,
    });
    const call = linkedSignal(
      [opts.signal],
      opts.timeout,
      `create_sampling_session timed out after ${(opts.timeout ?? 0) / 1000} s; pass a larger timeout if the server is busy.`,
    );
    try {
      const res = await holder.http.request({
        method: "POST",
        path: "/api/v1/create_sampling_session",
        json: body,
        purpose: "session",
        signal: call.signal,
      });
      const id = requireString(res.json(), "sampling_session_id", res.endpoint);
      return new SamplingClient(holder, id, target);
    } finally {
      call.dispose();
    }
  }

  /** The sampling session id (resolves once the session exists). */
  samplingSessionId(): Promise<string> {
    return this.sessionIdPromise;
  }

  /**
   * Generate `numSamples` continuations of `prompt`.
   * @throws TinkerValidationError for a bad prompt, count or parameters (before sending).
   */
  sample(
    prompt: ModelInput | ArrayLike<number>,
    numSamples: number,
    params: SamplingParams = {},
    opts: SampleOptions = {},
  ): APIFuture<SampleResponse> {
    const input = prompt instanceof ModelInput ? prompt : ModelInput.fromInts(prompt);
    validateSample(input, numSamples, params, opts);
    return new APIFuture<SampleResponse>(async (signal, hooks) => {
      // Manual linking (disposed below): AbortSignal.any on the long-lived stuck-watch signal
      // would keep a dependent signal per call alive until GC.
      const linked = linkedSignal(
        [signal, this.stuckController.signal, opts.signal],
        opts.timeout,
        `sample timed out after ${opts.timeout} ms (including retries).`,
      );
      try {
        return await this.withRetryHandler(input, numSamples, params, opts, linked.signal, hooks);
      } catch (err) {
        if (linked.signal.aborted) {
          const reason: unknown = linked.signal.reason;
          if (reason instanceof APITimeoutError || reason instanceof APIConnectionError)
            throw reason;
        }
        throw err;
      } finally {
        linked.dispose();
      }
    });
  }

  /** Logprob of every prompt token under the model (`null` for the first). */
  computeLogprobs(
    prompt: ModelInput | ArrayLike<number>,
    opts: SampleOptions = {},
  ): APIFuture<Array<number | null>> {
    const inner = this.sample(
      prompt,
      1,
      { maxTokens: 1 },
      { ...opts, includePromptLogprobs: true },
    );
    return followFuture(inner, (res) => {
      if (!res.promptLogprobs) {
        throw new APIResponseValidationError(
          "computeLogprobs: the server returned no prompt_logprobs for a request that asked for them",
          { request: "POST /api/v1/asample" },
        );
      }
      return res.promptLogprobs;
    });
  }

  private async withRetryHandler(
    prompt: ModelInput,
    numSamples: number,
    params: SamplingParams,
    opts: SampleOptions,
    signal: AbortSignal,
    hooks: FutureHooks,
  ): Promise<SampleResponse> {
    const flags = await this.holder.flags();
    this.inFlight ??= new Semaphore(flags.sampleMaxConcurrentRequests);
    this.inFlight.limit = flags.sampleMaxConcurrentRequests;
    const release = await this.inFlight.acquire(signal);
    if (flags.sampleEnableStuckDetection) this.ensureStuckWatch();
    const t = this.holder.timings;
    try {
      for (let attempt = 0; ; attempt++) {
        try {
          const out = await this.attempt(prompt, numSamples, params, opts, signal, hooks);
          this.lastProgress = Date.now();
          return out;
        } catch (err) {
          if (flags.sampleNoRetries || !isSampleRetryable(err) || signal.aborted) throw err;
          const delay = jitteredBackoffMs(attempt, t.sampleRetryBaseMs, t.sampleRetryCapMs);
          this.holder.logger.debug(
            `sample attempt ${attempt + 1} failed (${(err as Error).message}); retrying in ${Math.round(delay)} ms`,
          );
          await sleep(delay, signal);
        }
      }
    } finally {
      release();
    }
  }

  private async attempt(
    prompt: ModelInput,
    numSamples: number,
    params: SamplingParams,
    opts: SampleOptions,
    signal: AbortSignal,
    hooks: FutureHooks,
  ): Promise<SampleResponse> {
    const samplingSessionId = await this.sessionIdPromise;
    const seqId = this.seqCounter++;
    // Serialized once: a 429 resends the same bytes.
    const body = JSON.stringify(
      bodies.sampleBody({
        samplingSessionId,
        seqId,
        prompt,
        numSamples,
        samplingParams: params,
        promptLogprobs: opts.includePromptLogprobs ?? false,
        topkPromptLogprobs: opts.topkPromptLogprobs ?? 0,
      }),
    );
    const promptBytes = estimatePromptBytes(prompt);
    const dispatcher = await this.holder.sampleDispatch();
    const t0 = performance.now();
    let requestId: string;
    for (;;) {
      const release = await dispatcher.acquire(promptBytes, signal);
      try {
        const res = await this.holder.withRetries(
          "asample",
          () =>
            this.holder.http.request({
              method: "POST",
              path: "/api/v1/asample",
              body,
              headers: { "X-Tinker-Sampling-Backpressure": "1" },
              purpose: "sample",
              signal,
              retryStatus: (s) => s !== 429 && (s === 408 || s === 409 || s >= 500),
            }),
          signal,
          { retryable: (e) => isRetryableError(e) && !isStatus(e, 429) },
        );
        requestId = requireString(res.json(), "request_id", res.endpoint);
        break;
      } catch (err) {
        if (!isStatus(err, 429)) throw err;
        const t = this.holder.timings;
        const wait = dispatcher.onRateLimited(
          promptBytes <= LARGE_PROMPT_BYTES ? t.sampleBackoffSmallMs : t.sampleBackoffLargeMs,
        );
        this.holder.logger.debug(`asample seq ${seqId}: 429, resending in ${wait} ms`);
      } finally {
        release();
      }
    }
    hooks.onSubmitted(requestId);
    this.lastProgress = Date.now();
    const payload = await pollFuture(this.holder.pollContext(), {
      requestId,
      requestType: "Sample",
      acceptProtobuf: this.holder.config.wireFormat !== "json",
      roundtripSec: (performance.now() - t0) / 1000,
      signal,
      onQueueState: (e) => {
        this.lastProgress = Date.now();
        hooks.onQueueState(e);
      },
    });
    return payload.kind === "binary"
      ? decodeSampleResponse(payload.bytes, "POST /api/v1/retrieve_future")
      : sampleResponseFromJson(payload.value, "POST /api/v1/retrieve_future");
  }

  /** Fail every in-flight sample if nothing progressed for `sampleStuckAfterMs` (2 h). */
  private ensureStuckWatch(): void {
    if (this.stuckTimer) return;
    const limit = this.holder.timings.sampleStuckAfterMs;
    this.stuckTimer = setInterval(
      () => {
        const active = this.inFlight?.inFlight ?? 0;
        if (active === 0) {
          this.lastProgress = Date.now();
          return;
        }
        const idle = Date.now() - this.lastProgress;
        if (idle >= limit) {
          const old = this.stuckController;
          this.stuckController = SamplingClient.stuckSignalController();
          this.lastProgress = Date.now();
          old.abort(
            new APIConnectionError(
              `No progress made in ${(idle / 1000).toFixed(1)}s. Requests appear to be stuck.`,
            ),
          );
        }
      },
      Math.max(10, Math.min(60_000, limit / 4)),
    );
    this.stuckTimer.unref();
  }

  /** What the server knows about this sampler (`GET /api/v1/samplers/{id}`). */
  getSamplerInfo(opts: { signal?: AbortSignal } = {}): Promise<SamplerInfo> {
    this.infoPromise ??= (async () => {
      const id = await this.sessionIdPromise;
      const d = await new RestClient(this.holder).getSampler(id, opts);
      return { samplerId: d.samplerId, baseModel: d.baseModel, modelPath: d.modelPath };
    })();
    this.infoPromise.catch(() => {
      this.infoPromise = undefined;
    });
    return this.infoPromise;
  }

  /** The base model this sampler runs. */
  async getBaseModel(opts: { signal?: AbortSignal } = {}): Promise<string> {
    if (this.target.baseModel !== undefined) return this.target.baseModel;
    return (await this.getSamplerInfo(opts)).baseModel;
  }

  /** The sampler's tokenizer, via the configured `tokenizerLoader` (cached). */
  getTokenizer(): Promise<Tokenizer> {
    this.tokenizerPromise ??= (async () => {
      const id = resolveTokenizerId(await this.getBaseModel());
      return this.holder.tokenizer(id);
    })();
    this.tokenizerPromise.catch(() => {
      this.tokenizerPromise = undefined;
    });
    return this.tokenizerPromise;
  }

  /** Stop the stuck-request watchdog. The session stays open until `ServiceClient.close()`. */
  async close(): Promise<void> {
    if (this.stuckTimer) clearInterval(this.stuckTimer);
    this.stuckTimer = undefined;
  }
}

function isStatus(err: unknown, status: number): boolean {
  return err instanceof APIStatusError && err.status === status;
}

function isSampleRetryable(err: unknown): boolean {
  return err instanceof FutureExpiredError || isRetryableError(err);
}

function validateSample(
  prompt: ModelInput,
  numSamples: number,
  params: SamplingParams,
  opts: SampleOptions,
): void {
  if (!Number.isInteger(numSamples) || numSamples < 1) {
    throw new TinkerValidationError(
      `numSamples must be a positive integer, got ${numSamples}`,
      "numSamples",
    );
  }
  if (prompt.length === 0) {
    throw new TinkerValidationError("prompt is empty: pass at least one token", "prompt");
  }
  if (
    params.maxTokens !== undefined &&
    (!Number.isInteger(params.maxTokens) || params.maxTokens < 1)
  ) {
    throw new TinkerValidationError(
      `maxTokens must be a positive integer, got ${params.maxTokens}`,
      "maxTokens",
    );
  }
  if (params.temperature !== undefined && !(params.temperature >= 0)) {
    throw new TinkerValidationError("temperature must be >= 0 (0 = greedy)", "temperature");
  }
  if (params.topP !== undefined && !(params.topP > 0 && params.topP <= 1)) {
    throw new TinkerValidationError("topP must be in (0, 1]", "topP");
  }
  if (
    params.topK !== undefined &&
    (!Number.isInteger(params.topK) || (params.topK < 1 && params.topK !== -1))
  ) {
    throw new TinkerValidationError("topK must be a positive integer or -1 (no limit)", "topK");
  }
  const k = opts.topkPromptLogprobs;
  if (k !== undefined && (!Number.isInteger(k) || k < 0)) {
    throw new TinkerValidationError(
      "topkPromptLogprobs must be an integer >= 0",
      "topkPromptLogprobs",
    );
  }
}
