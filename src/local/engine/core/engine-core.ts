import { TinkerValidationError } from "../../../client/errors.js";
import type {
  ForwardBackwardOutput,
  OptimStepResponse,
  SampleResponse,
} from "../../../client/types/outputs.js";
import type { AdamParams, LossFnConfig, SamplingParams } from "../../../client/types/params.js";
import type {
  AdapterInfo,
  BaseModelInfo,
  EngineSampleRequest,
  ResolvedLoraConfig,
} from "../api.js";
import { loadHfModelFolder, readHfConfig } from "../io/hf-folder.js";
import { resolveModelFolder } from "../io/hf-hub.js";
import { getPreset, isPreset, listPresets, type PresetTokenizerOptions } from "../io/presets.js";
import type { Kernels } from "../kernels/types.js";
import type { ModelConfig } from "../model/config.js";
import { LoraAdapter } from "../model/lora.js";
import { Transformer } from "../model/transformer.js";
import { initRandomWeights, loadBaseWeights, type NamedTensor } from "../model/weights.js";
import { type Decode, DecodeSession, type SampleRequest } from "../sampling/sampler.js";
import { adamWStep } from "../train/adamw.js";
import type { EngineDatum } from "../train/datum.js";
import { forwardBackward } from "../train/forward-backward.js";
import { readAdapterFolder, writeAdapterFolder } from "./adapter-files.js";
import { loadDecoder } from "./decoder.js";
import { modelMemory } from "./memory.js";
import type { EngineSampling } from "./request-queue.js";

/** A base model given in memory (tests, benchmarks, custom presets). */
export interface InMemoryModel {
  name: string;
  config: ModelConfig;
  /** HF-named weights; when absent the weights are `initRandomWeights(config, seed ?? 0)`. */
  tensors?: ReadonlyMap<string, NamedTensor>;
  seed?: number;
  tokenizerDir?: string;
  tokenizerId?: string;
}

/** Options of the engine core (structured-cloneable, so they can cross into the worker). */
export interface EngineCoreOptions {
  /**
   * Which built-in presets (tiny-bytes, tiny-qwen3) to serve: `true` (default) for all, `false` or
   * `[]` for none, or a list of names (`createLocalEngine` rejects unknown names).
   */
  presets?: boolean | readonly string[];
  /** Hugging Face model folders by the name clients use. */
  modelDirs?: Readonly<Record<string, string>>;
  /** Models defined in memory. */
  models?: InMemoryModel[];
  /** Resolve other names as a folder path or a hub repo id (local HF cache, or download). Default true. */
  resolveUnknown?: boolean;
  /** Where preset tokenizers come from. */
  tokenizer?: PresetTokenizerOptions;
}

interface LoadedBase {
  info: BaseModelInfo;
  model: Transformer;
  /** Loaded on the first request with stop strings (building a large BPE tokenizer takes seconds). */
  decode: Promise<Decode> | undefined;
}

interface AdapterEntry {
  baseModel: string;
  adapter: LoraAdapter;
}

/**
 * The engine's state and operations, synchronous where the work is compute: base models (loaded
 * once, shared read-only by all adapters) and named LoRA adapters. The worker thread owns one; it
 * can also run in-process.
 */
export class EngineCore {
  private readonly bases = new Map<string, Promise<LoadedBase>>();
  private readonly adapters = new Map<string, AdapterEntry>();

  constructor(
    readonly kernels: Kernels,
    private readonly opts: EngineCoreOptions = {},
  ) {}

  /** Base models this engine knows by name (configs only; weights are loaded on first use). */
  async listBaseModels(): Promise<BaseModelInfo[]> {
    const out = this.knownModels();
    for (const [name, dir] of Object.entries(this.opts.modelDirs ?? {})) {
      if (!out.some((m) => m.name === name))
        out.push(infoOf(name, await readHfConfig(dir), undefined, dir));
    }
    return out;
  }

  private knownNames(): string {
    return [
      ...this.knownModels().map((m) => m.name),
      ...Object.keys(this.opts.modelDirs ?? {}),
    ].join(", ");
  }

  private knownModels(): BaseModelInfo[] {
    const out: BaseModelInfo[] = [];
    for (const m of this.opts.models ?? [])
      out.push(infoOf(m.name, m.config, m.tokenizerId, m.tokenizerDir));
    for (const p of listPresets()) {
      if (this.servesPreset(p.name)) out.push(infoOf(p.name, p.config, p.tokenizerId, undefined));
    }
    return out;
  }

  private servesPreset(name: string): boolean {
    const presets = this.opts.presets ?? true;
    return isPreset(name) && (typeof presets === "boolean" ? presets : presets.includes(name));
  }

  /** Load (once) and describe a base model. */
  async getBaseModel(name: string): Promise<BaseModelInfo> {
    return (await this.base(name)).info;
  }

  private base(name: string): Promise<LoadedBase> {
    let p = this.bases.get(name);
    if (!p) {
      p = this.loadBase(name);
      this.bases.set(name, p);
      p.catch(() => this.bases.delete(name));
    }
    return p;
  }

  private async loadBase(name: string): Promise<LoadedBase> {
    const K = this.kernels;
    const mem = this.opts.models?.find((m) => m.name === name);
    if (mem) {
      const tensors = mem.tensors ?? initRandomWeights(mem.config, mem.seed ?? 0);
      const model = new Transformer(K, mem.config, loadBaseWeights(K, mem.config, tensors));
      return {
        info: infoOf(name, mem.config, mem.tokenizerId, mem.tokenizerDir),
        model,
        decode: undefined,
      };
    }
    if (this.servesPreset(name)) {
      const p = getPreset(name);
      const model = new Transformer(
        K,
        p.config,
        loadBaseWeights(K, p.config, initRandomWeights(p.config, p.seed)),
      );
      let tokenizerDir: string | undefined;
      try {
        tokenizerDir = await p.tokenizerDir(this.opts.tokenizer);
      } catch {
        // Without its tokenizer the model still trains and samples; only stop strings are refused.
      }
      return {
        info: infoOf(name, p.config, p.tokenizerId, tokenizerDir),
        model,
        decode: undefined,
      };
    }
    let dir = this.opts.modelDirs?.[name];
    if (!dir && (this.opts.resolveUnknown ?? true)) {
      try {
        dir = await resolveModelFolder(name);
      } catch (err) {
        throw new TinkerValidationError(
          `unknown base model "${name}": not one of ${this.knownNames()} and not loadable as a model folder or hub repo (${(err as Error).message})`,
          "base_model",
        );
      }
    }
    if (!dir) {
      throw new TinkerValidationError(
        `unknown base model "${name}"; available: ${this.knownNames()}`,
        "base_model",
      );
    }
    const folder = await loadHfModelFolder(dir);
    const model = new Transformer(
      K,
      folder.config,
      loadBaseWeights(K, folder.config, folder.weights),
    );
    return {
      info: infoOf(name, folder.config, undefined, folder.tokenizerDir),
      model,
      decode: undefined,
    };
  }

  /** A fresh adapter on `baseModel` (an existing adapter of the same id is replaced). */
  async createAdapter(
    adapterId: string,
    baseModel: string,
    lora: ResolvedLoraConfig,
  ): Promise<void> {
    const b = await this.base(baseModel);
    const adapter = LoraAdapter.create(this.kernels, b.model.config, lora);
    this.dropAdapter(adapterId);
    this.adapters.set(adapterId, { baseModel, adapter });
  }

  dropAdapter(adapterId: string): void {
    const e = this.adapters.get(adapterId);
    if (e) {
      e.adapter.dispose(this.kernels);
      this.adapters.delete(adapterId);
    }
  }

  hasAdapter(adapterId: string): boolean {
    return this.adapters.has(adapterId);
  }

  private entry(adapterId: string): AdapterEntry {
    const e = this.adapters.get(adapterId);
    if (!e)
      throw new TinkerValidationError(
        `unknown model "${adapterId}": create it or load its weights first`,
        "model_id",
      );
    return e;
  }

  /** Forward (and backward unless `forwardOnly`); gradients accumulate until `optimStep`. */
  async forwardBackward(
    adapterId: string,
    data: readonly EngineDatum[],
    lossFn: string,
    lossFnConfig: LossFnConfig | undefined,
    forwardOnly: boolean,
  ): Promise<ForwardBackwardOutput> {
    const e = this.entry(adapterId);
    const b = await this.base(e.baseModel);
    return forwardBackward(
      b.model,
      e.adapter,
      data,
      lossFn,
      lossFnConfig,
      forwardOnly,
      b.info.maxContextLength,
    );
  }

  optimStep(adapterId: string, adam: Required<AdamParams>): OptimStepResponse {
    const e = this.entry(adapterId);
    return { metrics: adamWStep(this.kernels, e.adapter, adam) };
  }

  async saveAdapter(adapterId: string, dir: string, opts: { optimizer: boolean }): Promise<void> {
    const e = this.entry(adapterId);
    await writeAdapterFolder(dir, e.adapter, e.baseModel, opts.optimizer);
  }

  async loadAdapter(
    adapterId: string,
    dir: string,
    opts: { optimizer: boolean },
  ): Promise<AdapterInfo> {
    const folder = await readAdapterFolder(dir, opts.optimizer);
    if (!folder.baseModel)
      throw new TinkerValidationError(`${dir}: the adapter does not name its base model`, "path");
    const b = await this.base(folder.baseModel);
    // Build and fill a new adapter first, so a bad folder leaves any existing adapter untouched.
    const adapter = LoraAdapter.create(this.kernels, b.model.config, folder.lora);
    try {
      adapter.importWeights(folder.weights);
      if (folder.optimizer)
        adapter.importOptimizer(folder.optimizer.tensors, folder.optimizer.step);
    } catch (err) {
      adapter.dispose(this.kernels);
      throw err;
    }
    this.dropAdapter(adapterId);
    this.adapters.set(adapterId, { baseModel: folder.baseModel, adapter });
    return { baseModel: folder.baseModel, lora: { ...folder.lora } };
  }

  /** Adapter weights and optimizer state as named arrays (copies). */
  exportAdapterState(adapterId: string): {
    baseModel: string;
    lora: ResolvedLoraConfig;
    weights: Map<string, NamedTensor>;
    optimizer: { tensors: Map<string, NamedTensor>; step: number };
  } {
    const e = this.entry(adapterId);
    return {
      baseModel: e.baseModel,
      lora: { ...e.adapter.lora },
      weights: e.adapter.exportWeights(),
      optimizer: e.adapter.exportOptimizer(),
    };
  }

  /** One sample request on its own (the request queue batches concurrent ones through `openSampling`). */
  async sample(req: EngineSampleRequest): Promise<SampleResponse> {
    const session = await this.openSampling(req);
    try {
      let result: SampleResponse | Error = new Error("sampling did not complete");
      session.admit([req], (_, res) => {
        result = res;
      });
      while (session.live) session.step();
      if (result instanceof Error) throw result;
      return result;
    } finally {
      session.dispose();
    }
  }

  /**
   * A decode session for sample requests on `first`'s base model and adapter, which others on the
   * same pair can join between steps (the engine's request queue drives it).
   */
  async openSampling(first: EngineSampleRequest): Promise<EngineSampling> {
    const key = samplingKey(first);
    const { model, adapter, maxContextLength, decode } = await this.samplingTarget(
      first,
      hasStopStrings(first.params.stop),
    );
    const session = new DecodeSession(model, adapter);
    const toSample = (req: EngineSampleRequest) => toSampleRequest(req, maxContextLength, decode);
    return {
      get live() {
        return session.live;
      },
      joinBytes: (req, pendingBytes, pendingCount) => {
        if (samplingKey(req) !== key) return null;
        // Stop strings need the decoder, loaded only when the session's first request wanted it.
        if (hasStopStrings(req.params.stop) && !decode) return null;
        return session.joinBytes(toSample(req), pendingBytes, pendingCount);
      },
      admit: (reqs, done) => session.admit(reqs.map(toSample), done),
      step: () => session.step(),
      dispose: () => session.dispose(),
    };
  }

  /** The model, adapter and (when the base has a tokenizer) text decoder a request samples from. */
  private async samplingTarget(
    req: EngineSampleRequest,
    wantsText: boolean,
  ): Promise<{
    model: Transformer;
    adapter: LoraAdapter | null;
    maxContextLength: number;
    decode: Decode | undefined;
  }> {
    let adapter: LoraAdapter | null = null;
    if (req.adapterId !== undefined) {
      const e = this.entry(req.adapterId);
      if (e.baseModel !== req.baseModel) {
        throw new TinkerValidationError(
          `model "${req.adapterId}" is an adapter of "${e.baseModel}", not of "${req.baseModel}"`,
          "base_model",
        );
      }
      adapter = e.adapter;
    }
    const b = await this.base(req.baseModel);
    // Stop strings need the tokenizer: loaded once per base model, the first time one is asked for.
    let decode: Decode | undefined;
    if (wantsText && b.info.tokenizerDir) {
      b.decode ??= loadDecoder(b.info.tokenizerDir);
      decode = await b.decode;
    }
    return { model: b.model, adapter, maxContextLength: b.info.maxContextLength, decode };
  }

  /** Free every adapter and base model. */
  async close(): Promise<void> {
    for (const id of [...this.adapters.keys()]) this.dropAdapter(id);
    for (const p of this.bases.values()) {
      try {
        (await p).model.dispose();
      } catch {
        // a failed load holds nothing
      }
    }
    this.bases.clear();
    this.kernels.dispose();
  }
}

function toSampleRequest(
  req: EngineSampleRequest,
  maxContextLength: number,
  decode: Decode | undefined,
): SampleRequest {
  return {
    prompt: req.prompt,
    numSamples: req.numSamples,
    params: req.params,
    promptLogprobs: req.promptLogprobs,
    topkPromptLogprobs: req.topkPromptLogprobs,
    maxContextLength,
    ...(decode ? { decode } : {}),
  };
}

function samplingKey(req: EngineSampleRequest): string {
  return `${req.baseModel}\u0000${req.adapterId ?? ""}`;
}

function hasStopStrings(stop: SamplingParams["stop"]): boolean {
  return (
    typeof stop === "string" || (Array.isArray(stop) && stop.some((x) => typeof x === "string"))
  );
}

function infoOf(
  name: string,
  c: ModelConfig,
  tokenizerId: string | undefined,
  tokenizerDir: string | undefined,
): BaseModelInfo {
  return {
    name,
    arch: c.arch,
    vocabSize: c.vocabSize,
    maxContextLength: c.maxPositionEmbeddings,
    memory: modelMemory(c),
    ...(tokenizerId ? { tokenizerId } : {}),
    ...(tokenizerDir ? { tokenizerDir } : {}),
  };
}
