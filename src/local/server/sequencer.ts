import type { FutureResult, FutureStore } from "./futures.js";
import { UserError } from "./futures.js";
import { HttpError } from "./http-error.js";

export interface SequencerOptions {
  /** The seq_id the first job must carry. */
  firstSeqId: number;
  /** How long later requests wait for a missing seq_id before they fail. */
  gapTimeoutMs: number;
  /** How far ahead of the next expected seq_id a request may be. */
  maxAhead?: number;
  /** How many executed seq_ids are remembered for duplicate detection. */
  dedupeWindow?: number;
}

interface Waiting {
  seqId: number;
  run: () => void;
  fail: (err: Error) => void;
}

/**
 * Runs one model's requests strictly in `seq_id` order, one at a time.
 *
 * - A request whose seq_id is already known returns the original request id (idempotent retries).
 * - A request ahead of the next expected seq_id waits for the gap to fill; if it does not fill within
 *   `gapTimeoutMs`, every waiting request fails with a message naming the missing seq_id, and the
 *   sequence resumes after them so the model stays usable.
 * - A request behind the sequence (its seq_id already executed or skipped) is rejected with 400.
 * - Requests without a seq_id run when no sequenced request is ready (e.g. `unload_model`).
 */
export class ModelSequencer {
  private nextSeq: number;
  private running = false;
  private closed: string | undefined;
  private readonly waiting = new Map<number, Waiting>();
  private readonly unsequenced: Waiting[] = [];
  private readonly seen = new Map<number, { kind: string; requestId: string }>();
  /** The last seq_id whose job actually ran (-1 before any). */
  private lastExecuted = -1;
  /** Seq_id ranges given up on after a gap timeout (inclusive), newest last, a few kept. */
  private readonly dropped: Array<{ from: number; to: number }> = [];
  private gapTimer: NodeJS.Timeout | undefined;
  private readonly gapTimeoutMs: number;
  private readonly maxAhead: number;
  private readonly dedupeWindow: number;

  constructor(
    private readonly futures: FutureStore,
    private readonly label: string,
    opts: SequencerOptions,
  ) {
    this.nextSeq = opts.firstSeqId;
    this.gapTimeoutMs = opts.gapTimeoutMs;
    this.maxAhead = opts.maxAhead ?? 100_000;
    this.dedupeWindow = opts.dedupeWindow ?? 4096;
  }

  /** The seq_id the next request must carry. */
  get expectedSeqId(): number {
    return this.nextSeq;
  }

  /**
   * Queues `job` at `seqId` and returns its request id (the original one for a duplicate).
   * Throws HttpError 400 for a seq_id that can never run.
   */
  submit(seqId: number | undefined, kind: string, job: () => Promise<FutureResult>): string {
    if (this.closed) throw new HttpError(404, this.closed);
    if (seqId === undefined) {
      return this.futures.start(() => this.enqueueUnsequenced(job));
    }
    if (!Number.isSafeInteger(seqId) || seqId < 0) {
      throw new HttpError(400, `seq_id must be a non-negative integer, got ${seqId}`);
    }
    const prior = this.seen.get(seqId);
    if (prior) {
      if (prior.kind === kind) return prior.requestId;
      throw new HttpError(
        400,
        `seq_id ${seqId} of ${this.label} was already used by a ${prior.kind} request; each request needs a new seq_id; the next expected seq_id is ${this.nextExpectedFree()}`,
      );
    }
    if (seqId < this.nextSeq) {
      const gap = this.dropped.find((d) => seqId >= d.from && seqId <= d.to);
      if (gap) {
        throw new HttpError(
          400,
          `seq_id ${seqId} of ${this.label} arrived too late: seq_ids ${gap.from}..${gap.to} were given up after a gap of more than ${duration(this.gapTimeoutMs)} and the requests waiting then were dropped; the next expected seq_id is ${this.nextExpectedFree()}`,
        );
      }
      const ran =
        this.lastExecuted < 0
          ? "has not executed any request yet"
          : `last executed seq_id ${this.lastExecuted}`;
      throw new HttpError(
        400,
        `seq_id ${seqId} of ${this.label} is out of order: the model ${ran}; the next expected seq_id is ${this.nextExpectedFree()}`,
      );
    }
    if (seqId > this.nextSeq + this.maxAhead) {
      throw new HttpError(
        400,
        `seq_id ${seqId} of ${this.label} is too far ahead of the next expected seq_id ${this.nextSeq}; number requests consecutively`,
      );
    }
    const requestId = this.futures.start(() => this.enqueue(seqId, job));
    this.seen.set(seqId, { kind, requestId });
    return requestId;
  }

  /**
   * Marks `seqId` as used by a request that was rejected before it could be queued (its error went
   * back with the HTTP answer), so requests behind it run at once instead of waiting for a gap
   * timeout. A seq_id that is invalid, already known or behind the sequence is left alone.
   */
  consume(seqId: number | undefined, kind: string, reason: string): void {
    if (this.closed || seqId === undefined || !Number.isSafeInteger(seqId)) return;
    if (seqId < this.nextSeq || seqId > this.nextSeq + this.maxAhead || this.seen.has(seqId)) {
      return;
    }
    const requestId = this.futures.start(() =>
      this.enqueue(
        seqId,
        async () => {
          throw new UserError(`this request was rejected when it was sent: ${reason}`);
        },
        false,
      ),
    );
    this.seen.set(seqId, { kind, requestId });
  }

  /** Fails every waiting request with `reason` and refuses new ones. */
  close(reason: string): void {
    this.closed = reason;
    clearTimeout(this.gapTimer);
    for (const w of this.waiting.values()) w.fail(new UserError(reason));
    for (const w of this.unsequenced) w.fail(new UserError(reason));
    this.waiting.clear();
    this.unsequenced.length = 0;
  }

  private nextExpectedFree(): number {
    let s = this.nextSeq;
    while (this.seen.has(s)) s++;
    return s;
  }

  private enqueue(
    seqId: number,
    job: () => Promise<FutureResult>,
    executes = true,
  ): Promise<FutureResult> {
    return new Promise<FutureResult>((resolve, reject) => {
      this.waiting.set(seqId, {
        seqId,
        run: () => this.execute(job, resolve, reject, true, executes ? seqId : undefined),
        fail: reject,
      });
      this.pump();
    });
  }

  private enqueueUnsequenced(job: () => Promise<FutureResult>): Promise<FutureResult> {
    return new Promise<FutureResult>((resolve, reject) => {
      this.unsequenced.push({
        seqId: -1,
        run: () => this.execute(job, resolve, reject, false),
        fail: reject,
      });
      this.pump();
    });
  }

  private execute(
    job: () => Promise<FutureResult>,
    resolve: (r: FutureResult) => void,
    reject: (e: unknown) => void,
    sequenced: boolean,
    executesSeq?: number,
  ): void {
    this.running = true;
    let p: Promise<FutureResult>;
    try {
      p = job();
    } catch (err) {
      p = Promise.reject(err);
    }
    p.then(resolve, reject).finally(() => {
      this.running = false;
      if (sequenced) {
        if (executesSeq !== undefined) this.lastExecuted = executesSeq;
        this.nextSeq++;
        this.prune();
      }
      this.pump();
    });
  }

  private pump(): void {
    if (this.running || this.closed) return;
    const next = this.waiting.get(this.nextSeq);
    if (next) {
      this.waiting.delete(this.nextSeq);
      this.clearGapTimer();
      next.run();
      return;
    }
    const free = this.unsequenced.shift();
    if (free) {
      free.run();
      return;
    }
    if (this.waiting.size > 0) this.armGapTimer();
    else this.clearGapTimer();
  }

  private armGapTimer(): void {
    if (this.gapTimer) return;
    this.gapTimer = setTimeout(() => this.onGapTimeout(), this.gapTimeoutMs);
    this.gapTimer.unref();
  }

  private clearGapTimer(): void {
    clearTimeout(this.gapTimer);
    this.gapTimer = undefined;
  }

  private onGapTimeout(): void {
    this.gapTimer = undefined;
    if (this.running || this.waiting.has(this.nextSeq) || this.waiting.size === 0) return;
    const missing = this.nextSeq;
    const ids = [...this.waiting.keys()].sort((a, b) => a - b);
    const last = ids[ids.length - 1]!;
    const message = `seq_id ${missing} of ${this.label} never arrived within ${duration(this.gapTimeoutMs)}, so the requests waiting behind it (seq_id ${ids.join(", ")}) were dropped; continue with seq_id ${last + 1}`;
    for (const id of ids) this.waiting.get(id)!.fail(new UserError(message));
    this.waiting.clear();
    this.dropped.push({ from: missing, to: last });
    if (this.dropped.length > 64) this.dropped.shift();
    this.nextSeq = last + 1;
    this.prune();
    this.pump();
  }

  private prune(): void {
    const floor = this.nextSeq - this.dedupeWindow;
    if (this.seen.size <= this.dedupeWindow) return;
    for (const k of this.seen.keys()) if (k < floor) this.seen.delete(k);
  }
}

function duration(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${Math.round(ms / 1000)} s`;
}
