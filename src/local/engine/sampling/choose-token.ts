import type { SeededRng } from "../model/prng.js";

/** Resolved sampling controls for one request. */
export interface TokenChoiceParams {
  /** 0 = greedy. */
  temperature: number;
  /** <= 0 means no limit. */
  topK: number;
  /** 1 means no limit. */
  topP: number;
}

/** log-sum-exp of a row of logits (float64). */
export function rowLogSumExp(row: Float32Array): number {
  let mx = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < row.length; i++) if (row[i]! > mx) mx = row[i]!;
  let s = 0;
  for (let i = 0; i < row.length; i++) s += Math.exp(row[i]! - mx);
  return mx + Math.log(s);
}

/** Index of the largest logit (the first one on ties). */
export function argmax(row: Float32Array): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i]! > row[best]!) best = i;
  return best;
}

/**
 * Pick the next token from one row of logits: greedy at temperature 0, else sample from
 * softmax(logits / temperature) restricted to the top-k logits, then to the smallest set of
 * most-likely tokens whose probability reaches top-p (vLLM's order).
 */
export function chooseToken(row: Float32Array, p: TokenChoiceParams, rng: SeededRng): number {
  return new TokenChooser().choose(row, p, rng).token;
}

/** A chosen token and its log-probability under the unmodified (temperature 1) distribution. */
export interface TokenChoice {
  token: number;
  logprob: number;
}

/**
 * `chooseToken` plus the chosen token's logprob, reusing one weight buffer across calls (decode
 * calls this once per sequence per step on rows of the whole vocabulary). At temperature 1 over the
 * full vocabulary the sampling weights are exactly the terms of the log-sum-exp, so the row is
 * exponentiated once instead of twice; the results are bit-identical to `chooseToken` followed by
 * `rowLogSumExp`.
 */
export class TokenChooser {
  private w = new Float64Array(0);

  private weights(n: number): Float64Array {
    if (this.w.length < n) this.w = new Float64Array(n);
    return this.w;
  }

  choose(row: Float32Array, p: TokenChoiceParams, rng: SeededRng): TokenChoice {
    const V = row.length;
    if (p.temperature === 0) {
      const token = argmax(row);
      return { token, logprob: row[token]! - rowLogSumExp(row) };
    }
    let candidates: Int32Array | null = null;
    if (p.topK > 0 && p.topK < V) candidates = topKIndices(row, p.topK);
    let token: number;
    let lse: number;
    if (candidates === null) {
      let mx = Number.NEGATIVE_INFINITY;
      for (let j = 0; j < V; j++) if (row[j]! > mx) mx = row[j]!;
      const w = this.weights(V);
      let total = 0;
      const t = p.temperature;
      for (let j = 0; j < V; j++) {
        const e = Math.exp((row[j]! - mx) / t);
        w[j] = e;
        total += e;
      }
      token = pickWeighted(w, V, total, p.topP, rng, null);
      lse = t === 1 ? mx + Math.log(total) : rowLogSumExp(row);
    } else {
      const n = candidates.length;
      let mx = Number.NEGATIVE_INFINITY;
      for (let j = 0; j < n; j++) if (row[candidates[j]!]! > mx) mx = row[candidates[j]!]!;
      const w = this.weights(n);
      let total = 0;
      for (let j = 0; j < n; j++) {
        const e = Math.exp((row[candidates[j]!]! - mx) / p.temperature);
        w[j] = e;
        total += e;
      }
      token = pickWeighted(w, n, total, p.topP, rng, candidates);
      lse = rowLogSumExp(row);
    }
    return { token, logprob: row[token]! - lse };
  }
}

/** Inverse-CDF draw from weights w[0..n) (sum `total`), within the top-p nucleus when topP < 1. */
function pickWeighted(
  wAll: Float64Array,
  n: number,
  total: number,
  topP: number,
  rng: SeededRng,
  candidates: Int32Array | null,
): number {
  const idx = (j: number): number => (candidates ? candidates[j]! : j);
  if (topP < 1) {
    const w = wAll.length === n ? wAll : wAll.subarray(0, n);
    const keep = nucleus(w, topP * total);
    let mass = 0;
    for (const j of keep) mass += w[j]!;
    let u = rng.nextFloat() * mass;
    for (const j of keep) {
      u -= w[j]!;
      if (u < 0) return idx(j);
    }
    return idx(keep[keep.length - 1]!);
  }
  let u = rng.nextFloat() * total;
  for (let j = 0; j < n; j++) {
    u -= wAll[j]!;
    if (u < 0) return idx(j);
  }
  return idx(n - 1);
}

/**
 * The smallest set of positions with the largest weights whose sum reaches `target`, most likely
 * first. Exact without sorting the whole vocabulary: bisect a weight threshold until few
 * candidates straddle it, then sort only those.
 */
export function nucleus(w: Float64Array, target: number): number[] {
  let hi = 0;
  for (let j = 0; j < w.length; j++) if (w[j]! > hi) hi = w[j]!;
  // Invariants: mass(w >= lo) >= target, and mass(w >= hi) < target so every weight >= hi is in.
  let lo = 0;
  hi = hi * (1 + 1e-9) + Number.MIN_VALUE;
  let countLo = w.length;
  let countHi = 0;
  for (let it = 0; it < 200 && countLo - countHi > 64; it++) {
    const mid = 0.5 * (lo + hi);
    if (mid <= lo || mid >= hi) break;
    let m = 0;
    let c = 0;
    for (let k = 0; k < w.length; k++) {
      if (w[k]! >= mid) {
        m += w[k]!;
        c++;
      }
    }
    if (m >= target) {
      lo = mid;
      countLo = c;
    } else {
      hi = mid;
      countHi = c;
    }
  }
  const sure: number[] = [];
  const maybe: number[] = [];
  for (let j = 0; j < w.length; j++) {
    if (w[j]! >= hi) sure.push(j);
    else if (w[j]! >= lo) maybe.push(j);
  }
  const byWeight = (a: number, b: number) => w[b]! - w[a]! || a - b;
  sure.sort(byWeight);
  maybe.sort(byWeight);
  const out = sure;
  let cum = 0;
  for (const j of out) cum += w[j]!;
  for (const j of maybe) {
    if (cum >= target) break;
    out.push(j);
    cum += w[j]!;
  }
  return out;
}

/** Indices of the k largest values (ascending index order; ties at the threshold by index). */
export function topKIndices(row: Float32Array, k: number): Int32Array {
  const threshold = kthLargest(row, k);
  const out = new Int32Array(k);
  let c = 0;
  for (let i = 0; i < row.length && c < k; i++) if (row[i]! > threshold) out[c++] = i;
  for (let i = 0; i < row.length && c < k; i++) if (row[i]! === threshold) out[c++] = i;
  return out.sort();
}

/** The k-th largest value (quickselect on a copy, O(V) expected). */
function kthLargest(row: Float32Array, k: number): number {
  const a = Float32Array.from(row);
  let lo = 0;
  let hi = a.length - 1;
  const target = k - 1;
  while (lo < hi) {
    const pivot = a[(lo + hi) >> 1]!;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (a[i]! > pivot) i++;
      while (a[j]! < pivot) j--;
      if (i <= j) {
        const t = a[i]!;
        a[i] = a[j]!;
        a[j] = t;
        i++;
        j--;
      }
    }
    if (target <= j) hi = j;
    else if (target >= i) lo = i;
    else return a[target]!;
  }
  return a[target]!;
}
