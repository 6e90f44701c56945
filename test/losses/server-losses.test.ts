/**
 * The built-in losses and DPO against the real local server, through the real client: each
 * loss's `loss:sum` from forwardBackward equals the reference formula evaluated on the logprobs a
 * `forward` returned for the same datums (same weights, no optim step in between).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ServiceClient } from "../../src/client/service-client.js";
import type { TrainingClient } from "../../src/client/training-client.js";
import { type Datum, makeDatum } from "../../src/client/types/datum.js";
import { ModelInput } from "../../src/client/types/model-input.js";
import type { LossFnType } from "../../src/client/types/params.js";
import { TrajectoryGroup, type Transition } from "../../src/envs/types.js";
import {
  builtinLossOnData,
  computeReferenceLogprobs,
  dpoLoss,
  type LossConfigFor,
  resolveLoss,
} from "../../src/losses/index.js";
import {
  assembleTrainingData,
  computeAdvantages,
  computeSampleTrainKL,
} from "../../src/recipes/rl/data-processing.js";
import { startRealServer } from "../server/real-engine.js";

const MODEL = "tiny-bytes";
const bytes = (s: string): number[] => Array.from(Buffer.from(s));
const TEXTS = ["the quick brown fox jumps", "over the lazy dog, twice!"];

/** Ratios exp(lp - q) spread inside and outside every clip range used below (none on a bound). */
const RATIOS = [0.5, 0.75, 0.85, 0.95, 1.0, 1.02, 1.1, 1.15, 1.3, 2.0, 4.5];
const ADVS = [1, -1, 0.5, -2, 1.5];

function ceDatum(text: string, weight: (j: number) => number): Datum {
  const t = bytes(text);
  const targets = t.slice(1);
  return makeDatum(ModelInput.fromInts(t.slice(0, -1)), {
    target_tokens: targets,
    weights: Float32Array.from(targets, (_v, j) => weight(j)),
  });
}

/** Policy datums whose sampler logprobs put the ratio of token j at RATIOS[j % len]. */
function policyDatums(lps: Float32Array[], withWeights = false): Datum[] {
  return TEXTS.map((text, i) => {
    const t = bytes(text);
    const lp = lps[i]!;
    let k = i * 3;
    const q = Float32Array.from(lp, (v) => v - Math.log(RATIOS[k++ % RATIOS.length]!));
    const adv = Float32Array.from(lp, (_v, j) => ADVS[(i + j) % ADVS.length]!);
    return makeDatum(ModelInput.fromInts(t.slice(0, -1)), {
      target_tokens: t.slice(1),
      logprobs: q,
      advantages: adv,
      ...(withWeights
        ? { weights: Float32Array.from(lp, (_v, j) => (j % 4 === 0 ? 0 : 0.5)) }
        : {}),
    });
  });
}

function logprobsOf(out: {
  lossFnOutputs: Array<Record<string, { toDense(): ArrayLike<number> }>>;
}) {
  return out.lossFnOutputs.map((o) => Float32Array.from(o.logprobs!.toDense()));
}

describe("built-in losses on the real local server", () => {
  let real: Awaited<ReturnType<typeof startRealServer>>;
  let service: ServiceClient;
  let tc: TrainingClient;
  let lps: Float32Array[];

  beforeAll(async () => {
    real = await startRealServer("losses");
    service = real.service;
    tc = await service.createLoraTrainingClient(MODEL, { rank: 4, seed: 3 });
    // One optim step so the LoRA weights are not at their zero-init identity.
    const warm = TEXTS.map((s) => ceDatum(s, () => 1));
    await tc.forwardBackward(warm, "cross_entropy");
    await tc.optimStep({ learningRate: 0.05 });
    lps = logprobsOf(await tc.forward(warm, "cross_entropy"));
  });
  afterAll(async () => {
    await real?.close();
  });

  async function serverLoss<L extends LossFnType>(
    name: L,
    config: LossConfigFor<L> | undefined,
    data: Datum[],
  ): Promise<{ loss: number; logprobs: Float32Array[] }> {
    const { lossFn, lossFnConfig } = resolveLoss(name, config);
    const out = await tc.forwardBackward(data, lossFn, lossFnConfig);
    return { loss: out.metrics["loss:sum"]!, logprobs: logprobsOf(out) };
  }

  it("cross_entropy: loss:sum = -sum(w lp)", async () => {
    const data = TEXTS.map((s) => ceDatum(s, (j) => (j % 3 === 0 ? 0 : 0.25 * (1 + (j % 5)))));
    const fwd = logprobsOf(await tc.forward(data, "cross_entropy"));
    const got = await serverLoss("cross_entropy", undefined, data);
    const want = builtinLossOnData("cross_entropy", undefined, data, fwd);
    expect(got.loss).toBeCloseTo(want.loss, 4);
    for (let i = 0; i < fwd.length; i++) {
      expect(Array.from(got.logprobs[i]!)).toEqual(Array.from(fwd[i]!));
    }
  });

  const cases: Array<[LossFnType, Record<string, number> | undefined]> = [
    ["importance_sampling", undefined],
    ["ppo", undefined],
    ["ppo", { clipLowThreshold: 0.8, clipHighThreshold: 1.2 }],
    ["ppo", { clipLowThreshold: 0.9, clipHighThreshold: 1.05 }],
    ["cispo", undefined],
    ["cispo", { clipLowThreshold: 0, clipHighThreshold: 4 }],
    ["cispo", { clipLowThreshold: 0.9, clipHighThreshold: 1.12 }],
    ["dro", undefined],
    ["dro", { beta: 0.3 }],
  ];
  for (const [name, config] of cases) {
    it(`${name} ${config ? JSON.stringify(config) : "(server defaults)"}: loss:sum matches the formula`, async () => {
      const data = policyDatums(lps);
      const fwd = logprobsOf(await tc.forward(data, name, resolveLoss(name, config).lossFnConfig));
      const got = await serverLoss(name, config, data);
      const want = builtinLossOnData(name, config, data, fwd);
      expect(Math.abs(got.loss - want.loss)).toBeLessThan(1e-4 * (1 + Math.abs(want.loss)));
      if (name === "ppo" || name === "cispo") {
        // The batch really straddles the clip range: some ratios are clipped, some are not.
        const lo = config?.clipLowThreshold ?? 0.8;
        const hi = config?.clipHighThreshold ?? 1.2;
        const ratios = data.flatMap((d, i) =>
          Array.from(fwd[i]!, (v, j) => Math.exp(v - d.lossFnInputs.logprobs!.data[j]!)),
        );
        expect(ratios.some((r) => r < lo || r > hi)).toBe(true);
        expect(ratios.some((r) => r > lo && r < hi)).toBe(true);
      }
    });
  }

  it("policy losses honour an optional per-token weights multiplier", async () => {
    const data = policyDatums(lps, true);
    const cfg = { clipLowThreshold: 0.9, clipHighThreshold: 1.05 };
    const fwd = logprobsOf(await tc.forward(data, "ppo", resolveLoss("ppo", cfg).lossFnConfig));
    const got = await serverLoss("ppo", cfg, data);
    const want = builtinLossOnData("ppo", cfg, data, fwd);
    expect(Math.abs(got.loss - want.loss)).toBeLessThan(1e-4 * (1 + Math.abs(want.loss)));
  });

  it("DPO: reference logprobs align with the trainer's; the loss starts at log 2 and falls", async () => {
    const pair = (prompt: string, good: string, bad: string): Datum[] =>
      [good, bad].map((answer) => {
        const p = bytes(prompt);
        const t = [...p, ...bytes(answer)];
        return makeDatum(ModelInput.fromInts(t.slice(0, -1)), {
          target_tokens: t.slice(1),
          weights: t.slice(1).map((_v, j) => (j + 1 >= p.length ? 1 : 0)),
        });
      });
    const data = [
      ...pair("Q: 2+2? A: ", "four", "five"),
      ...pair("Colour of sky: ", "blue", "green"),
    ];
    // A fresh model: the other tests' forwardBackward calls left gradients on `tc`.
    const dpo = await service.createLoraTrainingClient(MODEL, { rank: 4, seed: 5 });
    const sampler = await dpo.saveWeightsAndGetSamplingClient();
    const refs = await computeReferenceLogprobs(sampler, data);
    const current = logprobsOf(await dpo.forward(data, "cross_entropy"));
    for (let i = 0; i < data.length; i++) {
      expect(refs[i]!.length).toBe(current[i]!.length);
      for (let j = 0; j < refs[i]!.length; j++) {
        expect(Math.abs(refs[i]![j]! - current[i]![j]!)).toBeLessThan(1e-3);
      }
    }
    const loss = dpoLoss({ referenceLogprobs: refs, beta: 0.5 });
    const first = await dpo.forwardBackwardCustom(data, loss);
    expect(first.metrics.dpo_loss).toBeCloseTo(Math.log(2), 3);
    expect(first.metrics.num_pairs).toBe(2);
    await dpo.optimStep({ learningRate: 0.002 });
    const losses = [first.metrics.dpo_loss!];
    let accuracy = 0;
    for (let step = 0; step < 3; step++) {
      const out = await dpo.forwardBackwardCustom(data, loss);
      await dpo.optimStep({ learningRate: 0.002 });
      losses.push(out.metrics.dpo_loss!);
      accuracy = out.metrics.accuracy!;
    }
    for (let k = 1; k < losses.length; k++) expect(losses[k]!).toBeLessThan(losses[k - 1]!);
    expect(accuracy).toBe(1);
  });

  it("RL datums built from real samples train with importance_sampling; on-policy KL is ~0", async () => {
    const rl = await service.createLoraTrainingClient(MODEL, { rank: 4, seed: 7 });
    const sampler = await rl.saveWeightsAndGetSamplingClient();
    const sampleTurn = async (ob: number[], seed: number): Promise<Transition> => {
      const res = await sampler.sample(ModelInput.fromInts(ob), 1, { maxTokens: 6, seed });
      const seq = res.sequences[0]!;
      return {
        observation: ModelInput.fromInts(ob),
        action: { tokens: seq.tokens, logprobs: seq.logprobs!, stopReason: seq.stopReason },
        reward: 0,
        episodeDone: false,
        metrics: {},
        logs: {},
      };
    };
    // Two-turn episodes with the extension property, rewarded by the episode's index.
    const trajectories = await Promise.all(
      [0, 1, 2, 3].map(async (k) => {
        const first = await sampleTurn(bytes("Say hi: "), 10 + k);
        const next = [...bytes("Say hi: "), ...first.action.tokens, ...bytes(" ok? ")];
        const second = { ...(await sampleTurn(next, 20 + k)), reward: k % 2, episodeDone: true };
        return { transitions: [first, second], finalObservation: ModelInput.empty() };
      }),
    );
    const groups = [new TrajectoryGroup(trajectories, [0, 0, 0, 0], [{}, {}, {}, {}])];
    const { data } = assembleTrainingData(groups, computeAdvantages(groups));
    expect(data).toHaveLength(4);
    const batch = data.map((d) => d.datum);
    const out = await rl.forwardBackward(batch, "importance_sampling");
    const trainLps = logprobsOf(out);
    const want = builtinLossOnData("importance_sampling", undefined, batch, trainLps);
    expect(Math.abs(out.metrics["loss:sum"]! - want.loss)).toBeLessThan(1e-4);
    const kl = computeSampleTrainKL(data, trainLps);
    // The sampler and the trainer hold the same weights: a misaligned shift would show here.
    expect(Math.abs(kl["optim/kl_sample_train_v1"])).toBeLessThan(1e-3);
    expect(kl["optim/kl_sample_train_v2"]).toBeLessThan(1e-5);
    expect(kl["optim/entropy"]).toBeGreaterThan(0);
  });
});
