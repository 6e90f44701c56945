import { sleep } from "./core/abort.js";
import { Semaphore, SoftByteBudget } from "./core/budget.js";
import type { ModelInput } from "./types/model-input.js";

const MAX_SUBMITS = 400;
const MAX_SUBMITS_THROTTLED = 10;
const THROTTLE_WINDOW_MS = 10_000;
const BACKOFF_BYTE_PENALTY = 20;

/** Estimated submit bytes of a prompt (text tokens x 10, image and dmel bytes, pointer length). */
export function estimatePromptBytes(prompt: ModelInput): number {
  let n = 0;
  for (const c of prompt.chunks) {
    if (c.type === "encoded_text") n += c.tokens.length * 10;
    else if (c.type === "image") n += c.data.length;
    else if (c.type === "image_asset_pointer") n += c.location.length;
    else n += c.dmel.length;
  }
  return n;
}

/**
 * Client-side flow control of `asample` submissions (reference §6.5): at most 400 concurrent
 * submits, 10 while a 429 was seen in the last 10 s; a soft prompt-byte budget (server flag
 * `sample_dispatch_bytes_semaphore_size`), charged 20x while backing off; and the shared
 * "back off until" instant that every submitter waits for after a 429.
 */
export class SampleDispatcher {
  private readonly submits = new Semaphore(MAX_SUBMITS);
  private readonly throttled = new Semaphore(MAX_SUBMITS_THROTTLED);
  private readonly bytes: SoftByteBudget;
  private backoffUntil = 0;
  private last429 = -Infinity;

  constructor(byteBudget: number) {
    this.bytes = new SoftByteBudget(byteBudget);
  }

  private get backingOff(): boolean {
    return Date.now() - this.last429 < THROTTLE_WINDOW_MS;
  }

  /** Wait for a submission slot; resolves with its release function. */
  async acquire(promptBytes: number, signal?: AbortSignal): Promise<() => void> {
    const wait = this.backoffUntil - Date.now();
    if (wait > 0) await sleep(wait, signal);
    const throttled = this.backingOff;
    const releases: Array<() => void> = [];
    try {
      releases.push(await this.submits.acquire(signal));
      if (throttled) releases.push(await this.throttled.acquire(signal));
      releases.push(
        await this.bytes.acquire(promptBytes * (throttled ? BACKOFF_BYTE_PENALTY : 1), signal),
      );
    } catch (err) {
      for (const r of releases) r();
      throw err;
    }
    return () => {
      for (const r of releases) r();
    };
  }

  /** Record a 429: everyone waits `ms` before the next submission. */
  onRateLimited(ms: number): number {
    const now = Date.now();
    this.last429 = now;
    this.backoffUntil = Math.max(this.backoffUntil, now + ms);
    return this.backoffUntil - now;
  }
}
