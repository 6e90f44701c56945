import type { EmbeddedServerOptions } from "../../local/server/embedded.js";
import { TinkerError, TinkerValidationError } from "../errors.js";
import type { Tokenizer, TokenizerLoader } from "../tokenizer-hook.js";
import { type Logger, type LogLevel, parseLogLevel } from "./logger.js";
import { DEFAULT_TIMINGS, type Timings } from "./timings.js";

/** The reference's production endpoint. */
export const DEFAULT_BASE_URL = "https://tinker.thinkingmachines.dev/services/tinker-prod";

/**
 * Options accepted by `ServiceClient` (and every client built from it). Each falls back to an
 * environment variable, then a default.
 */
export interface ClientOptions {
  /** API key (`tml-...`) or a JWT (`eyJ...`). Env: `TINKER_API_KEY`. */
  apiKey?: string;
  /** Shell command printing a credential. Env: `TINKER_CREDENTIAL_CMD`. */
  credentialCmd?: string;
  /** Env: `TINKER_BASE_URL`; default the production service. */
  baseUrl?: string;
  /** Attached to the session. Env: `TINKER_PROJECT_ID`. */
  projectId?: string;
  /** Session tags. Env: `TINKER_TAGS` (comma-separated). */
  tags?: readonly string[];
  /** Free-form metadata attached to the session. */
  userMetadata?: Readonly<Record<string, unknown>>;
  /** Send telemetry events. Off unless this or `TINKER_TELEMETRY=1|true|yes|on`. */
  telemetry?: boolean;
  /** Where log lines go; default `console`. Secrets are redacted before they reach it. */
  logger?: Logger;
  /** Env: `TINKER_LOG` (`off|error|warn|info|debug`); default `warn`. */
  logLevel?: LogLevel;
  /** Default per-request timeout in ms (default 60 000). */
  timeoutMs?: number;
  /** Layer-1 (HTTP) retries per call (default 10). */
  maxRetries?: number;
  /** Extra headers sent on every request. */
  defaultHeaders?: Readonly<Record<string, string>>;
  /**
   * Training request encoding: `"protobuf"` (0.25 protocol, default) or `"json"` (older servers).
   * `"auto"` picks JSON only when the server's config sets `proto_write_fwdbwd: false`.
   */
  wireFormat?: "protobuf" | "json" | "auto";
  /**
   * `true`: always use the embedded local server (the CPU engine in this process), even when
   * `TINKER_API_KEY` is set; no credential is sent to it. Default: local only when there is no
   * credential and no base URL.
   */
  local?: boolean;
  /**
   * Options of the embedded local server, used when there is no credential (`apiKey`,
   * `TINKER_API_KEY`, `TINKER_CREDENTIAL_CMD`) and no base URL: training then runs on the local
   * CPU engine.
   */
  localServer?: EmbeddedServerOptions;
  /** Loads tokenizers for `getTokenizer()`; see `tokenizer-hook.ts`. */
  tokenizerLoader?: TokenizerLoader<Tokenizer>;
  /** Timing knobs (intervals, budgets); tests shorten them. */
  timings?: Partial<Timings>;
  /** Environment to read instead of `process.env` (tests). */
  env?: Readonly<Record<string, string | undefined>>;
}

/** Fully resolved configuration. */
export interface ResolvedConfig {
  apiKey: string | undefined;
  credentialCmd: string | undefined;
  baseUrl: string;
  projectId: string | undefined;
  tags: string[];
  userMetadata: Record<string, unknown>;
  telemetry: boolean;
  logLevel: LogLevel;
  timeoutMs: number;
  maxRetries: number;
  defaultHeaders: Record<string, string>;
  wireFormat: "protobuf" | "json" | "auto";
  timings: Timings;
  tokenizerLoader: TokenizerLoader<Tokenizer> | undefined;
  /** No credential and no base URL: talk to the embedded local server. */
  useLocalServer: boolean;
  localServer: EmbeddedServerOptions;
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v.trim() === "" ? undefined : v.trim();
}

/** Throws unless `key` looks like a Tinker API key or a JWT. */
export function validateApiKey(key: string): void {
  if (!key.startsWith("tml-") && !key.startsWith("eyJ")) {
    throw new TinkerError(
      "The API key must start with the 'tml-' prefix (or be a JWT starting with 'eyJ'). " +
        "Check TINKER_API_KEY or the apiKey option.",
    );
  }
}

const TRUTHY = new Set(["1", "true", "yes", "on"]);

/** Merge options, environment and defaults. Does not require a credential (that is lazy). */
export function resolveConfig(options: ClientOptions = {}): ResolvedConfig {
  const env = options.env ?? process.env;
  const apiKey = nonEmpty(options.apiKey) ?? nonEmpty(env.TINKER_API_KEY);
  if (apiKey !== undefined) validateApiKey(apiKey);
  const explicitBaseUrl = nonEmpty(options.baseUrl) ?? nonEmpty(env.TINKER_BASE_URL);
  const baseUrl = (explicitBaseUrl ?? DEFAULT_BASE_URL).replace(/\/+$/, "");
  try {
    new URL(baseUrl);
  } catch {
    throw new TinkerValidationError(
      `baseUrl "${baseUrl}" is not a valid URL; pass e.g. "http://127.0.0.1:8000"`,
      "baseUrl",
    );
  }
  const tagSource = options.tags ?? nonEmpty(env.TINKER_TAGS)?.split(",") ?? [];
  const tags = [...new Set(tagSource.map((t) => t.trim()).filter((t) => t !== ""))];
  const envLevel = env.TINKER_LOG;
  const logLevel = options.logLevel ?? parseLogLevel(envLevel) ?? "warn";
  const telemetryEnv = nonEmpty(env.TINKER_TELEMETRY)?.toLowerCase();
  const defaultHeaders: Record<string, string> = {};
  const cfId = nonEmpty(env.CLOUDFLARE_ACCESS_CLIENT_ID);
  const cfSecret = nonEmpty(env.CLOUDFLARE_ACCESS_CLIENT_SECRET);
  if (cfId) defaultHeaders["CF-Access-Client-Id"] = cfId;
  if (cfSecret) defaultHeaders["CF-Access-Client-Secret"] = cfSecret;
  Object.assign(defaultHeaders, options.defaultHeaders ?? {});
  const timeoutMs = options.timeoutMs ?? 60_000;
  if (!(timeoutMs > 0)) {
    throw new TinkerValidationError(
      "timeoutMs must be a positive number of milliseconds",
      "timeoutMs",
    );
  }
  const maxRetries = options.maxRetries ?? 10;
  if (!Number.isInteger(maxRetries) || maxRetries < 0) {
    throw new TinkerValidationError("maxRetries must be a non-negative integer", "maxRetries");
  }
  const credentialCmd = nonEmpty(options.credentialCmd) ?? nonEmpty(env.TINKER_CREDENTIAL_CMD);
  if (options.local === true && nonEmpty(options.baseUrl) !== undefined) {
    throw new TinkerValidationError(
      "local: true runs the embedded local server, so baseUrl must not be set; drop one of them",
      "local",
    );
  }
  const useLocalServer =
    options.local ??
    (apiKey === undefined && credentialCmd === undefined && explicitBaseUrl === undefined);
  return {
    // The embedded server needs no credential: never hand it the cloud key.
    apiKey: useLocalServer ? undefined : apiKey,
    credentialCmd: useLocalServer ? undefined : credentialCmd,
    baseUrl,
    projectId: nonEmpty(options.projectId) ?? nonEmpty(env.TINKER_PROJECT_ID),
    tags,
    userMetadata: { ...(options.userMetadata ?? {}) },
    telemetry: options.telemetry ?? (telemetryEnv !== undefined && TRUTHY.has(telemetryEnv)),
    logLevel,
    timeoutMs,
    maxRetries,
    defaultHeaders,
    wireFormat: options.wireFormat ?? "protobuf",
    timings: { ...DEFAULT_TIMINGS, ...(options.timings ?? {}) },
    tokenizerLoader: options.tokenizerLoader,
    useLocalServer,
    localServer: { ...(options.localServer ?? {}) },
  };
}
