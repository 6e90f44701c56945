import type { SampleResponse } from "../../../client/types/outputs.js";
import type { EngineSampleRequest } from "../api.js";

/** What the queue needs from the engine: run several sample requests at once. */
export interface BatchSampler {
  sampleMany(reqs: readonly EngineSampleRequest[]): Promise<Array<SampleResponse | Error>>;
}

type Job =
  | {
      kind: "task";
      run: () => unknown;
      resolve: (v: unknown) => void;
      reject: (e: unknown) => void;
    }
  | {
      kind: "sample";
      req: EngineSampleRequest;
      resolve: (v: SampleResponse) => void;
      reject: (e: unknown) => void;
    };

/**
 * The engine's request order. Jobs run one at a time in arrival order (a forward_backward submitted
 * before an optim_step is applied before it), except that sample requests waiting next to each
 * other when the engine frees up run as one batch: sampling changes no state, and a batch decodes
 * every request's samples in the same steps (one pass over the weights per token for all of them).
 * Before each pick the queue yields to the event loop, so requests that arrived while the engine
 * was busy are all in line.
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

  /** Sample in order, batched with the sample requests queued next to it. */
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
          let n = 1;
          while (this.jobs[n]?.kind === "sample") n++;
          const batch = this.jobs.splice(0, n) as Array<Extract<Job, { kind: "sample" }>>;
          try {
            const results = await this.sampler.sampleMany(batch.map((j) => j.req));
            batch.forEach((j, i) => {
              const r = results[i];
              if (r instanceof Error || r === undefined) j.reject(r ?? new Error("no result"));
              else j.resolve(r);
            });
          } catch (err) {
            for (const j of batch) j.reject(err);
          }
        }
        // Let messages that arrived while this job ran join the queue before the next pick.
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    } finally {
      this.pumping = false;
      if (this.jobs.length > 0) this.kick();
    }
  }
}
