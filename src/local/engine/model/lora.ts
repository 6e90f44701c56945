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
/**
 * Projections of a decoder layer that read the same input. Their A factors are stored stacked, so
 * `x A^T` for the whole group (and, backward, its dA and dx terms) is one product instead of one per
 * projection.
 */
export const LORA_GROUPS = {
  qkv: ["q_proj", "k_proj", "v_proj"],
  o: ["o_proj"],
  gate_up: ["gate_proj", "up_proj"],
  down: ["down_proj"],
} as const satisfies Record<string, readonly LayerModule[]>;

export type LoraGroupName = keyof typeof LORA_GROUPS;

/** A group of LoRA pairs sharing one input: stacked A factors `[rank * members, inDim]`. */
export interface LoraGroup {
  readonly inDim: number;
  /** Columns of `x A^T` for the group: rank times the number of members. */
  readonly rank: number;
  readonly a: Float32Array;
  readonly dA: Float32Array;
  /** Each member and the first column of its rank block in `x A^T`. */
  readonly members: ReadonlyArray<{ readonly pair: LoraPair; readonly col: number }>;
}

/**
 * The trainable state of one LoRA adapter on a base model: parameters, accumulated gradients and
 * AdamW moments, each one contiguous buffer in the kernel heap (so a step is a single kernel call).
 * Within it each group's A factors are adjacent, then its B factors.
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
  /** Per layer, the adapted projections by shared input. */
  readonly groups: Array<Partial<Record<LoraGroupName, LoraGroup>>>;
  readonly lmHead: LoraPair | null;
  /** The lm_head pair as a group of one. */
  readonly lmHeadGroup: LoraGroup | null;
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
    interface Spec {
      module: string;
      inDim: number;
      outDim: number;
      m: LayerModule | null;
    }
    const groupSpecs: Array<{ layer: number; name: LoraGroupName | null; members: Spec[] }> = [];
    const enabled = (name: LoraGroupName) =>
      name === "qkv" || name === "o" ? lora.trainAttn : lora.trainMlp;
    for (let l = 0; l < config.numLayers; l++) {
      for (const [name, mods] of Object.entries(LORA_GROUPS) as Array<
        [LoraGroupName, readonly LayerModule[]]
      >) {
        if (!enabled(name)) continue;
        const members = mods.map((m) => {
          const [inDim, outDim] = moduleDims(config, m);
          return { module: modulePath(l, m), inDim, outDim, m };
        });
        groupSpecs.push({ layer: l, name, members });
      }
    }
    if (lora.trainUnembed) {
      groupSpecs.push({
        layer: -1,
        name: null,
        members: [
          { module: "lm_head", inDim: config.hiddenSize, outDim: config.vocabSize, m: null },
        ],
      });
    }
    const total = groupSpecs.reduce(
      (s, g) => s + g.members.reduce((t, p) => t + r * (p.inDim + p.outDim), 0),
      0,
    );
    this.params = kernels.alloc(Math.max(total, 1));
    this.grads = kernels.alloc(Math.max(total, 1));
    this.m = kernels.alloc(Math.max(total, 1));
    this.v = kernels.alloc(Math.max(total, 1));
    this.layers = Array.from({ length: config.numLayers }, () => ({}));
    this.groups = Array.from({ length: config.numLayers }, () => ({}));
    let lmHead: LoraPair | null = null;
    let lmHeadGroup: LoraGroup | null = null;
    const pairs: LoraPair[] = [];
    let off = 0;
    for (const gs of groupSpecs) {
      const inDim = gs.members[0]!.inDim;
      const na = r * inDim;
      const aStart = off;
      off += na * gs.members.length;
      const members = gs.members.map((s, i) => {
        const nb = s.outDim * r;
        const pair: LoraPair = {
          module: s.module,
          inDim: s.inDim,
          outDim: s.outDim,
          a: this.params.subarray(aStart + i * na, aStart + (i + 1) * na),
          b: this.params.subarray(off, off + nb),
          dA: this.grads.subarray(aStart + i * na, aStart + (i + 1) * na),
          dB: this.grads.subarray(off, off + nb),
        };
        off += nb;
        pairs.push(pair);
        if (s.m) this.layers[gs.layer]![s.m] = pair;
        else lmHead = pair;
        return { pair, col: i * r };
      });
      const group: LoraGroup = {
        inDim,
        rank: r * members.length,
        a: this.params.subarray(aStart, aStart + na * members.length),
        dA: this.grads.subarray(aStart, aStart + na * members.length),
        members,
      };
      if (gs.name) this.groups[gs.layer]![gs.name] = group;
      else lmHeadGroup = group;
    }
    this.lmHead = lmHead;
    this.lmHeadGroup = lmHeadGroup;
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
    for (const p of this.pairs) {
      for (const [factor, shape, view] of [
        ["A", [this.lora.rank, p.inDim], p.a],
        ["B", [p.outDim, this.lora.rank], p.b],
      ] as const) {
        const off = this.offsetOf(view);
        const n = view.length;
        const name = peftName(p.module, factor);
        tensors.set(`${name}.exp_avg`, { shape: [...shape], data: this.m.slice(off, off + n) });
        tensors.set(`${name}.exp_avg_sq`, { shape: [...shape], data: this.v.slice(off, off + n) });
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
    for (const p of this.pairs) {
      for (const [factor, view] of [
        ["A", p.a],
        ["B", p.b],
      ] as const) {
        const name = peftName(p.module, factor);
        staged.push([
          this.offsetOf(view),
          need(tensors, `${name}.exp_avg`, view.length),
          need(tensors, `${name}.exp_avg_sq`, view.length),
        ]);
      }
    }
    for (const [o, m, v] of staged) {
      this.m.set(m, o);
      this.v.set(v, o);
    }
    this.step = step;
  }

  /** Element offset of a view of `params` (the same offset locates it in `grads`, `m` and `v`). */
  private offsetOf(view: Float32Array): number {
    return (view.byteOffset - this.params.byteOffset) / 4;
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
