/**
 * The JSON side of the wire: camelCase SDK types <-> the snake_case objects the reference SDK
 * sends, and zod schemas that parse them back.
 *
 * Encoding follows the reference's dump rules: `null`/unset optionals are omitted, non-null
 * defaults are sent (`temperature: 1`, `top_k: -1`, `top_p: 1`, all six Adam fields, the LoRA
 * `train_*` flags), and every chunk carries its `type`. Keys come out in the order the reference
 * SDK writes them. float32 tensor values are written as the exact double of each float32, as the
 * reference does for numpy tensors (`0.10000000149011612` for float32 0.1).
 *
 * `...FromJson` functions validate: request-side types throw `TinkerValidationError` naming the
 * field; response-side types (`SampleResponse`, `ForwardBackwardOutput`) throw
 * `APIResponseValidationError`.
 */

import { z } from "zod";
import { APIResponseValidationError, TinkerValidationError } from "../errors.js";
import type { Datum } from "../types/datum.js";
import { ModelInput, type ModelInputChunk } from "../types/model-input.js";
import { toNumberList } from "../types/number-lists.js";
import type { ForwardBackwardOutput, SampledSequence, SampleResponse } from "../types/outputs.js";
import {
  ADAM_DEFAULTS,
  type AdamParams,
  type LoraConfig,
  type SamplingParams,
} from "../types/params.js";
import { TensorData, type TensorDType } from "../types/tensor-data.js";
import { describeIssues, dflt, int, numberList, opt } from "./zod-util.js";

// ---------------------------------------------------------------------------------------------
// Wire JSON shapes

export interface TensorDataJson {
  data: number[];
  dtype: TensorDType;
  shape?: number[];
  sparse_crow_indices?: number[];
  sparse_col_indices?: number[];
}

export type ChunkJson =
  | { tokens: number[]; type: "encoded_text" }
  | { data: string; format: "png" | "jpeg"; expected_tokens?: number; type: "image" }
  | {
      format: "png" | "jpeg";
      location: string;
      expected_tokens?: number;
      type: "image_asset_pointer";
    }
  | { dmel: string; type: "dmel" };

export interface ModelInputJson {
  chunks: ChunkJson[];
}

export interface DatumJson {
  loss_fn_inputs: Record<string, TensorDataJson>;
  model_input: ModelInputJson;
}

export interface SamplingParamsJson {
  max_tokens?: number;
  seed?: number;
  stop?: string | string[] | number[];
  temperature: number;
  top_k: number;
  top_p: number;
}

export interface AdamParamsJson {
  learning_rate: number;
  beta1: number;
  beta2: number;
  eps: number;
  weight_decay: number;
  grad_clip_norm: number;
}

export interface LoraConfigJson {
  rank: number;
  seed?: number;
  train_unembed: boolean;
  train_mlp: boolean;
  train_attn: boolean;
}

export interface SampledSequenceJson {
  stop_reason: "stop" | "length";
  tokens: number[];
  logprobs?: number[];
}

export interface SampleResponseJson {
  sequences: SampledSequenceJson[];
  type: "sample";
  prompt_logprobs?: Array<number | null>;
  topk_prompt_logprobs?: Array<Array<[number, number]> | null>;
  prompt_cache_hit_tokens: number;
}

export interface ForwardBackwardOutputJson {
  loss_fn_output_type: string;
  loss_fn_outputs: Array<Record<string, TensorDataJson>>;
  metrics: Record<string, number>;
}

// ---------------------------------------------------------------------------------------------
// Encoding

/** `TensorData` -> `{data, dtype, shape, sparse_*}` (sparse tensors keep their CSR form). */
export function tensorDataToJson(t: TensorData): TensorDataJson {
  const out: TensorDataJson = { data: toNumberList(t.data), dtype: t.dtype, shape: [...t.shape] };
  if (t.sparse) {
    out.sparse_crow_indices = toNumberList(t.sparse.crowIndices);
    out.sparse_col_indices = toNumberList(t.sparse.colIndices);
  }
  return out;
}

function base64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}

function chunkToJson(c: ModelInputChunk): ChunkJson {
  switch (c.type) {
    case "encoded_text":
      return { tokens: toNumberList(c.tokens), type: "encoded_text" };
    case "image":
      return c.expectedTokens === undefined
        ? { data: base64(c.data), format: c.format, type: "image" }
        : {
            data: base64(c.data),
            format: c.format,
            expected_tokens: c.expectedTokens,
            type: "image",
          };
    case "image_asset_pointer":
      return c.expectedTokens === undefined
        ? { format: c.format, location: c.location, type: "image_asset_pointer" }
        : {
            format: c.format,
            location: c.location,
            expected_tokens: c.expectedTokens,
            type: "image_asset_pointer",
          };
    case "dmel":
      return { dmel: base64(c.dmel), type: "dmel" };
  }
}

/** `ModelInput` -> `{chunks: [{tokens, type: "encoded_text"}, ...]}`. */
export function modelInputToJson(m: ModelInput): ModelInputJson {
  return { chunks: m.chunks.map(chunkToJson) };
}

/** `Datum` -> `{loss_fn_inputs, model_input}` (the reference's key order). */
export function datumToJson(d: Datum): DatumJson {
  const inputs: Record<string, TensorDataJson> = {};
  for (const [k, t] of Object.entries(d.lossFnInputs)) inputs[k] = tensorDataToJson(t);
  return { loss_fn_inputs: inputs, model_input: modelInputToJson(d.modelInput) };
}

/** Sampling params with the defaults sent: `temperature 1`, `top_k -1`, `top_p 1`. */
export function samplingParamsToJson(p: SamplingParams = {}): SamplingParamsJson {
  const out: Partial<SamplingParamsJson> = {};
  if (p.maxTokens !== undefined && p.maxTokens !== null) out.max_tokens = p.maxTokens;
  if (p.seed !== undefined && p.seed !== null) out.seed = p.seed;
  if (p.stop !== undefined && p.stop !== null) {
    out.stop = typeof p.stop === "string" ? p.stop : ([...p.stop] as string[] | number[]);
  }
  out.temperature = p.temperature ?? 1;
  out.top_k = p.topK ?? -1;
  out.top_p = p.topP ?? 1;
  return out as SamplingParamsJson;
}

/** All six Adam fields, defaults filled in. */
export function adamParamsToJson(p: AdamParams = {}): AdamParamsJson {
  return {
    learning_rate: p.learningRate ?? ADAM_DEFAULTS.learningRate,
    beta1: p.beta1 ?? ADAM_DEFAULTS.beta1,
    beta2: p.beta2 ?? ADAM_DEFAULTS.beta2,
    eps: p.eps ?? ADAM_DEFAULTS.eps,
    weight_decay: p.weightDecay ?? ADAM_DEFAULTS.weightDecay,
    grad_clip_norm: p.gradClipNorm ?? ADAM_DEFAULTS.gradClipNorm,
  };
}

/** LoRA config: `rank`, optional `seed`, the three `train_*` flags (default true). */
export function loraConfigToJson(c: LoraConfig): LoraConfigJson {
  return {
    rank: c.rank,
    ...(c.seed !== undefined && c.seed !== null ? { seed: c.seed } : {}),
    train_unembed: c.trainUnembed ?? true,
    train_mlp: c.trainMlp ?? true,
    train_attn: c.trainAttn ?? true,
  };
}

/**
 * `SampleResponse` -> the JSON form (server side, for JSON-only clients). The result shares the
 * response's arrays (it is serialized at once; copying every token list would be wasted work).
 */
export function sampleResponseToJson(r: SampleResponse): SampleResponseJson {
  const out: SampleResponseJson = {
    sequences: r.sequences.map((s) => {
      const seq: SampledSequenceJson = { stop_reason: s.stopReason, tokens: s.tokens };
      if (s.logprobs) seq.logprobs = s.logprobs;
      return seq;
    }),
    type: "sample",
    prompt_cache_hit_tokens: r.promptCacheHitTokens,
  };
  if (r.promptLogprobs) out.prompt_logprobs = r.promptLogprobs;
  if (r.topkPromptLogprobs) out.topk_prompt_logprobs = r.topkPromptLogprobs;
  return out;
}

/** `ForwardBackwardOutput` -> the JSON form (server side, for JSON-only clients). */
export function forwardBackwardOutputToJson(o: ForwardBackwardOutput): ForwardBackwardOutputJson {
  return {
    loss_fn_output_type: o.lossFnOutputType,
    loss_fn_outputs: o.lossFnOutputs.map((rec) => {
      const out: Record<string, TensorDataJson> = {};
      for (const [k, t] of Object.entries(rec)) out[k] = tensorDataToJson(t);
      return out;
    }),
    metrics: { ...o.metrics },
  };
}

// ---------------------------------------------------------------------------------------------
// Schemas (wire JSON -> SDK types)

function fail(ctx: z.RefinementCtx, e: unknown, path: PropertyKey[] = []): never {
  const message = e instanceof Error ? e.message : String(e);
  ctx.issues.push({ code: "custom", message, input: undefined, path });
  return z.NEVER as never;
}

/** `TensorData` JSON -> `TensorData` (dense, 2-D, or sparse CSR). */
export const tensorDataSchema = z
  .object({
    data: numberList(),
    dtype: z.enum(["int64", "float32"]),
    shape: opt(z.array(int().nonnegative())),
    sparse_crow_indices: opt(numberList({ int: true })),
    sparse_col_indices: opt(numberList({ int: true })),
  })
  .transform((v, ctx): TensorData => {
    try {
      if (v.sparse_crow_indices !== undefined || v.sparse_col_indices !== undefined) {
        if (v.shape?.length !== 2) {
          return fail(ctx, new Error("a sparse tensor needs a 2-D shape [rows, cols]"), ["shape"]);
        }
        const values = TensorData.fromArray(v.data, v.dtype).data;
        return TensorData.fromCsr(values, v.sparse_crow_indices ?? [], v.sparse_col_indices ?? [], [
          v.shape[0]!,
          v.shape[1]!,
        ]);
      }
      const flat = TensorData.fromArray(v.data, v.dtype);
      return v.shape ? TensorData.fromTyped(flat.data, v.shape) : flat;
    } catch (e) {
      const field = e instanceof TinkerValidationError ? e.field : undefined;
      return fail(ctx, e, field ? [field] : []);
    }
  });

const imageFormat = z.enum(["png", "jpeg"]);
const base64Bytes = z.string().transform((s) => new Uint8Array(Buffer.from(s, "base64")));

export const chunkSchema = z.discriminatedUnion("type", [
  z.object({
    type: z.literal("encoded_text"),
    tokens: numberList({ int: true, min: 0, max: 0x7fffffff }),
  }),
  z.object({
    type: z.literal("image"),
    data: base64Bytes,
    format: imageFormat,
    expected_tokens: opt(int().nonnegative()),
  }),
  z.object({
    type: z.literal("image_asset_pointer"),
    format: imageFormat,
    location: z.string(),
    expected_tokens: opt(int().nonnegative()),
  }),
  z.object({ type: z.literal("dmel"), dmel: base64Bytes }),
]);

function chunkFromParsed(c: z.output<typeof chunkSchema>): ModelInputChunk {
  switch (c.type) {
    case "encoded_text":
      return { type: "encoded_text", tokens: Int32Array.from(c.tokens) };
    case "image":
      return c.expected_tokens === undefined
        ? { type: "image", data: c.data, format: c.format }
        : { type: "image", data: c.data, format: c.format, expectedTokens: c.expected_tokens };
    case "image_asset_pointer":
      return c.expected_tokens === undefined
        ? { type: "image_asset_pointer", format: c.format, location: c.location }
        : {
            type: "image_asset_pointer",
            format: c.format,
            location: c.location,
            expectedTokens: c.expected_tokens,
          };
    case "dmel":
      return { type: "dmel", dmel: c.dmel };
  }
}

export const modelInputSchema = z
  .object({ chunks: z.array(chunkSchema) })
  .transform((v) => new ModelInput(v.chunks.map(chunkFromParsed)));

export const datumSchema = z
  .object({
    model_input: modelInputSchema,
    loss_fn_inputs: z.record(z.string(), tensorDataSchema),
  })
  .transform((v): Datum => ({ modelInput: v.model_input, lossFnInputs: v.loss_fn_inputs }));

export const samplingParamsSchema = z
  .object({
    max_tokens: opt(int().nonnegative()),
    seed: opt(int()),
    stop: opt(z.union([z.string(), z.array(z.string()), z.array(int())])),
    temperature: dflt(z.number().nonnegative(), 1),
    top_k: dflt(int(), -1),
    top_p: dflt(z.number().min(0).max(1), 1),
  })
  .transform((v): SamplingParams => {
    const out: SamplingParams = { temperature: v.temperature, topK: v.top_k, topP: v.top_p };
    if (v.max_tokens !== undefined) out.maxTokens = v.max_tokens;
    if (v.seed !== undefined) out.seed = v.seed;
    if (v.stop !== undefined) out.stop = v.stop;
    return out;
  });

export const adamParamsSchema = z
  .object({
    learning_rate: dflt(z.number().nonnegative(), ADAM_DEFAULTS.learningRate),
    beta1: dflt(z.number().min(0).max(1), ADAM_DEFAULTS.beta1),
    beta2: dflt(z.number().min(0).max(1), ADAM_DEFAULTS.beta2),
    eps: dflt(z.number().nonnegative(), ADAM_DEFAULTS.eps),
    weight_decay: dflt(z.number().nonnegative(), ADAM_DEFAULTS.weightDecay),
    grad_clip_norm: dflt(z.number().nonnegative(), ADAM_DEFAULTS.gradClipNorm),
  })
  .transform(
    (v): Required<AdamParams> => ({
      learningRate: v.learning_rate,
      beta1: v.beta1,
      beta2: v.beta2,
      eps: v.eps,
      weightDecay: v.weight_decay,
      gradClipNorm: v.grad_clip_norm,
    }),
  );

export const loraConfigSchema = z
  .object({
    rank: int().positive(),
    seed: opt(int()),
    train_unembed: dflt(z.boolean(), true),
    train_mlp: dflt(z.boolean(), true),
    train_attn: dflt(z.boolean(), true),
  })
  .transform((v): LoraConfig => {
    const out: LoraConfig = {
      rank: v.rank,
      trainUnembed: v.train_unembed,
      trainMlp: v.train_mlp,
      trainAttn: v.train_attn,
    };
    if (v.seed !== undefined) out.seed = v.seed;
    return out;
  });

const stopReason = z.enum(["stop", "length"]);

export const sampleResponseSchema = z
  .object({
    sequences: z.array(
      z.object({
        stop_reason: stopReason,
        tokens: numberList({ int: true }),
        logprobs: opt(numberList()),
      }),
    ),
    prompt_logprobs: opt(z.array(z.number().nullable())),
    topk_prompt_logprobs: opt(z.array(z.array(z.tuple([int(), z.number()])).nullable())),
    prompt_cache_hit_tokens: dflt(int().nonnegative(), 0),
  })
  .transform((v): SampleResponse => {
    const out: SampleResponse = {
      sequences: v.sequences.map((s) => {
        const seq: SampledSequence = { stopReason: s.stop_reason, tokens: s.tokens };
        if (s.logprobs !== undefined) seq.logprobs = s.logprobs;
        return seq;
      }),
      promptCacheHitTokens: v.prompt_cache_hit_tokens,
    };
    if (v.prompt_logprobs !== undefined) out.promptLogprobs = v.prompt_logprobs;
    if (v.topk_prompt_logprobs !== undefined) {
      out.topkPromptLogprobs = v.topk_prompt_logprobs as Array<Array<[number, number]> | null>;
    }
    return out;
  });

export const forwardBackwardOutputSchema = z
  .object({
    loss_fn_output_type: dflt(z.string(), ""),
    loss_fn_outputs: z.array(z.record(z.string(), tensorDataSchema)),
    metrics: dflt(z.record(z.string(), z.number()), {}),
  })
  .transform(
    (v): ForwardBackwardOutput => ({
      lossFnOutputType: v.loss_fn_output_type || "ArrayRecord",
      lossFnOutputs: v.loss_fn_outputs,
      metrics: v.metrics,
    }),
  );

// ---------------------------------------------------------------------------------------------
// Parsing entry points

/** Parse request-side JSON; errors are `TinkerValidationError` naming the field. */
export function parseRequestJson<T extends z.ZodType>(
  schema: T,
  json: unknown,
  what: string,
  fieldPrefix = "",
): z.output<T> {
  const r = schema.safeParse(json);
  if (r.success) return r.data;
  const { field, message } = describeIssues(r.error);
  const full = fieldPrefix && field ? `${fieldPrefix}.${field}` : fieldPrefix || field;
  throw new TinkerValidationError(
    `invalid ${what}: ${fieldPrefix ? `${fieldPrefix}.` : ""}${message}`,
    full,
  );
}

function parseResponseJson<T extends z.ZodType>(
  schema: T,
  json: unknown,
  what: string,
  request: string | undefined,
): z.output<T> {
  const r = schema.safeParse(json);
  if (r.success) return r.data;
  const { message } = describeIssues(r.error);
  const where = request ? `${request}: ` : "";
  throw new APIResponseValidationError(`${where}invalid ${what}: ${message}`, {
    ...(request ? { request } : {}),
    body: json,
  });
}

/** Parse a `TensorData` JSON object. */
export function tensorDataFromJson(json: unknown): TensorData {
  return parseRequestJson(tensorDataSchema, json, "TensorData");
}

/** Parse a `ModelInput` JSON object. */
export function modelInputFromJson(json: unknown): ModelInput {
  return parseRequestJson(modelInputSchema, json, "ModelInput");
}

/** Parse a `Datum` JSON object. */
export function datumFromJson(json: unknown): Datum {
  return parseRequestJson(datumSchema, json, "Datum");
}

/** Parse sampling params, filling the reference defaults. */
export function samplingParamsFromJson(json: unknown): SamplingParams {
  return parseRequestJson(samplingParamsSchema, json, "SamplingParams");
}

/** Parse Adam params, filling the reference defaults. */
export function adamParamsFromJson(json: unknown): Required<AdamParams> {
  return parseRequestJson(adamParamsSchema, json, "AdamParams");
}

/** Parse a LoRA config, filling the reference defaults. */
export function loraConfigFromJson(json: unknown): LoraConfig {
  return parseRequestJson(loraConfigSchema, json, "LoraConfig");
}

/** Parse a JSON `SampleResponse` (older servers); errors are `APIResponseValidationError`. */
export function sampleResponseFromJson(json: unknown, request?: string): SampleResponse {
  return parseResponseJson(sampleResponseSchema, json, "SampleResponse", request);
}

/** Parse a JSON `ForwardBackwardOutput` (older servers); errors are `APIResponseValidationError`. */
export function forwardBackwardOutputFromJson(
  json: unknown,
  request?: string,
): ForwardBackwardOutput {
  return parseResponseJson(forwardBackwardOutputSchema, json, "ForwardBackwardOutput", request);
}
