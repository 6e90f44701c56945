/**
 * Rollouts of an RL step: every group of a batch rolled out concurrently (under one concurrency
 * bound), each sample with a seed derived from (run seed, step, group, env, turn), so a step's
 * trajectories depend only on the weights and the seed: not on timing, completion order or
 * concurrency. That is what lets a resumed run reproduce the uninterrupted one.
 */
import { APIResponseValidationError, TinkerValidationError } from "../../client/errors.js";
import type { SamplingClient } from "../../client/sampling-client.js";
import { ModelInput } from "../../client/types/model-input.js";
import { deriveSeed } from "../../datasets/prng.js";
import { rolloutGroup, type TokenPolicy } from "../../envs/rollouts.js";
import {
  type EnvGroupBuilder,
  type SampledAction,
  type Trajectory,
  TrajectoryGroup,
  type Transition,
} from "../../envs/types.js";

/** Offsets the step in the seeds of test-set rollouts, so they never reuse a training seed. */
const TEST_STREAM = 1 << 30;

/** A counting semaphore bounding concurrent work. */
export class Semaphore {
  private active = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(private readonly limit: number) {}

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) {
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else {
      this.active++;
    }
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }
}

/** Sampling settings of the rollouts. */
export interface RolloutSampling {
  maxTokens: number;
  temperature: number;
  seed: number;
}

/** A policy sampling from `sampler`, seeded by position in the run. */
function seededPolicy(
  sampler: SamplingClient,
  sampling: RolloutSampling,
  limit: Semaphore,
  stream: number,
  step: number,
  group: number,
): TokenPolicy {
  return (observation, stop, { envIndex, turn }) =>
    limit.run(async () => {
      const res = await sampler.sample(observation, 1, {
        maxTokens: sampling.maxTokens,
        temperature: sampling.temperature,
        stop: [...stop] as string[] | number[],
        seed: deriveSeed(sampling.seed, stream + step, group, envIndex, turn),
      });
      const seq = res.sequences[0];
      if (seq === undefined) {
        throw new APIResponseValidationError("the sampler returned no sequence for 1 sample");
      }
      if (seq.logprobs === undefined) {
        throw new APIResponseValidationError(
          "the sampler returned no logprobs; RL training needs the sampling logprobs of each token",
        );
      }
      return { tokens: seq.tokens, logprobs: seq.logprobs, stopReason: seq.stopReason };
    });
}

/** The rollouts of one batch, in group order, with each group's logging tags. */
export interface BatchRollouts {
  groups: TrajectoryGroup[];
  tags: string[][];
  /** The sampler version (number of optimizer steps of its weights) the batch was sampled with. */
  samplerStep: number;
}

/** Roll out every group of `builders` with `sampler`. */
export async function rolloutBatch(
  builders: readonly EnvGroupBuilder[],
  sampler: SamplingClient,
  samplerStep: number,
  sampling: RolloutSampling,
  limit: Semaphore,
  where: { step: number; split: "train" | "test" },
): Promise<BatchRollouts> {
  const stream = where.split === "train" ? 0 : TEST_STREAM;
  const groups = await Promise.all(
    builders.map((b, g) =>
      rolloutGroup(b, seededPolicy(sampler, sampling, limit, stream, where.step, g)),
    ),
  );
  return { groups, tags: builders.map((b) => b.loggingTags()), samplerStep };
}

/** Fail early when centred advantages cannot work: a group of one env has advantage 0 always. */
export async function checkGroupSizes(
  builders: readonly EnvGroupBuilder[],
  centred: boolean,
): Promise<void> {
  const first = builders[0];
  if (first === undefined || !centred) return;
  const envs = await first.makeEnvs();
  await first.cleanup?.();
  if (envs.length < 2) {
    throw new TinkerValidationError(
      "the dataset's groups have 1 env each (groupSize 1): group-centred advantages are then always 0 " +
        "and nothing trains; use groupSize >= 2",
      "groupSize",
    );
  }
}

// --- serialisation of rollouts (the async queue saved with a checkpoint) ---

interface TransitionJson {
  observation: number[];
  action: { tokens: number[]; logprobs: number[] | null; stopReason: SampledAction["stopReason"] };
  reward: number;
  episodeDone: boolean;
  metrics: Transition["metrics"];
  logs: Transition["logs"];
}

interface GroupJson {
  trajectories: Array<{ transitions: TransitionJson[]; finalObservation: number[] }>;
  finalRewards: number[];
  metrics: TrajectoryGroup["metrics"][number][];
}

/** JSON-ready form of a batch's rollouts (text-only observations). */
export interface BatchRolloutsJson {
  groups: GroupJson[];
  tags: string[][];
  samplerStep: number;
}

const tokensOf = (m: ModelInput): number[] => Array.from(m.toInt32Array());

export function batchRolloutsToJson(b: BatchRollouts): BatchRolloutsJson {
  return {
    samplerStep: b.samplerStep,
    tags: b.tags,
    groups: b.groups.map((g) => ({
      trajectories: g.trajectories.map((t) => ({
        finalObservation: tokensOf(t.finalObservation),
        transitions: t.transitions.map((tr) => ({
          observation: tokensOf(tr.observation),
          action: {
            tokens: tr.action.tokens,
            logprobs: tr.action.logprobs ?? null,
            stopReason: tr.action.stopReason,
          },
          reward: tr.reward,
          episodeDone: tr.episodeDone,
          metrics: tr.metrics,
          logs: tr.logs,
        })),
      })),
      finalRewards: [...g.finalRewards],
      metrics: [...g.metrics],
    })),
  };
}

export function batchRolloutsFromJson(j: BatchRolloutsJson): BatchRollouts {
  return {
    samplerStep: j.samplerStep,
    tags: j.tags,
    groups: j.groups.map((g) => {
      const trajectories: Trajectory[] = g.trajectories.map((t) => ({
        finalObservation: ModelInput.fromInts(t.finalObservation),
        transitions: t.transitions.map((tr) => ({
          observation: ModelInput.fromInts(tr.observation),
          action: {
            tokens: tr.action.tokens,
            ...(tr.action.logprobs !== null ? { logprobs: tr.action.logprobs } : {}),
            stopReason: tr.action.stopReason,
          },
          reward: tr.reward,
          episodeDone: tr.episodeDone,
          metrics: tr.metrics,
          logs: tr.logs,
        })),
      }));
      return new TrajectoryGroup(trajectories, g.finalRewards, g.metrics);
    }),
  };
}
