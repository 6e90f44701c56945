/**
 * `tinker://` checkpoint paths and the REST paths built from them.
 *
 * `tinker://<training_run_id>/weights/<name>` is training state (load_state, create from state);
 * `tinker://<training_run_id>/sampler_weights/<name>` is sampler weights. The REST checkpoint id
 * keeps the kind prefix (`weights/<name>`) and goes into URLs unescaped, as the reference does.
 */

import { TinkerValidationError } from "../errors.js";

export type CheckpointType = "training" | "sampler";

/** A parsed `tinker://` path. */
export interface TinkerPath {
  trainingRunId: string;
  checkpointType: CheckpointType;
  /** `weights/<name>` or `sampler_weights/<name>`: the id REST endpoints take. */
  checkpointId: string;
  name: string;
}

const SCHEME = "tinker://";
const KIND_TO_TYPE: Readonly<Record<string, CheckpointType>> = {
  weights: "training",
  sampler_weights: "sampler",
};
const TYPE_TO_KIND: Readonly<Record<CheckpointType, string>> = {
  training: "weights",
  sampler: "sampler_weights",
};
const EXPECTED =
  "expected tinker://<training_run_id>/weights/<name> or tinker://<training_run_id>/sampler_weights/<name>";

function invalid(path: unknown, why: string, field: string): TinkerValidationError {
  return new TinkerValidationError(
    `invalid tinker path ${JSON.stringify(path)}: ${why}; ${EXPECTED}`,
    field,
  );
}

/**
 * Parse a checkpoint path.
 * @throws TinkerValidationError (field `path`) naming what is wrong: the scheme, the number of
 *   parts, an unknown kind, or an empty run id or name.
 */
export function parseTinkerPath(path: string): TinkerPath {
  if (typeof path !== "string") throw invalid(path, "not a string", "path");
  if (!path.startsWith(SCHEME)) {
    const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(path)?.[1];
    throw invalid(
      path,
      scheme ? `scheme "${scheme}://" is not tinker://` : "missing tinker:// scheme",
      "path",
    );
  }
  const parts = path.slice(SCHEME.length).split("/");
  if (parts.length !== 3) {
    throw invalid(
      path,
      `has ${parts.length} "/"-separated parts after tinker://, needs exactly 3`,
      "path",
    );
  }
  const [runId, kind, name] = parts as [string, string, string];
  if (!runId) throw invalid(path, "the training run id is empty", "path");
  const checkpointType = KIND_TO_TYPE[kind];
  if (!checkpointType) {
    throw invalid(
      path,
      `unknown checkpoint kind "${kind}" (use weights or sampler_weights)`,
      "path",
    );
  }
  if (!name) throw invalid(path, "the checkpoint name is empty", "path");
  return { trainingRunId: runId, checkpointType, checkpointId: `${kind}/${name}`, name };
}

/** True when `path` parses as a checkpoint path. */
export function isTinkerPath(path: string): boolean {
  try {
    parseTinkerPath(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Build a checkpoint path.
 * @throws TinkerValidationError for an empty run id or a name that is empty or contains `/`.
 */
export function formatTinkerPath(p: {
  trainingRunId: string;
  checkpointType: CheckpointType;
  name: string;
}): string {
  if (!p.trainingRunId || p.trainingRunId.includes("/")) {
    throw new TinkerValidationError(
      `trainingRunId must be non-empty and contain no "/", got ${JSON.stringify(p.trainingRunId)}`,
      "trainingRunId",
    );
  }
  if (!p.name || p.name.includes("/")) {
    throw new TinkerValidationError(
      `checkpoint name must be non-empty and contain no "/", got ${JSON.stringify(p.name)}`,
      "name",
    );
  }
  const kind = TYPE_TO_KIND[p.checkpointType];
  if (!kind) {
    throw new TinkerValidationError(
      `checkpointType must be "training" or "sampler", got ${JSON.stringify(p.checkpointType)}`,
      "checkpointType",
    );
  }
  return `${SCHEME}${p.trainingRunId}/${kind}/${p.name}`;
}

/**
 * URL paths of the reference API. Path parameters are interpolated raw (no percent-encoding):
 * run ids contain `:` and checkpoint ids contain `/`, and the server expects them as they are.
 */
export const apiPaths = {
  clientConfig: "/api/v1/client/config",
  dynamicConfig: "/api/v1/client/dynamic_config",
  authToken: "/api/v1/auth/token",
  createSession: "/api/v1/create_session",
  sessionHeartbeat: "/api/v1/session_heartbeat",
  createSamplingSession: "/api/v1/create_sampling_session",
  serverCapabilities: "/api/v1/get_server_capabilities",
  healthz: "/api/v1/healthz",
  createModel: "/api/v1/create_model",
  getInfo: "/api/v1/get_info",
  unloadModel: "/api/v1/unload_model",
  forwardBackward: "/api/v1/forward_backward",
  forward: "/api/v1/forward",
  optimStep: "/api/v1/optim_step",
  saveWeights: "/api/v1/save_weights",
  loadWeights: "/api/v1/load_weights",
  saveWeightsForSampler: "/api/v1/save_weights_for_sampler",
  asample: "/api/v1/asample",
  retrieveFuture: "/api/v1/retrieve_future",
  telemetry: "/api/v1/telemetry",
  weightsInfo: "/api/v1/weights_info",
  trainingRuns: "/api/v1/training_runs",
  trainingRun: (runId: string) => `/api/v1/training_runs/${runId}`,
  checkpoints: (runId: string) => `/api/v1/training_runs/${runId}/checkpoints`,
  checkpoint: (runId: string, checkpointId: string) =>
    `/api/v1/training_runs/${runId}/checkpoints/${checkpointId}`,
  checkpointArchive: (runId: string, checkpointId: string) =>
    `/api/v1/training_runs/${runId}/checkpoints/${checkpointId}/archive`,
  checkpointPublish: (runId: string, checkpointId: string) =>
    `/api/v1/training_runs/${runId}/checkpoints/${checkpointId}/publish`,
  checkpointTtl: (runId: string, checkpointId: string) =>
    `/api/v1/training_runs/${runId}/checkpoints/${checkpointId}/ttl`,
  userCheckpoints: "/api/v1/checkpoints",
  sessions: "/api/v1/sessions",
  session: (sessionId: string) => `/api/v1/sessions/${sessionId}`,
  sessionProject: (sessionId: string) => `/api/v1/sessions/${sessionId}/project`,
  sessionTraceExport: (sessionId: string) => `/api/v1/sessions/${sessionId}/trace_export`,
  sampler: (samplerId: string) => `/api/v1/samplers/${samplerId}`,
  audit: "/api/v1/audit",
  billingUsage: "/api/v1/billing/usage/events",
} as const;

/**
 * A query string as the reference builds it: `undefined`/`null` params omitted, arrays
 * comma-joined. Returns `""` or `"?a=1&b=x"`.
 */
export function queryString(
  params: Readonly<
    Record<string, string | number | boolean | readonly (string | number)[] | null | undefined>
  >,
): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null) continue;
    const value = Array.isArray(v) ? v.join(",") : String(v);
    parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(value)}`);
  }
  return parts.length ? `?${parts.join("&")}` : "";
}
