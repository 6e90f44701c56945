import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeDatum } from "../../src/client/types/datum.js";
import { createKernels } from "../../src/local/engine/kernels/index.js";
import { createJsKernels } from "../../src/local/engine/kernels/js.js";
import type { Kernels } from "../../src/local/engine/kernels/types.js";
import type { ModelConfig } from "../../src/local/engine/model/config.js";
import {
  type SampleRequest,
  sample,
  sampleBatch,
} from "../../src/local/engine/sampling/sampler.js";
import { forwardBackward } from "../../src/local/engine/train/forward-backward.js";
import { ceData, engineData, makeAdapter, makeModel, TINY_LLAMA, TINY_QWEN3 } from "./fixtures.js";

/*
 * The model on the WebAssembly kernels against the same model on the JS reference kernels.
 * Float32 accumulation order differs, so agreement is to float32 rounding of O(1) quantities.
 */
const WIDE: ModelConfig = {
  ...TINY_QWEN3,
  vocabSize: 300,
  hiddenSize: 64,
  intermediateSize: 96,
  numHeads: 4,
  numKvHeads: 2,
  headDim: 16,
};

describe.each([
  ["qwen3", TINY_QWEN3],
  ["llama", TINY_LLAMA],
  ["wider qwen3", WIDE],
])("model on wasm kernels vs js kernels (%s)", (_n, config) => {
  let wasm: Kernels;
  beforeAll(async () => {
    let fellBack: unknown;
    wasm = await createKernels({ prefer: "wasm", threads: 2, onFallback: (e) => (fellBack = e) });
    expect(fellBack).toBeUndefined();
    expect(wasm.name).toMatch(/^wasm/);
  });
  afterAll(() => wasm.dispose());

  it("same logprobs, loss and LoRA gradients", () => {
    const mj = makeModel(config, 1, 0.1, createJsKernels());
    const mw = makeModel(config, 1, 0.1, wasm);
    const aj = makeAdapter(mj);
    const aw = makeAdapter(mw);
    const data = engineData(ceData(config.vocabSize, [17, 9, 30]));
    const oj = forwardBackward(mj, aj, data, "cross_entropy", undefined, false, 1024);
    const ow = forwardBackward(mw, aw, data, "cross_entropy", undefined, false, 1024);
    expect(ow.metrics["loss:sum"]).toBeCloseTo(oj.metrics["loss:sum"]!, 3);
    for (let i = 0; i < data.length; i++) {
      const a = oj.lossFnOutputs[i]!.logprobs!.data;
      const b = ow.lossFnOutputs[i]!.logprobs!.data;
      for (let j = 0; j < a.length; j++) expect(Math.abs(a[j]! - b[j]!)).toBeLessThan(1e-4);
    }
    let num = 0;
    let den = 0;
    for (let i = 0; i < aj.paramCount; i++) {
      num += (aj.grads[i]! - aw.grads[i]!) ** 2;
      den += aj.grads[i]! ** 2;
    }
    expect(Math.sqrt(num / den)).toBeLessThan(1e-4);
  });

  it("sampled logprobs equal a forward pass on the wasm kernels (to 1e-4)", () => {
    const m = makeModel(config, 4, 0.15, wasm);
    const ad = makeAdapter(m);
    const prompt = Int32Array.from([3, 14, 15, 9, 2, 6]);
    const res = sample(m, ad, {
      prompt,
      numSamples: 3,
      params: { maxTokens: 12, seed: 7, temperature: 1 },
      promptLogprobs: false,
      topkPromptLogprobs: 0,
      maxContextLength: 64,
    });
    for (const s of res.sequences) {
      const seq = [...prompt, ...s.tokens];
      const data = engineData([
        makeDatum(seq.slice(0, -1), {
          target_tokens: seq.slice(1),
          weights: seq.slice(1).map(() => 1),
        }),
      ]);
      const lp = forwardBackward(m, ad, data, "cross_entropy", undefined, true, 1024)
        .lossFnOutputs[0]!.logprobs!.data;
      for (let i = 0; i < s.tokens.length; i++)
        expect(Math.abs(s.logprobs![i]! - lp[prompt.length - 1 + i]!)).toBeLessThan(1e-4);
    }
  });

  // Decoding runs every row independently of the others, so what a sample generates must not
  // depend on how many samples or which other requests are decoded with it: bit for bit.
  it("a sample's tokens and logprobs do not depend on the batch it is decoded in", () => {
    const m = makeModel(config, 4, 0.15, wasm);
    const ad = makeAdapter(m);
    const V = config.vocabSize;
    const mk = (prompt: number[], numSamples: number, seed: number, extra = {}): SampleRequest => ({
      prompt: Int32Array.from(prompt, (t) => t % V),
      numSamples,
      params: { maxTokens: 14, seed, temperature: 1.1, topK: 40, ...extra },
      promptLogprobs: false,
      topkPromptLogprobs: 0,
      maxContextLength: 64,
    });
    const a = mk([3, 14, 15, 9, 2, 6], 1, 7);
    const b = mk([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], 3, 8, { topP: 0.9 });
    const c = mk([42], 2, 9, { maxTokens: 5, stop: [17] });
    const bad = mk([5, 5], 1, 1, { maxTokens: 1000 }); // prompt + max_tokens past the context
    const alone = [a, b, c].map((r) => sample(m, ad, r));
    // Request a's sample 0 within five samples of the same prompt and seed.
    const five = sample(m, ad, { ...a, numSamples: 5 });
    expect(five.sequences[0]).toEqual(alone[0]!.sequences[0]);
    // All requests decoded together, with an invalid one among them; and with a KV budget that
    // splits them into several batches.
    const split = sampleBatch(m, ad, [b, bad, a, c], 1);
    expect(split[0]).toEqual(alone[1]);
    expect(split[2]).toEqual(alone[0]);
    expect(split[3]).toEqual(alone[2]);
    const together = sampleBatch(m, ad, [b, bad, a, c]);
    expect(together[1]).toBeInstanceOf(Error);
    expect((together[1] as Error).message).toMatch(/context length/);
    expect(together[2]).toEqual(alone[0]);
    expect(together[0]).toEqual(alone[1]);
    expect(together[3]).toEqual(alone[2]);
    // Enough decode steps ran with several rows for the comparison to mean something.
    const lengths = alone.flatMap((r) => r.sequences.map((q) => q.tokens.length));
    expect(lengths.filter((n) => n >= 5).length).toBeGreaterThanOrEqual(3);
  });

  it("requests with the same prompt in one batch share its prefill and report the cache hit", () => {
    const m = makeModel(config, 4, 0.15, wasm);
    const ad = makeAdapter(m);
    const prompt = Int32Array.from([3, 14, 15, 9, 2, 6, 5, 3]);
    const mk = (seed: number, maxTokens: number, extra = {}): SampleRequest => ({
      prompt,
      numSamples: 2,
      params: { maxTokens, seed, temperature: 1 },
      promptLogprobs: false,
      topkPromptLogprobs: 0,
      maxContextLength: 64,
      ...extra,
    });
    // An RL group: same prompt, different seeds; the second needs more room than the first.
    const group = [mk(1, 6), mk(2, 20), mk(3, 9), mk(4, 9, { promptLogprobs: true })];
    const alone = group.map((r) => sample(m, ad, r));
    const together = sampleBatch(m, ad, group);
    for (let i = 0; i < group.length; i++) {
      const t = together[i] as Exclude<(typeof together)[number], Error>;
      expect(t.sequences).toEqual(alone[i]!.sequences);
      expect(t.promptLogprobs).toEqual(alone[i]!.promptLogprobs);
    }
    // Requests 1 and 2 reuse request 0's prefill; request 3 asked for prompt logprobs: its own.
    expect(
      together.map((t) => (t as { promptCacheHitTokens: number }).promptCacheHitTokens),
    ).toEqual([0, prompt.length, prompt.length, 0]);
    expect(alone.every((r) => r.promptCacheHitTokens === 0)).toBe(true);
  });
});
