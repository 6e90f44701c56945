import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { TinkerValidationError } from "../../src/client/errors.js";
import type { Datum } from "../../src/client/types/datum.js";
import type { ForwardBackwardOutput, SampleResponse } from "../../src/client/types/outputs.js";
import type { AdamParams, LossFnConfig, LossFnType } from "../../src/client/types/params.js";
import { TensorData } from "../../src/client/types/tensor-data.js";
import type {
  AdapterInfo,
  BaseModelInfo,
  EngineSampleRequest,
  LocalEngine,
  ResolvedLoraConfig,
} from "../../src/local/engine/api.js";

interface Adapter {
  baseModel: string;
  lora: ResolvedLoraConfig;
  /** One scalar "weight" that training moves, so ordering mistakes change the numbers. */
  w: number;
  grad: number;
  steps: number;
}

/**
 * A deterministic stand-in for the local engine, used only to test the server's own machinery
 * (ordering, futures, durability) independently of the model code. Every call is logged.
 */
export class EngineDouble implements LocalEngine {
  readonly adapters = new Map<string, Adapter>();
  readonly log: string[] = [];
  /** Artificial latency per call, ms. */
  delayMs = 0;

  private readonly model: BaseModelInfo = {
    name: "double-model",
    arch: "qwen3",
    vocabSize: 256,
    maxContextLength: 512,
  };

  async listBaseModels(): Promise<BaseModelInfo[]> {
    return [this.model];
  }

  async getBaseModel(name: string): Promise<BaseModelInfo> {
    if (name !== this.model.name)
      throw new TinkerValidationError(`unknown base model ${name}`, "base_model");
    return this.model;
  }

  async createAdapter(id: string, baseModel: string, lora: ResolvedLoraConfig): Promise<void> {
    await this.pause();
    this.log.push(`create ${id}`);
    this.adapters.set(id, { baseModel, lora, w: lora.seed % 7, grad: 0, steps: 0 });
  }

  async dropAdapter(id: string): Promise<void> {
    this.log.push(`drop ${id}`);
    this.adapters.delete(id);
  }

  async hasAdapter(id: string): Promise<boolean> {
    return this.adapters.has(id);
  }

  async forwardBackward(
    id: string,
    data: readonly Datum[],
    lossFn: LossFnType,
    _cfg: LossFnConfig | undefined,
    forwardOnly: boolean,
  ): Promise<ForwardBackwardOutput> {
    await this.pause();
    const a = this.require(id);
    this.log.push(`${forwardOnly ? "forward" : "forward_backward"} ${id} w=${a.w}`);
    let loss = 0;
    const outputs = data.map((d) => {
      const n = d.modelInput.length;
      const lp = new Float32Array(n).fill(-Math.abs(a.w) - 1);
      loss += n * (Math.abs(a.w) + 1);
      return { logprobs: TensorData.fromTyped(lp) };
    });
    if (!forwardOnly) a.grad += Math.sign(a.w) || 1;
    return {
      lossFnOutputType: "ArrayRecord",
      lossFnOutputs: outputs,
      metrics: { "loss:sum": loss, [`${lossFn}:count`]: data.length },
    };
  }

  async optimStep(
    id: string,
    adam: Required<AdamParams>,
  ): Promise<{ metrics?: Record<string, number> }> {
    await this.pause();
    const a = this.require(id);
    this.log.push(`optim_step ${id}`);
    a.w -= adam.learningRate * a.grad;
    a.grad = 0;
    a.steps++;
    return { metrics: { "step:max": a.steps } };
  }

  async saveAdapter(id: string, dir: string, opts: { optimizer: boolean }): Promise<void> {
    await this.pause();
    const a = this.require(id);
    this.log.push(`save ${id}`);
    await mkdir(dir, { recursive: true });
    await writeFile(
      join(dir, "adapter.json"),
      JSON.stringify({ baseModel: a.baseModel, lora: a.lora, w: a.w }),
    );
    if (opts.optimizer)
      await writeFile(join(dir, "optimizer.json"), JSON.stringify({ steps: a.steps }));
  }

  async loadAdapter(id: string, dir: string, opts: { optimizer: boolean }): Promise<AdapterInfo> {
    await this.pause();
    this.log.push(`load ${id}`);
    const saved = JSON.parse(await readFile(join(dir, "adapter.json"), "utf8")) as {
      baseModel: string;
      lora: ResolvedLoraConfig;
      w: number;
    };
    let steps = 0;
    if (opts.optimizer)
      steps = (JSON.parse(await readFile(join(dir, "optimizer.json"), "utf8")) as { steps: number })
        .steps;
    this.adapters.set(id, {
      baseModel: saved.baseModel,
      lora: saved.lora,
      w: saved.w,
      grad: 0,
      steps,
    });
    return { baseModel: saved.baseModel, lora: saved.lora };
  }

  async sample(req: EngineSampleRequest): Promise<SampleResponse> {
    await this.pause();
    const w = req.adapterId === undefined ? 0 : this.require(req.adapterId).w;
    const n = req.params.maxTokens ?? 4;
    const seed = req.params.seed ?? 0;
    return {
      sequences: Array.from({ length: req.numSamples }, (_, i) => ({
        stopReason: "length" as const,
        tokens: Array.from({ length: n }, (_, t) => (seed + i + t + Math.round(w * 1000)) % 256),
        logprobs: Array.from({ length: n }, () => -0.5),
      })),
      promptCacheHitTokens: 0,
    };
  }

  async close(): Promise<void> {}

  weightOf(id: string): number {
    return this.require(id).w;
  }

  private require(id: string): Adapter {
    const a = this.adapters.get(id);
    if (!a) throw new Error(`no adapter ${id}`);
    return a;
  }

  private async pause(): Promise<void> {
    if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
  }
}
