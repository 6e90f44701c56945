import type {
  AdamWParams,
  AttentionBackwardParams,
  AttentionForwardParams,
  GemmParams,
  Kernels,
} from "../types.js";
import type { GemmPlan, WasmKernels } from "../wasm/kernels.js";
import { type BlasLibrary, CBLAS_NO_TRANS, CBLAS_ROW_MAJOR, CBLAS_TRANS } from "./library.js";

/**
 * Products below this many multiply-adds stay on the wasm kernels: a foreign call plus the BLAS's
 * own set-up costs a few microseconds, about what the wasm kernel needs for 2^18 multiply-adds.
 */
export const BLAS_MIN_MACS = 1 << 18;

export interface BlasKernelsOptions {
  /** Products smaller than this (multiply-adds per product) run on wasm. Default `BLAS_MIN_MACS`. */
  minMacs?: number;
}

/**
 * The wasm kernels with large matrix products handed to a system BLAS's `cblas_sgemm`, which reads
 * and writes the wasm heap in place through Float32Array views (no copies).
 *
 * - Views are made from the memory's current buffer at each call, so heap growth between calls
 *   never leaves a stale view (a shared memory never moves; it only gets longer).
 * - The BLAS runs single-threaded on the engine thread (the library is loaded that way, see
 *   `loadSingleThreaded`: OpenBLAS's own threads can deadlock a later fork); the wasm pool's
 *   workers sleep meanwhile, so BLAS and pool together never run more than `threads` threads.
 * - Row-invariant products (sampling's decode steps) stay on the wasm kernel, whose row-invariant
 *   mode guarantees each row's bits do not depend on the batch; a BLAS promises no such thing.
 */
export class BlasKernels implements Kernels {
  readonly name: string;
  readonly threads: number;
  /** Threads the BLAS itself uses: the calling one. */
  readonly blasThreads = 1;
  private readonly minMacs: number;

  constructor(
    readonly wasm: WasmKernels,
    readonly library: BlasLibrary,
    opts: BlasKernelsOptions = {},
  ) {
    this.name = `${wasm.name}+blas`;
    this.threads = wasm.threads;
    this.minMacs = opts.minMacs ?? BLAS_MIN_MACS;
  }

  alloc(length: number): Float32Array {
    return this.wasm.alloc(length);
  }
  free(buf: Float32Array): void {
    this.wasm.free(buf);
  }

  gemm(p: GemmParams): void {
    const plan = this.wasm.planGemm(p);
    if (!plan) return;
    if (plan.rowInvariant || plan.k === 0 || plan.m * plan.n * plan.k < this.minMacs) {
      this.wasm.runGemm(plan);
      return;
    }
    this.blasGemm(plan);
  }

  private blasGemm(g: GemmPlan): void {
    const { sgemm } = this.library;
    const buf = this.wasm.heapBuffer;
    const ta = g.transA ? CBLAS_TRANS : CBLAS_NO_TRANS;
    const tb = g.transB ? CBLAS_TRANS : CBLAS_NO_TRANS;
    // Stored extents of one product, as `planGemm` validated them.
    const aLen = (g.transA ? g.k - 1 : g.m - 1) * g.lda + (g.transA ? g.m : g.k);
    const bLen = (g.transB ? g.n - 1 : g.k - 1) * g.ldb + (g.transB ? g.k : g.n);
    const cLen = (g.m - 1) * g.ldc + g.n;
    for (let i = 0; i < g.batch; i++) {
      const a = new Float32Array(buf, g.a + 4 * i * g.strideA, aLen);
      const b = new Float32Array(buf, g.b + 4 * i * g.strideB, bLen);
      const c = new Float32Array(buf, g.c + 4 * i * g.strideC, cLen);
      sgemm(CBLAS_ROW_MAJOR, ta, tb, g.m, g.n, g.k, g.alpha, a, g.lda, b, g.ldb, g.beta, c, g.ldc);
    }
  }

  rmsNormForward(
    x: Float32Array,
    weight: Float32Array,
    y: Float32Array,
    rstd: Float32Array,
    rows: number,
    dim: number,
    eps: number,
  ): void {
    this.wasm.rmsNormForward(x, weight, y, rstd, rows, dim, eps);
  }
  rmsNormBackward(
    dy: Float32Array,
    x: Float32Array,
    weight: Float32Array,
    rstd: Float32Array,
    dx: Float32Array,
    rows: number,
    dim: number,
    accumulate?: boolean,
  ): void {
    this.wasm.rmsNormBackward(dy, x, weight, rstd, dx, rows, dim, accumulate);
  }
  rope(
    x: Float32Array,
    positions: Int32Array,
    rows: number,
    heads: number,
    headDim: number,
    theta: number,
    inverse: boolean,
  ): void {
    this.wasm.rope(x, positions, rows, heads, headDim, theta, inverse);
  }
  swigluForward(gate: Float32Array, up: Float32Array, out: Float32Array, n: number): void {
    this.wasm.swigluForward(gate, up, out, n);
  }
  swigluBackward(
    dOut: Float32Array,
    gate: Float32Array,
    up: Float32Array,
    dGate: Float32Array,
    dUp: Float32Array,
    n: number,
  ): void {
    this.wasm.swigluBackward(dOut, gate, up, dGate, dUp, n);
  }
  attentionForward(p: AttentionForwardParams): void {
    this.wasm.attentionForward(p);
  }
  attentionBackward(p: AttentionBackwardParams): void {
    this.wasm.attentionBackward(p);
  }
  logSoftmaxGather(
    logits: Float32Array,
    rows: number,
    vocab: number,
    targets: Int32Array,
    k: number,
    logprobs: Float32Array,
    lse: Float32Array,
  ): void {
    this.wasm.logSoftmaxGather(logits, rows, vocab, targets, k, logprobs, lse);
  }
  logSoftmaxBackward(
    logits: Float32Array,
    rows: number,
    vocab: number,
    targets: Int32Array,
    k: number,
    g: Float32Array,
    lse: Float32Array,
  ): void {
    this.wasm.logSoftmaxBackward(logits, rows, vocab, targets, k, g, lse);
  }
  adamW(p: AdamWParams): void {
    this.wasm.adamW(p);
  }
  sumSquares(x: Float32Array, n: number): number {
    return this.wasm.sumSquares(x, n);
  }
  /** Bytes handed out, heap high-water mark and memory size (of the wasm heap). */
  memoryStats(): { liveBytes: number; heapTop: number; memoryBytes: number } {
    return this.wasm.memoryStats();
  }
  dispose(): void {
    this.wasm.dispose();
  }
}
