import { checkBatchIndex } from "../datasets/batching.js";
import { deriveSeed, Prng } from "../datasets/prng.js";
import type { Message, Renderer } from "../renderers/types.js";
import {
  ProblemEnv,
  type ProblemEnvOptions,
  ProblemGroupBuilder,
  requirePositiveIntegers,
  scoringOptions,
} from "./problem-env.js";
import type { EnvGroupBuilder, RLDataset, RLDatasetBuilder, RLDatasets } from "./types.js";

/**
 * "What is x + y?": a toy env a tiny model can learn in a few steps, for smoke-testing an RL loop.
 * The answer is the first whitespace-separated token of the response read as an integer (a trailing
 * `.` or `,` is allowed); the format is always OK.
 */
export class ArithmeticEnv extends ProblemEnv {
  readonly x: number;
  readonly y: number;

  constructor(x: number, y: number, renderer: Renderer, options: ProblemEnvOptions = {}) {
    super(renderer, options);
    this.x = x;
    this.y = y;
  }

  /** The one-shot prefix: "What is 4 + 5?" answered "9". */
  static standardFewshotPrefix(): Message[] {
    return [
      { role: "user", content: "What is 4 + 5?" },
      { role: "assistant", content: "9" },
    ];
  }

  getQuestion(): string {
    return `What is ${this.x} + ${this.y}?`;
  }

  checkAnswer(response: string): boolean {
    const first = response.trim().split(/\s+/)[0] ?? "";
    const m = /^([-+]?\d+)[.,]?$/.exec(first);
    return m !== null && Number(m[1]) === this.x + this.y;
  }

  checkFormat(): boolean {
    return true;
  }

  getReferenceAnswer(): string {
    return String(this.x + this.y);
  }
}

/** Options of {@link ArithmeticDataset}. */
export interface ArithmeticDatasetOptions extends Omit<ProblemEnvOptions, "convoPrefix"> {
  renderer: Renderer;
  batchSize: number;
  groupSize: number;
  /** Default 100. */
  nBatches?: number;
  /** Default true. */
  includeFewshot?: boolean;
  /** Problems of batch `i` come from `deriveSeed(seed, i)`. Default 0. */
  seed?: number;
  /** Operands are drawn uniformly from [0, maxOperand]. Default 100. */
  maxOperand?: number;
}

/** Batches of addition problems, reproducible per batch index. */
export class ArithmeticDataset implements RLDataset {
  readonly options: ArithmeticDatasetOptions;

  constructor(options: ArithmeticDatasetOptions) {
    requirePositiveIntegers(options, ["batchSize", "groupSize"]);
    this.options = options;
  }

  /** Number of batches (`nBatches`). */
  get length(): number {
    return this.options.nBatches ?? 100;
  }

  /** The (x, y) pairs of batch `index`. */
  problems(index: number): [number, number][] {
    const rng = new Prng(deriveSeed(this.options.seed ?? 0, index));
    const max = this.options.maxOperand ?? 100;
    return Array.from({ length: this.options.batchSize }, () => [
      rng.intBetween(0, max),
      rng.intBetween(0, max),
    ]);
  }

  /** `batchSize` groups of `groupSize` envs on the problems of batch `index`. */
  getBatch(index: number): EnvGroupBuilder[] {
    checkBatchIndex(index, this.length);
    const { renderer, groupSize, includeFewshot } = this.options;
    const envOptions: ProblemEnvOptions = {
      ...(includeFewshot === false ? {} : { convoPrefix: ArithmeticEnv.standardFewshotPrefix() }),
      ...scoringOptions(this.options),
    };
    return this.problems(index).map(
      ([x, y]) =>
        new ProblemGroupBuilder(
          () => new ArithmeticEnv(x, y, renderer, envOptions),
          groupSize,
          "arithmetic",
        ),
    );
  }
}

/** Builds an {@link ArithmeticDataset} (no test set). */
export class ArithmeticDatasetBuilder implements RLDatasetBuilder {
  constructor(readonly options: ArithmeticDatasetOptions) {}

  async build(): Promise<RLDatasets> {
    return { train: new ArithmeticDataset(this.options), test: undefined };
  }
}
