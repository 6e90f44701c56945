/**
 * Request bodies, one builder per endpoint, returning the plain JSON object the reference SDK
 * sends (same keys, same order, defaults filled, nulls omitted; the transport serialises it), and
 * the zod schemas the server uses to parse them back into camelCase values (`requestSchemas`).
 */

import { z } from "zod";
import { TinkerValidationError } from "../errors.js";
import type { Datum } from "../types/datum.js";
import type { ModelInput } from "../types/model-input.js";
import type { AdamParams, LoraConfig, LossFnConfig, SamplingParams } from "../types/params.js";
import {
  type AdamParamsJson,
  adamParamsSchema,
  adamParamsToJson,
  type DatumJson,
  datumSchema,
  datumToJson,
  type LoraConfigJson,
  loraConfigSchema,
  loraConfigToJson,
  type ModelInputJson,
  modelInputSchema,
  modelInputToJson,
  parseRequestJson,
  type SamplingParamsJson,
  samplingParamsSchema,
  samplingParamsToJson,
} from "./json.js";
import { dflt, int, opt } from "./zod-util.js";

/** Free-form metadata attached to sessions and models. */
export type UserMetadata = Record<string, unknown>;

function requireInt(value: number, field: string, min: number): void {
  if (!Number.isInteger(value) || value < min) {
    throw new TinkerValidationError(`${field} must be an integer >= ${min}, got ${value}`, field);
  }
}

function requireNonEmpty(value: string, field: string): void {
  if (typeof value !== "string" || value.length === 0) {
    throw new TinkerValidationError(`${field} must be a non-empty string`, field);
  }
}

function requireTinkerPath(value: string, field: string): void {
  if (!value.startsWith("tinker://")) {
    throw new TinkerValidationError(
      `${field} must be a tinker:// path such as tinker://<run-id>/sampler_weights/<name>, got "${value}"`,
      field,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Bootstrap and session

/** `POST /api/v1/client/config` and `/api/v1/client/dynamic_config`. */
export function clientConfigBody(sdkVersion: string): { sdk_version: string } {
  return { sdk_version: sdkVersion };
}

/** `POST /api/v1/auth/token`: an empty object. */
export function authTokenBody(): Record<string, never> {
  return {};
}

export interface CreateSessionInput {
  tags: readonly string[];
  userMetadata?: UserMetadata | undefined;
  sdkVersion: string;
  projectId?: string | undefined;
}

export interface CreateSessionBody {
  tags: string[];
  user_metadata: UserMetadata;
  sdk_version: string;
  project_id?: string;
  type: "create_session";
}

/** `POST /api/v1/create_session`. Tags are de-duplicated; `user_metadata` is always sent. */
export function createSessionBody(input: CreateSessionInput): CreateSessionBody {
  const body: CreateSessionBody = {
    tags: [...new Set(input.tags)],
    user_metadata: { ...(input.userMetadata ?? {}) },
    sdk_version: input.sdkVersion,
    type: "create_session",
  };
  if (input.projectId === undefined || input.projectId === null) return body;
  return {
    tags: body.tags,
    user_metadata: body.user_metadata,
    sdk_version: body.sdk_version,
    project_id: input.projectId,
    type: "create_session",
  };
}

/** `POST /api/v1/session_heartbeat`. */
export function sessionHeartbeatBody(sessionId: string): {
  session_id: string;
  type: "session_heartbeat";
} {
  return { session_id: sessionId, type: "session_heartbeat" };
}

// ---------------------------------------------------------------------------------------------
// Models

export interface CreateModelInput {
  sessionId: string;
  modelSeqId: number;
  baseModel: string;
  loraConfig: LoraConfig;
  userMetadata?: UserMetadata | undefined;
}

export interface CreateModelBody {
  session_id: string;
  model_seq_id: number;
  base_model: string;
  user_metadata?: UserMetadata;
  lora_config: LoraConfigJson;
  type: "create_model";
}

function checkLora(c: LoraConfig): void {
  requireInt(c.rank, "loraConfig.rank", 1);
  if (c.trainUnembed === false && c.trainMlp === false && c.trainAttn === false) {
    throw new TinkerValidationError(
      "at least one of trainUnembed, trainMlp, trainAttn must be true",
      "loraConfig",
    );
  }
}

/** `POST /api/v1/create_model` (a future). */
export function createModelBody(input: CreateModelInput): CreateModelBody {
  requireInt(input.modelSeqId, "modelSeqId", 0);
  requireNonEmpty(input.baseModel, "baseModel");
  checkLora(input.loraConfig);
  return {
    session_id: input.sessionId,
    model_seq_id: input.modelSeqId,
    base_model: input.baseModel,
    ...(input.userMetadata ? { user_metadata: { ...input.userMetadata } } : {}),
    lora_config: loraConfigToJson(input.loraConfig),
    type: "create_model",
  };
}

export interface CreateSamplingSessionInput {
  sessionId: string;
  samplingSessionSeqId: number;
  baseModel?: string | undefined;
  modelPath?: string | undefined;
}

export interface CreateSamplingSessionBody {
  session_id: string;
  sampling_session_seq_id: number;
  base_model?: string;
  model_path?: string;
  type: "create_sampling_session";
}

/** `POST /api/v1/create_sampling_session`: needs `modelPath` (a tinker:// path) or `baseModel`. */
export function createSamplingSessionBody(
  input: CreateSamplingSessionInput,
): CreateSamplingSessionBody {
  requireInt(input.samplingSessionSeqId, "samplingSessionSeqId", 0);
  if (!input.modelPath && !input.baseModel) {
    throw new TinkerValidationError(
      "a sampling session needs modelPath (tinker://...) or baseModel",
      "modelPath",
    );
  }
  if (input.modelPath) requireTinkerPath(input.modelPath, "modelPath");
  return {
    session_id: input.sessionId,
    sampling_session_seq_id: input.samplingSessionSeqId,
    ...(input.baseModel ? { base_model: input.baseModel } : {}),
    ...(input.modelPath ? { model_path: input.modelPath } : {}),
    type: "create_sampling_session",
  };
}

/** `POST /api/v1/get_info`. */
export function getInfoBody(modelId: string): { model_id: string; type: "get_info" } {
  return { model_id: modelId, type: "get_info" };
}

/** `POST /api/v1/unload_model` (a future). */
export function unloadModelBody(modelId: string): { model_id: string; type: "unload_model" } {
  return { model_id: modelId, type: "unload_model" };
}

// ---------------------------------------------------------------------------------------------
// Training plane

export interface OptimStepInput {
  modelId: string;
  seqId: number;
  adamParams?: AdamParams | undefined;
}

export interface OptimStepBody {
  adam_params: AdamParamsJson;
  model_id: string;
  seq_id: number;
  type: "optim_step";
}

/** `POST /api/v1/optim_step` (a future). All six Adam fields are sent. */
export function optimStepBody(input: OptimStepInput): OptimStepBody {
  requireInt(input.seqId, "seqId", 0);
  return {
    adam_params: adamParamsToJson(input.adamParams),
    model_id: input.modelId,
    seq_id: input.seqId,
    type: "optim_step",
  };
}

export interface SaveWeightsInput {
  modelId: string;
  seqId: number;
  /** Checkpoint name (not a path): becomes `tinker://<model>/weights/<name>`. */
  path: string;
  ttlSeconds?: number | undefined;
  overwrite?: boolean | undefined;
}

export interface SaveWeightsBody {
  model_id: string;
  path: string;
  seq_id: number;
  ttl_seconds?: number;
  overwrite: boolean;
  type: "save_weights";
}

function checkTtl(ttl: number | undefined | null, field: string): void {
  if (ttl === undefined || ttl === null) return;
  if (!Number.isInteger(ttl) || ttl <= 0) {
    throw new TinkerValidationError(`${field} must be a positive integer number of seconds`, field);
  }
}

/** The checked `ttl_seconds` field of a save body; absent (no expiry) for undefined or null. */
function ttlField(ttl: number | undefined | null): { ttl_seconds?: number } {
  checkTtl(ttl, "ttlSeconds");
  return ttl === undefined || ttl === null ? {} : { ttl_seconds: ttl };
}

/** `POST /api/v1/save_weights` (a future); `overwrite` defaults to false and is always sent. */
export function saveWeightsBody(input: SaveWeightsInput): SaveWeightsBody {
  requireInt(input.seqId, "seqId", 0);
  requireNonEmpty(input.path, "path");
  return {
    model_id: input.modelId,
    path: input.path,
    seq_id: input.seqId,
    ...ttlField(input.ttlSeconds),
    overwrite: input.overwrite ?? false,
    type: "save_weights",
  };
}

/** Load into an existing model (`model_id` + `seq_id`). */
export interface LoadWeightsInput {
  modelId: string;
  seqId: number;
  path: string;
  optimizer: boolean;
  weightsAccessToken?: string | undefined;
}

/** Create the model by loading a checkpoint (flag `create_model_via_load_weights`). */
export interface LoadWeightsCreateInput {
  sessionId: string;
  modelSeqId: number;
  baseModel?: string | undefined;
  userMetadata?: UserMetadata | undefined;
  path: string;
  optimizer: boolean;
  weightsAccessToken?: string | undefined;
}

export interface LoadWeightsBody {
  model_id?: string;
  seq_id?: number;
  session_id?: string;
  model_seq_id?: number;
  base_model?: string;
  user_metadata?: UserMetadata;
  path: string;
  optimizer: boolean;
  weights_access_token?: string;
  type: "load_weights";
}

/**
 * `POST /api/v1/load_weights` (a future). With `sessionId` + `modelSeqId` this is the
 * create-via-load form (no `model_id`/`seq_id`; the model becomes `<session>:train:<modelSeqId>`).
 */
export function loadWeightsBody(input: LoadWeightsInput | LoadWeightsCreateInput): LoadWeightsBody {
  requireTinkerPath(input.path, "path");
  const token = input.weightsAccessToken ? { weights_access_token: input.weightsAccessToken } : {};
  if ("sessionId" in input) {
    requireInt(input.modelSeqId, "modelSeqId", 0);
    return {
      session_id: input.sessionId,
      model_seq_id: input.modelSeqId,
      ...(input.baseModel ? { base_model: input.baseModel } : {}),
      ...(input.userMetadata ? { user_metadata: { ...input.userMetadata } } : {}),
      path: input.path,
      optimizer: input.optimizer,
      ...token,
      type: "load_weights",
    };
  }
  requireInt(input.seqId, "seqId", 0);
  return {
    model_id: input.modelId,
    seq_id: input.seqId,
    path: input.path,
    optimizer: input.optimizer,
    ...token,
    type: "load_weights",
  };
}

/** Named sampler checkpoint: `tinker://<model>/sampler_weights/<path>`. */
export interface SaveWeightsForSamplerInput {
  modelId: string;
  seqId: number;
  path: string;
  ttlSeconds?: number | undefined;
}

/** Ephemeral sampler weights bound to a new sampling session (no name, never listed). */
export interface SaveWeightsForSamplerEphemeralInput {
  modelId: string;
  seqId: number;
  samplingSessionSeqId: number;
}

export interface SaveWeightsForSamplerBody {
  model_id: string;
  path?: string;
  seq_id: number;
  sampling_session_seq_id?: number;
  ttl_seconds?: number;
  type: "save_weights_for_sampler";
}

/** `POST /api/v1/save_weights_for_sampler` (a future), named or ephemeral. */
export function saveWeightsForSamplerBody(
  input: SaveWeightsForSamplerInput | SaveWeightsForSamplerEphemeralInput,
): SaveWeightsForSamplerBody {
  requireInt(input.seqId, "seqId", 0);
  if ("samplingSessionSeqId" in input) {
    requireInt(input.samplingSessionSeqId, "samplingSessionSeqId", 0);
    return {
      model_id: input.modelId,
      seq_id: input.seqId,
      sampling_session_seq_id: input.samplingSessionSeqId,
      type: "save_weights_for_sampler",
    };
  }
  requireNonEmpty(input.path, "path");
  return {
    model_id: input.modelId,
    path: input.path,
    seq_id: input.seqId,
    ...ttlField(input.ttlSeconds),
    type: "save_weights_for_sampler",
  };
}

export interface ForwardBackwardJsonInput {
  modelId: string;
  seqId: number;
  data: readonly Datum[];
  lossFn: string;
  lossFnConfig?: LossFnConfig | undefined;
}

export interface ForwardInputJson {
  data: DatumJson[];
  loss_fn: string;
  loss_fn_config?: Record<string, number>;
}

function forwardInput(input: ForwardBackwardJsonInput): ForwardInputJson {
  requireInt(input.seqId, "seqId", 0);
  const out: ForwardInputJson = { data: input.data.map(datumToJson), loss_fn: input.lossFn };
  if (input.lossFnConfig) out.loss_fn_config = { ...input.lossFnConfig };
  return out;
}

/** `POST /api/v1/forward_backward`, the all-JSON form of SDKs <= 0.24 (no `type`). */
export function forwardBackwardJsonBody(input: ForwardBackwardJsonInput): {
  forward_backward_input: ForwardInputJson;
  model_id: string;
  seq_id: number;
} {
  return {
    forward_backward_input: forwardInput(input),
    model_id: input.modelId,
    seq_id: input.seqId,
  };
}

/** `POST /api/v1/forward`, the all-JSON form of SDKs <= 0.24. */
export function forwardJsonBody(input: ForwardBackwardJsonInput): {
  forward_input: ForwardInputJson;
  model_id: string;
  seq_id: number;
} {
  return { forward_input: forwardInput(input), model_id: input.modelId, seq_id: input.seqId };
}

// ---------------------------------------------------------------------------------------------
// Sampling

export interface SampleInput {
  samplingSessionId?: string | undefined;
  seqId?: number | undefined;
  baseModel?: string | undefined;
  modelPath?: string | undefined;
  prompt: ModelInput;
  numSamples?: number | undefined;
  samplingParams?: SamplingParams | undefined;
  promptLogprobs?: boolean | undefined;
  topkPromptLogprobs?: number | undefined;
}

export interface SampleBody {
  num_samples: number;
  prompt: ModelInputJson;
  sampling_params: SamplingParamsJson;
  base_model?: string;
  model_path?: string;
  sampling_session_id?: string;
  seq_id?: number;
  prompt_logprobs: boolean;
  topk_prompt_logprobs: number;
  type: "sample";
}

/** `POST /api/v1/asample` (a future). `prompt_logprobs` and `topk_prompt_logprobs` are always sent. */
export function sampleBody(input: SampleInput): SampleBody {
  const numSamples = input.numSamples ?? 1;
  requireInt(numSamples, "numSamples", 1);
  const topk = input.topkPromptLogprobs ?? 0;
  requireInt(topk, "topkPromptLogprobs", 0);
  if (input.seqId !== undefined) requireInt(input.seqId, "seqId", 0);
  if (!input.samplingSessionId && !input.baseModel && !input.modelPath) {
    throw new TinkerValidationError(
      "a sample request needs samplingSessionId (or baseModel / modelPath)",
      "samplingSessionId",
    );
  }
  const p = input.samplingParams ?? {};
  if (p.maxTokens !== undefined) requireInt(p.maxTokens, "samplingParams.maxTokens", 0);
  if (p.temperature !== undefined && !(p.temperature >= 0)) {
    throw new TinkerValidationError("temperature must be >= 0", "samplingParams.temperature");
  }
  if (p.topP !== undefined && !(p.topP >= 0 && p.topP <= 1)) {
    throw new TinkerValidationError("topP must be in [0, 1]", "samplingParams.topP");
  }
  return {
    num_samples: numSamples,
    prompt: modelInputToJson(input.prompt),
    sampling_params: samplingParamsToJson(p),
    ...(input.baseModel ? { base_model: input.baseModel } : {}),
    ...(input.modelPath ? { model_path: input.modelPath } : {}),
    ...(input.samplingSessionId ? { sampling_session_id: input.samplingSessionId } : {}),
    ...(input.seqId !== undefined ? { seq_id: input.seqId } : {}),
    prompt_logprobs: input.promptLogprobs ?? false,
    topk_prompt_logprobs: topk,
    type: "sample",
  };
}

/** `compute_logprobs`: one sample of one token with prompt logprobs on. */
export function computeLogprobsBody(input: {
  samplingSessionId: string;
  seqId: number;
  prompt: ModelInput;
}): SampleBody {
  return sampleBody({
    ...input,
    numSamples: 1,
    samplingParams: { maxTokens: 1 },
    promptLogprobs: true,
  });
}

// ---------------------------------------------------------------------------------------------
// Futures, telemetry, REST bodies

/** `POST /api/v1/retrieve_future` (`allowMetadataOnly` is true on the first poll). */
export function retrieveFutureBody(
  requestId: string,
  allowMetadataOnly: boolean,
): { request_id: string; allow_metadata_only: boolean } {
  return { request_id: requestId, allow_metadata_only: allowMetadataOnly };
}

export type TelemetrySeverity = "DEBUG" | "INFO" | "WARNING" | "ERROR" | "CRITICAL";

interface TelemetryEventBase {
  eventId: string;
  eventSessionIndex: number;
  severity: TelemetrySeverity;
  /** ISO-8601. */
  timestamp: string;
}

export type TelemetryEvent =
  | (TelemetryEventBase & { event: "SESSION_START" })
  | (TelemetryEventBase & { event: "SESSION_END"; duration: string })
  | (TelemetryEventBase & {
      event: "UNHANDLED_EXCEPTION";
      errorType: string;
      errorMessage: string;
      traceback?: string | undefined;
    })
  | (TelemetryEventBase & {
      event: "GENERIC_EVENT";
      eventName: string;
      eventData: Record<string, unknown>;
    });

export interface TelemetryInput {
  events: readonly TelemetryEvent[];
  platform: string;
  sdkVersion: string;
  sessionId: string;
  processUuid: string;
}

function telemetryEventToJson(e: TelemetryEvent): Record<string, unknown> {
  const out: Record<string, unknown> = {
    event: e.event,
    event_id: e.eventId,
    event_session_index: e.eventSessionIndex,
    severity: e.severity,
    timestamp: e.timestamp,
  };
  switch (e.event) {
    case "SESSION_END":
      out["duration"] = e.duration;
      break;
    case "UNHANDLED_EXCEPTION":
      out["error_type"] = e.errorType;
      out["error_message"] = e.errorMessage;
      if (e.traceback !== undefined) out["traceback"] = e.traceback;
      break;
    case "GENERIC_EVENT":
      out["event_name"] = e.eventName;
      out["event_data"] = e.eventData;
      break;
    default:
      break;
  }
  return out;
}

/** `POST /api/v1/telemetry` (batches of at most 100 events in the reference). */
export function telemetryBody(input: TelemetryInput): {
  events: Array<Record<string, unknown>>;
  platform: string;
  sdk_version: string;
  session_id: string;
  process_uuid: string;
} {
  return {
    events: input.events.map(telemetryEventToJson),
    platform: input.platform,
    sdk_version: input.sdkVersion,
    session_id: input.sessionId,
    process_uuid: input.processUuid,
  };
}

/** `POST /api/v1/weights_info`. */
export function weightsInfoBody(tinkerPath: string): { tinker_path: string } {
  requireTinkerPath(tinkerPath, "tinkerPath");
  return { tinker_path: tinkerPath };
}

/** `PUT .../checkpoints/{id}/ttl`: `null` removes the expiry (and is sent as `null`). */
export function setTtlBody(ttlSeconds: number | null): { ttl_seconds: number | null } {
  checkTtl(ttlSeconds, "ttlSeconds");
  return { ttl_seconds: ttlSeconds };
}

/** `PUT /api/v1/sessions/{id}/project`. */
export function assignSessionProjectBody(projectId: string): { project_id: string } {
  requireNonEmpty(projectId, "projectId");
  return { project_id: projectId };
}

// ---------------------------------------------------------------------------------------------
// Server side: schemas that parse request bodies into camelCase values

const str = () => z.string();
const metadata = z.record(z.string(), z.unknown());

const lossFnConfig = opt(z.record(z.string(), z.number()));

const forwardInputSchema = z.object({
  data: z.array(datumSchema),
  loss_fn: z.string().min(1),
  loss_fn_config: lossFnConfig,
});

function forwardParsed(v: {
  model_id: string;
  seq_id: number;
  input: z.output<typeof forwardInputSchema>;
}) {
  return {
    modelId: v.model_id,
    seqId: v.seq_id,
    data: v.input.data,
    lossFn: v.input.loss_fn,
    lossFnConfig: v.input.loss_fn_config ?? {},
  };
}

const telemetryEventSchema = z.looseObject({
  event: z.string(),
  event_id: z.string(),
  event_session_index: int(),
  severity: z.string(),
  timestamp: z.string(),
});

/**
 * zod schemas of every JSON request body, for the server. Unknown fields are ignored; the parsed
 * values are camelCase. Use with {@link parseRequest} for errors that name the field.
 */
export const requestSchemas = {
  clientConfig: z
    .object({ sdk_version: opt(str()) })
    .transform((v) => ({ sdkVersion: v.sdk_version })),
  createSession: z
    .object({
      tags: dflt(z.array(str()), []),
      user_metadata: dflt(metadata, {}),
      sdk_version: opt(str()),
      project_id: opt(str()),
    })
    .transform((v) => ({
      tags: v.tags,
      userMetadata: v.user_metadata,
      sdkVersion: v.sdk_version,
      projectId: v.project_id,
    })),
  sessionHeartbeat: z.object({ session_id: str() }).transform((v) => ({ sessionId: v.session_id })),
  createModel: z
    .object({
      session_id: str(),
      model_seq_id: int().nonnegative(),
      base_model: str().min(1),
      user_metadata: opt(metadata),
      lora_config: loraConfigSchema,
    })
    .transform((v) => ({
      sessionId: v.session_id,
      modelSeqId: v.model_seq_id,
      baseModel: v.base_model,
      userMetadata: v.user_metadata,
      loraConfig: v.lora_config,
    })),
  createSamplingSession: z
    .object({
      session_id: str(),
      sampling_session_seq_id: int().nonnegative(),
      base_model: opt(str()),
      model_path: opt(str().startsWith("tinker://")),
    })
    .refine((v) => v.base_model !== undefined || v.model_path !== undefined, {
      message: "one of model_path or base_model is required",
      path: ["model_path"],
    })
    .transform((v) => ({
      sessionId: v.session_id,
      samplingSessionSeqId: v.sampling_session_seq_id,
      baseModel: v.base_model,
      modelPath: v.model_path,
    })),
  getInfo: z.object({ model_id: str() }).transform((v) => ({ modelId: v.model_id })),
  unloadModel: z.object({ model_id: str() }).transform((v) => ({ modelId: v.model_id })),
  optimStep: z
    .object({ adam_params: adamParamsSchema, model_id: str(), seq_id: int().nonnegative() })
    .transform((v) => ({ modelId: v.model_id, seqId: v.seq_id, adamParams: v.adam_params })),
  saveWeights: z
    .object({
      model_id: str(),
      path: opt(str()),
      seq_id: int().nonnegative(),
      ttl_seconds: opt(int().positive()),
      overwrite: dflt(z.boolean(), false),
    })
    .transform((v) => ({
      modelId: v.model_id,
      path: v.path,
      seqId: v.seq_id,
      ttlSeconds: v.ttl_seconds,
      overwrite: v.overwrite,
    })),
  loadWeights: z
    .object({
      model_id: opt(str()),
      seq_id: opt(int().nonnegative()),
      session_id: opt(str()),
      model_seq_id: opt(int().nonnegative()),
      base_model: opt(str()),
      user_metadata: opt(metadata),
      path: str().startsWith("tinker://"),
      optimizer: dflt(z.boolean(), false),
      weights_access_token: opt(str()),
    })
    .refine(
      (v) =>
        (v.model_id !== undefined && v.seq_id !== undefined) ||
        (v.session_id !== undefined && v.model_seq_id !== undefined),
      {
        message: "needs model_id + seq_id, or session_id + model_seq_id (create via load)",
        path: ["model_id"],
      },
    )
    .transform((v) =>
      v.model_id !== undefined && v.seq_id !== undefined
        ? {
            kind: "load" as const,
            modelId: v.model_id,
            seqId: v.seq_id,
            path: v.path,
            optimizer: v.optimizer,
            weightsAccessToken: v.weights_access_token,
          }
        : {
            kind: "create" as const,
            sessionId: v.session_id!,
            modelSeqId: v.model_seq_id!,
            baseModel: v.base_model,
            userMetadata: v.user_metadata,
            path: v.path,
            optimizer: v.optimizer,
            weightsAccessToken: v.weights_access_token,
          },
    ),
  saveWeightsForSampler: z
    .object({
      model_id: str(),
      path: opt(str()),
      seq_id: int().nonnegative(),
      sampling_session_seq_id: opt(int().nonnegative()),
      ttl_seconds: opt(int().positive()),
    })
    .transform((v) => ({
      modelId: v.model_id,
      path: v.path,
      seqId: v.seq_id,
      samplingSessionSeqId: v.sampling_session_seq_id,
      ttlSeconds: v.ttl_seconds,
    })),
  forwardBackwardJson: z
    .object({ forward_backward_input: forwardInputSchema, model_id: str(), seq_id: int() })
    .transform((v) => forwardParsed({ ...v, input: v.forward_backward_input })),
  forwardJson: z
    .object({ forward_input: forwardInputSchema, model_id: str(), seq_id: int() })
    .transform((v) => forwardParsed({ ...v, input: v.forward_input })),
  sample: z
    .object({
      num_samples: dflt(int().positive(), 1),
      prompt: modelInputSchema,
      sampling_params: samplingParamsSchema,
      base_model: opt(str()),
      model_path: opt(str()),
      sampling_session_id: opt(str()),
      seq_id: opt(int()),
      prompt_logprobs: dflt(z.boolean(), false),
      topk_prompt_logprobs: dflt(int().nonnegative(), 0),
    })
    .transform((v) => ({
      numSamples: v.num_samples,
      prompt: v.prompt,
      samplingParams: v.sampling_params,
      baseModel: v.base_model,
      modelPath: v.model_path,
      samplingSessionId: v.sampling_session_id,
      seqId: v.seq_id,
      promptLogprobs: v.prompt_logprobs,
      topkPromptLogprobs: v.topk_prompt_logprobs,
    })),
  retrieveFuture: z
    .object({ request_id: str(), allow_metadata_only: dflt(z.boolean(), false) })
    .transform((v) => ({ requestId: v.request_id, allowMetadataOnly: v.allow_metadata_only })),
  telemetry: z
    .object({
      events: z.array(telemetryEventSchema),
      platform: opt(str()),
      sdk_version: opt(str()),
      session_id: opt(str()),
      process_uuid: opt(str()),
    })
    .transform((v) => ({
      events: v.events,
      platform: v.platform,
      sdkVersion: v.sdk_version,
      sessionId: v.session_id,
      processUuid: v.process_uuid,
    })),
  weightsInfo: z
    .object({ tinker_path: str().startsWith("tinker://") })
    .transform((v) => ({ tinkerPath: v.tinker_path })),
  setTtl: z
    .object({ ttl_seconds: int().positive().nullable() })
    .transform((v) => ({ ttlSeconds: v.ttl_seconds })),
  assignSessionProject: z
    .object({ project_id: str().min(1) })
    .transform((v) => ({ projectId: v.project_id })),
} as const;

export type RequestSchemas = typeof requestSchemas;
/** The parsed (camelCase) value of each request body. */
export type ParsedRequest<K extends keyof RequestSchemas> = z.output<RequestSchemas[K]>;

/**
 * Parse a JSON request body with one of {@link requestSchemas}.
 * @throws TinkerValidationError whose message names the endpoint and the field path.
 */
export function parseRequest<K extends keyof RequestSchemas>(
  kind: K,
  body: unknown,
  endpoint: string,
): ParsedRequest<K> {
  return parseRequestJson(requestSchemas[kind], body, `${endpoint} body`) as ParsedRequest<K>;
}
