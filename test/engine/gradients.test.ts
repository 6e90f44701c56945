import { describe, expect, it } from "vitest";
import { makeDatum } from "../../src/client/types/datum.js";
import type { LossFnType } from "../../src/client/types/params.js";
import type { ModelConfig } from "../../src/local/engine/model/config.js";
import type { LoraAdapter, LoraPair } from "../../src/local/engine/model/lora.js";
import { SeededRng } from "../../src/local/engine/model/prng.js";
import type { Transformer } from "../../src/local/engine/model/transformer.js";
import type { EngineDatum } from "../../src/local/engine/train/datum.js";
import { forwardBackward } from "../../src/local/engine/train/forward-backward.js";
import {
  ceData,
  engineData,
  makeAdapter,
  makeModel,
  randomTokens,
  TINY_LLAMA,
  TINY_QWEN3,
} from "./fixtures.js";

/*
 * Central finite differences against the analytic LoRA gradients, on a float32 model.
 *
 * Tolerance: the JS kernels accumulate in float64 but store activations in float32 (relative
 * rounding ~6e-8), so a loss sum of O(10) carries ~1e-6 absolute noise; the FD quotient's rounding
 * error is then ~1e-6 / (2h) ~ 3e-4 for h = 2e-3. The tiny models are strongly non-linear (weights
 * scaled up so every path matters), so we remove the O(h^2) truncation term with Richardson
 * extrapolation, (4 D(h) - D(2h)) / 3, along unit-norm directions. Measured agreement is then
 * ~1e-4 relative; we assert |fd - analytic| <= 2e-3 + 5e-3 |analytic|. A wrong backward (missing
 * term, wrong sign, scale or transpose) misses by O(|analytic|).
 */
const H = 2e-3;

function lossOf(
  model: Transformer,
  adapter: LoraAdapter,
  data: EngineDatum[],
  fn: LossFnType,
  cfg?: Record<string, number>,
): number {
  return forwardBackward(model, adapter, data, fn, cfg, true, 1024).metrics["loss:sum"]!;
}

function gradOf(
  model: Transformer,
  adapter: LoraAdapter,
  data: EngineDatum[],
  fn: LossFnType,
  cfg?: Record<string, number>,
): Float32Array {
  adapter.zeroGrad();
  forwardBackward(model, adapter, data, fn, cfg, false, 1024);
  const g = adapter.grads.slice();
  adapter.zeroGrad();
  return g;
}

/** Richardson-extrapolated central difference of f along `dir` (unit norm) in tensor `t`. */
function directional(t: Float32Array, dir: Float32Array, f: () => number): number {
  const base = t.slice();
  const at = (e: number): number => {
    for (let i = 0; i < t.length; i++) t[i] = base[i]! + e * dir[i]!;
    const v = f();
    t.set(base);
    return v;
  };
  const d1 = (at(H) - at(-H)) / (2 * H);
  const d2 = (at(2 * H) - at(-2 * H)) / (4 * H);
  return (4 * d1 - d2) / 3;
}

/** Checks the directional derivative of A and B of `pair` along a random direction and one axis. */
function checkPair(
  adapter: LoraAdapter,
  pair: LoraPair,
  grads: Float32Array,
  f: () => number,
  rng: SeededRng,
): void {
  for (const t of [pair.a, pair.b]) {
    const off = t.byteOffset / 4 - adapter.params.byteOffset / 4;
    const random = Float32Array.from({ length: t.length }, () => rng.normal());
    const norm = Math.hypot(...random);
    for (let i = 0; i < t.length; i++) random[i] = random[i]! / norm;
    const axis = new Float32Array(t.length);
    axis[Math.floor(rng.nextFloat() * t.length)] = 1;
    for (const [label, dir] of [
      ["random direction", random],
      ["single entry", axis],
    ] as const) {
      let analytic = 0;
      for (let i = 0; i < t.length; i++) analytic += grads[off + i]! * dir[i]!;
      const fd = directional(t, dir, f);
      expect(
        Math.abs(fd - analytic),
        `${pair.module} ${t === pair.a ? "A" : "B"} ${label}: fd ${fd} vs ${analytic}`,
      ).toBeLessThanOrEqual(2e-3 + 5e-3 * Math.abs(analytic));
    }
  }
}

/** Policy-loss data whose ratios r = exp(lp - q) sit away from the PPO/CISPO clip bounds. */
function policyData(
  model: Transformer,
  adapter: LoraAdapter,
  config: ModelConfig,
  fn: LossFnType,
): EngineDatum[] {
  const rng = new SeededRng(11);
  const lens = [5, 3];
  const seqs = lens.map((n) => randomTokens(rng, n + 1, config.vocabSize));
  const probe = engineData(
    seqs.map((s) =>
      makeDatum(s.slice(0, -1), { target_tokens: s.slice(1), weights: s.slice(1).map(() => 1) }),
    ),
  );
  const out = forwardBackward(model, adapter, probe, "cross_entropy", undefined, true, 1024);
  // CISPO's stop-gradient on the clipped ratio makes its gradient differ from the derivative of its
  // value wherever the ratio is inside the bounds, so for CISPO every ratio is outside them (the
  // in-range rule is checked on the loss alone in losses.test.ts).
  const ratios =
    fn === "cispo" ? [0.5, 0.6, 1.35, 1.6, 0.7, 1.5, 2] : [0.5, 0.7, 0.9, 1.0, 1.1, 1.35, 1.6];
  return engineData(
    seqs.map((s, i) => {
      const lp = out.lossFnOutputs[i]!.logprobs!.data as Float32Array;
      const q = Array.from(lp, (l, j) => l - Math.log(ratios[(i * 3 + j) % ratios.length]!));
      const adv = Array.from(lp, (_, j) => (j % 2 === 0 ? 1 : -0.7) * (1 + j / 4));
      return makeDatum(s.slice(0, -1), { target_tokens: s.slice(1), logprobs: q, advantages: adv });
    }),
  );
}

const CASES: Array<{ fn: LossFnType; cfg?: Record<string, number> }> = [
  { fn: "cross_entropy" },
  { fn: "importance_sampling" },
  { fn: "ppo", cfg: { clip_low_threshold: 0.8, clip_high_threshold: 1.2 } },
  { fn: "cispo", cfg: { clip_low_threshold: 0.8, clip_high_threshold: 1.2 } },
  { fn: "dro", cfg: { beta: 0.3 } },
];

describe.each([
  ["qwen3 (qk-norm, GQA, untied)", TINY_QWEN3],
  ["llama (tied, scaled rope)", TINY_LLAMA],
])("LoRA gradients vs central finite differences: %s", (_name, config) => {
  for (const { fn, cfg } of CASES) {
    it(`${fn}: every adapted module type (q,k,v,o,gate,up,down,lm_head)`, () => {
      const model = makeModel(config);
      const adapter = makeAdapter(model);
      const data =
        fn === "cross_entropy"
          ? engineData(ceData(config.vocabSize, [6, 4]))
          : policyData(model, adapter, config, fn);
      const grads = gradOf(model, adapter, data, fn, cfg);
      const f = () => lossOf(model, adapter, data, fn, cfg);
      const rng = new SeededRng(21);
      // One layer's worth of module types plus lm_head keeps the test fast; layer 0 sees every path.
      const pairs = adapter.pairs.filter(
        (p) => p.module.startsWith("model.layers.0.") || p.module === "lm_head",
      );
      expect(pairs.map((p) => p.module.split(".").at(-1))).toEqual([
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
        "lm_head",
      ]);
      for (const p of pairs) checkPair(adapter, p, grads, f, rng);
    });
  }

  it("cross_entropy with (N, K) targets and weights (top-K distillation)", () => {
    const model = makeModel(config);
    const adapter = makeAdapter(model);
    const rng = new SeededRng(5);
    const N = 5;
    const Kt = 3;
    const input = randomTokens(rng, N, config.vocabSize);
    const targets = Array.from({ length: N }, () => randomTokens(rng, Kt, config.vocabSize));
    const weights = Array.from({ length: N }, () =>
      Array.from({ length: Kt }, () => rng.nextFloat()),
    );
    const data = engineData([
      makeDatum(input, { target_tokens: targets, weights }),
      ...ceData(config.vocabSize, [3], 9),
    ]);
    const out = forwardBackward(model, adapter, data, "cross_entropy", undefined, true, 1024);
    expect(out.lossFnOutputs[0]!.logprobs!.shape).toEqual([N, Kt]);
    expect(out.lossFnOutputs[1]!.logprobs!.shape).toEqual([3]);
    // loss = -sum(w * lp) exactly.
    let want = 0;
    for (let i = 0; i < data.length; i++) {
      const lp = out.lossFnOutputs[i]!.logprobs!.data;
      const w = data[i]!.lossFnInputs.weights!.data;
      for (let j = 0; j < lp.length; j++) want -= w[j]! * lp[j]!;
    }
    expect(out.metrics["loss:sum"]).toBeCloseTo(want, 4);
    const grads = gradOf(model, adapter, data, "cross_entropy");
    const f = () => lossOf(model, adapter, data, "cross_entropy");
    const srng = new SeededRng(8);
    for (const p of [adapter.pairs[0]!, adapter.pairs.at(-1)!])
      checkPair(adapter, p, grads, f, srng);
  });
});
