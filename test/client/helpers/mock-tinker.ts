/**
 * An in-process server that answers like Tinker (0.25 protocol) on top of `FaultServer`:
 * bootstrap, sessions, models, protobuf and JSON forward_backward, optim_step, checkpoints,
 * sampling and `retrieve_future`. Results are deterministic functions of the inputs so tests can
 * check numbers: the logprob of target token t is `-(t % 7 + 1) / 10`, and the loss is
 * `sum(-logprob * weight)`. Scripted faults go through `server.script(...)`.
 */

import { ServiceClient, type ServiceClientOptions } from "../../../src/client/service-client.js";
import type { Datum } from "../../../src/client/types/datum.js";
import type { ForwardBackwardOutput, SampleResponse } from "../../../src/client/types/outputs.js";
import { TensorData } from "../../../src/client/types/tensor-data.js";
import {
  datumFromJson,
  forwardBackwardOutputToJson,
  modelInputFromJson,
  sampleResponseToJson,
} from "../../../src/client/wire/json.js";
import {
  decodeForwardBackwardRequest,
  encodeForwardBackwardOutput,
  encodeSampleResponse,
} from "../../../src/client/wire/proto.js";
import { zstdDecompress } from "../../../src/client/wire/zstd.js";
import { bodyJson, FaultServer, type RecordedRequest, type Reply } from "./fault-server.js";

export type StoredResult =
  | { kind: "fwd"; value: ForwardBackwardOutput }
  | { kind: "sample"; value: SampleResponse }
  | { kind: "json"; value: unknown };

export interface TrainingEvent {
  endpoint: string;
  modelId: string;
  seqId: number;
  at: number;
  requestId: string;
}

export interface MockTinkerOptions {
  flags?: Record<string, unknown>;
  /** Polls answered `try_again` before a result is delivered. */
  pendingPolls?: number;
}

export function tokenLogprob(t: number): number {
  return -((t % 7) + 1) / 10;
}

export class MockTinker {
  readonly server: FaultServer;
  flags: Record<string, unknown>;
  pendingPolls: number;
  readonly results = new Map<string, StoredResult>();
  readonly pollCounts = new Map<string, number>();
  readonly training: TrainingEvent[] = [];
  /** Called before a result is delivered; may delay it. */
  resultGate: (requestId: string, result: StoredResult) => Promise<void> = async () => undefined;
  private nextRequest = 1;
  private samplers = 0;
  sessionId = "sess-1";

  private constructor(server: FaultServer, opts: MockTinkerOptions) {
    this.server = server;
    this.flags = opts.flags ?? {};
    this.pendingPolls = opts.pendingPolls ?? 0;
    this.install();
  }

  static async start(opts: MockTinkerOptions = {}): Promise<MockTinker> {
    return new MockTinker(await FaultServer.start(), opts);
  }

  get url(): string {
    return this.server.url;
  }

  close(): Promise<void> {
    return this.server.close();
  }

  private newFuture(result: StoredResult, extra: Record<string, unknown> = {}): Reply {
    const requestId = `req-${this.nextRequest++}`;
    this.results.set(requestId, result);
    return { json: { request_id: requestId, ...extra } };
  }

  private recordTraining(
    req: RecordedRequest,
    modelId: string,
    seqId: number,
    reply: Reply,
  ): Reply {
    const requestId = (reply as { json: { request_id: string } }).json.request_id;
    this.training.push({
      endpoint: `${req.method} ${req.path}`,
      modelId,
      seqId,
      at: Date.now(),
      requestId,
    });
    return reply;
  }

  /** Deterministic forward_backward output. */
  static fwdOutput(data: readonly Datum[]): ForwardBackwardOutput {
    let loss = 0;
    const outs = data.map((d) => {
      const target = d.lossFnInputs.target_tokens!;
      const dense = target.toDense();
      const lp = new Float32Array(dense.length);
      const w = d.lossFnInputs.weights?.toDense();
      for (let i = 0; i < dense.length; i++) {
        lp[i] = tokenLogprob(dense[i]!);
        loss += -lp[i]! * (w ? w[i]! : 0);
      }
      return { logprobs: TensorData.fromTyped(lp, target.shape) };
    });
    return {
      lossFnOutputType: "ArrayRecord",
      lossFnOutputs: outs,
      metrics: { "loss:sum": loss, "n:mean": data.length },
    };
  }

  private install(): void {
    const s = this.server;
    s.on("POST /api/v1/client/config", () => ({ json: this.flags }));
    s.on("POST /api/v1/client/dynamic_config", () => ({ json: { refresh_interval_sec: 300 } }));
    s.on("POST /api/v1/create_session", () => ({
      json: { session_id: this.sessionId, type: "create_session" },
    }));
    s.on("POST /api/v1/session_heartbeat", () => ({ json: { type: "session_heartbeat" } }));
    s.on("POST /api/v1/telemetry", () => ({ json: { status: "accepted" } }));
    s.on("GET /api/v1/get_server_capabilities", () => ({
      json: { supported_models: [{ model_name: "Qwen/Qwen3-8B", max_context_length: 32768 }] },
    }));
    s.on("POST /api/v1/create_model", (req) => {
      const b = bodyJson(req);
      const modelId = `${b.session_id}:train:${b.model_seq_id}`;
      return this.newFuture(
        { kind: "json", value: { model_id: modelId, type: "create_model" } },
        { model_id: modelId },
      );
    });
    s.on("POST /api/v1/get_info", (req) => {
      const b = bodyJson(req);
      return {
        json: {
          type: "get_info",
          model_id: b.model_id,
          model_data: {
            arch: "qwen3",
            model_name: "Qwen/Qwen3-8B",
            tokenizer_id: "Qwen/Qwen3-8B:rev",
          },
          is_lora: true,
          lora_rank: 32,
        },
      };
    });
    s.on("POST /api/v1/forward_backward", async (req) => {
      if (req.headers["content-encoding"] === "zstd") {
        req.body = Buffer.from(await zstdDecompress(new Uint8Array(req.body), 64 * 1024 * 1024));
      }
      if ((req.headers["content-type"] ?? "").includes("protobuf")) {
        // A plain Uint8Array: the wire decoders copy unaligned input with .slice(), which on a Buffer is a view.
        const r = decodeForwardBackwardRequest(new Uint8Array(req.body));
        const reply = this.newFuture({ kind: "fwd", value: MockTinker.fwdOutput(r.data) });
        return this.recordTraining(req, r.modelId, r.seqId, reply);
      }
      const b = bodyJson(req);
      const input = b.forward_backward_input as { data: unknown[] };
      const data = input.data.map(datumFromJson);
      const reply = this.newFuture({ kind: "fwd", value: MockTinker.fwdOutput(data) });
      return this.recordTraining(req, String(b.model_id), Number(b.seq_id), reply);
    });
    s.on("POST /api/v1/forward", (req) => {
      const b = bodyJson(req);
      const data = (b.forward_input as { data: unknown[] }).data.map(datumFromJson);
      const reply = this.newFuture({ kind: "fwd", value: MockTinker.fwdOutput(data) });
      return this.recordTraining(req, String(b.model_id), Number(b.seq_id), reply);
    });
    s.on("POST /api/v1/optim_step", (req) => {
      const b = bodyJson(req);
      const reply = this.newFuture({ kind: "json", value: { metrics: { "grad_norm:mean": 0.5 } } });
      return this.recordTraining(req, String(b.model_id), Number(b.seq_id), reply);
    });
    s.on("POST /api/v1/save_weights", (req) => {
      const b = bodyJson(req);
      const reply = this.newFuture({
        kind: "json",
        value: { path: `tinker://${b.model_id}/weights/${b.path}`, type: "save_weights" },
      });
      return this.recordTraining(req, String(b.model_id), Number(b.seq_id), reply);
    });
    s.on("POST /api/v1/load_weights", (req) => {
      const b = bodyJson(req);
      const modelId = b.model_id ?? `${b.session_id}:train:${b.model_seq_id}`;
      const reply = this.newFuture({
        kind: "json",
        value: { path: b.path, model_id: modelId, type: "load_weights" },
      });
      return this.recordTraining(req, String(modelId), Number(b.seq_id ?? 0), reply);
    });
    s.on("POST /api/v1/save_weights_for_sampler", (req) => {
      const b = bodyJson(req);
      const value =
        b.path === undefined
          ? {
              sampling_session_id: `${this.sessionId}:sample:${b.sampling_session_seq_id}`,
              path: null,
            }
          : {
              path: `tinker://${b.model_id}/sampler_weights/${b.path}`,
              type: "save_weights_for_sampler",
            };
      const reply = this.newFuture({ kind: "json", value });
      return this.recordTraining(req, String(b.model_id), Number(b.seq_id), reply);
    });
    s.on("POST /api/v1/weights_info", () => ({
      json: {
        base_model: "Qwen/Qwen3-8B",
        is_lora: true,
        lora_rank: 16,
        train_unembed: false,
        train_mlp: true,
        train_attn: true,
      },
    }));
    s.on("POST /api/v1/create_sampling_session", (req) => {
      const b = bodyJson(req);
      return {
        json: {
          sampling_session_id: `${b.session_id}:sample:${this.samplers++}`,
          type: "create_sampling_session",
        },
      };
    });
    s.on("POST /api/v1/asample", (req) => {
      const b = bodyJson(req);
      const prompt = modelInputFromJson(b.prompt).toInts();
      const params = b.sampling_params as { max_tokens?: number };
      const n = params.max_tokens ?? 4;
      const last = prompt[prompt.length - 1] ?? 0;
      const num = Number(b.num_samples);
      const value: SampleResponse = {
        sequences: Array.from({ length: num }, (_, k) => {
          const tokens = Array.from({ length: n }, (_, i) => last + 1 + i + k);
          return { stopReason: "length" as const, tokens, logprobs: tokens.map(tokenLogprob) };
        }),
        promptCacheHitTokens: 0,
      };
      if (b.prompt_logprobs)
        value.promptLogprobs = prompt.map((t, i) => (i === 0 ? null : tokenLogprob(t)));
      return this.newFuture({ kind: "sample", value });
    });
    s.on("POST /api/v1/retrieve_future", async (req) => {
      const b = bodyJson(req);
      const id = String(b.request_id);
      const result = this.results.get(id);
      if (!result) return { status: 404, json: { detail: `Future ${id} not found` } };
      const polls = (this.pollCounts.get(id) ?? 0) + 1;
      this.pollCounts.set(id, polls);
      if (polls <= this.pendingPolls) {
        return { json: { type: "try_again", request_id: id, queue_state: "active" } };
      }
      await this.resultGate(id, result);
      const wantsProto = (req.headers.accept ?? "").includes("application/x-protobuf");
      if (result.kind === "fwd") {
        return wantsProto
          ? {
              body: Buffer.from(encodeForwardBackwardOutput(result.value)),
              headers: { "content-type": "application/x-protobuf" },
            }
          : { json: forwardBackwardOutputToJson(result.value) };
      }
      if (result.kind === "sample") {
        return wantsProto
          ? {
              body: Buffer.from(encodeSampleResponse(result.value)),
              headers: { "content-type": "application/x-protobuf" },
            }
          : { json: sampleResponseToJson(result.value) };
      }
      return { json: result.value };
    });
    s.on("GET /api/v1/samplers/*", (req) => ({
      json: { sampler_id: req.path.split("/").pop(), base_model: "Qwen/Qwen3-8B" },
    }));
  }
}

/** Retry and back-off timings short enough for tests (real values are seconds). */
export const FAST_TIMINGS = {
  httpBackoffBaseMs: 1,
  httpBackoffCapMs: 5,
  backoffBaseMs: 5,
  maxBackoffMs: 20,
  retryBudgetMs: 2000,
} as const;

/** A quiet ServiceClient pointed at `mock`, with fast timings; `extra` overrides any option. */
export function clientFor(mock: MockTinker, extra: ServiceClientOptions = {}): ServiceClient {
  return new ServiceClient({
    apiKey: "tml-test-key",
    baseUrl: mock.url,
    logLevel: "off",
    timings: FAST_TIMINGS,
    ...extra,
  });
}
