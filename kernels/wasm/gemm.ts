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

// The scalar end of one KC slice of a few-rows dot: s plus a[p]*b[p] for p in [p, pe).
@inline
function sliceTail(s: f32, a: usize, b: usize, p: i32, pe: i32): f32 {
  for (; p < pe; p++) s += load<f32>(a + ((<usize>p) << 2)) * load<f32>(b + ((<usize>p) << 2));
  return s;
}

// C[i..i+4, j..j+2] of the few-rows path: four rows of op(A) (a, a + as bytes, ...) against two B
// rows (b, b + bs). Each of the 8 dots is its own chain (see dotOne).
function block4x2(a: usize, as: usize, b: usize, bs: usize, k: i32, c: usize, cs: usize, alpha: f32, beta: f32): void {
  const ar0 = a;
  const ar1 = a + as;
  const ar2 = ar1 + as;
  const ar3 = ar2 + as;
  const b0 = b;
  const b1 = b + bs;
  let t00: f32 = 0, t01: f32 = 0, t10: f32 = 0, t11: f32 = 0;
  let t20: f32 = 0, t21: f32 = 0, t30: f32 = 0, t31: f32 = 0;
  for (let pc = 0; pc < k; pc += KC) {
    const pe = min(k, pc + KC);
    let s00 = f32x4.splat(0), s01 = f32x4.splat(0), s10 = f32x4.splat(0), s11 = f32x4.splat(0);
    let s20 = f32x4.splat(0), s21 = f32x4.splat(0), s30 = f32x4.splat(0), s31 = f32x4.splat(0);
    let p = pc;
    for (; p + 4 <= pe; p += 4) {
      const o = (<usize>p) << 2;
      const v0 = v128.load(b0 + o);
      const v1 = v128.load(b1 + o);
      let av = v128.load(ar0 + o);
      s00 = fma4(av, v0, s00);
      s01 = fma4(av, v1, s01);
      av = v128.load(ar1 + o);
      s10 = fma4(av, v0, s10);
      s11 = fma4(av, v1, s11);
      av = v128.load(ar2 + o);
      s20 = fma4(av, v0, s20);
      s21 = fma4(av, v1, s21);
      av = v128.load(ar3 + o);
      s30 = fma4(av, v0, s30);
      s31 = fma4(av, v1, s31);
    }
    t00 += sliceTail(hsum4(s00), ar0, b0, p, pe);
    t01 += sliceTail(hsum4(s01), ar0, b1, p, pe);
    t10 += sliceTail(hsum4(s10), ar1, b0, p, pe);
    t11 += sliceTail(hsum4(s11), ar1, b1, p, pe);
    t20 += sliceTail(hsum4(s20), ar2, b0, p, pe);
    t21 += sliceTail(hsum4(s21), ar2, b1, p, pe);
    t30 += sliceTail(hsum4(s30), ar3, b0, p, pe);
    t31 += sliceTail(hsum4(s31), ar3, b1, p, pe);
  }
  storeScaled(c, t00, alpha, beta);
  storeScaled(c + 4, t01, alpha, beta);
  storeScaled(c + cs, t10, alpha, beta);
  storeScaled(c + cs + 4, t11, alpha, beta);
  storeScaled(c + 2 * cs, t20, alpha, beta);
  storeScaled(c + 2 * cs + 4, t21, alpha, beta);
  storeScaled(c + 3 * cs, t30, alpha, beta);
  storeScaled(c + 3 * cs + 4, t31, alpha, beta);
}

// C[i, j..j+4] of the few-rows path for a lone row: four independent chains hide the FMA latency.
function block1x4(a: usize, b: usize, bs: usize, k: i32, c: usize, alpha: f32, beta: f32): void {
  const b0 = b;
  const b1 = b + bs;
  const b2 = b1 + bs;
  const b3 = b2 + bs;
  let t0: f32 = 0, t1: f32 = 0, t2: f32 = 0, t3: f32 = 0;
  for (let pc = 0; pc < k; pc += KC) {
    const pe = min(k, pc + KC);
    let s0 = f32x4.splat(0), s1 = f32x4.splat(0), s2 = f32x4.splat(0), s3 = f32x4.splat(0);
    let p = pc;
    for (; p + 4 <= pe; p += 4) {
      const o = (<usize>p) << 2;
      const av = v128.load(a + o);
      s0 = fma4(av, v128.load(b0 + o), s0);
      s1 = fma4(av, v128.load(b1 + o), s1);
      s2 = fma4(av, v128.load(b2 + o), s2);
      s3 = fma4(av, v128.load(b3 + o), s3);
    }
    t0 += sliceTail(hsum4(s0), a, b0, p, pe);
    t1 += sliceTail(hsum4(s1), a, b1, p, pe);
    t2 += sliceTail(hsum4(s2), a, b2, p, pe);
    t3 += sliceTail(hsum4(s3), a, b3, p, pe);
  }
  storeScaled(c, t0, alpha, beta);
  storeScaled(c + 4, t1, alpha, beta);
  storeScaled(c + 8, t2, alpha, beta);
  storeScaled(c + 12, t3, alpha, beta);
}

// One few-rows dot of k floats, summed exactly as the 4x2 blocks of gemmFewRows sum theirs.
function dotOne(a: usize, b: usize, k: i32): f32 {
  let total: f32 = 0;
  for (let pc = 0; pc < k; pc += KC) {
    const pe = min(k, pc + KC);
    let s0 = f32x4.splat(0);
    let p = pc;
    for (; p + 4 <= pe; p += 4) {
      const o = (<usize>p) << 2;
      s0 = fma4(v128.load(a + o), v128.load(b + o), s0);
    }
    total += sliceTail(hsum4(s0), a, b, p, pe);
  }
  return total;
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
    // C[i, j] = dot(op(A) row i, B row j), B rows streamed once for all rows of op(A), in blocks of
    // four rows by two columns (one row by four columns for rows left over). Every dot is summed the same way (one 4-lane chain over k per KC
    // slice, its lanes added, then the slices in order) whether it is computed in a block or alone,
    // so a row's values do not depend on the other rows of the call.
    let j = n0;
    const cs = (<usize>ldc) << 2;
    for (; j + 4 <= n1; j += 4) {
      const bj = b + ((<usize>j * <usize>ldb) << 2);
      const bs = (<usize>ldb) << 2;
      let i = 0;
      for (; i + 4 <= mr; i += 4) {
        const cij = c + ((<usize>(m0 + i) * <usize>ldc + <usize>j) << 2);
        block4x2(rows + <usize>i * kB, kB, bj, bs, k, cij, cs, alpha, beta);
        block4x2(rows + <usize>i * kB, kB, bj + 2 * bs, bs, k, cij + 8, cs, alpha, beta);
      }
      for (; i < mr; i++) {
        block1x4(rows + <usize>i * kB, bj, bs, k, c + ((<usize>(m0 + i) * <usize>ldc + <usize>j) << 2), alpha, beta);
      }
    }
    for (; j < n1; j++) {
      const brow = b + ((<usize>j * <usize>ldb) << 2);
      for (let i = 0; i < mr; i++) {
        const c0 = c + ((<usize>(m0 + i) * <usize>ldc + <usize>j) << 2);
        storeScaled(c0, dotOne(rows + <usize>i * kB, brow, k), alpha, beta);
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
  alpha: f32, beta: f32, m0: i32, m1: i32, n0: i32, n1: i32, rowInvariant: bool,
): void {
  if (m0 >= m1 || n0 >= n1) return;
  if (k == 0) scaleC(c, ldc, beta, m0, m1, n0, n1);
  else if (rowInvariant && transB) {
    // Every row through the few-rows dot products, in as many row chunks as scratch needs: a row's
    // values then depend only on that row, never on how many rows share the call.
    const chunk = max(1, GEMM_SCRATCH_BYTES / (4 * k));
    for (let r = m0; r < m1; r += chunk) {
      gemmFewRows(transA, transB, k, a, lda, b, ldb, c, ldc, alpha, beta, r, min(m1, r + chunk), n0, n1);
    }
  } else if (m <= FEW_ROWS && FEW_ROWS * (k + FEW_COLS) * 4 <= SCRATCH_BYTES) gemmFewRows(transA, transB, k, a, lda, b, ldb, c, ldc, alpha, beta, m0, m1, n0, n1);
  else gemmBlock(transA, transB, k, a, lda, b, ldb, c, ldc, alpha, beta, m0, m1, n0, n1);
}

/** One whole product on the calling thread, for kernels that run GEMMs inside their own share. */
export function gemmOne(
  transA: bool, transB: bool, m: i32, n: i32, k: i32,
  a: usize, lda: i32, b: usize, ldb: i32, c: usize, ldc: i32, alpha: f32, beta: f32,
): void {
  gemmRange(transA, transB, m, k, a, lda, b, ldb, c, ldc, alpha, beta, 0, m, 0, n, false);
}

/**
 * The part of a (batched) GEMM that thread `tid` of `nthr` computes: whole products when they
 * divide evenly among threads, else blocks of 4 rows, else (few rows) blocks of 8 columns.
 */
export function gemm(
  transA: i32, transB: i32, m: i32, n: i32, k: i32,
  a: usize, lda: i32, b: usize, ldb: i32, c: usize, ldc: i32,
  alpha: f32, beta: f32, batch: i32, strideA: i32, strideB: i32, strideC: i32,
  rowInvariant: i32, tid: i32, nthr: i32,
): void {
  const tA = transA != 0;
  const tB = transB != 0;
  const inv = rowInvariant != 0;
  // Whole products per thread when they divide evenly (or rows are too few to split), else rows.
  if (batch >= nthr && (batch % nthr == 0 || m < 16 * nthr)) {
    const b0 = <i32>((<i64>batch * tid) / nthr);
    const b1 = <i32>((<i64>batch * (tid + 1)) / nthr);
    for (let t = b0; t < b1; t++) {
      gemmRange(tA, tB, m, k,
        a + ((<usize>t * <usize>strideA) << 2), lda, b + ((<usize>t * <usize>strideB) << 2), ldb,
        c + ((<usize>t * <usize>strideC) << 2), ldc, alpha, beta, 0, m, 0, n, inv);
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
      c + ((<usize>t * <usize>strideC) << 2), ldc, alpha, beta, m0, m1, n0, n1, inv);
  }
}
