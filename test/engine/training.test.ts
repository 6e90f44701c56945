import { describe, expect, it } from "vitest";
import { TinkerValidationError } from "../../src/client/errors.js";
import { type Datum, makeDatum } from "../../src/client/types/datum.js";
import { ADAM_DEFAULTS } from "../../src/client/types/params.js";
import { createJsKernels } from "../../src/local/engine/kernels/js.js";
import type { ModelConfig } from "../../src/local/engine/model/config.js";
import { LoraAdapter } from "../../src/local/engine/model/lora.js";
import { sizeClass, Transformer } from "../../src/local/engine/model/transformer.js";
import { initRandomWeights, loadBaseWeights } from "../../src/local/engine/model/weights.js";
import { adamWStep } from "../../src/local/engine/train/adamw.js";
import type { EngineDatum } from "../../src/local/engine/train/datum.js";
import { forwardBackward } from "../../src/local/engine/train/forward-backward.js";
import { ALL_LORA, ceData, engineData, makeAdapter, makeModel, TINY_QWEN3 } from "./fixtures.js";

const SMALL: ModelConfig = {
  ...TINY_QWEN3,
  vocabSize: 24,
  hiddenSize: 32,
  intermediateSize: 48,
  numHeads: 4,
  numKvHeads: 2,
  headDim: 8,
};

/** A fixed corpus: counting sequences (next = current + step mod V) with two different steps. */
function corpus(): EngineDatum[] {
  const seqs: number[][] = [];
  for (let s = 0; s < 4; s++) {
    const step = s % 2 === 0 ? 1 : 3;
    seqs.push(Array.from({ length: 13 }, (_, i) => (s * 5 + i * step) % SMALL.vocabSize));
  }
  return engineData(
    seqs.map((q) =>
      makeDatum(q.slice(0, -1), { target_tokens: q.slice(1), weights: q.slice(1).map(() => 1) }),
    ),
  );
}

describe("training", () => {
  it("cross_entropy + AdamW drives the loss down by more than 50% on a fixed corpus", () => {
    const K = createJsKernels();
    const model = new Transformer(K, SMALL, loadBaseWeights(K, SMALL, initRandomWeights(SMALL, 1)));
    const adapter = LoraAdapter.create(K, SMALL, {
      rank: 8,
      seed: 0,
      trainAttn: true,
      trainMlp: true,
      trainUnembed: true,
    });
    const data = corpus();
    const adam = { ...ADAM_DEFAULTS, learningRate: 1e-2 };
    const losses: number[] = [];
    for (let step = 0; step < 40; step++) {
      const out = forwardBackward(model, adapter, data, "cross_entropy", undefined, false, 1024);
      losses.push(out.metrics["loss:sum"]!);
      const m = adamWStep(K, adapter, adam);
      expect(m["grad_norm:mean"]).toBeGreaterThan(0);
    }
    const first = losses[0]!;
    // Initial loss is ~ ln(V) per token on the near-uniform random model.
    expect(first / 48).toBeCloseTo(Math.log(SMALL.vocabSize), 0);
    expect(losses.at(-1)!).toBeLessThan(0.5 * first);
    expect(adapter.step).toBe(40);
  });

  it("gradients accumulate across calls until the optimizer step, which zeroes them", () => {
    const model = makeModel(TINY_QWEN3);
    const adapter = makeAdapter(model);
    const data = corpus().map((d) => ({
      ...d,
      tokens: d.tokens.map((t) => t % TINY_QWEN3.vocabSize),
    }));
    forwardBackward(model, adapter, data, "cross_entropy", undefined, false, 1024);
    const once = adapter.grads.slice();
    forwardBackward(model, adapter, data, "cross_entropy", undefined, false, 1024);
    for (let i = 0; i < once.length; i += 17) expect(adapter.grads[i]).toBeCloseTo(2 * once[i]!, 4);
    // Forward-only does not touch the gradients.
    const before = adapter.grads.slice();
    forwardBackward(model, adapter, data, "cross_entropy", undefined, true, 1024);
    expect(adapter.grads).toEqual(before);
    adamWStep(model.kernels, adapter, ADAM_DEFAULTS);
    expect(adapter.grads.every((g) => g === 0)).toBe(true);
  });

  it("global grad-norm clipping scales the update; weight decay is decoupled", () => {
    const model = makeModel(TINY_QWEN3);
    const a1 = makeAdapter(model);
    const a2 = makeAdapter(model);
    const data = corpus().map((d) => ({
      ...d,
      tokens: d.tokens.map((t) => t % TINY_QWEN3.vocabSize),
    }));
    forwardBackward(model, a1, data, "cross_entropy", undefined, false, 1024);
    forwardBackward(model, a2, data, "cross_entropy", undefined, false, 1024);
    const g = a1.grads.slice();
    const norm = Math.sqrt(g.reduce((s, x) => s + x * x, 0));
    const p0 = a1.params.slice();
    const clip = norm / 4;
    const lr = 1e-3;
    const m1 = adamWStep(model.kernels, a1, {
      ...ADAM_DEFAULTS,
      learningRate: lr,
      gradClipNorm: clip,
      eps: 1e-3,
    });
    expect(m1["grad_norm:mean"]).toBeCloseTo(norm, 3);
    // First Adam step: update = lr * g' / (|g'| + eps) with g' = g * clip / norm.
    for (let i = 0; i < p0.length; i += 13) {
      const gs = (g[i]! * clip) / (norm + 1e-6);
      expect(a1.params[i]).toBeCloseTo(p0[i]! - (lr * gs) / (Math.abs(gs) + 1e-3), 6);
    }
    adamWStep(model.kernels, a2, {
      ...ADAM_DEFAULTS,
      learningRate: lr,
      weightDecay: 0.5,
      eps: 1e-3,
    });
    for (let i = 0; i < p0.length; i += 13) {
      const gi = g[i]!;
      expect(a2.params[i]).toBeCloseTo(
        p0[i]! - (lr * gi) / (Math.abs(gi) + 1e-3) - lr * 0.5 * p0[i]!,
        6,
      );
    }
  });

  describe("bad input is rejected before any state changes", () => {
    const model = makeModel(TINY_QWEN3);
    const V = TINY_QWEN3.vocabSize;
    const ok = () => makeDatum([1, 2, 3], { target_tokens: [2, 3, 4], weights: [1, 1, 1] });
    const cases: Array<[string, () => Datum[], string, string?]> = [
      [
        "token id >= vocab in model_input",
        () => [ok(), makeDatum([1, V, 3], { target_tokens: [2, 3, 4], weights: [1, 1, 1] })],
        "data[1].model_input",
      ],
      [
        "negative target",
        () => [makeDatum([1, 2, 3], { target_tokens: [2, -1, 4], weights: [1, 1, 1] })],
        "data[0].loss_fn_inputs.target_tokens",
      ],
      [
        "mismatched weights length",
        () => [makeDatum([1, 2, 3], { target_tokens: [2, 3, 4], weights: [1, 1] })],
        "data[0].loss_fn_inputs.weights",
      ],
      [
        "mismatched target length",
        () => [makeDatum([1, 2, 3], { target_tokens: [2, 3], weights: [1, 1] })],
        "data[0].loss_fn_inputs.target_tokens",
      ],
      [
        "NaN weight",
        () => [makeDatum([1, 2, 3], { target_tokens: [2, 3, 4], weights: [1, Number.NaN, 1] })],
        "data[0].loss_fn_inputs.weights",
      ],
      [
        "missing weights",
        () => [makeDatum([1, 2, 3], { target_tokens: [2, 3, 4] })],
        "data[0].loss_fn_inputs.weights",
      ],
      [
        "context longer than the model",
        () => [
          makeDatum(new Array(65).fill(1), {
            target_tokens: new Array(65).fill(1),
            weights: new Array(65).fill(1),
          }),
        ],
        "data[0].model_input",
      ],
      [
        "NaN advantage",
        () => [
          makeDatum([1, 2], {
            target_tokens: [2, 3],
            logprobs: [-1, -1],
            advantages: [1, Number.NaN],
          }),
        ],
        "data[0].loss_fn_inputs.advantages",
        "importance_sampling",
      ],
      [
        "missing advantages",
        () => [makeDatum([1, 2], { target_tokens: [2, 3], logprobs: [-1, -1] })],
        "data[0].loss_fn_inputs.advantages",
        "ppo",
      ],
      ["unknown loss", () => [ok()], "loss_fn", "hinge"],
      [
        "unknown loss input key",
        () => [makeDatum([1, 2], { target_tokens: [2, 3], weights: [1, 1], mask: [1, 1] })],
        "data[0].loss_fn_inputs.mask",
      ],
      ["empty batch", () => [], "data"],
    ];
    for (const [name, data, field, loss] of cases) {
      it(name, () => {
        const adapter = makeAdapter(model);
        const params = adapter.params.slice();
        let err: unknown;
        try {
          forwardBackward(
            model,
            adapter,
            engineData(data()),
            loss ?? "cross_entropy",
            undefined,
            false,
            64,
          );
        } catch (e) {
          err = e;
        }
        expect(err).toBeInstanceOf(TinkerValidationError);
        expect((err as TinkerValidationError).field).toBe(field);
        expect(adapter.grads.every((g) => g === 0)).toBe(true);
        expect(adapter.params).toEqual(params);
      });
    }
  });

  it("ALL_LORA adapters start equal to the base model (B = 0)", () => {
    const model = makeModel(TINY_QWEN3);
    const fresh = LoraAdapter.create(model.kernels, TINY_QWEN3, ALL_LORA);
    const data = engineData([
      makeDatum([1, 2, 3, 4], { target_tokens: [2, 3, 4, 5], weights: [1, 1, 1, 1] }),
    ]);
    const base = forwardBackward(model, null, data, "cross_entropy", undefined, true, 64);
    const withAd = forwardBackward(model, fresh, data, "cross_entropy", undefined, true, 64);
    expect(withAd.metrics["loss:sum"]).toBe(base.metrics["loss:sum"]);
  });
});

describe("buffer pool", () => {
  it("size classes waste at most 25%", () => {
    for (const n of [1, 63, 64, 65, 100, 1000, 4097, 123457]) {
      const c = sizeClass(n);
      expect(c).toBeGreaterThanOrEqual(n);
      expect(c).toBeLessThanOrEqual(Math.max(64, 1.25 * n));
    }
  });

  it("reused (dirty) buffers give bit-identical results to a fresh model", () => {
    const warm = makeModel(TINY_QWEN3);
    const fresh = makeModel(TINY_QWEN3);
    const aw = makeAdapter(warm);
    const af = makeAdapter(fresh);
    // Fill the warm model's pool with activations of other shapes, forward and backward.
    forwardBackward(
      warm,
      aw,
      engineData(ceData(TINY_QWEN3.vocabSize, [9, 17, 4], 1)),
      "cross_entropy",
      undefined,
      false,
      64,
    );
    forwardBackward(
      warm,
      aw,
      engineData(ceData(TINY_QWEN3.vocabSize, [30], 2)),
      "cross_entropy",
      undefined,
      true,
      64,
    );
    aw.zeroGrad();
    const data = engineData(ceData(TINY_QWEN3.vocabSize, [11, 7], 3));
    const ow = forwardBackward(warm, aw, data, "cross_entropy", undefined, false, 64);
    const of = forwardBackward(fresh, af, data, "cross_entropy", undefined, false, 64);
    expect(ow.metrics["loss:sum"]).toBe(of.metrics["loss:sum"]);
    expect(aw.grads).toEqual(af.grads);
  });
});
