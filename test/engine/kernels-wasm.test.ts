// WebAssembly SIMD kernels against float64 references written here (not against the js kernels).
//
// Tolerances follow the standard float32 error analysis, with u = 2^-24 the unit roundoff: a sum of
// n products computed in float32 (any order, fused or not) is within n*u*sum|a_i*b_i| of the exact
// value, so every bound below is "number of rounded operations on the path x u x magnitude of the
// terms", times a small safety factor. A wrong index or formula produces errors of the order of the
// values themselves, far above these bounds. Backward kernels are also checked against central
// finite differences of the float64 forward reference (h = 1e-6 in float64, error ~1e-10).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TinkerValidationError } from "../../src/client/errors.js";
import {
  createWasmKernels,
  createWasmKernelsSync,
  relaxedSimdSupported,
  type WasmKernels,
} from "../../src/local/engine/kernels/wasm/index.js";

const U = 2 ** -24;

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function fillRandom(buf: Float32Array, seed: number, scale = 1, offset = -0.5): Float32Array {
  const r = rng(seed);
  for (let i = 0; i < buf.length; i++) buf[i] = (r() + offset) * scale;
  return buf;
}

function filled(K: WasmKernels, n: number, seed: number, scale = 1, offset = -0.5): Float32Array {
  return fillRandom(K.alloc(n), seed, scale, offset);
}

function maxAbs(xs: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < xs.length; i++) m = Math.max(m, Math.abs(xs[i]!));
  return m;
}

/** Asserts |got - want| <= tol(i) everywhere; reports the worst index. */
function expectClose(
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  tol: number | ((i: number) => number),
  what: string,
): void {
  expect(got.length, `${what}: length`).toBeGreaterThanOrEqual(want.length);
  let worst = -1;
  let worstRatio = 0;
  for (let i = 0; i < want.length; i++) {
    const t = typeof tol === "number" ? tol : tol(i);
    if (Number.isNaN(got[i]!) && Number.isNaN(want[i]!)) continue; // untouched NaN padding
    const err = Math.abs(got[i]! - want[i]!);
    if (err <= t) continue;
    const ratio = t > 0 ? err / t : Number.POSITIVE_INFINITY;
    if (worst < 0 || ratio > worstRatio || Number.isNaN(err)) {
      worst = i;
      worstRatio = ratio;
    }
  }
  if (worst >= 0) {
    const t = typeof tol === "number" ? tol : tol(worst);
    throw new Error(`${what}: index ${worst} got ${got[worst]} want ${want[worst]} (tol ${t})`);
  }
}

/** Bit-for-bit equality of float arrays (fast on large arrays, unlike toEqual). */
function expectBitEqual(got: Float32Array[], want: Float32Array[], what: string): void {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    const g = Buffer.from(got[i]!.buffer, got[i]!.byteOffset, got[i]!.byteLength);
    const w = Buffer.from(want[i]!.buffer, want[i]!.byteOffset, want[i]!.byteLength);
    expect(g.equals(w), `${what}: array ${i} differs`).toBe(true);
  }
}

/** Central finite differences of a float64 scalar function at x (x is restored). */
function numericGrad(x: Float64Array, f: () => number, h = 1e-6): Float64Array {
  const g = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const x0 = x[i]!;
    x[i] = x0 + h;
    const fp = f();
    x[i] = x0 - h;
    const fm = f();
    x[i] = x0;
    g[i] = (fp - fm) / (2 * h);
  }
  return g;
}

// ------------------------------------------------------------------ float64 references

interface GemmCase {
  transA: boolean;
  transB: boolean;
  m: number;
  n: number;
  k: number;
  lda: number;
  ldb: number;
  ldc: number;
  alpha: number;
  beta: number;
  batch: number;
  strideA: number;
  strideB: number;
  strideC: number;
}

/** Returns [C as float64, bound per element of C]. */
function refGemm(
  p: GemmCase,
  a: Float32Array,
  b: Float32Array,
  c0: Float32Array,
): [Float64Array, Float64Array] {
  const out = Float64Array.from(c0);
  const tol = new Float64Array(c0.length);
  for (let t = 0; t < p.batch; t++) {
    for (let i = 0; i < p.m; i++) {
      for (let j = 0; j < p.n; j++) {
        let s = 0;
        let sa = 0;
        for (let q = 0; q < p.k; q++) {
          const av = p.transA
            ? a[t * p.strideA + q * p.lda + i]!
            : a[t * p.strideA + i * p.lda + q]!;
          const bv = p.transB
            ? b[t * p.strideB + j * p.ldb + q]!
            : b[t * p.strideB + q * p.ldb + j]!;
          s += av * bv;
          sa += Math.abs(av * bv);
        }
        const ci = t * p.strideC + i * p.ldc + j;
        const old = c0[ci]!;
        out[ci] = p.alpha * s + (p.beta === 0 ? 0 : p.beta * old);
        // k products and sums, then scaling by alpha and beta and the final add: (k + 4) roundings.
        tol[ci] =
          2 *
            (p.k + 4) *
            U *
            (Math.abs(p.alpha) * sa + (p.beta === 0 ? 0 : Math.abs(p.beta * old))) +
          1e-30;
      }
    }
  }
  return [out, tol];
}

function refRmsNorm(x: Float64Array, w: Float64Array, rows: number, dim: number, eps: number) {
  const y = new Float64Array(rows * dim);
  const rstd = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let ss = 0;
    for (let i = 0; i < dim; i++) ss += x[r * dim + i]! ** 2;
    const rs = 1 / Math.sqrt(ss / dim + eps);
    rstd[r] = rs;
    for (let i = 0; i < dim; i++) y[r * dim + i] = x[r * dim + i]! * rs * w[i]!;
  }
  return { y, rstd };
}

function refRope(
  x: Float64Array,
  pos: number[],
  rows: number,
  heads: number,
  hd: number,
  theta: number,
  inv: boolean,
) {
  const y = Float64Array.from(x);
  const half = hd / 2;
  for (let r = 0; r < rows; r++) {
    for (let h = 0; h < heads; h++) {
      const base = (r * heads + h) * hd;
      for (let i = 0; i < half; i++) {
        const ang = pos[r]! * theta ** (-(2 * i) / hd) * (inv ? -1 : 1);
        const a = x[base + i]!;
        const b = x[base + i + half]!;
        y[base + i] = a * Math.cos(ang) - b * Math.sin(ang);
        y[base + i + half] = b * Math.cos(ang) + a * Math.sin(ang);
      }
    }
  }
  return y;
}

const sigmoid = (g: number) => 1 / (1 + Math.exp(-g));

interface AttnShape {
  T: number;
  L: number;
  H: number;
  KVH: number;
  D: number;
  scale: number;
}

function refAttention(q: Float64Array, k: Float64Array, v: Float64Array, s: AttnShape) {
  const { T, L, H, KVH, D, scale } = s;
  const out = new Float64Array(T * H * D);
  const lse = new Float64Array(H * T);
  const group = H / KVH;
  for (let h = 0; h < H; h++) {
    const g = Math.floor(h / group);
    for (let i = 0; i < T; i++) {
      const n = L - T + i + 1;
      const sc: number[] = [];
      for (let j = 0; j < n; j++) {
        let d = 0;
        for (let e = 0; e < D; e++) d += q[(i * H + h) * D + e]! * k[(j * KVH + g) * D + e]!;
        sc.push(d * scale);
      }
      const mx = Math.max(...sc);
      let sum = 0;
      for (const x of sc) sum += Math.exp(x - mx);
      const l = mx + Math.log(sum);
      lse[h * T + i] = l;
      for (let j = 0; j < n; j++) {
        const p = Math.exp(sc[j]! - l);
        for (let e = 0; e < D; e++) out[(i * H + h) * D + e]! += p * v[(j * KVH + g) * D + e]!;
      }
    }
  }
  return { out, lse };
}

/** Analytic float64 gradients of sum(out * dOut) for causal attention with kvLen == T. */
function refAttentionBackward(
  q: Float64Array,
  k: Float64Array,
  v: Float64Array,
  dOut: ArrayLike<number>,
  s: AttnShape,
) {
  const { T, H, KVH, D, scale } = s;
  const { out, lse } = refAttention(q, k, v, s);
  const dq = new Float64Array(q.length);
  const dk = new Float64Array(k.length);
  const dv = new Float64Array(v.length);
  const group = H / KVH;
  for (let h = 0; h < H; h++) {
    const g = Math.floor(h / group);
    for (let i = 0; i < T; i++) {
      const qi = (i * H + h) * D;
      let di = 0;
      for (let e = 0; e < D; e++) di += dOut[qi + e]! * out[qi + e]!;
      for (let j = 0; j <= i; j++) {
        const kj = (j * KVH + g) * D;
        let sc = 0;
        let dp = 0;
        for (let e = 0; e < D; e++) {
          sc += q[qi + e]! * k[kj + e]!;
          dp += dOut[qi + e]! * v[kj + e]!;
        }
        const p = Math.exp(sc * scale - lse[h * T + i]!);
        const ds = p * (dp - di) * scale;
        for (let e = 0; e < D; e++) {
          dv[kj + e]! += p * dOut[qi + e]!;
          dq[qi + e]! += ds * k[kj + e]!;
          dk[kj + e]! += ds * q[qi + e]!;
        }
      }
    }
  }
  return { dq, dk, dv };
}

/**
 * Random q, k, v, dOut for a causal (kvLen == T) attention shape, then the kernels' forward and
 * backward on them. Gradient buffers start as NaN: the backward must overwrite, not accumulate.
 */
function runAttention(
  K: WasmKernels,
  s: Omit<AttnShape, "L">,
  seed: number,
): Record<"q" | "k" | "v" | "dOut" | "out" | "lse" | "dq" | "dk" | "dv", Float32Array> {
  const q = fillRandom(K.alloc(s.T * s.H * s.D), seed, 3);
  const k = fillRandom(K.alloc(s.T * s.KVH * s.D), seed + 1, 3);
  const v = fillRandom(K.alloc(s.T * s.KVH * s.D), seed + 2, 2);
  const dOut = fillRandom(K.alloc(q.length), seed + 3);
  const [out, dq, dk, dv] = [q, q, k, v].map((x) => K.alloc(x.length).fill(Number.NaN)) as [
    Float32Array,
    Float32Array,
    Float32Array,
    Float32Array,
  ];
  const lse = K.alloc(s.H * s.T);
  const base = { q, k, v, out, lse, seqLen: s.T, nHeads: s.H, nKvHeads: s.KVH, headDim: s.D };
  K.attentionForward({ ...base, scale: s.scale });
  K.attentionBackward({ ...base, scale: s.scale, dOut, dq, dk, dv });
  return { q, k, v, dOut, out, lse, dq, dk, dv };
}

function refLogSoftmax(x: Float32Array, rows: number, V: number, targets: number[], K: number) {
  const lse = new Float64Array(rows);
  const lp = new Float64Array(rows * K);
  for (let r = 0; r < rows; r++) {
    let mx = -Infinity;
    for (let j = 0; j < V; j++) mx = Math.max(mx, x[r * V + j]!);
    let s = 0;
    for (let j = 0; j < V; j++) s += Math.exp(x[r * V + j]! - mx);
    lse[r] = mx + Math.log(s);
    for (let t = 0; t < K; t++) lp[r * K + t] = x[r * V + targets[r * K + t]!]! - lse[r]!;
  }
  return { lse, lp };
}

const f64 = (x: ArrayLike<number>) => Float64Array.from(x as ArrayLike<number>);

// ------------------------------------------------------------------ the suite, per build

const variants: { relaxedSimd: boolean }[] = [{ relaxedSimd: false }];
if (relaxedSimdSupported()) variants.push({ relaxedSimd: true });

describe.each(variants)("wasm kernels (relaxedSimd=$relaxedSimd)", ({ relaxedSimd }) => {
  let K1: WasmKernels;
  let K2: WasmKernels;

  beforeAll(() => {
    K1 = createWasmKernelsSync({ threads: 1, relaxedSimd });
    K2 = createWasmKernelsSync({ threads: 2, relaxedSimd });
  });
  afterAll(() => {
    K1.dispose();
    K2.dispose();
  });

  it("names the build and its threads", () => {
    expect(K1.name).toBe(relaxedSimd ? "wasm-relaxed-simd" : "wasm-simd");
    expect(K1.threads).toBe(1);
    expect(K2.threads).toBe(2);
  });

  describe("gemm", () => {
    const shapes: [number, number, number][] = [
      [1, 1, 1],
      [3, 5, 7],
      [13, 17, 29],
      [37, 9, 300], // k crosses the 256-deep slice
      [70, 530, 19], // n crosses the 512-wide block, m the 64-row block
      [2, 1000, 300], // the unpacked few-rows path
      [4, 37, 261], // few-rows path, one group of four rows; k has a slice tail and a scalar tail
      [5, 3, 0], // k = 0: C = beta * C
    ];
    const cases: Array<GemmCase & { rowInvariant?: boolean }> = [];
    for (const [m, n, k] of shapes) {
      for (const transA of [false, true]) {
        for (const [transB, rowInvariant] of [
          [false, false],
          [true, false],
          [true, true],
        ] as const) {
          for (const [alpha, beta, pad, batch] of [
            [1, 0, 0, 1],
            [0.7, 1, 3, 1],
            [-1.3, -0.5, 1, 3],
          ] as const) {
            const lda = (transA ? m : k) + pad;
            const ldb = (transB ? k : n) + pad;
            const ldc = n + pad;
            cases.push({
              ...(rowInvariant ? { rowInvariant } : {}),
              transA,
              transB,
              m,
              n,
              k,
              lda: Math.max(1, lda),
              ldb: Math.max(1, ldb),
              ldc,
              alpha,
              beta,
              batch,
              strideA: (transA ? k : m) * Math.max(1, lda) + 5 * (batch - 1),
              strideB: (transB ? n : k) * Math.max(1, ldb) + 2,
              strideC: m * ldc + 7,
            });
          }
        }
      }
    }

    it.each(cases)(
      "matches float64: m=$m n=$n k=$k tA=$transA tB=$transB alpha=$alpha beta=$beta batch=$batch lda=$lda rowInvariant=$rowInvariant",
      (p) => {
        for (const K of [K1, K2]) {
          const a = filled(K, p.batch * p.strideA, 11 + p.m);
          const b = filled(K, p.batch * p.strideB, 23 + p.n);
          const c = filled(K, p.batch * p.strideC, 31 + p.k);
          if (p.beta === 0) c.fill(Number.NaN); // beta = 0 must not read C (BLAS semantics)
          const c0 = Float32Array.from(c);
          const [want, tol] = refGemm(p, a, b, c0);
          K.gemm({ ...p, a, b, c });
          // Entries outside the m x n windows (padding, gaps between batches) are left untouched.
          for (let i = 0; i < want.length; i++) if (tol[i] === 0) want[i] = c0[i]!;
          expectClose(c, want, (i) => (tol[i] === 0 ? 0 : tol[i]!), `gemm threads=${K.threads}`);
          for (const buf of [a, b, c]) K.free(buf);
        }
      },
    );

    // Sampling decodes with rowInvariant so that a sequence's tokens never depend on what else is
    // batched with it: each row of C must come out bit-identical whatever the other rows are.
    it.each([
      { m: 37, n: 70, k: 300 }, // k slices with a scalar tail; n not a multiple of 4
      { m: 100, n: 9, k: 4096 }, // rows processed in several scratch-sized chunks
      { m: 66, n: 513, k: 64 }, // row split across threads
    ])("rowInvariant rows do not depend on the other rows (m=$m n=$n k=$k)", ({ m, n, k }) => {
      for (const K of [K1, K2]) {
        const a = filled(K, m * k, 41);
        const b = filled(K, n * k, 42);
        const all = K.alloc(m * n);
        K.gemm({ transA: false, transB: true, m, n, k, a, b, c: all, rowInvariant: true });
        // Each row alone, and rows 3.. as a group in a different position (offset by 3 rows).
        const alone = K.alloc(n);
        const tail = K.alloc((m - 3) * n);
        K.gemm({
          transA: false,
          transB: true,
          m: m - 3,
          n,
          k,
          a: a.subarray(3 * k),
          b,
          c: tail,
          rowInvariant: true,
        });
        expectBitEqual([tail], [all.subarray(3 * n)], `rows 3.. of ${m}, threads=${K.threads}`);
        for (const r of [0, 1, 5, m - 1]) {
          const x = a.subarray(r * k, (r + 1) * k);
          K.gemm({
            transA: false,
            transB: true,
            m: 1,
            n,
            k,
            a: x,
            b,
            c: alone,
            rowInvariant: true,
          });
          expectBitEqual([alone], [all.subarray(r * n, (r + 1) * n)], `row ${r} alone`);
        }
        for (const buf of [a, b, all, alone, tail]) K.free(buf);
      }
    });

    it.each([
      { m: 130, n: 200, k: 100, batch: 1, split: "rows" },
      { m: 2, n: 5003, k: 200, batch: 1, split: "columns" },
      { m: 4, n: 5003, k: 261, batch: 1, split: "columns, four-row group" },
      { m: 40, n: 60, k: 160, batch: 4, split: "batch" },
      { m: 40, n: 60, k: 160, batch: 3, split: "rows of each product" },
    ])("is bit-identical on 1 and 2 threads (split by $split)", ({ m, n, k, batch }) => {
      const outs: Float32Array[] = [];
      for (const K of [K1, K2]) {
        for (const [transA, transB] of [
          [false, true],
          [true, false],
        ] as const) {
          const a = filled(K, batch * m * k, 5);
          const b = filled(K, batch * k * n, 6);
          const c = K.alloc(batch * m * n);
          K.gemm({ transA, transB, m, n, k, a, b, c, batch });
          outs.push(Float32Array.from(c));
        }
      }
      expectBitEqual(outs.slice(2), outs.slice(0, 2), "gemm 2 threads vs 1");
    });

    it("gives the same result with default and explicit leading dimensions", () => {
      const [m, n, k] = [9, 11, 13];
      const a = filled(K2, m * k, 1);
      const b = filled(K2, k * n, 2);
      const c1 = K2.alloc(m * n);
      const c2 = K2.alloc(m * n);
      K2.gemm({ transA: false, transB: false, m, n, k, a, b, c: c1 });
      K2.gemm({
        transA: false,
        transB: false,
        m,
        n,
        k,
        a,
        b,
        c: c2,
        lda: k,
        ldb: n,
        ldc: n,
        alpha: 1,
        beta: 0,
      });
      expect(c2).toEqual(c1);
    });

    it("rejects foreign and short buffers and bad leading dimensions, naming the field", () => {
      const a = K1.alloc(12);
      const b = K1.alloc(12);
      const c = K1.alloc(9);
      const base = { transA: false, transB: false, m: 3, n: 3, k: 4, a, b, c };
      expect(() => K1.gemm({ ...base, a: new Float32Array(12) })).toThrow(TinkerValidationError);
      expect(() => K1.gemm({ ...base, b: K1.alloc(11) })).toThrow(
        /b has 11 elements, needs at least 12/,
      );
      expect(() => K1.gemm({ ...base, lda: 2 })).toThrow(/lda must be an integer >= 4/);
      expect(() => K1.gemm({ ...base, m: -1 })).toThrow(/m must be a non-negative integer/);
      try {
        K1.gemm({ ...base, c: K2.alloc(9) });
        expect.unreachable();
      } catch (err) {
        expect(err).toBeInstanceOf(TinkerValidationError);
        expect((err as TinkerValidationError).field).toBe("c");
      }
    });
  });

  describe("rmsnorm", () => {
    it.each([
      [7, 37],
      [3, 256],
      [2100, 260], // parallel on 2 threads (>= 512K elements)
    ])("forward matches float64 (rows=%i, dim=%i)", (rows, dim) => {
      for (const K of [K1, K2]) {
        const x = filled(K, rows * dim, rows, 4);
        const w = filled(K, dim, dim, 2, 0);
        const y = K.alloc(rows * dim);
        const rstd = K.alloc(rows);
        K.rmsNormForward(x, w, y, rstd, rows, dim, 1e-6);
        const ref = refRmsNorm(f64(x), f64(w), rows, dim, 1e-6);
        // sum of squares (dim roundings), sqrt/divide, two products.
        const tol = (dim + 8) * U;
        expectClose(rstd, ref.rstd, (i) => tol * ref.rstd[i]!, "rstd");
        expectClose(y, ref.y, (i) => 2 * tol * Math.abs(ref.y[i]!) + 1e-30, "y");
      }
    });

    it("backward matches finite differences of the float64 forward", () => {
      const [rows, dim] = [3, 13];
      const x = filled(K1, rows * dim, 7, 2);
      const w = filled(K1, dim, 8, 2, 0);
      const dy = filled(K1, rows * dim, 9);
      const y = K1.alloc(rows * dim);
      const rstd = K1.alloc(rows);
      const dx = K1.alloc(rows * dim);
      K1.rmsNormForward(x, w, y, rstd, rows, dim, 1e-5);
      K1.rmsNormBackward(dy, x, w, rstd, dx, rows, dim);
      const xd = f64(x);
      const wd = f64(w);
      const loss = () => {
        const { y: yy } = refRmsNorm(xd, wd, rows, dim, 1e-5);
        let s = 0;
        for (let i = 0; i < yy.length; i++) s += yy[i]! * dy[i]!;
        return s;
      };
      const g = numericGrad(xd, loss);
      expectClose(dx, g, (dim + 16) * U * 8 * maxAbs(g) + 1e-8, "dx");
    });

    it("backward with accumulate adds exactly the overwrite result into dx", () => {
      for (const K of [K1, K2]) {
        const [rows, dim] = [2100, 262]; // 2 threads; dim not a multiple of 4 (scalar tail)
        const x = filled(K, rows * dim, 7, 2);
        const w = filled(K, dim, 8, 2, 0);
        const dy = filled(K, rows * dim, 9);
        const rstd = K.alloc(rows);
        K.rmsNormForward(x, w, K.alloc(rows * dim), rstd, rows, dim, 1e-5);
        const fresh = K.alloc(rows * dim);
        K.rmsNormBackward(dy, x, w, rstd, fresh, rows, dim);
        const prior = filled(K, rows * dim, 10, 4);
        const want = Float32Array.from(prior, (p, i) => Math.fround(p + fresh[i]!));
        K.rmsNormBackward(dy, x, w, rstd, prior, rows, dim, true);
        expectBitEqual([prior], [want], "accumulated rmsnorm backward");
      }
    });

    it("is bit-identical on 1 and 2 threads", () => {
      const [rows, dim] = [2100, 260];
      const res: Float32Array[] = [];
      for (const K of [K1, K2]) {
        const x = filled(K, rows * dim, 1);
        const w = filled(K, dim, 2);
        const y = K.alloc(rows * dim);
        const rstd = K.alloc(rows);
        const dx = K.alloc(rows * dim);
        K.rmsNormForward(x, w, y, rstd, rows, dim, 1e-6);
        K.rmsNormBackward(filled(K, rows * dim, 3), x, w, rstd, dx, rows, dim);
        res.push(Float32Array.from(y), Float32Array.from(dx));
      }
      expectBitEqual(res.slice(2), res.slice(0, 2), "rmsnorm 2 threads vs 1");
    });
  });

  describe("rope", () => {
    it.each([
      [5, 3, 6],
      [4, 2, 64],
      [2100, 4, 64], // parallel on 2 threads (>= 512K elements)
    ])("matches float64 and inverse undoes it (rows=%i heads=%i headDim=%i)", (rows, heads, hd) => {
      const res: Float32Array[] = [];
      for (const K of [K1, K2]) {
        const x = filled(K, rows * heads * hd, 3);
        const x0 = Float32Array.from(x);
        const pos = Int32Array.from({ length: rows }, (_, i) => (i * 7919) % 32768);
        K.rope(x, pos, rows, heads, hd, 1e6, false);
        res.push(Float32Array.from(x));
        const want = refRope(f64(x0), Array.from(pos), rows, heads, hd, 1e6, false);
        // cos/sin rounded to float32, two products and a sum.
        expectClose(x, want, 8 * U * maxAbs(x0), "rope");
        K.rope(x, pos, rows, heads, hd, 1e6, true);
        expectClose(x, x0, 16 * U * maxAbs(x0), "rope then inverse");
      }
      expectBitEqual(res.slice(1), res.slice(0, 1), "rope 2 threads vs 1");
    });

    it("inverse is the backward (finite differences)", () => {
      const [rows, heads, hd] = [3, 2, 8];
      const pos = [0, 3, 11];
      const dy = filled(K1, rows * heads * hd, 4);
      const xd = f64(fillRandom(new Float32Array(rows * heads * hd), 5));
      const loss = () => {
        const y = refRope(xd, pos, rows, heads, hd, 10000, false);
        let s = 0;
        for (let i = 0; i < y.length; i++) s += y[i]! * dy[i]!;
        return s;
      };
      const g = numericGrad(xd, loss);
      K1.rope(dy, Int32Array.from(pos), rows, heads, hd, 10000, true);
      expectClose(dy, g, 1e-6, "drope");
    });

    it("keeps its cos/sin tables right as they grow and per (theta, headDim)", () => {
      const K = createWasmKernelsSync({ threads: 1, relaxedSimd });
      try {
        const [heads, hd] = [2, 8];
        // Small positions first (a 1024-row table), then past it (grown, old rows copied), then a
        // second theta and the first again.
        for (const [theta, positions] of [
          [1e4, [0, 5, 1023]],
          [1e4, [1024, 7, 70000]],
          [5e5, [3, 70000]],
          [1e4, [2, 1500, 69999]],
        ] as const) {
          const rows = positions.length;
          const x = filled(K, rows * heads * hd, 9);
          const x0 = f64(x);
          K.rope(x, Int32Array.from(positions), rows, heads, hd, theta, false);
          const want = refRope(x0, [...positions], rows, heads, hd, theta, false);
          // Angles up to 7e4 rad: float64 angle error ~1e-11, cos/sin rounded to float32.
          expectClose(x, want, 8 * U * maxAbs(x0), `rope theta=${theta} at ${positions}`);
        }
        const x = K.alloc(heads * hd);
        expect(() => K.rope(x, Int32Array.from([-1]), 1, heads, hd, 1e4, false)).toThrow(
          /positions\[0\] = -1 is outside/,
        );
        expect(() => K.rope(x, Int32Array.from([1 << 21]), 1, heads, hd, 1e4, false)).toThrow(
          /position 2097152 is outside \[0, 1048576\)/,
        );
      } finally {
        K.dispose();
      }
    });

    it("rejects an odd head dimension and short positions", () => {
      const x = K1.alloc(12);
      expect(() => K1.rope(x, new Int32Array(2), 2, 2, 3, 1e4, false)).toThrow(
        /headDim must be even/,
      );
      expect(() => K1.rope(x, new Int32Array(1), 2, 3, 2, 1e4, false)).toThrow(
        /positions has 1 entries/,
      );
    });
  });

  describe("swiglu", () => {
    const special = [-100, -30, -5, -1e-3, 0, 1e-3, 5, 30, 100];
    it.each([37, 600001])("forward matches float64 (n=%i)", (n) => {
      for (const K of [K1, K2]) {
        const gate = filled(K, n, n, 16);
        gate.set(special);
        const up = filled(K, n, n + 1, 4);
        const out = K.alloc(n);
        K.swigluForward(gate, up, out, n);
        // exp is a ~2-ulp polynomial; add, divide and two products.
        expectClose(
          out,
          Array.from(gate, (g, i) => g * sigmoid(g) * up[i]!),
          (i) => 16 * U * Math.abs(gate[i]! * up[i]!) + 1e-30,
          "swiglu",
        );
      }
    });

    it("backward matches finite differences of the float64 forward", () => {
      const n = 23;
      const gate = filled(K1, n, 1, 12);
      gate.set([-30, -5, 0, 5, 30]);
      const up = filled(K1, n, 2, 4);
      const dOut = filled(K1, n, 3);
      const dGate = K1.alloc(n);
      const dUp = K1.alloc(n);
      K1.swigluBackward(dOut, gate, up, dGate, dUp, n);
      const g = f64(gate);
      const u = f64(up);
      const loss = () => {
        let s = 0;
        for (let i = 0; i < n; i++) s += dOut[i]! * g[i]! * sigmoid(g[i]!) * u[i]!;
        return s;
      };
      const gg = numericGrad(g, loss);
      const gu = numericGrad(u, loss);
      expectClose(dGate, gg, 1e-7 * maxAbs(gg) + 1e-8, "dGate");
      expectClose(dUp, gu, 1e-7 * maxAbs(gu) + 1e-8, "dUp");
    });

    it("is bit-identical on 1 and 2 threads", () => {
      const n = 600001;
      const res: Float32Array[] = [];
      for (const K of [K1, K2]) {
        const gate = filled(K, n, 1, 10);
        const up = filled(K, n, 2);
        const out = K.alloc(n);
        const dg = K.alloc(n);
        const du = K.alloc(n);
        K.swigluForward(gate, up, out, n);
        K.swigluBackward(filled(K, n, 3), gate, up, dg, du, n);
        res.push(Float32Array.from(out), Float32Array.from(dg), Float32Array.from(du));
      }
      expectBitEqual(res.slice(3), res.slice(0, 3), "swiglu 2 threads vs 1");
    });
  });

  describe("attention", () => {
    const shapes: AttnShape[] = [
      { T: 5, L: 5, H: 4, KVH: 2, D: 6, scale: 1 / Math.sqrt(6) },
      { T: 9, L: 9, H: 3, KVH: 1, D: 13, scale: 0.3 },
      { T: 3, L: 11, H: 4, KVH: 4, D: 8, scale: 0.35 }, // KV cache: queries at positions 8..10
      { T: 1, L: 20, H: 2, KVH: 1, D: 64, scale: 0.125 }, // one decode step
      { T: 33, L: 33, H: 4, KVH: 2, D: 64, scale: 0.125 },
      // Longer sequences, and a prefill after a KV-cache prefix (queries at positions 130..199).
      { T: 150, L: 150, H: 4, KVH: 2, D: 64, scale: 0.125 },
      { T: 70, L: 200, H: 3, KVH: 1, D: 20, scale: 0.3 },
    ];

    it.each(shapes)("forward matches float64 (T=$T kvLen=$L H=$H KVH=$KVH D=$D)", (s) => {
      for (const K of [K1, K2]) {
        const q = filled(K, s.T * s.H * s.D, 1, 4);
        const k = filled(K, s.L * s.KVH * s.D, 2, 4);
        const v = filled(K, s.L * s.KVH * s.D, 3, 2);
        const out = K.alloc(s.T * s.H * s.D);
        const lse = K.alloc(s.H * s.T);
        K.attentionForward({
          q,
          k,
          v,
          out,
          lse,
          seqLen: s.T,
          kvLen: s.L,
          nHeads: s.H,
          nKvHeads: s.KVH,
          headDim: s.D,
          scale: s.scale,
        });
        const ref = refAttention(f64(q), f64(k), f64(v), s);
        // scores: D roundings on |q||k| <= D*4 (scaled); exp (2 ulp); L-term weighted sums.
        const scoreMag = s.D * 4 * s.scale;
        expectClose(lse, ref.lse, (s.D + s.L + 16) * U * (scoreMag + maxAbs(ref.lse)) * 2, "lse");
        expectClose(out, ref.out, (s.D + s.L + 16) * U * (1 + scoreMag) * maxAbs(v) * 2, "out");
      }
    });

    it.each(shapes.filter((s) => s.T === s.L))(
      "backward matches finite differences of the float64 forward (T=$T H=$H KVH=$KVH D=$D)",
      (s) => {
        if (s.T > 9) return; // finite differences over every input: keep it small
        const { q, k, v, dOut, dq, dk, dv } = runAttention(K1, s, 4);
        const [qd, kd, vd] = [f64(q), f64(k), f64(v)];
        const loss = () => {
          const { out: o } = refAttention(qd, kd, vd, s);
          let t = 0;
          for (let i = 0; i < o.length; i++) t += o[i]! * dOut[i]!;
          return t;
        };
        for (const [got, x, name] of [
          [dq, qd, "dq"],
          [dk, kd, "dk"],
          [dv, vd, "dv"],
        ] as const) {
          const g = numericGrad(x, loss);
          expectClose(got, g, (s.D + s.T + 16) * U * 64 * (maxAbs(g) + 1), name);
        }
      },
    );

    it("is bit-identical on 1 and 2 threads", () => {
      const s = { T: 130, H: 4, KVH: 2, D: 32 };
      const res: Float32Array[] = [];
      for (const K of [K1, K2]) {
        const r = runAttention(K, { ...s, scale: 0.2 }, 1);
        res.push(...[r.out, r.lse, r.dq, r.dk, r.dv].map((b) => Float32Array.from(b)));
      }
      expectBitEqual(res.slice(5), res.slice(0, 5), "attention 2 threads vs 1");
    });

    // With more threads than kv heads the backward runs in two passes split by tiles; the updates to
    // every output are the same, in the same order, as the one-pass kernel's.
    it.each([
      { T: 150, H: 3, KVH: 1, D: 32, threads: 2 },
      { T: 200, H: 4, KVH: 2, D: 64, threads: 4 },
      { T: 130, H: 2, KVH: 1, D: 32, threads: 3 },
    ])(
      "two-pass backward (T=$T H=$H KVH=$KVH on $threads threads) is bit-identical to one pass",
      (s) => {
        const Kn = createWasmKernelsSync({ threads: s.threads, relaxedSimd });
        try {
          const res: Float32Array[] = [];
          for (const K of [K1, Kn]) {
            const r = runAttention(K, { ...s, scale: 0.18 }, 21);
            res.push(...[r.dq, r.dk, r.dv].map((b) => Float32Array.from(b)));
          }
          expectBitEqual(res.slice(3), res.slice(0, 3), "two-pass vs one-pass attention backward");
        } finally {
          Kn.dispose();
        }
      },
    );

    it("splits one decode row with a long KV cache across heads, bit-identical and exact", () => {
      const s: AttnShape = { T: 1, L: 3000, H: 8, KVH: 2, D: 64, scale: 0.125 };
      const res: Float32Array[] = [];
      for (const K of [K1, K2]) {
        const q = filled(K, s.H * s.D, 1, 4);
        const k = filled(K, s.L * s.KVH * s.D, 2, 4);
        const v = filled(K, s.L * s.KVH * s.D, 3, 2);
        const out = K.alloc(s.H * s.D);
        const lse = K.alloc(s.H);
        K.attentionForward({
          q,
          k,
          v,
          out,
          lse,
          seqLen: 1,
          kvLen: s.L,
          nHeads: s.H,
          nKvHeads: s.KVH,
          headDim: s.D,
          scale: s.scale,
        });
        res.push(Float32Array.from(out), Float32Array.from(lse));
        const ref = refAttention(f64(q), f64(k), f64(v), s);
        const scoreMag = s.D * 4 * s.scale;
        expectClose(
          out,
          ref.out,
          (s.D + s.L + 16) * U * (1 + scoreMag) * maxAbs(v) * 2,
          "decode out",
        );
      }
      expectBitEqual(res.slice(2), res.slice(0, 2), "decode attention 2 threads vs 1");
    });

    it("serves a 40k-token KV cache forward", () => {
      const [L, D] = [40000, 4];
      const q = filled(K2, D, 1);
      const k = filled(K2, L * D, 2);
      const v = filled(K2, L * D, 3);
      const out = K2.alloc(D);
      const lse = K2.alloc(1);
      const p = {
        q,
        k,
        v,
        out,
        lse,
        seqLen: 1,
        kvLen: L,
        nHeads: 1,
        nKvHeads: 1,
        headDim: D,
        scale: 0.5,
      };
      K2.attentionForward(p);
      const ref = refAttention(f64(q), f64(k), f64(v), { T: 1, L, H: 1, KVH: 1, D, scale: 0.5 });
      expectClose(out, ref.out, (D + L + 16) * U * 2 * maxAbs(v) * 2, "out");
    });

    it("the float64 backward reference matches finite differences", () => {
      const s: AttnShape = { T: 6, L: 6, H: 4, KVH: 2, D: 3, scale: 0.4 };
      const [q, k, v] = [1, 2, 3].map((seed) =>
        f64(fillRandom(new Float32Array(s.T * (seed === 1 ? s.H : s.KVH) * s.D), seed, 2)),
      ) as [Float64Array, Float64Array, Float64Array];
      const dOut = fillRandom(new Float32Array(s.T * s.H * s.D), 4);
      const ref = refAttentionBackward(q, k, v, dOut, s);
      const loss = () => {
        const { out } = refAttention(q, k, v, s);
        let t = 0;
        for (let i = 0; i < out.length; i++) t += out[i]! * dOut[i]!;
        return t;
      };
      expectClose(ref.dq, numericGrad(q, loss), 1e-8, "dq");
      expectClose(ref.dk, numericGrad(k, loss), 1e-8, "dk");
      expectClose(ref.dv, numericGrad(v, loss), 1e-8, "dv");
    });

    // Sequences longer than one 64 x 64 tile, with partial tiles at the end (T = 64k + 1, 64k + 3),
    // decode-sized tails (< 4 rows) and no limit from scratch size.
    it.each([
      { T: 65, L: 65, H: 2, KVH: 1, D: 16, scale: 0.25 },
      { T: 131, L: 131, H: 4, KVH: 2, D: 64, scale: 0.125 },
      { T: 200, L: 200, H: 6, KVH: 3, D: 20, scale: 0.2 },
    ])(
      "backward over several tiles matches the float64 gradients (T=$T H=$H KVH=$KVH D=$D)",
      (s) => {
        for (const K of [K1, K2]) {
          const { q, k, v, dOut, dq, dk, dv } = runAttention(K, s, 11);
          const ref = refAttentionBackward(f64(q), f64(k), f64(v), dOut, s);
          // Each gradient sums up to T * group terms, each a product of D-term dot products.
          const tol = (g: Float64Array) =>
            (s.D + s.T * (s.H / s.KVH) + 32) * U * 16 * (maxAbs(g) + 1);
          expectClose(dq, ref.dq, tol(ref.dq), "dq");
          expectClose(dk, ref.dk, tol(ref.dk), "dk");
          expectClose(dv, ref.dv, tol(ref.dv), "dv");
        }
      },
    );

    it("rejects inconsistent shapes", () => {
      const b = K1.alloc(64);
      const p = {
        q: b,
        k: b,
        v: b,
        out: b,
        lse: b,
        seqLen: 2,
        nHeads: 3,
        nKvHeads: 2,
        headDim: 2,
        scale: 1,
      };
      expect(() => K1.attentionForward(p)).toThrow(
        /nHeads \(3\) must be a multiple of nKvHeads \(2\)/,
      );
      expect(() => K1.attentionForward({ ...p, nHeads: 2, kvLen: 1 })).toThrow(/kvLen/);
      expect(() =>
        K1.attentionBackward({ ...p, nHeads: 2, kvLen: 3, dOut: b, dq: b, dk: b, dv: b }),
      ).toThrow(/kvLen == seqLen/);
    });
  });

  describe("log-softmax", () => {
    it.each([
      [5, 1003, 1],
      [3, 40000, 3],
      [2, 7, 2],
    ])("gather matches float64 (rows=%i vocab=%i k=%i)", (rows, V, Kt) => {
      for (const K of [K1, K2]) {
        const logits = filled(K, rows * V, V, 40);
        logits[0] = 1000; // row 0 is dominated by one huge logit
        if (rows > 2) for (let j = 0; j < V; j++) logits[2 * V + j] = -1e4 + j * 1e-3; // far from 0
        const before = Float32Array.from(logits);
        const r = rng(V);
        const targets = Array.from({ length: rows * Kt }, () => Math.floor(r() * V));
        targets[0] = 0;
        const lp = K.alloc(rows * Kt);
        const lse = K.alloc(rows);
        K.logSoftmaxGather(logits, rows, V, Int32Array.from(targets), Kt, lp, lse);
        expectBitEqual([logits], [before], "logits unchanged");
        const ref = refLogSoftmax(logits, rows, V, targets, Kt);
        // lse = max + log(sum): the sum of V exps loses ~(512 + V/512) roundings relative; the
        // float32 results are rounded once more at magnitude |lse|.
        const tol = (i: number, arr: Float64Array) =>
          4 * U * Math.abs(arr[i]!) + (600 + V / 512) * U * 4;
        expectClose(lse, ref.lse, (i) => tol(i, ref.lse), "lse");
        expectClose(
          lp,
          ref.lp,
          (i) => tol(Math.floor(i / Kt), ref.lse) + 4 * U * Math.abs(ref.lp[i]!),
          "logprobs",
        );
      }
    });

    it("backward matches finite differences (duplicate targets included)", () => {
      const [rows, V, Kt] = [3, 11, 2];
      const logits = filled(K1, rows * V, 1, 6);
      const targets = [3, 3, 0, 10, 5, 7];
      const g = filled(K1, rows * Kt, 2);
      const lp = K1.alloc(rows * Kt);
      const lse = K1.alloc(rows);
      K1.logSoftmaxGather(logits, rows, V, Int32Array.from(targets), Kt, lp, lse);
      const xd = f64(logits);
      const loss = () => {
        let s = 0;
        for (let r = 0; r < rows; r++) {
          let mx = -Infinity;
          for (let j = 0; j < V; j++) mx = Math.max(mx, xd[r * V + j]!);
          let z = 0;
          for (let j = 0; j < V; j++) z += Math.exp(xd[r * V + j]! - mx);
          for (let t = 0; t < Kt; t++)
            s += g[r * Kt + t]! * (xd[r * V + targets[r * Kt + t]!]! - mx - Math.log(z));
        }
        return s;
      };
      const want = numericGrad(xd, loss);
      K1.logSoftmaxBackward(logits, rows, V, Int32Array.from(targets), Kt, g, lse);
      expectClose(logits, want, 1e-6, "dlogits");
    });

    it("backward matches the float64 formula on a large vocabulary, bit-identical across threads", () => {
      const [rows, V, Kt] = [6, 50000, 2];
      const res: Float32Array[] = [];
      for (const K of [K1, K2]) {
        const logits = filled(K, rows * V, 3, 30);
        const x0 = Float32Array.from(logits);
        const r = rng(4);
        const targets = Int32Array.from({ length: rows * Kt }, () => Math.floor(r() * V));
        const g = filled(K, rows * Kt, 5);
        const lp = K.alloc(rows * Kt);
        const lse = K.alloc(rows);
        K.logSoftmaxGather(logits, rows, V, targets, Kt, lp, lse);
        K.logSoftmaxBackward(logits, rows, V, targets, Kt, g, lse);
        const ref = refLogSoftmax(x0, rows, V, Array.from(targets), Kt);
        const want = new Float64Array(rows * V);
        for (let row = 0; row < rows; row++) {
          const G = g[row * Kt]! + g[row * Kt + 1]!;
          for (let j = 0; j < V; j++)
            want[row * V + j] = -G * Math.exp(x0[row * V + j]! - ref.lse[row]!);
          for (let t = 0; t < Kt; t++) want[row * V + targets[row * Kt + t]!]! += g[row * Kt + t]!;
        }
        // softmax terms carry the lse error (absolute ~1e-5 here) as a relative error.
        expectClose(logits, want, (i) => 1e-5 * Math.abs(want[i]!) + 1e-7, "dlogits");
        res.push(Float32Array.from(logits), Float32Array.from(lp));
      }
      expectBitEqual(res.slice(2), res.slice(0, 2), "log-softmax 2 threads vs 1");
    });

    it("rejects out-of-range targets before touching memory", () => {
      const logits = K1.alloc(20);
      const lp = K1.alloc(2);
      const lse = K1.alloc(2);
      expect(() =>
        K1.logSoftmaxGather(logits, 2, 10, Int32Array.from([1, 10]), 1, lp, lse),
      ).toThrow(/targets\[1\] = 10 is outside \[0, 10\)/);
      expect(() =>
        K1.logSoftmaxBackward(logits, 2, 10, Int32Array.from([-1, 0]), 1, lp, lse),
      ).toThrow(TinkerValidationError);
    });
  });

  describe("adamW and sumSquares", () => {
    it.each([37, 600001])("adamW matches float64 over three steps (n=%i)", (n) => {
      for (const K of [K1, K2]) {
        const param = filled(K, n, 1, 2);
        const m = K.alloc(n);
        const v = K.alloc(n);
        const pd = f64(param);
        const md = new Float64Array(n);
        const vd = new Float64Array(n);
        const [lr, b1, b2, eps, wd, gs] = [1e-2, 0.9, 0.95, 1e-8, 0.1, 0.5];
        for (let t = 1; t <= 3; t++) {
          const grad = filled(K, n, 10 + t);
          const bc1 = 1 - b1 ** t;
          const bc2 = 1 - b2 ** t;
          K.adamW({
            param,
            grad,
            m,
            v,
            n,
            lr,
            beta1: b1,
            beta2: b2,
            eps,
            weightDecay: wd,
            bc1,
            bc2,
            gradScale: gs,
          });
          for (let i = 0; i < n; i++) {
            const g = grad[i]! * gs;
            md[i] = b1 * md[i]! + (1 - b1) * g;
            vd[i] = b2 * vd[i]! + (1 - b2) * g * g;
            pd[i] =
              pd[i]! - (lr * (md[i]! / bc1)) / (Math.sqrt(vd[i]! / bc2) + eps) - lr * wd * pd[i]!;
          }
          K.free(grad);
        }
        // Each step rounds p at |p| and adds an update of size <= ~lr*|m/sqrt(v)| computed with
        // ~10 roundings; m and v themselves are within a few ulps.
        expectClose(m, md, (i) => 16 * U * (Math.abs(md[i]!) + 0.5), "m");
        expectClose(v, vd, (i) => 16 * U * (Math.abs(vd[i]!) + 0.25), "v");
        expectClose(param, pd, (i) => 8 * U * Math.abs(pd[i]!) + 3 * 32 * U * lr * 10, "param");
      }
    });

    it.each([0, 1, 37, 1_100_003])("sumSquares accumulates in float64 (n=%i)", (n) => {
      const sums: number[] = [];
      for (const K of [K1, K2]) {
        const x = filled(K, Math.max(n, 1), 9, 100);
        let want = 0;
        for (let i = 0; i < n; i++) want += x[i]! * x[i]!;
        const got = K.sumSquares(x, n);
        expect(Math.abs(got - want)).toBeLessThanOrEqual(1e-12 * want);
        sums.push(got);
      }
      expect(sums[1]).toBe(sums[0]); // fixed chunking: independent of the thread count
    });
  });

  describe("alloc and free", () => {
    it("hands out zero-filled blocks and reuses freed ones", () => {
      const a = K1.alloc(1000);
      a.fill(7);
      const off = a.byteOffset;
      K1.free(a);
      const b = K1.alloc(1000);
      expect(b.byteOffset).toBe(off);
      expect(maxAbs(b)).toBe(0);
      expect(b.byteOffset % 64).toBe(0);
      K1.free(b);
    });

    it("keeps earlier views valid when the memory grows", () => {
      const a = K1.alloc(16);
      a[3] = 42;
      const big = K1.alloc(32 << 20); // 128 MiB: forces memory.grow
      big[big.length - 1] = 1;
      expect(a[3]).toBe(42);
      const c = K1.alloc(8);
      K1.swigluForward(a, a, c, 8); // a still usable as a kernel argument after the grow
      expect(big.buffer.byteLength).toBeGreaterThanOrEqual(big.byteOffset + big.byteLength);
      K1.free(big);
      K1.free(a);
      K1.free(c);
    });

    it("fails with a TinkerError beyond the 4 GiB wasm32 limit, and keeps working", () => {
      expect(() => K1.alloc(2 ** 31)).toThrow(/out of memory/);
      const a = K1.alloc(8);
      expect(a.length).toBe(8);
      K1.free(a);
    });

    it("rejects subarrays, double frees and foreign arrays", () => {
      const a = K1.alloc(64);
      expect(() => K1.free(a.subarray(8))).toThrow(/not returned by alloc/);
      expect(() => K1.free(new Float32Array(4))).toThrow(TinkerValidationError);
      K1.free(a);
      expect(() => K1.free(a)).toThrow(/already freed/);
      expect(() => K1.alloc(-1)).toThrow(TinkerValidationError);
    });
  });
});

describe("thread pool failures", () => {
  it("reports a trap on any thread as an error and stays usable", () => {
    const K = createWasmKernelsSync({ threads: 2, relaxedSimd: false });
    const pool = (
      K as unknown as { pool: { run(op: string, args: number[], parallel: boolean): void } }
    ).pool;
    const out = K.alloc(64);
    // sumsq over 64 chunks whose second half (the worker's share) lies past the end of memory.
    const n = 64 * 16384;
    const start = K.memoryStats().memoryBytes - (n / 2) * 4;
    expect(() => pool.run("sumsq", [start, n, out.byteOffset], true)).toThrow(
      /failed on a worker thread/,
    );
    // ... and a share that traps on the calling thread.
    expect(() => pool.run("sumsq", [0xfff0_0000, n, out.byteOffset], true)).toThrow();
    const x = K.alloc(300_000);
    x.fill(1);
    expect(K.sumSquares(x, 300_000)).toBe(300_000); // parallel path still works afterwards
    K.dispose();
  });
});

describe("createWasmKernels", () => {
  it("returns Kernels asynchronously and validates options", async () => {
    const K = await createWasmKernels({ threads: 2, relaxedSimd: false });
    expect(K.name).toBe("wasm-simd");
    expect(K.threads).toBe(2);
    const x = K.alloc(4);
    x.set([1, 2, 3, 4]);
    expect(K.sumSquares(x, 4)).toBe(30);
    K.dispose();
    expect(() => K.sumSquares(x, 4)).toThrow(/after dispose/);
    expect(() => createWasmKernelsSync({ threads: 0 })).toThrow(/threads must be an integer/);
  });
});
