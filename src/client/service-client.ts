import { performance } from "node:perf_hooks";
import { linkedSignal } from "./core/abort.js";
import type { ClientOptions } from "./core/config.js";
import type { HttpResponse } from "./core/http.js";
import { TinkerValidationError } from "./errors.js";
import { type FuturePayload, type FutureRequestType, pollFuture } from "./future.js";
import { bodies, parseTinkerPath, requireString } from "./internal/wire-bridge.js";
import { RestClient } from "./rest-client.js";
import { SamplingClient, type SamplingClientTarget } from "./sampling-client.js";
import { ClientHolder } from "./session.js";
import { type CallOptions, TrainingClient } from "./training-client.js";

/** Options of `ServiceClient` (all optional; environment variables fill the gaps). */
export type ServiceClientOptions = ClientOptions;

export interface LoraTrainingOptions extends CallOptions {
  /** LoRA rank (default 32). */
  rank?: number;
  seed?: number;
  /** Adapt the MLP / MoE layers (default true). */
  trainMlp?: boolean;
  /** Adapt attention (default true). */
  trainAttn?: boolean;
  /** Adapt the unembedding (default true). */
  trainUnembed?: boolean;
  userMetadata?: Record<string, unknown>;
}

export interface FromStateOptions extends CallOptions {
  /** Override the checkpoint's base model. */
  baseModel?: string;
  userMetadata?: Record<string, unknown>;
  /** Token granting access to another account's checkpoint. */
  weightsAccessToken?: string;
}

export interface ServerCapabilities {
  supportedModels: Array<{ modelName?: string; maxContextLength?: number }>;
}

/**
 * Entry point: holds the connection, credentials and session, and creates training, sampling and
 * REST clients. Nothing is sent until the first client needs the server; `close()` stops the
 * heartbeat and closes connections (timers are unref'd, so a forgotten client never keeps the
 * process alive).
 *
 * ```ts
 * const service = new ServiceClient(); // TINKER_API_KEY, TINKER_BASE_URL
 * const tc = await service.createLoraTrainingClient("Qwen/Qwen3-8B", { rank: 32 });
 * ```
 */
export class ServiceClient {
  private readonly holder: ClientHolder;

  constructor(options: ServiceClientOptions = {}) {
    this.holder = new ClientHolder(options);
  }

  /** Models the server can train and sample, with their context lengths. */
  async getServerCapabilities(opts: CallOptions = {}): Promise<ServerCapabilities> {
    await this.holder.flags();
    const res = await this.holder.request("get_server_capabilities", {
      method: "GET",
      path: "/api/v1/get_server_capabilities",
      purpose: "rest",
      signal: opts.signal,
    });
    const v = res.json() as { supported_models?: Array<Record<string, unknown>> };
    return {
      supportedModels: (v.supported_models ?? []).map((m) => {
        const o: { modelName?: string; maxContextLength?: number } = {};
        if (typeof m.model_name === "string") o.modelName = m.model_name;
        if (typeof m.max_context_length === "number") o.maxContextLength = m.max_context_length;
        return o;
      }),
    };
  }

  /** Create a LoRA adapter on `baseModel` and a `TrainingClient` for it. */
  async createLoraTrainingClient(
    baseModel: string,
    options: LoraTrainingOptions = {},
  ): Promise<TrainingClient> {
    const call = linkedSignal(
      [options.signal],
      options.timeout,
      `create_model timed out after ${(options.timeout ?? 0) / 1000} s; pass a larger timeout if the server is busy.`,
    );
    try {
      return await this.createLora(baseModel, { ...options, signal: call.signal });
    } finally {
      call.dispose();
    }
  }

  private async createLora(baseModel: string, opts: LoraTrainingOptions): Promise<TrainingClient> {
    if (typeof baseModel !== "string" || baseModel === "") {
      throw new TinkerValidationError(
        'baseModel must be a model name such as "Qwen/Qwen3-8B"',
        "baseModel",
      );
    }
    const rank = opts.rank ?? 32;
    if (!Number.isInteger(rank) || rank < 1) {
      throw new TinkerValidationError(`rank must be a positive integer, got ${rank}`, "rank");
    }
    const lora = {
      rank,
      ...(opts.seed !== undefined ? { seed: opts.seed } : {}),
      trainUnembed: opts.trainUnembed ?? true,
      trainMlp: opts.trainMlp ?? true,
      trainAttn: opts.trainAttn ?? true,
    };
    if (!lora.trainUnembed && !lora.trainMlp && !lora.trainAttn) {
      throw new TinkerValidationError(
        "At least one of trainMlp, trainAttn and trainUnembed must be true.",
        "trainMlp",
      );
    }
    const sessionId = await this.holder.sessionId();
    const modelSeqId = this.holder.nextModelSeqId();
    const body = bodies.createModelBody({
      sessionId,
      modelSeqId,
      baseModel,
      loraConfig: lora,
      userMetadata: opts.userMetadata,
    });
    // create_model relies on the HTTP-layer retries only, as the reference does.
    const payload = await this.submitAndPoll(
      () =>
        this.holder.http.request({
          method: "POST",
          path: "/api/v1/create_model",
          json: body,
          purpose: "train",
          signal: opts.signal,
        }),
      "CreateModel",
      opts.signal,
    );
    const modelId = requireString(
      payload.kind === "json" ? payload.value : {},
      "model_id",
      "CreateModel result",
    );
    return new TrainingClient(this.holder, modelId, modelSeqId);
  }

  /** A training client starting from saved weights (fresh optimizer state). */
  createTrainingClientFromState(
    path: string,
    opts: FromStateOptions = {},
  ): Promise<TrainingClient> {
    return this.fromState(path, false, opts);
  }

  /** A training client resuming from saved weights and optimizer state. */
  createTrainingClientFromStateWithOptimizer(
    path: string,
    opts: FromStateOptions = {},
  ): Promise<TrainingClient> {
    return this.fromState(path, true, opts);
  }

  private async fromState(
    path: string,
    optimizer: boolean,
    options: FromStateOptions,
  ): Promise<TrainingClient> {
    const call = linkedSignal(
      [options.signal],
      options.timeout,
      `creating a training client from state timed out after ${(options.timeout ?? 0) / 1000} s; pass a larger timeout if the server is busy.`,
    );
    try {
      return await this.fromStateInner(path, optimizer, { ...options, signal: call.signal });
    } finally {
      call.dispose();
    }
  }

  private async fromStateInner(
    path: string,
    optimizer: boolean,
    opts: FromStateOptions,
  ): Promise<TrainingClient> {
    const parsed = parseTinkerPath(path);
    if (parsed.checkpointType !== "training") {
      throw new TinkerValidationError(
        `"${path}" is a sampler checkpoint; training state is saved under tinker://<run>/weights/<name> (saveState).`,
        "path",
      );
    }
    const flags = await this.holder.flags();
    if (flags.createModelViaLoadWeights) {
      // One load_weights creates the model; it is the model's seq 0.
      const sessionId = await this.holder.sessionId();
      const modelSeqId = this.holder.nextModelSeqId();
      const body = bodies.loadWeightsBody({
        sessionId,
        modelSeqId,
        baseModel: opts.baseModel,
        userMetadata: opts.userMetadata,
        path,
        optimizer,
        weightsAccessToken: opts.weightsAccessToken,
      });
      const payload = await this.submitAndPoll(
        () =>
          this.holder.request("load_weights", {
            method: "POST",
            path: "/api/v1/load_weights",
            json: body,
            purpose: "train",
            signal: opts.signal,
          }),
        "LoadWeights",
        opts.signal,
      );
      const v = (payload.kind === "json" ? payload.value : {}) as { model_id?: unknown };
      const modelId =
        typeof v.model_id === "string" ? v.model_id : `${sessionId}:train:${modelSeqId}`;
      return new TrainingClient(this.holder, modelId, modelSeqId);
    }
    const info = await new RestClient(this.holder).getWeightsInfoByTinkerPath(path, {
      ...(opts.signal ? { signal: opts.signal } : {}),
      ...(opts.weightsAccessToken ? { apiKey: opts.weightsAccessToken } : {}),
    });
    const tc = await this.createLoraTrainingClient(opts.baseModel ?? info.baseModel, {
      rank: info.loraRank ?? 32,
      ...(info.trainMlp !== undefined ? { trainMlp: info.trainMlp } : {}),
      ...(info.trainAttn !== undefined ? { trainAttn: info.trainAttn } : {}),
      ...(info.trainUnembed !== undefined ? { trainUnembed: info.trainUnembed } : {}),
      ...(opts.userMetadata ? { userMetadata: opts.userMetadata } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    const loadOpts = {
      ...(opts.weightsAccessToken ? { weightsAccessToken: opts.weightsAccessToken } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
    };
    await (optimizer ? tc.loadStateWithOptimizer(path, loadOpts) : tc.loadState(path, loadOpts));
    return tc;
  }

  /** A sampling client on a sampler checkpoint (`modelPath`) or a base model. */
  createSamplingClient(
    target: SamplingClientTarget,
    opts: CallOptions = {},
  ): Promise<SamplingClient> {
    return SamplingClient.create(this.holder, target, opts);
  }

  /** POST a future-kind request, then poll its result (JSON) through `retrieve_future`. */
  private async submitAndPoll(
    submit: () => Promise<HttpResponse>,
    requestType: FutureRequestType,
    signal: AbortSignal | undefined,
  ): Promise<FuturePayload> {
    const t0 = performance.now();
    const res = await submit();
    const requestId = requireString(res.json(), "request_id", res.endpoint);
    return pollFuture(this.holder.pollContext(), {
      requestId,
      requestType,
      acceptProtobuf: false,
      roundtripSec: (performance.now() - t0) / 1000,
      signal,
    });
  }

  /** Checkpoint / training-run / session management (no session is created for it). */
  createRestClient(): RestClient {
    return new RestClient(this.holder);
  }

  /** The session id (creating the session if needed). */
  sessionId(): Promise<string> {
    return this.holder.sessionId();
  }

  /** Stop the heartbeat and background refreshes, flush telemetry, close connections. */
  close(): Promise<void> {
    return this.holder.close();
  }

  /** `await using service = new ServiceClient()` closes it at scope end. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
