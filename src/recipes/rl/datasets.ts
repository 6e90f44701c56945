/**
 * Where the RL recipe's env groups come from: an {@link RLDataSource} builds the train (and
 * optional test) datasets once the run's renderer and tokenizer exist. Ready sources: GSM8K and
 * arithmetic (the cookbook's), and {@link customRL} for any user `Env` / `EnvGroupBuilder`.
 */
import { checkBatchIndex } from "../../datasets/batching.js";
import { ArithmeticDataset } from "../../envs/arithmetic-env.js";
import type { Grader } from "../../envs/graders.js";
import { Gsm8kDatasetBuilder } from "../../envs/gsm8k-env.js";
import type { EnvGroupBuilder, RLDataset, RLDatasets } from "../../envs/types.js";
import type { Renderer } from "../../renderers/types.js";
import type { Tokenizer } from "../../tokenizers/types.js";
import { requireInteger } from "../common.js";

/** What a source gets: the run's renderer, tokenizer and seed. */
export interface RLDatasetContext {
  readonly renderer: Renderer;
  readonly tokenizer: Tokenizer;
  readonly seed: number;
}

/** Builds the RL datasets of a run. `describe()` goes into `config.json`. */
export interface RLDataSource {
  describe(): Record<string, unknown>;
  build(ctx: RLDatasetContext): Promise<RLDatasets>;
}

/** The first `n` batches of `dataset`. */
export function firstBatches(dataset: RLDataset, n: number): RLDataset {
  const length = Math.min(n, dataset.length);
  return {
    length,
    getBatch: (i: number): EnvGroupBuilder[] => {
      checkBatchIndex(i, length);
      return dataset.getBatch(i);
    },
  };
}

/** Options of {@link gsm8kRL}. */
export interface Gsm8kRLOptions {
  /** Problems per step. */
  groupsPerBatch: number;
  /** Samples per problem (>= 2 for group-centred advantages). */
  groupSize: number;
  /** Local JSONL files per split; a split without one is read from the Hugging Face hub. */
  paths?: { train?: string; test?: string };
  /** Evaluate on the first this-many test batches only (of `groupsPerBatch` problems). */
  testBatches?: number;
  /** Build no test set. Default false. */
  noTest?: boolean;
  formatCoef?: number;
  questionSuffix?: string;
  grader?: Grader;
}

/** GSM8K math word problems (`openai/gsm8k`), graded on the `\boxed{}` answer. */
export function gsm8kRL(o: Gsm8kRLOptions): RLDataSource {
  requireInteger(o.groupsPerBatch, "groupsPerBatch", 1, "e.g. 64");
  requireInteger(o.groupSize, "groupSize", 1, "e.g. 16");
  return {
    describe: () => ({
      kind: "gsm8k",
      groupsPerBatch: o.groupsPerBatch,
      groupSize: o.groupSize,
      paths: o.paths ?? null,
      testBatches: o.testBatches ?? null,
      noTest: o.noTest ?? false,
      formatCoef: o.formatCoef ?? 0.1,
      questionSuffix: o.questionSuffix ?? null,
      grader: o.grader === undefined ? "boxed" : "custom",
    }),
    async build(ctx) {
      const builder = new Gsm8kDatasetBuilder({
        renderer: ctx.renderer,
        batchSize: o.groupsPerBatch,
        groupSize: o.groupSize,
        seed: ctx.seed,
        includeTest: o.noTest !== true,
        ...(o.paths !== undefined ? { paths: o.paths } : {}),
        ...(o.formatCoef !== undefined ? { formatCoef: o.formatCoef } : {}),
        ...(o.questionSuffix !== undefined ? { questionSuffix: o.questionSuffix } : {}),
        ...(o.grader !== undefined ? { grader: o.grader } : {}),
      });
      const { train, test } = await builder.build();
      return {
        train,
        test: test && o.testBatches !== undefined ? firstBatches(test, o.testBatches) : test,
      };
    },
  };
}

/** Options of {@link arithmeticRL}. */
export interface ArithmeticRLOptions {
  groupsPerBatch: number;
  groupSize: number;
  /** Steps' worth of problems. Default 100. */
  nBatches?: number;
  /** Operands are drawn from [0, maxOperand]. Default 100. */
  maxOperand?: number;
  /** Prefix a worked example. Default true. */
  includeFewshot?: boolean;
  formatCoef?: number;
}

/** "What is x + y?" problems (the cookbook's smoke-test env); no test set. */
export function arithmeticRL(o: ArithmeticRLOptions): RLDataSource {
  requireInteger(o.groupsPerBatch, "groupsPerBatch", 1, "e.g. 32");
  requireInteger(o.groupSize, "groupSize", 1, "e.g. 4");
  return {
    describe: () => ({
      kind: "arithmetic",
      groupsPerBatch: o.groupsPerBatch,
      groupSize: o.groupSize,
      nBatches: o.nBatches ?? 100,
      maxOperand: o.maxOperand ?? 100,
      includeFewshot: o.includeFewshot ?? true,
      formatCoef: o.formatCoef ?? 0.1,
    }),
    async build(ctx) {
      const train = new ArithmeticDataset({
        renderer: ctx.renderer,
        batchSize: o.groupsPerBatch,
        groupSize: o.groupSize,
        seed: ctx.seed,
        ...(o.nBatches !== undefined ? { nBatches: o.nBatches } : {}),
        ...(o.maxOperand !== undefined ? { maxOperand: o.maxOperand } : {}),
        ...(o.includeFewshot !== undefined ? { includeFewshot: o.includeFewshot } : {}),
        ...(o.formatCoef !== undefined ? { formatCoef: o.formatCoef } : {}),
      });
      return { train, test: undefined };
    },
  };
}

/**
 * Any user envs: `build` returns the datasets (e.g. a `ListRLDataset` of `ProblemGroupBuilder`s
 * over your own `Env` class). `name` and `params` identify the data in `config.json`.
 */
export function customRL(
  name: string,
  build: (ctx: RLDatasetContext) => RLDatasets | Promise<RLDatasets>,
  params: Record<string, unknown> = {},
): RLDataSource {
  return {
    describe: () => ({ kind: "custom", name, ...params }),
    build: async (ctx) => build(ctx),
  };
}
