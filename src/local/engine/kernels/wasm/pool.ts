import { Worker } from "node:worker_threads";
import { TinkerError } from "../../../../client/errors.js";
import { type KernelExports, PARALLEL_OPS, type ParallelOp } from "./exports.js";
import type { WasmMemory, WasmModule } from "./wasm-api.js";
import { WORKER_SOURCE } from "./worker-source.js";

/** Per-worker state word in the control block. */
enum WorkerState {
  Idle = 0,
  Go = 1,
  Done = 2,
  Exit = 3,
  Error = 4,
  Ready = 5,
}

/** Control block layout (Int32 words): op, argument count, thread count, then one state per worker. */
const OP = 0;
const NARGS = 1;
const NTHR = 2;
const STATE = 8;
/** Bytes reserved for the control block and the float64 argument area. */
export const CONTROL_BYTES = 128 * 4;
export const ARGS_BYTES = 32 * 8;
export const MAX_THREADS = 64;

/** Busy-poll iterations before sleeping in Atomics.wait (tens of microseconds). */
const SPINS = 20000;
const START_TIMEOUT_MS = 30_000;

const opIndex = new Map<ParallelOp, number>(PARALLEL_OPS.map((name, i) => [name, i]));

/**
 * The calling thread plus `threads - 1` workers running the same module on one shared memory. Jobs
 * are posted through the control block; the caller does share 0 itself, then waits for the others.
 * `run` is synchronous and may be called from the main thread (Node allows Atomics.wait there).
 */
export class ThreadPool {
  private readonly ctrl: Int32Array;
  private readonly args: Float64Array;
  private readonly workers: Worker[] = [];
  private disposed = false;

  constructor(
    private readonly local: KernelExports,
    module: WasmModule,
    memory: WasmMemory,
    ctrlOffset: number,
    argsOffset: number,
    readonly threads: number,
    scratchOf: (tid: number) => number,
  ) {
    this.ctrl = new Int32Array(memory.buffer, ctrlOffset, CONTROL_BYTES / 4);
    this.args = new Float64Array(memory.buffer, argsOffset, ARGS_BYTES / 8);
    for (let slot = 1; slot < threads; slot++) {
      Atomics.store(this.ctrl, STATE + slot, WorkerState.Idle);
      const worker = new Worker(WORKER_SOURCE, {
        eval: true,
        workerData: {
          module,
          memory,
          ctrlOffset,
          argsOffset,
          slot,
          scratch: scratchOf(slot),
          ops: PARALLEL_OPS,
          spins: SPINS,
        },
      });
      worker.unref();
      this.workers.push(worker);
    }
    // Synchronous start-up: workers start on their own threads while this one waits.
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (let slot = 1; slot < threads; slot++) {
      const idx = STATE + slot;
      for (;;) {
        const s = Atomics.load(this.ctrl, idx);
        if (s === WorkerState.Ready) break;
        if (s === WorkerState.Error || Date.now() > deadline) {
          this.dispose();
          throw new TinkerError(`wasm kernels: worker ${slot} failed to start`);
        }
        Atomics.wait(this.ctrl, idx, s, 100);
      }
    }
  }

  /**
   * Runs `op(...args, tid, nthr)` on every thread (or only here when `parallel` is false) and
   * returns when all shares are done.
   */
  run(op: ParallelOp, args: number[], parallel: boolean): void {
    if (this.disposed) throw new TinkerError("wasm kernels: used after dispose()");
    const fn = this.local[op];
    if (!parallel || this.threads === 1) {
      fn(...args, 0, 1);
      return;
    }
    const ctrl = this.ctrl;
    const n = this.threads;
    for (let i = 0; i < args.length; i++) this.args[i] = args[i]!;
    ctrl[OP] = opIndex.get(op)!;
    ctrl[NARGS] = args.length;
    ctrl[NTHR] = n;
    for (let slot = 1; slot < n; slot++) {
      Atomics.store(ctrl, STATE + slot, WorkerState.Go);
      Atomics.notify(ctrl, STATE + slot);
    }
    let failure: unknown;
    try {
      fn(...args, 0, n);
    } catch (err) {
      failure = err;
    }
    let workerFailed = false;
    for (let slot = 1; slot < n; slot++) {
      const idx = STATE + slot;
      let s = Atomics.load(ctrl, idx);
      for (let i = 0; s === WorkerState.Go && i < SPINS; i++) s = Atomics.load(ctrl, idx);
      while (s === WorkerState.Go) {
        Atomics.wait(ctrl, idx, WorkerState.Go);
        s = Atomics.load(ctrl, idx);
      }
      if (s === WorkerState.Error) workerFailed = true;
    }
    if (failure !== undefined) throw failure;
    if (workerFailed) throw new TinkerError(`wasm kernels: ${op} failed on a worker thread`);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (let slot = 1; slot <= this.workers.length; slot++) {
      Atomics.store(this.ctrl, STATE + slot, WorkerState.Exit);
      Atomics.notify(this.ctrl, STATE + slot);
    }
    for (const w of this.workers) void w.terminate();
  }
}
