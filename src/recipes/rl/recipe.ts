/**
 * `RLRecipe`: the cookbook's RL loop (GRPO-style group-centred advantages, importance sampling or
 * PPO/CISPO/DRO), on-policy or with a bounded off-policy pipeline, with exact resume.
 *
 * Step n trains on the rollouts of batch n. On-policy, batch n is sampled with the weights after
 * n steps. With `maxStepsOffPolicy: d`, batch n is sampled with the weights after max(0, n - d)
 * steps, so the rollouts of the next d batches run while step n trains. The staleness is fixed by
 * construction (never above d, so no group is ever dropped as stale) and the rollouts do not depend
 * on timing: every sample has its own seed. A checkpoint after step n stores, besides the weights
 * and optimizer state, the already-sampled rollouts of the queued batches, so a resumed run trains
 * on exactly the data the uninterrupted one would have.
 */
import { performance } from "node:perf_hooks";
import { TinkerValidationError } from "../../client/errors.js";
import type { SamplingClient } from "../../client/sampling-client.js";
import type { ServiceClient } from "../../client/service-client.js";
import type { TrainingClient } from "../../client/training-client.js";
import type { LossFnType } from "../../client/types/params.js";
import type { RLDataset } from "../../envs/types.js";
import {
  type ClipLossConfig,
  type DroLossConfig,
  type LossConfigFor,
  type ResolvedLoss,
  resolveLoss,
} from "../../losses/builtin.js";
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
  requirePositiveNumber,
  resolveRendererName,
  validateBaseConfig,
  withRecipeService,
} from "../common.js";
import { type Evaluator, runEvaluators } from "../evaluators.js";
import { RecipeEmitter } from "../events.js";
import type { CheckpointRecord, MetricsRow, RunDir } from "../run-dir.js";
import { outputLogprobs } from "../supervised/metrics.js";
import {
  assembleTrainingData,
  computeAdvantages,
  computeSampleTrainKL,
  computeTrajectoryMetrics,
  removeConstantRewardGroups,
  rolloutSummaryRecords,
} from "./data-processing.js";
import type { RLDataSource } from "./datasets.js";
import {
  type BatchRollouts,
  type BatchRolloutsJson,
  batchRolloutsFromJson,
  batchRolloutsToJson,
  checkGroupSizes,
  type RolloutSampling,
  rolloutBatch,
  Semaphore,
} from "./rollouts.js";

/** The policy losses the RL recipe trains with. */
export type RLLoss = Exclude<LossFnType, "cross_entropy">;

/** Configuration of {@link RLRecipe}. */
export interface RLRecipeConfig extends RecipeBaseConfig {
  /** The envs: e.g. `gsm8kRL({ groupsPerBatch: 64, groupSize: 16 })`. */
  dataset: RLDataSource;
  /** Tokens sampled per turn at most. */
  maxTokens: number;
  /** Sampling temperature. Default 1. */
  temperature?: number;
  /** Default `"importance_sampling"`. */
  loss?: RLLoss;
  /** Clip thresholds (ppo, cispo) or beta (dro). */
  lossConfig?: ClipLossConfig | DroLossConfig;
  /** Divide centred advantages by the group's reward std. Default false (the cookbook's). */
  normalizeAdvantages?: boolean;
  /** Skip groups whose rewards are all equal (they carry no policy gradient). Default false. */
  removeConstantRewardGroups?: boolean;
  /** Sample requests in flight at most. Default 64. */
  maxConcurrentRollouts?: number;
  /** Optimizer steps per batch (the batch split in near-equal parts). Default 1. */
  numSubsteps?: number;
  /** Sample batch n with the weights of step n - d, overlapping sampling and training. */
  maxStepsOffPolicy?: number;
  /** Evaluate on the test set and `evaluators` every this many steps (0: never). Default 20. */
  evalEvery?: number;
  /** More evaluators (run on the same weights as the test-set evaluation). */
  evaluators?: readonly Evaluator[];
}

/** Resume state of an RL run, stored in each checkpoint record. */
interface RLLoopState {
  step: number;
  elapsed_seconds: number;
  /** File (in the run dir) holding the rollouts of batches step..step+k-1 already sampled. */
  queue_file: string | null;
}

interface QueueFile {
  batches: Array<{ batch: number; rollouts: BatchRolloutsJson }>;
}

/**
 * Reinforcement learning on env groups.
 *
 * ```ts
 * const recipe = new RLRecipe({
 *   model: "Qwen/Qwen3-8B",
 *   logDir: "runs/rl",
 *   dataset: gsm8kRL({ groupsPerBatch: 64, groupSize: 16 }),
 *   maxTokens: 256,
 *   learningRate: 4e-5,
 * });
 * const { samplerPath } = await recipe.run();
 * ```
 */
export class RLRecipe extends RecipeEmitter {
  readonly config: Readonly<RLRecipeConfig>;
  readonly loss: ResolvedLoss;
  private readonly rendererName: string;

  constructor(config: RLRecipeConfig) {
    super();
    validateBaseConfig(config);
    validateRL(config);
    this.config = { ...config };
    const name = config.loss ?? "importance_sampling";
    this.loss = resolveLoss(name, config.lossConfig as LossConfigFor<typeof name> | undefined);
    this.rendererName = resolveRendererName(config.model, config.renderer);
  }

  /** What `config.json` records (and what a resumed run must match). */
  describe(): Record<string, unknown> {
    const c = this.config;
    return {
      recipe: "rl",
      ...describeBase(c, this.rendererName),
      max_tokens: c.maxTokens,
      temperature: c.temperature ?? 1,
      loss_fn: this.loss.lossFn,
      loss_fn_config: this.loss.lossFnConfig ?? null,
      normalize_advantages: c.normalizeAdvantages ?? false,
      remove_constant_reward_groups: c.removeConstantRewardGroups ?? false,
      num_substeps: c.numSubsteps ?? 1,
      max_steps_off_policy: c.maxStepsOffPolicy ?? null,
      eval_every: c.evalEvery ?? 20,
      dataset: c.dataset.describe(),
      evaluators: (c.evaluators ?? []).length,
    };
  }

  /** Train; resolves when the run is complete or stopped by `signal`. */
  run(): Promise<RecipeResult> {
    return withRecipeService(
      this,
      this.config,
      { label: "rl", keys: ["env/all/reward/total", "env/all/correct", "test/env/all/correct"] },
      (service) => this.runWith(service),
    );
  }

  private async runWith(service: ServiceClient): Promise<RecipeResult> {
    const c = this.config;
    const { tokenizer, renderer } = await prepareModel(service, c.model, this.rendererName);
    const data = await c.dataset.build({ renderer, tokenizer, seed: c.seed ?? 0 });
    if (data.train.length < 1) {
      throw new TinkerValidationError("the RL dataset has no batches; give it problems", "dataset");
    }
    await checkGroupSizes(data.train.getBatch(0), c.removeConstantRewardGroups !== true);
    const totalSteps = Math.min(data.train.length, c.maxSteps ?? Number.POSITIVE_INFINITY);

    const run = await openRun<RLLoopState>(this, c, this.describe());
    if (run.resume?.final) return recipeResult(this, run.dir, totalSteps, false);
    const queued = new Map<number, BatchRollouts>();
    if (run.loop?.queue_file) {
      const q = await run.dir.readJson<QueueFile>(run.loop.queue_file);
      for (const b of q.batches) queued.set(b.batch, batchRolloutsFromJson(b.rollouts));
    }
    const { training } = await openTrainingClient(
      service,
      c,
      this.rendererName,
      run.resume?.state_path,
    );
    const session = new RLSession(this, {
      dir: run.dir,
      training,
      train: data.train,
      test: data.test,
      tokenizer,
      totalSteps,
      elapsedBase: run.loop?.elapsed_seconds ?? 0,
      queued,
    });
    const aborted = await session.train(run.start);
    return recipeResult(this, run.dir, totalSteps, aborted);
  }
}

function validateRL(c: RLRecipeConfig): void {
  if (c.dataset === undefined || typeof c.dataset.build !== "function") {
    throw new TinkerValidationError(
      "dataset must be an RLDataSource, e.g. gsm8kRL({ groupsPerBatch: 64, groupSize: 16 })",
      "dataset",
    );
  }
  requireInteger(c.maxTokens, "maxTokens", 1, "e.g. 256");
  if (c.temperature !== undefined) {
    requirePositiveNumber(c.temperature, "temperature", "e.g. 1 (RL needs sampling, not greedy)");
  }
  if (c.maxConcurrentRollouts !== undefined) {
    requireInteger(c.maxConcurrentRollouts, "maxConcurrentRollouts", 1, "e.g. 64");
  }
  if (c.numSubsteps !== undefined) requireInteger(c.numSubsteps, "numSubsteps", 1, "e.g. 1");
  if (c.maxStepsOffPolicy !== undefined) {
    requireInteger(c.maxStepsOffPolicy, "maxStepsOffPolicy", 1, "or omit it for on-policy");
  }
  if (c.evalEvery !== undefined) requireInteger(c.evalEvery, "evalEvery", 0, "0 disables evals");
}

interface RLSessionParts {
  dir: RunDir;
  training: TrainingClient;
  train: RLDataset;
  test: RLDataset | undefined;
  tokenizer: Tokenizer;
  totalSteps: number;
  elapsedBase: number;
  /** Rollouts restored from the checkpoint's queue file, by batch. */
  queued: Map<number, BatchRollouts>;
}

/** Split `items` into `k` near-equal consecutive parts (the first ones one longer). */
function splitEven<T>(items: readonly T[], k: number): T[][] {
  const parts = Math.min(k, items.length);
  const out: T[][] = [];
  let at = 0;
  for (let i = 0; i < parts; i++) {
    const n = Math.floor(items.length / parts) + (i < items.length % parts ? 1 : 0);
    out.push(items.slice(at, at + n));
    at += n;
  }
  return out;
}

/** One process's share of an RL run. */
class RLSession {
  private readonly startedAt = performance.now();
  private readonly limit: Semaphore;
  private readonly sampling: RolloutSampling;
  /** Sampling clients by version (number of optimizer steps in their weights). */
  private readonly samplers = new Map<number, SamplingClient>();
  /** Rollouts of batches, started ahead of training in off-policy mode. */
  private readonly rollouts = new Map<number, Promise<BatchRollouts>>();

  constructor(
    private readonly recipe: RLRecipe,
    private readonly p: RLSessionParts,
  ) {
    const c = recipe.config;
    this.limit = new Semaphore(c.maxConcurrentRollouts ?? 64);
    this.sampling = { maxTokens: c.maxTokens, temperature: c.temperature ?? 1, seed: c.seed ?? 0 };
    for (const [batch, r] of p.queued) this.rollouts.set(batch, Promise.resolve(r));
  }

  private elapsed(): number {
    return this.p.elapsedBase + (performance.now() - this.startedAt) / 1000;
  }

  private get offPolicy(): number {
    return this.recipe.config.maxStepsOffPolicy ?? 0;
  }

  /** The sampler version batch `b` is sampled with. */
  private versionFor(b: number): number {
    return Math.max(0, b - this.offPolicy);
  }

  /** Start the rollouts of batches `from..upTo` whose sampler exists and that are not started. */
  private launchRollouts(from: number, upTo: number): void {
    const last = Math.min(upTo, this.p.totalSteps - 1);
    for (let b = from; b <= last; b++) {
      if (this.rollouts.has(b)) continue;
      const v = this.versionFor(b);
      const sampler = this.samplers.get(v);
      if (sampler === undefined) continue;
      const run = rolloutBatch(this.p.train.getBatch(b), sampler, v, this.sampling, this.limit, {
        step: b,
        split: "train",
      });
      run.catch(() => undefined); // awaited (and rethrown) when its step trains
      this.rollouts.set(b, run);
    }
  }

  /** Train from `start`; returns whether the run was aborted. */
  async train(start: number): Promise<boolean> {
    const c = this.recipe.config;
    const saveEvery = c.saveEvery ?? 20;
    const evalEvery = c.evalEvery ?? 20;
    this.samplers.set(start, await this.p.training.saveWeightsAndGetSamplingClient());
    let step = start;
    for (; step < this.p.totalSteps; step++) {
      if (c.signal?.aborted) break;
      this.launchRollouts(step, step + this.offPolicy);
      const evalMetrics =
        evalEvery > 0 && step % evalEvery === 0 ? await this.evaluate(step) : undefined;
      const rollouts = await this.rollouts.get(step)!;
      this.rollouts.delete(step);
      await this.trainStep(step, rollouts, evalMetrics);
      // The weights now hold step + 1 steps: a new sampler (a named one at checkpoints).
      const next = step + 1;
      const due = next < this.p.totalSteps && saveEvery > 0 && next % saveEvery === 0;
      this.samplers.set(
        next,
        due
          ? await this.checkpoint(next, false)
          : await this.p.training.saveWeightsAndGetSamplingClient(),
      );
      for (const v of this.samplers.keys()) if (v < this.versionFor(next)) this.samplers.delete(v);
    }
    const aborted = step < this.p.totalSteps;
    if (!aborted || this.p.dir.checkpointRecords.at(-1)?.step !== step) {
      await this.checkpoint(step, !aborted);
    }
    return aborted;
  }

  /** Test-set rollouts and user evaluators on the current weights. */
  private async evaluate(step: number): Promise<Record<string, number>> {
    const sampler = this.samplers.get(step)!;
    const metrics: Record<string, number> = {};
    const test = this.p.test;
    if (test !== undefined) {
      const batches: BatchRollouts[] = [];
      for (let i = 0; i < test.length; i++) {
        batches.push(
          await rolloutBatch(test.getBatch(i), sampler, step, this.sampling, this.limit, {
            step: step * Math.max(1, test.length) + i,
            split: "test",
          }),
        );
      }
      Object.assign(
        metrics,
        computeTrajectoryMetrics(
          batches.flatMap((b) => b.groups),
          { prefix: "test/env", tags: batches.flatMap((b) => b.tags) },
        ),
      );
    }
    const evaluators = this.recipe.config.evaluators ?? [];
    if (evaluators.length > 0) {
      Object.assign(metrics, await runEvaluators(evaluators, this.p.training, sampler));
    }
    this.recipe.emit("evaluation", { step, metrics });
    return metrics;
  }

  private async trainStep(
    step: number,
    rollouts: BatchRollouts,
    evalMetrics: Record<string, number> | undefined,
  ): Promise<void> {
    const c = this.recipe.config;
    const t0 = performance.now();
    const row: MetricsRow = {
      step,
      "progress/batch": step,
      "progress/done_frac": (step + 1) / this.p.totalSteps,
      "optim/lr": baseLearningRate(c),
      "sampling_client/step": rollouts.samplerStep,
      "sampling_client/staleness": step - rollouts.samplerStep,
      ...computeTrajectoryMetrics(rollouts.groups, { tags: rollouts.tags }),
    };
    let groups = rollouts.groups;
    if (c.removeConstantRewardGroups === true) {
      const kept = removeConstantRewardGroups(groups);
      groups = kept.groups;
      row["env/all/constant_groups_removed"] = kept.removed;
    }
    const advantages = computeAdvantages(groups, { normalizeStd: c.normalizeAdvantages === true });
    const { data } = assembleTrainingData(groups, advantages);
    const summaries = rolloutSummaryRecords(rollouts.groups, {
      split: "train",
      iteration: step,
      samplingClientStep: rollouts.samplerStep,
      tags: rollouts.tags,
      decode: (ids) => this.p.tokenizer.decode(ids),
    });
    const iterDir = `iteration_${String(step).padStart(6, "0")}`;
    await this.p.dir.writeJsonLines(`${iterDir}/train_rollout_summaries.jsonl`, summaries);
    this.recipe.emit("rollouts", { step, groups: groups.length, summaries });

    let numTokens = 0;
    for (const d of data) numTokens += d.datum.modelInput.length;
    row.num_tokens = numTokens;
    row.num_datums = data.length;
    if (data.length === 0) {
      row["optim/skipped"] = 1;
    } else {
      const lr = baseLearningRate(c);
      const parts = splitEven(data, c.numSubsteps ?? 1);
      const submitted = parts.map((part) => ({
        fb: this.p.training.forwardBackward(
          part.map((d) => d.datum),
          this.recipe.loss.lossFn,
          this.recipe.loss.lossFnConfig,
        ),
        opt: this.p.training.optimStep(adamFor(c, lr)),
      }));
      const trainingLogprobs: Float32Array[] = [];
      for (const s of submitted) {
        const [fb, opt] = await Promise.all([s.fb, s.opt]);
        trainingLogprobs.push(...outputLogprobs(fb));
        for (const [k, v] of Object.entries(fb.metrics)) row[`optim/${k}`] = v;
        for (const [k, v] of Object.entries(opt.metrics ?? {})) row[`optim/${k}`] = v;
      }
      Object.assign(row, computeSampleTrainKL(data, trainingLogprobs));
    }
    Object.assign(row, evalMetrics);
    row["time/train"] = (performance.now() - t0) / 1000;
    row["time/total"] = this.elapsed();
    await this.p.dir.appendMetrics(row);
    this.recipe.emit("metrics", row);
    this.recipe.emit("step", {
      step,
      totalSteps: this.p.totalSteps,
      numTokens,
      elapsedSeconds: row["time/total"],
      metrics: row,
    });
  }

  /**
   * Save weights + optimizer state and sampler weights after `step` steps, with the queued
   * rollouts of the batches sampled ahead (awaited first: they belong to the checkpoint).
   * Returns a sampling client on the saved sampler weights.
   */
  private async checkpoint(step: number, final: boolean): Promise<SamplingClient> {
    const c = this.recipe.config;
    const name = checkpointName(final ? "final" : step);
    const ttl = final ? {} : { ttlSeconds: c.ttlSeconds ?? 604800 };
    const statePromise = this.p.training.saveState(name, { ...ttl, overwrite: true });
    const samplerPromise = this.p.training.saveWeightsForSampler(name, ttl);
    let queueFile: string | null = null;
    if (!final) {
      const pending = [...this.rollouts.entries()]
        .filter(([b]) => b >= step)
        .sort(([a], [b]) => a - b);
      if (pending.length > 0) {
        const batches = await Promise.all(
          pending.map(async ([batch, r]) => ({ batch, rollouts: batchRolloutsToJson(await r) })),
        );
        queueFile = `async_queue/${name}.json`;
        await this.p.dir.writeJson(queueFile, { batches } satisfies QueueFile);
      }
    }
    const [state, sampler] = await Promise.all([statePromise, samplerPromise]);
    const loopState: RLLoopState = { step, elapsed_seconds: this.elapsed(), queue_file: queueFile };
    const record: CheckpointRecord = {
      name,
      step,
      epoch: 0,
      batch: step,
      final,
      state_path: state.path,
      sampler_path: sampler.path,
      loop_state: { ...loopState },
    };
    await this.p.dir.appendCheckpoint(record);
    this.recipe.emit("checkpoint", record);
    return this.p.training.createSamplingClient(sampler.path);
  }
}
