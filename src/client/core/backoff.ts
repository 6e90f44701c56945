/** Back-off arithmetic of the three retry layers (all in milliseconds). */

/** Layer 1 (HTTP): `min(base * 2^n, cap)` scaled by a jitter factor in [0.75, 1]. */
export function httpBackoffMs(
  retriesTaken: number,
  baseMs = 500,
  capMs = 10_000,
  random: () => number = Math.random,
): number {
  const raw = Math.min(baseMs * 2 ** retriesTaken, capMs);
  return raw * (1 - 0.25 * random());
}

/** Layers 2 and 3: `min(base * 2^n, cap)`, no jitter. */
export function exponentialBackoffMs(attempt: number, baseMs = 1_000, capMs = 30_000): number {
  return Math.min(baseMs * 2 ** attempt, capMs);
}

/** Sampling retry handler: `min(base * 2^n, cap)` +/- 25 %. */
export function jitteredBackoffMs(
  attempt: number,
  baseMs = 500,
  capMs = 10_000,
  random: () => number = Math.random,
): number {
  return Math.min(baseMs * 2 ** attempt, capMs) * (0.75 + 0.5 * random());
}

/**
 * Delay the server asked for via `retry-after-ms` (ms) or `retry-after` (seconds or an HTTP
 * date). Only hints in (0, 60 s] are honoured; anything else gives `undefined`.
 */
export function retryAfterMs(
  headers: Readonly<Record<string, string>>,
  now: number = Date.now(),
): number | undefined {
  let ms: number | undefined;
  const msHeader = headers["retry-after-ms"];
  if (msHeader !== undefined) {
    const v = Number.parseFloat(msHeader);
    if (Number.isFinite(v)) ms = v;
  }
  if (ms === undefined) {
    const h = headers["retry-after"];
    if (h !== undefined) {
      const secs = Number(h.trim());
      if (h.trim() !== "" && Number.isFinite(secs)) ms = secs * 1000;
      else {
        const date = Date.parse(h);
        if (Number.isFinite(date)) ms = date - now;
      }
    }
  }
  if (ms === undefined || !(ms > 0) || ms > 60_000) return undefined;
  return ms;
}
