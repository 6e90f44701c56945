import { randomUUID } from "node:crypto";
import { TinkerValidationError } from "../../client/errors.js";
import type { ForwardBackwardOutput, SampleResponse } from "../../client/types/outputs.js";
import { scrubPaths } from "./http-error.js";

/** What a future resolves to: plain JSON, or a result that has a protobuf encoding too. */
export type FutureResult =
  | { kind: "json"; value: Record<string, unknown> }
  | { kind: "forward_backward"; value: ForwardBackwardOutput }
  | { kind: "sample"; value: SampleResponse };

/** A failed future, sent as `{"error", "category"}`. */
export interface FutureFailure {
  message: string;
  category: "user" | "server" | "unknown";
}

export type FutureState =
  | { status: "pending" }
  | { status: "done"; result: FutureResult }
  | { status: "failed"; failure: FutureFailure };

interface Entry {
  id: string;
  state: FutureState;
  /** Encoded bodies, by format, computed once. */
  encoded: Map<string, Uint8Array>;
  waiters: Set<() => void>;
  settledAt: number;
  retrievedAt: number;
}

export interface FutureStoreOptions {
  /** How long a result stays retrievable after its first retrieval (clients re-poll after timeouts). */
  retrievedGraceMs?: number;
  /** How long a finished result nobody retrieved is kept. */
  unretrievedTtlMs?: number;
  now?: () => number;
}

/**
 * Results of asynchronous requests, addressed by `request_id`. A finished result is kept until it is
 * retrieved plus a grace period (a client that abandoned a long poll can ask again), and unretrieved
 * results expire after a longer TTL so memory stays bounded.
 */
export class FutureStore {
  private readonly entries = new Map<string, Entry>();
  /** Ids swept recently, so a late poll gets "expired" (410) rather than "unknown" (404). */
  private readonly expired = new Set<string>();
  private readonly graceMs: number;
  private readonly ttlMs: number;
  private readonly now: () => number;

  constructor(opts: FutureStoreOptions = {}) {
    this.graceMs = opts.retrievedGraceMs ?? 120_000;
    this.ttlMs = opts.unretrievedTtlMs ?? 3_600_000;
    this.now = opts.now ?? Date.now;
  }

  /** Registers `work` under a new request id and settles the future with its outcome. */
  start(work: () => Promise<FutureResult>): string {
    const id = `req-${randomUUID()}`;
    const entry: Entry = {
      id,
      state: { status: "pending" },
      encoded: new Map(),
      waiters: new Set(),
      settledAt: 0,
      retrievedAt: 0,
    };
    this.entries.set(id, entry);
    work().then(
      (result) => this.settle(entry, { status: "done", result }),
      (err: unknown) => this.settle(entry, { status: "failed", failure: failureOf(err) }),
    );
    return id;
  }

  get(id: string): FutureState | undefined {
    return this.entries.get(id)?.state;
  }

  /** Number of futures held (pending or finished). */
  get size(): number {
    return this.entries.size;
  }

  /** Number of futures not yet finished. */
  pendingCount(): number {
    let n = 0;
    for (const e of this.entries.values()) if (e.state.status === "pending") n++;
    return n;
  }

  /**
   * Waits until the future settles or `holdMs` passes (or `signal` aborts). Resolves to the state
   * at that moment, or undefined when the id is unknown (never issued, or expired).
   */
  async wait(id: string, holdMs: number, signal?: AbortSignal): Promise<FutureState | undefined> {
    const entry = this.entries.get(id);
    if (!entry) return undefined;
    if (entry.state.status === "pending" && holdMs > 0 && !signal?.aborted) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          entry.waiters.delete(done);
          signal?.removeEventListener("abort", done);
          resolve();
        };
        const timer = setTimeout(done, holdMs);
        entry.waiters.add(done);
        signal?.addEventListener("abort", done, { once: true });
      });
    }
    return entry.state;
  }

  /** Whether `id` was issued here and has since expired. */
  wasExpired(id: string): boolean {
    return this.expired.has(id);
  }

  /** Marks a finished future as delivered: it now expires after the grace period. */
  markRetrieved(id: string): void {
    const entry = this.entries.get(id);
    if (entry && entry.retrievedAt === 0) entry.retrievedAt = this.now();
  }

  /** Encoded body cache: encode a finished result once per format. */
  encodedBody(id: string, format: string, encode: () => Uint8Array): Uint8Array {
    const entry = this.entries.get(id);
    if (!entry) return encode();
    let bytes = entry.encoded.get(format);
    if (!bytes) {
      bytes = encode();
      entry.encoded.set(format, bytes);
    }
    return bytes;
  }

  /** Drops expired results. Returns how many were removed. */
  sweep(): number {
    const t = this.now();
    let removed = 0;
    for (const [id, e] of this.entries) {
      if (e.state.status === "pending") continue;
      const expired =
        (e.retrievedAt > 0 && t - e.retrievedAt > this.graceMs) ||
        (e.retrievedAt === 0 && t - e.settledAt > this.ttlMs);
      if (expired) {
        this.entries.delete(id);
        this.expired.add(id);
        removed++;
      }
    }
    // Remember at most 100k expired ids (a Set iterates oldest first).
    for (const id of this.expired) {
      if (this.expired.size <= 100_000) break;
      this.expired.delete(id);
    }
    return removed;
  }

  private settle(entry: Entry, state: FutureState): void {
    entry.state = state;
    entry.settledAt = this.now();
    for (const w of [...entry.waiters]) w();
  }
}

/**
 * Validation problems are the caller's to fix ("user"); anything else is the server's. Messages
 * never carry server file system paths.
 */
export function failureOf(err: unknown): FutureFailure {
  if (err instanceof TinkerValidationError) {
    const field = err.field ? ` (field "${err.field}")` : "";
    return { message: scrubPaths(`${err.message}${field}`), category: "user" };
  }
  if (err instanceof UserError) return { message: scrubPaths(err.message), category: "user" };
  const message = err instanceof Error ? err.message : String(err);
  return { message: scrubPaths(message), category: "server" };
}

/** A request that was accepted but cannot be carried out because of what it asked for. */
export class UserError extends Error {
  override name = "UserError";
}
