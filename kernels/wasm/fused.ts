// Fused elementwise and row kernels. Each takes (tid, nthr) and does its share; splits never change
// the arithmetic of any output element, so results are bit-identical across thread counts.

import { exp1, exp4, fma4, hmax4, hsum4 } from "./simd";
import { GEMM_SCRATCH_BYTES, gemmOne } from "./gemm";
import { SCRATCH_BYTES, scratchPtr } from "./scratch";

@inline
function ptr(base: usize, index: i32): usize {
  return base + ((<usize>index) << 2);
}

// [lo, hi) share of `count` items for thread tid, in units of `unit`.
@inline
function shareLo(count: i32, unit: i32, tid: i32, nthr: i32): i32 {
  const units = (count + unit - 1) / unit;
  return min(count, <i32>((<i64>units * tid) / nthr) * unit);
}

// Sum of x[i]*y[i] over n floats.
@inline
function dot(x: usize, y: usize, n: i32): f32 {
  let s0 = f32x4.splat(0);
  let s1 = f32x4.splat(0);
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const o = (<usize>i) << 2;
    s0 = fma4(v128.load(x + o), v128.load(y + o), s0);
    s1 = fma4(v128.load(x + o, 16), v128.load(y + o, 16), s1);
  }
  let s = hsum4(f32x4.add(s0, s1));
  for (; i < n; i++) s += load<f32>(ptr(x, i)) * load<f32>(ptr(y, i));
  return s;
}

// y[i] += a * x[i] over n floats.
@inline
function axpy(a: f32, x: usize, y: usize, n: i32): void {
  const va = f32x4.splat(a);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = (<usize>i) << 2;
    v128.store(y + o, fma4(va, v128.load(x + o), v128.load(y + o)));
  }
  for (; i < n; i++) store<f32>(ptr(y, i), a * load<f32>(ptr(x, i)) + load<f32>(ptr(y, i)));
}

@inline
function zero(x: usize, n: i32): void {
  memory.fill(x, 0, (<usize>n) << 2);
}

// ---------------------------------------------------------------- RMSNorm

export function rmsnorm_fwd(x: usize, w: usize, y: usize, rstd: usize, rows: i32, dim: i32, eps: f32, tid: i32, nthr: i32): void {
  const r0 = shareLo(rows, 1, tid, nthr);
  const r1 = shareLo(rows, 1, tid + 1, nthr);
  for (let r = r0; r < r1; r++) {
    const xr = ptr(x, r * dim);
    const yr = ptr(y, r * dim);
    const ms = <f64>dot(xr, xr, dim) / <f64>dim;
    const rs = <f32>(1.0 / Math.sqrt(ms + <f64>eps));
    store<f32>(ptr(rstd, r), rs);
    const vr = f32x4.splat(rs);
    let i = 0;
    for (; i + 4 <= dim; i += 4) {
      const o = (<usize>i) << 2;
      v128.store(yr + o, f32x4.mul(f32x4.mul(v128.load(xr + o), vr), v128.load(w + o)));
    }
    for (; i < dim; i++) store<f32>(ptr(yr, i), load<f32>(ptr(xr, i)) * rs * load<f32>(ptr(w, i)));
  }
}

// dx = rs*w*dy - x * rs^3 * mean(w*dy*x), or dx += that with `acc`.
export function rmsnorm_bwd(dy: usize, x: usize, w: usize, rstd: usize, dx: usize, rows: i32, dim: i32, acc: i32, tid: i32, nthr: i32): void {
  const r0 = shareLo(rows, 1, tid, nthr);
  const r1 = shareLo(rows, 1, tid + 1, nthr);
  for (let r = r0; r < r1; r++) {
    const xr = ptr(x, r * dim);
    const dyr = ptr(dy, r * dim);
    const dxr = ptr(dx, r * dim);
    const rs = load<f32>(ptr(rstd, r));
    let sum4 = f32x4.splat(0);
    let i = 0;
    for (; i + 4 <= dim; i += 4) {
      const o = (<usize>i) << 2;
      sum4 = fma4(f32x4.mul(v128.load(w + o), v128.load(dyr + o)), v128.load(xr + o), sum4);
    }
    let s = hsum4(sum4);
    for (; i < dim; i++) s += load<f32>(ptr(w, i)) * load<f32>(ptr(dyr, i)) * load<f32>(ptr(xr, i));
    const coef = <f32>(<f64>rs * <f64>rs * <f64>rs * (<f64>s / <f64>dim));
    const vrs = f32x4.splat(rs);
    const vc = f32x4.splat(-coef);
    i = 0;
    for (; i + 4 <= dim; i += 4) {
      const o = (<usize>i) << 2;
      const g = fma4(v128.load(xr + o), vc, f32x4.mul(f32x4.mul(v128.load(w + o), v128.load(dyr + o)), vrs));
      v128.store(dxr + o, acc != 0 ? f32x4.add(v128.load(dxr + o), g) : g);
    }
    for (; i < dim; i++) {
      const g = load<f32>(ptr(w, i)) * load<f32>(ptr(dyr, i)) * rs - load<f32>(ptr(xr, i)) * coef;
      store<f32>(ptr(dxr, i), acc != 0 ? load<f32>(ptr(dxr, i)) + g : g);
    }
  }
}

// ---------------------------------------------------------------- RoPE

// Fills table rows p0..p1 of a RoPE table: per position, cos then sin of pos * theta^(-2i/headDim)
// for i < headDim/2, as float32 (angles in float64). Rows are split between threads.
export function rope_table(table: usize, p0: i32, p1: i32, headDim: i32, theta: f64, tid: i32, nthr: i32): void {
  const half = headDim >> 1;
  const r0 = p0 + shareLo(p1 - p0, 1, tid, nthr);
  const r1 = p0 + shareLo(p1 - p0, 1, tid + 1, nthr);
  for (let r = r0; r < r1; r++) {
    const cosB = ptr(table, r * headDim);
    const sinB = ptr(cosB, half);
    for (let i = 0; i < half; i++) {
      const ang = <f64>r * Math.pow(theta, -(<f64>(2 * i)) / <f64>headDim);
      store<f32>(ptr(cosB, i), <f32>Math.cos(ang));
      store<f32>(ptr(sinB, i), <f32>Math.sin(ang));
    }
  }
}

// In place on x [rows, heads, headDim], pairs (i, i + half), with cos/sin from a `rope_table`
// covering every position. `inverse` rotates by the negative angle (the backward pass).
export function rope(x: usize, positions: usize, rows: i32, heads: i32, headDim: i32, table: usize, inverse: i32, tid: i32, nthr: i32): void {
  const half = headDim >> 1;
  const r0 = shareLo(rows, 1, tid, nthr);
  const r1 = shareLo(rows, 1, tid + 1, nthr);
  const neg = inverse != 0;
  for (let r = r0; r < r1; r++) {
    const cosB = ptr(table, load<i32>(positions + ((<usize>r) << 2)) * headDim);
    const sinB = ptr(cosB, half);
    for (let h = 0; h < heads; h++) {
      const x1 = ptr(x, (r * heads + h) * headDim);
      const x2 = ptr(x1, half);
      let i = 0;
      for (; i + 4 <= half; i += 4) {
        const o = (<usize>i) << 2;
        const a = v128.load(x1 + o);
        const b = v128.load(x2 + o);
        const c = v128.load(cosB + o);
        const sv = v128.load(sinB + o);
        const s = neg ? f32x4.neg(sv) : sv;
        v128.store(x1 + o, f32x4.sub(f32x4.mul(a, c), f32x4.mul(b, s)));
        v128.store(x2 + o, f32x4.add(f32x4.mul(b, c), f32x4.mul(a, s)));
      }
      for (; i < half; i++) {
        const a = load<f32>(ptr(x1, i));
        const b = load<f32>(ptr(x2, i));
        const c = load<f32>(ptr(cosB, i));
        const s = neg ? -load<f32>(ptr(sinB, i)) : load<f32>(ptr(sinB, i));
        store<f32>(ptr(x1, i), a * c - b * s);
        store<f32>(ptr(x2, i), b * c + a * s);
      }
    }
  }
}

// ---------------------------------------------------------------- SwiGLU

@inline
function sigmoid4(g: v128): v128 {
  return f32x4.div(f32x4.splat(1), f32x4.add(f32x4.splat(1), exp4(f32x4.neg(g))));
}

export function swiglu_fwd(gate: usize, up: usize, out: usize, n: i32, tid: i32, nthr: i32): void {
  const i0 = shareLo(n, 4, tid, nthr);
  const i1 = shareLo(n, 4, tid + 1, nthr);
  let i = i0;
  for (; i + 4 <= i1; i += 4) {
    const o = (<usize>i) << 2;
    const g = v128.load(gate + o);
    v128.store(out + o, f32x4.mul(f32x4.mul(g, sigmoid4(g)), v128.load(up + o)));
  }
  for (; i < i1; i++) {
    const g = load<f32>(ptr(gate, i));
    const s: f32 = 1 / (1 + exp1(-g));
    store<f32>(ptr(out, i), g * s * load<f32>(ptr(up, i)));
  }
}

// dUp = dOut * silu(g); dGate = dOut * up * s * (1 + g * (1 - s)), s = sigmoid(g).
export function swiglu_bwd(dOut: usize, gate: usize, up: usize, dGate: usize, dUp: usize, n: i32, tid: i32, nthr: i32): void {
  const i0 = shareLo(n, 4, tid, nthr);
  const i1 = shareLo(n, 4, tid + 1, nthr);
  const one = f32x4.splat(1);
  let i = i0;
  for (; i + 4 <= i1; i += 4) {
    const o = (<usize>i) << 2;
    const g = v128.load(gate + o);
    const d = v128.load(dOut + o);
    const s = sigmoid4(g);
    v128.store(dUp + o, f32x4.mul(d, f32x4.mul(g, s)));
    const ds = f32x4.mul(s, fma4(g, f32x4.sub(one, s), one));
    v128.store(dGate + o, f32x4.mul(f32x4.mul(d, v128.load(up + o)), ds));
  }
  for (; i < i1; i++) {
    const g = load<f32>(ptr(gate, i));
    const d = load<f32>(ptr(dOut, i));
    const s: f32 = 1 / (1 + exp1(-g));
    store<f32>(ptr(dUp, i), d * (g * s));
    store<f32>(ptr(dGate, i), d * load<f32>(ptr(up, i)) * (s * (g * (1 - s) + 1)));
  }
}

// ---------------------------------------------------------------- attention

// p[j] = exp(s[j] * scale - shift) for j < n, in place.
function expScaled(s: usize, n: i32, scale: f32, shift: f32): void {
  const vs = f32x4.splat(scale);
  const vm = f32x4.splat(shift);
  let j = 0;
  for (; j + 4 <= n; j += 4) {
    const o = (<usize>j) << 2;
    v128.store(s + o, exp4(f32x4.sub(f32x4.mul(v128.load(s + o), vs), vm)));
  }
  for (; j < n; j++) store<f32>(ptr(s, j), exp1(load<f32>(ptr(s, j)) * scale - shift));
}

// Dot products of x with four rows y0..y3 (D floats each). Every lane follows the same arithmetic
// whichever rows share the call, so a score never depends on how keys were grouped.
@inline
function dot4(x: usize, y0: usize, y1: usize, y2: usize, y3: usize, D: i32): v128 {
  let a0 = f32x4.splat(0);
  let a1 = f32x4.splat(0);
  let a2 = f32x4.splat(0);
  let a3 = f32x4.splat(0);
  let d = 0;
  for (; d + 4 <= D; d += 4) {
    const o = (<usize>d) << 2;
    const xv = v128.load(x + o);
    a0 = fma4(xv, v128.load(y0 + o), a0);
    a1 = fma4(xv, v128.load(y1 + o), a1);
    a2 = fma4(xv, v128.load(y2 + o), a2);
    a3 = fma4(xv, v128.load(y3 + o), a3);
  }
  // Transpose-add: lane k = (a_k[0] + a_k[2]) + (a_k[1] + a_k[3]).
  const s01 = f32x4.add(v128.shuffle<f32>(a0, a1, 0, 4, 1, 5), v128.shuffle<f32>(a0, a1, 2, 6, 3, 7));
  const s23 = f32x4.add(v128.shuffle<f32>(a2, a3, 0, 4, 1, 5), v128.shuffle<f32>(a2, a3, 2, 6, 3, 7));
  let r = f32x4.add(v128.shuffle<f32>(s01, s23, 0, 1, 4, 5), v128.shuffle<f32>(s01, s23, 2, 3, 6, 7));
  if (d < D) {
    let t0: f32 = 0;
    let t1: f32 = 0;
    let t2: f32 = 0;
    let t3: f32 = 0;
    for (; d < D; d++) {
      const o = (<usize>d) << 2;
      const xs = load<f32>(x + o);
      t0 += xs * load<f32>(y0 + o);
      t1 += xs * load<f32>(y1 + o);
      t2 += xs * load<f32>(y2 + o);
      t3 += xs * load<f32>(y3 + o);
    }
    r = f32x4.add(r, f32x4.replace_lane(f32x4.replace_lane(f32x4.replace_lane(f32x4.splat(t0), 1, t1), 2, t2), 3, t3));
  }
  return r;
}

// s[j] = scale * dot(x, rows[j]) for j < n, rows[j] = base + j*stride bytes.
function scoresOf(x: usize, base: usize, stride: usize, n: i32, D: i32, scale: f32, s: usize): void {
  const vs = f32x4.splat(scale);
  let j = 0;
  for (; j + 4 <= n; j += 4) {
    const y = base + <usize>j * stride;
    v128.store(ptr(s, j), f32x4.mul(dot4(x, y, y + stride, y + 2 * stride, y + 3 * stride, D), vs));
  }
  if (j < n) {
    // Tail keys go through the same lane arithmetic (spare lanes repeat the last row, unused).
    const last = base + <usize>(n - 1) * stride;
    const y0 = base + <usize>j * stride;
    const y1 = j + 1 < n ? y0 + stride : last;
    const y2 = j + 2 < n ? y0 + 2 * stride : last;
    const r = f32x4.mul(dot4(x, y0, y1, y2, last, D), vs);
    store<f32>(ptr(s, j), f32x4.extract_lane(r, 0));
    if (j + 1 < n) store<f32>(ptr(s, j + 1), f32x4.extract_lane(r, 1));
    if (j + 2 < n) store<f32>(ptr(s, j + 2), f32x4.extract_lane(r, 2));
  }
}

// out[0..D) = sum_j w[j] * rows[j] (overwritten), accumulated in registers 16 floats at a time.
function weightedRows(w: usize, base: usize, stride: usize, n: i32, D: i32, out: usize): void {
  let d = 0;
  for (; d + 16 <= D; d += 16) {
    const o = (<usize>d) << 2;
    let c0 = f32x4.splat(0);
    let c1 = f32x4.splat(0);
    let c2 = f32x4.splat(0);
    let c3 = f32x4.splat(0);
    let y = base + o;
    for (let j = 0; j < n; j++) {
      const wj = v128.load32_splat(ptr(w, j));
      c0 = fma4(wj, v128.load(y), c0);
      c1 = fma4(wj, v128.load(y, 16), c1);
      c2 = fma4(wj, v128.load(y, 32), c2);
      c3 = fma4(wj, v128.load(y, 48), c3);
      y += stride;
    }
    v128.store(out + o, c0);
    v128.store(out + o, c1, 16);
    v128.store(out + o, c2, 32);
    v128.store(out + o, c3, 48);
  }
  for (; d + 4 <= D; d += 4) {
    const o = (<usize>d) << 2;
    let c0 = f32x4.splat(0);
    let y = base + o;
    for (let j = 0; j < n; j++) {
      c0 = fma4(v128.load32_splat(ptr(w, j)), v128.load(y), c0);
      y += stride;
    }
    v128.store(out + o, c0);
  }
  for (; d < D; d++) {
    const o = (<usize>d) << 2;
    let c: f32 = 0;
    let y = base + o;
    for (let j = 0; j < n; j++) {
      c += load<f32>(ptr(w, j)) * load<f32>(y);
      y += stride;
    }
    store<f32>(out + o, c);
  }
}

// xb's lanes from the last dot4x2 (a per-instance global, so per thread).
let dot4x2B: v128 = f32x4.splat(0);

// dot4 for two queries xa, xb against the same four rows: each row is loaded once for both, and
// every lane follows dot4's arithmetic exactly. Returns xa's lanes; xb's go to `dot4x2B`.
@inline
function dot4x2(xa: usize, xb: usize, y0: usize, y1: usize, y2: usize, y3: usize, D: i32): v128 {
  let a0 = f32x4.splat(0);
  let a1 = f32x4.splat(0);
  let a2 = f32x4.splat(0);
  let a3 = f32x4.splat(0);
  let b0 = f32x4.splat(0);
  let b1 = f32x4.splat(0);
  let b2 = f32x4.splat(0);
  let b3 = f32x4.splat(0);
  let d = 0;
  for (; d + 4 <= D; d += 4) {
    const o = (<usize>d) << 2;
    const xav = v128.load(xa + o);
    const xbv = v128.load(xb + o);
    const k0 = v128.load(y0 + o);
    const k1 = v128.load(y1 + o);
    const k2 = v128.load(y2 + o);
    const k3 = v128.load(y3 + o);
    a0 = fma4(xav, k0, a0);
    a1 = fma4(xav, k1, a1);
    a2 = fma4(xav, k2, a2);
    a3 = fma4(xav, k3, a3);
    b0 = fma4(xbv, k0, b0);
    b1 = fma4(xbv, k1, b1);
    b2 = fma4(xbv, k2, b2);
    b3 = fma4(xbv, k3, b3);
  }
  const sa01 = f32x4.add(v128.shuffle<f32>(a0, a1, 0, 4, 1, 5), v128.shuffle<f32>(a0, a1, 2, 6, 3, 7));
  const sa23 = f32x4.add(v128.shuffle<f32>(a2, a3, 0, 4, 1, 5), v128.shuffle<f32>(a2, a3, 2, 6, 3, 7));
  let ra = f32x4.add(v128.shuffle<f32>(sa01, sa23, 0, 1, 4, 5), v128.shuffle<f32>(sa01, sa23, 2, 3, 6, 7));
  const sb01 = f32x4.add(v128.shuffle<f32>(b0, b1, 0, 4, 1, 5), v128.shuffle<f32>(b0, b1, 2, 6, 3, 7));
  const sb23 = f32x4.add(v128.shuffle<f32>(b2, b3, 0, 4, 1, 5), v128.shuffle<f32>(b2, b3, 2, 6, 3, 7));
  let rb = f32x4.add(v128.shuffle<f32>(sb01, sb23, 0, 1, 4, 5), v128.shuffle<f32>(sb01, sb23, 2, 3, 6, 7));
  if (d < D) {
    // Rare (headDim not a multiple of 4): the single-query path, lane for lane.
    ra = dot4(xa, y0, y1, y2, y3, D);
    rb = dot4(xb, y0, y1, y2, y3, D);
  }
  dot4x2B = rb;
  return ra;
}

// scoresOf for two consecutive queries xa (na keys) and xb (na + 1 keys), sharing each key load.
function scoresOf2(xa: usize, xb: usize, base: usize, stride: usize, na: i32, D: i32, scale: f32, sa: usize, sb: usize): void {
  const vs = f32x4.splat(scale);
  const nb = na + 1;
  const last = base + <usize>(nb - 1) * stride;
  for (let j = 0; j < nb; j += 4) {
    const y0 = base + <usize>j * stride;
    const y1 = j + 1 < nb ? y0 + stride : last;
    const y2 = j + 2 < nb ? y0 + 2 * stride : last;
    const y3 = j + 3 < nb ? y0 + 3 * stride : last;
    const ra = f32x4.mul(dot4x2(xa, xb, y0, y1, y2, y3, D), vs);
    const rb = f32x4.mul(dot4x2B, vs);
    if (j + 4 <= na) {
      v128.store(ptr(sa, j), ra);
    } else {
      if (j < na) store<f32>(ptr(sa, j), f32x4.extract_lane(ra, 0));
      if (j + 1 < na) store<f32>(ptr(sa, j + 1), f32x4.extract_lane(ra, 1));
      if (j + 2 < na) store<f32>(ptr(sa, j + 2), f32x4.extract_lane(ra, 2));
    }
    if (j + 4 <= nb) {
      v128.store(ptr(sb, j), rb);
    } else {
      store<f32>(ptr(sb, j), f32x4.extract_lane(rb, 0));
      if (j + 1 < nb) store<f32>(ptr(sb, j + 1), f32x4.extract_lane(rb, 1));
      if (j + 2 < nb) store<f32>(ptr(sb, j + 2), f32x4.extract_lane(rb, 2));
    }
  }
}

// weightedRows for two queries: outA = sum_{j<na} wa[j] rows[j], outB = sum_{j<na+1} wb[j] rows[j],
// each row loaded once for both; per element the same FMA chain as weightedRows.
function weightedRows2(wa: usize, wb: usize, base: usize, stride: usize, na: i32, D: i32, outA: usize, outB: usize): void {
  let d = 0;
  for (; d + 16 <= D; d += 16) {
    const o = (<usize>d) << 2;
    let c0 = f32x4.splat(0);
    let c1 = f32x4.splat(0);
    let c2 = f32x4.splat(0);
    let c3 = f32x4.splat(0);
    let e0 = f32x4.splat(0);
    let e1 = f32x4.splat(0);
    let e2 = f32x4.splat(0);
    let e3 = f32x4.splat(0);
    let y = base + o;
    for (let j = 0; j < na; j++) {
      const va = v128.load32_splat(ptr(wa, j));
      const vb = v128.load32_splat(ptr(wb, j));
      const r0 = v128.load(y);
      const r1 = v128.load(y, 16);
      const r2 = v128.load(y, 32);
      const r3 = v128.load(y, 48);
      c0 = fma4(va, r0, c0);
      c1 = fma4(va, r1, c1);
      c2 = fma4(va, r2, c2);
      c3 = fma4(va, r3, c3);
      e0 = fma4(vb, r0, e0);
      e1 = fma4(vb, r1, e1);
      e2 = fma4(vb, r2, e2);
      e3 = fma4(vb, r3, e3);
      y += stride;
    }
    const vb = v128.load32_splat(ptr(wb, na));
    e0 = fma4(vb, v128.load(y), e0);
    e1 = fma4(vb, v128.load(y, 16), e1);
    e2 = fma4(vb, v128.load(y, 32), e2);
    e3 = fma4(vb, v128.load(y, 48), e3);
    v128.store(outA + o, c0);
    v128.store(outA + o, c1, 16);
    v128.store(outA + o, c2, 32);
    v128.store(outA + o, c3, 48);
    v128.store(outB + o, e0);
    v128.store(outB + o, e1, 16);
    v128.store(outB + o, e2, 32);
    v128.store(outB + o, e3, 48);
  }
  if (d < D) {
    // Remaining columns (headDim not a multiple of 16): the single-query path on the column tail.
    const o = (<usize>d) << 2;
    weightedRows(wa, base + o, stride, na, D - d, outA + o);
    weightedRows(wb, base + o, stride, na + 1, D - d, outB + o);
  }
}

// Softmax-normalises one query's scores in place and writes its output row and lse (the forward's
// per-query tail, shared by the single and paired paths).
@inline
function softmaxStats(scores: usize, n: i32): f32 {
  let mx: f32 = -Infinity;
  for (let j = 0; j < n; j++) mx = max(mx, load<f32>(ptr(scores, j)));
  // Same expression as the backward's recomputation: exp(fl(dot*scale) - shift).
  expScaled(scores, n, 1, mx);
  return mx;
}

@inline
function finishRow(scores: usize, n: i32, mx: f32, oi: usize, D: i32, lseAt: usize): void {
  let sum: f64 = 0;
  for (let j = 0; j < n; j++) sum += load<f32>(ptr(scores, j));
  const inv = <f32>(1.0 / sum);
  const vi = f32x4.splat(inv);
  let d = 0;
  for (; d + 4 <= D; d += 4) v128.store(oi + ((<usize>d) << 2), f32x4.mul(v128.load(oi + ((<usize>d) << 2)), vi));
  for (; d < D; d++) store<f32>(ptr(oi, d), load<f32>(ptr(oi, d)) * inv);
  store<f32>(lseAt, <f32>(<f64>mx + Math.log(sum)));
}

// Causal GQA forward. Work units are (head, pair of consecutive query rows): the two queries share
// every key and value load. Units are dealt round-robin to threads: causal rows grow in cost along
// the sequence, and a single decode row still splits across heads. Pairing never changes the
// arithmetic of a score or an output element.
export function attention_fwd(
  q: usize, k: usize, v: usize, out: usize, lse: usize,
  T: i32, kvLen: i32, H: i32, KVH: i32, D: i32, scale: f32, tid: i32, nthr: i32,
): void {
  const group = H / KVH;
  const scores = scratchPtr;
  const offset = kvLen - T;
  const kvStride = (<usize>(KVH * D)) << 2;
  // The paired path keeps two score rows in scratch.
  const pairs = (<i64>(2 * kvLen)) * 4 <= <i64>SCRATCH_BYTES ? (T + 1) >> 1 : 0;
  const scoresB = scores + ((<usize>kvLen) << 2);
  const units = pairs > 0 ? H * pairs : H * T;
  for (let u = tid; u < units; u += nthr) {
    let h: i32, i: i32;
    if (pairs > 0) {
      h = u / pairs;
      i = (u - h * pairs) << 1;
    } else {
      h = u / T;
      i = u - h * T;
    }
    const g = h / group;
    const qi = ptr(q, (i * H + h) * D);
    const n = offset + i + 1;
    const oi = ptr(out, (i * H + h) * D);
    if (pairs > 0 && i + 1 < T) {
      const qb = ptr(q, ((i + 1) * H + h) * D);
      const ob = ptr(out, ((i + 1) * H + h) * D);
      scoresOf2(qi, qb, ptr(k, g * D), kvStride, n, D, scale, scores, scoresB);
      const mxA = softmaxStats(scores, n);
      const mxB = softmaxStats(scoresB, n + 1);
      weightedRows2(scores, scoresB, ptr(v, g * D), kvStride, n, D, oi, ob);
      finishRow(scores, n, mxA, oi, D, ptr(lse, h * T + i));
      finishRow(scoresB, n + 1, mxB, ob, D, ptr(lse, h * T + i + 1));
      continue;
    }
    scoresOf(qi, ptr(k, g * D), kvStride, n, D, scale, scores);
    const mx = softmaxStats(scores, n);
    weightedRows(scores, ptr(v, g * D), kvStride, n, D, oi);
    finishRow(scores, n, mx, oi, D, ptr(lse, h * T + i));
  }
}

// Query rows and key rows of one block of the attention backward (its P and dS tiles are BQ x BK).
const BQ: i32 = 64;
const BK: i32 = 64;
// The backward's P and dS tiles and its row terms D_i sit past the region GEMM packs into, inside the
// thread's scratch.
const P_TILE: usize = <usize>GEMM_SCRATCH_BYTES;
const DS_TILE: usize = P_TILE + ((<usize>(BQ * BK)) << 2);
const DI_ROWS: usize = DS_TILE + ((<usize>(BQ * BK)) << 2);

// For one (query block, key block) tile, turns the raw scores S (in p, already scaled) and
// dP = dOut . v_j (in ds) into probabilities p = exp(S - lse_i) and score gradients
// ds = p * (dP - D_i) * scale, with keys past each query's position zeroed (causal mask).
function tileGrads(p: usize, ds: usize, rb: i32, cb: i32, i0: i32, j0: i32, lseRow: usize, di: usize, scale: f32): void {
  const vsc = f32x4.splat(scale);
  for (let r = 0; r < rb; r++) {
    const pr = p + ((<usize>(r * BK)) << 2);
    const dr = ds + ((<usize>(r * BK)) << 2);
    const valid = min(cb, i0 + r - j0 + 1);
    const L = load<f32>(ptr(lseRow, i0 + r));
    const vl = f32x4.splat(L);
    const vd = f32x4.splat(load<f32>(ptr(di, r)));
    let j = 0;
    for (; j + 4 <= valid; j += 4) {
      const o = (<usize>j) << 2;
      const pv = exp4(f32x4.sub(v128.load(pr + o), vl));
      v128.store(pr + o, pv);
      v128.store(dr + o, f32x4.mul(f32x4.mul(pv, f32x4.sub(v128.load(dr + o), vd)), vsc));
    }
    for (; j < valid; j++) {
      const pv = exp1(load<f32>(ptr(pr, j)) - L);
      store<f32>(ptr(pr, j), pv);
      store<f32>(ptr(dr, j), pv * (load<f32>(ptr(dr, j)) - load<f32>(ptr(di, r))) * scale);
    }
    for (; j < cb; j++) {
      store<f32>(ptr(pr, j), 0);
      store<f32>(ptr(dr, j), 0);
    }
  }
}

// di[r] = dOut_i . out_i for the rows of one query tile of head h (the softmax backward's row term).
function rowDots(dOut: usize, out: usize, i0: i32, rb: i32, h: i32, ldq: i32, D: i32, di: usize): void {
  for (let r = 0; r < rb; r++) {
    const row = (i0 + r) * ldq + h * D;
    store<f32>(ptr(di, r), dot(ptr(dOut, row), ptr(out, row), D));
  }
}

// P and dS of one (query tile, key tile) of head h in kv group g: S = scale Q K^T and dP = dOut V^T
// by GEMM into the two scratch tiles, then `tileGrads`. Every path of the backward computes a tile
// through here, so its values never depend on which path or thread did it.
function tileProbsAndGrads(
  q: usize, k: usize, v: usize, lse: usize, dOut: usize, h: i32, g: i32,
  i0: i32, rb: i32, j0: i32, cb: i32, T: i32, ldq: i32, ldkv: i32, D: i32, scale: f32,
  pT: usize, dsT: usize, di: usize,
): void {
  const kb = ptr(k, j0 * ldkv + g * D);
  const vb = ptr(v, j0 * ldkv + g * D);
  gemmOne(false, true, rb, cb, D, ptr(q, i0 * ldq + h * D), ldq, kb, ldkv, pT, BK, scale, 0);
  gemmOne(false, true, rb, cb, D, ptr(dOut, i0 * ldq + h * D), ldq, vb, ldkv, dsT, BK, 1, 0);
  tileGrads(pT, dsT, rb, cb, i0, j0, ptr(lse, h * T), di, scale);
}

// dK_j += dS^T Q_i and dV_j += P^T dOut_i for one tile.
@inline
function accumulateKv(q: usize, dOut: usize, dk: usize, dv: usize, h: i32, g: i32, i0: i32, rb: i32, j0: i32, cb: i32, ldq: i32, ldkv: i32, D: i32, pT: usize, dsT: usize): void {
  const qb = ptr(q, i0 * ldq + h * D);
  const dob = ptr(dOut, i0 * ldq + h * D);
  gemmOne(true, false, cb, D, rb, dsT, BK, qb, ldq, ptr(dk, j0 * ldkv + g * D), ldkv, 1, 1);
  gemmOne(true, false, cb, D, rb, pT, BK, dob, ldq, ptr(dv, j0 * ldkv + g * D), ldkv, 1, 1);
}

// dQ_i = dS K_j for the first key tile, += after.
@inline
function accumulateQ(k: usize, dq: usize, h: i32, g: i32, i0: i32, rb: i32, j0: i32, cb: i32, ldq: i32, ldkv: i32, D: i32, dsT: usize): void {
  const kb = ptr(k, j0 * ldkv + g * D);
  gemmOne(false, false, rb, D, cb, dsT, BK, kb, ldkv, ptr(dq, i0 * ldq + h * D), ldq, 1, j0 == 0 ? 0 : 1);
}

// Zeroes dk and dv rows j0..j1 of kv group g.
function zeroKvRows(dk: usize, dv: usize, j0: i32, j1: i32, g: i32, KVH: i32, D: i32): void {
  for (let j = j0; j < j1; j++) {
    zero(ptr(dk, (j * KVH + g) * D), D);
    zero(ptr(dv, (j * KVH + g) * D), D);
  }
}

// Causal GQA backward (kvLen == T), blocked like FlashAttention's: for each tile of BQ query rows
// and BK key rows, S = scale Q K^T and dP = dOut V^T are recomputed with GEMMs, turned into P and dS,
// and three more GEMMs give dQ += dS K, dK += dS^T Q, dV += P^T dOut. Tiles past the diagonal are
// skipped. Work is split by kv head: dk/dv of a kv head accumulate over every query head of its
// group, so a group belongs to one thread. Scratch holds two BQ x BK tiles, whatever the length.
export function attention_bwd(
  q: usize, k: usize, v: usize, out: usize, lse: usize, dOut: usize, dq: usize, dk: usize, dv: usize,
  T: i32, H: i32, KVH: i32, D: i32, scale: f32, tid: i32, nthr: i32,
): void {
  const group = H / KVH;
  const pT = scratchPtr + P_TILE;
  const dsT = scratchPtr + DS_TILE;
  const di = scratchPtr + DI_ROWS;
  const ldq = H * D;
  const ldkv = KVH * D;
  for (let g = tid; g < KVH; g += nthr) {
    zeroKvRows(dk, dv, 0, T, g, KVH, D);
    for (let h = g * group; h < (g + 1) * group; h++) {
      for (let i0 = 0; i0 < T; i0 += BQ) {
        const rb = min(BQ, T - i0);
        rowDots(dOut, out, i0, rb, h, ldq, D, di);
        for (let j0 = 0; j0 < i0 + rb; j0 += BK) {
          const cb = min(BK, i0 + rb - j0);
          tileProbsAndGrads(q, k, v, lse, dOut, h, g, i0, rb, j0, cb, T, ldq, ldkv, D, scale, pT, dsT, di);
          accumulateQ(k, dq, h, g, i0, rb, j0, cb, ldq, ldkv, D, dsT);
          accumulateKv(q, dOut, dk, dv, h, g, i0, rb, j0, cb, ldq, ldkv, D, pT, dsT);
        }
      }
    }
  }
}

// The same backward in two passes, for when threads outnumber kv heads: this pass gives dk and dv
// with units (kv group, key tile), the next gives dq with units (head, query tile). P and dS are
// computed twice (7 products per tile instead of 5), but every thread has work. Each output sees
// the same updates in the same order as in `attention_bwd`, so the results are bit-identical.
export function attention_bwd_kv(
  q: usize, k: usize, v: usize, out: usize, lse: usize, dOut: usize, dk: usize, dv: usize,
  T: i32, H: i32, KVH: i32, D: i32, scale: f32, tid: i32, nthr: i32,
): void {
  const group = H / KVH;
  const pT = scratchPtr + P_TILE;
  const dsT = scratchPtr + DS_TILE;
  const di = scratchPtr + DI_ROWS;
  const ldq = H * D;
  const ldkv = KVH * D;
  const keyTiles = (T + BK - 1) / BK;
  for (let u = tid; u < KVH * keyTiles; u += nthr) {
    const g = u % KVH;
    const j0 = (u / KVH) * BK;
    zeroKvRows(dk, dv, j0, min(T, j0 + BK), g, KVH, D);
    for (let h = g * group; h < (g + 1) * group; h++) {
      for (let i0 = 0; i0 < T; i0 += BQ) {
        const rb = min(BQ, T - i0);
        if (i0 + rb <= j0) continue;
        const cb = min(BK, i0 + rb - j0);
        rowDots(dOut, out, i0, rb, h, ldq, D, di);
        tileProbsAndGrads(q, k, v, lse, dOut, h, g, i0, rb, j0, cb, T, ldq, ldkv, D, scale, pT, dsT, di);
        accumulateKv(q, dOut, dk, dv, h, g, i0, rb, j0, cb, ldq, ldkv, D, pT, dsT);
      }
    }
  }
}

// Second pass of the two-pass backward: dq, units (head, query tile).
export function attention_bwd_q(
  q: usize, k: usize, v: usize, out: usize, lse: usize, dOut: usize, dq: usize,
  T: i32, H: i32, KVH: i32, D: i32, scale: f32, tid: i32, nthr: i32,
): void {
  const group = H / KVH;
  const pT = scratchPtr + P_TILE;
  const dsT = scratchPtr + DS_TILE;
  const di = scratchPtr + DI_ROWS;
  const ldq = H * D;
  const ldkv = KVH * D;
  const queryTiles = (T + BQ - 1) / BQ;
  // Largest query tiles (the most key tiles) first, heads fastest, so shares come out even.
  for (let u = tid; u < H * queryTiles; u += nthr) {
    const h = u % H;
    const i0 = (queryTiles - 1 - u / H) * BQ;
    const g = h / group;
    const rb = min(BQ, T - i0);
    rowDots(dOut, out, i0, rb, h, ldq, D, di);
    for (let j0 = 0; j0 < i0 + rb; j0 += BK) {
      const cb = min(BK, i0 + rb - j0);
      tileProbsAndGrads(q, k, v, lse, dOut, h, g, i0, rb, j0, cb, T, ldq, ldkv, D, scale, pT, dsT, di);
      accumulateQ(k, dq, h, g, i0, rb, j0, cb, ldq, ldkv, D, dsT);
    }
  }
}

// ---------------------------------------------------------------- log-softmax over a vocabulary

const LSE_BLOCK: i32 = 512;

// logsumexp of one row in one pass over memory: per 512-float block (held in L1) a max and a sum of
// exp in float32, merged into a float64 running (max, sum).
function rowLogSumExp(x: usize, V: i32): f64 {
  let M: f64 = -Infinity;
  let S: f64 = 0;
  for (let b0 = 0; b0 < V; b0 += LSE_BLOCK) {
    const len = min(LSE_BLOCK, V - b0);
    const xb = ptr(x, b0);
    let vm = f32x4.splat(-Infinity);
    let j = 0;
    for (; j + 4 <= len; j += 4) vm = f32x4.pmax(vm, v128.load(xb + ((<usize>j) << 2)));
    let bm = hmax4(vm);
    for (; j < len; j++) bm = max(bm, load<f32>(ptr(xb, j)));
    if (bm == -Infinity) continue;
    const vbm = f32x4.splat(bm);
    let s0 = f32x4.splat(0);
    let s1 = f32x4.splat(0);
    j = 0;
    for (; j + 8 <= len; j += 8) {
      const o = (<usize>j) << 2;
      s0 = f32x4.add(s0, exp4(f32x4.sub(v128.load(xb + o), vbm)));
      s1 = f32x4.add(s1, exp4(f32x4.sub(v128.load(xb + o, 16), vbm)));
    }
    let bs = <f64>hsum4(f32x4.add(s0, s1));
    for (; j < len; j++) bs += <f64>exp1(load<f32>(ptr(xb, j)) - bm);
    const fbm = <f64>bm;
    if (fbm > M) {
      S = S * Math.exp(M - fbm) + bs;
      M = fbm;
    } else {
      S += bs * Math.exp(fbm - M);
    }
  }
  return M + Math.log(S);
}

export function logsoftmax_gather(logits: usize, rows: i32, V: i32, targets: usize, K: i32, logprobs: usize, lse: usize, tid: i32, nthr: i32): void {
  const r0 = shareLo(rows, 1, tid, nthr);
  const r1 = shareLo(rows, 1, tid + 1, nthr);
  for (let r = r0; r < r1; r++) {
    const x = ptr(logits, r * V);
    const l = rowLogSumExp(x, V);
    store<f32>(ptr(lse, r), <f32>l);
    for (let j = 0; j < K; j++) {
      const t = load<i32>(targets + ((<usize>(r * K + j)) << 2));
      store<f32>(ptr(logprobs, r * K + j), <f32>(<f64>load<f32>(ptr(x, t)) - l));
    }
  }
}

// logits[r] <- scatter_j(g[r,j] at targets) - (sum_j g[r,j]) * softmax(logits[r]), in place.
export function logsoftmax_bwd(logits: usize, rows: i32, V: i32, targets: usize, K: i32, g: usize, lse: usize, tid: i32, nthr: i32): void {
  const r0 = shareLo(rows, 1, tid, nthr);
  const r1 = shareLo(rows, 1, tid + 1, nthr);
  for (let r = r0; r < r1; r++) {
    const x = ptr(logits, r * V);
    let G: f32 = 0;
    for (let j = 0; j < K; j++) G += load<f32>(ptr(g, r * K + j));
    const l = load<f32>(ptr(lse, r));
    const vl = f32x4.splat(l);
    const vg = f32x4.splat(-G);
    let j = 0;
    for (; j + 4 <= V; j += 4) {
      const o = (<usize>j) << 2;
      v128.store(x + o, f32x4.mul(vg, exp4(f32x4.sub(v128.load(x + o), vl))));
    }
    for (; j < V; j++) store<f32>(ptr(x, j), -G * exp1(load<f32>(ptr(x, j)) - l));
    for (let t = 0; t < K; t++) {
      const idx = load<i32>(targets + ((<usize>(r * K + t)) << 2));
      store<f32>(ptr(x, idx), load<f32>(ptr(x, idx)) + load<f32>(ptr(g, r * K + t)));
    }
  }
}

// ---------------------------------------------------------------- optimizer and norms

export function adamw(
  param: usize, grad: usize, m: usize, v: usize, n: i32,
  lr: f32, b1: f32, b2: f32, eps: f32, wd: f32, bc1: f32, bc2: f32, gs: f32, tid: i32, nthr: i32,
): void {
  const i0 = shareLo(n, 4, tid, nthr);
  const i1 = shareLo(n, 4, tid + 1, nthr);
  const vb1 = f32x4.splat(b1);
  const vb2 = f32x4.splat(b2);
  const v1b1 = f32x4.splat(1 - b1);
  const v1b2 = f32x4.splat(1 - b2);
  const vgs = f32x4.splat(gs);
  const vlr = f32x4.splat(lr);
  const vlrwd = f32x4.splat(lr * wd);
  const vbc1 = f32x4.splat(bc1);
  const vbc2 = f32x4.splat(bc2);
  const veps = f32x4.splat(eps);
  let i = i0;
  for (; i + 4 <= i1; i += 4) {
    const o = (<usize>i) << 2;
    const g = f32x4.mul(v128.load(grad + o), vgs);
    const mm = f32x4.add(f32x4.mul(vb1, v128.load(m + o)), f32x4.mul(v1b1, g));
    const vv = f32x4.add(f32x4.mul(vb2, v128.load(v + o)), f32x4.mul(v1b2, f32x4.mul(g, g)));
    v128.store(m + o, mm);
    v128.store(v + o, vv);
    const pp = v128.load(param + o);
    const step = f32x4.div(f32x4.mul(vlr, f32x4.div(mm, vbc1)), f32x4.add(f32x4.sqrt(f32x4.div(vv, vbc2)), veps));
    v128.store(param + o, f32x4.sub(f32x4.sub(pp, step), f32x4.mul(vlrwd, pp)));
  }
  for (; i < i1; i++) {
    const g = load<f32>(ptr(grad, i)) * gs;
    const mm = b1 * load<f32>(ptr(m, i)) + (1 - b1) * g;
    const vv = b2 * load<f32>(ptr(v, i)) + (1 - b2) * (g * g);
    store<f32>(ptr(m, i), mm);
    store<f32>(ptr(v, i), vv);
    const pp = load<f32>(ptr(param, i));
    const step = (lr * (mm / bc1)) / (Mathf.sqrt(vv / bc2) + eps);
    store<f32>(ptr(param, i), pp - step - lr * wd * pp);
  }
}

/** Elements per partial sum of `sumsq` (fixed, so the total does not depend on thread count). */
export const SUMSQ_CHUNK: i32 = 16384;

// out[c] (f64) = sum of squares of chunk c; chunks are dealt in contiguous ranges to threads.
export function sumsq(x: usize, n: i32, out: usize, tid: i32, nthr: i32): void {
  const chunks = (n + SUMSQ_CHUNK - 1) / SUMSQ_CHUNK;
  const c0 = <i32>((<i64>chunks * tid) / nthr);
  const c1 = <i32>((<i64>chunks * (tid + 1)) / nthr);
  for (let c = c0; c < c1; c++) {
    const i0 = c * SUMSQ_CHUNK;
    const i1 = min(n, i0 + SUMSQ_CHUNK);
    let a0 = f64x2.splat(0);
    let a1 = f64x2.splat(0);
    let i = i0;
    for (; i + 4 <= i1; i += 4) {
      const xv = v128.load(ptr(x, i));
      const lo = f64x2.promote_low_f32x4(xv);
      const hi = f64x2.promote_low_f32x4(v128.shuffle<f32>(xv, xv, 2, 3, 0, 1));
      a0 = f64x2.add(a0, f64x2.mul(lo, lo));
      a1 = f64x2.add(a1, f64x2.mul(hi, hi));
    }
    const t = f64x2.add(a0, a1);
    let s = f64x2.extract_lane(t, 0) + f64x2.extract_lane(t, 1);
    for (; i < i1; i++) {
      const e = <f64>load<f32>(ptr(x, i));
      s += e * e;
    }
    store<f64>(out + ((<usize>c) << 3), s);
  }
}
