import { TinkerError } from "../errors.js";
import type { Logger } from "./logger.js";

/** The claims of a JWT, decoded without verifying the signature; `undefined` if not a JWT. */
function decodeClaims(token: string): Record<string, unknown> | undefined {
  const payload = token.split(".")[1];
  if (payload === undefined) return undefined;
  try {
    const claims: unknown = JSON.parse(Buffer.from(payload, "base64url").toString("utf8"));
    return claims !== null && typeof claims === "object" && !Array.isArray(claims)
      ? (claims as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/** Seconds-since-epoch `exp` claim of a JWT, read without verifying the signature. */
export function jwtExpiry(token: string): number | undefined {
  const exp = decodeClaims(token)?.exp;
  return typeof exp === "number" ? exp : undefined;
}

/** Claims of a JWT (no signature check), e.g. for `whoami`. */
export function jwtClaims(token: string): Record<string, unknown> {
  const claims = decodeClaims(token);
  if (claims === undefined) throw new TinkerError("The credential is not a decodable JWT.");
  return claims;
}

export interface JwtManagerOptions {
  /** Exchange the durable credential for a JWT (`POST /api/v1/auth/token`). */
  exchange: () => Promise<string>;
  logger: Logger;
  refreshBeforeMs: number;
  onDemandMs: number;
  retryMs: number;
  now?: () => number;
}

/**
 * Holds the short-lived JWT: refreshes it in the background `refreshBeforeMs` before `exp`
 * (on an unref'd timer), on demand when a request finds at most `onDemandMs` left, and retries a
 * failed background refresh after `retryMs`. A failed on-demand refresh keeps the old token
 * (the server decides whether it is still good).
 */
export class JwtManager {
  private token: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private refreshing: Promise<string> | undefined;
  private stopped = false;
  private readonly now: () => number;

  constructor(private readonly opts: JwtManagerOptions) {
    this.now = opts.now ?? Date.now;
  }

  /** The current token (exchanging the first one if needed). */
  async get(): Promise<string> {
    if (this.token === undefined) return this.refresh();
    const exp = jwtExpiry(this.token);
    if (exp !== undefined && exp * 1000 - this.now() <= this.opts.onDemandMs) {
      try {
        return await this.refresh();
      } catch (err) {
        this.opts.logger.warn(
          `JWT refresh failed; using the current token (${(err as Error).message})`,
        );
      }
    }
    return this.token;
  }

  /** The token held now, without refreshing (for redaction and whoami). */
  peek(): string | undefined {
    return this.token;
  }

  /** Exchange now; concurrent callers share one exchange. */
  refresh(): Promise<string> {
    if (!this.refreshing) {
      this.refreshing = this.opts
        .exchange()
        .then((t) => {
          this.token = t;
          this.schedule();
          return t;
        })
        .finally(() => {
          this.refreshing = undefined;
        });
    }
    return this.refreshing;
  }

  private schedule(delayMs?: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    let delay = delayMs;
    if (delay === undefined) {
      const exp = this.token === undefined ? undefined : jwtExpiry(this.token);
      if (exp === undefined) return;
      delay = Math.max(0, exp * 1000 - this.now() - this.opts.refreshBeforeMs);
    }
    this.timer = setTimeout(
      () => {
        this.refresh().catch((err: unknown) => {
          this.opts.logger.warn(
            `Background JWT refresh failed; retrying in ${this.opts.retryMs / 1000} s (${(err as Error).message})`,
          );
          this.schedule(this.opts.retryMs);
        });
      },
      Math.min(delay, 2 ** 31 - 1),
    );
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
