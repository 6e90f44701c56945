/**
 * Merging the metrics of a forward_backward split into chunks, by the `name:reduction` suffix of
 * each key (reference §7.6):
 *
 * - `mean`: average weighted by each chunk's datum count; `slack`: max minus that weighted mean.
 * - `sum`, `min`, `max`.
 * - `unique`: the first chunk's value under the key, the others under `key_1`, `key_2`, ...
 * - `hash_unordered`: the reference computes Python's `hash(tuple(sorted(int(v) for v in values)))`.
 *   Python's hash of ints and tuples is deterministic (no per-process salt), so it is reproduced
 *   here exactly (CPython >= 3.8, 64-bit) and returned as a JS number (nearest double, as Python's
 *   float metrics would carry it).
 *
 * Keys are taken from the first chunk; a key missing from any chunk, a key without exactly one
 * `:`, or an unknown reduction is dropped (the reference logs and skips unknown reductions; a
 * malformed key raises there, here it is dropped too). If every datum count is 0, means are
 * unweighted instead of dividing by zero.
 */

import type { ForwardBackwardOutput } from "../types/outputs.js";

const MASK64 = (1n << 64n) - 1n;
const PY_HASH_MODULUS = (1n << 61n) - 1n;
const XXPRIME_1 = 11400714785074694791n;
const XXPRIME_2 = 14029467366897019727n;
const XXPRIME_5 = 2870177450012600261n;

/** CPython's `hash(int)` as a signed 64-bit value. */
export function pythonIntHash(n: bigint): bigint {
  const mag = (n < 0n ? -n : n) % PY_HASH_MODULUS;
  const h = n < 0n ? -mag : mag;
  return h === -1n ? -2n : h;
}

/** CPython's `hash(tuple_of_ints)` (the xxHash-based tuple hash of CPython 3.8+). */
export function pythonTupleHash(items: readonly bigint[]): bigint {
  let acc = XXPRIME_5;
  for (const item of items) {
    const lane = BigInt.asUintN(64, pythonIntHash(item));
    acc = (acc + lane * XXPRIME_2) & MASK64;
    acc = ((acc << 31n) | (acc >> 33n)) & MASK64;
    acc = (acc * XXPRIME_1) & MASK64;
  }
  acc = (acc + (BigInt(items.length) ^ (XXPRIME_5 ^ 3527539n))) & MASK64;
  if (acc === MASK64) return 1546275796n;
  return BigInt.asIntN(64, acc);
}

function weightedMean(values: readonly number[], weights: readonly number[]): number {
  let wsum = 0;
  for (const w of weights) wsum += w;
  if (wsum === 0) return values.reduce((a, b) => a + b, 0) / values.length;
  let acc = 0;
  values.forEach((v, i) => {
    acc += v * weights[i]!;
  });
  return acc / wsum;
}

function hashUnordered(values: readonly number[]): number | undefined {
  if (!values.every(Number.isFinite)) return undefined;
  const ints = values
    .map((v) => BigInt(Math.trunc(v)))
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return Number(pythonTupleHash(ints));
}

/**
 * Merge per-chunk metrics. `datumCounts[i]` is the number of datums chunk `i` carried (its number
 * of `loss_fn_outputs`). See the module comment for the rules.
 */
export function mergeChunkMetrics(
  chunks: ReadonlyArray<Readonly<Record<string, number>>>,
  datumCounts: readonly number[],
): Record<string, number> {
  const first = chunks[0];
  if (!first) return {};
  if (datumCounts.length !== chunks.length) {
    throw new RangeError(
      `mergeChunkMetrics: ${chunks.length} chunks but ${datumCounts.length} datum counts`,
    );
  }
  const out: Record<string, number> = {};
  for (const key of Object.keys(first)) {
    const parts = key.split(":");
    if (parts.length !== 2) continue;
    const reduction = parts[1]!;
    if (!chunks.every((c) => key in c)) continue;
    const values = chunks.map((c) => c[key]!);
    switch (reduction) {
      case "mean":
        out[key] = weightedMean(values, datumCounts);
        break;
      case "slack":
        out[key] = Math.max(...values) - weightedMean(values, datumCounts);
        break;
      case "sum":
        out[key] = values.reduce((a, b) => a + b, 0);
        break;
      case "min":
        out[key] = Math.min(...values);
        break;
      case "max":
        out[key] = Math.max(...values);
        break;
      case "unique":
        out[key] = values[0]!;
        values.slice(1).forEach((v, i) => {
          out[`${key}_${i + 1}`] = v;
        });
        break;
      case "hash_unordered": {
        const h = hashUnordered(values);
        if (h !== undefined) out[key] = h;
        break;
      }
      default:
        break;
    }
  }
  return out;
}

/**
 * Combine the results of a chunked forward_backward: outputs concatenated in chunk order, metrics
 * merged with {@link mergeChunkMetrics} weighted by each chunk's output count, and the first
 * chunk's output type.
 */
export function combineForwardBackwardOutputs(
  results: readonly ForwardBackwardOutput[],
): ForwardBackwardOutput {
  const first = results[0];
  if (!first) return { lossFnOutputType: "", lossFnOutputs: [], metrics: {} };
  return {
    lossFnOutputType: first.lossFnOutputType,
    lossFnOutputs: results.flatMap((r) => r.lossFnOutputs),
    metrics: mergeChunkMetrics(
      results.map((r) => r.metrics),
      results.map((r) => r.lossFnOutputs.length),
    ),
  };
}
