/**
 * What both recipes share: the base config (model, LoRA, optimizer, checkpoints, run dir), its
 * validation, opening the training client (fresh, warm start or exact resume), and checkpoints.
 */
import { TinkerValidationError } from "../client/errors.js";
import { ServiceClient, type ServiceClientOptions } from "../client/service-client.js";
import type { TrainingClient } from "../client/training-client.js";
import type { AdamParams } from "../client/types/params.js";
import { getLr, recommendedRenderers } from "../renderers/model-info.js";
import { getRenderer } from "../renderers/registry.js";
import type { Renderer } from "../renderers/types.js";
import { loadTokenizer } from "../tokenizers/loader.js";
import { resolveTokenizerId } from "../tokenizers/names.js";
import type { Tokenizer } from "../tokenizers/types.js";
import type { RecipeEmitter } from "./events.js";
import { attachProgress, type ProgressOptions } from "./progress.js";
import { type CheckpointRecord, type IfExists, RunDir } from "./run-dir.js";

/** Settings shared by {@link SupervisedRecipe} and {@link RLRecipe}. */
export interface RecipeBaseConfig {
  /** Base model to fine-tune, e.g. `Qwen/Qwen3-8B` or a local preset such as `tiny-bytes`. */
  model: string;
  /** The run directory (config, metrics, checkpoints). */
  logDir: string;
  /** Renderer name. Default: the model's recommended renderer. */
  renderer?: string;
  /** LoRA rank. Default 32. */
  loraRank?: number;
  /** Base learning rate. Default: `getLr(model)`. */
  learningRate?: number;
  /** AdamW settings besides the learning rate. Default beta1 0.9, beta2 0.95, eps 1e-8. */
  adam?: Omit<AdamParams, "learningRate">;
  /** Save a resumable checkpoint every this many steps (0: only the final one). Default 20. */
  saveEvery?: number;
  /** Lifetime of periodic checkpoints on the server, in seconds. Default 604800 (7 days). */
  ttlSeconds?: number;
  /** Start from these weights (a `tinker://.../weights/...` path) with a fresh optimizer. */
  loadCheckpointPath?: string;
  /** When `logDir` already holds a run. Default `"fail"`. */
  ifExists?: IfExists;
  /** Seed of everything random in the run (LoRA init, data order, sampling). Default 0. */
  seed?: number;
  /** Stop after this many steps in total. */
  maxSteps?: number;
  /** Show progress on stderr (a bar on a TTY, one line per step otherwise). Default true. */
  progress?: boolean;
  /** Stop cleanly: in-flight steps finish, a final checkpoint is written, `run()` reports `aborted`. */
  signal?: AbortSignal;
  /** The client to use. Default: a `new ServiceClient(serviceOptions)`, closed at the end. */
  service?: ServiceClient;
  serviceOptions?: ServiceClientOptions;
  /** Extra `user_metadata` of the training run. */
  userMetadata?: Record<string, string>;
}

/** What `run()` returns. */
export interface RecipeResult {
  /** Sampler weights of the final model (`tinker://.../sampler_weights/final`). */
  samplerPath: string | undefined;
  /** Resumable state of the final model (`tinker://.../weights/final`). */
  statePath: string | undefined;
  /** Steps done in total, over every resumed session of the run. */
  stepsDone: number;
  totalSteps: number;
  /** The last metrics row written. */
  lastMetrics: Record<string, number> | undefined;
  logDir: string;
  /** True when `signal` stopped the run early. */
  aborted: boolean;
}

export const DEFAULT_ADAM = { beta1: 0.9, beta2: 0.95, eps: 1e-8 } as const;

export function requireInteger(
  value: unknown,
  field: string,
  min: number,
  fix: string,
): asserts value is number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min) {
    throw new TinkerValidationError(
      `${field} must be an integer >= ${min}, got ${String(value)}; ${fix}`,
      field,
    );
  }
}

export function requirePositiveNumber(value: unknown, field: string, fix: string): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) {
    throw new TinkerValidationError(
      `${field} must be a finite number > 0, got ${String(value)}; ${fix}`,
      field,
    );
  }
  return value;
}

const IF_EXISTS: readonly IfExists[] = ["resume", "overwrite", "fail"];

/** The checks of the shared settings that need no server. */
export function validateBaseConfig(c: RecipeBaseConfig): void {
  if (typeof c.model !== "string" || c.model === "") {
    throw new TinkerValidationError(
      'model must be a base model name, e.g. "Qwen/Qwen3-8B" or "tiny-bytes"',
      "model",
    );
  }
  if (typeof c.logDir !== "string" || c.logDir === "") {
    throw new TinkerValidationError("logDir must be a folder path for the run's files", "logDir");
  }
  if (c.loraRank !== undefined) requireInteger(c.loraRank, "loraRank", 1, "e.g. 32");
  if (c.learningRate !== undefined) {
    requirePositiveNumber(c.learningRate, "learningRate", "e.g. 1e-4 (or omit it for getLr)");
  }
  if (c.saveEvery !== undefined) {
    requireInteger(c.saveEvery, "saveEvery", 0, "0 keeps only the final checkpoint");
  }
  if (c.ttlSeconds !== undefined) requireInteger(c.ttlSeconds, "ttlSeconds", 1, "e.g. 604800");
  if (c.maxSteps !== undefined) requireInteger(c.maxSteps, "maxSteps", 1, "or omit it");
  if (c.seed !== undefined) requireInteger(c.seed, "seed", 0, "e.g. 0");
  if (c.ifExists !== undefined && !IF_EXISTS.includes(c.ifExists)) {
    throw new TinkerValidationError(
      `ifExists must be one of ${IF_EXISTS.join(", ")}, got ${String(c.ifExists)}`,
      "ifExists",
    );
  }
  if (c.loadCheckpointPath !== undefined && !c.loadCheckpointPath.startsWith("tinker://")) {
    throw new TinkerValidationError(
      `loadCheckpointPath must be a tinker://<run>/weights/<name> path, got "${c.loadCheckpointPath}"`,
      "loadCheckpointPath",
    );
  }
  for (const [k, v] of Object.entries(c.adam ?? {})) {
    if (typeof v !== "number" || !Number.isFinite(v)) {
      throw new TinkerValidationError(
        `adam.${k} must be a finite number, got ${String(v)}`,
        `adam.${k}`,
      );
    }
  }
}

/**
 * The renderer of a run: the configured one, which must be among the model's fitting renderers
 * when the model is known, else the model's recommended one.
 */
export function resolveRendererName(model: string, renderer: string | undefined): string {
  let fitting: readonly string[] | undefined;
  try {
    fitting = recommendedRenderers(model);
  } catch (err) {
    if (renderer !== undefined) return renderer;
    throw new TinkerValidationError(
      `no renderer is known for model "${model}"; pass renderer (e.g. "role_colon" for a base model, ` +
        `"qwen3" or "llama3" for chat models)`,
      "renderer",
      { cause: err },
    );
  }
  if (renderer === undefined) return fitting[0]!;
  if (!fitting.includes(renderer)) {
    throw new TinkerValidationError(
      `renderer "${renderer}" does not fit model "${model}"; use one of ${fitting.join(", ")}`,
      "renderer",
    );
  }
  return renderer;
}

/** Fail before any training request when the server does not serve `model`. */
export async function checkModelServed(service: ServiceClient, model: string): Promise<void> {
  const caps = await service.getServerCapabilities();
  const names = caps.supportedModels
    .map((m) => m.modelName)
    .filter((n): n is string => typeof n === "string");
  if (names.length > 0 && !names.includes(model.split(":")[0]!)) {
    throw new TinkerValidationError(
      `model "${model}" is not served by this server; use one of ${names.join(", ")}`,
      "model",
    );
  }
}

/** How a run's training client was opened. */
export type TrainingStart =
  | { kind: "fresh" }
  | { kind: "warm"; path: string }
  | { kind: "resume"; path: string };

/** Open the training client: exact resume, warm start (weights only), or a fresh adapter. */
export async function openTrainingClient(
  service: ServiceClient,
  c: RecipeBaseConfig,
  rendererName: string,
  resumePath: string | undefined,
): Promise<{ training: TrainingClient; start: TrainingStart }> {
  const userMetadata = { ...c.userMetadata, renderer_name: rendererName };
  if (resumePath !== undefined) {
    const training = await service.createTrainingClientFromStateWithOptimizer(resumePath, {
      userMetadata,
    });
    return { training, start: { kind: "resume", path: resumePath } };
  }
  if (c.loadCheckpointPath !== undefined) {
    const training = await service.createTrainingClientFromState(c.loadCheckpointPath, {
      userMetadata,
    });
    return { training, start: { kind: "warm", path: c.loadCheckpointPath } };
  }
  const training = await service.createLoraTrainingClient(c.model, {
    rank: c.loraRank ?? 32,
    seed: c.seed ?? 0,
    userMetadata,
  });
  return { training, start: { kind: "fresh" } };
}

/** AdamW parameters of one step. */
export function adamFor(c: RecipeBaseConfig, learningRate: number): AdamParams {
  return { ...DEFAULT_ADAM, ...c.adam, learningRate };
}

/** A checkpoint name: the step, zero-padded (`000020`), or `final`. */
export function checkpointName(step: number | "final"): string {
  return step === "final" ? "final" : String(step).padStart(6, "0");
}

/** The base learning rate of a run: the configured one, else `getLr(model)`. */
export function baseLearningRate(c: RecipeBaseConfig): number {
  return c.learningRate ?? getLr(c.model);
}

/** The `config.json` fields both recipes share. */
export function describeBase(c: RecipeBaseConfig, rendererName: string): Record<string, unknown> {
  const lr = baseLearningRate(c);
  return {
    model: c.model,
    renderer: rendererName,
    lora_rank: c.loraRank ?? 32,
    learning_rate: lr,
    adam: adamFor(c, lr),
    max_steps: c.maxSteps ?? null,
    save_every: c.saveEvery ?? 20,
    ttl_seconds: c.ttlSeconds ?? 604800,
    load_checkpoint_path: c.loadCheckpointPath ?? null,
    seed: c.seed ?? 0,
  };
}

/**
 * Run a recipe body with the configured service (or a new one, closed afterwards) and, unless
 * `progress: false`, the progress display.
 */
export async function withRecipeService<T>(
  recipe: RecipeEmitter,
  c: RecipeBaseConfig,
  progress: Omit<ProgressOptions, "stream">,
  body: (service: ServiceClient) => Promise<T>,
): Promise<T> {
  const detach = c.progress === false ? undefined : attachProgress(recipe, progress);
  const service = c.service ?? new ServiceClient(c.serviceOptions);
  try {
    return await body(service);
  } finally {
    detach?.();
    if (c.service === undefined) await service.close();
  }
}

/** The run's tokenizer and renderer, once the server is known to serve the model. */
export async function prepareModel(
  service: ServiceClient,
  model: string,
  rendererName: string,
): Promise<{ tokenizer: Tokenizer; renderer: Renderer }> {
  await checkModelServed(service, model);
  const tokenizer = await loadTokenizer(resolveTokenizerId(model));
  return { tokenizer, renderer: getRenderer(rendererName, tokenizer) };
}

/** Where a session of a run starts: the run dir, its last resumable record and loop state. */
export interface RunStart<L> {
  dir: RunDir;
  resume: CheckpointRecord | undefined;
  loop: L | undefined;
  start: number;
}

/**
 * Open the run dir and decide where this session starts: the last resumable checkpoint's step
 * (metrics rows after it are dropped, as the steps are replayed), or 0.
 */
export async function openRun<L extends { step: number }>(
  recipe: RecipeEmitter,
  c: RecipeBaseConfig,
  description: Record<string, unknown>,
): Promise<RunStart<L>> {
  const dir = await RunDir.open(c.logDir, description, c.ifExists ?? "fail");
  const resume = dir.resumed ? dir.lastResumable() : undefined;
  const loop = resume?.loop_state as L | undefined;
  const start = loop?.step ?? 0;
  if (!resume?.final) {
    await dir.rewindTo(start);
    if (resume) recipe.emit("log", `resuming at step ${start} from ${resume.state_path}`);
  }
  return { dir, resume, loop, start };
}

/** The result of a run (also when it was already complete), announced as `done`. */
export async function recipeResult(
  recipe: RecipeEmitter,
  dir: RunDir,
  totalSteps: number,
  aborted: boolean,
): Promise<RecipeResult> {
  const record = dir.checkpointRecords.at(-1);
  const metrics = await dir.readMetrics();
  recipe.emit("done", { stepsDone: record?.step ?? 0, aborted });
  return {
    samplerPath: record?.sampler_path,
    statePath: record?.state_path,
    stepsDone: record?.step ?? 0,
    totalSteps,
    lastMetrics: metrics.at(-1),
    logDir: dir.path,
    aborted,
  };
}
