import { describe, expect, it } from "vitest";
import { TinkerValidationError } from "../../src/client/errors.js";
import { makeDatum } from "../../src/client/types/datum.js";
import type { SamplingParams } from "../../src/client/types/params.js";
import type { LoraAdapter } from "../../src/local/engine/model/lora.js";
import { SeededRng } from "../../src/local/engine/model/prng.js";
import { Scratch, type Transformer } from "../../src/local/engine/model/transformer.js";
import {
  argmax,
  chooseToken,
  nucleus,
  rowLogSumExp,
  TokenChooser,
} from "../../src/local/engine/sampling/choose-token.js";
import { type SampleRequest, sample } from "../../src/local/engine/sampling/sampler.js";
import { forwardBackward } from "../../src/local/engine/train/forward-backward.js";
import { engineData, makeAdapter, makeModel, TINY_LLAMA, TINY_QWEN3 } from "./fixtures.js";

const PROMPT = Int32Array.from([3, 14, 15, 9, 2, 6]);

function req(params: SamplingParams, extra: Partial<SampleRequest> = {}): SampleRequest {
  return {
    prompt: PROMPT,
    numSamples: 1,
    params,
    promptLogprobs: false,
    topkPromptLogprobs: 0,
    maxContextLength: 64,
    ...extra,
  };
}

/** Logprobs of `seq[1..]` from a plain forward pass. */
function forwardLogprobs(
  model: Transformer,
  adapter: LoraAdapter | null,
  seq: number[],
): Float32Array {
  const data = engineData([
    makeDatum(seq.slice(0, -1), {
      target_tokens: seq.slice(1),
      weights: seq.slice(1).map(() => 1),
    }),
  ]);
  return forwardBackward(model, adapter, data, "cross_entropy", undefined, true, 1024)
    .lossFnOutputs[0]!.logprobs!.data as Float32Array;
}

/** Logits rows of a full forward pass. */
function allLogits(model: Transformer, adapter: LoraAdapter | null, seq: number[]): Float32Array[] {
  const st = model.forward(Int32Array.from(seq), [{ start: 0, len: seq.length }], adapter, false);
  const V = model.config.vocabSize;
  const out = new Float32Array(seq.length * V);
  const s = new Scratch(model.kernels);
  const h = adapter?.lmHead ? s.alloc(seq.length * adapter.lora.rank) : undefined;
  model.logits(st.xf, seq.length, adapter, out, h);
  st.scratch.release();
  s.release();
  return Array.from({ length: seq.length }, (_, i) => out.subarray(i * V, (i + 1) * V));
}

describe.each([
  ["qwen3", TINY_QWEN3],
  ["llama", TINY_LLAMA],
])("sampling (%s)", (_n, config) => {
  const model = makeModel(config, 4, 0.15);
  const adapter = makeAdapter(model);

  it("sampled-token logprobs equal a forward pass on the same tokens (to 1e-4), for every sample", () => {
    const res = sample(
      model,
      adapter,
      req({ maxTokens: 10, seed: 42, temperature: 1.3, topK: 10, topP: 0.95 }, { numSamples: 3 }),
    );
    expect(res.sequences).toHaveLength(3);
    for (const s of res.sequences) {
      expect(s.tokens.length).toBeGreaterThan(0);
      const lp = forwardLogprobs(model, adapter, [...PROMPT, ...s.tokens]);
      const tail = Array.from(lp.subarray(PROMPT.length - 1));
      expect(s.logprobs).toHaveLength(s.tokens.length);
      for (let i = 0; i < s.tokens.length; i++)
        expect(Math.abs(s.logprobs![i]! - tail[i]!)).toBeLessThan(1e-4);
    }
  });

  it("temperature 0 is greedy argmax (and top_k 1 is the same)", () => {
    const res = sample(model, adapter, req({ maxTokens: 8, temperature: 0 }));
    const toks = res.sequences[0]!.tokens;
    const rows = allLogits(model, adapter, [...PROMPT, ...toks]);
    for (let i = 0; i < toks.length; i++)
      expect(toks[i]).toBe(argmax(rows[PROMPT.length - 1 + i]!));
    const k1 = sample(model, adapter, req({ maxTokens: 8, temperature: 1, topK: 1, seed: 5 }));
    expect(k1.sequences[0]!.tokens).toEqual(toks);
  });

  it("same seed -> same tokens; other seeds and other samples differ", () => {
    const p = { maxTokens: 12, seed: 1234, temperature: 1.5 };
    const a = sample(model, adapter, req(p, { numSamples: 4 }));
    const b = sample(model, adapter, req(p, { numSamples: 4 }));
    expect(b.sequences.map((s) => s.tokens)).toEqual(a.sequences.map((s) => s.tokens));
    const c = sample(model, adapter, req({ ...p, seed: 99 }, { numSamples: 4 }));
    expect(c.sequences.map((s) => s.tokens)).not.toEqual(a.sequences.map((s) => s.tokens));
    const distinct = new Set(a.sequences.map((s) => s.tokens.join(",")));
    expect(distinct.size).toBeGreaterThan(1);
  });

  it("prompt logprobs match the forward pass; top-k prompt logprobs are sorted and start with the max", () => {
    const res = sample(
      model,
      adapter,
      req({ maxTokens: 1, seed: 1 }, { promptLogprobs: true, topkPromptLogprobs: 3 }),
    );
    const lp = forwardLogprobs(model, adapter, Array.from(PROMPT));
    expect(res.promptLogprobs).toHaveLength(PROMPT.length);
    expect(res.promptLogprobs![0]).toBeNull();
    for (let i = 1; i < PROMPT.length; i++)
      expect(res.promptLogprobs![i]).toBeCloseTo(lp[i - 1]!, 5);
    const rows = allLogits(model, adapter, Array.from(PROMPT));
    expect(res.topkPromptLogprobs![0]).toBeNull();
    for (let i = 1; i < PROMPT.length; i++) {
      const top = res.topkPromptLogprobs![i]!;
      expect(top).toHaveLength(3);
      expect(top[0]![0]).toBe(argmax(rows[i - 1]!));
      expect(top[0]![1]).toBeGreaterThanOrEqual(top[1]![1]);
      expect(top[1]![1]).toBeGreaterThanOrEqual(top[2]![1]);
    }
  });

  it("stops at stop token ids and stop strings (including the stopping token), else at max_tokens", () => {
    const greedy = sample(model, adapter, req({ maxTokens: 8, temperature: 0 })).sequences[0]!;
    const eos = new Set(config.eosTokenIds);
    expect(greedy.tokens.some((t) => eos.has(t))).toBe(false); // true for these seeds
    expect(greedy.stopReason).toBe("length");
    expect(greedy.tokens).toHaveLength(8);
    const stopTok = greedy.tokens[3]!;
    const first = greedy.tokens.indexOf(stopTok);
    const byId = sample(model, adapter, req({ maxTokens: 8, temperature: 0, stop: [stopTok] }))
      .sequences[0]!;
    expect(byId.stopReason).toBe("stop");
    expect(byId.tokens).toEqual(greedy.tokens.slice(0, first + 1));
    const decode = (ids: readonly number[]) => ids.map((t) => String.fromCharCode(65 + t)).join("");
    const stopStr = decode(greedy.tokens.slice(4, 6));
    const byStr = sample(
      model,
      adapter,
      req({ maxTokens: 8, temperature: 0, stop: ["zz", stopStr] }, { decode }),
    ).sequences[0]!;
    expect(byStr.stopReason).toBe("stop");
    const at = decode(greedy.tokens).indexOf(stopStr);
    expect(byStr.tokens).toEqual(greedy.tokens.slice(0, at + 2));
  });
});

describe("sampling validation", () => {
  const model = makeModel(TINY_QWEN3, 4, 0.15);
  const cases: Array<[string, SampleRequest, string]> = [
    [
      "token id out of range",
      req({ maxTokens: 2 }, { prompt: Int32Array.from([1, 99]) }),
      "prompt",
    ],
    ["too long for the context", req({ maxTokens: 60 }), "max_tokens"],
    ["negative temperature", req({ maxTokens: 2, temperature: -1 }), "temperature"],
    ["top_p 0", req({ maxTokens: 2, topP: 0 }), "top_p"],
    ["stop strings without a tokenizer", req({ maxTokens: 2, stop: ["x"] }), "stop"],
    ["zero samples", req({ maxTokens: 2 }, { numSamples: 0 }), "num_samples"],
  ];
  for (const [name, r, field] of cases) {
    it(name, () => {
      let err: unknown;
      try {
        sample(model, null, r);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(TinkerValidationError);
      expect((err as TinkerValidationError).field).toBe(field);
    });
  }
});

describe("nucleus (top-p set)", () => {
  it("equals the naive sort-and-accumulate set, with ties and a large vocabulary", () => {
    const rng = new SeededRng(3);
    for (const [n, p] of [
      [10, 0.5],
      [5000, 0.9],
      [50_000, 0.95],
      [300, 0.3],
    ] as const) {
      const w = Float64Array.from({ length: n }, () => Math.exp(4 * rng.normal()));
      for (let i = 0; i < n; i += 7) w[i] = w[0]!; // ties
      const total = w.reduce((a, b) => a + b, 0);
      const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => w[b]! - w[a]! || a - b);
      const naive: number[] = [];
      let cum = 0;
      for (const j of order) {
        if (cum >= p * total) break;
        naive.push(j);
        cum += w[j]!;
      }
      expect(nucleus(w, p * total)).toEqual(naive);
    }
  });
});

describe("chooseToken distribution", () => {
  it("matches softmax(logits / T) restricted to top-k then top-p (20k draws)", () => {
    const row = Float32Array.from([2.0, 1.5, 0.3, 1.0, -1.0, 0.9]);
    const cases = [
      { temperature: 1, topK: -1, topP: 1 },
      { temperature: 0.7, topK: 4, topP: 1 },
      { temperature: 1.3, topK: -1, topP: 0.8 },
      { temperature: 0.9, topK: 5, topP: 0.7 },
    ];
    for (const p of cases) {
      // Expected: sort by logit, keep top-k, softmax at T, keep the smallest prefix reaching top-p.
      const order = Array.from(row.keys()).sort((a, b) => row[b]! - row[a]!);
      const kept = p.topK > 0 ? order.slice(0, p.topK) : order;
      const w = kept.map((i) => Math.exp(row[i]! / p.temperature));
      const total = w.reduce((a, b) => a + b, 0);
      let cum = 0;
      let n = 0;
      while (cum < p.topP * total) cum += w[n++]!;
      const expected = new Array(row.length).fill(0);
      for (let j = 0; j < n; j++) expected[kept[j]!] = w[j]! / cum;
      const rng = new SeededRng(17);
      const counts = new Array(row.length).fill(0);
      const draws = 20000;
      for (let i = 0; i < draws; i++) counts[chooseToken(row, p, rng)]++;
      for (let t = 0; t < row.length; t++) {
        // 4 standard deviations of a binomial proportion at most 0.5: 4 * 0.5 / sqrt(20000) ~ 0.014.
        expect(
          Math.abs(counts[t] / draws - expected[t]),
          `${JSON.stringify(p)} token ${t}`,
        ).toBeLessThan(0.015);
      }
    }
  });
});

describe("TokenChooser", () => {
  it("picks the same token as chooseToken and returns the exact logprob, for every control", () => {
    const V = 3001;
    const row = Float32Array.from({ length: V }, (_, i) => 4 * Math.sin(i * 1.7) + (i % 13) / 5);
    const chooser = new TokenChooser();
    const settings = [
      { temperature: 1, topK: -1, topP: 1 },
      { temperature: 0.7, topK: -1, topP: 1 },
      { temperature: 1, topK: 50, topP: 1 },
      { temperature: 1, topK: -1, topP: 0.9 },
      { temperature: 1.3, topK: 200, topP: 0.8 },
      { temperature: 0, topK: -1, topP: 1 },
    ];
    for (const p of settings) {
      for (let seed = 0; seed < 20; seed++) {
        const want = chooseToken(row, p, new SeededRng(seed, 3));
        const got = chooser.choose(row, p, new SeededRng(seed, 3));
        expect(got.token).toBe(want);
        expect(got.logprob).toBe(row[want]! - rowLogSumExp(row));
      }
    }
  });
});
