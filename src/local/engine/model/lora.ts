import { TinkerValidationError } from "../../../client/errors.js";
import type { ResolvedLoraConfig } from "../api.js";
import type { Kernels } from "../kernels/types.js";
import type { ModelConfig } from "./config.js";
import { SeededRng } from "./prng.js";
import type { NamedTensor } from "./weights.js";

/**
 * LoRA alpha. The adapter adds `(alpha / rank) * B @ A` to each targeted weight. Tinker's exported
 * adapters carry `lora_alpha: 32` whatever the rank, so the effective scale is 32 / rank; we use
 * the same convention so learning rates transfer between Tinker and the local engine.
 */
export const LORA_ALPHA = 32;

/** Projections inside a decoder layer that can carry a LoRA adapter. */
export type LayerModule =
  | "q_proj"
  | "k_proj"
  | "v_proj"
  | "o_proj"
  | "gate_proj"
  | "up_proj"
  | "down_proj";

export const ATTN_MODULES: readonly LayerModule[] = ["q_proj", "k_proj", "v_proj", "o_proj"];
export const MLP_MODULES: readonly LayerModule[] = ["gate_proj", "up_proj", "down_proj"];

/** One LoRA-adapted linear map W[out, in]: A[rank, in], B[out, rank]; views into the adapter's buffers. */
export interface LoraPair {
  /** HF module path, e.g. `model.layers.0.self_attn.q_proj` or `lm_head`. */
  readonly module: string;
  readonly inDim: number;
  readonly outDim: number;
  readonly a: Float32Array;
  readonly b: Float32Array;
  readonly dA: Float32Array;
  readonly dB: Float32Array;
}

/** Input and output sizes of a layer projection. */
export function moduleDims(config: ModelConfig, m: LayerModule): [inDim: number, outDim: number] {
  const d = config.hiddenSize;
  const qDim = config.numHeads * config.headDim;
  const kvDim = config.numKvHeads * config.headDim;
  switch (m) {
    case "q_proj":
      return [d, qDim];
    case "k_proj":
    case "v_proj":
      return [d, kvDim];
    case "o_proj":
      return [qDim, d];
    case "gate_proj":
    case "up_proj":
      return [d, config.intermediateSize];
    case "down_proj":
      return [config.intermediateSize, d];
  }
}

function modulePath(layer: number, m: LayerModule): string {
  const group = ATTN_MODULES.includes(m) ? "self_attn" : "mlp";
  return `model.layers.${layer}.${group}.${m}`;
}

/** PEFT tensor name of a LoRA factor. */
export function peftName(module: string, factor: "A" | "B"): string {
  return `base_model.model.${module}.lora_${factor}.weight`;
}

/**
 * The trainable state of one LoRA adapter on a base model: parameters, accumulated gradients and
 * AdamW moments, each one contiguous buffer in the kernel heap (so a step is a single kernel call).
 */
export class LoraAdapter {
  readonly lora: ResolvedLoraConfig;
  /** alpha / rank. */
  readonly scale: number;
  readonly params: Float32Array;
  readonly grads: Float32Array;
  readonly m: Float32Array;
  readonly v: Float32Array;
  /** Optimizer steps taken. */
  step = 0;
  /** Per layer, the adapted projections. */
  readonly layers: Array<Partial<Record<LayerModule, LoraPair>>>;
  readonly lmHead: LoraPair | null;
  /** Every pair in a fixed order (layers, then lm_head). */
  readonly pairs: readonly LoraPair[];

  private constructor(kernels: Kernels, config: ModelConfig, lora: ResolvedLoraConfig) {
    if (!Number.isInteger(lora.rank) || lora.rank < 1) {
      throw new TinkerValidationError(
        `LoRA rank must be a positive integer, got ${lora.rank}`,
        "rank",
      );
    }
    this.lora = { ...lora };
    this.scale = LORA_ALPHA / lora.rank;
    const r = lora.rank;
    const specs: Array<{
      module: string;
      inDim: number;
      outDim: number;
      layer: number;
      m: LayerModule | null;
    }> = [];
    const mods = [...(lora.trainAttn ? ATTN_MODULES : []), ...(lora.trainMlp ? MLP_MODULES : [])];
    for (let l = 0; l < config.numLayers; l++) {
      for (const m of mods) {
        const [inDim, outDim] = moduleDims(config, m);
        specs.push({ module: modulePath(l, m), inDim, outDim, layer: l, m });
      }
    }
    if (lora.trainUnembed) {
      specs.push({
        module: "lm_head",
        inDim: config.hiddenSize,
        outDim: config.vocabSize,
        layer: -1,
        m: null,
      });
    }
    const total = specs.reduce((s, p) => s + r * (p.inDim + p.outDim), 0);
    this.params = kernels.alloc(Math.max(total, 1));
    this.grads = kernels.alloc(Math.max(total, 1));
    this.m = kernels.alloc(Math.max(total, 1));
    this.v = kernels.alloc(Math.max(total, 1));
    this.layers = Array.from({ length: config.numLayers }, () => ({}));
    let lmHead: LoraPair | null = null;
    const pairs: LoraPair[] = [];
    let off = 0;
    for (const s of specs) {
      const na = r * s.inDim;
      const nb = s.outDim * r;
      const pair: LoraPair = {
        module: s.module,
        inDim: s.inDim,
        outDim: s.outDim,
        a: this.params.subarray(off, off + na),
        b: this.params.subarray(off + na, off + na + nb),
        dA: this.grads.subarray(off, off + na),
        dB: this.grads.subarray(off + na, off + na + nb),
      };
      off += na + nb;
      pairs.push(pair);
      if (s.m) this.layers[s.layer]![s.m] = pair;
      else lmHead = pair;
    }
    this.lmHead = lmHead;
    this.pairs = pairs;
    this.paramCount = total;
  }

  /** Number of trainable parameters. */
  readonly paramCount: number;

  /**
   * A fresh adapter: A ~ U(-1/sqrt(in), 1/sqrt(in)) (PEFT's kaiming-uniform with a = sqrt(5)) from
   * `lora.seed`, B = 0, so the adapted model starts equal to the base model.
   */
  static create(kernels: Kernels, config: ModelConfig, lora: ResolvedLoraConfig): LoraAdapter {
    const ad = new LoraAdapter(kernels, config, lora);
    const rng = new SeededRng(lora.seed, 0x10a);
    for (const p of ad.pairs) {
      const bound = 1 / Math.sqrt(p.inDim);
      for (let i = 0; i < p.a.length; i++) p.a[i] = rng.uniform(-bound, bound);
    }
    return ad;
  }

  /** Zero the accumulated gradients. */
  zeroGrad(): void {
    this.grads.fill(0);
  }

  /** Weights with PEFT names (`base_model.model.<module>.lora_{A,B}.weight`), copied. */
  exportWeights(): Map<string, NamedTensor> {
    const out = new Map<string, NamedTensor>();
    for (const p of this.pairs) {
      out.set(peftName(p.module, "A"), { shape: [this.lora.rank, p.inDim], data: p.a.slice() });
      out.set(peftName(p.module, "B"), { shape: [p.outDim, this.lora.rank], data: p.b.slice() });
    }
    return out;
  }

  /** AdamW moments (`<peft name>.exp_avg`, `<peft name>.exp_avg_sq`), copied, and the step count. */
  exportOptimizer(): { tensors: Map<string, NamedTensor>; step: number } {
    const tensors = new Map<string, NamedTensor>();
    let off = 0;
    for (const p of this.pairs) {
      for (const [factor, shape] of [
        ["A", [this.lora.rank, p.inDim]],
        ["B", [p.outDim, this.lora.rank]],
      ] as const) {
        const n = shape[0] * shape[1];
        const name = peftName(p.module, factor);
        tensors.set(`${name}.exp_avg`, { shape: [...shape], data: this.m.slice(off, off + n) });
        tensors.set(`${name}.exp_avg_sq`, { shape: [...shape], data: this.v.slice(off, off + n) });
        off += n;
      }
    }
    return { tensors, step: this.step };
  }

  /** Overwrite weights from `exportWeights` output; every tensor must be present with its shape. */
  importWeights(tensors: ReadonlyMap<string, NamedTensor>): void {
    const staged: Array<[Float32Array, Float32Array]> = [];
    for (const p of this.pairs) {
      staged.push([p.a, need(tensors, peftName(p.module, "A"), p.a.length)]);
      staged.push([p.b, need(tensors, peftName(p.module, "B"), p.b.length)]);
    }
    for (const [dst, src] of staged) dst.set(src);
  }

  /** Overwrite the AdamW state from `exportOptimizer` output. */
  importOptimizer(tensors: ReadonlyMap<string, NamedTensor>, step: number): void {
    const staged: Array<[number, Float32Array, Float32Array]> = [];
    let off = 0;
    for (const p of this.pairs) {
      for (const [factor, n] of [
        ["A", p.a.length],
        ["B", p.b.length],
      ] as const) {
        const name = peftName(p.module, factor);
        staged.push([
          off,
          need(tensors, `${name}.exp_avg`, n),
          need(tensors, `${name}.exp_avg_sq`, n),
        ]);
        off += n;
      }
    }
    for (const [o, m, v] of staged) {
      this.m.set(m, o);
      this.v.set(v, o);
    }
    this.step = step;
  }

  /** Return the buffers to the kernel heap. */
  dispose(kernels: Kernels): void {
    for (const b of [this.params, this.grads, this.m, this.v]) kernels.free(b);
  }
}

function need(tensors: ReadonlyMap<string, NamedTensor>, name: string, n: number): Float32Array {
  const t = tensors.get(name);
  if (!t) throw new TinkerValidationError(`adapter state is missing tensor "${name}"`, name);
  if (t.data.length !== n) {
    throw new TinkerValidationError(
      `adapter tensor "${name}" has ${t.data.length} values, expected ${n}`,
      name,
    );
  }
  return t.data;
}
