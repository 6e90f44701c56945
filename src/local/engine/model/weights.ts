import { TinkerValidationError } from "../../../client/errors.js";
import type { Kernels } from "../kernels/types.js";
import type { ModelConfig } from "./config.js";
import { SeededRng } from "./prng.js";

/** A named float tensor as the I/O layer reads and writes it (row-major). */
export interface NamedTensor {
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

/** Frozen weights of one decoder layer, HF layouts ([out, in] for projections). */
export interface LayerWeights {
  inputNorm: Float32Array;
  postNorm: Float32Array;
  qNorm: Float32Array | null;
  kNorm: Float32Array | null;
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
  o: Float32Array;
  gate: Float32Array;
  up: Float32Array;
  down: Float32Array;
}

/** All frozen base weights, in the kernel heap. Shared read-only by every adapter. */
export interface BaseWeights {
  embed: Float32Array;
  /** The unembedding [vocab, hidden]; the embedding itself when the model ties them. */
  lmHead: Float32Array;
  finalNorm: Float32Array;
  layers: LayerWeights[];
}

/** Expected HF tensor names and shapes for `config`. */
export function expectedTensorShapes(config: ModelConfig): Map<string, number[]> {
  const {
    hiddenSize: d,
    vocabSize: V,
    intermediateSize: ff,
    numHeads,
    numKvHeads,
    headDim,
  } = config;
  const out = new Map<string, number[]>();
  out.set("model.embed_tokens.weight", [V, d]);
  for (let l = 0; l < config.numLayers; l++) {
    const p = `model.layers.${l}`;
    out.set(`${p}.input_layernorm.weight`, [d]);
    out.set(`${p}.post_attention_layernorm.weight`, [d]);
    out.set(`${p}.self_attn.q_proj.weight`, [numHeads * headDim, d]);
    out.set(`${p}.self_attn.k_proj.weight`, [numKvHeads * headDim, d]);
    out.set(`${p}.self_attn.v_proj.weight`, [numKvHeads * headDim, d]);
    out.set(`${p}.self_attn.o_proj.weight`, [d, numHeads * headDim]);
    if (config.qkNorm) {
      out.set(`${p}.self_attn.q_norm.weight`, [headDim]);
      out.set(`${p}.self_attn.k_norm.weight`, [headDim]);
    }
    out.set(`${p}.mlp.gate_proj.weight`, [ff, d]);
    out.set(`${p}.mlp.up_proj.weight`, [ff, d]);
    out.set(`${p}.mlp.down_proj.weight`, [d, ff]);
  }
  out.set("model.norm.weight", [d]);
  if (!config.tieWordEmbeddings) out.set("lm_head.weight", [V, d]);
  return out;
}

/**
 * Random base weights from a seed, bit-identical on every machine (integer PRNG and exact float
 * arithmetic only, no transcendental functions): projections and embeddings uniform on
 * [-0.02 sqrt(3), 0.02 sqrt(3)] (standard deviation 0.02, the HF `initializer_range` default),
 * norms = 1. Returned with HF names.
 */
export function initRandomWeights(config: ModelConfig, seed: number): Map<string, NamedTensor> {
  const rng = new SeededRng(seed, 0x5eed);
  const out = new Map<string, NamedTensor>();
  for (const [name, shape] of expectedTensorShapes(config)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    if (name.endsWith("norm.weight")) data.fill(1);
    else {
      const a = 0.02 * Math.sqrt(3);
      for (let i = 0; i < n; i++) data[i] = a * (2 * rng.nextFloat24() - 1);
    }
    out.set(name, { shape, data });
  }
  return out;
}

/**
 * Copy HF-named tensors into the kernel heap, checking every expected name and shape. A checkpoint
 * with tied embeddings may omit `lm_head.weight`.
 */
export function loadBaseWeights(
  kernels: Kernels,
  config: ModelConfig,
  tensors: ReadonlyMap<string, NamedTensor>,
): BaseWeights {
  const take = (name: string): Float32Array => {
    const shape = expectedTensorShapes(config).get(name);
    const t = tensors.get(name);
    if (!shape || !t) {
      throw new TinkerValidationError(`model weights are missing tensor "${name}"`, name);
    }
    const n = shape.reduce((a, b) => a * b, 1);
    if (t.data.length !== n || t.shape.reduce((a, b) => a * b, 1) !== n) {
      throw new TinkerValidationError(
        `tensor "${name}" has shape [${t.shape.join(", ")}], expected [${shape.join(", ")}]`,
        name,
      );
    }
    const buf = kernels.alloc(n);
    buf.set(t.data);
    return buf;
  };
  const layers: LayerWeights[] = [];
  for (let l = 0; l < config.numLayers; l++) {
    const p = `model.layers.${l}`;
    layers.push({
      inputNorm: take(`${p}.input_layernorm.weight`),
      postNorm: take(`${p}.post_attention_layernorm.weight`),
      qNorm: config.qkNorm ? take(`${p}.self_attn.q_norm.weight`) : null,
      kNorm: config.qkNorm ? take(`${p}.self_attn.k_norm.weight`) : null,
      q: take(`${p}.self_attn.q_proj.weight`),
      k: take(`${p}.self_attn.k_proj.weight`),
      v: take(`${p}.self_attn.v_proj.weight`),
      o: take(`${p}.self_attn.o_proj.weight`),
      gate: take(`${p}.mlp.gate_proj.weight`),
      up: take(`${p}.mlp.up_proj.weight`),
      down: take(`${p}.mlp.down_proj.weight`),
    });
  }
  const embed = take("model.embed_tokens.weight");
  const lmHead = config.tieWordEmbeddings ? embed : take("lm_head.weight");
  return { embed, lmHead, finalNorm: take("model.norm.weight"), layers };
}

/** Return every base buffer to the kernel heap. */
export function freeBaseWeights(kernels: Kernels, w: BaseWeights): void {
  const bufs = new Set<Float32Array>([w.embed, w.lmHead, w.finalNorm]);
  for (const l of w.layers) {
    for (const b of [
      l.inputNorm,
      l.postNorm,
      l.qNorm,
      l.kNorm,
      l.q,
      l.k,
      l.v,
      l.o,
      l.gate,
      l.up,
      l.down,
    ]) {
      if (b) bufs.add(b);
    }
  }
  for (const b of bufs) kernels.free(b);
}
