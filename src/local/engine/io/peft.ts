import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { writeJsonAtomic } from "../../../fs/atomic.js";
import type { ModelConfig } from "../model/config.js";
import { ModelFileError } from "./errors.js";
import {
  ATTENTION_PROJECTIONS,
  type LayerProjection,
  MLP_PROJECTIONS,
  projectionShape,
} from "./hf-folder.js";
import {
  type FloatDtype,
  type LoadedTensor,
  readSafetensors,
  readSafetensorsHeader,
  type TensorToWrite,
  writeSafetensors,
} from "./safetensors.js";

/** Modules a LoRA adapter can target: the seven layer projections and the unembedding. */
export type PeftTargetModule = LayerProjection | "lm_head";

const LAYER_MODULES: readonly string[] = [...ATTENTION_PROJECTIONS, ...MLP_PROJECTIONS];

/** File names of a PEFT adapter folder. */
export const PEFT_CONFIG_FILE = "adapter_config.json";
export const PEFT_WEIGHTS_FILE = "adapter_model.safetensors";

/**
 * PEFT tensor name of a LoRA factor: `base_model.model.model.layers.{layer}.self_attn.q_proj.lora_A.weight`
 * (A is [rank, in], B is [out, rank]); for the unembedding pass `layer: null, module: "lm_head"`
 * -> `base_model.model.lm_head.lora_A.weight`.
 */
export function peftKeyFor(
  layer: number | null,
  module: PeftTargetModule,
  factor: "A" | "B",
): string {
  if (module === "lm_head") {
    if (layer !== null) throw new TypeError('peftKeyFor: "lm_head" has no layer index; pass null');
    return `base_model.model.lm_head.lora_${factor}.weight`;
  }
  if (layer === null || !Number.isInteger(layer) || layer < 0) {
    throw new TypeError(`peftKeyFor: ${module} needs a layer index >= 0, got ${layer}`);
  }
  const block = MLP_PROJECTIONS.includes(module) ? "mlp" : "self_attn";
  return `base_model.model.model.layers.${layer}.${block}.${module}.lora_${factor}.weight`;
}

/** A parsed PEFT LoRA tensor name. */
export interface PeftKey {
  layer: number | null;
  module: PeftTargetModule;
  factor: "A" | "B";
}

const LAYER_KEY =
  /^base_model\.model\.model\.layers\.(\d+)\.(self_attn|mlp)\.([a-z_]+)\.lora_([AB])(?:\.default)?\.weight$/;
const HEAD_KEY = /^base_model\.model\.lm_head\.lora_([AB])(?:\.default)?\.weight$/;

/**
 * Parse a PEFT LoRA tensor name (also accepting the `.default` adapter-name infix some PEFT versions
 * write); undefined when it is not one the engine understands.
 */
export function parsePeftKey(key: string): PeftKey | undefined {
  const h = HEAD_KEY.exec(key);
  if (h) return { layer: null, module: "lm_head", factor: h[1] as "A" | "B" };
  const m = LAYER_KEY.exec(key);
  if (!m) return undefined;
  const module = m[3] as string;
  if (!LAYER_MODULES.includes(module)) return undefined;
  const block = MLP_PROJECTIONS.includes(module as LayerProjection) ? "mlp" : "self_attn";
  if (m[2] !== block) return undefined;
  return { layer: Number(m[1]), module: module as LayerProjection, factor: m[4] as "A" | "B" };
}

/** What {@link writePeftAdapter} writes. */
export interface PeftAdapterSpec {
  /** Written as `base_model_name_or_path`. */
  baseModelName: string;
  rank: number;
  /** `lora_alpha`; the update is (alpha / rank) * B A. */
  alpha: number;
  /** Defaults to the modules present in `tensors`. */
  targetModules?: readonly PeftTargetModule[];
  /** LoRA factors keyed by `peftKeyFor` names. */
  tensors: ReadonlyMap<string, TensorToWrite>;
  /** Storage format of the weights. Default F32. */
  dtype?: FloatDtype;
  /** Extra safetensors metadata (string values; PEFT ignores it). `format: "pt"` is always set. */
  metadata?: Readonly<Record<string, string>>;
}

/** A PEFT adapter folder read back. */
export interface PeftAdapter {
  baseModelName: string;
  rank: number;
  alpha: number;
  targetModules: PeftTargetModule[];
  /** Keyed by canonical `peftKeyFor` names. */
  tensors: Map<string, LoadedTensor>;
  /** The whole `adapter_config.json`. */
  config: Record<string, unknown>;
  /** The safetensors `__metadata__` of the weights file. */
  metadata: Record<string, string>;
}

interface CheckedPair {
  a?: readonly number[];
  b?: readonly number[];
}

/**
 * Check names, rank consistency (A [rank, in], B [out, rank]) and that every module has both
 * factors. Returns the modules present.
 */
function checkLoraTensors(
  tensors: ReadonlyMap<string, { shape: readonly number[] }>,
  rank: number,
  file: string,
): PeftTargetModule[] {
  const pairs = new Map<string, CheckedPair>();
  const modules = new Set<PeftTargetModule>();
  for (const [key, t] of tensors) {
    const k = parsePeftKey(key);
    if (!k) {
      throw new ModelFileError(
        file,
        `tensor "${key}" is not a LoRA factor name the engine knows (expected e.g. "${peftKeyFor(0, "q_proj", "A")}" or "${peftKeyFor(null, "lm_head", "B")}")`,
        key,
      );
    }
    if (t.shape.length !== 2)
      throw new ModelFileError(
        file,
        `tensor "${key}" must be 2-D, has shape ${JSON.stringify(t.shape)}`,
        key,
      );
    const rankDim = k.factor === "A" ? t.shape[0] : t.shape[1];
    if (rankDim !== rank) {
      const want = k.factor === "A" ? "[rank, in_features]" : "[out_features, rank]";
      throw new ModelFileError(
        file,
        `tensor "${key}" has shape ${JSON.stringify(t.shape)}; lora_${k.factor} must be ${want} with rank ${rank}`,
        key,
      );
    }
    const id = `${k.layer}:${k.module}`;
    const p = pairs.get(id) ?? {};
    if (k.factor === "A") p.a = t.shape;
    else p.b = t.shape;
    pairs.set(id, p);
    modules.add(k.module);
  }
  for (const [id, p] of pairs) {
    const [layerStr, module] = id.split(":") as [string, PeftTargetModule];
    const layer = layerStr === "null" ? null : Number(layerStr);
    if (!p.a || !p.b) {
      const missing = peftKeyFor(layer, module, p.a ? "B" : "A");
      throw new ModelFileError(
        file,
        `missing tensor "${missing}" (every LoRA module needs lora_A and lora_B)`,
        missing,
      );
    }
  }
  const order: readonly string[] = [...LAYER_MODULES, "lm_head"];
  return [...modules].sort((x, y) => order.indexOf(x) - order.indexOf(y));
}

/**
 * Write a PEFT-compatible LoRA adapter folder: `adapter_config.json` (peft_type LORA, r,
 * lora_alpha, target_modules, base_model_name_or_path, task_type CAUSAL_LM, ...) and
 * `adapter_model.safetensors` with PEFT tensor names. Loadable with
 * `PeftModel.from_pretrained(base, dir)` and by vLLM/SGLang LoRA loaders. Each file is written
 * atomically; wrap the call in `writeDirAtomic` to make the folder appear atomically as a whole.
 */
export async function writePeftAdapter(dir: string, spec: PeftAdapterSpec): Promise<void> {
  if (!Number.isInteger(spec.rank) || spec.rank < 1) {
    throw new ModelFileError(dir, `rank must be a positive integer, got ${spec.rank}`, "rank");
  }
  if (!(typeof spec.alpha === "number" && spec.alpha > 0 && Number.isFinite(spec.alpha))) {
    throw new ModelFileError(dir, `alpha must be a positive number, got ${spec.alpha}`, "alpha");
  }
  if (!spec.baseModelName)
    throw new ModelFileError(dir, "baseModelName must be a non-empty string", "baseModelName");
  const present = checkLoraTensors(spec.tensors, spec.rank, dir);
  const targets = spec.targetModules ? [...spec.targetModules] : present;
  for (const m of present) {
    if (!targets.includes(m)) {
      throw new ModelFileError(
        dir,
        `tensors include ${m} LoRA factors but targetModules ${JSON.stringify(targets)} does not list "${m}"`,
        "targetModules",
      );
    }
  }
  for (const m of targets) {
    if (m !== "lm_head" && !LAYER_MODULES.includes(m)) {
      throw new ModelFileError(
        dir,
        `unknown target module "${m}"; use ${[...LAYER_MODULES, "lm_head"].join(", ")}`,
        "targetModules",
      );
    }
  }
  const config = {
    alpha_pattern: {},
    auto_mapping: null,
    base_model_name_or_path: spec.baseModelName,
    bias: "none",
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    layers_pattern: null,
    layers_to_transform: null,
    lora_alpha: spec.alpha,
    lora_dropout: 0.0,
    modules_to_save: null,
    peft_type: "LORA",
    r: spec.rank,
    rank_pattern: {},
    revision: null,
    target_modules: targets,
    task_type: "CAUSAL_LM",
    use_dora: false,
    use_rslora: false,
  };
  await mkdir(dir, { recursive: true });
  await writeSafetensors(
    join(dir, PEFT_WEIGHTS_FILE),
    spec.tensors,
    { ...spec.metadata, format: "pt" },
    { dtype: spec.dtype ?? "F32" },
  );
  await writeJsonAtomic(join(dir, PEFT_CONFIG_FILE), config);
}

/**
 * Read a PEFT LoRA adapter folder (as written by {@link writePeftAdapter}, PEFT's
 * `save_pretrained`, or a Tinker checkpoint download). Tensor names are canonicalised to
 * `peftKeyFor` form. Adapters the engine cannot apply faithfully (DoRA, rsLoRA, per-module
 * rank/alpha patterns, bias training) are rejected.
 */
export async function readPeftAdapter(dir: string): Promise<PeftAdapter> {
  const configPath = join(dir, PEFT_CONFIG_FILE);
  let config: Record<string, unknown>;
  try {
    config = JSON.parse(await readFile(configPath, "utf8")) as Record<string, unknown>;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT")
      throw new ModelFileError(
        configPath,
        "file not found; a PEFT adapter folder needs adapter_config.json and adapter_model.safetensors",
      );
    throw new ModelFileError(configPath, `not valid JSON (${(err as Error).message})`);
  }
  if (config.peft_type !== "LORA") {
    throw new ModelFileError(
      configPath,
      `peft_type ${JSON.stringify(config.peft_type)} is not supported; only "LORA"`,
      "peft_type",
    );
  }
  const rank = config.r;
  if (!Number.isInteger(rank) || (rank as number) < 1)
    throw new ModelFileError(
      configPath,
      `"r" must be a positive integer, got ${JSON.stringify(rank)}`,
      "r",
    );
  const alpha = config.lora_alpha;
  if (typeof alpha !== "number" || !(alpha > 0))
    throw new ModelFileError(
      configPath,
      `"lora_alpha" must be a positive number, got ${JSON.stringify(alpha)}`,
      "lora_alpha",
    );
  for (const key of ["use_dora", "use_rslora"]) {
    if (config[key] === true)
      throw new ModelFileError(
        configPath,
        `${key}: true is not supported by the local engine`,
        key,
      );
  }
  for (const key of ["rank_pattern", "alpha_pattern"]) {
    const v = config[key];
    if (v && typeof v === "object" && Object.keys(v).length > 0) {
      throw new ModelFileError(
        configPath,
        `${key} (per-module rank/alpha) is not supported by the local engine`,
        key,
      );
    }
  }
  if (config.bias !== undefined && config.bias !== "none") {
    throw new ModelFileError(
      configPath,
      `bias ${JSON.stringify(config.bias)} is not supported; only "none"`,
      "bias",
    );
  }
  const weightsPath = join(dir, PEFT_WEIGHTS_FILE);
  const { metadata } = await readSafetensorsHeader(weightsPath);
  const raw = await readSafetensors(weightsPath);
  const tensors = new Map<string, LoadedTensor>();
  for (const [key, t] of raw) {
    const k = parsePeftKey(key);
    tensors.set(k ? peftKeyFor(k.layer, k.module, k.factor) : key, t);
  }
  const modules = checkLoraTensors(tensors, rank as number, weightsPath);
  const declared = config.target_modules;
  const targetModules = Array.isArray(declared)
    ? (declared.filter((m) => typeof m === "string") as PeftTargetModule[])
    : modules;
  return {
    baseModelName:
      typeof config.base_model_name_or_path === "string" ? config.base_model_name_or_path : "",
    rank: rank as number,
    alpha,
    targetModules,
    tensors,
    config,
    metadata,
  };
}

/**
 * Check that an adapter fits a base model: every factor's in/out features match the projection it
 * adapts and its layer exists. Throws ModelFileError naming the tensor.
 */
export function checkPeftAdapterFits(
  adapter: Pick<PeftAdapter, "tensors" | "rank">,
  config: ModelConfig,
  source = "adapter",
): void {
  for (const [key, t] of adapter.tensors) {
    const k = parsePeftKey(key);
    if (!k) throw new ModelFileError(source, `tensor "${key}" is not a LoRA factor name`, key);
    let outIn: [number, number];
    if (k.module === "lm_head") outIn = [config.vocabSize, config.hiddenSize];
    else {
      if ((k.layer as number) >= config.numLayers) {
        throw new ModelFileError(
          source,
          `tensor "${key}" adapts layer ${k.layer} but the base model has ${config.numLayers} layers`,
          key,
        );
      }
      outIn = projectionShape(config, k.module);
    }
    const want = k.factor === "A" ? [adapter.rank, outIn[1]] : [outIn[0], adapter.rank];
    if (t.shape[0] !== want[0] || t.shape[1] !== want[1]) {
      throw new ModelFileError(
        source,
        `tensor "${key}" has shape ${JSON.stringify(t.shape)} but the base model needs ${JSON.stringify(want)}`,
        key,
      );
    }
  }
}
