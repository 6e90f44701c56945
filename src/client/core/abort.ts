import { APITimeoutError, APIUserAbortError } from "../errors.js";

/** Throw `APIUserAbortError` if `signal` already fired. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortError(signal);
}

/** The error a fired signal stands for: our own timeout errors pass through, else a user abort. */
export function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof APITimeoutError || reason instanceof APIUserAbortError) return reason;
  return new APIUserAbortError("Request was aborted.", { cause: reason });
}

/** Resolve after `ms`, or reject with the abort error when `signal` fires first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(abortError(signal));
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortError(signal!));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * A signal that fires when any input fires, or after `timeoutMs` with an `APITimeoutError`.
 * Call `dispose()` when done so no timer or listener outlives the operation.
 */
export function linkedSignal(
  inputs: ReadonlyArray<AbortSignal | undefined>,
  timeoutMs?: number,
  timeoutMessage?: string,
): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  const cleanups: Array<() => void> = [];
  for (const s of inputs) {
    if (!s) continue;
    if (s.aborted) {
      controller.abort(s.reason);
      break;
    }
    const onAbort = () => controller.abort(s.reason);
    s.addEventListener("abort", onAbort, { once: true });
    cleanups.push(() => s.removeEventListener("abort", onAbort));
  }
  if (timeoutMs !== undefined && Number.isFinite(timeoutMs) && !controller.signal.aborted) {
    const timer = setTimeout(
      () =>
        controller.abort(new APITimeoutError(timeoutMessage ?? `Timed out after ${timeoutMs} ms.`)),
      timeoutMs,
    );
    cleanups.push(() => clearTimeout(timer));
  }
  return {
    signal: controller.signal,
    dispose: () => {
      for (const c of cleanups) c();
    },
  };
}
