/**
 * The RL environment protocol (the cookbook's `rl/types`): token-level, single-use environments,
 * grouped for group-relative advantages, served in batches by an RL dataset.
 */
import { TinkerValidationError } from "../client/errors.js";
import type { ModelInput } from "../client/types/model-input.js";

/** The tokens the policy sampled for one turn. */
export type Action = number[];
/** What the policy reads: a prompt. */
export type Observation = ModelInput;
/** When sampling stops: stop strings, or stop token ids (as `Renderer.getStopSequences()` returns). */
export type StopCondition = string[] | number[];
/** Numeric per-step or per-group measurements, averaged by the trainer (e.g. `correct`, `format`). */
export type Metrics = Record<string, number>;
/** Free-form values for logs (question, response, reference, ...). */
export type Logs = Record<string, string | number | boolean>;

/** The first prompt of an episode and its stop condition. */
export interface InitialObservation {
  readonly observation: Observation;
  readonly stopCondition: StopCondition;
}

/** Metadata the rollout passes to {@link Env.step} along with the action. */
export interface StepExtra {
  /** `"length"` when sampling hit `maxTokens` instead of a stop condition. */
  readonly stopReason?: "stop" | "length";
}

/** The outcome of one {@link Env.step}. */
export interface StepResult {
  readonly reward: number;
  readonly episodeDone: boolean;
  /** The next prompt (empty when the episode is done). */
  readonly nextObservation: Observation;
  readonly nextStopCondition: StopCondition;
  readonly metrics: Metrics;
  readonly logs: Logs;
}

/**
 * An environment for one episode. It is single-use: there is no reset; make a new one per rollout.
 * The policy calls {@link initialObservation}, samples an action, calls {@link step} with it, and
 * repeats with `nextObservation` until `episodeDone`.
 */
export interface Env {
  initialObservation(): Promise<InitialObservation>;
  step(action: Action, extra?: StepExtra): Promise<StepResult>;
}

/** One sampled action with its sampling logprobs. */
export interface SampledAction {
  readonly tokens: number[];
  /** Per-token sampling logprobs, when the sampler returned them (needed for importance sampling). */
  readonly logprobs?: number[];
  readonly stopReason: "stop" | "length";
}

/** One step of an episode: prompt, action, and what the env said. */
export interface Transition {
  readonly observation: Observation;
  readonly action: SampledAction;
  readonly reward: number;
  readonly episodeDone: boolean;
  readonly metrics: Metrics;
  readonly logs: Logs;
}

/** A whole episode. */
export interface Trajectory {
  readonly transitions: readonly Transition[];
  readonly finalObservation: Observation;
}

/** A group reward for one trajectory and its metrics (from {@link EnvGroupBuilder.computeGroupRewards}). */
export interface GroupReward {
  readonly reward: number;
  readonly metrics: Metrics;
}

/**
 * Makes a group of envs whose rollouts are compared with each other (GRPO: the same problem, sampled
 * `groupSize` times), and optionally scores the group as a whole (pairwise preferences, ranking).
 */
export interface EnvGroupBuilder {
  makeEnvs(): Promise<Env[]>;
  /**
   * Extra reward per trajectory, added to the step rewards. Optional: none means zero for each.
   */
  computeGroupRewards?(
    trajectories: readonly Trajectory[],
    envs: readonly Env[],
  ): Promise<GroupReward[]>;
  /** Release resources (sandboxes, connections) after the group's rollouts. Optional. */
  cleanup?(): Promise<void>;
  /** Tags for grouping metrics, e.g. the dataset name. */
  loggingTags(): string[];
}

/** Batches of env groups; batch `i` is one training step's worth. */
export interface RLDataset {
  /** Number of batches. */
  readonly length: number;
  getBatch(index: number): EnvGroupBuilder[];
}

/** A train dataset and an optional test dataset. */
export interface RLDatasets {
  readonly train: RLDataset;
  readonly test: RLDataset | undefined;
}

/** Builds the RL datasets (loads data, tokenizer-dependent setup). */
export interface RLDatasetBuilder {
  build(): Promise<RLDatasets>;
}

/** The rollouts of one {@link EnvGroupBuilder}: trajectories with their group rewards and metrics. */
export class TrajectoryGroup {
  readonly trajectories: readonly Trajectory[];
  readonly finalRewards: readonly number[];
  readonly metrics: readonly Metrics[];

  constructor(
    trajectories: readonly Trajectory[],
    finalRewards: readonly number[],
    metrics: readonly Metrics[],
  ) {
    if (finalRewards.length !== trajectories.length || metrics.length !== trajectories.length) {
      throw new TinkerValidationError(
        `TrajectoryGroup needs one final reward and one metrics object per trajectory ` +
          `(got ${trajectories.length} trajectories, ${finalRewards.length} rewards, ${metrics.length} metrics)`,
        "finalRewards",
      );
    }
    this.trajectories = trajectories;
    this.finalRewards = finalRewards;
    this.metrics = metrics;
  }

  /** Per trajectory: the sum of its step rewards plus its group reward. */
  totalRewards(): number[] {
    return this.trajectories.map(
      (t, i) => t.transitions.reduce((s, tr) => s + tr.reward, 0) + this.finalRewards[i]!,
    );
  }
}
