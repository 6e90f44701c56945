import { checkBatchIndex, numBatches } from "../datasets/batching.js";
import { seededShuffle } from "../datasets/prng.js";
import type { EnvGroupBuilder, RLDataset } from "./types.js";

/** Options of {@link ListRLDataset}. */
export interface ListRLDatasetOptions<T> {
  /** Env groups per batch. */
  batchSize: number;
  /** Builds the env group of one row. */
  makeGroup: (row: T, index: number) => EnvGroupBuilder;
  /** Shuffle the rows once with this seed; `undefined` keeps the given order. */
  shuffleSeed?: number;
}

/**
 * An {@link RLDataset} over a list of rows: batch `i` holds the groups of rows
 * `[i * batchSize, min((i + 1) * batchSize, n))`, so the last batch may be partial
 * (`length = ceil(n / batchSize)`, the cookbook's rule for RL datasets).
 */
export class ListRLDataset<T> implements RLDataset {
  readonly rows: readonly T[];
  readonly batchSize: number;
  private readonly makeGroup: (row: T, index: number) => EnvGroupBuilder;

  constructor(rows: readonly T[], options: ListRLDatasetOptions<T>) {
    this.rows = options.shuffleSeed === undefined ? rows : seededShuffle(rows, options.shuffleSeed);
    this.batchSize = options.batchSize;
    this.makeGroup = options.makeGroup;
    numBatches(rows.length, options.batchSize); // validates batchSize
  }

  /** Number of batches, `ceil(rows / batchSize)`. */
  get length(): number {
    return numBatches(this.rows.length, this.batchSize, false);
  }

  /** The env groups of the rows of batch `index`. */
  getBatch(index: number): EnvGroupBuilder[] {
    checkBatchIndex(index, this.length);
    const start = index * this.batchSize;
    const end = Math.min(start + this.batchSize, this.rows.length);
    const out: EnvGroupBuilder[] = [];
    for (let i = start; i < end; i++) out.push(this.makeGroup(this.rows[i]!, i));
    return out;
  }
}
