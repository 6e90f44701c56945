// GEMM: C = alpha * op(A) @ op(B) + beta * C, row-major, with leading dimensions and batching.
//
// Blocked as in the classic Goto/BLIS scheme, simplified: for each NC-wide column block and each
// KC-deep slice of k, op(B) is packed into 8-column panels (packing absorbs transB), then a 4x8
// register-blocked micro-kernel (8 v128 accumulators) sweeps MC-row blocks of op(A), which is read
// through strides (so transA costs nothing extra). Each thread packs its own B panels into its own
// scratch, so threads never synchronise inside a product. Every element of C is accumulated in the
// same order whatever the thread split, so results are bit-identical across thread counts.

import { fma4, hsum4 } from "./simd";
import { SCRATCH_BYTES, scratchPtr } from "./scratch";

const KC: i32 = 256;
const NC: i32 = 512;
const MC: i32 = 64;

// Products with at most this many rows of op(A) skip packing (decode steps of a few sequences).
const FEW_ROWS: i32 = 4;
const FEW_COLS: i32 = 8192;
// Edge tile (8 floats) after the packed B block, inside the thread's scratch.
const EDGE_TILE: i32 = KC * NC * 4;
// Scratch bytes a product may use when k <= 4096 (packed block + edge tile; the few-rows path needs
// less). Kernels that call `gemmOne` keep their own data above this.
export const GEMM_SCRATCH_BYTES: i32 = 768 << 10;

// Packs op(B)[pc..pc+kc, j0..j0+nc) as panels of 8 columns (zero-padded): panel q, row p at
// dst + (q*kc + p)*32 bytes.
function packB(b: usize, ldb: i32, transB: bool, pc: i32, kc: i32, j0: i32, nc: i32, dst: usize): void {
  const panels = (nc + 7) >> 3;
  for (let q = 0; q < panels; q++) {
    const jq = j0 + (q << 3);
    const w = min(8, j0 + nc - jq);
    let d = dst + ((<usize>(q * kc)) << 5);
    if (!transB) {
      let s = b + ((<usize>pc * <usize>ldb + <usize>jq) << 2);
      const step = (<usize>ldb) << 2;
      if (w == 8) {
        for (let p = 0; p < kc; p++) {
          v128.store(d, v128.load(s));
          v128.store(d, v128.load(s, 16), 16);
          s += step;
          d += 32;
        }
      } else {
        for (let p = 0; p < kc; p++) {
          for (let jj = 0; jj < 8; jj++) {
            store<f32>(d + ((<usize>jj) << 2), jj < w ? load<f32>(s + ((<usize>jj) << 2)) : 0);
          }
          s += step;
          d += 32;
        }
      }
    } else {
      // op(B)[p, j] = B[j*ldb + p]: rows of B are columns of op(B).
      const s = b + ((<usize>jq * <usize>ldb + <usize>pc) << 2);
      const rs = (<usize>ldb) << 2;
      if (w == 8) {
        let p = 0;
        for (; p + 4 <= kc; p += 4) {
          const off = (<usize>p) << 2;
          for (let half = 0; half < 2; half++) {
            const base = s + (<usize>(half * 4)) * rs + off;
            const r0 = v128.load(base);
            const r1 = v128.load(base + rs);
            const r2 = v128.load(base + 2 * rs);
            const r3 = v128.load(base + 3 * rs);
            const t0 = v128.shuffle<f32>(r0, r1, 0, 4, 1, 5);
            const t1 = v128.shuffle<f32>(r0, r1, 2, 6, 3, 7);
            const t2 = v128.shuffle<f32>(r2, r3, 0, 4, 1, 5);
            const t3 = v128.shuffle<f32>(r2, r3, 2, 6, 3, 7);
            const o = d + (<usize>(half * 16));
            v128.store(o, v128.shuffle<f32>(t0, t2, 0, 1, 4, 5));
            v128.store(o, v128.shuffle<f32>(t0, t2, 2, 3, 6, 7), 32);
            v128.store(o, v128.shuffle<f32>(t1, t3, 0, 1, 4, 5), 64);
            v128.store(o, v128.shuffle<f32>(t1, t3, 2, 3, 6, 7), 96);
          }
          d += 128;
        }
        for (; p < kc; p++) {
          for (let jj = 0; jj < 8; jj++) {
            store<f32>(d + ((<usize>jj) << 2), load<f32>(s + (<usize>jj) * rs + ((<usize>p) << 2)));
          }
          d += 32;
        }
      } else {
        for (let p = 0; p < kc; p++) {
          for (let jj = 0; jj < 8; jj++) {
            store<f32>(
              d + ((<usize>jj) << 2),
              jj < w ? load<f32>(s + (<usize>jj) * rs + ((<usize>p) << 2)) : 0,
            );
          }
          d += 32;
        }
      }
    }
  }
}

// Writes one accumulator row (8 floats) into C: c = alpha*acc + beta*c (beta == 0: c is not read).
@inline
function storeRow(c: usize, lo: v128, hi: v128, w: i32, alpha: f32, beta: f32): void {
  const va = f32x4.splat(alpha);
  let x0 = f32x4.mul(lo, va);
  let x1 = f32x4.mul(hi, va);
  if (w == 8) {
    if (beta != 0) {
      const vb = f32x4.splat(beta);
      x0 = fma4(v128.load(c), vb, x0);
      x1 = fma4(v128.load(c, 16), vb, x1);
    }
    v128.store(c, x0);
    v128.store(c, x1, 16);
  } else {
    const t = scratchPtr + <usize>EDGE_TILE;
    v128.store(t, x0);
    v128.store(t, x1, 16);
    for (let j = 0; j < w; j++) {
      const o = (<usize>j) << 2;
      let v = load<f32>(t + o);
      if (beta != 0) v += beta * load<f32>(c + o);
      store<f32>(c + o, v);
    }
  }
}

// 4x8 micro-kernel: rows of op(A) start at a, a+rs, a+2rs, a+3rs (bytes); successive k at +cs.
function kernel4x8(a: usize, rs: usize, cs: usize, bp: usize, kc: i32, c: usize, ldc: usize, w: i32, alpha: f32, beta: f32): void {
  let c00 = f32x4.splat(0);
  let c01 = f32x4.splat(0);
  let c10 = f32x4.splat(0);
  let c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0);
  let c21 = f32x4.splat(0);
  let c30 = f32x4.splat(0);
  let c31 = f32x4.splat(0);
  let a0 = a;
  let a1 = a + rs;
  let a2 = a + 2 * rs;
  let a3 = a + 3 * rs;
  for (let p = 0; p < kc; p++) {
    const b0 = v128.load(bp);
    const b1 = v128.load(bp, 16);
    let av = v128.load32_splat(a0);
    c00 = fma4(av, b0, c00);
    c01 = fma4(av, b1, c01);
    av = v128.load32_splat(a1);
    c10 = fma4(av, b0, c10);
    c11 = fma4(av, b1, c11);
    av = v128.load32_splat(a2);
    c20 = fma4(av, b0, c20);
    c21 = fma4(av, b1, c21);
    av = v128.load32_splat(a3);
    c30 = fma4(av, b0, c30);
    c31 = fma4(av, b1, c31);
    a0 += cs;
    a1 += cs;
    a2 += cs;
    a3 += cs;
    bp += 32;
  }
  storeRow(c, c00, c01, w, alpha, beta);
  storeRow(c + ldc, c10, c11, w, alpha, beta);
  storeRow(c + 2 * ldc, c20, c21, w, alpha, beta);
  storeRow(c + 3 * ldc, c30, c31, w, alpha, beta);
}

function kernel1x8(a: usize, cs: usize, bp: usize, kc: i32, c: usize, w: i32, alpha: f32, beta: f32): void {
  let c0 = f32x4.splat(0);
  let c1 = f32x4.splat(0);
  let e0 = f32x4.splat(0);
  let e1 = f32x4.splat(0);
  let p = 0;
  // Two interleaved accumulator pairs hide FMA latency; they are combined at the end. The order
  // is fixed by kc alone, so the result does not depend on threading.
  for (; p + 2 <= kc; p += 2) {
    let av = v128.load32_splat(a);
    c0 = fma4(av, v128.load(bp), c0);
    c1 = fma4(av, v128.load(bp, 16), c1);
    av = v128.load32_splat(a + cs);
    e0 = fma4(av, v128.load(bp, 32), e0);
    e1 = fma4(av, v128.load(bp, 48), e1);
    a += 2 * cs;
    bp += 64;
  }
  if (p < kc) {
    const av = v128.load32_splat(a);
    c0 = fma4(av, v128.load(bp), c0);
    c1 = fma4(av, v128.load(bp, 16), c1);
  }
  storeRow(c, f32x4.add(c0, e0), f32x4.add(c1, e1), w, alpha, beta);
}

// Packed path for rows [m0, m1) and columns [n0, n1) of one product.
function gemmBlock(
  transA: bool, transB: bool, k: i32,
  a: usize, lda: i32, b: usize, ldb: i32, c: usize, ldc: i32,
  alpha: f32, beta: f32, m0: i32, m1: i32, n0: i32, n1: i32,
): void {
  const pack = scratchPtr;
  const rs: usize = transA ? 4 : (<usize>lda) << 2;
  const cs: usize = transA ? (<usize>lda) << 2 : 4;
  const ldcB = (<usize>ldc) << 2;
  for (let jc = n0; jc < n1; jc += NC) {
    const nc = min(NC, n1 - jc);
    const panels = (nc + 7) >> 3;
    for (let pc = 0; pc < k; pc += KC) {
      const kc = min(KC, k - pc);
      packB(b, ldb, transB, pc, kc, jc, nc, pack);
      const be: f32 = pc == 0 ? beta : 1;
      for (let ic = m0; ic < m1; ic += MC) {
        const ie = min(m1, ic + MC);
        for (let q = 0; q < panels; q++) {
          const j = jc + (q << 3);
          const w = min(8, n1 - j);
          const bp = pack + ((<usize>(q * kc)) << 5);
          let i = ic;
          for (; i + 4 <= ie; i += 4) {
            kernel4x8(a + <usize>i * rs + <usize>pc * cs, rs, cs, bp, kc, c + <usize>i * ldcB + ((<usize>j) << 2), ldcB, w, alpha, be);
          }
          for (; i < ie; i++) {
            kernel1x8(a + <usize>i * rs + <usize>pc * cs, cs, bp, kc, c + <usize>i * ldcB + ((<usize>j) << 2), w, alpha, be);
          }
        }
      }
    }
  }
}

// C rows [m0,m1) x cols [n0,n1) = beta * C (k == 0 case).
function scaleC(c: usize, ldc: i32, beta: f32, m0: i32, m1: i32, n0: i32, n1: i32): void {
  for (let i = m0; i < m1; i++) {
    const row = c + ((<usize>i * <usize>ldc) << 2);
    for (let j = n0; j < n1; j++) {
      const o = row + ((<usize>j) << 2);
      store<f32>(o, beta == 0 ? 0 : beta * load<f32>(o));
    }
  }
}

// c = alpha * total + beta * c (beta == 0: c is not read).
@inline
function storeScaled(o: usize, total: f32, alpha: f32, beta: f32): void {
  store<f32>(o, alpha * total + (beta == 0 ? 0 : beta * load<f32>(o)));
}

// Unpacked path for very few rows (decode steps): packing B would cost as much as the product.
// op(A) rows are copied to scratch, and each row (transB) or block row (not transB) of B is read once
// for all of them. Sums run over k in the same KC slices whatever the thread split.
function gemmFewRows(
  transA: bool, transB: bool, k: i32,
  a: usize, lda: i32, b: usize, ldb: i32, c: usize, ldc: i32,
  alpha: f32, beta: f32, m0: i32, m1: i32, n0: i32, n1: i32,
): void {
  const mr = m1 - m0;
  const kB = (<usize>k) << 2;
  const rows = scratchPtr; // op(A) rows m0..m1, contiguous, k floats each
  for (let i = 0; i < mr; i++) {
    const dst = rows + <usize>i * kB;
    for (let p = 0; p < k; p++) {
      const src = transA
        ? a + ((<usize>p * <usize>lda + <usize>(m0 + i)) << 2)
        : a + ((<usize>(m0 + i) * <usize>lda + <usize>p) << 2);
      store<f32>(dst + ((<usize>p) << 2), load<f32>(src));
    }
  }
  if (transB) {
    // C[i, j] = dot(op(A) row i, B row j). Each B row is streamed once for all rows of op(A); every
    // dot is summed the same way (two 4-lane accumulators per KC slice, then the slices in order)
    // whether it is computed in a group of four rows or alone.
    for (let j = n0; j < n1; j++) {
      const brow = b + ((<usize>j * <usize>ldb) << 2);
      let i = 0;
      for (; i + 4 <= mr; i += 4) {
        const ar0 = rows + <usize>i * kB;
        const ar1 = ar0 + kB;
        const ar2 = ar1 + kB;
        const ar3 = ar2 + kB;
        let t0: f32 = 0;
        let t1: f32 = 0;
        let t2: f32 = 0;
        let t3: f32 = 0;
        for (let pc = 0; pc < k; pc += KC) {
          const pe = min(k, pc + KC);
          let s00 = f32x4.splat(0);
          let s01 = f32x4.splat(0);
          let s10 = f32x4.splat(0);
          let s11 = f32x4.splat(0);
          let s20 = f32x4.splat(0);
          let s21 = f32x4.splat(0);
          let s30 = f32x4.splat(0);
          let s31 = f32x4.splat(0);
          let p = pc;
          for (; p + 8 <= pe; p += 8) {
            const o = (<usize>p) << 2;
            const b0 = v128.load(brow + o);
            const b1 = v128.load(brow + o, 16);
            s00 = fma4(v128.load(ar0 + o), b0, s00);
            s01 = fma4(v128.load(ar0 + o, 16), b1, s01);
            s10 = fma4(v128.load(ar1 + o), b0, s10);
            s11 = fma4(v128.load(ar1 + o, 16), b1, s11);
            s20 = fma4(v128.load(ar2 + o), b0, s20);
            s21 = fma4(v128.load(ar2 + o, 16), b1, s21);
            s30 = fma4(v128.load(ar3 + o), b0, s30);
            s31 = fma4(v128.load(ar3 + o, 16), b1, s31);
          }
          let u0 = hsum4(f32x4.add(s00, s01));
          let u1 = hsum4(f32x4.add(s10, s11));
          let u2 = hsum4(f32x4.add(s20, s21));
          let u3 = hsum4(f32x4.add(s30, s31));
          for (; p < pe; p++) {
            const o = (<usize>p) << 2;
            const bv = load<f32>(brow + o);
            u0 += load<f32>(ar0 + o) * bv;
            u1 += load<f32>(ar1 + o) * bv;
            u2 += load<f32>(ar2 + o) * bv;
            u3 += load<f32>(ar3 + o) * bv;
          }
          t0 += u0;
          t1 += u1;
          t2 += u2;
          t3 += u3;
        }
        storeScaled(c + ((<usize>(m0 + i) * <usize>ldc + <usize>j) << 2), t0, alpha, beta);
        storeScaled(c + ((<usize>(m0 + i + 1) * <usize>ldc + <usize>j) << 2), t1, alpha, beta);
        storeScaled(c + ((<usize>(m0 + i + 2) * <usize>ldc + <usize>j) << 2), t2, alpha, beta);
        storeScaled(c + ((<usize>(m0 + i + 3) * <usize>ldc + <usize>j) << 2), t3, alpha, beta);
      }
      for (; i < mr; i++) {
        const arow = rows + <usize>i * kB;
        let total: f32 = 0;
        for (let pc = 0; pc < k; pc += KC) {
          const pe = min(k, pc + KC);
          let s0 = f32x4.splat(0);
          let s1 = f32x4.splat(0);
          let p = pc;
          for (; p + 8 <= pe; p += 8) {
            const o = (<usize>p) << 2;
            s0 = fma4(v128.load(arow + o), v128.load(brow + o), s0);
            s1 = fma4(v128.load(arow + o, 16), v128.load(brow + o, 16), s1);
          }
          let s = hsum4(f32x4.add(s0, s1));
          for (; p < pe; p++) s += load<f32>(arow + ((<usize>p) << 2)) * load<f32>(brow + ((<usize>p) << 2));
          total += s;
        }
        storeScaled(c + ((<usize>(m0 + i) * <usize>ldc + <usize>j) << 2), total, alpha, beta);
      }
    }
  } else {
    // C[i, :] = beta*C + alpha * sum_p a[i, p] * B[p, :], built in column blocks of FEW_COLS.
    const acc = rows + <usize>mr * kB;
    const accRow = (<usize>FEW_COLS) << 2;
    for (let jb = n0; jb < n1; jb += FEW_COLS) {
      const width = min(FEW_COLS, n1 - jb);
      memory.fill(acc, 0, <usize>mr * accRow);
      for (let p = 0; p < k; p++) {
        const brow = b + ((<usize>p * <usize>ldb + <usize>jb) << 2);
        for (let i = 0; i < mr; i++) {
          const as = load<f32>(rows + <usize>i * kB + ((<usize>p) << 2));
          const av = f32x4.splat(as);
          const ai = acc + <usize>i * accRow;
          let j = 0;
          for (; j + 4 <= width; j += 4) {
            const o = (<usize>j) << 2;
            v128.store(ai + o, fma4(av, v128.load(brow + o), v128.load(ai + o)));
          }
          for (; j < width; j++) {
            const o = (<usize>j) << 2;
            store<f32>(ai + o, as * load<f32>(brow + o) + load<f32>(ai + o));
          }
        }
      }
      for (let i = 0; i < mr; i++) {
        const crow = c + ((<usize>(m0 + i) * <usize>ldc + <usize>jb) << 2);
        const ai = acc + <usize>i * accRow;
        for (let j = 0; j < width; j++) {
          const o = (<usize>j) << 2;
          const v = alpha * load<f32>(ai + o);
          store<f32>(crow + o, beta == 0 ? v : v + beta * load<f32>(crow + o));
        }
      }
    }
  }
}

function gemmRange(
  transA: bool, transB: bool, m: i32, k: i32,
  a: usize, lda: i32, b: usize, ldb: i32, c: usize, ldc: i32,
  alpha: f32, beta: f32, m0: i32, m1: i32, n0: i32, n1: i32,
): void {
  if (m0 >= m1 || n0 >= n1) return;
  if (k == 0) scaleC(c, ldc, beta, m0, m1, n0, n1);
  else if (m <= FEW_ROWS && FEW_ROWS * (k + FEW_COLS) * 4 <= SCRATCH_BYTES) gemmFewRows(transA, transB, k, a, lda, b, ldb, c, ldc, alpha, beta, m0, m1, n0, n1);
  else gemmBlock(transA, transB, k, a, lda, b, ldb, c, ldc, alpha, beta, m0, m1, n0, n1);
}

/** One whole product on the calling thread, for kernels that run GEMMs inside their own share. */
export function gemmOne(
  transA: bool, transB: bool, m: i32, n: i32, k: i32,
  a: usize, lda: i32, b: usize, ldb: i32, c: usize, ldc: i32, alpha: f32, beta: f32,
): void {
  gemmRange(transA, transB, m, k, a, lda, b, ldb, c, ldc, alpha, beta, 0, m, 0, n);
}

/**
 * The part of a (batched) GEMM that thread `tid` of `nthr` computes: whole products when they
 * divide evenly among threads, else blocks of 4 rows, else (few rows) blocks of 8 columns.
 */
export function gemm(
  transA: i32, transB: i32, m: i32, n: i32, k: i32,
  a: usize, lda: i32, b: usize, ldb: i32, c: usize, ldc: i32,
  alpha: f32, beta: f32, batch: i32, strideA: i32, strideB: i32, strideC: i32,
  tid: i32, nthr: i32,
): void {
  const tA = transA != 0;
  const tB = transB != 0;
  // Whole products per thread when they divide evenly (or rows are too few to split), else rows.
  if (batch >= nthr && (batch % nthr == 0 || m < 16 * nthr)) {
    const b0 = <i32>((<i64>batch * tid) / nthr);
    const b1 = <i32>((<i64>batch * (tid + 1)) / nthr);
    for (let t = b0; t < b1; t++) {
      gemmRange(tA, tB, m, k,
        a + ((<usize>t * <usize>strideA) << 2), lda, b + ((<usize>t * <usize>strideB) << 2), ldb,
        c + ((<usize>t * <usize>strideC) << 2), ldc, alpha, beta, 0, m, 0, n);
    }
    return;
  }
  let m0 = 0, m1 = m, n0 = 0, n1 = n;
  if (m >= 16 * nthr) {
    const blocks = (m + 3) >> 2;
    m0 = min(m, <i32>((<i64>blocks * tid) / nthr) << 2);
    m1 = min(m, <i32>((<i64>blocks * (tid + 1)) / nthr) << 2);
  } else {
    const blocks = (n + 7) >> 3;
    n0 = min(n, <i32>((<i64>blocks * tid) / nthr) << 3);
    n1 = min(n, <i32>((<i64>blocks * (tid + 1)) / nthr) << 3);
  }
  for (let t = 0; t < batch; t++) {
    gemmRange(tA, tB, m, k,
      a + ((<usize>t * <usize>strideA) << 2), lda, b + ((<usize>t * <usize>strideB) << 2), ldb,
      c + ((<usize>t * <usize>strideC) << 2), ldc, alpha, beta, m0, m1, n0, n1);
  }
}
