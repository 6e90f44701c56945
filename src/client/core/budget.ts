import { abortError, throwIfAborted } from "./abort.js";

/**
 * A "soft" byte budget, as in the reference: a reservation is granted at once unless the budget
 * is already negative, in which case it waits until releases bring it back to >= 0. One huge
 * request therefore never deadlocks; it just stops the next ones.
 */
export class SoftByteBudget {
  private available: number;
  private readonly waiters: Array<() => void> = [];

  constructor(capacity: number) {
    this.available = capacity;
  }

  /** Bytes left (negative while over-committed). */
  get remaining(): number {
    return this.available;
  }

  /** Reserve `bytes`; resolves with a release function (idempotent). */
  async acquire(bytes: number, signal?: AbortSignal): Promise<() => void> {
    while (this.available < 0) {
      throwIfAborted(signal);
      await new Promise<void>((resolve, reject) => {
        const onAbort = () => {
          const i = this.waiters.indexOf(wake);
          if (i >= 0) this.waiters.splice(i, 1);
          reject(abortError(signal!));
        };
        const wake = () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        };
        this.waiters.push(wake);
        signal?.addEventListener("abort", onAbort, { once: true });
      });
    }
    this.available -= bytes;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.available += bytes;
      if (this.available >= 0) {
        for (const w of this.waiters.splice(0)) w();
      }
    };
  }
}

/** A counting semaphore with FIFO wake-up; `limit` can change at run time (server flags). */
export class Semaphore {
  private active = 0;
  private readonly queue: Array<() => void> = [];

  constructor(private limitValue: number) {}

  get limit(): number {
    return this.limitValue;
  }

  set limit(n: number) {
    this.limitValue = Math.max(1, n);
    this.drain();
  }

  get inFlight(): number {
    return this.active;
  }

  async acquire(signal?: AbortSignal): Promise<() => void> {
    if (this.active >= this.limitValue) {
      await new Promise<void>((resolve, reject) => {
        const onAbort = () => {
          const i = this.queue.indexOf(wake);
          if (i >= 0) this.queue.splice(i, 1);
          reject(abortError(signal!));
        };
        const wake = () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        };
        throwIfAborted(signal);
        this.queue.push(wake);
        signal?.addEventListener("abort", onAbort, { once: true });
      });
    } else {
      this.active++;
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.active--;
      this.drain();
    };
  }

  private drain(): void {
    while (this.active < this.limitValue && this.queue.length > 0) {
      this.active++;
      this.queue.shift()!();
    }
  }
}
