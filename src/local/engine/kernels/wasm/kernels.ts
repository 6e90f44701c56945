import { TinkerError, TinkerValidationError } from "../../../../client/errors.js";
import type {
  AdamWParams,
  AttentionBackwardParams,
  AttentionForwardParams,
  AttentionParams,
  GemmParams,
  Kernels,
} from "../types.js";
import { compiledModule, type WasmKernelVariant } from "./binaries.js";
import { instantiate, type ParallelOp, SUMSQ_CHUNK } from "./exports.js";
import { WasmHeap } from "./heap.js";
import { ARGS_BYTES, CONTROL_BYTES, MAX_THREADS, ThreadPool } from "./pool.js";
import { type WasmMemory, wasmApi } from "./wasm-api.js";

const PAGE = 65536;
/** 65536 pages = 4 GiB, the wasm32 limit; a shared memory reserves address space, not RAM. */
const MAX_PAGES = 65536;

/**
 * Work below which a call runs on the calling thread alone: waking a worker costs tens of
 * microseconds (far more on a loaded machine), about what 1M multiply-adds, 512K elements of a
 * memory-bound elementwise kernel or 64K exps of log-softmax take.
 */
const GEMM_PARALLEL_MACS = 1 << 20;
const ELEMENTWISE_PARALLEL = 1 << 19;
const SOFTMAX_PARALLEL = 1 << 16;
/**
 * The one-pass attention backward gives each thread whole kv heads; the two-pass one splits by
 * tiles but computes every score tile twice (measured at 1.5x the one-pass work: 6.8 vs 4.5 ms for
 * T=512, 4 heads on 2 threads). Choose whichever finishes first.
 */
function twoPassAttentionBackward(kvHeads: number, threads: number): boolean {
  return (1.5 * kvHeads) / threads < Math.ceil(kvHeads / threads);
}

/** A validated product: `GemmParams` with defaults filled in and pointers as byte offsets. */
export interface GemmPlan {
  transA: boolean;
  transB: boolean;
  m: number;
  n: number;
  k: number;
  a: number;
  lda: number;
  b: number;
  ldb: number;
  c: number;
  ldc: number;
  alpha: number;
  beta: number;
  batch: number;
  strideA: number;
  strideB: number;
  strideC: number;
  /** `rowInvariant` asked for with transB (the only case the kernel honours it). */
  rowInvariant: boolean;
}

/** RoPE tables cover positions below this (2^20, far past any supported context). */
const MAX_ROPE_POSITIONS = 1 << 20;

/** cos/sin rows per position for one (theta, headDim), in the kernel heap. */
interface RopeTable {
  buf: Float32Array;
  positions: number;
}

/** The attention backward's GEMMs keep k <= headDim inside the scratch GEMM region (k <= 4096). */
const MAX_ATTENTION_HEAD_DIM = 4096;

/**
 * A shared memory with the largest maximum the process can reserve (address space only; pages are
 * committed as the heap grows).
 */
function createSharedMemory(): WasmMemory {
  let lastError: unknown;
  for (const maximum of [MAX_PAGES, MAX_PAGES / 4, MAX_PAGES / 16]) {
    try {
      return new wasmApi.Memory({ initial: 1, maximum, shared: true });
    } catch (err) {
      lastError = err;
    }
  }
  throw new TinkerError("wasm kernels: cannot create a shared WebAssembly.Memory", {
    cause: lastError,
  });
}

function isInt(x: number): boolean {
  return Number.isSafeInteger(x);
}

function positiveInt(x: number, field: string): void {
  if (!isInt(x) || x < 1)
    throw new TinkerValidationError(`${field} must be a positive integer, got ${x}`, field);
}

function nonNegativeInt(x: number, field: string): void {
  if (!isInt(x) || x < 0) {
    throw new TinkerValidationError(`${field} must be a non-negative integer, got ${x}`, field);
  }
}

/**
 * `Kernels` on WebAssembly SIMD over one shared memory, with a pool of worker threads.
 * Create with `createWasmKernels` / `createWasmKernelsSync`.
 */
export class WasmKernels implements Kernels {
  readonly name: WasmKernelVariant;
  readonly threads: number;
  private readonly heap: WasmHeap;
  private readonly pool: ThreadPool;
  private readonly maxScratchFloats: number;
  private readonly ropeTables = new Map<string, RopeTable>();
  private stageOff = -1;
  private stageBytes = 0;

  constructor(variant: WasmKernelVariant, threads: number) {
    if (!isInt(threads) || threads < 1 || threads > MAX_THREADS) {
      throw new TinkerValidationError(
        `threads must be an integer in 1..${MAX_THREADS}, got ${threads}`,
        "threads",
      );
    }
    this.name = variant;
    this.threads = threads;
    const mod = compiledModule(variant);
    const memory = createSharedMemory();
    // The module's static data sits below heapBase; instantiate once to learn it, then lay out
    // control block, arguments, per-thread scratch and the heap after it.
    const probe = instantiate(mod, memory, 0);
    const heapBase = probe.heapBase();
    const scratchBytes = probe.scratchBytes();
    this.maxScratchFloats = scratchBytes / 4;
    const ctrlOffset = Math.ceil(heapBase / 64) * 64;
    const argsOffset = ctrlOffset + CONTROL_BYTES;
    const scratchBase = Math.ceil((argsOffset + ARGS_BYTES) / PAGE) * PAGE;
    const heapStart = scratchBase + threads * scratchBytes;
    memory.grow(Math.ceil(heapStart / PAGE) + 16 - memory.buffer.byteLength / PAGE);
    const scratchOf = (tid: number) => scratchBase + tid * scratchBytes;
    probe.setScratch(scratchOf(0));
    this.heap = new WasmHeap(memory, heapStart);
    this.pool = new ThreadPool(probe, mod, memory, ctrlOffset, argsOffset, threads, scratchOf);
  }

  alloc(length: number): Float32Array {
    nonNegativeInt(length, "length");
    return this.heap.alloc(length);
  }

  free(buf: Float32Array): void {
    this.heap.free(buf);
  }

  /** Bytes handed out, heap high-water mark and memory size (for diagnostics). */
  memoryStats(): { liveBytes: number; heapTop: number; memoryBytes: number } {
    return this.heap.stats();
  }

  // Pointer of a float buffer that must hold at least `need` elements.
  private ptr(buf: Float32Array, need: number, field: string): number {
    if (!(buf instanceof Float32Array) || !this.heap.owns(buf)) {
      throw new TinkerValidationError(
        `${field} must be a Float32Array from kernels.alloc() (or a subarray of one)`,
        field,
      );
    }
    if (buf.length < need) {
      throw new TinkerValidationError(
        `${field} has ${buf.length} elements, needs at least ${need}`,
        field,
      );
    }
    return buf.byteOffset;
  }

  // A scratch block in the heap for copied-in integers or partial sums; reused between calls.
  private stage(bytes: number): number {
    if (bytes > this.stageBytes) {
      if (this.stageOff >= 0) this.heap.freeBytes(this.stageOff);
      this.stageBytes = Math.max(bytes, 4096);
      this.stageOff = this.heap.allocBytes(this.stageBytes);
    }
    return this.stageOff;
  }

  private stageInts(
    values: Int32Array | ArrayLike<number>,
    count: number,
    field: string,
    limit?: number,
  ): number {
    if (values.length < count) {
      throw new TinkerValidationError(
        `${field} has ${values.length} entries, needs ${count}`,
        field,
      );
    }
    const off = this.stage(count * 4);
    const view = new Int32Array(this.heap.buffer, off, count);
    for (let i = 0; i < count; i++) {
      const v = values[i]!;
      if (limit !== undefined && !(v >= 0 && v < limit && isInt(v))) {
        throw new TinkerValidationError(`${field}[${i}] = ${v} is outside [0, ${limit})`, field);
      }
      view[i] = v;
    }
    return off;
  }

  gemm(p: GemmParams): void {
    const plan = this.planGemm(p);
    if (plan) this.runGemm(plan);
  }

  /**
   * Validates a product and resolves its defaults and pointers (byte offsets in `heapBuffer`);
   * null when there is nothing to compute. The BLAS kernels route products with it.
   */
  planGemm(p: GemmParams): GemmPlan | null {
    const { transA, transB, m, n, k } = p;
    nonNegativeInt(m, "m");
    nonNegativeInt(n, "n");
    nonNegativeInt(k, "k");
    const batch = p.batch ?? 1;
    nonNegativeInt(batch, "batch");
    // Stored shapes: A is m x k (k x m if transA), B is k x n (n x k if transB), C is m x n.
    const aRows = transA ? k : m;
    const aCols = transA ? m : k;
    const bRows = transB ? n : k;
    const bCols = transB ? k : n;
    const lda = p.lda ?? aCols;
    const ldb = p.ldb ?? bCols;
    const ldc = p.ldc ?? n;
    for (const [ld, cols, name] of [
      [lda, aCols, "lda"],
      [ldb, bCols, "ldb"],
      [ldc, n, "ldc"],
    ] as const) {
      if (!isInt(ld) || ld < Math.max(1, cols)) {
        throw new TinkerValidationError(
          `${name} must be an integer >= ${Math.max(1, cols)}, got ${ld}`,
          name,
        );
      }
    }
    const strideA = p.strideA ?? aRows * lda;
    const strideB = p.strideB ?? bRows * ldb;
    const strideC = p.strideC ?? m * ldc;
    nonNegativeInt(strideA, "strideA");
    nonNegativeInt(strideB, "strideB");
    nonNegativeInt(strideC, "strideC");
    const alpha = p.alpha ?? 1;
    const beta = p.beta ?? 0;
    if (m === 0 || n === 0 || batch === 0) return null;
    const extent = (rows: number, cols: number, ld: number, stride: number) =>
      rows === 0 || cols === 0 ? 0 : (batch - 1) * stride + (rows - 1) * ld + cols;
    return {
      transA,
      transB,
      m,
      n,
      k,
      a: this.ptr(p.a, extent(aRows, aCols, lda, strideA), "a"),
      lda,
      b: this.ptr(p.b, extent(bRows, bCols, ldb, strideB), "b"),
      ldb,
      c: this.ptr(p.c, extent(m, n, ldc, strideC), "c"),
      ldc,
      alpha,
      beta,
      batch,
      strideA,
      strideB,
      strideC,
      rowInvariant: p.rowInvariant === true && transB,
    };
  }

  /** Runs a product from `planGemm` on the wasm kernels. */
  runGemm(g: GemmPlan): void {
    this.pool.run(
      "gemm",
      [
        g.transA ? 1 : 0,
        g.transB ? 1 : 0,
        g.m,
        g.n,
        g.k,
        g.a,
        g.lda,
        g.b,
        g.ldb,
        g.c,
        g.ldc,
        g.alpha,
        g.beta,
        g.batch,
        g.strideA,
        g.strideB,
        g.strideC,
        g.rowInvariant ? 1 : 0,
      ],
      g.batch * g.m * g.n * g.k >= GEMM_PARALLEL_MACS,
    );
  }

  /** The heap memory's current buffer (pointers of `planGemm` are byte offsets into it). */
  get heapBuffer(): SharedArrayBuffer {
    return this.heap.buffer as SharedArrayBuffer;
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
    nonNegativeInt(rows, "rows");
    positiveInt(dim, "dim");
    const args = [
      this.ptr(x, rows * dim, "x"),
      this.ptr(weight, dim, "weight"),
      this.ptr(y, rows * dim, "y"),
      this.ptr(rstd, rows, "rstd"),
      rows,
      dim,
      eps,
    ];
    this.pool.run("rmsnorm_fwd", args, rows > 1 && rows * dim >= ELEMENTWISE_PARALLEL);
  }

  rmsNormBackward(
    dy: Float32Array,
    x: Float32Array,
    weight: Float32Array,
    rstd: Float32Array,
    dx: Float32Array,
    rows: number,
    dim: number,
    accumulate = false,
  ): void {
    nonNegativeInt(rows, "rows");
    positiveInt(dim, "dim");
    const args = [
      this.ptr(dy, rows * dim, "dy"),
      this.ptr(x, rows * dim, "x"),
      this.ptr(weight, dim, "weight"),
      this.ptr(rstd, rows, "rstd"),
      this.ptr(dx, rows * dim, "dx"),
      rows,
      dim,
      accumulate ? 1 : 0,
    ];
    this.pool.run("rmsnorm_bwd", args, rows > 1 && rows * dim >= ELEMENTWISE_PARALLEL);
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
    nonNegativeInt(rows, "rows");
    positiveInt(heads, "heads");
    positiveInt(headDim, "headDim");
    if (headDim % 2 !== 0)
      throw new TinkerValidationError(`headDim must be even, got ${headDim}`, "headDim");
    const xp = this.ptr(x, rows * heads * headDim, "x");
    let maxPos = 0;
    for (let i = 0; i < rows && i < positions.length; i++) maxPos = Math.max(maxPos, positions[i]!);
    const table = this.ropeTable(theta, headDim, maxPos + 1);
    const pos = this.stageInts(positions, rows, "positions", table.positions);
    const n = rows * heads * headDim;
    this.pool.run(
      "rope",
      [xp, pos, rows, heads, headDim, this.ptr(table.buf, 0, "table"), inverse ? 1 : 0],
      rows > 1 && n >= ELEMENTWISE_PARALLEL,
    );
  }

  /**
   * The cos/sin table for (theta, headDim) covering at least `positions` positions. Computing the
   * angles costs more than rotating, so tables are kept and grown by doubling.
   */
  private ropeTable(theta: number, headDim: number, positions: number): RopeTable {
    const key = `${theta}/${headDim}`;
    const have = this.ropeTables.get(key);
    if (have && have.positions >= positions) return have;
    if (!Number.isSafeInteger(positions) || positions > MAX_ROPE_POSITIONS) {
      throw new TinkerValidationError(
        `position ${positions - 1} is outside [0, ${MAX_ROPE_POSITIONS})`,
        "positions",
      );
    }
    const count = Math.min(
      MAX_ROPE_POSITIONS,
      Math.max(1024, 2 ** Math.ceil(Math.log2(positions))),
    );
    const buf = this.heap.alloc(count * headDim);
    const from = have?.positions ?? 0;
    if (have) {
      buf.set(have.buf);
      this.heap.free(have.buf);
    }
    const args = [this.ptr(buf, count * headDim, "table"), from, count, headDim, theta];
    this.pool.run("rope_table", args, (count - from) * headDim >= ELEMENTWISE_PARALLEL / 8);
    const table = { buf, positions: count };
    this.ropeTables.set(key, table);
    return table;
  }

  swigluForward(gate: Float32Array, up: Float32Array, out: Float32Array, n: number): void {
    nonNegativeInt(n, "n");
    const args = [this.ptr(gate, n, "gate"), this.ptr(up, n, "up"), this.ptr(out, n, "out"), n];
    this.pool.run("swiglu_fwd", args, n >= ELEMENTWISE_PARALLEL);
  }

  swigluBackward(
    dOut: Float32Array,
    gate: Float32Array,
    up: Float32Array,
    dGate: Float32Array,
    dUp: Float32Array,
    n: number,
  ): void {
    nonNegativeInt(n, "n");
    const args = [
      this.ptr(dOut, n, "dOut"),
      this.ptr(gate, n, "gate"),
      this.ptr(up, n, "up"),
      this.ptr(dGate, n, "dGate"),
      this.ptr(dUp, n, "dUp"),
      n,
    ];
    this.pool.run("swiglu_bwd", args, n >= ELEMENTWISE_PARALLEL);
  }

  private checkAttention(p: AttentionParams, scratchRows: number): { T: number; L: number } {
    const T = p.seqLen;
    const L = p.kvLen ?? T;
    nonNegativeInt(T, "seqLen");
    nonNegativeInt(L, "kvLen");
    positiveInt(p.nHeads, "nHeads");
    positiveInt(p.nKvHeads, "nKvHeads");
    positiveInt(p.headDim, "headDim");
    if (L < T) throw new TinkerValidationError(`kvLen (${L}) must be >= seqLen (${T})`, "kvLen");
    if (p.nHeads % p.nKvHeads !== 0) {
      throw new TinkerValidationError(
        `nHeads (${p.nHeads}) must be a multiple of nKvHeads (${p.nKvHeads})`,
        "nKvHeads",
      );
    }
    // The forward keeps `scratchRows` rows of kvLen scores in per-thread scratch; the backward works
    // in fixed tiles (scratchRows 0) and runs GEMMs with k = headDim.
    if (p.headDim > MAX_ATTENTION_HEAD_DIM) {
      throw new TinkerValidationError(
        `headDim ${p.headDim} is too large for the wasm attention kernel (max ${MAX_ATTENTION_HEAD_DIM})`,
        "headDim",
      );
    }
    if (scratchRows * L > this.maxScratchFloats) {
      throw new TinkerValidationError(
        `kvLen ${L} is too long for the wasm attention kernel (max ${Math.floor(this.maxScratchFloats / scratchRows)})`,
        "kvLen",
      );
    }
    return { T, L };
  }

  attentionForward(p: AttentionForwardParams): void {
    const { T, L } = this.checkAttention(p, 1);
    const { nHeads: H, nKvHeads: KVH, headDim: D } = p;
    if (T === 0) return;
    const args = [
      this.ptr(p.q, T * H * D, "q"),
      this.ptr(p.k, L * KVH * D, "k"),
      this.ptr(p.v, L * KVH * D, "v"),
      this.ptr(p.out, T * H * D, "out"),
      this.ptr(p.lse, H * T, "lse"),
      T,
      L,
      H,
      KVH,
      D,
      p.scale,
    ];
    const work = H * T * (L - T / 2) * D;
    this.pool.run("attention_fwd", args, H * T > 1 && work >= GEMM_PARALLEL_MACS);
  }

  attentionBackward(p: AttentionBackwardParams): void {
    const { T, L } = this.checkAttention(p, 0);
    if (L !== T) {
      throw new TinkerValidationError(
        `attentionBackward needs kvLen == seqLen, got ${L} != ${T}`,
        "kvLen",
      );
    }
    const { nHeads: H, nKvHeads: KVH, headDim: D } = p;
    if (T === 0) return;
    const inputs = [
      this.ptr(p.q, T * H * D, "q"),
      this.ptr(p.k, T * KVH * D, "k"),
      this.ptr(p.v, T * KVH * D, "v"),
      this.ptr(p.out, T * H * D, "out"),
      this.ptr(p.lse, H * T, "lse"),
      this.ptr(p.dOut, T * H * D, "dOut"),
    ];
    const dq = this.ptr(p.dq, T * H * D, "dq");
    const dk = this.ptr(p.dk, T * KVH * D, "dk");
    const dv = this.ptr(p.dv, T * KVH * D, "dv");
    const shape = [T, H, KVH, D, p.scale];
    const work = H * T * T * D;
    if (
      this.threads > 1 &&
      work >= GEMM_PARALLEL_MACS &&
      twoPassAttentionBackward(KVH, this.threads)
    ) {
      this.pool.run("attention_bwd_kv", [...inputs, dk, dv, ...shape], true);
      this.pool.run("attention_bwd_q", [...inputs, dq, ...shape], true);
      return;
    }
    const parallel = KVH > 1 && work >= GEMM_PARALLEL_MACS;
    this.pool.run("attention_bwd", [...inputs, dq, dk, dv, ...shape], parallel);
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
    this.runLogSoftmax(
      "logsoftmax_gather",
      logits,
      rows,
      vocab,
      targets,
      k,
      logprobs,
      "logprobs",
      lse,
    );
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
    this.runLogSoftmax("logsoftmax_bwd", logits, rows, vocab, targets, k, g, "g", lse);
  }

  /** Both log-softmax kernels take (logits, rows, vocab, targets, k, per-target values, lse). */
  private runLogSoftmax(
    kernel: Extract<ParallelOp, "logsoftmax_gather" | "logsoftmax_bwd">,
    logits: Float32Array,
    rows: number,
    vocab: number,
    targets: Int32Array,
    k: number,
    perTarget: Float32Array,
    perTargetName: string,
    lse: Float32Array,
  ): void {
    nonNegativeInt(rows, "rows");
    positiveInt(vocab, "vocab");
    nonNegativeInt(k, "k");
    const args = [
      this.ptr(logits, rows * vocab, "logits"),
      rows,
      vocab,
      0,
      k,
      this.ptr(perTarget, rows * k, perTargetName),
      this.ptr(lse, rows, "lse"),
    ];
    args[3] = this.stageInts(targets, rows * k, "targets", vocab);
    this.pool.run(kernel, args, rows > 1 && rows * vocab >= SOFTMAX_PARALLEL);
  }

  adamW(p: AdamWParams): void {
    const n = p.n;
    nonNegativeInt(n, "n");
    const args = [
      this.ptr(p.param, n, "param"),
      this.ptr(p.grad, n, "grad"),
      this.ptr(p.m, n, "m"),
      this.ptr(p.v, n, "v"),
      n,
      p.lr,
      p.beta1,
      p.beta2,
      p.eps,
      p.weightDecay,
      p.bc1,
      p.bc2,
      p.gradScale,
    ];
    this.pool.run("adamw", args, n >= ELEMENTWISE_PARALLEL);
  }

  sumSquares(x: Float32Array, n: number): number {
    nonNegativeInt(n, "n");
    const xp = this.ptr(x, n, "x");
    const chunks = Math.ceil(n / SUMSQ_CHUNK);
    if (chunks === 0) return 0;
    const out = this.stage(chunks * 8);
    this.pool.run("sumsq", [xp, n, out], n >= 2 * ELEMENTWISE_PARALLEL);
    const parts = new Float64Array(this.heap.buffer, out, chunks);
    let total = 0;
    for (let i = 0; i < chunks; i++) total += parts[i]!;
    return total;
  }

  dispose(): void {
    this.pool.dispose();
  }
}
