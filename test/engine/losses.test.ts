import { describe, expect, it } from "vitest";
import type { LossFnType } from "../../src/client/types/params.js";
import { type LossInputs, lossBlock } from "../../src/local/engine/train/losses.js";

function inputs(lossFn: LossFnType, n: number, q: number[], adv: number[], beta = 0.1): LossInputs {
  return {
    lossFn,
    k: 1,
    weights: new Float32Array(n).fill(1),
    samplerLogprobs: Float32Array.from(q),
    advantages: Float32Array.from(adv),
    clipLow: new Float32Array(n).fill(0.8),
    clipHigh: new Float32Array(n).fill(1.2),
    beta,
  };
}

describe("loss terms (per token, summed)", () => {
  const lp = Float32Array.from([-1, -2, -0.5, -3]);
  const q = [-1.05, -1.5, -0.9, -3.2];
  const adv = [1, -1, 2, -0.5];
  const r = Array.from(lp, (l, i) => Math.exp(l - q[i]!));
  const clip = (x: number) => Math.min(Math.max(x, 0.8), 1.2);

  it("cross_entropy = -sum(w lp), d/dlp = -w", () => {
    const inp: LossInputs = {
      ...inputs("cross_entropy", 4, q, adv),
      weights: Float32Array.from([1, 0, 0.5, 2]),
    };
    const g = new Float32Array(4);
    expect(lossBlock(inp, lp, 0, 4, g)).toBeCloseTo(-(-1 + 0 + -0.25 + -6), 6);
    expect(Array.from(g)).toEqual([-1, -0, -0.5, -2]);
  });

  it("importance_sampling = -sum(r A), d/dlp = -r A", () => {
    const g = new Float32Array(4);
    const want = -r.reduce((s, x, i) => s + x * adv[i]!, 0);
    expect(lossBlock(inputs("importance_sampling", 4, q, adv), lp, 0, 4, g)).toBeCloseTo(want, 5);
    for (let i = 0; i < 4; i++) expect(g[i]).toBeCloseTo(-r[i]! * adv[i]!, 5);
  });

  it("ppo = -sum(min(r A, clip(r) A)); clipped tokens get no gradient", () => {
    const g = new Float32Array(4);
    const want = -r.reduce((s, x, i) => s + Math.min(x * adv[i]!, clip(x) * adv[i]!), 0);
    expect(lossBlock(inputs("ppo", 4, q, adv), lp, 0, 4, g)).toBeCloseTo(want, 5);
    // r = [1.05, 0.61, 1.49, 1.22]; A = [1, -1, 2, -0.5]
    expect(g[0]).toBeCloseTo(-r[0]!, 5); // inside the bounds
    expect(g[1]).toBe(0); // r < lo with A < 0: clipped branch is the min
    expect(g[2]).toBe(0); // r > hi with A > 0: clipped
    expect(g[3]).toBeCloseTo(-r[3]! * -0.5, 5); // r > hi with A < 0: unclipped is the min
  });

  it("cispo = -sum(sg(clip(r)) lp A): gradient -clip(r) A even inside the bounds", () => {
    const g = new Float32Array(4);
    const want = -r.reduce((s, x, i) => s + clip(x) * lp[i]! * adv[i]!, 0);
    expect(lossBlock(inputs("cispo", 4, q, adv), lp, 0, 4, g)).toBeCloseTo(want, 5);
    for (let i = 0; i < 4; i++) expect(g[i]).toBeCloseTo(-clip(r[i]!) * adv[i]!, 5);
  });

  it("dro = -sum(lp A - beta/2 (lp - q)^2), d/dlp = -(A - beta (lp - q))", () => {
    const g = new Float32Array(4);
    const beta = 0.1;
    const want = -Array.from(lp).reduce(
      (s, l, i) => s + l * adv[i]! - 0.5 * beta * (l - q[i]!) ** 2,
      0,
    );
    expect(lossBlock(inputs("dro", 4, q, adv, beta), lp, 0, 4, g)).toBeCloseTo(want, 5);
    for (let i = 0; i < 4; i++) expect(g[i]).toBeCloseTo(-(adv[i]! - beta * (lp[i]! - q[i]!)), 5);
  });
});
