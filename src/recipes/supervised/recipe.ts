/**
 * `SupervisedRecipe`: the cookbook's pipelined SFT loop, with exact resume.
 *
 * Each step submits its forward_backward and optim_step without waiting; up to `submitAhead`
 * steps are in flight before the oldest result is awaited. A periodic checkpoint is submitted in
 * the request sequence between two steps, so it holds exactly the steps before it, and its record
 * is written only after those steps' metrics: a run killed anywhere resumes at that checkpoint,
 * drops the metrics rows after it, and replays nothing twice.
 */
import { performance } from "node:perf_hooks";
import { TinkerValidationError } from "../../client/errors.js";
import type { ServiceClient } from "../../client/service-client.js";
import type { TrainingClient } from "../../client/training-client.js";
import type { Datum } from "../../client/types/datum.js";
import type { ForwardBackwardOutput, OptimStepResponse } from "../../client/types/outputs.js";
import type { Tokenizer } from "../../tokenizers/types.js";
import {
  adamFor,
  baseLearningRate,
  checkpointName,
  describeBase,
  openRun,
  openTrainingClient,
  prepareModel,
  type RecipeBaseConfig,
  type RecipeResult,
  recipeResult,
  requireInteger,
  resolveRendererName,
  validateBaseConfig,
  withRecipeService,
} from "../common.js";
import { type Evaluator, NllEvaluator, runEvaluators } from "../evaluators.js";
import { RecipeEmitter } from "../events.js";
import type { CheckpointRecord, MetricsRow, RunDir } from "../run-dir.js";
import { LR_SCHEDULES, type LrSchedule, lrMultiplier } from "../schedule.js";
import type { SupervisedDataset, SupervisedDatasetBuilder } from "./dataset.js";
import { batchLossWeight, batchTokens, bitsPerByte, meanNll, outputLogprobs } from "./metrics.js";

/** Configuration of {@link SupervisedRecipe}. */
export interface SupervisedRecipeConfig extends RecipeBaseConfig {
  /** The data: e.g. `conversationsJsonl(path, { batchSize: 128 })`. */
  dataset: SupervisedDatasetBuilder;
  /** Default `"linear"` (decays to 0 at the last step). */
  lrSchedule?: LrSchedule;
  /** Passes over the data. Default 1. */
  epochs?: number;
  /** Steps submitted before the oldest result is awaited. Default 1. */
  submitAhead?: number;
  /** Evaluate every this many steps (0: never). Default 10. */
  evalEvery?: number;
  /** More evaluators besides the held-out NLL of the dataset's test set. */
  evaluators?: readonly Evaluator[];
}

/** Resume state of an SFT run, stored in each checkpoint record. */
interface SupervisedLoopState {
  step: number;
  elapsed_seconds: number;
}

interface StepWork {
  kind: "step";
  step: number;
  epoch: number;
  data: Datum[];
  lr: number;
  fb: PromiseLike<ForwardBackwardOutput>;
  opt: PromiseLike<OptimStepResponse>;
  evalMetrics: Record<string, number> | undefined;
}

interface CheckpointWork {
  kind: "checkpoint";
  step: number;
  final: boolean;
  state: PromiseLike<{ path: string }>;
  sampler: PromiseLike<{ path: string }> | undefined;
}

/**
 * Supervised fine-tuning of a LoRA adapter.
 *
 * ```ts
 * const recipe = new SupervisedRecipe({
 *   model: "Qwen/Qwen3-8B",
 *   logDir: "runs/sft",
 *   dataset: conversationsJsonl("data.jsonl", { batchSize: 128, testSize: 256 }),
 * });
 * recipe.on("metrics", (row) => console.log(row.step, row.train_mean_nll));
 * const { samplerPath } = await recipe.run();
 * ```
 */
export class SupervisedRecipe extends RecipeEmitter {
  readonly config: Readonly<SupervisedRecipeConfig>;
  private readonly rendererName: string;

  constructor(config: SupervisedRecipeConfig) {
    super();
    validateBaseConfig(config);
    validateSupervised(config);
    this.config = { ...config };
    this.rendererName = resolveRendererName(config.model, config.renderer);
  }

  /** What `config.json` records (and what a resumed run must match). */
  describe(): Record<string, unknown> {
    const c = this.config;
    return {
      recipe: "supervised",
      ...describeBase(c, this.rendererName),
      lr_schedule: c.lrSchedule ?? "linear",
      epochs: c.epochs ?? 1,
      submit_ahead: c.submitAhead ?? 1,
      eval_every: c.evalEvery ?? 10,
      dataset: c.dataset.describe(),
      evaluators: (c.evaluators ?? []).length,
    };
  }

  /** Train; resolves when the run is complete or stopped by `signal`. */
  run(): Promise<RecipeResult> {
    return withRecipeService(
      this,
      this.config,
      { label: "sft", keys: ["train_mean_nll", "test/nll", "learning_rate"] },
      (service) => this.runWith(service),
    );
  }

  private async runWith(service: ServiceClient): Promise<RecipeResult> {
    const c = this.config;
    const { tokenizer, renderer } = await prepareModel(service, c.model, this.rendererName);
    const data = await c.dataset.build({ tokenizer, renderer, seed: c.seed ?? 0 });
    const batches = data.train.length;
    if (batches < 1) {
      throw new TinkerValidationError(
        "the dataset has no full batch: batchSize is larger than its rows; lower batchSize or add data",
        "batchSize",
      );
    }
    const totalSteps = Math.min(batches * (c.epochs ?? 1), c.maxSteps ?? Number.POSITIVE_INFINITY);
    const evaluators: Evaluator[] = [
      ...(data.test !== undefined && data.test.length > 0
        ? [new NllEvaluator(data.test, tokenizer)]
        : []),
      ...(c.evaluators ?? []),
    ];

    const run = await openRun<SupervisedLoopState>(this, c, this.describe());
    if (run.resume?.final) return recipeResult(this, run.dir, totalSteps, false);
    const { training } = await openTrainingClient(
      service,
      c,
      this.rendererName,
      run.resume?.state_path,
    );
    const session = new SupervisedSession(this, {
      dir: run.dir,
      training,
      dataset: data.train,
      tokenizer,
      evaluators,
      totalSteps,
      batches,
      elapsedBase: run.loop?.elapsed_seconds ?? 0,
    });
    const aborted = await session.train(run.start);
    return recipeResult(this, run.dir, totalSteps, aborted);
  }
}

function validateSupervised(c: SupervisedRecipeConfig): void {
  if (c.dataset === undefined || typeof c.dataset.build !== "function") {
    throw new TinkerValidationError(
      "dataset must be a SupervisedDatasetBuilder, e.g. conversationsJsonl(path, { batchSize: 32 })",
      "dataset",
    );
  }
  if (c.lrSchedule !== undefined && !LR_SCHEDULES.includes(c.lrSchedule)) {
    throw new TinkerValidationError(
      `lrSchedule must be one of ${LR_SCHEDULES.join(", ")}, got ${String(c.lrSchedule)}`,
      "lrSchedule",
    );
  }
  if (c.epochs !== undefined) requireInteger(c.epochs, "epochs", 1, "e.g. 1");
  if (c.submitAhead !== undefined) {
    requireInteger(c.submitAhead, "submitAhead", 0, "0 waits for each step, 1 pipelines");
  }
  if (c.evalEvery !== undefined) requireInteger(c.evalEvery, "evalEvery", 0, "0 disables evals");
}

interface SessionParts {
  dir: RunDir;
  training: TrainingClient;
  dataset: SupervisedDataset;
  tokenizer: Tokenizer;
  evaluators: readonly Evaluator[];
  totalSteps: number;
  batches: number;
  elapsedBase: number;
}

/** One process's share of a run: the pipelined loop from a start step. */
class SupervisedSession {
  private readonly queue: Array<StepWork | CheckpointWork> = [];
  private readonly startedAt = performance.now();
  private stepsQueued = 0;

  constructor(
    private readonly recipe: SupervisedRecipe,
    private readonly p: SessionParts,
  ) {}

  private elapsed(): number {
    return this.p.elapsedBase + (performance.now() - this.startedAt) / 1000;
  }

  /** Train from `start`; returns whether the run was aborted. */
  async train(start: number): Promise<boolean> {
    const c = this.recipe.config;
    const saveEvery = c.saveEvery ?? 20;
    const evalEvery = c.evalEvery ?? 10;
    const submitAhead = c.submitAhead ?? 1;
    const baseLr = baseLearningRate(c);
    let step = start;
    for (; step < this.p.totalSteps; step++) {
      if (c.signal?.aborted) break;
      if (step > start && saveEvery > 0 && step % saveEvery === 0)
        this.submitCheckpoint(step, false);
      const epoch = Math.floor(step / this.p.batches);
      this.p.dataset.setEpoch(epoch);
      const data = await this.p.dataset.getBatch(step % this.p.batches);
      // Evaluations see the weights before this step; they are awaited so every kind (also one
      // that awaits before its first request) reads exactly those weights.
      const evalMetrics =
        evalEvery > 0 && step % evalEvery === 0 && this.p.evaluators.length > 0
          ? await runEvaluators(this.p.evaluators, this.p.training)
          : undefined;
      const lr = baseLr * lrMultiplier(c.lrSchedule ?? "linear", step, this.p.totalSteps);
      const fb = this.p.training.forwardBackward(data, "cross_entropy");
      const opt = this.p.training.optimStep(adamFor(c, lr));
      this.queue.push({ kind: "step", step, epoch, data, lr, fb, opt, evalMetrics });
      this.stepsQueued++;
      while (this.stepsQueued > submitAhead) await this.drainOne();
    }
    const aborted = step < this.p.totalSteps;
    const last = this.p.dir.checkpointRecords.at(-1);
    if (!aborted) this.submitCheckpoint(step, true);
    else if (last?.step !== step) this.submitCheckpoint(step, false);
    while (this.queue.length > 0) await this.drainOne();
    return aborted;
  }

  private submitCheckpoint(step: number, final: boolean): void {
    const c = this.recipe.config;
    const name = checkpointName(final ? "final" : step);
    const ttl = final ? {} : { ttlSeconds: c.ttlSeconds ?? 604800 };
    const state = this.p.training.saveState(name, { ...ttl, overwrite: true });
    const sampler = final ? this.p.training.saveWeightsForSampler(name, ttl) : undefined;
    this.queue.push({ kind: "checkpoint", step, final, state, sampler });
  }

  private async drainOne(): Promise<void> {
    const work = this.queue.shift();
    if (work === undefined) return;
    if (work.kind === "step") {
      this.stepsQueued--;
      await this.finishStep(work);
    } else {
      await this.finishCheckpoint(work);
    }
  }

  private async finishStep(w: StepWork): Promise<void> {
    const [fb, opt] = await Promise.all([w.fb, w.opt]);
    const logprobs = outputLogprobs(fb);
    const numTokens = batchTokens(w.data);
    const row: MetricsRow = {
      step: w.step,
      epoch: w.epoch,
      progress: w.step / this.p.totalSteps,
      learning_rate: w.lr,
      num_sequences: w.data.length,
      num_tokens: numTokens,
      num_loss_tokens: batchLossWeight(w.data),
      train_mean_nll: meanNll(logprobs, w.data),
      train_mean_bpb: bitsPerByte(logprobs, w.data, this.p.tokenizer),
      ...opt.metrics,
      ...w.evalMetrics,
      "time/total": this.elapsed(),
    };
    await this.p.dir.appendMetrics(row);
    if (w.evalMetrics !== undefined) {
      this.recipe.emit("evaluation", { step: w.step, metrics: w.evalMetrics });
    }
    this.recipe.emit("metrics", row);
    this.recipe.emit("step", {
      step: w.step,
      totalSteps: this.p.totalSteps,
      numTokens,
      elapsedSeconds: row["time/total"]!,
      metrics: row,
    });
  }

  private async finishCheckpoint(w: CheckpointWork): Promise<void> {
    const [state, sampler] = await Promise.all([w.state, w.sampler]);
    const loopState: SupervisedLoopState = { step: w.step, elapsed_seconds: this.elapsed() };
    const record: CheckpointRecord = {
      name: checkpointName(w.final ? "final" : w.step),
      step: w.step,
      epoch: Math.floor(w.step / this.p.batches),
      batch: w.step % this.p.batches,
      final: w.final,
      state_path: state.path,
      ...(sampler !== undefined ? { sampler_path: sampler.path } : {}),
      loop_state: { ...loopState },
    };
    await this.p.dir.appendCheckpoint(record);
    this.recipe.emit("checkpoint", record);
  }
}
