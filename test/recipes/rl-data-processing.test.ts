import { describe, expect, it } from "vitest";
import { TinkerValidationError } from "../../src/client/errors.js";
import { ModelInput } from "../../src/client/types/model-input.js";
import { type Trajectory, TrajectoryGroup, type Transition } from "../../src/envs/types.js";
import { checkDatumsForLoss } from "../../src/losses/index.js";
import {
  assembleTrainingData,
  computeAdvantages,
  computeSampleTrainKL,
  computeTrajectoryMetrics,
  removeConstantRewardGroups,
  rolloutSummaryRecords,
  trajectoryToData,
} from "../../src/recipes/rl/data-processing.js";

function step(
  ob: number[],
  ac: number[],
  opts: {
    lps?: number[] | null;
    reward?: number;
    done?: boolean;
    metrics?: Record<string, number>;
    logs?: Record<string, string>;
  } = {},
): Transition {
  const lps = opts.lps === null ? undefined : (opts.lps ?? ac.map((t) => -t / 10));
  return {
    observation: ModelInput.fromInts(ob),
    action: { tokens: ac, ...(lps ? { logprobs: lps } : {}), stopReason: "stop" },
    reward: opts.reward ?? 0,
    episodeDone: opts.done ?? false,
    metrics: opts.metrics ?? {},
    logs: opts.logs ?? {},
  };
}

const traj = (...transitions: Transition[]): Trajectory => ({
  transitions,
  finalObservation: ModelInput.empty(),
});

/** A one-turn trajectory with the given reward. */
const oneTurn = (reward: number, metrics: Record<string, number> = {}): Trajectory =>
  traj(step([1, 2, 3], [4, 5], { reward, done: true, metrics }));

const group = (trajs: Trajectory[], final?: number[], metrics?: Record<string, number>[]) =>
  new TrajectoryGroup(trajs, final ?? trajs.map(() => 0), metrics ?? trajs.map(() => ({})));

const f32 = (xs: number[]) => Array.from(Float32Array.from(xs));
const ints = (t: { toDense(): ArrayLike<number> }) => Array.from(t.toDense());

describe("trajectoryToData", () => {
  it("single turn: shift by one, observation masked, action carries logprobs and advantage", () => {
    const [d, ...rest] = trajectoryToData(oneTurn(1), 0.5);
    expect(rest).toHaveLength(0);
    expect(d!.datum.modelInput.toInts()).toEqual([1, 2, 3, 4]);
    const inputs = d!.datum.lossFnInputs;
    expect(Object.keys(inputs).sort()).toEqual(["advantages", "logprobs", "target_tokens"]);
    expect(inputs.target_tokens!.dtype).toBe("int64");
    expect(inputs.logprobs!.dtype).toBe("float32");
    expect(ints(inputs.target_tokens!)).toEqual([2, 3, 4, 5]);
    expect(ints(inputs.logprobs!)).toEqual(f32([0, 0, -0.4, -0.5]));
    expect(ints(inputs.advantages!)).toEqual([0, 0, 0.5, 0.5]);
    expect(Array.from(d!.mask)).toEqual([0, 0, 1, 1]);
    expect(Array.from(d!.samplingLogprobs)).toEqual(f32([0, 0, -0.4, -0.5]));
    // Ready for the built-in policy losses as is (no mask key).
    expect(() => checkDatumsForLoss("importance_sampling", [d!.datum])).not.toThrow();
  });

  it("multi-turn with the extension property: one datum, only new observation tokens appended", () => {
    const t = traj(
      step([1, 2], [3, 4], { lps: [-0.3, -0.4] }),
      step([1, 2, 3, 4, 5, 6], [7], { lps: [-0.7], done: true }),
    );
    const data = trajectoryToData(t, -1);
    expect(data).toHaveLength(1);
    const { datum, mask } = data[0]!;
    expect(datum.modelInput.toInts()).toEqual([1, 2, 3, 4, 5, 6]);
    expect(ints(datum.lossFnInputs.target_tokens!)).toEqual([2, 3, 4, 5, 6, 7]);
    expect(ints(datum.lossFnInputs.logprobs!)).toEqual(f32([0, -0.3, -0.4, 0, 0, -0.7]));
    expect(ints(datum.lossFnInputs.advantages!)).toEqual([0, -1, -1, 0, 0, -1]);
    expect(Array.from(mask)).toEqual([0, 1, 1, 0, 0, 1]);
  });

  it("an observation that does not extend the sequence starts a new datum", () => {
    const t = traj(
      step([1, 2], [3, 4], { lps: [-0.3, -0.4] }),
      step([1, 2, 3, 4, 5], [6], { lps: [-0.6] }), // extends
      step([9, 8], [7], { lps: [-0.7], done: true }), // context was rewritten
    );
    const data = trajectoryToData(t, 2);
    expect(data).toHaveLength(2);
    expect(data[0]!.datum.modelInput.toInts()).toEqual([1, 2, 3, 4, 5]);
    expect(ints(data[0]!.datum.lossFnInputs.target_tokens!)).toEqual([2, 3, 4, 5, 6]);
    expect(Array.from(data[0]!.mask)).toEqual([0, 1, 1, 0, 1]);
    expect(data[1]!.datum.modelInput.toInts()).toEqual([9, 8]);
    expect(ints(data[1]!.datum.lossFnInputs.target_tokens!)).toEqual([8, 7]);
    expect(ints(data[1]!.datum.lossFnInputs.logprobs!)).toEqual(f32([0, -0.7]));
    expect(ints(data[1]!.datum.lossFnInputs.advantages!)).toEqual([0, 2]);
    expect(Array.from(data[1]!.mask)).toEqual([0, 1]);
  });

  it("a shorter observation (a prefix of the tokens so far) also starts a new datum", () => {
    const data = trajectoryToData(traj(step([1, 2], [3]), step([1, 2], [4], { done: true })), 1);
    expect(data.map((d) => d.datum.modelInput.toInts())).toEqual([
      [1, 2],
      [1, 2],
    ]);
  });

  it("a transition flagged parse_error_masked gets mask 0 and advantage 0", () => {
    const t = traj(
      step([1], [2, 3], { metrics: { parse_error_masked: 1 } }),
      step([1, 2, 3, 4], [5], { done: true }),
    );
    const [d] = trajectoryToData(t, 3);
    expect(Array.from(d!.mask)).toEqual([0, 0, 0, 1]);
    expect(ints(d!.datum.lossFnInputs.advantages!)).toEqual([0, 0, 0, 3]);
    expect(ints(d!.datum.lossFnInputs.logprobs!)).toEqual(f32([-0.2, -0.3, 0, -0.5]));
  });

  it("rejects missing logprobs, mismatched logprobs, non-text observations and a 1-token datum", () => {
    const e = (() => {
      try {
        trajectoryToData(traj(step([1], [2, 3]), step([1, 2, 3], [4], { lps: null })), 0);
      } catch (err) {
        return err as TinkerValidationError;
      }
    })();
    expect(e).toBeInstanceOf(TinkerValidationError);
    expect(e!.field).toBe("transitions[1].action.logprobs");
    expect(e!.message).toMatch(/sample with a completer that returns them/);
    expect(() => trajectoryToData(traj(step([1], [2, 3], { lps: [-1] })), 0)).toThrow(
      /2 tokens but 1 logprobs/,
    );
    const image: Transition = {
      ...step([1], [2]),
      observation: new ModelInput([
        { type: "image", data: new Uint8Array(1), format: "png", expectedTokens: 4 },
      ]),
    };
    expect(() => trajectoryToData(traj(image), 0)).toThrow(/"image" chunk.*text-only/);
    expect(() => trajectoryToData(traj(step([], [2])), 0)).toThrow(/at least 2/);
    expect(() => trajectoryToData(oneTurn(0), Number.NaN)).toThrow(/advantage must be finite/);
  });
});

describe("advantages and constant groups", () => {
  const g1 = group([oneTurn(1), oneTurn(0), oneTurn(0), oneTurn(0)], [0, 0, 0, 1]); // totals 1,0,0,1
  const g2 = group([oneTurn(0.5)]);
  const g3 = group([oneTurn(0), oneTurn(0.25), oneTurn(0.5)]);

  it("reward minus group mean; size-1 groups give 0", () => {
    expect(computeAdvantages([g1, g2, g3])).toEqual([
      [0.5, -0.5, -0.5, 0.5],
      [0],
      [-0.25, 0, 0.25],
    ]);
  });

  it("optionally divided by the group's population std + eps", () => {
    const [a1, a2, a3] = computeAdvantages([g1, g2, g3], { normalizeStd: true, eps: 1e-6 });
    const s = 0.5 / (0.5 + 1e-6);
    expect(a1).toEqual([s, -s, -s, s].map((x) => expect.closeTo(x, 12)));
    expect(a2).toEqual([0]);
    const std3 = Math.sqrt((0.25 ** 2 * 2) / 3);
    expect(a3).toEqual([-0.25, 0, 0.25].map((x) => expect.closeTo(x / (std3 + 1e-6), 12)));
    // A constant group stays 0 instead of dividing by zero.
    expect(computeAdvantages([group([oneTurn(1), oneTurn(1)])], { normalizeStd: true })).toEqual([
      [0, 0],
    ]);
  });

  it("removeConstantRewardGroups keeps non-constant groups and reports the rest", () => {
    const constant = group([oneTurn(1), oneTurn(0)], [0, 1]); // totals 1, 1
    const r = removeConstantRewardGroups([constant, g1, g2, g3]);
    expect(r.groups).toEqual([g1, g3]);
    expect(r.keptIndices).toEqual([1, 3]);
    expect(r.removed).toBe(2);
    const none = removeConstantRewardGroups([constant, g2]);
    expect(none).toEqual({ groups: [], keptIndices: [], removed: 2 });
  });

  it("assembleTrainingData keeps every trajectory and records where each datum came from", () => {
    const multi = traj(step([1], [2]), step([7], [8], { done: true })); // two datums
    const groups = [group([oneTurn(1), multi]), group([oneTurn(0.5)])];
    const adv = computeAdvantages(groups);
    const { data, metadata } = assembleTrainingData(groups, adv);
    expect(metadata).toEqual([
      { groupIdx: 0, trajIdx: 0 },
      { groupIdx: 0, trajIdx: 1 },
      { groupIdx: 0, trajIdx: 1 },
      { groupIdx: 1, trajIdx: 0 },
    ]);
    expect(data).toHaveLength(4);
    expect(ints(data[3]!.datum.lossFnInputs.advantages!)).toEqual([0, 0, 0, 0]);
    expect(() => assembleTrainingData(groups, [[0, 0]])).toThrow(/1 rows for 2 groups/);
    expect(() => assembleTrainingData(groups, [[0], [0]])).toThrow(/advantages\[0\] has 1 values/);
  });
});

describe("computeTrajectoryMetrics", () => {
  const two = traj(
    step([1, 2, 3], [4, 5], { reward: 0.5, metrics: { format: 1 } }),
    step([1, 2, 3, 4, 5, 6], [7], { reward: 0.5, done: true, metrics: { correct: 1, format: 1 } }),
  );
  const groups = [
    // totals 1 and 0: mixed
    group([two, oneTurn(0, { correct: 0, format: 0 })], [0, 0], [{ grp: 2 }, { grp: 4 }]),
    // totals 1, 1: all good
    group([oneTurn(1, { correct: 1, format: 1 }), oneTurn(0.5, { correct: 1 })], [0, 0.5]),
    // totals 0.2: all bad (single trajectory)
    group([oneTurn(0.2, { correct: 0 })]),
  ];

  it("emits the env/all keys with hand-computed values", () => {
    const m = computeTrajectoryMetrics(groups);
    // 5 trajectories, 6 turns; action tokens 2+1 + 2*4 = 11; observation tokens 3+6 + 3*4 = 21.
    expect(m).toEqual({
      "env/all/total_episodes": 5,
      "env/all/total_turns": 6,
      "env/all/total_ac_tokens": 11,
      "env/all/total_ob_tokens": 21,
      "env/all/ac_tokens_per_turn": 11 / 6,
      "env/all/ob_tokens_per_turn": 21 / 6,
      "env/all/turns_per_episode": 6 / 5,
      "env/all/reward/total": (1 + 0 + 1 + 1 + 0.2) / 5,
      // format: transitions 1, 1, 0, 1 -> 3/4; correct: 1, 0, 1, 1, 0 -> 3/5
      "env/all/format": 0.75,
      "env/all/correct": 0.6,
      "env/all/grp": 3,
      "env/all/by_group/frac_mixed": 1 / 3,
      "env/all/by_group/frac_all_good": 1 / 3,
      "env/all/by_group/frac_all_bad": 1 / 3,
    });
  });

  it("per-tag keys only when the tags split the batch", () => {
    const shared = computeTrajectoryMetrics(groups, { tags: [["gsm8k"], ["gsm8k"], ["gsm8k"]] });
    expect(Object.keys(shared).every((k) => k.startsWith("env/all/"))).toBe(true);
    const split = computeTrajectoryMetrics(groups, { tags: [["a"], ["a", "b"], ["c"]] });
    expect(split["env/a/total_episodes"]).toBe(4);
    expect(split["env/b/total_episodes"]).toBe(2);
    expect(split["env/b/by_group/frac_all_good"]).toBe(1);
    expect(split["env/c/reward/total"]).toBeCloseTo(0.2, 12);
    expect(split["env/all/total_episodes"]).toBe(5);
    const prefixed = computeTrajectoryMetrics(groups, { prefix: "test/env" });
    expect(prefixed["test/env/all/correct"]).toBe(0.6);
    expect(() => computeTrajectoryMetrics(groups, { tags: [["a"]] })).toThrow(/1 entries for 3/);
  });

  it("an empty batch gives zero counts only", () => {
    expect(computeTrajectoryMetrics([])).toEqual({
      "env/all/total_episodes": 0,
      "env/all/total_turns": 0,
      "env/all/total_ac_tokens": 0,
      "env/all/total_ob_tokens": 0,
    });
  });
});

describe("computeSampleTrainKL", () => {
  it("matches hand-computed v1, v2 and entropy over action tokens", () => {
    // Datum 0 targets [2,3,4,5] mask [0,0,1,1], sampling lps [-0.4, -0.5].
    // Datum 1 targets [8,9] mask [0,1], sampling lp [-0.9].
    const d0 = trajectoryToData(oneTurn(1), 1)[0]!;
    const d1 = trajectoryToData(traj(step([7, 8], [9], { done: true })), 1)[0]!;
    const q = [Math.fround(-0.4), Math.fround(-0.5), Math.fround(-0.9)];
    const train = [-0.5, -0.3, -1.0];
    const kl = computeSampleTrainKL(
      [d0, d1],
      [Float32Array.from([-5, -5, train[0]!, train[1]!]), Float32Array.from([-5, train[2]!])],
    );
    const diffs = q.map((v, i) => v - Math.fround(train[i]!));
    expect(kl["optim/kl_sample_train_v1"]).toBeCloseTo((diffs[0]! + diffs[1]! + diffs[2]!) / 3, 7);
    expect(kl["optim/kl_sample_train_v1"]).toBeCloseTo((0.1 - 0.2 + 0.1) / 3, 6);
    expect(kl["optim/kl_sample_train_v2"]).toBeCloseTo((0.5 * (0.01 + 0.04 + 0.01)) / 3, 6);
    expect(kl["optim/entropy"]).toBeCloseTo((0.4 + 0.5 + 0.9) / 3, 6);
  });

  it("rejects misaligned inputs and a batch without action tokens", () => {
    const d0 = trajectoryToData(oneTurn(1), 1)[0]!;
    expect(() => computeSampleTrainKL([d0], [])).toThrow(/0 arrays for 1 datums/);
    expect(() => computeSampleTrainKL([d0], [new Float32Array(3)])).toThrow(/3 values/);
    const masked = trajectoryToData(
      traj(step([1], [2], { done: true, metrics: { parse_error_masked: 1 } })),
      1,
    )[0]!;
    expect(() => computeSampleTrainKL([masked], [new Float32Array(1)])).toThrow(/no action tokens/);
  });
});

describe("rolloutSummaryRecords", () => {
  const t = traj(
    step([1, 2, 3], [4, 5], { reward: 0.25, metrics: { format: 1 }, logs: { q: "x" } }),
    step([1, 2, 3, 4, 5, 6], [7], { reward: 0.5, done: true }),
  );
  const groups = [group([t, oneTurn(0)], [1, 0], [{ grp: 1 }, {}])];

  it("one JSON-ready record per trajectory in the cookbook schema", () => {
    const recs = rolloutSummaryRecords(groups, {
      split: "train",
      iteration: 7,
      samplingClientStep: 6,
      tags: [["gsm8k"]],
    });
    expect(recs).toHaveLength(2);
    expect(JSON.parse(JSON.stringify(recs[0]))).toEqual({
      schema_version: 1,
      split: "train",
      iteration: 7,
      group_idx: 0,
      traj_idx: 0,
      tags: ["gsm8k"],
      sampling_client_step: 6,
      total_reward: 1.75,
      final_reward: 1,
      trajectory_metrics: { grp: 1 },
      final_ob_len: 0,
      steps: [
        {
          step_idx: 0,
          ob_len: 3,
          ac_len: 2,
          reward: 0.25,
          episode_done: false,
          metrics: { format: 1 },
          logs: { q: "x" },
        },
        {
          step_idx: 1,
          ob_len: 6,
          ac_len: 1,
          reward: 0.5,
          episode_done: true,
          metrics: {},
          logs: {},
        },
      ],
    });
    expect(recs[1]).toMatchObject({ traj_idx: 1, total_reward: 0, tags: ["gsm8k"] });
  });

  it("adds decoded text only when a decode function is given", () => {
    const plain = rolloutSummaryRecords(groups, { split: "test", iteration: 0 });
    expect(plain[0]!.steps[0]).not.toHaveProperty("ob_text");
    expect(plain[0]!.sampling_client_step).toBeNull();
    expect(plain[0]!.tags).toEqual([]);
    const decoded = rolloutSummaryRecords(groups, {
      split: "test",
      iteration: 0,
      decode: (toks) => toks.map((x) => String.fromCharCode(96 + x)).join(""),
    });
    expect(decoded[0]!.steps[0]).toMatchObject({ ob_text: "abc", ac_text: "de" });
    expect(decoded[0]!.steps[1]).toMatchObject({ ob_text: "abcdef", ac_text: "g" });
  });
});
