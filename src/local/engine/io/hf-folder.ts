import { readFile, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { ModelConfig } from "../model/config.js";
import { ModelFileError } from "./errors.js";
import { parseHfConfig } from "./hf-config.js";
import { type LoadedTensor, readSafetensorsFolder } from "./safetensors.js";

/** The seven linear projections of a decoder layer, in Hugging Face naming. */
export type LayerProjection =
  | "q_proj"
  | "k_proj"
  | "v_proj"
  | "o_proj"
  | "gate_proj"
  | "up_proj"
  | "down_proj";

export const ATTENTION_PROJECTIONS: readonly LayerProjection[] = [
  "q_proj",
  "k_proj",
  "v_proj",
  "o_proj",
];
export const MLP_PROJECTIONS: readonly LayerProjection[] = ["gate_proj", "up_proj", "down_proj"];

/** Hugging Face weight name of a layer's projection, e.g. `model.layers.3.self_attn.q_proj.weight`. */
export function projectionWeightName(layer: number, proj: LayerProjection): string {
  const block = MLP_PROJECTIONS.includes(proj) ? "mlp" : "self_attn";
  return `model.layers.${layer}.${block}.${proj}.weight`;
}

/** `[out_features, in_features]` of a projection (PyTorch `nn.Linear` layout, y = x W^T). */
export function projectionShape(config: ModelConfig, proj: LayerProjection): [number, number] {
  const d = config.hiddenSize;
  const q = config.numHeads * config.headDim;
  const kv = config.numKvHeads * config.headDim;
  const ff = config.intermediateSize;
  switch (proj) {
    case "q_proj":
      return [q, d];
    case "k_proj":
    case "v_proj":
      return [kv, d];
    case "o_proj":
      return [d, q];
    case "gate_proj":
    case "up_proj":
      return [ff, d];
    case "down_proj":
      return [d, ff];
  }
}

/**
 * Every weight a checkpoint of `config` must contain, with its shape, in Hugging Face naming:
 * `model.embed_tokens.weight` [V, d]; per layer `input_layernorm`, `self_attn.{q,k,v,o}_proj`,
 * `self_attn.{q,k}_norm` (Qwen3), `post_attention_layernorm`, `mlp.{gate,up,down}_proj`;
 * `model.norm.weight`; `lm_head.weight` [V, d] unless embeddings are tied.
 */
export function hfWeightShapes(config: ModelConfig): Map<string, number[]> {
  const d = config.hiddenSize;
  const m = new Map<string, number[]>();
  m.set("model.embed_tokens.weight", [config.vocabSize, d]);
  for (let i = 0; i < config.numLayers; i++) {
    m.set(`model.layers.${i}.input_layernorm.weight`, [d]);
    for (const p of ATTENTION_PROJECTIONS)
      m.set(projectionWeightName(i, p), projectionShape(config, p));
    if (config.qkNorm) {
      m.set(`model.layers.${i}.self_attn.q_norm.weight`, [config.headDim]);
      m.set(`model.layers.${i}.self_attn.k_norm.weight`, [config.headDim]);
    }
    m.set(`model.layers.${i}.post_attention_layernorm.weight`, [d]);
    for (const p of MLP_PROJECTIONS) m.set(projectionWeightName(i, p), projectionShape(config, p));
  }
  m.set("model.norm.weight", [d]);
  if (!config.tieWordEmbeddings) m.set("lm_head.weight", [config.vocabSize, d]);
  return m;
}

/**
 * Check that `weights` has every tensor of `config` with the right shape; throws a ModelFileError
 * naming the first missing or mis-shaped tensor (and how many more there are). Returns the names of
 * tensors present but not used by the engine.
 */
export function checkHfWeights(
  config: ModelConfig,
  weights: ReadonlyMap<string, { shape: readonly number[] }>,
  source: string,
): string[] {
  const expected = hfWeightShapes(config);
  const missing: string[] = [];
  for (const [name, shape] of expected) {
    const t = weights.get(name);
    if (!t) {
      missing.push(name);
      continue;
    }
    if (t.shape.length !== shape.length || t.shape.some((x, i) => x !== shape[i])) {
      throw new ModelFileError(
        source,
        `tensor "${name}" has shape ${JSON.stringify(t.shape)} but config.json implies ${JSON.stringify(shape)}`,
        name,
      );
    }
  }
  if (missing.length > 0) {
    const more =
      missing.length > 1
        ? ` (and ${missing.length - 1} more missing: ${missing.slice(1, 4).join(", ")}${missing.length > 4 ? ", ..." : ""})`
        : "";
    throw new ModelFileError(
      source,
      `missing tensor "${missing[0]}" with shape ${JSON.stringify(expected.get(missing[0] as string))}${more}`,
      missing[0],
    );
  }
  return [...weights.keys()].filter((n) => !expected.has(n));
}

/** A model folder loaded into memory. */
export interface HfModelFolder {
  config: ModelConfig;
  /** Float32 weights keyed by Hugging Face names (see `hfWeightShapes`); extras dropped. */
  weights: Map<string, LoadedTensor>;
  /** Folder holding `tokenizer.json` and `tokenizer_config.json`. */
  tokenizerDir: string;
}

async function readJson(path: string, required: boolean): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") {
      if (!required) return undefined;
      throw new ModelFileError(
        path,
        "file not found; a Hugging Face model folder needs config.json, *.safetensors and tokenizer.json",
      );
    }
    throw err;
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ModelFileError(path, `not valid JSON (${(err as Error).message})`);
  }
}

/** Read `config.json` (and `generation_config.json` when present) of a model folder. */
export async function readHfConfig(dir: string): Promise<ModelConfig> {
  const configPath = join(dir, "config.json");
  const json = await readJson(configPath, true);
  const generationConfig = await readJson(join(dir, "generation_config.json"), false);
  return parseHfConfig(json, { file: configPath, generationConfig });
}

/**
 * Load a Hugging Face model folder: `config.json`, the safetensors weights (single or sharded,
 * F32/F16/BF16 widened to float32) and the tokenizer location. Only the tensors the engine uses
 * are read; each is checked against the shape the config implies.
 */
export async function loadHfModelFolder(dir: string): Promise<HfModelFolder> {
  const root = resolve(dir);
  const config = await readHfConfig(root);
  const tokenizerJson = join(root, "tokenizer.json");
  const isFile = await stat(tokenizerJson).then(
    (s) => s.isFile(),
    () => false,
  );
  if (!isFile) {
    throw new ModelFileError(
      tokenizerJson,
      "file not found; the engine needs the fast-tokenizer file tokenizer.json next to config.json",
    );
  }
  const expected = hfWeightShapes(config);
  const weights = await readSafetensorsFolder(root, { filter: (n) => expected.has(n) });
  checkHfWeights(config, weights, root);
  return { config, weights, tokenizerDir: root };
}
