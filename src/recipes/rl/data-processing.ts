/**
 * RL data processing, as pure functions of trajectory groups: group-relative advantages,
 * constant-reward filtering, trajectory -> training datums, batch metrics, the sample/train KL
 * diagnostics, and the per-trajectory rollout summary records.
 */
import { TinkerValidationError } from "../../client/errors.js";
import { type Datum, makeDatum } from "../../client/types/datum.js";
import { ModelInput } from "../../client/types/model-input.js";
import type { Logs, Metrics, Trajectory, TrajectoryGroup } from "../../envs/types.js";

/** Options of {@link computeAdvantages}. */
export interface AdvantageOptions {
  /** Divide by the group's (population) reward std + eps. Default false, as in the cookbook. */
  readonly normalizeStd?: boolean;
  /** Added to the std before dividing. Default 1e-6. */
  readonly eps?: number;
}

/**
 * Per group, per trajectory: total reward minus the group's mean total reward (optionally divided
 * by the group's std + eps). A group of one trajectory gets 0. The advantage applies to every
 * action token of the trajectory.
 */
export function computeAdvantages(
  groups: readonly TrajectoryGroup[],
  options: AdvantageOptions = {},
): number[][] {
  const eps = options.eps ?? 1e-6;
  if (!(Number.isFinite(eps) && eps >= 0)) {
    throw new TinkerValidationError(`eps must be a finite number >= 0, got ${eps}`, "eps");
  }
  return groups.map((g) => {
    const rewards = g.totalRewards();
    const n = rewards.length;
    if (n <= 1) return rewards.map(() => 0);
    const mean = rewards.reduce((a, b) => a + b, 0) / n;
    const centered = rewards.map((r) => r - mean);
    if (!options.normalizeStd) return centered;
    const std = Math.sqrt(centered.reduce((a, c) => a + c * c, 0) / n);
    return centered.map((c) => c / (std + eps));
  });
}

/** What {@link removeConstantRewardGroups} kept. */
export interface ConstantGroupFilterResult {
  /** The groups whose total rewards are not all equal, in input order. */
  readonly groups: TrajectoryGroup[];
  /** Index in the input of each kept group (to keep tags or other per-group data aligned). */
  readonly keptIndices: number[];
  /** How many groups were dropped. */
  readonly removed: number;
}

/**
 * Drop groups whose trajectories all have the same total reward: their advantages are all 0, so
 * they add no policy gradient but cost a forward/backward. When every group is constant the
 * result is empty (upstream keeps the first group instead); the caller should skip the step.
 */
export function removeConstantRewardGroups(
  groups: readonly TrajectoryGroup[],
): ConstantGroupFilterResult {
  const kept: TrajectoryGroup[] = [];
  const keptIndices: number[] = [];
  groups.forEach((g, i) => {
    const rewards = g.totalRewards();
    if (rewards.some((r) => r !== rewards[0])) {
      kept.push(g);
      keptIndices.push(i);
    }
  });
  return { groups: kept, keptIndices, removed: groups.length - kept.length };
}

/**
 * A training datum of an RL batch. `datum.lossFnInputs` holds exactly `target_tokens`,
 * `logprobs` (the sampler's) and `advantages`, as the built-in policy losses take them; the
 * mask (1 on action tokens) stays here on the client, for KL metrics and penalties.
 */
export interface RLDatum {
  readonly datum: Datum;
  /** Per target position: 1 where the target is a trained action token, else 0. */
  readonly mask: Float32Array;
  /** Per target position: the sampler's logprob (0 on observation tokens). */
  readonly samplingLogprobs: Float32Array;
}

/** A metric an env sets on a transition whose action should not be trained (mask and advantage 0). */
export const PARSE_ERROR_MASKED_METRIC = "parse_error_masked";

function observationTokens(traj: Trajectory, k: number): Int32Array {
  const ob = traj.transitions[k]!.observation;
  const bad = ob.chunks.find((c) => c.type !== "encoded_text");
  if (bad) {
    throw new TinkerValidationError(
      `transitions[${k}].observation has a "${bad.type}" chunk; RL datum assembly supports text-only observations (encode the content as tokens)`,
      `transitions[${k}].observation`,
    );
  }
  return ob.toInt32Array();
}

function startsWith(seq: ArrayLike<number>, prefix: readonly number[]): boolean {
  if (seq.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (seq[i] !== prefix[i]) return false;
  return true;
}

/**
 * Turn one trajectory into training datums. Transitions are concatenated while each observation
 * extends the tokens so far (only its new tokens are appended); an observation that does not
 * extend them closes the datum and starts a new one. Observation positions get logprob 0,
 * advantage 0, mask 0; action tokens get their sampling logprobs, `advantage`, mask 1 (mask and
 * advantage 0 when the transition's metrics set `parse_error_masked`). The sequence is then
 * shifted by one as in SFT: input = all tokens but the last, everything else = positions 1..N.
 */
export function trajectoryToData(trajectory: Trajectory, advantage: number): RLDatum[] {
  if (!Number.isFinite(advantage)) {
    throw new TinkerValidationError(`advantage must be finite, got ${advantage}`, "advantage");
  }
  const out: RLDatum[] = [];
  let tokens: number[] = [];
  let logprobs: number[] = [];
  let advantages: number[] = [];
  let mask: number[] = [];
  const close = (): void => {
    if (tokens.length < 2) {
      throw new TinkerValidationError(
        `a trajectory segment has ${tokens.length} token(s); a datum needs at least 2 (an observation and an action)`,
        "transitions",
      );
    }
    const n = tokens.length - 1;
    const lp = Float32Array.from(logprobs.slice(1));
    out.push({
      datum: makeDatum(ModelInput.fromInts(tokens.slice(0, n)), {
        target_tokens: Int32Array.from(tokens.slice(1)),
        logprobs: lp,
        advantages: Float32Array.from(advantages.slice(1)),
      }),
      mask: Float32Array.from(mask.slice(1)),
      samplingLogprobs: Float32Array.from(lp),
    });
    tokens = [];
    logprobs = [];
    advantages = [];
    mask = [];
  };

  trajectory.transitions.forEach((t, k) => {
    const ob = observationTokens(trajectory, k);
    let fresh: ArrayLike<number> = ob;
    if (tokens.length > 0) {
      if (startsWith(ob, tokens)) fresh = ob.subarray(tokens.length);
      else close();
    }
    for (let i = 0; i < fresh.length; i++) {
      tokens.push(fresh[i]!);
      logprobs.push(0);
      advantages.push(0);
      mask.push(0);
    }
    const ac = t.action;
    if (!ac.logprobs) {
      throw new TinkerValidationError(
        `transitions[${k}].action has no logprobs; the policy losses need the sampler's logprobs, so sample with a completer that returns them`,
        `transitions[${k}].action.logprobs`,
      );
    }
    if (ac.logprobs.length !== ac.tokens.length) {
      throw new TinkerValidationError(
        `transitions[${k}].action has ${ac.tokens.length} tokens but ${ac.logprobs.length} logprobs; they must pair up`,
        `transitions[${k}].action.logprobs`,
      );
    }
    const trained = !t.metrics[PARSE_ERROR_MASKED_METRIC];
    for (let i = 0; i < ac.tokens.length; i++) {
      tokens.push(ac.tokens[i]!);
      logprobs.push(ac.logprobs[i]!);
      advantages.push(trained ? advantage : 0);
      mask.push(trained ? 1 : 0);
    }
  });
  if (tokens.length > 0) close();
  return out;
}

/** Where a datum of an assembled batch came from. */
export interface RLDatumSource {
  readonly groupIdx: number;
  readonly trajIdx: number;
}

/**
 * The datums of a whole batch, with the group and trajectory each came from. Every trajectory is
 * kept, including those whose advantage is 0 (as upstream).
 */
export function assembleTrainingData(
  groups: readonly TrajectoryGroup[],
  advantages: readonly (readonly number[])[],
): { data: RLDatum[]; metadata: RLDatumSource[] } {
  if (advantages.length !== groups.length) {
    throw new TinkerValidationError(
      `advantages has ${advantages.length} rows for ${groups.length} groups; pass computeAdvantages(groups)`,
      "advantages",
    );
  }
  const data: RLDatum[] = [];
  const metadata: RLDatumSource[] = [];
  groups.forEach((g, groupIdx) => {
    const adv = advantages[groupIdx]!;
    if (adv.length !== g.trajectories.length) {
      throw new TinkerValidationError(
        `advantages[${groupIdx}] has ${adv.length} values for ${g.trajectories.length} trajectories`,
        `advantages[${groupIdx}]`,
      );
    }
    g.trajectories.forEach((traj, trajIdx) => {
      for (const d of trajectoryToData(traj, adv[trajIdx]!)) {
        data.push(d);
        metadata.push({ groupIdx, trajIdx });
      }
    });
  });
  return { data, metadata };
}

/** Options of {@link computeTrajectoryMetrics}. */
export interface TrajectoryMetricsOptions {
  /** Key prefix. Default `"env"` (keys `env/all/...`). */
  readonly prefix?: string;
  /** Per group, its logging tags (e.g. `[["gsm8k"], ["math"]]`). */
  readonly tags?: readonly (readonly string[])[];
}

function mean(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** Per key, the mean over the objects that have it. */
function keyMeans(objects: readonly Metrics[]): Record<string, number> {
  const sums = new Map<string, { sum: number; n: number }>();
  for (const o of objects) {
    for (const [k, v] of Object.entries(o)) {
      const s = sums.get(k) ?? { sum: 0, n: 0 };
      s.sum += v;
      s.n += 1;
      sums.set(k, s);
    }
  }
  const out: Record<string, number> = {};
  for (const [k, { sum, n }] of sums) out[k] = sum / n;
  return out;
}

const GOOD_REWARD = 0.5;

function batchMetrics(groups: readonly TrajectoryGroup[]): Record<string, number> {
  const trajs = groups.flatMap((g) => g.trajectories);
  const transitions = trajs.flatMap((t) => t.transitions);
  const acTokens = transitions.reduce((a, t) => a + t.action.tokens.length, 0);
  const obTokens = transitions.reduce((a, t) => a + t.observation.length, 0);
  const turns = transitions.length;
  const out: Record<string, number> = {
    total_episodes: trajs.length,
    total_turns: turns,
    total_ac_tokens: acTokens,
    total_ob_tokens: obTokens,
  };
  if (trajs.length === 0) return out;
  if (turns > 0) {
    out.ac_tokens_per_turn = acTokens / turns;
    out.ob_tokens_per_turn = obTokens / turns;
  }
  out.turns_per_episode = turns / trajs.length;
  out["reward/total"] = mean(groups.flatMap((g) => g.totalRewards()));
  Object.assign(
    out,
    keyMeans([...transitions.map((t) => t.metrics), ...groups.flatMap((g) => g.metrics)]),
  );
  let mixed = 0;
  let good = 0;
  for (const g of groups) {
    const r = g.totalRewards();
    if (r.some((x) => x !== r[0])) mixed++;
    else if (r.length > 0 && r[0]! >= GOOD_REWARD) good++;
  }
  const n = groups.length;
  out["by_group/frac_mixed"] = mixed / n;
  out["by_group/frac_all_good"] = good / n;
  out["by_group/frac_all_bad"] = (n - mixed - good) / n;
  return out;
}

/**
 * Batch metrics under `<prefix>/all/`: token and turn counts, `reward/total` (mean total reward),
 * the mean of every per-transition and per-group metric key (e.g. `correct`, `format`), and
 * `by_group/frac_mixed|frac_all_good|frac_all_bad` (all rewards equal and >= 0.5 counts as good).
 * With `tags`, the same metrics per tag under `<prefix>/<tag>/`, but only when some tag covers
 * fewer than all groups (a single shared tag adds nothing). With no trajectories only the counts
 * are returned.
 */
export function computeTrajectoryMetrics(
  groups: readonly TrajectoryGroup[],
  options: TrajectoryMetricsOptions = {},
): Record<string, number> {
  const prefix = options.prefix ?? "env";
  const tags = options.tags;
  const out: Record<string, number> = {};
  if (tags) {
    if (tags.length !== groups.length) {
      throw new TinkerValidationError(
        `tags has ${tags.length} entries for ${groups.length} groups; pass one tag list per group`,
        "tags",
      );
    }
    const byTag = new Map<string, TrajectoryGroup[]>();
    groups.forEach((g, i) => {
      for (const tag of new Set(tags[i]!)) {
        const list = byTag.get(tag) ?? [];
        list.push(g);
        byTag.set(tag, list);
      }
    });
    if ([...byTag.values()].some((list) => list.length < groups.length)) {
      for (const [tag, list] of byTag) {
        for (const [k, v] of Object.entries(batchMetrics(list))) out[`${prefix}/${tag}/${k}`] = v;
      }
    }
  }
  for (const [k, v] of Object.entries(batchMetrics(groups))) out[`${prefix}/all/${k}`] = v;
  return out;
}

/** The sample/train mismatch of one training step. */
export interface SampleTrainKL {
  /** mean(sampling - training logprob) over action tokens. */
  readonly "optim/kl_sample_train_v1": number;
  /** 0.5 mean((sampling - training)^2) over action tokens. */
  readonly "optim/kl_sample_train_v2": number;
  /** -mean(sampling logprob) over action tokens: a one-sample entropy estimate. */
  readonly "optim/entropy": number;
}

/**
 * KL estimates between the sampler's logprobs and the trainer's (`trainingLogprobs[i]` =
 * `loss_fn_outputs[i].logprobs` of the forward_backward on `data[i].datum`), over the masked
 * (action) tokens of the whole batch.
 */
export function computeSampleTrainKL(
  data: readonly RLDatum[],
  trainingLogprobs: readonly ArrayLike<number>[],
): SampleTrainKL {
  if (trainingLogprobs.length !== data.length) {
    throw new TinkerValidationError(
      `trainingLogprobs has ${trainingLogprobs.length} arrays for ${data.length} datums; pass loss_fn_outputs[i].logprobs of each`,
      "trainingLogprobs",
    );
  }
  let n = 0;
  let diff = 0;
  let sq = 0;
  let ent = 0;
  data.forEach((d, i) => {
    const train = trainingLogprobs[i]!;
    if (train.length !== d.mask.length) {
      throw new TinkerValidationError(
        `trainingLogprobs[${i}] has ${train.length} values but datum ${i} has ${d.mask.length} targets`,
        `trainingLogprobs[${i}]`,
      );
    }
    for (let j = 0; j < train.length; j++) {
      const m = d.mask[j]!;
      if (m === 0) continue;
      const q = d.samplingLogprobs[j]!;
      const delta = q - train[j]!;
      n += m;
      diff += m * delta;
      sq += m * delta * delta;
      ent -= m * q;
    }
  });
  if (n === 0) {
    throw new TinkerValidationError(
      "the batch has no action tokens (every mask is 0); skip the step instead of computing KL metrics",
      "data",
    );
  }
  return {
    "optim/kl_sample_train_v1": diff / n,
    "optim/kl_sample_train_v2": (0.5 * sq) / n,
    "optim/entropy": ent / n,
  };
}

/** One step of a {@link RolloutSummaryRecord}. */
export interface RolloutStepSummary {
  readonly step_idx: number;
  readonly ob_len: number;
  readonly ac_len: number;
  readonly reward: number;
  readonly episode_done: boolean;
  readonly metrics: Metrics;
  readonly logs: Logs;
  /** The decoded observation, when a `decode` function was given. */
  readonly ob_text?: string;
  /** The decoded action, when a `decode` function was given. */
  readonly ac_text?: string;
}

/** One line of `train_rollout_summaries.jsonl` (the cookbook's schema, version 1). */
export interface RolloutSummaryRecord {
  readonly schema_version: 1;
  readonly split: string;
  readonly iteration: number;
  readonly group_idx: number;
  readonly traj_idx: number;
  readonly tags: readonly string[];
  readonly sampling_client_step: number | null;
  readonly total_reward: number;
  readonly final_reward: number;
  readonly trajectory_metrics: Metrics;
  readonly final_ob_len: number;
  readonly steps: RolloutStepSummary[];
}

/** Options of {@link rolloutSummaryRecords}. */
export interface RolloutSummaryOptions {
  /** e.g. `"train"` or `"test"`. */
  readonly split: string;
  readonly iteration: number;
  /** The training step of the weights that sampled the rollouts (null when unknown). */
  readonly samplingClientStep?: number | null;
  /** Per group, its logging tags. */
  readonly tags?: readonly (readonly string[])[];
  /** Tokens -> text; when given, each step also records `ob_text` and `ac_text`. */
  readonly decode?: (tokens: readonly number[]) => string;
}

/** One JSON-ready record per trajectory, in group order then trajectory order. */
export function rolloutSummaryRecords(
  groups: readonly TrajectoryGroup[],
  options: RolloutSummaryOptions,
): RolloutSummaryRecord[] {
  const { tags, decode } = options;
  if (tags && tags.length !== groups.length) {
    throw new TinkerValidationError(
      `tags has ${tags.length} entries for ${groups.length} groups; pass one tag list per group`,
      "tags",
    );
  }
  const records: RolloutSummaryRecord[] = [];
  groups.forEach((g, groupIdx) => {
    const totals = g.totalRewards();
    g.trajectories.forEach((traj, trajIdx) => {
      const steps = traj.transitions.map((t, stepIdx): RolloutStepSummary => {
        const base = {
          step_idx: stepIdx,
          ob_len: t.observation.length,
          ac_len: t.action.tokens.length,
          reward: t.reward,
          episode_done: t.episodeDone,
          metrics: { ...t.metrics },
          logs: { ...t.logs },
        };
        if (!decode) return base;
        return {
          ...base,
          ob_text: decode(t.observation.toInts()),
          ac_text: decode(t.action.tokens),
        };
      });
      records.push({
        schema_version: 1,
        split: options.split,
        iteration: options.iteration,
        group_idx: groupIdx,
        traj_idx: trajIdx,
        tags: [...(tags?.[groupIdx] ?? [])],
        sampling_client_step: options.samplingClientStep ?? null,
        total_reward: totals[trajIdx]!,
        final_reward: g.finalRewards[trajIdx]!,
        trajectory_metrics: { ...g.metrics[trajIdx]! },
        final_ob_len: traj.finalObservation.length,
        steps,
      });
    });
  });
  return records;
}
