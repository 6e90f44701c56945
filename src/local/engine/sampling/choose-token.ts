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
  const V = row.length;
  if (p.temperature === 0) return argmax(row);
  let candidates: Int32Array | null = null;
  if (p.topK > 0 && p.topK < V) candidates = topKIndices(row, p.topK);
  const n = candidates ? candidates.length : V;
  const idx = (j: number): number => (candidates ? candidates[j]! : j);
  let mx = Number.NEGATIVE_INFINITY;
  for (let j = 0; j < n; j++) if (row[idx(j)]! > mx) mx = row[idx(j)]!;
  const w = new Float64Array(n);
  let total = 0;
  for (let j = 0; j < n; j++) {
    const e = Math.exp((row[idx(j)]! - mx) / p.temperature);
    w[j] = e;
    total += e;
  }
  if (p.topP < 1) {
    const keep = nucleus(w, p.topP * total);
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
    u -= w[j]!;
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
