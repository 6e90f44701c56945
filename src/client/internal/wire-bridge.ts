/**
 * The single place where the client runtime touches request bodies and response shapes.
 *
 * TODO(wire): these are stand-ins written against the protocol reference until
 * `src/client/wire/requests.ts` and `src/client/wire/responses.ts` land; then each function here
 * becomes a re-export of the wire module's builder/parser and this file shrinks to glue.
 */
import * as zlib from "node:zlib";
import { APIResponseValidationError, TinkerError, TinkerValidationError } from "../errors.js";
import type { Datum } from "../types/datum.js";
import type { ModelInput, ModelInputChunk } from "../types/model-input.js";
import type { ForwardBackwardOutput, SampleResponse, StopReason } from "../types/outputs.js";
import {
  ADAM_DEFAULTS,
  type AdamParams,
  type LoraConfig,
  type SamplingParams,
} from "../types/params.js";
import { TensorData } from "../types/tensor-data.js";

/** Server feature flags from `POST /api/v1/client/config`, every one defaulted. */
export interface ServerFlags {
  pjwtAuthEnabled: boolean;
  credentialDefaultSource: string;
  sampleDispatchBytesSemaphoreSize: number;
  inflightResponseBytesSemaphoreSize: number;
  parallelFwdbwdChunks: boolean;
  protoCompressFwdbwd: boolean;
  fwdbwdMaxChunkLen: number;
  fwdbwdMaxChunkBytesCount: number;
  fwdbwdDispatchBytesSemaphoreSize: number;
  billingExceptionMaxPauseDurationSec: number;
  sampleNoRetries: boolean;
  sampleEnableStuckDetection: boolean;
  sampleMaxConcurrentRequests: number;
  usePyqwestTransport: boolean;
  createModelViaLoadWeights: boolean;
  /** Pre-0.25 flag: when explicitly false, the server wants JSON forward_backward. */
  protoWriteFwdbwd: boolean | undefined;
}

export const DEFAULT_SERVER_FLAGS: Readonly<ServerFlags> = {
  pjwtAuthEnabled: false,
  credentialDefaultSource: "api_key",
  sampleDispatchBytesSemaphoreSize: 10 * 1024 * 1024,
  inflightResponseBytesSemaphoreSize: 50 * 1024 * 1024,
  parallelFwdbwdChunks: true,
  protoCompressFwdbwd: false,
  fwdbwdMaxChunkLen: 1024,
  fwdbwdMaxChunkBytesCount: 5_000_000,
  fwdbwdDispatchBytesSemaphoreSize: 50_000_000,
  billingExceptionMaxPauseDurationSec: 3600,
  sampleNoRetries: false,
  sampleEnableStuckDetection: true,
  sampleMaxConcurrentRequests: 2000,
  usePyqwestTransport: true,
  createModelViaLoadWeights: false,
  protoWriteFwdbwd: undefined,
};

function asObject(value: unknown, endpoint: string): Record<string, unknown> {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new APIResponseValidationError(`${endpoint}: expected a JSON object`, {
      request: endpoint,
      body: value,
    });
  }
  return value as Record<string, unknown>;
}

/** Read a required string field, or throw naming the endpoint and the field. */
export function requireString(value: unknown, field: string, endpoint: string): string {
  const obj = asObject(value, endpoint);
  const v = obj[field];
  if (typeof v !== "string") {
    throw new APIResponseValidationError(
      `${endpoint}: response field "${field}" is missing or not a string`,
      { request: endpoint, body: value },
    );
  }
  return v;
}

export function parseServerFlags(value: unknown): ServerFlags {
  const o = asObject(value, "POST /api/v1/client/config");
  const b = (k: string, d: boolean) => (typeof o[k] === "boolean" ? (o[k] as boolean) : d);
  const n = (k: string, d: number) => (typeof o[k] === "number" ? (o[k] as number) : d);
  const d = DEFAULT_SERVER_FLAGS;
  return {
    pjwtAuthEnabled: b("pjwt_auth_enabled", d.pjwtAuthEnabled),
    credentialDefaultSource:
      typeof o.credential_default_source === "string"
        ? o.credential_default_source
        : d.credentialDefaultSource,
    sampleDispatchBytesSemaphoreSize: n(
      "sample_dispatch_bytes_semaphore_size",
      d.sampleDispatchBytesSemaphoreSize,
    ),
    inflightResponseBytesSemaphoreSize: n(
      "inflight_response_bytes_semaphore_size",
      d.inflightResponseBytesSemaphoreSize,
    ),
    parallelFwdbwdChunks: b("parallel_fwdbwd_chunks", d.parallelFwdbwdChunks),
    protoCompressFwdbwd: b("proto_compress_fwdbwd", d.protoCompressFwdbwd),
    fwdbwdMaxChunkLen: n("fwdbwd_max_chunk_len", d.fwdbwdMaxChunkLen),
    fwdbwdMaxChunkBytesCount: n("fwdbwd_max_chunk_bytes_count", d.fwdbwdMaxChunkBytesCount),
    fwdbwdDispatchBytesSemaphoreSize: n(
      "fwdbwd_dispatch_bytes_semaphore_size",
      d.fwdbwdDispatchBytesSemaphoreSize,
    ),
    billingExceptionMaxPauseDurationSec: n(
      "billing_exception_max_pause_duration_sec",
      d.billingExceptionMaxPauseDurationSec,
    ),
    sampleNoRetries: b("sample_no_retries", d.sampleNoRetries),
    sampleEnableStuckDetection: b("sample_enable_stuck_detection", d.sampleEnableStuckDetection),
    sampleMaxConcurrentRequests: n("sample_max_concurrent_requests", d.sampleMaxConcurrentRequests),
    usePyqwestTransport: b("use_pyqwest_transport", d.usePyqwestTransport),
    createModelViaLoadWeights: b("create_model_via_load_weights", d.createModelViaLoadWeights),
    protoWriteFwdbwd: typeof o.proto_write_fwdbwd === "boolean" ? o.proto_write_fwdbwd : undefined,
  };
}

// ---------------------------------------------------------------------------------------------
// JSON forms of the shared types. TODO(wire): replace with `src/client/wire/requests.ts` and
// `responses.ts` converters once they land.

export function chunkJson(c: ModelInputChunk): Record<string, unknown> {
  switch (c.type) {
    case "encoded_text":
      return { tokens: Array.from(c.tokens), type: "encoded_text" };
    case "image": {
      const o: Record<string, unknown> = {
        data: Buffer.from(c.data).toString("base64"),
        format: c.format,
      };
      if (c.expectedTokens !== undefined) o.expected_tokens = c.expectedTokens;
      o.type = "image";
      return o;
    }
    case "image_asset_pointer": {
      const o: Record<string, unknown> = { format: c.format, location: c.location };
      if (c.expectedTokens !== undefined) o.expected_tokens = c.expectedTokens;
      o.type = "image_asset_pointer";
      return o;
    }
    case "dmel":
      return { dmel: Buffer.from(c.dmel).toString("base64"), type: "dmel" };
  }
}

export function modelInputJson(m: ModelInput): Record<string, unknown> {
  return { chunks: m.chunks.map(chunkJson) };
}

export function tensorJson(t: TensorData): Record<string, unknown> {
  const o: Record<string, unknown> = {
    data: Array.from(t.data),
    dtype: t.dtype,
    shape: [...t.shape],
  };
  if (t.sparse) {
    o.sparse_crow_indices = Array.from(t.sparse.crowIndices);
    o.sparse_col_indices = Array.from(t.sparse.colIndices);
  }
  return o;
}

export function datumJson(d: Datum): Record<string, unknown> {
  const inputs: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(d.lossFnInputs)) inputs[k] = tensorJson(v);
  return { loss_fn_inputs: inputs, model_input: modelInputJson(d.modelInput) };
}

export function samplingParamsJson(p: SamplingParams): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  if (p.maxTokens !== undefined) o.max_tokens = p.maxTokens;
  if (p.seed !== undefined) o.seed = p.seed;
  if (p.stop !== undefined) o.stop = typeof p.stop === "string" ? p.stop : [...p.stop];
  o.temperature = p.temperature ?? 1;
  o.top_k = p.topK ?? -1;
  o.top_p = p.topP ?? 1;
  return o;
}

export function adamParamsJson(p: AdamParams): Record<string, unknown> {
  const a = { ...ADAM_DEFAULTS, ...p };
  return {
    learning_rate: a.learningRate,
    beta1: a.beta1,
    beta2: a.beta2,
    eps: a.eps,
    weight_decay: a.weightDecay,
    grad_clip_norm: a.gradClipNorm,
  };
}

export function loraConfigJson(c: LoraConfig): Record<string, unknown> {
  const o: Record<string, unknown> = { rank: c.rank };
  if (c.seed !== undefined) o.seed = c.seed;
  o.train_unembed = c.trainUnembed ?? true;
  o.train_mlp = c.trainMlp ?? true;
  o.train_attn = c.trainAttn ?? true;
  return o;
}

function tensorFromJson(v: unknown, where: string): TensorData {
  const o = asObject(v, where);
  const data = o.data;
  if (!Array.isArray(data)) {
    throw new APIResponseValidationError(`${where}: tensor "data" is missing`, { request: where });
  }
  const dtype = o.dtype === "int64" ? "int64" : "float32";
  const storage =
    dtype === "int64" ? Int32Array.from(data as number[]) : Float32Array.from(data as number[]);
  const shape = Array.isArray(o.shape) ? (o.shape as number[]) : undefined;
  if (Array.isArray(o.sparse_crow_indices) && Array.isArray(o.sparse_col_indices) && shape) {
    return TensorData.fromCsr(
      storage,
      o.sparse_crow_indices as number[],
      o.sparse_col_indices as number[],
      shape as [number, number],
    );
  }
  return TensorData.fromTyped(storage, shape);
}

/** JSON ForwardBackwardOutput (servers before protobuf). */
export function forwardBackwardOutputFromJson(v: unknown, where: string): ForwardBackwardOutput {
  const o = asObject(v, where);
  const outs = Array.isArray(o.loss_fn_outputs) ? o.loss_fn_outputs : [];
  return {
    lossFnOutputType:
      typeof o.loss_fn_output_type === "string" ? o.loss_fn_output_type : "ArrayRecord",
    lossFnOutputs: outs.map((rec) => {
      const r: Record<string, TensorData> = {};
      for (const [k, t] of Object.entries(asObject(rec, where))) r[k] = tensorFromJson(t, where);
      return r;
    }),
    metrics: (o.metrics as Record<string, number> | undefined) ?? {},
  };
}

/** JSON SampleResponse (servers before protobuf). */
export function sampleResponseFromJson(v: unknown, where: string): SampleResponse {
  const o = asObject(v, where);
  if (!Array.isArray(o.sequences)) {
    throw new APIResponseValidationError(`${where}: response field "sequences" is missing`, {
      request: where,
      body: v,
    });
  }
  const out: SampleResponse = {
    sequences: o.sequences.map((s) => {
      const so = asObject(s, where);
      const seq: SampleResponse["sequences"][number] = {
        stopReason: (so.stop_reason === "length" ? "length" : "stop") as StopReason,
        tokens: (so.tokens as number[]) ?? [],
      };
      if (Array.isArray(so.logprobs)) seq.logprobs = so.logprobs as number[];
      return seq;
    }),
    promptCacheHitTokens:
      typeof o.prompt_cache_hit_tokens === "number" ? o.prompt_cache_hit_tokens : 0,
  };
  if (Array.isArray(o.prompt_logprobs))
    out.promptLogprobs = o.prompt_logprobs as Array<number | null>;
  if (Array.isArray(o.topk_prompt_logprobs)) {
    out.topkPromptLogprobs = o.topk_prompt_logprobs as Array<Array<[number, number]> | null>;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Chunking, metric merging, paths, compression. TODO(wire): chunking.ts, metrics.ts, paths.ts,
// zstd.ts.

/** Estimated request bytes of a datum: text tokens x 4 + each tensor's raw bytes + 8 per index. */
export function estimateDatumBytes(d: Datum): number {
  let n = 0;
  for (const c of d.modelInput.chunks) {
    if (c.type === "encoded_text") n += c.tokens.length * 4;
    else if (c.type === "image") n += c.data.length;
    else if (c.type === "image_asset_pointer") n += c.location.length;
    else n += c.dmel.length;
  }
  for (const t of Object.values(d.lossFnInputs)) {
    n += t.data.length * (t.dtype === "int64" ? 8 : 4);
    if (t.sparse) n += (t.sparse.crowIndices.length + t.sparse.colIndices.length) * 8;
  }
  return n;
}

/** Split `data` into consecutive chunks of <= maxChunkLen datums and <= maxChunkBytes estimate. */
export function chunkDatums(
  data: readonly Datum[],
  limits: { maxChunkLen: number; maxChunkBytes: number },
): Datum[][] {
  const chunks: Datum[][] = [];
  let cur: Datum[] = [];
  let bytes = 0;
  for (const d of data) {
    const b = estimateDatumBytes(d);
    if (cur.length > 0 && (cur.length >= limits.maxChunkLen || bytes + b > limits.maxChunkBytes)) {
      chunks.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(d);
    bytes += b;
  }
  if (cur.length > 0) chunks.push(cur);
  return chunks;
}

/**
 * Merge per-chunk metrics by their `name:reduction` suffix: mean/slack weighted by datum counts,
 * sum, min, max, unique (first value, others as key_1, key_2...). Keys missing from any chunk and
 * unknown reductions are dropped.
 */
export function mergeChunkMetrics(
  chunks: ReadonlyArray<Readonly<Record<string, number>>>,
  datumCounts: readonly number[],
): Record<string, number> {
  if (chunks.length === 1) return { ...chunks[0]! };
  const out: Record<string, number> = {};
  if (chunks.length === 0) return out;
  const total = datumCounts.reduce((a, b) => a + b, 0);
  for (const key of Object.keys(chunks[0]!)) {
    if (!chunks.every((c) => key in c)) continue;
    const vals = chunks.map((c) => c[key]!);
    const reduction = key.slice(key.lastIndexOf(":") + 1);
    const wmean = () => vals.reduce((a, v, i) => a + v * datumCounts[i]!, 0) / (total || 1);
    switch (reduction) {
      case "sum":
        out[key] = vals.reduce((a, b) => a + b, 0);
        break;
      case "min":
        out[key] = Math.min(...vals);
        break;
      case "max":
        out[key] = Math.max(...vals);
        break;
      case "mean":
        out[key] = wmean();
        break;
      case "slack":
        out[key] = Math.max(...vals) - wmean();
        break;
      case "unique":
        out[key] = vals[0]!;
        for (let i = 1; i < vals.length; i++) out[`${key}_${i}`] = vals[i]!;
        break;
      default:
        break;
    }
  }
  return out;
}

/** A parsed `tinker://<run>/<weights|sampler_weights>/<name>` path. */
export interface TinkerPath {
  trainingRunId: string;
  checkpointType: "training" | "sampler";
  checkpointId: string;
}

export function parseTinkerPath(path: string): TinkerPath {
  const bad = (why: string) =>
    new TinkerValidationError(
      `Invalid tinker path "${path}": ${why}. Expected tinker://<training_run_id>/weights/<name> or tinker://<training_run_id>/sampler_weights/<name>.`,
      "path",
    );
  if (!path.startsWith("tinker://")) throw bad("it must start with tinker://");
  const parts = path.slice("tinker://".length).split("/");
  if (parts.length !== 3 || parts.some((p) => p === ""))
    throw bad("it must have exactly three parts");
  const [run, kind, name] = parts as [string, string, string];
  if (kind !== "weights" && kind !== "sampler_weights") {
    throw bad(`the middle part must be "weights" or "sampler_weights", not "${kind}"`);
  }
  return {
    trainingRunId: run,
    checkpointType: kind === "weights" ? "training" : "sampler",
    checkpointId: `${kind}/${name}`,
  };
}

/** zstd-compress a request body (Node >= 22.15 ships zstd in zlib). */
export function zstdCompress(bytes: Uint8Array): Uint8Array {
  const compress = (zlib as { zstdCompressSync?: (b: Uint8Array) => Buffer }).zstdCompressSync;
  if (!compress) {
    throw new TinkerError(
      'The server asked for zstd-compressed forward_backward bodies, but this Node.js has no zstd. Use Node >= 22.15 or wireFormat: "json".',
    );
  }
  return compress(bytes);
}
