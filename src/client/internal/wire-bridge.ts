/**
 * The single place where the client runtime touches request bodies and response shapes.
 *
 * TODO(wire): these are stand-ins written against the protocol reference until
 * `src/client/wire/requests.ts` and `src/client/wire/responses.ts` land; then each function here
 * becomes a re-export of the wire module's builder/parser and this file shrinks to glue.
 */
import { APIResponseValidationError } from "../errors.js";

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
