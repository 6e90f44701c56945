import { TinkerError } from "../client/errors.js";
import type { ModelInput } from "../client/types/model-input.js";
import type { TokenCompleter } from "../completers/types.js";
import {
  type Env,
  type EnvGroupBuilder,
  type SampledAction,
  type StopCondition,
  type Trajectory,
  TrajectoryGroup,
  type Transition,
} from "./types.js";

/** Where in a group rollout a policy call happens: which env of the group, which turn. */
export interface PolicyCallContext {
  readonly envIndex: number;
  readonly turn: number;
}

/**
 * A token-level policy: given a prompt and its stop condition, sample an action. Wrap a sampling
 * client (one `sample` call per rollout) or anything else, e.g. a scripted policy in tests.
 * `context` says which env and turn is sampled (e.g. to derive a reproducible sampling seed).
 */
export type TokenPolicy = (
  observation: ModelInput,
  stop: StopCondition,
  context: PolicyCallContext,
) => Promise<SampledAction>;

/** A {@link TokenPolicy} that samples with a `TokenCompleter` (e.g. the Tinker sampling completer). */
export function policyFromCompleter(
  completer: TokenCompleter,
  options: { maxTokens?: number } = {},
): TokenPolicy {
  return (observation, stop) => completer.complete(observation, stop, options);
}

/** Options of {@link runEpisode}. */
export interface EpisodeOptions {
  /** Stop a runaway multi-turn env after this many steps. Default 1000. */
  maxSteps?: number;
  /** The env's index in its group, passed to the policy. Default 0. */
  envIndex?: number;
}

/** Roll out one episode of `env` with `policy`. */
export async function runEpisode(
  env: Env,
  policy: TokenPolicy,
  options: EpisodeOptions = {},
): Promise<Trajectory> {
  const maxSteps = options.maxSteps ?? 1000;
  let { observation, stopCondition } = await env.initialObservation();
  const transitions: Transition[] = [];
  for (let i = 0; i < maxSteps; i++) {
    const action = await policy(observation, stopCondition, {
      envIndex: options.envIndex ?? 0,
      turn: i,
    });
    const result = await env.step(action.tokens, { stopReason: action.stopReason });
    transitions.push({
      observation,
      action,
      reward: result.reward,
      episodeDone: result.episodeDone,
      metrics: result.metrics,
      logs: result.logs,
    });
    observation = result.nextObservation;
    stopCondition = result.nextStopCondition;
    if (result.episodeDone) return { transitions, finalObservation: observation };
  }
  throw new TinkerError(
    `episode did not finish within maxSteps=${maxSteps}: the env never returned episodeDone; ` +
      `raise maxSteps if the episode is legitimately long, or fix the env's end condition`,
  );
}

/**
 * Make the group's envs, roll them all out concurrently, and add the group rewards
 * (zero when the builder has no `computeGroupRewards`). `cleanup` always runs, and only once every
 * episode has settled: when one episode fails, the others still finish before their resources are
 * released, and the first failure is rethrown.
 */
export async function rolloutGroup(
  builder: EnvGroupBuilder,
  policy: TokenPolicy,
  options: EpisodeOptions = {},
): Promise<TrajectoryGroup> {
  try {
    const envs = await builder.makeEnvs();
    const settled = await Promise.allSettled(
      envs.map((env, envIndex) => runEpisode(env, policy, { ...options, envIndex })),
    );
    const trajectories: Trajectory[] = [];
    for (const r of settled) {
      if (r.status === "rejected") throw r.reason;
      trajectories.push(r.value);
    }
    const group =
      builder.computeGroupRewards === undefined
        ? trajectories.map(() => ({ reward: 0, metrics: {} }))
        : await builder.computeGroupRewards(trajectories, envs);
    return new TrajectoryGroup(
      trajectories,
      group.map((g) => g.reward),
      group.map((g) => g.metrics),
    );
  } finally {
    await builder.cleanup?.();
  }
}
