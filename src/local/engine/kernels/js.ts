import type {
  AdamWParams,
  AttentionBackwardParams,
  AttentionForwardParams,
  GemmParams,
  Kernels,
} from "./types.js";

/**
 * The pure-TypeScript kernels: the reference every faster implementation is tested against, and
 * the fallback when WebAssembly is unavailable. Written for clarity first; inner products and
 * reductions accumulate in float64 (JS numbers), which also makes this the most accurate backend.
 */
export function createJsKernels(): Kernels {
  return {
    name: "js",
    threads: 1,
    alloc: (length) => new Float32Array(length),
    free: () => {},
    gemm,
    rmsNormForward,
    rmsNormBackward,
    rope,
    swigluForward,
    swigluBackward,
    attentionForward,
    attentionBackward,
    logSoftmaxGather,
    logSoftmaxBackward,
    adamW,
    sumSquares,
    dispose: () => {},
  };
}

function gemm(p: GemmParams): void {
  const { transA, transB, m, n, k, a, b, c } = p;
  const lda = p.lda ?? (transA ? m : k);
  const ldb = p.ldb ?? (transB ? k : n);
  const ldc = p.ldc ?? n;
  const alpha = p.alpha ?? 1;
  const beta = p.beta ?? 0;
  const batch = p.batch ?? 1;
  const acc = new Float64Array(n);
  const aRow = new Float64Array(k);
  for (let bi = 0; bi < batch; bi++) {
    const oa = bi * (p.strideA ?? 0);
    const ob = bi * (p.strideB ?? 0);
    const oc = bi * (p.strideC ?? 0);
    for (let i = 0; i < m; i++) {
      // Gather row i of op(A).
      if (transA) for (let q = 0; q < k; q++) aRow[q] = a[oa + q * lda + i]!;
      else for (let q = 0; q < k; q++) aRow[q] = a[oa + i * lda + q]!;
      if (transB) {
        // op(B)[q, j] = B[j, q]: a dot product with a contiguous row of B.
        for (let j = 0; j < n; j++) {
          const rb = ob + j * ldb;
          let s = 0;
          for (let q = 0; q < k; q++) s += aRow[q]! * b[rb + q]!;
          acc[j] = s;
        }
      } else {
        acc.fill(0);
        for (let q = 0; q < k; q++) {
          const aq = aRow[q]!;
          if (aq === 0) continue;
          const rb = ob + q * ldb;
          for (let j = 0; j < n; j++) acc[j] = acc[j]! + aq * b[rb + j]!;
        }
      }
      const rc = oc + i * ldc;
      if (beta === 0) for (let j = 0; j < n; j++) c[rc + j] = alpha * acc[j]!;
      else for (let j = 0; j < n; j++) c[rc + j] = beta * c[rc + j]! + alpha * acc[j]!;
    }
  }
}

function rmsNormForward(
  x: Float32Array,
  weight: Float32Array,
  y: Float32Array,
  rstd: Float32Array,
  rows: number,
  dim: number,
  eps: number,
): void {
  for (let r = 0; r < rows; r++) {
    const o = r * dim;
    let ss = 0;
    for (let i = 0; i < dim; i++) ss += x[o + i]! * x[o + i]!;
    const rs = 1 / Math.sqrt(ss / dim + eps);
    rstd[r] = rs;
    for (let i = 0; i < dim; i++) y[o + i] = x[o + i]! * rs * weight[i]!;
  }
}

function rmsNormBackward(
  dy: Float32Array,
  x: Float32Array,
  weight: Float32Array,
  rstd: Float32Array,
  dx: Float32Array,
  rows: number,
  dim: number,
  accumulate = false,
): void {
  // y_i = w_i x_i r, r = (mean(x^2) + eps)^-1/2  =>  dx_j = r w_j dy_j - (r^3 / dim) x_j sum_i dy_i w_i x_i
  for (let r = 0; r < rows; r++) {
    const o = r * dim;
    const rs = rstd[r]!;
    let dot = 0;
    for (let i = 0; i < dim; i++) dot += dy[o + i]! * weight[i]! * x[o + i]!;
    const c = (rs * rs * rs * dot) / dim;
    for (let i = 0; i < dim; i++) {
      const g = rs * weight[i]! * dy[o + i]! - c * x[o + i]!;
      dx[o + i] = accumulate ? dx[o + i]! + g : g;
    }
  }
}

function rope(
  x: Float32Array,
  positions: Int32Array,
  rows: number,
  heads: number,
  headDim: number,
  theta: number,
  inverse: boolean,
): void {
  const half = headDim >> 1;
  const invFreq = new Float64Array(half);
  for (let i = 0; i < half; i++) invFreq[i] = theta ** ((-2 * i) / headDim);
  applyRotary(x, positions, rows, heads, headDim, invFreq, inverse);
}

/**
 * Rotate-half rotary embedding with explicit inverse frequencies (used directly by the model for
 * scaled RoPE variants such as Llama-3.1's).
 */
export function applyRotary(
  x: Float32Array,
  positions: Int32Array,
  rows: number,
  heads: number,
  headDim: number,
  invFreq: Float64Array,
  inverse: boolean,
): void {
  const half = headDim >> 1;
  const cos = new Float64Array(half);
  const sin = new Float64Array(half);
  const sign = inverse ? -1 : 1;
  for (let r = 0; r < rows; r++) {
    const pos = positions[r]!;
    for (let i = 0; i < half; i++) {
      const ang = pos * invFreq[i]!;
      cos[i] = Math.cos(ang);
      sin[i] = sign * Math.sin(ang);
    }
    for (let h = 0; h < heads; h++) {
      const o = (r * heads + h) * headDim;
      for (let i = 0; i < half; i++) {
        const x1 = x[o + i]!;
        const x2 = x[o + i + half]!;
        x[o + i] = x1 * cos[i]! - x2 * sin[i]!;
        x[o + i + half] = x2 * cos[i]! + x1 * sin[i]!;
      }
    }
  }
}

function sigmoid(z: number): number {
  return 1 / (1 + Math.exp(-z));
}

function swigluForward(gate: Float32Array, up: Float32Array, out: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) {
    const g = gate[i]!;
    out[i] = g * sigmoid(g) * up[i]!;
  }
}

function swigluBackward(
  dOut: Float32Array,
  gate: Float32Array,
  up: Float32Array,
  dGate: Float32Array,
  dUp: Float32Array,
  n: number,
): void {
  for (let i = 0; i < n; i++) {
    const g = gate[i]!;
    const s = sigmoid(g);
    const d = dOut[i]!;
    dUp[i] = d * g * s;
    dGate[i] = d * up[i]! * s * (1 + g * (1 - s));
  }
}

function attentionForward(p: AttentionForwardParams): void {
  const { q, k, v, out, lse, seqLen: T, nHeads, nKvHeads, headDim: D, scale } = p;
  const kvLen = p.kvLen ?? T;
  const group = nHeads / nKvHeads;
  const scores = new Float64Array(kvLen);
  const acc = new Float64Array(D);
  for (let h = 0; h < nHeads; h++) {
    const g = Math.floor(h / group);
    for (let i = 0; i < T; i++) {
      const pos = kvLen - T + i;
      const qo = (i * nHeads + h) * D;
      let mx = -Infinity;
      for (let j = 0; j <= pos; j++) {
        const ko = (j * nKvHeads + g) * D;
        let s = 0;
        for (let d = 0; d < D; d++) s += q[qo + d]! * k[ko + d]!;
        s *= scale;
        scores[j] = s;
        if (s > mx) mx = s;
      }
      let sum = 0;
      acc.fill(0);
      for (let j = 0; j <= pos; j++) {
        const w = Math.exp(scores[j]! - mx);
        sum += w;
        const vo = (j * nKvHeads + g) * D;
        for (let d = 0; d < D; d++) acc[d] = acc[d]! + w * v[vo + d]!;
      }
      for (let d = 0; d < D; d++) out[qo + d] = acc[d]! / sum;
      lse[h * T + i] = mx + Math.log(sum);
    }
  }
}

function attentionBackward(p: AttentionBackwardParams): void {
  const { q, k, v, out, lse, dOut, dq, dk, dv, seqLen: T, nHeads, nKvHeads, headDim: D, scale } = p;
  const group = nHeads / nKvHeads;
  dq.fill(0, 0, T * nHeads * D);
  dk.fill(0, 0, T * nKvHeads * D);
  dv.fill(0, 0, T * nKvHeads * D);
  const dqAcc = new Float64Array(D);
  for (let h = 0; h < nHeads; h++) {
    const g = Math.floor(h / group);
    for (let i = 0; i < T; i++) {
      const qo = (i * nHeads + h) * D;
      const l = lse[h * T + i]!;
      // D_i = dOut_i . out_i
      let di = 0;
      for (let d = 0; d < D; d++) di += dOut[qo + d]! * out[qo + d]!;
      dqAcc.fill(0);
      for (let j = 0; j <= i; j++) {
        const ko = (j * nKvHeads + g) * D;
        let s = 0;
        for (let d = 0; d < D; d++) s += q[qo + d]! * k[ko + d]!;
        const pij = Math.exp(s * scale - l);
        let dp = 0;
        for (let d = 0; d < D; d++) dp += dOut[qo + d]! * v[ko + d]!;
        const ds = pij * (dp - di) * scale;
        for (let d = 0; d < D; d++) {
          dqAcc[d] = dqAcc[d]! + ds * k[ko + d]!;
          dk[ko + d] = dk[ko + d]! + ds * q[qo + d]!;
          dv[ko + d] = dv[ko + d]! + pij * dOut[qo + d]!;
        }
      }
      for (let d = 0; d < D; d++) dq[qo + d] = dqAcc[d]!;
    }
  }
}

function logSoftmaxGather(
  logits: Float32Array,
  rows: number,
  vocab: number,
  targets: Int32Array,
  k: number,
  logprobs: Float32Array,
  lse: Float32Array,
): void {
  for (let r = 0; r < rows; r++) {
    const o = r * vocab;
    let mx = -Infinity;
    for (let j = 0; j < vocab; j++) if (logits[o + j]! > mx) mx = logits[o + j]!;
    let sum = 0;
    for (let j = 0; j < vocab; j++) sum += Math.exp(logits[o + j]! - mx);
    const l = mx + Math.log(sum);
    lse[r] = l;
    for (let t = 0; t < k; t++) logprobs[r * k + t] = logits[o + targets[r * k + t]!]! - l;
  }
}

function logSoftmaxBackward(
  logits: Float32Array,
  rows: number,
  vocab: number,
  targets: Int32Array,
  k: number,
  g: Float32Array,
  lse: Float32Array,
): void {
  for (let r = 0; r < rows; r++) {
    const o = r * vocab;
    let gs = 0;
    for (let t = 0; t < k; t++) gs += g[r * k + t]!;
    const l = lse[r]!;
    for (let j = 0; j < vocab; j++) logits[o + j] = -gs * Math.exp(logits[o + j]! - l);
    for (let t = 0; t < k; t++) {
      const idx = o + targets[r * k + t]!;
      logits[idx] = logits[idx]! + g[r * k + t]!;
    }
  }
}

function adamW(p: AdamWParams): void {
  const { param, grad, m, v, n, lr, beta1, beta2, eps, weightDecay, bc1, bc2, gradScale } = p;
  for (let i = 0; i < n; i++) {
    const g = grad[i]! * gradScale;
    const mi = beta1 * m[i]! + (1 - beta1) * g;
    const vi = beta2 * v[i]! + (1 - beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    const w = param[i]!;
    param[i] = w - lr * (mi / bc1 / (Math.sqrt(vi / bc2) + eps)) - lr * weightDecay * w;
  }
}

function sumSquares(x: Float32Array, n: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) s += x[i]! * x[i]!;
  return s;
}
