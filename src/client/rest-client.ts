import { sleep } from "./core/abort.js";
import type { HttpRequest, HttpResponse } from "./core/http.js";
import { jwtClaims } from "./core/jwt.js";
import {
  APIResponseValidationError,
  APIStatusError,
  TinkerError,
  TinkerValidationError,
} from "./errors.js";
import { bodies, parseTinkerPath } from "./internal/wire-bridge.js";
import type { ClientHolder } from "./session.js";

export type AccessScope = "owned" | "accessible";

export interface Cursor {
  offset: number;
  limit: number;
  totalCount: number;
}

export interface Checkpoint {
  /** `weights/<name>` or `sampler_weights/<name>`. */
  checkpointId: string;
  checkpointType: "training" | "sampler";
  /** ISO-8601. */
  time: string;
  tinkerPath: string;
  sizeBytes?: number;
  public: boolean;
  expiresAt?: string;
}

export interface CheckpointsList {
  checkpoints: Checkpoint[];
  cursor?: Cursor;
}

export interface TrainingRun {
  trainingRunId: string;
  baseModel: string;
  modelOwner: string;
  isLora: boolean;
  corrupted: boolean;
  loraRank?: number;
  lastRequestTime: string;
  lastCheckpoint?: Checkpoint;
  lastSamplerCheckpoint?: Checkpoint;
  userMetadata?: Record<string, string>;
}

export interface TrainingRunsList {
  trainingRuns: TrainingRun[];
  cursor: Cursor;
}

export interface WeightsInfo {
  baseModel: string;
  isLora: boolean;
  loraRank?: number;
  trainUnembed?: boolean;
  trainMlp?: boolean;
  trainAttn?: boolean;
}

export interface SessionDetails {
  trainingRunIds: string[];
  samplerIds: string[];
}

export interface SamplerDetails {
  samplerId: string;
  baseModel: string;
  modelPath?: string;
}

export interface ArchiveUrl {
  /** Signed URL; needs no credentials. */
  url: string;
  expires: Date;
}

export interface AuditLog {
  entries: Array<{
    timestamp: string;
    event: string;
    modelId?: string;
    tinkerPath?: string;
    purpose?: string;
  }>;
}

export interface BillingUsage {
  data: Array<Record<string, unknown>>;
  sessions: Record<string, { userMetadata?: Record<string, unknown> }>;
}

export interface Whoami {
  userUrn: string;
  email?: string;
}

export interface RestCallOptions {
  signal?: AbortSignal;
  /** Per-request timeout in ms (default the client's, 60 s). */
  timeout?: number;
}

/** Keys whose values are free-form maps: their inner keys are kept as sent. */
const OPAQUE = new Set(["user_metadata", "metrics", "event_data", "sessions"]);

/** snake_case keys to camelCase, recursively (map-valued fields keep their keys). */
export function camelize(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(camelize);
  if (value === null || typeof value !== "object") return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    const ck = k.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
    if (OPAQUE.has(k) && v !== null && typeof v === "object" && !Array.isArray(v)) {
      out[ck] =
        k === "sessions"
          ? Object.fromEntries(Object.entries(v).map(([sk, sv]) => [sk, camelize(sv)]))
          : v;
    } else out[ck] = camelize(v);
  }
  return out;
}

function requireFields<T>(value: unknown, fields: readonly string[], endpoint: string): T {
  if (value === null || typeof value !== "object") {
    throw new APIResponseValidationError(`${endpoint}: expected a JSON object`, {
      request: endpoint,
      body: value,
    });
  }
  for (const f of fields) {
    if (!(f in value)) {
      throw new APIResponseValidationError(`${endpoint}: response field "${f}" is missing`, {
        request: endpoint,
        body: value,
      });
    }
  }
  return camelize(value) as T;
}

/** The per-call fields of a request: the caller's signal and timeout. */
function perCall(opts: RestCallOptions): Pick<HttpRequest, "signal" | "timeoutMs"> {
  return opts.timeout === undefined
    ? { signal: opts.signal }
    : { signal: opts.signal, timeoutMs: opts.timeout };
}

function checkLimit(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 0) {
    throw new TinkerValidationError(`${name} must be a non-negative integer, got ${v}`, name);
  }
}

/**
 * Checkpoints, training runs, sessions and samplers (no session needed). Every call runs in the
 * generic retry loop on top of the HTTP retries. Path parameters are sent raw, as the server
 * expects (`checkpoint_id` contains a `/`).
 */
export class RestClient {
  private readonly holder: ClientHolder;

  /** @internal Use `ServiceClient.createRestClient()`. */
  constructor(holder: ClientHolder) {
    this.holder = holder;
  }

  private async call(what: string, req: HttpRequest): Promise<HttpResponse> {
    await this.holder.flags();
    return this.holder.request(what, { purpose: "rest", ...req });
  }

  private async getJson<T>(
    what: string,
    path: string,
    required: readonly string[],
    opts: RestCallOptions,
    query?: HttpRequest["query"],
  ): Promise<T> {
    const res = await this.call(what, {
      method: "GET",
      path,
      ...perCall(opts),
      ...(query ? { query } : {}),
    });
    return requireFields<T>(res.json(), required, res.endpoint);
  }

  /** One training run by id. */
  async getTrainingRun(
    trainingRunId: string,
    opts: RestCallOptions & { accessScope?: AccessScope } = {},
  ): Promise<TrainingRun> {
    return this.getJson(
      "get_training_run",
      `/api/v1/training_runs/${trainingRunId}`,
      ["training_run_id"],
      opts,
      {
        access_scope: opts.accessScope ?? "owned",
      },
    );
  }

  /** The training run a `tinker://` path belongs to. */
  async getTrainingRunByTinkerPath(
    path: string,
    opts: RestCallOptions & { accessScope?: AccessScope } = {},
  ): Promise<TrainingRun> {
    return this.getTrainingRun(parseTinkerPath(path).trainingRunId, opts);
  }

  /** Base model and LoRA settings of a checkpoint (`apiKey`: a token for another account's). */
  async getWeightsInfoByTinkerPath(
    path: string,
    opts: RestCallOptions & { apiKey?: string } = {},
  ): Promise<WeightsInfo> {
    parseTinkerPath(path);
    const res = await this.call("weights_info", {
      method: "POST",
      path: "/api/v1/weights_info",
      json: bodies.weightsInfoBody(path),
      ...perCall(opts),
      ...(opts.apiKey ? { apiKey: opts.apiKey } : {}),
    });
    return requireFields<WeightsInfo>(res.json(), ["base_model", "is_lora"], res.endpoint);
  }

  /** Training runs, newest first, one page (`limit` default 20). */
  async listTrainingRuns(
    opts: RestCallOptions & {
      limit?: number;
      offset?: number;
      accessScope?: AccessScope;
      projectId?: string;
    } = {},
  ): Promise<TrainingRunsList> {
    const limit = opts.limit ?? 20;
    const offset = opts.offset ?? 0;
    checkLimit("limit", limit);
    checkLimit("offset", offset);
    return this.getJson("list_training_runs", "/api/v1/training_runs", ["training_runs"], opts, {
      limit,
      offset,
      access_scope: opts.accessScope ?? "owned",
      project_id: opts.projectId,
    });
  }

  /** Every checkpoint of one training run. */
  async listCheckpoints(
    trainingRunId: string,
    opts: RestCallOptions = {},
  ): Promise<CheckpointsList> {
    return this.getJson(
      "list_checkpoints",
      `/api/v1/training_runs/${trainingRunId}/checkpoints`,
      ["checkpoints"],
      opts,
    );
  }

  /** Checkpoints across all runs of this account, one page (`limit` default 100). */
  async listUserCheckpoints(
    opts: RestCallOptions & { limit?: number; offset?: number } = {},
  ): Promise<CheckpointsList> {
    const limit = opts.limit ?? 100;
    const offset = opts.offset ?? 0;
    checkLimit("limit", limit);
    checkLimit("offset", offset);
    return this.getJson("list_user_checkpoints", "/api/v1/checkpoints", ["checkpoints"], opts, {
      limit,
      offset,
    });
  }

  /**
   * A signed download URL for a checkpoint archive. Handles both server forms (302 + Location,
   * or 200 JSON) and waits while the server builds the archive (503: 30 s, up to 6 attempts).
   */
  async getCheckpointArchiveUrl(
    trainingRunId: string,
    checkpointId: string,
    opts: RestCallOptions = {},
  ): Promise<ArchiveUrl> {
    await this.holder.flags();
    const path = `/api/v1/training_runs/${trainingRunId}/checkpoints/${checkpointId}/archive`;
    return this.holder.withRetries(
      "get_checkpoint_archive_url",
      async () => {
        for (let attempt = 1; ; attempt++) {
          try {
            const res = await this.holder.http.request({
              method: "GET",
              path,
              accept: "application/json",
              acceptRedirect: true,
              purpose: "rest",
              ...perCall(opts),
              retryStatus: (s) => s !== 503 && (s === 408 || s === 409 || s === 429 || s >= 500),
            });
            if (res.status >= 300 && res.status < 400) {
              const url = res.headers.location;
              if (!url) {
                throw new APIResponseValidationError(
                  `GET ${path}: redirect without a Location header`,
                  {
                    request: `GET ${path}`,
                  },
                );
              }
              const exp = res.headers.expires ? Date.parse(res.headers.expires) : Number.NaN;
              return {
                url,
                expires: new Date(Number.isFinite(exp) ? exp : Date.now() + 15 * 60_000),
              };
            }
            const v = requireFields<{ url: string; expires: string }>(
              res.json(),
              ["url", "expires"],
              res.endpoint,
            );
            return { url: v.url, expires: new Date(v.expires) };
          } catch (err) {
            if (err instanceof APIStatusError && err.status === 503 && attempt < 6) {
              this.holder.logger.info(
                `Checkpoint archive is being prepared; checking again in ${this.holder.timings.archiveRetryMs / 1000} s`,
              );
              await sleep(this.holder.timings.archiveRetryMs, opts.signal);
              continue;
            }
            throw err;
          }
        }
      },
      opts.signal,
    );
  }

  /** `getCheckpointArchiveUrl` for a `tinker://` checkpoint path. */
  async getCheckpointArchiveUrlFromTinkerPath(
    path: string,
    opts: RestCallOptions = {},
  ): Promise<ArchiveUrl> {
    const p = parseTinkerPath(path);
    return this.getCheckpointArchiveUrl(p.trainingRunId, p.checkpointId, opts);
  }

  /** Delete one checkpoint (`checkpointId` is `weights/<name>` or `sampler_weights/<name>`). */
  async deleteCheckpoint(
    trainingRunId: string,
    checkpointId: string,
    opts: RestCallOptions = {},
  ): Promise<void> {
    await this.call("delete_checkpoint", {
      method: "DELETE",
      path: `/api/v1/training_runs/${trainingRunId}/checkpoints/${checkpointId}`,
      ...perCall(opts),
    });
  }

  /** `deleteCheckpoint` for a `tinker://` checkpoint path. */
  async deleteCheckpointFromTinkerPath(path: string, opts: RestCallOptions = {}): Promise<void> {
    const p = parseTinkerPath(path);
    return this.deleteCheckpoint(p.trainingRunId, p.checkpointId, opts);
  }

  /** Make a checkpoint public (409 if it already is). */
  async publishCheckpointFromTinkerPath(path: string, opts: RestCallOptions = {}): Promise<void> {
    const p = parseTinkerPath(path);
    await this.call("publish_checkpoint", {
      method: "POST",
      path: `/api/v1/training_runs/${p.trainingRunId}/checkpoints/${p.checkpointId}/publish`,
      ...perCall(opts),
    });
  }

  /** Make a checkpoint private again (409 if it already is). */
  async unpublishCheckpointFromTinkerPath(path: string, opts: RestCallOptions = {}): Promise<void> {
    const p = parseTinkerPath(path);
    await this.call("unpublish_checkpoint", {
      method: "DELETE",
      path: `/api/v1/training_runs/${p.trainingRunId}/checkpoints/${p.checkpointId}/publish`,
      ...perCall(opts),
    });
  }

  /** Expire the checkpoint `ttlSeconds` from now; `null` keeps it forever. */
  async setCheckpointTtlFromTinkerPath(
    path: string,
    ttlSeconds: number | null,
    opts: RestCallOptions = {},
  ): Promise<void> {
    if (ttlSeconds !== null && (!Number.isInteger(ttlSeconds) || ttlSeconds <= 0)) {
      throw new TinkerValidationError(
        "ttlSeconds must be a positive integer, or null to keep forever",
        "ttlSeconds",
      );
    }
    const p = parseTinkerPath(path);
    await this.call("set_checkpoint_ttl", {
      method: "PUT",
      path: `/api/v1/training_runs/${p.trainingRunId}/checkpoints/${p.checkpointId}/ttl`,
      json: bodies.setTtlBody(ttlSeconds),
      ...perCall(opts),
    });
  }

  /** The training runs and samplers of one session. */
  async getSession(
    sessionId: string,
    opts: RestCallOptions & { accessScope?: AccessScope } = {},
  ): Promise<SessionDetails> {
    return this.getJson(
      "get_session",
      `/api/v1/sessions/${sessionId}`,
      ["training_run_ids", "sampler_ids"],
      opts,
      {
        access_scope: opts.accessScope ?? "owned",
      },
    );
  }

  /** Every session ever created by this account (not only live ones). */
  async listSessions(
    opts: RestCallOptions & { limit?: number; offset?: number; accessScope?: AccessScope } = {},
  ): Promise<{ sessions: string[] }> {
    const limit = opts.limit ?? 20;
    const offset = opts.offset ?? 0;
    checkLimit("limit", limit);
    checkLimit("offset", offset);
    return this.getJson("list_sessions", "/api/v1/sessions", ["sessions"], opts, {
      limit,
      offset,
      access_scope: opts.accessScope ?? "owned",
    });
  }

  /** Move a session into a project. */
  async assignSessionProject(
    sessionId: string,
    projectId: string,
    opts: RestCallOptions = {},
  ): Promise<void> {
    await this.call("assign_session_project", {
      method: "PUT",
      path: `/api/v1/sessions/${sessionId}/project`,
      json: bodies.assignSessionProjectBody(projectId),
      ...perCall(opts),
    });
  }

  /** Ask for a trace export and poll (every 5 s) until it is ready; returns its URL. */
  async exportSessionTrace(sessionId: string, opts: RestCallOptions = {}): Promise<string> {
    for (;;) {
      const v = await this.getJson<{ status: string; url?: string; error?: string }>(
        "export_session_trace",
        `/api/v1/sessions/${sessionId}/trace_export`,
        ["status"],
        opts,
      );
      if (v.status === "ready" && v.url) return v.url;
      if (v.status === "failed") {
        throw new TinkerError(
          `Trace export of session ${sessionId} failed: ${v.error ?? "unknown error"}`,
        );
      }
      await sleep(this.holder.timings.tracePollMs, opts.signal);
    }
  }

  /** What the server knows about one sampler. */
  async getSampler(samplerId: string, opts: RestCallOptions = {}): Promise<SamplerDetails> {
    return this.getJson(
      "get_sampler",
      `/api/v1/samplers/${samplerId}`,
      ["sampler_id", "base_model"],
      opts,
    );
  }

  /** Checkpoint audit events of one UTC day (needs the tinker-admin role). */
  async getAuditLog(
    opts: RestCallOptions & { eventType?: "all" | "checkpoints"; day?: string } = {},
  ): Promise<AuditLog> {
    return this.getJson("get_audit_log", "/api/v1/audit", ["entries"], opts, {
      event_type: opts.eventType ?? "all",
      day: opts.day,
    });
  }

  /** Usage events in [startingOn, endingBefore) (RFC 3339, UTC hour boundaries, <= 14 days). */
  async getBillingUsage(
    startingOn: string,
    endingBefore: string,
    opts: RestCallOptions = {},
  ): Promise<BillingUsage> {
    return this.getJson("get_billing_usage", "/api/v1/billing/usage/events", ["data"], opts, {
      starting_on: startingOn,
      ending_before: endingBefore,
    });
  }

  /** Who the credential belongs to, decoded from the JWT (no request). */
  async whoami(): Promise<Whoami> {
    const token = await this.holder.currentCredential();
    if (!token?.startsWith("eyJ")) {
      throw new TinkerError(
        "whoami needs a JWT: the server did not enable JWT auth and the API key is not a JWT.",
      );
    }
    const claims = jwtClaims(token);
    const out: Whoami = { userUrn: String(claims.sub ?? "") };
    if (typeof claims.email === "string") out.email = claims.email;
    return out;
  }
}
