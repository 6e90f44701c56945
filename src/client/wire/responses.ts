/**
 * Response bodies: zod schemas for every JSON response of the reference protocol (unknown fields
 * ignored, `null` read as absent, defaults filled), the camelCase types they produce, a
 * `parseResponse` that fails with an `APIResponseValidationError` naming the endpoint and field,
 * the `retrieve_future` classifier, and `toWire...` builders the server uses to answer.
 */

import { z } from "zod";
import { APIResponseValidationError } from "../errors.js";
import type { ForwardBackwardOutput, OptimStepResponse, SampleResponse } from "../types/outputs.js";
import {
  type ForwardBackwardOutputJson,
  forwardBackwardOutputSchema,
  forwardBackwardOutputToJson,
  type SampleResponseJson,
  sampleResponseSchema,
  sampleResponseToJson,
} from "./json.js";
import { describeIssues, dflt, int, opt } from "./zod-util.js";

const str = () => z.string();
const date = () =>
  z.string().transform((s, ctx) => {
    const d = new Date(s);
    if (Number.isNaN(d.getTime())) {
      ctx.issues.push({ code: "custom", message: `"${s}" is not an ISO-8601 date`, input: s });
      return z.NEVER;
    }
    return d;
  });

// ---------------------------------------------------------------------------------------------
// Futures

export const untypedFutureSchema = z
  .object({ request_id: str(), model_id: opt(str()) })
  .transform((v) => ({ requestId: v.request_id, modelId: v.model_id }));
/** `{request_id, model_id?}`: what every future-kind POST returns. */
export type UntypedAPIFuture = z.output<typeof untypedFutureSchema>;

export const QUEUE_STATES = ["active", "paused_capacity", "paused_rate_limit"] as const;
/** Queue state reported by `try_again`; unknown values from newer servers pass through. */
export type QueueState = (typeof QUEUE_STATES)[number] | (string & {});

export const tryAgainSchema = z
  .object({
    type: z.literal("try_again"),
    request_id: opt(str()),
    queue_state: dflt(str(), "active"),
    queue_state_reason: opt(str()),
  })
  .transform((v) => ({
    type: "try_again" as const,
    requestId: v.request_id,
    queueState: v.queue_state as QueueState,
    queueStateReason: v.queue_state_reason,
  }));
export type TryAgainResponse = z.output<typeof tryAgainSchema>;

export const completeMetadataSchema = z
  .object({ status: z.literal("complete_metadata"), response_payload_size: int().nonnegative() })
  .transform((v) => ({
    status: "complete_metadata" as const,
    responsePayloadSize: v.response_payload_size,
  }));
export type CompleteMetadataResponse = z.output<typeof completeMetadataSchema>;

export const requestFailedSchema = z
  .object({
    error: z.union([str(), z.unknown().transform((e) => JSON.stringify(e))]),
    category: dflt(z.enum(["unknown", "server", "user"]).catch("unknown"), "unknown"),
  })
  .transform((v) => ({ error: v.error as string, category: v.category }));
export type RequestFailedResponse = z.output<typeof requestFailedSchema>;

/** What one `retrieve_future` JSON answer means (reference §4, in the SDK's order of checks). */
export type FutureResponse =
  | { kind: "try_again"; value: TryAgainResponse }
  | { kind: "complete_metadata"; value: CompleteMetadataResponse }
  | { kind: "failed"; value: RequestFailedResponse }
  | { kind: "result"; value: unknown };

/**
 * Classify a JSON `retrieve_future` body: `type: "try_again"`, then
 * `status: "complete_metadata"`, then any body with an `error` key; anything else is the result.
 */
export function classifyFutureResponse(
  body: unknown,
  endpoint = "POST /api/v1/retrieve_future",
): FutureResponse {
  if (body !== null && typeof body === "object" && !Array.isArray(body)) {
    const o = body as Record<string, unknown>;
    if (o["type"] === "try_again") {
      return { kind: "try_again", value: parseResponse(tryAgainSchema, body, endpoint) };
    }
    if (o["status"] === "complete_metadata") {
      return {
        kind: "complete_metadata",
        value: parseResponse(completeMetadataSchema, body, endpoint),
      };
    }
    if ("error" in o)
      return { kind: "failed", value: parseResponse(requestFailedSchema, body, endpoint) };
  }
  return { kind: "result", value: body };
}

// ---------------------------------------------------------------------------------------------
// Bootstrap

/** Feature flags of `POST /api/v1/client/config`, each with the reference default. */
export const clientConfigSchema = z
  .object({
    pjwt_auth_enabled: dflt(z.boolean(), false),
    credential_default_source: dflt(str(), "api_key"),
    sample_dispatch_bytes_semaphore_size: dflt(int(), 10 * 1024 * 1024),
    inflight_response_bytes_semaphore_size: dflt(int(), 50 * 1024 * 1024),
    parallel_fwdbwd_chunks: dflt(z.boolean(), true),
    proto_compress_fwdbwd: dflt(z.boolean(), false),
    fwdbwd_max_chunk_len: dflt(int().positive(), 1024),
    fwdbwd_max_chunk_bytes_count: dflt(int().positive(), 5_000_000),
    fwdbwd_dispatch_bytes_semaphore_size: dflt(int(), 50_000_000),
    billing_exception_max_pause_duration_sec: dflt(z.number(), 3600),
    sample_no_retries: dflt(z.boolean(), false),
    sample_enable_stuck_detection: dflt(z.boolean(), true),
    sample_max_concurrent_requests: dflt(int().positive(), 2000),
    use_pyqwest_transport: dflt(z.boolean(), true),
    create_model_via_load_weights: dflt(z.boolean(), false),
    // Newer servers (post-0.25.0); absent means the 0.25.0 behaviour.
    sample_use_retrieve_futures: dflt(z.boolean(), false),
    // Flags of 0.19-0.24 servers: protobuf fwd/bwd only when true; forward via forward_backward.
    proto_write_fwdbwd: opt(z.boolean()),
    fwd_via_fwdbwd: opt(z.boolean()),
  })
  .transform((v) => ({
    pjwtAuthEnabled: v.pjwt_auth_enabled,
    credentialDefaultSource: v.credential_default_source,
    sampleDispatchBytesSemaphoreSize: v.sample_dispatch_bytes_semaphore_size,
    inflightResponseBytesSemaphoreSize: v.inflight_response_bytes_semaphore_size,
    parallelFwdbwdChunks: v.parallel_fwdbwd_chunks,
    protoCompressFwdbwd: v.proto_compress_fwdbwd,
    fwdbwdMaxChunkLen: v.fwdbwd_max_chunk_len,
    fwdbwdMaxChunkBytesCount: v.fwdbwd_max_chunk_bytes_count,
    fwdbwdDispatchBytesSemaphoreSize: v.fwdbwd_dispatch_bytes_semaphore_size,
    billingExceptionMaxPauseDurationSec: v.billing_exception_max_pause_duration_sec,
    sampleNoRetries: v.sample_no_retries,
    sampleEnableStuckDetection: v.sample_enable_stuck_detection,
    sampleMaxConcurrentRequests: v.sample_max_concurrent_requests,
    usePyqwestTransport: v.use_pyqwest_transport,
    createModelViaLoadWeights: v.create_model_via_load_weights,
    sampleUseRetrieveFutures: v.sample_use_retrieve_futures,
    protoWriteFwdbwd: v.proto_write_fwdbwd,
    fwdViaFwdbwd: v.fwd_via_fwdbwd,
  }));
export type ClientConfig = z.output<typeof clientConfigSchema>;

/** Every flag at its reference default (what an empty `client/config` answer means). */
export const CLIENT_CONFIG_DEFAULTS: Readonly<ClientConfig> = Object.freeze(
  clientConfigSchema.parse({}),
);

export const dynamicConfigSchema = z
  .object({ refresh_interval_sec: dflt(z.number().nonnegative(), 300) })
  .transform((v) => ({ refreshIntervalSec: v.refresh_interval_sec }));
export type ClientDynamicConfig = z.output<typeof dynamicConfigSchema>;

export const authTokenSchema = z.object({ jwt: str().min(1) }).transform((v) => ({ jwt: v.jwt }));
export type AuthTokenResponse = z.output<typeof authTokenSchema>;

export const createSessionResponseSchema = z
  .object({
    session_id: str(),
    info_message: opt(str()),
    warning_message: opt(str()),
    error_message: opt(str()),
  })
  .transform((v) => ({
    sessionId: v.session_id,
    infoMessage: v.info_message,
    warningMessage: v.warning_message,
    errorMessage: v.error_message,
  }));
export type CreateSessionResponse = z.output<typeof createSessionResponseSchema>;

export const sessionHeartbeatResponseSchema = z
  .object({ type: dflt(str(), "session_heartbeat") })
  .transform((v) => ({ type: v.type }));

export const createSamplingSessionResponseSchema = z
  .object({ sampling_session_id: str() })
  .transform((v) => ({ samplingSessionId: v.sampling_session_id }));
export type CreateSamplingSessionResponse = z.output<typeof createSamplingSessionResponseSchema>;

export const serverCapabilitiesSchema = z
  .object({
    supported_models: dflt(
      z.array(z.object({ model_name: opt(str()), max_context_length: opt(int()) })),
      [],
    ),
  })
  .transform((v) => ({
    supportedModels: v.supported_models.map((m) => ({
      modelName: m.model_name,
      maxContextLength: m.max_context_length,
    })),
  }));
export type GetServerCapabilitiesResponse = z.output<typeof serverCapabilitiesSchema>;

export const healthSchema = z.object({ status: str() }).transform((v) => ({ status: v.status }));

// ---------------------------------------------------------------------------------------------
// Models and training results

export const createModelResponseSchema = z
  .object({ model_id: str() })
  .transform((v) => ({ modelId: v.model_id }));
export type CreateModelResponse = z.output<typeof createModelResponseSchema>;

export const getInfoResponseSchema = z
  .object({
    model_data: dflt(
      z.object({ arch: opt(str()), model_name: opt(str()), tokenizer_id: opt(str()) }),
      { arch: undefined, model_name: undefined, tokenizer_id: undefined },
    ),
    model_id: str(),
    is_lora: opt(z.boolean()),
    lora_rank: opt(int()),
    model_name: opt(str()),
  })
  .transform((v) => ({
    modelData: {
      arch: v.model_data.arch,
      modelName: v.model_data.model_name,
      tokenizerId: v.model_data.tokenizer_id,
    },
    modelId: v.model_id,
    isLora: v.is_lora,
    loraRank: v.lora_rank,
    modelName: v.model_name,
  }));
export type GetInfoResponse = z.output<typeof getInfoResponseSchema>;

export const unloadModelResponseSchema = createModelResponseSchema;

export const optimStepResponseSchema = z
  .object({ metrics: opt(z.record(str(), z.number())) })
  .transform((v): OptimStepResponse => (v.metrics ? { metrics: v.metrics } : {}));

export const saveWeightsResponseSchema = z
  .object({ path: str() })
  .transform((v) => ({ path: v.path }));
export type SaveWeightsResponse = z.output<typeof saveWeightsResponseSchema>;

export const loadWeightsResponseSchema = z
  .object({ path: opt(str()), model_id: opt(str()) })
  .transform((v) => ({ path: v.path, modelId: v.model_id }));
export type LoadWeightsResponse = z.output<typeof loadWeightsResponseSchema>;

/** Named saves carry `path`; ephemeral saves carry `sampling_session_id` (path null). */
export const saveWeightsForSamplerResponseSchema = z
  .object({ path: opt(str()), sampling_session_id: opt(str()) })
  .transform((v) => ({ path: v.path, samplingSessionId: v.sampling_session_id }));
export type SaveWeightsForSamplerResponse = z.output<typeof saveWeightsForSamplerResponseSchema>;

export { forwardBackwardOutputSchema, sampleResponseSchema };

// ---------------------------------------------------------------------------------------------
// REST

export const cursorSchema = z
  .object({ offset: int(), limit: int(), total_count: int() })
  .transform((v) => ({ offset: v.offset, limit: v.limit, totalCount: v.total_count }));
export type Cursor = z.output<typeof cursorSchema>;

export const checkpointSchema = z
  .object({
    checkpoint_id: str(),
    checkpoint_type: z.enum(["training", "sampler"]),
    time: date(),
    tinker_path: str(),
    size_bytes: opt(int()),
    public: dflt(z.boolean(), false),
    expires_at: opt(date()),
  })
  .transform((v) => ({
    checkpointId: v.checkpoint_id,
    checkpointType: v.checkpoint_type,
    time: v.time,
    tinkerPath: v.tinker_path,
    sizeBytes: v.size_bytes,
    public: v.public,
    expiresAt: v.expires_at,
  }));
export type Checkpoint = z.output<typeof checkpointSchema>;

export const checkpointsListSchema = z
  .object({ checkpoints: z.array(checkpointSchema), cursor: opt(cursorSchema) })
  .transform((v) => ({ checkpoints: v.checkpoints, cursor: v.cursor }));
export type CheckpointsListResponse = z.output<typeof checkpointsListSchema>;

export const trainingRunSchema = z
  .object({
    training_run_id: str(),
    base_model: str(),
    model_owner: str(),
    is_lora: z.boolean(),
    corrupted: dflt(z.boolean(), false),
    lora_rank: opt(int()),
    last_request_time: date(),
    last_checkpoint: opt(checkpointSchema),
    last_sampler_checkpoint: opt(checkpointSchema),
    user_metadata: opt(z.record(str(), str())),
  })
  .transform((v) => ({
    trainingRunId: v.training_run_id,
    baseModel: v.base_model,
    modelOwner: v.model_owner,
    isLora: v.is_lora,
    corrupted: v.corrupted,
    loraRank: v.lora_rank,
    lastRequestTime: v.last_request_time,
    lastCheckpoint: v.last_checkpoint,
    lastSamplerCheckpoint: v.last_sampler_checkpoint,
    userMetadata: v.user_metadata,
  }));
export type TrainingRun = z.output<typeof trainingRunSchema>;

export const trainingRunsSchema = z
  .object({ training_runs: z.array(trainingRunSchema), cursor: cursorSchema })
  .transform((v) => ({ trainingRuns: v.training_runs, cursor: v.cursor }));
export type TrainingRunsResponse = z.output<typeof trainingRunsSchema>;

export const weightsInfoSchema = z
  .object({
    base_model: str(),
    is_lora: z.boolean(),
    lora_rank: opt(int()),
    train_unembed: opt(z.boolean()),
    train_mlp: opt(z.boolean()),
    train_attn: opt(z.boolean()),
  })
  .transform((v) => ({
    baseModel: v.base_model,
    isLora: v.is_lora,
    loraRank: v.lora_rank,
    trainUnembed: v.train_unembed,
    trainMlp: v.train_mlp,
    trainAttn: v.train_attn,
  }));
export type WeightsInfoResponse = z.output<typeof weightsInfoSchema>;

export const getSessionSchema = z
  .object({ training_run_ids: dflt(z.array(str()), []), sampler_ids: dflt(z.array(str()), []) })
  .transform((v) => ({ trainingRunIds: v.training_run_ids, samplerIds: v.sampler_ids }));
export type GetSessionResponse = z.output<typeof getSessionSchema>;

export const listSessionsSchema = z
  .object({ sessions: z.array(str()) })
  .transform((v) => ({ sessions: v.sessions }));
export type ListSessionsResponse = z.output<typeof listSessionsSchema>;

export const getSamplerSchema = z
  .object({ sampler_id: str(), base_model: str(), model_path: opt(str()) })
  .transform((v) => ({
    samplerId: v.sampler_id,
    baseModel: v.base_model,
    modelPath: v.model_path,
  }));
export type GetSamplerResponse = z.output<typeof getSamplerSchema>;

export const archiveUrlSchema = z
  .object({ url: str(), expires: date() })
  .transform((v) => ({ url: v.url, expires: v.expires }));
export type CheckpointArchiveUrlResponse = z.output<typeof archiveUrlSchema>;

export const traceExportSchema = z
  .object({ status: z.enum(["pending", "ready", "failed"]), url: opt(str()), error: opt(str()) })
  .transform((v) => ({ status: v.status, url: v.url, error: v.error }));
export type TraceExportResponse = z.output<typeof traceExportSchema>;

export const telemetryResponseSchema = z
  .object({ status: dflt(str(), "accepted") })
  .transform((v) => ({ status: v.status }));

export const auditLogSchema = z
  .object({
    entries: z.array(
      z.object({
        timestamp: date(),
        event: str(),
        model_id: opt(str()),
        tinker_path: opt(str()),
        purpose: opt(str()),
      }),
    ),
  })
  .transform((v) => ({
    entries: v.entries.map((e) => ({
      timestamp: e.timestamp,
      event: e.event,
      modelId: e.model_id,
      tinkerPath: e.tinker_path,
      purpose: e.purpose,
    })),
  }));
export type AuditLogResponse = z.output<typeof auditLogSchema>;

const usageEventInfo = z.union([
  z.object({ type: z.literal("training"), token_count: int() }),
  z.object({ type: z.literal("sampling_prefill"), cached: z.boolean(), token_count: int() }),
  z.object({ type: z.literal("sampling_sample"), token_count: int() }),
  z.object({ type: z.literal("checkpoint"), count: int() }),
  z.object({ type: z.literal("storage"), gigabyte_hours: z.number() }),
  z.looseObject({ type: str() }),
]);

export const billingUsageSchema = z
  .object({
    data: z.array(
      z.object({
        bucket_start: date(),
        bucket_end: date(),
        base_model: opt(str()),
        user_id: opt(str()),
        user_name: opt(str()),
        session_id: opt(str()),
        project_id: opt(str()),
        event_info: usageEventInfo,
      }),
    ),
    sessions: dflt(
      z.record(str(), z.object({ user_metadata: opt(z.record(str(), z.unknown())) })),
      {},
    ),
  })
  .transform((v) => ({
    data: v.data.map((d) => ({
      bucketStart: d.bucket_start,
      bucketEnd: d.bucket_end,
      baseModel: d.base_model,
      userId: d.user_id,
      userName: d.user_name,
      sessionId: d.session_id,
      projectId: d.project_id,
      eventInfo: d.event_info as Record<string, unknown> & { type: string },
    })),
    sessions: Object.fromEntries(
      Object.entries(v.sessions).map(([k, s]) => [k, { userMetadata: s.user_metadata }]),
    ),
  }));
export type BillingUsageResponse = z.output<typeof billingUsageSchema>;

/** Every response schema by name. */
export const responseSchemas = {
  untypedFuture: untypedFutureSchema,
  tryAgain: tryAgainSchema,
  completeMetadata: completeMetadataSchema,
  requestFailed: requestFailedSchema,
  clientConfig: clientConfigSchema,
  dynamicConfig: dynamicConfigSchema,
  authToken: authTokenSchema,
  createSession: createSessionResponseSchema,
  sessionHeartbeat: sessionHeartbeatResponseSchema,
  createSamplingSession: createSamplingSessionResponseSchema,
  serverCapabilities: serverCapabilitiesSchema,
  health: healthSchema,
  createModel: createModelResponseSchema,
  getInfo: getInfoResponseSchema,
  unloadModel: unloadModelResponseSchema,
  optimStep: optimStepResponseSchema,
  saveWeights: saveWeightsResponseSchema,
  loadWeights: loadWeightsResponseSchema,
  saveWeightsForSampler: saveWeightsForSamplerResponseSchema,
  forwardBackward: forwardBackwardOutputSchema,
  sample: sampleResponseSchema,
  checkpoint: checkpointSchema,
  checkpointsList: checkpointsListSchema,
  trainingRun: trainingRunSchema,
  trainingRuns: trainingRunsSchema,
  weightsInfo: weightsInfoSchema,
  getSession: getSessionSchema,
  listSessions: listSessionsSchema,
  getSampler: getSamplerSchema,
  archiveUrl: archiveUrlSchema,
  traceExport: traceExportSchema,
  telemetry: telemetryResponseSchema,
  auditLog: auditLogSchema,
  billingUsage: billingUsageSchema,
} as const;

/**
 * Validate a decoded JSON response body.
 * @param endpoint e.g. `"POST /api/v1/get_info"`; it opens the error message.
 * @throws APIResponseValidationError: `POST /api/v1/get_info: model_data.model_name: ...`.
 */
export function parseResponse<T extends z.ZodType>(
  schema: T,
  body: unknown,
  endpoint: string,
): z.output<T> {
  const r = schema.safeParse(body);
  if (r.success) return r.data;
  const { message } = describeIssues(r.error);
  throw new APIResponseValidationError(`${endpoint}: unexpected response: ${message}`, {
    request: endpoint,
    body,
  });
}

// ---------------------------------------------------------------------------------------------
// Server side: camelCase values -> the JSON the reference server sends

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function snake(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** Keys whose values are maps with user-chosen keys (left untouched). */
const OPAQUE_KEYS = new Set(["metrics", "userMetadata", "sessions", "eventData", "eventInfo"]);

/** camelCase -> snake_case keys, Dates -> ISO strings, `undefined` dropped. */
function toSnake(value: unknown): Json {
  if (value === undefined || value === null) return null;
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.map(toSnake);
  if (typeof value === "object") {
    const out: { [k: string]: Json } = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      if (v === undefined) continue;
      out[snake(k)] = OPAQUE_KEYS.has(k) ? (v as Json) : toSnake(v);
    }
    return out;
  }
  return value as Json;
}

type Obj = { [k: string]: Json };

export const toWire = {
  future: (f: UntypedAPIFuture): Obj => toSnake(f) as Obj,
  tryAgain: (t: Omit<TryAgainResponse, "type">): Obj => ({
    type: "try_again",
    ...(toSnake(t) as Obj),
  }),
  completeMetadata: (responsePayloadSize: number): Obj => ({
    status: "complete_metadata",
    response_payload_size: responsePayloadSize,
  }),
  requestFailed: (r: RequestFailedResponse): Obj => ({ error: r.error, category: r.category }),
  clientConfig: (c: Partial<ClientConfig>): Obj => toSnake(c) as Obj,
  dynamicConfig: (c: ClientDynamicConfig): Obj => toSnake(c) as Obj,
  createSession: (r: CreateSessionResponse): Obj => ({
    ...(toSnake(r) as Obj),
    type: "create_session",
  }),
  sessionHeartbeat: (): Obj => ({ type: "session_heartbeat" }),
  createSamplingSession: (r: CreateSamplingSessionResponse): Obj => ({
    ...(toSnake(r) as Obj),
    type: "create_sampling_session",
  }),
  serverCapabilities: (r: GetServerCapabilitiesResponse): Obj => toSnake(r) as Obj,
  createModel: (r: CreateModelResponse): Obj => ({ ...(toSnake(r) as Obj), type: "create_model" }),
  getInfo: (r: GetInfoResponse): Obj => ({ type: "get_info", ...(toSnake(r) as Obj) }),
  unloadModel: (r: CreateModelResponse): Obj => ({ ...(toSnake(r) as Obj), type: "unload_model" }),
  optimStep: (r: OptimStepResponse): Obj => toSnake(r) as Obj,
  saveWeights: (r: SaveWeightsResponse): Obj => ({ ...(toSnake(r) as Obj), type: "save_weights" }),
  loadWeights: (r: LoadWeightsResponse): Obj => ({ ...(toSnake(r) as Obj), type: "load_weights" }),
  saveWeightsForSampler: (r: SaveWeightsForSamplerResponse): Obj => ({
    ...(toSnake(r) as Obj),
    type: "save_weights_for_sampler",
  }),
  forwardBackward: (r: ForwardBackwardOutput): ForwardBackwardOutputJson =>
    forwardBackwardOutputToJson(r),
  sample: (r: SampleResponse): SampleResponseJson => sampleResponseToJson(r),
  checkpoint: (c: Checkpoint): Obj => toSnake(c) as Obj,
  checkpointsList: (r: CheckpointsListResponse): Obj => toSnake(r) as Obj,
  trainingRun: (r: TrainingRun): Obj => toSnake(r) as Obj,
  trainingRuns: (r: TrainingRunsResponse): Obj => toSnake(r) as Obj,
  weightsInfo: (r: WeightsInfoResponse): Obj => toSnake(r) as Obj,
  getSession: (r: GetSessionResponse): Obj => toSnake(r) as Obj,
  listSessions: (r: ListSessionsResponse): Obj => toSnake(r) as Obj,
  getSampler: (r: GetSamplerResponse): Obj => toSnake(r) as Obj,
  archiveUrl: (r: CheckpointArchiveUrlResponse): Obj => toSnake(r) as Obj,
  traceExport: (r: TraceExportResponse): Obj => toSnake(r) as Obj,
  telemetry: (): Obj => ({ status: "accepted" }),
} as const;
