import type { ModelConfig } from "../model/config.js";

/**
 * What the engine's kernel heap holds for a base model, in bytes: the figures admission control
 * multiplies by request sizes. Estimates follow the buffers `Transformer.forward/backward`,
 * `forwardBackward` and `LoraAdapter` allocate (float32 each); they round up, never down.
 */
export interface ModelMemory {
  /** The most heap the engine can have in all (wasm32: 4 GiB). */
  heapLimitBytes: number;
  /** Base weights. */
  weightBytes: number;
  /** forward_backward with a backward pass: per token, plus `trainBytesPerTokenPerRank * rank`. */
  trainBytesPerToken: number;
  trainBytesPerTokenPerRank: number;
  /** Forward only (also a sample's prompt prefill): per token. */
  forwardBytesPerToken: number;
  /** The vocabulary projection's block (logits and their gradient): per token, up to a cap. */
  headBytesPerToken: number;
  headBytesMax: number;
  /** KV cache per token of one sequence. */
  kvBytesPerToken: number;
  /** A LoRA adapter (weights, gradients, two AdamW moments) per unit of rank, by target. */
  adapterBytesPerRank: { attn: number; mlp: number; unembed: number };
}

/** Bytes per float32 once the heap rounds a buffer up to its size class (at most 1/8 more). */
const ROUNDED = 4.5;

/** The 4 GiB a wasm32 memory can address. */
export const HEAP_LIMIT_BYTES = 4 * 1024 ** 3;

export function modelMemory(c: ModelConfig): ModelMemory {
  const f = 4;
  const d = c.hiddenSize;
  const ff = c.intermediateSize;
  const q = c.numHeads * c.headDim;
  const kv = c.numKvHeads * c.headDim;
  const L = c.numLayers;
  // Activations one layer keeps per token (norms, q/k/v before and after norm, attention out,
  // residuals, MLP gate/up/act) and the LoRA hidden columns (7 ranks: qkv 3, o 1, gate/up 2, down 1).
  const layerFloats = 4 * d + 3 * q + 3 * kv + 2 * c.numHeads + c.numKvHeads + 2 + 3 * ff;
  // The backward pass's working buffers, once per token, and dLoss/dx at the head.
  const backwardFloats = 3 * d + 3 * ff + 3 * q + 3 * kv;
  const perLayerWeights =
    2 * d + d * q + 2 * d * kv + q * d + 3 * d * ff + (c.qkNorm ? 2 * c.headDim : 0);
  const embed = c.vocabSize * d;
  return {
    heapLimitBytes: HEAP_LIMIT_BYTES,
    weightBytes: f * (embed * (c.tieWordEmbeddings ? 1 : 2) + L * perLayerWeights + d),
    // Every buffer is rounded up to a heap size class (at most 1/8 more): 4.5 bytes per float.
    trainBytesPerToken: Math.ceil(ROUNDED * (L * layerFloats + backwardFloats + 3 * d)),
    trainBytesPerTokenPerRank: Math.ceil(ROUNDED * (L * 7 + 3)),
    forwardBytesPerToken: Math.ceil(ROUNDED * (layerFloats + 3 * d)),
    // Blocks of floor(4 Mi / vocab) rows (`headBlockRows`), logits plus a same-sized buffer.
    headBytesPerToken: 2 * f * c.vocabSize,
    headBytesMax: 2 * f * Math.max(4 << 20, c.vocabSize),
    kvBytesPerToken: f * 2 * kv * L,
    // Four buffers: weights, gradients, two moments.
    adapterBytesPerRank: {
      attn: Math.ceil(4 * ROUNDED * L * (d + q + d + kv + d + kv + q + d)),
      mlp: Math.ceil(4 * ROUNDED * L * (d + ff + d + ff + ff + d)),
      unembed: Math.ceil(4 * ROUNDED * (d + c.vocabSize)),
    },
  };
}
