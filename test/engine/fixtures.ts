import { type Datum, makeDatum } from "../../src/client/types/datum.js";
import type { ResolvedLoraConfig } from "../../src/local/engine/api.js";
import { createJsKernels } from "../../src/local/engine/kernels/js.js";
import type { Kernels } from "../../src/local/engine/kernels/types.js";
import type { ModelConfig } from "../../src/local/engine/model/config.js";
import { LoraAdapter } from "../../src/local/engine/model/lora.js";
import { SeededRng } from "../../src/local/engine/model/prng.js";
import { Transformer } from "../../src/local/engine/model/transformer.js";
import { initRandomWeights, loadBaseWeights } from "../../src/local/engine/model/weights.js";
import { type EngineDatum, toEngineDatum } from "../../src/local/engine/train/datum.js";

/** Qwen3-style: QK-norm, GQA 4/2, head dim 8 (q dim 32 != hidden 16), untied head. */
export const TINY_QWEN3: ModelConfig = {
  arch: "qwen3",
  vocabSize: 37,
  hiddenSize: 16,
  intermediateSize: 24,
  numLayers: 2,
  numHeads: 4,
  numKvHeads: 2,
  headDim: 8,
  rmsNormEps: 1e-6,
  ropeTheta: 10000,
  maxPositionEmbeddings: 64,
  tieWordEmbeddings: false,
  qkNorm: true,
  eosTokenIds: [36],
};

/** Llama-3.1-style: no QK-norm, tied embeddings, scaled RoPE, MHA-free GQA 2/1. */
export const TINY_LLAMA: ModelConfig = {
  arch: "llama",
  vocabSize: 29,
  hiddenSize: 12,
  intermediateSize: 20,
  numLayers: 2,
  numHeads: 2,
  numKvHeads: 1,
  headDim: 6,
  rmsNormEps: 1e-5,
  ropeTheta: 500000,
  maxPositionEmbeddings: 64,
  tieWordEmbeddings: true,
  qkNorm: false,
  ropeScaling: { factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8 },
  eosTokenIds: [28],
};

export const ALL_LORA: ResolvedLoraConfig = {
  rank: 3,
  seed: 7,
  trainAttn: true,
  trainMlp: true,
  trainUnembed: true,
};

/**
 * A model whose weights are scaled up from the default init (std 0.02 -> `std`) and whose norm
 * weights are perturbed, so every path carries a non-trivial signal.
 */
export function makeModel(
  config: ModelConfig,
  seed = 1,
  std = 0.3,
  kernels: Kernels = createJsKernels(),
): Transformer {
  const tensors = initRandomWeights(config, seed);
  const rng = new SeededRng(seed, 99);
  for (const [name, t] of tensors) {
    for (let i = 0; i < t.data.length; i++) {
      t.data[i] = name.endsWith("norm.weight") ? 1 + 0.2 * rng.normal() : (t.data[i]! * std) / 0.02;
    }
  }
  return new Transformer(kernels, config, loadBaseWeights(kernels, config, tensors));
}

/** An adapter with non-zero B (a fresh adapter has B = 0, which hides A's gradient). */
export function makeAdapter(
  model: Transformer,
  lora: ResolvedLoraConfig = ALL_LORA,
  bStd = 0.1,
): LoraAdapter {
  const ad = LoraAdapter.create(model.kernels, model.config, lora);
  const rng = new SeededRng(lora.seed, 5);
  for (const p of ad.pairs) for (let i = 0; i < p.b.length; i++) p.b[i] = bStd * rng.normal();
  return ad;
}

export function randomTokens(rng: SeededRng, n: number, vocab: number): number[] {
  return Array.from({ length: n }, () => Math.floor(rng.nextFloat() * vocab));
}

/** Cross-entropy datums from random sequences of the given lengths. */
export function ceData(vocab: number, lengths: number[], seed = 3): Datum[] {
  const rng = new SeededRng(seed);
  return lengths.map((n) => {
    const seq = randomTokens(rng, n + 1, vocab);
    const weights = seq.slice(1).map(() => 0.5 + rng.nextFloat());
    return makeDatum(seq.slice(0, -1), { target_tokens: seq.slice(1), weights });
  });
}

export function engineData(data: readonly Datum[]): EngineDatum[] {
  return data.map((d, i) => toEngineDatum(d, i, false));
}
