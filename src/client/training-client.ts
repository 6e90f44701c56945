import { performance } from "node:perf_hooks";
import { linkedSignal, throwIfAborted } from "./core/abort.js";
import { SoftByteBudget } from "./core/budget.js";
import type { HttpRequest } from "./core/http.js";
import { type CustomLossFn, forwardBackwardCustom } from "./custom-loss.js";
import { TinkerValidationError } from "./errors.js";
import {
  APIFuture,
  type FutureRequestType,
  followFuture,
  pollFuture,
  type QueueStateEvent,
} from "./future.js";
import {
  bodies,
  chunkDatumsWithSizes,
  combineForwardBackwardOutputs,
  estimateDatumBytesLegacy,
  forwardBackwardOutputFromJson,
  requireString,
  zstdCompress,
} from "./internal/wire-bridge.js";
import { SamplingClient } from "./sampling-client.js";
import type { ClientHolder } from "./session.js";
import { resolveTokenizerId, type Tokenizer } from "./tokenizer-hook.js";
import type { Datum } from "./types/datum.js";
import type { ForwardBackwardOutput, OptimStepResponse } from "./types/outputs.js";
import {
  type AdamParams,
  LOSS_FN_TYPES,
  type LossFnConfig,
  type LossFnType,
} from "./types/params.js";
import { decodeForwardBackwardOutput, encodeForwardBackwardRequest } from "./wire/proto.js";

/** Per-call options of every client method. */
export interface CallOptions {
  /**
   * Cancels the call: the future rejects with `APIUserAbortError`. A request whose `seq_id` was
   * already taken is still submitted (a gap in the sequence would stall the model); only the
   * wait for its result is cancelled.
   */
  signal?: AbortSignal;
  /** Give up after this many ms (`APITimeoutError`), with the same rule as `signal`. */
  timeout?: number;
}

/** `get_info` result. */
export interface TrainingModelInfo {
  modelId: string;
  modelName: string | undefined;
  isLora: boolean | undefined;
  loraRank: number | undefined;
  modelData: { arch?: string; modelName?: string; tokenizerId?: string };
}

export interface SaveStateOptions extends CallOptions {
  /** Delete the checkpoint after this many seconds (default: kept). */
  ttlSeconds?: number;
  /** Replace an existing checkpoint of the same name (default false). */
  overwrite?: boolean;
}

export interface LoadStateOptions extends CallOptions {
  /** Token granting access to another account's checkpoint. */
  weightsAccessToken?: string;
}

/** Result of `saveState` / `saveWeightsForSampler`: the `tinker://` path of the checkpoint. */
export interface SavedCheckpoint {
  path: string;
}

export interface LoadedCheckpoint {
  path: string | undefined;
  modelId: string | undefined;
}

interface Submitted {
  requestId: string;
  roundtripSec: number;
}

/**
 * A LoRA training run on the server. Create it with `ServiceClient.createLoraTrainingClient`.
 *
 * Every method returns an `APIFuture` at once. Requests are POSTed strictly in call order (each
 * after the previous one was acknowledged) but results are not awaited in between, so
 *
 * ```ts
 * const fb = tc.forwardBackward(batch, "cross_entropy");
 * const step = tc.optimStep({ learningRate: 1e-4 });
 * const [out] = await Promise.all([fb, step]);
 * ```
 *
 * lands both requests in the same server clock cycle. Each request (and each chunk of a large
 * forward_backward) takes the next `seq_id`, starting at 1.
 */
export class TrainingClient {
  readonly modelId: string;
  /** Index of this model within its session (`model_seq_id`). */
  readonly modelSeqId: number;
  private readonly holder: ClientHolder;
  private requestCounter: number;
  private turn: Promise<void> = Promise.resolve();
  private dispatchBytes: SoftByteBudget | undefined;
  private tokenizerPromise: Promise<Tokenizer> | undefined;

  /** @internal Built by `ServiceClient`. */
  constructor(holder: ClientHolder, modelId: string, modelSeqId: number, requestsSoFar = 0) {
    this.holder = holder;
    this.modelId = modelId;
    this.modelSeqId = modelSeqId;
    this.requestCounter = requestsSoFar;
  }

  /** Next `seq_id` (1, 2, 3, ...). */
  private nextSeqId(): number {
    this.requestCounter += 1;
    return this.requestCounter;
  }

  /**
   * Run `submit` once every earlier request of this client was acknowledged. The next request
   * may start as soon as `submit` resolves, whatever happens to the results.
   */
  private inTurn<T>(submit: () => Promise<T>, turnHeld = false): Promise<T> {
    if (turnHeld) return submit();
    const prev = this.turn;
    let done!: () => void;
    this.turn = new Promise<void>((r) => {
      done = r;
    });
    return prev.then(submit).finally(done);
  }

  private async post(
    what: string,
    req: HttpRequest,
    signal: AbortSignal | undefined,
  ): Promise<Submitted> {
    const t0 = performance.now();
    const res = await this.holder.request(what, { ...req, purpose: "train", signal });
    const requestId = requireString(res.json(), "request_id", res.endpoint);
    return { requestId, roundtripSec: (performance.now() - t0) / 1000 };
  }

  private poll(
    sub: Submitted,
    requestType: FutureRequestType,
    acceptProtobuf: boolean,
    signal: AbortSignal,
    onQueueState: (e: QueueStateEvent) => void,
  ) {
    return pollFuture(this.holder.pollContext(), {
      requestId: sub.requestId,
      requestType,
      acceptProtobuf,
      roundtripSec: sub.roundtripSec,
      signal,
      onQueueState,
    });
  }

  /** A single-request JSON future call (optim_step, save, load ...). */
  private jsonCall<T>(
    path: string,
    requestType: FutureRequestType,
    body: (seqId: number) => object,
    parse: (value: unknown) => T,
    opts: CallOptions & { maxRetries?: number } = {},
  ): APIFuture<T> {
    return new APIFuture<T>(async (signal, hooks) => {
      const call = callSignal(signal, opts, requestType);
      const linked = call.signal;
      try {
        const sub = await this.inTurn(async () => {
          throwIfAborted(linked);
          const seqId = this.nextSeqId();
          const json = body(seqId);
          return this.post(
            path,
            {
              method: "POST",
              path,
              json,
              ...(opts.maxRetries !== undefined ? { maxRetries: opts.maxRetries } : {}),
            },
            undefined,
          );
        });
        hooks.onSubmitted(sub.requestId);
        const payload = await this.poll(sub, requestType, false, linked, hooks.onQueueState);
        if (payload.kind !== "json") {
          throw new TinkerValidationError(`${requestType}: unexpected binary result`, "response");
        }
        return parse(payload.value);
      } finally {
        call.dispose();
      }
    });
  }

  /**
   * Forward and backward pass: gradients accumulate on the server until `optimStep`.
   * Large batches are split by the server's chunk limits; chunk results are merged in order.
   */
  forwardBackward(
    data: readonly Datum[],
    lossFn: LossFnType,
    lossFnConfig?: LossFnConfig,
    opts: CallOptions = {},
  ): APIFuture<ForwardBackwardOutput> {
    return this.fwdCall(data, lossFn, lossFnConfig, false, opts);
  }

  /**
   * @internal Hold this client's submission turn while `fn` runs, so no other request of this
   * client is POSTed in between (used by `forwardBackwardCustom`, whose two requests must be
   * adjacent). `fn` gets forward/forwardBackward that submit inside the held turn.
   */
  _exclusive<T>(
    fn: (ops: {
      forward: (
        data: readonly Datum[],
        lossFn: LossFnType,
        opts?: CallOptions,
      ) => APIFuture<ForwardBackwardOutput>;
      forwardBackward: (
        data: readonly Datum[],
        lossFn: LossFnType,
        opts?: CallOptions,
      ) => APIFuture<ForwardBackwardOutput>;
    }) => Promise<T>,
  ): Promise<T> {
    return this.inTurn(() =>
      fn({
        forward: (d, l, o = {}) => this.fwdCall(d, l, undefined, true, o, true),
        forwardBackward: (d, l, o = {}) => this.fwdCall(d, l, undefined, false, o, true),
      }),
    );
  }

  /** Forward pass only (no gradients): per-datum outputs such as `logprobs`, and metrics. */
  forward(
    data: readonly Datum[],
    lossFn: LossFnType,
    lossFnConfig?: LossFnConfig,
    opts: CallOptions = {},
  ): APIFuture<ForwardBackwardOutput> {
    return this.fwdCall(data, lossFn, lossFnConfig, true, opts);
  }

  /**
   * Forward-backward with a loss computed here from the per-token logprobs. TypeScript has no
   * autograd, so `lossFn` returns the gradient of its loss with respect to each logprob array;
   * see `CustomLossFn`. Costs two server round trips (a forward, then a weighted
   * cross-entropy forward_backward whose gradient equals the custom loss's).
   */
  forwardBackwardCustom(
    data: readonly Datum[],
    lossFn: CustomLossFn,
    opts: CallOptions = {},
  ): APIFuture<ForwardBackwardOutput> {
    return forwardBackwardCustom(this, data, lossFn, opts);
  }

  private fwdCall(
    data: readonly Datum[],
    lossFn: LossFnType,
    lossFnConfig: LossFnConfig | undefined,
    forwardOnly: boolean,
    opts: CallOptions,
    turnHeld = false,
  ): APIFuture<ForwardBackwardOutput> {
    if (data.length === 0) {
      throw new TinkerValidationError("No data provided: pass at least one Datum.", "data");
    }
    if (!LOSS_FN_TYPES.includes(lossFn)) {
      throw new TinkerValidationError(
        `Unknown loss function "${String(lossFn)}"; use one of ${LOSS_FN_TYPES.join(", ")}.`,
        "lossFn",
      );
    }
    const requestType: FutureRequestType = forwardOnly ? "Forward" : "ForwardBackward";
    return new APIFuture<ForwardBackwardOutput>(async (signal, hooks) => {
      const call = callSignal(signal, opts, requestType);
      const linked = call.signal;
      try {
        // Enter the turn synchronously (call order = submission order); flags are read inside.
        const { subs, json } = await this.inTurn(async () => {
          const flags = await this.holder.flags();
          throwIfAborted(linked);
          const json =
            this.holder.config.wireFormat === "json" ||
            (this.holder.config.wireFormat === "auto" && flags.protoWriteFwdbwd === false);
          this.dispatchBytes ??= new SoftByteBudget(flags.fwdbwdDispatchBytesSemaphoreSize);
          const chunks = chunkDatumsWithSizes(data, {
            maxChunkLen: flags.fwdbwdMaxChunkLen,
            maxChunkBytes: flags.fwdbwdMaxChunkBytesCount,
            ...(json ? { estimate: estimateDatumBytesLegacy } : {}),
          });
          const seqIds = chunks.map(() => this.nextSeqId());
          const send = async (i: number): Promise<Submitted> => {
            const chunk = chunks[i]!;
            const release = await this.dispatchBytes!.acquire(chunk.estimatedBytes);
            try {
              const req = await this.chunkRequest(
                chunk.data,
                seqIds[i]!,
                lossFn,
                lossFnConfig,
                forwardOnly,
                json,
                flags.protoCompressFwdbwd,
              );
              return await this.post(forwardOnly ? "forward" : "forward_backward", req, undefined);
            } finally {
              release();
            }
          };
          const out: Submitted[] = new Array(chunks.length);
          if (flags.parallelFwdbwdChunks && chunks.length > 1) {
            // Later chunks first (concurrently), the first chunk last: the server holds the later
            // ones until the first arrives, then takes the whole batch together.
            const rest = await Promise.all(chunks.slice(1).map((_, j) => send(j + 1)));
            rest.forEach((s, j) => {
              out[j + 1] = s;
            });
            out[0] = await send(0);
          } else {
            for (let i = 0; i < chunks.length; i++) out[i] = await send(i);
          }
          return { subs: out, json };
        }, turnHeld);
        hooks.onSubmitted(subs[0]!.requestId);
        const results = await Promise.all(
          subs.map(async (sub) => {
            const payload = await this.poll(sub, requestType, !json, linked, hooks.onQueueState);
            return payload.kind === "binary"
              ? decodeForwardBackwardOutput(payload.bytes, "POST /api/v1/retrieve_future")
              : forwardBackwardOutputFromJson(payload.value, "POST /api/v1/retrieve_future");
          }),
        );
        if (results.length === 1) return results[0]!;
        return combineForwardBackwardOutputs(results);
      } finally {
        call.dispose();
      }
    });
  }

  private async chunkRequest(
    chunk: readonly Datum[],
    seqId: number,
    lossFn: LossFnType,
    lossFnConfig: LossFnConfig | undefined,
    forwardOnly: boolean,
    json: boolean,
    compress: boolean,
  ): Promise<HttpRequest> {
    if (json) {
      const input = { modelId: this.modelId, seqId, data: chunk, lossFn, lossFnConfig };
      return forwardOnly
        ? { method: "POST", path: "/api/v1/forward", json: bodies.forwardJsonBody(input) }
        : {
            method: "POST",
            path: "/api/v1/forward_backward",
            json: bodies.forwardBackwardJsonBody(input),
          };
    }
    let body = encodeForwardBackwardRequest({
      modelId: this.modelId,
      seqId,
      data: chunk,
      lossFn,
      lossFnConfig,
      forwardOnly,
    });
    if (compress) body = await zstdCompress(body);
    return {
      method: "POST",
      path: "/api/v1/forward_backward",
      body,
      contentType: "application/x-protobuf",
      ...(compress ? { contentEncoding: "zstd" } : {}),
    };
  }

  /** Apply the accumulated gradients with AdamW. */
  optimStep(adamParams: AdamParams = {}, opts: CallOptions = {}): APIFuture<OptimStepResponse> {
    validateAdam(adamParams);
    return this.jsonCall(
      "/api/v1/optim_step",
      "OptimStep",
      (seqId) => bodies.optimStepBody({ modelId: this.modelId, seqId, adamParams }),
      (v) => {
        const metrics = (v as { metrics?: Record<string, number> } | null)?.metrics;
        return metrics ? { metrics } : {};
      },
      opts,
    );
  }

  /** Save weights and optimizer state as `tinker://<model>/weights/<name>`. */
  saveState(name: string, opts: SaveStateOptions = {}): APIFuture<SavedCheckpoint> {
    validateName(name);
    return this.jsonCall(
      "/api/v1/save_weights",
      "SaveWeights",
      (seqId) =>
        bodies.saveWeightsBody({
          modelId: this.modelId,
          seqId,
          path: name,
          ttlSeconds: opts.ttlSeconds,
          overwrite: opts.overwrite,
        }),
      (v) => ({ path: requireString(v, "path", "SaveWeights result") }),
      { ...opts, maxRetries: 0 },
    );
  }

  /** Load weights only (optimizer state starts fresh) from a `tinker://.../weights/...` path. */
  loadState(path: string, opts: LoadStateOptions = {}): APIFuture<LoadedCheckpoint> {
    return this.load(path, false, opts);
  }

  /** Load weights and optimizer state (resume training exactly). */
  loadStateWithOptimizer(path: string, opts: LoadStateOptions = {}): APIFuture<LoadedCheckpoint> {
    return this.load(path, true, opts);
  }

  private load(
    path: string,
    optimizer: boolean,
    opts: LoadStateOptions,
  ): APIFuture<LoadedCheckpoint> {
    if (!path.startsWith("tinker://")) {
      throw new TinkerValidationError(
        `load path must be a tinker:// checkpoint path, got "${path}"`,
        "path",
      );
    }
    return this.jsonCall(
      "/api/v1/load_weights",
      "LoadWeights",
      (seqId) =>
        bodies.loadWeightsBody({
          modelId: this.modelId,
          seqId,
          path,
          optimizer,
          weightsAccessToken: opts.weightsAccessToken,
        }),
      (v) => {
        const o = (v ?? {}) as { path?: unknown; model_id?: unknown };
        return {
          path: typeof o.path === "string" ? o.path : undefined,
          modelId: typeof o.model_id === "string" ? o.model_id : undefined,
        };
      },
      opts,
    );
  }

  /** Save sampler weights as `tinker://<model>/sampler_weights/<name>`. */
  saveWeightsForSampler(
    name: string,
    opts: CallOptions & { ttlSeconds?: number } = {},
  ): APIFuture<SavedCheckpoint> {
    validateName(name);
    return this.jsonCall(
      "/api/v1/save_weights_for_sampler",
      "SaveWeightsForSampler",
      (seqId) =>
        bodies.saveWeightsForSamplerBody({
          modelId: this.modelId,
          seqId,
          path: name,
          ttlSeconds: opts.ttlSeconds,
        }),
      (v) => ({ path: requireString(v, "path", "SaveWeightsForSampler result") }),
      { ...opts, maxRetries: 0 },
    );
  }

  /**
   * Snapshot the current weights into an ephemeral sampler (never listed, reclaimed by the
   * server) and return a `SamplingClient` on it.
   */
  saveWeightsAndGetSamplingClient(opts: CallOptions = {}): APIFuture<SamplingClient> {
    const samplingSeq = this.holder.nextSamplingSessionSeqId();
    const future = this.jsonCall(
      "/api/v1/save_weights_for_sampler",
      "SaveWeightsForSampler",
      (seqId) =>
        bodies.saveWeightsForSamplerBody({
          modelId: this.modelId,
          seqId,
          samplingSessionSeqId: samplingSeq,
        }),
      (v) => requireString(v, "sampling_session_id", "SaveWeightsForSampler result"),
      { ...opts, maxRetries: 0 },
    );
    return followFuture(future, (id) => new SamplingClient(this.holder, id, {}));
  }

  /** A `SamplingClient` on a saved sampler checkpoint (`tinker://.../sampler_weights/...`). */
  createSamplingClient(modelPath: string, opts: CallOptions = {}): Promise<SamplingClient> {
    return SamplingClient.create(this.holder, { modelPath }, opts);
  }

  /** Model facts from the server (base model, LoRA rank, tokenizer id). */
  async getInfo(opts: CallOptions = {}): Promise<TrainingModelInfo> {
    const res = await this.holder.request("get_info", {
      method: "POST",
      path: "/api/v1/get_info",
      json: bodies.getInfoBody(this.modelId),
      purpose: "train",
      signal: opts.signal,
    });
    const v = res.json() as Record<string, unknown>;
    const md = (v.model_data ?? {}) as Record<string, unknown>;
    const modelData: TrainingModelInfo["modelData"] = {};
    if (typeof md.arch === "string") modelData.arch = md.arch;
    if (typeof md.model_name === "string") modelData.modelName = md.model_name;
    if (typeof md.tokenizer_id === "string") modelData.tokenizerId = md.tokenizer_id.split(":")[0]!;
    return {
      modelId: typeof v.model_id === "string" ? v.model_id : this.modelId,
      modelName: typeof v.model_name === "string" ? v.model_name : modelData.modelName,
      isLora: typeof v.is_lora === "boolean" ? v.is_lora : undefined,
      loraRank: typeof v.lora_rank === "number" ? v.lora_rank : undefined,
      modelData,
    };
  }

  /** The model's tokenizer, via the configured `tokenizerLoader` (cached). */
  getTokenizer(): Promise<Tokenizer> {
    this.tokenizerPromise ??= (async () => {
      const info = await this.getInfo();
      const name = info.modelData.modelName ?? info.modelName;
      if (!name) {
        throw new TinkerValidationError("get_info returned no model name", "model_data.model_name");
      }
      const id = resolveTokenizerId(name, info.modelData.tokenizerId);
      return this.holder.tokenizer(id);
    })();
    this.tokenizerPromise.catch(() => {
      this.tokenizerPromise = undefined;
    });
    return this.tokenizerPromise;
  }

  /** Nothing to release per training client; closing the `ServiceClient` stops the session. */
  async close(): Promise<void> {
    await this.turn;
  }
}

function validateName(name: string): void {
  if (typeof name !== "string" || name === "" || name.includes("/")) {
    throw new TinkerValidationError(
      `checkpoint name "${name}" is invalid: use a non-empty name without "/" (e.g. "step-100")`,
      "name",
    );
  }
}

function validateAdam(p: AdamParams): void {
  for (const [k, v] of Object.entries(p)) {
    if (v !== undefined && (typeof v !== "number" || !Number.isFinite(v))) {
      throw new TinkerValidationError(
        `AdamParams.${k} must be a finite number, got ${String(v)}`,
        k,
      );
    }
  }
  if (p.learningRate !== undefined && p.learningRate < 0) {
    throw new TinkerValidationError("AdamParams.learningRate must be >= 0", "learningRate");
  }
}

/** The signal of one call: the future's own, the caller's, and the call's timeout. */
function callSignal(futureSignal: AbortSignal, opts: CallOptions, what: string) {
  return linkedSignal(
    [futureSignal, opts.signal],
    opts.timeout,
    `${what} timed out after ${(opts.timeout ?? 0) / 1000} s. The request may still run on the server.`,
  );
}
