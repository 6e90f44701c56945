import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { TinkerValidationError } from "../../../client/errors.js";
import type { ResolvedLoraConfig } from "../api.js";
import { ATTENTION_PROJECTIONS, MLP_PROJECTIONS } from "../io/hf-folder.js";
import { PEFT_CONFIG_FILE, PEFT_WEIGHTS_FILE, writePeftAdapter } from "../io/peft.js";
import { readSafetensors, readSafetensorsHeader, writeSafetensors } from "../io/safetensors.js";
import { LORA_ALPHA, type LoraAdapter } from "../model/lora.js";
import type { NamedTensor } from "../model/weights.js";

export const ADAPTER_WEIGHTS_FILE = PEFT_WEIGHTS_FILE;
export const ADAPTER_CONFIG_FILE = PEFT_CONFIG_FILE;
export const OPTIMIZER_FILE = "optimizer.safetensors";

/**
 * Write `adapter` into `dir` as a PEFT LoRA folder (`adapter_model.safetensors` +
 * `adapter_config.json`), plus `optimizer.safetensors` (AdamW moments, step in the metadata) when
 * `optimizer` is set. The engine's own facts (base model, seed, train flags) ride in the
 * safetensors metadata, which PEFT ignores. Each file is written atomically (see
 * {@link writePeftAdapter}).
 */
export async function writeAdapterFolder(
  dir: string,
  adapter: LoraAdapter,
  baseModel: string,
  optimizer: boolean,
): Promise<void> {
  const lora = adapter.lora;
  await writePeftAdapter(dir, {
    baseModelName: baseModel,
    rank: lora.rank,
    alpha: LORA_ALPHA,
    targetModules: [
      ...(lora.trainAttn ? ATTENTION_PROJECTIONS : []),
      ...(lora.trainMlp ? MLP_PROJECTIONS : []),
      ...(lora.trainUnembed ? (["lm_head"] as const) : []),
    ],
    tensors: adapter.exportWeights(),
    metadata: {
      base_model: baseModel,
      lora_rank: String(lora.rank),
      lora_seed: String(lora.seed),
      train_attn: String(lora.trainAttn),
      train_mlp: String(lora.trainMlp),
      train_unembed: String(lora.trainUnembed),
    },
  });
  if (optimizer) {
    const { tensors, step } = adapter.exportOptimizer();
    await writeSafetensors(join(dir, OPTIMIZER_FILE), tensors, {
      format: "pt",
      step: String(step),
    });
  }
}

/** What `readAdapterFolder` returns. */
export interface AdapterFolder {
  baseModel: string;
  lora: ResolvedLoraConfig;
  weights: Map<string, NamedTensor>;
  optimizer?: { tensors: Map<string, NamedTensor>; step: number };
}

/**
 * Read a folder written by `writeAdapterFolder`, or a PEFT LoRA folder with the same key names
 * (a `lora_alpha` other than {@link LORA_ALPHA} is folded into B).
 */
export async function readAdapterFolder(dir: string, optimizer: boolean): Promise<AdapterFolder> {
  const weightsPath = join(dir, ADAPTER_WEIGHTS_FILE);
  const header = await readSafetensorsHeader(weightsPath);
  const weights = await readSafetensors(weightsPath);
  const meta = header.metadata;
  let config: {
    r?: unknown;
    lora_alpha?: unknown;
    base_model_name_or_path?: unknown;
    target_modules?: unknown;
  } = {};
  try {
    config = JSON.parse(await readFile(join(dir, ADAPTER_CONFIG_FILE), "utf8"));
  } catch {
    // The safetensors metadata is enough when it is ours.
  }
  const targets = Array.isArray(config.target_modules) ? (config.target_modules as string[]) : [];
  const rank = Number(meta.lora_rank ?? config.r);
  if (!Number.isInteger(rank) || rank < 1) {
    throw new TinkerValidationError(
      `${dir}: cannot tell the LoRA rank (no lora_rank metadata and no "r" in ${ADAPTER_CONFIG_FILE})`,
      "path",
    );
  }
  const flag = (key: string, fallback: boolean) =>
    meta[key] === undefined ? fallback : meta[key] === "true";
  const lora: ResolvedLoraConfig = {
    rank,
    seed: Number(meta.lora_seed ?? 0),
    trainAttn: flag("train_attn", targets.includes("q_proj")),
    trainMlp: flag("train_mlp", targets.includes("gate_proj")),
    trainUnembed: flag("train_unembed", targets.includes("lm_head")),
  };
  const baseModel = String(meta.base_model ?? config.base_model_name_or_path ?? "");
  // The engine applies alpha = LORA_ALPHA; an adapter trained with another alpha is converted
  // exactly by scaling B (the update is (alpha / r) B A).
  const alpha = typeof config.lora_alpha === "number" ? config.lora_alpha : LORA_ALPHA;
  if (alpha !== LORA_ALPHA) {
    for (const [name, t] of weights) {
      if (!name.endsWith(".lora_B.weight")) continue;
      for (let i = 0; i < t.data.length; i++) t.data[i] = (t.data[i]! * alpha) / LORA_ALPHA;
    }
  }
  const out: AdapterFolder = { baseModel, lora, weights };
  if (optimizer) {
    const path = join(dir, OPTIMIZER_FILE);
    const h = await readSafetensorsHeader(path);
    out.optimizer = { tensors: await readSafetensors(path), step: Number(h.metadata.step ?? 0) };
  }
  return out;
}
