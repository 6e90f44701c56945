import type { ModelConfig } from "../src/local/engine/model/config.js";

/**
 * The model shape the engine benchmarks measure (as in engine-notes.md): Qwen3-style, d=256,
 * 4 layers, 4 query / 2 kv heads of 64, ff 768, with the given vocabulary; LoRA rank 8 everywhere.
 */
export function benchShape(vocabSize: number): ModelConfig {
  return {
    arch: "qwen3",
    vocabSize,
    hiddenSize: 256,
    intermediateSize: 768,
    numLayers: 4,
    numHeads: 4,
    numKvHeads: 2,
    headDim: 64,
    rmsNormEps: 1e-6,
    ropeTheta: 10000,
    maxPositionEmbeddings: 4096,
    tieWordEmbeddings: false,
    qkNorm: true,
    eosTokenIds: [],
  };
}

export const BENCH_LORA = { rank: 8, seed: 0, trainAttn: true, trainMlp: true, trainUnembed: true };
