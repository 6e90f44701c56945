/**
 * The compute kernels the local engine's model code calls. Two implementations share this contract:
 * a pure-TypeScript one (`js`, the reference and fallback) and a WebAssembly SIMD one that runs on a
 * pool of worker threads over one shared `WebAssembly.Memory`.
 *
 * Contract:
 * - All calls are synchronous. The engine itself runs on a worker thread, never on the main thread.
 * - Every float buffer is a `Float32Array` obtained from `alloc` (so the WebAssembly implementation
 *   can pass `byteOffset` as a pointer without copying). Subarrays of such buffers are fine.
 *   Int32Array arguments (targets, positions) may be ordinary arrays; implementations copy them in.
 * - Layouts are row-major. "rows" are tokens; per-token vectors are contiguous.
 * - Output buffers are overwritten unless the parameter says "accumulate".
 */
export interface Kernels {
  /** e.g. "js", "wasm-simd", "wasm-relaxed-simd". */
  readonly name: string;
  /** Threads the kernels use (1 for js). */
  readonly threads: number;

  /** A zero-filled float buffer in the kernel heap. */
  alloc(length: number): Float32Array;
  /** Return a buffer from `alloc` (not a subarray) to the heap. */
  free(buf: Float32Array): void;

  /** C = alpha * op(A) @ op(B) + beta * C, optionally batched. See `GemmParams`. */
  gemm(p: GemmParams): void;

  /**
   * y[r] = x[r] * rstd[r] * weight, rstd[r] = 1 / sqrt(mean(x[r]^2) + eps), for `rows` rows of `dim`.
   * Writes `rstd` (length rows) for the backward pass. `y` must not alias `x`.
   */
  rmsNormForward(
    x: Float32Array,
    weight: Float32Array,
    y: Float32Array,
    rstd: Float32Array,
    rows: number,
    dim: number,
    eps: number,
  ): void;
  /**
   * dx = d(rmsnorm)/dx applied to dy (weights are frozen: no weight gradient). Overwrites dx, or
   * with `accumulate` adds into it (a residual branch's gradient joining the stream).
   */
  rmsNormBackward(
    dy: Float32Array,
    x: Float32Array,
    weight: Float32Array,
    rstd: Float32Array,
    dx: Float32Array,
    rows: number,
    dim: number,
    accumulate?: boolean,
  ): void;

  /**
   * Rotary embedding in place on `x` laid out [rows, heads, headDim], rotate-half convention
   * (pairs (i, i + headDim/2)), angle = position[r] * theta^(-2i/headDim). `inverse` rotates by the
   * negative angle, which is the backward pass.
   */
  rope(
    x: Float32Array,
    positions: Int32Array,
    rows: number,
    heads: number,
    headDim: number,
    theta: number,
    inverse: boolean,
  ): void;

  /** out = silu(gate) * up, elementwise over n. */
  swigluForward(gate: Float32Array, up: Float32Array, out: Float32Array, n: number): void;
  /** dGate, dUp from dOut (overwrites both). */
  swigluBackward(
    dOut: Float32Array,
    gate: Float32Array,
    up: Float32Array,
    dGate: Float32Array,
    dUp: Float32Array,
    n: number,
  ): void;

  /**
   * Causal self-attention for one sequence of T tokens with grouped-query heads.
   * q: [T, nHeads, headDim]; k, v: [T, nKvHeads, headDim]; out: [T, nHeads, headDim];
   * lse: [nHeads, T] log-sum-exp of the scaled scores per query (saved for backward).
   * Query head h uses kv head floor(h / (nHeads / nKvHeads)).
   */
  attentionForward(p: AttentionForwardParams): void;
  /** Gradients of the above. dq, dk, dv are overwritten. `out` and `lse` are the forward's. */
  attentionBackward(p: AttentionBackwardParams): void;

  /**
   * For `rows` rows of `vocab` logits: lse[r] = logsumexp(logits[r]) and
   * logprobs[r*K + j] = logits[r, targets[r*K + j]] - lse[r]. `logits` is left unchanged.
   */
  logSoftmaxGather(
    logits: Float32Array,
    rows: number,
    vocab: number,
    targets: Int32Array,
    k: number,
    logprobs: Float32Array,
    lse: Float32Array,
  ): void;
  /**
   * Given g[r*K + j] = dLoss/dlogprobs[r*K + j], overwrite `logits` in place with dLoss/dlogits:
   * dlogits[r] = scatter_j(g[r, j] at targets[r, j]) - (sum_j g[r, j]) * softmax(logits[r]).
   */
  logSoftmaxBackward(
    logits: Float32Array,
    rows: number,
    vocab: number,
    targets: Int32Array,
    k: number,
    g: Float32Array,
    lse: Float32Array,
  ): void;

  /**
   * One AdamW step over n parameters: m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
   * p -= lr * (m / bc1) / (sqrt(v / bc2) + eps) + lr * wd * p. `gradScale` multiplies g first
   * (global-norm clipping). bc1 = 1 - b1^t, bc2 = 1 - b2^t.
   */
  adamW(p: AdamWParams): void;

  /** Sum of squares of x[0..n) (for gradient-norm clipping), accumulated in float64. */
  sumSquares(x: Float32Array, n: number): number;

  /** Release worker threads and memory. */
  dispose(): void;
}

export interface GemmParams {
  transA: boolean;
  transB: boolean;
  /** op(A) is m x k, op(B) is k x n, C is m x n. */
  m: number;
  n: number;
  k: number;
  a: Float32Array;
  b: Float32Array;
  c: Float32Array;
  /** Leading dimensions (row strides in elements) of A, B, C as stored; default contiguous. */
  lda?: number;
  ldb?: number;
  ldc?: number;
  /** Default 1. */
  alpha?: number;
  /** Default 0 (C is overwritten); 1 accumulates. */
  beta?: number;
  /**
   * With transB: compute every row of C with the same arithmetic whatever the number of rows and
   * the row's place among them (batch invariance), so a row's result never depends on what else is
   * in the product. Sampling decodes with it. Default false (the fastest path for the shape).
   */
  rowInvariant?: boolean;
  /** Number of independent products, default 1, with element strides between them. */
  batch?: number;
  strideA?: number;
  strideB?: number;
  strideC?: number;
}

export interface AttentionParams {
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
  /** Query rows (T). */
  seqLen: number;
  /**
   * Key/value rows, default `seqLen`. With a KV cache `kvLen > seqLen`: query row i sits at position
   * kvLen - seqLen + i and attends to keys 0..that position. (Backward needs kvLen == seqLen.)
   */
  kvLen?: number;
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  /** Usually 1 / sqrt(headDim). */
  scale: number;
}

/** Attention forward: writes `out` [T, nHeads, headDim] and `lse` [nHeads, T]. */
export interface AttentionForwardParams extends AttentionParams {
  out: Float32Array;
  lse: Float32Array;
}

/** Attention backward: `out`/`lse` from the forward, `dOut` in; `dq`, `dk`, `dv` overwritten. */
export interface AttentionBackwardParams extends AttentionForwardParams {
  dOut: Float32Array;
  dq: Float32Array;
  dk: Float32Array;
  dv: Float32Array;
}

export interface AdamWParams {
  param: Float32Array;
  grad: Float32Array;
  m: Float32Array;
  v: Float32Array;
  n: number;
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  bc1: number;
  bc2: number;
  gradScale: number;
}
