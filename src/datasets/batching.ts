import { TinkerValidationError } from "../client/errors.js";
import { deriveSeed, permutation } from "./prng.js";

function checkBatchSize(batchSize: number): void {
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new TinkerValidationError(
      `batchSize must be a positive integer, got ${batchSize}`,
      "batchSize",
    );
  }
}

/** Throw a typed error unless `index` is a batch index of a dataset of `length` batches. */
export function checkBatchIndex(index: number, length: number): void {
  if (!Number.isInteger(index) || index < 0 || index >= length) {
    throw new TinkerValidationError(
      `batch index ${index} is out of range: this dataset has ${length} batches`,
      "index",
    );
  }
}

/**
 * Number of batches of `batchSize` in `n` rows. With `dropLast` (the cookbook's supervised rule,
 * `n // batchSize`) a final partial batch is dropped; without it (the RL datasets' rule,
 * `ceil(n / batchSize)`) it is kept.
 */
export function numBatches(n: number, batchSize: number, dropLast = true): number {
  checkBatchSize(batchSize);
  return dropLast ? Math.floor(n / batchSize) : Math.ceil(n / batchSize);
}

/** Options of {@link ShuffledBatches}. */
export interface BatchingOptions {
  batchSize: number;
  /** Base seed of the shuffle. Default 0. */
  seed?: number;
  /** Drop the final partial batch. Default true. */
  dropLast?: boolean;
  /** Shuffle at all. Default true; when false every epoch keeps the input order. */
  shuffle?: boolean;
}

/** One batch as produced by {@link ShuffledBatches.epochs}. */
export interface EpochBatch<T> {
  readonly epoch: number;
  readonly index: number;
  /** `epoch * length + index`. */
  readonly step: number;
  readonly items: T[];
}

/**
 * Fixed-size batches over a list of rows, reshuffled each epoch. The order of epoch `e` is the
 * permutation for `deriveSeed(seed, e)`, so it depends only on the seed and the epoch: the same seed
 * gives the same batches on every machine, and resuming at (epoch, batch) reproduces the stream.
 */
export class ShuffledBatches<T> {
  readonly items: readonly T[];
  readonly batchSize: number;
  readonly seed: number;
  readonly dropLast: boolean;
  readonly shuffle: boolean;
  private currentEpoch = -1;
  private order: number[] = [];

  constructor(items: readonly T[], options: BatchingOptions) {
    checkBatchSize(options.batchSize);
    this.items = items;
    this.batchSize = options.batchSize;
    this.seed = options.seed ?? 0;
    this.dropLast = options.dropLast ?? true;
    this.shuffle = options.shuffle ?? true;
    this.setEpoch(0);
  }

  /** Batches per epoch. */
  get length(): number {
    return numBatches(this.items.length, this.batchSize, this.dropLast);
  }

  /** The epoch whose order {@link getBatch} uses. */
  get epoch(): number {
    return this.currentEpoch;
  }

  /** Switch to the order of `epoch` (a non-negative integer). */
  setEpoch(epoch: number): void {
    if (epoch === this.currentEpoch) return;
    this.order = this.shuffle
      ? permutation(this.items.length, deriveSeed(this.seed, epoch))
      : Array.from({ length: this.items.length }, (_, i) => i);
    this.currentEpoch = epoch;
  }

  /** Row indices (into `items`) of batch `index` of the current epoch. */
  batchIndices(index: number): number[] {
    checkBatchIndex(index, this.length);
    const start = index * this.batchSize;
    return this.order.slice(start, Math.min(start + this.batchSize, this.items.length));
  }

  /** Batch `index` of the current epoch. */
  getBatch(index: number): T[] {
    return this.batchIndices(index).map((i) => this.items[i]!);
  }

  /** Every batch of epochs `[startEpoch, startEpoch + numEpochs)`, in order. */
  *epochs(numEpochs: number, startEpoch = 0): Generator<EpochBatch<T>> {
    for (let e = startEpoch; e < startEpoch + numEpochs; e++) {
      this.setEpoch(e);
      for (let i = 0; i < this.length; i++) {
        yield { epoch: e, index: i, step: e * this.length + i, items: this.getBatch(i) };
      }
    }
  }
}
