import { describe, expect, it } from "vitest";
import type { CustomLossFn } from "../../src/client/custom-loss.js";
import { TinkerValidationError } from "../../src/client/errors.js";
import { type Datum, makeDatum } from "../../src/client/types/datum.js";
import type { ModelInput } from "../../src/client/types/model-input.js";
import { checkLossGradient, computeReferenceLogprobs, dpoLoss } from "../../src/losses/index.js";

const datum = (weights: number[]): Datum =>
  makeDatum(
    weights.map((_w, j) => 10 + j),
    { target_tokens: weights.map((_w, j) => 11 + j), weights },
  );

// Pair 0: chosen c = (-2) - (-2.5) = 0.5, rejected r = (-4) - (-3) = -1  -> chosen wins.
// Pair 1: chosen c = (-3) - (-2) = -1,  rejected r = (-1) - (-1.5) = 0.5 -> rejected wins.
const data = [datum([0, 1]), datum([1, 1]), datum([1, 0, 1]), datum([0.5, 0.5])];
const logprobs = [
  Float32Array.from([-1, -2]),
  Float32Array.from([-1, -3]),
  Float32Array.from([-1, -4, -2]),
  Float32Array.from([-1, -1]),
];
const refs = [
  Float32Array.from([-1.5, -2.5]),
  Float32Array.from([-1, -2]),
  Float32Array.from([-1, -4, -1]),
  Float32Array.from([-2, -1]),
];
const softplus = (x: number) => Math.log1p(Math.exp(x));

describe("dpoLoss", () => {
  it("computes the loss and metrics of hand-built pairs", async () => {
    const beta = 0.1;
    const out = await dpoLoss({ referenceLogprobs: refs, beta })(data, logprobs);
    const z0 = beta * (0.5 - -1);
    const z1 = beta * (-1 - 0.5);
    const want = (softplus(-z0) + softplus(-z1)) / 2;
    expect(out.loss).toBeCloseTo(want, 12);
    expect(out.metrics).toEqual({
      dpo_loss: out.loss,
      accuracy: 0.5,
      margin: expect.closeTo((z0 + z1) / 2, 12),
      chosen_reward: expect.closeTo((beta * 0.5 + beta * -1) / 2, 12),
      rejected_reward: expect.closeTo((beta * -1 + beta * 0.5) / 2, 12),
      num_pairs: 2,
    });
    // Analytic: dL/dlp_c[j] = -sigmoid(-z) beta w_c[j] / P, and the opposite sign for rejected.
    const s0 = 1 / (1 + Math.exp(z0));
    expect(out.grads[0]![0]).toBeCloseTo(0, 12);
    expect(out.grads[0]![1]).toBeCloseTo((-s0 * beta) / 2, 7);
    expect(out.grads[1]![0]).toBeCloseTo((s0 * beta) / 2, 7);
  });

  it("passes the finite-difference gradient check", async () => {
    for (const beta of [0.1, 2]) {
      const res = await checkLossGradient(dpoLoss({ referenceLogprobs: refs, beta }), {
        data,
        logprobs,
      });
      expect(res.ok, res.message).toBe(true);
      expect(res.maxAbsError).toBeLessThan(1e-5);
    }
  });

  it("is stable for huge margins", async () => {
    const far = [Float32Array.from([-1, 500]), Float32Array.from([-1, -500])];
    const pair = [datum([0, 1]), datum([0, 1])];
    const zeroRefs = [new Float32Array(2), new Float32Array(2)];
    const good = await dpoLoss({ referenceLogprobs: zeroRefs, beta: 1 })(pair, far);
    expect(good.loss).toBe(0);
    const bad = await dpoLoss({ referenceLogprobs: zeroRefs, beta: 1 })(pair, [far[1]!, far[0]!]);
    expect(bad.loss).toBeCloseTo(1000, 9);
    expect(bad.grads[0]![0]).toBeCloseTo(0, 12);
    expect(bad.grads[0]![1]).toBeCloseTo(-1, 12);
    expect(bad.grads.flatMap((g) => Array.from(g)).every(Number.isFinite)).toBe(true);
  });

  it("rejects an odd count, missing weights, misaligned references and a bad beta", async () => {
    const loss = dpoLoss({ referenceLogprobs: refs.slice(0, 3) });
    await expect(async () => loss(data.slice(0, 3), logprobs.slice(0, 3))).rejects.toThrow(
      /even number of datums; got 3. Drop the unpaired last datum/,
    );
    await expect(async () =>
      dpoLoss({ referenceLogprobs: refs })(data.slice(0, 2), logprobs),
    ).rejects.toThrow(/referenceLogprobs has 4 arrays for 2 datums/);
    const noWeights = makeDatum([1, 2], { target_tokens: [2, 3] });
    const e = await Promise.resolve()
      .then(() =>
        dpoLoss({ referenceLogprobs: refs.slice(0, 2) })([noWeights, noWeights], logprobs),
      )
      .catch((err: unknown) => err);
    expect(e).toBeInstanceOf(TinkerValidationError);
    expect((e as TinkerValidationError).field).toBe("data[0].lossFnInputs.weights");
    const shortRefs = [refs[0]!, refs[1]!.subarray(0, 1)];
    await expect(async () =>
      dpoLoss({ referenceLogprobs: shortRefs })(data.slice(0, 2), logprobs.slice(0, 2)),
    ).rejects.toThrow(/referenceLogprobs\[1\] has 1 values but datum 1 has 2 weights/);
    expect(() => dpoLoss({ referenceLogprobs: refs, beta: 0 })).toThrow(TinkerValidationError);
  });
});

describe("checkLossGradient", () => {
  it("fails a deliberately wrong gradient and names the entry", async () => {
    const right = dpoLoss({ referenceLogprobs: refs, beta: 0.5 });
    const wrong: CustomLossFn = async (d, lps) => {
      const out = await right(d, lps);
      out.grads[2]![2] = out.grads[2]![2]! * 2;
      return out;
    };
    const res = await checkLossGradient(wrong, { data, logprobs });
    expect(res.ok).toBe(false);
    expect(res.worst).toMatchObject({ datum: 2, index: 2 });
    expect(res.worst!.analytic).toBeCloseTo(2 * res.worst!.numeric, 4);
    expect(res.message).toMatch(/does not match.*datum 2 index 2/);
  });

  it("checks a nonlinear loss to float32 precision", async () => {
    // L = sum(exp(lp) + lp^3 / 3): smooth, with curvature.
    const fn: CustomLossFn = (_d, lps) => ({
      loss: lps.reduce((a, lp) => a + lp.reduce((s, v) => s + Math.exp(v) + v ** 3 / 3, 0), 0),
      grads: lps.map((lp) => lp.map((v) => Math.exp(v) + v * v)),
    });
    const res = await checkLossGradient(fn, { data, logprobs }, { eps: 1e-3, rtol: 1e-4 });
    expect(res.ok, res.message).toBe(true);
    expect(res.maxRelError).toBeLessThan(1e-4);
  });

  it("rejects bad tolerances and a gradient of the wrong shape", async () => {
    const fn: CustomLossFn = (_d, lps) => ({ loss: 0, grads: lps.map((lp) => lp.slice(1)) });
    await expect(checkLossGradient(fn, { data, logprobs })).rejects.toThrow(
      /grads\[0\] has 1 values but logprobs\[0\] has 2/,
    );
    await expect(checkLossGradient(fn, { data, logprobs }, { eps: 0 })).rejects.toThrow(/eps/);
    const right = dpoLoss({ referenceLogprobs: refs });
    await expect(checkLossGradient(right, { data, logprobs }, { eps: 1e-9 })).rejects.toThrow(
      /below the float32 spacing at logprobs\[0\]\[0\]/,
    );
  });
});

describe("computeReferenceLogprobs", () => {
  it("scores model input + last target and drops the first position", async () => {
    const seen: number[][] = [];
    const sampler = {
      computeLogprobs: (mi: ModelInput) => {
        const toks = mi.toInts();
        seen.push(toks);
        return Promise.resolve([null, ...toks.slice(1).map((t) => -t / 100)]);
      },
    } as never;
    const d = makeDatum([5, 6, 7], { target_tokens: [6, 7, 8], weights: [1, 1, 1] });
    const out = await computeReferenceLogprobs(sampler, [d]);
    expect(seen).toEqual([[5, 6, 7, 8]]);
    expect(Array.from(out[0]!)).toEqual([-0.06, -0.07, -0.08].map(Math.fround));
  });

  it("rejects a server answer of the wrong length (a fault the real server does not produce)", async () => {
    const sampler = { computeLogprobs: () => Promise.resolve([null, -1]) } as never;
    const d = makeDatum([5, 6, 7], { target_tokens: [6, 7, 8], weights: [1, 1, 1] });
    await expect(computeReferenceLogprobs(sampler, [d])).rejects.toThrow(/returned 2 values/);
  });
});
