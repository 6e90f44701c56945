/**
 * Logging for the client runtime. Any object with `debug/info/warn/error` methods works
 * (`console`, a pino or winston logger). Every message and argument passes through a redactor
 * first, so API keys and JWTs never reach the sink.
 */

/** The logger shape we accept: a subset of `console`, pino and winston. */
export interface Logger {
  debug(message: string, ...args: unknown[]): void;
  info(message: string, ...args: unknown[]): void;
  warn(message: string, ...args: unknown[]): void;
  error(message: string, ...args: unknown[]): void;
}

export type LogLevel = "off" | "error" | "warn" | "info" | "debug";

const LEVEL_RANK: Record<LogLevel, number> = { off: 0, error: 1, warn: 2, info: 3, debug: 4 };

/** Parse a `TINKER_LOG`-style value; unknown values give `undefined`. */
export function parseLogLevel(value: string | undefined): LogLevel | undefined {
  if (!value) return undefined;
  const v = value.trim().toLowerCase();
  if (v === "warning") return "warn";
  return v in LEVEL_RANK ? (v as LogLevel) : undefined;
}

// `tml-` API keys and anything shaped like a JWT (three base64url segments starting with eyJ).
const KEY_PATTERN = /tml-[A-Za-z0-9_\-.]+/g;
const JWT_PATTERN = /eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.?[A-Za-z0-9_-]*/g;

/** Replace every known secret and every key- or JWT-shaped token in `text`. */
export function redactText(text: string, secrets: Iterable<string> = []): string {
  let out = text;
  for (const s of secrets) {
    if (s.length >= 4) out = out.split(s).join("[redacted]");
  }
  return out.replace(KEY_PATTERN, "tml-[redacted]").replace(JWT_PATTERN, "eyJ[redacted]");
}

const SECRET_HEADER = /^(x-api-key|authorization|cf-access-client-secret|api-key)$/i;

function redactValue(value: unknown, secrets: readonly string[], depth: number): unknown {
  if (typeof value === "string") return redactText(value, secrets);
  if (value instanceof Error) {
    const copy = new Error(redactText(value.message, secrets));
    copy.name = value.name;
    if (value.stack) copy.stack = redactText(value.stack, secrets);
    return copy;
  }
  if (depth > 4 || value === null || typeof value !== "object") return value;
  if (ArrayBuffer.isView(value)) return value;
  if (Array.isArray(value)) return value.map((v) => redactValue(v, secrets, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = SECRET_HEADER.test(k) ? "[redacted]" : redactValue(v, secrets, depth + 1);
  }
  return out;
}

/**
 * Wrap `sink` so that messages below `level` are dropped and every argument is redacted.
 * `secrets()` is consulted on each call, so keys learnt later (a refreshed JWT) are covered.
 */
export class RedactingLogger implements Logger {
  readonly level: LogLevel;
  private readonly sink: Logger;
  private readonly secrets: () => readonly string[];

  constructor(sink: Logger, level: LogLevel, secrets: () => readonly string[] = () => []) {
    this.sink = sink;
    this.level = level;
    this.secrets = secrets;
  }

  enabled(level: Exclude<LogLevel, "off">): boolean {
    return LEVEL_RANK[level] <= LEVEL_RANK[this.level];
  }

  debug(message: string, ...args: unknown[]): void {
    this.emit("debug", message, args);
  }
  info(message: string, ...args: unknown[]): void {
    this.emit("info", message, args);
  }
  warn(message: string, ...args: unknown[]): void {
    this.emit("warn", message, args);
  }
  error(message: string, ...args: unknown[]): void {
    this.emit("error", message, args);
  }

  private emit(level: Exclude<LogLevel, "off">, message: string, args: unknown[]): void {
    if (!this.enabled(level)) return;
    const secrets = this.secrets();
    const clean = args.map((a) => redactValue(a, secrets, 0));
    this.sink[level](redactText(`[tinker] ${message}`, secrets), ...clean);
  }
}

/**
 * Logs one message per key at most every `intervalMs` (queue-state notices during long polls).
 */
export class RateLimitedLog {
  private readonly last = new Map<string, number>();
  constructor(
    private readonly intervalMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** True when a message under `key` may be logged now (and records that it was). */
  allow(key: string): boolean {
    const t = this.now();
    const prev = this.last.get(key);
    if (prev !== undefined && t - prev < this.intervalMs) return false;
    this.last.set(key, t);
    return true;
  }
}
