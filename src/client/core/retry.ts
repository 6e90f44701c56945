import { APIConnectionError, APIStatusError } from "../errors.js";
import { sleep } from "./abort.js";
import { exponentialBackoffMs } from "./backoff.js";
import type { Logger } from "./logger.js";

/**
 * Tracks the "billing pause" of the reference: after a first 402, calls keep retrying for up to
 * `maxPauseMs` (server flag `billing_exception_max_pause_duration_sec`, default 1 h). The window
 * starts again when no 402 was seen for `resetMs` (5 min).
 */
export class BillingPause {
  private firstAt: number | undefined;
  private lastAt: number | undefined;
  maxPauseMs: number;

  constructor(
    maxPauseMs = 3_600_000,
    private readonly resetMs = 300_000,
    private readonly now: () => number = Date.now,
  ) {
    this.maxPauseMs = maxPauseMs;
  }

  /** Record a 402; true while it is still within the window (keep retrying). */
  onPaymentRequired(): boolean {
    const t = this.now();
    if (this.firstAt === undefined || this.lastAt === undefined || t - this.lastAt > this.resetMs) {
      this.firstAt = t;
    }
    this.lastAt = t;
    return t - this.firstAt < this.maxPauseMs;
  }
}

/** Layer-2 retryable failures: timeouts, connection errors, 408, 409, 429, 5xx. */
export function isRetryableError(err: unknown): boolean {
  if (err instanceof APIConnectionError) return true;
  if (err instanceof APIStatusError) {
    const s = err.status;
    return s === 408 || s === 409 || s === 429 || s >= 500;
  }
  return false;
}

export interface RetryLoopOptions {
  /** Total budget from the first attempt (default 300 s). */
  budgetMs?: number;
  baseMs?: number;
  capMs?: number;
  /** Shared billing window; when absent, 402 is fatal. */
  billing?: BillingPause;
  billingRetryMs?: number;
  signal?: AbortSignal | undefined;
  logger?: Logger;
  /** Name of the operation, for log lines. */
  what?: string;
  /** Extra rule: which errors this call retries (default `isRetryableError`). */
  retryable?: (err: unknown) => boolean;
}

/**
 * Retry layer 2 (`execute_with_retries` of the reference): re-run `fn` on retryable failures with
 * `min(2^n, 30)` s back-off until the budget (300 s) is spent; 402 sleeps 5 s within the billing
 * window without consuming attempts. The last error is re-thrown unchanged.
 */
export async function executeWithRetries<T>(
  fn: (attempt: number) => Promise<T>,
  opts: RetryLoopOptions = {},
): Promise<T> {
  const budgetMs = opts.budgetMs ?? 300_000;
  const retryable = opts.retryable ?? isRetryableError;
  const start = Date.now();
  let attempt = 0;
  for (let call = 0; ; call++) {
    try {
      return await fn(call);
    } catch (err) {
      if (err instanceof APIStatusError && err.status === 402 && opts.billing) {
        if (opts.billing.onPaymentRequired()) {
          opts.logger?.warn(
            `${opts.what ?? "request"}: payment required (402); retrying while the billing issue is resolved`,
          );
          await sleep(opts.billingRetryMs ?? 5_000, opts.signal);
          continue;
        }
        throw err;
      }
      if (!retryable(err)) throw err;
      const elapsed = Date.now() - start;
      if (elapsed >= budgetMs) throw err;
      const delay = Math.min(
        exponentialBackoffMs(attempt, opts.baseMs, opts.capMs),
        budgetMs - elapsed,
      );
      opts.logger?.debug(
        `${opts.what ?? "request"} failed (${(err as Error).message}); attempt ${attempt + 2} in ${delay} ms`,
      );
      attempt++;
      await sleep(delay, opts.signal);
    }
  }
}
