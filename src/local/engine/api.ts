import type { Datum } from "../../client/types/datum.js";
import type {
  ForwardBackwardOutput,
  OptimStepResponse,
  SampleResponse,
} from "../../client/types/outputs.js";
import type {
  AdamParams,
  LoraConfig,
  LossFnConfig,
  LossFnType,
  SamplingParams,
} from "../../client/types/params.js";
import type { ModelMemory } from "./core/memory.js";

/**
 * The local engine as the server (and in-process users) see it. Every method is async because the
 * engine computes on a worker thread; the main thread only moves messages.
 *
 * Adapters are named by the caller (the server uses the Tinker model id). A sampler is an adapter
 * loaded read-only from saved weights, or the bare base model.
 */
export interface LocalEngine {
  /** Base models this engine can serve (presets plus configured model folders). */
  listBaseModels(): Promise<BaseModelInfo[]>;
  /** Info on one base model, loading it if needed. Throws TinkerValidationError for an unknown name. */
  getBaseModel(name: string): Promise<BaseModelInfo>;

  /** A fresh LoRA adapter on `baseModel`, initialised from `lora.seed`. */
  createAdapter(adapterId: string, baseModel: string, lora: ResolvedLoraConfig): Promise<void>;
  /** Forget an adapter and free its memory. */
  dropAdapter(adapterId: string): Promise<void>;
  hasAdapter(adapterId: string): Promise<boolean>;

  /**
   * Forward (and unless `forwardOnly`, backward: gradients accumulate until `optimStep`).
   * Validates every datum before touching any state.
   */
  forwardBackward(
    adapterId: string,
    data: readonly Datum[],
    lossFn: LossFnType,
    lossFnConfig: LossFnConfig | undefined,
    forwardOnly: boolean,
  ): Promise<ForwardBackwardOutput>;
  /** AdamW step on the accumulated gradients, then zero them. */
  optimStep(adapterId: string, adam: Required<AdamParams>): Promise<OptimStepResponse>;

  /**
   * Write the adapter into `dir` (created; written atomically by the caller's choice of a temp dir):
   * `adapter_model.safetensors` + `adapter_config.json` (PEFT-compatible), and with `optimizer`
   * also `optimizer.safetensors` (Adam moments and step).
   */
  saveAdapter(adapterId: string, dir: string, opts: { optimizer: boolean }): Promise<void>;
  /**
   * Load weights (and optionally optimizer state) saved by `saveAdapter` into `adapterId`,
   * creating the adapter if it does not exist.
   */
  loadAdapter(adapterId: string, dir: string, opts: { optimizer: boolean }): Promise<AdapterInfo>;

  /** Sample from a base model with an optional adapter (an adapter id, loaded or created). */
  sample(request: EngineSampleRequest): Promise<SampleResponse>;

  /** Stop worker threads. */
  close(): Promise<void>;
}

export interface BaseModelInfo {
  /** The name clients use, e.g. "tiny-bytes" or "Qwen/Qwen3-0.6B". */
  name: string;
  arch: "qwen3" | "llama";
  vocabSize: number;
  maxContextLength: number;
  /** Hugging Face tokenizer id for `get_info`, when the model has one. */
  tokenizerId?: string;
  /** Local folder holding `tokenizer.json` / `tokenizer_config.json`, when known. */
  tokenizerDir?: string;
  /** Heap figures for admission control (absent: requests are not checked up front). */
  memory?: ModelMemory;
}

export interface ResolvedLoraConfig {
  rank: number;
  seed: number;
  trainUnembed: boolean;
  trainMlp: boolean;
  trainAttn: boolean;
}

export interface AdapterInfo {
  baseModel: string;
  lora: ResolvedLoraConfig;
}

export interface EngineSampleRequest {
  baseModel: string;
  /** Sample through this adapter; omit for the base model. */
  adapterId?: string;
  prompt: Int32Array;
  numSamples: number;
  params: SamplingParams;
  promptLogprobs: boolean;
  topkPromptLogprobs: number;
}

export type { ModelMemory } from "./core/memory.js";

/** Re-exported for callers that only need the LoRA defaults. */
export type { LoraConfig };
