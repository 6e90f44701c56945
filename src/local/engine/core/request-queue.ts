import type { SampleResponse } from "../../../client/types/outputs.js";
import type { EngineSampleRequest } from "../api.js";

/** A decode session on one model and adapter that sample requests can join between steps. */
export interface EngineSampling {
  /** True while some admitted sample is still generating. */
  readonly live: boolean;
  /**
   * The KV cache bytes `req` would add if it can join now (same model and adapter, within the
   * session's budget given `pendingBytes` of `pendingCount` requests joining with it), else null.
   */
  joinBytes(req: EngineSampleRequest, pendingBytes: number, pendingCount: number): number | null;
  /** Prefill and start `reqs`; `done(i, result)` reports each when it completes or fails. */
  admit(
    reqs: readonly EngineSampleRequest[],
    done: (i: number, res: SampleResponse | Error) => void,
  ): void;
  /** One decode step for every live sample. */
  step(): void;
  dispose(): void;
}

/** What the queue needs from the engine: decode sessions that requests can join. */
export interface BatchSampler {
  openSampling(first: EngineSampleRequest): Promise<EngineSampling>;
}

interface TaskJob {
  kind: "task";
  run: () => unknown;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

interface SampleJob {
  kind: "sample";
  req: EngineSampleRequest;
  resolve: (v: SampleResponse) => void;
  reject: (e: unknown) => void;
}

type Job = TaskJob | SampleJob;

/**
 * The engine's request order. Jobs run one at a time in arrival order (a forward_backward submitted
 * before an optim_step is applied before it), except sampling, which changes no state: a sample
 * request at the head of the line opens a decode session, and every sample request for the same
 * model and adapter that is in line before the next other job joins it, also while it runs
 * (continuous batching: the queue yields to the event loop after every decode step, so requests
 * that arrived meanwhile are in line). All samples in a session advance in the same steps, one pass
 * over the weights per token for all of them; each request completes as soon as its samples stop.
 */
export class EngineRequestQueue {
  private readonly jobs: Job[] = [];
  private pumping = false;

  constructor(private readonly sampler: BatchSampler) {}

  /** Run `fn` in order. */
  run<T>(fn: () => T | Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.jobs.push({ kind: "task", run: fn, resolve: resolve as (v: unknown) => void, reject });
      this.kick();
    });
  }

  /** Sample in order, decoded together with the sample requests around it. */
  sample(req: EngineSampleRequest): Promise<SampleResponse> {
    return new Promise<SampleResponse>((resolve, reject) => {
      this.jobs.push({ kind: "sample", req, resolve, reject });
      this.kick();
    });
  }

  private kick(): void {
    if (this.pumping) return;
    this.pumping = true;
    setImmediate(() => void this.pump());
  }

  private async pump(): Promise<void> {
    try {
      while (this.jobs.length > 0) {
        const head = this.jobs[0]!;
        if (head.kind === "task") {
          this.jobs.shift();
          try {
            head.resolve(await head.run());
          } catch (err) {
            head.reject(err);
          }
        } else {
          await this.runSampling(head);
        }
        // Let messages that arrived while this job ran join the queue before the next pick.
        await yieldToEventLoop();
      }
    } finally {
      this.pumping = false;
      if (this.jobs.length > 0) this.kick();
    }
  }

  /** Open a session for `head` and keep admitting joinable sample jobs until it drains. */
  private async runSampling(head: SampleJob): Promise<void> {
    let session: EngineSampling;
    try {
      session = await this.sampler.openSampling(head.req);
    } catch (err) {
      this.jobs.splice(this.jobs.indexOf(head), 1);
      head.reject(err);
      return;
    }
    const running = new Set<SampleJob>();
    try {
      for (;;) {
        const take = this.joinable(session, head);
        for (const job of take) running.add(job);
        session.admit(
          take.map((j) => j.req),
          (i, res) => {
            const job = take[i]!;
            running.delete(job);
            if (res instanceof Error) job.reject(res);
            else job.resolve(res);
          },
        );
        if (!session.live) break;
        session.step();
        await yieldToEventLoop();
      }
    } catch (err) {
      for (const job of running) job.reject(err);
    } finally {
      session.dispose();
    }
  }

  /**
   * Removes from the line and returns the sample jobs that can join `session` now: those before the
   * first job of another kind (nothing overtakes it) that the session accepts. `head`, the job that
   * opened the session, is always taken while it is in line.
   */
  private joinable(session: EngineSampling, head: SampleJob): SampleJob[] {
    const take: SampleJob[] = [];
    let bytes = 0;
    for (let i = 0; i < this.jobs.length; ) {
      const job = this.jobs[i]!;
      if (job.kind !== "sample") break;
      const need = session.joinBytes(job.req, bytes, take.length) ?? (job === head ? 0 : null);
      if (need === null) {
        i++;
        continue;
      }
      bytes += need;
      take.push(job);
      this.jobs.splice(i, 1);
    }
    return take;
  }
}

function yieldToEventLoop(): Promise<void> {
  return new Promise<void>((resolve) => setImmediate(resolve));
}
