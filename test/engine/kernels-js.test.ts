import { describe, expect, it } from "vitest";
import { createJsKernels } from "../../src/local/engine/kernels/js.js";
import { SeededRng } from "../../src/local/engine/model/prng.js";

const K = createJsKernels();

function rand(rng: SeededRng, n: number): Float32Array {
  return Float32Array.from({ length: n }, () => rng.normal());
}

describe("js kernels", () => {
  it("gemm matches a naive product in all transpose variants, with alpha/beta, strides and batch", () => {
    const rng = new SeededRng(1);
    const m = 5;
    const n = 7;
    const k = 6;
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        const batch = 2;
        const a = rand(rng, batch * m * k);
        const b = rand(rng, batch * k * n);
        const c0 = rand(rng, batch * m * n);
        const c = c0.slice();
        K.gemm({
          transA,
          transB,
          m,
          n,
          k,
          a,
          b,
          c,
          alpha: 0.5,
          beta: 2,
          batch,
          strideA: m * k,
          strideB: k * n,
          strideC: m * n,
        });
        for (let bi = 0; bi < batch; bi++) {
          for (let i = 0; i < m; i++) {
            for (let j = 0; j < n; j++) {
              let s = 0;
              for (let q = 0; q < k; q++) {
                const av = transA ? a[bi * m * k + q * m + i]! : a[bi * m * k + i * k + q]!;
                const bv = transB ? b[bi * k * n + j * k + q]! : b[bi * k * n + q * n + j]!;
                s += av * bv;
              }
              const want = 2 * c0[bi * m * n + i * n + j]! + 0.5 * s;
              expect(c[bi * m * n + i * n + j]).toBeCloseTo(want, 4);
            }
          }
        }
      }
    }
  });

  it("attention rows are softmax-weighted averages of values with the right lse; the KV-cache form agrees", () => {
    const rng = new SeededRng(2);
    const T = 4;
    const nH = 2;
    const nKv = 1;
    const D = 3;
    const q = rand(rng, T * nH * D);
    const k = rand(rng, T * nKv * D);
    const v = rand(rng, T * nKv * D);
    const out = new Float32Array(T * nH * D);
    const lse = new Float32Array(nH * T);
    K.attentionForward({
      q,
      k,
      v,
      seqLen: T,
      nHeads: nH,
      nKvHeads: nKv,
      headDim: D,
      scale: 0.7,
      out,
      lse,
    });
    for (let h = 0; h < nH; h++) {
      for (let i = 0; i < T; i++) {
        const s = [];
        for (let j = 0; j <= i; j++) {
          let dot = 0;
          for (let d = 0; d < D; d++) dot += q[(i * nH + h) * D + d]! * k[j * D + d]!;
          s.push(0.7 * dot);
        }
        const l = Math.log(s.reduce((a, x) => a + Math.exp(x), 0));
        expect(lse[h * T + i]).toBeCloseTo(l, 5);
        for (let d = 0; d < D; d++) {
          const want = s.reduce((acc, x, j) => acc + Math.exp(x - l) * v[j * D + d]!, 0);
          expect(out[(i * nH + h) * D + d]).toBeCloseTo(want, 5);
        }
      }
    }
    // The last query alone against the full K/V (kvLen > seqLen) gives the same row.
    const out1 = new Float32Array(nH * D);
    const lse1 = new Float32Array(nH);
    K.attentionForward({
      q: q.subarray((T - 1) * nH * D),
      k,
      v,
      seqLen: 1,
      kvLen: T,
      nHeads: nH,
      nKvHeads: nKv,
      headDim: D,
      scale: 0.7,
      out: out1,
      lse: lse1,
    });
    for (let i = 0; i < nH * D; i++) expect(out1[i]).toBeCloseTo(out[(T - 1) * nH * D + i]!, 6);
  });

  it("logSoftmaxGather / Backward give logprobs and the softmax gradient", () => {
    const rng = new SeededRng(3);
    const V = 11;
    const logits = rand(rng, 2 * V);
    const targets = Int32Array.from([3, 7, 0, 10]);
    const lp = new Float32Array(4);
    const lse = new Float32Array(2);
    K.logSoftmaxGather(logits, 2, V, targets, 2, lp, lse);
    for (let r = 0; r < 2; r++) {
      const l = Math.log(
        Array.from(logits.subarray(r * V, r * V + V)).reduce((a, x) => a + Math.exp(x), 0),
      );
      expect(lse[r]).toBeCloseTo(l, 5);
      for (let j = 0; j < 2; j++)
        expect(lp[r * 2 + j]).toBeCloseTo(logits[r * V + targets[r * 2 + j]!]! - l, 5);
    }
    const g = Float32Array.from([1, -2, 0.5, 3]);
    const d = logits.slice();
    K.logSoftmaxBackward(d, 2, V, targets, 2, g, lse);
    for (let r = 0; r < 2; r++) {
      for (let v = 0; v < V; v++) {
        const p = Math.exp(logits[r * V + v]! - lse[r]!);
        let want = -(g[r * 2]! + g[r * 2 + 1]!) * p;
        for (let j = 0; j < 2; j++) if (targets[r * 2 + j] === v) want += g[r * 2 + j]!;
        expect(d[r * V + v]).toBeCloseTo(want, 5);
      }
    }
  });

  it("rmsNormBackward with accumulate adds the overwrite result into dx", () => {
    const [rows, dim] = [3, 10];
    const x = Float32Array.from({ length: rows * dim }, (_, i) => Math.sin(i) * 2);
    const w = Float32Array.from({ length: dim }, (_, i) => 0.5 + i / dim);
    const dy = Float32Array.from({ length: rows * dim }, (_, i) => Math.cos(i * 0.7));
    const rstd = new Float32Array(rows);
    K.rmsNormForward(x, w, new Float32Array(rows * dim), rstd, rows, dim, 1e-6);
    const fresh = new Float32Array(rows * dim);
    K.rmsNormBackward(dy, x, w, rstd, fresh, rows, dim);
    const dx = Float32Array.from({ length: rows * dim }, (_, i) => i / 7 - 2);
    const prior = Float32Array.from(dx);
    K.rmsNormBackward(dy, x, w, rstd, dx, rows, dim, true);
    for (let i = 0; i < dx.length; i++) {
      expect(dx[i]).toBeCloseTo(prior[i]! + fresh[i]!, 5);
    }
    expect(fresh.some((g) => Math.abs(g) > 0.01)).toBe(true);
  });

  it("rope inverse undoes rope, and rotation preserves pair norms", () => {
    const rng = new SeededRng(4);
    const x = rand(rng, 3 * 2 * 8);
    const x0 = x.slice();
    const pos = Int32Array.from([0, 5, 17]);
    K.rope(x, pos, 3, 2, 8, 10000, false);
    for (let i = 0; i < 2 * 8; i++) expect(x[i]).toBeCloseTo(x0[i]!, 6); // position 0 is identity
    const n0 = x0[16]! ** 2 + x0[20]! ** 2;
    expect(x[16]! ** 2 + x[20]! ** 2).toBeCloseTo(n0, 5);
    K.rope(x, pos, 3, 2, 8, 10000, true);
    for (let i = 0; i < x.length; i++) expect(x[i]).toBeCloseTo(x0[i]!, 5);
  });

  it("adamW matches the closed form of a first step", () => {
    const param = Float32Array.from([1, -2]);
    const grad = Float32Array.from([0.5, -0.25]);
    const m = new Float32Array(2);
    const v = new Float32Array(2);
    K.adamW({
      param,
      grad,
      m,
      v,
      n: 2,
      lr: 0.1,
      beta1: 0.9,
      beta2: 0.95,
      eps: 0,
      weightDecay: 0.5,
      bc1: 0.1,
      bc2: 0.05,
      gradScale: 1,
    });
    // First step: m/bc1 = g, sqrt(v/bc2) = |g| -> update = lr * sign(g); decay = lr * wd * p.
    expect(param[0]).toBeCloseTo(1 - 0.1 - 0.05, 6);
    expect(param[1]).toBeCloseTo(-2 + 0.1 + 0.1, 6);
  });
});
