import type { ModelConfig } from "../model/config.js";
import { ModelFileError } from "./errors.js";

/** `model_type` values `parseHfConfig` accepts. */
export const SUPPORTED_MODEL_TYPES = ["qwen3", "llama"] as const;

const KNOWN_UNSUPPORTED: Record<string, string> = {
  qwen3_moe: "mixture-of-experts layers are not implemented",
  qwen2_moe: "mixture-of-experts layers are not implemented",
  mixtral: "mixture-of-experts layers are not implemented",
  deepseek_v3: "mixture-of-experts layers and MLA attention are not implemented",
  gpt_oss: "mixture-of-experts layers are not implemented",
  qwen2: "Qwen2 uses biases on q/k/v projections, which the engine does not implement",
  qwen3_vl: "vision-language models are not implemented",
};

type Json = Record<string, unknown>;

function num(
  json: Json,
  key: string,
  file: string,
  opts: { int?: boolean; positive?: boolean } = {},
): number {
  const v = json[key];
  if (
    typeof v !== "number" ||
    !Number.isFinite(v) ||
    (opts.int && !Number.isInteger(v)) ||
    (opts.positive && v <= 0)
  ) {
    const kind = opts.int ? "a positive integer" : "a positive number";
    throw new ModelFileError(file, `"${key}" must be ${kind}, got ${JSON.stringify(v)}`, key);
  }
  return v;
}

function optNum(
  json: Json,
  key: string,
  file: string,
  fallback: number,
  opts: { int?: boolean } = {},
): number {
  return json[key] === undefined || json[key] === null
    ? fallback
    : num(json, key, file, { ...opts, positive: true });
}

function tokenIds(v: unknown, key: string, file: string): number[] {
  if (v === undefined || v === null) return [];
  const list = Array.isArray(v) ? v : [v];
  if (!list.every((x) => Number.isInteger(x) && (x as number) >= 0)) {
    throw new ModelFileError(
      file,
      `"${key}" must be a token id or a list of token ids, got ${JSON.stringify(v)}`,
      key,
    );
  }
  return list as number[];
}

/**
 * Turn a Hugging Face `config.json` (already parsed) into the engine's {@link ModelConfig}.
 * Supports `model_type` "qwen3" (QK-norm, explicit `head_dim`) and "llama" (Llama 3 / 3.1 / 3.2,
 * including `rope_scaling.rope_type: "llama3"`). `generationConfig` (from `generation_config.json`)
 * contributes extra end-of-sequence ids. Anything the engine cannot run faithfully (MoE, biases,
 * sliding windows, other RoPE scalings, non-SiLU activations) is rejected with a message naming
 * the key; `file` is used in error messages.
 */
export function parseHfConfig(
  json: unknown,
  opts: { file?: string; generationConfig?: unknown } = {},
): ModelConfig {
  const file = opts.file ?? "config.json";
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    throw new ModelFileError(file, "config must be a JSON object");
  }
  const c = json as Json;
  const modelType = c.model_type;
  if (modelType !== "qwen3" && modelType !== "llama") {
    const why = typeof modelType === "string" ? KNOWN_UNSUPPORTED[modelType] : undefined;
    throw new ModelFileError(
      file,
      `model_type ${JSON.stringify(modelType)} is not supported${why ? ` (${why})` : ""}; the local engine runs dense decoder-only models of model_type ${SUPPORTED_MODEL_TYPES.map((t) => `"${t}"`).join(" or ")} (Qwen3, Llama 3.x)`,
      "model_type",
    );
  }
  const arch = modelType;
  const hiddenSize = num(c, "hidden_size", file, { int: true, positive: true });
  const numHeads = num(c, "num_attention_heads", file, { int: true, positive: true });
  const numKvHeads = optNum(c, "num_key_value_heads", file, numHeads, { int: true });
  if (numHeads % numKvHeads !== 0) {
    throw new ModelFileError(
      file,
      `num_attention_heads (${numHeads}) must be a multiple of num_key_value_heads (${numKvHeads})`,
      "num_key_value_heads",
    );
  }
  let headDim: number;
  if ((c.head_dim === undefined || c.head_dim === null) && arch === "qwen3") {
    headDim = 128; // Qwen3Config's default
  } else if (c.head_dim === undefined || c.head_dim === null) {
    if (hiddenSize % numHeads !== 0) {
      throw new ModelFileError(
        file,
        `hidden_size (${hiddenSize}) is not divisible by num_attention_heads (${numHeads}) and no head_dim is given`,
        "head_dim",
      );
    }
    headDim = hiddenSize / numHeads;
  } else {
    headDim = num(c, "head_dim", file, { int: true, positive: true });
  }
  if (headDim % 2 !== 0)
    throw new ModelFileError(file, `head_dim (${headDim}) must be even for RoPE`, "head_dim");

  const act = c.hidden_act ?? "silu";
  if (act !== "silu")
    throw new ModelFileError(
      file,
      `hidden_act ${JSON.stringify(act)} is not supported; only "silu" (SwiGLU)`,
      "hidden_act",
    );
  for (const key of ["attention_bias", "mlp_bias"]) {
    if (c[key] === true)
      throw new ModelFileError(
        file,
        `${key}: true is not supported (the engine's projections have no bias)`,
        key,
      );
  }
  if (c.use_sliding_window === true) {
    throw new ModelFileError(
      file,
      "use_sliding_window: true is not supported (full causal attention only)",
      "use_sliding_window",
    );
  }
  const nPred = c.num_nextn_predict_layers;
  if (typeof nPred === "number" && nPred > 0) {
    throw new ModelFileError(
      file,
      "multi-token-prediction layers are not supported",
      "num_nextn_predict_layers",
    );
  }

  let ropeScaling: ModelConfig["ropeScaling"];
  const rs = c.rope_scaling;
  if (rs !== undefined && rs !== null) {
    if (typeof rs !== "object")
      throw new ModelFileError(file, "rope_scaling must be an object or null", "rope_scaling");
    const r = rs as Json;
    const type = r.rope_type ?? r.type;
    if (type === "default") {
      ropeScaling = undefined;
    } else if (type === "llama3") {
      ropeScaling = {
        factor: num(r, "factor", file, { positive: true }),
        lowFreqFactor: num(r, "low_freq_factor", file, { positive: true }),
        highFreqFactor: num(r, "high_freq_factor", file, { positive: true }),
        originalMaxPositionEmbeddings: num(r, "original_max_position_embeddings", file, {
          int: true,
          positive: true,
        }),
      };
    } else {
      throw new ModelFileError(
        file,
        `rope_scaling type ${JSON.stringify(type)} is not supported; only "llama3" (or none)`,
        "rope_scaling",
      );
    }
  }

  const eos = tokenIds(c.eos_token_id, "eos_token_id", file);
  const gen = opts.generationConfig;
  if (gen && typeof gen === "object") {
    for (const id of tokenIds((gen as Json).eos_token_id, "generation_config.eos_token_id", file)) {
      if (!eos.includes(id)) eos.push(id);
    }
  }
  const bos = tokenIds(c.bos_token_id, "bos_token_id", file);

  const config: ModelConfig = {
    arch,
    vocabSize: num(c, "vocab_size", file, { int: true, positive: true }),
    hiddenSize,
    intermediateSize: num(c, "intermediate_size", file, { int: true, positive: true }),
    numLayers: num(c, "num_hidden_layers", file, { int: true, positive: true }),
    numHeads,
    numKvHeads,
    headDim,
    rmsNormEps: optNum(c, "rms_norm_eps", file, 1e-6),
    // Defaults below are those of transformers' LlamaConfig / Qwen3Config for absent keys.
    ropeTheta: optNum(c, "rope_theta", file, 10000),
    maxPositionEmbeddings: optNum(
      c,
      "max_position_embeddings",
      file,
      arch === "llama" ? 2048 : 32768,
      { int: true },
    ),
    tieWordEmbeddings: c.tie_word_embeddings === true,
    qkNorm: arch === "qwen3",
    eosTokenIds: eos,
  };
  if (ropeScaling) config.ropeScaling = ropeScaling;
  if (bos[0] !== undefined) config.bosTokenId = bos[0];
  return config;
}

/**
 * The inverse of `parseHfConfig`: a `config.json` object transformers would load for this
 * architecture (used to write model folders and presets).
 */
export function toHfConfig(config: ModelConfig): Record<string, unknown> {
  const qwen = config.arch === "qwen3";
  const out: Record<string, unknown> = {
    architectures: [qwen ? "Qwen3ForCausalLM" : "LlamaForCausalLM"],
    model_type: config.arch,
    vocab_size: config.vocabSize,
    hidden_size: config.hiddenSize,
    intermediate_size: config.intermediateSize,
    num_hidden_layers: config.numLayers,
    num_attention_heads: config.numHeads,
    num_key_value_heads: config.numKvHeads,
    head_dim: config.headDim,
    hidden_act: "silu",
    rms_norm_eps: config.rmsNormEps,
    rope_theta: config.ropeTheta,
    max_position_embeddings: config.maxPositionEmbeddings,
    tie_word_embeddings: config.tieWordEmbeddings,
    attention_bias: false,
    torch_dtype: "float32",
  };
  if (!qwen) out.mlp_bias = false;
  out.rope_scaling = config.ropeScaling
    ? {
        rope_type: "llama3",
        factor: config.ropeScaling.factor,
        low_freq_factor: config.ropeScaling.lowFreqFactor,
        high_freq_factor: config.ropeScaling.highFreqFactor,
        original_max_position_embeddings: config.ropeScaling.originalMaxPositionEmbeddings,
      }
    : null;
  if (config.bosTokenId !== undefined) out.bos_token_id = config.bosTokenId;
  if (config.eosTokenIds.length > 0)
    out.eos_token_id =
      config.eosTokenIds.length === 1 ? config.eosTokenIds[0] : [...config.eosTokenIds];
  return out;
}
